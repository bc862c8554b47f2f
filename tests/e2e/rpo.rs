//! The agent's periodic RPO check (issue 17): a resource out of its RPO is
//! one `rpo-breach` alert per breach episode, to the SNS topic (in the
//! emulator's admin account) and to a webhook on a local HTTP server, however
//! many checks see it; a compliant resource sends nothing; a region that
//! cannot be listed is logged and decides nothing. The metrics count breached
//! resources per plan, tenant and region.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::Stdio;

use serde_json::{json, Value};

use crate::alerts::{sns_messages, topic, Hook};
use crate::harness::{s, term, wait_for, ChildGuard, Emulator, PlanText};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// The value of the sample `name{labels}` in a scrape, if present.
pub(crate) fn sample(body: &str, name_and_labels: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

fn breached(port: u16, tenant: &str) -> Option<f64> {
    sample(
        &scrape(port),
        &format!(
            "rolesnap_rpo_breached_resources{{plan=\"nightly\",tenant=\"{tenant}\",region=\"us-east-1\"}}"
        ),
    )
}

/// RPO checks of plan nightly the agent finished, as cvd.log tells them.
fn checks(emu: &Emulator) -> usize {
    emu.log_file("cvd.log")
        .matches("RPO check of plan [nightly]:")
        .count()
}

fn wait_checks(emu: &Emulator, more: usize) {
    let from = checks(emu);
    wait_for(&format!("{more} more RPO check(s)"), 60, || {
        checks(emu) >= from + more
    });
}

fn ids(v: &[Value]) -> BTreeSet<String> {
    v.iter().map(|i| s(&i["id"]).to_string()).collect()
}

#[test]
fn the_agent_sends_one_rpo_breach_alert_per_resource_and_episode_across_checks() {
    let emu = Emulator::start();
    let hook = Hook::start();
    let arn = topic(&emu);
    let accounts = emu.write_accounts(&["alpha", "beta"], &[]);
    let mut text = std::fs::read_to_string(&accounts).unwrap();
    text.push_str(&format!(
        "\n[notify]\nsns-topic-arn = \"{arn}\"\nwebhook-url = \"{}\"\n",
        hook.url()
    ));
    std::fs::write(&accounts, text).unwrap();
    // Daily at 03:00 with a copy to us-west-2: a day and an hour of RPO.
    let p = emu.write_plan(
        "nightly",
        PlanText::new()
            .cron("0 3 * * *")
            .retention("days = 7")
            .copy("us-west-2", "")
            .group("east", &["alpha", "beta"])
            .databases(false),
    );
    emu.backup_completed(&p);
    let alpha = ids(&emu.nightly_instances("alpha", "us-east-1"));
    let beta = ids(&emu.nightly_instances("beta", "us-east-1"));
    assert!(!alpha.is_empty() && !beta.is_empty());
    // alpha's points (both regions) were made three days ago: out of the RPO.
    let alpha_account = s(&emu.tenant("alpha")["account"]).to_string();
    let beta_account = s(&emu.tenant("beta")["account"]).to_string();
    emu.age_all(&alpha_account, 3);

    // --catch-up 0 and a plan that never ran: no slot runs, none is missed.
    let port = free_port();
    let mut agent = ChildGuard(
        emu.rolesnap()
            .args([
                "agent",
                "--plans",
                p.to_str().unwrap(),
                "--catch-up",
                "0",
                "--rpo-check-interval",
                "1",
                "--metrics",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_checks(&emu, 3);

    // One message per breached resource, however many checks saw it.
    let posts = hook.messages();
    assert_eq!(posts.len(), alpha.len(), "{posts:#?}");
    let mut told = BTreeSet::new();
    for m in &posts {
        assert_eq!(m["event"], "rpo-breach", "{m}");
        assert_eq!(m["plan"], "nightly", "{m}");
        assert_eq!(m["tenant"], "alpha", "{m}");
        assert_eq!(m["account"], alpha_account.as_str(), "{m}");
        assert_eq!(m["region"], "us-east-1", "{m}");
        assert_eq!(m["kind"], "instance", "{m}");
        assert_eq!(m["rpo_seconds"], 25 * 3600, "{m}");
        assert!(m["age_seconds"].as_i64().unwrap() >= 3 * 86_400, "{m}");
        assert!(s(&m["text"]).contains(s(&m["resource"])), "{m}");
        told.insert(s(&m["resource"]).to_string());
    }
    assert_eq!(told, alpha, "each of alpha's instances, none of beta's");
    let published = sns_messages(&emu, &arn);
    assert_eq!(published.len(), alpha.len(), "{published:#?}");
    let keys =
        |v: &[Value]| -> BTreeSet<String> { v.iter().map(|m| s(&m["key"]).to_string()).collect() };
    assert_eq!(keys(&published), keys(&posts));
    assert!(agent.try_wait().unwrap().is_none(), "the agent runs on");

    // The gauges: alpha's instances breached, beta's none.
    assert_eq!(breached(port, "alpha"), Some(alpha.len() as f64));
    assert_eq!(breached(port, "beta"), Some(0.0));

    // alpha is backed up again: compliant, nothing sent.
    let again = emu.backup(&p, &["--tenant", "alpha"]);
    assert_eq!(again.code, 0, "{again}");
    wait_for("alpha compliant in the metrics", 60, || {
        breached(port, "alpha") == Some(0.0)
    });
    assert_eq!(hook.messages().len(), alpha.len());

    // beta's copy region cannot be listed: logged, decides nothing (its
    // copies are not "missing"), and the agent runs on.
    emu.fault(json!({"action": "DescribeSnapshots", "account": beta_account, "region": "us-west-2", "code": "UnauthorizedOperation", "status": 403}));
    wait_checks(&emu, 2);
    assert_eq!(hook.messages().len(), alpha.len(), "{:#?}", hook.messages());
    let cvd = emu.log_file("cvd.log");
    assert!(
        cvd.contains("tenant beta us-west-2") && cvd.contains("not decided this check"),
        "{cvd}"
    );
    assert!(agent.try_wait().unwrap().is_none(), "the agent runs on");

    // alpha ages out again: a new episode, told once more per resource.
    emu.age_all(&alpha_account, 3);
    wait_checks(&emu, 3);
    let posts = hook.messages();
    assert_eq!(posts.len(), 2 * alpha.len(), "{posts:#?}");
    assert_eq!(keys(&posts).len(), 2 * alpha.len(), "new keys");
    assert_eq!(sns_messages(&emu, &arn).len(), 2 * alpha.len());

    term(&agent);
    wait_for("the agent to exit", 40, || {
        agent.try_wait().unwrap().is_some()
    });
}
