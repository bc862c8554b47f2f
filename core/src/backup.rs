//! Snap Backup: create the recovery points of one tenant × region and wait for
//! them to complete.
//!
//! EC2 instances get either one `CreateSnapshots` call (a crash-consistent set
//! across the instance's volumes) or `CreateImage` with NoReboot; RDS instances
//! `CreateDBSnapshot`, Aurora clusters `CreateDBClusterSnapshot`. Everything is
//! tagged at creation. Waiting is batched: one describe call per region lists
//! every snapshot or image of the job by its `_GX_BACKUP_` tag.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use futures::stream::{self, StreamExt};
use serde_json::json;
use tokio::time::Instant;

use crate::config::{Method, Plan};
use crate::credentials::TenantSession;
use crate::discovery::{Resource, Selected};
use crate::error::{AwsError, Site};
use crate::ledger::{Item, Ledger};
use crate::logs::{LogFile, Logs};
use crate::pace::{Bucket, Pacer};
use crate::retry::create_with_retry;
use crate::tags;

/// Create calls in flight per account × region. The pacer keeps the rate
/// inside EC2's CreateSnapshots bucket (100 burst, 5/s); this only bounds
/// open connections.
pub const CREATES_IN_FLIGHT: usize = 16;

/// How long to wait between polls: starts at `poll_initial`, doubles to `poll_max`.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub dry_run: bool,
    pub wait_timeout: Duration,
    pub poll_initial: Duration,
    pub poll_max: Duration,
}

impl BackupOptions {
    pub fn for_plan(plan: &Plan) -> BackupOptions {
        BackupOptions {
            dry_run: false,
            wait_timeout: Duration::from_secs(u64::from(plan.wait_timeout_minutes) * 60),
            poll_initial: Duration::from_secs(2),
            poll_max: Duration::from_secs(60),
        }
    }
}

/// The JOBID of a log line: `###` for a dry run, which has no job number (0).
pub(crate) fn log_job(number: u64) -> Option<u64> {
    (number != 0).then_some(number)
}

/// One tenant × region's share of a job.
pub struct RegionWork {
    pub session: TenantSession,
    pub account: String,
    pub region: String,
    /// (sequence number in the job, resource)
    pub resources: Vec<(usize, Selected)>,
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
    pub options: BackupOptions,
    /// Who makes what this job creates: its number, its ledger's agent id
    /// and its start (the identity tags). Job 0 and no agent for a dry run.
    pub identity: tags::Identity,
    /// Killed jobs of the same plan, in this job's own ledger, whose
    /// recovery points this job adopts instead of making them again (a run
    /// resumed after a crash): only points whose identity tags say that job
    /// made them.
    pub adopt: Vec<tags::Identity>,
    /// Called once per finished resource (progress bars).
    pub on_done: Arc<dyn Fn(&Item) + Send + Sync>,
    /// What the job's items came to so far (see [`Outcomes`]).
    pub outcomes: Mutex<Outcomes>,
}

/// (tenant, region, status) → (count, GiB)
pub type Counted = BTreeMap<(String, String, String), (usize, i64)>;

/// (tenant, region, kind, source): the point or resource an item is about.
type ItemKey = (String, String, String, String);

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
    ok_seen: Option<HashMap<u64, (&'static str, i64)>>,
}

/// The statuses [`crate::job::item_ok`] accepts, as static strings.
pub(crate) fn ok_status(status: &str) -> Option<&'static str> {
    [
        "Completed",
        "DryRun",
        "Kept",
        "Deleted",
        "WouldDelete",
        "DuplicateRemoved",
    ]
    .into_iter()
    .find(|s| *s == status)
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
    status: &str,
    n: usize,
    size_gib: i64,
) {
    let e = counted
        .entry((tenant.to_string(), region.to_string(), status.to_string()))
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
            item.kind.clone(),
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
        let ok = ok_status(&item.status);
        if self.hold_all || ok.is_none() {
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
        if let (Some(seen), Some(status)) = (self.ok_seen.as_mut(), ok) {
            seen.insert(hash64(&key), (status, item.size_gib));
        }
        self.count(&item.tenant, &item.region, &item.status, 1, item.size_gib);
    }

    fn count(&mut self, tenant: &str, region: &str, status: &str, n: usize, size_gib: i64) {
        tally(&mut self.counted, tenant, region, status, n, size_gib);
    }

    fn uncount(&mut self, tenant: &str, region: &str, status: &str, size_gib: i64) {
        let k = (tenant.to_string(), region.to_string(), status.to_string());
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
    pub(crate) fn log(&self, message: &str) {
        self.logs.write(
            LogFile::Backup,
            log_job(self.number),
            self.component,
            message,
        );
    }

    /// Counts an outcome that gets no item (the points a prune keeps).
    pub(crate) fn count(&self, tenant: &str, region: &str, status: &str, n: usize, size_gib: i64) {
        self.outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .count(tenant, region, status, n, size_gib);
    }

    /// Whether an outcome of this point was recorded (see [`Outcomes::has`]).
    pub(crate) fn has_outcome(&self, tenant: &str, region: &str, kind: &str, source: &str) -> bool {
        let key = (
            tenant.to_string(),
            region.to_string(),
            kind.to_string(),
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

#[derive(Debug, Clone)]
enum Made {
    /// (snapshot id, volume id)
    Snapshots(Vec<(String, String)>),
    Image(String),
    DbSnapshot(String),
    ClusterSnapshot(String),
}

impl Made {
    fn ids(&self) -> Vec<String> {
        match self {
            Made::Snapshots(s) => s.iter().map(|(id, _)| id.clone()).collect(),
            Made::Image(i) | Made::DbSnapshot(i) | Made::ClusterSnapshot(i) => vec![i.clone()],
        }
    }
}

/// A recovery point being made; it borrows its resource from the region's work
/// (no second copy of every instance while the job waits).
struct Pending<'a> {
    selected: &'a Selected,
    name: String,
    made: Made,
    /// Image: its backing snapshots once tagged.
    extra: Vec<String>,
}

pub(crate) fn ec2_tags(t: &[(String, String)]) -> Vec<aws_sdk_ec2::types::Tag> {
    t.iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn rds_tags(t: &[(String, String)]) -> Vec<aws_sdk_rds::types::Tag> {
    t.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn tag_filter(key: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// Filters that find only what `id`'s job made: its number, its agent and
/// its start. Another ledger's job of the same number never matches.
pub(crate) fn identity_filters(id: &tags::Identity) -> Vec<aws_sdk_ec2::types::Filter> {
    id.tags().iter().map(|(k, v)| tag_filter(k, v)).collect()
}

pub(crate) fn no_sdk_retries_ec2() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled())
}

pub(crate) fn no_sdk_retries_rds() -> aws_sdk_rds::config::Builder {
    aws_sdk_rds::config::Builder::default().retry_config(RetryConfig::disabled())
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn describe(r: &Resource, job: u64) -> String {
    let s = match r {
        Resource::Instance(i) => format!(
            "rolesnap job {job}: {} {}",
            i.id,
            i.volumes
                .iter()
                .map(|v| format!("{} ({})", v.volume_id, v.device))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => format!("rolesnap job {job}: {}", other.id()),
    };
    truncate(s, 255)
}

/// What a dry run says it would make.
pub fn plan_item(job: &Job<'_>, work: &RegionWork, seq: usize, s: &Selected) -> Item {
    let now = chrono::Utc::now().timestamp();
    let (action, name) = match (&s.resource, job.plan.method) {
        (Resource::Instance(_), Method::SnapshotSet) => (
            "CreateSnapshots",
            tags::recovery_point_name(job.plan.id, job.number, seq, now),
        ),
        (Resource::Instance(_), Method::Ami) => (
            "CreateImage",
            tags::recovery_point_name(job.plan.id, job.number, seq, now),
        ),
        (Resource::DbInstance(_), _) => (
            "CreateDBSnapshot",
            tags::rds_identifier(job.plan.id, job.number, seq, now, &job.identity.agent),
        ),
        (Resource::DbCluster(_), _) => (
            "CreateDBClusterSnapshot",
            tags::rds_identifier(job.plan.id, job.number, seq, now, &job.identity.agent),
        ),
    };
    Item {
        tenant: work.session.tenant.name.clone(),
        account: work.account.clone(),
        region: work.region.clone(),
        kind: s.resource.kind().to_string(),
        source_id: s.resource.id().to_string(),
        status: "DryRun".into(),
        created: vec![],
        size_gib: s.resource.size_gib(),
        error: None,
        detail: json!({"would_call": action, "name": name, "group": s.group, "az": s.resource.az()}),
    }
}

/// Backs up one tenant × region: creates, waits, records. Never fails as a
/// whole: each resource ends in an [`Item`], given to [`Job::record`].
pub async fn backup_region(job: &Job<'_>, work: &RegionWork) {
    let tenant = &work.session.tenant.name;
    let region = &work.region;
    if job.options.dry_run {
        for (seq, s) in &work.resources {
            job.record(&plan_item(job, work, *seq, s));
        }
        return;
    }
    job.log(&format!(
        "Tenant [{tenant}] account [{}] region [{region}]: backing up {} resource(s) with method [{}]",
        work.account,
        work.resources.len(),
        job.plan.method
    ));
    let deadline = Instant::now() + job.options.wait_timeout;
    let mut adopted = adoptable(job, work).await;
    let mut pending = Vec::new();
    let mut fresh = Vec::new();
    for (seq, s) in &work.resources {
        match adopted.remove(s.resource.id()) {
            Some((name, made)) => {
                job.log(&format!(
                    "Adopting [{}] of [{}] from killed job(s) [{}] of agent [{}] instead of creating it again",
                    made.ids().join(","),
                    s.resource.id(),
                    job.adopt.iter().map(|k| k.job.to_string()).collect::<Vec<_>>().join(","),
                    job.identity.agent
                ));
                pending.push(Pending {
                    selected: s,
                    name,
                    made,
                    extra: vec![],
                });
            }
            None => fresh.push((seq, s)),
        }
    }
    let started: Vec<Result<Pending, Item>> = stream::iter(fresh)
        .map(|(seq, s)| start_one(job, work, *seq, s, deadline))
        .buffer_unordered(CREATES_IN_FLIGHT)
        .collect()
        .await;
    let mut unknown = Vec::new();
    for r in started {
        match r {
            Ok(p) => {
                let mut item = item_for(work, p.selected, "Pending", p.made.ids(), None);
                item.detail["name"] = json!(p.name);
                item.detail["waiting"] = json!(true);
                job.note_made(&item);
                pending.push(p);
            }
            Err(item) if item.detail["unknown"] == json!(true) => unknown.push(item),
            Err(item) => job.record(&item),
        }
    }
    let mut completed = wait_all(job, work, pending, deadline).await;
    // Creates whose outcome could not be learnt are asked once more, now
    // that time has passed: what is found is waited for and reported; what
    // still cannot be checked is recorded as unknown, never created again.
    let mut found = Vec::new();
    for item in unknown {
        let Some((_, s)) = work
            .resources
            .iter()
            .find(|(_, s)| s.resource.id() == item.source_id)
        else {
            job.record(&item);
            continue;
        };
        let again = match (&s.resource, job.plan.method) {
            (Resource::Instance(i), Method::SnapshotSet) => find_snapshot_set(job, work, &i.id)
                .await
                .map(|o| o.map(Made::Snapshots)),
            (Resource::Instance(i), Method::Ami) => find_image(job, work, &i.id)
                .await
                .map(|o| o.map(Made::Image)),
            _ => Ok(None),
        };
        match again {
            Ok(Some(made)) => {
                job.log(&format!(
                    "Found [{}] of [{}], made by a create whose outcome was unknown",
                    made.ids().join(","),
                    item.source_id
                ));
                found.push(Pending {
                    selected: s,
                    name: item.detail["name"].as_str().unwrap_or_default().to_string(),
                    made,
                    extra: vec![],
                });
            }
            Ok(None) => {
                let mut item = item;
                item.error = Some(format!(
                    "{}; a later check found nothing made",
                    item.error.unwrap_or_default()
                ));
                job.record(&item);
            }
            Err(_) => job.record(&item),
        }
    }
    if !found.is_empty() {
        completed.extend(wait_all(job, work, found, deadline).await);
    }
    let removed = crate::duplicates::resolve_region(job, work, deadline).await;
    // EBS Snapshot Lock, as part of each point's creation (lock.rs), once
    // it is known not to be a duplicate (a locked duplicate could not be
    // removed until its lock expired).
    let rule = crate::lock::source_rule(job.plan, &work.region);
    if rule.is_none() {
        return;
    }
    for mut item in completed {
        if removed.contains(&item.source_id) {
            continue;
        }
        let lock = crate::lock::after_create(
            &work.session.ec2(&work.region),
            rule,
            &job.plan.retention,
            &item.created,
        )
        .await;
        if let Some(l) = lock {
            job.log(&format!("Locked snapshots of [{}]: {l}", item.source_id));
            item.detail["lock"] = l;
            // The item's last outcome, with its lock: the report and `jobs`
            // read it from the ledger.
            job.note_made(&item);
        }
    }
}

/// Recovery points a killed run of this plan already made in this region, by source id.
async fn adoptable(job: &Job<'_>, work: &RegionWork) -> BTreeMap<String, (String, Made)> {
    use crate::catalog::{list_region, Kinds, PointKind, PointState};
    let mut out = BTreeMap::new();
    if job.adopt.is_empty() {
        return out;
    }
    let kinds = Kinds {
        ec2: true,
        rds: true,
        all_tags: false,
    };
    let points = match list_region(
        &work.session,
        &work.account,
        &work.region,
        Some(&job.plan.name),
        kinds,
        &job.pacer,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            job.log(&format!(
                "Cannot look for a killed run's recovery points (creating anew): {e}"
            ));
            return out;
        }
    };
    for p in points {
        // Exact: this ledger's agent, one of its killed jobs, that job's
        // start, and made after it started (a minute's clock skew allowed).
        // Another ledger's job of the same number is never adopted.
        let ours = job
            .adopt
            .iter()
            .any(|k| k.made(|t| p.tags.get(t).cloned()) && p.created.timestamp() >= k.started - 60);
        if !ours
            || p.copy_of().is_some()
            || matches!(p.state, PointState::Failed | PointState::Unusable)
        {
            continue;
        }
        let made = match p.kind {
            PointKind::SnapshotSet => Made::Snapshots(
                p.snapshots
                    .iter()
                    .map(|s| (s.id.clone(), s.volume_id.clone()))
                    .collect(),
            ),
            PointKind::Ami => Made::Image(p.id()),
            PointKind::DbSnapshot => Made::DbSnapshot(p.id()),
            PointKind::ClusterSnapshot => Made::ClusterSnapshot(p.id()),
        };
        let name = p.name().unwrap_or_default().to_string();
        out.insert(p.source.clone(), (name, made));
    }
    out
}

fn item_for(
    work: &RegionWork,
    s: &Selected,
    status: &str,
    created: Vec<String>,
    error: Option<String>,
) -> Item {
    Item {
        tenant: work.session.tenant.name.clone(),
        account: work.account.clone(),
        region: work.region.clone(),
        kind: s.resource.kind().to_string(),
        source_id: s.resource.id().to_string(),
        status: status.to_string(),
        created,
        size_gib: s.resource.size_gib(),
        error,
        detail: json!({"group": s.group, "az": s.resource.az()}),
    }
}

async fn start_one<'a>(
    job: &Job<'_>,
    work: &RegionWork,
    seq: usize,
    s: &'a Selected,
    deadline: Instant,
) -> Result<Pending<'a>, Item> {
    let tenant = &work.session.tenant.name;
    let region = &work.region;
    let site = Site { tenant, region };
    let id = s.resource.id().to_string();
    let unix = chrono::Utc::now().timestamp();
    let plan = &job.plan;
    let on_retry = |e: &AwsError, wait: Duration| {
        job.log(&format!(
            "Retrying {} for [{id}] in [{tenant}/{region}] after {}: {} (in {} ms)",
            e.action,
            e.code,
            e.message,
            wait.as_millis()
        ));
    };
    let fail = |e: AwsError| {
        job.log(&format!("Failed to back up [{id}]: {e}"));
        let mut item = item_for(work, s, "Failed", vec![], Some(e.to_string()));
        if e.code == crate::retry::UNKNOWN {
            item.detail["unknown"] = json!(true);
        }
        item
    };
    let ec2 = work.session.ec2(region);
    let rds = work.session.rds(region);
    let (name, made) = match (&s.resource, plan.method) {
        (Resource::Instance(inst), Method::SnapshotSet) => {
            let name = tags::recovery_point_name(plan.id, job.number, seq, unix);
            let mut t = tags::base(&job.identity, &plan.name, &inst.id, &name);
            t.extend(tags::instance_config(inst));
            let spec = aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Snapshot)
                .set_tags(Some(ec2_tags(&t)))
                .build();
            let description = describe(&s.resource, job.number);
            job.log(&format!(
                "CreateSnapshots for instance [{}] volumes [{}] in [{tenant}/{region}/{}] name [{name}]",
                inst.id,
                inst.volumes.iter().map(|v| v.volume_id.as_str()).collect::<Vec<_>>().join(","),
                inst.az
            ));
            let (r, _) = create_with_retry(
                deadline,
                || {
                    let (ec2, spec, description) = (&ec2, spec.clone(), description.clone());
                    async move {
                        let _turn = job
                            .pacer
                            .turn(&work.account, region, Bucket::CreateSnapshot)
                            .await;
                        let out = Box::pin(
                            ec2.create_snapshots()
                                .instance_specification(
                                    aws_sdk_ec2::types::InstanceSpecification::builder()
                                        .instance_id(&inst.id)
                                        .exclude_boot_volume(false)
                                        .build(),
                                )
                                .description(description)
                                .tag_specifications(spec)
                                .customize()
                                .config_override(no_sdk_retries_ec2())
                                .send(),
                        )
                        .await
                        .map_err(|e| {
                            site.err("CreateSnapshots", Some(&inst.id), e.into_service_error())
                        })?;
                        Ok(out
                            .snapshots()
                            .iter()
                            .filter_map(|x| {
                                Some((
                                    x.snapshot_id()?.to_string(),
                                    x.volume_id().unwrap_or_default().to_string(),
                                ))
                            })
                            .collect::<Vec<_>>())
                    }
                },
                || Box::pin(find_snapshot_set(job, work, &inst.id)),
                on_retry,
            )
            .await;
            let snaps = r.map_err(fail)?;
            job.log(&format!(
                "Created snapshot set for [{}]: [{}]",
                inst.id,
                snaps
                    .iter()
                    .map(|(s, v)| format!("{s}<-{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            (name, Made::Snapshots(snaps))
        }
        (Resource::Instance(inst), Method::Ami) => {
            let name = tags::recovery_point_name(plan.id, job.number, seq, unix);
            let mut t = tags::base(&job.identity, &plan.name, &inst.id, &name);
            // The snapshots behind the AMI carry the marker from creation too
            // (the tenant policy allows tags only at creation); only _GX_AMI_,
            // the id not known yet, is added once the image is available.
            let snap_spec = aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Snapshot)
                .set_tags(Some(ec2_tags(&t)))
                .build();
            t.extend(tags::instance_config(inst));
            let spec = aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Image)
                .set_tags(Some(ec2_tags(&t)))
                .build();
            let description = describe(&s.resource, job.number);
            job.log(&format!(
                "CreateImage (NoReboot) for instance [{}] in [{tenant}/{region}/{}] name [{name}]",
                inst.id, inst.az
            ));
            let (r, _) = create_with_retry(
                deadline,
                || {
                    let (ec2, spec, snap_spec, description, name) = (
                        &ec2,
                        spec.clone(),
                        snap_spec.clone(),
                        description.clone(),
                        name.clone(),
                    );
                    async move {
                        let _turn = job
                            .pacer
                            .turn(&work.account, region, Bucket::CreateImage)
                            .await;
                        let out = Box::pin(
                            ec2.create_image()
                                .instance_id(&inst.id)
                                .name(name)
                                .description(description)
                                .no_reboot(true)
                                .tag_specifications(spec)
                                .tag_specifications(snap_spec)
                                .customize()
                                .config_override(no_sdk_retries_ec2())
                                .send(),
                        )
                        .await
                        .map_err(|e| {
                            site.err("CreateImage", Some(&inst.id), e.into_service_error())
                        })?;
                        Ok(out.image_id().unwrap_or_default().to_string())
                    }
                },
                || Box::pin(find_image(job, work, &inst.id)),
                on_retry,
            )
            .await;
            let image = r.map_err(fail)?;
            job.log(&format!("Created image [{image}] for [{}]", inst.id));
            (name, Made::Image(image))
        }
        (Resource::DbInstance(_), _) | (Resource::DbCluster(_), _) => {
            let cluster = matches!(s.resource, Resource::DbCluster(_));
            let source = s.resource.id();
            let name = tags::rds_identifier(plan.id, job.number, seq, unix, &job.identity.agent);
            let mut t = tags::base(
                &job.identity,
                &plan.name,
                source,
                &tags::recovery_point_name(plan.id, job.number, seq, unix),
            );
            match &s.resource {
                Resource::DbInstance(db) => t.extend(tags::db_config(db)),
                Resource::DbCluster(c) => t.extend(tags::cluster_config(c)),
                Resource::Instance(_) => {}
            }
            let (action, what) = if cluster {
                ("CreateDBClusterSnapshot", "Aurora cluster")
            } else {
                ("CreateDBSnapshot", "DB instance")
            };
            job.log(&format!(
                "{action} [{name}] of {what} [{source}] in [{tenant}/{region}]"
            ));
            let (r, _) = create_with_retry(
                deadline,
                || {
                    let (rds, t, name) = (&rds, t.clone(), name.clone());
                    async move {
                        let _turn = job.pacer.turn(&work.account, region, Bucket::Rds).await;
                        let sent = if cluster {
                            Box::pin(
                                rds.create_db_cluster_snapshot()
                                    .db_cluster_snapshot_identifier(&name)
                                    .db_cluster_identifier(source)
                                    .set_tags(Some(rds_tags(&t)))
                                    .customize()
                                    .config_override(no_sdk_retries_rds())
                                    .send(),
                            )
                            .await
                            .map(|_| ())
                            .map_err(|e| site.err(action, Some(source), e.into_service_error()))
                        } else {
                            Box::pin(
                                rds.create_db_snapshot()
                                    .db_snapshot_identifier(&name)
                                    .db_instance_identifier(source)
                                    .set_tags(Some(rds_tags(&t)))
                                    .customize()
                                    .config_override(no_sdk_retries_rds())
                                    .send(),
                            )
                            .await
                            .map(|_| ())
                            .map_err(|e| site.err(action, Some(source), e.into_service_error()))
                        };
                        match sent {
                            Ok(()) => Ok(name),
                            // Our identifier is deterministic and carries this
                            // job's number, start time and agent id: "already
                            // exists" after an ambiguous failure is the
                            // snapshot this very call made, never another
                            // agent's.
                            Err(e)
                                if e.code.starts_with("DBSnapshotAlreadyExists")
                                    || e.code.starts_with("DBClusterSnapshotAlreadyExists") =>
                            {
                                Ok(name)
                            }
                            Err(e) => Err(e),
                        }
                    }
                },
                || async { Ok(None) },
                on_retry,
            )
            .await;
            let id = r.map_err(fail)?;
            let made = if cluster {
                Made::ClusterSnapshot(id)
            } else {
                Made::DbSnapshot(id)
            };
            (name, made)
        }
    };
    Ok(Pending {
        selected: s,
        name,
        made,
        extra: vec![],
    })
}

/// After an ambiguous CreateSnapshots failure: did AWS make the set anyway?
async fn find_snapshot_set(
    job: &Job<'_>,
    work: &RegionWork,
    instance: &str,
) -> Result<Option<Vec<(String, String)>>, AwsError> {
    let site = Site {
        tenant: &work.session.tenant.name,
        region: &work.region,
    };
    let ec2 = work.session.ec2(&work.region);
    job.pacer
        .take(&work.account, &work.region, Bucket::Describe)
        .await;
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .set_filters(Some(identity_filters(&job.identity)))
        .filters(tag_filter(tags::SOURCE, instance))
        .send()
        .await
        .map_err(|e| site.err("DescribeSnapshots", Some(instance), e.into_service_error()))?;
    let found: Vec<(String, String)> = out
        .snapshots()
        .iter()
        .filter_map(|s| {
            Some((
                s.snapshot_id()?.to_string(),
                s.volume_id().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    if !found.is_empty() {
        job.log(&format!(
            "Adopted existing snapshot set of [{instance}] after an ambiguous failure"
        ));
    }
    Ok((!found.is_empty()).then_some(found))
}

async fn find_image(
    job: &Job<'_>,
    work: &RegionWork,
    instance: &str,
) -> Result<Option<String>, AwsError> {
    let site = Site {
        tenant: &work.session.tenant.name,
        region: &work.region,
    };
    let ec2 = work.session.ec2(&work.region);
    job.pacer
        .take(&work.account, &work.region, Bucket::Describe)
        .await;
    let out = ec2
        .describe_images()
        .owners("self")
        .set_filters(Some(identity_filters(&job.identity)))
        .filters(tag_filter(tags::SOURCE, instance))
        .send()
        .await
        .map_err(|e| site.err("DescribeImages", Some(instance), e.into_service_error()))?;
    Ok(out
        .images()
        .first()
        .and_then(|i| i.image_id())
        .map(str::to_string))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Pending(String),
    Done,
    Failed(String),
}

/// Polls every pending recovery point of the region in batches until all are
/// done or the deadline passes.
/// Returns the items of the points that completed (to be locked once the
/// region's duplicates are resolved).
async fn wait_all(
    job: &Job<'_>,
    work: &RegionWork,
    mut pending: Vec<Pending<'_>>,
    deadline: Instant,
) -> Vec<Item> {
    let mut completed = Vec::new();
    let tenant = &work.session.tenant.name;
    let region = &work.region;
    let mut delay = job.options.poll_initial;
    let mut polls = 0u32;
    // The last poll's error, while polls fail: an item still pending at the
    // timeout says why it could not be seen, not only that it was pending.
    let mut poll_error: Option<AwsError>;
    while !pending.is_empty() {
        polls += 1;
        let states = match poll(job, work, &pending).await {
            Ok(s) => {
                poll_error = None;
                s
            }
            Err(e) if crate::retry::classify(&e.code) == crate::retry::Class::Fatal => {
                // Access denied, a role that can no longer be assumed:
                // waiting longer cannot help.
                job.log(&format!("Poll failed, giving up on waiting: {e}"));
                for p in pending.drain(..) {
                    let mut item = item_for(work, p.selected, "Failed", p.made.ids(), Some(format!(
                        "{} made, but its completion could not be checked: {e}; it stays tagged _GX_BACKUP_={} _GX_AGENT_={} and is found by `rolesnap list`",
                        p.made.ids().join(","),
                        job.number,
                        job.identity.agent
                    )));
                    item.detail["name"] = json!(p.name);
                    job.record(&item);
                }
                return completed;
            }
            Err(e) => {
                job.log(&format!("Poll failed (will retry): {e}"));
                poll_error = Some(e);
                BTreeMap::new()
            }
        };
        let mut still = Vec::new();
        for mut p in pending {
            let ids = p.made.ids();
            let st: Vec<State> = ids
                .iter()
                .map(|id| {
                    states
                        .get(id)
                        .cloned()
                        .unwrap_or(State::Pending("not listed yet".into()))
                })
                .collect();
            if let Some(State::Failed(why)) = st.iter().find(|s| matches!(s, State::Failed(_))) {
                let mut created = ids.clone();
                created.extend(p.extra.clone());
                let item = item_for(
                    work,
                    p.selected,
                    "Failed",
                    created,
                    Some(format!(
                        "tenant {tenant} region {region}: recovery point {} of {} failed: {why}",
                        ids.join(","),
                        p.selected.resource.id()
                    )),
                );
                job.log(item.error.as_deref().unwrap_or_default());
                job.record(&item);
            } else if st.iter().all(|s| *s == State::Done) {
                if let Made::Image(image) = &p.made {
                    match tag_image_snapshots(job, work, &p, image, deadline).await {
                        Ok(snaps) => p.extra = snaps,
                        Err(e) => {
                            let item = item_for(work, p.selected, "Failed", ids.clone(), Some(format!(
                                "image {image} is available but its snapshots could not be tagged: {e}"
                            )));
                            job.log(item.error.as_deref().unwrap_or_default());
                            job.record(&item);
                            continue;
                        }
                    }
                }
                let mut created = ids.clone();
                created.extend(p.extra.clone());
                let mut item = item_for(work, p.selected, "Completed", created, None);
                item.detail["name"] = json!(p.name);
                item.detail["method"] = json!(match p.made {
                    Made::Snapshots(_) => "snapshot-set",
                    Made::Image(_) => "ami",
                    Made::DbSnapshot(_) => "db-snapshot",
                    Made::ClusterSnapshot(_) => "db-cluster-snapshot",
                });
                job.log(&format!(
                    "Recovery point of [{}] completed in [{tenant}/{region}]: [{}]",
                    p.selected.resource.id(),
                    item.created.join(", ")
                ));
                job.record(&item);
                completed.push(item);
            } else {
                still.push(p);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() + delay > deadline {
            let timeout = job.options.wait_timeout;
            for p in pending.drain(..) {
                let why = match &poll_error {
                    Some(e) => format!("could not be checked: the polls failed, the last with {e}"),
                    None => "still pending".to_string(),
                };
                let mut item = item_for(work, p.selected, "Pending", p.made.ids(), Some(format!(
                    "tenant {tenant} region {region}: {} {why} after the {} s wait timeout; it stays tagged _GX_BACKUP_={} _GX_AGENT_={} and is found by `rolesnap list`",
                    p.made.ids().join(","),
                    timeout.as_secs(),
                    job.number,
                    job.identity.agent
                )));
                item.detail["name"] = json!(p.name);
                job.log(item.error.as_deref().unwrap_or_default());
                job.record(&item);
            }
            break;
        }
        job.log(&format!(
            "Waiting for {} recovery point(s) in [{tenant}/{region}] (poll {polls}, next in {} ms)",
            pending.len(),
            delay.as_millis()
        ));
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(job.options.poll_max);
    }
    completed
}

/// One describe call per kind present, filtered by the job's tag.
async fn poll(
    job: &Job<'_>,
    work: &RegionWork,
    pending: &[Pending<'_>],
) -> Result<BTreeMap<String, State>, AwsError> {
    let site = Site {
        tenant: &work.session.tenant.name,
        region: &work.region,
    };
    // This job's tag, and those of killed jobs whose points it adopted; all
    // of this agent (another ledger's jobs of the same numbers are not ours).
    let job_tags: Vec<String> = std::iter::once(job.number)
        .chain(job.adopt.iter().map(|k| k.job))
        .map(|j| j.to_string())
        .collect();
    let job_filter = || {
        let mut f = vec![aws_sdk_ec2::types::Filter::builder()
            .name(format!("tag:{}", tags::BACKUP))
            .set_values(Some(job_tags.clone()))
            .build()];
        if !job.identity.agent.is_empty() {
            f.push(tag_filter(tags::AGENT, &job.identity.agent));
        }
        f
    };
    let mut states = BTreeMap::new();
    let has = |f: fn(&Made) -> bool| pending.iter().any(|p| f(&p.made));
    if has(|m| matches!(m, Made::Snapshots(_))) {
        let ec2 = work.session.ec2(&work.region);
        job.pacer
            .take(&work.account, &work.region, Bucket::Describe)
            .await;
        let mut pages = ec2
            .describe_snapshots()
            .owner_ids("self")
            .max_results(crate::catalog::SNAPSHOTS_PER_PAGE)
            .set_filters(Some(job_filter()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| site.err("DescribeSnapshots", None, e.into_service_error()))?;
            // The first page's token was taken above; a next page takes its own.
            if page.next_token().is_some_and(|t| !t.is_empty()) {
                job.pacer
                    .take(&work.account, &work.region, Bucket::Describe)
                    .await;
            }
            for s in page.snapshots() {
                let st = match s.state().map(|x| x.as_str()) {
                    Some("completed") => State::Done,
                    Some("error") => {
                        State::Failed(s.state_message().unwrap_or("error").to_string())
                    }
                    other => State::Pending(format!(
                        "{} {}",
                        other.unwrap_or("?"),
                        s.progress().unwrap_or("")
                    )),
                };
                states.insert(s.snapshot_id().unwrap_or_default().to_string(), st);
            }
        }
    }
    if has(|m| matches!(m, Made::Image(_))) {
        let ec2 = work.session.ec2(&work.region);
        job.pacer
            .take(&work.account, &work.region, Bucket::Describe)
            .await;
        let out = ec2
            .describe_images()
            .owners("self")
            .set_filters(Some(job_filter()))
            .send()
            .await
            .map_err(|e| site.err("DescribeImages", None, e.into_service_error()))?;
        for i in out.images() {
            let st = match i.state().map(|x| x.as_str()) {
                Some("available") => State::Done,
                Some("pending") | None => State::Pending("pending".into()),
                Some(other) => State::Failed(format!(
                    "image state {other}: {}",
                    i.state_reason().and_then(|r| r.message()).unwrap_or("")
                )),
            };
            states.insert(i.image_id().unwrap_or_default().to_string(), st);
        }
    }
    let wanted: BTreeSet<String> = pending
        .iter()
        .filter(|p| matches!(p.made, Made::DbSnapshot(_) | Made::ClusterSnapshot(_)))
        .flat_map(|p| p.made.ids())
        .collect();
    let rds_state = |status: Option<&str>| match status {
        Some("available") => State::Done,
        Some("creating") | Some("copying") | Some("pending") | None => {
            State::Pending(status.unwrap_or("?").to_string())
        }
        Some(other) => State::Failed(format!("status {other}")),
    };
    if has(|m| matches!(m, Made::DbSnapshot(_))) {
        let rds = work.session.rds(&work.region);
        job.pacer
            .take(&work.account, &work.region, Bucket::Rds)
            .await;
        let mut pages = rds
            .describe_db_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| site.err("DescribeDBSnapshots", None, e.into_service_error()))?;
            for s in page.db_snapshots() {
                let id = s.db_snapshot_identifier().unwrap_or_default();
                if wanted.contains(id) {
                    states.insert(id.to_string(), rds_state(s.status()));
                }
            }
        }
    }
    if has(|m| matches!(m, Made::ClusterSnapshot(_))) {
        let rds = work.session.rds(&work.region);
        job.pacer
            .take(&work.account, &work.region, Bucket::Rds)
            .await;
        let mut pages = rds
            .describe_db_cluster_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                site.err("DescribeDBClusterSnapshots", None, e.into_service_error())
            })?;
            for s in page.db_cluster_snapshots() {
                let id = s.db_cluster_snapshot_identifier().unwrap_or_default();
                if wanted.contains(id) {
                    states.insert(id.to_string(), rds_state(s.status()));
                }
            }
        }
    }
    Ok(states)
}

/// Adds `_GX_AMI_` to the snapshots backing an available AMI. They got the
/// rest of the contract (`_GX_BACKUP_` …) at creation, from CreateImage's
/// snapshot TagSpecification; the tenant policy allows this one tag, and only
/// on snapshots that already carry `_GX_BACKUP_` (policy::AMI_SNAPSHOT_TAG).
async fn tag_image_snapshots(
    job: &Job<'_>,
    work: &RegionWork,
    _p: &Pending<'_>,
    image: &str,
    deadline: Instant,
) -> Result<Vec<String>, AwsError> {
    let t = vec![(tags::AMI.to_string(), image.to_string())];
    tag_backing_snapshots(
        job,
        &work.session,
        &work.account,
        &work.region,
        image,
        t,
        deadline,
    )
    .await
}

/// Tags every snapshot backing `image` with `t`; returns their ids.
pub(crate) async fn tag_backing_snapshots(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    region: &str,
    image: &str,
    t: Vec<(String, String)>,
    deadline: Instant,
) -> Result<Vec<String>, AwsError> {
    let site = Site {
        tenant: &session.tenant.name,
        region,
    };
    let ec2 = session.ec2(region);
    job.pacer.take(account, region, Bucket::Describe).await;
    let out = ec2
        .describe_images()
        .image_ids(image)
        .send()
        .await
        .map_err(|e| site.err("DescribeImages", Some(image), e.into_service_error()))?;
    let snaps: Vec<String> = out
        .images()
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect();
    if snaps.is_empty() {
        return Ok(snaps);
    }
    let tag_list = ec2_tags(&t);
    let (r, _) = create_with_retry(
        deadline,
        || {
            let (ec2, snaps, tag_list) = (&ec2, snaps.clone(), tag_list.clone());
            async move {
                job.pacer.take(account, region, Bucket::CreateTags).await;
                ec2.create_tags()
                    .set_resources(Some(snaps))
                    .set_tags(Some(tag_list))
                    .send()
                    .await
                    .map_err(|e| site.err("CreateTags", Some(image), e.into_service_error()))?;
                Ok(())
            }
        },
        || async { Ok(None) },
        |e, wait| {
            job.log(&format!(
                "Retrying CreateTags on snapshots of [{image}] after {} (in {} ms)",
                e.code,
                wait.as_millis()
            ))
        },
    )
    .await;
    r?;
    job.log(&format!(
        "Tagged snapshots [{}] of image [{image}] with _GX_AMI_",
        snaps.join(", ")
    ));
    Ok(snaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(source: &str, status: &str, gib: i64) -> Item {
        Item {
            tenant: "alpha".into(),
            account: "222222222222".into(),
            region: "us-east-1".into(),
            kind: "snapshot-set".into(),
            source_id: source.into(),
            status: status.into(),
            created: vec![],
            size_gib: gib,
            error: (!crate::job::item_ok(status)).then(|| format!("{source} {status}")),
            detail: serde_json::Value::Null,
        }
    }

    fn key(status: &str) -> (String, String, String) {
        ("alpha".into(), "us-east-1".into(), status.into())
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
