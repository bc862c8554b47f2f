//! Client-side pacing: one token bucket per account × region × EC2 throttling
//! bucket, mirroring the buckets AWS enforces, so that a large run spends its
//! tokens on work instead of on throttled retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// EC2 throttling buckets (size, refill per second), from AWS's documentation
/// of request token buckets for EC2 API throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Describe* calls: 100 / 20.
    Describe,
    /// Mutating calls without a bucket of their own: 50 / 5.
    Mutate,
    /// CreateSnapshot and CreateSnapshots: 100 / 5.
    CreateSnapshot,
    /// CreateImage: 100 / 5.
    CreateImage,
    /// CopySnapshot: 100 / 5.
    CopySnapshot,
    /// CopyImage: 100 / 1.
    CopyImage,
    /// DeleteSnapshot: 100 / 5.
    DeleteSnapshot,
    /// DeregisterImage: 100 / 5.
    DeregisterImage,
    /// CreateVolume: 100 / 5.
    CreateVolume,
    /// CreateTags: 100 / 10.
    CreateTags,
    /// RDS calls; RDS publishes no per-call buckets, so a conservative one.
    Rds,
}

impl Bucket {
    pub fn size_and_refill(self) -> (f64, f64) {
        match self {
            Bucket::Describe => (100.0, 20.0),
            Bucket::Mutate => (50.0, 5.0),
            Bucket::CreateSnapshot
            | Bucket::CreateImage
            | Bucket::CopySnapshot
            | Bucket::DeleteSnapshot
            | Bucket::DeregisterImage
            | Bucket::CreateVolume => (100.0, 5.0),
            Bucket::CopyImage => (100.0, 1.0),
            Bucket::CreateTags => (100.0, 10.0),
            Bucket::Rds => (50.0, 10.0),
        }
    }
}

#[derive(Debug)]
struct State {
    tokens: f64,
    at: Instant,
}

/// account, region, bucket
type Key = (String, String, Bucket);

/// Shared by every task of a process.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    buckets: Arc<Mutex<HashMap<Key, State>>>,
    /// Scales refill rates (1.0 = AWS's); `None` disables pacing.
    scale: Option<f64>,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer {
            buckets: Arc::default(),
            scale: Some(1.0),
        }
    }

    /// No pacing at all (tests of retry behaviour).
    pub fn disabled() -> Pacer {
        Pacer {
            buckets: Arc::default(),
            scale: None,
        }
    }

    /// Takes one token from `bucket` of `account` × `region`, waiting for it.
    pub async fn take(&self, account: &str, region: &str, bucket: Bucket) {
        let Some(scale) = self.scale else { return };
        let (size, refill) = bucket.size_and_refill();
        let refill = refill * scale;
        let wait = {
            let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let st = map
                .entry((account.to_string(), region.to_string(), bucket))
                .or_insert(State {
                    tokens: size,
                    at: now,
                });
            st.tokens = (st.tokens + now.duration_since(st.at).as_secs_f64() * refill).min(size);
            st.at = now;
            // Reserve the token now (possibly going negative) so that waiters
            // queue in order instead of racing for the next refill.
            st.tokens -= 1.0;
            if st.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-st.tokens / refill)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_its_refill_rate() {
        let p = Pacer::new();
        let start = Instant::now();
        for _ in 0..100 {
            p.take("a", "r", Bucket::CreateSnapshot).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        for _ in 0..10 {
            p.take("a", "r", Bucket::CreateSnapshot).await;
        }
        // Ten more at 5 per second: two seconds.
        let e = start.elapsed().as_secs_f64();
        assert!((1.9..2.1).contains(&e), "{e}");
        // Another account's bucket is untouched.
        let t = Instant::now();
        p.take("b", "r", Bucket::CreateSnapshot).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn disabled_never_waits() {
        let p = Pacer::disabled();
        let start = Instant::now();
        for _ in 0..500 {
            p.take("a", "r", Bucket::CopyImage).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
