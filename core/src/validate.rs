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
