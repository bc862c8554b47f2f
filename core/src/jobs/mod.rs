//! The jobs. [`run`] runs a Snap Backup, Snap Copy or Data Aging job across
//! every tenant and region of a plan: connect, discover, do each tenant ×
//! region concurrently ([`backup`], [`copy`], [`prune`]), and decide the job's
//! status. One tenant or region failing never stops the others. [`restore`]
//! is a job of its own; [`work`] is the context every job shares.

pub mod backup;
pub mod copy;
pub mod duplicates;
pub mod prune;
pub mod restore;
pub mod vault;
pub mod work;

use std::sync::{Arc, Mutex};

use futures::future::join_all;
use serde::Serialize;

use chrono::{DateTime, Utc};

use crate::aws::credentials::{connect_tenants, AdminSession, Connected};
use crate::aws::pace::Pacer;
use crate::config::{Plan, Tenant, Vault};
use crate::discovery::{groups_for, regions_for, Resource};
use crate::jobs::backup::{backup_region, RegionWork};
use crate::jobs::copy::copy_tenant;
use crate::jobs::prune::{prune_tenant, Beside, Night, NightLink};
use crate::jobs::work::{log_job, tally, Counted, Job, JobOptions, Lifecycle, Outcomes};
use crate::store::ledger::{Item, ItemKind, ItemStatus, JobStatus, JobType, Ledger, LedgerError};
use crate::store::logs::{LogFile, Logs};

/// Narrowing an on-demand backup to part of the plan.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub region: Option<String>,
    pub instances: Vec<String>,
    pub dbs: Vec<String>,
}

impl Filter {
    fn keeps(&self, r: &Resource) -> bool {
        if self.instances.is_empty() && self.dbs.is_empty() {
            return true;
        }
        match r {
            Resource::Instance(i) => self.instances.contains(&i.id),
            Resource::DbInstance(d) => self.dbs.contains(&d.id),
            Resource::DbCluster(c) => self.dbs.contains(&c.id),
        }
    }
}

/// Which job to run.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Snap Backup: snapshot what the plan selects.
    Backup,
    /// Snap Copy: copy the plan's points to its copy regions.
    Copy,
    /// Vault Copy: copy the plan's points into its vault accounts.
    VaultCopy,
    /// Data Aging: delete expired points as of `now`.
    Prune { now: DateTime<Utc> },
}

impl Kind {
    pub fn job_type(self) -> JobType {
        match self {
            Kind::Backup => JobType::SnapBackup,
            Kind::Copy => JobType::SnapCopy,
            Kind::VaultCopy => JobType::VaultCopy,
            Kind::Prune { .. } => JobType::DataAging,
        }
    }
    fn component(self) -> &'static str {
        match self {
            Kind::Backup => "CVSnapBackup::Run",
            Kind::Copy => "CVSnapCopy::Run",
            Kind::VaultCopy => "CVVaultCopy::Run",
            Kind::Prune { .. } => "CVDataAging::Run",
        }
    }
}

/// Item statuses that are not problems.
pub fn item_ok(status: ItemStatus) -> bool {
    status.ok()
}

pub struct Request<'a> {
    pub kind: Kind,
    pub plan: &'a Plan,
    pub tenants: &'a [Tenant],
    /// The accounts file's vaults (a plan's `[[vault]]` rules name them).
    pub vaults: &'a [Vault],
    /// Every tenant of the accounts file (not only this run's, e.g. a
    /// shard's): a vault copy of an account among them is never an orphan.
    pub known_tenants: &'a [Tenant],
    pub admin: &'a AdminSession,
    pub filter: Filter,
    pub options: JobOptions,
    pub logs: &'a Logs,
    /// `None` for a dry run: nothing is recorded.
    pub ledger: Option<Arc<Mutex<Ledger>>>,
    pub pacer: Pacer,
    /// A nightly run's link between its jobs (see [`run_night`]): a prune
    /// is told when the backup and copy jobs beside it end and what they
    /// complete (see [`crate::jobs::prune::prune_tenant`]; a dropped sender
    /// counts as both ended); a backup or copy job reports each point or
    /// copy it completes. `None`: nothing runs beside.
    pub beside: Option<NightLink>,
    /// Told how many more resources or copies the job works on; the total
    /// is the sum: a backup says each region's selected resources as that
    /// region's discovery ends, a copy or vault copy job the points it
    /// queues for each destination region as it queues them.
    pub on_total: Arc<dyn Fn(usize) + Send + Sync>,
    pub on_done: Arc<dyn Fn(&Item) + Send + Sync>,
    /// Called when a snapshot, image or copy has been started and is waited
    /// for (what is in flight, for progress).
    pub on_started: Arc<dyn Fn(&str) + Send + Sync>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub job: u64,
    /// The agent (ledger) id of the job: job numbers are unique per agent.
    pub agent: String,
    pub job_type: JobType,
    pub plan: String,
    pub status: JobStatus,
    pub dry_run: bool,
    pub start: i64,
    pub end: i64,
    pub size_gib: i64,
    /// Outcomes per tenant × region × status, the items' and those counted
    /// without an item (the points a prune keeps).
    pub summary: Vec<Summary>,
    /// Log lines that could not be written while the job ran (a full disk,
    /// a log that cannot rotate); more than 0 makes a Completed job
    /// "Completed w/ one or more errors".
    pub lost_log_lines: u64,
    /// One per resource or point, except the points a prune (not a dry run)
    /// keeps: those are only counted in `summary`.
    pub items: Items,
}

/// A job's items. A job with a ledger has written them there as they ended
/// and holds only its problems; the report reads the rest back when it is
/// written out (at 10 000 instances the items would be a large part of the
/// job's memory). A dry run has no ledger and holds all of them.
#[derive(Clone)]
pub enum Items {
    Held(Vec<Item>),
    InLedger {
        ledger: Arc<Mutex<Ledger>>,
        job: u64,
        /// The items that are not [`item_ok`].
        problems: Vec<Item>,
    },
}

impl Items {
    /// The items in memory: all of a dry run's, the problems of a job.
    pub fn held(&self) -> &[Item] {
        match self {
            Items::Held(v) => v,
            Items::InLedger { problems, .. } => problems,
        }
    }
}

impl std::fmt::Debug for Items {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Items::Held(v) => f.debug_tuple("Held").field(v).finish(),
            Items::InLedger { job, problems, .. } => f
                .debug_struct("InLedger")
                .field("job", job)
                .field("problems", problems)
                .finish(),
        }
    }
}

/// Written as a list of items; those in the ledger are read one row at a time.
impl Serialize for Items {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        match self {
            Items::Held(v) => v.serialize(s),
            Items::InLedger { ledger, job, .. } => {
                let mut seq = s.serialize_seq(None)?;
                let mut failed = None;
                let l = ledger.lock().unwrap_or_else(|p| p.into_inner());
                l.each_item(*job, |item| match seq.serialize_element(&item) {
                    Ok(()) => true,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                })
                .map_err(S::Error::custom)?;
                if let Some(e) = failed {
                    return Err(e);
                }
                seq.end()
            }
        }
    }
}

/// How many outcomes of one status a job had in one tenant × region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub tenant: String,
    pub region: String,
    pub status: ItemStatus,
    pub count: usize,
    pub size_gib: i64,
}

/// Per tenant × region × status: `items` and the outcomes `counted` without one.
pub fn summarize(items: &[Item], counted: &Counted) -> Vec<Summary> {
    let mut by: Counted = counted.clone();
    for i in items {
        tally(&mut by, &i.tenant, &i.region, i.status, 1, i.size_gib);
    }
    by.into_iter()
        .map(|((tenant, region, status), (count, size_gib))| Summary {
            tenant,
            region,
            status,
            count,
            size_gib,
        })
        .collect()
}

impl Report {
    pub fn completed(&self) -> usize {
        self.summary
            .iter()
            .filter(|s| s.status == ItemStatus::Completed)
            .map(|s| s.count)
            .sum()
    }
    pub fn problems(&self) -> impl Iterator<Item = &Item> {
        self.items.held().iter().filter(|i| !item_ok(i.status))
    }
}

fn setup_item(tenant: &Tenant, account: &str, region: &str, kind: ItemKind, error: String) -> Item {
    let source = if kind == ItemKind::Tenant {
        tenant.role_arn.arn.as_str()
    } else {
        region
    };
    Item::failed(&tenant.name, account, region, kind, source, error)
}

/// Runs a Snap Backup, Snap Copy or Data Aging job.
///
/// # Errors
/// Only when the ledger cannot be written; AWS failures end up in the report.
pub async fn run(req: Request<'_>) -> Result<Report, LedgerError> {
    let names: Vec<String> = req.tenants.iter().map(|t| t.name.clone()).collect();
    let dry_run = req.options.dry_run;
    let job_type = req.kind.job_type();
    let life = {
        let l = req
            .ledger
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()));
        Lifecycle::start(l.as_deref(), job_type, &req.plan.name, &names)?
    };
    let (number, agent, start) = (life.number, life.agent.clone(), life.start);
    let logs = req.logs;
    // Log lines lost while the job runs are counted in its report.
    let lost_before = logs.failures();
    let component = req.kind.component();
    let log = |m: &str| logs.write(LogFile::Backup, log_job(number), component, m);
    log(&format!(
        "{} job [{number}]{} for plan [{}] started: tenants [{}], method [{}]{}",
        job_type.as_str(),
        if agent.is_empty() {
            String::new()
        } else {
            format!(" of agent [{agent}]")
        },
        req.plan.name,
        names.join(","),
        req.plan.method,
        if dry_run { ", dry run" } else { "" }
    ));
    life.announce(logs, &req.plan.name);

    let adopt = killed_to_adopt(&req, number, &agent)?;
    if !adopt.is_empty() {
        log(&format!(
            "Resuming killed job(s) [{}] of plan [{}]: the recovery points they made (tagged with this agent's id and their start) are adopted",
            adopt.iter().map(|k| k.job.to_string()).collect::<Vec<_>>().join(","),
            req.plan.name
        ));
    }
    let job = Job {
        component,
        plan: req.plan,
        number,
        logs,
        pacer: req.pacer.clone(),
        ledger: req.ledger.clone(),
        options: req.options.clone(),
        identity: crate::tags::Identity {
            job: number,
            agent: agent.clone(),
            started: start,
        },
        adopt,
        on_total: req.on_total.clone(),
        on_done: match &req.beside {
            // A job beside a prune reports each point or copy it completes.
            Some(NightLink::Reports(night)) => {
                let (night, on_done) = (night.clone(), req.on_done.clone());
                Arc::new(move |item: &Item| {
                    on_done(item);
                    if item.status == ItemStatus::Completed {
                        night.send_modify(|n| n.complete(&item.tenant, &item.region));
                    }
                })
            }
            _ => req.on_done.clone(),
        },
        on_started: req.on_started.clone(),
        // A later outcome replaces an earlier one: the prune's passes, and a
        // backup's point found to be a duplicate after it completed.
        outcomes: Mutex::new(Outcomes::new(req.ledger.is_none(), true)),
    };
    let reached = reach_tenants(&req, &job).await;
    let vaults = match req.kind {
        Kind::VaultCopy | Kind::Prune { .. } => reach_vaults(&req, &job).await,
        _ => Vec::new(),
    };
    match req.kind {
        Kind::Backup => backup_tenants(&req, &job, &reached).await,
        Kind::Copy | Kind::VaultCopy | Kind::Prune { .. } => {
            join_all(
                reached
                    .iter()
                    .map(|(tenant, conn)| copy_or_prune(&req, &job, tenant, conn, &vaults)),
            )
            .await;
        }
    }
    // Vault copies of accounts that are no longer tenants at all: their own
    // rule only (an unreachable tenant of the accounts file is not "gone").
    if let Kind::Prune { now } = req.kind {
        let known: std::collections::BTreeSet<String> = req
            .known_tenants
            .iter()
            .map(|t| t.role_arn.account.clone())
            .collect();
        for v in &vaults {
            crate::jobs::prune::prune_orphan_vault_copies(
                &job,
                v,
                &known,
                req.filter.region.as_deref(),
                now,
                req.options.dry_run,
            )
            .await;
        }
    }
    let outcomes = std::mem::take(&mut *job.outcomes.lock().unwrap_or_else(|p| p.into_inner()));
    let lost = req.logs.failures().saturating_sub(lost_before);
    finish(&req, life, (outcomes, lost))
}

/// A backup whose previous run of this plan was killed resumes it: the
/// killed run's recovery points are adopted, not made a second time.
fn killed_to_adopt(
    req: &Request<'_>,
    number: u64,
    agent: &str,
) -> Result<Vec<crate::tags::Identity>, LedgerError> {
    let (Some(l), Kind::Backup) = (&req.ledger, req.kind) else {
        return Ok(Vec::new());
    };
    let l = l.lock().unwrap_or_else(|p| p.into_inner());
    Ok(l.jobs(Some(&req.plan.name), 10)?
        .into_iter()
        .filter(|j| j.id != number && j.job_type == JobType::SnapBackup)
        .take_while(|j| j.status == JobStatus::Killed)
        .map(|j| crate::tags::Identity {
            job: j.id,
            agent: agent.to_string(),
            started: j.start,
        })
        .collect())
}

/// Assumes every tenant's role; a tenant that cannot be reached is an item.
async fn reach_tenants<'r>(req: &Request<'r>, job: &Job<'_>) -> Vec<(&'r Tenant, Connected)> {
    let connected = connect_tenants(req.admin, req.tenants, log_job(job.number), job.logs).await;
    let mut reached = Vec::new();
    for (tenant, c) in req.tenants.iter().zip(connected) {
        match c {
            Ok(c) => {
                job.log(&format!(
                    "Assumed role [{}] for tenant [{}] (account {})",
                    tenant.role_arn, tenant.name, c.account
                ));
                reached.push((tenant, c));
            }
            Err(f) => {
                job.log(&format!("Tenant [{}] skipped: {f}", tenant.name));
                job.record(&setup_item(
                    tenant,
                    &tenant.role_arn.account,
                    "-",
                    ItemKind::Tenant,
                    f.to_string(),
                ));
            }
        }
    }
    reached
}

/// Assumes the role of every vault the plan's `[[vault]]` rules name; a
/// vault that cannot be reached is an item (its rule copies nothing).
async fn reach_vaults(req: &Request<'_>, job: &Job<'_>) -> Vec<crate::jobs::vault::VaultConn> {
    let mut wanted: Vec<(crate::config::VaultRule, Vault)> = Vec::new();
    for rule in &req.plan.vaults {
        match req.vaults.iter().find(|v| v.name == rule.vault) {
            Some(v) => wanted.push((rule.clone(), v.clone())),
            None => job.record(&Item::failed(
                &rule.vault,
                "-",
                "-",
                ItemKind::Tenant,
                &rule.vault,
                format!("vault `{}` is not in the accounts file", rule.vault),
            )),
        }
    }
    let roles: Vec<Tenant> = wanted.iter().map(|(_, v)| v.role.clone()).collect();
    let connected = connect_tenants(req.admin, &roles, log_job(job.number), job.logs).await;
    let mut out = Vec::new();
    for ((rule, vault), c) in wanted.into_iter().zip(connected) {
        match c {
            Ok(conn) => {
                job.log(&format!(
                    "Assumed role [{}] for vault [{}] (account {})",
                    vault.role.role_arn, vault.name, conn.account
                ));
                out.push(crate::jobs::vault::VaultConn { rule, vault, conn });
            }
            Err(f) => {
                job.log(&format!("Vault [{}] skipped: {f}", vault.name));
                job.record(&setup_item(
                    &vault.role,
                    &vault.role.role_arn.account,
                    "-",
                    ItemKind::Tenant,
                    f.to_string(),
                ));
            }
        }
    }
    out
}

/// A copy or prune job's work in one tenant: its plan's regions.
async fn copy_or_prune(
    req: &Request<'_>,
    job: &Job<'_>,
    tenant: &Tenant,
    conn: &Connected,
    vaults: &[crate::jobs::vault::VaultConn],
) {
    let mut regions: Vec<String> = Vec::new();
    for g in groups_for(req.plan, tenant) {
        match regions_for(&conn.session, &req.admin.admin.region, &g.regions).await {
            Ok(rs) => {
                for r in rs {
                    let wanted = req.filter.region.as_ref().is_none_or(|f| f == &r);
                    if wanted && !regions.contains(&r) {
                        regions.push(r);
                    }
                }
            }
            Err(e) => job.record(&setup_item(
                tenant,
                &conn.account,
                &e.region,
                ItemKind::Region,
                e.to_string(),
            )),
        }
    }
    match req.kind {
        Kind::Copy => copy_tenant(job, &conn.session, &conn.account, &regions).await,
        Kind::VaultCopy => {
            crate::jobs::vault::vault_tenant(job, &conn.session, &conn.account, &regions, vaults)
                .await;
        }
        Kind::Prune { now } => {
            prune_tenant(
                job,
                &conn.session,
                &conn.account,
                &regions,
                now,
                req.options.dry_run,
                match &req.beside {
                    Some(NightLink::Prune(night)) => Some(night.clone()),
                    _ => None,
                },
                vaults,
            )
            .await;
        }
        Kind::Backup => {}
    }
    conn.session.release_all();
}

static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on no new job starts in this process (the agent got SIGTERM):
/// a nightly sequence does not go on to its copy job.
pub fn stop_new_jobs() {
    STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether [`stop_new_jobs`] was called.
pub fn stopping() -> bool {
    STOPPING.load(std::sync::atomic::Ordering::SeqCst)
}

/// The nightly sequence of a plan: a backup, then a copy job when `copy`,
/// then a vault copy job when `vault`, and, when `prune` is given (its `now`), the prune beside them. `run` runs
/// one job kind; with a prune, the prune's call gets the channel on which it
/// is told when the backup and the copy job have ended and what they have
/// completed so far, and the backup's and copy job's calls get its sending
/// end (see [`prune_tenant`]). A job that errs ends the sequence (no copy
/// after a failed backup). Returns the backup and copy results in order, and
/// the prune's.
pub async fn run_night<T, E, F, Fut>(
    copy: bool,
    vault: bool,
    prune: Option<DateTime<Utc>>,
    run: F,
) -> (Vec<Result<T, E>>, Option<Result<T, E>>)
where
    F: Fn(Kind, Option<NightLink>) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let (night, beside) = tokio::sync::watch::channel(Night::default());
    let night = Arc::new(night);
    // Only a prune listens to what the backup and copy jobs complete.
    let reports = || {
        prune
            .is_some()
            .then(|| NightLink::Reports(Arc::clone(&night)))
    };
    let backup_and_copy = async {
        let backup = run(Kind::Backup, reports()).await;
        night.send_modify(|n| {
            n.stage = if copy || vault {
                Beside::Copy
            } else {
                Beside::Ended
            }
        });
        // No new job after a stop was asked for (SIGTERM to the agent).
        let copy = copy && backup.is_ok() && !stopping();
        let ok = backup.is_ok();
        let mut out = vec![backup];
        if copy {
            out.push(run(Kind::Copy, reports()).await);
        }
        // The vault copy comes after the region copies (both read the same
        // points; the region copies matter for a region outage first).
        if vault && ok && !stopping() {
            out.push(run(Kind::VaultCopy, None).await);
        }
        night.send_modify(|n| n.stage = Beside::Ended);
        out
    };
    match prune {
        None => (backup_and_copy.await, None),
        Some(now) => {
            let (done, pruned) = tokio::join!(
                backup_and_copy,
                run(Kind::Prune { now }, Some(NightLink::Prune(beside)))
            );
            (done, Some(pruned))
        }
    }
}

/// Discovers the reached tenants concurrently and backs up each tenant ×
/// region as soon as it is discovered, concurrently with the others: a
/// region's creates do not wait for the slowest region's listing (its own
/// buckets are full from the start).
/// Regions of a backup discovered, or being discovered, and not yet taken
/// up by the creates (each holds its selection, about 1 KB a resource).
pub const DISCOVERED_AHEAD: usize = crate::discovery::REGIONS_DISCOVERED_AT_ONCE;

async fn backup_tenants(req: &Request<'_>, job: &Job<'_>, reached: &[(&Tenant, Connected)]) {
    use futures::stream::{self, StreamExt};
    let log = |m: &str| job.log(m);
    // A snapshot set's item takes each volume's size from its snapshot; an
    // AMI backup and a dry run describe the volumes.
    let volumes = req.options.dry_run || req.plan.method == crate::config::Method::Ami;
    // Discovery stops taking regions while this many selected resources
    // wait for their creates (backup::SELECTED_AHEAD), or this many regions
    // are creating (backup::REGIONS_CREATING).
    let admission = backup::Admission::default();
    let admission = &admission;
    // Regions discovered, or being discovered, and not yet taken up: a
    // region's discovery starts only with one of these permits, and gives it
    // back when the region is taken up. The discovery streams are polled
    // all the while, so an answer in flight is read, never left waiting in
    // its connection while the creates are full.
    let discovered_ahead = Arc::new(tokio::sync::Semaphore::new(DISCOVERED_AHEAD));
    let discovered_ahead = &discovered_ahead;
    let (tx, rx) = futures::channel::mpsc::unbounded::<(RegionWork, backup::Ahead)>();
    let discover = async move {
        use futures::FutureExt;
        // Every tenant is discovered at once (each has its own buckets).
        // Only the selection is kept, in its backup form: the whole
        // inventory (unselected instances, volumes, tags) is not held
        // through the job.
        let mut regions = stream::select_all(reached.iter().map(|(tenant, conn)| {
            stream::once(crate::discovery::discover_tenant_for_backup(
                req.plan,
                &conn.session,
                &conn.account,
                &req.admin.admin.region,
                req.filter.region.as_deref(),
                req.logs,
                crate::discovery::BackupDiscovery {
                    volumes,
                    ahead: discovered_ahead,
                },
            ))
            .flatten()
            .map(move |r| (*tenant, conn, r))
            .boxed_local()
        }));
        let mut seq = 0;
        // Discovered regions waiting to be taken up, in order, each with its
        // permit; the first one's admission, while it waits.
        let mut queue = std::collections::VecDeque::new();
        let mut admitting: Option<futures::future::LocalBoxFuture<'_, backup::Ahead<'_>>> = None;
        let mut listing = true;
        // The regions being created hold their bursts until every region
        // is listed, each for 2 s at most (see Pacer::hold_bursts): a burst
        // can wait at no cost, a region listed late ends late.
        let mut hold = Some(job.pacer.hold_bursts());
        while listing || !queue.is_empty() {
            if admitting.is_none() {
                if let Some((_, _, resources, _)) = queue.front() {
                    let n = Vec::len(resources);
                    admitting = Some(backup::Ahead::take(admission, n).boxed_local());
                }
            }
            tokio::select! {
                found = regions.next(), if listing => {
                    let Some((tenant, conn, (r, permit))) = found else {
                        listing = false;
                        drop(hold.take());
                        continue;
                    };
                    if let Some(e) = r.error {
                        conn.session.release(&r.region);
                        log(&format!(
                            "Region [{}] of tenant [{}] skipped: {e}",
                            r.region, tenant.name
                        ));
                        job.record(&setup_item(
                            tenant,
                            &conn.account,
                            &r.region,
                            ItemKind::Region,
                            e.to_string(),
                        ));
                        continue;
                    }
                    let resources: Vec<_> = r
                        .selection
                        .selected
                        .into_iter()
                        .filter(|s| req.filter.keeps(&s.resource))
                        .map(|s| {
                            seq += 1;
                            (seq, s)
                        })
                        .collect();
                    if resources.is_empty() {
                        conn.session.release(&r.region);
                    } else {
                        (req.on_total)(resources.len());
                        queue.push_back((conn, r.region, resources, permit));
                    }
                }
                ahead = async { admitting.as_mut().expect("admitting").await }, if admitting.is_some() => {
                    admitting = None;
                    let Some((conn, region, resources, permit)) = queue.pop_front() else {
                        continue;
                    };
                    drop(permit);
                    let work = RegionWork::new(
                        conn.session.clone(),
                        conn.account.clone(),
                        region,
                        resources,
                    );
                    // The receiver lives until every region is sent.
                    let _ = tx.unbounded_send((work, ahead));
                }
            }
        }
    };
    let backups = rx.for_each_concurrent(None, |(work, ahead)| async move {
        let (session, region) = (work.session.clone(), work.region.clone());
        backup_region(job, work, ahead).await;
        // The job is done in this tenant × region: a fleet of many of them
        // must not keep every one's clients to the end.
        session.release(&region);
    });
    tokio::join!(discover, backups);
}

/// Decides the job's status, logs the end, and closes the job in the ledger.
fn finish(
    req: &Request<'_>,
    life: Lifecycle,
    (outcomes, lost_log_lines): (Outcomes, u64),
) -> Result<Report, LedgerError> {
    let (number, job_type, start) = (life.number, life.job_type, life.start);
    let agent = life.agent.clone();
    let logs = req.logs;
    let component = req.kind.component();
    let log = |m: &str| logs.write(LogFile::Backup, log_job(number), component, m);
    let (held, counted) = outcomes.into_parts();
    let summary = summarize(&held, &counted);
    let total: usize = summary.iter().map(|s| s.count).sum();
    let ok: usize = summary
        .iter()
        .filter(|s| item_ok(s.status))
        .map(|s| s.count)
        .sum();
    let failed = total - ok;
    let status = if total == 0 {
        // Nothing to do is not a failure of the job.
        JobStatus::Completed
    } else {
        JobStatus::from_counts(ok, failed, 0)
    };
    // Log lines that could not be written (a full disk, a log file that
    // cannot rotate) are a problem of the job: the audit trail is incomplete.
    let status = match (status, lost_log_lines) {
        (JobStatus::Completed, n) if n > 0 => JobStatus::CompletedWithErrors,
        (s, _) => s,
    };
    let size_gib: i64 = summary
        .iter()
        .filter(|s| s.status == ItemStatus::Completed)
        .map(|s| s.size_gib)
        .sum();
    let end = chrono::Utc::now().timestamp();
    let lost_error = (lost_log_lines > 0).then(|| {
        format!(
            "{lost_log_lines} log line(s) could not be written to {} while the job ran",
            logs.dir().display()
        )
    });
    let first_error = held
        .iter()
        .find_map(|i| i.error.clone())
        .or_else(|| lost_error.clone());
    log(&format!(
        "Job [{number}] {status}: {ok} of {total} item(s) done, {size_gib} GiB, {failed} with errors"
    ));
    life.ended(logs, status);
    if let Some(l) = req.ledger.as_ref().filter(|_| life.recorded()) {
        let l = l.lock().unwrap_or_else(|p| p.into_inner());
        l.event(
            number,
            if failed == 0 { "Info" } else { "Warning" },
            &format!(
                "{} job ({number}) {status}: {ok} of {total} item(s) done",
                job_type.as_str()
            ),
        )?;
        for i in held.iter().filter(|i| i.error.is_some()) {
            l.event(number, "Error", i.error.as_deref().unwrap_or_default())?;
        }
        if let Some(e) = &lost_error {
            l.event(number, "Error", e)?;
        }
        life.finish(&l, status, size_gib, first_error.as_deref())?;
    }
    let items = match &req.ledger {
        Some(ledger) => Items::InLedger {
            ledger: ledger.clone(),
            job: number,
            problems: held,
        },
        None => Items::Held(held),
    };
    Ok(Report {
        job: number,
        agent: agent.to_string(),
        job_type,
        plan: req.plan.name.clone(),
        status,
        dry_run: req.options.dry_run,
        start,
        end,
        size_gib,
        summary,
        lost_log_lines,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a prune, the backup and copy jobs get the sending end and the
    /// prune hears what they complete and when they end; the vault copy job
    /// reports nothing. Without a prune, no job gets a link.
    #[tokio::test]
    async fn a_night_links_the_backup_and_copy_jobs_to_the_prune() {
        let links = Mutex::new(Vec::new());
        let now = Utc::now();
        let run = |kind: Kind, link: Option<NightLink>| {
            let links = &links;
            async move {
                let name = match &link {
                    None => "none",
                    Some(NightLink::Reports(_)) => "reports",
                    Some(NightLink::Prune(_)) => "prune",
                };
                links.lock().unwrap().push((kind.job_type(), name));
                match link {
                    Some(NightLink::Reports(night)) => {
                        night.send_modify(|n| n.complete("t", "us-west-2"));
                        Ok::<usize, ()>(0)
                    }
                    Some(NightLink::Prune(mut night)) => {
                        let n = night.wait_for(|n| n.stage == Beside::Ended).await.unwrap();
                        Ok(n.completed_in("t", "us-west-2"))
                    }
                    None => Ok(0),
                }
            }
        };
        let (done, pruned) = run_night(true, true, Some(now), run).await;
        assert_eq!(done.len(), 3);
        // The prune heard the backup's and the copy job's completions.
        assert_eq!(pruned, Some(Ok(2)));
        let mut seen = links.lock().unwrap().clone();
        seen.sort_by_key(|(t, _)| t.as_str());
        assert_eq!(
            seen,
            [
                (JobType::DataAging, "prune"),
                (JobType::SnapBackup, "reports"),
                (JobType::SnapCopy, "reports"),
                (JobType::VaultCopy, "none"),
            ]
        );

        links.lock().unwrap().clear();
        let (done, pruned) = run_night(true, false, None, run).await;
        assert_eq!((done.len(), pruned), (2, None));
        assert!(
            links.lock().unwrap().iter().all(|(_, l)| *l == "none"),
            "{:?}",
            links.lock().unwrap()
        );
    }
}
