//! Which resources a scheduled drill run restores (`[drill]` of a plan,
//! docs/DESIGN.md "Restore drills"): a pure function of the candidates, when
//! each was last drilled (the ledger's Drill jobs), the rule and the clock.
//!
//! * `sample = K`: K per run, those whose last drill is missing first, then
//!   the oldest: over successive runs every candidate gets its turn.
//! * `every-days = N`: each candidate at least once per N days. A run takes
//!   every candidate that would be overdue at the next run (its last drill
//!   more than N days before it), oldest first, and
//!   tops that up with never-drilled ones to an even share (the candidates
//!   divided by the runs in N days), so that a new plan's first drills are
//!   spread over N days instead of all falling on its first run.

use chrono::{DateTime, Duration, Utc};

use crate::config::DrillSelection;

/// The candidates to drill this run, in the order to drill them. `last` is
/// when each was last drilled (`None`: never); `interval` the drill
/// schedule's longest gap between two runs (`None`: unknown, one run per
/// period is assumed).
pub fn select<K: Clone + Ord>(
    candidates: &[(K, Option<DateTime<Utc>>)],
    selection: DrillSelection,
    now: DateTime<Utc>,
    interval: Option<Duration>,
) -> Vec<K> {
    // Never drilled first (in key order), then the oldest drill first.
    let mut order: Vec<&(K, Option<DateTime<Utc>>)> = candidates.iter().collect();
    order.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    match selection {
        DrillSelection::Sample(k) => order
            .into_iter()
            .take(k as usize)
            .map(|c| c.0.clone())
            .collect(),
        DrillSelection::EveryDays(n) => {
            let period = Duration::days(i64::from(n));
            let interval = interval.filter(|i| *i > Duration::zero());
            let runs = interval.map_or(1, |i| {
                (period.num_seconds() / i.num_seconds().max(1)).max(1)
            }) as usize;
            let share = candidates.len().div_ceil(runs);
            let next = now + interval.unwrap_or_else(Duration::zero);
            // Overdue at the next run (or now): its turn is this run, oldest first.
            let mut out: Vec<K> = order
                .iter()
                .filter(|(_, last)| last.is_some_and(|t| t + period < next))
                .map(|(k, _)| k.clone())
                .collect();
            for (k, last) in &order {
                if out.len() >= share {
                    break;
                }
                if last.is_none() {
                    out.push(k.clone());
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_ago: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(now - Duration::days(days_ago))
    }

    #[test]
    fn a_sample_takes_the_never_drilled_then_the_oldest_and_rotates() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let c = vec![
            ("a", at(1, now)),
            ("b", None),
            ("c", at(5, now)),
            ("d", at(3, now)),
            ("e", None),
        ];
        assert_eq!(
            select(&c, DrillSelection::Sample(3), now, None),
            vec!["b", "e", "c"]
        );
        assert_eq!(select(&c, DrillSelection::Sample(9), now, None).len(), 5);
        // Rotation: drilling what was chosen moves it to the back; after
        // enough runs every candidate has been drilled.
        let mut c = c;
        let mut drilled = std::collections::BTreeSet::new();
        for run in 0..3 {
            let t = now + Duration::days(run);
            let chosen = select(&c, DrillSelection::Sample(2), t, None);
            assert_eq!(chosen.len(), 2);
            for k in chosen {
                drilled.insert(k);
                c.iter_mut().find(|x| x.0 == k).unwrap().1 = Some(t);
            }
        }
        assert_eq!(drilled.len(), 5, "{drilled:?}");
    }

    #[test]
    fn every_days_takes_what_falls_due_before_the_next_run_and_spreads_new_ones() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let daily = Some(Duration::days(1));
        // Seven days, daily runs: a resource drilled 7 days ago is due now
        // (it would be 8 days old at the next run); 6 days ago is not.
        let c = vec![("a", at(7, now)), ("b", at(6, now)), ("c", at(10, now))];
        assert_eq!(
            select(&c, DrillSelection::EveryDays(7), now, daily),
            vec!["c", "a"]
        );
        // Fourteen new resources over 7 daily runs: two per run.
        let fresh: Vec<(String, Option<DateTime<Utc>>)> =
            (0..14).map(|i| (format!("r{i:02}"), None)).collect();
        assert_eq!(
            select(&fresh, DrillSelection::EveryDays(7), now, daily),
            vec!["r00".to_string(), "r01".to_string()]
        );
        // Simulated over two weeks: every resource is drilled at least once
        // per 7 days, and the load stays spread.
        let mut c = fresh;
        let mut last_seen: std::collections::BTreeMap<String, DateTime<Utc>> = Default::default();
        for day in 0..21 {
            let t = now + Duration::days(day);
            let chosen = select(&c, DrillSelection::EveryDays(7), t, daily);
            assert!(chosen.len() <= 3, "day {day}: {chosen:?}");
            for k in chosen {
                last_seen.insert(k.clone(), t);
                c.iter_mut().find(|x| x.0 == k).unwrap().1 = Some(t);
            }
            if day >= 7 {
                for (k, l) in &last_seen {
                    assert!(t - *l < Duration::days(7), "day {day}: {k} last {l}");
                }
                assert_eq!(last_seen.len(), 14);
            }
        }
        // Without a known interval every candidate not drilled for N days.
        let c = vec![("a", at(8, now)), ("b", at(2, now)), ("c", None)];
        assert_eq!(
            select(&c, DrillSelection::EveryDays(7), now, None),
            vec!["a", "c"]
        );
    }
}
