//! The cache of pre-signed responses ([RFC 5019 §2.2.1](https://www.rfc-editor.org/rfc/rfc5019#section-2.2.1)
//! allows pre-produced responses).
//!
//! Never stale: every entry carries the certificate's status version (the
//! store's `status_seq`) and the store's commit marker when that version
//! was read. The responder serves an entry only if the store's marker is
//! still the same (nothing committed since), or if the version it has just
//! read from the store is the same. A status change committed by any
//! process changes both, so the next request looks up and re-signs.
//!
//! Cheap: the map is split into shards, each behind its own `RwLock`, so
//! concurrent requests share read locks and never queue behind one global
//! lock; signing happens outside every lock; an entry is an `Arc`, so a hit
//! costs a reference count and the body is sent without copying.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use time::OffsetDateTime;

use super::commits::CommitMarker;
use super::request::{CertId, CertIdForm};
use super::status::SingleStatus;

/// Entries kept at most. A response with the responder certificate is about
/// 1 KiB, so this bounds the cache near 300 MiB; beyond it, the least useful
/// entries go (see [`ResponseCache::insert`]).
pub const CAPACITY: usize = 256 * 1024;

const SHARDS: usize = 64;

/// What a cached answer is about: the serial (as the request's INTEGER
/// content octets, so even serials we never issued can be cached as
/// `unknown`) and how the CertID spells its hash algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub serial_der: Box<[u8]>,
    pub form: CertIdForm,
}

/// A signed successful response, shared by every answer that sends it.
#[derive(Debug)]
pub struct SignedResponse {
    pub der: Bytes,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// Filled by the layer that sends the response, on its first answer.
    /// A slot here rather than a table there: finding the rendering again
    /// would cost a hash per answer, and rendering it each time three
    /// allocations, on the hot path.
    pub rendered: OnceLock<Rendered>,
    /// Whether a client received this response: the refresher re-signs
    /// only what relying parties ask for ([`ResponseCache::due`]).
    served: AtomicBool,
}

/// A signed response's identity and times as the layer that sends it
/// spells them (for HTTP: ETag, Last-Modified and Expires, see
/// `http::caching`); this module never reads them.
#[derive(Debug)]
pub struct Rendered {
    pub identity: Bytes,
    pub this_update: Bytes,
    pub next_update: Bytes,
}

impl SignedResponse {
    /// Wraps a freshly signed response.
    pub fn new(der: Vec<u8>, this_update: OffsetDateTime, next_update: OffsetDateTime) -> Self {
        Self {
            der: der.into(),
            this_update,
            next_update,
            rendered: OnceLock::new(),
            served: AtomicBool::new(false),
        }
    }

    /// Notes that a client received this response. A load before the
    /// store, so that the hot path does not write a shared cache line on
    /// every answer.
    pub fn mark_served(&self) {
        if !self.served.load(Ordering::Relaxed) {
            self.served.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a client received this response since it was signed.
    pub fn was_served(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }
}

/// A cached response, the status version it was signed for (`None`: the
/// serial was not in the store), and the committed state of the store in
/// which that version was last confirmed.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub version: Option<i64>,
    /// What the response says, for the metrics of a cache hit.
    pub status: SingleStatus,
    /// While the store's commit marker is still this one, the version is
    /// still current: nothing was committed since it was read.
    pub confirmed_at: Option<CommitMarker>,
    pub response: Arc<SignedResponse>,
    /// The CertID answered, for re-signing without a request.
    pub request: Arc<KnownRequest>,
}

/// What a lookup found for a CertID, and the committed state it was found
/// in: answers signed per request (nonce, several CertIDs) take the status
/// from here while nothing is committed, as cached answers do, instead of
/// a lookup each.
#[derive(Debug, Clone, Copy)]
pub struct ConfirmedStatus {
    pub status: SingleStatus,
    pub confirmed_at: CommitMarker,
}

type Shard<K, V> = RwLock<HashMap<K, V>>;

/// Which shard a key lives in: one of its octets, without hashing. Our
/// serials are random, and a client that crafts keys to crowd one shard
/// only makes its own requests share a lock.
pub trait ShardKey {
    fn shard_octet(&self) -> u8;
}

impl ShardKey for CacheKey {
    /// The serial's last octet.
    fn shard_octet(&self) -> u8 {
        self.serial_der.last().copied().unwrap_or_default()
    }
}

impl ShardKey for [u8] {
    /// The last octet (of a request: its serial's, as a rule).
    fn shard_octet(&self) -> u8 {
        self.last().copied().unwrap_or_default()
    }
}

impl ShardKey for Box<[u8]> {
    fn shard_octet(&self) -> u8 {
        (**self).shard_octet()
    }
}

/// A bounded map split into shards, each behind its own lock.
#[derive(Debug)]
pub struct ShardedCache<K, V> {
    shards: Box<[Shard<K, V>]>,
    per_shard: usize,
}

/// Signed responses by CertID.
pub type ResponseCache = ShardedCache<CacheKey, CacheEntry>;

/// Statuses confirmed in a committed state, by CertID.
pub type StatusMemo = ShardedCache<CacheKey, ConfirmedStatus>;

/// The CertID of requests answered from the response cache, by their DER:
/// decoding is a pure function of the octets, so a request seen before
/// needs no second decoding (it was most of a cached answer's work).
pub type KnownRequests = ShardedCache<Box<[u8]>, Arc<KnownRequest>>;

/// What a request for a cacheable answer decoded to: its only CertID (no
/// nonce) and that CertID's cache key.
#[derive(Debug)]
pub struct KnownRequest {
    pub cert_id: CertId,
    pub key: CacheKey,
}

/// Requests remembered at most: a quarter of the responses, as a request
/// with its decoded CertID takes about a third of a response's memory.
pub const KNOWN_REQUESTS: usize = CAPACITY / 4;

impl<K: Eq + Hash + ShardKey + Clone, V: Clone> Default for ShardedCache<K, V> {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl<K: Eq + Hash + ShardKey + Clone, V: Clone> ShardedCache<K, V> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard<Q: ShardKey + ?Sized>(&self, key: &Q) -> &Shard<K, V> {
        &self.shards[usize::from(key.shard_octet()) % self.shards.len()]
    }

    /// The entry for `key`, if any (whatever its version: the caller decides).
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ShardKey + ?Sized,
    {
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        shard.get(key).cloned()
    }

    /// Stores an entry. When the shard is full, entries that `keep` rejects
    /// (stale ones) go first, then an arbitrary one: a lost entry costs one
    /// signature later, never a wrong answer.
    pub fn insert(&self, key: K, entry: V, keep: impl Fn(&V) -> bool) {
        let mut shard = self.shard(&key).write().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, e| keep(e));
            let victim = shard.keys().next().cloned();
            if let Some(victim) = victim.filter(|_| shard.len() >= self.per_shard) {
                shard.remove(&victim);
            }
        }
        shard.insert(key, entry);
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ResponseCache {
    /// A snapshot of the entries `due` selects, taken one shard at a time
    /// under its read lock, so that requests are never held up for longer
    /// than one shard's scan and never by a signature.
    pub fn due(&self, due: impl Fn(&CacheEntry) -> bool) -> Vec<(CacheKey, CacheEntry)> {
        self.shards
            .iter()
            .flat_map(|shard| {
                let shard = shard.read().unwrap_or_else(|p| p.into_inner());
                shard
                    .iter()
                    .filter(|(_, e)| due(e))
                    .map(|(k, e)| (k.clone(), e.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Replaces the entry for `key` with `new` (or removes it), but only if
    /// it still holds the response `expected`: an entry that a request
    /// re-signed meanwhile (after a status change) is newer and stays.
    pub fn replace(
        &self,
        key: CacheKey,
        expected: &Arc<SignedResponse>,
        new: Option<CacheEntry>,
    ) -> bool {
        let mut shard = self.shard(&key).write().unwrap_or_else(|p| p.into_inner());
        let unchanged = shard
            .get(&key)
            .is_some_and(|e| Arc::ptr_eq(&e.response, expected));
        if unchanged {
            match new {
                Some(entry) => shard.insert(key, entry),
                None => shard.remove(&key),
            };
        }
        unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsp::request::HashAlgorithm;
    use crate::ocsp::request::tests::cert_id_for;

    const FORM: CertIdForm = CertIdForm {
        hash: HashAlgorithm::Sha1,
        null_parameters: true,
    };

    fn key(serial: u32) -> CacheKey {
        CacheKey {
            serial_der: serial.to_be_bytes().into(),
            form: FORM,
        }
    }

    fn entry(version: i64) -> CacheEntry {
        let t = OffsetDateTime::UNIX_EPOCH;
        let serial = version.to_be_bytes().to_vec();
        CacheEntry {
            version: Some(version),
            status: SingleStatus::Good,
            confirmed_at: None,
            response: Arc::new(SignedResponse::new(b"der".to_vec(), t, t)),
            request: Arc::new(KnownRequest {
                key: CacheKey {
                    serial_der: serial.clone().into(),
                    form: FORM,
                },
                cert_id: CertId {
                    raw: cert_id_for(HashAlgorithm::Sha1, &serial, b"name", b"key"),
                    form: FORM,
                    serial_der: serial,
                    serial: None,
                },
            }),
        }
    }

    #[test]
    fn stores_and_replaces_by_key() {
        let cache = ResponseCache::default();
        assert!(cache.get(&key(1)).is_none());
        cache.insert(key(1), entry(7), |_| true);
        cache.insert(key(1), entry(8), |_| true);
        assert_eq!(cache.get(&key(1)).unwrap().version, Some(8));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn stays_within_capacity_dropping_rejected_entries_first() {
        let cache = ResponseCache::with_capacity(SHARDS * 2);
        for serial in 0..10_000 {
            cache.insert(key(serial), entry(i64::from(serial % 2)), |e| {
                e.version == Some(1)
            });
        }
        assert!(cache.len() <= SHARDS * 2);
        assert!(cache.get(&key(9_999)).is_some(), "the newest entry is kept");
    }

    #[test]
    fn due_entries_are_a_snapshot_and_replace_only_what_was_read() {
        let cache = ResponseCache::default();
        for serial in 0..10 {
            cache.insert(key(serial), entry(i64::from(serial)), |_| true);
        }
        let due = cache.due(|e| e.version.is_some_and(|v| v % 2 == 0));
        assert_eq!(due.len(), 5);
        let (k, read) = due[0].clone();
        // A request re-signs the entry in the meantime: the refresher's
        // copy is older and must not overwrite it.
        cache.insert(k.clone(), entry(100), |_| true);
        assert!(!cache.replace(k.clone(), &read.response, Some(entry(200))));
        assert_eq!(cache.get(&k).unwrap().version, Some(100));
        let current = cache.get(&k).unwrap().response;
        assert!(cache.replace(k.clone(), &current, Some(entry(200))));
        assert_eq!(cache.get(&k).unwrap().version, Some(200));
        let current = cache.get(&k).unwrap().response;
        assert!(cache.replace(k.clone(), &current, None));
        assert!(cache.get(&k).is_none());
        assert_eq!(cache.len(), 9);
    }

    #[test]
    fn served_is_remembered_per_signed_response() {
        let signed = entry(1).response;
        assert!(!signed.was_served());
        signed.mark_served();
        signed.mark_served();
        assert!(signed.was_served());
    }
}
