//! Foundation: discover, validate, policy, tenant isolation, logs, secrets.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::{repo_root, seeded, Emulator};

const ALL_PLAN: &str = r#"
[plan]
name = "everything"
id = 7

[[group]]
name = "all"
tenants = ["alpha", "beta"]
rds = true
aurora = true
"#;

/// (tenant, region) → sorted selected ids by kind, from `discover -o json`.
/// (instances, DB instances, Aurora clusters)
type Ids = (Vec<String>, Vec<String>, Vec<String>);

fn selected(report: &Value) -> BTreeMap<(String, String), Ids> {
    let mut out = BTreeMap::new();
    for t in report["tenants"].as_array().unwrap() {
        for r in t["regions"].as_array().unwrap() {
            let mut kinds = (vec![], vec![], vec![]);
            for s in r["selected"].as_array().unwrap() {
                let id = s["resource"]["id"].as_str().unwrap().to_string();
                match s["resource"]["kind"].as_str().unwrap() {
                    "instance" => kinds.0.push(id),
                    "db-instance" => kinds.1.push(id),
                    "db-cluster" => kinds.2.push(id),
                    k => panic!("unknown kind {k}"),
                }
            }
            kinds.0.sort();
            kinds.1.sort();
            kinds.2.sort();
            out.insert(
                (
                    t["tenant"].as_str().unwrap().to_string(),
                    r["region"].as_str().unwrap().to_string(),
                ),
                kinds,
            );
        }
    }
    out
}

#[test]
fn discover_lists_exactly_the_seeded_resources() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta"], &[]);
    let plan = emu.write_plan("everything", ALL_PLAN);
    let run = emu.run(&["discover", "--plan", plan.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let got = selected(&run.json());
    let mut want = BTreeMap::new();
    for t in ["alpha", "beta"] {
        for r in ["us-east-1", "us-west-2"] {
            want.insert((t.to_string(), r.to_string()), seeded(emu.tenant(t), r));
        }
    }
    assert_eq!(got, want);
    // Volumes and AZs come through as well: compare one instance with the fixture.
    let report = run.json();
    let inst = &emu.tenant("alpha")["resources"]["us-east-1"]["instances"][0];
    let found = report["tenants"][0]["regions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["selected"].as_array().unwrap())
        .find(|s| s["resource"]["id"] == inst["id"])
        .expect("seeded instance discovered");
    assert_eq!(found["resource"]["az"], inst["az"]);
    let mut devs: Vec<(String, i64)> = found["resource"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["device"].as_str().unwrap().to_string(),
                v["size_gib"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut want_devs: Vec<(String, i64)> = inst["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["device"].as_str().unwrap().to_string(),
                v["size"].as_i64().unwrap(),
            )
        })
        .collect();
    devs.sort();
    want_devs.sort();
    assert_eq!(devs, want_devs);
}

#[test]
fn discover_applies_tag_and_az_rules() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta"], &[]);
    let plan = emu.write_plan(
        "tagged",
        r#"
[plan]
name = "tagged"
id = 3

[[group]]
name = "nightly-east-a"
tenants = ["alpha"]
regions = ["us-east-1"]
availability-zones = ["us-east-1a"]
include-tags = ["Backup=nightly"]
"#,
    );
    let run = emu.run(&["discover", "--plan", plan.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let want: Vec<String> = emu.tenant("alpha")["resources"]["us-east-1"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["az"] == "us-east-1a" && i["tags"]["Backup"] == "nightly")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        want.len(),
        1,
        "fixture has one nightly instance in us-east-1a"
    );
    let got = selected(&run.json());
    assert_eq!(got.len(), 1, "only alpha/us-east-1 is covered: {got:?}");
    assert_eq!(got[&("alpha".into(), "us-east-1".into())].0, want);
}

#[test]
fn validate_passes_trusting_tenants_and_names_the_untrusting_one() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta", "gamma"], &[]);
    let plan = emu.write_plan(
        "three",
        r#"
[plan]
name = "three"
id = 4

[[group]]
name = "all"
tenants = ["alpha", "beta", "gamma"]
regions = ["us-east-1"]
"#,
    );
    let run = emu.run(&["validate", "--plan", plan.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 1, "one tenant failing is exit 1: {run}");
    let rows = run.json()["tenants"].as_array().unwrap().clone();
    let row = |n: &str| rows.iter().find(|r| r["tenant"] == n).unwrap().clone();
    for t in ["alpha", "beta"] {
        let r = row(t);
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["account"], emu.tenant(t)["account"]);
        let probes = r["probes"].as_array().unwrap();
        assert!(probes
            .iter()
            .any(|p| p["action"] == "ec2:CreateSnapshots" && p["outcome"] == "allowed"));
    }
    let g = row("gamma");
    assert_eq!(g["ok"], false);
    assert_eq!(g["error_code"], "AccessDenied");
    let msg = g["error"].as_str().unwrap();
    assert!(
        msg.contains("gamma") && msg.contains("arn:aws:iam::444444444444:role/vsa-role"),
        "{msg}"
    );

    // The guide's log lines, for every role, in cvd.log in GxTail format.
    let cvd = emu.log_file("cvd.log");
    for t in ["alpha", "beta", "gamma"] {
        let arn = emu.tenant(t)["role_arn"].as_str().unwrap();
        assert!(
            cvd.contains(&format!(
                "CAmazonInfo::Connect() - Connecting to Url=[{}], username [{arn}]",
                emu.url
            )),
            "{cvd}"
        );
        assert!(
            cvd.contains(&format!(
                "AmazonConnection::ValidateCredentials() - Assume role [{arn}]"
            )),
            "{cvd}"
        );
    }
    // Human output too: a row per tenant.
    let human = emu.run(&["validate", "--plan", plan.to_str().unwrap()]);
    assert_eq!(human.code, 1);
    assert!(
        human.stdout.contains("OK") && human.stdout.contains("FAILED AccessDenied"),
        "{human}"
    );
}

#[test]
fn a_wrong_external_id_fails_one_tenant_and_not_the_others() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta"], &[("alpha", "not-the-right-one")]);
    let plan = emu.write_plan("everything", ALL_PLAN);
    let run = emu.run(&["discover", "--plan", plan.to_str().unwrap(), "-o", "json"]);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    let alpha = &report["tenants"][0];
    assert_eq!(alpha["tenant"], "alpha");
    assert_eq!(alpha["error_code"], "AccessDenied");
    assert!(alpha["error"]
        .as_str()
        .unwrap()
        .contains("arn:aws:iam::222222222222:role/vsa-role"));
    let got = selected(&report);
    assert_eq!(
        got[&("beta".into(), "us-east-1".into())],
        seeded(emu.tenant("beta"), "us-east-1")
    );
    // The layer refused exactly alpha's AssumeRole calls.
    assert!(emu.count_calls("111111111111", "AssumeRole", "denied") >= 1);
}

#[test]
fn configuration_errors_exit_2_and_send_nothing_to_aws() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    emu.control("DELETE", "/_harness/calls", None);
    let cases = [
        (
            "unknown key",
            ALL_PLAN.replace("id = 7", "id = 7\nretension = 3"),
            "everything.toml:5: retension",
        ),
        (
            "unknown tenant",
            ALL_PLAN.to_string(),
            "group.tenants: unknown tenant `beta`",
        ),
        (
            "bad region",
            ALL_PLAN.replace("rds = true", "regions = [\"mars-1\"]"),
            "group.regions",
        ),
        (
            "bad cron",
            format!("{ALL_PLAN}\n[schedule]\ncron = \"99 * * * *\"\n"),
            "schedule.cron",
        ),
    ];
    for (what, body, want) in cases {
        let plan = emu.write_plan("everything", &body);
        let run = emu.run(&["discover", "--plan", plan.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{what}: {run}");
        assert!(run.stderr.contains(want), "{what}: want `{want}` in {run}");
    }
    let missing = emu.run(&["validate", "--plan", "does-not-exist.toml"]);
    assert_eq!(missing.code, 2, "{missing}");
    let total = emu.control("GET", "/_harness/calls", None)["total"]
        .as_u64()
        .unwrap();
    assert_eq!(total, 0, "no AWS call after a configuration error");
}

#[test]
fn logs_follow_gxtail_and_never_hold_a_secret() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha", "beta", "gamma"], &[]);
    let plan = emu.write_plan(
        "three",
        ALL_PLAN.replace("[\"alpha\", \"beta\"]", "[\"alpha\", \"beta\", \"gamma\"]"),
    );
    let p = plan.to_str().unwrap();
    emu.run(&["discover", "--plan", p]);
    emu.run(&["discover", "--plan", p, "-o", "json", "-v"]);
    emu.run(&["validate", "--plan", p, "-v"]);

    let line =
        regex::Regex::new(r"^\d+ [0-9a-f]+ \d\d/\d\d \d\d:\d\d:\d\d (\d+|###) \w+::\w+\(\) - .*$")
            .unwrap();
    let mut lines = 0;
    for f in ["cvd.log", "vsdiscovery.log"] {
        let text = emu.log_file(f);
        assert!(!text.is_empty(), "{f} written");
        for l in text.lines() {
            assert!(line.is_match(l), "{f}: not GxTail: {l}");
            lines += 1;
        }
    }
    assert!(lines > 10);

    let creds = emu.control("GET", "/_harness/credentials?secrets=1", None);
    let mut secrets = vec![emu.admin_key().1];
    for c in creds["credentials"].as_array().unwrap() {
        secrets.push(c["secret_access_key"].as_str().unwrap().to_string());
        secrets.push(c["session_token"].as_str().unwrap().to_string());
    }
    assert!(secrets.len() >= 5, "rolesnap assumed roles: {creds}");
    let everything = emu.all_logs_and_outputs();
    assert!(everything.len() > 1000);
    for s in &secrets {
        assert!(s.len() >= 16);
        assert!(
            !everything.contains(s.as_str()),
            "a secret leaked into logs or output"
        );
    }
}

#[test]
fn policy_prints_the_guide_documents_extended_for_rds() {
    let emu = Emulator::start();
    let run = emu.run(&[
        "policy",
        "tenant",
        "--admin-account",
        "111111111111",
        "--external-id",
        "ext-9",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let docs = run.json();
    assert_eq!(docs["sts-only"]["Statement"][0]["Action"], "sts:AssumeRole");
    assert_eq!(
        docs["tenant-trust"]["Statement"]["Principal"]["AWS"],
        "arn:aws:iam::111111111111:root"
    );
    assert_eq!(
        docs["tenant-trust"]["Statement"]["Condition"]["StringEquals"]["sts:ExternalId"],
        "ext-9"
    );
    let text = docs["permissions"].to_string();
    for a in [
        "rds:CreateDBSnapshot",
        "rds:CopyDBClusterSnapshot",
        "ec2:CreateSnapshots",
        "rds:snapshot-tag/_GX_BACKUP_",
    ] {
        assert!(text.contains(a), "{a} missing");
    }
    // One document alone, ready for `aws iam create-role --assume-role-policy-document file://…`.
    let trust = emu.run(&[
        "policy",
        "tenant",
        "--admin-account",
        "111111111111",
        "--external-id",
        "ext-9",
        "--document",
        "tenant-trust",
    ]);
    assert_eq!(trust.code, 0);
    let doc: Value = serde_json::from_str(&trust.stdout).unwrap();
    assert_eq!(doc, docs["tenant-trust"]);
    let bad = emu.run(&["policy", "tenant", "--admin-account", "12345"]);
    assert_eq!(bad.code, 2, "{bad}");
}

#[test]
fn every_shipped_plan_parses() {
    let dir = repo_root().join("plans");
    let mut plans = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let src = std::fs::read_to_string(&p).unwrap();
        if rolesnap_core::config::is_accounts_file(&src) {
            rolesnap_core::config::parse_accounts(&p, &src).unwrap_or_else(|e| panic!("{e}"));
        } else {
            rolesnap_core::load_plan(&p, None).unwrap_or_else(|e| panic!("{e}"));
            plans += 1;
        }
    }
    assert!(plans >= 3, "plans/ holds at least three example plans");
}
