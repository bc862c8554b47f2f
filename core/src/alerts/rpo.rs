//! The agent's periodic RPO check, its pure part: which resources to tell
//! about, under which key, and the per plan/tenant/region counts the metrics
//! show (docs/DESIGN.md, "Alerts" and "Metrics").
//!
//! The RPO itself is decided by [`crate::report::assess`], the same code as
//! `rolesnap report`. Only [`Status::Breached`] resources are told: a
//! never-protected resource (a new instance before its first backup) is
//! counted, not alerted (a failed backup of it is a job-failed alert).
//!
//! A breach episode starts when a check finds a resource breached and ends
//! when a check finds it anything else (a new point, no longer selected).
//! Its key is chosen when it starts ([`Event::rpo_breach`]) and kept in
//! `STATE_DIR/rpo-episodes.json` while it lasts, so a new point in one place
//! while another still lags does not make a second alert; the alert
//! de-duplication ([`super::claim`]) then sends each key once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Event;
use crate::report::{ResourceReport, Status};

/// The episodes file in the state directory.
pub const EPISODES_FILE: &str = "rpo-episodes.json";

/// `plan/tenant/region/kind/id`: one resource of one plan.
pub fn resource_id(r: &ResourceReport) -> String {
    let k = &r.key;
    format!("{}/{}/{}/{}/{}", k.plan, k.tenant, k.region, k.kind, k.id)
}

/// Open breach episodes: resource ([`resource_id`]) → the key of its alert.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Episodes {
    pub open: BTreeMap<String, String>,
    path: Option<PathBuf>,
}

impl Episodes {
    /// Reads `STATE_DIR/rpo-episodes.json`; an unreadable file counts as
    /// empty (a breach may then be told again, never lost).
    pub fn load(state_dir: &Path) -> Episodes {
        let path = state_dir.join(EPISODES_FILE);
        let open = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        Episodes {
            open,
            path: Some(path),
        }
    }

    /// Writes the file (aside, then renamed).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.open)?)?;
        std::fs::rename(&tmp, path)
    }

    /// One plan's check: `decided` are the resources the check could decide
    /// (every place they keep points in was listed), `undecided` the ids
    /// ([`resource_id`]) of those it could not, whose episodes are kept as
    /// they are. Returns the breach events to send, each under its
    /// episode's key. Every other episode of `plan` ends.
    pub fn check(
        &mut self,
        plan: &str,
        decided: &[ResourceReport],
        undecided: &[String],
        now: DateTime<Utc>,
    ) -> Vec<Event> {
        let prefix = format!("{plan}/");
        let mut next: BTreeMap<String, String> = self
            .open
            .iter()
            .filter(|(id, _)| !id.starts_with(&prefix) || undecided.contains(id))
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect();
        let mut events = Vec::new();
        for r in decided.iter().filter(|r| r.status == Status::Breached) {
            let id = resource_id(r);
            let mut e = Event::rpo_breach(r, now);
            if let Some(key) = self.open.get(&id) {
                e.key = key.clone();
            }
            next.insert(id, e.key.clone());
            events.push(e);
        }
        self.open = next;
        events
    }
}

/// Counts of one plan × tenant × region, for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RpoCounts {
    pub compliant: u64,
    pub breached: u64,
    pub never_protected: u64,
    pub no_rpo: u64,
}

/// The newest drill of one plan × tenant × region (for the metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillGauge {
    pub at: DateTime<Utc>,
    pub healthy: bool,
    pub rto_seconds: Option<i64>,
}

/// (plan, tenant, region).
pub type Scope = (String, String, String);

/// Per plan × tenant × region: how many resources are in each status, and
/// the newest drill of any of its resources.
pub fn tally(
    resources: &[ResourceReport],
) -> (BTreeMap<Scope, RpoCounts>, BTreeMap<Scope, DrillGauge>) {
    let mut counts: BTreeMap<Scope, RpoCounts> = BTreeMap::new();
    let mut drills: BTreeMap<Scope, DrillGauge> = BTreeMap::new();
    for r in resources {
        let scope = (
            r.key.plan.clone(),
            r.key.tenant.clone(),
            r.key.region.clone(),
        );
        let c = counts.entry(scope.clone()).or_default();
        match r.status {
            Status::Compliant => c.compliant += 1,
            Status::Breached => c.breached += 1,
            Status::NeverProtected => c.never_protected += 1,
            Status::NoRpo | Status::Unprotected => c.no_rpo += 1,
        }
        if let Some(d) = &r.drill {
            if drills.get(&scope).is_none_or(|x| x.at < d.at) {
                drills.insert(
                    scope,
                    DrillGauge {
                        at: d.at,
                        healthy: d.healthy,
                        rto_seconds: d.rto_seconds,
                    },
                );
            }
        }
    }
    (counts, drills)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::report::{assess, DrillSeen, Observed, Place, ResourceKey, Role};

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    fn place(role: Role, region: &str) -> Place {
        Place {
            role,
            region: region.into(),
            vault: None,
        }
    }

    /// Instance `id` of alpha with points at `source` (us-east-1) and
    /// `copy` (us-west-2) hours, decided at `now` with a 25 h RPO.
    fn res(id: &str, source: &[i64], copy: &[i64], now: i64) -> ResourceReport {
        let key = ResourceKey {
            plan: "nightly".into(),
            tenant: "alpha".into(),
            account: "222222222222".into(),
            region: "us-east-1".into(),
            kind: "instance".into(),
            id: id.into(),
            name: None,
        };
        let places = [
            place(Role::Source, "us-east-1"),
            place(Role::Copy, "us-west-2"),
        ];
        let mut points = Vec::new();
        for (hours, p) in [(source, &places[0]), (copy, &places[1])] {
            for h in hours {
                points.push(Observed {
                    place: p.clone(),
                    id: format!("snap-{h}-{}", p.region),
                    job: "1@a".into(),
                    created: t(*h),
                    state: crate::catalog::PointState::Completed,
                });
            }
        }
        assess(key, Some(Duration::hours(25)), &places, points, t(now))
    }

    #[test]
    fn a_breach_is_one_event_key_per_episode() {
        let mut ep = Episodes::default();
        // Breached at hour 30 and 31: the same key.
        let a = ep.check("nightly", &[res("i-1", &[0], &[0], 30)], &[], t(30));
        assert_eq!(a.len(), 1);
        let b = ep.check("nightly", &[res("i-1", &[0], &[0], 31)], &[], t(31));
        assert_eq!(a[0].key, b[0].key);
        // A new source point while the copy lags: still the same episode.
        let c = ep.check("nightly", &[res("i-1", &[0, 31], &[0], 32)], &[], t(32));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].key, a[0].key, "the copy still lags: same episode");
        // Not decided (a listing failed): the episode is kept.
        let d = ep.check(
            "nightly",
            &[],
            &["nightly/alpha/us-east-1/instance/i-1".into()],
            t(33),
        );
        assert!(d.is_empty());
        assert_eq!(ep.open.len(), 1);
        // Compliant: the episode ends; the next breach is a new key.
        let e = ep.check("nightly", &[res("i-1", &[0, 31], &[0, 31], 33)], &[], t(33));
        assert!(e.is_empty());
        assert!(ep.open.is_empty());
        let f = ep.check("nightly", &[res("i-1", &[0, 31], &[0, 31], 60)], &[], t(60));
        assert_eq!(f.len(), 1);
        assert_ne!(f[0].key, a[0].key);
        assert!(f[0].key.starts_with("rpo:nightly:alpha:us-east-1:i-1:"));
        // Another plan's episodes are left alone.
        ep.check("other", &[], &[], t(61));
        assert_eq!(ep.open.len(), 1);
    }

    #[test]
    fn the_body_names_tenant_region_resource_and_the_breached_place() {
        let r = res("i-1", &[29], &[0], 30);
        assert_eq!(r.status, Status::Breached);
        let e = Event::rpo_breach(&r, t(30));
        let b = e.body();
        assert_eq!(b["event"], "rpo-breach");
        assert_eq!(b["tenant"], "alpha");
        assert_eq!(b["account"], "222222222222");
        assert_eq!(b["resource"], "i-1");
        assert_eq!(b["rpo_seconds"], 25 * 3600);
        assert_eq!(b["breached_places"].as_array().unwrap().len(), 1);
        assert_eq!(b["breached_places"][0]["region"], "us-west-2");
        let text = b["text"].as_str().unwrap();
        assert!(text.contains("instance i-1 in alpha/us-east-1"), "{text}");
        assert!(text.contains("us-west-2 (copy)"), "{text}");
    }

    #[test]
    fn tally_counts_per_scope_and_keeps_the_newest_drill() {
        let mut a = res("i-1", &[29], &[29], 30);
        let mut b = res("i-2", &[0], &[0], 30);
        let c = res("i-3", &[], &[], 30);
        a.drill = Some(DrillSeen {
            job: "5@a".into(),
            at: t(10),
            healthy: true,
            rto_seconds: Some(42),
            reason: None,
        });
        b.drill = Some(DrillSeen {
            job: "6@a".into(),
            at: t(20),
            healthy: false,
            rto_seconds: None,
            reason: Some("x".into()),
        });
        let (counts, drills) = tally(&[a, b, c]);
        let scope = (
            "nightly".to_string(),
            "alpha".to_string(),
            "us-east-1".to_string(),
        );
        assert_eq!(
            counts[&scope],
            RpoCounts {
                compliant: 1,
                breached: 1,
                never_protected: 1,
                no_rpo: 0
            }
        );
        assert!(!drills[&scope].healthy);
        assert_eq!(drills[&scope].at, t(20));
    }
}
