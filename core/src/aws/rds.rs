//! RDS adapter: the DB snapshots and DB cluster (Aurora) snapshots of one
//! tenant × region, the two kinds behind one set of calls (`cluster` picks
//! the kind).
//!
//! Every call takes an `Rds` token (per page when paged). RDS identifiers of
//! recovery points and their copies are deterministic (they carry the job,
//! its start and the agent id, `tags::rds_identifier`): "already exists"
//! after an ambiguous failure is the snapshot that very call made, so a
//! create or copy adopts it instead of failing.

use aws_sdk_rds::types::{DbClusterSnapshot, DbSnapshot, Filter};
use aws_smithy_types::DateTime;
use tokio::time::Instant;

use super::{no_sdk_retries_rds, rds_tags, At};
use crate::aws::error::AwsError;
use crate::aws::pace::Bucket;
use crate::aws::retry::create_with_retry;

/// RDS calls of one tenant × region.
pub struct Rds<'a> {
    /// Named for the service: the policy test finds the calls by the field name.
    rds: aws_sdk_rds::Client,
    at: At<'a>,
}

/// What rolesnap reads of a DB snapshot or a DB cluster snapshot.
pub struct RdsSnapshot<'s> {
    pub id: &'s str,
    pub arn: Option<&'s str>,
    /// `creating`, `available`, `copying`, `deleting`, `failed` …
    pub status: Option<&'s str>,
    /// The DB instance or cluster it is a snapshot of.
    pub source: &'s str,
    pub created: Option<&'s DateTime>,
    pub size_gib: i64,
    pub encrypted: bool,
    pub kms_key_id: Option<&'s str>,
    pub tags: &'s [aws_sdk_rds::types::Tag],
    pub engine: Option<&'s str>,
    pub engine_version: Option<&'s str>,
}

impl<'s> From<&'s DbSnapshot> for RdsSnapshot<'s> {
    fn from(s: &'s DbSnapshot) -> RdsSnapshot<'s> {
        RdsSnapshot {
            id: s.db_snapshot_identifier().unwrap_or_default(),
            arn: s.db_snapshot_arn(),
            status: s.status(),
            source: s.db_instance_identifier().unwrap_or_default(),
            created: s.snapshot_create_time(),
            size_gib: i64::from(s.allocated_storage().unwrap_or(0)),
            encrypted: s.encrypted().unwrap_or(false),
            kms_key_id: s.kms_key_id(),
            tags: s.tag_list(),
            engine: s.engine(),
            engine_version: s.engine_version(),
        }
    }
}

impl<'s> From<&'s DbClusterSnapshot> for RdsSnapshot<'s> {
    fn from(s: &'s DbClusterSnapshot) -> RdsSnapshot<'s> {
        RdsSnapshot {
            id: s.db_cluster_snapshot_identifier().unwrap_or_default(),
            arn: s.db_cluster_snapshot_arn(),
            status: s.status(),
            source: s.db_cluster_identifier().unwrap_or_default(),
            created: s.snapshot_create_time(),
            size_gib: i64::from(s.allocated_storage().unwrap_or(0)),
            encrypted: s.storage_encrypted().unwrap_or(false),
            kms_key_id: s.kms_key_id(),
            tags: s.tag_list(),
            engine: s.engine(),
            engine_version: s.engine_version(),
        }
    }
}

/// A `Filter` on one field with several values.
pub fn filter(name: &str, values: &[impl AsRef<str>]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(
            values.iter().map(|v| v.as_ref().to_string()).collect(),
        ))
        .build()
}

/// The filter that finds snapshots by identifier, for the kind.
pub fn id_filter(cluster: bool, ids: &[impl AsRef<str>]) -> Filter {
    filter(
        if cluster {
            "db-cluster-snapshot-id"
        } else {
            "db-snapshot-id"
        },
        &ids.iter()
            .map(|i| i.as_ref().to_string())
            .collect::<Vec<_>>(),
    )
}

fn already_exists(code: &str) -> bool {
    code.starts_with("DBSnapshotAlreadyExists")
        || code.starts_with("DBClusterSnapshotAlreadyExists")
}

impl<'a> Rds<'a> {
    pub fn new(client: aws_sdk_rds::Client, at: At<'a>) -> Rds<'a> {
        Rds { rds: client, at }
    }

    /// Every manual DB snapshot (`cluster`: DB cluster snapshot) that
    /// matches `filters`, page by page, each given to `each`.
    pub async fn each_snapshot(
        &self,
        cluster: bool,
        filters: Vec<Filter>,
        each: impl FnMut(RdsSnapshot<'_>),
    ) -> Result<(), AwsError> {
        self.each_listed(cluster, false, filters, each).await
    }

    /// The manual snapshots of this account (`shared`: those other accounts
    /// share with it) of the kind, page by page, each given to `each`.
    async fn each_listed(
        &self,
        cluster: bool,
        shared: bool,
        filters: Vec<Filter>,
        mut each: impl FnMut(RdsSnapshot<'_>),
    ) -> Result<(), AwsError> {
        let filters = (!filters.is_empty()).then_some(filters);
        let snapshot_type = if shared { "shared" } else { "manual" };
        let include_shared = shared.then_some(true);
        if cluster {
            let mut pages = self
                .rds
                .describe_db_cluster_snapshots()
                .snapshot_type(snapshot_type)
                .set_include_shared(include_shared)
                .set_filters(filters)
                .into_paginator()
                .send();
            self.at.take(Bucket::Rds).await;
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    self.at
                        .err("DescribeDBClusterSnapshots", None, e.into_service_error())
                })?;
                if page.marker().is_some_and(|m| !m.is_empty()) {
                    self.at.take(Bucket::Rds).await;
                }
                page.db_cluster_snapshots()
                    .iter()
                    .for_each(|s| each(s.into()));
            }
        } else {
            let mut pages = self
                .rds
                .describe_db_snapshots()
                .snapshot_type(snapshot_type)
                .set_include_shared(include_shared)
                .set_filters(filters)
                .into_paginator()
                .send();
            self.at.take(Bucket::Rds).await;
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    self.at
                        .err("DescribeDBSnapshots", None, e.into_service_error())
                })?;
                if page.marker().is_some_and(|m| !m.is_empty()) {
                    self.at.take(Bucket::Rds).await;
                }
                page.db_snapshots().iter().for_each(|s| each(s.into()));
            }
        }
        Ok(())
    }

    /// Creates snapshot `id` of DB instance (`cluster`: DB cluster) `source`,
    /// tagged `t` at creation. Returns `id`.
    pub async fn create_snapshot(
        &self,
        cluster: bool,
        source: &str,
        id: &str,
        t: &[(String, String)],
        deadline: Instant,
    ) -> Result<String, AwsError> {
        let action = if cluster {
            "CreateDBClusterSnapshot"
        } else {
            "CreateDBSnapshot"
        };
        let tags = rds_tags(t);
        let tries = &self.at.tries(Bucket::Rds);
        self.adopting(id, deadline, || {
            let tags = tags.clone();
            async move {
                let _turn = tries.turn().await;
                let sent = if cluster {
                    Box::pin(
                        self.rds
                            .create_db_cluster_snapshot()
                            .db_cluster_snapshot_identifier(id)
                            .db_cluster_identifier(source)
                            .set_tags(Some(tags))
                            .customize()
                            .config_override(no_sdk_retries_rds())
                            .send(),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| self.at.err(action, Some(source), e.into_service_error()))
                } else {
                    Box::pin(
                        self.rds
                            .create_db_snapshot()
                            .db_snapshot_identifier(id)
                            .db_instance_identifier(source)
                            .set_tags(Some(tags))
                            .customize()
                            .config_override(no_sdk_retries_rds())
                            .send(),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| self.at.err(action, Some(source), e.into_service_error()))
                };
                sent.map(|()| id.to_string())
            }
        })
        .await
    }

    /// Copies the snapshot `arn` (of another region) here as `id`, tagged
    /// `t` at creation, re-encrypted with `kms` when given. Returns `id`.
    pub async fn copy_snapshot(
        &self,
        cluster: bool,
        arn: &str,
        id: &str,
        t: &[(String, String)],
        kms: Option<String>,
        deadline: Instant,
    ) -> Result<String, AwsError> {
        let action = if cluster {
            "CopyDBClusterSnapshot"
        } else {
            "CopyDBSnapshot"
        };
        let tags = rds_tags(t);
        let tries = &self.at.tries(Bucket::Rds);
        self.adopting(id, deadline, || {
            let (tags, kms) = (tags.clone(), kms.clone());
            async move {
                let _turn = tries.turn().await;
                let sent = if cluster {
                    let mut req = self
                        .rds
                        .copy_db_cluster_snapshot()
                        .source_db_cluster_snapshot_identifier(arn)
                        .target_db_cluster_snapshot_identifier(id)
                        .set_tags(Some(tags));
                    if let Some(k) = kms {
                        req = req.kms_key_id(k);
                    }
                    req.customize()
                        .config_override(no_sdk_retries_rds())
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| self.at.err(action, Some(arn), e.into_service_error()))
                } else {
                    let mut req = self
                        .rds
                        .copy_db_snapshot()
                        .source_db_snapshot_identifier(arn)
                        .target_db_snapshot_identifier(id)
                        .set_tags(Some(tags));
                    if let Some(k) = kms {
                        req = req.kms_key_id(k);
                    }
                    req.customize()
                        .config_override(no_sdk_retries_rds())
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| self.at.err(action, Some(arn), e.into_service_error()))
                };
                sent.map(|()| id.to_string())
            }
        })
        .await
    }

    /// Shares snapshot `id` with `account` (`add`), or stops sharing it:
    /// ModifyDB(Cluster)SnapshotAttribute `restore`. Stopping a share of a
    /// snapshot already gone counts as done.
    pub async fn share_snapshot(
        &self,
        cluster: bool,
        id: &str,
        account: &str,
        add: bool,
        deadline: Instant,
    ) -> Result<(), AwsError> {
        let values = Some(vec![account.to_string()]);
        let (to_add, to_remove) = if add { (values, None) } else { (None, values) };
        super::idempotent_with_retry(&self.at, Bucket::Rds, deadline, || async {
            let sent = if cluster {
                self.rds
                    .modify_db_cluster_snapshot_attribute()
                    .db_cluster_snapshot_identifier(id)
                    .attribute_name("restore")
                    .set_values_to_add(to_add.clone())
                    .set_values_to_remove(to_remove.clone())
                    .customize()
                    .config_override(no_sdk_retries_rds())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        self.at.err(
                            "ModifyDBClusterSnapshotAttribute",
                            Some(id),
                            e.into_service_error(),
                        )
                    })
            } else {
                self.rds
                    .modify_db_snapshot_attribute()
                    .db_snapshot_identifier(id)
                    .attribute_name("restore")
                    .set_values_to_add(to_add.clone())
                    .set_values_to_remove(to_remove.clone())
                    .customize()
                    .config_override(no_sdk_retries_rds())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        self.at.err(
                            "ModifyDBSnapshotAttribute",
                            Some(id),
                            e.into_service_error(),
                        )
                    })
            };
            match sent {
                Err(e) if !add && super::gone(&e.code) => Ok(()),
                r => r,
            }
        })
        .await
    }

    /// The snapshots (`cluster`: cluster snapshots) other accounts share
    /// with this one, each given to `each` with its ARN as identifier.
    pub async fn each_shared_snapshot(
        &self,
        cluster: bool,
        each: impl FnMut(RdsSnapshot<'_>),
    ) -> Result<(), AwsError> {
        self.each_listed(cluster, true, vec![], each).await
    }

    /// Deletes snapshot `id`; one already gone counts as deleted.
    pub async fn delete_snapshot(
        &self,
        cluster: bool,
        id: &str,
        deadline: Instant,
    ) -> Result<(), AwsError> {
        super::delete_with_retry(&self.at, Bucket::Rds, deadline, || async {
            if cluster {
                self.rds
                    .delete_db_cluster_snapshot()
                    .db_cluster_snapshot_identifier(id)
                    .customize()
                    .config_override(no_sdk_retries_rds())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        self.at
                            .err("DeleteDBClusterSnapshot", Some(id), e.into_service_error())
                    })
            } else {
                self.rds
                    .delete_db_snapshot()
                    .db_snapshot_identifier(id)
                    .customize()
                    .config_override(no_sdk_retries_rds())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        self.at
                            .err("DeleteDBSnapshot", Some(id), e.into_service_error())
                    })
            }
        })
        .await
    }

    /// A create or copy under a deterministic identifier: retried, and an
    /// "already exists" answer (after an ambiguous failure, the snapshot
    /// that very call made) taken as success.
    async fn adopting<C, CF>(
        &self,
        id: &str,
        deadline: Instant,
        mut call: C,
    ) -> Result<String, AwsError>
    where
        C: FnMut() -> CF,
        CF: std::future::Future<Output = Result<String, AwsError>>,
    {
        let (r, _) = create_with_retry(
            deadline,
            || {
                let sent = call();
                async move {
                    match sent.await {
                        Err(e) if already_exists(&e.code) => Ok(id.to_string()),
                        r => r,
                    }
                }
            },
            || async { Ok(None) },
            |e, wait| self.at.retried(e, wait),
        )
        .await;
        r
    }
}
