//! The signing pool: a few dedicated threads that sign the responses a
//! request cannot be answered without (a nonce, several CertIDs, a serial
//! never issued, a cache miss), behind a bounded queue. SPEC §16 "Bounded
//! by construction": signatures a client can force at will never run on
//! the runtime's threads, which keep answering cached requests and the RA
//! API, and never pile up: a job that finds its queue full is refused, and
//! the responder answers `tryLater` ([RFC 6960 §2.3](https://www.rfc-editor.org/rfc/rfc6960#section-2.3)).
//!
//! The threads run at a lower CPU priority (nice +10, [`SIGNING_NICE`]):
//! when the CPUs are busy, the runtime's threads and the blocking pool go
//! first, so a flood of signatures slows the flood and not the others;
//! when the CPUs are free, signatures take all they need.
//!
//! Two queues, each with the same bound: responses that go into the cache
//! (a miss for an issued certificate: at most one per CertID form and
//! status change, so bounded by what was issued) are taken first, so that a
//! flood of nonce requests cannot keep relying parties from the answers
//! every later request will share.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The nice value of the signing threads (0 is everyone else's, 19 the
/// least favoured): under contention a thread at +10 gets about a tenth of
/// the CPU time of one at 0.
pub const SIGNING_NICE: i32 = 10;

/// How many threads sign and how many jobs may wait in each queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningLimits {
    pub threads: usize,
    pub queue: usize,
}

impl SigningLimits {
    /// Jobs that may wait in each queue by default: at ~40 µs a P-256
    /// answer, a full queue is about 10 ms of one thread's work.
    pub const DEFAULT_QUEUE: usize = 256;

    /// The default: one thread per two CPUs (at least one), so that a
    /// flood of signatures leaves the other CPUs to everything else.
    pub fn default_for_this_machine() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            threads: cpus.div_ceil(2),
            queue: Self::DEFAULT_QUEUE,
        }
    }
}

/// Which queue a job waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A response that goes into the cache: taken first.
    Cache,
    /// A response for one request only.
    PerRequest,
}

/// The job was refused: its queue was full (or the pool is closing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the OCSP signing queue is full")]
pub struct QueueFull;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queues {
    cache: VecDeque<Job>,
    per_request: VecDeque<Job>,
    closed: bool,
}

impl Queues {
    fn lane(&mut self, lane: Lane) -> &mut VecDeque<Job> {
        match lane {
            Lane::Cache => &mut self.cache,
            Lane::PerRequest => &mut self.per_request,
        }
    }

    fn next(&mut self) -> Option<Job> {
        self.cache
            .pop_front()
            .or_else(|| self.per_request.pop_front())
    }
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    bound: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        // A job runs outside the lock, so a poisoned lock only means a
        // panic between two queue operations, which leave it consistent.
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pool. Dropping it stops its threads once their current job is
/// done; jobs still queued are dropped unrun (their requesters see their
/// answer channel close).
pub struct SigningPool {
    shared: Arc<Shared>,
    threads: usize,
}

impl std::fmt::Debug for SigningPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningPool")
            .field("threads", &self.threads)
            .field("bound", &self.shared.bound)
            .field("queued", &self.queued())
            .finish()
    }
}

impl SigningPool {
    /// Starts `limits.threads` threads (at least one).
    pub fn start(limits: SigningLimits) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queues: Mutex::default(),
            ready: Condvar::new(),
            bound: limits.queue,
        });
        let threads = limits.threads.max(1);
        for n in 0..threads {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("ocsp-signer-{n}"))
                .spawn(move || work(&shared))?;
        }
        Ok(Self { shared, threads })
    }

    /// Queues `job` in `lane`, or refuses it if that queue already holds
    /// its bound of waiting jobs.
    pub fn submit(&self, lane: Lane, job: impl FnOnce() + Send + 'static) -> Result<(), QueueFull> {
        let mut queues = self.shared.lock();
        if queues.closed || queues.lane(lane).len() >= self.shared.bound {
            return Err(QueueFull);
        }
        queues.lane(lane).push_back(Box::new(job));
        drop(queues);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Jobs waiting now, both queues together (not those being run).
    pub fn queued(&self) -> usize {
        let queues = self.shared.lock();
        queues.cache.len() + queues.per_request.len()
    }
}

impl Drop for SigningPool {
    fn drop(&mut self) {
        let dropped = {
            let mut queues = self.shared.lock();
            queues.closed = true;
            (
                std::mem::take(&mut queues.cache),
                std::mem::take(&mut queues.per_request),
            )
        };
        self.shared.ready.notify_all();
        // Outside the lock: a job may own the last handle on something
        // that, dropped, takes the lock again (the responder, this pool).
        drop(dropped);
    }
}

/// A signing thread: runs jobs until the pool closes. A job that panics
/// is dropped (its requester sees its answer channel close); the thread
/// goes on.
fn work(shared: &Shared) {
    lower_priority();
    loop {
        let job = {
            let mut queues = shared.lock();
            loop {
                if queues.closed {
                    return;
                }
                if let Some(job) = queues.next() {
                    break job;
                }
                queues = shared.ready.wait(queues).unwrap_or_else(|p| p.into_inner());
            }
        };
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("an OCSP signing job panicked");
        }
    }
}

/// Gives the calling thread the nice value [`SIGNING_NICE`]. Linux keeps
/// a nice value per thread (setpriority(2), NOTES). A process started
/// with a higher nice value already may not lower it (EACCES), and its
/// signing threads keep that; any failure leaves the thread as it was,
/// which costs latency elsewhere, never a wrong answer.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_priority() {
    // SAFETY: gettid has no preconditions; setpriority takes plain integers
    // and changes only the scheduling priority of the thread it names,
    // this one. Neither touches memory of ours.
    let changed = unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, SIGNING_NICE)
    };
    let error = std::io::Error::last_os_error();
    let already_lower = error.raw_os_error() == Some(libc::EACCES);
    if changed != 0 && !already_lower {
        tracing::warn!(%error, "cannot lower the OCSP signing thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A job that tells when it started and then waits to be released.
    fn blocking_job() -> (
        impl FnOnce() + Send + 'static,
        mpsc::Receiver<()>,
        mpsc::Sender<()>,
    ) {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let job = move || {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
        };
        (job, started, release)
    }

    fn done_job(
        tx: &mpsc::Sender<&'static str>,
        name: &'static str,
    ) -> impl FnOnce() + Send + 'static {
        let tx = tx.clone();
        move || {
            let _ = tx.send(name);
        }
    }

    #[test]
    fn a_full_queue_refuses_and_queued_jobs_run_cache_lane_first() {
        let pool = SigningPool::start(SigningLimits {
            threads: 1,
            queue: 2,
        })
        .unwrap();
        let (blocker, started, release) = blocking_job();
        pool.submit(Lane::PerRequest, blocker).unwrap();
        started.recv().unwrap();
        // The only thread is busy: jobs wait, two per queue.
        let (tx, done) = mpsc::channel();
        for name in ["request 1", "request 2"] {
            pool.submit(Lane::PerRequest, done_job(&tx, name)).unwrap();
        }
        assert_eq!(
            pool.submit(Lane::PerRequest, done_job(&tx, "request 3")),
            Err(QueueFull)
        );
        pool.submit(Lane::Cache, done_job(&tx, "cache 1")).unwrap();
        assert_eq!(pool.queued(), 3);
        release.send(()).unwrap();
        let order: Vec<_> = (0..3).map(|_| done.recv().unwrap()).collect();
        assert_eq!(order, ["cache 1", "request 1", "request 2"]);
        // Room again.
        pool.submit(Lane::PerRequest, done_job(&tx, "request 4"))
            .unwrap();
        assert_eq!(done.recv().unwrap(), "request 4");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn signing_threads_run_at_a_lower_priority() {
        let pool = SigningPool::start(SigningLimits {
            threads: 1,
            queue: 1,
        })
        .unwrap();
        let (tx, nice) = mpsc::channel();
        pool.submit(Lane::Cache, move || {
            // proc(5): the 19th field of /proc/thread-self/stat is the nice value.
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
            let fields: Vec<String> = stat
                .rsplit(')')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let _ = tx.send(fields.get(16).cloned());
        })
        .unwrap();
        let ours: i32 = nice.recv().unwrap().and_then(|n| n.parse().ok()).unwrap();
        // At least: a test run under `nice` starts higher.
        assert!(ours >= SIGNING_NICE, "nice {ours}");
    }

    #[test]
    fn a_panicking_job_leaves_the_thread_working() {
        let pool = SigningPool::start(SigningLimits {
            threads: 1,
            queue: 4,
        })
        .unwrap();
        let (tx, done) = mpsc::channel();
        pool.submit(Lane::PerRequest, || panic!("a job panics"))
            .unwrap();
        pool.submit(Lane::PerRequest, done_job(&tx, "after"))
            .unwrap();
        assert_eq!(done.recv().unwrap(), "after");
    }
}
