//! Alerts (issue 17): a failed job sends exactly one message to each
//! `[notify]` destination (a webhook on a local HTTP server, an SNS topic in
//! the emulator's admin account); a new failed job is a new event; a missed
//! scheduled slot is sent once, however often the agent looks.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{s, wait_for, Emulator, PlanText};

/// A webhook receiver on 127.0.0.1: every POSTed body, as JSON.
pub(crate) struct Hook {
    port: u16,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    pub(crate) fn start() -> Hook {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let into = got.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let body = loop {
                    let Ok(n) = c.read(&mut chunk) else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|n| n.trim().parse().ok())
                            .unwrap_or(0);
                        if body.len() >= len {
                            break Some(body.to_string());
                        }
                    }
                };
                if let Some(b) = body {
                    into.lock()
                        .unwrap()
                        .push(serde_json::from_str(&b).unwrap_or(Value::String(b)));
                }
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        });
        Hook { port, got }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub(crate) fn messages(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

/// An SNS topic in the admin account (made through the emulator's control API).
pub(crate) fn topic(emu: &Emulator) -> String {
    let account = s(&emu.fixture["admin"]["account"]).to_string();
    let r = emu.control(
        "POST",
        "/_harness/sns",
        Some(json!({"account": account, "region": "us-east-1", "name": "backup-alerts"})),
    );
    s(&r["arn"]).to_string()
}

/// The messages published to `arn`, as JSON.
pub(crate) fn sns_messages(emu: &Emulator, arn: &str) -> Vec<Value> {
    emu.control("GET", "/_harness/sns", None)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["topic"] == arn)
        .map(|m| serde_json::from_str(s(&m["message"])).unwrap())
        .collect()
}

/// The accounts file of alpha with `[notify]` lines.
fn accounts_with_notify(emu: &Emulator, lines: &str) {
    let p = emu.write_accounts(&["alpha"], &[]);
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(&format!("\n[notify]\n{lines}\n"));
    std::fs::write(&p, text).unwrap();
}

#[test]
fn a_failed_backup_sends_one_webhook_post_and_one_sns_message() {
    let emu = Emulator::start();
    let hook = Hook::start();
    let arn = topic(&emu);
    accounts_with_notify(
        &emu,
        &format!(
            "sns-topic-arn = \"{arn}\"\nwebhook-url = \"{}\"",
            hook.url()
        ),
    );
    let p = emu.write_plan("nightly", PlanText::new().databases(false));
    emu.fault(json!({"action": "CreateSnapshots", "code": "InvalidParameterValue", "status": 400}));

    let run = emu.backup(&p, &[]);
    assert_ne!(run.code, 0, "{run}");
    let report = run.json();
    assert!(
        report["status"] == "Failed" || report["status"] == "Completed w/ one or more errors",
        "{report}"
    );
    let job = report["job"].as_u64().unwrap();

    // The backup command sent before it exited: nothing to wait for.
    let posts = hook.messages();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let m = &posts[0];
    assert_eq!(m["job"], job, "{m}");
    assert_eq!(m["plan"], "nightly");
    assert!(
        m["event"] == "job-failed" || m["event"] == "job-completed-with-errors",
        "{m}"
    );
    assert!(
        m["text"].as_str().unwrap().contains(&format!("job {job}")),
        "{m}"
    );
    let problem = &m["problems"][0];
    assert_eq!(problem["tenant"], "alpha", "{m}");
    assert_eq!(problem["region"], "us-east-1", "{m}");
    assert!(s(&problem["resource"]).starts_with("i-"), "{m}");
    assert!(
        s(&problem["reason"]).contains("InvalidParameterValue"),
        "{m}"
    );

    let published = sns_messages(&emu, &arn);
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["key"], m["key"]);
    let cvd = emu.log_file("cvd.log");
    assert!(cvd.contains("sent to sns"), "{cvd}");
    assert!(cvd.contains("sent to webhook"), "{cvd}");

    // The same failure again is a new job, so a new event: one more of each.
    let again = emu.backup(&p, &[]);
    assert_ne!(again.code, 0, "{again}");
    let posts = hook.messages();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_ne!(posts[0]["key"], posts[1]["key"]);
    assert_eq!(sns_messages(&emu, &arn).len(), 2);
}

#[test]
fn a_missed_slot_is_sent_once() {
    let emu = Emulator::start();
    let hook = Hook::start();
    accounts_with_notify(&emu, &format!("webhook-url = \"{}\"", hook.url()));
    let p = emu.write_plan(
        "nightly",
        PlanText::new().cron("0 3 * * *").databases(false),
    );
    // The plan last ran three days ago: the agent was down since.
    let last = (chrono::Utc::now() - chrono::Duration::days(3))
        .date_naive()
        .and_hms_opt(3, 0, 0)
        .unwrap()
        .and_utc();
    std::fs::create_dir_all(emu.state_dir()).unwrap();
    std::fs::write(
        emu.state_dir().join("agent-schedule.json"),
        json!({"nightly": last}).to_string(),
    )
    .unwrap();
    // With no catch-up the latest slot is not run now; it is reported missed.
    let args = [
        "agent",
        "--once",
        "--catch-up",
        "0",
        "--plans",
        p.to_str().unwrap(),
    ];
    for _ in 0..2 {
        let run = emu.run(&args);
        assert_eq!(run.code, 0, "{run}");
    }
    wait_for("the webhook post", 10, || !hook.messages().is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let posts = hook.messages();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["event"], "missed-run");
    assert_eq!(posts[0]["plan"], "nightly");
    assert!(posts[0]["missed"].as_u64().unwrap() >= 2, "{}", posts[0]);
    // Nothing ran: the missed slot is not a backup.
    let cvd = emu.log_file("cvd.log");
    assert!(!cvd.contains("Running plan [nightly]"), "{cvd}");
    assert_eq!(
        cvd.matches("scheduled run(s) missed since").count(),
        2,
        "{cvd}"
    );
}

/// A failed restore drill is one alert; `report` shows each resource's
/// newest drill (healthy with its RTO, or failed with why).
#[test]
fn a_failed_drill_is_one_alert_and_the_report_shows_the_newest_drill() {
    let emu = Emulator::start();
    let hook = Hook::start();
    accounts_with_notify(&emu, &format!("webhook-url = \"{}\"", hook.url()));
    let p = emu.write_plan(
        "nightly",
        PlanText::new().retention("days = 7").cron("0 1 * * *"),
    );
    emu.backup_completed(&p);
    let res = &emu.tenant("alpha")["resources"]["us-east-1"];
    let subnet = s(&res["subnets"][0]["id"]).to_string();
    let sg = s(&res["security_group_id"]).to_string();
    let src = s(&emu.nightly_instances("alpha", "us-east-1")[0]["id"]).to_string();
    let drill = |emu: &Emulator| {
        emu.run(&[
            "drill",
            "--plan",
            p.to_str().unwrap(),
            "--instance",
            &src,
            "--subnet",
            &subnet,
            "--security-groups",
            &sg,
            "-o",
            "json",
            "--poll-interval",
            "0.2",
        ])
    };
    let report_of = |emu: &Emulator| -> Value {
        let r = emu.run(&["report", "--plan", p.to_str().unwrap(), "-o", "json"]);
        let all = r.json();
        all["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == src.as_str())
            .unwrap_or_else(|| panic!("{r}"))
            .clone()
    };
    assert!(report_of(&emu)["drill"].is_null(), "no drill yet");
    let ok = drill(&emu);
    assert_eq!(ok.code, 0, "{ok}");
    let d = &report_of(&emu)["drill"];
    assert_eq!(d["healthy"], true, "{d}");
    assert!(d["rto_seconds"].as_i64().is_some(), "{d}");
    assert!(hook.messages().is_empty(), "a healthy drill sends nothing");

    // The health check is refused: the drill fails, removes what it made,
    // and says so once.
    emu.fault(json!({"action": "DescribeInstanceStatus", "code": "UnauthorizedOperation"}));
    let bad = drill(&emu);
    assert_eq!(bad.code, 3, "{bad}");
    let posts = hook.messages();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["event"], "drill-failed", "{posts:?}");
    assert!(s(&posts[0]["text"]).contains(&src), "{posts:?}");
    let d = &report_of(&emu)["drill"];
    assert_eq!(d["healthy"], false, "{d}");
    assert!(s(&d["reason"]).contains("UnauthorizedOperation"), "{d}");
}

/// An https receiver on 127.0.0.1 (Python's `ssl`, a certificate for
/// 127.0.0.1 issued by a test CA made with the openssl CLI). Returns the
/// URL, the CA file, the file the bodies go to (one JSON per line), and the
/// server process.
fn https_hook(
    emu: &Emulator,
) -> (
    String,
    std::path::PathBuf,
    std::path::PathBuf,
    std::process::Child,
) {
    let dir = emu.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let sh = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    sh(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=rolesnap test CA",
    ]);
    sh(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    sh(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
    ]);
    let server = r#"
import http.server, ssl, sys
d, out = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "ab") as f:
            f.write(body + b"\n")
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(d + "/leaf.pem", d + "/leaf.key")
s.socket = c.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let out = dir.join("posts.jsonl");
    let mut child = std::process::Command::new(
        std::env::var("ROLESNAP_PYTHON").unwrap_or_else(|_| "python3".into()),
    )
    .args(["-c", server, dir.to_str().unwrap(), out.to_str().unwrap()])
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port: u16 = line.trim().parse().expect("the server's port");
    (
        format!("https://127.0.0.1:{port}/hook"),
        dir.join("ca.pem"),
        out,
        child,
    )
}

#[test]
fn an_https_webhook_gets_the_alert_only_when_its_certificate_is_trusted() {
    let emu = Emulator::start();
    let (url, ca, posts, mut server) = https_hook(&emu);
    let bodies = || -> Vec<Value> {
        std::fs::read_to_string(&posts)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let p = emu.write_plan("nightly", PlanText::new().databases(false));
    emu.fault(json!({"action": "CreateSnapshots", "code": "InvalidParameterValue", "status": 400}));

    // The test CA is not among the system's roots: the handshake fails, the
    // job's outcome is unchanged, and the log says why.
    accounts_with_notify(&emu, &format!("webhook-url = \"{url}\""));
    let run = emu.backup(&p, &[]);
    assert_ne!(run.code, 0, "{run}");
    assert!(bodies().is_empty(), "{:?}", bodies());
    let cvd = emu.log_file("cvd.log");
    assert!(cvd.contains("TLS handshake with 127.0.0.1 failed"), "{cvd}");

    // With the CA file: exactly one POST, over TLS.
    accounts_with_notify(
        &emu,
        &format!(
            "webhook-url = \"{url}\"\nwebhook-ca-file = \"{}\"",
            ca.display()
        ),
    );
    let run = emu.backup(&p, &[]);
    assert_ne!(run.code, 0, "{run}");
    let job = run.json()["job"].as_u64().unwrap();
    let got = bodies();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["job"], job);
    assert_eq!(got[0]["problems"][0]["tenant"], "alpha");
    let cvd = emu.log_file("cvd.log");
    assert!(cvd.contains("sent to webhook (HTTP 200)"), "{cvd}");
    let _ = server.kill();
}
