//! `rolesnap report`: the RPO report. For every resource the plans select:
//! the newest completed recovery point in its source region, in each copy
//! region and in each vault, its age against the plan's RPO; and what
//! discovery sees that no plan selects. Built from AWS state (discovery and
//! the catalog, by tag) plus the ledgers, so it works on any access node.
//! The decisions and the CSV/HTML rendering are in `rolesnap_core::report`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};

use rolesnap_core::aws::credentials::{connect_tenants, Connected};
use rolesnap_core::catalog::{list_region, Kinds, PointKind, RecoveryPoint};
use rolesnap_core::discovery::{discover_tenant, Resource};
use rolesnap_core::jobs::vault::vault_of;
use rolesnap_core::report::{
    assess, human_duration, plan_rpo, render_csv, render_html, schedule_interval, LedgerJob,
    Observed, Place, PlanSummary, Report, ResourceKey, ResourceReport, Role, Unprotected,
};
use rolesnap_core::store::ledger::{JobStatus, JobType, Ledger};
use rolesnap_core::{AdminSession, Loaded, Logs, Plan, Tenant};

use crate::backup::parse_time;
use crate::cli::{Global, Output, PlanArgs, ReportArgs, ReportFormat};
use crate::exit;
use crate::output::{setup, table};

/// (tenant, resource kind, source region, source id): the points of one resource.
type PointKey = (String, &'static str, String, String);

/// (tenant, account, region, kind, id) of a resource discovery saw.
pub(crate) type SeenKey = (String, String, String, String, String);

pub async fn run(global: &Global, args: ReportArgs) -> anyhow::Result<u8> {
    let as_of = match &args.as_of {
        None => Utc::now(),
        Some(t) => match parse_time(t) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --as-of: {e:#}");
                return Ok(exit::USAGE);
            }
        },
    };
    let format = match (args.format, global.output) {
        (Some(f), _) => f,
        (None, Output::Json) => ReportFormat::Json,
        (None, Output::Human) => ReportFormat::Table,
    };
    let mut errors: Vec<String> = Vec::new();
    let ledgers = open_ledgers(global, &args.from, &mut errors);
    let mut plans = Vec::new();
    let mut resources = Vec::new();
    // What each plan left, and what any plan selected, per tenant × region.
    let mut seen: BTreeMap<SeenKey, Vec<String>> = BTreeMap::new();
    let mut selected: BTreeSet<SeenKey> = BTreeSet::new();
    let mut any_tenant = false;
    for path in &args.plans {
        let plan_args = PlanArgs {
            plan: path.clone(),
            accounts: args.accounts.clone(),
            tenant: None,
        };
        let mut s = setup(global, &plan_args, "report").await?;
        if let Some(only) = &args.tenant {
            s.tenants.retain(|t| &t.name == only);
        }
        any_tenant |= !s.tenants.is_empty();
        let a = assess_plan(
            &s.loaded,
            &s.admin,
            &s.logs,
            &s.tenants,
            args.region.as_deref(),
            as_of,
            &ledgers,
        )
        .await;
        plans.push(a.summary);
        resources.extend(a.resources);
        errors.extend(a.errors);
        for (k, mut reasons) in a.seen {
            seen.entry(k).or_default().append(&mut reasons);
        }
        selected.extend(a.selected);
    }
    if args.tenant.is_some() && !any_tenant {
        eprintln!(
            "error: --tenant {}: no plan of the report protects it",
            args.tenant.as_deref().unwrap_or_default()
        );
        return Ok(exit::USAGE);
    }
    let unprotected: Vec<Unprotected> = seen
        .into_iter()
        .filter(|(k, _)| !selected.contains(k))
        .map(
            |((tenant, account, region, kind, id), reasons)| Unprotected {
                tenant,
                account,
                region,
                kind,
                id,
                reasons,
            },
        )
        .collect();
    for e in &errors {
        eprintln!("error: {e}");
    }
    let failed = !errors.is_empty();
    let report = Report::new(as_of, Utc::now(), plans, resources, unprotected, errors);
    let text = match format {
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Csv => render_csv(&report),
        ReportFormat::Html => render_html(&report),
        ReportFormat::Table => human(&report),
    };
    match &args.out {
        Some(path) => {
            write_file(path, &text)?;
            if !global.quiet && format != ReportFormat::Json {
                eprintln!(
                    "report written to {} ({} resource(s), {} breached, {} never protected, {} unprotected)",
                    path.display(),
                    report.summary.resources,
                    report.summary.breached,
                    report.summary.never_protected,
                    report.summary.unprotected
                );
            }
        }
        None if global.quiet && format == ReportFormat::Table => {}
        None => print!("{text}"),
    }
    Ok(if failed { exit::PARTIAL } else { exit::OK })
}

/// What could not be listed in one plan's part of the report: the
/// resources whose points are there are not decided (see
/// [`PlanAssessment::undecided`]).
#[derive(Debug, Default)]
pub(crate) struct Unlisted {
    /// Tenants that could not be reached at all.
    pub tenants: BTreeMap<String, String>,
    /// (tenant, region) whose points could not be listed, and why.
    pub regions: BTreeMap<(String, String), String>,
    /// Vaults whose copies could not be listed, and why.
    pub vaults: BTreeMap<String, String>,
}

/// One plan's part of the report, decided at one instant.
pub(crate) struct PlanAssessment {
    pub summary: PlanSummary,
    pub resources: Vec<ResourceReport>,
    /// Where each resource keeps its points (parallel to `resources`).
    pub places: Vec<Vec<Place>>,
    pub errors: Vec<String>,
    pub seen: BTreeMap<SeenKey, Vec<String>>,
    pub selected: BTreeSet<SeenKey>,
    pub unlisted: Unlisted,
}

impl PlanAssessment {
    /// Why resource `i` cannot be decided: a place it keeps points in (its
    /// tenant, a source or copy region, a vault) could not be listed, so a
    /// missing point there says nothing. `None` when it can.
    pub fn undecided(&self, i: usize) -> Option<String> {
        let k = &self.resources[i].key;
        if let Some(e) = self.unlisted.tenants.get(&k.tenant) {
            return Some(format!("tenant {}: {e}", k.tenant));
        }
        self.places[i].iter().find_map(|p| match &p.vault {
            Some(v) => self
                .unlisted
                .vaults
                .get(v)
                .map(|e| format!("vault {v}: {e}")),
            None => self
                .unlisted
                .regions
                .get(&(k.tenant.clone(), p.region.clone()))
                .map(|e| format!("tenant {} {}: {e}", k.tenant, p.region)),
        })
    }
}

/// Decides every resource `loaded`'s plan selects in `tenants` (only
/// `region`, if given) at `as_of`: discovery, the catalog by tag in the
/// source and copy regions and the vaults, the newest drills of `ledgers`.
/// What `rolesnap report` shows and the agent's RPO check alerts on.
pub(crate) async fn assess_plan(
    loaded: &Loaded,
    admin: &AdminSession,
    logs: &Logs,
    tenants: &[Tenant],
    region: Option<&str>,
    as_of: DateTime<Utc>,
    ledgers: &[Ledger],
) -> PlanAssessment {
    let plan = &loaded.plan;
    let summary = plan_summary(plan, as_of, ledgers);
    let rpo = plan_rpo(plan.schedule.as_ref(), as_of);
    let mut errors = Vec::new();
    let mut seen = BTreeMap::new();
    let mut selected = BTreeSet::new();
    let mut g = Gather {
        loaded,
        admin,
        logs,
        region,
        errors: &mut errors,
        keys: Vec::new(),
        points: BTreeMap::new(),
        seen: &mut seen,
        selected: &mut selected,
        unlisted: Unlisted::default(),
    };
    let connected = connect_tenants(admin, tenants, None, logs).await;
    let mut accounts: BTreeMap<String, String> = BTreeMap::new();
    for (tenant, c) in tenants.iter().zip(connected) {
        match c {
            Ok(conn) => {
                accounts.insert(conn.account.clone(), tenant.name.clone());
                g.tenant(&conn).await;
            }
            Err(e) => {
                g.unlisted
                    .tenants
                    .insert(tenant.name.clone(), e.to_string());
                g.errors.push(format!("plan {}: {e}", plan.name));
            }
        }
    }
    g.vaults(&accounts).await;
    let Gather {
        keys,
        mut points,
        unlisted,
        ..
    } = g;
    let mut drills = last_drills(ledgers, &plan.name, as_of);
    let mut resources = Vec::new();
    let mut all_places = Vec::new();
    for (key, places) in keys {
        let pk = (
            key.tenant.clone(),
            family_of_resource(&key.kind),
            key.region.clone(),
            key.id.clone(),
        );
        let pts = points.remove(&pk).unwrap_or_default();
        let mut r = assess(key, rpo, &places, pts, as_of);
        r.drill = drills.remove(&(r.key.tenant.clone(), r.key.id.clone()));
        resources.push(r);
        all_places.push(places);
    }
    PlanAssessment {
        summary,
        resources,
        places: all_places,
        errors,
        seen,
        selected,
        unlisted,
    }
}

/// Written aside, then renamed: a reader never sees half a report.
fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp-rolesnap");
    std::fs::write(&tmp, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// This state directory's ledger (when there is one) and those of `--from`,
/// all read-only: a report changes nothing.
pub(crate) fn open_ledgers(
    global: &Global,
    from: &[std::path::PathBuf],
    errors: &mut Vec<String>,
) -> Vec<Ledger> {
    let mut out = Vec::new();
    if global.state_dir.join("ledger.db").exists() {
        match Ledger::open_read_only(&global.state_dir) {
            Ok(l) => out.push(l),
            Err(e) => errors.push(format!("ledger {}: {e}", global.state_dir.display())),
        }
    }
    for dir in from {
        match Ledger::open_read_only(dir) {
            Ok(l) => out.push(l),
            Err(e) => errors.push(format!("ledger {}: {e}", dir.display())),
        }
    }
    out
}

/// The newest Drill job of `plan` per (tenant, resource) in the ledgers,
/// started at or before `as_of`: the ledgers are read once per plan, not
/// once per resource.
fn last_drills(
    ledgers: &[Ledger],
    plan: &str,
    as_of: DateTime<Utc>,
) -> BTreeMap<(String, String), rolesnap_core::report::DrillSeen> {
    let mut best: BTreeMap<(String, String), rolesnap_core::report::DrillSeen> = BTreeMap::new();
    for l in ledgers {
        let Ok(jobs) = l.jobs(Some(plan), 500) else {
            continue;
        };
        for j in jobs.iter().filter(|j| j.job_type == JobType::Drill) {
            let at = DateTime::from_timestamp(j.start, 0).unwrap_or_default();
            if at > as_of {
                continue;
            }
            let Ok(items) = l.items(j.id) else { continue };
            for item in items {
                let key = (item.tenant.clone(), item.source_id.clone());
                if best.get(&key).is_some_and(|b| b.at >= at) {
                    continue;
                }
                let d = &item.detail["drill"];
                best.insert(
                    key,
                    rolesnap_core::report::DrillSeen {
                        job: rolesnap_core::tags::job_label(j.id, l.agent_id()),
                        at,
                        healthy: d["healthy"].as_bool().unwrap_or(false)
                            && j.status != JobStatus::Failed,
                        rto_seconds: d["rto_seconds"].as_i64(),
                        reason: d["reason"]
                            .as_str()
                            .map(str::to_string)
                            .or_else(|| j.error.clone()),
                    },
                );
            }
        }
    }
    best
}

/// The plan's schedule, RPO and, from the ledgers, its newest backup job and
/// its newest job that did not complete cleanly.
fn plan_summary(plan: &Plan, as_of: DateTime<Utc>, ledgers: &[Ledger]) -> PlanSummary {
    let mut last_backup: Option<LedgerJob> = None;
    let mut last_failure: Option<LedgerJob> = None;
    for l in ledgers {
        let Ok(jobs) = l.jobs(Some(&plan.name), 500) else {
            continue;
        };
        for j in jobs {
            let start = DateTime::from_timestamp(j.start, 0).unwrap_or_default();
            if start > as_of {
                continue;
            }
            let lj = LedgerJob {
                job: rolesnap_core::tags::job_label(j.id, l.agent_id()),
                job_type: j.job_type.as_str().to_string(),
                status: j.status.as_str().to_string(),
                start,
                end: j.end.and_then(|e| DateTime::from_timestamp(e, 0)),
                error: j.error.clone(),
            };
            if j.job_type == JobType::SnapBackup
                && last_backup.as_ref().is_none_or(|b| b.start < start)
            {
                last_backup = Some(lj.clone());
            }
            let bad = matches!(
                j.status,
                JobStatus::Failed | JobStatus::CompletedWithErrors | JobStatus::Killed
            );
            if bad && last_failure.as_ref().is_none_or(|b| b.start < start) {
                last_failure = Some(lj);
            }
        }
    }
    let s = plan.schedule.as_ref();
    PlanSummary {
        plan: plan.name.clone(),
        schedule: s.map(|s| s.cron_source.clone()),
        timezone: s.map(|s| s.timezone.to_string()),
        interval_seconds: s
            .and_then(|s| schedule_interval(s, as_of))
            .map(|d| d.num_seconds()),
        rpo_grace_minutes: s.map(|s| s.rpo_grace_minutes),
        rpo_seconds: plan_rpo(s, as_of).map(|d| d.num_seconds()),
        retention_days: plan.retention.days,
        last_backup,
        last_failure,
    }
}

/// The resource kind a point kind protects.
fn family_of_point(k: PointKind) -> &'static str {
    match k {
        PointKind::SnapshotSet | PointKind::Ami => "instance",
        PointKind::DbSnapshot => "db-instance",
        PointKind::ClusterSnapshot => "db-cluster",
    }
}

fn family_of_resource(kind: &str) -> &'static str {
    match kind {
        "db-instance" => "db-instance",
        "db-cluster" => "db-cluster",
        _ => "instance",
    }
}

/// What one plan's part of the report gathers.
struct Gather<'a> {
    loaded: &'a Loaded,
    admin: &'a AdminSession,
    logs: &'a Logs,
    region: Option<&'a str>,
    errors: &'a mut Vec<String>,
    /// The selected resources and where the plan keeps their points.
    keys: Vec<(ResourceKey, Vec<Place>)>,
    points: BTreeMap<PointKey, Vec<Observed>>,
    seen: &'a mut BTreeMap<SeenKey, Vec<String>>,
    selected: &'a mut BTreeSet<SeenKey>,
    unlisted: Unlisted,
}

impl Gather<'_> {
    /// Discovery (selected and left) and the points in the tenant's source
    /// and copy regions.
    async fn tenant(&mut self, conn: &Connected) {
        let plan = &self.loaded.plan;
        let tenant = conn.session.tenant.name.clone();
        let results = discover_tenant(
            plan,
            &conn.session,
            &conn.account,
            &self.admin.admin.region,
            self.region,
            self.logs,
            false,
        )
        .await;
        let mut regions: BTreeSet<String> = BTreeSet::new();
        for rr in results {
            if let Some(e) = &rr.error {
                self.errors.push(format!("plan {}: {e}", plan.name));
                self.unlisted
                    .regions
                    .insert((tenant.clone(), rr.region.clone()), e.to_string());
                continue;
            }
            // Not candidates for protection: terminated instances, and
            // Aurora members (protected, or not, through their cluster, which
            // is listed itself).
            let gone: BTreeSet<&str> = rr
                .inventory
                .iter()
                .flat_map(|i| &i.instances)
                .filter(|i| matches!(i.state.as_str(), "terminated" | "shutting-down"))
                .map(|i| i.id.as_str())
                .chain(
                    rr.inventory
                        .iter()
                        .flat_map(|i| &i.db_instances)
                        .filter(|d| d.cluster_id.is_some())
                        .map(|d| d.id.as_str()),
                )
                .collect();
            for sk in &rr.selection.skipped {
                if gone.contains(sk.id.as_str()) {
                    continue;
                }
                self.seen
                    .entry((
                        tenant.clone(),
                        conn.account.clone(),
                        rr.region.clone(),
                        sk.kind.to_string(),
                        sk.id.clone(),
                    ))
                    .or_default()
                    .push(format!("{}: {}", plan.name, sk.reason));
            }
            for sel in &rr.selection.selected {
                let kind = sel.resource.kind().to_string();
                let id = sel.resource.id().to_string();
                let sk = (
                    tenant.clone(),
                    conn.account.clone(),
                    rr.region.clone(),
                    kind.clone(),
                    id.clone(),
                );
                self.seen.entry(sk.clone()).or_default();
                self.selected.insert(sk);
                let name = match &sel.resource {
                    Resource::Instance(i) => i.name().map(str::to_string),
                    _ => None,
                };
                let places = places(plan, &rr.region);
                regions.extend(
                    places
                        .iter()
                        .filter(|p| p.role != Role::Vault)
                        .map(|p| p.region.clone()),
                );
                self.keys.push((
                    ResourceKey {
                        plan: plan.name.clone(),
                        tenant: tenant.clone(),
                        account: conn.account.clone(),
                        region: rr.region.clone(),
                        kind,
                        id,
                        name,
                    },
                    places,
                ));
            }
        }
        for region in regions {
            match list_region(
                &conn.session,
                &conn.account,
                &region,
                Some(&plan.name),
                kinds(),
                &self.admin.pacer(),
            )
            .await
            {
                Ok(points) => {
                    for p in points {
                        self.add(&tenant, p, None);
                    }
                }
                Err(e) => {
                    self.errors
                        .push(format!("plan {}: tenant {tenant} {region}: {e}", plan.name));
                    self.unlisted
                        .regions
                        .insert((tenant.clone(), region.clone()), e.to_string());
                }
            }
        }
    }

    /// The vault copies of the plan's points, in every region of each vault
    /// its `[[vault]]` rules copy into (as `list` finds them).
    async fn vaults(&mut self, accounts: &BTreeMap<String, String>) {
        let plan = &self.loaded.plan;
        for rule in &plan.vaults {
            let Some(vault) = self.loaded.accounts.vault(&rule.vault) else {
                continue;
            };
            let listing = rolesnap_core::jobs::vault::list_vault(
                self.admin,
                self.logs,
                vault,
                &plan.name,
                kinds(),
                None,
                &self.admin.pacer(),
            )
            .await;
            if let Some(e) = listing.errors.first() {
                self.unlisted.vaults.insert(vault.name.clone(), e.clone());
            }
            self.errors.extend(listing.errors);
            for (_, points) in listing.regions {
                for p in points {
                    let Some(tenant) = rolesnap_core::jobs::vault::tenant_of_copy(&p, accounts)
                    else {
                        continue;
                    };
                    self.add(&tenant.clone(), p, Some(&vault.name));
                }
            }
        }
    }

    /// Files a point under its resource: by source id, and the region its
    /// original was made in (a copy's `_GX_COPY_OF_`, a vault copy's
    /// `_GX_VAULT_OF_`).
    fn add(&mut self, tenant: &str, p: RecoveryPoint, vault: Option<&str>) {
        if p.source.is_empty() {
            return;
        }
        let copy_region = p
            .copy_of()
            .and_then(|c| c.split('/').next())
            .map(str::to_string);
        let (role, source_region) = match vault {
            Some(_) => {
                let of_region = vault_of(&p)
                    .and_then(|k| k.split('/').nth(1))
                    .map(str::to_string);
                match copy_region.or(of_region) {
                    Some(r) => (Role::Vault, r),
                    None => return,
                }
            }
            None => match copy_region {
                Some(r) => (Role::Copy, r),
                None => (Role::Source, p.region.clone()),
            },
        };
        let observed = Observed {
            place: Place {
                role,
                region: p.region.clone(),
                vault: vault.map(str::to_string),
            },
            id: p.id(),
            job: p.job_label(),
            created: p.created,
            state: p.state,
        };
        self.points
            .entry((
                tenant.to_string(),
                family_of_point(p.kind),
                source_region,
                p.source.clone(),
            ))
            .or_default()
            .push(observed);
    }
}

/// Where `plan` keeps the points of a resource in `region`: there, each copy
/// region, each vault region of its `[[vault]]` rules.
fn places(plan: &Plan, region: &str) -> Vec<Place> {
    let mut out = vec![Place {
        role: Role::Source,
        region: region.to_string(),
        vault: None,
    }];
    for c in &plan.copies {
        if c.region != region {
            out.push(Place {
                role: Role::Copy,
                region: c.region.clone(),
                vault: None,
            });
        }
    }
    for v in &plan.vaults {
        for d in v.dests(region) {
            out.push(Place {
                role: Role::Vault,
                region: d,
                vault: Some(v.vault.clone()),
            });
        }
    }
    out
}

fn kinds() -> Kinds {
    Kinds {
        ec2: true,
        rds: true,
        all_tags: false,
    }
}

/// The report for people: plans, resources (worst first), unprotected.
fn human(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let age = |s: Option<i64>| {
        s.map(|s| human_duration(chrono::Duration::seconds(s)))
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(
        out,
        "RPO report as of {}",
        r.as_of.format("%Y-%m-%d %H:%M UTC")
    );
    for p in &r.plans {
        let _ = writeln!(
            out,
            "plan {}: schedule {}, RPO {}; last backup {}; last failure {}",
            p.plan,
            p.schedule.as_deref().unwrap_or("none (on demand)"),
            age(p.rpo_seconds),
            p.last_backup
                .as_ref()
                .map_or("-".into(), |j| format!("{} {}", j.job, j.status)),
            p.last_failure
                .as_ref()
                .map_or("-".into(), |j| format!("{} {}", j.job, j.status)),
        );
    }
    let mut t = table(&[
        "status", "plan", "tenant", "region", "kind", "id", "newest", "age", "RPO", "places",
    ]);
    for x in &r.resources {
        t.add_row(vec![
            x.status.as_str().to_string(),
            x.key.plan.clone(),
            x.key.tenant.clone(),
            x.key.region.clone(),
            x.key.kind.clone(),
            x.key.id.clone(),
            x.newest
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "-".into()),
            age(x.age_seconds),
            age(x.rpo_seconds),
            x.places
                .iter()
                .map(|p| {
                    format!(
                        "{} {} {}",
                        p.place.label(),
                        p.status.as_str(),
                        age(p.age_seconds)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ]);
    }
    let _ = writeln!(out, "{t}");
    if !r.unprotected.is_empty() {
        let mut u = table(&["tenant", "region", "kind", "id", "why not selected"]);
        for x in &r.unprotected {
            u.add_row(vec![
                x.tenant.clone(),
                x.region.clone(),
                x.kind.clone(),
                x.id.clone(),
                x.reasons.join("\n"),
            ]);
        }
        let _ = writeln!(
            out,
            "unprotected (seen by discovery, selected by no plan)\n{u}"
        );
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "{} resource(s): {} compliant, {} breached, {} never protected, {} without RPO; {} unprotected",
        s.resources, s.compliant, s.breached, s.never_protected, s.no_rpo, s.unprotected
    );
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}
