//! Puts the commit a binary is built from into `rolesnap --version`, so that
//! what ran can be told from the binary itself (a benchmark's record keeps
//! `rolesnap --version`; the checkout it ran in may be at another commit).

use std::path::Path;
use std::process::Command;

/// What goes into the binary, relative to this package.
const SOURCES: [&str; 4] = ["../agent", "../core", "../Cargo.toml", "../Cargo.lock"];

fn git(args: &[&str]) -> Option<String> {
    // No optional locks: `git status` does not rewrite the index, which
    // would make the next build run this script again.
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// HEAD's commit, and whether the binary's sources differ from it.
fn from_git() -> String {
    let Some(rev) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown: git could not tell it".to_string();
    };
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(SOURCES);
    match git(&status) {
        Some(changes) if !changes.is_empty() => format!("{rev}, with changes not committed"),
        _ => rev,
    }
}

fn main() {
    // A build without the repository's history (the container image's
    // context leaves .git out) is told its commit by the builder.
    println!("cargo:rerun-if-env-changed=ROLESNAP_COMMIT");
    let commit = std::env::var("ROLESNAP_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(from_git);
    println!("cargo:rustc-env=ROLESNAP_COMMIT={commit}");
    // Again when HEAD moves (a commit, an amend, a checkout, a reset: each
    // adds a line to HEAD's log; a branch's ref may be a file of refs/heads,
    // written anew, or a line of packed-refs) or a source changes. Only paths
    // that exist: cargo takes a missing one as changed, every build.
    let mut watch: Vec<String> = ["HEAD", "logs/HEAD", "refs/heads", "packed-refs"]
        .iter()
        .filter_map(|p| git(&["rev-parse", "--git-path", p]))
        .collect();
    watch.extend(SOURCES.iter().map(|s| s.to_string()));
    for p in watch.iter().filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={p}");
    }
}
