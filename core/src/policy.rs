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
    /// A backup account declared `[[vault]]` in the accounts file.
    Vault,
}

/// What the accounts file tells the policies about the other accounts:
/// a tenant may share only with the vault accounts; a vault may share back
/// only with the tenant accounts and uses its own keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Account ids of every `[[vault]]` (the tenant policy's share targets;
    /// empty: the tenant policy grants no sharing at all).
    pub vault_accounts: Vec<String>,
    /// Account ids of every `[[tenant]]` (the vault policy's share-back
    /// targets, and the accounts whose keys a vault copy decrypts).
    pub tenant_accounts: Vec<String>,
    /// The vault's KMS key ARNs (`[vault.keys]`), for `policy vault`.
    pub vault_keys: Vec<String>,
    /// The SNS topics of the accounts file's `[notify]`, for `policy admin`.
    pub notify_topics: Vec<String>,
}

impl Scope {
    /// The scope of the tenant policy, and (with `vault`) of that vault's.
    pub fn from_accounts(accounts: &crate::config::Accounts, vault: Option<&str>) -> Scope {
        let mut scope = Scope::default();
        for v in &accounts.vaults {
            push_unique(&mut scope.vault_accounts, v.account());
        }
        for t in &accounts.tenants {
            push_unique(&mut scope.tenant_accounts, &t.role_arn.account);
        }
        if let Some(v) = vault.and_then(|n| accounts.vault(n)) {
            scope.vault_keys = v.keys.values().cloned().collect();
        }
        if let Some(arn) = accounts
            .notify
            .as_ref()
            .and_then(|n| n.sns_topic_arn.as_ref())
        {
            push_unique(&mut scope.notify_topics, arn);
        }
        scope
    }
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).expect("shipped policy JSON is valid")
}

/// The `sts-only` policy (both sides).
pub fn sts_only() -> Value {
    parse(STS_ONLY)
}

/// The topic `policy admin` names when it is given no `[notify]` topic: the
/// documented default name in the admin account, any region.
pub fn placeholder_topic(admin_account: &str) -> String {
    format!("arn:aws:sns:*:{admin_account}:rolesnap-alerts")
}

/// What the principal rolesnap runs as needs beside `sts-only`: `sns:Publish`
/// on the `[notify]` topics only (alerts go out with the admin credentials,
/// see [`crate::alerts`]), and, optional, what `accounts --from-organization`
/// calls (Organizations has no resource-level permission for them).
pub fn admin_principal(admin_account: &str, topics: &[String]) -> Value {
    let topics: Vec<String> = if topics.is_empty() {
        vec![placeholder_topic(admin_account)]
    } else {
        topics.to_vec()
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublishAlertsToTheNotifyTopicsOnly",
                "Effect": "Allow",
                "Action": "sns:Publish",
                "Resource": topics
            },
            {
                "Sid": "OptionalAccountsFromOrganization",
                "Effect": "Allow",
                "Action": ["organizations:DescribeOrganization", "organizations:ListAccounts"],
                "Resource": "*"
            }
        ]
    })
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
    // A vault copy's source and vault (set by CopySnapshot/CopyImage/
    // CopyDB(Cluster)Snapshot in the vault account; prune there trusts them).
    tags::VAULT_OF,
    tags::VAULT,
    // A restore drill's: the tenant policy lets SSM Run Command reach only
    // instances carrying it.
    tags::INTEGRITY,
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
    "ec2:DescribeInstanceStatus",
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

/// Restore drills' check command (`[drill] check`, `rolesnap drill
/// --check`): SSM Run Command with the `AWS-RunShellScript` document only,
/// and only on instances tagged `CV_Integrity_Snap` (an authority tag: set
/// only when a drill launches the instance); its result read back.
fn drill_check_statements() -> Value {
    json!([
        {
            "Sid": "SsmDrillCheckDocument",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": "arn:aws:ssm:*::document/AWS-RunShellScript"
        },
        {
            "Sid": "SsmDrillCheckOnDrillInstances",
            "Effect": "Allow",
            "Action": "ssm:SendCommand",
            "Resource": "arn:aws:ec2:*:*:instance/*",
            "Condition": {"StringLike": {"ssm:resourceTag/CV_Integrity_Snap": "*"}}
        },
        {
            "Sid": "SsmDrillCheckResult",
            "Effect": "Allow",
            "Action": "ssm:GetCommandInvocation",
            "Resource": "*"
        }
    ])
}

fn rds_snapshot_arns() -> Value {
    json!([
        format!("arn:aws:rds:*:*:snapshot:{RDS_SNAPSHOT_PREFIX}*"),
        format!("arn:aws:rds:*:*:cluster-snapshot:{RDS_SNAPSHOT_PREFIX}*")
    ])
}

/// The restricted backup and recovery permissions of the tenant role: the
/// statement groups below, in this order. `vault_accounts` (the accounts
/// file's `[[vault]]` accounts) are the only accounts the role may share its
/// own snapshots with; none: no sharing statement at all.
pub fn permissions(vault_accounts: &[String]) -> Value {
    let mut statements = Vec::new();
    for group in [
        ec2_read_and_create_statements(),
        ec2_tagging_statements(&ec2_create_actions()),
        ec2_own_resources_statements(),
        pass_role_statements(),
        rds_statements(),
        kms_statements(),
        share_statements("Vault", vault_accounts),
        kms_key_check_statements(vault_accounts),
        drill_check_statements(),
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
fn ec2_tagging_statements(create_actions: &[String]) -> Value {
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
            "Condition": {"StringEquals": {"ec2:CreateAction": create_actions}}
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
        // Restore drills delete the database they made. A tag on a database
        // proves nothing (RDS cannot tell tags at creation from tags added
        // later), so the grant is by name: the drills' identifiers start with
        // `rolesnap-drill-`, and the role cannot rename a database
        // (ModifyDBInstance is not granted). A database of that name made by
        // someone else must not exist in a tenant account.
        {
            "Sid": "RdsDeleteDrillDatabases",
            "Effect": "Allow",
            "Action": "rds:DeleteDBInstance",
            "Resource": format!("arn:aws:rds:*:*:db:{}*", crate::jobs::restore::DRILL_DB_PREFIX),
            "Condition": {"StringLike": {
                "rds:db-tag/CV_Integrity_Snap": "*",
                "rds:db-tag/_GX_BACKUP_": "*"
            }}
        },
        {
            "Sid": "RdsDeleteDrillClusters",
            "Effect": "Allow",
            "Action": "rds:DeleteDBCluster",
            "Resource": format!("arn:aws:rds:*:*:cluster:{}*", crate::jobs::restore::DRILL_DB_PREFIX),
            "Condition": {"StringLike": {
                "rds:cluster-tag/CV_Integrity_Snap": "*",
                "rds:cluster-tag/_GX_BACKUP_": "*"
            }}
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

/// Sharing of rolesnap's own snapshots and AMIs with `accounts` only (the
/// tenant role towards the vaults; the vault role back towards the tenants,
/// for a restore from the vault). No account: no statement.
///
/// EC2 (SAR): ModifySnapshotAttribute and ModifyImageAttribute take
/// `ec2:Add/userId`, `ec2:Remove/userId`, `ec2:Add/group`, `ec2:Remove/group`
/// and `ec2:Attribute`, besides the resource's tags. `ForAllValues` holds for
/// an absent set, so a call that adds nobody passes the account test; the
/// attribute test and the group test keep it to account shares.
/// ModifyImageAttribute can also share with an organization or OU
/// (`OrganizationArn`), for which SAR lists no condition key: the `_GX_BACKUP_`
/// condition is what limits that to rolesnap's own AMIs.
///
/// RDS (SAR): ModifyDBSnapshotAttribute and ModifyDBClusterSnapshotAttribute
/// take only the snapshot's tags (`rds:snapshot-tag/…`,
/// `rds:cluster-snapshot-tag/…`, `aws:ResourceTag/…`); there is no condition
/// key for the accounts in `ValuesToAdd`. The statement limits the call to
/// rolesnap's own snapshots (`sp-…`, tagged `_GX_BACKUP_`); which account they
/// are shared with is not limited by IAM (README, "Permission model").
fn share_statements(towards: &str, accounts: &[String]) -> Value {
    if accounts.is_empty() {
        return json!([]);
    }
    let ec2 = |sid: String, action: &str, resource: &str, attribute: &str| {
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Action": action,
            "Resource": resource,
            "Condition": {
                "StringLike": {"ec2:ResourceTag/_GX_BACKUP_": "*"},
                "StringEquals": {"ec2:Attribute": attribute},
                "ForAllValues:StringEquals": {
                    "ec2:Add/userId": accounts,
                    "ec2:Remove/userId": accounts
                },
                "Null": {"ec2:Add/group": "true"}
            }
        })
    };
    json!([
        ec2(
            format!("Ec2ShareOwnSnapshotsWith{towards}Accounts"),
            "ec2:ModifySnapshotAttribute",
            "arn:aws:ec2:*::snapshot/*",
            "createVolumePermission"
        ),
        ec2(
            format!("Ec2ShareOwnImagesWith{towards}Accounts"),
            "ec2:ModifyImageAttribute",
            "arn:aws:ec2:*::image/*",
            "launchPermission"
        ),
        // No condition key names the accounts of an RDS share (see above):
        // own snapshots only.
        {
            "Sid": format!("RdsShareOwnSnapshotsWith{towards}Accounts"),
            "Effect": "Allow",
            "Action": "rds:ModifyDBSnapshotAttribute",
            "Resource": format!("arn:aws:rds:*:*:snapshot:{RDS_SNAPSHOT_PREFIX}*"),
            "Condition": {"StringLike": {"rds:snapshot-tag/_GX_BACKUP_": "*"}}
        },
        {
            "Sid": format!("RdsShareOwnClusterSnapshotsWith{towards}Accounts"),
            "Effect": "Allow",
            "Action": "rds:ModifyDBClusterSnapshotAttribute",
            "Resource": format!("arn:aws:rds:*:*:cluster-snapshot:{RDS_SNAPSHOT_PREFIX}*"),
            "Condition": {"StringLike": {"rds:cluster-snapshot-tag/_GX_BACKUP_": "*"}}
        },
        // Never public, whatever else is attached to the role (group `all`).
        {
            "Sid": "DenyEc2PublicShares",
            "Effect": "Deny",
            "Action": ["ec2:ModifySnapshotAttribute", "ec2:ModifyImageAttribute"],
            "Resource": "*",
            "Condition": {"Null": {"ec2:Add/group": "false"}}
        }
    ])
}

/// The tenant role reads its keys for `validate` (a vault copy needs the
/// source's key to be a customer key that grants the vault account): only
/// with a vault declared. Key policies of other accounts still decide
/// whether their keys can be read.
fn kms_key_check_statements(vault_accounts: &[String]) -> Value {
    if vault_accounts.is_empty() {
        return json!([]);
    }
    json!([
        {
            "Sid": "KmsReadKeysForVaultCheck",
            "Effect": "Allow",
            "Action": KMS_KEY_CHECK,
            "Resource": "arn:aws:kms:*:*:key/*"
        }
    ])
}

/// KMS reads `validate` makes itself (the only KMS calls of the engine).
pub const KMS_KEY_CHECK: &[&str] = &["kms:DescribeKey", "kms:GetKeyPolicy"];

/// What the vault role lists: its copies, their locks, and what tenants
/// still share with it.
const VAULT_READ: &[&str] = &[
    "ec2:DescribeImages",
    "ec2:DescribeLockedSnapshots",
    "ec2:DescribeSnapshots",
    "rds:DescribeDBClusterSnapshots",
    "rds:DescribeDBSnapshots",
];

/// The only creates of the vault role: copies of the tenants' shared points.
pub const VAULT_COPY: &[&str] = &[
    "ec2:CopyImage",
    "ec2:CopySnapshot",
    "rds:CopyDBClusterSnapshot",
    "rds:CopyDBSnapshot",
];

/// Deletes of the vault role (prune of expired vault copies).
const VAULT_DELETE_OWN: &[&str] = &["ec2:DeleteSnapshot", "ec2:DeregisterImage"];

/// KMS use of the vault's own keys: the copies are encrypted with them.
pub const KMS_VAULT_KEY_USE: &[&str] = &[
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
];

/// KMS use of a tenant's key while EC2 or RDS reads the shared source of a
/// copy: AWS needs both the key policy (the tenant's, see `validate`) and
/// the caller's IAM policy to allow it.
pub const KMS_TENANT_SOURCE_KEY_USE: &[&str] = &[
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:ReEncryptFrom",
];

/// Statements picked by Sid from a group (shared between tenant and vault).
fn pick(group: Value, sids: &[&str]) -> Vec<Value> {
    match group {
        Value::Array(s) => s
            .into_iter()
            .filter(|s| s["Sid"].as_str().is_some_and(|x| sids.contains(&x)))
            .collect(),
        _ => vec![],
    }
}

/// The permissions of a vault role: read, copy in (re-encrypted with the
/// vault's keys, tagged at creation), lock, delete only its own copies,
/// share back only with the tenant accounts.
pub fn vault_permissions(scope: &Scope) -> Value {
    let copy_actions: Vec<String> = VAULT_COPY
        .iter()
        .filter_map(|a| a.strip_prefix("ec2:"))
        .map(str::to_string)
        .collect();
    let mut statements = vec![
        json!({
            "Sid": "VaultRead",
            "Effect": "Allow",
            "Action": VAULT_READ,
            "Resource": "*"
        }),
        // Copies of what a tenant shares with the vault; each call tags its
        // copy in the same request.
        json!({
            "Sid": "VaultCopy",
            "Effect": "Allow",
            "Action": VAULT_COPY,
            "Resource": "*"
        }),
    ];
    if let Value::Array(s) = ec2_tagging_statements(&copy_actions) {
        statements.extend(s);
    }
    statements.push(json!({
        "Sid": "VaultDeleteOnlyOwn",
        "Effect": "Allow",
        "Action": VAULT_DELETE_OWN,
        "Resource": "*",
        "Condition": {"StringLike": {"aws:ResourceTag/_GX_BACKUP_": "*"}}
    }));
    statements.extend(pick(
        ec2_own_resources_statements(),
        &["Ec2LockOwnSnapshots"],
    ));
    statements.extend(pick(
        rds_statements(),
        &[
            "RdsTagOwnSnapshots",
            "DenyRdsRemoveProtectedTags",
            "RdsDeleteOwnSnapshots",
            "RdsDeleteOwnClusterSnapshots",
        ],
    ));
    if let Value::Array(s) = share_statements("Tenant", &scope.tenant_accounts) {
        statements.extend(s);
    }
    if !scope.vault_keys.is_empty() {
        statements.push(json!({
            "Sid": "KmsVaultKeys",
            "Effect": "Allow",
            "Action": KMS_VAULT_KEY_USE,
            "Resource": scope.vault_keys
        }));
    }
    if !scope.tenant_accounts.is_empty() {
        let keys: Vec<String> = scope
            .tenant_accounts
            .iter()
            .map(|a| format!("arn:aws:kms:*:{a}:key/*"))
            .collect();
        statements.push(json!({
            "Sid": "KmsTenantSourceKeysThroughEc2AndRdsOnly",
            "Effect": "Allow",
            "Action": KMS_TENANT_SOURCE_KEY_USE,
            "Resource": keys,
            "Condition": {"StringLike": {"kms:ViaService": ["ec2.*.amazonaws.com", "rds.*.amazonaws.com"]}}
        }));
    }
    json!({
        "Version": "2012-10-17",
        "Statement": statements
    })
}

/// All documents for one side, by name.
/// The vault role's trust policy is a tenant role's: the admin account, with
/// the vault's ExternalId.
pub fn documents(
    side: Side,
    admin_account: &str,
    external_id: Option<&str>,
    trust: TrustOptions,
    scope: &Scope,
) -> Vec<(&'static str, Value)> {
    match side {
        Side::Admin => vec![
            ("sts-only", sts_only()),
            ("admin-role-trust", admin_role_trust(admin_account)),
            (
                "admin-principal",
                admin_principal(admin_account, &scope.notify_topics),
            ),
            ("permissions", permissions(&scope.vault_accounts)),
        ],
        Side::Tenant => vec![
            ("sts-only", sts_only()),
            (
                "tenant-trust",
                tenant_trust(admin_account, external_id, trust),
            ),
            ("permissions", permissions(&scope.vault_accounts)),
        ],
        Side::Vault => vec![
            (
                "vault-trust",
                tenant_trust(admin_account, external_id, trust),
            ),
            ("permissions", vault_permissions(scope)),
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
