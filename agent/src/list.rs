//! `rolesnap list`: recovery points found live in AWS by tag.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use rolesnap_core::aws::credentials::{connect_tenants, Connected};
use rolesnap_core::aws::lock::Lock;
use rolesnap_core::aws::pace::Pacer;
use rolesnap_core::catalog::{list_region, Kinds, RecoveryPoint};
use rolesnap_core::discovery::{groups_for, regions_for};
use rolesnap_core::store::ledger::Ledger;
use rolesnap_core::Tenant;

use crate::cli::{Global, ListArgs, Output};
use crate::exit;
use crate::output::{setup, table, Setup};

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    point: RecoveryPoint,
    id: String,
    /// "source", "copy" or "vault" (a vault copy, in the vault's account).
    role: &'static str,
    /// When the plan's days rule expires it (count and GFS rules depend on
    /// later points; `prune --dry-run` shows those).
    expires: Option<DateTime<Utc>>,
    held: bool,
    /// EBS Snapshot Lock of its snapshots (the one that expires first), when
    /// the plan locks.
    lock: Option<Lock>,
    /// From the ledger, when this machine ran the job.
    job_status: Option<String>,
}

/// What the listing of one plan shares across tenants and regions.
struct Lister<'a> {
    s: &'a Setup,
    args: &'a ListArgs,
    pacer: Pacer,
    ledger: Option<Ledger>,
    rows: Vec<Row>,
    /// Tenants, regions and calls that failed (each said on stderr).
    errors: usize,
}

/// `rolesnap list`: the plan's recovery points in every region of every
/// tenant, newest first.
pub async fn run(global: &Global, args: ListArgs) -> anyhow::Result<u8> {
    let s = setup(global, &args.plan, "list").await?;
    let mut l = Lister {
        pacer: s.admin.pacer(),
        ledger: Ledger::open(&global.state_dir).ok(),
        s: &s,
        args: &args,
        rows: Vec::new(),
        errors: 0,
    };
    let connected = connect_tenants(&s.admin, &s.tenants, None, &s.logs).await;
    // account → tenant name, for the vault copies.
    let mut accounts: BTreeMap<String, String> = BTreeMap::new();
    for (tenant, c) in s.tenants.iter().zip(connected) {
        let conn = match c {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                l.errors += 1;
                continue;
            }
        };
        accounts.insert(conn.account.clone(), tenant.name.clone());
        for region in l.regions(tenant, &conn).await {
            l.list_region(&conn, &region).await;
        }
    }
    l.list_vaults(&accounts).await;
    let (mut rows, errors) = (l.rows, l.errors);
    rows.sort_by_key(|r| std::cmp::Reverse(r.point.created));
    match global.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Human => print_human(&rows, global.quiet),
    }
    Ok(if errors == 0 { exit::OK } else { exit::PARTIAL })
}

impl Lister<'_> {
    /// The regions to look in for `tenant`: its groups' and the copy
    /// destinations, narrowed by `--region`.
    async fn regions(&mut self, tenant: &Tenant, conn: &Connected) -> Vec<String> {
        let plan = &self.s.loaded.plan;
        let mut regions: Vec<String> = Vec::new();
        for g in groups_for(plan, tenant) {
            match regions_for(&conn.session, &self.s.admin.admin.region, &g.regions).await {
                Ok(rs) => regions.extend(rs),
                Err(e) => {
                    eprintln!("error: {e}");
                    self.errors += 1;
                }
            }
        }
        regions.extend(plan.copies.iter().map(|c| c.region.clone()));
        regions.sort();
        regions.dedup();
        if let Some(r) = &self.args.region {
            regions.retain(|x| x == r);
        }
        regions
    }

    /// The plan's recovery points in one region of a tenant, with their
    /// locks, as rows (those `--instance`, `--volume` or `--db` keep).
    async fn list_region(&mut self, conn: &Connected, region: &str) {
        let plan = &self.s.loaded.plan;
        let kinds = Kinds {
            ec2: self.args.db.is_none(),
            rds: self.args.instance.is_none() && self.args.volume.is_none(),
            all_tags: true,
        };
        let points = match list_region(
            &conn.session,
            &conn.account,
            region,
            Some(&plan.name),
            kinds,
            &self.pacer,
        )
        .await
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                self.errors += 1;
                return;
            }
        };
        let locks = self.locks(conn, region, &points).await;
        for p in points {
            let lock = p
                .snapshots
                .iter()
                .filter_map(|s| locks.get(&s.id))
                .min_by_key(|l| l.expires)
                .cloned();
            if self.keeps(&p) {
                let row = self.row(p, lock);
                self.rows.push(row);
            }
        }
    }

    /// The vault copies of the listed tenants' points, in every region of
    /// each vault the plan copies into (narrowed by `--region`).
    async fn list_vaults(&mut self, accounts: &BTreeMap<String, String>) {
        let plan = &self.s.loaded.plan;
        for rule in &plan.vaults {
            let Some(vault) = self.s.loaded.accounts.vault(&rule.vault) else {
                continue;
            };
            let conn = match connect_tenants(
                &self.s.admin,
                std::slice::from_ref(&vault.role),
                None,
                &self.s.logs,
            )
            .await
            .pop()
            {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    eprintln!("error: vault {}: {e}", vault.name);
                    self.errors += 1;
                    continue;
                }
                None => continue,
            };
            for region in vault.keys.keys() {
                if self.args.region.as_ref().is_some_and(|r| r != region) {
                    continue;
                }
                let kinds = Kinds {
                    ec2: self.args.db.is_none(),
                    rds: self.args.instance.is_none() && self.args.volume.is_none(),
                    all_tags: true,
                };
                let points = match list_region(
                    &conn.session,
                    &conn.account,
                    region,
                    Some(&plan.name),
                    kinds,
                    &self.pacer,
                )
                .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("error: vault {}: {e}", vault.name);
                        self.errors += 1;
                        continue;
                    }
                };
                for mut p in points {
                    let Some(tenant) = rolesnap_core::jobs::vault::vault_of(&p)
                        .and_then(|k| k.split('/').next())
                        .and_then(|a| accounts.get(a))
                    else {
                        continue;
                    };
                    p.tenant = tenant.clone();
                    if self.keeps(&p) {
                        let row = self.row(p, None);
                        self.rows.push(row);
                    }
                }
            }
        }
    }

    /// One DescribeLockedSnapshots per region, for plans that lock (none
    /// otherwise, or on an error, said on stderr).
    async fn locks(
        &mut self,
        conn: &Connected,
        region: &str,
        points: &[RecoveryPoint],
    ) -> BTreeMap<String, Lock> {
        if !rolesnap_core::aws::lock::plan_locks(&self.s.loaded.plan) {
            return Default::default();
        }
        let ids: Vec<String> = points
            .iter()
            .flat_map(|p| p.snapshots.iter().map(|s| s.id.clone()))
            .collect();
        match rolesnap_core::aws::lock::locks(&conn.session.ec2(region), &ids).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                self.errors += 1;
                Default::default()
            }
        }
    }

    /// Whether `--instance`, `--volume` or `--db` keep this point.
    fn keeps(&self, p: &RecoveryPoint) -> bool {
        match (&self.args.instance, &self.args.volume, &self.args.db) {
            (Some(i), _, _) => &p.source == i,
            (_, Some(v), _) => p.snapshots.iter().any(|s| &s.volume_id == v),
            (_, _, Some(d)) => &p.source == d,
            _ => true,
        }
    }

    /// The row of a point: source or copy, when the plan's days rule
    /// expires it, and its job's status when this agent ran the job.
    fn row(&self, p: RecoveryPoint, lock: Option<Lock>) -> Row {
        let plan = &self.s.loaded.plan;
        let vault = rolesnap_core::jobs::vault::vault_of(&p).is_some();
        let role = if vault {
            "vault"
        } else if p.copy_of().is_some() {
            "copy"
        } else {
            "source"
        };
        let days = if vault {
            plan.vaults
                .iter()
                .find(|v| p.tags.get(rolesnap_core::tags::VAULT) == Some(&v.vault))
                .and_then(|v| v.retention.days)
        } else if role == "copy" {
            plan.copies
                .iter()
                .find(|c| c.region == p.region)
                .and_then(|c| c.retention.days)
        } else {
            plan.retention.days
        };
        // Only this agent's own jobs are in its ledger: another
        // agent's job of the same number is another job.
        let job_status = match (&self.ledger, p.job) {
            (Some(l), Some(j)) if l.agent_id() == p.agent => {
                l.job(j).ok().flatten().map(|j| j.status.to_string())
            }
            _ => None,
        };
        Row {
            id: p.id(),
            role,
            expires: days.map(|d| p.created + chrono::Duration::days(i64::from(d))),
            held: p.held(),
            lock,
            job_status,
            point: p,
        }
    }
}

/// The recovery point table and count (nothing under `--quiet`).
fn print_human(rows: &[Row], quiet: bool) {
    let mut t = table(&[
        "created", "job", "agent", "kind", "tenant", "source", "region", "id", "GiB", "state",
        "expires", "hold", "lock",
    ]);
    for r in rows {
        t.add_row(vec![
            r.point.created.format("%Y-%m-%d %H:%M").to_string(),
            r.point.job.map(|j| j.to_string()).unwrap_or_default(),
            r.point.agent.chars().take(8).collect(),
            r.point.kind.as_str().to_string(),
            r.point.tenant.clone(),
            r.point.source.clone(),
            format!("{} ({})", r.point.region, r.role),
            r.id.clone(),
            r.point.size_gib.to_string(),
            format!("{:?}", r.point.state).to_lowercase(),
            r.expires
                .map(|e| e.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "-".into()),
            if r.held { "held".into() } else { String::new() },
            r.lock
                .as_ref()
                .map(|l| match l.expires {
                    Some(t) => format!("{} until {}", l.state, t.format("%Y-%m-%d %H:%M")),
                    None => l.state.clone(),
                })
                .unwrap_or_default(),
        ]);
    }
    if !quiet {
        println!("{t}");
        println!("{} recovery point(s)", rows.len());
    }
}
