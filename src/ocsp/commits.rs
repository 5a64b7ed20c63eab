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
//! price of a few memory loads.
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
#![allow(
    unsafe_code,
    reason = "the crate's one unsafe: mapping SQLite's shared memory takes mmap and loads through a raw pointer"
)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Size of one copy of the WAL-index header.
const HEADER_LEN: usize = 48;

/// Both copies, in 32-bit words (SQLite's own unit for them).
const HEADER_WORDS: usize = 2 * HEADER_LEN / 4;

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
///
/// Closing any descriptor of the `-shm` file releases every POSIX lock this
/// process holds on it, SQLite's own included (fcntl(2)): another process
/// would then believe that nobody has the database open and reinitialise
/// the WAL-index under our connections. So a watch opens the file at most
/// once and keeps that descriptor until it is dropped, which must be after
/// the store's connections have closed (`http::serve` orders it so).
#[derive(Debug)]
pub struct CommitWatch {
    shm_path: PathBuf,
    /// Mapped on first use: the `-shm` file exists only while some
    /// connection has the database open in WAL mode (ours do, for as long as
    /// the responder lives, which also keeps SQLite from deleting it).
    header: OnceLock<SharedHeader>,
    /// The descriptor until it could be mapped (the file may still be too
    /// short); held under the lock by the one thread that maps, so that
    /// racing first reads never open, and so never close, a second one.
    unmapped: Mutex<Option<File>>,
}

impl CommitWatch {
    pub fn new(database: &Path) -> Self {
        let mut shm_path = database.as_os_str().to_owned();
        shm_path.push("-shm");
        Self {
            shm_path: shm_path.into(),
            header: OnceLock::new(),
            unmapped: Mutex::new(None),
        }
    }

    /// The committed state now, or `None` when it cannot be read for sure.
    pub fn current(&self) -> Option<CommitMarker> {
        let header = match self.header.get() {
            Some(header) => header,
            None => self.map_once()?,
        };
        CommitMarker::parse(&header.read())
    }

    /// Maps the header unless another thread did meanwhile. Not
    /// `OnceLock::get_or_init`: a file that is absent or too short yet is
    /// no reason to give up for good, so a failed attempt must not be cached.
    fn map_once(&self) -> Option<&SharedHeader> {
        let mut unmapped = self.unmapped.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(header) = self.header.get() {
            return Some(header);
        }
        if unmapped.is_none() {
            *unmapped = Some(File::open(&self.shm_path).ok()?);
        }
        let file = unmapped.take()?;
        match SharedHeader::map(file) {
            // Only this function sets the header, under the lock: this is
            // the first and only one.
            Ok(header) => Some(self.header.get_or_init(|| header)),
            Err(file) => {
                *unmapped = Some(file);
                None
            }
        }
    }
}

/// The first page of a `-shm` file, mapped shared and read-only: reading the
/// header is then a few loads from memory instead of a `pread` system call
/// per request, which cost about a tenth of a cached answer (BENCHMARKS.md).
/// SQLite itself reads and writes the header through the same kind of
/// mapping, so what it publishes is what we load.
#[derive(Debug)]
struct SharedHeader {
    words: NonNull<AtomicU32>,
    /// The watch's one descriptor of the file, kept for as long as the
    /// mapping (see [`CommitWatch`]).
    _file: File,
}

// SAFETY: the mapping is read only through atomic loads, which any thread
// may do at any time; it is unmapped once, on drop.
unsafe impl Send for SharedHeader {}
// SAFETY: as above.
unsafe impl Sync for SharedHeader {}

/// What is mapped: the first page, which holds both header copies.
const MAPPED_LEN: usize = 4096;

impl SharedHeader {
    /// Maps the header of an open `-shm` file, or gives the file back if it
    /// is too short to hold one yet (SQLite creates it at 3 octets and grows
    /// it) or cannot be mapped.
    fn map(file: File) -> Result<Self, File> {
        let long_enough = file
            .metadata()
            .is_ok_and(|m| m.len() >= 2 * HEADER_LEN as u64);
        if !long_enough {
            return Err(file);
        }
        // SAFETY: a fresh read-only shared mapping of an open file, at an
        // address the kernel chooses; no Rust reference to it exists yet.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAPPED_LEN,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        match NonNull::new(address.cast()) {
            Some(words) if address != libc::MAP_FAILED => Ok(Self { words, _file: file }),
            _ => Err(file),
        }
    }

    /// Both header copies, the first read before the second. SQLite writes
    /// the second copy, then (after a memory barrier) the first, so a first
    /// copy that is new, read before the second, finds the second new too;
    /// a read that overlaps a commit sees two copies that differ and yields
    /// no marker. Loads are atomic because another process may write the
    /// words while they are read.
    fn read(&self) -> [u8; 2 * HEADER_LEN] {
        // SAFETY: the mapping is MAPPED_LEN ≥ 96 octets, page-aligned and
        // lives as long as `self`; loads from it are sound while the file
        // still has its first page. It was at least 96 octets when mapped
        // (see `map`), and SQLite truncates a `-shm` file only to rebuild
        // it, after taking its DMS lock exclusively: never while a
        // connection of this process holds that lock shared, as the store's
        // and the responder's do for as long as they are open and this
        // watch keeps its descriptor (see `CommitWatch`). Even then it
        // truncates to 3 octets, which keep the first page backed.
        let words =
            unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast_const(), HEADER_WORDS) };
        let mut bytes = [0u8; 2 * HEADER_LEN];
        // Acquire: no later load (the second copy's) is done before this one.
        for (word, out) in words.iter().zip(bytes.chunks_exact_mut(4)) {
            out.copy_from_slice(&word.load(Ordering::Acquire).to_ne_bytes());
        }
        bytes
    }
}

impl Drop for SharedHeader {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once; no reference to
        // it outlives `self`.
        unsafe {
            libc::munmap(self.words.as_ptr().cast(), MAPPED_LEN);
        }
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
    fn a_store_opened_after_a_failed_first_read_is_watched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eidca.sqlite3");
        let watch = CommitWatch::new(&path);
        assert_eq!(watch.current(), None, "no -shm file yet");
        let _store = Store::open(&path).unwrap();
        assert!(watch.current().is_some(), "a failed attempt is not kept");
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
