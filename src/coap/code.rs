//! CoAP codes (RFC 7252 §3, §12.1; RFC 8323 §5 signalling codes).
//!
//! [`Code`] is an open newtype over the wire byte: every value of the 8-bit
//! field round-trips, named or not. Names follow the original nsh's table
//! (`REQ_GET`, `RES_CONTENT`, …) and are also accepted without their prefix.

use std::fmt;

/// A CoAP code: 3-bit class and 5-bit detail, written `c.dd`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Code(pub u8);

macro_rules! codes {
    ($($konst:ident = ($class:expr, $detail:expr), $name:expr;)*) => {
        impl Code {
            $(
                #[doc = concat!("`", stringify!($class), ".", stringify!($detail), "` ", $name)]
                pub const $konst: Code = Code::new($class, $detail);
            )*
        }
        const NAMES: &[(Code, &str)] = &[$((Code::$konst, $name),)*];
    };
}

codes! {
    EMPTY = (0, 0), "EMPTY";
    GET = (0, 1), "REQ_GET";
    POST = (0, 2), "REQ_POST";
    PUT = (0, 3), "REQ_PUT";
    DELETE = (0, 4), "REQ_DELETE";
    FETCH = (0, 5), "REQ_FETCH";
    PATCH = (0, 6), "REQ_PATCH";
    IPATCH = (0, 7), "REQ_IPATCH";
    CREATED = (2, 1), "RES_CREATED";
    DELETED = (2, 2), "RES_DELETED";
    VALID = (2, 3), "RES_VALID";
    CHANGED = (2, 4), "RES_CHANGED";
    CONTENT = (2, 5), "RES_CONTENT";
    CONTINUE = (2, 31), "RES_CONTINUE";
    BAD_REQUEST = (4, 0), "RES_BAD_REQUEST";
    UNAUTHORIZED = (4, 1), "RES_UNAUTHORIZED";
    BAD_OPTION = (4, 2), "RES_BAD_OPTION";
    FORBIDDEN = (4, 3), "RES_FORBIDDEN";
    NOT_FOUND = (4, 4), "RES_NOT_FOUND";
    METHOD_NOT_ALLOWED = (4, 5), "RES_METHOD_NOT_ALLOWED";
    NOT_ACCEPTABLE = (4, 6), "RES_NOT_ACCEPTABLE";
    REQUEST_ENTITY_INCOMPLETE = (4, 8), "RES_REQUEST_ENTITY_INCOMPLETE";
    CONFLICT = (4, 9), "RES_CONFLICT";
    PRECONDITION_FAILED = (4, 12), "RES_PRECONDITION_FAILED";
    REQUEST_ENTITY_TOO_LARGE = (4, 13), "RES_REQUEST_ENTITY_TOO_LARGE";
    UNSUPPORTED_CONTENT_FORMAT = (4, 15), "RES_UNSUPPORTED_CONTENT_FORMAT";
    UNPROCESSABLE_ENTITY = (4, 22), "RES_UNPROCESSABLE_ENTITY";
    TOO_MANY_REQUESTS = (4, 29), "RES_TOO_MANY_REQUESTS";
    INTERNAL_SERVER_ERROR = (5, 0), "RES_INTERNAL_SERVER_ERROR";
    NOT_IMPLEMENTED = (5, 1), "RES_NOT_IMPLEMENTED";
    BAD_GATEWAY = (5, 2), "RES_BAD_GATEWAY";
    SERVICE_UNAVAILABLE = (5, 3), "RES_SERVICE_UNAVAILABLE";
    GATEWAY_TIMEOUT = (5, 4), "RES_GATEWAY_TIMEOUT";
    PROXYING_NOT_SUPPORTED = (5, 5), "RES_PROXYING_NOT_SUPPORTED";
    HOP_LIMIT_REACHED = (5, 8), "RES_HOP_LIMIT_REACHED";
    CSM = (7, 1), "SIGNALING_CSM";
    PING = (7, 2), "PING";
    PONG = (7, 3), "PONG";
    RELEASE = (7, 4), "RELEASE";
    ABORT = (7, 5), "ABORT";
}

impl Code {
    /// Builds a code from its class (0–7) and detail (0–31); excess bits are masked.
    pub const fn new(class: u8, detail: u8) -> Self {
        Code(((class & 0x07) << 5) | (detail & 0x1f))
    }

    /// The class digit (`2` in `2.05`).
    pub const fn class(self) -> u8 {
        self.0 >> 5
    }

    /// The detail (`5` in `2.05`).
    pub const fn detail(self) -> u8 {
        self.0 & 0x1f
    }

    /// The code as `c.dd` (`2.05`), as scripts compare it; written
    /// without the formatting machinery, since every response read in a
    /// script asks for it.
    pub fn dotted(self) -> String {
        let digit = |d: u8| char::from(b'0' + d);
        let (class, detail) = (self.class(), self.detail());
        [digit(class), '.', digit(detail / 10), digit(detail % 10)]
            .into_iter()
            .collect()
    }

    /// `0.00`, the code of an Empty message.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// A request method: class 0, detail not 0.
    pub const fn is_request(self) -> bool {
        self.class() == 0 && self.detail() != 0
    }

    /// A response: class 2, 4 or 5.
    pub const fn is_response(self) -> bool {
        matches!(self.class(), 2 | 4 | 5)
    }

    /// An error response: class 4 or 5.
    pub const fn is_error(self) -> bool {
        matches!(self.class(), 4 | 5)
    }

    /// A signalling code of CoAP over TCP (class 7).
    pub const fn is_signalling(self) -> bool {
        self.class() == 7
    }

    /// The table name (`RES_CONTENT`), if this code has one.
    pub fn name(self) -> Option<&'static str> {
        NAMES.iter().find(|(c, _)| *c == self).map(|(_, n)| *n)
    }

    /// Every named code, in table order (for completion and help).
    pub fn all_named() -> impl Iterator<Item = (Code, &'static str)> {
        NAMES.iter().copied()
    }

    /// Parses `2.05`, `205`-style is not accepted; a name (`RES_CONTENT`,
    /// `content`, `REQ_GET`, `get`) is matched case-insensitively.
    pub fn parse(text: &str) -> Option<Code> {
        let t = text.trim();
        if let Some((c, d)) = t.split_once('.') {
            let class: u8 = c.parse().ok()?;
            let detail: u8 = d.parse().ok()?;
            if class > 7 || detail > 31 || d.len() != 2 {
                return None;
            }
            return Some(Code::new(class, detail));
        }
        let upper = t.to_ascii_uppercase();
        NAMES.iter().find_map(|(code, name)| {
            let short = name
                .strip_prefix("REQ_")
                .or_else(|| name.strip_prefix("RES_"))
                .or_else(|| name.strip_prefix("SIGNALING_"))
                .unwrap_or(name);
            (*name == upper || short == upper).then_some(*code)
        })
    }
}

impl fmt::Display for Code {
    /// `2.05 (RES_CONTENT)`, or `2.06` when unnamed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dotted())?;
        if let Some(name) = self.name() {
            write!(f, " ({name})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dotted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dotted_and_named_codes() {
        assert_eq!(Code::parse("2.05"), Some(Code::CONTENT));
        assert_eq!(Code::parse("RES_CONTENT"), Some(Code::CONTENT));
        assert_eq!(Code::parse("content"), Some(Code::CONTENT));
        assert_eq!(Code::parse("req_get"), Some(Code::GET));
        assert_eq!(Code::parse("7.01"), Some(Code::CSM));
        assert_eq!(Code::parse("8.01"), None);
        assert_eq!(Code::parse("2.5"), None);
    }

    #[test]
    fn displays_unknown_codes_numerically() {
        assert_eq!(Code::new(2, 6).to_string(), "2.06");
        assert_eq!(Code::NOT_FOUND.to_string(), "4.04 (RES_NOT_FOUND)");
    }

    #[test]
    fn dotted_covers_every_code_and_parses_back() {
        for byte in 0..=u8::MAX {
            let code = Code(byte);
            let dotted = code.dotted();
            assert_eq!(dotted, format!("{}.{:02}", code.class(), code.detail()));
            assert_eq!(Code::parse(&dotted), Some(code), "{dotted}");
        }
    }
}
