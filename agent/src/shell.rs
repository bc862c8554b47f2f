//! `rolesnap completions` and `rolesnap man`: shell completion scripts and
//! man pages, generated from the clap definition in `cli.rs` (so they never
//! drift from the flags the binary accepts).

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit;

pub fn completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "rolesnap", &mut script);
    write_stdout(&script)
}

/// Writes on stdout; a reader that closed early (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<u8> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(exit::OK),
    }
}

pub fn man(args: ManArgs) -> anyhow::Result<u8> {
    let cmd = Cli::command();
    match args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            return write_stdout(&page);
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            // rolesnap.1, then rolesnap-COMMAND.1 (and rolesnap-restore-instance.1 …)
            // for every subcommand, as clap_mangen names them.
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
            let mut written: Vec<String> = std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("rolesnap") && n.ends_with(".1"))
                .collect();
            written.sort();
            eprintln!("wrote {} man pages into {}", written.len(), dir.display());
        }
    }
    Ok(exit::OK)
}
