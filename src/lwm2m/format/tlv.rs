//! OMA LwM2M TLV (content format 11542, legacy 1542), Core §7.4.3.
//!
//! Two stages, as in Leshan's codec: [`decode_elements`] reads raw
//! elements (type, identifier, length, value bytes) without knowing any
//! object; [`decode`] then types the leaves using object definitions. The
//! wire does not say a leaf's type, so without a definition a leaf gets a
//! best guess (marked `guessed`). [`render`] prints raw elements exactly as
//! the original nsh did (`TLV (N elements):` …, with signed ints).

use std::fmt::Write as _;

use super::{Field, FormatError, Payload, cf};
use crate::lwm2m::node::{
    MultipleResource, Node, ObjectInstance, Path, Resource, ResourceInstance, ResourceNode,
    ResourceType, Value, nodes_from_records,
};
use crate::lwm2m::objects::Registry;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// TLV element type (bits 7–6 of the type byte). The spec defines all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvKind {
    /// `00`: Object Instance (value = child elements).
    ObjectInstance,
    /// `01`: Resource Instance (value = bytes).
    ResourceInstance,
    /// `10`: Multiple Resource (value = Resource Instance elements).
    MultipleResource,
    /// `11`: Resource with value (value = bytes).
    ResourceValue,
}

impl TlvKind {
    fn bits(self) -> u8 {
        match self {
            TlvKind::ObjectInstance => 0b00,
            TlvKind::ResourceInstance => 0b01,
            TlvKind::MultipleResource => 0b10,
            TlvKind::ResourceValue => 0b11,
        }
    }

    fn from_bits(bits: u8) -> TlvKind {
        match bits & 0b11 {
            0b00 => TlvKind::ObjectInstance,
            0b01 => TlvKind::ResourceInstance,
            0b10 => TlvKind::MultipleResource,
            _ => TlvKind::ResourceValue,
        }
    }

    /// True for the kinds whose value is a list of child elements.
    pub fn is_container(self) -> bool {
        matches!(self, TlvKind::ObjectInstance | TlvKind::MultipleResource)
    }

    /// Path depth of an element of this kind (instance 2 … resource instance 4).
    fn depth(self) -> usize {
        match self {
            TlvKind::ObjectInstance => 2,
            TlvKind::ResourceValue | TlvKind::MultipleResource => 3,
            TlvKind::ResourceInstance => 4,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TlvKind::ObjectInstance => "instance",
            TlvKind::ResourceInstance => "resource instance",
            TlvKind::MultipleResource => "multiple resource",
            TlvKind::ResourceValue => "resource",
        }
    }
}

/// The value part of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlvContent {
    /// Leaf bytes (Resource, Resource Instance).
    Bytes(Vec<u8>),
    /// Child elements (Object Instance, Multiple Resource).
    Children(Vec<TlvElement>),
}

/// One raw TLV element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlvElement {
    /// Element type.
    pub kind: TlvKind,
    /// Identifier.
    pub id: u16,
    /// Value.
    pub content: TlvContent,
    /// Byte offset of the type byte in the decoded payload (0 for built
    /// elements; ignored by the encoder).
    pub offset: usize,
}

impl TlvElement {
    /// A leaf element.
    pub fn leaf(kind: TlvKind, id: u16, bytes: Vec<u8>) -> TlvElement {
        TlvElement {
            kind,
            id,
            content: TlvContent::Bytes(bytes),
            offset: 0,
        }
    }

    /// A container element.
    pub fn container(kind: TlvKind, id: u16, children: Vec<TlvElement>) -> TlvElement {
        TlvElement {
            kind,
            id,
            content: TlvContent::Children(children),
            offset: 0,
        }
    }

    /// Child elements (empty for leaves).
    pub fn children(&self) -> &[TlvElement] {
        match &self.content {
            TlvContent::Children(c) => c,
            TlvContent::Bytes(_) => &[],
        }
    }
}

// ---------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------

/// Stage 1: reads raw elements. On malformed input returns the error with
/// the elements read before it (a container cut short keeps the children
/// that did decode).
pub fn decode_elements(bytes: &[u8]) -> Result<Vec<TlvElement>, (Vec<TlvElement>, FormatError)> {
    match parse_seq(bytes, 0, None) {
        (elements, None) => Ok(elements),
        (elements, Some(e)) => Err((elements, e)),
    }
}

fn take(
    bytes: &[u8],
    pos: usize,
    n: usize,
    base: usize,
    field: Field,
) -> Result<&[u8], FormatError> {
    let available = bytes.len().saturating_sub(pos);
    bytes
        .get(pos..pos.saturating_add(n))
        .ok_or_else(|| FormatError::truncated(base + pos, field, n, available))
}

fn be_uint(b: &[u8]) -> u64 {
    b.iter().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

fn parse_seq(
    bytes: &[u8],
    base: usize,
    parent: Option<TlvKind>,
) -> (Vec<TlvElement>, Option<FormatError>) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        let header = (|| {
            let ty = take(bytes, pos, 1, base, Field::TlvType)?[0];
            let kind = TlvKind::from_bits(ty >> 6);
            let allowed = match parent {
                None => true,
                Some(TlvKind::ObjectInstance) => {
                    matches!(kind, TlvKind::ResourceValue | TlvKind::MultipleResource)
                }
                Some(_) => kind == TlvKind::ResourceInstance,
            };
            if !allowed {
                let reason = match parent {
                    Some(TlvKind::ObjectInstance) => {
                        "an Object Instance may only contain Resources and Multiple Resources"
                    }
                    _ => "a Multiple Resource may only contain Resource Instances",
                };
                return Err(FormatError::invalid(base + pos, Field::TlvType, reason));
            }
            let id_len = if ty & 0x20 != 0 { 2 } else { 1 };
            let id = be_uint(take(bytes, pos + 1, id_len, base, Field::TlvIdentifier)?) as u16;
            let len_len = usize::from((ty >> 3) & 0b11);
            let len_pos = pos + 1 + id_len;
            let len = if len_len == 0 {
                usize::from(ty & 0b111)
            } else {
                be_uint(take(bytes, len_pos, len_len, base, Field::TlvLength)?) as usize
            };
            let value_pos = len_pos + len_len;
            let value = take(bytes, value_pos, len, base, Field::TlvValue)?;
            Ok((kind, id, value_pos, value))
        })();
        let (kind, id, value_pos, value) = match header {
            Ok(h) => h,
            Err(e) => return (out, Some(e)),
        };
        pos = value_pos + value.len();
        let offset = base + start;
        if kind.is_container() {
            let (children, err) = parse_seq(value, base + value_pos, Some(kind));
            out.push(TlvElement {
                kind,
                id,
                content: TlvContent::Children(children),
                offset,
            });
            if err.is_some() {
                return (out, err);
            }
        } else {
            out.push(TlvElement {
                kind,
                id,
                content: TlvContent::Bytes(value.to_vec()),
                offset,
            });
        }
    }
    (out, None)
}

/// Stage 2 with stage 1: decodes a TLV payload for the request path `base`
/// into nodes. The nodes' parent is derived from `base` and the element
/// level (a Read of `/3/0` answered with an Object Instance element gets
/// parent `/3`); it is `None` when `base` is unknown or too short.
pub fn decode(
    bytes: &[u8],
    base: Option<&Path>,
    registry: &Registry,
) -> Result<Payload, FormatError> {
    let (elements, raw_err) = match decode_elements(bytes) {
        Ok(e) => (e, None),
        Err((e, err)) => (e, Some(err)),
    };
    let parent = elements.first().and_then(|first| {
        let depth = first.kind.depth() - 1;
        let base = base?;
        (base.depth() >= depth).then(|| base.truncate(depth))
    });
    let parent = if elements.is_empty() {
        base.copied()
    } else {
        parent
    };
    let object = base.and_then(Path::object);
    let resource = base.and_then(Path::resource);
    let mut nodes = Vec::new();
    let mut typed_err = None;
    for el in &elements {
        if let Some(first) = elements.first()
            && first.kind.depth() != el.kind.depth()
        {
            typed_err = Some(FormatError::invalid(
                el.offset,
                Field::TlvType,
                "top-level elements of different levels",
            ));
            break;
        }
        match to_node(el, object, resource, registry) {
            Ok(n) => nodes.push(n),
            Err(e) => {
                typed_err = Some(e);
                break;
            }
        }
    }
    let payload = Payload::Nodes { parent, nodes };
    match typed_err.or(raw_err) {
        None => Ok(payload),
        Some(e) => Err(e.with_partial(cf::TLV, payload)),
    }
}

fn to_node(
    el: &TlvElement,
    object: Option<u16>,
    resource: Option<u16>,
    registry: &Registry,
) -> Result<Node, FormatError> {
    let leaf = |rid: Option<u16>, bytes: &[u8]| -> Result<(Value, bool), FormatError> {
        let def = object
            .zip(rid)
            .and_then(|(o, r)| registry.resource(o, r))
            .map(|d| d.kind);
        match def {
            Some(kind) => typed_value(bytes, kind)
                .map(|v| (v, false))
                .map_err(|reason| FormatError::invalid(el.offset, Field::Value, reason)),
            None => Ok((guess_value(bytes), true)),
        }
    };
    let resource_node = |el: &TlvElement| -> Result<ResourceNode, FormatError> {
        match to_node(el, object, Some(el.id), registry)? {
            Node::Resource(r) => Ok(ResourceNode::Single(r)),
            Node::MultipleResource(m) => Ok(ResourceNode::Multiple(m)),
            _ => Err(FormatError::invalid(
                el.offset,
                Field::TlvType,
                "not a resource",
            )),
        }
    };
    Ok(match (&el.kind, &el.content) {
        (TlvKind::ObjectInstance, TlvContent::Children(children)) => {
            Node::ObjectInstance(ObjectInstance {
                id: el.id,
                resources: children
                    .iter()
                    .map(resource_node)
                    .collect::<Result<_, _>>()?,
            })
        }
        (TlvKind::MultipleResource, TlvContent::Children(children)) => {
            let mut instances = Vec::new();
            for c in children {
                let TlvContent::Bytes(b) = &c.content else {
                    return Err(FormatError::invalid(c.offset, Field::TlvType, "not a leaf"));
                };
                let (value, guessed) = leaf(Some(el.id), b)?;
                instances.push(ResourceInstance {
                    id: c.id,
                    value,
                    guessed,
                });
            }
            Node::MultipleResource(MultipleResource {
                id: el.id,
                instances,
            })
        }
        (TlvKind::ResourceValue, TlvContent::Bytes(b)) => {
            let (value, guessed) = leaf(Some(el.id), b)?;
            Node::Resource(Resource {
                id: el.id,
                value,
                guessed,
            })
        }
        (TlvKind::ResourceInstance, TlvContent::Bytes(b)) => {
            let (value, guessed) = leaf(resource, b)?;
            Node::ResourceInstance(ResourceInstance {
                id: el.id,
                value,
                guessed,
            })
        }
        _ => {
            return Err(FormatError::invalid(
                el.offset,
                Field::TlvType,
                "element content does not match its type",
            ));
        }
    })
}

/// Sign-extends big-endian bytes (0–8 of them).
fn signed(b: &[u8]) -> i64 {
    if b.is_empty() || b.len() > 8 {
        return 0;
    }
    let shift = 64 - 8 * b.len() as u32;
    ((be_uint(b) << shift) as i64) >> shift
}

/// Reads leaf bytes as `kind` (Core §7.4.3 value encodings).
pub fn typed_value(b: &[u8], kind: ResourceType) -> Result<Value, String> {
    let int_len = matches!(b.len(), 1 | 2 | 4 | 8);
    let need = |what: &str| format!("{kind} needs {what}, got {} bytes", b.len());
    Ok(match kind {
        ResourceType::Integer if int_len => Value::Integer(signed(b)),
        ResourceType::Time if int_len => Value::Time(signed(b)),
        ResourceType::UnsignedInteger if int_len => Value::UnsignedInteger(be_uint(b)),
        ResourceType::Integer | ResourceType::Time | ResourceType::UnsignedInteger => {
            return Err(need("1, 2, 4 or 8 bytes"));
        }
        ResourceType::Float => match <[u8; 4]>::try_from(b) {
            Ok(a) => Value::Float(f64::from(f32::from_be_bytes(a))),
            Err(_) => match <[u8; 8]>::try_from(b) {
                Ok(a) => Value::Float(f64::from_be_bytes(a)),
                Err(_) => return Err(need("4 or 8 bytes")),
            },
        },
        ResourceType::Boolean => match b {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            _ => return Err(need("1 byte 0 or 1")),
        },
        ResourceType::ObjectLink => match b {
            [a, b2, c, d] => {
                Value::ObjectLink(u16::from_be_bytes([*a, *b2]), u16::from_be_bytes([*c, *d]))
            }
            _ => return Err(need("4 bytes")),
        },
        ResourceType::String | ResourceType::CoreLink => {
            let s = std::str::from_utf8(b)
                .map_err(|e| format!("{kind} is not UTF-8 (byte {})", e.valid_up_to()))?
                .to_owned();
            if kind == ResourceType::String {
                Value::String(s)
            } else {
                Value::CoreLink(s)
            }
        }
        ResourceType::Opaque => Value::Opaque(b.to_vec()),
        ResourceType::None if b.is_empty() => Value::None,
        ResourceType::None => Value::Opaque(b.to_vec()),
    })
}

/// Best guess for leaf bytes of unknown type: printable UTF-8 → String,
/// 1/2/4/8 bytes → Integer, otherwise Opaque.
pub fn guess_value(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) if !s.is_empty() && !s.chars().any(char::is_control) => Value::String(s.to_owned()),
        _ if matches!(b.len(), 1 | 2 | 4 | 8) => Value::Integer(signed(b)),
        _ => Value::Opaque(b.to_vec()),
    }
}

// ---------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------

/// Leaf bytes for a value (original nsh §12.2): shortest 1/2/4/8-byte
/// integers, 4-byte floats when exact in single precision else 8, UTF-8
/// strings, 1-byte booleans, 4-byte object links.
pub fn value_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::Integer(i) | Value::Time(i) => int_bytes(*i),
        Value::UnsignedInteger(u) => {
            let b = u.to_be_bytes();
            let n = match *u {
                0..=0xff => 1,
                0x100..=0xffff => 2,
                0x1_0000..=0xffff_ffff => 4,
                _ => 8,
            };
            b[8 - n..].to_vec()
        }
        Value::Float(f) => {
            let single = *f as f32;
            if f64::from(single) == *f {
                single.to_be_bytes().to_vec()
            } else {
                f.to_be_bytes().to_vec()
            }
        }
        Value::Boolean(b) => vec![u8::from(*b)],
        Value::String(s) | Value::CoreLink(s) => s.as_bytes().to_vec(),
        Value::Opaque(b) => b.clone(),
        Value::ObjectLink(o, i) => [o.to_be_bytes(), i.to_be_bytes()].concat(),
        Value::None => Vec::new(),
    }
}

/// Shortest two's-complement big-endian encoding in 1, 2, 4 or 8 bytes.
pub fn int_bytes(i: i64) -> Vec<u8> {
    let n = if i8::try_from(i).is_ok() {
        1
    } else if i16::try_from(i).is_ok() {
        2
    } else if i32::try_from(i).is_ok() {
        4
    } else {
        8
    };
    i.to_be_bytes()[8 - n..].to_vec()
}

/// Raw elements for nodes (an Object has no TLV element: error).
pub fn elements_from_nodes(nodes: &[Node]) -> Result<Vec<TlvElement>, String> {
    let ri = |r: &ResourceInstance| {
        TlvElement::leaf(TlvKind::ResourceInstance, r.id, value_bytes(&r.value))
    };
    let multi = |m: &MultipleResource| {
        TlvElement::container(
            TlvKind::MultipleResource,
            m.id,
            m.instances.iter().map(ri).collect(),
        )
    };
    let res = |r: &Resource| TlvElement::leaf(TlvKind::ResourceValue, r.id, value_bytes(&r.value));
    nodes
        .iter()
        .map(|n| match n {
            Node::Object(o) => Err(format!(
                "Object {} has no TLV element; encode its instances",
                o.id
            )),
            Node::ObjectInstance(i) => Ok(TlvElement::container(
                TlvKind::ObjectInstance,
                i.id,
                i.resources
                    .iter()
                    .map(|r| match r {
                        ResourceNode::Single(r) => res(r),
                        ResourceNode::Multiple(m) => multi(m),
                    })
                    .collect(),
            )),
            Node::Resource(r) => Ok(res(r)),
            Node::MultipleResource(m) => Ok(multi(m)),
            Node::ResourceInstance(r) => Ok(ri(r)),
        })
        .collect()
}

/// One element header (type byte, identifier, length field) for a value
/// of `len` bytes: 8-bit identifiers below 256, length inline below 8, else
/// in 1, 2 or 3 bytes. Also usable on its own to build deliberately wrong
/// TLV (a header whose length does not match what follows).
pub fn encode_header(kind: TlvKind, id: u16, len: usize) -> Result<Vec<u8>, String> {
    let mut ty = kind.bits() << 6;
    if id > 0xff {
        ty |= 0x20;
    }
    let len_len = match len {
        0..=7 => {
            ty |= len as u8;
            0
        }
        8..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xff_ffff => 3,
        _ => return Err(format!("TLV value of {len} bytes exceeds 2^24 - 1")),
    };
    ty |= (len_len as u8) << 3;
    let mut out = vec![ty];
    if id > 0xff {
        out.extend_from_slice(&id.to_be_bytes());
    } else {
        out.push(id as u8);
    }
    out.extend_from_slice(&(len as u32).to_be_bytes()[4 - len_len..]);
    Ok(out)
}

/// Encodes raw elements (headers as [`encode_header`]). Values of 2^24
/// bytes or more are an error.
pub fn encode_elements(elements: &[TlvElement]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for el in elements {
        let value = match &el.content {
            TlvContent::Bytes(b) => b.clone(),
            TlvContent::Children(c) => encode_elements(c)?,
        };
        out.extend(encode_header(el.kind, el.id, value.len())?);
        out.extend_from_slice(&value);
    }
    Ok(out)
}

/// Encodes nodes as TLV.
pub fn encode(nodes: &[Node]) -> Result<Vec<u8>, String> {
    encode_elements(&elements_from_nodes(nodes)?)
}

/// The nodes a payload encodes to: nodes as they are; records arranged
/// below their common parent, at most Object Instance deep (one record
/// `/3/0/1` → Resource 1; `/3/0/1` and `/3/1/1` → two Object Instances).
/// `None` when records span Objects or do not form a tree.
pub(super) fn nodes_for_encoding(payload: &Payload) -> Option<Vec<Node>> {
    match payload {
        Payload::Nodes { nodes, .. } => Some(nodes.clone()),
        Payload::Links(_) => None,
        Payload::Records(records) => {
            let first = records.first()?.path;
            let common = records
                .iter()
                .fold(first, |acc, r| acc.common_prefix(&r.path));
            let same = records.iter().all(|r| r.path == common);
            let depth = if same {
                common.depth().saturating_sub(1)
            } else {
                common.depth()
            }
            .min(2);
            if depth == 0 {
                return None;
            }
            nodes_from_records(&common.truncate(depth), records).ok()
        }
    }
}

// ---------------------------------------------------------------------------
// Display (original nsh §12.3 / §12.4 text)
// ---------------------------------------------------------------------------

/// Python `repr(bytes)`: `b'..'` with `\xhh` escapes (double quotes when
/// the bytes hold `'` but no `"`).
pub fn py_bytes(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = format!("b{quote}");
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if char::from(c) == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(char::from(c)),
            c => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push(quote);
    s
}

/// C `%f`: six decimals, `inf`/`-inf`/`nan` as Python prints them.
fn percent_f(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{f:.6}")
    }
}

/// Leaf text: `b'\x0b' (int: 11)`; 4-byte values add `float` and
/// `objlink`, 8-byte values `double`; longer values only the literal.
pub fn leaf_text(b: &[u8]) -> String {
    let mut s = py_bytes(b);
    if b.len() <= 8 {
        let _ = write!(s, " (int: {}", signed(b));
        if let Ok(a) = <[u8; 4]>::try_from(b) {
            let _ = write!(
                s,
                ", float: {}, objlink: {}:{}",
                percent_f(f64::from(f32::from_be_bytes(a))),
                u16::from_be_bytes([a[0], a[1]]),
                u16::from_be_bytes([a[2], a[3]])
            );
        } else if let Ok(a) = <[u8; 8]>::try_from(b) {
            let _ = write!(s, ", double: {}", percent_f(f64::from_be_bytes(a)));
        }
        s.push(')');
    }
    s
}

/// One element's text: `instance 1 (3 resources)`, `resource 0 = b'..'`;
/// without the identifier when `with_id` is false (the `show` listing).
pub fn element_text(el: &TlvElement, with_id: bool) -> String {
    let mut s = el.kind.name().to_owned();
    if with_id {
        let _ = write!(s, " {}", el.id);
    }
    match &el.content {
        TlvContent::Bytes(b) => {
            let _ = write!(s, " = {}", leaf_text(b));
        }
        TlvContent::Children(c) => {
            let what = if el.kind == TlvKind::ObjectInstance {
                "resources"
            } else {
                "instances"
            };
            let _ = write!(s, " ({} {what})", c.len());
        }
    }
    s
}

/// The original's TLV tree text: `TLV (N elements):`, a blank line, then
/// each element indented two spaces per level (ints shown signed). Lines
/// are joined with `\n`; there is no final newline.
pub fn render(elements: &[TlvElement]) -> String {
    fn walk(out: &mut String, els: &[TlvElement], depth: usize) {
        for el in els {
            let _ = write!(out, "\n{}{}", "  ".repeat(depth), element_text(el, true));
            walk(out, el.children(), depth + 1);
        }
    }
    let mut out = format!("TLV ({} elements):\n", elements.len());
    walk(&mut out, elements, 1);
    out
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lwm2m::node::{Record, records_from_nodes};

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// OMA-TS-LightweightM2M-V1_0_2 §6.4.3.1 "Single Object Instance Request
    /// Example": the Device Object Instance as resource TLVs (Leshan's
    /// codec tests carry the same bytes).
    const DEVICE: &str =
        include_str!("../../../tests/fixtures/spec/core-1.0.2-6.4.3.1-tlv-device-instance.hex");

    #[test]
    fn decodes_spec_example_device_object_instance() {
        let reg = Registry::builtin();
        let payload = decode(&hex(DEVICE.trim()), Some(&p("/3/0")), &reg).unwrap();
        let recs = payload.records().unwrap();
        let get = |s: &str| recs.iter().find(|r| r.path == p(s)).unwrap().value.clone();
        assert_eq!(get("/3/0/0"), Value::String("Open Mobile Alliance".into()));
        assert_eq!(
            get("/3/0/1"),
            Value::String("Lightweight M2M Client".into())
        );
        assert_eq!(get("/3/0/6/1"), Value::Integer(5));
        assert_eq!(get("/3/0/7/1"), Value::Integer(5000));
        assert_eq!(get("/3/0/8/0"), Value::Integer(125));
        assert_eq!(get("/3/0/8/1"), Value::Integer(900));
        assert_eq!(get("/3/0/9"), Value::Integer(100));
        assert_eq!(get("/3/0/11/0"), Value::Integer(0));
        assert_eq!(get("/3/0/13"), Value::Time(1_367_491_215));
        assert_eq!(get("/3/0/14"), Value::String("+02:00".into()));
        assert_eq!(get("/3/0/16"), Value::String("U".into()));
        assert!(recs.iter().all(|r| !r.guessed));
        // Encoding the decoded tree gives the spec bytes back.
        let Payload::Nodes { nodes, .. } = &payload else {
            panic!()
        };
        assert_eq!(encode(nodes).unwrap(), hex(DEVICE.trim()));
    }

    #[test]
    fn decodes_spec_example_device_wrapped_in_object_instance() {
        // Core 1.0.2 §6.4.3.2 A): the same instance inside an Object Instance TLV.
        let bytes = hex(&format!("080079{}", DEVICE.trim()));
        let payload = decode(&bytes, Some(&p("/3/0")), &Registry::builtin()).unwrap();
        let Payload::Nodes { parent, nodes } = &payload else {
            panic!()
        };
        assert_eq!(*parent, Some(p("/3")));
        assert_eq!(nodes.len(), 1);
        assert_eq!(payload.records().unwrap()[0].path, p("/3/0/0"));
        assert_eq!(encode(nodes).unwrap(), bytes);
    }

    #[test]
    fn decodes_spec_example_acl_object() {
        // Core 1.0.2 §6.4.3.2 B): two Access Control Object Instances.
        let bytes =
            hex("08000EC10001C101008302417F07C1037F080212C10003C101008702417F0761013601C1037F");
        let payload = decode(&bytes, Some(&p("/2")), &Registry::builtin()).unwrap();
        let recs = payload.records().unwrap();
        let want = [
            ("/2/0/0", 1),
            ("/2/0/1", 0),
            ("/2/0/2/127", 7),
            ("/2/0/3", 127),
            ("/2/2/0", 3),
            ("/2/2/1", 0),
            ("/2/2/2/127", 7),
            ("/2/2/2/310", 1),
            ("/2/2/3", 127),
        ];
        let got: Vec<_> = recs.iter().map(|r| (r.path, r.value.clone())).collect();
        let want: Vec<_> = want
            .iter()
            .map(|(s, v)| (p(s), Value::Integer(*v)))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn decodes_spec_example_server_object() {
        // Core 1.0.2 §6.4.3.2 C): one Server Object Instance.
        let bytes = hex("08000FC10001C40100015180C10601C10755");
        let payload = decode(&bytes, Some(&p("/1")), &Registry::builtin()).unwrap();
        let recs = payload.records().unwrap();
        assert_eq!(recs[1].value, Value::Integer(86400));
        assert_eq!(recs[2].value, Value::Boolean(true));
        assert_eq!(recs[3].value, Value::String("U".into()));
    }

    #[test]
    fn decodes_spec_example_object_links() {
        // Core 1.0.2 §6.4.3.3 1): a multiple Objlnk resource; object 65 is
        // the spec's example object, unknown here, so values are guesses.
        let bytes =
            hex("88000C440000420000440100420001C8010D38363133383030373535353030C40212345678");
        let mut reg = Registry::empty();
        let xml = r#"<LWM2M><Object><Name>Ex</Name><ObjectID>65</ObjectID>
            <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
            <Resources><Item ID="0"><Name>Links</Name><Operations>R</Operations>
            <MultipleInstances>Multiple</MultipleInstances><Mandatory>Mandatory</Mandatory>
            <Type>Objlnk</Type></Item></Resources></Object></LWM2M>"#;
        reg.load_xml(xml, "65.xml").unwrap();
        let payload = decode(&bytes, Some(&p("/65/0")), &reg).unwrap();
        let recs = payload.records().unwrap();
        assert_eq!(recs[0].value, Value::ObjectLink(66, 0));
        assert_eq!(recs[1].value, Value::ObjectLink(66, 1));
        assert_eq!(recs[2].value, Value::String("8613800755500".into()));
        assert!(recs[2].guessed);
        assert_eq!(recs[3].value, Value::Integer(0x1234_5678));
    }

    #[test]
    fn renders_like_the_original() {
        // Original nsh §12.3 example: a Server-URI-like string and a
        // 4-byte resource instance showing int, float and objlink.
        let els = vec![TlvElement::container(
            TlvKind::ObjectInstance,
            1,
            vec![
                TlvElement::leaf(TlvKind::ResourceValue, 0, b"coap://127.0.0.1:5683".to_vec()),
                TlvElement::container(
                    TlvKind::MultipleResource,
                    16,
                    vec![TlvElement::leaf(
                        TlvKind::ResourceInstance,
                        0,
                        vec![0, 0, 0xc0, 0xa8],
                    )],
                ),
            ],
        )];
        let decoded = decode_elements(&encode_elements(&els).unwrap()).unwrap();
        assert_eq!(
            render(&decoded),
            "TLV (1 elements):\n\n  instance 1 (2 resources)\n    resource 0 = b'coap://127.0.0.1:5683'\n    multiple resource 16 (1 instances)\n      resource instance 0 = b'\\x00\\x00\\xc0\\xa8' (int: 49320, float: 0.000000, objlink: 0:49320)"
        );
    }

    #[test]
    fn renders_manual_payload_buffer_example_with_signed_ints() {
        // Manual §7.1.2.3 (`payload_buffer_show_tlv`), first two lines; the
        // manual predates the objlink column that §12.3 describes.
        let els = decode_elements(&hex("c10001c40100015180")).unwrap();
        assert_eq!(
            render(&els),
            "TLV (2 elements):\n\n  resource 0 = b'\\x01' (int: 1)\n  resource 1 = b'\\x00\\x01Q\\x80' (int: 86400, float: 0.000000, objlink: 1:20864)"
        );
        assert_eq!(leaf_text(&[0xff]), "b'\\xff' (int: -1)");
        assert_eq!(
            leaf_text(&(-1.5f64).to_be_bytes()),
            "b'\\xbf\\xf8\\x00\\x00\\x00\\x00\\x00\\x00' (int: -4613937818241073152, double: -1.500000)"
        );
        assert_eq!(py_bytes(b"it's"), "b\"it's\"");
        assert_eq!(py_bytes(b"a'\"\\"), "b'a\\'\"\\\\'");
    }

    #[test]
    fn reports_truncation_with_offset_and_partial_result() {
        // Second resource claims 4 bytes, has 2.
        let bytes = hex("c10001c4010001");
        let e = decode(&bytes, Some(&p("/1/0")), &Registry::builtin()).unwrap_err();
        assert_eq!(e.offset, 5);
        assert_eq!(
            e.to_string(),
            "TLV value truncated: needs 4 bytes, 2 available at byte 5"
        );
        let partial = e.partial.unwrap();
        assert_eq!(
            partial.payload.records().unwrap(),
            vec![Record::new(p("/1/0/0"), Value::Integer(1))]
        );
    }

    #[test]
    fn rejects_wrong_children_and_bad_typed_values() {
        // A Multiple Resource containing a Resource.
        let e = decode(&hex("8306c10001"), None, &Registry::empty()).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(
            e.to_string()
                .contains("may only contain Resource Instances")
        );
        // Boolean resource /1/0/6 with value 2.
        let e = decode(&hex("c10602"), Some(&p("/1/0")), &Registry::builtin()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value: Boolean needs 1 byte 0 or 1, got 1 bytes at byte 0"
        );
        // Mixed levels.
        assert!(decode(&hex("c1000108000100"), None, &Registry::empty()).is_err());
    }

    #[test]
    fn rejects_truncated_headers_naming_the_field() {
        let cases: [(&str, usize, &str); 4] = [
            // 16-bit identifier with one byte.
            (
                "e116",
                1,
                "TLV identifier truncated: needs 2 bytes, 1 available at byte 1",
            ),
            // 16-bit length field with one byte.
            (
                "d00001",
                2,
                "TLV length truncated: needs 2 bytes, 1 available at byte 2",
            ),
            // 24-bit length 0x010000 with 1 byte of value.
            (
                "d800010000ff",
                5,
                "TLV value truncated: needs 65536 bytes, 1 available at byte 5",
            ),
            // Second element cut after its type byte.
            (
                "c10001c1",
                4,
                "TLV identifier truncated: needs 1 bytes, 0 available at byte 4",
            ),
        ];
        for (h, offset, text) in cases {
            let (_, e) = decode_elements(&hex(h)).unwrap_err();
            assert_eq!((e.offset, e.to_string().as_str()), (offset, text), "{h}");
        }
    }

    #[test]
    fn builds_deliberately_wrong_headers() {
        // A resource claiming 4 bytes, followed by 1: decoders must say so.
        let mut bytes = encode_header(TlvKind::ResourceValue, 300, 4).unwrap();
        assert_eq!(bytes, [0xe4, 0x01, 0x2c]);
        bytes.push(0);
        let (_, e) = decode_elements(&bytes).unwrap_err();
        assert_eq!(e.offset, 3);
    }

    #[test]
    fn refuses_to_encode_values_of_2_pow_24_bytes() {
        let el = TlvElement::leaf(TlvKind::ResourceValue, 0, vec![0; 1 << 24]);
        assert!(encode_elements(&[el]).is_err());
        let el = TlvElement::leaf(TlvKind::ResourceValue, 0, vec![0; (1 << 24) - 1]);
        assert_eq!(
            encode_elements(&[el]).unwrap()[..5],
            [0xd8, 0x00, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn encodes_long_values_and_wide_ids() {
        let long = vec![0x61; 300];
        let nodes = vec![Node::Resource(Resource::new(
            1000,
            Value::String(String::from_utf8(long.clone()).unwrap()),
        ))];
        let bytes = encode(&nodes).unwrap();
        assert_eq!(&bytes[..5], &[0xf0, 0x03, 0xe8, 0x01, 0x2c]);
        let back = decode(&bytes, None, &Registry::empty()).unwrap();
        assert_eq!(back.records(), None);
        let Payload::Nodes { nodes: got, .. } = back else {
            panic!()
        };
        assert_eq!(records_from_nodes(&Path::ROOT, &got)[0].path, p("/1000"));
    }

    #[test]
    fn value_bytes_follow_the_original_builder() {
        assert_eq!(int_bytes(127), [0x7f]);
        assert_eq!(int_bytes(128), [0x00, 0x80]);
        assert_eq!(int_bytes(86400), [0, 1, 0x51, 0x80]);
        assert_eq!(int_bytes(0xC0A8), [0, 0, 0xc0, 0xa8]);
        assert_eq!(int_bytes(-1), [0xff]);
        assert_eq!(value_bytes(&Value::Float(1.5)), 1.5f32.to_be_bytes());
        assert_eq!(value_bytes(&Value::Float(0.1)), 0.1f64.to_be_bytes());
        assert_eq!(value_bytes(&Value::ObjectLink(66, 1)), [0, 66, 0, 1]);
    }
}
