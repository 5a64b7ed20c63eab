//! Issue 2: certificates issued from CSRs are accepted by OpenSSL and
//! pkilint, carry every SPEC §8 extension, and bad input changes nothing.

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

/// Row counts of every table: the store's observable state.
fn table_counts(ca: &TestCa) -> Vec<(String, i64)> {
    if !ca.store_path().exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(ca.store_path()).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let n = conn
                .query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))
                .unwrap();
            (t, n)
        })
        .collect()
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
    let root = ca.root_cert();
    let issuing = ca.issuing_cert();
    for (kind, card) in [
        (KeyKind::P256, "TP03000001"),
        (KeyKind::Rsa2048, "TP03000002"),
    ] {
        for profile in ["person-sign", "person-encrypt"] {
            let csr = make_csr(ca.path(), kind);
            let (_, pem) = ca.issue("A800000014", card, profile, &csr);
            let verdict = openssl_ok(&[
                "verify",
                "-CAfile",
                root.to_str().unwrap(),
                "-untrusted",
                issuing.to_str().unwrap(),
                pem.to_str().unwrap(),
            ]);
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
    let root = ca.root_cert();
    let issuing = ca.issuing_cert();
    let verdict = openssl_ok(&[
        "verify",
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        issuing.to_str().unwrap(),
        pem.to_str().unwrap(),
    ]);
    assert!(verdict.contains(": OK"));
}

#[test]
fn serials_are_unique_positive_and_at_least_64_bits() {
    let ca = TestCa::new();
    let authority = ca.authority();
    let csr = std::fs::read(make_csr(ca.path(), KeyKind::P256)).unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..300 {
        let card = format!("TP{:08}", i % 50);
        let request = eidca::authority::IssueRequest {
            subscriber_code: &format!("A{:09}", i % 50),
            subscriber_name: "Serial Tester",
            card_number: &card,
            profile: "person-sign",
            csr: &csr,
        };
        let record = authority
            .issue(
                &request,
                eidca::authority::Actor {
                    name: "test",
                    channel: eidca::domain::Channel::Ra,
                },
            )
            .unwrap();
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

/// Each bad request is refused with a message naming the problem, exit ≠ 0, and no row changes.
#[test]
fn bad_issuance_input_is_refused_and_changes_nothing() {
    let ca = TestCa::new();
    let good_csr = make_csr(ca.path(), KeyKind::P256);
    ca.issue("A800000014", "TP03000001", "person-sign", &good_csr);
    let before = table_counts(&ca);

    let dir = ca.path();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let pem = std::fs::read(&good_csr).unwrap();
    let (_, der) = der::pem::decode_vec(&pem).unwrap();
    let garbage = write("garbage.csr", b"this is not a certificate request");
    let truncated = write("truncated.csr", &der[..der.len() / 2]);
    let mut tampered = der.clone();
    let last = tampered.len() - 5;
    tampered[last] ^= 0x01;
    let bad_signature = write("bad-sig.csr", &tampered);
    // Re-encode the request with another subject but the old signature.
    let weak = make_csr(dir, KeyKind::Rsa1024);
    let empty = write("empty.csr", b"");
    let cert_pem = write(
        "cert.pem",
        std::fs::read(ca.issuing_cert()).unwrap().as_slice(),
    );

    let p = |p: &Path| p.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--csr".into(), p(&garbage)], "not PEM"),
        (vec!["--csr".into(), p(&truncated)], "not PEM"),
        (
            vec!["--csr".into(), p(&bad_signature)],
            "proof of possession",
        ),
        (vec!["--csr".into(), p(&weak)], "too weak"),
        (vec!["--csr".into(), p(&empty)], "not PEM"),
        (vec!["--csr".into(), p(&cert_pem)], "CERTIFICATE REQUEST"),
        (
            vec!["--csr".into(), p(&dir.join("missing.csr"))],
            "cannot read",
        ),
        (
            vec![
                "--csr".into(),
                p(&good_csr),
                "--profile".into(),
                "person-nothing".into(),
            ],
            "unknown profile",
        ),
        (
            vec![
                "--csr".into(),
                p(&good_csr),
                "--subscriber".into(),
                "".into(),
            ],
            "subscriber code",
        ),
        (
            vec![
                "--csr".into(),
                p(&good_csr),
                "--subscriber".into(),
                "A".repeat(17),
            ],
            "subscriber code",
        ),
        (
            vec![
                "--csr".into(),
                p(&good_csr),
                "--subscriber".into(),
                "a80000'--".into(),
            ],
            "subscriber code",
        ),
        (
            vec!["--csr".into(), p(&good_csr), "--name".into(), "".into()],
            "subscriber name",
        ),
        (
            vec![
                "--csr".into(),
                p(&good_csr),
                "--name".into(),
                "x".repeat(65),
            ],
            "subscriber name",
        ),
        (
            vec!["--csr".into(), p(&good_csr), "--card".into(), "".into()],
            "card number",
        ),
        (
            vec![
                "--csr".into(),
                p(&good_csr),
                "--card".into(),
                "TP".repeat(9),
            ],
            "card number",
        ),
        (
            vec![
                "--csr".into(),
                p(&good_csr),
                "--subscriber".into(),
                "B800000015".into(),
            ],
            "another subscriber",
        ),
    ];
    for (overrides, expected) in cases {
        let mut args = issue_args();
        let mut i = 0;
        while i < overrides.len() {
            let flag = &overrides[i];
            let value = overrides[i + 1].clone();
            match args.iter().position(|a| a == flag) {
                Some(pos) => args[pos + 1] = value,
                None => args.extend([flag.clone(), value]),
            }
            i += 2;
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ca.run(&refs);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{overrides:?} was accepted");
        assert!(
            stderr.contains(expected),
            "{overrides:?}: expected `{expected}` in: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{overrides:?} printed a certificate");
        assert_eq!(table_counts(&ca), before, "{overrides:?} changed the store");
    }
}

/// `eidca issue` for a fixed subscriber and card, without `--csr`.
fn issue_args() -> Vec<String> {
    [
        "issue",
        "--subscriber",
        "A800000014",
        "--name",
        "N",
        "--card",
        "TP03000001",
        "--profile",
        "person-sign",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn unreadable_keys_and_config_stop_the_cli_and_write_nothing() {
    let ca = TestCa::new();
    let csr = make_csr(ca.path(), KeyKind::P256);
    let mut issue_owned = issue_args();
    issue_owned.extend(["--csr".to_owned(), csr.to_str().unwrap().to_owned()]);
    let issue: Vec<&str> = issue_owned.iter().map(String::as_str).collect();

    std::fs::write(
        ca.path().join("keys/issuing-ca.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = ca.run(&issue);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("issuing-ca.key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!ca.store_path().exists(), "nothing may be written");

    // A key that belongs to another certificate.
    std::fs::copy(
        ca.path().join("keys/ocsp-responder.key"),
        ca.path().join("keys/issuing-ca.key"),
    )
    .unwrap();
    let out = ca.run(&issue);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not belong"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!ca.store_path().exists());

    std::fs::write(ca.config_path(), "this is [not toml").unwrap();
    let out = ca.run(&issue);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("eidca.toml"));
    assert!(!ca.store_path().exists());
}

/// The test CA's configuration with `pairs` as the environment.
fn load_config(
    ca: &TestCa,
    pairs: &[(&str, &str)],
) -> Result<eidca::config::Config, eidca::config::ConfigError> {
    let source = eidca::config::ConfigSource {
        path: ca.config_path(),
        listen: None,
        data_dir: ca.data_dir(),
    };
    let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    eidca::config::Config::load_with_env(&source, env)
}

#[test]
fn config_env_override_applies_and_bad_values_name_the_key() {
    let ca = TestCa::new();
    let config = load_config(
        &ca,
        &[
            ("EIDCA_PUBLISH_DELTA_CRL_INTERVAL", "2s"),
            ("EIDCA_OCSP_MAX_CERT_IDS", "5"),
        ],
    )
    .unwrap();
    assert_eq!(config.delta_crl_interval, time::Duration::seconds(2));
    assert_eq!(config.ocsp_max_cert_ids, 5);

    let err = |pairs: &[(&str, &str)]| load_config(&ca, pairs).unwrap_err().to_string();
    let message = err(&[("EIDCA_PUBLISH_DELTA_CRL_INTERVAL", "fortnight")]);
    assert!(
        message.contains("delta_crl_interval") && message.contains("fortnight"),
        "{message}"
    );
    let message = err(&[("EIDCA_CA_ISSUING_KEY", "/nonexistent/key.pem")]);
    assert!(message.contains("ca.issuing_key"), "{message}");
    let message = err(&[("EIDCA_PUBLISH_DELTA_CRL_INTERVAL", "48h")]);
    assert!(message.contains("publish.delta_crl_interval"), "{message}");
    let message = err(&[("EIDCA_OCSP_MAX_AGE", "0s")]);
    assert!(message.contains("ocsp.max_age"), "{message}");

    // The binary reports the same, and exits non-zero.
    let out = ca
        .command()
        .env("EIDCA_OCSP_MAX_AGE", "ten minutes")
        .args(["status", "01"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max_age"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 6 item 5: the sync window must make sense, and a refusal names
/// the key to fix.
#[test]
fn sync_window_intervals_are_validated_naming_the_key() {
    let ca = TestCa::new();
    let load = |pairs: &[(&str, &str)]| load_config(&ca, pairs);
    let refused = |pairs: &[(&str, &str)], key: &str, why: &str| {
        let message = load(pairs).unwrap_err().to_string();
        assert!(
            message.contains(key) && message.contains(why),
            "{pairs:?}: {message}"
        );
    };
    const DELTA: &str = "EIDCA_PUBLISH_DELTA_CRL_INTERVAL";
    const FULL: &str = "EIDCA_PUBLISH_FULL_CRL_INTERVAL";
    const MAX_AGE: &str = "EIDCA_OCSP_MAX_AGE";

    refused(
        &[(DELTA, "10s"), (FULL, "10s"), (MAX_AGE, "2s")],
        "publish.delta_crl_interval",
        "shorter than publish.full_crl_interval",
    );
    refused(
        &[(DELTA, "2s"), (FULL, "10s"), (MAX_AGE, "11s")],
        "ocsp.max_age",
        "must not exceed publish.full_crl_interval",
    );
    for key in [DELTA, FULL, MAX_AGE] {
        let mut pairs = vec![(DELTA, "2s"), (FULL, "10s"), (MAX_AGE, "2s")];
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, "0s"));
        let name = match key {
            DELTA => "publish.delta_crl_interval",
            FULL => "publish.full_crl_interval",
            _ => "ocsp.max_age",
        };
        refused(&pairs, name, "at least 1s");
    }
    // The edges themselves are allowed: 1 s, and max-age equal to full.
    let config = load(&[(DELTA, "1s"), (FULL, "2s"), (MAX_AGE, "2s")]).unwrap();
    assert_eq!(config.delta_crl_interval, time::Duration::seconds(1));
    assert_eq!(config.ocsp_max_age, config.full_crl_interval);
}

fn tamper(ca: &TestCa, sql: &str) {
    let conn = rusqlite::Connection::open(ca.store_path()).unwrap();
    conn.execute_batch(sql).unwrap();
}

#[test]
fn audit_chain_verifies_and_names_an_edited_deleted_or_swapped_record() {
    let setup = || {
        let ca = TestCa::new();
        let csr = make_csr(ca.path(), KeyKind::P256);
        for card in ["TP03000001", "TP03000002", "TP03000003", "TP03000004"] {
            ca.issue("A800000014", card, "person-sign", &csr);
        }
        let out = ca.run_ok(&["audit", "verify"]);
        assert!(out.contains("4 records"), "{out}");
        ca
    };
    let check = |ca: &TestCa, record: &str| {
        let out = ca.run(&["audit", "verify"]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("audit record {record}")),
            "{stderr}"
        );
    };
    let ca = setup();
    tamper(&ca, "UPDATE audit_log SET detail = '{}' WHERE id = 2");
    check(&ca, "2");
    let ca = setup();
    tamper(&ca, "DELETE FROM audit_log WHERE id = 3");
    check(&ca, "4");
    let ca = setup();
    tamper(
        &ca,
        "UPDATE audit_log SET id = 100 WHERE id = 1; UPDATE audit_log SET id = 1 WHERE id = 2; UPDATE audit_log SET id = 2 WHERE id = 100;",
    );
    check(&ca, "1");
}

/// The signer loads RSA (2048–4096) and P-384 CA keys from PKCS#8 and signs
/// certificates OpenSSL accepts.
#[test]
fn rsa_and_p384_issuing_ca_keys_sign_valid_certificates() {
    for (name, genpkey) in [
        (
            "rsa2048",
            vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        (
            "rsa4096",
            vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
        ),
        (
            "p384",
            vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
    ] {
        let ca = TestCa::new();
        let keys = ca.path().join("keys");
        let key = keys.join("issuing-ca.key");
        let cert = keys.join("issuing-ca.crt");
        let csr = keys.join("issuing-ca.csr");
        let ext = keys.join("ext.cnf");
        std::fs::write(&ext, "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n").unwrap();
        let mut args = vec!["genpkey"];
        args.extend(genpkey.iter().copied());
        args.extend(["-out", key.to_str().unwrap()]);
        openssl_ok(&args);
        openssl_ok(&[
            "req",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            "/C=TW/O=eidca test/CN=Test Issuing CA",
            "-out",
            csr.to_str().unwrap(),
        ]);
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
        let out = openssl(&[
            "verify",
            "-CAfile",
            ca.root_cert().to_str().unwrap(),
            "-untrusted",
            cert.to_str().unwrap(),
            pem.to_str().unwrap(),
        ]);
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
