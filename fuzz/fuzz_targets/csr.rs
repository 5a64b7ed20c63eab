//! The CSR checker on arbitrary bytes (PEM or DER): it may refuse, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = eidca::issuance::verify_csr(data);
});
