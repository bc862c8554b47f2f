use super::Verdict::{Delete as D, Keep as K};
use super::*;
use chrono_tz::America::New_York;
use chrono_tz::Europe::Berlin;
use chrono_tz::UTC;
use proptest::prelude::*;

const PLAN: &str = "nightly";
const NOW: &str = "2026-11-27T12:00:00Z";
const R0: Retention = Retention {
    days: None,
    count: None,
    daily: None,
    weekly: None,
    monthly: None,
    allow_delete_last: false,
};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A completed point of plan `nightly` in us-east-1 whose source exists.
fn pt(id: &str, source: &str, created: &str) -> Point {
    let tags = [
        (tags::BACKUP, "8277"),
        (tags::PLAN, PLAN),
        (tags::SOURCE, source),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Point {
        id: id.into(),
        source: source.into(),
        region: "us-east-1".into(),
        created: t(created),
        tags,
        completed: true,
        failed: false,
        source_exists: true,
    }
}

impl Point {
    fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
    fn untag(mut self, k: &str) -> Self {
        self.tags.remove(k);
        self
    }
    fn held(self) -> Self {
        self.tag(tags::RETAIN, "legal")
    }
    fn pending(mut self) -> Self {
        self.completed = false;
        self
    }
    fn failed(mut self) -> Self {
        self.completed = false;
        self.failed = true;
        self
    }
    fn gone(mut self) -> Self {
        self.source_exists = false;
        self
    }
    fn in_region(mut self, r: &str) -> Self {
        self.region = r.into();
        self
    }
}

fn days(n: u32) -> Retention {
    Retention {
        days: Some(n),
        ..R0
    }
}
fn count(n: u32) -> Retention {
    Retention {
        count: Some(n),
        ..R0
    }
}
fn allow(r: Retention) -> Retention {
    Retention {
        allow_delete_last: true,
        ..r
    }
}

struct Case {
    name: &'static str,
    now: &'static str,
    tz: Tz,
    rule: Retention,
    points: Vec<Point>,
    want: Vec<(&'static str, Verdict, &'static str)>,
}

fn case(
    name: &'static str,
    rule: Retention,
    points: Vec<Point>,
    want: Vec<(&'static str, Verdict, &'static str)>,
) -> Case {
    Case {
        name,
        now: NOW,
        tz: UTC,
        rule,
        points,
        want,
    }
}

impl Case {
    fn at(mut self, now: &'static str, tz: Tz) -> Self {
        self.now = now;
        self.tz = tz;
        self
    }
}

const PROT20: &str = "newest completed point of a live source; otherwise expired: age 20d >= 7d";

fn table() -> Vec<Case> {
    vec![
            // ------------------------------------------------ empty rule
            case(
                "empty retention deletes nothing, even with allow-delete-last",
                allow(R0),
                vec![
                    pt("a", "i-a", "2025-01-01T00:00:00Z").gone(),
                    pt("b", "i-a", "2026-11-27T11:00:00Z").gone(),
                ],
                vec![
                    ("a", K, "no retention rule set"),
                    ("b", K, "no retention rule set"),
                ],
            ),
            // ------------------------------------------------ days boundaries
            case(
                "days: exactly 7d old is expired",
                days(7),
                vec![
                    pt("x", "i-a", "2026-11-20T12:00:00Z"),
                    pt("y", "i-a", "2026-11-27T11:00:00Z"),
                ],
                vec![
                    ("x", D, "expired: age 7d >= 7d"),
                    ("y", K, "age 1h < 7d"),
                ],
            ),
            case(
                "days: one second under 7d is kept",
                days(7),
                vec![
                    pt("x", "i-a", "2026-11-20T12:00:01Z"),
                    pt("y", "i-a", "2026-11-27T11:00:00Z"),
                ],
                vec![
                    ("x", K, "age 6d23h59m59s < 7d"),
                    ("y", K, "age 1h < 7d"),
                ],
            ),
            case(
                "days: one second over 7d is expired",
                days(7),
                vec![
                    pt("x", "i-a", "2026-11-20T11:59:59Z"),
                    pt("y", "i-a", "2026-11-27T11:00:00Z"),
                ],
                vec![
                    ("x", D, "expired: age 7d1s >= 7d"),
                    ("y", K, "age 1h < 7d"),
                ],
            ),
            case(
                "days: 0 keeps nothing by age",
                allow(days(0)),
                vec![pt("x", "i-a", "2026-11-27T11:00:00Z")],
                vec![("x", D, "expired: age 1h >= 0d")],
            ),
            case(
                "days: a point created exactly now is 0s old",
                days(1),
                vec![pt("x", "i-a", NOW)],
                vec![("x", K, "age 0s < 1d")],
            ),
            // ------------------------------------------------ count
            case(
                "count keeps the newest N",
                count(2),
                vec![
                    pt("c1", "i-a", "2026-11-24T01:00:00Z"),
                    pt("c2", "i-a", "2026-11-25T01:00:00Z"),
                    pt("c3", "i-a", "2026-11-26T01:00:00Z"),
                    pt("c4", "i-a", "2026-11-27T01:00:00Z"),
                ],
                vec![
                    ("c1", D, "expired: not among newest 2"),
                    ("c2", D, "expired: not among newest 2"),
                    ("c3", K, "newest 2 of source"),
                    ("c4", K, "newest 2 of source"),
                ],
            ),
            case(
                "count: a tie at the boundary keeps both",
                count(2),
                vec![
                    pt("c1", "i-a", "2026-11-25T01:00:00Z"),
                    pt("c2", "i-a", "2026-11-26T01:00:00Z"),
                    pt("c3", "i-a", "2026-11-26T01:00:00Z"),
                    pt("c4", "i-a", "2026-11-27T01:00:00Z"),
                ],
                vec![
                    ("c1", D, "expired: not among newest 2"),
                    ("c2", K, "newest 2 of source"),
                    ("c3", K, "newest 2 of source"),
                    ("c4", K, "newest 2 of source"),
                ],
            ),
            case(
                "count: a tie for newest keeps both",
                allow(count(1)),
                vec![
                    pt("a", "i-a", "2026-11-27T01:00:00Z"),
                    pt("b", "i-a", "2026-11-27T01:00:00Z"),
                    pt("c", "i-a", "2026-11-26T01:00:00Z"),
                ],
                vec![
                    ("a", K, "newest 1 of source"),
                    ("b", K, "newest 1 of source"),
                    ("c", D, "expired: not among newest 1"),
                ],
            ),
            case(
                "count: pending points are kept and take no slot",
                count(1),
                vec![
                    pt("p", "i-a", "2026-11-27T11:00:00Z").pending(),
                    pt("c", "i-a", "2026-11-26T01:00:00Z"),
                    pt("b", "i-a", "2026-11-25T01:00:00Z"),
                ],
                vec![
                    ("p", K, "pending"),
                    ("c", K, "newest 1 of source"),
                    ("b", D, "expired: not among newest 1"),
                ],
            ),
            case(
                "count: held points are kept and take no slot",
                count(1),
                vec![
                    pt("h", "i-a", "2026-11-27T01:00:00Z").held(),
                    pt("c", "i-a", "2026-11-26T01:00:00Z"),
                    pt("b", "i-a", "2026-11-25T01:00:00Z"),
                ],
                vec![
                    ("h", K, "CV_Retain_Snap hold"),
                    ("c", K, "newest 1 of source"),
                    ("b", D, "expired: not among newest 1"),
                ],
            ),
            case(
                "count: other plans' points take no slot",
                count(1),
                vec![
                    pt("o", "i-a", "2026-11-27T11:00:00Z").tag(tags::PLAN, "weekly"),
                    pt("c", "i-a", "2026-11-26T01:00:00Z"),
                    pt("b", "i-a", "2026-11-25T01:00:00Z"),
                ],
                vec![
                    ("o", K, "not this plan's (_GX_PLAN_=weekly)"),
                    ("c", K, "newest 1 of source"),
                    ("b", D, "expired: not among newest 1"),
                ],
            ),
            // ------------------------------------------------ not ours, holds, pending
            case(
                "hold keeps an expired point, whatever its value",
                allow(days(7)),
                vec![
                    pt("h1", "i-a", "2025-01-01T00:00:00Z").held(),
                    pt("h2", "i-a", "2025-02-01T00:00:00Z").tag(tags::RETAIN, ""),
                    pt("x", "i-a", "2026-11-07T12:00:00Z"),
                ],
                vec![
                    ("h1", K, "CV_Retain_Snap hold"),
                    ("h2", K, "CV_Retain_Snap hold"),
                    ("x", D, "expired: age 20d >= 7d"),
                ],
            ),
            case(
                "points without _GX_BACKUP_ are never deleted",
                allow(days(1)),
                vec![
                    pt("u1", "i-a", "2026-01-01T00:00:00Z").untag(tags::BACKUP),
                    pt("u2", "i-a", "2026-01-01T00:00:00Z")
                        .untag(tags::BACKUP)
                        .untag(tags::PLAN),
                    pt("u3", "i-a", "2026-01-01T00:00:00Z")
                        .untag(tags::BACKUP)
                        .gone(),
                    pt("x", "i-a", "2026-11-07T12:00:00Z"),
                ],
                vec![
                    ("u1", K, "no _GX_BACKUP_ tag"),
                    ("u2", K, "no _GX_BACKUP_ tag"),
                    ("u3", K, "no _GX_BACKUP_ tag"),
                    ("x", D, "expired: age 20d >= 1d"),
                ],
            ),
            case(
                "other plan's or plan-less points are never deleted",
                allow(days(1)),
                vec![
                    pt("o", "i-a", "2026-01-01T00:00:00Z").tag(tags::PLAN, "weekly"),
                    pt("n", "i-a", "2026-01-01T00:00:00Z").untag(tags::PLAN),
                    pt("x", "i-a", "2026-11-07T12:00:00Z"),
                ],
                vec![
                    ("o", K, "not this plan's (_GX_PLAN_=weekly)"),
                    ("n", K, "no _GX_PLAN_ tag"),
                    ("x", D, "expired: age 20d >= 1d"),
                ],
            ),
            case(
                "an old pending point is kept",
                allow(days(1)),
                vec![
                    pt("p", "i-a", "2026-01-01T00:00:00Z").pending(),
                    pt("x", "i-a", "2026-11-07T12:00:00Z"),
                ],
                vec![
                    ("p", K, "pending"),
                    ("x", D, "expired: age 20d >= 1d"),
                ],
            ),
            case(
                "a failed point goes once a newer point of its source completed",
                days(7),
                vec![
                    pt("f", "i-a", "2026-11-25T12:00:00Z").failed(),
                    pt("n", "i-a", "2026-11-26T12:00:00Z"),
                    pt("g", "i-b", "2026-11-26T12:00:00Z").failed(),
                ],
                vec![
                    ("f", D, "failed, and a newer point of its source completed"),
                    ("n", K, "age 1d < 7d"),
                    (
                        "g",
                        K,
                        "failed; kept until a newer point of its source completes",
                    ),
                ],
            ),
            case(
                "a failed point is not the newest of its source, nor held, nor under an empty rule",
                days(7),
                vec![
                    pt("c", "i-a", "2026-11-10T12:00:00Z"),
                    pt("f", "i-a", "2026-11-26T12:00:00Z").failed(),
                    pt("h", "i-b", "2026-11-10T12:00:00Z").failed().held(),
                    pt("n", "i-b", "2026-11-26T12:00:00Z"),
                ],
                vec![
                    (
                        "c",
                        K,
                        "newest completed point of a live source; otherwise expired: age 17d >= 7d",
                    ),
                    (
                        "f",
                        K,
                        "failed; kept until a newer point of its source completes",
                    ),
                    ("h", K, "CV_Retain_Snap hold"),
                    ("n", K, "age 1d < 7d"),
                ],
            ),
            case(
                "an empty rule keeps a failed point",
                R0,
                vec![
                    pt("f", "i-a", "2026-11-10T12:00:00Z").failed(),
                    pt("n", "i-a", "2026-11-26T12:00:00Z"),
                ],
                vec![
                    ("f", K, "no retention rule set"),
                    ("n", K, "no retention rule set"),
                ],
            ),
            case(
                "a point created after now is kept and takes a slot",
                allow(count(1)),
                vec![
                    pt("f", "i-a", "2026-11-27T12:00:05Z"),
                    pt("x", "i-a", "2026-11-27T11:00:00Z"),
                ],
                vec![
                    ("f", K, "created after now"),
                    ("x", D, "expired: not among newest 1"),
                ],
            ),
            // ------------------------------------------------ mixed
            case(
                "mixed ages: days or count keeps",
                allow(Retention {
                    days: Some(7),
                    count: Some(3),
                    ..R0
                }),
                vec![
                    pt("a", "i-a", "2026-11-26T12:00:00Z"),
                    pt("b", "i-a", "2026-11-24T12:00:00Z"),
                    pt("c", "i-a", "2026-11-17T12:00:00Z"),
                    pt("d", "i-a", "2026-11-07T12:00:00Z"),
                    pt("e", "i-a", "2026-10-28T12:00:00Z"),
                ],
                vec![
                    ("a", K, "age 1d < 7d; newest 3 of source"),
                    ("b", K, "age 3d < 7d; newest 3 of source"),
                    ("c", K, "newest 3 of source"),
                    ("d", D, "expired: age 20d >= 7d and not among newest 3"),
                    ("e", D, "expired: age 30d >= 7d and not among newest 3"),
                ],
            ),
            case(
                "sources are ranked separately, output keeps input order",
                count(1),
                vec![
                    pt("a1", "i-a", "2026-11-25T01:00:00Z"),
                    pt("b1", "i-b", "2026-11-26T01:00:00Z"),
                    pt("a2", "i-a", "2026-11-26T01:00:00Z"),
                    pt("b2", "i-b", "2026-11-27T01:00:00Z"),
                ],
                vec![
                    ("a1", D, "expired: not among newest 1"),
                    ("b1", D, "expired: not among newest 1"),
                    ("a2", K, "newest 1 of source"),
                    ("b2", K, "newest 1 of source"),
                ],
            ),
            case(
                "regions are ranked separately",
                count(1),
                vec![
                    pt("e1", "i-a", "2026-11-26T01:00:00Z"),
                    pt("w1", "i-a", "2026-11-25T01:00:00Z").in_region("us-west-2"),
                    pt("e2", "i-a", "2026-11-25T05:00:00Z"),
                    pt("w2", "i-a", "2026-11-24T01:00:00Z").in_region("us-west-2"),
                ],
                vec![
                    ("e1", K, "newest 1 of source"),
                    ("w1", K, "newest 1 of source"),
                    ("e2", D, "expired: not among newest 1"),
                    ("w2", D, "expired: not among newest 1"),
                ],
            ),
            // ------------------------------------------------ last point of a live source
            case(
                "the newest completed point of a live source is protected",
                days(7),
                vec![
                    pt("a", "i-a", "2026-11-07T12:00:00Z"),
                    pt("b", "i-a", "2026-10-28T12:00:00Z"),
                ],
                vec![("a", K, PROT20), ("b", D, "expired: age 30d >= 7d")],
            ),
            case(
                "allow-delete-last lifts the protection",
                allow(days(7)),
                vec![
                    pt("a", "i-a", "2026-11-07T12:00:00Z"),
                    pt("b", "i-a", "2026-10-28T12:00:00Z"),
                ],
                vec![
                    ("a", D, "expired: age 20d >= 7d"),
                    ("b", D, "expired: age 30d >= 7d"),
                ],
            ),
            case(
                "source gone: the normal rules apply",
                days(7),
                vec![
                    pt("a", "i-a", "2026-11-07T12:00:00Z").gone(),
                    pt("b", "i-a", "2026-10-28T12:00:00Z").gone(),
                ],
                vec![
                    ("a", D, "expired: age 20d >= 7d"),
                    ("b", D, "expired: age 30d >= 7d"),
                ],
            ),
            case(
                "protection looks past a newer pending point",
                days(7),
                vec![
                    pt("p", "i-a", "2026-11-27T11:00:00Z").pending(),
                    pt("a", "i-a", "2026-11-07T12:00:00Z"),
                    pt("b", "i-a", "2026-10-28T12:00:00Z"),
                ],
                vec![
                    ("p", K, "pending"),
                    ("a", K, PROT20),
                    ("b", D, "expired: age 30d >= 7d"),
                ],
            ),
            case(
                "a held newest point already leaves the source a point",
                days(7),
                vec![
                    pt("h", "i-a", "2026-11-07T12:00:00Z").held(),
                    pt("a", "i-a", "2026-10-28T12:00:00Z"),
                ],
                vec![
                    ("h", K, "CV_Retain_Snap hold"),
                    ("a", D, "expired: age 30d >= 7d"),
                ],
            ),
            case(
                "another plan's newer point does not count as the last point",
                days(7),
                vec![
                    pt("o", "i-a", "2026-11-27T11:00:00Z").tag(tags::PLAN, "weekly"),
                    pt("a", "i-a", "2026-11-07T12:00:00Z"),
                    pt("b", "i-a", "2026-10-28T12:00:00Z"),
                ],
                vec![
                    ("o", K, "not this plan's (_GX_PLAN_=weekly)"),
                    ("a", K, PROT20),
                    ("b", D, "expired: age 30d >= 7d"),
                ],
            ),
            case(
                "protection keeps every point tied for newest",
                days(7),
                vec![
                    pt("a", "i-a", "2026-11-07T12:00:00Z"),
                    pt("b", "i-a", "2026-11-07T12:00:00Z"),
                    pt("c", "i-a", "2026-10-28T12:00:00Z"),
                ],
                vec![
                    ("a", K, PROT20),
                    ("b", K, PROT20),
                    ("c", D, "expired: age 30d >= 7d"),
                ],
            ),
            case(
                "protection is per region and per source",
                days(7),
                vec![
                    pt("e", "i-a", "2026-11-07T12:00:00Z"),
                    pt("w", "i-a", "2026-10-28T12:00:00Z").in_region("us-west-2"),
                    pt("g1", "i-gone", "2026-11-07T12:00:00Z").gone(),
                ],
                vec![
                    ("e", K, PROT20),
                    (
                        "w",
                        K,
                        "newest completed point of a live source; otherwise expired: age 30d >= 7d",
                    ),
                    ("g1", D, "expired: age 20d >= 7d"),
                ],
            ),
            // ------------------------------------------------ GFS
            case(
                "daily: empty days use no slot",
                allow(Retention {
                    daily: Some(3),
                    ..R0
                }),
                vec![
                    pt("d23", "i-a", "2026-11-23T01:00:00Z"),
                    pt("d24", "i-a", "2026-11-24T01:00:00Z"),
                    pt("d26", "i-a", "2026-11-26T01:00:00Z"),
                    pt("d27a", "i-a", "2026-11-27T01:00:00Z"),
                    pt("d27b", "i-a", "2026-11-27T05:00:00Z"),
                ],
                vec![
                    (
                        "d23",
                        D,
                        "expired: day 2026-11-23 not among the last 3 with points",
                    ),
                    ("d24", K, "daily keep 2026-11-24"),
                    ("d26", K, "daily keep 2026-11-26"),
                    ("d27a", D, "expired: not the newest of day 2026-11-27"),
                    ("d27b", K, "daily keep 2026-11-27"),
                ],
            ),
            case(
                "daily: the last N days with points, however old",
                allow(Retention {
                    daily: Some(2),
                    ..R0
                }),
                vec![
                    pt("a", "i-a", "2026-10-01T01:00:00Z"),
                    pt("b", "i-a", "2026-09-01T01:00:00Z"),
                    pt("c", "i-a", "2026-08-01T01:00:00Z"),
                ],
                vec![
                    ("a", K, "daily keep 2026-10-01"),
                    ("b", K, "daily keep 2026-09-01"),
                    (
                        "c",
                        D,
                        "expired: day 2026-08-01 not among the last 2 with points",
                    ),
                ],
            ),
            case(
                "daily across a month end",
                allow(Retention {
                    daily: Some(3),
                    ..R0
                }),
                vec![
                    pt("n28", "i-a", "2026-11-28T10:00:00Z"),
                    pt("n29", "i-a", "2026-11-29T10:00:00Z"),
                    pt("n30", "i-a", "2026-11-30T10:00:00Z"),
                    pt("d01", "i-a", "2026-12-01T10:00:00Z"),
                ],
                vec![
                    (
                        "n28",
                        D,
                        "expired: day 2026-11-28 not among the last 3 with points",
                    ),
                    ("n29", K, "daily keep 2026-11-29"),
                    ("n30", K, "daily keep 2026-11-30"),
                    ("d01", K, "daily keep 2026-12-01"),
                ],
            )
            .at("2026-12-01T12:00:00Z", UTC),
            case(
                "daily: a point from tomorrow takes no slot",
                allow(Retention {
                    daily: Some(1),
                    ..R0
                }),
                vec![
                    pt("f", "i-a", "2026-11-28T00:00:30Z"),
                    pt("x", "i-a", "2026-11-27T20:00:00Z"),
                    pt("y", "i-a", "2026-11-27T10:00:00Z"),
                ],
                vec![
                    ("f", K, "created after now"),
                    ("x", K, "daily keep 2026-11-27"),
                    ("y", D, "expired: not the newest of day 2026-11-27"),
                ],
            )
            .at("2026-11-27T23:59:00Z", UTC),
            case(
                "daily: held and pending points take no slot",
                allow(Retention {
                    daily: Some(1),
                    ..R0
                }),
                vec![
                    pt("h", "i-a", "2026-11-27T05:00:00Z").held(),
                    pt("p", "i-a", "2026-11-27T06:00:00Z").pending(),
                    pt("x", "i-a", "2026-11-27T01:00:00Z"),
                    pt("y", "i-a", "2026-11-26T01:00:00Z"),
                ],
                vec![
                    ("h", K, "CV_Retain_Snap hold"),
                    ("p", K, "pending"),
                    ("x", K, "daily keep 2026-11-27"),
                    (
                        "y",
                        D,
                        "expired: day 2026-11-26 not among the last 1 with points",
                    ),
                ],
            ),
            case(
                "weekly: ISO weeks start on Monday",
                allow(Retention {
                    weekly: Some(2),
                    ..R0
                }),
                vec![
                    pt("sa", "i-a", "2026-11-21T10:00:00Z"),
                    pt("su", "i-a", "2026-11-22T10:00:00Z"),
                    pt("mo", "i-a", "2026-11-23T10:00:00Z"),
                ],
                vec![
                    ("sa", D, "expired: not the newest of week 2026-W47"),
                    ("su", K, "weekly keep 2026-W47"),
                    ("mo", K, "weekly keep 2026-W48"),
                ],
            ),
            case(
                "weekly across the year end (2026 has an ISO week 53)",
                allow(Retention {
                    weekly: Some(2),
                    ..R0
                }),
                vec![
                    pt("a", "i-a", "2026-12-24T10:00:00Z"),
                    pt("b", "i-a", "2026-12-29T10:00:00Z"),
                    pt("c", "i-a", "2027-01-01T10:00:00Z"),
                    pt("d", "i-a", "2027-01-05T10:00:00Z"),
                ],
                vec![
                    (
                        "a",
                        D,
                        "expired: week 2026-W52 not among the last 2 with points",
                    ),
                    ("b", D, "expired: not the newest of week 2026-W53"),
                    ("c", K, "weekly keep 2026-W53"),
                    ("d", K, "weekly keep 2027-W01"),
                ],
            )
            .at("2027-01-06T12:00:00Z", UTC),
            case(
                "weekly in Berlin: Sunday 23:30 UTC is Monday",
                allow(Retention {
                    weekly: Some(1),
                    ..R0
                }),
                vec![
                    pt("s", "i-a", "2026-11-29T22:30:00Z"),
                    pt("m", "i-a", "2026-11-29T23:30:00Z"),
                ],
                vec![
                    (
                        "s",
                        D,
                        "expired: week 2026-W48 not among the last 1 with points",
                    ),
                    ("m", K, "weekly keep 2026-W49"),
                ],
            )
            .at("2026-11-30T12:00:00Z", Berlin),
            case(
                "weekly in UTC: the same two points share a week",
                allow(Retention {
                    weekly: Some(1),
                    ..R0
                }),
                vec![
                    pt("s", "i-a", "2026-11-29T22:30:00Z"),
                    pt("m", "i-a", "2026-11-29T23:30:00Z"),
                ],
                vec![
                    ("s", D, "expired: not the newest of week 2026-W48"),
                    ("m", K, "weekly keep 2026-W48"),
                ],
            )
            .at("2026-11-30T12:00:00Z", UTC),
            case(
                "monthly across month ends in UTC",
                allow(Retention {
                    monthly: Some(3),
                    ..R0
                }),
                vec![
                    pt("a", "i-a", "2026-09-10T10:00:00Z"),
                    pt("b", "i-a", "2026-10-31T23:30:00Z"),
                    pt("c", "i-a", "2026-11-15T10:00:00Z"),
                    pt("d", "i-a", "2026-11-30T10:00:00Z"),
                    pt("e", "i-a", "2026-12-01T10:00:00Z"),
                ],
                vec![
                    (
                        "a",
                        D,
                        "expired: month 2026-09 not among the last 3 with points",
                    ),
                    ("b", K, "monthly keep 2026-10"),
                    ("c", D, "expired: not the newest of month 2026-11"),
                    ("d", K, "monthly keep 2026-11"),
                    ("e", K, "monthly keep 2026-12"),
                ],
            )
            .at("2026-12-15T12:00:00Z", UTC),
            case(
                "monthly in Berlin: Oct 31 23:30 UTC is November",
                allow(Retention {
                    monthly: Some(3),
                    ..R0
                }),
                vec![
                    pt("a", "i-a", "2026-09-10T10:00:00Z"),
                    pt("b", "i-a", "2026-10-31T23:30:00Z"),
                    pt("c", "i-a", "2026-11-15T10:00:00Z"),
                    pt("d", "i-a", "2026-11-30T10:00:00Z"),
                    pt("e", "i-a", "2026-12-01T10:00:00Z"),
                ],
                vec![
                    ("a", K, "monthly keep 2026-09"),
                    ("b", D, "expired: not the newest of month 2026-11"),
                    ("c", D, "expired: not the newest of month 2026-11"),
                    ("d", K, "monthly keep 2026-11"),
                    ("e", K, "monthly keep 2026-12"),
                ],
            )
            .at("2026-12-15T12:00:00Z", Berlin),
            case(
                "daily in Berlin: 23:30 UTC is the next day",
                allow(Retention {
                    daily: Some(2),
                    ..R0
                }),
                vec![
                    pt("c", "i-a", "2026-11-26T10:00:00Z"),
                    pt("a", "i-a", "2026-11-26T22:30:00Z"),
                    pt("b", "i-a", "2026-11-26T23:30:00Z"),
                ],
                vec![
                    ("c", D, "expired: not the newest of day 2026-11-26"),
                    ("a", K, "daily keep 2026-11-26"),
                    ("b", K, "daily keep 2026-11-27"),
                ],
            )
            .at(NOW, Berlin),
            case(
                "daily in UTC: the same points share a day",
                allow(Retention {
                    daily: Some(2),
                    ..R0
                }),
                vec![
                    pt("c", "i-a", "2026-11-26T10:00:00Z"),
                    pt("a", "i-a", "2026-11-26T22:30:00Z"),
                    pt("b", "i-a", "2026-11-26T23:30:00Z"),
                ],
                vec![
                    ("c", D, "expired: not the newest of day 2026-11-26"),
                    ("a", D, "expired: not the newest of day 2026-11-26"),
                    ("b", K, "daily keep 2026-11-26"),
                ],
            ),
            case(
                "daily in Berlin on the spring DST day: 00:30 CET is Mar 29",
                allow(Retention {
                    daily: Some(2),
                    ..R0
                }),
                vec![
                    pt("m", "i-a", "2026-03-28T10:00:00Z"),
                    pt("e", "i-a", "2026-03-28T22:30:00Z"),
                    pt("h", "i-a", "2026-03-28T23:30:00Z"),
                ],
                vec![
                    ("m", D, "expired: not the newest of day 2026-03-28"),
                    ("e", K, "daily keep 2026-03-28"),
                    ("h", K, "daily keep 2026-03-29"),
                ],
            )
            .at("2026-03-29T12:00:00Z", Berlin),
            case(
                "daily in Berlin on the autumn DST day (25 hours)",
                allow(Retention {
                    daily: Some(2),
                    ..R0
                }),
                vec![
                    pt("r", "i-a", "2026-10-24T21:30:00Z"), // Oct 24 23:30 CEST
                    pt("q", "i-a", "2026-10-24T22:30:00Z"), // Oct 25 00:30 CEST
                    pt("a1", "i-a", "2026-10-25T00:30:00Z"), // 02:30 CEST
                    pt("a2", "i-a", "2026-10-25T01:30:00Z"), // 02:30 CET
                    pt("z", "i-a", "2026-10-25T22:30:00Z"), // Oct 25 23:30 CET
                ],
                vec![
                    ("r", K, "daily keep 2026-10-24"),
                    ("q", D, "expired: not the newest of day 2026-10-25"),
                    ("a1", D, "expired: not the newest of day 2026-10-25"),
                    ("a2", D, "expired: not the newest of day 2026-10-25"),
                    ("z", K, "daily keep 2026-10-25"),
                ],
            )
            .at("2026-10-26T06:00:00Z", Berlin),
            case(
                "daily in New York on the spring DST day",
                allow(Retention {
                    daily: Some(2),
                    ..R0
                }),
                vec![
                    pt("e", "i-a", "2026-03-08T04:30:00Z"), // Mar 7 23:30 EST
                    pt("h", "i-a", "2026-03-08T05:30:00Z"), // Mar 8 00:30 EST
                    pt("w", "i-a", "2026-03-09T03:30:00Z"), // Mar 8 23:30 EDT
                ],
                vec![
                    ("e", K, "daily keep 2026-03-07"),
                    ("h", D, "expired: not the newest of day 2026-03-08"),
                    ("w", K, "daily keep 2026-03-08"),
                ],
            )
            .at("2026-03-09T12:00:00Z", New_York),
            case(
                "daily in New York on the autumn DST day",
                allow(Retention {
                    daily: Some(2),
                    ..R0
                }),
                vec![
                    pt("m0", "i-a", "2026-11-01T03:30:00Z"), // Oct 31 23:30 EDT
                    pt("m1", "i-a", "2026-11-01T04:30:00Z"), // Nov 1 00:30 EDT
                    pt("m2", "i-a", "2026-11-02T04:30:00Z"), // Nov 1 23:30 EST
                ],
                vec![
                    ("m0", K, "daily keep 2026-10-31"),
                    ("m1", D, "expired: not the newest of day 2026-11-01"),
                    ("m2", K, "daily keep 2026-11-01"),
                ],
            )
            .at("2026-11-02T12:00:00Z", New_York),
            case(
                "days are 24-hour periods across a DST change",
                allow(days(1)),
                vec![
                    pt("o", "i-a", "2026-03-28T22:30:00Z"),
                    pt("h", "i-a", "2026-03-28T23:30:00Z"), // Mar 29 00:30 CET
                ],
                vec![
                    ("o", D, "expired: age 1d >= 1d"),
                    ("h", K, "age 23h < 1d"),
                ],
            )
            .at("2026-03-29T22:30:00Z", Berlin), // Mar 30 00:30 CEST
            case(
                "count with daily, weekly and monthly",
                allow(Retention {
                    count: Some(1),
                    daily: Some(2),
                    weekly: Some(2),
                    monthly: Some(2),
                    ..R0
                }),
                vec![
                    pt("a", "i-a", "2026-11-27T01:00:00Z"),
                    pt("b", "i-a", "2026-11-26T01:00:00Z"),
                    pt("c", "i-a", "2026-11-25T01:00:00Z"),
                    pt("d", "i-a", "2026-11-20T01:00:00Z"),
                    pt("e", "i-a", "2026-10-15T01:00:00Z"),
                    pt("f", "i-a", "2026-10-01T01:00:00Z"),
                ],
                vec![
                    (
                        "a",
                        K,
                        "newest 1 of source; daily keep 2026-11-27; weekly keep 2026-W48; monthly keep 2026-11",
                    ),
                    ("b", K, "daily keep 2026-11-26"),
                    (
                        "c",
                        D,
                        "expired: not among newest 1 and day 2026-11-25 not among the last 2 with points \
                         and not the newest of week 2026-W48 and not the newest of month 2026-11",
                    ),
                    ("d", K, "weekly keep 2026-W47"),
                    ("e", K, "monthly keep 2026-10"),
                    (
                        "f",
                        D,
                        "expired: not among newest 1 and day 2026-10-01 not among the last 2 with points \
                         and week 2026-W40 not among the last 2 with points and not the newest of month 2026-10",
                    ),
                ],
            ),
            case(
                "GFS buckets are per source",
                allow(Retention {
                    daily: Some(1),
                    ..R0
                }),
                vec![
                    pt("a1", "i-a", "2026-11-27T01:00:00Z"),
                    pt("b1", "i-b", "2026-11-26T01:00:00Z"),
                    pt("a0", "i-a", "2026-11-26T01:00:00Z"),
                ],
                vec![
                    ("a1", K, "daily keep 2026-11-27"),
                    ("b1", K, "daily keep 2026-11-26"),
                    (
                        "a0",
                        D,
                        "expired: day 2026-11-26 not among the last 1 with points",
                    ),
                ],
            ),
            case(
                "daily with the protection: nothing recent, newest kept",
                Retention {
                    daily: Some(0),
                    ..R0
                },
                vec![
                    pt("a", "i-a", "2026-11-27T01:00:00Z"),
                    pt("b", "i-a", "2026-11-26T01:00:00Z"),
                ],
                vec![
                    (
                        "a",
                        K,
                        "newest completed point of a live source; otherwise expired: \
                         day 2026-11-27 not among the last 0 with points",
                    ),
                    (
                        "b",
                        D,
                        "expired: day 2026-11-26 not among the last 0 with points",
                    ),
                ],
            ),
        ]
}

#[test]
fn decision_table() {
    let cases = table();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let got = decide(&c.points, PLAN, &c.rule, t(c.now), c.tz);
        let got: Vec<(&str, Verdict, &str)> = got
            .iter()
            .map(|d| (d.id.as_str(), d.verdict, d.rule.as_str()))
            .collect();
        if got != c.want {
            failures.push(format!(
                "{}:\n  want {:#?}\n  got  {:#?}",
                c.name, c.want, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn verdict_serializes_lowercase() {
    let d = Decision {
        id: "snap-1".into(),
        verdict: Verdict::Delete,
        rule: "expired: age 7d >= 7d".into(),
    };
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        serde_json::json!({"id": "snap-1", "verdict": "delete", "rule": "expired: age 7d >= 7d"})
    );
    assert_eq!(serde_json::to_value(Verdict::Keep).unwrap(), "keep");
    assert_eq!(Verdict::Keep.to_string(), "keep");
    let p = pt("snap-1", "i-a", NOW);
    let back: Point = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
    assert_eq!(back, p);
}

#[test]
fn ages_print_compactly() {
    for (secs, want) in [
        (0, "0s"),
        (59, "59s"),
        (3_600, "1h"),
        (86_400, "1d"),
        (7 * 86_400 + 1, "7d1s"),
        (7 * 86_400 - 1, "6d23h59m59s"),
    ] {
        assert_eq!(fmt_age(TimeDelta::seconds(secs)), want);
    }
}

// ------------------------------------------------------------ properties

const SOURCES: [&str; 3] = ["i-a", "i-b", "db-c"];
const REGIONS: [&str; 2] = ["us-east-1", "eu-central-1"];
const SPAN: i64 = 420 * 86_400;

fn base() -> DateTime<Utc> {
    t("2026-01-01T00:00:00Z")
}

prop_compose! {
    /// (source, region, offset, has _GX_BACKUP_, plan: 0-1 ours / 2 other / 3 none, held, completed, failed if not completed)
    fn raw_point()(
        source in 0..SOURCES.len(),
        region in 0..REGIONS.len(),
        // a coarse grid as well, so that ties and shared buckets happen
        offset in prop_oneof![0..SPAN, (0..SPAN / 43_200).prop_map(|h| h * 43_200)],
        backup in prop::bool::weighted(0.85),
        plan in 0..4u8,
        held in prop::bool::weighted(0.15),
        completed in prop::bool::weighted(0.85),
        failed in any::<bool>(),
    ) -> (usize, usize, i64, bool, u8, bool, bool, bool) {
        (source, region, offset, backup, plan, held, completed, failed && !completed)
    }
}

prop_compose! {
    fn catalog()(
        raw in prop::collection::vec(raw_point(), 0..40),
        exists in prop::array::uniform3(any::<bool>()),
    ) -> Vec<Point> {
        raw.into_iter()
            .enumerate()
            .map(|(i, (s, r, off, backup, plan, held, completed, failed))| {
                let mut tags = BTreeMap::new();
                if backup {
                    tags.insert(tags::BACKUP.to_string(), i.to_string());
                }
                match plan {
                    0 | 1 => { tags.insert(tags::PLAN.to_string(), PLAN.to_string()); }
                    2 => { tags.insert(tags::PLAN.to_string(), "other".to_string()); }
                    _ => {}
                }
                if held {
                    tags.insert(tags::RETAIN.to_string(), String::new());
                }
                Point {
                    id: format!("p{i}"),
                    source: SOURCES[s].into(),
                    region: REGIONS[r].into(),
                    created: base() + TimeDelta::seconds(off),
                    tags,
                    completed,
                    failed,
                    source_exists: exists[s],
                }
            })
            .collect()
    }
}

prop_compose! {
    fn retention()(
        days in prop::option::of(0u32..120),
        count in prop::option::of(0u32..8),
        daily in prop::option::of(0u32..10),
        weekly in prop::option::of(0u32..6),
        monthly in prop::option::of(0u32..6),
        allow_delete_last in any::<bool>(),
    ) -> Retention {
        Retention { days, count, daily, weekly, monthly, allow_delete_last }
    }
}

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![
        UTC,
        Berlin,
        New_York,
        chrono_tz::Asia::Kolkata,
        chrono_tz::Pacific::Chatham,
        chrono_tz::Australia::Lord_Howe,
    ])
}

fn now_strategy() -> impl Strategy<Value = DateTime<Utc>> {
    (300 * 86_400..SPAN + 10 * 86_400).prop_map(|s| base() + TimeDelta::seconds(s))
}

fn ours(p: &Point) -> bool {
    p.tags.contains_key(tags::BACKUP) && p.tags.get(tags::PLAN).map(String::as_str) == Some(PLAN)
}

fn more_generous(a: &Retention, b: &Retention) -> Retention {
    let max = |x: Option<u32>, y: Option<u32>| x.max(y);
    Retention {
        days: max(a.days, b.days),
        count: max(a.count, b.count),
        daily: max(a.daily, b.daily),
        weekly: max(a.weekly, b.weekly),
        monthly: max(a.monthly, b.monthly),
        allow_delete_last: a.allow_delete_last,
    }
}

fn deleted(d: &[Decision]) -> BTreeSet<String> {
    d.iter()
        .filter(|d| d.verdict == Verdict::Delete)
        .map(|d| d.id.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_deletes_what_it_must_keep(
        points in catalog(),
        rule in retention(),
        now in now_strategy(),
        tz in zone(),
    ) {
        let out = decide(&points, PLAN, &rule, now, tz);

        // One decision per point, in input order: every id exactly once.
        prop_assert_eq!(out.len(), points.len());
        for (p, d) in points.iter().zip(&out) {
            prop_assert_eq!(&p.id, &d.id);
            prop_assert!(!d.rule.is_empty());
        }
        let ids: BTreeSet<&str> = out.iter().map(|d| d.id.as_str()).collect();
        prop_assert_eq!(ids.len(), points.len());

        for (p, d) in points.iter().zip(&out) {
            if d.verdict != Verdict::Delete {
                continue;
            }
            prop_assert!(p.tags.contains_key(tags::BACKUP), "untagged deleted: {:?}", d);
            prop_assert_eq!(p.tags.get(tags::PLAN).map(String::as_str), Some(PLAN));
            prop_assert!(!p.tags.contains_key(tags::RETAIN), "held deleted: {:?}", d);
            prop_assert!(!rule.is_empty(), "empty rule deleted: {:?}", d);
            if p.failed {
                // Only once a newer point of its source completed.
                prop_assert!(d.rule.starts_with("failed"), "{:?}", d);
                prop_assert!(
                    points.iter().any(|q| ours(q)
                        && q.completed
                        && q.source == p.source
                        && q.region == p.region
                        && q.created >= p.created),
                    "failed point deleted with nothing newer: {:?}", d
                );
                continue;
            }
            prop_assert!(p.completed, "pending deleted: {:?}", d);
            prop_assert!(p.created <= now, "future point deleted: {:?}", d);
            prop_assert!(d.rule.starts_with("expired: "), "{:?}", d);

            // No rule that keeps it.
            if let Some(n) = rule.days {
                prop_assert!(now - p.created >= TimeDelta::days(i64::from(n)), "{:?}", d);
            }
            if let Some(n) = rule.count {
                let newer = points
                    .iter()
                    .filter(|q| {
                        ours(q)
                            && q.completed
                            && !q.tags.contains_key(tags::RETAIN)
                            && q.source == p.source
                            && q.region == p.region
                            && q.created > p.created
                    })
                    .count();
                prop_assert!(newer >= n as usize, "{:?}: {} newer", d, newer);
            }

            // The newest completed point of a live source survives.
            if !rule.allow_delete_last && p.source_exists {
                let newest = points
                    .iter()
                    .filter(|q| ours(q) && q.completed && q.source == p.source && q.region == p.region)
                    .map(|q| q.created)
                    .max();
                prop_assert!(newest != Some(p.created), "last point of a live source deleted: {:?}", d);
            }
        }
    }

    #[test]
    fn more_generous_rules_delete_no_more(
        points in catalog(),
        a in retention(),
        b in retention(),
        now in now_strategy(),
        tz in zone(),
    ) {
        prop_assume!(!a.is_empty());
        let strict = deleted(&decide(&points, PLAN, &a, now, tz));
        let generous = deleted(&decide(&points, PLAN, &more_generous(&a, &b), now, tz));
        prop_assert!(generous.is_subset(&strict), "{:?} ⊄ {:?}", generous, strict);

        // Turning allow-delete-last off only ever saves points.
        let protected = Retention { allow_delete_last: false, ..a.clone() };
        let unprotected = Retention { allow_delete_last: true, ..a };
        let with = deleted(&decide(&points, PLAN, &protected, now, tz));
        let without = deleted(&decide(&points, PLAN, &unprotected, now, tz));
        prop_assert!(with.is_subset(&without));
        // Deterministic.
        prop_assert_eq!(&with, &deleted(&decide(&points, PLAN, &protected, now, tz)));
    }
}
