//! Data Aging: delete the recovery points whose retention has run out.
//!
//! What to delete is decided by [`crate::decide::retention::decide`] (pure); this
//! module lists the points, finds which sources still exist, and deletes.
//! Only resources that carry `_GX_BACKUP_` and this plan's `_GX_PLAN_` are
//! ever deleted, checked again on each resource right before its delete call.
//! Deletes are idempotent: NotFound counts as done. An AMI is deregistered
//! first, then its snapshots are deleted, so no snapshot is orphaned.
//!
//! Regions are pruned concurrently, several deletes in flight each, every
//! attempt paced by [`crate::aws::pace::Pacer`] (SDK retries off, as for creates):
//! the DeleteSnapshot bucket (5 per second) is what bounds a large prune.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use futures::{stream, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::aws::ec2::Ec2;
use crate::aws::At;
use crate::catalog::{list_region, Kinds, PointKind, PointState, RecoveryPoint};
use crate::config::Retention;
use crate::jobs::copy::{copy_keys_by_state, copy_keys_of};

use crate::aws::credentials::TenantSession;
use crate::aws::error::AwsError;
use crate::decide::expiry::{expiries, future_runs};
use crate::decide::retention::{decide, Decision, Point, Verdict};
use crate::discovery::live_sources;
use crate::jobs::work::{hash64, Job};
use crate::store::ledger::{Item, ItemKind, ItemStatus};
use crate::tags;

/// Is this resource's own tag set one prune may delete?
pub fn deletable(t: &BTreeMap<String, String>, plan: &str) -> bool {
    t.contains_key(tags::BACKUP)
        && t.get(tags::PLAN).map(String::as_str) == Some(plan)
        && !t.contains_key(tags::RETAIN)
}

/// What a prune keeps of a decided point: its ids, what its report item says,
/// and whether the point and each of its snapshots carry the contract tags
/// (read from the listing, as a `RecoveryPoint`'s tags are). A prune holds
/// every point it is about to delete while the deletes wait for their
/// buckets; a listed point with its tag maps is several times this size.
struct Decided {
    kind: PointKind,
    region: String,
    id: String,
    source: String,
    job: Option<u64>,
    created: DateTime<Utc>,
    copy_of: Option<String>,
    size_gib: i64,
    ours: bool,
    /// (snapshot id, carries the contract tags)
    snapshots: Vec<(String, bool)>,
}

impl Decided {
    fn new(p: RecoveryPoint, plan: &str) -> Decided {
        Decided {
            kind: p.kind,
            id: p.id(),
            copy_of: p.copy_of().map(str::to_string),
            ours: deletable(&p.tags, plan),
            snapshots: p
                .snapshots
                .into_iter()
                .map(|s| {
                    let ours = deletable(&s.tags, plan);
                    (s.id, ours)
                })
                .collect(),
            region: p.region,
            source: p.source,
            job: p.job,
            created: p.created,
            size_gib: p.size_gib,
        }
    }
}

fn to_point(p: &RecoveryPoint, sources: &BTreeSet<String>) -> Point {
    to_point_with(p, |s| sources.contains(s))
}

fn to_point_with(p: &RecoveryPoint, live: impl Fn(&str) -> bool) -> Point {
    let mut t = p.tags.clone();
    // A hold on any member holds the whole set; a member without the
    // contract tags makes the set not ours to delete.
    for s in &p.snapshots {
        if s.tags.contains_key(tags::RETAIN) {
            t.insert(tags::RETAIN.into(), s.tags[tags::RETAIN].clone());
        }
    }
    if p.kind == PointKind::SnapshotSet
        && p.snapshots.iter().any(|s| {
            !s.tags.contains_key(tags::BACKUP) || s.tags.get(tags::PLAN) != p.tags.get(tags::PLAN)
        })
    {
        t.remove(tags::BACKUP);
    }
    Point {
        id: p.id(),
        source: p.source.clone(),
        region: p.region.clone(),
        created: p.created,
        tags: t,
        completed: p.completed(),
        failed: p.state == PointState::Failed,
        source_exists: live(&p.source),
    }
}

/// The retention that governs a point: a copy follows its destination's copy
/// rule, an original the plan's own.
fn rule_for<'a>(
    p: &RecoveryPoint,
    plan_rule: &'a Retention,
    copies: &'a [crate::config::CopyRule],
) -> &'a Retention {
    if p.copy_of().is_some() {
        if let Some(c) = copies.iter().find(|c| c.region == p.region) {
            return &c.retention;
        }
    }
    plan_rule
}

/// The decisions of `rule` over `input` at `now`, with each point's expiry
/// ([`expiries`], replaying the plan's schedule) when `with_expiry`.
fn decide_with_expiry(
    input: &[Point],
    plan: &crate::config::Plan,
    rule: &Retention,
    now: DateTime<Utc>,
    with_expiry: bool,
) -> Vec<(Decision, Option<DateTime<Utc>>)> {
    let tz = plan
        .schedule
        .as_ref()
        .map_or(chrono_tz::UTC, |s| s.timezone);
    let decisions = decide(input, &plan.name, rule, now, tz);
    let exp = if with_expiry {
        let runs = future_runs(plan.schedule.as_ref(), rule, now);
        expiries(input, &plan.name, rule, now, tz, &runs)
    } else {
        vec![None; input.len()]
    };
    decisions.into_iter().zip(exp).collect()
}

/// How the plan's retention decides a listing (`rolesnap list`): the points of
/// one account in one region, at `now`. Each follows its rule (`vault_rule`
/// for a vault's copies; else a copy its copy region's, an original the
/// plan's); every source is taken to be live (a listing does not discover).
pub fn decide_listed(
    plan: &crate::config::Plan,
    points: &[RecoveryPoint],
    vault_rule: Option<&Retention>,
    now: DateTime<Utc>,
) -> Vec<Listed> {
    let mut out: Vec<Option<Listed>> = points.iter().map(|_| None).collect();
    let mut by_rule: Vec<(&Retention, Vec<usize>)> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let r = vault_rule.unwrap_or_else(|| rule_for(p, &plan.retention, &plan.copies));
        match by_rule.iter_mut().find(|(x, _)| std::ptr::eq(*x, r)) {
            Some((_, v)) => v.push(i),
            None => by_rule.push((r, vec![i])),
        }
    }
    for (rule, idx) in by_rule {
        let input: Vec<Point> = idx
            .iter()
            .map(|&i| to_point_with(&points[i], |_| true))
            .collect();
        for (&i, (d, expires)) in idx
            .iter()
            .zip(decide_with_expiry(&input, plan, rule, now, true))
        {
            out[i] = Some(Listed {
                verdict: d.verdict,
                rule: d.rule,
                expires,
            });
        }
    }
    out.into_iter().flatten().collect()
}

/// A listed point's decision: keep or delete at `now`, by which rule, and
/// when it is expected to be deleted (`now` when it is expired; none when
/// held, pending, or kept past the replayed horizon).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    pub verdict: Verdict,
    pub rule: String,
    pub expires: Option<DateTime<Utc>>,
}

/// Tenants whose points are listed and decided at once, over the process.
/// A tenant's whole listing (every point of its regions, with their tags and
/// AWS's answers) is held from listing to decision; after that only the
/// points to delete are kept. Listing and deciding take a few calls per
/// region, so this delays the later tenants' deletes by little.
pub const TENANTS_LISTED_AT_ONCE: usize = 2;

static LISTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(TENANTS_LISTED_AT_ONCE);

/// Deletes in flight per account × region. The pacer sets the rate (the
/// DeleteSnapshot bucket refills 5 per second); this only keeps enough calls
/// open that a 40–100 ms round trip never leaves a token unused.
pub const DELETES_IN_FLIGHT: usize = 8;

/// Where the jobs that run beside a prune are (the nightly run: backup, then
/// copy, with the prune beside them). Ordered: each stage follows the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Beside {
    /// The backup job is running.
    #[default]
    Backup,
    /// The backup has ended; the copy job is running.
    Copy,
    /// Both have ended (or there is nothing beside the prune).
    Ended,
}

/// What the prune beside a nightly run is told: where the jobs beside it are,
/// and how many points and copies they have completed so far, per tenant ×
/// region (a copy counts in its destination region).
#[derive(Debug, Clone, Default)]
pub struct Night {
    pub stage: Beside,
    completed: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Night {
    /// Points and copies of `tenant` completed in `region` so far.
    pub fn completed_in(&self, tenant: &str, region: &str) -> usize {
        self.completed
            .get(tenant)
            .and_then(|m| m.get(region))
            .copied()
            .unwrap_or(0)
    }

    /// One more point or copy of `tenant` completed in `region`.
    pub fn complete(&mut self, tenant: &str, region: &str) {
        let m = self.completed.entry(tenant.to_string()).or_default();
        *m.entry(region.to_string()).or_default() += 1;
    }
}

/// A job's end of a nightly run's channel (see [`crate::jobs::run_night`]).
#[derive(Debug, Clone)]
pub enum NightLink {
    /// The prune: told where the jobs beside it are and what they completed.
    Prune(watch::Receiver<Night>),
    /// The backup or the copy job: reports each point or copy it completes.
    Reports(std::sync::Arc<watch::Sender<Night>>),
}

/// The EBS snapshots one DeleteSnapshot burst deletes at once (the bucket's
/// size). A region where the points a pass kept for want of a newer one
/// have more snapshots than this is worth a pass before the job beside
/// ends: deleted only after it, they would outlast the burst by
/// `(snapshots - burst) / refill` seconds.
fn delete_burst() -> usize {
    crate::aws::pace::Bucket::DeleteSnapshot.size_and_refill().0 as usize
}

/// Prunes one tenant's points in its source regions and copy regions. The
/// regions are pruned concurrently (each has its own throttling buckets),
/// with up to [`DELETES_IN_FLIGHT`] deletes in flight in each.
///
/// `beside` is given when the plan's backup and copy jobs run beside this
/// prune (the nightly run). The prune then works in passes: one at once, one
/// when the backup has ended, one when the copy job has ended; each lists the
/// regions again and decides afresh. So a point kept only as the newest of its
/// live source is deleted once a pass sees a newer one completed, and an
/// expired original lacking a copy is kept while the copy job runs (and goes
/// by the pass that sees its copy completed): the outcome is that of a prune
/// run after backup and copy.
///
/// A pass also comes while a job beside still runs, where the points the last
/// pass kept only until something newer completes (the newest point of a live
/// source, a failed point, an original waiting for its copy) have more
/// snapshots in a region than one DeleteSnapshot burst: once the jobs beside
/// have completed, in that region, half as many points or copies as those
/// waiting, or as many as hold a burst's worth of their snapshots when that
/// is fewer (see `Waiting::again_after`). So the old copies of a large region
/// go while the copy job makes their successors, not all after it. A region
/// where such a pass freed few of its waiting points (what completed there was
/// not theirs) gets no more of them until the stage changes.
#[allow(clippy::too_many_arguments)]
pub async fn prune_tenant(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    source_regions: &[String],
    now: DateTime<Utc>,
    dry_run: bool,
    beside: Option<watch::Receiver<Night>>,
    vaults: &[crate::jobs::vault::VaultConn],
) {
    let sources =
        prune_tenant_regions(job, session, account, source_regions, now, dry_run, beside).await;
    remove_drill_leftovers(job, session, account, source_regions, now, dry_run).await;
    // The vault copies of this tenant's points, by their vault rules; only
    // when the tenant's live sources are known (the newest copy of a live
    // source is kept).
    if let Some(sources) = sources {
        for v in vaults {
            prune_vault(
                job,
                session,
                account,
                source_regions,
                &sources,
                now,
                dry_run,
                v,
            )
            .await;
        }
    }
}

/// What killed restore drills left in the plan's source and copy regions
/// (see [`crate::jobs::restore::leftovers`]): drill resources made longer
/// ago than the plan's `[drill] timeout-minutes` (the default when it has
/// none), an item each.
async fn remove_drill_leftovers(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    source_regions: &[String],
    now: DateTime<Utc>,
    dry_run: bool,
) {
    let minutes = job
        .plan
        .drill
        .as_ref()
        .map_or(crate::config::DEFAULT_DRILL_TIMEOUT_MINUTES, |d| {
            d.timeout_minutes
        });
    let older_than = now - chrono::Duration::minutes(i64::from(minutes));
    let mut regions: Vec<String> = source_regions.to_vec();
    for c in &job.plan.copies {
        if !regions.contains(&c.region) {
            regions.push(c.region.clone());
        }
    }
    for region in &regions {
        let sweep = crate::jobs::restore::leftovers::Sweep {
            session,
            account,
            pacer: &job.pacer,
            region,
            older_than,
            dry_run,
            plan: Some(&job.plan.name),
        };
        let (found, _) = sweep.run(&|m| job.log(m)).await;
        for f in found {
            job.record(&Item {
                tenant: session.tenant.name.clone(),
                account: account.to_string(),
                region: f.region.clone(),
                kind: f.kind,
                source_id: f.id.clone(),
                status: match (&f.error, dry_run) {
                    (Some(_), _) => ItemStatus::Failed,
                    (None, true) => ItemStatus::WouldDelete,
                    (None, false) => ItemStatus::Deleted,
                },
                created: vec![],
                size_gib: 0,
                error: f.error.clone(),
                detail: json!({"drill_leftover": true}),
            });
        }
    }
}

/// [`prune_tenant`] in the tenant's own account: returns the live sources
/// (`None` when they could not be told, and nothing was pruned).
async fn prune_tenant_regions(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    source_regions: &[String],
    now: DateTime<Utc>,
    dry_run: bool,
    beside: Option<watch::Receiver<Night>>,
) -> Option<BTreeSet<String>> {
    let plan = job.plan;
    let tenant = &session.tenant.name;
    // Which sources still exist: a point of a live source keeps its newest.
    let mut sources = BTreeSet::new();
    let mut sources_known = true;
    let found = join_all(
        source_regions
            .iter()
            .map(|r| live_sources(session, account, r, job.logs)),
    )
    .await;
    for (r, found) in source_regions.iter().zip(found) {
        match found {
            Ok(live) => sources.extend(live),
            Err(e) => {
                sources_known = false;
                job.log(&format!(
                    "Cannot tell which sources exist in [{tenant}/{r}]; pruning nothing there: {e}"
                ));
                job.record(&Item::failed(
                    &session.tenant.name,
                    account,
                    r,
                    ItemKind::Region,
                    r,
                    e.to_string(),
                ));
            }
        }
    }
    if !sources_known {
        // Without knowing which sources are alive, the newest-point protection
        // cannot be applied: prune nothing rather than risk the last copy.
        return None;
    }
    let mut regions: Vec<String> = source_regions.to_vec();
    for c in &plan.copies {
        if !regions.contains(&c.region) {
            regions.push(c.region.clone());
        }
    }
    // The points this run deleted: a later pass that still lists one (an RDS
    // snapshot stays listed while AWS deletes it) leaves it alone.
    let deleted = Mutex::new(HashSet::new());
    // The locks this run extended, and until when: a later pass does not
    // extend one again to the same time.
    let extended = Mutex::new(HashSet::new());
    let pass = |copying| {
        prune_pass(
            job,
            session,
            account,
            &regions,
            source_regions,
            &sources,
            &deleted,
            &extended,
            now,
            dry_run,
            copying,
        )
    };
    // The points a pass keeps are counted for the last pass only: an earlier
    // pass's are decided again by the next one. Every pass records what it
    // deletes or fails to; a later outcome of the same point replaces an
    // earlier one in the report (see `Outcomes`).
    let last = |kept: Kept| {
        for (region, (n, gib)) in kept {
            job.count(tenant, &region, ItemStatus::Kept, n, gib);
        }
    };
    let Some(mut beside) = beside else {
        last(pass(false).await.0);
        return Some(sources.clone());
    };
    // Regions that get no pass before the stage changes: an early pass
    // there freed few of the points waiting. And, after an early pass, the
    // stage and the waiting points of the regions that started it.
    let mut quiet: BTreeSet<String> = BTreeSet::new();
    let mut started: Option<(Beside, Vec<(String, Waiting)>)> = None;
    loop {
        // What the jobs beside had completed before this pass lists.
        let (stage, seen) = {
            let n = beside.borrow_and_update();
            let seen: BTreeMap<String, usize> = regions
                .iter()
                .map(|r| (r.clone(), n.completed_in(tenant, r)))
                .collect();
            (n.stage, seen)
        };
        let copying = stage < Beside::Ended && !plan.copies.is_empty();
        let (kept, waiting) = pass(copying).await;
        if stage == Beside::Ended {
            last(kept);
            return Some(sources.clone());
        }
        match started.take() {
            Some((s, before)) if s == stage => {
                for (r, w) in before {
                    let left = waiting.get(&r).map_or(0, |x| x.points);
                    if w.points.saturating_sub(left) * 2 < w.again_after() {
                        quiet.insert(r);
                    }
                }
            }
            _ => quiet.clear(),
        }
        if beside.borrow().stage > stage {
            // The job beside ended during the pass: the next one at once.
            continue;
        }
        let job_beside = if stage == Beside::Backup {
            "backup"
        } else {
            "copy"
        };
        // Regions worth a pass before the job beside ends, and how many
        // points or copies made there since `seen` start one.
        let early: Vec<(String, usize)> = waiting
            .iter()
            .filter(|(r, w)| w.snapshots > delete_burst() && !quiet.contains(*r))
            .map(|(r, w)| {
                (
                    r.clone(),
                    seen.get(r).copied().unwrap_or(0) + w.again_after(),
                )
            })
            .collect();
        let sooner = early
            .iter()
            .map(|(r, _)| {
                format!(
                    "{} point(s) in [{tenant}/{r}] wait for a newer point or their copy",
                    waiting[r].points
                )
            })
            .collect::<Vec<_>>();
        job.log(&format!(
            "Prune of [{tenant}] waits for the {job_beside} job to end, then looks again{}",
            if sooner.is_empty() {
                String::new()
            } else {
                format!(
                    "; sooner where enough of those may have completed ({})",
                    sooner.join(", ")
                )
            }
        ));
        // Whether the jobs beside have completed enough in region `r`.
        let reached = |n: &Night, (r, at): &(String, usize)| n.completed_in(tenant, r) >= *at;
        // An error means the sender is gone: the jobs beside have ended.
        let woke = beside
            .wait_for(|n| n.stage > stage || early.iter().any(|e| reached(n, e)))
            .await
            .map(|n| n.stage);
        match woke {
            Err(_) => {
                last(pass(false).await.0);
                return Some(sources.clone());
            }
            Ok(at_stage) if at_stage == stage => {
                job.log(&format!(
                    "Prune of [{tenant}] looks again before the {job_beside} job ends: \
                     enough of what its points wait for may have completed"
                ));
                let n = beside.borrow();
                let woke_by = early
                    .iter()
                    .filter(|e| reached(&n, e))
                    .map(|(r, _)| (r.clone(), waiting[r]))
                    .collect();
                started = Some((stage, woke_by));
            }
            Ok(_) => {}
        }
    }
}

/// The points a pass kept only until something newer completes (a newer
/// point of their source, or their own copy), in one region: what the jobs
/// beside make may let them go.
#[derive(Debug, Default, Clone, Copy)]
struct Waiting {
    points: usize,
    /// Their EBS snapshots (each one DeleteSnapshot).
    snapshots: usize,
}

impl Waiting {
    /// How many points or copies the jobs beside complete in the region
    /// before the next pass: half of the points waiting, or as many as hold
    /// one DeleteSnapshot burst's worth of their snapshots when that is
    /// fewer. So a pass lists again only for deletes enough to pay for its
    /// listing, and the bucket does not stand idle while half of a large
    /// region's successors are made.
    fn again_after(&self) -> usize {
        let per_point = self.snapshots.div_ceil(self.points.max(1)).max(1);
        self.points
            .div_ceil(2)
            .min(delete_burst().div_ceil(per_point))
            .max(1)
    }
}

/// Whether a point kept by `rule` is kept only until a newer point of its
/// source, or its own copy, completes.
fn waits_for_newer(rule: &str) -> bool {
    rule.starts_with(crate::decide::retention::NEWEST_OF_LIVE_SOURCE)
        || rule.starts_with(crate::decide::retention::FAILED_UNTIL_NEWER)
        || rule.ends_with(DEFERRED_FOR_COPY)
}

/// The end of the rule text of an expired original a pass beside the copy
/// job leaves until its copy is made.
const DEFERRED_FOR_COPY: &str = "deferred: the copy job has not copied it yet";

/// Prunes the vault copies of one tenant's points in one vault rule's
/// regions by the rule's own retention. The newest completed copy of a live
/// source is kept, as in the source region; the copies of a source that is
/// gone keep only their rule ([`prune_orphan_vault_copies`] does the copies
/// of accounts no longer in the accounts file).
#[allow(clippy::too_many_arguments)]
async fn prune_vault(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    source_regions: &[String],
    sources: &BTreeSet<String>,
    now: DateTime<Utc>,
    dry_run: bool,
    v: &crate::jobs::vault::VaultConn,
) {
    let mut dests: Vec<String> = Vec::new();
    for src in source_regions {
        for d in v.rule.dests(src) {
            if !dests.contains(&d) {
                dests.push(d);
            }
        }
    }
    // This tenant's copies of points of the regions pruned.
    let mine = |a: &str, r: &str| a == account && source_regions.iter().any(|s| s == r);
    prune_vault_copies(
        job,
        v,
        &dests,
        &format!("[{}]", session.tenant.name),
        &mine,
        sources,
        now,
        dry_run,
    )
    .await;
}

/// Prunes the vault copies whose source account is no longer a tenant of
/// the accounts file (`known`): with no source alive to protect, each is
/// kept until its own vault rule expires it. In every region the vault has
/// a key for (or `only`).
pub(crate) async fn prune_orphan_vault_copies(
    job: &Job<'_>,
    v: &crate::jobs::vault::VaultConn,
    known: &BTreeSet<String>,
    only: Option<&str>,
    now: DateTime<Utc>,
    dry_run: bool,
) {
    let dests: Vec<String> = v
        .vault
        .keys
        .keys()
        .filter(|r| only.is_none_or(|o| o == r.as_str()))
        .cloned()
        .collect();
    let gone = |a: &str, _: &str| !known.contains(a);
    prune_vault_copies(
        job,
        v,
        &dests,
        "accounts no longer in the accounts file",
        &gone,
        &BTreeSet::new(),
        now,
        dry_run,
    )
    .await;
}

/// Decides and deletes the vault copies in `dests` whose `_GX_VAULT_OF_`
/// (account, source region) `whose` selects, by the vault rule; `sources`
/// are the live sources (their newest copy is kept).
#[allow(clippy::too_many_arguments)]
async fn prune_vault_copies(
    job: &Job<'_>,
    v: &crate::jobs::vault::VaultConn,
    dests: &[String],
    label: &str,
    whose: &dyn Fn(&str, &str) -> bool,
    sources: &BTreeSet<String>,
    now: DateTime<Utc>,
    dry_run: bool,
) {
    let plan = job.plan;
    let (vs, va) = (&v.conn.session, v.conn.account.as_str());
    let deleted = Mutex::new(HashSet::new());
    let listed = list_plan(job, vs, va, dests).await;
    for (region, points) in listed {
        let points: Vec<RecoveryPoint> = points
            .into_iter()
            .filter(|p| {
                crate::jobs::vault::vault_of(p).is_some_and(|k| {
                    let mut parts = k.splitn(3, '/');
                    match (parts.next(), parts.next()) {
                        (Some(a), Some(r)) => whose(a, r),
                        _ => false,
                    }
                })
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let input: Vec<Point> = points.iter().map(|p| to_point(p, sources)).collect();
        let decisions = decide_with_expiry(&input, plan, &v.rule.retention, now, dry_run);
        drop(input);
        let mut deletes = Vec::new();
        let mut kept = (0usize, 0i64);
        for (p, (d, expires)) in points.into_iter().zip(decisions) {
            let p = Decided::new(p, &plan.name);
            match d.verdict {
                Verdict::Delete => deletes.push((p, d.rule)),
                Verdict::Keep if dry_run => {
                    let mut item = point_item(vs, va, &p, ItemStatus::Kept, vec![], None, &d.rule);
                    with_expiry(&mut item, expires);
                    job.record(&item)
                }
                Verdict::Keep => {
                    kept.0 += 1;
                    kept.1 += p.size_gib;
                }
            }
        }
        if kept.0 > 0 {
            job.count(&v.vault.name, region, ItemStatus::Kept, kept.0, kept.1);
        }
        job.log(&format!(
            "Vault [{}/{region}]: {} copy(ies) of {label} expired by the vault rule",
            v.vault.name,
            deletes.len(),
        ));
        stream::iter(deletes)
            .map(|(p, rule)| settle(job, vs, va, p, rule, dry_run, &deleted))
            .buffer_unordered(DELETES_IN_FLIGHT)
            .collect::<()>()
            .await;
    }
}

/// Points a pass kept, per region: (count, GiB). Only a dry run itemizes them.
type Kept = BTreeMap<String, (usize, i64)>;

/// What a pass kept for want of a newer point, per region.
type Waits = BTreeMap<String, Waiting>;

/// The region of the source a point protects: its own for an original, the
/// one in `_GX_COPY_OF_` (`region/id`) for a copy.
fn source_region(p: &RecoveryPoint) -> &str {
    match p.copy_of() {
        Some(c) => c.split_once('/').map_or(c, |(r, _)| r),
        None => &p.region,
    }
}

/// One pass over the tenant's regions: list each, decide, delete what has
/// expired. With `copying`, an expired original still missing a copy is left
/// (reported Kept) for a later pass.
#[allow(clippy::too_many_arguments)]
async fn prune_pass(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    regions: &[String],
    source_regions: &[String],
    sources: &BTreeSet<String>,
    deleted: &Mutex<HashSet<u64>>,
    extended: &Mutex<HashSet<u64>>,
    now: DateTime<Utc>,
    dry_run: bool,
    copying: bool,
) -> (Kept, Waits) {
    let plan = job.plan;
    let tenant = &session.tenant.name;
    // Held from listing to decision (the semaphore is never closed).
    let listing = LISTING.acquire().await.ok();
    let listed_ok = list_plan(job, session, account, regions).await;
    // The copies in each copy region, completed and being made (absent: its
    // listing failed).
    let copied: BTreeMap<&str, (BTreeSet<String>, BTreeSet<String>)> = listed_ok
        .iter()
        .filter(|(r, _)| plan.copies.iter().any(|c| &c.region == *r))
        .map(|(r, points)| (r.as_str(), copy_keys_by_state(points)))
        .collect();
    // An expired original is left for later while a copy of it is being made
    // (AWS may fail a copy whose source is deleted), and, while the copy job
    // runs, while it lacks a completed copy in any copy region.
    let uncopied = |p: &RecoveryPoint| {
        p.copy_of().is_none()
            && plan.copies.iter().any(|c| {
                if c.region == p.region {
                    return false;
                }
                let Some((done, making)) = copied.get(c.region.as_str()) else {
                    return copying;
                };
                let keys = copy_keys_of(p);
                let being_made = keys.iter().any(|k| making.contains(k) && !done.contains(k));
                let not_done = keys.iter().any(|k| !done.contains(k));
                being_made || (copying && not_done)
            })
    };
    // Only points whose source region is being pruned: with `--region R`, a
    // copy of another region's source is not decided (its source's liveness
    // was not looked up).
    let in_scope: Vec<(&String, Vec<RecoveryPoint>)> = {
        let deleted = deleted.lock().unwrap_or_else(|p| p.into_inner());
        listed_ok
            .into_iter()
            .map(|(r, points)| {
                let kept = points
                    .into_iter()
                    .filter(|p| source_regions.iter().any(|s| s == source_region(p)))
                    .filter(|p| !already_deleted(&deleted, p))
                    .collect();
                (r, kept)
            })
            .collect()
    };
    // Decide every region while the listing is at hand; then only the points
    // to delete are kept (with only the tags the delete checks), while the
    // deletes wait for their buckets.
    let mut work = Vec::new();
    let mut kept = Kept::new();
    let mut waiting = Waits::new();
    // Locks to extend: points a weekly/monthly rule keeps longer (lock.rs).
    let mut extend = Vec::new();
    for (region, points) in in_scope {
        let decided = decide_region(
            job, tenant, region, points, sources, now, dry_run, &uncopied,
        );
        let mut deletes = Vec::new();
        for (p, verdict, rule, expires) in decided {
            let p = Decided::new(p, &plan.name);
            if verdict == Verdict::Keep && waits_for_newer(&rule) {
                let w = waiting.entry(p.region.clone()).or_default();
                w.points += 1;
                w.snapshots += p.snapshots.len();
            }
            if verdict == Verdict::Keep && !dry_run && p.ours {
                let copy = p.copy_of.is_some();
                if let Some((mode, until)) =
                    crate::aws::lock::extension_for(plan, &p.region, copy, &rule, p.created)
                {
                    let key = hash64(&(&p.region, &p.id, until));
                    let new = extended
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key);
                    if new {
                        let snaps: Vec<String> =
                            p.snapshots.iter().map(|(s, _)| s.clone()).collect();
                        extend.push((p.region.clone(), p.id.clone(), snaps, mode, until));
                    }
                }
            }
            match verdict {
                Verdict::Delete => deletes.push((p, rule)),
                // A dry run lists every decision; a prune only counts the
                // points it keeps (one item each would be most of a large
                // fleet's report). A point an earlier pass recorded (its
                // delete failed) is recorded again, kept, so that its
                // outcome replaces the earlier one rather than adding to it.
                Verdict::Keep
                    if dry_run || job.has_outcome(tenant, &p.region, p.kind.into(), &p.id) =>
                {
                    let mut item =
                        point_item(session, account, &p, ItemStatus::Kept, vec![], None, &rule);
                    with_expiry(&mut item, expires);
                    job.record(&item)
                }
                Verdict::Keep => {
                    let k = kept.entry(p.region).or_default();
                    k.0 += 1;
                    k.1 += p.size_gib;
                }
            }
        }
        work.push(deletes);
    }
    drop(listing);
    extend_locks(job, session, extend).await;
    join_all(work.into_iter().map(|deletes| {
        stream::iter(deletes)
            .map(|(p, rule)| settle(job, session, account, p, rule, dry_run, deleted))
            .buffer_unordered(DELETES_IN_FLIGHT)
            .collect::<()>()
    }))
    .await;
    (kept, waiting)
}

/// The plan's points in each region; a region that cannot be listed is an item.
async fn list_plan<'r>(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    regions: &'r [String],
) -> Vec<(&'r String, Vec<RecoveryPoint>)> {
    let kinds = Kinds {
        ec2: true,
        rds: true,
        all_tags: false,
    };
    let listed = join_all(regions.iter().map(|region| {
        list_region(
            session,
            account,
            region,
            Some(&job.plan.name),
            kinds,
            &job.pacer,
        )
    }))
    .await;
    let mut listed_ok = Vec::new();
    for (region, r) in regions.iter().zip(listed) {
        match r {
            Ok(points) => listed_ok.push((region, points)),
            Err(e) => job.region_not_listed(&session.tenant.name, account, region, &e),
        }
    }
    listed_ok
}

/// A lock to extend: (region, point id, snapshots, mode, until).
type Extension = (
    String,
    String,
    Vec<String>,
    crate::config::LockMode,
    DateTime<Utc>,
);

/// Extends the locks of points a weekly/monthly rule keeps longer (lock.rs).
async fn extend_locks(job: &Job<'_>, session: &TenantSession, extend: Vec<Extension>) {
    for (region, id, snaps, mode, until) in extend {
        let errors = crate::aws::lock::extend(&session.ec2(&region), &snaps, mode, until).await;
        job.log(&format!(
            "Extended the {} lock of [{id}] in [{}/{region}] to {until}: a weekly/monthly rule keeps it{}",
            mode.as_str(),
            session.tenant.name,
            if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) }
        ));
    }
}

/// Whether this run deleted `p` already: its id, or every snapshot of it (a
/// set listed again with only some of its members has another id).
fn already_deleted(deleted: &HashSet<u64>, p: &RecoveryPoint) -> bool {
    deleted.contains(&point_key(&p.region, &p.id()))
        || (!p.snapshots.is_empty()
            && p.snapshots
                .iter()
                .all(|s| deleted.contains(&point_key(&p.region, &s.id))))
}

/// A point's or snapshot's place in the set of what this run deleted.
fn point_key(region: &str, id: &str) -> u64 {
    hash64(&(region, id))
}

/// Decides one region's points. A point `defer` names is kept for now.
#[allow(clippy::too_many_arguments)]
fn decide_region(
    job: &Job<'_>,
    tenant: &str,
    region: &str,
    points: Vec<RecoveryPoint>,
    sources: &BTreeSet<String>,
    now: DateTime<Utc>,
    dry_run: bool,
    defer: &dyn Fn(&RecoveryPoint) -> bool,
) -> Vec<(RecoveryPoint, Verdict, String, Option<DateTime<Utc>>)> {
    let plan = job.plan;
    // Decide per governing rule.
    let mut by_rule: Vec<(&Retention, Vec<RecoveryPoint>)> = Vec::new();
    for p in points {
        let r = rule_for(&p, &plan.retention, &plan.copies);
        match by_rule.iter_mut().find(|(x, _)| std::ptr::eq(*x, r)) {
            Some((_, v)) => v.push(p),
            None => by_rule.push((r, vec![p])),
        }
    }
    let mut decided = Vec::new();
    let mut deferred = 0;
    for (rule, group) in by_rule {
        let input: Vec<Point> = group.iter().map(|p| to_point(p, sources)).collect();
        // A dry run says when each kept point will go.
        let decisions = decide_with_expiry(&input, plan, rule, now, dry_run);
        drop(input);
        for (p, (d, expires)) in group.into_iter().zip(decisions) {
            debug_assert_eq!(p.id(), d.id);
            if d.verdict == Verdict::Delete && !dry_run && defer(&p) {
                deferred += 1;
                let why = format!("{}; {DEFERRED_FOR_COPY}", d.rule);
                decided.push((p, Verdict::Keep, why, None));
            } else {
                decided.push((p, d.verdict, d.rule, expires));
            }
        }
    }
    if deferred > 0 {
        job.log(&format!(
            "Leaving {deferred} expired original(s) in [{tenant}/{region}] until the copy job has copied them"
        ));
    }
    decided
}

/// Deletes (or, in a dry run, reports) one expired point; records what was
/// done, and adds a deleted point to `deleted`.
async fn settle(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    p: Decided,
    rule: String,
    dry_run: bool,
    deleted: &Mutex<HashSet<u64>>,
) {
    let tenant = &session.tenant.name;
    let region = &p.region;
    // A snapshot under an EBS Snapshot Lock cannot be deleted until the lock
    // expires: the point is kept, reported as held by lock (lock.rs).
    if let Some(held) = held_by_lock(job, session, &p).await {
        job.log(&format!(
            "Not deleting [{}] in [{tenant}/{region}]: {held}",
            p.id
        ));
        let why = format!("{rule}; {held}");
        job.record(&point_item(
            session,
            account,
            &p,
            ItemStatus::Kept,
            vec![],
            None,
            &why,
        ));
        return;
    }
    let item = if dry_run {
        point_item(
            session,
            account,
            &p,
            ItemStatus::WouldDelete,
            vec![],
            None,
            &rule,
        )
    } else {
        job.log(&format!(
            "Deleting {} [{}] of [{}] in [{tenant}/{region}] created {}: {}",
            p.kind.as_str(),
            p.id,
            p.source,
            p.created.to_rfc3339(),
            rule
        ));
        match delete_point(job, session, account, &p).await {
            Ok(ids) => {
                let mut d = deleted.lock().unwrap_or_else(|p| p.into_inner());
                d.insert(point_key(&p.region, &p.id));
                d.extend(p.snapshots.iter().map(|(s, _)| point_key(&p.region, s)));
                drop(d);
                point_item(session, account, &p, ItemStatus::Deleted, ids, None, &rule)
            }
            Err(e) if crate::aws::lock::is_locked_error(&e.code) => {
                let why = format!("{rule}; held by lock ({})", e.code);
                job.log(&format!("Not deleted [{}]: {why}", p.id));
                point_item(session, account, &p, ItemStatus::Kept, vec![], None, &why)
            }
            Err(e) => {
                job.log(&format!("Delete of [{}] failed: {e}", p.id));
                point_item(
                    session,
                    account,
                    &p,
                    ItemStatus::Failed,
                    vec![],
                    Some(e.to_string()),
                    &rule,
                )
            }
        }
    };
    job.record(&item);
}

/// `held by lock: snap-… compliance until …` when a snapshot of an EBS point is
/// still locked. Asked only for plans that lock (one DescribeLockedSnapshots
/// per point); a lock put by someone else is met as the delete's error instead.
async fn held_by_lock(job: &Job<'_>, session: &TenantSession, p: &Decided) -> Option<String> {
    if !crate::aws::lock::plan_locks(job.plan)
        || !matches!(p.kind, PointKind::SnapshotSet | PointKind::Ami)
    {
        return None;
    }
    let ids: Vec<String> = p.snapshots.iter().map(|(s, _)| s.clone()).collect();
    match crate::aws::lock::locks(&session.ec2(&p.region), &ids).await {
        Ok(locks) => {
            let held: Vec<String> = locks
                .iter()
                .filter(|(_, l)| l.holds())
                .map(|(s, l)| format!("{s} {}", l.describe()))
                .collect();
            (!held.is_empty()).then(|| format!("held by lock: {}", held.join(", ")))
        }
        // Unknown: keep the point rather than meet a lock halfway through it.
        Err(e) => Some(format!("held: lock state unknown ({e})")),
    }
}

fn point_item(
    session: &TenantSession,
    account: &str,
    p: &Decided,
    status: ItemStatus,
    deleted: Vec<String>,
    error: Option<String>,
    rule: &str,
) -> Item {
    Item {
        tenant: session.tenant.name.clone(),
        account: account.to_string(),
        region: p.region.clone(),
        kind: p.kind.into(),
        source_id: p.id.clone(),
        status,
        created: deleted,
        size_gib: p.size_gib,
        error,
        detail: json!({
            "source": p.source,
            "job": p.job,
            "created": p.created.to_rfc3339(),
            "copy_of": p.copy_of,
            "rule": rule,
        }),
    }
}

/// A dry run's kept point: when it will be deleted (`detail.expires`).
fn with_expiry(item: &mut Item, expires: Option<DateTime<Utc>>) {
    if let Some(e) = expires {
        item.detail["expires"] = json!(e.to_rfc3339());
    }
}

/// Deletes one point; returns the ids deleted (or found already gone).
/// Deletes one recovery point of this plan (an AMI is deregistered, then its
/// snapshots deleted): the backup's removal of a duplicate it made.
pub(crate) async fn delete_recovery_point(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    p: RecoveryPoint,
) -> Result<Vec<String>, AwsError> {
    let d = Decided::new(p, &job.plan.name);
    delete_point(job, session, account, &d).await
}

async fn delete_point(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    p: &Decided,
) -> Result<Vec<String>, AwsError> {
    let region = p.region.as_str();
    let plan = &job.plan.name;
    if !p.ours {
        return Err(AwsError {
            tenant: session.tenant.name.clone(),
            region: region.into(),
            action: "Delete".into(),
            resource: Some(p.id.clone()),
            code: "NotOurs".into(),
            message: format!(
                "refusing to delete: not tagged {} and {}={plan}, or held",
                tags::BACKUP,
                tags::PLAN
            ),
        });
    }
    let deadline = job.deadline();
    match p.kind {
        PointKind::SnapshotSet | PointKind::Ami => {
            let at = job.at(session, account, region);
            delete_ec2_point(job, &Ec2::new(session.ec2(region), at), &at, p, deadline).await
        }
        PointKind::DbSnapshot | PointKind::ClusterSnapshot => {
            let cluster = p.kind == PointKind::ClusterSnapshot;
            job.rds(session, account, region)
                .delete_snapshot(cluster, &p.id, deadline)
                .await?;
            Ok(vec![p.id.clone()])
        }
    }
}

/// An AMI is deregistered, then its snapshots deleted; a snapshot set's
/// snapshots are deleted. Only snapshots that carry the contract themselves.
async fn delete_ec2_point(
    job: &Job<'_>,
    ec2: &Ec2<'_>,
    at: &At<'_>,
    p: &Decided,
    deadline: Instant,
) -> Result<Vec<String>, AwsError> {
    let mut deleted = Vec::new();
    if p.kind == PointKind::Ami {
        ec2.deregister_image(&p.id, deadline).await?;
        job.log(&format!("Deregistered image [{}]", p.id));
        deleted.push(p.id.clone());
    }
    let mut in_use = Vec::new();
    for (sid, ours) in &p.snapshots {
        // The AMI's own view of its snapshots has no tags; only delete
        // snapshots that themselves carry the contract.
        if !ours {
            job.log(&format!(
                "Not deleting snapshot [{sid}]: it lacks the {} tags",
                tags::BACKUP
            ));
            continue;
        }
        match ec2.delete_snapshot(sid, deadline).await {
            Ok(()) => deleted.push(sid.clone()),
            // Still backing a registered AMI: never deleted on its own.
            Err(e) if e.code == "InvalidSnapshot.InUse" => in_use.push(sid.clone()),
            Err(e) => return Err(e),
        }
    }
    job.log(&format!(
        "Deleted snapshots [{}]",
        deleted
            .iter()
            .filter(|d| d.starts_with("snap-"))
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if !in_use.is_empty() {
        return Err(at.refusal(
            "DeleteSnapshot",
            &in_use.join(","),
            "InvalidSnapshot.InUse",
            "still used by a registered AMI; kept".into(),
        ));
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests;
