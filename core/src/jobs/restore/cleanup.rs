//! The cleanup guard: everything a restore made (and every RDS create it
//! sent), what it removed again and what it could not remove. When a restore
//! fails, [`Cleanup::run`] removes what the job made — found by the job's own
//! `_GX_BACKUP_` tag (and agent id), never anything else — and reports the
//! rest in `left_behind`: a database or cluster that does not carry the job's
//! tag, or that the role may not delete (the tenant policy grants no RDS
//! delete: `crate::policy`), stays where it is and is reported.
//!
//! Not a `Drop` guard: removing is asynchronous and needs the job context, so
//! the job calls [`Cleanup::run`] itself when the restore fails.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::error::{AwsError, Site};
use crate::aws::pace::Bucket;
use crate::tags;

use super::context::{has_job_tag, Context, Poll};
use super::lookup::{db_tags, describe_instance, job_instances};
use super::{Made, RestoreError};

/// What a restore made, removed and left behind.
#[derive(Debug, Default)]
pub(super) struct Cleanup {
    created: Vec<Made>,
    /// RDS identifiers a create was sent for (an ambiguous failure may have made them).
    rds_attempted: Vec<Made>,
    removed: Vec<String>,
    left_behind: Vec<String>,
}

impl Cleanup {
    /// Records a resource the job made.
    pub(super) fn made(&mut self, kind: &str, id: &str, region: &str) {
        self.created.push(Made {
            kind: kind.into(),
            id: id.into(),
            region: region.into(),
        });
    }

    /// Records an RDS create about to be sent.
    pub(super) fn attempt_rds(&mut self, kind: &str, id: &str, region: &str) {
        self.rds_attempted.push(Made {
            kind: kind.into(),
            id: id.into(),
            region: region.into(),
        });
    }

    /// Records something the job made and removed again itself.
    pub(super) fn removed_by_job(&mut self, id: &str) {
        self.removed.push(id.to_string());
    }

    /// Everything the job created, including what it removed again.
    pub(super) fn created(&self) -> &[Made] {
        &self.created
    }

    pub(super) fn removed(&self) -> &[String] {
        &self.removed
    }

    /// What it made and could not remove, with the reason.
    pub(super) fn left_behind(&self) -> &[String] {
        &self.left_behind
    }

    /// The ids of what the job made and did not remove.
    pub(super) fn still_there(&self) -> Vec<String> {
        self.created
            .iter()
            .filter(|m| !self.removed.contains(&m.id))
            .map(|m| m.id.clone())
            .collect()
    }

    /// Removes what the job made: everything in its region(s) tagged with the
    /// job's number (and nothing else), then the RDS resources it recorded.
    /// `region` is where the restore worked (where an EC2 create may have
    /// made something it did not hear back about).
    pub(super) async fn run(&mut self, cx: &mut Context<'_>, region: Option<&str>) {
        cx.deadline = Instant::now() + cx.options.wait_timeout.max(Duration::from_secs(60));
        let cx: &Context<'_> = cx;
        let job = cx.job_tag();
        let mut regions: BTreeSet<String> = self.created.iter().map(|m| m.region.clone()).collect();
        let ec2_attempted = cx.calls.iter().any(|c| {
            c.starts_with("RunInstances")
                || c.starts_with("RegisterImage")
                || c.starts_with("CreateVolume")
        });
        if ec2_attempted {
            regions.extend(region.map(str::to_string));
        }
        if self.created.is_empty() && self.rds_attempted.is_empty() && !ec2_attempted {
            cx.clean_log("Nothing was created; nothing to remove");
            return;
        }
        cx.clean_log(&format!(
            "Removing what restore job [{}] made: [{}]",
            cx.job,
            self.created
                .iter()
                .map(|m| format!("{} {}", m.kind, m.id))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for region in &regions {
            if ec2_attempted
                || self.created.iter().any(|m| {
                    &m.region == region
                        && ["instance", "volume", "image"].contains(&m.kind.as_str())
                })
            {
                self.ec2(cx, region, &job).await;
            }
        }
        // RDS, newest first: the writer before its cluster.
        let rds_made: Vec<Made> = self
            .rds_attempted
            .iter()
            .rev()
            .filter(|m| m.kind.starts_with("db-"))
            .cloned()
            .collect();
        for m in rds_made {
            self.db(cx, &m, &job).await;
        }
        if self.left_behind.is_empty() {
            cx.clean_log("Everything the job made was removed");
        }
    }

    async fn ec2(&mut self, cx: &Context<'_>, region: &str, job: &str) {
        self.terminate_instances(cx, region, job).await;
        self.remove_volumes(cx, region, job).await;
        self.deregister_images(cx, region, job).await;
        self.report_untagged(cx, region, job).await;
    }

    /// Instances (their DeleteOnTermination volumes go with them).
    async fn terminate_instances(&mut self, cx: &Context<'_>, region: &str, job: &str) {
        let ec2 = cx.session.ec2(region);
        let site = cx.site(region);
        let instances = match job_instances(cx, region, job).await {
            Ok(i) => i,
            Err(e) => {
                self.left_behind.push(format!(
                    "instances of job {job} in {region}: cannot list them ({e})"
                ));
                vec![]
            }
        };
        for id in &instances {
            cx.clean_log(&format!("TerminateInstances [{id}]"));
            cx.take(region, Bucket::Mutate).await;
            match ec2.terminate_instances().instance_ids(id).send().await {
                Ok(_) => {
                    let r = cx
                        .wait_for(&format!("instance {id} to terminate"), || async {
                            Ok(match describe_instance(cx, region, id).await {
                                Ok(Some(d)) if d.state == "terminated" => Poll::Done(()),
                                Ok(None) => Poll::Done(()),
                                Ok(Some(d)) => Poll::Pending(d.state),
                                Err(e) => Poll::Pending(e.to_string()),
                            })
                        })
                        .await;
                    match r {
                        Ok(()) => self.removed.push(id.clone()),
                        Err(e) => self.left_behind.push(format!("instance {id}: {e}")),
                    }
                }
                Err(e) => self.left_behind.push(format!(
                    "instance {id}: {}",
                    site.err("TerminateInstances", Some(id), e.into_service_error())
                )),
            }
        }
    }

    /// Volumes tagged with the job that are still there.
    async fn remove_volumes(&mut self, cx: &Context<'_>, region: &str, job: &str) {
        let ec2 = cx.session.ec2(region);
        let site = cx.site(region);
        cx.take(region, Bucket::Describe).await;
        let volumes = ec2
            .describe_volumes()
            .set_filters(Some(cx.job_filters(job)))
            .send()
            .await;
        match volumes {
            Ok(out) => {
                for v in out.volumes() {
                    let id = v.volume_id().unwrap_or_default().to_string();
                    if !has_job_tag(
                        v.tags().iter().map(|t| (t.key(), t.value())),
                        job,
                        &cx.agent,
                    ) {
                        continue;
                    }
                    if let Err(e) = remove_volume(cx, region, v).await {
                        self.left_behind.push(format!("volume {id}: {e}"));
                    } else {
                        self.removed.push(id);
                    }
                }
            }
            Err(e) => self.left_behind.push(format!(
                "volumes of job {job} in {region}: cannot list them ({})",
                site.err("DescribeVolumes", None, e.into_service_error())
            )),
        }
    }

    /// Images tagged with the job.
    async fn deregister_images(&mut self, cx: &Context<'_>, region: &str, job: &str) {
        let ec2 = cx.ec2(region);
        match ec2.images(cx.job_filters(job)).await {
            Ok(images) => {
                for i in images {
                    let id = i.image_id().unwrap_or_default().to_string();
                    cx.clean_log(&format!("DeregisterImage [{id}]"));
                    match ec2.deregister_image(&id, cx.deadline).await {
                        Ok(()) => self.removed.push(id),
                        Err(e) => self.left_behind.push(format!("image {id}: {e}")),
                    }
                }
            }
            Err(e) => self.left_behind.push(format!(
                "images of job {job} in {region}: cannot list them ({e})"
            )),
        }
    }

    /// What the job made but did not find by its tag: it cannot delete it.
    async fn report_untagged(&mut self, cx: &Context<'_>, region: &str, job: &str) {
        let made: Vec<Made> = self
            .created
            .iter()
            .filter(|m| m.region == region && !self.removed.contains(&m.id))
            .cloned()
            .collect();
        for m in made {
            match still_exists(cx, region, &m).await {
                Ok(false) => {
                    // Gone with its instance (DeleteOnTermination).
                    self.removed.push(m.id.clone());
                }
                Ok(true) if !self.left_behind.iter().any(|l| l.contains(&m.id)) => {
                    self.left_behind.push(format!(
                        "{} {}: it does not carry {}={job}, and rolesnap deletes only what it tagged",
                        m.kind,
                        m.id,
                        tags::BACKUP
                    ));
                }
                Ok(true) => {}
                Err(e) => self.left_behind.push(format!("{} {}: {e}", m.kind, m.id)),
            }
        }
    }

    async fn db(&mut self, cx: &Context<'_>, m: &Made, job: &str) {
        let cluster = m.kind == "db-cluster";
        let region = m.region.as_str();
        match db_tags(cx, region, &m.id, cluster).await {
            Ok(None) => {
                cx.clean_log(&format!("{} [{}] does not exist", m.kind, m.id));
                return;
            }
            Ok(Some(t)) if !cx.is_ours(&t, job) => {
                self.left_behind.push(format!(
                    "{} {}: it does not carry {}={job}, and rolesnap deletes only what it tagged",
                    m.kind,
                    m.id,
                    tags::BACKUP
                ));
                return;
            }
            Ok(Some(_)) => {}
            Err(e) => {
                self.left_behind.push(format!("{} {}: {e}", m.kind, m.id));
                return;
            }
        }
        if let Err(e) = delete_db(cx, m, cluster).await {
            self.left_behind.push(format!("{} {}: {e}", m.kind, m.id));
            return;
        }
        // A cluster can only go once its instances are gone: wait for them.
        let gone = cx
            .wait_for(&format!("{} {} to be deleted", m.kind, m.id), || async {
                Ok(match db_tags(cx, region, &m.id, cluster).await {
                    Ok(None) => Poll::Done(()),
                    Ok(Some(_)) => Poll::Pending("deleting".into()),
                    Err(e) => Poll::Pending(e.to_string()),
                })
            })
            .await;
        match gone {
            Ok(()) => self.removed.push(m.id.clone()),
            Err(e) => self.left_behind.push(format!("{} {}: {e}", m.kind, m.id)),
        }
    }
}

/// Whether something the job made is still there (`Ok(false)`: gone).
async fn still_exists(cx: &Context<'_>, region: &str, m: &Made) -> Result<bool, AwsError> {
    let ec2 = cx.session.ec2(region);
    let site = cx.site(region);
    match m.kind.as_str() {
        "instance" => describe_instance(cx, region, &m.id)
            .await
            .map(|d| d.is_some_and(|d| d.state != "terminated")),
        "volume" => {
            cx.take(region, Bucket::Describe).await;
            match ec2.describe_volumes().volume_ids(&m.id).send().await {
                Ok(o) => Ok(!o.volumes().is_empty()),
                Err(e) => {
                    let e = site.err("DescribeVolumes", Some(&m.id), e.into_service_error());
                    if e.code.contains("NotFound") {
                        Ok(false)
                    } else {
                        Err(e)
                    }
                }
            }
        }
        "image" => {
            let found = cx
                .ec2(region)
                .images_by_id(std::slice::from_ref(&m.id))
                .await?;
            Ok(!found.is_empty())
        }
        _ => Ok(false),
    }
}

/// Detaches a volume from wherever it is attached, then deletes it.
async fn remove_volume(
    cx: &Context<'_>,
    region: &str,
    v: &aws_sdk_ec2::types::Volume,
) -> Result<(), RestoreError> {
    let ec2 = cx.session.ec2(region);
    let site = cx.site(region);
    let id = v.volume_id().unwrap_or_default();
    for a in v.attachments() {
        let (Some(instance), Some(device)) = (a.instance_id(), a.device()) else {
            continue;
        };
        cx.clean_log(&format!(
            "DetachVolume [{id}] from [{instance}] at [{device}]"
        ));
        cx.take(region, Bucket::Mutate).await;
        ec2.detach_volume()
            .volume_id(id)
            .instance_id(instance)
            .device(device)
            .send()
            .await
            .map_err(|e| site.err("DetachVolume", Some(id), e.into_service_error()))?;
    }
    if !v.attachments().is_empty() {
        cx.wait_for(&format!("volume {id} to be detached"), || async {
            cx.take(region, Bucket::Describe).await;
            let out = ec2
                .describe_volumes()
                .volume_ids(id)
                .send()
                .await
                .map_err(|e| site.err("DescribeVolumes", Some(id), e.into_service_error()))?;
            Ok(
                match out
                    .volumes()
                    .first()
                    .and_then(|x| x.state())
                    .map(|s| s.as_str())
                {
                    Some("available") | None => Poll::Done(()),
                    Some(s) => Poll::Pending(s.to_string()),
                },
            )
        })
        .await?;
    }
    cx.clean_log(&format!("DeleteVolume [{id}]"));
    cx.take(region, Bucket::Mutate).await;
    ec2.delete_volume()
        .volume_id(id)
        .send()
        .await
        .map_err(|e| site.err("DeleteVolume", Some(id), e.into_service_error()))?;
    Ok(())
}

/// DeleteDBCluster / DeleteDBInstance without a final snapshot.
async fn delete_db(cx: &Context<'_>, m: &Made, cluster: bool) -> Result<(), AwsError> {
    let region = m.region.as_str();
    let rds = cx.session.rds(region);
    let site: Site = cx.site(region);
    cx.clean_log(&format!(
        "{} [{}] (no final snapshot)",
        if cluster {
            "DeleteDBCluster"
        } else {
            "DeleteDBInstance"
        },
        m.id
    ));
    cx.take(region, Bucket::Rds).await;
    delete_database(&rds, &site, &m.id, cluster).await
}

/// DeleteDBCluster or DeleteDBInstance `id` without a final snapshot (an
/// instance also without its automated backups): what a restore or drill
/// made, or a killed drill left ([`super::leftovers`]).
pub(super) async fn delete_database(
    rds: &aws_sdk_rds::Client,
    site: &Site<'_>,
    id: &str,
    cluster: bool,
) -> Result<(), AwsError> {
    if cluster {
        rds.delete_db_cluster()
            .db_cluster_identifier(id)
            .skip_final_snapshot(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| site.err("DeleteDBCluster", Some(id), e.into_service_error()))
    } else {
        rds.delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .delete_automated_backups(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| site.err("DeleteDBInstance", Some(id), e.into_service_error()))
    }
}
