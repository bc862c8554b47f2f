//! `rolesnap validate`: the plan parses, every tenant role can be assumed, and
//! the permissions the agent needs are there.

use serde::Serialize;

use rolesnap_core::aws::credentials::{connect_tenants, AssumeRoleFailure, Connected};
use rolesnap_core::config::Regions;
use rolesnap_core::discovery::discover_tenant;
use rolesnap_core::jobs::copy::encryption_gaps;
use rolesnap_core::validate::{
    broader_than_printed, probe, Probe, ProbeOutcome, SIMULATE_NOT_USED,
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
}

/// `rolesnap validate`: one row per tenant, printed as a table or JSON.
pub async fn run(global: &Global, args: ValidateArgs) -> anyhow::Result<u8> {
    let s = setup(global, &args.plan, "validate").await?;
    let plan = &s.loaded.plan;
    let connected = connect_tenants(&s.admin, &s.tenants, None, &s.logs).await;
    let mut rows = Vec::new();
    for (tenant, c) in s.tenants.iter().zip(connected) {
        rows.push(validate_tenant(&s, tenant, c).await);
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    // What the plan's settings cannot do (e.g. lock RDS snapshots).
    let notes: Vec<String> = rolesnap_core::aws::lock::rds_note(plan)
        .into_iter()
        .collect();
    match global.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"plan": plan.name, "tenants": rows, "notes": notes})
            )?
        ),
        Output::Human => print_human(global, &s, &notes, &rows, failed),
    }
    Ok(if failed == 0 {
        exit::OK
    } else if failed == rows.len() {
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
    };
    match connected {
        Err(f) => {
            row.error_code = Some(f.code.clone());
            row.error = Some(f.to_string());
        }
        Ok(conn) => {
            if let Checked::KmsGap = check_tenant(s, tenant, &conn, &mut row).await {
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
async fn check_tenant(s: &Setup, tenant: &Tenant, conn: &Connected, row: &mut Row) -> Checked {
    let plan = &s.loaded.plan;
    row.account = Some(conn.account.clone());
    // Probe in the first region the plan names for this tenant.
    let region = probe_region(s, tenant);
    row.probes = probe(&conn.session, &region, None).await;
    check_broader(s, tenant, conn, &region, row).await;
    row.ok = row.probes.iter().all(|p| p.outcome != ProbeOutcome::Denied);
    // Encrypted sources need a destination key for every copy region.
    if !plan.copies.is_empty() {
        let gaps = kms_gaps(s, conn).await;
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
    if !row.ok {
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
    row.broader_check = Some(format!(
        "{SIMULATE_NOT_USED} ({} probed, {} undecided)",
        extra.len(),
        extra
            .iter()
            .filter(|p| p.outcome == ProbeOutcome::Unknown)
            .count()
    ));
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

/// Copy regions without a key for an encrypted source the plan selects in
/// this tenant.
async fn kms_gaps(s: &Setup, conn: &Connected) -> Vec<String> {
    let plan = &s.loaded.plan;
    let found = discover_tenant(
        plan,
        &conn.session,
        &conn.account,
        &s.admin.admin.region,
        None,
        &s.logs,
        false,
    )
    .await;
    let selected: Vec<_> = found
        .into_iter()
        .flat_map(|r| r.selection.selected)
        .collect();
    encryption_gaps(&plan.copies, &selected)
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
                format!("OK ({unknown} of {} probes undecided)", r.probes.len())
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
