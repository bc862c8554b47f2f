//! Client-side pacing: one token bucket per account × region × EC2 throttling
//! bucket, mirroring the buckets AWS enforces, so that a large run spends its
//! tokens on work instead of on throttled retries.
//!
//! The model keeps a safety margin in tokens: it does not spend the last
//! [`RESERVE`] tokens of a burst while more calls are to follow. AWS sees
//! each call a round trip later than the pacer let it go, with jitter
//! (scheduling, connection set-up); when a burst reaches AWS late, AWS's full
//! bucket loses refill that the model counted, and a model that drains the
//! bucket to exactly zero then sends some calls a few milliseconds "early":
//! those are throttled. Five tokens held back absorb a second of such jitter
//! at 5 tokens/s. The reserve protects the calls that come after, so a job
//! that says how many calls it will make ([`Pacer::expect`]) lets its last
//! ones spend it down to [`LAST_RESERVE`]: the reserve shrinks with what is
//! left. The cost is about 1 s on a bucket refilling 5 a second (0.4 s for
//! announced calls) whatever a run's length, against the retries and
//! backoff a throttled call costs.
//!
//! The model plans on AWS's documented refill rates themselves, with no
//! margin on the rate. A margin on the rate (it was 99 %) built slack that
//! grew with a run's length: it absorbed the model's small fixed errors too
//! (a burst that reaches AWS late, late last calls; on the benchmark fleets
//! the fewest tokens left at AWS fell from 2.2–2.6 to about 1.5 without it),
//! but it cost its share of every long run (4 s of a region's 400 s), and an
//! AWS slower than documented by more than it was throttled all the same.
//! What the last calls have now is the fixed [`LAST_RESERVE`]. When AWS's
//! bucket is below the model (another client of the account spends its
//! tokens, AWS refills in steps or more slowly than documented), AWS
//! throttles a call, which takes no token there. Creates, copies and deletes
//! are retried through the pacer ([`Pacer::turn_again`]): the retry takes
//! another token of the model, so each throttle brings the model one token
//! closer to AWS, and the reserve keeps the calls that follow from meeting
//! the same gap. A fixed gap costs a few retried calls; an AWS slower by a
//! share of its rate costs about that share of the run's calls in retries,
//! each waiting out [`crate::aws::retry::backoff`]. Describe calls are
//! retried inside the SDK and do not correct the model.
//!
//! A bucket's refill starts only once AWS has taken a token from it: while it
//! is full, AWS's refill is lost. So the first call on a full bucket, the one
//! that starts its refill, goes before the calls queued for a turn
//! ([`Pacer::turn`]): with many account × regions at once, a region whose
//! first create queued behind the bursts of the regions before it would start
//! its refill that much later, and end that much later. When that first call
//! still waited for its turn, the refill the model counted meanwhile is taken
//! back, as AWS did not count it: only what the model counted (never beyond
//! the bucket's size), and only until a call of the bucket reaches AWS (the
//! first call's turn, or a call that takes no turn). While one first call
//! waits, the bucket has no other.
//!
//! The other calls waiting for turns take them bucket by bucket, in turn,
//! not in the order they came: one call of each bucket (besides a first
//! call) waits in the queue at a time. AWS's bucket counts a call when it
//! arrives, so a bucket whose calls all queue behind thousands of another's
//! (a burst let go at once) would sit full at AWS and lose its refill while
//! the model counted it; in turn, every bucket with calls waiting has one
//! reach AWS every few turns.
//!
//! For the same reason the rest of a burst can wait at no cost: a region's
//! last call is due when its announced calls have had their tokens, the
//! burst and the refill since its first call, whenever the burst is spent,
//! as long as AWS's bucket is never full meanwhile. What cannot wait at no
//! cost is a job's listing of its other regions: every region listed late
//! starts its refill late. So while a job still lists regions
//! ([`Pacer::hold_bursts`]), a bucket whose last announced call is due well
//! after the hold ([`Pacer::hold_bursts`] says how far) spends only
//! [`HELD_BURST`] tokens at once, makes no call until its refill has brought
//! it back to [`HELD_SHORT`] − 1 tokens short of full, and then goes at the
//! refill rate, for at most [`HOLD_AT_MOST`]; once the hold ends, its waiting
//! calls go as if it had never been.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
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

/// Tokens of each burst the pacer does not spend while calls are to follow
/// (at most a tenth of the bucket).
pub const RESERVE: f64 = 5.0;
/// Tokens even the last announced calls leave: AWS counts a burst's refill
/// from the burst's arrival, which can be late by a busy second, and a last
/// call throttled for it pays a backoff and then the whole reserve again.
pub const LAST_RESERVE: f64 = 2.0;
/// Tokens a bucket spends at once while bursts are held
/// ([`Pacer::hold_bursts`]).
pub const HELD_BURST: u32 = 8;
/// How far short of full each held call leaves its bucket's model once its
/// [`HELD_BURST`] is spent (the next goes when the model is one token
/// fuller). AWS's bucket is below the model while no call is late (it counts
/// its refill from a call's arrival); it fills, and loses refill, only if a
/// held call reaches AWS more than `HELD_SHORT - 1` tokens of refill late
/// (0.2 s at 5 tokens/s). More margin costs time: 12 tokens at once and 5
/// short of full made the 3× benchmark fleet's backup 0.15–0.3 s slower
/// (BENCHMARKS.md, session 16), as the held bursts load AWS (there, the
/// emulator) while regions are still being listed.
pub const HELD_SHORT: f64 = 2.0;
/// How long a bucket holds its burst at most, from its first held call: the
/// hold is for the seconds in which a job lists its regions; a job that lists
/// for longer (regions wait for their places among those creating) would
/// otherwise move every region's burst to its end.
pub const HOLD_AT_MOST: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct State {
    /// Tokens of the model, against the whole bucket; negative while calls
    /// wait for the refill.
    tokens: f64,
    at: Instant,
    /// Calls announced by [`Pacer::expect`] and not yet taken; 0 when
    /// nothing was announced (every call then keeps the whole reserve).
    left: u64,
    /// Whether calls were ever announced on the bucket: a retry of one
    /// ([`Pacer::turn_again`]) is then counted among those left.
    announced: bool,
    /// While the call that found the bucket full waits for its turn: the
    /// refill the model has counted since (AWS's bucket is still full).
    first_waiting: Option<f64>,
    /// Held by the bucket's one call in the queue for turns.
    gate: Arc<tokio::sync::Mutex<()>>,
    /// When the bucket's burst stops being held ([`HOLD_AT_MOST`] after its
    /// first held call).
    held_until: Option<Instant>,
    /// Calls taken while held.
    held_taken: u32,
    /// The [`Holds::generation`] that `held_until` and `held_taken` are of.
    held_generation: u64,
}

impl State {
    fn full(size: f64, now: Instant) -> State {
        State {
            tokens: size,
            at: now,
            left: 0,
            announced: false,
            first_waiting: None,
            gate: Arc::default(),
            held_until: None,
            held_taken: 0,
            held_generation: 0,
        }
    }

    /// Counts the refill up to `now`, never beyond the bucket's size.
    fn refill_to(&mut self, now: Instant, size: f64, refill: f64) {
        let before = self.tokens;
        self.tokens = (before + now.duration_since(self.at).as_secs_f64() * refill).min(size);
        self.at = now;
        if let Some(counted) = self.first_waiting.as_mut() {
            *counted += (self.tokens - before).max(0.0);
        }
    }

    /// A call has reached AWS: its bucket refills from now on, and what the
    /// model counted while the first call waited is taken back.
    fn first_arrived(&mut self) {
        if let Some(counted) = self.first_waiting.take() {
            self.tokens -= counted;
        }
    }
}

/// account, region, bucket
type Key = (String, String, Bucket);

/// Shared by every task of a process.
#[derive(Debug, Clone)]
pub struct Pacer {
    buckets: Arc<Mutex<HashMap<Key, State>>>,
    /// Scales refill rates (1.0 = AWS's); `None` disables pacing.
    scale: Option<f64>,
    /// Turns of the calls that many tasks make at once (see [`Pacer::turn`]).
    turns: Arc<Semaphore>,
    /// Held by the one call, other than a bucket's first, that waits in the
    /// queue of `turns`: the others wait here, so a bucket's first call is
    /// behind that one only. A call waits here only once it holds its
    /// bucket's gate ([`State::gate`]): one call per bucket waits here, and
    /// the buckets take it in turn.
    queued: Arc<tokio::sync::Mutex<()>>,
    /// The [`BurstHold`]s alive.
    held: Arc<watch::Sender<Holds>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Holds {
    alive: usize,
    /// Counts the times holds began (none alive, then one): each time, a
    /// bucket may be held again.
    generation: u64,
}

/// Bursts are held while this lives (see [`Pacer::hold_bursts`]).
#[derive(Debug)]
pub struct BurstHold(Arc<watch::Sender<Holds>>);

impl Drop for BurstHold {
    fn drop(&mut self) {
        self.0.send_modify(|h| h.alive = h.alive.saturating_sub(1));
    }
}

/// A call's turn: held while the call is made.
#[derive(Debug)]
pub struct Turn(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer::new()
    }
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer::with_calls_in_flight(crate::aws::connections::DEFAULT_CALLS_IN_FLIGHT)
    }

    /// Pacing at AWS's rates, with at most `calls` turns out at once
    /// (`[admin] max-calls-in-flight`).
    pub fn with_calls_in_flight(calls: usize) -> Pacer {
        Pacer {
            buckets: Arc::default(),
            scale: Some(1.0),
            turns: Arc::new(Semaphore::new(calls.max(1))),
            queued: Arc::default(),
            held: Arc::new(watch::channel(Holds::default()).0),
        }
    }

    /// No pacing at all (tests of retry behaviour).
    pub fn disabled() -> Pacer {
        Pacer {
            scale: None,
            ..Pacer::new()
        }
    }

    /// Takes a token as [`Pacer::take`] does, then waits for a turn: at most
    /// `max-calls-in-flight` turns are out at once over the whole process.
    /// Used where a job starts calls from many tasks at once (creates, copies,
    /// deletes of every account × region): the SDK builds a call's state
    /// before the HTTP layer (crate::aws::connections) can hold it back, so
    /// without turns every such task would hold that state while it queues.
    /// The token comes first, so that a task waiting on its bucket's refill
    /// holds no turn.
    ///
    /// The first call on a full bucket goes before the queued turns, and the
    /// refill the model counted while it waited for its turn is taken back;
    /// the bucket's other calls queue one at a time, the buckets in turn
    /// (see the module's notes).
    pub async fn turn(&self, account: &str, region: &str, bucket: Bucket) -> Turn {
        self.turn_of(account, region, bucket, false).await
    }

    /// [`Pacer::turn`] for a call made again after AWS throttled it or
    /// failed it with a 5xx: the same call, so on a bucket whose calls were
    /// announced ([`Pacer::expect`]) it does not use up another of them.
    /// Otherwise every retry would leave one announced call fewer, and the
    /// last calls of a bucket that met k throttles would keep the whole
    /// reserve as if unannounced.
    pub async fn turn_again(&self, account: &str, region: &str, bucket: Bucket) -> Turn {
        self.turn_of(account, region, bucket, true).await
    }

    async fn turn_of(&self, account: &str, region: &str, bucket: Bucket, again: bool) -> Turn {
        if !self.take_one(account, region, bucket, true, again).await {
            let gate = self.gate(account, region, bucket);
            let _bucket = gate.lock().await;
            let _queued = self.queued.lock().await;
            return Turn(self.turns.clone().acquire_owned().await.ok());
        }
        // Until the turn is given, AWS's bucket is full; if this call is
        // dropped meanwhile, it never reaches AWS and nothing is taken back.
        let mut first = FirstCall {
            pacer: self,
            key: (account.to_string(), region.to_string(), bucket),
            arrived: false,
        };
        let turn = Turn(self.turns.clone().acquire_owned().await.ok());
        first.arrived = true;
        turn
    }

    /// Announces `calls` more calls on `bucket` of `account` × `region` (a
    /// job's creates or deletes of a region, once known). The reserve is kept
    /// for the calls that follow: the last of the announced calls may spend
    /// it, one token per call fewer to follow.
    pub fn expect(&self, account: &str, region: &str, bucket: Bucket, calls: usize) {
        if self.scale.is_none() || calls == 0 {
            return;
        }
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let st = state(&mut map, account, region, bucket, Instant::now());
        st.left += calls as u64;
        st.announced = true;
    }

    /// Holds bursts while the returned hold lives (a job listing regions):
    /// a bucket whose last announced call is due, by its tokens alone, more
    /// than twice [`HOLD_AT_MOST`] from now spends only [`HELD_BURST`]
    /// tokens at once, then waits until it is [`HELD_SHORT`] − 1 short of
    /// full and goes at its refill rate, for at most [`HOLD_AT_MOST`]. That
    /// costs the bucket's calls no time to their last: AWS's bucket is never
    /// full meanwhile, so no refill is lost; when the hold ends the calls
    /// still waiting go as if bursts had never been held; and the rest of
    /// the burst has at least [`HOLD_AT_MOST`] to go out before the last call
    /// is due (a region whose creates are bounded by the calls it has in
    /// flight rather than by its tokens is not held). What it saves is the
    /// calls the bursts would have sent while the job's other regions were
    /// still being listed. Holds that begin again once none is alive hold
    /// every bucket anew.
    pub fn hold_bursts(&self) -> BurstHold {
        self.held.send_modify(|h| {
            if h.alive == 0 {
                h.generation += 1;
            }
            h.alive += 1;
        });
        BurstHold(self.held.clone())
    }

    /// Takes one token from `bucket` of `account` × `region`, waiting for it.
    /// The call goes out without waiting for a turn: it ends the wait of a
    /// first call (see [`Pacer::turn`]).
    pub async fn take(&self, account: &str, region: &str, bucket: Bucket) {
        self.take_one(account, region, bucket, false, false).await;
    }

    /// The gate of a bucket's calls waiting for turns (see [`State::gate`]).
    fn gate(&self, account: &str, region: &str, bucket: Bucket) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        state(&mut map, account, region, bucket, Instant::now())
            .gate
            .clone()
    }

    /// The bucket's size and the refill rate the model plans on; `None`
    /// when pacing is off.
    fn model(&self, bucket: Bucket) -> Option<(f64, f64)> {
        let (size, refill) = bucket.size_and_refill();
        Some((size, refill * self.scale?))
    }

    /// [`Pacer::take`]. For a call that will wait for a turn (`turn`),
    /// returns whether it is the first on a full bucket: no other first call
    /// of the bucket is waiting for its turn, and the bucket is full. A call
    /// made `again` is counted among the announced calls left (see
    /// [`Pacer::turn_again`]).
    async fn take_one(
        &self,
        account: &str,
        region: &str,
        bucket: Bucket,
        turn: bool,
        again: bool,
    ) -> bool {
        let Some((size, refill)) = self.model(bucket) else {
            return false;
        };
        let now = Instant::now();
        let (go, unheld, first) = {
            let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            let st = state(&mut map, account, region, bucket, now);
            st.refill_to(now, size, refill);
            if !turn {
                st.first_arrived();
            }
            if again && st.announced {
                st.left += 1;
            }
            let first = turn && st.first_waiting.is_none() && st.tokens >= size;
            if first {
                st.first_waiting = Some(0.0);
            }
            // The reserve protects the calls that follow this one: all of it
            // when nobody said how many follow, else at most that many tokens.
            let whole = RESERVE.min(size / 10.0);
            let reserve = match st.left {
                0 => whole,
                left => whole.min((left - 1) as f64).max(LAST_RESERVE.min(whole)),
            };
            // Bursts held: a bucket whose last announced call is due (by its
            // tokens) more than 2 x HOLD_AT_MOST from now spends HELD_BURST
            // tokens, then keeps all but HELD_SHORT, for HOLD_AT_MOST.
            let holds = *self.held.borrow();
            if holds.alive > 0 && st.held_generation != holds.generation {
                st.held_generation = holds.generation;
                st.held_until = None;
                st.held_taken = 0;
            }
            let due_late = st.left as f64
                > st.tokens - LAST_RESERVE + 2.0 * refill * HOLD_AT_MOST.as_secs_f64();
            let hold_end = (st.left > 0 && due_late && holds.alive > 0)
                .then(|| *st.held_until.get_or_insert(now + HOLD_AT_MOST))
                .filter(|end| now < *end);
            let held = match hold_end {
                Some(_) => {
                    st.held_taken += 1;
                    if st.held_taken > HELD_BURST {
                        reserve.max(size - HELD_SHORT)
                    } else {
                        reserve
                    }
                }
                None => reserve,
            };
            st.left = st.left.saturating_sub(1);
            // Reserve the token now (possibly going below the reserve) so
            // that waiters queue in order instead of racing for the next refill.
            st.tokens -= 1.0;
            let tokens = st.tokens;
            let at = |keep: f64| now + Duration::from_secs_f64((keep - tokens).max(0.0) / refill);
            let unheld = at(reserve);
            // A held call goes at the refill rate, or as if it had not been
            // held once the bucket's hold is over.
            let go = match hold_end {
                Some(end) => at(held).min(end.max(unheld)),
                None => unheld,
            };
            (go, unheld, first)
        };
        if go > unheld {
            // Or as if it had not been held once the last hold ends.
            let mut holds = self.held.subscribe();
            tokio::select! {
                _ = tokio::time::sleep_until(go) => {}
                _ = async { holds.wait_for(|h| h.alive == 0).await.is_ok() } => {
                    tokio::time::sleep_until(unheld).await;
                }
            }
        } else if go > now {
            tokio::time::sleep_until(go).await;
        }
        first
    }

    /// The first call on `key` got its turn: see [`State::first_arrived`].
    fn first_arrived(&self, key: &Key) {
        let Some((size, refill)) = self.model(key.2) else {
            return;
        };
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(st) = map.get_mut(key) {
            st.refill_to(Instant::now(), size, refill);
            st.first_arrived();
        }
    }
}

/// The state of `bucket` of `account` × `region`, a full bucket at `now`
/// if it has none yet.
fn state<'m>(
    map: &'m mut HashMap<Key, State>,
    account: &str,
    region: &str,
    bucket: Bucket,
    now: Instant,
) -> &'m mut State {
    map.entry((account.to_string(), region.to_string(), bucket))
        .or_insert_with(|| State::full(bucket.size_and_refill().0, now))
}

/// A first call on a full bucket, waiting for its turn.
struct FirstCall<'p> {
    pacer: &'p Pacer,
    key: Key,
    arrived: bool,
}

impl Drop for FirstCall<'_> {
    fn drop(&mut self) {
        if self.arrived {
            self.pacer.first_arrived(&self.key);
            return;
        }
        // Dropped before its turn: the next call may be the first.
        let mut map = self.pacer.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(st) = map.get_mut(&self.key) {
            st.first_waiting = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::task::JoinHandle;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_its_refill_rate() {
        let p = Pacer::new();
        let start = Instant::now();
        // The burst less the reserve is free.
        for _ in 0..95 {
            p.take("a", "r", Bucket::CreateSnapshot).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        // The 96th waits: five tokens stay in AWS's bucket.
        p.take("a", "r", Bucket::CreateSnapshot).await;
        assert!(start.elapsed() > Duration::ZERO);
        for _ in 0..9 {
            p.take("a", "r", Bucket::CreateSnapshot).await;
        }
        // Ten beyond the burst at 5 per second: 10 / 5 s.
        let e = start.elapsed().as_secs_f64();
        assert!((e - 2.0).abs() < 0.01, "{e}");
        // Another account's bucket is untouched.
        let t = Instant::now();
        p.take("b", "r", Bucket::CreateSnapshot).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    /// AWS sees each call later than the pacer released it, by a varying
    /// delay. With up to 0.8 s of jitter no call finds AWS's bucket empty,
    /// and the pacer is not much slower than the bucket allows.
    #[tokio::test(start_paused = true)]
    async fn jittered_calls_never_find_the_aws_bucket_empty() {
        let p = Pacer::new();
        let (size, refill) = Bucket::DeleteSnapshot.size_and_refill();
        let start = Instant::now();
        let mut released = Vec::new();
        for i in 0..800u32 {
            if i % 37 == 0 {
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
            p.take("a", "r", Bucket::DeleteSnapshot).await;
            released.push(start.elapsed().as_secs_f64());
        }
        // Arrival = release + a pseudo-random delay in [0, 0.8) s.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut arrivals: Vec<f64> = released
            .iter()
            .map(|t| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                t + (seed >> 11) as f64 / (1u64 << 53) as f64 * 0.8
            })
            .collect();
        arrivals.sort_by(f64::total_cmp);
        let (mut tokens, mut at, mut throttled) = (size, 0.0, 0);
        for t in &arrivals {
            tokens = (tokens + (t - at) * refill).min(size);
            at = *t;
            if tokens < 1.0 {
                throttled += 1;
            } else {
                tokens -= 1.0;
            }
        }
        assert_eq!(throttled, 0, "calls found the bucket empty");
        let bound = (800.0 - size) / refill;
        let e = released.last().copied().unwrap_or_default();
        assert!(e < bound * 1.06, "{e} s vs bound {bound} s");
    }

    /// Announced calls keep the reserve while more follow, and the last
    /// ones spend it down to [`LAST_RESERVE`]: 200 creates end at
    /// (200 - 98) / 5 s, not at (200 - 95) / 5 s; an unannounced call
    /// after them keeps the whole reserve again.
    #[tokio::test(start_paused = true)]
    async fn the_last_announced_calls_spend_the_reserve() {
        let p = Pacer::new();
        p.expect("a", "r", Bucket::CreateSnapshot, 200);
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..200 {
            p.take("a", "r", Bucket::CreateSnapshot).await;
            at.push(start.elapsed().as_secs_f64());
        }
        // The 96th still waits for the refill: calls follow it.
        assert_eq!(at[94], 0.0);
        assert!(at[95] > 0.0, "{}", at[95]);
        let r = 5.0;
        let last = at[199];
        let bound = (100.0 + LAST_RESERVE) / r;
        assert!((last - bound).abs() < 0.01, "{last} vs {bound}");
        // The 195th to 198th go together, on the token the 195th waited
        // for; the last two each leave LAST_RESERVE tokens.
        assert!(
            (at[197] - at[194]).abs() < 1e-9,
            "{} vs {}",
            at[197],
            at[194]
        );
        assert!((at[194] - 100.0 / r).abs() < 0.01, "{}", at[194]);
        assert!((at[198] - 101.0 / r).abs() < 0.01, "{}", at[198]);
        // Nothing announced any more: the next call keeps the whole reserve.
        p.take("a", "r", Bucket::CreateSnapshot).await;
        let next = start.elapsed().as_secs_f64();
        let want = (RESERVE - LAST_RESERVE + 1.0) / r;
        assert!(next - last > want - 0.01, "{next} after {last}");
    }

    /// A call made again after a throttle ([`Pacer::turn_again`]) does not
    /// use up an announced call: 200 announced creates, three of them made
    /// twice, end with the last one leaving [`LAST_RESERVE`] tokens, at
    /// (203 - 100 + 2) / 5 s. Counted as new calls, the retries would leave
    /// the last three unannounced, keeping the whole reserve: 21.6 s.
    #[tokio::test(start_paused = true)]
    async fn a_retried_call_does_not_use_up_an_announced_call() {
        let p = Pacer::new();
        p.expect("a", "r", Bucket::CreateSnapshot, 200);
        let start = Instant::now();
        for i in 0..200 {
            drop(p.turn("a", "r", Bucket::CreateSnapshot).await);
            if i % 50 == 49 && i < 150 {
                drop(p.turn_again("a", "r", Bucket::CreateSnapshot).await);
            }
        }
        let last = start.elapsed().as_secs_f64();
        let want = (203.0 - 100.0 + LAST_RESERVE) / 5.0;
        assert!((last - want).abs() < 0.01, "{last} vs {want}");
        // On a bucket nothing was announced on, a call made again keeps the
        // whole reserve, as every other call there.
        let start = Instant::now();
        for _ in 0..95 {
            drop(p.turn("b", "r", Bucket::CreateSnapshot).await);
        }
        drop(p.turn_again("b", "r", Bucket::CreateSnapshot).await);
        assert!(start.elapsed() > Duration::ZERO, "the 96th kept no reserve");
    }

    /// Two regions announce their own calls; one's count never lends the
    /// other its reserve.
    #[tokio::test(start_paused = true)]
    async fn announced_calls_are_per_account_and_region() {
        let p = Pacer::new();
        p.expect("a", "r1", Bucket::DeleteSnapshot, 96);
        for _ in 0..96 {
            p.take("a", "r1", Bucket::DeleteSnapshot).await;
        }
        let start = Instant::now();
        for _ in 0..96 {
            p.take("a", "r2", Bucket::DeleteSnapshot).await;
        }
        // r2 announced nothing: its 96th waited for a token.
        assert!(start.elapsed() > Duration::ZERO);
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

    #[tokio::test(start_paused = true)]
    async fn turns_are_shared_by_the_whole_process() {
        let p = Pacer::with_calls_in_flight(2);
        // Different accounts and regions: their buckets have tokens to spare.
        let a = p.turn("a", "r1", Bucket::DeleteSnapshot).await;
        let _b = p.turn("b", "r2", Bucket::CreateSnapshot).await;
        let third = p.turn("c", "r3", Bucket::CopySnapshot);
        tokio::pin!(third);
        let waited = tokio::time::timeout(Duration::from_secs(5), &mut third).await;
        assert!(waited.is_err(), "a third turn while two are out");
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("a turn once one is given back");
    }

    /// A create that takes its turn on `account` × `region` and gives it back.
    fn spawn_turn(p: &Pacer, account: &'static str, region: &'static str) -> JoinHandle<()> {
        let p = p.clone();
        tokio::spawn(async move {
            let _turn = p.turn(account, region, Bucket::CreateSnapshot).await;
        })
    }

    /// How many creates on `account` × `region` go at once (time is paused).
    async fn at_once(p: &Pacer, account: &str, region: &str) -> usize {
        let start = Instant::now();
        let mut n = 0;
        loop {
            p.take(account, region, Bucket::CreateSnapshot).await;
            if start.elapsed() > Duration::ZERO {
                return n;
            }
            n += 1;
        }
    }

    /// With `held` out (turns are one at a time here), a create on each of
    /// `calls` (account, region) asks for its turn, in order; the order in
    /// which they got them, each as "account/region #index".
    async fn turn_order(
        p: &Pacer,
        held: Turn,
        calls: &[(&'static str, &'static str)],
    ) -> Vec<String> {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, &(account, region)) in calls.iter().enumerate() {
            let (p, order) = (p.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = p.turn(account, region, Bucket::CreateSnapshot).await;
                order
                    .lock()
                    .expect("order")
                    .push(format!("{account}/{region} #{i}"));
            }));
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.expect("task");
        }
        let order = order.lock().expect("order").clone();
        order
    }

    /// Turns are one at a time here. A region whose first create comes
    /// after another region's burst is queued for turns does not wait
    /// behind that burst: its first call starts its bucket's refill.
    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_s_first_call_goes_before_the_queued_turns() {
        let p = Pacer::with_calls_in_flight(1);
        let held = p.turn("a", "r1", Bucket::CreateSnapshot).await;
        let calls = [("a", "r1"), ("a", "r1"), ("a", "r1"), ("b", "r2")];
        assert_eq!(
            turn_order(&p, held, &calls).await,
            ["a/r1 #0", "b/r2 #3", "a/r1 #1", "a/r1 #2"],
            "b/r2's first call is behind the one call already waiting for the turn"
        );
    }

    /// Calls of two buckets waiting for turns take them in turn, one per
    /// bucket, not in the order they came: r2's calls do not wait behind all
    /// of r1's.
    #[tokio::test(start_paused = true)]
    async fn waiting_calls_of_several_buckets_take_turns_in_turn() {
        let p = Pacer::with_calls_in_flight(1);
        let held = p.turn("x", "r", Bucket::DeleteSnapshot).await;
        let calls = [("a", "r1"); 4].into_iter().chain([("a", "r2"); 4]);
        // Each bucket's first call goes before the queue (#0, #4); then one
        // call of each bucket at a time.
        assert_eq!(
            turn_order(&p, held, &calls.collect::<Vec<_>>()).await,
            [
                "a/r1 #0", "a/r1 #1", "a/r2 #4", "a/r2 #5", "a/r1 #2", "a/r2 #6", "a/r1 #3",
                "a/r2 #7"
            ]
        );
    }

    /// AWS's bucket stays full until the first call reaches it: what the
    /// model counted while that call waited for its turn is taken back.
    #[tokio::test(start_paused = true)]
    async fn refill_counted_while_the_first_call_waited_for_its_turn_is_taken_back() {
        let p = Pacer::with_calls_in_flight(1);
        let other = p.turn("x", "r", Bucket::DeleteSnapshot).await;
        let first = spawn_turn(&p, "a", "r");
        tokio::task::yield_now().await;
        // The region's next 15 calls take their tokens meanwhile, and queue
        // for their turns.
        let mut next = Vec::new();
        for _ in 0..15 {
            next.push(spawn_turn(&p, "a", "r"));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(other);
        first.await.expect("first call");
        for n in next {
            n.await.expect("call");
        }
        // AWS's bucket had 100 tokens when the first call reached it, and
        // has 84 after these 16 calls: 79 more go at once, keeping RESERVE.
        let at_once = at_once(&p, "a", "r").await;
        // (79, or 78 where the float sum lands a hair below 84.)
        assert!(
            (78..=79).contains(&at_once),
            "{at_once}: the 2 s of refill were counted"
        );
    }

    /// Calls far apart, each waiting long for its turn: the model takes back
    /// only the refill it counted while AWS's bucket was full, once.
    #[tokio::test(start_paused = true)]
    async fn a_first_call_takes_back_only_the_refill_the_model_counted() {
        let p = Pacer::with_calls_in_flight(1);
        let other = p.turn("x", "r", Bucket::DeleteSnapshot).await;
        let mut calls = Vec::new();
        for _ in 0..2 {
            calls.push(spawn_turn(&p, "a", "r"));
            // The model is full again a second later (one token is 0.2 s).
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::time::sleep(Duration::from_secs(8)).await;
        drop(other);
        for c in calls {
            c.await.expect("call");
        }
        // AWS's bucket was full until the first call reached it, 10 s in;
        // the two calls leave 98 tokens, and 93 more go at once.
        let at_once = at_once(&p, "a", "r").await;
        assert_eq!(at_once, 93, "the model is below AWS's bucket");
    }

    /// A call that does not wait for a turn reaches AWS at once: AWS's
    /// bucket refills from then, and nothing later is taken back.
    #[tokio::test(start_paused = true)]
    async fn a_call_without_a_turn_ends_the_first_call_s_wait() {
        let p = Pacer::with_calls_in_flight(1);
        let other = p.turn("x", "r", Bucket::DeleteSnapshot).await;
        let first = spawn_turn(&p, "a", "r");
        tokio::task::yield_now().await;
        // A call on the same bucket that takes no turn goes out now.
        p.take("a", "r", Bucket::CreateSnapshot).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(other);
        first.await.expect("first call");
        // 98 tokens after the two calls, and 2 s of refill since: full
        // again, capped at 100; 95 go at once.
        let at_once = at_once(&p, "a", "r").await;
        assert_eq!(at_once, 95);
    }

    /// While bursts are held, a region with more creates to come than its
    /// bucket holds spends HELD_BURST tokens at once; a region whose creates
    /// fit in its burst, and calls nobody announced, are not held.
    #[tokio::test(start_paused = true)]
    async fn a_held_burst_is_spent_only_in_part_by_a_region_longer_than_its_bucket() {
        let p = Pacer::new();
        let _hold = p.hold_bursts();
        p.expect("a", "long", Bucket::CreateSnapshot, 200);
        p.expect("a", "short", Bucket::CreateSnapshot, 20);
        // Its last create due (by its tokens) only 1.6 s after the burst.
        p.expect("a", "a little longer", Bucket::CreateSnapshot, 106);
        assert_eq!(at_once(&p, "a", "long").await, HELD_BURST as usize);
        assert_eq!(at_once(&p, "a", "short").await, 95);
        assert_eq!(at_once(&p, "a", "a little longer").await, 95);
        assert_eq!(at_once(&p, "b", "r").await, 95);
        // Without a hold, the long region spends its burst.
        let p = Pacer::new();
        p.expect("a", "long", Bucket::CreateSnapshot, 200);
        assert_eq!(at_once(&p, "a", "long").await, 95);
    }

    /// A hold that begins after the last one ended holds a bucket again,
    /// even one whose earlier hold is over.
    #[tokio::test(start_paused = true)]
    async fn a_new_hold_holds_a_bucket_again() {
        let p = Pacer::new();
        p.expect("a", "r", Bucket::CreateSnapshot, 400);
        let first = p.hold_bursts();
        assert_eq!(at_once(&p, "a", "r").await, HELD_BURST as usize);
        drop(first);
        // Full again, and the first hold long over.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let _second = p.hold_bursts();
        assert_eq!(at_once(&p, "a", "r").await, HELD_BURST as usize);
    }

    /// The times at which 200 announced creates of one region go, started
    /// all at once, with bursts held until `release` (if any).
    async fn held_creates(release: Option<Duration>) -> Vec<f64> {
        let p = Pacer::new();
        let hold = release.map(|_| p.hold_bursts());
        p.expect("a", "r", Bucket::CreateSnapshot, 200);
        let start = Instant::now();
        let at = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (p, at) = (p.clone(), at.clone());
            tasks.push(tokio::spawn(async move {
                p.take("a", "r", Bucket::CreateSnapshot).await;
                at.lock().expect("at").push(start.elapsed().as_secs_f64());
            }));
            tokio::task::yield_now().await;
        }
        if let Some(after) = release {
            tokio::time::sleep(after).await;
        }
        drop(hold);
        for t in tasks {
            t.await.expect("create");
        }
        let mut at = at.lock().expect("at").clone();
        at.sort_by(f64::total_cmp);
        at
    }

    /// Held, the region's creates stop after HELD_BURST; when the hold ends
    /// the rest of the burst goes, and the last create goes when it would
    /// have without the hold.
    #[tokio::test(start_paused = true)]
    async fn once_the_hold_ends_the_calls_go_as_if_it_had_never_been() {
        let free = held_creates(None).await;
        let held = held_creates(Some(Duration::from_millis(1000))).await;
        let count = |at: &[f64], f: &dyn Fn(f64) -> bool| at.iter().filter(|t| f(**t)).count();
        assert_eq!(count(&free, &|t| t == 0.0), 95);
        assert_eq!(count(&held, &|t| t == 0.0), HELD_BURST as usize);
        // The next would wait for the bucket to be HELD_SHORT - 1 short of
        // full: (HELD_BURST + 1 - HELD_SHORT) / 5 = 1.4 s.
        assert_eq!(count(&held, &|t| t > 0.0 && t < 1.0), 0, "{held:?}");
        // When the hold ends, every call that would have gone by then goes,
        // and each later call goes when it would have.
        for (k, (h, f)) in held.iter().zip(&free).enumerate() {
            if *f < 1.0 {
                assert!(*h >= *f && *h <= 1.0, "create {k}: {h} vs {f}");
            } else {
                assert!((h - f).abs() < 1e-6, "create {k}: {h} vs {f}");
            }
        }
        assert!((free[199] - (100.0 + LAST_RESERVE) / 5.0).abs() < 0.01);
    }

    /// A hold that outlasts HOLD_AT_MOST: the bucket then goes as if it
    /// had never been held, and its last create is no later.
    #[tokio::test(start_paused = true)]
    async fn a_bucket_holds_its_burst_for_hold_at_most() {
        let free = held_creates(None).await;
        let held = held_creates(Some(Duration::from_secs(60))).await;
        let end = HOLD_AT_MOST.as_secs_f64();
        let before = held.iter().filter(|t| **t < end).count();
        // HELD_BURST at once, then the k-th (from 1) once the bucket is back
        // to HELD_SHORT - 1 short of full, at (k - HELD_SHORT) / 5 s: the
        // 9th to 11th before the hold's end at 2 s.
        let refill = 5.0;
        let after_burst = (HELD_BURST as usize + 1..=200)
            .filter(|k| (*k as f64 - HELD_SHORT) / refill < end)
            .count();
        assert_eq!(after_burst, 3);
        assert_eq!(before, HELD_BURST as usize + after_burst, "{held:?}");
        assert!(held[before] >= end && held[before] < end + 1e-6);
        assert!(
            (held[199] - free[199]).abs() < 1e-6,
            "{} vs {}",
            held[199],
            free[199]
        );
    }
}
