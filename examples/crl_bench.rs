//! CRL benchmark (issue 3; results in BENCHMARKS.md, section "CRLs").
//!
//! Fills a store with suspended and revoked certificates, then times the
//! full and the delta CRL through the production code paths. Run each step
//! as its own release-mode process under `/usr/bin/time -v`, so that the
//! peak RSS reported is that step's alone:
//!
//! ```text
//! cargo build --release --example crl_bench
//! B=target/release/examples/crl_bench
//! $B fill --data /tmp/crl-1m --listed 1000000   # not timed
//! $B build-full --data /tmp/crl-1m              # read + encode + sign
//! $B publish-full --data /tmp/crl-1m            # ... + commit + the delta that follows
//! $B change --data /tmp/crl-1m --changes 10000  # not timed
//! $B build-delta --data /tmp/crl-1m             # read + diff + encode + sign
//! $B publish-delta --data /tmp/crl-1m           # ... + commit
//! $B plan --data /tmp/crl-1m                    # EXPLAIN QUERY PLAN of both queries
//! ```
//!
//! `fill` and `change` write rows straight through the store functions, in
//! one transaction, without CSRs, signatures or audit records: each
//! certificate gets a 1,000-byte dummy DER, an issue row and a suspend or
//! revoke row in its history, and stays valid for two more years. The
//! development configuration and hierarchy (`ca-config/eidca.toml`, ECDSA
//! P-256 issuing CA) sign the CRLs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use eidca::authority::{Authority, AuthorityError};
use eidca::clock::SystemClock;
use eidca::config::{Config, ConfigSource};
use eidca::domain::{CertStatus, Channel, RevocationReason, Serial};
use eidca::revocation::CrlKind;
use eidca::store::certificates::{self as certs, NewCertificate};
use eidca::store::crls;
use ring::rand::{SecureRandom, SystemRandom};
use time::Duration;

/// Size of the stand-in for a certificate's DER (a real eID certificate is
/// 0.9–1.3 kB): it makes every certificates row as wide as in production.
const DUMMY_DER_LEN: usize = 1000;

#[derive(Parser)]
struct Cli {
    /// Data directory of the benchmark store.
    #[arg(long, global = true, default_value = "/tmp/eidca-crl-bench")]
    data: PathBuf,
    #[command(subcommand)]
    step: Step,
}

#[derive(Subcommand)]
enum Step {
    /// Adds `listed` suspended/revoked and `good` good certificates.
    Fill {
        #[arg(long)]
        listed: u64,
        #[arg(long, default_value_t = 0)]
        good: u64,
    },
    /// Builds and signs the next full CRL without recording it.
    BuildFull,
    /// Publishes a full CRL (and, as always, a delta right after it).
    PublishFull,
    /// Changes `changes` suspended certificates after the newest full CRL:
    /// half are resumed, half revoked.
    Change {
        #[arg(long)]
        changes: u64,
    },
    /// Builds and signs the next delta CRL without recording it.
    BuildDelta,
    /// Publishes a delta CRL against the newest full CRL.
    PublishDelta,
    /// Prints SQLite's plan for the full and the delta query.
    Plan,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let config = Config::load(&ConfigSource {
        path: concat!(env!("CARGO_MANIFEST_DIR"), "/ca-config/eidca.toml").into(),
        listen: None,
        data_dir: cli.data.clone(),
    })?;
    let authority = Authority::open(config, Arc::new(SystemClock))?;
    match cli.step {
        Step::Fill { listed, good } => fill(&authority, listed, good)?,
        Step::BuildFull => timed("build-full", || authority.build_full_crl())?,
        Step::PublishFull => timed("publish-full", || {
            authority.publish(CrlKind::Full, "bench").map(no_der)
        })?,
        Step::Change { changes } => change(&authority, changes)?,
        Step::BuildDelta => timed("build-delta", || authority.build_delta_crl())?,
        Step::PublishDelta => timed("publish-delta", || {
            authority.publish(CrlKind::Delta, "bench").map(no_der)
        })?,
        Step::Plan => plan(&authority)?,
    }
    Ok(())
}

fn no_der(summary: crls::CrlSummary) -> (crls::CrlSummary, Vec<u8>) {
    (summary, Vec::new())
}

/// Runs one CRL step and prints its wall time, entries and DER size.
fn timed(
    step: &str,
    run: impl FnOnce() -> Result<(crls::CrlSummary, Vec<u8>), AuthorityError>,
) -> Result<(), AuthorityError> {
    let start = Instant::now();
    let (summary, der) = run()?;
    let elapsed = start.elapsed();
    let size = if der.is_empty() {
        String::new()
    } else {
        format!(", {:.1} MB DER", der.len() as f64 / 1e6)
    };
    println!(
        "{step}: CRL {} ({}), {} entries{size}, {:.1} ms",
        summary.number,
        summary.kind.name(),
        summary.entries,
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

fn fill(authority: &Authority, listed: u64, good: u64) -> Result<(), AuthorityError> {
    let start = Instant::now();
    let now = authority.now();
    let rng = SystemRandom::new();
    let der = vec![0x30; DUMMY_DER_LEN];
    authority
        .store()
        .write(|tx| -> Result<(), AuthorityError> {
            certs::upsert_subscriber_and_card(
                tx,
                "A800000001",
                "Bench Subscriber",
                "TP00000001",
                now,
            )?;
            for i in 0..listed + good {
                let mut bytes = [0u8; 16];
                rng.fill(&mut bytes)
                    .map_err(|_| AuthorityError::Internal("rng".into()))?;
                let serial = Serial::from_random(bytes);
                let issued = now - Duration::days(300);
                let cert = NewCertificate {
                    serial: &serial,
                    subscriber_code: "A800000001",
                    card_number: "TP00000001",
                    profile: "person-sign",
                    not_before: issued,
                    not_after: now + Duration::days(730),
                    der: &der,
                };
                certs::insert_certificate(tx, &cert, Channel::Ra, issued)?;
                if i < listed {
                    let (status, action) = listed_status(i);
                    let at = now - Duration::days((i % 290) as i64) - Duration::seconds(1);
                    certs::record_status(tx, &serial, status, at, action, Channel::Ra, None)?;
                }
            }
            Ok(())
        })?;
    println!(
        "fill: {listed} listed + {good} good certificates in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One in three listed certificates is suspended, the others revoked with
/// each accepted reason in turn.
fn listed_status(i: u64) -> (CertStatus, &'static str) {
    if i.is_multiple_of(3) {
        (CertStatus::Suspended, "suspend")
    } else {
        let reason = RevocationReason::ALL[(i as usize) % RevocationReason::ALL.len()];
        (CertStatus::Revoked(reason), "revoke")
    }
}

fn change(authority: &Authority, changes: u64) -> Result<(), AuthorityError> {
    let now = authority.now();
    authority
        .store()
        .write(|tx| -> Result<(), AuthorityError> {
            if crls::latest(tx, CrlKind::Full)?.is_none() {
                return Err(AuthorityError::Conflict(
                    "publish a full CRL first: changes count from a base".into(),
                ));
            }
            let serials: Vec<String> = tx
                .prepare("SELECT serial FROM certificates WHERE status = 'suspended' LIMIT ?1")?
                .query_map([changes], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if (serials.len() as u64) < changes {
                return Err(AuthorityError::Conflict(format!(
                    "only {} suspended certificates left",
                    serials.len()
                )));
            }
            for (i, hex) in serials.iter().enumerate() {
                let serial: Serial = hex
                    .parse()
                    .map_err(|_| AuthorityError::Internal(hex.clone()))?;
                let (status, action) = if i % 2 == 0 {
                    (CertStatus::Good, "resume")
                } else {
                    (
                        CertStatus::Revoked(RevocationReason::KeyCompromise),
                        "revoke",
                    )
                };
                certs::record_status(tx, &serial, status, now, action, Channel::Ra, None)?;
            }
            Ok(())
        })?;
    println!("change: {changes} certificates resumed or revoked after the newest full CRL");
    Ok(())
}

fn plan(authority: &Authority) -> Result<(), AuthorityError> {
    authority.store().read(|tx| -> Result<(), AuthorityError> {
        for (name, sql) in [
            ("full CRL (for_each_listed)", crls::LISTED_SQL),
            ("delta CRL (changes_since)", crls::CHANGES_SQL),
        ] {
            println!("{name}:\n{sql}\nQUERY PLAN");
            let mut stmt = tx.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let steps = stmt.query_map([0], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut depth = std::collections::HashMap::from([(0, 0)]);
            for step in steps {
                let (id, parent, detail) = step?;
                let level = depth.get(&parent).copied().unwrap_or(0) + 1;
                depth.insert(id, level);
                println!("{}{detail}", "  ".repeat(level - 1));
            }
            println!();
        }
        Ok(())
    })
}
