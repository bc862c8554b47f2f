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
mod tests {
    use super::*;
    use std::path::Path;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .with_timezone(&Utc)
    }

    fn utcs(v: &[&str]) -> Vec<DateTime<Utc>> {
        v.iter().map(|s| utc(s)).collect()
    }

    /// A schedule normalised the way configuration does it.
    fn sched(cron: &str, tz: &str) -> Schedule {
        let cron_source = cron.to_string();
        let cron = match cron.split_whitespace().count() {
            5 => format!("0 {cron}"),
            _ => cron.to_string(),
        };
        Schedule {
            cron,
            cron_source,
            timezone: tz.parse().unwrap(),
        }
    }

    /// A schedule read from a plan file, as the agent gets it.
    fn from_plan(cron: &str, tz: &str) -> Schedule {
        let src = format!(
            "[plan]\nname = \"p\"\nid = 1\n\n[schedule]\ncron = \"{cron}\"\ntimezone = \"{tz}\"\n\n\
             [[group]]\nname = \"g\"\ntenants = [\"t\"]\nregions = [\"us-east-1\"]\n"
        );
        let (plan, _) = crate::config::parse_plan_only(Path::new("p.toml"), &src).unwrap();
        plan.schedule.unwrap()
    }

    // ------------------------------------------------ what the crate does

    fn crate_after(cron: &str, tz: Tz, after: &str, n: usize) -> Vec<DateTime<Utc>> {
        let c = cron::Schedule::from_str(cron).unwrap();
        c.after(&utc(after).with_timezone(&tz))
            .take(n)
            .map(|t| t.with_timezone(&Utc))
            .collect()
    }

    #[test]
    fn cron_crate_skips_a_local_time_that_does_not_exist() {
        // 02:30 Europe/Berlin does not exist on 2026-03-29: the crate jumps from
        // the 28th to the 30th.
        let got = crate_after(
            "0 30 2 * * *",
            chrono_tz::Europe::Berlin,
            "2026-03-28T00:00:00Z",
            2,
        );
        assert_eq!(got, utcs(&["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z"]));
    }

    #[test]
    fn cron_crate_runs_a_repeated_local_time_twice() {
        // 02:30 Europe/Berlin occurs twice on 2026-10-25: the crate returns both.
        let got = crate_after(
            "0 30 2 * * *",
            chrono_tz::Europe::Berlin,
            "2026-10-24T12:00:00Z",
            3,
        );
        assert_eq!(
            got,
            utcs(&[
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-26T01:30:00Z"
            ])
        );
        // ... and a sub-hourly schedule interleaves both passes through the
        // repeated hour, going back in time after each second occurrence.
        let got = crate_after(
            "0 */30 * * * *",
            chrono_tz::Europe::Berlin,
            "2026-10-24T23:45:00Z",
            5,
        );
        assert_eq!(
            got,
            utcs(&[
                "2026-10-25T00:00:00Z", // 02:00 CEST
                "2026-10-25T01:00:00Z", // 02:00 CET
                "2026-10-25T00:30:00Z", // 02:30 CEST: earlier than the one before
                "2026-10-25T01:30:00Z", // 02:30 CET
                "2026-10-25T02:00:00Z", // 03:00 CET
            ])
        );
        // Asked from inside the first pass it also returns the second 02:30
        // but not the second 02:00.
        let got = crate_after(
            "0 */30 * * * *",
            chrono_tz::Europe::Berlin,
            "2026-10-25T00:15:00Z",
            3,
        );
        assert_eq!(
            got,
            utcs(&[
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-25T02:00:00Z"
            ])
        );
        // A 15-minute plan across spring forward: 02:00-02:45 are skipped.
        let got = crate_after(
            "0 */15 * * * *",
            chrono_tz::Europe::Berlin,
            "2026-03-29T00:30:00Z",
            2,
        );
        assert_eq!(got, utcs(&["2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z"]));
    }

    #[test]
    fn cron_crate_numbers_weekdays_from_sunday() {
        // Crontab's `1-5` is Monday to Friday; in the crate it is Sunday to Thursday.
        let c = cron::Schedule::from_str("0 0 2 * * 1").unwrap();
        let t = c.after(&utc("2026-03-02T00:00:00Z")).next().unwrap(); // a Monday
        assert_eq!(t, utc("2026-03-08T02:00:00Z")); // the Sunday after
        assert!(cron::Schedule::from_str("0 0 2 * * 0").is_err());
    }

    // ------------------------------------------------ next runs

    #[test]
    fn next_run_tables() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            // daily 01:30 UTC
            (
                "30 1 * * *",
                "UTC",
                "2026-01-01T00:00:00Z",
                &[
                    "2026-01-01T01:30:00Z",
                    "2026-01-02T01:30:00Z",
                    "2026-01-03T01:30:00Z",
                ],
            ),
            // strictly after: a slot at `after` itself is not returned
            (
                "30 1 * * *",
                "UTC",
                "2026-01-01T01:30:00Z",
                &["2026-01-02T01:30:00Z"],
            ),
            (
                "30 1 * * *",
                "UTC",
                "2026-01-01T01:29:59.900Z",
                &["2026-01-01T01:30:00Z"],
            ),
            // daily 01:30 Berlin across spring forward (CET +1 -> CEST +2)
            (
                "30 1 * * *",
                "Europe/Berlin",
                "2026-03-27T12:00:00Z",
                &[
                    "2026-03-28T00:30:00Z",
                    "2026-03-29T00:30:00Z",
                    "2026-03-29T23:30:00Z",
                ],
            ),
            // daily 01:30 Berlin across fall back (01:30 is before the repeated hour)
            (
                "30 1 * * *",
                "Europe/Berlin",
                "2026-10-23T12:00:00Z",
                &[
                    "2026-10-23T23:30:00Z",
                    "2026-10-24T23:30:00Z",
                    "2026-10-26T00:30:00Z",
                ],
            ),
            // daily 02:30 Berlin: on 29 March 02:30 does not exist -> 03:00 CEST
            (
                "30 2 * * *",
                "Europe/Berlin",
                "2026-03-27T12:00:00Z",
                &[
                    "2026-03-28T01:30:00Z",
                    "2026-03-29T01:00:00Z",
                    "2026-03-30T00:30:00Z",
                ],
            ),
            // asking from inside the gap's day still finds the 03:00 run
            (
                "30 2 * * *",
                "Europe/Berlin",
                "2026-03-29T00:59:59Z",
                &["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
            ),
            // daily 02:30 Berlin: on 25 October 02:30 occurs twice -> once, CEST
            (
                "30 2 * * *",
                "Europe/Berlin",
                "2026-10-23T12:00:00Z",
                &[
                    "2026-10-24T00:30:00Z",
                    "2026-10-25T00:30:00Z",
                    "2026-10-26T01:30:00Z",
                ],
            ),
            // asked between the two 02:30s: the second is not a slot
            (
                "30 2 * * *",
                "Europe/Berlin",
                "2026-10-25T00:30:00Z",
                &["2026-10-26T01:30:00Z"],
            ),
            (
                "30 2 * * *",
                "Europe/Berlin",
                "2026-10-25T01:10:00Z",
                &["2026-10-26T01:30:00Z"],
            ),
            // America/New_York: 8 March 02:30 does not exist -> 03:00 EDT
            (
                "30 2 * * *",
                "America/New_York",
                "2026-03-07T00:00:00Z",
                &[
                    "2026-03-07T07:30:00Z",
                    "2026-03-08T07:00:00Z",
                    "2026-03-09T06:30:00Z",
                ],
            ),
            // America/New_York: 1 November 01:30 occurs twice -> once, EDT
            (
                "30 1 * * *",
                "America/New_York",
                "2026-10-31T00:00:00Z",
                &[
                    "2026-10-31T05:30:00Z",
                    "2026-11-01T05:30:00Z",
                    "2026-11-02T06:30:00Z",
                ],
            ),
            // every 15 minutes
            (
                "*/15 * * * *",
                "UTC",
                "2026-05-04T10:07:00Z",
                &[
                    "2026-05-04T10:15:00Z",
                    "2026-05-04T10:30:00Z",
                    "2026-05-04T10:45:00Z",
                    "2026-05-04T11:00:00Z",
                ],
            ),
            // every 15 minutes, Berlin spring forward: 02:00-02:45 and 03:00 are one run
            (
                "*/15 * * * *",
                "Europe/Berlin",
                "2026-03-29T00:30:00Z",
                &[
                    "2026-03-29T00:45:00Z",
                    "2026-03-29T01:00:00Z",
                    "2026-03-29T01:15:00Z",
                ],
            ),
            // every 15 minutes, Berlin fall back: the repeated hour runs once
            (
                "*/15 * * * *",
                "Europe/Berlin",
                "2026-10-25T00:30:00Z",
                &[
                    "2026-10-25T00:45:00Z",
                    "2026-10-25T02:00:00Z",
                    "2026-10-25T02:15:00Z",
                ],
            ),
            // ... and asked from inside the second pass, it goes on after it
            (
                "*/15 * * * *",
                "Europe/Berlin",
                "2026-10-25T01:20:00Z",
                &["2026-10-25T02:00:00Z", "2026-10-25T02:15:00Z"],
            ),
            // weekdays only (Friday 6 March 2026 after the run -> Monday)
            (
                "0 2 * * MON-FRI",
                "UTC",
                "2026-03-06T03:00:00Z",
                &[
                    "2026-03-09T02:00:00Z",
                    "2026-03-10T02:00:00Z",
                    "2026-03-11T02:00:00Z",
                    "2026-03-12T02:00:00Z",
                    "2026-03-13T02:00:00Z",
                    "2026-03-16T02:00:00Z",
                ],
            ),
            // first of the month, in Berlin
            (
                "0 3 1 * *",
                "Europe/Berlin",
                "2026-01-15T00:00:00Z",
                &[
                    "2026-02-01T02:00:00Z",
                    "2026-03-01T02:00:00Z",
                    "2026-04-01T01:00:00Z",
                ],
            ),
            // 6-field form (seconds first) and 7-field form with a year
            (
                "15 30 1 * * *",
                "UTC",
                "2026-01-01T00:00:00Z",
                &["2026-01-01T01:30:15Z", "2026-01-02T01:30:15Z"],
            ),
            (
                "0 0 12 1 1 * 2027-2028",
                "UTC",
                "2026-06-01T00:00:00Z",
                &["2027-01-01T12:00:00Z", "2028-01-01T12:00:00Z"],
            ),
        ];
        for (cron, tz, after, want) in cases {
            let s = sched(cron, tz);
            let got = next_runs(&s, utc(after), want.len() + 1);
            let n = want.len().min(got.len());
            assert_eq!(&got[..n], &utcs(want)[..], "{cron} {tz} after {after}");
        }
        // a schedule that ends yields fewer
        let s = sched("0 0 12 1 1 * 2027-2028", "UTC");
        assert_eq!(next_runs(&s, utc("2026-06-01T00:00:00Z"), 5).len(), 2);
    }

    #[test]
    fn five_and_six_field_forms_from_plan_files_agree() {
        for (five, six) in [
            ("30 1 * * *", "0 30 1 * * *"),
            ("*/15 * * * *", "0 */15 * * * *"),
            ("0 3 1 * *", "0 0 3 1 * *"),
            ("0 2 * * MON-FRI", "0 0 2 * * MON-FRI"),
        ] {
            let a = from_plan(five, "Europe/Berlin");
            let b = from_plan(six, "Europe/Berlin");
            assert_eq!(a.cron, six);
            let after = utc("2026-03-27T00:00:00Z");
            assert_eq!(next_runs(&a, after, 50), next_runs(&b, after, 50), "{five}");
            assert_eq!(
                next_runs(&a, after, 50),
                next_runs(&sched(five, "Europe/Berlin"), after, 50)
            );
        }
    }

    #[test]
    fn slots_are_strictly_increasing_through_a_dst_year() {
        for (cron, tz) in [
            ("*/15 * * * *", "Europe/Berlin"),
            ("30 2 * * *", "Europe/Berlin"),
            ("*/10 1-3 * * *", "America/New_York"),
            ("0 * * * *", "Australia/Lord_Howe"), // 30-minute DST shift
        ] {
            let runs = next_runs(&sched(cron, tz), utc("2026-01-01T00:00:00Z"), 40_000);
            assert!(runs.windows(2).all(|w| w[0] < w[1]), "{cron} {tz}");
        }
        // a daily plan runs exactly once on every local day of 2026
        let s = sched("30 2 * * *", "Europe/Berlin");
        let runs = next_runs(&s, utc("2025-12-31T12:00:00Z"), 365);
        let tz = chrono_tz::Europe::Berlin;
        let days: std::collections::BTreeSet<_> = runs
            .iter()
            .map(|t| t.with_timezone(&tz).date_naive())
            .collect();
        assert_eq!(days.len(), 365);
        assert_eq!(
            runs.last()
                .unwrap()
                .with_timezone(&tz)
                .date_naive()
                .to_string(),
            "2026-12-31"
        );
    }

    #[test]
    fn gap_end_is_found_to_the_second() {
        // Lord Howe moves its clocks by 30 minutes: 02:00 -> 02:30 on 2026-10-04.
        let tz: Tz = "Australia/Lord_Howe".parse().unwrap();
        let n = NaiveDateTime::parse_from_str("2026-10-04 02:10:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let t = resolve(tz, n).unwrap();
        assert_eq!(
            t.with_timezone(&tz).naive_local().to_string(),
            "2026-10-04 02:30:00"
        );
        assert_eq!(t, utc("2026-10-03T15:30:00Z"));
    }

    // ------------------------------------------------ due

    #[test]
    fn due_tables() {
        let daily = sched("30 1 * * *", "UTC");
        let quarter = sched("*/15 * * * *", "UTC");
        let h = Duration::hours;
        let m = Duration::minutes;
        let now_at = |slot: &str, missed| Due::Now {
            slot: utc(slot),
            missed,
        };
        #[allow(clippy::type_complexity)]
        let cases: &[(&str, &Schedule, Option<&str>, &str, Duration, Due, usize)] = &[
            // never ran, a slot 30 min ago within a 1 h catch-up: run now
            (
                "never ran, inside catch-up",
                &daily,
                None,
                "2026-05-04T02:00:00Z",
                h(1),
                now_at("2026-05-04T01:30:00Z", 0),
                0,
            ),
            // never ran, last slot 2 h ago, catch-up 1 h: wait for tomorrow
            (
                "never ran, outside catch-up",
                &daily,
                None,
                "2026-05-04T03:30:00Z",
                h(1),
                Due::At(utc("2026-05-05T01:30:00Z")),
                0,
            ),
            // ran at the last slot: not due, next slot
            (
                "ran at last slot",
                &daily,
                Some("2026-05-04T01:30:00Z"),
                "2026-05-04T12:00:00Z",
                h(6),
                Due::At(utc("2026-05-05T01:30:00Z")),
                0,
            ),
            (
                "one missed slot within catch-up",
                &daily,
                Some("2026-05-03T01:30:00Z"),
                "2026-05-04T03:00:00Z",
                h(6),
                now_at("2026-05-04T01:30:00Z", 0),
                0,
            ),
            (
                "several missed: latest runs, older are counted",
                &daily,
                Some("2026-04-30T01:30:00Z"),
                "2026-05-04T03:00:00Z",
                h(6),
                now_at("2026-05-04T01:30:00Z", 3),
                3,
            ),
            (
                "several missed every 15 min",
                &quarter,
                Some("2026-05-04T10:00:00Z"),
                "2026-05-04T11:20:00Z",
                m(10),
                now_at("2026-05-04T11:15:00Z", 4),
                4,
            ),
            (
                "missed beyond catch-up: skip all, wait for next",
                &daily,
                Some("2026-04-30T01:30:00Z"),
                "2026-05-04T09:00:00Z",
                h(6),
                Due::At(utc("2026-05-05T01:30:00Z")),
                4,
            ),
            (
                "exactly at slot time, zero catch-up",
                &daily,
                Some("2026-05-03T01:30:00Z"),
                "2026-05-04T01:30:00Z",
                Duration::zero(),
                now_at("2026-05-04T01:30:00Z", 0),
                0,
            ),
            (
                "exactly at slot time, never ran",
                &daily,
                None,
                "2026-05-04T01:30:00Z",
                Duration::zero(),
                now_at("2026-05-04T01:30:00Z", 0),
                0,
            ),
            (
                "a second after, within catch-up",
                &daily,
                Some("2026-05-03T01:30:00Z"),
                "2026-05-04T01:30:01Z",
                m(1),
                now_at("2026-05-04T01:30:00Z", 0),
                0,
            ),
            (
                "a second after, zero catch-up",
                &daily,
                Some("2026-05-03T01:30:00Z"),
                "2026-05-04T01:30:01Z",
                Duration::zero(),
                Due::At(utc("2026-05-05T01:30:00Z")),
                1,
            ),
            (
                "a second after, never ran, zero catch-up",
                &daily,
                None,
                "2026-05-04T01:30:01Z",
                Duration::zero(),
                Due::At(utc("2026-05-05T01:30:00Z")),
                0,
            ),
            (
                "a second before the slot",
                &daily,
                Some("2026-05-03T01:30:00Z"),
                "2026-05-04T01:29:59Z",
                h(1),
                Due::At(utc("2026-05-04T01:30:00Z")),
                0,
            ),
            (
                "just ran, a second later",
                &daily,
                Some("2026-05-04T01:30:00Z"),
                "2026-05-04T01:30:01Z",
                h(1),
                Due::At(utc("2026-05-05T01:30:00Z")),
                0,
            ),
            (
                "catch-up boundary is inclusive",
                &daily,
                Some("2026-05-03T01:30:00Z"),
                "2026-05-04T02:30:00Z",
                h(1),
                now_at("2026-05-04T01:30:00Z", 0),
                0,
            ),
            (
                "clock went back before the last slot",
                &daily,
                Some("2026-05-04T01:30:00Z"),
                "2026-05-04T01:00:00Z",
                h(1),
                Due::At(utc("2026-05-05T01:30:00Z")),
                0,
            ),
            (
                "negative catch-up counts as zero",
                &daily,
                None,
                "2026-05-04T01:30:00Z",
                -h(1),
                now_at("2026-05-04T01:30:00Z", 0),
                0,
            ),
        ];
        for (name, s, last, now, catch_up, want, skipped) in cases {
            let d = decide(s, last.map(utc), utc(now), *catch_up);
            assert_eq!(
                (d.due, d.skipped),
                (*want, *skipped),
                "{name}: {}",
                d.reason
            );
            assert_eq!(due(s, last.map(utc), utc(now), *catch_up), *want, "{name}");
            assert!(!d.reason.is_empty());
        }
    }

    #[test]
    fn due_across_dst() {
        let s = sched("30 2 * * *", "Europe/Berlin");
        let h = Duration::hours;
        // Spring forward: the 02:30 that does not exist runs at 03:00 CEST.
        let last = Some(utc("2026-03-28T01:30:00Z"));
        assert_eq!(
            due(&s, last, utc("2026-03-29T00:59:59Z"), h(1)),
            Due::At(utc("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            due(&s, last, utc("2026-03-29T01:00:00Z"), h(1)),
            Due::Now {
                slot: utc("2026-03-29T01:00:00Z"),
                missed: 0
            }
        );
        // Fall back: the first 02:30 runs; the second is not a slot.
        let first = utc("2026-10-25T00:30:00Z");
        assert_eq!(
            due(&s, Some(utc("2026-10-24T00:30:00Z")), first, h(1)),
            Due::Now {
                slot: first,
                missed: 0
            }
        );
        for now in ["2026-10-25T01:30:00Z", "2026-10-25T01:45:00Z"] {
            assert_eq!(
                due(&s, Some(first), utc(now), h(3)),
                Due::At(utc("2026-10-26T01:30:00Z")),
                "{now}"
            );
        }
        // Agent started during the second pass, never ran: the first 02:30 is
        // the latest slot, 1 h ago.
        assert_eq!(
            due(&s, None, utc("2026-10-25T01:30:00Z"), h(2)),
            Due::Now {
                slot: first,
                missed: 0
            }
        );
        // Every 15 min, now in the second pass through 02:xx: the latest slot is
        // the first 02:45 (00:45Z), the repeated hour is not run again.
        let q = sched("*/15 * * * *", "Europe/Berlin");
        assert_eq!(
            due(
                &q,
                Some(utc("2026-10-25T00:45:00Z")),
                utc("2026-10-25T01:20:00Z"),
                h(1)
            ),
            Due::At(utc("2026-10-25T02:00:00Z"))
        );
        assert_eq!(
            due(
                &q,
                Some(utc("2026-10-25T00:15:00Z")),
                utc("2026-10-25T01:20:00Z"),
                h(1)
            ),
            Due::Now {
                slot: utc("2026-10-25T00:45:00Z"),
                missed: 1
            }
        );
    }

    #[test]
    fn due_without_future_or_valid_expression() {
        let ended = sched("0 0 12 1 1 * 2020", "UTC");
        assert_eq!(
            due(
                &ended,
                Some(utc("2020-01-01T12:00:00Z")),
                utc("2026-01-01T00:00:00Z"),
                Duration::hours(1)
            ),
            Due::At(DateTime::<Utc>::MAX_UTC)
        );
        let broken = Schedule {
            cron: "nonsense".into(),
            cron_source: "nonsense".into(),
            timezone: chrono_tz::UTC,
        };
        assert!(next_runs(&broken, utc("2026-01-01T00:00:00Z"), 3).is_empty());
        assert_eq!(
            due(
                &broken,
                None,
                utc("2026-01-01T00:00:00Z"),
                Duration::hours(1)
            ),
            Due::At(DateTime::<Utc>::MAX_UTC)
        );
    }

    #[test]
    fn reasons_say_what_happened() {
        let s = sched("30 1 * * *", "Europe/Berlin");
        let d = decide(
            &s,
            Some(utc("2026-04-30T23:30:00Z")),
            utc("2026-05-04T00:00:00Z"),
            Duration::hours(1),
        );
        assert_eq!(
            d.due,
            Due::Now {
                slot: utc("2026-05-03T23:30:00Z"),
                missed: 2
            }
        );
        assert_eq!(
            d.reason,
            "slot 2026-05-03T23:30:00Z (2026-05-04 01:30:00 CEST Europe/Berlin) is due \
             (30m late, catch-up 1h); 2 older missed slot(s) skipped"
        );
        assert_eq!(
            d.due.to_string(),
            "due now for slot 2026-05-03T23:30:00+00:00 (2 older slot(s) skipped)"
        );
    }
}

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
mod shard_tests {
    use super::*;

    #[test]
    fn every_tenant_is_in_exactly_one_shard_and_stays_there() {
        let names: Vec<String> = (0..500).map(|i| format!("tenant-{i}")).collect();
        for n in 1..=5 {
            let mut sizes = vec![0; n as usize];
            for t in &names {
                let owners: Vec<u32> = (0..n).filter(|k| in_shard(t, *k, n)).collect();
                assert_eq!(owners.len(), 1, "{t} in {owners:?} of {n}");
                sizes[owners[0] as usize] += 1;
                assert_eq!(
                    owners,
                    (0..n).filter(|k| in_shard(t, *k, n)).collect::<Vec<_>>()
                );
            }
            // Roughly even: no shard gets less than half its share.
            assert!(
                sizes.iter().all(|s| *s * 2 * n as usize >= names.len()),
                "{sizes:?}"
            );
        }
        assert!(in_shard("alpha", 0, 2) != in_shard("alpha", 1, 2));
    }

    #[test]
    fn shard_specs() {
        assert_eq!(parse_shard("0/3"), Ok((0, 3)));
        assert!(parse_shard("3/3").is_err());
        assert!(parse_shard("1").is_err());
        assert!(parse_shard("a/2").is_err());
    }
}
