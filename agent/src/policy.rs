//! `rolesnap policy`: the IAM documents from the guide, extended for rolesnap.

use anyhow::bail;
use rolesnap_core::policy::{documents, Side};

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
    let docs = documents(side, acct, args.external_id.as_deref());
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
