//! The nightly run's speed-critical paths, checked through the emulator: the
//! prune paces its deletes under EC2's token buckets (the layer enforces
//! them; moto has none) and works its regions side by side, and
//! `backup --prune` runs the Data Aging job beside the backup without
//! touching what the backup makes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Emulator, PlanText};

const ALPHA: &str = "222222222222";
const REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];

/// Plan `nightly` (id 4) of alpha's nightly instances in both regions,
/// kept 7 days.
fn plan() -> PlanText {
    PlanText::new()
        .name("nightly", 4)
        .method("snapshot-set")
        .retention("days = 7")
        .group("both", &["alpha"])
        .regions(&REGIONS)
}

/// Makes `n` recovery points of the plan in `region`, aged 10 days: `n`
/// expired snapshot sets of one snapshot each, made directly as the tenant,
/// the way an earlier job would have left them. Their sources are `sources`
/// (cycled), or instances that no longer exist when it is empty (then the
/// newest-point rule keeps none of them).
async fn expired_points(
    emu: &Emulator,
    region: &str,
    n: usize,
    sources: &[String],
) -> BTreeSet<String> {
    let ec2 = emu.ec2("alpha", region).await;
    let vol = emu.tenant("alpha")["resources"][region]["instances"][0]["volumes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let mut ids = BTreeSet::new();
    for i in 0..n {
        let spec = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Snapshot)
            .tags(tag("_GX_BACKUP_", "900"))
            .tags(tag("_GX_PLAN_", "nightly"))
            .tags(tag(
                "_GX_SOURCE_",
                &sources
                    .get(i % sources.len().max(1))
                    .cloned()
                    .unwrap_or_else(|| format!("i-0gone{i:011}")),
            ))
            .tags(tag("Name", &format!("SP_4_900_{i}_0")))
            .build();
        let s = ec2
            .create_snapshot()
            .volume_id(&vol)
            .tag_specifications(spec)
            .send()
            .await
            .unwrap();
        ids.insert(s.snapshot_id().unwrap().to_string());
    }
    emu.age(ALPHA, region, &ids, 10);
    ids
}

/// The layer's DeleteSnapshot bucket of alpha in each region: (taken, throttled).
fn delete_buckets(emu: &Emulator) -> BTreeMap<String, (u64, u64)> {
    emu.control("GET", "/_harness/buckets", None)["buckets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|b| b["account"] == ALPHA && b["bucket"] == "DeleteSnapshot")
        .map(|b| {
            (
                b["region"].as_str().unwrap().to_string(),
                (
                    b["taken"].as_u64().unwrap(),
                    b["throttled"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_paces_its_deletes_and_works_the_regions_side_by_side() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan());
    // More than a bucket's burst (100) in each region, so the refill (5 per
    // second) decides, as in a large prune.
    const N: usize = 115;
    let mut expired = BTreeMap::new();
    for r in REGIONS {
        expired.insert(r, expired_points(&emu, r, N, &[]).await);
    }
    emu.config(json!({"token_buckets": true, "latency_ms": 20}));

    // Sample the layer's buckets while the prune runs.
    let mut overlapped = false;
    let run = std::thread::scope(|s| {
        let prune = s.spawn(|| emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]));
        let deadline = Instant::now() + Duration::from_secs(120);
        while !prune.is_finished() && Instant::now() < deadline {
            let b = delete_buckets(&emu);
            let busy = |r: &str| b.get(r).is_some_and(|(t, _)| *t > 0 && *t < N as u64);
            overlapped |= REGIONS.iter().all(|r| busy(r));
            std::thread::sleep(Duration::from_millis(100));
        }
        prune.join().unwrap()
    });
    assert_eq!(run.code, 0, "{run}");

    // Every expired point is gone, as AWS sees it.
    for r in REGIONS {
        let left = emu.snapshots("alpha", r).await;
        let kept: Vec<_> = expired[r]
            .iter()
            .filter(|i| left.contains_key(*i))
            .collect();
        assert!(kept.is_empty(), "{r}: not deleted: {kept:?}");
    }
    // Paced: AWS throttled none of the deletes, though each region needed
    // more than its burst.
    let b = delete_buckets(&emu);
    for r in REGIONS {
        let (taken, throttled) = b[r];
        assert_eq!(taken, N as u64, "{r}: {b:?}");
        assert_eq!(throttled, 0, "{r}: deletes throttled: {b:?}");
    }
    assert!(
        overlapped,
        "the regions were pruned one after the other, not side by side"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_with_prune_deletes_points_the_new_backup_supersedes_and_keeps_the_new_ones() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan());
    let mut expired = BTreeMap::new();
    for r in REGIONS {
        // Points of live instances: each is the newest of its source until
        // this run's backup has made a newer one.
        let live: Vec<String> = emu.tenant("alpha")["resources"][r]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["tags"]["Backup"] == "nightly")
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect();
        assert!(!live.is_empty());
        expired.insert(r, expired_points(&emu, r, live.len(), &live).await);
    }
    let before: BTreeMap<&str, BTreeSet<String>> = {
        let mut m = BTreeMap::new();
        for r in REGIONS {
            m.insert(r, emu.snapshots("alpha", r).await.into_keys().collect());
        }
        m
    };

    // The backup's snapshots stay pending until released, so the prune's
    // first pass sees the old points still as the newest completed ones.
    for r in REGIONS {
        emu.control(
            "POST",
            "/_harness/hold",
            Some(json!({"account": ALPHA, "region": r, "kinds": ["snapshot"]})),
        );
    }
    let run = std::thread::scope(|s| {
        let run = s.spawn(|| emu.backup(&p, &["--prune"]));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut first_pass_done = false;
        while !first_pass_done && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            first_pass_done = emu
                .log_file("vsbkp.log")
                .contains("Prune of [alpha] waits for the backup job to end");
        }
        // Released in any case, so that a failing run ends too.
        emu.control("POST", "/_harness/release", Some(json!({"all": true})));
        assert!(first_pass_done, "the prune did not wait for the backup job");
        run.join().unwrap()
    });
    assert_eq!(run.code, 0, "{run}");
    let reports = run.json();
    let types: Vec<&str> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(types, ["Snap Backup", "Data Aging"], "{reports}");
    let backup_job = reports[0]["job"].as_u64().unwrap();
    assert_ne!(reports[1]["job"].as_u64(), Some(backup_job));

    for r in REGIONS {
        let now = emu.snapshots("alpha", r).await;
        for id in &expired[r] {
            assert!(!now.contains_key(id), "{r}: expired {id} survived");
        }
        let made: Vec<_> = now
            .iter()
            .filter(|(id, _)| !before[r].contains(*id))
            .collect();
        // alpha's nightly instances, 2 volumes each, all from this backup.
        assert!(!made.is_empty(), "{r}: the backup made nothing");
        for (id, t) in &made {
            assert_eq!(
                t.get("_GX_BACKUP_").map(String::as_str),
                Some(backup_job.to_string().as_str()),
                "{r}: {id}"
            );
        }
        // The prune counts each point it kept once, though it decided in
        // several passes: as many as the plan's points still in AWS.
        let left: std::collections::BTreeSet<(String, String)> = now
            .values()
            .filter(|t| t.get("_GX_PLAN_").map(String::as_str) == Some("nightly"))
            .map(|t| (t["_GX_BACKUP_"].clone(), t["_GX_SOURCE_"].clone()))
            .collect();
        let kept: u64 = reports[1]["summary"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "Kept" && s["region"] == *r)
            .map(|s| s["count"].as_u64().unwrap())
            .sum();
        assert_eq!(kept, left.len() as u64, "{r}: {}", reports[1]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prune_beside_the_copy_job_waits_for_it_before_deleting_an_uncopied_original() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    // us-east-1 is copied to us-west-2, whose copies are kept 30 days.
    let body = plan()
        .regions(&["us-east-1"])
        .copy("us-west-2", "retention = { days = 30 }");
    let p = emu.write_plan("nightly", &body);
    // An earlier night that was copied (sets of two snapshots, each copied),
    // aged past retention: once superseded, those originals are deleted
    // without waiting for the copy job.
    let earlier = emu.backup(&p, &[]);
    assert_eq!(earlier.code, 0, "{earlier}");
    let copied: Vec<String> = emu
        .snapshots("alpha", "us-east-1")
        .await
        .into_keys()
        .collect();
    assert!(copied.len() >= 4, "{copied:?}");
    emu.age(ALPHA, "us-east-1", &copied, 10);
    // Expired originals that an earlier night failed to copy.
    let uncopied = expired_points(&emu, "us-east-1", 3, &[]).await;

    let run = emu.backup(&p, &["--prune"]);
    assert_eq!(run.code, 0, "{run}");
    let types: Vec<String> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job_type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(types, ["Snap Backup", "Snap Copy", "Data Aging"]);

    // As after a copy and then a prune: each original was copied first, and
    // deleted afterwards.
    let east = emu.snapshots("alpha", "us-east-1").await;
    let west = emu.snapshots("alpha", "us-west-2").await;
    let copies: BTreeSet<String> = west
        .values()
        .filter_map(|t| t.get("_GX_COPY_OF_").cloned())
        .collect();
    for id in &uncopied {
        assert!(!east.contains_key(id), "expired original {id} kept");
        assert!(
            copies.contains(&format!("us-east-1/{id}")),
            "{id} was deleted before the copy job copied it; copies: {copies:?}"
        );
    }
    // Only the three uncopied ones ever waited for the copy job.
    let log = emu.log_file("vsbkp.log");
    let leaving: Vec<&str> = log.lines().filter(|l| l.contains("Leaving ")).collect();
    assert!(
        !leaving.is_empty(),
        "the prune did not wait for the copy job"
    );
    for l in &leaving {
        assert!(
            l.contains("Leaving 3 expired original(s) in [alpha/us-east-1] until the copy job"),
            "{l}"
        );
    }
    // The earlier night's copied originals are gone too.
    for id in &copied {
        assert!(!east.contains_key(id), "superseded original {id} kept");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_original_is_not_pruned_while_its_copy_is_being_made() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let body = plan()
        .regions(&["us-east-1"])
        .copy("us-west-2", "retention = { days = 30 }");
    let p = emu.write_plan("nightly", &body);
    // Expired originals of sources that are gone: nothing protects them but
    // their copies, which stay pending in us-west-2.
    let originals = expired_points(&emu, "us-east-1", 3, &[]).await;
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "region": "us-west-2", "kinds": ["snapshot"]})),
    );
    let copy = emu.run(&[
        "copy",
        "--plan",
        p.to_str().unwrap(),
        "--wait-timeout",
        "3",
        "--poll-interval",
        "0.5",
    ]);
    // The job ends at its wait timeout with the three copies still pending.
    assert_ne!(copy.code, 2, "{copy}");
    let held = emu.control("GET", "/_harness/hold", None);
    assert_eq!(held["held"].as_array().unwrap().len(), 3, "{held}");
    let prune = |emu: &Emulator| {
        let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
        assert_eq!(run.code, 0, "{run}");
    };
    prune(&emu);
    let east = emu.snapshots("alpha", "us-east-1").await;
    for id in &originals {
        assert!(
            east.contains_key(id),
            "{id} deleted while its copy was pending"
        );
    }
    // Once the copies complete, the originals go.
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
    prune(&emu);
    let east = emu.snapshots("alpha", "us-east-1").await;
    for id in &originals {
        assert!(!east.contains_key(id), "{id} kept after its copy completed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_point_deleted_in_one_pass_and_still_listed_in_the_next_is_left_alone() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan());
    let region = REGIONS[0];
    // Points of instances that no longer exist: the prune's first pass
    // deletes them at once.
    const N: usize = 3;
    let expired = expired_points(&emu, region, N, &[]).await;
    // The layer keeps a deleted snapshot listed for a while, as EC2's
    // eventually consistent describes may (and as RDS lists a snapshot it
    // is deleting); a second delete is answered InvalidSnapshot.NotFound.
    emu.config(json!({"linger_deleted_seconds": 600}));
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "region": region, "kinds": ["snapshot"]})),
    );
    let run = std::thread::scope(|s| {
        let run = s.spawn(|| emu.backup(&p, &["--region", region, "--prune"]));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut first_pass_done = false;
        while !first_pass_done && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            first_pass_done = emu
                .log_file("vsbkp.log")
                .contains("Prune of [alpha] waits for the backup job to end");
        }
        emu.control("POST", "/_harness/release", Some(json!({"all": true})));
        assert!(first_pass_done, "the prune did not wait for the backup job");
        run.join().unwrap()
    });
    assert_eq!(run.code, 0, "{run}");
    let reports = run.json();
    let prune = &reports[1];
    assert_eq!(prune["job_type"], "Data Aging", "{reports}");
    // The second pass still listed the deleted points; it neither deleted
    // them again nor counted them twice.
    let listed = emu.snapshots("alpha", region).await;
    assert!(
        expired.iter().all(|id| listed.contains_key(id)),
        "the layer no longer lists the deleted points, so this test shows nothing"
    );
    let deletes: u64 = emu
        .calls()
        .iter()
        .filter(|c| c.0 == ALPHA && c.1 == region && c.2 == "DeleteSnapshot")
        .map(|c| c.4)
        .sum();
    assert_eq!(deletes, N as u64, "{prune}");
    let deleted: u64 = prune["summary"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "Deleted" && s["region"] == region)
        .map(|s| s["count"].as_u64().unwrap())
        .sum();
    assert_eq!(deleted, N as u64, "{prune}");
    let items: BTreeSet<&str> = prune["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Deleted")
        .map(|i| i["source_id"].as_str().unwrap())
        .collect();
    assert_eq!(items.len(), N, "{prune}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_newest_point_of_a_terminated_instance_expires_and_that_of_a_live_one_stays() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan());
    let region = REGIONS[0];
    let instances: Vec<String> = emu.tenant("alpha")["resources"][region]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let (live, doomed) = (&instances[0], &instances[1]);
    // One expired point each; each is its source's only, so its newest.
    let points = expired_points(&emu, region, 2, &instances).await;
    let ec2 = emu.ec2("alpha", region).await;
    ec2.terminate_instances()
        .instance_ids(doomed)
        .send()
        .await
        .unwrap();
    let source_of = |tags: &BTreeMap<String, String>| tags["_GX_SOURCE_"].clone();
    let before = emu.snapshots("alpha", region).await;
    assert_eq!(
        points
            .iter()
            .map(|id| source_of(&before[id]))
            .collect::<BTreeSet<_>>(),
        instances.iter().cloned().collect::<BTreeSet<_>>()
    );

    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let after = emu.snapshots("alpha", region).await;
    let left: Vec<String> = points
        .iter()
        .filter(|id| after.contains_key(*id))
        .map(|id| source_of(&before[id]))
        .collect();
    assert_eq!(left, vec![live.clone()], "{}", run.json());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_with_more_snapshots_than_a_page_is_listed_whole() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan());
    let region = REGIONS[0];
    // More than one DescribeSnapshots page (1 000); the layer pages as AWS
    // does (moto answers everything at once).
    const N: usize = 1_003;
    let made = expired_points(&emu, region, N, &[]).await;
    emu.control("DELETE", "/_harness/calls", None);
    let run = emu.run(&[
        "list",
        "--plan",
        p.to_str().unwrap(),
        "--region",
        region,
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let listed: BTreeSet<String> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, made);
    let pages: u64 = emu
        .calls()
        .iter()
        .filter(|c| c.0 == ALPHA && c.1 == region && c.2 == "DescribeSnapshots")
        .map(|c| c.4)
        .sum();
    assert_eq!(pages, 2, "listed in pages of 1 000");
}

#[tokio::test(flavor = "multi_thread")]
async fn old_copies_go_as_their_successors_complete_while_the_copy_job_still_runs() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    // us-east-1 copied to us-west-2; copies expire after 7 days too.
    let body = plan()
        .regions(&["us-east-1"])
        .copy("us-west-2", "retention = { days = 7 }");
    let p = emu.write_plan("nightly", &body);
    // More old copies than one DeleteSnapshot burst (100) in us-west-2, so
    // that deleting them only at the end of the copy job would lengthen the
    // night: 55 more instances of two volumes each.
    let launched = emu
        .run_selected_instances("alpha", "us-east-1", 55, &["/dev/xvda", "/dev/sdf"], false)
        .await;
    assert_eq!(launched.len(), 55);
    // Night 1: every instance backed up and copied; then all of it expires.
    let night1 = emu.backup(&p, &[]);
    assert_eq!(night1.code, 0, "{night1}");
    emu.age_all(ALPHA, 10);
    let source = |t: &BTreeMap<String, String>| t["_GX_SOURCE_"].clone();
    let old_copies: BTreeMap<String, String> = emu
        .snapshots("alpha", "us-west-2")
        .await
        .into_iter()
        .map(|(id, t)| (id, source(&t)))
        .collect();
    let sources: BTreeSet<&String> = old_copies.values().collect();
    assert!(sources.len() >= 55, "{sources:?}");
    // One instance's new copies stay pending until the end: the copy job
    // waits for them. Every other copy completes as soon as it is seen.
    let slow = (*sources.iter().next().unwrap()).clone();
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "region": "us-west-2", "kinds": ["snapshot"]})),
    );
    let mut child = emu
        .rolesnap()
        .args(["backup", "--plan", p.to_str().unwrap(), "--prune"])
        .args(["--poll-interval", "0.2", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let others: BTreeSet<&String> = old_copies
        .iter()
        .filter(|(_, s)| **s != slow)
        .map(|(id, _)| id)
        .collect();
    // What the prune guarantees while the copy job runs: a region's old
    // copies waiting for their successors never stay above one
    // DeleteSnapshot burst once those successors complete.
    const BURST: usize = 100;
    let enough = |gone: usize| gone > 0 && others.len() - gone <= BURST;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut gone_while_copying, mut slow_copy_pending) = (0, false);
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        let west = emu.snapshots("alpha", "us-west-2").await;
        let held: Vec<String> = emu.control("GET", "/_harness/hold", None)["held"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect();
        let release: Vec<&String> = held
            .iter()
            .filter(|id| west.get(*id).is_some_and(|t| source(t) != slow))
            .collect();
        if !release.is_empty() {
            emu.control("POST", "/_harness/release", Some(json!({"ids": release})));
        }
        slow_copy_pending = held
            .iter()
            .any(|id| west.get(id).is_some_and(|t| source(t) == slow));
        if slow_copy_pending {
            // The copy job still waits for the slow instance's copies.
            gone_while_copying = others.iter().filter(|id| !west.contains_key(**id)).count();
            // The slow instance's old copy is still its newest complete one.
            for (id, s) in &old_copies {
                if *s == slow {
                    assert!(
                        west.contains_key(id),
                        "{id} deleted before its successor completed"
                    );
                }
            }
            if enough(gone_while_copying) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Released in any case, so that the run ends.
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
    let run = crate::harness::Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{run}");
    assert!(
        slow_copy_pending,
        "the slow instance's copy was never seen pending"
    );
    assert!(
        enough(gone_while_copying),
        "only {gone_while_copying} of {} superseded old copy snapshots were deleted while the copy job ran",
        others.len()
    );
    // At the end, as after a copy job and then a prune: every old copy is
    // gone, and every source has its new copy.
    let west = emu.snapshots("alpha", "us-west-2").await;
    for id in old_copies.keys() {
        assert!(!west.contains_key(id), "old copy {id} kept");
    }
    let covered: BTreeSet<String> = west.values().map(source).collect();
    for s in sources {
        assert!(covered.contains(s), "{s} has no copy left in us-west-2");
    }
}
