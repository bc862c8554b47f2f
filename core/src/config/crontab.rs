//! `[schedule]`: a 5-field crontab line (or the `cron` crate's 6/7-field form)
//! and an IANA time zone, turned into the form the `cron` crate reads and
//! refused when it is ambiguous or never runs.

use std::str::FromStr;

use super::errors::{ConfigError, Ctx};
use super::raw::RawSchedule;
use super::Schedule;

/// How far ahead a schedule must have its next run.
pub const MAX_YEARS_TO_NEXT_RUN: i64 = 5;

pub(super) fn parse_schedule(ctx: &Ctx<'_>, s: &RawSchedule) -> Result<Schedule, ConfigError> {
    let source = s.cron.get_ref().trim().to_string();
    let fields = source.split_whitespace().count();
    // Operators write 5-field crontab lines; the cron crate wants seconds first.
    let cron = match fields {
        5 => {
            let f: Vec<&str> = source.split_whitespace().collect();
            let dow =
                crontab_weekdays(f[4]).map_err(|m| ctx.err(&s.cron.span(), "schedule.cron", m))?;
            format!("0 {} {} {} {} {dow}", f[0], f[1], f[2], f[3])
        }
        6 | 7 => source.clone(),
        _ => {
            return Err(ctx.err(
                &s.cron.span(),
                "schedule.cron",
                format!("`{source}`: expected 5 fields (minute hour day month weekday)"),
            ))
        }
    };
    if fields == 5 {
        let f: Vec<&str> = source.split_whitespace().collect();
        // Crontab runs when either day field matches, the cron crate only when
        // both do: refuse the ambiguous form instead of running on other days.
        if f[2] != "*" && f[2] != "?" && f[4] != "*" && f[4] != "?" {
            return Err(ctx.err(
                &s.cron.span(),
                "schedule.cron",
                format!("`{source}` restricts both day of month and weekday; use one of them (the other `*`)"),
            ));
        }
        if let Some(why) = crontab_range_error(&source) {
            return Err(ctx.err(
                &s.cron.span(),
                "schedule.cron",
                format!("`{source}`: {why}"),
            ));
        }
    }
    // The crate's own message repeats its seconds-first form of the line; say
    // only what the operator wrote.
    cron::Schedule::from_str(&cron).map_err(|_| {
        ctx.err(
            &s.cron.span(),
            "schedule.cron",
            format!("`{source}` is not a valid cron expression (minute hour day month weekday)"),
        )
    })?;
    let timezone = match &s.timezone {
        None => chrono_tz::UTC,
        Some(tz) => tz.get_ref().parse::<chrono_tz::Tz>().map_err(|_| {
            ctx.err(
                &tz.span(),
                "schedule.timezone",
                format!(
                    "`{}` is not an IANA time zone (e.g. Europe/Berlin)",
                    tz.get_ref()
                ),
            )
        })?,
    };
    let schedule = Schedule {
        cron,
        cron_source: source,
        timezone,
        rpo_grace_minutes: s
            .rpo_grace_minutes
            .as_ref()
            .map_or(super::DEFAULT_RPO_GRACE_MINUTES, |g| *g.get_ref()),
    };
    // A line that matches no date (30 February, 31 April, a past year) is
    // valid cron and never runs: refuse it rather than start silently.
    let now = chrono::Utc::now();
    let horizon = now + chrono::Duration::days(366 * MAX_YEARS_TO_NEXT_RUN);
    match crate::decide::schedule::next_runs(&schedule, now, 1).first() {
        Some(t) if *t <= horizon => Ok(schedule),
        _ => Err(ctx.err(
            &s.cron.span(),
            "schedule.cron",
            format!(
                "`{}` never runs in the next {MAX_YEARS_TO_NEXT_RUN} years (a date that does not exist, or a year that has passed)",
                schedule.cron_source
            ),
        )),
    }
}

/// Out-of-range numbers in the first four fields of a crontab line.
fn crontab_range_error(line: &str) -> Option<String> {
    const FIELDS: [(&str, u32, u32); 4] = [
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
    ];
    for (field, (name, lo, hi)) in line.split_whitespace().zip(FIELDS) {
        for part in field.split(',') {
            let range = part.split('/').next().unwrap_or_default();
            for n in range.split('-') {
                if let Ok(v) = n.parse::<u32>() {
                    if v < lo || v > hi {
                        return Some(format!("{name} {v} is outside {lo}–{hi}"));
                    }
                }
            }
        }
    }
    None
}

/// Crontab numbers weekdays 0–7 with 0 and 7 both Sunday; the `cron` crate
/// numbers them 1–7 from Sunday. Converts the numbers of a crontab weekday
/// field (lists, ranges, steps; names pass through unchanged).
pub fn crontab_weekdays(field: &str) -> Result<String, String> {
    let num = |t: &str| -> Result<Option<u32>, String> {
        if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
            let n: u32 = t.parse().map_err(|_| format!("weekday `{t}`"))?;
            if n > 7 {
                return Err(format!("weekday {n} is not 0–7 (0 and 7 are Sunday)"));
            }
            Ok(Some(n))
        } else {
            Ok(None)
        }
    };
    let mut out = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (r, Some(st)),
            None => (part, None),
        };
        let converted = match range.split_once('-') {
            Some((a, b)) => match (num(a)?, num(b)?) {
                (Some(a), Some(7)) if step.is_none() => {
                    // `5-7` (Friday to Sunday): Friday–Saturday plus Sunday.
                    let first = a % 7 + 1;
                    out.push(if first == 7 {
                        "7".to_string()
                    } else {
                        format!("{first}-7")
                    });
                    "1".to_string()
                }
                (Some(a), Some(b)) => format!("{}-{}", a % 7 + 1, if b == 7 { 7 } else { b + 1 }),
                _ => range.to_string(),
            },
            None => match num(range)? {
                Some(n) => (n % 7 + 1).to_string(),
                None => range.to_string(),
            },
        };
        out.push(match step {
            Some(st) => format!("{converted}/{st}"),
            None => converted,
        });
    }
    Ok(out.join(","))
}
