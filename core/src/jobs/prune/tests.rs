use super::*;

#[test]
fn only_own_unheld_resources_are_deletable() {
    let t = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    assert!(deletable(
        &t(&[("_GX_BACKUP_", "1"), ("_GX_PLAN_", "p")]),
        "p"
    ));
    assert!(!deletable(
        &t(&[("_GX_BACKUP_", "1"), ("_GX_PLAN_", "q")]),
        "p"
    ));
    assert!(!deletable(&t(&[("_GX_PLAN_", "p")]), "p"));
    assert!(!deletable(
        &t(&[
            ("_GX_BACKUP_", "1"),
            ("_GX_PLAN_", "p"),
            ("CV_Retain_Snap", "")
        ]),
        "p"
    ));
}
