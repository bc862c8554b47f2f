//! rolesnap's engine: cross-account EBS, AMI and RDS snapshot backup for AWS.
//!
//! The folders are the architecture (README "Architecture"):
//!
//! - [`config`]: the accounts file and plans, parsed and validated
//!   (`FILE:LINE: KEY` errors).
//! - [`discovery`] (what exists in a tenant and what a plan selects),
//!   [`catalog`] (the recovery points, read from AWS by tag), [`tags`] (the
//!   tag contract), [`policy`] (the IAM documents), [`validate`] (permission
//!   probes).
//! - [`decide`]: pure decisions, no AWS: retention (what prune keeps),
//!   schedules (when a plan is due).
//! - [`report`]: the RPO report's decisions (age against the plan's RPO,
//!   compliance) and its CSV and HTML/SVG rendering, no AWS.
//! - [`jobs`]: the jobs as orchestration over the adapters: a job across
//!   tenants and regions ([`jobs::run`]), its shared context
//!   ([`jobs::work`]), backup, copy, prune, the duplicate check and restore.
//! - [`aws`]: the edge: sessions and credentials, the shared HTTPS client,
//!   pacing, retries, one adapter per service ([`aws::ec2`], [`aws::rds`]),
//!   EBS Snapshot Lock, call metrics.
//! - [`alerts`]: alerts to `[notify]` (SNS, webhook, command), de-duplicated.
//! - [`store`]: what stays on the access node: the ledger (job history) and
//!   the GxTail log files.

pub mod alerts;
pub mod aws;
pub mod catalog;
pub mod config;
pub mod decide;
pub mod discovery;
pub mod jobs;
pub mod policy;
pub mod report;
pub mod store;
pub mod tags;
pub mod validate;

pub use aws::credentials::{
    admin_session, AdminSession, AssumeRoleFailure, Endpoint, TenantSession,
};
pub use aws::error::AwsError;
pub use config::{load_accounts, load_plan, Accounts, ConfigError, Loaded, Plan, Tenant};
pub use store::logs::{LogFile, Logs};
