//! Snap Backup: `rolesnap backup` and `rolesnap jobs`, checked through the
//! emulator's API as each tenant.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{seeded, tags_of, Emulator, PlanText, Tags};

/// Plan `nightly` (id 2): the nightly instances, DB instances and Aurora
/// clusters of `tenants`, in all their regions.
fn plan(tenants: &[&str], method: &str) -> PlanText {
    PlanText::new()
        .method(method)
        .group("all", tenants)
        .regions(&[])
        .databases(true)
}

/// Snapshots of a job in one tenant × region, as that tenant sees them: id → tags.
async fn job_snapshots(
    emu: &Emulator,
    tenant: &str,
    region: &str,
    job: u64,
) -> BTreeMap<String, Tags> {
    let ec2 = emu.ec2(tenant, region).await;
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:_GX_BACKUP_")
                .values(job.to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.snapshots()
        .iter()
        .map(|s| (s.snapshot_id().unwrap().to_string(), tags_of(s.tags())))
        .collect()
}

/// Every nightly instance of the tenant × region has exactly one snapshot set
/// from `job`: one snapshot per volume, tagged by the contract.
async fn assert_one_set_per_instance(emu: &Emulator, tenant: &str, region: &str, job: u64) {
    let snaps = job_snapshots(emu, tenant, region, job).await;
    let name = regex::Regex::new(&format!(r"^SP_2_{job}_\d+_\d{{10}}$")).unwrap();
    let instances = emu.nightly_instances(tenant, region);
    assert!(!instances.is_empty());
    for inst in &instances {
        let id = inst["id"].as_str().unwrap();
        let set: Vec<&Tags> = snaps.values().filter(|t| t["_GX_SOURCE_"] == id).collect();
        let volumes = inst["volumes"].as_array().unwrap();
        assert_eq!(
            set.len(),
            volumes.len(),
            "{tenant}/{region} {id}: one snapshot per volume, no duplicates"
        );
        for t in set {
            assert_eq!(t["_GX_PLAN_"], "nightly");
            assert!(name.is_match(&t["Name"]), "Name {}", t["Name"]);
            assert_eq!(t["_GX_INSTANCE_TYPE_"], inst["type"].as_str().unwrap());
            assert_eq!(t["_GX_SUBNET_"], inst["subnet"].as_str().unwrap());
            assert_eq!(t["_GX_AZ_"], inst["az"].as_str().unwrap());
            for v in volumes {
                let pair = format!(
                    "{}={}",
                    v["id"].as_str().unwrap(),
                    v["device"].as_str().unwrap()
                );
                assert!(
                    t["_GX_DEVICES_"].contains(&pair),
                    "{pair} in {}",
                    t["_GX_DEVICES_"]
                );
            }
        }
    }
    let never: Vec<&Tags> = snaps
        .values()
        .filter(|t| {
            !instances
                .iter()
                .any(|i| i["id"] == t["_GX_SOURCE_"].as_str())
        })
        .collect();
    assert!(
        never.is_empty(),
        "only selected instances are snapshotted: {never:?}"
    );
}

fn job_number(report: &Value) -> u64 {
    report["job"].as_u64().expect("job number")
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_sets_and_db_snapshots_land_in_the_tenant_accounts_tagged() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta"], &[]);
    let p = emu.write_plan("nightly", plan(&["alpha", "beta"], "snapshot-set"));
    let run = emu.backup(&p, &[]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["status"], "Completed");
    let job = job_number(&report);
    for t in ["alpha", "beta"] {
        for r in ["us-east-1", "us-west-2"] {
            assert_one_set_per_instance(&emu, t, r, job).await;
        }
        // RDS and Aurora snapshots, tagged at creation, in the tenant's account.
        let rds = emu.rds(t, "us-east-1").await;
        let (_, dbs, clusters) = seeded(emu.tenant(t), "us-east-1");
        let snaps = rds
            .describe_db_snapshots()
            .snapshot_type("manual")
            .send()
            .await
            .unwrap();
        let ours: Vec<_> = snaps
            .db_snapshots()
            .iter()
            .filter(|s| {
                s.tag_list()
                    .iter()
                    .any(|t| t.key() == Some("_GX_BACKUP_") && t.value() == Some(&job.to_string()))
            })
            .collect();
        assert_eq!(
            ours.len(),
            dbs.len(),
            "{t}: one DB snapshot per DB instance"
        );
        assert_eq!(ours[0].db_instance_identifier().unwrap(), dbs[0]);
        assert!(ours[0]
            .tag_list()
            .iter()
            .any(|t| t.key() == Some("_GX_PLAN_") && t.value() == Some("nightly")));
        let cs = rds
            .describe_db_cluster_snapshots()
            .snapshot_type("manual")
            .send()
            .await
            .unwrap();
        let ours: Vec<_> = cs
            .db_cluster_snapshots()
            .iter()
            .filter(|s| {
                s.tag_list()
                    .iter()
                    .any(|t| t.key() == Some("_GX_BACKUP_") && t.value() == Some(&job.to_string()))
            })
            .collect();
        assert_eq!(
            ours.len(),
            clusters.len(),
            "{t}: one cluster snapshot per Aurora cluster"
        );
        assert_eq!(ours[0].db_cluster_identifier().unwrap(), clusters[0]);
    }
    // Nothing was created in the admin account.
    let admin = aws_sdk_ec2::Client::new(&emu.account_config("111111111111", "us-east-1").await);
    let mine = admin
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap();
    assert!(
        mine.snapshots().is_empty(),
        "no snapshot in the admin account"
    );

    // The ledger has the job, and `jobs --job` shows its summary.
    let jobs = emu.run(&["jobs", "-o", "json"]);
    assert_eq!(jobs.json()[0]["id"], job);
    assert_eq!(jobs.json()[0]["status"], "Completed");
    let one = emu
        .run(&["jobs", "--job", &job.to_string(), "-o", "json"])
        .json();
    let completed = one["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Completed")
        .count();
    assert_eq!(
        completed,
        2 * (2 + 2 + 1 + 1),
        "4 instances + 1 DB + 1 cluster per tenant"
    );
    let human = emu.run(&["jobs", "--job", &job.to_string()]);
    assert!(
        human.stdout.contains("Operation:  Snap Backup")
            && human.stdout.contains("Status:     Completed")
    );

    // vsbkp.log tells the story with the job number.
    let bkp = emu.log_file("vsbkp.log");
    assert!(
        bkp.contains(&format!(
            " {job} CVSnapBackup::Run() - CreateSnapshots for instance ["
        )),
        "{bkp}"
    );
    assert!(
        bkp.contains("Assumed role [arn:aws:iam::222222222222:role/vsa-role] for tenant [alpha]")
    );
    assert!(bkp.contains(&format!("Job [{job}] Completed")));
}

#[tokio::test(flavor = "multi_thread")]
async fn ami_method_tags_the_image_and_its_backing_snapshots() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan(&["alpha"], "ami").no_database_lines());
    let run = emu.backup(&p, &["--region", "us-east-1"]);
    assert_eq!(run.code, 0, "{run}");
    let job = job_number(&run.json());
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let images = ec2
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:_GX_BACKUP_")
                .values(job.to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let nightly = emu.nightly_instances("alpha", "us-east-1");
    assert_eq!(
        images.images().len(),
        nightly.len(),
        "one AMI per selected instance"
    );
    let snaps = job_snapshots(&emu, "alpha", "us-east-1", job).await;
    for img in images.images() {
        let id = img.image_id().unwrap();
        let t = tags_of(img.tags());
        assert_eq!(t["_GX_PLAN_"], "nightly");
        assert!(nightly.iter().any(|i| i["id"] == t["_GX_SOURCE_"].as_str()));
        let backing: Vec<&str> = img
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
            .collect();
        assert!(!backing.is_empty());
        for s in backing {
            let st = snaps
                .get(s)
                .unwrap_or_else(|| panic!("backing snapshot {s} of {id} carries _GX_BACKUP_"));
            assert_eq!(st["_GX_AMI_"], id);
            assert_eq!(st["_GX_SOURCE_"], t["_GX_SOURCE_"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusting_tenant_fails_alone_and_the_others_are_fully_protected() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta", "gamma"], &[]);
    let p = emu.write_plan("nightly", plan(&["alpha", "beta", "gamma"], "snapshot-set"));
    let run = emu.backup(&p, &[]);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    assert_eq!(report["status"], "Completed w/ one or more errors");
    let failed: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] != "Completed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["tenant"], "gamma");
    assert!(failed[0]["error"]
        .as_str()
        .unwrap()
        .contains("AccessDenied"));
    let job = job_number(&report);
    for t in ["alpha", "beta"] {
        for r in ["us-east-1", "us-west-2"] {
            assert_one_set_per_instance(&emu, t, r, job).await;
        }
    }
    // gamma's instance was never touched: AssumeRole was refused, no EC2 call reached gamma.
    assert_eq!(emu.count_calls("444444444444", "CreateSnapshots", "ok"), 0);
    assert!(emu.count_calls("111111111111", "AssumeRole", "denied") >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_creates_are_retried_without_duplicate_sets() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta"], &[]);
    emu.config(json!({"seed": 7}));
    emu.fault(json!({"action": "CreateSnapshots", "code": "RequestLimitExceeded", "status": 503, "probability": 0.3}));
    emu.fault(json!({"action": "CreateDBSnapshot", "code": "Throttling", "status": 400, "probability": 0.3}));
    let p = emu.write_plan("nightly", plan(&["alpha", "beta"], "snapshot-set"));
    let run = emu.backup(&p, &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["status"], "Completed");
    let job = job_number(&run.json());
    for t in ["alpha", "beta"] {
        for r in ["us-east-1", "us-west-2"] {
            assert_one_set_per_instance(&emu, t, r, job).await;
        }
    }
    let injected: u64 = emu
        .calls()
        .iter()
        .filter(|c| c.2 == "CreateSnapshots" && c.3 == "injected")
        .map(|c| c.4)
        .sum();
    assert!(injected >= 1, "the fault was injected");
    assert!(emu
        .log_file("vsbkp.log")
        .contains("Retrying CreateSnapshots"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_waits_for_pending_snapshots_and_outlives_its_credentials() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    // Tenant sessions last 12 s: the SDK must assume the role again during the job.
    emu.config(json!({"credential_lifetime_seconds": 12}));
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": "222222222222", "region": "us-east-1", "kinds": ["snapshot"]})),
    );
    let p = emu.write_plan("nightly", plan(&["alpha"], "snapshot-set"));
    let mut child = emu
        .rolesnap()
        .args([
            "backup",
            "--plan",
            p.to_str().unwrap(),
            "--region",
            "us-east-1",
            "-o",
            "json",
            "--poll-interval",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Still waiting well past the credential lifetime…
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the job waits while snapshots are pending"
    );
    let held = emu.control("GET", "/_harness/hold", None);
    assert_eq!(
        held["held"].as_array().unwrap().len(),
        4,
        "two instances × two volumes held: {held}"
    );
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
    let run = crate::harness::Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["status"], "Completed");
    assert_one_set_per_instance(&emu, "alpha", "us-east-1", job_number(&report)).await;
    // Credentials were refreshed, and no call was made with expired ones.
    assert!(
        emu.count_calls("111111111111", "AssumeRole", "ok") >= 2,
        "{:?}",
        emu.calls()
    );
    let expired: u64 = emu
        .calls()
        .iter()
        .filter(|c| c.3 == "expired")
        .map(|c| c.4)
        .sum();
    assert_eq!(expired, 0, "no ExpiredToken: {:?}", emu.calls());
    // Waiting was batched: far fewer describes than polls × snapshots.
    let describes = emu.count_calls("222222222222", "DescribeSnapshots", "ok");
    assert!(
        (2..=15).contains(&describes),
        "{describes} DescribeSnapshots"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recovery_point_still_pending_at_the_timeout_is_reported() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": "222222222222", "region": "us-east-1", "kinds": ["db-snapshot"]})),
    );
    let p = emu.write_plan("nightly", plan(&["alpha"], "snapshot-set"));
    let start = Instant::now();
    let run = emu.run(&[
        "backup",
        "--plan",
        p.to_str().unwrap(),
        "--region",
        "us-east-1",
        "-o",
        "json",
        "--poll-interval",
        "0.5",
        "--wait-timeout",
        "4",
    ]);
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    assert_eq!(report["status"], "Completed w/ one or more errors");
    let pending: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Pending")
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["source_id"], "alpha-pg");
    let snap = pending[0]["created"][0].as_str().unwrap();
    assert!(
        pending[0]["error"]
            .as_str()
            .unwrap()
            .contains("still pending"),
        "{}",
        pending[0]
    );
    // It is not forgotten: it exists, tagged, in the tenant account.
    let rds = emu.rds("alpha", "us-east-1").await;
    let out = rds
        .describe_db_snapshots()
        .db_snapshot_identifier(snap)
        .send()
        .await
        .unwrap();
    let s = &out.db_snapshots()[0];
    assert_eq!(s.status(), Some("creating"));
    assert!(s.tag_list().iter().any(|t| t.key() == Some("_GX_BACKUP_")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_job_is_marked_killed_and_numbers_keep_growing() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": "222222222222", "kinds": ["snapshot"]})),
    );
    let p = emu.write_plan("nightly", plan(&["alpha"], "snapshot-set"));
    let mut child = emu
        .rolesnap()
        .args([
            "backup",
            "--plan",
            p.to_str().unwrap(),
            "--poll-interval",
            "0.5",
            "-q",
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Both regions have made their sets and wait for them.
    let waiting = |l: &str| {
        l.contains("in [alpha/us-east-1] (poll") && l.contains("in [alpha/us-west-2] (poll")
    };
    while !waiting(&emu.log_file("vsbkp.log")) {
        assert!(Instant::now() < deadline, "the job never started waiting");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let jobs = emu.run(&["jobs", "-o", "json"]).json();
    let first = jobs[0]["id"].as_u64().unwrap();
    assert_eq!(jobs[0]["status"], "Killed", "{jobs}");
    // What it created is still found by its tags.
    assert!(!job_snapshots(&emu, "alpha", "us-east-1", first)
        .await
        .is_empty());
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
    let run = emu.backup(&p, &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(job_number(&run.json()) > first);
}

#[test]
fn dry_run_creates_nothing_and_records_nothing() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan(&["alpha"], "snapshot-set"));
    let run = emu.run(&[
        "backup",
        "--plan",
        p.to_str().unwrap(),
        "--dry-run",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let items = run.json()["items"].as_array().unwrap().clone();
    assert_eq!(
        items.len(),
        2 + 2 + 1 + 1,
        "4 nightly instances, 1 DB, 1 cluster"
    );
    assert!(items.iter().all(|i| i["status"] == "DryRun"));
    let creates: u64 = emu
        .calls()
        .iter()
        .filter(|c| {
            c.2.starts_with("Create") || c.2.starts_with("Copy") || c.2.starts_with("Delete")
        })
        .map(|c| c.4)
        .sum();
    assert_eq!(creates, 0);
    let human = emu.run(&["backup", "--plan", p.to_str().unwrap(), "--dry-run"]);
    assert!(
        human.stdout.contains("CreateSnapshots") && human.stdout.contains("nothing was created"),
        "{human}"
    );
    let jobs = emu.run(&["jobs", "-o", "json"]).json();
    assert_eq!(
        jobs.as_array().unwrap().len(),
        0,
        "a dry run records no job"
    );
}

#[test]
fn only_the_named_instance_is_backed_up() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan(&["alpha"], "snapshot-set"));
    let target = emu.nightly_instances("alpha", "us-west-2")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = emu.backup(&p, &["--instance", &target]);
    assert_eq!(run.code, 0, "{run}");
    let items = run.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["source_id"], target.as_str());
    assert_eq!(items[0]["region"], "us-west-2");
}

/// A group with `regions = ["all"]` asks each tenant's account which regions
/// it has (DescribeRegions, with the tenant's role) and backs up every one of
/// them, not the tenant's default regions from the accounts file.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_over_all_regions_backs_up_every_region_the_account_has() {
    let emu = Emulator::start();
    let accounts = emu.write_accounts(&["alpha"], &[]);
    // The tenant's defaults name one region only: the other seeded region
    // is reached through DescribeRegions or not at all.
    let text = std::fs::read_to_string(&accounts).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("regions = "))
        .unwrap()
        .to_string();
    assert!(line.contains("us-west-2"), "{line}");
    std::fs::write(&accounts, text.replace(&line, "regions = [\"us-east-1\"]")).unwrap();
    let p = emu.write_plan(
        "nightly",
        plan(&["alpha"], "snapshot-set").regions(&["all"]),
    );
    emu.control("DELETE", "/_harness/calls", None);
    let run = emu.backup(&p, &[]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["status"], "Completed", "{run}");
    let job = job_number(&report);
    for r in ["us-east-1", "us-west-2"] {
        assert_one_set_per_instance(&emu, "alpha", r, job).await;
    }
    let account = emu.tenant("alpha")["account"].as_str().unwrap().to_string();
    let calls = emu.calls();
    // (region, count) of the tenant's calls of one action.
    let asked = |action: &str| -> Vec<(String, u64)> {
        calls
            .iter()
            .filter(|(a, _, act, o, _)| *a == account && act == action && o == "ok")
            .map(|(_, r, _, _, n)| (r.clone(), *n))
            .collect()
    };
    assert_eq!(
        asked("DescribeRegions"),
        vec![("us-east-1".to_string(), 1)],
        "asked once, in the admin region, as the tenant: {calls:?}"
    );
    // Every region the account has was listed, the unseeded ones too.
    let listed = asked("DescribeInstances");
    for r in ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"] {
        assert!(listed.iter().any(|(x, _)| x == r), "{r} listed: {listed:?}");
    }
    let items = report["items"].as_array().unwrap();
    let west = items
        .iter()
        .filter(|i| i["region"] == "us-west-2" && i["status"] == "Completed")
        .count();
    assert_eq!(
        west,
        emu.nightly_instances("alpha", "us-west-2").len(),
        "{report}"
    );
}
