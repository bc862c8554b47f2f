//! Restoring a database: RestoreDBInstanceFromDBSnapshot for an RDS
//! instance; for Aurora, RestoreDBClusterFromSnapshot then CreateDBInstance
//! as the writer. An existing target identifier is refused before anything
//! is created.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::aws::error::AwsError;
use crate::aws::pace::Bucket;
use crate::aws::rds::id_filter;
use crate::aws::{no_sdk_retries_rds, rds_tags};
use crate::catalog::{Kinds, PointKind, RecoveryPoint};
use crate::tags;

use super::context::Poll;
use super::lookup::{db_tags, tag_list};
use super::{recorded_region, DbSpec, RestoreError, Restorer};

/// What a DB restore takes from its recovery point and request.
struct FromSnapshot {
    region: String,
    snapshot: String,
    subnet_group: Option<String>,
    /// Provenance tags of the new instance or cluster.
    prov: Vec<(String, String)>,
}

impl Restorer<'_> {
    pub(super) async fn restore_db(&mut self, s: &DbSpec) -> Result<Value, RestoreError> {
        let source = s.source_id.clone();
        let want = if s.cluster {
            PointKind::ClusterSnapshot
        } else {
            PointKind::DbSnapshot
        };
        let what = if s.cluster {
            format!("Aurora cluster {source}")
        } else {
            format!("DB instance {source}")
        };
        let p = self
            .find_point(
                &what,
                &|p: &RecoveryPoint| p.kind == want && p.source.eq_ignore_ascii_case(&source),
                Kinds {
                    ec2: false,
                    rds: true,
                    all_tags: true,
                },
            )
            .await?;
        let region = p.region.clone();
        let snapshot = p.id();
        let writer = s
            .writer_id
            .clone()
            .unwrap_or_else(|| format!("{}-1", s.target_id));
        self.refuse_existing(&region, s, &writer).await?;
        let subnet_group = self.db_subnet_group(&p, s);
        let mut prov = self.prov(&source, &snapshot, &s.target_id);
        prov.extend(self.drill_owner());
        let from = FromSnapshot {
            region,
            snapshot,
            subnet_group,
            prov,
        };
        if s.cluster {
            self.restore_cluster(s, &p, &from, &writer).await
        } else {
            self.restore_db_instance(s, &p, &from).await
        }
    }

    /// Never overwrite: refuses an existing identifier before creating anything.
    async fn refuse_existing(
        &self,
        region: &str,
        s: &DbSpec,
        writer: &str,
    ) -> Result<(), RestoreError> {
        if db_tags(&self.cx, region, &s.target_id, s.cluster)
            .await?
            .is_some()
        {
            return Err(RestoreError::Refused(format!(
                "refused: {} {} already exists in {region}; a restore never overwrites (choose another --target-id)",
                if s.cluster { "DB cluster" } else { "DB instance" },
                s.target_id
            )));
        }
        if s.cluster && db_tags(&self.cx, region, writer, false).await?.is_some() {
            return Err(RestoreError::Refused(format!(
                "refused: DB instance {writer} (the new cluster's writer) already exists in {region} (choose --writer-id)"
            )));
        }
        Ok(())
    }

    /// The DB subnet group: the one asked for, else the recorded one in the
    /// recorded region, else the default (said so).
    fn db_subnet_group(&mut self, p: &RecoveryPoint, s: &DbSpec) -> Option<String> {
        let same_region = recorded_region(p) == p.region;
        match (&s.subnet_group, p.tags.get(tags::DB_SUBNET_GROUP)) {
            (Some(g), _) => Some(g.clone()),
            (None, Some(g)) if same_region => Some(g.clone()),
            (None, Some(g)) => {
                self.cx.note(format!(
                    "the recorded DB subnet group {g} is in {}; the restore in {} uses the default subnet group (choose with --subnet-group)",
                    recorded_region(p),
                    p.region
                ));
                None
            }
            (None, None) => None,
        }
    }

    async fn restore_db_instance(
        &mut self,
        s: &DbSpec,
        p: &RecoveryPoint,
        from: &FromSnapshot,
    ) -> Result<Value, RestoreError> {
        let FromSnapshot {
            region,
            snapshot,
            subnet_group,
            prov,
        } = from;
        let class = s
            .instance_class
            .clone()
            .or_else(|| p.tags.get(tags::DB_CLASS).cloned())
            .ok_or_else(|| {
                RestoreError::BadRequest(format!(
                    "recovery point {snapshot} records no DB instance class ({}): pass --instance-class",
                    tags::DB_CLASS
                ))
            })?;
        self.cx.call(format!(
            "RestoreDBInstanceFromDBSnapshot DBInstanceIdentifier={} DBSnapshotIdentifier={snapshot} DBInstanceClass={class} DBSubnetGroupName={} Tags={}",
            s.target_id,
            subnet_group.as_deref().unwrap_or("(default)"),
            tag_list(prov)
        ));
        let mut result = json!({
            "db_instance_id": s.target_id,
            "region": region,
            "from_snapshot": snapshot,
            "db_instance_class": class,
            "db_subnet_group": subnet_group,
            "tags": prov.iter().cloned().collect::<BTreeMap<_, _>>(),
        });
        if self.cx.dry_run {
            return Ok(result);
        }
        let target = s.target_id.as_str();
        self.cleanup.attempt_rds("db-instance", target, region);
        self.send_restore_db_instance(from, target, &class).await?;
        self.cleanup.made("db-instance", target, region);
        let status = self.wait_db(region, target, false).await?;
        result["status"] = json!(status);
        self.summary.push(format!(
            "new DB instance {target} {status} ({}) from {snapshot} in {region}",
            result["db_instance_class"].as_str().unwrap_or("-")
        ));
        Ok(result)
    }

    /// Aurora: the cluster, then its writer.
    async fn restore_cluster(
        &mut self,
        s: &DbSpec,
        p: &RecoveryPoint,
        from: &FromSnapshot,
        writer: &str,
    ) -> Result<Value, RestoreError> {
        let FromSnapshot {
            region,
            snapshot,
            subnet_group,
            prov,
        } = from;
        let source = &s.source_id;
        let (engine, engine_version) = self.cluster_snapshot_engine(region, p).await?;
        let class = match &s.instance_class {
            Some(c) => c.clone(),
            None => self.source_writer_class(&recorded_region(p), source).await.ok_or_else(|| {
                RestoreError::BadRequest(format!(
                    "the writer's DB instance class is not recorded and the source cluster {source} cannot be read: pass --instance-class"
                ))
            })?,
        };
        self.cx.call(format!(
            "RestoreDBClusterFromSnapshot DBClusterIdentifier={} SnapshotIdentifier={snapshot} Engine={engine}{} DBSubnetGroupName={} Tags={}",
            s.target_id,
            engine_version
                .as_ref()
                .map(|v| format!(" EngineVersion={v}"))
                .unwrap_or_default(),
            subnet_group.as_deref().unwrap_or("(default)"),
            tag_list(prov)
        ));
        let mut wprov = self.prov(source, snapshot, writer);
        wprov.extend(self.drill_owner());
        self.cx.call(format!(
            "CreateDBInstance DBInstanceIdentifier={writer} DBClusterIdentifier={} Engine={engine} DBInstanceClass={class} Tags={}",
            s.target_id,
            tag_list(&wprov)
        ));
        let mut result = json!({
            "db_cluster_id": s.target_id,
            "writer_id": writer,
            "region": region,
            "from_snapshot": snapshot,
            "engine": engine,
            "engine_version": engine_version,
            "writer_class": class,
            "db_subnet_group": subnet_group,
            "tags": prov.iter().cloned().collect::<BTreeMap<_, _>>(),
        });
        if self.cx.dry_run {
            return Ok(result);
        }
        let target = s.target_id.as_str();
        self.cleanup.attempt_rds("db-cluster", target, region);
        self.send_restore_cluster(from, target, &engine, engine_version.as_deref())
            .await?;
        self.cleanup.made("db-cluster", target, region);
        self.wait_db(region, target, true).await?;
        self.cleanup.attempt_rds("db-instance", writer, region);
        self.send_create_writer(region, target, writer, &engine, &class, &wprov)
            .await?;
        self.cleanup.made("db-instance", writer, region);
        self.wait_db(region, writer, false).await?;
        let status = self.wait_db(region, target, true).await?;
        result["status"] = json!(status);
        self.summary.push(format!(
            "new Aurora cluster {target} {status} ({engine}) from {snapshot} in {region}, writer {writer} ({class})"
        ));
        Ok(result)
    }

    /// Whether the job's DB instance (or cluster) exists, after an ambiguous
    /// failure of its create.
    async fn db_made(&self, region: &str, id: &str, cluster: bool) -> Result<Option<()>, AwsError> {
        let t = db_tags(&self.cx, region, id, cluster)
            .await
            .unwrap_or_default();
        let job = self.cx.job_tag();
        Ok(t.filter(|t| self.cx.is_ours(t, &job)).map(|_| ()))
    }

    /// RestoreDBInstanceFromDBSnapshot, retried.
    async fn send_restore_db_instance(
        &self,
        from: &FromSnapshot,
        target: &str,
        class: &str,
    ) -> Result<(), AwsError> {
        let region = from.region.as_str();
        let snapshot = from.snapshot.as_str();
        let rds = self.cx.session.rds(region);
        let site = self.cx.site(region);
        let me: &Self = self;
        me.cx
            .create(
                || {
                    let (rds, group, prov) = (&rds, from.subnet_group.clone(), &from.prov);
                    async move {
                        me.cx.take(region, Bucket::Rds).await;
                        rds.restore_db_instance_from_db_snapshot()
                            .db_instance_identifier(target)
                            .db_snapshot_identifier(snapshot)
                            .db_instance_class(class)
                            .set_db_subnet_group_name(group)
                            .set_tags(Some(rds_tags(prov)))
                            .customize()
                            .config_override(no_sdk_retries_rds())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err(
                                    "RestoreDBInstanceFromDBSnapshot",
                                    Some(snapshot),
                                    e.into_service_error(),
                                )
                            })?;
                        Ok(())
                    }
                },
                || me.db_made(region, target, false),
            )
            .await
    }

    /// RestoreDBClusterFromSnapshot, retried.
    async fn send_restore_cluster(
        &self,
        from: &FromSnapshot,
        target: &str,
        engine: &str,
        engine_version: Option<&str>,
    ) -> Result<(), AwsError> {
        let region = from.region.as_str();
        let snapshot = from.snapshot.as_str();
        let rds = self.cx.session.rds(region);
        let site = self.cx.site(region);
        let me: &Self = self;
        me.cx
            .create(
                || {
                    let (rds, group, prov) = (&rds, from.subnet_group.clone(), &from.prov);
                    async move {
                        me.cx.take(region, Bucket::Rds).await;
                        rds.restore_db_cluster_from_snapshot()
                            .db_cluster_identifier(target)
                            .snapshot_identifier(snapshot)
                            .engine(engine)
                            .set_engine_version(engine_version.map(str::to_string))
                            .set_db_subnet_group_name(group)
                            .set_tags(Some(rds_tags(prov)))
                            .customize()
                            .config_override(no_sdk_retries_rds())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err(
                                    "RestoreDBClusterFromSnapshot",
                                    Some(snapshot),
                                    e.into_service_error(),
                                )
                            })?;
                        Ok(())
                    }
                },
                || me.db_made(region, target, true),
            )
            .await
    }

    /// CreateDBInstance as the new cluster's writer, retried.
    async fn send_create_writer(
        &self,
        region: &str,
        cluster: &str,
        writer: &str,
        engine: &str,
        class: &str,
        wprov: &[(String, String)],
    ) -> Result<(), AwsError> {
        let rds = self.cx.session.rds(region);
        let site = self.cx.site(region);
        let me: &Self = self;
        me.cx
            .create(
                || {
                    let rds = &rds;
                    async move {
                        me.cx.take(region, Bucket::Rds).await;
                        rds.create_db_instance()
                            .db_instance_identifier(writer)
                            .db_cluster_identifier(cluster)
                            .engine(engine)
                            .db_instance_class(class)
                            .set_tags(Some(rds_tags(wprov)))
                            .customize()
                            .config_override(no_sdk_retries_rds())
                            .send()
                            .await
                            .map_err(|e| {
                                site.err("CreateDBInstance", Some(writer), e.into_service_error())
                            })?;
                        Ok(())
                    }
                },
                || me.db_made(region, writer, false),
            )
            .await
    }

    async fn db_status(
        &self,
        region: &str,
        id: &str,
        cluster: bool,
    ) -> Result<Poll<String>, AwsError> {
        let rds = self.cx.session.rds(region);
        let site = self.cx.site(region);
        self.cx.take(region, Bucket::Rds).await;
        let status = if cluster {
            match rds
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
            {
                Ok(o) => o
                    .db_clusters()
                    .first()
                    .and_then(|c| c.status())
                    .map(str::to_string),
                Err(e) => {
                    let e = site.err("DescribeDBClusters", Some(id), e.into_service_error());
                    if e.code.contains("NotFound") {
                        return Ok(Poll::Pending("not visible yet".into()));
                    }
                    return Err(e);
                }
            }
        } else {
            match rds
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
            {
                Ok(o) => o
                    .db_instances()
                    .first()
                    .and_then(|d| d.db_instance_status())
                    .map(str::to_string),
                Err(e) => {
                    let e = site.err("DescribeDBInstances", Some(id), e.into_service_error());
                    if e.code.contains("NotFound") {
                        return Ok(Poll::Pending("not visible yet".into()));
                    }
                    return Err(e);
                }
            }
        };
        Ok(match status.as_deref() {
            Some("available") => Poll::Done("available".into()),
            Some(
                s @ ("creating"
                | "backing-up"
                | "modifying"
                | "configuring-enhanced-monitoring"
                | "configuring-log-exports"
                | "rebooting"
                | "resetting-master-credentials"
                | "upgrading"
                | "starting"
                | "renaming"
                | "storage-optimization"),
            ) => Poll::Pending(s.to_string()),
            None => Poll::Pending("unknown".into()),
            Some(other) => Poll::Failed(format!("status {other}")),
        })
    }

    async fn wait_db(&self, region: &str, id: &str, cluster: bool) -> Result<String, RestoreError> {
        let what = if cluster { "cluster" } else { "DB instance" };
        self.cx
            .wait_for(&format!("{what} {id} to be available"), || {
                self.db_status(region, id, cluster)
            })
            .await
    }

    /// Engine and version of a cluster snapshot (`_GX_ENGINE_`, else the snapshot).
    async fn cluster_snapshot_engine(
        &self,
        region: &str,
        p: &RecoveryPoint,
    ) -> Result<(String, Option<String>), RestoreError> {
        let id = p.id();
        // (engine, engine version) of the snapshot, as RDS lists it
        let mut listed: Option<(Option<String>, Option<String>)> = None;
        self.cx
            .rds(region)
            .each_snapshot(
                true,
                vec![id_filter(true, std::slice::from_ref(&id))],
                |s| {
                    listed.get_or_insert((
                        s.engine.map(str::to_string),
                        s.engine_version.map(str::to_string),
                    ));
                },
            )
            .await?;
        let (engine, version) = listed.unwrap_or_default();
        let engine = p
            .tags
            .get(tags::DB_ENGINE)
            .cloned()
            .or(engine)
            .ok_or_else(|| {
                RestoreError::Point(format!("cannot tell the engine of cluster snapshot {id}"))
            })?;
        Ok((engine, version))
    }

    /// The class of the source cluster's writer, while the source exists.
    async fn source_writer_class(&mut self, region: &str, cluster: &str) -> Option<String> {
        let rds = self.cx.session.rds(region);
        self.cx.take(region, Bucket::Rds).await;
        let c = rds
            .describe_db_clusters()
            .db_cluster_identifier(cluster)
            .send()
            .await
            .ok()?;
        let writer = c
            .db_clusters()
            .first()?
            .db_cluster_members()
            .iter()
            .find(|m| m.is_cluster_writer() == Some(true))?
            .db_instance_identifier()?
            .to_string();
        self.cx.take(region, Bucket::Rds).await;
        let d = rds
            .describe_db_instances()
            .db_instance_identifier(&writer)
            .send()
            .await
            .ok()?;
        let class = d.db_instances().first()?.db_instance_class()?.to_string();
        self.cx.note(format!(
            "the new writer gets {class}, the class of the source cluster's writer {writer} (choose with --instance-class)"
        ));
        Some(class)
    }
}
