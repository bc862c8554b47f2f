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

use crate::aws::credentials::TenantSession;
use crate::aws::ec2::Ec2;
use crate::aws::error::{AwsError, Site};
use crate::aws::pace::Pacer;
use crate::aws::rds::Rds;
use crate::aws::{ec2_tag_map, rds_tag_map, tag_filter, to_utc, At};
use crate::store::ledger::ItemKind;
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

/// The item a job records about a point of this kind.
impl From<PointKind> for ItemKind {
    fn from(k: PointKind) -> ItemKind {
        match k {
            PointKind::SnapshotSet => ItemKind::SnapshotSet,
            PointKind::Ami => ItemKind::Ami,
            PointKind::DbSnapshot => ItemKind::DbSnapshot,
            PointKind::ClusterSnapshot => ItemKind::ClusterSnapshot,
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
    tags::VAULT_OF,
    tags::VAULT,
    tags::RESTORED_FROM,
    tags::RETAIN,
    tags::INTEGRITY,
    tags::NAME,
];

pub use crate::aws::ec2::SNAPSHOTS_PER_PAGE;

/// Lists the recovery points of `plan` (or of every plan) in one tenant × region.
pub async fn list_region(
    session: &TenantSession,
    account: &str,
    region: &str,
    plan: Option<&str>,
    kinds: Kinds,
    pacer: &Pacer,
) -> Result<Vec<RecoveryPoint>, AwsError> {
    let at = At {
        site: Site {
            tenant: &session.tenant.name,
            region,
        },
        account,
        pacer,
        log: None,
    };
    let lister = Lister {
        tenant: &session.tenant.name,
        account,
        region,
        plan,
        kinds,
    };
    // The kinds' listings go out at once: each is a call (or pages) of its
    // own, so the region is listed after the slowest, not after their sum.
    let ec2 = Ec2::new(session.ec2(region), at);
    let rds = Rds::new(session.rds(region), at);
    let ec2_points = async {
        let mut v = Vec::new();
        if kinds.ec2 {
            lister.ec2(&ec2, &mut v).await?;
        }
        Ok::<_, AwsError>(v)
    };
    let rds_points = |cluster: bool| {
        let (lister, rds) = (&lister, &rds);
        async move {
            let mut v = Vec::new();
            if kinds.rds {
                lister.rds(rds, cluster, &mut v).await?;
            }
            Ok::<_, AwsError>(v)
        }
    };
    let (mut points, db, clusters) =
        futures::try_join!(ec2_points, rds_points(false), rds_points(true))?;
    points.extend(db);
    points.extend(clusters);
    points.sort_by_key(|p| (p.created, p.id()));
    Ok(points)
}

/// One tenant × region's listing: what to keep and how a point starts.
struct Lister<'a> {
    tenant: &'a str,
    account: &'a str,
    region: &'a str,
    plan: Option<&'a str>,
    kinds: Kinds,
}

impl Lister<'_> {
    /// A recovery point's tags: every tag, or only the [`CONTROL_TAGS`].
    fn wanted(&self, key: &str) -> bool {
        self.kinds.all_tags || CONTROL_TAGS.contains(&key)
    }

    /// Whether a resource with tags `t` is a point of this listing.
    fn keep(&self, t: &BTreeMap<String, String>) -> bool {
        t.contains_key(tags::BACKUP)
            && self
                .plan
                .is_none_or(|p| t.get(tags::PLAN).map(String::as_str) == Some(p))
    }

    fn point(
        &self,
        kind: PointKind,
        tags: BTreeMap<String, String>,
        created: DateTime<Utc>,
        state: PointState,
    ) -> RecoveryPoint {
        RecoveryPoint {
            kind,
            tenant: self.tenant.to_string(),
            account: self.account.to_string(),
            region: self.region.to_string(),
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
        }
    }

    /// Everything tagged `_GX_BACKUP_` (and the plan, when given).
    fn filters(&self) -> Vec<aws_sdk_ec2::types::Filter> {
        let mut f = vec![crate::aws::ec2::tag_key(tags::BACKUP)];
        if let Some(p) = self.plan {
            f.push(tag_filter(tags::PLAN, p));
        }
        f
    }

    /// Snapshot sets and AMIs (with the snapshots behind them).
    async fn ec2(&self, ec2: &Ec2<'_>, points: &mut Vec<RecoveryPoint>) -> Result<(), AwsError> {
        let mut snaps: Vec<(Snap, DateTime<Utc>)> = Vec::new();
        // The images and the snapshots are listed at once.
        let snapshots = ec2.each_snapshot(self.filters(), |s| {
            let t = ec2_tag_map(s.tags(), |k| self.wanted(k));
            if self.keep(&t) {
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
        });
        let (listed, images) = futures::join!(snapshots, ec2.images(self.filters()));
        listed?;
        let mut amis = self.images(&images?);
        let sets = self.sets(snaps, &mut amis);
        for mut p in amis.into_values().chain(sets.into_values()) {
            p.size_gib = p.snapshots.iter().map(|s| s.size_gib).sum();
            p.encrypted = p.snapshots.iter().any(|s| s.encrypted);
            p.kms_key_id = p.snapshots.iter().find_map(|s| s.kms_key_id.clone());
            p.snapshots.sort_by(|a, b| a.id.cmp(&b.id));
            points.push(p);
        }
        Ok(())
    }

    /// AMI points by image id, with the snapshots the images name.
    fn images(&self, images: &[aws_sdk_ec2::types::Image]) -> BTreeMap<String, RecoveryPoint> {
        let mut ami_points = BTreeMap::new();
        for i in images {
            let t = ec2_tag_map(i.tags(), |k| self.wanted(k));
            if !self.keep(&t) {
                continue;
            }
            let id = i.image_id().unwrap_or_default().to_string();
            let created = i
                .creation_date()
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                .map_or_else(Utc::now, |d| d.with_timezone(&Utc));
            let state = PointState::image(i.state().map(|s| s.as_str()).unwrap_or("pending"));
            let mut p = self.point(PointKind::Ami, t, created, state);
            p.resource_id = Some(id.clone());
            // Backing snapshots from the image itself, in case their tags are missing.
            for m in i.block_device_mappings() {
                let Some(ebs) = m.ebs() else { continue };
                if let Some(sid) = ebs.snapshot_id() {
                    p.snapshots.push(Snap {
                        id: sid.to_string(),
                        volume_id: String::new(),
                        size_gib: i64::from(ebs.volume_size().unwrap_or(0)),
                        state: String::new(),
                        encrypted: ebs.encrypted().unwrap_or(false),
                        kms_key_id: ebs.kms_key_id().map(str::to_string),
                        tags: BTreeMap::new(),
                    });
                }
            }
            ami_points.insert(id, p);
        }
        ami_points
    }

    /// Snapshot sets: grouped by (agent, job, source); snapshots backing an
    /// AMI go to it. Two agents' jobs of the same number are two points,
    /// never one.
    fn sets(
        &self,
        snaps: Vec<(Snap, DateTime<Utc>)>,
        ami_points: &mut BTreeMap<String, RecoveryPoint>,
    ) -> BTreeMap<(String, String), RecoveryPoint> {
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
            let tag = |k: &str| s.tags.get(k).cloned().unwrap_or_default();
            let key = (
                format!("{}@{}", tag(tags::BACKUP), tag(tags::AGENT)),
                format!(
                    "{}|{}|{}",
                    tag(tags::SOURCE),
                    s.tags
                        .get(tags::COPY_OF)
                        .map(|c| c.split('/').next().unwrap_or(""))
                        .unwrap_or(""),
                    // A vault keeps several tenants' copies: their account and
                    // source region part them.
                    s.tags
                        .get(tags::VAULT_OF)
                        .and_then(|c| c.rsplit_once('/').map(|(a, _)| a))
                        .unwrap_or("")
                ),
            );
            let p = sets.entry(key).or_insert_with(|| {
                self.point(
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
        sets
    }

    /// DB snapshots (`cluster`: DB cluster snapshots).
    async fn rds(
        &self,
        rds: &Rds<'_>,
        cluster: bool,
        points: &mut Vec<RecoveryPoint>,
    ) -> Result<(), AwsError> {
        let kind = if cluster {
            PointKind::ClusterSnapshot
        } else {
            PointKind::DbSnapshot
        };
        rds.each_snapshot(cluster, vec![], |s| {
            let t = rds_tag_map(s.tags, |k| self.wanted(k));
            // One AWS is deleting is no longer a recovery point (it stays
            // listed for minutes, and refuses a second delete).
            if !self.keep(&t) || s.status == Some("deleting") {
                return;
            }
            let mut p = self.point(kind, t, to_utc(s.created), PointState::rds(s.status));
            p.resource_id = Some(s.id.to_string());
            p.arn = s.arn.map(str::to_string);
            p.size_gib = s.size_gib;
            p.encrypted = s.encrypted;
            p.kms_key_id = s.kms_key_id.map(str::to_string);
            if p.source.is_empty() {
                p.source = s.source.to_string();
            }
            points.push(p);
        })
        .await
    }
}
