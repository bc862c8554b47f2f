//! The IAM documents an operator needs. The tenant `permissions` document is
//! rolesnap's own, stricter than the guide's restricted policy (which lets the
//! role tag anything `_GX_BACKUP_` and then delete it): it grants only the
//! actions the engine calls, lets the authority tags be set only when a
//! resource is created, and allows every delete only on resources carrying
//! `_GX_BACKUP_`. README.md, "Permission model", explains it statement by
//! statement, with the risks that remain.
//!
//! Condition keys, from the AWS Service Authorization Reference (SAR):
//! * EC2 (<https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html>):
//!   `ec2:CreateTags` takes `ec2:CreateAction`, `aws:RequestTag/${TagKey}` and
//!   `aws:TagKeys`; when tags are given in a create call (TagSpecifications of
//!   CreateSnapshot(s), CreateImage, CopySnapshot, CopyImage, RegisterImage,
//!   CreateVolume, RunInstances) EC2 authorises `ec2:CreateTags` with
//!   `ec2:CreateAction` = that action; a plain CreateTags call has no
//!   `ec2:CreateAction` (EC2 User Guide, "Grant permission to tag Amazon EC2
//!   resources during creation"). `ec2:DeleteTags` takes `aws:TagKeys`.
//!   DeleteSnapshot, DeleteVolume, DeregisterImage, TerminateInstances,
//!   DetachVolume, AttachVolume and LockSnapshot take `aws:ResourceTag/${TagKey}`
//!   (and the older `ec2:ResourceTag/${TagKey}`) on their resource types.
//!   Describe* actions support no resource-level permission (Resource `*` only).
//! * RDS (<https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html>):
//!   tags given to a create call (CreateDBSnapshot, CopyDBSnapshot,
//!   RestoreDBInstanceFromDBSnapshot …) are authorised as `rds:AddTagsToResource`
//!   on the new resource's ARN (RDS User Guide, "Grant permission to tag Amazon
//!   RDS resources during creation"); there is no create-action key, so
//!   `aws:RequestTag`/`aws:TagKeys` cannot tell creation from tagging later.
//!   What the policy can use is the ARN: `snapshot:` and `cluster-snapshot:`
//!   ARNs versus `db:` and `cluster:` ARNs, and the identifier in it.
//!   DeleteDBSnapshot takes `rds:snapshot-tag/${TagKey}`,
//!   DeleteDBClusterSnapshot `rds:cluster-snapshot-tag/${TagKey}` (and both
//!   `aws:ResourceTag/${TagKey}`); `rds:RemoveTagsFromResource` takes `aws:TagKeys`.
//! * IAM (<https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html>):
//!   `iam:PassRole` takes `iam:PassedToService`.
//! * KMS: `kms:ViaService` limits key use to calls EC2 or RDS make for the role.
//!
//! `policy/restricted.json` is the guide's policy, unchanged. rolesnap never
//! prints it; the emulator's seed attaches it (tests/emulator/seed.py) when
//! the guide itself is not beside the repository.

use serde_json::{json, Value};

use crate::tags;

/// The guide's `amazon_sts_assumerole.json` (the `sts-only` policy).
const STS_ONLY: &str = include_str!("policy/sts-only.json");
/// The guide's `tenant-trust-policy.json` (with `ADMIN_ACCOUNT_ID`), without
/// its `ec2.amazonaws.com` service principal (see [`TrustOptions`]).
const TENANT_TRUST: &str = include_str!("policy/tenant-trust.json");

/// Which side of the set-up a document is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Admin,
    Tenant,
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).expect("shipped policy JSON is valid")
}

/// The `sts-only` policy (both sides).
pub fn sts_only() -> Value {
    parse(STS_ONLY)
}

/// Trust policy of the admin role (`vsa-assume-role`): the access node's EC2
/// instance profile and principals of the admin account may assume it.
pub fn admin_role_trust(admin_account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {
                "Service": "ec2.amazonaws.com",
                "AWS": format!("arn:aws:iam::{admin_account}:root")
            }
        }]
    })
}

/// What the tenant trust policy admits beyond the admin account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrustOptions {
    /// Also trust the `ec2.amazonaws.com` service principal (the guide does;
    /// rolesnap never needs it: it assumes the role from the admin account).
    pub ec2_service: bool,
}

/// Trust policy of a tenant role: the admin account may assume it, with the
/// ExternalId when one is given (the CLI refuses to print it without one
/// unless told `--no-external-id`).
pub fn tenant_trust(admin_account: &str, external_id: Option<&str>, opts: TrustOptions) -> Value {
    let mut v = parse(&TENANT_TRUST.replace("ADMIN_ACCOUNT_ID", admin_account));
    if opts.ec2_service {
        v["Statement"]["Principal"]["Service"] = json!("ec2.amazonaws.com");
    }
    if let Some(x) = external_id {
        v["Statement"]["Condition"] = json!({"StringEquals": {"sts:ExternalId": x}});
    }
    v
}

/// The tags that carry authority: prune, catalog and restore trust them, and
/// the deletes are conditioned on `_GX_BACKUP_`. rolesnap sets them only when
/// it creates a resource; the policy denies adding or removing them later.
/// The one exception is `_GX_AMI_` on an AMI's snapshots (see
/// [`AMI_SNAPSHOT_TAG`]).
pub const AUTHORITY_TAGS: &[&str] = &[
    tags::BACKUP,
    tags::PLAN,
    tags::AMI,
    tags::COPY_OF,
    tags::AGENT,
    tags::JOB_START,
    tags::RESTORED_FROM,
];

/// `_GX_AMI_` holds the AMI's id, which does not exist yet when CreateImage or
/// CopyImage tags the snapshots behind it; it is added once the AMI is
/// available, and only to snapshots that already carry `_GX_BACKUP_`.
pub const AMI_SNAPSHOT_TAG: &str = tags::AMI;

/// Tags the role may never remove: the authority tags and a person's hold.
fn protected_tags() -> Vec<&'static str> {
    let mut t = AUTHORITY_TAGS.to_vec();
    t.push(tags::RETAIN);
    t
}

/// EC2 actions that only read (Describe* have no resource-level permission).
const EC2_READ: &[&str] = &[
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeKeyPairs",
    // The lock state of the agent's snapshots (prune, list). Like every
    // Describe*, it takes no resource-level condition.
    "ec2:DescribeLockedSnapshots",
    "ec2:DescribeRegions",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSnapshots",
    "ec2:DescribeSubnets",
    "ec2:DescribeVolumes",
];

/// EC2 actions that create something (each tags what it creates, at creation).
const EC2_CREATE: &[&str] = &[
    "ec2:CopyImage",
    "ec2:CopySnapshot",
    "ec2:CreateImage",
    "ec2:CreateSnapshot",
    "ec2:CreateSnapshots",
    "ec2:CreateVolume",
    "ec2:RegisterImage",
    "ec2:RunInstances",
];

/// The `ec2:CreateAction` values under which tags may be set.
fn ec2_create_actions() -> Vec<String> {
    EC2_CREATE
        .iter()
        .map(|a| a.trim_start_matches("ec2:").to_string())
        .collect()
}

/// EC2 deletes, each allowed only on resources tagged `_GX_BACKUP_`.
const EC2_DELETE_OWN: &[&str] = &[
    "ec2:DeleteSnapshot",
    "ec2:DeleteVolume",
    "ec2:DeregisterImage",
    "ec2:TerminateInstances",
];

/// RDS actions that only read.
const RDS_READ: &[&str] = &[
    "rds:DescribeDBClusterSnapshots",
    "rds:DescribeDBClusters",
    "rds:DescribeDBInstances",
    "rds:DescribeDBSnapshots",
];

/// RDS actions that create something.
const RDS_CREATE: &[&str] = &[
    "rds:CopyDBClusterSnapshot",
    "rds:CopyDBSnapshot",
    "rds:CreateDBClusterSnapshot",
    "rds:CreateDBInstance",
    "rds:CreateDBSnapshot",
    "rds:RestoreDBClusterFromSnapshot",
    "rds:RestoreDBInstanceFromDBSnapshot",
];

/// rolesnap's RDS snapshot identifiers start with this ([`tags::rds_identifier`]);
/// RDS cannot rename a snapshot, so the ARN pattern is a fact the role cannot
/// change.
const RDS_SNAPSHOT_PREFIX: &str = "sp-";

/// KMS actions EC2 and RDS perform on the caller's behalf when a copy is
/// encrypted with a customer key (`[[copy]] kms-key-id`). The engine makes no
/// KMS call itself.
pub const KMS_VIA_SERVICE: &[&str] = &[
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
];

fn rds_snapshot_arns() -> Value {
    json!([
        format!("arn:aws:rds:*:*:snapshot:{RDS_SNAPSHOT_PREFIX}*"),
        format!("arn:aws:rds:*:*:cluster-snapshot:{RDS_SNAPSHOT_PREFIX}*")
    ])
}

/// The restricted backup and recovery permissions of the tenant role.
pub fn permissions() -> Value {
    let authority = AUTHORITY_TAGS;
    let not_ami: Vec<&str> = authority
        .iter()
        .copied()
        .filter(|t| *t != AMI_SNAPSHOT_TAG)
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            // Reads. Describe* accept only Resource "*" (SAR: no resource type).
            {
                "Sid": "Ec2Read",
                "Effect": "Allow",
                "Action": EC2_READ,
                "Resource": "*"
            },
            // Creates: snapshots, AMIs, copies, and what a restore makes. Each
            // call tags what it creates in the same request (TagSpecifications).
            {
                "Sid": "Ec2Create",
                "Effect": "Allow",
                "Action": EC2_CREATE,
                "Resource": "*"
            },
            // Tags only as part of those creates: EC2 authorises the
            // TagSpecifications of a create as ec2:CreateTags with
            // ec2:CreateAction set; a plain CreateTags call has none.
            {
                "Sid": "Ec2TagOnlyAtCreation",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": "*",
                "Condition": {"StringEquals": {"ec2:CreateAction": ec2_create_actions()}}
            },
            // The one tag added later: _GX_AMI_ (the AMI id, unknown while
            // CreateImage/CopyImage runs) on snapshots that already carry
            // _GX_BACKUP_, and nothing else in the same call.
            {
                "Sid": "Ec2TagAmiIdOnOwnSnapshots",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": "arn:aws:ec2:*::snapshot/*",
                "Condition": {
                    "StringLike": {"aws:ResourceTag/_GX_BACKUP_": "*"},
                    "ForAllValues:StringEquals": {"aws:TagKeys": [AMI_SNAPSHOT_TAG]},
                    "Null": {"aws:TagKeys": "false"}
                }
            },
            // Belt and braces, whatever else is attached to the role: no
            // authority tag is added to an existing resource (no
            // ec2:CreateAction in the request) …
            {
                "Sid": "DenyEc2AuthorityTagsAfterCreation",
                "Effect": "Deny",
                "Action": "ec2:CreateTags",
                "Resource": "*",
                "Condition": {
                    "ForAnyValue:StringEquals": {"aws:TagKeys": not_ami},
                    "Null": {"ec2:CreateAction": "true"}
                }
            },
            // … nor _GX_AMI_ to an existing resource rolesnap did not make.
            {
                "Sid": "DenyEc2AmiTagOnForeignResources",
                "Effect": "Deny",
                "Action": "ec2:CreateTags",
                "Resource": "*",
                "Condition": {
                    "ForAnyValue:StringEquals": {"aws:TagKeys": [AMI_SNAPSHOT_TAG]},
                    "Null": {"ec2:CreateAction": "true", "aws:ResourceTag/_GX_BACKUP_": "true"}
                }
            },
            // No authority tag and no CV_Retain_Snap hold is ever removed (a
            // person lifts a hold, not the agent). DeleteTags is not granted at
            // all; these Denies hold even if another policy grants it.
            {
                "Sid": "DenyEc2RemoveProtectedTags",
                "Effect": "Deny",
                "Action": "ec2:DeleteTags",
                "Resource": "*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": protected_tags()}}
            },
            // DeleteTags without a tag list removes every tag; aws:TagKeys is
            // then absent.
            {
                "Sid": "DenyEc2RemoveAllTags",
                "Effect": "Deny",
                "Action": "ec2:DeleteTags",
                "Resource": "*",
                "Condition": {"Null": {"aws:TagKeys": "true"}}
            },
            // Deletes, deregistrations and terminations only of what carries
            // _GX_BACKUP_ (set only at creation, above).
            {
                "Sid": "Ec2DeleteOnlyOwn",
                "Effect": "Allow",
                "Action": EC2_DELETE_OWN,
                "Resource": "*",
                "Condition": {"StringLike": {"aws:ResourceTag/_GX_BACKUP_": "*"}}
            },
            // EBS Snapshot Lock of the agent's own snapshots (lock.rs). There is no
            // UnlockSnapshot: the engine never unlocks, even in governance mode;
            // a person with their own rights does. LockSnapshot on a snapshot
            // takes aws:ResourceTag (SAR, snapshot resource type).
            {
                "Sid": "Ec2LockOwnSnapshots",
                "Effect": "Allow",
                "Action": "ec2:LockSnapshot",
                "Resource": "arn:aws:ec2:*::snapshot/*",
                "Condition": {"StringLike": {"aws:ResourceTag/_GX_BACKUP_": "*"}}
            },
            // Attach and detach a restored volume: the volume must be rolesnap's,
            // the instance may be any (restore volume --attach-to, and its undo).
            {
                "Sid": "Ec2AttachDetachOwnVolumes",
                "Effect": "Allow",
                "Action": ["ec2:AttachVolume", "ec2:DetachVolume"],
                "Resource": "arn:aws:ec2:*:*:volume/*",
                "Condition": {"StringLike": {"aws:ResourceTag/_GX_BACKUP_": "*"}}
            },
            {
                "Sid": "Ec2AttachDetachAnyInstance",
                "Effect": "Allow",
                "Action": ["ec2:AttachVolume", "ec2:DetachVolume"],
                "Resource": "arn:aws:ec2:*:*:instance/*"
            },
            // A restored instance gets the instance profile its source had;
            // the role may pass a role to EC2 and to nothing else.
            {
                "Sid": "PassRoleToEc2Only",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "arn:aws:iam::*:role/*",
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
            },
            {
                "Sid": "RdsRead",
                "Effect": "Allow",
                "Action": RDS_READ,
                "Resource": "*"
            },
            {
                "Sid": "RdsCreate",
                "Effect": "Allow",
                "Action": RDS_CREATE,
                "Resource": "*"
            },
            // RDS authorises create-time tags as rds:AddTagsToResource on the
            // new resource, with no create-action key. So tags go only on
            // rolesnap's own snapshot identifiers (sp-…) and must include
            // _GX_BACKUP_ …
            {
                "Sid": "RdsTagOwnSnapshots",
                "Effect": "Allow",
                "Action": "rds:AddTagsToResource",
                "Resource": rds_snapshot_arns(),
                "Condition": {"StringLike": {"aws:RequestTag/_GX_BACKUP_": "*"}}
            },
            // … and on databases and clusters only with _GX_RESTORED_FROM_
            // (what a restore creates). No DB or cluster delete is granted, so a
            // marker on a database gives the role nothing.
            {
                "Sid": "RdsTagRestoredDatabases",
                "Effect": "Allow",
                "Action": "rds:AddTagsToResource",
                "Resource": ["arn:aws:rds:*:*:db:*", "arn:aws:rds:*:*:cluster:*"],
                "Condition": {"StringLike": {
                    "aws:RequestTag/_GX_BACKUP_": "*",
                    "aws:RequestTag/_GX_RESTORED_FROM_": "*"
                }}
            },
            // Authority tags on a database or cluster only with
            // _GX_RESTORED_FROM_, whatever else is attached to the role.
            {
                "Sid": "DenyRdsAuthorityTagsOnForeignDatabases",
                "Effect": "Deny",
                "Action": "rds:AddTagsToResource",
                "Resource": ["arn:aws:rds:*:*:db:*", "arn:aws:rds:*:*:cluster:*"],
                "Condition": {
                    "ForAnyValue:StringEquals": {"aws:TagKeys": authority},
                    "Null": {"aws:RequestTag/_GX_RESTORED_FROM_": "true"}
                }
            },
            {
                "Sid": "DenyRdsRemoveProtectedTags",
                "Effect": "Deny",
                "Action": "rds:RemoveTagsFromResource",
                "Resource": "*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": protected_tags()}}
            },
            {
                "Sid": "RdsDeleteOwnSnapshots",
                "Effect": "Allow",
                "Action": "rds:DeleteDBSnapshot",
                "Resource": format!("arn:aws:rds:*:*:snapshot:{RDS_SNAPSHOT_PREFIX}*"),
                "Condition": {"StringLike": {"rds:snapshot-tag/_GX_BACKUP_": "*"}}
            },
            {
                "Sid": "RdsDeleteOwnClusterSnapshots",
                "Effect": "Allow",
                "Action": "rds:DeleteDBClusterSnapshot",
                "Resource": format!("arn:aws:rds:*:*:cluster-snapshot:{RDS_SNAPSHOT_PREFIX}*"),
                "Condition": {"StringLike": {"rds:cluster-snapshot-tag/_GX_BACKUP_": "*"}}
            },
            // Encrypted copies with a customer key: only through EC2 or RDS.
            {
                "Sid": "KmsThroughEc2AndRdsOnly",
                "Effect": "Allow",
                "Action": KMS_VIA_SERVICE,
                "Resource": "*",
                "Condition": {"StringLike": {"kms:ViaService": ["ec2.*.amazonaws.com", "rds.*.amazonaws.com"]}}
            }
        ]
    })
}

/// All documents for one side, by name.
pub fn documents(
    side: Side,
    admin_account: &str,
    external_id: Option<&str>,
    trust: TrustOptions,
) -> Vec<(&'static str, Value)> {
    match side {
        Side::Admin => vec![
            ("sts-only", sts_only()),
            ("admin-role-trust", admin_role_trust(admin_account)),
            ("permissions", permissions()),
        ],
        Side::Tenant => vec![
            ("sts-only", sts_only()),
            (
                "tenant-trust",
                tenant_trust(admin_account, external_id, trust),
            ),
            ("permissions", permissions()),
        ],
    }
}

/// Every action a policy allows, with the condition keys that limit it.
pub fn allowed_actions(policy: &Value) -> Vec<(String, Vec<String>)> {
    let statements = match &policy["Statement"] {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for s in statements {
        if s["Effect"] != "Allow" {
            continue;
        }
        let conditions: Vec<String> = s["Condition"]
            .as_object()
            .map(|ops| {
                ops.values()
                    .filter_map(Value::as_object)
                    .flat_map(|m| m.keys().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let actions = match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        };
        for a in actions {
            out.push((a, conditions.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
        // Every source file, in module folders (`restore/`) too.
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
        assert!(
            AUTHORITY_TAGS.contains(&"_GX_AGENT_") && AUTHORITY_TAGS.contains(&"_GX_JOB_START_")
        );
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
}
