//! A cap on the AWS calls the process has in flight at once.
//!
//! Each call in flight costs memory: the SDK's per-call state, and the HTTP(S)
//! connection it holds (hyper's buffers and channels, TLS state). Connections
//! are pooled, so the pool grows to the largest number of calls ever in flight
//! together. A nightly run over many account × regions would otherwise have
//! every region's creates or deletes in flight at once (16 per region in a
//! backup): about 40 KB each, 38 MB at 60 account × regions
//! (BENCHMARKS.md, "Memory").
//!
//! The pacer already decides when a call may go (AWS's token buckets); this
//! only bounds how many are on the wire together. A call waits here for a
//! permit after the pacer has let it go, and holds the permit until its
//! response body has been read, when its connection goes back to the pool.
//!
//! The EC2 and RDS listings (the query calls named `Describe…`) go through a
//! pool of their own. hyper grows a connection's read buffer to its largest
//! answer (up to 400 KB) and keeps it as long as the connection lives; a
//! DescribeInstances or DescribeSnapshots answer is hundreds of KB, a
//! create's a few. In one pool, every connection the creates used had once
//! read a listing and held its buffer (BENCHMARKS.md, "Issue 19, session
//! 12"). The two pools share the one cap on calls in flight.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default of `[admin] max-calls-in-flight`. With the emulator's 40 ms per
/// call that is 1 600 calls/s, several times what the token buckets of 60
/// account × regions allow; against AWS (100–300 ms per call) 200–600 calls/s.
pub const DEFAULT_CALLS_IN_FLIGHT: usize = 64;

/// An HTTP client that lets at most `permits` calls through at once, and
/// sends listings through a pool of their own.
#[derive(Clone)]
pub struct Limited {
    inner: SharedHttpClient,
    listings: SharedHttpClient,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for Limited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limited")
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Limited {
    /// `listings` carries the `Describe…` calls, `inner` every other one.
    pub fn wrap(
        inner: SharedHttpClient,
        listings: SharedHttpClient,
        max_in_flight: usize,
    ) -> SharedHttpClient {
        Limited {
            inner,
            listings,
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
        .into_shared()
    }
}

impl HttpClient for Limited {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(LimitedConnector {
            inner: self.inner.http_connector(settings, components),
            listings: self.listings.http_connector(settings, components),
            permits: self.permits.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct LimitedConnector {
    inner: SharedHttpConnector,
    listings: SharedHttpConnector,
    permits: Arc<Semaphore>,
}

/// Whether a request is a listing: an EC2, RDS or STS call (the query
/// protocol, whose form body starts with its action) named `Describe…`.
fn is_listing(request: &HttpRequest) -> bool {
    request
        .body()
        .bytes()
        .is_some_and(|b| b.starts_with(b"Action=Describe"))
}

impl HttpConnector for LimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = if is_listing(&request) {
            self.listings.clone()
        } else {
            self.inner.clone()
        };
        let permits = self.permits.clone();
        HttpConnectorFuture::new(async move {
            // The semaphore is never closed.
            let permit = permits.acquire_owned().await.ok();
            let mut response = inner.call(request).await?;
            let body = response.take_body();
            *response.body_mut() = SdkBody::from_body_1_x(Held {
                inner: body,
                _permit: permit,
            });
            Ok(response)
        })
    }
}

/// A response body that keeps its call's permit until it is dropped.
struct Held {
    inner: SdkBody,
    _permit: Option<OwnedSemaphorePermit>,
}

impl http_body::Body for Held {
    type Data = bytes::Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::http::HttpConnectorFuture;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Answers after 20 ms and counts the calls it was given and those it
    /// has open at once (clones share the counts).
    #[derive(Debug, Default, Clone)]
    struct Slow {
        open: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        calls: Arc<AtomicUsize>,
    }

    impl HttpConnector for Slow {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let (open, most) = (self.open.clone(), self.most.clone());
            self.calls.fetch_add(1, Ordering::SeqCst);
            HttpConnectorFuture::new(async move {
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                open.fetch_sub(1, Ordering::SeqCst);
                Ok(HttpResponse::new(
                    200.try_into().expect("status"),
                    SdkBody::from("ok"),
                ))
            })
        }
    }

    #[tokio::test]
    async fn no_more_calls_than_permits_are_in_flight_and_bodies_hold_them() {
        let slow = Slow::default();
        let most = slow.most.clone();
        let permits = Arc::new(Semaphore::new(3));
        let c = LimitedConnector {
            inner: SharedHttpConnector::new(slow.clone()),
            listings: SharedHttpConnector::new(slow),
            permits: permits.clone(),
        };
        let request = || HttpRequest::get("http://127.0.0.1/").expect("request");
        // Twelve calls, each reading its answer as it comes.
        let calls = (0..12).map(|_| async {
            let r = c.call(request()).await.expect("answer");
            drop(r);
        });
        futures::future::join_all(calls).await;
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert_eq!(permits.available_permits(), 3);
        // An answer whose body is not yet dropped still holds its permit.
        let r = c.call(request()).await.expect("answer");
        assert_eq!(permits.available_permits(), 2);
        drop(r);
        assert_eq!(permits.available_permits(), 3);
    }

    /// A query-protocol call with its form body, as the SDK sends it.
    fn query(action: &str) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from(format!(
            "Action={action}&Version=2016-11-15&MaxResults=1000"
        )));
        r.set_uri("http://127.0.0.1/").expect("uri");
        r
    }

    #[tokio::test]
    async fn listings_go_through_their_own_pool_under_the_same_cap() {
        let (small, listing) = (Slow::default(), Slow::default());
        let (small_calls, listing_calls) = (small.calls.clone(), listing.calls.clone());
        // One count of calls open across both pools.
        let listing = Slow {
            open: small.open.clone(),
            most: small.most.clone(),
            ..listing
        };
        let most = small.most.clone();
        let permits = Arc::new(Semaphore::new(3));
        let c = LimitedConnector {
            inner: SharedHttpConnector::new(small),
            listings: SharedHttpConnector::new(listing),
            permits: permits.clone(),
        };
        let actions = [
            "DescribeSnapshots",
            "CreateSnapshots",
            "DescribeInstances",
            "DescribeDBSnapshots",
            "CopySnapshot",
            "DeleteSnapshot",
            "AssumeRole",
        ];
        let calls = actions.iter().cycle().take(21).map(|a| {
            let c = &c;
            async move {
                drop(c.call(query(a)).await.expect("answer"));
            }
        });
        futures::future::join_all(calls).await;
        assert_eq!(
            listing_calls.load(Ordering::SeqCst),
            9,
            "the Describe… calls"
        );
        assert_eq!(small_calls.load(Ordering::SeqCst), 12, "every other call");
        assert_eq!(most.load(Ordering::SeqCst), 3, "one cap over both pools");
        assert_eq!(permits.available_permits(), 3);
    }
}
