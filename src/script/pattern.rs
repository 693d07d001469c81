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
        // The original's `Lwm2mUpdate('/rd/demo', content=b'')` form.
        let (name, rest) = match t.split_once('(') {
            Some((n, r)) => (n.trim(), Some(r)),
            None => (t, None),
        };
        let name = name.strip_prefix("Lwm2m").unwrap_or(name);
        let kind = Kind::parse(name).ok_or_else(|| unknown_kind(name))?;
        let mut fields = vec![("kind".to_string(), Dynamic::from(kind.name().to_string()))];
        if let Some(rest) = rest {
            let inner = rest
                .trim_end()
                .strip_suffix(')')
                .ok_or_else(|| format!("pattern: unclosed `(` in `{t}`"))?;
            for (i, arg) in class_args(inner)?.into_iter().enumerate() {
                if let Some(field) = class_field(i, &arg)? {
                    fields.push(field);
                }
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

/// The arguments of the original's class form, split at the commas
/// outside quotes and brackets.
fn class_args(inner: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escape = false;
    for c in inner.chars() {
        match quote {
            Some(_) if escape => escape = false,
            Some(_) if c == '\\' => escape = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => {
                    args.push(std::mem::take(&mut cur).trim().to_string());
                    continue;
                }
                _ => {}
            },
        }
        cur.push(c);
    }
    if let Some(q) = quote {
        return Err(format!("pattern: unclosed {q} quote in `{inner}`"));
    }
    let last = cur.trim();
    if !last.is_empty() || !args.is_empty() {
        args.push(last.to_string());
    }
    Ok(args)
}

/// The field one argument of the class form checks (`None` for `ANY`):
/// a leading path, `content=`, `msg_id=`, `token=`, `path=`, `format=`.
/// Anything else is refused, so that no check is silently dropped.
fn class_field(index: usize, arg: &str) -> Result<Option<(String, Dynamic)>, String> {
    let named = arg.split_once('=').filter(|(k, _)| {
        k.trim()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    let (key, value) = match named {
        Some((k, v)) => (k.trim(), v.trim()),
        None if index == 0 => ("path", arg),
        None => ("", arg),
    };
    let refuse = |what: String| {
        format!(
            "pattern: {what} of the original's form is not checked by nsh; name the field \
             (content=, msg_id=, token=, path=, format=) or write the pattern as a map, \
             e.g. expect(#{{kind: \"Content\", payload: \"abc\", options: …}}) (fields: {})",
            FIELDS.join(", ")
        )
    };
    if value == "ANY" {
        return Ok(None);
    }
    let (field, v) = match key {
        "content" => ("payload", Dynamic::from_blob(class_bytes(value)?)),
        "token" => ("token", Dynamic::from_blob(class_bytes(value)?)),
        "msg_id" => ("msg_id", Dynamic::from_int(class_int(value)?)),
        "format" => match class_int(value) {
            Ok(n) => ("content_format", Dynamic::from_int(n)),
            Err(_) => ("content_format", Dynamic::from(class_text(value)?)),
        },
        "path" => match class_text(value) {
            Ok(p) if p.starts_with('/') => (
                "path",
                Dynamic::from(p.split('?').next().unwrap_or_default().to_string()),
            ),
            _ => return Err(refuse(format!("the argument `{arg}`"))),
        },
        "" => return Err(refuse(format!("the argument `{arg}`"))),
        other => return Err(refuse(format!("`{other}`"))),
    };
    Ok(Some((field.to_string(), v)))
}

/// `b'…'` (or a plain string) as bytes, with Python's escapes.
fn class_bytes(v: &str) -> Result<Vec<u8>, String> {
    let text = class_text(v.strip_prefix('b').unwrap_or(v))?;
    crate::coap::escaped::parse(&text).map_err(|e| format!("pattern: `{v}`: {e}"))
}

/// `'…'` or `"…"`, unquoted (escapes kept for [`class_bytes`]).
fn class_text(v: &str) -> Result<String, String> {
    let quoted = |q: char| v.len() >= 2 && v.starts_with(q) && v.ends_with(q);
    if quoted('\'') || quoted('"') {
        Ok(v[1..v.len() - 1].to_string())
    } else {
        Err(format!("pattern: `{v}` is not a quoted value"))
    }
}

/// A decimal or `0x` integer.
fn class_int(v: &str) -> Result<i64, String> {
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.map_err(|_| format!("pattern: `{v}` is not an integer"))
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
            crate::coap::Code::parse(&w).map(|c| c.dotted()) == Some(dyn_text(got))
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
/// Numbers compare exactly: integers as 64-bit integers, an integer and a
/// float only when the float is integral and exactly that integer, floats
/// as floats.
pub fn values_eq(a: &Dynamic, b: &Dynamic) -> bool {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return match (x, y) {
            (Num::Int(x), Num::Int(y)) => x == y,
            (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => int_is_float(i, f),
            (Num::Float(x), Num::Float(y)) => x == y,
        };
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

/// A Rhai number, kept as it is.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn as_num(v: &Dynamic) -> Option<Num> {
    if let Ok(i) = v.as_int() {
        return Some(Num::Int(i));
    }
    v.as_float().ok().map(Num::Float)
}

/// True when `f` is exactly the integer `i` (no rounding either way).
fn int_is_float(i: i64, f: f64) -> bool {
    // -2^63 ≤ f < 2^63 holds every integral float that converts to an i64
    // without saturating; inside it the cast is exact.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) && f as i64 == i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(i: i64) -> Dynamic {
        Dynamic::from_int(i)
    }

    fn float(f: f64) -> Dynamic {
        Dynamic::from_float(f)
    }

    #[test]
    fn integers_compare_exactly_over_64_bits() {
        assert!(!values_eq(
            &int(9_007_199_254_740_993),
            &int(9_007_199_254_740_992)
        ));
        assert!(!values_eq(&int(i64::MAX), &int(i64::MAX - 1)));
        assert!(values_eq(&int(i64::MIN), &int(i64::MIN)));
    }

    #[test]
    fn an_integer_equals_a_float_only_when_the_float_is_that_integer() {
        assert!(values_eq(&int(3), &float(3.0)));
        assert!(values_eq(&float(-3.0), &int(-3)));
        assert!(!values_eq(&int(3), &float(3.5)));
        // 2^53 + 1 has no f64; the nearest float is 2^53.
        assert!(!values_eq(
            &int(9_007_199_254_740_993),
            &float(9_007_199_254_740_992.0)
        ));
        assert!(values_eq(
            &int(9_007_199_254_740_992),
            &float(9_007_199_254_740_992.0)
        ));
        // i64::MAX as f64 rounds up to 2^63, which no i64 holds.
        assert!(!values_eq(&int(i64::MAX), &float(9.223_372_036_854_776e18)));
        assert!(values_eq(&int(i64::MIN), &float(-9.223_372_036_854_776e18)));
        assert!(!values_eq(&int(0), &float(f64::NAN)));
        assert!(!values_eq(&int(i64::MAX), &float(f64::INFINITY)));
    }

    #[test]
    fn floats_compare_as_floats() {
        assert!(values_eq(&float(0.5), &float(0.5)));
        assert!(!values_eq(&float(0.1 + 0.2), &float(0.3)));
    }

    #[test]
    fn nested_values_compare_integers_exactly() {
        let a = Dynamic::from_array(vec![int(9_007_199_254_740_993)]);
        let b = Dynamic::from_array(vec![int(9_007_199_254_740_992)]);
        assert!(!values_eq(&a, &b));
        let mut m = Map::new();
        m.insert("/3/0/1".into(), int(9_007_199_254_740_993));
        let mut n = Map::new();
        n.insert("/3/0/1".into(), float(9_007_199_254_740_992.0));
        assert!(!values_eq(&Dynamic::from_map(m), &Dynamic::from_map(n)));
    }

    fn field<'a>(p: &'a Pattern, name: &str) -> Option<&'a Dynamic> {
        p.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn class_form(text: &str) -> Result<Pattern, String> {
        Pattern::from_dynamic(&Dynamic::from(text.to_string()))
    }

    /// The original's `expect "Lwm2mContent(content=b'zzz')"` compares the
    /// code and each field given (reference §8): none may be dropped.
    #[test]
    fn the_originals_class_form_keeps_every_field_it_names() {
        let p = class_form("Lwm2mContent(content=b'zzz')").unwrap();
        assert_eq!(
            field(&p, "payload").and_then(|v| v.clone().try_cast::<rhai::Blob>()),
            Some(b"zzz".to_vec())
        );
        let p = class_form("Lwm2mUpdate('/rd/3', content=b'', msg_id=4711, token=b'\\x01\\x02')")
            .unwrap();
        assert_eq!(dyn_text(field(&p, "path").unwrap()), "/rd/3");
        assert_eq!(field(&p, "msg_id").unwrap().as_int(), Ok(4711));
        assert_eq!(
            field(&p, "token").and_then(|v| v.clone().try_cast::<rhai::Blob>()),
            Some(vec![1, 2])
        );
        assert_eq!(
            field(&p, "payload").and_then(|v| v.clone().try_cast::<rhai::Blob>()),
            Some(Vec::new())
        );
        // ANY leaves a field unchecked, as in the original.
        let p = class_form("Lwm2mContent(content=ANY)").unwrap();
        assert!(field(&p, "payload").is_none());
    }

    /// What the class form cannot check is refused, never dropped.
    #[test]
    fn the_class_form_refuses_what_it_cannot_check() {
        let e = class_form("Lwm2mContent(options=[coap.Option.URI_PATH('x')])").unwrap_err();
        assert!(e.contains("`options`"), "{e}");
        assert!(e.contains("#{"), "{e}");
        let e = class_form("Lwm2mContent(1234, b'\\x01')").unwrap_err();
        assert!(e.contains("`1234`"), "{e}");
        let e = class_form("Lwm2mContent(content=b'abc'").unwrap_err();
        assert!(e.contains("unclosed"), "{e}");
    }

    #[test]
    fn a_pattern_field_compares_integers_exactly() {
        let mut m = Map::new();
        m.insert("msg_id".into(), int(9_007_199_254_740_993));
        assert!(Pattern::from_dynamic(&Dynamic::from_map(m)).is_ok());
        assert!(!field_eq(
            "observe",
            &int(9_007_199_254_740_992),
            &int(9_007_199_254_740_993)
        ));
    }
}
