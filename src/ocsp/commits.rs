//! "Has anything been committed since?" in one read of SQLite's WAL-index
//! header, so that a pre-produced OCSP response (RFC 5019 §2.2.1) can be
//! proven current (SPEC §5: never older than the last committed change)
//! without a read transaction.
//!
//! Why: a status lookup is an SQLite read transaction, and beginning and
//! ending one costs file-lock system calls, a shared-memory lock and VFS
//! mutexes that the runtime's threads contend on: more than the rest of a
//! cached answer costs (figures in BENCHMARKS.md, "OCSP"). The WAL-index header tells the same thing for the
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

// The crate's one use of `unsafe`: mapping the header and reading it with
// atomic loads (see `SharedHeader`); each block states its SAFETY.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::store::StoreReader;

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
#[derive(Debug)]
pub struct CommitWatch {
    /// Mapped on first use: the `-shm` file exists only while some
    /// connection has the database open in WAL mode. Declared before
    /// `store`, so unmapped before the store can close.
    shm: OnceLock<SharedHeader>,
    /// Serialises the mapping, so that two threads racing the first read
    /// make one mapping, not two.
    mapping: Mutex<()>,
    /// Owns the `-shm` descriptor, and its connections hold SQLite's locks
    /// that keep the file from shrinking while it is mapped.
    store: StoreReader,
}

impl CommitWatch {
    pub fn new(store: &StoreReader) -> Self {
        Self {
            shm: OnceLock::new(),
            mapping: Mutex::new(()),
            store: store.clone(),
        }
    }

    /// The committed state now, or `None` when it cannot be read for sure.
    pub fn current(&self) -> Option<CommitMarker> {
        let shm = match self.shm.get() {
            Some(header) => header,
            None => self.map()?,
        };
        CommitMarker::parse(&shm.read())
    }

    /// Maps the header, once: the store opens the one descriptor, and the
    /// mapping is made under `mapping`, so no thread builds a second one.
    fn map(&self) -> Option<&SharedHeader> {
        let _one_at_a_time = self.mapping.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(header) = self.shm.get() {
            return Some(header);
        }
        let header = SharedHeader::map(self.store.shm_file()?)?;
        Some(self.shm.get_or_init(|| header))
    }
}

/// The first page of a `-shm` file, mapped shared and read-only: reading the
/// header is then a few loads from memory instead of a `pread` system call
/// per request, a measurable share of a cached answer (BENCHMARKS.md).
/// SQLite itself reads and writes the header through the same kind of
/// mapping, so what it publishes is what we load.
///
/// It borrows the descriptor the store owns and never opens or closes one
/// of its own (see `Store::shm_file`).
#[derive(Debug)]
struct SharedHeader {
    words: NonNull<AtomicU32>,
}

// SAFETY: the mapping is read only through atomic loads, which any thread
// may do at any time; it is unmapped once, on drop.
unsafe impl Send for SharedHeader {}
// SAFETY: as above.
unsafe impl Sync for SharedHeader {}

/// What is mapped: the first page, which holds both header copies.
const MAPPED_LEN: usize = 4096;

impl SharedHeader {
    /// Maps the header of an open `-shm` file, or `None` if the file is too
    /// short to hold one yet (SQLite creates it at 3 octets and grows it) or
    /// cannot be mapped.
    fn map(file: &File) -> Option<Self> {
        let long_enough = file.metadata().ok()?.len() >= 2 * HEADER_LEN as u64;
        if !long_enough {
            return None;
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
        if address == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(address.cast()).map(|words| Self { words })
    }

    /// Both header copies, the first read before the second. SQLite writes
    /// the second copy, then (after a memory barrier) the first, so a first
    /// copy that is new, read before the second, finds the second new too;
    /// a read that overlaps a commit sees two copies that differ and yields
    /// no marker. Loads are atomic because another process may write the
    /// words while they are read.
    fn read(&self) -> [u8; 2 * HEADER_LEN] {
        // SAFETY: the mapping is MAPPED_LEN ≥ 96 octets, page-aligned and
        // lives as long as `self`. The file was at least 96 octets long when
        // mapped (see `map`), and SQLite truncates or deletes it only when
        // it takes the exclusive DMS lock, i.e. when no other connection
        // holds its shared DMS lock. The store's connections hold that lock
        // for as long as the store is open, and the `CommitWatch` that owns
        // this mapping keeps the store open; SQLite maps this very page in
        // this process as well.
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
        let store = std::sync::Arc::new(Store::open(&dir.path().join("eidca.sqlite3")).unwrap());
        let watch = CommitWatch::new(&StoreReader::of(&store));
        let commit = |n: i64| {
            store
                .write(|tx| {
                    let (code, card) = (format!("A{n:09}"), format!("TP{n:08}"));
                    tx.register_subscriber_and_card(
                        &code,
                        "x",
                        &card,
                        time::OffsetDateTime::UNIX_EPOCH,
                    )
                })
                .unwrap();
        };
        commit(0);
        let mut seen = vec![watch.current().expect("a marker in WAL mode")];
        for n in 1..20 {
            store.read(|tx| tx.card_owner("TP00000000")).unwrap();
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
}
