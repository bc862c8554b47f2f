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

/// A configuration error: file, line and key, then what is wrong
/// (`FILE:LINE: KEY: message`). Without a line (0) it reads `FILE: KEY: message`,
/// without a key (empty) `FILE:LINE: message` (a file that is not TOML text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{message}", location(file, *line), if key.is_empty() { String::new() } else { format!("{key}: ") })]
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
/// Longest tenant name (it is part of the STS session name, 64 characters).
pub const MAX_TENANT_NAME: usize = 40;

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
    profile: Option<Spanned<String>>,
    role_arn: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    session_duration: Option<Spanned<u32>>,
    max_calls_in_flight: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTenant {
    name: Spanned<String>,
    role_arn: Spanned<String>,
    external_id: Option<Spanned<String>>,
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
    retention: Option<Spanned<RawRetention>>,
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
    description: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSchedule {
    cron: Spanned<String>,
    #[serde(default)]
    timezone: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRetention {
    days: Option<Spanned<u32>>,
    count: Option<Spanned<u32>>,
    daily: Option<Spanned<u32>>,
    weekly: Option<Spanned<u32>>,
    monthly: Option<Spanned<u32>>,
    #[serde(default)]
    allow_delete_last: Option<Spanned<bool>>,
    /// `"I understand"`: the rules may leave a source with no recovery point.
    allow_empty: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCopy {
    region: Spanned<String>,
    #[serde(default)]
    retention: Option<Spanned<RawRetention>>,
    kms_key_id: Option<Spanned<String>>,
    /// EBS Snapshot Lock of the copies in this region (see lock.rs).
    #[serde(default)]
    lock: Option<Spanned<RawLock>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawGroup {
    name: Spanned<String>,
    tenants: Vec<Spanned<String>>,
    /// Region names, or `["all"]` for every region enabled in the account;
    /// absent: the tenant's default regions (an empty list is refused).
    #[serde(default)]
    regions: Option<Spanned<Vec<Spanned<String>>>>,
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
        let v = |x: &Option<Spanned<u32>>| x.as_ref().map(|x| *x.get_ref());
        Retention {
            days: v(&r.days),
            count: v(&r.count),
            daily: v(&r.daily),
            weekly: v(&r.weekly),
            monthly: v(&r.monthly),
            allow_delete_last: r.allow_delete_last.as_ref().is_some_and(|a| *a.get_ref()),
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

/// A control character (NUL, newline, escape…) in `s`, said without printing it.
pub fn control_problem(s: &str) -> Option<String> {
    s.chars().find(|c| c.is_control()).map(|c| {
        format!(
            "contains the control character U+{:04X}; remove it",
            c as u32
        )
    })
}

/// Longest plan description (an EC2 snapshot description holds 255).
pub const MAX_DESCRIPTION_CHARS: usize = 255;

/// Longest tag value AWS accepts, in Unicode characters.
pub const MAX_TAG_VALUE_CHARS: usize = 256;

/// Why `s` cannot be an AWS tag value: at most 256 Unicode characters of
/// letters, digits, spaces and `_ . : / = + - @`, not starting with the
/// reserved `aws:` (EC2 and RDS tag restrictions).
pub fn tag_value_problem(s: &str) -> Option<String> {
    if let Some(p) = control_problem(s) {
        return Some(p);
    }
    let n = s.chars().count();
    if n > MAX_TAG_VALUE_CHARS {
        return Some(format!(
            "{n} characters; AWS tag values hold at most {MAX_TAG_VALUE_CHARS}"
        ));
    }
    static NOT_ALLOWED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = NOT_ALLOWED
        .get_or_init(|| regex::Regex::new(r"[^\p{L}\p{Z}\p{N}_.:/=+\-@]").expect("valid regex"));
    if let Some(m) = re.find(s) {
        return Some(format!(
            "`{s}`: `{}` is not allowed in an AWS tag value (letters, digits, spaces and _ . : / = + - @)",
            m.as_str()
        ));
    }
    if s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Some(format!("`{s}`: the prefix `aws:` is reserved by AWS"));
    }
    None
}

/// Why `s` cannot be an STS ExternalId: 2–1224 characters of `[\w+=,.@:/-]`.
pub fn external_id_problem(s: &str) -> Option<String> {
    if let Some(p) = control_problem(s) {
        return Some(p);
    }
    if s.is_empty() {
        return Some(
            "empty; AssumeRole needs 2–1224 characters (or leave the key out when the role's trust policy asks for no ExternalId)"
                .into(),
        );
    }
    let n = s.chars().count();
    if !(2..=1224).contains(&n) {
        return Some(format!("{n} character(s); an ExternalId has 2–1224"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(*c)))
    {
        return Some(format!(
            "`{s}`: `{c}` is not allowed in an ExternalId (letters, digits and _ + = , . @ : / -)"
        ));
    }
    None
}

/// Why `s` cannot name a KMS key for a copy into `region`: a key id (UUID, or
/// `mrk-` and 32 hex digits for a multi-Region key), a key ARN, `alias/NAME`
/// or an alias ARN; an ARN must be in `region`.
pub fn kms_key_problem(s: &str, region: &str) -> Option<String> {
    if let Some(p) = control_problem(s) {
        return Some(p);
    }
    let is_key_id = |k: &str| {
        let uuid = k.len() == 36
            && k.char_indices().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        let mrk = k
            .strip_prefix("mrk-")
            .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        uuid || mrk
    };
    let is_alias = |a: &str| {
        a.strip_prefix("alias/").is_some_and(|n| {
            !n.is_empty()
                && a.len() <= 256
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c))
        })
    };
    let bad = || {
        Some(format!(
            "`{s}` is not a KMS key: expected a key id (1234abcd-12ab-34cd-56ef-1234567890ab), a key ARN, alias/NAME or an alias ARN"
        ))
    };
    if let Some(rest) = s.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5
            || !matches!(parts[0], "aws" | "aws-cn" | "aws-us-gov")
            || parts[1] != "kms"
            || !is_region(parts[2])
            || parts[3].len() != 12
            || !parts[3].bytes().all(|b| b.is_ascii_digit())
        {
            return bad();
        }
        let resource = parts[4];
        let ok = resource.strip_prefix("key/").is_some_and(is_key_id) || is_alias(resource);
        if !ok {
            return bad();
        }
        if parts[2] != region {
            return Some(format!(
                "`{s}` is a key in {}; a copy to {region} needs a key of {region}",
                parts[2]
            ));
        }
        return None;
    }
    if is_key_id(s) || is_alias(s) {
        None
    } else {
        bad()
    }
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
        // The line the error points at, and the table it is in.
        let at = e.span().map(|span| {
            let start = self.src[..span.start.min(self.src.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            self.src[start..].lines().next().unwrap_or_default().trim()
        });
        if let Some(field) = missing_field(&message) {
            // The span is the table that lacks the key, or the whole document.
            let whole = e.span().is_none_or(|sp| {
                sp.is_empty() || sp.start == 0 && sp.end >= self.src.trim_end().len()
            });
            let table = at
                .filter(|l| !whole && l.starts_with('['))
                .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
            let (key, line) = match table {
                Some(t) => (format!("{t}.{field}"), line),
                None => (field.to_string(), 0),
            };
            let what = match field {
                "admin" => "missing [admin] table (where the agent's own credentials come from; an empty [admin] uses the default AWS chain)".to_string(),
                "plan" => "missing [plan] table (name and id of the plan)".to_string(),
                _ => "missing; this key is required".to_string(),
            };
            return ConfigError {
                file: self.file.to_path_buf(),
                line,
                key,
                message: what,
            };
        }
        // A wrong type or value names no key; the line it points at does.
        let key = unknown_field(&message).or_else(|| {
            let (k, _) = at?.split_once('=')?;
            let k = k.trim();
            (!k.is_empty() && !k.starts_with('[')).then(|| k.to_string())
        });
        match key {
            Some(key) => ConfigError {
                file: self.file.to_path_buf(),
                line,
                key,
                message,
            },
            None => ConfigError {
                file: self.file.to_path_buf(),
                line,
                key: String::new(),
                message: format!("not valid TOML: {message}"),
            },
        }
    }

    /// `problem` as an error at `span`.
    fn check(
        &self,
        span: &Range<usize>,
        key: &str,
        problem: Option<String>,
    ) -> Result<(), ConfigError> {
        match problem {
            Some(p) => Err(self.err(span, key, p)),
            None => Ok(()),
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

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
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

/// Largest configuration file read (plans and accounts files are a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

fn file_error(path: &Path, line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: path.to_path_buf(),
        line,
        key: String::new(),
        message: message.into(),
    }
}

/// Reads a configuration file: a regular file of at most [`MAX_CONFIG_BYTES`]
/// of UTF-8 text. A directory, FIFO, socket or device is refused without being
/// opened for reading, and the read is bounded whatever the file turns into.
///
/// # Errors
/// `FILE: message` (or `FILE:LINE: message` for a bad byte).
pub fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let meta =
        std::fs::metadata(path).map_err(|e| file_error(path, 0, format!("cannot read: {e}")))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(file_error(
            path,
            0,
            format!("is {what}; a configuration file must be a regular file"),
        ));
    }
    let too_big = || {
        file_error(
            path,
            0,
            format!(
                "is larger than {} MiB; a configuration file is a few KiB of TOML",
                MAX_CONFIG_BYTES / (1024 * 1024)
            ),
        )
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_big());
    }
    let file =
        std::fs::File::open(path).map_err(|e| file_error(path, 0, format!("cannot read: {e}")))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(path, 0, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big());
    }
    let line_at = |at: usize| bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(file_error(
            path,
            line_at(at),
            "not a text file (a NUL byte); expected TOML",
        ));
    }
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(file_error(
            path,
            line_at(e.valid_up_to()),
            "not UTF-8 text; a configuration file is TOML in UTF-8",
        ));
    }
    Ok(String::from_utf8(bytes).unwrap_or_default())
}

/// Whether a document holds nothing but blank lines and comments.
fn is_blank(src: &str) -> bool {
    src.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'))
}

// ---------------------------------------------------------------- accounts

/// Reads and checks an accounts file.
///
/// # Errors
/// A [`ConfigError`] naming file, line and key for the first problem found.
pub fn load_accounts(path: &Path) -> Result<Accounts, ConfigError> {
    parse_accounts(path, &read_config_file(path)?)
}

pub fn parse_accounts(path: &Path, src: &str) -> Result<Accounts, ConfigError> {
    let ctx = Ctx { file: path, src };
    if is_blank(src) {
        return Err(file_error(
            path,
            0,
            "empty (only blank lines and comments); an accounts file needs an [admin] table and a [[tenant]] per tenant account",
        ));
    }
    let raw: RawAccounts = toml::from_str(src).map_err(|e| ctx.parse_error(e))?;
    let admin_raw = raw.admin.get_ref();
    let admin_role = match &admin_raw.role_arn {
        Some(a) => {
            ctx.check(&a.span(), "admin.role-arn", control_problem(a.get_ref()))?;
            Some(
                a.get_ref()
                    .parse::<RoleArn>()
                    .map_err(|m| ctx.err(&a.span(), "admin.role-arn", m))?,
            )
        }
        None => None,
    };
    let region = match &admin_raw.region {
        Some(r) => ctx.region(r, "admin.region")?,
        None => "us-east-1".to_string(),
    };
    if let Some(p) = &admin_raw.profile {
        ctx.check(&p.span(), "admin.profile", control_problem(p.get_ref()))?;
    }
    if let Some(x) = &admin_raw.external_id {
        ctx.check(
            &x.span(),
            "admin.external-id",
            external_id_problem(x.get_ref()),
        )?;
    }
    let admin = Admin {
        profile: admin_raw.profile.as_ref().map(|p| p.get_ref().clone()),
        external_id: admin_raw.external_id.as_ref().map(|x| x.get_ref().clone()),
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
    let mut tenants: Vec<Tenant> = Vec::new();
    for t in &raw.tenant {
        let t = t.get_ref();
        let name = t.name.get_ref();
        ctx.check(&t.name.span(), "tenant.name", control_problem(name))?;
        if name.is_empty()
            || name.len() > MAX_TENANT_NAME
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ctx.err(
                &t.name.span(),
                "tenant.name",
                format!("`{name}`: use 1–{MAX_TENANT_NAME} letters, digits, '-' and '_'"),
            ));
        }
        ctx.check(
            &t.role_arn.span(),
            "tenant.role-arn",
            control_problem(t.role_arn.get_ref()),
        )?;
        let role_arn = t
            .role_arn
            .get_ref()
            .parse::<RoleArn>()
            .map_err(|m| ctx.err(&t.role_arn.span(), "tenant.role-arn", m))?;
        // Two names for one role would back the same account up twice, and
        // prune each other's points as "not this plan's".
        if let Some(other) = tenants.iter().find(|o| {
            o.role_arn.account == role_arn.account
                && o.role_arn.name.eq_ignore_ascii_case(&role_arn.name)
        }) {
            return Err(ctx.err(
                &t.role_arn.span(),
                "tenant.role-arn",
                format!(
                    "`{role_arn}` is already the role of tenant `{}`; one tenant name per account role",
                    other.name
                ),
            ));
        }
        if let Some(x) = &t.external_id {
            ctx.check(
                &x.span(),
                "tenant.external-id",
                external_id_problem(x.get_ref()),
            )?;
        }
        let regions = t
            .regions
            .iter()
            .map(|r| ctx.region(r, "tenant.regions"))
            .collect::<Result<Vec<_>, _>>()?;
        unique(&ctx, t.regions.iter(), "tenant.regions")?;
        tenants.push(Tenant {
            name: name.clone(),
            role_arn,
            external_id: t.external_id.as_ref().map(|x| x.get_ref().clone()),
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
    let src = read_config_file(path)?;
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
    if is_blank(src) {
        return Err(file_error(
            path,
            0,
            "empty (only blank lines and comments); a plan needs a [plan] table with name and id, and at least one [[group]]",
        ));
    }
    let raw: RawPlanFile = toml::from_str(src).map_err(|e| ctx.parse_error(e))?;
    let p = raw.plan.get_ref();
    let name = p.name.get_ref().clone();
    // The name is the value of the `_GX_PLAN_` tag on everything the plan makes.
    ctx.check(&p.name.span(), "plan.name", tag_value_problem(&name))?;
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_whitespace) {
        return Err(ctx.err(
            &p.name.span(),
            "plan.name",
            "a plan name is 1–64 characters without spaces",
        ));
    }
    if let Some(d) = &p.description {
        // Free text for people, kept to what an EC2 or RDS description takes.
        ctx.check(&d.span(), "plan.description", control_problem(d.get_ref()))?;
        let n = d.get_ref().chars().count();
        if n > MAX_DESCRIPTION_CHARS {
            return Err(ctx.err(
                &d.span(),
                "plan.description",
                format!("{n} characters; at most {MAX_DESCRIPTION_CHARS}"),
            ));
        }
    }
    if let Some(a) = &raw.accounts {
        if let Some(pr) = control_problem(a) {
            return Err(ctx.err(&(0..0), "accounts", pr));
        }
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
    let retention = match &raw.retention {
        Some(r) => {
            check_retention(&ctx, r, "retention")?;
            Retention::from_raw(r.get_ref())
        }
        None => Retention::default(),
    };
    let mut copies = Vec::new();
    let mut copy_regions = BTreeSet::new();
    for c in &raw.copy {
        let c = c.get_ref();
        let region = ctx.region(&c.region, "copy.region")?;
        if let Some(k) = &c.kms_key_id {
            ctx.check(
                &k.span(),
                "copy.kms-key-id",
                kms_key_problem(k.get_ref(), &region),
            )?;
        }
        if let Some(r) = &c.retention {
            check_retention(&ctx, r, "copy.retention")?;
        }
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
                .map(|r| Retention::from_raw(r.get_ref()))
                .unwrap_or_else(|| retention.clone()),
            kms_key_id: c.kms_key_id.as_ref().map(|k| k.get_ref().clone()),
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
        let group = parse_group(&ctx, g)?;
        // A point is copied to every copy region but its own: with a single
        // copy region that is also a source region, the points made there
        // get no copy at all ("0 of 0 items"). Two regions copied into each
        // other are fine.
        if let (Regions::List(list), [only]) = (&group.regions, raw.copy.as_slice()) {
            let region = only.get_ref().region.get_ref();
            if list.contains(region) {
                return Err(ctx.err(
                    &only.get_ref().region.span(),
                    "copy.region",
                    format!(
                        "`{region}` is a source region of group `{}` and the plan's only copy region: {}",
                        group.name,
                        no_copy_there(region)
                    ),
                ));
            }
        }
        groups.push(group);
    }
    Ok((
        Plan {
            name,
            id: *p.id.get_ref(),
            description: p.description.as_ref().map(|d| d.get_ref().clone()),
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

/// The words that let a retention leave a source with no recovery point.
pub const ALLOW_EMPTY: &str = "I understand";

/// Refuses keep rules that can leave a live source with no recovery point
/// (in its region or a copy region) unless the table says
/// `allow-empty = "I understand"`: `days = 0`, `count = 0` with
/// `allow-delete-last = true`, and rules that are all 0.
fn check_retention(
    ctx: &Ctx<'_>,
    r: &Spanned<RawRetention>,
    table: &str,
) -> Result<(), ConfigError> {
    let raw = r.get_ref();
    if let Some(a) = &raw.allow_empty {
        if a.get_ref() != ALLOW_EMPTY {
            return Err(ctx.err(
                &a.span(),
                &format!("{table}.allow-empty"),
                format!("must be exactly \"{ALLOW_EMPTY}\" (or left out)"),
            ));
        }
        return Ok(());
    }
    let hint =
        format!("; if that is what you want, add allow-empty = \"{ALLOW_EMPTY}\" to [{table}]");
    if let Some(d) = raw.days.as_ref().filter(|d| *d.get_ref() == 0) {
        return Err(ctx.err(
            &d.span(),
            &format!("{table}.days"),
            format!("days = 0 keeps no point by age: the next prune deletes every copy in a copy region, and all but the newest point of each live source{hint}"),
        ));
    }
    let allow_last = raw.allow_delete_last.as_ref().filter(|a| *a.get_ref());
    if let (Some(c), Some(_)) = (raw.count.as_ref().filter(|c| *c.get_ref() == 0), allow_last) {
        return Err(ctx.err(
            &c.span(),
            &format!("{table}.count"),
            format!("count = 0 with allow-delete-last = true lets prune delete the last recovery point of every source{hint}"),
        ));
    }
    let rules = [&raw.days, &raw.count, &raw.daily, &raw.weekly, &raw.monthly];
    let given: Vec<&Spanned<u32>> = rules.iter().filter_map(|r| r.as_ref()).collect();
    if !given.is_empty() && given.iter().all(|r| *r.get_ref() == 0) {
        return Err(ctx.err(
            &given[0].span(),
            table,
            format!("every keep rule is 0: the rules keep no recovery point{hint}"),
        ));
    }
    Ok(())
}

/// How far ahead a schedule must have its next run.
pub const MAX_YEARS_TO_NEXT_RUN: i64 = 5;

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
    let schedule = Schedule {
        cron,
        cron_source: source,
        timezone,
    };
    // A line that matches no date (30 February, 31 April, a past year) is
    // valid cron and never runs: refuse it rather than start silently.
    let now = chrono::Utc::now();
    let horizon = now + chrono::Duration::days(366 * MAX_YEARS_TO_NEXT_RUN);
    match crate::schedule::next_runs(&schedule, now, 1).first() {
        Some(t) if *t <= horizon => Ok(schedule),
        _ => Err(ctx.err(
            &s.cron.span(),
            "schedule.cron",
            format!(
                "`{}` never runs in the next {MAX_YEARS_TO_NEXT_RUN} years (a date that does not exist, or a year that has passed)",
                schedule.cron_source
            ),
        )),
    }
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
                Some((k, v)) if k.chars().count() > 128 || v.chars().count() > 256 => Err(ctx.err(
                    &r.span(),
                    key,
                    "an AWS tag key holds at most 128 characters and a value 256",
                )),
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
    ctx.check(
        &g.name.span(),
        "group.name",
        tag_value_problem(g.name.get_ref()),
    )?;
    if g.name.get_ref().is_empty() {
        return Err(ctx.err(&g.name.span(), "group.name", "empty; name the group"));
    }
    if g.tenants.is_empty() {
        return Err(ctx.err(&span, "group.tenants", "a group names at least one tenant"));
    }
    for t in &g.tenants {
        ctx.check(&t.span(), "group.tenants", control_problem(t.get_ref()))?;
    }
    unique(ctx, g.tenants.iter(), "group.tenants")?;
    let regions = match &g.regions {
        None => Regions::TenantDefault,
        Some(list) if list.get_ref().is_empty() => {
            return Err(ctx.err(
                &list.span(),
                "group.regions",
                "an empty list; name regions, write [\"all\"], or leave the key out for the tenants' default regions",
            ))
        }
        Some(list) if list.get_ref().len() == 1 && list.get_ref()[0].get_ref() == "all" => {
            Regions::AllEnabled
        }
        Some(list) => {
            let list = list.get_ref();
            for r in list {
                ctx.check(&r.span(), "group.regions", control_problem(r.get_ref()))?;
            }
            unique(ctx, list.iter(), "group.regions")?;
            Regions::List(
                list.iter()
                    .map(|r| ctx.region(r, "group.regions"))
                    .collect::<Result<_, _>>()?,
            )
        }
    };
    let mut azs = Vec::new();
    // Identifiers and patterns are sent to AWS or matched against its answers:
    // no control characters, and AWS's own characters for DB identifiers.
    let all_strings = [
        (&g.availability_zones, "group.availability-zones"),
        (&g.instances, "group.instances"),
        (&g.exclude_instances, "group.exclude-instances"),
        (&g.include_tags, "group.include-tags"),
        (&g.exclude_tags, "group.exclude-tags"),
        (&g.rds_instances, "group.rds-instances"),
        (&g.aurora_clusters, "group.aurora-clusters"),
        (&g.exclude_databases, "group.exclude-databases"),
    ];
    for (list, key) in all_strings {
        for v in list.iter() {
            ctx.check(&v.span(), key, control_problem(v.get_ref()))?;
        }
    }
    let db_lists = [
        (&g.rds_instances, "group.rds-instances"),
        (&g.aurora_clusters, "group.aurora-clusters"),
        (&g.exclude_databases, "group.exclude-databases"),
    ];
    for (list, key) in db_lists {
        for v in list.iter() {
            let id = v.get_ref();
            let ok = !id.is_empty()
                && id.len() <= 63
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*');
            if !ok {
                return Err(ctx.err(
                    &v.span(),
                    key,
                    format!("`{id}` is not a DB identifier or pattern (1–63 letters, digits, '-', and '*' as a wildcard)"),
                ));
            }
        }
    }
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
                // The tenant's default regions are this group's source regions.
                if let [only] = raw.copy.as_slice() {
                    let region = only.get_ref().region.get_ref();
                    if tenant.regions.contains(region) {
                        return Err(ctx.err(
                            &only.get_ref().region.span(),
                            "copy.region",
                            format!(
                                "`{region}` is a source region of group `{}` (a default region of tenant `{t}` in the accounts file) and the plan's only copy region: {}",
                                g.name,
                                no_copy_there(region)
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn no_copy_there(region: &str) -> String {
    format!("the recovery points made in {region} would have no copy anywhere; copy to another region, or add one")
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
external-id = "ext-1"
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
            (
                "Backup=nightly",
                &format!("Backup={}", "n".repeat(257)),
                "group.include-tags",
                20,
            ),
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

    /// Every refusal of issue 15 at the level of one file: (what, plan text,
    /// key, line, message fragment).
    #[test]
    fn dangerous_plans_are_refused_with_line_and_key() {
        let with = |from: &str, to: &str| {
            assert!(PLAN.contains(from), "{from}");
            PLAN.replace(from, to)
        };
        let cases: Vec<(&str, String, &str, usize, &str)> = vec![
            ("days = 0", with("days = 7", "days = 0"), "retention.days", 11, "allow-empty = \"I understand\""),
            (
                "count = 0 and allow-delete-last",
                with("days = 7", "count = 0\nallow-delete-last = true"),
                "retention.count",
                11,
                "last recovery point",
            ),
            ("all rules 0", with("days = 7", "daily = 0\nweekly = 0"), "retention", 11, "keep no recovery point"),
            (
                "copy retention days = 0",
                with("region = \"us-west-2\"", "region = \"us-west-2\"\n[copy.retention]\ndays = 0"),
                "copy.retention.days",
                16,
                "I understand",
            ),
            (
                "allow-empty in other words",
                with("days = 7", "days = 0\nallow-empty = \"yes\""),
                "retention.allow-empty",
                12,
                "exactly",
            ),
            ("30 February", with("30 1 * * *", "0 0 30 2 *"), "schedule.cron", 7, "never runs"),
            ("31 April", with("30 1 * * *", "0 0 31 4 *"), "schedule.cron", 7, "never runs"),
            ("a past year", with("30 1 * * *", "0 0 0 1 1 * 2020"), "schedule.cron", 7, "never runs"),
            (
                "regions = []",
                with("regions = [\"us-east-1\"]", "regions = []"),
                "group.regions",
                19,
                "an empty list",
            ),
            (
                "copy to a source region",
                with("region = \"us-west-2\"", "region = \"us-east-1\""),
                "copy.region",
                14,
                "source region of group `web`",
            ),
            (
                "kms-key-id shell",
                with("region = \"us-west-2\"", "region = \"us-west-2\"\nkms-key-id = \"; rm -rf /\""),
                "copy.kms-key-id",
                15,
                "is not a KMS key",
            ),
            (
                "kms ARN of another region",
                with(
                    "region = \"us-west-2\"",
                    "region = \"us-west-2\"\nkms-key-id = \"arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab\"",
                ),
                "copy.kms-key-id",
                15,
                "needs a key of us-west-2",
            ),
            ("plan name NUL", with("name = \"nightly\"", "name = \"night\\u0000ly\""), "plan.name", 3, "U+0000"),
            ("plan name ;", with("name = \"nightly\"", "name = \"night;ly\""), "plan.name", 3, "not allowed in an AWS tag value"),
            ("plan name aws:", with("name = \"nightly\"", "name = \"aws:nightly\""), "plan.name", 3, "reserved"),
            (
                "group name too long",
                with("name = \"web\"", &format!("name = \"{}\"", "w".repeat(257))),
                "group.name",
                17,
                "at most 256",
            ),
            (
                "description newline",
                with("id = 2", "id = 2\ndescription = \"a\\nb\""),
                "plan.description",
                5,
                "U+000A",
            ),
            (
                "DB identifier",
                with("include-tags", "rds-instances = [\"db;1\"]\ninclude-tags"),
                "group.rds-instances",
                20,
                "not a DB identifier",
            ),
        ];
        for (what, src, key, line, fragment) in cases {
            let e = plan_err(&src);
            assert_eq!((e.key.as_str(), e.line), (key, line), "{what}: {e}");
            assert!(e.message.contains(fragment), "{what}: {e}");
            assert!(!e.to_string().contains('\0'), "{what}: no raw NUL in {e:?}");
        }
        // Each dangerous retention is accepted when the plan says so.
        for ok in [
            with("days = 7", "days = 0\nallow-empty = \"I understand\""),
            with(
                "days = 7",
                "count = 0\nallow-delete-last = true\nallow-empty = \"I understand\"",
            ),
            with("days = 7", "days = 0\ncount = 1"),
        ] {
            if ok.contains("count = 1") {
                // days = 0 is refused even beside a rule that keeps something.
                assert_eq!(plan_err(&ok).key, "retention.days");
            } else {
                parse_plan_only(Path::new("p.toml"), &ok).unwrap();
            }
        }
        // Two source regions copied into each other: each point has a copy.
        let cross = with(
            "region = \"us-west-2\"",
            "region = \"us-west-2\"\n[[copy]]\nregion = \"us-east-1\"",
        )
        .replace(
            "regions = [\"us-east-1\"]",
            "regions = [\"us-east-1\", \"us-west-2\"]",
        );
        parse_plan_only(Path::new("p.toml"), &cross).unwrap();
        // Good keys stay good: a key ARN in the copy region, an alias, unicode letters.
        for kms in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "alias/rolesnap-dr",
            "arn:aws:kms:us-west-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-west-2:222222222222:alias/rolesnap-dr",
        ] {
            assert_eq!(kms_key_problem(kms, "us-west-2"), None, "{kms}");
        }
        assert_eq!(tag_value_problem("Nächtlich_prod-1 @x:/y=z+"), None);
    }

    #[test]
    fn dangerous_accounts_are_refused_with_line_and_key() {
        let cases = [
            ("external-id = \"\"", ACCOUNTS.replace("external-id = \"ext-1\"", "external-id = \"\""), "tenant.external-id", 8, "empty"),
            ("external-id one char", ACCOUNTS.replace("ext-1", "x"), "tenant.external-id", 8, "2–1224"),
            ("external-id ;", ACCOUNTS.replace("ext-1", "a;b"), "tenant.external-id", 8, "not allowed"),
            (
                "same role twice",
                format!("{ACCOUNTS}\n[[tenant]]\nname = \"alpha2\"\nrole-arn = \"arn:aws:iam::222222222222:role/VSA-role\"\n"),
                "tenant.role-arn",
                13,
                "already the role of tenant `alpha`",
            ),
            (
                "tenant without role-arn",
                format!("{ACCOUNTS}\n[[tenant]]\nname = \"beta\"\n"),
                "tenant.role-arn",
                11,
                "missing",
            ),
            ("no [admin]", "[[tenant]]\nname = \"a\"\nrole-arn = \"arn:aws:iam::222222222222:role/r\"\n".to_string(), "admin", 0, "missing [admin]"),
        ];
        for (what, src, key, line, fragment) in cases {
            let e = accounts_err(&src);
            assert_eq!((e.key.as_str(), e.line), (key, line), "{what}: {e}");
            assert!(e.message.contains(fragment), "{what}: {e}");
        }
    }

    #[test]
    fn files_that_are_not_config_text_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("empty.toml"), "").unwrap();
        std::fs::write(p("comments.toml"), "# nothing\n\n   # here\n").unwrap();
        std::fs::write(p("nul.toml"), b"[plan]\nname = \"a\"\n\x00\x01\x02").unwrap();
        std::fs::write(p("latin1.toml"), b"[plan]\nname = \"a\"\n# caf\xe9\n").unwrap();
        std::fs::write(p("passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        let big = std::fs::File::create(p("big.toml")).unwrap();
        big.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        std::fs::create_dir(p("dir.toml")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(p("fifo.toml"))
            .status()
            .is_ok_and(|s| s.success());
        let mut cases = vec![
            (p("empty.toml"), 0, "empty"),
            (p("comments.toml"), 0, "empty"),
            (p("nul.toml"), 3, "not a text file"),
            (p("latin1.toml"), 3, "not UTF-8"),
            (p("passwd"), 1, "not valid TOML"),
            (p("big.toml"), 0, "larger than 4 MiB"),
            (p("dir.toml"), 0, "is a directory"),
            (p("missing.toml"), 0, "cannot read"),
            (PathBuf::from("/dev/zero"), 0, "is a device"),
        ];
        if fifo {
            cases.push((p("fifo.toml"), 0, "is a FIFO"));
        }
        for (file, line, fragment) in cases {
            let e = load_accounts(&file).unwrap_err();
            assert_eq!(e.line, line, "{}: {e}", file.display());
            assert!(e.key.is_empty(), "no key for a file problem: {e}");
            assert!(e.message.contains(fragment), "{}: {e}", file.display());
            let shown = e.to_string();
            let want = if line == 0 {
                format!("{}: ", file.display())
            } else {
                format!("{}:{line}: ", file.display())
            };
            assert!(shown.starts_with(&want), "{shown}");
            assert!(
                !shown.contains("(toml)") && !shown.contains("(file)"),
                "{shown}"
            );
        }
        // The plan side names its own missing table.
        let e = plan_err("accounts = \"a.toml\"\n[[group]]\nname = \"g\"\ntenants = [\"a\"]\n");
        assert_eq!((e.key.as_str(), e.line), ("plan", 0), "{e}");
    }
}
