//! Retrying calls that create things, without creating them twice.
//!
//! The SDK's own retries are switched off for create calls: a 5xx after AWS
//! did the work would otherwise make a second snapshot set. Here a throttled
//! call (AWS did nothing) is simply retried after a backoff with jitter; an
//! ambiguous failure (5xx, lost connection) first asks AWS, by the job's tags,
//! whether the resource exists, and adopts it if so.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::error::AwsError;

/// First backoff after a throttled create; doubles up to [`MAX_BACKOFF`].
pub const BASE_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// AWS refused before doing anything: try again later.
    Throttled,
    /// AWS may or may not have done it.
    Ambiguous,
    /// Retrying will not help.
    Fatal,
}

pub fn classify(code: &str) -> Class {
    match code {
        "RequestLimitExceeded"
        | "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "SnapshotCreationPerVolumeRateExceeded"
        | "ConcurrentSnapshotLimitExceeded"
        | "ConcurrentTagAccess" => Class::Throttled,
        "InternalError"
        | "InternalFailure"
        | "InternalServerError"
        | "ServiceUnavailable"
        | "Unavailable"
        | "NetworkError"
        | "RequestTimeout"
        | "RequestTimeoutException" => Class::Ambiguous,
        _ => Class::Fatal,
    }
}

/// [`classify`] for one action. EC2 answers `ResourceLimitExceeded` to a copy
/// when too many copies are in flight in the destination region (AWS's
/// limit is 20, and other tools' copies count too): that passes, so a copy
/// waits and tries again. For any other call it is a quota, and fatal.
pub fn classify_call(action: &str, code: &str) -> Class {
    match (action, code) {
        ("CopySnapshot" | "CopyImage", "ResourceLimitExceeded") => Class::Throttled,
        _ => classify(code),
    }
}

/// Full-jitter exponential backoff for attempt `n` (0-based).
pub fn backoff(n: u32) -> Duration {
    let cap = BASE_BACKOFF
        .saturating_mul(1u32 << n.min(16))
        .min(MAX_BACKOFF);
    let ms = cap.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms.max(1)))
}

/// What happened, for the log.
pub struct Attempts {
    pub retries: u32,
}

/// Runs `call` until it succeeds, fails for good, or `deadline` passes.
/// `exists` is asked after an ambiguous failure; `Some` is adopted as success.
/// `on_retry` is told about every retry (for the log).
pub async fn create_with_retry<T, C, CF, E, EF>(
    deadline: Instant,
    mut call: C,
    mut exists: E,
    mut on_retry: impl FnMut(&AwsError, Duration),
) -> (Result<T, AwsError>, Attempts)
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<T, AwsError>>,
    E: FnMut() -> EF,
    EF: Future<Output = Result<Option<T>, AwsError>>,
{
    let mut n = 0;
    loop {
        let err = match call().await {
            Ok(v) => return (Ok(v), Attempts { retries: n }),
            Err(e) => e,
        };
        match classify_call(&err.action, &err.code) {
            Class::Fatal => return (Err(err), Attempts { retries: n }),
            Class::Ambiguous => {
                if let Ok(Some(v)) = exists().await {
                    return (Ok(v), Attempts { retries: n });
                }
            }
            Class::Throttled => {}
        }
        let wait = backoff(n);
        if Instant::now() + wait > deadline {
            return (Err(err), Attempts { retries: n });
        }
        on_retry(&err, wait);
        tokio::time::sleep(wait).await;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn err(code: &str) -> AwsError {
        AwsError {
            tenant: "t".into(),
            region: "r".into(),
            action: "CreateSnapshots".into(),
            resource: None,
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn too_many_copies_in_flight_is_waited_out_but_a_quota_is_not() {
        assert_eq!(
            classify_call("CopySnapshot", "ResourceLimitExceeded"),
            Class::Throttled
        );
        assert_eq!(
            classify_call("CopyImage", "ResourceLimitExceeded"),
            Class::Throttled
        );
        assert_eq!(
            classify_call("CreateSnapshots", "ResourceLimitExceeded"),
            Class::Fatal
        );
        assert_eq!(
            classify_call("CopySnapshot", "InvalidParameterValue"),
            Class::Fatal
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_until_it_passes() {
        let calls = Cell::new(0);
        let (r, a) = create_with_retry(
            Instant::now() + Duration::from_secs(600),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 4 {
                        Err(err("RequestLimitExceeded"))
                    } else {
                        Ok(n)
                    }
                }
            },
            || async { Ok(None) },
            |_, _| {},
        )
        .await;
        assert_eq!(r.unwrap(), 4);
        assert_eq!(a.retries, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ambiguous_failure_adopts_what_exists_instead_of_creating_again() {
        let calls = Cell::new(0);
        let (r, _) = create_with_retry(
            Instant::now() + Duration::from_secs(600),
            || {
                calls.set(calls.get() + 1);
                async { Err::<u32, _>(err("InternalError")) }
            },
            || async { Ok(Some(42)) },
            |_, _| {},
        )
        .await;
        assert_eq!(r.unwrap(), 42);
        assert_eq!(calls.get(), 1, "no second create");
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_errors_and_deadlines_stop() {
        let (r, a) = create_with_retry(
            Instant::now() + Duration::from_secs(600),
            || async { Err::<u32, _>(err("InvalidInstanceID.NotFound")) },
            || async { Ok(None) },
            |_, _| {},
        )
        .await;
        assert_eq!(r.unwrap_err().code, "InvalidInstanceID.NotFound");
        assert_eq!(a.retries, 0);
        let (r, _) = create_with_retry(
            Instant::now() + Duration::from_secs(5),
            || async { Err::<u32, _>(err("Throttling")) },
            || async { Ok(None) },
            |_, _| {},
        )
        .await;
        assert_eq!(r.unwrap_err().code, "Throttling");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 0..30 {
            let b = backoff(n);
            assert!(b <= MAX_BACKOFF, "{n}: {b:?}");
        }
        assert!(backoff(0) <= BASE_BACKOFF);
    }
}
