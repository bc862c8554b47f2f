//! The recovery-point catalog, read live from AWS by tag.
//!
//! rolesnap keeps no catalog of its own that could drift from AWS: a recovery
//! point is whatever carries its tags. EBS snapshots of one source made by one
//! job form a snapshot set; an AMI and the snapshots tagged `_GX_AMI_` with its
//! id form one point; each DB or cluster snapshot is a point. Copies in other
//! regions are points too, marked by `_GX_COPY_OF_`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::credentials::TenantSession;
use crate::error::{AwsError, Site};
use crate::pace::{Bucket, Pacer};
use crate::tags;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointKind {
    SnapshotSet,
    Ami,
    DbSnapshot,
    ClusterSnapshot,
}

impl PointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PointKind::SnapshotSet => "snapshot-set",
            PointKind::Ami => "ami",
            PointKind::DbSnapshot => "db-snapshot",
            PointKind::ClusterSnapshot => "cluster-snapshot",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointState {
    Completed,
    Pending,
    /// Its creation failed: an EBS snapshot in `error`, an AMI `failed`
    /// (or `error`, `invalid`), an RDS snapshot `failed`.
    Failed,
    /// Listed, but neither on its way nor failed: an AMI deregistered,
    /// disabled or in transition, an RDS snapshot in a status rolesnap does
    /// not know. A copy job gives up on it; the prune keeps it.
    Unusable,
}

impl PointState {
    pub(crate) fn ebs(state: &str) -> PointState {
        match state {
            "completed" => PointState::Completed,
            "error" => PointState::Failed,
            _ => PointState::Pending,
        }
    }
    pub(crate) fn image(state: &str) -> PointState {
        match state {
            "available" => PointState::Completed,
            "pending" | "" => PointState::Pending,
            "failed" | "error" | "invalid" => PointState::Failed,
            _ => PointState::Unusable,
        }
    }
    pub(crate) fn rds(status: Option<&str>) -> PointState {
        match status {
            Some("available") => PointState::Completed,
            Some("creating") | Some("copying") | Some("pending") | None => PointState::Pending,
            Some("failed") => PointState::Failed,
            Some(_) => PointState::Unusable,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snap {
    pub id: String,
    pub volume_id: String,
    pub size_gib: i64,
    pub state: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecoveryPoint {
    pub kind: PointKind,
    pub tenant: String,
    pub account: String,
    pub region: String,
    /// The job that made it (`_GX_BACKUP_`), when the tag is a number.
    pub job: Option<u64>,
    /// The agent (ledger) whose job made it (`_GX_AGENT_`); empty for points
    /// made before agent ids existed. Job numbers are unique only per agent.
    pub agent: String,
    pub plan: Option<String>,
    pub source: String,
    pub created: DateTime<Utc>,
    pub state: PointState,
    /// The AMI id, or the DB / cluster snapshot identifier; `None` for snapshot sets.
    pub resource_id: Option<String>,
    /// RDS snapshot ARN (the source of a cross-region copy).
    pub arn: Option<String>,
    /// Members of a set, or the snapshots backing an AMI.
    pub snapshots: Vec<Snap>,
    pub size_gib: i64,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// Tags of the point (of its first snapshot for a set).
    pub tags: BTreeMap<String, String>,
}

impl RecoveryPoint {
    pub fn completed(&self) -> bool {
        self.state == PointState::Completed
    }
    /// A stable id: the AMI or DB snapshot id, or the set's snapshot ids joined.
    pub fn id(&self) -> String {
        match &self.resource_id {
            Some(r) => r.clone(),
            None => self
                .snapshots
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join("+"),
        }
    }
    pub fn copy_of(&self) -> Option<&str> {
        self.tags.get(tags::COPY_OF).map(String::as_str)
    }
    /// `1000@0f3c9a1e2b4d6f80`: the job, named across agents.
    pub fn job_label(&self) -> String {
        match self.job {
            Some(j) => tags::job_label(j, &self.agent),
            None => "?".into(),
        }
    }
    /// When the job that made it started (`_GX_JOB_START_`).
    pub fn job_start(&self) -> Option<i64> {
        self.tags.get(tags::JOB_START).and_then(|v| v.parse().ok())
    }
    pub fn held(&self) -> bool {
        self.tags.contains_key(tags::RETAIN)
    }
    pub fn name(&self) -> Option<&str> {
        self.tags.get(tags::NAME).map(String::as_str)
    }
    /// `<region>/<id>` values a copy of each part of this point would carry.
    pub fn copy_keys(&self) -> Vec<String> {
        match self.kind {
            PointKind::SnapshotSet => self
                .snapshots
                .iter()
                .map(|s| format!("{}/{}", self.region, s.id))
                .collect(),
            _ => vec![format!("{}/{}", self.region, self.id())],
        }
    }
}

fn ec2_tags(t: &[aws_sdk_ec2::types::Tag], all: bool) -> BTreeMap<String, String> {
    t.iter()
        .filter(|t| all || t.key().is_some_and(|k| CONTROL_TAGS.contains(&k)))
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn rds_tags(t: &[aws_sdk_rds::types::Tag], all: bool) -> BTreeMap<String, String> {
    t.iter()
        .filter(|t| all || t.key().is_some_and(|k| CONTROL_TAGS.contains(&k)))
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn to_utc(t: Option<&aws_smithy_types::DateTime>) -> DateTime<Utc> {
    t.and_then(|d| DateTime::from_timestamp(d.secs(), d.subsec_nanos()))
        .unwrap_or_else(Utc::now)
}

fn tag_filter(key: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// What to list.
#[derive(Debug, Clone, Copy)]
pub struct Kinds {
    pub ec2: bool,
    pub rds: bool,
    /// Every tag of each point (copy, restore, `list`), or only the
    /// [`CONTROL_TAGS`] that retention and prune decide by: a prune lists
    /// every point of a fleet, and the configuration tags a point records
    /// are most of its size.
    pub all_tags: bool,
}

/// The tags rolesnap decides by; a listing without `all_tags` keeps only these.
pub const CONTROL_TAGS: &[&str] = &[
    tags::BACKUP,
    tags::AGENT,
    tags::JOB_START,
    tags::AMI,
    tags::PLAN,
    tags::SOURCE,
    tags::COPY_OF,
    tags::RESTORED_FROM,
    tags::RETAIN,
    tags::INTEGRITY,
    tags::NAME,
];

/// DescribeSnapshots page size (AWS allows 5–1000). Without one, AWS may
/// answer a region's every snapshot at once: one answer of many megabytes.
pub const SNAPSHOTS_PER_PAGE: i32 = 1000;

/// Lists the recovery points of `plan` (or of every plan) in one tenant × region.
pub async fn list_region(
    session: &TenantSession,
    account: &str,
    region: &str,
    plan: Option<&str>,
    kinds: Kinds,
    pacer: &Pacer,
) -> Result<Vec<RecoveryPoint>, AwsError> {
    let tenant = &session.tenant.name;
    let site = Site { tenant, region };
    let mut points = Vec::new();
    let base = |kind, tags: BTreeMap<String, String>, created, state| RecoveryPoint {
        kind,
        tenant: tenant.clone(),
        account: account.to_string(),
        region: region.to_string(),
        job: tags.get(tags::BACKUP).and_then(|j| j.parse().ok()),
        agent: tags.get(tags::AGENT).cloned().unwrap_or_default(),
        plan: tags.get(tags::PLAN).cloned(),
        source: tags.get(tags::SOURCE).cloned().unwrap_or_default(),
        created,
        state,
        resource_id: None,
        arn: None,
        snapshots: vec![],
        size_gib: 0,
        encrypted: false,
        kms_key_id: None,
        tags,
    };
    let keep = |t: &BTreeMap<String, String>| {
        t.contains_key(tags::BACKUP)
            && plan.is_none_or(|p| t.get(tags::PLAN).map(String::as_str) == Some(p))
    };
    if kinds.ec2 {
        let ec2 = session.ec2(region);
        // Snapshots: everything tagged _GX_BACKUP_ (and the plan, when given).
        let mut snaps: Vec<(Snap, DateTime<Utc>)> = Vec::new();
        let mut req = ec2
            .describe_snapshots()
            .owner_ids("self")
            .max_results(SNAPSHOTS_PER_PAGE)
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag-key")
                    .values(tags::BACKUP)
                    .build(),
            );
        if let Some(p) = plan {
            req = req.filters(tag_filter(tags::PLAN, p));
        }
        let mut pages = req.into_paginator().send();
        // Every page is a call, and takes its token: the first here, the
        // next ones when a page says there is more.
        pacer.take(account, region, Bucket::Describe).await;
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| site.err("DescribeSnapshots", None, e.into_service_error()))?;
            if page.next_token().is_some_and(|t| !t.is_empty()) {
                pacer.take(account, region, Bucket::Describe).await;
            }
            for s in page.snapshots() {
                let t = ec2_tags(s.tags(), kinds.all_tags);
                if !keep(&t) {
                    continue;
                }
                snaps.push((
                    Snap {
                        id: s.snapshot_id().unwrap_or_default().to_string(),
                        volume_id: s.volume_id().unwrap_or_default().to_string(),
                        size_gib: i64::from(s.volume_size().unwrap_or(0)),
                        state: s
                            .state()
                            .map(|x| x.as_str().to_string())
                            .unwrap_or_default(),
                        encrypted: s.encrypted().unwrap_or(false),
                        kms_key_id: s.kms_key_id().map(str::to_string),
                        tags: t,
                    },
                    to_utc(s.start_time()),
                ));
            }
        }
        // Images.
        pacer.take(account, region, Bucket::Describe).await;
        let mut req = ec2.describe_images().owners("self").filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag-key")
                .values(tags::BACKUP)
                .build(),
        );
        if let Some(p) = plan {
            req = req.filters(tag_filter(tags::PLAN, p));
        }
        let out = req
            .send()
            .await
            .map_err(|e| site.err("DescribeImages", None, e.into_service_error()))?;
        let mut ami_points: BTreeMap<String, RecoveryPoint> = BTreeMap::new();
        for i in out.images() {
            let t = ec2_tags(i.tags(), kinds.all_tags);
            if !keep(&t) {
                continue;
            }
            let id = i.image_id().unwrap_or_default().to_string();
            let created = i
                .creation_date()
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                .map_or_else(Utc::now, |d| d.with_timezone(&Utc));
            let state = PointState::image(i.state().map(|s| s.as_str()).unwrap_or("pending"));
            let mut p = base(PointKind::Ami, t, created, state);
            p.resource_id = Some(id.clone());
            // Backing snapshots from the image itself, in case their tags are missing.
            for m in i.block_device_mappings() {
                if let Some(sid) = m.ebs().and_then(|e| e.snapshot_id()) {
                    p.snapshots.push(Snap {
                        id: sid.to_string(),
                        volume_id: String::new(),
                        size_gib: i64::from(m.ebs().and_then(|e| e.volume_size()).unwrap_or(0)),
                        state: String::new(),
                        encrypted: m.ebs().and_then(|e| e.encrypted()).unwrap_or(false),
                        kms_key_id: m.ebs().and_then(|e| e.kms_key_id()).map(str::to_string),
                        tags: BTreeMap::new(),
                    });
                }
            }
            ami_points.insert(id, p);
        }
        // Snapshot sets: group by (agent, job, source); snapshots backing an
        // AMI belong to it. Two agents' jobs of the same number are two
        // points, never one.
        let mut sets: BTreeMap<(String, String), RecoveryPoint> = BTreeMap::new();
        for (s, created) in snaps {
            if let Some(ami) = s.tags.get(tags::AMI) {
                if let Some(p) = ami_points.get_mut(ami) {
                    if let Some(slot) = p.snapshots.iter_mut().find(|x| x.id == s.id) {
                        *slot = s;
                    } else {
                        p.snapshots.push(s);
                    }
                    continue;
                }
                // An AMI snapshot whose image is gone is an orphan: list it as a
                // point of its own so that prune can remove it.
            }
            let key = (
                format!(
                    "{}@{}",
                    s.tags.get(tags::BACKUP).cloned().unwrap_or_default(),
                    s.tags.get(tags::AGENT).cloned().unwrap_or_default()
                ),
                format!(
                    "{}|{}",
                    s.tags.get(tags::SOURCE).cloned().unwrap_or_default(),
                    s.tags
                        .get(tags::COPY_OF)
                        .map(|c| c.split('/').next().unwrap_or(""))
                        .unwrap_or("")
                ),
            );
            let p = sets.entry(key).or_insert_with(|| {
                base(
                    PointKind::SnapshotSet,
                    s.tags.clone(),
                    created,
                    PointState::Completed,
                )
            });
            p.created = p.created.min(created);
            p.state = match (p.state, PointState::ebs(&s.state)) {
                (PointState::Failed, _) | (_, PointState::Failed) => PointState::Failed,
                (PointState::Unusable, _) | (_, PointState::Unusable) => PointState::Unusable,
                (PointState::Pending, _) | (_, PointState::Pending) => PointState::Pending,
                _ => PointState::Completed,
            };
            p.snapshots.push(s);
        }
        for mut p in ami_points.into_values().chain(sets.into_values()) {
            p.size_gib = p.snapshots.iter().map(|s| s.size_gib).sum();
            p.encrypted = p.snapshots.iter().any(|s| s.encrypted);
            p.kms_key_id = p.snapshots.iter().find_map(|s| s.kms_key_id.clone());
            p.snapshots.sort_by(|a, b| a.id.cmp(&b.id));
            points.push(p);
        }
    }
    if kinds.rds {
        let rds = session.rds(region);
        pacer.take(account, region, Bucket::Rds).await;
        let mut pages = rds
            .describe_db_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| site.err("DescribeDBSnapshots", None, e.into_service_error()))?;
            for s in page.db_snapshots() {
                let t = rds_tags(s.tag_list(), kinds.all_tags);
                // One AWS is deleting is no longer a recovery point (it stays
                // listed for minutes, and refuses a second delete).
                if !keep(&t) || s.status() == Some("deleting") {
                    continue;
                }
                let mut p = base(
                    PointKind::DbSnapshot,
                    t,
                    to_utc(s.snapshot_create_time()),
                    PointState::rds(s.status()),
                );
                p.resource_id = s.db_snapshot_identifier().map(str::to_string);
                p.arn = s.db_snapshot_arn().map(str::to_string);
                p.size_gib = i64::from(s.allocated_storage().unwrap_or(0));
                p.encrypted = s.encrypted().unwrap_or(false);
                p.kms_key_id = s.kms_key_id().map(str::to_string);
                if p.source.is_empty() {
                    p.source = s.db_instance_identifier().unwrap_or_default().to_string();
                }
                points.push(p);
            }
        }
        pacer.take(account, region, Bucket::Rds).await;
        let mut pages = rds
            .describe_db_cluster_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                site.err("DescribeDBClusterSnapshots", None, e.into_service_error())
            })?;
            for s in page.db_cluster_snapshots() {
                let t = rds_tags(s.tag_list(), kinds.all_tags);
                // One AWS is deleting is no longer a recovery point (it stays
                // listed for minutes, and refuses a second delete).
                if !keep(&t) || s.status() == Some("deleting") {
                    continue;
                }
                let mut p = base(
                    PointKind::ClusterSnapshot,
                    t,
                    to_utc(s.snapshot_create_time()),
                    PointState::rds(s.status()),
                );
                p.resource_id = s.db_cluster_snapshot_identifier().map(str::to_string);
                p.arn = s.db_cluster_snapshot_arn().map(str::to_string);
                p.size_gib = i64::from(s.allocated_storage().unwrap_or(0));
                p.encrypted = s.storage_encrypted().unwrap_or(false);
                p.kms_key_id = s.kms_key_id().map(str::to_string);
                if p.source.is_empty() {
                    p.source = s.db_cluster_identifier().unwrap_or_default().to_string();
                }
                points.push(p);
            }
        }
    }
    points.sort_by_key(|p| (p.created, p.id()));
    Ok(points)
}
