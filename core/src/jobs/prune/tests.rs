use super::*;

#[test]
fn only_own_unheld_resources_are_deletable() {
    let t = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    assert!(deletable(
        &t(&[("_GX_BACKUP_", "1"), ("_GX_PLAN_", "p")]),
        "p"
    ));
    assert!(!deletable(
        &t(&[("_GX_BACKUP_", "1"), ("_GX_PLAN_", "q")]),
        "p"
    ));
    assert!(!deletable(&t(&[("_GX_PLAN_", "p")]), "p"));
    assert!(!deletable(
        &t(&[
            ("_GX_BACKUP_", "1"),
            ("_GX_PLAN_", "p"),
            ("CV_Retain_Snap", "")
        ]),
        "p"
    ));
}

/// The rule texts `decide` gives the points it keeps only until a newer one
/// completes are the ones a pass counts as waiting; any other keep is not.
#[test]
fn the_points_kept_for_want_of_a_newer_one_are_told_by_their_rule() {
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let point = |id: &str, source: &str, created: &str| Point {
        id: id.into(),
        source: source.into(),
        region: "us-east-1".into(),
        created: at(created),
        tags: [
            (tags::BACKUP, "1"),
            (tags::PLAN, "p"),
            (tags::SOURCE, source),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        completed: true,
        failed: false,
        source_exists: true,
    };
    let rule = Retention {
        days: Some(7),
        count: None,
        daily: None,
        weekly: None,
        monthly: None,
        allow_delete_last: false,
    };
    let mut failed = point("failed", "i-b", "2026-11-01T00:00:00Z");
    failed.completed = false;
    failed.failed = true;
    let points = [
        // Expired, the only point of a live source.
        point("last", "i-a", "2026-11-01T00:00:00Z"),
        // Young: kept by the days rule, whatever comes after it.
        point("young", "i-c", "2026-11-28T00:00:00Z"),
        failed,
    ];
    let d = decide(
        &points,
        "p",
        &rule,
        at("2026-11-30T00:00:00Z"),
        chrono_tz::UTC,
    );
    let waits: Vec<(&str, bool)> = d
        .iter()
        .map(|d| {
            assert_eq!(d.verdict, Verdict::Keep, "{d:?}");
            (d.id.as_str(), waits_for_newer(&d.rule))
        })
        .collect();
    assert_eq!(
        waits,
        [("last", true), ("young", false), ("failed", true)],
        "{d:?}"
    );
    // An expired original a pass beside the copy job leaves for its copy.
    assert!(waits_for_newer(&format!(
        "expired: age 9d >= 7d; {DEFERRED_FOR_COPY}"
    )));
}

#[test]
fn a_night_counts_what_the_jobs_beside_complete_per_tenant_and_region() {
    let mut n = Night::default();
    assert_eq!(n.stage, Beside::Backup);
    n.complete("t1", "us-east-1");
    n.complete("t1", "us-east-1");
    n.complete("t1", "us-west-2");
    n.complete("t2", "us-east-1");
    assert_eq!(n.completed_in("t1", "us-east-1"), 2);
    assert_eq!(n.completed_in("t1", "us-west-2"), 1);
    assert_eq!(n.completed_in("t2", "us-east-1"), 1);
    assert_eq!(n.completed_in("t2", "us-west-2"), 0);
    assert_eq!(n.completed_in("t3", "us-east-1"), 0);
}

#[test]
fn a_pass_comes_again_after_half_the_waiting_points_or_a_bursts_worth() {
    let w = |points, snapshots| Waiting { points, snapshots };
    // 400 sets of 2 snapshots: a burst (100 snapshots) is 50 sets.
    assert_eq!(w(400, 800).again_after(), 50);
    // 57 sets of 2: half of them, 29, come before a burst's worth.
    assert_eq!(w(57, 114).again_after(), 29);
    // Sets of 30 snapshots: 4 of them make a burst.
    assert_eq!(w(10, 300).again_after(), 4);
    // RDS points have no EBS snapshot; never zero.
    assert_eq!(w(3, 0).again_after(), 2);
    assert_eq!(w(0, 0).again_after(), 1);
}
