//! The tenant policy against the calls the engine makes, and its conditions.

use super::*;
use std::collections::BTreeSet;

/// AWS API actions from SDK method names: `create_db_snapshot` → `CreateDBSnapshot`.
fn action_name(method: &str) -> String {
    method
        .split('_')
        .map(|w| match w {
            "db" => "DB".to_string(),
            w => {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            }
        })
        .collect()
}

/// Calls made through clients bound to `ec2`, `rds`, `sts`, `kms` or `ssm` anywhere
/// in the engine's source (a convention the engine keeps so that this test
/// sees every call).
///
/// The scan does not know in which account a call is made: the same
/// adapters act in a tenant account and, for a Vault Copy, in a vault
/// account. Every call must be in the tenant policy (printed with a vault
/// declared); the vault's own calls are listed in [`VAULT_CALLS`] and
/// checked against `policy vault` below.
fn calls_in_source() -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(ec2|rds|sts|kms|ssm)\s*\.\s*([a-z][a-z0-9_]*)\(\)").unwrap();
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut out = BTreeSet::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&path).unwrap();
                // (`kms.clone()` and the like are not AWS calls.)
                for c in re.captures_iter(&src).filter(|c| &c[2] != "clone") {
                    out.insert(format!("{}:{}", &c[1], action_name(&c[2])));
                }
            }
        }
    }
    out
}

/// Actions the policy grants that the engine does not call by name: AWS
/// authorises them as part of a call it does make.
const IMPLIED: &[&str] = &[
    // The TagSpecifications of a create call (EC2), and the Tags of one (RDS).
    "ec2:CreateTags",
    "rds:AddTagsToResource",
    // RunInstances with the source's IamInstanceProfile.
    "iam:PassRole",
];

/// Called by the engine but deliberately not granted: the undo of a failed
/// RDS / Aurora restore. RDS cannot limit tagging to creation, so a delete
/// conditioned on `_GX_BACKUP_` would reopen tag-then-delete for production
/// databases; the restore reports what it could not remove instead.
const NOT_GRANTED: &[&str] = &[];

/// A vault account, as `rolesnap policy tenant --accounts` reads it.
const VAULT_ACCOUNT: &str = "999999999999";
const TENANTS: [&str; 2] = ["222222222222", "333333333333"];
const VAULT_KEY: &str =
    "arn:aws:kms:us-east-1:999999999999:key/11111111-2222-3333-4444-555555555555";

fn vaults() -> Vec<String> {
    vec![VAULT_ACCOUNT.to_string()]
}

/// The tenant policy with a vault declared (the most it ever grants).
fn tenant_policy() -> Value {
    permissions(&vaults())
}

fn scope() -> Scope {
    Scope {
        vault_accounts: vaults(),
        tenant_accounts: TENANTS.iter().map(|t| t.to_string()).collect(),
        vault_keys: vec![VAULT_KEY.to_string()],
        notify_topics: Vec::new(),
    }
}

fn granted() -> BTreeSet<String> {
    granted_by(&tenant_policy())
}

fn granted_by(policy: &Value) -> BTreeSet<String> {
    allowed_actions(policy)
        .into_iter()
        .map(|(a, _)| a)
        .collect()
}

#[test]
fn every_action_the_code_calls_is_in_the_tenant_policy() {
    let calls = calls_in_source();
    assert!(
        calls.contains("ec2:DescribeInstances"),
        "scanner finds calls: {calls:?}"
    );
    let policy = granted();
    // GetCallerIdentity needs no permission; AssumeRole is the admin side's.
    let free = ["sts:GetCallerIdentity", "sts:AssumeRole"];
    let missing: Vec<&String> = calls
        .iter()
        .filter(|c| {
            !policy.contains(*c)
                && !free.contains(&c.as_str())
                && !NOT_GRANTED.contains(&c.as_str())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "actions called but not in `rolesnap policy tenant`: {missing:?}"
    );
}

#[test]
fn the_tenant_policy_grants_only_what_the_code_calls() {
    let calls = calls_in_source();
    let extra: Vec<String> = granted()
        .into_iter()
        .filter(|a| {
            !calls.contains(a)
                && !IMPLIED.contains(&a.as_str())
                && !KMS_VIA_SERVICE.contains(&a.as_str())
        })
        .collect();
    assert!(
        extra.is_empty(),
        "`rolesnap policy tenant` grants actions the engine never calls: {extra:?}"
    );
    // Sharing and the key reads only with a vault declared.
    let without_vault = granted_by(&permissions(&[]));
    for share in [
        "ec2:ModifySnapshotAttribute",
        "ec2:ModifyImageAttribute",
        "rds:ModifyDBSnapshotAttribute",
        "rds:ModifyDBClusterSnapshotAttribute",
        "kms:GetKeyPolicy",
    ] {
        assert!(
            !without_vault.contains(share),
            "{share} granted without a vault"
        );
        assert!(
            granted().contains(share),
            "{share} not granted with a vault"
        );
    }
    for gone in [
        "s3:DeleteObject",
        "s3:PutBucketAcl",
        "ec2:StopInstances",
        "ec2:ModifyInstanceAttribute",
        "ec2:DeleteTags",
        "rds:RemoveTagsFromResource",
        "ec2:UnlockSnapshot",
    ] {
        assert!(!granted().contains(gone), "{gone} is granted");
    }
    assert!(
        tenant_policy().to_string().find("\"*:*\"").is_none(),
        "no wildcard action"
    );
}

fn statements() -> Vec<Value> {
    tenant_policy()["Statement"].as_array().unwrap().clone()
}

fn vault_statements() -> Vec<Value> {
    vault_permissions(&scope())["Statement"]
        .as_array()
        .unwrap()
        .clone()
}

fn actions_of(s: &Value) -> Vec<String> {
    match &s["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        _ => vec![],
    }
}

#[test]
fn every_delete_modify_and_detach_needs_the_backup_tag() {
    let risky = [
        "Delete",
        "Deregister",
        "Terminate",
        "Detach",
        "Attach",
        "Modify",
        "Lock",
        "Unlock",
        "Stop",
    ];
    let all = statements().into_iter().chain(vault_statements());
    for s in all.filter(|s| s["Effect"] == "Allow") {
        for action in actions_of(&s) {
            let (service, verb) = action.split_once(':').unwrap();
            if service == "kms" || !risky.iter().any(|d| verb.starts_with(d)) {
                continue;
            }
            // The instance side of Attach/DetachVolume: the volume side is
            // conditioned (the instance is the customer's, by design).
            if s["Resource"] == "arn:aws:ec2:*:*:instance/*" {
                continue;
            }
            let text = s["Condition"].to_string();
            assert!(
                text.contains("/_GX_BACKUP_\""),
                "{action} is allowed without a _GX_BACKUP_ condition: {s}"
            );
        }
    }
}

#[test]
fn authority_tags_are_set_only_at_creation() {
    let all = statements().into_iter().chain(vault_statements());
    for s in all.filter(|s| s["Effect"] == "Allow") {
        let s = &s;
        if !actions_of(s).iter().any(|a| a == "ec2:CreateTags") {
            continue;
        }
        let c = &s["Condition"];
        let at_creation = c["StringEquals"]["ec2:CreateAction"].is_array();
        let ami_only = c["ForAllValues:StringEquals"]["aws:TagKeys"] == json!(["_GX_AMI_"])
            && c["StringLike"]["aws:ResourceTag/_GX_BACKUP_"] == "*"
            && s["Resource"] == "arn:aws:ec2:*::snapshot/*";
        assert!(
            at_creation || ami_only,
            "CreateTags open beyond creation: {s}"
        );
    }
    let deny = statements()
        .into_iter()
        .find(|s| s["Sid"] == "DenyEc2AuthorityTagsAfterCreation")
        .unwrap();
    let keys = &deny["Condition"]["ForAnyValue:StringEquals"]["aws:TagKeys"];
    for t in AUTHORITY_TAGS.iter().filter(|t| **t != AMI_SNAPSHOT_TAG) {
        assert!(
            keys.as_array().unwrap().iter().any(|k| k == t),
            "{t} not denied"
        );
    }
    let removal = statements()
        .into_iter()
        .find(|s| s["Sid"] == "DenyEc2RemoveProtectedTags")
        .unwrap()
        .to_string();
    for t in protected_tags() {
        assert!(removal.contains(t), "removing {t} is not denied");
    }
    assert!(AUTHORITY_TAGS.contains(&"_GX_AGENT_") && AUTHORITY_TAGS.contains(&"_GX_JOB_START_"));
}

#[test]
fn rds_tags_and_deletes_are_scoped_to_rolesnap_snapshot_arns() {
    let all = statements().into_iter().chain(vault_statements());
    for s in all.filter(|s| s["Effect"] == "Allow") {
        let s = &s;
        let acts = actions_of(s);
        if acts
            .iter()
            .any(|a| a == "rds:DeleteDBSnapshot" || a == "rds:DeleteDBClusterSnapshot")
        {
            assert!(s["Resource"].as_str().unwrap().contains(":sp-*"), "{s}");
        }
        if acts.iter().any(|a| a == "rds:AddTagsToResource") {
            assert!(s["Resource"].is_array(), "AddTagsToResource on *: {s}");
            assert!(
                s["Condition"]
                    .to_string()
                    .contains("aws:RequestTag/_GX_BACKUP_"),
                "{s}"
            );
        }
        // Database deletes only of drills' databases, by name.
        if acts
            .iter()
            .any(|a| a == "rds:DeleteDBInstance" || a == "rds:DeleteDBCluster")
        {
            assert!(
                s["Resource"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(":rolesnap-drill-*"),
                "database deletes only by the drills' names: {s}"
            );
        }
    }
    let pass = statements()
        .into_iter()
        .find(|s| s["Sid"] == "PassRoleToEc2Only")
        .unwrap();
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        "ec2.amazonaws.com"
    );
}

#[test]
fn tenant_trust_carries_admin_and_external_id() {
    let t = tenant_trust("111111111111", Some("ext-1"), TrustOptions::default());
    assert_eq!(
        t["Statement"]["Principal"]["AWS"],
        "arn:aws:iam::111111111111:root"
    );
    assert!(t["Statement"]["Principal"].get("Service").is_none(), "{t}");
    assert_eq!(
        t["Statement"]["Condition"]["StringEquals"]["sts:ExternalId"],
        "ext-1"
    );
    assert!(
        tenant_trust("111111111111", None, TrustOptions::default())["Statement"]
            .get("Condition")
            .is_none()
    );
    let with_ec2 = tenant_trust(
        "111111111111",
        Some("x"),
        TrustOptions { ec2_service: true },
    );
    assert_eq!(
        with_ec2["Statement"]["Principal"]["Service"],
        "ec2.amazonaws.com"
    );
}

#[test]
fn action_names() {
    assert_eq!(
        action_name("describe_db_cluster_snapshots"),
        "DescribeDBClusterSnapshots"
    );
    assert_eq!(action_name("create_snapshots"), "CreateSnapshots");
}

/// Actions rolesnap calls in a vault account (jobs/vault.rs through the
/// adapters, the vault prune, `validate`): the scan above cannot tell them
/// from a tenant's, so they are listed here.
const VAULT_CALLS: &[&str] = &[
    // Listing its copies, their locks, and what tenants still share.
    "ec2:DescribeSnapshots",
    "ec2:DescribeImages",
    "ec2:DescribeLockedSnapshots",
    "rds:DescribeDBSnapshots",
    "rds:DescribeDBClusterSnapshots",
    // The copies, tagged at creation.
    "ec2:CopySnapshot",
    "ec2:CopyImage",
    "rds:CopyDBSnapshot",
    "rds:CopyDBClusterSnapshot",
    // Lock of its copies; prune.
    "ec2:LockSnapshot",
    "ec2:DeleteSnapshot",
    "ec2:DeregisterImage",
    "rds:DeleteDBSnapshot",
    "rds:DeleteDBClusterSnapshot",
    // validate: the vault's key in each region.
    "kms:DescribeKey",
];

/// Granted to the vault for a restore from the vault: sharing a copy back
/// with a tenant account (the restore side is not written yet).
const VAULT_SHARE_BACK: &[&str] = &[
    "ec2:ModifySnapshotAttribute",
    "ec2:ModifyImageAttribute",
    "rds:ModifyDBSnapshotAttribute",
    "rds:ModifyDBClusterSnapshotAttribute",
];

#[test]
fn the_vault_policy_grants_the_vault_calls_and_nothing_else() {
    let policy = vault_permissions(&scope());
    let granted = granted_by(&policy);
    let calls = calls_in_source();
    for c in VAULT_CALLS {
        assert!(granted.contains(*c), "{c} not in `rolesnap policy vault`");
        assert!(
            calls.contains(*c) || c.starts_with("ec2:Describe") || c.starts_with("rds:Describe"),
            "{c} is listed as a vault call but the engine never calls it"
        );
    }
    let extra: Vec<&String> = granted
        .iter()
        .filter(|a| {
            !VAULT_CALLS.contains(&a.as_str())
                && !VAULT_SHARE_BACK.contains(&a.as_str())
                && !IMPLIED.contains(&a.as_str())
                && !KMS_VAULT_KEY_USE.contains(&a.as_str())
                && !KMS_TENANT_SOURCE_KEY_USE.contains(&a.as_str())
        })
        .collect();
    assert!(extra.is_empty(), "`policy vault` grants more: {extra:?}");
    for gone in [
        "ec2:CreateSnapshot",
        "ec2:CreateSnapshots",
        "ec2:CreateImage",
        "ec2:RunInstances",
        "ec2:DeleteVolume",
        "ec2:TerminateInstances",
        "ec2:UnlockSnapshot",
        "ec2:DeleteTags",
        "rds:RemoveTagsFromResource",
        "iam:PassRole",
    ] {
        assert!(!granted.contains(gone), "{gone} is granted to the vault");
    }
    // Tags only at creation by a copy.
    let tag_at_creation = vault_statements()
        .into_iter()
        .find(|s| s["Sid"] == "Ec2TagOnlyAtCreation")
        .unwrap();
    assert_eq!(
        tag_at_creation["Condition"]["StringEquals"]["ec2:CreateAction"],
        json!(["CopyImage", "CopySnapshot"])
    );
}

#[test]
fn shares_go_only_to_the_declared_accounts() {
    let check = |statements: Vec<Value>, accounts: &[&str]| {
        let mut seen = 0;
        for s in statements.iter().filter(|s| s["Effect"] == "Allow") {
            let acts = actions_of(s);
            if acts.iter().any(|a| a.starts_with("ec2:Modify")) {
                seen += 1;
                let c = &s["Condition"];
                for k in ["ec2:Add/userId", "ec2:Remove/userId"] {
                    assert_eq!(c["ForAllValues:StringEquals"][k], json!(accounts), "{s}");
                }
                assert_eq!(c["Null"]["ec2:Add/group"], "true", "{s}");
                assert!(c["StringEquals"]["ec2:Attribute"].is_string(), "{s}");
                assert_eq!(c["StringLike"]["ec2:ResourceTag/_GX_BACKUP_"], "*", "{s}");
            }
            if acts.iter().any(|a| a.starts_with("rds:Modify")) {
                seen += 1;
                assert!(s["Resource"].as_str().unwrap().contains(":sp-*"), "{s}");
            }
        }
        assert_eq!(seen, 4, "two EC2 and two RDS share statements");
        assert!(
            statements.iter().any(|s| s["Sid"] == "DenyEc2PublicShares"),
            "public shares denied"
        );
    };
    check(statements(), &[VAULT_ACCOUNT]);
    check(vault_statements(), &TENANTS);
    assert!(
        !permissions(&[]).to_string().contains("Modify"),
        "no vault: no share statement"
    );
}

#[test]
fn the_vault_uses_its_own_keys_and_tenant_keys_only_through_ec2_and_rds() {
    let st = vault_statements();
    let own = st.iter().find(|s| s["Sid"] == "KmsVaultKeys").unwrap();
    assert_eq!(own["Resource"], json!([VAULT_KEY]));
    for a in [
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:CreateGrant",
        "kms:DescribeKey",
    ] {
        assert!(actions_of(own).iter().any(|x| x == a), "{a}");
    }
    let src = st
        .iter()
        .find(|s| s["Sid"] == "KmsTenantSourceKeysThroughEc2AndRdsOnly")
        .unwrap();
    assert_eq!(
        src["Resource"],
        json!(TENANTS
            .iter()
            .map(|t| format!("arn:aws:kms:*:{t}:key/*"))
            .collect::<Vec<_>>())
    );
    assert!(src["Condition"].to_string().contains("kms:ViaService"));
    for s in &st {
        if actions_of(s).iter().any(|a| a.starts_with("kms:")) {
            assert_ne!(s["Resource"], json!("*"), "{s}");
        }
    }
}

#[test]
fn the_vault_trust_is_the_admin_account_with_the_external_id() {
    let docs = documents(
        Side::Vault,
        "111111111111",
        Some("vault-ext"),
        TrustOptions::default(),
        &scope(),
    );
    let names: Vec<&str> = docs.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["vault-trust", "permissions"]);
    let t = &docs[0].1;
    assert_eq!(
        t["Statement"]["Principal"]["AWS"],
        "arn:aws:iam::111111111111:root"
    );
    assert_eq!(
        t["Statement"]["Condition"]["StringEquals"]["sts:ExternalId"],
        "vault-ext"
    );
}

/// Calls the admin principal makes itself (alerts, `accounts
/// --from-organization`): through clients bound to `sns` or `organizations`
/// in the engine and the agent.
fn admin_calls_in_source() -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(sns|organizations)\s*\.\s*([a-z][a-z0-9_]*)\(\)").unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("src"), root.join("../agent/src")];
    let mut out = BTreeSet::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&path).unwrap();
                for c in re.captures_iter(&src).filter(|c| &c[2] != "clone") {
                    out.insert(format!("{}:{}", &c[1], action_name(&c[2])));
                }
            }
        }
    }
    out
}

#[test]
fn the_admin_principal_document_grants_what_alerts_and_organizations_call_and_no_more() {
    let calls = admin_calls_in_source();
    assert!(calls.contains("sns:Publish"), "{calls:?}");
    assert!(calls.contains("organizations:ListAccounts"), "{calls:?}");
    let topic = "arn:aws:sns:us-east-1:111111111111:backup-alerts".to_string();
    let doc = admin_principal("111111111111", std::slice::from_ref(&topic));
    assert_eq!(granted_by(&doc), calls, "exactly what is called");
    // sns:Publish on the configured topic only, never on `*`.
    let publish = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"] == "sns:Publish")
        .unwrap();
    assert_eq!(publish["Resource"], json!([topic]));
    // Without a [notify] topic: the documented placeholder, in the admin account.
    let none = admin_principal("111111111111", &[]);
    assert_eq!(
        none["Statement"][0]["Resource"],
        json!(["arn:aws:sns:*:111111111111:rolesnap-alerts"])
    );
    let names: Vec<&str> = documents(
        Side::Admin,
        "111111111111",
        None,
        TrustOptions::default(),
        &scope(),
    )
    .into_iter()
    .map(|(n, _)| n)
    .collect();
    assert!(names.contains(&"admin-principal"), "{names:?}");
}
