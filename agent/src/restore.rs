//! `rolesnap restore instance|volume|rds`: one Restore job.

use std::time::Duration;

use rolesnap_core::config::is_region;
use rolesnap_core::jobs::restore::{
    self, AttachTo, DbSpec, InstanceSpec, Options, Report, Request, Target, VolumeSpec, Which,
};
use rolesnap_core::store::ledger::{JobStatus, Ledger};

use crate::backup::{exit_code, parse_time};
use crate::cli::{DrillArgs, Global, Output, RestoreArgs, RestorePointArgs, RestoreWhat};
use crate::exit;
use crate::output::setup;

pub async fn run(global: &Global, args: RestoreArgs) -> anyhow::Result<u8> {
    let (point, target) = match args.what {
        RestoreWhat::Instance(a) => (
            a.point,
            Target::Instance(InstanceSpec {
                instance_id: a.instance,
                instance_type: a.instance_type,
                subnet: a.subnet,
                security_groups: a.security_groups,
                key_name: a.key_name,
                architecture: a.architecture,
                no_tags: a.no_tags,
                keep_all_tags: a.keep_all_tags,
            }),
        ),
        RestoreWhat::Volume(a) => (
            a.point,
            Target::Volume(VolumeSpec {
                volume_id: a.volume,
                attach: match a.attach_to {
                    Some(i) => AttachTo::Instance(i),
                    None => AttachTo::NewInstance {
                        image_id: a.image_id,
                        instance_type: a.instance_type,
                        subnet: a.subnet,
                    },
                },
                device: a.device,
                volume_type: a.volume_type,
            }),
        ),
        RestoreWhat::Rds(a) => {
            let cluster = a.cluster.is_some();
            (
                a.point,
                Target::Db(DbSpec {
                    source_id: a.cluster.or(a.db).unwrap_or_default(),
                    cluster,
                    target_id: a.target_id,
                    instance_class: a.instance_class,
                    subnet_group: a.subnet_group,
                    writer_id: a.writer_id,
                }),
            )
        }
    };
    run_job(global, point, target, false, false, None).await
}

/// `rolesnap drill`: a restore of the newest point into a throw-away target,
/// checked healthy and removed again (a Drill job).
pub async fn drill(global: &Global, a: DrillArgs) -> anyhow::Result<u8> {
    let target = if let Some(instance_id) = a.instance {
        let (Some(subnet), false) = (a.subnet, a.security_groups.is_empty()) else {
            eprintln!(
                "error: an instance drill launches into a throw-away target: pass --subnet and \
                 --security-groups (a subnet and a security group without ingress)"
            );
            return Ok(exit::USAGE);
        };
        Target::Instance(InstanceSpec {
            instance_id,
            subnet: Some(subnet),
            security_groups: a.security_groups,
            // Not the source's own tags: a drill is never production.
            no_tags: true,
            ..Default::default()
        })
    } else {
        let cluster = a.cluster.is_some();
        Target::Db(DbSpec {
            source_id: a.cluster.or(a.db).unwrap_or_default(),
            cluster,
            // Never the source's identifier.
            target_id: format!(
                "{}{}",
                restore::DRILL_DB_PREFIX,
                chrono::Utc::now().timestamp()
            ),
            subnet_group: a.db_subnet_group,
            ..Default::default()
        })
    };
    run_job(global, a.point, target, true, a.connect, a.check).await
}

async fn run_job(
    global: &Global,
    point: RestorePointArgs,
    target: Target,
    drill: bool,
    connect: bool,
    check: Option<String>,
) -> anyhow::Result<u8> {
    let which = match which(&point) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    let what = if drill { "drill" } else { "restore" };
    let s = setup(global, &point.plan, what).await?;
    let tenant = match s.tenants.as_slice() {
        [t] => t.clone(),
        many => {
            eprintln!(
                "error: {what} acts in one tenant: pass --tenant (plan {} names: {})",
                s.loaded.plan.name,
                many.iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(exit::USAGE);
        }
    };
    let ledger = if point.dry_run {
        None
    } else {
        Some(Ledger::open(&global.state_dir)?)
    };
    let report = restore::run(Request {
        plan: &s.loaded.plan,
        tenant: &tenant,
        vaults: &s.loaded.accounts.vaults,
        admin: &s.admin,
        logs: &s.logs,
        ledger: ledger.as_ref(),
        pacer: s.admin.pacer(),
        which,
        target,
        options: Options {
            dry_run: point.dry_run,
            wait_timeout: Duration::from_secs(point.wait_timeout),
            poll_initial: Duration::from_secs_f64(point.poll_interval.max(0.05)),
            poll_max: Duration::from_secs(30),
        },
        drill,
        connect,
        check,
    })
    .await?;
    // A failed drill is an alert (the plan's or the accounts file's [notify]).
    if drill {
        let agent = ledger
            .as_ref()
            .map(|l| l.agent_id().to_string())
            .unwrap_or_default();
        alert_failed_drill(
            &s.loaded,
            &s.admin,
            &global.state_dir,
            &s.logs,
            &report,
            &agent,
        )
        .await;
    }
    match global.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Human => print_human(&report, global.quiet),
    }
    Ok(if report.refused {
        exit::REFUSED
    } else {
        exit_code(report.status)
    })
}

/// A drill that did not complete is a `drill-failed` alert to the plan's
/// (or the accounts file's) `[notify]`; sending never fails the drill.
pub async fn alert_failed_drill(
    loaded: &rolesnap_core::Loaded,
    admin: &rolesnap_core::aws::credentials::AdminSession,
    state_dir: &std::path::Path,
    logs: &rolesnap_core::Logs,
    report: &Report,
    agent: &str,
) {
    if report.dry_run || report.status == JobStatus::Completed {
        return;
    }
    let Some(notify) = loaded.notify() else {
        return;
    };
    let n =
        rolesnap_core::alerts::Notifier::new(notify, Some(admin.config.clone()), state_dir, logs);
    let reason = report
        .drill
        .as_ref()
        .and_then(|d| d.reason.clone())
        .or_else(|| report.error.clone())
        .unwrap_or_else(|| report.status.to_string());
    n.send(&rolesnap_core::alerts::Event::drill_failed(
        &loaded.plan.name,
        agent,
        report.job,
        &report.tenant,
        report.region.as_deref().unwrap_or("-"),
        &report.source,
        &reason,
        chrono::Utc::now(),
    ))
    .await;
}

fn which(p: &RestorePointArgs) -> anyhow::Result<Which> {
    let at = match &p.at {
        Some(t) => Some(parse_time(t).map_err(|e| anyhow::anyhow!("--at: {e:#}"))?),
        None => None,
    };
    if let Some(r) = &p.region {
        if !is_region(r) {
            anyhow::bail!("--region: `{r}` is not an AWS region name (e.g. us-east-1)");
        }
    }
    let (job, agent) = match p
        .job
        .as_deref()
        .map(|j| j.split_once('@').unwrap_or((j, "")))
    {
        None => (None, None),
        Some((n, a)) => {
            let n: u64 = n.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--job: `{}` is not a job number, or NUMBER@AGENT",
                    p.job.as_deref().unwrap_or_default()
                )
            })?;
            if !a.chars().all(|c| c.is_ascii_hexdigit()) {
                anyhow::bail!("--job: `{a}` is not an agent id (hex digits)");
            }
            (Some(n), (!a.is_empty()).then(|| a.to_ascii_lowercase()))
        }
    };
    Ok(Which {
        job,
        agent,
        at,
        region: p.region.clone(),
        vault: p.from_vault.clone(),
        kms_key_id: p.kms_key_id.clone(),
    })
}

fn print_human(r: &Report, quiet: bool) {
    if !quiet {
        if r.dry_run {
            println!("Dry run: nothing was created and no job was recorded.");
        } else {
            println!("Job ID:     {}", r.job);
            println!("Operation:  {}", r.job_type.as_str());
            println!("Status:     {}", r.status);
        }
        println!(
            "Restore of {} {} (tenant {}, account {}){}",
            r.kind,
            r.source,
            r.tenant,
            r.account,
            r.region
                .as_ref()
                .map(|g| format!(" in {g}"))
                .unwrap_or_default()
        );
        if let Some(p) = &r.recovery_point {
            println!(
                "From:       {} {} of job {}, made {}{}",
                p.kind.as_str(),
                p.id,
                p.job.map_or("?".into(), |j| j.to_string()),
                p.created.format("%Y-%m-%d %H:%M:%S UTC"),
                p.copy_of
                    .as_ref()
                    .map(|c| format!(" (cross-region copy of {c})"))
                    .unwrap_or_default()
            );
        }
        for line in &r.summary {
            println!("  {line}");
        }
        if let Some(d) = &r.drill {
            println!(
                "Drill:      {}{}{}",
                if d.healthy { "healthy" } else { "NOT healthy" },
                d.rto_seconds
                    .map(|s| format!(", RTO {s} s"))
                    .unwrap_or_default(),
                d.reason
                    .as_ref()
                    .map(|x| format!(": {x}"))
                    .unwrap_or_default()
            );
            for c in &d.checks {
                println!("  checked: {c}");
            }
            if let Some(c) = &d.check {
                println!(
                    "  check command `{}`: SSM {}, exit {}{}",
                    c.command,
                    c.status,
                    c.exit_code.map_or("-".to_string(), |x| x.to_string()),
                    c.output
                        .lines()
                        .next()
                        .map(|l| format!(": {l}"))
                        .unwrap_or_default()
                );
            }
        }
        if !r.calls.is_empty() {
            println!(
                "{}",
                if r.dry_run {
                    "Calls it would make:"
                } else {
                    "Calls made:"
                }
            );
            for c in &r.calls {
                println!("  {c}");
            }
        }
        if !r.removed.is_empty() {
            println!("Removed:    {}", r.removed.join(", "));
        }
        for n in &r.notes {
            println!("note: {n}");
        }
    }
    if let Some(e) = &r.error {
        let label = if r.status == JobStatus::Failed {
            "error"
        } else {
            "warning"
        };
        eprintln!("{label}: {e}");
    }
    for l in &r.left_behind {
        eprintln!("error: could not remove {l}");
    }
}
