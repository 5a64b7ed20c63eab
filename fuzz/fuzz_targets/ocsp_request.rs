//! The OCSP request decoder on arbitrary DER: a request or a
//! malformedRequest / unauthorized refusal, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let issuer = eidca::ocsp::request::IssuerHashes::new(b"\x30\x00", &[4; 65]);
    let _ = eidca::ocsp::request::decode(data, &issuer, 20);
});
