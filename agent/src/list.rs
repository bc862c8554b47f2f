//! `rolesnap list`: recovery points found live in AWS by tag.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use rolesnap_core::aws::credentials::{connect_tenants, Connected};
use rolesnap_core::aws::lock::Lock;
use rolesnap_core::aws::pace::Pacer;
use rolesnap_core::catalog::{list_region, Kinds, RecoveryPoint};
use rolesnap_core::decide::retention::Verdict;
use rolesnap_core::discovery::{groups_for, regions_for};
use rolesnap_core::jobs::prune::{decide_listed, Listed};
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
    /// What the plan's retention decides now (`keep` or `delete`: the next
    /// prune deletes it), as `prune` decides.
    decision: Verdict,
    /// The rule behind the decision, as `prune --dry-run` says it.
    rule: String,
    /// When the retention decision deletes it, the plan's schedule going on
    /// (now when it is expired; none when held, pending, or kept beyond the
    /// replayed horizon).
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
    /// When the retention is decided.
    now: DateTime<Utc>,
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
        now: Utc::now(),
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
    let (mut rows, errors, now) = (l.rows, l.errors, l.now);
    rows.sort_by_key(|r| std::cmp::Reverse(r.point.created));
    match global.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Human => print_human(&rows, global.quiet, args.wide, now),
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
        let decided = decide_listed(plan, &points, None, self.now);
        for (p, d) in points.into_iter().zip(decided) {
            let lock = p
                .snapshots
                .iter()
                .filter_map(|s| locks.get(&s.id))
                .min_by_key(|l| l.expires)
                .cloned();
            if self.keeps(&p) {
                let row = self.row(p, lock, d);
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
            let kinds = Kinds {
                ec2: self.args.db.is_none(),
                rds: self.args.instance.is_none() && self.args.volume.is_none(),
                all_tags: true,
            };
            let listing = rolesnap_core::jobs::vault::list_vault(
                &self.s.admin,
                &self.s.logs,
                vault,
                &plan.name,
                kinds,
                self.args.region.as_deref(),
                &self.pacer,
            )
            .await;
            for e in &listing.errors {
                eprintln!("error: {e}");
            }
            self.errors += listing.errors.len();
            for (_, points) in listing.regions {
                // The vault's copies follow the vault rule.
                let decided = decide_listed(plan, &points, Some(&rule.retention), self.now);
                for (mut p, d) in points.into_iter().zip(decided) {
                    let Some(tenant) = rolesnap_core::jobs::vault::tenant_of_copy(&p, accounts)
                    else {
                        continue;
                    };
                    p.tenant = tenant.clone();
                    if self.keeps(&p) {
                        let row = self.row(p, None, d);
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

    /// The row of a point: source, copy or vault copy, what the retention
    /// decides for it, and its job's status when this agent ran the job.
    fn row(&self, p: RecoveryPoint, lock: Option<Lock>, d: Listed) -> Row {
        let vault = rolesnap_core::jobs::vault::vault_of(&p).is_some();
        let role = if vault {
            "vault"
        } else if p.copy_of().is_some() {
            "copy"
        } else {
            "source"
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
            decision: d.verdict,
            rule: d.rule,
            expires: d.expires,
            held: p.held(),
            lock,
            job_status,
            point: p,
        }
    }
}

/// The recovery point table and count (nothing under `--quiet`), fitted to
/// the terminal unless `--wide`.
fn print_human(rows: &[Row], quiet: bool, wide: bool, now: DateTime<Utc>) {
    if quiet {
        return;
    }
    let header = [
        "created", "job", "agent", "kind", "tenant", "source", "region", "id", "GiB", "state",
        "expires", "kept by", "hold", "lock",
    ];
    let cells: Vec<Vec<String>> = rows.iter().map(|r| cells(r, now)).collect();
    let width = if wide { None } else { terminal_width() };
    let (header, cells) = fit(&header, cells, width);
    let mut t = table(&header.iter().map(String::as_str).collect::<Vec<_>>());
    if width.is_some() {
        // Cells are cut to fit already: never wrap an id mid-string.
        t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    }
    for c in cells {
        t.add_row(c);
    }
    println!("{t}");
    let expired = rows
        .iter()
        .filter(|r| r.decision == Verdict::Delete)
        .count();
    println!(
        "{} recovery point(s){}",
        rows.len(),
        if expired > 0 {
            format!(", {expired} expired (the next prune deletes them)")
        } else {
            String::new()
        }
    );
}

fn cells(r: &Row, now: DateTime<Utc>) -> Vec<String> {
    vec![
        r.point.created.format("%Y-%m-%d %H:%M").to_string(),
        r.point.job.map(|j| j.to_string()).unwrap_or_default(),
        r.point.agent.chars().take(8).collect(),
        r.point.kind.as_str().to_string(),
        r.point.tenant.clone(),
        r.point.source.clone(),
        // The role only when not the source region's own point.
        match r.role {
            "source" => r.point.region.clone(),
            role => format!("{} {role}", r.point.region),
        },
        r.id.clone(),
        r.point.size_gib.to_string(),
        format!("{:?}", r.point.state).to_lowercase(),
        expiry_text(r.decision, r.expires, now),
        r.rule.clone(),
        if r.held { "held".into() } else { String::new() },
        r.lock
            .as_ref()
            .map(|l| match l.expires {
                Some(t) => format!("{} until {}", l.state, t.format("%Y-%m-%d %H:%M")),
                None => l.state.clone(),
            })
            .unwrap_or_default(),
    ]
}

/// `expired`, `2026-04-06 00:00`, or `-` (held, pending, kept past the horizon).
pub fn expiry_text(d: Verdict, expires: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match (d, expires) {
        (Verdict::Delete, _) => "expired".into(),
        (_, Some(e)) if e <= now => "expired".into(),
        (_, Some(e)) => e.format("%Y-%m-%d %H:%M").to_string(),
        (_, None) => "-".into(),
    }
}

/// The width to fit: `COLUMNS`, else the terminal's when stdout is one; none
/// (no fitting) when output goes to a pipe or a file.
fn terminal_width() -> Option<usize> {
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return Some(c);
    }
    comfy_table::Table::new().width().map(usize::from)
}

/// Columns dropped first when the table is too wide, in order.
const DROP: [&str; 8] = [
    "agent", "job", "state", "GiB", "lock", "kind", "hold", "tenant",
];
/// Columns cut (with `…`) before any is dropped, in order, and their
/// narrowest: ids first (whole with `--wide` or `-o json`), so that the rule
/// that keeps a point stays readable.
const CUT: [(&str, usize); 4] = [("id", 12), ("source", 10), ("kept by", 10), ("tenant", 8)];

/// Fits a table (UTF-8 outer borders, padding, blank separators) into `width`: empty
/// columns go, then the long texts are cut (ids in the middle, rules at the
/// end), then the least needed columns are dropped. `None`: as it is.
pub fn fit(
    header: &[&str],
    rows: Vec<Vec<String>>,
    width: Option<usize>,
) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut rows = rows;
    let Some(width) = width else {
        return (header, rows);
    };
    let drop_col = |header: &mut Vec<String>, rows: &mut Vec<Vec<String>>, i: usize| {
        header.remove(i);
        for r in rows.iter_mut() {
            r.remove(i);
        }
    };
    // Empty columns (no hold, no lock, …) take no room.
    let mut i = 0;
    while i < header.len() {
        if !rows.is_empty() && rows.iter().all(|r| r[i].is_empty()) {
            drop_col(&mut header, &mut rows, i);
        } else {
            i += 1;
        }
    }
    let widths = |header: &[String], rows: &[Vec<String>]| -> Vec<usize> {
        header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([h.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    };
    // `│ a   b │`: one space of padding each side, a blank separator.
    let total = |w: &[usize]| w.iter().map(|w| w + 3).sum::<usize>() + 1;
    let mut drops = DROP.iter();
    loop {
        let mut w = widths(&header, &rows);
        let whole = w.clone();
        // Cut the long columns, widest first, down to their narrowest.
        let mut over = total(&w).saturating_sub(width);
        for (name, min) in CUT {
            if over == 0 {
                break;
            }
            if let Some(i) = header.iter().position(|h| h == name) {
                let to = w[i].saturating_sub(over).max(min).max(name.len());
                if to < w[i] {
                    over -= w[i] - to;
                    w[i] = to;
                }
            }
        }
        if over == 0 || drops.len() == 0 {
            // Room left over (a column cut to its narrowest, then another
            // dropped): give it back to the cut columns, in order.
            let mut slack = width.saturating_sub(total(&w));
            for (name, _) in CUT {
                if let Some(i) = header.iter().position(|h| h == name) {
                    let add = (whole[i] - w[i]).min(slack);
                    w[i] += add;
                    slack -= add;
                }
            }
            for (i, h) in header.iter().enumerate() {
                let column: Vec<String> = rows.iter().map(|r| r[i].clone()).collect();
                let ids = h == "id" || h == "source";
                for (r, c) in rows.iter_mut().zip(cut_column(&column, w[i], ids)) {
                    r[i] = c;
                }
            }
            return (header, rows);
        }
        // Still too wide: drop the next column and try again with the
        // texts whole.
        if let Some(i) = drops.find_map(|d| header.iter().position(|h| h == d)) {
            drop_col(&mut header, &mut rows, i);
        }
    }
}

/// A column's texts cut to `max` characters. Ids are cut in the middle
/// (`snap-0a1…cdef0`), unless that makes two different ids look alike (RDS
/// snapshot names share their plan prefix and agent suffix: `sp-2-1…1da6f`);
/// then at the end, which keeps them apart when their heads differ. Other
/// texts are cut at the end.
fn cut_column(texts: &[String], max: usize, ids: bool) -> Vec<String> {
    let cut_all =
        |middle: bool| -> Vec<String> { texts.iter().map(|t| cut(t, max, middle)).collect() };
    if !ids {
        return cut_all(false);
    }
    let distinct = |v: &[String]| v.iter().collect::<std::collections::BTreeSet<_>>().len();
    let whole = distinct(texts);
    let middle = cut_all(true);
    if distinct(&middle) == whole {
        return middle;
    }
    let end = cut_all(false);
    if distinct(&end) > distinct(&middle) {
        end
    } else {
        middle
    }
}

/// `s` cut to `max` characters with `…`, in the middle (ids) or at the end.
pub fn cut(s: &str, max: usize, middle: bool) -> String {
    let n = s.chars().count();
    if n <= max || max == 0 {
        return s.to_string();
    }
    let keep = max - 1;
    if middle {
        let head = keep.div_ceil(2);
        let tail = keep - head;
        let h: String = s.chars().take(head).collect();
        let t: String = s.chars().skip(n - tail).collect();
        format!("{h}…{t}")
    } else {
        format!("{}…", s.chars().take(keep).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_cut_in_the_middle_and_rules_at_the_end() {
        assert_eq!(cut("snap-0123456789abcdef0", 11, true), "snap-…cdef0");
        assert_eq!(cut("weekly keep 2026-W10", 10, false), "weekly ke…");
        assert_eq!(cut("short", 10, true), "short");
    }

    fn sample() -> Vec<Vec<String>> {
        vec![vec![
            "2026-03-08 01:00".into(),
            "12".into(),
            "0a1b2c3d".into(),
            "snapshot-set".into(),
            "alpha".into(),
            "i-0123456789abcdef0".into(),
            "us-west-2 copy".into(),
            "snap-0123456789abcdef0,snap-0fedcba9876543210".into(),
            "16".into(),
            "completed".into(),
            "2026-03-30 00:00".into(),
            "weekly keep 2026-W10; age 2d < 7d".into(),
            String::new(),
            String::new(),
        ]]
    }

    const HEADER: [&str; 14] = [
        "created", "job", "agent", "kind", "tenant", "source", "region", "id", "GiB", "state",
        "expires", "kept by", "hold", "lock",
    ];

    #[test]
    fn a_100_column_table_fits_without_wrapping() {
        let (h, rows) = fit(&HEADER, sample(), Some(100));
        let mut t = crate::output::table(&h.iter().map(String::as_str).collect::<Vec<_>>());
        t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
        for r in rows {
            t.add_row(r);
        }
        let out = t.to_string();
        for line in out.lines() {
            assert!(line.chars().count() <= 100, "{out}");
        }
        // Empty columns go, the agent column first; created, source, id and
        // expires stay.
        assert!(!h.contains(&"hold".to_string()) && !h.contains(&"agent".to_string()));
        for c in ["created", "source", "id", "expires", "kept by"] {
            assert!(h.contains(&c.to_string()), "{c} in {h:?}");
        }
        assert!(out.contains("snap-0"), "{out}");
        assert!(out.contains('…'), "{out}");
        // What was cut uses the whole width: no room is left unused.
        assert_eq!(
            out.lines().map(|l| l.chars().count()).max(),
            Some(100),
            "{out}"
        );
    }

    #[test]
    fn ids_that_would_look_alike_cut_in_the_middle_are_cut_at_the_end() {
        let rds: Vec<String> = [
            "sp-2-1000-3-1795988012-9a019d1b35d1da6f",
            "sp-2-1000-4-1795988012-9a019d1b35d1da6f",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            cut_column(&rds, 12, true),
            vec!["sp-2-1000-3…", "sp-2-1000-4…"]
        );
        let snaps: Vec<String> = ["snap-0123456789abcdef0", "snap-0123456789abcdef1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            cut_column(&snaps, 12, true),
            vec!["snap-0…cdef0", "snap-0…cdef1"]
        );
        assert_eq!(
            cut_column(&["weekly keep 2026-W48".to_string()], 10, false),
            vec!["weekly ke…"]
        );
    }

    #[test]
    fn without_a_width_nothing_is_cut() {
        let (h, rows) = fit(&HEADER, sample(), None);
        assert_eq!(h.len(), 14);
        assert_eq!(rows, sample());
    }

    #[test]
    fn the_expiry_says_expired_or_the_time() {
        let now = DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(expiry_text(Verdict::Delete, Some(now), now), "expired");
        assert_eq!(
            expiry_text(Verdict::Keep, Some(now + chrono::Duration::days(20)), now),
            "2026-03-30 00:00"
        );
        assert_eq!(expiry_text(Verdict::Keep, None, now), "-");
    }
}
