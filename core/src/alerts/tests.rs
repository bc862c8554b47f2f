use chrono::TimeZone;

use super::*;
use crate::jobs::{Items, Report};
use crate::store::ledger::{Item, ItemKind, JobType};

fn t(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 3, h, 0, 0).unwrap()
}

fn report(status: JobStatus, problems: usize) -> Report {
    let items = (0..problems)
        .map(|n| {
            Item::failed(
                "alpha",
                "222222222222",
                "us-east-1",
                ItemKind::Instance,
                &format!("i-{n:04}"),
                format!("CreateSnapshots: InternalError {n}"),
            )
        })
        .collect();
    Report {
        job: 1004,
        agent: "0f3c9a1e2b4d6f80".into(),
        job_type: JobType::SnapBackup,
        plan: "nightly".into(),
        status,
        dry_run: false,
        start: 1_700_000_000,
        end: 1_700_000_060,
        size_gib: 0,
        summary: Vec::new(),
        lost_log_lines: 0,
        items: Items::Held(items),
    }
}

#[test]
fn a_failed_job_is_one_event_named_by_its_identity() {
    let e = Event::from_report(&report(JobStatus::Failed, 2)).unwrap();
    assert_eq!(e.kind, EventKind::JobFailed);
    assert_eq!(e.key, "job:0f3c9a1e2b4d6f80:1004");
    assert!(e
        .summary
        .contains("Snap Backup job 1004 of plan nightly Failed"));
    assert!(e
        .summary
        .contains("instance i-0000 in alpha/us-east-1: CreateSnapshots: InternalError 0"));
    assert!(e.summary.contains("(and 1 more)"), "{}", e.summary);
    let b = e.body();
    assert_eq!(b["text"], e.summary);
    assert_eq!(b["event"], "job-failed");
    assert_eq!(b["job"], 1004);
    assert_eq!(b["problems_total"], 2);
    assert_eq!(b["problems"][1]["resource"], "i-0001");
    assert_eq!(b["problems"][1]["tenant"], "alpha");
    assert_eq!(b["problems"][1]["region"], "us-east-1");
}

#[test]
fn completed_with_errors_is_an_event_completed_is_not() {
    let e = Event::from_report(&report(JobStatus::CompletedWithErrors, 1)).unwrap();
    assert_eq!(e.kind, EventKind::JobCompletedWithErrors);
    assert!(Event::from_report(&report(JobStatus::Completed, 0)).is_none());
    let mut dry = report(JobStatus::Failed, 1);
    dry.dry_run = true;
    assert!(Event::from_report(&dry).is_none());
}

#[test]
fn problems_in_a_message_are_capped() {
    let e = Event::from_report(&report(JobStatus::Failed, MAX_PROBLEMS + 5)).unwrap();
    let b = e.body();
    assert_eq!(b["problems"].as_array().unwrap().len(), MAX_PROBLEMS);
    assert_eq!(b["problems_total"], MAX_PROBLEMS + 5);
}

#[test]
fn a_missed_gap_has_one_key_however_often_it_is_seen() {
    let a = Event::missed_run("nightly", t(1), Some(t(5)), 4, t(5), "down");
    let b = Event::missed_run("nightly", t(1), Some(t(9)), 8, t(9), "down");
    assert_eq!(a.key, b.key);
    let c = Event::missed_run("nightly", t(10), Some(t(12)), 1, t(12), "down");
    assert_ne!(a.key, c.key);
    let other = Event::missed_run("weekly", t(1), Some(t(5)), 4, t(5), "down");
    assert_ne!(a.key, other.key);
}

#[test]
fn claim_sends_once_and_forgets_old_keys() {
    let mut sent = SentKeys::new();
    assert!(claim_in(&mut sent, "k", t(1)));
    assert!(!claim_in(&mut sent, "k", t(2)));
    assert!(claim_in(&mut sent, "other", t(2)));
    let later = t(1) + chrono::Duration::days(KEEP_KEYS_DAYS + 1);
    assert!(claim_in(&mut sent, "k", later));
}

#[test]
fn claim_is_kept_in_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    assert!(claim(dir.path(), "job:a:1", t(1)).unwrap());
    assert!(!claim(dir.path(), "job:a:1", t(2)).unwrap());
    assert!(claim(dir.path(), "job:a:2", t(2)).unwrap());
    let text = std::fs::read_to_string(dir.path().join(SENT_FILE)).unwrap();
    let v: SentKeys = serde_json::from_str(&text).unwrap();
    assert_eq!(v.len(), 2);
    // A damaged file counts as empty: the event may go again, never lost.
    std::fs::write(dir.path().join(SENT_FILE), "{not json").unwrap();
    assert!(claim(dir.path(), "job:a:1", t(3)).unwrap());
}

/// A one-shot HTTP server: answers `status` to each request and returns
/// the bodies it got.
fn serve(status: u16, n: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..n {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let k = s.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..k]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    if body.len() >= len {
                        got.push(body.to_string());
                        break;
                    }
                }
            }
            write!(s, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").unwrap();
        }
        got
    });
    (port, h)
}

fn notifier(dir: &Path, notify: Notify) -> Notifier {
    let logs = Logs::open(&dir.join("logs"), 1 << 20, false).unwrap();
    let mut n = Notifier::new(&notify, None, &dir.join("state"), &logs);
    n.backoff = Duration::from_millis(10);
    n
}

#[tokio::test]
async fn a_webhook_gets_one_post_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let (port, server) = serve(200, 1);
    let n = notifier(
        dir.path(),
        Notify {
            webhook_url: Some(format!("http://127.0.0.1:{port}/hook")),
            ..Notify::default()
        },
    );
    let e = Event::missed_run("nightly", t(1), Some(t(5)), 4, t(5), "down");
    assert_eq!(n.send(&e).await, vec!["webhook"]);
    // The same event again: nothing is sent.
    assert!(n.send(&e).await.is_empty());
    let got = server.join().unwrap();
    assert_eq!(got.len(), 1);
    let v: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(v["event"], "missed-run");
    assert!(v["text"]
        .as_str()
        .unwrap()
        .contains("missed 4 scheduled run(s)"));
}

#[tokio::test]
async fn a_failing_webhook_is_tried_again_then_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (port, server) = serve(500, ATTEMPTS as usize);
    let n = notifier(
        dir.path(),
        Notify {
            webhook_url: Some(format!("http://127.0.0.1:{port}/")),
            ..Notify::default()
        },
    );
    let e = Event::missed_run("p", t(1), None, 1, t(5), "down");
    assert!(n.send(&e).await.is_empty());
    assert_eq!(server.join().unwrap().len(), ATTEMPTS as usize);
    let log = std::fs::read_to_string(dir.path().join("logs/cvd.log")).unwrap();
    assert!(log.contains("(try 1 of 3): HTTP 500"), "{log}");
    assert!(log.contains("giving up"), "{log}");
}

#[tokio::test]
async fn a_command_gets_the_event_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got.json");
    let n = notifier(
        dir.path(),
        Notify {
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                format!("cat > {}", out.display()),
            ]),
            ..Notify::default()
        },
    );
    let e = Event::from_report(&report(JobStatus::Failed, 1)).unwrap();
    assert_eq!(n.send(&e).await, vec!["command"]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["key"], "job:0f3c9a1e2b4d6f80:1004");
    // A command that fails is tried again, then given up.
    let bad = notifier(
        dir.path(),
        Notify {
            command: Some(vec!["sh".into(), "-c".into(), "exit 3".into()]),
            ..Notify::default()
        },
    );
    let e2 = Event::missed_run("p", t(2), None, 1, t(5), "x");
    assert!(bad.send(&e2).await.is_empty());
}
