//! RFC 7512 `pkcs11:` URIs: which token, which object, which module, and
//! where the PIN is.
//!
//! Only the attributes eidca acts on are accepted; any other standard
//! attribute is refused rather than ignored, so that a URI never selects a
//! different key than its writer meant (vendor `x-` attributes are ignored,
//! RFC 7512 §2.3).

use std::fmt;
use std::path::PathBuf;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use zeroize::Zeroizing;

/// Where the token PIN comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSource {
    /// `pin-source=file:<path>`: the first line of the file.
    File(PathBuf),
    /// `pin-value=<pin>` (refused in production mode).
    Value(Zeroizing<String>),
}

impl fmt::Debug for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSource::File(path) => f.debug_tuple("File").field(path).finish(),
            PinSource::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// A parsed `pkcs11:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=`: the token label.
    pub token: String,
    /// `object=`: the key label.
    pub object: Option<String>,
    /// `id=`: the key's CKA_ID bytes.
    pub id: Option<Vec<u8>>,
    /// `module-path=`.
    pub module_path: Option<PathBuf>,
    pub pin: Option<PinSource>,
}

/// Why a URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("a PKCS#11 URI starts with `pkcs11:`")]
    Scheme,
    #[error("`{0}` is not an attribute=value pair")]
    NotAPair(String),
    #[error("attribute `{0}` appears twice")]
    Repeated(String),
    #[error(
        "attribute `{0}` is not supported here (eidca knows token, object, id, type, module-path, pin-source, pin-value)"
    )]
    Unsupported(String),
    #[error("attribute `{0}` has a bad percent-encoding or is not UTF-8")]
    Encoding(String),
    #[error("the URI names no token (`token=`)")]
    NoToken,
    #[error("the URI names no key (`object=` or `id=`)")]
    NoObject,
    #[error("`type={0}`: only private keys sign (`type=private`)")]
    NotPrivate(String),
    #[error("pin-source must be `file:<path>`")]
    PinSource,
    #[error("both pin-source and pin-value are given")]
    TwoPins,
}

impl Pkcs11Uri {
    /// Parses a URI (RFC 7512 §2.3); values are percent-decoded.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let rest = text.strip_prefix("pkcs11:").ok_or(UriError::Scheme)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut seen: Vec<String> = Vec::new();
        let mut uri = Pkcs11Uri {
            token: String::new(),
            object: None,
            id: None,
            module_path: None,
            pin: None,
        };
        let mut token = None;
        let pairs = path
            .split(';')
            .map(|p| (p, true))
            .chain(query.split('&').map(|p| (p, false)));
        for (pair, in_path) in pairs.filter(|(p, _)| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| UriError::NotAPair(pair.to_owned()))?;
            if name.starts_with("x-") {
                continue;
            }
            if seen.iter().any(|s| s == name) {
                return Err(UriError::Repeated(name.to_owned()));
            }
            seen.push(name.to_owned());
            let bytes = || -> Result<Vec<u8>, UriError> { Ok(percent_decode_str(value).collect()) };
            let text = || -> Result<String, UriError> {
                percent_decode_str(value)
                    .decode_utf8()
                    .map(|s| s.into_owned())
                    .map_err(|_| UriError::Encoding(name.to_owned()))
            };
            match (name, in_path) {
                ("token", true) => token = Some(text()?),
                ("object", true) => uri.object = Some(text()?),
                ("id", true) => uri.id = Some(bytes()?),
                ("type", true) if value == "private" => {}
                ("type", true) => return Err(UriError::NotPrivate(text()?)),
                ("module-path", false) => uri.module_path = Some(PathBuf::from(text()?)),
                ("pin-source", false) => {
                    let source = text()?;
                    let path = source.strip_prefix("file:").ok_or(UriError::PinSource)?;
                    uri.pin = Some(PinSource::File(PathBuf::from(path)));
                }
                ("pin-value", false) => {
                    uri.pin = Some(PinSource::Value(Zeroizing::new(text()?)));
                }
                _ => return Err(UriError::Unsupported(name.to_owned())),
            }
        }
        if seen.iter().any(|s| s == "pin-source") && seen.iter().any(|s| s == "pin-value") {
            return Err(UriError::TwoPins);
        }
        uri.token = token.ok_or(UriError::NoToken)?;
        if uri.object.is_none() && uri.id.is_none() {
            return Err(UriError::NoObject);
        }
        Ok(uri)
    }
}

/// What RFC 7512 §2.3 lets stand unencoded in a value (`pchar` minus the
/// separators), so that a URI prints the way an operator would write it.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'/')
    .remove(b'@')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',');

impl fmt::Display for Pkcs11Uri {
    /// The URI with its PIN value left out (`pin-value=<redacted>`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pkcs11:token={}",
            utf8_percent_encode(&self.token, VALUE)
        )?;
        if let Some(object) = &self.object {
            write!(f, ";object={}", utf8_percent_encode(object, VALUE))?;
        }
        if let Some(id) = &self.id {
            f.write_str(";id=")?;
            for b in id {
                write!(f, "%{b:02X}")?;
            }
        }
        let mut sep = '?';
        if let Some(module) = &self.module_path {
            let module = module.to_string_lossy();
            write!(
                f,
                "{sep}module-path={}",
                utf8_percent_encode(&module, VALUE)
            )?;
            sep = '&';
        }
        match &self.pin {
            Some(PinSource::File(path)) => {
                let path = path.to_string_lossy();
                write!(
                    f,
                    "{sep}pin-source=file:{}",
                    utf8_percent_encode(&path, VALUE)
                )
            }
            Some(PinSource::Value(_)) => write!(f, "{sep}pin-value=<redacted>"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_and_query_attributes_percent_decoded() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=eID%20CA%202026;object=issuing;id=%01%a2;type=private\
             ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin%20file",
        )
        .unwrap();
        assert_eq!(uri.token, "eID CA 2026");
        assert_eq!(uri.object.as_deref(), Some("issuing"));
        assert_eq!(uri.id.as_deref(), Some(&[0x01, 0xa2][..]));
        assert_eq!(
            uri.module_path,
            Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert_eq!(
            uri.pin,
            Some(PinSource::File(PathBuf::from("/run/pin file")))
        );
    }

    #[test]
    fn a_pin_value_is_never_printed() {
        let uri = Pkcs11Uri::parse("pkcs11:token=T;object=k?pin-value=91%3A27").unwrap();
        assert_eq!(
            uri.pin,
            Some(PinSource::Value(Zeroizing::new("91:27".into())))
        );
        assert_eq!(
            uri.to_string(),
            "pkcs11:token=T;object=k?pin-value=<redacted>"
        );
        assert!(!format!("{uri:?}").contains("91:27"));
    }

    #[test]
    fn printing_and_parsing_again_gives_the_same_uri() {
        let text =
            "pkcs11:token=a%3Bb;object=%C3%A9;id=%00%FF?module-path=/m.so&pin-source=file:/p";
        let uri = Pkcs11Uri::parse(text).unwrap();
        assert_eq!(uri.token, "a;b");
        assert_eq!(Pkcs11Uri::parse(&uri.to_string()).unwrap(), uri);
    }

    #[test]
    fn refuses_what_it_cannot_act_on() {
        let cases = [
            ("file:/k.pem", UriError::Scheme),
            ("pkcs11:object=k", UriError::NoToken),
            ("pkcs11:token=T", UriError::NoObject),
            ("pkcs11:token=T;object", UriError::NotAPair("object".into())),
            (
                "pkcs11:token=T;token=U;object=k",
                UriError::Repeated("token".into()),
            ),
            (
                "pkcs11:token=T;object=k;slot-id=3",
                UriError::Unsupported("slot-id".into()),
            ),
            (
                "pkcs11:token=T;id=%01?object=k",
                UriError::Unsupported("object".into()),
            ),
            (
                "pkcs11:token=T;object=%FF",
                UriError::Encoding("object".into()),
            ),
            (
                "pkcs11:token=T;object=k;type=public",
                UriError::NotPrivate("public".into()),
            ),
            ("pkcs11:token=T;object=k?pin-source=/p", UriError::PinSource),
            (
                "pkcs11:token=T;object=k?pin-source=file:/p&pin-value=1",
                UriError::TwoPins,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Pkcs11Uri::parse(text), Err(expected), "{text}");
        }
    }

    #[test]
    fn vendor_attributes_are_ignored() {
        let uri = Pkcs11Uri::parse("pkcs11:token=T;object=k;x-vendor=1?x-other=2").unwrap();
        assert_eq!(uri.token, "T");
    }
}
