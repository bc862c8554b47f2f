//! `rolesnap`: the command-line surface. Thin: parses arguments, loads the
//! configuration, calls the engine in `rolesnap-core`, prints the result.

mod accounts;
mod agent;
mod backup;
mod cli;
mod discover;
mod jobs;
mod list;
mod onboard;
mod output;
mod policy;
mod report;
mod restore;
mod shell;
mod validate;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// Tunes glibc's allocator for a long job whose state comes and goes by
/// tenant × region (BENCHMARKS.md, "Issue 19"):
///
/// * the mmap threshold is fixed at its default, 128 KiB. glibc raises it to
///   the size of every large block freed (up to 32 MiB), after which a
///   backup's large transient buffers (answers of hundreds of KB) are carved
///   from the heap, and the freed space stays resident between them: 10 000
///   instances peaked 8 MiB higher. A fixed threshold keeps them in their
///   own mappings, given back when freed. (mimalloc, measured instead,
///   peaked at 92 MiB.)
/// * one arena: the runtime's threads (one per CPU) free each other's
///   blocks, and space freed in one thread's arena is not reused by
///   another's. They share its lock; a job spends little CPU (16.8 s for
///   10 000 instances), and it went down, not up, with this tuning.
/// * every [`TRIM_EVERY`], the free pages inside the heap are given back
///   (`malloc_trim`): a region done frees its state in the middle of the
///   heap, where glibc's own trimming (the top of the heap only) never
///   reaches.
///
/// Other C libraries: nothing to do.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt only sets parameters of glibc's allocator; it is
    // called before any other thread exists, and both values are valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    // A thread of its own, outside the runtime: it allocates nothing while
    // it runs, and a command that ends first simply ends the process.
    let _ = std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(|| loop {
            std::thread::sleep(TRIM_EVERY);
            // SAFETY: malloc_trim is thread-safe (it takes the arena's
            // lock) and only gives free pages back to the kernel.
            unsafe {
                libc::malloc_trim(0);
            }
        });
}

/// How often the allocator's free pages are given back; each pass walks the
/// free lists once (the job's CPU time did not grow measurably: BENCHMARKS.md,
/// "Issue 19, session 12").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// Exit codes (documented in the README).
pub mod exit {
    /// Everything asked for was done.
    pub const OK: u8 = 0;
    /// Done, but with one or more errors (some tenant, region or resource failed).
    pub const PARTIAL: u8 = 1;
    /// Usage or configuration error; nothing was sent to AWS.
    pub const USAGE: u8 = 2;
    /// Nothing could be done (every tenant failed, or the job failed).
    pub const FAILED: u8 = 3;
    /// Refused: another run of the same plan holds it on this state
    /// directory (one run of a plan at a time); nothing was done.
    pub const BUSY: u8 = 4;
    /// A restore (or drill) refused before anything was made: the request
    /// conflicts with what exists (a device in use, a target DB that
    /// exists) or cannot be carried out as given. The job is recorded Failed.
    pub const REFUSED: u8 = 5;
}

fn main() -> ExitCode {
    tune_allocator();
    // `rolesnap … | head` closes stdout early; stop quietly like other Unix
    // tools instead of panicking on the broken pipe.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => {
            // A log line that could not be written is an audit record lost:
            // never exit 0 over it (each file's first failure was printed).
            let lost = rolesnap_core::store::logs::failed_writes();
            if lost > 0 {
                eprintln!("error: {lost} log line(s) could not be written");
                return ExitCode::from(code.max(exit::PARTIAL));
            }
            ExitCode::from(code)
        }
        Err(e) => {
            if let Some(ce) = e.downcast_ref::<rolesnap_core::ConfigError>() {
                eprintln!("error: {ce}");
                return ExitCode::from(exit::USAGE);
            }
            if let Some(le) = e.downcast_ref::<output::LogDirError>() {
                eprintln!("error: {le}");
                return ExitCode::from(exit::USAGE);
            }
            eprintln!("error: {e:#}");
            ExitCode::from(exit::FAILED)
        }
    }
}

/// `RUST_LOG` (e.g. `aws_smithy_runtime=debug`, `rolesnap=info`) turns on
/// `tracing` events on stderr: the AWS SDK's own, and every GxTail log line
/// (target `rolesnap::<file>`, e.g. `rolesnap::vsbkp`). Unset or empty, no
/// subscriber is installed and stderr is as without it.
fn init_tracing() {
    use std::io::IsTerminal;
    let Some(spec) = std::env::var_os("RUST_LOG").filter(|v| !v.is_empty()) else {
        return;
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(spec.to_string_lossy()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("warning: RUST_LOG is ignored: {e}");
            return;
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let global = cli.global;
    // The state directory holds the ledger and job locks: created private
    // (0700, 0750 with --group-access) by the commands that open the ledger.
    let records_jobs = matches!(
        cli.command,
        Command::Backup(_)
            | Command::Copy(_)
            | Command::VaultCopy(_)
            | Command::Prune(_)
            | Command::Restore(_)
            | Command::Drill(_)
            | Command::Agent(_)
            | Command::Jobs(_)
            | Command::List(_)
    );
    if records_jobs {
        if let Err(e) =
            rolesnap_core::store::logs::create_private_dir(&global.state_dir, global.group_access)
        {
            eprintln!(
                "error: cannot create state directory {}: {e}",
                global.state_dir.display()
            );
            return Ok(exit::USAGE);
        }
    }
    match cli.command {
        Command::Discover(args) => discover::run(&global, args).await,
        Command::Validate(args) => validate::run(&global, args).await,
        Command::Policy(args) => policy::run(&global, args),
        Command::Backup(args) => backup::run(&global, args).await,
        Command::Copy(args) => backup::copy(&global, args).await,
        Command::VaultCopy(args) => backup::vault_copy(&global, args).await,
        Command::Prune(args) => backup::prune(&global, args).await,
        Command::Jobs(args) => jobs::run(&global, args),
        Command::List(args) => list::run(&global, args).await,
        Command::Restore(args) => restore::run(&global, args).await,
        Command::Drill(args) => restore::drill(&global, args).await,
        Command::Report(args) => report::run(&global, args).await,
        Command::Agent(args) => agent::run(&global, args).await,
        Command::Schedule(args) => agent::schedule(&global, args),
        Command::Onboard(args) => onboard::run(args),
        Command::Accounts(args) => accounts::run(&global, args).await,
        Command::Completions(args) => shell::completions(args),
        Command::Man(args) => shell::man(args),
    }
}
