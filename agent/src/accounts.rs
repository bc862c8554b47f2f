//! `rolesnap accounts --from-organization`: accounts-file entries for the
//! ACTIVE member accounts of an AWS Organization, printed or merged into an
//! existing file without touching what a person wrote there.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;
use rolesnap_core::config::{is_region, parse_accounts, MAX_TENANT_NAME};
use rolesnap_core::{admin_session, Accounts, Endpoint, LogFile};
use serde_json::json;

use crate::cli::{AccountsArgs, Global, Output};
use crate::exit;
use crate::output::open_logs;

/// One member account of the organization.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    name: String,
    email: String,
    status: String,
}

/// A new accounts-file entry.
#[derive(Debug, Clone, serde::Serialize)]
struct Entry {
    name: String,
    account: String,
    account_name: String,
    role_arn: String,
    external_id: String,
}

pub async fn run(global: &Global, args: AccountsArgs) -> anyhow::Result<u8> {
    for r in &args.regions {
        if !is_region(r) {
            eprintln!("error: --regions: `{r}` is not an AWS region name (e.g. us-east-1)");
            return Ok(exit::USAGE);
        }
    }
    for x in &args.exclude {
        if x.len() != 12 || !x.bytes().all(|b| b.is_ascii_digit()) {
            eprintln!("error: --exclude `{x}` is not a 12-digit AWS account id");
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
    // The file merged into: read and checked before any AWS call (exit 2).
    let (existing_text, existing) = match &args.merge {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let parsed = parse_accounts(p, &text)?;
            (Some(text), Some(parsed))
        }
        None => (None, None),
    };
    let defaults;
    let accounts: &Accounts = match &existing {
        Some(a) => a,
        None => {
            defaults = parse_accounts(Path::new("(defaults)"), "[admin]\n")?;
            &defaults
        }
    };
    let logs = open_logs(global)?;
    let admin = admin_session(accounts, &Endpoint(global.endpoint_url.clone()), &logs).await;
    if let Err(e) = admin.check().await {
        eprintln!("error: {e}");
        return Ok(exit::FAILED);
    }
    // Organizations has one endpoint per partition, in us-east-1 for `aws`.
    let region = if accounts.admin.region.starts_with("us-gov-")
        || accounts.admin.region.starts_with("cn-")
    {
        accounts.admin.region.clone()
    } else {
        "us-east-1".to_string()
    };
    let conf = admin
        .config
        .clone()
        .into_builder()
        .region(aws_config_region(&region))
        .build();
    let organizations = aws_sdk_organizations::Client::new(&conf);
    let org = match organizations.describe_organization().send().await {
        Ok(o) => o
            .organization
            .unwrap_or_else(|| aws_sdk_organizations::types::Organization::builder().build()),
        Err(e) => {
            let msg = rolesnap_core::aws::credentials::chain(&e);
            logs.write(
                LogFile::Cvd,
                None,
                "CvdMain::Organizations",
                &format!("DescribeOrganization failed: {msg}"),
            );
            eprintln!("error: organizations:DescribeOrganization: {msg}");
            return Ok(exit::FAILED);
        }
    };
    let management = org.master_account_id.clone().unwrap_or_default();
    let mut members = Vec::new();
    let mut pages = organizations.list_accounts().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                let msg = rolesnap_core::aws::credentials::chain(&e);
                logs.write(
                    LogFile::Cvd,
                    None,
                    "CvdMain::Organizations",
                    &format!("ListAccounts failed: {msg}"),
                );
                eprintln!("error: organizations:ListAccounts: {msg}");
                return Ok(exit::FAILED);
            }
        };
        for a in page.accounts.unwrap_or_default() {
            members.push(Member {
                id: a.id.unwrap_or_default(),
                name: a.name.unwrap_or_default(),
                email: a.email.unwrap_or_default(),
                status: a
                    .state
                    .map(|s| s.as_str().to_string())
                    .or_else(|| a.status.map(|s| s.as_str().to_string()))
                    .unwrap_or_default(),
            });
        }
    }
    members.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    logs.write(
        LogFile::Cvd,
        None,
        "CvdMain::Organizations",
        &format!(
            "Organization [{}]: {} account(s), management account [{management}]",
            org.id.as_deref().unwrap_or("?"),
            members.len()
        ),
    );

    // What is left out, and why; the names already taken.
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut known: Vec<(String, String)> = Vec::new(); // (account, what names it)
    if let Some(a) = &existing {
        for t in &a.tenants {
            taken.insert(t.name.clone());
            known.push((t.role_arn.account.clone(), format!("tenant `{}`", t.name)));
        }
        for v in &a.vaults {
            taken.insert(v.name.clone());
            known.push((v.account().to_string(), format!("vault `{}`", v.name)));
        }
    }
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for m in &members {
        let reason = if m.status != "ACTIVE" {
            Some(format!("not active ({})", m.status))
        } else if m.id == management {
            Some("the organization's management account".to_string())
        } else if args.exclude.contains(&m.id) {
            Some("--exclude".to_string())
        } else {
            known
                .iter()
                .find(|(acct, _)| acct == &m.id)
                .map(|(_, what)| {
                    format!("already in the accounts file as {what} (kept as written)")
                })
        };
        if let Some(reason) = reason {
            skipped.push(json!({"account": m.id, "account_name": m.name, "reason": reason}));
            continue;
        }
        let mut name = tenant_name(&m.name, &m.id);
        if taken.contains(&name) {
            name = tenant_name(&format!("{}-{}", m.name, m.id), &m.id);
        }
        taken.insert(name.clone());
        entries.push(Entry {
            name,
            account: m.id.clone(),
            account_name: format!("{} <{}>", m.name, m.email),
            role_arn: format!("arn:aws:iam::{}:role/{}", m.id, args.role_name),
            external_id: new_external_id(),
        });
    }
    let fragment = toml_fragment(&entries, &args.regions, org.id.as_deref().unwrap_or("?"));

    match (&args.merge, existing_text) {
        (Some(path), Some(text)) => {
            if !entries.is_empty() {
                let mut merged = text.clone();
                if !merged.ends_with('\n') {
                    merged.push('\n');
                }
                merged.push('\n');
                merged.push_str(&fragment);
                // Never replace a good file with one that does not load.
                parse_accounts(path, &merged)
                    .map_err(|e| anyhow::anyhow!("the merged accounts file would not load: {e}"))?;
                write_replacing(path, &merged)?;
            }
            report(global, &entries, &skipped, Some(path))?;
        }
        _ => match global.output {
            Output::Json => report(global, &entries, &skipped, None)?,
            Output::Human => {
                print!("{fragment}");
                for s in &skipped {
                    eprintln!(
                        "skipped {} ({}): {}",
                        s["account"].as_str().unwrap_or(""),
                        s["account_name"].as_str().unwrap_or(""),
                        s["reason"].as_str().unwrap_or("")
                    );
                }
            }
        },
    }
    Ok(exit::OK)
}

fn aws_config_region(r: &str) -> aws_sdk_organizations::config::Region {
    aws_sdk_organizations::config::Region::new(r.to_string())
}

fn report(
    global: &Global,
    entries: &[Entry],
    skipped: &[serde_json::Value],
    merged_into: Option<&Path>,
) -> anyhow::Result<()> {
    match global.output {
        Output::Json => crate::output::print_json(&json!({
            "merged_into": merged_into.map(|p| p.display().to_string()),
            "added": entries,
            "skipped": skipped,
        })),
        Output::Human => {
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            if let Some(p) = merged_into {
                if entries.is_empty() {
                    println!("{}: nothing to add", p.display());
                } else {
                    println!(
                        "{}: added {} tenant(s): {}",
                        p.display(),
                        entries.len(),
                        names.join(", ")
                    );
                }
            }
            for s in skipped {
                println!(
                    "skipped {} ({}): {}",
                    s["account"].as_str().unwrap_or(""),
                    s["account_name"].as_str().unwrap_or(""),
                    s["reason"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
    }
}

/// A tenant name from an account name: lower case letters, digits and '-'
/// (at most MAX_TENANT_NAME), `account-ID` when nothing is left.
fn tenant_name(account_name: &str, id: &str) -> String {
    let mut out = String::new();
    for c in account_name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches('-').to_string();
    out.truncate(MAX_TENANT_NAME);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        format!("account-{id}")
    } else {
        out
    }
}

/// `rolesnap-` and 32 random hex digits (128 bits): unguessable, and what
/// STS accepts as an ExternalId.
fn new_external_id() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::thread_rng().gen();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("rolesnap-{hex}")
}

/// TOML string (basic, escaped).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn toml_fragment(entries: &[Entry], regions: &[String], org: &str) -> String {
    let mut out = format!(
        "# Added by `rolesnap accounts --from-organization` from organization {org}: {} account(s).\n\
         # Create each role with its ExternalId: rolesnap onboard --admin-account ADMIN --external-id X\n",
        entries.len()
    );
    for e in entries {
        out.push_str(&format!(
            "\n[[tenant]]\n# AWS account {} {}\nname = {}\nrole-arn = {}\nexternal-id = {}\n",
            e.account,
            e.account_name.replace('\n', " "),
            q(&e.name),
            q(&e.role_arn),
            q(&e.external_id)
        ));
        if !regions.is_empty() {
            let rs: Vec<String> = regions.iter().map(|r| q(r)).collect();
            out.push_str(&format!("regions = [{}]\n", rs.join(", ")));
        }
    }
    out
}

/// Replaces `path` by `text` atomically (a temporary file beside it, renamed),
/// keeping the file's permissions.
fn write_replacing(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let perms = std::fs::metadata(path)?.permissions();
    let tmp = dir.join(format!(
        ".{}.rolesnap-tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("accounts"),
        std::process::id()
    ));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, perms)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_from_account_names() {
        assert_eq!(tenant_name("Payments Prod", "1"), "payments-prod");
        assert_eq!(tenant_name("  --a__b!!c--", "1"), "a__b-c");
        assert_eq!(tenant_name("Ünïcode", "123"), "n-code");
        assert_eq!(tenant_name("!!!", "123456789012"), "account-123456789012");
        assert!(tenant_name(&"x".repeat(90), "1").len() <= MAX_TENANT_NAME);
    }

    #[test]
    fn external_ids_are_new_and_valid() {
        let a = new_external_id();
        assert_ne!(a, new_external_id());
        assert!(crate::onboard::valid_external_id(&a), "{a}");
        assert_eq!(a.len(), "rolesnap-".len() + 32);
    }
}
