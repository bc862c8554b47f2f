//! `[notify]`: where alerts go (see [`crate::alerts`]). In the accounts file
//! it is every plan's; a plan's own `[notify]` replaces it whole (an empty
//! one in a plan turns the plan's alerts off).

use toml::Spanned;

use super::checks::{control_problem, is_region};
use super::errors::{ConfigError, Ctx};
use super::raw::RawNotify;
use super::Notify;

/// Longest SNS topic name (AWS: 256 characters, `.fifo` included).
const MAX_TOPIC_NAME: usize = 256;

/// Checks a `[notify]` table; `table` is `notify` (the key prefix of errors).
/// `allow_empty`: a plan's empty `[notify]` means "no alerts for this plan".
pub(super) fn parse_notify(
    ctx: &Ctx<'_>,
    raw: &Spanned<RawNotify>,
    allow_empty: bool,
) -> Result<Notify, ConfigError> {
    let n = raw.get_ref();
    let sns_topic_arn = match &n.sns_topic_arn {
        None => None,
        Some(a) => {
            ctx.check(
                &a.span(),
                "notify.sns-topic-arn",
                sns_topic_arn_problem(a.get_ref()),
            )?;
            Some(a.get_ref().clone())
        }
    };
    let webhook_url = match &n.webhook_url {
        None => None,
        Some(u) => {
            ctx.check(
                &u.span(),
                "notify.webhook-url",
                webhook_url_problem(u.get_ref()),
            )?;
            Some(u.get_ref().clone())
        }
    };
    let webhook_ca_file = match &n.webhook_ca_file {
        None => None,
        Some(f) => {
            if webhook_url.is_none() {
                return Err(ctx.err(
                    &f.span(),
                    "notify.webhook-ca-file",
                    "is set without webhook-url",
                ));
            }
            ctx.check(
                &f.span(),
                "notify.webhook-ca-file",
                ca_file_problem(f.get_ref()),
            )?;
            Some(std::path::PathBuf::from(f.get_ref()))
        }
    };
    let command = match &n.command {
        None => None,
        Some(c) => {
            let argv = c.get_ref();
            if argv.is_empty() || argv[0].is_empty() {
                return Err(ctx.err(
                    &c.span(),
                    "notify.command",
                    "give the program and its arguments as a list, e.g. [\"/usr/local/bin/page\", \"--team\", \"backup\"]; the event JSON comes on stdin",
                ));
            }
            for a in argv {
                ctx.check(&c.span(), "notify.command", control_problem(a))?;
            }
            Some(argv.clone())
        }
    };
    let notify = Notify {
        sns_topic_arn,
        webhook_url,
        webhook_ca_file,
        command,
    };
    if notify.is_empty() && !allow_empty {
        return Err(ctx.err(
            &raw.span(),
            "notify",
            "names no destination: set sns-topic-arn, webhook-url and/or command (or remove the table)",
        ));
    }
    Ok(notify)
}

/// An SNS topic ARN: `arn:<partition>:sns:<region>:<12 digits>:<name>`.
pub fn sns_topic_arn_problem(s: &str) -> Option<String> {
    if let Some(p) = control_problem(s) {
        return Some(p);
    }
    let bad = || {
        Some(format!(
            "`{s}` is not an SNS topic ARN (expected arn:aws:sns:REGION:123456789012:TOPIC)"
        ))
    };
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" {
        return bad();
    }
    if !matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov") {
        return bad();
    }
    if !is_region(parts[3]) {
        return Some(format!(
            "`{s}`: `{}` is not an AWS region name (e.g. us-east-1)",
            parts[3]
        ));
    }
    let account = parts[4];
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("`{s}`: account `{account}` is not 12 digits"));
    }
    let name = parts[5];
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    if name.is_empty()
        || name.len() > MAX_TOPIC_NAME
        || stem.is_empty()
        || !stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Some(format!(
            "`{s}`: topic name `{name}`: use 1–{MAX_TOPIC_NAME} letters, digits, '-' and '_' (and .fifo)"
        ));
    }
    None
}

/// Why `path` cannot serve as `webhook-ca-file`: unreadable, or no PEM
/// certificate in it.
pub fn ca_file_problem(path: &str) -> Option<String> {
    match std::fs::read(path) {
        Err(e) => Some(format!("cannot read `{path}`: {e}")),
        Ok(pem) => match crate::alerts::tls::certificates(&pem) {
            Ok(c) if c.is_empty() => Some(format!("`{path}` holds no PEM certificate")),
            Ok(_) => None,
            Err(e) => Some(format!("`{path}`: {e}")),
        },
    }
}

/// A webhook URL: `http://HOST[:PORT][/PATH]` or `https://…` (TLS with the
/// system's roots and `webhook-ca-file`).
pub fn webhook_url_problem(s: &str) -> Option<String> {
    if let Some(p) = control_problem(s) {
        return Some(p);
    }
    match HttpUrl::parse(s) {
        Ok(_) => None,
        Err(m) => Some(format!("`{s}`: {m}")),
    }
}

/// An `http://` or `https://` URL split for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://`: the request goes over TLS.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

impl HttpUrl {
    /// # Errors
    /// Why `s` is not an `http(s)://host[:port][/path]` URL.
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(
                "not an http:// or https:// URL (e.g. https://hooks.example.com/backup)".into(),
            );
        };
        if s.chars().any(char::is_whitespace) {
            return Err("contains a space".into());
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path
        };
        let path = path.split('#').next().unwrap_or("/").to_string();
        if authority.contains('@') {
            return Err("user information in the URL is not supported".into());
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            let Some((h, after)) = h.split_once(']') else {
                return Err("unclosed [ in the host".into());
            };
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err("no host".into());
        }
        if !host.starts_with('[')
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        {
            return Err(format!("`{host}` is not a host name or address"));
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{p}` is not a port number"))?,
        };
        Ok(HttpUrl {
            tls,
            host,
            port,
            path,
        })
    }
}
