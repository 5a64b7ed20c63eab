//! A fault-injecting key for unit tests: a file key that cannot sign while
//! its switch says the token is away (SPEC §11's faults without a token).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{FileKey, Key, KeyAlgorithm, Signer};

/// Flips a [`FaultyKey`] between away and back.
#[derive(Debug, Clone, Default)]
pub struct Switch(Arc<AtomicBool>);

impl Switch {
    pub fn away(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn back(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

struct FaultyKey {
    inner: FileKey,
    away: Switch,
}

impl Key for FaultyKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.inner.algorithm()
    }

    fn public_key_bits(&self) -> &[u8] {
        self.inner.public_key_bits()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        if self.away.0.load(Ordering::SeqCst) {
            return Err("the token `test` is away (CKR_DEVICE_REMOVED)".to_owned());
        }
        self.inner.sign(message)
    }
}

/// The PKCS#8 file key at `path` as `setting`, and the switch that takes it away.
pub fn signer(setting: &str, path: &std::path::Path) -> (Signer, Switch) {
    let away = Switch::default();
    let key = FaultyKey {
        inner: FileKey::load(path).expect("test key"),
        away: away.clone(),
    };
    (Signer::new(setting, Box::new(key)), away)
}
