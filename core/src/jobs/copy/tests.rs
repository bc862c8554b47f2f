use super::*;
use crate::catalog::Snap;
use crate::config::Retention;

fn snap(id: &str) -> Snap {
    Snap {
        id: id.into(),
        volume_id: format!("vol-{id}"),
        size_gib: 8,
        state: "completed".into(),
        encrypted: false,
        kms_key_id: None,
        tags: BTreeMap::new(),
    }
}

fn point(
    kind: PointKind,
    id: &str,
    snaps: &[&str],
    state: PointState,
    copy_of: Option<&str>,
) -> RecoveryPoint {
    let mut tags = BTreeMap::new();
    if let Some(c) = copy_of {
        tags.insert(tags::COPY_OF.to_string(), c.to_string());
    }
    RecoveryPoint {
        kind,
        tenant: "alpha".into(),
        account: "222222222222".into(),
        region: "us-east-1".into(),
        job: Some(1000),
        agent: String::new(),
        plan: Some("p".into()),
        source: "i-1".into(),
        created: chrono::Utc::now(),
        state,
        resource_id: (kind != PointKind::SnapshotSet).then(|| id.to_string()),
        arn: None,
        snapshots: snaps.iter().map(|s| snap(s)).collect(),
        size_gib: 8,
        encrypted: false,
        kms_key_id: None,
        tags,
    }
}

fn rule() -> CopyRule {
    CopyRule {
        region: "us-west-2".into(),
        retention: Retention::default(),
        kms_key_id: None,
        lock: None,
    }
}

#[test]
fn only_missing_parts_of_completed_originals_are_copied() {
    let points = vec![
        point(
            PointKind::SnapshotSet,
            "",
            &["snap-a", "snap-b"],
            PointState::Completed,
            None,
        ),
        point(
            PointKind::SnapshotSet,
            "",
            &["snap-p"],
            PointState::Pending,
            None,
        ),
        point(PointKind::Ami, "ami-1", &[], PointState::Completed, None),
        point(
            PointKind::DbSnapshot,
            "sp-1",
            &[],
            PointState::Completed,
            None,
        ),
        point(
            PointKind::SnapshotSet,
            "",
            &["snap-c"],
            PointState::Completed,
            Some("eu-west-1/snap-z"),
        ),
    ];
    let existing: BTreeSet<String> = ["us-east-1/snap-a", "us-east-1/ami-1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let tasks = missing_copies(&points, &existing, "us-west-2", &rule());
    let got: Vec<Vec<String>> = tasks.iter().map(|t| t.missing.clone()).collect();
    assert_eq!(
        got,
        vec![vec!["snap-b".to_string()], vec!["sp-1".to_string()]]
    );
    // Nothing is copied into its own region.
    assert!(missing_copies(&points, &BTreeSet::new(), "us-east-1", &rule()).is_empty());
}

#[test]
fn the_window_counts_copy_operations() {
    let points = vec![
        point(
            PointKind::SnapshotSet,
            "",
            &["snap-a", "snap-b", "snap-c"],
            PointState::Completed,
            None,
        ),
        point(
            PointKind::DbSnapshot,
            "sp-1",
            &[],
            PointState::Completed,
            None,
        ),
    ];
    let existing: BTreeSet<String> = ["us-east-1/snap-a".to_string()].into();
    let tasks = missing_copies(&points, &existing, "us-west-2", &rule());
    let n: Vec<usize> = tasks.iter().map(copies_in).collect();
    assert_eq!(n, vec![2, 1], "a set counts its missing snapshots");
}

#[test]
fn a_copy_is_given_up_only_when_missed_often_and_long_enough() {
    let long = GONE_AFTER + Duration::from_secs(1);
    assert!(!gone(0, long));
    assert!(
        !gone(GONE_AFTER_POLLS - 1, long),
        "a few misses can be eventual consistency"
    );
    assert!(
        !gone(GONE_AFTER_POLLS + 5, Duration::from_secs(2)),
        "a fresh copy may not be listed yet"
    );
    assert!(gone(GONE_AFTER_POLLS, GONE_AFTER));
}

#[test]
fn copy_states_follow_aws() {
    assert_eq!(PointState::ebs("completed"), PointState::Completed);
    assert_eq!(PointState::ebs("pending"), PointState::Pending);
    assert_eq!(PointState::ebs("error"), PointState::Failed);
    assert_eq!(PointState::image("available"), PointState::Completed);
    assert_eq!(PointState::image("pending"), PointState::Pending);
    assert_eq!(PointState::image("failed"), PointState::Failed);
    assert_eq!(PointState::rds(Some("copying")), PointState::Pending);
    assert_eq!(PointState::rds(Some("available")), PointState::Completed);
    assert_eq!(PointState::rds(Some("failed")), PointState::Failed);
    // Neither on its way nor failed: the prune must keep these.
    assert_eq!(PointState::image("disabled"), PointState::Unusable);
    assert_eq!(PointState::image("deregistered"), PointState::Unusable);
    assert_eq!(PointState::image("transient"), PointState::Unusable);
    assert_eq!(
        PointState::rds(Some("incompatible-restore")),
        PointState::Unusable
    );
}

#[test]
fn copies_keep_the_contract_and_say_what_they_copy() {
    let mut src = BTreeMap::new();
    src.insert(tags::BACKUP.to_string(), "1000".to_string());
    src.insert(tags::PLAN.to_string(), "p".to_string());
    src.insert("aws:backup:source".to_string(), "x".to_string());
    let p = point(
        PointKind::SnapshotSet,
        "",
        &["snap-a"],
        PointState::Completed,
        None,
    );
    let mut task = Task {
        point: p.clone(),
        dest: "us-west-2".into(),
        rule: rule(),
        missing: vec!["snap-a".into()],
        vault: None,
    };
    let t: BTreeMap<String, String> = task.tags_for(&src, "snap-a").into_iter().collect();
    assert_eq!(t[tags::BACKUP], "1000");
    assert_eq!(t[tags::COPY_OF], "us-east-1/snap-a");
    assert!(!t.contains_key("aws:backup:source"));
    assert!(!t.contains_key(tags::VAULT_OF));
    // A vault copy says whose point of which region it copies, and which vault.
    task.vault = Some(VaultTo {
        name: "vault".into(),
        account: "555555555555".into(),
        key: "arn:aws:kms:us-west-2:555555555555:key/k".into(),
        tenant: "alpha".into(),
        tenant_account: "222222222222".into(),
    });
    let t: BTreeMap<String, String> = task.tags_for(&src, "snap-a").into_iter().collect();
    assert_eq!(t[tags::VAULT_OF], "222222222222/us-east-1/snap-a");
    assert_eq!(t[tags::VAULT], "vault");
    assert!(!t.contains_key(tags::COPY_OF));
    assert_eq!(t[tags::BACKUP], "1000");
}
