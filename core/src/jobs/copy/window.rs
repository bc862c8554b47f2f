//! The copy window of one destination region: at most [`COPIES_IN_FLIGHT`]
//! copies pending, refilled as slots free, polled by id until each ends.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::start::{start_copy, NotStarted};
use super::{gone, task_item, Task, COPIES_IN_FLIGHT};
use crate::aws::credentials::TenantSession;
use crate::aws::ec2::Ec2;
use crate::aws::error::AwsError;
use crate::aws::rds::id_filter as rds_id_filter;
use crate::aws::rds::Rds;
use crate::catalog::{PointKind, PointState};
use crate::jobs::work::Job;
use crate::store::ledger::{Item, ItemStatus};
use crate::tags;

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
pub(super) fn copies_in(task: &Task) -> usize {
    match task.point.kind {
        PointKind::SnapshotSet => task.missing.len().max(1),
        _ => 1,
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
///
/// A vault copy (`source`: the tenant's session and account; `session` is
/// then the vault's) first shares the point with the vault, and stops the
/// share once its copy has ended, completed or failed; a copy still pending
/// at the wait timeout keeps its share (the copy reads from it), and a later
/// run stops it (`jobs::vault`).
pub(crate) async fn copy_into(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    dest: String,
    tasks: Vec<Task>,
    source: Option<(&TenantSession, &str)>,
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
        source,
    };
    // Progress: the copies of this destination count in the job's total.
    (job.on_total)(tasks.len());
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
                let r = match w.share(&task, true).await {
                    Ok(()) => start_copy(job, session, account, &task, w.deadline).await,
                    Err(e) => Err(e.into()),
                };
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
                    Ok(made) => {
                        (job.on_started)(made.first().map_or("", |(id, _)| id.as_str()));
                        in_flight.push(InFlight {
                            task: *task,
                            made,
                            started: Instant::now(),
                            unseen: 0,
                        })
                    }
                    Err(e) => w.not_started(&task, e).await,
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
    /// A vault copy's tenant side: where the point is shared from.
    source: Option<(&'a TenantSession, &'a str)>,
}

impl Window<'_, '_> {
    /// Shares a vault copy's point with the vault (`add`), or stops the
    /// share; a region copy has nothing to share. A failure to stop a share
    /// is logged (the next run stops it), never the copy's outcome.
    async fn share(&self, t: &Task, add: bool) -> Result<(), AwsError> {
        let (Some(v), Some((session, account))) = (&t.vault, self.source) else {
            return Ok(());
        };
        let r = crate::jobs::vault::share(
            self.job,
            session,
            account,
            t,
            &v.account,
            add,
            self.deadline,
        )
        .await;
        if let Err(e) = &r {
            self.job.log(&format!(
                "{} [{}] of [{}/{}] with vault [{}] ({}) failed: {e}",
                if add {
                    "Sharing"
                } else {
                    "Stopping the share of"
                },
                t.point.id(),
                v.tenant,
                t.point.region,
                v.name,
                v.account
            ));
        }
        r
    }

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
    async fn not_started(&self, task: &Task, NotStarted { error, made }: NotStarted) {
        let _ = self.share(task, false).await;
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
                let _ = self.share(&f.task, false).await;
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
                let _ = self.share(&f.task, false).await;
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
            let _ = self.share(&f.task, false).await;
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
        job.log(&format!(
            "Locked copies in [{}/{dest}]: {l}",
            session.tenant.name
        ));
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
        let (ec2, rds) = (
            job.ec2(session, account, dest),
            job.rds(session, account, dest),
        );
        let answer = copy_states(&ec2, &rds, kind, &ids).await;
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
/// Also what a restore from a vault waits on (its copies into the tenant).
pub(crate) async fn copy_states(
    ec2: &Ec2<'_>,
    rds: &Rds<'_>,
    kind: PointKind,
    ids: &[String],
) -> Result<BTreeMap<String, PointState>, AwsError> {
    match kind {
        PointKind::SnapshotSet => Ok(ec2
            .snapshots_by_id(ids)
            .await?
            .iter()
            .map(|s| {
                (
                    s.snapshot_id().unwrap_or_default().to_string(),
                    PointState::ebs(s.state().map_or("", |x| x.as_str())),
                )
            })
            .collect()),
        PointKind::Ami => Ok(ec2
            .images_by_id(ids)
            .await?
            .iter()
            .map(|i| {
                (
                    i.image_id().unwrap_or_default().to_string(),
                    PointState::image(i.state().map_or("pending", |x| x.as_str())),
                )
            })
            .collect()),
        PointKind::DbSnapshot | PointKind::ClusterSnapshot => {
            let cluster = kind == PointKind::ClusterSnapshot;
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
