//! `[drill]` of a plan: restore drills the agent runs on a schedule
//! (docs/DESIGN.md, "Restore drills"). A cron `schedule` (the plan's
//! `[schedule]` syntax and time zone handling), a selection (`every-days` or
//! `sample`), optionally a copy region to drill from, a timeout, and the
//! throw-away targets (`[[drill.target]]`: subnet, security groups without
//! ingress, DB subnet group) per region and, optionally, per tenant.

use std::collections::BTreeSet;

use serde::Deserialize;
use toml::Spanned;

use super::checks::control_problem;
use super::crontab::parse_schedule;
use super::errors::{ConfigError, Ctx};
use super::raw::RawSchedule;
use super::Schedule;

/// `[drill] timeout-minutes` when the plan does not set it.
pub const DEFAULT_DRILL_TIMEOUT_MINUTES: u32 = 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawDrill {
    schedule: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    every_days: Option<Spanned<u32>>,
    sample: Option<Spanned<u32>>,
    from_copy: Option<Spanned<String>>,
    timeout_minutes: Option<Spanned<u32>>,
    connect: Option<Spanned<bool>>,
    check: Option<Spanned<String>>,
    #[serde(default)]
    target: Vec<Spanned<RawDrillTarget>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawDrillTarget {
    region: Spanned<String>,
    tenant: Option<Spanned<String>>,
    subnet: Option<Spanned<String>>,
    #[serde(default)]
    security_groups: Vec<Spanned<String>>,
    db_subnet_group: Option<Spanned<String>>,
}

/// Which resources a scheduled drill run restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillSelection {
    /// Every resource at least once per this many days, those whose last
    /// drill is oldest (or missing) first.
    EveryDays(u32),
    /// This many per run, rotating: those whose last drill is oldest (or
    /// missing) first.
    Sample(u32),
}

/// Where a drill restores in one region (of one tenant, or of every tenant).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DrillTarget {
    pub region: String,
    /// `None`: every tenant of the plan (a tenant's own target wins).
    pub tenant: Option<String>,
    /// Instance drills: the subnet (with `security_groups`, both or neither).
    pub subnet: Option<String>,
    pub security_groups: Vec<String>,
    /// Database drills: the DB subnet group (default: the recorded one).
    pub db_subnet_group: Option<String>,
}

/// `[drill]` of a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DrillRule {
    /// When drills run (`schedule`, `timezone`; the time zone defaults to
    /// the plan's `[schedule]` one, else UTC).
    pub schedule: Schedule,
    pub selection: DrillSelection,
    /// Drill the newest completed copy in this `[[copy]]` region instead of
    /// the newest point in the source region.
    pub from_copy: Option<String>,
    /// How long one drill may wait for its restore to be healthy; also the
    /// age after which a drill's resources count as leftovers of a killed
    /// drill (`prune` and the next drill remove them).
    pub timeout_minutes: u32,
    /// Databases: healthy only once a TCP connect from the access node to
    /// the restored endpoint succeeds.
    pub connect: bool,
    /// Instances: a shell command run through SSM Run Command once the
    /// status checks pass; healthy only if it exits 0.
    pub check: Option<String>,
    pub targets: Vec<DrillTarget>,
}

impl DrillRule {
    /// The target for `tenant` in `region`: its own, else the one for every
    /// tenant.
    pub fn target(&self, tenant: &str, region: &str) -> Option<&DrillTarget> {
        let here = |t: &&DrillTarget| t.region == region;
        self.targets
            .iter()
            .filter(here)
            .find(|t| t.tenant.as_deref() == Some(tenant))
            .or_else(|| {
                self.targets
                    .iter()
                    .filter(here)
                    .find(|t| t.tenant.is_none())
            })
    }
}

/// Checks `[drill]`; `plan_tz` is the time zone of the plan's `[schedule]`
/// (the default here), `copy_regions` the plan's `[[copy]]` regions and
/// `tenants` those its groups name.
pub(super) fn parse_drill(
    ctx: &Ctx<'_>,
    d: &Spanned<RawDrill>,
    plan_tz: Option<chrono_tz::Tz>,
    copy_regions: &[String],
    tenants: &[String],
) -> Result<DrillRule, ConfigError> {
    let raw = d.get_ref();
    let Some(cron) = &raw.schedule else {
        return Err(ctx.err(
            &d.span(),
            "drill.schedule",
            "missing: when drills run, a cron line like the plan's [schedule] cron (e.g. \"0 4 * * 6\")",
        ));
    };
    let timezone = raw
        .timezone
        .clone()
        .or_else(|| plan_tz.map(|tz| Spanned::new(cron.span(), tz.name().to_string())));
    let schedule = parse_schedule(
        ctx,
        &RawSchedule {
            cron: cron.clone(),
            timezone,
            rpo_grace_minutes: None,
        },
    )
    .map_err(|e| {
        e.rekey("schedule.cron", "drill.schedule")
            .rekey("schedule.timezone", "drill.timezone")
    })?;
    let selection = match (&raw.every_days, &raw.sample) {
        (Some(_), Some(s)) => {
            return Err(ctx.err(
                &s.span(),
                "drill.sample",
                "give every-days or sample, not both",
            ))
        }
        (None, None) => {
            return Err(ctx.err(
                &d.span(),
                "drill.every-days",
                "missing: which resources to drill, every-days = N (each at least once per N days) or sample = K (K per run)",
            ))
        }
        (Some(n), None) if *n.get_ref() == 0 => {
            return Err(ctx.err(&n.span(), "drill.every-days", "must be at least 1"))
        }
        (None, Some(k)) if *k.get_ref() == 0 => {
            return Err(ctx.err(&k.span(), "drill.sample", "must be at least 1"))
        }
        (Some(n), None) => DrillSelection::EveryDays(*n.get_ref()),
        (None, Some(k)) => DrillSelection::Sample(*k.get_ref()),
    };
    let from_copy = match &raw.from_copy {
        None => None,
        Some(r) => {
            let region = ctx.region(r, "drill.from-copy")?;
            if !copy_regions.contains(&region) {
                return Err(ctx.err(
                    &r.span(),
                    "drill.from-copy",
                    format!(
                        "`{region}` is not a [[copy]] region of the plan ({})",
                        if copy_regions.is_empty() {
                            "it has none".to_string()
                        } else {
                            copy_regions.join(", ")
                        }
                    ),
                ));
            }
            Some(region)
        }
    };
    let timeout_minutes = match &raw.timeout_minutes {
        None => DEFAULT_DRILL_TIMEOUT_MINUTES,
        Some(t) if *t.get_ref() == 0 => {
            return Err(ctx.err(&t.span(), "drill.timeout-minutes", "must be at least 1"))
        }
        Some(t) => *t.get_ref(),
    };
    let check = match &raw.check {
        None => None,
        Some(c) if c.get_ref().trim().is_empty() => {
            return Err(ctx.err(
                &c.span(),
                "drill.check",
                "empty: a shell command, e.g. \"systemctl is-system-running\"",
            ))
        }
        Some(c) if c.get_ref().chars().count() > 4096 => {
            return Err(ctx.err(&c.span(), "drill.check", "longer than 4096 characters"))
        }
        Some(c) => Some(c.get_ref().clone()),
    };
    let mut targets = Vec::new();
    let mut seen = BTreeSet::new();
    for t in &raw.target {
        targets.push(parse_target(ctx, t, &mut seen, tenants)?);
    }
    if targets.is_empty() {
        return Err(ctx.err(
            &d.span(),
            "drill.target",
            "missing: a [[drill.target]] per region drills restore in (region, subnet and security-groups without ingress for instances, db-subnet-group for databases)",
        ));
    }
    Ok(DrillRule {
        schedule,
        selection,
        from_copy,
        timeout_minutes,
        connect: raw.connect.as_ref().is_some_and(|c| *c.get_ref()),
        check,
        targets,
    })
}

fn parse_target(
    ctx: &Ctx<'_>,
    t: &Spanned<RawDrillTarget>,
    seen: &mut BTreeSet<(Option<String>, String)>,
    tenants: &[String],
) -> Result<DrillTarget, ConfigError> {
    let raw = t.get_ref();
    let region = ctx.region(&raw.region, "drill.target.region")?;
    let tenant = match &raw.tenant {
        None => None,
        Some(n) => {
            ctx.check(
                &n.span(),
                "drill.target.tenant",
                control_problem(n.get_ref()),
            )?;
            if !tenants.contains(n.get_ref()) {
                return Err(ctx.err(
                    &n.span(),
                    "drill.target.tenant",
                    format!(
                        "`{}` is not a tenant of the plan's groups ({})",
                        n.get_ref(),
                        tenants.join(", ")
                    ),
                ));
            }
            Some(n.get_ref().clone())
        }
    };
    if !seen.insert((tenant.clone(), region.clone())) {
        return Err(ctx.err(
            &raw.region.span(),
            "drill.target.region",
            format!(
                "a second target for {region}{}",
                tenant
                    .as_ref()
                    .map(|n| format!(" and tenant `{n}`"))
                    .unwrap_or_default()
            ),
        ));
    }
    let subnet = match &raw.subnet {
        None => None,
        Some(s) if !s.get_ref().starts_with("subnet-") => {
            return Err(ctx.err(
                &s.span(),
                "drill.target.subnet",
                format!("`{}` is not a subnet id (subnet-…)", s.get_ref()),
            ))
        }
        Some(s) => Some(s.get_ref().clone()),
    };
    let mut security_groups = Vec::new();
    for g in &raw.security_groups {
        if !g.get_ref().starts_with("sg-") {
            return Err(ctx.err(
                &g.span(),
                "drill.target.security-groups",
                format!("`{}` is not a security group id (sg-…)", g.get_ref()),
            ));
        }
        security_groups.push(g.get_ref().clone());
    }
    match (&subnet, security_groups.is_empty()) {
        (Some(_), true) => {
            return Err(ctx.err(
                &t.span(),
                "drill.target.security-groups",
                "an instance drill's subnet needs security-groups (groups without ingress)",
            ))
        }
        (None, false) => {
            return Err(ctx.err(
                &t.span(),
                "drill.target.subnet",
                "security-groups without a subnet: instance drills need both",
            ))
        }
        _ => {}
    }
    let db_subnet_group = match &raw.db_subnet_group {
        None => None,
        Some(g) => {
            ctx.check(
                &g.span(),
                "drill.target.db-subnet-group",
                control_problem(g.get_ref()),
            )?;
            Some(g.get_ref().clone())
        }
    };
    if subnet.is_none() && db_subnet_group.is_none() {
        return Err(ctx.err(
            &t.span(),
            "drill.target",
            format!("the target for {region} names neither a subnet (instances) nor a db-subnet-group (databases)"),
        ));
    }
    Ok(DrillTarget {
        region,
        tenant,
        subnet,
        security_groups,
        db_subnet_group,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::parse_plan_only;
    use super::*;

    const PLAN: &str = r#"
[plan]
name = "nightly"
id = 2

[schedule]
cron = "30 1 * * *"
timezone = "Europe/Berlin"

[[copy]]
region = "us-west-2"

[[group]]
name = "web"
tenants = ["alpha", "beta"]
regions = ["us-east-1"]
include-tags = ["Backup=nightly"]
"#;

    const DRILL: &str = r#"
[drill]
schedule = "0 4 * * 6"
every-days = 7
from-copy = "us-west-2"

[[drill.target]]
region = "us-west-2"
subnet = "subnet-0a"
security-groups = ["sg-0a"]
db-subnet-group = "drill-nets"

[[drill.target]]
region = "us-west-2"
tenant = "beta"
subnet = "subnet-0b"
security-groups = ["sg-0b", "sg-0c"]
"#;

    fn parse(drill: &str) -> Result<Option<DrillRule>, ConfigError> {
        parse_plan_only(Path::new("p.toml"), &format!("{PLAN}{drill}")).map(|(p, _)| p.drill)
    }

    #[test]
    fn a_drill_table_parses_with_the_plans_time_zone_and_per_tenant_targets() {
        let d = parse(DRILL).unwrap().unwrap();
        assert_eq!(d.selection, DrillSelection::EveryDays(7));
        assert_eq!(d.from_copy.as_deref(), Some("us-west-2"));
        assert_eq!(d.timeout_minutes, DEFAULT_DRILL_TIMEOUT_MINUTES);
        assert!(!d.connect);
        assert_eq!(d.schedule.cron_source, "0 4 * * 6");
        assert_eq!(d.schedule.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(
            d.target("alpha", "us-west-2").unwrap().subnet.as_deref(),
            Some("subnet-0a")
        );
        let b = d.target("beta", "us-west-2").unwrap();
        assert_eq!(b.security_groups, vec!["sg-0b", "sg-0c"]);
        assert!(d.target("alpha", "us-east-1").is_none());
        let d = parse(&DRILL.replace(
            "every-days = 7",
            "sample = 3\ntimezone = \"UTC\"\ntimeout-minutes = 20\nconnect = true\ncheck = \"systemctl is-system-running\"",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(d.selection, DrillSelection::Sample(3));
        assert_eq!(d.schedule.timezone, chrono_tz::UTC);
        assert_eq!(d.timeout_minutes, 20);
        assert!(d.connect);
        assert_eq!(d.check.as_deref(), Some("systemctl is-system-running"));
        assert!(parse("").unwrap().is_none());
    }

    #[test]
    fn bad_drill_tables_name_line_and_key() {
        for (from, to, key, line, words) in [
            (
                "schedule = \"0 4 * * 6\"\n",
                "",
                "drill.schedule",
                19,
                "missing",
            ),
            ("0 4 * * 6", "0 4 * *", "drill.schedule", 20, "5 fields"),
            (
                "every-days = 7",
                "every-days = 7\ntimezone = \"Mars/Base\"",
                "drill.timezone",
                22,
                "IANA",
            ),
            (
                "every-days = 7",
                "every-days = 7\nsample = 2",
                "drill.sample",
                22,
                "not both",
            ),
            ("every-days = 7\n", "", "drill.every-days", 19, "missing"),
            (
                "every-days = 7",
                "every-days = 0",
                "drill.every-days",
                21,
                "at least 1",
            ),
            (
                "from-copy = \"us-west-2\"",
                "from-copy = \"eu-west-1\"",
                "drill.from-copy",
                22,
                "not a [[copy]] region",
            ),
            (
                "every-days = 7",
                "every-days = 7\ncheck = \" \"",
                "drill.check",
                22,
                "empty",
            ),
            (
                "every-days = 7",
                "every-days = 7\ntimeout-minutes = 0",
                "drill.timeout-minutes",
                22,
                "at least 1",
            ),
            (
                "every-days = 7",
                "every-days = 7\nfrequency = 2",
                "frequency",
                22,
                "frequency",
            ),
            (
                "subnet = \"subnet-0a\"",
                "subnet = \"sn-0a\"",
                "drill.target.subnet",
                26,
                "subnet id",
            ),
            (
                "[\"sg-0a\"]",
                "[\"default\"]",
                "drill.target.security-groups",
                27,
                "security group id",
            ),
            (
                "security-groups = [\"sg-0a\"]\n",
                "",
                "drill.target.security-groups",
                24,
                "needs security-groups",
            ),
            (
                "tenant = \"beta\"",
                "tenant = \"gamma\"",
                "drill.target.tenant",
                32,
                "not a tenant",
            ),
            (
                "tenant = \"beta\"\n",
                "",
                "drill.target.region",
                31,
                "a second target",
            ),
            (
                "region = \"us-west-2\"\nsubnet",
                "region = \"us-west-9x\"\nsubnet",
                "drill.target.region",
                25,
                "not an AWS region",
            ),
        ] {
            assert!(DRILL.contains(from), "{from}");
            let e = parse(&DRILL.replacen(from, to, 1)).unwrap_err();
            assert_eq!(e.key, key, "{from} -> {to}: {e}");
            assert_eq!(e.line, line, "{from} -> {to}: {e}");
            assert!(e.to_string().contains(words), "{from} -> {to}: {e}");
        }
        let e = parse("\n[drill]\nschedule = \"0 4 * * 6\"\nsample = 1\n").unwrap_err();
        assert_eq!(e.key, "drill.target", "{e}");
    }
}
