//! Payload builders mirroring the original nsh `tlv` and `cbor` subshells
//! (reference §12.4 and §13.2) as plain structs: the REPL and the Rhai
//! layer drive them and print the messages they return.
//!
//! Differences from the original, on purpose: ints are shown signed;
//! unknown type names are errors (not silently raw/string); a duplicate
//! SenML name is an error (the original dropped it silently); removing or
//! deserializing resets a current container that no longer exists; the
//! SenML builder also knows `bool`, `time` and `uint`.

use ciborium::Value as Cbor;

use super::senml::{Label, render_record_original};
use super::tlv::{
    TlvContent, TlvElement, TlvKind, decode_elements, element_text, encode_elements, int_bytes,
};

/// A builder command that could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BuilderError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, BuilderError> {
    Err(BuilderError(msg.into()))
}

/// `\xHH` for every byte: the original's `serialize` / `exit` output.
pub use crate::coap::escaped::format_hex as escaped;

/// Reads escaped-bytes text (see [`crate::coap::escaped::parse`]).
pub fn unescape(text: &str) -> Result<Vec<u8>, BuilderError> {
    crate::coap::escaped::parse(text)
        .map_err(|e| BuilderError(format!("bad escape in {text:?}: {e}")))
}

fn text_of(value: &[u8]) -> Result<&str, BuilderError> {
    std::str::from_utf8(value).map_err(|_| BuilderError("value is not text".into()))
}

fn parse_int(value: &[u8]) -> Result<i64, BuilderError> {
    let t = text_of(value)?.trim();
    t.parse()
        .map_err(|_| BuilderError(format!("{t:?} is not a 64-bit integer")))
}

fn parse_f64(value: &[u8]) -> Result<f64, BuilderError> {
    let t = text_of(value)?.trim();
    t.parse()
        .map_err(|_| BuilderError(format!("{t:?} is not a number")))
}

fn parse_objlnk(value: &[u8]) -> Result<(u16, u16), BuilderError> {
    let t = text_of(value)?.trim();
    let bad = || BuilderError(format!("{t:?} is not an object link A:B"));
    let (a, b) = t.split_once(':').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

fn parse_bool(value: &[u8]) -> Result<bool, BuilderError> {
    match text_of(value)?.trim() {
        "1" | "true" | "True" => Ok(true),
        "0" | "false" | "False" => Ok(false),
        t => err(format!("{t:?} is not a boolean (0, 1, true, false)")),
    }
}

// ---------------------------------------------------------------------------
// TLV builder
// ---------------------------------------------------------------------------

/// The level the first element fixed for the top of the TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopLevel {
    /// Object Instances.
    Instance,
    /// Resources and Multiple Resources.
    Resource,
    /// Resource Instances.
    ResourceInstance,
}

impl TopLevel {
    fn name(self) -> &'static str {
        match self {
            TopLevel::Instance => "instance",
            TopLevel::Resource => "resource",
            TopLevel::ResourceInstance => "resource instance",
        }
    }
}

/// Type names the TLV builder accepts for leaf values.
pub const TLV_TYPES: &str = "raw, int, uint, float, double, bool, string, time, objlnk";

/// Leaf bytes for a typed builder value (original §12.2; `raw`/`bytes`
/// take the value as typed).
pub fn tlv_value(value: &[u8], kind: &str) -> Result<Vec<u8>, BuilderError> {
    Ok(match kind {
        "" | "raw" | "bytes" | "string" | "str" => value.to_vec(),
        "int" | "integer" | "time" => int_bytes(parse_int(value)?),
        "uint" => {
            let t = text_of(value)?.trim();
            let u: u64 = t
                .parse()
                .map_err(|_| BuilderError(format!("{t:?} is not an unsigned 64-bit integer")))?;
            super::tlv::value_bytes(&crate::lwm2m::node::Value::UnsignedInteger(u))
        }
        "double" => parse_f64(value)?.to_be_bytes().to_vec(),
        "float" => super::tlv::value_bytes(&crate::lwm2m::node::Value::Float(parse_f64(value)?)),
        "bool" | "boolean" => vec![u8::from(parse_bool(value)?)],
        "objlnk" => {
            let (a, b) = parse_objlnk(value)?;
            [a.to_be_bytes(), b.to_be_bytes()].concat()
        }
        other => return err(format!("unknown type {other:?}; use one of: {TLV_TYPES}")),
    })
}

/// The `tlv` subshell state: top-level elements, the current container
/// (IDs of an Object Instance or Multiple Resource) and the top level.
#[derive(Debug, Clone, Default)]
pub struct TlvBuilder {
    elements: Vec<TlvElement>,
    current: Option<Vec<u16>>,
    level: Option<TopLevel>,
}

fn find<'a>(els: &'a [TlvElement], ids: &[u16]) -> Option<&'a TlvElement> {
    let (first, rest) = ids.split_first()?;
    let el = els.iter().find(|e| e.id == *first)?;
    if rest.is_empty() {
        Some(el)
    } else {
        find(el.children(), rest)
    }
}

fn find_mut<'a>(els: &'a mut [TlvElement], ids: &[u16]) -> Option<&'a mut TlvElement> {
    let (first, rest) = ids.split_first()?;
    let el = els.iter_mut().find(|e| e.id == *first)?;
    if rest.is_empty() {
        Some(el)
    } else {
        match &mut el.content {
            TlvContent::Children(c) => find_mut(c, rest),
            TlvContent::Bytes(_) => None,
        }
    }
}

fn kind_word(kind: TlvKind) -> &'static str {
    match kind {
        TlvKind::ObjectInstance => "INSTANCE",
        TlvKind::ResourceInstance => "RESOURCE_INSTANCE",
        TlvKind::MultipleResource => "MULTIPLE_RESOURCE",
        TlvKind::ResourceValue => "RESOURCE",
    }
}

fn parse_ids(path: &str, max: usize) -> Result<Vec<u16>, BuilderError> {
    let ids: Result<Vec<u16>, _> = path.trim_matches('/').split('/').map(str::parse).collect();
    match ids {
        Ok(ids) if (1..=max).contains(&ids.len()) => Ok(ids),
        _ => err(format!(
            "invalid path {path:?}: expected 1 to {max} IDs separated by '/'"
        )),
    }
}

impl TlvBuilder {
    /// An empty builder.
    pub fn new() -> TlvBuilder {
        TlvBuilder::default()
    }

    /// The top-level elements.
    pub fn elements(&self) -> &[TlvElement] {
        &self.elements
    }

    /// Adds an element of `kind`: into the current container when there
    /// is one that can hold it, else at the top level. Returns messages to
    /// print (`Selected top-level: …` the first time).
    fn add(
        &mut self,
        kind: TlvKind,
        id: u16,
        content: TlvContent,
    ) -> Result<Vec<String>, BuilderError> {
        let mut messages = Vec::new();
        let cannot = || BuilderError(format!("cannot add a {}", kind_word(kind)));
        let element = TlvElement {
            kind,
            id,
            content,
            offset: 0,
        };
        let container_kind = self
            .current
            .as_deref()
            .and_then(|ids| find(&self.elements, ids))
            .map(|e| e.kind);
        let fits = matches!(
            (container_kind, kind),
            (
                Some(TlvKind::ObjectInstance),
                TlvKind::ResourceValue | TlvKind::MultipleResource
            ) | (Some(TlvKind::MultipleResource), TlvKind::ResourceInstance)
        );
        let own_level = match kind {
            TlvKind::ObjectInstance => TopLevel::Instance,
            TlvKind::ResourceValue | TlvKind::MultipleResource => TopLevel::Resource,
            TlvKind::ResourceInstance => TopLevel::ResourceInstance,
        };
        let parent_ids: Vec<u16> = if fits && kind != TlvKind::ObjectInstance {
            self.current.clone().unwrap_or_default()
        } else {
            match self.level {
                None => {
                    self.level = Some(own_level);
                    messages.push(format!("Selected top-level: {}", own_level.name()));
                }
                Some(l) if l == own_level => {}
                Some(_) => return Err(cannot()),
            }
            Vec::new()
        };
        let siblings = if parent_ids.is_empty() {
            &mut self.elements
        } else {
            match find_mut(&mut self.elements, &parent_ids).map(|p| &mut p.content) {
                Some(TlvContent::Children(c)) => c,
                _ => return Err(cannot()),
            }
        };
        if siblings.iter().any(|e| e.id == id) {
            return err("Element with such ID and parent already exists");
        }
        siblings.push(element);
        if kind.is_container() {
            let mut ids = parent_ids;
            ids.push(id);
            self.current = Some(ids);
        }
        Ok(messages)
    }

    /// `add_instance ID`: a top-level Object Instance, made current.
    pub fn add_instance(&mut self, id: u16) -> Result<Vec<String>, BuilderError> {
        self.add(
            TlvKind::ObjectInstance,
            id,
            TlvContent::Children(Vec::new()),
        )
    }

    /// `add_multiple_resource ID`: into the current Object Instance (or at
    /// the top level); becomes current, as in the original.
    pub fn add_multiple_resource(&mut self, id: u16) -> Result<Vec<String>, BuilderError> {
        self.add(
            TlvKind::MultipleResource,
            id,
            TlvContent::Children(Vec::new()),
        )
    }

    /// `add_resource ID VALUE type=…`: into the current Object Instance, or
    /// at the top level. `kind` is a name from [`TLV_TYPES`].
    pub fn add_resource(
        &mut self,
        id: u16,
        value: &[u8],
        kind: &str,
    ) -> Result<Vec<String>, BuilderError> {
        let bytes = tlv_value(value, kind)?;
        self.add(TlvKind::ResourceValue, id, TlvContent::Bytes(bytes))
    }

    /// `add_resource_instance ID VALUE type=…`: into the current Multiple
    /// Resource, or at the top level.
    pub fn add_resource_instance(
        &mut self,
        id: u16,
        value: &[u8],
        kind: &str,
    ) -> Result<Vec<String>, BuilderError> {
        let bytes = tlv_value(value, kind)?;
        self.add(TlvKind::ResourceInstance, id, TlvContent::Bytes(bytes))
    }

    /// `make_multires (0,\x02),(1,\x05)`: one raw Resource Instance per pair.
    pub fn make_multires(&mut self, content: &str) -> Result<Vec<String>, BuilderError> {
        let mut messages = Vec::new();
        for (id, value) in parse_multires(content)? {
            messages.extend(self.add_resource_instance(id, &value, "raw")?);
        }
        Ok(messages)
    }

    /// `select PATH` (`a` or `a/b`, IDs): makes an Object Instance or
    /// Multiple Resource current. Returns `selected: <path> <element>`.
    pub fn select(&mut self, path: &str) -> Result<String, BuilderError> {
        let ids = parse_ids(path, 2)?;
        let el = find(&self.elements, &ids)
            .ok_or_else(|| BuilderError(format!("no element at {path}")))?;
        if !el.kind.is_container() {
            return err(format!(
                "resource {} is {}, cannot be selected",
                el.id,
                kind_word(el.kind)
            ));
        }
        let text = element_text(el, true);
        self.current = Some(ids);
        Ok(format!("selected: {path} {text}"))
    }

    /// `remove PATH` (1–3 IDs).
    pub fn remove(&mut self, path: &str) -> Result<(), BuilderError> {
        let ids = parse_ids(path, 3)?;
        let missing = || BuilderError(format!("no element at {path}"));
        let (last, parent) = ids.split_last().ok_or_else(missing)?;
        let siblings = if parent.is_empty() {
            &mut self.elements
        } else {
            match find_mut(&mut self.elements, parent).map(|p| &mut p.content) {
                Some(TlvContent::Children(c)) => c,
                _ => return Err(missing()),
            }
        };
        let idx = siblings
            .iter()
            .position(|e| e.id == *last)
            .ok_or_else(missing)?;
        siblings.remove(idx);
        if self.current.as_ref().is_some_and(|c| c.starts_with(&ids)) {
            self.current = None;
        }
        Ok(())
    }

    /// `serialize`: the TLV bytes (print with [`escaped`]).
    pub fn serialize(&self) -> Result<Vec<u8>, BuilderError> {
        encode_elements(&self.elements).map_err(BuilderError)
    }

    /// `deserialize DATA`: replaces the elements with parsed TLV and
    /// returns the `show` text. The current container is cleared and the
    /// top level taken from the data.
    pub fn deserialize(&mut self, data: &[u8]) -> Result<String, BuilderError> {
        let elements = decode_elements(data).map_err(|(_, e)| BuilderError(e.to_string()))?;
        self.level = elements.first().map(|e| match e.kind {
            TlvKind::ObjectInstance => TopLevel::Instance,
            TlvKind::ResourceInstance => TopLevel::ResourceInstance,
            _ => TopLevel::Resource,
        });
        self.elements = elements;
        self.current = None;
        Ok(self.show())
    }

    /// `show`: the original's listing — header, 15 dashes, then one line
    /// per element: mark (`*` = current), path padded to 8, two spaces per
    /// level, element text without its ID.
    pub fn show(&self) -> String {
        fn walk(b: &TlvBuilder, out: &mut Vec<String>, els: &[TlvElement], prefix: &[u16]) {
            for el in els {
                let mut ids = prefix.to_vec();
                ids.push(el.id);
                let path: Vec<String> = ids.iter().map(u16::to_string).collect();
                let mark = if b.current.as_deref() == Some(&ids[..]) {
                    '*'
                } else {
                    ' '
                };
                out.push(format!(
                    "{mark} {:<8}{}{}",
                    path.join("/"),
                    "  ".repeat(prefix.len()),
                    element_text(el, false)
                ));
                walk(b, out, el.children(), &ids);
            }
        }
        let mut lines = vec!["  path    value".to_owned(), "-".repeat(15)];
        walk(self, &mut lines, &self.elements, &[]);
        lines.join("\n")
    }
}

/// Parses `(0,\x02),(1,\x05)` into (ID, bytes) pairs.
pub fn parse_multires(content: &str) -> Result<Vec<(u16, Vec<u8>)>, BuilderError> {
    let bad = || {
        BuilderError(format!(
            "invalid multires {content:?}: expected (ID,VALUE),(ID,VALUE)… without spaces"
        ))
    };
    let inner = content
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(bad)?;
    inner
        .split("),(")
        .map(|pair| {
            let (id, value) = pair.split_once(',').ok_or_else(bad)?;
            Ok((id.trim().parse().map_err(|_| bad())?, unescape(value)?))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// SenML CBOR builder
// ---------------------------------------------------------------------------

/// Type names the SenML CBOR builder accepts.
pub const SENML_TYPES: &str = "int, uint, double, string, opaque, objlnk, bool, time";

/// The `cbor` subshell state: SenML records in insertion order.
#[derive(Debug, Clone, Default)]
pub struct SenmlCborBuilder {
    records: Vec<Vec<(Cbor, Cbor)>>,
}

impl SenmlCborBuilder {
    /// An empty builder.
    pub fn new() -> SenmlCborBuilder {
        SenmlCborBuilder::default()
    }

    /// `add_resource NAME type=… VALUE basename=…`: appends
    /// `{0: name, [-2: basename], label: value}`. Types: `int`/`uint`/`time`
    /// → `v` integer, `double` → `v` float, `string` → `vs`, `opaque` →
    /// `vd`, `objlnk` → `vlo` (`3:0`), `bool` → `vb`. No value → a record
    /// without one (Read-Composite / SenML-ETCH delete).
    pub fn add_resource(
        &mut self,
        name: &str,
        kind: &str,
        value: Option<&[u8]>,
        basename: Option<&str>,
    ) -> Result<(), BuilderError> {
        let name_item = Cbor::Text(name.to_owned());
        let name_key = Label::Name.key();
        if self
            .records
            .iter()
            .any(|r| r.iter().any(|(k, v)| *k == name_key && *v == name_item))
        {
            return err(format!("Element with name {name:?} already exists"));
        }
        let mut record = vec![(name_key, name_item)];
        if let Some(bn) = basename {
            record.push((Label::BaseName.key(), Cbor::Text(bn.to_owned())));
        }
        if let Some(v) = value {
            let (label, item) = match kind {
                "int" | "integer" | "time" => (Label::Value, Cbor::Integer(parse_int(v)?.into())),
                "uint" => {
                    let t = text_of(v)?.trim();
                    let u: u64 = t
                        .parse()
                        .map_err(|_| BuilderError(format!("{t:?} is not an unsigned integer")))?;
                    (Label::Value, Cbor::Integer(u.into()))
                }
                "double" | "float" => (Label::Value, Cbor::Float(parse_f64(v)?)),
                "string" | "" => (Label::StringValue, Cbor::Text(text_of(v)?.to_owned())),
                "opaque" => (Label::DataValue, Cbor::Bytes(v.to_vec())),
                "objlnk" => {
                    let (a, b) = parse_objlnk(v)?;
                    (Label::ObjectLink, Cbor::Text(format!("{a}:{b}")))
                }
                "bool" | "boolean" => (Label::BoolValue, Cbor::Bool(parse_bool(v)?)),
                other => return err(format!("unknown type {other:?}; use one of: {SENML_TYPES}")),
            };
            record.push((label.key(), item));
        }
        self.records.push(record);
        Ok(())
    }

    /// `remove NAME`.
    pub fn remove(&mut self, name: &str) -> Result<(), BuilderError> {
        let name_item = Cbor::Text(name.to_owned());
        let idx = self
            .records
            .iter()
            .position(|r| r.first().is_some_and(|(_, v)| *v == name_item))
            .ok_or_else(|| BuilderError("Invalid name".into()))?;
        self.records.remove(idx);
        Ok(())
    }

    /// `serialize`: the SenML CBOR bytes as the original's cbor2 wrote
    /// them: definite lengths, shortest integer heads, floats as 8-byte
    /// doubles, keys in insertion order.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        head(&mut out, 4, self.records.len() as u64);
        for r in &self.records {
            head(&mut out, 5, r.len() as u64);
            for (k, v) in r {
                write_simple(&mut out, k);
                write_simple(&mut out, v);
            }
        }
        out
    }

    /// `show`: `CBOR (N elements):`, a blank line, the records, and the
    /// extra blank line the original printed.
    pub fn show(&self) -> String {
        let mut out = format!("CBOR ({} elements):\n", self.records.len());
        for r in &self.records {
            out.push_str("\n  ");
            out.push_str(&render_record_original(r));
        }
        out.push('\n');
        out
    }
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Writes the scalar items the builder creates (ints, 8-byte floats,
/// text, bytes, booleans).
fn write_simple(out: &mut Vec<u8>, item: &Cbor) {
    match item {
        Cbor::Integer(i) => {
            let i = i128::from(*i);
            if i >= 0 {
                head(out, 0, i as u64);
            } else {
                head(out, 1, (-1 - i) as u64);
            }
        }
        Cbor::Float(f) => {
            out.push(0xfb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Cbor::Text(t) => {
            head(out, 3, t.len() as u64);
            out.extend_from_slice(t.as_bytes());
        }
        Cbor::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Cbor::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        _ => out.push(0xf6),
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// Manual §7.1.2.2.4, TLV subshell.
    #[test]
    fn builds_the_manual_tlv_example_byte_exact() {
        let mut t = TlvBuilder::new();
        assert_eq!(t.add_instance(0).unwrap(), ["Selected top-level: instance"]);
        assert!(t.add_multiple_resource(0).unwrap().is_empty());
        assert!(t.make_multires(r"(0,\x02),(1,\x05)").unwrap().is_empty());
        assert!(t.add_instance(1).unwrap().is_empty());
        t.add_resource(1, b"11", "int").unwrap();
        t.add_resource(3, b"1", "int").unwrap();
        assert_eq!(
            escaped(&t.serialize().unwrap()),
            r"\x08\x00\x08\x86\x00\x41\x00\x02\x41\x01\x05\x06\x01\xc1\x01\x0b\xc1\x03\x01"
        );
        assert_eq!(
            t.show(),
            r"  path    value
---------------
  0       instance (1 resources)
  0/0       multiple resource (2 instances)
  0/0/0       resource instance = b'\x02' (int: 2)
  0/0/1       resource instance = b'\x05' (int: 5)
* 1       instance (2 resources)
  1/1       resource = b'\x0b' (int: 11)
  1/3       resource = b'\x01' (int: 1)"
        );
    }

    #[test]
    fn tlv_builder_select_remove_and_errors() {
        let mut t = TlvBuilder::new();
        t.add_instance(0).unwrap();
        t.add_multiple_resource(5).unwrap();
        // The quirk: the Multiple Resource is now current.
        assert_eq!(
            t.add_resource(1, b"x", "raw").unwrap_err().to_string(),
            "cannot add a RESOURCE"
        );
        assert_eq!(
            t.select("0").unwrap(),
            "selected: 0 instance 0 (1 resources)"
        );
        t.add_resource(1, b"x", "raw").unwrap();
        assert_eq!(
            t.select("0/1").unwrap_err().to_string(),
            "resource 1 is RESOURCE, cannot be selected"
        );
        assert_eq!(
            t.add_resource(1, b"y", "raw").unwrap_err().to_string(),
            "Element with such ID and parent already exists"
        );
        assert!(t.add_resource(2, b"z", "complex").is_err());
        assert!(t.add_resource(2, b"z", "int").is_err());
        t.remove("0/5").unwrap();
        assert!(t.remove("0/5").is_err());
        assert!(t.remove("1/2/3/4").is_err());
        t.remove("0").unwrap();
        assert_eq!(
            t.add_resource(1, b"x", "raw").unwrap_err().to_string(),
            "cannot add a RESOURCE"
        );
    }

    #[test]
    fn tlv_builder_typed_values_and_deserialize() {
        let mut t = TlvBuilder::new();
        assert_eq!(
            t.add_resource(0, b"-1", "int").unwrap(),
            ["Selected top-level: resource"]
        );
        t.add_resource(1, b"1.5", "double").unwrap();
        t.add_resource(2, b"true", "bool").unwrap();
        t.add_resource(3, b"3:1", "objlnk").unwrap();
        t.add_resource(4, b"1.5", "float").unwrap();
        assert!(t.add_instance(0).is_err());
        let bytes = t.serialize().unwrap();
        let mut u = TlvBuilder::new();
        let shown = u.deserialize(&bytes).unwrap();
        assert_eq!(shown, t.show());
        assert!(
            shown.contains("  0       resource = b'\\xff' (int: -1)"),
            "{shown}"
        );
        assert!(shown.contains("objlink: 3:1"), "{shown}");
        assert!(u.deserialize(b"\xc1\x00").is_err());
    }

    /// Manual §7.1.2.2.4, CBOR subshell.
    #[test]
    fn builds_the_manual_cbor_example_byte_exact() {
        let mut c = SenmlCborBuilder::new();
        for (name, v) in [("0/0/0", "2"), ("0/0/1", "5"), ("1/1", "11"), ("1/3", "1")] {
            c.add_resource(name, "int", Some(v.as_bytes()), None)
                .unwrap();
        }
        assert_eq!(
            escaped(&c.serialize()),
            r"\x84\xa2\x00\x65\x30\x2f\x30\x2f\x30\x02\x02\xa2\x00\x65\x30\x2f\x30\x2f\x31\x02\x05\xa2\x00\x63\x31\x2f\x31\x02\x0b\xa2\x00\x63\x31\x2f\x33\x02\x01"
        );
        assert_eq!(
            c.show(),
            "CBOR (4 elements):\n\n  {<SenmlLabel.NAME: 0>: '0/0/0', <SenmlLabel.VALUE: 2>: 2}\n  {<SenmlLabel.NAME: 0>: '0/0/1', <SenmlLabel.VALUE: 2>: 5}\n  {<SenmlLabel.NAME: 0>: '1/1', <SenmlLabel.VALUE: 2>: 11}\n  {<SenmlLabel.NAME: 0>: '1/3', <SenmlLabel.VALUE: 2>: 1}\n"
        );
    }

    #[test]
    fn senml_builder_types_and_errors() {
        let mut c = SenmlCborBuilder::new();
        c.add_resource("/1/0/6", "bool", Some(b"1"), Some(""))
            .unwrap();
        c.add_resource("/3/0/13", "time", Some(b"1700000000"), None)
            .unwrap();
        c.add_resource("/1/0/10", "objlnk", Some(b"11:0"), None)
            .unwrap();
        c.add_resource("/3303/0/5700", "double", Some(b"21.5"), None)
            .unwrap();
        c.add_resource("/5/0/0", "opaque", Some(b"\x01"), None)
            .unwrap();
        c.add_resource("/3/0/0", "string", Some(b"Anjay"), None)
            .unwrap();
        c.add_resource("/3/0/1", "string", None, None).unwrap();
        assert!(
            c.add_resource("/3/0/0", "string", Some(b"x"), None)
                .is_err()
        );
        assert!(c.add_resource("/3/0/2", "quux", Some(b"x"), None).is_err());
        let bytes = c.serialize();
        // Doubles are written as 8-byte floats, like cbor2.
        assert!(
            bytes
                .windows(9)
                .any(|w| w[0] == 0xfb && w[1..] == 21.5f64.to_be_bytes())
        );
        let recs = super::super::senml::decode_cbor(
            &bytes,
            None,
            &crate::lwm2m::objects::Registry::builtin(),
        )
        .unwrap();
        assert_eq!(recs.len(), 7);
        assert_eq!(
            recs[1].value,
            crate::lwm2m::node::Value::Time(1_700_000_000)
        );
        assert!(c.show().contains("<SenmlLabel.BASE_NAME: -2>: ''"));
        c.remove("/3/0/0").unwrap();
        assert_eq!(c.remove("/3/0/0").unwrap_err().to_string(), "Invalid name");
    }

    #[test]
    fn unescapes_escaped_bytes() {
        assert_eq!(unescape(r"\x02a\\").unwrap(), b"\x02a\\");
        assert!(unescape(r"\x2").is_err());
        assert!(parse_multires("0,1").is_err());
        assert!(parse_multires("(x,1)").is_err());
        assert_eq!(parse_multires(r"(7,\xff)").unwrap(), vec![(7, vec![0xff])]);
    }
}
