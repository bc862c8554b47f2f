//! Snap Copy and Data Aging, checked through the emulator's API as the tenant.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{tags_of, Emulator, PlanText, Tags};

const ALPHA: &str = "222222222222";

/// Plan `nightly` (id 2) of alpha's us-east-1 with databases, copied to
/// us-west-2: `retention` and `copy_retention` are the two rules' lines.
fn plan(method: &str, retention: &str, copy_retention: &str) -> PlanText {
    PlanText::new()
        .method(method)
        .retention(retention)
        .copy("us-west-2", &format!("retention = {{ {copy_retention} }}"))
        .databases(true)
}

fn job_of(t: &Tags) -> Option<u64> {
    t.get("_GX_BACKUP_").and_then(|j| j.parse().ok())
}

fn backup(emu: &Emulator, p: &std::path::Path) -> Vec<Value> {
    let run = emu.backup(p, &[]);
    assert!(run.code == 0 || run.code == 1, "{run}");
    run.reports()
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_land_in_the_destination_region_tagged_with_their_origin() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan("snapshot-set", "days = 7", "days = 30"));
    let reports = backup(&emu, &p);
    assert_eq!(reports.len(), 2, "a backup job, then a Snap Copy job");
    assert_eq!(reports[0]["job_type"], "Snap Backup");
    assert_eq!(reports[1]["job_type"], "Snap Copy");
    assert_eq!(reports[1]["status"], "Completed", "{}", reports[1]);
    let job = reports[0]["job"].as_u64().unwrap();
    assert!(reports[1]["job"].as_u64().unwrap() > job);

    let east = emu.snapshots("alpha", "us-east-1").await;
    let west = emu.snapshots("alpha", "us-west-2").await;
    let sources: Vec<(&String, &Tags)> = east
        .iter()
        .filter(|(_, t)| job_of(t) == Some(job))
        .collect();
    assert_eq!(sources.len(), 4, "two nightly instances × two volumes");
    for (sid, st) in sources {
        let copies: Vec<&Tags> = west
            .values()
            .filter(|t| {
                t.get("_GX_COPY_OF_").map(String::as_str) == Some(&format!("us-east-1/{sid}"))
            })
            .collect();
        assert_eq!(copies.len(), 1, "exactly one copy of {sid}");
        let ct = copies[0];
        for k in [
            "_GX_BACKUP_",
            "_GX_PLAN_",
            "_GX_SOURCE_",
            "Name",
            "_GX_DEVICES_",
        ] {
            assert_eq!(ct.get(k), st.get(k), "{k} carried to the copy");
        }
    }
    // RDS and Aurora copies too.
    let rds = emu.rds("alpha", "us-west-2").await;
    let dbs = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let copied: Vec<_> = dbs
        .db_snapshots()
        .iter()
        .filter(|s| s.tag_list().iter().any(|t| t.key() == Some("_GX_COPY_OF_")))
        .collect();
    assert_eq!(copied.len(), 1, "the DB snapshot was copied");
    let cl = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert!(cl
        .db_cluster_snapshots()
        .iter()
        .any(|s| s.tag_list().iter().any(|t| t.key() == Some("_GX_COPY_OF_"))));

    // A second copy run finds nothing missing and copies nothing.
    let before = emu.count_calls(ALPHA, "CopySnapshot", "ok");
    let again = emu.run(&[
        "copy",
        "--plan",
        p.to_str().unwrap(),
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(emu.count_calls(ALPHA, "CopySnapshot", "ok"), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_copy_leaves_the_source_and_the_next_run_makes_it() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    emu.fault(json!({"action": "CopySnapshot", "account": ALPHA, "region": "us-west-2", "code": "InvalidParameterValue", "status": 400}));
    let p = emu.write_plan("nightly", plan("snapshot-set", "days = 7", "days = 30"));
    let reports = backup(&emu, &p);
    assert_eq!(reports[0]["status"], "Completed");
    assert_eq!(
        reports[1]["status"], "Completed w/ one or more errors",
        "{}",
        reports[1]
    );
    let failed: Vec<&Value> = reports[1]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Failed")
        .collect();
    assert_eq!(
        failed.len(),
        2,
        "both snapshot sets failed to copy: {failed:?}"
    );
    assert!(failed[0]["error"]
        .as_str()
        .unwrap()
        .contains("InvalidParameterValue"));
    let job = reports[0]["job"].as_u64().unwrap();
    assert_eq!(
        emu.snapshots("alpha", "us-east-1")
            .await
            .values()
            .filter(|t| job_of(t) == Some(job))
            .count(),
        4,
        "sources intact"
    );
    assert!(emu
        .snapshots("alpha", "us-west-2")
        .await
        .values()
        .all(|t| !t.contains_key("_GX_COPY_OF_")));

    emu.control("DELETE", "/_harness/faults", None);
    let run = emu.run(&[
        "copy",
        "--plan",
        p.to_str().unwrap(),
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let made = emu
        .snapshots("alpha", "us-west-2")
        .await
        .values()
        .filter(|t| t.contains_key("_GX_COPY_OF_"))
        .count();
    assert_eq!(made, 4, "the next run made the missing copies");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_refused_for_too_many_copies_in_flight_waits_and_is_made() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    // Other tools' copies fill the destination's 20: AWS refuses the next
    // ones with ResourceLimitExceeded until some finish.
    emu.fault(
        json!({"action": "CopySnapshot", "account": ALPHA, "region": "us-west-2",
        "code": "ResourceLimitExceeded", "status": 400, "count": 3,
        "message": "Too many snapshot copies in progress."}),
    );
    let p = emu.write_plan("nightly", plan("snapshot-set", "days = 7", "days = 30"));
    let reports = backup(&emu, &p);
    assert_eq!(reports[1]["status"], "Completed", "{}", reports[1]);
    let injected: u64 = emu.control("GET", "/_harness/faults", None)["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["injected"].as_u64().unwrap())
        .sum();
    assert_eq!(injected, 3, "the refusals were not exercised");
    let made = emu
        .snapshots("alpha", "us-west-2")
        .await
        .values()
        .filter(|t| t.contains_key("_GX_COPY_OF_"))
        .count();
    assert_eq!(made, 4, "every part of both sets was copied, once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_set_copied_in_part_reports_the_part_and_the_next_run_copies_only_the_rest() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    // One CopySnapshot is refused for good: one part of one snapshot set.
    emu.fault(
        json!({"action": "CopySnapshot", "account": ALPHA, "region": "us-west-2",
        "code": "InvalidParameterValue", "status": 400, "count": 1}),
    );
    let p = emu.write_plan("nightly", plan("snapshot-set", "days = 7", "days = 30"));
    let reports = backup(&emu, &p);
    let failed: Vec<&Value> = reports[1]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Failed")
        .collect();
    assert_eq!(failed.len(), 1, "{}", reports[1]);
    // The part copied all the same is in the report, and in AWS.
    let created: Vec<String> = failed[0]["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(created.len(), 1, "{}", failed[0]);
    let west = emu.snapshots("alpha", "us-west-2").await;
    assert!(west.contains_key(&created[0]), "{created:?} not in AWS");
    assert!(failed[0]["error"]
        .as_str()
        .unwrap()
        .contains("parts copied all the same"));

    let run = emu.run(&[
        "copy",
        "--plan",
        p.to_str().unwrap(),
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(run.code, 0, "{run}");
    // Each source snapshot has exactly one copy: the part made in the first
    // run was not made again.
    let copies: Vec<String> = emu
        .snapshots("alpha", "us-west-2")
        .await
        .values()
        .filter_map(|t| t.get("_GX_COPY_OF_").cloned())
        .collect();
    let unique: BTreeSet<&String> = copies.iter().collect();
    assert_eq!(copies.len(), 4, "{copies:?}");
    assert_eq!(unique.len(), 4, "a part was copied twice: {copies:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_rds_snapshot_aws_is_deleting_is_no_longer_a_recovery_point() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan("snapshot-set", "days = 7", "days = 30"));
    backup(&emu, &p);
    backup(&emu, &p);
    // AWS lists an RDS snapshot it is deleting as "deleting" for minutes.
    emu.config(json!({"linger_deleted_seconds": 600}));
    let as_of = (chrono::Utc::now() + chrono::Duration::days(8)).to_rfc3339();
    let prune = |emu: &Emulator, dry_run: bool| {
        let mut args = vec![
            "prune",
            "--plan",
            p.to_str().unwrap(),
            "--as-of",
            &as_of,
            "-o",
            "json",
        ];
        if dry_run {
            args.push("--dry-run");
        }
        let run = emu.run(&args);
        assert_eq!(run.code, 0, "{run}");
        run.json()
    };
    let first = prune(&emu, false);
    let deleted: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Deleted" && i["kind"] != "snapshot-set")
        .map(|i| i["source_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        deleted.len(),
        2,
        "the first job's DB and cluster snapshots: {first}"
    );
    let rds = emu.rds("alpha", "us-east-1").await;
    let deleting: Vec<String> = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .filter(|s| s.status() == Some("deleting"))
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect();
    assert_eq!(
        deleting.len(),
        1,
        "the layer lists the deleted DB snapshot as deleting"
    );
    assert!(deleted.contains(&deleting[0]));

    // The next prune no longer sees them: not kept as "pending", not
    // deleted again.
    let dry = prune(&emu, true);
    let seen: Vec<&Value> = dry["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["region"] == "us-east-1")
        .filter(|i| deleted.iter().any(|d| i["source_id"] == d.as_str()))
        .collect();
    assert!(seen.is_empty(), "{seen:?}");
    let second = prune(&emu, false);
    assert_eq!(second["status"], "Completed", "{second}");
    let rds_deletes: Vec<_> = emu
        .calls()
        .into_iter()
        .filter(|c| c.2 == "DeleteDBSnapshot" || c.2 == "DeleteDBClusterSnapshot")
        .collect();
    assert!(
        rds_deletes.iter().all(|c| c.3 == "ok" && c.4 == 1),
        "{rds_deletes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_point_is_pruned_once_a_newer_point_of_its_source_completed() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", ebs_plan());
    let backup_no_copy = || {
        let run = emu.backup(&p, &["--no-copy"]);
        run.json()
    };
    // The first backup's snapshots end in AWS's error state.
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "region": "us-east-1", "kinds": ["snapshot"]})),
    );
    let first = std::thread::scope(|s| {
        let run = s.spawn(backup_no_copy);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline
            && emu.control("GET", "/_harness/hold", None)["held"]
                .as_array()
                .unwrap()
                .len()
                < 4
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        emu.control(
            "POST",
            "/_harness/release",
            Some(json!({"all": true, "fail": true})),
        );
        run.join().unwrap()
    });
    let failed: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Failed")
        .flat_map(|i| i["created"].as_array().unwrap().clone())
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(failed.len(), 4, "two sets of two snapshots failed: {first}");
    let prune = || {
        let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
        assert_eq!(run.code, 0, "{run}");
    };
    // Nothing newer of their sources yet: kept (what completed in a set may
    // be all there is).
    prune();
    let east = emu.snapshots("alpha", "us-east-1").await;
    assert!(failed.iter().all(|id| east.contains_key(id)), "{failed:?}");

    let second = backup_no_copy();
    assert_eq!(second["status"], "Completed", "{second}");
    prune();
    let east = emu.snapshots("alpha", "us-east-1").await;
    let left: Vec<&String> = failed.iter().filter(|id| east.contains_key(*id)).collect();
    assert!(left.is_empty(), "failed snapshots left: {left:?}");
    let job = second["job"].as_u64().unwrap();
    assert_eq!(
        east.values().filter(|t| job_of(t) == Some(job)).count(),
        4,
        "the second backup's points stay"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_expired_points_by_each_region_rule_and_spares_the_rest() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan("snapshot-set", "days = 7", "days = 30"));
    let first = backup(&emu, &p)[0]["job"].as_u64().unwrap();
    let second = backup(&emu, &p)[0]["job"].as_u64().unwrap();

    // Things prune must never touch, aged like the first job.
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let vol = emu.tenant("alpha")["resources"]["us-east-1"]["instances"][0]["volumes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let mut bystanders = Vec::new();
    for tags in [
        vec![], // untagged
        vec![
            tag("_GX_BACKUP_", "1"),
            tag("_GX_PLAN_", "other"),
            tag("_GX_SOURCE_", "i-x"),
        ], // other plan
        vec![tag("_GX_PLAN_", "nightly"), tag("_GX_SOURCE_", "i-y")], // no marker
    ] {
        let mut req = ec2.create_snapshot().volume_id(&vol);
        if !tags.is_empty() {
            req = req.tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Snapshot)
                    .set_tags(Some(tags))
                    .build(),
            );
        }
        bystanders.push(req.send().await.unwrap().snapshot_id().unwrap().to_string());
    }
    // One of the first job's sets is held by a person.
    let east = emu.snapshots("alpha", "us-east-1").await;
    let first_east: Vec<String> = east
        .iter()
        .filter(|(_, t)| job_of(t) == Some(first))
        .map(|(i, _)| i.clone())
        .collect();
    let held_source = east[&first_east[0]]["_GX_SOURCE_"].clone();
    let held: Vec<String> = first_east
        .iter()
        .filter(|i| east[*i]["_GX_SOURCE_"] == held_source)
        .cloned()
        .collect();
    ec2.create_tags()
        .resources(&held[0])
        .tags(tag("CV_Retain_Snap", "audit"))
        .send()
        .await
        .unwrap();

    let west = emu.snapshots("alpha", "us-west-2").await;
    let first_west: Vec<String> = west
        .iter()
        .filter(|(_, t)| job_of(t) == Some(first))
        .map(|(i, _)| i.clone())
        .collect();
    assert_eq!(first_west.len(), 4);
    let mut all_aged = first_east.clone();
    all_aged.extend(bystanders.clone());
    emu.age(ALPHA, "us-east-1", &all_aged, 10);
    emu.age(ALPHA, "us-west-2", &first_west, 10);

    // Dry run: says what it would do, deletes nothing.
    let dry = emu.run(&[
        "prune",
        "--plan",
        p.to_str().unwrap(),
        "--dry-run",
        "-o",
        "json",
    ]);
    assert_eq!(dry.code, 0, "{dry}");
    let dry_report = dry.json();
    let would: Vec<&Value> = dry_report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "WouldDelete")
        .collect();
    assert_eq!(
        would.len(),
        1,
        "only the unheld first-job set in the source region: {would:?}"
    );
    assert_eq!(
        emu.snapshots("alpha", "us-east-1").await.len(),
        east.len(),
        "a dry run deletes nothing"
    );

    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["job_type"], "Data Aging");
    let after_east = emu.snapshots("alpha", "us-east-1").await;
    let after_west = emu.snapshots("alpha", "us-west-2").await;
    for id in &first_east {
        let kept = held.contains(id);
        assert_eq!(
            after_east.contains_key(id),
            kept,
            "{id}: held sets survive, expired ones go"
        );
    }
    for id in &bystanders {
        assert!(after_east.contains_key(id), "{id}: not ours, never deleted");
    }
    assert!(
        after_east
            .values()
            .filter(|t| job_of(t) == Some(second))
            .count()
            == 4,
        "the second job is young"
    );
    for id in &first_west {
        assert!(
            after_west.contains_key(id),
            "{id}: copies keep 30 days, 10 is not enough to expire"
        );
    }
    let bkp = emu.log_file("vsbkp.log");
    assert!(
        bkp.contains("CVDataAging::Run() - Deleting snapshot-set"),
        "each delete logged with its rule: {bkp}"
    );

    // At an as-of 40 days ahead, the copy rule expires the first job's copies,
    // and the second job's survive as the newest points of live instances.
    let later = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    // The dry run lists each kept point with the rule that kept it.
    let dry = emu.run(&[
        "prune",
        "--plan",
        p.to_str().unwrap(),
        "--as-of",
        &later,
        "--dry-run",
        "-o",
        "json",
    ]);
    assert_eq!(dry.code, 0, "{dry}");
    let dry_items = dry.json()["items"].as_array().unwrap().clone();
    let run = emu.run(&[
        "prune",
        "--plan",
        p.to_str().unwrap(),
        "--as-of",
        &later,
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let after_west = emu.snapshots("alpha", "us-west-2").await;
    for id in &first_west {
        assert!(!after_west.contains_key(id), "{id}: expired copy deleted");
    }
    assert_eq!(
        after_west
            .values()
            .filter(|t| job_of(t) == Some(second))
            .count(),
        4
    );
    let newest = dry_items
        .iter()
        .find(|i| i["status"] == "Kept" && i["detail"]["job"] == second)
        .unwrap();
    assert!(
        newest["detail"]["rule"]
            .as_str()
            .unwrap()
            .contains("newest"),
        "{newest}"
    );
    // The prune itself itemizes what it deleted and counts what it kept,
    // per tenant × region, in its summary.
    let report = run.json();
    let items = report["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["status"] != "Kept"), "{report}");
    let kept_west: u64 = report["summary"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "Kept" && s["region"] == "us-west-2")
        .map(|s| s["count"].as_u64().unwrap())
        .sum();
    // The same decisions as the dry run's, at the same as-of.
    let dry_kept_west = dry_items
        .iter()
        .filter(|i| i["status"] == "Kept" && i["region"] == "us-west-2")
        .count() as u64;
    assert_eq!(kept_west, dry_kept_west, "{report}");
    // Among them the second job's two snapshot sets, still in AWS.
    let still_west = after_west
        .values()
        .filter(|t| job_of(t) == Some(second))
        .count() as u64;
    assert!(kept_west * 2 >= still_west, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pruning_an_ami_leaves_no_orphaned_snapshot() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan(
        "nightly",
        plan("ami", "days = 7", "days = 7")
            .no_database_lines()
            .no_copy(),
    );
    let first = backup(&emu, &p)[0]["job"].as_u64().unwrap();
    backup(&emu, &p);
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let images = ec2.describe_images().owners("self").send().await.unwrap();
    let old: Vec<(String, Vec<String>)> = images
        .images()
        .iter()
        .filter(|i| tags_of(i.tags()).get("_GX_BACKUP_") == Some(&first.to_string()))
        .map(|i| {
            (
                i.image_id().unwrap().to_string(),
                i.block_device_mappings()
                    .iter()
                    .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_string))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(old.len(), 2);
    let mut ids: Vec<String> = old.iter().map(|(i, _)| i.clone()).collect();
    ids.extend(old.iter().flat_map(|(_, s)| s.clone()));
    emu.age(ALPHA, "us-east-1", &ids, 10);
    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let images = ec2.describe_images().owners("self").send().await.unwrap();
    let left: Vec<&str> = images
        .images()
        .iter()
        .filter_map(|i| i.image_id())
        .collect();
    let snaps = emu.snapshots("alpha", "us-east-1").await;
    for (image, backing) in &old {
        assert!(!left.contains(&image.as_str()), "{image} deregistered");
        for s in backing {
            assert!(
                !snaps.contains_key(s),
                "{s} of {image} deleted, not orphaned"
            );
        }
    }
    assert_eq!(left.len(), 2, "the second job's images stay");
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_refuses_a_copy_of_an_encrypted_source_without_a_destination_key() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let id = emu
        .run_selected_instances("alpha", "us-east-1", 1, &["/dev/xvda"], true)
        .await
        .remove(0);
    let p = emu.write_plan("nightly", plan("snapshot-set", "days = 7", "days = 30"));
    let v = emu.run(&["validate", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(v.code, 3, "the only tenant fails: {v}");
    let row = &v.json()["tenants"][0];
    assert_eq!(row["error_code"], "MissingKmsKey");
    assert!(row["error"].as_str().unwrap().contains(&id), "{row}");
    assert!(
        row["error"].as_str().unwrap().contains("us-west-2"),
        "{row}"
    );
    let with_key = plan("snapshot-set", "days = 7", "days = 30").copy(
        "us-west-2",
        "retention = { days = 30 }\nkms-key-id = \"arn:aws:kms:us-west-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab\"",
    );
    let p = emu.write_plan("nightly", &with_key);
    let v = emu.run(&["validate", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(v.code, 0, "{v}");
}

/// The plan without RDS and Aurora: only EBS copies are ever in flight.
fn ebs_plan() -> PlanText {
    plan("snapshot-set", "days = 7", "days = 30").no_database_lines()
}

/// Calls of one action by the tenant in one region.
fn calls_in(emu: &Emulator, region: &str, action: &str) -> u64 {
    emu.calls()
        .iter()
        .filter(|c| c.0 == ALPHA && c.1 == region && c.2 == action)
        .map(|c| c.4)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_copy_job_waits_by_asking_only_about_the_copies_in_flight() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", ebs_plan());
    // Six nights without copies: 6 × 2 sets × 2 volumes = 24 snapshots to copy,
    // more than one window of 20.
    for _ in 0..6 {
        let run = emu.run(&[
            "backup",
            "--plan",
            p.to_str().unwrap(),
            "--no-copy",
            "--poll-interval",
            "0.2",
            "-q",
        ]);
        assert_eq!(run.code, 0, "{run}");
    }
    emu.control("DELETE", "/_harness/calls", None);
    let run = emu.run(&[
        "copy",
        "--plan",
        p.to_str().unwrap(),
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 12, "{report}");
    assert!(items.iter().all(|i| i["status"] == "Completed"), "{report}");
    assert_eq!(calls_in(&emu, "us-west-2", "CopySnapshot"), 24);
    // The destination's catalog is listed once, at the start; waiting asks
    // only about the kinds in flight (here EBS), by id.
    for action in [
        "DescribeImages",
        "DescribeDBSnapshots",
        "DescribeDBClusterSnapshots",
    ] {
        assert_eq!(
            calls_in(&emu, "us-west-2", action),
            1,
            "{action}: one listing, no poll of a kind with nothing in flight"
        );
    }
    // One listing, then a poll or two per window of 20 copies.
    let describes = calls_in(&emu, "us-west-2", "DescribeSnapshots");
    assert!(
        (2..=1 + 2 * 2).contains(&describes),
        "{describes} DescribeSnapshots for 24 copies: {:?}",
        emu.calls()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_deleted_while_in_flight_fails_alone_and_the_next_run_makes_it() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", ebs_plan());
    let run = emu.run(&[
        "backup",
        "--plan",
        p.to_str().unwrap(),
        "--no-copy",
        "--poll-interval",
        "0.2",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{run}");
    // Copies stay pending until released.
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "region": "us-west-2", "kinds": ["snapshot"]})),
    );
    let child = emu
        .rolesnap()
        .args([
            "copy",
            "--plan",
            p.to_str().unwrap(),
            "-o",
            "json",
            "--poll-interval",
            "0.2",
            "--wait-timeout",
            "300",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !emu
        .log_file("vsbkp.log")
        .contains("copy(ies) in [alpha/us-west-2]")
    {
        assert!(std::time::Instant::now() < until, "the copy never waited");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let copies: Vec<(String, Tags)> = emu
        .snapshots("alpha", "us-west-2")
        .await
        .into_iter()
        .filter(|(_, t)| t.contains_key("_GX_COPY_OF_"))
        .collect();
    assert_eq!(copies.len(), 4, "{copies:?}");
    let (deleted, deleted_tags) = &copies[0];
    emu.ec2("alpha", "us-west-2")
        .await
        .delete_snapshot()
        .snapshot_id(deleted)
        .send()
        .await
        .unwrap();
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
    let run = crate::harness::Run::from(child.wait_with_output().unwrap());
    let report = run.json();
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{report}");
    let failed: Vec<&Value> = items.iter().filter(|i| i["status"] == "Failed").collect();
    assert_eq!(
        failed.len(),
        1,
        "only the set with the deleted copy: {report}"
    );
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains(deleted.as_str()) && error.contains("no longer listed"),
        "{error}"
    );
    assert!(
        items.iter().any(|i| i["status"] == "Completed"),
        "the other set completed: {report}"
    );
    // The next run copies only the missing snapshot.
    let again = emu.run(&[
        "copy",
        "--plan",
        p.to_str().unwrap(),
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(again.code, 0, "{again}");
    let mut of: Vec<String> = emu
        .snapshots("alpha", "us-west-2")
        .await
        .values()
        .filter_map(|t| t.get("_GX_COPY_OF_").cloned())
        .collect();
    of.sort();
    assert!(of.contains(&deleted_tags["_GX_COPY_OF_"]), "{of:?}");
    let n = of.len();
    of.dedup();
    assert_eq!((n, of.len()), (4, 4), "one copy per snapshot: {of:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_copy_job_lists_each_region_once_when_it_is_both_a_source_and_a_destination() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    // Each region backed up and copied into the other: both are sources of
    // the copy job and both are destinations.
    let body = plan("snapshot-set", "days = 7", "days = 30")
        .regions(&["us-east-1", "us-west-2"])
        .copy("us-east-1", "retention = { days = 30 }");
    let p = emu.write_plan("nightly", body);
    let reports = emu.backup_completed(&p);
    assert_eq!(reports.len(), 2, "a backup job, then a Snap Copy job");
    // Every original has its copy in the other region (AWS's state).
    for (from, to) in [("us-east-1", "us-west-2"), ("us-west-2", "us-east-1")] {
        let originals: BTreeSet<String> = emu
            .snapshots("alpha", from)
            .await
            .into_iter()
            .filter(|(_, t)| !t.contains_key("_GX_COPY_OF_"))
            .map(|(id, _)| id)
            .collect();
        let copied: BTreeSet<String> = emu
            .snapshots("alpha", to)
            .await
            .into_values()
            .filter_map(|t| t.get("_GX_COPY_OF_").cloned())
            .filter_map(|c| c.strip_prefix(&format!("{from}/")).map(str::to_string))
            .collect();
        assert!(!originals.is_empty(), "{from} has points");
        assert!(
            originals
                .iter()
                .all(|o| copied.iter().any(|c| c.contains(o))),
            "every original of {from} is copied to {to}: {originals:?} / {copied:?}"
        );
    }
    // Again, with nothing left to copy: what the job asks is its listings.
    emu.control("DELETE", "/_harness/calls", None);
    let run = emu.run(&["copy", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    for region in ["us-east-1", "us-west-2"] {
        assert_eq!(calls_in(&emu, region, "CopySnapshot"), 0);
        for action in [
            "DescribeSnapshots",
            "DescribeImages",
            "DescribeDBSnapshots",
            "DescribeDBClusterSnapshots",
        ] {
            assert_eq!(
                calls_in(&emu, region, action),
                1,
                "{region} {action}: one listing serves as source and as destination: {:?}",
                emu.calls()
            );
        }
    }
}
