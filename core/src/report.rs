//! The RPO report (`rolesnap report`): pure logic, no AWS.
//!
//! The command gathers, per plan, what discovery selects and the recovery
//! points the catalog finds by tag (source regions, copy regions, vaults);
//! this module decides, at one instant (`as_of`), how old each resource's
//! newest completed point is in every place the plan keeps points, whether
//! that is within the plan's RPO, and renders the result as CSV or as one
//! self-contained HTML page with an inline SVG timeline per resource.
//!
//! The plan's RPO is the longest gap between two consecutive slots of its
//! schedule over the next [`INTERVAL_HORIZON_DAYS`] days (from `as_of`), plus
//! `[schedule] rpo-grace-minutes`. A plan without a schedule has no RPO.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::catalog::PointState;
use crate::config::Schedule;

/// How far ahead the schedule's slots are read to find its longest gap.
pub const INTERVAL_HORIZON_DAYS: i64 = 14;

/// The longest gap between two consecutive slots of `s` after `from`, over
/// [`INTERVAL_HORIZON_DAYS`] days (and at least two slots, so that a monthly
/// schedule has an interval too). `None` when the schedule runs fewer than
/// twice.
pub fn schedule_interval(s: &Schedule, from: DateTime<Utc>) -> Option<Duration> {
    let end = from + Duration::days(INTERVAL_HORIZON_DAYS);
    let mut slots: Vec<DateTime<Utc>> = Vec::new();
    let mut after = from;
    // An every-minute schedule has 20 160 slots in 14 days; stop well past that.
    while slots.len() < 50_000 {
        let batch = crate::decide::schedule::next_runs(s, after, 512);
        let Some(last) = batch.last().copied() else {
            break;
        };
        slots.extend(batch);
        after = last;
        if after > end && slots.len() >= 2 {
            break;
        }
    }
    // Up to the first slot past the horizon (the gap across it counts).
    if let Some(i) = slots.iter().position(|t| *t > end) {
        slots.truncate((i + 1).max(2));
    }
    slots.windows(2).map(|w| w[1] - w[0]).max()
}

/// The plan's RPO: its schedule's interval plus the grace. `None` without a
/// schedule (the plan runs only on demand).
pub fn plan_rpo(s: Option<&Schedule>, from: DateTime<Utc>) -> Option<Duration> {
    let s = s?;
    Some(schedule_interval(s, from)? + Duration::minutes(i64::from(s.rpo_grace_minutes)))
}

/// Where a plan keeps points of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Source,
    Copy,
    Vault,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Copy => "copy",
            Role::Vault => "vault",
        }
    }
}

/// One place a resource's points should be: the source region, a copy
/// region, a vault's region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Place {
    pub role: Role,
    pub region: String,
    /// The vault's name, for [`Role::Vault`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault: Option<String>,
}

impl Place {
    /// `us-east-1`, `us-west-2 (copy)`, `vault:backup/us-east-1`.
    pub fn label(&self) -> String {
        match (&self.role, &self.vault) {
            (Role::Vault, Some(v)) => format!("vault:{v}/{}", self.region),
            (Role::Copy, _) => format!("{} (copy)", self.region),
            _ => self.region.clone(),
        }
    }
}

/// A recovery point of a resource, as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    #[serde(flatten)]
    pub place: Place,
    pub id: String,
    /// `job@agent`.
    pub job: String,
    pub created: DateTime<Utc>,
    pub state: PointState,
}

/// The compliance of one place, or of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The newest completed point is within the RPO, everywhere.
    Compliant,
    /// A place's newest completed point is older than the RPO, or a copy
    /// region or vault has none while the source has one.
    Breached,
    /// No completed point in the source region at all.
    NeverProtected,
    /// Points exist but the plan has no schedule, hence no RPO.
    NoRpo,
    /// Discovery sees it; no plan selects it.
    Unprotected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Compliant => "compliant",
            Status::Breached => "breached",
            Status::NeverProtected => "never-protected",
            Status::NoRpo => "no-rpo",
            Status::Unprotected => "unprotected",
        }
    }
}

/// The newest completed point of one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaceStatus {
    #[serde(flatten)]
    pub place: Place,
    pub status: Status,
    pub newest: Option<DateTime<Utc>>,
    pub newest_id: Option<String>,
    pub newest_job: Option<String>,
    pub age_seconds: Option<i64>,
    /// Completed points there (made at or before `as_of`).
    pub completed: usize,
}

/// A resource a plan selects, as discovery found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceKey {
    pub plan: String,
    pub tenant: String,
    pub account: String,
    pub region: String,
    /// `instance`, `db-instance` or `db-cluster`.
    pub kind: String,
    pub id: String,
    pub name: Option<String>,
}

/// One row of the report: a selected resource and its recovery points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceReport {
    #[serde(flatten)]
    pub key: ResourceKey,
    /// The worst of its places.
    pub status: Status,
    pub rpo_seconds: Option<i64>,
    /// The source region's newest completed point and its age.
    pub newest: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    pub places: Vec<PlaceStatus>,
    /// Why it is not compliant, one sentence per place.
    pub reasons: Vec<String>,
    /// The newest restore drill of the resource (from the ledgers), if any.
    pub drill: Option<DrillSeen>,
    /// Its points over the timeline's window, oldest first.
    pub points: Vec<Observed>,
}

/// A restore drill of a resource, as a ledger recorded it (`rolesnap drill`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillSeen {
    /// `JOB@AGENT`.
    pub job: String,
    pub at: DateTime<Utc>,
    pub healthy: bool,
    /// Seconds from the drill's start until the restore was healthy.
    pub rto_seconds: Option<i64>,
    pub reason: Option<String>,
}

impl DrillSeen {
    /// `healthy, RTO 42 s` / `FAILED: why`.
    pub fn describe(&self) -> String {
        if self.healthy {
            format!(
                "healthy{}",
                self.rto_seconds
                    .map(|s| format!(", RTO {s} s"))
                    .unwrap_or_default()
            )
        } else {
            format!("FAILED: {}", self.reason.as_deref().unwrap_or("?"))
        }
    }
}

/// Decides one resource at `as_of`: `places` are where the plan keeps its
/// points (the source region first), `points` what the catalog found (any
/// place; those made after `as_of` are ignored).
pub fn assess(
    key: ResourceKey,
    rpo: Option<Duration>,
    places: &[Place],
    mut points: Vec<Observed>,
    as_of: DateTime<Utc>,
) -> ResourceReport {
    points.retain(|p| p.created <= as_of);
    points.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    let source_has_point = points
        .iter()
        .any(|p| p.place.role == Role::Source && p.state == PointState::Completed);
    let mut reasons = Vec::new();
    let mut statuses = Vec::new();
    for place in places {
        let done: Vec<&Observed> = points
            .iter()
            .filter(|p| &p.place == place && p.state == PointState::Completed)
            .collect();
        let newest = done.last();
        let age = newest.map(|p| (as_of - p.created).num_seconds());
        let status = match (newest, rpo) {
            (None, _) if place.role == Role::Source || !source_has_point => Status::NeverProtected,
            (None, _) => Status::Breached,
            (Some(_), None) => Status::NoRpo,
            (Some(p), Some(r)) if as_of - p.created > r => Status::Breached,
            (Some(_), Some(_)) => Status::Compliant,
        };
        match (status, newest) {
            (Status::Breached, Some(p)) => reasons.push(format!(
                "{}: newest point {} is {} old, RPO {}",
                place.label(),
                p.id,
                human_duration(as_of - p.created),
                human_duration(rpo.unwrap_or_default())
            )),
            (Status::Breached, None) => {
                reasons.push(format!("{}: no completed point", place.label()))
            }
            (Status::NeverProtected, _) if place.role == Role::Source => {
                reasons.push(format!("{}: no completed point", place.label()))
            }
            (Status::NoRpo, _) if place.role == Role::Source => {
                reasons.push("the plan has no [schedule], hence no RPO".to_string())
            }
            _ => {}
        }
        statuses.push(PlaceStatus {
            place: place.clone(),
            status,
            newest: newest.map(|p| p.created),
            newest_id: newest.map(|p| p.id.clone()),
            newest_job: newest.map(|p| p.job.clone()),
            age_seconds: age,
            completed: done.len(),
        });
    }
    let source = statuses.iter().find(|s| s.place.role == Role::Source);
    let status = if !source_has_point {
        Status::NeverProtected
    } else if statuses.iter().any(|s| s.status == Status::Breached) {
        Status::Breached
    } else if rpo.is_none() {
        Status::NoRpo
    } else {
        Status::Compliant
    };
    ResourceReport {
        status,
        rpo_seconds: rpo.map(|r| r.num_seconds()),
        newest: source.and_then(|s| s.newest),
        age_seconds: source.and_then(|s| s.age_seconds),
        places: statuses,
        reasons,
        drill: None,
        points,
        key,
    }
}

/// A resource discovery sees in a tenant and no plan of the report selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unprotected {
    pub tenant: String,
    pub account: String,
    pub region: String,
    pub kind: String,
    pub id: String,
    /// Why each plan that looked left it (`plan: reason`).
    pub reasons: Vec<String>,
}

/// A plan's line of the report: its RPO and what its ledgers say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    pub plan: String,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub interval_seconds: Option<i64>,
    pub rpo_grace_minutes: Option<u32>,
    pub rpo_seconds: Option<i64>,
    /// Retention of the source regions in days (the timeline's window).
    pub retention_days: Option<u32>,
    /// The newest Snap Backup job in the ledgers read (`--from`).
    pub last_backup: Option<LedgerJob>,
    /// The newest job that failed or completed with errors.
    pub last_failure: Option<LedgerJob>,
}

/// A job of a ledger, named across agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerJob {
    /// `job@agent`.
    pub job: String,
    pub job_type: String,
    pub status: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// Counts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub resources: usize,
    pub compliant: usize,
    pub breached: usize,
    pub never_protected: usize,
    pub no_rpo: usize,
    pub unprotected: usize,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub as_of: DateTime<Utc>,
    pub generated: DateTime<Utc>,
    pub summary: Summary,
    pub plans: Vec<PlanSummary>,
    pub resources: Vec<ResourceReport>,
    pub unprotected: Vec<Unprotected>,
    /// Tenants, regions and listings that failed: the report is incomplete.
    pub errors: Vec<String>,
    pub notes: Vec<String>,
}

impl Report {
    /// Sorts the rows (worst first, then by plan, tenant, region, id) and counts them.
    pub fn new(
        as_of: DateTime<Utc>,
        generated: DateTime<Utc>,
        plans: Vec<PlanSummary>,
        mut resources: Vec<ResourceReport>,
        mut unprotected: Vec<Unprotected>,
        errors: Vec<String>,
    ) -> Report {
        resources.sort_by(|a, b| {
            (
                rank(a.status),
                &a.key.plan,
                &a.key.tenant,
                &a.key.region,
                &a.key.id,
            )
                .cmp(&(
                    rank(b.status),
                    &b.key.plan,
                    &b.key.tenant,
                    &b.key.region,
                    &b.key.id,
                ))
        });
        unprotected.sort_by(|a, b| {
            (&a.tenant, &a.region, &a.kind, &a.id).cmp(&(&b.tenant, &b.region, &b.kind, &b.id))
        });
        let mut summary = Summary {
            resources: resources.len(),
            unprotected: unprotected.len(),
            ..Summary::default()
        };
        for r in &resources {
            match r.status {
                Status::Compliant => summary.compliant += 1,
                Status::Breached => summary.breached += 1,
                Status::NeverProtected => summary.never_protected += 1,
                Status::NoRpo => summary.no_rpo += 1,
                Status::Unprotected => summary.unprotected += 1,
            }
        }
        Report {
            as_of,
            generated,
            summary,
            plans,
            resources,
            unprotected,
            errors,
            notes: vec![
                "`drill` is the newest restore drill of the resource in the ledgers read (this node's and --from)"
                    .to_string(),
            ],
        }
    }
}

/// Worst first.
fn rank(s: Status) -> u8 {
    match s {
        Status::Breached => 0,
        Status::NeverProtected => 1,
        Status::NoRpo => 2,
        Status::Unprotected => 3,
        Status::Compliant => 4,
    }
}

/// `3d 4h`, `2h 5m`, `45m`, `30s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{s}s")
    }
}

// ---------------------------------------------------------------- CSV

/// The report as CSV: one line per selected resource, then one per
/// unprotected resource (status `unprotected`, no plan).
pub fn render_csv(r: &Report) -> String {
    let mut out = String::from(
        "plan,tenant,account,region,kind,id,name,status,rpo_seconds,newest,age_seconds,places,reasons,drill\n",
    );
    for x in &r.resources {
        let places = x
            .places
            .iter()
            .map(|p| {
                format!(
                    "{}={}@{}",
                    p.place.label(),
                    p.status.as_str(),
                    p.newest.map(|t| t.to_rfc3339()).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let row = [
            x.key.plan.clone(),
            x.key.tenant.clone(),
            x.key.account.clone(),
            x.key.region.clone(),
            x.key.kind.clone(),
            x.key.id.clone(),
            x.key.name.clone().unwrap_or_default(),
            x.status.as_str().to_string(),
            opt(x.rpo_seconds),
            x.newest.map(|t| t.to_rfc3339()).unwrap_or_default(),
            opt(x.age_seconds),
            places,
            x.reasons.join("; "),
            x.drill
                .as_ref()
                .map(DrillSeen::describe)
                .unwrap_or_default(),
        ];
        csv_line(&mut out, &row);
    }
    for u in &r.unprotected {
        let row = [
            String::new(),
            u.tenant.clone(),
            u.account.clone(),
            u.region.clone(),
            u.kind.clone(),
            u.id.clone(),
            String::new(),
            Status::Unprotected.as_str().to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            u.reasons.join("; "),
            String::new(),
        ];
        csv_line(&mut out, &row);
    }
    out
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
/// A field starting with `=`, `+`, `-` or `@` gets a leading `'` so that a
/// spreadsheet does not run it as a formula.
fn csv_line(out: &mut String, fields: &[String]) {
    let cells: Vec<String> = fields
        .iter()
        .map(|f| {
            let f = if f.starts_with(['=', '+', '-', '@']) {
                format!("'{f}")
            } else {
                f.clone()
            };
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect();
    out.push_str(&cells.join(","));
    out.push('\n');
}

// ---------------------------------------------------------------- HTML

/// Escapes text for HTML/XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}\
th{background:#eee;cursor:pointer}.compliant{color:#176d2c}.breached{color:#b00020;font-weight:bold}\
.never-protected{color:#b00020}.no-rpo{color:#8a6d00}.unprotected{color:#8a6d00}\
.cards span{display:inline-block;border:1px solid #ccc;padding:6px 12px;margin:0 8px 8px 0}\
section.timeline{margin:12px 0}section.timeline h3{font-size:14px;margin:4px 0}";

/// Sorting by a clicked header: numbers (`data-v`) or text. No `<` or `&`
/// in it, so the page stays well-formed XML as well as HTML.
const SCRIPT: &str = "function sortBy(th){var t=th.closest('table'),i=th.cellIndex,\
d=th.dataset.dir==='a'?'d':'a';th.dataset.dir=d;var b=t.tBodies[0],\
rows=Array.prototype.slice.call(b.rows);rows.sort(function(x,y){\
var p=x.cells[i],q=y.cells[i],u=p.dataset.v,v=q.dataset.v,c;\
if(u!==undefined){c=Number(u)-Number(v);}else{c=p.textContent.localeCompare(q.textContent);}\
return d==='a'?c:-c;});rows.forEach(function(r){b.appendChild(r);});}";

/// The report as one self-contained HTML file: a summary, a sortable table,
/// the unprotected resources, and one inline SVG timeline per resource. No
/// external asset and no URL at all (inline SVG needs no namespace in
/// HTML); the markup is well-formed XML too.
pub fn render_html(r: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
<title>rolesnap RPO report {}</title>\n<style>{STYLE}</style>\n<script>//<![CDATA[\n{SCRIPT}\n//]]></script>\n</head>\n<body>\n",
        esc(&r.as_of.to_rfc3339())
    );
    let _ = writeln!(
        h,
        "<h1>RPO report</h1>\n<p>As of {} (generated {}).</p>",
        esc(&r.as_of.format("%Y-%m-%d %H:%M UTC").to_string()),
        esc(&r.generated.format("%Y-%m-%d %H:%M UTC").to_string())
    );
    let s = &r.summary;
    let _ = writeln!(
        h,
        "<div class=\"cards\"><span>{} resource(s)</span><span class=\"compliant\">{} compliant</span>\
<span class=\"breached\">{} breached</span><span class=\"never-protected\">{} never protected</span>\
<span class=\"no-rpo\">{} without RPO</span><span class=\"unprotected\">{} unprotected</span></div>",
        s.resources, s.compliant, s.breached, s.never_protected, s.no_rpo, s.unprotected
    );
    for e in &r.errors {
        let _ = writeln!(h, "<p class=\"breached\">Incomplete: {}</p>", esc(e));
    }
    for n in &r.notes {
        let _ = writeln!(h, "<p><em>{}</em></p>", esc(n));
    }
    plans_table(&mut h, r);
    resources_table(&mut h, r);
    unprotected_table(&mut h, r);
    h.push_str("<h2>Timelines</h2>\n");
    for (i, x) in r.resources.iter().enumerate() {
        let _ = writeln!(
            h,
            "<section class=\"timeline\" id=\"r{i}\"><h3>{} / {} / {} {} ({}, plan {})</h3>",
            esc(&x.key.tenant),
            esc(&x.key.region),
            esc(&x.key.kind),
            esc(&x.key.id),
            esc(x.status.as_str()),
            esc(&x.key.plan)
        );
        let window = r
            .plans
            .iter()
            .find(|p| p.plan == x.key.plan)
            .and_then(|p| p.retention_days);
        h.push_str(&timeline_svg(x, r.as_of, window));
        h.push_str("</section>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn plans_table(h: &mut String, r: &Report) {
    h.push_str("<h2>Plans</h2>\n<table><thead><tr><th>plan</th><th>schedule</th><th>RPO</th><th>last backup</th><th>last failure</th></tr></thead><tbody>\n");
    for p in &r.plans {
        let job = |j: &Option<LedgerJob>| {
            j.as_ref().map_or_else(
                || "-".to_string(),
                |j| {
                    format!(
                        "{} {} {} {}",
                        j.job,
                        j.job_type,
                        j.status,
                        j.start.format("%Y-%m-%d %H:%M")
                    )
                },
            )
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.plan),
            esc(&match (&p.schedule, &p.timezone) {
                (Some(s), Some(tz)) => format!("{s} ({tz})"),
                _ => "none (on demand)".to_string(),
            }),
            esc(&p
                .rpo_seconds
                .map(|s| human_duration(Duration::seconds(s)))
                .unwrap_or_else(|| "-".into())),
            esc(&job(&p.last_backup)),
            esc(&job(&p.last_failure)),
        );
    }
    h.push_str("</tbody></table>\n");
}

fn resources_table(h: &mut String, r: &Report) {
    h.push_str("<h2>Resources</h2>\n<p>Click a column header to sort.</p>\n<table id=\"resources\"><thead><tr>");
    for c in [
        "status", "plan", "tenant", "region", "kind", "id", "name", "newest", "age", "RPO",
        "places", "drill",
    ] {
        let _ = write!(h, "<th onclick=\"sortBy(this)\">{c}</th>");
    }
    h.push_str("</tr></thead><tbody>\n");
    for (i, x) in r.resources.iter().enumerate() {
        let places = x
            .places
            .iter()
            .map(|p| {
                format!(
                    "{}: {}{}",
                    p.place.label(),
                    p.status.as_str(),
                    p.age_seconds
                        .map(|a| format!(" ({})", human_duration(Duration::seconds(a))))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(
            h,
            "<tr><td class=\"{st}\" data-v=\"{rank}\" title=\"{why}\">{st}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
<td><a href=\"#r{i}\">{}</a></td><td>{}</td><td>{}</td><td data-v=\"{age}\">{}</td><td data-v=\"{rpo}\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&x.key.plan),
            esc(&x.key.tenant),
            esc(&x.key.region),
            esc(&x.key.kind),
            esc(&x.key.id),
            esc(x.key.name.as_deref().unwrap_or("")),
            esc(&x.newest.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into())),
            esc(&x.age_seconds.map(|a| human_duration(Duration::seconds(a))).unwrap_or_else(|| "-".into())),
            esc(&x.rpo_seconds.map(|a| human_duration(Duration::seconds(a))).unwrap_or_else(|| "-".into())),
            esc(&places),
            esc(&x.drill.as_ref().map(DrillSeen::describe).unwrap_or_else(|| "-".into())),
            st = x.status.as_str(),
            rank = rank(x.status),
            why = esc(&x.reasons.join("; ")),
            age = x.age_seconds.unwrap_or(i64::MAX),
            rpo = x.rpo_seconds.unwrap_or(i64::MAX),
        );
    }
    h.push_str("</tbody></table>\n");
}

fn unprotected_table(h: &mut String, r: &Report) {
    let _ = writeln!(
        h,
        "<h2>Unprotected ({})</h2>\n<p>Seen by discovery, selected by no plan of this report.</p>",
        r.unprotected.len()
    );
    h.push_str("<table id=\"unprotected\"><thead><tr>");
    for c in ["tenant", "account", "region", "kind", "id", "why"] {
        let _ = write!(h, "<th onclick=\"sortBy(this)\">{c}</th>");
    }
    h.push_str("</tr></thead><tbody>\n");
    for u in &r.unprotected {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&u.tenant),
            esc(&u.account),
            esc(&u.region),
            esc(&u.kind),
            esc(&u.id),
            esc(&u.reasons.join("; "))
        );
    }
    h.push_str("</tbody></table>\n");
}

/// One resource's recovery points on a time axis, one lane per place: the
/// window is the plan's retention days before `as_of` (else back to the
/// oldest point, at least 7 days); the RPO before `as_of` is shaded.
pub fn timeline_svg(
    x: &ResourceReport,
    as_of: DateTime<Utc>,
    retention_days: Option<u32>,
) -> String {
    const W: f64 = 760.0;
    const LEFT: f64 = 170.0;
    const LANE: f64 = 22.0;
    let oldest = x.points.first().map(|p| p.created);
    let start = match (retention_days, oldest) {
        (Some(d), _) => as_of - Duration::days(i64::from(d)),
        (None, Some(o)) => o.min(as_of - Duration::days(7)),
        (None, None) => as_of - Duration::days(7),
    };
    let span = ((as_of - start).num_seconds().max(1)) as f64;
    let xpos =
        |t: DateTime<Utc>| LEFT + (W - LEFT - 10.0) * ((t - start).num_seconds() as f64 / span);
    let lanes = x.places.len().max(1);
    let height = 24.0 + LANE * lanes as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" role=\"img\">\
<title>{} {}: recovery points from {} to {}</title>",
        esc(&x.key.kind),
        esc(&x.key.id),
        esc(&start.format("%Y-%m-%d").to_string()),
        esc(&as_of.format("%Y-%m-%d %H:%M").to_string())
    );
    if let Some(rpo) = x.rpo_seconds {
        let x0 = xpos(as_of - Duration::seconds(rpo)).max(LEFT);
        let _ = write!(
            s,
            "<rect x=\"{x0:.1}\" y=\"4\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#e8f5e9\"><title>within the RPO</title></rect>",
            (xpos(as_of) - x0).max(0.0),
            LANE * lanes as f64
        );
    }
    for (i, p) in x.places.iter().enumerate() {
        let y = 4.0 + LANE * i as f64 + LANE / 2.0;
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"11\" fill=\"{}\">{}</text>\
<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#bbb\"/>",
            y + 4.0,
            if p.status == Status::Compliant {
                "#222"
            } else {
                "#b00020"
            },
            esc(&p.place.label()),
            W - 10.0
        );
        for pt in x
            .points
            .iter()
            .filter(|pt| pt.place == p.place && pt.created >= start)
        {
            let color = match pt.state {
                PointState::Completed => "#2e7d32",
                PointState::Pending => "#f9a825",
                PointState::Failed => "#c62828",
                PointState::Unusable => "#757575",
            };
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{color}\"><title>{} {} job {} ({:?})</title></circle>",
                xpos(pt.created),
                esc(&pt.created.format("%Y-%m-%d %H:%M").to_string()),
                esc(&pt.id),
                esc(&pt.job),
                pt.state
            );
        }
    }
    let bottom = 4.0 + LANE * lanes as f64;
    let _ = writeln!(
        s,
        "<line x1=\"{:.1}\" y1=\"2\" x2=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"#1565c0\"/>\
<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"10\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text></svg>",
        xpos(as_of),
        xpos(as_of),
        bottom + 14.0,
        esc(&start.format("%Y-%m-%d").to_string()),
        W - 10.0,
        bottom + 14.0,
        esc(&as_of.format("%Y-%m-%d %H:%M").to_string()),
    );
    s
}

#[cfg(test)]
mod tests;
