//! Starting one copy: the missing snapshots of a set, an AMI, or a DB or
//! cluster snapshot, with the copy rule's KMS key, through the adapters.

use tokio::time::Instant;

use super::Task;
use crate::aws::credentials::TenantSession;
use crate::aws::error::AwsError;
use crate::catalog::PointKind;
use crate::jobs::work::Job;
use crate::tags;

/// A copy that could not be started whole: why, and the parts of a snapshot
/// set that were started all the same (source part, copy id). Those stay in
/// AWS, tagged as copies; the next run copies only the missing parts.
pub(super) struct NotStarted {
    pub(super) error: AwsError,
    pub(super) made: Vec<(String, String)>,
}

impl From<AwsError> for NotStarted {
    fn from(error: AwsError) -> NotStarted {
        NotStarted {
            error,
            made: Vec::new(),
        }
    }
}

/// Starts the copies of one task's missing parts. Returns (source part, copy id) pairs.
pub(super) async fn start_copy(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    task: &Task,
    deadline: Instant,
) -> Result<Vec<(String, String)>, NotStarted> {
    let to = Dest {
        job,
        session,
        account,
        task,
        deadline,
    };
    match task.point.kind {
        PointKind::SnapshotSet => to.copy_set().await,
        PointKind::Ami => Ok(vec![to.copy_image().await?]),
        PointKind::DbSnapshot | PointKind::ClusterSnapshot => Ok(vec![to.copy_rds().await?]),
    }
}

/// One task's copy into its destination region.
struct Dest<'a, 'j> {
    job: &'a Job<'j>,
    session: &'a TenantSession,
    account: &'a str,
    task: &'a Task,
    deadline: Instant,
}

impl Dest<'_, '_> {
    /// The copy rule's KMS key for an encrypted source (none for a plain one).
    // Same error type as every other step of a copy; built once per copy.
    #[allow(clippy::result_large_err)]
    fn key_for(&self, encrypted: bool) -> Result<Option<String>, AwsError> {
        // A vault copy is always encrypted with the vault's own key.
        if let Some(v) = &self.task.vault {
            return Ok(Some(v.key.clone()));
        }
        if !encrypted {
            return Ok(None);
        }
        let (p, dest) = (&self.task.point, &self.task.dest);
        self.task.rule.kms_key_id.clone().map(Some).ok_or_else(|| {
            self.job.at(self.session, self.account, dest).refusal(
                "Copy",
                &p.id(),
                "MissingKmsKey",
                format!(
                    "{} is encrypted and the copy rule for {dest} names no kms-key-id",
                    p.id()
                ),
            )
        })
    }

    /// The missing snapshots of a set, started together; each adopts only
    /// the copy tagged with its own part.
    async fn copy_set(&self) -> Result<Vec<(String, String)>, NotStarted> {
        let (p, dest, src) = (
            &self.task.point,
            self.task.dest.as_str(),
            self.task.point.region.as_str(),
        );
        let ec2 = self.job.ec2(self.session, self.account, dest);
        // Every part's key first, so that a set is not half started for want of one.
        let mut parts = Vec::new();
        for sid in &self.task.missing {
            let snap = p
                .snapshots
                .iter()
                .find(|s| &s.id == sid)
                .expect("missing part of this point");
            parts.push((sid, snap, self.key_for(snap.encrypted)?));
        }
        let started = futures::future::join_all(parts.into_iter().map(|(sid, snap, kms)| {
            let ec2 = &ec2;
            async move {
                let copy_of = self.task.key(sid);
                let mut t = self.task.tags_for(&snap.tags, sid);
                if self.task.vault.is_some() {
                    t.push((tags::VOLUME.into(), snap.volume_id.clone()));
                }
                self.job.log(&format!(
                    "CopySnapshot [{copy_of}] -> [{}/{dest}]",
                    self.session.tenant.name
                ));
                let description =
                    format!("rolesnap copy of {src}/{sid} (job {})", p.job.unwrap_or(0));
                ec2.copy_snapshot(src, sid, description, &t, kms, self.deadline)
                    .await
                    .map(|copy| (sid.clone(), copy))
            }
        }))
        .await;
        let mut made = Vec::new();
        let mut failed = None;
        for r in started {
            match r {
                Ok(part) => made.push(part),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(error) => Err(NotStarted { error, made }),
            None => Ok(made),
        }
    }

    /// CopyImage; the copy's snapshots are tagged by the same call.
    async fn copy_image(&self) -> Result<(String, String), AwsError> {
        let (p, dest, src) = (
            &self.task.point,
            self.task.dest.as_str(),
            self.task.point.region.as_str(),
        );
        let image = p.id();
        let copy_of = self.task.key(&image);
        let t = self.task.tags_for(&p.tags, &image);
        let kms = self.key_for(p.encrypted)?;
        // Idempotent on AWS's side for the same token (per account: a vault's
        // copy of the same image is another copy).
        let token: String = format!("rolesnap-{image}-{dest}-{}", self.account)
            .chars()
            .take(64)
            .collect();
        // The copy's snapshots carry what the source's snapshots carry, minus
        // the source AMI's id (the tenant policy allows tags only at
        // creation); _GX_AMI_ (the copy's id) follows once it is available
        // (complete()).
        let snap_tags: Vec<(String, String)> =
            t.iter().filter(|(k, _)| k != tags::AMI).cloned().collect();
        let name = p
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| image.clone());
        self.job.log(&format!(
            "CopyImage [{copy_of}] -> [{}/{dest}]",
            self.session.tenant.name
        ));
        let new = self
            .job
            .ec2(self.session, self.account, dest)
            .copy_image(
                src,
                &image,
                &name,
                &token,
                &t,
                &snap_tags,
                kms,
                self.deadline,
            )
            .await?;
        Ok((image, new))
    }

    /// CopyDBSnapshot / CopyDBClusterSnapshot under the source's identifier.
    async fn copy_rds(&self) -> Result<(String, String), AwsError> {
        let (p, dest) = (&self.task.point, self.task.dest.as_str());
        let source_id = p.id();
        // A vault keeps the copies of every tenant: its identifiers carry the
        // tenant's account (and keep the `sp-` the vault policy deletes by).
        let id = match &self.task.vault {
            Some(v) => format!("{source_id}-{}", v.tenant_account),
            None => source_id.clone(),
        };
        let arn = p.arn.clone().unwrap_or_default();
        let t = self.task.tags_for(&p.tags, &source_id);
        let kms = self.key_for(p.encrypted)?;
        let cluster = p.kind == PointKind::ClusterSnapshot;
        let action = if cluster {
            "CopyDBClusterSnapshot"
        } else {
            "CopyDBSnapshot"
        };
        self.job.log(&format!(
            "{action} [{arn}] -> [{}/{dest}] as [{id}]",
            self.session.tenant.name
        ));
        let copy = self
            .job
            .rds(self.session, self.account, dest)
            .copy_snapshot(cluster, &arn, &id, &t, kms, self.deadline)
            .await?;
        Ok((source_id, copy))
    }
}
