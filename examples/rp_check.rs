//! A relying party against a running eidca: issues certificates,
//! suspends, resumes and revokes them at random through the RA API, polls
//! the CRLs and OCSP as a real relying party does, and prints the observed
//! delay per channel against the sync window of SPEC §6.
//!
//! ```text
//! cargo run --example rp_check -- --url http://127.0.0.1:8080 --seconds 30
//! ```
//!
//! Exits non-zero when a promise was broken. It changes real certificates:
//! point it at a development or staging service only.

// The tests' CRL decoder; the simulator reads only part of what it decodes.
#[allow(dead_code)]
#[path = "../tests/common/crl.rs"]
mod crl;
#[path = "../tests/rp/mod.rs"]
mod rp;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Relying-party simulator: measures the sync window of a running eidca")]
struct Args {
    /// Base URL of the service.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Officer token for the RA API.
    #[arg(
        long,
        env = "EIDCA_RP_CHECK_TOKEN",
        default_value = "dev-officer-token"
    )]
    token: String,
    /// Seconds during which the driver changes statuses.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Certificates issued for the run.
    #[arg(long, default_value_t = 30)]
    certificates: usize,
    /// Shortest pause between two changes, in milliseconds.
    #[arg(long, default_value_t = 500)]
    min_pause_ms: u64,
    /// Longest pause between two changes, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    max_pause_ms: u64,
    /// Seconds added to each promised bound for polling and HTTP.
    #[arg(long, default_value_t = 1.0)]
    allowance: f64,
    /// Seed of the random choices (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let settings = rp::Settings {
        base_url: args.url.trim_end_matches('/').to_owned(),
        token: args.token,
        certificates: args.certificates,
        driving: Duration::from_secs(args.seconds),
        pause_ms: (args.min_pause_ms, args.max_pause_ms.max(args.min_pause_ms)),
        allowance: Duration::from_secs_f64(args.allowance),
        seed,
    };
    eprintln!("rp_check against {} (seed {seed})", settings.base_url);
    match rp::run(&settings) {
        Ok(outcome) => {
            println!(
                "fetched {} CRLs and {} OCSP answers",
                outcome.crls_fetched, outcome.ocsp_fetched
            );
            print!("{}", outcome.report);
            if outcome.report.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("rp_check: {e}");
            ExitCode::from(2)
        }
    }
}
