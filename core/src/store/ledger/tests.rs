use super::*;

#[test]
fn numbers_grow_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    let (a, la) = l
        .start_job(JobType::SnapBackup, "p", &["alpha".into()])
        .unwrap();
    assert_eq!(a.id, FIRST_JOB);
    l.finish_job(la, JobStatus::Completed, 8, None).unwrap();
    drop(l);
    let l = Ledger::open(dir.path()).unwrap();
    let (b, lb) = l.start_job(JobType::SnapBackup, "p", &[]).unwrap();
    assert!(b.id > a.id);
    l.finish_job(lb, JobStatus::Failed, 0, Some("x")).unwrap();
    let jobs = l.jobs(Some("p"), 10).unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![b.id, a.id]
    );
    assert_eq!(jobs[1].status, JobStatus::Completed);
    assert_eq!(jobs[1].tenants, vec!["alpha".to_string()]);
}

#[test]
fn a_running_job_without_its_process_becomes_killed() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    let (live, live_lock) = l.start_job(JobType::SnapBackup, "p", &[]).unwrap();
    let (dead, dead_lock) = l.start_job(JobType::SnapBackup, "p", &[]).unwrap();
    // Dropping the lock without finishing is what a dead process leaves.
    drop(dead_lock);
    let l2 = Ledger::open(dir.path()).unwrap();
    assert_eq!(l2.job(dead.id).unwrap().unwrap().status, JobStatus::Killed);
    assert_eq!(l2.job(live.id).unwrap().unwrap().status, JobStatus::Running);
    assert!(l2.events(dead.id).unwrap()[0].message.contains("Killed"));
    l.finish_job(live_lock, JobStatus::Completed, 0, None)
        .unwrap();
}

#[test]
fn two_ledgers_on_one_directory_never_share_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || {
                let l = Ledger::open(&p).unwrap();
                (0..25)
                    .map(|_| {
                        let (j, lock) = l.start_job(JobType::SnapBackup, "p", &[]).unwrap();
                        l.finish_job(lock, JobStatus::Completed, 0, None).unwrap();
                        j.id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n);
}

#[test]
fn a_point_recorded_twice_is_read_once_at_its_last_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    let (j, _lock) = l.start_job(JobType::DataAging, "p", &[]).unwrap();
    let (other, _other_lock) = l.start_job(JobType::DataAging, "p", &[]).unwrap();
    let item = |source: &str, status: &str| Item {
        tenant: "alpha".into(),
        account: "222222222222".into(),
        region: "us-east-1".into(),
        kind: ItemKind::SnapshotSet,
        source_id: source.into(),
        status: ItemStatus::parse(status),
        created: vec![],
        size_gib: 8,
        error: None,
        detail: serde_json::Value::Null,
    };
    l.add_item(j.id, &item("a", "Failed")).unwrap();
    l.add_item(j.id, &item("b", "Deleted")).unwrap();
    l.add_item(other.id, &item("a", "Failed")).unwrap();
    l.add_item(j.id, &item("a", "Deleted")).unwrap();
    assert_eq!(
        l.items(j.id).unwrap(),
        vec![item("b", "Deleted"), item("a", "Deleted")]
    );
    assert_eq!(l.items(other.id).unwrap(), vec![item("a", "Failed")]);
    let mut first = Vec::new();
    l.each_item(j.id, |i| {
        first.push(i);
        false
    })
    .unwrap();
    assert_eq!(first, vec![item("b", "Deleted")]);
}

#[test]
fn items_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    let (j, lock) = l.start_job(JobType::SnapBackup, "p", &[]).unwrap();
    let item = Item {
        tenant: "alpha".into(),
        account: "222222222222".into(),
        region: "us-east-1".into(),
        kind: ItemKind::Instance,
        source_id: "i-1".into(),
        status: ItemStatus::Completed,
        created: vec!["snap-1".into(), "snap-2".into()],
        size_gib: 18,
        error: None,
        detail: serde_json::json!({"method": "snapshot-set"}),
    };
    l.add_item(j.id, &item).unwrap();
    assert_eq!(l.items(j.id).unwrap(), vec![item]);
    l.finish_job(lock, JobStatus::Completed, 18, None).unwrap();
}

#[test]
fn each_ledger_has_its_own_agent_id_kept_across_opens() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Ledger::open(d1.path()).unwrap().agent_id().to_string();
    let b = Ledger::open(d2.path()).unwrap().agent_id().to_string();
    assert!(is_agent_id(&a) && is_agent_id(&b), "{a} {b}");
    assert_ne!(a, b);
    assert_eq!(Ledger::open(d1.path()).unwrap().agent_id(), a);
    assert_eq!(Ledger::open_read_only(d1.path()).unwrap().agent_id(), a);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d1.path().join("ledger.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the ledger is its owner's only: {mode:o}");
    }
}

#[test]
fn a_truncated_or_foreign_ledger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger.db"), b"").unwrap();
    let e = Ledger::open(dir.path()).err().expect("refused");
    assert!(e.to_string().contains("0 bytes"), "{e}");
    assert_eq!(
        std::fs::metadata(dir.path().join("ledger.db"))
            .unwrap()
            .len(),
        0
    );
    std::fs::write(
        dir.path().join("ledger.db"),
        b"not a database at all, really",
    )
    .unwrap();
    let e = Ledger::open(dir.path()).err().expect("refused");
    assert!(e.to_string().contains("not a rolesnap ledger"), "{e}");
}

#[test]
fn reading_another_ledger_never_marks_its_jobs_killed() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    let (dead, lock) = l.start_job(JobType::SnapBackup, "p", &[]).unwrap();
    drop(lock);
    drop(l);
    let ro = Ledger::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.job(dead.id).unwrap().unwrap().status, JobStatus::Running);
    let rw = Ledger::open(dir.path()).unwrap();
    assert_eq!(rw.killed_on_open(), &[dead.id]);
    assert_eq!(rw.job(dead.id).unwrap().unwrap().status, JobStatus::Killed);
}

#[test]
fn a_plan_runs_once_at_a_time_on_a_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let held = PlanLock::try_acquire(dir.path(), "nightly", "backup")
        .unwrap()
        .unwrap();
    let busy = PlanLock::try_acquire(dir.path(), "nightly", "agent")
        .unwrap()
        .unwrap_err();
    assert!(busy.holder.contains("backup"), "{busy}");
    assert!(PlanLock::try_acquire(dir.path(), "weekly", "agent")
        .unwrap()
        .is_ok());
    drop(held);
    assert!(PlanLock::try_acquire(dir.path(), "nightly", "agent")
        .unwrap()
        .is_ok());
}

#[test]
fn status_from_counts() {
    assert_eq!(JobStatus::from_counts(3, 0, 0), JobStatus::Completed);
    assert_eq!(
        JobStatus::from_counts(3, 1, 0),
        JobStatus::CompletedWithErrors
    );
    assert_eq!(
        JobStatus::from_counts(3, 0, 1),
        JobStatus::CompletedWithErrors
    );
    assert_eq!(JobStatus::from_counts(0, 2, 0), JobStatus::Failed);
    assert_eq!(JobStatus::from_counts(0, 0, 1), JobStatus::Failed);
}
