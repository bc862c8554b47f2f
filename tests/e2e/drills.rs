//! Fault drills: everything at once, and the run still ends with exactly one
//! recovery point per selected resource, no duplicates, nothing orphaned.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{seeded, tags_of, Emulator};

const PLAN: &str = r#"
[plan]
name = "drill"
id = 9

[retention]
days = 7

[[copy]]
region = "us-west-2"

[[group]]
name = "east"
tenants = ["alpha", "beta", "gamma"]
regions = ["us-east-1"]
include-tags = ["Backup=nightly"]
rds = true
aurora = true
"#;

const MUTATING: &[&str] = &[
    "CreateSnapshots",
    "CreateDBSnapshot",
    "CreateDBClusterSnapshot",
    "CreateTags",
    "CopySnapshot",
    "CopyDBSnapshot",
    "CopyDBClusterSnapshot",
];

#[tokio::test(flavor = "multi_thread")]
async fn throttling_5xx_expiry_denial_and_a_kill_still_give_exactly_one_point_each() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta", "gamma"], &[]);
    emu.config(json!({"seed": 42, "credential_lifetime_seconds": 12}));
    for a in MUTATING {
        emu.fault(
            json!({"action": a, "code": "RequestLimitExceeded", "status": 503, "probability": 0.3}),
        );
        emu.fault(
            json!({"action": a, "code": "InternalError", "status": 500, "probability": 0.05}),
        );
    }
    // Snapshots stay pending until released, so the run is killed mid-wait.
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": "222222222222", "kinds": ["snapshot"]})),
    );
    let p = emu.write_plan("drill", PLAN);
    let args = [
        "backup",
        "--plan",
        p.to_str().unwrap(),
        "--poll-interval",
        "0.5",
        "-q",
    ];
    let mut first = emu.rolesnap().args(args).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !emu.log_file("vsbkp.log").contains("Waiting for") {
        assert!(Instant::now() < deadline, "never reached the wait");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    first.kill().unwrap();
    first.wait().unwrap();

    // Past the credential lifetime, release the snapshots and run again.
    std::thread::sleep(Duration::from_secs(3));
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
    let run = emu.run(&[
        "backup",
        "--plan",
        p.to_str().unwrap(),
        "--poll-interval",
        "0.5",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 1, "gamma is denied, the rest completes: {run}");
    let reports = run.json();
    let backup = &reports[0];
    let problems: Vec<&Value> = backup["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] != "Completed")
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["tenant"], "gamma");
    let copy_problems: Vec<&Value> = reports[1]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] != "Completed")
        .collect();
    assert!(
        copy_problems.iter().all(|i| i["tenant"] == "gamma"),
        "copies: {}",
        reports[1]
    );
    let jobs = emu.run(&["jobs", "-o", "json"]).json();
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j["status"] == "Killed"),
        "{jobs}"
    );
    assert!(
        emu.log_file("vsbkp.log").contains("Adopting ["),
        "the restart adopted the killed run's points"
    );

    for t in ["alpha", "beta"] {
        let ec2 = emu.ec2(t, "us-east-1").await;
        let snaps = ec2
            .describe_snapshots()
            .owner_ids("self")
            .send()
            .await
            .unwrap();
        let by_tags: Vec<BTreeMap<String, String>> = snaps
            .snapshots()
            .iter()
            .map(|s| tags_of(s.tags()))
            .collect();
        // Nothing orphaned: every snapshot in the tenant carries the contract.
        assert!(
            by_tags
                .iter()
                .all(|t| t.contains_key("_GX_BACKUP_") && t["_GX_PLAN_"] == "drill"),
            "{by_tags:?}"
        );
        let instances: Vec<Value> = emu.tenant(t)["resources"]["us-east-1"]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["tags"]["Backup"] == "nightly")
            .cloned()
            .collect();
        for inst in &instances {
            let id = inst["id"].as_str().unwrap();
            let n = by_tags.iter().filter(|t| t["_GX_SOURCE_"] == id).count();
            assert_eq!(
                n,
                inst["volumes"].as_array().unwrap().len(),
                "{t} {id}: one snapshot set, no duplicate"
            );
        }
        assert_eq!(
            by_tags.len(),
            4,
            "{t}: two instances × two volumes, nothing else"
        );
        // One copy of each, in the copy region.
        let west = emu.ec2(t, "us-west-2").await;
        let copies = west
            .describe_snapshots()
            .owner_ids("self")
            .send()
            .await
            .unwrap();
        let mut of: Vec<String> = copies
            .snapshots()
            .iter()
            .filter_map(|s| tags_of(s.tags()).get("_GX_COPY_OF_").cloned())
            .collect();
        of.sort();
        let n = of.len();
        of.dedup();
        assert_eq!((n, of.len()), (4, 4), "{t}: one copy per snapshot");
        // One DB snapshot and one cluster snapshot.
        let rds = emu.rds(t, "us-east-1").await;
        let (_, dbs, clusters) = seeded(emu.tenant(t), "us-east-1");
        let d = rds
            .describe_db_snapshots()
            .snapshot_type("manual")
            .send()
            .await
            .unwrap();
        assert_eq!(d.db_snapshots().len(), dbs.len(), "{t}: one DB snapshot");
        let c = rds
            .describe_db_cluster_snapshots()
            .snapshot_type("manual")
            .send()
            .await
            .unwrap();
        assert_eq!(
            c.db_cluster_snapshots().len(),
            clusters.len(),
            "{t}: one cluster snapshot"
        );
    }
    // The faults really happened, and no call went out with expired credentials.
    let calls = emu.calls();
    let injected: u64 = calls
        .iter()
        .filter(|c| c.3 == "injected")
        .map(|c| c.4)
        .sum();
    assert!(injected >= 3, "{calls:?}");
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.3 == "expired")
            .map(|c| c.4)
            .sum::<u64>(),
        0,
        "{calls:?}"
    );
}
