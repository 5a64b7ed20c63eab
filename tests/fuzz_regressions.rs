//! Replays every fuzz seed and every input a fuzzer ever crashed on
//! (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`) through the same
//! functions the fuzz targets call, in the normal test suite.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut found = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.map(Result::unwrap) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                found.push((
                    format!("{dir}/{target}/{name}"),
                    std::fs::read(entry.path()).unwrap(),
                ));
            }
        }
    }
    assert!(!found.is_empty(), "no inputs for {target}");
    found
}

#[test]
fn csr_inputs_are_refused_or_accepted_without_panicking() {
    for (name, bytes) in inputs("csr") {
        let verdict = std::panic::catch_unwind(|| eidca::issuance::verify_csr(&bytes).is_ok());
        assert!(verdict.is_ok(), "{name} panicked");
    }
}

#[test]
fn ocsp_request_inputs_decode_or_are_refused_without_panicking() {
    let issuer = eidca::ocsp::request::IssuerHashes::new(b"\x30\x00", &[4; 65]);
    for (name, bytes) in inputs("ocsp_request") {
        let verdict =
            std::panic::catch_unwind(|| eidca::ocsp::request::decode(&bytes, &issuer, 20).is_ok());
        assert!(verdict.is_ok(), "{name} panicked");
    }
}
