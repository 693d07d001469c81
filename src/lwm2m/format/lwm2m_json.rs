//! OMA LwM2M JSON (content format 11543, legacy 1543), Core 1.0 §6.4.4:
//! `{"bn":"/3/0/","bt":…,"e":[{"n":"0","sv":"…"},{"n":"6/0","v":1},…]}`.
//! Entries carry `v` (number), `sv` (string; Opaque as base64), `bv`
//! (boolean) or `ov` (object link `A:B`), and optionally `t` (time,
//! relative to `bt`). Names are relative to `bn`.

use serde_json::Value as Json;

use super::senml::{json_error_offset, json_object_offsets};
use super::text::{base64_decode, base64_encode};
use super::{
    EncodeError, Field, FormatError, Number, Payload, cf, defined_type, numeric, typed_number,
};
use crate::lwm2m::node::{Path, Record, ResourceType, Value};
use crate::lwm2m::objects::Registry;

// ---------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------

fn entry(
    e: &Json,
    bn: &str,
    bt: Option<f64>,
    base: Option<&Path>,
    registry: &Registry,
) -> Result<Record, String> {
    let Json::Object(e) = e else {
        return Err("entry must be an object".into());
    };
    let n = match e.get("n") {
        None => "",
        Some(Json::String(s)) => s,
        Some(_) => return Err("\"n\" must be a string".into()),
    };
    // `bn` + `n`; some clients write `"bn":"/3/0"` with `"n":"0"`, meaning
    // /3/0/0, so a `/` is put between when neither side has one.
    let name = if bn.is_empty() || n.is_empty() || bn.ends_with('/') || n.starts_with('/') {
        format!("{bn}{n}")
    } else {
        format!("{bn}/{n}")
    };
    let path = match (name.as_str(), base) {
        ("", Some(b)) => *b,
        _ => name.parse::<Path>().map_err(|e| e.to_string())?,
    };
    let def = defined_type(registry, &path);
    let time = match (e.get("t"), bt) {
        (Some(Json::Number(t)), bt) => Some(t.as_f64().unwrap_or(0.0) + bt.unwrap_or(0.0)),
        (Some(_), _) => return Err("\"t\" must be a number".into()),
        (None, bt) => bt,
    };
    let mut values = e
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "v" | "sv" | "bv" | "ov"));
    let (value, guessed) = match (values.next(), values.next()) {
        (None, _) => (Value::None, false),
        (Some(_), Some(_)) => return Err("more than one value field".into()),
        (Some((k, v)), None) => match (k.as_str(), v) {
            ("v", Json::Number(num)) => {
                let num = match (num.as_i64(), num.as_u64()) {
                    (Some(i), _) => Number::Int(i128::from(i)),
                    (None, Some(u)) => Number::Int(i128::from(u)),
                    _ => Number::Float(num.as_f64().unwrap_or(f64::NAN)),
                };
                typed_number(num, def).ok_or_else(|| format!("number does not fit {path}"))?
            }
            ("sv", Json::String(s)) => match def {
                Some(ResourceType::Opaque) => (
                    Value::Opaque(base64_decode(s).ok_or_else(|| format!("{s:?} is not base64"))?),
                    false,
                ),
                Some(ResourceType::CoreLink) => (Value::CoreLink(s.clone()), false),
                _ => (Value::String(s.clone()), false),
            },
            ("bv", Json::Bool(b)) => (Value::Boolean(*b), false),
            ("ov", Json::String(s)) => (
                super::cbor::parse_objlnk(s).ok_or_else(|| format!("{s:?} is not A:B"))?,
                false,
            ),
            (k, _) => return Err(format!("{k:?} has the wrong JSON type")),
        },
    };
    Ok(Record {
        path,
        value,
        time,
        guessed,
    })
}

/// Decodes an LwM2M JSON payload into records.
pub fn decode(
    bytes: &[u8],
    base: Option<&Path>,
    registry: &Registry,
) -> Result<Vec<Record>, FormatError> {
    let json: Json = serde_json::from_slice(bytes).map_err(|e| {
        FormatError::invalid(json_error_offset(bytes, &e), Field::Json, e.to_string())
    })?;
    let Json::Object(top) = json else {
        return Err(FormatError::invalid(
            0,
            Field::Json,
            "LwM2M JSON must be an object",
        ));
    };
    let bn = match top.get("bn") {
        None => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(_) => {
            return Err(FormatError::invalid(
                0,
                Field::Entry,
                "\"bn\" must be a string",
            ));
        }
    };
    let bt = match top.get("bt") {
        None => None,
        Some(Json::Number(n)) => n.as_f64(),
        Some(_) => {
            return Err(FormatError::invalid(
                0,
                Field::Entry,
                "\"bt\" must be a number",
            ));
        }
    };
    let Some(Json::Array(entries)) = top.get("e") else {
        return Err(FormatError::invalid(0, Field::Entry, "missing \"e\" array"));
    };
    let offsets = json_object_offsets(bytes, 2);
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match entry(e, &bn, bt, base, registry) {
            Ok(r) => out.push(r),
            Err(reason) => {
                let at = offsets.get(i).copied().unwrap_or(0);
                return Err(
                    FormatError::invalid(at, Field::Entry, format!("entry {i}: {reason}"))
                        .with_partial(cf::LWM2M_JSON, Payload::Records(out)),
                );
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------

/// Encodes records as LwM2M JSON with `bn` = their common parent.
pub fn encode(records: &[Record]) -> Result<Vec<u8>, EncodeError> {
    let err = |r: String| EncodeError::new(cf::LWM2M_JSON, r);
    let mut common = records
        .first()
        .map(|f| records.iter().fold(f.path, |a, r| a.common_prefix(&r.path)))
        .unwrap_or(Path::ROOT);
    if records.iter().any(|r| r.path == common) {
        common = common.parent().unwrap_or(Path::ROOT);
    }
    let bn = if common.is_root() {
        "/".to_owned()
    } else {
        format!("{common}/")
    };
    let mut entries = Vec::new();
    for r in records {
        let full = r.path.to_string();
        let n = full.strip_prefix(&bn).unwrap_or(&full).to_owned();
        let mut e = serde_json::Map::new();
        e.insert("n".into(), Json::String(n));
        let (k, v) = match &r.value {
            Value::Boolean(b) => ("bv", Json::Bool(*b)),
            Value::String(s) | Value::CoreLink(s) => ("sv", Json::String(s.clone())),
            Value::Opaque(d) => ("sv", Json::String(base64_encode(d))),
            Value::ObjectLink(o, i) => ("ov", Json::String(format!("{o}:{i}"))),
            Value::None => ("", Json::Null),
            v => match numeric(v) {
                Some(Number::Int(i)) => (
                    "v",
                    i64::try_from(i)
                        .map(Json::from)
                        .or_else(|_| u64::try_from(i).map(Json::from))
                        .map_err(|_| err(format!("{i} out of range")))?,
                ),
                Some(Number::Float(f)) => (
                    "v",
                    serde_json::Number::from_f64(f)
                        .map(Json::Number)
                        .ok_or_else(|| err(format!("{f} has no JSON form")))?,
                ),
                None => ("", Json::Null),
            },
        };
        if !k.is_empty() {
            e.insert(k.into(), v);
        }
        if let Some(t) = r.time {
            let t = serde_json::Number::from_f64(t)
                .ok_or_else(|| err(format!("time {t} has no JSON form")))?;
            e.insert("t".into(), Json::Number(t));
        }
        entries.push(Json::Object(e));
    }
    let mut top = serde_json::Map::new();
    top.insert("bn".into(), Json::String(bn));
    top.insert("e".into(), Json::Array(entries));
    serde_json::to_vec(&Json::Object(top)).map_err(|e| err(e.to_string()))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    /// Core 1.0.2 §6.4.4 JSON example: Read on Device Object Instance /3/0.
    const DEVICE: &str =
        include_str!("../../../tests/fixtures/spec/core-1.0.2-6.4.4-json-device-instance.json");

    #[test]
    fn decodes_spec_example_device_instance() {
        let r = decode(DEVICE.as_bytes(), Some(&p("/3/0")), &Registry::builtin()).unwrap();
        assert_eq!(r.len(), 16);
        assert_eq!(
            r[0],
            Record::new(p("/3/0/0"), Value::String("Open Mobile Alliance".into()))
        );
        assert_eq!(r[13].value, Value::Time(1_367_491_215));
        assert_eq!(r[5], Record::new(p("/3/0/6/1"), Value::Integer(5)));
        let again = decode(&encode(&r).unwrap(), None, &Registry::builtin()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn decodes_spec_example_with_times() {
        // Shape of the Core 1.0.2 §6.4.4 example with historical values
        // (bt + t), on the Temperature object.
        let json = br#"{"bn":"/3303/0/5700","bt":25462634,"e":[{"v":22.4,"t":-5},{"v":22.9,"t":-30},{"v":24.1,"t":-50}]}"#;
        let r = decode(json, None, &Registry::builtin()).unwrap();
        assert_eq!(r[0].path, p("/3303/0/5700"));
        assert_eq!(r[1].time, Some(25_462_604.0));
        assert_eq!(r[2].value, Value::Float(24.1));
    }

    #[test]
    fn decodes_object_links_and_opaque() {
        let json = br#"{"bn":"/","e":[{"n":"1/0/10","ov":"11:0"},{"n":"5/0/0","sv":"AQID"}]}"#;
        let r = decode(json, None, &Registry::builtin()).unwrap();
        assert_eq!(r[0].value, Value::ObjectLink(11, 0));
        assert_eq!(r[1].value, Value::Opaque(vec![1, 2, 3]));
        assert_eq!(
            decode(&encode(&r).unwrap(), None, &Registry::builtin()).unwrap(),
            r
        );
    }

    #[test]
    fn reports_bad_entries() {
        let json = br#"{"bn":"/3/0/","e":[{"n":"0","sv":"x"},{"n":"1","bv":3}]}"#;
        let e = decode(json, None, &Registry::builtin()).unwrap_err();
        assert_eq!(e.offset, 38);
        assert_eq!(
            e.to_string(),
            "invalid entry: entry 1: \"bv\" has the wrong JSON type at byte 38"
        );
        assert!(decode(b"[]", None, &Registry::empty()).is_err());
        assert!(decode(b"{\"bn\":\"/\"}", None, &Registry::empty()).is_err());
        assert!(decode(b"{", None, &Registry::empty()).is_err());
    }
}
