//! The agent's periodic RPO check (`--rpo-check-interval`, docs/DESIGN.md
//! "Alerts"): every interval, for each scheduled plan, the resources of the
//! agent's tenants are decided as `rolesnap report` decides them
//! ([`crate::report::assess_plan`], from AWS state and this state directory's
//! ledger); each breached one is an `rpo-breach` alert, once per breach
//! episode ([`Episodes`]); the counts go to the metrics.
//!
//! A tenant, region or vault that cannot be listed is logged in cvd.log and
//! decides nothing: the resources keeping points there keep their episode
//! and their gauges until a check can list it again. Nothing here stops the
//! agent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::LocalBoxFuture;
use tokio::time::Instant;

use rolesnap_core::alerts::rpo::{resource_id, tally, Episodes};
use rolesnap_core::alerts::Notifier;
use rolesnap_core::report::ResourceReport;
use rolesnap_core::store::ledger::Ledger;
use rolesnap_core::{admin_session, Endpoint, Loaded, LogFile};

use super::RunContext;

const FUNC: &str = "CvdAgent::RpoCheck";

/// When the next check is due and the one in flight.
pub(super) struct RpoChecker {
    interval: Option<Duration>,
    next: Instant,
    running: Option<LocalBoxFuture<'static, ()>>,
}

impl RpoChecker {
    /// Checks every `secs` seconds (0: never), the first one interval after
    /// the start.
    pub(super) fn new(secs: u64) -> RpoChecker {
        let interval = (secs > 0).then(|| Duration::from_secs(secs));
        RpoChecker {
            interval,
            next: Instant::now() + interval.unwrap_or(Duration::ZERO),
            running: None,
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.interval.is_some()
    }

    /// Waits until a check is due, starts it, and waits for it to end; the
    /// next is due one interval after. Cancel-safe: a check in flight is
    /// kept and waited for by the next call.
    pub(super) async fn tick(&mut self, plans: &[Arc<Loaded>], cx: &RunContext) {
        let Some(interval) = self.interval else {
            return std::future::pending().await;
        };
        if self.running.is_none() {
            tokio::time::sleep_until(self.next).await;
            self.running = Some(Box::pin(check(plans.to_vec(), cx.clone())));
        }
        if let Some(r) = &mut self.running {
            r.await;
        }
        self.running = None;
        self.next = Instant::now() + interval;
    }
}

/// The ledger of this state directory, read-only (for the newest drills).
fn ledgers(cx: &RunContext) -> Vec<Ledger> {
    if !cx.state_dir.join("ledger.db").exists() {
        return Vec::new();
    }
    match Ledger::open_read_only(&cx.state_dir) {
        Ok(l) => vec![l],
        Err(e) => {
            cx.logs.write(
                LogFile::Cvd,
                None,
                FUNC,
                &format!("Cannot read the ledger for the drill metrics: {e}"),
            );
            Vec::new()
        }
    }
}

/// One check of every scheduled plan.
async fn check(plans: Vec<Arc<Loaded>>, cx: RunContext) {
    let mut episodes = Episodes::load(&cx.state_dir);
    let ledgers = ledgers(&cx);
    for l in plans.iter().filter(|l| l.plan.schedule.is_some()) {
        check_plan(l, &cx, &ledgers, &mut episodes).await;
    }
    if let Err(e) = episodes.save() {
        cx.logs.write(
            LogFile::Cvd,
            None,
            FUNC,
            &format!(
                "Cannot write {}: {e}",
                cx.state_dir
                    .join(rolesnap_core::alerts::rpo::EPISODES_FILE)
                    .display()
            ),
        );
    }
}

async fn check_plan(l: &Loaded, cx: &RunContext, ledgers: &[Ledger], episodes: &mut Episodes) {
    let plan = &l.plan.name;
    let tenants = super::shard_tenants(l, cx.shard);
    if tenants.is_empty() {
        return;
    }
    let logs = &cx.logs;
    let admin = admin_session(&l.accounts, &Endpoint(cx.endpoint.clone()), logs).await;
    let now = Utc::now();
    let a = crate::report::assess_plan(l, &admin, logs, &tenants, None, now, ledgers).await;
    for e in &a.errors {
        logs.write(
            LogFile::Cvd,
            None,
            FUNC,
            &format!("RPO check: {e}; tried again at the next check"),
        );
    }
    let mut decided: Vec<ResourceReport> = Vec::new();
    let mut undecided: Vec<String> = Vec::new();
    // Scopes (tenant, region) whose gauges stay as the last check left them.
    let mut kept: BTreeSet<(String, String)> = a.unlisted.regions.keys().cloned().collect();
    let mut why: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, r) in a.resources.iter().enumerate() {
        match a.undecided(i) {
            None => decided.push(r.clone()),
            Some(w) => {
                undecided.push(resource_id(r));
                kept.insert((r.key.tenant.clone(), r.key.region.clone()));
                *why.entry((r.key.tenant.clone(), w)).or_default() += 1;
            }
        }
    }
    for ((tenant, w), n) in &why {
        logs.write(
            LogFile::Cvd,
            None,
            FUNC,
            &format!(
                "RPO check of plan [{plan}]: {n} resource(s) of tenant {tenant} not decided this check ({w}); tried again at the next check"
            ),
        );
    }
    let events = episodes.check(plan, &decided, &undecided, now);
    let mut sent = 0;
    if let Some(notify) = l.notify() {
        let n = Notifier::new(notify, Some(admin.config.clone()), &cx.state_dir, logs);
        for e in &events {
            if !n.send(e).await.is_empty() {
                sent += 1;
            }
        }
    }
    let (counts, drills) = tally(&decided);
    let unreachable: BTreeSet<String> = a.unlisted.tenants.keys().cloned().collect();
    cx.metrics
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .set_rpo(
            plan,
            counts,
            drills,
            &|t: &str, r: &str| unreachable.contains(t) || kept.contains(&(t.into(), r.into())),
            undecided.len(),
            now.timestamp(),
        );
    let count = |s: rolesnap_core::report::Status| decided.iter().filter(|r| r.status == s).count();
    use rolesnap_core::report::Status;
    logs.write(
        LogFile::Cvd,
        None,
        FUNC,
        &format!(
            "RPO check of plan [{plan}]: {} resource(s): {} compliant, {} breached ({sent} alert(s) sent), {} never protected{}",
            decided.len(),
            count(Status::Compliant),
            count(Status::Breached),
            count(Status::NeverProtected),
            if undecided.is_empty() && unreachable.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} resource(s) and {} tenant(s) not decided",
                    undecided.len(),
                    unreachable.len()
                )
            }
        ),
    );
}
