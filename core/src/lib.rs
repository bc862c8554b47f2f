//! rolesnap's engine: cross-account EBS, AMI and RDS snapshot backup for AWS.
//!
//! One module per engine: [`config`] (accounts and plans), [`credentials`]
//! (admin and tenant sessions), [`discovery`] (what exists and what a plan
//! selects), [`backup`] (create and wait for recovery points of one region),
//! [`job`] (a job across tenants and regions), [`ledger`] (job history),
//! [`retry`] and [`pace`] (throttling), [`tags`] (the tag contract), [`lock`]
//! (EBS Snapshot Lock),
//! [`policy`] (the IAM documents), [`validate`] (permission probes), [`logs`]
//! (GxTail log files). Decisions are pure functions; AWS calls happen at the
//! edges.

pub mod aws;
pub mod backup;
pub mod catalog;
pub mod config;
pub mod connections;
pub mod copy;
pub mod credentials;
pub mod discovery;
pub mod duplicates;
pub mod error;
pub mod job;
pub mod ledger;
pub mod lock;
pub mod logs;
pub mod metrics;
pub mod pace;
pub mod policy;
pub mod prune;
pub mod restore;
pub mod retention;
pub mod retry;
pub mod schedule;
pub mod tags;
pub mod validate;
pub mod work;

pub use config::{load_accounts, load_plan, Accounts, ConfigError, Loaded, Plan, Tenant};
pub use credentials::{admin_session, AdminSession, AssumeRoleFailure, Endpoint, TenantSession};
pub use error::AwsError;
pub use logs::{LogFile, Logs};
