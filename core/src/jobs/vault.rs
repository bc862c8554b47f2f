//! Vault Copy: an isolated copy of a plan's recovery points in a separate
//! backup ("vault") account, which nobody holding a tenant role can delete.
//!
//! For each point of a tenant that a vault region lacks (found by
//! `_GX_VAULT_OF_` = `<tenant account>/<region>/<source id>` in the vault,
//! as the region copy finds its copies by `_GX_COPY_OF_`):
//! 1. in the tenant account, the point is shared with the vault account:
//!    its EBS snapshots (`createVolumePermission`), an AMI and the snapshots
//!    behind it (`launchPermission`), a DB or cluster snapshot (`restore`);
//! 2. in the vault account it is copied, re-encrypted with the vault's own
//!    KMS key in the destination region, tagged as the source is plus
//!    `_GX_VAULT_OF_` and `_GX_VAULT_`: a copy the vault owns, independent
//!    of the tenant's keys and of the tenant deleting its original;
//! 3. when the copy has ended, the share is removed.
//!
//! The copies use the region copy's window ([`crate::jobs::copy`]): at most
//! 20 in flight per destination region, paced under the buckets of the vault
//! account (copies, polls) and the tenant account (shares), resumable (a
//! later run copies what is missing). At the end of a tenant, the shares the
//! vault still sees from it are removed unless a vault copy of them is still
//! being made: what a crash or a timeout left shared does not stay so.
//!
//! AWS facts this relies on (EBS User Guide, "Share an Amazon EBS snapshot";
//! RDS User Guide, "Sharing a DB snapshot"): a snapshot encrypted with the
//! AWS managed key (`aws/ebs`, `aws/rds`) cannot be shared; one encrypted
//! with a customer managed key can, and the key policy must allow the other
//! account to use the key (`kms:Decrypt`, `kms:CreateGrant`, …) for it to
//! copy. `validate` checks both before a job fails on them.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use tokio::time::Instant;

use crate::aws::credentials::{Connected, TenantSession};
use crate::aws::ec2::filter;
use crate::aws::error::AwsError;
use crate::catalog::{list_region, Kinds, PointKind, RecoveryPoint};
use crate::config::{CopyRule, Vault, VaultRule};
use crate::jobs::copy::{copy_into, keys_by_state, vault_key, Task, VaultTo};
use crate::jobs::work::Job;
use crate::store::ledger::{Item, ItemKind};
use crate::tags;

/// A vault rule of the plan with its vault, reached.
pub struct VaultConn {
    pub rule: VaultRule,
    pub vault: Vault,
    pub conn: Connected,
}

impl VaultConn {
    fn session(&self) -> &TenantSession {
        &self.conn.session
    }
    fn account(&self) -> &str {
        &self.conn.account
    }
    /// The vault rule as a copy rule into `dest` (retention, lock, key).
    fn copy_rule(&self, dest: &str) -> CopyRule {
        CopyRule {
            region: dest.to_string(),
            retention: self.rule.retention.clone(),
            kms_key_id: self.vault.keys.get(dest).cloned(),
            lock: self.rule.lock.clone(),
        }
    }
}

/// The kinds a vault job lists: every kind, with every tag (the copies carry
/// the source's recorded configuration).
const ALL: Kinds = Kinds {
    ec2: true,
    rds: true,
    all_tags: true,
};

/// Shares the parts of `t`'s point with `vault_account` (`add`), or stops
/// sharing them, in the tenant account (`session`, `account`).
pub(crate) async fn share(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    t: &Task,
    vault_account: &str,
    add: bool,
    deadline: Instant,
) -> Result<(), AwsError> {
    let region = t.point.region.as_str();
    share_point(
        &job.ec2(session, account, region),
        &job.rds(session, account, region),
        &t.point,
        vault_account,
        add,
        deadline,
    )
    .await
}

/// Shares point `p` with account `with` (`add`), or stops sharing it, through
/// the adapters of the account that owns it: its EBS snapshots
/// (`createVolumePermission`), an AMI (`launchPermission`, and the snapshots
/// behind it: AWS copies a shared AMI only when both are shared), a DB or
/// cluster snapshot (`restore`). A share stops at the first error; stopping
/// a share tries every part, and returns the last error. The vault copy
/// (tenant → vault) and the restore from a vault (vault → tenant) both share
/// through this.
pub(crate) async fn share_point(
    ec2: &crate::aws::ec2::Ec2<'_>,
    rds: &crate::aws::rds::Rds<'_>,
    p: &RecoveryPoint,
    with: &str,
    add: bool,
    deadline: Instant,
) -> Result<(), AwsError> {
    if matches!(p.kind, PointKind::DbSnapshot | PointKind::ClusterSnapshot) {
        let cluster = p.kind == PointKind::ClusterSnapshot;
        return rds
            .share_snapshot(cluster, &p.id(), with, add, deadline)
            .await;
    }
    let mut out = Ok(());
    if p.kind == PointKind::Ami {
        out = ec2.share_image(&p.id(), with, add, deadline).await;
    }
    for s in &p.snapshots {
        if add && out.is_err() {
            break;
        }
        if let Err(e) = ec2.share_snapshot(&s.id, with, add, deadline).await {
            out = Err(e);
        }
    }
    out
}

/// The parts of `points` (a tenant's, in their source region) that lack a
/// vault copy in `dest` among `existing` (the `_GX_VAULT_OF_` values there).
/// Pure.
pub fn missing_vault_copies(
    points: &[RecoveryPoint],
    existing: &BTreeSet<String>,
    dest: &str,
    rule: &CopyRule,
    to: &VaultTo,
) -> Vec<Task> {
    points
        .iter()
        .filter(|p| p.completed() && p.copy_of().is_none() && !p.tags.contains_key(tags::VAULT_OF))
        .filter_map(|p| {
            let mut t = Task {
                point: p.clone(),
                dest: dest.to_string(),
                rule: rule.clone(),
                missing: vec![],
                vault: Some(to.clone()),
            };
            let parts: Vec<String> = match p.kind {
                PointKind::SnapshotSet => p.snapshots.iter().map(|s| s.id.clone()).collect(),
                _ => vec![p.id()],
            };
            t.missing = parts
                .into_iter()
                .filter(|id| !existing.contains(&t.key(id)))
                .collect();
            (!t.missing.is_empty()).then_some(t)
        })
        .collect()
}

/// The vault copies of one tenant's points: for each source region and each
/// vault rule's destination, the missing copies; then the shares left over.
pub async fn vault_tenant(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    source_regions: &[String],
    vaults: &[VaultConn],
) {
    let plan = job.plan;
    let tenant = &session.tenant.name;
    // The vault copies present in each vault × destination, this tenant's only.
    let mut present: BTreeMap<(usize, String), Result<BTreeSet<String>, AwsError>> =
        BTreeMap::new();
    for (i, v) in vaults.iter().enumerate() {
        for src in source_regions {
            for dest in v.rule.dests(src) {
                if present.contains_key(&(i, dest.clone())) {
                    continue;
                }
                let listed = list_region(
                    v.session(),
                    v.account(),
                    &dest,
                    Some(&plan.name),
                    ALL,
                    &job.pacer,
                )
                .await
                .map(|points| {
                    let (done, making) = keys_by_state(&points, tags::VAULT_OF);
                    let mine = format!("{account}/");
                    done.into_iter()
                        .chain(making)
                        .filter(|k| k.starts_with(&mine))
                        .collect()
                });
                present.insert((i, dest), listed);
            }
        }
    }
    let mut by_dest: BTreeMap<(usize, String), Vec<Task>> = BTreeMap::new();
    for src in source_regions {
        let points =
            match list_region(session, account, src, Some(&plan.name), ALL, &job.pacer).await {
                Ok(p) => p,
                Err(e) => {
                    job.region_not_listed(tenant, account, src, &e);
                    continue;
                }
            };
        for (i, v) in vaults.iter().enumerate() {
            for dest in v.rule.dests(src) {
                let Some(key) = v.vault.keys.get(&dest) else {
                    let why = format!(
                        "vault [{}] has no KMS key for {dest} in the accounts file: the points of [{tenant}/{src}] are not copied there",
                        v.vault.name
                    );
                    job.log(&why);
                    job.record(&Item::failed(
                        tenant,
                        account,
                        &dest,
                        ItemKind::Region,
                        src,
                        why,
                    ));
                    continue;
                };
                match &present[&(i, dest.clone())] {
                    Ok(existing) => {
                        let to = VaultTo {
                            name: v.vault.name.clone(),
                            account: v.account().to_string(),
                            key: key.clone(),
                            tenant: tenant.clone(),
                            tenant_account: account.to_string(),
                        };
                        let tasks = missing_vault_copies(
                            &points,
                            existing,
                            &dest,
                            &v.copy_rule(&dest),
                            &to,
                        );
                        job.log(&format!(
                            "Tenant [{tenant}] {src} -> vault [{}] {dest}: {} recovery point(s) need a vault copy",
                            v.vault.name,
                            tasks.len()
                        ));
                        by_dest.entry((i, dest)).or_default().extend(tasks);
                    }
                    Err(e) => {
                        let why = format!(
                            "Cannot list the copies in vault [{}/{dest}]: {e}",
                            v.vault.name
                        );
                        job.log(&why);
                        job.record(&Item::failed(
                            tenant,
                            account,
                            &dest,
                            ItemKind::Region,
                            src,
                            why,
                        ));
                    }
                }
            }
        }
    }
    join_all(by_dest.into_iter().map(|((i, dest), tasks)| {
        let v = &vaults[i];
        copy_into(
            job,
            v.session(),
            v.account(),
            dest,
            tasks,
            Some((session, account)),
        )
    }))
    .await;
    for v in vaults {
        stop_left_shares(job, session, account, source_regions, v).await;
    }
}

/// Removes the shares of this tenant's points that the vault still sees
/// (an earlier run that crashed or timed out), except those a vault copy is
/// still being made from: it reads from the share.
async fn stop_left_shares(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    source_regions: &[String],
    v: &VaultConn,
) {
    let tenant = &session.tenant.name;
    let deadline = job.deadline();
    // Vault copies still being made, by key, in every destination.
    let mut making = BTreeSet::new();
    let mut dests: Vec<String> = Vec::new();
    for src in source_regions {
        for d in v.rule.dests(src) {
            if !dests.contains(&d) && v.vault.keys.contains_key(&d) {
                dests.push(d);
            }
        }
    }
    for dest in &dests {
        match list_region(
            v.session(),
            v.account(),
            dest,
            Some(&job.plan.name),
            ALL,
            &job.pacer,
        )
        .await
        {
            Ok(points) => making.extend(keys_by_state(&points, tags::VAULT_OF).1),
            Err(e) => {
                job.log(&format!(
                    "Cannot list vault [{}/{dest}] to stop left shares of [{tenant}] (the next run does): {e}",
                    v.vault.name
                ));
                return;
            }
        }
    }
    for src in source_regions {
        let mut left: Vec<(PointKind, String)> = Vec::new();
        let ec2 = job.ec2(v.session(), v.account(), src);
        let listed = ec2
            .each_shared_snapshot(account, |s| {
                if let Some(id) = s.snapshot_id() {
                    left.push((PointKind::SnapshotSet, id.to_string()));
                }
            })
            .await;
        let rds = job.rds(v.session(), v.account(), src);
        let mut rds_listed = Ok(());
        for cluster in [false, true] {
            let kind = if cluster {
                PointKind::ClusterSnapshot
            } else {
                PointKind::DbSnapshot
            };
            let r = rds
                .each_shared_snapshot(cluster, |s| {
                    let arn = s.arn.unwrap_or(s.id);
                    // arn:aws:rds:REGION:ACCOUNT:snapshot:NAME
                    let parts: Vec<&str> = arn.splitn(7, ':').collect();
                    if parts.len() == 7 && parts[4] == account {
                        left.push((kind, parts[6].to_string()));
                    }
                })
                .await;
            if r.is_err() {
                rds_listed = r;
            }
        }
        // An AMI's launch permission, seen from the tenant: its own images of
        // this plan that the vault may launch (the snapshots behind them are
        // among the shared snapshots above).
        let images = job
            .ec2(session, account, src)
            .images_shared_with(
                v.account(),
                vec![
                    filter("tag-key", &[tags::BACKUP]),
                    filter(&format!("tag:{}", tags::PLAN), &[&job.plan.name]),
                ],
            )
            .await
            .map(|found| {
                left.extend(
                    found
                        .iter()
                        .filter_map(|i| i.image_id())
                        .map(|id| (PointKind::Ami, id.to_string())),
                );
            });
        // Only what this plan made: a shared snapshot's tags are the owner's
        // (the vault does not see them), so EBS snapshots are checked in the
        // tenant account; RDS snapshots by the plan's identifier prefix.
        let prefix = format!("sp-{}-", job.plan.id);
        left.retain(|(kind, id)| {
            !matches!(kind, PointKind::DbSnapshot | PointKind::ClusterSnapshot)
                || id.starts_with(&prefix)
        });
        let ebs: Vec<String> = left
            .iter()
            .filter(|(k, _)| k == &PointKind::SnapshotSet)
            .map(|(_, id)| id.clone())
            .collect();
        let ours = if ebs.is_empty() {
            Ok(BTreeSet::new())
        } else {
            job.ec2(session, account, src)
                .snapshots_by_id(&ebs)
                .await
                .map(|found| {
                    found
                        .iter()
                        .filter(|s| {
                            let t = crate::aws::ec2_tag_map(s.tags(), |_| true);
                            t.contains_key(tags::BACKUP)
                                && t.get(tags::PLAN) == Some(&job.plan.name)
                        })
                        .filter_map(|s| s.snapshot_id().map(str::to_string))
                        .collect::<BTreeSet<String>>()
                })
        };
        // When they cannot be checked, no EBS share is touched this time.
        left.retain(|(kind, id)| {
            kind != &PointKind::SnapshotSet || ours.as_ref().is_ok_and(|o| o.contains(id))
        });
        for r in [listed, rds_listed, images, ours.map(|_| ())] {
            if let Err(e) = r {
                job.log(&format!(
                    "Cannot list what [{tenant}/{src}] shares with vault [{}] (the next run stops what is left): {e}",
                    v.vault.name
                ));
            }
        }
        for (kind, id) in left {
            if making.contains(&vault_key(account, src, &id)) {
                continue;
            }
            let r = match kind {
                PointKind::DbSnapshot | PointKind::ClusterSnapshot => {
                    job.rds(session, account, src)
                        .share_snapshot(
                            kind == PointKind::ClusterSnapshot,
                            &id,
                            v.account(),
                            false,
                            deadline,
                        )
                        .await
                }
                PointKind::Ami => {
                    job.ec2(session, account, src)
                        .share_image(&id, v.account(), false, deadline)
                        .await
                }
                _ => {
                    job.ec2(session, account, src)
                        .share_snapshot(&id, v.account(), false, deadline)
                        .await
                }
            };
            match r {
                Ok(()) => job.log(&format!(
                    "Stopped the share of [{id}] of [{tenant}/{src}] with vault [{}] ({}), left by an earlier run",
                    v.vault.name,
                    v.account()
                )),
                Err(e) => job.log(&format!(
                    "Stopping the share of [{id}] of [{tenant}/{src}] with vault [{}] failed (the next run tries again): {e}",
                    v.vault.name
                )),
            }
        }
    }
}

/// A vault copy's `_GX_VAULT_OF_` (`<tenant account>/<region>/<source id>`):
/// the point's, or its first snapshot's.
pub fn vault_of(p: &RecoveryPoint) -> Option<&str> {
    p.tags
        .get(tags::VAULT_OF)
        .or_else(|| p.snapshots.first().and_then(|s| s.tags.get(tags::VAULT_OF)))
        .map(String::as_str)
}

/// The tenant a vault copy belongs to: the name `accounts` (account → tenant
/// name) gives the account in its `_GX_VAULT_OF_`.
pub fn tenant_of_copy<'a>(
    p: &RecoveryPoint,
    accounts: &'a BTreeMap<String, String>,
) -> Option<&'a String> {
    vault_of(p)
        .and_then(|k| k.split('/').next())
        .and_then(|a| accounts.get(a))
}

/// What [`list_vault`] found: the plan's points per vault region, and what
/// could not be read (`vault NAME: …`, `vault NAME REGION: …`).
#[derive(Default)]
pub struct VaultListing {
    pub regions: Vec<(String, Vec<RecoveryPoint>)>,
    pub errors: Vec<String>,
}

/// Assumes the vault's role and lists `plan`'s points in every region it has
/// a key for (or only `only`): what `list` and `report` show beside the
/// tenants' own points.
pub async fn list_vault(
    admin: &crate::aws::credentials::AdminSession,
    logs: &crate::store::logs::Logs,
    vault: &Vault,
    plan: &str,
    kinds: Kinds,
    only: Option<&str>,
    pacer: &crate::aws::pace::Pacer,
) -> VaultListing {
    let mut out = VaultListing::default();
    let conn = match crate::aws::credentials::connect_tenants(
        admin,
        std::slice::from_ref(&vault.role),
        None,
        logs,
    )
    .await
    .pop()
    {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            out.errors.push(format!("vault {}: {e}", vault.name));
            return out;
        }
        None => return out,
    };
    for region in vault.keys.keys() {
        if only.is_some_and(|r| r != region) {
            continue;
        }
        match list_region(
            &conn.session,
            &conn.account,
            region,
            Some(plan),
            kinds,
            pacer,
        )
        .await
        {
            Ok(points) => out.regions.push((region.clone(), points)),
            Err(e) => out
                .errors
                .push(format!("vault {} {region}: {e}", vault.name)),
        }
    }
    out
}
