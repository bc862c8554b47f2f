//! `[drill]` in a plan: the agent runs restore drills at the drill
//! schedule's slots, choosing the resources whose turn it is; checked
//! through the emulator's API (what was restored, and that it is gone).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::{s, tags_of, Emulator, PlanText};

/// Every instance of alpha in us-east-1 that carries `CV_Integrity_Snap`:
/// id → (state, tags).
async fn drill_instances(emu: &Emulator) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let out = ec2.describe_instances().send().await.unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| tags_of(i.tags()).contains_key("CV_Integrity_Snap"))
        .map(|i| {
            (
                i.instance_id().unwrap().to_string(),
                (
                    i.state().unwrap().name().unwrap().as_str().to_string(),
                    tags_of(i.tags()),
                ),
            )
        })
        .collect()
}

/// Sleeps until one second past the next multiple of `secs` (Unix time), so
/// that an `agent --once` started then has a fresh slot and the whole
/// interval before the next one.
fn just_after_a_slot(secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.as_millis() as u64 % (secs * 1000);
    std::thread::sleep(std::time::Duration::from_millis(secs * 1000 - into + 1000));
}

fn drill_jobs(emu: &Emulator) -> Vec<Value> {
    emu.run(&["jobs", "-o", "json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["job_type"] == "Drill")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_slot_drills_the_sampled_instances_in_turn_and_leaves_nothing() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let res = &emu.tenant("alpha")["resources"]["us-east-1"];
    let subnet = s(&res["subnets"][0]["id"]).to_string();
    let sg = s(&res["security_group_id"]).to_string();
    // No [schedule]: the agent runs only the drills. Every 30 seconds (a
    // 6-field cron), one instance per slot.
    let text = format!(
        "{}\n[drill]\nschedule = \"*/30 * * * * *\"\nsample = 1\ntimeout-minutes = 5\n\n[[drill.target]]\nregion = \"us-east-1\"\nsubnet = \"{subnet}\"\nsecurity-groups = [\"{sg}\"]\n",
        PlanText::new().retention("days = 7")
    );
    let p = emu.write_plan("nightly", &text);
    emu.backup_completed(&p);
    let mut sources: Vec<String> = emu
        .nightly_instances("alpha", "us-east-1")
        .iter()
        .map(|i| s(&i["id"]).to_string())
        .collect();
    sources.sort();
    assert_eq!(sources.len(), 2, "the fixture has two nightly instances");

    // `schedule` lists the drill slots.
    let sched = emu.run(&["schedule", "--plans", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(sched.code, 0, "{sched}");
    let sj = sched.json();
    assert_eq!(sj[0]["drill"]["cron"], "*/30 * * * * *", "{sched}");
    assert_eq!(
        sj[0]["drill"]["next"].as_array().unwrap().len(),
        5,
        "{sched}"
    );
    assert_eq!(sj[0]["next"].as_array().unwrap().len(), 0, "{sched}");

    let agent = |emu: &Emulator| {
        let run = emu.run(&[
            "agent",
            "--once",
            "--plans",
            p.to_str().unwrap(),
            "--poll-interval",
            "0.2",
        ]);
        assert_eq!(run.code, 0, "{run}");
    };
    just_after_a_slot(30);
    agent(&emu);
    let jobs = drill_jobs(&emu);
    assert_eq!(jobs.len(), 1, "{jobs:?}\n{}", emu.log_file("cvd.log"));
    assert_eq!(jobs[0]["status"], "Completed", "{jobs:?}");
    let all = emu.run(&["jobs", "-o", "json"]).json();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|j| j["job_type"] != "Snap Backup" || j["plan"] == "nightly"),
        "{all}"
    );
    // What the drill restored: a new instance of the first never-drilled
    // source (by id), tagged with the drill job, terminated again.
    let made = drill_instances(&emu).await;
    assert_eq!(made.len(), 1, "{made:?}");
    let (state, t) = made.values().next().unwrap();
    assert_eq!(state, "terminated", "{made:?}");
    assert_eq!(t["CV_Integrity_Snap"], jobs[0]["id"].to_string());
    assert_eq!(t["_GX_SOURCE_"], sources[0], "{t:?}");
    assert!(
        !t.contains_key("Backup"),
        "not the source's own tags: {t:?}"
    );

    // The next slot drills the other instance (its turn: never drilled).
    let first = jobs[0]["id"].as_u64().unwrap();
    just_after_a_slot(30);
    agent(&emu);
    let jobs = drill_jobs(&emu);
    assert_eq!(jobs.len(), 2, "{jobs:?}\n{}", emu.log_file("cvd.log"));
    let made = drill_instances(&emu).await;
    assert_eq!(made.len(), 2, "{made:?}");
    let drilled: Vec<&str> = made
        .values()
        .map(|(_, t)| t["_GX_SOURCE_"].as_str())
        .collect();
    assert!(
        drilled.contains(&sources[1].as_str()),
        "the second slot drilled the other instance: {drilled:?}"
    );
    assert!(made.values().all(|(st, _)| st == "terminated"), "{made:?}");
    assert!(jobs.iter().any(|j| j["id"].as_u64() != Some(first)));
    // Nothing else of the drills is left: no volume or image of a drill job.
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let vols = ec2.describe_volumes().send().await.unwrap();
    assert!(
        !vols
            .volumes()
            .iter()
            .any(|v| tags_of(v.tags()).contains_key("CV_Integrity_Snap")),
        "{vols:?}"
    );
    let images = ec2.describe_images().owners("self").send().await.unwrap();
    assert!(!images
        .images()
        .iter()
        .any(|i| tags_of(i.tags()).contains_key("CV_Integrity_Snap")));
    let cvd = emu.log_file("cvd.log");
    assert!(cvd.contains("drills for slot"), "{cvd}");
}

fn rds_tags(pairs: &[(&str, &str)]) -> Vec<aws_sdk_rds::types::Tag> {
    pairs
        .iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build())
        .collect()
}

/// A DB instance as a killed drill (or something else) leaves it.
async fn db(rds: &aws_sdk_rds::Client, id: &str, tags: &[(&str, &str)]) {
    rds.create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("rolesnap")
        .master_user_password("rolesnap-Test-Pw1")
        .set_tags(Some(rds_tags(tags)))
        .send()
        .await
        .unwrap();
}

/// An instance as a killed drill (or something else) leaves it.
async fn instance(ec2: &aws_sdk_ec2::Client, subnet: &str, tags: &[(&str, &str)]) -> String {
    let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
    }
    let out = ec2
        .run_instances()
        .image_id("ami-760aaa0f")
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet)
        .tag_specifications(spec.build())
        .send()
        .await
        .unwrap();
    out.instances()[0].instance_id().unwrap().to_string()
}

async fn db_ids(rds: &aws_sdk_rds::Client) -> Vec<String> {
    let mut ids: Vec<String> = rds
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
        .iter()
        .filter(|d| d.db_instance_status() != Some("deleting"))
        .map(|d| d.db_instance_identifier().unwrap().to_string())
        .collect();
    ids.extend(
        rds.describe_db_clusters()
            .send()
            .await
            .unwrap()
            .db_clusters()
            .iter()
            .filter(|c| c.status() != Some("deleting"))
            .map(|c| format!("cluster:{}", c.db_cluster_identifier().unwrap())),
    );
    ids
}

async fn state_of(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .state()
        .unwrap()
        .name()
        .unwrap()
        .as_str()
        .to_string()
}

const DRILL_TAGS: &[(&str, &str)] = &[
    ("_GX_BACKUP_", "999"),
    ("CV_Integrity_Snap", "999"),
    ("_GX_PLAN_", "nightly"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_drills_databases_go_with_the_next_drill_and_its_instances_and_databases_with_prune(
) {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let res = &emu.tenant("alpha")["resources"]["us-east-1"];
    let subnet = s(&res["subnets"][0]["id"]).to_string();
    let sg = s(&res["security_group_id"]).to_string();
    let text = format!(
        "{}\n[drill]\nschedule = \"0 4 * * *\"\nsample = 1\ntimeout-minutes = 30\n\n[[drill.target]]\nregion = \"us-east-1\"\nsubnet = \"{subnet}\"\nsecurity-groups = [\"{sg}\"]\n",
        PlanText::new().retention("days = 7").databases(true)
    );
    let p = emu.write_plan("nightly", &text);
    emu.backup_completed(&p);
    let account = s(&emu.tenant("alpha")["account"]).to_string();
    let rds = emu.rds("alpha", "us-east-1").await;
    let ec2 = emu.ec2("alpha", "us-east-1").await;

    // What a drill killed mid-way leaves: a DB instance, and an Aurora
    // cluster with its writer, named and tagged as a drill's, two hours old.
    db(&rds, "rolesnap-drill-1000-0", DRILL_TAGS).await;
    rds.create_db_cluster()
        .db_cluster_identifier("rolesnap-drill-1000-1")
        .engine("aurora-postgresql")
        .master_username("rolesnap")
        .master_user_password("rolesnap-Test-Pw1")
        .set_tags(Some(rds_tags(DRILL_TAGS)))
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier("rolesnap-drill-1000-1-1")
        .engine("aurora-postgresql")
        .db_instance_class("db.t3.medium")
        .db_cluster_identifier("rolesnap-drill-1000-1")
        .set_tags(Some(rds_tags(DRILL_TAGS)))
        .send()
        .await
        .unwrap();
    // Not a drill's leftovers: the drill name without the tags, the tags
    // without the name, and a drill's database younger than the timeout.
    db(&rds, "rolesnap-drill-untagged", &[("_GX_BACKUP_", "999")]).await;
    db(&rds, "orders-db", DRILL_TAGS).await;
    db(&rds, "rolesnap-drill-young", DRILL_TAGS).await;
    let old = |kind: &str, id: &str| serde_json::json!({"account": account, "region": "us-east-1", "kind": kind, "id": id, "age_seconds": 7200});
    emu.control(
        "POST",
        "/_harness/age",
        Some(serde_json::json!({"items": [
            old("db-instance", "rolesnap-drill-1000-0"),
            old("db-cluster", "rolesnap-drill-1000-1"),
            old("db-instance", "rolesnap-drill-1000-1-1"),
            old("db-instance", "rolesnap-drill-untagged"),
            old("db-instance", "orders-db"),
        ]})),
    );

    // The next drill (timeout 10 minutes) removes the old drill databases first.
    let run = emu.run(&[
        "drill",
        "--plan",
        p.to_str().unwrap(),
        "--tenant",
        "alpha",
        "--db",
        "alpha-pg",
        "--wait-timeout",
        "600",
        "--poll-interval",
        "0.2",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let r = run.json();
    assert_eq!(r["drill"]["healthy"], true, "{run}");
    let notes = r["notes"].to_string();
    for gone in ["rolesnap-drill-1000-0", "rolesnap-drill-1000-1"] {
        assert!(notes.contains(gone), "{gone} is named: {notes}");
    }
    let ids = db_ids(&rds).await;
    for gone in [
        "rolesnap-drill-1000-0",
        "rolesnap-drill-1000-1-1",
        "cluster:rolesnap-drill-1000-1",
    ] {
        assert!(!ids.contains(&gone.to_string()), "{gone}: {ids:?}");
    }
    for kept in [
        "rolesnap-drill-untagged",
        "orders-db",
        "rolesnap-drill-young",
        "alpha-pg",
        "cluster:alpha-aurora",
    ] {
        assert!(ids.contains(&kept.to_string()), "{kept}: {ids:?}");
    }
    // The drill's own database is gone as well.
    assert!(
        !ids.iter().any(|i| i.starts_with("rolesnap-drill-")
            && !i.contains("young")
            && !i.contains("untagged")),
        "{ids:?}"
    );

    // Prune removes this plan's drill leftovers older than the plan's
    // [drill] timeout-minutes: an instance and a database; not another
    // plan's, not one younger than the timeout.
    let left = instance(&ec2, &subnet, DRILL_TAGS).await;
    let others = instance(
        &ec2,
        &subnet,
        &[
            ("_GX_BACKUP_", "999"),
            ("CV_Integrity_Snap", "999"),
            ("_GX_PLAN_", "weekly"),
        ],
    )
    .await;
    let young = instance(&ec2, &subnet, DRILL_TAGS).await;
    db(&rds, "rolesnap-drill-1001-0", DRILL_TAGS).await;
    emu.control(
        "POST",
        "/_harness/age",
        Some(serde_json::json!({"items": [
            old("instance", &left),
            old("instance", &others),
            old("db-instance", "rolesnap-drill-1001-0"),
        ]})),
    );
    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let items = run.json()["items"].clone();
    let deleted: Vec<String> = items
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Deleted")
        .map(|i| {
            format!(
                "{}:{}",
                i["kind"].as_str().unwrap(),
                i["source_id"].as_str().unwrap()
            )
        })
        .collect();
    assert!(deleted.contains(&format!("instance:{left}")), "{run}");
    assert!(
        deleted.contains(&"db-instance:rolesnap-drill-1001-0".to_string()),
        "{run}"
    );
    assert_eq!(state_of(&ec2, &left).await, "terminated");
    assert_eq!(state_of(&ec2, &others).await, "running", "another plan's");
    assert_eq!(
        state_of(&ec2, &young).await,
        "running",
        "younger than the timeout"
    );
    let ids = db_ids(&rds).await;
    assert!(
        !ids.contains(&"rolesnap-drill-1001-0".to_string()),
        "{ids:?}"
    );
    for kept in [
        "rolesnap-drill-untagged",
        "orders-db",
        "rolesnap-drill-young",
    ] {
        assert!(ids.contains(&kept.to_string()), "{kept}: {ids:?}");
    }
    // A dry-run prune names what it would remove and removes nothing.
    let dry_left = instance(&ec2, &subnet, DRILL_TAGS).await;
    emu.control(
        "POST",
        "/_harness/age",
        Some(serde_json::json!({"items": [old("instance", &dry_left)]})),
    );
    let run = emu.run(&[
        "prune",
        "--plan",
        p.to_str().unwrap(),
        "--dry-run",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains(&dry_left), "{run}");
    assert_eq!(state_of(&ec2, &dry_left).await, "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_drill_with_connect_is_healthy_only_when_its_endpoint_answers() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan(
        "nightly",
        PlanText::new().retention("days = 7").databases(true),
    );
    emu.backup_completed(&p);
    let rds = emu.rds("alpha", "us-east-1").await;
    let drill = |emu: &Emulator| {
        let run = emu.run(&[
            "drill",
            "--plan",
            p.to_str().unwrap(),
            "--tenant",
            "alpha",
            "--db",
            "alpha-pg",
            "--connect",
            "--poll-interval",
            "0.2",
            "-o",
            "json",
        ]);
        let json: Value = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
        (run.code, json, format!("{run}"))
    };
    // The restored database's endpoint is a port this test listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    emu.control(
        "POST",
        "/_harness/db_endpoints",
        Some(
            serde_json::json!({"prefix": "rolesnap-drill-", "address": "127.0.0.1", "port": port}),
        ),
    );
    let (code, r, run) = drill(&emu);
    assert_eq!(code, 0, "{run}");
    assert_eq!(r["drill"]["healthy"], true, "{run}");
    let endpoint = format!("127.0.0.1:{port}");
    assert!(
        r["drill"]["checks"].to_string().contains(&endpoint),
        "{run}"
    );
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_ok(), "the drill connected: {run}");

    // A closed port: the drill fails, names the endpoint, and still
    // removes its database.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    emu.control(
        "POST",
        "/_harness/db_endpoints",
        Some(serde_json::json!({"prefix": "rolesnap-drill-", "address": "127.0.0.1", "port": closed})),
    );
    let (code, r, run) = drill(&emu);
    assert_eq!(code, 3, "{run}");
    assert_eq!(r["status"], "Failed", "{run}");
    assert_eq!(r["drill"]["healthy"], false, "{run}");
    let reason = r["drill"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("127.0.0.1:{closed}")) && reason.contains("TCP connect"),
        "{run}"
    );
    let ids = db_ids(&rds).await;
    assert!(
        !ids.iter().any(|i| i.contains("rolesnap-drill-")),
        "the failed drill removed its database: {ids:?}"
    );
    assert!(ids.contains(&"alpha-pg".to_string()), "{ids:?}");
    let jobs = drill_jobs(&emu);
    assert_eq!(
        jobs.iter()
            .map(|j| j["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["Failed", "Completed"],
        "{jobs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_drill_with_a_check_command_records_its_output_and_fails_on_a_bad_exit() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", PlanText::new().retention("days = 7"));
    emu.backup_completed(&p);
    let account = s(&emu.tenant("alpha")["account"]).to_string();
    let res = &emu.tenant("alpha")["resources"]["us-east-1"];
    let subnet = s(&res["subnets"][0]["id"]).to_string();
    let sg = s(&res["security_group_id"]).to_string();
    let src = s(&emu.nightly_instances("alpha", "us-east-1")[0]["id"]).to_string();
    let drill = |emu: &Emulator, timeout: &str| {
        let run = emu.run(&[
            "drill",
            "--plan",
            p.to_str().unwrap(),
            "--tenant",
            "alpha",
            "--instance",
            &src,
            "--subnet",
            &subnet,
            "--security-groups",
            &sg,
            "--check",
            "systemctl is-system-running",
            "--wait-timeout",
            timeout,
            "--poll-interval",
            "0.2",
            "-o",
            "json",
        ]);
        let json: Value = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
        (run.code, json, format!("{run}"))
    };
    // Healthy: the command exits 0; its output is recorded.
    emu.control(
        "POST",
        "/_harness/ssm",
        Some(serde_json::json!({"account": account, "exit_code": 0, "output": "running\n"})),
    );
    let (code, r, run) = drill(&emu, "120");
    assert_eq!(code, 0, "{run}");
    assert_eq!(r["drill"]["healthy"], true, "{run}");
    assert_eq!(r["drill"]["check"]["exit_code"], 0, "{run}");
    assert_eq!(r["drill"]["check"]["output"], "running\n", "{run}");
    assert_eq!(r["drill"]["check"]["status"], "Success", "{run}");
    // The command went to the drill's instance, with the shell document.
    let made = s(&r["restored"]["instance_id"]).to_string();
    assert!(emu.count_calls(&account, "SendCommand", "ok") >= 1);
    let jobs = emu.run(&["jobs", "--job", &r["job"].to_string(), "-o", "json"]);
    assert!(
        jobs.stdout.contains("running"),
        "the ledger keeps the output: {jobs}"
    );

    // A non-zero exit fails the drill with the code and output, and the
    // drill's instance is still removed.
    emu.control(
        "POST",
        "/_harness/ssm",
        Some(serde_json::json!({"account": account, "exit_code": 1, "output": "degraded\n"})),
    );
    let (code, r, run) = drill(&emu, "120");
    assert_eq!(code, 3, "{run}");
    assert_eq!(r["drill"]["healthy"], false, "{run}");
    assert_eq!(r["drill"]["check"]["exit_code"], 1, "{run}");
    let reason = r["drill"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("exited 1") && reason.contains("degraded"),
        "{run}"
    );
    // A command that never ends: the drill times out on it.
    emu.control(
        "POST",
        "/_harness/ssm",
        Some(serde_json::json!({"account": account, "status": "InProgress"})),
    );
    let (code, r, run) = drill(&emu, "8");
    assert_eq!(code, 3, "{run}");
    assert!(
        r["drill"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("check command"),
        "{run}"
    );
    let live: Vec<String> = drill_instances(&emu)
        .await
        .into_iter()
        .filter(|(_, (st, _))| st != "terminated")
        .map(|(id, _)| id)
        .collect();
    assert!(
        live.is_empty(),
        "every drill instance removed: {live:?} (first {made})"
    );
}
