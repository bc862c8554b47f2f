//! The job context every job kind shares: which plan and job it is, its
//! options (dry run, wait and poll times), its log, its pacer, its ledger, the
//! identity tags of what it makes, and the outcomes of its items so far.
//!
//! Backup, copy, prune and the duplicate check run on a [`Job`]; each records
//! how a resource or point ended with [`Job::record`], which writes the ledger,
//! the counts of the report and the progress bar in one place.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::aws::credentials::TenantSession;
use crate::aws::ec2::Ec2;
use crate::aws::error::Site;
use crate::aws::pace::Pacer;
use crate::aws::rds::Rds;
use crate::aws::At;
use crate::config::Plan;
use crate::store::ledger::{
    Item, ItemKind, ItemStatus, JobLock, JobStatus, JobType, Ledger, LedgerError,
};
use crate::store::logs::{JobLog, LogFile, Logs};
use crate::tags;

/// How long to wait between polls: starts at `poll_initial`, doubles to `poll_max`.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub dry_run: bool,
    pub wait_timeout: Duration,
    pub poll_initial: Duration,
    pub poll_max: Duration,
}

impl JobOptions {
    pub fn for_plan(plan: &Plan) -> JobOptions {
        JobOptions {
            dry_run: false,
            wait_timeout: Duration::from_secs(u64::from(plan.wait_timeout_minutes) * 60),
            poll_initial: Duration::from_secs(2),
            poll_max: Duration::from_secs(60),
        }
    }
}

/// A job's life in the ledger and in cvd.log, the same for every job kind:
/// started (its number, the ledger's agent id, its start, the lock that says
/// it runs) and finished. A job without a ledger (a dry run) is number 0,
/// with no agent and no lock, and its lines show `###`.
pub struct Lifecycle {
    pub number: u64,
    pub agent: String,
    pub start: i64,
    pub job_type: JobType,
    lock: Option<JobLock>,
}

impl Lifecycle {
    /// Starts a job in `ledger` (when there is one).
    ///
    /// # Errors
    /// When the ledger cannot be written.
    pub fn start(
        ledger: Option<&Ledger>,
        job_type: JobType,
        plan: &str,
        tenants: &[String],
    ) -> Result<Lifecycle, LedgerError> {
        Ok(match ledger {
            Some(l) => {
                let (job, lock) = l.start_job(job_type, plan, tenants)?;
                Lifecycle {
                    number: job.id,
                    agent: l.agent_id().to_string(),
                    start: job.start,
                    job_type,
                    lock: Some(lock),
                }
            }
            None => Lifecycle {
                number: 0,
                agent: String::new(),
                start: chrono::Utc::now().timestamp(),
                job_type,
                lock: None,
            },
        })
    }

    /// The JOBID of the job's log lines: `None` (`###`) without a job.
    pub fn log_job(&self) -> Option<u64> {
        log_job(self.number)
    }

    /// cvd.log's "Started … job" line.
    pub fn announce(&self, logs: &Logs, plan: &str) {
        logs.write(
            LogFile::Cvd,
            self.log_job(),
            "CvdJobManager::StartJob",
            &format!(
                "Started {} job [{}] for plan [{plan}]",
                self.job_type.as_str(),
                self.number
            ),
        );
    }

    /// cvd.log's "… job ended" line.
    pub fn ended(&self, logs: &Logs, status: JobStatus) {
        logs.write(
            LogFile::Cvd,
            self.log_job(),
            "CvdJobManager::EndJob",
            &format!(
                "{} job [{}] ended: {status}",
                self.job_type.as_str(),
                self.number
            ),
        );
    }

    /// Whether the job is in a ledger (it then has a lock to give back).
    pub fn recorded(&self) -> bool {
        self.lock.is_some()
    }

    /// Marks the job finished in `ledger`, releasing its lock; nothing for a
    /// job that was never started in one.
    ///
    /// # Errors
    /// When the ledger cannot be written.
    pub fn finish(
        self,
        ledger: &Ledger,
        status: JobStatus,
        size_gib: i64,
        error: Option<&str>,
    ) -> Result<(), LedgerError> {
        match self.lock {
            Some(lock) => ledger.finish_job(lock, status, size_gib, error),
            None => Ok(()),
        }
    }
}

/// The JOBID of a log line: `###` for a dry run, which has no job number (0).
pub(crate) fn log_job(number: u64) -> Option<u64> {
    (number != 0).then_some(number)
}

/// What a job shares across its regions.
pub struct Job<'a> {
    /// `Component::function` of the job's vsbkp.log lines.
    pub component: &'static str,
    pub plan: &'a Plan,
    pub number: u64,
    pub logs: &'a Logs,
    pub pacer: Pacer,
    pub ledger: Option<Arc<Mutex<Ledger>>>,
    pub options: JobOptions,
    /// Who makes what this job creates: its number, its ledger's agent id
    /// and its start (the identity tags). Job 0 and no agent for a dry run.
    pub identity: tags::Identity,
    /// Killed jobs of the same plan, in this job's own ledger, whose
    /// recovery points this job adopts instead of making them again (a run
    /// resumed after a crash): only points whose identity tags say that job
    /// made them.
    pub adopt: Vec<tags::Identity>,
    /// Told how many more resources or copies the job works on (progress:
    /// the total is the sum), see [`crate::jobs::Request::on_total`].
    pub on_total: Arc<dyn Fn(usize) + Send + Sync>,
    /// Called once per finished resource (progress bars).
    pub on_done: Arc<dyn Fn(&Item) + Send + Sync>,
    /// Called when a create or copy has been started and is waited for
    /// (progress: in flight), with the source id or the copy's id.
    pub on_started: Arc<dyn Fn(&str) + Send + Sync>,
    /// What the job's items came to so far (see [`Outcomes`]).
    pub outcomes: Mutex<Outcomes>,
}

/// (tenant, region, status) → (count, GiB)
pub type Counted = BTreeMap<(String, String, ItemStatus), (usize, i64)>;

/// (tenant, region, kind, source): the point or resource an item is about.
type ItemKey = (String, String, ItemKind, String);

/// What a job's items came to while it runs.
///
/// A job with a ledger writes each item there as it ends ([`Job::record`])
/// and keeps here only the counts of the items that went well and the
/// problems, in full: at 10 000 instances the items themselves would be a
/// large part of the job's memory, and the report reads them back from the
/// ledger. A job without one (a dry run) keeps every item.
///
/// A later outcome for the same point replaces an earlier one, as the
/// prune's passes need: a point whose delete failed in one pass and which a
/// later pass deleted is one Deleted item. The ledger, read back, gives the
/// last outcome too. With `replaces`, an outcome that went well is
/// remembered (a hash and its status) so that a later one can replace it;
/// without, it is final (a backup or copy has one outcome per resource).
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Outcomes that went well and are not held: (tenant, region, status) →
    /// (count, GiB). Also the outcomes counted without an item (the points a
    /// prune keeps, [`Job::count`]).
    pub counted: Counted,
    /// Held items: the problems, or every item when `hold_all`. `None` marks
    /// one a later ok outcome replaced.
    held: Vec<Option<Item>>,
    at: HashMap<ItemKey, usize>,
    hold_all: bool,
    /// With `replaces`: the counted ok outcomes, by a hash of their key.
    ok_seen: Option<HashMap<u64, (ItemStatus, i64)>>,
}

/// An 8-byte stand-in for a key a job remembers by the thousand (the
/// outcomes of a prune's points, the points it deleted), instead of its
/// strings.
pub(crate) fn hash64(key: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// Adds `n` outcomes of `status`, `size_gib` in all, to `counted`.
pub(crate) fn tally(
    counted: &mut Counted,
    tenant: &str,
    region: &str,
    status: ItemStatus,
    n: usize,
    size_gib: i64,
) {
    let e = counted
        .entry((tenant.to_string(), region.to_string(), status))
        .or_default();
    e.0 += n;
    e.1 += size_gib;
}

impl Outcomes {
    /// `hold_all`: keep every item (a job without a ledger to read them
    /// from). `replaces`: a later outcome of a point may replace one that
    /// went well (the prune's passes).
    pub fn new(hold_all: bool, replaces: bool) -> Outcomes {
        Outcomes {
            hold_all,
            ok_seen: (replaces && !hold_all).then(HashMap::new),
            ..Outcomes::default()
        }
    }

    fn key(item: &Item) -> ItemKey {
        (
            item.tenant.clone(),
            item.region.clone(),
            item.kind,
            item.source_id.clone(),
        )
    }

    /// Whether an outcome of this point was recorded: a held item, or one
    /// counted that a later outcome may replace.
    pub fn has(&self, key: &ItemKey) -> bool {
        self.at.contains_key(key)
            || self
                .ok_seen
                .as_ref()
                .is_some_and(|s| s.contains_key(&hash64(key)))
    }

    pub fn add(&mut self, item: &Item) {
        let key = Outcomes::key(item);
        // An earlier outcome that went well, and was counted, is replaced.
        if let Some((status, gib)) = self.ok_seen.as_mut().and_then(|s| s.remove(&hash64(&key))) {
            self.uncount(&item.tenant, &item.region, status, gib);
        }
        let ok = item.status.ok();
        if self.hold_all || !ok {
            match self.at.get(&key) {
                Some(&n) => self.held[n] = Some(item.clone()),
                None => {
                    self.at.insert(key, self.held.len());
                    self.held.push(Some(item.clone()));
                }
            }
            return;
        }
        if let Some(n) = self.at.remove(&key) {
            self.held[n] = None;
        }
        if let Some(seen) = self.ok_seen.as_mut() {
            seen.insert(hash64(&key), (item.status, item.size_gib));
        }
        self.count(&item.tenant, &item.region, item.status, 1, item.size_gib);
    }

    fn count(&mut self, tenant: &str, region: &str, status: ItemStatus, n: usize, size_gib: i64) {
        tally(&mut self.counted, tenant, region, status, n, size_gib);
    }

    fn uncount(&mut self, tenant: &str, region: &str, status: ItemStatus, size_gib: i64) {
        let k = (tenant.to_string(), region.to_string(), status);
        if let Some(e) = self.counted.get_mut(&k) {
            e.0 = e.0.saturating_sub(1);
            e.1 -= size_gib;
            if e.0 == 0 {
                self.counted.remove(&k);
            }
        }
    }

    /// The held items in the order they first ended, and the counts.
    pub fn into_parts(self) -> (Vec<Item>, Counted) {
        (self.held.into_iter().flatten().collect(), self.counted)
    }
}

impl Job<'_> {
    /// Where this job's lines go: vsbkp.log, under its number and component.
    pub(crate) fn log_to(&self) -> JobLog<'_> {
        JobLog {
            logs: self.logs,
            file: LogFile::Backup,
            job: log_job(self.number),
            component: self.component,
        }
    }

    pub(crate) fn log(&self, message: &str) {
        self.log_to().write(message);
    }

    /// A tenant × region whose recovery points could not be listed: a log
    /// line and a failed region item.
    pub(crate) fn region_not_listed(
        &self,
        tenant: &str,
        account: &str,
        region: &str,
        e: &crate::aws::error::AwsError,
    ) {
        self.log(&format!(
            "Cannot list recovery points in [{tenant}/{region}]: {e}"
        ));
        self.record(&Item::failed(
            tenant,
            account,
            region,
            ItemKind::Region,
            region,
            e.to_string(),
        ));
    }

    /// One tenant × region as this job's AWS calls see it.
    pub(crate) fn at<'s>(
        &'s self,
        session: &'s TenantSession,
        account: &'s str,
        region: &'s str,
    ) -> At<'s> {
        At {
            site: Site {
                tenant: &session.tenant.name,
                region,
            },
            account,
            pacer: &self.pacer,
            log: Some(self.log_to()),
        }
    }

    /// The EC2 calls of this job in one tenant × region.
    pub(crate) fn ec2<'s>(
        &'s self,
        session: &'s TenantSession,
        account: &'s str,
        region: &'s str,
    ) -> Ec2<'s> {
        Ec2::new(session.ec2(region), self.at(session, account, region))
    }

    /// The RDS calls of this job in one tenant × region.
    pub(crate) fn rds<'s>(
        &'s self,
        session: &'s TenantSession,
        account: &'s str,
        region: &'s str,
    ) -> Rds<'s> {
        Rds::new(session.rds(region), self.at(session, account, region))
    }

    /// The EC2 calls of a poll in one tenant × region, with a client that
    /// is not kept ([`TenantSession::ec2_passing`]).
    pub(crate) fn ec2_passing<'s>(
        &'s self,
        session: &'s TenantSession,
        account: &'s str,
        region: &'s str,
    ) -> Ec2<'s> {
        Ec2::new(
            session.ec2_passing(region),
            self.at(session, account, region),
        )
    }

    /// The RDS calls of a poll, as [`Job::ec2_passing`].
    pub(crate) fn rds_passing<'s>(
        &'s self,
        session: &'s TenantSession,
        account: &'s str,
        region: &'s str,
    ) -> Rds<'s> {
        Rds::new(
            session.rds_passing(region),
            self.at(session, account, region),
        )
    }

    /// The deadline of this job's waits and retries, from now.
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.options.wait_timeout
    }

    /// Counts an outcome that gets no item (the points a prune keeps).
    pub(crate) fn count(
        &self,
        tenant: &str,
        region: &str,
        status: ItemStatus,
        n: usize,
        size_gib: i64,
    ) {
        self.outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .count(tenant, region, status, n, size_gib);
    }

    /// Whether an outcome of this point was recorded (see [`Outcomes::has`]).
    pub(crate) fn has_outcome(
        &self,
        tenant: &str,
        region: &str,
        kind: ItemKind,
        source: &str,
    ) -> bool {
        let key = (
            tenant.to_string(),
            region.to_string(),
            kind,
            source.to_string(),
        );
        self.outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .has(&key)
    }

    /// Writes an item to the ledger only: what has been made so far of a
    /// resource whose outcome is not known yet (a job killed while it waits
    /// still shows what it made), or a later detail of an outcome already
    /// counted. The last item of a resource is its outcome.
    pub(crate) fn note_made(&self, item: &Item) {
        if let Some(l) = &self.ledger {
            let l = l.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = l.add_item(self.number, item) {
                self.log(&format!(
                    "Cannot record item {} in the ledger: {e}",
                    item.source_id
                ));
            }
        }
    }

    /// Records how one resource or point ended: in the ledger, in the job's
    /// outcomes, and for the progress bar.
    pub(crate) fn record(&self, item: &Item) {
        self.note_made(item);
        self.outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(item);
        (self.on_done)(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(source: &str, status: &str, gib: i64) -> Item {
        Item {
            tenant: "alpha".into(),
            account: "222222222222".into(),
            region: "us-east-1".into(),
            kind: ItemKind::SnapshotSet,
            source_id: source.into(),
            status: ItemStatus::parse(status),
            created: vec![],
            size_gib: gib,
            error: (!ItemStatus::parse(status).ok()).then(|| format!("{source} {status}")),
            detail: serde_json::Value::Null,
        }
    }

    fn key(status: &str) -> (String, String, ItemStatus) {
        (
            "alpha".into(),
            "us-east-1".into(),
            ItemStatus::parse(status),
        )
    }

    #[test]
    fn with_a_ledger_only_problems_are_held_and_a_later_outcome_replaces_one() {
        let mut o = Outcomes::new(false, true);
        o.add(&item("a", "Failed", 8));
        o.add(&item("b", "Deleted", 4));
        o.add(&item("c", "Failed", 2));
        // A later pass deletes a, and fails c again with another error.
        o.add(&item("a", "Deleted", 8));
        let mut c = item("c", "Failed", 2);
        c.error = Some("second try".into());
        o.add(&c);
        let (held, counted) = o.into_parts();
        assert_eq!(held, vec![c]);
        assert_eq!(counted.get(&key("Deleted")), Some(&(2, 12)));
        assert_eq!(counted.get(&key("Failed")), None);
    }

    #[test]
    fn in_a_prune_a_later_outcome_replaces_one_that_went_well() {
        let mut o = Outcomes::new(false, true);
        o.add(&item("a", "Deleted", 8));
        o.add(&item("b", "Kept", 4));
        assert!(o.has(&Outcomes::key(&item("a", "Failed", 8))));
        assert!(!o.has(&Outcomes::key(&item("c", "Failed", 8))));
        // A later pass: a is listed again and its delete refused, b deleted.
        o.add(&item("a", "Failed", 8));
        o.add(&item("b", "Deleted", 4));
        let (held, counted) = o.into_parts();
        assert_eq!(held, vec![item("a", "Failed", 8)]);
        assert_eq!(counted.get(&key("Deleted")), Some(&(1, 4)));
        assert_eq!(counted.get(&key("Kept")), None);
    }

    #[test]
    fn without_a_ledger_every_item_is_held_once_in_first_order() {
        let mut o = Outcomes::new(true, true);
        o.add(&item("a", "Kept", 8));
        o.add(&item("b", "WouldDelete", 4));
        o.add(&item("a", "WouldDelete", 8));
        let (held, counted) = o.into_parts();
        let got: Vec<(&str, &str)> = held
            .iter()
            .map(|i| (i.source_id.as_str(), i.status.as_str()))
            .collect();
        assert_eq!(got, vec![("a", "WouldDelete"), ("b", "WouldDelete")]);
        assert!(counted.is_empty());
    }
}
