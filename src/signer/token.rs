//! A key in a PKCS#11 token, signing through cryptoki (SPEC §11).
//!
//! One `Pkcs11` context per module per process (`C_Initialize` must run
//! once; cryptoki issue #260), and per key a pool of logged-in sessions,
//! one signature per session at a time (a cryptoki `Session` is `Send`, not
//! `Sync`). A session that fails is closed and a fresh one opened; while no
//! session can be opened the key reports why and is retried at most once a
//! second, so a token that comes back is used again without a restart.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ring::digest::{SHA256, SHA384, digest};
use zeroize::Zeroizing;

use super::uri::{PinSource, Pkcs11Uri};
use super::{Key, KeyAlgorithm, SignerError, TokenRef, der_sig};

/// DER of the namedCurve OIDs in CKA_EC_PARAMS (RFC 5480 §2.1.1.1).
pub(super) const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(super) const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// How long a signature waits for a free session before giving up.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after a failed attempt to open a session the next is tried.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

static MODULES: Mutex<BTreeMap<PathBuf, Pkcs11>> = Mutex::new(BTreeMap::new());

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The process's one context for the module at `path`, initialised once.
pub(super) fn module(path: &Path) -> Result<Pkcs11, String> {
    let mut modules = lock(&MODULES);
    if let Some(context) = modules.get(path) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(path)
        .map_err(|e| format!("cannot load the PKCS#11 module {}: {e}", path.display()))?;
    initialize(&context)?;
    modules.insert(path.to_owned(), context.clone());
    Ok(context)
}

fn initialize(context: &Pkcs11) -> Result<(), String> {
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(format!("C_Initialize failed: {e}")),
    }
}

/// The slot of the token labelled `label`. Many modules list their tokens
/// once, at C_Initialize, and SoftHSM also drops a token it found being
/// written by another process: a token missing now is looked for again
/// after the module starts over. Sessions of other keys on this module then
/// fail once and are reopened.
pub(super) fn locate(context: &Pkcs11, label: &str) -> Result<Slot, String> {
    find_slot(context, label).or_else(|_| {
        reinitialize(context)?;
        find_slot(context, label)
    })
}

/// C_Finalize and C_Initialize again, so that the module looks for its
/// tokens afresh.
fn reinitialize(context: &Pkcs11) -> Result<(), String> {
    // An error here means the module was not initialised: nothing to undo.
    let _ = context.clone().finalize();
    initialize(context)
}

/// The slot that holds the token labelled `label`, looked up afresh each
/// time (a token that was removed and put back may sit in another slot).
/// A token that another process is writing to can be missing for a moment
/// (SoftHSM rewrites its files), so a miss is looked at again twice.
fn find_slot(context: &Pkcs11, label: &str) -> Result<Slot, String> {
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        let slots = context
            .get_slots_with_token()
            .map_err(|e| format!("cannot list the module's slots: {e}"))?;
        for slot in slots {
            if let Ok(info) = context.get_token_info(slot)
                && info.label().trim_end() == label
            {
                return Ok(slot);
            }
        }
    }
    Err(format!("no token labelled `{label}` is present"))
}

/// Reads the PIN the URI points at; errors name the source, never the PIN.
pub(super) fn read_pin(uri: &Pkcs11Uri) -> Result<AuthPin, String> {
    match &uri.pin {
        Some(PinSource::Value(pin)) => Ok(AuthPin::from(pin.as_str())),
        Some(PinSource::File(path)) => {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the PIN file {}: {e}", path.display()))?,
            );
            let pin = text.lines().next().unwrap_or("").trim_end_matches('\r');
            if pin.is_empty() {
                return Err(format!("the PIN file {} is empty", path.display()));
            }
            Ok(AuthPin::from(pin))
        }
        None => Err("the URI names no PIN (pin-source=file:… or pin-value=…)".to_owned()),
    }
}

/// Logs the application in; a second login on the same token is no error.
pub(super) fn login(session: &Session, pin: &AuthPin, token: &str) -> Result<(), String> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
            Err(format!("the token `{token}` refused the PIN"))
        }
        Err(e) => Err(format!("cannot log in to the token `{token}`: {e}")),
    }
}

/// The attributes that select the URI's object, for one object class.
pub(super) fn template(uri: &Pkcs11Uri, class: ObjectClass) -> Vec<Attribute> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    template
}

/// The one object matching `template`, or why there is not exactly one.
fn find_one(session: &Session, template: &[Attribute], what: &str) -> Result<ObjectHandle, String> {
    let found = session
        .find_objects(template)
        .map_err(|e| format!("cannot search the token: {e}"))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("the token holds no {what} the URI names")),
        many => Err(format!(
            "the token holds {} {what}s the URI names; add id= to choose one",
            many.len()
        )),
    }
}

/// A logged-in session and the private key's handle in it.
struct Pooled {
    session: Session,
    key: ObjectHandle,
}

struct PoolState {
    idle: Vec<Pooled>,
    /// Sessions open, idle or in use.
    open: usize,
    /// After a failed open: no new attempt before this instant.
    retry_at: Option<Instant>,
    fault: String,
}

/// A private key in a token.
pub struct TokenKey {
    context: Pkcs11,
    uri: Pkcs11Uri,
    pin: AuthPin,
    algorithm: KeyAlgorithm,
    public_key: Vec<u8>,
    size: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

impl TokenKey {
    /// Loads the module, logs in, finds the key and reads its public key;
    /// then signs once and checks the signature against that public key.
    pub fn open(token: &TokenRef) -> Result<Self, SignerError> {
        let fail = SignerError::Token;
        let context = module(&token.module).map_err(fail)?;
        let pin = read_pin(&token.uri).map_err(fail)?;
        let mut key = TokenKey {
            context,
            uri: token.uri.clone(),
            pin,
            algorithm: KeyAlgorithm::EcdsaP256,
            public_key: Vec::new(),
            size: token.sessions.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
                retry_at: None,
                fault: String::new(),
            }),
            freed: Condvar::new(),
        };
        let first = key.open_session().map_err(fail)?;
        let (algorithm, public_key) = read_public_key(&first, &key.uri).map_err(fail)?;
        key.algorithm = algorithm;
        key.public_key = public_key;
        {
            let mut state = lock(&key.state);
            state.open = 1;
            state.idle.push(first);
        }
        key.self_test().map_err(fail)?;
        Ok(key)
    }

    fn open_session(&self) -> Result<Pooled, String> {
        let token = &self.uri.token;
        let slot = locate(&self.context, token)?;
        let session = match self.context.open_ro_session(slot) {
            Err(CkError::Pkcs11(RvError::CryptokiNotInitialized, _)) => {
                // A module that lost its state (network HSMs after idling).
                initialize(&self.context)?;
                self.context.open_ro_session(slot)
            }
            other => other,
        }
        .map_err(|e| format!("cannot open a session on the token `{token}`: {e}"))?;
        login(&session, &self.pin, token)?;
        let key = find_one(
            &session,
            &template(&self.uri, ObjectClass::PRIVATE_KEY),
            "private key",
        )?;
        Ok(Pooled { session, key })
    }

    /// A session for one operation: an idle one, a new one while the pool
    /// is not full, or the next one freed.
    fn checkout(&self) -> Result<Pooled, String> {
        let mut state = lock(&self.state);
        let deadline = Instant::now() + CHECKOUT_TIMEOUT;
        loop {
            if let Some(pooled) = state.idle.pop() {
                return Ok(pooled);
            }
            if state.open < self.size {
                if state.retry_at.is_some_and(|at| Instant::now() < at) {
                    return Err(state.fault.clone());
                }
                state.open += 1;
                drop(state);
                let opened = self.open_session();
                let mut state = lock(&self.state);
                match opened {
                    Ok(pooled) => {
                        state.retry_at = None;
                        return Ok(pooled);
                    }
                    Err(fault) => {
                        state.open -= 1;
                        state.retry_at = Some(Instant::now() + REOPEN_AFTER);
                        state.fault = fault.clone();
                        self.freed.notify_all();
                        return Err(fault);
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "all {} sessions of the token `{}` stayed busy for {} s",
                    self.size,
                    self.uri.token,
                    CHECKOUT_TIMEOUT.as_secs()
                ));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn checkin(&self, pooled: Pooled) {
        lock(&self.state).idle.push(pooled);
        self.freed.notify_one();
    }

    /// Closes a session that failed; the next operation opens a new one.
    fn discard(&self, pooled: Pooled) {
        drop(pooled);
        lock(&self.state).open -= 1;
        self.freed.notify_one();
    }

    /// Runs `operation` on a pooled session. A failure closes the session
    /// and the operation runs once more on a fresh one: a session the token
    /// dropped (idle timeout, reset) must not fail a request a new one serves.
    fn with_session<T>(
        &self,
        operation: impl Fn(&Pooled) -> Result<T, CkError>,
    ) -> Result<T, String> {
        let mut fault = String::new();
        for _ in 0..2 {
            let pooled = self.checkout()?;
            match operation(&pooled) {
                Ok(value) => {
                    self.checkin(pooled);
                    return Ok(value);
                }
                Err(e) => {
                    self.discard(pooled);
                    fault = format!("the token `{}`: {e}", self.uri.token);
                }
            }
        }
        Err(fault)
    }

    /// One signature, verified with ring against the public key read from
    /// the token: a private key object that does not belong to its public
    /// key object would otherwise sign certificates nobody can verify.
    fn self_test(&self) -> Result<(), String> {
        use ring::signature::{
            ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, RSA_PKCS1_2048_8192_SHA256,
            UnparsedPublicKey, VerificationAlgorithm,
        };
        let message = b"eidca start-up check";
        let signature = self.sign(message)?;
        let algorithm: &dyn VerificationAlgorithm = match self.algorithm {
            KeyAlgorithm::EcdsaP256 => &ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::EcdsaP384 => &ECDSA_P384_SHA384_ASN1,
            KeyAlgorithm::Rsa { .. } => &RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(algorithm, &self.public_key)
            .verify(message, &signature)
            .map_err(|_| {
                "the private key does not match the public key object of the same label/id"
                    .to_owned()
            })
    }
}

impl Key for TokenKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_bits(&self) -> &[u8] {
        &self.public_key
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        // SoftHSM 2.6 has no CKM_ECDSA_SHA256: hash here, sign the digest.
        let (mechanism, data, half) = match self.algorithm {
            KeyAlgorithm::EcdsaP256 => (
                Mechanism::Ecdsa,
                Cow::Owned(digest(&SHA256, message).as_ref().to_vec()),
                Some(32),
            ),
            KeyAlgorithm::EcdsaP384 => (
                Mechanism::Ecdsa,
                Cow::Owned(digest(&SHA384, message).as_ref().to_vec()),
                Some(48),
            ),
            KeyAlgorithm::Rsa { .. } => (Mechanism::Sha256RsaPkcs, Cow::Borrowed(message), None),
        };
        let raw = self.with_session(|p| p.session.sign(&mechanism, p.key, &data))?;
        match half {
            Some(half) => der_sig::ecdsa_sig_value(&raw, half),
            None => Ok(raw),
        }
    }
}

/// The key's algorithm and subjectPublicKey bits, read from the token: the
/// public key object's CKA_EC_PARAMS and CKA_EC_POINT, or CKA_MODULUS and
/// CKA_PUBLIC_EXPONENT (of the public key object, else the private key).
fn read_public_key(pooled: &Pooled, uri: &Pkcs11Uri) -> Result<(KeyAlgorithm, Vec<u8>), String> {
    let session = &pooled.session;
    let attributes = |object, types: &[AttributeType]| {
        session
            .get_attributes(object, types)
            .map_err(|e| format!("cannot read the key's attributes: {e}"))
    };
    let key_type = attributes(pooled.key, &[AttributeType::KeyType])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::KeyType(t) => Some(t),
            _ => None,
        })
        .ok_or("the key has no CKA_KEY_TYPE")?;
    let public = session
        .find_objects(&template(uri, ObjectClass::PUBLIC_KEY))
        .map_err(|e| format!("cannot search the token: {e}"))?;
    if key_type == KeyType::EC {
        let [public] = public.as_slice() else {
            return Err(format!(
                "the token holds {} EC public key objects with the key's label/id; exactly one is needed to check it against its certificate",
                public.len()
            ));
        };
        let mut params = None;
        let mut point = None;
        for a in attributes(*public, &[AttributeType::EcParams, AttributeType::EcPoint])? {
            match a {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let (algorithm, point_len) = match params.as_deref() {
            Some(P256_PARAMS) => (KeyAlgorithm::EcdsaP256, 65),
            Some(P384_PARAMS) => (KeyAlgorithm::EcdsaP384, 97),
            _ => return Err("the EC key is neither P-256 nor P-384".to_owned()),
        };
        let point = point.ok_or("the public key has no CKA_EC_POINT")?;
        Ok((algorithm, ec_point(&point, point_len)?))
    } else if key_type == KeyType::RSA {
        let object = public.first().copied().unwrap_or(pooled.key);
        let mut modulus = None;
        let mut exponent = None;
        for a in attributes(
            object,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )? {
            match a {
                Attribute::Modulus(m) => modulus = Some(m),
                Attribute::PublicExponent(e) => exponent = Some(e),
                _ => {}
            }
        }
        let (Some(modulus), Some(exponent)) = (modulus, exponent) else {
            return Err("the RSA key has no CKA_MODULUS / CKA_PUBLIC_EXPONENT".to_owned());
        };
        let bits = modulus.iter().skip_while(|b| **b == 0).count() * 8;
        if !(2048..=4096).contains(&bits) {
            return Err(format!(
                "RSA keys must have 2048 to 4096 bits; this one has {bits}"
            ));
        }
        Ok((
            KeyAlgorithm::Rsa { bits },
            der_sig::rsa_public_key(&modulus, &exponent)?,
        ))
    } else {
        Err("the key is neither EC nor RSA".to_owned())
    }
}

/// CKA_EC_POINT is the DER OCTET STRING of the point (PKCS#11 2.40 §2.3.3);
/// some tokens return the bare point.
fn ec_point(value: &[u8], point_len: usize) -> Result<Vec<u8>, String> {
    let bare = |p: &[u8]| p.len() == point_len && p[0] == 0x04;
    if bare(value) {
        return Ok(value.to_vec());
    }
    match value {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && bare(rest) => {
            Ok(rest.to_vec())
        }
        _ => Err("CKA_EC_POINT is not an uncompressed point".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_points_are_taken_bare_or_from_their_octet_string() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        assert_eq!(ec_point(&point, 65).unwrap(), point);
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(&point);
        assert_eq!(ec_point(&wrapped, 65).unwrap(), point);
        assert!(ec_point(&point[..64], 65).is_err());
        assert!(ec_point(&wrapped, 97).is_err());
    }
}
