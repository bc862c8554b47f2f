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
use futures::stream::{FuturesUnordered, StreamExt};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

use rolesnap_core::decide::schedule::{decide, in_shard, next_runs, parse_shard, Due};
use rolesnap_core::jobs::work::JobOptions;
use rolesnap_core::jobs::{self, Filter, Request};
use rolesnap_core::store::ledger::Ledger;
use rolesnap_core::{admin_session, load_plan, ConfigError, Endpoint, Loaded, LogFile, Logs};

use crate::cli::{AgentArgs, Global, Output, PlansArgs, ScheduleArgs};
use crate::exit;
use crate::output::table;

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

/// Prometheus metrics of this agent.
#[derive(Default)]
struct Metrics {
    jobs: BTreeMap<(String, String, String), u64>,
    protected: BTreeMap<String, u64>,
    last_success: BTreeMap<(String, String), i64>,
    retries: BTreeMap<String, u64>,
    /// Plan files of `--plans` that do not load (the last load or reload).
    config_errors: usize,
}

type Labels = Vec<(&'static str, String)>;

/// A labelled counter family filled from `values`.
fn counters<K>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (K, u64)>,
    labels: impl Fn(K) -> Labels,
) {
    let family = Family::<Labels, Counter>::default();
    for (k, n) in values {
        family.get_or_create(&labels(k)).inc_by(n);
    }
    registry.register(name, help, family);
}

impl Metrics {
    /// The OpenMetrics text exposition (prometheus-client's encoder).
    fn render(&self) -> String {
        let mut r = Registry::default();
        counters(
            &mut r,
            "rolesnap_jobs",
            "Jobs run by this agent, by type, plan and status.",
            self.jobs.iter().map(|(k, n)| (k, *n)),
            |(t, p, st)| {
                vec![
                    ("type", t.clone()),
                    ("plan", p.clone()),
                    ("status", st.clone()),
                ]
            },
        );
        counters(
            &mut r,
            "rolesnap_resources_protected",
            "Resources given a recovery point, by plan.",
            self.protected.iter().map(|(k, n)| (k, *n)),
            |p| vec![("plan", p.clone())],
        );
        let last = Family::<Labels, Gauge>::default();
        for ((p, t), ts) in &self.last_success {
            last.get_or_create(&vec![("plan", p.clone()), ("tenant", t.clone())])
                .set(*ts);
        }
        r.register(
            "rolesnap_last_success_timestamp_seconds",
            "End of the last backup that protected every resource of a tenant.",
            last,
        );
        counters(
            &mut r,
            "rolesnap_failed_items",
            "Resources, tenants or regions that ended a job with an error, by plan.",
            self.retries.iter().map(|(k, n)| (k, *n)),
            |p| vec![("plan", p.clone())],
        );
        let api = rolesnap_core::aws::metrics::api_counts();
        counters(
            &mut r,
            "rolesnap_api_calls",
            "AWS API call attempts (retries included), by service and operation.",
            api.iter().map(|(s, o, n, _)| ((s, o), *n)),
            |(s, o)| vec![("service", s.clone()), ("operation", o.clone())],
        );
        counters(
            &mut r,
            "rolesnap_api_throttled",
            "AWS API attempts answered with throttling, by service and operation.",
            api.iter().map(|(s, o, _, t)| ((s, o), *t)),
            |(s, o)| vec![("service", s.clone()), ("operation", o.clone())],
        );
        let errors = Gauge::<i64>::default();
        errors.set(i64::try_from(self.config_errors).unwrap_or(i64::MAX));
        r.register(
            "rolesnap_plan_config_errors",
            "Plan files that do not load (see cvd.log); the agent runs the others.",
            errors,
        );
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &r);
        out
    }

    fn record(&mut self, report: &jobs::Report) {
        *self
            .jobs
            .entry((
                report.job_type.as_str().to_string(),
                report.plan.clone(),
                report.status.to_string(),
            ))
            .or_default() += 1;
        if report.job_type == rolesnap_core::store::ledger::JobType::SnapBackup {
            let done = report.completed() as u64;
            *self.protected.entry(report.plan.clone()).or_default() += done;
            let mut tenants: BTreeMap<&str, bool> = BTreeMap::new();
            for s in &report.summary {
                *tenants.entry(&s.tenant).or_insert(true) &= jobs::item_ok(s.status);
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

/// Content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The answer to one HTTP request: `GET /metrics` only (404 for any other
/// path, 405 for another method on /metrics).
fn metrics_response(request_line: &str, metrics: &Mutex<Metrics>) -> String {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let (status, extra, content_type, body) = if path != "/metrics" {
        (
            "404 Not Found",
            "",
            "text/plain",
            "not found; metrics are at /metrics\n".to_string(),
        )
    } else if method != "GET" {
        (
            "405 Method Not Allowed",
            "Allow: GET\r\n",
            "text/plain",
            "only GET\n".to_string(),
        )
    } else {
        let body = metrics.lock().unwrap_or_else(|p| p.into_inner()).render();
        ("200 OK", "", OPENMETRICS, body)
    };
    format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
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
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // The request line, within 4 KiB and 10 s.
            let mut buf = Vec::with_capacity(1024);
            let read = tokio::time::timeout(Duration::from_secs(10), async {
                let mut chunk = [0u8; 1024];
                while !buf.contains(&b'\n') && buf.len() < 4096 {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.lines().next().unwrap_or_default();
            let resp = metrics_response(line, &metrics);
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
async fn run_plan(loaded: Arc<Loaded>, cx: RunContext, slot: DateTime<Utc>) -> Vec<jobs::Report> {
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
        match rolesnap_core::store::ledger::PlanLock::try_acquire(&state_dir, &plan.name, "agent") {
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
    let mut options = JobOptions::for_plan(plan);
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
    // rolesnap_core::jobs::prune::prune_tenant): the outcome is that of a prune run
    // after them, in less time than the two one after the other.
    let (done, pruned) =
        jobs::run_night(!plan.copies.is_empty(), Some(Utc::now()), |kind, beside| {
            jobs::run(Request {
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

pub async fn run(global: &Global, args: AgentArgs) -> anyhow::Result<u8> {
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
        return Ok(exit::USAGE);
    }
    if !set.broken.is_empty() && (args.strict || set.good.is_empty()) {
        // --strict, or nothing at all to run: a configuration error.
        print_broken(&set, "error");
        if !args.strict {
            eprintln!("error: no plan file loads; nothing to run");
        }
        return Ok(exit::USAGE);
    }
    print_broken(&set, "warning: plan file skipped");
    let logs = crate::output::open_logs(global)?;
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
    log_broken(&logs, &set, "CvdAgent::Start", &[]);
    let mut plans = set.good;
    event(
        args.json_events,
        json!({
            "event": "start",
            "plans": plans.iter().map(|p| &p.plan.name).collect::<Vec<_>>(),
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
                    Ok(set) => {
                        let (next, broken) = reload(&plans, &set);
                        log_broken(&logs, &set, "CvdAgent::Reload", &plans);
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
                        metrics.lock().unwrap_or_else(|p| p.into_inner()).config_errors = broken;
                        plans = next;
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
