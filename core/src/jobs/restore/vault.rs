//! Restoring from a vault copy (`--from-vault NAME`): the vault shares its
//! copy back with the tenant, the tenant copies it into its own account (with
//! `--kms-key-id`, else its default EBS key; RDS needs a key), the vault
//! stops the share, and the restore goes on from that copy as from any point.
//! The copies made in the tenant are the restore job's (tagged `_GX_BACKUP_` =
//! the restore job, no plan tag: never a plan's recovery point) and are
//! deleted when the restore ends, completed or failed.

use std::collections::BTreeMap;

use crate::aws::credentials::TenantSession;
use crate::catalog::{Kinds, PointKind, PointState, RecoveryPoint};
use crate::config::Vault;
use crate::jobs::copy::window::copy_states;
use crate::tags;

use super::context::Poll;
use super::{choose_point, RestoreError, Restorer};

/// The vault a restore reads from: its configuration and session.
pub(super) struct VaultSide {
    pub(super) vault: Vault,
    pub(super) session: TenantSession,
    pub(super) account: String,
}

/// A copy the restore made in the tenant account from a vault copy, deleted
/// when the restore ends.
#[derive(Debug, Clone)]
pub(super) struct Temporary {
    pub(super) kind: PointKind,
    pub(super) id: String,
    pub(super) region: String,
}

impl Restorer<'_> {
    /// What `_GX_RESTORED_FROM_` names: `id` (a point or snapshot of the
    /// tenant's), or for a restore from a vault the vault copy
    /// (`vault:<name>/<id>`): the restore's own copy of it is deleted.
    pub(super) fn origin(&self, id: &str) -> String {
        match (&self.vault, &self.point) {
            (Some(v), Some(p)) => format!("vault:{}/{}", v.vault.name, p.id),
            _ => id.to_string(),
        }
    }

    /// The newest (or chosen) vault copy of this tenant that `matches`, in
    /// the vault's regions (or `--region`), brought into the tenant account.
    pub(super) async fn find_vault_point(
        &mut self,
        what: &str,
        matches: &dyn Fn(&RecoveryPoint) -> bool,
        kinds: Kinds,
    ) -> Result<RecoveryPoint, RestoreError> {
        let Some(v) = self.vault.as_ref() else {
            return Err(RestoreError::Point("no vault session".into()));
        };
        let regions: Vec<String> = match &self.which.region {
            Some(r) => vec![r.clone()],
            None => v.vault.keys.keys().cloned().collect(),
        };
        let mine = format!("{}/", self.cx.account);
        let ours = |p: &RecoveryPoint| {
            crate::jobs::vault::vault_of(p).is_some_and(|k| k.starts_with(&mine))
        };
        let (session, account, name) = (v.session.clone(), v.account.clone(), v.vault.name.clone());
        let points = self
            .points_in(&session, &account, &regions, kinds, &ours, &name)
            .await?;
        // The vault's copies carry the source's tags, so the same choice
        // applies; they are not "copies" of the tenant's catalog.
        let p = choose_point(&points, matches, &self.which, what)?.clone();
        self.chose(
            &p,
            format!(
                "Restoring {what} from vault [{name}] copy {} [{}] of job [{}] made {} in [{}]",
                p.kind.as_str(),
                p.id(),
                p.job.map_or("?".into(), |j| j.to_string()),
                p.created.to_rfc3339(),
                p.region
            ),
        );
        self.bring_back(p).await
    }

    /// Shares vault copy `p` with the tenant, copies it into the tenant
    /// account, waits for the copy, and stops the share. Returns the point
    /// as the tenant's copy.
    async fn bring_back(&mut self, p: RecoveryPoint) -> Result<RecoveryPoint, RestoreError> {
        let v = self.vault.take().expect("vault side");
        let r = self.copy_from_vault(&v, &p).await;
        // The share is stopped whatever happened.
        let unshared = share(self, &v, &p, false).await;
        self.vault = Some(v);
        let q = r?;
        if let Err(e) = unshared {
            self.warnings.push(format!(
                "the vault copy {} is still shared with account {}: {e}",
                p.id(),
                self.cx.account
            ));
        }
        Ok(q)
    }

    async fn copy_from_vault(
        &mut self,
        v: &VaultSide,
        p: &RecoveryPoint,
    ) -> Result<RecoveryPoint, RestoreError> {
        let region = p.region.clone();
        if self.cx.dry_run {
            self.cx.call(format!(
                "share {} of vault [{}] with {}, then copy it into the tenant account in {region}",
                p.id(),
                v.vault.name,
                self.cx.account
            ));
            return Ok(p.clone());
        }
        share(self, v, p, true).await?;
        let job = self.cx.job_tag();
        let agent = self.cx.agent.clone();
        // The restore's own tags: its job, not the plan's (never a recovery point).
        let own = |t: &BTreeMap<String, String>, copy_of: String| -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> = t
                .iter()
                .filter(|(k, _)| {
                    !k.starts_with("aws:")
                        && ![
                            tags::PLAN,
                            tags::BACKUP,
                            tags::AGENT,
                            tags::JOB_START,
                            tags::VAULT_OF,
                            tags::VAULT,
                            tags::COPY_OF,
                            tags::AMI,
                        ]
                        .contains(&k.as_str())
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            out.push((tags::BACKUP.into(), job.clone()));
            if !agent.is_empty() {
                out.push((tags::AGENT.into(), agent.clone()));
            }
            out.push((tags::COPY_OF.into(), copy_of));
            out.push((
                tags::RESTORED_FROM.into(),
                format!("vault:{}/{}", v.vault.name, p.id()),
            ));
            out
        };
        let mut q = p.clone();
        q.account = self.cx.account.clone();
        q.tags.remove(tags::PLAN);
        match p.kind {
            PointKind::SnapshotSet => {
                let mut snaps = Vec::new();
                for s in &p.snapshots {
                    let t = own(&s.tags, format!("{region}/{}", s.id));
                    let ec2 = self.cx.ec2(&region);
                    let id = ec2
                        .copy_snapshot(
                            &region,
                            &s.id,
                            format!("rolesnap restore {job}: copy of vault {}", v.vault.name),
                            &t,
                            self.kms_key.clone(),
                            self.cx.deadline,
                        )
                        .await
                        .map_err(|e| RestoreError::AwsFor {
                            context: format!(
                                "cannot copy vault [{}] snapshot {} into the tenant account",
                                v.vault.name, s.id
                            ),
                            source: Box::new(e),
                        })?;
                    self.cx.call(format!("CopySnapshot {} -> {id}", s.id));
                    self.temporaries.push(Temporary {
                        kind: PointKind::SnapshotSet,
                        id: id.clone(),
                        region: region.clone(),
                    });
                    let mut n = s.clone();
                    n.id = id;
                    n.tags = t.into_iter().collect();
                    snaps.push(n);
                }
                let ids: Vec<String> = snaps.iter().map(|s| s.id.clone()).collect();
                let what = format!("copies [{}] from vault [{}]", ids.join(", "), v.vault.name);
                self.wait_copies(&what, &region, PointKind::SnapshotSet, &ids)
                    .await?;
                q.snapshots = snaps;
            }
            PointKind::DbSnapshot | PointKind::ClusterSnapshot => {
                let cluster = p.kind == PointKind::ClusterSnapshot;
                let Some(kms) = self.kms_key.clone() else {
                    return Err(RestoreError::Point(format!(
                        "vault copy {} is encrypted with the vault's key: a restore from the vault copies it into the tenant account, which RDS allows only with a key of that account (--kms-key-id)",
                        p.id()
                    )));
                };
                let new_id = format!("sp-vault-restore-{job}-{agent}")
                    .trim_end_matches('-')
                    .to_string();
                let arn = p.arn.clone().unwrap_or_default();
                let t = own(&p.tags, format!("{region}/{}", p.id()));
                let id = self
                    .cx
                    .rds(&region)
                    .copy_snapshot(cluster, &arn, &new_id, &t, Some(kms), self.cx.deadline)
                    .await
                    .map_err(|e| RestoreError::AwsFor {
                        context: format!(
                            "cannot copy vault [{}] snapshot {} into the tenant account",
                            v.vault.name,
                            p.id()
                        ),
                        source: Box::new(e),
                    })?;
                self.cx.call(format!(
                    "Copy{}Snapshot {arn} -> {id}",
                    if cluster { "DBCluster" } else { "DB" }
                ));
                self.temporaries.push(Temporary {
                    kind: p.kind,
                    id: id.clone(),
                    region: region.clone(),
                });
                let what = format!("copy {id} from vault [{}]", v.vault.name);
                self.wait_copies(&what, &region, p.kind, std::slice::from_ref(&id))
                    .await?;
                q.resource_id = Some(id);
                q.arn = None;
                q.tags = t.into_iter().collect();
            }
            PointKind::Ami => {
                let image = p.id();
                let t = own(&p.tags, format!("{region}/{image}"));
                let name = format!("rolesnap-restore-{job}-{image}");
                let token: String = name.chars().take(64).collect();
                let new = self
                    .cx
                    .ec2(&region)
                    .copy_image(
                        &region,
                        &image,
                        &name,
                        &token,
                        &t,
                        &t,
                        self.kms_key.clone(),
                        self.cx.deadline,
                    )
                    .await
                    .map_err(|e| RestoreError::AwsFor {
                        context: format!(
                            "cannot copy vault [{}] image {image} into the tenant account",
                            v.vault.name
                        ),
                        source: Box::new(e),
                    })?;
                self.cx.call(format!("CopyImage {image} -> {new}"));
                self.temporaries.push(Temporary {
                    kind: PointKind::Ami,
                    id: new.clone(),
                    region: region.clone(),
                });
                let what = format!("image {new} copied from vault [{}]", v.vault.name);
                self.wait_copies(&what, &region, PointKind::Ami, std::slice::from_ref(&new))
                    .await?;
                // Its snapshots go once the image is deregistered (in order).
                let snaps = self
                    .cx
                    .ec2(&region)
                    .image_snapshots(&new)
                    .await
                    .map_err(|e| RestoreError::AwsFor {
                        context: format!("cannot read the snapshots of image {new}"),
                        source: Box::new(e),
                    })?;
                for sid in snaps {
                    self.temporaries.push(Temporary {
                        kind: PointKind::SnapshotSet,
                        id: sid,
                        region: region.clone(),
                    });
                }
                q.resource_id = Some(new);
                q.tags = t.into_iter().collect();
                q.snapshots = vec![];
            }
        }
        Ok(q)
    }

    /// Waits until the copies `ids` of `kind` the restore made in `region`
    /// are complete, as the copy window polls its copies
    /// ([`copy_states`]): one failed (or unusable) fails the restore.
    async fn wait_copies(
        &self,
        what: &str,
        region: &str,
        kind: PointKind,
        ids: &[String],
    ) -> Result<(), RestoreError> {
        self.cx
            .wait_for(what, || async {
                let states =
                    copy_states(&self.cx.ec2(region), &self.cx.rds(region), kind, ids).await?;
                let done = states
                    .values()
                    .filter(|s| **s == PointState::Completed)
                    .count();
                Ok(
                    if states
                        .values()
                        .any(|s| matches!(s, PointState::Failed | PointState::Unusable))
                    {
                        Poll::Failed("a copy failed in AWS".into())
                    } else if done == ids.len() {
                        Poll::Done(())
                    } else {
                        Poll::Pending(format!("{done} of {} completed", ids.len()))
                    },
                )
            })
            .await
    }

    /// Deletes the copies this restore made from the vault (they are its
    /// own: tagged with its job). A failure is a warning, not the outcome.
    pub(super) async fn remove_temporaries(&mut self) {
        let deadline = self
            .cx
            .deadline
            .max(tokio::time::Instant::now() + std::time::Duration::from_secs(120));
        for t in std::mem::take(&mut self.temporaries) {
            let r = match t.kind {
                PointKind::DbSnapshot | PointKind::ClusterSnapshot => {
                    self.cx
                        .rds(&t.region)
                        .delete_snapshot(t.kind == PointKind::ClusterSnapshot, &t.id, deadline)
                        .await
                }
                PointKind::Ami => {
                    self.cx
                        .ec2(&t.region)
                        .deregister_image(&t.id, deadline)
                        .await
                }
                PointKind::SnapshotSet => {
                    self.cx
                        .ec2(&t.region)
                        .delete_snapshot(&t.id, deadline)
                        .await
                }
            };
            match r {
                Ok(()) => self.cx.note(format!(
                    "deleted {} {}, the restore's copy of the vault copy",
                    t.kind.as_str(),
                    t.id
                )),
                Err(e) => self.warnings.push(format!(
                    "the restore's copy {} of the vault copy could not be deleted: {e}",
                    t.id
                )),
            }
        }
    }
}

/// Shares vault copy `p` with the tenant (`add`), or stops sharing it, in the
/// vault account.
async fn share(
    r: &Restorer<'_>,
    v: &VaultSide,
    p: &RecoveryPoint,
    add: bool,
) -> Result<(), RestoreError> {
    let at = crate::aws::At {
        site: crate::aws::error::Site {
            tenant: &v.vault.name,
            region: &p.region,
        },
        account: &v.account,
        pacer: &r.cx.pacer,
        log: None,
    };
    let tenant = r.cx.account.as_str();
    let result = crate::jobs::vault::share_point(
        &crate::aws::ec2::Ec2::new(v.session.ec2(&p.region), at),
        &crate::aws::rds::Rds::new(v.session.rds(&p.region), at),
        p,
        tenant,
        add,
        r.cx.deadline,
    )
    .await;
    result.map_err(|e| RestoreError::AwsFor {
        context: format!(
            "cannot {} vault [{}] copy {} with account {tenant}",
            if add { "share" } else { "stop sharing" },
            v.vault.name,
            p.id(),
        ),
        source: Box::new(e),
    })
}
