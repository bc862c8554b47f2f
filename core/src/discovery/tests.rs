use super::*;
use crate::config::TagRule;

fn inst(id: &str, az: &str, tags: &[(&str, &str)]) -> Instance {
    Instance {
        id: id.into(),
        az: az.into(),
        state: "running".into(),
        instance_type: Some("t3.micro".into()),
        subnet_id: None,
        vpc_id: None,
        security_groups: vec![],
        key_name: None,
        iam_profile_arn: None,
        image_id: None,
        root_device: Some("/dev/xvda".into()),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        volumes: vec![],
    }
}

fn db(id: &str, cluster: Option<&str>) -> DbInstance {
    DbInstance {
        id: id.into(),
        arn: format!("arn:aws:rds:us-east-1:222222222222:db:{id}"),
        engine: "postgres".into(),
        class: None,
        az: Some("us-east-1a".into()),
        cluster_id: cluster.map(str::to_string),
        status: None,
        storage_gib: 20,
        encrypted: false,
        kms_key_id: None,
        subnet_group: None,
        tags: BTreeMap::new(),
    }
}

fn group() -> Group {
    Group {
        name: "g".into(),
        tenants: vec!["alpha".into()],
        regions: Regions::List(vec!["us-east-1".into()]),
        availability_zones: vec![],
        instances: vec![],
        exclude_instances: vec![],
        include_tags: vec![],
        exclude_tags: vec![],
        rds_instances: vec![],
        aurora_clusters: vec![],
        exclude_databases: vec![],
        ec2: true,
        rds: false,
        aurora: false,
    }
}

fn rule(s: &str) -> TagRule {
    let (k, v) = s.split_once('=').unwrap();
    TagRule {
        key: k.into(),
        value: v.into(),
    }
}

fn inventory() -> RegionInventory {
    RegionInventory {
        tenant: "alpha".into(),
        account: "222222222222".into(),
        region: "us-east-1".into(),
        availability_zones: vec!["us-east-1a".into(), "us-east-1b".into()],
        instances: vec![
            inst(
                "i-01",
                "us-east-1a",
                &[("Backup", "nightly"), ("Name", "web-1")],
            ),
            inst(
                "i-02",
                "us-east-1b",
                &[("Backup", "nightly"), ("Env", "prod")],
            ),
            inst("i-03", "us-east-1a", &[("Backup", "never")]),
            {
                let mut t = inst("i-04", "us-east-1a", &[("Backup", "nightly")]);
                t.state = "terminated".into();
                t
            },
        ],
        db_instances: vec![db("orders", None), db("aurora-1", Some("cl-1"))],
        db_clusters: vec![DbCluster {
            id: "cl-1".into(),
            arn: "arn:aws:rds:us-east-1:222222222222:cluster:cl-1".into(),
            engine: "aurora-postgresql".into(),
            status: None,
            members: vec!["aurora-1".into()],
            encrypted: false,
            kms_key_id: None,
            subnet_group: None,
            tags: BTreeMap::new(),
        }],
    }
}

fn ids(sel: &Selection) -> Vec<&str> {
    sel.selected.iter().map(|s| s.resource.id()).collect()
}

#[test]
fn selection_table() {
    type Edit = fn(&mut Group);
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        ("everything running", |_| {}, vec!["i-01", "i-02", "i-03"]),
        (
            "include tag",
            |g| g.include_tags = vec![rule("Backup=nightly")],
            vec!["i-01", "i-02"],
        ),
        (
            "tag glob",
            |g| g.include_tags = vec![rule("Name=web-*")],
            vec!["i-01"],
        ),
        (
            "exclude tag",
            |g| g.exclude_tags = vec![rule("Backup=never")],
            vec!["i-01", "i-02"],
        ),
        (
            "az",
            |g| g.availability_zones = vec!["us-east-1b".into()],
            vec!["i-02"],
        ),
        ("ids", |g| g.instances = vec!["i-03".into()], vec!["i-03"]),
        (
            "ids or tags",
            |g| {
                g.instances = vec!["i-03".into()];
                g.include_tags = vec![rule("Env=prod")];
            },
            vec!["i-02", "i-03"],
        ),
        (
            "exclude wins over include",
            |g| {
                g.include_tags = vec![rule("Backup=*")];
                g.exclude_instances = vec!["i-01".into()];
            },
            vec!["i-02", "i-03"],
        ),
        (
            "rds only",
            |g| {
                g.ec2 = false;
                g.rds = true;
            },
            vec!["orders"],
        ),
        (
            "aurora only",
            |g| {
                g.ec2 = false;
                g.aurora = true;
            },
            vec!["cl-1"],
        ),
        (
            "rds excluded",
            |g| {
                g.ec2 = false;
                g.rds = true;
                g.exclude_databases = vec!["ord*".into()];
            },
            vec![],
        ),
        (
            "rds by pattern",
            |g| {
                g.ec2 = false;
                g.rds = true;
                g.rds_instances = vec!["nomatch-*".into()];
            },
            vec![],
        ),
    ];
    let inv = inventory();
    for (name, edit, want) in cases {
        let mut g = group();
        edit(&mut g);
        let sel = select(&inv, &[&g]);
        assert_eq!(ids(&sel), want, "{name}");
        // Every resource is either selected or skipped with a reason.
        assert_eq!(sel.selected.len() + sel.skipped.len(), 4 + 2 + 1, "{name}");
        assert!(sel.skipped.iter().all(|s| !s.reason.is_empty()), "{name}");
    }
}

#[test]
fn two_groups_select_once_first_group_wins() {
    let mut a = group();
    a.name = "a".into();
    a.include_tags = vec![rule("Backup=nightly")];
    let mut b = group();
    b.name = "b".into();
    let sel = select(&inventory(), &[&a, &b]);
    assert_eq!(ids(&sel), vec!["i-01", "i-02", "i-03"]);
    assert_eq!(sel.selected[0].group, "a");
    assert_eq!(sel.selected[2].group, "b");
    let term = sel.skipped.iter().find(|s| s.id == "i-04").unwrap();
    assert!(term.reason.contains("terminated"), "{}", term.reason);
}
