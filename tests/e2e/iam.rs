//! IAM enforcement (issue 7): the tenant role holds only the `permissions`
//! document that `rolesnap policy tenant` prints, moto checks every call
//! against it, and the layer evaluates the `_GX_BACKUP_` tag conditions moto
//! ignores (tests/emulator/conditions.py). A whole backup → copy → prune →
//! restore cycle must then complete, every step checked as the tenant.

use std::collections::BTreeMap;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use serde_json::{json, Value};

use crate::harness::{rds_tags_of, s, tags_of, Emulator, PlanText, Run, Tags};

const ALPHA: &str = "222222222222";
const EAST: &str = "us-east-1";
const WEST: &str = "us-west-2";
const DAY: i64 = 86_400;

/// Plan `nightly` (id 2) of alpha's us-east-1, kept 7 days and copied to
/// us-west-2 (kept 7 days); `databases` sets `rds` and `aurora`.
fn plan(method: &str, databases: bool) -> PlanText {
    PlanText::new()
        .method(method)
        .retention("days = 7")
        .copy("us-west-2", "retention = { days = 7 }")
        .databases(databases)
}

/// The error code of a failed SDK call (panics if it succeeded).
fn refused<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, E>,
) -> String {
    match r {
        Ok(v) => panic!("expected a refusal, the call succeeded: {v:?}"),
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("no code: {e:?}"))
            .to_string(),
    }
}

/// Puts the printed policy on alpha's role, then switches moto's IAM
/// enforcement and the layer's tag conditions on. Returns the policy.
fn lock_down(emu: &Emulator) -> Value {
    let admin = s(&emu.fixture["admin"]["account"]).to_string();
    let printed = emu.run(&[
        "policy",
        "tenant",
        "--admin-account",
        &admin,
        "--document",
        "permissions",
    ]);
    assert_eq!(printed.code, 0, "{printed}");
    let policy: Value = serde_json::from_str(&printed.stdout).unwrap_or_else(|e| {
        panic!("`rolesnap policy tenant --document permissions` is not JSON ({e}): {printed}")
    });
    let report = emu.replace_tenant_policy("alpha", &policy);
    let seeded = s(&emu.tenant("alpha")["policy_arn"]);
    assert_eq!(
        report["detached"],
        json!([seeded]),
        "the guide's policy is gone"
    );
    let cfg = emu.config(json!({"enforce_tag_conditions": true}));
    assert_eq!(cfg["enforce_tag_conditions"], true, "{cfg}");
    emu.enforce_iam();
    policy
}

/// A backup that exits 0 with two jobs, a Snap Backup and then a Snap Copy,
/// both `Completed`: their reports.
fn backup(emu: &Emulator, p: &std::path::Path) -> Vec<Value> {
    let run = emu.backup(p, &[]);
    assert_eq!(run.code, 0, "{run}");
    let reports = run.json().as_array().cloned().unwrap();
    assert_eq!(reports.len(), 2, "a backup job, then a Snap Copy job");
    for (r, kind) in reports.iter().zip(["Snap Backup", "Snap Copy"]) {
        assert_eq!(r["job_type"], kind, "{r}");
        assert_eq!(r["status"], "Completed", "{r}");
    }
    reports
}

fn restore(emu: &Emulator, p: &std::path::Path, args: &[&str]) -> Value {
    let run: Run = emu.restore(p, "alpha", args);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["status"], "Completed", "{report}");
    assert!(
        report["left_behind"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .is_empty(),
        "{report}"
    );
    report
}

/// The tenant's own AMIs in a region: id → tags.
async fn images(emu: &Emulator, region: &str) -> BTreeMap<String, Tags> {
    let out = emu
        .ec2("alpha", region)
        .await
        .describe_images()
        .owners("self")
        .send()
        .await
        .unwrap();
    out.images()
        .iter()
        .map(|i| (i.image_id().unwrap().to_string(), tags_of(i.tags())))
        .collect()
}

/// The tenant's manual DB and cluster snapshots in a region: id → tags.
async fn db_snapshots(emu: &Emulator, region: &str) -> BTreeMap<String, Tags> {
    let rds = emu.rds("alpha", region).await;
    let mut out: BTreeMap<String, Tags> = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .map(|s| {
            (
                s.db_snapshot_identifier().unwrap().to_string(),
                rds_tags_of(s.tag_list()),
            )
        })
        .collect();
    let clusters = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    for c in clusters.db_cluster_snapshots() {
        out.insert(
            c.db_cluster_snapshot_identifier().unwrap().to_string(),
            rds_tags_of(c.tag_list()),
        );
    }
    out
}

fn of_job(all: &BTreeMap<String, Tags>, job: u64) -> Vec<String> {
    all.iter()
        .filter(|(_, t)| t.get("_GX_BACKUP_") == Some(&job.to_string()))
        .map(|(i, _)| i.clone())
        .collect()
}

fn copies(all: &BTreeMap<String, Tags>, job: u64) -> usize {
    all.iter()
        .filter(|(_, t)| {
            t.get("_GX_BACKUP_") == Some(&job.to_string()) && t.contains_key("_GX_COPY_OF_")
        })
        .count()
}

/// Nothing rolesnap printed or logged shows a permission refusal.
fn no_refusal_met(emu: &Emulator) {
    let all = emu.all_logs_and_outputs();
    for needle in ["UnauthorizedOperation", "AccessDenied", "not authorized"] {
        assert!(
            !all.contains(needle),
            "rolesnap met `{needle}` under the printed policy:\n{all}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_tenant_policy_carries_a_whole_cycle_under_iam_enforcement() {
    let emu = Emulator::start();
    // As in the guide: the admin user assumes the admin role, which assumes the
    // tenant role (moto alone refuses the first hop under enforcement).
    let accounts = emu.write_accounts(&["alpha"], &[]);
    let text = std::fs::read_to_string(&accounts).unwrap().replacen(
        "[admin]\n",
        &format!(
            "[admin]\nrole-arn = \"{}\"\n",
            s(&emu.fixture["admin"]["admin_role_arn"])
        ),
        1,
    );
    std::fs::write(&accounts, text).unwrap();
    let p = emu.write_plan("nightly", plan("snapshot-set", true));
    lock_down(&emu);
    let v = emu.run(&["validate", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(v.code, 0, "validate passes under the printed policy: {v}");
    let probes = v.json()["tenants"][0]["probes"]
        .as_array()
        .cloned()
        .unwrap();
    assert!(probes.len() >= 10, "{v}");
    assert!(
        probes.iter().all(|p| p["outcome"] != "denied"),
        "no permission probe is refused: {v}"
    );
    let row = &v.json()["tenants"][0];
    assert_eq!(
        row["broader"],
        json!([]),
        "nothing beyond the printed policy: {v}"
    );
    assert!(
        row["broader_check"]
            .as_str()
            .unwrap()
            .contains("could not check with iam:SimulatePrincipalPolicy"),
        "{v}"
    );
    assert!(
        emu.log_file("cvd.log")
            .contains(s(&emu.fixture["admin"]["admin_role_arn"])),
        "rolesnap went through the admin role"
    );
    let alpha = emu.tenant("alpha").clone();
    let east = &alpha["resources"][EAST];
    let app1 = &east["instances"][0];
    let app2 = &east["instances"][1];
    let app1_data = app1["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["root"] == false)
        .unwrap();

    // --- The policy is really enforced, as the tenant role.
    let ec2 = emu.ec2("alpha", EAST).await;
    let rds = emu.rds("alpha", EAST).await;
    assert_eq!(
        refused(ec2.delete_vpc().vpc_id(s(&east["vpc_id"])).send().await),
        "UnauthorizedOperation",
        "ec2:DeleteVpc is not in the policy"
    );
    assert_eq!(
        refused(
            rds.modify_db_instance()
                .db_instance_identifier("alpha-pg")
                .allocated_storage(40)
                .send()
                .await
        ),
        "AccessDenied",
        "rds:ModifyDBInstance is not in the policy"
    );
    // A delete is allowed only on what carries _GX_BACKUP_ (moto ignores the
    // Condition; the layer evaluates it).
    let snap = |tags: Vec<Tag>| {
        let mut req = ec2.create_snapshot().volume_id(s(&app1_data["id"]));
        if !tags.is_empty() {
            req = req.tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .set_tags(Some(tags))
                    .build(),
            );
        }
        req
    };
    let untagged = snap(vec![])
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string();
    assert_eq!(
        refused(ec2.delete_snapshot().snapshot_id(&untagged).send().await),
        "UnauthorizedOperation",
        "an untagged snapshot cannot be deleted"
    );
    let tagged = snap(vec![Tag::builder().key("_GX_BACKUP_").value("1").build()])
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string();
    ec2.delete_snapshot()
        .snapshot_id(&tagged)
        .send()
        .await
        .expect("a snapshot tagged _GX_BACKUP_ can be deleted");
    assert_eq!(
        refused(
            rds.delete_db_instance()
                .db_instance_identifier("alpha-pg")
                .skip_final_snapshot(true)
                .send()
                .await
        ),
        "AccessDenied",
        "an untagged DB instance cannot be deleted"
    );
    assert_eq!(
        refused(
            ec2.terminate_instances()
                .instance_ids(s(&app1["id"]))
                .send()
                .await
        ),
        "UnauthorizedOperation",
        "an untagged instance cannot be terminated"
    );
    let denied_deletes = emu.count_calls(ALPHA, "DeleteSnapshot", "denied");
    assert_eq!(denied_deletes, 1);

    // --- Snap Backup + Snap Copy.
    let first = backup(&emu, &p)[0]["job"].as_u64().unwrap();
    let (e1, w1) = (
        emu.snapshots("alpha", EAST).await,
        emu.snapshots("alpha", WEST).await,
    );
    assert_eq!(of_job(&e1, first).len(), 4, "two instances × two volumes");
    assert_eq!(copies(&w1, first), 4, "each copied to us-west-2");
    let (de1, dw1) = (
        db_snapshots(&emu, EAST).await,
        db_snapshots(&emu, WEST).await,
    );
    assert_eq!(of_job(&de1, first).len(), 2, "the DB and the cluster");
    assert_eq!(copies(&dw1, first), 2, "both copied to us-west-2");

    // --- The first generation ages past both rules; a second backup.
    emu.age_all(ALPHA, 10);
    let second = backup(&emu, &p)[0]["job"].as_u64().unwrap();
    assert!(second > first);

    // --- Data Aging deletes the expired points in both regions.
    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["job_type"], "Data Aging");
    assert_eq!(report["status"], "Completed", "{report}");
    for region in [EAST, WEST] {
        let snaps = emu.snapshots("alpha", region).await;
        let dbs = db_snapshots(&emu, region).await;
        assert!(of_job(&snaps, first).is_empty(), "{region}: {snaps:?}");
        assert!(of_job(&dbs, first).is_empty(), "{region}: {dbs:?}");
        assert_eq!(of_job(&snaps, second).len(), 4, "{region}: the newest stay");
        assert_eq!(of_job(&dbs, second).len(), 2, "{region}: the newest stay");
    }
    assert!(
        emu.snapshots("alpha", EAST).await.contains_key(&untagged),
        "the untagged snapshot is never touched"
    );
    assert_eq!(
        emu.count_calls(ALPHA, "DeleteSnapshot", "denied"),
        denied_deletes,
        "prune asked to delete nothing the policy forbids"
    );
    assert_eq!(
        emu.count_calls(ALPHA, "DeleteSnapshot", "ok"),
        1 + 8,
        "the tagged probe, then 4 sources and 4 copies"
    );
    assert_eq!(
        emu.count_calls(ALPHA, "DeleteDBSnapshot", "ok")
            + emu.count_calls(ALPHA, "DeleteDBClusterSnapshot", "ok"),
        4
    );

    // --- Restores, from the second generation.
    let r = restore(
        &emu,
        &p,
        &[
            "volume",
            "--volume",
            s(&app1_data["id"]),
            "--attach-to",
            s(&app1["id"]),
        ],
    );
    assert_eq!(r["recovery_point"]["job"], second);
    let vol = s(&r["restored"]["volume_id"]).to_string();
    let v = ec2
        .describe_volumes()
        .volume_ids(&vol)
        .send()
        .await
        .unwrap();
    let v = &v.volumes()[0];
    assert_eq!(
        v.attachments()[0].instance_id(),
        app1["id"].as_str(),
        "attached to app1"
    );
    assert_eq!(
        tags_of(v.tags())["_GX_BACKUP_"],
        r["job"].as_u64().unwrap().to_string()
    );

    let r = restore(
        &emu,
        &p,
        &["instance", "--instance", s(&app2["id"]), "--region", WEST],
    );
    let new_id = s(&r["restored"]["instance_id"]).to_string();
    let west = emu.ec2("alpha", WEST).await;
    let out = west
        .describe_instances()
        .instance_ids(&new_id)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
    assert_eq!(
        tags_of(i.tags())["_GX_BACKUP_"],
        r["job"].as_u64().unwrap().to_string()
    );
    assert!(
        images(&emu, WEST)
            .await
            .values()
            .all(|t| t.get("_GX_BACKUP_") != Some(&r["job"].as_u64().unwrap().to_string())),
        "the image registered for the restore was deregistered"
    );

    let r = restore(
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
    let d = rds
        .describe_db_instances()
        .db_instance_identifier("alpha-pg-restored")
        .send()
        .await
        .unwrap();
    assert_eq!(
        rds_tags_of(d.db_instances()[0].tag_list())["_GX_BACKUP_"],
        r["job"].as_u64().unwrap().to_string()
    );
    let r = restore(
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
    let c = rds
        .describe_db_clusters()
        .db_cluster_identifier("alpha-aurora-restored")
        .send()
        .await
        .unwrap();
    assert_eq!(
        rds_tags_of(c.db_clusters()[0].tag_list())["_GX_BACKUP_"],
        r["job"].as_u64().unwrap().to_string()
    );

    no_refusal_met(&emu);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ami_plan_backs_up_copies_prunes_and_restores_under_the_printed_policy() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan("ami", false));
    lock_down(&emu);
    let app2 = emu.tenant("alpha")["resources"][EAST]["instances"][1].clone();

    let first = backup(&emu, &p)[0]["job"].as_u64().unwrap();
    let (e1, w1) = (images(&emu, EAST).await, images(&emu, WEST).await);
    assert_eq!(of_job(&e1, first).len(), 2, "one AMI per nightly instance");
    assert_eq!(copies(&w1, first), 2, "each copied to us-west-2");
    // The AMIs' snapshots, by region, as the tenant sees them.
    let backing = |region: &'static str, ids: Vec<String>| {
        let emu = &emu;
        async move {
            let ec2 = emu.ec2("alpha", region).await;
            let out = ec2.describe_images().set_image_ids(Some(ids)).send().await;
            out.unwrap()
                .images()
                .iter()
                .flat_map(|i| i.block_device_mappings())
                .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_string))
                .collect::<Vec<_>>()
        }
    };
    let old_east = backing(EAST, of_job(&e1, first)).await;
    let old_west = backing(WEST, of_job(&w1, first)).await;
    assert!(!old_east.is_empty() && !old_west.is_empty());
    // Under the policy prune may delete them only if they carry the marker.
    let west_snaps = emu.snapshots("alpha", WEST).await;
    for sid in &old_west {
        assert_eq!(
            west_snaps[sid].get("_GX_BACKUP_"),
            Some(&first.to_string()),
            "the copy's snapshot {sid} is tagged: {west_snaps:?}"
        );
    }

    emu.age_all(ALPHA, 10);
    let second = backup(&emu, &p)[0]["job"].as_u64().unwrap();

    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["status"], "Completed", "{run}");
    for (region, old) in [(EAST, &old_east), (WEST, &old_west)] {
        let imgs = images(&emu, region).await;
        assert!(of_job(&imgs, first).is_empty(), "{region}: deregistered");
        assert_eq!(of_job(&imgs, second).len(), 2, "{region}: the newest stay");
        let snaps = emu.snapshots("alpha", region).await;
        for sid in old {
            assert!(
                !snaps.contains_key(sid),
                "{region}: {sid} backed a pruned AMI and is orphaned: {:?}",
                snaps.get(sid)
            );
        }
    }
    assert_eq!(
        emu.count_calls(ALPHA, "DeregisterImage", "denied")
            + emu.count_calls(ALPHA, "DeleteSnapshot", "denied"),
        0
    );

    // Restore app2 from the newest AMI, in the source region and from the copy.
    for region in [EAST, WEST] {
        let r = restore(
            &emu,
            &p,
            &["instance", "--instance", s(&app2["id"]), "--region", region],
        );
        assert_eq!(r["recovery_point"]["job"], second);
        let new_id = s(&r["restored"]["instance_id"]).to_string();
        let ec2 = emu.ec2("alpha", region).await;
        let out = ec2
            .describe_instances()
            .instance_ids(&new_id)
            .send()
            .await
            .unwrap();
        let i = &out.reservations()[0].instances()[0];
        assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
        assert_eq!(
            tags_of(i.tags())["_GX_BACKUP_"],
            r["job"].as_u64().unwrap().to_string()
        );
    }
    no_refusal_met(&emu);
}

/// Switches moto's enforcement and the layer's conditions off again, so that
/// the test reads AWS state with calls the policy does not grant.
fn lift(emu: &Emulator) {
    let (status, body) = emu.raw_request("POST", "/moto-api/reset-auth", "text/plain", "inf");
    assert_eq!(status, 200, "reset-auth: {body}");
    emu.config(json!({"enforce_tag_conditions": false}));
}

/// Switches enforcement on again after [`lift`] (the printed policy is still attached).
fn relock(emu: &Emulator) {
    emu.config(json!({"enforce_tag_conditions": true}));
    emu.enforce_iam();
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn rds_tag(k: &str, v: &str) -> aws_sdk_rds::types::Tag {
    aws_sdk_rds::types::Tag::builder().key(k).value(v).build()
}

/// The issue's attack, step by step, as the tenant role under the printed
/// policy: mark a customer resource `_GX_BACKUP_`, then delete it. Every step is
/// refused, and the resources are still there, untagged, afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn tag_then_delete_of_customer_resources_is_denied_and_they_survive() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let east = emu.tenant("alpha")["resources"][EAST].clone();
    let app1 = s(&east["instances"][0]["id"]).to_string();
    let data = east["instances"][0]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["root"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ec2 = emu.ec2("alpha", EAST).await;
    let rds = emu.rds("alpha", EAST).await;
    // A customer's own snapshot, made before rolesnap's policy is in place.
    let customer = ec2
        .create_snapshot()
        .volume_id(&data)
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string();
    lock_down(&emu);
    let mark = || tag("_GX_BACKUP_", "1");

    for id in [&customer, &app1, &data] {
        assert_eq!(
            refused(ec2.create_tags().resources(id).tags(mark()).send().await),
            "UnauthorizedOperation",
            "{id} cannot be marked _GX_BACKUP_"
        );
        assert_eq!(
            refused(
                ec2.create_tags()
                    .resources(id)
                    .tags(tag("CV_Integrity_Snap", "1"))
                    .send()
                    .await
            ),
            "UnauthorizedOperation",
            "{id}: no tag at all on an existing customer resource"
        );
    }
    assert_eq!(
        refused(ec2.delete_snapshot().snapshot_id(&customer).send().await),
        "UnauthorizedOperation"
    );
    assert_eq!(
        refused(ec2.terminate_instances().instance_ids(&app1).send().await),
        "UnauthorizedOperation"
    );
    assert_eq!(
        refused(ec2.detach_volume().volume_id(&data).send().await),
        "UnauthorizedOperation"
    );
    assert_eq!(
        refused(ec2.delete_volume().volume_id(&data).send().await),
        "UnauthorizedOperation"
    );
    // Sharing or making public a customer snapshot.
    assert_eq!(
        refused(
            ec2.modify_snapshot_attribute()
                .snapshot_id(&customer)
                .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
                .operation_type(aws_sdk_ec2::types::OperationType::Add)
                .group_names("all")
                .send()
                .await
        ),
        "UnauthorizedOperation",
        "a customer snapshot cannot be made public"
    );
    assert_eq!(
        refused(
            ec2.modify_snapshot_attribute()
                .snapshot_id(&customer)
                .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
                .operation_type(aws_sdk_ec2::types::OperationType::Add)
                .user_ids("999999999999")
                .send()
                .await
        ),
        "UnauthorizedOperation",
        "a customer snapshot cannot be shared"
    );
    // RDS: the database and the Aurora cluster.
    let db_arn = format!("arn:aws:rds:{EAST}:{ALPHA}:db:alpha-pg");
    let cluster_arn = format!("arn:aws:rds:{EAST}:{ALPHA}:cluster:alpha-aurora");
    for arn in [&db_arn, &cluster_arn] {
        assert_eq!(
            refused(
                rds.add_tags_to_resource()
                    .resource_name(arn)
                    .tags(rds_tag("_GX_BACKUP_", "1"))
                    .send()
                    .await
            ),
            "AccessDenied",
            "{arn} cannot be marked"
        );
        // With the restore's provenance tag the marker goes on (RDS has no
        // create-action key: README, residual risks), but it buys no delete:
        // the policy grants DeleteDBInstance / DeleteDBCluster only on the
        // drills' `rolesnap-drill-*` databases.
        rds.add_tags_to_resource()
            .resource_name(arn)
            .tags(rds_tag("_GX_BACKUP_", "1"))
            .tags(rds_tag("_GX_RESTORED_FROM_", "x"))
            .send()
            .await
            .expect("the restore's tag set is allowed on databases");
    }
    assert_eq!(
        refused(
            rds.delete_db_instance()
                .db_instance_identifier("alpha-pg")
                .skip_final_snapshot(true)
                .send()
                .await
        ),
        "AccessDenied"
    );
    assert_eq!(
        refused(
            rds.delete_db_cluster()
                .db_cluster_identifier("alpha-aurora")
                .skip_final_snapshot(true)
                .send()
                .await
        ),
        "AccessDenied"
    );
    assert!(emu.count_calls(ALPHA, "CreateTags", "denied") >= 6);

    // --- AWS state, read with enforcement lifted.
    lift(&emu);
    let snap = ec2
        .describe_snapshots()
        .snapshot_ids(&customer)
        .send()
        .await
        .unwrap();
    assert_eq!(snap.snapshots().len(), 1, "the customer snapshot exists");
    assert!(tags_of(snap.snapshots()[0].tags()).is_empty());
    let perm = ec2
        .describe_snapshot_attribute()
        .snapshot_id(&customer)
        .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .unwrap();
    assert!(
        perm.create_volume_permissions().is_empty(),
        "not shared: {perm:?}"
    );
    let out = ec2
        .describe_instances()
        .instance_ids(&app1)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
    assert!(!tags_of(i.tags()).contains_key("_GX_BACKUP_"));
    let v = ec2
        .describe_volumes()
        .volume_ids(&data)
        .send()
        .await
        .unwrap();
    let v = &v.volumes()[0];
    assert_eq!(
        v.attachments()[0].instance_id(),
        Some(app1.as_str()),
        "still attached"
    );
    assert!(!tags_of(v.tags()).contains_key("_GX_BACKUP_"));
    let d = rds
        .describe_db_instances()
        .db_instance_identifier("alpha-pg")
        .send()
        .await
        .unwrap();
    assert_eq!(d.db_instances()[0].db_instance_status(), Some("available"));
    let c = rds
        .describe_db_clusters()
        .db_cluster_identifier("alpha-aurora")
        .send()
        .await
        .unwrap();
    assert_eq!(c.db_clusters().len(), 1);
}

/// A hold put by a person, and the marker itself, cannot be taken off a
/// recovery point by the role.
#[tokio::test(flavor = "multi_thread")]
async fn the_role_cannot_remove_a_hold_or_the_marker_from_a_recovery_point() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan("snapshot-set", true));
    lock_down(&emu);
    let job = backup(&emu, &p)[0]["job"].as_u64().unwrap();
    let ec2 = emu.ec2("alpha", EAST).await;
    let rds = emu.rds("alpha", EAST).await;
    let snaps = of_job(&emu.snapshots("alpha", EAST).await, job);
    let dbs = of_job(&db_snapshots(&emu, EAST).await, job);
    assert_eq!((snaps.len(), dbs.len()), (4, 2));
    // A person puts the hold (the role may not add tags to existing resources).
    lift(&emu);
    ec2.create_tags()
        .resources(&snaps[0])
        .tags(tag("CV_Retain_Snap", "legal"))
        .send()
        .await
        .unwrap();
    let db_arn = |id: &str| format!("arn:aws:rds:{EAST}:{ALPHA}:snapshot:{id}");
    let db_snap = dbs.iter().find(|d| !d.contains("aurora")).cloned();
    let rds_arn = match &db_snap {
        Some(id) => db_arn(id),
        None => panic!("no DB snapshot of job {job}: {dbs:?}"),
    };
    rds.add_tags_to_resource()
        .resource_name(&rds_arn)
        .tags(rds_tag("CV_Retain_Snap", "legal"))
        .send()
        .await
        .unwrap();
    relock(&emu);
    for key in ["CV_Retain_Snap", "_GX_BACKUP_", "_GX_PLAN_"] {
        assert_eq!(
            refused(
                ec2.delete_tags()
                    .resources(&snaps[0])
                    .tags(Tag::builder().key(key).build())
                    .send()
                    .await
            ),
            "UnauthorizedOperation",
            "{key} stays on {}",
            snaps[0]
        );
        assert_eq!(
            refused(
                rds.remove_tags_from_resource()
                    .resource_name(&rds_arn)
                    .tag_keys(key)
                    .send()
                    .await
            ),
            "AccessDenied",
            "{key} stays on {rds_arn}"
        );
    }
    assert_eq!(
        refused(ec2.delete_tags().resources(&snaps[0]).send().await),
        "UnauthorizedOperation",
        "DeleteTags without keys (every tag) is refused"
    );
    // Nor can the role rewrite the marker of one of its own points.
    assert_eq!(
        refused(
            ec2.create_tags()
                .resources(&snaps[1])
                .tags(tag("_GX_BACKUP_", "999"))
                .send()
                .await
        ),
        "UnauthorizedOperation"
    );
    lift(&emu);
    let all = emu.snapshots("alpha", EAST).await;
    assert_eq!(all[&snaps[0]]["CV_Retain_Snap"], "legal");
    assert_eq!(all[&snaps[0]]["_GX_BACKUP_"], job.to_string());
    assert_eq!(all[&snaps[1]]["_GX_BACKUP_"], job.to_string());
    let t = db_snapshots(&emu, EAST).await;
    let t = &t[db_snap.as_ref().unwrap()];
    assert_eq!(t["CV_Retain_Snap"], "legal");
    assert_eq!(t["_GX_BACKUP_"], job.to_string());
    assert_eq!(t["_GX_PLAN_"], "nightly");
}

/// `policy tenant` refuses a trust policy without ExternalId unless asked, and
/// trusts the EC2 service principal only when asked.
#[test]
fn the_tenant_trust_policy_needs_an_external_id_and_no_service_principal() {
    let run = |args: &[&str]| {
        let mut all = vec!["policy", "tenant", "--admin-account", "111111111111"];
        all.extend_from_slice(args);
        Run::from(
            std::process::Command::new(env!("CARGO_BIN_EXE_rolesnap"))
                .args(&all)
                .output()
                .unwrap(),
        )
    };
    for args in [&["--document", "tenant-trust"][..], &[][..]] {
        let r = run(args);
        assert_eq!(r.code, 2, "{r}");
        assert!(r.stdout.is_empty(), "{r}");
        assert!(r.stderr.contains("--external-id"), "{r}");
        assert!(r.stderr.contains("--no-external-id"), "{r}");
    }
    // The permissions alone need no ExternalId.
    let r = run(&["--document", "permissions"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stderr.is_empty(), "{r}");

    let r = run(&["--document", "tenant-trust", "--no-external-id"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stderr.contains("warning"), "{r}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(doc["Statement"].get("Condition").is_none(), "{doc}");
    assert!(
        doc["Statement"]["Principal"].get("Service").is_none(),
        "{doc}"
    );

    let r = run(&["--document", "tenant-trust", "--external-id", "x-1"]);
    assert_eq!(r.code, 0, "{r}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        doc["Statement"]["Condition"]["StringEquals"]["sts:ExternalId"],
        "x-1"
    );
    assert_eq!(
        doc["Statement"]["Principal"],
        json!({"AWS": "arn:aws:iam::111111111111:root"})
    );

    let r = run(&[
        "--document",
        "tenant-trust",
        "--external-id",
        "x-1",
        "--trust-ec2-service",
    ]);
    assert_eq!(r.code, 0, "{r}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        doc["Statement"]["Principal"]["Service"],
        "ec2.amazonaws.com"
    );

    let r = run(&["--external-id", "x-1", "--no-external-id"]);
    assert_eq!(r.code, 2, "the two contradict each other: {r}");
    let help = Run::from(
        std::process::Command::new(env!("CARGO_BIN_EXE_rolesnap"))
            .args(["policy", "--help"])
            .output()
            .unwrap(),
    );
    for flag in ["--no-external-id", "--trust-ec2-service"] {
        assert!(help.stdout.contains(flag), "{flag} in --help: {help}");
    }
}

/// `[lock]` and `[[copy]] lock`: every EBS snapshot of a point and of its copy
/// is locked at creation for the retention's days; prune leaves a locked point
/// alone (held by lock) until the lock expires, then deletes it; `list` shows
/// the locks. All under the printed policy.
#[tokio::test(flavor = "multi_thread")]
async fn locked_recovery_points_are_held_until_their_lock_expires() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let text = plan("snapshot-set", false)
        .lock("mode = \"compliance\"")
        .copy(
            "us-west-2",
            "lock = { mode = \"governance\" }\nretention = { days = 7 }",
        )
        .to_string();
    assert!(text.contains("[lock]"), "{text}");
    let p = emu.write_plan("nightly", &text);
    lock_down(&emu);
    let v = emu.run(&["validate", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(v.code, 0, "{v}");
    assert!(
        v.json()["notes"][0]
            .as_str()
            .unwrap_or_default()
            .contains("RDS"),
        "validate says RDS snapshots cannot be locked: {v}"
    );
    let first = backup(&emu, &p)[0]["job"].as_u64().unwrap();
    let east = of_job(&emu.snapshots("alpha", EAST).await, first);
    let west = of_job(&emu.snapshots("alpha", WEST).await, first);
    assert_eq!((east.len(), west.len()), (4, 4));
    // AWS state: each snapshot locked, in its region's mode, for 7 days.
    for (region, ids, mode) in [(EAST, &east, "compliance"), (WEST, &west, "governance")] {
        let ec2 = emu.ec2("alpha", region).await;
        let out = ec2
            .describe_locked_snapshots()
            .set_snapshot_ids(Some(ids.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(out.snapshots().len(), 4, "{region}: {out:?}");
        for l in out.snapshots() {
            assert_eq!(l.lock_state().unwrap().as_str(), mode, "{region}: {l:?}");
            let secs = l.lock_expires_on().unwrap().secs() - l.lock_created_on().unwrap().secs();
            assert_eq!(secs, 7 * DAY, "{region}: the days rule: {l:?}");
        }
    }
    // The role may delete its own snapshot as far as IAM goes, but not a locked one.
    let ec2 = emu.ec2("alpha", EAST).await;
    assert_eq!(
        refused(ec2.delete_snapshot().snapshot_id(&east[0]).send().await),
        "SnapshotLocked"
    );
    // list shows the locks.
    let l = emu.run(&["list", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(l.code, 0, "{l}");
    let rows = l.json().as_array().cloned().unwrap();
    assert!(!rows.is_empty());
    for r in &rows {
        let want = if r["role"] == "copy" {
            "governance"
        } else {
            "compliance"
        };
        assert_eq!(r["lock"]["state"], want, "{r}");
        assert!(r["lock"]["expires"].is_string(), "{r}");
    }

    // The first generation ages past the days rule; a second backup.
    emu.age_all(ALPHA, 10);
    let second = backup(&emu, &p)[0]["job"].as_u64().unwrap();
    // (validate's DryRun probe and the refusal above are already counted)
    let delete_errors = emu.count_calls(ALPHA, "DeleteSnapshot", "error");
    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["status"], "Completed", "{report}");
    let held: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Kept")
        .collect();
    assert_eq!(held.len(), 4, "the 2 sets and their 2 copies: {report}");
    for i in &held {
        assert!(
            i["detail"]["rule"]
                .as_str()
                .unwrap()
                .contains("held by lock"),
            "{i}"
        );
    }
    assert_eq!(
        emu.count_calls(ALPHA, "DeleteSnapshot", "error"),
        delete_errors,
        "prune never tried to delete a locked snapshot"
    );
    assert_eq!(emu.count_calls(ALPHA, "DeleteSnapshot", "ok"), 0);
    for (region, ids) in [(EAST, &east), (WEST, &west)] {
        let now = emu.snapshots("alpha", region).await;
        assert!(ids.iter().all(|s| now.contains_key(s)), "{region}: held");
    }

    // Eight days on (layer clock), the locks have expired: prune deletes them.
    emu.config(json!({"advance_clock_seconds": 8 * DAY}));
    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["status"], "Completed", "{run}");
    for region in [EAST, WEST] {
        let now = emu.snapshots("alpha", region).await;
        assert!(of_job(&now, first).is_empty(), "{region}: {now:?}");
        assert_eq!(of_job(&now, second).len(), 4, "{region}: the newest stay");
    }
    no_refusal_met(&emu);
}

/// A point a `weekly` rule keeps longer than the base lock gets its lock
/// extended by prune to the end of that rule.
#[tokio::test(flavor = "multi_thread")]
async fn prune_extends_the_lock_of_a_point_a_weekly_rule_keeps() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan(
        "weekly",
        r#"
[plan]
name = "nightly"
id = 2

[retention]
days = 1
weekly = 4

[lock]
mode = "governance"

[[group]]
name = "east"
tenants = ["alpha"]
regions = ["us-east-1"]
include-tags = ["Backup=nightly"]
"#,
    );
    lock_down(&emu);
    let run = emu.backup(&p, &[]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    // One report (no copy job), or a list of them.
    let job = report.get(0).unwrap_or(&report)["job"].as_u64().unwrap();
    let ids = of_job(&emu.snapshots("alpha", EAST).await, job);
    assert_eq!(ids.len(), 4);
    let ec2 = emu.ec2("alpha", EAST).await;
    let expiry =
        |out: aws_sdk_ec2::operation::describe_locked_snapshots::DescribeLockedSnapshotsOutput| {
            out.snapshots()
                .iter()
                .map(|l| l.lock_expires_on().unwrap().secs() - l.lock_created_on().unwrap().secs())
                .collect::<Vec<_>>()
        };
    let before = expiry(
        ec2.describe_locked_snapshots()
            .set_snapshot_ids(Some(ids.clone()))
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(before, vec![DAY; 4], "locked for the days rule");
    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let after = expiry(
        ec2.describe_locked_snapshots()
            .set_snapshot_ids(Some(ids.clone()))
            .send()
            .await
            .unwrap(),
    );
    for secs in after {
        // created + 4 weeks, from a lock made moments after creation
        assert!((28 * DAY - 120..=28 * DAY).contains(&secs), "{secs}");
    }
    assert!(emu
        .log_file("vsbkp.log")
        .contains("Extended the governance lock"));
}

/// `validate` names what an attached policy grants beyond the printed one:
/// here the guide's own policy, which the seed attaches.
#[test]
fn validate_reports_an_attached_policy_broader_than_the_printed_one() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan("snapshot-set", false));
    emu.config(json!({"enforce_tag_conditions": true}));
    emu.enforce_iam();
    let v = emu.run(&["validate", "--plan", p.to_str().unwrap(), "-o", "json"]);
    let row = &v.json()["tenants"][0];
    let broader: Vec<&str> = row["broader"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    // (moto answers the CreateTags probe on a made-up id with NotFound before
    // DryRun: undecided here; AWS checks permissions first.)
    for a in [
        "ec2:ModifySnapshotAttribute",
        "ec2:StopInstances",
        "ec2:DeleteTags",
    ] {
        assert!(broader.contains(&a), "{a} in {broader:?}: {v}");
    }
    assert!(
        !broader.contains(&"ec2:DeleteVpc"),
        "the guide grants no DeleteVpc: {v}"
    );
    let human = emu.run(&["validate", "--plan", p.to_str().unwrap()]);
    assert!(
        human
            .stdout
            .contains("broader than the printed policy: ec2:ModifySnapshotAttribute"),
        "{human}"
    );
}

/// The snapshots behind an AMI, and behind its cross-region copy, are locked
/// as part of the point's creation.
#[tokio::test(flavor = "multi_thread")]
async fn an_ami_plan_locks_the_snapshots_behind_its_images_and_their_copies() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let text = plan("ami", false).lock("mode = \"governance\"").copy(
        "us-west-2",
        "lock = { mode = \"compliance\", cool-off-hours = 2 }\nretention = { days = 7 }",
    );
    let p = emu.write_plan("nightly", &text);
    lock_down(&emu);
    let job = backup(&emu, &p)[0]["job"].as_u64().unwrap();
    for (region, state) in [(EAST, "governance"), (WEST, "compliance-cooloff")] {
        let ec2 = emu.ec2("alpha", region).await;
        let imgs = of_job(&images(&emu, region).await, job);
        assert_eq!(imgs.len(), 2, "{region}");
        let out = ec2
            .describe_images()
            .set_image_ids(Some(imgs))
            .send()
            .await
            .unwrap();
        let snaps: Vec<String> = out
            .images()
            .iter()
            .flat_map(|i| i.block_device_mappings())
            .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_string))
            .collect();
        assert_eq!(snaps.len(), 2, "{region}");
        let locks = ec2
            .describe_locked_snapshots()
            .set_snapshot_ids(Some(snaps.clone()))
            .send()
            .await
            .unwrap();
        let states: Vec<&str> = locks
            .snapshots()
            .iter()
            .map(|l| l.lock_state().unwrap().as_str())
            .collect();
        assert_eq!(states, vec![state; 2], "{region}: {locks:?}");
        assert_eq!(
            refused(ec2.delete_snapshot().snapshot_id(&snaps[0]).send().await),
            "SnapshotLocked",
            "{region}"
        );
    }
}

// ------------------------------------------------------------ vault policies

/// `rolesnap policy <side> --accounts … --document permissions`, parsed.
fn printed(emu: &Emulator, side: &str, accounts: &std::path::Path) -> Value {
    let admin = s(&emu.fixture["admin"]["account"]).to_string();
    let r = emu.run(&[
        "policy",
        side,
        "--admin-account",
        &admin,
        "--accounts",
        accounts.to_str().unwrap(),
        "--document",
        "permissions",
    ]);
    assert_eq!(r.code, 0, "{r}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r}"))
}

/// A volume and a snapshot of it in the client's account, the snapshot
/// tagged `_GX_BACKUP_` or not (set-up, before enforcement).
async fn snapshot(ec2: &aws_sdk_ec2::Client, marked: bool) -> String {
    let vol = ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(1)
        .send()
        .await
        .unwrap();
    let mut req = ec2.create_snapshot().volume_id(vol.volume_id().unwrap());
    if marked {
        req = req.tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Snapshot)
                .tags(tag("_GX_BACKUP_", "1"))
                .build(),
        );
    }
    req.send().await.unwrap().snapshot_id().unwrap().to_string()
}

/// Under the printed tenant and vault policies: the tenant role shares its
/// own (`_GX_BACKUP_`) snapshot with the vault account and no other, and no
/// snapshot it did not make; the vault role deletes no snapshot it did not
/// make.
#[tokio::test(flavor = "multi_thread")]
async fn vault_shares_go_only_to_the_vault_and_only_of_own_snapshots() {
    let emu = Emulator::start();
    let accounts = emu.write_accounts_with_vault(&["alpha"]);
    let vault = emu.vault_account();
    let tenant_policy = printed(&emu, "tenant", &accounts);
    let text = tenant_policy.to_string();
    assert!(text.contains("ec2:ModifySnapshotAttribute"), "{text}");
    assert!(text.contains(&vault), "the vault account is named: {text}");
    let vault_policy = printed(&emu, "vault", &accounts);
    assert!(
        vault_policy.to_string().contains(ALPHA),
        "shares back only to the tenant: {vault_policy}"
    );

    // The vault's trust: the admin account, with the vault's ExternalId.
    let admin = s(&emu.fixture["admin"]["account"]).to_string();
    let all = emu.run(&[
        "policy",
        "vault",
        "--admin-account",
        &admin,
        "--accounts",
        accounts.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(all.code, 0, "{all}");
    let trust = &all.json()["vault-trust"];
    assert_eq!(
        trust["Statement"]["Principal"]["AWS"],
        format!("arn:aws:iam::{admin}:root")
    );
    assert_eq!(
        trust["Statement"]["Condition"]["StringEquals"]["sts:ExternalId"],
        s(&emu.vault()["external_id"])
    );
    let bare = emu.run(&["policy", "vault", "--admin-account", &admin]);
    assert_eq!(bare.code, 2, "needs --accounts: {bare}");
    let help = emu.run(&["policy", "--help"]);
    assert!(
        help.stdout.contains("--accounts") && help.stdout.contains("vault"),
        "{help}"
    );

    let ec2 = emu.ec2("alpha", EAST).await;
    let vec2 = emu.vault_ec2(EAST).await;
    let own = snapshot(&ec2, true).await;
    let foreign = snapshot(&ec2, false).await;
    let in_vault = snapshot(&vec2, false).await;

    emu.replace_tenant_policy("alpha", &tenant_policy);
    let report = emu.replace_vault_policy(&vault_policy);
    assert_eq!(
        report["detached"],
        json!([s(&emu.vault()["policy_arn"])]),
        "the seeded vault policy is gone"
    );
    emu.config(json!({"enforce_tag_conditions": true}));
    emu.enforce_iam();

    let share = |id: &str, account: &str| {
        ec2.modify_snapshot_attribute()
            .snapshot_id(id)
            .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
            .operation_type(aws_sdk_ec2::types::OperationType::Add)
            .user_ids(account)
            .send()
    };
    share(&own, &vault)
        .await
        .expect("own snapshot to the vault");
    assert_eq!(
        refused(share(&own, "444444444444").await),
        "UnauthorizedOperation",
        "another account"
    );
    assert_eq!(
        refused(share(&foreign, &vault).await),
        "UnauthorizedOperation",
        "a snapshot without _GX_BACKUP_"
    );
    let public = ec2
        .modify_snapshot_attribute()
        .snapshot_id(&own)
        .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
        .operation_type(aws_sdk_ec2::types::OperationType::Add)
        .group_names("all")
        .send()
        .await;
    assert_eq!(refused(public), "UnauthorizedOperation", "public");
    // Stopping the share is allowed too.
    ec2.modify_snapshot_attribute()
        .snapshot_id(&own)
        .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
        .operation_type(aws_sdk_ec2::types::OperationType::Remove)
        .user_ids(&vault)
        .send()
        .await
        .expect("the share removed");

    // The vault role cannot delete what it did not make.
    assert_eq!(
        refused(vec2.delete_snapshot().snapshot_id(&in_vault).send().await),
        "UnauthorizedOperation",
        "an untagged snapshot in the vault"
    );
    lift(&emu);
    let left = vec2
        .describe_snapshots()
        .snapshot_ids(&in_vault)
        .send()
        .await
        .unwrap();
    assert_eq!(left.snapshots().len(), 1, "it survives");
}

/// The whole vault cycle under the printed tenant and vault policies, with
/// IAM and tag-condition enforcement on: two nights with vault copies, the
/// vault prune, and a restore from the vault.
#[tokio::test(flavor = "multi_thread")]
async fn a_vault_cycle_runs_under_the_printed_tenant_and_vault_policies() {
    let emu = Emulator::start();
    let accounts = emu.write_accounts_with_vault(&["alpha"]);
    let vault = emu.vault_account();
    let tenant_policy = printed(&emu, "tenant", &accounts);
    let vault_policy = printed(&emu, "vault", &accounts);
    emu.replace_tenant_policy("alpha", &tenant_policy);
    emu.replace_vault_policy(&vault_policy);
    emu.config(json!({"enforce_tag_conditions": true}));
    emu.enforce_iam();
    let p = emu.write_plan(
        "nightly",
        PlanText::new()
            .retention("days = 7")
            .vault("vault", "retention = { days = 3 }")
            .databases(true),
    );
    let first = emu.backup_completed(&p);
    assert_eq!(first[1]["job_type"], "Vault Copy");
    let first_job = first[0]["job"].as_u64().unwrap().to_string();
    emu.backup_completed(&p);
    let vec2 = emu.vault_ec2(EAST).await;
    let listed = |out: aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput| {
        out.snapshots()
            .iter()
            .map(|x| (x.snapshot_id().unwrap().to_string(), tags_of(x.tags())))
            .collect::<BTreeMap<String, Tags>>()
    };
    let copies = listed(
        vec2.describe_snapshots()
            .owner_ids("self")
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(
        copies.len(),
        8,
        "two nights × two instances × two volumes: {copies:?}"
    );
    assert_eq!(emu.count_calls(&vault, "CopySnapshot", "denied"), 0);
    assert_eq!(
        emu.count_calls(ALPHA, "ModifySnapshotAttribute", "denied"),
        0
    );

    // The vault prune deletes the first night's copies (past the vault's
    // 3 days; the second night's are the newest of live sources).
    emu.age_all(&vault, 10);
    let older: Vec<String> = copies
        .iter()
        .filter(|(_, t)| t["_GX_BACKUP_"] == first_job)
        .map(|(id, _)| id.clone())
        .collect();
    emu.age(&vault, EAST, &older, 12);
    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let left = listed(
        vec2.describe_snapshots()
            .owner_ids("self")
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(left.len(), 4, "{run}");
    assert!(left.values().all(|t| t["_GX_BACKUP_"] != first_job));
    assert_eq!(emu.count_calls(&vault, "DeleteSnapshot", "denied"), 0);

    // A restore from the vault, as the tenant and the vault roles may.
    let inst = emu.nightly_instances("alpha", EAST)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = emu.restore(
        &p,
        "alpha",
        &["instance", "--instance", &inst, "--from-vault", "vault"],
    );
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["status"], "Completed", "{run}");
    for (account, action) in [
        (vault.as_str(), "ModifySnapshotAttribute"),
        (ALPHA, "CopySnapshot"),
        (ALPHA, "DeleteSnapshot"),
        (ALPHA, "RunInstances"),
    ] {
        assert_eq!(
            emu.count_calls(account, action, "denied"),
            0,
            "{action} in {account}"
        );
        assert!(
            emu.count_calls(account, action, "ok") > 0,
            "{action} in {account} was made"
        );
    }
}

/// Restore drills of an instance and of a database under the printed tenant
/// policy with enforcement on: each proves healthy and removes what it made.
#[tokio::test(flavor = "multi_thread")]
async fn drills_run_and_clean_up_under_the_printed_policy() {
    let emu = Emulator::start();
    let accounts = emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan(
        "nightly",
        PlanText::new().retention("days = 7").databases(true),
    );
    emu.backup_completed(&p);
    emu.replace_tenant_policy("alpha", &printed(&emu, "tenant", &accounts));
    emu.config(json!({"enforce_tag_conditions": true}));
    emu.enforce_iam();
    let res = &emu.tenant("alpha")["resources"][EAST];
    let subnet = s(&res["subnets"][0]["id"]).to_string();
    let sg = s(&res["security_group_id"]).to_string();
    let src = s(&emu.nightly_instances("alpha", EAST)[0]["id"]).to_string();
    for args in [
        vec![
            "--instance",
            src.as_str(),
            "--subnet",
            &subnet,
            "--security-groups",
            &sg,
            "--check",
            "systemctl is-system-running",
        ],
        vec!["--db", "alpha-pg"],
    ] {
        let mut all = vec!["drill", "--plan", p.to_str().unwrap(), "--tenant", "alpha"];
        all.extend(args);
        all.extend(["-o", "json", "--poll-interval", "0.2"]);
        let run = emu.run(&all);
        assert_eq!(run.code, 0, "{run}");
        let r = run.json();
        assert_eq!(r["drill"]["healthy"], true, "{run}");
        assert_eq!(r["left_behind"], json!([]), "{run}");
    }
    for (action, what) in [
        ("TerminateInstances", "the drill's instance"),
        ("DeleteDBInstance", "the drill's database"),
        ("DescribeInstanceStatus", "the health check"),
        ("SendCommand", "the check command"),
        ("GetCommandInvocation", "the check command's result"),
    ] {
        assert_eq!(emu.count_calls(ALPHA, action, "denied"), 0, "{what}");
        assert!(emu.count_calls(ALPHA, action, "ok") > 0, "{what}");
    }
    // Run Command reaches only a drill's instances (CV_Integrity_Snap), and
    // only with AWS-RunShellScript.
    let ssm = aws_sdk_ssm::Client::new(&emu.account_config(ALPHA, EAST).await);
    for (instance, document) in [
        (src.as_str(), "AWS-RunShellScript"),
        (src.as_str(), "AWS-RunPowerShellScript"),
    ] {
        let e = ssm
            .send_command()
            .document_name(document)
            .instance_ids(instance)
            .parameters("commands", vec!["id".to_string()])
            .send()
            .await
            .expect_err("SendCommand to the untagged source is denied");
        assert_eq!(
            aws_sdk_ssm::error::ProvideErrorMetadata::code(&e),
            Some("AccessDeniedException"),
            "{e:?}"
        );
    }
    assert!(emu.count_calls(ALPHA, "SendCommand", "denied") >= 2);
    // The name is what the delete is granted on: the source cannot be deleted.
    let rds = emu.rds("alpha", EAST).await;
    let e = rds
        .delete_db_instance()
        .db_instance_identifier("alpha-pg")
        .skip_final_snapshot(true)
        .send()
        .await
        .expect_err("the source database cannot be deleted");
    assert_eq!(
        aws_sdk_rds::error::ProvideErrorMetadata::code(&e),
        Some("AccessDenied")
    );
}

/// Customer keys are used only through EC2 under the printed policies, with
/// IAM and condition enforcement on (the layer evaluates `kms:ViaService`):
/// a vault copy of a point on alpha's shared key completes (EC2 uses the
/// tenant's key and the vault's key for the roles); the tenant role's own
/// `kms:Decrypt` and `kms:CreateGrant` on that key are refused, its
/// `kms:DescribeKey` (what `validate` reads) is not; and the vault role
/// cannot copy with a key of its account that `[vault.keys]` does not name.
#[tokio::test(flavor = "multi_thread")]
async fn customer_keys_are_used_only_through_ec2_under_the_printed_policies() {
    let emu = Emulator::start();
    let accounts = emu.write_accounts_with_vault(&["alpha"]);
    let vault = emu.vault_account();
    let shared = s(&emu.tenant("alpha")["keys"]["shared"][EAST]).to_string();
    // Set-up, before enforcement: an instance with a volume on the shared
    // key, a ciphertext under that key, a vault key `[vault.keys]` omits.
    let inst = crate::vault::encrypted_instance(&emu, Some(&shared)).await;
    let kms = aws_sdk_kms::Client::new(&emu.account_config(ALPHA, EAST).await);
    let blob = kms
        .encrypt()
        .key_id(&shared)
        .plaintext(aws_sdk_kms::primitives::Blob::new(b"secret".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let unnamed = aws_sdk_kms::Client::new(&emu.account_config(&vault, EAST).await)
        .create_key()
        .description("a vault key the accounts file does not name")
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();

    let tenant_policy = printed(&emu, "tenant", &accounts);
    let vault_policy = printed(&emu, "vault", &accounts);
    assert!(
        tenant_policy.to_string().contains("kms:ViaService"),
        "{tenant_policy}"
    );
    emu.replace_tenant_policy("alpha", &tenant_policy);
    emu.replace_vault_policy(&vault_policy);
    emu.config(json!({"enforce_tag_conditions": true}));
    emu.enforce_iam();

    // The night: the point of the encrypted volume gets its vault copy.
    let p = emu.write_plan(
        "nightly",
        PlanText::new()
            .retention("days = 7")
            .vault("vault", "retention = { days = 3 }"),
    );
    let reports = emu.backup_completed(&p);
    assert_eq!(reports[1]["job_type"], "Vault Copy", "{reports:?}");
    let ec2 = emu.ec2("alpha", EAST).await;
    let described = ec2
        .describe_instances()
        .instance_ids(&inst)
        .send()
        .await
        .unwrap();
    let volume = described.reservations()[0].instances()[0]
        .block_device_mappings()
        .iter()
        .find(|b| b.device_name() == Some("/dev/sdf"))
        .and_then(|b| b.ebs())
        .and_then(|e| e.volume_id())
        .unwrap()
        .to_string();
    let points = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("volume-id")
                .values(&volume)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(points.snapshots().len(), 1, "{points:?}");
    let point = &points.snapshots()[0];
    assert_eq!(
        point.kms_key_id(),
        Some(shared.as_str()),
        "on the shared key"
    );
    let origin = format!("{ALPHA}/{EAST}/{}", point.snapshot_id().unwrap());
    let vec2 = emu.vault_ec2(EAST).await;
    let in_vault = vec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap();
    let copy = in_vault
        .snapshots()
        .iter()
        .find(|x| tags_of(x.tags()).get("_GX_VAULT_OF_") == Some(&origin))
        .unwrap_or_else(|| panic!("a vault copy of {origin}: {in_vault:?}"));
    let vault_key = s(&emu.vault()["keys"][EAST]).to_string();
    assert_eq!(copy.kms_key_id(), Some(vault_key.as_str()));
    assert_eq!(emu.count_calls(&vault, "CopySnapshot", "denied"), 0);
    no_refusal_met(&emu);

    // The tenant role's own use of the key: refused (no kms:ViaService).
    let kms = aws_sdk_kms::Client::new(&emu.account_config(ALPHA, EAST).await);
    assert_eq!(
        refused(kms.decrypt().ciphertext_blob(blob.clone()).send().await),
        "AccessDeniedException",
        "a direct kms:Decrypt"
    );
    assert_eq!(
        refused(
            kms.decrypt()
                .ciphertext_blob(blob)
                .key_id(&shared)
                .send()
                .await
        ),
        "AccessDeniedException",
        "a direct kms:Decrypt naming the key"
    );
    let role = s(&emu.tenant("alpha")["role_arn"]).to_string();
    assert_eq!(
        refused(
            kms.create_grant()
                .key_id(&shared)
                .grantee_principal(&role)
                .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
                .send()
                .await
        ),
        "AccessDeniedException",
        "a direct kms:CreateGrant"
    );
    assert_eq!(emu.count_calls(ALPHA, "Decrypt", "denied"), 2);
    assert_eq!(emu.count_calls(ALPHA, "CreateGrant", "denied"), 1);
    let described = kms.describe_key().key_id(&shared).send().await.unwrap();
    assert_eq!(
        described.key_metadata().unwrap().arn(),
        Some(shared.as_str()),
        "kms:DescribeKey stays allowed (validate reads the key)"
    );

    // The vault role: its copy with a key `[vault.keys]` does not name is
    // refused (EC2 would use that key for the role).
    let again = vec2
        .copy_snapshot()
        .source_snapshot_id(copy.snapshot_id().unwrap())
        .source_region(EAST)
        .encrypted(true)
        .kms_key_id(&unnamed)
        .send()
        .await;
    let err = format!("{again:?}");
    assert_eq!(refused(again), "UnauthorizedOperation");
    assert!(err.contains(&unnamed) && err.contains("kms:"), "{err}");
    assert_eq!(emu.count_calls(&vault, "CopySnapshot", "denied"), 1);
}
