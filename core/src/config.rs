//! Accounts and plans: the TOML the operator writes.
//!
//! Two kinds of file. An *accounts* file declares the admin credentials once and
//! every tenant by name; a *plan* file references tenants by name and says what
//! to protect and how. Parsing is strict (unknown keys are errors) and every
//! semantic check names the file, the line and the key, so that a typo is
//! reported before anything is sent to AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

/// A configuration error: file, line and key, then what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {key}: {message}", location(file, *line))]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub key: String,
    pub message: String,
}

/// `file:line`, or just the file when the line is unknown (0).
fn location(file: &Path, line: usize) -> String {
    if line == 0 {
        file.display().to_string()
    } else {
        format!("{}:{line}", file.display())
    }
}

/// Session length bounds of STS AssumeRole (DurationSeconds 900–43200).
pub const MIN_SESSION_SECONDS: u32 = 900;
pub const MAX_SESSION_SECONDS: u32 = 43_200;
/// AWS caps a chained role session (a role assuming a role) at one hour.
pub const MAX_CHAINED_SESSION_SECONDS: u32 = 3_600;
pub const DEFAULT_SESSION_SECONDS: u32 = 3_600;

// ---------------------------------------------------------------- raw files

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAccounts {
    admin: Spanned<RawAdmin>,
    #[serde(default)]
    tenant: Vec<Spanned<RawTenant>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAdmin {
    profile: Option<String>,
    role_arn: Option<Spanned<String>>,
    external_id: Option<String>,
    region: Option<Spanned<String>>,
    session_duration: Option<Spanned<u32>>,
    max_calls_in_flight: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTenant {
    name: Spanned<String>,
    role_arn: Spanned<String>,
    external_id: Option<String>,
    #[serde(default)]
    regions: Vec<Spanned<String>>,
    session_duration: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPlanFile {
    accounts: Option<String>,
    plan: Spanned<RawPlan>,
    schedule: Option<Spanned<RawSchedule>>,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    copy: Vec<Spanned<RawCopy>>,
    #[serde(default)]
    group: Vec<Spanned<RawGroup>>,
    /// EBS Snapshot Lock of the source regions' snapshots (see lock.rs).
    #[serde(default)]
    lock: Option<Spanned<RawLock>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLock {
    mode: Spanned<String>,
    #[serde(default)]
    cool_off_hours: Option<Spanned<u32>>,
    #[serde(default)]
    regions: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPlan {
    name: Spanned<String>,
    id: Spanned<u32>,
    #[serde(default)]
    method: Option<Spanned<String>>,
    #[serde(default)]
    wait_timeout_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSchedule {
    cron: Spanned<String>,
    #[serde(default)]
    timezone: Option<Spanned<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRetention {
    days: Option<u32>,
    count: Option<u32>,
    daily: Option<u32>,
    weekly: Option<u32>,
    monthly: Option<u32>,
    #[serde(default)]
    allow_delete_last: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCopy {
    region: Spanned<String>,
    #[serde(default)]
    retention: Option<RawRetention>,
    kms_key_id: Option<String>,
    /// EBS Snapshot Lock of the copies in this region (see lock.rs).
    #[serde(default)]
    lock: Option<Spanned<RawLock>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawGroup {
    name: Spanned<String>,
    tenants: Vec<Spanned<String>>,
    /// Region names, or `["all"]` for every region enabled in the account.
    #[serde(default)]
    regions: Vec<Spanned<String>>,
    #[serde(default)]
    availability_zones: Vec<Spanned<String>>,
    #[serde(default)]
    instances: Vec<Spanned<String>>,
    #[serde(default)]
    exclude_instances: Vec<Spanned<String>>,
    #[serde(default)]
    include_tags: Vec<Spanned<String>>,
    #[serde(default)]
    exclude_tags: Vec<Spanned<String>>,
    #[serde(default)]
    rds_instances: Vec<Spanned<String>>,
    #[serde(default)]
    aurora_clusters: Vec<Spanned<String>>,
    #[serde(default)]
    exclude_databases: Vec<Spanned<String>>,
    ec2: Option<bool>,
    rds: Option<bool>,
    aurora: Option<bool>,
}

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
    /// regions (see [`crate::connections`]).
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
}

impl Accounts {
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
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
}

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
    fn from_raw(r: &RawRetention) -> Self {
        Retention {
            days: r.days,
            count: r.count,
            daily: r.daily,
            weekly: r.weekly,
            monthly: r.monthly,
            allow_delete_last: r.allow_delete_last,
        }
    }
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

/// Default time a job waits for snapshots to complete.
pub const DEFAULT_WAIT_TIMEOUT_MINUTES: u32 = 240;

// ---------------------------------------------------------------- checks

/// AWS region names: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-4`, `cn-north-1`.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() < 3 || parts.len() > 4 {
        return false;
    }
    let (prefix, rest) = parts.split_at(parts.len() - 2);
    let dir = rest[0];
    let num = rest[1];
    const DIRECTIONS: [&str; 11] = [
        "east",
        "west",
        "north",
        "south",
        "central",
        "northeast",
        "southeast",
        "northwest",
        "southwest",
        "isob",
        "iso",
    ];
    prefix.iter().all(|p| {
        p.len() >= 2 && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_lowercase()) || *p == "gov"
    }) && DIRECTIONS.contains(&dir)
        && !num.is_empty()
        && num.len() <= 2
        && num.bytes().all(|b| b.is_ascii_digit())
}

/// An availability-zone name belongs to a region: `us-east-1a` to `us-east-1`.
pub fn az_region(az: &str) -> Option<&str> {
    let region = az.trim_end_matches(|c: char| c.is_ascii_lowercase());
    (region.len() < az.len() && is_region(region)).then_some(region)
}

fn line_of(src: &str, span: &Range<usize>) -> usize {
    src[..span.start.min(src.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

struct Ctx<'a> {
    file: &'a Path,
    src: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: &Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: line_of(self.src, span),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn parse_error(&self, e: toml::de::Error) -> ConfigError {
        let line = e.span().map(|s| line_of(self.src, &s)).unwrap_or(1);
        // toml's message repeats the source excerpt; keep the first line only.
        let message = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string();
        // A wrong type or value names no key; the line it points at does.
        let key = unknown_field(&message)
            .or_else(|| {
                let span = e.span()?;
                let start = self.src[..span.start.min(self.src.len())]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let line = self.src[start..].lines().next()?;
                let (k, _) = line.split_once('=')?;
                Some(k.trim().to_string())
            })
            .unwrap_or_else(|| "(toml)".to_string());
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            key,
            message,
        }
    }

    fn region(&self, r: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        if is_region(r.get_ref()) {
            Ok(r.get_ref().clone())
        } else {
            Err(self.err(
                &r.span(),
                key,
                format!(
                    "`{}` is not an AWS region name (e.g. us-east-1)",
                    r.get_ref()
                ),
            ))
        }
    }

    fn session(&self, d: &Option<Spanned<u32>>, key: &str, max: u32) -> Result<u32, ConfigError> {
        match d {
            None => Ok(DEFAULT_SESSION_SECONDS.min(max)),
            Some(d) => {
                let v = *d.get_ref();
                if (MIN_SESSION_SECONDS..=max).contains(&v) {
                    Ok(v)
                } else {
                    Err(self.err(
                        &d.span(),
                        key,
                        format!("{v} s is outside STS AssumeRole's {MIN_SESSION_SECONDS}–{max} s"),
                    ))
                }
            }
        }
    }
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn unique<'a>(
    ctx: &Ctx<'_>,
    items: impl Iterator<Item = &'a Spanned<String>>,
    key: &str,
) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for item in items {
        if !seen.insert(item.get_ref().as_str()) {
            return Err(ctx.err(
                &item.span(),
                key,
                format!("duplicate name `{}`", item.get_ref()),
            ));
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        key: "(file)".into(),
        message: format!("cannot read: {e}"),
    })
}

// ---------------------------------------------------------------- accounts

/// Reads and checks an accounts file.
///
/// # Errors
/// A [`ConfigError`] naming file, line and key for the first problem found.
pub fn load_accounts(path: &Path) -> Result<Accounts, ConfigError> {
    parse_accounts(path, &read(path)?)
}

pub fn parse_accounts(path: &Path, src: &str) -> Result<Accounts, ConfigError> {
    let ctx = Ctx { file: path, src };
    let raw: RawAccounts = toml::from_str(src).map_err(|e| ctx.parse_error(e))?;
    let admin_raw = raw.admin.get_ref();
    let admin_role = match &admin_raw.role_arn {
        Some(a) => Some(
            a.get_ref()
                .parse::<RoleArn>()
                .map_err(|m| ctx.err(&a.span(), "admin.role-arn", m))?,
        ),
        None => None,
    };
    let region = match &admin_raw.region {
        Some(r) => ctx.region(r, "admin.region")?,
        None => "us-east-1".to_string(),
    };
    let admin = Admin {
        profile: admin_raw.profile.clone(),
        external_id: admin_raw.external_id.clone(),
        session_seconds: ctx.session(
            &admin_raw.session_duration,
            "admin.session-duration",
            MAX_SESSION_SECONDS,
        )?,
        role_arn: admin_role,
        region,
        max_calls_in_flight: match &admin_raw.max_calls_in_flight {
            None => crate::connections::DEFAULT_CALLS_IN_FLIGHT,
            Some(n) => match usize::try_from(*n.get_ref()) {
                Ok(v) if (1..=4096).contains(&v) => v,
                _ => {
                    return Err(ctx.err(
                        &n.span(),
                        "admin.max-calls-in-flight",
                        format!("{} is outside 1–4096", n.get_ref()),
                    ))
                }
            },
        },
    };
    unique(
        &ctx,
        raw.tenant.iter().map(|t| &t.get_ref().name),
        "tenant.name",
    )?;
    // Tenant sessions chained through an admin role are capped at one hour by AWS.
    let tenant_max = if admin.role_arn.is_some() {
        MAX_CHAINED_SESSION_SECONDS
    } else {
        MAX_SESSION_SECONDS
    };
    let mut tenants = Vec::new();
    for t in &raw.tenant {
        let t = t.get_ref();
        let name = t.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ctx.err(
                &t.name.span(),
                "tenant.name",
                format!("`{name}`: use letters, digits, '-' and '_'"),
            ));
        }
        let role_arn = t
            .role_arn
            .get_ref()
            .parse::<RoleArn>()
            .map_err(|m| ctx.err(&t.role_arn.span(), "tenant.role-arn", m))?;
        let regions = t
            .regions
            .iter()
            .map(|r| ctx.region(r, "tenant.regions"))
            .collect::<Result<Vec<_>, _>>()?;
        unique(&ctx, t.regions.iter(), "tenant.regions")?;
        tenants.push(Tenant {
            name: name.clone(),
            role_arn,
            external_id: t.external_id.clone(),
            regions,
            session_seconds: ctx.session(
                &t.session_duration,
                "tenant.session-duration",
                tenant_max,
            )?,
        });
    }
    Ok(Accounts { admin, tenants })
}

// ---------------------------------------------------------------- plans

/// A plan file and the accounts file it refers to.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub plan: Plan,
    pub accounts: Accounts,
    pub accounts_path: PathBuf,
}

/// Reads a plan, then its accounts file (`accounts_override`, else the plan's
/// `accounts` key relative to the plan, else `accounts.toml` beside it), and
/// checks every tenant reference.
///
/// # Errors
/// A [`ConfigError`] naming file, line and key for the first problem found.
pub fn load_plan(path: &Path, accounts_override: Option<&Path>) -> Result<Loaded, ConfigError> {
    let src = read(path)?;
    let (plan, accounts_key) = parse_plan_only(path, &src)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let accounts_path = match (accounts_override, accounts_key) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(rel)) => dir.join(rel),
        (None, None) => dir.join("accounts.toml"),
    };
    let accounts = load_accounts(&accounts_path)?;
    check_tenants(path, &src, &plan, &accounts)?;
    Ok(Loaded {
        plan,
        accounts,
        accounts_path,
    })
}

/// Parses and checks a plan file on its own (no tenant reference check).
/// Returns the plan and its `accounts` key.
pub fn parse_plan_only(path: &Path, src: &str) -> Result<(Plan, Option<String>), ConfigError> {
    let ctx = Ctx { file: path, src };
    let raw: RawPlanFile = toml::from_str(src).map_err(|e| ctx.parse_error(e))?;
    let p = raw.plan.get_ref();
    let name = p.name.get_ref().clone();
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_whitespace()) {
        return Err(ctx.err(
            &p.name.span(),
            "plan.name",
            "a plan name is 1–64 characters without spaces",
        ));
    }
    let method = match &p.method {
        None => Method::SnapshotSet,
        Some(m) => match m.get_ref().as_str() {
            "snapshot-set" => Method::SnapshotSet,
            "ami" => Method::Ami,
            other => {
                return Err(ctx.err(
                    &m.span(),
                    "plan.method",
                    format!("`{other}`: expected \"snapshot-set\" or \"ami\""),
                ))
            }
        },
    };
    let wait_timeout_minutes = match &p.wait_timeout_minutes {
        None => DEFAULT_WAIT_TIMEOUT_MINUTES,
        Some(w) if *w.get_ref() == 0 => {
            return Err(ctx.err(&w.span(), "plan.wait-timeout-minutes", "must be at least 1"))
        }
        Some(w) => *w.get_ref(),
    };
    let schedule = match &raw.schedule {
        None => None,
        Some(s) => Some(parse_schedule(&ctx, s.get_ref())?),
    };
    let retention = Retention::from_raw(&raw.retention);
    let mut copies = Vec::new();
    let mut copy_regions = BTreeSet::new();
    for c in &raw.copy {
        let c = c.get_ref();
        let region = ctx.region(&c.region, "copy.region")?;
        if !copy_regions.insert(region.clone()) {
            return Err(ctx.err(
                &c.region.span(),
                "copy.region",
                format!("duplicate copy region `{region}`"),
            ));
        }
        copies.push(CopyRule {
            region,
            retention: c
                .retention
                .as_ref()
                .map(Retention::from_raw)
                .unwrap_or_else(|| retention.clone()),
            kms_key_id: c.kms_key_id.clone(),
            lock: match &c.lock {
                Some(l) => Some(parse_lock(&ctx, l, "copy.lock")?),
                None => None,
            },
        });
    }
    let lock = match &raw.lock {
        Some(l) => Some(parse_lock(&ctx, l, "lock")?),
        None => None,
    };
    if raw.group.is_empty() {
        return Err(ctx.err(
            &raw.plan.span(),
            "group",
            "a plan needs at least one [[group]] saying what to protect",
        ));
    }
    unique(
        &ctx,
        raw.group.iter().map(|g| &g.get_ref().name),
        "group.name",
    )?;
    let mut groups = Vec::new();
    for g in &raw.group {
        groups.push(parse_group(&ctx, g)?);
    }
    Ok((
        Plan {
            name,
            id: *p.id.get_ref(),
            description: p.description.clone(),
            method,
            wait_timeout_minutes,
            schedule,
            retention,
            copies,
            groups,
            lock,
            source: path.to_path_buf(),
        },
        raw.accounts,
    ))
}

fn parse_schedule(ctx: &Ctx<'_>, s: &RawSchedule) -> Result<Schedule, ConfigError> {
    let source = s.cron.get_ref().trim().to_string();
    let fields = source.split_whitespace().count();
    // Operators write 5-field crontab lines; the cron crate wants seconds first.
    let cron = match fields {
        5 => {
            let f: Vec<&str> = source.split_whitespace().collect();
            let dow =
                crontab_weekdays(f[4]).map_err(|m| ctx.err(&s.cron.span(), "schedule.cron", m))?;
            format!("0 {} {} {} {} {dow}", f[0], f[1], f[2], f[3])
        }
        6 | 7 => source.clone(),
        _ => {
            return Err(ctx.err(
                &s.cron.span(),
                "schedule.cron",
                format!("`{source}`: expected 5 fields (minute hour day month weekday)"),
            ))
        }
    };
    if fields == 5 {
        let f: Vec<&str> = source.split_whitespace().collect();
        // Crontab runs when either day field matches, the cron crate only when
        // both do: refuse the ambiguous form instead of running on other days.
        if f[2] != "*" && f[2] != "?" && f[4] != "*" && f[4] != "?" {
            return Err(ctx.err(
                &s.cron.span(),
                "schedule.cron",
                format!("`{source}` restricts both day of month and weekday; use one of them (the other `*`)"),
            ));
        }
        if let Some(why) = crontab_range_error(&source) {
            return Err(ctx.err(
                &s.cron.span(),
                "schedule.cron",
                format!("`{source}`: {why}"),
            ));
        }
    }
    // The crate's own message repeats its seconds-first form of the line; say
    // only what the operator wrote.
    cron::Schedule::from_str(&cron).map_err(|_| {
        ctx.err(
            &s.cron.span(),
            "schedule.cron",
            format!("`{source}` is not a valid cron expression (minute hour day month weekday)"),
        )
    })?;
    let timezone = match &s.timezone {
        None => chrono_tz::UTC,
        Some(tz) => tz.get_ref().parse::<chrono_tz::Tz>().map_err(|_| {
            ctx.err(
                &tz.span(),
                "schedule.timezone",
                format!(
                    "`{}` is not an IANA time zone (e.g. Europe/Berlin)",
                    tz.get_ref()
                ),
            )
        })?,
    };
    Ok(Schedule {
        cron,
        cron_source: source,
        timezone,
    })
}

/// Out-of-range numbers in the first four fields of a crontab line.
fn crontab_range_error(line: &str) -> Option<String> {
    const FIELDS: [(&str, u32, u32); 4] = [
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
    ];
    for (field, (name, lo, hi)) in line.split_whitespace().zip(FIELDS) {
        for part in field.split(',') {
            let range = part.split('/').next().unwrap_or_default();
            for n in range.split('-') {
                if let Ok(v) = n.parse::<u32>() {
                    if v < lo || v > hi {
                        return Some(format!("{name} {v} is outside {lo}–{hi}"));
                    }
                }
            }
        }
    }
    None
}

/// Crontab numbers weekdays 0–7 with 0 and 7 both Sunday; the `cron` crate
/// numbers them 1–7 from Sunday. Converts the numbers of a crontab weekday
/// field (lists, ranges, steps; names pass through unchanged).
pub fn crontab_weekdays(field: &str) -> Result<String, String> {
    let num = |t: &str| -> Result<Option<u32>, String> {
        if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
            let n: u32 = t.parse().map_err(|_| format!("weekday `{t}`"))?;
            if n > 7 {
                return Err(format!("weekday {n} is not 0–7 (0 and 7 are Sunday)"));
            }
            Ok(Some(n))
        } else {
            Ok(None)
        }
    };
    let mut out = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (r, Some(st)),
            None => (part, None),
        };
        let converted = match range.split_once('-') {
            Some((a, b)) => match (num(a)?, num(b)?) {
                (Some(a), Some(7)) if step.is_none() => {
                    // `5-7` (Friday to Sunday): Friday–Saturday plus Sunday.
                    let first = a % 7 + 1;
                    out.push(if first == 7 {
                        "7".to_string()
                    } else {
                        format!("{first}-7")
                    });
                    "1".to_string()
                }
                (Some(a), Some(b)) => format!("{}-{}", a % 7 + 1, if b == 7 { 7 } else { b + 1 }),
                _ => range.to_string(),
            },
            None => match num(range)? {
                Some(n) => (n % 7 + 1).to_string(),
                None => range.to_string(),
            },
        };
        out.push(match step {
            Some(st) => format!("{converted}/{st}"),
            None => converted,
        });
    }
    Ok(out.join(","))
}

fn parse_tag_rules(
    ctx: &Ctx<'_>,
    rules: &[Spanned<String>],
    key: &str,
) -> Result<Vec<TagRule>, ConfigError> {
    rules
        .iter()
        .map(|r| {
            let s = r.get_ref();
            match s.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok(TagRule {
                    key: k.to_string(),
                    value: v.to_string(),
                }),
                _ => Err(ctx.err(
                    &r.span(),
                    key,
                    format!("`{s}`: expected KEY=VALUE (`*` matches anything)"),
                )),
            }
        })
        .collect()
}

fn parse_group(ctx: &Ctx<'_>, g: &Spanned<RawGroup>) -> Result<Group, ConfigError> {
    let span = g.span();
    let g = g.get_ref();
    if g.tenants.is_empty() {
        return Err(ctx.err(&span, "group.tenants", "a group names at least one tenant"));
    }
    unique(ctx, g.tenants.iter(), "group.tenants")?;
    let regions = if g.regions.is_empty() {
        Regions::TenantDefault
    } else if g.regions.len() == 1 && g.regions[0].get_ref() == "all" {
        Regions::AllEnabled
    } else {
        unique(ctx, g.regions.iter(), "group.regions")?;
        Regions::List(
            g.regions
                .iter()
                .map(|r| ctx.region(r, "group.regions"))
                .collect::<Result<_, _>>()?,
        )
    };
    let mut azs = Vec::new();
    for az in &g.availability_zones {
        let Some(region) = az_region(az.get_ref()) else {
            return Err(ctx.err(
                &az.span(),
                "group.availability-zones",
                format!(
                    "`{}` is not an availability zone (e.g. us-east-1a)",
                    az.get_ref()
                ),
            ));
        };
        if let Regions::List(list) = &regions {
            if !list.iter().any(|r| r == region) {
                return Err(ctx.err(
                    &az.span(),
                    "group.availability-zones",
                    format!("`{}` is not in the group's regions", az.get_ref()),
                ));
            }
        }
        azs.push(az.get_ref().clone());
    }
    let listed = g.instances.iter().map(|i| (i, "group.instances"));
    let excluded = g
        .exclude_instances
        .iter()
        .map(|i| (i, "group.exclude-instances"));
    for (i, key) in listed.chain(excluded) {
        let s = i.get_ref();
        if !(s.starts_with("i-") && s.len() > 2 && s[2..].bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(ctx.err(
                &i.span(),
                key,
                format!("`{s}` is not an EC2 instance id (i-…)"),
            ));
        }
    }
    let strings = |v: &[Spanned<String>]| v.iter().map(|s| s.get_ref().clone()).collect::<Vec<_>>();
    let rds_listed = !g.rds_instances.is_empty();
    let aurora_listed = !g.aurora_clusters.is_empty();
    Ok(Group {
        name: g.name.get_ref().clone(),
        tenants: strings(&g.tenants),
        regions,
        availability_zones: azs,
        instances: strings(&g.instances),
        exclude_instances: strings(&g.exclude_instances),
        include_tags: parse_tag_rules(ctx, &g.include_tags, "group.include-tags")?,
        exclude_tags: parse_tag_rules(ctx, &g.exclude_tags, "group.exclude-tags")?,
        rds_instances: strings(&g.rds_instances),
        aurora_clusters: strings(&g.aurora_clusters),
        exclude_databases: strings(&g.exclude_databases),
        ec2: g.ec2.unwrap_or(true),
        rds: g.rds.unwrap_or(rds_listed),
        aurora: g.aurora.unwrap_or(aurora_listed),
    })
}

fn check_tenants(
    path: &Path,
    src: &str,
    plan: &Plan,
    accounts: &Accounts,
) -> Result<(), ConfigError> {
    // Re-read the raw groups for spans; the validated plan has lost them.
    let ctx = Ctx { file: path, src };
    let raw: RawPlanFile = toml::from_str(src).map_err(|e| ctx.parse_error(e))?;
    for g in &raw.group {
        for t in &g.get_ref().tenants {
            if accounts.tenant(t.get_ref()).is_none() {
                let known: Vec<&str> = accounts.tenants.iter().map(|t| t.name.as_str()).collect();
                return Err(ctx.err(
                    &t.span(),
                    "group.tenants",
                    format!(
                        "unknown tenant `{}` (accounts file declares: {})",
                        t.get_ref(),
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    for g in &plan.groups {
        if g.regions == Regions::TenantDefault {
            for t in &g.tenants {
                let tenant = accounts.tenant(t).expect("checked above");
                if tenant.regions.is_empty() {
                    let span = raw
                        .group
                        .iter()
                        .find(|rg| rg.get_ref().name.get_ref() == &g.name)
                        .map(|rg| rg.span())
                        .unwrap_or(0..0);
                    return Err(ctx.err(
                        &span,
                        "group.regions",
                        format!(
                            "group `{}` names no regions and tenant `{t}` has no default regions",
                            g.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// What kind of file a TOML document in `plans/` is.
pub fn is_accounts_file(src: &str) -> bool {
    src.lines().any(|l| l.trim() == "[admin]")
}

fn parse_lock(ctx: &Ctx<'_>, l: &Spanned<RawLock>, key: &str) -> Result<LockRule, ConfigError> {
    let r = l.get_ref();
    let mode = match r.mode.get_ref().as_str() {
        "governance" => LockMode::Governance,
        "compliance" => LockMode::Compliance,
        other => {
            return Err(ctx.err(
                &r.mode.span(),
                &format!("{key}.mode"),
                format!("`{other}` is not a lock mode: governance or compliance"),
            ))
        }
    };
    let cool_off_hours = match &r.cool_off_hours {
        None => None,
        Some(h) if mode == LockMode::Governance => {
            return Err(ctx.err(
                &h.span(),
                &format!("{key}.cool-off-hours"),
                "a cooling-off period exists only in compliance mode",
            ))
        }
        Some(h) if !(1..=72).contains(h.get_ref()) => {
            return Err(ctx.err(
                &h.span(),
                &format!("{key}.cool-off-hours"),
                "must be 1-72 hours (AWS LockSnapshot CoolOffPeriod)",
            ))
        }
        Some(h) => Some(*h.get_ref()),
    };
    let regions = match &r.regions {
        None => None,
        Some(rs) if key != "lock" => {
            let span = rs.first().map_or(l.span(), |x| x.span());
            return Err(ctx.err(
                &span,
                &format!("{key}.regions"),
                "a copy rule's lock applies to its own region",
            ));
        }
        Some(rs) => Some(
            rs.iter()
                .map(|x| ctx.region(x, "lock.regions"))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(LockRule {
        mode,
        cool_off_hours,
        regions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNTS: &str = r#"
[admin]
region = "us-east-1"

[[tenant]]
name = "alpha"
role-arn = "arn:aws:iam::222222222222:role/vsa-role"
external-id = "x"
regions = ["us-east-1"]
"#;

    const PLAN: &str = r#"
[plan]
name = "nightly"
id = 2

[schedule]
cron = "30 1 * * *"
timezone = "Europe/Berlin"

[retention]
days = 7

[[copy]]
region = "us-west-2"

[[group]]
name = "web"
tenants = ["alpha"]
regions = ["us-east-1"]
include-tags = ["Backup=nightly"]
"#;

    fn plan_err(src: &str) -> ConfigError {
        parse_plan_only(Path::new("p.toml"), src).unwrap_err()
    }

    #[test]
    fn lock_rules_parse_and_bad_ones_are_refused() {
        let src = PLAN.replace(
            "[[copy]]\nregion = \"us-west-2\"\n",
            "[lock]\nmode = \"compliance\"\ncool-off-hours = 24\nregions = [\"us-east-1\"]\n\n[[copy]]\nregion = \"us-west-2\"\nlock = { mode = \"governance\" }\n",
        );
        let (p, _) = parse_plan_only(Path::new("p.toml"), &src).unwrap();
        let l = p.lock.as_ref().unwrap();
        assert_eq!((l.mode, l.cool_off_hours), (LockMode::Compliance, Some(24)));
        assert_eq!(l.regions.as_deref(), Some(&["us-east-1".to_string()][..]));
        assert_eq!(
            p.copies[0].lock.as_ref().unwrap().mode,
            LockMode::Governance
        );
        let (p, _) = parse_plan_only(Path::new("p.toml"), PLAN).unwrap();
        assert!(p.lock.is_none() && p.copies[0].lock.is_none());
        for (bad, key) in [
            ("[lock]\nmode = \"legal\"\n", "lock.mode"),
            (
                "[lock]\nmode = \"governance\"\ncool-off-hours = 2\n",
                "lock.cool-off-hours",
            ),
            (
                "[lock]\nmode = \"compliance\"\ncool-off-hours = 73\n",
                "lock.cool-off-hours",
            ),
            (
                "[lock]\nmode = \"compliance\"\nregions = [\"nowhere\"]\n",
                "lock.regions",
            ),
        ] {
            let e = plan_err(&format!("{PLAN}\n{bad}"));
            assert!(e.to_string().contains(key), "{bad}: {e}");
        }
    }

    fn accounts_err(src: &str) -> ConfigError {
        parse_accounts(Path::new("a.toml"), src).unwrap_err()
    }

    #[test]
    fn parses_good_files() {
        let a = parse_accounts(Path::new("a.toml"), ACCOUNTS).unwrap();
        assert_eq!(a.tenants[0].role_arn.account, "222222222222");
        assert_eq!(a.tenants[0].session_seconds, 3600);
        let (p, _) = parse_plan_only(Path::new("p.toml"), PLAN).unwrap();
        assert_eq!(p.method, Method::SnapshotSet);
        assert_eq!(p.schedule.as_ref().unwrap().cron, "0 30 1 * * *");
        assert_eq!(
            p.copies[0].retention.days,
            Some(7),
            "copy inherits retention"
        );
        assert_eq!(p.groups[0].include_tags[0].to_string(), "Backup=nightly");
        assert!(p.groups[0].ec2 && !p.groups[0].rds);
    }

    #[test]
    fn calls_in_flight_default_and_bounds() {
        let a = parse_accounts(Path::new("a.toml"), ACCOUNTS).unwrap();
        assert_eq!(
            a.admin.max_calls_in_flight,
            crate::connections::DEFAULT_CALLS_IN_FLIGHT
        );
        let set = |v: &str| {
            ACCOUNTS.replace(
                "[admin]\n",
                &format!("[admin]\nmax-calls-in-flight = {v}\n"),
            )
        };
        let a = parse_accounts(Path::new("a.toml"), &set("200")).unwrap();
        assert_eq!(a.admin.max_calls_in_flight, 200);
        for bad in ["0", "-3", "5000"] {
            let e = accounts_err(&set(bad));
            assert_eq!(e.key, "admin.max-calls-in-flight", "{bad}");
            assert_eq!(e.line, 3, "{bad}");
        }
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = plan_err(&PLAN.replace("id = 2", "id = 2\ncolour = \"red\""));
        assert_eq!(e.key, "colour");
        assert_eq!(e.line, 5);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            (
                "regions = [\"us-east-1\"]",
                "regions = [\"us-east-9x\"]",
                "group.regions",
                19,
            ),
            (
                "cron = \"30 1 * * *\"",
                "cron = \"61 1 * * *\"",
                "schedule.cron",
                7,
            ),
            (
                "cron = \"30 1 * * *\"",
                "cron = \"30 1 *\"",
                "schedule.cron",
                7,
            ),
            ("Europe/Berlin", "Mars/Olympus", "schedule.timezone", 8),
            (
                "region = \"us-west-2\"",
                "region = \"west\"",
                "copy.region",
                14,
            ),
            ("Backup=nightly", "Backup", "group.include-tags", 20),
        ];
        for (from, to, key, line) in cases {
            let e = plan_err(&PLAN.replace(from, to));
            assert_eq!((e.key.as_str(), e.line), (key, line), "{to}: {e}");
        }
    }

    #[test]
    fn duplicate_names_are_errors() {
        let twice = format!("{PLAN}\n[[group]]\nname = \"web\"\ntenants = [\"alpha\"]\n");
        assert_eq!(plan_err(&twice).key, "group.name");
        let t2 = format!(
            "{ACCOUNTS}\n[[tenant]]\nname = \"alpha\"\nrole-arn = \"arn:aws:iam::333333333333:role/r\"\n"
        );
        let e = accounts_err(&t2);
        assert_eq!((e.key.as_str(), e.line), ("tenant.name", 12));
    }

    #[test]
    fn role_arns_are_checked() {
        for bad in [
            "arn:aws:iam::22222222222:role/vsa-role",
            "arn:aws:iam::222222222222:user/bob",
            "arn:aws:s3:::bucket",
            "vsa-role",
            "arn:aws:iam::222222222222:role/",
        ] {
            let e = accounts_err(&ACCOUNTS.replace("arn:aws:iam::222222222222:role/vsa-role", bad));
            assert_eq!((e.key.as_str(), e.line), ("tenant.role-arn", 7), "{bad}");
        }
        let ok: RoleArn = "arn:aws:iam::222222222222:role/path/vsa-role"
            .parse()
            .unwrap();
        assert_eq!(ok.name, "vsa-role");
    }

    #[test]
    fn chained_sessions_are_capped_at_one_hour() {
        let src = ACCOUNTS.replace(
            "region = \"us-east-1\"",
            "region = \"us-east-1\"\nrole-arn = \"arn:aws:iam::111111111111:role/vsa-assume-role\"",
        ) + "session-duration = 7200\n";
        assert_eq!(accounts_err(&src).key, "tenant.session-duration");
        let unchained = ACCOUNTS.to_string() + "session-duration = 7200\n";
        assert!(parse_accounts(Path::new("a"), &unchained).is_ok());
    }

    #[test]
    fn regions_and_azs() {
        for r in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-4",
            "us-gov-west-1",
            "cn-north-1",
        ] {
            assert!(is_region(r), "{r}");
        }
        for r in [
            "us-east",
            "useast1",
            "us-east-1a",
            "US-EAST-1",
            "all",
            "us-middle-1",
        ] {
            assert!(!is_region(r), "{r}");
        }
        assert_eq!(az_region("us-east-1a"), Some("us-east-1"));
        assert_eq!(az_region("us-east-1"), None);
    }

    #[test]
    fn crontab_weekdays_become_cron_crate_weekdays() {
        let cases = [
            ("1-5", "2-6"),
            ("0", "1"),
            ("7", "1"),
            ("6", "7"),
            ("0,6", "1,7"),
            ("5-7", "6-7,1"),
            ("6-7", "7,1"),
            ("*", "*"),
            ("*/2", "*/2"),
            ("MON-FRI", "MON-FRI"),
            ("1-5/2", "2-6/2"),
        ];
        for (crontab, want) in cases {
            assert_eq!(crontab_weekdays(crontab).unwrap(), want, "{crontab}");
        }
        assert!(crontab_weekdays("8").is_err());
        let both = PLAN.replace("cron = \"30 1 * * *\"", "cron = \"0 0 1 * MON\"");
        assert!(plan_err(&both)
            .message
            .contains("both day of month and weekday"));
        // Weekdays 1-5 are Monday to Friday, as crontab means.
        let src = PLAN.replace("cron = \"30 1 * * *\"", "cron = \"0 2 * * 1-5\"");
        let (p, _) = parse_plan_only(Path::new("p.toml"), &src).unwrap();
        let sched = cron::Schedule::from_str(&p.schedule.unwrap().cron).unwrap();
        use chrono::{Datelike, TimeZone};
        let sat = chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
            .unwrap();
        let next = sched.after(&sat).next().unwrap();
        assert_eq!(next.weekday(), chrono::Weekday::Mon, "{next}");
    }

    #[test]
    fn wrong_types_name_their_key_and_cron_errors_stay_on_one_line() {
        let e = plan_err(&PLAN.replace("id = 2", "id = \"2\""));
        assert_eq!((e.key.as_str(), e.line), ("id", 4), "{e}");
        let e = plan_err(&PLAN.replace("30 1 * * *", "61 1 * * *"));
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
        assert!(
            e.message
                .contains("`61 1 * * *`: minute 61 is outside 0–59"),
            "{e}"
        );
        assert!(!e.message.contains("0 61"), "no internal form: {e}");
        let unknown_line = ConfigError {
            file: "a.toml".into(),
            line: 0,
            key: "k".into(),
            message: "m".into(),
        };
        assert_eq!(unknown_line.to_string(), "a.toml: k: m");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("db-*", "db-orders"));
        assert!(glob_match("*-prod", "db-prod"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("db-*", "cache-1"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn unknown_tenant_is_reported_with_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("accounts.toml"), ACCOUNTS).unwrap();
        let p = dir.path().join("p.toml");
        std::fs::write(
            &p,
            PLAN.replace("tenants = [\"alpha\"]", "tenants = [\"zeta\"]"),
        )
        .unwrap();
        let e = load_plan(&p, None).unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("group.tenants", 18));
        assert!(
            e.message.contains("zeta") && e.message.contains("alpha"),
            "{e}"
        );
    }
}
