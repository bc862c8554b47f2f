//! The tag contract (DESIGN.md): what rolesnap puts on everything it creates.
//! The least-privilege policy lets it delete only resources tagged
//! `_GX_BACKUP_`, and prune considers only its own plan's resources.

use crate::discovery::{DbCluster, DbInstance, Instance};

/// The marker: the job number. Nothing without it is ever deleted.
pub const BACKUP: &str = "_GX_BACKUP_";
/// On snapshots backing an AMI the agent made: the AMI id.
pub const AMI: &str = "_GX_AMI_";
pub const PLAN: &str = "_GX_PLAN_";
/// The agent (ledger) id of the job that made it: job numbers are unique only
/// within one ledger, so a recovery point is known by agent id + job number.
pub const AGENT: &str = "_GX_AGENT_";
/// Unix time the job that made it started: with [`AGENT`] and [`BACKUP`],
/// proof that a job made it (adoption), and what tells two overlapping runs
/// of a plan apart (duplicates).
pub const JOB_START: &str = "_GX_JOB_START_";
pub const SOURCE: &str = "_GX_SOURCE_";
pub const COPY_OF: &str = "_GX_COPY_OF_";
/// On a vault copy: `<tenant account>/<region>/<source id>` of what it copies.
pub const VAULT_OF: &str = "_GX_VAULT_OF_";
/// On a vault copy: the vault's name (accounts file).
pub const VAULT: &str = "_GX_VAULT_";
/// On a vault copy of an EBS snapshot: the volume it was taken of (the
/// tenant's original, which restore would ask, may be gone).
pub const VOLUME: &str = "_GX_VOLUME_";
/// On resources a restore made: the recovery point they came from.
pub const RESTORED_FROM: &str = "_GX_RESTORED_FROM_";
/// Set by a person: never prune this recovery point.
pub const RETAIN: &str = "CV_Retain_Snap";
pub const INTEGRITY: &str = "CV_Integrity_Snap";
pub const NAME: &str = "Name";

// What a restore needs to rebuild an instance or database as it was.
pub const INSTANCE_TYPE: &str = "_GX_INSTANCE_TYPE_";
pub const SUBNET: &str = "_GX_SUBNET_";
pub const SECURITY_GROUPS: &str = "_GX_SG_";
pub const KEY_NAME: &str = "_GX_KEY_";
pub const IAM_PROFILE: &str = "_GX_PROFILE_";
pub const AZ: &str = "_GX_AZ_";
pub const ROOT_DEVICE: &str = "_GX_ROOT_";
/// `vol-…=/dev/xvda vol-…=/dev/sdf`: which snapshot goes back where.
pub const DEVICES: &str = "_GX_DEVICES_";
pub const DB_CLASS: &str = "_GX_DB_CLASS_";
pub const DB_SUBNET_GROUP: &str = "_GX_SUBNET_GROUP_";
pub const DB_ENGINE: &str = "_GX_ENGINE_";

/// AWS caps tag values at 256 characters.
const MAX_VALUE: usize = 256;

/// `SP_<plan-id>_<job>_<seq>_<unix-time>`, the guide's naming.
pub fn recovery_point_name(plan_id: u32, job: u64, seq: usize, unix: i64) -> String {
    format!("SP_{plan_id}_{job}_{seq}_{unix}")
}

/// The same name as an RDS identifier (letters, digits, hyphens; starts with
/// a letter), with the agent id: RDS identifiers are unique per account and
/// region, and two agents' jobs may have the same number.
pub fn rds_identifier(plan_id: u32, job: u64, seq: usize, unix: i64, agent: &str) -> String {
    if agent.is_empty() {
        format!("sp-{plan_id}-{job}-{seq}-{unix}")
    } else {
        format!("sp-{plan_id}-{job}-{seq}-{unix}-{agent}")
    }
}

/// Who made a resource: the job, its ledger's agent id, and when the job
/// started. A dry run (job 0) has no identity to tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub job: u64,
    pub agent: String,
    pub started: i64,
}

impl Identity {
    /// `_GX_BACKUP_`, `_GX_AGENT_`, `_GX_JOB_START_`.
    pub fn tags(&self) -> Vec<(String, String)> {
        let mut t = vec![(BACKUP.into(), self.job.to_string())];
        if !self.agent.is_empty() {
            t.push((AGENT.into(), self.agent.clone()));
            t.push((JOB_START.into(), self.started.to_string()));
        }
        t
    }
    /// Whether a resource's tags say this job made it.
    pub fn made(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        get(BACKUP).as_deref() == Some(self.job.to_string().as_str())
            && get(AGENT).unwrap_or_default() == self.agent
            && (self.agent.is_empty()
                || get(JOB_START).as_deref() == Some(self.started.to_string().as_str()))
    }
}

/// `1000@0f3c9a1e…`: a job named across agents.
pub fn job_label(job: u64, agent: &str) -> String {
    if agent.is_empty() {
        job.to_string()
    } else {
        format!("{job}@{agent}")
    }
}

/// Tags every recovery point carries.
pub fn base(id: &Identity, plan: &str, source: &str, name: &str) -> Vec<(String, String)> {
    let mut t = id.tags();
    t.extend([
        (PLAN.into(), plan.into()),
        (SOURCE.into(), source.into()),
        (NAME.into(), name.into()),
    ]);
    t
}

fn push(tags: &mut Vec<(String, String)>, key: &str, value: Option<String>) {
    if let Some(mut v) = value.filter(|v| !v.is_empty()) {
        v.truncate(MAX_VALUE);
        tags.push((key.into(), v));
    }
}

/// The configuration a full-instance restore reproduces.
pub fn instance_config(i: &Instance) -> Vec<(String, String)> {
    let mut t = Vec::new();
    push(&mut t, INSTANCE_TYPE, i.instance_type.clone());
    push(&mut t, SUBNET, i.subnet_id.clone());
    push(&mut t, SECURITY_GROUPS, Some(i.security_groups.join(" ")));
    push(&mut t, KEY_NAME, i.key_name.clone());
    push(&mut t, IAM_PROFILE, i.iam_profile_arn.clone());
    push(&mut t, AZ, Some(i.az.clone()));
    push(&mut t, ROOT_DEVICE, i.root_device.clone());
    push(
        &mut t,
        DEVICES,
        Some(
            i.volumes
                .iter()
                .map(|v| format!("{}={}", v.volume_id, v.device))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    );
    t
}

pub fn db_config(d: &DbInstance) -> Vec<(String, String)> {
    let mut t = Vec::new();
    push(&mut t, DB_CLASS, d.class.clone());
    push(&mut t, DB_SUBNET_GROUP, d.subnet_group.clone());
    push(&mut t, AZ, d.az.clone());
    push(&mut t, DB_ENGINE, Some(d.engine.clone()));
    t
}

pub fn cluster_config(c: &DbCluster) -> Vec<(String, String)> {
    let mut t = Vec::new();
    push(&mut t, DB_SUBNET_GROUP, c.subnet_group.clone());
    push(&mut t, DB_ENGINE, Some(c.engine.clone()));
    t
}

/// Parses `_GX_DEVICES_` back into (volume, device) pairs.
pub fn parse_devices(v: &str) -> Vec<(String, String)> {
    v.split_whitespace()
        .filter_map(|p| p.split_once('='))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_guide() {
        assert_eq!(
            recovery_point_name(2, 8277, 8800, 1582967320),
            "SP_2_8277_8800_1582967320"
        );
        assert_eq!(
            rds_identifier(2, 8277, 1, 1582967320, ""),
            "sp-2-8277-1-1582967320"
        );
        assert_eq!(
            rds_identifier(2, 8277, 1, 1582967320, "0123456789abcdef"),
            "sp-2-8277-1-1582967320-0123456789abcdef"
        );
    }

    #[test]
    fn devices_round_trip() {
        let s = "vol-1=/dev/xvda vol-2=/dev/sdf";
        assert_eq!(
            parse_devices(s),
            vec![
                ("vol-1".into(), "/dev/xvda".into()),
                ("vol-2".into(), "/dev/sdf".into())
            ]
        );
    }
}
