//! The authority with a key that goes away (SPEC §11): what needs a
//! signature is refused as `SignerUnavailable` and changes nothing; status
//! changes commit; everything works again once the key is back.

use std::sync::Arc;

use super::{Actor, Authority, AuthorityError, IssueRequest};
use crate::clock::SystemClock;
use crate::config::{Config, ConfigSource};
use crate::domain::{Channel, Transition};
use crate::revocation::CrlKind;
use crate::signer::faulty::{self, Switch};

const OFFICER: Actor<'static> = Actor {
    name: "unit-test",
    channel: Channel::Ra,
};

/// An authority on a fresh development hierarchy whose issuing key can be
/// taken away.
fn authority_with_faulty_key() -> (tempfile::TempDir, Authority, Switch) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    crate::devkeys::generate(&keys, time::OffsetDateTime::now_utc()).unwrap();
    let config = include_str!("../../ca-config/eidca.toml").replace("../keys-dev/", "keys/");
    std::fs::write(dir.path().join("eidca.toml"), config).unwrap();
    let source = ConfigSource {
        path: dir.path().join("eidca.toml"),
        listen: None,
        data_dir: dir.path().join("data"),
    };
    let config = Config::load_with_env(&source, []).unwrap();
    let mut authority = Authority::open(config, Arc::new(SystemClock)).unwrap();
    let (signer, switch) =
        faulty::signer("ca.issuing_key", &keys.join(crate::devkeys::ISSUING_KEY));
    authority.replace_issuing_signer(signer);
    (dir, authority, switch)
}

fn csr() -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.serialize_request(&key).unwrap().der().to_vec()
}

fn issue(authority: &Authority, card: &str, csr: &[u8]) -> Result<String, AuthorityError> {
    let request = IssueRequest {
        subscriber_code: "A800000014",
        subscriber_name: "Test Subscriber",
        card_number: card,
        profile: "person-sign",
        csr,
    };
    authority.issue(&request, OFFICER).map(|r| r.serial)
}

fn certificates(authority: &Authority) -> i64 {
    let figures = authority.store_figures().unwrap();
    figures.certificates_by_status.iter().map(|(_, n)| n).sum()
}

#[test]
fn a_key_that_cannot_sign_refuses_issuance_and_crls_and_changes_nothing() {
    let (_dir, authority, switch) = authority_with_faulty_key();
    let csr = csr();
    let serial = issue(&authority, "TP03000001", &csr).unwrap();
    authority.publish(CrlKind::Full, "test").unwrap();
    let numbers = |authority: &Authority| {
        let latest = authority.latest_crls().unwrap();
        (
            latest.full.map(|c| c.number),
            latest.delta.map(|c| c.number),
        )
    };
    let before = numbers(&authority);

    switch.away();
    let refused = issue(&authority, "TP03000002", &csr).unwrap_err();
    assert!(
        matches!(&refused, AuthorityError::SignerUnavailable { key, .. } if key == "ca.issuing_key"),
        "{refused:?}"
    );
    assert_eq!(
        certificates(&authority),
        1,
        "no certificate row without its signature"
    );
    for kind in [CrlKind::Full, CrlKind::Delta] {
        let refused = authority.publish(kind, "test").unwrap_err();
        assert!(
            matches!(refused, AuthorityError::SignerUnavailable { .. }),
            "{refused:?}"
        );
    }
    assert_eq!(numbers(&authority), before);

    // Status changes need no signature: they commit while the key is away.
    let suspended = authority
        .change_status(&serial.parse().unwrap(), Transition::Suspend, None, OFFICER)
        .unwrap();
    assert_eq!(suspended.status, "suspended");

    switch.back();
    issue(&authority, "TP03000002", &csr).unwrap();
    let delta = authority.publish(CrlKind::Delta, "test").unwrap();
    let highest = before.0.max(before.1).unwrap();
    assert_eq!(delta.number, highest + 1, "no CRL number was used up");
    assert_eq!(certificates(&authority), 2);
}
