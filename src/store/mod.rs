//! The SQLite store (SPEC §10): the only component that writes the database.
//!
//! WAL mode with `synchronous=FULL`, so a committed transaction survives a
//! crash or power loss; every state change and its audit record commit in
//! one transaction. Writers serialise on one connection (`BEGIN IMMEDIATE`),
//! and concurrent writers share one commit (`group_commit`); readers use a
//! small pool of their own connections and never block writers.
//!
//! The boundary is named after what the authority needs, not after SQL: a
//! read runs on a [`Snapshot`], a change on a [`Change`] (which can also
//! read what it is about to change), and the queries are their methods
//! (`certificate`, `record_status`, `latest_crl`, ...). Only the authority
//! holds a [`Store`]; the read side (publisher, OCSP responder, public
//! downloads) gets a [`StoreReader`], which cannot write. A second backend
//! (PostgreSQL) implements the same methods: the authority calls queries by
//! meaning and never sees SQL or a connection.

pub mod audit;
pub mod certificates;
pub mod crls;
mod group_commit;
pub mod idempotency;
mod rows;
mod schema;
pub mod selfservice;

use std::fs::File;
use std::ops::Deref;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use group_commit::GroupWriter;

/// A store failure. Constraint violations surface as `Sqlite` errors for the
/// caller to map (e.g. a serial collision is retried by the issuer).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("cannot encode an audit record: {0}")]
    AuditDetail(#[from] serde_json::Error),
    #[error("the database schema is version {found}, newer than this eidca understands ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("commit failed: {0}")]
    CommitFailed(String),
}

/// Busy timeout: a writer waits this long for another process (the CLI
/// beside `serve`) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Readers kept open for reuse.
const READER_POOL: usize = 8;

/// The database, shared by all threads of one process.
pub struct Store {
    path: PathBuf,
    // Readers are declared (so dropped) first: the writer closes last, and
    // the last connection to close checkpoints the WAL and removes it.
    readers: Mutex<Vec<Connection>>,
    writer: GroupWriter,
    /// The one descriptor of the `-shm` file this process opens besides
    /// SQLite's (the OCSP commit watch maps it). Declared last, so closed
    /// after every connection: closing any descriptor of that file releases
    /// all of this process's POSIX locks on it, SQLite's included (fcntl(2)),
    /// and another process would then believe nobody has the database open.
    shm: OnceLock<File>,
    /// Serialises the opening of `shm`, so that no second descriptor is
    /// ever made (and closed).
    shm_opening: Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(PRIVATE_DIR)
                .create(dir)
                .map_err(|source| StoreError::DataDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        make_private(path)?;
        let mut writer = open_connection(path, OpenFlags::default())?;
        schema::migrate(&mut writer)?;
        Ok(Store {
            path: path.to_path_buf(),
            writer: GroupWriter::new(writer),
            readers: Mutex::new(Vec::new()),
            shm: OnceLock::new(),
            shm_opening: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database's `-shm` file (SQLite's WAL index), opened read-only
    /// once and kept open as long as this store; `None` while it does not
    /// exist yet. See the `shm` field for why there is only ever one.
    pub fn shm_file(&self) -> Option<&File> {
        if let Some(file) = self.shm.get() {
            return Some(file);
        }
        let _one_at_a_time = self.shm_opening.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = self.shm.get() {
            return Some(file);
        }
        let file = File::open(companion(&self.path, "-shm")).ok()?;
        Some(self.shm.get_or_init(|| file))
    }

    /// Runs `f` as one atomic change, committing only if it returns `Ok`.
    /// The commit is durable when this returns. Concurrent changes may share
    /// that commit (group commit), each in its own savepoint: `f` sees every
    /// change committed before it, and a failing `f` undoes only its own.
    pub fn write<T, E>(&self, f: impl FnOnce(&Change<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.writer.write(|conn| f(&Change(Snapshot { conn })))
    }

    /// Runs `f` in one read transaction: a consistent snapshot.
    pub fn read<T, E>(&self, f: impl FnOnce(&Snapshot<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.reader()?;
        let result = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(StoreError::from)?;
            let value = f(&Snapshot { conn: &tx })?;
            tx.finish().map_err(StoreError::from)?;
            Ok(value)
        })();
        self.release(conn);
        result
    }

    /// Runs `f` on a pooled reader connection outside an explicit
    /// transaction: for single-statement reads (CRL downloads, idempotency
    /// recall). The OCSP hot path keeps its own connections (`open_reader`).
    pub fn with_reader<T, E>(&self, f: impl FnOnce(&Snapshot<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let conn = self.reader()?;
        let result = f(&Snapshot { conn: &conn });
        self.release(conn);
        result
    }

    /// A new read-only connection of its own, for a component that keeps
    /// connections per thread (the OCSP responder's hot path) instead of
    /// sharing this store's pool.
    pub fn open_reader(&self) -> Result<Connection, StoreError> {
        open_connection(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }

    fn reader(&self) -> Result<Connection, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => self.open_reader(),
        }
    }

    fn release(&self, conn: Connection) {
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
    }
}

/// What one read sees: a read transaction (or a single statement, for
/// [`Store::with_reader`]). Its methods are the store's queries.
#[derive(Clone, Copy)]
pub struct Snapshot<'c> {
    conn: &'c Connection,
}

impl<'c> Snapshot<'c> {
    /// A snapshot over a connection of the caller's own (the OCSP hot path
    /// keeps one per thread, opened with [`StoreReader::open_reader`]).
    pub fn on(conn: &'c Connection) -> Self {
        Self { conn }
    }
}

/// One atomic change in progress: the writes, and every read of the state
/// the change sees (through `Deref` to [`Snapshot`]).
pub struct Change<'c>(Snapshot<'c>);

impl<'c> Deref for Change<'c> {
    type Target = Snapshot<'c>;

    fn deref(&self) -> &Snapshot<'c> {
        &self.0
    }
}

/// The read side's handle on the store: it can read, never write.
#[derive(Debug, Clone)]
pub struct StoreReader(Arc<Store>);

impl StoreReader {
    /// The read handle of a store the caller (the authority) owns.
    pub fn of(store: &Arc<Store>) -> Self {
        Self(Arc::clone(store))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// [`Store::read`].
    pub fn read<T, E>(&self, f: impl FnOnce(&Snapshot<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.0.read(f)
    }

    /// [`Store::with_reader`].
    pub fn with_reader<T, E>(&self, f: impl FnOnce(&Snapshot<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.0.with_reader(f)
    }

    /// [`Store::shm_file`].
    pub fn shm_file(&self) -> Option<&File> {
        self.0.shm_file()
    }

    /// [`Store::open_reader`].
    pub fn open_reader(&self) -> Result<Connection, StoreError> {
        self.0.open_reader()
    }
}

/// Mode of a directory the store creates: the store holds every card and
/// its subscriber code (the self-service credential), the form key and the
/// notes, so nobody else may even list it.
const PRIVATE_DIR: u32 = 0o700;

/// Mode of the store's files.
const PRIVATE_FILE: u32 = 0o600;

/// The file SQLite keeps beside the database with `suffix` (`-wal`, `-shm`).
fn companion(database: &Path, suffix: &str) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Creates the database file 0600 if it does not exist, and takes group and
/// other permissions off it and its `-wal` and `-shm` files if it does.
/// SQLite creates `-wal` and `-shm` with the database file's permissions,
/// so they follow.
fn make_private(path: &Path) -> Result<(), StoreError> {
    let failed = |source| StoreError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(e)),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = companion(path, suffix);
        match std::fs::metadata(&file) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(PRIVATE_FILE))
                    .map_err(failed)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(())
}

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if !flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY) {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Unix seconds for a time stored in the database.
pub(crate) fn to_unix(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// The time for unix seconds read from the database.
pub(crate) fn from_unix(seconds: i64) -> Result<time::OffsetDateTime, StoreError> {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| StoreError::Corrupt(format!("timestamp {seconds} out of range")))
}
