//! The emulator harness for end-to-end tests.
//!
//! Each test starts its own emulator (moto in server mode behind the layer in
//! tests/emulator/server.py) on a free loopback port, seeds it (admin account,
//! tenants alpha and beta that trust the admin with an ExternalId, gamma that
//! does not), drives the built `rolesnap` binary against it, and checks AWS
//! state through the emulator's API with its own SDK clients — never through
//! rolesnap's code or output alone.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub struct Emulator {
    child: Child,
    pub port: u16,
    pub url: String,
    pub fixture: Value,
    pub dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Every test, as it ends, proves that no secret it caused to exist
        // reached a log or an output of rolesnap.
        let leak = if std::thread::panicking() {
            None
        } else {
            self.leaked_secret()
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(where_) = leak {
            panic!("a secret (admin secret key, tenant secret key or session token) leaked into {where_}");
        }
    }
}

impl Emulator {
    /// Starts and seeds an emulator. Panics with the emulator's log when it
    /// does not come up.
    pub fn start() -> Emulator {
        let dir = tempfile::tempdir().unwrap();
        let python = std::env::var("ROLESNAP_PYTHON").unwrap_or_else(|_| "python3".into());
        let emu = repo_root().join("tests/emulator");
        let ready = dir.path().join("port");
        let log = std::fs::File::create(dir.path().join("emulator.log")).unwrap();
        let child = Command::new(&python)
            .arg(emu.join("server.py"))
            .args(["--port", "0", "--ready-file"])
            .arg(&ready)
            .env_remove("MOTO_ACCOUNT_ID")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start python3 tests/emulator/server.py (is python3 with moto installed?)");
        let mut emulator = Emulator {
            child,
            port: 0,
            url: String::new(),
            fixture: Value::Null,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(s) = std::fs::read_to_string(&ready) {
                if let Ok(p) = s.trim().parse() {
                    emulator.port = p;
                    break;
                }
            }
            if let Ok(Some(status)) = emulator.child.try_wait() {
                panic!("emulator exited with {status}: {}", emulator.log());
            }
            assert!(
                Instant::now() < deadline,
                "emulator not ready in 60 s: {}",
                emulator.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        emulator.url = format!("http://127.0.0.1:{}", emulator.port);
        let fixture = emulator.dir.path().join("fixture.json");
        let out = Command::new(&python)
            .arg(emu.join("seed.py"))
            .args(["--endpoint", &emulator.url, "--out"])
            .arg(&fixture)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "seed failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        emulator.fixture =
            serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
        emulator
    }

    /// Looks for the admin secret key and every temporary secret key and
    /// session token the emulator issued in all of rolesnap's logs and outputs
    /// of this test. Returns where one was found.
    pub fn leaked_secret(&self) -> Option<String> {
        if self.port == 0 || self.fixture.is_null() {
            return None;
        }
        let creds = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.control("GET", "/_harness/credentials?secrets=1", None)
        }))
        .ok()?;
        let mut secrets = vec![self.admin_key().1];
        for c in creds["credentials"].as_array().into_iter().flatten() {
            for k in ["secret_access_key", "session_token"] {
                if let Some(v) = c[k].as_str() {
                    secrets.push(v.to_string());
                }
            }
        }
        let mut places: Vec<(String, String)> = vec![(
            "rolesnap output".into(),
            std::fs::read_to_string(self.path("outputs.txt")).unwrap_or_default(),
        )];
        for dir in [self.log_dir(), self.state_dir()] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if let Ok(text) = std::fs::read(e.path()) {
                    places.push((
                        e.path().display().to_string(),
                        String::from_utf8_lossy(&text).into_owned(),
                    ));
                }
            }
        }
        places
            .into_iter()
            .find(|(_, text)| {
                secrets
                    .iter()
                    .any(|s| s.len() >= 16 && text.contains(s.as_str()))
            })
            .map(|(place, _)| place)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.path("logs")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    pub fn admin_key(&self) -> (String, String) {
        let a = &self.fixture["admin"];
        (
            a["access_key_id"].as_str().unwrap().to_string(),
            a["secret_access_key"].as_str().unwrap().to_string(),
        )
    }

    pub fn tenant(&self, name: &str) -> &Value {
        self.fixture["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no tenant {name} in fixture"))
    }

    /// The seeded instances of a tenant in a region tagged `Backup=nightly`
    /// (what the tests' plans select), as the fixture describes them.
    pub fn nightly_instances(&self, tenant: &str, region: &str) -> Vec<Value> {
        self.tenant(tenant)["resources"][region]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["tags"]["Backup"] == "nightly")
            .cloned()
            .collect()
    }

    /// Writes an accounts file for the given tenants (names from the fixture).
    /// `overrides` replaces a tenant's ExternalId (to test a wrong one).
    pub fn write_accounts(&self, tenants: &[&str], overrides: &[(&str, &str)]) -> PathBuf {
        let mut s = String::from("[admin]\nregion = \"us-east-1\"\n");
        for name in tenants {
            let t = self.tenant(name);
            s.push_str(&format!(
                "\n[[tenant]]\nname = \"{name}\"\nrole-arn = \"{}\"\n",
                t["role_arn"].as_str().unwrap()
            ));
            let ext = overrides
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, x)| x.to_string())
                .or_else(|| t["external_id"].as_str().map(str::to_string));
            if let Some(x) = ext {
                s.push_str(&format!("external-id = \"{x}\"\n"));
            }
            let regions: Vec<String> = t["regions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("\"{}\"", r.as_str().unwrap()))
                .collect();
            s.push_str(&format!("regions = [{}]\n", regions.join(", ")));
        }
        let p = self.path("accounts.toml");
        std::fs::write(&p, s).unwrap();
        p
    }

    /// Writes an accounts file for the given tenants and the seeded vault
    /// (`[[vault]]` "vault", its role, ExternalId and a key per region).
    pub fn write_accounts_with_vault(&self, tenants: &[&str]) -> PathBuf {
        let p = self.write_accounts(tenants, &[]);
        let mut text = std::fs::read_to_string(&p).unwrap();
        let v = self.vault();
        text.push_str(&format!(
            "\n[[vault]]\nname = \"{}\"\nrole-arn = \"{}\"\nexternal-id = \"{}\"\n[vault.keys]\n",
            s(&v["name"]),
            s(&v["role_arn"]),
            s(&v["external_id"])
        ));
        for (region, key) in v["keys"].as_object().unwrap() {
            text.push_str(&format!("{region} = \"{}\"\n", key.as_str().unwrap()));
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The seeded vault account (fixture `vaults[0]`).
    pub fn vault(&self) -> &Value {
        &self.fixture["vaults"][0]
    }

    pub fn vault_account(&self) -> String {
        s(&self.vault()["account"]).to_string()
    }

    /// SDK clients acting in the vault account (its role, assumed by the admin).
    pub async fn vault_ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.account_config(&self.vault_account(), region).await)
    }

    pub async fn vault_rds(&self, region: &str) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.account_config(&self.vault_account(), region).await)
    }

    /// Writes a plan file beside the accounts file (`body`: its text, or a [`PlanText`]).
    pub fn write_plan(&self, name: &str, body: impl std::fmt::Display) -> PathBuf {
        let p = self.path(&format!("{name}.toml"));
        std::fs::write(&p, body.to_string()).unwrap();
        p
    }

    /// The rolesnap binary with the admin's credentials and the emulator endpoint,
    /// and nothing else from the caller's AWS environment (nor RUST_LOG, whose
    /// events would mix into what the tests read on stderr).
    pub fn rolesnap(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rolesnap"));
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("ROLESNAP_") || k == "RUST_LOG" {
                c.env_remove(k);
            }
        }
        let (key, secret) = self.admin_key();
        c.env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_CONFIG_FILE", self.path("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path("no-aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("ROLESNAP_LOG_DIR", self.log_dir())
            .env("ROLESNAP_STATE_DIR", self.state_dir())
            .current_dir(self.dir.path());
        c
    }

    /// Runs rolesnap with `args`, records its output for the secrets check.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_cmd(self.rolesnap(), args)
    }

    /// [`Emulator::run`] with the ledger in `state` (another access node,
    /// shard or pod).
    pub fn run_in(&self, state: &Path, args: &[&str]) -> Run {
        let mut c = self.rolesnap();
        c.env("ROLESNAP_STATE_DIR", state);
        self.run_cmd(c, args)
    }

    fn run_cmd(&self, mut cmd: Command, args: &[&str]) -> Run {
        let out = cmd.args(args).output().unwrap();
        let run = Run::from(out);
        let mut all = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("outputs.txt"))
            .unwrap();
        writeln!(
            all,
            "$ rolesnap {}\n{}{}",
            args.join(" "),
            run.stdout,
            run.stderr
        )
        .unwrap();
        run
    }

    /// `rolesnap backup` of plan `p` with JSON output and a 0.2 s poll, then
    /// `extra` (e.g. `--no-copy`, `--region R`). Asserts nothing: see
    /// [`Run::reports`].
    pub fn backup(&self, p: &Path, extra: &[&str]) -> Run {
        self.run(&backup_args(p, extra))
    }

    /// [`Emulator::backup`] with the ledger in `state`.
    pub fn backup_in(&self, state: &Path, p: &Path, extra: &[&str]) -> Run {
        self.run_in(state, &backup_args(p, extra))
    }

    /// [`Emulator::backup`] that must exit 0 with every job it ran (the
    /// backup, then its Snap Copy when the plan copies) `Completed`: the jobs'
    /// reports.
    pub fn backup_completed(&self, p: &Path) -> Vec<Value> {
        let run = self.backup(p, &[]);
        assert_eq!(run.code, 0, "{run}");
        let reports = run.reports();
        for r in &reports {
            assert_eq!(r["status"], "Completed", "{r}");
        }
        reports
    }

    /// `rolesnap restore <args[0]> --plan p <args[1..]> --tenant T` with JSON
    /// output and a 0.2 s poll. Asserts nothing.
    pub fn restore(&self, p: &Path, tenant: &str, args: &[&str]) -> Run {
        let mut all = vec!["restore", args[0], "--plan", p.to_str().unwrap()];
        all.extend_from_slice(&args[1..]);
        all.extend_from_slice(&["--tenant", tenant, "-o", "json", "--poll-interval", "0.2"]);
        self.run(&all)
    }

    // ------------------------------------------------------------ control API

    pub fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        assert!(
            head.starts_with("HTTP/1.1 2") || head.starts_with("HTTP/1.0 2"),
            "control {method} {path} failed: {head}\n{body}"
        );
        serde_json::from_str(body).unwrap_or(Value::Null)
    }

    /// Makes the resources `ids` of `account` in `region` look `days` days old.
    pub fn age<'a>(
        &self,
        account: &str,
        region: &str,
        ids: impl IntoIterator<Item = &'a String>,
        days: i64,
    ) {
        let items: Vec<Value> = ids
            .into_iter()
            .map(|id| {
                serde_json::json!({"account": account, "region": region, "id": id, "age_seconds": days * 86_400})
            })
            .collect();
        self.control(
            "POST",
            "/_harness/age",
            Some(serde_json::json!({ "items": items })),
        );
    }

    /// Makes everything of `account` look `days` days old.
    pub fn age_all(&self, account: &str, days: i64) {
        self.control(
            "POST",
            "/_harness/age",
            Some(
                serde_json::json!({"all": true, "account": account, "age_seconds": days * 86_400}),
            ),
        );
    }

    pub fn fault(&self, rule: Value) -> Value {
        self.control("POST", "/_harness/faults", Some(rule))
    }

    pub fn config(&self, cfg: Value) -> Value {
        self.control("POST", "/_harness/config", Some(cfg))
    }

    /// Calls counted by the layer: (account, region, action, outcome) → count.
    pub fn calls(&self) -> Vec<(String, String, String, String, u64)> {
        self.control("GET", "/_harness/calls", None)["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["account"].as_str().unwrap_or("").to_string(),
                    c["region"].as_str().unwrap_or("").to_string(),
                    c["action"].as_str().unwrap_or("").to_string(),
                    c["outcome"].as_str().unwrap_or("").to_string(),
                    c["count"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    pub fn count_calls(&self, account: &str, action: &str, outcome: &str) -> u64 {
        self.calls()
            .iter()
            .filter(|c| c.0 == account && c.2 == action && c.3 == outcome)
            .map(|c| c.4)
            .sum()
    }

    // ------------------------------------------------------------ independent AWS view

    /// An SDK config acting in `account` directly (the emulator's account
    /// header), for checks and set-up that must not go through rolesnap.
    pub async fn account_config(&self, account: &str, region: &str) -> aws_config::SdkConfig {
        // moto picks the account of a request signed with an unknown key from
        // the x-moto-account-id header; the seed's admin key is known, so
        // assume the tenant role instead when the tenant trusts the admin.
        let (key, secret) = self.admin_key();
        let admin = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new(key, secret, None, None, "test-admin"))
            .load()
            .await;
        if account == self.fixture["admin"]["account"] {
            return admin;
        }
        let tenant = self.fixture["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .chain(self.fixture["vaults"].as_array().into_iter().flatten())
            .find(|t| t["account"] == account)
            .expect("tenant or vault account in fixture");
        let sts = aws_sdk_sts::Client::new(&admin);
        let mut req = sts
            .assume_role()
            .role_arn(tenant["role_arn"].as_str().unwrap())
            .role_session_name("e2e-check");
        if let Some(x) = tenant["external_id"].as_str() {
            req = req.external_id(x);
        }
        let c = req
            .send()
            .await
            .expect("test assumes tenant role")
            .credentials
            .unwrap();
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "test-tenant",
            ))
            .load()
            .await
    }

    pub async fn ec2(&self, tenant: &str, region: &str) -> aws_sdk_ec2::Client {
        let acct = self.tenant(tenant)["account"].as_str().unwrap().to_string();
        aws_sdk_ec2::Client::new(&self.account_config(&acct, region).await)
    }

    /// Launches `count` instances of `tenant` in `region` that the test
    /// plans select (`Backup=nightly`), with one 8 GiB EBS volume per device
    /// of `devices` (encrypted with the account's default key when
    /// `encrypted`); returns their ids.
    pub async fn run_selected_instances(
        &self,
        tenant: &str,
        region: &str,
        count: i32,
        devices: &[&str],
        encrypted: bool,
    ) -> Vec<String> {
        let mut run = self
            .ec2(tenant, region)
            .await
            .run_instances()
            .image_id(self.fixture["image_id"].as_str().unwrap())
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(count)
            .max_count(count)
            .tag_specifications(selected_by_nightly());
        for dev in devices {
            run = run.block_device_mappings(
                aws_sdk_ec2::types::BlockDeviceMapping::builder()
                    .device_name(*dev)
                    .ebs(
                        aws_sdk_ec2::types::EbsBlockDevice::builder()
                            .volume_size(8)
                            .encrypted(encrypted)
                            .build(),
                    )
                    .build(),
            );
        }
        let out = run.send().await.unwrap();
        out.instances()
            .iter()
            .map(|i| i.instance_id().unwrap().to_string())
            .collect()
    }

    pub async fn rds(&self, tenant: &str, region: &str) -> aws_sdk_rds::Client {
        let acct = self.tenant(tenant)["account"].as_str().unwrap().to_string();
        aws_sdk_rds::Client::new(&self.account_config(&acct, region).await)
    }

    /// The tenant's own snapshots in `region`, as AWS lists them: id → tags.
    pub async fn snapshots(&self, tenant: &str, region: &str) -> BTreeMap<String, Tags> {
        let out = self
            .ec2(tenant, region)
            .await
            .describe_snapshots()
            .owner_ids("self")
            .send()
            .await
            .unwrap();
        out.snapshots()
            .iter()
            .map(|s| (s.snapshot_id().unwrap().to_string(), tags_of(s.tags())))
            .collect()
    }

    /// Every file under the log directory, concatenated, plus every output
    /// rolesnap printed in this test.
    pub fn all_logs_and_outputs(&self) -> String {
        let mut s = std::fs::read_to_string(self.path("outputs.txt")).unwrap_or_default();
        if let Ok(rd) = std::fs::read_dir(self.log_dir()) {
            for e in rd.flatten() {
                s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        s
    }

    pub fn log_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir().join(name)).unwrap_or_default()
    }

    // ------------------------------------------------------------ IAM enforcement

    /// A raw request to the emulator with any content type (e.g. moto's own
    /// `/moto-api/...` endpoints, which take text/plain): (status, body).
    pub fn raw_request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, body.to_string())
    }

    /// Switches moto's IAM enforcement on (every later call is checked against
    /// the caller's policies). Set-up calls that use the seed's unknown key fail
    /// from then on, so do the set-up first.
    pub fn enforce_iam(&self) {
        let (status, body) = self.raw_request("POST", "/moto-api/reset-auth", "text/plain", "0");
        assert_eq!(status, 200, "reset-auth: {body}");
    }

    /// Replaces every permissions policy of a tenant's role with `document`
    /// (tests/emulator/attach_policy.py); returns the helper's JSON report.
    pub fn replace_tenant_policy(&self, tenant: &str, document: &Value) -> Value {
        let t = self.tenant(tenant).clone();
        self.replace_role_policy(tenant, &t, document)
    }

    /// The same for the seeded vault's role (fixture `vaults[0]`).
    pub fn replace_vault_policy(&self, document: &Value) -> Value {
        let v = self.vault().clone();
        self.replace_role_policy("vault", &v, document)
    }

    fn replace_role_policy(&self, tenant: &str, t: &Value, document: &Value) -> Value {
        let role = t["role_arn"].as_str().unwrap().rsplit('/').next().unwrap();
        let file = self.path(&format!("{tenant}-policy.json"));
        std::fs::write(&file, serde_json::to_string_pretty(document).unwrap()).unwrap();
        let python = std::env::var("ROLESNAP_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(python)
            .arg(repo_root().join("tests/emulator/attach_policy.py"))
            .args(["--endpoint", &self.url, "--account"])
            .arg(t["account"].as_str().unwrap())
            .args(["--role", role, "--policy-file"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "attach_policy.py failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The job reports of a JSON run: its array (a backup and its Snap Copy
    /// or Data Aging job), or its one report.
    pub fn reports(&self) -> Vec<Value> {
        let v = self.json();
        v.as_array().cloned().unwrap_or_else(|| vec![v])
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Every resource id the seed created for a tenant in a region, by kind.
pub fn seeded(fixture_tenant: &Value, region: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    // (instances, DB instances outside clusters, Aurora clusters)
    let r = &fixture_tenant["resources"][region];
    let ids = |k: &str, f: &dyn Fn(&Value) -> bool| -> Vec<String> {
        let mut v: Vec<String> = r[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| f(x))
                    .map(|x| x["id"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    (
        ids("instances", &|_| true),
        ids("db_instances", &|d| d["cluster_id"].is_null()),
        ids("db_clusters", &|_| true),
    )
}

/// Polls `f` until it holds; fails the test after `secs` seconds.
pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends SIGTERM to `child`.
pub fn term(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// A child process killed when the test ends, even when an assertion fails
/// first (a daemon must not outlive its test).
pub struct ChildGuard(pub std::process::Child);

impl std::ops::Deref for ChildGuard {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn backup_args<'a>(p: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "backup",
        "--plan",
        p.to_str().unwrap(),
        "-o",
        "json",
        "--poll-interval",
        "0.2",
    ];
    args.extend_from_slice(extra);
    args
}

/// The tag specification of an instance the test plans select
/// (`Backup=nightly`), for RunInstances.
pub fn selected_by_nightly() -> aws_sdk_ec2::types::TagSpecification {
    aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("Backup")
                .value("nightly")
                .build(),
        )
        .build()
}

/// A resource's tags: key → value.
pub type Tags = BTreeMap<String, String>;

/// An EC2 resource's tags as a map (what every check of the tag contract reads).
pub fn tags_of(t: &[aws_sdk_ec2::types::Tag]) -> Tags {
    t.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// An RDS resource's tags as a map.
pub fn rds_tags_of(t: &[aws_sdk_rds::types::Tag]) -> Tags {
    t.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A JSON string value (panics on anything else).
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

// ------------------------------------------------------------ plan files

/// The text of a plan file, built from the parts the tests vary. Unless
/// changed: plan `nightly`, id 2; one group `east` of alpha in us-east-1
/// selecting `Backup=nightly`; no method, schedule, retention, lock, copy, nor
/// `rds` / `aurora` lines.
#[derive(Debug, Clone)]
pub struct PlanText {
    name: String,
    id: u32,
    method: Option<String>,
    cron: Option<String>,
    timezone: Option<String>,
    retention: Option<String>,
    lock: Option<String>,
    /// Region, then the other lines of the `[[copy]]` table.
    copy: Vec<(String, String)>,
    /// The lines of one `[[vault]]` table (after `name = ...`).
    vault: Option<(String, String)>,
    group: String,
    tenants: Vec<String>,
    /// None: no `regions` line (every region of the tenants).
    regions: Option<Vec<String>>,
    /// `rds = b` and `aurora = b`, or neither line.
    databases: Option<bool>,
}

impl PlanText {
    pub fn new() -> PlanText {
        PlanText {
            name: "nightly".into(),
            id: 2,
            method: None,
            cron: None,
            timezone: None,
            retention: None,
            lock: None,
            copy: Vec::new(),
            vault: None,
            group: "east".into(),
            tenants: vec!["alpha".into()],
            regions: Some(vec!["us-east-1".into()]),
            databases: None,
        }
    }

    pub fn name(mut self, name: &str, id: u32) -> Self {
        self.name = name.into();
        self.id = id;
        self
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.into());
        self
    }

    pub fn cron(mut self, cron: &str) -> Self {
        self.cron = Some(cron.into());
        self
    }

    pub fn timezone(mut self, tz: &str) -> Self {
        self.timezone = Some(tz.into());
        self
    }

    /// The lines of `[retention]`, e.g. `days = 7`.
    pub fn retention(mut self, lines: &str) -> Self {
        self.retention = Some(lines.into());
        self
    }

    /// The lines of `[lock]`, e.g. `mode = "governance"`.
    pub fn lock(mut self, lines: &str) -> Self {
        self.lock = Some(lines.into());
        self
    }

    /// A `[[copy]]` to `region`, with `lines` after its region (may be
    /// empty). Called again for another region, one more copy rule; for the
    /// same region, its lines replace the earlier ones.
    pub fn copy(mut self, region: &str, lines: &str) -> Self {
        match self.copy.iter_mut().find(|(r, _)| r == region) {
            Some(rule) => rule.1 = lines.into(),
            None => self.copy.push((region.into(), lines.into())),
        }
        self
    }

    /// A `[[vault]]` rule for vault `name`, with `lines` after its name
    /// (e.g. `regions = ["same"]`, `retention = { days = 30 }`).
    pub fn vault(mut self, name: &str, lines: &str) -> Self {
        self.vault = Some((name.into(), lines.into()));
        self
    }

    pub fn no_copy(mut self) -> Self {
        self.copy.clear();
        self
    }

    pub fn group(mut self, name: &str, tenants: &[&str]) -> Self {
        self.group = name.into();
        self.tenants = tenants.iter().map(|t| t.to_string()).collect();
        self
    }

    /// The group's regions; none: no `regions` line.
    pub fn regions(mut self, regions: &[&str]) -> Self {
        self.regions =
            (!regions.is_empty()).then(|| regions.iter().map(|r| r.to_string()).collect());
        self
    }

    /// `rds` and `aurora` of the group, both `on`.
    pub fn databases(mut self, on: bool) -> Self {
        self.databases = Some(on);
        self
    }

    /// Neither `rds` nor `aurora` line (the plan's defaults).
    pub fn no_database_lines(mut self) -> Self {
        self.databases = None;
        self
    }
}

impl Default for PlanText {
    fn default() -> Self {
        PlanText::new()
    }
}

impl std::fmt::Display for PlanText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| {
            v.iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "\n[plan]\nname = \"{}\"\nid = {}\n", self.name, self.id)?;
        if let Some(m) = &self.method {
            writeln!(f, "method = \"{m}\"")?;
        }
        if let Some(c) = &self.cron {
            write!(f, "\n[schedule]\ncron = \"{c}\"\n")?;
            if let Some(tz) = &self.timezone {
                writeln!(f, "timezone = \"{tz}\"")?;
            }
        }
        if let Some(r) = &self.retention {
            write!(f, "\n[retention]\n{r}\n")?;
        }
        if let Some(l) = &self.lock {
            write!(f, "\n[lock]\n{l}\n")?;
        }
        for (region, lines) in &self.copy {
            write!(f, "\n[[copy]]\nregion = \"{region}\"\n")?;
            if !lines.is_empty() {
                writeln!(f, "{lines}")?;
            }
        }
        if let Some((name, lines)) = &self.vault {
            write!(f, "\n[[vault]]\nname = \"{name}\"\n")?;
            if !lines.is_empty() {
                writeln!(f, "{lines}")?;
            }
        }
        write!(
            f,
            "\n[[group]]\nname = \"{}\"\ntenants = [{}]\n",
            self.group,
            list(&self.tenants)
        )?;
        if let Some(r) = &self.regions {
            writeln!(f, "regions = [{}]", list(r))?;
        }
        writeln!(f, "include-tags = [\"Backup=nightly\"]")?;
        if let Some(b) = self.databases {
            write!(f, "rds = {b}\naurora = {b}\n")?;
        }
        Ok(())
    }
}
