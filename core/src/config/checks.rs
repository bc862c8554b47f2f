//! Value checks shared by both kinds of file: region and availability-zone
//! names, control characters, tag values, ExternalIds, KMS keys, and names
//! that must be unique. The `*_problem` functions say why a value is refused.

use std::collections::BTreeSet;

use toml::Spanned;

use super::errors::{ConfigError, Ctx};

/// AWS region names: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-4`, `cn-north-1`.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() < 3 || parts.len() > 4 {
        return false;
    }
    let (prefix, rest) = parts.split_at(parts.len() - 2);
    let dir = rest[0];
    let num = rest[1];
    const DIRECTIONS: [&str; 11] = [
        "east",
        "west",
        "north",
        "south",
        "central",
        "northeast",
        "southeast",
        "northwest",
        "southwest",
        "isob",
        "iso",
    ];
    prefix.iter().all(|p| {
        p.len() >= 2 && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_lowercase()) || *p == "gov"
    }) && DIRECTIONS.contains(&dir)
        && !num.is_empty()
        && num.len() <= 2
        && num.bytes().all(|b| b.is_ascii_digit())
}

/// An availability-zone name belongs to a region: `us-east-1a` to `us-east-1`.
pub fn az_region(az: &str) -> Option<&str> {
    let region = az.trim_end_matches(|c: char| c.is_ascii_lowercase());
    (region.len() < az.len() && is_region(region)).then_some(region)
}

/// A control character (NUL, newline, escape…) in `s`, said without printing it.
pub fn control_problem(s: &str) -> Option<String> {
    s.chars().find(|c| c.is_control()).map(|c| {
        format!(
            "contains the control character U+{:04X}; remove it",
            c as u32
        )
    })
}

/// Longest plan description (an EC2 snapshot description holds 255).
pub const MAX_DESCRIPTION_CHARS: usize = 255;

/// Longest tag value AWS accepts, in Unicode characters.
pub const MAX_TAG_VALUE_CHARS: usize = 256;

/// Why `s` cannot be an AWS tag value: at most 256 Unicode characters of
/// letters, digits, spaces and `_ . : / = + - @`, not starting with the
/// reserved `aws:` (EC2 and RDS tag restrictions).
pub fn tag_value_problem(s: &str) -> Option<String> {
    if let Some(p) = control_problem(s) {
        return Some(p);
    }
    let n = s.chars().count();
    if n > MAX_TAG_VALUE_CHARS {
        return Some(format!(
            "{n} characters; AWS tag values hold at most {MAX_TAG_VALUE_CHARS}"
        ));
    }
    static NOT_ALLOWED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = NOT_ALLOWED
        .get_or_init(|| regex::Regex::new(r"[^\p{L}\p{Z}\p{N}_.:/=+\-@]").expect("valid regex"));
    if let Some(m) = re.find(s) {
        return Some(format!(
            "`{s}`: `{}` is not allowed in an AWS tag value (letters, digits, spaces and _ . : / = + - @)",
            m.as_str()
        ));
    }
    if s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Some(format!("`{s}`: the prefix `aws:` is reserved by AWS"));
    }
    None
}

/// Why `s` cannot be an STS ExternalId: 2–1224 characters of `[\w+=,.@:/-]`.
pub fn external_id_problem(s: &str) -> Option<String> {
    if let Some(p) = control_problem(s) {
        return Some(p);
    }
    if s.is_empty() {
        return Some(
            "empty; AssumeRole needs 2–1224 characters (or leave the key out when the role's trust policy asks for no ExternalId)"
                .into(),
        );
    }
    let n = s.chars().count();
    if !(2..=1224).contains(&n) {
        return Some(format!("{n} character(s); an ExternalId has 2–1224"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(*c)))
    {
        return Some(format!(
            "`{s}`: `{c}` is not allowed in an ExternalId (letters, digits and _ + = , . @ : / -)"
        ));
    }
    None
}

/// Why `s` cannot name a KMS key for a copy into `region`: a key id (UUID, or
/// `mrk-` and 32 hex digits for a multi-Region key), a key ARN, `alias/NAME`
/// or an alias ARN; an ARN must be in `region`.
pub fn kms_key_problem(s: &str, region: &str) -> Option<String> {
    if let Some(p) = control_problem(s) {
        return Some(p);
    }
    let is_key_id = |k: &str| {
        let uuid = k.len() == 36
            && k.char_indices().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        let mrk = k
            .strip_prefix("mrk-")
            .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        uuid || mrk
    };
    let is_alias = |a: &str| {
        a.strip_prefix("alias/").is_some_and(|n| {
            !n.is_empty()
                && a.len() <= 256
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c))
        })
    };
    let bad = || {
        Some(format!(
            "`{s}` is not a KMS key: expected a key id (1234abcd-12ab-34cd-56ef-1234567890ab), a key ARN, alias/NAME or an alias ARN"
        ))
    };
    if let Some(rest) = s.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5
            || !matches!(parts[0], "aws" | "aws-cn" | "aws-us-gov")
            || parts[1] != "kms"
            || !is_region(parts[2])
            || parts[3].len() != 12
            || !parts[3].bytes().all(|b| b.is_ascii_digit())
        {
            return bad();
        }
        let resource = parts[4];
        let ok = resource.strip_prefix("key/").is_some_and(is_key_id) || is_alias(resource);
        if !ok {
            return bad();
        }
        if parts[2] != region {
            return Some(format!(
                "`{s}` is a key in {}; a copy to {region} needs a key of {region}",
                parts[2]
            ));
        }
        return None;
    }
    if is_key_id(s) || is_alias(s) {
        None
    } else {
        bad()
    }
}

impl Ctx<'_> {
    /// A region name, or an error at its span.
    pub(super) fn region(&self, r: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        if is_region(r.get_ref()) {
            Ok(r.get_ref().clone())
        } else {
            Err(self.err(
                &r.span(),
                key,
                format!(
                    "`{}` is not an AWS region name (e.g. us-east-1)",
                    r.get_ref()
                ),
            ))
        }
    }
}

/// Refuses the second of two equal names.
pub(super) fn unique<'a>(
    ctx: &Ctx<'_>,
    items: impl Iterator<Item = &'a Spanned<String>>,
    key: &str,
) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for item in items {
        if !seen.insert(item.get_ref().as_str()) {
            return Err(ctx.err(
                &item.span(),
                key,
                format!("duplicate name `{}`", item.get_ref()),
            ));
        }
    }
    Ok(())
}
