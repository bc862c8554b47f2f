//! `rolesnap jobs`: job history and the job summary.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Local, TimeZone};
use rolesnap_core::jobs::{summarize, Report, Summary};
use rolesnap_core::store::ledger::{Event, Item, ItemStatus, Job, Ledger};

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
        *r.0.entry(s.status.as_str()).or_default() += s.count;
        if matches!(
            s.status,
            ItemStatus::Completed
                | ItemStatus::DryRun
                | ItemStatus::Deleted
                | ItemStatus::WouldDelete
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

pub fn print_problems(items: &[Item]) {
    for i in items.iter().filter(|i| i.error.is_some()) {
        if i.kind.is_setup() {
            // The message already names tenant, region and role.
            eprintln!("error: {}", i.error.as_deref().unwrap_or_default());
            continue;
        }
        eprintln!(
            "{}: {} {} in {}/{}: {}",
            if i.status == ItemStatus::Pending {
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
                    i.kind.to_string(),
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
            if r.lost_log_lines > 0 {
                println!(
                    "Log lines lost: {} (could not be written; see stderr)",
                    r.lost_log_lines
                );
            }
            println!("{}", per_region(&r.summary));
        }
    }
    print_problems(r.items.held());
}

/// `prune --dry-run`: per point its decision, the rule behind it, its age
/// and expiry (as of `now`, the `--as-of` time), and a summary line.
pub fn print_prune_dry_run(r: &Report, now: chrono::DateTime<chrono::Utc>, quiet: bool) {
    if !quiet {
        println!(
            "Dry run of plan {} as of {}: nothing was deleted.",
            r.plan,
            now.format("%Y-%m-%d %H:%M UTC")
        );
        let (rows, summary) = prune_rows(r.items.held(), now);
        let mut t = table(&[
            "decision", "tenant", "region", "kind", "source", "point", "created", "age", "expires",
            "rule",
        ]);
        for row in rows {
            t.add_row(row);
        }
        println!("{t}");
        println!("{summary}");
    }
    print_problems(r.items.held());
}

/// The rows of a prune dry run (points to delete first, then by tenant,
/// region, source and newest first) and its summary line.
pub fn prune_rows(
    items: &[Item],
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<Vec<String>>, String) {
    let created = |i: &Item| {
        i.detail["created"]
            .as_str()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|c| c.with_timezone(&chrono::Utc))
    };
    let mut points: Vec<&Item> = items
        .iter()
        .filter(|i| matches!(i.status, ItemStatus::Kept | ItemStatus::WouldDelete))
        .collect();
    points.sort_by_key(|i| {
        (
            i.status != ItemStatus::WouldDelete,
            i.tenant.clone(),
            i.region.clone(),
            i.detail["source"].as_str().unwrap_or_default().to_string(),
            std::cmp::Reverse(created(i)),
        )
    });
    let (mut kept, mut delete, mut gib) = (0usize, 0usize, 0i64);
    let rows = points
        .iter()
        .map(|i| {
            let c = created(i);
            let would_delete = i.status == ItemStatus::WouldDelete;
            if would_delete {
                delete += 1;
                gib += i.size_gib;
            } else {
                kept += 1;
            }
            let expires = if would_delete {
                "expired".to_string()
            } else {
                match i.detail["expires"]
                    .as_str()
                    .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                {
                    Some(e) => format!(
                        "{} (in {})",
                        e.format("%Y-%m-%d %H:%M"),
                        age(e.with_timezone(&chrono::Utc) - now)
                    ),
                    None => "-".into(),
                }
            };
            vec![
                if would_delete { "DELETE" } else { "keep" }.to_string(),
                i.tenant.clone(),
                i.region.clone(),
                i.kind.to_string(),
                i.detail["source"].as_str().unwrap_or("-").to_string(),
                i.source_id.clone(),
                c.map_or("-".into(), |c| c.format("%Y-%m-%d %H:%M").to_string()),
                c.map_or("-".into(), |c| age(now - c)),
                expires,
                i.detail["rule"].as_str().unwrap_or("-").to_string(),
            ]
        })
        .collect();
    let summary = format!(
        "{} point(s): {kept} kept, {delete} would be deleted ({gib} GiB)",
        kept + delete
    );
    (rows, summary)
}

/// A duration as `12d 3h`, `5h 20m`, `40m` (`-` when negative).
pub fn age(d: chrono::TimeDelta) -> String {
    if d < chrono::TimeDelta::zero() {
        return "-".into();
    }
    let (days, hours, mins) = (d.num_days(), d.num_hours() % 24, d.num_minutes() % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else {
        format!("{mins}m")
    }
}

/// `--job N` or `--job N@AGENT` (AGENT: an agent id or a prefix of one).
fn parse_job(s: &str) -> Option<(u64, Option<String>)> {
    match s.split_once('@') {
        Some((n, a)) if !a.is_empty() && a.chars().all(|c| c.is_ascii_hexdigit()) => {
            Some((n.parse().ok()?, Some(a.to_ascii_lowercase())))
        }
        Some(_) => None,
        None => Some((s.parse().ok()?, None)),
    }
}

/// `rolesnap jobs`: one job (`--job`) or the job history, from this state
/// directory's ledger and those of `--from`.
pub fn run(global: &Global, args: JobsArgs) -> anyhow::Result<u8> {
    let ledger = Ledger::open(&global.state_dir)?;
    // Other agents' ledgers are only read: their jobs are never marked
    // Killed from here (a lock held on another host cannot be seen).
    let mut ledgers: Vec<(String, Ledger)> = vec![(global.state_dir.display().to_string(), ledger)];
    for dir in &args.from {
        ledgers.push((dir.display().to_string(), Ledger::open_read_only(dir)?));
    }
    if let Some(spec) = &args.job {
        return show_job(global, spec, &ledgers);
    }
    list_jobs(global, &args, &ledgers)
}

/// `--job SPEC`: the job, its items and its events; exit 2 when the job is
/// unknown or several agents ran a job of that number.
fn show_job(global: &Global, spec: &str, ledgers: &[(String, Ledger)]) -> anyhow::Result<u8> {
    let Some((id, agent)) = parse_job(spec) else {
        eprintln!("error: --job {spec}: expected a job number, or NUMBER@AGENT (an agent id or its first digits)");
        return Ok(exit::USAGE);
    };
    let Some((dir, ledger, job)) = find_job(spec, id, agent.as_deref(), ledgers)? else {
        return Ok(exit::USAGE);
    };
    let items = ledger.items(id)?;
    let events = ledger.events(id)?;
    match global.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "job": job, "agent": ledger.agent_id(), "ledger": dir,
                "items": items, "events": events
            }))?
        ),
        Output::Human => print_job(&job, ledger, &items, &events),
    }
    Ok(exit::OK)
}

/// The one ledger that has job `id` (of `agent`, when given). Job numbers
/// are unique per agent only: every ledger is looked in, and a number
/// several agents used is refused. `None` once the reason is on stderr.
fn find_job<'a>(
    spec: &str,
    id: u64,
    agent: Option<&str>,
    ledgers: &'a [(String, Ledger)],
) -> anyhow::Result<Option<(&'a String, &'a Ledger, Job)>> {
    let mut found = Vec::new();
    for (dir, l) in ledgers {
        if agent.is_some_and(|a| !l.agent_id().starts_with(a)) {
            continue;
        }
        if let Some(job) = l.job(id)? {
            found.push((dir, l, job));
        }
    }
    match found.len() {
        0 => {
            eprintln!(
                "error: no job {spec} in {}",
                ledgers
                    .iter()
                    .map(|(d, _)| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(None)
        }
        1 => Ok(Some(found.remove(0))),
        _ => {
            eprintln!("error: job {id} is ambiguous: agents that ran a job {id}:");
            for (dir, l, j) in &found {
                eprintln!(
                    "  --job {id}@{}  ({}, plan {}, started {}, ledger {dir})",
                    l.agent_id(),
                    j.job_type.as_str(),
                    j.plan,
                    time(j.start)
                );
            }
            Ok(None)
        }
    }
}

/// One job for people: its header, the per-region summary, its items and
/// its events.
fn print_job(job: &Job, ledger: &Ledger, items: &[Item], events: &[Event]) {
    println!("Job ID:     {}", job.id);
    println!("Agent:      {}", ledger.agent_id());
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
    println!("{}", per_region(&summarize(items, &Default::default())));
    let mut t = table(&[
        "tenant", "region", "kind", "source", "status", "created", "GiB",
    ]);
    for i in items {
        t.add_row(vec![
            i.tenant.clone(),
            i.region.clone(),
            i.kind.to_string(),
            i.source_id.clone(),
            i.status.to_string(),
            i.created.join(" "),
            i.size_gib.to_string(),
        ]);
    }
    println!("{t}");
    let mut ev = table(&["severity", "time", "description"]);
    for e in events {
        ev.add_row(vec![e.severity.clone(), time(e.at), e.message.clone()]);
    }
    println!("Events\n{ev}");
}

/// The job history: several agents (shards) keep one ledger each; they are
/// merged, newest first.
fn list_jobs(global: &Global, args: &JobsArgs, ledgers: &[(String, Ledger)]) -> anyhow::Result<u8> {
    let mut jobs: Vec<(String, String, Job)> = Vec::new();
    for (dir, l) in ledgers {
        jobs.extend(
            l.jobs(args.plan.as_deref(), args.limit)?
                .into_iter()
                .map(|j| (dir.clone(), l.agent_id().to_string(), j)),
        );
    }
    jobs.sort_by_key(|(_, a, j)| std::cmp::Reverse((j.start, j.id, a.clone())));
    jobs.truncate(args.limit);
    match global.output {
        Output::Json if args.from.is_empty() => {
            let plain: Vec<_> = jobs
                .iter()
                .map(|(_, a, j)| {
                    let mut v = serde_json::to_value(j).unwrap_or_default();
                    v["agent"] = serde_json::json!(a);
                    v
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&plain)?)
        }
        Output::Json => {
            let tagged: Vec<_> = jobs
                .iter()
                .map(|(d, a, j)| serde_json::json!({"ledger": d, "agent": a, "job": j}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&tagged)?)
        }
        Output::Human => print_jobs(&jobs, !args.from.is_empty()),
    }
    Ok(exit::OK)
}

/// The job history table; with `ledgers`, a column says which ledger each
/// job is from.
fn print_jobs(jobs: &[(String, String, Job)], ledgers: bool) {
    let mut header = vec![
        "Job ID",
        "Agent",
        "Operation",
        "Status",
        "Plan",
        "Tenants",
        "Size",
        "Start",
        "End",
    ];
    if ledgers {
        header.push("Ledger");
    }
    let mut t = table(&header);
    for (dir, agent, j) in jobs {
        let mut row = vec![
            j.id.to_string(),
            agent.chars().take(8).collect(),
            j.job_type.as_str().to_string(),
            j.status.to_string(),
            j.plan.clone(),
            j.tenants.join(", "),
            format!("{} GiB", j.size_gib),
            time(j.start),
            j.end.map(time).unwrap_or_else(|| "-".into()),
        ];
        if ledgers {
            row.push(dir.clone());
        }
        t.add_row(row);
    }
    println!("{t}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_dry_run_rows_say_decision_rule_age_and_expiry() {
        use rolesnap_core::store::ledger::ItemKind;
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let item = |id: &str, status, created: &str, rule: &str, expires: Option<&str>| {
            let mut detail = serde_json::json!({
                "source": "i-1", "created": created, "rule": rule, "job": 3, "copy_of": null,
            });
            if let Some(e) = expires {
                detail["expires"] = e.into();
            }
            Item {
                tenant: "alpha".into(),
                account: "222222222222".into(),
                region: "us-east-1".into(),
                kind: ItemKind::SnapshotSet,
                source_id: id.into(),
                status,
                created: vec![],
                size_gib: 8,
                error: None,
                detail,
            }
        };
        let items = vec![
            item(
                "snap-new",
                ItemStatus::Kept,
                "2026-03-08T01:00:00+00:00",
                "weekly keep 2026-W10",
                Some("2026-03-30T00:00:00+00:00"),
            ),
            item(
                "snap-old",
                ItemStatus::WouldDelete,
                "2026-02-01T01:00:00+00:00",
                "expired: age 36d 23h >= 7d",
                None,
            ),
        ];
        let (rows, summary) = prune_rows(&items, now);
        assert_eq!(
            rows,
            vec![
                vec![
                    "DELETE",
                    "alpha",
                    "us-east-1",
                    "snapshot-set",
                    "i-1",
                    "snap-old",
                    "2026-02-01 01:00",
                    "36d 23h",
                    "expired",
                    "expired: age 36d 23h >= 7d",
                ],
                vec![
                    "keep",
                    "alpha",
                    "us-east-1",
                    "snapshot-set",
                    "i-1",
                    "snap-new",
                    "2026-03-08 01:00",
                    "1d 23h",
                    "2026-03-30 00:00 (in 20d 0h)",
                    "weekly keep 2026-W10",
                ],
            ]
        );
        assert_eq!(summary, "2 point(s): 1 kept, 1 would be deleted (8 GiB)");
    }

    #[test]
    fn job_specs() {
        assert_eq!(parse_job("1000"), Some((1000, None)));
        assert_eq!(parse_job("1000@0F3c"), Some((1000, Some("0f3c".into()))));
        assert_eq!(parse_job("1000@"), None);
        assert_eq!(parse_job("x@ab"), None);
        assert_eq!(parse_job("1000@zz"), None);
    }
}
