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

/// Calls made through clients bound to `ec2`, `rds` or `sts` anywhere in
/// the engine's source (a convention the engine keeps so that this test
/// sees every call).
fn calls_in_source() -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(ec2|rds|sts)\s*\.\s*([a-z][a-z0-9_]*)\(\)").unwrap();
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut out = BTreeSet::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&path).unwrap();
                for c in re.captures_iter(&src) {
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
const NOT_GRANTED: &[&str] = &["rds:DeleteDBInstance", "rds:DeleteDBCluster"];

fn granted() -> BTreeSet<String> {
    allowed_actions(&permissions())
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
    let free = ["sts:GetCallerIdentity"];
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
    for gone in [
        "s3:DeleteObject",
        "s3:PutBucketAcl",
        "ec2:ModifySnapshotAttribute",
        "ec2:ModifyImageAttribute",
        "ec2:StopInstances",
        "ec2:ModifyInstanceAttribute",
        "ec2:DeleteTags",
        "rds:RemoveTagsFromResource",
        "ec2:UnlockSnapshot",
    ] {
        assert!(!granted().contains(gone), "{gone} is granted");
    }
    assert!(
        permissions().to_string().find("\"*:*\"").is_none(),
        "no wildcard action"
    );
}

fn statements() -> Vec<Value> {
    permissions()["Statement"].as_array().unwrap().clone()
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
    for s in statements().iter().filter(|s| s["Effect"] == "Allow") {
        for action in actions_of(s) {
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
    for s in statements().iter().filter(|s| s["Effect"] == "Allow") {
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
    for s in statements().iter().filter(|s| s["Effect"] == "Allow") {
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
        assert!(
            !acts
                .iter()
                .any(|a| a == "rds:DeleteDBInstance" || a == "rds:DeleteDBCluster"),
            "no database delete: {s}"
        );
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
