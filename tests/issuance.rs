//! Certificates issued from CSRs: OpenSSL and pkilint accept them, they
//! carry every SPEC §8 extension, the subject comes from the subscriber
//! record, serials are unique, and every supported CA key type signs them.

mod common;

use std::path::Path;

use common::{KeyKind, TestCa, assert_pkilint_clean, make_csr, openssl, openssl_ok};
use der::Decode;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, FreshestCrl, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};

fn load(pem_path: &Path) -> Certificate {
    let pem = std::fs::read(pem_path).unwrap();
    let (_, der) = der::pem::decode_vec(&pem).unwrap();
    Certificate::from_der(&der).unwrap()
}

/// `openssl verify` of `pem` up to the test CA's root; asserts success,
/// returns the verdict OpenSSL printed.
fn verified(ca: &TestCa, pem: &Path) -> String {
    let out = ca.openssl_verify(&[], pem);
    assert!(
        out.status.success(),
        "openssl verify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn uri(name: &GeneralName) -> String {
    match name {
        GeneralName::UniformResourceIdentifier(u) => u.to_string(),
        other => panic!("expected a URI, got {other:?}"),
    }
}

fn dp_uri(dp: &x509_cert::ext::pkix::crl::dp::DistributionPoint) -> String {
    match dp.distribution_point.as_ref().unwrap() {
        DistributionPointName::FullName(names) => uri(&names[0]),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn rsa_and_p256_certificates_of_both_profiles_verify_and_lint_clean() {
    let ca = TestCa::new();
    for (kind, card) in [
        (KeyKind::P256, "TP03000001"),
        (KeyKind::Rsa2048, "TP03000002"),
    ] {
        for profile in ["person-sign", "person-encrypt"] {
            let csr = make_csr(ca.path(), kind);
            let (_, pem) = ca.issue("A800000014", card, profile, &csr);
            let verdict = verified(&ca, &pem);
            assert!(
                verdict.trim_end().ends_with(": OK"),
                "{kind:?} {profile}: {verdict}"
            );
            assert_pkilint_clean("lint_pkix_cert", &[], &pem);
        }
    }
}

#[test]
fn every_spec_extension_is_present_with_the_right_criticality_and_content() {
    let ca = TestCa::new();
    let csr = make_csr(ca.path(), KeyKind::P256);
    let (_, pem) = ca.issue("A800000014", "TP03000001", "person-sign", &csr);
    let cert = load(&pem);
    let tbs = cert.tbs_certificate();
    let issuing = load(&ca.issuing_cert());

    let (critical, bc) = tbs
        .get_extension::<BasicConstraints>()
        .unwrap()
        .expect("basicConstraints");
    assert!(!bc.ca, "end entity must not be a CA");
    assert!(critical);

    let (critical, ku) = tbs.get_extension::<KeyUsage>().unwrap().expect("keyUsage");
    assert!(critical, "keyUsage must be critical");
    assert_eq!(
        ku.0,
        KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
    );

    let (critical, eku) = tbs
        .get_extension::<ExtendedKeyUsage>()
        .unwrap()
        .expect("extendedKeyUsage");
    assert!(!critical);
    assert_eq!(
        eku.0,
        vec![
            const_oid::db::rfc5280::ID_KP_CLIENT_AUTH,
            const_oid::db::rfc5280::ID_KP_EMAIL_PROTECTION
        ]
    );

    let (_, ski) = tbs
        .get_extension::<SubjectKeyIdentifier>()
        .unwrap()
        .expect("subjectKeyIdentifier");
    let key_bits = tbs.subject_public_key_info().subject_public_key.raw_bytes();
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, key_bits);
    assert_eq!(
        ski.0.as_bytes(),
        sha1.as_ref(),
        "SKI is the RFC 5280 SHA-1 method"
    );

    let (_, aki) = tbs
        .get_extension::<AuthorityKeyIdentifier>()
        .unwrap()
        .expect("authorityKeyIdentifier");
    let (_, ca_ski) = issuing
        .tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .unwrap()
        .unwrap();
    assert_eq!(aki.key_identifier.unwrap().as_bytes(), ca_ski.0.as_bytes());

    let base = "http://127.0.0.1:8080";
    let (_, cdp) = tbs
        .get_extension::<CrlDistributionPoints>()
        .unwrap()
        .expect("cRLDistributionPoints");
    assert_eq!(dp_uri(&cdp.0[0]), format!("{base}/crl/full.crl"));
    let (_, freshest) = tbs
        .get_extension::<FreshestCrl>()
        .unwrap()
        .expect("freshestCRL");
    assert_eq!(dp_uri(&freshest.0[0]), format!("{base}/crl/delta.crl"));

    let (critical, aia) = tbs
        .get_extension::<AuthorityInfoAccessSyntax>()
        .unwrap()
        .expect("authorityInfoAccess");
    assert!(!critical);
    let access: Vec<(String, String)> = aia
        .0
        .iter()
        .map(|d| (d.access_method.to_string(), uri(&d.access_location)))
        .collect();
    assert_eq!(
        access,
        vec![
            ("1.3.6.1.5.5.7.48.1".to_owned(), format!("{base}/ocsp")),
            (
                "1.3.6.1.5.5.7.48.2".to_owned(),
                format!("{base}/ca/issuing-ca.crt")
            ),
        ]
    );

    let (_, policies) = tbs
        .get_extension::<CertificatePolicies>()
        .unwrap()
        .expect("certificatePolicies");
    assert_eq!(
        policies.0[0].policy_identifier.to_string(),
        "1.3.6.1.4.1.32473.1.1"
    );

    assert!(
        tbs.validity().not_after.to_unix_duration()
            <= issuing
                .tbs_certificate()
                .validity()
                .not_after
                .to_unix_duration()
    );
}

#[test]
fn subject_comes_from_the_subscriber_record_not_the_csr() {
    let ca = TestCa::new();
    let csr = make_csr(ca.path(), KeyKind::P256);
    let (_, pem) = ca.issue("A800000014", "TP03000001", "person-sign", &csr);
    let subject = openssl_ok(&[
        "x509",
        "-in",
        pem.to_str().unwrap(),
        "-noout",
        "-subject",
        "-nameopt",
        "RFC2253",
    ]);
    assert_eq!(
        subject.trim(),
        "subject=serialNumber=A800000014,CN=Test Subscriber,C=TW"
    );
    assert!(!subject.contains("Mallory"));
}

#[test]
fn encryption_profile_key_usage_follows_the_key_type() {
    let ca = TestCa::new();
    for (kind, card, expected) in [
        (KeyKind::P256, "TP03000001", KeyUsages::KeyAgreement),
        (KeyKind::Rsa2048, "TP03000002", KeyUsages::KeyEncipherment),
    ] {
        let (_, pem) = ca.issue(
            "A800000014",
            card,
            "person-encrypt",
            &make_csr(ca.path(), kind),
        );
        let cert = load(&pem);
        let (_, ku) = cert
            .tbs_certificate()
            .get_extension::<KeyUsage>()
            .unwrap()
            .unwrap();
        assert_eq!(ku.0, flagset::FlagSet::from(expected), "{kind:?}");
    }
}

#[test]
fn p384_key_in_a_sha256_signed_csr_gets_a_p384_certificate() {
    // The rcgen trap of PKI-NOTES: the key type comes from the SPKI, not the signature.
    let ca = TestCa::new();
    let dir = ca.path();
    let key = dir.join("p384.key");
    let csr = dir.join("p384.csr");
    openssl_ok(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl_ok(&[
        "req",
        "-new",
        "-sha256",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=x",
        "-out",
        csr.to_str().unwrap(),
    ]);
    let (_, pem) = ca.issue("A800000014", "TP03000001", "person-sign", &csr);
    let text = openssl_ok(&["x509", "-in", pem.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("NIST CURVE: P-384"), "{text}");
    assert!(verified(&ca, &pem).contains(": OK"));
}

#[test]
fn serials_are_unique_positive_and_at_least_64_bits() {
    let ca = TestCa::new();
    let authority = ca.authority();
    let mut seen = std::collections::HashSet::new();
    for i in 0..300 {
        let subscriber = format!("A{:09}", i % 50);
        let card = format!("TP{:08}", i % 50);
        let record = common::issue_for(&authority, &subscriber, &card, "person-sign");
        let bytes = hex::decode(&record.serial).unwrap();
        assert!(
            bytes.len() * 8 >= 64 && bytes.len() <= 20,
            "{}",
            record.serial
        );
        assert!(
            bytes[0] & 0x80 == 0 && bytes[0] != 0,
            "positive, minimal: {}",
            record.serial
        );
        assert!(seen.insert(record.serial), "serial repeated");
    }
}

/// The signer loads RSA (2048–4096) and P-384 CA keys (from PKCS#8 files,
/// or generated in the token on the token pass) and signs certificates
/// OpenSSL accepts.
#[test]
fn rsa_and_p384_issuing_ca_keys_sign_valid_certificates() {
    for name in ["rsa-2048", "rsa-4096", "ec-p384"] {
        let ca = TestCa::new();
        let keys = ca.path().join("keys");
        let cert = keys.join("issuing-ca.crt");
        let ext = keys.join("ext.cnf");
        std::fs::write(&ext, "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n").unwrap();
        let csr = ca.new_issuing_key(name);
        openssl_ok(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            keys.join("root-ca.crt").to_str().unwrap(),
            "-CAkey",
            keys.join("root-ca.key").to_str().unwrap(),
            "-days",
            "3650",
            "-extfile",
            ext.to_str().unwrap(),
            "-set_serial",
            "0x4242",
            "-out",
            cert.to_str().unwrap(),
        ]);
        let (_, pem) = ca.issue(
            "A800000014",
            "TP03000001",
            "person-sign",
            &make_csr(ca.path(), KeyKind::P256),
        );
        let out = ca.openssl_verify(&[], &pem);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let crl_number = ca.run_ok(&["crl", "--full"]);
        assert_eq!(crl_number.trim(), "1");
        let conn = rusqlite::Connection::open(ca.store_path()).unwrap();
        let der: Vec<u8> = conn
            .query_row("SELECT der FROM crls WHERE number = 1", [], |r| r.get(0))
            .unwrap();
        let crl = ca.path().join("full.crl");
        std::fs::write(&crl, der).unwrap();
        let out = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            crl.to_str().unwrap(),
            "-CAfile",
            cert.to_str().unwrap(),
            "-noout",
        ]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("verify OK"),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
