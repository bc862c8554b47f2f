//! What the backup phase does to be fast (issue 19), checked against AWS
//! state: a snapshot-set backup does not describe the volumes (each point's
//! size comes from its snapshots), and the sizes it reports are the volumes';
//! the pacer plans on AWS's documented rates, and an AWS slower than that
//! costs retried creates, never a point made twice or not at all.

use std::collections::BTreeMap;

use serde_json::json;

use crate::harness::{selected_by_nightly, Emulator, PlanText};

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

/// A region's points are waited for from the first one made, not after its
/// last create: with more instances than CreateSnapshots' burst (100 tokens),
/// the last creates are paced at 5 a second, and the first points are
/// confirmed complete while they are. Every point the job reports complete
/// is a set of completed snapshots in AWS, with the job's marker.
#[tokio::test(flavor = "multi_thread")]
async fn points_are_confirmed_while_the_regions_last_creates_are_still_paced() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    // 110 more nightly instances beside the seeded ones: past the burst.
    launch_beside_the_seeded(&emu, "us-east-1", 110).await;
    let p = emu.write_plan("nightly", PlanText::new().method("snapshot-set"));
    emu.control("DELETE", "/_harness/calls", None);
    let run = emu.backup(&p, &["--no-copy"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    let items = report["items"].as_array().unwrap();
    assert!(items.len() > 110, "{} items", items.len());

    // In the job's log, a point is confirmed before the region's last create
    // is asked (the old order: every create, then every confirmation).
    let log = emu.log_file("vsbkp.log");
    let lines: Vec<&str> = log.lines().collect();
    let last_create = lines
        .iter()
        .rposition(|l| l.contains("CreateSnapshots for instance"))
        .expect("creates are logged");
    let first_done = lines
        .iter()
        .position(|l| l.contains("Recovery point of [") && l.contains("completed in"))
        .expect("completions are logged");
    assert!(
        first_done < last_create,
        "the first point was confirmed (line {first_done}) after the last create was asked (line {last_create})"
    );

    // Every point reported complete is, in AWS: each of its snapshots
    // exists, is completed and carries the job's marker.
    let snaps = ec2
        .describe_snapshots()
        .owner_ids("self")
        .max_results(1000)
        .send()
        .await
        .unwrap();
    let state: BTreeMap<&str, (&str, bool)> = snaps
        .snapshots()
        .iter()
        .map(|s| {
            (
                s.snapshot_id().unwrap(),
                (
                    s.state().map(|x| x.as_str()).unwrap_or(""),
                    s.tags().iter().any(|t| t.key() == Some("_GX_BACKUP_")),
                ),
            )
        })
        .collect();
    for i in items {
        assert_eq!(i["status"], "Completed", "{i}");
        for id in i["created"].as_array().unwrap() {
            let id = id.as_str().unwrap();
            assert_eq!(state.get(id), Some(&("completed", true)), "{id} of {i}");
        }
    }
}

/// The pacer plans on AWS's documented refill rates, with no margin on the
/// rate: an AWS slower than documented throttles some creates, and each
/// throttled create is retried (taking another token of the pacer's model)
/// until it is made, once. Here AWS refills the create bucket at a quarter
/// of the documented rate, a region has more instances than the burst, and AWS's
/// own state shows every selected instance with exactly one snapshot set of
/// the job, complete, after creates AWS did throttle.
#[tokio::test(flavor = "multi_thread")]
async fn an_aws_slower_than_documented_throttles_creates_that_end_as_one_point_each() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let region = "us-east-1";
    let account = emu.tenant("alpha")["account"].as_str().unwrap().to_string();
    let ec2 = emu.ec2("alpha", region).await;
    // 110 more nightly instances beside the seeded ones: past the burst.
    let mut selected: Vec<String> = emu
        .nightly_instances("alpha", region)
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    selected.extend(launch_beside_the_seeded(&emu, region, 110).await);
    let p = emu.write_plan(
        "nightly",
        PlanText::new().method("snapshot-set").regions(&[region]),
    );
    // AWS's buckets, refilling at a quarter of the documented rate (1.25
    // creates a second instead of 5): the pacer's model runs ahead of AWS
    // once the burst is spent, whatever the emulator's own speed.
    emu.config(json!({"token_buckets": true, "latency_ms": 20, "bucket_scale": 0.25}));
    let run = emu.backup(&p, &["--no-copy"]);
    assert_eq!(run.code, 0, "{run}");

    // AWS throttled creates, and let through exactly one per instance.
    let bucket = emu.control("GET", "/_harness/buckets", None)["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["account"] == account.as_str()
                && b["region"] == region
                && b["bucket"] == "CreateSnapshot"
        })
        .cloned()
        .expect("the region's create bucket");
    assert!(
        bucket["throttled"].as_u64().unwrap() > 0,
        "AWS throttled no create: the test's AWS is not slower than the pacer's model: {bucket}"
    );
    assert_eq!(
        bucket["taken"].as_u64().unwrap(),
        selected.len() as u64,
        "creates AWS let through: {bucket}"
    );
    // In AWS: each selected instance has exactly one snapshot set, one
    // snapshot of each of its volumes (a create made twice would make two),
    // every one complete and marked.
    let mut volumes: BTreeMap<String, usize> = BTreeMap::new();
    let described = ec2
        .describe_instances()
        .set_instance_ids(Some(selected.clone()))
        .send()
        .await
        .unwrap();
    for r in described.reservations() {
        for i in r.instances() {
            let ebs = i
                .block_device_mappings()
                .iter()
                .filter(|m| m.ebs().is_some())
                .count();
            volumes.insert(i.instance_id().unwrap().to_string(), ebs);
        }
    }
    assert_eq!(volumes.len(), selected.len());
    let snaps = ec2
        .describe_snapshots()
        .owner_ids("self")
        .max_results(1000)
        .send()
        .await
        .unwrap();
    let mut sets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in snaps.snapshots() {
        let t = crate::harness::tags_of(s.tags());
        if !t.contains_key("_GX_BACKUP_") {
            continue;
        }
        assert_eq!(s.state().map(|x| x.as_str()), Some("completed"), "{s:?}");
        sets.entry(t["_GX_SOURCE_"].clone())
            .or_default()
            .push(t["Name"].clone());
    }
    for (id, n) in &volumes {
        assert!(*n > 0, "{id} has no EBS volume");
        let names = sets.get(id).cloned().unwrap_or_default();
        assert_eq!(names.len(), *n, "{id}: snapshots {names:?} of {n} volumes");
        assert!(names.iter().all(|x| *x == names[0]), "{id}: sets {names:?}");
    }
    assert_eq!(
        sets.len(),
        selected.len(),
        "points of other sources: {sets:?}"
    );
}

/// Launches `count` more instances of alpha in `region` that the test plans
/// select, from the image and in the subnet of its first seeded one; returns
/// their ids.
async fn launch_beside_the_seeded(emu: &Emulator, region: &str, count: i32) -> Vec<String> {
    let ec2 = emu.ec2("alpha", region).await;
    let seeded = emu.nightly_instances("alpha", region);
    let one = ec2
        .describe_instances()
        .instance_ids(seeded[0]["id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let inst = &one.reservations()[0].instances()[0];
    let launched = ec2
        .run_instances()
        .image_id(inst.image_id().unwrap())
        .subnet_id(inst.subnet_id().unwrap())
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(count)
        .max_count(count)
        .tag_specifications(selected_by_nightly())
        .send()
        .await
        .unwrap();
    launched
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect()
}
