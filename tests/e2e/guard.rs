//! Guardrails (issue 15): every bad or dangerous input is refused with exit 2
//! and `FILE:LINE: KEY: message` (or `FILE: message`) before any AWS call, and
//! a log that cannot be written is never silent.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::harness::Emulator;

/// A plan whose lines are known: 1 `[plan]`, 2 name, 3 id, 5 `[[group]]`,
/// 6 name, 7 tenants, 8 regions. Cases append tables from line 10 on.
const BASE: &str = "[plan]\nname = \"guard\"\nid = 9\n\n[[group]]\nname = \"web\"\ntenants = [\"alpha\"]\nregions = [\"us-east-1\"]\n";

/// What a case puts where rolesnap will read it.
enum Content {
    Text(String),
    Bytes(Vec<u8>),
    /// An existing path (a device, a FIFO, a directory, /etc/passwd).
    Path(PathBuf),
}

struct Case {
    what: &'static str,
    plan: Content,
    /// The accounts file given with `--accounts` (default: the good one).
    accounts: Option<Content>,
    /// Expected in stderr: `FILE:LINE: KEY: message` or `FILE: message`,
    /// with `{plan}` / `{accounts}` standing for the files' paths.
    want: String,
}

fn plan_case(what: &'static str, plan: String, want: &str) -> Case {
    Case {
        what,
        plan: Content::Text(plan),
        accounts: None,
        want: want.to_string(),
    }
}

fn accounts_case(what: &'static str, accounts: Content, want: &str) -> Case {
    Case {
        what,
        plan: Content::Text(BASE.to_string()),
        accounts: Some(accounts),
        want: want.to_string(),
    }
}

/// Writes `c` at `path` unless it names an existing path; returns the path to use.
fn place(c: &Content, path: PathBuf) -> PathBuf {
    match c {
        Content::Text(t) => {
            std::fs::write(&path, t).unwrap();
            path
        }
        Content::Bytes(b) => {
            std::fs::write(&path, b).unwrap();
            path
        }
        Content::Path(p) => p.clone(),
    }
}

fn accounts_text(emu: &Emulator, ext_alpha: &str, extra: &str) -> String {
    format!(
        "[admin]\nregion = \"us-east-1\"\n\n[[tenant]]\nname = \"alpha\"\nrole-arn = \"{}\"\nexternal-id = \"{ext_alpha}\"\nregions = [\"us-east-1\", \"us-west-2\"]\n{extra}",
        emu.tenant("alpha")["role_arn"].as_str().unwrap()
    )
}

fn total_calls(emu: &Emulator) -> u64 {
    emu.control("GET", "/_harness/calls", None)["total"]
        .as_u64()
        .unwrap()
}

#[test]
fn every_bad_input_exits_2_with_file_line_and_key_and_sends_nothing_to_aws() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta"], &[]);
    let alpha_arn = emu.tenant("alpha")["role_arn"]
        .as_str()
        .unwrap()
        .to_string();
    let fifo = emu.path("fifo.toml");
    let made_fifo = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let a_dir = emu.path("a-directory.toml");
    std::fs::create_dir(&a_dir).unwrap();
    let ext = emu.tenant("alpha")["external_id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut cases = vec![
        plan_case(
            "retention days = 0",
            format!("{BASE}\n[retention]\ndays = 0\n"),
            "{plan}:11: retention.days: days = 0 keeps no point by age",
        ),
        plan_case(
            "count = 0 with allow-delete-last",
            format!("{BASE}\n[retention]\ncount = 0\nallow-delete-last = true\n"),
            "{plan}:11: retention.count: count = 0 with allow-delete-last = true",
        ),
        plan_case(
            "every rule 0",
            format!("{BASE}\n[retention]\ndaily = 0\nmonthly = 0\n"),
            "{plan}:11: retention: every keep rule is 0",
        ),
        plan_case(
            "copy retention days = 0",
            format!("{BASE}\n[[copy]]\nregion = \"us-west-2\"\nretention = {{ days = 0 }}\n"),
            "{plan}:12: copy.retention.days: days = 0",
        ),
        plan_case(
            "allow-empty in other words",
            format!("{BASE}\n[retention]\ndays = 0\nallow-empty = \"ok\"\n"),
            "{plan}:12: retention.allow-empty: must be exactly \"I understand\"",
        ),
        plan_case(
            "cron 30 February",
            format!("{BASE}\n[schedule]\ncron = \"0 0 30 2 *\"\n"),
            "{plan}:11: schedule.cron: `0 0 30 2 *` never runs",
        ),
        plan_case(
            "cron 31 April",
            format!("{BASE}\n[schedule]\ncron = \"0 0 31 4 *\"\n"),
            "{plan}:11: schedule.cron: `0 0 31 4 *` never runs",
        ),
        plan_case(
            "cron in a past year",
            format!("{BASE}\n[schedule]\ncron = \"0 0 0 1 1 * 2020\"\n"),
            "{plan}:11: schedule.cron: `0 0 0 1 1 * 2020` never runs",
        ),
        plan_case(
            "regions = []",
            BASE.replace("regions = [\"us-east-1\"]", "regions = []"),
            "{plan}:8: group.regions: an empty list",
        ),
        plan_case(
            "copy to the group's own region",
            format!("{BASE}\n[[copy]]\nregion = \"us-east-1\"\n"),
            "{plan}:11: copy.region: `us-east-1` is a source region of group `web`",
        ),
        plan_case(
            "copy to a tenant default region",
            format!(
                "{}\n[[copy]]\nregion = \"us-west-2\"\n",
                BASE.replace("regions = [\"us-east-1\"]\n", "")
            ),
            "{plan}:10: copy.region: `us-west-2` is a source region of group `web` (a default region of tenant `alpha`",
        ),
        plan_case(
            "kms-key-id that is a shell command",
            format!("{BASE}\n[[copy]]\nregion = \"us-west-2\"\nkms-key-id = \"; rm -rf /\"\n"),
            "{plan}:12: copy.kms-key-id: `; rm -rf /` is not a KMS key",
        ),
        plan_case(
            "plan name with NUL",
            BASE.replace("name = \"guard\"", "name = \"gu\\u0000ard\""),
            "{plan}:2: plan.name: contains the control character U+0000",
        ),
        plan_case(
            "plan name with a character AWS refuses in tags",
            BASE.replace("name = \"guard\"", "name = \"guard*\""),
            "{plan}:2: plan.name: `guard*`: `*` is not allowed in an AWS tag value",
        ),
        plan_case(
            "group name of 300 characters",
            BASE.replace("name = \"web\"", &format!("name = \"{}\"", "w".repeat(300))),
            "{plan}:6: group.name: 300 characters; AWS tag values hold at most 256",
        ),
        plan_case(
            "accounts key naming /dev/zero",
            format!("accounts = \"/dev/zero\"\n{BASE}"),
            "/dev/zero: is a device; a configuration file must be a regular file",
        ),
        plan_case(
            "empty plan",
            String::new(),
            "{plan}: empty (only blank lines and comments)",
        ),
        plan_case(
            "comments-only plan",
            "# a plan\n\n# to come\n".into(),
            "{plan}: empty (only blank lines and comments)",
        ),
        Case {
            what: "binary garbage",
            plan: Content::Bytes(b"[plan]\n\x7fELF\x00\x02\x01".to_vec()),
            accounts: None,
            want: "{plan}:2: not a text file (a NUL byte)".into(),
        },
        Case {
            what: "invalid UTF-8",
            plan: Content::Bytes(b"[plan]\nname = \"caf\xe9\"\nid = 1\n".to_vec()),
            accounts: None,
            want: "{plan}:2: not UTF-8 text".into(),
        },
        Case {
            what: "plan is a directory",
            plan: Content::Path(a_dir.clone()),
            accounts: None,
            want: "{plan}: is a directory; a configuration file must be a regular file".into(),
        },
        Case {
            what: "missing plan",
            plan: Content::Path(emu.path("no-such-plan.toml")),
            accounts: None,
            want: "{plan}: cannot read: No such file or directory".into(),
        },
        plan_case(
            "plan without [plan]",
            "[[group]]\nname = \"web\"\ntenants = [\"alpha\"]\n".into(),
            "{plan}: plan: missing [plan] table",
        ),
        accounts_case(
            "accounts = /dev/zero",
            Content::Path("/dev/zero".into()),
            "/dev/zero: is a device; a configuration file must be a regular file",
        ),
        accounts_case(
            "accounts is a directory",
            Content::Path(a_dir.clone()),
            "{accounts}: is a directory",
        ),
        accounts_case(
            "accounts = /etc/passwd",
            Content::Text("root:x:0:0:root:/root:/bin/bash\n".into()),
            "{accounts}:1: not valid TOML",
        ),
        accounts_case(
            "accounts without [admin]",
            Content::Text(format!(
                "[[tenant]]\nname = \"alpha\"\nrole-arn = \"{alpha_arn}\"\n"
            )),
            "{accounts}: admin: missing [admin] table",
        ),
        accounts_case(
            "tenant without role-arn",
            Content::Text(format!(
                "{}\n[[tenant]]\nname = \"beta\"\n",
                accounts_text(&emu, &ext, "")
            )),
            "{accounts}:10: tenant.role-arn: missing; this key is required",
        ),
        accounts_case(
            "external-id = \"\"",
            Content::Text(accounts_text(&emu, "", "")),
            "{accounts}:7: tenant.external-id: empty",
        ),
        accounts_case(
            "one role under two tenant names",
            Content::Text(accounts_text(
                &emu,
                &ext,
                &format!("\n[[tenant]]\nname = \"alpha-again\"\nrole-arn = \"{alpha_arn}\"\n"),
            )),
            "{accounts}:12: tenant.role-arn: ",
        ),
    ];
    if made_fifo {
        cases.push(accounts_case(
            "accounts is a FIFO",
            Content::Path(fifo.clone()),
            "{accounts}: is a FIFO",
        ));
    }

    emu.control("DELETE", "/_harness/calls", None);
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let plan = place(&case.plan, emu.path(&format!("case-{i}.toml")));
        let accounts = case
            .accounts
            .as_ref()
            .map(|a| place(a, emu.path(&format!("case-{i}-accounts.toml"))));
        let want = case
            .want
            .replace("{plan}", &plan.display().to_string())
            .replace(
                "{accounts}",
                &accounts
                    .as_deref()
                    .unwrap_or(Path::new("-"))
                    .display()
                    .to_string(),
            );
        let mut commands: Vec<Vec<String>> = vec![vec!["backup".into(), "--plan".into()]];
        // The agent reads a directory as a directory of plans (a case below).
        if !plan.is_dir() {
            commands.push(vec!["agent".into(), "--once".into(), "--plans".into()]);
        }
        for args in &mut commands {
            args.push(plan.display().to_string());
            if let Some(a) = &accounts {
                args.push("--accounts".into());
                args.push(a.display().to_string());
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = emu.run(&argv);
            let ok = run.code == 2
                && run.stderr.contains(&format!("error: {want}"))
                && !run.stderr.contains("(toml)")
                && !run.stderr.contains("(file)");
            if !ok {
                failures.push(format!(
                    "{} [{}]: want exit 2 and `{want}`, got {run}",
                    case.what, args[0]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(
        total_calls(&emu),
        0,
        "no AWS call after a configuration error"
    );
    // The emulator was reachable all along: a good plan does call it.
    let good = emu.write_plan("good", BASE);
    let run = emu.run(&["discover", "--plan", good.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run}");
    assert!(total_calls(&emu) > 0);
}

/// A directory rolesnap cannot create files in, even as root: a 0555
/// directory, or /sys when permissions do not stop this user.
fn unwritable_dir(emu: &Emulator) -> PathBuf {
    let d = emu.path("read-only-logs");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(d.join("probe"), "x").is_err() {
        return d;
    }
    let _ = std::fs::remove_file(d.join("probe"));
    PathBuf::from("/sys")
}

#[test]
fn logs_that_cannot_be_written_stop_the_start_or_fail_the_exit_code() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let plan = emu.write_plan(
        "guard",
        format!("{BASE}include-tags = [\"Backup=nightly\"]\n"),
    );
    let p = plan.to_str().unwrap();
    emu.control("DELETE", "/_harness/calls", None);

    // A read-only log directory: exit 2 at start, with the path and the OS error.
    let ro = unwritable_dir(&emu);
    for args in [
        vec!["backup", "--plan", p],
        vec!["agent", "--once", "--plans", p],
    ] {
        let out = emu
            .rolesnap()
            .env("ROLESNAP_LOG_DIR", &ro)
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{}/cvd.log", ro.display()))
                && (stderr.contains("Permission denied") || stderr.contains("Read-only")),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(total_calls(&emu), 0, "nothing sent with an unusable log");

    if !Path::new("/dev/full").exists() {
        eprintln!("no /dev/full here: the full-device half is skipped");
        return;
    }
    // cvd.log on a full device: the start line fails, exit 2, no AWS call.
    let full_cvd = emu.path("full-cvd");
    std::fs::create_dir(&full_cvd).unwrap();
    std::os::unix::fs::symlink("/dev/full", full_cvd.join("cvd.log")).unwrap();
    let out = emu
        .rolesnap()
        .env("ROLESNAP_LOG_DIR", &full_cvd)
        .args(["backup", "--plan", p])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cvd.log") && stderr.contains("No space left on device"),
        "{stderr}"
    );
    assert_eq!(total_calls(&emu), 0, "nothing sent when cvd.log is full");

    // vsbkp.log on a full device: the backup runs, the lost lines are
    // reported on stderr and the exit code is not 0.
    let full_bkp = emu.path("full-bkp");
    std::fs::create_dir(&full_bkp).unwrap();
    std::os::unix::fs::symlink("/dev/full", full_bkp.join("vsbkp.log")).unwrap();
    let out = emu
        .rolesnap()
        .env("ROLESNAP_LOG_DIR", &full_bkp)
        .args(["backup", "--plan", p, "--no-copy", "--poll-interval", "0.2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot write log file {}/vsbkp.log: No space left on device",
            full_bkp.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("log line(s) could not be written"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("cannot write log file").count(),
        1,
        "one report per file, not one per line: {stderr}"
    );
    assert!(
        emu.count_calls("222222222222", "CreateSnapshots", "ok") >= 1,
        "the backup itself ran: {:?}",
        emu.calls()
    );
    // The lost lines are counted in the job itself: its report and its
    // ledger record say so, and a job that made every point is not
    // "Completed" with its audit trail incomplete.
    let jobs = emu.run(&["jobs", "-o", "json"]).json();
    let backup = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_type"] == "Snap Backup")
        .expect("the backup job is recorded")
        .clone();
    assert_eq!(
        backup["status"], "Completed w/ one or more errors",
        "{backup}"
    );
    assert!(
        backup["error"]
            .as_str()
            .unwrap_or_default()
            .contains("log line(s) could not be written"),
        "{backup}"
    );
    let out = emu
        .rolesnap()
        .env("ROLESNAP_LOG_DIR", &full_bkp)
        .args([
            "backup",
            "--plan",
            p,
            "--no-copy",
            "--poll-interval",
            "0.2",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["lost_log_lines"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    assert_eq!(
        report["status"], "Completed w/ one or more errors",
        "{report}"
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn state_and_log_directories_are_private_whatever_the_umask() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let plan = emu.write_plan("guard", BASE);
    for (group, dir_mode, file_mode) in [(false, 0o700, 0o600), (true, 0o750, 0o640)] {
        let logs = emu.path(&format!("logs-{group}"));
        let state = emu.path(&format!("state-{group}/nested"));
        let mut cmd = emu.rolesnap();
        cmd.env("ROLESNAP_LOG_DIR", &logs)
            .env("ROLESNAP_STATE_DIR", &state);
        let program = cmd.get_program().to_owned();
        let mut sh = std::process::Command::new("sh");
        sh.arg("-c")
            .arg("umask 000; exec \"$@\"")
            .arg("sh")
            .arg(program)
            .args(["backup", "--dry-run", "--plan", plan.to_str().unwrap()]);
        if group {
            sh.arg("--group-access");
        }
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        sh.current_dir(emu.dir.path());
        let out = sh.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mode(&logs), dir_mode, "log directory, group={group}");
        assert_eq!(mode(&state), dir_mode, "state directory, group={group}");
        assert_eq!(
            mode(&logs.join("cvd.log")),
            file_mode,
            "log file, group={group}"
        );
    }
}

#[test]
fn an_agent_given_an_empty_plan_directory_refuses_to_start() {
    let emu = Emulator::start();
    let dir = emu.path("no-plans");
    std::fs::create_dir(&dir).unwrap();
    emu.control("DELETE", "/_harness/calls", None);
    let run = emu.run(&["agent", "--once", "--plans", dir.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("no plan file"), "{run}");
    assert_eq!(total_calls(&emu), 0);
}
