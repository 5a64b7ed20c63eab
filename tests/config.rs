//! Loading the configuration: environment overrides apply, and a bad or
//! inconsistent value is refused naming the key to fix.

mod common;

use common::TestCa;

#[test]
fn config_env_override_applies_and_bad_values_name_the_key() {
    let ca = TestCa::new();
    let config = ca
        .config_with_env(&[
            ("EIDCA_PUBLISH_DELTA_CRL_INTERVAL", "2s"),
            ("EIDCA_OCSP_MAX_CERT_IDS", "5"),
            ("EIDCA_OCSP_SIGNING_THREADS", "3"),
            ("EIDCA_OCSP_SIGNING_QUEUE", "7"),
        ])
        .unwrap();
    assert_eq!(config.delta_crl_interval, time::Duration::seconds(2));
    assert_eq!(config.ocsp_max_cert_ids, 5);
    assert_eq!(
        (config.ocsp_signing_threads, config.ocsp_signing_queue),
        (3, 7)
    );

    let err = |pairs: &[(&str, &str)]| ca.config_with_env(pairs).unwrap_err().to_string();
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
    let message = err(&[("EIDCA_OCSP_SIGNING_QUEUE", "0")]);
    assert!(message.contains("ocsp.signing_queue"), "{message}");
    let message = err(&[("EIDCA_OCSP_SIGNING_THREADS", "0")]);
    assert!(message.contains("ocsp.signing_threads"), "{message}");

    // Key settings take RFC 7512 URIs (SPEC §11), checked when loaded.
    let uri = "pkcs11:token=CA;object=issuing?module-path=/usr/lib/softhsm/libsofthsm2.so";
    let config = ca
        .config_with_env(&[
            ("EIDCA_CA_OCSP_KEY", uri),
            ("EIDCA_CA_PKCS11_SESSIONS", "2"),
        ])
        .unwrap();
    match &config.ocsp_key {
        eidca::signer::KeyRef::Token(token) => {
            assert_eq!((token.uri.token.as_str(), token.sessions), ("CA", 2));
        }
        other => panic!("{other:?}"),
    }
    let message = err(&[("EIDCA_CA_OCSP_KEY", "pkcs11:object=issuing")]);
    assert!(
        message.contains("ca.ocsp_key") && message.contains("no token"),
        "{message}"
    );
    let message = err(&[("EIDCA_CA_ISSUING_KEY", "pkcs11:token=CA;object=k")]);
    assert!(
        message.contains("ca.issuing_key") && message.contains("ca.pkcs11_module"),
        "{message}"
    );
    let message = err(&[
        ("EIDCA_CA_OCSP_KEY", uri),
        ("EIDCA_CA_PKCS11_SESSIONS", "0"),
    ]);
    assert!(message.contains("ca.pkcs11_sessions"), "{message}");

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

/// The sync window must make sense (a delta more often than a full, OCSP
/// answers no older than a full CRL, nothing under a second), and a
/// refusal names the key to fix.
#[test]
fn sync_window_intervals_are_validated_naming_the_key() {
    let ca = TestCa::new();
    let load = |pairs: &[(&str, &str)]| ca.config_with_env(pairs);
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
