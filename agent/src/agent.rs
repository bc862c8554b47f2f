//! `rolesnap agent`: the scheduler daemon, and `rolesnap schedule`.
//!
//! One agent per state directory (an exclusive lock). Each plan with a
//! `[schedule]` runs at its slots: a Snap Backup job, its Snap Copy job when
//! the plan has copy rules, then a Data Aging job. The slot each plan last ran
//! is kept in `agent-schedule.json`, so a restart neither repeats nor forgets a
//! run (a slot missed by less than `--catch-up` runs once on start).
//!
//! SIGHUP re-reads the plans (a plan that no longer parses is logged and the
//! old one kept); SIGTERM/SIGINT stop scheduling, give running jobs `--grace`
//! seconds, record the rest Killed, and exit 0.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

use rolesnap_core::alerts::{Event, Notifier};
use rolesnap_core::decide::schedule::{decide, in_shard, next_runs, parse_shard, Due};
use rolesnap_core::jobs::work::JobOptions;
use rolesnap_core::jobs::{self, Filter, Request};
use rolesnap_core::store::ledger::{Ledger, PlanLock};
use rolesnap_core::{
    admin_session, load_plan, ConfigError, Endpoint, Loaded, LogFile, Logs, Tenant,
};

use crate::cli::{AgentArgs, Global, Output, PlansArgs, ScheduleArgs};
use crate::exit;
use crate::output::table;

mod drills;
mod metrics;
mod rpo;

use metrics::{serve_metrics, Metrics};

/// Longest sleep between looks at the clock (a changed plan is seen this fast).
const TICK: Duration = Duration::from_secs(30);

/// Every plan file named or found in a named directory (accounts files
/// skipped). A file of the directory that cannot be read is kept, so that
/// loading it reports why.
fn plan_files(args: &PlansArgs) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in &args.plans {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| ConfigError {
                    file: p.clone(),
                    line: 0,
                    key: String::new(),
                    message: format!("cannot read the plan directory: {e}"),
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .filter(|f| {
                    rolesnap_core::config::read_config_file(f)
                        .map_or(true, |s| !rolesnap_core::config::is_accounts_file(&s))
                })
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// The plans of `--plans`: those that load, and each file that does not.
struct PlanSet {
    good: Vec<Arc<Loaded>>,
    broken: Vec<(PathBuf, ConfigError)>,
}

fn load_all(args: &PlansArgs) -> anyhow::Result<PlanSet> {
    let mut set = PlanSet {
        good: Vec::new(),
        broken: Vec::new(),
    };
    for f in plan_files(args)? {
        match load_plan(&f, args.accounts.as_deref()) {
            Err(e) => set.broken.push((f, e)),
            Ok(l) => {
                if let Some(other) = set.good.iter().find(|o| o.plan.name == l.plan.name) {
                    let e = ConfigError {
                        file: f.clone(),
                        line: 0,
                        key: "plan.name".into(),
                        message: format!(
                            "plan name `{}` is also used by {}",
                            l.plan.name,
                            other.plan.source.display()
                        ),
                    };
                    set.broken.push((f, e));
                } else {
                    set.good.push(Arc::new(l));
                }
            }
        }
    }
    Ok(set)
}

/// Prints every broken plan file on stderr.
fn print_broken(set: &PlanSet, what: &str) {
    for (_, e) in &set.broken {
        eprintln!("{what}: {e}");
    }
}

pub fn schedule(global: &Global, args: ScheduleArgs) -> anyhow::Result<u8> {
    let set = load_all(&args.plans)?;
    print_broken(&set, "error");
    let plans = set.good;
    let now = Utc::now();
    let rows: Vec<_> = plans
        .iter()
        .map(|l| {
            let runs = l
                .plan
                .schedule
                .as_ref()
                .map(|s| next_runs(s, now, args.count))
                .unwrap_or_default();
            (l, runs)
        })
        .collect();
    match global.output {
        Output::Json => {
            let v: Vec<_> = rows
                .iter()
                .map(|(l, runs)| {
                    json!({
                        "plan": l.plan.name,
                        "cron": l.plan.schedule.as_ref().map(|s| s.cron_source.clone()),
                        "timezone": l.plan.schedule.as_ref().map(|s| s.timezone.name()),
                        "next": runs,
                        "drill": l.plan.drill.as_ref().map(|d| json!({
                            "cron": d.schedule.cron_source,
                            "timezone": d.schedule.timezone.name(),
                            "next": next_runs(&d.schedule, now, args.count),
                        })),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Output::Human => {
            let mut t = table(&["plan", "schedule", "time zone", "next runs (local)"]);
            for (l, runs) in &rows {
                let (cron, tz, next) = match &l.plan.schedule {
                    None => (
                        "-".to_string(),
                        "-".to_string(),
                        "not scheduled".to_string(),
                    ),
                    Some(s) => (
                        s.cron_source.clone(),
                        s.timezone.name().to_string(),
                        runs.iter()
                            .map(|r| {
                                r.with_timezone(&s.timezone)
                                    .format("%a %Y-%m-%d %H:%M:%S %Z")
                                    .to_string()
                            })
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ),
                };
                t.add_row(vec![l.plan.name.clone(), cron, tz, next]);
                if let Some(d) = &l.plan.drill {
                    let s = &d.schedule;
                    let next = next_runs(s, now, args.count)
                        .iter()
                        .map(|r| {
                            r.with_timezone(&s.timezone)
                                .format("%a %Y-%m-%d %H:%M:%S %Z")
                                .to_string()
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    t.add_row(vec![
                        format!("{} (drills)", l.plan.name),
                        s.cron_source.clone(),
                        s.timezone.name().to_string(),
                        next,
                    ]);
                }
            }
            println!("{t}");
        }
    }
    Ok(if set.broken.is_empty() {
        exit::OK
    } else {
        exit::USAGE
    })
}

/// The slot each plan last ran, kept across restarts.
struct Slots {
    path: PathBuf,
    map: BTreeMap<String, DateTime<Utc>>,
}

impl Slots {
    fn load(dir: &Path) -> Slots {
        let path = dir.join("agent-schedule.json");
        let map = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        Slots { path, map }
    }
    fn set(&mut self, plan: &str, slot: DateTime<Utc>) -> std::io::Result<()> {
        self.map.insert(plan.to_string(), slot);
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.map)?)?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// What every plan run of this agent shares.
#[derive(Clone)]
struct RunContext {
    endpoint: Option<String>,
    state_dir: PathBuf,
    logs: Logs,
    shard: Option<(u32, u32)>,
    poll: f64,
    metrics: Arc<Mutex<Metrics>>,
}

/// Runs a plan's backup (+ copy) and, at the same time, its prune; one ledger
/// job each.
async fn run_plan(loaded: Arc<Loaded>, cx: RunContext, slot: DateTime<Utc>) -> Vec<jobs::Report> {
    let plan = &loaded.plan;
    let logs = &cx.logs;
    let tenants = shard_tenants(&loaded, cx.shard);
    if tenants.is_empty() {
        logs.write(
            LogFile::Cvd,
            None,
            "CvdAgent::RunPlan",
            &format!("Plan [{}]: no tenant in this agent's shard", plan.name),
        );
        return Vec::new();
    }
    let admin = admin_session(&loaded.accounts, &Endpoint(cx.endpoint.clone()), logs).await;
    let ledger = match Ledger::open(&cx.state_dir) {
        Ok(l) => Arc::new(Mutex::new(l)),
        Err(e) => {
            logs.write(
                LogFile::Cvd,
                None,
                "CvdAgent::RunPlan",
                &format!("Plan [{}] not run: {e}", plan.name),
            );
            return Vec::new();
        }
    };
    let Some(_plan_lock) = wait_for_plan_lock(&cx.state_dir, &plan.name, logs).await else {
        return Vec::new();
    };
    let mut options = JobOptions::for_plan(plan);
    options.poll_initial = Duration::from_secs_f64(cx.poll.max(0.05));
    let pacer = admin.pacer();
    logs.write(
        LogFile::Cvd,
        None,
        "CvdAgent::RunPlan",
        &format!(
            "Running plan [{}] for slot {} on {} tenant(s)",
            plan.name,
            slot.to_rfc3339(),
            tenants.len()
        ),
    );
    // Backup then copy, and the prune beside them. The prune deletes what has
    // expired at once and looks again as the jobs complete what its points
    // wait for and as each job ends (see
    // rolesnap_core::jobs::prune::prune_tenant): the outcome is that of a prune run
    // after them, in less time than the two one after the other.
    let (done, pruned) = jobs::run_night(
        !plan.copies.is_empty(),
        !plan.vaults.is_empty(),
        Some(Utc::now()),
        |kind, beside| {
            jobs::run(Request {
                kind,
                plan,
                tenants: &tenants,
                vaults: &loaded.accounts.vaults,
                known_tenants: &loaded.accounts.tenants,
                admin: &admin,
                filter: Filter::default(),
                options: options.clone(),
                logs,
                ledger: Some(ledger.clone()),
                pacer: pacer.clone(),
                beside,
                on_total: Arc::new(|_| {}),
                on_done: Arc::new(|_| {}),
                on_started: Arc::new(|_| {}),
            })
        },
    )
    .await;
    let reports = collect_reports(&cx, &plan.name, done.into_iter().chain(pruned));
    // Alerts for the jobs that failed; a sending failure is only logged.
    rolesnap_core::alerts::job_alerts(&loaded, &admin, &cx.state_dir, logs, &reports).await;
    reports
}

/// Tells the plan's `[notify]` that slots did not run (sent once per gap,
/// see [`Event::missed_run`]); in the background, so scheduling goes on.
fn alert_missed(
    loaded: &Arc<Loaded>,
    cx: &RunContext,
    event: Event,
) -> Option<tokio::task::JoinHandle<()>> {
    loaded.notify()?;
    let (loaded, cx) = (loaded.clone(), cx.clone());
    Some(tokio::spawn(async move {
        let Some(notify) = loaded.notify() else {
            return;
        };
        let admin = admin_session(&loaded.accounts, &Endpoint(cx.endpoint.clone()), &cx.logs).await;
        Notifier::new(notify, Some(admin.config), &cx.state_dir, &cx.logs)
            .send(&event)
            .await;
    }))
}

/// Longest wait at exit for alerts still being sent.
const ALERT_DRAIN: Duration = Duration::from_secs(90);

/// The plan's tenants that belong to this agent's shard.
fn shard_tenants(loaded: &Loaded, shard: Option<(u32, u32)>) -> Vec<Tenant> {
    loaded
        .plan
        .tenant_names()
        .iter()
        .filter_map(|n| loaded.accounts.tenant(n).cloned())
        .filter(|t| shard.is_none_or(|(k, n)| in_shard(&t.name, k, n)))
        .collect()
}

/// One run of a plan at a time on this state directory: an on-demand
/// `backup` of the same plan is waited for. `None` (logged) when the lock
/// cannot be taken at all.
async fn wait_for_plan_lock(state_dir: &Path, plan: &str, logs: &Logs) -> Option<PlanLock> {
    let mut said = false;
    loop {
        match PlanLock::try_acquire(state_dir, plan, "agent") {
            Ok(Ok(l)) => return Some(l),
            Ok(Err(busy)) => {
                if !said {
                    logs.write(
                        LogFile::Cvd,
                        None,
                        "CvdAgent::RunPlan",
                        &format!("{busy}; waiting for it to end"),
                    );
                    said = true;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                logs.write(
                    LogFile::Cvd,
                    None,
                    "CvdAgent::RunPlan",
                    &format!("Plan [{plan}] not run: {e}"),
                );
                return None;
            }
        }
    }
}

/// The reports of a plan run, each counted in the metrics; a ledger error
/// is logged and ends the list.
fn collect_reports<E: std::fmt::Display>(
    cx: &RunContext,
    plan: &str,
    results: impl Iterator<Item = Result<jobs::Report, E>>,
) -> Vec<jobs::Report> {
    let mut reports = Vec::new();
    for r in results {
        match r {
            Ok(r) => {
                cx.metrics
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .record(&r);
                reports.push(r);
            }
            Err(e) => {
                cx.logs.write(
                    LogFile::Cvd,
                    None,
                    "CvdAgent::RunPlan",
                    &format!("Plan [{plan}]: ledger error: {e}"),
                );
                break;
            }
        }
    }
    reports
}

/// The plans after a reload: each file that loads in its new version, each
/// broken file in its last good version (if it had one), files that are gone
/// dropped. Returns them and the number of broken files.
fn reload(current: &[Arc<Loaded>], set: &PlanSet) -> (Vec<Arc<Loaded>>, usize) {
    let mut next = set.good.clone();
    for (file, _) in &set.broken {
        if let Some(old) = current.iter().find(|k| &k.plan.source == file) {
            if !next.iter().any(|n| n.plan.name == old.plan.name) {
                next.push(old.clone());
            }
        }
    }
    (next, set.broken.len())
}

fn event(json_events: bool, v: serde_json::Value) {
    if json_events {
        println!("{v}");
    }
}

/// Logs every broken plan file in cvd.log (and on stderr at start).
fn log_broken(logs: &Logs, set: &PlanSet, func: &str, kept: &[Arc<Loaded>]) {
    for (file, e) in &set.broken {
        let keeping = kept
            .iter()
            .find(|k| &k.plan.source == file)
            .map(|k| format!("; keeping its last good version of plan [{}]", k.plan.name))
            .unwrap_or_else(|| "; not run".to_string());
        logs.write(
            LogFile::Cvd,
            None,
            func,
            &format!("Plan file [{}] does not load: {e}{keeping}", file.display()),
        );
    }
}

/// Takes the state directory's agent lock; `Err(exit code)` (said on
/// stderr) when another agent holds it.
fn lock_state_dir(global: &Global) -> anyhow::Result<Result<File, u8>> {
    let lock_path = global.state_dir.join("agent.lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        eprintln!(
            "error: another rolesnap agent is already running on state directory {} (it holds {}); \
             one agent per state directory",
            global.state_dir.display(),
            lock_path.display()
        );
        return Ok(Err(exit::FAILED));
    }
    Ok(Ok(lock))
}

/// `--shard` parsed and `--metrics` checked; `Err(exit code)` (said on
/// stderr) for a bad value.
fn check_flags(args: &AgentArgs) -> Result<Option<(u32, u32)>, u8> {
    let shard = match &args.shard {
        None => None,
        Some(s) => match parse_shard(s) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("error: --shard {e}");
                return Err(exit::USAGE);
            }
        },
    };
    if let Some(addr) = args.metrics {
        if !addr.ip().is_loopback() && !args.metrics_allow_remote {
            eprintln!(
                "error: --metrics {addr}: metrics are served on loopback addresses only, unless \
                 --metrics-allow-remote (e.g. the pod IP, for in-cluster scraping)"
            );
            return Err(exit::USAGE);
        }
    }
    Ok(shard)
}

/// The plans to start with; `Err(exit code)` (said on stderr) when there is
/// none, or a broken one under `--strict`. Broken files otherwise are warned
/// about and skipped.
fn plans_at_start(args: &AgentArgs) -> anyhow::Result<Result<PlanSet, u8>> {
    let set = load_all(&args.plans)?;
    if set.good.is_empty() && set.broken.is_empty() {
        eprintln!(
            "error: no plan file in {}; nothing to run",
            args.plans
                .plans
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(Err(exit::USAGE));
    }
    if !set.broken.is_empty() && (args.strict || set.good.is_empty()) {
        // --strict, or nothing at all to run: a configuration error.
        print_broken(&set, "error");
        if !args.strict {
            eprintln!("error: no plan file loads; nothing to run");
        }
        return Ok(Err(exit::USAGE));
    }
    print_broken(&set, "warning: plan file skipped");
    Ok(Ok(set))
}

/// Opens the ledger (which records dead jobs Killed) and logs the start
/// line; a log that cannot be written is a [`crate::output::LogDirError`].
fn log_start(
    global: &Global,
    logs: &Logs,
    set: &PlanSet,
    shard: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    // Opening the ledger records dead jobs Killed; it says which.
    let opened = Ledger::open(&global.state_dir)?;
    let agent_id = opened.agent_id().to_string();
    let killed = opened.killed_on_open().to_vec();
    drop(opened);
    logs.try_write(
        LogFile::Cvd,
        None,
        "CvdAgent::Start",
        &format!(
            "rolesnap agent {} started (pid {}, agent id {agent_id}): {} plan(s){}{}{}",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            set.good.len(),
            if set.broken.is_empty() {
                String::new()
            } else {
                format!(", {} plan file(s) that do not load", set.broken.len())
            },
            shard
                .map(|(k, n)| format!(", shard {k}/{n}"))
                .unwrap_or_default(),
            if killed.is_empty() {
                String::new()
            } else {
                format!(", marked Killed: {killed:?}")
            }
        ),
    )
    .map_err(|e| crate::output::LogDirError(format!("cannot write the log: {e}")))?;
    Ok(())
}

/// One job a plan run recorded, as the scheduler tells it.
pub(super) struct Ran {
    plan: String,
    job: u64,
    job_type: rolesnap_core::store::ledger::JobType,
    status: rolesnap_core::store::ledger::JobStatus,
}

/// A plan run in flight (its backup, or its drills): the name it runs
/// under and, once done, its jobs.
type PlanRun = LocalBoxFuture<'static, (String, Vec<Ran>)>;

/// The scheduler's state: the plans, the slots they last ran, the runs in
/// flight and the worst exit code so far.
struct Scheduler {
    plans: Vec<Arc<Loaded>>,
    slots: Slots,
    catch_up: chrono::Duration,
    cx: RunContext,
    json_events: bool,
    running: FuturesUnordered<PlanRun>,
    busy: Vec<String>,
    worst: u8,
    /// Missed-run alerts this process has handed over (the state
    /// directory's de-duplication file is the record across restarts).
    told: std::collections::BTreeSet<String>,
    /// Those alerts still being sent (waited for at exit).
    sending: Vec<tokio::task::JoinHandle<()>>,
    /// The periodic RPO check (see [`rpo`]).
    rpo: rpo::RpoChecker,
}

impl Scheduler {
    /// Starts every plan due at `now` that is not already running; returns
    /// when the next one is due (at most one tick away).
    fn start_due(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut next_wake = now + chrono::Duration::from_std(TICK).expect("tick");
        // Each plan's backup schedule, and its [drill] schedule under its
        // own slot key (see drills::slot_key).
        let runs: Vec<(Arc<Loaded>, String, rolesnap_core::config::Schedule)> = self
            .plans
            .iter()
            .flat_map(|l| {
                let backup = l
                    .plan
                    .schedule
                    .clone()
                    .map(|s| (l.clone(), l.plan.name.clone(), s));
                let drill = l.plan.drill.as_ref().map(|d| {
                    (
                        l.clone(),
                        drills::slot_key(&l.plan.name),
                        d.schedule.clone(),
                    )
                });
                backup.into_iter().chain(drill)
            })
            .collect();
        for (l, name, s) in runs {
            if self.busy.contains(&name) {
                continue;
            }
            let last = self.slots.map.get(&name).copied();
            let d = decide(&s, last, now, self.catch_up);
            if let (Some(last), true) = (last, d.skipped > 0) {
                let e = Event::missed_run(&name, last, None, d.skipped, now, &d.reason);
                if self.told.insert(e.key.clone()) {
                    self.cx.logs.write(
                        LogFile::Cvd,
                        None,
                        "CvdAgent::Schedule",
                        &format!(
                            "Plan [{name}]: {} scheduled run(s) missed since {}",
                            d.skipped,
                            last.to_rfc3339()
                        ),
                    );
                    self.sending.extend(alert_missed(&l, &self.cx, e));
                }
            }
            match d.due {
                Due::Now { slot, missed } => {
                    self.cx.logs.write(
                        LogFile::Cvd,
                        None,
                        "CvdAgent::Schedule",
                        &format!(
                            "Plan [{name}] due for slot {} ({missed} older slot(s) skipped): {}",
                            slot.to_rfc3339(),
                            d.reason
                        ),
                    );
                    self.start(l, name, slot);
                }
                Due::At(t) => next_wake = next_wake.min(t),
            }
        }
        next_wake
    }

    /// Waits (at most `limit`) for the alerts still being sent.
    async fn drain_alerts(&mut self, limit: Duration) {
        self.sending.retain(|h| !h.is_finished());
        let all = futures::future::join_all(self.sending.drain(..));
        let _ = tokio::time::timeout(limit, all).await;
    }

    /// Records `slot` as the last of `name` (the plan, or its drills) and
    /// starts its run.
    fn start(&mut self, l: Arc<Loaded>, name: String, slot: DateTime<Utc>) {
        if let Err(e) = self.slots.set(&name, slot) {
            self.cx.logs.write(
                LogFile::Cvd,
                None,
                "CvdAgent::Schedule",
                &format!("Cannot record the slot: {e}"),
            );
        }
        let drill = name != l.plan.name;
        event(
            self.json_events,
            json!({"event": "run", "plan": l.plan.name, "slot": slot, "drill": drill}),
        );
        self.busy.push(name.clone());
        let cx = self.cx.clone();
        self.running.push(Box::pin(async move {
            let ran = if drill {
                drills::run_drills(l, cx, slot).await
            } else {
                run_plan(l, cx, slot)
                    .await
                    .into_iter()
                    .map(|r| Ran {
                        plan: r.plan,
                        job: r.job,
                        job_type: r.job_type,
                        status: r.status,
                    })
                    .collect()
            };
            (name, ran)
        }));
    }

    /// A plan run ended: the plan may run again, its jobs count in the exit
    /// code and are told as events.
    fn finished(&mut self, name: &str, reports: &[Ran]) {
        self.busy.retain(|b| b != name);
        for r in reports {
            self.worst = self.worst.max(crate::backup::exit_code(r.status));
            event(
                self.json_events,
                json!({"event": "job", "plan": r.plan, "job": r.job, "type": r.job_type, "status": r.status}),
            );
        }
    }

    /// SIGHUP: re-reads the plans (see [`reload`]); a failed read keeps the
    /// running ones.
    fn reload(&mut self, args: &PlansArgs) {
        let logs = &self.cx.logs;
        match load_all(args) {
            Ok(set) => {
                let (next, broken) = reload(&self.plans, &set);
                log_broken(logs, &set, "CvdAgent::Reload", &self.plans);
                logs.write(
                    LogFile::Cvd,
                    None,
                    "CvdAgent::Reload",
                    &format!(
                        "Reloaded {} plan(s){}",
                        next.len(),
                        if broken == 0 {
                            String::new()
                        } else {
                            format!("; {broken} plan file(s) do not load")
                        }
                    ),
                );
                self.cx
                    .metrics
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .config_errors = broken;
                self.plans = next;
            }
            Err(e) => logs.write(
                LogFile::Cvd,
                None,
                "CvdAgent::Reload",
                &format!("Reload failed, keeping the running plans: {e:#}"),
            ),
        }
    }
}

/// Shutdown: no new runs and no new job of a running one (a nightly
/// sequence does not go on to its copy job); in-flight jobs get the grace
/// period, the rest are recorded Killed.
async fn shut_down(
    global: &Global,
    args: &AgentArgs,
    logs: &Logs,
    mut running: FuturesUnordered<PlanRun>,
) -> anyhow::Result<()> {
    rolesnap_core::jobs::stop_new_jobs();
    logs.write(
        LogFile::Cvd,
        None,
        "CvdAgent::Stop",
        &format!(
            "Stopping: {} plan run(s) in flight, {} s grace",
            running.len(),
            args.grace
        ),
    );
    let drained = tokio::time::timeout(Duration::from_secs(args.grace), async {
        while let Some((name, _)) = running.next().await {
            logs.write(
                LogFile::Cvd,
                None,
                "CvdAgent::Stop",
                &format!("Plan [{name}] finished during shutdown"),
            );
        }
    })
    .await;
    if drained.is_err() {
        // Dropping the runs releases their job locks; the ledger then sees
        // them as dead and records them Killed.
        drop(running);
        // Opening the ledger finds them dead and records them Killed.
        let l = Ledger::open(&global.state_dir)?;
        let mut killed = l.killed_on_open().to_vec();
        killed.extend(l.mark_dead_jobs_killed()?);
        logs.write(
            LogFile::Cvd,
            None,
            "CvdAgent::Stop",
            &format!("Jobs stopped and recorded Killed: {killed:?}"),
        );
        event(args.json_events, json!({"event": "killed", "jobs": killed}));
    }
    Ok(())
}

/// `rolesnap agent`: checks, start, then the scheduling loop until a signal
/// (or, with `--once`, until nothing more is due).
pub async fn run(global: &Global, args: AgentArgs) -> anyhow::Result<u8> {
    let lock = match lock_state_dir(global)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let shard = match check_flags(&args) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let set = match plans_at_start(&args)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let logs = crate::output::open_logs(global)?;
    log_start(global, &logs, &set, shard)?;
    log_broken(&logs, &set, "CvdAgent::Start", &[]);
    event(
        args.json_events,
        json!({
            "event": "start",
            "plans": set.good.iter().map(|p| &p.plan.name).collect::<Vec<_>>(),
            "config_errors": set.broken.iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>(),
        }),
    );
    let metrics = Arc::new(Mutex::new(Metrics {
        config_errors: set.broken.len(),
        ..Metrics::default()
    }));
    if let Some(addr) = args.metrics {
        tokio::spawn(serve_metrics(addr, metrics.clone(), logs.clone()));
    }
    let mut sched = Scheduler {
        plans: set.good,
        slots: Slots::load(&global.state_dir),
        catch_up: chrono::Duration::minutes(args.catch_up as i64),
        cx: RunContext {
            endpoint: global.endpoint_url.clone(),
            state_dir: global.state_dir.clone(),
            logs: logs.clone(),
            shard,
            poll: args.poll_interval,
            metrics,
        },
        json_events: args.json_events,
        running: FuturesUnordered::new(),
        busy: Vec::new(),
        worst: exit::OK,
        told: Default::default(),
        sending: Vec::new(),
        rpo: rpo::RpoChecker::new(if args.once {
            0
        } else {
            args.rpo_check_interval
        }),
    };
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    loop {
        let next_wake = sched.start_due(Utc::now());
        if args.once && sched.running.is_empty() {
            logs.write(
                LogFile::Cvd,
                None,
                "CvdAgent::Stop",
                "agent --once: nothing (more) due; exiting",
            );
            sched.drain_alerts(ALERT_DRAIN).await;
            return Ok(sched.worst);
        }
        let sleep = (next_wake - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(TICK);
        tokio::select! {
            _ = tokio::time::sleep(sleep), if !args.once => {}
            Some((name, reports)) = sched.running.next(), if !sched.running.is_empty() => {
                sched.finished(&name, &reports);
            }
            _ = sched.rpo.tick(&sched.plans, &sched.cx), if sched.rpo.enabled() => {}
            _ = sighup.recv() => sched.reload(&args.plans),
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    shut_down(global, &args, &logs, std::mem::take(&mut sched.running)).await?;
    // Alerts still being sent get the grace period too.
    sched
        .drain_alerts(ALERT_DRAIN.min(Duration::from_secs(args.grace)))
        .await;
    logs.write(
        LogFile::Cvd,
        None,
        "CvdAgent::Stop",
        "rolesnap agent stopped",
    );
    event(args.json_events, json!({"event": "stop"}));
    drop(lock);
    Ok(exit::OK)
}
