//! `rolesnap onboard`: a CloudFormation template that creates the tenant role
//! with exactly the documents `rolesnap policy tenant` prints, the admin
//! account and the ExternalId turned into template parameters.

use rolesnap_core::config::load_accounts;
use rolesnap_core::policy::{documents, Scope, Side, TrustOptions};
use serde_json::{json, Value};

use crate::cli::OnboardArgs;
use crate::exit;

/// Stand-ins put into the printed documents, then replaced by references to
/// the template's parameters.
const ADMIN: &str = "${AdminAccountId}";
const EXTERNAL_ID: &str = "\u{0}rolesnap-external-id\u{0}";

pub fn run(args: OnboardArgs) -> anyhow::Result<u8> {
    let acct = &args.admin_account;
    if acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()) {
        eprintln!("error: --admin-account `{acct}` is not a 12-digit AWS account id");
        return Ok(exit::USAGE);
    }
    if let Some(x) = &args.external_id {
        if !valid_external_id(x) {
            eprintln!("error: --external-id: 2 to 1224 characters of A-Z a-z 0-9 and +=,.@:/-");
            return Ok(exit::USAGE);
        }
    }
    if args.role_name.is_empty()
        || args.role_name.len() > 64
        || !args
            .role_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    {
        eprintln!(
            "error: --role-name `{}` is not an IAM role name",
            args.role_name
        );
        return Ok(exit::USAGE);
    }
    let scope = match &args.accounts {
        Some(p) => Scope::from_accounts(&load_accounts(p)?, None),
        None => Scope::default(),
    };
    let t = template(acct, args.external_id.as_deref(), &args.role_name, &scope);
    println!("{}", serde_json::to_string_pretty(&t)?);
    Ok(exit::OK)
}

/// What STS accepts as an ExternalId.
pub fn valid_external_id(x: &str) -> bool {
    (2..=1224).contains(&x.len())
        && x.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c))
}

/// The template: parameters AdminAccountId, ExternalId, RoleName; one
/// AWS::IAM::Role with the tenant trust and the permissions (inline).
pub fn template(admin: &str, external_id: Option<&str>, role_name: &str, scope: &Scope) -> Value {
    let docs = documents(
        Side::Tenant,
        ADMIN,
        Some(EXTERNAL_ID),
        TrustOptions::default(),
        scope,
    );
    let doc = |name: &str| {
        docs.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.clone())
            .expect("the tenant documents")
    };
    let trust = parameterise(doc("tenant-trust"));
    let permissions = doc("permissions");
    let mut external = json!({
        "Type": "String",
        "Description": "The ExternalId rolesnap sends when it assumes this role (the tenant's \
                        external-id in the accounts file). One per tenant.",
        "MinLength": 2,
        "MaxLength": 1224,
        "AllowedPattern": "[\\w+=,.@:/-]+"
    });
    if let Some(x) = external_id {
        external["Default"] = json!(x);
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "rolesnap tenant role: trusted by the admin account with an ExternalId; \
                        permissions as printed by `rolesnap policy tenant` (deletes only of \
                        _GX_BACKUP_-tagged resources)",
        "Parameters": {
            "AdminAccountId": {
                "Type": "String",
                "Description": "The 12-digit account id rolesnap runs in (the admin account).",
                "AllowedPattern": "\\d{12}",
                "Default": admin
            },
            "ExternalId": external,
            "RoleName": {
                "Type": "String",
                "Description": "Name of the tenant role (the role-arn of the tenant in the accounts file).",
                "Default": role_name
            }
        },
        "Resources": {
            "TenantRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": {"Ref": "RoleName"},
                    "Description": "rolesnap snapshot backup (assumed from the admin account)",
                    "MaxSessionDuration": 3600,
                    "AssumeRolePolicyDocument": trust,
                    "Policies": [{
                        "PolicyName": "rolesnap-permissions",
                        "PolicyDocument": permissions
                    }],
                    "Tags": [{"Key": "managed-by", "Value": "rolesnap-onboard"}]
                }
            }
        },
        "Outputs": {
            "RoleArn": {
                "Description": "role-arn for the accounts file",
                "Value": {"Fn::GetAtt": ["TenantRole", "Arn"]}
            }
        }
    })
}

/// The stand-ins, as parameter references: a string holding the admin
/// account becomes `Fn::Sub`, the ExternalId a `Ref`.
fn parameterise(v: Value) -> Value {
    match v {
        Value::String(s) if s == EXTERNAL_ID => json!({"Ref": "ExternalId"}),
        Value::String(s) if s.contains(ADMIN) => json!({ "Fn::Sub": s }),
        Value::Array(a) => Value::Array(a.into_iter().map(parameterise).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, parameterise(v))).collect())
        }
        other => other,
    }
}
