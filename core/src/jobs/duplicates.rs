//! Two runs of one plan at once: exactly one recovery point per source.
//!
//! On one access node a plan's runs take turns (a lock per plan in the state
//! directory). Two nodes cannot see each other's locks, and EC2 has no atomic
//! way to claim a snapshot set, so overlapping runs of one plan on two nodes
//! (a misconfigured shard, a second agent with a fresh state directory) are
//! resolved after the fact, deterministically, by the runs themselves:
//!
//! 1. The points of one source in one region (originals of this plan, any
//!    agent) are ordered by creation time, then agent id, job and id.
//! 2. Going through them in that order, a completed point is **superseded**
//!    when an earlier point that is kept, made by another run, was created
//!    after the superseded point's run started (`_GX_JOB_START_`): while
//!    that run was going, someone else had already made the point.
//!    Otherwise it is kept. Failed and unusable points take no part. Times
//!    are whole seconds, and "after" is strict: a point made in the second a
//!    run started counts as made before it, so a run that starts the second
//!    another ended never removes its point (two points rather than none).
//! 3. Each run removes the points it made that are superseded, before it
//!    ends, and reports them as duplicates removed. Nobody removes another
//!    agent's point.
//!
//! Every run computes the same answer from the same points (a later point
//! cannot change the verdict on an earlier one), the first point of a
//! source is always kept, and a superseded point always has a kept point
//! made during its own run: the source ends with one point for the
//! overlapping runs. While an earlier point is still pending, the verdict
//! waits for it (it may yet fail).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tokio::time::Instant;

use crate::catalog::{list_region, Kinds, PointState, RecoveryPoint};
use crate::jobs::backup::RegionWork;
use crate::jobs::work::Job;
use crate::store::ledger::ItemStatus;

/// What a run knows of one point of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub agent: String,
    pub job: u64,
    /// When its run started; `None` for points made before runs were
    /// tagged with it: those are never superseded.
    pub run_start: Option<i64>,
    /// Creation time, unix seconds.
    pub created: i64,
    pub state: PointState,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Superseded by the point at this index.
    Duplicate(usize),
    /// An earlier point is still pending: decide later.
    Wait,
}

/// The verdict on `points[x]` (rules 1–2 of the module comment).
pub fn decide(points: &[Seen], x: usize) -> Verdict {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        let (p, q) = (&points[a], &points[b]);
        (p.created, &p.agent, p.job, &p.id).cmp(&(q.created, &q.agent, q.job, &q.id))
    });
    let run = |i: usize| (&points[i].agent, points[i].job);
    let mut kept: Vec<usize> = Vec::new();
    let mut pending_before = false;
    for i in order {
        let p = &points[i];
        let by = p.run_start.and_then(|start| {
            kept.iter()
                .copied()
                .find(|&k| run(k) != run(i) && points[k].created > start)
        });
        if i == x {
            return match (pending_before, by) {
                (true, _) => Verdict::Wait,
                (false, Some(k)) => Verdict::Duplicate(k),
                (false, None) => Verdict::Keep,
            };
        }
        match p.state {
            PointState::Completed if by.is_none() => kept.push(i),
            PointState::Pending => pending_before = true,
            _ => {}
        }
    }
    Verdict::Keep
}

fn seen(p: &RecoveryPoint) -> Seen {
    Seen {
        agent: p.agent.clone(),
        job: p.job.unwrap_or(0),
        run_start: p.job_start(),
        created: p.created.timestamp(),
        state: p.state,
        id: p.id(),
    }
}

/// After a region's points are made: removes the ones this job made that
/// another run of the plan made first (see the module comment), and records
/// them as `DuplicateRemoved`, replacing their `Completed` items. Returns the
/// sources whose point was found to be a duplicate.
pub(crate) async fn resolve_region(
    job: &Job<'_>,
    work: &RegionWork,
    deadline: Instant,
) -> BTreeSet<String> {
    let mut removed = BTreeSet::new();
    if job.identity.agent.is_empty() || work.sources.is_empty() {
        return removed;
    }
    let tenant = &work.session.tenant.name;
    let region = &work.region;
    let ours = |p: &RecoveryPoint| {
        let get = |k: &str| p.tags.get(k).cloned();
        job.identity.made(get) || job.adopt.iter().any(|a| a.made(get))
    };
    // Only the kinds this job backed up here: a region without DB
    // instances is not asked for DB snapshots, and the other way round.
    let has = |db: bool| work.sources.iter().any(|s| db != s.is_instance());
    let backed_up: BTreeSet<&str> = work.sources.iter().map(|s| &*s.id).collect();
    let kinds = Kinds {
        ec2: has(false),
        rds: has(true),
        all_tags: false,
    };
    let mut delay = job.options.poll_initial;
    loop {
        let points = match list_region(
            &work.session,
            &work.account,
            region,
            Some(&job.plan.name),
            kinds,
            &job.pacer,
        )
        .await
        {
            Ok(p) => p,
            Err(e) => {
                job.log(&format!(
                    "Cannot check [{tenant}/{region}] for points another run of plan [{}] made at the same time: {e}",
                    job.plan.name
                ));
                return removed;
            }
        };
        // The originals of each source this job backed up.
        let mut by_source: BTreeMap<&str, Vec<&RecoveryPoint>> = BTreeMap::new();
        for p in &points {
            if p.copy_of().is_none() && backed_up.contains(p.source.as_str()) {
                by_source.entry(p.source.as_str()).or_default().push(p);
            }
        }
        let mut waiting = false;
        let mut remove = Vec::new();
        for list in by_source.values() {
            let all: Vec<Seen> = list.iter().map(|p| seen(p)).collect();
            for (x, p) in list.iter().enumerate() {
                if !ours(p) || !p.completed() {
                    continue;
                }
                match decide(&all, x) {
                    Verdict::Keep => {}
                    Verdict::Wait => waiting = true,
                    Verdict::Duplicate(k) => remove.push(((*p).clone(), list[k].clone())),
                }
            }
        }
        if waiting && Instant::now() + delay <= deadline {
            job.log(&format!(
                "Waiting for points another run of plan [{}] is making in [{tenant}/{region}] before deciding which are duplicates",
                job.plan.name
            ));
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(job.options.poll_max);
            continue;
        }
        for (dup, kept) in remove {
            removed.insert(dup.source.clone());
            remove_one(job, work, dup, kept).await;
        }
        return removed;
    }
}

async fn remove_one(job: &Job<'_>, work: &RegionWork, dup: RecoveryPoint, kept: RecoveryPoint) {
    let Some(s) = work.sources.iter().find(|s| *s.id == *dup.source) else {
        return;
    };
    let (tenant, region) = (&work.session.tenant.name, &work.region);
    let what = format!(
        "[{}] of [{}] duplicates [{}] made by job {} at {} while this run was going",
        dup.id(),
        dup.source,
        kept.id(),
        kept.job_label(),
        kept.created.format("%Y-%m-%dT%H:%M:%SZ")
    );
    job.log(&format!("{what}: removing it"));
    let r =
        crate::jobs::prune::delete_recovery_point(job, &work.session, &work.account, dup.clone())
            .await;
    let mut item = crate::store::ledger::Item {
        tenant: tenant.clone(),
        account: work.account.clone(),
        region: region.clone(),
        kind: s.kind,
        source_id: dup.source.clone(),
        status: ItemStatus::DuplicateRemoved,
        created: vec![],
        size_gib: dup.size_gib,
        error: None,
        detail: json!({
            "group": &*s.group,
            "removed": dup.id(),
            "kept": kept.id(),
            "kept_job": kept.job_label(),
            "kept_created": kept.created,
        }),
    };
    match r {
        Ok(deleted) => {
            item.created = vec![];
            item.detail["deleted"] = json!(deleted);
            job.log(&format!(
                "Removed duplicate [{}] of [{}]",
                dup.id(),
                dup.source
            ));
        }
        Err(e) => {
            item.status = ItemStatus::Failed;
            item.created = dup.snapshots.iter().map(|s| s.id.clone()).collect();
            if item.created.is_empty() {
                item.created = vec![dup.id()];
            }
            item.error = Some(format!(
                "tenant {tenant} region {region}: {what}, and it could not be removed: {e}"
            ));
            job.log(item.error.as_deref().unwrap_or_default());
        }
    }
    job.record(&item);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(agent: &str, job: u64, start: i64, created: i64, state: PointState) -> Seen {
        Seen {
            agent: agent.into(),
            job,
            run_start: Some(start),
            created,
            state,
            id: format!("{agent}-{job}-{created}"),
        }
    }
    use PointState::{Completed as C, Failed as F, Pending as P};

    #[test]
    fn the_later_of_two_overlapping_runs_points_is_the_duplicate() {
        // Run a started at 100, made its point at 105; run b started at 101
        // and made its point at 106.
        let pts = [p("a", 1000, 100, 105, C), p("b", 1000, 101, 106, C)];
        assert_eq!(decide(&pts, 0), Verdict::Keep);
        assert_eq!(decide(&pts, 1), Verdict::Duplicate(0));
    }

    #[test]
    fn a_point_made_before_a_run_started_is_a_previous_point_not_a_duplicate() {
        // Yesterday's point, and today's run: two points, both kept.
        let pts = [p("a", 1000, 10, 12, C), p("a", 1001, 100, 105, C)];
        assert_eq!(decide(&pts, 1), Verdict::Keep);
        // Another agent's run that ended before this one started.
        let pts = [p("b", 1000, 90, 95, C), p("a", 1000, 100, 105, C)];
        assert_eq!(decide(&pts, 1), Verdict::Keep);
    }

    #[test]
    fn the_run_that_started_first_but_made_its_point_later_yields() {
        // Run a started first (100) but reached this source later (110);
        // run b started at 101 and made its point at 103: a yields.
        let pts = [p("a", 1000, 100, 110, C), p("b", 1000, 101, 103, C)];
        assert_eq!(decide(&pts, 1), Verdict::Keep);
        assert_eq!(decide(&pts, 0), Verdict::Duplicate(1));
    }

    #[test]
    fn an_earlier_pending_point_is_waited_for_and_a_failed_one_does_not_count() {
        let pts = [p("a", 1000, 100, 105, P), p("b", 1000, 101, 106, C)];
        assert_eq!(decide(&pts, 1), Verdict::Wait);
        let pts = [p("a", 1000, 100, 105, F), p("b", 1000, 101, 106, C)];
        assert_eq!(decide(&pts, 1), Verdict::Keep);
    }

    #[test]
    fn in_a_chain_of_three_runs_one_point_is_kept_and_each_removed_one_had_it_made_during_its_run()
    {
        let pts = [
            p("c", 7, 100, 102, C),
            p("b", 5, 101, 104, C),
            p("a", 1000, 103, 106, C),
        ];
        assert_eq!(decide(&pts, 0), Verdict::Keep);
        assert_eq!(decide(&pts, 1), Verdict::Duplicate(0));
        // a's run started at 103, after c's point (102): b's point (104),
        // made during a's run, is itself removed, so a's point is kept.
        assert_eq!(decide(&pts, 2), Verdict::Keep);
    }

    #[test]
    fn the_verdicts_agree_whoever_computes_them_and_the_first_point_is_always_kept() {
        // Every ordering of the same points gives the same verdicts.
        let pts = vec![
            p("a", 1, 100, 101, C),
            p("b", 1, 100, 101, C),
            p("c", 2, 99, 104, C),
            p("a", 2, 105, 106, C),
        ];
        let verdicts: Vec<Verdict> = (0..pts.len()).map(|x| decide(&pts, x)).collect();
        let mut rev = pts.clone();
        rev.reverse();
        let back: Vec<Verdict> = (0..rev.len()).map(|x| decide(&rev, x)).collect();
        for (i, v) in verdicts.iter().enumerate() {
            let j = pts.len() - 1 - i;
            let same = match (v, &back[j]) {
                (Verdict::Duplicate(k), Verdict::Duplicate(l)) => pts[*k] == rev[*l],
                (a, b) => a == b,
            };
            assert!(same, "point {i}: {v:?} vs {:?}", back[j]);
        }
        assert_eq!(verdicts[0], Verdict::Keep, "a@1 is first (agent order)");
        assert_eq!(verdicts[1], Verdict::Duplicate(0));
        assert_eq!(verdicts[2], Verdict::Duplicate(0));
        assert_eq!(verdicts[3], Verdict::Keep);
    }

    #[test]
    fn points_without_a_run_start_are_never_removed() {
        let mut old = p("", 1000, 0, 105, C);
        old.run_start = None;
        let pts = [p("a", 1000, 100, 101, C), old];
        assert_eq!(decide(&pts, 1), Verdict::Keep);
    }
}
