//! Per-request costs of the responder, measured in process (release build,
//! one thread, wall and CPU time): request decoding, a status lookup, whole
//! answers (cached and nonce). Used to explain bench/ocsp-load.sh.
//!
//! ```sh
//! cargo run --release --example ocsp_hotpath -- /tmp/eidca-bench
//! ```
//! The argument is a BENCH_DIR prepared by bench/ocsp-load.sh; a second
//! one (e.g. `nonce`) runs only the measurements whose label starts with it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eidca::authority::Authority;
use eidca::clock::SystemClock;
use eidca::config::{Config, ConfigSource};
use eidca::domain::Serial;
use eidca::ocsp::Responder;
use eidca::ocsp::lookup::StatusReader;
use eidca::ocsp::request::{self, IssuerHashes};

type Error = Box<dyn std::error::Error>;

/// CPU time of this process (all threads) so far: other load on the
/// machine does not inflate it, unlike wall time.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    // Clock ticks of 10 ms (USER_HZ = 100 on Linux).
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

struct Stopwatch(Instant, Duration);

impl Stopwatch {
    fn start() -> Self {
        Self(Instant::now(), cpu())
    }

    fn report(&self, label: &str, n: usize) {
        let us = |d: Duration| d.as_nanos() as f64 / n as f64 / 1000.0;
        println!(
            "{label:<40} wall {:>7.2} µs   cpu {:>7.2} µs",
            us(self.0.elapsed()),
            us(cpu() - self.1)
        );
    }
}

/// Runs `f` `n` times and reports; with a second argument, only the
/// measurements whose label starts with it run (to profile one of them).
fn time<T>(label: &str, n: usize, mut f: impl FnMut(usize) -> T) {
    if std::env::args()
        .nth(2)
        .is_some_and(|only| !label.starts_with(&only))
    {
        return;
    }
    let watch = Stopwatch::start();
    for i in 0..n {
        std::hint::black_box(f(i));
    }
    watch.report(label, n);
}

fn main() -> Result<(), Error> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/eidca-bench".into()),
    );
    let source = ConfigSource {
        path: "ca-config/eidca.toml".into(),
        listen: None,
        data_dir: dir.join("data"),
    };
    let authority = Arc::new(Authority::open(
        Config::load(&source)?,
        Arc::new(SystemClock),
    )?);
    let read = |list: &str| -> Result<Arc<Vec<Vec<u8>>>, Error> {
        let files = std::fs::read_to_string(dir.join(list))?;
        let bodies: Result<Vec<_>, Error> = files.lines().map(|f| Ok(std::fs::read(f)?)).collect();
        Ok(Arc::new(bodies?))
    };
    let (plain, nonce) = (read("post.txt")?, read("post-nonce.txt")?);
    let issuing = &authority.issuing_ca().cert;
    let issuer = IssuerHashes::new(&issuing.subject_der, &issuing.public_key_bits);
    let serials: Vec<String> = plain
        .iter()
        .map(|der| request::decode(der, &issuer, 20).map(|r| r.cert_ids[0].serial_der.clone()))
        .map(|serial| serial.map(hex::encode))
        .collect::<Result<_, _>>()?;
    let responder = Responder::open(
        authority.config(),
        &authority.issuing_ca().cert,
        &authority.reader(),
    )?;
    let now = authority.now();
    let n = plain.len();
    time("decode a request", 100_000, |i| {
        request::decode(&plain[i % n], &issuer, 20)
    });
    let statuses = StatusReader::open(&authority.reader())?;
    let parsed: Vec<Serial> = serials.iter().filter_map(|s| s.parse().ok()).collect();
    time("status lookup, store.with_reader", 100_000, |i| {
        authority
            .reader()
            .with_reader(|snapshot| snapshot.status_version(&serials[i % n]))
    });
    time("status lookup, ocsp StatusReader", 200_000, |i| {
        statuses.status(&parsed[i % n])
    });
    time("cached answer", 200_000, |i| {
        responder.respond(&plain[i % n], now)
    });
    time("nonce answer (signed)", 20_000, |i| {
        responder.respond(&nonce[i % n], now)
    });
    let (hits, misses) = responder.metrics().cache();
    println!("cache hits {hits}, misses {misses}");
    Ok(())
}
