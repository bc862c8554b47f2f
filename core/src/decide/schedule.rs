//! When a plan runs: the scheduler's decisions as pure functions.
//!
//! Every function here is a pure function of (schedule, last run, now); the
//! `agent` daemon wraps them with the real clock and the job ledger. Times go
//! in and come out in UTC; the cron expression is evaluated in the plan's time
//! zone.
//!
//! # How slots are computed
//!
//! The `cron` crate (0.15) walks the calendar fields of a `DateTime<Z>` and
//! maps each candidate wall-clock time to an instant with
//! `TimeZone::with_ymd_and_hms`. With a time zone that has daylight saving
//! time it does this (pinned by the `cron_crate_*` tests below):
//!
//! * **a local time that does not exist** (spring forward, e.g. 02:30
//!   Europe/Berlin on 29 March 2026): the candidate is silently skipped, so a
//!   daily 02:30 plan does *not run at all* that day;
//! * **a local time that occurs twice** (fall back, e.g. 02:30 Europe/Berlin on
//!   25 October 2026): both instants are returned, so a daily 02:30 plan runs
//!   *twice* that night, an hour apart; a sub-hourly plan gets both passes
//!   through the repeated hour interleaved (02:00 CEST, 02:00 CET, 02:15 CEST,
//!   02:15 CET, ...), so the sequence goes back in time.
//!
//! Neither is acceptable for a backup plan, so this module asks the crate only
//! for *wall-clock* times (it evaluates the expression on a calendar without
//! DST: the local time written as if it were UTC) and maps each wall-clock time
//! to an instant itself:
//!
//! * a local time that exists once is that instant;
//! * a local time that occurs twice runs **once**, at its first occurrence
//!   (the earlier instant, still on summer time). Consequence for sub-hourly
//!   plans: the repeated hour is not run a second time, e.g. a 15-minute plan
//!   in Berlin runs 02:45 CEST and then 03:00 CET, 75 minutes later;
//! * a local time that does not exist runs at **the first valid instant after
//!   the gap** (03:00 CEST = 01:00 UTC for Berlin's 02:30 on 29 March), so the
//!   plan still runs that day. Several slots that fall into one gap (a
//!   15-minute plan between 02:00 and 02:59) and a slot at the end of the gap
//!   itself (03:00) collapse into that single run.
//!
//! The resulting instants are strictly increasing.
//!
//! # Day-of-week numbers
//!
//! The `cron` crate numbers days of the week 1 (Sunday) to 7 (Saturday), not
//! crontab's 0/7 (Sunday) to 6 (Saturday); it also combines a restricted day
//! of month and day of week with AND, where crontab uses OR. This module reads
//! [`Schedule::cron`], the form the crate understands, as configuration
//! normalised it; names (`MON-FRI`) mean the same in both dialects.

use std::fmt;
use std::str::FromStr;

use chrono::offset::LocalResult;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::config::Schedule;

/// Counting missed slots stops here (the count saturates), so that a very
/// frequent schedule and a long outage cannot stall the daemon.
pub const MAX_COUNTED: usize = 1_000_000;

/// Next run times strictly after `after`, in UTC (for `rolesnap schedule`).
///
/// Fewer than `n` when the schedule ends (a year field) and none when the
/// expression does not parse (configuration has already rejected it).
pub fn next_runs(s: &Schedule, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    match parse(s) {
        Some(cron) => slots_after(&cron, s.timezone, after).take(n).collect(),
        None => Vec::new(),
    }
}

/// Whether a plan runs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Run now, for `slot`; `missed` older slots since the last run are skipped.
    Now {
        slot: DateTime<Utc>,
        /// Older slots skipped.
        missed: usize,
    },
    /// Nothing to do before this instant (`DateTime::<Utc>::MAX_UTC` when the
    /// schedule has no slot left).
    At(DateTime<Utc>),
}

/// [`Due`] with what led to it, for `cvd.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub due: Due,
    /// Slots since the last run that will never be run: `missed` of
    /// [`Due::Now`], or with [`Due::At`] the slots that passed beyond the
    /// catch-up window. Zero when the plan never ran (nothing was missed).
    pub skipped: usize,
    pub reason: String,
}

/// Is a run due at `now`, given the last run's slot (None = never ran)?
/// Catch-up policy: if one or more slots passed since `last_slot` (e.g. the agent was down),
/// run ONCE now for the most recent missed slot (not once per missed slot), but only if that slot is
/// within `catch_up` of now; older missed slots are skipped and counted. With last_slot None, the
/// agent does not run immediately at first start unless a slot is within `catch_up` before now.
pub fn due(
    s: &Schedule,
    last_slot: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    catch_up: chrono::Duration,
) -> Due {
    decide(s, last_slot, now, catch_up).due
}

/// [`due`], with the number of skipped slots and a reason.
///
/// A slot is due when `last_slot < slot <= now` and `now - slot <= catch_up`
/// (a negative `catch_up` counts as zero: a slot is then due only at its exact
/// instant). When nothing is due, [`Due::At`] names the first slot after both
/// `now` and `last_slot` (the latter matters only if the clock went back).
/// The daemon records the slot it ran; a skip needs no record, the next call
/// counts the skipped slots again.
pub fn decide(
    s: &Schedule,
    last_slot: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    catch_up: chrono::Duration,
) -> Decision {
    let catch_up = catch_up.max(Duration::zero());
    let Some(cron) = parse(s) else {
        return Decision {
            due: Due::At(DateTime::<Utc>::MAX_UTC),
            skipped: 0,
            reason: format!(
                "schedule `{}` is not a valid cron expression",
                s.cron_source
            ),
        };
    };
    let tz = s.timezone;
    let horizon = last_slot.map_or(now, |l| l.max(now));
    let next = slots_after(&cron, tz, horizon).next();
    let wait = |skipped: usize, why: String| {
        let (due, then) = match next {
            Some(t) => (Due::At(t), format!("next slot {}", local(t, tz))),
            None => (
                Due::At(DateTime::<Utc>::MAX_UTC),
                "the schedule has no slot left".to_string(),
            ),
        };
        Decision {
            due,
            skipped,
            reason: format!("{why}; {then}"),
        }
    };

    let latest = latest_at_or_before(&cron, tz, now);
    let latest = match (latest, last_slot) {
        (None, _) => return wait(0, "no slot has passed yet".to_string()),
        (Some(l), Some(last)) if l <= last => {
            return wait(0, format!("slot {} already ran", local(last, tz)))
        }
        (Some(l), _) => l,
    };
    let age = now - latest;
    let older = last_slot.map_or(0, |last| count_between(&cron, tz, last, latest));
    if age <= catch_up {
        let mut reason = format!("slot {} is due", local(latest, tz));
        if age > Duration::zero() {
            reason += &format!(" ({} late, catch-up {})", human(age), human(catch_up));
        }
        if older > 0 {
            reason += &format!("; {older} older missed slot(s) skipped");
        }
        return Decision {
            due: Due::Now {
                slot: latest,
                missed: older,
            },
            skipped: older,
            reason,
        };
    }
    match last_slot {
        None => wait(
            0,
            format!(
                "never ran; latest slot {} is {} old, beyond catch-up {}",
                local(latest, tz),
                human(age),
                human(catch_up)
            ),
        ),
        Some(last) => {
            let skipped = older.saturating_add(1).min(MAX_COUNTED);
            wait(
                skipped,
                format!(
                    "{skipped} slot(s) missed since {}; latest {} is {} old, beyond catch-up {}: skipped",
                    local(last, tz),
                    local(latest, tz),
                    human(age),
                    human(catch_up)
                ),
            )
        }
    }
}

impl fmt::Display for Due {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Due::Now { slot, missed: 0 } => write!(f, "due now for slot {}", slot.to_rfc3339()),
            Due::Now { slot, missed } => write!(
                f,
                "due now for slot {} ({missed} older slot(s) skipped)",
                slot.to_rfc3339()
            ),
            Due::At(t) => write!(f, "next run at {}", t.to_rfc3339()),
        }
    }
}

// ---------------------------------------------------------------- internals

fn parse(s: &Schedule) -> Option<cron::Schedule> {
    cron::Schedule::from_str(&s.cron).ok()
}

/// `t` as "2026-03-29T01:00:00Z (03:00:00 Europe/Berlin)" for reasons.
fn local(t: DateTime<Utc>, tz: Tz) -> String {
    format!(
        "{} ({} {})",
        t.format("%Y-%m-%dT%H:%M:%SZ"),
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z"),
        tz.name()
    )
}

fn human(d: Duration) -> String {
    let s = d.num_seconds();
    let (days, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    for (v, unit) in [(days, "d"), (h, "h"), (m, "m"), (sec, "s")] {
        if v != 0 {
            out += &format!("{v}{unit}");
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// The wall-clock time of `t` in `tz`, to the second (the crate's resolution).
fn wall(t: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    let n = t.with_timezone(&tz).naive_local();
    n.with_nanosecond(0).unwrap_or(n)
}

/// A wall-clock time on the DST-free calendar the crate walks.
fn as_calendar(n: NaiveDateTime) -> DateTime<Utc> {
    Utc.from_utc_datetime(&n)
}

/// The instant a wall-clock slot runs at (see the module documentation).
fn resolve(tz: Tz, n: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&n) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => after_gap(tz, n),
    }
}

/// The first instant after the gap that swallowed wall-clock time `n`: the
/// earliest existing wall-clock time after `n`, found to the minute and then
/// to the second (gaps are at most a day long).
fn after_gap(tz: Tz, n: NaiveDateTime) -> Option<DateTime<Utc>> {
    let exists = |m: NaiveDateTime| !matches!(tz.from_local_datetime(&m), LocalResult::None);
    let mut end = (1..=2 * 24 * 60)
        .map(|k| n + Duration::minutes(k))
        .find(|m| exists(*m))?;
    while end - Duration::seconds(1) > n && exists(end - Duration::seconds(1)) {
        end -= Duration::seconds(1);
    }
    tz.from_local_datetime(&end)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Slot instants strictly after `after`, strictly increasing.
///
/// The wall-clock time of `after` maps to an instant at or before `after`, so
/// every slot after `after` has a later wall-clock time; the few later
/// wall-clock times that still map to instants at or before `after` (the
/// second pass through a repeated hour) are filtered out.
fn slots_after(
    cron: &cron::Schedule,
    tz: Tz,
    after: DateTime<Utc>,
) -> impl Iterator<Item = DateTime<Utc>> + '_ {
    let mut last = after;
    cron.after(&as_calendar(wall(after, tz)))
        .filter_map(move |c| {
            let t = resolve(tz, c.naive_utc())?;
            (t > last).then(|| {
                last = t;
                t
            })
        })
}

/// The latest slot instant at or before `t`.
fn latest_at_or_before(cron: &cron::Schedule, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let w = wall(t, tz);
    // Later wall-clock times that run at or before `t`: only in a repeated hour.
    let mut found = None;
    for c in cron.after(&as_calendar(w)) {
        match resolve(tz, c.naive_utc()) {
            Some(r) if r <= t => found = Some(r),
            Some(_) => break,
            None => continue,
        }
    }
    if found.is_some() {
        return found;
    }
    // Otherwise the latest wall-clock slot at or before `w` (the crate's
    // reverse walk is strictly before its start).
    cron.after(&as_calendar(w + Duration::seconds(1)))
        .rev()
        .find_map(|c| resolve(tz, c.naive_utc()))
}

/// Slot instants strictly between `lo` and `hi`, at most [`MAX_COUNTED`].
fn count_between(cron: &cron::Schedule, tz: Tz, lo: DateTime<Utc>, hi: DateTime<Utc>) -> usize {
    slots_after(cron, tz, lo)
        .take_while(|t| *t < hi)
        .take(MAX_COUNTED)
        .count()
}

#[cfg(test)]
mod tests;

/// Scale-out: is `tenant` in shard `k` of `n`? A stable FNV-1a hash of the
/// name, so every agent of a fleet agrees without talking to the others and a
/// tenant only moves when `n` changes.
pub fn in_shard(tenant: &str, k: u32, n: u32) -> bool {
    if n <= 1 {
        return true;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % u64::from(n) == u64::from(k)
}

/// Parses `K/N` (0 ≤ K < N).
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected K/N, e.g. 0/3"))?;
    let k: u32 = k
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: K is not a number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: N is not a number"))?;
    if n == 0 || k >= n {
        return Err(format!("`{s}`: need 0 <= K < N"));
    }
    Ok((k, n))
}

#[cfg(test)]
mod shard_tests;
