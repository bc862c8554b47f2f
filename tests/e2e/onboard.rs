//! `rolesnap onboard`: the CloudFormation template creates the tenant role
//! with exactly the documents `rolesnap policy tenant` prints.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::repo_root;

fn rolesnap(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rolesnap"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Resolves `Ref` and `Fn::Sub` of parameters, as CloudFormation would.
fn resolve(v: &Value, params: &BTreeMap<String, String>) -> Value {
    match v {
        Value::Object(o) if o.len() == 1 && o.contains_key("Ref") => {
            let p = o["Ref"].as_str().unwrap();
            json!(params.get(p).unwrap_or_else(|| panic!("no parameter {p}")))
        }
        Value::Object(o) if o.len() == 1 && o.contains_key("Fn::Sub") => {
            let mut s = o["Fn::Sub"].as_str().unwrap().to_string();
            for (k, val) in params {
                s = s.replace(&format!("${{{k}}}"), val);
            }
            assert!(!s.contains("${"), "unresolved Fn::Sub: {s}");
            json!(s)
        }
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), resolve(v, params)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| resolve(v, params)).collect()),
        other => other.clone(),
    }
}

/// The trust and permission documents the template's role would get with
/// these parameter values (the template's defaults for the others).
fn role_documents(template: &Value, overrides: &[(&str, &str)]) -> (Value, Value) {
    let mut params = BTreeMap::new();
    for (name, p) in template["Parameters"].as_object().unwrap() {
        if let Some(d) = p["Default"].as_str() {
            params.insert(name.clone(), d.to_string());
        }
    }
    for (k, v) in overrides {
        params.insert(k.to_string(), v.to_string());
    }
    let resources = template["Resources"].as_object().unwrap();
    assert_eq!(resources.len(), 1, "one resource: the role");
    let role = &resources["TenantRole"];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    let props = resolve(&role["Properties"], &params);
    assert_eq!(props["RoleName"], json!(params["RoleName"]));
    let policies = props["Policies"].as_array().unwrap();
    assert_eq!(policies.len(), 1);
    (
        props["AssumeRolePolicyDocument"].clone(),
        policies[0]["PolicyDocument"].clone(),
    )
}

fn printed(admin: &str, external_id: &str, accounts: Option<&str>) -> Value {
    let mut args = vec![
        "policy",
        "tenant",
        "--admin-account",
        admin,
        "--external-id",
        external_id,
        "-o",
        "json",
    ];
    if let Some(a) = accounts {
        args.extend(["--accounts", a]);
    }
    let (code, out, err) = rolesnap(&args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn onboard(args: &[&str]) -> Value {
    let mut all = vec!["onboard"];
    all.extend_from_slice(args);
    let (code, out, err) = rolesnap(&all);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn the_onboarding_template_embeds_exactly_the_printed_tenant_documents() {
    let t = onboard(&[
        "--admin-account",
        "111111111111",
        "--external-id",
        "rolesnap-alpha-ext",
    ]);
    assert_eq!(t["AWSTemplateFormatVersion"], "2010-09-09");
    for p in ["AdminAccountId", "ExternalId", "RoleName"] {
        assert!(t["Parameters"][p].is_object(), "parameter {p}");
    }
    assert_eq!(t["Parameters"]["AdminAccountId"]["Default"], "111111111111");
    assert_eq!(t["Parameters"]["RoleName"]["Default"], "vsa-role");
    assert!(t["Outputs"]["RoleArn"].is_object());
    // The defaults give the printed documents …
    let (trust, perms) = role_documents(&t, &[]);
    let want = printed("111111111111", "rolesnap-alpha-ext", None);
    assert_eq!(trust, want["tenant-trust"]);
    assert_eq!(perms, want["permissions"]);
    // … and other parameter values (a stack instance's overrides) give what
    // `policy tenant` prints for them: the template is parameterised, not fixed.
    let (trust, perms) = role_documents(
        &t,
        &[
            ("AdminAccountId", "999999999999"),
            ("ExternalId", "tenant-42-ext"),
        ],
    );
    let want = printed("999999999999", "tenant-42-ext", None);
    assert_eq!(trust, want["tenant-trust"]);
    assert_eq!(perms, want["permissions"]);
    // Neither the admin account nor the ExternalId is written into the role
    // itself: both come from the parameters.
    let role = t["Resources"]["TenantRole"].to_string();
    assert!(
        !role.contains("111111111111") && !role.contains("rolesnap-alpha-ext"),
        "{role}"
    );

    // Without --external-id, each stack must be given one.
    let t = onboard(&["--admin-account", "111111111111"]);
    assert!(t["Parameters"]["ExternalId"]["Default"].is_null());
    let (trust, _) = role_documents(&t, &[("ExternalId", "x-1")]);
    assert_eq!(trust, printed("111111111111", "x-1", None)["tenant-trust"]);
}

#[test]
fn the_onboarding_template_allows_sharing_with_the_accounts_files_vaults() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = dir.path().join("accounts.toml");
    let mut text = std::fs::read_to_string(repo_root().join("plans/accounts.toml")).unwrap();
    text.push_str(
        "\n[[vault]]\nname = \"vault\"\nrole-arn = \"arn:aws:iam::555555555555:role/rolesnap-vault\"\n\
         external-id = \"vault-ext\"\n[vault.keys]\n\
         us-east-1 = \"arn:aws:kms:us-east-1:555555555555:key/1234abcd-12ab-34cd-56ef-1234567890ab\"\n",
    );
    std::fs::write(&accounts, text).unwrap();
    let a = accounts.to_str().unwrap();
    let t = onboard(&[
        "--admin-account",
        "111111111111",
        "--external-id",
        "e-1",
        "--accounts",
        a,
        "--role-name",
        "rolesnap-tenant",
    ]);
    assert_eq!(t["Parameters"]["RoleName"]["Default"], "rolesnap-tenant");
    let (trust, perms) = role_documents(&t, &[]);
    let want = printed("111111111111", "e-1", Some(a));
    assert_eq!(trust, want["tenant-trust"]);
    assert_eq!(perms, want["permissions"]);
    assert!(
        perms.to_string().contains("555555555555"),
        "the vault is a share target"
    );
    assert_ne!(perms, printed("111111111111", "e-1", None)["permissions"]);
}

#[test]
fn onboarding_refuses_bad_arguments_before_printing() {
    for args in [
        vec!["onboard", "--admin-account", "1111"],
        vec![
            "onboard",
            "--admin-account",
            "111111111111",
            "--external-id",
            "x",
        ],
        vec![
            "onboard",
            "--admin-account",
            "111111111111",
            "--role-name",
            "a/b",
        ],
    ] {
        let (code, out, err) = rolesnap(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.starts_with("error: "), "{err}");
    }
}

/// Creates an organization (the admin account its management account) with
/// three members, one of them closed; returns (name, id) of the members.
fn seed_organization(emu: &crate::harness::Emulator) -> Vec<(String, String, String)> {
    let (key, secret) = emu.admin_key();
    let python = std::env::var("ROLESNAP_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args([
            "-c",
            r#"
import boto3, json, os
o = boto3.client("organizations", region_name="us-east-1", endpoint_url=os.environ["URL"])
o.create_organization(FeatureSet="ALL")
ids = []
for name, email in [("Payments Prod", "pay@example.com"), ("Data Lake", "data@example.com"), ("Old Sandbox", "old@example.com")]:
    ids.append((name, email, o.create_account(Email=email, AccountName=name)["CreateAccountStatus"]["AccountId"]))
o.close_account(AccountId=ids[2][2])
print(json.dumps(ids))
"#,
        ])
        .env("URL", &emu.url)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<(String, String, String)>>(&out.stdout).unwrap()
}

#[test]
fn accounts_from_organization_writes_active_members_and_merges_without_touching_written_entries() {
    let emu = crate::harness::Emulator::start();
    let members = seed_organization(&emu);
    let (pay, data, old) = (&members[0].2, &members[1].2, &members[2].2);

    // To stdout: the two active members, not the closed one nor the management account.
    let r = emu.run(&[
        "accounts",
        "--from-organization",
        "--regions",
        "us-east-1,us-west-2",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r
        .stdout
        .contains(&format!("role-arn = \"arn:aws:iam::{pay}:role/vsa-role\"")));
    assert!(
        r.stdout.contains("name = \"payments-prod\""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("name = \"data-lake\""), "{}", r.stdout);
    assert!(r
        .stdout
        .contains("regions = [\"us-east-1\", \"us-west-2\"]"));
    assert!(
        !r.stdout.contains(old.as_str()),
        "a closed account is left out"
    );
    assert!(
        !r.stdout.contains("111111111111"),
        "the management account is left out"
    );
    assert!(r.stderr.contains("not active"), "{}", r.stderr);
    // What it prints is an accounts file once an [admin] table is put before it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("org.toml");
    std::fs::write(&file, format!("[admin]\n{}", r.stdout)).unwrap();
    let parsed = rolesnap_core::config::load_accounts(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.tenants.len(), 2);
    let ids: Vec<_> = parsed
        .tenants
        .iter()
        .map(|t| t.external_id.clone().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "an ExternalId per tenant");
    assert!(ids
        .iter()
        .all(|x| x.starts_with("rolesnap-") && x.len() == 41));

    // JSON, with --exclude.
    let r = emu.run(&[
        "accounts",
        "--from-organization",
        "--exclude",
        data,
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    let added: Vec<&str> = v["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["account"].as_str().unwrap())
        .collect();
    assert_eq!(added, vec![pay.as_str()]);
    let skipped = v["skipped"].to_string();
    assert!(skipped.contains("--exclude") && skipped.contains("management account"));

    // Merged: a person already wrote Payments Prod (their own name, ExternalId
    // and comments): it stays byte for byte; Data Lake is appended.
    let accounts = emu.write_accounts(&["alpha", "beta"], &[]);
    let mut written = std::fs::read_to_string(&accounts).unwrap();
    written.push_str(&format!(
        "\n# Payments, onboarded by hand in March.\n[[tenant]]\nname = \"payments\"\n\
         role-arn = \"arn:aws:iam::{pay}:role/backup-role\"\nexternal-id = \"hand-written-ext\"\n"
    ));
    std::fs::write(&accounts, &written).unwrap();
    let a = accounts.to_str().unwrap();
    let r = emu.run(&["accounts", "--from-organization", "--merge", a]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("added 1 tenant(s): data-lake"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("kept as written"), "{}", r.stdout);
    let merged = std::fs::read_to_string(&accounts).unwrap();
    assert!(
        merged.starts_with(&written),
        "every line a person wrote is kept"
    );
    assert_eq!(merged.matches(pay.as_str()).count(), 1, "{merged}");
    let parsed = rolesnap_core::config::load_accounts(&accounts).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = parsed.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["alpha", "beta", "payments", "data-lake"]);
    // Again: nothing new, the file is unchanged.
    let r = emu.run(&["accounts", "--from-organization", "--merge", a]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("nothing to add"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&accounts).unwrap(), merged);

    // The tenant role for a new entry: `rolesnap onboard` with its ExternalId.
    let x = parsed.tenants[3].external_id.clone().unwrap();
    let (code, out, _) = rolesnap(&[
        "onboard",
        "--admin-account",
        "111111111111",
        "--external-id",
        &x,
    ]);
    assert_eq!(code, 0);
    assert!(out.contains(&x));
}

/// Runs Python with boto3 against the emulator, as a fresh account (an
/// unknown key: moto takes the account from the x-moto-account-id header).
fn boto3_as(emu: &crate::harness::Emulator, account: &str, script: &str, args: &[&str]) -> String {
    let python = std::env::var("ROLESNAP_PYTHON").unwrap_or_else(|_| "python3".into());
    let prelude = r#"
import boto3, json, os, sys
def client(service):
    c = boto3.client(service, region_name="us-east-1", endpoint_url=os.environ["URL"],
                     aws_access_key_id="AKIAONBOARDTEST00001", aws_secret_access_key="x" * 40)
    c.meta.events.register("before-sign.*.*",
        lambda request, **kw: request.headers.__setitem__("x-moto-account-id", os.environ["ACCOUNT"]))
    return c
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(format!("{prelude}\n{script}"))
        .args(args)
        .env("URL", &emu.url)
        .env("ACCOUNT", account)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_stack_from_the_onboarding_template_gives_a_role_rolesnap_assumes() {
    let emu = crate::harness::Emulator::start();
    let admin = emu.fixture["admin"]["account"]
        .as_str()
        .unwrap()
        .to_string();
    let tenant = "666666666666";
    let (code, template, err) = rolesnap(&["onboard", "--admin-account", &admin]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenant-role.json");
    std::fs::write(&file, &template).unwrap();
    // The tenant deploys it (moto's CloudFormation) with its ExternalId.
    let out = boto3_as(
        &emu,
        tenant,
        r#"
cf = client("cloudformation")
cf.create_stack(StackName="rolesnap-tenant-role", TemplateBody=open(sys.argv[1]).read(),
                Capabilities=["CAPABILITY_NAMED_IAM"],
                Parameters=[{"ParameterKey": "ExternalId", "ParameterValue": "cfn-ext-1"}])
s = cf.describe_stacks(StackName="rolesnap-tenant-role")["Stacks"][0]
arn = [o["OutputValue"] for o in s["Outputs"] if o["OutputKey"] == "RoleArn"][0]
iam = client("iam")
role = iam.get_role(RoleName="vsa-role")["Role"]
policy = iam.get_role_policy(RoleName="vsa-role", PolicyName="rolesnap-permissions")["PolicyDocument"]
# moto 5.2.1's CloudFormation stores an inline policy given as an object as
# Python's repr of it (tests/emulator/README.md); read that back as the object.
if isinstance(policy, str):
    import ast
    policy = ast.literal_eval(policy)
print(json.dumps({"status": s["StackStatus"], "arn": arn,
                  "trust": role["AssumeRolePolicyDocument"], "permissions": policy}))
"#,
        &[file.to_str().unwrap()],
    );
    let made: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(made["status"], "CREATE_COMPLETE", "{made}");
    assert_eq!(made["arn"], format!("arn:aws:iam::{tenant}:role/vsa-role"));
    let want = printed(&admin, "cfn-ext-1", None);
    assert_eq!(
        made["trust"], want["tenant-trust"],
        "the deployed trust policy"
    );
    assert_eq!(
        made["permissions"], want["permissions"],
        "the deployed permissions"
    );

    // rolesnap assumes it with that ExternalId, and not with another.
    let accounts = emu.path("accounts.toml");
    let write = |ext: &str| {
        std::fs::write(
            &accounts,
            format!(
                "[admin]\nregion = \"us-east-1\"\n\n[[tenant]]\nname = \"cfn\"\n\
                 role-arn = \"arn:aws:iam::{tenant}:role/vsa-role\"\nexternal-id = \"{ext}\"\n\
                 regions = [\"us-east-1\"]\n"
            ),
        )
        .unwrap()
    };
    let plan = emu.write_plan(
        "cfn",
        "[plan]\nname = \"cfn\"\nid = 11\n\n[[group]]\nname = \"all\"\ntenants = [\"cfn\"]\n",
    );
    let p = plan.to_str().unwrap();
    write("cfn-ext-1");
    let r = emu.run(&["discover", "--plan", p, "-o", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    write("not-the-ext-id");
    let r = emu.run(&["discover", "--plan", p, "-o", "json"]);
    assert_ne!(r.code, 0, "a wrong ExternalId is refused: {}", r.stdout);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("AccessDenied"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}
