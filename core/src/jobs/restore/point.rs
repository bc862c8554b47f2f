//! Finding the recovery point to restore: the regions to look in, the point
//! itself ([`super::choose_point`] decides) and a snapshot set's devices.

use std::collections::BTreeSet;

use crate::aws::credentials::TenantSession;
use crate::catalog::{list_region, Kinds, RecoveryPoint};
use crate::discovery::{groups_for, regions_for};
use crate::tags;

use super::{choose_point, map_devices, PointSummary, RestoreError, Restorer};

/// One snapshot of a set, mapped back to its device.
#[derive(Debug, Clone)]
pub(super) struct Mapped {
    pub(super) snapshot: String,
    pub(super) volume: String,
    pub(super) device: String,
    pub(super) size_gib: i64,
}

impl Restorer<'_> {
    /// Regions to look in when `--region` is not given: the plan's regions for
    /// this tenant and its copy regions.
    pub(super) async fn candidate_regions(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in groups_for(self.cx.plan, &self.cx.session.tenant) {
            match regions_for(&self.cx.session, &self.cx.admin_region, &g.regions).await {
                Ok(rs) => out.extend(rs),
                Err(e) => self.cx.log(&format!(
                    "Cannot resolve regions of group [{}]: {e}",
                    g.name
                )),
            }
        }
        out.extend(self.cx.plan.copies.iter().map(|c| c.region.clone()));
        let mut seen = BTreeSet::new();
        out.retain(|r| seen.insert(r.clone()));
        out
    }

    pub(super) async fn find_point(
        &mut self,
        what: &str,
        matches: &dyn Fn(&RecoveryPoint) -> bool,
        kinds: Kinds,
    ) -> Result<RecoveryPoint, RestoreError> {
        if self.vault.is_some() {
            return self.find_vault_point(what, matches, kinds).await;
        }
        let regions = match &self.which.region {
            Some(r) => vec![r.clone()],
            None => self.candidate_regions().await,
        };
        let session = self.cx.session.clone();
        let points = self
            .points_in(&session, &self.cx.account, &regions, kinds, &|_| true, "")
            .await?;
        let p = choose_point(&points, matches, &self.which, what)?.clone();
        self.chose(
            &p,
            format!(
                "Restoring {what} from {} [{}] of job [{}] made {} in [{}]{}",
                p.kind.as_str(),
                p.id(),
                p.job.map_or("?".into(), |j| j.to_string()),
                p.created.to_rfc3339(),
                p.region,
                p.copy_of()
                    .map(|c| format!(" (copy of {c})"))
                    .unwrap_or_default()
            ),
        );
        Ok(p)
    }

    /// The plan's points of `kinds` that `keep` accepts, listed with
    /// `session` in `account` in each of `regions`. A region that cannot be
    /// listed is logged and skipped, unless it is the one `--region` named.
    /// `label` names a vault in the log (empty for the tenant).
    pub(super) async fn points_in(
        &self,
        session: &TenantSession,
        account: &str,
        regions: &[String],
        kinds: Kinds,
        keep: &dyn Fn(&RecoveryPoint) -> bool,
        label: &str,
    ) -> Result<Vec<RecoveryPoint>, RestoreError> {
        let mut points = Vec::new();
        for region in regions {
            match list_region(
                session,
                account,
                region,
                Some(&self.cx.plan.name),
                kinds,
                &self.cx.pacer,
            )
            .await
            {
                Ok(p) => points.extend(p.into_iter().filter(|p| keep(p))),
                Err(e) if self.which.region.is_some() => return Err(e.into()),
                Err(e) if label.is_empty() => self
                    .cx
                    .log(&format!("Cannot list recovery points in [{region}]: {e}")),
                Err(e) => self
                    .cx
                    .log(&format!("Cannot list vault [{label}/{region}]: {e}")),
            }
        }
        Ok(points)
    }

    /// Records the chosen point (its region and summary) and logs `line`.
    pub(super) fn chose(&mut self, p: &RecoveryPoint, line: String) {
        self.cx.log(&line);
        self.region = Some(p.region.clone());
        self.point = Some(PointSummary::from(p));
    }

    /// The volume a snapshot was taken of. A cross-region copy does not carry
    /// it (AWS shows `vol-ffffffff`); its source snapshot, named by
    /// `_GX_COPY_OF_`, does.
    async fn source_volume_of(&self, copy_of: &str) -> Result<String, RestoreError> {
        let (region, snap) = copy_of
            .split_once('/')
            .ok_or_else(|| RestoreError::Point(format!("bad {} value {copy_of}", tags::COPY_OF)))?;
        let found = self
            .cx
            .ec2(region)
            .snapshots_by_id(&[snap.to_string()])
            .await
            .map_err(|e| RestoreError::AwsFor {
                context: format!("cannot tell which volume copy of {copy_of} belongs to"),
                source: Box::new(e),
            })?;
        found
            .first()
            .and_then(|s| s.volume_id())
            .map(str::to_string)
            .ok_or_else(|| RestoreError::Point(format!("source snapshot {copy_of} not found")))
    }

    /// Every snapshot of a set with its recorded device.
    pub(super) async fn device_mapping(
        &self,
        p: &RecoveryPoint,
    ) -> Result<Vec<Mapped>, RestoreError> {
        let devices = tags::parse_devices(p.tags.get(tags::DEVICES).map_or("", String::as_str));
        if devices.is_empty() {
            return Err(RestoreError::Point(format!(
                "recovery point {} records no devices ({} tag)",
                p.id(),
                tags::DEVICES
            )));
        }
        let mut pairs = Vec::new();
        for s in &p.snapshots {
            let vol = if devices.iter().any(|(v, _)| v == &s.volume_id) {
                s.volume_id.clone()
            } else if let Some(v) = s.tags.get(tags::VOLUME) {
                // A vault copy records its volume: its origin may be gone.
                v.clone()
            } else if let Some(c) = s.tags.get(tags::COPY_OF) {
                self.source_volume_of(c).await?
            } else {
                s.volume_id.clone()
            };
            pairs.push((s.id.clone(), vol));
        }
        let mapped = map_devices(&devices, &pairs)?;
        Ok(mapped
            .into_iter()
            .map(|(snapshot, volume, device)| {
                let size_gib = p
                    .snapshots
                    .iter()
                    .find(|s| s.id == snapshot)
                    .map_or(0, |s| s.size_gib);
                Mapped {
                    snapshot,
                    volume,
                    device,
                    size_gib,
                }
            })
            .collect())
    }
}
