//! The agent's scheduled restore drills: `[drill]` of a plan
//! (docs/DESIGN.md, "Restore drills"). At each slot of the drill schedule,
//! under the plan's lock (as backup and copy), the agent finds the resources
//! the plan selects that have a completed recovery point where drills
//! restore (the source region, or `from-copy`), picks those whose turn it is
//! ([`rolesnap_core::decide::drill::select`], by the last Drill job of each
//! in the ledger), and runs one Drill job for each, one after the other.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use rolesnap_core::aws::credentials::connect_tenants;
use rolesnap_core::catalog::{list_region, Kinds};
use rolesnap_core::config::DrillRule;
use rolesnap_core::decide::drill::select;
use rolesnap_core::discovery::discover_tenant;
use rolesnap_core::jobs::restore::{self, DbSpec, InstanceSpec, Options, Request, Target, Which};
use rolesnap_core::report::schedule_interval;
use rolesnap_core::store::ledger::{ItemKind, JobType, Ledger};
use rolesnap_core::{admin_session, Endpoint, Loaded, LogFile};

use super::{shard_tenants, wait_for_plan_lock, Ran, RunContext};

const FUNC: &str = "CvdAgent::Drill";

/// The key of a plan's drill schedule among the slots the agent keeps
/// (`agent-schedule.json`), and the name its runs go by.
pub(super) fn slot_key(plan: &str) -> String {
    format!("{plan}#drill")
}

/// One resource a drill may restore: (tenant, region it is drilled in,
/// kind, source id).
type Candidate = (String, String, ItemKind, String);

/// Runs the drills of one slot; one Drill job per chosen resource.
pub(super) async fn run_drills(
    loaded: Arc<Loaded>,
    cx: RunContext,
    slot: DateTime<Utc>,
) -> Vec<Ran> {
    let plan = &loaded.plan;
    let Some(rule) = &plan.drill else {
        return Vec::new();
    };
    let logs = &cx.logs;
    let log = |m: &str| logs.write(LogFile::Cvd, None, FUNC, m);
    let tenants = shard_tenants(&loaded, cx.shard);
    if tenants.is_empty() {
        log(&format!(
            "Plan [{}]: no tenant in this agent's shard to drill",
            plan.name
        ));
        return Vec::new();
    }
    let admin = admin_session(&loaded.accounts, &Endpoint(cx.endpoint.clone()), logs).await;
    let ledger = match Ledger::open(&cx.state_dir) {
        Ok(l) => l,
        Err(e) => {
            log(&format!("Plan [{}] drills not run: {e}", plan.name));
            return Vec::new();
        }
    };
    let Some(_plan_lock) = wait_for_plan_lock(&cx.state_dir, &plan.name, logs).await else {
        return Vec::new();
    };
    let now = Utc::now();
    let candidates = gather(&loaded, rule, &admin, &tenants, logs).await;
    let last = last_drills(&ledger, &plan.name);
    let with_last: Vec<(Candidate, Option<DateTime<Utc>>)> = candidates
        .into_iter()
        .map(|c| {
            let l = last.get(&(c.0.clone(), c.3.clone())).copied();
            (c, l)
        })
        .collect();
    let chosen = select(
        &with_last,
        rule.selection,
        now,
        schedule_interval(&rule.schedule, now),
    );
    log(&format!(
        "Plan [{}]: drills for slot {}: {} of {} resource(s) with a recovery point chosen{}",
        plan.name,
        slot.to_rfc3339(),
        chosen.len(),
        with_last.len(),
        if chosen.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                chosen
                    .iter()
                    .map(|c| format!("{}/{}/{}", c.0, c.1, c.3))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    let mut ran = Vec::new();
    for (seq, (tenant_name, region, kind, id)) in chosen.into_iter().enumerate() {
        if rolesnap_core::jobs::stopping() {
            break;
        }
        let Some(tenant) = tenants.iter().find(|t| t.name == tenant_name) else {
            continue;
        };
        let Some(target) = drill_target(rule, &tenant_name, &region, kind, &id, seq) else {
            log(&format!(
                "Plan [{}]: {} [{id}] of tenant [{tenant_name}] not drilled: no [[drill.target]] for {region} with {}",
                plan.name,
                kind.as_str(),
                if kind == ItemKind::Instance {
                    "a subnet and security groups"
                } else {
                    "a region entry"
                }
            ));
            continue;
        };
        let report = restore::run(Request {
            plan,
            tenant,
            vaults: &loaded.accounts.vaults,
            admin: &admin,
            logs,
            ledger: Some(&ledger),
            pacer: admin.pacer(),
            which: Which {
                region: Some(region.clone()),
                ..Which::default()
            },
            target,
            options: Options {
                dry_run: false,
                wait_timeout: Duration::from_secs(u64::from(rule.timeout_minutes) * 60),
                poll_initial: Duration::from_secs_f64(cx.poll.max(0.05)),
                poll_max: Duration::from_secs(30),
            },
            drill: true,
            connect: rule.connect,
            check: rule.check.clone(),
        })
        .await;
        match report {
            Ok(r) => {
                log(&format!(
                    "Plan [{}]: Drill job [{}] of {} [{id}] (tenant [{tenant_name}], {region}): {}",
                    plan.name,
                    r.job,
                    kind.as_str(),
                    r.status
                ));
                crate::restore::alert_failed_drill(
                    &loaded,
                    &admin,
                    &cx.state_dir,
                    logs,
                    &r,
                    ledger.agent_id(),
                )
                .await;
                ran.push(Ran {
                    plan: plan.name.clone(),
                    job: r.job,
                    job_type: r.job_type,
                    status: r.status,
                });
            }
            Err(e) => {
                log(&format!(
                    "Plan [{}]: drills stopped: ledger error: {e}",
                    plan.name
                ));
                break;
            }
        }
    }
    ran
}

/// What a drill of this resource restores into: the plan's throw-away
/// target for its tenant and region. `None` when there is none (an
/// instance needs a subnet and security groups).
fn drill_target(
    rule: &DrillRule,
    tenant: &str,
    region: &str,
    kind: ItemKind,
    id: &str,
    seq: usize,
) -> Option<Target> {
    let t = rule.target(tenant, region)?;
    match kind {
        ItemKind::Instance => Some(Target::Instance(InstanceSpec {
            instance_id: id.to_string(),
            subnet: Some(t.subnet.clone()?),
            security_groups: t.security_groups.clone(),
            // Not the source's own tags: a drill is never production.
            no_tags: true,
            ..Default::default()
        })),
        ItemKind::DbInstance | ItemKind::DbCluster => Some(Target::Db(DbSpec {
            source_id: id.to_string(),
            cluster: kind == ItemKind::DbCluster,
            // Never the source's identifier; unique within the run.
            target_id: format!(
                "{}{}-{seq}",
                restore::DRILL_DB_PREFIX,
                Utc::now().timestamp()
            ),
            subnet_group: t.db_subnet_group.clone(),
            ..Default::default()
        })),
        _ => None,
    }
}

/// The resources the plan selects (instances, RDS instances, Aurora
/// clusters) that have a completed recovery point of the plan where drills
/// restore them.
async fn gather(
    loaded: &Loaded,
    rule: &DrillRule,
    admin: &rolesnap_core::aws::credentials::AdminSession,
    tenants: &[rolesnap_core::Tenant],
    logs: &rolesnap_core::Logs,
) -> Vec<Candidate> {
    let plan = &loaded.plan;
    let log = |m: &str| logs.write(LogFile::Cvd, None, FUNC, m);
    let mut out = Vec::new();
    let connected = connect_tenants(admin, tenants, None, logs).await;
    for (tenant, c) in tenants.iter().zip(connected) {
        let conn = match c {
            Ok(c) => c,
            Err(e) => {
                log(&format!(
                    "Plan [{}]: tenant [{}] not drilled: {e}",
                    plan.name, tenant.name
                ));
                continue;
            }
        };
        let results = discover_tenant(
            plan,
            &conn.session,
            &conn.account,
            &admin.admin.region,
            None,
            logs,
            false,
        )
        .await;
        let mut wanted: BTreeMap<String, Vec<(ItemKind, String)>> = BTreeMap::new();
        for rr in results {
            if let Some(e) = &rr.error {
                log(&format!(
                    "Plan [{}]: tenant [{}] region [{}] not drilled: {e}",
                    plan.name, tenant.name, rr.region
                ));
                continue;
            }
            let region = rule.from_copy.clone().unwrap_or_else(|| rr.region.clone());
            for sel in &rr.selection.selected {
                wanted
                    .entry(region.clone())
                    .or_default()
                    .push((sel.resource.item_kind(), sel.resource.id().to_string()));
            }
        }
        for (region, resources) in wanted {
            let points = match list_region(
                &conn.session,
                &conn.account,
                &region,
                Some(&plan.name),
                Kinds {
                    ec2: true,
                    rds: true,
                    all_tags: false,
                },
                &admin.pacer(),
            )
            .await
            {
                Ok(p) => p,
                Err(e) => {
                    log(&format!(
                        "Plan [{}]: cannot list the recovery points of tenant [{}] in [{region}]: {e}",
                        plan.name, tenant.name
                    ));
                    continue;
                }
            };
            let with_point: BTreeSet<&str> = points
                .iter()
                .filter(|p| p.completed())
                .map(|p| p.source.as_str())
                .collect();
            for (kind, id) in resources {
                if with_point.contains(id.as_str()) {
                    out.push((tenant.name.clone(), region.clone(), kind, id));
                } else {
                    log(&format!(
                        "Plan [{}]: {} [{id}] of tenant [{}] not drilled: no completed recovery point in [{region}] yet",
                        plan.name,
                        kind.as_str(),
                        tenant.name
                    ));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// When each (tenant, resource) of the plan was last drilled: the start of
/// its newest Drill job in this agent's ledger, whatever its outcome (a
/// failed drill is alerted; retrying it at every run would starve the rest).
fn last_drills(ledger: &Ledger, plan: &str) -> BTreeMap<(String, String), DateTime<Utc>> {
    let mut out: BTreeMap<(String, String), DateTime<Utc>> = BTreeMap::new();
    let Ok(jobs) = ledger.jobs(Some(plan), 100_000) else {
        return out;
    };
    for j in jobs.iter().filter(|j| j.job_type == JobType::Drill) {
        let at = DateTime::from_timestamp(j.start, 0).unwrap_or_default();
        let Ok(items) = ledger.items(j.id) else {
            continue;
        };
        for item in items {
            let e = out.entry((item.tenant, item.source_id)).or_insert(at);
            *e = (*e).max(at);
        }
    }
    out
}
