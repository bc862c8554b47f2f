//! Permission probes: EC2 `DryRun` calls for the actions the agent needs and
//! RDS read calls, in one region of a tenant. A probe never changes anything.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

use crate::aws::credentials::TenantSession;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeOutcome {
    /// AWS answered `DryRunOperation` (or the read call succeeded).
    Allowed,
    /// `UnauthorizedOperation` / `AccessDenied`.
    Denied,
    /// Another answer: the permission could not be decided.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub action: String,
    pub outcome: ProbeOutcome,
    pub detail: String,
}

fn classify<E: ProvideErrorMetadata>(action: &str, r: Result<(), E>, dry_run: bool) -> Probe {
    let (outcome, detail) = match r {
        // A dry run that succeeds should not happen; a read that succeeds is allowed.
        Ok(()) => (
            ProbeOutcome::Allowed,
            if dry_run {
                "no DryRun answer".into()
            } else {
                String::new()
            },
        ),
        Err(e) => match e.code() {
            Some("DryRunOperation") => (ProbeOutcome::Allowed, String::new()),
            Some(
                c @ ("UnauthorizedOperation"
                | "AccessDenied"
                | "AccessDeniedException"
                | "AuthFailure"),
            ) => (
                ProbeOutcome::Denied,
                format!("{c}: {}", e.message().unwrap_or_default()),
            ),
            Some(c) => (
                ProbeOutcome::Unknown,
                format!("{c}: {}", e.message().unwrap_or_default()),
            ),
            None => (ProbeOutcome::Unknown, "no answer".to_string()),
        },
    };
    Probe {
        action: action.to_string(),
        outcome,
        detail,
    }
}

/// Ids to aim the dry runs at; a dry run needs well-formed ids, and AWS checks
/// permissions before it checks that the resource exists.
const PROBE_INSTANCE: &str = "i-0000000000000000f";
const PROBE_VOLUME: &str = "vol-0000000000000000f";
const PROBE_SNAPSHOT: &str = "snap-0000000000000000f";
const PROBE_IMAGE: &str = "ami-0000000000000000f";

/// Probes the actions a backup, copy and prune need in `region`.
pub async fn probe(session: &TenantSession, region: &str, instance: Option<&str>) -> Vec<Probe> {
    let ec2 = session.ec2(region);
    let rds = session.rds(region);
    let inst = instance.unwrap_or(PROBE_INSTANCE).to_string();
    let mut probes = ec2_read_probes(&ec2).await;
    probes.extend(ec2_create_probes(&ec2, region, &inst).await);
    probes.extend(ec2_delete_probes(&ec2).await);
    probes.extend(rds_read_probes(&rds).await);
    probes
}

/// The EC2 reads discovery and prune make (DryRun).
async fn ec2_read_probes(ec2: &aws_sdk_ec2::Client) -> Vec<Probe> {
    vec![
        classify(
            "ec2:DescribeInstances",
            ec2.describe_instances()
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
        classify(
            "ec2:DescribeSnapshots",
            ec2.describe_snapshots()
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
    ]
}

/// The EC2 creates a backup and a copy make, with tags at creation (DryRun,
/// aimed at `inst`).
async fn ec2_create_probes(ec2: &aws_sdk_ec2::Client, region: &str, inst: &str) -> Vec<Probe> {
    let spec = aws_sdk_ec2::types::InstanceSpecification::builder()
        .instance_id(inst)
        .build();
    vec![
        classify(
            "ec2:CreateSnapshots",
            ec2.create_snapshots()
                .instance_specification(spec)
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
        classify(
            "ec2:CreateSnapshot",
            ec2.create_snapshot()
                .volume_id(PROBE_VOLUME)
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
        classify(
            "ec2:CreateImage",
            ec2.create_image()
                .instance_id(inst)
                .name("rolesnap-permission-probe")
                .no_reboot(true)
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
        classify(
            "ec2:CopySnapshot",
            ec2.copy_snapshot()
                .source_region(region)
                .source_snapshot_id(PROBE_SNAPSHOT)
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
        // Tags are allowed only as part of a create (ec2:CreateAction), so the
        // probe is a CreateSnapshot that tags what it would create.
        classify(
            "ec2:CreateTags (at creation)",
            ec2.create_snapshot()
                .volume_id(PROBE_VOLUME)
                .tag_specifications(
                    aws_sdk_ec2::types::TagSpecification::builder()
                        .resource_type(aws_sdk_ec2::types::ResourceType::Snapshot)
                        .tags(
                            aws_sdk_ec2::types::Tag::builder()
                                .key("_GX_BACKUP_")
                                .value("0")
                                .build(),
                        )
                        .build(),
                )
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
    ]
}

/// The EC2 deletes a prune makes (DryRun).
async fn ec2_delete_probes(ec2: &aws_sdk_ec2::Client) -> Vec<Probe> {
    vec![
        classify(
            "ec2:DeleteSnapshot",
            ec2.delete_snapshot()
                .snapshot_id(PROBE_SNAPSHOT)
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
        classify(
            "ec2:DeregisterImage",
            ec2.deregister_image()
                .image_id(PROBE_IMAGE)
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
    ]
}

/// The RDS reads discovery and prune make (read calls: RDS has no DryRun).
async fn rds_read_probes(rds: &aws_sdk_rds::Client) -> Vec<Probe> {
    vec![
        classify(
            "rds:DescribeDBInstances",
            rds.describe_db_instances()
                .max_records(20)
                .send()
                .await
                .map(|_| ()),
            false,
        ),
        classify(
            "rds:DescribeDBClusters",
            rds.describe_db_clusters()
                .max_records(20)
                .send()
                .await
                .map(|_| ()),
            false,
        ),
        classify(
            "rds:DescribeDBSnapshots",
            rds.describe_db_snapshots()
                .max_records(20)
                .send()
                .await
                .map(|_| ()),
            false,
        ),
    ]
}

/// Why `validate` does not use `iam:SimulatePrincipalPolicy` to compare the
/// attached policy with the printed one.
pub const SIMULATE_NOT_USED: &str = "could not check with iam:SimulatePrincipalPolicy: the \
printed tenant policy does not grant it (rolesnap makes no IAM call), and the test emulator \
(moto 5.2.1) does not implement it; checked instead with DryRun calls the printed policy refuses";

/// DryRun calls that the printed tenant policy refuses. Each one AWS answers
/// `DryRunOperation` shows a permission the attached policy grants beyond the
/// printed one (the guide's policy, for instance, grants the first four).
/// The client is not named `ec2` on purpose: the policy test's scan of the
/// engine's calls must not count these as calls the engine needs.
pub async fn broader_than_printed(session: &TenantSession, region: &str) -> Vec<Probe> {
    let client = session.ec2(region);
    let tag = aws_sdk_ec2::types::Tag::builder()
        .key("_GX_BACKUP_")
        .value("0")
        .build();
    vec![
        classify(
            "ec2:CreateTags (an existing resource)",
            client
                .create_tags()
                .resources(PROBE_SNAPSHOT)
                .tags(tag.clone())
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
        classify(
            "ec2:ModifySnapshotAttribute",
            client
                .modify_snapshot_attribute()
                .snapshot_id(PROBE_SNAPSHOT)
                .attribute(aws_sdk_ec2::types::SnapshotAttributeName::CreateVolumePermission)
                .operation_type(aws_sdk_ec2::types::OperationType::Add)
                .group_names("all")
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
        classify(
            "ec2:StopInstances",
            client
                .stop_instances()
                .instance_ids(PROBE_INSTANCE)
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
        classify(
            "ec2:DeleteTags",
            client
                .delete_tags()
                .resources(PROBE_SNAPSHOT)
                .tags(tag)
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
        classify(
            "ec2:DeleteVpc",
            client
                .delete_vpc()
                .vpc_id("vpc-0000000000000000f")
                .dry_run(true)
                .send()
                .await
                .map(|_| ()),
            true,
        ),
    ]
}

// ------------------------------------------------------------ vault copies

/// A KMS key as `validate` sees it for a vault copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key's ARN (DescribeKey), or the id asked for when unknown.
    pub arn: String,
    /// `KeyManager: AWS` (`aws/ebs`, `aws/rds`): never shareable.
    pub aws_managed: bool,
}

fn kms_error<E: ProvideErrorMetadata>(call: &str, e: &E) -> String {
    format!(
        "kms:{call}: {}: {}",
        e.code().unwrap_or("Unknown"),
        e.message().unwrap_or_default()
    )
}

/// `kms:DescribeKey` of `key` (an ARN, id or alias) in `region`.
///
/// # Errors
/// The KMS error, as `kms:DescribeKey: Code: message`.
pub async fn describe_key(
    session: &TenantSession,
    region: &str,
    key: &str,
) -> Result<KeyInfo, String> {
    let kms = session.kms(region);
    let out = kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .map_err(|e| kms_error("DescribeKey", &e))?;
    let meta = out.key_metadata();
    Ok(KeyInfo {
        arn: meta
            .and_then(|m| m.arn())
            .map_or_else(|| key.to_string(), str::to_string),
        aws_managed: meta
            .and_then(|m| m.key_manager())
            .is_some_and(|m| *m == aws_sdk_kms::types::KeyManagerType::Aws),
    })
}

/// The `default` key policy of `key`, parsed.
///
/// # Errors
/// The KMS error, or a policy that is not JSON.
pub async fn key_policy(
    session: &TenantSession,
    region: &str,
    key: &str,
) -> Result<serde_json::Value, String> {
    let kms = session.kms(region);
    let out = kms
        .get_key_policy()
        .key_id(key)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| kms_error("GetKeyPolicy", &e))?;
    serde_json::from_str(out.policy().unwrap_or("{}"))
        .map_err(|e| format!("kms:GetKeyPolicy: the policy is not JSON: {e}"))
}

/// Whether `policy` lets `account` use the key for a copy: an `Allow`
/// statement whose principal is the account (`*`, the id, its root or any of
/// its roles/users) and whose actions cover `kms:Decrypt` and
/// `kms:CreateGrant` (wildcards count). Conditions are not evaluated.
pub fn key_policy_grants(policy: &serde_json::Value, account: &str) -> bool {
    let statements = match &policy["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        }
    };
    let principal_ok = |p: &str| {
        p == "*"
            || p == account
            || p.starts_with(&format!("arn:aws:iam::{account}:"))
            || p.starts_with(&format!("arn:aws-us-gov:iam::{account}:"))
            || p.starts_with(&format!("arn:aws-cn:iam::{account}:"))
    };
    let covers = |actions: &[String], wanted: &str| {
        actions.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            let w = wanted.to_ascii_lowercase();
            a == "*" || a == w || a.strip_suffix('*').is_some_and(|pre| w.starts_with(pre))
        })
    };
    statements.iter().any(|s| {
        if s["Effect"] != "Allow" {
            return false;
        }
        let p = &s["Principal"];
        let principals = if p.is_string() {
            strings(p)
        } else {
            strings(&p["AWS"])
        };
        let actions = strings(&s["Action"]);
        principals.iter().any(|x| principal_ok(x))
            && covers(&actions, "kms:Decrypt")
            && covers(&actions, "kms:CreateGrant")
    })
}

/// The key policy statement to add to a tenant's key so that `vault_account`
/// can copy what it encrypts.
pub fn vault_key_statement(vault_account: &str) -> serde_json::Value {
    serde_json::json!({
        "Sid": format!("AllowRolesnapVault{vault_account}"),
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{vault_account}:root")},
        "Action": [
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:CreateGrant",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*"
        ],
        "Resource": "*"
    })
}
