//! The files as serde reads them: every table and key of an accounts or plan
//! file, each value with its byte span so that a later check can name the
//! line. Unknown keys are refused here (`deny_unknown_fields`).

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAccounts {
    pub(super) admin: Spanned<RawAdmin>,
    #[serde(default)]
    pub(super) tenant: Vec<Spanned<RawTenant>>,
    /// Backup accounts that keep vault copies (see jobs/vault.rs).
    #[serde(default)]
    pub(super) vault: Vec<Spanned<RawVault>>,
    /// Where alerts go (see config/notify.rs).
    #[serde(default)]
    pub(super) notify: Option<Spanned<RawNotify>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawNotify {
    pub(super) sns_topic_arn: Option<Spanned<String>>,
    pub(super) webhook_url: Option<Spanned<String>>,
    /// PEM certificates trusted for an https webhook, beside the system's.
    pub(super) webhook_ca_file: Option<Spanned<String>>,
    /// argv; the event JSON on stdin.
    pub(super) command: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawVault {
    pub(super) name: Spanned<String>,
    pub(super) role_arn: Spanned<String>,
    pub(super) external_id: Option<Spanned<String>>,
    pub(super) session_duration: Option<Spanned<u32>>,
    /// region → the ARN of the KMS key the vault encrypts its copies with there.
    #[serde(default)]
    pub(super) keys: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAdmin {
    pub(super) profile: Option<Spanned<String>>,
    pub(super) role_arn: Option<Spanned<String>>,
    pub(super) external_id: Option<Spanned<String>>,
    pub(super) region: Option<Spanned<String>>,
    pub(super) session_duration: Option<Spanned<u32>>,
    pub(super) max_calls_in_flight: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawTenant {
    pub(super) name: Spanned<String>,
    pub(super) role_arn: Spanned<String>,
    pub(super) external_id: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) regions: Vec<Spanned<String>>,
    pub(super) session_duration: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPlanFile {
    pub(super) accounts: Option<String>,
    pub(super) plan: Spanned<RawPlan>,
    pub(super) schedule: Option<Spanned<RawSchedule>>,
    #[serde(default)]
    pub(super) retention: Option<Spanned<RawRetention>>,
    #[serde(default)]
    pub(super) copy: Vec<Spanned<RawCopy>>,
    #[serde(default)]
    pub(super) group: Vec<Spanned<RawGroup>>,
    /// EBS Snapshot Lock of the source regions' snapshots (see lock.rs).
    #[serde(default)]
    pub(super) lock: Option<Spanned<RawLock>>,
    /// Vault copies into a backup account declared in the accounts file.
    #[serde(default)]
    pub(super) vault: Vec<Spanned<RawVaultRule>>,
    /// Replaces the accounts file's `[notify]` for this plan.
    #[serde(default)]
    pub(super) notify: Option<Spanned<RawNotify>>,
    /// Scheduled restore drills (see drill.rs).
    #[serde(default)]
    pub(super) drill: Option<Spanned<super::drill::RawDrill>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawVaultRule {
    /// The `[[vault]]` name in the accounts file.
    pub(super) name: Spanned<String>,
    /// Region names, or `"same"`: the source's own region (the default).
    #[serde(default)]
    pub(super) regions: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) retention: Option<Spanned<RawRetention>>,
    #[serde(default)]
    pub(super) lock: Option<Spanned<RawLock>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawLock {
    pub(super) mode: Spanned<String>,
    #[serde(default)]
    pub(super) cool_off_hours: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) regions: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPlan {
    pub(super) name: Spanned<String>,
    pub(super) id: Spanned<u32>,
    #[serde(default)]
    pub(super) method: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) wait_timeout_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) description: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSchedule {
    pub(super) cron: Spanned<String>,
    #[serde(default)]
    pub(super) timezone: Option<Spanned<String>>,
    /// Minutes added to the schedule's interval to make the plan's RPO.
    #[serde(default)]
    pub(super) rpo_grace_minutes: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawRetention {
    pub(super) days: Option<Spanned<u32>>,
    pub(super) count: Option<Spanned<u32>>,
    pub(super) daily: Option<Spanned<u32>>,
    pub(super) weekly: Option<Spanned<u32>>,
    pub(super) monthly: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) allow_delete_last: Option<Spanned<bool>>,
    /// `"I understand"`: the rules may leave a source with no recovery point.
    pub(super) allow_empty: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCopy {
    pub(super) region: Spanned<String>,
    #[serde(default)]
    pub(super) retention: Option<Spanned<RawRetention>>,
    pub(super) kms_key_id: Option<Spanned<String>>,
    /// EBS Snapshot Lock of the copies in this region (see lock.rs).
    #[serde(default)]
    pub(super) lock: Option<Spanned<RawLock>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawGroup {
    pub(super) name: Spanned<String>,
    pub(super) tenants: Vec<Spanned<String>>,
    /// Region names, or `["all"]` for every region enabled in the account;
    /// absent: the tenant's default regions (an empty list is refused).
    #[serde(default)]
    pub(super) regions: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) availability_zones: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) instances: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) exclude_instances: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) include_tags: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) exclude_tags: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) rds_instances: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) aurora_clusters: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) exclude_databases: Vec<Spanned<String>>,
    pub(super) ec2: Option<bool>,
    pub(super) rds: Option<bool>,
    pub(super) aurora: Option<bool>,
}
