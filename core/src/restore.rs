//! Restore jobs: a new instance, volume or database from a recovery point.
//!
//! A restore never touches its source: it finds the recovery point by its tags
//! ([`crate::catalog`]), makes new resources next to the original, tags each of
//! them at creation with its provenance (`_GX_BACKUP_` = the restore job,
//! `_GX_SOURCE_`, `_GX_RESTORED_FROM_`, `Name`) and waits until they are
//! running or available.
//!
//! * Full instance from an AMI point: RunInstances from the AMI. From a snapshot
//!   set: RegisterImage from the root snapshot with every snapshot mapped back
//!   to its recorded device (`_GX_DEVICES_`, `_GX_ROOT_`), RunInstances from it,
//!   then DeregisterImage (the restored instance keeps running; a registered
//!   image would pin the backup's snapshots against pruning). The recorded
//!   configuration (`_GX_INSTANCE_TYPE_`, `_GX_SUBNET_`, `_GX_SG_`, `_GX_KEY_`,
//!   `_GX_PROFILE_`) is the default; each part can be overridden.
//! * Volume: CreateVolume from the volume's snapshot in the target instance's
//!   AZ, AttachVolume at a device that is free on the target (checked before
//!   anything is created), or on a small new instance.
//! * RDS: RestoreDBInstanceFromDBSnapshot; Aurora: RestoreDBClusterFromSnapshot
//!   then CreateDBInstance as the writer. An existing target identifier is
//!   refused before anything is created.
//!
//! When a step fails, everything the job made is removed again — found by the
//! job's own `_GX_BACKUP_` tag, which is also what the restricted IAM policy
//! requires for TerminateInstances, DeleteVolume, DeregisterImage and the RDS
//! deletes. What cannot be removed is reported. Decisions (which point, which
//! device, which snapshot goes where) are pure functions tested below.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, EbsBlockDevice, Filter,
    IamInstanceProfileSpecification, InstanceType, ResourceType, TagSpecification, VolumeType,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::aws::{ec2_tags, no_sdk_retries_ec2, no_sdk_retries_rds, rds_tags, tag_filter};
use crate::catalog::{list_region, Kinds, PointKind, RecoveryPoint};
use crate::config::{az_region, Plan, Tenant};
use crate::credentials::{AdminSession, TenantSession};
use crate::discovery::{groups_for, regions_for};
use crate::error::{AwsError, Site};
use crate::ledger::{Item, JobStatus, JobType, Ledger, LedgerError};
use crate::logs::{LogFile, Logs};
use crate::pace::{Bucket, Pacer};
use crate::retry::create_with_retry;
use crate::tags;

/// On everything a restore makes: the recovery point it came from.
pub use crate::tags::RESTORED_FROM;
/// vsrst.log component of restore jobs.
pub const COMPONENT: &str = "CVRestore::Run";
const CLEANUP: &str = "CVRestore::Cleanup";
/// AWS allows 50 tags per resource.
const MAX_TAGS: usize = 50;
/// Devices offered for an attached volume when none is given (AWS's advice for EBS).
const DATA_DEVICES: &str = "fghijklmnop";

// ---------------------------------------------------------------- requests

/// Which recovery point: the newest completed one, or the one of a job, or the
/// newest at or before a time; in the source's region or in `region`.
#[derive(Debug, Clone, Default)]
pub struct Which {
    pub job: Option<u64>,
    /// With `job`: the agent (ledger) id that ran it, or its first digits.
    /// Job numbers are unique per agent only.
    pub agent: Option<String>,
    pub at: Option<DateTime<Utc>>,
    /// A region to restore in (the source region or a copy region).
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct InstanceSpec {
    pub instance_id: String,
    pub instance_type: Option<String>,
    pub subnet: Option<String>,
    pub security_groups: Vec<String>,
    pub key_name: Option<String>,
    /// `x86_64` or `arm64` for a registered image; default from the instance type.
    pub architecture: Option<String>,
    /// Do not copy the source instance's own tags.
    pub no_tags: bool,
}

#[derive(Debug, Clone)]
pub enum AttachTo {
    /// An existing instance.
    Instance(String),
    /// A small new instance in the volume's recorded AZ.
    NewInstance {
        image_id: Option<String>,
        instance_type: String,
        subnet: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct VolumeSpec {
    pub volume_id: String,
    pub attach: AttachTo,
    pub device: Option<String>,
    pub volume_type: String,
}

#[derive(Debug, Clone, Default)]
pub struct DbSpec {
    /// The source DB instance or Aurora cluster identifier.
    pub source_id: String,
    pub cluster: bool,
    pub target_id: String,
    pub instance_class: Option<String>,
    pub subnet_group: Option<String>,
    /// Aurora: the writer's identifier (default `<target>-1`).
    pub writer_id: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Target {
    Instance(InstanceSpec),
    Volume(VolumeSpec),
    Db(DbSpec),
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Instance(_) => "instance",
            Target::Volume(_) => "volume",
            Target::Db(d) if d.cluster => "db-cluster",
            Target::Db(_) => "db-instance",
        }
    }
    pub fn source(&self) -> &str {
        match self {
            Target::Instance(i) => &i.instance_id,
            Target::Volume(v) => &v.volume_id,
            Target::Db(d) => &d.source_id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Print the calls it would make; create nothing, record no job.
    pub dry_run: bool,
    pub wait_timeout: Duration,
    pub poll_initial: Duration,
    pub poll_max: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            dry_run: false,
            wait_timeout: Duration::from_secs(1800),
            poll_initial: Duration::from_secs(2),
            poll_max: Duration::from_secs(30),
        }
    }
}

pub struct Request<'a> {
    pub plan: &'a Plan,
    pub tenant: &'a Tenant,
    pub admin: &'a AdminSession,
    pub logs: &'a Logs,
    /// Where the job is recorded; `None` (or a dry run) records nothing.
    pub ledger: Option<&'a Ledger>,
    pub pacer: Pacer,
    pub which: Which,
    pub target: Target,
    pub options: Options,
}

// ---------------------------------------------------------------- report

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointSummary {
    pub kind: PointKind,
    pub id: String,
    pub region: String,
    pub job: Option<u64>,
    /// The agent (ledger) id of the job that made it.
    pub agent: String,
    pub created: DateTime<Utc>,
    pub copy_of: Option<String>,
    pub name: Option<String>,
}

impl From<&RecoveryPoint> for PointSummary {
    fn from(p: &RecoveryPoint) -> PointSummary {
        PointSummary {
            kind: p.kind,
            id: p.id(),
            region: p.region.clone(),
            job: p.job,
            agent: p.agent.clone(),
            created: p.created,
            copy_of: p.copy_of().map(str::to_string),
            name: p.name().map(str::to_string),
        }
    }
}

/// One resource the job made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Made {
    /// `image`, `instance`, `volume`, `db-instance`, `db-cluster`
    pub kind: String,
    pub id: String,
    pub region: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub job: u64,
    pub job_type: JobType,
    pub plan: String,
    pub tenant: String,
    pub account: String,
    pub status: JobStatus,
    pub dry_run: bool,
    /// `instance`, `volume`, `db-instance`, `db-cluster`
    pub kind: String,
    pub source: String,
    pub region: Option<String>,
    pub recovery_point: Option<PointSummary>,
    /// What the restore produced (ids, state, configuration).
    pub restored: Value,
    /// Everything the job created, including what it removed again.
    pub created: Vec<Made>,
    pub removed: Vec<String>,
    /// What it made and could not remove, with the reason.
    pub left_behind: Vec<String>,
    /// The mutating calls made (or, in a dry run, that would be made).
    pub calls: Vec<String>,
    /// Defaults chosen and why.
    pub notes: Vec<String>,
    /// Human lines describing the result.
    pub summary: Vec<String>,
    pub error: Option<String>,
    pub start: i64,
    pub end: i64,
}

// ---------------------------------------------------------------- pure decisions

/// Picks the recovery point to restore. Without `which.region` only points in
/// their source region count (not copies); with it, only points in that region.
/// Points made by a restore (`_GX_RESTORED_FROM_`) are never candidates.
pub fn choose_point<'p>(
    points: &'p [RecoveryPoint],
    matches: &dyn Fn(&RecoveryPoint) -> bool,
    which: &Which,
    what: &str,
) -> Result<&'p RecoveryPoint, String> {
    let mine: Vec<&RecoveryPoint> = points
        .iter()
        .filter(|p| matches(p) && !p.tags.contains_key(RESTORED_FROM))
        .collect();
    let here: Vec<&RecoveryPoint> = mine
        .iter()
        .copied()
        .filter(|p| match &which.region {
            Some(r) => &p.region == r,
            None => p.copy_of().is_none(),
        })
        .collect();
    if here.is_empty() {
        let copies: BTreeSet<&str> = mine
            .iter()
            .filter(|p| p.copy_of().is_some())
            .map(|p| p.region.as_str())
            .collect();
        return Err(match (&which.region, copies.is_empty()) {
            (None, false) => format!(
                "no recovery point of {what} in its source region; cross-region copies exist in {}: pass --region",
                copies.into_iter().collect::<Vec<_>>().join(", ")
            ),
            (Some(r), _) => format!("no recovery point of {what} in {r}"),
            (None, true) => format!("no recovery point of {what}"),
        });
    }
    let eligible: Vec<&RecoveryPoint> = here
        .iter()
        .copied()
        .filter(|p| {
            p.completed()
                && which.job.is_none_or(|j| p.job == Some(j))
                && which
                    .agent
                    .as_deref()
                    .is_none_or(|a| p.agent.starts_with(a))
                && which.at.is_none_or(|t| p.created <= t)
        })
        .collect();
    if let Some(j) = which.job {
        let agents: BTreeSet<&str> = eligible.iter().map(|p| p.agent.as_str()).collect();
        if agents.len() > 1 {
            return Err(format!(
                "job {j} is ambiguous: more than one agent ran a job {j} that made a point of {what}; name one with --job {j}@AGENT: {}",
                eligible
                    .iter()
                    .map(|p| format!(
                        "{} ({} {})",
                        p.job_label(),
                        p.id(),
                        p.created.format("%Y-%m-%dT%H:%M:%SZ")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    eligible
        .into_iter()
        .max_by(|a, b| (a.created, a.id()).cmp(&(b.created, b.id())))
        .ok_or_else(|| {
            let mut why = format!("no completed recovery point of {what}");
            if let Some(j) = which.job {
                why.push_str(&format!(" from job {j}"));
            }
            if let Some(t) = which.at {
                why.push_str(&format!(" at or before {}", t.to_rfc3339()));
            }
            let list: Vec<String> = here
                .iter()
                .map(|p| {
                    format!(
                        "job {} {} {:?} in {}",
                        p.job_label(),
                        p.created.format("%Y-%m-%dT%H:%M:%SZ"),
                        p.state,
                        p.region
                    )
                })
                .collect();
            format!("{why}; found: {}", list.join(", "))
        })
}

/// `/dev/sdf`, `sdf`, `/dev/xvdf` name the same device to the guest.
pub fn same_device(a: &str, b: &str) -> bool {
    fn norm(d: &str) -> String {
        let d = d.strip_prefix("/dev/").unwrap_or(d);
        let d = d.strip_prefix("xvd").map_or_else(
            || d.strip_prefix("sd").map(|s| s.to_string()),
            |s| Some(s.to_string()),
        );
        d.unwrap_or_default()
    }
    let (x, y) = (norm(a), norm(b));
    if x.is_empty() || y.is_empty() {
        return a == b;
    }
    // `/dev/sda1` and `/dev/xvda` are both the root disk.
    x.trim_end_matches(|c: char| c.is_ascii_digit())
        == y.trim_end_matches(|c: char| c.is_ascii_digit())
}

/// The device to attach at: the one asked for (refused when in use), else the
/// recorded one when free, else the first free `/dev/sd[f-p]`.
pub fn choose_device(
    asked: Option<&str>,
    recorded: Option<&str>,
    in_use: &[(String, String)],
    target: &str,
) -> Result<String, String> {
    let used_by = |d: &str| {
        in_use
            .iter()
            .find(|(dev, _)| same_device(dev, d))
            .map(|(dev, who)| format!("{dev} ({who})"))
    };
    if let Some(d) = asked {
        if !d.starts_with("/dev/") {
            return Err(format!("device {d} is not a device name like /dev/sdf"));
        }
        return match used_by(d) {
            Some(u) => Err(format!(
                "refused: device {d} is in use on {target} by {u}; nothing was created (pick a free device with --device)"
            )),
            None => Ok(d.to_string()),
        };
    }
    if let Some(d) = recorded {
        // Never the root slot, even if free on the target.
        if used_by(d).is_none() && !same_device(d, "/dev/sda") {
            return Ok(d.to_string());
        }
    }
    DATA_DEVICES
        .chars()
        .map(|c| format!("/dev/sd{c}"))
        .find(|d| used_by(d).is_none())
        .ok_or_else(|| format!("no free device among /dev/sd[f-p] on {target}"))
}

/// Maps each snapshot of a set to its recorded device: `devices` from
/// `_GX_DEVICES_` (volume, device), `snaps` (snapshot, volume it was taken of).
pub fn map_devices(
    devices: &[(String, String)],
    snaps: &[(String, String)],
) -> Result<Vec<(String, String, String)>, String> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for (snap, vol) in snaps {
        let Some((_, dev)) = devices.iter().find(|(v, _)| v == vol) else {
            return Err(format!(
                "snapshot {snap} is of volume {vol}, which the recovery point's _GX_DEVICES_ does not list"
            ));
        };
        if let Some((other, _, _)) = out.iter().find(|(_, _, d)| d == dev) {
            return Err(format!(
                "snapshots {other} and {snap} both map to device {dev}"
            ));
        }
        out.push((snap.clone(), vol.clone(), dev.clone()));
    }
    Ok(out)
}

/// Graviton families (`t4g`, `m7g`, `c6gn`, `r8gd`, …) are arm64; the rest x86_64.
pub fn architecture_for(instance_type: &str) -> &'static str {
    let family = instance_type.split('.').next().unwrap_or_default();
    let gen_and_suffix = family.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let suffix = gen_and_suffix.trim_start_matches(|c: char| c.is_ascii_digit());
    if suffix.starts_with('g') && gen_and_suffix.len() > suffix.len() {
        "arm64"
    } else {
        "x86_64"
    }
}

/// The provenance tags every restored resource carries.
pub fn provenance(
    job: &str,
    agent: &str,
    source: &str,
    point: &str,
    name: &str,
) -> Vec<(String, String)> {
    let mut point = point.to_string();
    truncate(&mut point, 256);
    let mut name = name.to_string();
    truncate(&mut name, 256);
    let mut t = vec![(tags::BACKUP.into(), job.into())];
    if !agent.is_empty() {
        t.push((tags::AGENT.into(), agent.into()));
    }
    t.extend([
        (tags::SOURCE.into(), source.into()),
        (RESTORED_FROM.into(), point),
        (tags::NAME.into(), name),
    ]);
    t
}

/// A source's own tags that a restored copy carries: not `aws:`, not rolesnap's
/// (`_GX_*`, `CV_*`), not `Name` (the restore names its resources), at most what
/// fits beside the provenance tags.
pub fn carried_tags(src: &BTreeMap<String, String>) -> Vec<(String, String)> {
    src.iter()
        .filter(|(k, _)| {
            !k.starts_with("aws:")
                && !k.starts_with("_GX_")
                && k.as_str() != tags::RETAIN
                && k.as_str() != tags::INTEGRITY
                && k.as_str() != tags::NAME
        })
        .take(MAX_TAGS - 4)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The region whose configuration a point records (from `_GX_AZ_`, else the
/// copy's origin, else its own).
pub fn recorded_region(p: &RecoveryPoint) -> String {
    if let Some(r) = p.tags.get(tags::AZ).and_then(|az| az_region(az)) {
        return r.to_string();
    }
    if let Some((r, _)) = p.copy_of().and_then(|c| c.split_once('/')) {
        return r.to_string();
    }
    p.region.clone()
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

fn tag_list(t: &[(String, String)]) -> String {
    t.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn has_job_tag<'t>(
    tags: impl Iterator<Item = (Option<&'t str>, Option<&'t str>)>,
    job: &str,
    agent: &str,
) -> bool {
    let t: Vec<_> = tags.collect();
    t.iter()
        .any(|(k, v)| *k == Some(tags::BACKUP) && *v == Some(job))
        && (agent.is_empty()
            || t.iter()
                .any(|(k, v)| *k == Some(tags::AGENT) && *v == Some(agent)))
}

fn ec2_tag_map(t: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    t.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

fn spec(kind: ResourceType, t: &[(String, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(ec2_tags(t)))
        .build()
}

/// What polling a resource found.
enum Poll<T> {
    Done(T),
    Pending(String),
    Failed(String),
}

/// One snapshot of a set, mapped back to its device.
#[derive(Debug, Clone)]
struct Mapped {
    snapshot: String,
    volume: String,
    device: String,
    size_gib: i64,
}

/// What RunInstances gets.
#[derive(Debug, Clone, Default)]
struct Launch {
    instance_type: String,
    subnet: Option<String>,
    az: Option<String>,
    security_groups: Vec<String>,
    key_name: Option<String>,
    iam_profile: Option<String>,
}

#[derive(Debug, Clone)]
struct Described {
    state: String,
    reason: String,
    az: String,
    subnet: Option<String>,
    instance_type: Option<String>,
    image_id: Option<String>,
    root_device: Option<String>,
    /// (device, volume id)
    devices: Vec<(String, String)>,
    tags: BTreeMap<String, String>,
}

fn described(i: &aws_sdk_ec2::types::Instance) -> Described {
    Described {
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        reason: i
            .state_reason()
            .and_then(|r| r.message())
            .unwrap_or_default()
            .to_string(),
        az: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_string(),
        subnet: i.subnet_id().map(str::to_string),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
        image_id: i.image_id().map(str::to_string),
        root_device: i.root_device_name().map(str::to_string),
        devices: i
            .block_device_mappings()
            .iter()
            .map(|m| {
                (
                    m.device_name().unwrap_or_default().to_string(),
                    m.ebs()
                        .and_then(|e| e.volume_id())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect(),
        tags: ec2_tag_map(i.tags()),
    }
}

// ---------------------------------------------------------------- the job

struct Restorer<'a> {
    plan: &'a Plan,
    session: TenantSession,
    account: String,
    admin_region: String,
    job: u64,
    /// The ledger's agent id: what this job makes is tagged with it, and
    /// only what carries it (and the job number) is this job's to clean up.
    agent: String,
    log_job: Option<u64>,
    dry_run: bool,
    logs: &'a Logs,
    pacer: Pacer,
    options: Options,
    which: Which,
    deadline: Instant,
    region: Option<String>,
    point: Option<PointSummary>,
    created: Vec<Made>,
    /// RDS identifiers a create was sent for (an ambiguous failure may have made them).
    rds_attempted: Vec<Made>,
    removed: Vec<String>,
    left_behind: Vec<String>,
    calls: Vec<String>,
    notes: Vec<String>,
    summary: Vec<String>,
    /// Problems that did not stop the restore.
    warnings: Vec<String>,
}

/// Runs one restore job.
///
/// # Errors
/// Only when the ledger cannot be written; AWS failures end up in the report.
pub async fn run(req: Request<'_>) -> Result<Report, LedgerError> {
    let dry_run = req.options.dry_run;
    let (number, lock, agent) = match (req.ledger, dry_run) {
        (Some(l), false) => {
            let (job, lock) = l.start_job(
                JobType::Restore,
                &req.plan.name,
                std::slice::from_ref(&req.tenant.name),
            )?;
            (job.id, Some(lock), l.agent_id().to_string())
        }
        _ => (0, None, String::new()),
    };
    let log_job = (!dry_run).then_some(number);
    let start = Utc::now().timestamp();
    let kind = req.target.kind();
    let source = req.target.source().to_string();
    req.logs.write(
        LogFile::Restore,
        log_job,
        COMPONENT,
        &format!(
            "Restore job [{number}] started: {kind} [{source}] of tenant [{}], plan [{}]{}{}{}{}",
            req.tenant.name,
            req.plan.name,
            req.which
                .job
                .map(|j| format!(", recovery point of job [{j}]"))
                .unwrap_or_default(),
            req.which
                .at
                .map(|t| format!(", at or before [{}]", t.to_rfc3339()))
                .unwrap_or_default(),
            req.which
                .region
                .as_ref()
                .map(|r| format!(", region [{r}]"))
                .unwrap_or_default(),
            if dry_run { ", dry run" } else { "" }
        ),
    );
    if !dry_run {
        req.logs.write(
            LogFile::Cvd,
            log_job,
            "CvdJobManager::StartJob",
            &format!(
                "Started Restore job [{number}] for plan [{}]",
                req.plan.name
            ),
        );
    }
    let session = TenantSession::new(req.admin, req.tenant, log_job).await;
    let mut r = Restorer {
        plan: req.plan,
        session,
        account: req.tenant.role_arn.account.clone(),
        admin_region: req.admin.admin.region.clone(),
        job: number,
        agent,
        log_job,
        dry_run,
        logs: req.logs,
        pacer: req.pacer.clone(),
        options: req.options.clone(),
        which: req.which.clone(),
        deadline: Instant::now() + req.options.wait_timeout,
        region: req.which.region.clone(),
        point: None,
        created: vec![],
        rds_attempted: vec![],
        removed: vec![],
        left_behind: vec![],
        calls: vec![],
        notes: vec![],
        summary: vec![],
        warnings: vec![],
    };
    let outcome = match r.session.connect(req.admin, req.logs).await {
        Ok(account) => {
            r.account = account;
            r.log(&format!(
                "Assumed role [{}] for tenant [{}] (account {})",
                req.tenant.role_arn, req.tenant.name, r.account
            ));
            r.restore(&req.target).await
        }
        Err(f) => Err(f.to_string()),
    };
    let (status, restored, error) = match outcome {
        Ok(v) => {
            let status = if r.warnings.is_empty() {
                JobStatus::Completed
            } else {
                JobStatus::CompletedWithErrors
            };
            (status, v, r.warnings.first().cloned())
        }
        Err(e) => {
            r.log(&format!("Restore of {kind} [{source}] failed: {e}"));
            if !dry_run {
                r.cleanup().await;
            }
            (JobStatus::Failed, Value::Null, Some(e))
        }
    };
    let end = Utc::now().timestamp();
    r.log(&format!(
        "Job [{number}] {status}: {kind} [{source}]{}{}",
        if r.removed.is_empty() {
            String::new()
        } else {
            format!(", removed [{}]", r.removed.join(", "))
        },
        if r.left_behind.is_empty() {
            String::new()
        } else {
            format!(", could not remove [{}]", r.left_behind.join("; "))
        }
    ));
    let still: Vec<String> = r
        .created
        .iter()
        .filter(|m| !r.removed.contains(&m.id))
        .map(|m| m.id.clone())
        .collect();
    if let (Some(l), Some(lock)) = (req.ledger, lock) {
        req.logs.write(
            LogFile::Cvd,
            log_job,
            "CvdJobManager::EndJob",
            &format!("Restore job [{number}] ended: {status}"),
        );
        let item = Item {
            tenant: req.tenant.name.clone(),
            account: r.account.clone(),
            region: r.region.clone().unwrap_or_else(|| "-".into()),
            kind: crate::ledger::ItemKind::parse(kind).expect("a restore target is an item kind"),
            source_id: source.clone(),
            status: match status {
                JobStatus::Failed => crate::ledger::ItemStatus::Failed,
                _ => crate::ledger::ItemStatus::Completed,
            },
            created: still.clone(),
            size_gib: 0,
            error: error.clone(),
            detail: json!({
                "recovery_point": r.point,
                "restored": restored,
                "removed": r.removed,
                "left_behind": r.left_behind,
                "notes": r.notes,
            }),
        };
        l.add_item(number, &item)?;
        l.event(
            number,
            if status == JobStatus::Completed {
                "Info"
            } else {
                "Warning"
            },
            &format!("Restore job ({number}) {status}: {kind} {source}"),
        )?;
        if let Some(e) = &error {
            l.event(number, "Error", e)?;
        }
        for lb in &r.left_behind {
            l.event(number, "Error", &format!("Could not remove: {lb}"))?;
        }
        l.finish_job(lock, status, 0, error.as_deref())?;
    }
    Ok(Report {
        job: number,
        job_type: JobType::Restore,
        plan: req.plan.name.clone(),
        tenant: req.tenant.name.clone(),
        account: r.account.clone(),
        status,
        dry_run,
        kind: kind.to_string(),
        source,
        region: r.region.clone(),
        recovery_point: r.point.clone(),
        restored,
        created: r.created.clone(),
        removed: r.removed.clone(),
        left_behind: r.left_behind.clone(),
        calls: r.calls.clone(),
        notes: r.notes.clone(),
        summary: r.summary.clone(),
        error,
        start,
        end,
    })
}

impl Restorer<'_> {
    fn log(&self, m: &str) {
        self.logs
            .write(LogFile::Restore, self.log_job, COMPONENT, m);
    }

    fn note(&mut self, m: String) {
        self.log(&format!("Note: {m}"));
        self.notes.push(m);
    }

    /// Records a mutating call (made, or in a dry run only described).
    fn call(&mut self, m: String) {
        self.log(&if self.dry_run {
            format!("Dry run: would call {m}")
        } else {
            format!("Calling {m}")
        });
        self.calls.push(m);
    }

    fn attempt_rds(&mut self, kind: &str, id: &str, region: &str) {
        self.rds_attempted.push(Made {
            kind: kind.into(),
            id: id.into(),
            region: region.into(),
        });
    }

    fn made(&mut self, kind: &str, id: &str, region: &str) {
        self.created.push(Made {
            kind: kind.into(),
            id: id.into(),
            region: region.into(),
        });
    }

    fn site<'s>(&'s self, region: &'s str) -> Site<'s> {
        Site {
            tenant: &self.session.tenant.name,
            region,
        }
    }

    fn job_tag(&self) -> String {
        self.job.to_string()
    }

    /// Filters that find only what this job made: its number and its
    /// agent id (another agent's restore job of the same number is not ours).
    fn job_filters(&self, job: &str) -> Vec<aws_sdk_ec2::types::Filter> {
        let mut f = vec![tag_filter(tags::BACKUP, job)];
        if !self.agent.is_empty() {
            f.push(tag_filter(tags::AGENT, &self.agent));
        }
        f
    }

    /// Whether a resource's tags say this job made it.
    fn is_ours(&self, t: &BTreeMap<String, String>, job: &str) -> bool {
        t.get(tags::BACKUP).map(String::as_str) == Some(job)
            && t.get(tags::AGENT).map_or("", String::as_str) == self.agent
    }

    /// The job number in tags and names; `<job>` in a dry run (no job exists).
    fn job_label(&self) -> String {
        if self.dry_run {
            "<job>".into()
        } else {
            self.job.to_string()
        }
    }

    async fn take(&self, region: &str, bucket: Bucket) {
        self.pacer.take(&self.account, region, bucket).await;
    }

    /// A create call: retried when throttled, checked with `exists` after an
    /// ambiguous failure so that nothing is made twice.
    async fn create<T, C, CF, E, EF>(&self, call: C, exists: E) -> Result<T, AwsError>
    where
        C: FnMut() -> CF,
        CF: Future<Output = Result<T, AwsError>>,
        E: FnMut() -> EF,
        EF: Future<Output = Result<Option<T>, AwsError>>,
    {
        let (r, _) = create_with_retry(self.deadline, call, exists, |e, wait| {
            self.log(&format!(
                "Retrying {} after {}: {} (in {} ms)",
                e.action,
                e.code,
                e.message,
                wait.as_millis()
            ))
        })
        .await;
        r
    }

    /// Polls until done, failed or the deadline; backs off from
    /// `poll_initial` to `poll_max`.
    async fn wait_for<T, F, Fut>(&self, what: &str, mut poll: F) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Poll<T>, AwsError>>,
    {
        let mut delay = self.options.poll_initial;
        let mut polls = 0u32;
        loop {
            polls += 1;
            let last = match poll().await {
                Ok(Poll::Done(v)) => {
                    self.log(&format!("{what}: done after {polls} poll(s)"));
                    return Ok(v);
                }
                Ok(Poll::Failed(why)) => return Err(format!("{what}: {why}")),
                Ok(Poll::Pending(s)) => s,
                Err(e) => {
                    self.log(&format!("Poll of {what} failed (will retry): {e}"));
                    e.to_string()
                }
            };
            if Instant::now() + delay > self.deadline {
                return Err(format!(
                    "{what}: still {last} after the {} s wait timeout",
                    self.options.wait_timeout.as_secs()
                ));
            }
            self.log(&format!(
                "Waiting for {what}: {last} (poll {polls}, next in {} ms)",
                delay.as_millis()
            ));
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.options.poll_max);
        }
    }

    async fn restore(&mut self, target: &Target) -> Result<Value, String> {
        match target {
            Target::Instance(s) => self.restore_instance(s).await,
            Target::Volume(s) => self.restore_volume(s).await,
            Target::Db(s) => self.restore_db(s).await,
        }
    }

    // ------------------------------------------------------------ finding the point

    /// Regions to look in when `--region` is not given: the plan's regions for
    /// this tenant and its copy regions.
    async fn candidate_regions(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in groups_for(self.plan, &self.session.tenant) {
            match regions_for(&self.session, &self.admin_region, &g.regions).await {
                Ok(rs) => out.extend(rs),
                Err(e) => self.log(&format!(
                    "Cannot resolve regions of group [{}]: {e}",
                    g.name
                )),
            }
        }
        out.extend(self.plan.copies.iter().map(|c| c.region.clone()));
        let mut seen = BTreeSet::new();
        out.retain(|r| seen.insert(r.clone()));
        out
    }

    async fn find_point(
        &mut self,
        what: &str,
        matches: &dyn Fn(&RecoveryPoint) -> bool,
        kinds: Kinds,
    ) -> Result<RecoveryPoint, String> {
        let regions = match &self.which.region {
            Some(r) => vec![r.clone()],
            None => self.candidate_regions().await,
        };
        let mut points = Vec::new();
        for region in &regions {
            match list_region(
                &self.session,
                &self.account,
                region,
                Some(&self.plan.name),
                kinds,
                &self.pacer,
            )
            .await
            {
                Ok(p) => points.extend(p),
                Err(e) if self.which.region.is_some() => return Err(e.to_string()),
                Err(e) => self.log(&format!("Cannot list recovery points in [{region}]: {e}")),
            }
        }
        let p = choose_point(&points, matches, &self.which, what)?.clone();
        self.log(&format!(
            "Restoring {what} from {} [{}] of job [{}] made {} in [{}]{}",
            p.kind.as_str(),
            p.id(),
            p.job.map_or("?".into(), |j| j.to_string()),
            p.created.to_rfc3339(),
            p.region,
            p.copy_of()
                .map(|c| format!(" (copy of {c})"))
                .unwrap_or_default()
        ));
        self.region = Some(p.region.clone());
        self.point = Some(PointSummary::from(&p));
        Ok(p)
    }

    /// The volume a snapshot was taken of. A cross-region copy does not carry
    /// it (AWS shows `vol-ffffffff`); its source snapshot, named by
    /// `_GX_COPY_OF_`, does.
    async fn source_volume_of(&self, copy_of: &str) -> Result<String, String> {
        let (region, snap) = copy_of
            .split_once('/')
            .ok_or_else(|| format!("bad {} value {copy_of}", tags::COPY_OF))?;
        let ec2 = self.session.ec2(region);
        self.take(region, Bucket::Describe).await;
        let out = ec2
            .describe_snapshots()
            .snapshot_ids(snap)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot tell which volume copy of {copy_of} belongs to: {}",
                    self.site(region)
                        .err("DescribeSnapshots", Some(snap), e.into_service_error())
                )
            })?;
        out.snapshots()
            .first()
            .and_then(|s| s.volume_id())
            .map(str::to_string)
            .ok_or_else(|| format!("source snapshot {copy_of} not found"))
    }

    /// Every snapshot of a set with its recorded device.
    async fn device_mapping(&self, p: &RecoveryPoint) -> Result<Vec<Mapped>, String> {
        let devices = tags::parse_devices(p.tags.get(tags::DEVICES).map_or("", String::as_str));
        if devices.is_empty() {
            return Err(format!(
                "recovery point {} records no devices ({} tag)",
                p.id(),
                tags::DEVICES
            ));
        }
        let mut pairs = Vec::new();
        for s in &p.snapshots {
            let vol = if devices.iter().any(|(v, _)| v == &s.volume_id) {
                s.volume_id.clone()
            } else if let Some(c) = s.tags.get(tags::COPY_OF) {
                self.source_volume_of(c).await?
            } else {
                s.volume_id.clone()
            };
            pairs.push((s.id.clone(), vol));
        }
        let mapped = map_devices(&devices, &pairs)?;
        Ok(mapped
            .into_iter()
            .map(|(snapshot, volume, device)| {
                let size_gib = p
                    .snapshots
                    .iter()
                    .find(|s| s.id == snapshot)
                    .map_or(0, |s| s.size_gib);
                Mapped {
                    snapshot,
                    volume,
                    device,
                    size_gib,
                }
            })
            .collect())
    }

    // ------------------------------------------------------------ EC2 lookups

    async fn describe_instance(&self, region: &str, id: &str) -> Result<Option<Described>, String> {
        let ec2 = self.session.ec2(region);
        self.take(region, Bucket::Describe).await;
        match ec2.describe_instances().instance_ids(id).send().await {
            Ok(out) => Ok(out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .next()
                .map(described)),
            Err(e) => {
                let e =
                    self.site(region)
                        .err("DescribeInstances", Some(id), e.into_service_error());
                if e.code.contains("NotFound") {
                    Ok(None)
                } else {
                    Err(e.to_string())
                }
            }
        }
    }

    /// (AZ, VPC) of a subnet id.
    async fn subnet_info(
        &self,
        region: &str,
        subnet: &str,
    ) -> Result<(String, Option<String>), String> {
        let ec2 = self.session.ec2(region);
        self.take(region, Bucket::Describe).await;
        let out = ec2
            .describe_subnets()
            .subnet_ids(subnet)
            .send()
            .await
            .map_err(|e| {
                self.site(region)
                    .err("DescribeSubnets", Some(subnet), e.into_service_error())
                    .to_string()
            })?;
        let s = out
            .subnets()
            .first()
            .ok_or_else(|| format!("subnet {subnet} not found in {region}"))?;
        Ok((
            s.availability_zone().unwrap_or_default().to_string(),
            s.vpc_id().map(str::to_string),
        ))
    }

    async fn subnet_az(&self, region: &str, subnet: &str) -> Result<String, String> {
        Ok(self.subnet_info(region, subnet).await?.0)
    }

    /// The VPCs of security groups.
    async fn security_group_vpcs(
        &self,
        region: &str,
        groups: &[String],
    ) -> Result<BTreeSet<String>, String> {
        let ec2 = self.session.ec2(region);
        self.take(region, Bucket::Describe).await;
        let out = ec2
            .describe_security_groups()
            .set_group_ids(Some(groups.to_vec()))
            .send()
            .await
            .map_err(|e| {
                self.site(region)
                    .err("DescribeSecurityGroups", None, e.into_service_error())
                    .to_string()
            })?;
        Ok(out
            .security_groups()
            .iter()
            .filter_map(|g| g.vpc_id().map(str::to_string))
            .collect())
    }

    /// The default subnet of `region`, preferring the AZ whose letter matches
    /// `like_az` (`us-east-1b` → `us-west-2b`). (subnet, AZ)
    async fn default_subnet(
        &self,
        region: &str,
        like_az: Option<&str>,
    ) -> Result<Option<(String, String)>, String> {
        let ec2 = self.session.ec2(region);
        self.take(region, Bucket::Describe).await;
        let out = ec2
            .describe_subnets()
            .filters(filter("default-for-az", &["true"]))
            .send()
            .await
            .map_err(|e| {
                self.site(region)
                    .err("DescribeSubnets", None, e.into_service_error())
                    .to_string()
            })?;
        let mut subnets: Vec<(String, String)> = out
            .subnets()
            .iter()
            .filter_map(|s| {
                Some((
                    s.subnet_id()?.to_string(),
                    s.availability_zone()?.to_string(),
                ))
            })
            .collect();
        subnets.sort_by(|a, b| a.1.cmp(&b.1));
        let letter = like_az.and_then(|az| az.chars().last());
        Ok(subnets
            .iter()
            .find(|(_, az)| letter.is_some() && az.chars().last() == letter)
            .or(subnets.first())
            .cloned())
    }

    async fn key_exists(&self, region: &str, key: &str) -> bool {
        let ec2 = self.session.ec2(region);
        self.take(region, Bucket::Describe).await;
        ec2.describe_key_pairs()
            .key_names(key)
            .send()
            .await
            .is_ok_and(|o| !o.key_pairs().is_empty())
    }

    /// The launch configuration: the recorded one, overridden by the request;
    /// in a region other than the recorded one, sensible defaults (said so).
    async fn launch_config(
        &mut self,
        p: &RecoveryPoint,
        spec: &InstanceSpec,
        region: &str,
    ) -> Result<Launch, String> {
        let t = &p.tags;
        let recorded = recorded_region(p);
        let same_region = recorded == region;
        let instance_type = spec
            .instance_type
            .clone()
            .or_else(|| t.get(tags::INSTANCE_TYPE).cloned())
            .ok_or_else(|| {
                format!(
                    "recovery point {} records no instance type ({}): pass --instance-type",
                    p.id(),
                    tags::INSTANCE_TYPE
                )
            })?;
        let recorded_az = t.get(tags::AZ).cloned();
        let (subnet, az, vpc) = match (&spec.subnet, same_region) {
            (Some(s), _) => {
                let (az, vpc) = self.subnet_info(region, s).await?;
                (Some(s.clone()), Some(az), vpc)
            }
            (None, true) => (t.get(tags::SUBNET).cloned(), recorded_az.clone(), None),
            (None, false) => match self.default_subnet(region, recorded_az.as_deref()).await? {
                Some((s, az)) => {
                    self.note(format!(
                        "restoring in {region}, not in the recorded region {recorded}: the recorded subnet {} does not exist here, so the default subnet {s} ({az}) of the default VPC is used (choose with --subnet)",
                        t.get(tags::SUBNET).map_or("-", String::as_str)
                    ));
                    (Some(s), Some(az), None)
                }
                None => {
                    return Err(format!(
                        "restoring in {region}, not in the recorded region {recorded}: the recorded subnet does not exist here and {region} has no default VPC; pass --subnet"
                    ))
                }
            },
        };
        let recorded_sgs: Vec<String> = t
            .get(tags::SECURITY_GROUPS)
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let security_groups = if !spec.security_groups.is_empty() {
            spec.security_groups.clone()
        } else if recorded_sgs.is_empty() {
            vec![]
        } else if same_region && spec.subnet.is_none() {
            recorded_sgs
        } else {
            // A chosen subnet: the recorded groups only if they are in its VPC.
            let fits = match (same_region, &vpc) {
                (true, Some(v)) => self
                    .security_group_vpcs(region, &recorded_sgs)
                    .await
                    .is_ok_and(|vpcs| vpcs.len() == 1 && vpcs.contains(v)),
                _ => false,
            };
            if fits {
                recorded_sgs
            } else {
                self.note(format!(
                    "the recorded security groups [{}] are not in the VPC of {}; the new instance gets that VPC's default security group (choose with --security-groups)",
                    recorded_sgs.join(" "),
                    subnet.as_deref().unwrap_or("the subnet")
                ));
                vec![]
            }
        };
        let key_name = match (&spec.key_name, t.get(tags::KEY_NAME)) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(k)) if same_region => Some(k.clone()),
            (None, Some(k)) => {
                if self.key_exists(region, k).await {
                    self.note(format!("key pair {k} exists in {region} too and is used"));
                    Some(k.clone())
                } else {
                    self.note(format!(
                        "key pair {k} does not exist in {region}: the instance is launched without a key pair (choose with --key-name)"
                    ));
                    None
                }
            }
            (None, None) => None,
        };
        Ok(Launch {
            instance_type,
            subnet,
            az,
            security_groups,
            key_name,
            iam_profile: t.get(tags::IAM_PROFILE).cloned(),
        })
    }

    // ------------------------------------------------------------ EC2 creates

    /// RunInstances, tagged at creation. Returns the instance id.
    async fn run_instance(
        &mut self,
        region: &str,
        image: &str,
        l: &Launch,
        bdms: &[BlockDeviceMapping],
        instance_tags: &[(String, String)],
        volume_tags: &[(String, String)],
    ) -> Result<String, String> {
        self.call(format!(
            "RunInstances ImageId={image} InstanceType={} SubnetId={} SecurityGroupIds=[{}] KeyName={}{}{} Tags[instance]={} Tags[volume]={}",
            l.instance_type,
            l.subnet.as_deref().unwrap_or("-"),
            l.security_groups.join(","),
            l.key_name.as_deref().unwrap_or("-"),
            l.iam_profile
                .as_ref()
                .map(|p| format!(" IamInstanceProfile={p}"))
                .unwrap_or_default(),
            if bdms.is_empty() {
                String::new()
            } else {
                format!(
                    " BlockDeviceMappings=[{}]",
                    bdms.iter()
                        .map(|m| format!(
                            "{}={}",
                            m.device_name().unwrap_or_default(),
                            m.ebs()
                                .and_then(|e| e.snapshot_id())
                                .unwrap_or("(image root)")
                        ))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
            tag_list(instance_tags),
            tag_list(volume_tags)
        ));
        if self.dry_run {
            return Ok("<new instance>".into());
        }
        let me: &Self = self;
        let ec2 = me.session.ec2(region);
        let site = me.site(region);
        let job = me.job_tag();
        let token = format!("rolesnap-restore-{}", me.job);
        let (itags, vtags) = (
            spec(ResourceType::Instance, instance_tags),
            spec(ResourceType::Volume, volume_tags),
        );
        let id = me
            .create(
                || {
                    let (ec2, itags, vtags, token) =
                        (&ec2, itags.clone(), vtags.clone(), token.clone());
                    async move {
                        me.take(region, Bucket::Mutate).await;
                        let out = ec2
                            .run_instances()
                            .image_id(image)
                            .instance_type(InstanceType::from(l.instance_type.as_str()))
                            .min_count(1)
                            .max_count(1)
                            .set_subnet_id(l.subnet.clone())
                            .set_security_group_ids(
                                (!l.security_groups.is_empty()).then(|| l.security_groups.clone()),
                            )
                            .set_key_name(l.key_name.clone())
                            .set_iam_instance_profile(
                                l.iam_profile.as_ref().map(|p| {
                                    IamInstanceProfileSpecification::builder().arn(p).build()
                                }),
                            )
                            .set_block_device_mappings((!bdms.is_empty()).then(|| bdms.to_vec()))
                            .tag_specifications(itags)
                            .tag_specifications(vtags)
                            .client_token(token)
                            .customize()
                            .config_override(no_sdk_retries_ec2())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err("RunInstances", Some(image), e.into_service_error())
                            })?;
                        Ok(out
                            .instances()
                            .first()
                            .and_then(|i| i.instance_id())
                            .unwrap_or_default()
                            .to_string())
                    }
                },
                || async { Ok(me.job_instances(region, &job).await?.into_iter().next()) },
            )
            .await
            .map_err(|e| e.to_string())?;
        self.made("instance", &id, region);
        self.log(&format!("Launched instance [{id}] in [{region}]"));
        Ok(id)
    }

    /// Instances tagged with this job, not terminated.
    async fn job_instances(&self, region: &str, job: &str) -> Result<Vec<String>, AwsError> {
        let ec2 = self.session.ec2(region);
        self.take(region, Bucket::Describe).await;
        let out = ec2
            .describe_instances()
            .set_filters(Some(self.job_filters(job)))
            .filters(filter(
                "instance-state-name",
                &["pending", "running", "stopping", "stopped", "shutting-down"],
            ))
            .send()
            .await
            .map_err(|e| {
                self.site(region)
                    .err("DescribeInstances", None, e.into_service_error())
            })?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect())
    }

    async fn wait_running(&self, region: &str, id: &str) -> Result<Described, String> {
        self.wait_for(&format!("instance {id} to be running"), || async {
            match self.describe_instance(region, id).await {
                Ok(Some(d)) => Ok(match d.state.as_str() {
                    "running" => Poll::Done(d),
                    "pending" | "" => Poll::Pending(d.state.clone()),
                    other => Poll::Failed(format!("instance is {other}: {}", d.reason)),
                }),
                Ok(None) => Ok(Poll::Pending("not visible yet".into())),
                Err(e) => Ok(Poll::Pending(e)),
            }
        })
        .await
    }

    /// RegisterImage from a snapshot set; returns the image id.
    async fn register_image(
        &mut self,
        region: &str,
        name: &str,
        root: &str,
        mapped: &[Mapped],
        architecture: &str,
        image_tags: &[(String, String)],
    ) -> Result<String, String> {
        let bdms: Vec<BlockDeviceMapping> = mapped
            .iter()
            .map(|m| {
                BlockDeviceMapping::builder()
                    .device_name(&m.device)
                    .ebs(
                        EbsBlockDevice::builder()
                            .snapshot_id(&m.snapshot)
                            .delete_on_termination(same_device(&m.device, root))
                            .volume_type(VolumeType::Gp3)
                            .build(),
                    )
                    .build()
            })
            .collect();
        self.call(format!(
            "RegisterImage Name={name} RootDeviceName={root} Architecture={architecture} VirtualizationType=hvm EnaSupport=true BlockDeviceMappings=[{}] Tags[image]={}",
            mapped
                .iter()
                .map(|m| format!("{}={}", m.device, m.snapshot))
                .collect::<Vec<_>>()
                .join(","),
            tag_list(image_tags)
        ));
        if self.dry_run {
            return Ok("<registered image>".into());
        }
        let tenant = self.session.tenant.name.clone();
        let site = Site {
            tenant: &tenant,
            region,
        };
        let me: &Self = self;
        let ec2 = me.session.ec2(region);
        let itags = spec(ResourceType::Image, image_tags);
        let image = me
            .create(
                || {
                    let (ec2, itags, bdms) = (&ec2, itags.clone(), bdms.clone());
                    async move {
                        me.take(region, Bucket::Mutate).await;
                        let out = ec2
                            .register_image()
                            .name(name)
                            .description(format!(
                                "rolesnap restore job {}: temporary image of a snapshot set",
                                me.job
                            ))
                            .root_device_name(root)
                            .architecture(ArchitectureValues::from(architecture))
                            .virtualization_type("hvm")
                            .ena_support(true)
                            .set_block_device_mappings(Some(bdms))
                            .tag_specifications(itags)
                            .customize()
                            .config_override(no_sdk_retries_ec2())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err("RegisterImage", Some(name), e.into_service_error())
                            })?;
                        Ok(out.image_id().unwrap_or_default().to_string())
                    }
                },
                || async {
                    // Image names are unique per account and region.
                    me.take(region, Bucket::Describe).await;
                    let out = ec2
                        .describe_images()
                        .owners("self")
                        .filters(filter("name", &[name]))
                        .send()
                        .await
                        .map_err(|e| {
                            site.err("DescribeImages", Some(name), e.into_service_error())
                        })?;
                    Ok(out
                        .images()
                        .first()
                        .and_then(|i| i.image_id())
                        .map(str::to_string))
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        self.made("image", &image, region);
        self.log(&format!("Registered image [{image}] in [{region}]"));
        let me: &Self = self;
        let ec2 = &ec2;
        let image_ref = image.as_str();
        me.wait_for(&format!("image {image} to be available"), || async move {
            me.take(region, Bucket::Describe).await;
            let out = ec2
                .describe_images()
                .image_ids(image_ref)
                .send()
                .await
                .map_err(|e| site.err("DescribeImages", Some(image_ref), e.into_service_error()))?;
            Ok(
                match out
                    .images()
                    .first()
                    .and_then(|i| i.state())
                    .map(|s| s.as_str())
                {
                    Some("available") => Poll::Done(()),
                    Some("pending") | None => Poll::Pending("pending".into()),
                    Some(other) => Poll::Failed(format!("image state {other}")),
                },
            )
        })
        .await?;
        Ok(image)
    }

    // ------------------------------------------------------------ instance

    async fn source_instance_tags(
        &mut self,
        region: &str,
        id: &str,
    ) -> (Option<String>, Vec<(String, String)>) {
        match self.describe_instance(region, id).await {
            Ok(Some(d)) if d.state != "terminated" => {
                let name = d.tags.get(tags::NAME).cloned();
                (name, carried_tags(&d.tags))
            }
            Ok(_) => {
                self.note(format!(
                    "source instance {id} no longer exists; its own tags are not part of the recovery point, so only the provenance tags are set"
                ));
                (None, vec![])
            }
            Err(e) => {
                self.note(format!(
                    "cannot read the tags of source instance {id} ({e}); only the provenance tags are set"
                ));
                (None, vec![])
            }
        }
    }

    async fn restore_instance(&mut self, s: &InstanceSpec) -> Result<Value, String> {
        let id = s.instance_id.clone();
        let p = self
            .find_point(
                &format!("instance {id}"),
                &|p: &RecoveryPoint| {
                    matches!(p.kind, PointKind::SnapshotSet | PointKind::Ami) && p.source == id
                },
                Kinds {
                    ec2: true,
                    rds: false,
                    all_tags: true,
                },
            )
            .await?;
        let region = p.region.clone();
        let launch = self.launch_config(&p, s, &region).await?;
        let (src_name, carried) = if s.no_tags {
            self.note("--no-tags: the source instance's own tags are not copied".into());
            (None, vec![])
        } else {
            self.source_instance_tags(&recorded_region(&p), &id).await
        };
        let name = format!(
            "{}-restored-{}",
            src_name.as_deref().unwrap_or(&id),
            self.job_label()
        );
        let prov = provenance(&self.job_label(), &self.agent, &id, &p.id(), &name);
        let mut instance_tags = carried;
        instance_tags.extend(prov.iter().cloned());
        let (image, bdms, mapped) = match p.kind {
            PointKind::Ami => (p.id(), vec![], vec![]),
            _ => {
                let mapped = self.device_mapping(&p).await?;
                let root = p.tags.get(tags::ROOT_DEVICE).cloned().ok_or_else(|| {
                    format!(
                        "recovery point {} records no root device ({})",
                        p.id(),
                        tags::ROOT_DEVICE
                    )
                })?;
                if !mapped.iter().any(|m| same_device(&m.device, &root)) {
                    return Err(format!(
                        "snapshot set {} has no snapshot of the root device {root}; restore its volumes with `restore volume`",
                        p.id()
                    ));
                }
                let arch = s
                    .architecture
                    .clone()
                    .unwrap_or_else(|| architecture_for(&launch.instance_type).to_string());
                let mut image_name = format!(
                    "rolesnap-restore-{}-{id}-{}",
                    self.job_label(),
                    Utc::now().timestamp()
                );
                truncate(&mut image_name, 128);
                let image = self
                    .register_image(&region, &image_name, &root, &mapped, &arch, &prov)
                    .await?;
                // The image's own mappings, repeated: the root keeps the image's
                // snapshot (only its size and type are given), each data device
                // its snapshot. AWS would make the same volumes from the image
                // alone; endpoints that ignore RegisterImage's mappings need them.
                let bdms: Vec<BlockDeviceMapping> = mapped
                    .iter()
                    .map(|m| {
                        let root_dev = same_device(&m.device, &root);
                        let mut ebs = EbsBlockDevice::builder()
                            .volume_type(VolumeType::Gp3)
                            .delete_on_termination(root_dev);
                        if m.size_gib > 0 {
                            ebs = ebs.volume_size(m.size_gib as i32);
                        }
                        if !root_dev {
                            ebs = ebs.snapshot_id(&m.snapshot);
                        }
                        BlockDeviceMapping::builder()
                            .device_name(&m.device)
                            .ebs(ebs.build())
                            .build()
                    })
                    .collect();
                (image, bdms, mapped)
            }
        };
        let instance = self
            .run_instance(&region, &image, &launch, &bdms, &instance_tags, &prov)
            .await?;
        let mut result = json!({
            "instance_id": instance,
            "region": region,
            "image_id": image,
            "instance_type": launch.instance_type,
            "subnet_id": launch.subnet,
            "availability_zone": launch.az,
            "security_group_ids": launch.security_groups,
            "key_name": launch.key_name,
            "iam_instance_profile": launch.iam_profile,
            "tags": instance_tags.iter().cloned().collect::<BTreeMap<_, _>>(),
        });
        if self.dry_run {
            if p.kind == PointKind::SnapshotSet {
                self.call(format!(
                    "DeregisterImage {image} (after the instance is running)"
                ));
            }
            return Ok(result);
        }
        let d = self.wait_running(&region, &instance).await?;
        result["state"] = json!(d.state);
        result["availability_zone"] = json!(d.az);
        result["subnet_id"] = json!(d.subnet);
        result["volumes"] = json!(d
            .devices
            .iter()
            .map(|(dev, vol)| {
                let from = mapped
                    .iter()
                    .find(|m| same_device(&m.device, dev))
                    .map(|m| m.snapshot.clone());
                json!({"device": dev, "volume_id": vol, "from_snapshot": from})
            })
            .collect::<Vec<_>>());
        for (_, vol) in &d.devices {
            if !vol.is_empty() {
                self.made("volume", vol, &region);
            }
        }
        self.summary.push(format!(
            "new instance {instance} {} {} in {} {}",
            d.state,
            d.instance_type.as_deref().unwrap_or(&launch.instance_type),
            d.subnet.as_deref().unwrap_or("-"),
            d.az
        ));
        for (dev, vol) in &d.devices {
            self.summary.push(format!("  volume {vol} at {dev}"));
        }
        if p.kind == PointKind::SnapshotSet {
            self.deregister_temporary(&region, &image).await;
        }
        Ok(result)
    }

    /// After a successful launch: the registered image would keep the
    /// backup's snapshots from ever being pruned (`InvalidSnapshot.InUse`).
    async fn deregister_temporary(&mut self, region: &str, image: &str) {
        self.call(format!("DeregisterImage {image}"));
        let ec2 = self.session.ec2(region);
        self.take(region, Bucket::DeregisterImage).await;
        let r = ec2.deregister_image().image_id(image).send().await;
        match r {
            Ok(_) => {
                self.removed.push(image.to_string());
                self.note(format!(
                    "the temporary image {image} was deregistered once the instance was running (it would keep the backup's snapshots from being pruned)"
                ));
            }
            Err(e) => {
                let e =
                    self.site(region)
                        .err("DeregisterImage", Some(image), e.into_service_error());
                self.warnings.push(format!(
                    "the instance is running, but the temporary image {image} could not be deregistered ({e}); it keeps the backup's snapshots from being pruned until it is"
                ));
            }
        }
    }

    // ------------------------------------------------------------ volume

    async fn restore_volume(&mut self, s: &VolumeSpec) -> Result<Value, String> {
        let vol = s.volume_id.clone();
        let p = self
            .find_point(
                &format!("volume {vol}"),
                &|p: &RecoveryPoint| {
                    let of_volume = p.snapshots.iter().any(|x| x.volume_id == vol);
                    match p.kind {
                        // A copy's snapshots may not name their volume: the set's devices do.
                        PointKind::SnapshotSet => {
                            of_volume
                                || tags::parse_devices(
                                    p.tags.get(tags::DEVICES).map_or("", String::as_str),
                                )
                                .iter()
                                .any(|(v, _)| v == &vol)
                        }
                        PointKind::Ami => of_volume,
                        _ => false,
                    }
                },
                Kinds {
                    ec2: true,
                    rds: false,
                    all_tags: true,
                },
            )
            .await?;
        let region = p.region.clone();
        let recorded = recorded_region(&p);
        let same_region = recorded == region;
        let recorded_device =
            tags::parse_devices(p.tags.get(tags::DEVICES).map_or("", String::as_str))
                .into_iter()
                .find(|(v, _)| v == &vol)
                .map(|(_, d)| d);
        let snapshot = match p.kind {
            PointKind::SnapshotSet => self
                .device_mapping(&p)
                .await?
                .into_iter()
                .find(|m| m.volume == vol)
                .map(|m| m.snapshot),
            _ => p
                .snapshots
                .iter()
                .find(|x| x.volume_id == vol)
                .map(|x| x.id.clone()),
        }
        .ok_or_else(|| format!("recovery point {} has no snapshot of {vol}", p.id()))?;
        let name = format!("{vol}-restored-{}", self.job_label());
        let prov = provenance(&self.job_label(), &self.agent, &vol, &snapshot, &name);
        let source_instance = p.source.clone();

        // The target, and the device, before anything is created.
        let (target, az, device, new_instance) = match &s.attach {
            AttachTo::Instance(target) => {
                let d = self
                    .describe_instance(&region, target)
                    .await?
                    .ok_or_else(|| format!("refused: instance {target} not found in {region}"))?;
                if d.state != "running" && d.state != "stopped" {
                    return Err(format!(
                        "refused: instance {target} is {}; a volume can be attached to a running or stopped instance",
                        d.state
                    ));
                }
                let mut in_use: Vec<(String, String)> = d
                    .devices
                    .iter()
                    .map(|(dev, v)| (dev.clone(), v.clone()))
                    .collect();
                if let Some(root) = &d.root_device {
                    in_use.push((root.clone(), "the root device".into()));
                }
                let device = choose_device(
                    s.device.as_deref(),
                    recorded_device.as_deref(),
                    &in_use,
                    target,
                )?;
                (target.clone(), d.az.clone(), device, false)
            }
            AttachTo::NewInstance {
                image_id,
                instance_type,
                subnet,
            } => {
                let recorded_az = p.tags.get(tags::AZ).cloned();
                let (subnet, az) = match subnet {
                    Some(sn) => (sn.clone(), self.subnet_az(&region, sn).await?),
                    None => match (same_region, p.tags.get(tags::SUBNET)) {
                        (true, Some(sn)) => {
                            let az = match &recorded_az {
                                Some(a) => a.clone(),
                                None => self.subnet_az(&region, sn).await?,
                            };
                            (sn.clone(), az)
                        }
                        _ => match self.default_subnet(&region, recorded_az.as_deref()).await? {
                            Some((sn, az)) => {
                                self.note(format!(
                                    "the new instance goes to the default subnet {sn} ({az}) of {region} (choose with --subnet)"
                                ));
                                (sn, az)
                            }
                            None => {
                                return Err(format!(
                                    "no recorded subnet usable in {region} and no default VPC there: pass --subnet"
                                ))
                            }
                        },
                    },
                };
                let image = match image_id {
                    Some(i) => i.clone(),
                    None => match self.describe_instance(&recorded, &source_instance).await {
                        Ok(Some(d)) if d.image_id.is_some() && same_region => {
                            let i = d.image_id.unwrap_or_default();
                            self.note(format!(
                                "the new instance is launched from {i}, the image of the source instance {source_instance} (choose with --image-id)"
                            ));
                            i
                        }
                        _ => {
                            return Err(
                                "--new-instance needs --image-id (the source instance's image is not available)"
                                    .into(),
                            )
                        }
                    },
                };
                let iname = format!("{vol}-restore-host-{}", self.job_label());
                let iprov = provenance(&self.job_label(), &self.agent, &vol, &snapshot, &iname);
                let launch = Launch {
                    instance_type: instance_type.clone(),
                    subnet: Some(subnet.clone()),
                    az: Some(az.clone()),
                    security_groups: vec![],
                    key_name: None,
                    iam_profile: None,
                };
                let device = s
                    .device
                    .clone()
                    .or(recorded_device.clone())
                    .filter(|d| !same_device(d, "/dev/sda"))
                    .unwrap_or_else(|| "/dev/sdf".into());
                let id = self
                    .run_instance(&region, &image, &launch, &[], &iprov, &iprov)
                    .await?;
                if !self.dry_run {
                    let d = self.wait_running(&region, &id).await?;
                    let mut in_use = d.devices.clone();
                    if let Some(root) = &d.root_device {
                        in_use.push((root.clone(), "the root device".into()));
                    }
                    let device = choose_device(s.device.as_deref(), Some(&device), &in_use, &id)?;
                    self.summary.push(format!(
                        "new instance {id} {} {instance_type} in {subnet} {}",
                        d.state, d.az
                    ));
                    (id, d.az, device, true)
                } else {
                    (id, az, device, true)
                }
            }
        };

        self.call(format!(
            "CreateVolume SnapshotId={snapshot} AvailabilityZone={az} VolumeType={} Tags[volume]={}",
            s.volume_type,
            tag_list(&prov)
        ));
        let mut result = json!({
            "volume_id": Value::Null,
            "region": region,
            "availability_zone": az,
            "from_snapshot": snapshot,
            "attached_to": target,
            "new_instance": new_instance,
            "device": device,
            "tags": prov.iter().cloned().collect::<BTreeMap<_, _>>(),
        });
        if self.dry_run {
            self.call(format!(
                "AttachVolume VolumeId=<new volume> InstanceId={target} Device={device}"
            ));
            return Ok(result);
        }
        let volume = self
            .create_volume(&region, &snapshot, &az, &s.volume_type, &prov)
            .await?;
        result["volume_id"] = json!(volume);
        self.call(format!(
            "AttachVolume VolumeId={volume} InstanceId={target} Device={device}"
        ));
        self.attach(&region, &volume, &target, &device).await?;
        result["state"] = json!("in-use");
        self.summary.push(format!(
            "new volume {volume} from {snapshot} in {az}, attached to {target} at {device}"
        ));
        Ok(result)
    }

    async fn create_volume(
        &mut self,
        region: &str,
        snapshot: &str,
        az: &str,
        volume_type: &str,
        t: &[(String, String)],
    ) -> Result<String, String> {
        let tenant = self.session.tenant.name.clone();
        let site = Site {
            tenant: &tenant,
            region,
        };
        let me: &Self = self;
        let ec2 = me.session.ec2(region);
        let vtags = spec(ResourceType::Volume, t);
        let job = me.job_tag();
        let token = format!("rolesnap-restore-{}-vol", me.job);
        let volume = me
            .create(
                || {
                    let (ec2, vtags, token) = (&ec2, vtags.clone(), token.clone());
                    async move {
                        me.take(region, Bucket::CreateVolume).await;
                        let out = ec2
                            .create_volume()
                            .snapshot_id(snapshot)
                            .availability_zone(az)
                            .volume_type(VolumeType::from(volume_type))
                            .tag_specifications(vtags)
                            .client_token(token)
                            .customize()
                            .config_override(no_sdk_retries_ec2())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err("CreateVolume", Some(snapshot), e.into_service_error())
                            })?;
                        Ok(out.volume_id().unwrap_or_default().to_string())
                    }
                },
                || async {
                    me.take(region, Bucket::Describe).await;
                    let out = ec2
                        .describe_volumes()
                        .set_filters(Some(me.job_filters(&job)))
                        .filters(tag_filter(RESTORED_FROM, snapshot))
                        .send()
                        .await
                        .map_err(|e| site.err("DescribeVolumes", None, e.into_service_error()))?;
                    Ok(out
                        .volumes()
                        .first()
                        .and_then(|v| v.volume_id())
                        .map(str::to_string))
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        self.made("volume", &volume, region);
        self.log(&format!(
            "Created volume [{volume}] from [{snapshot}] in [{az}]"
        ));
        let me: &Self = self;
        let ec2 = &ec2;
        let v = volume.as_str();
        me.wait_for(&format!("volume {volume} to be available"), || async move {
            me.take(region, Bucket::Describe).await;
            let out = ec2
                .describe_volumes()
                .volume_ids(v)
                .send()
                .await
                .map_err(|e| site.err("DescribeVolumes", Some(v), e.into_service_error()))?;
            Ok(
                match out
                    .volumes()
                    .first()
                    .and_then(|x| x.state())
                    .map(|s| s.as_str())
                {
                    Some("available") => Poll::Done(()),
                    Some("creating") | None => Poll::Pending("creating".into()),
                    Some(other) => Poll::Failed(format!("volume is {other}")),
                },
            )
        })
        .await?;
        Ok(volume)
    }

    async fn attach(
        &mut self,
        region: &str,
        volume: &str,
        instance: &str,
        device: &str,
    ) -> Result<(), String> {
        let me: &Self = self;
        let ec2 = me.session.ec2(region);
        let site = me.site(region);
        let attached = |out: &aws_sdk_ec2::operation::describe_volumes::DescribeVolumesOutput| {
            out.volumes()
                .first()
                .and_then(|v| {
                    v.attachments()
                        .iter()
                        .find(|a| a.instance_id() == Some(instance))
                })
                .and_then(|a| a.state())
                .map(|s| s.as_str().to_string())
        };
        me.create(
            || {
                let ec2 = &ec2;
                async move {
                    me.take(region, Bucket::Mutate).await;
                    ec2.attach_volume()
                        .volume_id(volume)
                        .instance_id(instance)
                        .device(device)
                        .customize()
                        .config_override(no_sdk_retries_ec2())
                        .send()
                        .await
                        .map_err(|e| {
                            site.err("AttachVolume", Some(volume), e.into_service_error())
                        })?;
                    Ok(())
                }
            },
            || async {
                me.take(region, Bucket::Describe).await;
                let out = ec2
                    .describe_volumes()
                    .volume_ids(volume)
                    .send()
                    .await
                    .map_err(|e| {
                        site.err("DescribeVolumes", Some(volume), e.into_service_error())
                    })?;
                Ok(attached(&out).map(|_| ()))
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        me.log(&format!(
            "Attaching volume [{volume}] to [{instance}] at [{device}]"
        ));
        let ec2 = &ec2;
        let attached = &attached;
        me.wait_for(
            &format!("volume {volume} to be attached to {instance}"),
            || async move {
                me.take(region, Bucket::Describe).await;
                let out = ec2
                    .describe_volumes()
                    .volume_ids(volume)
                    .send()
                    .await
                    .map_err(|e| {
                        site.err("DescribeVolumes", Some(volume), e.into_service_error())
                    })?;
                Ok(match attached(&out).as_deref() {
                    Some("attached") => Poll::Done(()),
                    Some("attaching") | None => Poll::Pending("attaching".into()),
                    Some(other) => Poll::Failed(format!("attachment is {other}")),
                })
            },
        )
        .await
    }

    // ------------------------------------------------------------ RDS

    /// Whether a DB instance or cluster with this identifier exists; its tags if so.
    async fn db_tags(
        &self,
        region: &str,
        id: &str,
        cluster: bool,
    ) -> Result<Option<BTreeMap<String, String>>, String> {
        let rds = self.session.rds(region);
        let site = self.site(region);
        self.take(region, Bucket::Rds).await;
        let tags_of = |t: &[aws_sdk_rds::types::Tag]| -> BTreeMap<String, String> {
            t.iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect()
        };
        let r = if cluster {
            rds.describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .map(|o| o.db_clusters().first().map(|c| tags_of(c.tag_list())))
                .map_err(|e| site.err("DescribeDBClusters", Some(id), e.into_service_error()))
        } else {
            rds.describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .map(|o| o.db_instances().first().map(|d| tags_of(d.tag_list())))
                .map_err(|e| site.err("DescribeDBInstances", Some(id), e.into_service_error()))
        };
        match r {
            Ok(t) => Ok(t),
            Err(e) if e.code.contains("NotFound") => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn db_status(
        &self,
        region: &str,
        id: &str,
        cluster: bool,
    ) -> Result<Poll<String>, AwsError> {
        let rds = self.session.rds(region);
        let site = self.site(region);
        self.take(region, Bucket::Rds).await;
        let status = if cluster {
            match rds
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
            {
                Ok(o) => o
                    .db_clusters()
                    .first()
                    .and_then(|c| c.status())
                    .map(str::to_string),
                Err(e) => {
                    let e = site.err("DescribeDBClusters", Some(id), e.into_service_error());
                    if e.code.contains("NotFound") {
                        return Ok(Poll::Pending("not visible yet".into()));
                    }
                    return Err(e);
                }
            }
        } else {
            match rds
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
            {
                Ok(o) => o
                    .db_instances()
                    .first()
                    .and_then(|d| d.db_instance_status())
                    .map(str::to_string),
                Err(e) => {
                    let e = site.err("DescribeDBInstances", Some(id), e.into_service_error());
                    if e.code.contains("NotFound") {
                        return Ok(Poll::Pending("not visible yet".into()));
                    }
                    return Err(e);
                }
            }
        };
        Ok(match status.as_deref() {
            Some("available") => Poll::Done("available".into()),
            Some(
                s @ ("creating"
                | "backing-up"
                | "modifying"
                | "configuring-enhanced-monitoring"
                | "configuring-log-exports"
                | "rebooting"
                | "resetting-master-credentials"
                | "upgrading"
                | "starting"
                | "renaming"
                | "storage-optimization"),
            ) => Poll::Pending(s.to_string()),
            None => Poll::Pending("unknown".into()),
            Some(other) => Poll::Failed(format!("status {other}")),
        })
    }

    async fn wait_db(&self, region: &str, id: &str, cluster: bool) -> Result<String, String> {
        let what = if cluster { "cluster" } else { "DB instance" };
        self.wait_for(&format!("{what} {id} to be available"), || {
            self.db_status(region, id, cluster)
        })
        .await
    }

    async fn restore_db(&mut self, s: &DbSpec) -> Result<Value, String> {
        let source = s.source_id.clone();
        let want = if s.cluster {
            PointKind::ClusterSnapshot
        } else {
            PointKind::DbSnapshot
        };
        let what = if s.cluster {
            format!("Aurora cluster {source}")
        } else {
            format!("DB instance {source}")
        };
        let p = self
            .find_point(
                &what,
                &|p: &RecoveryPoint| p.kind == want && p.source.eq_ignore_ascii_case(&source),
                Kinds {
                    ec2: false,
                    rds: true,
                    all_tags: true,
                },
            )
            .await?;
        let region = p.region.clone();
        let snapshot = p.id();
        let same_region = recorded_region(&p) == region;
        let writer = s
            .writer_id
            .clone()
            .unwrap_or_else(|| format!("{}-1", s.target_id));
        // Never overwrite: refuse an existing identifier before creating anything.
        if self
            .db_tags(&region, &s.target_id, s.cluster)
            .await?
            .is_some()
        {
            return Err(format!(
                "refused: {} {} already exists in {region}; a restore never overwrites (choose another --target-id)",
                if s.cluster { "DB cluster" } else { "DB instance" },
                s.target_id
            ));
        }
        if s.cluster && self.db_tags(&region, &writer, false).await?.is_some() {
            return Err(format!(
                "refused: DB instance {writer} (the new cluster's writer) already exists in {region} (choose --writer-id)"
            ));
        }
        let subnet_group = match (&s.subnet_group, p.tags.get(tags::DB_SUBNET_GROUP)) {
            (Some(g), _) => Some(g.clone()),
            (None, Some(g)) if same_region => Some(g.clone()),
            (None, Some(g)) => {
                self.note(format!(
                    "the recorded DB subnet group {g} is in {}; the restore in {region} uses the default subnet group (choose with --subnet-group)",
                    recorded_region(&p)
                ));
                None
            }
            (None, None) => None,
        };
        let prov = provenance(
            &self.job_label(),
            &self.agent,
            &source,
            &snapshot,
            &s.target_id,
        );
        let rds = self.session.rds(&region);
        let tenant = self.session.tenant.name.clone();
        let site = Site {
            tenant: &tenant,
            region: &region,
        };
        let job = self.job_tag();
        if !s.cluster {
            let class = s
                .instance_class
                .clone()
                .or_else(|| p.tags.get(tags::DB_CLASS).cloned())
                .ok_or_else(|| {
                    format!(
                        "recovery point {snapshot} records no DB instance class ({}): pass --instance-class",
                        tags::DB_CLASS
                    )
                })?;
            self.call(format!(
                "RestoreDBInstanceFromDBSnapshot DBInstanceIdentifier={} DBSnapshotIdentifier={snapshot} DBInstanceClass={class} DBSubnetGroupName={} Tags={}",
                s.target_id,
                subnet_group.as_deref().unwrap_or("(default)"),
                tag_list(&prov)
            ));
            let mut result = json!({
                "db_instance_id": s.target_id,
                "region": region,
                "from_snapshot": snapshot,
                "db_instance_class": class,
                "db_subnet_group": subnet_group,
                "tags": prov.iter().cloned().collect::<BTreeMap<_, _>>(),
            });
            if self.dry_run {
                return Ok(result);
            }
            let target = s.target_id.as_str();
            let region_ref = region.as_str();
            self.attempt_rds("db-instance", target, &region);
            let me: &Self = self;
            me.create(
                || {
                    let (rds, class, group, prov) =
                        (&rds, class.clone(), subnet_group.clone(), prov.clone());
                    let snapshot = snapshot.as_str();
                    async move {
                        me.take(region_ref, Bucket::Rds).await;
                        rds.restore_db_instance_from_db_snapshot()
                            .db_instance_identifier(target)
                            .db_snapshot_identifier(snapshot)
                            .db_instance_class(class)
                            .set_db_subnet_group_name(group)
                            .set_tags(Some(rds_tags(&prov)))
                            .customize()
                            .config_override(no_sdk_retries_rds())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err(
                                    "RestoreDBInstanceFromDBSnapshot",
                                    Some(snapshot),
                                    e.into_service_error(),
                                )
                            })?;
                        Ok(())
                    }
                },
                || async {
                    let t = me
                        .db_tags(region_ref, target, false)
                        .await
                        .unwrap_or_default();
                    Ok(t.filter(|t| me.is_ours(t, &job)).map(|_| ()))
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            self.made("db-instance", target, &region);
            let status = self.wait_db(&region, target, false).await?;
            result["status"] = json!(status);
            self.summary.push(format!(
                "new DB instance {target} {status} ({}) from {snapshot} in {region}",
                result["db_instance_class"].as_str().unwrap_or("-")
            ));
            return Ok(result);
        }

        // Aurora: the cluster, then its writer.
        let (engine, engine_version) = self.cluster_snapshot_engine(&region, &p).await?;
        let class = match &s.instance_class {
            Some(c) => c.clone(),
            None => self.source_writer_class(&recorded_region(&p), &source).await.ok_or_else(|| {
                format!(
                    "the writer's DB instance class is not recorded and the source cluster {source} cannot be read: pass --instance-class"
                )
            })?,
        };
        self.call(format!(
            "RestoreDBClusterFromSnapshot DBClusterIdentifier={} SnapshotIdentifier={snapshot} Engine={engine}{} DBSubnetGroupName={} Tags={}",
            s.target_id,
            engine_version
                .as_ref()
                .map(|v| format!(" EngineVersion={v}"))
                .unwrap_or_default(),
            subnet_group.as_deref().unwrap_or("(default)"),
            tag_list(&prov)
        ));
        let wprov = provenance(&self.job_label(), &self.agent, &source, &snapshot, &writer);
        self.call(format!(
            "CreateDBInstance DBInstanceIdentifier={writer} DBClusterIdentifier={} Engine={engine} DBInstanceClass={class} Tags={}",
            s.target_id,
            tag_list(&wprov)
        ));
        let mut result = json!({
            "db_cluster_id": s.target_id,
            "writer_id": writer,
            "region": region,
            "from_snapshot": snapshot,
            "engine": engine,
            "engine_version": engine_version,
            "writer_class": class,
            "db_subnet_group": subnet_group,
            "tags": prov.iter().cloned().collect::<BTreeMap<_, _>>(),
        });
        if self.dry_run {
            return Ok(result);
        }
        let target = s.target_id.as_str();
        let region_ref = region.as_str();
        self.attempt_rds("db-cluster", target, &region);
        let me: &Self = self;
        me.create(
            || {
                let (rds, group, prov, engine, version) = (
                    &rds,
                    subnet_group.clone(),
                    prov.clone(),
                    engine.clone(),
                    engine_version.clone(),
                );
                let snapshot = snapshot.as_str();
                async move {
                    me.take(region_ref, Bucket::Rds).await;
                    rds.restore_db_cluster_from_snapshot()
                        .db_cluster_identifier(target)
                        .snapshot_identifier(snapshot)
                        .engine(engine)
                        .set_engine_version(version)
                        .set_db_subnet_group_name(group)
                        .set_tags(Some(rds_tags(&prov)))
                        .customize()
                        .config_override(no_sdk_retries_rds())
                        .send()
                        .await
                        .map_err(|e| {
                            site.err(
                                "RestoreDBClusterFromSnapshot",
                                Some(snapshot),
                                e.into_service_error(),
                            )
                        })?;
                    Ok(())
                }
            },
            || async {
                let t = me
                    .db_tags(region_ref, target, true)
                    .await
                    .unwrap_or_default();
                Ok(t.filter(|t| me.is_ours(t, &job)).map(|_| ()))
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        self.made("db-cluster", target, &region);
        self.wait_db(&region, target, true).await?;
        let writer_ref = writer.as_str();
        self.attempt_rds("db-instance", writer_ref, &region);
        let me: &Self = self;
        me.create(
            || {
                let (rds, prov, engine, class) =
                    (&rds, wprov.clone(), engine.clone(), class.clone());
                async move {
                    me.take(region_ref, Bucket::Rds).await;
                    rds.create_db_instance()
                        .db_instance_identifier(writer_ref)
                        .db_cluster_identifier(target)
                        .engine(engine)
                        .db_instance_class(class)
                        .set_tags(Some(rds_tags(&prov)))
                        .customize()
                        .config_override(no_sdk_retries_rds())
                        .send()
                        .await
                        .map_err(|e| {
                            site.err("CreateDBInstance", Some(writer_ref), e.into_service_error())
                        })?;
                    Ok(())
                }
            },
            || async {
                let t = me
                    .db_tags(region_ref, writer_ref, false)
                    .await
                    .unwrap_or_default();
                Ok(t.filter(|t| me.is_ours(t, &job)).map(|_| ()))
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        self.made("db-instance", writer_ref, &region);
        self.wait_db(&region, writer_ref, false).await?;
        let status = self.wait_db(&region, target, true).await?;
        result["status"] = json!(status);
        self.summary.push(format!(
            "new Aurora cluster {target} {status} ({engine}) from {snapshot} in {region}, writer {writer} ({class})"
        ));
        Ok(result)
    }

    /// Engine and version of a cluster snapshot (`_GX_ENGINE_`, else the snapshot).
    async fn cluster_snapshot_engine(
        &self,
        region: &str,
        p: &RecoveryPoint,
    ) -> Result<(String, Option<String>), String> {
        let rds = self.session.rds(region);
        let id = p.id();
        self.take(region, Bucket::Rds).await;
        let out = rds
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(&id)
            .send()
            .await
            .map_err(|e| {
                self.site(region)
                    .err(
                        "DescribeDBClusterSnapshots",
                        Some(&id),
                        e.into_service_error(),
                    )
                    .to_string()
            })?;
        let snap = out.db_cluster_snapshots().first();
        let engine = p
            .tags
            .get(tags::DB_ENGINE)
            .cloned()
            .or_else(|| snap.and_then(|s| s.engine()).map(str::to_string))
            .ok_or_else(|| format!("cannot tell the engine of cluster snapshot {id}"))?;
        Ok((
            engine,
            snap.and_then(|s| s.engine_version()).map(str::to_string),
        ))
    }

    /// The class of the source cluster's writer, while the source exists.
    async fn source_writer_class(&mut self, region: &str, cluster: &str) -> Option<String> {
        let rds = self.session.rds(region);
        self.take(region, Bucket::Rds).await;
        let c = rds
            .describe_db_clusters()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .ok()?;
        let writer = c
            .db_clusters()
            .first()?
            .db_cluster_members()
            .iter()
            .find(|m| m.is_cluster_writer() == Some(true))?
            .db_instance_identifier()?
            .to_string();
        self.take(region, Bucket::Rds).await;
        let d = rds
            .describe_db_instances()
            .db_instance_identifier(&writer)
            .send()
            .await
            .ok()?;
        let class = d.db_instances().first()?.db_instance_class()?.to_string();
        self.note(format!(
            "the new writer gets {class}, the class of the source cluster's writer {writer} (choose with --instance-class)"
        ));
        Some(class)
    }

    // ------------------------------------------------------------ cleanup

    fn clean_log(&self, m: &str) {
        self.logs.write(LogFile::Restore, self.log_job, CLEANUP, m);
    }

    /// Removes what the job made: everything in its region(s) tagged with the
    /// job's number (and nothing else), then the RDS resources it recorded.
    async fn cleanup(&mut self) {
        self.deadline = Instant::now() + self.options.wait_timeout.max(Duration::from_secs(60));
        let job = self.job_tag();
        let mut regions: BTreeSet<String> = self.created.iter().map(|m| m.region.clone()).collect();
        let ec2_attempted = self.calls.iter().any(|c| {
            c.starts_with("RunInstances")
                || c.starts_with("RegisterImage")
                || c.starts_with("CreateVolume")
        });
        if ec2_attempted {
            regions.extend(self.region.clone());
        }
        if self.created.is_empty() && self.rds_attempted.is_empty() && !ec2_attempted {
            self.clean_log("Nothing was created; nothing to remove");
            return;
        }
        self.clean_log(&format!(
            "Removing what restore job [{}] made: [{}]",
            self.job,
            self.created
                .iter()
                .map(|m| format!("{} {}", m.kind, m.id))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for region in &regions {
            if ec2_attempted
                || self.created.iter().any(|m| {
                    &m.region == region
                        && ["instance", "volume", "image"].contains(&m.kind.as_str())
                })
            {
                self.cleanup_ec2(region, &job).await;
            }
        }
        // RDS, newest first: the writer before its cluster.
        let rds_made: Vec<Made> = self
            .rds_attempted
            .iter()
            .rev()
            .filter(|m| m.kind.starts_with("db-"))
            .cloned()
            .collect();
        for m in rds_made {
            self.cleanup_db(&m, &job).await;
        }
        if self.left_behind.is_empty() {
            self.clean_log("Everything the job made was removed");
        }
    }

    async fn cleanup_ec2(&mut self, region: &str, job: &str) {
        let ec2 = self.session.ec2(region);
        let tenant = self.session.tenant.name.clone();
        let site = Site {
            tenant: &tenant,
            region,
        };
        // Instances (their DeleteOnTermination volumes go with them).
        let instances = match self.job_instances(region, job).await {
            Ok(i) => i,
            Err(e) => {
                self.left_behind.push(format!(
                    "instances of job {job} in {region}: cannot list them ({e})"
                ));
                vec![]
            }
        };
        for id in &instances {
            self.clean_log(&format!("TerminateInstances [{id}]"));
            self.take(region, Bucket::Mutate).await;
            match ec2.terminate_instances().instance_ids(id).send().await {
                Ok(_) => {
                    let r = self
                        .wait_for(&format!("instance {id} to terminate"), || async {
                            Ok(match self.describe_instance(region, id).await {
                                Ok(Some(d)) if d.state == "terminated" => Poll::Done(()),
                                Ok(None) => Poll::Done(()),
                                Ok(Some(d)) => Poll::Pending(d.state),
                                Err(e) => Poll::Pending(e),
                            })
                        })
                        .await;
                    match r {
                        Ok(()) => self.removed.push(id.clone()),
                        Err(e) => self.left_behind.push(format!("instance {id}: {e}")),
                    }
                }
                Err(e) => self.left_behind.push(format!(
                    "instance {id}: {}",
                    site.err("TerminateInstances", Some(id), e.into_service_error())
                )),
            }
        }
        // Volumes tagged with the job that are still there.
        self.take(region, Bucket::Describe).await;
        let volumes = ec2
            .describe_volumes()
            .set_filters(Some(self.job_filters(job)))
            .send()
            .await;
        match volumes {
            Ok(out) => {
                for v in out.volumes() {
                    let id = v.volume_id().unwrap_or_default().to_string();
                    if !has_job_tag(
                        v.tags().iter().map(|t| (t.key(), t.value())),
                        job,
                        &self.agent,
                    ) {
                        continue;
                    }
                    if let Err(e) = self.remove_volume(region, v).await {
                        self.left_behind.push(format!("volume {id}: {e}"));
                    } else {
                        self.removed.push(id);
                    }
                }
            }
            Err(e) => self.left_behind.push(format!(
                "volumes of job {job} in {region}: cannot list them ({})",
                site.err("DescribeVolumes", None, e.into_service_error())
            )),
        }
        // Images tagged with the job.
        self.take(region, Bucket::Describe).await;
        match ec2
            .describe_images()
            .owners("self")
            .set_filters(Some(self.job_filters(job)))
            .send()
            .await
        {
            Ok(out) => {
                for i in out.images() {
                    let id = i.image_id().unwrap_or_default().to_string();
                    self.clean_log(&format!("DeregisterImage [{id}]"));
                    self.take(region, Bucket::DeregisterImage).await;
                    match ec2.deregister_image().image_id(&id).send().await {
                        Ok(_) => self.removed.push(id),
                        Err(e) => self.left_behind.push(format!(
                            "image {id}: {}",
                            site.err("DeregisterImage", Some(&id), e.into_service_error())
                        )),
                    }
                }
            }
            Err(e) => self.left_behind.push(format!(
                "images of job {job} in {region}: cannot list them ({})",
                site.err("DescribeImages", None, e.into_service_error())
            )),
        }
        // What the job made but did not find by its tag: it cannot delete it.
        let made: Vec<Made> = self
            .created
            .iter()
            .filter(|m| m.region == region && !self.removed.contains(&m.id))
            .cloned()
            .collect();
        for m in made {
            let still = match m.kind.as_str() {
                "instance" => self
                    .describe_instance(region, &m.id)
                    .await
                    .map(|d| d.is_some_and(|d| d.state != "terminated")),
                "volume" => {
                    self.take(region, Bucket::Describe).await;
                    match ec2.describe_volumes().volume_ids(&m.id).send().await {
                        Ok(o) => Ok(!o.volumes().is_empty()),
                        Err(e) => {
                            let e =
                                site.err("DescribeVolumes", Some(&m.id), e.into_service_error());
                            if e.code.contains("NotFound") {
                                Ok(false)
                            } else {
                                Err(e.to_string())
                            }
                        }
                    }
                }
                "image" => {
                    self.take(region, Bucket::Describe).await;
                    match ec2.describe_images().image_ids(&m.id).send().await {
                        Ok(o) => Ok(!o.images().is_empty()),
                        Err(e) => {
                            let e = site.err("DescribeImages", Some(&m.id), e.into_service_error());
                            if e.code.contains("NotFound") {
                                Ok(false)
                            } else {
                                Err(e.to_string())
                            }
                        }
                    }
                }
                _ => Ok(false),
            };
            match still {
                Ok(false) => {
                    // Gone with its instance (DeleteOnTermination).
                    self.removed.push(m.id.clone());
                }
                Ok(true) if !self.left_behind.iter().any(|l| l.contains(&m.id)) => {
                    self.left_behind.push(format!(
                        "{} {}: it does not carry {}={job}, and rolesnap deletes only what it tagged",
                        m.kind,
                        m.id,
                        tags::BACKUP
                    ));
                }
                Ok(true) => {}
                Err(e) => self.left_behind.push(format!("{} {}: {e}", m.kind, m.id)),
            }
        }
    }

    async fn remove_volume(
        &self,
        region: &str,
        v: &aws_sdk_ec2::types::Volume,
    ) -> Result<(), String> {
        let ec2 = self.session.ec2(region);
        let site = self.site(region);
        let id = v.volume_id().unwrap_or_default();
        for a in v.attachments() {
            let (Some(instance), Some(device)) = (a.instance_id(), a.device()) else {
                continue;
            };
            self.clean_log(&format!(
                "DetachVolume [{id}] from [{instance}] at [{device}]"
            ));
            self.take(region, Bucket::Mutate).await;
            ec2.detach_volume()
                .volume_id(id)
                .instance_id(instance)
                .device(device)
                .send()
                .await
                .map_err(|e| {
                    site.err("DetachVolume", Some(id), e.into_service_error())
                        .to_string()
                })?;
        }
        if !v.attachments().is_empty() {
            self.wait_for(&format!("volume {id} to be detached"), || async {
                self.take(region, Bucket::Describe).await;
                let out = ec2
                    .describe_volumes()
                    .volume_ids(id)
                    .send()
                    .await
                    .map_err(|e| site.err("DescribeVolumes", Some(id), e.into_service_error()))?;
                Ok(
                    match out
                        .volumes()
                        .first()
                        .and_then(|x| x.state())
                        .map(|s| s.as_str())
                    {
                        Some("available") | None => Poll::Done(()),
                        Some(s) => Poll::Pending(s.to_string()),
                    },
                )
            })
            .await?;
        }
        self.clean_log(&format!("DeleteVolume [{id}]"));
        self.take(region, Bucket::Mutate).await;
        ec2.delete_volume()
            .volume_id(id)
            .send()
            .await
            .map_err(|e| {
                site.err("DeleteVolume", Some(id), e.into_service_error())
                    .to_string()
            })?;
        Ok(())
    }

    async fn cleanup_db(&mut self, m: &Made, job: &str) {
        let cluster = m.kind == "db-cluster";
        let region = m.region.as_str();
        match self.db_tags(region, &m.id, cluster).await {
            Ok(None) => {
                self.clean_log(&format!("{} [{}] does not exist", m.kind, m.id));
                return;
            }
            Ok(Some(t)) if !self.is_ours(&t, job) => {
                self.left_behind.push(format!(
                    "{} {}: it does not carry {}={job}, and rolesnap deletes only what it tagged",
                    m.kind,
                    m.id,
                    tags::BACKUP
                ));
                return;
            }
            Ok(Some(_)) => {}
            Err(e) => {
                self.left_behind.push(format!("{} {}: {e}", m.kind, m.id));
                return;
            }
        }
        let rds = self.session.rds(region);
        let tenant = self.session.tenant.name.clone();
        let site = Site {
            tenant: &tenant,
            region,
        };
        self.clean_log(&format!(
            "{} [{}] (no final snapshot)",
            if cluster {
                "DeleteDBCluster"
            } else {
                "DeleteDBInstance"
            },
            m.id
        ));
        self.take(region, Bucket::Rds).await;
        let r = if cluster {
            rds.delete_db_cluster()
                .db_cluster_identifier(&m.id)
                .skip_final_snapshot(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| site.err("DeleteDBCluster", Some(&m.id), e.into_service_error()))
        } else {
            rds.delete_db_instance()
                .db_instance_identifier(&m.id)
                .skip_final_snapshot(true)
                .delete_automated_backups(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| site.err("DeleteDBInstance", Some(&m.id), e.into_service_error()))
        };
        if let Err(e) = r {
            self.left_behind.push(format!("{} {}: {e}", m.kind, m.id));
            return;
        }
        // A cluster can only go once its instances are gone: wait for them.
        let gone = self
            .wait_for(&format!("{} {} to be deleted", m.kind, m.id), || async {
                Ok(match self.db_tags(region, &m.id, cluster).await {
                    Ok(None) => Poll::Done(()),
                    Ok(Some(_)) => Poll::Pending("deleting".into()),
                    Err(e) => Poll::Pending(e),
                })
            })
            .await;
        match gone {
            Ok(()) => self.removed.push(m.id.clone()),
            Err(e) => self.left_behind.push(format!("{} {}: {e}", m.kind, m.id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{PointState, Snap};

    fn point(kind: PointKind, region: &str, job: u64, secs: i64, source: &str) -> RecoveryPoint {
        RecoveryPoint {
            kind,
            tenant: "alpha".into(),
            account: "222222222222".into(),
            region: region.into(),
            job: Some(job),
            agent: String::new(),
            plan: Some("p".into()),
            source: source.into(),
            created: DateTime::from_timestamp(secs, 0).unwrap(),
            state: PointState::Completed,
            resource_id: (kind != PointKind::SnapshotSet).then(|| format!("r-{job}")),
            arn: None,
            snapshots: if kind == PointKind::SnapshotSet {
                vec![Snap {
                    id: format!("snap-{job}"),
                    volume_id: "vol-1".into(),
                    size_gib: 8,
                    state: "completed".into(),
                    encrypted: false,
                    kms_key_id: None,
                    tags: BTreeMap::new(),
                }]
            } else {
                vec![]
            },
            size_gib: 8,
            encrypted: false,
            kms_key_id: None,
            tags: BTreeMap::new(),
        }
    }

    fn src(id: &'static str) -> impl Fn(&RecoveryPoint) -> bool {
        move |p: &RecoveryPoint| p.source == id
    }

    #[test]
    fn the_newest_completed_point_of_the_source_region_wins_by_default() {
        let mut copy = point(PointKind::SnapshotSet, "us-west-2", 9, 500, "i-1");
        copy.tags
            .insert(tags::COPY_OF.into(), "us-east-1/snap-3".into());
        let mut pending = point(PointKind::SnapshotSet, "us-east-1", 8, 400, "i-1");
        pending.state = PointState::Pending;
        let mut restored = point(PointKind::Ami, "us-east-1", 7, 450, "i-1");
        restored.tags.insert(RESTORED_FROM.into(), "snap-3".into());
        let points = vec![
            point(PointKind::SnapshotSet, "us-east-1", 1, 100, "i-1"),
            point(PointKind::SnapshotSet, "us-east-1", 3, 300, "i-1"),
            point(PointKind::SnapshotSet, "us-east-1", 4, 350, "i-2"),
            copy,
            pending,
            restored,
        ];
        let w = Which::default();
        assert_eq!(
            choose_point(&points, &src("i-1"), &w, "x").unwrap().job,
            Some(3)
        );
        // A job, or a time.
        let w = Which {
            agent: None,
            job: Some(1),
            ..Default::default()
        };
        assert_eq!(
            choose_point(&points, &src("i-1"), &w, "x").unwrap().job,
            Some(1)
        );
        let w = Which {
            at: Some(DateTime::from_timestamp(299, 0).unwrap()),
            ..Default::default()
        };
        assert_eq!(
            choose_point(&points, &src("i-1"), &w, "x").unwrap().job,
            Some(1)
        );
        // The copy region: only its copies.
        let w = Which {
            region: Some("us-west-2".into()),
            ..Default::default()
        };
        assert_eq!(
            choose_point(&points, &src("i-1"), &w, "x").unwrap().job,
            Some(9)
        );
        // A pending point is not restorable; the error lists what exists.
        let w = Which {
            agent: None,
            job: Some(8),
            ..Default::default()
        };
        let e = choose_point(&points, &src("i-1"), &w, "instance i-1").unwrap_err();
        assert!(e.contains("from job 8") && e.contains("Pending"), "{e}");
        assert!(choose_point(&points, &src("i-9"), &Which::default(), "x").is_err());
    }

    #[test]
    fn only_copies_point_at_their_region() {
        let mut copy = point(PointKind::SnapshotSet, "us-west-2", 9, 500, "i-1");
        copy.tags
            .insert(tags::COPY_OF.into(), "us-east-1/snap-3".into());
        let e = choose_point(&[copy], &src("i-1"), &Which::default(), "instance i-1").unwrap_err();
        assert!(e.contains("us-west-2") && e.contains("--region"), "{e}");
    }

    #[test]
    fn devices_in_use_are_refused_and_free_ones_chosen() {
        let in_use = vec![
            ("/dev/xvda".to_string(), "vol-root".to_string()),
            ("/dev/sdf".to_string(), "vol-data".to_string()),
        ];
        let e = choose_device(Some("/dev/sdf"), None, &in_use, "i-1").unwrap_err();
        assert!(e.starts_with("refused") && e.contains("vol-data"), "{e}");
        // xvdf is the same device as sdf to the guest.
        assert!(choose_device(Some("/dev/xvdf"), None, &in_use, "i-1").is_err());
        assert_eq!(
            choose_device(Some("/dev/sdg"), None, &in_use, "i-1").unwrap(),
            "/dev/sdg"
        );
        // Default: the recorded device when free, else the first free one.
        assert_eq!(
            choose_device(None, Some("/dev/sdh"), &in_use, "i-1").unwrap(),
            "/dev/sdh"
        );
        assert_eq!(
            choose_device(None, Some("/dev/sdf"), &in_use, "i-1").unwrap(),
            "/dev/sdg"
        );
        // Never the root slot.
        assert_eq!(
            choose_device(None, Some("/dev/xvda"), &[], "i-1").unwrap(),
            "/dev/sdf"
        );
        assert!(choose_device(Some("sdf"), None, &[], "i-1").is_err());
        assert!(same_device("/dev/sda1", "/dev/xvda"));
        assert!(!same_device("/dev/sdf", "/dev/sdg"));
    }

    #[test]
    fn each_snapshot_goes_back_to_its_device() {
        let devices = tags::parse_devices("vol-1=/dev/xvda vol-2=/dev/sdf");
        let m = map_devices(
            &devices,
            &[
                ("snap-b".into(), "vol-2".into()),
                ("snap-a".into(), "vol-1".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            m,
            vec![
                ("snap-b".into(), "vol-2".into(), "/dev/sdf".into()),
                ("snap-a".into(), "vol-1".into(), "/dev/xvda".into())
            ]
        );
        let e = map_devices(&devices, &[("snap-c".into(), "vol-ffffffff".into())]).unwrap_err();
        assert!(e.contains("vol-ffffffff"), "{e}");
        assert!(map_devices(
            &devices,
            &[("s1".into(), "vol-1".into()), ("s2".into(), "vol-1".into())]
        )
        .is_err());
    }

    #[test]
    fn tags_of_restored_resources() {
        let p = provenance("1005", "", "i-1", "snap-a+snap-b", "web-restored-1005");
        assert_eq!(p[0], (tags::BACKUP.to_string(), "1005".to_string()));
        assert!(p.contains(&(RESTORED_FROM.to_string(), "snap-a+snap-b".to_string())));
        let long = provenance("1", "", "i", &"s".repeat(400), "n");
        assert_eq!(long[2].1.len(), 256);
        let src: BTreeMap<String, String> = [
            ("Name", "web"),
            ("Backup", "nightly"),
            ("aws:cloudformation:stack-name", "x"),
            ("_GX_BACKUP_", "1"),
            ("CV_Retain_Snap", "y"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            carried_tags(&src),
            vec![("Backup".to_string(), "nightly".to_string())]
        );
        let many: BTreeMap<String, String> =
            (0..80).map(|i| (format!("k{i:02}"), "v".into())).collect();
        assert_eq!(carried_tags(&many).len(), MAX_TAGS - 4);
    }

    #[test]
    fn architecture_follows_the_instance_family() {
        assert_eq!(architecture_for("t3.micro"), "x86_64");
        assert_eq!(architecture_for("t4g.small"), "arm64");
        assert_eq!(architecture_for("c6gn.large"), "arm64");
        assert_eq!(architecture_for("m7gd.xlarge"), "arm64");
        assert_eq!(architecture_for("g5.xlarge"), "x86_64");
        assert_eq!(architecture_for("m5a.large"), "x86_64");
    }

    #[test]
    fn the_recorded_region_comes_from_the_az_or_the_copy() {
        let mut p = point(PointKind::SnapshotSet, "us-west-2", 1, 1, "i-1");
        assert_eq!(recorded_region(&p), "us-west-2");
        p.tags
            .insert(tags::COPY_OF.into(), "us-east-1/snap-1".into());
        assert_eq!(recorded_region(&p), "us-east-1");
        p.tags.insert(tags::AZ.into(), "eu-west-1b".into());
        assert_eq!(recorded_region(&p), "eu-west-1");
    }
}
