//! Fills a store with many issued certificates for the OCSP benchmark
//! (`bench/ocsp-load.sh`).
//!
//! Every certificate is real: built and signed by the library's issuance
//! code (`issuance::build_certificate`) with a fresh random serial, stored
//! with its status history and audit record, exactly the rows
//! `Authority::issue` writes. Two things differ, both for speed: every
//! certificate certifies the same P-256 key (one CSR, verified once), and
//! certificates commit 2,000 to a transaction instead of one each
//! (`synchronous=FULL` costs an fsync per commit, about 3 ms here). 1 % of
//! the certificates are suspended and 1 % revoked (keyCompromise).
//!
//! ```sh
//! cargo run --release --example fill_store -- --data /tmp/bench/data --count 100000 --out /tmp/bench
//! ```
//!
//! Writes `serials.txt` (`serial status`, one a line) and `index.txt` (the
//! same certificates as an OpenSSL CA database, for `openssl ocsp -index`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use eidca::authority::{Authority, rfc3339};
use eidca::clock::SystemClock;
use eidca::config::{Config, ConfigSource};
use eidca::domain::{CertStatus, Channel, RevocationReason, Serial};
use eidca::issuance::{CertificateUrls, SubscriberIdentity, build_certificate, verify_csr};
use eidca::store::audit::{AuditEvent, Issued, StatusChanged};
use eidca::store::certificates::NewCertificate;
use eidca::store::{Change, Store};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "ca-config/eidca.toml")]
    config: PathBuf,
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Where serials.txt and index.txt go.
    #[arg(long)]
    out: PathBuf,
}

const BATCH: usize = 2_000;
const PROFILE: &str = "person-sign";

/// The audit log's actor for the rows this tool writes.
const ACTOR: &str = "fill_store";

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let source = ConfigSource {
        path: args.config.clone(),
        listen: None,
        data_dir: args.data.clone(),
    };
    let config = Config::load(&source)?;
    // The rows go in through a store of the tool's own: it writes what
    // issuance would, without the authority's one-at-a-time transactions.
    let store = Store::open(&config.store_path)?;
    let authority = Authority::open(config, Arc::new(SystemClock))?;
    let csr = {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let request =
            rcgen::CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?;
        verify_csr(request.der())?
    };
    let profile = authority
        .config()
        .profiles
        .get(PROFILE)
        .ok_or("the config has no person-sign profile")?;
    let urls = CertificateUrls::under(&authority.config().base_url);
    let rng = SystemRandom::new();
    let (mut serials, mut index) = (String::new(), String::new());
    let started = std::time::Instant::now();
    for batch_start in (0..args.count).step_by(BATCH) {
        let now = authority.now();
        let mut issued = Vec::with_capacity(BATCH);
        for n in batch_start..(batch_start + BATCH).min(args.count) {
            // Two certificates per card, as a card carries a signature and
            // an encryption key.
            let identity = SubscriberIdentity::new(
                &format!("A{:09}", n / 2),
                &format!("Subscriber {}", n / 2),
                &format!("TP{:08}", n / 2),
            )?;
            let mut bytes = [0u8; 16];
            rng.fill(&mut bytes).map_err(|_| "no randomness")?;
            let serial = Serial::from_random(bytes);
            let cert = build_certificate(
                &identity,
                &authority.config().country,
                profile,
                &csr,
                &serial,
                &urls,
                authority.issuing_ca(),
                now,
            )?;
            let status = match n % 100 {
                0 => CertStatus::Suspended,
                1 => CertStatus::Revoked(RevocationReason::KeyCompromise),
                _ => CertStatus::Good,
            };
            issued.push((identity, serial, cert, status));
        }
        store.write(|tx| -> Result<(), Error> {
            for (identity, serial, cert, status) in &issued {
                store_one(tx, identity, serial, cert, *status, now)?;
            }
            Ok(())
        })?;
        for (_, serial, cert, status) in &issued {
            writeln!(serials, "{} {}", serial.to_hex(), status.name())?;
            writeln!(
                index,
                "{}",
                index_line(serial, cert.not_after, *status, now)
            )?;
        }
        eprint!("\r{} certificates", batch_start + issued.len());
    }
    eprintln!(" in {:.1?}", started.elapsed());
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("serials.txt"), serials)?;
    std::fs::write(args.out.join("index.txt"), index)?;
    Ok(())
}

/// The rows `Authority::issue` (and a later suspend or revoke) would write.
fn store_one(
    tx: &Change<'_>,
    identity: &SubscriberIdentity,
    serial: &Serial,
    cert: &eidca::issuance::IssuedCertificate,
    status: CertStatus,
    now: OffsetDateTime,
) -> Result<(), Error> {
    tx.register_subscriber_and_card(&identity.code, &identity.name, &identity.card_number, now)?;
    let new = NewCertificate {
        serial,
        subscriber_code: &identity.code,
        card_number: &identity.card_number,
        profile: PROFILE,
        not_before: cert.not_before,
        not_after: cert.not_after,
        der: &cert.der,
    };
    tx.insert_certificate(&new, Channel::Cli, now)?;
    let issued = Issued {
        serial,
        card_number: &identity.card_number,
        certificate_sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, &cert.der)),
        channel: Channel::Cli.name(),
        not_after: rfc3339(cert.not_after)?,
        profile: PROFILE,
        subscriber_code: &identity.code,
    };
    tx.audit(now, ACTOR, &AuditEvent::Issued(issued))?;
    let action = match status {
        CertStatus::Good => return Ok(()),
        CertStatus::Suspended => "suspend",
        CertStatus::Revoked(_) => "revoke",
    };
    tx.record_status(serial, status, now, action, Channel::Cli, None)?;
    let changed = StatusChanged {
        serial,
        action,
        card_number: &identity.card_number,
        channel: Channel::Cli.name(),
        from: CertStatus::Good.name(),
        reason: status.crl_reason().map(|r| r.name()),
        to: status.name(),
    };
    tx.audit(now, ACTOR, &AuditEvent::StatusChanged(changed))?;
    Ok(())
}

/// One line of an OpenSSL `index.txt`: status, expiry, revocation, serial,
/// file name, subject.
fn index_line(
    serial: &Serial,
    not_after: OffsetDateTime,
    status: CertStatus,
    now: OffsetDateTime,
) -> String {
    let asn1 = |t: OffsetDateTime| {
        let format = time::macros::format_description!(
            "[year repr:last_two][month][day][hour][minute][second]Z"
        );
        t.format(&format).unwrap_or_default()
    };
    let (flag, revoked) = match status {
        CertStatus::Good => ("V", String::new()),
        CertStatus::Suspended => (
            "R",
            format!("{},certificateHold,holdInstructionNone", asn1(now)),
        ),
        CertStatus::Revoked(_) => ("R", format!("{},keyCompromise", asn1(now))),
    };
    let serial = serial.to_hex().to_uppercase();
    format!(
        "{flag}\t{}\t{revoked}\t{serial}\tunknown\t/CN={serial}",
        asn1(not_after)
    )
}
