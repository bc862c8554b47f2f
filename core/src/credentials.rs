//! Admin and tenant credentials.
//!
//! The admin credentials come from the default AWS chain (environment, profile,
//! instance profile) or a named profile, optionally followed by an admin role
//! (the guide's `vsa-assume-role`). Each tenant is reached through STS
//! AssumeRole from those, with its ExternalId. The tenant's `SdkConfig` carries
//! aws-config's `AssumeRoleProvider` behind one shared lazy identity cache, so
//! every EC2/RDS client of a tenant, in every region, reuses one session and
//! the SDK assumes the role again shortly before it expires: a job that
//! outlives the session keeps working.
//!
//! Every SDK client of the process shares one HTTPS client (one connection
//! pool, one TLS setup), and a tenant keeps one EC2 and one RDS client per
//! region. Without that, the SDK gives each new client its own HTTPS stack,
//! and a run that backs up many account × regions at once grows by megabytes
//! per account × region (BENCHMARKS.md, "Memory").
//!
//! The endpoint comes from the standard `AWS_ENDPOINT_URL` (read by aws-config)
//! or from [`Endpoint`]; nothing else in the crate knows about it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::error::ProvideErrorMetadata;

use crate::config::{Accounts, Admin, Tenant};
use crate::logs::{LogFile, Logs};

/// Attempts per AWS call. Throttling (`RequestLimitExceeded`, `Throttling`) and
/// 5xx answers are retried by the SDK's standard mode with exponential backoff
/// and jitter; EC2's buckets refill at 5–20 tokens/s, so ten attempts with up
/// to 20 s between them ride out a burst without failing a job.
pub const MAX_ATTEMPTS: u32 = 10;
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// An endpoint override for every service (the emulator hook).
#[derive(Debug, Clone, Default)]
pub struct Endpoint(pub Option<String>);

impl Endpoint {
    /// The URL, as the guide's log line shows it (`default` when AWS's own).
    pub fn describe(&self) -> String {
        self.0
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .unwrap_or_else(|| "default".to_string())
    }
}

/// Why a tenant cannot be reached.
#[derive(Debug, Clone, thiserror::Error)]
#[error("tenant {tenant}: cannot assume role {role_arn}: {code}: {message}")]
pub struct AssumeRoleFailure {
    pub tenant: String,
    pub role_arn: String,
    /// The AWS error code (`AccessDenied`, `ExpiredToken`, …) or what went wrong locally.
    pub code: String,
    pub message: String,
}

/// The admin side: base configuration every tenant session is built from.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub config: SdkConfig,
    pub endpoint: Endpoint,
    pub admin: Admin,
}

impl AdminSession {
    /// A pacer for the jobs one command runs, with as many turns as the HTTP
    /// client lets calls through (`[admin] max-calls-in-flight`).
    pub fn pacer(&self) -> crate::pace::Pacer {
        crate::pace::Pacer::with_calls_in_flight(self.admin.max_calls_in_flight)
    }
}

/// Loads the admin credentials (and assumes the admin role when configured).
pub async fn admin_session(accounts: &Accounts, endpoint: &Endpoint, logs: &Logs) -> AdminSession {
    let admin = &accounts.admin;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::connections::Limited::wrap(
            shared_https_client(),
            admin.max_calls_in_flight,
        ))
        .region(Region::new(admin.region.clone()))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_max_backoff(MAX_BACKOFF),
        );
    if let Some(p) = &admin.profile {
        loader = loader.profile_name(p);
    }
    if let Some(url) = &endpoint.0 {
        loader = loader.endpoint_url(url);
    }
    let base = loader.load().await;
    let config = match &admin.role_arn {
        None => base,
        Some(role) => {
            logs.write(
                LogFile::Cvd,
                None,
                "CAmazonInfo::Connect",
                &format!(
                    "Connecting to Url=[{}], admin role [{}]",
                    endpoint.describe(),
                    role
                ),
            );
            let mut b = AssumeRoleProvider::builder(role.arn.clone())
                .session_name(session_name("admin", None))
                .session_length(Duration::from_secs(u64::from(admin.session_seconds)))
                .configure(&base);
            if let Some(x) = &admin.external_id {
                b = b.external_id(x);
            }
            let provider = b.build().await;
            base.into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .identity_cache(IdentityCache::lazy().build())
                .build()
        }
    };
    AdminSession {
        config,
        endpoint: endpoint.clone(),
        admin: admin.clone(),
    }
}

impl AdminSession {
    /// Loads the admin credentials once, so that "no credentials at all" is
    /// reported as such instead of as a network error of the first AssumeRole.
    ///
    /// # Errors
    /// A sentence saying where credentials are looked for.
    pub async fn check(&self) -> Result<(), String> {
        let Some(p) = self.config.credentials_provider() else {
            return Err("no admin credentials provider is configured".into());
        };
        p.provide_credentials().await.map(|_| ()).map_err(|e| {
            format!(
                "cannot load the admin credentials ({}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                 or AWS_PROFILE / `profile` in the accounts file, or run on an instance with an instance profile",
                chain(&e)
            )
        })
    }
}

/// One HTTPS client for the whole process, built the way the SDK builds its
/// default one (rustls with aws-lc, proxy settings from the environment). It
/// keeps one connector per connector settings, so all clients share its pool.
fn shared_https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut b = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        b.set_connector_settings(settings.cloned());
        if let Some(c) = components {
            b.set_sleep_impl(c.sleep_impl());
        }
        b.set_proxy_config(Some(ProxyConfig::from_env()));
        b.build()
    })
}

/// A role session name that tells CloudTrail readers who assumed the role:
/// `rolesnap-<tenant>-<job>` (STS allows 2–64 of `[\w+=,.@-]`).
pub fn session_name(tenant: &str, job: Option<u64>) -> String {
    let mut s = match job {
        Some(j) => format!("rolesnap-{tenant}-{j}"),
        None => format!("rolesnap-{tenant}"),
    };
    s.retain(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    s.truncate(64);
    s
}

/// One tenant's session: one AssumeRole provider, one credential cache, shared
/// by every client made from it; one EC2 and one RDS client per region.
#[derive(Debug, Clone)]
pub struct TenantSession {
    pub tenant: Tenant,
    pub job: Option<u64>,
    config: SdkConfig,
    clients: Arc<Mutex<HashMap<String, RegionClients>>>,
}

#[derive(Debug, Clone)]
struct RegionClients {
    ec2: aws_sdk_ec2::Client,
    rds: aws_sdk_rds::Client,
}

impl TenantSession {
    /// Builds the tenant's configuration; nothing is sent to AWS yet.
    pub async fn new(admin: &AdminSession, tenant: &Tenant, job: Option<u64>) -> TenantSession {
        let mut b = AssumeRoleProvider::builder(tenant.role_arn.arn.clone())
            .session_name(session_name(&tenant.name, job))
            .session_length(Duration::from_secs(u64::from(tenant.session_seconds)))
            .configure(&admin.config);
        if let Some(x) = &tenant.external_id {
            b = b.external_id(x);
        }
        let provider = b.build().await;
        let config = admin
            .config
            .clone()
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            // One cache for all of this tenant's clients; it refreshes the
            // session before it expires.
            .identity_cache(IdentityCache::lazy().build())
            .build();
        TenantSession {
            tenant: tenant.clone(),
            job,
            config,
            clients: Arc::default(),
        }
    }

    /// Assumes the role now (rather than at the first call) and confirms which
    /// account the credentials act in. Logs the guide's connect lines.
    ///
    /// # Errors
    /// [`AssumeRoleFailure`] with the AWS error code.
    pub async fn connect(
        &self,
        admin: &AdminSession,
        logs: &Logs,
    ) -> Result<String, AssumeRoleFailure> {
        let role = &self.tenant.role_arn;
        logs.write(
            LogFile::Cvd,
            self.job,
            "CAmazonInfo::Connect",
            &format!(
                "Connecting to Url=[{}], username [{}]",
                admin.endpoint.describe(),
                role
            ),
        );
        logs.write(
            LogFile::Cvd,
            self.job,
            "AmazonConnection::ValidateCredentials",
            &format!("Assume role [{role}]"),
        );
        let fail = |code: String, message: String| {
            let f = AssumeRoleFailure {
                tenant: self.tenant.name.clone(),
                role_arn: role.arn.clone(),
                code,
                message,
            };
            logs.write(
                LogFile::Cvd,
                self.job,
                "AmazonConnection::ValidateCredentials",
                &format!(
                    "Failed to assume role [{role}] for tenant [{}]: {} - {}",
                    f.tenant, f.code, f.message
                ),
            );
            f
        };
        let provider = self
            .config
            .credentials_provider()
            .ok_or_else(|| fail("NoCredentials".into(), "no credentials provider".into()))?;
        if let Err(e) = provider.provide_credentials().await {
            let (code, message) = error_code(&e);
            return Err(fail(code, message));
        }
        let sts = aws_sdk_sts::Client::new(&self.config);
        match sts.get_caller_identity().send().await {
            Ok(id) => {
                let account = id.account().unwrap_or_default().to_string();
                if account != role.account {
                    return Err(fail(
                        "WrongAccount".into(),
                        format!(
                            "credentials act in account {account}, expected {}",
                            role.account
                        ),
                    ));
                }
                logs.write(
                    LogFile::Cvd,
                    self.job,
                    "AmazonConnection::ValidateCredentials",
                    &format!(
                        "Assumed role [{role}] as [{}] for tenant [{}]",
                        id.arn().unwrap_or_default(),
                        self.tenant.name
                    ),
                );
                Ok(account)
            }
            Err(e) => {
                let code = e.code().unwrap_or("Unknown").to_string();
                let message = e.message().map_or_else(|| e.to_string(), str::to_string);
                Err(fail(code, message))
            }
        }
    }

    /// The tenant's configuration in one region.
    pub fn config(&self, region: &str) -> SdkConfig {
        self.config
            .clone()
            .into_builder()
            .region(Region::new(region.to_string()))
            .build()
    }

    /// The tenant's clients in `region`, made on first use and kept (a client
    /// is a handle: clones share its configuration and connections).
    fn clients(&self, region: &str) -> RegionClients {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(region.to_string())
            .or_insert_with(|| {
                let conf = self.config(region);
                RegionClients {
                    ec2: aws_sdk_ec2::Client::from_conf(
                        aws_sdk_ec2::config::Builder::from(&conf)
                            .interceptor(crate::metrics::ApiCounter)
                            .build(),
                    ),
                    rds: aws_sdk_rds::Client::from_conf(
                        aws_sdk_rds::config::Builder::from(&conf)
                            .interceptor(crate::metrics::ApiCounter)
                            .build(),
                    ),
                }
            })
            .clone()
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        self.clients(region).ec2
    }

    pub fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        self.clients(region).rds
    }
}

/// Finds the AWS error code inside a credentials error (the STS error is a few
/// `source()` levels down).
fn error_code(e: &(dyn std::error::Error + 'static)) -> (String, String) {
    type AssumeRoleSdkError =
        aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(sdk) = err.downcast_ref::<AssumeRoleSdkError>() {
            if let Some(code) = sdk.code() {
                let msg = sdk.message().unwrap_or_default().to_string();
                return (code.to_string(), msg);
            }
            return ("NetworkError".into(), chain(err));
        }
        cur = err.source();
    }
    ("CredentialsError".into(), chain(e))
}

/// An error and its sources on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let m = err.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = err.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_valid_for_sts() {
        assert_eq!(session_name("alpha", Some(8277)), "rolesnap-alpha-8277");
        assert_eq!(session_name("a b/c", None), "rolesnap-abc");
        assert!(session_name(&"x".repeat(100), Some(1)).len() <= 64);
    }
}

/// A tenant that could be reached: its session and the account it acts in.
#[derive(Debug, Clone)]
pub struct Connected {
    pub session: TenantSession,
    pub account: String,
}

/// Connects every tenant concurrently. One tenant failing never stops the others.
pub async fn connect_tenants(
    admin: &AdminSession,
    tenants: &[Tenant],
    job: Option<u64>,
    logs: &Logs,
) -> Vec<Result<Connected, AssumeRoleFailure>> {
    futures::future::join_all(tenants.iter().map(|t| async move {
        let session = TenantSession::new(admin, t, job).await;
        let account = session.connect(admin, logs).await?;
        Ok(Connected { session, account })
    }))
    .await
}
