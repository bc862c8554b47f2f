//! The plan file: `[plan]`, `[retention]`, `[[copy]]`, `[lock]` and the
//! `[[group]]`s (see group.rs), checked into a [`Plan`]; then the plan's
//! tenant references against the accounts file.

use std::collections::BTreeSet;
use std::path::Path;

use toml::Spanned;

use super::checks::{control_problem, kms_key_problem, tag_value_problem, unique};
use super::crontab::parse_schedule;
use super::errors::{file_error, ConfigError, Ctx};
use super::group::parse_group;
use super::raw::{RawCopy, RawLock, RawPlan, RawPlanFile, RawRetention, RawVaultRule};
use super::read::is_blank;
use super::{
    Accounts, CopyRule, Group, LockMode, LockRule, Method, Plan, Regions, Retention, VaultRegion,
    VaultRule, MAX_DESCRIPTION_CHARS,
};

/// Default time a job waits for snapshots to complete.
pub const DEFAULT_WAIT_TIMEOUT_MINUTES: u32 = 240;

/// Parses and checks a plan file on its own (no tenant reference check).
/// Returns the plan and its `accounts` key.
pub fn parse_plan_only(path: &Path, src: &str) -> Result<(Plan, Option<String>), ConfigError> {
    let ctx = Ctx { file: path, src };
    if is_blank(src) {
        return Err(file_error(
            path,
            0,
            "empty (only blank lines and comments); a plan needs a [plan] table with name and id, and at least one [[group]]",
        ));
    }
    let raw: RawPlanFile = toml::from_str(src).map_err(|e| ctx.parse_error(e))?;
    let p = raw.plan.get_ref();
    let name = plan_name(&ctx, p)?;
    if let Some(a) = &raw.accounts {
        if let Some(pr) = control_problem(a) {
            return Err(ctx.err(&(0..0), "accounts", pr));
        }
    }
    let method = plan_method(&ctx, &p.method)?;
    let wait_timeout_minutes = match &p.wait_timeout_minutes {
        None => DEFAULT_WAIT_TIMEOUT_MINUTES,
        Some(w) if *w.get_ref() == 0 => {
            return Err(ctx.err(&w.span(), "plan.wait-timeout-minutes", "must be at least 1"))
        }
        Some(w) => *w.get_ref(),
    };
    let schedule = match &raw.schedule {
        None => None,
        Some(s) => Some(parse_schedule(&ctx, s.get_ref())?),
    };
    let retention = match &raw.retention {
        Some(r) => {
            check_retention(&ctx, r, "retention")?;
            Retention::from_raw(r.get_ref())
        }
        None => Retention::default(),
    };
    let copies = parse_copies(&ctx, &raw.copy, &retention)?;
    let lock = match &raw.lock {
        Some(l) => Some(parse_lock(&ctx, l, "lock")?),
        None => None,
    };
    let groups = parse_groups(&ctx, &raw)?;
    let vaults = parse_vault_rules(&ctx, &raw.vault, &retention)?;
    let notify = match &raw.notify {
        Some(n) => Some(super::notify::parse_notify(&ctx, n, true)?),
        None => None,
    };
    let drill = match &raw.drill {
        Some(d) => {
            let copy_regions: Vec<String> = copies.iter().map(|c| c.region.clone()).collect();
            let tenants: Vec<String> = groups.iter().flat_map(|g| g.tenants.clone()).collect();
            let tz = schedule.as_ref().map(|s| s.timezone);
            Some(super::drill::parse_drill(
                &ctx,
                d,
                tz,
                &copy_regions,
                &tenants,
            )?)
        }
        None => None,
    };
    Ok((
        Plan {
            name,
            id: *p.id.get_ref(),
            description: p.description.as_ref().map(|d| d.get_ref().clone()),
            method,
            wait_timeout_minutes,
            schedule,
            retention,
            copies,
            groups,
            lock,
            vaults,
            notify,
            drill,
            source: path.to_path_buf(),
        },
        raw.accounts,
    ))
}

/// `plan.name` (returned) and `plan.description`.
fn plan_name(ctx: &Ctx<'_>, p: &RawPlan) -> Result<String, ConfigError> {
    let name = p.name.get_ref().clone();
    // The name is the value of the `_GX_PLAN_` tag on everything the plan makes.
    ctx.check(&p.name.span(), "plan.name", tag_value_problem(&name))?;
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_whitespace) {
        return Err(ctx.err(
            &p.name.span(),
            "plan.name",
            "a plan name is 1–64 characters without spaces",
        ));
    }
    if let Some(d) = &p.description {
        // Free text for people, kept to what an EC2 or RDS description takes.
        ctx.check(&d.span(), "plan.description", control_problem(d.get_ref()))?;
        let n = d.get_ref().chars().count();
        if n > MAX_DESCRIPTION_CHARS {
            return Err(ctx.err(
                &d.span(),
                "plan.description",
                format!("{n} characters; at most {MAX_DESCRIPTION_CHARS}"),
            ));
        }
    }
    Ok(name)
}

/// `plan.method`: snapshot-set unless it says ami.
fn plan_method(ctx: &Ctx<'_>, method: &Option<Spanned<String>>) -> Result<Method, ConfigError> {
    Ok(match method {
        None => Method::SnapshotSet,
        Some(m) => match m.get_ref().as_str() {
            "snapshot-set" => Method::SnapshotSet,
            "ami" => Method::Ami,
            other => {
                return Err(ctx.err(
                    &m.span(),
                    "plan.method",
                    format!("`{other}`: expected \"snapshot-set\" or \"ami\""),
                ))
            }
        },
    })
}

/// The `[[copy]]` rules; a copy without its own retention keeps the plan's.
fn parse_copies(
    ctx: &Ctx<'_>,
    raw: &[Spanned<RawCopy>],
    retention: &Retention,
) -> Result<Vec<CopyRule>, ConfigError> {
    let mut copies = Vec::new();
    let mut copy_regions = BTreeSet::new();
    for c in raw {
        let c = c.get_ref();
        let region = ctx.region(&c.region, "copy.region")?;
        if let Some(k) = &c.kms_key_id {
            ctx.check(
                &k.span(),
                "copy.kms-key-id",
                kms_key_problem(k.get_ref(), &region),
            )?;
        }
        if let Some(r) = &c.retention {
            check_retention(ctx, r, "copy.retention")?;
        }
        if !copy_regions.insert(region.clone()) {
            return Err(ctx.err(
                &c.region.span(),
                "copy.region",
                format!("duplicate copy region `{region}`"),
            ));
        }
        copies.push(CopyRule {
            region,
            retention: c
                .retention
                .as_ref()
                .map(|r| Retention::from_raw(r.get_ref()))
                .unwrap_or_else(|| retention.clone()),
            kms_key_id: c.kms_key_id.as_ref().map(|k| k.get_ref().clone()),
            lock: match &c.lock {
                Some(l) => Some(parse_lock(ctx, l, "copy.lock")?),
                None => None,
            },
        });
    }
    Ok(copies)
}

/// The `[[vault]]` rules: a vault name (checked against the accounts file
/// by [`check_vaults`]), regions (`"same"` by default), a retention (the
/// plan's by default) and an optional lock.
fn parse_vault_rules(
    ctx: &Ctx<'_>,
    raw: &[Spanned<RawVaultRule>],
    retention: &Retention,
) -> Result<Vec<VaultRule>, ConfigError> {
    let mut rules: Vec<VaultRule> = Vec::new();
    for r in raw {
        let r = r.get_ref();
        ctx.check(
            &r.name.span(),
            "vault.name",
            control_problem(r.name.get_ref()),
        )?;
        if rules.iter().any(|o| &o.vault == r.name.get_ref()) {
            return Err(ctx.err(
                &r.name.span(),
                "vault.name",
                format!(
                    "a second rule for vault `{}`; list its regions in one rule",
                    r.name.get_ref()
                ),
            ));
        }
        let mut regions = Vec::new();
        for reg in r.regions.iter().flatten() {
            let v = if reg.get_ref() == "same" {
                VaultRegion::Same
            } else {
                VaultRegion::Region(ctx.region(reg, "vault.regions")?)
            };
            if regions.contains(&v) {
                return Err(ctx.err(
                    &reg.span(),
                    "vault.regions",
                    format!("`{}` twice", reg.get_ref()),
                ));
            }
            regions.push(v);
        }
        if r.regions.is_some() && regions.is_empty() {
            return Err(ctx.err(
                &r.name.span(),
                "vault.regions",
                "empty; name regions, or \"same\" (the source's region), or leave the key out",
            ));
        }
        if regions.is_empty() {
            regions.push(VaultRegion::Same);
        }
        if let Some(rt) = &r.retention {
            check_retention(ctx, rt, "vault.retention")?;
        }
        rules.push(VaultRule {
            vault: r.name.get_ref().clone(),
            regions,
            retention: r
                .retention
                .as_ref()
                .map(|x| Retention::from_raw(x.get_ref()))
                .unwrap_or_else(|| retention.clone()),
            lock: match &r.lock {
                Some(l) => Some(parse_lock(ctx, l, "vault.lock")?),
                None => None,
            },
        });
    }
    Ok(rules)
}

/// Every `[[vault]]` rule names a vault of the accounts file, which has a
/// key in each region the rule can copy into (fixed regions here; `"same"`
/// for each region a group names).
pub(super) fn check_vaults(
    path: &Path,
    src: &str,
    plan: &Plan,
    accounts: &Accounts,
) -> Result<(), ConfigError> {
    let ctx = Ctx { file: path, src };
    let raw: RawPlanFile = toml::from_str(src).map_err(|e| ctx.parse_error(e))?;
    for (rule, r) in plan.vaults.iter().zip(&raw.vault) {
        let span = r.get_ref().name.span();
        let Some(vault) = accounts.vault(&rule.vault) else {
            let known: Vec<&str> = accounts.vaults.iter().map(|v| v.name.as_str()).collect();
            return Err(ctx.err(
                &span,
                "vault.name",
                format!(
                    "unknown vault `{}` (accounts file declares: {})",
                    rule.vault,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        let mut needed: Vec<String> = Vec::new();
        for reg in &rule.regions {
            match reg {
                VaultRegion::Region(x) => needed.push(x.clone()),
                VaultRegion::Same => {
                    for g in &plan.groups {
                        match &g.regions {
                            Regions::List(list) => needed.extend(list.iter().cloned()),
                            Regions::TenantDefault => {
                                for t in g.tenants.iter().filter_map(|t| accounts.tenant(t)) {
                                    needed.extend(t.regions.iter().cloned());
                                }
                            }
                            Regions::AllEnabled => {}
                        }
                    }
                }
            }
        }
        if let Some(missing) = needed.iter().find(|r| !vault.keys.contains_key(*r)) {
            return Err(ctx.err(
                &span,
                "vault.regions",
                format!(
                    "vault `{}` has no KMS key for {missing} in the accounts file ([vault.keys] {missing} = \"arn:aws:kms:{missing}:{}:key/…\")",
                    vault.name,
                    vault.account()
                ),
            ));
        }
    }
    Ok(())
}

/// The `[[group]]`s: at least one, unique names, and no group whose source
/// region is the plan's only copy region.
fn parse_groups(ctx: &Ctx<'_>, raw: &RawPlanFile) -> Result<Vec<Group>, ConfigError> {
    if raw.group.is_empty() {
        return Err(ctx.err(
            &raw.plan.span(),
            "group",
            "a plan needs at least one [[group]] saying what to protect",
        ));
    }
    unique(
        ctx,
        raw.group.iter().map(|g| &g.get_ref().name),
        "group.name",
    )?;
    let mut groups = Vec::new();
    for g in &raw.group {
        let group = parse_group(ctx, g)?;
        // A point is copied to every copy region but its own: with a single
        // copy region that is also a source region, the points made there
        // get no copy at all ("0 of 0 items"). Two regions copied into each
        // other are fine.
        if let (Regions::List(list), [only]) = (&group.regions, raw.copy.as_slice()) {
            let region = only.get_ref().region.get_ref();
            if list.contains(region) {
                return Err(ctx.err(
                    &only.get_ref().region.span(),
                    "copy.region",
                    format!(
                        "`{region}` is a source region of group `{}` and the plan's only copy region: {}",
                        group.name,
                        no_copy_there(region)
                    ),
                ));
            }
        }
        groups.push(group);
    }
    Ok(groups)
}

/// The words that let a retention leave a source with no recovery point.
pub const ALLOW_EMPTY: &str = "I understand";

/// Refuses keep rules that can leave a live source with no recovery point
/// (in its region or a copy region) unless the table says
/// `allow-empty = "I understand"`: `days = 0`, `count = 0` with
/// `allow-delete-last = true`, and rules that are all 0.
fn check_retention(
    ctx: &Ctx<'_>,
    r: &Spanned<RawRetention>,
    table: &str,
) -> Result<(), ConfigError> {
    let raw = r.get_ref();
    if let Some(a) = &raw.allow_empty {
        if a.get_ref() != ALLOW_EMPTY {
            return Err(ctx.err(
                &a.span(),
                &format!("{table}.allow-empty"),
                format!("must be exactly \"{ALLOW_EMPTY}\" (or left out)"),
            ));
        }
        return Ok(());
    }
    let hint =
        format!("; if that is what you want, add allow-empty = \"{ALLOW_EMPTY}\" to [{table}]");
    if let Some(d) = raw.days.as_ref().filter(|d| *d.get_ref() == 0) {
        return Err(ctx.err(
            &d.span(),
            &format!("{table}.days"),
            format!("days = 0 keeps no point by age: the next prune deletes every copy in a copy region, and all but the newest point of each live source{hint}"),
        ));
    }
    let allow_last = raw.allow_delete_last.as_ref().filter(|a| *a.get_ref());
    if let (Some(c), Some(_)) = (raw.count.as_ref().filter(|c| *c.get_ref() == 0), allow_last) {
        return Err(ctx.err(
            &c.span(),
            &format!("{table}.count"),
            format!("count = 0 with allow-delete-last = true lets prune delete the last recovery point of every source{hint}"),
        ));
    }
    let rules = [&raw.days, &raw.count, &raw.daily, &raw.weekly, &raw.monthly];
    let given: Vec<&Spanned<u32>> = rules.iter().filter_map(|r| r.as_ref()).collect();
    if !given.is_empty() && given.iter().all(|r| *r.get_ref() == 0) {
        return Err(ctx.err(
            &given[0].span(),
            table,
            format!("every keep rule is 0: the rules keep no recovery point{hint}"),
        ));
    }
    Ok(())
}

/// The keep rules of a `[retention]` table (checked by [`check_retention`]).
impl Retention {
    pub(super) fn from_raw(r: &RawRetention) -> Self {
        let v = |x: &Option<Spanned<u32>>| x.as_ref().map(|x| *x.get_ref());
        Retention {
            days: v(&r.days),
            count: v(&r.count),
            daily: v(&r.daily),
            weekly: v(&r.weekly),
            monthly: v(&r.monthly),
            allow_delete_last: r.allow_delete_last.as_ref().is_some_and(|a| *a.get_ref()),
        }
    }
}

/// `[lock]` or a `[[copy]]`'s `lock` (`key` says which).
fn parse_lock(ctx: &Ctx<'_>, l: &Spanned<RawLock>, key: &str) -> Result<LockRule, ConfigError> {
    let r = l.get_ref();
    let mode = match r.mode.get_ref().as_str() {
        "governance" => LockMode::Governance,
        "compliance" => LockMode::Compliance,
        other => {
            return Err(ctx.err(
                &r.mode.span(),
                &format!("{key}.mode"),
                format!("`{other}` is not a lock mode: governance or compliance"),
            ))
        }
    };
    let cool_off_hours = match &r.cool_off_hours {
        None => None,
        Some(h) if mode == LockMode::Governance => {
            return Err(ctx.err(
                &h.span(),
                &format!("{key}.cool-off-hours"),
                "a cooling-off period exists only in compliance mode",
            ))
        }
        Some(h) if !(1..=72).contains(h.get_ref()) => {
            return Err(ctx.err(
                &h.span(),
                &format!("{key}.cool-off-hours"),
                "must be 1-72 hours (AWS LockSnapshot CoolOffPeriod)",
            ))
        }
        Some(h) => Some(*h.get_ref()),
    };
    let regions = match &r.regions {
        None => None,
        Some(rs) if key != "lock" => {
            let span = rs.first().map_or(l.span(), |x| x.span());
            return Err(ctx.err(
                &span,
                &format!("{key}.regions"),
                "a copy rule's lock applies to its own region",
            ));
        }
        Some(rs) => Some(
            rs.iter()
                .map(|x| ctx.region(x, "lock.regions"))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(LockRule {
        mode,
        cool_off_hours,
        regions,
    })
}

/// Checks every tenant a plan names against the accounts file.
pub(super) fn check_tenants(
    path: &Path,
    src: &str,
    plan: &Plan,
    accounts: &Accounts,
) -> Result<(), ConfigError> {
    // Re-read the raw groups for spans; the validated plan has lost them.
    let ctx = Ctx { file: path, src };
    let raw: RawPlanFile = toml::from_str(src).map_err(|e| ctx.parse_error(e))?;
    for g in &raw.group {
        for t in &g.get_ref().tenants {
            if accounts.tenant(t.get_ref()).is_none() {
                let known: Vec<&str> = accounts.tenants.iter().map(|t| t.name.as_str()).collect();
                return Err(ctx.err(
                    &t.span(),
                    "group.tenants",
                    format!(
                        "unknown tenant `{}` (accounts file declares: {})",
                        t.get_ref(),
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    for g in &plan.groups {
        if g.regions == Regions::TenantDefault {
            for t in &g.tenants {
                let tenant = accounts.tenant(t).expect("checked above");
                if tenant.regions.is_empty() {
                    let span = raw
                        .group
                        .iter()
                        .find(|rg| rg.get_ref().name.get_ref() == &g.name)
                        .map(|rg| rg.span())
                        .unwrap_or(0..0);
                    return Err(ctx.err(
                        &span,
                        "group.regions",
                        format!(
                            "group `{}` names no regions and tenant `{t}` has no default regions",
                            g.name
                        ),
                    ));
                }
                // The tenant's default regions are this group's source regions.
                if let [only] = raw.copy.as_slice() {
                    let region = only.get_ref().region.get_ref();
                    if tenant.regions.contains(region) {
                        return Err(ctx.err(
                            &only.get_ref().region.span(),
                            "copy.region",
                            format!(
                                "`{region}` is a source region of group `{}` (a default region of tenant `{t}` in the accounts file) and the plan's only copy region: {}",
                                g.name,
                                no_copy_there(region)
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Why a source region cannot be the only copy region.
fn no_copy_there(region: &str) -> String {
    format!("the recovery points made in {region} would have no copy anywhere; copy to another region, or add one")
}
