//! Configuration errors and where they point: [`ConfigError`] prints
//! `FILE:LINE: KEY: message`, and [`Ctx`] turns a value's byte span (or a
//! toml parse error) into that file, line and key.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// A configuration error: file, line and key, then what is wrong
/// (`FILE:LINE: KEY: message`). Without a line (0) it reads `FILE: KEY: message`,
/// without a key (empty) `FILE:LINE: message` (a file that is not TOML text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{message}", location(file, *line), if key.is_empty() { String::new() } else { format!("{key}: ") })]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl ConfigError {
    /// The same error under another key prefix (a `[[vault]]` checked as a tenant).
    pub(super) fn rekey(mut self, from: &str, to: &str) -> ConfigError {
        if let Some(rest) = self.key.strip_prefix(from) {
            self.key = format!("{to}{rest}");
        }
        self
    }
}

/// `file:line`, or just the file when the line is unknown (0).
fn location(file: &Path, line: usize) -> String {
    if line == 0 {
        file.display().to_string()
    } else {
        format!("{}:{line}", file.display())
    }
}

/// The 1-based line on which `span` starts.
fn line_of(src: &str, span: &Range<usize>) -> usize {
    src[..span.start.min(src.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// The file being checked: its path and text, to turn spans into lines.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a Path,
    pub(super) src: &'a str,
}

impl Ctx<'_> {
    pub(super) fn err(
        &self,
        span: &Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: line_of(self.src, span),
            key: key.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn parse_error(&self, e: toml::de::Error) -> ConfigError {
        let line = e.span().map(|s| line_of(self.src, &s)).unwrap_or(1);
        // toml's message repeats the source excerpt; keep the first line only.
        let message = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string();
        // The line the error points at, and the table it is in.
        let at = e.span().map(|span| {
            let start = self.src[..span.start.min(self.src.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            self.src[start..].lines().next().unwrap_or_default().trim()
        });
        if let Some(field) = missing_field(&message) {
            // The span is the table that lacks the key, or the whole document.
            let whole = e.span().is_none_or(|sp| {
                sp.is_empty() || sp.start == 0 && sp.end >= self.src.trim_end().len()
            });
            let table = at
                .filter(|l| !whole && l.starts_with('['))
                .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
            let (key, line) = match table {
                Some(t) => (format!("{t}.{field}"), line),
                None => (field.to_string(), 0),
            };
            let what = match field {
                "admin" => "missing [admin] table (where the agent's own credentials come from; an empty [admin] uses the default AWS chain)".to_string(),
                "plan" => "missing [plan] table (name and id of the plan)".to_string(),
                _ => "missing; this key is required".to_string(),
            };
            return ConfigError {
                file: self.file.to_path_buf(),
                line,
                key,
                message: what,
            };
        }
        // A wrong type or value names no key; the line it points at does.
        let key = unknown_field(&message).or_else(|| {
            let (k, _) = at?.split_once('=')?;
            let k = k.trim();
            (!k.is_empty() && !k.starts_with('[')).then(|| k.to_string())
        });
        match key {
            Some(key) => ConfigError {
                file: self.file.to_path_buf(),
                line,
                key,
                message,
            },
            None => ConfigError {
                file: self.file.to_path_buf(),
                line,
                key: String::new(),
                message: format!("not valid TOML: {message}"),
            },
        }
    }

    /// `problem` as an error at `span`.
    pub(super) fn check(
        &self,
        span: &Range<usize>,
        key: &str,
        problem: Option<String>,
    ) -> Result<(), ConfigError> {
        match problem {
            Some(p) => Err(self.err(span, key, p)),
            None => Ok(()),
        }
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

pub(super) fn file_error(path: &Path, line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: path.to_path_buf(),
        line,
        key: String::new(),
        message: message.into(),
    }
}
