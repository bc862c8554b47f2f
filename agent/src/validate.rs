//! `rolesnap validate`: the plan parses, every tenant role can be assumed, and
//! the permissions the agent needs are there.

use serde::Serialize;

use rolesnap_core::aws::credentials::{connect_tenants, AssumeRoleFailure, Connected};
use rolesnap_core::config::Regions;
use rolesnap_core::discovery::discover_tenant;
use rolesnap_core::discovery::{RegionResult, Resource};
use rolesnap_core::jobs::copy::encryption_gaps;
use rolesnap_core::validate::{
    broader_than_printed, describe_key, key_policy, key_policy_grants, probe, vault_key_statement,
    KeyInfo, Probe, ProbeOutcome, SIMULATE_NOT_USED,
};
use rolesnap_core::{LogFile, Tenant};

use crate::cli::{Global, Output, ValidateArgs};
use crate::exit;
use crate::output::{setup, table, Setup};

#[derive(Serialize)]
struct Row {
    tenant: String,
    role_arn: String,
    account: Option<String>,
    region: Option<String>,
    ok: bool,
    error_code: Option<String>,
    error: Option<String>,
    probes: Vec<Probe>,
    /// Permissions the attached policy grants that `rolesnap policy tenant`
    /// does not (found by DryRun calls the printed policy refuses).
    broader: Vec<String>,
    /// How `broader` was found, and what could not be checked.
    broader_check: Option<String>,
    /// What keeps the plan's `[[vault]]` rules from copying this tenant's
    /// selected resources (keys that cannot be shared with the vault).
    vault: Vec<VaultFinding>,
}

/// One thing a vault copy of a tenant cannot get past.
#[derive(Serialize, Clone)]
struct VaultFinding {
    region: String,
    /// The resource (per resource for the AWS managed key), or none (per key).
    resource: Option<String>,
    key: String,
    problem: String,
    /// The key policy statement to add, when that is the fix.
    statement: Option<serde_json::Value>,
}

/// A vault's role and its key in one region, checked.
#[derive(Serialize)]
struct VaultRow {
    vault: String,
    account: String,
    region: Option<String>,
    ok: bool,
    error: Option<String>,
}

/// `rolesnap validate`: one row per tenant, printed as a table or JSON.
pub async fn run(global: &Global, args: ValidateArgs) -> anyhow::Result<u8> {
    let s = setup(global, &args.plan, "validate").await?;
    let plan = &s.loaded.plan;
    let connected = connect_tenants(&s.admin, &s.tenants, None, &s.logs).await;
    let mut rows = Vec::new();
    let mut regions: Vec<String> = Vec::new();
    for (tenant, c) in s.tenants.iter().zip(connected) {
        rows.push(validate_tenant(&s, tenant, c, &mut regions).await);
    }
    let vaults = check_vaults(&s, &regions).await;
    let failed = rows.iter().filter(|r| !r.ok).count() + vaults.iter().filter(|v| !v.ok).count();
    let total = rows.len() + vaults.len();
    // What the plan's settings cannot do (e.g. lock RDS snapshots).
    let notes: Vec<String> = rolesnap_core::aws::lock::rds_note(plan)
        .into_iter()
        .collect();
    match global.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"plan": plan.name, "tenants": rows, "vaults": vaults, "notes": notes})
            )?
        ),
        Output::Human => {
            print_human(global, &s, &notes, &rows, failed);
            print_vault_human(&vaults, &rows);
        }
    }
    Ok(if failed == 0 {
        exit::OK
    } else if failed == total {
        exit::FAILED
    } else {
        exit::PARTIAL
    })
}

/// The row of one tenant: its role assumed (or why not), then the checks of
/// [`check_tenant`]; logged in cvd.log.
async fn validate_tenant(
    s: &Setup,
    tenant: &Tenant,
    connected: Result<Connected, AssumeRoleFailure>,
    regions: &mut Vec<String>,
) -> Row {
    let mut row = Row {
        tenant: tenant.name.clone(),
        role_arn: tenant.role_arn.arn.clone(),
        account: None,
        region: None,
        ok: false,
        error_code: None,
        error: None,
        probes: vec![],
        broader: vec![],
        broader_check: None,
        vault: vec![],
    };
    match connected {
        Err(f) => {
            row.error_code = Some(f.code.clone());
            row.error = Some(f.to_string());
        }
        Ok(conn) => {
            if let Checked::KmsGap = check_tenant(s, tenant, &conn, &mut row, regions).await {
                // Already logged, with the gaps.
                return row;
            }
        }
    }
    s.logs.write(
        LogFile::Cvd,
        None,
        "CvdValidate::Tenant",
        &format!(
            "Validate tenant [{}] role [{}]: {}",
            row.tenant,
            row.role_arn,
            row.error.as_deref().unwrap_or("OK")
        ),
    );
    row
}

/// How [`check_tenant`] ended.
enum Checked {
    /// The row says what was found.
    Done,
    /// A copy region has no key for an encrypted source (already logged).
    KmsGap,
}

/// The first region the plan names for this tenant (the admin region when
/// the plan takes all enabled regions): where the probes run.
fn probe_region(s: &Setup, tenant: &Tenant) -> String {
    s.loaded
        .plan
        .groups
        .iter()
        .filter(|g| g.tenants.contains(&tenant.name))
        .find_map(|g| match &g.regions {
            Regions::List(l) => l.first().cloned(),
            Regions::TenantDefault => tenant.regions.first().cloned(),
            Regions::AllEnabled => None,
        })
        .unwrap_or_else(|| s.admin.admin.region.clone())
}

/// Probes a connected tenant's permissions, looks for grants broader than
/// the printed policy, and checks the copy keys; fills `row`.
async fn check_tenant(
    s: &Setup,
    tenant: &Tenant,
    conn: &Connected,
    row: &mut Row,
    regions: &mut Vec<String>,
) -> Checked {
    let plan = &s.loaded.plan;
    row.account = Some(conn.account.clone());
    // Probe in the first region the plan names for this tenant.
    let region = probe_region(s, tenant);
    row.probes = probe(&conn.session, &region, None).await;
    check_broader(s, tenant, conn, &region, row).await;
    row.ok = row.probes.iter().all(|p| p.outcome != ProbeOutcome::Denied);
    let found = if plan.copies.is_empty() && plan.vaults.is_empty() {
        vec![]
    } else {
        discover(s, conn).await
    };
    for r in &found {
        if !regions.contains(&r.region) {
            regions.push(r.region.clone());
        }
    }
    // Encrypted sources the vaults cannot copy (keys they cannot use).
    if !plan.vaults.is_empty() {
        row.vault = vault_findings(s, conn, &found).await;
        if !row.vault.is_empty() {
            row.ok = false;
            row.error_code = Some("VaultCopyBlocked".into());
            let what: Vec<String> = row
                .vault
                .iter()
                .map(|f| match &f.resource {
                    Some(r) => format!("{r}: {}", f.problem),
                    None => format!("key {}: {}", f.key, f.problem),
                })
                .collect();
            row.error = Some(format!("tenant {}: {}", tenant.name, what.join("; ")));
            s.logs.write(
                LogFile::Cvd,
                None,
                "CvdValidate::Tenant",
                row.error.as_deref().unwrap_or_default(),
            );
        }
    }
    // Encrypted sources need a destination key for every copy region.
    if !plan.copies.is_empty() {
        let gaps = kms_gaps(s, &found);
        if !gaps.is_empty() {
            row.ok = false;
            row.error_code = Some("MissingKmsKey".into());
            row.error = Some(format!("tenant {}: {}", tenant.name, gaps.join("; ")));
            row.region = Some(region);
            s.logs.write(
                LogFile::Cvd,
                None,
                "CvdValidate::Tenant",
                row.error.as_deref().unwrap_or_default(),
            );
            return Checked::KmsGap;
        }
    }
    if !row.ok && row.error.is_none() {
        let denied: Vec<&str> = row
            .probes
            .iter()
            .filter(|p| p.outcome == ProbeOutcome::Denied)
            .map(|p| p.action.as_str())
            .collect();
        row.error_code = Some("UnauthorizedOperation".into());
        row.error = Some(format!(
            "tenant {} region {region}: missing permissions: {}",
            tenant.name,
            denied.join(", ")
        ));
    }
    row.region = Some(region);
    Checked::Done
}

/// Statements broader than the printed policy, where DryRun shows them
/// (`row.broader`, `row.broader_check`); logged when there are any.
async fn check_broader(s: &Setup, tenant: &Tenant, conn: &Connected, region: &str, row: &mut Row) {
    let extra = broader_than_printed(&conn.session, region).await;
    row.broader = extra
        .iter()
        .filter(|p| p.outcome == ProbeOutcome::Allowed)
        .map(|p| p.action.clone())
        .collect();
    let unknown = extra
        .iter()
        .filter(|p| p.outcome == ProbeOutcome::Unknown)
        .count();
    row.broader_check = Some(if unknown == 0 {
        format!("{SIMULATE_NOT_USED} ({} probed, 0 undecided)", extra.len())
    } else {
        format!(
            "{SIMULATE_NOT_USED} ({} probed, {unknown} undecided: {})",
            extra.len(),
            undecided(&extra)
        )
    });
    if !row.broader.is_empty() {
        s.logs.write(
            LogFile::Cvd,
            None,
            "CvdValidate::Tenant",
            &format!(
                "Tenant [{}]: the attached policy is broader than `rolesnap policy tenant`: {}",
                tenant.name,
                row.broader.join(", ")
            ),
        );
    }
}

/// Discovers what the plan selects in this tenant (every region).
async fn discover(s: &Setup, conn: &Connected) -> Vec<RegionResult> {
    discover_tenant(
        &s.loaded.plan,
        &conn.session,
        &conn.account,
        &s.admin.admin.region,
        None,
        &s.logs,
        false,
    )
    .await
}

/// Copy regions without a key for an encrypted source the plan selects in
/// this tenant.
fn kms_gaps(s: &Setup, found: &[RegionResult]) -> Vec<String> {
    let selected: Vec<_> = found
        .iter()
        .flat_map(|r| r.selection.selected.iter().cloned())
        .collect();
    encryption_gaps(&s.loaded.plan.copies, &selected)
}

/// The vaults the plan's `[[vault]]` rules name.
fn plan_vaults(s: &Setup) -> Vec<&rolesnap_core::config::Vault> {
    let mut out: Vec<&rolesnap_core::config::Vault> = Vec::new();
    for rule in &s.loaded.plan.vaults {
        if let Some(v) = s.loaded.accounts.vault(&rule.vault) {
            if !out.iter().any(|o| o.name == v.name) {
                out.push(v);
            }
        }
    }
    out
}

/// The encrypted EBS volumes of the selected instances, and the encrypted
/// RDS instances and Aurora clusters, whose keys a vault cannot use: the AWS
/// managed key (per resource), or a customer key whose policy does not grant
/// the vault account (per key, with the statement to add).
async fn vault_findings(s: &Setup, conn: &Connected, found: &[RegionResult]) -> Vec<VaultFinding> {
    let vaults = plan_vaults(s);
    let mut out: Vec<VaultFinding> = Vec::new();
    let mut keys: std::collections::BTreeMap<(String, String), Result<KeyInfo, String>> =
        std::collections::BTreeMap::new();
    let mut reported_keys: Vec<(String, String)> = Vec::new();
    for r in found {
        // (what, its key, the AWS managed key's name) of every encrypted resource.
        let mut encrypted: Vec<(String, String, &str)> = Vec::new();
        for sel in &r.selection.selected {
            match &sel.resource {
                Resource::Instance(i) => {
                    for v in i.volumes.iter().filter(|v| v.encrypted) {
                        if let Some(k) = &v.kms_key_id {
                            encrypted.push((
                                format!("instance {} volume {}", i.id, v.volume_id),
                                k.clone(),
                                "aws/ebs",
                            ));
                        }
                    }
                }
                Resource::DbInstance(d) if d.encrypted => {
                    if let Some(k) = &d.kms_key_id {
                        encrypted.push((format!("db-instance {}", d.id), k.clone(), "aws/rds"));
                    }
                }
                Resource::DbCluster(c) if c.encrypted => {
                    if let Some(k) = &c.kms_key_id {
                        encrypted.push((format!("db-cluster {}", c.id), k.clone(), "aws/rds"));
                    }
                }
                _ => {}
            }
        }
        {
            for (what, key, managed) in encrypted {
                let k = (r.region.clone(), key.clone());
                if !keys.contains_key(&k) {
                    let info = describe_key(&conn.session, &r.region, &key).await;
                    keys.insert(k.clone(), info);
                }
                match &keys[&k] {
                    Err(e) => {
                        if !reported_keys.contains(&k) {
                            reported_keys.push(k.clone());
                            out.push(VaultFinding {
                                region: r.region.clone(),
                                resource: None,
                                key: key.clone(),
                                problem: format!("could not read the key: {e}"),
                                statement: None,
                            });
                        }
                    }
                    Ok(info) if info.aws_managed => out.push(VaultFinding {
                        region: r.region.clone(),
                        resource: Some(what),
                        key: info.arn.clone(),
                        problem: format!(
                            "cannot be vault-copied: encrypted with the AWS managed key \
                             {managed}; re-encrypt with a customer managed key"
                        ),
                        statement: None,
                    }),
                    Ok(info) => {
                        if reported_keys.contains(&k) {
                            continue;
                        }
                        reported_keys.push(k.clone());
                        let policy = key_policy(&conn.session, &r.region, &info.arn).await;
                        for vault in &vaults {
                            let problem = match &policy {
                                Err(e) => format!("could not read its key policy: {e}"),
                                Ok(p) if key_policy_grants(p, vault.account()) => continue,
                                Ok(_) => format!(
                                    "its key policy does not grant vault `{}` (account {}) \
                                     kms:Decrypt and kms:CreateGrant; add this statement to the \
                                     key policy",
                                    vault.name,
                                    vault.account()
                                ),
                            };
                            out.push(VaultFinding {
                                region: r.region.clone(),
                                resource: None,
                                key: info.arn.clone(),
                                problem,
                                statement: policy
                                    .is_ok()
                                    .then(|| vault_key_statement(vault.account())),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// Each vault's role assumed, and its key in every region a tenant's points
/// go to (`kms:DescribeKey` in the vault account).
async fn check_vaults(s: &Setup, regions: &[String]) -> Vec<VaultRow> {
    let mut rows = Vec::new();
    for v in plan_vaults(s) {
        let mut dests: Vec<String> = Vec::new();
        for rule in s.loaded.plan.vaults.iter().filter(|r| r.vault == v.name) {
            for src in regions {
                for d in rule.dests(src) {
                    if v.keys.contains_key(&d) && !dests.contains(&d) {
                        dests.push(d);
                    }
                }
            }
        }
        let connected = connect_tenants(&s.admin, std::slice::from_ref(&v.role), None, &s.logs)
            .await
            .into_iter()
            .next();
        let conn = match connected {
            Some(Ok(c)) => c,
            Some(Err(f)) => {
                rows.push(VaultRow {
                    vault: v.name.clone(),
                    account: v.account().to_string(),
                    region: None,
                    ok: false,
                    error: Some(format!("the vault role cannot be assumed: {f}")),
                });
                continue;
            }
            None => continue,
        };
        for d in dests {
            let key = &v.keys[&d];
            let error = match describe_key(&conn.session, &d, key).await {
                Ok(_) => None,
                Err(e) => Some(format!("the vault key {key} in {d}: {e}")),
            };
            rows.push(VaultRow {
                vault: v.name.clone(),
                account: v.account().to_string(),
                region: Some(d),
                ok: error.is_none(),
                error,
            });
        }
    }
    for r in rows.iter().filter(|r| !r.ok) {
        s.logs.write(
            LogFile::Cvd,
            None,
            "CvdValidate::Vault",
            &format!("Vault [{}]: {}", r.vault, r.error.as_deref().unwrap_or("")),
        );
    }
    rows
}

/// The vault checks and the key policy statements to add (human output).
fn print_vault_human(vaults: &[VaultRow], rows: &[Row]) {
    for v in vaults {
        match &v.error {
            None => println!(
                "vault {} ({}): key in {} OK",
                v.vault,
                v.account,
                v.region.as_deref().unwrap_or("-")
            ),
            Some(e) => println!("vault {} ({}): FAILED {e}", v.vault, v.account),
        }
    }
    for r in rows {
        for f in &r.vault {
            match &f.resource {
                Some(res) => println!("tenant {} {}: {res}: {}", r.tenant, f.region, f.problem),
                None => println!(
                    "tenant {} {}: key {}: {}",
                    r.tenant, f.region, f.key, f.problem
                ),
            }
            if let Some(st) = &f.statement {
                println!("{}", serde_json::to_string_pretty(st).unwrap_or_default());
            }
        }
    }
}

/// The human output: the plan, its notes and the tenant table (the table
/// left out under `--quiet` when every tenant passed).
fn print_human(global: &Global, s: &Setup, notes: &[String], rows: &[Row], failed: usize) {
    let plan = &s.loaded.plan;
    println!(
        "plan {} ({}): configuration OK",
        plan.name,
        plan.source.display()
    );
    for n in notes {
        println!("note: {n}");
    }
    let mut t = table(&["tenant", "account", "role", "result"]);
    for r in rows {
        t.add_row(vec![
            r.tenant.clone(),
            r.account.clone().unwrap_or_else(|| "-".into()),
            r.role_arn.clone(),
            result_text(r),
        ]);
    }
    if !global.quiet || failed > 0 {
        println!("{t}");
    }
}

/// The "result" column of a tenant row.
fn result_text(r: &Row) -> String {
    let result = match (&r.error, r.ok) {
        (None, true) => {
            let unknown = r
                .probes
                .iter()
                .filter(|p| p.outcome == ProbeOutcome::Unknown)
                .count();
            if unknown == 0 {
                format!(
                    "OK ({} permissions checked in {})",
                    r.probes.len(),
                    r.region.as_deref().unwrap_or("?")
                )
            } else {
                format!(
                    "OK ({unknown} of {} probes undecided in {}: {})",
                    r.probes.len(),
                    r.region.as_deref().unwrap_or("?"),
                    undecided(&r.probes)
                )
            }
        }
        (Some(e), _) => {
            format!("FAILED {}: {e}", r.error_code.as_deref().unwrap_or(""))
        }
        (None, false) => "FAILED".to_string(),
    };
    if r.broader.is_empty() {
        result
    } else {
        format!(
            "{result}; broader than the printed policy: {}",
            r.broader.join(", ")
        )
    }
}

/// The probes AWS answered neither yes nor no, each with its answer:
/// `ec2:CreateSnapshots (InternalError: boom)`, joined by `; `.
fn undecided(probes: &[Probe]) -> String {
    probes
        .iter()
        .filter(|p| p.outcome == ProbeOutcome::Unknown)
        .map(|p| {
            if p.detail.is_empty() {
                p.action.clone()
            } else {
                format!("{} ({})", p.action, p.detail)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(action: &str, outcome: ProbeOutcome, detail: &str) -> Probe {
        Probe {
            action: action.into(),
            outcome,
            detail: detail.into(),
        }
    }

    #[test]
    fn an_undecided_probe_is_named_with_its_answer() {
        let row = Row {
            tenant: "alpha".into(),
            role_arn: "arn:aws:iam::222222222222:role/vsa-role".into(),
            account: Some("222222222222".into()),
            region: Some("us-east-1".into()),
            ok: true,
            error_code: None,
            error: None,
            probes: vec![
                probe("ec2:DescribeInstances", ProbeOutcome::Allowed, ""),
                probe(
                    "ec2:CreateSnapshots",
                    ProbeOutcome::Unknown,
                    "InternalError: boom",
                ),
                probe("rds:DescribeDBSnapshots", ProbeOutcome::Unknown, ""),
            ],
            broader: vec![],
            broader_check: None,
            vault: vec![],
        };
        assert_eq!(
            result_text(&row),
            "OK (2 of 3 probes undecided in us-east-1: ec2:CreateSnapshots \
             (InternalError: boom); rds:DescribeDBSnapshots)"
        );
    }
}
