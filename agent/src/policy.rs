//! `rolesnap policy`: the IAM documents from the guide, extended for rolesnap.

use anyhow::bail;
use rolesnap_core::config::load_accounts;
use rolesnap_core::policy::{documents, Scope, Side, TrustOptions};

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
        PolicySide::Vault => Side::Vault,
    };
    // The accounts file names the vaults a tenant may share with, and a
    // vault's keys, ExternalId and tenants.
    let accounts = match &args.accounts {
        Some(p) => Some(load_accounts(p)?),
        None => None,
    };
    let mut external_id = args.external_id.clone();
    let scope = match (side, &accounts) {
        (Side::Vault, None) => {
            eprintln!("error: `policy vault` needs --accounts FILE (the [[vault]] to print for)");
            return Ok(exit::USAGE);
        }
        (Side::Vault, Some(a)) => {
            let names: Vec<&str> = a.vaults.iter().map(|v| v.name.as_str()).collect();
            let chosen = match (&args.vault, names.as_slice()) {
                (Some(n), _) => a.vault(n),
                (None, [_]) => a.vaults.first(),
                (None, _) => None,
            };
            let Some(v) = chosen else {
                eprintln!(
                    "error: the accounts file declares vaults [{}]; choose one with --vault NAME",
                    names.join(", ")
                );
                return Ok(exit::USAGE);
            };
            if external_id.is_none() && !args.no_external_id {
                external_id = v.role.external_id.clone();
            }
            Scope::from_accounts(a, Some(&v.name))
        }
        (_, Some(a)) => Scope::from_accounts(a, None),
        (_, None) => Scope::default(),
    };
    // The tenant (or vault) trust policy is printed (alone or with the
    // others): without an ExternalId anyone in the admin account could assume
    // the role, so it must be asked for explicitly.
    let trust_doc = if side == Side::Vault {
        "vault-trust"
    } else {
        "tenant-trust"
    };
    let prints_trust =
        side != Side::Admin && args.document.as_deref().is_none_or(|d| d == trust_doc);
    if prints_trust && external_id.is_none() {
        if !args.no_external_id {
            eprintln!(
                "error: the {trust_doc} policy needs --external-id X (the ExternalId in the \
                 accounts file), or --no-external-id to print it without that condition"
            );
            return Ok(exit::USAGE);
        }
        eprintln!(
            "warning: {trust_doc} without an sts:ExternalId condition: any principal of \
             account {acct} allowed sts:AssumeRole can assume the role"
        );
    }
    if args.trust_ec2_service && prints_trust {
        eprintln!("warning: {trust_doc} also trusts the ec2.amazonaws.com service principal");
    }
    let trust = TrustOptions {
        ec2_service: args.trust_ec2_service,
    };
    if side == Side::Tenant && accounts.is_some() && scope.vault_accounts.is_empty() {
        eprintln!("note: the accounts file declares no [[vault]]: the policy grants no sharing");
    }
    let docs = documents(side, acct, external_id.as_deref(), trust, &scope);
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
                    "admin-principal" => "attach beside sts-only to the role or user rolesnap runs as: sns:Publish on the [notify] topics of --accounts (without one: the placeholder topic rolesnap-alerts; add a plan's own [notify] topic); the organizations statement is optional (only `accounts --from-organization` uses it)",
                    "tenant-trust" => "trust policy of the tenant role (assume-role-policy-document)",
                    "vault-trust" => "trust policy of the vault role (assume-role-policy-document)",
                    _ if side == Side::Vault => "vault permissions: copies in with the vault's keys; deletes and shares only of _GX_BACKUP_-tagged copies",
                    _ => "backup and recovery permissions; deletes only on _GX_BACKUP_-tagged resources",
                };
                println!("# {name}: {what}");
                println!("{}\n", serde_json::to_string_pretty(&doc)?);
            }
        }
    }
    Ok(exit::OK)
}
