//! Shell integration and deployment recipes: completion scripts and man
//! pages generated from the CLI, the hardened systemd units, the Kubernetes
//! manifests, the container image. No emulator: these run the binary's
//! offline commands and read the files under deploy/.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::repo_root;

fn rolesnap(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rolesnap"))
        .args(args)
        .env_remove("ROLESNAP_METRICS")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether `prog` runs on this machine (`prog --version` or the given probe).
fn have(prog: &str, probe: &[&str]) -> bool {
    Command::new(prog)
        .args(probe)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The subcommands `rolesnap --help` lists (so a new one is checked too).
fn subcommands() -> Vec<String> {
    let (code, help, _) = rolesnap(&["--help"]);
    assert_eq!(code, 0);
    let mut names = vec![];
    let mut inside = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with("  ") {
                break;
            }
            // A wrapped description continues further in.
            if line[2..].starts_with(' ') {
                continue;
            }
            let name = line.split_whitespace().next().unwrap_or_default();
            if !name.is_empty() && name != "help" {
                names.push(name.to_string());
            }
        }
    }
    for must in [
        "backup",
        "vault-copy",
        "drill",
        "report",
        "agent",
        "policy",
        "completions",
        "man",
    ] {
        assert!(names.iter().any(|n| n == must), "{must} in {names:?}");
    }
    names
}

#[test]
fn completion_scripts_name_every_subcommand() {
    let subs = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, err) = rolesnap(&["completions", shell]);
        assert_eq!(code, 0, "completions {shell}: {err}");
        for s in &subs {
            assert!(script.contains(s.as_str()), "{shell} script lacks `{s}`");
        }
        // Flags of a subcommand are completed too.
        assert!(script.contains("wait-timeout"), "{shell}: backup flags");
    }
    let (_, bash, _) = rolesnap(&["completions", "bash"]);
    assert!(
        bash.contains("complete -F _rolesnap"),
        "bash registers _rolesnap"
    );
    assert!(bash.contains("rolesnap__vault__copy") || bash.contains("vault-copy"));
    let (_, zsh, _) = rolesnap(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef rolesnap"));
    let (_, fish, _) = rolesnap(&["completions", "fish"]);
    assert!(fish.contains("complete -c rolesnap"));
    // When bash is here: the script loads without error.
    if have("bash", &["--version"]) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("rolesnap.bash");
        std::fs::write(&f, &bash).unwrap();
        let st = Command::new("bash")
            .args([
                "-c",
                &format!("source {} && complete -p rolesnap", f.display()),
            ])
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        assert!(String::from_utf8_lossy(&st.stdout).contains("_rolesnap"));
    }
    let (code, _, err) = rolesnap(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {err}");
}

/// Checks a roff page: a `.TH` header first and a NAME section; when groff is
/// installed, it renders without a warning.
fn check_roff(page: &str, title: &str) {
    // clap_mangen opens with the `Aq` (apostrophe) string definition for
    // groff and other roff implementations (`.ie` / `.el`), then the title.
    let first = page
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or_default();
    assert!(
        first.starts_with(&format!(".TH {title} 1")),
        "page starts with .TH {title}: {first}"
    );
    assert!(page.contains(".SH NAME"), "{title}: NAME section");
    if have("groff", &["--version"]) {
        use std::io::Write;
        let mut child = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "{title}: groff warns: {err}"
        );
    }
}

#[test]
fn man_pages_parse_and_name_every_subcommand() {
    let subs = subcommands();
    let (code, page, err) = rolesnap(&["man"]);
    assert_eq!(code, 0, "{err}");
    check_roff(&page, "rolesnap");
    assert!(page.contains("Snapshot backup"), "the about text");
    for s in &subs {
        // roff escapes '-' as '\-'.
        let escaped = s.replace('-', "\\-");
        assert!(
            page.contains(s.as_str()) || page.contains(&escaped),
            "rolesnap.1 names `{s}`"
        );
    }
    // One page per subcommand (and per restore kind).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let (code, _, err) = rolesnap(&["man", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("man pages into"), "{err}");
    let mut pages = vec!["rolesnap".to_string()];
    pages.extend(subs.iter().map(|s| format!("rolesnap-{s}")));
    pages.push("rolesnap-restore-instance".into());
    for p in &pages {
        let f = out.join(format!("{p}.1"));
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        check_roff(&text, p);
    }
    let backup = std::fs::read_to_string(out.join("rolesnap-backup.1")).unwrap();
    assert!(
        backup.contains("wait\\-timeout"),
        "backup's flags are described"
    );
    // `man` reads it when man-db is installed.
    if have("man", &["--version"]) {
        let o = Command::new("man")
            .args(["-l", out.join("rolesnap-agent.1").to_str().unwrap()])
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("json-events"));
    }
}

/// `[Section] Key=Value` lines of a systemd unit (continuation lines joined);
/// a key set several times keeps every value.
fn parse_unit(path: &Path) -> BTreeMap<(String, String), Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = if pending.is_empty() {
            raw.trim().to_string()
        } else {
            format!("{pending} {}", raw.trim())
        };
        if let Some(l) = line.strip_suffix('\\') {
            pending = l.trim_end().to_string();
            continue;
        }
        pending.clear();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}: not Key=Value: {line}", path.display()));
        out.entry((section.clone(), k.trim().to_string()))
            .or_default()
            .push(v.trim().to_string());
    }
    out
}

/// The hardening every service unit carries (key, value; "" = any value,
/// "=" = the empty value).
const HARDENING: &[(&str, &str)] = &[
    ("ProtectSystem", "strict"),
    ("ReadWritePaths", "/var/lib/rolesnap /var/log/rolesnap"),
    ("NoNewPrivileges", "yes"),
    ("PrivateTmp", "yes"),
    ("ProtectHome", "yes"),
    ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ("SystemCallFilter", "@system-service"),
    ("SystemCallArchitectures", "native"),
    ("CapabilityBoundingSet", "="),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("RestrictNamespaces", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("PrivateDevices", "yes"),
    ("ProtectClock", "yes"),
    ("ProtectHostname", "yes"),
    ("UMask", "0077"),
    ("User", "rolesnap"),
    ("StateDirectory", "rolesnap"),
    ("LogsDirectory", "rolesnap"),
];

#[test]
fn systemd_units_are_hardened_and_rated_ok() {
    let dir = repo_root().join("deploy/systemd");
    for name in ["rolesnap-agent.service", "rolesnap-once.service"] {
        let path = dir.join(name);
        let unit = parse_unit(&path);
        for (key, want) in HARDENING {
            let got = unit
                .get(&("Service".to_string(), key.to_string()))
                .unwrap_or_else(|| panic!("{name}: [Service] {key}= missing"));
            let ok = match *want {
                "" => true,
                "=" => got.iter().any(|v| v.is_empty()),
                w => got.iter().any(|v| v == w),
            };
            assert!(ok, "{name}: {key}={want}, found {got:?}");
        }
        let exec = &unit[&("Service".to_string(), "ExecStart".to_string())][0];
        assert!(
            exec.contains("--state-dir /var/lib/rolesnap")
                && exec.contains("--log-dir /var/log/rolesnap"),
            "{name}: ExecStart writes only where ReadWritePaths allows: {exec}"
        );
        // The command line the unit runs parses (with the binary built here).
        let mut args: Vec<&str> = exec.split_whitespace().skip(1).collect();
        args.push("--help");
        let (code, _, err) = rolesnap(&args);
        assert_eq!(code, 0, "{name}: ExecStart arguments: {err}");

        if !have("systemd-analyze", &["--version"]) {
            eprintln!("SKIP systemd-analyze security: systemd-analyze is not installed here");
            continue;
        }
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_else(|| {
                panic!(
                    "{name}: no exposure level: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        // "→ Overall exposure level for X.service: 1.2 OK 🙂"
        let score: f64 = line
            .rsplit(": ")
            .next()
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name}: cannot read the score in {line}"));
        eprintln!("{name}: {line}");
        assert!(
            score <= 2.0,
            "{name}: exposure {score} (README records 1.2 OK)"
        );
    }
}

/// A plans directory with one plan that runs once a year (nothing runs
/// during a test) and the shipped accounts file.
fn quiet_plans() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_root().join("plans/accounts.toml"),
        dir.path().join("accounts.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("yearly.toml"),
        "[plan]\nname = \"yearly\"\nid = 9\n\n[schedule]\ncron = \"0 3 1 1 *\"\n\n\
         [[group]]\nname = \"all\"\ntenants = [\"alpha\"]\n",
    )
    .unwrap();
    dir
}

fn get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn metrics_bind_loopback_by_default_and_the_pod_ip_when_allowed() {
    let plans = quiet_plans();
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let logs = work.path().join("logs");
    let agent = |extra: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rolesnap"));
        c.args([
            "agent",
            "--plans",
            plans.path().to_str().unwrap(),
            "--catch-up",
            "0",
        ])
        .args(["--state-dir", state.to_str().unwrap()])
        .args(["--log-dir", logs.to_str().unwrap()])
        .args(extra)
        .env_remove("ROLESNAP_METRICS")
        .env_remove("ROLESNAP_METRICS_ALLOW_REMOTE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    };
    // A non-loopback address is refused unless asked for, from the flag or the
    // environment (as the Kubernetes manifest sets it).
    let out = agent(&["--metrics", "0.0.0.0:9464"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--metrics-allow-remote"), "{err}");
    let out = agent(&[], &[("ROLESNAP_METRICS", "0.0.0.0:9464")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "ROLESNAP_METRICS is --metrics");

    // Allowed: served on every address (the pod IP), /healthz and /metrics,
    // and the JSON events on stdout (what `kubectl logs` shows).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("0.0.0.0:{port}");
    let child = agent(
        &["--json-events"],
        &[
            ("ROLESNAP_METRICS", bind.as_str()),
            ("ROLESNAP_METRICS_ALLOW_REMOTE", "true"),
        ],
    )
    .spawn()
    .unwrap();
    let mut child = crate::harness::ChildGuard(child);
    let addr = format!("127.0.0.1:{port}");
    crate::harness::wait_for("the metrics endpoint", 20, || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    let health = get(&addr, "/healthz");
    assert!(
        health.starts_with("HTTP/1.1 200 ") && health.ends_with("ok\n"),
        "{health}"
    );
    let metrics = get(&addr, "/metrics");
    assert!(
        metrics.contains("rolesnap_plan_config_errors 0"),
        "{metrics}"
    );
    // The image's HEALTHCHECK script, against this agent.
    let check = |metrics: &str| {
        Command::new("bash")
            .arg(repo_root().join("deploy/healthcheck.sh"))
            .env("ROLESNAP_METRICS", metrics)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(check(&bind), Some(0), "healthcheck.sh: healthy");
    assert_eq!(check(&addr), Some(0), "healthcheck.sh: healthy");
    crate::harness::term(&child.0);
    let mut out = String::new();
    use std::io::Read;
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(child.0.wait().unwrap().code(), Some(0), "SIGTERM: exit 0");
    assert_eq!(check(&addr), Some(1), "healthcheck.sh: nothing listens");
    assert!(
        out.contains("\"event\":\"start\""),
        "JSON events on stdout: {out}"
    );
    assert!(out.contains("\"event\":\"stop\""), "{out}");
}

#[test]
fn the_timer_starts_the_once_service() {
    let unit = parse_unit(&repo_root().join("deploy/systemd/rolesnap-once.timer"));
    assert!(unit.contains_key(&("Timer".to_string(), "OnCalendar".to_string())));
    let once = parse_unit(&repo_root().join("deploy/systemd/rolesnap-once.service"));
    let exec = &once[&("Service".to_string(), "ExecStart".to_string())][0];
    assert!(exec.contains(" --once "), "{exec}");
}

fn python() -> String {
    std::env::var("ROLESNAP_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Every YAML document of a manifest, as JSON (PyYAML's safe loader: a
/// dependency of the emulator's moto, so it is there wherever these tests run).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let out = Command::new(python())
        .args([
            "-c",
            "import sys, json, yaml\n\
             print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))",
        ])
        .arg(path)
        .output()
        .expect("python3 (ROLESNAP_PYTHON) with PyYAML");
    assert!(
        out.status.success(),
        "{}: not YAML: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn k8s_dir() -> std::path::PathBuf {
    repo_root().join("deploy/kubernetes")
}

/// (file, document) of every manifest in deploy/kubernetes.
fn manifests() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(k8s_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out = vec![];
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for d in yaml_docs(&f) {
            out.push((name.clone(), d));
        }
    }
    out
}

/// The numeric USER of the container image.
fn image_uid() -> (u64, u64) {
    let text = std::fs::read_to_string(repo_root().join("deploy/Containerfile")).unwrap();
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the Containerfile sets USER");
    let (u, g) = user.trim().split_once(':').expect("USER UID:GID");
    (
        u.parse().expect("a numeric UID"),
        g.parse().expect("a numeric GID"),
    )
}

fn check_pod(file: &str, kind: &str, pod: &Value) {
    let (uid, gid) = image_uid();
    let sc = &pod["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{file}: pod runAsNonRoot");
    assert_eq!(
        sc["runAsUser"], uid,
        "{file}: pod runAsUser = the image's USER"
    );
    assert_eq!(sc["runAsGroup"], gid, "{file}: pod runAsGroup");
    assert_eq!(sc["fsGroup"], gid, "{file}: fsGroup (volumes writable)");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{file}");
    assert_eq!(pod["serviceAccountName"], "rolesnap", "{file}");
    let volumes: BTreeSet<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for c in pod["containers"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let at = format!("{file}: container {name}");
        assert!(c["image"].as_str().is_some_and(|i| !i.is_empty()), "{at}");
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{at}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{at}");
        assert_eq!(sc["runAsNonRoot"], true, "{at}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{at}"
        );
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{at}");
        for side in ["requests", "limits"] {
            for res in ["cpu", "memory"] {
                assert!(
                    c["resources"][side][res].is_string(),
                    "{at}: resources.{side}.{res}"
                );
            }
        }
        assert_eq!(c["resources"]["requests"]["memory"], "128Mi", "{at}");
        assert_eq!(c["resources"]["limits"]["memory"], "512Mi", "{at}");
        // Writable places are volumes (the root filesystem is read-only).
        let mounts: BTreeMap<&str, &str> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["mountPath"].as_str().unwrap(),
                    m["name"].as_str().unwrap(),
                )
            })
            .collect();
        for path in [
            "/etc/rolesnap/plans",
            "/var/lib/rolesnap",
            "/var/log/rolesnap",
            "/tmp",
        ] {
            assert!(mounts.contains_key(path), "{at}: a volume at {path}");
        }
        for v in mounts.values() {
            let claim = kind == "StatefulSet" && *v == "state";
            assert!(volumes.contains(v) || claim, "{at}: volume {v} is declared");
        }
        let cmd = c["args"].as_array().unwrap()[0].as_str().unwrap();
        assert!(cmd.contains("--plans /etc/rolesnap/plans"), "{at}: {cmd}");
        assert!(
            cmd.contains("--json-events"),
            "{at}: events on stdout for kubectl logs"
        );
        if kind == "StatefulSet" {
            for probe in ["livenessProbe", "readinessProbe"] {
                assert_eq!(c[probe]["httpGet"]["path"], "/healthz", "{at}: {probe}");
                assert_eq!(c[probe]["httpGet"]["port"], "metrics", "{at}: {probe}");
            }
            assert_eq!(c["ports"][0]["name"], "metrics", "{at}");
            assert_eq!(c["ports"][0]["containerPort"], 9464, "{at}");
            let env: BTreeMap<&str, &Value> = c["env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["name"].as_str().unwrap(), e))
                .collect();
            assert_eq!(
                env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"],
                "status.podIP"
            );
            assert_eq!(env["ROLESNAP_METRICS"]["value"], "$(POD_IP):9464", "{at}");
            assert_eq!(
                env["ROLESNAP_METRICS_ALLOW_REMOTE"]["value"], "true",
                "{at}"
            );
            // Kubernetes expands $(POD_IP) only from a variable defined before it.
            let names: Vec<&str> = c["env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["name"].as_str().unwrap())
                .collect();
            let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
            assert!(pos("POD_IP") < pos("ROLESNAP_METRICS"), "{at}: env order");
        }
    }
}

#[test]
fn kubernetes_manifests_carry_what_an_operator_needs() {
    let docs = manifests();
    let mut kinds = BTreeMap::new();
    for (file, d) in &docs {
        let kind = d["kind"].as_str().unwrap_or_else(|| panic!("{file}: kind"));
        assert!(d["apiVersion"].is_string(), "{file}: apiVersion");
        if kind != "Kustomization" {
            assert!(
                d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty()),
                "{file}: metadata.name"
            );
        }
        kinds.insert(kind.to_string(), (file.clone(), d.clone()));
    }
    for k in [
        "ServiceAccount",
        "ConfigMap",
        "StatefulSet",
        "Service",
        "Job",
        "Kustomization",
        "NetworkPolicy",
    ] {
        assert!(kinds.contains_key(k), "a {k} in deploy/kubernetes");
    }
    // The kustomization lists files that exist.
    for r in kinds["Kustomization"].1["resources"].as_array().unwrap() {
        assert!(k8s_dir().join(r.as_str().unwrap()).is_file(), "{r}");
    }
    // IRSA.
    let sa = &kinds["ServiceAccount"].1;
    let arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        .as_str()
        .expect("the IRSA annotation");
    assert!(regex::Regex::new(r"^arn:aws:iam::\d{12}:role/[\w+=,.@-]+$")
        .unwrap()
        .is_match(arn));
    // Workloads.
    let (file, sts) = &kinds["StatefulSet"];
    check_pod(file, "StatefulSet", &sts["spec"]["template"]["spec"]);
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], "state",
        "the ledger is on a PersistentVolumeClaim"
    );
    let (file, job) = &kinds["Job"];
    check_pod(file, "Job", &job["spec"]["template"]["spec"]);
    // The governing, scraped Service.
    let svc = &kinds["Service"].1;
    assert_eq!(sts["spec"]["serviceName"], svc["metadata"]["name"]);
    assert_eq!(svc["spec"]["clusterIP"], "None");
    let ann = &svc["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"], "true");
    assert_eq!(ann["prometheus.io/port"], "9464");
    assert_eq!(ann["prometheus.io/path"], "/metrics");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    let labels = &sts["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "the Service selects the agent's pods");
    }
    // The ConfigMap's plans and accounts file load, and are what the pods mount.
    let cm = &kinds["ConfigMap"].1;
    let pod_cm = sts["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| v["configMap"]["name"].as_str())
        .unwrap();
    assert_eq!(cm["metadata"]["name"], pod_cm);
    // Laid out as the kubelet mounts a ConfigMap: the files in a timestamped
    // directory, `..data` a symlink to it, each key a symlink into `..data`.
    let dir = tempfile::tempdir().unwrap();
    let stamped = dir.path().join("..2026_01_01_00_00_00.000000001");
    std::fs::create_dir(&stamped).unwrap();
    std::os::unix::fs::symlink(stamped.file_name().unwrap(), dir.path().join("..data")).unwrap();
    for (name, body) in cm["data"].as_object().unwrap() {
        std::fs::write(stamped.join(name), body.as_str().unwrap()).unwrap();
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.path().join(name)).unwrap();
    }
    let (code, out, err) = rolesnap(&["schedule", "--plans", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "the ConfigMap's plans load: {out}{err}");
    assert!(out.contains("nightly"), "{out}");
    rolesnap_core::config::parse_accounts(
        &dir.path().join("accounts.toml"),
        &std::fs::read_to_string(dir.path().join("accounts.toml")).unwrap(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn kubernetes_manifests_pass_the_schema_check() {
    let probe = Command::new(python())
        .args(["-c", "import kubernetes_validate"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIP schema check: the kubernetes-validate Python package is not installed \
             (pip install kubernetes-validate==1.37.0)"
        );
        return;
    }
    let mut cmd = Command::new(python());
    cmd.args(["-m", "kubernetes_validate", "--strict", "--no-warn"]);
    for (file, d) in manifests() {
        if d["kind"] != "Kustomization" {
            cmd.arg(k8s_dir().join(file));
        }
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("ERROR"), "{text}");
}

/// The first container builder that works here (a daemon or rootless engine
/// that answers, not only a client binary).
fn container_builder() -> Option<(&'static str, Vec<&'static str>)> {
    if have("podman", &["info"]) {
        return Some(("podman", vec!["build"]));
    }
    if have("docker", &["info"]) {
        return Some(("docker", vec!["build"]));
    }
    if have("buildah", &["info"]) {
        return Some(("buildah", vec!["build"]));
    }
    None
}

#[test]
fn the_container_image_is_non_root_built_in_a_builder_stage_with_a_healthcheck() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("deploy/Containerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a builder stage and a runtime stage");
    assert!(froms[0].ends_with(" AS build"), "{}", froms[0]);
    assert!(text.contains("COPY --from=build /out/bin/rolesnap /usr/local/bin/rolesnap"));
    let (uid, gid) = image_uid();
    assert!(uid >= 1000 && gid >= 1000, "a non-system, numeric USER");
    assert!(text.contains("HEALTHCHECK "), "a HEALTHCHECK");
    assert!(text.contains("COPY deploy/healthcheck.sh /usr/local/bin/rolesnap-healthcheck"));
    for installed in [
        "rolesnap man --out /out/man1",
        "/usr/local/share/man/man1/",
        "/usr/share/bash-completion/completions/rolesnap",
        "/usr/share/zsh/vendor-completions/_rolesnap",
        "/usr/share/fish/vendor_completions.d/rolesnap.fish",
    ] {
        assert!(text.contains(installed), "the image installs {installed}");
    }
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    assert!(
        ignore.lines().any(|l| l == "target/"),
        "the build context leaves target/ out"
    );

    let Some((builder, args)) = container_builder() else {
        eprintln!(
            "SKIP building the image: no working podman, docker or buildah here \
             (a client without a daemon does not count)"
        );
        return;
    };
    // The stages' base images must be here or pullable. Where this was
    // written, podman 4.3.1 (Debian) builds and runs as root (with runc and
    // an explicit nofile ulimit), but no container registry is reachable
    // (only package registries are), so the bases cannot be pulled.
    let bases: Vec<&str> = froms
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    for base in &bases {
        let here = Command::new(builder)
            .args(["image", "inspect", base])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if here {
            continue;
        }
        let pull = Command::new(builder).args(["pull", base]).output().unwrap();
        if !pull.status.success() {
            let why = String::from_utf8_lossy(&pull.stderr);
            eprintln!(
                "SKIP building the image: {builder} works here, but the base image {base} is \
                 neither present nor pullable (no container registry reachable): {}",
                why.lines().last().unwrap_or_default()
            );
            return;
        }
    }
    // The dev profile keeps the build to minutes (the release profile is fat LTO).
    let tag = format!("rolesnap-test:{}", std::process::id());
    let st = Command::new(builder)
        .args(&args)
        .args([
            "-f",
            "deploy/Containerfile",
            "--build-arg",
            "PROFILE=dev",
            "-t",
            &tag,
            ".",
        ])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(st.success(), "{builder} build");
    if builder != "buildah" {
        let out = Command::new(builder)
            .args(["run", "--rm", "--entrypoint", "/bin/sh", &tag, "-c"])
            .arg("id -u && rolesnap --version && ls /usr/local/share/man/man1/rolesnap-backup.1.gz")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.starts_with(&format!("{uid}\n")), "{text}");
        let _ = Command::new(builder).args(["rmi", "-f", &tag]).output();
    }
}

/// `rolesnap --version` names the commit the binary was built from, so that
/// what ran can be told from the binary (a benchmark keeps it in its
/// `machine.json`); `-V` stays the bare version (the man page's header).
#[test]
fn version_names_the_commit_the_binary_was_built_from() {
    let (code, long, _) = rolesnap(&["--version"]);
    assert_eq!(code, 0);
    let version = env!("CARGO_PKG_VERSION");
    // The builder's ROLESNAP_COMMIT when it gave one, else HEAD's.
    let given = std::env::var("ROLESNAP_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let head = || {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(repo_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let want = match given.or_else(head) {
        Some(rev) => format!("rolesnap {version} (commit {rev}"),
        None => format!("rolesnap {version} (commit unknown"),
    };
    assert!(
        long.starts_with(&want),
        "{long:?} does not start with {want:?}"
    );
    let (code, short, _) = rolesnap(&["-V"]);
    assert_eq!(code, 0);
    assert_eq!(short.trim(), format!("rolesnap {version}"));
}
