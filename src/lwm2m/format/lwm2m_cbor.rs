//! LwM2M CBOR (content format 11544), Core 1.2 §7.4.7: nested CBOR maps
//! keyed by path identifiers from the root, e.g. `{3: {0: {0: "Anjay",
//! 6: {0: 1, 1: 5}}}}`. A key may also be an array of identifiers that
//! stands for several levels at once (`{[3, 0]: {0: "Anjay"}}`). Leaves are
//! CBOR values as in the CBOR single-value format; `null` means no value.
//!
//! Encoding writes plain nested maps (one level per key) in record order.

use ciborium::Value as Cbor;

use super::cbor::{cbor_from_value, read_exactly_one, value_from_cbor, write_item};
use super::{EncodeError, Field, FormatError, Payload, cf, defined_type};
use crate::lwm2m::node::{Path, Record};
use crate::lwm2m::objects::Registry;

// ---------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------

fn key_ids(key: &Cbor) -> Option<Vec<u16>> {
    let id = |k: &Cbor| match k {
        Cbor::Integer(i) => u16::try_from(i128::from(*i)).ok(),
        _ => None,
    };
    match key {
        Cbor::Array(a) if !a.is_empty() => a.iter().map(id).collect(),
        k => id(k).map(|i| vec![i]),
    }
}

fn walk(
    map: &[(Cbor, Cbor)],
    at: Path,
    registry: &Registry,
    out: &mut Vec<Record>,
) -> Result<(), String> {
    for (k, v) in map {
        let ids = key_ids(k).ok_or_else(|| {
            format!("below {at}: key is not an identifier or array of identifiers")
        })?;
        let mut path = at;
        for id in ids {
            path = path
                .child(id)
                .ok_or_else(|| format!("below {at}: path deeper than 4 levels"))?;
        }
        match v {
            Cbor::Map(m) => walk(m, path, registry, out)?,
            leaf => {
                if path.depth() < 3 {
                    return Err(format!(
                        "{path}: a value needs a Resource or Resource Instance path"
                    ));
                }
                let (value, guessed) = value_from_cbor(leaf, defined_type(registry, &path))
                    .map_err(|r| format!("{path}: {r}"))?;
                out.push(Record {
                    path,
                    value,
                    time: None,
                    guessed,
                });
            }
        }
    }
    Ok(())
}

/// Decodes an LwM2M CBOR payload into records (paths are absolute; `base`
/// is not needed). Structural errors name the path; the offset is that of
/// the whole item because ciborium does not keep positions.
pub fn decode(
    bytes: &[u8],
    _base: Option<&Path>,
    registry: &Registry,
) -> Result<Vec<Record>, FormatError> {
    let item = read_exactly_one(bytes)?;
    let Cbor::Map(m) = item else {
        return Err(FormatError::invalid(
            0,
            Field::Entry,
            "LwM2M CBOR must be a map",
        ));
    };
    let mut out = Vec::new();
    walk(&m, Path::ROOT, registry, &mut out).map_err(|r| {
        FormatError::invalid(0, Field::Entry, r)
            .with_partial(cf::LWM2M_CBOR, Payload::Records(out.clone()))
    })?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------

fn insert(map: &mut Vec<(Cbor, Cbor)>, ids: &[u16], leaf: Cbor) -> Result<(), String> {
    let Some((&first, rest)) = ids.split_first() else {
        return Err("record at the root".into());
    };
    let key = Cbor::Integer(first.into());
    if rest.is_empty() {
        if map.iter().any(|(k, _)| *k == key) {
            return Err(format!("identifier {first} given twice"));
        }
        map.push((key, leaf));
        return Ok(());
    }
    let idx = match map.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            map.push((key, Cbor::Map(Vec::new())));
            map.len() - 1
        }
    };
    match &mut map[idx].1 {
        Cbor::Map(inner) => insert(inner, rest, leaf),
        _ => Err(format!(
            "identifier {first} is both a value and a container"
        )),
    }
}

/// Encodes records as nested LwM2M CBOR maps (time stamps are not
/// representable and are dropped).
pub fn encode(records: &[Record]) -> Result<Vec<u8>, EncodeError> {
    let mut root = Vec::new();
    for r in records {
        insert(&mut root, r.path.ids(), cbor_from_value(&r.value))
            .map_err(|e| EncodeError::new(cf::LWM2M_CBOR, format!("{}: {e}", r.path)))?;
    }
    write_item(&Cbor::Map(root), cf::LWM2M_CBOR)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lwm2m::node::Value;

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    #[test]
    fn encodes_nested_maps_in_record_order() {
        let r = vec![
            Record::new(p("/3/0/0"), Value::String("A".into())),
            Record::new(p("/3/0/6/0"), Value::Integer(1)),
            Record::new(p("/3/0/6/1"), Value::Integer(5)),
        ];
        let bytes = encode(&r).unwrap();
        // {3: {0: {0: "A", 6: {0: 1, 1: 5}}}}
        assert_eq!(
            hex::encode(&bytes),
            "a103a100a2006141 06a200010105".replace(' ', "")
        );
        assert_eq!(decode(&bytes, None, &Registry::builtin()).unwrap(), r);
    }

    #[test]
    fn decodes_array_keys_spanning_levels() {
        // The array-key form of Core 1.2 §7.4.7 (constructed example):
        // {[3, 0]: {0: "A"}, [1, 0, 1]: 300}
        let bytes = hex::decode("a2820300a10061418301000119012c").unwrap();
        let r = decode(&bytes, None, &Registry::builtin()).unwrap();
        assert_eq!(r[0], Record::new(p("/3/0/0"), Value::String("A".into())));
        assert_eq!(r[1], Record::new(p("/1/0/1"), Value::Integer(300)));
    }

    #[test]
    fn rejects_bad_structure() {
        let reg = Registry::empty();
        // {3: 5}: a value at object level.
        let e = decode(&[0xa1, 0x03, 0x05], None, &reg).unwrap_err();
        assert!(e.to_string().contains("/3: a value needs"), "{e}");
        // {"x": 1}
        assert!(decode(&[0xa1, 0x61, b'x', 0x01], None, &reg).is_err());
        assert!(decode(&[0x80], None, &reg).is_err());
        let dup = vec![
            Record::new(p("/3/0/1"), Value::Integer(1)),
            Record::new(p("/3/0/1/0"), Value::Integer(1)),
        ];
        assert!(encode(&dup).is_err());
    }
}
