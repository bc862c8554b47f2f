//! `rolesnap policy`: the IAM documents from the guide, extended for rolesnap.

use anyhow::bail;
use rolesnap_core::policy::{documents, Side, TrustOptions};

use crate::cli::{Global, Output, PolicyArgs, PolicySide};
use crate::exit;

pub fn run(global: &Global, args: PolicyArgs) -> anyhow::Result<u8> {
    let acct = &args.admin_account;
    if acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()) {
        eprintln!("error: --admin-account `{acct}` is not a 12-digit AWS account id");
        return Ok(exit::USAGE);
    }
    let side = match args.side {
        PolicySide::Admin => Side::Admin,
        PolicySide::Tenant => Side::Tenant,
    };
    // The tenant trust policy is printed (alone or with the others): without
    // an ExternalId anyone in the admin account could assume the role, so it
    // must be asked for explicitly.
    let prints_trust =
        side == Side::Tenant && args.document.as_deref().is_none_or(|d| d == "tenant-trust");
    if prints_trust && args.external_id.is_none() {
        if !args.no_external_id {
            eprintln!(
                "error: the tenant trust policy needs --external-id X (the ExternalId in the \
                 accounts file), or --no-external-id to print it without that condition"
            );
            return Ok(exit::USAGE);
        }
        eprintln!(
            "warning: tenant-trust without an sts:ExternalId condition: any principal of \
             account {acct} allowed sts:AssumeRole can assume the tenant role"
        );
    }
    if args.trust_ec2_service && prints_trust {
        eprintln!("warning: tenant-trust also trusts the ec2.amazonaws.com service principal");
    }
    let trust = TrustOptions {
        ec2_service: args.trust_ec2_service,
    };
    let docs = documents(side, acct, args.external_id.as_deref(), trust);
    if let Some(name) = &args.document {
        let Some((_, doc)) = docs.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = docs.iter().map(|(n, _)| *n).collect();
            bail!("no document `{name}`; choose one of: {}", names.join(", "));
        };
        println!("{}", serde_json::to_string_pretty(doc)?);
        return Ok(exit::OK);
    }
    match global.output {
        Output::Json => {
            let map: serde_json::Map<String, serde_json::Value> =
                docs.into_iter().map(|(n, d)| (n.to_string(), d)).collect();
            println!("{}", serde_json::to_string_pretty(&map)?);
        }
        Output::Human => {
            for (name, doc) in docs {
                let what = match name {
                    "sts-only" => "attach to the role or user rolesnap runs as (sts:AssumeRole only)",
                    "admin-role-trust" => "trust policy of the admin role (vsa-assume-role)",
                    "tenant-trust" => "trust policy of the tenant role (assume-role-policy-document)",
                    _ => "backup and recovery permissions; deletes only on _GX_BACKUP_-tagged resources",
                };
                println!("# {name}: {what}");
                println!("{}\n", serde_json::to_string_pretty(&doc)?);
            }
        }
    }
    Ok(exit::OK)
}
