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
