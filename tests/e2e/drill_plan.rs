//! `[drill]` in a plan: the agent runs restore drills at the drill
//! schedule's slots, choosing the resources whose turn it is; checked
//! through the emulator's API (what was restored, and that it is gone).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::{s, tags_of, Emulator, PlanText};

/// Every instance of alpha in us-east-1 that carries `CV_Integrity_Snap`:
/// id → (state, tags).
async fn drill_instances(emu: &Emulator) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let out = ec2.describe_instances().send().await.unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| tags_of(i.tags()).contains_key("CV_Integrity_Snap"))
        .map(|i| {
            (
                i.instance_id().unwrap().to_string(),
                (
                    i.state().unwrap().name().unwrap().as_str().to_string(),
                    tags_of(i.tags()),
                ),
            )
        })
        .collect()
}

/// Sleeps until one second past the next multiple of `secs` (Unix time), so
/// that an `agent --once` started then has a fresh slot and the whole
/// interval before the next one.
fn just_after_a_slot(secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.as_millis() as u64 % (secs * 1000);
    std::thread::sleep(std::time::Duration::from_millis(secs * 1000 - into + 1000));
}

fn drill_jobs(emu: &Emulator) -> Vec<Value> {
    emu.run(&["jobs", "-o", "json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["job_type"] == "Drill")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_slot_drills_the_sampled_instances_in_turn_and_leaves_nothing() {
    let emu = Emulator::start();
    emu.write_accounts(&["alpha"], &[]);
    let res = &emu.tenant("alpha")["resources"]["us-east-1"];
    let subnet = s(&res["subnets"][0]["id"]).to_string();
    let sg = s(&res["security_group_id"]).to_string();
    // No [schedule]: the agent runs only the drills. Every 30 seconds (a
    // 6-field cron), one instance per slot.
    let text = format!(
        "{}\n[drill]\nschedule = \"*/30 * * * * *\"\nsample = 1\ntimeout-minutes = 5\n\n[[drill.target]]\nregion = \"us-east-1\"\nsubnet = \"{subnet}\"\nsecurity-groups = [\"{sg}\"]\n",
        PlanText::new().retention("days = 7")
    );
    let p = emu.write_plan("nightly", &text);
    emu.backup_completed(&p);
    let mut sources: Vec<String> = emu
        .nightly_instances("alpha", "us-east-1")
        .iter()
        .map(|i| s(&i["id"]).to_string())
        .collect();
    sources.sort();
    assert_eq!(sources.len(), 2, "the fixture has two nightly instances");

    // `schedule` lists the drill slots.
    let sched = emu.run(&["schedule", "--plans", p.to_str().unwrap(), "-o", "json"]);
    assert_eq!(sched.code, 0, "{sched}");
    let sj = sched.json();
    assert_eq!(sj[0]["drill"]["cron"], "*/30 * * * * *", "{sched}");
    assert_eq!(
        sj[0]["drill"]["next"].as_array().unwrap().len(),
        5,
        "{sched}"
    );
    assert_eq!(sj[0]["next"].as_array().unwrap().len(), 0, "{sched}");

    let agent = |emu: &Emulator| {
        let run = emu.run(&[
            "agent",
            "--once",
            "--plans",
            p.to_str().unwrap(),
            "--poll-interval",
            "0.2",
        ]);
        assert_eq!(run.code, 0, "{run}");
    };
    just_after_a_slot(30);
    agent(&emu);
    let jobs = drill_jobs(&emu);
    assert_eq!(jobs.len(), 1, "{jobs:?}\n{}", emu.log_file("cvd.log"));
    assert_eq!(jobs[0]["status"], "Completed", "{jobs:?}");
    let all = emu.run(&["jobs", "-o", "json"]).json();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|j| j["job_type"] != "Snap Backup" || j["plan"] == "nightly"),
        "{all}"
    );
    // What the drill restored: a new instance of the first never-drilled
    // source (by id), tagged with the drill job, terminated again.
    let made = drill_instances(&emu).await;
    assert_eq!(made.len(), 1, "{made:?}");
    let (state, t) = made.values().next().unwrap();
    assert_eq!(state, "terminated", "{made:?}");
    assert_eq!(t["CV_Integrity_Snap"], jobs[0]["id"].to_string());
    assert_eq!(t["_GX_SOURCE_"], sources[0], "{t:?}");
    assert!(
        !t.contains_key("Backup"),
        "not the source's own tags: {t:?}"
    );

    // The next slot drills the other instance (its turn: never drilled).
    let first = jobs[0]["id"].as_u64().unwrap();
    just_after_a_slot(30);
    agent(&emu);
    let jobs = drill_jobs(&emu);
    assert_eq!(jobs.len(), 2, "{jobs:?}\n{}", emu.log_file("cvd.log"));
    let made = drill_instances(&emu).await;
    assert_eq!(made.len(), 2, "{made:?}");
    let drilled: Vec<&str> = made
        .values()
        .map(|(_, t)| t["_GX_SOURCE_"].as_str())
        .collect();
    assert!(
        drilled.contains(&sources[1].as_str()),
        "the second slot drilled the other instance: {drilled:?}"
    );
    assert!(made.values().all(|(st, _)| st == "terminated"), "{made:?}");
    assert!(jobs.iter().any(|j| j["id"].as_u64() != Some(first)));
    // Nothing else of the drills is left: no volume or image of a drill job.
    let ec2 = emu.ec2("alpha", "us-east-1").await;
    let vols = ec2.describe_volumes().send().await.unwrap();
    assert!(
        !vols
            .volumes()
            .iter()
            .any(|v| tags_of(v.tags()).contains_key("CV_Integrity_Snap")),
        "{vols:?}"
    );
    let images = ec2.describe_images().owners("self").send().await.unwrap();
    assert!(!images
        .images()
        .iter()
        .any(|i| tags_of(i.tags()).contains_key("CV_Integrity_Snap")));
    let cvd = emu.log_file("cvd.log");
    assert!(cvd.contains("drills for slot"), "{cvd}");
}
