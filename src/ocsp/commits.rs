//! "Has anything been committed since?" in one read of SQLite's WAL-index
//! header, so that a pre-produced OCSP response (RFC 5019 §2.2.1) can be
//! proven current (SPEC §5: never older than the last committed change)
//! without a read transaction.
//!
//! Why: a status lookup is an SQLite read transaction, and beginning and
//! ending one costs file-lock system calls, a shared-memory lock and VFS
//! mutexes that the runtime's threads contend on: about 5 µs of CPU here,
//! more than the rest of a cached answer and half of what the HTTP exchange
//! costs (BENCHMARKS.md). The WAL-index header tells the same thing for the
//! price of one `pread`.
//!
//! How: in WAL mode every commit, by any process, publishes a new WAL-index
//! header in the `-shm` file before it returns (it holds the new last frame,
//! frame checksum and change counter; a WAL reset gets new salts). The
//! header is stored twice; a writer updates the second copy, then the first
//! ([file format](https://www.sqlite.org/walformat.html#the_wal_index_header),
//! `walIndexWriteHdr` in sqlite3.c). Reading both and finding them equal
//! gives a consistent header; the same header means the same committed
//! database. Any doubt (no `-shm` file, copies differ, not initialised, an
//! unknown format version) yields no marker, and the caller falls back to a
//! real lookup: the check can make the responder slower, never staler.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Size of one copy of the WAL-index header.
const HEADER_LEN: usize = 48;

/// `iVersion` of the WAL-index format (unchanged since SQLite 3.7.0).
const WALINDEX_VERSION: u32 = 3_007_000;

/// A consistent WAL-index header: equal markers, equal committed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitMarker([u8; HEADER_LEN]);

impl CommitMarker {
    /// The marker in the first bytes of a `-shm` file, if they hold a
    /// consistent, initialised header of the known format.
    pub fn parse(bytes: &[u8; 2 * HEADER_LEN]) -> Option<Self> {
        let (first, second) = bytes.split_at(HEADER_LEN);
        let version = u32::from_ne_bytes([first[0], first[1], first[2], first[3]]);
        let initialised = first[12] == 1;
        let header: [u8; HEADER_LEN] = first.try_into().ok()?;
        (first == second && initialised && version == WALINDEX_VERSION).then_some(Self(header))
    }
}

/// Reads the commit marker of one SQLite database.
#[derive(Debug)]
pub struct CommitWatch {
    shm_path: PathBuf,
    /// Opened on first use: the `-shm` file exists only while some
    /// connection has the database open in WAL mode (ours do, for as long as
    /// the responder lives, which also keeps SQLite from deleting it).
    shm: OnceLock<File>,
}

impl CommitWatch {
    pub fn new(database: &Path) -> Self {
        let mut shm_path = database.as_os_str().to_owned();
        shm_path.push("-shm");
        Self {
            shm_path: shm_path.into(),
            shm: OnceLock::new(),
        }
    }

    /// The committed state now, or `None` when it cannot be read for sure.
    pub fn current(&self) -> Option<CommitMarker> {
        let shm = match self.shm.get() {
            Some(file) => file,
            None => {
                let file = File::open(&self.shm_path).ok()?;
                self.shm.get_or_init(|| file)
            }
        };
        let mut bytes = [0u8; 2 * HEADER_LEN];
        shm.read_exact_at(&mut bytes, 0).ok()?;
        CommitMarker::parse(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn header(change: u8) -> [u8; 2 * HEADER_LEN] {
        let mut copy = [0u8; HEADER_LEN];
        copy[..4].copy_from_slice(&WALINDEX_VERSION.to_ne_bytes());
        copy[8] = change;
        copy[12] = 1;
        let mut both = [0u8; 2 * HEADER_LEN];
        both[..HEADER_LEN].copy_from_slice(&copy);
        both[HEADER_LEN..].copy_from_slice(&copy);
        both
    }

    #[test]
    fn only_a_consistent_initialised_header_is_a_marker() {
        assert!(CommitMarker::parse(&header(1)).is_some());
        assert_ne!(
            CommitMarker::parse(&header(1)),
            CommitMarker::parse(&header(2))
        );
        let mut torn = header(1);
        torn[HEADER_LEN + 8] = 2;
        assert_eq!(CommitMarker::parse(&torn), None);
        let mut uninitialised = header(1);
        uninitialised[12] = 0;
        uninitialised[HEADER_LEN + 12] = 0;
        assert_eq!(CommitMarker::parse(&uninitialised), None);
        let mut other_format = header(1);
        other_format[0] ^= 1;
        other_format[HEADER_LEN] ^= 1;
        assert_eq!(CommitMarker::parse(&other_format), None);
    }

    #[test]
    fn every_commit_changes_the_marker_and_reads_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("eidca.sqlite3")).unwrap();
        let watch = CommitWatch::new(store.path());
        let commit = |n: i64| {
            store
                .write(|tx| {
                    tx.execute(
                        "INSERT INTO subscribers (code, name, created_at) VALUES (?1, 'x', 0)",
                        [format!("A{n:09}")],
                    )?;
                    Ok::<_, crate::store::StoreError>(())
                })
                .unwrap();
        };
        commit(0);
        let mut seen = vec![watch.current().expect("a marker in WAL mode")];
        for n in 1..20 {
            store
                .read(|tx| {
                    tx.query_row("SELECT COUNT(*) FROM subscribers", [], |r| {
                        r.get::<_, i64>(0)
                    })
                    .map_err(crate::store::StoreError::from)
                })
                .unwrap();
            assert_eq!(
                watch.current(),
                seen.last().copied(),
                "a read changes nothing"
            );
            commit(n);
            let marker = watch.current().unwrap();
            assert!(!seen.contains(&marker), "commit {n} reused a marker");
            seen.push(marker);
        }
    }

    #[test]
    fn no_shm_file_no_marker() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            CommitWatch::new(&dir.path().join("absent.sqlite3")).current(),
            None
        );
    }
}
