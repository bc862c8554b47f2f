//! Snap Copy: copy a plan's recovery points to its copy regions.
//!
//! The work is found, not remembered: for every completed source point the
//! destination region is asked (by `_GX_COPY_OF_`) which of its parts already
//! have a copy, and only the missing ones are copied. So a copy that failed
//! last night is made by the next run, and running twice copies nothing twice.
//!
//! AWS allows 20 concurrent snapshot copies per destination region (EBS and
//! RDS alike): each destination keeps at most [`COPIES_IN_FLIGHT`] copies
//! pending and queues the rest. A slot that frees is refilled at once, and the
//! copies that fill the window are started together. The destination's catalog
//! is listed once, at the start; after that only the copies in flight are
//! asked about, by id, on a timer (see `copy_into`), so waiting costs a few
//! describes per window whatever the region already holds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;

use crate::aws::credentials::TenantSession;
use crate::aws::error::AwsError;
use crate::catalog::{list_region, Kinds, PointKind, PointState, RecoveryPoint};
use crate::config::CopyRule;
use crate::jobs::work::Job;
use crate::store::ledger::{Item, ItemKind, ItemStatus};
use crate::tags;

pub(crate) mod start;
pub(crate) mod window;

#[cfg(test)]
use window::copies_in;
pub(crate) use window::copy_into;

/// AWS's limit of concurrent snapshot copies into one destination region. It
/// counts copy operations: each snapshot of a set is one (see `copies_in`).
pub const COPIES_IN_FLIGHT: usize = 20;

/// One source point to copy into one destination, and the parts still missing there.
#[derive(Debug, Clone)]
pub struct Task {
    pub point: RecoveryPoint,
    pub dest: String,
    /// The region copy rule; for a vault copy, the vault rule as one (its
    /// region, retention, lock, and the vault's key there).
    pub rule: CopyRule,
    /// Source snapshot ids (sets) or the point id, not yet copied.
    pub missing: Vec<String>,
    /// A vault copy: made in the vault account, from a share of the point.
    pub vault: Option<VaultTo>,
}

/// Where a vault copy goes, and whose point it copies.
#[derive(Debug, Clone)]
pub struct VaultTo {
    /// The vault's name (accounts file).
    pub name: String,
    pub account: String,
    /// The KMS key ARN the vault encrypts its copies with in the destination.
    pub key: String,
    /// The tenant whose point it is, and its account.
    pub tenant: String,
    pub tenant_account: String,
}

impl Task {
    /// The key the copy of part `id` carries: `_GX_COPY_OF_` = `region/id`,
    /// or `_GX_VAULT_OF_` = `account/region/id` for a vault copy.
    pub fn key(&self, id: &str) -> String {
        match &self.vault {
            Some(v) => vault_key(&v.tenant_account, &self.point.region, id),
            None => copy_key(&self.point.region, id),
        }
    }

    /// Copy tags: the source's own tags (the contract and the recorded
    /// configuration) plus `_GX_COPY_OF_`, or for a vault copy
    /// `_GX_VAULT_OF_` and `_GX_VAULT_`. `aws:` tags cannot be set.
    fn tags_for(&self, src: &BTreeMap<String, String>, id: &str) -> Vec<(String, String)> {
        let mut t: Vec<(String, String)> = src
            .iter()
            .filter(|(k, _)| {
                !k.starts_with("aws:")
                    && ![tags::COPY_OF, tags::VAULT_OF, tags::VAULT].contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match &self.vault {
            Some(v) => {
                t.push((tags::VAULT_OF.into(), self.key(id)));
                t.push((tags::VAULT.into(), v.name.clone()));
            }
            None => t.push((tags::COPY_OF.into(), self.key(id))),
        }
        t
    }
}

/// The `_GX_VAULT_OF_` key of a vault copy of part `id` of a point of
/// account `account` in `region`.
pub(crate) fn vault_key(account: &str, region: &str, id: &str) -> String {
    format!("{account}/{region}/{id}")
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
                    .filter(|s| !existing.contains(&copy_key(&p.region, &s.id)))
                    .map(|s| s.id.clone())
                    .collect(),
                _ => {
                    let id = p.id();
                    if existing.contains(&copy_key(&p.region, &id)) {
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
                vault: None,
            })
        })
        .collect()
}

/// The `_GX_COPY_OF_` key a copy of part `id` (snapshot, AMI or DB snapshot)
/// of a point in `region` carries.
pub(crate) fn copy_key(region: &str, id: &str) -> String {
    format!("{region}/{id}")
}

/// The keys the copies of an original carry: one per snapshot of a set, one
/// for an AMI or DB snapshot.
pub(crate) fn copy_keys_of(p: &RecoveryPoint) -> Vec<String> {
    match p.kind {
        PointKind::SnapshotSet => p
            .snapshots
            .iter()
            .map(|s| copy_key(&p.region, &s.id))
            .collect(),
        _ => vec![copy_key(&p.region, &p.id())],
    }
}

/// Every `_GX_COPY_OF_` key among the points of a destination region, with
/// the state of the copy (point or snapshot) that carries it.
fn copy_keys(points: &[RecoveryPoint]) -> impl Iterator<Item = (&str, PointState)> {
    keys_tagged(points, tags::COPY_OF)
}

/// Every value of tag `key` (`_GX_COPY_OF_`, `_GX_VAULT_OF_`) among `points`
/// and their snapshots, with the state of what carries it.
pub(crate) fn keys_tagged<'p>(
    points: &'p [RecoveryPoint],
    key: &'static str,
) -> impl Iterator<Item = (&'p str, PointState)> {
    points.iter().flat_map(move |p| {
        let snaps = p.snapshots.iter().filter_map(move |s| {
            s.tags
                .get(key)
                .map(|c| (c.as_str(), PointState::ebs(&s.state)))
        });
        p.tags
            .get(key)
            .map(|c| (c.as_str(), p.state))
            .into_iter()
            .chain(snaps)
    })
}

/// Every `_GX_COPY_OF_` value among the points of a destination region.
pub(crate) fn copy_keys_present(points: &[RecoveryPoint]) -> BTreeSet<String> {
    copy_keys(points).map(|(k, _)| k.to_string()).collect()
}

/// The copies in a destination region by key: (completed, still being made).
/// Failed ones are in neither.
pub(crate) fn copy_keys_by_state(points: &[RecoveryPoint]) -> (BTreeSet<String>, BTreeSet<String>) {
    keys_by_state(points, tags::COPY_OF)
}

/// [`copy_keys_by_state`] for the values of tag `key`.
pub(crate) fn keys_by_state(
    points: &[RecoveryPoint],
    key: &'static str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut done, mut making) = (BTreeSet::new(), BTreeSet::new());
    for (key, state) in keys_tagged(points, key) {
        match state {
            PointState::Completed => done.insert(key.to_string()),
            PointState::Pending => making.insert(key.to_string()),
            PointState::Failed | PointState::Unusable => false,
        };
    }
    (done, making)
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

/// A copy that answered polls stop listing is gone (deleted, or failed and
/// removed by AWS) once [`GONE_AFTER_POLLS`] polls in a row missed it and
/// [`GONE_AFTER`] has passed since it was started. Describes are eventually
/// consistent: a copy made a moment ago may be missing from the first answers,
/// and must not be given up for that.
pub const GONE_AFTER_POLLS: u32 = 3;
pub const GONE_AFTER: Duration = Duration::from_secs(30);

/// Whether a copy that `unseen` answered polls in a row did not list, started
/// `age` ago, is gone. Pure.
pub fn gone(unseen: u32, age: Duration) -> bool {
    unseen >= GONE_AFTER_POLLS && age >= GONE_AFTER
}

/// Copies the plan's points of one tenant: for each source region and each
/// copy rule, the missing copies. Records one item per (source point,
/// destination), and one per region that could not be listed.
pub async fn copy_tenant(
    job: &Job<'_>,
    session: &TenantSession,
    account: &str,
    source_regions: &[String],
) {
    let plan = job.plan;
    let tenant = &session.tenant.name;
    let kinds = Kinds {
        ec2: true,
        rds: true,
        all_tags: true,
    };
    let mut by_dest: BTreeMap<String, Vec<Task>> = BTreeMap::new();
    // Each region is listed once, whether the plan copies into it, out of it
    // or both. The destinations go first, at once; of each only the keys of
    // its copies are kept, and the whole listing only where it is a source
    // too. The other sources are listed one at a time after.
    let dests: BTreeSet<&String> = plan.copies.iter().map(|r| &r.region).collect();
    let listed = futures::future::join_all(
        dests
            .iter()
            .map(|r| list_region(session, account, r, Some(&plan.name), kinds, &job.pacer)),
    )
    .await;
    let mut dest_points: BTreeMap<String, Result<BTreeSet<String>, AwsError>> = BTreeMap::new();
    let mut sources_listed: BTreeMap<&String, Vec<RecoveryPoint>> = BTreeMap::new();
    for (region, listed) in dests.into_iter().zip(listed) {
        match listed {
            Ok(points) => {
                dest_points.insert(region.clone(), Ok(copy_keys_present(&points)));
                if source_regions.contains(region) {
                    sources_listed.insert(region, points);
                }
            }
            Err(e) => {
                dest_points.insert(region.clone(), Err(e));
            }
        }
    }
    for src in source_regions {
        let listed = match sources_listed.remove(src) {
            Some(points) => Ok(points),
            None => list_region(session, account, src, Some(&plan.name), kinds, &job.pacer).await,
        };
        let points = match listed {
            Ok(p) => p,
            Err(e) => {
                job.region_not_listed(tenant, account, src, &e);
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
                    job.record(&Item::failed(
                        &session.tenant.name,
                        account,
                        &rule.region,
                        ItemKind::Region,
                        &rule.region,
                        e.to_string(),
                    ));
                }
            }
        }
    }
    futures::future::join_all(
        by_dest
            .into_iter()
            .map(|(dest, tasks)| copy_into(job, session, account, dest, tasks, None)),
    )
    .await;
}

/// The item of a copy: the tenant's, in the destination region; a vault
/// copy's detail names the vault and its account.
fn task_item(
    session: &TenantSession,
    account: &str,
    t: &Task,
    status: ItemStatus,
    created: Vec<String>,
    error: Option<String>,
) -> Item {
    let (tenant, account) = match &t.vault {
        Some(v) => (v.tenant.clone(), v.tenant_account.clone()),
        None => (session.tenant.name.clone(), account.to_string()),
    };
    let mut detail = json!({"source": t.point.source, "job": t.point.job, "from": t.point.region});
    if let Some(v) = &t.vault {
        detail["vault"] = json!(v.name);
        detail["vault_account"] = json!(v.account);
    }
    Item {
        tenant,
        account,
        region: t.dest.clone(),
        kind: t.point.kind.into(),
        source_id: format!("{}/{}", t.point.region, t.point.id()),
        status,
        created,
        size_gib: t.point.size_gib,
        error,
        detail,
    }
}

#[cfg(test)]
mod tests;
