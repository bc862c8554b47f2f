//! Snap Copy: copy a plan's recovery points to its copy regions.
//!
//! The work is found, not remembered: for every completed source point the
//! destination region is asked (by `_GX_COPY_OF_`) which of its parts already
//! have a copy, and only the missing ones are copied. So a copy that failed
//! last night is made by the next run, and running twice copies nothing twice.
//!
//! AWS allows 20 concurrent snapshot copies per destination region (EBS and
//! RDS alike): each destination keeps at most [`COPIES_IN_FLIGHT`] copies
//! pending and queues the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::backup::{
    ec2_tags, no_sdk_retries_ec2, no_sdk_retries_rds, rds_tags, tag_backing_snapshots, tag_filter,
    Job,
};
use crate::catalog::{list_region, Kinds, PointKind, PointState, RecoveryPoint};
use crate::config::CopyRule;
use crate::credentials::TenantSession;
use crate::error::{AwsError, Site};
use crate::ledger::Item;
use crate::pace::Bucket;
use crate::retry::create_with_retry;
use crate::tags;

/// AWS's limit of concurrent snapshot copies into one destination region.
pub const COPIES_IN_FLIGHT: usize = 20;

/// One source point to copy into one destination, and the parts still missing there.
#[derive(Debug, Clone)]
pub struct Task {
    pub point: RecoveryPoint,
    pub dest: String,
    pub rule: CopyRule,
    /// Source snapshot ids (sets) or the point id, not yet copied.
    pub missing: Vec<String>,
}

/// Copy tags: the source's own tags (the contract and the recorded
/// configuration) plus `_GX_COPY_OF_`. `aws:` tags cannot be set.
fn copy_tags(src: &BTreeMap<String, String>, copy_of: &str) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = src
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:") && k.as_str() != tags::COPY_OF)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    t.push((tags::COPY_OF.into(), copy_of.into()));
    t
}

/// Which parts of `points` (in their source region) lack a copy among `existing`
/// (the `_GX_COPY_OF_` values present in `dest`). Pure.
pub fn missing_copies(
    points: &[RecoveryPoint],
    existing: &BTreeSet<String>,
    dest: &str,
    rule: &CopyRule,
) -> Vec<Task> {
    points
        .iter()
        .filter(|p| p.completed() && p.copy_of().is_none() && p.region != dest)
        .filter_map(|p| {
            let missing: Vec<String> = match p.kind {
                PointKind::SnapshotSet => p
                    .snapshots
                    .iter()
                    .filter(|s| !existing.contains(&format!("{}/{}", p.region, s.id)))
                    .map(|s| s.id.clone())
                    .collect(),
                _ => {
                    let id = p.id();
                    if existing.contains(&format!("{}/{id}", p.region)) {
                        vec![]
                    } else {
                        vec![id]
                    }
                }
            };
            (!missing.is_empty()).then(|| Task {
                point: p.clone(),
                dest: dest.to_string(),
                rule: rule.clone(),
                missing,
            })
        })
        .collect()
}

/// Every `_GX_COPY_OF_` value among the points of a destination region.
pub fn copy_keys_present(points: &[RecoveryPoint]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for p in points {
        if let Some(c) = p.copy_of() {
            keys.insert(c.to_string());
        }
        for s in &p.snapshots {
            if let Some(c) = s.tags.get(tags::COPY_OF) {
                keys.insert(c.clone());
            }
        }
    }
    keys
}

/// Encrypted resources whose copies would have no key in a copy region: a
/// configuration error `validate` reports before any copy is tried. Pure.
pub fn encryption_gaps(
    copies: &[CopyRule],
    selected: &[crate::discovery::Selected],
) -> Vec<String> {
    use crate::discovery::Resource;
    let mut gaps = Vec::new();
    for s in selected {
        let encrypted = match &s.resource {
            Resource::Instance(i) => i.volumes.iter().any(|v| v.encrypted),
            Resource::DbInstance(d) => d.encrypted,
            Resource::DbCluster(c) => c.encrypted,
        };
        if !encrypted {
            continue;
        }
        for c in copies.iter().filter(|c| c.kms_key_id.is_none()) {
            gaps.push(format!(
                "{} {} is encrypted and the copy rule for {} has no kms-key-id (a KMS key in {})",
                s.resource.kind(),
                s.resource.id(),
                c.region,
                c.region
            ));
        }
    }
    gaps
}

/// A copy started and not yet complete.
struct InFlight {
    task: Task,
    /// destination ids made, by source part id
    made: Vec<(String, String)>,
}

/// Copies the plan's points of one tenant: for each source region and each
/// copy rule, the missing copies. Returns one item per (source point, destination).
pub async fn copy_tenant(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    source_regions: &[String],
) -> Vec<Item> {
    let plan = job.plan;
    let tenant = &session.tenant.name;
    let kinds = Kinds {
        ec2: true,
        rds: true,
    };
    let mut items = Vec::new();
    let mut by_dest: BTreeMap<String, Vec<Task>> = BTreeMap::new();
    let mut dest_points: BTreeMap<String, Result<BTreeSet<String>, AwsError>> = BTreeMap::new();
    for rule in &plan.copies {
        let listed = list_region(
            session,
            account,
            &rule.region,
            Some(&plan.name),
            kinds,
            &job.pacer,
        )
        .await;
        dest_points.insert(rule.region.clone(), listed.map(|p| copy_keys_present(&p)));
    }
    for src in source_regions {
        let points =
            match list_region(session, account, src, Some(&plan.name), kinds, &job.pacer).await {
                Ok(p) => p,
                Err(e) => {
                    job.log(&format!(
                        "Cannot list recovery points in [{tenant}/{src}]: {e}"
                    ));
                    items.push(Item::failed(
                        &session.tenant.name,
                        account,
                        src,
                        "region",
                        src,
                        e.to_string(),
                    ));
                    continue;
                }
            };
        for rule in plan.copies.iter().filter(|r| &r.region != src) {
            match &dest_points[&rule.region] {
                Ok(existing) => {
                    let tasks = missing_copies(&points, existing, &rule.region, rule);
                    job.log(&format!(
                        "Tenant [{tenant}] {src} -> {}: {} recovery point(s) need a copy",
                        rule.region,
                        tasks.len()
                    ));
                    by_dest
                        .entry(rule.region.clone())
                        .or_default()
                        .extend(tasks);
                }
                Err(e) => {
                    job.log(&format!(
                        "Cannot list copies in [{tenant}/{}]: {e}",
                        rule.region
                    ));
                    items.push(Item::failed(
                        &session.tenant.name,
                        account,
                        &rule.region,
                        "region",
                        &rule.region,
                        e.to_string(),
                    ));
                }
            }
        }
    }
    let ran = futures::future::join_all(
        by_dest
            .into_iter()
            .map(|(dest, tasks)| copy_into(job, session, account, dest, tasks)),
    )
    .await;
    items.extend(ran.into_iter().flatten());
    items
}

fn task_item(
    session: &TenantSession,
    account: &str,
    t: &Task,
    status: &str,
    created: Vec<String>,
    error: Option<String>,
) -> Item {
    Item {
        tenant: session.tenant.name.clone(),
        account: account.to_string(),
        region: t.dest.clone(),
        kind: t.point.kind.as_str().to_string(),
        source_id: format!("{}/{}", t.point.region, t.point.id()),
        status: status.to_string(),
        created,
        size_gib: t.point.size_gib,
        error,
        detail: json!({"source": t.point.source, "job": t.point.job, "from": t.point.region}),
    }
}

/// Runs the copies into one destination region with at most
/// [`COPIES_IN_FLIGHT`] pending at a time.
async fn copy_into(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    dest: String,
    tasks: Vec<Task>,
) -> Vec<Item> {
    let tenant = &session.tenant.name;
    let deadline = Instant::now() + job.options.wait_timeout;
    let mut queue: std::collections::VecDeque<Task> = tasks.into();
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut items = Vec::new();
    let mut delay = job.options.poll_initial;
    while !queue.is_empty() || !in_flight.is_empty() {
        let mut started_any = false;
        while in_flight.len() < COPIES_IN_FLIGHT {
            let Some(task) = queue.pop_front() else { break };
            started_any = true;
            match start_copy(job, session, account, &task, deadline).await {
                Ok(made) => in_flight.push(InFlight { task, made }),
                Err(e) => {
                    let item = task_item(
                        session,
                        account,
                        &task,
                        "Failed",
                        vec![],
                        Some(e.to_string()),
                    );
                    job.log(&format!(
                        "Copy of [{}] to [{dest}] failed; the source is intact: {e}",
                        item.source_id
                    ));
                    job.record(&item);
                    items.push(item);
                }
            }
        }
        if in_flight.is_empty() {
            continue;
        }
        if !started_any {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(job.options.poll_max);
        }
        let states = match dest_states(job, session, account, &dest).await {
            Ok(s) => s,
            Err(e) => {
                job.log(&format!(
                    "Poll of copies in [{tenant}/{dest}] failed (will retry): {e}"
                ));
                BTreeMap::new()
            }
        };
        let mut still = Vec::new();
        for f in in_flight {
            let made_ids: Vec<String> = f.made.iter().map(|(_, d)| d.clone()).collect();
            let st: Vec<PointState> = made_ids
                .iter()
                .map(|id| states.get(id).copied().unwrap_or(PointState::Pending))
                .collect();
            if st.contains(&PointState::Failed) {
                let item = task_item(
                    session,
                    account,
                    &f.task,
                    "Failed",
                    made_ids,
                    Some(format!(
                        "tenant {tenant} region {dest}: copy of {} failed in AWS",
                        f.task.point.id()
                    )),
                );
                job.log(item.error.as_deref().unwrap_or_default());
                job.record(&item);
                items.push(item);
            } else if st.iter().all(|s| *s == PointState::Completed) {
                let mut created = made_ids.clone();
                if f.task.point.kind == PointKind::Ami {
                    let image = &made_ids[0];
                    let mut t = copy_tags(
                        &f.task.point.tags,
                        &format!("{}/{}", f.task.point.region, f.task.point.id()),
                    );
                    t.push((tags::AMI.into(), image.clone()));
                    match tag_backing_snapshots(job, session, account, &dest, image, t, deadline)
                        .await
                    {
                        Ok(snaps) => created.extend(snaps),
                        Err(e) => {
                            let item = task_item(session, account, &f.task, "Failed", created, Some(format!(
                                "copied image {image} is available but its snapshots could not be tagged: {e}"
                            )));
                            job.log(item.error.as_deref().unwrap_or_default());
                            job.record(&item);
                            items.push(item);
                            continue;
                        }
                    }
                }
                let item = task_item(session, account, &f.task, "Completed", created, None);
                job.log(&format!(
                    "Copy of [{}] to [{tenant}/{dest}] completed: [{}]",
                    item.source_id,
                    item.created.join(", ")
                ));
                job.record(&item);
                items.push(item);
            } else {
                still.push(f);
            }
        }
        in_flight = still;
        if !in_flight.is_empty() && Instant::now() + delay > deadline {
            for f in in_flight.drain(..) {
                let made_ids: Vec<String> = f.made.iter().map(|(_, d)| d.clone()).collect();
                let item = task_item(session, account, &f.task, "Pending", made_ids, Some(format!(
                    "tenant {tenant} region {dest}: copy of {} still pending after the {} s wait timeout",
                    f.task.point.id(),
                    job.options.wait_timeout.as_secs()
                )));
                job.log(item.error.as_deref().unwrap_or_default());
                job.record(&item);
                items.push(item);
            }
            for t in queue.drain(..) {
                let item = task_item(session, account, &t, "Failed", vec![], Some(format!(
                    "tenant {tenant} region {dest}: copy of {} not started before the wait timeout; the next run makes it",
                    t.point.id()
                )));
                job.record(&item);
                items.push(item);
            }
        }
    }
    items
}

/// States of every copy in `dest` (by destination id).
async fn dest_states(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    dest: &str,
) -> Result<BTreeMap<String, PointState>, AwsError> {
    let points = list_region(
        session,
        account,
        dest,
        Some(&job.plan.name),
        Kinds {
            ec2: true,
            rds: true,
        },
        &job.pacer,
    )
    .await?;
    let mut states = BTreeMap::new();
    for p in points {
        match p.kind {
            PointKind::SnapshotSet => {
                for s in &p.snapshots {
                    let st = match s.state.as_str() {
                        "completed" => PointState::Completed,
                        "error" => PointState::Failed,
                        _ => PointState::Pending,
                    };
                    states.insert(s.id.clone(), st);
                }
            }
            _ => {
                states.insert(p.id(), p.state);
            }
        }
    }
    Ok(states)
}

/// Starts the copies of one task's missing parts. Returns (source part, copy id) pairs.
async fn start_copy(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    task: &Task,
    deadline: Instant,
) -> Result<Vec<(String, String)>, AwsError> {
    let dest = task.dest.as_str();
    let src = task.point.region.as_str();
    let site = Site {
        tenant: &session.tenant.name,
        region: dest,
    };
    let p = &task.point;
    // Same error type as every other step of a copy; it is built once per copy.
    #[allow(clippy::result_large_err)]
    let key_for = |encrypted: bool| -> Result<Option<String>, AwsError> {
        if !encrypted {
            return Ok(None);
        }
        task.rule
            .kms_key_id
            .clone()
            .map(Some)
            .ok_or_else(|| AwsError {
                tenant: session.tenant.name.clone(),
                region: dest.to_string(),
                action: "Copy".into(),
                resource: Some(p.id()),
                code: "MissingKmsKey".into(),
                message: format!(
                    "{} is encrypted and the copy rule for {dest} names no kms-key-id",
                    p.id()
                ),
            })
    };
    let log_retry = |e: &AwsError, wait: Duration| {
        job.log(&format!(
            "Retrying {} into [{dest}] after {} (in {} ms)",
            e.action,
            e.code,
            wait.as_millis()
        ));
    };
    let mut made = Vec::new();
    match p.kind {
        PointKind::SnapshotSet => {
            let ec2 = session.ec2(dest);
            for sid in &task.missing {
                let snap = p
                    .snapshots
                    .iter()
                    .find(|s| &s.id == sid)
                    .expect("missing part of this point");
                let copy_of = format!("{src}/{sid}");
                let t = copy_tags(&snap.tags, &copy_of);
                let kms = key_for(snap.encrypted)?;
                job.log(&format!(
                    "CopySnapshot [{copy_of}] -> [{}/{dest}]",
                    session.tenant.name
                ));
                let spec = aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Snapshot)
                    .set_tags(Some(ec2_tags(&t)))
                    .build();
                let (r, _) = create_with_retry(
                    deadline,
                    || {
                        let (ec2, spec, kms) = (&ec2, spec.clone(), kms.clone());
                        async move {
                            job.pacer.take(account, dest, Bucket::CopySnapshot).await;
                            let mut req = ec2
                                .copy_snapshot()
                                .source_region(src)
                                .source_snapshot_id(sid)
                                .description(format!(
                                    "rolesnap copy of {src}/{sid} (job {})",
                                    p.job.unwrap_or(0)
                                ))
                                .tag_specifications(spec);
                            if let Some(k) = kms {
                                req = req.encrypted(true).kms_key_id(k);
                            }
                            let out = req
                                .customize()
                                .config_override(no_sdk_retries_ec2())
                                .send()
                                .await
                                .map_err(|e| {
                                    site.err("CopySnapshot", Some(sid), e.into_service_error())
                                })?;
                            Ok(out.snapshot_id().unwrap_or_default().to_string())
                        }
                    },
                    || async {
                        job.pacer.take(account, dest, Bucket::Describe).await;
                        let out = ec2
                            .describe_snapshots()
                            .owner_ids("self")
                            .filters(tag_filter(tags::COPY_OF, &copy_of))
                            .send()
                            .await
                            .map_err(|e| {
                                site.err("DescribeSnapshots", Some(sid), e.into_service_error())
                            })?;
                        Ok(out
                            .snapshots()
                            .first()
                            .and_then(|s| s.snapshot_id())
                            .map(str::to_string))
                    },
                    log_retry,
                )
                .await;
                made.push((sid.clone(), r?));
            }
        }
        PointKind::Ami => {
            let ec2 = session.ec2(dest);
            let image = p.id();
            let copy_of = format!("{src}/{image}");
            let t = copy_tags(&p.tags, &copy_of);
            let kms = key_for(p.encrypted)?;
            // Idempotent on AWS's side for the same token.
            let token: String = format!("rolesnap-{image}-{dest}")
                .chars()
                .take(64)
                .collect();
            let spec = aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Image)
                .set_tags(Some(ec2_tags(&t)))
                .build();
            job.log(&format!(
                "CopyImage [{copy_of}] -> [{}/{dest}]",
                session.tenant.name
            ));
            let (r, _) = create_with_retry(
                deadline,
                || {
                    let (ec2, spec, kms, token) = (&ec2, spec.clone(), kms.clone(), token.clone());
                    let name = p
                        .name()
                        .map(str::to_string)
                        .unwrap_or_else(|| image.clone());
                    let image = image.clone();
                    async move {
                        job.pacer.take(account, dest, Bucket::CopyImage).await;
                        let mut req = ec2
                            .copy_image()
                            .source_region(src)
                            .source_image_id(&image)
                            .name(name)
                            .client_token(token)
                            .tag_specifications(spec);
                        if let Some(k) = kms {
                            req = req.encrypted(true).kms_key_id(k);
                        }
                        let out = req
                            .customize()
                            .config_override(no_sdk_retries_ec2())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err("CopyImage", Some(&image), e.into_service_error())
                            })?;
                        Ok(out.image_id().unwrap_or_default().to_string())
                    }
                },
                || async { Ok(None) },
                log_retry,
            )
            .await;
            let new = r?;
            // Make sure the copy carries the contract even where CopyImage ignores
            // TagSpecifications.
            job.pacer.take(account, dest, Bucket::CreateTags).await;
            ec2.create_tags()
                .resources(&new)
                .set_tags(Some(ec2_tags(&t)))
                .send()
                .await
                .map_err(|e| site.err("CreateTags", Some(&new), e.into_service_error()))?;
            made.push((image, new));
        }
        PointKind::DbSnapshot | PointKind::ClusterSnapshot => {
            let rds = session.rds(dest);
            let id = p.id();
            let arn = p.arn.clone().unwrap_or_default();
            let copy_of = format!("{src}/{id}");
            let t = copy_tags(&p.tags, &copy_of);
            let kms = key_for(p.encrypted)?;
            let cluster = p.kind == PointKind::ClusterSnapshot;
            let action = if cluster {
                "CopyDBClusterSnapshot"
            } else {
                "CopyDBSnapshot"
            };
            job.log(&format!(
                "{action} [{arn}] -> [{}/{dest}] as [{id}]",
                session.tenant.name
            ));
            let (r, _) = create_with_retry(
                deadline,
                || {
                    let (rds, t, kms, arn, id) =
                        (&rds, t.clone(), kms.clone(), arn.clone(), id.clone());
                    async move {
                        job.pacer.take(account, dest, Bucket::Rds).await;
                        let res = if cluster {
                            let mut req = rds
                                .copy_db_cluster_snapshot()
                                .source_db_cluster_snapshot_identifier(&arn)
                                .target_db_cluster_snapshot_identifier(&id)
                                .set_tags(Some(rds_tags(&t)));
                            if let Some(k) = kms {
                                req = req.kms_key_id(k);
                            }
                            req.customize()
                                .config_override(no_sdk_retries_rds())
                                .send()
                                .await
                                .map(|_| ())
                                .map_err(|e| site.err(action, Some(&arn), e.into_service_error()))
                        } else {
                            let mut req = rds
                                .copy_db_snapshot()
                                .source_db_snapshot_identifier(&arn)
                                .target_db_snapshot_identifier(&id)
                                .set_tags(Some(rds_tags(&t)));
                            if let Some(k) = kms {
                                req = req.kms_key_id(k);
                            }
                            req.customize()
                                .config_override(no_sdk_retries_rds())
                                .send()
                                .await
                                .map(|_| ())
                                .map_err(|e| site.err(action, Some(&arn), e.into_service_error()))
                        };
                        match res {
                            Ok(()) => Ok(id),
                            // The identifier is deterministic: it already being
                            // there after an ambiguous failure is our copy.
                            Err(e)
                                if e.code.starts_with("DBSnapshotAlreadyExists")
                                    || e.code.starts_with("DBClusterSnapshotAlreadyExists") =>
                            {
                                Ok(id)
                            }
                            Err(e) => Err(e),
                        }
                    }
                },
                || async { Ok(None) },
                log_retry,
            )
            .await;
            made.push((id.clone(), r?));
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Snap;
    use crate::config::Retention;

    fn snap(id: &str) -> Snap {
        Snap {
            id: id.into(),
            volume_id: format!("vol-{id}"),
            size_gib: 8,
            state: "completed".into(),
            encrypted: false,
            kms_key_id: None,
            tags: BTreeMap::new(),
        }
    }

    fn point(
        kind: PointKind,
        id: &str,
        snaps: &[&str],
        state: PointState,
        copy_of: Option<&str>,
    ) -> RecoveryPoint {
        let mut tags = BTreeMap::new();
        if let Some(c) = copy_of {
            tags.insert(tags::COPY_OF.to_string(), c.to_string());
        }
        RecoveryPoint {
            kind,
            tenant: "alpha".into(),
            account: "222222222222".into(),
            region: "us-east-1".into(),
            job: Some(1000),
            plan: Some("p".into()),
            source: "i-1".into(),
            created: chrono::Utc::now(),
            state,
            resource_id: (kind != PointKind::SnapshotSet).then(|| id.to_string()),
            arn: None,
            snapshots: snaps.iter().map(|s| snap(s)).collect(),
            size_gib: 8,
            encrypted: false,
            kms_key_id: None,
            tags,
        }
    }

    fn rule() -> CopyRule {
        CopyRule {
            region: "us-west-2".into(),
            retention: Retention::default(),
            kms_key_id: None,
        }
    }

    #[test]
    fn only_missing_parts_of_completed_originals_are_copied() {
        let points = vec![
            point(
                PointKind::SnapshotSet,
                "",
                &["snap-a", "snap-b"],
                PointState::Completed,
                None,
            ),
            point(
                PointKind::SnapshotSet,
                "",
                &["snap-p"],
                PointState::Pending,
                None,
            ),
            point(PointKind::Ami, "ami-1", &[], PointState::Completed, None),
            point(
                PointKind::DbSnapshot,
                "sp-1",
                &[],
                PointState::Completed,
                None,
            ),
            point(
                PointKind::SnapshotSet,
                "",
                &["snap-c"],
                PointState::Completed,
                Some("eu-west-1/snap-z"),
            ),
        ];
        let existing: BTreeSet<String> = ["us-east-1/snap-a", "us-east-1/ami-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let tasks = missing_copies(&points, &existing, "us-west-2", &rule());
        let got: Vec<Vec<String>> = tasks.iter().map(|t| t.missing.clone()).collect();
        assert_eq!(
            got,
            vec![vec!["snap-b".to_string()], vec!["sp-1".to_string()]]
        );
        // Nothing is copied into its own region.
        assert!(missing_copies(&points, &BTreeSet::new(), "us-east-1", &rule()).is_empty());
    }

    #[test]
    fn copies_keep_the_contract_and_say_what_they_copy() {
        let mut src = BTreeMap::new();
        src.insert(tags::BACKUP.to_string(), "1000".to_string());
        src.insert(tags::PLAN.to_string(), "p".to_string());
        src.insert("aws:backup:source".to_string(), "x".to_string());
        let t: BTreeMap<String, String> = copy_tags(&src, "us-east-1/snap-a").into_iter().collect();
        assert_eq!(t[tags::BACKUP], "1000");
        assert_eq!(t[tags::COPY_OF], "us-east-1/snap-a");
        assert!(!t.contains_key("aws:backup:source"));
    }
}
