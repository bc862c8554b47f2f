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

/// The restricted backup and recovery permissions of the tenant role: the
/// statement groups below, in this order.
pub fn permissions() -> Value {
    let mut statements = Vec::new();
    for group in [
        ec2_read_and_create_statements(),
        ec2_tagging_statements(),
        ec2_own_resources_statements(),
        pass_role_statements(),
        rds_statements(),
        kms_statements(),
    ] {
        if let Value::Array(s) = group {
            statements.extend(s);
        }
    }
    json!({
        "Version": "2012-10-17",
        "Statement": statements
    })
}

/// EC2 reads and creates (snapshots, AMIs, copies, what a restore makes).
fn ec2_read_and_create_statements() -> Value {
    json!([
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
        }
    ])
}

/// EC2 tagging: tags only at creation, `_GX_AMI_` later on own snapshots,
/// and the Denies that keep the authority tags and holds in place.
fn ec2_tagging_statements() -> Value {
    let not_ami: Vec<&str> = AUTHORITY_TAGS
        .iter()
        .copied()
        .filter(|t| *t != AMI_SNAPSHOT_TAG)
        .collect();
    json!([
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
        }
    ])
}

/// EC2 deletes, locks, attaches and detaches, only of resources carrying
/// `_GX_BACKUP_` (the instance side of attach/detach excepted).
fn ec2_own_resources_statements() -> Value {
    json!([
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
        }
    ])
}

/// `iam:PassRole` to EC2 only (a restored instance's instance profile).
fn pass_role_statements() -> Value {
    json!([
        // A restored instance gets the instance profile its source had;
        // the role may pass a role to EC2 and to nothing else.
        {
            "Sid": "PassRoleToEc2Only",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::*:role/*",
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
        }
    ])
}

/// RDS reads, creates, tags on rolesnap's own snapshots and restored
/// databases, and deletes of its own snapshots only.
fn rds_statements() -> Value {
    let authority = AUTHORITY_TAGS;
    json!([
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
        }
    ])
}

/// KMS key use for encrypted copies, only through EC2 or RDS.
fn kms_statements() -> Value {
    json!([
        // Encrypted copies with a customer key: only through EC2 or RDS.
        {
            "Sid": "KmsThroughEc2AndRdsOnly",
            "Effect": "Allow",
            "Action": KMS_VIA_SERVICE,
            "Resource": "*",
            "Condition": {"StringLike": {"kms:ViaService": ["ec2.*.amazonaws.com", "rds.*.amazonaws.com"]}}
        }
    ])
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
mod tests;
