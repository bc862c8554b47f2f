//! The scheduler daemon (`rolesnap agent`), `schedule`, and `list`.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{term, wait_for, ChildGuard, Emulator, PlanText};

/// Plan `frequent` (id 5) on `cron` of the nightly instances of `tenants`
/// in us-east-1, kept 7 days.
fn plan(cron: &str, tenants: &[&str]) -> PlanText {
    PlanText::new()
        .name("frequent", 5)
        .cron(cron)
        .retention("days = 7")
        .group("all", tenants)
}

fn jobs(emu: &Emulator) -> Vec<Value> {
    emu.run(&["jobs", "-o", "json"])
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_exit(child: &mut Child, secs: u64) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "agent did not exit within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_agent_runs_a_due_plan_and_a_second_agent_refuses_to_start() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    // Two throttled CreateSnapshots answers, to be seen in the metrics.
    emu.fault(json!({"action": "CreateSnapshots", "code": "RequestLimitExceeded", "status": 503, "count": 2}));
    // Every 10 seconds (a 6-field cron with seconds), so the test needs no full minute.
    let p = emu.write_plan("frequent", plan("*/10 * * * * *", &["alpha"]));
    let port = free_port();
    let mut agent = ChildGuard(
        emu.rolesnap()
            .args([
                "agent",
                "--plans",
                p.to_str().unwrap(),
                "--poll-interval",
                "0.2",
                "--metrics",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("a completed backup job", 40, || {
        jobs(&emu)
            .iter()
            .any(|j| j["job_type"] == "Snap Backup" && j["status"] == "Completed")
    });
    wait_for("the prune job that follows", 20, || {
        jobs(&emu).iter().any(|j| j["job_type"] == "Data Aging")
    });

    // The snapshots are really there, in the tenant account.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let n = rt.block_on(async {
        let ec2 = emu.ec2("alpha", "us-east-1").await;
        ec2.describe_snapshots()
            .owner_ids("self")
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:_GX_PLAN_")
                    .values("frequent")
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .snapshots()
            .len()
    });
    assert!(n >= 4, "two nightly instances × two volumes: {n}");

    // Metrics on loopback.
    let scrape = || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    wait_for("the job in the metrics", 10, || {
        scrape().contains("rolesnap_jobs_total{type=\"Snap Backup\"")
    });
    let body = scrape();
    assert!(
        body.contains(
            "rolesnap_jobs_total{type=\"Snap Backup\",plan=\"frequent\",status=\"Completed\"}"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "rolesnap_last_success_timestamp_seconds{plan=\"frequent\",tenant=\"alpha\"}"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "rolesnap_last_backup_success_timestamp_seconds{plan=\"frequent\",tenant=\"alpha\",region=\"us-east-1\"}"
        ),
        "{body}"
    );
    let throttled = regex::Regex::new(
        r#"rolesnap_api_throttled_total\{service="[^"]+",operation="CreateSnapshots"\} (\d+)"#,
    )
    .unwrap();
    let n: u64 = throttled
        .captures(&body)
        .map(|c| c[1].parse().unwrap())
        .unwrap_or(0);
    assert_eq!(n, 2, "both injected throttles counted: {body}");
    assert!(body.contains("operation=\"DescribeInstances\"}"), "{body}");

    // A second agent on the same state directory refuses.
    let second = emu.run(&["agent", "--plans", p.to_str().unwrap()]);
    assert_ne!(second.code, 0, "{second}");
    assert!(
        second
            .stderr
            .contains("another rolesnap agent is already running"),
        "{second}"
    );

    term(&agent);
    assert_eq!(wait_exit(&mut agent, 40), 0);
    assert!(emu
        .log_file("cvd.log")
        .contains("CvdAgent::Stop() - rolesnap agent stopped"));
}

#[test]
fn sigterm_mid_run_exits_cleanly_and_records_the_job_killed() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": "222222222222", "kinds": ["snapshot"]})),
    );
    let p = emu.write_plan("frequent", plan("*/10 * * * * *", &["alpha"]));
    let mut agent = ChildGuard(
        emu.rolesnap()
            .args([
                "agent",
                "--plans",
                p.to_str().unwrap(),
                "--poll-interval",
                "0.5",
                "--grace",
                "2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the job to wait for pending snapshots", 40, || {
        emu.log_file("vsbkp.log").contains("Waiting for")
    });
    term(&agent);
    assert_eq!(wait_exit(&mut agent, 20), 0, "exit 0 after SIGTERM");
    let j = jobs(&emu);
    let backup = j
        .iter()
        .find(|j| j["job_type"] == "Snap Backup")
        .expect("the backup job is recorded");
    assert_eq!(backup["status"], "Killed", "{j:?}");
    assert!(emu.log_file("cvd.log").contains("recorded Killed"));
}

#[test]
fn agent_once_runs_what_is_due_and_exits() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta"], &[]);
    // Every minute: the latest slot is always within the catch-up window.
    let p = emu.write_plan("frequent", plan("* * * * *", &["alpha", "beta"]));
    let run = emu.run(&[
        "agent",
        "--once",
        "--plans",
        p.to_str().unwrap(),
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let j = jobs(&emu);
    let types: Vec<&str> = j.iter().map(|j| j["job_type"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"Snap Backup") && types.contains(&"Data Aging"),
        "{types:?}"
    );
    // A second --once in the same minute finds the slot done.
    let again = emu.run(&["agent", "--once", "--plans", p.to_str().unwrap()]);
    assert_eq!(again.code, 0);
    assert_eq!(jobs(&emu).len(), j.len(), "the slot is not run twice");
}

#[test]
fn shards_split_the_tenants_between_agents() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta"], &[]);
    let p = emu.write_plan("frequent", plan("* * * * *", &["alpha", "beta"]));
    let mut seen: Vec<String> = Vec::new();
    for k in 0..2 {
        let state = emu.path(&format!("state-{k}"));
        let out = emu
            .rolesnap()
            .env("ROLESNAP_STATE_DIR", &state)
            .args([
                "agent",
                "--once",
                "--shard",
                &format!("{k}/2"),
                "--plans",
                p.to_str().unwrap(),
                "--poll-interval",
                "0.2",
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j = emu
            .rolesnap()
            .env("ROLESNAP_STATE_DIR", &state)
            .args(["jobs", "-o", "json"])
            .output()
            .unwrap();
        let j: Value = serde_json::from_slice(&j.stdout).unwrap();
        for job in j
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["job_type"] == "Snap Backup")
        {
            for t in job["tenants"].as_array().unwrap() {
                // A shard may run the every-minute slot twice when its run
                // crosses a minute boundary (`--once` runs what is due): a
                // tenant counts once per shard.
                let t = format!("{k}:{}", t.as_str().unwrap());
                if !seen.contains(&t) {
                    seen.push(t);
                }
            }
        }
    }
    let mut seen: Vec<String> = seen
        .into_iter()
        .map(|t| t.split_once(':').unwrap().1.to_string())
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec!["alpha".to_string(), "beta".to_string()],
        "each tenant in exactly one shard"
    );
    // `jobs --from` reads both shards' ledgers (give each at least one job:
    // the hash may put both tenants in one shard).
    for k in 0..2 {
        let out = emu
            .rolesnap()
            .env("ROLESNAP_STATE_DIR", emu.path(&format!("state-{k}")))
            .args([
                "backup",
                "--plan",
                p.to_str().unwrap(),
                "--tenant",
                "alpha",
                "--poll-interval",
                "0.2",
                "-q",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
    }
    let both = emu
        .rolesnap()
        .env("ROLESNAP_STATE_DIR", emu.path("state-0"))
        .args([
            "jobs",
            "--from",
            emu.path("state-1").to_str().unwrap(),
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let both: Value = serde_json::from_slice(&both.stdout).unwrap();
    let ledgers: std::collections::BTreeSet<String> = both
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["ledger"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ledgers.len(), 2, "{both}");
}

#[test]
fn schedule_shows_next_runs_in_the_plan_time_zone() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let body = plan("30 1 * * *", &["alpha"]).timezone("Europe/Berlin");
    let p = emu.write_plan("frequent", &body);
    let run = emu.run(&[
        "schedule",
        "--plans",
        p.to_str().unwrap(),
        "-n",
        "3",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let next = run.json()[0]["next"].as_array().unwrap().clone();
    assert_eq!(next.len(), 3);
    for t in next {
        let t = chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap();
        let local = t.with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!(local.format("%H:%M").to_string(), "01:30");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_shows_source_and_copy_points_from_aws() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let body = plan("30 1 * * *", &["alpha"]).copy("us-west-2", "");
    let p = emu.write_plan("frequent", &body);
    let b = emu.backup(&p, &[]);
    assert_eq!(b.code, 0, "{b}");
    let job = b.json()[0]["job"].as_u64().unwrap();
    let run = emu.run(&["list", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let rows = run.json().as_array().unwrap().clone();
    let sources: Vec<&Value> = rows.iter().filter(|r| r["role"] == "source").collect();
    let copies: Vec<&Value> = rows.iter().filter(|r| r["role"] == "copy").collect();
    assert_eq!(sources.len(), 2, "one snapshot set per nightly instance");
    assert_eq!(copies.len(), 2);
    assert!(sources
        .iter()
        .all(|r| r["region"] == "us-east-1" && r["job"] == job && r["job_status"] == "Completed"));
    assert!(copies.iter().all(|r| r["region"] == "us-west-2"));
    assert!(
        sources[0]["expires"].as_str().is_some(),
        "days rule gives an expiry"
    );
    // Cross-check one point against AWS directly.
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let first = sources[0]["id"]
        .as_str()
        .unwrap()
        .split('+')
        .next()
        .unwrap()
        .to_string();
    let out = ec2
        .describe_snapshots()
        .snapshot_ids(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(out.snapshots().len(), 1);
    // Narrowed to one instance.
    let inst = sources[0]["source"].as_str().unwrap();
    let one = emu.run(&[
        "list",
        "--plan",
        p.to_str().unwrap(),
        "--instance",
        inst,
        "-o",
        "json",
    ]);
    let one = one.json();
    assert_eq!(
        one.as_array().unwrap().len(),
        2,
        "its source point and its copy"
    );
    assert!(one.as_array().unwrap().iter().all(|r| r["source"] == inst));
}

#[test]
fn sighup_reloads_plans_and_keeps_the_old_ones_when_the_new_do_not_parse() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    // Once a year: nothing runs during the test.
    let p = emu.write_plan("frequent", plan("0 3 1 1 *", &["alpha"]));
    let mut agent = ChildGuard(
        emu.rolesnap()
            .args([
                "agent",
                "--plans",
                p.to_str().unwrap(),
                "--catch-up",
                "0",
                "--json-events",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the agent to start", 20, || {
        emu.log_file("cvd.log").contains("CvdAgent::Start()")
    });
    let hup = |child: &Child| {
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap()
            .success());
    };
    std::fs::write(&p, "[plan]\nname = \"frequent\"\nid = oops\n").unwrap();
    hup(&agent);
    wait_for("the failed reload to be logged", 20, || {
        emu.log_file("cvd.log")
            .contains("keeping its last good version of plan [frequent]")
    });
    assert!(
        agent.try_wait().unwrap().is_none(),
        "a bad plan does not stop the agent"
    );
    std::fs::write(&p, plan("0 4 1 1 *", &["alpha"]).to_string()).unwrap();
    hup(&agent);
    wait_for("the reload", 20, || {
        emu.log_file("cvd.log")
            .contains("CvdAgent::Reload() - Reloaded 1 plan(s)")
    });
    term(&agent);
    assert_eq!(wait_exit(&mut agent, 20), 0);
    let mut out = String::new();
    agent
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["event"], "start", "{out}");
    assert_eq!(events.last().unwrap()["event"], "stop", "{out}");
    assert!(jobs(&emu).is_empty(), "nothing was due");
}

/// A plan named `name` in `dir` (beside dir/accounts.toml).
fn plan_in(dir: &std::path::Path, name: &str, cron: &str) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, plan(cron, &["alpha"]).name(name, 5).to_string()).unwrap();
    p
}

/// A plans directory holding the accounts file of the emulator.
fn plans_dir(emu: &Emulator) -> std::path::PathBuf {
    let dir = emu.path("plans");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(emu.path("accounts.toml"), dir.join("accounts.toml")).unwrap();
    dir
}

fn http(port: u16, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn config_errors(port: u16) -> Option<u64> {
    let body = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    body.lines()
        .find_map(|l| l.strip_prefix("rolesnap_plan_config_errors "))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_broken_plan_beside_good_ones_is_logged_and_the_good_ones_run() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let dir = plans_dir(&emu);
    plan_in(&dir, "good", "* * * * *");
    let zero = plan_in(&dir, "zero-days", "* * * * *");
    std::fs::write(
        &zero,
        std::fs::read_to_string(&zero)
            .unwrap()
            .replace("days = 7", "days = 0"),
    )
    .unwrap();
    let garbled = dir.join("garbled.toml");
    std::fs::write(&garbled, "[plan]\nname = \"garbled\"\nid = oops\n").unwrap();
    let d = dir.to_str().unwrap();

    // --strict: nothing runs, both broken files are named, exit 2.
    emu.control("DELETE", "/_harness/calls", None);
    let strict = emu.run(&["agent", "--once", "--strict", "--plans", d]);
    assert_eq!(strict.code, 2, "{strict}");
    assert!(
        strict
            .stderr
            .contains(&format!("{}:10: retention.days", zero.display())),
        "{strict}"
    );
    assert!(
        strict
            .stderr
            .contains(&format!("{}:3: id", garbled.display())),
        "{strict}"
    );
    assert!(jobs(&emu).is_empty(), "--strict ran nothing");
    assert_eq!(emu.control("GET", "/_harness/calls", None)["total"], 0);

    // Without it the good plan runs; each broken file is in cvd.log.
    let run = emu.run(&["agent", "--once", "--plans", d, "--poll-interval", "0.2"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("warning: plan file skipped"), "{run}");
    let j = jobs(&emu);
    assert!(
        j.iter().any(|j| j["plan"] == "good"
            && j["job_type"] == "Snap Backup"
            && j["status"] == "Completed"),
        "{j:?}"
    );
    assert!(j.iter().all(|j| j["plan"] == "good"), "{j:?}");
    let cvd = emu.log_file("cvd.log");
    for (file, error) in [(&zero, "retention.days"), (&garbled, ":3: id")] {
        assert!(
            cvd.contains(&format!(
                "CvdAgent::Start() - Plan file [{}] does not load: {}",
                file.display(),
                file.display()
            )) && cvd.contains(error),
            "{cvd}"
        );
    }
    assert!(
        cvd.contains("1 plan(s), 2 plan file(s) that do not load"),
        "{cvd}"
    );
}

#[test]
fn sighup_reloads_each_plan_on_its_own_and_metrics_count_the_broken_ones() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let dir = plans_dir(&emu);
    // Once a year: nothing runs during the test.
    plan_in(&dir, "a", "0 3 1 1 *");
    let b = plan_in(&dir, "b", "0 3 1 1 *");
    let port = free_port();
    let mut agent = ChildGuard(
        emu.rolesnap()
            .args([
                "agent",
                "--plans",
                dir.to_str().unwrap(),
                "--catch-up",
                "0",
                "--metrics",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the metrics endpoint", 20, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && emu
                .log_file("cvd.log")
                .contains("Serving Prometheus metrics")
    });
    assert_eq!(config_errors(port), Some(0));
    // Only GET /metrics.
    let root = http(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(root.starts_with("HTTP/1.1 404 "), "{root}");
    let post = http(
        port,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(
        post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET"),
        "{post}"
    );
    let ok = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        ok.starts_with("HTTP/1.1 200 ") && ok.trim_end().ends_with("# EOF"),
        "{ok}"
    );

    let hup = |child: &Child| {
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap()
            .success());
    };
    // b breaks, c is new: c is loaded, b keeps its last good version.
    std::fs::write(&b, "[plan]\nname = \"b\"\nid = oops\n").unwrap();
    plan_in(&dir, "c", "0 3 1 1 *");
    hup(&agent);
    wait_for("the per-plan reload", 20, || {
        emu.log_file("cvd.log")
            .contains("CvdAgent::Reload() - Reloaded 3 plan(s); 1 plan file(s) do not load")
    });
    let cvd = emu.log_file("cvd.log");
    assert!(
        cvd.contains(&format!(
            "Plan file [{}] does not load: {}:3: id",
            b.display(),
            b.display()
        )) && cvd.contains("keeping its last good version of plan [b]"),
        "{cvd}"
    );
    assert_eq!(config_errors(port), Some(1));
    // b fixed: nothing broken any more.
    plan_in(&dir, "b", "0 4 1 1 *");
    hup(&agent);
    wait_for("the clean reload", 20, || {
        emu.log_file("cvd.log")
            .contains("CvdAgent::Reload() - Reloaded 3 plan(s)\n")
    });
    assert_eq!(config_errors(port), Some(0));
    assert!(agent.try_wait().unwrap().is_none());
    term(&agent);
    assert_eq!(wait_exit(&mut agent, 20), 0);
    assert!(jobs(&emu).is_empty(), "nothing was due");
}
