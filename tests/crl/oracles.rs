//! OpenSSL as the outside oracle: a lifecycle driven through the CLI, the
//! CRLs written as files, `openssl verify` verdicts and `openssl crl -text`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{TestCa, issue, openssl_ok};
use crate::fixtures::stored_der;

/// A certificate written to a PEM file for openssl.
pub struct CertFile {
    pub serial: String,
    pub pem: PathBuf,
}

/// A published CRL written as DER and PEM files.
pub struct CrlFile {
    pub number: u64,
    pub der: PathBuf,
    pub pem: PathBuf,
}

/// Through the CLI, on the system clock: `held` is suspended before the
/// base and resumed after it, `lost` revoked (keyCompromise) after the base,
/// `late` suspended after the base; then a delta, then the next full CRL.
pub struct Scenario {
    pub ca: TestCa,
    pub held: CertFile,
    pub lost: CertFile,
    pub late: CertFile,
    pub base: CrlFile,
    pub delta: CrlFile,
    pub next_full: CrlFile,
}

impl Scenario {
    pub fn new() -> Self {
        let ca = TestCa::new();
        let authority = ca.authority();
        let [held, lost, late] = ["TP03000001", "TP03000002", "TP03000003"].map(|card| {
            let record = issue(&authority, card);
            let pem = ca.path().join(format!("{card}.pem"));
            std::fs::write(&pem, &record.certificate).unwrap();
            CertFile {
                serial: record.serial,
                pem,
            }
        });
        ca.run_ok(&["suspend", &held.serial, "--note", "card mislaid"]);
        let base = publish_with_cli(&ca, "--full");
        ca.run_ok(&["resume", &held.serial, "--note", "card found"]);
        ca.run_ok(&["revoke", &lost.serial, "--reason", "keyCompromise"]);
        ca.run_ok(&["suspend", &late.serial]);
        let delta = publish_with_cli(&ca, "--delta");
        let next_full = publish_with_cli(&ca, "--full");
        Scenario {
            ca,
            held,
            lost,
            late,
            base,
            delta,
            next_full,
        }
    }

    pub fn verdict(&self, cert: &CertFile, crls: &[&CrlFile]) -> Verdict {
        openssl_verdict(&self.ca, &cert.pem, crls)
    }
}

/// `eidca crl --full|--delta`, then the stored DER written out, and as PEM by openssl.
pub fn publish_with_cli(ca: &TestCa, kind: &str) -> CrlFile {
    let number: u64 = ca.run_ok(&["crl", kind]).trim().parse().unwrap();
    let der = ca.path().join(format!("crl-{number}.der"));
    let pem = ca.path().join(format!("crl-{number}.pem"));
    std::fs::write(&der, stored_der(&ca.authority(), number)).unwrap();
    openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path(&der),
        "-outform",
        "PEM",
        "-out",
        path(&pem),
    ]);
    CrlFile { number, der, pem }
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Revoked,
}

/// `openssl verify -crl_check -use_deltas` with these CRLs.
pub fn openssl_verdict(ca: &TestCa, cert: &Path, crls: &[&CrlFile]) -> Verdict {
    let mut options = vec!["-crl_check", "-use_deltas"];
    for crl in crls {
        options.extend(["-CRLfile", path(&crl.pem)]);
    }
    let out = ca.openssl_verify(&options, cert);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    match (out.status.success(), text.contains("certificate revoked")) {
        (true, false) if text.contains(": OK") => Verdict::Valid,
        (false, true) => Verdict::Revoked,
        _ => panic!("unexpected openssl verify outcome: {text}"),
    }
}

/// `openssl crl -text` of a DER CRL.
pub fn openssl_text(crl: &CrlFile) -> String {
    openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path(&crl.der),
        "-noout",
        "-text",
    ])
}

/// The reason OpenSSL shows for each serial (lowercase hex) of a `-text` dump.
pub fn openssl_reasons(text: &str) -> BTreeMap<String, String> {
    let mut reasons = BTreeMap::new();
    let mut serial = None;
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if let Some(hex) = line.strip_prefix("Serial Number: ") {
            serial = Some(hex.to_lowercase());
        } else if line.starts_with("X509v3 CRL Reason Code") {
            let reason = lines.next().unwrap_or_default().to_owned();
            reasons.insert(serial.take().expect("a reason follows a serial"), reason);
        }
    }
    reasons
}

/// The line after `heading` in a `-text` dump (an extension's value).
pub fn value_after<'t>(text: &'t str, heading: &str) -> Option<&'t str> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|l| l.starts_with(heading))?;
    lines.next()
}
