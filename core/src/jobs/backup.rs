//! Snap Backup: create the recovery points of one tenant × region and wait for
//! them to complete.
//!
//! EC2 instances get either one `CreateSnapshots` call (a crash-consistent set
//! across the instance's volumes) or `CreateImage` with NoReboot; RDS instances
//! `CreateDBSnapshot`, Aurora clusters `CreateDBClusterSnapshot`. Everything is
//! tagged at creation. Waiting is batched and starts with the first point
//! made: each poll asks by id for the region's points not yet settled.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde_json::json;
use tokio::time::Instant;

use crate::aws::credentials::TenantSession;
use crate::aws::error::AwsError;
use crate::aws::identity_filters;
use crate::aws::pace::Bucket;
use crate::config::Method;
use crate::discovery::{Instance, Resource, Selected};
use crate::jobs::work::Job;
use crate::store::ledger::{Item, ItemKind, ItemStatus};
use crate::tags;

mod wait;

use wait::wait_all;

/// Create calls in flight per account × region. The pacer keeps the rate
/// inside EC2's CreateSnapshots bucket (100 burst, 5/s); this only bounds
/// open connections.
pub const CREATES_IN_FLIGHT: usize = 16;

/// One tenant × region's share of a job.
pub struct RegionWork {
    pub session: TenantSession,
    pub account: String,
    pub region: String,
    /// (sequence number in the job, resource): taken by the creates, each
    /// freed once its create has returned (boxed, so that what is freed is
    /// the resource itself, not a slot in a list that lives until the
    /// region's last create).
    pub resources: Vec<(usize, Box<Selected>)>,
    /// Every selected resource in the compact form kept while its point is
    /// waited for and checked for duplicates.
    pub sources: Vec<Source>,
}

impl RegionWork {
    pub fn new(
        session: TenantSession,
        account: String,
        region: String,
        resources: Vec<(usize, Selected)>,
    ) -> RegionWork {
        // A region's resources share a few groups and AZs: one copy each.
        let mut shared = Shared::default();
        let sources = resources
            .iter()
            .map(|(_, s)| Source::of(s, &mut shared))
            .collect();
        RegionWork {
            session,
            account,
            region,
            resources: resources
                .into_iter()
                .map(|(n, s)| (n, Box::new(s)))
                .collect(),
            sources,
        }
    }
}

/// What a job keeps of a selected resource once its create is made: what
/// its item, the duplicate check and a second look at an unknown create
/// need. The instance's volumes and recorded configuration
/// (`tags::instance_config`) are only needed for the create itself. One is
/// kept per selected resource until the region is done, so it is small:
/// group and AZ are shared by the region's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub kind: ItemKind,
    pub id: Box<str>,
    pub group: Arc<str>,
    pub az: Option<Arc<str>>,
    pub size_gib: i64,
}

/// The group and AZ names a region's sources share.
#[derive(Default)]
struct Shared(Vec<Arc<str>>);

impl Shared {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(a) = self.0.iter().find(|a| &***a == name) {
            return a.clone();
        }
        let a: Arc<str> = name.into();
        self.0.push(a.clone());
        a
    }
}

impl Source {
    fn of(s: &Selected, shared: &mut Shared) -> Source {
        Source {
            kind: s.resource.item_kind(),
            id: s.resource.id().into(),
            group: shared.get(&s.group),
            az: s.resource.az().map(|az| shared.get(az)),
            size_gib: s.resource.size_gib(),
        }
    }

    pub fn is_instance(&self) -> bool {
        self.kind == ItemKind::Instance
    }
}

/// The ids of a point being made, in their smallest form: a large fleet
/// holds one for every point not yet confirmed (BENCHMARKS.md, "Memory").
#[derive(Debug, Clone)]
enum Made {
    /// The set's snapshot ids.
    Snapshots(Box<[Box<str>]>),
    Image(Box<str>),
    DbSnapshot(Box<str>),
    ClusterSnapshot(Box<str>),
}

impl Made {
    /// A snapshot set from CreateSnapshots' (snapshot id, volume id) pairs.
    fn set(pairs: Vec<(String, String)>) -> Made {
        Made::Snapshots(pairs.into_iter().map(|(id, _)| id.into()).collect())
    }

    fn each_id(&self) -> impl Iterator<Item = &str> {
        let ids: &[Box<str>] = match self {
            Made::Snapshots(s) => s,
            Made::Image(i) | Made::DbSnapshot(i) | Made::ClusterSnapshot(i) => {
                std::slice::from_ref(i)
            }
        };
        ids.iter().map(|i| &**i)
    }

    fn ids(&self) -> Vec<String> {
        self.each_id().map(str::to_string).collect()
    }
}

/// A recovery point being made, with the compact form of its source (the
/// region's own, in `RegionWork::sources`): the resource itself is dropped
/// once its create has returned.
struct Pending<'w> {
    src: &'w Source,
    name: Box<str>,
    made: Made,
    /// Image: its backing snapshots once tagged.
    extra: Vec<String>,
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

/// The description of an instance's recovery point: the job, the instance and its volumes.
fn describe_instance(i: &Instance, job: u64) -> String {
    let s = format!(
        "rolesnap job {job}: {} {}",
        i.id,
        i.volumes
            .iter()
            .map(|v| format!("{} ({})", v.volume_id, v.device))
            .collect::<Vec<_>>()
            .join(" ")
    );
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
        kind: s.resource.item_kind(),
        source_id: s.resource.id().to_string(),
        status: ItemStatus::DryRun,
        created: vec![],
        size_gib: s.resource.size_gib(),
        error: None,
        detail: json!({"would_call": action, "name": name, "group": s.group, "az": s.resource.az()}),
    }
}

/// Backs up one tenant × region: creates, waits, records. Never fails as a
/// whole: each resource ends in an [`Item`], given to [`Job::record`].
pub async fn backup_region(job: &Job<'_>, mut work: RegionWork, ahead: Ahead<'_>) {
    let resources = std::mem::take(&mut work.resources);
    let work = &work;
    if job.options.dry_run {
        for (seq, s) in &resources {
            job.record(&plan_item(job, work, *seq, s));
        }
        return;
    }
    job.log(&format!(
        "Tenant [{}] account [{}] region [{}]: backing up {} resource(s) with method [{}]",
        work.session.tenant.name,
        work.account,
        work.region,
        work.sources.len(),
        job.plan.method
    ));
    let deadline = Instant::now() + job.options.wait_timeout;
    // Points are waited for as they are made: the first polls go out while
    // the region's later creates are still paced.
    let (made, arriving) = futures::channel::mpsc::unbounded();
    // Completed items are kept for the lock only; the ledger has them.
    let keep = crate::aws::lock::source_rule(job.plan, &work.region).is_some();
    // Each step is boxed, so that a region's future holds only the step it
    // is in: an async fn is as large as its largest step, and a fleet's
    // regions may all wait for their points at once (on AWS, for minutes).
    let (unknown, mut completed) = tokio::join!(
        Box::pin(start_all(job, work, resources, ahead, deadline, made)),
        Box::pin(wait_all(job, work, arriving, deadline, keep))
    );
    let found = Box::pin(recheck_unknown(job, work, unknown)).await;
    if !found.is_empty() {
        completed.extend(Box::pin(wait_all(job, work, stream::iter(found), deadline, keep)).await);
    }
    let removed = Box::pin(crate::jobs::duplicates::resolve_region(job, work, deadline)).await;
    Box::pin(lock_completed(job, work, completed, &removed)).await;
}

/// What a job lets discovery hand to the creates at once: a budget of
/// selected resources whose creates have not returned, and a number of
/// regions still creating. Discovery of further tenant × regions waits while
/// either is spent.
pub struct Admission {
    selected: tokio::sync::Semaphore,
    regions: tokio::sync::Semaphore,
}

impl Default for Admission {
    fn default() -> Admission {
        Admission::new(SELECTED_AHEAD, REGIONS_CREATING)
    }
}

impl Admission {
    pub fn new(selected: usize, regions: usize) -> Admission {
        Admission {
            selected: tokio::sync::Semaphore::new(selected),
            regions: tokio::sync::Semaphore::new(regions.max(1)),
        }
    }
}

/// A region's admission: one of [`REGIONS_CREATING`], given back when its
/// creates have all returned, and its share of [`SELECTED_AHEAD`], one given
/// back as each resource's create returns (or it is adopted).
pub struct Ahead<'s> {
    budget: &'s tokio::sync::Semaphore,
    held: usize,
    _region: Option<tokio::sync::SemaphorePermit<'s>>,
}

/// Selected resources whose creates have not returned yet, across a job:
/// discovery of further regions waits while this many are held. It bounds
/// the memory of a large fleet (each held resource is its volumes and
/// recorded configuration, 0.5–1 KB) without slowing one that fits: every
/// region's creates are paced by its own buckets, and 8 192 creates are
/// more than the calls in flight (`[admin] max-calls-in-flight`) carry in
/// the seconds a region's burst takes.
pub const SELECTED_AHEAD: usize = 8192;

/// Tenant × regions whose creates run at once. A region that is still
/// creating keeps every selected resource's compact form, its waiting points
/// and its clients; without a bound, a fleet of many small regions would
/// have them all at once, each creating slowly, and a job's memory would grow
/// with the fleet (BENCHMARKS.md, "Memory"). 32 regions draw on 32 of AWS's
/// create buckets, more than `[admin] max-calls-in-flight` (64) carries at
/// 100–300 ms a call once their bursts are spent. A region gives its place
/// back when its creates have returned, not when its points complete: AWS
/// may take hours to complete a first full snapshot, and the regions behind
/// it should not wait for that.
pub const REGIONS_CREATING: usize = 32;

impl<'s> Ahead<'s> {
    /// Waits for a place among the regions creating, then until `n` more
    /// selected resources may be held (a region larger than the whole budget
    /// takes all of it).
    pub async fn take(admission: &'s Admission, n: usize) -> Ahead<'s> {
        // The semaphores are never closed.
        let region = admission.regions.acquire().await.ok();
        let budget = &admission.selected;
        let held = n.min(SELECTED_AHEAD);
        // `held` fits in u32 (≤ SELECTED_AHEAD).
        if let Ok(p) = budget.acquire_many(held as u32).await {
            p.forget();
        }
        Ahead {
            budget,
            held,
            _region: region,
        }
    }

    fn release_one(&mut self) {
        if self.held > 0 {
            self.held -= 1;
            self.budget.add_permits(1);
        }
    }
}

impl Drop for Ahead<'_> {
    fn drop(&mut self) {
        self.budget.add_permits(self.held);
    }
}

/// A create that did not give a recovery point.
struct NotMade {
    item: Item,
    /// Whether AWS may have made it all the same (an ambiguous failure whose
    /// check could not tell): asked again at the region's end, never created
    /// again.
    unknown: bool,
}

/// Adopts what killed jobs made, and starts every other resource's create.
/// Each point to wait for goes to `made` as soon as it is known; returns the
/// creates whose outcome is unknown.
async fn start_all<'w>(
    job: &Job<'_>,
    work: &'w RegionWork,
    resources: Vec<(usize, Box<Selected>)>,
    mut ahead: Ahead<'_>,
    deadline: Instant,
    made: futures::channel::mpsc::UnboundedSender<Pending<'w>>,
) -> Vec<Item> {
    let mut adopted = adoptable(job, work).await;
    let mut fresh = Vec::new();
    // `sources` is the selection's compact form, in the same order.
    for ((seq, s), src) in resources.into_iter().zip(&work.sources) {
        match adopted.remove(s.resource.id()) {
            Some((name, point)) => {
                job.log(&format!(
                    "Adopting [{}] of [{}] from killed job(s) [{}] of agent [{}] instead of creating it again",
                    point.ids().join(","),
                    s.resource.id(),
                    job.adopt.iter().map(|k| k.job.to_string()).collect::<Vec<_>>().join(","),
                    job.identity.agent
                ));
                made_tx(
                    &made,
                    Pending {
                        src,
                        name,
                        made: point,
                        extra: vec![],
                    },
                );
                ahead.release_one();
            }
            None => fresh.push((seq, s, src)),
        }
    }
    // DB snapshots first: they draw on no EC2 bucket and take longest to
    // complete, so they complete while the instances' creates are paced.
    fresh.sort_by_key(|(_, s, _)| matches!(s.resource, Resource::Instance(_)));
    // The creates to come: the pacer lets the last of them spend its reserve.
    let ec2_creates = fresh
        .iter()
        .filter(|(_, s, _)| matches!(s.resource, Resource::Instance(_)))
        .count();
    let bucket = match job.plan.method {
        Method::SnapshotSet => Bucket::CreateSnapshot,
        Method::Ami => Bucket::CreateImage,
    };
    job.pacer
        .expect(&work.account, &work.region, bucket, ec2_creates);
    let mut unknown = Vec::new();
    // Boxed: a finished create's state is freed with its box, not kept in
    // the stream's task slot while a waker of it is still held elsewhere.
    let mut started = stream::iter(fresh)
        .map(|(seq, s, src)| Box::pin(start_one(job, work, seq, s, src, deadline)))
        .buffer_unordered(CREATES_IN_FLIGHT);
    while let Some(r) = started.next().await {
        ahead.release_one();
        match r {
            Ok(p) => {
                let mut item = item_for(work, p.src, ItemStatus::Pending, p.made.ids(), None);
                item.detail["name"] = json!(p.name);
                item.detail["waiting"] = json!(true);
                job.note_made(&item);
                (job.on_started)(&item.source_id);
                made_tx(&made, p);
            }
            Err(NotMade {
                item,
                unknown: true,
            }) => unknown.push(item),
            Err(NotMade { item, .. }) => job.record(&item),
        }
    }
    // The creates are done: the region's polls for completion make their
    // own clients, not kept, while the region waits.
    work.session.release(&work.region);
    unknown
}

/// Hands a point to the region's waiter, which lives as long as the creates.
fn made_tx<'w>(made: &futures::channel::mpsc::UnboundedSender<Pending<'w>>, p: Pending<'w>) {
    // The waiter ends only once every sender is dropped.
    let _ = made.unbounded_send(p);
}

/// Creates whose outcome could not be learnt are asked once more, now that
/// time has passed: what is found is returned to be waited for; what still
/// cannot be checked is recorded as unknown, never created again.
async fn recheck_unknown<'w>(
    job: &Job<'_>,
    work: &'w RegionWork,
    unknown: Vec<Item>,
) -> Vec<Pending<'w>> {
    let mut found = Vec::new();
    let ec2 = job.ec2(&work.session, &work.account, &work.region);
    let mine = || identity_filters(&job.identity);
    for mut item in unknown {
        let Some(src) = work.sources.iter().find(|s| *s.id == *item.source_id) else {
            job.record(&item);
            continue;
        };
        let again = match (src.is_instance(), job.plan.method) {
            (true, Method::SnapshotSet) => ec2
                .find_set(&src.id, mine())
                .await
                .map(|o| o.map(Made::set)),
            (true, Method::Ami) => ec2
                .find_image(&src.id, mine())
                .await
                .map(|o| o.map(|i| Made::Image(i.into()))),
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
                    src,
                    name: item.detail["name"].as_str().unwrap_or_default().into(),
                    made,
                    extra: vec![],
                });
            }
            Ok(None) => {
                item.error = Some(format!(
                    "{}; a later check found nothing made",
                    item.error.unwrap_or_default()
                ));
                job.record(&item);
            }
            Err(_) => job.record(&item),
        }
    }
    found
}

/// EBS Snapshot Lock, as part of each point's creation (lock.rs), once it is
/// known not to be a duplicate (a locked duplicate could not be removed
/// until its lock expired).
async fn lock_completed(
    job: &Job<'_>,
    work: &RegionWork,
    completed: Vec<Item>,
    removed: &BTreeSet<String>,
) {
    let rule = crate::aws::lock::source_rule(job.plan, &work.region);
    if rule.is_none() {
        return;
    }
    for mut item in completed {
        if removed.contains(&item.source_id) {
            continue;
        }
        let lock = crate::aws::lock::after_create(
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
async fn adoptable(job: &Job<'_>, work: &RegionWork) -> BTreeMap<String, (Box<str>, Made)> {
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
            PointKind::SnapshotSet => {
                Made::Snapshots(p.snapshots.iter().map(|s| s.id.as_str().into()).collect())
            }
            PointKind::Ami => Made::Image(p.id().into()),
            PointKind::DbSnapshot => Made::DbSnapshot(p.id().into()),
            PointKind::ClusterSnapshot => Made::ClusterSnapshot(p.id().into()),
        };
        let name: Box<str> = p.name().unwrap_or_default().into();
        out.insert(p.source.clone(), (name, made));
    }
    out
}

fn item_for(
    work: &RegionWork,
    s: &Source,
    status: ItemStatus,
    created: Vec<String>,
    error: Option<String>,
) -> Item {
    Item {
        tenant: work.session.tenant.name.clone(),
        account: work.account.clone(),
        region: work.region.clone(),
        kind: s.kind,
        source_id: s.id.to_string(),
        status,
        created,
        size_gib: s.size_gib,
        error,
        detail: json!({"group": &*s.group, "az": s.az.as_deref()}),
    }
}

async fn start_one<'w>(
    job: &Job<'_>,
    work: &RegionWork,
    seq: usize,
    s: Box<Selected>,
    src: &'w Source,
    deadline: Instant,
) -> Result<Pending<'w>, NotMade> {
    let unix = chrono::Utc::now().timestamp();
    let made = match (&s.resource, job.plan.method) {
        (Resource::Instance(inst), Method::SnapshotSet) => {
            start_set(job, work, inst, seq, unix, deadline).await
        }
        (Resource::Instance(inst), Method::Ami) => {
            start_image(job, work, inst, seq, unix, deadline).await
        }
        (Resource::DbInstance(_) | Resource::DbCluster(_), _) => {
            start_rds(job, work, &s.resource, seq, unix, deadline).await
        }
    };
    match made {
        Ok((name, made)) => Ok(Pending {
            src,
            name: name.into(),
            made,
            extra: vec![],
        }),
        Err(e) => {
            job.log(&format!("Failed to back up [{}]: {e}", s.resource.id()));
            Err(NotMade {
                item: item_for(work, src, ItemStatus::Failed, vec![], Some(e.to_string())),
                unknown: e.code == crate::aws::retry::UNKNOWN,
            })
        }
    }
}

/// CreateSnapshots of every volume of `inst`: a crash-consistent set.
async fn start_set(
    job: &Job<'_>,
    work: &RegionWork,
    inst: &Instance,
    seq: usize,
    unix: i64,
    deadline: Instant,
) -> Result<(String, Made), AwsError> {
    let plan = &job.plan;
    let name = tags::recovery_point_name(plan.id, job.number, seq, unix);
    let mut t = tags::base(&job.identity, &plan.name, &inst.id, &name);
    t.extend(tags::instance_config(inst));
    job.log(&format!(
        "CreateSnapshots for instance [{}] volumes [{}] in [{}/{}/{}] name [{name}]",
        inst.id,
        inst.volumes
            .iter()
            .map(|v| v.volume_id.as_str())
            .collect::<Vec<_>>()
            .join(","),
        work.session.tenant.name,
        work.region,
        inst.az
    ));
    let ec2 = job.ec2(&work.session, &work.account, &work.region);
    let description = describe_instance(inst, job.number);
    let snaps = ec2
        .create_snapshot_set(
            &inst.id,
            description,
            &t,
            identity_filters(&job.identity),
            deadline,
        )
        .await?;
    job.log(&format!(
        "Created snapshot set for [{}]: [{}]",
        inst.id,
        snaps
            .iter()
            .map(|(s, v)| format!("{s}<-{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok((name, Made::set(snaps)))
}

/// CreateImage (NoReboot) of `inst`.
async fn start_image(
    job: &Job<'_>,
    work: &RegionWork,
    inst: &Instance,
    seq: usize,
    unix: i64,
    deadline: Instant,
) -> Result<(String, Made), AwsError> {
    let plan = &job.plan;
    let name = tags::recovery_point_name(plan.id, job.number, seq, unix);
    // The snapshots behind the AMI carry the marker from creation too (the
    // tenant policy allows tags only at creation); only _GX_AMI_, the id not
    // known yet, is added once the image is available.
    let snapshot_tags = tags::base(&job.identity, &plan.name, &inst.id, &name);
    let mut t = snapshot_tags.clone();
    t.extend(tags::instance_config(inst));
    job.log(&format!(
        "CreateImage (NoReboot) for instance [{}] in [{}/{}/{}] name [{name}]",
        inst.id, work.session.tenant.name, work.region, inst.az
    ));
    let ec2 = job.ec2(&work.session, &work.account, &work.region);
    let description = describe_instance(inst, job.number);
    let image = ec2
        .create_image(
            &inst.id,
            &name,
            description,
            &t,
            &snapshot_tags,
            identity_filters(&job.identity),
            deadline,
        )
        .await?;
    job.log(&format!("Created image [{image}] for [{}]", inst.id));
    Ok((name, Made::Image(image.into())))
}

/// CreateDBSnapshot of a DB instance, CreateDBClusterSnapshot of an Aurora cluster.
async fn start_rds(
    job: &Job<'_>,
    work: &RegionWork,
    resource: &Resource,
    seq: usize,
    unix: i64,
    deadline: Instant,
) -> Result<(String, Made), AwsError> {
    let plan = &job.plan;
    let cluster = matches!(resource, Resource::DbCluster(_));
    let source = resource.id();
    let name = tags::rds_identifier(plan.id, job.number, seq, unix, &job.identity.agent);
    let mut t = tags::base(
        &job.identity,
        &plan.name,
        source,
        &tags::recovery_point_name(plan.id, job.number, seq, unix),
    );
    match resource {
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
        "{action} [{name}] of {what} [{source}] in [{}/{}]",
        work.session.tenant.name, work.region
    ));
    let rds = job.rds(&work.session, &work.account, &work.region);
    let id = rds
        .create_snapshot(cluster, source, &name, &t, deadline)
        .await?;
    let made = if cluster {
        Made::ClusterSnapshot(id.into())
    } else {
        Made::DbSnapshot(id.into())
    };
    Ok((name, made))
}

#[cfg(test)]
mod tests {
    use super::{Admission, Ahead, SELECTED_AHEAD};
    use futures::FutureExt;

    /// Discovery waits while the job holds its budget of selected resources;
    /// a region gives one back per returned create and the rest when done,
    /// and a region larger than the budget takes all of it, not more.
    #[tokio::test]
    async fn the_selection_budget_is_held_per_region_and_given_back_as_creates_return() {
        let admission = Admission::new(SELECTED_AHEAD, 8);
        let budget = &admission.selected;
        let mut first = Ahead::take(&admission, 3000).await;
        assert_eq!(budget.available_permits(), SELECTED_AHEAD - 3000);
        first.release_one();
        first.release_one();
        assert_eq!(budget.available_permits(), SELECTED_AHEAD - 2998);
        // A region of twice the budget must wait for all of it.
        let mut big = Box::pin(Ahead::take(&admission, 2 * SELECTED_AHEAD));
        assert!((&mut big).now_or_never().is_none(), "it waits");
        drop(first);
        let big = big.await;
        assert_eq!(big.held, SELECTED_AHEAD);
        assert_eq!(budget.available_permits(), 0);
        drop(big);
        assert_eq!(budget.available_permits(), SELECTED_AHEAD);
    }

    /// At most so many regions are creating at once, however small they
    /// are: the next waits until one is done creating.
    #[tokio::test]
    async fn at_most_the_regions_creating_are_admitted_at_once() {
        let admission = Admission::new(SELECTED_AHEAD, 2);
        let a = Ahead::take(&admission, 1).await;
        let _b = Ahead::take(&admission, 1).await;
        let mut c = Box::pin(Ahead::take(&admission, 1));
        assert!((&mut c).now_or_never().is_none(), "a third region waits");
        drop(a);
        let c = c
            .now_or_never()
            .expect("admitted once a region is done creating");
        assert_eq!(c.held, 1);
        assert_eq!(admission.selected.available_permits(), SELECTED_AHEAD - 2);
    }
}
