//! RA API benchmark (loopback, bounded): issuance through
//! `POST /api/v1/certificates` from concurrent clients with pre-made P-256
//! CSRs, then a suspend/resume mix on the issued certificates.
//!
//! It builds a throw-away CA (new development hierarchy, the development
//! config, an empty store) in a work directory, writes the CSRs there (so
//! `bench/openssl-ca.sh` can sign the very same ones), starts the release
//! `eidca serve` on an ephemeral port, and prints certificates/s and
//! latency percentiles. Every answer is durable: `synchronous=FULL`.
//!
//! ```sh
//! cargo build --release --bin eidca --example ra_api
//! target/release/examples/ra_api --clients 8 --certs 20000 --mix-seconds 10 --dir /tmp/ra-bench \
//!     [--server path/to/eidca]
//! bench/openssl-ca.sh /tmp/ra-bench 2000
//! ```
//!
//! The client is a minimal HTTP/1.1 keep-alive client over `TcpStream`, so
//! that the two cores go to the server, not to the load generator.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "dev-officer-token";
const DEV_CONFIG: &str = include_str!("../ca-config/eidca.toml");

struct Options {
    clients: usize,
    certs: usize,
    mix_seconds: u64,
    dir: PathBuf,
    /// The `eidca` binary; default: `target/release/eidca` beside this example.
    server: Option<PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        clients: 8,
        certs: 20_000,
        mix_seconds: 10,
        dir: std::env::temp_dir().join("eidca-ra-bench"),
        server: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--clients" => o.clients = number()?.max(1),
            "--certs" => o.certs = number()?.max(1),
            "--mix-seconds" => o.mix_seconds = number()? as u64,
            "--dir" => o.dir = PathBuf::from(value),
            "--server" => o.server = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("ra_api: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let o = options()?;
    let config = prepare_ca(&o.dir)?;
    let started = Instant::now();
    let csrs = make_csrs(&o.dir.join("csr"), o.certs)?;
    eprintln!(
        "{} P-256 CSRs in {:.1}s",
        csrs.len(),
        started.elapsed().as_secs_f64()
    );
    let mut server = Server::start(o.server.as_deref(), &config, &o.dir.join("data"))?;
    let result = bench(&server.addr, &o, csrs);
    server.stop();
    result
}

fn bench(addr: &str, o: &Options, csrs: Vec<String>) -> Result<(), String> {
    let total = csrs.len();
    let csrs = Arc::new(csrs);
    let next = Arc::new(AtomicUsize::new(0));
    let serials = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let started = Instant::now();
    let latencies = run_clients(o.clients, addr, |_, conn| {
        let mut times = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(csr) = csrs.get(i) else { break };
            let body = serde_json::json!({
                // Two certificates (sign, encrypt) per card, one card per subscriber.
                "subscriber": {"code": format!("A{:09}", i / 2), "name": "Bench Subscriber"},
                "card_number": format!("TB{:08}", i / 2),
                "profile": if i.is_multiple_of(2) { "person-sign" } else { "person-encrypt" },
                "csr": csr,
            })
            .to_string();
            let t = Instant::now();
            let (status, answer) = conn.post("/api/v1/certificates", &body)?;
            times.push(t.elapsed());
            if status != 201 {
                return Err(format!(
                    "issue answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                ));
            }
            let record: serde_json::Value =
                serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
            let serial = record["serial"].as_str().unwrap_or_default().to_owned();
            serials.lock().map_err(|e| e.to_string())?.push(serial);
        }
        Ok(times)
    })?;
    report("issue", total, started.elapsed(), latencies);

    if o.mix_seconds == 0 {
        return Ok(());
    }
    let serials: Arc<Vec<String>> = Arc::new(std::mem::take(
        &mut *serials.lock().map_err(|e| e.to_string())?,
    ));
    let until = Instant::now() + Duration::from_secs(o.mix_seconds);
    let started = Instant::now();
    let clients = o.clients;
    let latencies = run_clients(clients, addr, |client, conn| {
        let mut times = Vec::new();
        // Each client cycles through its own certificates: suspend, then resume.
        let mine: Vec<&String> = serials.iter().skip(client).step_by(clients).collect();
        let mut round: u32 = 0;
        while Instant::now() < until {
            let action = if round.is_multiple_of(2) {
                "suspend"
            } else {
                "resume"
            };
            for serial in &mine {
                if Instant::now() >= until {
                    break;
                }
                let t = Instant::now();
                let (status, answer) =
                    conn.post(&format!("/api/v1/certificates/{serial}/{action}"), "{}")?;
                times.push(t.elapsed());
                if status != 200 {
                    return Err(format!(
                        "{action} answered {status}: {}",
                        String::from_utf8_lossy(&answer)
                    ));
                }
            }
            round += 1;
        }
        Ok(times)
    })?;
    let done = latencies.len();
    report("suspend/resume", done, started.elapsed(), latencies);
    Ok(())
}

/// Runs `work` on `n` client threads, each with its own connection;
/// returns every latency.
fn run_clients(
    n: usize,
    addr: &str,
    work: impl Fn(usize, &mut Conn) -> Result<Vec<Duration>, String> + Sync,
) -> Result<Vec<Duration>, String> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|client| {
                let work = &work;
                scope.spawn(move || {
                    let mut conn = Conn::open(addr)?;
                    work(client, &mut conn)
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(
                handle
                    .join()
                    .map_err(|_| "client thread panicked".to_owned())??,
            );
        }
        Ok(all)
    })
}

fn report(what: &str, count: usize, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{what}: {count} in {:.2}s = {:.0}/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.90),
        at(0.99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
}

/// A new development hierarchy and config under `dir`; returns the config path.
fn prepare_ca(dir: &Path) -> Result<PathBuf, String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("clean {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    eidca::devkeys::generate(&dir.join("keys"), time::OffsetDateTime::now_utc())
        .map_err(|e| e.to_string())?;
    let config = dir.join("eidca.toml");
    std::fs::write(&config, DEV_CONFIG.replace("../keys-dev/", "keys/"))
        .map_err(|e| e.to_string())?;
    Ok(config)
}

/// `n` P-256 CSRs, written as `dir/<i>.csr` and returned as PEM.
fn make_csrs(dir: &Path, n: usize) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    (0..n)
        .map(|i| {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| e.to_string())?;
            let mut params = rcgen::CertificateParams::default();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, format!("bench {i}"));
            let pem = params
                .serialize_request(&key)
                .and_then(|csr| csr.pem())
                .map_err(|e| e.to_string())?;
            std::fs::write(dir.join(format!("{i}.csr")), &pem).map_err(|e| e.to_string())?;
            Ok(pem)
        })
        .collect()
}

/// The release `eidca serve` beside this example's directory.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(binary: Option<&Path>, config: &Path, data: &Path) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let eidca = binary
            .map(Path::to_path_buf)
            .or_else(|| {
                exe.parent()
                    .and_then(Path::parent)
                    .map(|dir| dir.join("eidca"))
            })
            .filter(|p| p.exists())
            .ok_or("build the server first: cargo build --release --bin eidca")?;
        let mut child = Command::new(eidca)
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .ok_or("server exited before listening")?
                .map_err(|e| e.to_string())?;
            if let Some(url) = line.split("listening on http://").nth(1) {
                break url.trim().to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("[serve] {line}");
            }
        });
        Ok(Server { child, addr })
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 connection that understands Content-Length answers.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

impl Conn {
    fn open(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Conn {
            reader: BufReader::new(stream),
            writer,
            host: addr.to_owned(),
        })
    }

    fn post(&mut self, path: &str, body: &str) -> Result<(u16, Vec<u8>), String> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.writer
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        self.read_answer()
    }

    fn read_answer(&mut self) -> Result<(u16, Vec<u8>), String> {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut length = 0;
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(|_| "bad Content-Length")?;
            }
        }
        let mut body = vec![0; length];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }
}
