//! Status lookups for the responder: one indexed point query
//! (`store::certificates::status_version`) per certificate, on read-only
//! connections of the responder's own, and the store's commit marker
//! ([`super::commits`]) that tells when a lookup can be skipped. RFC 5019
//! §2.2.1 lets a responder serve pre-produced responses; SPEC §5 adds that
//! they may never be older than the last committed change, which is what
//! these reads establish.
//!
//! The connections sit in slots, each behind its own mutex; a thread starts
//! at "its" slot and takes the first free one, so the worker threads of the
//! runtime each end up with a connection and never wait on one another (the
//! store's shared pool is one mutex, which every request would cross).
//! Readers in WAL mode see the last committed transaction of any process
//! and never block writers (SPEC §10).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use rusqlite::Connection;

use super::commits::{CommitMarker, CommitWatch};
use crate::domain::Serial;
use crate::store::certificates::{StatusVersion, status_version};
use crate::store::{Store, StoreError};

/// Slots beyond the machine's parallelism, for blocking-pool threads and
/// tests that call from many threads.
const SPARE_SLOTS: usize = 2;

/// Page cache of each lookup connection, in KiB (SQLite's `cache_size`
/// takes negative values as KiB). SQLite's default of 2 MiB holds the
/// B-tree pages of a few hundred certificates only; beyond that every lookup
/// re-reads two pages with `pread`, which makes it half again as costly. A
/// page cache survives between read transactions as long as nothing was
/// committed. At most (CPUs + 2) × 16 MiB, filled only by lookups, which
/// the commit marker keeps to one per certificate and commit.
const PAGE_CACHE_KIB: i64 = 16 * 1024;

static NEXT_HOME: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The slot this thread tries first, assigned round-robin on first use.
    static HOME: Cell<Option<usize>> = const { Cell::new(None) };
}

fn home_slot() -> usize {
    HOME.with(|home| {
        home.get().unwrap_or_else(|| {
            let slot = NEXT_HOME.fetch_add(1, Ordering::Relaxed);
            home.set(Some(slot));
            slot
        })
    })
}

/// Read-only connections to the store, one per slot, and its commit marker.
pub struct StatusReader {
    slots: Box<[Mutex<Connection>]>,
    commits: Arc<CommitWatch>,
}

impl std::fmt::Debug for StatusReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusReader")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl StatusReader {
    /// Opens a connection per available CPU (plus spares).
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let slots = (0..cpus + SPARE_SLOTS)
            .map(|_| {
                let conn = store.open_reader()?;
                conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self {
            slots,
            commits: Arc::new(CommitWatch::new(store.path())),
        })
    }

    /// The store's committed state now, if it can be read for sure.
    pub fn commit_marker(&self) -> Option<CommitMarker> {
        self.commits.current()
    }

    /// The watch behind [`StatusReader::commit_marker`], shared.
    pub fn commit_watch(&self) -> Arc<CommitWatch> {
        Arc::clone(&self.commits)
    }

    /// The current status and its version, or `None` for a serial never issued.
    pub fn status(&self, serial: &Serial) -> Result<Option<StatusVersion>, StoreError> {
        let conn = self.connection();
        status_version(&conn, &serial.to_hex())
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        let n = self.slots.len();
        let home = home_slot() % n;
        for i in 0..n {
            match self.slots[(home + i) % n].try_lock() {
                Ok(conn) => return conn,
                // A panic while holding a connection leaves it usable: the
                // statement was reset when its guard dropped.
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => continue,
            }
        }
        self.slots[home].lock().unwrap_or_else(|p| p.into_inner())
    }
}
