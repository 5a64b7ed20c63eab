//! CRL benchmark (results in BENCHMARKS.md, section "CRLs").
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
//! `fill` and `change` write rows straight through the store's queries on a
//! store of their own (benchmark tooling, not the service), in one transaction, without CSRs, signatures or audit records: each
//! certificate gets a 1,000-byte dummy DER, an issue row and a suspend or
//! revoke row in its history, and stays valid for two more years. The
//! development configuration and hierarchy (`ca-config/eidca.toml`, ECDSA
//! P-256 issuing CA) sign the CRLs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use eidca::authority::{Authority, AuthorityError, SignedCrl};
use eidca::clock::SystemClock;
use eidca::config::{Config, ConfigSource};
use eidca::domain::{CertStatus, Channel, RevocationReason, Serial};
use eidca::revocation::{CrlKind, CrlSummary};
use eidca::store::certificates::NewCertificate;
use eidca::store::{Store, StoreError, crls};
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
    let store_path = config.store_path.clone();
    let authority = Authority::open(config, Arc::new(SystemClock))?;
    let draft = |kind| authority.draft_crl(kind).map(SignedCrl::into_parts);
    match cli.step {
        Step::Fill { listed, good } => {
            fill(&Store::open(&store_path)?, listed, good, authority.now())?
        }
        Step::BuildFull => timed("build-full", || draft(CrlKind::Full))?,
        Step::PublishFull => timed("publish-full", || {
            authority.publish(CrlKind::Full, "bench").map(no_der)
        })?,
        Step::Change { changes } => change(&authority, &store_path, changes)?,
        Step::BuildDelta => timed("build-delta", || draft(CrlKind::Delta))?,
        Step::PublishDelta => timed("publish-delta", || {
            authority.publish(CrlKind::Delta, "bench").map(no_der)
        })?,
        Step::Plan => plan(&store_path)?,
    }
    Ok(())
}

fn no_der(summary: CrlSummary) -> (CrlSummary, Vec<u8>) {
    (summary, Vec::new())
}

/// Runs one CRL step and prints its wall time, entries and DER size.
fn timed(
    step: &str,
    run: impl FnOnce() -> Result<(CrlSummary, Vec<u8>), AuthorityError>,
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

fn fill(
    store: &Store,
    listed: u64,
    good: u64,
    now: time::OffsetDateTime,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let rng = SystemRandom::new();
    let der = vec![0x30; DUMMY_DER_LEN];
    store.write(|tx| -> Result<(), Box<dyn std::error::Error>> {
        tx.register_subscriber_and_card("A800000001", "Bench Subscriber", "TP00000001", now)?;
        for i in 0..listed + good {
            let mut bytes = [0u8; 16];
            rng.fill(&mut bytes)
                .map_err(|_| "random number generator failed")?;
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
            tx.insert_certificate(&cert, Channel::Ra, issued)?;
            if i < listed {
                let (status, action) = listed_status(i);
                let at = now - Duration::days((i % 290) as i64) - Duration::seconds(1);
                tx.record_status(&serial, status, at, action, Channel::Ra, None)?;
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

fn change(
    authority: &Authority,
    store_path: &std::path::Path,
    changes: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let now = authority.now();
    if authority.latest_crls()?.full.is_none() {
        return Err("publish a full CRL first: changes count from a base".into());
    }
    // Which certificates to change is the benchmark's own choice, not a
    // query of the store's: read with a connection of its own.
    let serials: Vec<Serial> = rusqlite::Connection::open(store_path)?
        .prepare("SELECT serial FROM certificates WHERE status = 'suspended' LIMIT ?1")?
        .query_map([changes], |r| r.get::<_, String>(0))?
        .map(|hex| Ok(hex?.parse::<Serial>()?))
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    if (serials.len() as u64) < changes {
        return Err(format!("only {} suspended certificates left", serials.len()).into());
    }
    Store::open(store_path)?.write(|tx| -> Result<(), StoreError> {
        for (i, serial) in serials.iter().enumerate() {
            let (status, action) = if i % 2 == 0 {
                (CertStatus::Good, "resume")
            } else {
                (
                    CertStatus::Revoked(RevocationReason::KeyCompromise),
                    "revoke",
                )
            };
            tx.record_status(serial, status, now, action, Channel::Ra, None)?;
        }
        Ok(())
    })?;
    println!("change: {changes} certificates resumed or revoked after the newest full CRL");
    Ok(())
}

fn plan(store_path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let tx = rusqlite::Connection::open(store_path)?;
    {
        for (name, sql) in [
            ("full CRL (for_each_listed)", crls::LISTED_SQL),
            ("delta CRL (history_since)", crls::CHANGES_SQL),
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
    }
    Ok(())
}
