//! Commvault-style (GxTail-compatible) log files.
//!
//! One line per event: `PID TID MM/DD HH:MM:SS JOBID Component::function() - message`,
//! PID decimal, TID hex, JOBID decimal or `###`. Each kind of event has its own
//! file (`cvd.log`, `vsdiscovery.log`, `vsbkp.log`, `vsrst.log`) so that the
//! operator who knows Commvault's access-node logs finds things where they expect.
//! Files rotate by size: `vsbkp.log` becomes `vsbkp.log.1`, and so on.
//!
//! Nothing here knows about credentials; callers never pass secrets. The
//! end-to-end tests grep every log for the keys they used.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The four log files of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFile {
    /// Agent life cycle, scheduling, credentials.
    Cvd,
    /// Regions, AZs, instances, volumes, databases found and selected.
    Discovery,
    /// Backup, copy and prune jobs.
    Backup,
    /// Restore jobs.
    Restore,
}

impl LogFile {
    pub const ALL: [LogFile; 4] = [
        LogFile::Cvd,
        LogFile::Discovery,
        LogFile::Backup,
        LogFile::Restore,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            LogFile::Cvd => "cvd.log",
            LogFile::Discovery => "vsdiscovery.log",
            LogFile::Backup => "vsbkp.log",
            LogFile::Restore => "vsrst.log",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Default size at which a log file rotates.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated generations kept (`.1` … `.N`).
pub const ROTATED_KEEP: usize = 5;

struct Sink {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    /// Mode of a log file rolesnap creates (0600, 0640 with group access).
    mode: u32,
    /// A failed write was already reported on stderr.
    reported: bool,
}

/// Log lines lost to failed writes in this process, over every [`Logs`].
static FAILED_WRITES: AtomicU64 = AtomicU64::new(0);

/// Log lines that could not be written since the process started (a full
/// disk, a file made unwritable): the command's exit code is then not 0.
pub fn failed_writes() -> u64 {
    FAILED_WRITES.load(Ordering::Relaxed)
}

/// Mode of the directories rolesnap creates for itself (state, logs):
/// 0700, or 0750 when a group (e.g. a monitoring user's) may read them.
pub fn dir_mode(group_access: bool) -> u32 {
    if group_access {
        0o750
    } else {
        0o700
    }
}

/// Creates `dir` (and missing parents) with [`dir_mode`], whatever the
/// umask. A directory that exists keeps its mode.
///
/// # Errors
/// When `dir` cannot be created or is not a directory.
pub fn create_private_dir(dir: &Path, group_access: bool) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mode = dir_mode(group_access);
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The log directory or one of its files cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct LogsError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The log directory. Cheap to clone; all clones write to the same files.
#[derive(Clone)]
pub struct Logs {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    sinks: [Mutex<Sink>; 4],
    /// Also echo lines to stderr (for `-v`).
    echo: bool,
    /// Lines lost to failed writes.
    failures: AtomicU64,
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl Logs {
    /// Opens (creating, mode 0700) the log directory and its four files.
    ///
    /// # Errors
    /// When the directory cannot be created or a log file cannot be opened
    /// for appending (a read-only directory or file): the path and the OS error.
    pub fn open(dir: &Path, max_bytes: u64, echo: bool) -> Result<Logs, LogsError> {
        Logs::open_with(dir, max_bytes, echo, false)
    }

    /// [`Logs::open`]; with `group_access` the directory is created 0750 and
    /// the files 0640, so that the directory's group can read them.
    ///
    /// # Errors
    /// As [`Logs::open`].
    pub fn open_with(
        dir: &Path,
        max_bytes: u64,
        echo: bool,
        group_access: bool,
    ) -> Result<Logs, LogsError> {
        create_private_dir(dir, group_access).map_err(|source| LogsError {
            path: dir.to_path_buf(),
            source,
        })?;
        let mode = if group_access { 0o640 } else { 0o600 };
        let mut sinks = Vec::with_capacity(4);
        for f in LogFile::ALL {
            let mut sink = Sink {
                path: dir.join(f.file_name()),
                file: None,
                size: 0,
                mode,
                reported: false,
            };
            // Opened now, so that an unwritable directory or file stops the
            // command before it does anything.
            sink.open().map_err(|source| LogsError {
                path: sink.path.clone(),
                source,
            })?;
            sinks.push(Mutex::new(sink));
        }
        let sinks: [Mutex<Sink>; 4] = sinks.try_into().unwrap_or_else(|_| unreachable!());
        Ok(Logs {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                max_bytes: max_bytes.max(1024),
                sinks,
                echo,
                failures: AtomicU64::new(0),
            }),
        })
    }

    /// A sink that writes nowhere (for tests of pure code paths).
    pub fn disabled() -> Logs {
        Logs {
            inner: Arc::new(Inner {
                dir: PathBuf::new(),
                max_bytes: u64::MAX,
                sinks: LogFile::ALL.map(|_| {
                    Mutex::new(Sink {
                        path: PathBuf::new(),
                        file: None,
                        size: 0,
                        mode: 0o600,
                        reported: false,
                    })
                }),
                echo: false,
                failures: AtomicU64::new(0),
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Writes one line. `func` is `Component::function()` without the parentheses.
    ///
    /// A failed write does not stop the caller (a backup goes on), but it is
    /// not silent: the first failure of each file is printed on stderr with
    /// the path and the OS error, and every lost line is counted
    /// ([`Logs::failures`], [`failed_writes`]).
    pub fn write(&self, file: LogFile, job: Option<u64>, func: &str, message: &str) {
        let _ = self.try_write(file, job, func, message);
    }

    /// [`Logs::write`], returning the error (for the first line a command
    /// writes: a log that cannot be written stops it before any AWS call).
    ///
    /// # Errors
    /// The file and the OS error.
    pub fn try_write(
        &self,
        file: LogFile,
        job: Option<u64>,
        func: &str,
        message: &str,
    ) -> Result<(), LogsError> {
        trace(file, job, func, message);
        let line = format_line(
            std::process::id(),
            thread_tag(),
            chrono::Local::now().naive_local(),
            job,
            func,
            message,
        );
        if self.inner.echo {
            eprint!("{line}");
        }
        if self.inner.dir.as_os_str().is_empty() {
            return Ok(());
        }
        let mut sink = self.inner.sinks[file.index()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match sink.append(line.as_bytes(), self.inner.max_bytes) {
            Ok(()) => Ok(()),
            Err(source) => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                FAILED_WRITES.fetch_add(1, Ordering::Relaxed);
                if !sink.reported {
                    sink.reported = true;
                    eprintln!(
                        "error: cannot write log file {}: {source}; its lines are lost (counted; the exit code will not be 0)",
                        sink.path.display()
                    );
                }
                Err(LogsError {
                    path: sink.path.clone(),
                    source,
                })
            }
        }
    }

    /// Log lines lost to failed writes through this log directory.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }
}

/// The line as a `tracing` event too, target `rolesnap::<file>` (e.g.
/// `rolesnap::vsbkp`), for `RUST_LOG`. With no subscriber (the agent installs
/// one only when RUST_LOG is set) this is one atomic load; nothing is formatted.
fn trace(file: LogFile, job: Option<u64>, func: &str, message: &str) {
    macro_rules! event {
        ($target:literal) => {
            tracing::info!(target: $target, job, func, "{message}")
        };
    }
    match file {
        LogFile::Cvd => event!("rolesnap::cvd"),
        LogFile::Discovery => event!("rolesnap::vsdiscovery"),
        LogFile::Backup => event!("rolesnap::vsbkp"),
        LogFile::Restore => event!("rolesnap::vsrst"),
    }
}

impl Sink {
    fn open(&mut self) -> std::io::Result<()> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(self.mode)
            .open(&self.path)?;
        self.size = f.metadata()?.len();
        self.file = Some(f);
        Ok(())
    }

    fn append(&mut self, bytes: &[u8], max: u64) -> std::io::Result<()> {
        if self.file.is_none() {
            self.open()?;
        }
        if self.size > 0 && self.size + bytes.len() as u64 > max {
            self.rotate()?;
        }
        let f = self.file.as_mut().expect("opened above");
        f.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let name = |i: usize| PathBuf::from(format!("{}.{i}", self.path.display()));
        let _ = std::fs::remove_file(name(ROTATED_KEEP));
        for i in (1..ROTATED_KEEP).rev() {
            let _ = std::fs::rename(name(i), name(i + 1));
        }
        std::fs::rename(&self.path, name(1))?;
        self.open()
    }
}

/// A small per-thread number, printed in hex like Commvault's TID.
fn thread_tag() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0xf48);
    thread_local! {
        static TAG: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TAG.with(|t| *t)
}

/// Where one job writes its lines: the file, the job number (`None` for a dry
/// run: `###`) and the `Component::function` of its lines. Copied into every
/// AWS adapter the job uses, so that a retry is logged where the job logs.
#[derive(Clone, Copy)]
pub struct JobLog<'a> {
    pub logs: &'a Logs,
    pub file: LogFile,
    pub job: Option<u64>,
    pub component: &'static str,
}

impl JobLog<'_> {
    pub fn write(&self, message: &str) {
        self.logs
            .write(self.file, self.job, self.component, message);
    }
}

/// Formats one GxTail line (with its newline). Newlines inside the message are
/// flattened so that one event stays one line.
pub fn format_line(
    pid: u32,
    tid: u64,
    at: chrono::NaiveDateTime,
    job: Option<u64>,
    func: &str,
    message: &str,
) -> String {
    let job = job.map_or_else(|| "###".to_string(), |j| j.to_string());
    let message = message.replace(['\n', '\r'], " ");
    format!(
        "{pid} {tid:x} {} {job} {func}() - {message}\n",
        at.format("%m/%d %H:%M:%S")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn line_matches_the_guide() {
        let at = NaiveDate::from_ymd_opt(2020, 5, 8)
            .unwrap()
            .and_hms_opt(20, 7, 24)
            .unwrap();
        let line = format_line(
            6924,
            0xf48,
            at,
            Some(16960),
            "CAmazonInfo::Connect",
            "Connecting to Url=[default], username [arn:aws:iam::222222222222:role/vsa-role]",
        );
        assert_eq!(
            line,
            "6924 f48 05/08 20:07:24 16960 CAmazonInfo::Connect() - Connecting to Url=[default], username [arn:aws:iam::222222222222:role/vsa-role]\n"
        );
        let none = format_line(1, 1, at, None, "X::y", "a\nb");
        assert_eq!(none, "1 1 05/08 20:07:24 ### X::y() - a b\n");
    }

    #[test]
    fn files_rotate_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path(), 2048, false).unwrap();
        for i in 0..200 {
            logs.write(
                LogFile::Backup,
                Some(7),
                "CSnap::Run",
                &format!("line {i:04}"),
            );
        }
        let current = std::fs::read_to_string(dir.path().join("vsbkp.log")).unwrap();
        let first = std::fs::read_to_string(dir.path().join("vsbkp.log.1")).unwrap();
        assert!(current.len() <= 2048 && first.len() <= 2048);
        assert!(current.contains("line 0199"));
        assert!(!current.contains("line 0000"));
        assert!(!dir
            .path()
            .join(format!("vsbkp.log.{}", ROTATED_KEEP + 1))
            .exists());
        for l in current.lines() {
            let fields: Vec<&str> = l.splitn(7, ' ').collect();
            assert_eq!(fields[4], "7");
            assert!(fields[5].ends_with("()"), "{l}");
        }
    }

    #[test]
    fn a_log_that_cannot_be_opened_is_an_error_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, "x").unwrap();
        let e = Logs::open(&not_a_dir.join("logs"), 4096, false).unwrap_err();
        assert!(e.to_string().contains("file/logs"), "{e}");
        // A log file that is a directory cannot be opened for appending.
        std::fs::create_dir(dir.path().join("vsbkp.log")).unwrap();
        let e = Logs::open(dir.path(), 4096, false).unwrap_err();
        assert_eq!(e.path, dir.path().join("vsbkp.log"), "{e}");
    }

    #[test]
    fn failed_writes_are_counted_not_dropped() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.path().join("vsbkp.log")).unwrap();
        let logs = Logs::open(dir.path(), 4096, false).unwrap();
        let before = failed_writes();
        logs.write(LogFile::Cvd, None, "X::y", "fine");
        assert_eq!(logs.failures(), 0);
        logs.write(LogFile::Backup, Some(1), "X::y", "lost");
        let e = logs
            .try_write(LogFile::Backup, Some(1), "X::y", "lost too")
            .unwrap_err();
        assert_eq!(e.source.raw_os_error(), Some(28), "ENOSPC: {e}");
        assert_eq!(logs.failures(), 2);
        assert!(failed_writes() >= before + 2);
    }

    #[test]
    fn created_directories_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        for (group, d, f) in [(false, 0o700, 0o600), (true, 0o750, 0o640)] {
            let logs_dir = dir.path().join(format!("a-{group}/b"));
            Logs::open_with(&logs_dir, 4096, false, group).unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&logs_dir), d);
            assert_eq!(mode(&logs_dir.join("cvd.log")), f);
        }
    }
}
