//! Retrying calls that create things, without creating them twice.
//!
//! The SDK's own retries are switched off for create calls: a 5xx after AWS
//! did the work would otherwise make a second snapshot set. Here a throttled
//! call (AWS did nothing) is simply retried after a backoff with jitter; an
//! ambiguous failure (5xx, lost connection) first asks AWS, by the job's tags,
//! whether the resource exists, and adopts it if so. If that question cannot
//! be answered either (the describe fails too, a few times), the create is
//! not tried again blindly: the call ends as [`UNKNOWN`], "unknown whether
//! created", and the caller records it so; what AWS may have made carries the
//! job's identity tags and is found by them later.
//!
//! A call AWS refused because it did not accept the credentials
//! (`ExpiredToken`, a revoked session, clock skew) did nothing; the tenant's
//! credentials are renewed by then (see `credentials`), and the call is tried
//! once more at once.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::aws::error::AwsError;

/// First backoff after a throttled create; doubles up to [`MAX_BACKOFF`].
pub const BASE_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// The code of a create whose outcome could not be learnt: the call failed
/// ambiguously and every check whether it made something failed too.
pub const UNKNOWN: &str = "UnknownWhetherCreated";

/// Checks whether an ambiguous create made something, before giving up.
pub const EXISTS_CHECKS: u32 = 4;

/// AWS error codes that say the credentials were not accepted: nothing was
/// done, and new credentials may be accepted.
pub const TOKEN_REJECTED: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "RequestExpired",
];

/// Whether `code` is one of [`TOKEN_REJECTED`].
pub fn token_rejected(code: &str) -> bool {
    TOKEN_REJECTED.contains(&code)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// AWS refused before doing anything: try again later.
    Throttled,
    /// AWS did not accept the credentials; nothing was done. Tried once
    /// more with renewed credentials.
    Renew,
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
        c if token_rejected(c) => Class::Renew,
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
    let mut renewed = false;
    loop {
        let err = match call().await {
            Ok(v) => return (Ok(v), Attempts { retries: n }),
            Err(e) => e,
        };
        match classify_call(&err.action, &err.code) {
            Class::Fatal => return (Err(err), Attempts { retries: n }),
            Class::Renew if renewed => return (Err(err), Attempts { retries: n }),
            Class::Renew => {
                // The credentials were dropped when AWS refused them; the
                // next call assumes the role again.
                renewed = true;
                on_retry(&err, Duration::ZERO);
                n += 1;
                continue;
            }
            Class::Ambiguous => {
                // Never create blindly: a failed check is asked again, and
                // if it cannot be answered the outcome is unknown.
                let mut check = 0;
                loop {
                    match exists().await {
                        Ok(Some(v)) => return (Ok(v), Attempts { retries: n }),
                        Ok(None) => break,
                        Err(e) if check + 1 >= EXISTS_CHECKS => {
                            let unknown = AwsError {
                                code: UNKNOWN.into(),
                                message: format!(
                                    "{} answered {} ({}), and whether it made something could not be checked: {}: {}. \
                                     Nothing was created again; anything it made carries the job's tags",
                                    err.action, err.code, err.message, e.code, e.message
                                ),
                                ..err
                            };
                            return (Err(unknown), Attempts { retries: n });
                        }
                        Err(e) => {
                            let wait = backoff(check);
                            on_retry(&e, wait);
                            tokio::time::sleep(wait).await;
                            check += 1;
                        }
                    }
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

    #[tokio::test(start_paused = true)]
    async fn a_failed_existence_check_is_asked_again_and_never_creates_blindly() {
        let calls = Cell::new(0);
        let checks = Cell::new(0);
        let (r, _) = create_with_retry(
            Instant::now() + Duration::from_secs(600),
            || {
                calls.set(calls.get() + 1);
                async { Err::<u32, _>(err("InternalError")) }
            },
            || {
                checks.set(checks.get() + 1);
                let n = checks.get();
                async move {
                    if n < 3 {
                        Err(err("InternalError"))
                    } else {
                        Ok(Some(7))
                    }
                }
            },
            |_, _| {},
        )
        .await;
        assert_eq!(r.unwrap(), 7, "adopted once the check could answer");
        assert_eq!(calls.get(), 1, "no second create");

        let calls = Cell::new(0);
        let (r, _) = create_with_retry(
            Instant::now() + Duration::from_secs(600),
            || {
                calls.set(calls.get() + 1);
                async { Err::<u32, _>(err("InternalError")) }
            },
            || async { Err::<Option<u32>, _>(err("ServiceUnavailable")) },
            |_, _| {},
        )
        .await;
        let e = r.unwrap_err();
        assert_eq!(e.code, UNKNOWN);
        assert!(e.message.contains("ServiceUnavailable"), "{}", e.message);
        assert_eq!(calls.get(), 1, "never created again while unknown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_token_is_tried_once_more_then_fails() {
        let calls = Cell::new(0);
        let (r, _) = create_with_retry(
            Instant::now() + Duration::from_secs(600),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n == 1 {
                        Err(err("ExpiredToken"))
                    } else {
                        Ok(n)
                    }
                }
            },
            || async { Ok(None) },
            |_, _| {},
        )
        .await;
        assert_eq!(r.unwrap(), 2);
        let calls = Cell::new(0);
        let (r, _) = create_with_retry(
            Instant::now() + Duration::from_secs(600),
            || {
                calls.set(calls.get() + 1);
                async { Err::<u32, _>(err("InvalidClientTokenId")) }
            },
            || async { Ok(None) },
            |_, _| {},
        )
        .await;
        assert_eq!(r.unwrap_err().code, "InvalidClientTokenId");
        assert_eq!(calls.get(), 2, "one renewal, then it fails");
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
