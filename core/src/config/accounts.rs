//! The accounts file: the `[admin]` table (where the agent's own credentials
//! come from) and one `[[tenant]]` per tenant account, checked into
//! [`Accounts`].

use std::path::Path;

use toml::Spanned;

use super::checks::{control_problem, external_id_problem, unique};
use super::errors::{file_error, ConfigError, Ctx};
use super::raw::{RawAccounts, RawAdmin, RawTenant, RawVault};
use super::read::{is_blank, read_config_file};
use super::{Accounts, Admin, RoleArn, Tenant, Vault};

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
    unique(
        &ctx,
        raw.tenant
            .iter()
            .map(|t| &t.get_ref().name)
            .chain(raw.vault.iter().map(|v| &v.get_ref().name)),
        "vault.name",
    )?;
    let mut vaults: Vec<Vault> = Vec::new();
    for v in &raw.vault {
        let vault = parse_vault(&ctx, v.get_ref(), &tenants, &vaults, tenant_max)?;
        vaults.push(vault);
    }
    let notify = match &raw.notify {
        Some(n) => Some(super::notify::parse_notify(&ctx, n, false)?),
        None => None,
    };
    Ok(Accounts {
        admin,
        tenants,
        vaults,
        notify,
    })
}

/// One `[[vault]]`: a role as a tenant's (not a tenant's account: a vault
/// in a tenant's account would not survive that account), and a KMS key ARN
/// of the vault account per region.
fn parse_vault(
    ctx: &Ctx<'_>,
    v: &RawVault,
    tenants: &[Tenant],
    before: &[Vault],
    max: u32,
) -> Result<Vault, ConfigError> {
    let as_tenant = RawTenant {
        name: v.name.clone(),
        role_arn: v.role_arn.clone(),
        external_id: v.external_id.clone(),
        regions: Vec::new(),
        session_duration: v.session_duration.clone(),
    };
    let mut role =
        parse_tenant(ctx, &as_tenant, &[], max).map_err(|e| e.rekey("tenant.", "vault."))?;
    let account = role.role_arn.account.clone();
    if let Some(t) = tenants.iter().find(|t| t.role_arn.account == account) {
        return Err(ctx.err(
            &v.role_arn.span(),
            "vault.role-arn",
            format!(
                "account {account} is tenant `{}`'s; a vault must be a separate account (its copies must survive the tenant account)",
                t.name
            ),
        ));
    }
    if let Some(o) = before.iter().find(|o| o.account() == account) {
        return Err(ctx.err(
            &v.role_arn.span(),
            "vault.role-arn",
            format!("account {account} is already vault `{}`", o.name),
        ));
    }
    if v.keys.is_empty() {
        return Err(ctx.err(
            &v.name.span(),
            "vault.keys",
            "a vault needs a KMS key ARN per region it keeps copies in: [vault.keys] us-east-1 = \"arn:aws:kms:us-east-1:ACCOUNT:key/…\"",
        ));
    }
    let mut keys = std::collections::BTreeMap::new();
    for (region, key) in &v.keys {
        if !crate::config::is_region(region) {
            return Err(ctx.err(
                &key.span(),
                "vault.keys",
                format!("`{region}` is not an AWS region name (e.g. us-east-1)"),
            ));
        }
        ctx.check(
            &key.span(),
            "vault.keys",
            key_arn_problem(key.get_ref(), region, &account),
        )?;
        keys.insert(region.clone(), key.get_ref().clone());
    }
    role.regions = keys.keys().cloned().collect();
    Ok(Vault {
        name: role.name.clone(),
        role,
        keys,
    })
}

/// A vault key must be a key ARN of the vault account in its region: a copy
/// made in the vault names it, and cross-account use needs the full ARN.
fn key_arn_problem(key: &str, region: &str, account: &str) -> Option<String> {
    if let Some(p) = crate::config::kms_key_problem(key, region) {
        return Some(p);
    }
    let want = format!("arn:aws:kms:{region}:{account}:key/");
    let ok = key.starts_with(&want)
        || key.split_once(":kms:").is_some_and(|(p, rest)| {
            p.starts_with("arn:aws") && rest.starts_with(&format!("{region}:{account}:key/"))
        });
    (!ok).then(|| format!("`{key}` is not a key ARN of the vault account {account} in {region} (expected {want}…)"))
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
