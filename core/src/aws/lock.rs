//! EBS Snapshot Lock: ransomware protection of recovery points.
//!
//! With `[lock]` (source regions) or `[[copy]] lock` (a copy region) in a plan,
//! every EBS snapshot of a recovery point, including the snapshots behind an
//! AMI and the cross-region copies, is locked (`LockSnapshot`) as soon as the
//! point is complete, for as long as the plan's retention keeps it. While
//! locked, nobody can delete it: not the tenant role, not an attacker holding
//! it, and in compliance mode (after the cooling-off period) not even the
//! account's root user.
//!
//! * Duration: [`lock_days`], the time every new point is certainly kept
//!   (`days`, else `daily` days, else the shortest weekly/monthly horizon,
//!   else `count` days). A point that a `weekly` or `monthly` rule keeps longer
//!   gets its lock extended by prune to the end of that rule ([`extension`],
//!   [`extension_for`]).
//! * Prune reads the lock state (`DescribeLockedSnapshots`) before deleting a
//!   snapshot and leaves a locked one alone, reported as held by lock.
//! * RDS and Aurora have no snapshot lock (AWS offers none for DB snapshots):
//!   a plan's locks cover EBS snapshots and AMIs only; `validate` says so.
//! * rolesnap never unlocks (the policy does not grant `ec2:UnlockSnapshot`):
//!   unlocking a governance lock is a person's decision, with their own rights.
//!
//! The engine calls only this module for locks; backup, copy, prune and
//! `list` call it at one place each.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::LockMode as SdkLockMode;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Duration, Utc};

use crate::config::{CopyRule, LockMode, LockRule, Plan, Retention};

/// AWS limits of `LockDuration` (days).
const MAX_DAYS: i64 = 36_500;

/// The lock of the plan's own snapshots in source region `region`, if any.
pub fn source_rule<'a>(plan: &'a Plan, region: &str) -> Option<&'a LockRule> {
    plan.lock.as_ref().filter(|l| {
        l.regions
            .as_ref()
            .is_none_or(|rs| rs.iter().any(|r| r == region))
    })
}

/// The lock of the copies a copy rule makes, if any.
pub fn copy_rule(rule: &CopyRule) -> Option<&LockRule> {
    rule.lock.as_ref()
}

/// Whether any snapshot of the plan gets locked (source or copy region).
pub fn plan_locks(plan: &Plan) -> bool {
    plan.lock.is_some() || plan.copies.iter().any(|c| c.lock.is_some())
}

/// Days a new point is locked: the time its retention certainly keeps it.
pub fn lock_days(r: &Retention) -> u32 {
    let horizon = r
        .days
        .or(r.daily)
        .or(match (r.weekly, r.monthly) {
            (Some(w), Some(m)) => Some((w * 7).min(m * 31)),
            (Some(w), None) => Some(w * 7),
            (None, Some(m)) => Some(m * 31),
            (None, None) => None,
        })
        .or(r.count)
        .unwrap_or(1);
    horizon.clamp(1, MAX_DAYS as u32)
}

/// The end of the keep rule that keeps a point longer than [`lock_days`]: a
/// `weekly` or `monthly` keep (from the prune decision's rule text, e.g.
/// `weekly keep 2026-W40`), counted from the point's creation. None when no
/// such rule keeps it.
pub fn extension(rule_text: &str, r: &Retention, created: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut until: Option<DateTime<Utc>> = None;
    if let Some(m) = r.monthly.filter(|_| rule_text.contains("monthly keep")) {
        until = until.max(Some(created + Duration::days(i64::from(m) * 31)));
    }
    if let Some(w) = r.weekly.filter(|_| rule_text.contains("weekly keep")) {
        until = until.max(Some(created + Duration::days(i64::from(w) * 7)));
    }
    let base = created + Duration::days(i64::from(lock_days(r)));
    until.filter(|u| *u > base)
}

/// For a point prune keeps: the lock mode and the date to extend its lock to,
/// when the plan locks the point's region and a `weekly`/`monthly` rule keeps
/// it beyond [`lock_days`].
pub fn extension_for(
    plan: &Plan,
    region: &str,
    is_copy: bool,
    rule_text: &str,
    created: DateTime<Utc>,
) -> Option<(LockMode, DateTime<Utc>)> {
    let (lock, retention) = if is_copy {
        let c = plan.copies.iter().find(|c| c.region == region)?;
        (copy_rule(c)?, &c.retention)
    } else {
        (source_rule(plan, region)?, &plan.retention)
    };
    extension(rule_text, retention, created)
        .filter(|until| *until > Utc::now())
        .map(|until| (lock.mode, until))
}

fn sdk_mode(m: LockMode) -> SdkLockMode {
    match m {
        LockMode::Governance => SdkLockMode::Governance,
        LockMode::Compliance => SdkLockMode::Compliance,
    }
}

/// Locks each snapshot for `days` (AWS starts counting when a pending snapshot
/// completes). Returns the errors, one line per snapshot that failed.
pub async fn lock(
    ec2: &aws_sdk_ec2::Client,
    snapshots: &[String],
    rule: &LockRule,
    days: u32,
) -> Vec<String> {
    let mut errors = Vec::new();
    for sid in snapshots.iter().filter(|s| s.starts_with("snap-")) {
        let mut req = ec2
            .lock_snapshot()
            .snapshot_id(sid)
            .lock_mode(sdk_mode(rule.mode))
            .lock_duration(days as i32);
        if let Some(h) = rule.cool_off_hours {
            req = req.cool_off_period(h as i32);
        }
        if let Err(e) = req.send().await {
            let e = e.into_service_error();
            errors.push(format!(
                "LockSnapshot {sid}: {}: {}",
                e.code().unwrap_or("NetworkError"),
                e.message().unwrap_or_default()
            ));
        }
    }
    errors
}

/// Locks the EBS snapshots of a point that just completed, when `rule` says
/// so; returns what the item records (`detail.lock`), None without a rule.
pub async fn after_create(
    ec2: &aws_sdk_ec2::Client,
    rule: Option<&LockRule>,
    retention: &Retention,
    snapshots: &[String],
) -> Option<serde_json::Value> {
    let rule = rule?;
    let snaps: Vec<String> = snapshots
        .iter()
        .filter(|s| s.starts_with("snap-"))
        .cloned()
        .collect();
    if snaps.is_empty() {
        return None;
    }
    let days = lock_days(retention);
    let errors = lock(ec2, &snaps, rule, days).await;
    Some(serde_json::json!({
        "mode": rule.mode.as_str(),
        "days": days,
        "snapshots": snaps,
        "errors": errors,
    }))
}

/// Extends the locks of `snapshots` to `until` (same mode).
pub async fn extend(
    ec2: &aws_sdk_ec2::Client,
    snapshots: &[String],
    mode: LockMode,
    until: DateTime<Utc>,
) -> Vec<String> {
    let mut errors = Vec::new();
    for sid in snapshots.iter().filter(|s| s.starts_with("snap-")) {
        let r = ec2
            .lock_snapshot()
            .snapshot_id(sid)
            .lock_mode(sdk_mode(mode))
            .expiration_date(aws_smithy_types::DateTime::from_secs(until.timestamp()))
            .send()
            .await;
        if let Err(e) = r {
            let e = e.into_service_error();
            errors.push(format!(
                "LockSnapshot {sid} until {until}: {}: {}",
                e.code().unwrap_or("NetworkError"),
                e.message().unwrap_or_default()
            ));
        }
    }
    errors
}

/// A snapshot's lock as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lock {
    /// `governance`, `compliance`, `compliance-cooloff` or `expired`.
    pub state: String,
    pub expires: Option<DateTime<Utc>>,
}

impl Lock {
    /// Still protects the snapshot from deletion.
    pub fn holds(&self) -> bool {
        self.state != "expired"
    }

    /// `compliance until 2026-12-01T00:00:00Z`.
    pub fn describe(&self) -> String {
        match self.expires {
            Some(t) => format!("{} until {}", self.state, t.to_rfc3339()),
            None => self.state.clone(),
        }
    }
}

/// The locks of `snapshots` (DescribeLockedSnapshots by id, 100 at a time).
/// Snapshots with no lock are absent from the answer.
pub async fn locks(
    ec2: &aws_sdk_ec2::Client,
    snapshots: &[String],
) -> Result<BTreeMap<String, Lock>, String> {
    let ids: Vec<&String> = snapshots
        .iter()
        .filter(|s| s.starts_with("snap-"))
        .collect();
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(100) {
        let r = ec2
            .describe_locked_snapshots()
            .set_snapshot_ids(Some(chunk.iter().map(|s| s.to_string()).collect()))
            .send()
            .await
            .map_err(|e| {
                let e = e.into_service_error();
                format!(
                    "DescribeLockedSnapshots: {}: {}",
                    e.code().unwrap_or("NetworkError"),
                    e.message().unwrap_or_default()
                )
            })?;
        for s in r.snapshots() {
            let Some(id) = s.snapshot_id() else { continue };
            out.insert(
                id.to_string(),
                Lock {
                    state: s
                        .lock_state()
                        .map(|x| x.as_str().to_string())
                        .unwrap_or_default(),
                    expires: s
                        .lock_expires_on()
                        .and_then(|t| DateTime::from_timestamp(t.secs(), 0)),
                },
            );
        }
    }
    Ok(out)
}

/// Whether an AWS error code says the snapshot is locked (prune treats it as
/// held, whatever code AWS uses: the EC2 error reference does not list one).
pub fn is_locked_error(code: &str) -> bool {
    code.contains("Locked") || code.contains("SnapshotLock")
}

/// The `validate` note for plans that lock: RDS has no snapshot lock.
pub fn rds_note(plan: &Plan) -> Option<String> {
    plan_locks(plan).then(|| {
        "the plan locks EBS snapshots; RDS and Aurora snapshots cannot be locked \
         (AWS has no snapshot lock for them) and stay deletable by the tenant role"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(days: Option<u32>, weekly: Option<u32>, monthly: Option<u32>) -> Retention {
        Retention {
            days,
            weekly,
            monthly,
            ..Retention::default()
        }
    }

    #[test]
    fn lock_days_follow_the_shortest_certain_horizon() {
        assert_eq!(lock_days(&r(Some(7), Some(4), None)), 7);
        assert_eq!(lock_days(&r(None, Some(4), Some(12))), 28);
        assert_eq!(lock_days(&r(None, None, Some(2))), 62);
        assert_eq!(
            lock_days(&Retention {
                count: Some(3),
                ..Retention::default()
            }),
            3
        );
        assert_eq!(lock_days(&Retention::default()), 1);
    }

    #[test]
    fn weekly_and_monthly_keeps_extend_the_lock() {
        let created = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let rule = r(Some(7), Some(4), Some(12));
        assert_eq!(
            extension("monthly keep 2023-11; weekly keep 2023-W46", &rule, created),
            Some(created + Duration::days(372))
        );
        assert_eq!(
            extension("weekly keep 2023-W46", &rule, created),
            Some(created + Duration::days(28))
        );
        assert_eq!(extension("age 1d < 7d", &rule, created), None);
        // A weekly horizon shorter than the base lock extends nothing.
        assert_eq!(
            extension("weekly keep 2023-W46", &r(Some(30), Some(2), None), created),
            None
        );
    }

    #[test]
    fn locked_errors() {
        assert!(is_locked_error("SnapshotLocked"));
        assert!(!is_locked_error("InvalidSnapshot.InUse"));
    }
}
