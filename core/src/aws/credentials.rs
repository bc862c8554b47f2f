//! Admin and tenant credentials.
//!
//! The admin credentials come from the default AWS chain (environment, profile,
//! instance profile) or a named profile, optionally followed by an admin role
//! (the guide's `vsa-assume-role`). Each tenant is reached through STS
//! AssumeRole from those, with its ExternalId, sent with the admin session's
//! one STS client. The tenant's `SdkConfig` carries one [`TenantCredentials`]
//! cache, so every EC2/RDS client of a tenant, in every region, reuses one
//! session and the role is assumed again shortly before it expires: a job
//! that outlives the session keeps working. The SDK's own cache cannot do one
//! thing: drop a session that AWS rejects before its expiry (a revoked
//! session, clock skew). Here an interceptor on every tenant client sees
//! `ExpiredToken` / `InvalidClientTokenId` / `RequestExpired`, the session is
//! dropped, the call is tried once more with a new one, and every renewal is
//! logged in cvd.log. A role that can no longer be assumed then fails the
//! calls at once, with the reason (`AssumeRoleFailed`).
//!
//! Every SDK client of the process shares one HTTPS client (one connection
//! pool, one TLS setup), and a tenant keeps one EC2 and one RDS client per
//! region until the job is done there ([`TenantSession::release`]). Without
//! that, the SDK gives each new client its own HTTPS stack, and a run that
//! backs up many account × regions at once grows by megabytes per account ×
//! region (BENCHMARKS.md, "Memory").
//!
//! The endpoint comes from the standard `AWS_ENDPOINT_URL` (read by aws-config)
//! or from [`Endpoint`]; nothing else in the crate knows about it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{
    error::CredentialsError, future, ProvideCredentials, SharedCredentialsProvider,
};
use aws_credential_types::Credentials;
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    FinalizerInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::config::{Accounts, Admin, Tenant};
use crate::store::logs::{LogFile, Logs};

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
    /// The one STS client every tenant's AssumeRole is sent with.
    sts: aws_sdk_sts::Client,
    pub endpoint: Endpoint,
    pub admin: Admin,
    /// Where tenant sessions log their renewals (cvd.log).
    pub logs: LogsHandle,
}

/// [`Logs`] in a struct that derives `Debug`.
#[derive(Clone)]
pub struct LogsHandle(pub Logs);

impl std::fmt::Debug for LogsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Logs")
    }
}

impl AdminSession {
    /// A pacer for the jobs one command runs, with as many turns as the HTTP
    /// client lets calls through (`[admin] max-calls-in-flight`).
    pub fn pacer(&self) -> crate::aws::pace::Pacer {
        crate::aws::pace::Pacer::with_calls_in_flight(self.admin.max_calls_in_flight)
    }
}

/// Loads the admin credentials (and assumes the admin role when configured).
pub async fn admin_session(accounts: &Accounts, endpoint: &Endpoint, logs: &Logs) -> AdminSession {
    let admin = &accounts.admin;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::aws::connections::Limited::wrap(
            shared_https_client(IDLE_CONNECTIONS_PER_HOST),
            shared_https_client(IDLE_LISTING_CONNECTIONS_PER_HOST),
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
        sts: aws_sdk_sts::Client::new(&config),
        config,
        endpoint: endpoint.clone(),
        admin: admin.clone(),
        logs: LogsHandle(logs.clone()),
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

/// Idle connections each pool keeps per host (the SDK keeps every one for
/// 90 s). A connection keeps the read buffer its largest answer grew, up to
/// 400 KB (hyper's, which the SDK does not let us cap), so a pool of every
/// connection a burst of `max-calls-in-flight` opened held megabytes between
/// bursts (BENCHMARKS.md, "Issue 19, session 11"). On AWS a host is one
/// service in one region; the calls in flight of this pool are its regions'
/// creates, copies and deletes, paced by their buckets.
const IDLE_CONNECTIONS_PER_HOST: usize = 8;

/// Idle connections the pool of listings keeps per host (see
/// [`crate::aws::connections`]): each of them has read answers of hundreds
/// of KB, so few are kept between listings.
const IDLE_LISTING_CONNECTIONS_PER_HOST: usize = 2;

/// One HTTPS client, built the way the SDK builds its default one (rustls
/// with aws-lc, proxy settings from the environment). It keeps one connector
/// per connector settings, so all clients given it share its pool.
fn shared_https_client(
    idle_per_host: usize,
) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut b = ConnectorBuilder::default()
            .pool_max_idle_per_host(idle_per_host)
            .tls_provider(tls::Provider::Rustls(
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

/// Renew a session this long before its expiry: the SDK's lazy cache's
/// default buffer (10 s), which the emulator's short-lived test sessions
/// were measured with.
const RENEW_BEFORE: Duration = Duration::from_secs(10);

/// A tenant's credentials: how its role is assumed and the one session all
/// of the tenant's clients share. See the module comment.
#[derive(Debug)]
pub struct TenantCredentials {
    assume: AssumeRole,
    /// The session; the lock also makes one renewal serve every call that
    /// waits for it.
    cache: tokio::sync::Mutex<Option<Credentials>>,
    /// (access key id, AWS error code) of a session AWS rejected.
    rejected: Mutex<Option<(String, String)>>,
    /// The access key id of a session made because AWS rejected the one
    /// before: if AWS rejects it too, renewing did not help.
    after_rejection: Mutex<Option<String>>,
    /// AWS rejected that one too.
    gave_up: std::sync::atomic::AtomicBool,
    logs: LogsHandle,
    tenant: String,
    role: String,
    job: Option<u64>,
}

impl TenantCredentials {
    fn log(&self, m: &str) {
        self.logs.0.write(
            LogFile::Cvd,
            self.job,
            "AmazonConnection::RefreshCredentials",
            m,
        );
    }

    /// AWS rejected the session whose access key id is `key`: the next call
    /// assumes the role again, unless that session was itself made because
    /// AWS rejected the one before (renewing does not help: calls fail).
    pub fn reject(&self, key: &str, code: &str) {
        let after = self
            .after_rejection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if after.as_deref() == Some(key) {
            self.gave_up
                .store(true, std::sync::atomic::Ordering::SeqCst);
            return;
        }
        let mut r = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some((key.to_string(), code.to_string()));
        }
    }

    /// Whether AWS rejected a session made because it had rejected the one
    /// before: calls with it are not tried again.
    pub fn gave_up(&self) -> bool {
        self.gave_up.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn get(&self) -> Result<Credentials, CredentialsError> {
        let mut cache = self.cache.lock().await;
        let rejected = {
            let mut r = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
            match (&*r, cache.as_ref()) {
                (Some((key, _)), Some(c)) if c.access_key_id() == key => r.take(),
                // A rejection of an older session: already renewed.
                _ => {
                    *r = None;
                    None
                }
            }
        };
        let reason = match (cache.as_ref(), &rejected) {
            (None, _) => None,
            (Some(_), Some((_, code))) => Some(format!("AWS rejected the session ({code})")),
            (Some(c), None) => {
                let fresh = c
                    .expiry()
                    .is_none_or(|e| e > SystemTime::now() + RENEW_BEFORE);
                if fresh {
                    return Ok(c.clone());
                }
                Some("the session expires".to_string())
            }
        };
        if let Some(why) = &reason {
            self.log(&format!(
                "Refreshing credentials: assuming role [{}] again for tenant [{}]: {why}",
                self.role, self.tenant
            ));
        }
        match self.assume.credentials().await {
            Ok(c) => {
                if reason.is_some() {
                    let until = c
                        .expiry()
                        .map(|e| chrono::DateTime::<chrono::Utc>::from(e).to_rfc3339())
                        .unwrap_or_else(|| "-".into());
                    self.log(&format!(
                        "Refreshed credentials of role [{}] for tenant [{}]; the new session expires at {until}",
                        self.role, self.tenant
                    ));
                }
                *self
                    .after_rejection
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) =
                    rejected.is_some().then(|| c.access_key_id().to_string());
                *cache = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                *cache = None;
                if reason.is_some() {
                    let (code, message) = error_code(&e);
                    self.log(&format!(
                        "Cannot refresh credentials: role [{}] for tenant [{}] can no longer be assumed: {code} - {message}",
                        self.role, self.tenant
                    ));
                }
                Err(e)
            }
        }
    }
}

/// [`TenantCredentials`] as the SDK's credentials provider.
#[derive(Debug, Clone)]
struct Renewing(Arc<TenantCredentials>);

impl ProvideCredentials for Renewing {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.0.get())
    }
}

/// One tenant's AssumeRole call, sent with the admin session's one STS
/// client. aws-config's `AssumeRoleProvider` would build an STS client (its
/// configuration and runtime plugins, about 35 KB) for every tenant and keep
/// it for the whole job; a fleet of many accounts paid that per account
/// (BENCHMARKS.md, "Issue 19, session 11"). What it sends is the same.
#[derive(Debug)]
struct AssumeRole {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    external_id: Option<String>,
    session_name: String,
    session_seconds: i32,
}

impl AssumeRole {
    /// A new session, or the STS error inside a [`CredentialsError`] (where
    /// [`error_code`] finds its code).
    async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .set_external_id(self.external_id.clone())
            .role_session_name(&self.session_name)
            .duration_seconds(self.session_seconds)
            .send()
            .await
            .map_err(CredentialsError::provider_error)?;
        let c = out
            .credentials
            .ok_or_else(|| CredentialsError::unhandled("AssumeRole returned no credentials"))?;
        let expiry = SystemTime::try_from(c.expiration).map_err(|_| {
            CredentialsError::unhandled("the session's expiry cannot be represented")
        })?;
        Ok(Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            Some(expiry),
            "rolesnap-assume-role",
        ))
    }
}

/// The access key id a request was signed with (SigV4 `Credential=` scope).
fn signing_key(request: &aws_smithy_runtime_api::http::Request) -> Option<String> {
    let auth = request.headers().get("authorization")?;
    let cred = auth.split("Credential=").nth(1)?;
    Some(cred.split('/').next()?.to_string())
}

/// The access key an attempt was signed with, kept for after the attempt
/// (the request itself is gone once sent).
#[derive(Debug, Clone)]
struct SignedWith(String);

impl aws_smithy_types::config_bag::Storable for SignedWith {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// The AWS error code of a response that rejects its credentials.
fn rejected_code(status: u16, body: &[u8]) -> Option<&'static str> {
    if !(400..500).contains(&status) {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    crate::aws::retry::TOKEN_REJECTED
        .iter()
        .copied()
        .find(|c| text.contains(&format!("<Code>{c}</Code>")))
}

/// On every tenant client: an interceptor that drops a session AWS
/// rejected, and a retry classifier that tries such a call again (with the
/// new session) unless the session made after a rejection was rejected too.
#[derive(Debug, Clone)]
struct RejectedToken(Arc<TenantCredentials>);

impl Intercept for RejectedToken {
    fn name(&self) -> &'static str {
        "RolesnapRejectedToken"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(k) = signing_key(context.request()) {
            cfg.interceptor_state().store_put(SignedWith(k));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let code = context
            .response()
            .and_then(|r| rejected_code(r.status().as_u16(), r.body().bytes().unwrap_or_default()));
        if let (Some(code), Some(SignedWith(key))) = (code, cfg.load::<SignedWith>()) {
            self.0.reject(key, code);
        }
        Ok(())
    }
}

impl ClassifyRetry for RejectedToken {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let rejected = ctx.response().is_some_and(|r| {
            rejected_code(r.status().as_u16(), r.body().bytes().unwrap_or_default()).is_some()
        });
        match (rejected, self.0.gave_up()) {
            (false, _) => RetryAction::NoActionIndicated,
            (true, true) => RetryAction::RetryForbidden,
            (true, false) => RetryAction::transient_error(),
        }
    }

    fn name(&self) -> &'static str {
        "RolesnapRejectedToken"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// One tenant's session: one AssumeRole provider, one credential cache, shared
/// by every client made from it; one EC2 and one RDS client per region.
#[derive(Debug, Clone)]
pub struct TenantSession {
    pub tenant: Tenant,
    pub job: Option<u64>,
    config: SdkConfig,
    credentials: Arc<TenantCredentials>,
    clients: Arc<Mutex<HashMap<String, RegionClients>>>,
}

#[derive(Debug, Clone)]
struct RegionClients {
    ec2: aws_sdk_ec2::Client,
    rds: aws_sdk_rds::Client,
}

impl TenantSession {
    /// Builds the tenant's configuration; nothing is sent to AWS yet.
    pub fn new(admin: &AdminSession, tenant: &Tenant, job: Option<u64>) -> TenantSession {
        let credentials = Arc::new(TenantCredentials {
            assume: AssumeRole {
                sts: admin.sts.clone(),
                role_arn: tenant.role_arn.arn.clone(),
                external_id: tenant.external_id.clone(),
                session_name: session_name(&tenant.name, job),
                session_seconds: i32::try_from(tenant.session_seconds).unwrap_or(i32::MAX),
            },
            cache: tokio::sync::Mutex::new(None),
            rejected: Mutex::new(None),
            after_rejection: Mutex::new(None),
            gave_up: std::sync::atomic::AtomicBool::new(false),
            logs: admin.logs.clone(),
            tenant: tenant.name.clone(),
            role: tenant.role_arn.arn.clone(),
            job,
        });
        let config = admin
            .config
            .clone()
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(Renewing(
                credentials.clone(),
            )))
            // One cache for all of this tenant's clients: TenantCredentials,
            // which renews the session before it expires and when AWS
            // rejects it. The SDK's cache in front of it would keep serving
            // a rejected session.
            .identity_cache(IdentityCache::no_cache())
            .build();
        TenantSession {
            tenant: tenant.clone(),
            job,
            config,
            credentials,
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

    /// The tenant's clients in `region`, made on first use and kept until
    /// [`TenantSession::release`] (a client is a handle: clones share its
    /// configuration and connections).
    fn clients(&self, region: &str) -> RegionClients {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(region.to_string())
            .or_insert_with(|| self.make(region))
            .clone()
    }

    fn make(&self, region: &str) -> RegionClients {
        let conf = self.config(region);
        RegionClients {
            ec2: self.make_ec2(&conf),
            rds: self.make_rds(&conf),
        }
    }

    fn make_ec2(&self, conf: &SdkConfig) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(conf)
                .interceptor(crate::aws::metrics::ApiCounter)
                .interceptor(RejectedToken(self.credentials.clone()))
                .retry_classifier(RejectedToken(self.credentials.clone()))
                .build(),
        )
    }

    fn make_rds(&self, conf: &SdkConfig) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::from_conf(
            aws_sdk_rds::config::Builder::from(conf)
                .interceptor(crate::aws::metrics::ApiCounter)
                .interceptor(RejectedToken(self.credentials.clone()))
                .retry_classifier(RejectedToken(self.credentials.clone()))
                .build(),
        )
    }

    /// The kept clients in `region`, if it has them.
    fn kept(&self, region: &str) -> Option<RegionClients> {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(region)
            .cloned()
    }

    /// The EC2 client in `region` for a call made now and then (a poll for
    /// completion, DescribeRegions): the kept one while the region has one,
    /// else a new one that is not kept. A fleet's regions may all wait for
    /// their points at once, and none of them keeps clients for it.
    pub fn ec2_passing(&self, region: &str) -> aws_sdk_ec2::Client {
        self.kept(region)
            .map_or_else(|| self.make_ec2(&self.config(region)), |c| c.ec2)
    }

    /// The RDS client in `region`, as [`Self::ec2_passing`].
    pub fn rds_passing(&self, region: &str) -> aws_sdk_rds::Client {
        self.kept(region)
            .map_or_else(|| self.make_rds(&self.config(region)), |c| c.rds)
    }

    /// Forgets the tenant's clients in `region` once a job is done there:
    /// they cost about 26 KB, and a job over many accounts × regions must not
    /// keep them all to its end. Clones in use keep working; the next use
    /// makes new ones.
    pub fn release(&self, region: &str) {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(region);
        // HashMap keeps its capacity; give it back when it empties.
        if map.is_empty() {
            map.shrink_to_fit();
        }
    }

    /// Forgets the tenant's clients in every region (see [`Self::release`]).
    pub fn release_all(&self) {
        *self.clients.lock().unwrap_or_else(|p| p.into_inner()) = HashMap::new();
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        self.clients(region).ec2
    }

    pub fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        self.clients(region).rds
    }

    /// An SSM client in `region` (a drill's check command; not kept).
    pub fn ssm(&self, region: &str) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.config(region))
    }

    /// A KMS client in `region` (only `validate` reads keys; not kept).
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.config(region))
    }
}

/// Finds the AWS error code inside a credentials error (the STS error is a few
/// `source()` levels down).
pub(crate) fn error_code(e: &(dyn std::error::Error + 'static)) -> (String, String) {
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

    fn regions_kept(s: &TenantSession) -> Vec<String> {
        let mut v: Vec<String> = s.clients.lock().unwrap().keys().cloned().collect();
        v.sort();
        v
    }

    /// A tenant × region's clients are kept for reuse until the job is done
    /// there, then forgotten; a clone in use keeps working; a poll's client
    /// is not kept. Nothing is sent.
    #[tokio::test]
    async fn region_clients_are_kept_until_released() {
        let accounts = crate::config::parse_accounts(
            std::path::Path::new("accounts.toml"),
            r#"
[admin]
region = "us-east-1"

[[tenant]]
name = "alpha"
role-arn = "arn:aws:iam::222222222222:role/vsa-role"
external-id = "ext-1"
regions = ["us-east-1", "eu-west-1"]
"#,
        )
        .unwrap();
        let admin = admin_session(
            &accounts,
            &Endpoint(Some("http://127.0.0.1:9".into())),
            &Logs::disabled(),
        )
        .await;
        let a = TenantSession::new(&admin, &accounts.tenants[0], Some(1));
        let b = a.clone();
        let east = a.ec2("us-east-1");
        a.rds("us-east-1");
        b.ec2("eu-west-1");
        assert_eq!(regions_kept(&a), ["eu-west-1", "us-east-1"]);
        a.release("us-east-1");
        assert_eq!(regions_kept(&b), ["eu-west-1"], "clones share the cache");
        assert_eq!(
            east.config().region().map(|r| r.as_ref()),
            Some("us-east-1"),
            "a released client in use is still whole"
        );
        a.ec2("us-east-1");
        assert_eq!(regions_kept(&a), ["eu-west-1", "us-east-1"]);
        a.ec2_passing("ap-south-1");
        a.rds_passing("ap-south-1");
        assert_eq!(
            regions_kept(&a),
            ["eu-west-1", "us-east-1"],
            "a poll's client is not kept"
        );
        b.release_all();
        assert!(regions_kept(&a).is_empty());
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
        let session = TenantSession::new(admin, t, job);
        let account = session.connect(admin, logs).await?;
        Ok(Connected { session, account })
    }))
    .await
}
