//! The cache of pre-signed responses ([RFC 5019 §2.2.1](https://www.rfc-editor.org/rfc/rfc5019#section-2.2.1)
//! allows pre-produced responses; [§6](https://www.rfc-editor.org/rfc/rfc5019#section-6) their HTTP caching).
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

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use time::OffsetDateTime;

use super::commits::CommitMarker;
use super::request::CertIdForm;
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

/// A signed successful response with what the RFC 5019 §6.2 caching headers
/// need, computed once at signing time.
#[derive(Debug, Clone)]
pub struct SignedResponse {
    pub der: Bytes,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// Strong entity tag, quoted (RFC 9110 §8.8.3). The header values are
    /// `Bytes` so that every answer shares them instead of formatting them.
    pub etag: Bytes,
    /// thisUpdate as an HTTP-date (RFC 9110 §5.6.7).
    pub last_modified: Bytes,
    /// nextUpdate as an HTTP-date.
    pub expires: Bytes,
}

impl SignedResponse {
    /// Wraps a freshly signed response, computing its caching headers.
    pub fn new(der: Vec<u8>, this_update: OffsetDateTime, next_update: OffsetDateTime) -> Self {
        let hash = ring::digest::digest(&ring::digest::SHA256, &der);
        let etag = format!("\"{}\"", hex::encode(&hash.as_ref()[..16]));
        Self {
            der: der.into(),
            this_update,
            next_update,
            etag: etag.into(),
            last_modified: http_date(this_update).into(),
            expires: http_date(next_update).into(),
        }
    }
}

/// IMF-fixdate, the HTTP-date format senders must use (RFC 9110 §5.6.7).
fn http_date(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
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
}

type Shard = RwLock<HashMap<CacheKey, CacheEntry>>;

/// Signed responses by CertID.
#[derive(Debug)]
pub struct ResponseCache {
    shards: Box<[Shard]>,
    per_shard: usize,
}

impl Default for ResponseCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl ResponseCache {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// The shard is picked by the serial's last octet, without hashing: our
    /// serials are random, and a client that crafts serials to crowd one
    /// shard only makes its own requests share a lock.
    fn shard(&self, key: &CacheKey) -> &Shard {
        let octet = key.serial_der.last().copied().unwrap_or_default();
        &self.shards[usize::from(octet) % self.shards.len()]
    }

    /// The entry for `key`, if any (whatever its version: the caller decides).
    pub fn get(&self, key: &CacheKey) -> Option<CacheEntry> {
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        shard.get(key).cloned()
    }

    /// Stores an entry. When the shard is full, entries that `keep` rejects
    /// (stale ones) go first, then an arbitrary one: a lost entry costs one
    /// signature later, never a wrong answer.
    pub fn insert(&self, key: CacheKey, entry: CacheEntry, keep: impl Fn(&CacheEntry) -> bool) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsp::request::HashAlgorithm;

    fn key(serial: u32) -> CacheKey {
        CacheKey {
            serial_der: serial.to_be_bytes().into(),
            form: CertIdForm {
                hash: HashAlgorithm::Sha1,
                null_parameters: true,
            },
        }
    }

    fn entry(version: i64) -> CacheEntry {
        let t = OffsetDateTime::UNIX_EPOCH;
        CacheEntry {
            version: Some(version),
            status: SingleStatus::Good,
            confirmed_at: None,
            response: Arc::new(SignedResponse {
                der: Bytes::from_static(b"der"),
                this_update: t,
                next_update: t,
                etag: Bytes::new(),
                last_modified: Bytes::new(),
                expires: Bytes::new(),
            }),
        }
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        let t = time::macros::datetime!(1994-11-06 08:49:37 UTC);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        let signed = SignedResponse::new(vec![1, 2, 3], t, t + time::Duration::minutes(10));
        assert_eq!(signed.expires, &b"Sun, 06 Nov 1994 08:59:37 GMT"[..]);
        assert_eq!(signed.etag.len(), 34);
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
}
