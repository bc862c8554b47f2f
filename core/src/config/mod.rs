//! Accounts and plans: the TOML the operator writes.
//!
//! Two kinds of file. An *accounts* file declares the admin credentials once and
//! every tenant by name; a *plan* file references tenants by name and says what
//! to protect and how. Parsing is strict (unknown keys are errors) and every
//! semantic check names the file, the line and the key, so that a typo is
//! reported before anything is sent to AWS.
//!
//! This module holds the validated model and the public API; the work is in:
//! `raw` (the serde structs, with spans), `read` (reading a file from disk),
//! `errors` (`FILE:LINE: KEY: message`), `checks` (value checks shared by
//! both kinds of file), `accounts`, `plan`, `group` and `crontab` (each
//! kind of table, checked into the model).

mod accounts;
mod checks;
mod crontab;
mod drill;
mod errors;
mod group;
mod notify;
mod plan;
mod raw;
mod read;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use accounts::{
    load_accounts, parse_accounts, DEFAULT_SESSION_SECONDS, MAX_CHAINED_SESSION_SECONDS,
    MAX_SESSION_SECONDS, MAX_TENANT_NAME, MIN_SESSION_SECONDS,
};
pub use checks::{
    az_region, control_problem, external_id_problem, is_region, kms_key_problem, tag_value_problem,
    MAX_DESCRIPTION_CHARS, MAX_TAG_VALUE_CHARS,
};
pub use crontab::{crontab_weekdays, MAX_YEARS_TO_NEXT_RUN};
pub use drill::{DrillRule, DrillSelection, DrillTarget, DEFAULT_DRILL_TIMEOUT_MINUTES};
pub use errors::ConfigError;
pub use notify::{sns_topic_arn_problem, webhook_url_problem, HttpUrl};
pub use plan::{parse_plan_only, ALLOW_EMPTY, DEFAULT_WAIT_TIMEOUT_MINUTES};
pub use read::{is_accounts_file, read_config_file, MAX_CONFIG_BYTES};

// ---------------------------------------------------------------- validated model

/// Where the admin credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Admin {
    /// A named profile; `None` means the default chain (env, profile, instance profile).
    pub profile: Option<String>,
    /// An admin role assumed first (the guide's `vsa-assume-role`).
    pub role_arn: Option<RoleArn>,
    pub external_id: Option<String>,
    /// Region used for STS and for "all regions" discovery.
    pub region: String,
    pub session_seconds: u32,
    /// AWS calls the process has on the wire at once, over all tenants and
    /// regions (see [`crate::aws::connections`]).
    pub max_calls_in_flight: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tenant {
    pub name: String,
    pub role_arn: RoleArn,
    pub external_id: Option<String>,
    pub regions: Vec<String>,
    pub session_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Accounts {
    pub admin: Admin,
    pub tenants: Vec<Tenant>,
    /// Backup accounts that keep vault copies (`[[vault]]`).
    pub vaults: Vec<Vault>,
    /// `[notify]`: where every plan's alerts go (a plan may replace it).
    pub notify: Option<Notify>,
}

/// `[notify]`: the destinations of alerts ([`crate::alerts`]); each one set
/// gets every alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Notify {
    /// An SNS topic (in the admin account), published to with the admin credentials.
    pub sns_topic_arn: Option<String>,
    /// An `http://` or `https://` URL POSTed the event JSON (with a
    /// Slack-compatible `text`).
    pub webhook_url: Option<String>,
    /// PEM CA certificates an https webhook's server may chain to, besides
    /// the system's roots (a private CA).
    pub webhook_ca_file: Option<std::path::PathBuf>,
    /// A program and its arguments, run with the event JSON on stdin.
    pub command: Option<Vec<String>>,
}

impl Notify {
    /// No destination at all (a plan's empty `[notify]`: alerts off).
    pub fn is_empty(&self) -> bool {
        self.sns_topic_arn.is_none() && self.webhook_url.is_none() && self.command.is_none()
    }
}

impl Accounts {
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
    }
    pub fn vault(&self, name: &str) -> Option<&Vault> {
        self.vaults.iter().find(|v| v.name == name)
    }
}

/// A backup ("vault") account: rolesnap assumes its role as it assumes a
/// tenant's, and copies the tenants' recovery points there, re-encrypted with
/// the vault's own KMS key in each region, so that nobody holding a tenant
/// role can delete them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Vault {
    pub name: String,
    /// The vault's role as a session is made: name, role, ExternalId,
    /// session length; its regions are those it has a key for.
    pub role: Tenant,
    /// region → KMS key ARN in the vault account.
    pub keys: BTreeMap<String, String>,
}

impl Vault {
    pub fn account(&self) -> &str {
        &self.role.role_arn.account
    }
}

/// Where a `[[vault]]` rule of a plan puts its copies, per source region.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultRegion {
    /// The source point's own region.
    Same,
    Region(String),
}

/// A plan's `[[vault]]` rule: which vault, into which regions, kept how long.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VaultRule {
    pub vault: String,
    pub regions: Vec<VaultRegion>,
    pub retention: Retention,
    /// EBS Snapshot Lock of the vault copies.
    pub lock: Option<LockRule>,
}

impl VaultRule {
    /// The vault regions a point made in `source` is copied into.
    pub fn dests(&self, source: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.regions {
            let d = match r {
                VaultRegion::Same => source.to_string(),
                VaultRegion::Region(x) => x.clone(),
            };
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }
}

/// An IAM role ARN, checked: `arn:<partition>:iam::<12 digits>:role/<path/name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(into = "String")]
pub struct RoleArn {
    pub arn: String,
    pub account: String,
    pub name: String,
}

impl From<RoleArn> for String {
    fn from(r: RoleArn) -> String {
        r.arn
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

impl FromStr for RoleArn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let bad = || {
            format!("`{s}` is not an IAM role ARN (expected arn:aws:iam::123456789012:role/NAME)")
        };
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" || !parts[3].is_empty() {
            return Err(bad());
        }
        if !matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov") {
            return Err(bad());
        }
        let account = parts[4];
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`{s}`: account `{account}` is not 12 digits"));
        }
        let Some(path) = parts[5].strip_prefix("role/") else {
            return Err(bad());
        };
        let name = path.rsplit('/').next().unwrap_or_default();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if !name_ok {
            return Err(format!("`{s}`: role name `{name}` is not valid"));
        }
        Ok(RoleArn {
            arn: s.to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }
}

/// How an EC2 instance is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// One crash-consistent `CreateSnapshots` call per instance.
    SnapshotSet,
    /// `CreateImage` with NoReboot.
    Ami,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::SnapshotSet => "snapshot-set",
            Method::Ami => "ami",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Schedule {
    /// Normalised to the 6/7-field form the `cron` crate reads (seconds first).
    pub cron: String,
    /// As the operator wrote it.
    pub cron_source: String,
    pub timezone: chrono_tz::Tz,
    /// `rpo-grace-minutes`: the plan's RPO is the longest gap between two
    /// slots of the schedule plus this (`rolesnap report`).
    pub rpo_grace_minutes: u32,
}

/// `[schedule] rpo-grace-minutes` when the plan does not set it.
pub const DEFAULT_RPO_GRACE_MINUTES: u32 = 60;

/// Keep rules. A recovery point is kept when any rule keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Retention {
    pub days: Option<u32>,
    pub count: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub allow_delete_last: bool,
}

impl Retention {
    pub fn is_empty(&self) -> bool {
        self.days.is_none()
            && self.count.is_none()
            && self.daily.is_none()
            && self.weekly.is_none()
            && self.monthly.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyRule {
    pub region: String,
    pub retention: Retention,
    pub kms_key_id: Option<String>,
    /// Lock the copies' EBS snapshots (`[[copy]] lock = { mode = … }`).
    pub lock: Option<LockRule>,
}

/// EBS Snapshot Lock mode (AWS `LockMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Users with `ec2:UnlockSnapshot` can unlock or shorten it.
    Governance,
    /// Nobody can delete the snapshot or shorten the lock once the
    /// cooling-off period (if any) has passed, not even the account root.
    Compliance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        }
    }
}

/// `[lock]` (source regions) or `[[copy]] lock` (one copy region): lock every
/// EBS snapshot of a recovery point until its retention runs out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockRule {
    pub mode: LockMode,
    /// Compliance only: hours (1-72) during which the lock can still be undone.
    pub cool_off_hours: Option<u32>,
    /// `[lock] regions`: only these source regions; None = every source region.
    pub regions: Option<Vec<String>>,
}

/// `key=value` tag match; `*` in either part matches anything.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagRule {
    pub key: String,
    pub value: String,
}

impl TagRule {
    pub fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.iter()
            .any(|(k, v)| glob_match(&self.key, k) && glob_match(&self.value, v))
    }
}

impl fmt::Display for TagRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Matches `pattern` with `*` wildcards against `s`.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Regions {
    /// Every region enabled in the tenant account (DescribeRegions).
    AllEnabled,
    /// These regions.
    List(Vec<String>),
    /// The tenant's own default regions from the accounts file.
    TenantDefault,
}

/// What to protect in some tenants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    pub name: String,
    pub tenants: Vec<String>,
    pub regions: Regions,
    pub availability_zones: Vec<String>,
    pub instances: Vec<String>,
    pub exclude_instances: Vec<String>,
    pub include_tags: Vec<TagRule>,
    pub exclude_tags: Vec<TagRule>,
    /// DB instance identifiers (globs); empty with `rds = true` means all.
    pub rds_instances: Vec<String>,
    /// Aurora cluster identifiers (globs); empty with `aurora = true` means all.
    pub aurora_clusters: Vec<String>,
    pub exclude_databases: Vec<String>,
    pub ec2: bool,
    pub rds: bool,
    pub aurora: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub name: String,
    pub id: u32,
    pub description: Option<String>,
    pub method: Method,
    pub wait_timeout_minutes: u32,
    pub schedule: Option<Schedule>,
    pub retention: Retention,
    pub copies: Vec<CopyRule>,
    pub groups: Vec<Group>,
    /// `[lock]`: EBS Snapshot Lock in the source regions.
    pub lock: Option<LockRule>,
    /// `[[vault]]`: vault copies into backup accounts.
    pub vaults: Vec<VaultRule>,
    /// `[notify]` of the plan file: replaces the accounts file's (an empty
    /// one: no alerts for this plan).
    pub notify: Option<Notify>,
    /// `[drill]`: scheduled restore drills.
    pub drill: Option<DrillRule>,
    /// The file the plan was read from.
    pub source: PathBuf,
}

impl Plan {
    /// Tenants named by any group, in first-mention order.
    pub fn tenant_names(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for g in &self.groups {
            for t in &g.tenants {
                if seen.insert(t.clone()) {
                    out.push(t.clone());
                }
            }
        }
        out
    }
}

/// A plan file and the accounts file it refers to.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub plan: Plan,
    pub accounts: Accounts,
    pub accounts_path: PathBuf,
}

impl Loaded {
    /// Where this plan's alerts go: the plan's `[notify]`, else the accounts
    /// file's; `None` when there is nowhere to send them.
    pub fn notify(&self) -> Option<&Notify> {
        self.plan
            .notify
            .as_ref()
            .or(self.accounts.notify.as_ref())
            .filter(|n| !n.is_empty())
    }
}

/// Reads a plan, then its accounts file (`accounts_override`, else the plan's
/// `accounts` key relative to the plan, else `accounts.toml` beside it), and
/// checks every tenant reference.
///
/// # Errors
/// A [`ConfigError`] naming file, line and key for the first problem found.
pub fn load_plan(path: &Path, accounts_override: Option<&Path>) -> Result<Loaded, ConfigError> {
    let src = read_config_file(path)?;
    let (plan, accounts_key) = parse_plan_only(path, &src)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let accounts_path = match (accounts_override, accounts_key) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(rel)) => dir.join(rel),
        (None, None) => dir.join("accounts.toml"),
    };
    let accounts = load_accounts(&accounts_path)?;
    plan::check_tenants(path, &src, &plan, &accounts)?;
    plan::check_vaults(path, &src, &plan, &accounts)?;
    Ok(Loaded {
        plan,
        accounts,
        accounts_path,
    })
}
