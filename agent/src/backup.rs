//! `rolesnap backup`, `copy` and `prune`: the three job kinds of a plan.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rolesnap_core::aws::pace::Pacer;
use rolesnap_core::jobs::prune::Beside;
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

fn progress(global: &Global) -> Option<ProgressBar> {
    if global.output != Output::Human || global.quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
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

/// `run_job` with a shared pacer (jobs side by side), no bar, or a prune
/// that waits for a copy job beside it.
#[allow(clippy::too_many_arguments)]
async fn run_job_with(
    global: &Global,
    s: &Setup,
    kind: Kind,
    filter: Filter,
    options: JobOptions,
    pacer: Pacer,
    with_bar: bool,
    beside: Option<tokio::sync::watch::Receiver<Beside>>,
) -> anyhow::Result<Report> {
    let ledger = if options.dry_run {
        None
    } else {
        Some(Arc::new(Mutex::new(Ledger::open(&global.state_dir)?)))
    };
    let bar = if with_bar { progress(global) } else { None };
    let (total_bar, done_bar) = (bar.clone(), bar.clone());
    let report = jobs::run(Request {
        kind,
        plan: &s.loaded.plan,
        tenants: &s.tenants,
        vaults: &s.loaded.accounts.vaults,
        admin: &s.admin,
        filter,
        options,
        logs: &s.logs,
        ledger,
        pacer,
        beside,
        on_total: Arc::new(move |n| {
            if let Some(b) = &total_bar {
                b.set_length(n as u64);
            }
        }),
        on_done: Arc::new(move |item| {
            if let Some(b) = &done_bar {
                b.set_message(format!("{} {}", item.source_id, item.status));
                b.inc(1);
                if b.length().unwrap_or(0) < b.position() {
                    b.set_length(b.position());
                }
            }
        }),
    })
    .await?;
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
    print(global, &[report])
}
