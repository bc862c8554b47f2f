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
        rpo_grace_minutes: 60,
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
        rpo_grace_minutes: 60,
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
