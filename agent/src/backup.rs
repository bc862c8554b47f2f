//! `rolesnap backup`: an on-demand Snap Backup job.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rolesnap_core::backup::BackupOptions;
use rolesnap_core::job::{run_backup, Filter, Request};
use rolesnap_core::ledger::{JobStatus, Ledger};
use rolesnap_core::pace::Pacer;

use crate::cli::{BackupArgs, Global, Output};
use crate::exit;
use crate::jobs::print_report;
use crate::output::setup;

pub fn exit_code(status: JobStatus) -> u8 {
    match status {
        JobStatus::Completed => exit::OK,
        JobStatus::CompletedWithErrors => exit::PARTIAL,
        _ => exit::FAILED,
    }
}

pub async fn run(global: &Global, args: BackupArgs) -> anyhow::Result<u8> {
    let s = setup(global, &args.plan, "backup").await?;
    let plan = &s.loaded.plan;
    let mut options = BackupOptions::for_plan(plan);
    options.dry_run = args.dry_run;
    if let Some(w) = args.wait_timeout {
        options.wait_timeout = Duration::from_secs(w);
    }
    options.poll_initial = Duration::from_secs_f64(args.poll_interval.max(0.05));
    let ledger = if args.dry_run {
        None
    } else {
        Some(Arc::new(Mutex::new(Ledger::open(&global.state_dir)?)))
    };
    let bar = if global.output == Output::Human && !global.quiet && std::io::stderr().is_terminal()
    {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} resources {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        Some(b)
    } else {
        None
    };
    let total_bar = bar.clone();
    let done_bar = bar.clone();
    let report = run_backup(Request {
        plan,
        tenants: &s.tenants,
        admin: &s.admin,
        filter: Filter {
            region: args.region.clone(),
            instances: args.instances.clone(),
            dbs: args.dbs.clone(),
        },
        options,
        logs: &s.logs,
        ledger,
        pacer: Pacer::new(),
        on_total: Arc::new(move |n| {
            if let Some(b) = &total_bar {
                b.set_length(n as u64);
            }
        }),
        on_done: Arc::new(move |item| {
            if let Some(b) = &done_bar {
                b.set_message(format!("{} {}", item.source_id, item.status));
                b.inc(1);
            }
        }),
    })
    .await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match global.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Human => print_report(&report, global.quiet),
    }
    Ok(exit_code(report.status))
}
