//! SenML (RFC 8428) as LwM2M uses it (Core 1.1 §7.4.4–7.4.5): SenML JSON
//! (content format 110), SenML CBOR (112) and their SenML-ETCH variants for
//! Write-Composite (RFC 8790; 320, 322), where a record without a value
//! deletes. Also the original nsh's CBOR text rendering (§13.1).
//!
//! Decoding resolves base name / base time / base value into absolute
//! records: name = bn + n, time = bt + t, numeric value = bv + v. LwM2M
//! adds the `vlo` (object link) field. Encoding writes one base name (the
//! common parent path) and relative names.

use ciborium::Value as Cbor;
use serde_json::Value as Json;

use super::cbor::{py_repr, read_item, write_item};
use super::text::base64_encode;
use super::{
    EncodeError, Field, FormatError, Number, Payload, cf, defined_type, numeric, typed_number,
};
use crate::lwm2m::node::{Path, Record, ResourceType, Value};
use crate::lwm2m::objects::Registry;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// SenML labels (RFC 8428 §6 CBOR keys) plus LwM2M's `vlo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// `bver` (-1)
    BaseVersion,
    /// `bn` (-2)
    BaseName,
    /// `bt` (-3)
    BaseTime,
    /// `bu` (-4)
    BaseUnit,
    /// `bv` (-5)
    BaseValue,
    /// `bs` (-6)
    BaseSum,
    /// `n` (0)
    Name,
    /// `u` (1)
    Unit,
    /// `v` (2)
    Value,
    /// `vs` (3)
    StringValue,
    /// `vb` (4)
    BoolValue,
    /// `s` (5)
    Sum,
    /// `t` (6)
    Time,
    /// `ut` (7)
    UpdateTime,
    /// `vd` (8)
    DataValue,
    /// `vlo` (LwM2M object link; a text key in CBOR too)
    ObjectLink,
}

const LABELS: [(Label, &str, i8); 16] = [
    (Label::BaseVersion, "bver", -1),
    (Label::BaseName, "bn", -2),
    (Label::BaseTime, "bt", -3),
    (Label::BaseUnit, "bu", -4),
    (Label::BaseValue, "bv", -5),
    (Label::BaseSum, "bs", -6),
    (Label::Name, "n", 0),
    (Label::Unit, "u", 1),
    (Label::Value, "v", 2),
    (Label::StringValue, "vs", 3),
    (Label::BoolValue, "vb", 4),
    (Label::Sum, "s", 5),
    (Label::Time, "t", 6),
    (Label::UpdateTime, "ut", 7),
    (Label::DataValue, "vd", 8),
    (Label::ObjectLink, "vlo", i8::MIN),
];

impl Label {
    /// The JSON name (`bn`, `v`, `vlo`, …).
    pub fn json_name(self) -> &'static str {
        LABELS.iter().find(|l| l.0 == self).map_or("", |l| l.1)
    }

    fn from_json(name: &str) -> Option<Label> {
        LABELS.iter().find(|l| l.1 == name).map(|l| l.0)
    }

    /// The CBOR map key (integers per RFC 8428 §6; `vlo` as text).
    pub fn key(self) -> Cbor {
        match LABELS.iter().find(|l| l.0 == self) {
            Some((Label::ObjectLink, name, _)) => Cbor::Text((*name).to_owned()),
            Some((_, _, key)) => Cbor::Integer(i64::from(*key).into()),
            None => Cbor::Null,
        }
    }

    fn from_cbor(key: &Cbor) -> Option<Label> {
        match key {
            Cbor::Integer(i) => {
                let i = i8::try_from(i128::from(*i)).ok()?;
                LABELS
                    .iter()
                    .find(|l| l.2 == i && l.0 != Label::ObjectLink)
                    .map(|l| l.0)
            }
            Cbor::Text(t) => Label::from_json(t),
            _ => None,
        }
    }
}

/// One SenML record with the fields LwM2M uses, before base resolution.
#[derive(Debug, Clone, Default, PartialEq)]
struct RawRecord {
    bn: Option<String>,
    bt: Option<f64>,
    bv: Option<f64>,
    n: Option<String>,
    t: Option<f64>,
    value: Option<SenmlValue>,
}

/// A SenML value field as on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum SenmlValue {
    /// `v` (after adding `bv`).
    Number(Number),
    /// `vs`
    String(String),
    /// `vb`
    Bool(bool),
    /// `vd`
    Data(Vec<u8>),
    /// `vlo` (LwM2M object link text `A:B`)
    ObjectLink(String),
}

/// A resolved SenML record (RFC 8428 §4.6): full name, absolute time,
/// value. Names are arbitrary strings at this stage.
#[derive(Debug, Clone, PartialEq)]
pub struct SenmlRecord {
    /// bn + n.
    pub name: String,
    /// bt + t, when either is present.
    pub time: Option<f64>,
    /// The value, if the record has one.
    pub value: Option<SenmlValue>,
}

// ---------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------

/// Base-resolution state carried from record to record.
#[derive(Default)]
struct Context {
    bn: String,
    bt: f64,
    bv: Option<f64>,
}

/// Stage 1 (RFC 8428 §4.6): applies and carries base fields.
fn resolve_base(raw: RawRecord, ctx: &mut Context) -> SenmlRecord {
    if let Some(bn) = raw.bn {
        ctx.bn = bn;
    }
    if let Some(bt) = raw.bt {
        ctx.bt = bt;
    }
    if raw.bv.is_some() {
        ctx.bv = raw.bv;
    }
    let time = match (raw.t, raw.bt.is_some() || ctx.bt != 0.0) {
        (Some(t), _) => Some(ctx.bt + t),
        (None, true) => Some(ctx.bt),
        (None, false) => None,
    };
    let value = match (raw.value, ctx.bv) {
        (Some(SenmlValue::Number(n)), Some(bv)) => Some(SenmlValue::Number(match n {
            Number::Int(i) if bv.fract() == 0.0 && bv.abs() < 9e18 => Number::Int(i + bv as i128),
            Number::Int(i) => Number::Float(i as f64 + bv),
            Number::Float(f) => Number::Float(f + bv),
        })),
        (v, _) => v,
    };
    SenmlRecord {
        name: format!("{}{}", ctx.bn, raw.n.as_deref().unwrap_or("")),
        time,
        value,
    }
}

/// Stage 2 (LwM2M): the name is a path, the value is typed by the
/// resource definition.
fn to_record(
    rec: SenmlRecord,
    base: Option<&Path>,
    registry: &Registry,
) -> Result<Record, (Field, String)> {
    let path = match (rec.name.as_str(), base) {
        ("", Some(b)) => *b,
        ("", None) => return Err((Field::SenmlName, "empty name".into())),
        (name, _) => name
            .parse::<Path>()
            .map_err(|e| (Field::SenmlName, e.to_string()))?,
    };
    let def = defined_type(registry, &path);
    let bad = |what: &str| {
        (
            Field::SenmlValue,
            format!(
                "{what} does not fit {path} (type {})",
                def.map_or("?", ResourceType::name)
            ),
        )
    };
    let (value, guessed) = match rec.value {
        None => (Value::None, false),
        Some(SenmlValue::Number(n)) => typed_number(n, def).ok_or_else(|| bad("number"))?,
        Some(SenmlValue::String(s)) if def == Some(ResourceType::CoreLink) => {
            (Value::CoreLink(s), false)
        }
        Some(SenmlValue::String(s)) => (Value::String(s), false),
        Some(SenmlValue::Bool(b)) => (Value::Boolean(b), false),
        Some(SenmlValue::Data(d)) => (Value::Opaque(d), false),
        Some(SenmlValue::ObjectLink(s)) => (
            super::cbor::parse_objlnk(&s).ok_or_else(|| bad("vlo that is not A:B"))?,
            false,
        ),
    };
    Ok(Record {
        path,
        value,
        time: rec.time,
        guessed,
    })
}

fn set_value(raw: &mut RawRecord, v: SenmlValue) -> Result<(), (Field, String)> {
    if raw.value.replace(v).is_some() {
        return Err((Field::SenmlValue, "more than one value field".into()));
    }
    Ok(())
}

fn json_number(n: &serde_json::Number) -> Number {
    match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => Number::Int(i128::from(i)),
        (None, Some(u)) => Number::Int(i128::from(u)),
        _ => Number::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

fn number_as_f64(n: Number) -> f64 {
    match n {
        Number::Int(i) => i as f64,
        Number::Float(f) => f,
    }
}

/// Offsets of every `{` opened at nesting depth `depth` (0 = top level),
/// skipping strings: positions of JSON records for error reports.
pub(crate) fn json_object_offsets(bytes: &[u8], depth: usize) -> Vec<usize> {
    let (mut d, mut in_str, mut esc) = (0usize, false, false);
    let mut out = Vec::new();
    for (i, &c) in bytes.iter().enumerate() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => {
                if c == b'{' && d == depth {
                    out.push(i);
                }
                d += 1;
            }
            b'}' | b']' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    out
}

/// Byte offset of a serde_json error (it reports line and column).
pub(crate) fn json_error_offset(bytes: &[u8], e: &serde_json::Error) -> usize {
    let mut line = 1;
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        if line == e.line() {
            break;
        }
        if c == b'\n' {
            line += 1;
            start = i + 1;
        }
    }
    (start + e.column().saturating_sub(1)).min(bytes.len())
}

fn raw_from_json(obj: &serde_json::Map<String, Json>) -> Result<RawRecord, (Field, String)> {
    let mut raw = RawRecord::default();
    let num = |k: &str, v: &Json| match v {
        Json::Number(n) => Ok(json_number(n)),
        _ => Err((Field::SenmlRecord, format!("{k:?} must be a number"))),
    };
    let text = |k: &str, v: &Json| match v {
        Json::String(s) => Ok(s.clone()),
        _ => Err((Field::SenmlRecord, format!("{k:?} must be a string"))),
    };
    for (k, v) in obj {
        match Label::from_json(k) {
            Some(Label::BaseName) => raw.bn = Some(text(k, v)?),
            Some(Label::BaseTime) => raw.bt = Some(number_as_f64(num(k, v)?)),
            Some(Label::BaseValue) => raw.bv = Some(number_as_f64(num(k, v)?)),
            Some(Label::Name) => raw.n = Some(text(k, v)?),
            Some(Label::Time) => raw.t = Some(number_as_f64(num(k, v)?)),
            Some(Label::Value) => set_value(&mut raw, SenmlValue::Number(num(k, v)?))?,
            Some(Label::StringValue) => set_value(&mut raw, SenmlValue::String(text(k, v)?))?,
            Some(Label::BoolValue) => match v {
                Json::Bool(b) => set_value(&mut raw, SenmlValue::Bool(*b))?,
                _ => return Err((Field::SenmlValue, "\"vb\" must be a boolean".into())),
            },
            Some(Label::DataValue) => {
                let s = text(k, v)?;
                let d = base64_any(&s)
                    .ok_or((Field::SenmlValue, format!("\"vd\" {s:?} is not base64")))?;
                set_value(&mut raw, SenmlValue::Data(d))?;
            }
            Some(Label::ObjectLink) => set_value(&mut raw, SenmlValue::ObjectLink(text(k, v)?))?,
            Some(_) => {}
            None if k.ends_with('_') => {
                return Err((Field::SenmlRecord, format!("must-understand label {k:?}")));
            }
            None => {}
        }
    }
    Ok(raw)
}

/// base64 or base64url, padding optional (RFC 8428 §4.3 says base64url
/// without padding; clients differ).
fn base64_any(s: &str) -> Option<Vec<u8>> {
    super::text::base64_decode(&s.replace('-', "+").replace('_', "/"))
}

fn base64url(b: &[u8]) -> String {
    base64_encode(b)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

type Partial<T> = (Vec<T>, FormatError);

fn json_pack<T>(
    bytes: &[u8],
    mut finish: impl FnMut(SenmlRecord) -> Result<T, (Field, String)>,
) -> Result<Vec<T>, Partial<T>> {
    let json: Json = serde_json::from_slice(bytes).map_err(|e| {
        let at = json_error_offset(bytes, &e);
        (
            Vec::new(),
            FormatError::invalid(at, Field::Json, e.to_string()),
        )
    })?;
    let Json::Array(items) = json else {
        let e = FormatError::invalid(0, Field::Json, "SenML pack must be an array");
        return Err((Vec::new(), e));
    };
    let offsets = json_object_offsets(bytes, 1);
    let mut ctx = Context::default();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = offsets.get(i).copied().unwrap_or(0);
        let result = match item {
            Json::Object(obj) => raw_from_json(obj),
            _ => Err((Field::SenmlRecord, "record must be an object".into())),
        }
        .and_then(|raw| finish(resolve_base(raw, &mut ctx)));
        match result {
            Ok(r) => out.push(r),
            Err((field, reason)) => {
                let e = FormatError::invalid(at, field, format!("record {i}: {reason}"));
                return Err((out, e));
            }
        }
    }
    Ok(out)
}

/// Decodes a SenML JSON pack generically (RFC 8428): resolved names,
/// times and values, no LwM2M meaning attached.
pub fn decode_json_pack(bytes: &[u8]) -> Result<Vec<SenmlRecord>, FormatError> {
    json_pack(bytes, Ok).map_err(|(_, e)| e)
}

/// Decodes SenML JSON (110) or SenML-ETCH JSON (320) into LwM2M records.
/// `base` names records that have no name at all.
pub fn decode_json(
    bytes: &[u8],
    base: Option<&Path>,
    registry: &Registry,
) -> Result<Vec<Record>, FormatError> {
    json_pack(bytes, |r| to_record(r, base, registry))
        .map_err(|(out, e)| e.with_partial(cf::SENML_JSON, Payload::Records(out)))
}

fn raw_from_cbor(map: &[(Cbor, Cbor)]) -> Result<RawRecord, (Field, String)> {
    let mut raw = RawRecord::default();
    let num = |v: &Cbor| match v {
        Cbor::Integer(i) => Ok(Number::Int(i128::from(*i))),
        Cbor::Float(f) => Ok(Number::Float(*f)),
        _ => Err((Field::SenmlRecord, "expected a number".to_owned())),
    };
    let text = |v: &Cbor| match v {
        Cbor::Text(s) => Ok(s.clone()),
        _ => Err((Field::SenmlRecord, "expected a text string".to_owned())),
    };
    for (k, v) in map {
        match Label::from_cbor(k) {
            Some(Label::BaseName) => raw.bn = Some(text(v)?),
            Some(Label::BaseTime) => raw.bt = Some(number_as_f64(num(v)?)),
            Some(Label::BaseValue) => raw.bv = Some(number_as_f64(num(v)?)),
            Some(Label::Name) => raw.n = Some(text(v)?),
            Some(Label::Time) => raw.t = Some(number_as_f64(num(v)?)),
            Some(Label::Value) => set_value(&mut raw, SenmlValue::Number(num(v)?))?,
            Some(Label::StringValue) => set_value(&mut raw, SenmlValue::String(text(v)?))?,
            Some(Label::BoolValue) => match v {
                Cbor::Bool(b) => set_value(&mut raw, SenmlValue::Bool(*b))?,
                _ => return Err((Field::SenmlValue, "vb (4) must be a boolean".into())),
            },
            Some(Label::DataValue) => match v {
                Cbor::Bytes(b) => set_value(&mut raw, SenmlValue::Data(b.clone()))?,
                _ => return Err((Field::SenmlValue, "vd (8) must be a byte string".into())),
            },
            Some(Label::ObjectLink) => set_value(&mut raw, SenmlValue::ObjectLink(text(v)?))?,
            Some(_) => {}
            None => match k {
                Cbor::Text(t) if t.ends_with('_') => {
                    return Err((Field::SenmlRecord, format!("must-understand label {t:?}")));
                }
                Cbor::Integer(i) if i128::from(*i) < -128 => {
                    return Err((
                        Field::SenmlRecord,
                        format!("must-understand label {}", i128::from(*i)),
                    ));
                }
                _ => {}
            },
        }
    }
    Ok(raw)
}

/// Reads a CBOR array head (definite or indefinite); returns the count
/// (`None` = indefinite) and the header length.
fn cbor_array_head(bytes: &[u8]) -> Result<(Option<u64>, usize), FormatError> {
    let first = *bytes
        .first()
        .ok_or_else(|| FormatError::truncated(0, Field::Cbor, 1, 0))?;
    if first >> 5 != 4 {
        return Err(FormatError::invalid(
            0,
            Field::Cbor,
            "SenML pack must be an array",
        ));
    }
    let info = first & 0x1f;
    let n = match info {
        0..=23 => return Ok((Some(u64::from(info)), 1)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        31 => return Ok((None, 1)),
        _ => {
            return Err(FormatError::invalid(
                0,
                Field::Cbor,
                "reserved additional info",
            ));
        }
    };
    let len = bytes
        .get(1..1 + n)
        .ok_or_else(|| FormatError::truncated(1, Field::Cbor, n, bytes.len() - 1))?;
    Ok((
        Some(len.iter().fold(0, |a, &b| (a << 8) | u64::from(b))),
        1 + n,
    ))
}

fn cbor_pack<T>(
    bytes: &[u8],
    mut finish: impl FnMut(SenmlRecord) -> Result<T, (Field, String)>,
) -> Result<Vec<T>, Partial<T>> {
    let (count, mut pos) = cbor_array_head(bytes).map_err(|e| (Vec::new(), e))?;
    let mut ctx = Context::default();
    let mut out = Vec::new();
    let mut i = 0u64;
    loop {
        match count {
            Some(n) if i == n => break,
            None if bytes.get(pos) == Some(&0xff) => {
                pos += 1;
                break;
            }
            _ => {}
        }
        let rest = bytes.get(pos..).unwrap_or_default();
        let (item, used) = match read_item(rest) {
            Ok(x) => x,
            Err(mut e) => {
                e.offset += pos;
                return Err((out, e));
            }
        };
        let result = match &item {
            Cbor::Map(m) => raw_from_cbor(m),
            _ => Err((Field::SenmlRecord, "record must be a map".into())),
        }
        .and_then(|raw| finish(resolve_base(raw, &mut ctx)));
        match result {
            Ok(r) => out.push(r),
            Err((field, reason)) => {
                let e = FormatError::invalid(pos, field, format!("record {i}: {reason}"));
                return Err((out, e));
            }
        }
        pos += used;
        i += 1;
    }
    if pos != bytes.len() {
        let e = FormatError::invalid(pos, Field::Cbor, "bytes after the SenML pack");
        return Err((out, e));
    }
    Ok(out)
}

/// Decodes a SenML CBOR pack generically (RFC 8428).
pub fn decode_cbor_pack(bytes: &[u8]) -> Result<Vec<SenmlRecord>, FormatError> {
    cbor_pack(bytes, Ok).map_err(|(_, e)| e)
}

/// Decodes SenML CBOR (112) or SenML-ETCH CBOR (322) into LwM2M records,
/// record by record so that errors point at the record that failed.
pub fn decode_cbor(
    bytes: &[u8],
    base: Option<&Path>,
    registry: &Registry,
) -> Result<Vec<Record>, FormatError> {
    cbor_pack(bytes, |r| to_record(r, base, registry))
        .map_err(|(out, e)| e.with_partial(cf::SENML_CBOR, Payload::Records(out)))
}

// ---------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------

/// The base name and relative names for records: the common parent path
/// with a trailing `/` (none when records span Objects).
fn names(records: &[Record]) -> (Option<String>, Vec<String>) {
    let Some(first) = records.first() else {
        return (None, Vec::new());
    };
    let mut common = records
        .iter()
        .fold(first.path, |acc, r| acc.common_prefix(&r.path));
    if records.iter().any(|r| r.path == common) {
        common = common.parent().unwrap_or(Path::ROOT);
    }
    if common.is_root() {
        return (None, records.iter().map(|r| r.path.to_string()).collect());
    }
    let prefix = format!("{common}/");
    let rel = records
        .iter()
        .map(|r| {
            r.path
                .to_string()
                .strip_prefix(&prefix)
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    (Some(prefix), rel)
}

fn check_float(f: f64, content_format: u16) -> Result<(), EncodeError> {
    if f.is_finite() {
        Ok(())
    } else {
        Err(EncodeError::new(
            content_format,
            format!("{f} has no SenML form"),
        ))
    }
}

/// Encodes records as SenML JSON.
pub fn encode_json(records: &[Record]) -> Result<Vec<u8>, EncodeError> {
    let (bn, rel) = names(records);
    let mut pack = Vec::new();
    for (i, (rec, n)) in records.iter().zip(rel).enumerate() {
        let mut m = serde_json::Map::new();
        if let (0, Some(bn)) = (i, &bn) {
            m.insert("bn".into(), Json::String(bn.clone()));
        }
        m.insert("n".into(), Json::String(n));
        if let Some(t) = rec.time {
            check_float(t, cf::SENML_JSON)?;
            m.insert("t".into(), json_num(Number::Float(t)));
        }
        let (label, v) = match &rec.value {
            Value::Boolean(b) => (Label::BoolValue, Json::Bool(*b)),
            Value::String(s) | Value::CoreLink(s) => (Label::StringValue, Json::String(s.clone())),
            Value::Opaque(d) => (Label::DataValue, Json::String(base64url(d))),
            Value::ObjectLink(o, i) => (Label::ObjectLink, Json::String(format!("{o}:{i}"))),
            Value::None => {
                pack.push(Json::Object(m));
                continue;
            }
            v => {
                let n = numeric(v).unwrap_or(Number::Int(0));
                if let Number::Float(f) = n {
                    check_float(f, cf::SENML_JSON)?;
                }
                (Label::Value, json_num(n))
            }
        };
        m.insert(label.json_name().into(), v);
        pack.push(Json::Object(m));
    }
    serde_json::to_vec(&Json::Array(pack))
        .map_err(|e| EncodeError::new(cf::SENML_JSON, e.to_string()))
}

fn json_num(n: Number) -> Json {
    match n {
        Number::Int(i) => i64::try_from(i)
            .map(Json::from)
            .or_else(|_| u64::try_from(i).map(Json::from))
            .unwrap_or(Json::Null),
        Number::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Json::from(f as i64),
        Number::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
    }
}

/// Encodes records as SenML CBOR (integer labels, `vlo` as a text key).
pub fn encode_cbor(records: &[Record]) -> Result<Vec<u8>, EncodeError> {
    let (bn, rel) = names(records);
    let mut pack = Vec::new();
    for (i, (rec, n)) in records.iter().zip(rel).enumerate() {
        let mut m: Vec<(Cbor, Cbor)> = Vec::new();
        if let (0, Some(bn)) = (i, &bn) {
            m.push((Label::BaseName.key(), Cbor::Text(bn.clone())));
        }
        m.push((Label::Name.key(), Cbor::Text(n)));
        if let Some(t) = rec.time {
            m.push((Label::Time.key(), cbor_num(Number::Float(t))));
        }
        if let Some((label, v)) = cbor_value(&rec.value) {
            m.push((label.key(), v));
        }
        pack.push(Cbor::Map(m));
    }
    write_item(&Cbor::Array(pack), cf::SENML_CBOR)
}

/// The SenML CBOR label and item for a value (`None` for no value).
pub fn cbor_value(value: &Value) -> Option<(Label, Cbor)> {
    Some(match value {
        Value::Boolean(b) => (Label::BoolValue, Cbor::Bool(*b)),
        Value::String(s) | Value::CoreLink(s) => (Label::StringValue, Cbor::Text(s.clone())),
        Value::Opaque(d) => (Label::DataValue, Cbor::Bytes(d.clone())),
        Value::ObjectLink(o, i) => (Label::ObjectLink, Cbor::Text(format!("{o}:{i}"))),
        Value::None => return None,
        v => (Label::Value, cbor_num(numeric(v).unwrap_or(Number::Int(0)))),
    })
}

fn cbor_num(n: Number) -> Cbor {
    match n {
        Number::Int(i) => i64::try_from(i)
            .map(|i| Cbor::Integer(i.into()))
            .or_else(|_| u64::try_from(i).map(|u| Cbor::Integer(u.into())))
            .unwrap_or(Cbor::Null),
        Number::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Cbor::Integer((f as i64).into()),
        Number::Float(f) => Cbor::Float(f),
    }
}

// ---------------------------------------------------------------------------
// Display (original nsh §13.1)
// ---------------------------------------------------------------------------

fn py_label(key: &Cbor) -> String {
    let name = match Label::from_cbor(key) {
        Some(Label::BaseTime) => "BASE_TIME",
        Some(Label::BaseName) => "BASE_NAME",
        Some(Label::Name) => "NAME",
        Some(Label::Value) => "VALUE",
        Some(Label::StringValue) => "STRING",
        Some(Label::BoolValue) => "BOOL",
        Some(Label::Time) => "TIME",
        Some(Label::DataValue) => "OPAQUE",
        Some(Label::ObjectLink) if matches!(key, Cbor::Text(t) if t == "vlo") => "OBJLNK",
        _ => return py_repr(key),
    };
    if matches!(key, Cbor::Text(_)) && name != "OBJLNK" {
        return py_repr(key);
    }
    format!("<SenmlLabel.{name}: {}>", py_repr(key))
}

/// One record as the original printed it:
/// `{<SenmlLabel.NAME: 0>: '1/1', <SenmlLabel.VALUE: 2>: 11}`.
pub fn render_record_original(map: &[(Cbor, Cbor)]) -> String {
    let items: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}: {}", py_label(k), py_repr(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// The original's SenML CBOR text: `CBOR (N elements):`, a blank line,
/// then each record indented two spaces; no final newline. Fails like the
/// original did when the payload is not an array of maps.
pub fn render_original(bytes: &[u8]) -> Result<String, FormatError> {
    let item = super::cbor::read_exactly_one(bytes)?;
    let Cbor::Array(records) = item else {
        return Err(FormatError::invalid(
            0,
            Field::Cbor,
            "SenML pack must be an array",
        ));
    };
    let mut out = format!("CBOR ({} elements):\n", records.len());
    for r in &records {
        let Cbor::Map(m) = r else {
            return Err(FormatError::invalid(
                0,
                Field::SenmlRecord,
                "record must be a map",
            ));
        };
        out.push_str("\n  ");
        out.push_str(&render_record_original(m));
    }
    Ok(out)
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

    fn rec(path: &str, value: Value) -> Record {
        Record::new(p(path), value)
    }

    #[test]
    fn decodes_rfc8428_example_5_1_2_with_base_values() {
        // RFC 8428 §5.1.2 shape with LwM2M names: bn/bt resolved per record.
        let json = br#"[{"bn":"/3303/0/","bt":1.276020076001e9,"n":"5700","v":23.1},
                        {"n":"5700","t":10,"v":23.5},{"n":"5701","vs":"Cel"}]"#;
        let r = decode_json(json, None, &Registry::builtin()).unwrap();
        assert_eq!(r[0].path, p("/3303/0/5700"));
        assert_eq!(r[0].time, Some(1.276020076001e9));
        assert_eq!(r[1].time, Some(1.276020076001e9 + 10.0));
        assert_eq!(r[1].value, Value::Float(23.5));
        assert_eq!(r[2].value, Value::String("Cel".into()));
    }

    #[test]
    fn decodes_rfc8428_5_1_3_pack_generically() {
        let json =
            include_str!("../../../tests/fixtures/spec/rfc8428-5.1.3-multiple-measurements.json");
        let pack = decode_json_pack(json.as_bytes()).unwrap();
        let bt = 1.276020076001e9;
        assert_eq!(pack.len(), 7);
        assert_eq!(pack[0].name, "urn:dev:ow:10e2073a0108006:voltage");
        assert_eq!(
            pack[0].value,
            Some(SenmlValue::Number(Number::Float(120.1)))
        );
        assert_eq!(pack[0].time, Some(bt));
        assert_eq!(pack[1].name, "urn:dev:ow:10e2073a0108006:current");
        assert_eq!(pack[1].time, Some(bt - 5.0));
        assert_eq!(pack[6].time, Some(bt));
        // The same pack in CBOR (RFC 8428 §6 labels) decodes the same.
        let cbor = Cbor::Array(vec![
            Cbor::Map(vec![
                (
                    Label::BaseName.key(),
                    Cbor::Text("urn:dev:ow:10e2073a0108006:".into()),
                ),
                (Label::BaseTime.key(), Cbor::Float(bt)),
                (Label::BaseUnit.key(), Cbor::Text("A".into())),
                (Label::BaseVersion.key(), Cbor::Integer(5.into())),
                (Label::Name.key(), Cbor::Text("voltage".into())),
                (Label::Unit.key(), Cbor::Text("V".into())),
                (Label::Value.key(), Cbor::Float(120.1)),
            ]),
            Cbor::Map(vec![
                (Label::Name.key(), Cbor::Text("current".into())),
                (Label::Time.key(), Cbor::Integer((-5).into())),
                (Label::Value.key(), Cbor::Float(1.2)),
            ]),
        ]);
        let bytes = write_item(&cbor, cf::SENML_CBOR).unwrap();
        assert_eq!(decode_cbor_pack(&bytes).unwrap()[..], pack[..2]);
        // Such names are not LwM2M paths: the LwM2M decoder says so.
        let e = decode_json(json.as_bytes(), None, &Registry::empty()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid SenML name: record 0: invalid path"),
            "{e}"
        );
    }

    #[test]
    fn decodes_rfc8428_5_1_1_and_5_1_2_packs() {
        let one = br#"[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]"#;
        let pack = decode_json_pack(one).unwrap();
        assert_eq!(pack[0].name, "urn:dev:ow:10e2073a01080063");
        assert_eq!(pack[0].time, None);
        let two = br#"[{"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},
                       {"n":"current","u":"A","v":1.2}]"#;
        let pack = decode_json_pack(two).unwrap();
        assert_eq!(pack[1].name, "urn:dev:ow:10e2073a01080063:current");
        assert_eq!(pack[1].value, Some(SenmlValue::Number(Number::Float(1.2))));
        // Base value (RFC 8428 §4.1 bv) is added to v.
        let bv = br#"[{"bn":"/3303/0/","bv":20,"n":"5700","v":1.5},{"n":"5601","v":-2}]"#;
        let r = decode_json(bv, None, &Registry::builtin()).unwrap();
        assert_eq!(r[0].value, Value::Float(21.5));
        assert_eq!(r[1].value, Value::Float(18.0));
    }

    #[test]
    fn decodes_core_7_4_4_device_read_example() {
        // Core 1.1 §7.4.4 (SenML JSON): Read /3/0 → names relative to bn.
        let json = br#"[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},
            {"n":"1","vs":"Lightweight M2M Client"},{"n":"2","vs":"345000123"},
            {"n":"3","vs":"1.0"},{"n":"6/0","v":1},{"n":"6/1","v":5},
            {"n":"7/0","v":3800},{"n":"7/1","v":5000},{"n":"8/0","v":125},
            {"n":"8/1","v":900},{"n":"9","v":100},{"n":"10","v":15},
            {"n":"11/0","v":0},{"n":"13","v":1367491215},{"n":"14","vs":"+02:00"},
            {"n":"16","vs":"U"}]"#;
        let r = decode_json(json, None, &Registry::builtin()).unwrap();
        assert_eq!(r.len(), 16);
        assert_eq!(r[4], rec("/3/0/6/0", Value::Integer(1)));
        assert_eq!(r[13], rec("/3/0/13", Value::Time(1_367_491_215)));
        // Re-encoding gives the same records back through both encodings.
        let again = decode_json(&encode_json(&r).unwrap(), None, &Registry::builtin()).unwrap();
        assert_eq!(again, r);
        let again = decode_cbor(&encode_cbor(&r).unwrap(), None, &Registry::builtin()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn encodes_the_manual_cbor_example_byte_exact() {
        // Manual §7.1.2.2.4: four integer records without base name, as the
        // original's builder produced them (names without leading slash).
        let pack = Cbor::Array(
            [("0/0/0", 2), ("0/0/1", 5), ("1/1", 11), ("1/3", 1)]
                .iter()
                .map(|(n, v)| {
                    Cbor::Map(vec![
                        (Label::Name.key(), Cbor::Text((*n).into())),
                        (Label::Value.key(), Cbor::Integer((*v).into())),
                    ])
                })
                .collect(),
        );
        let bytes = write_item(&pack, cf::SENML_CBOR).unwrap();
        assert_eq!(
            hex::encode(&bytes),
            "84a20065302f302f300202a20065302f302f310205a20063312f31020ba20063312f330201"
        );
        assert_eq!(
            render_original(&bytes).unwrap(),
            "CBOR (4 elements):\n\n  {<SenmlLabel.NAME: 0>: '0/0/0', <SenmlLabel.VALUE: 2>: 2}\n  {<SenmlLabel.NAME: 0>: '0/0/1', <SenmlLabel.VALUE: 2>: 5}\n  {<SenmlLabel.NAME: 0>: '1/1', <SenmlLabel.VALUE: 2>: 11}\n  {<SenmlLabel.NAME: 0>: '1/3', <SenmlLabel.VALUE: 2>: 1}"
        );
        // Names without a leading slash still resolve to paths.
        let r = decode_cbor(&bytes, None, &Registry::empty()).unwrap();
        assert_eq!(r[2].path, p("/1/1"));
    }

    #[test]
    fn decodes_all_value_kinds_in_cbor() {
        let recs = vec![
            rec("/1/0/6", Value::Boolean(true)),
            rec("/3/0/0", Value::String("Anjay".into())),
            rec("/5/0/0", Value::Opaque(vec![1, 2])),
            rec("/1/0/10", Value::ObjectLink(11, 0)),
            rec("/3303/0/5700", Value::Float(21.5)),
            rec("/3/0/13", Value::Time(1_700_000_000)),
        ];
        let bytes = encode_cbor(&recs).unwrap();
        assert_eq!(
            decode_cbor(&bytes, None, &Registry::builtin()).unwrap(),
            recs
        );
        let text = render_original(&bytes).unwrap();
        assert!(
            text.contains("<SenmlLabel.OBJLNK: 'vlo'>: '11:0'"),
            "{text}"
        );
        assert!(
            text.contains("<SenmlLabel.OPAQUE: 8>: b'\\x01\\x02'"),
            "{text}"
        );
        assert!(text.contains("<SenmlLabel.BOOL: 4>: True"), "{text}");
    }

    #[test]
    fn etch_records_without_value_delete() {
        // RFC 8790 §3 / Core 1.1 Write-Composite: a record with no value.
        let json = br#"[{"n":"/3/0/14","vs":"+02:00"},{"n":"/1/0/3"}]"#;
        let r = decode_json(json, None, &Registry::builtin()).unwrap();
        assert_eq!(r[1], rec("/1/0/3", Value::None));
        assert_eq!(
            decode_json(&encode_json(&r).unwrap(), None, &Registry::builtin()).unwrap(),
            r
        );
    }

    #[test]
    fn reports_bad_records_with_offsets() {
        let json = br#"[{"n":"/3/0/0","vs":"a"}, {"n":"/3/x","v":1}]"#;
        let e = decode_json(json, None, &Registry::empty()).unwrap_err();
        assert_eq!(e.offset, 26);
        assert!(
            e.to_string()
                .starts_with("invalid SenML name: record 1: invalid path"),
            "{e}"
        );
        assert_eq!(e.partial.unwrap().payload.records().unwrap().len(), 1);
        // serde_json reports the last byte it read.
        let e = decode_json(b"[{\"n\":", None, &Registry::empty()).unwrap_err();
        assert_eq!(e.offset, 5);
        let e = decode_json(
            br#"[{"n":"/1/0/1","v":1,"vs":"x"}]"#,
            None,
            &Registry::empty(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("more than one value"), "{e}");
        // CBOR: second record is not a map.
        let e = decode_cbor(
            &[0x82, 0xa1, 0x00, 0x61, b'1', 0x01],
            None,
            &Registry::empty(),
        )
        .unwrap_err();
        assert_eq!(e.offset, 5);
        let e = decode_cbor(&[0x81, 0xa1, 0x00], None, &Registry::empty()).unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(
            decode_cbor(
                &[0x9f, 0xa1, 0x00, 0x62, b'/', b'1'],
                None,
                &Registry::empty()
            )
            .is_err()
        );
        assert!(
            decode_cbor(
                &[0x9f, 0xa1, 0x00, 0x64, b'/', b'1', b'/', b'1', 0xff],
                None,
                &Registry::empty()
            )
            .is_ok()
        );
    }
}
