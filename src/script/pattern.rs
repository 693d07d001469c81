//! Message patterns for `wait_for`, `expect` and `assert_match`: a kind name
//! (`"Notify"`), the original's class form (`Lwm2mUpdate('/rd/1')`), or a map
//! of fields (`#{kind: "Content", code: "2.05", path: "/3/0"}`).

use rhai::{Dynamic, Map};

use super::args::dyn_text;
use super::message::{FIELDS, View};
use crate::lwm2m::kind::Kind;
use crate::server::Record;

/// A compiled pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    fields: Vec<(String, Dynamic)>,
    any: bool,
}

impl Pattern {
    /// Reads a pattern from a Rhai value.
    pub fn from_dynamic(v: &Dynamic) -> Result<Pattern, String> {
        if let Some(map) = v.read_lock::<Map>() {
            let mut fields = Vec::new();
            for (k, val) in map.iter() {
                let k = k.to_string();
                if !FIELDS.contains(&k.as_str()) {
                    return Err(format!(
                        "pattern: unknown field `{k}` (fields: {})",
                        FIELDS.join(", ")
                    ));
                }
                if k == "kind" {
                    let name = dyn_text(val);
                    Kind::parse(&name).ok_or_else(|| unknown_kind(&name))?;
                }
                fields.push((k, val.clone()));
            }
            return Ok(Pattern { fields, any: false });
        }
        let text = dyn_text(v);
        let t = text.trim();
        if t.eq_ignore_ascii_case("any") {
            return Ok(Pattern {
                fields: Vec::new(),
                any: true,
            });
        }
        // The original's `Lwm2mUpdate('/rd/demo', …)` form: kind and first path.
        let (name, rest) = match t.split_once('(') {
            Some((n, r)) => (n.trim(), Some(r)),
            None => (t, None),
        };
        let name = name.strip_prefix("Lwm2m").unwrap_or(name);
        let kind = Kind::parse(name).ok_or_else(|| unknown_kind(name))?;
        let mut fields = vec![("kind".to_string(), Dynamic::from(kind.name().to_string()))];
        if let Some(rest) = rest {
            let first = rest.split([',', ')']).next().unwrap_or("").trim();
            let unq = first.trim_matches(|c| c == '\'' || c == '"');
            if unq.starts_with('/') {
                fields.push((
                    "path".to_string(),
                    Dynamic::from(unq.split('?').next().unwrap_or("").to_string()),
                ));
            }
        }
        Ok(Pattern { fields, any: false })
    }

    /// Short description (`{kind: Notify, path: /3/0}`).
    pub fn describe(&self) -> String {
        if self.any {
            return "ANY".into();
        }
        let parts: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}: {}", dyn_text(v)))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }

    /// `Ok` when the record matches; otherwise one line per differing field.
    pub fn matches(&self, r: &Record) -> Result<(), Vec<String>> {
        if self.any {
            return Ok(());
        }
        let msg = View(r);
        let mut diffs = Vec::new();
        for (k, want) in &self.fields {
            let got = msg.field(k).unwrap_or(Dynamic::UNIT);
            if !field_eq(k, &got, want) {
                diffs.push(format!("{k}: expected {}, got {}", show(want), show(&got)));
            }
        }
        if diffs.is_empty() { Ok(()) } else { Err(diffs) }
    }
}

fn unknown_kind(name: &str) -> String {
    let all: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    format!("unknown message kind `{name}` (kinds: {})", all.join(", "))
}

/// Shows a value for a diff line.
pub fn show(v: &Dynamic) -> String {
    if v.is_blob() {
        let b = v.clone().try_cast::<rhai::Blob>().unwrap_or_default();
        return format!("\"{}\"", crate::coap::escaped::format_hex(&b));
    }
    if v.is_string() {
        return format!("{:?}", dyn_text(v));
    }
    if v.is_unit() {
        return "()".into();
    }
    v.to_string()
}

/// Field comparison: kinds and codes by meaning, blobs by bytes (a string
/// pattern against a blob is read as escaped bytes), numbers across int/float.
pub fn field_eq(field: &str, got: &Dynamic, want: &Dynamic) -> bool {
    match field {
        "kind" => Kind::parse(&dyn_text(want)).map(|k| k.name()) == Some(dyn_text(got).as_str()),
        "code" => {
            let w = match want.as_float() {
                Ok(f) => format!("{f:.2}"),
                Err(_) => dyn_text(want),
            };
            crate::coap::Code::parse(&w).map(|c| format!("{}.{:02}", c.class(), c.detail()))
                == Some(dyn_text(got))
        }
        "type" => {
            crate::coap::Type::parse(&dyn_text(want)).map(|t| t.name())
                == Some(dyn_text(got).as_str())
        }
        "content_format" | "accept" if want.is_string() => {
            crate::coap::ContentFormat::parse(&dyn_text(want)).map(|f| i64::from(f.0))
                == got.as_int().ok()
        }
        _ => values_eq(got, want),
    }
}

/// Deep equality of Rhai values, lenient across int/float and blob/string.
pub fn values_eq(a: &Dynamic, b: &Dynamic) -> bool {
    if let (Ok(x), Ok(y)) = (as_num(a), as_num(b)) {
        return x == y;
    }
    if a.is_blob() && b.is_string() {
        return crate::coap::escaped::parse(&dyn_text(b)).ok()
            == a.clone().try_cast::<rhai::Blob>();
    }
    if a.is_string() && b.is_blob() {
        return values_eq(b, a);
    }
    if let (Some(x), Some(y)) = (a.read_lock::<rhai::Array>(), b.read_lock::<rhai::Array>()) {
        return x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| values_eq(p, q));
    }
    if let (Some(x), Some(y)) = (a.read_lock::<Map>(), b.read_lock::<Map>()) {
        return x.len() == y.len()
            && x.iter()
                .all(|(k, v)| y.get(k).is_some_and(|w| values_eq(v, w)));
    }
    if a.type_id() == b.type_id() {
        return a.to_string() == b.to_string();
    }
    false
}

fn as_num(v: &Dynamic) -> Result<f64, ()> {
    if let Ok(i) = v.as_int() {
        return Ok(i as f64);
    }
    v.as_float().map_err(|_| ())
}
