//! Restore drills: a point restored into a throw-away target, proved healthy,
//! recorded, and removed again; checked through the emulator's API.

use serde_json::{json, Value};

use crate::harness::{rds_tags_of, s, tags_of, Emulator, PlanText};

/// Instances carrying `CV_Integrity_Snap` that are not terminated.
async fn live_drill_instances(emu: &Emulator) -> Vec<String> {
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let out = ec2.describe_instances().send().await.unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| tags_of(i.tags()).contains_key("CV_Integrity_Snap"))
        .filter(|i| i.state().unwrap().name().unwrap().as_str() != "terminated")
        .map(|i| i.instance_id().unwrap().to_string())
        .collect()
}

fn drill(emu: &Emulator, p: &std::path::Path, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["drill", "--plan", p.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--tenant", "alpha", "-o", "json", "--poll-interval", "0.2"]);
    let run = emu.run(&all);
    let json = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    (run.code, json, format!("{run}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_and_a_database_drill_restore_prove_healthy_and_leave_nothing() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan(
        "nightly",
        PlanText::new().retention("days = 7").databases(true),
    );
    emu.backup_completed(&p);
    let res = &emu.tenant("alpha")["resources"]["us-east-1"];
    let subnet = s(&res["subnets"][0]["id"]).to_string();
    let sg = s(&res["security_group_id"]).to_string();
    let src = emu.nightly_instances("alpha", "us-east-1")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let before = ec2
        .describe_instances()
        .instance_ids(&src)
        .send()
        .await
        .unwrap();
    let before = tags_of(before.reservations()[0].instances()[0].tags());

    let (code, r, run) = drill(
        &emu,
        &p,
        &[
            "--instance",
            &src,
            "--subnet",
            &subnet,
            "--security-groups",
            &sg,
        ],
    );
    assert_eq!(code, 0, "{run}");
    assert_eq!(r["job_type"], "Drill", "{run}");
    assert_eq!(r["status"], "Completed", "{run}");
    assert_eq!(r["drill"]["healthy"], true, "{run}");
    assert!(r["drill"]["rto_seconds"].as_i64().unwrap() >= 0);
    let made = s(&r["restored"]["instance_id"]).to_string();
    assert_ne!(made, src);
    // The drill's instance ran in the throw-away subnet, with the drill tag
    // and without the source's own tags (Backup=nightly would select it).
    let out = ec2
        .describe_instances()
        .instance_ids(&made)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    assert_eq!(i.subnet_id(), Some(subnet.as_str()));
    let t = tags_of(i.tags());
    assert_eq!(
        t["CV_Integrity_Snap"],
        r["job"].as_u64().unwrap().to_string()
    );
    assert!(!t.contains_key("Backup"), "{t:?}");
    // Nothing of the drill is left: its instance terminated, no volume or
    // image tagged with its job.
    assert_eq!(i.state().unwrap().name().unwrap().as_str(), "terminated");
    assert!(live_drill_instances(&emu).await.is_empty());
    let job = r["job"].as_u64().unwrap().to_string();
    let vols = ec2.describe_volumes().send().await.unwrap();
    assert!(
        !vols
            .volumes()
            .iter()
            .any(|v| tags_of(v.tags()).get("_GX_BACKUP_") == Some(&job)),
        "{vols:?}"
    );
    let images = ec2.describe_images().owners("self").send().await.unwrap();
    assert!(!images
        .images()
        .iter()
        .any(|i| tags_of(i.tags()).get("_GX_BACKUP_") == Some(&job)));
    // The source is untouched.
    let after = ec2
        .describe_instances()
        .instance_ids(&src)
        .send()
        .await
        .unwrap();
    let a = &after.reservations()[0].instances()[0];
    assert_eq!(a.state().unwrap().name().unwrap().as_str(), "running");
    assert_eq!(tags_of(a.tags()), before);

    // A database drill: restored under a new identifier, available, deleted.
    let (code, r, run) = drill(&emu, &p, &["--db", "alpha-pg"]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(r["drill"]["healthy"], true, "{run}");
    let rds = emu.rds("alpha", "us-east-1").await;
    let dbs = rds.describe_db_instances().send().await.unwrap();
    let ids: Vec<&str> = dbs
        .db_instances()
        .iter()
        .map(|d| d.db_instance_identifier().unwrap())
        .collect();
    assert!(ids.contains(&"alpha-pg"), "the source stays: {ids:?}");
    assert!(
        !dbs.db_instances()
            .iter()
            .any(|d| rds_tags_of(d.tag_list()).contains_key("CV_Integrity_Snap")),
        "the drill's database is gone: {ids:?}"
    );

    // Both are Drill jobs in the ledger.
    let jobs = emu.run(&["jobs", "-o", "json"]);
    let jobs: Value = serde_json::from_str(&jobs.stdout).unwrap();
    assert_eq!(
        jobs.as_array()
            .unwrap()
            .iter()
            .filter(|j| j["job_type"] == "Drill" && j["status"] == "Completed")
            .count(),
        2,
        "{jobs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_drills_instance_is_removed_by_the_next_drill() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", PlanText::new().retention("days = 7"));
    emu.backup_completed(&p);
    let res = &emu.tenant("alpha")["resources"]["us-east-1"];
    let subnet = s(&res["subnets"][0]["id"]).to_string();
    let sg = s(&res["security_group_id"]).to_string();
    // What a drill killed after RunInstances leaves: an instance with the
    // drill's tags.
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let left = ec2
        .run_instances()
        .image_id("ami-760aaa0f")
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("_GX_BACKUP_")
                        .value("999")
                        .build(),
                )
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("CV_Integrity_Snap")
                        .value("999")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let left = left.instances()[0].instance_id().unwrap().to_string();
    // Older than the next drill's wait timeout (3 s).
    std::thread::sleep(std::time::Duration::from_secs(4));
    let src = emu.nightly_instances("alpha", "us-east-1")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, r, run) = drill(
        &emu,
        &p,
        &[
            "--instance",
            &src,
            "--subnet",
            &subnet,
            "--security-groups",
            &sg,
            "--wait-timeout",
            "3",
        ],
    );
    assert_eq!(code, 0, "{run}");
    assert!(
        r["notes"].to_string().contains(&left),
        "the leftover is named: {run}"
    );
    assert!(live_drill_instances(&emu).await.is_empty(), "{run}");
    let _ = json!(null);
}
