//! HTTP caching of published objects (CRLs, and OCSP responses per
//! [RFC 5019 §6](https://www.rfc-editor.org/rfc/rfc5019#section-6)):
//! `Last-Modified`, `ETag`, `Expires`, `Cache-Control: max-age` no later
//! than the object's nextUpdate, and conditional requests answered 304
//! ([RFC 9110 §13](https://www.rfc-editor.org/rfc/rfc9110#section-13)).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// IMF-fixdate, the preferred HTTP-date form (RFC 9110 §5.6.7).
const HTTP_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// `t` as an HTTP-date.
pub fn http_date(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(HTTP_DATE)
        .unwrap_or_default()
}

/// A strong entity tag for `content`, quoted (RFC 9110 §8.8.3): 128 bits
/// of its SHA-256, so that equal tags mean equal octets.
pub fn strong_etag(content: &[u8]) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, content);
    format!("\"{}\"", hex::encode(&hash.as_ref()[..16]))
}

/// What `If-None-Match` says about a representation tagged `etag`: `None`
/// without the header, else whether it names `etag` or `*` (the client's
/// copy is current). Weak comparison, as RFC 9110 §13.1.2 asks; several
/// field lines are one list (RFC 9110 §5.3).
pub fn if_none_match(request: &HeaderMap, etag: &[u8]) -> Option<bool> {
    let mut lines = request.get_all(header::IF_NONE_MATCH).iter().peekable();
    lines.peek()?;
    Some(
        lines
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == etag),
    )
}

/// Seconds a cache may keep an object from `now`: never past `expires`
/// (the object's nextUpdate; RFC 5019 §6.2).
pub fn max_age(expires: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (expires - now).whole_seconds().max(0)
}

/// An IMF-fixdate, or `None` (the obsolete forms are not worth honouring:
/// a client that sends one just gets the full answer).
pub fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(s.trim(), HTTP_DATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// The validators and lifetime of one published object.
#[derive(Debug, Clone)]
pub struct Freshness {
    /// A strong entity tag, quotes included.
    pub etag: String,
    pub last_modified: OffsetDateTime,
    /// The object's nextUpdate: caches must not keep it longer.
    pub expires: OffsetDateTime,
}

impl Freshness {
    /// Whether the request's validators show the client already holds this
    /// object: `If-None-Match` decides when present, else `If-Modified-Since`.
    pub fn not_modified(&self, request: &HeaderMap) -> bool {
        if let Some(matched) = if_none_match(request, self.etag.as_bytes()) {
            return matched;
        }
        request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
            .is_some_and(|since| self.last_modified <= since)
    }

    /// The caching headers, with max-age counted from `now`.
    pub fn headers(&self, now: OffsetDateTime) -> HeaderMap {
        let max_age = max_age(self.expires, now);
        let mut headers = HeaderMap::new();
        let mut put = |name, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        put(header::ETAG, self.etag.clone());
        put(header::LAST_MODIFIED, http_date(self.last_modified));
        put(header::EXPIRES, http_date(self.expires));
        put(
            header::CACHE_CONTROL,
            format!("public, max-age={max_age}, no-transform"),
        );
        headers
    }

    /// 304 if the client holds the object, else 200 with `body` as `media_type`.
    pub fn respond(
        &self,
        request: &HeaderMap,
        now: OffsetDateTime,
        media_type: &'static str,
        body: Vec<u8>,
    ) -> Response {
        let headers = self.headers(now);
        if self.not_modified(request) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (
            StatusCode::OK,
            headers,
            [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
            body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn freshness() -> Freshness {
        Freshness {
            etag: "\"crl-7\"".into(),
            last_modified: datetime!(2026-06-01 12:00:00 UTC),
            expires: datetime!(2026-06-01 12:15:00 UTC),
        }
    }

    fn request(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn http_dates_round_trip() {
        let t = datetime!(1994-11-06 08:49:37 UTC);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn strong_etags_are_quoted_128_bit_digests() {
        let tag = strong_etag(&[1, 2, 3]);
        assert_eq!(tag.len(), 34);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert_ne!(tag, strong_etag(&[1, 2, 4]));
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let mut request = HeaderMap::new();
        assert_eq!(if_none_match(&request, b"\"abc\""), None);
        request.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert_eq!(if_none_match(&request, b"\"abc\""), Some(true));
        assert_eq!(if_none_match(&request, b"\"abd\""), Some(false));
        request.append(header::IF_NONE_MATCH, HeaderValue::from_static("\"abd\""));
        assert_eq!(if_none_match(&request, b"\"abd\""), Some(true));
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert_eq!(if_none_match(&request, b"\"abc\""), Some(true));
    }

    #[test]
    fn etag_decides_before_dates() {
        let f = freshness();
        assert!(f.not_modified(&request(header::IF_NONE_MATCH, "\"x\", \"crl-7\"")));
        assert!(f.not_modified(&request(header::IF_NONE_MATCH, "W/\"crl-7\"")));
        assert!(!f.not_modified(&request(header::IF_NONE_MATCH, "\"crl-6\"")));
        assert!(f.not_modified(&request(
            header::IF_MODIFIED_SINCE,
            "Mon, 01 Jun 2026 12:00:00 GMT"
        )));
        assert!(!f.not_modified(&request(
            header::IF_MODIFIED_SINCE,
            "Mon, 01 Jun 2026 11:59:59 GMT"
        )));
    }

    #[test]
    fn max_age_never_passes_next_update() {
        let f = freshness();
        let h = f.headers(datetime!(2026-06-01 12:05:00 UTC));
        assert_eq!(
            h[header::CACHE_CONTROL],
            "public, max-age=600, no-transform"
        );
        let late = f.headers(datetime!(2026-06-01 13:00:00 UTC));
        assert_eq!(
            late[header::CACHE_CONTROL],
            "public, max-age=0, no-transform"
        );
    }
}
