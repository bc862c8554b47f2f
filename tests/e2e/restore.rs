//! Restore jobs: `rolesnap restore instance|volume|rds`, checked through the
//! emulator's API as the tenant (alpha), never through rolesnap's output alone.
//!
//! moto differences these tests live with (tests/emulator/README.md):
//! * RegisterImage ignores its BlockDeviceMappings, RootDeviceName and
//!   TagSpecifications and makes one untagged placeholder snapshot. rolesnap
//!   tags the image again with CreateTags, and repeats the image's data
//!   mappings in RunInstances (valid in AWS too), so the restored data volume
//!   really comes from the backup's snapshot; the root volume is listed with
//!   its size and type only (AWS takes its snapshot from the image), so in
//!   moto it is blank.
//! * An instance launched from a CreateImage AMI gets one /dev/sda1 volume.
//! * ClientToken is not idempotent; DetachVolume needs the InstanceId;
//!   AttachVolume does not refuse a device in use (rolesnap checks first).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use serde_json::{json, Value};

use crate::harness::{rds_tags_of, s, tags_of, Emulator, PlanText, Run, Tags};

const ALPHA: &str = "222222222222";
const EAST: &str = "us-east-1";
const WEST: &str = "us-west-2";

/// Plan `nightly` (id 2) of alpha's us-east-1 with databases, copied to
/// us-west-2 when `copy`.
fn plan(method: &str, copy: bool) -> PlanText {
    let p = PlanText::new().method(method).databases(true);
    if copy {
        p.copy("us-west-2", "")
    } else {
        p
    }
}

fn tag(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// A seeded instance of alpha in us-east-1 by its Name suffix (`app1`…).
fn seeded(emu: &Emulator, app: &str) -> Value {
    emu.tenant("alpha")["resources"][EAST]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"].as_str().unwrap().ends_with(app))
        .unwrap()
        .clone()
}

fn setup(emu: &Emulator, method: &str, copy: bool) -> std::path::PathBuf {
    emu.write_accounts(&["alpha"], &[]);
    emu.write_plan("nightly", plan(method, copy))
}

/// Runs a backup (and its copy, when the plan has one); returns the backup's job number.
fn backup(emu: &Emulator, p: &std::path::Path) -> u64 {
    emu.backup_completed(p)[0]["job"].as_u64().unwrap()
}

fn restore(emu: &Emulator, p: &std::path::Path, args: &[&str]) -> (Run, Value) {
    let run = emu.restore(p, "alpha", args);
    let json = run.json();
    (run, json)
}

fn job_of(report: &Value) -> String {
    report["job"].as_u64().unwrap().to_string()
}

/// `rolesnap jobs --job N`, as JSON.
fn job_record(emu: &Emulator, job: &str) -> Value {
    let run = emu.run(&["jobs", "--job", job, "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    run.json()
}

async fn instance(emu: &Emulator, region: &str, id: &str) -> aws_sdk_ec2::types::Instance {
    let ec2 = emu.ec2("alpha", region).await;
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0].clone()
}

/// What must not change on an original: state, (device, volume) pairs, tags.
async fn fingerprint(emu: &Emulator, id: &str) -> (String, Vec<(String, String)>, Tags) {
    let i = instance(emu, EAST, id).await;
    let mut devices: Vec<(String, String)> = i
        .block_device_mappings()
        .iter()
        .map(|m| {
            (
                m.device_name().unwrap().to_string(),
                m.ebs().unwrap().volume_id().unwrap().to_string(),
            )
        })
        .collect();
    devices.sort();
    (
        i.state().unwrap().name().unwrap().as_str().to_string(),
        devices,
        tags_of(i.tags()),
    )
}

/// The volumes attached to an instance: device → volume.
async fn attached(
    emu: &Emulator,
    region: &str,
    id: &str,
) -> BTreeMap<String, aws_sdk_ec2::types::Volume> {
    let ec2 = emu.ec2("alpha", region).await;
    let out = ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.volumes()
        .iter()
        .map(|v| {
            let dev = v
                .attachments()
                .iter()
                .find(|a| a.instance_id() == Some(id))
                .unwrap()
                .device()
                .unwrap()
                .to_string();
            (dev, v.clone())
        })
        .collect()
}

/// The backup's snapshot of a volume in a region (in a copy region: the copy of it).
async fn snapshot_of(emu: &Emulator, job: u64, volume: &str) -> String {
    let ec2 = emu.ec2("alpha", EAST).await;
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(tag("_GX_BACKUP_", &job.to_string()))
        .filters(Filter::builder().name("volume-id").values(volume).build())
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.snapshots().len(),
        1,
        "one snapshot of {volume} in job {job}"
    );
    out.snapshots()[0].snapshot_id().unwrap().to_string()
}

/// Everything left in a region that carries `_GX_BACKUP_=job`:
/// (live instances, volumes, images, snapshots).
async fn leftovers(emu: &Emulator, region: &str, job: &str) -> (usize, usize, usize, usize) {
    let ec2 = emu.ec2("alpha", region).await;
    let inst = ec2
        .describe_instances()
        .filters(tag("_GX_BACKUP_", job))
        .send()
        .await
        .unwrap();
    let live = inst
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().unwrap().name().unwrap().as_str() != "terminated")
        .count();
    let vols = ec2
        .describe_volumes()
        .filters(tag("_GX_BACKUP_", job))
        .send()
        .await
        .unwrap();
    let imgs = ec2
        .describe_images()
        .owners("self")
        .filters(tag("_GX_BACKUP_", job))
        .send()
        .await
        .unwrap();
    let snaps = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(tag("_GX_BACKUP_", job))
        .send()
        .await
        .unwrap();
    (
        live,
        vols.volumes().len(),
        imgs.images().len(),
        snaps.snapshots().len(),
    )
}

fn assert_provenance(t: &Tags, job: &str, source: &str, point: &str) {
    assert_eq!(t.get("_GX_BACKUP_").map(String::as_str), Some(job), "{t:?}");
    assert_eq!(
        t.get("_GX_SOURCE_").map(String::as_str),
        Some(source),
        "{t:?}"
    );
    assert_eq!(
        t.get("_GX_RESTORED_FROM_").map(String::as_str),
        Some(point),
        "{t:?}"
    );
    assert!(t.contains_key("Name"), "{t:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_restored_from_a_snapshot_set_has_the_recorded_configuration() {
    let emu = Emulator::start();
    let p = setup(&emu, "snapshot-set", false);
    let job = backup(&emu, &p);
    // app2: t3.small in the b subnet, so that the defaults are visibly the recorded ones.
    let src = seeded(&emu, "app2");
    let src_id = s(&src["id"]);
    let before = fingerprint(&emu, src_id).await;

    // A dry run says what it would do and touches nothing.
    let (dry, report) = restore(&emu, &p, &["instance", "--instance", src_id, "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert_eq!(report["dry_run"], true);
    let calls: Vec<&str> = report["calls"].as_array().unwrap().iter().map(s).collect();
    assert!(calls[0].starts_with("RegisterImage"), "{calls:?}");
    assert!(calls[1].starts_with("RunInstances") && calls[1].contains("t3.small"));
    for action in [
        "RegisterImage",
        "RunInstances",
        "CreateTags",
        "DeregisterImage",
    ] {
        assert_eq!(
            emu.count_calls(ALPHA, action, "ok") + emu.count_calls(ALPHA, action, "error"),
            0,
            "dry run called {action}"
        );
    }
    let jobs = emu.run(&["jobs", "-o", "json"]).json();
    assert!(
        !jobs
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["job_type"] == "Restore"),
        "a dry run records no job: {jobs}"
    );

    let (run, report) = restore(&emu, &p, &["instance", "--instance", src_id]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(report["status"], "Completed");
    let rjob = job_of(&report);
    assert_eq!(report["recovery_point"]["job"], job);
    assert_eq!(report["recovery_point"]["kind"], "snapshot-set");
    let point = s(&report["recovery_point"]["id"]).to_string();
    let new_id = s(&report["restored"]["instance_id"]).to_string();
    assert_ne!(new_id, src_id);

    // The new instance, as the tenant sees it.
    let i = instance(&emu, EAST, &new_id).await;
    assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
    assert_eq!(i.instance_type().unwrap().as_str(), "t3.small");
    assert_eq!(i.subnet_id(), src["subnet"].as_str());
    assert_eq!(
        i.placement().unwrap().availability_zone(),
        src["az"].as_str()
    );
    let sgs: Vec<&str> = i
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    assert_eq!(
        sgs,
        vec![s(
            &emu.tenant("alpha")["resources"][EAST]["security_group_id"]
        )]
    );
    assert_eq!(
        i.key_name(),
        emu.tenant("alpha")["resources"][EAST]["key_name"].as_str()
    );
    let t = tags_of(i.tags());
    assert_provenance(&t, &rjob, src_id, &point);
    assert_eq!(t["Name"], format!("alpha-us-east-1-app2-restored-{rjob}"));
    // The source's own tags came along, except the plan's selection tag
    // (Backup=nightly would make the next backup select the restore).
    assert!(!t.contains_key("Backup"), "{t:?}");
    assert_eq!(t["Tenant"], "alpha");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("except the plan's selection tags (Backup=nightly)"),
        "{notes}"
    );
    // Each snapshot went back to its device: the data volume is made from the
    // backup's snapshot of the original /dev/sdf (moto leaves the root blank).
    let vols = attached(&emu, EAST, &new_id).await;
    assert_eq!(
        vols.keys().cloned().collect::<Vec<_>>(),
        vec!["/dev/sdf".to_string(), "/dev/xvda".to_string()]
    );
    let src_sdf = src["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["device"] == "/dev/sdf")
        .unwrap();
    let sdf = &vols["/dev/sdf"];
    assert_eq!(
        sdf.snapshot_id(),
        Some(snapshot_of(&emu, job, s(&src_sdf["id"])).await.as_str())
    );
    assert_eq!(
        i64::from(sdf.size().unwrap()),
        src_sdf["size"].as_i64().unwrap()
    );
    assert_eq!(vols["/dev/xvda"].size(), Some(8));
    for v in vols.values() {
        assert_provenance(&tags_of(v.tags()), &rjob, src_id, &point);
    }
    // The registered image was only a vehicle: gone, so it pins no snapshot.
    assert_eq!(emu.count_calls(ALPHA, "RegisterImage", "ok"), 1);
    assert_eq!(emu.count_calls(ALPHA, "DeregisterImage", "ok"), 1);
    let (_, _, images, _) = leftovers(&emu, EAST, &rjob).await;
    assert_eq!(images, 0);
    // The original is untouched.
    assert_eq!(fingerprint(&emu, src_id).await, before);
    // A Restore job in the ledger, and vsrst.log lines.
    let rec = job_record(&emu, &rjob);
    assert_eq!(rec["job"]["job_type"], "Restore");
    assert_eq!(rec["job"]["status"], "Completed");
    assert!(rec["items"][0]["created"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == &json!(new_id)));
    let log = emu.log_file("vsrst.log");
    assert!(
        log.contains(&format!(
            " {rjob} CVRestore::Run() - Restore job [{rjob}] started"
        )),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_restored_from_an_ami_point_takes_overrides() {
    let emu = Emulator::start();
    let p = setup(&emu, "ami", false);
    let first = backup(&emu, &p);
    let second = backup(&emu, &p);
    let src = seeded(&emu, "app1");
    let src_id = s(&src["id"]);
    let before = fingerprint(&emu, src_id).await;
    // The AMI of the first backup, as the tenant sees it.
    let ec2 = emu.ec2("alpha", EAST).await;
    let amis = ec2
        .describe_images()
        .owners("self")
        .filters(tag("_GX_BACKUP_", &first.to_string()))
        .filters(tag("_GX_SOURCE_", src_id))
        .send()
        .await
        .unwrap();
    let ami = amis.images()[0].image_id().unwrap().to_string();

    let (run, report) = restore(
        &emu,
        &p,
        &[
            "instance",
            "--instance",
            src_id,
            "--job",
            &first.to_string(),
            "--instance-type",
            "t3.large",
            "--no-tags",
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_ne!(first, second);
    assert_eq!(
        report["recovery_point"]["job"], first,
        "--job picks the older point"
    );
    assert_eq!(report["recovery_point"]["id"], json!(ami));
    let rjob = job_of(&report);
    let new_id = s(&report["restored"]["instance_id"]);
    let i = instance(&emu, EAST, new_id).await;
    assert_eq!(i.image_id(), Some(ami.as_str()), "launched from the AMI");
    assert_eq!(
        i.instance_type().unwrap().as_str(),
        "t3.large",
        "overridden"
    );
    assert_eq!(i.subnet_id(), src["subnet"].as_str(), "recorded");
    let t = tags_of(i.tags());
    assert_provenance(&t, &rjob, src_id, &ami);
    assert!(!t.contains_key("Backup"), "--no-tags: {t:?}");
    // No image is registered for an AMI point.
    assert_eq!(emu.count_calls(ALPHA, "RegisterImage", "ok"), 0);
    assert_eq!(fingerprint(&emu, src_id).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_volume_is_restored_into_the_targets_az_and_a_busy_device_is_refused() {
    let emu = Emulator::start();
    let p = setup(&emu, "snapshot-set", false);
    let job = backup(&emu, &p);
    let app1 = seeded(&emu, "app1");
    let app2 = seeded(&emu, "app2");
    let app3 = seeded(&emu, "app3");
    let vol = s(&app1["volumes"][1]["id"]).to_string();
    assert_eq!(app1["volumes"][1]["device"], "/dev/sdf");
    let snap = snapshot_of(&emu, job, &vol).await;
    let app3_id = s(&app3["id"]);
    let app3_before = fingerprint(&emu, app3_id).await;

    // /dev/sdf is in use on app3: refused, nothing created.
    let (run, report) = restore(
        &emu,
        &p,
        &[
            "volume",
            "--volume",
            &vol,
            "--attach-to",
            app3_id,
            "--device",
            "/dev/sdf",
        ],
    );
    assert_eq!(run.code, 5, "{run}");
    assert_eq!(report["status"], "Failed");
    assert_eq!(
        report["refused"], true,
        "a refusal before anything was made"
    );
    assert!(
        s(&report["error"]).contains("in use"),
        "{}",
        report["error"]
    );
    assert_eq!(
        emu.count_calls(ALPHA, "CreateVolume", "ok")
            + emu.count_calls(ALPHA, "CreateVolume", "error"),
        0
    );
    assert_eq!(leftovers(&emu, EAST, &job_of(&report)).await, (0, 0, 0, 0));
    assert_eq!(
        job_record(&emu, &job_of(&report))["job"]["status"],
        "Failed"
    );
    assert_eq!(fingerprint(&emu, app3_id).await, app3_before);

    // A free device: the volume lands in app3's AZ, attached there.
    let (run, report) = restore(
        &emu,
        &p,
        &[
            "volume",
            "--volume",
            &vol,
            "--attach-to",
            app3_id,
            "--device",
            "/dev/sdh",
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    let rjob = job_of(&report);
    let new_vol = s(&report["restored"]["volume_id"]).to_string();
    let on3 = attached(&emu, EAST, app3_id).await;
    let v = &on3["/dev/sdh"];
    assert_eq!(v.volume_id(), Some(new_vol.as_str()));
    assert_eq!(v.availability_zone(), app3["az"].as_str());
    assert_eq!(v.snapshot_id(), Some(snap.as_str()));
    assert_eq!(v.attachments()[0].state().unwrap().as_str(), "attached");
    assert_provenance(&tags_of(v.tags()), &rjob, &vol, &snap);
    assert_eq!(tags_of(v.tags())["Name"], format!("{vol}-restored-{rjob}"));
    // app3's own volumes are where they were.
    for (dev, id) in &app3_before.1 {
        assert_eq!(on3[dev].volume_id(), Some(id.as_str()));
    }

    // Another AZ: app2 is in b. Without --device the recorded /dev/sdf is taken
    // on app2, so the first free one is used.
    let (run, report) = restore(
        &emu,
        &p,
        &["volume", "--volume", &vol, "--attach-to", s(&app2["id"])],
    );
    assert_eq!(run.code, 0, "{run}");
    let on2 = attached(&emu, EAST, s(&app2["id"])).await;
    let v = &on2["/dev/sdg"];
    assert_eq!(v.volume_id(), report["restored"]["volume_id"].as_str());
    assert_eq!(v.availability_zone(), Some("us-east-1b"));

    // A new small instance in the recorded AZ and subnet.
    let (run, report) = restore(
        &emu,
        &p,
        &[
            "volume",
            "--volume",
            &vol,
            "--new-instance",
            "--image-id",
            s(&emu.fixture["image_id"]),
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    let rjob = job_of(&report);
    let host = s(&report["restored"]["attached_to"]);
    let i = instance(&emu, EAST, host).await;
    assert_eq!(i.instance_type().unwrap().as_str(), "t3.micro");
    assert_eq!(i.subnet_id(), app1["subnet"].as_str());
    assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
    assert_eq!(tags_of(i.tags())["_GX_BACKUP_"], rjob);
    let on_host = attached(&emu, EAST, host).await;
    let v = &on_host["/dev/sdf"];
    assert_eq!(v.snapshot_id(), Some(snap.as_str()));
    assert_eq!(v.availability_zone(), app1["az"].as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn rds_and_aurora_restores_make_new_databases_and_never_overwrite() {
    let emu = Emulator::start();
    let p = setup(&emu, "snapshot-set", false);
    let job = backup(&emu, &p);
    let rds = emu.rds("alpha", EAST).await;

    let (run, report) = restore(
        &emu,
        &p,
        &[
            "rds",
            "--db",
            "alpha-pg",
            "--target-id",
            "alpha-pg-restored",
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    let rjob = job_of(&report);
    assert_eq!(report["recovery_point"]["job"], job);
    let d = rds
        .describe_db_instances()
        .db_instance_identifier("alpha-pg-restored")
        .send()
        .await
        .unwrap();
    let d = &d.db_instances()[0];
    assert_eq!(d.db_instance_status(), Some("available"));
    assert_eq!(
        d.db_instance_class(),
        Some("db.t3.micro"),
        "the recorded class"
    );
    assert_eq!(d.engine(), Some("postgres"));
    assert_provenance(
        &rds_tags_of(d.tag_list()),
        &rjob,
        "alpha-pg",
        s(&report["recovery_point"]["id"]),
    );
    assert_eq!(rds_tags_of(d.tag_list())["Name"], "alpha-pg-restored");
    // The original is still there.
    let orig = rds
        .describe_db_instances()
        .db_instance_identifier("alpha-pg")
        .send()
        .await
        .unwrap();
    assert_eq!(
        orig.db_instances()[0].db_instance_status(),
        Some("available")
    );

    // Aurora: the cluster, then its writer.
    let (run, report) = restore(
        &emu,
        &p,
        &[
            "rds",
            "--cluster",
            "alpha-aurora",
            "--target-id",
            "alpha-aurora-restored",
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    let cjob = job_of(&report);
    let c = rds
        .describe_db_clusters()
        .db_cluster_identifier("alpha-aurora-restored")
        .send()
        .await
        .unwrap();
    let c = &c.db_clusters()[0];
    assert_eq!(c.status(), Some("available"));
    assert_eq!(c.engine(), Some("aurora-postgresql"));
    assert_eq!(rds_tags_of(c.tag_list())["_GX_BACKUP_"], cjob);
    let writer = c
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer() == Some(true))
        .unwrap();
    assert_eq!(
        writer.db_instance_identifier(),
        Some("alpha-aurora-restored-1")
    );
    let w = rds
        .describe_db_instances()
        .db_instance_identifier("alpha-aurora-restored-1")
        .send()
        .await
        .unwrap();
    let w = &w.db_instances()[0];
    assert_eq!(w.db_instance_status(), Some("available"));
    assert_eq!(w.db_cluster_identifier(), Some("alpha-aurora-restored"));
    assert_eq!(
        w.db_instance_class(),
        Some("db.t3.medium"),
        "the source writer's class"
    );
    assert_eq!(rds_tags_of(w.tag_list())["_GX_BACKUP_"], cjob);

    // Existing identifiers are refused before anything is created.
    let restores = |action: &str| {
        emu.count_calls(ALPHA, action, "ok") + emu.count_calls(ALPHA, action, "error")
    };
    let (db_before, cl_before) = (
        restores("RestoreDBInstanceFromDBSnapshot"),
        restores("RestoreDBClusterFromSnapshot"),
    );
    for (args, what) in [
        (
            vec!["rds", "--db", "alpha-pg", "--target-id", "alpha-pg"],
            "alpha-pg",
        ),
        (
            vec![
                "rds",
                "--db",
                "alpha-pg",
                "--target-id",
                "alpha-pg-restored",
            ],
            "alpha-pg-restored",
        ),
        (
            vec![
                "rds",
                "--cluster",
                "alpha-aurora",
                "--target-id",
                "alpha-aurora",
            ],
            "alpha-aurora",
        ),
    ] {
        let (run, report) = restore(&emu, &p, &args);
        assert_eq!(run.code, 5, "{run}");
        let e = s(&report["error"]);
        assert!(e.contains("already exists") && e.contains(what), "{e}");
        assert!(report["created"].as_array().unwrap().is_empty());
    }
    assert_eq!(restores("RestoreDBInstanceFromDBSnapshot"), db_before);
    assert_eq!(restores("RestoreDBClusterFromSnapshot"), cl_before);
    assert_eq!(
        emu.count_calls(ALPHA, "DeleteDBInstance", "ok")
            + emu.count_calls(ALPHA, "DeleteDBCluster", "ok"),
        0,
        "a refusal deletes nothing"
    );

    // The writer cannot be created: the restored cluster is deleted again.
    emu.fault(json!({"action": "CreateDBInstance", "account": ALPHA, "code": "InsufficientDBInstanceCapacity", "status": 400}));
    let (run, report) = restore(
        &emu,
        &p,
        &[
            "rds",
            "--cluster",
            "alpha-aurora",
            "--target-id",
            "alpha-aurora-2",
        ],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(s(&report["error"]).contains("InsufficientDBInstanceCapacity"));
    assert_eq!(report["removed"], json!(["alpha-aurora-2"]));
    assert_eq!(report["left_behind"], json!([]));
    let gone = rds
        .describe_db_clusters()
        .db_cluster_identifier("alpha-aurora-2")
        .send()
        .await;
    assert!(gone.is_err(), "the restored cluster was deleted: {gone:?}");
    assert_eq!(emu.count_calls(ALPHA, "DeleteDBCluster", "ok"), 1);
    assert_eq!(
        job_record(&emu, &job_of(&report))["job"]["status"],
        "Failed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_in_a_copy_region_uses_the_cross_region_copy() {
    let emu = Emulator::start();
    let p = setup(&emu, "snapshot-set", true);
    let job = backup(&emu, &p);
    let app1 = seeded(&emu, "app1");
    let src_id = s(&app1["id"]);
    let before = fingerprint(&emu, src_id).await;
    // The copies in us-west-2, as the tenant sees them: source snapshot → copy.
    let west = emu.ec2("alpha", WEST).await;
    let out = west
        .describe_snapshots()
        .owner_ids("self")
        .filters(tag("_GX_SOURCE_", src_id))
        .send()
        .await
        .unwrap();
    let copies: BTreeMap<String, String> = out
        .snapshots()
        .iter()
        .map(|c| {
            let t = tags_of(c.tags());
            (
                t["_GX_COPY_OF_"]
                    .trim_start_matches("us-east-1/")
                    .to_string(),
                c.snapshot_id().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(copies.len(), 2, "both volumes were copied: {copies:?}");
    let sdf_copy = &copies[&snapshot_of(&emu, job, s(&app1["volumes"][1]["id"])).await];

    let (run, report) = restore(
        &emu,
        &p,
        &["instance", "--instance", src_id, "--region", WEST],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(report["region"], WEST);
    assert!(report["recovery_point"]["copy_of"].is_string());
    let notes = report["notes"].to_string();
    assert!(notes.contains("default subnet"), "{notes}");
    let rjob = job_of(&report);
    let new_id = s(&report["restored"]["instance_id"]);
    let i = instance(&emu, WEST, new_id).await;
    assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
    assert_eq!(i.instance_type().unwrap().as_str(), "t3.micro", "recorded");
    // The recorded subnet is in us-east-1: the default subnet of the same AZ letter.
    let subnet = west
        .describe_subnets()
        .subnet_ids(i.subnet_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(subnet.subnets()[0].default_for_az(), Some(true));
    assert_eq!(subnet.subnets()[0].availability_zone(), Some("us-west-2a"));
    let t = tags_of(i.tags());
    let mut point: Vec<&String> = copies.values().collect();
    point.sort();
    assert_provenance(
        &t,
        &rjob,
        src_id,
        &point
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("+"),
    );
    let vols = attached(&emu, WEST, new_id).await;
    assert_eq!(vols["/dev/sdf"].snapshot_id(), Some(sdf_copy.as_str()));
    // Nothing was made in the source region; the original is untouched.
    assert_eq!(leftovers(&emu, EAST, &rjob).await, (0, 0, 0, 0));
    assert_eq!(fingerprint(&emu, src_id).await, before);

    // The DB snapshot's copy restores in us-west-2 too.
    let (run, report) = restore(
        &emu,
        &p,
        &[
            "rds",
            "--db",
            "alpha-pg",
            "--region",
            WEST,
            "--target-id",
            "alpha-pg-west",
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(report["region"], WEST);
    assert!(report["recovery_point"]["copy_of"].is_string(), "{report}");
    let rds = emu.rds("alpha", WEST).await;
    let d = rds
        .describe_db_instances()
        .db_instance_identifier("alpha-pg-west")
        .send()
        .await
        .unwrap();
    assert_eq!(d.db_instances()[0].db_instance_status(), Some("available"));
    let from = rds_tags_of(d.db_instances()[0].tag_list())["_GX_RESTORED_FROM_"].clone();
    let snaps = rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&from)
        .send()
        .await
        .unwrap();
    assert!(
        rds_tags_of(snaps.db_snapshots()[0].tag_list()).contains_key("_GX_COPY_OF_"),
        "restored from the copy in us-west-2"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_that_fails_midway_leaves_nothing_behind() {
    let emu = Emulator::start();
    let p = setup(&emu, "snapshot-set", false);
    backup(&emu, &p);
    let app1 = seeded(&emu, "app1");
    let app3 = seeded(&emu, "app3");
    let src_id = s(&app1["id"]);
    let before = fingerprint(&emu, src_id).await;
    let app3_before = fingerprint(&emu, s(&app3["id"])).await;

    // RunInstances fails after the image is registered: the image goes.
    emu.fault(json!({"action": "RunInstances", "account": ALPHA, "code": "InsufficientInstanceCapacity", "status": 500}));
    let (run, report) = restore(&emu, &p, &["instance", "--instance", src_id]);
    assert_eq!(run.code, 3, "{run}");
    assert_eq!(report["status"], "Failed");
    assert!(s(&report["error"]).contains("InsufficientInstanceCapacity"));
    let rjob = job_of(&report);
    let image = report["created"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "image")
        .map(|m| s(&m["id"]).to_string())
        .expect("the image was registered");
    assert_eq!(report["removed"], json!([image]));
    assert_eq!(report["left_behind"], json!([]));
    let ec2 = emu.ec2("alpha", EAST).await;
    let gone = ec2.describe_images().image_ids(&image).send().await;
    assert!(
        gone.map(|o| o.images().is_empty()).unwrap_or(true),
        "{image} was deregistered"
    );
    // (moto's RegisterImage also makes an untagged placeholder snapshot that
    // AWS would not; nothing tagged with the job is left.)
    assert_eq!(leftovers(&emu, EAST, &rjob).await, (0, 0, 0, 0));
    assert_eq!(emu.count_calls(ALPHA, "DeregisterImage", "ok"), 1);
    assert_eq!(job_record(&emu, &rjob)["job"]["status"], "Failed");
    assert!(emu
        .log_file("vsrst.log")
        .contains(&format!("CVRestore::Cleanup() - DeregisterImage [{image}]")));
    assert_eq!(fingerprint(&emu, src_id).await, before);
    emu.control("DELETE", "/_harness/faults", None);

    // AttachVolume fails: the new volume goes; the target keeps its volumes.
    emu.fault(json!({"action": "AttachVolume", "account": ALPHA, "code": "IncorrectState", "status": 400}));
    let vol = s(&app1["volumes"][1]["id"]);
    let (run, report) = restore(
        &emu,
        &p,
        &[
            "volume",
            "--volume",
            vol,
            "--attach-to",
            s(&app3["id"]),
            "--device",
            "/dev/sdh",
        ],
    );
    assert_eq!(run.code, 3, "{run}");
    let rjob = job_of(&report);
    let new_vol = report["created"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(report["created"][0]["kind"], "volume");
    assert_eq!(report["removed"], json!([new_vol]));
    assert!(ec2
        .describe_volumes()
        .volume_ids(&new_vol)
        .send()
        .await
        .is_err());
    assert_eq!(leftovers(&emu, EAST, &rjob).await, (0, 0, 0, 0));
    assert_eq!(emu.count_calls(ALPHA, "DeleteVolume", "ok"), 1);
    assert_eq!(job_record(&emu, &rjob)["job"]["status"], "Failed");
    assert_eq!(fingerprint(&emu, s(&app3["id"])).await, app3_before);

    // With a new instance: the instance is terminated and both its volumes go.
    let (run, report) = restore(
        &emu,
        &p,
        &[
            "volume",
            "--volume",
            vol,
            "--new-instance",
            "--image-id",
            s(&emu.fixture["image_id"]),
        ],
    );
    assert_eq!(run.code, 3, "{run}");
    let rjob = job_of(&report);
    let host = report["created"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "instance")
        .map(|m| s(&m["id"]).to_string())
        .unwrap();
    assert_eq!(
        instance(&emu, EAST, &host)
            .await
            .state()
            .unwrap()
            .name()
            .unwrap()
            .as_str(),
        "terminated"
    );
    assert_eq!(leftovers(&emu, EAST, &rjob).await, (0, 0, 0, 0));
    assert_eq!(report["left_behind"], json!([]));
    emu.control("DELETE", "/_harness/faults", None);

    // The registered image stays pending past --wait-timeout: the job gives
    // up, deregisters it and never launches.
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "region": EAST, "kinds": ["image"]})),
    );
    let launches = emu.count_calls(ALPHA, "RunInstances", "ok");
    let (run, report) = restore(
        &emu,
        &p,
        &["instance", "--instance", src_id, "--wait-timeout", "2"],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(
        s(&report["error"]).contains("wait timeout"),
        "{}",
        report["error"]
    );
    assert_eq!(emu.count_calls(ALPHA, "RunInstances", "ok"), launches);
    assert_eq!(leftovers(&emu, EAST, &job_of(&report)).await, (0, 0, 0, 0));
    assert_eq!(report["left_behind"], json!([]));
    assert_eq!(fingerprint(&emu, src_id).await, before);
}
