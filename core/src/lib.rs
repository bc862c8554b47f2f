//! rolesnap's engine: cross-account EBS, AMI and RDS snapshot backup for AWS.
//!
//! One module per engine: [`config`] (accounts and plans), [`credentials`]
//! (admin and tenant sessions), [`discovery`] (what exists and what a plan
//! selects), [`policy`] (the IAM documents), [`logs`] (GxTail log files).
//! Decisions are pure functions; AWS calls happen at the edges.

pub mod config;
pub mod credentials;
pub mod discovery;
pub mod error;
pub mod logs;
pub mod policy;
pub mod validate;

pub use config::{load_accounts, load_plan, Accounts, ConfigError, Loaded, Plan, Tenant};
pub use credentials::{admin_session, AdminSession, AssumeRoleFailure, Endpoint, TenantSession};
pub use error::AwsError;
pub use logs::{LogFile, Logs};
