//! Recovery-point integrity: a point is never faked, merged, made twice or
//! left unreported, whatever agents, ledgers and runs share the tenants.
//! Every check counts AWS resources through the emulator's API as the tenant.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{tags_of, term, wait_for, ChildGuard, Emulator, PlanText, Run};

const ALPHA: &str = "222222222222";
const EAST: &str = "us-east-1";

/// Plan `nightly` (id 2) of alpha's us-east-1, kept 7 days; `rds` sets
/// `rds` and `aurora`.
fn plan(rds: bool) -> PlanText {
    PlanText::new().retention("days = 7").databases(rds)
}

fn spawn_in(emu: &Emulator, state: &Path, args: &[&str]) -> ChildGuard {
    ChildGuard(
        emu.rolesnap()
            .env("ROLESNAP_STATE_DIR", state)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn finish(mut child: ChildGuard) -> Run {
    use std::io::Read;
    let mut so = child.0.stdout.take().unwrap();
    let mut se = child.0.stderr.take().unwrap();
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    so.read_to_string(&mut stdout).unwrap();
    let stderr = errs.join().unwrap();
    let status = child.0.wait().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

fn state(emu: &Emulator, name: &str) -> PathBuf {
    emu.path(name)
}

/// (agent, job, source) → snapshot ids, as alpha sees its snapshots in us-east-1.
async fn sets(emu: &Emulator) -> BTreeMap<(String, String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for (id, t) in emu.snapshots("alpha", EAST).await {
        if let Some(job) = t.get("_GX_BACKUP_") {
            out.entry((
                t.get("_GX_AGENT_").cloned().unwrap_or_default(),
                job.clone(),
                t.get("_GX_SOURCE_").cloned().unwrap_or_default(),
            ))
            .or_default()
            .push(id);
        }
    }
    out
}

fn nightly(emu: &Emulator) -> Vec<(String, usize)> {
    emu.nightly_instances("alpha", EAST)
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["volumes"].as_array().unwrap().len(),
            )
        })
        .collect()
}

/// Every nightly instance has exactly one set of (agent, job), whole.
async fn assert_one_set_each(emu: &Emulator, agent: &str, job: &str) {
    let all = sets(emu).await;
    for (inst, vols) in nightly(emu) {
        let set = all.get(&(agent.to_string(), job.to_string(), inst.clone()));
        assert_eq!(
            set.map(Vec::len),
            Some(vols),
            "{inst}: one set of {vols} snapshots from job {job}@{agent}; all sets: {all:?}"
        );
    }
}

fn agent_of(report: &Value) -> String {
    let a = report["agent"].as_str().unwrap_or_default().to_string();
    assert_eq!(a.len(), 16, "a report names its agent: {report}");
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_ledgers_never_merge_points_and_an_ambiguous_job_is_refused_by_restore() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan(false));
    // Two pods of an Indexed Job without a state volume, on two days: each
    // starts a fresh ledger, and each numbers its job 1000.
    let (a, b) = (state(&emu, "pod-a"), state(&emu, "pod-b"));
    let ra = emu.backup_in(&a, &p, &[]);
    assert_eq!(ra.code, 0, "{ra}");
    let rb = emu.backup_in(&b, &p, &[]);
    assert_eq!(rb.code, 0, "{rb}");
    let (ja, jb) = (ra.json(), rb.json());
    assert_eq!(ja["job"], 1000);
    assert_eq!(jb["job"], 1000);
    let (agent_a, agent_b) = (agent_of(&ja), agent_of(&jb));
    assert_ne!(agent_a, agent_b, "each ledger has its own agent id");
    assert_one_set_each(&emu, &agent_a, "1000").await;
    assert_one_set_each(&emu, &agent_b, "1000").await;

    // `list` shows two points per instance, never one of four snapshots.
    let list = emu
        .run(&["list", "--plan", p.to_str().unwrap(), "-o", "json"])
        .json();
    let (inst, vols) = nightly(&emu)[0].clone();
    let points: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["source"] == inst.as_str())
        .collect();
    assert_eq!(points.len(), 2, "{list}");
    for pt in &points {
        assert_eq!(pt["snapshots"].as_array().unwrap().len(), vols);
    }

    // Job 1000 names two points: restore refuses to guess, and makes nothing.
    let amb = emu.run(&[
        "restore",
        "instance",
        "--plan",
        p.to_str().unwrap(),
        "--tenant",
        "alpha",
        "--instance",
        &inst,
        "--job",
        "1000",
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ]);
    assert_ne!(amb.code, 0, "{amb}");
    let said = format!("{}{}", amb.stdout, amb.stderr);
    assert!(said.contains("ambiguous"), "{amb}");
    assert!(
        said.contains(&agent_a) && said.contains(&agent_b),
        "the candidates are listed: {amb}"
    );
    let ec2 = emu.ec2("alpha", EAST).await;
    let restored = |out: aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput| {
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| tags_of(i.tags()).contains_key("_GX_RESTORED_FROM_"))
            .count()
    };
    assert_eq!(restored(ec2.describe_instances().send().await.unwrap()), 0);

    // Named with its agent, the point restores.
    let label = format!("1000@{}", &agent_b[..6]);
    let ok = emu.run(&[
        "restore",
        "instance",
        "--plan",
        p.to_str().unwrap(),
        "--tenant",
        "alpha",
        "--instance",
        &inst,
        "--job",
        &label,
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(ok.code, 0, "{ok}");
    let report = ok.json();
    assert_eq!(
        report["recovery_point"]["agent"],
        agent_b.as_str(),
        "{report}"
    );
    assert_eq!(restored(ec2.describe_instances().send().await.unwrap()), 1);

    // `jobs --from` shows both jobs 1000 with their agents; `--job 1000` is
    // refused with the candidates, `--job 1000@AGENT` shows one.
    let jobs = emu
        .run_in(&a, &["jobs", "--from", b.to_str().unwrap(), "-o", "json"])
        .json();
    let agents: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["job"]["id"] == 1000)
        .map(|j| j["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents.len(), 2, "{jobs}");
    let amb = emu.run_in(
        &a,
        &["jobs", "--from", b.to_str().unwrap(), "--job", "1000"],
    );
    assert_eq!(amb.code, 2, "{amb}");
    assert!(
        amb.stderr.contains(&format!("1000@{agent_a}"))
            && amb.stderr.contains(&format!("1000@{agent_b}")),
        "{amb}"
    );
    let one = emu.run_in(
        &a,
        &[
            "jobs",
            "--from",
            b.to_str().unwrap(),
            "--job",
            &format!("1000@{agent_b}"),
            "-o",
            "json",
        ],
    );
    assert_eq!(one.code, 0, "{one}");
    assert_eq!(one.json()["agent"], agent_b.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_ledger_never_adopts_another_ledgers_points_of_the_same_job_number() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan(false));
    // An old node made job 1000 long ago.
    let old = state(&emu, "old-node");
    let r = emu.backup_in(&old, &p, &[]);
    assert_eq!(r.code, 0, "{r}");
    let old_agent = agent_of(&r.json());
    let before = sets(&emu).await;

    // A new node: its first job (1000) dies before it creates anything
    // (slow AWS; killed during discovery).
    let new = state(&emu, "new-node");
    emu.config(json!({"latency_ms": 1500}));
    let child = spawn_in(&emu, &new, &["backup", "--plan", p.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !emu
        .log_file("vsbkp.log")
        .contains("Snap Backup job [1000] of agent")
        || emu
            .log_file("vsbkp.log")
            .matches("Snap Backup job [1000]")
            .count()
            < 2
    {
        assert!(
            Instant::now() < deadline,
            "the new node's job 1000 did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut child = child;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    emu.config(json!({"latency_ms": 0}));
    assert_eq!(sets(&emu).await, before, "the killed job made nothing");

    // Its rerun resumes the killed job 1000: it must not take the old node's
    // job-1000 snapshots for its own.
    let r = emu.backup_in(&new, &p, &[]);
    assert_eq!(r.code, 0, "{r}");
    let report = r.json();
    assert_eq!(report["job"], 1001);
    let new_agent = agent_of(&report);
    assert_ne!(new_agent, old_agent);
    assert_one_set_each(&emu, &new_agent, "1001").await;
    // The old node's points are untouched, and none was reported as the new job's.
    let after = sets(&emu).await;
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v));
    }
    let items = emu
        .run_in(&new, &["jobs", "--job", "1001", "-o", "json"])
        .json();
    let old_ids: Vec<&String> = before.values().flatten().collect();
    for i in items["items"].as_array().unwrap() {
        for c in i["created"].as_array().unwrap() {
            assert!(
                !old_ids.contains(&&c.as_str().unwrap().to_string()),
                "adopted another ledger's {c}: {items}"
            );
        }
        assert_eq!(i["status"], "Completed", "{items}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ambiguous_create_never_adopts_another_ledgers_set_nor_creates_twice() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan(false));
    let (inst, vols) = nightly(&emu)[0].clone();
    let only = ["--instance", inst.as_str()];
    // Another ledger's jobs 1000 and 1001 made sets of this instance.
    let other = state(&emu, "other-node");
    for _ in 0..2 {
        let r = emu.backup_in(&other, &p, &only);
        assert_eq!(r.code, 0, "{r}");
    }
    // This node's job 1000 runs; its job 1001's CreateSnapshots fails
    // ambiguously (InternalError, nothing made): the check must not find the
    // other ledger's job-1001 set.
    let mine = state(&emu, "this-node");
    let r = emu.backup_in(&mine, &p, &only);
    assert_eq!(r.code, 0, "{r}");
    let agent = agent_of(&r.json());
    emu.fault(
        json!({"action": "CreateSnapshots", "code": "InternalError", "count": 1, "account": ALPHA}),
    );
    let r = emu.backup_in(&mine, &p, &only);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["job"], 1001);
    assert_eq!(emu.count_calls(ALPHA, "CreateSnapshots", "injected"), 1);
    let all = sets(&emu).await;
    assert_eq!(
        all.get(&(agent.clone(), "1001".into(), inst.clone()))
            .map(Vec::len),
        Some(vols),
        "{all:?} {r} {}",
        emu.log_file("vsbkp.log")
    );

    // Job 1002: CreateSnapshots makes the set but answers 500, and the
    // check fails twice before it can answer: the set is adopted, not made twice.
    emu.fault(json!({"action": "CreateSnapshots", "code": "InternalError", "count": 1, "account": ALPHA, "after": true}));
    emu.fault(json!({"action": "DescribeSnapshots", "code": "InternalError", "count": 2, "account": ALPHA}));
    let r = emu.backup_in(&mine, &p, &only);
    assert_eq!(r.code, 0, "{r}");
    let all = sets(&emu).await;
    let made = all
        .get(&(agent.clone(), "1002".into(), inst.clone()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        made.len(),
        vols,
        "one set, adopted after the check could answer: {all:?}"
    );
    let item = &r.json()["items"][0];
    assert_eq!(item["status"], "Completed", "{item}");
    let mut reported: Vec<String> = item["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    reported.sort();
    let mut made = made;
    made.sort();
    assert_eq!(reported, made, "every snapshot made is reported");

    // Job 1003: the create is ambiguous and every check fails: the outcome
    // is unknown. Nothing is created again; the item says so.
    emu.control("DELETE", "/_harness/faults", None);
    emu.fault(json!({"action": "CreateSnapshots", "code": "InternalError", "count": 1, "account": ALPHA, "after": true}));
    emu.fault(json!({"action": "DescribeSnapshots", "code": "InternalError", "account": ALPHA}));
    let r = emu.backup_in(&mine, &p, &[&only[..], &["--wait-timeout", "20"]].concat());
    emu.control("DELETE", "/_harness/faults", None);
    assert_ne!(r.code, 0, "{r}");
    let item = &r.json()["items"][0];
    assert_eq!(item["status"], "Failed", "{item}");
    assert!(
        item["error"]
            .as_str()
            .unwrap()
            .contains("UnknownWhetherCreated"),
        "{item}"
    );
    assert_eq!(
        emu.count_calls(ALPHA, "CreateSnapshots", "injected"),
        3,
        "one create per job, never a blind second one"
    );
    let all = sets(&emu).await;
    assert_eq!(
        all.get(&(agent.clone(), "1003".into(), inst.clone()))
            .map(Vec::len),
        Some(vols),
        "one set exists, found by its tags: {all:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_of_one_plan_at_once_leave_one_point_per_source() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan(true));
    // Slow AWS, so that the two runs overlap for certain: each spends
    // seconds connecting and discovering before its first create.
    emu.config(json!({"latency_ms": 300}));

    // Same state directory: the second run is refused (exit 4), or waits.
    let same = state(&emu, "node");
    let first = spawn_in(
        &emu,
        &same,
        &[
            "backup",
            "--plan",
            p.to_str().unwrap(),
            "--poll-interval",
            "0.2",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !emu.log_file("vsbkp.log").contains("Snap Backup job [1000]") {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = emu.backup_in(&same, &p, &[]);
    assert_eq!(second.code, 4, "{second}");
    assert!(second.stderr.contains("already being run"), "{second}");
    let first = finish(first);
    assert_eq!(first.code, 0, "{first}");

    // Two access nodes (two state directories) at the same moment.
    let (a, b) = (state(&emu, "node-a"), state(&emu, "node-b"));
    let ca = spawn_in(
        &emu,
        &a,
        &[
            "backup",
            "--plan",
            p.to_str().unwrap(),
            "--poll-interval",
            "0.2",
            "-o",
            "json",
        ],
    );
    let cb = spawn_in(
        &emu,
        &b,
        &[
            "backup",
            "--plan",
            p.to_str().unwrap(),
            "--poll-interval",
            "0.2",
            "-o",
            "json",
        ],
    );
    let (ra, rb) = (finish(ca), finish(cb));
    assert_eq!(ra.code, 0, "{ra}");
    assert_eq!(rb.code, 0, "{rb}");
    let (ja, jb) = (ra.json(), rb.json());
    let (agent_a, agent_b) = (agent_of(&ja), agent_of(&jb));

    // EBS: each instance has exactly one set from the two runs.
    let all = sets(&emu).await;
    for (inst, vols) in nightly(&emu) {
        let of_runs: Vec<_> = all
            .iter()
            .filter(|((ag, _, src), _)| src == &inst && (ag == &agent_a || ag == &agent_b))
            .collect();
        assert_eq!(
            of_runs.len(),
            1,
            "{inst}: one point for the two overlapping runs: {all:?}"
        );
        assert_eq!(of_runs[0].1.len(), vols);
    }
    // RDS and Aurora: one snapshot each from the two runs.
    let rds = emu.rds("alpha", EAST).await;
    let dbs = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let ours = |t: &[aws_sdk_rds::types::Tag]| {
        t.iter().any(|t| {
            t.key() == Some("_GX_AGENT_")
                && (t.value() == Some(&agent_a) || t.value() == Some(&agent_b))
        })
    };
    let mut per_db: BTreeMap<String, usize> = BTreeMap::new();
    for s in dbs.db_snapshots() {
        if ours(s.tag_list()) {
            *per_db
                .entry(s.db_instance_identifier().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(per_db.get("alpha-pg"), Some(&1), "{per_db:?}");
    let cl = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let n = cl
        .db_cluster_snapshots()
        .iter()
        .filter(|s| ours(s.tag_list()))
        .count();
    assert_eq!(n, 1, "one Aurora snapshot from the two runs");

    // The reports say which points were removed as duplicates, and every
    // source is accounted for once in the two reports together.
    let statuses = |j: &Value| -> Vec<(String, String)> {
        j["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["source_id"].as_str().unwrap().to_string(),
                    i["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (sa, sb) = (statuses(&ja), statuses(&jb));
    let sources = nightly(&emu).len() + 2;
    assert_eq!(sa.len(), sources, "{ja}");
    assert_eq!(sb.len(), sources, "{jb}");
    for (src, st) in sa.iter().chain(&sb) {
        assert!(st == "Completed" || st == "DuplicateRemoved", "{src}: {st}");
    }
    let completed = sa
        .iter()
        .chain(&sb)
        .filter(|(_, s)| s == "Completed")
        .count();
    assert_eq!(
        completed, sources,
        "exactly one Completed point per source: {sa:?} {sb:?}"
    );

    // A run after they ended still makes a new point of every source.
    emu.config(json!({"latency_ms": 0}));
    let r = emu.backup_in(&a, &p, &[]);
    assert_eq!(r.code, 0, "{r}");
    let j = r.json();
    assert!(
        j["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "Completed"),
        "{j}"
    );
    assert_one_set_each(&emu, &agent_a, &j["job"].to_string()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_aws_rejects_is_renewed_and_a_role_that_cannot_be_assumed_fails_fast() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan(false));
    // Snapshots stay pending until released: the job polls meanwhile.
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "kinds": ["snapshot"]})),
    );
    let child = spawn_in(
        &emu,
        &emu.state_dir(),
        &[
            "backup",
            "--plan",
            p.to_str().unwrap(),
            "--poll-interval",
            "0.3",
            "--wait-timeout",
            "60",
            "-o",
            "json",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !emu.log_file("vsbkp.log").contains("Waiting for") {
        assert!(Instant::now() < deadline, "the job did not start waiting");
        std::thread::sleep(Duration::from_millis(100));
    }
    // AWS rejects the session before its expiry (revoked, clock skew).
    let revoked = emu.control("POST", "/_harness/revoke", Some(json!({"account": ALPHA})));
    assert!(!revoked["revoked"].as_array().unwrap().is_empty());
    std::thread::sleep(Duration::from_secs(2));
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
    let r = finish(child);
    assert_eq!(
        r.code,
        0,
        "renewed, the job completed: {r}\n{}\n{}",
        emu.log_file("vsbkp.log"),
        emu.log_file("cvd.log")
    );
    let j = r.json();
    assert!(
        j["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "Completed"),
        "{j}"
    );
    assert!(
        emu.count_calls(ALPHA, "DescribeSnapshots", "expired") >= 1,
        "a poll met the revoked session"
    );
    let cvd = emu.log_file("cvd.log");
    assert!(
        cvd.contains("Refreshing credentials")
            && cvd.contains("AWS rejected the session (ExpiredToken)"),
        "the renewal is logged in cvd.log:\n{cvd}"
    );
    let creds = emu.control("GET", "/_harness/credentials", None);
    let alpha_keys = creds["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["account"] == ALPHA)
        .count();
    assert!(alpha_keys >= 2, "the role was assumed again: {creds}");

    // Now the role can no longer be assumed: the job fails at once, with the
    // reason, not after the wait timeout (240 minutes by default).
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "kinds": ["snapshot"]})),
    );
    let child = spawn_in(
        &emu,
        &emu.state_dir(),
        &[
            "backup",
            "--plan",
            p.to_str().unwrap(),
            "--poll-interval",
            "0.3",
            "-o",
            "json",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !emu
        .log_file("vsbkp.log")
        .contains(" 1001 CVSnapBackup::Run() - Waiting for")
    {
        assert!(
            Instant::now() < deadline,
            "the second job did not start waiting"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    emu.fault(
        json!({"action": "AssumeRole", "code": "AccessDenied", "target_account": ALPHA,
        "message": "User is not authorized to perform: sts:AssumeRole"}),
    );
    emu.control("POST", "/_harness/revoke", Some(json!({"account": ALPHA})));
    let t0 = Instant::now();
    let r = finish(child);
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "failed fast: {:?}",
        t0.elapsed()
    );
    assert_ne!(r.code, 0, "{r}");
    let j = r.json();
    for i in j["items"].as_array().unwrap() {
        assert_eq!(i["status"], "Failed", "{i}");
        let e = i["error"].as_str().unwrap();
        assert!(
            e.contains("can no longer be assumed") && e.contains("AccessDenied"),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn polls_that_fail_are_reported_with_the_aws_error() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan(false));
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "kinds": ["snapshot"]})),
    );
    emu.fault(json!({"action": "DescribeSnapshots", "code": "InternalError", "account": ALPHA}));
    let r = emu.backup_in(&emu.state_dir(), &p, &["--wait-timeout", "4"]);
    emu.control("DELETE", "/_harness/faults", None);
    assert_ne!(r.code, 0, "{r}");
    for i in r.json()["items"].as_array().unwrap() {
        let e = i["error"].as_str().unwrap();
        assert!(
            e.contains("polls failed") && e.contains("InternalError"),
            "{e}"
        );
        assert!(
            !i["created"].as_array().unwrap().is_empty(),
            "what was made is reported: {i}"
        );
    }
}

#[test]
fn a_truncated_ledger_is_refused_not_silently_started_afresh() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", plan(false));
    std::fs::create_dir_all(emu.state_dir()).unwrap();
    std::fs::write(emu.state_dir().join("ledger.db"), b"").unwrap();
    let r = emu.run(&["backup", "--plan", p.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains("ledger.db") && r.stderr.contains("0 bytes"),
        "{r}"
    );
    assert_eq!(
        std::fs::metadata(emu.state_dir().join("ledger.db"))
            .unwrap()
            .len(),
        0,
        "left as it was"
    );
    assert_eq!(
        emu.count_calls(ALPHA, "CreateSnapshots", "ok"),
        0,
        "nothing was made"
    );
}

/// Plan `frequent` (id 5) every 5 s of alpha's us-east-1, kept 7 days,
/// copied to us-west-2.
fn agent_plan() -> PlanText {
    PlanText::new()
        .name("frequent", 5)
        .cron("*/5 * * * * *")
        .retention("days = 7")
        .copy("us-west-2", "")
        .group("all", &["alpha"])
}

#[test]
fn after_sigterm_no_new_job_starts_and_killed_jobs_are_named_with_what_they_made() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("frequent", agent_plan());
    let agent = |state: &Path, grace: &str| {
        spawn_in(
            &emu,
            state,
            &[
                "agent",
                "--plans",
                p.to_str().unwrap(),
                "--poll-interval",
                "0.3",
                "--grace",
                grace,
                "--json-events",
            ],
        )
    };
    let jobs = |state: &Path| -> Vec<Value> {
        emu.run_in(state, &["jobs", "-o", "json"])
            .json()
            .as_array()
            .cloned()
            .unwrap_or_default()
    };

    // 1. The backup ends during the grace period: its copy job is not started.
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "kinds": ["snapshot"]})),
    );
    let a = state(&emu, "agent-a");
    let child = agent(&a, "20");
    wait_for("the backup to wait for its snapshots", 40, || {
        emu.log_file("vsbkp.log").contains("Waiting for")
    });
    term(&child);
    std::thread::sleep(Duration::from_millis(500));
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
    let r = finish(child);
    assert_eq!(r.code, 0, "{r}");
    let j = jobs(&a);
    let backup = j
        .iter()
        .find(|j| j["job_type"] == "Snap Backup")
        .expect("backup recorded");
    assert_eq!(backup["status"], "Completed", "{j:?}");
    assert!(
        !j.iter().any(|j| j["job_type"] == "Snap Copy"),
        "no job starts after SIGTERM: {j:?}"
    );

    // 2. The backup is still waiting when the grace period ends: it is
    // recorded Killed, named in cvd.log and in the JSON event, and its items
    // show what it made.
    emu.control(
        "POST",
        "/_harness/hold",
        Some(json!({"account": ALPHA, "kinds": ["snapshot"]})),
    );
    let b = state(&emu, "agent-b");
    let before = emu.log_file("vsbkp.log").matches("Waiting for").count();
    let child = agent(&b, "1");
    wait_for("the second backup to wait", 40, || {
        emu.log_file("vsbkp.log").matches("Waiting for").count() > before
    });
    term(&child);
    let r = finish(child);
    assert_eq!(r.code, 0, "{r}");
    let j = jobs(&b);
    let killed: Vec<u64> = j
        .iter()
        .filter(|j| j["status"] == "Killed")
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    assert!(!killed.is_empty(), "{j:?}");
    let event = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "killed")
        .unwrap_or_else(|| panic!("a killed event: {}", r.stdout));
    let mut named: Vec<u64> = event["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    named.sort_unstable();
    let mut k = killed.clone();
    k.sort_unstable();
    assert_eq!(named, k, "the event names every killed job");
    let cvd = emu.log_file("cvd.log");
    assert!(cvd.contains(&format!("recorded Killed: {k:?}")), "{cvd}");
    let backup = j.iter().find(|j| j["job_type"] == "Snap Backup").unwrap();
    assert_eq!(backup["status"], "Killed");
    let id = backup["id"].to_string();
    let shown = emu.run_in(&b, &["jobs", "--job", &id, "-o", "json"]).json();
    let items = shown["items"].as_array().unwrap();
    assert_eq!(items.len(), nightly(&emu).len(), "{shown}");
    for i in items {
        assert_eq!(i["status"], "Pending", "{i}");
        assert!(
            !i["created"].as_array().unwrap().is_empty(),
            "what it made: {i}"
        );
        assert!(
            i["error"].as_str().unwrap_or_default().contains("killed"),
            "{i}"
        );
    }
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
}
