//! What the ledger records: jobs (their type and status), the items of a job
//! (what happened to each resource or recovery point, typed by kind and
//! status and stored as text) and events.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum JobType {
    #[serde(rename = "Snap Backup")]
    SnapBackup,
    #[serde(rename = "Snap Copy")]
    SnapCopy,
    #[serde(rename = "Vault Copy")]
    VaultCopy,
    #[serde(rename = "Data Aging")]
    DataAging,
    #[serde(rename = "Restore")]
    Restore,
    /// A restore drill: a restore into a throw-away target, checked healthy, removed.
    #[serde(rename = "Drill")]
    Drill,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::SnapBackup => "Snap Backup",
            JobType::SnapCopy => "Snap Copy",
            JobType::VaultCopy => "Vault Copy",
            JobType::DataAging => "Data Aging",
            JobType::Restore => "Restore",
            JobType::Drill => "Drill",
        }
    }
    pub(crate) fn parse(s: &str) -> JobType {
        match s {
            "Snap Copy" => JobType::SnapCopy,
            "Vault Copy" => JobType::VaultCopy,
            "Data Aging" => JobType::DataAging,
            "Restore" => JobType::Restore,
            "Drill" => JobType::Drill,
            _ => JobType::SnapBackup,
        }
    }
}

/// Job states as the guide's console shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum JobStatus {
    Running,
    Completed,
    #[serde(rename = "Completed w/ one or more errors")]
    CompletedWithErrors,
    Failed,
    Killed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "Running",
            JobStatus::Completed => "Completed",
            JobStatus::CompletedWithErrors => "Completed w/ one or more errors",
            JobStatus::Failed => "Failed",
            JobStatus::Killed => "Killed",
        }
    }
    pub fn parse(s: &str) -> JobStatus {
        match s {
            "Running" => JobStatus::Running,
            "Completed" => JobStatus::Completed,
            "Completed w/ one or more errors" => JobStatus::CompletedWithErrors,
            "Killed" => JobStatus::Killed,
            _ => JobStatus::Failed,
        }
    }
    /// The status of a job from how its items ended.
    pub fn from_counts(ok: usize, failed: usize, setup_errors: usize) -> JobStatus {
        match (ok, failed + setup_errors) {
            (_, 0) => JobStatus::Completed,
            (0, _) => JobStatus::Failed,
            _ => JobStatus::CompletedWithErrors,
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: u64,
    pub job_type: JobType,
    pub plan: String,
    pub tenants: Vec<String>,
    pub status: JobStatus,
    pub pid: u32,
    pub start: i64,
    pub end: Option<i64>,
    pub size_gib: i64,
    pub error: Option<String>,
}

/// What an item is about: a resource a backup or restore was asked for, a
/// recovery point a copy or prune handled, or a tenant or region that failed
/// before any resource (a setup failure). Stored as its text (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    Instance,
    Volume,
    DbInstance,
    DbCluster,
    SnapshotSet,
    Ami,
    DbSnapshot,
    ClusterSnapshot,
    Tenant,
    Region,
}

impl ItemKind {
    pub const ALL: [ItemKind; 10] = [
        ItemKind::Instance,
        ItemKind::Volume,
        ItemKind::DbInstance,
        ItemKind::DbCluster,
        ItemKind::SnapshotSet,
        ItemKind::Ami,
        ItemKind::DbSnapshot,
        ItemKind::ClusterSnapshot,
        ItemKind::Tenant,
        ItemKind::Region,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Instance => "instance",
            ItemKind::Volume => "volume",
            ItemKind::DbInstance => "db-instance",
            ItemKind::DbCluster => "db-cluster",
            ItemKind::SnapshotSet => "snapshot-set",
            ItemKind::Ami => "ami",
            ItemKind::DbSnapshot => "db-snapshot",
            ItemKind::ClusterSnapshot => "cluster-snapshot",
            ItemKind::Tenant => "tenant",
            ItemKind::Region => "region",
        }
    }

    /// The kind stored as `s`; `None` for a text no agent writes.
    pub fn parse(s: &str) -> Option<ItemKind> {
        ItemKind::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A tenant or region that failed before any resource.
    pub fn is_setup(self) -> bool {
        matches!(self, ItemKind::Tenant | ItemKind::Region)
    }
}

impl std::fmt::Display for ItemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ItemKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How a resource or recovery point ended in a job; stored as its text
/// (`as_str`), which is also what reports and `-o json` show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemStatus {
    /// Made and complete (a recovery point, a copy, a restore).
    Completed,
    /// A dry run: what would be made.
    DryRun,
    /// A prune kept the point.
    Kept,
    /// A prune deleted the point.
    Deleted,
    /// A prune's dry run would delete the point.
    WouldDelete,
    /// A backup made a point another run had made too, and removed its own.
    DuplicateRemoved,
    Failed,
    /// Made, and still pending at the wait timeout (or while the job waits).
    Pending,
}

impl ItemStatus {
    pub const ALL: [ItemStatus; 8] = [
        ItemStatus::Completed,
        ItemStatus::DryRun,
        ItemStatus::Kept,
        ItemStatus::Deleted,
        ItemStatus::WouldDelete,
        ItemStatus::DuplicateRemoved,
        ItemStatus::Failed,
        ItemStatus::Pending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Completed => "Completed",
            ItemStatus::DryRun => "DryRun",
            ItemStatus::Kept => "Kept",
            ItemStatus::Deleted => "Deleted",
            ItemStatus::WouldDelete => "WouldDelete",
            ItemStatus::DuplicateRemoved => "DuplicateRemoved",
            ItemStatus::Failed => "Failed",
            ItemStatus::Pending => "Pending",
        }
    }

    /// The status stored as `s`; an unknown text (a newer agent's ledger)
    /// reads as Failed, the side that draws attention.
    pub fn parse(s: &str) -> ItemStatus {
        ItemStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .unwrap_or(ItemStatus::Failed)
    }

    /// Whether the item went as asked (not a problem to report).
    pub fn ok(self) -> bool {
        !matches!(self, ItemStatus::Failed | ItemStatus::Pending)
    }
}

impl std::fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ItemStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One resource of a job, and what was made of it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Item {
    pub tenant: String,
    pub account: String,
    pub region: String,
    pub kind: ItemKind,
    pub source_id: String,
    pub status: ItemStatus,
    pub created: Vec<String>,
    pub size_gib: i64,
    pub error: Option<String>,
    /// Anything else worth keeping (method, name, recorded configuration).
    pub detail: serde_json::Value,
}

impl Item {
    /// A tenant, region or resource that failed before anything was made.
    pub fn failed(
        tenant: &str,
        account: &str,
        region: &str,
        kind: ItemKind,
        source: &str,
        error: String,
    ) -> Item {
        Item {
            tenant: tenant.to_string(),
            account: account.to_string(),
            region: region.to_string(),
            kind,
            source_id: source.to_string(),
            status: ItemStatus::Failed,
            created: vec![],
            size_gib: 0,
            error: Some(error),
            detail: serde_json::Value::Null,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: i64,
    pub severity: String,
    pub message: String,
}
