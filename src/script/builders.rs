//! Payload building from scripts and the prompt: `encode(FORMAT, map)`, the
//! builder values `tlv()` and `senml_cbor()`, and the original's `tlv` and
//! `cbor` subshells, whose commands are these builders' methods.

use std::sync::{Arc, Mutex};

use rhai::{Blob, Dynamic, Engine, EvalAltResult, Map, Position};

use super::args::{Args, Kind as K, Param, dyn_text, opt, req};
use crate::coap::{ContentFormat, escaped};
use crate::lwm2m::Objects;
use crate::lwm2m::format::builder::{SenmlCborBuilder, TlvBuilder};
use crate::lwm2m::format::{self, Payload};
use crate::lwm2m::node::{Level, Path, Record, ResourceType, Value};
use crate::lwm2m::objects::Registry;

/// A TLV builder shared between Rhai values.
#[derive(Clone, Default)]
pub struct Tlv(pub Arc<Mutex<TlvBuilder>>);

/// A SenML CBOR builder shared between Rhai values.
#[derive(Clone, Default)]
pub struct SenmlCbor(pub Arc<Mutex<SenmlCborBuilder>>);

impl Tlv {
    fn with<T>(&self, f: impl FnOnce(&mut TlvBuilder) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        self.with(|b| b.serialize()).map_err(|e| e.to_string())
    }
}

impl SenmlCbor {
    fn with<T>(&self, f: impl FnOnce(&mut SenmlCborBuilder) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.with(|b| b.serialize())
    }
}

/// Bytes of a builder value, if `v` is one.
pub fn builder_bytes(v: &Dynamic) -> Option<Result<Vec<u8>, String>> {
    if let Some(t) = v.read_lock::<Tlv>() {
        return Some(t.bytes());
    }
    v.read_lock::<SenmlCbor>().map(|c| Ok(c.bytes()))
}

/// Encodes a map of path → value in a content format.
pub fn encode_map(format: ContentFormat, map: &Map, objects: &Registry) -> Result<Vec<u8>, String> {
    encode_map_at(format, map, objects, None)
}

/// Encodes a map of path → value for a request to `target`: in TLV the
/// values are arranged below `target` (a Create on `/1` of
/// `#{"/1/2/0": …}` carries the Object Instance 2 wrapper, a Write on
/// `/3/0` bare Resources); other formats carry absolute paths.
pub fn encode_map_at(
    format: ContentFormat,
    map: &Map,
    objects: &Registry,
    target: Option<&str>,
) -> Result<Vec<u8>, String> {
    let records = map_to_records(map, objects)?;
    let target = target.and_then(|t| t.parse::<Path>().ok());
    // Every value belongs to the resource, instance or object the request
    // names: another path would be written somewhere else than asked.
    if let Some(t) = &target
        && let Some(r) = records.iter().find(|r| !r.path.starts_with(t))
    {
        return Err(format!("`{}` is not under the request's path {t}", r.path));
    }
    let records = Payload::Records(records);
    let tlv = matches!(
        format,
        ContentFormat::LWM2M_TLV | ContentFormat::LWM2M_TLV_LEGACY
    );
    // In TLV the request's node itself is the payload when it is a
    // Resource (or a Resource Instance), else its children are.
    let below = target
        .filter(|_| tlv)
        .map(|t| match t.level() {
            Level::Resource | Level::ResourceInstance => t.parent().unwrap_or(t),
            _ => t,
        })
        .and_then(|parent| {
            records.nodes_under(&parent).map(|nodes| Payload::Nodes {
                parent: Some(parent),
                nodes,
            })
        });
    format::encode(format.0, below.as_ref().unwrap_or(&records)).map_err(|e| e.to_string())
}

/// `#{"/3/0/1": "model", "/1/1/1": 300}` → typed records. A value takes the
/// type of its resource where the definition is known (`"3:0"` for an
/// object link, an integer for a Time), else the Rhai value's own type.
pub fn map_to_records(map: &Map, registry: &Registry) -> Result<Vec<Record>, String> {
    let mut out = Vec::with_capacity(map.len());
    for (key, v) in map {
        let path: Path = key.parse().map_err(|e| format!("`{key}`: {e}"))?;
        let def = path
            .object()
            .zip(path.resource())
            .and_then(|(o, r)| registry.resource(o, r));
        let value = to_value(v, def.map(|d| d.kind)).map_err(|e| format!("`{key}`: {e}"))?;
        out.push(Record::new(path, value));
    }
    Ok(out)
}

fn to_value(v: &Dynamic, kind: Option<ResourceType>) -> Result<Value, String> {
    use ResourceType as T;
    if v.is_unit() {
        return Ok(Value::None);
    }
    if v.is_array() {
        return Err(format!(
            "an array is not a value ({v}); give each Resource Instance its own path (/3/0/7/0, /3/0/7/1)"
        ));
    }
    if v.is_map() {
        return Err(format!("a map is not a value ({v})"));
    }
    let not = |what: &str| {
        kind.map_or_else(String::new, |k| {
            format!("{what} is not of type {}", k.name())
        })
    };
    let whole = |f: f64| (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64);
    if let (Some(T::Integer | T::Time), Ok(f)) = (kind, v.as_float()) {
        return match whole(f) {
            Some(i) if kind == Some(T::Time) => Ok(Value::Time(i)),
            Some(i) => Ok(Value::Integer(i)),
            None => Err(not(&format!("{f}"))),
        };
    }
    if let (Some(T::Integer | T::UnsignedInteger | T::Float | T::Time | T::Boolean), true) =
        (kind, v.is_string())
    {
        return Err(not(&format!("the text {:?}", dyn_text(v))));
    }
    if v.is_blob() {
        return Ok(Value::Opaque(
            v.clone().try_cast::<Blob>().unwrap_or_default(),
        ));
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Boolean(b));
    }
    if let Ok(f) = v.as_float() {
        return Ok(Value::Float(f));
    }
    if let Ok(i) = v.as_int() {
        return Ok(match kind {
            Some(T::Float) => Value::Float(i as f64),
            Some(T::Time) => Value::Time(i),
            Some(T::UnsignedInteger) if i >= 0 => Value::UnsignedInteger(i as u64),
            Some(T::Boolean) if i == 0 || i == 1 => Value::Boolean(i == 1),
            _ => Value::Integer(i),
        });
    }
    let s = dyn_text(v);
    Ok(match kind {
        Some(T::ObjectLink) => {
            let (a, b) = s
                .split_once(':')
                .ok_or_else(|| format!("object link `{s}` is not OID:IID"))?;
            let parse = |x: &str| {
                x.trim()
                    .parse::<u16>()
                    .map_err(|_| format!("object link `{s}` is not OID:IID"))
            };
            Value::ObjectLink(parse(a)?, parse(b)?)
        }
        Some(T::CoreLink) => Value::CoreLink(s),
        Some(T::Opaque) => Value::Opaque(escaped::parse(&s).map_err(|e| e.to_string())?),
        _ => Value::String(s),
    })
}

/// `decode(FORMAT, blob[, base path])`: a map of path → value.
fn decode_blob(
    format: &str,
    data: &[u8],
    base: Option<&str>,
    objects: &Registry,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let cf = ContentFormat::parse_or_explain(format).map_err(|e| fail(format!("decode: {e}")))?;
    let base = match base {
        Some(b) => Some(
            b.parse::<Path>()
                .map_err(|e| fail(format!("decode: `{b}`: {e}")))?,
        ),
        None => None,
    };
    let d = format::decode(cf.0, data, base.as_ref(), objects)
        .map_err(|e| fail(format!("decode: {e}")))?;
    if let Payload::Links(links) = &d.payload {
        return Ok(Dynamic::from_array(
            links.iter().map(|l| Dynamic::from(l.to_string())).collect(),
        ));
    }
    let records = d.payload.records().ok_or_else(|| {
        fail(format!("decode: {format} carries no paths; give the path it belongs to: decode(\"{format}\", data, \"/3/0\")"))
    })?;
    Ok(Dynamic::from_map(super::values::records_to_map(&records)))
}

fn fail(e: impl std::fmt::Display) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        e.to_string().into(),
        Position::NONE,
    ))
}

fn bytes_arg(v: &Dynamic) -> Result<Vec<u8>, Box<EvalAltResult>> {
    if v.is_blob() {
        return Ok(v.clone().try_cast::<Blob>().unwrap_or_default());
    }
    escaped::parse(&dyn_text(v)).map_err(fail)
}

/// An Object, Instance or Resource ID given to the builder method `method`.
fn id(method: &str, i: i64) -> Result<u16, Box<EvalAltResult>> {
    u16::try_from(i).map_err(|_| fail(format!("{method}: {i} is not an ID (0..65535)")))
}

/// Registers `encode`, `tlv()`, `senml_cbor()` and their methods.
/// `objects` are the server's object definitions.
pub fn register(engine: &mut Engine, objects: Objects) {
    let o = objects.clone();
    engine.register_fn(
        "encode",
        move |format: &str, map: Map| -> Result<Blob, Box<EvalAltResult>> {
            let cf = ContentFormat::parse_or_explain(format)
                .map_err(|e| fail(format!("encode: {e}")))?;
            encode_map(cf, &map, &o.read()).map_err(|e| fail(format!("encode: {e}")))
        },
    );
    let o = objects.clone();
    engine.register_fn(
        "encode",
        move |format: i64, map: Map| -> Result<Blob, Box<EvalAltResult>> {
            let cf = u16::try_from(format)
                .map(ContentFormat)
                .map_err(|_| fail("encode: bad content format"))?;
            encode_map(cf, &map, &o.read()).map_err(|e| fail(format!("encode: {e}")))
        },
    );
    let o = objects.clone();
    engine.register_fn("decode", move |format: &str, data: Blob| {
        decode_blob(format, &data, None, &o.read())
    });
    let o = objects.clone();
    engine.register_fn("decode", move |format: &str, data: Blob, base: &str| {
        decode_blob(format, &data, Some(base), &o.read())
    });
    let o = objects.clone();
    engine.register_fn("decode", move |format: i64, data: Blob| {
        decode_blob(&format.to_string(), &data, None, &o.read())
    });
    let o = objects;
    engine.register_fn("decode", move |format: i64, data: Blob, base: &str| {
        decode_blob(&format.to_string(), &data, Some(base), &o.read())
    });

    engine.register_type_with_name::<Tlv>("TlvBuilder");
    engine.register_fn("tlv", Tlv::default);
    engine.register_fn(
        "add_instance",
        |t: &mut Tlv, i: i64| -> Result<Tlv, Box<EvalAltResult>> {
            let i = id("add_instance", i)?;
            t.with(|b| b.add_instance(i)).map_err(fail)?;
            Ok(t.clone())
        },
    );
    engine.register_fn(
        "add_multiple_resource",
        |t: &mut Tlv, i: i64| -> Result<Tlv, Box<EvalAltResult>> {
            let i = id("add_multiple_resource", i)?;
            t.with(|b| b.add_multiple_resource(i)).map_err(fail)?;
            Ok(t.clone())
        },
    );
    for name in ["add_resource", "add_resource_instance"] {
        let instance = name == "add_resource_instance";
        // A leaf from raw bytes and a builder type name.
        let add = move |t: &mut Tlv,
                        i: i64,
                        bytes: &[u8],
                        kind: &str|
              -> Result<Tlv, Box<EvalAltResult>> {
            let i = id(name, i)?;
            t.with(|b| {
                if instance {
                    b.add_resource_instance(i, bytes, kind)
                } else {
                    b.add_resource(i, bytes, kind)
                }
            })
            .map_err(fail)?;
            Ok(t.clone())
        };
        engine.register_fn(name, move |t: &mut Tlv, i: i64, v: Dynamic| {
            let (bytes, kind) = typed(&v)?;
            add(t, i, &bytes, kind)
        });
        engine.register_fn(name, move |t: &mut Tlv, i: i64, v: Dynamic, kind: &str| {
            add(t, i, &bytes_arg(&v)?, kind)
        });
    }
    engine.register_fn(
        "make_multires",
        |t: &mut Tlv, s: &str| -> Result<Tlv, Box<EvalAltResult>> {
            t.with(|b| b.make_multires(s)).map_err(fail)?;
            Ok(t.clone())
        },
    );
    engine.register_fn(
        "select",
        |t: &mut Tlv, p: &str| -> Result<Tlv, Box<EvalAltResult>> {
            t.with(|b| b.select(p)).map_err(fail)?;
            Ok(t.clone())
        },
    );
    engine.register_fn(
        "remove",
        |t: &mut Tlv, p: &str| -> Result<Tlv, Box<EvalAltResult>> {
            t.with(|b| b.remove(p)).map_err(fail)?;
            Ok(t.clone())
        },
    );
    engine.register_fn(
        "deserialize",
        |t: &mut Tlv, d: Dynamic| -> Result<Tlv, Box<EvalAltResult>> {
            let bytes = bytes_arg(&d)?;
            t.with(|b| b.deserialize(&bytes)).map_err(fail)?;
            Ok(t.clone())
        },
    );
    engine.register_fn("serialize", |t: &mut Tlv| t.bytes().map_err(fail));
    engine.register_fn("show", |t: &mut Tlv| t.with(|b| b.show()));
    engine.register_fn("to_string", |t: &mut Tlv| t.with(|b| b.show()));

    engine.register_type_with_name::<SenmlCbor>("SenmlCborBuilder");
    engine.register_fn("senml_cbor", SenmlCbor::default);
    engine.register_fn(
        "add_resource",
        |c: &mut SenmlCbor, name: &str, kind: &str, v: Dynamic| {
            cbor_add(c, name, kind, Some(v), None)
        },
    );
    engine.register_fn(
        "add_resource",
        |c: &mut SenmlCbor, name: &str, kind: &str, v: Dynamic, bn: &str| {
            cbor_add(c, name, kind, Some(v), Some(bn))
        },
    );
    engine.register_fn("add_resource", |c: &mut SenmlCbor, name: &str| {
        cbor_add(c, name, "string", None, None)
    });
    engine.register_fn(
        "remove",
        |c: &mut SenmlCbor, name: &str| -> Result<SenmlCbor, Box<EvalAltResult>> {
            c.with(|b| b.remove(name)).map_err(fail)?;
            Ok(c.clone())
        },
    );
    engine.register_fn("serialize", |c: &mut SenmlCbor| c.bytes());
    engine.register_fn("show", |c: &mut SenmlCbor| c.with(|b| b.show()));
    engine.register_fn("to_string", |c: &mut SenmlCbor| c.with(|b| b.show()));
}

/// A Rhai value as builder bytes and a type name: ints as `int`, floats as
/// `float`, booleans as `bool`, blobs as `raw`, text as `string`.
fn typed(v: &Dynamic) -> Result<(Vec<u8>, &'static str), Box<EvalAltResult>> {
    Ok(if let Ok(i) = v.as_int() {
        (i.to_string().into_bytes(), "int")
    } else if let Ok(f) = v.as_float() {
        (f.to_string().into_bytes(), "float")
    } else if let Ok(b) = v.as_bool() {
        (if b { b"1".to_vec() } else { b"0".to_vec() }, "bool")
    } else if v.is_blob() {
        (v.clone().try_cast::<Blob>().unwrap_or_default(), "raw")
    } else {
        (dyn_text(v).into_bytes(), "string")
    })
}

fn cbor_add(
    c: &mut SenmlCbor,
    name: &str,
    kind: &str,
    v: Option<Dynamic>,
    bn: Option<&str>,
) -> Result<SenmlCbor, Box<EvalAltResult>> {
    let bytes = match &v {
        Some(v) if v.is_blob() => Some(v.clone().try_cast::<Blob>().unwrap_or_default()),
        Some(v) => Some(dyn_text(v).into_bytes()),
        None => None,
    };
    c.with(|b| b.add_resource(name, kind, bytes.as_deref(), bn))
        .map_err(fail)?;
    Ok(c.clone())
}

// ---------------------------------------------------------------------------
// The subshells (reference §12.4, §13.2)

/// Which subshell the prompt is in.
pub enum Subshell {
    /// `tlv`.
    Tlv(Tlv),
    /// `cbor`.
    Cbor(SenmlCbor),
}

/// One subshell command.
pub struct SubCommand {
    /// Name.
    pub name: &'static str,
    /// Parameters (original names).
    pub params: &'static [Param],
    /// Help.
    pub help: &'static str,
}

/// The arguments of `add_resource` and `add_resource_instance`.
const TLV_LEAF: [Param; 3] = [
    req("identifier", K::Int),
    req("value", K::Str),
    opt("type", K::Str, "raw"),
];

/// The TLV subshell's commands.
pub static TLV_COMMANDS: &[SubCommand] = &[
    SubCommand {
        name: "add_instance",
        params: &[req("identifier", K::Int)],
        help: "Creates a top-level Object Instance and selects it.",
    },
    SubCommand {
        name: "add_multiple_resource",
        params: &[req("identifier", K::Int)],
        help: "Creates a Multiple Resource in the selected instance (or top level) and selects it.",
    },
    SubCommand {
        name: "add_resource",
        params: &TLV_LEAF,
        help: "Creates a Resource; type: raw, int, uint, float, double, bool, string, time, objlnk.",
    },
    SubCommand {
        name: "add_resource_instance",
        params: &TLV_LEAF,
        help: "Creates a Resource Instance in the selected Multiple Resource.",
    },
    SubCommand {
        name: "make_multires",
        params: &[req("content", K::Str)],
        help: "Adds Resource Instances from (RIID,VALUE) pairs: (0,\\x02),(1,\\x05)",
    },
    SubCommand {
        name: "select",
        params: &[req("path", K::Str)],
        help: "Selects an Object Instance or Multiple Resource by IDs: 1 or 1/0.",
    },
    SubCommand {
        name: "remove",
        params: &[req("path", K::Str)],
        help: "Removes the element at PATH (1-3 IDs).",
    },
    SubCommand {
        name: "deserialize",
        params: &[req("data", K::Bytes)],
        help: "Loads TLV bytes and shows them.",
    },
    SubCommand {
        name: "serialize",
        params: &[],
        help: "Prints the TLV as escaped bytes.",
    },
    SubCommand {
        name: "show",
        params: &[],
        help: "Shows the structure.",
    },
    SubCommand {
        name: "help",
        params: &[opt("topic", K::Str, "none")],
        help: "Lists commands or shows one.",
    },
    SubCommand {
        name: "get_error",
        params: &[],
        help: "Shows the last error.",
    },
    SubCommand {
        name: "exit",
        params: &[],
        help: "Leaves the subshell, printing the TLV (also kept in the variable `tlv_data`).",
    },
];

/// The CBOR subshell's commands.
pub static CBOR_COMMANDS: &[SubCommand] = &[
    SubCommand {
        name: "add_resource",
        params: &[
            req("name", K::Str),
            opt("type", K::Str, "string"),
            opt("value", K::Str, "none"),
            opt("basename", K::Str, "none"),
        ],
        help: "Appends a SenML record; type: int, uint, double, string, opaque, objlnk, bool, time.",
    },
    SubCommand {
        name: "remove",
        params: &[req("name", K::Str)],
        help: "Removes the record named NAME.",
    },
    SubCommand {
        name: "serialize",
        params: &[],
        help: "Prints the SenML CBOR as escaped bytes.",
    },
    SubCommand {
        name: "show",
        params: &[],
        help: "Shows the records.",
    },
    SubCommand {
        name: "help",
        params: &[opt("topic", K::Str, "none")],
        help: "Lists commands or shows one.",
    },
    SubCommand {
        name: "get_error",
        params: &[],
        help: "Shows the last error.",
    },
    SubCommand {
        name: "exit",
        params: &[],
        help: "Leaves the subshell, printing the CBOR (also kept in the variable `cbor_data`).",
    },
];

/// What a subshell line did.
pub enum SubOutcome {
    /// Output to print.
    Output(String),
    /// The subshell ends with these bytes.
    Exit(Vec<u8>),
}

impl Subshell {
    /// `TLV` or `CBOR`, for the prompt.
    pub fn tag(&self) -> &'static str {
        match self {
            Subshell::Tlv(_) => "TLV",
            Subshell::Cbor(_) => "CBOR",
        }
    }

    /// The command table.
    pub fn commands(&self) -> &'static [SubCommand] {
        match self {
            Subshell::Tlv(_) => TLV_COMMANDS,
            Subshell::Cbor(_) => CBOR_COMMANDS,
        }
    }

    /// Runs one line in the original's command-line form.
    pub fn run_line(&self, line: &str, last_error: Option<String>) -> Result<SubOutcome, String> {
        let Some(parsed) = super::cmdline::parse(line)? else {
            return Ok(SubOutcome::Output(String::new()));
        };
        let cmd = self
            .commands()
            .iter()
            .find(|c| c.name == parsed.command)
            .ok_or_else(|| {
                let names: Vec<&str> = self.commands().iter().map(|c| c.name).collect();
                format!(
                    "no such command: {} (available: {})",
                    parsed.command,
                    names.join(" ")
                )
            })?;
        let positional = parsed.positional.into_iter().map(Dynamic::from).collect();
        let named = parsed
            .named
            .into_iter()
            .map(|(k, v)| (k, Dynamic::from(v)))
            .collect();
        let a = Args::bind(cmd.name, cmd.params, positional, named)?;
        let text = |n: &str| -> Result<String, String> { Ok(a.str(n)?.unwrap_or_default()) };
        let raw = |n: &str| -> Result<Vec<u8>, String> {
            escaped::parse(&text(n)?).map_err(|e| e.to_string())
        };
        let ident = |n: &str| -> Result<u16, String> {
            a.int_in::<u16>(n)?.ok_or_else(|| format!("missing `{n}`"))
        };
        let lines = |v: Vec<String>| SubOutcome::Output(v.join("\n"));
        let e = |e: crate::lwm2m::format::builder::BuilderError| e.to_string();
        match (self, cmd.name) {
            (_, "help") => Ok(SubOutcome::Output(match a.str("topic")? {
                Some(t) => match self.commands().iter().find(|c| c.name == t) {
                    Some(c) => {
                        let args: Vec<String> = c
                            .params
                            .iter()
                            .map(|p| {
                                if p.default.is_some() {
                                    format!("{}?", p.name)
                                } else {
                                    p.name.to_string()
                                }
                            })
                            .collect();
                        format!("{}\n\nARGUMENTS: {} {}", c.help, c.name, args.join(" "))
                    }
                    None => return Err(format!("no such command: {t}")),
                },
                None => format!(
                    "available commands: {}",
                    self.commands()
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            })),
            (_, "get_error") => Ok(SubOutcome::Output(
                last_error.unwrap_or_else(|| "no errors".into()),
            )),
            (Subshell::Tlv(t), "exit") => Ok(SubOutcome::Exit(t.bytes()?)),
            (Subshell::Cbor(c), "exit") => Ok(SubOutcome::Exit(c.bytes())),
            (Subshell::Tlv(t), name) => t.with(|b| -> Result<SubOutcome, String> {
                Ok(match name {
                    "add_instance" => lines(b.add_instance(ident("identifier")?).map_err(e)?),
                    "add_multiple_resource" => {
                        lines(b.add_multiple_resource(ident("identifier")?).map_err(e)?)
                    }
                    "add_resource" => lines(
                        b.add_resource(ident("identifier")?, &raw("value")?, &text("type")?)
                            .map_err(e)?,
                    ),
                    "add_resource_instance" => lines(
                        b.add_resource_instance(
                            ident("identifier")?,
                            &raw("value")?,
                            &text("type")?,
                        )
                        .map_err(e)?,
                    ),
                    "make_multires" => lines(b.make_multires(&text("content")?).map_err(e)?),
                    "select" => SubOutcome::Output(b.select(&text("path")?).map_err(e)?),
                    "remove" => {
                        b.remove(&text("path")?).map_err(e)?;
                        SubOutcome::Output(String::new())
                    }
                    "deserialize" => SubOutcome::Output(
                        b.deserialize(&a.bytes("data")?.unwrap_or_default())
                            .map_err(e)?,
                    ),
                    "serialize" => {
                        SubOutcome::Output(escaped::format_hex(&b.serialize().map_err(e)?))
                    }
                    _ => SubOutcome::Output(b.show()),
                })
            }),
            (Subshell::Cbor(c), name) => c.with(|b| -> Result<SubOutcome, String> {
                Ok(match name {
                    "add_resource" => {
                        let value = match a.str("value")? {
                            Some(v) => Some(escaped::parse(&v).map_err(|e| e.to_string())?),
                            None => None,
                        };
                        let bn = a.str("basename")?;
                        b.add_resource(
                            &text("name")?,
                            &a.str("type")?.unwrap_or_else(|| "string".into()),
                            value.as_deref(),
                            bn.as_deref(),
                        )
                        .map_err(e)?;
                        SubOutcome::Output(String::new())
                    }
                    "remove" => {
                        b.remove(&text("name")?).map_err(e)?;
                        SubOutcome::Output(String::new())
                    }
                    "serialize" => SubOutcome::Output(escaped::format_hex(&b.serialize())),
                    _ => SubOutcome::Output(b.show()),
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    fn objects() -> Objects {
        Objects::default()
    }

    /// A Write on a Resource path with a map keyed by that path carries
    /// the Resource itself (it used to send an empty TLV payload).
    #[test]
    fn a_map_at_a_resource_path_encodes_that_resource() {
        let m = map(&[("/3/0/14", Dynamic::from("+01:00"))]);
        let bytes = encode_map_at(
            ContentFormat::LWM2M_TLV,
            &m,
            &objects().read(),
            Some("/3/0/14"),
        )
        .unwrap();
        // TLV: Resource 14, 6 bytes, "+01:00".
        assert_eq!(bytes, b"\xc6\x0e+01:00");
    }

    /// A path outside the request's path is an error, in any format (it
    /// used to be written to the request's object under its own IDs).
    #[test]
    fn a_map_path_outside_the_request_path_is_refused() {
        for (target, key) in [("/3/0", "/4/0/14"), ("/3/0/14", "/3/0/15")] {
            let m = map(&[(key, Dynamic::from_int(1))]);
            for cf in [ContentFormat::LWM2M_TLV, ContentFormat::SENML_JSON] {
                let e = encode_map_at(cf, &m, &objects().read(), Some(target)).unwrap_err();
                assert!(
                    e.contains(&format!("`{key}` is not under the request's path {target}")),
                    "{e}"
                );
            }
        }
    }

    /// An array or a map is no LwM2M value, and a resource's known type
    /// is kept: wrong values are errors naming the path, not text.
    #[test]
    fn values_of_the_wrong_type_are_refused() {
        let objects = objects();
        let reg = objects.read();
        for (key, v, says) in [
            (
                "/3/0/9",
                Dynamic::from_array(vec![Dynamic::from_int(1)]),
                "an array is not a value",
            ),
            (
                "/3/0/9",
                Dynamic::from_map(Map::new()),
                "a map is not a value",
            ),
            ("/3/0/9", Dynamic::from_float(1e300), "not of type Integer"),
            ("/3/0/9", Dynamic::from("many"), "not of type Integer"),
        ] {
            let m = map(&[(key, v)]);
            let e = encode_map(ContentFormat::LWM2M_TLV, &m, &reg).unwrap_err();
            assert!(e.contains(key) && e.contains(says), "{e}");
        }
        // What fits is still taken.
        let m = map(&[("/3/0/9", Dynamic::from_float(80.0))]);
        assert!(encode_map(ContentFormat::LWM2M_TLV, &m, &reg).is_ok());
    }
}
