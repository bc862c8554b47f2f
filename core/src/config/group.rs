//! `[[group]]`: which tenants, regions and resources a plan protects, checked
//! into a [`Group`]: names, regions, availability zones, instance and DB
//! identifiers, tag rules.

use std::ops::Range;

use toml::Spanned;

use super::checks::{az_region, control_problem, tag_value_problem, unique};
use super::errors::{ConfigError, Ctx};
use super::raw::RawGroup;
use super::{Group, Regions, TagRule};

/// `KEY=VALUE` tag rules (`include-tags`, `exclude-tags`).
fn parse_tag_rules(
    ctx: &Ctx<'_>,
    rules: &[Spanned<String>],
    key: &str,
) -> Result<Vec<TagRule>, ConfigError> {
    rules
        .iter()
        .map(|r| {
            let s = r.get_ref();
            match s.split_once('=') {
                Some((k, v)) if k.chars().count() > 128 || v.chars().count() > 256 => Err(ctx.err(
                    &r.span(),
                    key,
                    "an AWS tag key holds at most 128 characters and a value 256",
                )),
                Some((k, v)) if !k.is_empty() => Ok(TagRule {
                    key: k.to_string(),
                    value: v.to_string(),
                }),
                _ => Err(ctx.err(
                    &r.span(),
                    key,
                    format!("`{s}`: expected KEY=VALUE (`*` matches anything)"),
                )),
            }
        })
        .collect()
}

pub(super) fn parse_group(ctx: &Ctx<'_>, g: &Spanned<RawGroup>) -> Result<Group, ConfigError> {
    let span = g.span();
    let g = g.get_ref();
    check_name_and_tenants(ctx, &span, g)?;
    let regions = group_regions(ctx, &g.regions)?;
    check_identifiers(ctx, g)?;
    let azs = availability_zones(ctx, &g.availability_zones, &regions)?;
    check_instance_ids(ctx, g)?;
    let strings = |v: &[Spanned<String>]| v.iter().map(|s| s.get_ref().clone()).collect::<Vec<_>>();
    let rds_listed = !g.rds_instances.is_empty();
    let aurora_listed = !g.aurora_clusters.is_empty();
    Ok(Group {
        name: g.name.get_ref().clone(),
        tenants: strings(&g.tenants),
        regions,
        availability_zones: azs,
        instances: strings(&g.instances),
        exclude_instances: strings(&g.exclude_instances),
        include_tags: parse_tag_rules(ctx, &g.include_tags, "group.include-tags")?,
        exclude_tags: parse_tag_rules(ctx, &g.exclude_tags, "group.exclude-tags")?,
        rds_instances: strings(&g.rds_instances),
        aurora_clusters: strings(&g.aurora_clusters),
        exclude_databases: strings(&g.exclude_databases),
        ec2: g.ec2.unwrap_or(true),
        rds: g.rds.unwrap_or(rds_listed),
        aurora: g.aurora.unwrap_or(aurora_listed),
    })
}

/// `group.name` (a tag value) and `group.tenants` (at least one, no repeats);
/// `span` is the whole group, for a group without tenants.
fn check_name_and_tenants(
    ctx: &Ctx<'_>,
    span: &Range<usize>,
    g: &RawGroup,
) -> Result<(), ConfigError> {
    ctx.check(
        &g.name.span(),
        "group.name",
        tag_value_problem(g.name.get_ref()),
    )?;
    if g.name.get_ref().is_empty() {
        return Err(ctx.err(&g.name.span(), "group.name", "empty; name the group"));
    }
    if g.tenants.is_empty() {
        return Err(ctx.err(span, "group.tenants", "a group names at least one tenant"));
    }
    for t in &g.tenants {
        ctx.check(&t.span(), "group.tenants", control_problem(t.get_ref()))?;
    }
    unique(ctx, g.tenants.iter(), "group.tenants")?;
    Ok(())
}

/// `group.regions`: absent (the tenants' defaults), `["all"]`, or region names.
fn group_regions(
    ctx: &Ctx<'_>,
    regions: &Option<Spanned<Vec<Spanned<String>>>>,
) -> Result<Regions, ConfigError> {
    Ok(match regions {
        None => Regions::TenantDefault,
        Some(list) if list.get_ref().is_empty() => {
            return Err(ctx.err(
                &list.span(),
                "group.regions",
                "an empty list; name regions, write [\"all\"], or leave the key out for the tenants' default regions",
            ))
        }
        Some(list) if list.get_ref().len() == 1 && list.get_ref()[0].get_ref() == "all" => {
            Regions::AllEnabled
        }
        Some(list) => {
            let list = list.get_ref();
            for r in list {
                ctx.check(&r.span(), "group.regions", control_problem(r.get_ref()))?;
            }
            unique(ctx, list.iter(), "group.regions")?;
            Regions::List(
                list.iter()
                    .map(|r| ctx.region(r, "group.regions"))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

/// The group's lists of identifiers and patterns.
fn check_identifiers(ctx: &Ctx<'_>, g: &RawGroup) -> Result<(), ConfigError> {
    // Identifiers and patterns are sent to AWS or matched against its answers:
    // no control characters, and AWS's own characters for DB identifiers.
    let all_strings = [
        (&g.availability_zones, "group.availability-zones"),
        (&g.instances, "group.instances"),
        (&g.exclude_instances, "group.exclude-instances"),
        (&g.include_tags, "group.include-tags"),
        (&g.exclude_tags, "group.exclude-tags"),
        (&g.rds_instances, "group.rds-instances"),
        (&g.aurora_clusters, "group.aurora-clusters"),
        (&g.exclude_databases, "group.exclude-databases"),
    ];
    for (list, key) in all_strings {
        for v in list.iter() {
            ctx.check(&v.span(), key, control_problem(v.get_ref()))?;
        }
    }
    let db_lists = [
        (&g.rds_instances, "group.rds-instances"),
        (&g.aurora_clusters, "group.aurora-clusters"),
        (&g.exclude_databases, "group.exclude-databases"),
    ];
    for (list, key) in db_lists {
        for v in list.iter() {
            let id = v.get_ref();
            let ok = !id.is_empty()
                && id.len() <= 63
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*');
            if !ok {
                return Err(ctx.err(
                    &v.span(),
                    key,
                    format!("`{id}` is not a DB identifier or pattern (1–63 letters, digits, '-', and '*' as a wildcard)"),
                ));
            }
        }
    }
    Ok(())
}

/// `group.availability-zones`: zone names, each in one of the group's regions
/// when the group lists them.
fn availability_zones(
    ctx: &Ctx<'_>,
    zones: &[Spanned<String>],
    regions: &Regions,
) -> Result<Vec<String>, ConfigError> {
    let mut azs = Vec::new();
    for az in zones {
        let Some(region) = az_region(az.get_ref()) else {
            return Err(ctx.err(
                &az.span(),
                "group.availability-zones",
                format!(
                    "`{}` is not an availability zone (e.g. us-east-1a)",
                    az.get_ref()
                ),
            ));
        };
        if let Regions::List(list) = regions {
            if !list.iter().any(|r| r == region) {
                return Err(ctx.err(
                    &az.span(),
                    "group.availability-zones",
                    format!("`{}` is not in the group's regions", az.get_ref()),
                ));
            }
        }
        azs.push(az.get_ref().clone());
    }
    Ok(azs)
}

/// `group.instances` and `group.exclude-instances`: EC2 instance ids.
fn check_instance_ids(ctx: &Ctx<'_>, g: &RawGroup) -> Result<(), ConfigError> {
    let listed = g.instances.iter().map(|i| (i, "group.instances"));
    let excluded = g
        .exclude_instances
        .iter()
        .map(|i| (i, "group.exclude-instances"));
    for (i, key) in listed.chain(excluded) {
        let s = i.get_ref();
        if !(s.starts_with("i-") && s.len() > 2 && s[2..].bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(ctx.err(
                &i.span(),
                key,
                format!("`{s}` is not an EC2 instance id (i-…)"),
            ));
        }
    }
    Ok(())
}
