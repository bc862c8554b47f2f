//! Alerts: one message per event to the `[notify]` destinations (SNS topic,
//! webhook, command), de-duplicated by a key per event remembered in the
//! state directory.
//!
//! Events ([`EventKind`]): a job Failed or Completed w/ one or more errors
//! (one event per job: a failure of the next night's job is a new event), a
//! scheduled slot that did not run (one event per gap since the last slot
//! that ran), an RPO breach (one per resource and breach episode, found by the
//! agent's periodic check, [`rpo`]) and a failed restore drill
//! (`rolesnap drill`, or a plan's `[drill]` run by the agent).
//!
//! A key is claimed in `STATE_DIR/alerts-sent.json` before anything is sent,
//! so an event is sent at most once per state directory, even when sending
//! fails. Each destination is tried [`ATTEMPTS`] times with a doubling
//! backoff; every attempt that fails is logged in cvd.log and counted
//! ([`counts`]), and nothing here ever fails the job or the agent.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{HttpUrl, Notify};
use crate::jobs::Report;
use crate::store::ledger::JobStatus;
use crate::{LogFile, Logs};

/// Tries per destination and event.
pub const ATTEMPTS: u32 = 3;
/// The wait after the first failed try; it doubles after each one.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// How long one webhook request or command may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);
/// De-duplication keys are forgotten after this long.
pub const KEEP_KEYS_DAYS: i64 = 90;
/// Problems named in one message (the rest are counted).
pub const MAX_PROBLEMS: usize = 20;
/// The de-duplication file in the state directory.
pub const SENT_FILE: &str = "alerts-sent.json";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A job ended Failed.
    JobFailed,
    /// A job ended Completed w/ one or more errors.
    JobCompletedWithErrors,
    /// A scheduled slot of a plan did not run (the agent was down or busy).
    MissedRun,
    /// A resource's newest recovery point is older than the plan's RPO.
    RpoBreach,
    /// A restore drill failed.
    DrillFailed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::JobFailed => "job-failed",
            EventKind::JobCompletedWithErrors => "job-completed-with-errors",
            EventKind::MissedRun => "missed-run",
            EventKind::RpoBreach => "rpo-breach",
            EventKind::DrillFailed => "drill-failed",
        }
    }
}

/// A tenant, region or resource that failed, from a job's problem items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub tenant: String,
    pub account: String,
    pub region: String,
    pub kind: String,
    pub resource: String,
    pub status: String,
    pub reason: String,
}

/// One alert: its kind, its de-duplication key, a one-line summary (the
/// `text` of the message) and the structured fields of its kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    pub key: String,
    pub plan: String,
    pub time: DateTime<Utc>,
    pub summary: String,
    /// The kind's fields (job, agent, problems, slots, resource …).
    pub detail: Value,
}

impl Event {
    /// The event of a job that ended Failed or Completed w/ one or more
    /// errors; `None` for any other job, and for a dry run. Its key is the
    /// job's identity (`job:<agent>:<job>`): each failed job is its own event.
    pub fn from_report(r: &Report) -> Option<Event> {
        let kind = match r.status {
            JobStatus::Failed => EventKind::JobFailed,
            JobStatus::CompletedWithErrors => EventKind::JobCompletedWithErrors,
            _ => return None,
        };
        if r.dry_run {
            return None;
        }
        let all: Vec<Problem> = r
            .problems()
            .map(|i| Problem {
                tenant: i.tenant.clone(),
                account: i.account.clone(),
                region: i.region.clone(),
                kind: i.kind.to_string(),
                resource: i.source_id.clone(),
                status: i.status.to_string(),
                reason: i.error.clone().unwrap_or_default(),
            })
            .collect();
        let total = all.len();
        let problems: Vec<Problem> = all.into_iter().take(MAX_PROBLEMS).collect();
        let mut summary = format!(
            "rolesnap: {} job {} of plan {} {}",
            r.job_type.as_str(),
            r.job,
            r.plan,
            r.status.as_str()
        );
        if let Some(p) = problems.first() {
            summary += &format!(
                ": {} {} in {}/{}: {}",
                p.kind, p.resource, p.tenant, p.region, p.reason
            );
            if total > 1 {
                summary += &format!(" (and {} more)", total - 1);
            }
        } else if r.lost_log_lines > 0 {
            summary += &format!(": {} log line(s) lost", r.lost_log_lines);
        }
        Some(Event {
            kind,
            key: format!("job:{}:{}", r.agent, r.job),
            plan: r.plan.clone(),
            time: DateTime::from_timestamp(r.end, 0).unwrap_or_else(Utc::now),
            summary,
            detail: json!({
                "job": r.job,
                "agent": r.agent,
                "job_type": r.job_type.as_str(),
                "status": r.status.as_str(),
                "start": r.start,
                "end": r.end,
                "lost_log_lines": r.lost_log_lines,
                "problems_total": total,
                "problems": problems,
            }),
        })
    }

    /// Slots of `plan` that did not run: `skipped` of them since `last_slot`
    /// (the last slot that ran), the latest at or before `latest`. The key is
    /// the gap's start, so an outage is told once however long it lasts and
    /// however often the agent looks.
    pub fn missed_run(
        plan: &str,
        last_slot: DateTime<Utc>,
        latest: Option<DateTime<Utc>>,
        skipped: usize,
        now: DateTime<Utc>,
        why: &str,
    ) -> Event {
        Event {
            kind: EventKind::MissedRun,
            key: format!("missed:{plan}:{}", last_slot.to_rfc3339()),
            plan: plan.to_string(),
            time: now,
            summary: format!(
                "rolesnap: plan {plan} missed {skipped} scheduled run(s) since {}: {why}",
                last_slot.to_rfc3339()
            ),
            detail: json!({
                "last_slot_run": last_slot,
                "latest_missed_slot": latest,
                "missed": skipped,
                "reason": why,
            }),
        }
    }

    /// A resource out of its RPO, as the report decided it (see
    /// [`crate::report::assess`]). The key names the resource and its newest
    /// source point (`never` without one): the same breach is told once; a
    /// new point that ages out again is a new breach. The agent's periodic
    /// check keeps one key per breach episode ([`rpo::Episodes`]).
    pub fn rpo_breach(r: &crate::report::ResourceReport, now: DateTime<Utc>) -> Event {
        let k = &r.key;
        let newest = r.newest.map_or("never".to_string(), |t| t.to_rfc3339());
        let rpo = r.rpo_seconds.unwrap_or_default();
        let first = r
            .reasons
            .first()
            .map(|x| format!(": {x}"))
            .unwrap_or_default();
        let more = if r.reasons.len() > 1 {
            format!(" (and {} more place(s))", r.reasons.len() - 1)
        } else {
            String::new()
        };
        let places: Vec<Value> = r
            .places
            .iter()
            .filter(|p| p.status == crate::report::Status::Breached)
            .map(|p| {
                json!({
                    "place": p.place.label(),
                    "role": p.place.role,
                    "region": p.place.region,
                    "newest": p.newest,
                    "newest_id": p.newest_id,
                    "age_seconds": p.age_seconds,
                })
            })
            .collect();
        Event {
            kind: EventKind::RpoBreach,
            key: format!("rpo:{}:{}:{}:{}:{newest}", k.plan, k.tenant, k.region, k.id),
            plan: k.plan.clone(),
            time: now,
            summary: format!(
                "rolesnap: {} {} in {}/{} (plan {}) is out of its RPO of {}{first}{more}",
                k.kind,
                k.id,
                k.tenant,
                k.region,
                k.plan,
                crate::report::human_duration(chrono::Duration::seconds(rpo)),
            ),
            detail: json!({
                "tenant": k.tenant,
                "account": k.account,
                "region": k.region,
                "kind": k.kind,
                "resource": k.id,
                "name": k.name,
                "newest_point": r.newest,
                "age_seconds": r.age_seconds,
                "rpo_seconds": rpo,
                "breached_places": places,
                "reasons": r.reasons,
            }),
        }
    }

    /// A failed restore drill (`rolesnap drill`). One event per drill job
    /// and resource.
    #[allow(clippy::too_many_arguments)]
    pub fn drill_failed(
        plan: &str,
        agent: &str,
        job: u64,
        tenant: &str,
        region: &str,
        resource: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Event {
        Event {
            kind: EventKind::DrillFailed,
            key: format!("drill:{agent}:{job}:{resource}"),
            plan: plan.to_string(),
            time: now,
            summary: format!(
                "rolesnap: restore drill {job} of {resource} in {tenant}/{region} (plan {plan}) failed: {reason}"
            ),
            detail: json!({
                "job": job, "agent": agent, "tenant": tenant, "region": region,
                "resource": resource, "reason": reason,
            }),
        }
    }

    /// The message: `text` (Slack-compatible), then the event's fields.
    pub fn body(&self) -> Value {
        let mut v = json!({
            "text": self.summary,
            "event": self.kind.as_str(),
            "key": self.key,
            "plan": self.plan,
            "time": self.time.to_rfc3339(),
            "host": hostname(),
        });
        if let (Value::Object(m), Value::Object(d)) = (&mut v, &self.detail) {
            for (k, x) in d {
                m.insert(k.clone(), x.clone());
            }
        }
        v
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- de-duplication

/// Keys of the events already sent: key → unix time first sent.
pub type SentKeys = BTreeMap<String, i64>;

/// Claims `key` in `sent` at `now`: `true` when it was new (send it), `false`
/// when it was sent before. Keys older than [`KEEP_KEYS_DAYS`] are dropped.
pub fn claim_in(sent: &mut SentKeys, key: &str, now: DateTime<Utc>) -> bool {
    let horizon = now.timestamp() - KEEP_KEYS_DAYS * 86_400;
    sent.retain(|_, t| *t >= horizon);
    if sent.contains_key(key) {
        return false;
    }
    sent.insert(key.to_string(), now.timestamp());
    true
}

/// [`claim_in`] on `STATE_DIR/alerts-sent.json`, under an exclusive lock
/// (`alerts-sent.lock`) so that an agent and an on-demand command do not
/// lose each other's keys. An unreadable file counts as empty (an event may
/// then be sent again, never lost).
///
/// # Errors
/// The lock or the file cannot be written.
pub fn claim(state_dir: &Path, key: &str, now: DateTime<Utc>) -> std::io::Result<bool> {
    std::fs::create_dir_all(state_dir)?;
    let lock = File::create(state_dir.join("alerts-sent.lock"))?;
    lock.lock()?;
    let path = state_dir.join(SENT_FILE);
    let mut sent: SentKeys = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let new = claim_in(&mut sent, key, now);
    if new {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&sent)?)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(new)
}

// ---------------------------------------------------------------- counters

/// Attempts per (destination, outcome) in this process: outcome `sent`,
/// `failed` (an event a destination never took, after every try) or
/// `deduplicated` (an event not sent again).
static COUNTS: Mutex<BTreeMap<(String, String), u64>> = Mutex::new(BTreeMap::new());

fn count(destination: &str, outcome: &str) {
    *COUNTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry((destination.to_string(), outcome.to_string()))
        .or_default() += 1;
}

/// The counters: (destination, outcome, n).
pub fn counts() -> Vec<(String, String, u64)> {
    COUNTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|((d, o), n)| (d.clone(), o.clone(), *n))
        .collect()
}

// ---------------------------------------------------------------- sending

/// Sends events to one plan's destinations.
#[derive(Clone)]
pub struct Notifier {
    pub notify: Notify,
    /// The admin configuration (SNS is published with the admin credentials).
    pub admin: Option<aws_config::SdkConfig>,
    pub state_dir: PathBuf,
    pub logs: Logs,
    /// Backoff after the first failed try (tests shorten it).
    pub backoff: Duration,
}

impl Notifier {
    pub fn new(
        notify: &Notify,
        admin: Option<aws_config::SdkConfig>,
        state_dir: &Path,
        logs: &Logs,
    ) -> Notifier {
        Notifier {
            notify: notify.clone(),
            admin,
            state_dir: state_dir.to_path_buf(),
            logs: logs.clone(),
            backoff: FIRST_BACKOFF,
        }
    }

    fn log(&self, job: Option<u64>, m: &str) {
        self.logs.write(LogFile::Cvd, job, "CvdAlert::Send", m);
    }

    /// Sends `event` once (see [`claim`]) to every destination. Returns the
    /// destinations that took it; failures are logged and counted, never
    /// returned.
    pub async fn send(&self, event: &Event) -> Vec<&'static str> {
        let job = event.detail.get("job").and_then(Value::as_u64);
        match claim(&self.state_dir, &event.key, Utc::now()) {
            Ok(false) => {
                count("all", "deduplicated");
                return Vec::new();
            }
            Ok(true) => {}
            Err(e) => self.log(
                job,
                &format!(
                    "Cannot record alert [{}] in {}: {e}; sending it anyway",
                    event.key,
                    self.state_dir.join(SENT_FILE).display()
                ),
            ),
        }
        let body = event.body();
        let text = body.to_string();
        let mut took = Vec::new();
        let mut dests: Vec<&'static str> = Vec::new();
        if self.notify.sns_topic_arn.is_some() {
            dests.push("sns");
        }
        if self.notify.webhook_url.is_some() {
            dests.push("webhook");
        }
        if self.notify.command.is_some() {
            dests.push("command");
        }
        for dest in dests {
            let mut wait = self.backoff;
            let mut ok = false;
            for attempt in 1..=ATTEMPTS {
                let r = match dest {
                    "sns" => self.send_sns(event, &text).await,
                    "webhook" => self.send_webhook(&text).await,
                    _ => self.send_command(&text).await,
                };
                match r {
                    Ok(id) => {
                        self.log(
                            job,
                            &format!(
                                "Alert [{}] {} sent to {dest}{id} (try {attempt})",
                                event.key,
                                event.kind.as_str()
                            ),
                        );
                        ok = true;
                        break;
                    }
                    Err(e) => {
                        let then = if attempt < ATTEMPTS {
                            format!("; trying again in {} ms", wait.as_millis())
                        } else {
                            "; giving up".to_string()
                        };
                        self.log(
                            job,
                            &format!(
                                "Alert [{}] to {dest} failed (try {attempt} of {ATTEMPTS}): {e}{then}",
                                event.key
                            ),
                        );
                        if attempt < ATTEMPTS {
                            tokio::time::sleep(wait).await;
                            wait *= 2;
                        }
                    }
                }
            }
            count(dest, if ok { "sent" } else { "failed" });
            if ok {
                took.push(dest);
            }
        }
        took
    }

    async fn send_sns(&self, event: &Event, text: &str) -> Result<String, String> {
        let arn = self.notify.sns_topic_arn.as_deref().unwrap_or_default();
        let Some(admin) = &self.admin else {
            return Err("no admin session".into());
        };
        let region = arn.split(':').nth(3).unwrap_or("us-east-1").to_string();
        let conf = admin
            .clone()
            .into_builder()
            .region(aws_config::Region::new(region))
            .build();
        let sns = aws_sdk_sns::Client::new(&conf);
        // SNS subjects: at most 100 printable ASCII characters, one line.
        let subject: String = event
            .summary
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
            .take(100)
            .collect();
        let out = sns
            .publish()
            .topic_arn(arn)
            .subject(subject.trim())
            .message(text)
            .send()
            .await
            .map_err(|e| crate::aws::credentials::chain(&e))?;
        Ok(out
            .message_id()
            .map(|m| format!(" (message {m})"))
            .unwrap_or_default())
    }

    async fn send_webhook(&self, text: &str) -> Result<String, String> {
        let url = self.notify.webhook_url.as_deref().unwrap_or_default();
        let u = HttpUrl::parse(url)?;
        let ca = self.notify.webhook_ca_file.as_deref();
        let status = tokio::time::timeout(SEND_TIMEOUT, post(&u, ca, text))
            .await
            .map_err(|_| format!("no answer within {} s", SEND_TIMEOUT.as_secs()))??;
        if (200..300).contains(&status) {
            Ok(format!(" (HTTP {status})"))
        } else {
            Err(format!("HTTP {status} from {}:{}", u.host, u.port))
        }
    }

    async fn send_command(&self, text: &str) -> Result<String, String> {
        use tokio::io::AsyncWriteExt;
        let argv = self.notify.command.clone().unwrap_or_default();
        let mut child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let run = async {
            // A program that does not read its stdin is not an error.
            let _ = stdin.write_all(text.as_bytes()).await;
            drop(stdin);
            child.wait_with_output().await
        };
        let out = tokio::time::timeout(SEND_TIMEOUT, run)
            .await
            .map_err(|_| {
                format!(
                    "{} did not end within {} s",
                    argv[0],
                    SEND_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("{}: {e}", argv[0]))?;
        if out.status.success() {
            Ok(String::new())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let err: String = err.trim().chars().take(300).collect();
            Err(format!("{} exited with {}: {err}", argv[0], out.status))
        }
    }
}

/// Sends the event of every report that ended Failed or Completed w/ one or
/// more errors to the plan's `[notify]` (nothing when it has none).
pub async fn job_alerts(
    loaded: &crate::Loaded,
    admin: &crate::AdminSession,
    state_dir: &Path,
    logs: &Logs,
    reports: &[Report],
) {
    let Some(notify) = loaded.notify() else {
        return;
    };
    let notifier = Notifier::new(notify, Some(admin.config.clone()), state_dir, logs);
    for r in reports {
        if let Some(e) = Event::from_report(r) {
            notifier.send(&e).await;
        }
    }
}

/// One HTTP/1.1 POST of a JSON body; the response's status code.
async fn post(u: &HttpUrl, ca_file: Option<&Path>, body: &str) -> Result<u16, String> {
    let host = u.host.trim_start_matches('[').trim_end_matches(']');
    let sock = tokio::net::TcpStream::connect((host, u.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", u.host, u.port))?;
    if u.tls {
        let tls = tls::connect(sock, host, ca_file).await?;
        exchange(tls, u, body).await
    } else {
        exchange(sock, u, body).await
    }
}

/// One HTTP/1.1 POST of `body` over `sock`; the answer's status code.
async fn exchange(
    mut sock: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    u: &HttpUrl,
    body: &str,
) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let default_port = if u.tls { 443 } else { 80 };
    let host_header = if u.port == default_port {
        u.host.clone()
    } else {
        format!("{}:{}", u.host, u.port)
    };
    let req = format!(
        "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: rolesnap/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        u.path,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    sock.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.contains(&b'\n') && buf.len() < 8192 {
        match sock.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err(format!(
            "not an HTTP answer: `{}`",
            line.chars().take(80).collect::<String>()
        )),
    }
}

pub mod rpo;
pub mod tls;

#[cfg(test)]
mod tests;
