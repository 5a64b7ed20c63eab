//! The command line refuses bad input and unusable keys or configuration
//! with a message naming the problem, a non-zero exit, and nothing written.

mod common;

use std::path::Path;

use common::{KeyKind, TestCa, make_csr};

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
