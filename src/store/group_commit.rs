//! Group commit: concurrent writers share one durable commit.
//!
//! With `synchronous=FULL` every commit waits for an fsync of the WAL
//! (milliseconds on a real disk), so one commit per change caps the store
//! at a few hundred changes a second however fast the rest is (figures in
//! BENCHMARKS.md, "RA API"). Instead,
//! writers that arrive while a commit is in flight queue on the connection;
//! each runs its change in its own `SAVEPOINT` of one shared `BEGIN
//! IMMEDIATE` transaction, and the last writer in line commits for all.
//!
//! Every promise of a transaction per change still holds:
//! * a change that fails rolls back to its savepoint and leaves the others be;
//! * a change sees the changes of the writers before it, exactly as it would
//!   after their commits (the batch is a serial schedule);
//! * nobody returns before the commit that makes its change durable, and if
//!   that commit fails, every change of the batch reports the failure.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use rusqlite::Connection;

use super::StoreError;

/// Most changes in one commit, so that a steady stream of writers cannot
/// keep a batch open (and its first writer waiting) for ever.
const MAX_BATCH: usize = 64;

/// The writer connection and the batch now open on it.
pub(super) struct GroupWriter {
    open: Mutex<Open>,
    /// Writers waiting for the connection: while any is, the holder leaves
    /// the commit to the last of them.
    queued: AtomicUsize,
}

struct Open {
    conn: Connection,
    batch: Option<Arc<Batch>>,
    changes: usize,
}

/// One shared transaction; its writers wait here for its commit.
#[derive(Default)]
struct Batch {
    outcome: Mutex<Option<Result<(), String>>>,
    done: Condvar,
}

impl Batch {
    fn finish(&self, outcome: Result<(), String>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.done.notify_all();
    }

    fn wait(&self) -> Result<(), String> {
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(result) = outcome.as_ref() {
                return result.clone();
            }
            outcome = self
                .done
                .wait(outcome)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl GroupWriter {
    pub(super) fn new(conn: Connection) -> Self {
        Self {
            open: Mutex::new(Open {
                conn,
                batch: None,
                changes: 0,
            }),
            queued: AtomicUsize::new(0),
        }
    }

    /// Runs `f` in the open batch (opening one if needed) and returns once
    /// the batch has committed. `f`'s changes are undone if it fails.
    pub(super) fn write<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        self.queued.fetch_sub(1, Ordering::SeqCst);
        // Nothing is open when joining fails, so returning at once is safe.
        let batch = open.join().map_err(E::from)?;
        // From here on, the batch must be committed or handed on, even if `f` panics.
        let result = catch_unwind(AssertUnwindSafe(|| open.run_in_savepoint(f)));
        open.changes += 1;
        let committed = if self.queued.load(Ordering::SeqCst) == 0 || open.changes >= MAX_BATCH {
            let outcome = open.commit();
            drop(open);
            batch.finish(outcome.clone());
            outcome
        } else {
            // A queued writer will join this batch and commit it (or hand it on).
            drop(open);
            batch.wait()
        };
        match result {
            Err(panic) => resume_unwind(panic),
            Ok(Ok(value)) => committed
                .map(|()| value)
                .map_err(|message| StoreError::CommitFailed(message).into()),
            Ok(Err(e)) => Err(e),
        }
    }
}

impl Open {
    /// The open batch, or a new one (`BEGIN IMMEDIATE`).
    fn join(&mut self) -> Result<Arc<Batch>, StoreError> {
        if let Some(batch) = &self.batch {
            if !self.conn.is_autocommit() {
                return Ok(Arc::clone(batch));
            }
            // SQLite rolled the whole transaction back on its own (e.g. disk
            // full): the changes before us are gone, and their writers must hear it.
            batch.finish(Err("the transaction was rolled back by SQLite".into()));
            self.batch = None;
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let batch = Arc::new(Batch::default());
        self.batch = Some(Arc::clone(&batch));
        self.changes = 0;
        Ok(batch)
    }

    fn run_in_savepoint<T, E>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let savepoint = self.conn.savepoint().map_err(StoreError::from)?;
        // Dropping the savepoint without releasing it rolls it back.
        let value = f(&savepoint)?;
        savepoint.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    /// Commits the batch; on failure rolls back whatever is left of it.
    fn commit(&mut self) -> Result<(), String> {
        self.batch = None;
        self.changes = 0;
        if self.conn.is_autocommit() {
            return Err("the transaction was rolled back by SQLite".into());
        }
        self.conn.execute_batch("COMMIT").map_err(|e| {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            e.to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempfile::TempDir, Arc<GroupWriter>) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.sqlite3")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .unwrap();
        (dir, Arc::new(GroupWriter::new(conn)))
    }

    fn count(w: &GroupWriter) -> i64 {
        w.write(|c| -> Result<i64, StoreError> {
            Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
        })
        .unwrap()
    }

    #[test]
    fn a_failed_change_rolls_back_alone() {
        let (_dir, w) = writer();
        w.write(|c| -> Result<(), StoreError> {
            c.execute("INSERT INTO t VALUES (1)", [])?;
            Ok(())
        })
        .unwrap();
        let failed = w.write(|c| -> Result<(), StoreError> {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            c.execute("INSERT INTO t VALUES (1)", [])?; // duplicate: fails
            Ok(())
        });
        assert!(failed.is_err());
        assert_eq!(count(&w), 1);
    }

    #[test]
    fn concurrent_writers_all_commit() {
        let (_dir, w) = writer();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let w = Arc::clone(&w);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        w.write(|c| -> Result<(), StoreError> {
                            c.execute("INSERT INTO t VALUES (?1)", [t * 1000 + i])?;
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(count(&w), 400);
        let open = w.open.lock().unwrap();
        assert!(open.batch.is_none() && open.conn.is_autocommit());
    }

    #[test]
    fn a_panicking_change_leaves_no_open_transaction() {
        let (_dir, w) = writer();
        let w2 = Arc::clone(&w);
        let panicked = std::thread::spawn(move || {
            w2.write(|c| -> Result<(), StoreError> {
                c.execute("INSERT INTO t VALUES (7)", []).unwrap();
                panic!("boom");
            })
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(count(&w), 0);
    }
}
