//! CoAP options: numbers, value formats and the Block option value
//! (RFC 7252 §5.10, §12.2; RFC 7641; RFC 7959; RFC 8613; RFC 8768; RFC 9175).
//!
//! [`OptionNumber`] is open: unknown numbers keep their bytes and print as
//! numbers. An option's value is always stored as the bytes seen on the wire,
//! so malformed values are kept and shown, never rejected here.

use std::fmt;

use super::content_format::ContentFormat;
use super::escaped;

/// An option number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct OptionNumber(pub u16);

/// How an option's value is interpreted (RFC 7252 §3.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueFormat {
    /// Zero-length value.
    Empty,
    /// Opaque bytes.
    Opaque,
    /// Unsigned integer, big-endian, minimal length.
    Uint,
    /// UTF-8 text.
    String,
    /// A Content-Format number (uint).
    ContentFormat,
    /// A Block1/Block2 value (RFC 7959).
    Block,
}

macro_rules! options {
    ($($konst:ident = $num:expr, $name:expr, $fmt:ident;)*) => {
        impl OptionNumber {
            $(
                #[doc = concat!("Option ", stringify!($num), " ", $name)]
                pub const $konst: OptionNumber = OptionNumber($num);
            )*
        }
        const TABLE: &[(OptionNumber, &str, ValueFormat)] =
            &[$((OptionNumber::$konst, $name, ValueFormat::$fmt),)*];
    };
}

options! {
    IF_MATCH = 1, "IF_MATCH", Opaque;
    URI_HOST = 3, "URI_HOST", String;
    ETAG = 4, "ETAG", Opaque;
    IF_NONE_MATCH = 5, "IF_NONE_MATCH", Empty;
    OBSERVE = 6, "OBSERVE", Uint;
    URI_PORT = 7, "URI_PORT", Uint;
    LOCATION_PATH = 8, "LOCATION_PATH", String;
    OSCORE = 9, "OSCORE", Opaque;
    URI_PATH = 11, "URI_PATH", String;
    CONTENT_FORMAT = 12, "CONTENT_FORMAT", ContentFormat;
    MAX_AGE = 14, "MAX_AGE", Uint;
    URI_QUERY = 15, "URI_QUERY", String;
    HOP_LIMIT = 16, "HOP_LIMIT", Uint;
    ACCEPT = 17, "ACCEPT", ContentFormat;
    LOCATION_QUERY = 20, "LOCATION_QUERY", String;
    BLOCK2 = 23, "BLOCK2", Block;
    BLOCK1 = 27, "BLOCK1", Block;
    SIZE2 = 28, "SIZE2", Uint;
    PROXY_URI = 35, "PROXY_URI", String;
    PROXY_SCHEME = 39, "PROXY_SCHEME", String;
    SIZE1 = 60, "SIZE1", Uint;
    ECHO = 252, "ECHO", Opaque;
    NO_RESPONSE = 258, "NO_RESPONSE", Uint;
    REQUEST_TAG = 292, "REQUEST_TAG", Opaque;
}

impl OptionNumber {
    /// The table name (`URI_PATH`), if known.
    pub fn name(self) -> Option<&'static str> {
        TABLE
            .iter()
            .find(|(n, _, _)| *n == self)
            .map(|(_, s, _)| *s)
    }

    /// How the value is interpreted; unknown options are opaque.
    pub fn format(self) -> ValueFormat {
        TABLE
            .iter()
            .find(|(n, _, _)| *n == self)
            .map_or(ValueFormat::Opaque, |(_, _, f)| *f)
    }

    /// Every named option (for completion and help).
    pub fn all_named() -> impl Iterator<Item = (OptionNumber, &'static str)> {
        TABLE.iter().map(|(n, s, _)| (*n, *s))
    }

    /// Parses a number or a name, case-insensitively, with `-` or `_`
    /// (`URI_PATH`, `uri-path`, `Content-Format`, `11`).
    pub fn parse(text: &str) -> Option<OptionNumber> {
        let t = text.trim();
        if let Ok(n) = t.parse::<u16>() {
            return Some(OptionNumber(n));
        }
        let norm = t.replace('-', "_").to_ascii_uppercase();
        TABLE
            .iter()
            .find_map(|(n, name, _)| (*name == norm).then_some(*n))
    }

    /// Critical options must be understood (RFC 7252 §5.4.1).
    pub const fn is_critical(self) -> bool {
        self.0 & 1 == 1
    }
}

impl fmt::Display for OptionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Debug for OptionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OptionNumber({})", self.0)
    }
}

/// One option instance as it appears in a message: number and raw value.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct CoapOption {
    /// The option number.
    pub number: OptionNumber,
    /// The value bytes exactly as on the wire.
    pub value: Vec<u8>,
}

impl CoapOption {
    /// An option with raw bytes.
    pub fn new(number: OptionNumber, value: impl Into<Vec<u8>>) -> Self {
        CoapOption {
            number,
            value: value.into(),
        }
    }

    /// An option holding an unsigned integer in minimal length (RFC 7252 §3.2).
    pub fn uint(number: OptionNumber, value: u64) -> Self {
        CoapOption {
            number,
            value: encode_uint(value),
        }
    }

    /// The value read as an unsigned integer (big-endian; empty is 0);
    /// `None` when longer than 8 bytes.
    pub fn as_uint(&self) -> Option<u64> {
        decode_uint(&self.value)
    }

    /// The value read as text (lossy for invalid UTF-8).
    pub fn as_str(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }

    /// The value rendered by its format, as `details` prints it.
    pub fn render_value(&self) -> String {
        match self.number.format() {
            ValueFormat::Uint => match self.as_uint() {
                Some(v) => v.to_string(),
                None => escaped::format_printable(&self.value),
            },
            ValueFormat::ContentFormat => match self.as_uint() {
                Some(v) if v <= u16::MAX as u64 => ContentFormat(v as u16).to_string(),
                _ => escaped::format_printable(&self.value),
            },
            ValueFormat::Block => match BlockValue::decode(&self.value) {
                Some(b) => b.to_string(),
                None => escaped::format_printable(&self.value),
            },
            ValueFormat::Empty | ValueFormat::Opaque | ValueFormat::String => {
                escaped::format_printable(&self.value)
            }
        }
    }
}

/// Encodes an unsigned integer in the fewest bytes (0 is zero-length).
pub fn encode_uint(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    bytes[skip..].to_vec()
}

/// Decodes a big-endian unsigned integer of at most 8 bytes.
pub fn decode_uint(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// The value of a Block1 or Block2 option (RFC 7959 §2.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct BlockValue {
    /// Block number (NUM), up to 2^20 - 1.
    pub num: u32,
    /// More flag (M).
    pub more: bool,
    /// Size exponent (SZX): size = 2^(SZX+4); 7 is BERT in RFC 8323.
    pub szx: u8,
}

impl BlockValue {
    /// SZX 7: reserved over UDP (RFC 7959 §2.2: never sent, a request
    /// carrying it gets 4.00) and BERT over TCP (RFC 8323 §6), where NUM
    /// counts 1024-byte units and a block carries any number of them.
    /// nsh takes BERT blocks over TCP (its CSM announces BERT) and asks
    /// for the next one with SZX 7 only of a peer that announced BERT (see
    /// `crate::exchange::block`); over UDP only raw options (`coap`,
    /// `options`) can carry it.
    pub const RESERVED_SZX: u8 = 7;

    /// The block sizes nsh sends and accepts, as users read them.
    pub const SIZES: &'static str = "16, 32, 64, 128, 256, 512 or 1024 bytes";

    /// Whether `size` is a block size nsh may send and accept: a power of
    /// two from 16 to 1024 (SZX 0…6).
    pub fn is_valid_size(size: u32) -> bool {
        (16..=1024).contains(&size) && size.is_power_of_two()
    }

    /// Whether this value has the reserved SZX 7 (see
    /// [`BlockValue::RESERVED_SZX`]).
    pub fn is_reserved_szx(self) -> bool {
        self.szx >= Self::RESERVED_SZX
    }

    /// Builds a block value from a size in bytes (16…1024, or 2048 meaning
    /// SZX 7, for raw options only); `None` when the size is not a power of
    /// two in range or the number is too large. Protocol code checks
    /// [`BlockValue::is_valid_size`] first.
    pub fn new(num: u32, more: bool, size: u32) -> Option<Self> {
        if !(16..=2048).contains(&size) || !size.is_power_of_two() || num >= 1 << 20 {
            return None;
        }
        Some(BlockValue {
            num,
            more,
            szx: (size.trailing_zeros() - 4) as u8,
        })
    }

    /// The block size in bytes.
    pub fn size(self) -> u32 {
        1 << (u32::from(self.szx.min(7)) + 4)
    }

    /// Decodes a 0–3 byte option value.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > 3 {
            return None;
        }
        let v = decode_uint(bytes)? as u32;
        Some(BlockValue {
            num: v >> 4,
            more: v & 0x08 != 0,
            szx: (v & 0x07) as u8,
        })
    }

    /// Encodes in minimal length.
    pub fn encode(self) -> Vec<u8> {
        encode_uint(u64::from(
            (self.num << 4) | (u32::from(self.more) << 3) | u32::from(self.szx & 7),
        ))
    }
}

impl fmt::Display for BlockValue {
    /// `seq_num=S, has_more=M, block_size=B` as the original prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seq_num={}, has_more={}, block_size={}",
            self.num,
            u8::from(self.more),
            self.size()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_values_use_minimal_length() {
        assert_eq!(encode_uint(0), Vec::<u8>::new());
        assert_eq!(encode_uint(255), vec![0xff]);
        assert_eq!(encode_uint(256), vec![1, 0]);
        assert_eq!(decode_uint(&[]), Some(0));
        assert_eq!(decode_uint(&[0; 9]), None);
    }

    #[test]
    fn block_value_round_trips_rfc7959_layout() {
        let b = BlockValue::new(2, true, 512).unwrap();
        assert_eq!(b.encode(), vec![0x2d]);
        assert_eq!(BlockValue::decode(&[0x2d]), Some(b));
        assert_eq!(
            BlockValue::new(0, false, 16).unwrap().encode(),
            Vec::<u8>::new()
        );
        assert_eq!(BlockValue::new(0, false, 100), None);
        assert_eq!(b.to_string(), "seq_num=2, has_more=1, block_size=512");
    }

    #[test]
    fn szx_7_is_reserved_and_not_a_valid_size() {
        // RFC 7959 §2.2: SZX 7 (2048) is reserved; raw options may carry it.
        let raw = BlockValue::new(0, false, 2048).unwrap();
        assert_eq!(raw.szx, BlockValue::RESERVED_SZX);
        assert!(raw.is_reserved_szx());
        assert!(BlockValue::decode(&[0x0f]).unwrap().is_reserved_szx());
        assert!(!BlockValue::new(0, false, 1024).unwrap().is_reserved_szx());
        assert!(!BlockValue::is_valid_size(2048));
        assert!(!BlockValue::is_valid_size(8));
        assert!(!BlockValue::is_valid_size(100));
        for size in [16, 32, 64, 128, 256, 512, 1024] {
            assert!(BlockValue::is_valid_size(size), "{size}");
        }
    }

    #[test]
    fn parses_option_names_in_any_spelling() {
        assert_eq!(
            OptionNumber::parse("uri-path"),
            Some(OptionNumber::URI_PATH)
        );
        assert_eq!(
            OptionNumber::parse("Content_Format"),
            Some(OptionNumber::CONTENT_FORMAT)
        );
        assert_eq!(OptionNumber::parse("258"), Some(OptionNumber::NO_RESPONSE));
        assert_eq!(OptionNumber::parse("bogus"), None);
    }
}
