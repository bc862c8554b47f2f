//! Counts of AWS API calls and throttled answers, per service and operation,
//! for the agent's Prometheus metrics. An SDK interceptor on every EC2 and RDS
//! client of a tenant sees each attempt, retries included.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// (service, operation) → (attempts, throttled attempts)
static COUNTS: Mutex<BTreeMap<(String, String), (u64, u64)>> = Mutex::new(BTreeMap::new());

/// Throttling as EC2 (`RequestLimitExceeded`, HTTP 503) and RDS (`Throttling`,
/// HTTP 400) answer it.
pub fn is_throttle(status: u16, body: &[u8]) -> bool {
    if status == 429 || status == 503 {
        return true;
    }
    let text = String::from_utf8_lossy(body);
    [
        "<Code>RequestLimitExceeded<",
        "<Code>Throttling<",
        "<Code>ThrottlingException<",
    ]
    .iter()
    .any(|c| text.contains(c))
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ApiCounter;

impl Intercept for ApiCounter {
    fn name(&self) -> &'static str {
        "RolesnapApiCounter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let throttled = context.response().is_some_and(|r| {
            is_throttle(r.status().as_u16(), r.body().bytes().unwrap_or_default())
        });
        let mut counts = COUNTS.lock().unwrap_or_else(|p| p.into_inner());
        let e = counts.entry((service, operation)).or_default();
        e.0 += 1;
        e.1 += u64::from(throttled);
        Ok(())
    }
}

/// (service, operation, attempts, throttled) so far in this process.
pub fn api_counts() -> Vec<(String, String, u64, u64)> {
    COUNTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|((s, o), (n, t))| (s.clone(), o.clone(), *n, *t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_are_recognised_by_status_or_code() {
        assert!(is_throttle(503, b""));
        assert!(is_throttle(
            400,
            b"<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>"
        ));
        assert!(is_throttle(
            400,
            b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
        ));
        assert!(!is_throttle(400, b"<Code>InvalidParameterValue</Code>"));
        assert!(!is_throttle(200, b"<Code>Throttling is fine</Code>"));
    }
}
