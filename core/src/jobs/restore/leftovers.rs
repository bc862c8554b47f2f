//! What a killed drill leaves: instances, DB instances and Aurora clusters
//! tagged `CV_Integrity_Snap` and `_GX_BACKUP_` (databases also named
//! `rolesnap-drill-*`, [`super::DRILL_DB_PREFIX`]) made before a cut-off;
//! for `prune`, also carrying its plan's `_GX_PLAN_`.
//! The next drill removes them before it starts, and so does `prune`
//! (docs/DESIGN.md, "Restore drills"). Nothing else is ever touched: a
//! resource without both tags, or a database without the drill name, is
//! not a drill's.

use chrono::{DateTime, Utc};

use crate::aws::credentials::TenantSession;
use crate::aws::ec2::{filter, tag_key};
use crate::aws::error::Site;
use crate::aws::pace::{Bucket, Pacer};
use crate::store::ledger::ItemKind;
use crate::tags;

use super::cleanup::delete_database;
use super::DRILL_DB_PREFIX;

/// One leftover found: removed, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub kind: ItemKind,
    pub id: String,
    pub region: String,
    /// `None`: removed (or, in a dry run, would be); else the error.
    pub error: Option<String>,
}

/// Where to look and how: one tenant × region.
pub struct Sweep<'a> {
    pub session: &'a TenantSession,
    pub account: &'a str,
    pub pacer: &'a Pacer,
    pub region: &'a str,
    /// Only what was made before this.
    pub older_than: DateTime<Utc>,
    /// Find and report, remove nothing.
    pub dry_run: bool,
    /// Only what carries `_GX_PLAN_` = this plan (`prune`, which deletes
    /// only its own plan's resources); `None`: any drill's (the next drill).
    pub plan: Option<&'a str>,
}

/// Both drill tags among these tags, and `_GX_PLAN_` = `plan` when one is given.
fn is_drill<'k>(
    tags: impl Iterator<Item = (Option<&'k str>, Option<&'k str>)>,
    plan: Option<&str>,
) -> bool {
    let tags: Vec<(&str, &str)> = tags
        .map(|(k, v)| (k.unwrap_or_default(), v.unwrap_or_default()))
        .collect();
    let has = |key: &str| tags.iter().any(|(k, _)| *k == key);
    has(tags::INTEGRITY)
        && has(tags::BACKUP)
        && plan.is_none_or(|p| tags.iter().any(|(k, v)| *k == tags::PLAN && *v == p))
}

impl Sweep<'_> {
    fn site(&self) -> Site<'_> {
        Site {
            tenant: &self.session.tenant.name,
            region: self.region,
        }
    }

    async fn take(&self, b: Bucket) {
        self.pacer.take(self.account, self.region, b).await;
    }

    /// Removes the leftovers; `log` is told each finding. A listing that
    /// fails is returned as the error (nothing removed of that kind).
    pub async fn run(&self, log: &(dyn Fn(&str) + Sync)) -> (Vec<Leftover>, Vec<String>) {
        let mut found = Vec::new();
        let mut errors = Vec::new();
        if let Err(e) = self.instances(&mut found).await {
            errors.push(e);
        }
        if let Err(e) = self.databases(&mut found).await {
            errors.push(e);
        }
        for f in &found {
            let what = format!(
                "{} [{}] in [{}], left by an earlier drill",
                f.kind.as_str(),
                f.id,
                f.region
            );
            log(&match (&f.error, self.dry_run) {
                (None, true) => format!("Dry run: would remove {what}"),
                (None, false) => format!("Removed {what}"),
                (Some(e), _) => format!("Cannot remove {what}: {e}"),
            });
        }
        for e in &errors {
            log(&format!(
                "Cannot look for drill leftovers in [{}]: {e}",
                self.region
            ));
        }
        (found, errors)
    }

    async fn instances(&self, found: &mut Vec<Leftover>) -> Result<(), String> {
        let ec2 = self.session.ec2(self.region);
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.take(Bucket::Describe).await;
            let out = ec2
                .describe_instances()
                .filters(tag_key(tags::INTEGRITY))
                .filters(tag_key(tags::BACKUP))
                .filters(filter(
                    "instance-state-name",
                    &["pending", "running", "stopping", "stopped"],
                ))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| {
                    self.site()
                        .err("DescribeInstances", None, e.into_service_error())
                        .to_string()
                })?;
            for i in out.reservations().iter().flat_map(|r| r.instances()) {
                let ours = is_drill(i.tags().iter().map(|t| (t.key(), t.value())), self.plan);
                let old = i
                    .launch_time()
                    .is_some_and(|t| crate::aws::to_utc(Some(t)) < self.older_than);
                if let (true, true, Some(id)) = (ours, old, i.instance_id()) {
                    ids.push(id.to_string());
                }
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        for id in ids {
            let error = if self.dry_run {
                None
            } else {
                self.take(Bucket::Mutate).await;
                ec2.terminate_instances()
                    .instance_ids(&id)
                    .send()
                    .await
                    .err()
                    .map(|e| {
                        self.site()
                            .err("TerminateInstances", Some(&id), e.into_service_error())
                            .to_string()
                    })
            };
            found.push(Leftover {
                kind: ItemKind::Instance,
                id,
                region: self.region.to_string(),
                error,
            });
        }
        Ok(())
    }

    /// Aurora clusters (their drill-named instances first, then the
    /// cluster), then DB instances outside a cluster.
    async fn databases(&self, found: &mut Vec<Leftover>) -> Result<(), String> {
        let rds = self.session.rds(self.region);
        let named = |id: Option<&str>| id.is_some_and(|i| i.starts_with(DRILL_DB_PREFIX));
        let mut clusters: Vec<(String, Vec<String>)> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.take(Bucket::Rds).await;
            let out = rds
                .describe_db_clusters()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| {
                    self.site()
                        .err("DescribeDBClusters", None, e.into_service_error())
                        .to_string()
                })?;
            for c in out.db_clusters() {
                let ours = named(c.db_cluster_identifier())
                    && is_drill(c.tag_list().iter().map(|t| (t.key(), t.value())), self.plan);
                let old = c
                    .cluster_create_time()
                    .is_some_and(|t| crate::aws::to_utc(Some(t)) < self.older_than);
                if ours && old && c.status() != Some("deleting") {
                    let members = c
                        .db_cluster_members()
                        .iter()
                        .filter_map(|m| m.db_instance_identifier())
                        .filter(|m| m.starts_with(DRILL_DB_PREFIX))
                        .map(str::to_string)
                        .collect();
                    clusters.push((
                        c.db_cluster_identifier().unwrap_or_default().to_string(),
                        members,
                    ));
                }
            }
            marker = out.marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        let mut instances: Vec<String> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.take(Bucket::Rds).await;
            let out = rds
                .describe_db_instances()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| {
                    self.site()
                        .err("DescribeDBInstances", None, e.into_service_error())
                        .to_string()
                })?;
            for d in out.db_instances() {
                let ours = named(d.db_instance_identifier())
                    && d.db_cluster_identifier().is_none()
                    && is_drill(d.tag_list().iter().map(|t| (t.key(), t.value())), self.plan);
                let old = d
                    .instance_create_time()
                    .is_some_and(|t| crate::aws::to_utc(Some(t)) < self.older_than);
                if ours && old && d.db_instance_status() != Some("deleting") {
                    instances.push(d.db_instance_identifier().unwrap_or_default().to_string());
                }
            }
            marker = out.marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        for (cluster, members) in clusters {
            let mut error = None;
            for m in members.iter().chain(std::iter::once(&cluster)) {
                if self.dry_run || error.is_some() {
                    continue;
                }
                self.take(Bucket::Rds).await;
                error = delete_database(&rds, &self.site(), m, *m == cluster)
                    .await
                    .err()
                    .map(|e| e.to_string());
            }
            found.push(Leftover {
                kind: ItemKind::DbCluster,
                id: cluster,
                region: self.region.to_string(),
                error,
            });
        }
        for id in instances {
            let error = if self.dry_run {
                None
            } else {
                self.take(Bucket::Rds).await;
                delete_database(&rds, &self.site(), &id, false)
                    .await
                    .err()
                    .map(|e| e.to_string())
            };
            found.push(Leftover {
                kind: ItemKind::DbInstance,
                id,
                region: self.region.to_string(),
                error,
            });
        }
        Ok(())
    }
}
