//! Unit tests of the configuration module: good files parse, and every
//! refusal names the file, line and key it is about.

use super::*;

const ACCOUNTS: &str = r#"
[admin]
region = "us-east-1"

[[tenant]]
name = "alpha"
role-arn = "arn:aws:iam::222222222222:role/vsa-role"
external-id = "ext-1"
regions = ["us-east-1"]
"#;

const PLAN: &str = r#"
[plan]
name = "nightly"
id = 2

[schedule]
cron = "30 1 * * *"
timezone = "Europe/Berlin"

[retention]
days = 7

[[copy]]
region = "us-west-2"

[[group]]
name = "web"
tenants = ["alpha"]
regions = ["us-east-1"]
include-tags = ["Backup=nightly"]
"#;

fn plan_err(src: &str) -> ConfigError {
    parse_plan_only(Path::new("p.toml"), src).unwrap_err()
}

#[test]
fn lock_rules_parse_and_bad_ones_are_refused() {
    let src = PLAN.replace(
        "[[copy]]\nregion = \"us-west-2\"\n",
        "[lock]\nmode = \"compliance\"\ncool-off-hours = 24\nregions = [\"us-east-1\"]\n\n[[copy]]\nregion = \"us-west-2\"\nlock = { mode = \"governance\" }\n",
    );
    let (p, _) = parse_plan_only(Path::new("p.toml"), &src).unwrap();
    let l = p.lock.as_ref().unwrap();
    assert_eq!((l.mode, l.cool_off_hours), (LockMode::Compliance, Some(24)));
    assert_eq!(l.regions.as_deref(), Some(&["us-east-1".to_string()][..]));
    assert_eq!(
        p.copies[0].lock.as_ref().unwrap().mode,
        LockMode::Governance
    );
    let (p, _) = parse_plan_only(Path::new("p.toml"), PLAN).unwrap();
    assert!(p.lock.is_none() && p.copies[0].lock.is_none());
    for (bad, key) in [
        ("[lock]\nmode = \"legal\"\n", "lock.mode"),
        (
            "[lock]\nmode = \"governance\"\ncool-off-hours = 2\n",
            "lock.cool-off-hours",
        ),
        (
            "[lock]\nmode = \"compliance\"\ncool-off-hours = 73\n",
            "lock.cool-off-hours",
        ),
        (
            "[lock]\nmode = \"compliance\"\nregions = [\"nowhere\"]\n",
            "lock.regions",
        ),
    ] {
        let e = plan_err(&format!("{PLAN}\n{bad}"));
        assert!(e.to_string().contains(key), "{bad}: {e}");
    }
}

fn accounts_err(src: &str) -> ConfigError {
    parse_accounts(Path::new("a.toml"), src).unwrap_err()
}

#[test]
fn parses_good_files() {
    let a = parse_accounts(Path::new("a.toml"), ACCOUNTS).unwrap();
    assert_eq!(a.tenants[0].role_arn.account, "222222222222");
    assert_eq!(a.tenants[0].session_seconds, 3600);
    let (p, _) = parse_plan_only(Path::new("p.toml"), PLAN).unwrap();
    assert_eq!(p.method, Method::SnapshotSet);
    assert_eq!(p.schedule.as_ref().unwrap().cron, "0 30 1 * * *");
    assert_eq!(
        p.copies[0].retention.days,
        Some(7),
        "copy inherits retention"
    );
    assert_eq!(p.groups[0].include_tags[0].to_string(), "Backup=nightly");
    assert!(p.groups[0].ec2 && !p.groups[0].rds);
}

#[test]
fn calls_in_flight_default_and_bounds() {
    let a = parse_accounts(Path::new("a.toml"), ACCOUNTS).unwrap();
    assert_eq!(
        a.admin.max_calls_in_flight,
        crate::aws::connections::DEFAULT_CALLS_IN_FLIGHT
    );
    let set = |v: &str| {
        ACCOUNTS.replace(
            "[admin]\n",
            &format!("[admin]\nmax-calls-in-flight = {v}\n"),
        )
    };
    let a = parse_accounts(Path::new("a.toml"), &set("200")).unwrap();
    assert_eq!(a.admin.max_calls_in_flight, 200);
    for bad in ["0", "-3", "5000"] {
        let e = accounts_err(&set(bad));
        assert_eq!(e.key, "admin.max-calls-in-flight", "{bad}");
        assert_eq!(e.line, 3, "{bad}");
    }
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = plan_err(&PLAN.replace("id = 2", "id = 2\ncolour = \"red\""));
    assert_eq!(e.key, "colour");
    assert_eq!(e.line, 5);
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        (
            "regions = [\"us-east-1\"]",
            "regions = [\"us-east-9x\"]",
            "group.regions",
            19,
        ),
        (
            "cron = \"30 1 * * *\"",
            "cron = \"61 1 * * *\"",
            "schedule.cron",
            7,
        ),
        (
            "cron = \"30 1 * * *\"",
            "cron = \"30 1 *\"",
            "schedule.cron",
            7,
        ),
        ("Europe/Berlin", "Mars/Olympus", "schedule.timezone", 8),
        (
            "region = \"us-west-2\"",
            "region = \"west\"",
            "copy.region",
            14,
        ),
        ("Backup=nightly", "Backup", "group.include-tags", 20),
        (
            "Backup=nightly",
            &format!("Backup={}", "n".repeat(257)),
            "group.include-tags",
            20,
        ),
    ];
    for (from, to, key, line) in cases {
        let e = plan_err(&PLAN.replace(from, to));
        assert_eq!((e.key.as_str(), e.line), (key, line), "{to}: {e}");
    }
}

#[test]
fn duplicate_names_are_errors() {
    let twice = format!("{PLAN}\n[[group]]\nname = \"web\"\ntenants = [\"alpha\"]\n");
    assert_eq!(plan_err(&twice).key, "group.name");
    let t2 = format!(
        "{ACCOUNTS}\n[[tenant]]\nname = \"alpha\"\nrole-arn = \"arn:aws:iam::333333333333:role/r\"\n"
    );
    let e = accounts_err(&t2);
    assert_eq!((e.key.as_str(), e.line), ("tenant.name", 12));
}

#[test]
fn role_arns_are_checked() {
    for bad in [
        "arn:aws:iam::22222222222:role/vsa-role",
        "arn:aws:iam::222222222222:user/bob",
        "arn:aws:s3:::bucket",
        "vsa-role",
        "arn:aws:iam::222222222222:role/",
    ] {
        let e = accounts_err(&ACCOUNTS.replace("arn:aws:iam::222222222222:role/vsa-role", bad));
        assert_eq!((e.key.as_str(), e.line), ("tenant.role-arn", 7), "{bad}");
    }
    let ok: RoleArn = "arn:aws:iam::222222222222:role/path/vsa-role"
        .parse()
        .unwrap();
    assert_eq!(ok.name, "vsa-role");
}

#[test]
fn chained_sessions_are_capped_at_one_hour() {
    let src = ACCOUNTS.replace(
        "region = \"us-east-1\"",
        "region = \"us-east-1\"\nrole-arn = \"arn:aws:iam::111111111111:role/vsa-assume-role\"",
    ) + "session-duration = 7200\n";
    assert_eq!(accounts_err(&src).key, "tenant.session-duration");
    let unchained = ACCOUNTS.to_string() + "session-duration = 7200\n";
    assert!(parse_accounts(Path::new("a"), &unchained).is_ok());
}

#[test]
fn regions_and_azs() {
    for r in [
        "us-east-1",
        "eu-central-2",
        "ap-southeast-4",
        "us-gov-west-1",
        "cn-north-1",
    ] {
        assert!(is_region(r), "{r}");
    }
    for r in [
        "us-east",
        "useast1",
        "us-east-1a",
        "US-EAST-1",
        "all",
        "us-middle-1",
    ] {
        assert!(!is_region(r), "{r}");
    }
    assert_eq!(az_region("us-east-1a"), Some("us-east-1"));
    assert_eq!(az_region("us-east-1"), None);
}

#[test]
fn crontab_weekdays_become_cron_crate_weekdays() {
    let cases = [
        ("1-5", "2-6"),
        ("0", "1"),
        ("7", "1"),
        ("6", "7"),
        ("0,6", "1,7"),
        ("5-7", "6-7,1"),
        ("6-7", "7,1"),
        ("*", "*"),
        ("*/2", "*/2"),
        ("MON-FRI", "MON-FRI"),
        ("1-5/2", "2-6/2"),
    ];
    for (crontab, want) in cases {
        assert_eq!(crontab_weekdays(crontab).unwrap(), want, "{crontab}");
    }
    assert!(crontab_weekdays("8").is_err());
    let both = PLAN.replace("cron = \"30 1 * * *\"", "cron = \"0 0 1 * MON\"");
    assert!(plan_err(&both)
        .message
        .contains("both day of month and weekday"));
    // Weekdays 1-5 are Monday to Friday, as crontab means.
    let src = PLAN.replace("cron = \"30 1 * * *\"", "cron = \"0 2 * * 1-5\"");
    let (p, _) = parse_plan_only(Path::new("p.toml"), &src).unwrap();
    let sched = cron::Schedule::from_str(&p.schedule.unwrap().cron).unwrap();
    use chrono::{Datelike, TimeZone};
    let sat = chrono::Utc
        .with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
        .unwrap();
    let next = sched.after(&sat).next().unwrap();
    assert_eq!(next.weekday(), chrono::Weekday::Mon, "{next}");
}

#[test]
fn wrong_types_name_their_key_and_cron_errors_stay_on_one_line() {
    let e = plan_err(&PLAN.replace("id = 2", "id = \"2\""));
    assert_eq!((e.key.as_str(), e.line), ("id", 4), "{e}");
    let e = plan_err(&PLAN.replace("30 1 * * *", "61 1 * * *"));
    assert_eq!(e.to_string().lines().count(), 1, "{e}");
    assert!(
        e.message
            .contains("`61 1 * * *`: minute 61 is outside 0–59"),
        "{e}"
    );
    assert!(!e.message.contains("0 61"), "no internal form: {e}");
    let unknown_line = ConfigError {
        file: "a.toml".into(),
        line: 0,
        key: "k".into(),
        message: "m".into(),
    };
    assert_eq!(unknown_line.to_string(), "a.toml: k: m");
}

#[test]
fn globs() {
    assert!(glob_match("*", "anything"));
    assert!(glob_match("db-*", "db-orders"));
    assert!(glob_match("*-prod", "db-prod"));
    assert!(glob_match("a*c*e", "abcde"));
    assert!(!glob_match("db-*", "cache-1"));
    assert!(!glob_match("exact", "exactly"));
}

#[test]
fn unknown_tenant_is_reported_with_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("accounts.toml"), ACCOUNTS).unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        PLAN.replace("tenants = [\"alpha\"]", "tenants = [\"zeta\"]"),
    )
    .unwrap();
    let e = load_plan(&p, None).unwrap_err();
    assert_eq!((e.key.as_str(), e.line), ("group.tenants", 18));
    assert!(
        e.message.contains("zeta") && e.message.contains("alpha"),
        "{e}"
    );
}

/// [`PLAN`] with `from` (which it must contain) replaced by `to`.
fn with(from: &str, to: &str) -> String {
    assert!(PLAN.contains(from), "{from}");
    PLAN.replace(from, to)
}

/// Every refusal of issue 15 at the level of one file: (what, plan text,
/// key, line, message fragment).
#[test]
fn dangerous_plans_are_refused_with_line_and_key() {
    let cases: Vec<(&str, String, &str, usize, &str)> = vec![
        ("days = 0", with("days = 7", "days = 0"), "retention.days", 11, "allow-empty = \"I understand\""),
        (
            "count = 0 and allow-delete-last",
            with("days = 7", "count = 0\nallow-delete-last = true"),
            "retention.count",
            11,
            "last recovery point",
        ),
        ("all rules 0", with("days = 7", "daily = 0\nweekly = 0"), "retention", 11, "keep no recovery point"),
        (
            "copy retention days = 0",
            with("region = \"us-west-2\"", "region = \"us-west-2\"\n[copy.retention]\ndays = 0"),
            "copy.retention.days",
            16,
            "I understand",
        ),
        (
            "allow-empty in other words",
            with("days = 7", "days = 0\nallow-empty = \"yes\""),
            "retention.allow-empty",
            12,
            "exactly",
        ),
        ("30 February", with("30 1 * * *", "0 0 30 2 *"), "schedule.cron", 7, "never runs"),
        ("31 April", with("30 1 * * *", "0 0 31 4 *"), "schedule.cron", 7, "never runs"),
        ("a past year", with("30 1 * * *", "0 0 0 1 1 * 2020"), "schedule.cron", 7, "never runs"),
        (
            "regions = []",
            with("regions = [\"us-east-1\"]", "regions = []"),
            "group.regions",
            19,
            "an empty list",
        ),
        (
            "copy to a source region",
            with("region = \"us-west-2\"", "region = \"us-east-1\""),
            "copy.region",
            14,
            "source region of group `web`",
        ),
        (
            "kms-key-id shell",
            with("region = \"us-west-2\"", "region = \"us-west-2\"\nkms-key-id = \"; rm -rf /\""),
            "copy.kms-key-id",
            15,
            "is not a KMS key",
        ),
        (
            "kms ARN of another region",
            with(
                "region = \"us-west-2\"",
                "region = \"us-west-2\"\nkms-key-id = \"arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab\"",
            ),
            "copy.kms-key-id",
            15,
            "needs a key of us-west-2",
        ),
        ("plan name NUL", with("name = \"nightly\"", "name = \"night\\u0000ly\""), "plan.name", 3, "U+0000"),
        ("plan name ;", with("name = \"nightly\"", "name = \"night;ly\""), "plan.name", 3, "not allowed in an AWS tag value"),
        ("plan name aws:", with("name = \"nightly\"", "name = \"aws:nightly\""), "plan.name", 3, "reserved"),
        (
            "group name too long",
            with("name = \"web\"", &format!("name = \"{}\"", "w".repeat(257))),
            "group.name",
            17,
            "at most 256",
        ),
        (
            "description newline",
            with("id = 2", "id = 2\ndescription = \"a\\nb\""),
            "plan.description",
            5,
            "U+000A",
        ),
        (
            "DB identifier",
            with("include-tags", "rds-instances = [\"db;1\"]\ninclude-tags"),
            "group.rds-instances",
            20,
            "not a DB identifier",
        ),
    ];
    for (what, src, key, line, fragment) in cases {
        let e = plan_err(&src);
        assert_eq!((e.key.as_str(), e.line), (key, line), "{what}: {e}");
        assert!(e.message.contains(fragment), "{what}: {e}");
        assert!(!e.to_string().contains('\0'), "{what}: no raw NUL in {e:?}");
    }
}

/// Each dangerous retention is accepted when the plan says so.
#[test]
fn dangerous_retention_is_accepted_when_the_plan_says_so() {
    for ok in [
        with("days = 7", "days = 0\nallow-empty = \"I understand\""),
        with(
            "days = 7",
            "count = 0\nallow-delete-last = true\nallow-empty = \"I understand\"",
        ),
        with("days = 7", "days = 0\ncount = 1"),
    ] {
        if ok.contains("count = 1") {
            // days = 0 is refused even beside a rule that keeps something.
            assert_eq!(plan_err(&ok).key, "retention.days");
        } else {
            parse_plan_only(Path::new("p.toml"), &ok).unwrap();
        }
    }
}

/// Two source regions copied into each other: each point has a copy.
#[test]
fn regions_copied_into_each_other_are_accepted() {
    let cross = with(
        "region = \"us-west-2\"",
        "region = \"us-west-2\"\n[[copy]]\nregion = \"us-east-1\"",
    )
    .replace(
        "regions = [\"us-east-1\"]",
        "regions = [\"us-east-1\", \"us-west-2\"]",
    );
    parse_plan_only(Path::new("p.toml"), &cross).unwrap();
}

/// Good keys stay good: a key ARN in the copy region, an alias, unicode letters.
#[test]
fn good_kms_keys_and_tag_values_are_accepted() {
    for kms in [
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "alias/rolesnap-dr",
        "arn:aws:kms:us-west-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-west-2:222222222222:alias/rolesnap-dr",
    ] {
        assert_eq!(kms_key_problem(kms, "us-west-2"), None, "{kms}");
    }
    assert_eq!(tag_value_problem("Nächtlich_prod-1 @x:/y=z+"), None);
}

#[test]
fn dangerous_accounts_are_refused_with_line_and_key() {
    let cases = [
        ("external-id = \"\"", ACCOUNTS.replace("external-id = \"ext-1\"", "external-id = \"\""), "tenant.external-id", 8, "empty"),
        ("external-id one char", ACCOUNTS.replace("ext-1", "x"), "tenant.external-id", 8, "2–1224"),
        ("external-id ;", ACCOUNTS.replace("ext-1", "a;b"), "tenant.external-id", 8, "not allowed"),
        (
            "same role twice",
            format!("{ACCOUNTS}\n[[tenant]]\nname = \"alpha2\"\nrole-arn = \"arn:aws:iam::222222222222:role/VSA-role\"\n"),
            "tenant.role-arn",
            13,
            "already the role of tenant `alpha`",
        ),
        (
            "tenant without role-arn",
            format!("{ACCOUNTS}\n[[tenant]]\nname = \"beta\"\n"),
            "tenant.role-arn",
            11,
            "missing",
        ),
        ("no [admin]", "[[tenant]]\nname = \"a\"\nrole-arn = \"arn:aws:iam::222222222222:role/r\"\n".to_string(), "admin", 0, "missing [admin]"),
    ];
    for (what, src, key, line, fragment) in cases {
        let e = accounts_err(&src);
        assert_eq!((e.key.as_str(), e.line), (key, line), "{what}: {e}");
        assert!(e.message.contains(fragment), "{what}: {e}");
    }
}

#[test]
fn files_that_are_not_config_text_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("empty.toml"), "").unwrap();
    std::fs::write(p("comments.toml"), "# nothing\n\n   # here\n").unwrap();
    std::fs::write(p("nul.toml"), b"[plan]\nname = \"a\"\n\x00\x01\x02").unwrap();
    std::fs::write(p("latin1.toml"), b"[plan]\nname = \"a\"\n# caf\xe9\n").unwrap();
    std::fs::write(p("passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let big = std::fs::File::create(p("big.toml")).unwrap();
    big.set_len(MAX_CONFIG_BYTES + 1).unwrap();
    std::fs::create_dir(p("dir.toml")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(p("fifo.toml"))
        .status()
        .is_ok_and(|s| s.success());
    let mut cases = vec![
        (p("empty.toml"), 0, "empty"),
        (p("comments.toml"), 0, "empty"),
        (p("nul.toml"), 3, "not a text file"),
        (p("latin1.toml"), 3, "not UTF-8"),
        (p("passwd"), 1, "not valid TOML"),
        (p("big.toml"), 0, "larger than 4 MiB"),
        (p("dir.toml"), 0, "is a directory"),
        (p("missing.toml"), 0, "cannot read"),
        (PathBuf::from("/dev/zero"), 0, "is a device"),
    ];
    if fifo {
        cases.push((p("fifo.toml"), 0, "is a FIFO"));
    }
    for (file, line, fragment) in cases {
        let e = load_accounts(&file).unwrap_err();
        assert_eq!(e.line, line, "{}: {e}", file.display());
        assert!(e.key.is_empty(), "no key for a file problem: {e}");
        assert!(e.message.contains(fragment), "{}: {e}", file.display());
        let shown = e.to_string();
        let want = if line == 0 {
            format!("{}: ", file.display())
        } else {
            format!("{}:{line}: ", file.display())
        };
        assert!(shown.starts_with(&want), "{shown}");
        assert!(
            !shown.contains("(toml)") && !shown.contains("(file)"),
            "{shown}"
        );
    }
    // The plan side names its own missing table.
    let e = plan_err("accounts = \"a.toml\"\n[[group]]\nname = \"g\"\ntenants = [\"a\"]\n");
    assert_eq!((e.key.as_str(), e.line), ("plan", 0), "{e}");
}

const VAULT: &str = r#"
[[vault]]
name = "vault"
role-arn = "arn:aws:iam::555555555555:role/rolesnap-vault"
external-id = "vault-ext"
[vault.keys]
us-east-1 = "arn:aws:kms:us-east-1:555555555555:key/1234abcd-12ab-34cd-56ef-1234567890ab"
"#;

#[test]
fn vaults_parse_and_plans_name_them() {
    let a = parse_accounts(Path::new("a.toml"), &format!("{ACCOUNTS}{VAULT}")).unwrap();
    let v = a.vault("vault").unwrap();
    assert_eq!(v.account(), "555555555555");
    assert_eq!(v.role.regions, ["us-east-1"]);
    let src = PLAN.replace(
        "[[group]]",
        "[[vault]]\nname = \"vault\"\nregions = [\"same\", \"us-east-1\"]\nretention = { days = 90 }\n\n[[group]]",
    );
    let (p, _) = parse_plan_only(Path::new("p.toml"), &src).unwrap();
    let r = &p.vaults[0];
    assert_eq!(r.retention.days, Some(90));
    assert_eq!(r.dests("us-west-2"), ["us-west-2", "us-east-1"]);
    assert_eq!(r.dests("us-east-1"), ["us-east-1"], "one copy per region");
    // A plan's vault must exist in the accounts file, with a key where it copies.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accounts.toml"),
        format!("{ACCOUNTS}{VAULT}"),
    )
    .unwrap();
    let plan = dir.path().join("p.toml");
    std::fs::write(&plan, &src).unwrap();
    assert!(load_plan(&plan, None).is_ok());
    std::fs::write(&plan, src.replace("name = \"vault\"", "name = \"other\"")).unwrap();
    let e = load_plan(&plan, None).unwrap_err();
    assert!(e.message.contains("unknown vault `other`"), "{e}");
    std::fs::write(
        &plan,
        src.replace("\"same\", \"us-east-1\"", "\"eu-west-1\""),
    )
    .unwrap();
    let e = load_plan(&plan, None).unwrap_err();
    assert!(e.message.contains("no KMS key for eu-west-1"), "{e}");
}

#[test]
fn a_vault_is_its_own_account_with_its_own_keys() {
    for (bad, key, says) in [
        (
            VAULT.replace("555555555555:role", "222222222222:role"),
            "vault.role-arn",
            "tenant `alpha`",
        ),
        (
            VAULT.replace("kms:us-east-1:555555555555", "kms:us-east-1:999999999999"),
            "vault.keys",
            "not a key ARN of the vault account",
        ),
        (
            VAULT.replace("name = \"vault\"", "name = \"alpha\""),
            "vault.name",
            "duplicate",
        ),
        (
            VAULT.replace("[vault.keys]\nus-east-1", "[vault.keys]\nmars-1"),
            "vault.keys",
            "not an AWS region",
        ),
    ] {
        let e = accounts_err(&format!("{ACCOUNTS}{bad}"));
        assert_eq!(e.key, key, "{e}");
        assert!(e.message.contains(says), "{e}");
    }
}

#[test]
fn notify_parses_in_accounts_and_a_plan_replaces_it() {
    let src = format!(
        "{ACCOUNTS}\n[notify]\nsns-topic-arn = \"arn:aws:sns:us-east-1:111111111111:backup-alerts\"\nwebhook-url = \"http://127.0.0.1:9000/hook?x=1\"\ncommand = [\"/usr/local/bin/page\", \"--team\", \"backup\"]\n"
    );
    let a = parse_accounts(Path::new("a.toml"), &src).unwrap();
    let n = a.notify.clone().unwrap();
    assert_eq!(
        n.sns_topic_arn.as_deref(),
        Some("arn:aws:sns:us-east-1:111111111111:backup-alerts")
    );
    assert_eq!(
        n.webhook_url.as_deref(),
        Some("http://127.0.0.1:9000/hook?x=1")
    );
    assert_eq!(n.command.as_ref().unwrap().len(), 3);
    assert!(parse_accounts(Path::new("a.toml"), ACCOUNTS)
        .unwrap()
        .notify
        .is_none());
    // A plan's [notify] replaces the accounts file's; an empty one: no alerts.
    let (p, _) = parse_plan_only(
        Path::new("p.toml"),
        &format!("{PLAN}\n[notify]\nwebhook-url = \"http://alerts.internal/x\"\n"),
    )
    .unwrap();
    let mut loaded = Loaded {
        plan: p,
        accounts: a.clone(),
        accounts_path: "a.toml".into(),
    };
    assert_eq!(
        loaded.notify().unwrap().webhook_url.as_deref(),
        Some("http://alerts.internal/x")
    );
    assert!(loaded.notify().unwrap().sns_topic_arn.is_none());
    let (p, _) = parse_plan_only(Path::new("p.toml"), &format!("{PLAN}\n[notify]\n")).unwrap();
    loaded.plan = p;
    assert!(loaded.notify().is_none());
    let (p, _) = parse_plan_only(Path::new("p.toml"), PLAN).unwrap();
    loaded.plan = p;
    assert_eq!(loaded.notify(), a.notify.as_ref());
}

#[test]
fn bad_notify_values_name_file_line_and_key() {
    for (lines, key, says) in [
        (
            "sns-topic-arn = \"arn:aws:sqs:us-east-1:111111111111:q\"",
            "notify.sns-topic-arn",
            "not an SNS topic ARN",
        ),
        (
            "sns-topic-arn = \"arn:aws:sns:us-east1:111111111111:t\"",
            "notify.sns-topic-arn",
            "not an AWS region name",
        ),
        (
            "sns-topic-arn = \"arn:aws:sns:us-east-1:1111:t\"",
            "notify.sns-topic-arn",
            "not 12 digits",
        ),
        (
            "sns-topic-arn = \"arn:aws:sns:us-east-1:111111111111:a b\"",
            "notify.sns-topic-arn",
            "topic name",
        ),
        (
            "webhook-url = \"ftp://x/y\"",
            "notify.webhook-url",
            "not an http:// or https:// URL",
        ),
        ("webhook-url = \"http://\"", "notify.webhook-url", "no host"),
        (
            "webhook-url = \"http://h:99999/\"",
            "notify.webhook-url",
            "not a port",
        ),
        (
            "webhook-ca-file = \"/nonexistent/ca.pem\"\nwebhook-url = \"https://hooks.slack.com/x\"",
            "notify.webhook-ca-file",
            "cannot read `/nonexistent/ca.pem`",
        ),
        (
            "webhook-ca-file = \"/etc/hostname\"",
            "notify.webhook-ca-file",
            "without webhook-url",
        ),
        ("command = []", "notify.command", "as a list"),
        ("webhook-url = 3", "webhook-url", ""),
        ("sms = \"x\"", "sms", "unknown field"),
    ] {
        let src = format!("{ACCOUNTS}\n[notify]\n{lines}\n");
        let e = parse_accounts(Path::new("a.toml"), &src).unwrap_err();
        assert_eq!(e.key, key, "{lines}: {e}");
        assert_eq!(e.line, 12, "{lines}: {e}");
        assert!(e.message.contains(says), "{lines}: {e}");
    }
    // An empty [notify] in the accounts file names no destination.
    let e = parse_accounts(Path::new("a.toml"), &format!("{ACCOUNTS}\n[notify]\n")).unwrap_err();
    assert_eq!(e.key, "notify");
    assert!(e.message.contains("names no destination"), "{e}");
    // In a plan, the same checks.
    let e = plan_err(&format!("{PLAN}\n[notify]\nwebhook-url = \"http:/x\"\n"));
    assert_eq!((e.key.as_str(), e.line), ("notify.webhook-url", 23), "{e}");
}

#[test]
fn http_urls_split_into_host_port_and_path() {
    let u = HttpUrl::parse("http://127.0.0.1:9000/a/b?c=d#frag").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.path.as_str()),
        ("127.0.0.1", 9000, "/a/b?c=d")
    );
    let u = HttpUrl::parse("http://relay.internal").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.path.as_str()),
        ("relay.internal", 80, "/")
    );
    let u = HttpUrl::parse("http://[::1]:8080/x").unwrap();
    assert_eq!((u.host.as_str(), u.port), ("[::1]", 8080));
    assert!(HttpUrl::parse("http://user:pw@h/").is_err());
}
