//! Plain text (content format 0, legacy 1541), Core §7.4.1: one value as
//! UTF-8 text. Numbers in decimal, Boolean `0`/`1`, Objlnk `A:B`, Opaque in
//! base64 (LwM2M 1.1), Time as decimal seconds.
//!
//! The wire does not carry the type; with a definition the text is parsed
//! as that type, without one it is guessed (integer, float, else string).

use super::{EncodeError, Field, FormatError, Payload, defined_type};
use crate::lwm2m::node::{Path, Record, ResourceType, Value};
use crate::lwm2m::objects::Registry;

// ---------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------

/// Decodes a plain-text value for the resource at `base`.
pub fn decode(
    bytes: &[u8],
    base: Option<&Path>,
    registry: &Registry,
) -> Result<Payload, FormatError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| FormatError::invalid(e.valid_up_to(), Field::Text, "not UTF-8"))?;
    let path = base.copied().unwrap_or(Path::ROOT);
    let (value, guessed) = match defined_type(registry, &path) {
        Some(kind) => (
            parse_as(text, kind).map_err(|r| FormatError::invalid(0, Field::Text, r))?,
            false,
        ),
        None => (guess(text), true),
    };
    Ok(Payload::Records(vec![Record {
        path,
        value,
        time: None,
        guessed,
    }]))
}

/// Parses text as a value of `kind`.
pub fn parse_as(text: &str, kind: ResourceType) -> Result<Value, String> {
    let bad = || format!("{text:?} is not a valid {kind}");
    Ok(match kind {
        ResourceType::String => Value::String(text.to_owned()),
        ResourceType::CoreLink => Value::CoreLink(text.to_owned()),
        ResourceType::Integer => Value::Integer(text.trim().parse().map_err(|_| bad())?),
        ResourceType::Time => Value::Time(text.trim().parse().map_err(|_| bad())?),
        ResourceType::UnsignedInteger => {
            Value::UnsignedInteger(text.trim().parse().map_err(|_| bad())?)
        }
        ResourceType::Float => Value::Float(text.trim().parse().map_err(|_| bad())?),
        ResourceType::Boolean => match text.trim() {
            "0" | "false" => Value::Boolean(false),
            "1" | "true" => Value::Boolean(true),
            _ => return Err(bad()),
        },
        ResourceType::ObjectLink => {
            let (o, i) = text.trim().split_once(':').ok_or_else(bad)?;
            Value::ObjectLink(o.parse().map_err(|_| bad())?, i.parse().map_err(|_| bad())?)
        }
        ResourceType::Opaque => Value::Opaque(base64_decode(text.trim()).ok_or_else(bad)?),
        ResourceType::None if text.is_empty() => Value::None,
        ResourceType::None => Value::String(text.to_owned()),
    })
}

fn guess(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        Value::Integer(i)
    } else if let Ok(u) = text.parse::<u64>() {
        Value::UnsignedInteger(u)
    } else if let Ok(f) = text.parse::<f64>().map_err(drop).and_then(|f| {
        // Only plain decimal notation: "inf", "nan" stay strings.
        let plain = text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
        if plain { Ok(f) } else { Err(()) }
    }) {
        Value::Float(f)
    } else {
        Value::String(text.to_owned())
    }
}

// ---------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------

/// Encodes one value as text.
pub fn encode(value: &Value) -> Result<Vec<u8>, EncodeError> {
    Ok(to_text(value).into_bytes())
}

/// The text form of a value.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Integer(i) | Value::Time(i) => i.to_string(),
        Value::UnsignedInteger(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => u8::from(*b).to_string(),
        Value::String(s) | Value::CoreLink(s) => s.clone(),
        Value::Opaque(b) => base64_encode(b),
        Value::ObjectLink(o, i) => format!("{o}:{i}"),
        Value::None => String::new(),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64_encode(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on bad input.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in body.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (bits < 6).then_some(out)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str, path: &str) -> Record {
        let reg = Registry::builtin();
        let p = path.parse().unwrap();
        match decode(text.as_bytes(), Some(&p), &reg).unwrap() {
            Payload::Records(mut r) => r.remove(0),
            _ => panic!(),
        }
    }

    #[test]
    fn decodes_by_definition() {
        // Core §7.4.1 examples: Battery Level "100", Manufacturer text.
        assert_eq!(dec("100", "/3/0/9").value, Value::Integer(100));
        assert_eq!(
            dec("Open Mobile Alliance", "/3/0/0").value,
            Value::String("Open Mobile Alliance".into())
        );
        assert_eq!(
            dec("1367491215", "/3/0/13").value,
            Value::Time(1_367_491_215)
        );
        assert_eq!(dec("1", "/1/0/6").value, Value::Boolean(true));
        assert_eq!(
            dec("AQIDBAU=", "/5/0/0").value,
            Value::Opaque(vec![1, 2, 3, 4, 5])
        );
        assert_eq!(dec("21.5", "/3303/0/5700").value, Value::Float(21.5));
    }

    #[test]
    fn guesses_without_definition() {
        let r = dec("42", "/9999/0/0");
        assert_eq!((r.value, r.guessed), (Value::Integer(42), true));
        assert_eq!(dec("4.5", "/9999/0/0").value, Value::Float(4.5));
        assert_eq!(dec("nan", "/9999/0/0").value, Value::String("nan".into()));
    }

    #[test]
    fn rejects_text_that_does_not_fit_the_type() {
        let reg = Registry::builtin();
        let p: Path = "/3/0/9".parse().unwrap();
        let e = decode(b"full", Some(&p), &reg).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid text: \"full\" is not a valid Integer at byte 0"
        );
        let e = decode(b"ab\xff", Some(&p), &reg).unwrap_err();
        assert_eq!(e.offset, 2);
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..20u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&data)), Some(data));
        }
        assert_eq!(base64_encode(b"\x01\x02\x03\x04\x05"), "AQIDBAU=");
        assert_eq!(base64_decode("!!"), None);
    }

    #[test]
    fn encodes_values() {
        assert_eq!(to_text(&Value::Boolean(true)), "1");
        assert_eq!(to_text(&Value::ObjectLink(3, 0)), "3:0");
        assert_eq!(to_text(&Value::Float(1.5)), "1.5");
    }
}
