//! `rolesnap backup`, `copy` and `prune`: the three job kinds of a plan.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rolesnap_core::aws::pace::Pacer;
use rolesnap_core::jobs::prune::NightLink;
use rolesnap_core::jobs::work::JobOptions;
use rolesnap_core::jobs::{self, Filter, Kind, Report, Request};
use rolesnap_core::store::ledger::{JobStatus, Ledger, PlanLock};

use crate::cli::{BackupArgs, CopyArgs, Global, Output, PlanArgs, PruneArgs};
use crate::exit;
use crate::jobs::print_report;
use crate::output::{setup, Setup};

pub fn exit_code(status: JobStatus) -> u8 {
    match status {
        JobStatus::Completed => exit::OK,
        JobStatus::CompletedWithErrors => exit::PARTIAL,
        _ => exit::FAILED,
    }
}

/// What a running job has come to, for its progress bar (a terminal) or its
/// periodic progress lines (stderr that is not a terminal).
#[derive(Default)]
struct Counts {
    total: AtomicUsize,
    /// Snapshots, images or copies started and waited for.
    started: AtomicUsize,
    done: AtomicUsize,
}

impl Counts {
    fn line(&self, kind: Kind, elapsed: Duration) -> String {
        progress_line(
            kind,
            self.total.load(Ordering::Relaxed),
            self.started.load(Ordering::Relaxed),
            self.done.load(Ordering::Relaxed),
            elapsed,
        )
    }
}

/// One progress line: per phase what is in flight and done, with the time
/// since the job started. Backup: `snapshot` (creates started of all
/// selected), `wait` (started, not yet complete), `done`; copy: `copy` in
/// flight and done; prune: points decided.
pub fn progress_line(
    kind: Kind,
    total: usize,
    started: usize,
    done: usize,
    elapsed: Duration,
) -> String {
    let in_flight = started.saturating_sub(done);
    let secs = elapsed.as_secs();
    let clock = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    match kind {
        Kind::Backup => format!(
            "backup {clock}: snapshot {started}/{total} started · wait {in_flight} in flight · done {done}/{total}"
        ),
        Kind::Copy | Kind::VaultCopy => format!(
            "{} {clock}: {in_flight} in flight · done {done}/{total}",
            if matches!(kind, Kind::Copy) { "copy" } else { "vault copy" }
        ),
        Kind::Prune { .. } => format!("prune {clock}: {done} point(s) settled"),
    }
}

/// Seconds between progress lines when stderr is not a terminal
/// (`ROLESNAP_PROGRESS_SECS`, default 30; 0 turns them off).
fn progress_interval() -> Option<Duration> {
    let secs = std::env::var("ROLESNAP_PROGRESS_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(30.0);
    (secs > 0.0).then(|| Duration::from_secs_f64(secs.max(0.05)))
}

fn progress(global: &Global) -> Option<ProgressBar> {
    if global.output != Output::Human || global.quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.enable_steady_tick(Duration::from_millis(200));
    Some(b)
}

/// Runs one job of `kind` with a progress bar on a terminal (none with `quiet_bar`).
async fn run_job(
    global: &Global,
    s: &Setup,
    kind: Kind,
    filter: Filter,
    options: JobOptions,
) -> anyhow::Result<Report> {
    let pacer = s.admin.pacer();
    run_job_with(global, s, kind, filter, options, pacer, true, None).await
}

/// `run_job` with a shared pacer (jobs side by side), no bar, or a link to
/// the other jobs of a nightly run (a prune beside a backup and copy job).
#[allow(clippy::too_many_arguments)]
async fn run_job_with(
    global: &Global,
    s: &Setup,
    kind: Kind,
    filter: Filter,
    options: JobOptions,
    pacer: Pacer,
    with_bar: bool,
    beside: Option<NightLink>,
) -> anyhow::Result<Report> {
    let ledger = if options.dry_run {
        None
    } else {
        Some(Arc::new(Mutex::new(Ledger::open(&global.state_dir)?)))
    };
    let bar = if with_bar { progress(global) } else { None };
    let counts = Arc::new(Counts::default());
    let t0 = std::time::Instant::now();
    // Not a terminal: a line on stderr every interval while the job runs.
    let ticker = if with_bar && bar.is_none() && !global.quiet && !options.dry_run {
        progress_interval().map(|every| {
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    eprintln!("progress: {}", counts.line(kind, t0.elapsed()));
                }
            })
        })
    } else {
        None
    };
    let update = {
        let (bar, counts) = (bar.clone(), counts.clone());
        move || {
            if let Some(b) = &bar {
                let (total, done) = (
                    counts.total.load(Ordering::Relaxed),
                    counts.done.load(Ordering::Relaxed),
                );
                b.set_length(total.max(done) as u64);
                b.set_position(done as u64);
                b.set_message(counts.line(kind, t0.elapsed()));
            }
        }
    };
    let (u1, u2, u3) = (update.clone(), update.clone(), update);
    let (c1, c2, c3) = (counts.clone(), counts.clone(), counts.clone());
    let report = jobs::run(Request {
        kind,
        plan: &s.loaded.plan,
        tenants: &s.tenants,
        vaults: &s.loaded.accounts.vaults,
        known_tenants: &s.loaded.accounts.tenants,
        admin: &s.admin,
        filter,
        options,
        logs: &s.logs,
        ledger,
        pacer,
        beside,
        // A copy job adds each destination region's copies as it queues them.
        on_total: Arc::new(move |n| {
            c1.total.fetch_add(n, Ordering::Relaxed);
            u1();
        }),
        on_done: Arc::new(move |_item| {
            c2.done.fetch_add(1, Ordering::Relaxed);
            u2();
        }),
        on_started: Arc::new(move |_id| {
            c3.started.fetch_add(1, Ordering::Relaxed);
            u3();
        }),
    })
    .await;
    if let Some(t) = ticker {
        t.abort();
        // The phase's last line: what it came to, and how long it took.
        eprintln!("progress: {}", counts.line(kind, t0.elapsed()));
    }
    let report = report?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(report)
}

fn options(s: &Setup, wait_timeout: Option<u64>, poll_interval: f64, dry_run: bool) -> JobOptions {
    let mut o = JobOptions::for_plan(&s.loaded.plan);
    o.dry_run = dry_run;
    if let Some(w) = wait_timeout {
        o.wait_timeout = Duration::from_secs(w);
    }
    o.poll_initial = Duration::from_secs_f64(poll_interval.max(0.05));
    o
}

fn print(global: &Global, reports: &[Report]) -> anyhow::Result<u8> {
    match global.output {
        // Streamed: a large fleet's report is megabytes, never held as one string.
        Output::Json if reports.len() == 1 => crate::output::print_json(&reports[0])?,
        Output::Json => crate::output::print_json(&reports)?,
        Output::Human => {
            for r in reports {
                print_report(r, global.quiet);
            }
        }
    }
    Ok(reports
        .iter()
        .map(|r| exit_code(r.status))
        .max()
        .unwrap_or(exit::OK))
}

/// One run of a plan at a time on a state directory: takes the plan's lock,
/// or waits for it (`--wait`), or refuses with [`exit::BUSY`].
pub async fn lock_plan(
    global: &Global,
    plan: &str,
    what: &str,
    wait: bool,
) -> anyhow::Result<Result<PlanLock, u8>> {
    let mut said = false;
    loop {
        match PlanLock::try_acquire(&global.state_dir, plan, what)? {
            Ok(l) => return Ok(Ok(l)),
            Err(busy) if wait => {
                if !said && !global.quiet {
                    eprintln!("{busy}; waiting for it to end (--wait)");
                    said = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(busy) => {
                eprintln!(
                    "error: {busy}. One run of a plan at a time: nothing was done. \
                     Pass --wait to wait for it, or look at `rolesnap jobs --plan {plan}`."
                );
                return Ok(Err(exit::BUSY));
            }
        }
    }
}

pub async fn run(global: &Global, args: BackupArgs) -> anyhow::Result<u8> {
    let s = setup(global, &args.plan, "backup").await?;
    let _lock = if args.dry_run {
        None
    } else {
        match lock_plan(global, &s.loaded.plan.name, "backup", args.wait).await? {
            Ok(l) => Some(l),
            Err(code) => return Ok(code),
        }
    };
    let filter = Filter {
        region: args.region.clone(),
        instances: args.instances.clone(),
        dbs: args.dbs.clone(),
    };
    let o = options(&s, args.wait_timeout, args.poll_interval, args.dry_run);
    // One pacer for the jobs that run side by side: they share the Describe bucket.
    let pacer = s.admin.pacer();
    // A backup is followed by its copies: a Snap Copy job of its own number.
    let copy = !s.loaded.plan.copies.is_empty() && !args.no_copy && !args.dry_run;
    let prune_filter = Filter {
        region: args.region.clone(),
        ..Default::default()
    };
    // And by its vault copies (a Vault Copy job), unless --no-copy.
    let vault = !s.loaded.plan.vaults.is_empty() && !args.no_copy && !args.dry_run;
    let (done, pruned) = jobs::run_night(copy, vault, args.prune.then(Utc::now), |kind, beside| {
        let (filter, with_bar) = match kind {
            Kind::Prune { .. } => (prune_filter.clone(), false),
            _ => (filter.clone(), true),
        };
        run_job_with(
            global,
            &s,
            kind,
            filter,
            o.clone(),
            pacer.clone(),
            with_bar,
            beside,
        )
    })
    .await;
    // A job that could not run (its ledger) does not hide the reports of
    // those that did: they are printed, then the error is returned.
    let mut reports = Vec::new();
    let mut failed = None;
    for r in done.into_iter().chain(pruned) {
        match r {
            Ok(r) => reports.push(r),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    job_alerts(global, &s, &reports).await;
    let code = print(global, &reports)?;
    match failed {
        Some(e) => Err(e),
        None => Ok(code),
    }
}

pub async fn copy(global: &Global, args: CopyArgs) -> anyhow::Result<u8> {
    let s = setup(global, &args.plan, "copy").await?;
    if s.loaded.plan.copies.is_empty() {
        eprintln!(
            "plan {} has no [[copy]] rule: nothing to copy",
            s.loaded.plan.name
        );
        return Ok(exit::OK);
    }
    let _lock = match lock_plan(global, &s.loaded.plan.name, "copy", args.wait).await? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let filter = Filter {
        region: args.region.clone(),
        ..Default::default()
    };
    let o = options(&s, args.wait_timeout, args.poll_interval, false);
    let report = run_job(global, &s, Kind::Copy, filter, o).await?;
    job_alerts(global, &s, std::slice::from_ref(&report)).await;
    print(global, &[report])
}

pub async fn vault_copy(global: &Global, args: CopyArgs) -> anyhow::Result<u8> {
    let s = setup(global, &args.plan, "vault-copy").await?;
    if s.loaded.plan.vaults.is_empty() {
        eprintln!(
            "plan {} has no [[vault]] rule: nothing to copy into a vault",
            s.loaded.plan.name
        );
        return Ok(exit::OK);
    }
    let _lock = match lock_plan(global, &s.loaded.plan.name, "vault-copy", args.wait).await? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let filter = Filter {
        region: args.region.clone(),
        ..Default::default()
    };
    let o = options(&s, args.wait_timeout, args.poll_interval, false);
    let report = run_job(global, &s, Kind::VaultCopy, filter, o).await?;
    job_alerts(global, &s, std::slice::from_ref(&report)).await;
    print(global, &[report])
}

/// Alerts for the jobs that failed (the plan's `[notify]`); a sending
/// failure is logged in cvd.log and changes nothing else.
async fn job_alerts(global: &Global, s: &Setup, reports: &[Report]) {
    rolesnap_core::alerts::job_alerts(&s.loaded, &s.admin, &global.state_dir, &s.logs, reports)
        .await;
}

/// `--as-of`: RFC 3339, or a date (midnight UTC).
pub fn parse_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("`{s}` is neither an RFC 3339 time nor a YYYY-MM-DD date"))?;
    Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

pub async fn prune(global: &Global, args: PruneArgs) -> anyhow::Result<u8> {
    let now = match &args.as_of {
        None => Utc::now(),
        Some(t) => match parse_time(t) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --as-of: {e:#}");
                return Ok(exit::USAGE);
            }
        },
    };
    let plan_args: &PlanArgs = &args.plan;
    let s = setup(global, plan_args, "prune").await?;
    let _lock = if args.dry_run {
        None
    } else {
        match lock_plan(global, &s.loaded.plan.name, "prune", args.wait).await? {
            Ok(l) => Some(l),
            Err(code) => return Ok(code),
        }
    };
    let filter = Filter {
        region: args.region.clone(),
        ..Default::default()
    };
    let o = options(&s, None, 2.0, args.dry_run);
    let report = run_job(global, &s, Kind::Prune { now }, filter, o).await?;
    job_alerts(global, &s, std::slice::from_ref(&report)).await;
    if args.dry_run && global.output == Output::Human {
        crate::jobs::print_prune_dry_run(&report, now, global.quiet);
        return Ok(exit_code(report.status));
    }
    print(global, &[report])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_say_each_phase_in_flight_and_done() {
        let t = Duration::from_secs(75);
        assert_eq!(
            progress_line(Kind::Backup, 4, 4, 1, t),
            "backup 00:01:15: snapshot 4/4 started · wait 3 in flight · done 1/4"
        );
        assert_eq!(
            progress_line(Kind::Copy, 4, 2, 0, t),
            "copy 00:01:15: 2 in flight · done 0/4"
        );
    }
}
