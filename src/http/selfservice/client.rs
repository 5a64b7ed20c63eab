//! The client address that failed attempts are counted against: the TCP
//! peer (`ConnectInfo`), never a header a client could forge.
//!
//! IPv4-mapped IPv6 addresses count as the IPv4 address; other IPv6
//! addresses count by their /64, since one subscriber line usually gets a
//! whole /64 and could otherwise rotate through it.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The key under which a client's failures are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub String);

/// Used when the server was started without connect info (it always is in
/// `serve`): all such clients then share one counter, which fails closed.
const UNKNOWN: &str = "unknown";

impl ClientAddress {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(v4.to_string()),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Self(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| Self::of(peer.ip()))
            .unwrap_or_else(|| Self(UNKNOWN.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_and_mapped_ipv4_count_alike() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ClientAddress::of(v4), ClientAddress::of(mapped));
        assert_eq!(ClientAddress::of(v4).0, "192.0.2.7");
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientAddress::of(a), ClientAddress::of(b));
        assert_ne!(ClientAddress::of(a), ClientAddress::of(c));
        assert_eq!(ClientAddress::of(a).0, "2001:db8:1:2::/64");
    }
}
