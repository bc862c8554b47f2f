//! Vault copies: every recovery point copied into a separate backup account,
//! re-encrypted with the vault's key, with no share left behind; checked
//! through the emulator's API as the tenant and as the vault.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::harness::{rds_tags_of, s, selected_by_nightly, tags_of, Emulator, PlanText, Tags};

const ALPHA: &str = "222222222222";

/// Plan `nightly` of alpha's us-east-1 with a `[[vault]]` rule into the
/// seeded vault, in the source's region.
fn vault_plan(lines: &str) -> PlanText {
    PlanText::new().retention("days = 7").vault("vault", lines)
}

/// The vault's snapshots in `region`: id → (tags, kms key, encrypted).
async fn vault_snapshots(emu: &Emulator, region: &str) -> BTreeMap<String, (Tags, String, bool)> {
    let out = emu
        .vault_ec2(region)
        .await
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap();
    out.snapshots()
        .iter()
        .map(|x| {
            (
                x.snapshot_id().unwrap().to_string(),
                (
                    tags_of(x.tags()),
                    x.kms_key_id().unwrap_or_default().to_string(),
                    x.encrypted().unwrap_or(false),
                ),
            )
        })
        .collect()
}

/// What the vault can still see of alpha's snapshots (shares not removed).
async fn shared_with_vault(emu: &Emulator, region: &str) -> Vec<String> {
    emu.vault_ec2(region)
        .await
        .describe_snapshots()
        .owner_ids(ALPHA)
        .restorable_by_user_ids("self")
        .send()
        .await
        .unwrap()
        .snapshots()
        .iter()
        .map(|x| x.snapshot_id().unwrap().to_string())
        .collect()
}

fn vault_key(emu: &Emulator, region: &str) -> String {
    s(&emu.vault()["keys"][region]).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_night_with_a_vault_rule_leaves_a_vault_owned_encrypted_copy_of_every_point() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha"]);
    let p = emu.write_plan(
        "nightly",
        vault_plan("regions = [\"same\"]").databases(true),
    );
    let reports = emu.backup_completed(&p);
    let types: Vec<&str> = reports.iter().map(|r| s(&r["job_type"])).collect();
    assert_eq!(types, ["Snap Backup", "Vault Copy"], "{reports:?}");
    let job = reports[0]["job"].as_u64().unwrap().to_string();

    // Every snapshot the backup made has exactly one vault copy, owned by
    // the vault, encrypted with the vault's key, tagged with its origin.
    let east = emu.snapshots("alpha", "us-east-1").await;
    let sources: Vec<(&String, &Tags)> = east
        .iter()
        .filter(|(_, t)| t.get("_GX_BACKUP_") == Some(&job))
        .collect();
    assert_eq!(sources.len(), 4, "two nightly instances × two volumes");
    let vault = vault_snapshots(&emu, "us-east-1").await;
    for (sid, st) in &sources {
        let key = format!("{ALPHA}/us-east-1/{sid}");
        let copies: Vec<&(Tags, String, bool)> = vault
            .values()
            .filter(|(t, _, _)| t.get("_GX_VAULT_OF_") == Some(&key))
            .collect();
        assert_eq!(copies.len(), 1, "one vault copy of {sid}: {vault:?}");
        let (t, kms, encrypted) = copies[0];
        assert!(*encrypted, "the vault copy of {sid} is encrypted");
        assert_eq!(kms, &vault_key(&emu, "us-east-1"), "with the vault's key");
        assert_eq!(t.get("_GX_VAULT_").map(String::as_str), Some("vault"));
        for k in [
            "_GX_BACKUP_",
            "_GX_PLAN_",
            "_GX_SOURCE_",
            "_GX_AGENT_",
            "_GX_DEVICES_",
        ] {
            assert_eq!(t.get(k), st.get(k), "{k} carried to the vault copy");
        }
    }
    // RDS and Aurora too, under identifiers that carry the tenant's account.
    let rds = emu.vault_rds("us-east-1").await;
    let dbs = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let db_copies: Vec<_> = dbs
        .db_snapshots()
        .iter()
        .filter(|d| rds_tags_of(d.tag_list()).contains_key("_GX_VAULT_OF_"))
        .collect();
    assert_eq!(db_copies.len(), 1, "{dbs:?}");
    assert!(db_copies[0]
        .db_snapshot_identifier()
        .unwrap()
        .ends_with(&format!("-{ALPHA}")));
    assert_eq!(
        db_copies[0].kms_key_id(),
        Some(vault_key(&emu, "us-east-1").as_str())
    );
    let clusters = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert_eq!(
        clusters
            .db_cluster_snapshots()
            .iter()
            .filter(|d| rds_tags_of(d.tag_list()).contains_key("_GX_VAULT_OF_"))
            .count(),
        1,
        "{clusters:?}"
    );

    // No share is left in the tenant account.
    assert_eq!(
        shared_with_vault(&emu, "us-east-1").await,
        Vec::<String>::new()
    );
    let trds = emu.rds("alpha", "us-east-1").await;
    let mine = trds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    for d in mine.db_snapshots() {
        let attrs = trds
            .describe_db_snapshot_attributes()
            .db_snapshot_identifier(d.db_snapshot_identifier().unwrap())
            .send()
            .await
            .unwrap();
        for a in attrs
            .db_snapshot_attributes_result()
            .map(|r| r.db_snapshot_attributes())
            .unwrap_or_default()
        {
            assert!(
                !a.attribute_values()
                    .iter()
                    .any(|v| v == &emu.vault_account()),
                "{} is still shared with the vault",
                d.db_snapshot_identifier().unwrap()
            );
        }
    }

    // The tenant deletes its originals: the vault copies stay.
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    for (sid, _) in &sources {
        ec2.delete_snapshot()
            .snapshot_id(*sid)
            .send()
            .await
            .unwrap();
    }
    let after = vault_snapshots(&emu, "us-east-1").await;
    for (sid, _) in &sources {
        let key = format!("{ALPHA}/us-east-1/{sid}");
        assert!(after
            .values()
            .any(|(t, _, _)| t.get("_GX_VAULT_OF_") == Some(&key)));
    }

    // `list` shows the vault copies beside the tenant's points.
    let list = emu.run(&["list", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(list.code, 0, "{list}");
    let rows: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    let vault_rows: Vec<&Value> = rows.iter().filter(|r| r["role"] == "vault").collect();
    assert_eq!(
        vault_rows.len(),
        4,
        "two sets, a DB and a cluster snapshot: {rows:?}"
    );
    assert!(vault_rows
        .iter()
        .all(|r| r["tenant"] == "alpha" && r["account"] == emu.vault_account().as_str()));

    // `jobs` shows the Vault Copy job.
    let jobs = emu.run(&["jobs", "-o", "json"]);
    assert!(jobs.stdout.contains("Vault Copy"), "{jobs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_copy_into_another_region_and_a_rerun_copies_nothing_twice() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha"]);
    let p = emu.write_plan("nightly", vault_plan("regions = [\"us-west-2\"]"));
    emu.backup_completed(&p);
    let west = vault_snapshots(&emu, "us-west-2").await;
    assert_eq!(
        west.values()
            .filter(|(t, _, _)| t.contains_key("_GX_VAULT_OF_"))
            .count(),
        4,
        "{west:?}"
    );
    for (t, kms, _) in west.values() {
        assert!(t
            .get("_GX_VAULT_OF_")
            .unwrap()
            .starts_with(&format!("{ALPHA}/us-east-1/")));
        assert_eq!(kms, &vault_key(&emu, "us-west-2"));
    }
    // A second vault copy finds every copy in place.
    let run = emu.run(&[
        "vault-copy",
        "--plan",
        p.to_str().unwrap(),
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        emu.count_calls(&emu.vault_account(), "CopySnapshot", "ok"),
        4
    );
    assert_eq!(vault_snapshots(&emu, "us-west-2").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_copy_cut_short_resumes_without_duplicates_and_stops_its_shares() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha"]);
    let vault = emu.vault_account();
    let p = emu.write_plan("nightly", vault_plan(""));
    // The vault's copies stay pending: the job times out with its copies
    // in flight (a crash mid-copy leaves the same), and their shares stay.
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": vault, "kinds": ["snapshot"]})),
    );
    let run = emu.backup(&p, &["--wait-timeout", "3"]);
    let reports = run.reports();
    assert_eq!(reports.len(), 2, "{run}");
    assert_eq!(reports[1]["job_type"], "Vault Copy");
    assert_ne!(reports[1]["status"], "Completed", "{}", reports[1]);
    assert_eq!(
        shared_with_vault(&emu, "us-east-1").await.len(),
        4,
        "shared while the copies run"
    );
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
    // The next run copies nothing again and removes the shares.
    let run = emu.run(&[
        "vault-copy",
        "--plan",
        p.to_str().unwrap(),
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let copies = vault_snapshots(&emu, "us-east-1").await;
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    for (t, _, _) in copies.values() {
        *by_key.entry(t["_GX_VAULT_OF_"].clone()).or_default() += 1;
    }
    assert_eq!(by_key.len(), 4, "{copies:?}");
    assert!(by_key.values().all(|n| *n == 1), "no duplicate: {by_key:?}");
    assert_eq!(
        shared_with_vault(&emu, "us-east-1").await,
        Vec::<String>::new()
    );

    // The next night, the vault's first CopySnapshot is made but answered
    // with a 500: the copy is adopted by its _GX_VAULT_OF_, not made twice.
    emu.fault(json!({"action": "CopySnapshot", "code": "InternalError", "after": true, "count": 1, "account": vault}));
    emu.backup_completed(&p);
    assert_eq!(emu.count_calls(&vault, "CopySnapshot", "injected"), 1);
    let copies = vault_snapshots(&emu, "us-east-1").await;
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    for (t, _, _) in copies.values() {
        *by_key.entry(t["_GX_VAULT_OF_"].clone()).or_default() += 1;
    }
    assert_eq!(by_key.len(), 8, "{copies:?}");
    assert!(by_key.values().all(|n| *n == 1), "no duplicate: {by_key:?}");
    assert_eq!(
        shared_with_vault(&emu, "us-east-1").await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_on_the_aws_managed_key_is_reported_and_the_others_are_copied() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha"]);
    // An instance whose data volume is encrypted with aws/ebs.
    let managed = encrypted_instance(&emu, None).await;
    let p = emu.write_plan("nightly", vault_plan(""));
    let run = emu.backup(&p, &[]);
    assert_eq!(run.code, 1, "completed with errors: {run}");
    let reports = run.reports();
    let vault_job: &Value = &reports[1];
    assert_eq!(
        vault_job["status"], "Completed w/ one or more errors",
        "{vault_job}"
    );
    let failed: Vec<&Value> = vault_job["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "Failed")
        .collect();
    assert_eq!(failed.len(), 1, "{vault_job}");
    assert_eq!(failed[0]["detail"]["source"], managed.as_str());
    assert!(
        s(&failed[0]["error"]).contains("default key")
            || s(&failed[0]["error"]).contains("aws/ebs"),
        "the reason names the AWS managed key: {}",
        failed[0]
    );
    // The two other instances' points are in the vault.
    let copies = vault_snapshots(&emu, "us-east-1").await;
    assert_eq!(copies.len(), 4, "{copies:?}");
    assert_eq!(
        shared_with_vault(&emu, "us-east-1").await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vault_prune_keeps_the_newest_copy_of_a_live_source() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha"]);
    let vault = emu.vault_account();
    let p = emu.write_plan("nightly", vault_plan("retention = { days = 3 }"));
    let first = emu.backup_completed(&p)[0]["job"]
        .as_u64()
        .unwrap()
        .to_string();
    emu.backup_completed(&p);
    let copies = vault_snapshots(&emu, "us-east-1").await;
    assert_eq!(copies.len(), 8);
    // Every vault copy is past the vault rule's 3 days: the first job's 12
    // days old, the second's 10.
    emu.age_all(&vault, 10);
    let older: Vec<String> = copies
        .iter()
        .filter(|(_, (t, _, _))| t["_GX_BACKUP_"] == first)
        .map(|(id, _)| id.clone())
        .collect();
    emu.age(&vault, "us-east-1", &older, 12);
    let dry = emu.run(&[
        "prune",
        "--plan",
        p.to_str().unwrap(),
        "-o",
        "json",
        "--dry-run",
    ]);
    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let left = vault_snapshots(&emu, "us-east-1").await;
    // The newest copy (two volumes) of each of the two live instances stays.
    assert_eq!(left.len(), 4, "{dry}\n{run}");
    let jobs: std::collections::BTreeSet<&String> =
        left.values().map(|(t, _, _)| &t["_GX_BACKUP_"]).collect();
    assert_eq!(jobs.len(), 1, "the newest job's copies: {left:?}");
    assert!(!jobs.contains(&first), "{left:?}");
    // The tenant's own points (not aged) are all there.
    assert_eq!(emu.snapshots("alpha", "us-east-1").await.len(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_and_a_database_restore_from_the_vault_after_the_tenant_lost_its_points() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha"]);
    let p = emu.write_plan("nightly", vault_plan("").databases(true));
    emu.backup_completed(&p);
    let inst = emu.nightly_instances("alpha", "us-east-1")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The tenant's own points are gone (deleted in the tenant account).
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    for sid in emu.snapshots("alpha", "us-east-1").await.keys() {
        ec2.delete_snapshot().snapshot_id(sid).send().await.unwrap();
    }
    let trds = emu.rds("alpha", "us-east-1").await;
    for d in trds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_snapshots()
    {
        trds.delete_db_snapshot()
            .db_snapshot_identifier(d.db_snapshot_identifier().unwrap())
            .send()
            .await
            .unwrap();
    }
    let vault_before = vault_snapshots(&emu, "us-east-1").await.len();

    let run = emu.restore(
        &p,
        "alpha",
        &["instance", "--instance", &inst, "--from-vault", "vault"],
    );
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["status"], "Completed", "{report}");
    let new_id = s(&report["restored"]["instance_id"]).to_string();
    let out = ec2
        .describe_instances()
        .instance_ids(&new_id)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
    assert_eq!(i.block_device_mappings().len(), 2, "both volumes came back");
    let from = tags_of(i.tags())["_GX_RESTORED_FROM_"].clone();
    assert!(
        from.starts_with("vault:vault/"),
        "the instance names the vault copy it came from: {from}"
    );
    // The restore's copies in the tenant are gone again, the vault shares
    // nothing with the tenant, and the vault still holds every copy.
    // (moto leaves an untagged placeholder snapshot of the registered image.)
    let rjob = report["job"].as_u64().unwrap().to_string();
    let tenant_snaps = emu.snapshots("alpha", "us-east-1").await;
    assert!(
        !tenant_snaps
            .values()
            .any(|t| t.get("_GX_BACKUP_") == Some(&rjob)),
        "the restore's own copies were deleted: {tenant_snaps:?}"
    );
    assert_eq!(
        report["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| s(c).starts_with("CopySnapshot"))
            .count(),
        2
    );
    let shared = ec2
        .describe_snapshots()
        .owner_ids(emu.vault_account())
        .restorable_by_user_ids("self")
        .send()
        .await
        .unwrap();
    assert!(shared.snapshots().is_empty(), "{shared:?}");
    assert_eq!(vault_snapshots(&emu, "us-east-1").await.len(), vault_before);

    // RDS: copied into the tenant with the tenant's key, then restored.
    let key = s(&emu.tenant("alpha")["keys"]["shared"]["us-east-1"]).to_string();
    let run = emu.restore(
        &p,
        "alpha",
        &[
            "rds",
            "--db",
            "alpha-pg",
            "--target-id",
            "alpha-pg-from-vault",
            "--from-vault",
            "vault",
            "--kms-key-id",
            &key,
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    let d = trds
        .describe_db_instances()
        .db_instance_identifier("alpha-pg-from-vault")
        .send()
        .await
        .unwrap();
    assert_eq!(d.db_instances()[0].db_instance_status(), Some("available"));
    let left = trds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert!(
        left.db_snapshots().is_empty(),
        "the restore's copy was deleted: {left:?}"
    );
}

/// An instance tagged for the nightly plan with one encrypted data volume
/// (`key`: a KMS key ARN; none: the account's aws/ebs key).
pub(crate) async fn encrypted_instance(emu: &Emulator, key: Option<&str>) -> String {
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let subnet = s(&emu.tenant("alpha")["resources"]["us-east-1"]["subnets"][0]["id"]).to_string();
    let mut ebs = aws_sdk_ec2::types::EbsBlockDevice::builder()
        .volume_size(5)
        .encrypted(true);
    if let Some(k) = key {
        ebs = ebs.kms_key_id(k);
    }
    let run = ec2
        .run_instances()
        .image_id("ami-760aaa0f")
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet)
        .block_device_mappings(
            aws_sdk_ec2::types::BlockDeviceMapping::builder()
                .device_name("/dev/sdf")
                .ebs(ebs.build())
                .build(),
        )
        .tag_specifications(selected_by_nightly())
        .send()
        .await
        .unwrap();
    run.instances()[0].instance_id().unwrap().to_string()
}

/// `validate` of a plan with a vault rule names, before any job, what the
/// vault could not copy: a volume on the AWS managed key (per resource) and
/// a customer key whose policy does not grant the vault (per key, with the
/// statement to add); a key shared with the vault is not named.
#[tokio::test(flavor = "multi_thread")]
async fn validate_names_the_keys_a_vault_cannot_use() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha"]);
    let keys = &emu.tenant("alpha")["keys"];
    let private = s(&keys["private"]["us-east-1"]).to_string();
    let shared = s(&keys["shared"]["us-east-1"]).to_string();
    let managed = encrypted_instance(&emu, None).await;
    let on_private = encrypted_instance(&emu, Some(&private)).await;
    let on_shared = encrypted_instance(&emu, Some(&shared)).await;
    // An RDS instance on aws/rds (no KmsKeyId): its snapshots cannot be shared.
    emu.rds("alpha", "us-east-1")
        .await
        .create_db_instance()
        .db_instance_identifier("alpha-enc")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("secret-password-1")
        .storage_encrypted(true)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("Backup")
                .value("nightly")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let p = emu.write_plan(
        "nightly",
        vault_plan("regions = [\"same\"]").databases(true),
    );

    let v = emu.run(&["validate", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_ne!(v.code, 0, "{v}");
    let out = v.json();
    let row = &out["tenants"][0];
    assert_eq!(row["error_code"], "VaultCopyBlocked", "{v}");
    let findings = row["vault"].as_array().unwrap_or_else(|| panic!("{v}"));
    let text = serde_json::to_string(findings).unwrap();
    let aws_managed: Vec<&Value> = findings
        .iter()
        .filter(|f| s(&f["problem"]).contains("AWS managed key aws/ebs"))
        .collect();
    assert_eq!(aws_managed.len(), 1, "{text}");
    assert!(s(&aws_managed[0]["resource"]).contains(&managed), "{text}");
    let rds_managed: Vec<&Value> = findings
        .iter()
        .filter(|f| s(&f["problem"]).contains("AWS managed key aws/rds"))
        .collect();
    assert_eq!(rds_managed.len(), 1, "{text}");
    assert_eq!(
        rds_managed[0]["resource"], "db-instance alpha-enc",
        "{text}"
    );
    assert!(
        s(&aws_managed[0]["problem"])
            .contains("cannot be vault-copied: encrypted with the AWS managed key aws/ebs; re-encrypt with a customer managed key"),
        "{text}"
    );
    let not_granted: Vec<&Value> = findings
        .iter()
        .filter(|f| s(&f["problem"]).contains("does not grant vault"))
        .collect();
    assert_eq!(not_granted.len(), 1, "{text}");
    assert_eq!(not_granted[0]["key"], private.as_str(), "{text}");
    let st = &not_granted[0]["statement"];
    assert_eq!(
        st["Principal"]["AWS"],
        format!("arn:aws:iam::{}:root", emu.vault_account()),
        "{text}"
    );
    for a in [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:CreateGrant",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
    ] {
        assert!(
            st["Action"].as_array().unwrap().iter().any(|x| x == a),
            "{a}: {text}"
        );
    }
    assert!(!text.contains(&shared), "the shared key is fine: {text}");
    assert!(!text.contains(&on_shared), "{text}");
    let _ = on_private;
    // The vault's own key in us-east-1 was found.
    let vaults = out["vaults"].as_array().unwrap();
    assert!(
        vaults
            .iter()
            .any(|r| r["region"] == "us-east-1" && r["ok"] == true),
        "{v}"
    );

    let human = emu.run(&["validate", "--plan", p.to_str().unwrap()]);
    assert!(
        human.stdout.contains("arn:aws:iam::") && human.stdout.contains("kms:CreateGrant"),
        "the statement to add is printed: {human}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ami_plan_gets_vault_owned_images() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha"]);
    let p = emu.write_plan("nightly", vault_plan("").method("ami"));
    let reports = emu.backup_completed(&p);
    assert_eq!(reports[1]["job_type"], "Vault Copy");
    let images = emu
        .vault_ec2("us-east-1")
        .await
        .describe_images()
        .owners("self")
        .send()
        .await
        .unwrap();
    let copies: Vec<_> = images
        .images()
        .iter()
        .filter(|i| tags_of(i.tags()).contains_key("_GX_VAULT_OF_"))
        .collect();
    assert_eq!(copies.len(), 2, "one vault image per instance: {images:?}");
    for i in &copies {
        assert_eq!(i.owner_id(), Some(emu.vault_account().as_str()));
        let t = tags_of(i.tags());
        assert!(t["_GX_VAULT_OF_"].starts_with(&format!("{ALPHA}/us-east-1/ami-")));
    }
    // The images' snapshots are the vault's, tagged for the vault prune.
    let snaps = vault_snapshots(&emu, "us-east-1").await;
    assert!(!snaps.is_empty());
    for (id, (t, kms, _)) in &snaps {
        assert!(t.contains_key("_GX_BACKUP_"), "{id}: {t:?}");
        assert_eq!(kms, &vault_key(&emu, "us-east-1"));
    }
    // No share left: neither the images nor their snapshots.
    assert_eq!(
        shared_with_vault(&emu, "us-east-1").await,
        Vec::<String>::new()
    );

    // A restore from the vault copies the vault's image into the tenant,
    // launches from it, and removes that image and its snapshots again.
    let inst = emu.nightly_instances("alpha", "us-east-1")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = emu.restore(
        &p,
        "alpha",
        &["instance", "--instance", &inst, "--from-vault", "vault"],
    );
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    let rjob = report["job"].as_u64().unwrap().to_string();
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let new_id = s(&report["restored"]["instance_id"]).to_string();
    let out = ec2
        .describe_instances()
        .instance_ids(&new_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.reservations()[0].instances()[0]
            .state()
            .unwrap()
            .name()
            .unwrap()
            .as_str(),
        "running"
    );
    let mine = ec2.describe_images().owners("self").send().await.unwrap();
    assert!(
        !mine
            .images()
            .iter()
            .any(|i| tags_of(i.tags()).get("_GX_BACKUP_") == Some(&rjob)),
        "the restore's image copy was deregistered: {mine:?}"
    );
    let snaps = emu.snapshots("alpha", "us-east-1").await;
    assert!(
        !snaps.values().any(|t| t.get("_GX_BACKUP_") == Some(&rjob)),
        "and its snapshots deleted: {snaps:?}"
    );
    let shared = ec2
        .describe_snapshots()
        .owner_ids(emu.vault_account())
        .restorable_by_user_ids("self")
        .send()
        .await
        .unwrap();
    assert!(shared.snapshots().is_empty(), "{shared:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_copies_of_a_tenant_no_longer_in_the_accounts_file_follow_their_rule_only() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha", "beta"]);
    let vault = emu.vault_account();
    let both = vault_plan("retention = { days = 3 }").group("east", &["alpha", "beta"]);
    let p = emu.write_plan("nightly", both);
    emu.backup_completed(&p);
    let beta = s(&emu.tenant("beta")["account"]).to_string();
    let of = |acct: &str, snaps: &BTreeMap<String, (Tags, String, bool)>| {
        snaps
            .values()
            .filter(|(t, _, _)| t["_GX_VAULT_OF_"].starts_with(&format!("{acct}/")))
            .count()
    };
    let before = vault_snapshots(&emu, "us-east-1").await;
    assert_eq!(
        (of(ALPHA, &before), of(&beta, &before)),
        (4, 4),
        "{before:?}"
    );

    // beta leaves: its account is in neither the accounts file nor the plan.
    emu.write_accounts_with_vault(&["alpha"]);
    let p = emu.write_plan("nightly", vault_plan("retention = { days = 3 }"));
    emu.age_all(&vault, 10);
    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let after = vault_snapshots(&emu, "us-east-1").await;
    // beta's copies are past their rule and nobody protects them; alpha's
    // are the newest of live sources.
    assert_eq!(of(&beta, &after), 0, "{run}");
    assert_eq!(of(ALPHA, &after), 4, "{run}");
}

/// A vault rule's lock holds the vault's copies against the vault role's own
/// delete; a volume (onto a new instance) and an Aurora cluster restore from
/// those copies after the tenant lost its points, and leave no copy behind.
#[tokio::test(flavor = "multi_thread")]
async fn locked_vault_copies_hold_and_a_volume_and_an_aurora_cluster_restore_from_them() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha"]);
    let p = emu.write_plan(
        "nightly",
        vault_plan("lock = { mode = \"governance\" }\nretention = { days = 7 }").databases(true),
    );
    emu.backup_completed(&p);
    let app = emu.nightly_instances("alpha", "us-east-1")[0].clone();
    let vol = s(&app["volumes"][1]["id"]).to_string();

    // Every vault snapshot is locked for the rule's 7 days, and the vault
    // role cannot delete one.
    let copies = vault_snapshots(&emu, "us-east-1").await;
    assert!(!copies.is_empty());
    let vec2 = emu.vault_ec2("us-east-1").await;
    let locked = vec2
        .describe_locked_snapshots()
        .set_snapshot_ids(Some(copies.keys().cloned().collect()))
        .send()
        .await
        .unwrap();
    assert_eq!(locked.snapshots().len(), copies.len(), "{locked:?}");
    for l in locked.snapshots() {
        assert_eq!(l.lock_state().unwrap().as_str(), "governance", "{l:?}");
        let secs = l.lock_expires_on().unwrap().secs() - l.lock_created_on().unwrap().secs();
        assert_eq!(secs, 7 * 86_400, "{l:?}");
    }
    let first = copies.keys().next().unwrap().clone();
    assert!(
        vec2.delete_snapshot()
            .snapshot_id(&first)
            .send()
            .await
            .is_err(),
        "a locked vault copy cannot be deleted"
    );
    assert!(vault_snapshots(&emu, "us-east-1")
        .await
        .contains_key(&first));

    // The tenant loses its own points.
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    for sid in emu.snapshots("alpha", "us-east-1").await.keys() {
        ec2.delete_snapshot().snapshot_id(sid).send().await.unwrap();
    }
    let trds = emu.rds("alpha", "us-east-1").await;
    for c in trds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_cluster_snapshots()
    {
        trds.delete_db_cluster_snapshot()
            .db_cluster_snapshot_identifier(c.db_cluster_snapshot_identifier().unwrap())
            .send()
            .await
            .unwrap();
    }

    // A volume onto a new instance, from the vault.
    let run = emu.restore(
        &p,
        "alpha",
        &[
            "volume",
            "--volume",
            &vol,
            "--new-instance",
            "--image-id",
            s(&emu.fixture["image_id"]),
            "--from-vault",
            "vault",
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["status"], "Completed", "{report}");
    let new_vol = s(&report["restored"]["volume_id"]).to_string();
    let v = ec2
        .describe_volumes()
        .volume_ids(&new_vol)
        .send()
        .await
        .unwrap();
    let v = &v.volumes()[0];
    assert_eq!(
        v.attachments().len(),
        1,
        "attached to the new instance: {v:?}"
    );
    let from = tags_of(v.tags())["_GX_RESTORED_FROM_"].clone();
    assert!(from.starts_with("vault:vault/"), "{from}");
    let rjob = report["job"].as_u64().unwrap().to_string();
    let tenant_snaps = emu.snapshots("alpha", "us-east-1").await;
    assert!(
        !tenant_snaps
            .values()
            .any(|t| t.get("_GX_BACKUP_") == Some(&rjob)),
        "the restore's own copy was deleted: {tenant_snaps:?}"
    );

    // An Aurora cluster, from the vault, with the tenant's key.
    let key = s(&emu.tenant("alpha")["keys"]["shared"]["us-east-1"]).to_string();
    let run = emu.restore(
        &p,
        "alpha",
        &[
            "rds",
            "--cluster",
            "alpha-aurora",
            "--target-id",
            "alpha-aurora-from-vault",
            "--from-vault",
            "vault",
            "--kms-key-id",
            &key,
        ],
    );
    assert_eq!(run.code, 0, "{run}");
    let c = trds
        .describe_db_clusters()
        .db_cluster_identifier("alpha-aurora-from-vault")
        .send()
        .await
        .unwrap();
    assert_eq!(c.db_clusters()[0].status(), Some("available"));
    let left = trds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert!(
        left.db_cluster_snapshots().is_empty(),
        "the restore's copy was deleted: {left:?}"
    );
    // The vault copies are all still there, and none is shared.
    assert_eq!(vault_snapshots(&emu, "us-east-1").await.len(), copies.len());
    let shared = ec2
        .describe_snapshots()
        .owner_ids(emu.vault_account())
        .restorable_by_user_ids("self")
        .send()
        .await
        .unwrap();
    assert!(shared.snapshots().is_empty(), "{shared:?}");
}

/// An AMI (and its snapshots) left shared with the vault by a run that died
/// after its copy was made is unshared by the next vault copy; an image of
/// the tenant's own, shared by a person, is left alone.
#[tokio::test(flavor = "multi_thread")]
async fn an_ami_share_left_by_an_earlier_run_is_stopped_by_the_next_vault_copy() {
    let emu = Emulator::start();
    emu.write_accounts_with_vault(&["alpha"]);
    let p = emu.write_plan("nightly", vault_plan("").method("ami"));
    emu.backup_completed(&p);
    let vault = emu.vault_account();
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let shared_with_vault = || async {
        ec2.describe_images()
            .owners("self")
            .executable_users(&vault)
            .send()
            .await
            .unwrap()
            .images()
            .iter()
            .map(|i| i.image_id().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    assert!(shared_with_vault().await.is_empty(), "the night unshared");
    let own = ec2
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag-key")
                .values("_GX_BACKUP_")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ami = own.images()[0].image_id().unwrap().to_string();
    // A crash between the copy and the unshare leaves this behind.
    let perm = aws_sdk_ec2::types::LaunchPermission::builder()
        .user_id(&vault)
        .build();
    let share = |id: String| {
        ec2.modify_image_attribute()
            .image_id(id)
            .attribute("launchPermission")
            .launch_permission(
                aws_sdk_ec2::types::LaunchPermissionModifications::builder()
                    .add(perm.clone())
                    .build(),
            )
            .send()
    };
    share(ami.clone()).await.unwrap();
    // An image that rolesnap did not make, shared by a person.
    let theirs = ec2
        .register_image()
        .name("golden")
        .root_device_name("/dev/sda1")
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_string();
    share(theirs.clone()).await.unwrap();
    // And a snapshot of a person's, shared with the vault.
    let vol = ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(1)
        .send()
        .await
        .unwrap()
        .volume_id()
        .unwrap()
        .to_string();
    let snap = ec2
        .create_snapshot()
        .volume_id(vol)
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string();
    ec2.modify_snapshot_attribute()
        .snapshot_id(&snap)
        .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
        .operation_type(aws_sdk_ec2::types::OperationType::Add)
        .user_ids(&vault)
        .send()
        .await
        .unwrap();
    assert_eq!(
        shared_with_vault().await,
        BTreeSet::from([ami.clone(), theirs.clone()])
    );

    let run = emu.run(&[
        "vault-copy",
        "--plan",
        p.to_str().unwrap(),
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        shared_with_vault().await,
        BTreeSet::from([theirs]),
        "the plan's image is unshared, the person's stays shared"
    );
    let seen = emu
        .vault_ec2("us-east-1")
        .await
        .describe_snapshots()
        .owner_ids(ALPHA)
        .restorable_by_user_ids("self")
        .send()
        .await
        .unwrap();
    let seen: Vec<_> = seen
        .snapshots()
        .iter()
        .filter_map(|x| x.snapshot_id())
        .collect();
    assert_eq!(
        seen,
        vec![snap.as_str()],
        "only the person's snapshot is still shared"
    );
}
