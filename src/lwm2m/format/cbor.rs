//! CBOR single value (content format 60), Core 1.1 §7.4.6: one CBOR data
//! item holding one resource value. Also the CBOR helpers shared by SenML
//! CBOR and LwM2M CBOR (reading one item with offsets, value mapping).
//!
//! Integers, floats, booleans, text and byte strings map to the obvious
//! values; Time may come as an integer or tagged (tag 1); Objlnk is text
//! `A:B`. Encoding uses ciborium: definite lengths, shortest integer heads,
//! shortest lossless floats.

use ciborium::Value as Cbor;

use super::{EncodeError, Field, FormatError, Number, Payload, cf, defined_type, typed_number};
use crate::lwm2m::node::{Path, Record, ResourceType, Value};
use crate::lwm2m::objects::Registry;

// ---------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------

/// Reads one CBOR item from the start of `bytes`; returns it and the
/// number of bytes it took. Errors carry the offset ciborium reports.
pub fn read_item(bytes: &[u8]) -> Result<(Cbor, usize), FormatError> {
    let mut rest = bytes;
    // A small scratch buffer: ciborium's default zeroes 4 KiB per call,
    // which dominates decoding many small SenML records. Longer strings
    // are still read (into their own allocation).
    let mut scratch = [0u8; 256];
    match ciborium::de::from_reader_with_buffer::<Cbor, _>(&mut rest, &mut scratch) {
        Ok(v) => Ok((v, bytes.len() - rest.len())),
        Err(e) => {
            let consumed = bytes.len() - rest.len();
            let (offset, reason) = match e {
                ciborium::de::Error::Io(_) => (consumed, "unexpected end of data".to_owned()),
                ciborium::de::Error::Syntax(at) => (at, "malformed CBOR".to_owned()),
                ciborium::de::Error::Semantic(at, msg) => (at.unwrap_or(consumed), msg),
                ciborium::de::Error::RecursionLimitExceeded => {
                    (consumed, "nesting too deep".to_owned())
                }
            };
            Err(FormatError::invalid(offset, Field::Cbor, reason))
        }
    }
}

/// Reads exactly one CBOR item: trailing bytes are an error.
pub fn read_exactly_one(bytes: &[u8]) -> Result<Cbor, FormatError> {
    let (item, used) = read_item(bytes)?;
    if used != bytes.len() {
        return Err(FormatError::invalid(
            used,
            Field::Cbor,
            format!("{} bytes after the CBOR item", bytes.len() - used),
        ));
    }
    Ok(item)
}

/// Types one CBOR item as a resource value (`def` = defined type).
/// Returns the value and whether its type was guessed.
pub fn value_from_cbor(item: &Cbor, def: Option<ResourceType>) -> Result<(Value, bool), String> {
    let mismatch = |what: &str| match def {
        Some(d) => format!("{what} does not fit a {d} resource"),
        None => format!("{what} is not a resource value"),
    };
    Ok(match item {
        Cbor::Integer(i) => {
            typed_number(Number::Int(i128::from(*i)), def).ok_or_else(|| mismatch("integer"))?
        }
        Cbor::Float(f) => typed_number(Number::Float(*f), def).ok_or_else(|| mismatch("float"))?,
        Cbor::Tag(1, inner) => match &**inner {
            Cbor::Integer(i) => (
                Value::Time(i64::try_from(i128::from(*i)).map_err(|_| mismatch("time"))?),
                false,
            ),
            Cbor::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
                (Value::Time(*f as i64), false)
            }
            _ => return Err(mismatch("tag 1 content")),
        },
        Cbor::Bool(b) => (Value::Boolean(*b), false),
        Cbor::Bytes(b) => (Value::Opaque(b.clone()), false),
        Cbor::Text(s) => match def {
            Some(ResourceType::ObjectLink) => (
                parse_objlnk(s).ok_or_else(|| format!("{s:?} is not an object link A:B"))?,
                false,
            ),
            Some(ResourceType::CoreLink) => (Value::CoreLink(s.clone()), false),
            _ => (Value::String(s.clone()), false),
        },
        Cbor::Null => (Value::None, false),
        _ => return Err(mismatch("an array, map or tag")),
    })
}

/// `A:B` → object link.
pub fn parse_objlnk(s: &str) -> Option<Value> {
    let (o, i) = s.split_once(':')?;
    Some(Value::ObjectLink(o.parse().ok()?, i.parse().ok()?))
}

/// Decodes a single-value CBOR payload for the resource at `base`.
pub fn decode(
    bytes: &[u8],
    base: Option<&Path>,
    registry: &Registry,
) -> Result<Payload, FormatError> {
    let item = read_exactly_one(bytes)?;
    let path = base.copied().unwrap_or(Path::ROOT);
    let (value, guessed) = value_from_cbor(&item, defined_type(registry, &path))
        .map_err(|r| FormatError::invalid(0, Field::Value, r))?;
    Ok(Payload::Records(vec![Record {
        path,
        value,
        time: None,
        guessed,
    }]))
}

// ---------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------

/// The CBOR item for a value (Time as a plain integer, Objlnk as `A:B`).
pub fn cbor_from_value(value: &Value) -> Cbor {
    match value {
        Value::Integer(i) | Value::Time(i) => Cbor::Integer((*i).into()),
        Value::UnsignedInteger(u) => Cbor::Integer((*u).into()),
        Value::Float(f) => Cbor::Float(*f),
        Value::Boolean(b) => Cbor::Bool(*b),
        Value::String(s) | Value::CoreLink(s) => Cbor::Text(s.clone()),
        Value::Opaque(b) => Cbor::Bytes(b.clone()),
        Value::ObjectLink(o, i) => Cbor::Text(format!("{o}:{i}")),
        Value::None => Cbor::Null,
    }
}

/// Serializes a CBOR item (writing to a Vec cannot fail; an error is
/// reported rather than unwrapped all the same).
pub fn write_item(item: &Cbor, content_format: u16) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(item, &mut out)
        .map_err(|e| EncodeError::new(content_format, e.to_string()))?;
    Ok(out)
}

/// Encodes one value.
pub fn encode(value: &Value) -> Result<Vec<u8>, EncodeError> {
    write_item(&cbor_from_value(value), cf::CBOR)
}

// ---------------------------------------------------------------------------
// Display
// ---------------------------------------------------------------------------

/// Python-repr-like text of a CBOR item, as the original printed decoded
/// CBOR: `'text'`, `b'\x01'`, `True`, `None`, `[1, 2]`, `{0: 'a'}`, floats
/// with Python's `repr` (`1.0`, `1e+20`).
pub fn py_repr(item: &Cbor) -> String {
    match item {
        Cbor::Integer(i) => i128::from(*i).to_string(),
        Cbor::Float(f) => py_float(*f),
        Cbor::Bool(true) => "True".into(),
        Cbor::Bool(false) => "False".into(),
        Cbor::Null => "None".into(),
        Cbor::Text(s) => py_str(s),
        Cbor::Bytes(b) => super::tlv::py_bytes(b),
        Cbor::Tag(t, v) => format!("CBORTag({t}, {})", py_repr(v)),
        Cbor::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Cbor::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_repr(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "undefined".into(),
    }
}

/// Python `repr(str)`.
pub fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python `repr(float)`: shortest round-trip digits, `.0` for integral
/// values, exponent form outside 1e-4..1e16, `inf`/`nan`.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Rust `{:e}` gives `1e20` / `1.5e-7`; Python writes `1e+20`, `1.5e-07`.
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    format!("{f:?}")
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_single_values_by_definition() {
        let reg = Registry::builtin();
        let at = |s: &str| s.parse::<Path>().unwrap();
        let one = |b: &[u8], p: &str| match decode(b, Some(&at(p)), &reg).unwrap() {
            Payload::Records(r) => r[0].value.clone(),
            _ => panic!(),
        };
        assert_eq!(one(&[0x18, 0x64], "/3/0/9"), Value::Integer(100));
        assert_eq!(
            one(&[0xc1, 0x1a, 0x51, 0x82, 0x42, 0x8f], "/3/0/13"),
            Value::Time(1_367_491_215)
        );
        assert_eq!(
            one(&[0x1a, 0x51, 0x82, 0x42, 0x8f], "/3/0/13"),
            Value::Time(1_367_491_215)
        );
        assert_eq!(one(&[0xf9, 0x3e, 0x00], "/3303/0/5700"), Value::Float(1.5));
        assert_eq!(
            one(&[0x63, b'3', b':', b'0'], "/1/0/10"),
            Value::ObjectLink(3, 0)
        );
        assert_eq!(one(&[0xf5], "/1/0/6"), Value::Boolean(true));
    }

    #[test]
    fn rejects_trailing_bytes_and_bad_items() {
        let reg = Registry::empty();
        let e = decode(&[0x01, 0x02], None, &reg).unwrap_err();
        assert_eq!(e.offset, 1);
        assert!(decode(&[0x18], None, &reg).is_err());
        assert!(decode(&[], None, &reg).is_err());
        assert!(decode(&[0x80], None, &reg).is_err());
    }

    #[test]
    fn encodes_shortest_forms() {
        assert_eq!(encode(&Value::Integer(100)).unwrap(), [0x18, 0x64]);
        assert_eq!(encode(&Value::Integer(-1)).unwrap(), [0x20]);
        assert_eq!(encode(&Value::Float(1.5)).unwrap(), [0xf9, 0x3e, 0x00]);
        assert_eq!(
            encode(&Value::ObjectLink(3, 0)).unwrap(),
            [0x63, b'3', b':', b'0']
        );
    }

    #[test]
    fn renders_python_reprs() {
        assert_eq!(py_float(11.0), "11.0");
        assert_eq!(py_float(1e20), "1e+20");
        assert_eq!(py_float(1.5e-7), "1.5e-07");
        assert_eq!(py_float(0.1), "0.1");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("0/0/0"), "'0/0/0'");
    }
}
