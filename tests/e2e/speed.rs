//! What the backup phase does to be fast (issue 19), checked against AWS
//! state: a snapshot-set backup does not describe the volumes (each point's
//! size comes from its snapshots), and the sizes it reports are the volumes'.

use std::collections::BTreeMap;

use serde_json::json;

use crate::harness::{Emulator, PlanText};

/// A snapshot-set backup reads each volume's size from the snapshot it made,
/// not from DescribeVolumes: discovery makes no DescribeVolumes call in any
/// tenant account, and every completed instance item's size is the sum of
/// its volumes' sizes as the emulator's API has them.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_set_backup_sizes_its_points_without_describing_volumes() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta"], &[]);
    let p = emu.write_plan(
        "nightly",
        PlanText::new()
            .method("snapshot-set")
            .group("all", &["alpha", "beta"])
            .regions(&[])
            .databases(true),
    );
    emu.control("DELETE", "/_harness/calls", None);
    let run = emu.backup(&p, &[]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["status"], "Completed");

    let describes: u64 = emu
        .calls()
        .iter()
        .filter(|c| c.2 == "DescribeVolumes")
        .map(|c| c.4)
        .sum();
    assert_eq!(describes, 0, "no DescribeVolumes: {:?}", emu.calls());

    // Each volume's size as AWS has it, read through the API.
    let mut size_of = BTreeMap::new();
    for t in ["alpha", "beta"] {
        for r in ["us-east-1", "us-west-2"] {
            let ec2 = emu.ec2(t, r).await;
            let vols = ec2.describe_volumes().send().await.unwrap();
            for v in vols.volumes() {
                size_of.insert(
                    v.volume_id().unwrap().to_string(),
                    i64::from(v.size().unwrap()),
                );
            }
        }
    }
    let mut checked = 0;
    for t in ["alpha", "beta"] {
        for r in ["us-east-1", "us-west-2"] {
            for inst in emu.nightly_instances(t, r) {
                let id = inst["id"].as_str().unwrap();
                let want: i64 = inst["volumes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| size_of[v["id"].as_str().unwrap()])
                    .sum();
                assert!(want > 0);
                let item = report["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|i| i["source_id"] == id)
                    .unwrap_or_else(|| panic!("{t}/{r} {id} has an item: {report}"));
                assert_eq!(item["status"], "Completed", "{item}");
                assert_eq!(item["size_gib"], json!(want), "{t}/{r} {id}: {item}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "{checked} instances checked");
    // The job's size is the completed items' sizes (instances and DBs).
    let items_size: i64 = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Completed")
        .map(|i| i["size_gib"].as_i64().unwrap())
        .sum();
    assert_eq!(report["size_gib"], json!(items_size));
}
