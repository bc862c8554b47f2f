use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A schedule read from a plan file (crontab weekdays normalised as the agent gets them).
fn schedule(lines: &str) -> Schedule {
    let src = format!(
        "[plan]\nname = \"p\"\nid = 1\n\n[schedule]\n{lines}\n\n\
         [[group]]\nname = \"g\"\ntenants = [\"t\"]\nregions = [\"us-east-1\"]\n"
    );
    let (plan, _) = crate::config::parse_plan_only(Path::new("p.toml"), &src).unwrap();
    plan.schedule.unwrap()
}

fn key(id: &str) -> ResourceKey {
    ResourceKey {
        plan: "nightly".into(),
        tenant: "alpha".into(),
        account: "222222222222".into(),
        region: "us-east-1".into(),
        kind: "instance".into(),
        id: id.into(),
        name: Some("web <1> & \"db\"".into()),
    }
}

fn place(role: Role, region: &str) -> Place {
    Place {
        role,
        region: region.into(),
        vault: (role == Role::Vault).then(|| "vault".to_string()),
    }
}

fn point(role: Role, region: &str, created: &str, state: PointState) -> Observed {
    Observed {
        place: place(role, region),
        id: format!("snap-{created}"),
        job: "1000@0f3c9a1e2b4d6f80".into(),
        created: utc(created),
        state,
    }
}

fn places() -> Vec<Place> {
    vec![
        place(Role::Source, "us-east-1"),
        place(Role::Copy, "us-west-2"),
        place(Role::Vault, "us-east-1"),
    ]
}

#[test]
fn a_daily_schedule_has_a_one_day_interval_and_the_grace_makes_the_rpo() {
    let s = schedule("cron = \"30 1 * * *\"\ntimezone = \"America/New_York\"");
    assert_eq!(s.rpo_grace_minutes, 60, "the default grace");
    let from = utc("2026-03-01T00:00:00Z");
    // Across the DST change of 8 March the wall clock stays 01:30, so one
    // gap is 23 hours; the longest is a day.
    assert_eq!(schedule_interval(&s, from), Some(Duration::hours(24)));
    assert_eq!(
        plan_rpo(Some(&s), from),
        Some(Duration::hours(24) + Duration::minutes(60))
    );
    let s = schedule("cron = \"30 1 * * *\"\nrpo-grace-minutes = 15");
    assert_eq!(
        plan_rpo(Some(&s), from),
        Some(Duration::hours(24) + Duration::minutes(15))
    );
    assert_eq!(plan_rpo(None, from), None, "no schedule, no RPO");
}

#[test]
fn the_longest_gap_counts_weekends_and_monthly_schedules_have_an_interval() {
    // Monday to Friday at 02:00: Friday to Monday is 72 hours.
    let s = schedule("cron = \"0 2 * * 1-5\"");
    assert_eq!(
        schedule_interval(&s, utc("2026-03-04T00:00:00Z")),
        Some(Duration::hours(72))
    );
    // Every 6 hours.
    let s = schedule("cron = \"0 */6 * * *\"");
    assert_eq!(
        schedule_interval(&s, utc("2026-03-04T00:00:00Z")),
        Some(Duration::hours(6))
    );
    // The 1st of each month: beyond the 14-day horizon, still two slots.
    let s = schedule("cron = \"0 3 1 * *\"");
    assert_eq!(
        schedule_interval(&s, utc("2026-03-04T00:00:00Z")),
        Some(Duration::days(30)),
        "1 April to 1 May"
    );
}

#[test]
fn newest_point_within_the_rpo_is_compliant_and_older_is_breached() {
    let rpo = Some(Duration::hours(25));
    let pts = vec![
        point(
            Role::Source,
            "us-east-1",
            "2026-03-01T01:00:00Z",
            PointState::Completed,
        ),
        point(
            Role::Source,
            "us-east-1",
            "2026-03-02T01:00:00Z",
            PointState::Completed,
        ),
        point(
            Role::Copy,
            "us-west-2",
            "2026-03-02T01:10:00Z",
            PointState::Completed,
        ),
        point(
            Role::Vault,
            "us-east-1",
            "2026-03-02T01:20:00Z",
            PointState::Completed,
        ),
    ];
    let now = utc("2026-03-02T12:00:00Z");
    let r = assess(key("i-1"), rpo, &places(), pts.clone(), now);
    assert_eq!(r.status, Status::Compliant, "{r:?}");
    assert_eq!(r.age_seconds, Some(11 * 3600));
    assert_eq!(r.newest, Some(utc("2026-03-02T01:00:00Z")));
    assert!(r.reasons.is_empty());
    assert!(r.places.iter().all(|p| p.status == Status::Compliant));
    assert_eq!(r.places[0].completed, 2);
    assert_eq!(r.drill, None);

    let later = utc("2026-03-05T12:00:00Z");
    let r = assess(key("i-1"), rpo, &places(), pts, later);
    assert_eq!(r.status, Status::Breached);
    assert_eq!(r.reasons.len(), 3, "{:?}", r.reasons);
    assert!(r.reasons[0].contains("3d 11h old"), "{:?}", r.reasons);
}

#[test]
fn a_missing_copy_breaches_a_failed_point_does_not_count_and_later_points_are_ignored() {
    let rpo = Some(Duration::hours(25));
    let now = utc("2026-03-02T12:00:00Z");
    let pts = vec![
        point(
            Role::Source,
            "us-east-1",
            "2026-03-02T01:00:00Z",
            PointState::Completed,
        ),
        point(
            Role::Copy,
            "us-west-2",
            "2026-03-02T01:10:00Z",
            PointState::Failed,
        ),
        point(
            Role::Vault,
            "us-east-1",
            "2026-03-02T01:20:00Z",
            PointState::Completed,
        ),
    ];
    let r = assess(key("i-1"), rpo, &places(), pts, now);
    assert_eq!(r.status, Status::Breached);
    assert_eq!(r.places[1].status, Status::Breached);
    assert_eq!(r.reasons, ["us-west-2 (copy): no completed point"]);

    // As of a time before every point: never protected.
    let early = utc("2026-03-01T00:00:00Z");
    let pts = vec![point(
        Role::Source,
        "us-east-1",
        "2026-03-02T01:00:00Z",
        PointState::Completed,
    )];
    let r = assess(key("i-1"), rpo, &places(), pts, early);
    assert_eq!(r.status, Status::NeverProtected);
    assert!(r.points.is_empty());
    assert!(r
        .places
        .iter()
        .all(|p| p.status == Status::NeverProtected && p.newest.is_none()));

    // A pending source point only: never protected.
    let pts = vec![point(
        Role::Source,
        "us-east-1",
        "2026-03-02T01:00:00Z",
        PointState::Pending,
    )];
    let r = assess(key("i-1"), rpo, &places(), pts, now);
    assert_eq!(r.status, Status::NeverProtected);
}

#[test]
fn a_plan_without_schedule_has_no_rpo() {
    let now = utc("2026-03-02T12:00:00Z");
    let pts = vec![point(
        Role::Source,
        "us-east-1",
        "2026-02-02T01:00:00Z",
        PointState::Completed,
    )];
    let r = assess(key("i-1"), None, &places()[..1], pts, now);
    assert_eq!(r.status, Status::NoRpo);
    assert_eq!(r.rpo_seconds, None);
}

fn report() -> Report {
    let now = utc("2026-03-05T12:00:00Z");
    let rpo = Some(Duration::hours(25));
    let pts = vec![
        point(
            Role::Source,
            "us-east-1",
            "2026-03-01T01:00:00Z",
            PointState::Completed,
        ),
        point(
            Role::Source,
            "us-east-1",
            "2026-03-02T01:00:00Z",
            PointState::Failed,
        ),
        point(
            Role::Copy,
            "us-west-2",
            "2026-03-01T01:10:00Z",
            PointState::Completed,
        ),
    ];
    let a = assess(key("i-1"), rpo, &places(), pts, now);
    let b = assess(
        key("i-2"),
        rpo,
        &places(),
        vec![point(
            Role::Source,
            "us-east-1",
            "2026-03-05T01:00:00Z",
            PointState::Completed,
        )],
        now,
    );
    let c = assess(key("i-3"), rpo, &places(), vec![], now);
    Report::new(
        now,
        now,
        vec![PlanSummary {
            plan: "nightly".into(),
            schedule: Some("30 1 * * *".into()),
            timezone: Some("UTC".into()),
            interval_seconds: Some(86_400),
            rpo_grace_minutes: Some(60),
            rpo_seconds: Some(90_000),
            retention_days: Some(7),
            last_backup: None,
            last_failure: None,
        }],
        vec![b, a, c],
        vec![Unprotected {
            tenant: "alpha".into(),
            account: "222222222222".into(),
            region: "us-east-1".into(),
            kind: "instance".into(),
            id: "i-9".into(),
            reasons: vec!["nightly: no id or tag rule of group east matches, \"x\"".into()],
        }],
        vec![],
    )
}

#[test]
fn the_report_counts_and_sorts_worst_first() {
    let r = report();
    assert_eq!(
        r.summary,
        Summary {
            resources: 3,
            compliant: 0,
            breached: 2,
            never_protected: 1,
            no_rpo: 0,
            unprotected: 1
        }
    );
    let ids: Vec<&str> = r.resources.iter().map(|x| x.key.id.as_str()).collect();
    assert_eq!(ids, ["i-1", "i-2", "i-3"]);
    // i-2: source compliant, its copy and vault missing.
    assert_eq!(r.resources[1].places[0].status, Status::Compliant);
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["resources"][0]["drill"].is_null());
    assert_eq!(json["resources"][0]["status"], "breached");
    assert_eq!(json["resources"][0]["places"][1]["role"], "copy");
}

#[test]
fn csv_has_a_line_per_resource_and_unprotected_one_and_quotes_what_needs_it() {
    let csv = render_csv(&report());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 3 + 1, "{csv}");
    assert!(lines[0].starts_with("plan,tenant,account,region,kind,id,name,status,"));
    assert!(lines[1].starts_with("nightly,alpha,222222222222,us-east-1,instance,i-1,\"web <1> & \"\"db\"\"\",breached,90000,"), "{}", lines[1]);
    assert!(lines[4].starts_with(",alpha,222222222222,us-east-1,instance,i-9,,unprotected,"));
    assert!(lines[4].contains("\"nightly: no id or tag rule of group east matches, \"\"x\"\"\""));
    let mut out = String::new();
    csv_line(&mut out, &["=cmd()".into(), "-1".into()]);
    assert_eq!(out, "'=cmd(),'-1\n");
}

/// Whether `s` is well-formed as XML as far as tags go: every element
/// closes, in order; `<!...>` and `<![CDATA[...]]>` are skipped.
fn balanced(s: &str) -> Result<usize, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = s;
    let mut elements = 0;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r.find("]]>").ok_or("unclosed CDATA")?;
            rest = &r[end + 3..];
            continue;
        }
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if open != name.trim() {
                return Err(format!("<{open}> closed by </{name}>"));
            }
        } else {
            elements += 1;
            let name = tag.split([' ', '/']).next().unwrap_or_default().to_string();
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
    }
    if stack.is_empty() {
        Ok(elements)
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

#[test]
fn html_is_one_well_formed_file_with_a_timeline_per_resource_and_no_url() {
    let r = report();
    let html = render_html(&r);
    balanced(&html).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no URL at all"
    );
    assert!(!html.contains(" src="), "no external asset");
    assert_eq!(html.matches("<svg ").count(), 3);
    assert_eq!(html.matches("</svg>").count(), 3);
    assert_eq!(html.matches("<section class=\"timeline\"").count(), 3);
    assert!(
        html.contains("web &lt;1&gt; &amp; &quot;db&quot;"),
        "escaped"
    );
    assert!(html.contains("onclick=\"sortBy(this)\""));
    let script = &html[html.find("<script>").unwrap()..html.find("</script>").unwrap()];
    assert!(!script.contains('&'), "the script stays well-formed XML");
    // i-1: two points in the source lane (one failed), one in the copy lane.
    let first = &html[html.find("id=\"r0\"").unwrap()..html.find("id=\"r1\"").unwrap()];
    assert_eq!(first.matches("<circle").count(), 3);
    assert!(first.contains("#c62828"), "the failed point is red");
    assert!(first.contains("vault:vault/us-east-1"));
}

#[test]
fn a_timeline_without_points_or_retention_still_draws_its_lanes() {
    let now = utc("2026-03-05T12:00:00Z");
    let x = assess(key("i-3"), None, &places(), vec![], now);
    let svg = timeline_svg(&x, now, None);
    balanced(&svg).unwrap();
    assert_eq!(svg.matches("<line").count(), 3 + 1);
    assert!(svg.contains("2026-02-26"), "7 days back: {svg}");
}

#[test]
fn durations_read_as_people_write_them() {
    assert_eq!(human_duration(Duration::seconds(30)), "30s");
    assert_eq!(human_duration(Duration::minutes(45)), "45m");
    assert_eq!(human_duration(Duration::minutes(125)), "2h 5m");
    assert_eq!(human_duration(Duration::hours(75)), "3d 3h");
    assert_eq!(human_duration(Duration::seconds(-5)), "0s");
}
