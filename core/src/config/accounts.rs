//! The accounts file: the `[admin]` table (where the agent's own credentials
//! come from) and one `[[tenant]]` per tenant account, checked into
//! [`Accounts`].

use std::path::Path;

use toml::Spanned;

use super::checks::{control_problem, external_id_problem, unique};
use super::errors::{file_error, ConfigError, Ctx};
use super::raw::{RawAccounts, RawAdmin, RawTenant};
use super::read::{is_blank, read_config_file};
use super::{Accounts, Admin, RoleArn, Tenant};

/// Session length bounds of STS AssumeRole (DurationSeconds 900–43200).
pub const MIN_SESSION_SECONDS: u32 = 900;
pub const MAX_SESSION_SECONDS: u32 = 43_200;
/// AWS caps a chained role session (a role assuming a role) at one hour.
pub const MAX_CHAINED_SESSION_SECONDS: u32 = 3_600;
pub const DEFAULT_SESSION_SECONDS: u32 = 3_600;
/// Longest tenant name (it is part of the STS session name, 64 characters).
pub const MAX_TENANT_NAME: usize = 40;

/// Reads and checks an accounts file.
///
/// # Errors
/// A [`ConfigError`] naming file, line and key for the first problem found.
pub fn load_accounts(path: &Path) -> Result<Accounts, ConfigError> {
    parse_accounts(path, &read_config_file(path)?)
}

pub fn parse_accounts(path: &Path, src: &str) -> Result<Accounts, ConfigError> {
    let ctx = Ctx { file: path, src };
    if is_blank(src) {
        return Err(file_error(
            path,
            0,
            "empty (only blank lines and comments); an accounts file needs an [admin] table and a [[tenant]] per tenant account",
        ));
    }
    let raw: RawAccounts = toml::from_str(src).map_err(|e| ctx.parse_error(e))?;
    let admin = parse_admin(&ctx, raw.admin.get_ref())?;
    unique(
        &ctx,
        raw.tenant.iter().map(|t| &t.get_ref().name),
        "tenant.name",
    )?;
    // Tenant sessions chained through an admin role are capped at one hour by AWS.
    let tenant_max = if admin.role_arn.is_some() {
        MAX_CHAINED_SESSION_SECONDS
    } else {
        MAX_SESSION_SECONDS
    };
    let mut tenants: Vec<Tenant> = Vec::new();
    for t in &raw.tenant {
        let tenant = parse_tenant(&ctx, t.get_ref(), &tenants, tenant_max)?;
        tenants.push(tenant);
    }
    Ok(Accounts { admin, tenants })
}

/// The `[admin]` table.
fn parse_admin(ctx: &Ctx<'_>, admin_raw: &RawAdmin) -> Result<Admin, ConfigError> {
    let admin_role = match &admin_raw.role_arn {
        Some(a) => {
            ctx.check(&a.span(), "admin.role-arn", control_problem(a.get_ref()))?;
            Some(
                a.get_ref()
                    .parse::<RoleArn>()
                    .map_err(|m| ctx.err(&a.span(), "admin.role-arn", m))?,
            )
        }
        None => None,
    };
    let region = match &admin_raw.region {
        Some(r) => ctx.region(r, "admin.region")?,
        None => "us-east-1".to_string(),
    };
    if let Some(p) = &admin_raw.profile {
        ctx.check(&p.span(), "admin.profile", control_problem(p.get_ref()))?;
    }
    if let Some(x) = &admin_raw.external_id {
        ctx.check(
            &x.span(),
            "admin.external-id",
            external_id_problem(x.get_ref()),
        )?;
    }
    Ok(Admin {
        profile: admin_raw.profile.as_ref().map(|p| p.get_ref().clone()),
        external_id: admin_raw.external_id.as_ref().map(|x| x.get_ref().clone()),
        session_seconds: ctx.session(
            &admin_raw.session_duration,
            "admin.session-duration",
            MAX_SESSION_SECONDS,
        )?,
        role_arn: admin_role,
        region,
        max_calls_in_flight: calls_in_flight(ctx, &admin_raw.max_calls_in_flight)?,
    })
}

/// `admin.max-calls-in-flight`: 1–4096, by default the connection pool's.
fn calls_in_flight(ctx: &Ctx<'_>, n: &Option<Spanned<i64>>) -> Result<usize, ConfigError> {
    match n {
        None => Ok(crate::aws::connections::DEFAULT_CALLS_IN_FLIGHT),
        Some(n) => match usize::try_from(*n.get_ref()) {
            Ok(v) if (1..=4096).contains(&v) => Ok(v),
            _ => Err(ctx.err(
                &n.span(),
                "admin.max-calls-in-flight",
                format!("{} is outside 1–4096", n.get_ref()),
            )),
        },
    }
}

/// One `[[tenant]]`, checked against the tenants before it.
fn parse_tenant(
    ctx: &Ctx<'_>,
    t: &RawTenant,
    before: &[Tenant],
    tenant_max: u32,
) -> Result<Tenant, ConfigError> {
    let name = t.name.get_ref();
    ctx.check(&t.name.span(), "tenant.name", control_problem(name))?;
    if name.is_empty()
        || name.len() > MAX_TENANT_NAME
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ctx.err(
            &t.name.span(),
            "tenant.name",
            format!("`{name}`: use 1–{MAX_TENANT_NAME} letters, digits, '-' and '_'"),
        ));
    }
    ctx.check(
        &t.role_arn.span(),
        "tenant.role-arn",
        control_problem(t.role_arn.get_ref()),
    )?;
    let role_arn = t
        .role_arn
        .get_ref()
        .parse::<RoleArn>()
        .map_err(|m| ctx.err(&t.role_arn.span(), "tenant.role-arn", m))?;
    // Two names for one role would back the same account up twice, and
    // prune each other's points as "not this plan's".
    if let Some(other) = before.iter().find(|o| {
        o.role_arn.account == role_arn.account
            && o.role_arn.name.eq_ignore_ascii_case(&role_arn.name)
    }) {
        return Err(ctx.err(
            &t.role_arn.span(),
            "tenant.role-arn",
            format!(
                "`{role_arn}` is already the role of tenant `{}`; one tenant name per account role",
                other.name
            ),
        ));
    }
    if let Some(x) = &t.external_id {
        ctx.check(
            &x.span(),
            "tenant.external-id",
            external_id_problem(x.get_ref()),
        )?;
    }
    let regions = t
        .regions
        .iter()
        .map(|r| ctx.region(r, "tenant.regions"))
        .collect::<Result<Vec<_>, _>>()?;
    unique(ctx, t.regions.iter(), "tenant.regions")?;
    Ok(Tenant {
        name: name.clone(),
        role_arn,
        external_id: t.external_id.as_ref().map(|x| x.get_ref().clone()),
        regions,
        session_seconds: ctx.session(&t.session_duration, "tenant.session-duration", tenant_max)?,
    })
}

impl Ctx<'_> {
    /// An STS session length in seconds, by default an hour (at most `max`).
    fn session(&self, d: &Option<Spanned<u32>>, key: &str, max: u32) -> Result<u32, ConfigError> {
        match d {
            None => Ok(DEFAULT_SESSION_SECONDS.min(max)),
            Some(d) => {
                let v = *d.get_ref();
                if (MIN_SESSION_SECONDS..=max).contains(&v) {
                    Ok(v)
                } else {
                    Err(self.err(
                        &d.span(),
                        key,
                        format!("{v} s is outside STS AssumeRole's {MIN_SESSION_SECONDS}–{max} s"),
                    ))
                }
            }
        }
    }
}
