//! Snap Copy: copy a plan's recovery points to its copy regions.
//!
//! The work is found, not remembered: for every completed source point the
//! destination region is asked (by `_GX_COPY_OF_`) which of its parts already
//! have a copy, and only the missing ones are copied. So a copy that failed
//! last night is made by the next run, and running twice copies nothing twice.
//!
//! AWS allows 20 concurrent snapshot copies per destination region (EBS and
//! RDS alike): each destination keeps at most [`COPIES_IN_FLIGHT`] copies
//! pending and queues the rest. A slot that frees is refilled at once, and the
//! copies that fill the window are started together. The destination's catalog
//! is listed once, at the start; after that only the copies in flight are
//! asked about, by id, on a timer (see `copy_into`), so waiting costs a few
//! describes per window whatever the region already holds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::json;
use tokio::time::Instant;

use crate::aws::credentials::TenantSession;
use crate::aws::error::AwsError;
use crate::aws::rds::id_filter as rds_id_filter;
use crate::catalog::{list_region, Kinds, PointKind, PointState, RecoveryPoint};
use crate::config::CopyRule;
use crate::jobs::work::Job;
use crate::store::ledger::{Item, ItemKind, ItemStatus};
use crate::tags;

/// AWS's limit of concurrent snapshot copies into one destination region. It
/// counts copy operations: each snapshot of a set is one (see `copies_in`).
pub const COPIES_IN_FLIGHT: usize = 20;

/// One source point to copy into one destination, and the parts still missing there.
#[derive(Debug, Clone)]
pub struct Task {
    pub point: RecoveryPoint,
    pub dest: String,
    pub rule: CopyRule,
    /// Source snapshot ids (sets) or the point id, not yet copied.
    pub missing: Vec<String>,
}

/// Copy tags: the source's own tags (the contract and the recorded
/// configuration) plus `_GX_COPY_OF_`. `aws:` tags cannot be set.
fn copy_tags(src: &BTreeMap<String, String>, copy_of: &str) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = src
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:") && k.as_str() != tags::COPY_OF)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    t.push((tags::COPY_OF.into(), copy_of.into()));
    t
}

/// Which parts of `points` (in their source region) lack a copy among `existing`
/// (the `_GX_COPY_OF_` values present in `dest`). Pure.
pub fn missing_copies(
    points: &[RecoveryPoint],
    existing: &BTreeSet<String>,
    dest: &str,
    rule: &CopyRule,
) -> Vec<Task> {
    points
        .iter()
        .filter(|p| p.completed() && p.copy_of().is_none() && p.region != dest)
        .filter_map(|p| {
            let missing: Vec<String> = match p.kind {
                PointKind::SnapshotSet => p
                    .snapshots
                    .iter()
                    .filter(|s| !existing.contains(&copy_key(&p.region, &s.id)))
                    .map(|s| s.id.clone())
                    .collect(),
                _ => {
                    let id = p.id();
                    if existing.contains(&copy_key(&p.region, &id)) {
                        vec![]
                    } else {
                        vec![id]
                    }
                }
            };
            (!missing.is_empty()).then(|| Task {
                point: p.clone(),
                dest: dest.to_string(),
                rule: rule.clone(),
                missing,
            })
        })
        .collect()
}

/// The `_GX_COPY_OF_` key a copy of part `id` (snapshot, AMI or DB snapshot)
/// of a point in `region` carries.
pub(crate) fn copy_key(region: &str, id: &str) -> String {
    format!("{region}/{id}")
}

/// The keys the copies of an original carry: one per snapshot of a set, one
/// for an AMI or DB snapshot.
pub(crate) fn copy_keys_of(p: &RecoveryPoint) -> Vec<String> {
    match p.kind {
        PointKind::SnapshotSet => p
            .snapshots
            .iter()
            .map(|s| copy_key(&p.region, &s.id))
            .collect(),
        _ => vec![copy_key(&p.region, &p.id())],
    }
}

/// Every `_GX_COPY_OF_` key among the points of a destination region, with
/// the state of the copy (point or snapshot) that carries it.
fn copy_keys(points: &[RecoveryPoint]) -> impl Iterator<Item = (&str, PointState)> {
    points.iter().flat_map(|p| {
        let snaps = p.snapshots.iter().filter_map(|s| {
            s.tags
                .get(tags::COPY_OF)
                .map(|c| (c.as_str(), PointState::ebs(&s.state)))
        });
        p.copy_of().map(|c| (c, p.state)).into_iter().chain(snaps)
    })
}

/// Every `_GX_COPY_OF_` value among the points of a destination region.
pub(crate) fn copy_keys_present(points: &[RecoveryPoint]) -> BTreeSet<String> {
    copy_keys(points).map(|(k, _)| k.to_string()).collect()
}

/// The copies in a destination region by key: (completed, still being made).
/// Failed ones are in neither.
pub(crate) fn copy_keys_by_state(points: &[RecoveryPoint]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut done, mut making) = (BTreeSet::new(), BTreeSet::new());
    for (key, state) in copy_keys(points) {
        match state {
            PointState::Completed => done.insert(key.to_string()),
            PointState::Pending => making.insert(key.to_string()),
            PointState::Failed | PointState::Unusable => false,
        };
    }
    (done, making)
}

/// Encrypted resources whose copies would have no key in a copy region: a
/// configuration error `validate` reports before any copy is tried. Pure.
pub fn encryption_gaps(
    copies: &[CopyRule],
    selected: &[crate::discovery::Selected],
) -> Vec<String> {
    use crate::discovery::Resource;
    let mut gaps = Vec::new();
    for s in selected {
        let encrypted = match &s.resource {
            Resource::Instance(i) => i.volumes.iter().any(|v| v.encrypted),
            Resource::DbInstance(d) => d.encrypted,
            Resource::DbCluster(c) => c.encrypted,
        };
        if !encrypted {
            continue;
        }
        for c in copies.iter().filter(|c| c.kms_key_id.is_none()) {
            gaps.push(format!(
                "{} {} is encrypted and the copy rule for {} has no kms-key-id (a KMS key in {})",
                s.resource.kind(),
                s.resource.id(),
                c.region,
                c.region
            ));
        }
    }
    gaps
}

/// A copy started and not yet complete.
struct InFlight {
    task: Task,
    /// destination ids made, by source part id
    made: Vec<(String, String)>,
    /// When its copies were started.
    started: Instant,
    /// Answered polls in a row that did not list one of its copies.
    unseen: u32,
}

/// Copy operations a task keeps pending in AWS: one per snapshot of a set,
/// one for an AMI or a DB / cluster snapshot. AWS's limit counts these, so the
/// window of [`COPIES_IN_FLIGHT`] does too.
fn copies_in(task: &Task) -> usize {
    match task.point.kind {
        PointKind::SnapshotSet => task.missing.len().max(1),
        _ => 1,
    }
}

/// A copy that answered polls stop listing is gone (deleted, or failed and
/// removed by AWS) once [`GONE_AFTER_POLLS`] polls in a row missed it and
/// [`GONE_AFTER`] has passed since it was started. Describes are eventually
/// consistent: a copy made a moment ago may be missing from the first answers,
/// and must not be given up for that.
pub const GONE_AFTER_POLLS: u32 = 3;
pub const GONE_AFTER: Duration = Duration::from_secs(30);

/// Whether a copy that `unseen` answered polls in a row did not list, started
/// `age` ago, is gone. Pure.
pub fn gone(unseen: u32, age: Duration) -> bool {
    unseen >= GONE_AFTER_POLLS && age >= GONE_AFTER
}

/// Copies the plan's points of one tenant: for each source region and each
/// copy rule, the missing copies. Records one item per (source point,
/// destination), and one per region that could not be listed.
pub async fn copy_tenant(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    source_regions: &[String],
) {
    let plan = job.plan;
    let tenant = &session.tenant.name;
    let kinds = Kinds {
        ec2: true,
        rds: true,
        all_tags: true,
    };
    let mut by_dest: BTreeMap<String, Vec<Task>> = BTreeMap::new();
    let mut dest_points: BTreeMap<String, Result<BTreeSet<String>, AwsError>> = BTreeMap::new();
    for rule in &plan.copies {
        let listed = list_region(
            session,
            account,
            &rule.region,
            Some(&plan.name),
            kinds,
            &job.pacer,
        )
        .await;
        dest_points.insert(rule.region.clone(), listed.map(|p| copy_keys_present(&p)));
    }
    for src in source_regions {
        let points =
            match list_region(session, account, src, Some(&plan.name), kinds, &job.pacer).await {
                Ok(p) => p,
                Err(e) => {
                    job.log(&format!(
                        "Cannot list recovery points in [{tenant}/{src}]: {e}"
                    ));
                    job.record(&Item::failed(
                        &session.tenant.name,
                        account,
                        src,
                        ItemKind::Region,
                        src,
                        e.to_string(),
                    ));
                    continue;
                }
            };
        for rule in plan.copies.iter().filter(|r| &r.region != src) {
            match &dest_points[&rule.region] {
                Ok(existing) => {
                    let tasks = missing_copies(&points, existing, &rule.region, rule);
                    job.log(&format!(
                        "Tenant [{tenant}] {src} -> {}: {} recovery point(s) need a copy",
                        rule.region,
                        tasks.len()
                    ));
                    by_dest
                        .entry(rule.region.clone())
                        .or_default()
                        .extend(tasks);
                }
                Err(e) => {
                    job.log(&format!(
                        "Cannot list copies in [{tenant}/{}]: {e}",
                        rule.region
                    ));
                    job.record(&Item::failed(
                        &session.tenant.name,
                        account,
                        &rule.region,
                        ItemKind::Region,
                        &rule.region,
                        e.to_string(),
                    ));
                }
            }
        }
    }
    futures::future::join_all(
        by_dest
            .into_iter()
            .map(|(dest, tasks)| copy_into(job, session, account, dest, tasks)),
    )
    .await;
}

fn task_item(
    session: &TenantSession,
    account: &str,
    t: &Task,
    status: ItemStatus,
    created: Vec<String>,
    error: Option<String>,
) -> Item {
    Item {
        tenant: session.tenant.name.clone(),
        account: account.to_string(),
        region: t.dest.clone(),
        kind: t.point.kind.into(),
        source_id: format!("{}/{}", t.point.region, t.point.id()),
        status,
        created,
        size_gib: t.point.size_gib,
        error,
        detail: json!({"source": t.point.source, "job": t.point.job, "from": t.point.region}),
    }
}

/// Runs the copies into one destination region with at most
/// [`COPIES_IN_FLIGHT`] copies pending at a time.
///
/// The window is refilled as soon as a slot frees, and the copies that fill it
/// are started together, not one round trip after the other. Each call still
/// takes its token from the pacer and goes through `create_with_retry` (adopting
/// what an ambiguous failure made), so starting together never makes a copy
/// twice.
///
/// Completion is polled on a timer, and only for the copies in flight (see
/// [`poll_copies`]), never by listing the destination's catalog. The timer runs
/// from the moment copies are in flight: the poll comes one interval later
/// (`poll_initial` at first), or once the starts under way have returned if
/// that is later (but at most `poll_max` later). A poll that finds nothing
/// finished doubles the interval up to `poll_max`; one that frees slots keeps
/// it, so a window that completes at once (small or incremental copies) is
/// refilled at the pace of the first poll.
async fn copy_into(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    dest: String,
    tasks: Vec<Task>,
) {
    enum Event {
        Started(Box<Task>, Result<Vec<(String, String)>, NotStarted>),
        Poll,
    }
    let w = Window {
        job,
        session,
        account,
        dest: &dest,
        deadline: Instant::now() + job.options.wait_timeout,
    };
    let mut queue: VecDeque<Task> = tasks.into();
    let mut starting = FuturesUnordered::new();
    let mut starting_copies = 0usize;
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut delay = job.options.poll_initial;
    // Since when the poll timer runs: set while copies are in flight.
    let mut timer: Option<Instant> = None;
    let mut polls = 0u32;
    let mut timed_out = false;
    loop {
        // Refill the window (the queue is emptied at the wait timeout).
        while let Some(next) = queue.front() {
            let busy =
                starting_copies + in_flight.iter().map(|f| copies_in(&f.task)).sum::<usize>();
            let n = copies_in(next);
            // A set of more than the window's worth of volumes still runs, alone.
            if busy > 0 && busy + n > COPIES_IN_FLIGHT {
                break;
            }
            let Some(task) = queue.pop_front() else { break };
            starting_copies += n;
            let w = &w;
            starting.push(async move {
                let r = start_copy(job, session, account, &task, w.deadline).await;
                (Box::new(task), r)
            });
        }
        if starting.is_empty() && in_flight.is_empty() {
            break;
        }
        if in_flight.is_empty() {
            timer = None;
        } else if timer.is_none() {
            timer = Some(Instant::now());
        }
        let due = timer.map(|t| {
            t + if starting.is_empty() {
                delay
            } else {
                delay.max(job.options.poll_max)
            }
        });
        // One of the two is always enabled: something is starting or in flight.
        let event = tokio::select! {
            biased;
            Some((task, r)) = starting.next(), if !starting.is_empty() => Event::Started(task, r),
            () = tokio::time::sleep_until(due.unwrap_or(w.deadline)), if due.is_some() => Event::Poll,
        };
        match event {
            Event::Started(task, r) => {
                starting_copies -= copies_in(&task);
                match r {
                    Ok(made) if timed_out => w.record(w.still_pending(&task, &made)),
                    Ok(made) => in_flight.push(InFlight {
                        task: *task,
                        made,
                        started: Instant::now(),
                        unseen: 0,
                    }),
                    Err(e) => w.not_started(&task, e),
                }
            }
            Event::Poll => {
                polls += 1;
                let polled = poll_copies(job, session, account, &dest, &in_flight).await;
                let before = in_flight.len();
                in_flight = w.settle(&polled, in_flight).await;
                if in_flight.len() == before {
                    delay = (delay * 2).min(job.options.poll_max);
                }
                timer = (!in_flight.is_empty()).then(Instant::now);
                if in_flight.is_empty() {
                    continue;
                }
                if Instant::now() + delay > w.deadline {
                    timed_out = true;
                    w.give_up(&mut in_flight, &mut queue);
                } else {
                    job.log(&format!(
                        "Waiting for {} copy(ies) in [{}/{dest}], {} queued (poll {polls}, next in {} ms)",
                        in_flight.iter().map(|f| copies_in(&f.task)).sum::<usize>(),
                        session.tenant.name,
                        queue.len(),
                        delay.as_millis()
                    ));
                }
            }
        }
    }
}

/// The copies of one tenant into one destination region: how each ends.
struct Window<'a, 'j> {
    job: &'a Job<'j>,
    session: &'a TenantSession,
    account: &'a str,
    dest: &'a str,
    deadline: Instant,
}

impl Window<'_, '_> {
    fn item(
        &self,
        t: &Task,
        status: ItemStatus,
        created: Vec<String>,
        error: Option<String>,
    ) -> Item {
        task_item(self.session, self.account, t, status, created, error)
    }

    /// Logs a problem item's error, and records the item.
    fn record(&self, item: Item) {
        self.job.log(item.error.as_deref().unwrap_or_default());
        self.job.record(&item);
    }

    fn where_(&self) -> String {
        format!("tenant {} region {}", self.session.tenant.name, self.dest)
    }

    fn still_pending(&self, t: &Task, made: &[(String, String)]) -> Item {
        self.item(
            t,
            ItemStatus::Pending,
            made.iter().map(|(_, d)| d.clone()).collect(),
            Some(format!(
                "{}: copy of {} still pending after the {} s wait timeout",
                self.where_(),
                t.point.id(),
                self.job.options.wait_timeout.as_secs()
            )),
        )
    }

    /// A copy that could not be started whole. Parts of a set started before
    /// another part failed are listed, so that the report shows all AWS has.
    fn not_started(&self, task: &Task, NotStarted { error, made }: NotStarted) {
        let parts = if made.is_empty() {
            String::new()
        } else {
            format!(
                "; parts copied all the same (the next run copies only the rest): {}",
                made.iter()
                    .map(|(s, c)| format!("{s} -> {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let item = self.item(
            task,
            ItemStatus::Failed,
            made.into_iter().map(|(_, c)| c).collect(),
            Some(format!("{error}{parts}")),
        );
        self.job.log(&format!(
            "Copy of [{}] to [{}] failed; the source is intact: {error}{parts}",
            item.source_id, self.dest
        ));
        self.job.record(&item);
    }

    /// What a poll says of the copies in flight: each failed, completed,
    /// gone or still in flight (returned).
    async fn settle(&self, polled: &Polled, in_flight: Vec<InFlight>) -> Vec<InFlight> {
        let mut still = Vec::new();
        for mut f in in_flight {
            let made_ids: Vec<String> = f.made.iter().map(|(_, d)| d.clone()).collect();
            let st: Vec<Option<PointState>> = made_ids
                .iter()
                .map(|id| polled.states.get(id).copied())
                .collect();
            if st
                .iter()
                .any(|s| matches!(s, Some(PointState::Failed | PointState::Unusable)))
            {
                let why = format!(
                    "{}: copy of {} failed in AWS",
                    self.where_(),
                    f.task.point.id()
                );
                self.record(self.item(&f.task, ItemStatus::Failed, made_ids, Some(why)));
                continue;
            }
            if st.iter().all(|s| *s == Some(PointState::Completed)) {
                complete(
                    self.job,
                    self.session,
                    self.account,
                    self.dest,
                    &f,
                    made_ids,
                    self.deadline,
                )
                .await;
                continue;
            }
            if made_ids
                .iter()
                .any(|id| polled.asked.contains(id) && !polled.states.contains_key(id))
            {
                f.unseen += 1;
            } else if made_ids.iter().all(|id| polled.asked.contains(id)) {
                f.unseen = 0;
            }
            if !gone(f.unseen, f.started.elapsed()) {
                still.push(f);
                continue;
            }
            let missing: Vec<&str> = made_ids
                .iter()
                .filter(|id| !polled.states.contains_key(*id))
                .map(String::as_str)
                .collect();
            let why = format!(
                "{}: copy [{}] of {} is no longer listed (deleted, or failed and removed); the source is intact and the next run copies it again",
                self.where_(),
                missing.join(", "),
                f.task.point.id()
            );
            self.record(self.item(&f.task, ItemStatus::Failed, made_ids.clone(), Some(why)));
        }
        still
    }

    /// The wait timeout: what is in flight stays pending in AWS, what is
    /// queued was not started (the next run makes it).
    fn give_up(&self, in_flight: &mut Vec<InFlight>, queue: &mut VecDeque<Task>) {
        for f in in_flight.drain(..) {
            self.record(self.still_pending(&f.task, &f.made));
        }
        for t in queue.drain(..) {
            let why = format!(
                "{}: copy of {} not started before the wait timeout; the next run makes it",
                self.where_(),
                t.point.id()
            );
            self.job
                .record(&self.item(&t, ItemStatus::Failed, vec![], Some(why)));
        }
    }
}

/// Records a copy whose parts are all complete. An AMI copy first gets its
/// backing snapshots tagged (the restricted policy deletes only tagged ones).
async fn complete(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    dest: &str,
    f: &InFlight,
    made_ids: Vec<String>,
    deadline: Instant,
) {
    let tenant = &session.tenant.name;
    let mut created = made_ids.clone();
    if f.task.point.kind == PointKind::Ami {
        let image = &made_ids[0];
        // CopyImage tagged them at creation; only the copy's id is added.
        let t = vec![(tags::AMI.to_string(), image.clone())];
        let ec2 = job.ec2(session, account, dest);
        match ec2.tag_image_snapshots(image, &t, deadline).await {
            Ok(snaps) => created.extend(snaps),
            Err(e) => {
                let item = task_item(
                    session,
                    account,
                    &f.task,
                    ItemStatus::Failed,
                    created,
                    Some(format!(
                    "copied image {image} is available but its snapshots could not be tagged: {e}"
                )),
                );
                job.log(item.error.as_deref().unwrap_or_default());
                job.record(&item);
                return;
            }
        }
    }
    // EBS Snapshot Lock of the copies, as part of their creation (lock.rs).
    let lock = crate::aws::lock::after_create(
        &session.ec2(dest),
        crate::aws::lock::copy_rule(&f.task.rule),
        &f.task.rule.retention,
        &created,
    )
    .await;
    let mut item = task_item(
        session,
        account,
        &f.task,
        ItemStatus::Completed,
        created,
        None,
    );
    if let Some(l) = lock {
        job.log(&format!("Locked copies in [{dest}]: {l}"));
        item.detail["lock"] = l;
    }
    job.log(&format!(
        "Copy of [{}] to [{tenant}/{dest}] completed: [{}]",
        item.source_id,
        item.created.join(", ")
    ));
    job.record(&item);
}

/// What one poll learned: the state of every copy AWS listed, and the copies
/// asked about in describes that answered. A copy asked about and not listed
/// is missing; one whose describe failed is unknown until the next poll.
#[derive(Default)]
struct Polled {
    states: BTreeMap<String, PointState>,
    asked: BTreeSet<String>,
}

/// One poll of the copies in flight into `dest`, by id and only for the kinds
/// in flight: DescribeSnapshots with the copies' `SnapshotIds`, DescribeImages
/// with their `ImageIds`, DescribeDBSnapshots / DescribeDBClusterSnapshots
/// filtered by their identifiers. A kind with nothing in flight is not asked.
/// The cost of a poll follows the window (at most [`COPIES_IN_FLIGHT`] ids),
/// not what the plan already keeps in the region. A describe that fails is
/// logged; its copies stay unknown until the next poll.
async fn poll_copies(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    dest: &str,
    in_flight: &[InFlight],
) -> Polled {
    let tenant = &session.tenant.name;
    let mut by_kind: BTreeMap<PointKind, Vec<String>> = BTreeMap::new();
    for f in in_flight {
        by_kind
            .entry(f.task.point.kind)
            .or_default()
            .extend(f.made.iter().map(|(_, d)| d.clone()));
    }
    let mut polled = Polled::default();
    for (kind, ids) in by_kind {
        let answer = describe_copies(job, session, account, dest, kind, &ids).await;
        match answer {
            Ok(states) => {
                polled.states.extend(states);
                polled.asked.extend(ids);
            }
            Err(e) => job.log(&format!(
                "Poll of copies in [{tenant}/{dest}] failed (will retry): {e}"
            )),
        }
    }
    polled
}

/// States of the copies `ids` of one kind in `dest`, asked by id (EBS, AMI:
/// a missing id is asked again by filter so that it does not hide the
/// others), or by identifier filter (RDS, where a missing one is simply not
/// listed; identifiers compare as RDS compares them, ignoring case).
async fn describe_copies(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    dest: &str,
    kind: PointKind,
    ids: &[String],
) -> Result<BTreeMap<String, PointState>, AwsError> {
    match kind {
        PointKind::SnapshotSet => {
            let ec2 = job.ec2(session, account, dest);
            Ok(ec2
                .snapshots_by_id(ids)
                .await?
                .iter()
                .map(|s| {
                    (
                        s.snapshot_id().unwrap_or_default().to_string(),
                        PointState::ebs(s.state().map_or("", |x| x.as_str())),
                    )
                })
                .collect())
        }
        PointKind::Ami => {
            let ec2 = job.ec2(session, account, dest);
            Ok(ec2
                .images_by_id(ids)
                .await?
                .iter()
                .map(|i| {
                    (
                        i.image_id().unwrap_or_default().to_string(),
                        PointState::image(i.state().map_or("pending", |x| x.as_str())),
                    )
                })
                .collect())
        }
        PointKind::DbSnapshot | PointKind::ClusterSnapshot => {
            let cluster = kind == PointKind::ClusterSnapshot;
            let rds = job.rds(session, account, dest);
            // lower-cased identifier → state
            let mut listed: BTreeMap<String, PointState> = BTreeMap::new();
            rds.each_snapshot(cluster, vec![rds_id_filter(cluster, ids)], |s| {
                listed.insert(s.id.to_lowercase(), PointState::rds(s.status));
            })
            .await?;
            Ok(ids
                .iter()
                .filter_map(|id| listed.get(&id.to_lowercase()).map(|s| (id.clone(), *s)))
                .collect())
        }
    }
}

/// A copy that could not be started whole: why, and the parts of a snapshot
/// set that were started all the same (source part, copy id). Those stay in
/// AWS, tagged as copies; the next run copies only the missing parts.
struct NotStarted {
    error: AwsError,
    made: Vec<(String, String)>,
}

impl From<AwsError> for NotStarted {
    fn from(error: AwsError) -> NotStarted {
        NotStarted {
            error,
            made: Vec::new(),
        }
    }
}

/// Starts the copies of one task's missing parts. Returns (source part, copy id) pairs.
async fn start_copy(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    task: &Task,
    deadline: Instant,
) -> Result<Vec<(String, String)>, NotStarted> {
    let to = Dest {
        job,
        session,
        account,
        task,
        deadline,
    };
    match task.point.kind {
        PointKind::SnapshotSet => to.copy_set().await,
        PointKind::Ami => Ok(vec![to.copy_image().await?]),
        PointKind::DbSnapshot | PointKind::ClusterSnapshot => Ok(vec![to.copy_rds().await?]),
    }
}

/// One task's copy into its destination region.
struct Dest<'a, 'j> {
    job: &'a Job<'j>,
    session: &'a TenantSession,
    account: &'a str,
    task: &'a Task,
    deadline: Instant,
}

impl Dest<'_, '_> {
    /// The copy rule's KMS key for an encrypted source (none for a plain one).
    // Same error type as every other step of a copy; built once per copy.
    #[allow(clippy::result_large_err)]
    fn key_for(&self, encrypted: bool) -> Result<Option<String>, AwsError> {
        if !encrypted {
            return Ok(None);
        }
        let (p, dest) = (&self.task.point, &self.task.dest);
        self.task.rule.kms_key_id.clone().map(Some).ok_or_else(|| {
            self.job.at(self.session, self.account, dest).refusal(
                "Copy",
                &p.id(),
                "MissingKmsKey",
                format!(
                    "{} is encrypted and the copy rule for {dest} names no kms-key-id",
                    p.id()
                ),
            )
        })
    }

    /// The missing snapshots of a set, started together; each adopts only
    /// the copy tagged with its own part.
    async fn copy_set(&self) -> Result<Vec<(String, String)>, NotStarted> {
        let (p, dest, src) = (
            &self.task.point,
            self.task.dest.as_str(),
            self.task.point.region.as_str(),
        );
        let ec2 = self.job.ec2(self.session, self.account, dest);
        // Every part's key first, so that a set is not half started for want of one.
        let mut parts = Vec::new();
        for sid in &self.task.missing {
            let snap = p
                .snapshots
                .iter()
                .find(|s| &s.id == sid)
                .expect("missing part of this point");
            parts.push((sid, snap, self.key_for(snap.encrypted)?));
        }
        let started = futures::future::join_all(parts.into_iter().map(|(sid, snap, kms)| {
            let ec2 = &ec2;
            async move {
                let copy_of = copy_key(src, sid);
                let t = copy_tags(&snap.tags, &copy_of);
                self.job.log(&format!(
                    "CopySnapshot [{copy_of}] -> [{}/{dest}]",
                    self.session.tenant.name
                ));
                let description =
                    format!("rolesnap copy of {src}/{sid} (job {})", p.job.unwrap_or(0));
                ec2.copy_snapshot(src, sid, description, &t, kms, self.deadline)
                    .await
                    .map(|copy| (sid.clone(), copy))
            }
        }))
        .await;
        let mut made = Vec::new();
        let mut failed = None;
        for r in started {
            match r {
                Ok(part) => made.push(part),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(error) => Err(NotStarted { error, made }),
            None => Ok(made),
        }
    }

    /// CopyImage; the copy's snapshots are tagged by the same call.
    async fn copy_image(&self) -> Result<(String, String), AwsError> {
        let (p, dest, src) = (
            &self.task.point,
            self.task.dest.as_str(),
            self.task.point.region.as_str(),
        );
        let image = p.id();
        let copy_of = copy_key(src, &image);
        let t = copy_tags(&p.tags, &copy_of);
        let kms = self.key_for(p.encrypted)?;
        // Idempotent on AWS's side for the same token.
        let token: String = format!("rolesnap-{image}-{dest}")
            .chars()
            .take(64)
            .collect();
        // The copy's snapshots carry what the source's snapshots carry, minus
        // the source AMI's id (the tenant policy allows tags only at
        // creation); _GX_AMI_ (the copy's id) follows once it is available
        // (complete()).
        let snap_tags: Vec<(String, String)> =
            t.iter().filter(|(k, _)| k != tags::AMI).cloned().collect();
        let name = p
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| image.clone());
        self.job.log(&format!(
            "CopyImage [{copy_of}] -> [{}/{dest}]",
            self.session.tenant.name
        ));
        let new = self
            .job
            .ec2(self.session, self.account, dest)
            .copy_image(
                src,
                &image,
                &name,
                &token,
                &t,
                &snap_tags,
                kms,
                self.deadline,
            )
            .await?;
        Ok((image, new))
    }

    /// CopyDBSnapshot / CopyDBClusterSnapshot under the source's identifier.
    async fn copy_rds(&self) -> Result<(String, String), AwsError> {
        let (p, dest, src) = (
            &self.task.point,
            self.task.dest.as_str(),
            self.task.point.region.as_str(),
        );
        let id = p.id();
        let arn = p.arn.clone().unwrap_or_default();
        let copy_of = copy_key(src, &id);
        let t = copy_tags(&p.tags, &copy_of);
        let kms = self.key_for(p.encrypted)?;
        let cluster = p.kind == PointKind::ClusterSnapshot;
        let action = if cluster {
            "CopyDBClusterSnapshot"
        } else {
            "CopyDBSnapshot"
        };
        self.job.log(&format!(
            "{action} [{arn}] -> [{}/{dest}] as [{id}]",
            self.session.tenant.name
        ));
        let copy = self
            .job
            .rds(self.session, self.account, dest)
            .copy_snapshot(cluster, &arn, &id, &t, kms, self.deadline)
            .await?;
        Ok((id, copy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Snap;
    use crate::config::Retention;

    fn snap(id: &str) -> Snap {
        Snap {
            id: id.into(),
            volume_id: format!("vol-{id}"),
            size_gib: 8,
            state: "completed".into(),
            encrypted: false,
            kms_key_id: None,
            tags: BTreeMap::new(),
        }
    }

    fn point(
        kind: PointKind,
        id: &str,
        snaps: &[&str],
        state: PointState,
        copy_of: Option<&str>,
    ) -> RecoveryPoint {
        let mut tags = BTreeMap::new();
        if let Some(c) = copy_of {
            tags.insert(tags::COPY_OF.to_string(), c.to_string());
        }
        RecoveryPoint {
            kind,
            tenant: "alpha".into(),
            account: "222222222222".into(),
            region: "us-east-1".into(),
            job: Some(1000),
            agent: String::new(),
            plan: Some("p".into()),
            source: "i-1".into(),
            created: chrono::Utc::now(),
            state,
            resource_id: (kind != PointKind::SnapshotSet).then(|| id.to_string()),
            arn: None,
            snapshots: snaps.iter().map(|s| snap(s)).collect(),
            size_gib: 8,
            encrypted: false,
            kms_key_id: None,
            tags,
        }
    }

    fn rule() -> CopyRule {
        CopyRule {
            region: "us-west-2".into(),
            retention: Retention::default(),
            kms_key_id: None,
            lock: None,
        }
    }

    #[test]
    fn only_missing_parts_of_completed_originals_are_copied() {
        let points = vec![
            point(
                PointKind::SnapshotSet,
                "",
                &["snap-a", "snap-b"],
                PointState::Completed,
                None,
            ),
            point(
                PointKind::SnapshotSet,
                "",
                &["snap-p"],
                PointState::Pending,
                None,
            ),
            point(PointKind::Ami, "ami-1", &[], PointState::Completed, None),
            point(
                PointKind::DbSnapshot,
                "sp-1",
                &[],
                PointState::Completed,
                None,
            ),
            point(
                PointKind::SnapshotSet,
                "",
                &["snap-c"],
                PointState::Completed,
                Some("eu-west-1/snap-z"),
            ),
        ];
        let existing: BTreeSet<String> = ["us-east-1/snap-a", "us-east-1/ami-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let tasks = missing_copies(&points, &existing, "us-west-2", &rule());
        let got: Vec<Vec<String>> = tasks.iter().map(|t| t.missing.clone()).collect();
        assert_eq!(
            got,
            vec![vec!["snap-b".to_string()], vec!["sp-1".to_string()]]
        );
        // Nothing is copied into its own region.
        assert!(missing_copies(&points, &BTreeSet::new(), "us-east-1", &rule()).is_empty());
    }

    #[test]
    fn the_window_counts_copy_operations() {
        let points = vec![
            point(
                PointKind::SnapshotSet,
                "",
                &["snap-a", "snap-b", "snap-c"],
                PointState::Completed,
                None,
            ),
            point(
                PointKind::DbSnapshot,
                "sp-1",
                &[],
                PointState::Completed,
                None,
            ),
        ];
        let existing: BTreeSet<String> = ["us-east-1/snap-a".to_string()].into();
        let tasks = missing_copies(&points, &existing, "us-west-2", &rule());
        let n: Vec<usize> = tasks.iter().map(copies_in).collect();
        assert_eq!(n, vec![2, 1], "a set counts its missing snapshots");
    }

    #[test]
    fn a_copy_is_given_up_only_when_missed_often_and_long_enough() {
        let long = GONE_AFTER + Duration::from_secs(1);
        assert!(!gone(0, long));
        assert!(
            !gone(GONE_AFTER_POLLS - 1, long),
            "a few misses can be eventual consistency"
        );
        assert!(
            !gone(GONE_AFTER_POLLS + 5, Duration::from_secs(2)),
            "a fresh copy may not be listed yet"
        );
        assert!(gone(GONE_AFTER_POLLS, GONE_AFTER));
    }

    #[test]
    fn copy_states_follow_aws() {
        assert_eq!(PointState::ebs("completed"), PointState::Completed);
        assert_eq!(PointState::ebs("pending"), PointState::Pending);
        assert_eq!(PointState::ebs("error"), PointState::Failed);
        assert_eq!(PointState::image("available"), PointState::Completed);
        assert_eq!(PointState::image("pending"), PointState::Pending);
        assert_eq!(PointState::image("failed"), PointState::Failed);
        assert_eq!(PointState::rds(Some("copying")), PointState::Pending);
        assert_eq!(PointState::rds(Some("available")), PointState::Completed);
        assert_eq!(PointState::rds(Some("failed")), PointState::Failed);
        // Neither on its way nor failed: the prune must keep these.
        assert_eq!(PointState::image("disabled"), PointState::Unusable);
        assert_eq!(PointState::image("deregistered"), PointState::Unusable);
        assert_eq!(PointState::image("transient"), PointState::Unusable);
        assert_eq!(
            PointState::rds(Some("incompatible-restore")),
            PointState::Unusable
        );
    }

    #[test]
    fn copies_keep_the_contract_and_say_what_they_copy() {
        let mut src = BTreeMap::new();
        src.insert(tags::BACKUP.to_string(), "1000".to_string());
        src.insert(tags::PLAN.to_string(), "p".to_string());
        src.insert("aws:backup:source".to_string(), "x".to_string());
        let t: BTreeMap<String, String> = copy_tags(&src, "us-east-1/snap-a").into_iter().collect();
        assert_eq!(t[tags::BACKUP], "1000");
        assert_eq!(t[tags::COPY_OF], "us-east-1/snap-a");
        assert!(!t.contains_key("aws:backup:source"));
    }
}
