//! The agent's Prometheus metrics and the small HTTP server of `--metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use rolesnap_core::alerts::rpo::{DrillGauge, RpoCounts, Scope};
use rolesnap_core::jobs;
use rolesnap_core::{LogFile, Logs};

/// Prometheus metrics of this agent.
#[derive(Default)]
pub(super) struct Metrics {
    pub(super) jobs: BTreeMap<(String, String, String), u64>,
    pub(super) protected: BTreeMap<String, u64>,
    pub(super) last_success: BTreeMap<(String, String), i64>,
    /// End of the last Snap Backup job that protected every resource of a
    /// tenant in a region: (plan, tenant, region) → unix time.
    pub(super) last_backup: BTreeMap<(String, String, String), i64>,
    pub(super) retries: BTreeMap<String, u64>,
    /// Plan files of `--plans` that do not load (the last load or reload).
    pub(super) config_errors: usize,
    /// The last RPO check's resources per status: (plan, tenant, region).
    pub(super) rpo: BTreeMap<Scope, RpoCounts>,
    /// The newest drill per (plan, tenant, region), as the last check read it.
    pub(super) drills: BTreeMap<Scope, DrillGauge>,
    /// Per plan: when its last RPO check ended, and how many resources it
    /// could not decide.
    pub(super) rpo_checked: BTreeMap<String, (i64, u64)>,
}

type Labels = Vec<(&'static str, String)>;

/// A labelled counter family filled from `values`.
fn counters<K>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (K, u64)>,
    labels: impl Fn(K) -> Labels,
) {
    let family = Family::<Labels, Counter>::default();
    for (k, n) in values {
        family.get_or_create(&labels(k)).inc_by(n);
    }
    registry.register(name, help, family);
}

impl Metrics {
    /// The OpenMetrics text exposition (prometheus-client's encoder).
    fn render(&self) -> String {
        let mut r = Registry::default();
        counters(
            &mut r,
            "rolesnap_jobs",
            "Jobs run by this agent, by type, plan and status.",
            self.jobs.iter().map(|(k, n)| (k, *n)),
            |(t, p, st)| {
                vec![
                    ("type", t.clone()),
                    ("plan", p.clone()),
                    ("status", st.clone()),
                ]
            },
        );
        counters(
            &mut r,
            "rolesnap_resources_protected",
            "Resources given a recovery point, by plan.",
            self.protected.iter().map(|(k, n)| (k, *n)),
            |p| vec![("plan", p.clone())],
        );
        let last = Family::<Labels, Gauge>::default();
        for ((p, t), ts) in &self.last_success {
            last.get_or_create(&vec![("plan", p.clone()), ("tenant", t.clone())])
                .set(*ts);
        }
        r.register(
            "rolesnap_last_success_timestamp_seconds",
            "End of the last backup that protected every resource of a tenant.",
            last,
        );
        let by_region = Family::<Labels, Gauge>::default();
        for ((p, t, region), ts) in &self.last_backup {
            by_region
                .get_or_create(&vec![
                    ("plan", p.clone()),
                    ("tenant", t.clone()),
                    ("region", region.clone()),
                ])
                .set(*ts);
        }
        r.register(
            "rolesnap_last_backup_success_timestamp_seconds",
            "End of the last Snap Backup job that protected every resource of a tenant in a region.",
            by_region,
        );
        let alerts = rolesnap_core::alerts::counts();
        counters(
            &mut r,
            "rolesnap_alerts_sent",
            "Alerts a destination took, by destination (sns, webhook, command).",
            alerts
                .iter()
                .filter(|(_, o, _)| o == "sent")
                .map(|(d, _, n)| (d, *n)),
            |d| vec![("destination", d.clone())],
        );
        counters(
            &mut r,
            "rolesnap_alerts_failed",
            "Alerts a destination did not take after every try (see cvd.log), by destination.",
            alerts
                .iter()
                .filter(|(_, o, _)| o == "failed")
                .map(|(d, _, n)| (d, *n)),
            |d| vec![("destination", d.clone())],
        );
        counters(
            &mut r,
            "rolesnap_alerts_deduplicated",
            "Alerts not sent again: their event was already sent.",
            std::iter::once((
                (),
                alerts
                    .iter()
                    .filter(|(_, o, _)| o == "deduplicated")
                    .map(|(_, _, n)| n)
                    .sum::<u64>(),
            )),
            |()| Vec::new(),
        );
        counters(
            &mut r,
            "rolesnap_failed_items",
            "Resources, tenants or regions that ended a job with an error, by plan.",
            self.retries.iter().map(|(k, n)| (k, *n)),
            |p| vec![("plan", p.clone())],
        );
        let api = rolesnap_core::aws::metrics::api_counts();
        counters(
            &mut r,
            "rolesnap_api_calls",
            "AWS API call attempts (retries included), by service and operation.",
            api.iter().map(|(s, o, n, _)| ((s, o), *n)),
            |(s, o)| vec![("service", s.clone()), ("operation", o.clone())],
        );
        counters(
            &mut r,
            "rolesnap_api_throttled",
            "AWS API attempts answered with throttling, by service and operation.",
            api.iter().map(|(s, o, _, t)| ((s, o), *t)),
            |(s, o)| vec![("service", s.clone()), ("operation", o.clone())],
        );
        let errors = Gauge::<i64>::default();
        errors.set(i64::try_from(self.config_errors).unwrap_or(i64::MAX));
        r.register(
            "rolesnap_plan_config_errors",
            "Plan files that do not load (see cvd.log); the agent runs the others.",
            errors,
        );
        self.render_rpo(&mut r);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &r);
        out
    }

    /// One plan's RPO check: its gauges are replaced by `counts` and
    /// `drills`, except those of (tenant, region) for which `keep` holds
    /// (they could not be listed: the last check's values stay).
    pub(super) fn set_rpo(
        &mut self,
        plan: &str,
        counts: BTreeMap<Scope, RpoCounts>,
        drills: BTreeMap<Scope, DrillGauge>,
        keep: &dyn Fn(&str, &str) -> bool,
        undecided: usize,
        at: i64,
    ) {
        let stale = |(p, t, r): &Scope| p == plan && !keep(t, r);
        self.rpo.retain(|k, _| !stale(k));
        self.drills.retain(|k, _| !stale(k));
        self.rpo
            .extend(counts.into_iter().filter(|(k, _)| !keep(&k.1, &k.2)));
        self.drills
            .extend(drills.into_iter().filter(|(k, _)| !keep(&k.1, &k.2)));
        self.rpo_checked
            .insert(plan.to_string(), (at, undecided as u64));
    }

    /// The RPO and drill gauges (see docs/DESIGN.md "Metrics"): per plan,
    /// tenant and region, never per resource (`rolesnap report` has those).
    fn render_rpo(&self, r: &mut Registry) {
        let scope = |(p, t, region): &Scope| -> Labels {
            vec![
                ("plan", p.clone()),
                ("tenant", t.clone()),
                ("region", region.clone()),
            ]
        };
        let breached = Family::<Labels, Gauge>::default();
        let by_status = Family::<Labels, Gauge>::default();
        for (k, c) in &self.rpo {
            breached.get_or_create(&scope(k)).set(c.breached as i64);
            for (status, n) in [
                ("compliant", c.compliant),
                ("breached", c.breached),
                ("never-protected", c.never_protected),
                ("no-rpo", c.no_rpo),
            ] {
                let mut l = scope(k);
                l.push(("status", status.to_string()));
                by_status.get_or_create(&l).set(n as i64);
            }
        }
        r.register(
            "rolesnap_rpo_breached_resources",
            "Resources out of their RPO at the agent's last RPO check, by plan, tenant and region.",
            breached,
        );
        r.register(
            "rolesnap_rpo_resources",
            "Resources at the agent's last RPO check, by plan, tenant, region and status.",
            by_status,
        );
        let checked = Family::<Labels, Gauge>::default();
        let undecided = Family::<Labels, Gauge>::default();
        for (p, (at, n)) in &self.rpo_checked {
            checked.get_or_create(&vec![("plan", p.clone())]).set(*at);
            undecided
                .get_or_create(&vec![("plan", p.clone())])
                .set(*n as i64);
        }
        r.register(
            "rolesnap_rpo_check_timestamp_seconds",
            "End of the agent's last RPO check of a plan.",
            checked,
        );
        r.register(
            "rolesnap_rpo_undecided_resources",
            "Resources the last RPO check of a plan could not decide (a place could not be listed; see cvd.log).",
            undecided,
        );
        let at = Family::<Labels, Gauge>::default();
        let healthy = Family::<Labels, Gauge>::default();
        let rto = Family::<Labels, Gauge>::default();
        for (k, d) in &self.drills {
            at.get_or_create(&scope(k)).set(d.at.timestamp());
            healthy.get_or_create(&scope(k)).set(i64::from(d.healthy));
            if let Some(s) = d.rto_seconds {
                rto.get_or_create(&scope(k)).set(s);
            }
        }
        r.register(
            "rolesnap_drill_last_timestamp_seconds",
            "Start of the newest restore drill of a resource of a plan, tenant and region (from the ledger).",
            at,
        );
        r.register(
            "rolesnap_drill_last_healthy",
            "1 when that newest drill's restore was healthy, 0 when it failed.",
            healthy,
        );
        r.register(
            "rolesnap_drill_last_rto_seconds",
            "Seconds from that newest drill's start until its restore was healthy.",
            rto,
        );
    }

    /// Counts one finished job.
    pub(super) fn record(&mut self, report: &jobs::Report) {
        *self
            .jobs
            .entry((
                report.job_type.as_str().to_string(),
                report.plan.clone(),
                report.status.to_string(),
            ))
            .or_default() += 1;
        if report.job_type == rolesnap_core::store::ledger::JobType::SnapBackup {
            let done = report.completed() as u64;
            *self.protected.entry(report.plan.clone()).or_default() += done;
            let mut tenants: BTreeMap<&str, bool> = BTreeMap::new();
            let mut regions: BTreeMap<(&str, &str), bool> = BTreeMap::new();
            for s in &report.summary {
                *tenants.entry(&s.tenant).or_insert(true) &= jobs::item_ok(s.status);
                *regions.entry((&s.tenant, &s.region)).or_insert(true) &= jobs::item_ok(s.status);
            }
            for ((t, region), ok) in regions {
                if ok {
                    self.last_backup.insert(
                        (report.plan.clone(), t.to_string(), region.to_string()),
                        report.end,
                    );
                }
            }
            for (t, ok) in tenants {
                if ok {
                    self.last_success
                        .insert((report.plan.clone(), t.to_string()), report.end);
                }
            }
        }
        let failed = report.problems().count() as u64;
        if failed > 0 {
            *self.retries.entry(report.plan.clone()).or_default() += failed;
        }
    }
}

/// Content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The answer to one HTTP request: `GET /metrics`, and `GET /healthz` (200
/// `ok` while the agent's runtime answers; for liveness and readiness probes);
/// 404 for any other path, 405 for another method on those two.
fn metrics_response(request_line: &str, metrics: &Mutex<Metrics>) -> String {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let (status, extra, content_type, body) = if path != "/metrics" && path != "/healthz" {
        (
            "404 Not Found",
            "",
            "text/plain",
            "not found; metrics are at /metrics\n".to_string(),
        )
    } else if method != "GET" {
        (
            "405 Method Not Allowed",
            "Allow: GET\r\n",
            "text/plain",
            "only GET\n".to_string(),
        )
    } else if path == "/healthz" {
        ("200 OK", "", "text/plain", "ok\n".to_string())
    } else {
        let body = metrics.lock().unwrap_or_else(|p| p.into_inner()).render();
        ("200 OK", "", OPENMETRICS, body)
    };
    format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Serves `GET /metrics` and `GET /healthz` on `addr` until the agent exits; a
/// failure to listen is logged, not fatal.
pub(super) async fn serve_metrics(
    addr: std::net::SocketAddr,
    metrics: Arc<Mutex<Metrics>>,
    logs: Logs,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            logs.write(
                LogFile::Cvd,
                None,
                "CvdAgent::Metrics",
                &format!("Cannot listen on {addr}: {e}"),
            );
            return;
        }
    };
    logs.write(
        LogFile::Cvd,
        None,
        "CvdAgent::Metrics",
        &format!("Serving Prometheus metrics on http://{addr}/metrics"),
    );
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // The request line, within 4 KiB and 10 s.
            let mut buf = Vec::with_capacity(1024);
            let read = tokio::time::timeout(Duration::from_secs(10), async {
                let mut chunk = [0u8; 1024];
                while !buf.contains(&b'\n') && buf.len() < 4096 {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.lines().next().unwrap_or_default();
            let resp = metrics_response(line, &metrics);
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolesnap_core::jobs::{Items, Report, Summary};
    use rolesnap_core::store::ledger::{ItemStatus, JobStatus, JobType};

    fn summary(tenant: &str, region: &str, status: ItemStatus) -> Summary {
        Summary {
            tenant: tenant.into(),
            region: region.into(),
            status,
            count: 1,
            size_gib: 0,
        }
    }

    #[test]
    fn healthz_answers_ok_and_only_to_get() {
        let m = Mutex::new(Metrics::default());
        let ok = metrics_response("GET /healthz HTTP/1.1", &m);
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nok\n"), "{ok}");
        let post = metrics_response("POST /healthz HTTP/1.1", &m);
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        let other = metrics_response("GET /health HTTP/1.1", &m);
        assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
    }

    #[test]
    fn rpo_and_drill_gauges_are_per_scope_and_kept_where_a_check_could_not_list() {
        use chrono::TimeZone;
        let scope = |t: &str, r: &str| ("nightly".to_string(), t.to_string(), r.to_string());
        let counts = |breached| RpoCounts {
            compliant: 2,
            breached,
            never_protected: 0,
            no_rpo: 0,
        };
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 3, 4, 0, 0).unwrap();
        let mut m = Metrics::default();
        m.set_rpo(
            "nightly",
            BTreeMap::from([
                (scope("alpha", "us-east-1"), counts(3)),
                (scope("beta", "us-east-1"), counts(1)),
            ]),
            BTreeMap::from([(
                scope("alpha", "us-east-1"),
                DrillGauge {
                    at,
                    healthy: true,
                    rto_seconds: Some(42),
                },
            )]),
            &|_, _| false,
            0,
            1_700_000_000,
        );
        // The next check cannot list beta: its gauges stay; alpha's are replaced.
        m.set_rpo(
            "nightly",
            BTreeMap::from([(scope("alpha", "us-east-1"), counts(0))]),
            BTreeMap::new(),
            &|t, _| t == "beta",
            4,
            1_700_000_900,
        );
        let text = m.render();
        let l = "{plan=\"nightly\",tenant=\"alpha\",region=\"us-east-1\"}";
        let b = "{plan=\"nightly\",tenant=\"beta\",region=\"us-east-1\"}";
        assert!(
            text.contains(&format!("rolesnap_rpo_breached_resources{l} 0")),
            "{text}"
        );
        assert!(
            text.contains(&format!("rolesnap_rpo_breached_resources{b} 1")),
            "{text}"
        );
        assert!(
            text.contains("rolesnap_rpo_resources{plan=\"nightly\",tenant=\"alpha\",region=\"us-east-1\",status=\"compliant\"} 2"),
            "{text}"
        );
        assert!(
            !text.contains("rolesnap_drill_last_rto_seconds{"),
            "alpha's drill is gone: {text}"
        );
        assert!(
            text.contains("rolesnap_rpo_undecided_resources{plan=\"nightly\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("rolesnap_rpo_check_timestamp_seconds{plan=\"nightly\"} 1700000900"),
            "{text}"
        );
        // A drill seen: result and RTO.
        m.set_rpo(
            "nightly",
            BTreeMap::new(),
            BTreeMap::from([(
                scope("alpha", "us-east-1"),
                DrillGauge {
                    at,
                    healthy: false,
                    rto_seconds: None,
                },
            )]),
            &|_, _| false,
            0,
            1_700_001_800,
        );
        let text = m.render();
        assert!(
            text.contains(&format!("rolesnap_drill_last_healthy{l} 0")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "rolesnap_drill_last_timestamp_seconds{l} {}",
                at.timestamp()
            )),
            "{text}"
        );
        assert!(
            !text.contains(&format!("rolesnap_rpo_breached_resources{b}")),
            "{text}"
        );
    }

    #[test]
    fn last_backup_success_is_per_plan_tenant_and_region() {
        let mut m = Metrics::default();
        m.record(&Report {
            job: 1000,
            agent: "0f3c9a1e2b4d6f80".into(),
            job_type: JobType::SnapBackup,
            plan: "nightly".into(),
            status: JobStatus::CompletedWithErrors,
            dry_run: false,
            start: 1_700_000_000,
            end: 1_700_000_100,
            size_gib: 0,
            summary: vec![
                summary("alpha", "us-east-1", ItemStatus::Completed),
                summary("alpha", "us-west-2", ItemStatus::Failed),
            ],
            lost_log_lines: 0,
            items: Items::Held(Vec::new()),
        });
        let text = m.render();
        assert!(
            text.contains(
                "rolesnap_last_backup_success_timestamp_seconds{plan=\"nightly\",tenant=\"alpha\",region=\"us-east-1\"} 1700000100"
            ),
            "{text}"
        );
        assert!(!text.contains("region=\"us-west-2\"} 1700000100"), "{text}");
        // Sent and failed alerts appear by destination once there is one.
        assert!(
            text.contains("rolesnap_alerts_deduplicated_total 0"),
            "{text}"
        );
    }
}
