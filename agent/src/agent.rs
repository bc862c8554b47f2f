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
use fs2::FileExt;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

use rolesnap_core::backup::BackupOptions;
use rolesnap_core::job::{self, Filter, Request};
use rolesnap_core::ledger::Ledger;
use rolesnap_core::schedule::{decide, in_shard, next_runs, parse_shard, Due};
use rolesnap_core::{admin_session, load_plan, ConfigError, Endpoint, Loaded, LogFile, Logs};

use crate::cli::{AgentArgs, Global, Output, PlansArgs, ScheduleArgs};
use crate::exit;
use crate::output::table;

/// Longest sleep between looks at the clock (a changed plan is seen this fast).
const TICK: Duration = Duration::from_secs(30);

/// Every plan file named or found in a named directory (accounts files skipped).
fn plan_files(args: &PlansArgs) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in &args.plans {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read plan directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .filter(|f| {
                    std::fs::read_to_string(f)
                        .is_ok_and(|s| !rolesnap_core::config::is_accounts_file(&s))
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

fn load_all(args: &PlansArgs) -> anyhow::Result<Vec<Arc<Loaded>>> {
    let mut out: Vec<Arc<Loaded>> = Vec::new();
    for f in plan_files(args)? {
        let l = load_plan(&f, args.accounts.as_deref())?;
        if let Some(other) = out.iter().find(|o| o.plan.name == l.plan.name) {
            return Err(ConfigError {
                file: f.clone(),
                line: 0,
                key: "plan.name".into(),
                message: format!(
                    "plan name `{}` is also used by {}",
                    l.plan.name,
                    other.plan.source.display()
                ),
            }
            .into());
        }
        out.push(Arc::new(l));
    }
    Ok(out)
}

pub fn schedule(global: &Global, args: ScheduleArgs) -> anyhow::Result<u8> {
    let plans = load_all(&args.plans)?;
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
            }
            println!("{t}");
        }
    }
    Ok(exit::OK)
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

/// Prometheus metrics, served as text.
#[derive(Default)]
struct Metrics {
    jobs: BTreeMap<(String, String, String), u64>,
    protected: BTreeMap<String, u64>,
    last_success: BTreeMap<(String, String), i64>,
    retries: BTreeMap<String, u64>,
}

impl Metrics {
    fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("# HELP rolesnap_jobs_total Jobs run by this agent, by type, plan and status.\n# TYPE rolesnap_jobs_total counter\n");
        for ((t, p, st), n) in &self.jobs {
            s.push_str(&format!(
                "rolesnap_jobs_total{{type=\"{t}\",plan=\"{p}\",status=\"{st}\"}} {n}\n"
            ));
        }
        s.push_str("# HELP rolesnap_resources_protected_total Resources given a recovery point, by plan.\n# TYPE rolesnap_resources_protected_total counter\n");
        for (p, n) in &self.protected {
            s.push_str(&format!(
                "rolesnap_resources_protected_total{{plan=\"{p}\"}} {n}\n"
            ));
        }
        s.push_str("# HELP rolesnap_last_success_timestamp_seconds End of the last backup that protected every resource of a tenant.\n# TYPE rolesnap_last_success_timestamp_seconds gauge\n");
        for ((p, t), ts) in &self.last_success {
            s.push_str(&format!(
                "rolesnap_last_success_timestamp_seconds{{plan=\"{p}\",tenant=\"{t}\"}} {ts}\n"
            ));
        }
        s.push_str("# HELP rolesnap_failed_items_total Resources, tenants or regions that ended a job with an error, by plan.\n# TYPE rolesnap_failed_items_total counter\n");
        for (p, n) in &self.retries {
            s.push_str(&format!(
                "rolesnap_failed_items_total{{plan=\"{p}\"}} {n}\n"
            ));
        }
        let api = rolesnap_core::metrics::api_counts();
        s.push_str("# HELP rolesnap_api_calls_total AWS API call attempts (retries included), by service and operation.\n# TYPE rolesnap_api_calls_total counter\n");
        for (svc, op, n, _) in &api {
            s.push_str(&format!(
                "rolesnap_api_calls_total{{service=\"{svc}\",operation=\"{op}\"}} {n}\n"
            ));
        }
        s.push_str("# HELP rolesnap_api_throttled_total AWS API attempts answered with throttling, by service and operation.\n# TYPE rolesnap_api_throttled_total counter\n");
        for (svc, op, _, t) in &api {
            s.push_str(&format!(
                "rolesnap_api_throttled_total{{service=\"{svc}\",operation=\"{op}\"}} {t}\n"
            ));
        }
        s
    }

    fn record(&mut self, report: &job::Report) {
        *self
            .jobs
            .entry((
                report.job_type.as_str().to_string(),
                report.plan.clone(),
                report.status.to_string(),
            ))
            .or_default() += 1;
        if report.job_type == rolesnap_core::ledger::JobType::SnapBackup {
            let done = report.completed() as u64;
            *self.protected.entry(report.plan.clone()).or_default() += done;
            let mut tenants: BTreeMap<&str, bool> = BTreeMap::new();
            for s in &report.summary {
                *tenants.entry(&s.tenant).or_insert(true) &= job::item_ok(&s.status);
            }
            for (t, ok) in tenants {
                if ok {
                    self.last_success
                        .insert((report.plan.clone(), t.to_string()), report.end);
                }
            }
        }
        let failed = report.problems().count() as u64;
        if failed > 0 {
            *self.retries.entry(report.plan.clone()).or_default() += failed;
        }
    }
}

async fn serve_metrics(addr: std::net::SocketAddr, metrics: Arc<Mutex<Metrics>>, logs: Logs) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            logs.write(
                LogFile::Cvd,
                None,
                "CvdAgent::Metrics",
                &format!("Cannot listen on {addr}: {e}"),
            );
            return;
        }
    };
    logs.write(
        LogFile::Cvd,
        None,
        "CvdAgent::Metrics",
        &format!("Serving Prometheus metrics on http://{addr}/metrics"),
    );
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let body = metrics.lock().unwrap_or_else(|p| p.into_inner()).render();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
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
async fn run_plan(loaded: Arc<Loaded>, cx: RunContext, slot: DateTime<Utc>) -> Vec<job::Report> {
    let RunContext {
        endpoint: global_endpoint,
        state_dir,
        logs,
        shard,
        poll,
        metrics,
    } = cx;
    let plan = &loaded.plan;
    let tenants: Vec<_> = plan
        .tenant_names()
        .iter()
        .filter_map(|n| loaded.accounts.tenant(n).cloned())
        .filter(|t| shard.is_none_or(|(k, n)| in_shard(&t.name, k, n)))
        .collect();
    let mut reports = Vec::new();
    if tenants.is_empty() {
        logs.write(
            LogFile::Cvd,
            None,
            "CvdAgent::RunPlan",
            &format!("Plan [{}]: no tenant in this agent's shard", plan.name),
        );
        return reports;
    }
    let admin = admin_session(&loaded.accounts, &Endpoint(global_endpoint), &logs).await;
    let ledger = match Ledger::open(&state_dir) {
        Ok(l) => Arc::new(Mutex::new(l)),
        Err(e) => {
            logs.write(
                LogFile::Cvd,
                None,
                "CvdAgent::RunPlan",
                &format!("Plan [{}] not run: {e}", plan.name),
            );
            return reports;
        }
    };
    // One run of a plan at a time on this state directory: an on-demand
    // `backup` of the same plan is waited for.
    let mut said = false;
    let _plan_lock = loop {
        match rolesnap_core::ledger::PlanLock::try_acquire(&state_dir, &plan.name, "agent") {
            Ok(Ok(l)) => break l,
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
                    &format!("Plan [{}] not run: {e}", plan.name),
                );
                return reports;
            }
        }
    };
    let mut options = BackupOptions::for_plan(plan);
    options.poll_initial = Duration::from_secs_f64(poll.max(0.05));
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
    // expired at once and looks again as each job ends (see
    // rolesnap_core::prune::prune_tenant): the outcome is that of a prune run
    // after them, in less time than the two one after the other.
    let (done, pruned) =
        job::run_night(!plan.copies.is_empty(), Some(Utc::now()), |kind, beside| {
            job::run(Request {
                kind,
                plan,
                tenants: &tenants,
                admin: &admin,
                filter: Filter::default(),
                options: options.clone(),
                logs: &logs,
                ledger: Some(ledger.clone()),
                pacer: pacer.clone(),
                beside,
                on_total: Arc::new(|_| {}),
                on_done: Arc::new(|_| {}),
            })
        })
        .await;
    for r in done.into_iter().chain(pruned) {
        match r {
            Ok(r) => {
                metrics.lock().unwrap_or_else(|p| p.into_inner()).record(&r);
                reports.push(r);
            }
            Err(e) => {
                logs.write(
                    LogFile::Cvd,
                    None,
                    "CvdAgent::RunPlan",
                    &format!("Plan [{}]: ledger error: {e}", plan.name),
                );
                break;
            }
        }
    }
    reports
}

fn event(json_events: bool, v: serde_json::Value) {
    if json_events {
        println!("{v}");
    }
}

pub async fn run(global: &Global, args: AgentArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&global.state_dir).with_context(|| {
        format!(
            "cannot create state directory {}",
            global.state_dir.display()
        )
    })?;
    let lock_path = global.state_dir.join("agent.lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    if lock.try_lock_exclusive().is_err() {
        eprintln!(
            "error: another rolesnap agent is already running on state directory {} (it holds {}); \
             one agent per state directory",
            global.state_dir.display(),
            lock_path.display()
        );
        return Ok(exit::FAILED);
    }
    let shard = match &args.shard {
        None => None,
        Some(s) => match parse_shard(s) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("error: --shard {e}");
                return Ok(exit::USAGE);
            }
        },
    };
    if let Some(addr) = args.metrics {
        if !addr.ip().is_loopback() {
            eprintln!("error: --metrics {addr}: metrics are served on loopback addresses only");
            return Ok(exit::USAGE);
        }
    }
    let mut plans = load_all(&args.plans)?;
    let logs = Logs::open(&global.log_dir, global.log_max_bytes, global.verbose).map_err(|e| {
        anyhow::anyhow!(
            "cannot open log directory {}: {e}",
            global.log_dir.display()
        )
    })?;
    // Opening the ledger records dead jobs Killed; it says which.
    let opened = Ledger::open(&global.state_dir)?;
    let agent_id = opened.agent_id().to_string();
    let killed = opened.killed_on_open().to_vec();
    drop(opened);
    logs.write(
        LogFile::Cvd,
        None,
        "CvdAgent::Start",
        &format!(
            "rolesnap agent {} started (pid {}, agent id {agent_id}): {} plan(s){}{}",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            plans.len(),
            shard
                .map(|(k, n)| format!(", shard {k}/{n}"))
                .unwrap_or_default(),
            if killed.is_empty() {
                String::new()
            } else {
                format!(", marked Killed: {killed:?}")
            }
        ),
    );
    event(
        args.json_events,
        json!({"event": "start", "plans": plans.iter().map(|p| &p.plan.name).collect::<Vec<_>>()}),
    );
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    if let Some(addr) = args.metrics {
        tokio::spawn(serve_metrics(addr, metrics.clone(), logs.clone()));
    }
    let cx = RunContext {
        endpoint: global.endpoint_url.clone(),
        state_dir: global.state_dir.clone(),
        logs: logs.clone(),
        shard,
        poll: args.poll_interval,
        metrics: metrics.clone(),
    };
    let mut slots = Slots::load(&global.state_dir);
    let catch_up = chrono::Duration::minutes(args.catch_up as i64);
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut running: FuturesUnordered<_> = FuturesUnordered::new();
    let mut busy: Vec<String> = Vec::new();
    let mut worst = exit::OK;
    loop {
        let now = Utc::now();
        let mut next_wake = now + chrono::Duration::from_std(TICK).expect("tick");
        for l in &plans {
            let Some(s) = &l.plan.schedule else { continue };
            if busy.contains(&l.plan.name) {
                continue;
            }
            let d = decide(s, slots.map.get(&l.plan.name).copied(), now, catch_up);
            match d.due {
                Due::Now { slot, missed } => {
                    logs.write(
                        LogFile::Cvd,
                        None,
                        "CvdAgent::Schedule",
                        &format!(
                            "Plan [{}] due for slot {} ({missed} older slot(s) skipped): {}",
                            l.plan.name,
                            slot.to_rfc3339(),
                            d.reason
                        ),
                    );
                    if let Err(e) = slots.set(&l.plan.name, slot) {
                        logs.write(
                            LogFile::Cvd,
                            None,
                            "CvdAgent::Schedule",
                            &format!("Cannot record the slot: {e}"),
                        );
                    }
                    event(
                        args.json_events,
                        json!({"event": "run", "plan": l.plan.name, "slot": slot}),
                    );
                    busy.push(l.plan.name.clone());
                    let name = l.plan.name.clone();
                    let fut = run_plan(l.clone(), cx.clone(), slot);
                    running.push(async move { (name, fut.await) });
                }
                Due::At(t) => next_wake = next_wake.min(t),
            }
        }
        if args.once && running.is_empty() {
            logs.write(
                LogFile::Cvd,
                None,
                "CvdAgent::Stop",
                "agent --once: nothing (more) due; exiting",
            );
            return Ok(worst);
        }
        let sleep = (next_wake - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(TICK);
        tokio::select! {
            _ = tokio::time::sleep(sleep), if !args.once => {}
            Some((name, reports)) = running.next(), if !running.is_empty() => {
                busy.retain(|b| b != &name);
                for r in &reports {
                    worst = worst.max(crate::backup::exit_code(r.status));
                    event(args.json_events, json!({"event": "job", "plan": r.plan, "job": r.job, "type": r.job_type, "status": r.status}));
                }
            }
            _ = sighup.recv() => {
                match load_all(&args.plans) {
                    Ok(p) => {
                        logs.write(LogFile::Cvd, None, "CvdAgent::Reload", &format!("Reloaded {} plan(s)", p.len()));
                        plans = p;
                    }
                    Err(e) => logs.write(LogFile::Cvd, None, "CvdAgent::Reload", &format!("Reload failed, keeping the running plans: {e:#}")),
                }
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    // Shutdown: no new runs and no new job of a running one (a nightly
    // sequence does not go on to its copy job); in-flight jobs get the grace
    // period.
    rolesnap_core::job::stop_new_jobs();
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
