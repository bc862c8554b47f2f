//! `rolesnap discover`: what a plan would protect.

use serde::Serialize;

use rolesnap_core::aws::credentials::connect_tenants;
use rolesnap_core::discovery::{discover_tenant, RegionResult, Resource, Selected, Skipped};

use crate::cli::{DiscoverArgs, Global, Output};
use crate::exit;
use crate::output::{setup, table};

#[derive(Serialize)]
struct TenantReport {
    tenant: String,
    account: Option<String>,
    error: Option<String>,
    error_code: Option<String>,
    regions: Vec<RegionReport>,
}

#[derive(Serialize)]
struct RegionReport {
    region: String,
    error: Option<String>,
    availability_zones: Vec<String>,
    counts: Counts,
    selected: Vec<Selected>,
    skipped: Vec<Skipped>,
}

#[derive(Serialize, Default)]
struct Counts {
    instances: usize,
    volumes: usize,
    volume_gib: i64,
    db_instances: usize,
    db_clusters: usize,
    skipped: usize,
}

fn counts(selected: &[Selected], skipped: usize) -> Counts {
    let mut c = Counts {
        skipped,
        ..Default::default()
    };
    for s in selected {
        match &s.resource {
            Resource::Instance(i) => {
                c.instances += 1;
                c.volumes += i.volumes.len();
                c.volume_gib += i.size_gib();
            }
            Resource::DbInstance(_) => c.db_instances += 1,
            Resource::DbCluster(_) => c.db_clusters += 1,
        }
    }
    c
}

fn region_report(r: RegionResult) -> RegionReport {
    RegionReport {
        region: r.region,
        error: r.error.map(|e| e.to_string()),
        availability_zones: r
            .inventory
            .map(|i| i.availability_zones)
            .unwrap_or_default(),
        counts: counts(&r.selection.selected, r.selection.skipped.len()),
        selected: r.selection.selected,
        skipped: r.selection.skipped,
    }
}

pub async fn run(global: &Global, args: DiscoverArgs) -> anyhow::Result<u8> {
    let s = setup(global, &args.plan, "discover").await?;
    let plan = &s.loaded.plan;
    let connected = connect_tenants(&s.admin, &s.tenants, None, &s.logs).await;
    let mut reports = Vec::new();
    for (tenant, c) in s.tenants.iter().zip(connected) {
        match c {
            Err(f) => reports.push(TenantReport {
                tenant: tenant.name.clone(),
                account: Some(tenant.role_arn.account.clone()),
                error: Some(f.to_string()),
                error_code: Some(f.code),
                regions: vec![],
            }),
            Ok(conn) => {
                let results = discover_tenant(
                    plan,
                    &conn.session,
                    &conn.account,
                    &s.admin.admin.region,
                    args.region.as_deref(),
                    &s.logs,
                    false,
                )
                .await;
                reports.push(TenantReport {
                    tenant: tenant.name.clone(),
                    account: Some(conn.account),
                    error: None,
                    error_code: None,
                    regions: results.into_iter().map(region_report).collect(),
                });
            }
        }
    }
    let failures = reports
        .iter()
        .map(|t| {
            usize::from(t.error.is_some()) + t.regions.iter().filter(|r| r.error.is_some()).count()
        })
        .sum::<usize>();
    match global.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "plan": plan.name,
                "tenants": reports,
            }))?
        ),
        Output::Human => print_human(&plan.name, &reports, args.all, global.quiet),
    }
    Ok(if failures == 0 {
        exit::OK
    } else if reports.iter().all(|t| t.error.is_some()) {
        exit::FAILED
    } else {
        exit::PARTIAL
    })
}

fn print_human(plan: &str, reports: &[TenantReport], all: bool, quiet: bool) {
    for t in reports {
        if let Some(e) = &t.error {
            eprintln!("error: {e}");
            continue;
        }
        if quiet {
            for r in &t.regions {
                if let Some(e) = &r.error {
                    eprintln!("error: {e}");
                }
            }
            continue;
        }
        println!(
            "tenant {} (account {})",
            t.tenant,
            t.account.as_deref().unwrap_or("?")
        );
        for r in &t.regions {
            if let Some(e) = &r.error {
                eprintln!("error: {e}");
                continue;
            }
            let c = &r.counts;
            println!(
                "  {}: {} instance(s) with {} volume(s), {} GiB; {} DB instance(s); {} Aurora cluster(s); {} not selected",
                r.region, c.instances, c.volumes, c.volume_gib, c.db_instances, c.db_clusters, c.skipped
            );
            let mut azs: Vec<Option<&str>> = r.selected.iter().map(|s| s.resource.az()).collect();
            azs.sort();
            azs.dedup();
            for az in azs {
                println!("    {}", az.unwrap_or("(regional)"));
                let mut tbl = table(&["kind", "id", "name / engine", "size", "group", "why"]);
                for s in r.selected.iter().filter(|s| s.resource.az() == az) {
                    let (name, size) = match &s.resource {
                        Resource::Instance(i) => (
                            i.name().unwrap_or("").to_string(),
                            format!("{} vol, {} GiB", i.volumes.len(), i.size_gib()),
                        ),
                        Resource::DbInstance(d) => {
                            (d.engine.clone(), format!("{} GiB", d.storage_gib))
                        }
                        Resource::DbCluster(c) => {
                            (c.engine.clone(), format!("{} member(s)", c.members.len()))
                        }
                    };
                    tbl.add_row(vec![
                        s.resource.kind().to_string(),
                        s.resource.id().to_string(),
                        name,
                        size,
                        s.group.clone(),
                        s.reason.clone(),
                    ]);
                }
                for line in tbl.to_string().lines() {
                    println!("      {line}");
                }
            }
            if all && !r.skipped.is_empty() {
                println!("    not selected:");
                for s in &r.skipped {
                    println!("      {} {}: {}", s.kind, s.id, s.reason);
                }
            }
        }
    }
    if !quiet {
        let total: usize = reports
            .iter()
            .flat_map(|t| &t.regions)
            .map(|r| r.selected.len())
            .sum();
        println!("plan {plan}: {total} resource(s) selected");
    }
}
