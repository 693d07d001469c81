//! Command parameters: the specification of each command's arguments (names,
//! order and defaults as in the original nsh) and their conversion from Rhai
//! values or from words of the original's command-line form.

use std::time::Duration;

use rhai::{Array, Blob, Dynamic, ImmutableString, Map};

use crate::coap::{CoapOption, Code, ContentFormat, OptionNumber, Type, escaped};

/// What a parameter holds, and so how its text or Rhai value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text as typed.
    Str,
    /// Decimal integer.
    Int,
    /// Number.
    Float,
    /// `1/0`, `true/false`, `yes/no`, `on/off`.
    Bool,
    /// Escaped-bytes text (`\x01abc`) or a Rhai blob.
    Bytes,
    /// Content-Format: number or name (`11542`, `APPLICATION_LWM2M_TLV`, `tlv`).
    Format,
    /// CoAP code: `2.05` or a name (`RES_CONTENT`, `content`).
    Code,
    /// Message type: `CONFIRMABLE`, `CON`, …
    Type,
    /// List of text: `[a,b]`, `a,b`, or a Rhai array.
    List,
    /// Extra CoAP options: `[URI_PATH('rd'),BLOCK1(0,1,512)]` or a Rhai array.
    Options,
    /// Any Rhai value (maps, patterns).
    Any,
}

impl Kind {
    /// Name shown in help.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Str => "text",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Bool => "bool",
            Kind::Bytes => "bytes",
            Kind::Format => "content-format",
            Kind::Code => "code",
            Kind::Type => "type",
            Kind::List => "list",
            Kind::Options => "options",
            Kind::Any => "value",
        }
    }
}

/// One parameter of a command.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// Name, as in the original (`msg_id`, `accept`).
    pub name: &'static str,
    /// Value kind.
    pub kind: Kind,
    /// `None`: required. `Some(text)`: optional, with this default shown in help.
    pub default: Option<&'static str>,
}

/// A required parameter.
pub const fn req(name: &'static str, kind: Kind) -> Param {
    Param {
        name,
        kind,
        default: None,
    }
}

/// An optional parameter and the default shown in help.
pub const fn opt(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        kind,
        default: Some(default),
    }
}

/// The longest wait nsh keeps: 30 years, longer than any test runs. A
/// larger number of seconds (infinity included) waits this long, since a
/// `Duration` or an `Instant` cannot hold more; Ctrl-C ends any wait.
pub const MAX_WAIT: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// An argument in seconds, as a `Duration`: 0 or more, capped at
/// [`MAX_WAIT`]. NaN and negative numbers are errors naming the argument
/// and the value. The one conversion every wait of every command uses.
pub fn seconds(name: &str, s: f64) -> Result<Duration, ArgError> {
    if s.is_nan() || s < 0.0 {
        return Err(format!(
            "`{name}`: {s} is not a valid number of seconds (0 or more)"
        ));
    }
    Ok(Duration::try_from_secs_f64(s).map_or(MAX_WAIT, |d| d.min(MAX_WAIT)))
}

/// Arguments of one call, by parameter name, as given (unconverted).
#[derive(Clone, Debug, Default)]
pub struct Args {
    params: &'static [Param],
    /// The value given for each of `params`, in their order.
    values: Vec<Option<Dynamic>>,
    command: &'static str,
}

/// An argument error, worded for the user.
pub type ArgError = String;

impl Args {
    /// Binds positional values, then named ones, to `params`; checks that
    /// every required parameter got a value and no name is unknown.
    pub fn bind(
        command: &'static str,
        params: &'static [Param],
        positional: Vec<Dynamic>,
        named: Vec<(String, Dynamic)>,
    ) -> Result<Args, ArgError> {
        let mut values: Vec<Option<Dynamic>> = vec![None; params.len()];
        for (name, value) in named {
            let Some(at) = params
                .iter()
                .position(|p| p.name.eq_ignore_ascii_case(&name))
            else {
                let allowed: Vec<&str> = params.iter().map(|p| p.name).collect();
                let hint = crate::server::names::hint(&name, allowed.iter().copied());
                return Err(if allowed.is_empty() {
                    format!("{command}: unknown option `{name}`: it takes no options")
                } else {
                    format!(
                        "{command}: unknown option `{name}`{hint} (allowed: {})",
                        allowed.join(", ")
                    )
                });
            };
            if values[at].replace(value).is_some() {
                return Err(format!("{command}: `{}` given twice", params[at].name));
            }
        }
        // The parameters without a value yet take the positional values,
        // in order.
        for value in positional {
            let next = values.iter().position(Option::is_none);
            // A map of path → value is payload data: where the next free
            // parameter does not take bytes (`send(#{"/3/0/0": 1})`), it
            // goes to the command's payload.
            let payload = (is_path_map(&value)
                && next.is_some_and(|i| params[i].kind != Kind::Bytes))
            .then(|| (0..params.len()).find(|&i| values[i].is_none() && is_payload(&params[i])))
            .flatten();
            let Some(at) = payload.or(next) else {
                return Err(format!(
                    "{command}: too many arguments (takes {}: {})",
                    params.len(),
                    params.iter().map(|p| p.name).collect::<Vec<_>>().join(" ")
                ));
            };
            values[at] = Some(value);
        }
        if let Some(missing) = params
            .iter()
            .zip(&values)
            .find(|(p, v)| p.default.is_none() && v.is_none())
            .map(|(p, _)| p)
        {
            return Err(format!(
                "{command}: missing value for `{}` ({})",
                missing.name,
                missing.kind.name()
            ));
        }
        Ok(Args {
            params,
            values,
            command,
        })
    }

    /// The raw value of a parameter, if given.
    pub fn raw(&self, name: &str) -> Option<&Dynamic> {
        // Names are compared only where a value was given: a command's
        // parse asks for every parameter, and most are not given.
        self.params
            .iter()
            .zip(&self.values)
            .find_map(|(p, v)| v.as_ref().filter(|_| p.name == name))
            .filter(|v| !v.is_unit())
    }

    /// True when given.
    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    fn err(&self, name: &str, what: impl std::fmt::Display) -> ArgError {
        format!("{}: `{name}`: {what}", self.command)
    }

    /// Text value.
    pub fn str(&self, name: &str) -> Result<Option<String>, ArgError> {
        // Copied straight from the script's string: one allocation, where
        // taking the string out of a shared value would make two.
        Ok(self
            .raw(name)
            .map(|v| match v.read_lock::<rhai::ImmutableString>() {
                Some(s) => s.as_str().to_owned(),
                None => v.to_string(),
            }))
    }

    /// Integer value.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ArgError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        if let Ok(i) = v.as_int() {
            return Ok(Some(i));
        }
        if let Ok(f) = v.as_float() {
            // -2^63 ≤ f < 2^63: exactly an i64, no saturating cast.
            return if f.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
            {
                Ok(Some(f as i64))
            } else {
                Err(self.err(name, format!("{f:?} is not an integer")))
            };
        }
        let text = v.to_string();
        text.trim()
            .replace('_', "")
            .parse::<i64>()
            .map(Some)
            .map_err(|_| self.err(name, format!("`{text}` is not an integer")))
    }

    /// Integer value that must fit `T`.
    pub fn int_in<T: TryFrom<i64>>(&self, name: &str) -> Result<Option<T>, ArgError> {
        match self.int(name)? {
            None => Ok(None),
            Some(i) => T::try_from(i)
                .map(Some)
                .map_err(|_| self.err(name, format!("{i} is out of range"))),
        }
    }

    /// Float value.
    pub fn float(&self, name: &str) -> Result<Option<f64>, ArgError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        if let Ok(f) = v.as_float() {
            return Ok(Some(f));
        }
        if let Ok(i) = v.as_int() {
            return Ok(Some(i as f64));
        }
        let text = v.to_string();
        text.trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| self.err(name, format!("`{text}` is not a number")))
    }

    /// A number of seconds (see [`seconds`]).
    pub fn seconds(&self, name: &str) -> Result<Option<Duration>, ArgError> {
        let Some(s) = self.float(name)? else {
            return Ok(None);
        };
        seconds(name, s)
            .map(Some)
            .map_err(|e| format!("{}: {e}", self.command))
    }

    /// Boolean value.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ArgError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        if let Ok(b) = v.as_bool() {
            return Ok(Some(b));
        }
        if let Ok(i) = v.as_int() {
            return Ok(Some(i != 0));
        }
        let text = v.to_string();
        parse_bool(&text).map(Some).ok_or_else(|| {
            self.err(
                name,
                format!("`{text}` is not a boolean (use 1/0, true/false)"),
            )
        })
    }

    /// Bytes: a blob as is, a string as escaped-bytes text.
    pub fn bytes(&self, name: &str) -> Result<Option<Vec<u8>>, ArgError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        if v.is_blob() {
            return Ok(v.clone().try_cast::<Blob>());
        }
        if v.is_array() {
            let arr = v.clone().into_array().unwrap_or_default();
            let mut out = Vec::with_capacity(arr.len());
            for b in arr {
                let i = b
                    .as_int()
                    .map_err(|_| self.err(name, "array items must be byte values 0..255"))?;
                out.push(
                    u8::try_from(i).map_err(|_| self.err(name, format!("{i} is not a byte")))?,
                );
            }
            return Ok(Some(out));
        }
        if v.is_map() {
            return Err(self.err(
                name,
                "a map is not bytes here (give a blob or escaped text)",
            ));
        }
        let text = v.to_string();
        escaped::parse(&text)
            .map(Some)
            .map_err(|e| self.err(name, e))
    }

    /// Content-Format value.
    pub fn format(&self, name: &str) -> Result<Option<ContentFormat>, ArgError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        let text = dyn_text(v);
        ContentFormat::parse_or_explain(&text)
            .map(Some)
            .map_err(|e| self.err(name, e))
    }

    /// Code value.
    pub fn code(&self, name: &str) -> Result<Option<Code>, ArgError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        let text = match v.as_float() {
            Ok(f) => format!("{f:.2}"),
            Err(_) => v.to_string(),
        };
        Code::parse(&text).map(Some).ok_or_else(|| {
            self.err(
                name,
                format!("`{text}` is not a CoAP code (`2.05` or a name like RES_CONTENT)"),
            )
        })
    }

    /// Message type value.
    pub fn mtype(&self, name: &str) -> Result<Option<Type>, ArgError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        let text = v.to_string();
        Type::parse(&text).map(Some).ok_or_else(|| self.err(name, format!("`{text}` is not a message type (CONFIRMABLE, NON_CONFIRMABLE, ACKNOWLEDGEMENT, RESET)")))
    }

    /// List of text.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, ArgError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        if v.is_array() {
            return Ok(Some(
                v.clone()
                    .into_array()
                    .unwrap_or_default()
                    .iter()
                    .map(dyn_text)
                    .collect(),
            ));
        }
        Ok(Some(split_list(&v.to_string())))
    }

    /// Extra options.
    pub fn options(&self, name: &str) -> Result<Vec<CoapOption>, ArgError> {
        let Some(v) = self.raw(name) else {
            return Ok(Vec::new());
        };
        let items: Vec<Dynamic> = if v.is_array() {
            v.clone().into_array().unwrap_or_default()
        } else {
            split_list(&v.to_string())
                .into_iter()
                .map(Dynamic::from)
                .collect()
        };
        items
            .iter()
            .map(|i| option_from(i).map_err(|e| self.err(name, e)))
            .collect()
    }
}

/// A non-empty map whose keys are all LwM2M paths (`"/3/0/1"`): payload
/// data, not a map of named arguments.
pub fn is_path_map(v: &Dynamic) -> bool {
    v.read_lock::<Map>()
        .is_some_and(|m| !m.is_empty() && m.keys().all(|k| k.starts_with('/')))
}

/// The parameter that takes a command's payload: `content`, as bytes.
pub fn is_payload(p: &Param) -> bool {
    p.name == "content" && p.kind == Kind::Bytes
}

/// Text of a Rhai value without quotes.
pub fn dyn_text(v: &Dynamic) -> String {
    if v.is_string() {
        v.clone().into_string().unwrap_or_default()
    } else {
        v.to_string()
    }
}

/// `1/0`, `true/false`, `yes/no`, `on/off` (any case).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// Splits `[a,b,(c,d)]` at top-level commas (brackets, parentheses and quotes
/// nest); the outer brackets are optional. `[]` is the empty list.
pub fn split_list(text: &str) -> Vec<String> {
    let t = text.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(t);
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut cur = String::new();
    for c in t.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (None, '(' | '[' | '{') => {
                depth += 1;
                cur.push(c);
            }
            (None, ')' | ']' | '}') => {
                depth -= 1;
                cur.push(c);
            }
            (None, ',') if depth == 0 => out.push(std::mem::take(&mut cur).trim().to_string()),
            (None, c) => cur.push(c),
        }
    }
    if !cur.trim().is_empty() || !out.is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Reads one option: `NAME(args)` text (`URI_PATH('rd')`, `BLOCK1(0,1,512)`,
/// `CONTENT_FORMAT(40)`, `ETAG(b'\x01')`, `IF_NONE_MATCH`) or a Rhai map
/// `#{number: 11, value: "rd"}` / `#{name: "BLOCK1", num: 0, more: true, size: 512}`.
pub fn option_from(v: &Dynamic) -> Result<CoapOption, String> {
    if let Some(map) = v.read_lock::<Map>() {
        return option_from_map(&map);
    }
    let text = dyn_text(v);
    let text = text.trim();
    let (name, inner) = match text.split_once('(') {
        Some((n, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("option `{text}`: missing `)`"))?;
            (n.trim(), Some(inner))
        }
        None => (text, None),
    };
    let number = OptionNumber::parse(name).ok_or_else(|| format!("unknown option `{name}`"))?;
    let Some(inner) = inner else {
        return Ok(CoapOption::new(number, Vec::new()));
    };
    let parts = split_list(inner);
    use crate::coap::ValueFormat;
    match number.format() {
        ValueFormat::Block => {
            let nums: Vec<u32> = parts
                .iter()
                .map(|p| parse_num_or_bool(p))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("{name}: expected (seq_num, has_more, block_size)"))?;
            let [num, more, size] = nums[..] else {
                return Err(format!("{name}: expected (seq_num, has_more, block_size)"));
            };
            let b = crate::coap::BlockValue::new(num, more != 0, size).ok_or_else(|| {
                format!("{name}: block size must be a power of two 16..2048 and seq_num < 2^20")
            })?;
            Ok(CoapOption::new(number, b.encode()))
        }
        ValueFormat::Uint | ValueFormat::ContentFormat => {
            let p = parts.first().map(String::as_str).unwrap_or("");
            let value = if number.format() == ValueFormat::ContentFormat {
                ContentFormat::parse_or_explain(p)
                    .map(|f| u64::from(f.0))
                    .map_err(|e| format!("{name}: {e}"))?
            } else {
                p.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{name}: `{p}` is not a number"))?
            };
            Ok(CoapOption::uint(number, value))
        }
        _ => {
            let p = parts.first().map(String::as_str).unwrap_or("");
            Ok(CoapOption::new(number, literal_bytes(p)?))
        }
    }
}

/// Registers a Rhai function per named option, as the README writes them
/// in `options`: `CONTENT_FORMAT("tlv")`, `URI_QUERY("a=b")`,
/// `BLOCK2(0, false, 512)`, `IF_NONE_MATCH()`. Each returns the option as
/// a map that `options` takes, checked at once (an unknown content format
/// is an error naming them all).
pub fn register_option_constructors(engine: &mut rhai::Engine) {
    use crate::coap::ValueFormat;
    fn checked(map: Map) -> Result<Dynamic, Box<rhai::EvalAltResult>> {
        let name = map.get("name").map(dyn_text).unwrap_or_default();
        option_from_map(&map).map_err(|e| {
            Box::new(rhai::EvalAltResult::ErrorRuntime(
                format!("{name}: {e}").into(),
                rhai::Position::NONE,
            ))
        })?;
        Ok(Dynamic::from_map(map))
    }
    for (number, name) in OptionNumber::all_named() {
        let base = move || {
            let mut m = Map::new();
            m.insert("name".into(), Dynamic::from(name.to_string()));
            m
        };
        engine.register_fn(name, move || checked(base()));
        let format = number.format();
        engine.register_fn(name, move |v: Dynamic| {
            let mut m = base();
            let value = match format {
                ValueFormat::ContentFormat if !v.is_int() => {
                    let f = ContentFormat::parse_or_explain(&dyn_text(&v)).map_err(|e| {
                        Box::new(rhai::EvalAltResult::ErrorRuntime(
                            format!("{name}: {e}").into(),
                            rhai::Position::NONE,
                        ))
                    })?;
                    Dynamic::from_int(i64::from(f.0))
                }
                _ => v,
            };
            m.insert("value".into(), value);
            checked(m)
        });
        if format == ValueFormat::Block {
            engine.register_fn(name, move |num: rhai::INT, more: bool, size: rhai::INT| {
                let mut m = base();
                m.insert("num".into(), Dynamic::from_int(num));
                m.insert("more".into(), Dynamic::from_bool(more));
                m.insert("size".into(), Dynamic::from_int(size));
                checked(m)
            });
        }
    }
}

fn parse_num_or_bool(p: &str) -> Option<u32> {
    p.trim()
        .parse::<u32>()
        .ok()
        .or_else(|| parse_bool(p).map(u32::from))
}

/// `'text'`, `"text"`, `b'\x01'` or bare text, as bytes.
fn literal_bytes(p: &str) -> Result<Vec<u8>, String> {
    let p = p.trim();
    let p = p
        .strip_prefix('b')
        .filter(|r| r.starts_with('\'') || r.starts_with('"'))
        .unwrap_or(p);
    let unq = p
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| p.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
        .unwrap_or(p);
    escaped::parse(unq).map_err(|e| e.to_string())
}

fn option_from_map(map: &Map) -> Result<CoapOption, String> {
    let number = match (map.get("number"), map.get("name")) {
        (Some(n), _) => n
            .as_int()
            .ok()
            .and_then(|n| u16::try_from(n).ok())
            .map(OptionNumber),
        (None, Some(n)) => OptionNumber::parse(&dyn_text(n)),
        _ => None,
    }
    .ok_or("an option map needs `number` or `name`")?;
    if let Some(num) = map.get("num") {
        let num = num.as_int().unwrap_or(0) as u32;
        let more = map
            .get("more")
            .and_then(|m| m.as_bool().ok())
            .unwrap_or(false);
        let size = map
            .get("size")
            .and_then(|s| s.as_int().ok())
            .unwrap_or(1024) as u32;
        let b = crate::coap::BlockValue::new(num, more, size)
            .ok_or("block size must be a power of two 16..2048")?;
        return Ok(CoapOption::new(number, b.encode()));
    }
    let value = match map.get("value") {
        None => Vec::new(),
        Some(v) if v.is_blob() => v.clone().try_cast::<Blob>().unwrap_or_default(),
        Some(v) if v.is_int() => {
            crate::coap::option::encode_uint(v.as_int().unwrap_or(0).max(0) as u64)
        }
        Some(v) => dyn_text(v).into_bytes(),
    };
    Ok(CoapOption::new(number, value))
}

/// Converts option list to Rhai maps (for `msg.options`).
pub fn options_to_rhai(options: &[CoapOption]) -> Array {
    options
        .iter()
        .map(|o| {
            let mut m = Map::new();
            m.insert("number".into(), Dynamic::from_int(i64::from(o.number.0)));
            m.insert(
                "name".into(),
                o.number
                    .name()
                    .map_or(Dynamic::UNIT, |n| Dynamic::from(ImmutableString::from(n))),
            );
            m.insert("value".into(), Dynamic::from_blob(o.value.clone()));
            m.insert("text".into(), Dynamic::from(o.render_value()));
            Dynamic::from_map(m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &[Param] = &[
        req("path", Kind::Str),
        opt("accept", Kind::Format, "none"),
        opt("msg_id", Kind::Int, "auto"),
    ];

    #[test]
    fn binds_positional_then_named() {
        let a = Args::bind(
            "read",
            READ,
            vec!["/1/1".into(), "APPLICATION_LWM2M_JSON".into()],
            vec![],
        )
        .unwrap();
        assert_eq!(a.format("accept").unwrap(), Some(ContentFormat::LWM2M_JSON));
        let a = Args::bind(
            "read",
            READ,
            vec!["/1/1".into()],
            vec![("msg_id".into(), "7".into())],
        )
        .unwrap();
        assert_eq!(a.int("msg_id").unwrap(), Some(7));
    }

    #[test]
    fn a_path_map_goes_to_the_payload_wherever_it_stands() {
        const SEND: &[Param] = &[
            opt("path", Kind::Str, "/dp"),
            opt("format", Kind::Format, "112"),
            opt("content", Kind::Bytes, "empty"),
        ];
        let mut data = Map::new();
        data.insert("/3/0/0".into(), "x".into());
        let a = Args::bind("send", SEND, vec![Dynamic::from_map(data.clone())], vec![]).unwrap();
        assert!(a.raw("content").is_some_and(Dynamic::is_map));
        assert!(!a.has("path"));
        // Other positional values keep their places.
        let a = Args::bind(
            "send",
            SEND,
            vec!["/dp2".into(), Dynamic::from_map(data)],
            vec![],
        )
        .unwrap();
        assert_eq!(a.str("path").unwrap().as_deref(), Some("/dp2"));
        assert!(a.raw("content").is_some_and(Dynamic::is_map));
        // A map of names is not payload data.
        assert!(!is_path_map(&Dynamic::from_map(Map::new())));
    }

    #[test]
    fn integral_floats_outside_64_bits_are_not_integers() {
        const N: &[Param] = &[opt("n", Kind::Int, "0")];
        let int = |v: Dynamic| Args::bind("cmd", N, vec![v], vec![]).unwrap().int("n");
        assert_eq!(
            int(Dynamic::from_float(-9.223372036854776e18)),
            Ok(Some(i64::MIN))
        );
        assert_eq!(int(Dynamic::from_float(4096.0)), Ok(Some(4096)));
        for f in [1e300, 9.223372036854776e18, -1e19, f64::INFINITY] {
            let e = int(Dynamic::from_float(f)).unwrap_err();
            assert!(e.contains("`n`") && e.contains("not an integer"), "{e}");
        }
    }

    #[test]
    fn seconds_cap_at_max_wait_and_refuse_nan_and_negatives() {
        assert_eq!(seconds("t", 1.5), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds("t", 0.0), Ok(Duration::ZERO));
        for big in [1e10, 1e20, 1e300, f64::INFINITY] {
            assert_eq!(seconds("t", big), Ok(MAX_WAIT));
        }
        for bad in [-1.0, -0.001, f64::NEG_INFINITY, f64::NAN] {
            let e = seconds("t", bad).unwrap_err();
            assert!(e.contains("`t`") && e.contains(&bad.to_string()), "{e}");
        }
    }

    #[test]
    fn unknown_names_list_the_allowed_ones() {
        let e = Args::bind(
            "read",
            READ,
            vec!["/1".into()],
            vec![("acept".into(), "1".into())],
        )
        .unwrap_err();
        assert_eq!(
            e,
            "read: unknown option `acept`, did you mean `accept`? (allowed: path, accept, msg_id)"
        );
        let e = Args::bind("read", READ, vec![], vec![("zzz".into(), "1".into())]).unwrap_err();
        assert_eq!(
            e,
            "read: unknown option `zzz` (allowed: path, accept, msg_id)"
        );
        let e = Args::bind("read", READ, vec![], vec![]).unwrap_err();
        assert!(e.contains("missing value for `path`"), "{e}");
    }

    #[test]
    fn parses_options_in_the_originals_syntax() {
        let o = option_from(&"BLOCK1(0,1,512)".into()).unwrap();
        assert_eq!(o.number, OptionNumber::BLOCK1);
        assert_eq!(o.value, vec![0x0d]);
        let o = option_from(&"URI_PATH('rd')".into()).unwrap();
        assert_eq!(o.value, b"rd".to_vec());
        let o = option_from(&"ETAG(b'\\x01\\x02')".into()).unwrap();
        assert_eq!(o.value, vec![1, 2]);
        assert_eq!(
            option_from(&"IF_NONE_MATCH".into()).unwrap().value,
            Vec::<u8>::new()
        );
        assert_eq!(
            option_from(&"CONTENT_FORMAT(tlv)".into()).unwrap().value,
            vec![0x2d, 0x16]
        );
        assert!(option_from(&"NOPE(1)".into()).is_err());
    }

    #[test]
    fn splits_lists_at_top_level_commas() {
        assert_eq!(split_list("[/3/0/0,/1/1]"), vec!["/3/0/0", "/1/1"]);
        assert_eq!(
            split_list("[BLOCK1(0,1,512),URI_PATH('a,b')]"),
            vec!["BLOCK1(0,1,512)", "URI_PATH('a,b')"]
        );
        assert!(split_list("[]").is_empty());
    }
}
