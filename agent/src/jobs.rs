//! `rolesnap jobs`: job history and the job summary.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Local, TimeZone};
use rolesnap_core::job::{summarize, Report, Summary};
use rolesnap_core::ledger::{Item, Ledger};

use crate::cli::{Global, JobsArgs, Output};
use crate::exit;
use crate::output::table;

fn time(t: i64) -> String {
    Local
        .timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("%b %d, %Y %-I:%M:%S %p").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// Per tenant / region: how many of each status, and the GiB of what was
/// done (made, deleted, or would be).
fn per_region(summary: &[Summary]) -> comfy_table::Table {
    let statuses: BTreeSet<&str> = summary.iter().map(|s| s.status.as_str()).collect();
    // (tenant, region) → (count per status, GiB done)
    type Row<'a> = (BTreeMap<&'a str, usize>, i64);
    let mut rows: BTreeMap<(&str, &str), Row> = BTreeMap::new();
    for s in summary {
        let r = rows.entry((&s.tenant, &s.region)).or_default();
        *r.0.entry(&s.status).or_default() += s.count;
        if matches!(
            s.status.as_str(),
            "Completed" | "DryRun" | "Deleted" | "WouldDelete"
        ) {
            r.1 += s.size_gib;
        }
    }
    let mut header = vec!["tenant", "region"];
    header.extend(statuses.iter().copied());
    header.push("GiB");
    let mut t = table(&header);
    for ((tenant, region), (counts, gib)) in rows {
        let mut row = vec![tenant.to_string(), region.to_string()];
        row.extend(
            statuses
                .iter()
                .map(|s| counts.get(s).copied().unwrap_or(0).to_string()),
        );
        row.push(gib.to_string());
        t.add_row(row);
    }
    t
}

fn print_problems(items: &[Item]) {
    for i in items.iter().filter(|i| i.error.is_some()) {
        if i.kind == "tenant" || i.kind == "region" {
            // The message already names tenant, region and role.
            eprintln!("error: {}", i.error.as_deref().unwrap_or_default());
            continue;
        }
        eprintln!(
            "{}: {} {} in {}/{}: {}",
            if i.status == "Pending" {
                "pending"
            } else {
                "error"
            },
            i.kind,
            i.source_id,
            i.tenant,
            i.region,
            i.error.as_deref().unwrap_or_default()
        );
    }
}

pub fn print_report(r: &Report, quiet: bool) {
    if !quiet {
        if r.dry_run {
            println!("Dry run of plan {}: nothing was created.", r.plan);
            let mut t = table(&["tenant", "region", "kind", "source", "would call", "name"]);
            for i in r.items.held() {
                t.add_row(vec![
                    i.tenant.clone(),
                    i.region.clone(),
                    i.kind.clone(),
                    i.source_id.clone(),
                    i.detail["would_call"].as_str().unwrap_or("-").to_string(),
                    i.detail["name"].as_str().unwrap_or("-").to_string(),
                ]);
            }
            println!("{t}");
        } else {
            println!("Job ID:     {}", r.job);
            println!("Operation:  {}", r.job_type.as_str());
            println!("Status:     {}", r.status);
            println!("Plan:       {}", r.plan);
            println!("Size:       {} GiB", r.size_gib);
            println!("Start time: {}", time(r.start));
            println!("End time:   {}", time(r.end));
            println!("{}", per_region(&r.summary));
        }
    }
    print_problems(r.items.held());
}

pub fn run(global: &Global, args: JobsArgs) -> anyhow::Result<u8> {
    let ledger = Ledger::open(&global.state_dir)?;
    if let Some(id) = args.job {
        let Some(job) = ledger.job(id)? else {
            eprintln!("error: no job {id} in {}", global.state_dir.display());
            return Ok(exit::USAGE);
        };
        let items = ledger.items(id)?;
        let events = ledger.events(id)?;
        match global.output {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"job": job, "items": items, "events": events})
                )?
            ),
            Output::Human => {
                println!("Job ID:     {}", job.id);
                println!("Operation:  {}", job.job_type.as_str());
                println!("Status:     {}", job.status);
                println!("Plan:       {}", job.plan);
                println!("Tenants:    {}", job.tenants.join(", "));
                println!("Size:       {} GiB", job.size_gib);
                println!("Start time: {}", time(job.start));
                println!(
                    "End time:   {}",
                    job.end.map(time).unwrap_or_else(|| "-".into())
                );
                if let Some(e) = &job.error {
                    println!("Error:      {e}");
                }
                println!("{}", per_region(&summarize(&items, &Default::default())));
                let mut t = table(&[
                    "tenant", "region", "kind", "source", "status", "created", "GiB",
                ]);
                for i in &items {
                    t.add_row(vec![
                        i.tenant.clone(),
                        i.region.clone(),
                        i.kind.clone(),
                        i.source_id.clone(),
                        i.status.clone(),
                        i.created.join(" "),
                        i.size_gib.to_string(),
                    ]);
                }
                println!("{t}");
                let mut ev = table(&["severity", "time", "description"]);
                for e in &events {
                    ev.add_row(vec![e.severity.clone(), time(e.at), e.message.clone()]);
                }
                println!("Events\n{ev}");
            }
        }
        return Ok(exit::OK);
    }
    // Several agents (shards) keep one ledger each: merge them, newest first.
    let mut jobs: Vec<(String, rolesnap_core::ledger::Job)> = ledger
        .jobs(args.plan.as_deref(), args.limit)?
        .into_iter()
        .map(|j| (global.state_dir.display().to_string(), j))
        .collect();
    for dir in &args.from {
        let other = Ledger::open(dir)?;
        jobs.extend(
            other
                .jobs(args.plan.as_deref(), args.limit)?
                .into_iter()
                .map(|j| (dir.display().to_string(), j)),
        );
    }
    jobs.sort_by_key(|(_, j)| std::cmp::Reverse((j.start, j.id)));
    jobs.truncate(args.limit);
    match global.output {
        Output::Json if args.from.is_empty() => {
            let plain: Vec<_> = jobs.iter().map(|(_, j)| j).collect();
            println!("{}", serde_json::to_string_pretty(&plain)?)
        }
        Output::Json => {
            let tagged: Vec<_> = jobs
                .iter()
                .map(|(d, j)| serde_json::json!({"ledger": d, "job": j}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&tagged)?)
        }
        Output::Human => {
            let mut header = vec![
                "Job ID",
                "Operation",
                "Status",
                "Plan",
                "Tenants",
                "Size",
                "Start",
                "End",
            ];
            if !args.from.is_empty() {
                header.push("Ledger");
            }
            let mut t = table(&header);
            for (dir, j) in &jobs {
                let mut row = vec![
                    j.id.to_string(),
                    j.job_type.as_str().to_string(),
                    j.status.to_string(),
                    j.plan.clone(),
                    j.tenants.join(", "),
                    format!("{} GiB", j.size_gib),
                    time(j.start),
                    j.end.map(time).unwrap_or_else(|| "-".into()),
                ];
                if !args.from.is_empty() {
                    row.push(dir.clone());
                }
                t.add_row(row);
            }
            println!("{t}");
        }
    }
    Ok(exit::OK)
}
