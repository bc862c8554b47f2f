//! The AWS edge: every call the engine makes to EC2 and RDS, in one adapter
//! per service ([`ec2`], [`rds`]). Each call is paced (a token of its bucket,
//! a page per token), paged, retried without creating twice, mapped to an
//! [`AwsError`] naming tenant, region and resource, and adopted after an
//! ambiguous failure where AWS allows it. The jobs only orchestrate.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;

use crate::aws::error::{AwsError, Site};
use crate::aws::pace::{Bucket, Pacer};
use crate::store::logs::JobLog;
use crate::tags;

pub mod connections;
pub mod credentials;
pub mod ec2;
pub mod error;
pub mod lock;
pub mod metrics;
pub mod pace;
pub mod rds;
pub mod retry;

pub(crate) fn ec2_tags(t: &[(String, String)]) -> Vec<aws_sdk_ec2::types::Tag> {
    t.iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn rds_tags(t: &[(String, String)]) -> Vec<aws_sdk_rds::types::Tag> {
    t.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn tag_filter(key: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// Filters that find only what `id`'s job made: its number, its agent and
/// its start. Another ledger's job of the same number never matches.
pub(crate) fn identity_filters(id: &tags::Identity) -> Vec<aws_sdk_ec2::types::Filter> {
    id.tags().iter().map(|(k, v)| tag_filter(k, v)).collect()
}

pub(crate) fn no_sdk_retries_ec2() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled())
}

pub(crate) fn no_sdk_retries_rds() -> aws_sdk_rds::config::Builder {
    aws_sdk_rds::config::Builder::default().retry_config(RetryConfig::disabled())
}

/// The tags of an EC2 resource as a map; only the keys `keep` accepts.
pub(crate) fn ec2_tag_map(
    t: &[aws_sdk_ec2::types::Tag],
    keep: impl Fn(&str) -> bool,
) -> BTreeMap<String, String> {
    t.iter()
        .filter(|t| t.key().is_some_and(&keep))
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// The tags of an RDS resource as a map; only the keys `keep` accepts.
pub(crate) fn rds_tag_map(
    t: &[aws_sdk_rds::types::Tag],
    keep: impl Fn(&str) -> bool,
) -> BTreeMap<String, String> {
    t.iter()
        .filter(|t| t.key().is_some_and(&keep))
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// An AWS time as UTC (now when AWS gave none).
pub(crate) fn to_utc(t: Option<&aws_smithy_types::DateTime>) -> chrono::DateTime<chrono::Utc> {
    t.and_then(|d| chrono::DateTime::from_timestamp(d.secs(), d.subsec_nanos()))
        .unwrap_or_else(chrono::Utc::now)
}

/// The turns of one call's attempts (see [`At::tries`]).
pub(crate) struct Tries<'a> {
    at: At<'a>,
    bucket: Bucket,
    tried: AtomicBool,
}

impl Tries<'_> {
    /// The turn of the next attempt.
    pub(crate) async fn turn(&self) -> crate::aws::pace::Turn {
        if self.tried.swap(true, Ordering::Relaxed) {
            let (account, region) = (self.at.account, self.at.site.region);
            self.at.pacer.turn_again(account, region, self.bucket).await
        } else {
            self.at.turn(self.bucket).await
        }
    }
}

/// One tenant × region as an adapter sees it: where its calls go (for the
/// errors), whose token buckets pace them, and where a retry is logged.
#[derive(Clone, Copy)]
pub struct At<'a> {
    pub site: Site<'a>,
    pub account: &'a str,
    pub pacer: &'a Pacer,
    /// Where retries and adoptions are logged (none for a listing outside a job).
    pub log: Option<JobLog<'a>>,
}

impl<'a> At<'a> {
    pub fn region(&self) -> &'a str {
        self.site.region
    }

    /// A token of `bucket` (a describe, or a call that is not a create).
    pub(crate) async fn take(&self, bucket: Bucket) {
        self.pacer
            .take(self.account, self.site.region, bucket)
            .await;
    }

    /// A token of `bucket` and a turn on the wire (a create, copy or delete).
    pub(crate) async fn turn(&self, bucket: Bucket) -> crate::aws::pace::Turn {
        self.pacer
            .turn(self.account, self.site.region, bucket)
            .await
    }

    /// The turns of one call's attempts on `bucket`: the first attempt
    /// takes a turn ([`At::turn`]); each later one is the same call made
    /// again ([`Pacer::turn_again`]), not another of the calls a job
    /// announced.
    pub(crate) fn tries(&self, bucket: Bucket) -> Tries<'a> {
        Tries {
            at: *self,
            bucket,
            tried: AtomicBool::new(false),
        }
    }

    /// Logs a retry the same way for every call.
    pub(crate) fn retried(&self, e: &AwsError, wait: Duration) {
        self.note(&format!(
            "Retrying {} of [{}] in [{}/{}] after {}: {} (in {} ms)",
            e.action,
            e.resource.as_deref().unwrap_or_default(),
            e.tenant,
            e.region,
            e.code,
            e.message,
            wait.as_millis()
        ));
    }

    /// An SDK error of `action` here as an [`AwsError`].
    pub(crate) fn err<E>(&self, action: &str, resource: Option<&str>, e: E) -> AwsError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.site.err(action, resource, e)
    }

    /// Writes `m` to the job's log, if there is one.
    pub(crate) fn note(&self, m: &str) {
        if let Some(l) = &self.log {
            l.write(m);
        }
    }

    /// A local error (no call made) in the shape of an AWS one.
    pub(crate) fn refusal(
        &self,
        action: &str,
        resource: &str,
        code: &str,
        message: String,
    ) -> AwsError {
        AwsError {
            tenant: self.site.tenant.to_string(),
            region: self.site.region.to_string(),
            action: action.into(),
            resource: Some(resource.into()),
            code: code.into(),
            message,
        }
    }
}

/// The error codes that say a resource to delete is already gone.
pub(crate) fn gone(code: &str) -> bool {
    matches!(
        code,
        "InvalidSnapshot.NotFound"
            | "InvalidAMIID.NotFound"
            | "InvalidAMIID.Unavailable"
            | "DBSnapshotNotFound"
            | "DBSnapshotNotFoundFault"
            | "DBClusterSnapshotNotFoundFault"
    )
}

/// Sends one idempotent call (a share or unshare): each attempt takes a
/// turn of `bucket`, throttling and 5xx answers are retried with backoff
/// until `deadline`.
pub(crate) async fn idempotent_with_retry<F, Fut>(
    at: &At<'_>,
    bucket: Bucket,
    deadline: tokio::time::Instant,
    call: F,
) -> Result<(), AwsError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), AwsError>>,
{
    let tries = &at.tries(bucket);
    let (r, _) = crate::aws::retry::create_with_retry(
        deadline,
        || async {
            let _turn = tries.turn().await;
            Box::pin(call()).await
        },
        || async { Ok(None) },
        |e, wait| at.retried(e, wait),
    )
    .await;
    r
}

/// Sends one delete call: each attempt takes a turn of `bucket` first and
/// has the SDK's own retries off, so that no attempt goes around the pacer.
/// Throttling and 5xx answers are retried with backoff (a delete is
/// idempotent: the retry of one that did happen finds the resource gone).
/// A resource already gone counts as deleted.
pub(crate) async fn delete_with_retry<F, Fut>(
    at: &At<'_>,
    bucket: Bucket,
    deadline: tokio::time::Instant,
    call: F,
) -> Result<(), AwsError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), AwsError>>,
{
    let tries = &at.tries(bucket);
    let (r, _) = crate::aws::retry::create_with_retry(
        deadline,
        || async {
            let _turn = tries.turn().await;
            // Boxed: the SDK's call state is allocated only once it has its
            // turn, not held by every delete that waits for one.
            match Box::pin(call()).await {
                Err(e) if gone(&e.code) => Ok(()),
                r => r,
            }
        },
        || async { Ok(None) },
        |e, wait| at.retried(e, wait),
    )
    .await;
    r
}
