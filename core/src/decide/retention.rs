//! Data Aging: which recovery points a plan's retention lets prune delete.
//!
//! [`decide`] is a pure function of the catalog, the plan name, the
//! [`Retention`] rule, `now` and a time zone: no I/O, no clock. It returns one
//! [`Decision`] per input point, in input order, each with the rule that made
//! it, so that `rolesnap prune --dry-run --as-of TIME` can print them and tables
//! can test them.
//!
//! # Semantics
//!
//! The checks run in this order; the first that applies decides.
//!
//! 1. **Not ours → Keep.** A point without the `_GX_BACKUP_` tag (any value)
//!    is kept (`no _GX_BACKUP_ tag`), and so is one whose `_GX_PLAN_` is
//!    missing (`no _GX_PLAN_ tag`) or names another plan
//!    (`not this plan's (_GX_PLAN_=other)`). Such points are invisible to
//!    every rule below: they neither count nor protect.
//! 2. **Hold → Keep.** `CV_Retain_Snap` with any value (even empty):
//!    `CV_Retain_Snap hold`.
//! 3. **Pending → Keep** (`pending`): not completed yet, and not failed.
//! 4. **Empty retention → Keep** (`no retention rule set`): a rule with none
//!    of `days`, `count`, `daily`, `weekly`, `monthly` deletes nothing.
//! 5. **Failed.** A point whose creation failed (an EBS snapshot in error,
//!    a failed AMI or RDS snapshot) never completes. It is deleted once a
//!    newer (or as new) point of its (source, region) has completed
//!    (`failed, and a newer point of its source completed`), and kept until
//!    then (`failed; kept until a newer point of its source completes`): what
//!    did complete in it may be all there is of its source. It takes no rank
//!    and protects nothing.
//! 6. **From the future → Keep** (`created after now`): a point created after
//!    `now` (clock skew, or an `--as-of` in the past).
//! 7. **Keep rules.** A point is kept when *any* configured rule keeps it;
//!    the rule text lists every rule that does, joined by `"; "`.
//! 8. **Last point of a live source.** Unless `allow_delete_last`, a point the
//!    rules would delete is kept when it is the newest completed point of its
//!    (source, region) and the source still exists:
//!    `newest completed point of a live source; otherwise expired: …`.
//! 9. Otherwise **Delete**, `expired: …` listing, joined by `" and "`, why
//!    each configured rule did not keep it.
//!
//! ## Groups and ranking
//!
//! Points that pass 1 are grouped by (`source`, `region`): a cross-region copy
//! is ranked and protected in its own region. Within a group the **ranked**
//! points are the completed points without a hold. Held and pending points are
//! kept by their own rule and take no `count` or GFS slot, so a hold never
//! causes another point to be deleted. A point's rank is the number of ranked
//! points *strictly* newer than it, so points created at the same instant
//! share a rank and are kept or dropped together (a tie can keep more than N).
//!
//! ## The rules
//!
//! * `days = D`: kept while `now - created < D × 24 h`. A point exactly `D`
//!   days old is expired (`age 7d >= 7d`); one second younger is kept
//!   (`age 6d23h59m59s < 7d`). Days are 24-hour periods, independent of the
//!   time zone and of DST. `days = 0` keeps nothing.
//! * `count = N`: kept when fewer than N ranked points of its group are
//!   strictly newer (`newest 3 of source`).
//! * `daily = N`, `weekly = N`, `monthly = N` (grandfather-father-son): each
//!   ranked point falls in a bucket, its calendar day, ISO 8601 week (Monday
//!   to Sunday, `2026-W53`) or calendar month, taken in time zone `tz`.
//!   Counting back from the bucket that contains `now`, the **last N buckets
//!   that contain at least one ranked point** of the group are kept, and in
//!   each the newest point (all points tied for newest). An empty bucket does
//!   not use a slot, so `daily = 7` keeps seven points, one per each of the
//!   last seven days that had one, however far back they are (the convention
//!   of restic's `--keep-daily`). Buckets after `now`'s bucket take no slot.
//!   Rule texts: `daily keep 2026-11-27`, `weekly keep 2026-W48`,
//!   `monthly keep 2026-11`; misses: `not the newest of day 2026-11-27`,
//!   `day 2026-11-20 not among the last 7 with points`.
//!
//! ## Protection of the last point
//!
//! Within a group the newest completed points are the completed points with no
//! completed point strictly newer, held ones included (a held newest point
//! already leaves the source a recovery point). The source is live when any
//! point of the group says `source_exists`. Protection is per (source, region),
//! so each region keeps its last copy.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::Retention;
use crate::tags;

/// The start of the rule text of a point kept only as the newest completed
/// point of its live source (rule 8): a newer completed point lets it go.
pub const NEWEST_OF_LIVE_SOURCE: &str = "newest completed point of a live source";

/// The start of the rule text of a failed point kept until a newer point of
/// its source completes (rule 5).
pub const FAILED_UNTIL_NEWER: &str = "failed; kept until a newer point of its source";

/// One recovery point (snapshot set, AMI, DB snapshot, cluster snapshot) in
/// one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// e.g. `"snap-1,snap-2"`, `"ami-…"` or an RDS snapshot id: opaque.
    pub id: String,
    /// Source instance / DB / cluster id (the `_GX_SOURCE_` tag).
    pub source: String,
    pub region: String,
    pub created: DateTime<Utc>,
    /// All its tags.
    pub tags: BTreeMap<String, String>,
    /// False while pending / creating, and when it failed.
    pub completed: bool,
    /// Its creation failed (an EBS snapshot in error, a failed AMI or RDS
    /// snapshot): it will never complete.
    #[serde(default)]
    pub failed: bool,
    /// The source resource still exists.
    pub source_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Keep,
    Delete,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Keep => "keep",
            Verdict::Delete => "delete",
        })
    }
}

/// What to do with one point, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub id: String,
    pub verdict: Verdict,
    /// Human reason, e.g. `age 3d < 7d`, `newest 3 of source`,
    /// `expired: age 9d >= 7d and not among newest 3`.
    pub rule: String,
}

/// Decides, for every point, whether the retention `rule` of `plan` keeps or
/// deletes it at time `now`; calendar buckets are taken in `tz`. One decision
/// per point, in input order. See the module documentation for the semantics.
pub fn decide(
    points: &[Point],
    plan: &str,
    rule: &Retention,
    now: DateTime<Utc>,
    tz: Tz,
) -> Vec<Decision> {
    let ours: Vec<bool> = points.iter().map(|p| is_ours(p, plan)).collect();

    let mut groups: BTreeMap<(&str, &str), Group> = BTreeMap::new();
    for (p, _) in points.iter().zip(&ours).filter(|(_, &o)| o) {
        let g = groups
            .entry((p.source.as_str(), p.region.as_str()))
            .or_default();
        g.live |= p.source_exists;
        if p.completed {
            g.newest = g.newest.max(Some(p.created));
        }
    }
    for (i, p) in points.iter().enumerate() {
        if ours[i] && p.completed && !is_held(p) {
            if let Some(g) = groups.get_mut(&(p.source.as_str(), p.region.as_str())) {
                g.ranked.push(i);
            }
        }
    }

    let mut reasons = vec![Reasons::default(); points.len()];
    if !rule.is_empty() {
        for g in groups.values() {
            apply_rules(points, &g.ranked, rule, now, tz, &mut reasons);
        }
    }

    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let group = groups.get(&(p.source.as_str(), p.region.as_str()));
            let (verdict, rule) = judge(p, plan, rule, now, group, &reasons[i]);
            Decision {
                id: p.id.clone(),
                verdict,
                rule,
            }
        })
        .collect()
}

/// A (source, region) group of this plan's points.
#[derive(Default)]
struct Group {
    /// Creation time of the newest completed point, held ones included.
    newest: Option<DateTime<Utc>>,
    /// Some point says the source still exists.
    live: bool,
    /// Completed, not held: what the keep rules rank.
    ranked: Vec<usize>,
}

/// Why each configured rule kept a ranked point, or did not.
#[derive(Default, Clone)]
struct Reasons {
    keep: Vec<String>,
    miss: Vec<String>,
}

fn is_ours(p: &Point, plan: &str) -> bool {
    p.tags.contains_key(tags::BACKUP) && p.tags.get(tags::PLAN).map(String::as_str) == Some(plan)
}

fn is_held(p: &Point) -> bool {
    p.tags.contains_key(tags::RETAIN)
}

fn judge(
    p: &Point,
    plan: &str,
    rule: &Retention,
    now: DateTime<Utc>,
    group: Option<&Group>,
    reasons: &Reasons,
) -> (Verdict, String) {
    let keep = |why: String| (Verdict::Keep, why);
    if !p.tags.contains_key(tags::BACKUP) {
        return keep(format!("no {} tag", tags::BACKUP));
    }
    match p.tags.get(tags::PLAN) {
        None => return keep(format!("no {} tag", tags::PLAN)),
        Some(other) if other != plan => {
            return keep(format!("not this plan's ({}={other})", tags::PLAN))
        }
        Some(_) => {}
    }
    if is_held(p) {
        return keep(format!("{} hold", tags::RETAIN));
    }
    if !p.completed && !p.failed {
        return keep("pending".into());
    }
    if rule.is_empty() {
        return keep("no retention rule set".into());
    }
    if p.failed {
        // What did complete in it (a set's other volumes) may be all there
        // is of its source until a newer point completes.
        return match group.and_then(|g| g.newest) {
            // As new will do: times have a second's resolution.
            Some(newest) if newest >= p.created => (
                Verdict::Delete,
                "failed, and a newer point of its source completed".into(),
            ),
            _ => keep(format!("{FAILED_UNTIL_NEWER} completes")),
        };
    }
    if p.created > now {
        return keep("created after now".into());
    }
    if !reasons.keep.is_empty() {
        return keep(reasons.keep.join("; "));
    }
    let expired = format!("expired: {}", reasons.miss.join(" and "));
    let last_of_live = group.is_some_and(|g| g.live && g.newest == Some(p.created));
    if !rule.allow_delete_last && last_of_live {
        return keep(format!("{NEWEST_OF_LIVE_SOURCE}; otherwise {expired}"));
    }
    (Verdict::Delete, expired)
}

/// Runs every configured keep rule over one group's ranked points.
fn apply_rules(
    points: &[Point],
    ranked: &[usize],
    rule: &Retention,
    now: DateTime<Utc>,
    tz: Tz,
    reasons: &mut [Reasons],
) {
    if let Some(d) = rule.days {
        let limit = TimeDelta::days(i64::from(d));
        for &i in ranked {
            let age = now - points[i].created;
            let r = &mut reasons[i];
            if age < limit {
                r.keep.push(format!("age {} < {d}d", fmt_age(age)));
            } else {
                r.miss.push(format!("age {} >= {d}d", fmt_age(age)));
            }
        }
    }

    if let Some(n) = rule.count {
        let mut by_age = ranked.to_vec();
        by_age.sort_by(|&a, &b| points[b].created.cmp(&points[a].created));
        // Rank = number of points strictly newer; ties share it.
        let mut rank = 0;
        for (k, &i) in by_age.iter().enumerate() {
            if k > 0 && points[by_age[k - 1]].created > points[i].created {
                rank = k;
            }
            let r = &mut reasons[i];
            if rank < n as usize {
                r.keep.push(format!("newest {n} of source"));
            } else {
                r.miss.push(format!("not among newest {n}"));
            }
        }
    }

    for (n, period) in [
        (rule.daily, Period::Day),
        (rule.weekly, Period::Week),
        (rule.monthly, Period::Month),
    ] {
        if let Some(n) = n {
            gfs(points, ranked, period, n, now, tz, reasons);
        }
    }
}

/// One GFS level: keep the newest point of each of the last `n` buckets that
/// have a point, counting back from `now`'s bucket.
fn gfs(
    points: &[Point],
    ranked: &[usize],
    period: Period,
    n: u32,
    now: DateTime<Utc>,
    tz: Tz,
    reasons: &mut [Reasons],
) {
    let now_bucket = period.bucket(now, tz);
    let mut newest: BTreeMap<Bucket, DateTime<Utc>> = BTreeMap::new();
    for &i in ranked {
        let b = period.bucket(points[i].created, tz);
        if b <= now_bucket {
            let t = newest.entry(b).or_insert(points[i].created);
            *t = (*t).max(points[i].created);
        }
    }
    let kept: BTreeSet<Bucket> = newest.keys().rev().take(n as usize).copied().collect();
    for &i in ranked {
        let p = &points[i];
        let b = period.bucket(p.created, tz);
        let label = period.label(b);
        let unit = period.unit();
        let r = &mut reasons[i];
        if kept.contains(&b) {
            if newest.get(&b) == Some(&p.created) {
                r.keep.push(format!("{} keep {label}", period.rule()));
            } else {
                r.miss.push(format!("not the newest of {unit} {label}"));
            }
        } else if b > now_bucket {
            r.miss.push(format!("{unit} {label} is after now"));
        } else {
            r.miss
                .push(format!("{unit} {label} not among the last {n} with points"));
        }
    }
}

/// A calendar bucket; orders chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Bucket(i32, u32, u32);

#[derive(Debug, Clone, Copy)]
enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    fn bucket(self, t: DateTime<Utc>, tz: Tz) -> Bucket {
        let d = t.with_timezone(&tz).date_naive();
        match self {
            Period::Day => Bucket(d.year(), d.month(), d.day()),
            Period::Week => {
                let w = d.iso_week();
                Bucket(w.year(), w.week(), 0)
            }
            Period::Month => Bucket(d.year(), d.month(), 0),
        }
    }

    fn label(self, Bucket(y, a, b): Bucket) -> String {
        match self {
            Period::Day => format!("{y:04}-{a:02}-{b:02}"),
            Period::Week => format!("{y:04}-W{a:02}"),
            Period::Month => format!("{y:04}-{a:02}"),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    fn rule(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
        }
    }
}

/// `6d23h59m59s`; zero parts left out, `0s` for nothing.
fn fmt_age(age: TimeDelta) -> String {
    let s = age.num_seconds().max(0);
    let mut out = String::new();
    for (v, unit) in [
        (s / 86_400, 'd'),
        (s % 86_400 / 3_600, 'h'),
        (s % 3_600 / 60, 'm'),
        (s % 60, 's'),
    ] {
        if v != 0 {
            let _ = write!(out, "{v}{unit}");
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests;
