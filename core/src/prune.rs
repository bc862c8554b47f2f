//! Data Aging: delete the recovery points whose retention has run out.
//!
//! What to delete is decided by [`crate::retention::decide`] (pure); this
//! module lists the points, finds which sources still exist, and deletes.
//! Only resources that carry `_GX_BACKUP_` and this plan's `_GX_PLAN_` are
//! ever deleted, checked again on each resource right before its delete call.
//! Deletes are idempotent: NotFound counts as done. An AMI is deregistered
//! first, then its snapshots are deleted, so no snapshot is orphaned.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::backup::Job;
use crate::catalog::{list_region, Kinds, PointKind, RecoveryPoint};
use crate::config::Retention;
use crate::credentials::TenantSession;
use crate::discovery::{discover_region, Wanted};
use crate::error::{AwsError, Site};
use crate::ledger::Item;
use crate::pace::Bucket;
use crate::retention::{decide, Point, Verdict};
use crate::tags;

/// Is this resource's own tag set one prune may delete?
pub fn deletable(t: &BTreeMap<String, String>, plan: &str) -> bool {
    t.contains_key(tags::BACKUP)
        && t.get(tags::PLAN).map(String::as_str) == Some(plan)
        && !t.contains_key(tags::RETAIN)
}

fn to_point(p: &RecoveryPoint, sources: &BTreeSet<String>) -> Point {
    let mut t = p.tags.clone();
    // A hold on any member holds the whole set; a member without the
    // contract tags makes the set not ours to delete.
    for s in &p.snapshots {
        if s.tags.contains_key(tags::RETAIN) {
            t.insert(tags::RETAIN.into(), s.tags[tags::RETAIN].clone());
        }
    }
    if p.kind == PointKind::SnapshotSet
        && p.snapshots.iter().any(|s| {
            !s.tags.contains_key(tags::BACKUP) || s.tags.get(tags::PLAN) != p.tags.get(tags::PLAN)
        })
    {
        t.remove(tags::BACKUP);
    }
    Point {
        id: p.id(),
        source: p.source.clone(),
        region: p.region.clone(),
        created: p.created,
        tags: t,
        completed: p.completed(),
        source_exists: sources.contains(&p.source),
    }
}

/// The retention that governs a point: a copy follows its destination's copy
/// rule, an original the plan's own.
fn rule_for<'a>(
    p: &RecoveryPoint,
    plan_rule: &'a Retention,
    copies: &'a [crate::config::CopyRule],
) -> &'a Retention {
    if p.copy_of().is_some() {
        if let Some(c) = copies.iter().find(|c| c.region == p.region) {
            return &c.retention;
        }
    }
    plan_rule
}

/// Prunes one tenant's points in its source regions and copy regions.
pub async fn prune_tenant(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    source_regions: &[String],
    now: DateTime<Utc>,
    dry_run: bool,
) -> Vec<Item> {
    let plan = job.plan;
    let tenant = &session.tenant.name;
    let tz = plan
        .schedule
        .as_ref()
        .map_or(chrono_tz::UTC, |s| s.timezone);
    let mut items = Vec::new();
    // Which sources still exist: a point of a live source keeps its newest.
    let mut sources = BTreeSet::new();
    let mut sources_known = true;
    for r in source_regions {
        match discover_region(
            session,
            account,
            r,
            Wanted {
                ec2: true,
                rds: true,
                aurora: true,
            },
            job.logs,
        )
        .await
        {
            Ok(inv) => {
                sources.extend(
                    inv.instances
                        .iter()
                        .filter(|i| !matches!(i.state.as_str(), "terminated" | "shutting-down"))
                        .map(|i| i.id.clone()),
                );
                sources.extend(inv.db_instances.iter().map(|d| d.id.clone()));
                sources.extend(inv.db_clusters.iter().map(|c| c.id.clone()));
            }
            Err(e) => {
                sources_known = false;
                job.log(&format!(
                    "Cannot tell which sources exist in [{tenant}/{r}]; pruning nothing there: {e}"
                ));
                items.push(Item::failed(
                    &session.tenant.name,
                    account,
                    r,
                    "region",
                    r,
                    e.to_string(),
                ));
            }
        }
    }
    if !sources_known {
        // Without knowing which sources are alive, the newest-point protection
        // cannot be applied: prune nothing rather than risk the last copy.
        return items;
    }
    let mut regions: Vec<String> = source_regions.to_vec();
    for c in &plan.copies {
        if !regions.contains(&c.region) {
            regions.push(c.region.clone());
        }
    }
    for region in &regions {
        let points = match list_region(
            session,
            account,
            region,
            Some(&plan.name),
            Kinds {
                ec2: true,
                rds: true,
            },
            &job.pacer,
        )
        .await
        {
            Ok(p) => p,
            Err(e) => {
                job.log(&format!(
                    "Cannot list recovery points in [{tenant}/{region}]: {e}"
                ));
                items.push(Item::failed(
                    &session.tenant.name,
                    account,
                    region,
                    "region",
                    region,
                    e.to_string(),
                ));
                continue;
            }
        };
        // Decide per governing rule.
        let mut by_rule: Vec<(&Retention, Vec<&RecoveryPoint>)> = Vec::new();
        for p in &points {
            let r = rule_for(p, &plan.retention, &plan.copies);
            match by_rule.iter_mut().find(|(x, _)| std::ptr::eq(*x, r)) {
                Some((_, v)) => v.push(p),
                None => by_rule.push((r, vec![p])),
            }
        }
        for (rule, group) in by_rule {
            let input: Vec<Point> = group.iter().map(|p| to_point(p, &sources)).collect();
            let decisions = decide(&input, &plan.name, rule, now, tz);
            for (p, d) in group.iter().zip(decisions) {
                debug_assert_eq!(p.id(), d.id);
                let item = match d.verdict {
                    Verdict::Keep => point_item(session, account, p, "Kept", vec![], None, &d.rule),
                    Verdict::Delete if dry_run => {
                        point_item(session, account, p, "WouldDelete", vec![], None, &d.rule)
                    }
                    Verdict::Delete => {
                        job.log(&format!(
                            "Deleting {} [{}] of [{}] in [{tenant}/{region}] created {}: {}",
                            p.kind.as_str(),
                            p.id(),
                            p.source,
                            p.created.to_rfc3339(),
                            d.rule
                        ));
                        match delete_point(job, session, account, p).await {
                            Ok(deleted) => {
                                point_item(session, account, p, "Deleted", deleted, None, &d.rule)
                            }
                            Err(e) => {
                                job.log(&format!("Delete of [{}] failed: {e}", p.id()));
                                point_item(
                                    session,
                                    account,
                                    p,
                                    "Failed",
                                    vec![],
                                    Some(e.to_string()),
                                    &d.rule,
                                )
                            }
                        }
                    }
                };
                if item.status != "Kept" {
                    job.record(&item);
                }
                items.push(item);
            }
        }
    }
    items
}

fn point_item(
    session: &TenantSession,
    account: &str,
    p: &RecoveryPoint,
    status: &str,
    deleted: Vec<String>,
    error: Option<String>,
    rule: &str,
) -> Item {
    Item {
        tenant: session.tenant.name.clone(),
        account: account.to_string(),
        region: p.region.clone(),
        kind: p.kind.as_str().to_string(),
        source_id: p.id(),
        status: status.to_string(),
        created: deleted,
        size_gib: p.size_gib,
        error,
        detail: json!({
            "source": p.source,
            "job": p.job,
            "created": p.created.to_rfc3339(),
            "copy_of": p.copy_of(),
            "rule": rule,
        }),
    }
}

fn gone(code: &str) -> bool {
    matches!(
        code,
        "InvalidSnapshot.NotFound"
            | "InvalidAMIID.NotFound"
            | "InvalidAMIID.Unavailable"
            | "DBSnapshotNotFound"
            | "DBSnapshotNotFoundFault"
            | "DBClusterSnapshotNotFoundFault"
    )
}

/// Deletes one point; returns the ids deleted (or found already gone).
async fn delete_point(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    p: &RecoveryPoint,
) -> Result<Vec<String>, AwsError> {
    let region = p.region.as_str();
    let site = Site {
        tenant: &session.tenant.name,
        region,
    };
    let plan = &job.plan.name;
    if !deletable(&p.tags, plan) {
        return Err(AwsError {
            tenant: session.tenant.name.clone(),
            region: region.into(),
            action: "Delete".into(),
            resource: Some(p.id()),
            code: "NotOurs".into(),
            message: format!(
                "refusing to delete: not tagged {} and {}={plan}, or held",
                tags::BACKUP,
                tags::PLAN
            ),
        });
    }
    let mut deleted = Vec::new();
    let ec2 = session.ec2(region);
    match p.kind {
        PointKind::SnapshotSet | PointKind::Ami => {
            if p.kind == PointKind::Ami {
                let image = p.id();
                job.pacer
                    .take(account, region, Bucket::DeregisterImage)
                    .await;
                match ec2.deregister_image().image_id(&image).send().await {
                    Ok(_) => {}
                    Err(e) => {
                        let e = site.err("DeregisterImage", Some(&image), e.into_service_error());
                        if !gone(&e.code) {
                            return Err(e);
                        }
                    }
                }
                job.log(&format!("Deregistered image [{image}]"));
                deleted.push(image);
            }
            let mut in_use = Vec::new();
            for s in &p.snapshots {
                // The AMI's own view of its snapshots has no tags; only delete
                // snapshots that themselves carry the contract.
                if !deletable(&s.tags, plan) {
                    job.log(&format!(
                        "Not deleting snapshot [{}]: it lacks the {} tags",
                        s.id,
                        tags::BACKUP
                    ));
                    continue;
                }
                job.pacer
                    .take(account, region, Bucket::DeleteSnapshot)
                    .await;
                match ec2.delete_snapshot().snapshot_id(&s.id).send().await {
                    Ok(_) => deleted.push(s.id.clone()),
                    Err(e) => {
                        let e = site.err("DeleteSnapshot", Some(&s.id), e.into_service_error());
                        if gone(&e.code) {
                            deleted.push(s.id.clone());
                        } else if e.code == "InvalidSnapshot.InUse" {
                            // Still backing a registered AMI: never deleted on its own.
                            in_use.push(s.id.clone());
                        } else {
                            return Err(e);
                        }
                    }
                }
            }
            job.log(&format!(
                "Deleted snapshots [{}]",
                deleted
                    .iter()
                    .filter(|d| d.starts_with("snap-"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if !in_use.is_empty() {
                return Err(AwsError {
                    tenant: session.tenant.name.clone(),
                    region: region.into(),
                    action: "DeleteSnapshot".into(),
                    resource: Some(in_use.join(",")),
                    code: "InvalidSnapshot.InUse".into(),
                    message: "still used by a registered AMI; kept".into(),
                });
            }
        }
        PointKind::DbSnapshot => {
            let rds = session.rds(region);
            let id = p.id();
            job.pacer.take(account, region, Bucket::Rds).await;
            if let Err(e) = rds
                .delete_db_snapshot()
                .db_snapshot_identifier(&id)
                .send()
                .await
            {
                let e = site.err("DeleteDBSnapshot", Some(&id), e.into_service_error());
                if !gone(&e.code) {
                    return Err(e);
                }
            }
            deleted.push(id);
        }
        PointKind::ClusterSnapshot => {
            let rds = session.rds(region);
            let id = p.id();
            job.pacer.take(account, region, Bucket::Rds).await;
            if let Err(e) = rds
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(&id)
                .send()
                .await
            {
                let e = site.err("DeleteDBClusterSnapshot", Some(&id), e.into_service_error());
                if !gone(&e.code) {
                    return Err(e);
                }
            }
            deleted.push(id);
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
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
}
