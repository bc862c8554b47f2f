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
use std::path::{Path, PathBuf};
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
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl Logs {
    /// Opens (creating) the log directory.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(dir: &Path, max_bytes: u64, echo: bool) -> std::io::Result<Logs> {
        std::fs::create_dir_all(dir)?;
        let sink = |f: LogFile| {
            Mutex::new(Sink {
                path: dir.join(f.file_name()),
                file: None,
                size: 0,
            })
        };
        Ok(Logs {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                max_bytes: max_bytes.max(1024),
                sinks: LogFile::ALL.map(sink),
                echo,
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
                    })
                }),
                echo: false,
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Writes one line. `func` is `Component::function()` without the parentheses.
    pub fn write(&self, file: LogFile, job: Option<u64>, func: &str, message: &str) {
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
            return;
        }
        let mut sink = self.inner.sinks[file.index()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Logging must never fail a backup; a write error is dropped.
        let _ = sink.append(line.as_bytes(), self.inner.max_bytes);
    }
}

impl Sink {
    fn append(&mut self, bytes: &[u8], max: u64) -> std::io::Result<()> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
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
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
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
}
