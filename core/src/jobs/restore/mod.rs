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
//! device, which snapshot goes where) are pure functions tested beside them.
//!
//! Here: the public types and [`run`], the job's lifecycle. The pure
//! decisions are in `choose`, the job context in `context`, finding the
//! recovery point in `point`, AWS lookups in `lookup`, one file per target
//! (`instance`, `volume`, `rds`), the removal of what a failed restore made in
//! `cleanup`, and [`RestoreError`] in `error`.

mod choose;
mod cleanup;
mod context;
mod drill;
mod error;
mod instance;
pub mod leftovers;
mod lookup;
mod point;
mod rds;
mod vault;
mod volume;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::aws::credentials::{AdminSession, TenantSession};
use crate::aws::pace::Pacer;
use crate::catalog::{PointKind, RecoveryPoint};
use crate::config::{Plan, Tenant};
use crate::jobs::work::Lifecycle;
use crate::store::ledger::{Item, ItemKind, ItemStatus, JobStatus, JobType, Ledger, LedgerError};
use crate::store::logs::{LogFile, Logs};

pub use choose::{
    architecture_for, carried_tags, choose_device, choose_point, map_devices, provenance,
    recorded_region, same_device, selected_on,
};
pub use error::RestoreError;

use cleanup::Cleanup;
use context::Context;

/// On everything a restore makes: the recovery point it came from.
pub use crate::tags::RESTORED_FROM;
/// The identifiers of the databases restore drills make (the tenant policy
/// lets the role delete only databases so named).
pub const DRILL_DB_PREFIX: &str = "rolesnap-drill-";
/// vsrst.log component of restore jobs.
pub const COMPONENT: &str = "CVRestore::Run";

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
    /// Restore from this vault's copy (`--from-vault`): shared back to the
    /// tenant and copied into its account first.
    pub vault: Option<String>,
    /// The tenant's KMS key for that copy (`--kms-key-id`; RDS needs one).
    pub kms_key_id: Option<String>,
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
    /// Copy all of the source instance's own tags, also those the plan
    /// selects on (by default those are left off, so that the next backup
    /// does not take the restored instance for production).
    pub keep_all_tags: bool,
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
        self.item_kind().as_str()
    }
    pub fn item_kind(&self) -> ItemKind {
        match self {
            Target::Instance(_) => ItemKind::Instance,
            Target::Volume(_) => ItemKind::Volume,
            Target::Db(d) if d.cluster => ItemKind::DbCluster,
            Target::Db(_) => ItemKind::DbInstance,
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
    /// The accounts file's vaults (`Which::vault` names one).
    pub vaults: &'a [crate::config::Vault],
    pub admin: &'a AdminSession,
    pub logs: &'a Logs,
    /// Where the job is recorded; `None` (or a dry run) records nothing.
    pub ledger: Option<&'a Ledger>,
    pub pacer: Pacer,
    pub which: Which,
    pub target: Target,
    pub options: Options,
    /// A restore drill: everything it makes carries `CV_Integrity_Snap`, it
    /// waits until the restored resource is healthy, and removes all it made
    /// whatever the outcome (a Drill job in the ledger).
    pub drill: bool,
    /// A database drill: healthy only once a TCP connect from this node to
    /// the restored endpoint succeeds (`--connect`, `[drill] connect`).
    pub connect: bool,
    /// An instance drill: a shell command run in the instance through SSM
    /// Run Command once its status checks pass; healthy only if it exits 0
    /// (`--check`, `[drill] check`).
    pub check: Option<String>,
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
    /// The restore was refused before anything was made (a device in use, a
    /// target that exists, a request it cannot carry out as given).
    pub refused: bool,
    pub start: i64,
    pub end: i64,
    /// A drill's result: healthy or not, the RTO (seconds from the start to
    /// healthy), and why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillResult>,
}

/// What a restore drill proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillResult {
    pub healthy: bool,
    /// Seconds from the job's start until the restored resource was healthy.
    pub rto_seconds: Option<i64>,
    /// How health was decided (e.g. `running; system and instance status checks ok`).
    pub checks: Vec<String>,
    pub reason: Option<String>,
    /// The check command run in the instance (`[drill] check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckOutcome>,
}

/// A drill's check command: what SSM Run Command reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    pub command: String,
    /// SSM's command id.
    pub command_id: Option<String>,
    /// SSM's invocation status (`Success`, `Failed`, `TimedOut`, …).
    pub status: String,
    /// The command's exit code (SSM's ResponseCode; -1 when it has none).
    pub exit_code: Option<i32>,
    /// Standard output then standard error, at most [`CHECK_OUTPUT_CHARS`].
    pub output: String,
}

/// How much of a check command's output a drill keeps.
pub const CHECK_OUTPUT_CHARS: usize = 2000;

// ---------------------------------------------------------------- the job

/// One restore job: its context, what it found and what it made.
struct Restorer<'a> {
    cx: Context<'a>,
    which: Which,
    region: Option<String>,
    point: Option<PointSummary>,
    cleanup: Cleanup,
    summary: Vec<String>,
    /// Problems that did not stop the restore.
    warnings: Vec<String>,
    /// `--from-vault`: the vault, reached.
    vault: Option<vault::VaultSide>,
    /// A restore drill (see [`Request::drill`]) and what it found.
    drill: bool,
    /// See [`Request::connect`].
    connect: bool,
    /// See [`Request::check`], and what it gave.
    check: Option<String>,
    checked: Option<CheckOutcome>,
    drilled: Option<DrillResult>,
    /// Unix time the job started (a drill's RTO counts from it).
    started: i64,
    /// Copies made in the tenant from the vault, deleted at the end.
    temporaries: Vec<vault::Temporary>,
    kms_key: Option<String>,
    /// The job ended on a refusal, before anything was made.
    refused: bool,
}

/// Runs one restore job.
///
/// # Errors
/// Only when the ledger cannot be written; AWS failures end up in the report.
pub async fn run(req: Request<'_>) -> Result<Report, LedgerError> {
    let dry_run = req.options.dry_run;
    let life = Lifecycle::start(
        req.ledger.filter(|_| !dry_run),
        if req.drill {
            JobType::Drill
        } else {
            JobType::Restore
        },
        &req.plan.name,
        std::slice::from_ref(&req.tenant.name),
    )?;
    let (number, agent) = (life.number, life.agent.clone());
    let log_job = (!dry_run).then_some(number);
    let start = Utc::now().timestamp();
    log_started(&req, &life);
    let session = TenantSession::new(req.admin, req.tenant, log_job);
    let mut r = Restorer {
        cx: Context {
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
            deadline: Instant::now() + req.options.wait_timeout,
            calls: vec![],
            notes: vec![],
        },
        which: req.which.clone(),
        region: req.which.region.clone(),
        point: None,
        cleanup: Cleanup::default(),
        summary: vec![],
        warnings: vec![],
        vault: None,
        temporaries: vec![],
        kms_key: req.which.kms_key_id.clone(),
        drill: req.drill,
        connect: req.connect,
        check: req.check.clone(),
        checked: None,
        drilled: None,
        started: start,
        refused: false,
    };
    let outcome = r.connect_and_restore(&req).await;
    let (status, restored, error) = r.conclude(&req.target, outcome).await;
    let end = Utc::now().timestamp();
    if let Some(l) = req.ledger.filter(|_| life.recorded()) {
        r.record(&req, l, life, status, &restored, error.as_deref())?;
    }
    Ok(r.report(&req, status, restored, error, start, end))
}

/// "Restore job [n] started: …", and cvd.log's StartJob line.
fn log_started(req: &Request<'_>, life: &Lifecycle) {
    let dry_run = req.options.dry_run;
    let (number, log_job) = (life.number, life.log_job());
    req.logs.write(
        LogFile::Restore,
        log_job,
        COMPONENT,
        &format!(
            "Restore job [{number}] started: {} [{}] of tenant [{}], plan [{}]{}{}{}{}",
            req.target.kind(),
            req.target.source(),
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
        life.announce(req.logs, &req.plan.name);
    }
}

impl Restorer<'_> {
    /// Assumes the tenant's role, then restores.
    async fn connect_and_restore(&mut self, req: &Request<'_>) -> Result<Value, RestoreError> {
        let account = self.cx.session.connect(req.admin, req.logs).await?;
        self.cx.account = account;
        self.cx.log(&format!(
            "Assumed role [{}] for tenant [{}] (account {})",
            req.tenant.role_arn, req.tenant.name, self.cx.account
        ));
        if let Some(name) = &req.which.vault {
            let Some(v) = req.vaults.iter().find(|v| &v.name == name) else {
                return Err(RestoreError::Point(format!(
                    "vault `{name}` is not in the accounts file (declared: {})",
                    req.vaults
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            let session = TenantSession::new(req.admin, &v.role, self.cx.log_job);
            let account = session.connect(req.admin, req.logs).await?;
            self.cx.log(&format!(
                "Assumed role [{}] for vault [{}] (account {account})",
                v.role.role_arn, v.name
            ));
            self.vault = Some(vault::VaultSide {
                vault: v.clone(),
                session,
                account,
            });
        }
        if self.drill && !self.cx.dry_run {
            self.remove_drill_leftovers().await;
        }
        let restored = match &req.target {
            Target::Instance(s) => self.restore_instance(s).await,
            Target::Volume(s) => self.restore_volume(s).await,
            Target::Db(s) => self.restore_db(s).await,
        }?;
        if self.drill && !self.cx.dry_run {
            self.check_health(&req.target, &restored).await?;
        }
        Ok(restored)
    }

    /// The job's status, result and error; on failure, removes what it made
    /// first. Logs the job's last line.
    async fn conclude(
        &mut self,
        target: &Target,
        outcome: Result<Value, RestoreError>,
    ) -> (JobStatus, Value, Option<String>) {
        let (kind, source) = (target.kind(), target.source());
        // The restore's own copies of a vault copy: made ready, used, gone.
        self.remove_temporaries().await;
        let (status, restored, error) = match outcome {
            Ok(v) => {
                // A drill removes what it made once it has proved it healthy.
                if self.drill && !self.cx.dry_run {
                    self.cleanup.run(&mut self.cx, self.region.as_deref()).await;
                    for l in self.cleanup.left_behind() {
                        self.warnings
                            .push(format!("the drill could not remove {l}"));
                    }
                }
                let status = if self.warnings.is_empty() {
                    JobStatus::Completed
                } else {
                    JobStatus::CompletedWithErrors
                };
                (status, v, self.warnings.first().cloned())
            }
            Err(e) => {
                self.refused = e.refused();
                if self.drill {
                    let d = self.drilled.get_or_insert(DrillResult {
                        healthy: false,
                        rto_seconds: None,
                        checks: vec![],
                        reason: None,
                        check: self.checked.clone(),
                    });
                    d.reason = Some(e.to_string());
                }
                self.cx
                    .log(&format!("Restore of {kind} [{source}] failed: {e}"));
                if !self.cx.dry_run {
                    self.cleanup.run(&mut self.cx, self.region.as_deref()).await;
                }
                (JobStatus::Failed, Value::Null, Some(e.to_string()))
            }
        };
        let (removed, left_behind) = (self.cleanup.removed(), self.cleanup.left_behind());
        self.cx.log(&format!(
            "Job [{}] {status}: {kind} [{source}]{}{}",
            self.cx.job,
            if removed.is_empty() {
                String::new()
            } else {
                format!(", removed [{}]", removed.join(", "))
            },
            if left_behind.is_empty() {
                String::new()
            } else {
                format!(", could not remove [{}]", left_behind.join("; "))
            }
        ));
        (status, restored, error)
    }

    /// The job's item, events and end in the ledger.
    fn record(
        &self,
        req: &Request<'_>,
        l: &Ledger,
        life: Lifecycle,
        status: JobStatus,
        restored: &Value,
        error: Option<&str>,
    ) -> Result<(), LedgerError> {
        let number = self.cx.job;
        let (kind, source) = (req.target.kind(), req.target.source());
        life.ended(req.logs, status);
        let item = Item {
            tenant: req.tenant.name.clone(),
            account: self.cx.account.clone(),
            region: self.region.clone().unwrap_or_else(|| "-".into()),
            kind: req.target.item_kind(),
            source_id: source.to_string(),
            status: match status {
                JobStatus::Failed => ItemStatus::Failed,
                _ => ItemStatus::Completed,
            },
            created: self.cleanup.still_there(),
            size_gib: 0,
            error: error.map(str::to_string),
            detail: json!({
                "recovery_point": self.point,
                "drill": self.drilled,
                "restored": restored,
                "removed": self.cleanup.removed(),
                "left_behind": self.cleanup.left_behind(),
                "notes": self.cx.notes,
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
            &format!(
                "{} job ({number}) {status}: {kind} {source}",
                if self.drill { "Drill" } else { "Restore" }
            ),
        )?;
        if let Some(e) = error {
            l.event(number, "Error", e)?;
        }
        for lb in self.cleanup.left_behind() {
            l.event(number, "Error", &format!("Could not remove: {lb}"))?;
        }
        life.finish(l, status, 0, error)?;
        Ok(())
    }

    fn report(
        &self,
        req: &Request<'_>,
        status: JobStatus,
        restored: Value,
        error: Option<String>,
        start: i64,
        end: i64,
    ) -> Report {
        Report {
            job: self.cx.job,
            job_type: if self.drill {
                JobType::Drill
            } else {
                JobType::Restore
            },
            plan: req.plan.name.clone(),
            tenant: req.tenant.name.clone(),
            account: self.cx.account.clone(),
            status,
            dry_run: self.cx.dry_run,
            kind: req.target.kind().to_string(),
            source: req.target.source().to_string(),
            region: self.region.clone(),
            recovery_point: self.point.clone(),
            restored,
            created: self.cleanup.created().to_vec(),
            removed: self.cleanup.removed().to_vec(),
            left_behind: self.cleanup.left_behind().to_vec(),
            calls: self.cx.calls.clone(),
            notes: self.cx.notes.clone(),
            summary: self.summary.clone(),
            error,
            refused: self.refused,
            start,
            end,
            drill: self.drilled.clone(),
        }
    }
}
