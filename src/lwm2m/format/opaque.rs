//! Opaque (content format 42 application/octet-stream, legacy 1544),
//! Core §7.4.2: the raw bytes of one Opaque resource. No framing, so
//! decoding cannot fail.

use super::{EncodeError, Payload, cf};
use crate::lwm2m::node::{Path, Record, Value};

// ---------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------

/// The bytes as one Opaque value at `base` (`/` when unknown).
pub fn decode(bytes: &[u8], base: Option<&Path>) -> Payload {
    Payload::Records(vec![Record::new(
        base.copied().unwrap_or(Path::ROOT),
        Value::Opaque(bytes.to_vec()),
    )])
}

// ---------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------

/// Opaque values as they are; strings as their UTF-8 bytes; anything else
/// is an error (octet-stream has no representation for it).
pub fn encode(value: &Value) -> Result<Vec<u8>, EncodeError> {
    match value {
        Value::Opaque(b) => Ok(b.clone()),
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        other => Err(EncodeError::new(
            cf::OCTET_STREAM,
            format!("a {} value has no octet-stream form", other.resource_type()),
        )),
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bytes() {
        let p: Path = "/5/0/0".parse().unwrap();
        let Payload::Records(r) = decode(b"\x00\xff", Some(&p)) else {
            panic!()
        };
        assert_eq!(r[0].path, p);
        assert_eq!(encode(&r[0].value).unwrap(), b"\x00\xff");
        assert!(encode(&Value::Integer(1)).is_err());
    }
}
