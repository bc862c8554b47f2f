//! Golden files: the expected text of an output, kept under
//! tests/e2e/golden/ (see its README.md). What changes from run to run is
//! normalised first: the version, AWS ids (whole or cut with `…`), times,
//! dates, ISO weeks, ages and clocks, and the widths of table columns (runs of
//! spaces and of `─`); the body rows of each table are sorted, since rows tied
//! on their sort key come in the emulator's order.
//!
//! `ROLESNAP_UPDATE_GOLDEN=1 cargo test --workspace --test e2e` writes the
//! files from the outputs instead of comparing.

use std::path::PathBuf;

use regex::Regex;

use crate::harness::repo_root;

pub fn dir() -> PathBuf {
    repo_root().join("tests/e2e/golden")
}

/// `text` with what varies between runs replaced by placeholders.
pub fn normalise(text: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut s = text.replace(&format!("rolesnap {version}"), "rolesnap <version>");
    s = s.replace(&format!("rolesnap-{version}"), "rolesnap-<version>");
    let rules: [(&str, &str); 13] = [
        // Ids cut in the middle or at the end by the table fitting.
        (
            r"\b(snap|ami|vol|i|sg|subnet|eni)-[0-9a-f]*…[0-9a-f,+\-snap]*",
            "<$1…>",
        ),
        (r"\b(snap|ami|vol|i|sg|subnet|eni)-[0-9a-f]{8,17}\b", "<$1>"),
        // rolesnap's RDS snapshot names: sp-PLAN-JOB-SEQ-START-AGENT.
        (r"\bsp-\d+-\d+-\d+-\d+-[0-9a-f]{16}\b", "<sp>"),
        // RFC 3339 and table times.
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}| UTC)?",
            "<time>",
        ),
        (r"\b\d{4}-\d{2}-\d{2}\b", "<date>"),
        (r"\b\d{4}-W\d{2}\b", "<week>"),
        // A year left alone (a rule cut after it: `weekly keep 2026-…`).
        (r"\b20\d{2}\b", "<year>"),
        // Durations: `12d 3h`, `5h 20m`, `40m`, `7d`, and the compact
        // `10d1s` of a rule's reason (seconds show when a run is slow).
        (r"\b(?:\d+[dhms]){2,}\b", "<age>"),
        (r"\b\d+d \d+h\b", "<age>"),
        (r"\b\d+h \d+m\b", "<age>"),
        (r"\b\d+[dms]\b", "<age>"),
        // Progress clocks.
        (r"\b\d{2}:\d{2}:\d{2}\b", "<clock>"),
        // The 8-hex agent id (a new one per state directory).
        (r"\b[0-9a-f]{8}\b", "<agent>"),
    ];
    for (pat, rep) in rules {
        s = Regex::new(pat).unwrap().replace_all(&s, rep).into_owned();
    }
    let spaces = Regex::new(r" {2,}").unwrap();
    let rule = Regex::new(r"─+").unwrap();
    let double = Regex::new(r"═+").unwrap();
    let mut out: Vec<String> = Vec::new();
    let mut body: Vec<String> = Vec::new();
    // Inside a table: after its header row, until its bottom border.
    let mut rows_seen = 0;
    for line in s.lines() {
        let l = spaces.replace_all(line, " ").into_owned();
        let l = rule.replace_all(&l, "─").into_owned();
        let l = double.replace_all(&l, "═").trim_end().to_string();
        if l.starts_with('┌') {
            rows_seen = 0;
            out.push(l);
        } else if l.starts_with('│') {
            rows_seen += 1;
            if rows_seen == 1 {
                out.push(l);
            } else {
                body.push(l);
            }
        } else {
            if !body.is_empty() {
                body.sort();
                out.append(&mut body);
            }
            out.push(l);
        }
    }
    body.sort();
    out.append(&mut body);
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// `text` with only the version replaced (completion scripts, man pages),
/// and the commit the binary was built from (the man page's VERSION).
pub fn version_only(text: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    // Roff writes a hyphen as `\-`.
    let commit = format!(" (commit {})", env!("ROLESNAP_COMMIT"));
    text.replace(&commit, " (commit <commit>)")
        .replace(&commit.replace('-', "\\-"), " (commit <commit>)")
        .replace(&format!("rolesnap {version}"), "rolesnap <version>")
        .replace(&format!("rolesnap-{version}"), "rolesnap-<version>")
        .replace(&format!("rolesnap\\-{version}"), "rolesnap\\-<version>")
        .replace(&format!("\"{version}\""), "\"<version>\"")
        .replace(&format!("v{version}"), "v<version>")
}

/// Compares `actual` (normalised) with golden file `name`, or writes it when
/// `ROLESNAP_UPDATE_GOLDEN` is set. The message shows the first differing line.
pub fn check(name: &str, actual: &str) {
    compare(name, normalise(actual));
}

/// [`check`] of a text whose only varying part is the version.
pub fn check_verbatim(name: &str, actual: &str) {
    compare(name, version_only(actual));
}

fn compare(name: &str, actual: String) {
    let path = dir().join(name);
    if std::env::var_os("ROLESNAP_UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with ROLESNAP_UPDATE_GOLDEN=1 to write it",
            path.display()
        )
    });
    if want != actual {
        let (n, w, a) = want
            .lines()
            .zip(actual.lines())
            .enumerate()
            .find(|(_, (w, a))| w != a)
            .map(|(i, (w, a))| (i + 1, w.to_string(), a.to_string()))
            .unwrap_or_else(|| {
                (
                    want.lines().count().min(actual.lines().count()) + 1,
                    "(end)".into(),
                    "(end)".into(),
                )
            });
        panic!(
            "{} differs from the output at line {n}:\n  golden: {w}\n  output: {a}\n\
             normalised output:\n{actual}\n(ROLESNAP_UPDATE_GOLDEN=1 rewrites the golden file \
             after a deliberate change; review the diff)",
            path.display()
        );
    }
}

#[test]
fn the_normaliser_hides_ids_times_ages_and_widths() {
    let a = "┌────────┐\n│ id            age     expires          │\n│ snap-0123456789abcdef0  12d 3h  2026-03-30 00:00 │\n│ snap-01…cdef0  40m  expired │\n└────────┘\n";
    let n = normalise(a);
    assert_eq!(
        n,
        "┌─┐\n│ id age expires │\n│ <snap> <age> <time> │\n│ <snap…> <age> expired │\n└─┘\n"
    );
    assert_eq!(
        normalise("expired: age 10d1s >= 7d\n"),
        "expired: age <age> >= <age>\n"
    );
    assert_eq!(
        normalise(&format!("rolesnap {}\n", env!("CARGO_PKG_VERSION"))),
        "rolesnap <version>\n"
    );
}
