//! The job ledger: an SQLite file in the state directory.
//!
//! Job numbers come from an `AUTOINCREMENT` key, so they only grow and are
//! never handed out twice, even to two processes sharing the directory
//! (SQLite serialises the inserts). A running job holds an exclusive lock on
//! `jobs/<n>.lock`; a job still marked Running whose lock can be taken belongs
//! to a process that died, and is marked Killed the next time any rolesnap
//! opens the ledger. What the dead job created is still found by its tags.
//!
//! Job numbers are only unique within one ledger: every new ledger counts
//! from [`FIRST_JOB`]. So each ledger also has an **agent id**, 16 random hex
//! digits made once when the ledger is made and kept in it. Everything a job
//! creates carries it (`_GX_AGENT_`), and a recovery point is known by
//! agent id + job number: the points of two ledgers never merge, and a job
//! adopts only what its own ledger's jobs made (docs/DESIGN.md, "Identity").
//! A new ledger appears whole (made aside, then linked into place), so a
//! `ledger.db` of 0 bytes is a truncated ledger, and is refused rather than
//! silently started afresh with a new agent id.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {path}: {source}")]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("ledger {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A ledger file that exists but cannot be a ledger (0 bytes, not a
    /// regular file, not SQLite).
    #[error("ledger {path}: {why}")]
    Broken { path: PathBuf, why: String },
}

mod records;
pub use records::{Event, Item, ItemKind, ItemStatus, Job, JobStatus, JobType};

pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    dir: PathBuf,
    agent: String,
    /// Jobs this open found dead and recorded Killed.
    killed_on_open: Vec<u64>,
    read_only: bool,
}

/// A lock held for as long as a job runs.
#[derive(Debug)]
pub struct JobLock {
    _file: File,
    pub job: u64,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    plan TEXT NOT NULL,
    tenants TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER,
    size_gib INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE TABLE IF NOT EXISTS items (
    job INTEGER NOT NULL REFERENCES jobs(id),
    tenant TEXT NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    kind TEXT NOT NULL,
    source_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    size_gib INTEGER NOT NULL,
    error TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_job ON items(job);
CREATE TABLE IF NOT EXISTS events (
    job INTEGER NOT NULL REFERENCES jobs(id),
    at INTEGER NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events(job);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// A new agent id: 64 random bits as 16 lowercase hex digits.
fn new_agent_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Whether `s` is an agent id as [`new_agent_id`] makes them.
pub fn is_agent_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Job numbers start here, like a CommServe that has been running a while;
/// it keeps them visibly distinct from sequence numbers in names.
pub const FIRST_JOB: u64 = 1000;

/// Refuses a `ledger.db` that exists but cannot be a ledger.
fn check_file(path: &Path) -> Result<(), LedgerError> {
    let broken = |why: &str| LedgerError::Broken {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(broken("is not a regular file")),
        // A ledger is made aside and linked into place whole, so 0 bytes is
        // one that was truncated (a full disk, a bad restore): starting
        // afresh here would restart job numbers under a new agent id and
        // lose the history of what was made. Move it aside to start anew.
        Ok(m) if m.len() == 0 => Err(broken(
            "is empty (0 bytes): it was truncated. rolesnap will not start a new ledger in its place; \
             restore it from a backup, or move it aside to start a new ledger (with a new agent id)",
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LedgerError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// "file is not a database" and the like, said plainly.
fn broken_or(path: &Path, e: rusqlite::Error) -> LedgerError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
        {
            LedgerError::Broken {
                path: path.to_path_buf(),
                why: format!("is not a rolesnap ledger (SQLite says: {e}); restore it from a backup, or move it aside to start a new ledger"),
            }
        }
        _ => LedgerError::Sql {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// Makes a new ledger whole beside `path` and links it into place, so that
/// no process ever sees a half-made one; a ledger another process linked
/// first wins. The file is readable by its owner only.
fn create_whole(dir: &Path, path: &Path) -> Result<(), LedgerError> {
    let tmp = dir.join(format!(
        ".ledger.db.new-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let io = |source| LedgerError::Io {
        path: tmp.clone(),
        source,
    };
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(&tmp).map_err(io)?;
        let conn = Connection::open(&tmp).map_err(|source| LedgerError::Sql {
            path: tmp.clone(),
            source,
        })?;
        conn.execute_batch(SCHEMA)
            .and_then(|_| {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('agent_id', ?1)",
                    params![new_agent_id()],
                )
            })
            .map_err(|source| LedgerError::Sql {
                path: tmp.clone(),
                source,
            })?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(LedgerError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Why a plan's lock could not be taken: who holds it.
#[derive(Debug, Clone)]
pub struct PlanBusy {
    pub plan: String,
    /// What the holder wrote into the lock file (pid, command, since).
    pub holder: String,
}

impl std::fmt::Display for PlanBusy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plan {} is already being run by another rolesnap on this state directory ({})",
            self.plan,
            if self.holder.is_empty() {
                "holder unknown"
            } else {
                self.holder.trim()
            }
        )
    }
}

/// Held while a plan's backup, copy or prune runs: one run of a plan at a
/// time per state directory (`plans/<plan>.lock`). The lock is the kernel's
/// (flock), so it goes with the process that held it.
#[derive(Debug)]
pub struct PlanLock {
    _file: File,
}

impl PlanLock {
    /// Takes the plan's lock, or says who holds it.
    ///
    /// # Errors
    /// An I/O error creating the lock file.
    pub fn try_acquire(
        dir: &Path,
        plan: &str,
        what: &str,
    ) -> Result<Result<PlanLock, PlanBusy>, LedgerError> {
        use std::io::{Read, Seek, Write};
        let plans = dir.join("plans");
        let io = |source| LedgerError::Io {
            path: plans.clone(),
            source,
        };
        std::fs::create_dir_all(&plans).map_err(io)?;
        let name: String = plan
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = plans.join(format!("{name}-{:016x}.lock", fnv(plan)));
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Ok(Err(PlanBusy {
                plan: plan.to_string(),
                holder,
            }));
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(
            file,
            "pid {} ({what}) since {}",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        )
        .map_err(io)?;
        Ok(Ok(PlanLock { _file: file }))
    }
}

/// FNV-1a: a stable short name for a plan whose name has characters a
/// file name should not.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

impl Ledger {
    /// Opens (creating) the ledger in `dir` and marks dead jobs Killed
    /// (their numbers: [`Ledger::killed_on_open`]).
    ///
    /// # Errors
    /// When the directory or database cannot be opened, or `ledger.db` exists
    /// but is not a ledger (0 bytes, a directory, not SQLite).
    pub fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        std::fs::create_dir_all(dir.join("jobs")).map_err(|source| LedgerError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("ledger.db");
        check_file(&path)?;
        if !path.exists() {
            create_whole(dir, &path)?;
        }
        // Processes opening a new ledger at the same moment may be told
        // "database is locked" at once, without the busy timeout (switching
        // it to WAL): such an open is tried again.
        let mut tries = 0;
        loop {
            match Ledger::open_once(dir) {
                Err(LedgerError::Sql {
                    source: rusqlite::Error::SqliteFailure(e, _),
                    ..
                }) if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                r => return r,
            }
        }
    }

    /// Opens another agent's ledger (`jobs --from`) without writing to it:
    /// no job is marked Killed (a file lock of another host cannot be seen
    /// from here), and a read-only copy or file system works.
    ///
    /// # Errors
    /// When the file is missing or is not a ledger.
    pub fn open_read_only(dir: &Path) -> Result<Ledger, LedgerError> {
        let path = dir.join("ledger.db");
        if !path.exists() {
            return Err(LedgerError::Broken {
                path,
                why: "no such file (is this a rolesnap state directory?)".into(),
            });
        }
        check_file(&path)?;
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // mode=ro reads a live WAL ledger consistently, but needs to write
        // its -shm file beside it; on a read-only copy, immutable=1 reads it
        // as a plain file.
        let uri = |extra: &str| format!("file:{}?mode=ro{extra}", path.display());
        let try_open = |u: String| -> rusqlite::Result<Connection> {
            let c = Connection::open_with_flags(u, flags)?;
            c.busy_timeout(Duration::from_secs(30))?;
            c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get::<_, i64>(0))?;
            Ok(c)
        };
        let conn = try_open(uri("")).or_else(|_| try_open(uri("&immutable=1")));
        let conn = conn.map_err(|e| broken_or(&path, e))?;
        let agent = conn
            .query_row("SELECT value FROM meta WHERE key = 'agent_id'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .unwrap_or(None)
            .unwrap_or_default();
        Ok(Ledger {
            conn,
            path,
            dir: dir.to_path_buf(),
            agent,
            killed_on_open: vec![],
            read_only: true,
        })
    }

    fn open_once(dir: &Path) -> Result<Ledger, LedgerError> {
        let path = dir.join("ledger.db");
        let sql = |source| LedgerError::Sql {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        // Several rolesnap processes may share the file: wait for each other.
        conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| broken_or(&path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        conn.execute(
            "INSERT INTO sqlite_sequence(name, seq) SELECT 'jobs', ?1 \
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs')",
            params![FIRST_JOB as i64 - 1],
        )
        .map_err(sql)?;
        // A ledger written by a rolesnap without agent ids gets one now; two
        // processes upgrading it at once agree on the first one written.
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('agent_id', ?1)",
            params![new_agent_id()],
        )
        .map_err(sql)?;
        let agent: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'agent_id'", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        if !is_agent_id(&agent) {
            return Err(LedgerError::Broken {
                path,
                why: format!(
                    "its agent id {agent:?} is not 16 hex digits; the ledger was edited by hand"
                ),
            });
        }
        let mut ledger = Ledger {
            conn,
            path,
            dir: dir.to_path_buf(),
            agent,
            killed_on_open: vec![],
            read_only: false,
        };
        ledger.killed_on_open = ledger.mark_dead_jobs_killed()?;
        Ok(ledger)
    }

    /// This ledger's agent id (16 hex digits): the `_GX_AGENT_` tag of
    /// everything its jobs create. Empty for an old ledger read with
    /// [`Ledger::open_read_only`].
    pub fn agent_id(&self) -> &str {
        &self.agent
    }

    /// The jobs opening this ledger found dead and recorded Killed.
    pub fn killed_on_open(&self) -> &[u64] {
        &self.killed_on_open
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        move |source| LedgerError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn lock_path(&self, job: u64) -> PathBuf {
        self.dir.join("jobs").join(format!("{job}.lock"))
    }

    /// Jobs marked Running whose process is gone become Killed. Returns their numbers.
    pub fn mark_dead_jobs_killed(&self) -> Result<Vec<u64>, LedgerError> {
        if self.read_only {
            return Ok(vec![]);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM jobs WHERE status = 'Running'")
            .map_err(self.sql())?;
        let running: Vec<u64> = stmt
            .query_map([], |r| r.get::<_, i64>(0))
            .map_err(self.sql())?
            .filter_map(Result::ok)
            .map(|i| i as u64)
            .collect();
        let mut killed = Vec::new();
        for job in running {
            let alive = match File::options()
                .read(true)
                .write(true)
                .open(self.lock_path(job))
            {
                Ok(f) => {
                    let free = f.try_lock().is_ok();
                    if free {
                        let _ = f.unlock();
                    }
                    !free
                }
                // No lock file: the job never got going; nobody holds it.
                Err(_) => false,
            };
            if !alive {
                self.conn
                    .execute(
                        "UPDATE jobs SET status = 'Killed', end = ?2, \
                         error = COALESCE(error, 'the process running the job ended before the job did') \
                         WHERE id = ?1 AND status = 'Running'",
                        params![job as i64, chrono::Utc::now().timestamp()],
                    )
                    .map_err(self.sql())?;
                // What it had made and was still waiting for is recorded
                // once more, saying so (an item's last outcome is its own).
                self.conn
                    .execute(
                        "INSERT INTO items(job, tenant, account, region, kind, source_id, status, created, size_gib, error, detail) \
                         SELECT job, tenant, account, region, kind, source_id, status, created, size_gib, \
                         'the job was killed while it waited for this recovery point to complete; what it made is found by its tags, and the next backup of the plan adopts it', detail \
                         FROM items WHERE job = ?1 AND status = 'Pending' AND error IS NULL AND rowid IN \
                         (SELECT MAX(rowid) FROM items WHERE job = ?1 GROUP BY tenant, region, kind, source_id)",
                        params![job as i64],
                    )
                    .map_err(self.sql())?;
                self.event(job, "Warning", "Job marked Killed: its process is gone")?;
                let _ = std::fs::remove_file(self.lock_path(job));
                killed.push(job);
            }
        }
        Ok(killed)
    }

    /// Starts a job: a new number, status Running, and the lock that says so.
    pub fn start_job(
        &self,
        job_type: JobType,
        plan: &str,
        tenants: &[String],
    ) -> Result<(Job, JobLock), LedgerError> {
        let now = chrono::Utc::now().timestamp();
        let pid = std::process::id();
        let tx = self.conn.unchecked_transaction().map_err(self.sql())?;
        tx.execute(
            "INSERT INTO jobs(type, plan, tenants, status, pid, start) VALUES (?1, ?2, ?3, 'Running', ?4, ?5)",
            params![job_type.as_str(), plan, tenants.join(","), pid, now],
        )
        .map_err(self.sql())?;
        let id = tx.last_insert_rowid() as u64;
        // Take the lock before anyone can see the job as Running.
        let lock_path = self.lock_path(id);
        let file = File::create(&lock_path).map_err(|source| LedgerError::Io {
            path: lock_path.clone(),
            source,
        })?;
        file.lock().map_err(|source| LedgerError::Io {
            path: lock_path,
            source,
        })?;
        tx.commit().map_err(self.sql())?;
        Ok((
            Job {
                id,
                job_type,
                plan: plan.to_string(),
                tenants: tenants.to_vec(),
                status: JobStatus::Running,
                pid,
                start: now,
                end: None,
                size_gib: 0,
                error: None,
            },
            JobLock {
                _file: file,
                job: id,
            },
        ))
    }

    pub fn add_item(&self, job: u64, item: &Item) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO items(job, tenant, account, region, kind, source_id, status, created, size_gib, error, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    job as i64,
                    item.tenant,
                    item.account,
                    item.region,
                    item.kind.as_str(),
                    item.source_id,
                    item.status.as_str(),
                    serde_json::to_string(&item.created).unwrap_or_default(),
                    item.size_gib,
                    item.error,
                    item.detail.to_string(),
                ],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    pub fn event(&self, job: u64, severity: &str, message: &str) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO events(job, at, severity, message) VALUES (?1, ?2, ?3, ?4)",
                params![
                    job as i64,
                    chrono::Utc::now().timestamp(),
                    severity,
                    message
                ],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Ends a job and releases its lock.
    pub fn finish_job(
        &self,
        lock: JobLock,
        status: JobStatus,
        size_gib: i64,
        error: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE jobs SET status = ?2, end = ?3, size_gib = ?4, error = ?5 WHERE id = ?1",
                params![
                    lock.job as i64,
                    status.as_str(),
                    chrono::Utc::now().timestamp(),
                    size_gib,
                    error
                ],
            )
            .map_err(self.sql())?;
        let path = self.lock_path(lock.job);
        drop(lock);
        let _ = std::fs::remove_file(path);
        Ok(())
    }

    fn row_to_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
        let tenants: String = r.get(3)?;
        Ok(Job {
            id: r.get::<_, i64>(0)? as u64,
            job_type: JobType::parse(&r.get::<_, String>(1)?),
            plan: r.get(2)?,
            tenants: tenants
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            status: JobStatus::parse(&r.get::<_, String>(4)?),
            pid: r.get::<_, i64>(5)? as u32,
            start: r.get(6)?,
            end: r.get(7)?,
            size_gib: r.get(8)?,
            error: r.get(9)?,
        })
    }

    const JOB_COLUMNS: &'static str =
        "id, type, plan, tenants, status, pid, start, end, size_gib, error";

    /// Newest first.
    pub fn jobs(&self, plan: Option<&str>, limit: usize) -> Result<Vec<Job>, LedgerError> {
        let sql = format!(
            "SELECT {} FROM jobs WHERE (?1 IS NULL OR plan = ?1) ORDER BY id DESC LIMIT ?2",
            Self::JOB_COLUMNS
        );
        let mut stmt = self.conn.prepare(&sql).map_err(self.sql())?;
        let rows = stmt
            .query_map(params![plan, limit as i64], Self::row_to_job)
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        Ok(rows)
    }

    pub fn job(&self, id: u64) -> Result<Option<Job>, LedgerError> {
        let sql = format!("SELECT {} FROM jobs WHERE id = ?1", Self::JOB_COLUMNS);
        self.conn
            .query_row(&sql, params![id as i64], Self::row_to_job)
            .optional()
            .map_err(self.sql())
    }

    /// The job's items in the order they were recorded. A point recorded
    /// more than once (a prune's passes: failed, then deleted by a later
    /// pass) is given once, at its last outcome.
    pub fn items(&self, job: u64) -> Result<Vec<Item>, LedgerError> {
        let mut out = Vec::new();
        self.each_item(job, |i| {
            out.push(i);
            true
        })?;
        Ok(out)
    }

    /// [`Ledger::items`] one at a time, without holding them all; `f`
    /// returns false to stop.
    pub fn each_item(&self, job: u64, mut f: impl FnMut(Item) -> bool) -> Result<(), LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT tenant, account, region, kind, source_id, status, created, size_gib, error, detail \
                 FROM items WHERE job = ?1 AND rowid IN \
                 (SELECT MAX(rowid) FROM items WHERE job = ?1 GROUP BY tenant, region, kind, source_id) \
                 ORDER BY rowid",
            )
            .map_err(self.sql())?;
        let mut rows = stmt.query(params![job as i64]).map_err(self.sql())?;
        while let Some(r) = rows.next().map_err(self.sql())? {
            let item = (|| -> rusqlite::Result<Item> {
                Ok(Item {
                    tenant: r.get(0)?,
                    account: r.get(1)?,
                    region: r.get(2)?,
                    kind: {
                        let k: String = r.get(3)?;
                        ItemKind::parse(&k).ok_or_else(|| {
                            rusqlite::Error::FromSqlConversionFailure(
                                3,
                                rusqlite::types::Type::Text,
                                format!("unknown item kind {k:?}").into(),
                            )
                        })?
                    },
                    source_id: r.get(4)?,
                    status: ItemStatus::parse(&r.get::<_, String>(5)?),
                    created: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
                    size_gib: r.get(7)?,
                    error: r.get(8)?,
                    detail: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
                })
            })()
            .map_err(self.sql())?;
            if !f(item) {
                break;
            }
        }
        Ok(())
    }

    pub fn events(&self, job: u64) -> Result<Vec<Event>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, severity, message FROM events WHERE job = ?1 ORDER BY rowid")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![job as i64], |r| {
                Ok(Event {
                    at: r.get(0)?,
                    severity: r.get(1)?,
                    message: r.get(2)?,
                })
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests;
