//! When will a kept recovery point be deleted? The retention [`decide`]
//! answers for one instant; this plays it forward.
//!
//! [`expiries`] is pure: from the points of a plan, its rule, `now` and the
//! future backup runs (the plan's schedule, see [`future_runs`]), it replays
//! the nights to come: at every run a new completed point of each (source,
//! region) group is made, and at every run and every `days` expiry the rule is
//! decided again and what it deletes is gone. A point's expiry is the first of
//! those instants that deletes it. So a point a weekly or monthly rule keeps
//! expires when later weeks or months push it out, not at `created + days`;
//! a point kept only as the newest of its live source expires at the next run.
//! A point held (`CV_Retain_Snap`), pending, not this plan's, or still kept at
//! the end of the horizon has none.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::retention::{decide, Point, Verdict};
use crate::config::{Retention, Schedule};
use crate::tags;

/// At most this many future runs are replayed (an hourly schedule and
/// `monthly = 12` would need 9,000; the points still kept after them have no
/// expiry).
pub const MAX_RUNS: usize = 3_000;

/// How far ahead a rule can keep a point, given a backup at every run: the
/// longest of `days`, `daily` days, `weekly` weeks and `monthly` months, plus
/// a bucket. (`count` is counted in runs by [`future_runs`].)
pub fn horizon(rule: &Retention) -> TimeDelta {
    let days = [
        rule.days.map(i64::from),
        rule.daily.map(|n| i64::from(n) + 1),
        rule.weekly.map(|n| 7 * (i64::from(n) + 1)),
        rule.monthly.map(|n| 31 * (i64::from(n) + 1)),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    TimeDelta::days(days + 1)
}

/// The backup runs after `now` that keep making points: the schedule's slots
/// (daily from `now` when the plan has none), until [`horizon`] and at least
/// `count + 1` runs, at most [`MAX_RUNS`].
pub fn future_runs(
    schedule: Option<&Schedule>,
    rule: &Retention,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let until = now + horizon(rule);
    let min_runs = rule.count.map_or(0, |c| c as usize + 1);
    let all: Vec<DateTime<Utc>> = match schedule {
        Some(s) => super::schedule::next_runs(s, now, MAX_RUNS),
        None => (1..=MAX_RUNS as i64)
            .map(|d| now + TimeDelta::days(d))
            .collect(),
    };
    all.into_iter()
        .enumerate()
        .take_while(|(i, t)| *t <= until || *i < min_runs)
        .map(|(_, t)| t)
        .collect()
}

/// The instant each point is deleted (in input order): `now` for a point the
/// rule deletes now, the first later run or `days` expiry that deletes it
/// with a new point made at every run of `runs`, `None` when nothing does.
pub fn expiries(
    points: &[Point],
    plan: &str,
    rule: &Retention,
    now: DateTime<Utc>,
    tz: Tz,
    runs: &[DateTime<Utc>],
) -> Vec<Option<DateTime<Utc>>> {
    let mut out = vec![None; points.len()];
    if rule.is_empty() {
        return out;
    }
    // Groups are decided independently: replay each on its own.
    let mut groups: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, p) in points.iter().enumerate() {
        let ours = p.tags.contains_key(tags::BACKUP)
            && p.tags.get(tags::PLAN).map(String::as_str) == Some(plan);
        if ours {
            groups
                .entry((p.source.as_str(), p.region.as_str()))
                .or_default()
                .push(i);
        }
    }
    for members in groups.values() {
        replay(points, members, plan, rule, now, tz, runs, &mut out);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn replay(
    points: &[Point],
    members: &[usize],
    plan: &str,
    rule: &Retention,
    now: DateTime<Utc>,
    tz: Tz,
    runs: &[DateTime<Utc>],
    out: &mut [Option<DateTime<Utc>>],
) {
    // Checks: now, every run (a new point), every `days` expiry (no new point).
    let mut checks: Vec<(DateTime<Utc>, bool)> = vec![(now, false)];
    checks.extend(runs.iter().filter(|t| **t > now).map(|t| (*t, true)));
    if let Some(d) = rule.days {
        checks.extend(
            members
                .iter()
                .map(|&i| points[i].created + TimeDelta::days(i64::from(d)))
                .filter(|t| *t > now)
                .map(|t| (t, false)),
        );
    }
    checks.sort();
    checks.dedup_by(|b, a| {
        // Same instant: a run (new point) wins.
        if a.0 == b.0 {
            a.1 |= b.1;
            true
        } else {
            false
        }
    });
    let first = &points[members[0]];
    let live = members.iter().any(|&i| points[i].source_exists);
    let mut new_tags: BTreeMap<String, String> = BTreeMap::new();
    for k in [tags::BACKUP, tags::PLAN] {
        if let Some(v) = first.tags.get(k) {
            new_tags.insert(k.to_string(), v.clone());
        }
    }
    // (index into `points`, or None for a simulated point; the point)
    let mut live_set: Vec<(Option<usize>, Point)> = members
        .iter()
        .map(|&i| (Some(i), points[i].clone()))
        .collect();
    let mut open = members.len();
    for (n, (t, run)) in checks.into_iter().enumerate() {
        if run {
            live_set.push((
                None,
                Point {
                    id: format!("~run-{n}"),
                    source: first.source.clone(),
                    region: first.region.clone(),
                    created: t,
                    tags: new_tags.clone(),
                    completed: true,
                    failed: false,
                    source_exists: live,
                },
            ));
        }
        let input: Vec<Point> = live_set.iter().map(|(_, p)| p.clone()).collect();
        let decisions = decide(&input, plan, rule, t, tz);
        let mut keep = Vec::with_capacity(live_set.len());
        for ((idx, p), d) in live_set.into_iter().zip(decisions) {
            if d.verdict == Verdict::Delete {
                if let Some(i) = idx {
                    out[i] = Some(t);
                    open -= 1;
                }
            } else {
                keep.push((idx, p));
            }
        }
        live_set = keep;
        if open == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn point(id: &str, created: &str) -> Point {
        Point {
            id: id.into(),
            source: "i-1".into(),
            region: "us-east-1".into(),
            created: at(created),
            tags: [
                (tags::BACKUP.to_string(), "1".to_string()),
                (tags::PLAN.to_string(), "p".to_string()),
            ]
            .into(),
            completed: true,
            failed: false,
            source_exists: true,
        }
    }

    #[test]
    fn a_days_rule_expires_at_created_plus_days() {
        let rule = Retention {
            days: Some(7),
            ..Default::default()
        };
        let now = at("2026-03-10T00:00:00Z");
        let pts = vec![point("a", "2026-03-05T02:00:00Z")];
        let runs = future_runs(None, &rule, now);
        let e = expiries(&pts, "p", &rule, now, chrono_tz::UTC, &runs);
        assert_eq!(e, vec![Some(at("2026-03-12T02:00:00Z"))]);
    }

    #[test]
    fn an_expired_point_expires_now_and_a_held_one_never() {
        let rule = Retention {
            days: Some(1),
            ..Default::default()
        };
        let now = at("2026-03-10T00:00:00Z");
        let mut held = point("h", "2026-03-01T00:00:00Z");
        held.tags.insert(tags::RETAIN.into(), String::new());
        let pts = vec![
            point("old", "2026-03-01T00:00:00Z"),
            point("new", "2026-03-09T12:00:00Z"),
            held,
        ];
        let runs = future_runs(None, &rule, now);
        let e = expiries(&pts, "p", &rule, now, chrono_tz::UTC, &runs);
        assert_eq!(e[0], Some(now));
        // A day old at 03-10 12:00, but the newest of its live source until
        // the next run (daily from now) makes a newer one.
        assert_eq!(e[1], Some(at("2026-03-11T00:00:00Z")));
        assert_eq!(e[2], None);
    }

    #[test]
    fn a_weekly_rule_keeps_past_the_days_rule() {
        // days = 7, weekly = 4: the Sunday point of a week is kept for four
        // more weeks with points, one made every day.
        let rule = Retention {
            days: Some(7),
            weekly: Some(4),
            ..Default::default()
        };
        let now = at("2026-03-10T00:00:00Z");
        // Sunday 2026-03-08, the newest of ISO week 10.
        let pts = vec![
            point("sat", "2026-03-07T01:00:00Z"),
            point("sun", "2026-03-08T01:00:00Z"),
        ];
        let runs = future_runs(None, &rule, now);
        let e = expiries(&pts, "p", &rule, now, chrono_tz::UTC, &runs);
        // Saturday's is not the newest of its week: the days rule ends it.
        assert_eq!(e[0], Some(at("2026-03-14T01:00:00Z")));
        // Sunday's goes when four newer weeks have a point: the run on
        // Monday 2026-03-30 (week 14; the daily runs fall at 00:00).
        assert_eq!(e[1], Some(at("2026-03-30T00:00:00Z")));
    }
}
