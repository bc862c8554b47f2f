//! `rolesnap report`: the RPO report, checked against what AWS (the
//! emulator) holds: compliant right after a backup, breached once the newest
//! point is older than the plan's RPO (by `--as-of`, or by ageing the points),
//! unselected instances listed as unprotected, and the HTML page one
//! well-formed file with a timeline per resource.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::harness::{s, seeded, Emulator, PlanText};

/// `report --plan p -o json [extra]`, which must exit 0.
fn report(emu: &Emulator, p: &std::path::Path, extra: &[&str]) -> Value {
    let mut args = vec!["report", "--plan", p.to_str().unwrap(), "-o", "json"];
    args.extend_from_slice(extra);
    let run = emu.run(&args);
    assert_eq!(run.code, 0, "{run}");
    run.json()
}

fn statuses(r: &Value) -> BTreeSet<String> {
    r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| s(&x["status"]).to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_backup_the_report_is_compliant_then_breached_three_days_on_and_lists_the_unselected(
) {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan(
        "nightly",
        PlanText::new()
            .cron("30 1 * * *")
            .retention("days = 7")
            .copy("us-west-2", "")
            .databases(true),
    );
    emu.backup_completed(&p);
    let now = Utc::now() + Duration::seconds(60);

    let r = report(&emu, &p, &["--as-of", &now.to_rfc3339()]);
    // What the plan selects, as the seed made it.
    let nightly: BTreeSet<String> = emu
        .nightly_instances("alpha", "us-east-1")
        .iter()
        .map(|i| s(&i["id"]).to_string())
        .collect();
    let (all, dbs, clusters) = seeded(emu.tenant("alpha"), "us-east-1");
    let rows = r["resources"].as_array().unwrap();
    let ids = |kind: &str| -> BTreeSet<String> {
        rows.iter()
            .filter(|x| x["kind"] == kind)
            .map(|x| s(&x["id"]).to_string())
            .collect()
    };
    assert_eq!(ids("instance"), nightly, "{r:#}");
    assert_eq!(ids("db-instance"), dbs.into_iter().collect());
    assert_eq!(ids("db-cluster"), clusters.into_iter().collect());
    assert_eq!(
        statuses(&r),
        BTreeSet::from(["compliant".to_string()]),
        "{r:#}"
    );
    assert_eq!(
        r["plans"][0]["rpo_seconds"],
        25 * 3600,
        "a day plus the default hour"
    );
    assert_eq!(r["summary"]["compliant"], rows.len());
    assert!(rows.iter().all(|x| x["drill"].is_null()));

    // Each instance's newest point names snapshots AWS holds for it, in the
    // source region and in the copy region.
    let east = emu.snapshots("alpha", "us-east-1").await;
    let west = emu.snapshots("alpha", "us-west-2").await;
    for x in rows.iter().filter(|x| x["kind"] == "instance") {
        let places = x["places"].as_array().unwrap();
        assert_eq!(places.len(), 2, "{x:#}");
        for (place, snaps) in places.iter().zip([&east, &west]) {
            assert_eq!(place["status"], "compliant", "{x:#}");
            for id in s(&place["newest_id"]).split('+') {
                let tags = snaps.get(id).unwrap_or_else(|| panic!("{id} not in AWS"));
                assert_eq!(tags.get("_GX_SOURCE_"), Some(&s(&x["id"]).to_string()));
                assert_eq!(tags.get("_GX_PLAN_").map(String::as_str), Some("nightly"));
            }
        }
        assert_eq!(places[1]["role"], "copy");
        assert_eq!(places[1]["region"], "us-west-2");
    }

    // Three days on, nothing newer: every resource is out of its RPO.
    let later = now + Duration::days(3);
    let r3 = report(&emu, &p, &["--as-of", &later.to_rfc3339()]);
    assert_eq!(
        statuses(&r3),
        BTreeSet::from(["breached".to_string()]),
        "{r3:#}"
    );
    for x in r3["resources"].as_array().unwrap() {
        assert!(x["age_seconds"].as_i64().unwrap() >= 3 * 86_400, "{x:#}");
        assert!(!x["reasons"].as_array().unwrap().is_empty());
    }
    assert_eq!(r3["summary"]["breached"], rows.len());

    // The day before: no point yet.
    let before = report(
        &emu,
        &p,
        &["--as-of", &(now - Duration::days(1)).to_rfc3339()],
    );
    assert_eq!(
        statuses(&before),
        BTreeSet::from(["never-protected".to_string()])
    );

    // Every instance the plan leaves (Backup=never) is unprotected, with the reason.
    let unselected: BTreeSet<String> = all.into_iter().filter(|i| !nightly.contains(i)).collect();
    assert!(
        !unselected.is_empty(),
        "the seed has Backup=never instances"
    );
    let unprotected: BTreeSet<String> = r["unprotected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] == "instance" && u["region"] == "us-east-1")
        .map(|u| {
            assert_eq!(u["tenant"], "alpha");
            assert!(s(&u["reasons"][0]).starts_with("nightly: "), "{u}");
            s(&u["id"]).to_string()
        })
        .collect();
    assert_eq!(unprotected, unselected);
    // Aurora members are protected through their cluster, not listed.
    assert!(
        r["unprotected"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["kind"] != "db-instance"),
        "{:#}",
        r["unprotected"]
    );
    assert_eq!(
        r["summary"]["unprotected"],
        r["unprotected"].as_array().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_report_is_one_well_formed_file_with_a_timeline_per_resource() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan(
        "nightly",
        PlanText::new()
            .cron("0 */6 * * *")
            .retention("days = 7")
            .databases(false),
    );
    emu.backup_completed(&p);
    // Points made three days ago (AWS's own creation times): breached now.
    let account = s(&emu.tenant("alpha")["account"]).to_string();
    emu.age_all(&account, 3);
    let json = report(&emu, &p, &[]);
    let n = json["resources"].as_array().unwrap().len();
    assert_eq!(n, emu.nightly_instances("alpha", "us-east-1").len());
    assert_eq!(
        statuses(&json),
        BTreeSet::from(["breached".to_string()]),
        "{json:#}"
    );
    assert_eq!(
        json["plans"][0]["rpo_seconds"],
        7 * 3600,
        "6 hours and the grace"
    );

    let html = emu.path("report.html");
    let run = emu.run(&[
        "report",
        "--plan",
        p.to_str().unwrap(),
        "--format",
        "html",
        "--out",
        html.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.is_empty(), "the page goes to the file: {run}");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.starts_with("<!DOCTYPE html>"));
    assert!(
        !text.contains("http://") && !text.contains("https://") && !text.contains(" src="),
        "no external asset"
    );
    assert_eq!(text.matches("<svg").count(), n, "one timeline per resource");
    assert_eq!(text.matches("</svg>").count(), n);
    for x in json["resources"].as_array().unwrap() {
        assert!(text.contains(s(&x["id"])), "{}", x["id"]);
    }
    assert!(
        text.contains("onclick=\"sortBy(this)\""),
        "a sortable table"
    );
    // Well-formed enough for an XML parser (Python's, which the emulator needs anyway).
    let python = std::env::var("ROLESNAP_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; t = E.parse(sys.argv[1]); \
             print(len(t.getroot().findall('.//svg')), len(t.getroot().findall('.//circle')))",
            html.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts = String::from_utf8_lossy(&out.stdout);
    let counts: Vec<usize> = counts
        .split_whitespace()
        .map(|c| c.parse().unwrap())
        .collect();
    assert_eq!(counts[0], n);
    assert!(
        counts[1] >= n,
        "a point drawn per resource at least: {counts:?}"
    );

    // CSV: a header, a line per resource, then the unprotected ones.
    let run = emu.run(&["report", "--plan", p.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(run.code, 0, "{run}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let unprotected = json["unprotected"].as_array().unwrap().len();
    assert_eq!(lines.len(), 1 + n + unprotected, "{}", run.stdout);
    assert!(lines[1..=n].iter().all(|l| l.contains(",breached,")));
    assert!(lines[n + 1..].iter().all(|l| l.contains(",unprotected,")));
}
