//! LwM2M payload formats over one data model (`lwm2m::node`): decode bytes
//! by content-format number into [`Decoded`], encode a [`Payload`] back, and
//! render decoded payloads readably with names from an object [`Registry`].
//!
//! One file per format, each with the same parts in order: types, decode,
//! encode, Display/render, tests. Contracts shared by every decoder:
//! it never panics on any input; a malformed payload yields a
//! [`FormatError`] with the byte offset and the field where decoding
//! stopped, plus whatever decoded before that point
//! ([`FormatError::partial`]); encode output is what decode accepts.
//!
//! Content formats are plain `u16` numbers here (see [`cf`]); this module
//! does not depend on `coap`. No I/O.

pub mod builder;
#[cfg(test)]
mod captured;
pub mod cbor;
pub mod link;
pub mod lwm2m_cbor;
pub mod lwm2m_json;
pub mod opaque;
#[cfg(test)]
mod proptests;
pub mod senml;
pub mod text;
pub mod tlv;

use std::fmt;

use crate::lwm2m::node::{
    Node, Path, Record, ResourceType, Value, nodes_from_records, records_from_nodes,
};
use crate::lwm2m::objects::Registry;

pub use link::Link;

/// Content-format numbers (IANA CoAP Content-Formats, OMA-TS-LightweightM2M_Core §7).
pub mod cf {
    /// text/plain; charset=utf-8
    pub const TEXT: u16 = 0;
    /// application/link-format (RFC 6690)
    pub const LINK_FORMAT: u16 = 40;
    /// application/octet-stream
    pub const OCTET_STREAM: u16 = 42;
    /// application/cbor
    pub const CBOR: u16 = 60;
    /// application/senml+json (RFC 8428)
    pub const SENML_JSON: u16 = 110;
    /// application/senml+cbor (RFC 8428)
    pub const SENML_CBOR: u16 = 112;
    /// application/senml-etch+json (RFC 8790)
    pub const SENML_ETCH_JSON: u16 = 320;
    /// application/senml-etch+cbor (RFC 8790)
    pub const SENML_ETCH_CBOR: u16 = 322;
    /// application/vnd.oma.lwm2m+text (pre-registration number)
    pub const TEXT_LEGACY: u16 = 1541;
    /// application/vnd.oma.lwm2m+tlv (pre-registration number)
    pub const TLV_LEGACY: u16 = 1542;
    /// application/vnd.oma.lwm2m+json (pre-registration number)
    pub const LWM2M_JSON_LEGACY: u16 = 1543;
    /// application/vnd.oma.lwm2m+opaque (pre-registration number)
    pub const OPAQUE_LEGACY: u16 = 1544;
    /// application/vnd.oma.lwm2m+tlv
    pub const TLV: u16 = 11542;
    /// application/vnd.oma.lwm2m+json
    pub const LWM2M_JSON: u16 = 11543;
    /// application/vnd.oma.lwm2m+cbor (LwM2M 1.2)
    pub const LWM2M_CBOR: u16 = 11544;
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// The part of a payload a decoder was reading when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// TLV type byte.
    TlvType,
    /// TLV identifier.
    TlvIdentifier,
    /// TLV length.
    TlvLength,
    /// TLV value.
    TlvValue,
    /// UTF-8 text.
    Text,
    /// A number written as text.
    Number,
    /// A CBOR data item.
    Cbor,
    /// JSON syntax.
    Json,
    /// A SenML record (map).
    SenmlRecord,
    /// SenML base name / name.
    SenmlName,
    /// SenML time / base time.
    SenmlTime,
    /// A SenML value field.
    SenmlValue,
    /// An LwM2M JSON / LwM2M CBOR entry.
    Entry,
    /// An LwM2M path.
    Path,
    /// A CoRE link target.
    LinkTarget,
    /// A CoRE link attribute.
    LinkAttribute,
    /// A value that does not fit its resource type.
    Value,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::TlvType => "TLV type",
            Field::TlvIdentifier => "TLV identifier",
            Field::TlvLength => "TLV length",
            Field::TlvValue => "TLV value",
            Field::Text => "text",
            Field::Number => "number",
            Field::Cbor => "CBOR item",
            Field::Json => "JSON",
            Field::SenmlRecord => "SenML record",
            Field::SenmlName => "SenML name",
            Field::SenmlTime => "SenML time",
            Field::SenmlValue => "SenML value",
            Field::Entry => "entry",
            Field::Path => "path",
            Field::LinkTarget => "link target",
            Field::LinkAttribute => "link attribute",
            Field::Value => "value",
        })
    }
}

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The payload ended inside a field.
    #[error("{field} truncated: needs {needed} bytes, {available} available")]
    Truncated {
        /// The field being read.
        field: Field,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A field holds something the format does not allow.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field being read.
        field: Field,
        /// What is wrong with it.
        reason: String,
    },
    /// No decoder for this content format.
    #[error("content format {0} has no decoder")]
    Unsupported(u16),
}

/// A decoding failure: where (byte offset into the payload), why, and what
/// was decoded before it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct FormatError {
    /// Byte offset where the bad field starts.
    pub offset: usize,
    /// What went wrong.
    pub kind: ErrorKind,
    /// What decoded before the error, if anything.
    pub partial: Option<Box<Decoded>>,
}

impl FormatError {
    /// An [`ErrorKind::Invalid`] error.
    pub fn invalid(offset: usize, field: Field, reason: impl Into<String>) -> FormatError {
        FormatError {
            offset,
            kind: ErrorKind::Invalid {
                field,
                reason: reason.into(),
            },
            partial: None,
        }
    }

    /// An [`ErrorKind::Truncated`] error.
    pub fn truncated(offset: usize, field: Field, needed: usize, available: usize) -> FormatError {
        FormatError {
            offset,
            kind: ErrorKind::Truncated {
                field,
                needed,
                available,
            },
            partial: None,
        }
    }

    /// Attaches the partial result.
    pub fn with_partial(mut self, content_format: u16, payload: Payload) -> FormatError {
        self.partial = Some(Box::new(Decoded {
            content_format,
            payload,
        }));
        self
    }
}

/// Why a payload could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode as content format {content_format}: {reason}")]
pub struct EncodeError {
    /// The content format asked for.
    pub content_format: u16,
    /// What does not fit.
    pub reason: String,
}

impl EncodeError {
    pub(crate) fn new(content_format: u16, reason: impl Into<String>) -> EncodeError {
        EncodeError {
            content_format,
            reason: reason.into(),
        }
    }
}

/// What a payload holds, in the shape its format has.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Hierarchical nodes (TLV): the children of `parent`. `parent` is
    /// `None` when the base path was not known at decode time.
    Nodes {
        /// Path of the node the `nodes` belong to.
        parent: Option<Path>,
        /// The nodes, in wire order.
        nodes: Vec<Node>,
    },
    /// Flat records with absolute paths (SenML, LwM2M JSON/CBOR, and single
    /// values: plain text, opaque, CBOR — those carry the base path, `/`
    /// when it was not known).
    Records(Vec<Record>),
    /// CoRE links (link format).
    Links(Vec<Link>),
}

/// A decoded payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The content format it was decoded as.
    pub content_format: u16,
    /// The content.
    pub payload: Payload,
}

impl Payload {
    /// The content as flat records with absolute paths. `None` for links,
    /// and for nodes whose parent is unknown.
    pub fn records(&self) -> Option<Vec<Record>> {
        match self {
            Payload::Nodes {
                parent: Some(parent),
                nodes,
            } => Some(records_from_nodes(parent, nodes)),
            Payload::Records(r) => Some(r.clone()),
            Payload::Nodes { parent: None, .. } | Payload::Links(_) => None,
        }
    }

    /// The content as nodes below `parent` (records are arranged into a
    /// tree; time stamps are dropped). `None` for links and for records
    /// that do not form a tree below `parent`.
    pub fn nodes_under(&self, parent: &Path) -> Option<Vec<Node>> {
        match self {
            Payload::Nodes { nodes, .. } => Some(nodes.clone()),
            Payload::Records(r) => nodes_from_records(parent, r).ok(),
            Payload::Links(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------

/// Decodes `bytes` of `content_format`. `base` is the request path the
/// payload belongs to (needed by TLV, plain text, opaque and CBOR, which do
/// not carry paths; optional for the others). `registry` types values the
/// wire leaves ambiguous and is otherwise unused.
pub fn decode(
    content_format: u16,
    bytes: &[u8],
    base: Option<&Path>,
    registry: &Registry,
) -> Result<Decoded, FormatError> {
    let payload = match content_format {
        cf::TLV | cf::TLV_LEGACY => tlv::decode(bytes, base, registry),
        cf::TEXT | cf::TEXT_LEGACY => text::decode(bytes, base, registry),
        cf::OCTET_STREAM | cf::OPAQUE_LEGACY => Ok(opaque::decode(bytes, base)),
        cf::CBOR => cbor::decode(bytes, base, registry),
        cf::LINK_FORMAT => link::decode(bytes).map(Payload::Links),
        cf::SENML_JSON | cf::SENML_ETCH_JSON => {
            senml::decode_json(bytes, base, registry).map(Payload::Records)
        }
        cf::SENML_CBOR | cf::SENML_ETCH_CBOR => {
            senml::decode_cbor(bytes, base, registry).map(Payload::Records)
        }
        cf::LWM2M_JSON | cf::LWM2M_JSON_LEGACY => {
            lwm2m_json::decode(bytes, base, registry).map(Payload::Records)
        }
        cf::LWM2M_CBOR => lwm2m_cbor::decode(bytes, base, registry).map(Payload::Records),
        other => Err(FormatError {
            offset: 0,
            kind: ErrorKind::Unsupported(other),
            partial: None,
        }),
    };
    match payload {
        Ok(payload) => Ok(Decoded {
            content_format,
            payload,
        }),
        Err(mut e) => {
            // Decoders attach their partial result under their own number.
            if let Some(p) = e.partial.as_mut() {
                p.content_format = content_format;
            }
            Err(e)
        }
    }
}

// ---------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------

/// Encodes `payload` as `content_format`. Records are arranged into a tree
/// for TLV; nodes are flattened for the flat formats (their parent must be
/// known). Single-value formats need exactly one record or leaf.
pub fn encode(content_format: u16, payload: &Payload) -> Result<Vec<u8>, EncodeError> {
    let err = |reason: &str| EncodeError::new(content_format, reason);
    let records = || {
        payload
            .records()
            .ok_or_else(|| err("needs records or nodes with a known parent"))
    };
    match content_format {
        cf::TLV | cf::TLV_LEGACY => {
            let nodes = tlv::nodes_for_encoding(payload)
                .ok_or_else(|| err("records do not form one TLV tree"))?;
            tlv::encode(&nodes).map_err(|reason| err(&reason))
        }
        cf::TEXT | cf::TEXT_LEGACY => text::encode(&single(content_format, &records()?)?),
        cf::OCTET_STREAM | cf::OPAQUE_LEGACY => {
            opaque::encode(&single(content_format, &records()?)?)
        }
        cf::CBOR => cbor::encode(&single(content_format, &records()?)?),
        cf::LINK_FORMAT => match payload {
            Payload::Links(links) => Ok(link::encode(links).into_bytes()),
            _ => Err(err("needs links")),
        },
        cf::SENML_JSON | cf::SENML_ETCH_JSON => senml::encode_json(&records()?),
        cf::SENML_CBOR | cf::SENML_ETCH_CBOR => senml::encode_cbor(&records()?),
        cf::LWM2M_JSON | cf::LWM2M_JSON_LEGACY => lwm2m_json::encode(&records()?),
        cf::LWM2M_CBOR => lwm2m_cbor::encode(&records()?),
        _ => Err(err("no encoder")),
    }
}

fn single(content_format: u16, records: &[Record]) -> Result<Value, EncodeError> {
    match records {
        [one] => Ok(one.value.clone()),
        _ => Err(EncodeError::new(
            content_format,
            format!("needs exactly one value, got {}", records.len()),
        )),
    }
}

// ---------------------------------------------------------------------------
// Shared decoding helpers
// ---------------------------------------------------------------------------

/// The defined type of the resource at `path` (object + resource ID).
pub(crate) fn defined_type(registry: &Registry, path: &Path) -> Option<ResourceType> {
    registry
        .resource(path.object()?, path.resource()?)
        .map(|d| d.kind)
}

/// A number read from a self-describing format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer (wide enough for any i64 or u64).
    Int(i128),
    /// A float.
    Float(f64),
}

/// Types a number by the resource definition; without one, an integer
/// becomes `Integer` (or `UnsignedInteger` above `i64::MAX`) and the value
/// is marked guessed. Returns `None` when the number does not fit the
/// defined type.
pub(crate) fn typed_number(n: Number, def: Option<ResourceType>) -> Option<(Value, bool)> {
    let int = |i: i128| {
        i64::try_from(i)
            .map(Value::Integer)
            .or_else(|_| u64::try_from(i).map(Value::UnsignedInteger))
            .ok()
    };
    let integral = |f: f64| (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i128);
    Some(match (def, n) {
        (Some(ResourceType::Float), Number::Int(i)) => (Value::Float(i as f64), false),
        (Some(ResourceType::Float), Number::Float(f)) => (Value::Float(f), false),
        (Some(ResourceType::Integer), n) => {
            let i = match n {
                Number::Int(i) => i,
                Number::Float(f) => integral(f)?,
            };
            (Value::Integer(i64::try_from(i).ok()?), false)
        }
        (Some(ResourceType::Time), n) => {
            let i = match n {
                Number::Int(i) => i,
                Number::Float(f) => integral(f)?,
            };
            (Value::Time(i64::try_from(i).ok()?), false)
        }
        (Some(ResourceType::UnsignedInteger), n) => {
            let i = match n {
                Number::Int(i) => i,
                Number::Float(f) => integral(f)?,
            };
            (Value::UnsignedInteger(u64::try_from(i).ok()?), false)
        }
        (Some(_), Number::Int(i)) => (int(i)?, false),
        (Some(_), Number::Float(f)) => (Value::Float(f), false),
        (None, Number::Int(i)) => (int(i)?, true),
        (None, Number::Float(f)) => (Value::Float(f), true),
    })
}

/// A value as a number for numeric fields (`v`), if it is one.
pub(crate) fn numeric(value: &Value) -> Option<Number> {
    Some(match value {
        Value::Integer(i) | Value::Time(i) => Number::Int(i128::from(*i)),
        Value::UnsignedInteger(u) => Number::Int(i128::from(*u)),
        Value::Float(f) => Number::Float(*f),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Display
// ---------------------------------------------------------------------------

/// The readable name of the node at `path`: `Manufacturer`, `Device`, …
/// (resource instances get their resource's name with `[id]`).
pub fn name_of(registry: &Registry, path: &Path) -> Option<String> {
    let oid = path.object()?;
    match (path.resource(), path.resource_instance()) {
        (None, _) => path
            .instance()
            .is_none()
            .then(|| registry.object_name(oid).map(str::to_owned))
            .flatten(),
        (Some(rid), None) => registry.resource_name(oid, rid).map(str::to_owned),
        (Some(rid), Some(riid)) => registry
            .resource_name(oid, rid)
            .map(|n| format!("{n}[{riid}]")),
    }
}

/// One readable line for a record: `/3/0/0 Manufacturer = "Anjay"`.
pub fn render_record(registry: &Registry, record: &Record) -> String {
    let mut line = record.path.to_string();
    if let Some(name) = name_of(registry, &record.path) {
        line.push(' ');
        line.push_str(&name);
    }
    line.push_str(" = ");
    line.push_str(&record.value.to_string());
    if let Some(t) = record.time {
        line.push_str(&format!(" @ t={t}"));
    }
    if record.guessed {
        line.push_str(" (type guessed)");
    }
    line
}

impl Decoded {
    /// Readable multi-line rendering with names from `registry`: one line
    /// per value (`/3/0/0 Manufacturer = "Anjay"`) or per link. Nodes whose
    /// parent is unknown are shown with paths relative to it (`./1/0`).
    pub fn render(&self, registry: &Registry) -> String {
        let mut out = String::new();
        match &self.payload {
            Payload::Links(links) => {
                for l in links {
                    out.push_str(&l.to_string());
                    out.push('\n');
                }
            }
            Payload::Nodes {
                parent: None,
                nodes,
            } => {
                for rec in records_from_nodes(&Path::ROOT, nodes) {
                    out.push('.');
                    out.push_str(&render_record(&Registry::empty(), &rec));
                    out.push('\n');
                }
            }
            payload => {
                for rec in payload.records().unwrap_or_default() {
                    out.push_str(&render_record(registry, &rec));
                    out.push('\n');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_records_with_names() {
        let reg = Registry::builtin();
        let rec = Record::new("/3/0/0".parse().unwrap(), Value::String("Anjay".into()));
        assert_eq!(render_record(&reg, &rec), "/3/0/0 Manufacturer = \"Anjay\"");
        let rec = Record::new("/3/0/6/1".parse().unwrap(), Value::Integer(5));
        assert_eq!(
            render_record(&reg, &rec),
            "/3/0/6/1 Available Power Sources[1] = 5"
        );
        let mut rec = Record::new("/9999/0/1".parse().unwrap(), Value::Integer(5));
        rec.guessed = true;
        assert_eq!(render_record(&reg, &rec), "/9999/0/1 = 5 (type guessed)");
    }

    #[test]
    fn dispatches_every_content_format_both_ways() {
        let reg = Registry::builtin();
        let one = Payload::Records(vec![Record::new(
            "/3/0/0".parse().unwrap(),
            Value::String("Anjay".into()),
        )]);
        let base: Path = "/3/0/0".parse().unwrap();
        for content_format in [
            cf::TEXT,
            cf::TEXT_LEGACY,
            cf::OCTET_STREAM,
            cf::OPAQUE_LEGACY,
            cf::CBOR,
            cf::SENML_JSON,
            cf::SENML_CBOR,
            cf::SENML_ETCH_JSON,
            cf::SENML_ETCH_CBOR,
            cf::TLV,
            cf::TLV_LEGACY,
            cf::LWM2M_JSON,
            cf::LWM2M_JSON_LEGACY,
            cf::LWM2M_CBOR,
        ] {
            let bytes = encode(content_format, &one).unwrap();
            let d = decode(content_format, &bytes, Some(&base), &reg).unwrap();
            assert_eq!(d.content_format, content_format);
            let want = if matches!(content_format, cf::OCTET_STREAM | cf::OPAQUE_LEGACY) {
                "/3/0/0 Manufacturer = h'416e6a6179'\n"
            } else {
                "/3/0/0 Manufacturer = \"Anjay\"\n"
            };
            assert_eq!(d.render(&reg), want, "{content_format}");
        }
        let links = Payload::Links(vec![Link::new("/3/0").with("ver", Some("1.1"))]);
        let bytes = encode(cf::LINK_FORMAT, &links).unwrap();
        assert_eq!(bytes, b"</3/0>;ver=1.1");
        let d = decode(cf::LINK_FORMAT, &bytes, None, &reg).unwrap();
        assert_eq!(d.render(&reg), "</3/0>;ver=1.1\n");
    }

    #[test]
    fn partial_results_carry_the_requested_content_format() {
        let e = decode(
            cf::TLV_LEGACY,
            &[0xc1, 0x00, 0x01, 0xc1],
            None,
            &Registry::empty(),
        )
        .unwrap_err();
        assert_eq!(e.partial.unwrap().content_format, cf::TLV_LEGACY);
    }

    #[test]
    fn unknown_content_format_is_an_error() {
        let e = decode(9999, b"x", None, &Registry::empty()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported(9999));
        assert!(encode(9999, &Payload::Records(vec![])).is_err());
    }

    #[test]
    fn typed_number_follows_definitions() {
        use ResourceType as T;
        assert_eq!(
            typed_number(Number::Int(5), Some(T::Float)),
            Some((Value::Float(5.0), false))
        );
        assert_eq!(
            typed_number(Number::Float(7.0), Some(T::Time)),
            Some((Value::Time(7), false))
        );
        assert_eq!(typed_number(Number::Float(7.5), Some(T::Integer)), None);
        assert_eq!(
            typed_number(Number::Int(-1), Some(T::UnsignedInteger)),
            None
        );
        assert_eq!(
            typed_number(Number::Int(1 << 63), None),
            Some((Value::UnsignedInteger(1 << 63), true))
        );
    }
}
