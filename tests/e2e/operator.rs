//! The operator's day (issue 18), through the `rolesnap` binary against the
//! emulator, with AWS state checked through the harness's own SDK clients:
//! `list` on a narrow terminal and the retention decision's expiry, the
//! `prune --dry-run` table against what a real prune then deletes, backup
//! progress on a non-terminal, restore tags, an undecided `validate` probe,
//! the refused-restore exit code, and golden files of the completion scripts
//! and the man page (tests/e2e/golden/, see its README.md).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::json;

mod golden;
use crate::harness::{s, tags_of, ChildGuard, Emulator, PlanText, Tags};

const ALPHA: &str = "222222222222";
const EAST: &str = "us-east-1";
const WEST: &str = "us-west-2";

fn job_of(t: &Tags) -> Option<u64> {
    t.get("_GX_BACKUP_").and_then(|j| j.parse().ok())
}

/// alpha's snapshots in `region` made by backup job `job`: source → ids.
async fn points_of(emu: &Emulator, region: &str, job: u64) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, t) in emu.snapshots("alpha", region).await {
        if job_of(&t) == Some(job) && !t.contains_key("_GX_COPY_OF_") {
            out.entry(t["_GX_SOURCE_"].clone()).or_default().insert(id);
        }
    }
    out
}

/// The cells of the rows of a comfy-table (UTF-8 borders only, no wrapping),
/// cut at the header's column starts: header name → cell text, per row.
fn table_rows(out: &str) -> Vec<BTreeMap<String, String>> {
    let lines: Vec<&str> = out.lines().collect();
    let Some(h) = lines.iter().position(|l| l.starts_with('│')) else {
        return vec![];
    };
    let header: Vec<char> = lines[h].chars().collect();
    // Column starts: a non-space after two spaces (or after "│ ").
    let mut starts = vec![];
    for i in 2..header.len() - 1 {
        if header[i] != ' ' && header[i - 1] == ' ' && (header[i - 2] == ' ' || i == 2) {
            starts.push(i);
        }
    }
    let cell = |l: &[char], a: usize, b: usize| -> String {
        l[a.min(l.len())..b.min(l.len())]
            .iter()
            .collect::<String>()
            .trim()
            .trim_end_matches('│')
            .trim()
            .to_string()
    };
    let names: Vec<String> = (0..starts.len())
        .map(|k| {
            let end = starts.get(k + 1).copied().unwrap_or(header.len());
            cell(&header, starts[k], end)
        })
        .collect();
    lines[h + 1..]
        .iter()
        // The header's separator line, then the rows.
        .skip_while(|l| l.starts_with('╞'))
        .take_while(|l| l.starts_with('│'))
        .map(|l| {
            let c: Vec<char> = l.chars().collect();
            names
                .iter()
                .enumerate()
                .map(|(k, n)| {
                    let end = starts.get(k + 1).copied().unwrap_or(c.len());
                    (n.clone(), cell(&c, starts[k], end))
                })
                .collect()
        })
        .collect()
}

/// The Monday 00:00 UTC of the ISO week of `t`.
fn monday(t: DateTime<Utc>) -> DateTime<Utc> {
    let d = t.date_naive() - TimeDelta::days(i64::from(t.weekday().num_days_from_monday()));
    d.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_fits_a_narrow_terminal_and_shows_the_expiry_the_retention_decides() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    // Nightly at 01:00 UTC; a week's points by age, and the newest point of
    // each of the last 4 weeks with points.
    let p = emu.write_plan(
        "nightly",
        PlanText::new()
            .cron("0 1 * * *")
            .retention("days = 7\nweekly = 4")
            .databases(true),
    );
    let first = emu.backup_completed(&p)[0]["job"].as_u64().unwrap();
    let second = emu.backup_completed(&p)[0]["job"].as_u64().unwrap();
    // The RDS points (alpha-pg, alpha-aurora) as AWS lists them: their ids
    // share the plan prefix and the agent suffix.
    let rds = emu.rds("alpha", EAST).await;
    let mut rds_ids: BTreeSet<String> = BTreeSet::new();
    for s in rds
        .describe_db_snapshots()
        .send()
        .await
        .unwrap()
        .db_snapshots()
    {
        rds_ids.insert(s.db_snapshot_identifier().unwrap().to_string());
    }
    for s in rds
        .describe_db_cluster_snapshots()
        .send()
        .await
        .unwrap()
        .db_cluster_snapshots()
    {
        rds_ids.insert(s.db_cluster_snapshot_identifier().unwrap().to_string());
    }
    // (moto's automated `rds:` snapshots are not the plan's.)
    rds_ids.retain(|i| i.starts_with("sp-"));
    assert_eq!(
        rds_ids.len(),
        4,
        "two jobs of alpha-pg and alpha-aurora: {rds_ids:?}"
    );
    let old = points_of(&emu, EAST, first).await;
    let new = points_of(&emu, EAST, second).await;
    assert_eq!(old.len(), 2, "app1 and app2: {old:?}");
    // The first job's points are 20 days old: past `days = 7`, but each is
    // the newest of its week, which `weekly = 4` keeps.
    let aged: Vec<String> = old.values().flatten().cloned().collect();
    emu.age(ALPHA, EAST, &aged, 20);
    let ec2 = emu.ec2("alpha", EAST).await;
    let started = ec2
        .describe_snapshots()
        .snapshot_ids(&aged[0])
        .send()
        .await
        .unwrap()
        .snapshots()[0]
        .start_time()
        .map(|t| DateTime::from_timestamp(t.secs(), 0).unwrap())
        .unwrap();
    let now = Utc::now();
    assert!(now - started >= TimeDelta::days(20) - TimeDelta::minutes(1));
    // The replay: one new point at every 01:00 run; the aged point leaves
    // the last 4 weeks with points at the first run of the third week after
    // this one (this week, +1, +2, +3 then have points).
    let expected = monday(now) + TimeDelta::days(21) + TimeDelta::hours(1);
    let week = started.iso_week();
    let week_text = format!("{}-W{:02}", week.year(), week.week());

    // JSON: full ids, the decision, the rule and the expiry.
    let run = emu.run(&["list", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let rows = run.json().as_array().unwrap().clone();
    assert_eq!(rows.len(), 8, "{rows:?}");
    let mut full_ids = BTreeSet::new();
    for r in &rows {
        let id = s(&r["id"]).to_string();
        if r["kind"] != "snapshot-set" {
            assert!(rds_ids.contains(&id), "{id}: as AWS lists it");
            full_ids.insert(id);
            continue;
        }
        // A snapshot set's point: its snapshots joined by `+`.
        let members: BTreeSet<String> = id.split('+').map(str::to_string).collect();
        let source = s(&r["source"]);
        let is_old = old.get(source) == Some(&members);
        assert!(
            is_old || new.get(source) == Some(&members),
            "{id}: the snapshots of {source} as AWS lists them"
        );
        assert_eq!(r["decision"], "keep", "{r}");
        if is_old {
            assert_eq!(
                s(&r["rule"]),
                format!("weekly keep {week_text}"),
                "kept by the weekly rule: {r}"
            );
            let exp = DateTime::parse_from_rfc3339(s(&r["expires"]))
                .unwrap()
                .with_timezone(&Utc);
            assert_eq!(
                exp,
                expected,
                "the retention decision's expiry, not created + 7 days ({})",
                started + TimeDelta::days(7)
            );
        }
        full_ids.insert(id);
    }

    // A 100-column terminal: no line wider, ids cut in the middle alike.
    let mut narrow = emu.rolesnap();
    narrow.env("COLUMNS", "100");
    let out = narrow
        .args(["list", "--plan", p.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in text.lines() {
        assert!(line.chars().count() <= 100, "wider than 100:\n{text}");
    }
    // What is cut uses the room there is.
    assert_eq!(
        text.lines().map(|l| l.chars().count()).max(),
        Some(100),
        "{text}"
    );
    let cells = table_rows(&text);
    assert_eq!(cells.len(), 8, "{text}");
    let mut cut_widths = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for c in &cells {
        let id = &c["id"];
        // Cut in the middle, or at the end where the middle would make two
        // ids look alike (the RDS names).
        let (head, tail) = id
            .split_once('…')
            .unwrap_or_else(|| panic!("{id}: cut\n{text}"));
        let full: Vec<&String> = full_ids
            .iter()
            .filter(|f| f.starts_with(head) && f.ends_with(tail))
            .collect();
        assert_eq!(full.len(), 1, "{id} stands for one point\n{text}");
        seen.insert(full[0].clone());
        cut_widths.insert(id.chars().count());
        let full = full[0];
        if old.values().any(|m| full.contains(m.first().unwrap())) {
            assert_eq!(
                c["expires"],
                expected.format("%Y-%m-%d %H:%M").to_string(),
                "{text}"
            );
            assert!(c["kept by"].starts_with("weekly"), "{text}");
        }
    }
    assert_eq!(seen, full_ids, "every point once, each told apart\n{text}");
    assert_eq!(cut_widths.len(), 1, "one width for every id\n{text}");
    golden::check("list-100-columns.txt", &text);

    // --wide: every id whole, the table as wide as it needs.
    let mut wide = emu.rolesnap();
    wide.env("COLUMNS", "100");
    let out = wide
        .args(["list", "--plan", p.to_str().unwrap(), "--wide"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    for id in &full_ids {
        assert!(text.contains(id.as_str()), "{id} whole\n{text}");
    }
    assert!(text.lines().any(|l| l.chars().count() > 100), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_dry_run_table_says_what_the_real_prune_then_deletes() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan(
        "nightly",
        PlanText::new().retention("days = 7").databases(false),
    );
    let first = emu.backup_completed(&p)[0]["job"].as_u64().unwrap();
    let second = emu.backup_completed(&p)[0]["job"].as_u64().unwrap();
    let old = points_of(&emu, EAST, first).await;
    let aged: Vec<String> = old.values().flatten().cloned().collect();
    emu.age(ALPHA, EAST, &aged, 10);
    let before = emu.snapshots("alpha", EAST).await;

    let dry = emu.run(&["prune", "--plan", p.to_str().unwrap(), "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(dry.stdout.contains("nothing was deleted"), "{}", dry.stdout);
    assert_eq!(
        emu.snapshots("alpha", EAST).await,
        before,
        "a dry run deletes nothing"
    );
    let rows = table_rows(&dry.stdout);
    assert_eq!(rows.len(), 4, "{}", dry.stdout);
    let mut would: BTreeSet<String> = BTreeSet::new();
    for r in &rows {
        for col in ["decision", "rule", "age", "expires", "created", "point"] {
            assert!(
                !r[col].is_empty() && r[col] != "-",
                "{col} filled: {r:?}\n{}",
                dry.stdout
            );
        }
        if r["decision"] == "DELETE" {
            assert_eq!(r["expires"], "expired", "{r:?}");
            assert!(r["age"].starts_with("10d"), "{r:?}");
            assert!(r["rule"].contains("7d"), "{r:?}");
            would.extend(r["point"].split('+').map(str::to_string));
        } else {
            assert_eq!(r["decision"], "keep", "{r:?}");
            // Kept points expire in the future (the retention replayed).
            assert!(r["expires"].contains("(in "), "{r:?}");
        }
    }
    let summary = dry
        .stdout
        .lines()
        .find(|l| l.contains("point(s):"))
        .unwrap_or_else(|| panic!("a summary line\n{}", dry.stdout));
    let counted = |what: &str| -> usize {
        let re = regex::Regex::new(&format!(r"(\d+) {what}")).unwrap();
        re.captures(summary).unwrap()[1].parse().unwrap()
    };
    assert_eq!(counted("kept"), 2, "{summary}");
    assert_eq!(counted("would be deleted"), 2, "{summary}");
    golden::check("prune-dry-run.txt", &dry.stdout);

    // The real prune deletes exactly those, as AWS then lists.
    let run = emu.run(&["prune", "--plan", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let after = emu.snapshots("alpha", EAST).await;
    let gone: BTreeSet<String> = before
        .keys()
        .filter(|id| !after.contains_key(*id))
        .cloned()
        .collect();
    assert_eq!(gone, would, "deleted = the dry run's DELETE rows");
    let expected: BTreeSet<String> = aged.iter().cloned().collect();
    assert_eq!(gone, expected, "the first job's points");
    assert_eq!(points_of(&emu, EAST, second).await.len(), 2);
}

/// A line-collecting reader of a child's stderr.
fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            l.lock().unwrap().push(line);
        }
    });
    lines
}

/// Waits (90 s at most) for a line matching `re`; returns its first group.
fn wait_line(lines: &Arc<Mutex<Vec<String>>>, what: &str, re: &regex::Regex) -> String {
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let found = lines.lock().unwrap().iter().find_map(|l| {
            re.captures(l)
                .map(|c| c.get(1).map_or("", |m| m.as_str()).to_string())
        });
        if let Some(g) = found {
            return g;
        }
        if Instant::now() >= until {
            let seen = lines.lock().unwrap().clone();
            panic!("no {what} line: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_progress_on_a_pipe_says_each_phase_in_flight_and_done() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", PlanText::new().databases(false).copy(WEST, ""));
    // The snapshots stay pending until released, and so do their copies.
    for region in [EAST, WEST] {
        emu.control(
            "POST",
            "/_harness/hold",
            Some(json!({"account": ALPHA, "region": region, "kinds": ["snapshot"]})),
        );
    }
    let mut cmd = emu.rolesnap();
    cmd.env("ROLESNAP_PROGRESS_SECS", "0.3")
        .args([
            "backup",
            "--plan",
            p.to_str().unwrap(),
            "--poll-interval",
            "0.2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildGuard(cmd.spawn().unwrap());
    let lines = collect(child.stderr.take().unwrap());

    // Snapshot phase done, all waited for: AWS lists them pending.
    let waiting = regex::Regex::new(
        r"^progress: backup (\d\d:\d\d:\d\d): snapshot 2/2 started · wait 2 in flight · done 0/2$",
    )
    .unwrap();
    let t1 = wait_line(&lines, "backup wait", &waiting);
    let pending: Vec<String> = emu
        .ec2("alpha", EAST)
        .await
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap()
        .snapshots()
        .iter()
        .filter(|s| s.state().map(|x| x.as_str()) == Some("pending"))
        .map(|s| s.snapshot_id().unwrap().to_string())
        .collect();
    assert_eq!(pending.len(), 4, "two sets of two, pending in AWS");
    emu.control(
        "POST",
        "/_harness/release",
        Some(json!({"ids": pending, "account": ALPHA})),
    );
    // Copy phase: the copies in flight, none done, while AWS has them pending.
    let copying =
        regex::Regex::new(r"^progress: copy (\d\d:\d\d:\d\d): 2 in flight · done 0/2$").unwrap();
    let t2 = wait_line(&lines, "copy in flight", &copying);
    let copies: Vec<(String, Tags)> = emu
        .snapshots("alpha", WEST)
        .await
        .into_iter()
        .filter(|(_, t)| t.contains_key("_GX_COPY_OF_"))
        .collect();
    assert_eq!(copies.len(), 4, "{copies:?}");
    emu.control("POST", "/_harness/release", Some(json!({"all": true})));
    let status = child.wait().unwrap();
    let all = lines.lock().unwrap().clone();
    assert!(status.success(), "{all:?}");
    // Each phase ends with its last line: everything done.
    let last = |phase: &str| {
        all.iter()
            .rev()
            .find(|l| l.starts_with(&format!("progress: {phase} ")))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        last("backup").ends_with("snapshot 2/2 started · wait 0 in flight · done 2/2"),
        "{all:?}"
    );
    assert!(
        last("copy").ends_with(": 0 in flight · done 2/2"),
        "{all:?}"
    );
    // Elapsed time goes on: the copy line is later than the wait line.
    assert!(t2 >= t1, "{t1} then {t2}: {all:?}");
    // Nothing but progress and nothing on a terminal's bar escape codes.
    assert!(all.iter().all(|l| !l.contains('\u{1b}')), "{all:?}");

    // ROLESNAP_PROGRESS_SECS=0: no progress lines.
    let mut quiet = emu.rolesnap();
    let out = quiet
        .env("ROLESNAP_PROGRESS_SECS", "0")
        .args([
            "backup",
            "--plan",
            p.to_str().unwrap(),
            "--poll-interval",
            "0.2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("progress:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_leaves_the_selection_tags_off_unless_keep_all_tags() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", PlanText::new().databases(false));
    emu.backup_completed(&p);
    let app1 = emu.nightly_instances("alpha", EAST)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ec2 = emu.ec2("alpha", EAST).await;
    let tags_of_instance = |id: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_instances()
                .instance_ids(id)
                .send()
                .await
                .unwrap();
            tags_of(out.reservations()[0].instances()[0].tags())
        }
    };
    let source_tags = tags_of_instance(app1.clone()).await;
    assert_eq!(source_tags["Backup"], "nightly");

    let restore = |extra: &[&str]| {
        let mut args = vec![
            "restore",
            "instance",
            "--plan",
            p.to_str().unwrap(),
            "--tenant",
            "alpha",
            "--instance",
            &app1,
            "--poll-interval",
            "0.2",
        ];
        args.extend_from_slice(extra);
        emu.run(&args)
    };
    let instance_of = |out: &str| -> String {
        regex::Regex::new(r"\bi-[0-9a-f]{8,17}\b")
            .unwrap()
            .find_iter(out)
            .map(|m| m.as_str().to_string())
            .find(|i| *i != app1)
            .unwrap_or_else(|| panic!("a new instance id in\n{out}"))
    };
    // The default: the source's tags but the plan's selection tag, said so.
    let run = restore(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.lines().any(|l| l.starts_with("note: tags:")
            && l.contains("except the plan's selection tags (Backup=nightly)")),
        "{run}"
    );
    let plain = instance_of(&run.stdout);
    let t = tags_of_instance(plain.clone()).await;
    assert!(!t.contains_key("Backup"), "{t:?}");
    assert_eq!(t["Tenant"], source_tags["Tenant"]);

    // --keep-all-tags: everything, said so.
    let run = restore(&["--keep-all-tags"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("note: tags: --keep-all-tags") && l.contains("Backup=nightly")),
        "{run}"
    );
    let all = instance_of(&run.stdout);
    let t = tags_of_instance(all.clone()).await;
    assert_eq!(t.get("Backup").map(String::as_str), Some("nightly"));

    // The next backup takes the one with the selection tag, not the other.
    let job = emu.backup_completed(&p)[0]["job"].as_u64().unwrap();
    let sources: BTreeSet<String> = points_of(&emu, EAST, job).await.into_keys().collect();
    assert!(sources.contains(&all), "{sources:?}");
    assert!(!sources.contains(&plain), "{sources:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_restore_exits_5_and_names_what_it_refused() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", PlanText::new().databases(false));
    emu.backup_completed(&p);
    let inst = emu.tenant("alpha")["resources"][EAST]["instances"]
        .as_array()
        .unwrap()
        .clone();
    let app1 = &inst[0];
    let vol = s(&app1["volumes"][1]["id"]).to_string();
    let device = s(&app1["volumes"][1]["device"]).to_string();
    let target = s(&app1["id"]).to_string();
    let run = emu.run(&[
        "restore",
        "volume",
        "--plan",
        p.to_str().unwrap(),
        "--tenant",
        "alpha",
        "--volume",
        &vol,
        "--attach-to",
        &target,
        "--device",
        &device,
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(run.code, 5, "{run}");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("refused") && all.contains(&device) && all.contains(&target),
        "{run}"
    );
    assert!(
        all.contains("alpha") && all.contains(EAST),
        "tenant and region: {run}"
    );
    assert_eq!(
        emu.count_calls(ALPHA, "CreateVolume", "ok")
            + emu.count_calls(ALPHA, "CreateVolume", "error"),
        0,
        "nothing made"
    );
    // The exit code is documented where an operator looks first.
    let help = emu.run(&["--help"]);
    assert!(
        help.stdout.contains("5 refused"),
        "--help lists exit code 5: {}",
        help.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_names_the_probe_aws_answered_neither_way() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let p = emu.write_plan("nightly", PlanText::new().databases(false));
    emu.fault(
        json!({"action": "CreateSnapshots", "code": "OptInRequired", "status": 400,
                     "message": "probe-boom", "account": ALPHA}),
    );
    let run = emu.run(&["validate", "--plan", p.to_str().unwrap()]);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("alpha"))
        .unwrap_or_else(|| panic!("{run}"));
    let re = regex::Regex::new(
        r"OK \(1 of \d+ probes undecided in us-east-1: ec2:CreateSnapshots \(OptInRequired: probe-boom\)\)",
    )
    .unwrap();
    assert!(re.is_match(&run.stdout), "{run}");
    assert!(line.contains("undecided"), "{line}");
    // The probe reached AWS: the answer is AWS's, not a guess.
    assert_eq!(emu.count_calls(ALPHA, "CreateSnapshots", "injected"), 1);
}

// ------------------------------------------------------------ golden files

fn rolesnap_out(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rolesnap"))
        .args(args)
        .env_remove("ROLESNAP_METRICS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completion_scripts_and_the_man_page_match_their_golden_files() {
    for shell in ["bash", "zsh", "fish"] {
        golden::check_verbatim(
            &format!("completions.{shell}"),
            &rolesnap_out(&["completions", shell]),
        );
    }
    golden::check_verbatim("rolesnap.1", &rolesnap_out(&["man"]));
    // The bash script completes as README "Shell integration" says.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("rolesnap.bash");
    std::fs::write(&script, rolesnap_out(&["completions", "bash"])).unwrap();
    for (words, cword, cur, prev, want) in [
        ("rolesnap pr", 1, "pr", "rolesnap", "prune"),
        ("rolesnap prune --d", 2, "--d", "prune", "--dry-run"),
        ("rolesnap list --w", 2, "--w", "list", "--wide"),
        (
            "rolesnap restore instance --keep",
            3,
            "--keep",
            "instance",
            "--keep-all-tags",
        ),
    ] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {} && COMP_WORDS=({words}) && COMP_CWORD={cword} && \
                 _rolesnap rolesnap {cur} {prev} && echo \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .unwrap();
        let got = String::from_utf8_lossy(&out.stdout);
        assert!(
            got.split_whitespace().any(|w| w == want),
            "`{words}<Tab>` offers {want}: {got}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rolesnap"))
        .args(["man", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    for page in [
        "rolesnap-list.1",
        "rolesnap-prune.1",
        "rolesnap-restore-instance.1",
    ] {
        golden::check_verbatim(
            page,
            &std::fs::read_to_string(dir.path().join(page)).unwrap(),
        );
    }
}

/// `systemd-analyze verify` of the shipped units, where systemd-analyze is
/// installed: every key known, the command (the binary built here, put in
/// place of /usr/local/bin/rolesnap) executable, `/bin/kill` for reload, and
/// the `Documentation=man:rolesnap-agent(1)` page found among the pages
/// `rolesnap man --out` writes. Starting the units needs systemd as PID 1,
/// which this test does not have (README "systemd").
#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let probe = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!("SKIP systemd-analyze verify: systemd-analyze is not installed here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rolesnap"))
        .args(["man", "--out"])
        .arg(man.join("man1"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let src = crate::harness::repo_root().join("deploy/systemd");
    let names = [
        "rolesnap-agent.service",
        "rolesnap-once.service",
        "rolesnap-once.timer",
    ];
    for name in names {
        let text = std::fs::read_to_string(src.join(name)).unwrap();
        std::fs::write(
            dir.path().join(name),
            text.replace("/usr/local/bin/rolesnap", env!("CARGO_BIN_EXE_rolesnap")),
        )
        .unwrap();
    }
    let verify = |manpath: &std::path::Path| {
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .args(names.iter().map(|n| dir.path().join(n)))
            .env("MANPATH", manpath)
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, text) = verify(&man);
    // An unknown key is only a warning (exit 0): nothing may be printed.
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
    // Without the man pages, the Documentation= reference fails: the check
    // above did look for them.
    let (ok, text) = verify(&dir.path().join("no-man"));
    assert!(!ok && text.contains("rolesnap-agent(1)"), "{text}");
}

/// `kubectl kustomize deploy/kubernetes` (offline, where kubectl is
/// installed) renders what README "Kubernetes" applies: every object in
/// namespace `rolesnap`, the StatefulSet with the kustomization's image. The
/// StatefulSet's `podManagementPolicy` is immutable: the manifest and the
/// README say how to apply over an existing one.
#[test]
fn the_kustomization_renders_and_says_how_to_replace_the_statefulset() {
    let root = crate::harness::repo_root();
    let orphan = "kubectl -n rolesnap delete statefulset rolesnap --cascade=orphan";
    for f in ["deploy/kubernetes/statefulset.yaml", "README.md"] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        assert!(text.contains(orphan), "{f} says `{orphan}`");
    }
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", "deploy/kubernetes"])
        .current_dir(&root)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIP kubectl kustomize: kubectl is not installed here ({e})");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<&str> = text.split("\n---\n").collect();
    assert!(docs.len() >= 5, "{text}");
    for d in &docs {
        assert!(
            d.lines().any(|l| l == "  namespace: rolesnap"),
            "namespaced: {d}"
        );
    }
    let sts = docs
        .iter()
        .find(|d| d.contains("kind: StatefulSet"))
        .unwrap_or_else(|| panic!("a StatefulSet: {text}"));
    assert!(sts.contains("podManagementPolicy: Parallel"), "{sts}");
    // The image the kustomization's `images:` entry names (README: set it
    // to the registry the cluster pulls from).
    let k = std::fs::read_to_string(root.join("deploy/kubernetes/kustomization.yaml")).unwrap();
    let field = |key: &str| {
        k.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("kustomization.yaml: {key}"))
    };
    let image = format!("image: {}:{}", field("newName:"), field("newTag:"));
    assert!(sts.contains(&image), "{image}: {sts}");
}
