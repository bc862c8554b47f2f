//! The IAM documents an operator needs, from the guide, extended with what
//! rolesnap calls that the guide's restricted policy lacks (RDS, CreateSnapshots,
//! CopyImage, RegisterImage). Every delete is allowed only on resources tagged
//! `_GX_BACKUP_`, which is why the agent tags everything it creates.

use serde_json::{json, Value};

/// The guide's `amazon_sts_assumerole.json` (the `sts-only` policy).
const STS_ONLY: &str = include_str!("policy/sts-only.json");
/// The guide's `tenant-trust-policy.json` (with `ADMIN_ACCOUNT_ID`).
const TENANT_TRUST: &str = include_str!("policy/tenant-trust.json");
/// The guide's `amazon_restricted_role_permissions.json`.
const RESTRICTED: &str = include_str!("policy/restricted.json");

/// Which side of the set-up a document is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Admin,
    Tenant,
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).expect("shipped policy JSON is valid")
}

/// The `sts-only` policy (both sides).
pub fn sts_only() -> Value {
    parse(STS_ONLY)
}

/// Trust policy of the admin role (`vsa-assume-role`): the access node's EC2
/// instance profile and principals of the admin account may assume it.
pub fn admin_role_trust(admin_account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {
                "Service": "ec2.amazonaws.com",
                "AWS": format!("arn:aws:iam::{admin_account}:root")
            }
        }]
    })
}

/// Trust policy of a tenant role: the admin account may assume it, with the
/// ExternalId when one is given.
pub fn tenant_trust(admin_account: &str, external_id: Option<&str>) -> Value {
    let mut v = parse(&TENANT_TRUST.replace("ADMIN_ACCOUNT_ID", admin_account));
    if let Some(x) = external_id {
        v["Statement"]["Condition"] = json!({"StringEquals": {"sts:ExternalId": x}});
    }
    v
}

/// EC2 actions the agent calls beyond the guide's list.
const EC2_EXTRA: &[&str] = &["ec2:CreateSnapshots", "ec2:CopyImage", "ec2:RegisterImage"];

/// Deletes the guide leaves unconditioned; rolesnap adds the tag condition.
const TAGGED_DELETES: &[&str] = &["ec2:DeregisterImage", "ec2:DeleteNetworkInterface"];

/// RDS actions the agent calls that change nothing or create tagged resources.
const RDS_ACTIONS: &[&str] = &[
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:DescribeDBSnapshots",
    "rds:DescribeDBClusterSnapshots",
    "rds:DescribeDBSubnetGroups",
    "rds:ListTagsForResource",
    "rds:AddTagsToResource",
    "rds:CreateDBSnapshot",
    "rds:CreateDBClusterSnapshot",
    "rds:CopyDBSnapshot",
    "rds:CopyDBClusterSnapshot",
    "rds:RestoreDBInstanceFromDBSnapshot",
    "rds:RestoreDBClusterFromSnapshot",
    "rds:CreateDBInstance",
];

/// The restricted backup and recovery permissions, extended for rolesnap.
pub fn permissions() -> Value {
    let mut v = parse(RESTRICTED);
    let statements = v["Statement"].as_array_mut().expect("Statement list");
    // The guide allows DeregisterImage and DeleteNetworkInterface on anything;
    // they are deletes, so rolesnap limits them to tagged resources like the
    // other deletes.
    for s in statements.iter_mut() {
        let general = s["Sid"] == "VisualEditor6";
        if let Some(actions) = s["Action"].as_array_mut() {
            actions.retain(|a| !TAGGED_DELETES.iter().any(|d| a == d));
            for extra in EC2_EXTRA {
                if general && !actions.iter().any(|a| a == extra) {
                    actions.push(json!(extra));
                }
            }
        }
    }
    statements.push(json!({
        "Sid": "RolesnapDeleteTaggedEc2",
        "Effect": "Allow",
        "Action": TAGGED_DELETES,
        "Resource": "*",
        "Condition": {"StringLike": {"ec2:ResourceTag/_GX_BACKUP_": "*"}}
    }));
    statements.push(json!({
        "Sid": "RolesnapRds",
        "Effect": "Allow",
        "Action": RDS_ACTIONS,
        "Resource": "*"
    }));
    statements.push(json!({
        "Sid": "RolesnapRdsDeleteTaggedSnapshots",
        "Effect": "Allow",
        "Action": "rds:DeleteDBSnapshot",
        "Resource": "*",
        "Condition": {"StringLike": {"rds:snapshot-tag/_GX_BACKUP_": "*"}}
    }));
    statements.push(json!({
        "Sid": "RolesnapRdsDeleteTaggedClusterSnapshots",
        "Effect": "Allow",
        "Action": "rds:DeleteDBClusterSnapshot",
        "Resource": "*",
        "Condition": {"StringLike": {"rds:cluster-snapshot-tag/_GX_BACKUP_": "*"}}
    }));
    statements.push(json!({
        "Sid": "RolesnapRdsDeleteRestoredTagged",
        "Effect": "Allow",
        "Action": ["rds:DeleteDBInstance", "rds:DeleteDBCluster"],
        "Resource": "*",
        "Condition": {"StringLike": {"aws:ResourceTag/_GX_BACKUP_": "*"}}
    }));
    v
}

/// All documents for one side, by name.
pub fn documents(
    side: Side,
    admin_account: &str,
    external_id: Option<&str>,
) -> Vec<(&'static str, Value)> {
    match side {
        Side::Admin => vec![
            ("sts-only", sts_only()),
            ("admin-role-trust", admin_role_trust(admin_account)),
            ("permissions", permissions()),
        ],
        Side::Tenant => vec![
            ("sts-only", sts_only()),
            ("tenant-trust", tenant_trust(admin_account, external_id)),
            ("permissions", permissions()),
        ],
    }
}

/// Every action a policy allows, with the condition keys that limit it.
pub fn allowed_actions(policy: &Value) -> Vec<(String, Vec<String>)> {
    let statements = match &policy["Statement"] {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for s in statements {
        if s["Effect"] != "Allow" {
            continue;
        }
        let conditions: Vec<String> = s["Condition"]
            .as_object()
            .map(|ops| {
                ops.values()
                    .filter_map(Value::as_object)
                    .flat_map(|m| m.keys().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let actions = match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        };
        for a in actions {
            out.push((a, conditions.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// AWS API actions from SDK method names: `create_db_snapshot` → `CreateDBSnapshot`.
    fn action_name(method: &str) -> String {
        method
            .split('_')
            .map(|w| match w {
                "db" => "DB".to_string(),
                w => {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                }
            })
            .collect()
    }

    /// Calls made through clients bound to `ec2`, `rds` or `sts` anywhere in
    /// the engine's source (a convention the engine keeps so that this test
    /// sees every call).
    fn calls_in_source() -> BTreeSet<String> {
        let re = regex::Regex::new(r"\b(ec2|rds|sts)\s*\.\s*([a-z][a-z0-9_]*)\(\)").unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&path).unwrap();
                for c in re.captures_iter(&src) {
                    out.insert(format!("{}:{}", &c[1], action_name(&c[2])));
                }
            }
        }
        out
    }

    #[test]
    fn every_action_the_code_calls_is_in_the_tenant_policy() {
        let calls = calls_in_source();
        assert!(
            calls.contains("ec2:DescribeInstances"),
            "scanner finds calls: {calls:?}"
        );
        let policy: BTreeSet<String> = allowed_actions(&permissions())
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        // GetCallerIdentity needs no permission; AssumeRole is the admin side's.
        let free = ["sts:GetCallerIdentity"];
        let missing: Vec<&String> = calls
            .iter()
            .filter(|c| !policy.contains(*c) && !free.contains(&c.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "actions called but not in `rolesnap policy tenant`: {missing:?}"
        );
    }

    #[test]
    fn deletes_are_only_allowed_on_tagged_resources() {
        let deletes = ["Delete", "Deregister", "Terminate"];
        for (action, conditions) in allowed_actions(&permissions()) {
            let (service, verb) = action.split_once(':').unwrap();
            // The guide's S3/SSM/KMS lines are for Commvault's other features;
            // rolesnap manages EC2 and RDS resources only.
            if service != "ec2" && service != "rds" {
                continue;
            }
            // DeleteTags is limited by tag keys instead (the guide's VisualEditor1).
            if action == "ec2:DeleteTags" {
                continue;
            }
            if deletes.iter().any(|d| verb.starts_with(d)) {
                assert!(
                    conditions
                        .iter()
                        .any(|c| c.ends_with("/_GX_BACKUP_") || c.ends_with("/CV_Integrity_Snap")),
                    "{action} is allowed without a _GX_BACKUP_ condition"
                );
            }
        }
    }

    #[test]
    fn tenant_trust_carries_admin_and_external_id() {
        let t = tenant_trust("111111111111", Some("ext-1"));
        assert_eq!(
            t["Statement"]["Principal"]["AWS"],
            "arn:aws:iam::111111111111:root"
        );
        assert_eq!(
            t["Statement"]["Condition"]["StringEquals"]["sts:ExternalId"],
            "ext-1"
        );
        assert!(tenant_trust("111111111111", None)["Statement"]
            .get("Condition")
            .is_none());
    }

    #[test]
    fn action_names() {
        assert_eq!(
            action_name("describe_db_cluster_snapshots"),
            "DescribeDBClusterSnapshots"
        );
        assert_eq!(action_name("create_snapshots"), "CreateSnapshots");
    }
}
