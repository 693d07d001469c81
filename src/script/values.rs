//! Conversions from decoded LwM2M data to Rhai values.

use rhai::{Dynamic, Map};

use crate::coap::Message;
use crate::lwm2m::node::{Record as ValueRecord, Value};
use crate::server::Record;

/// The payload decoded by its content format, as Rhai values: the plain
/// value when the payload holds one value at the request's own path (a
/// single resource), otherwise a map keyed by path (`"/3/0/0"`). Links
/// become an array of `#{path, attributes}` maps. Undecodable payloads give
/// `()` (their error is in `details()`).
pub fn decoded_value(r: &Record) -> Option<Dynamic> {
    let m = r.message.as_ref().ok()?;
    let base = r.payload_base();
    let decoded = crate::lwm2m::decode_payload(m, base.as_deref(), &r.objects.read())?.ok()?;
    use crate::lwm2m::format::Payload;
    if let Payload::Links(links) = &decoded.payload {
        return Some(Dynamic::from_array(links.iter().map(link_map).collect()));
    }
    let records = decoded.payload.records()?;
    if let [only] = records.as_slice()
        && base
            .as_deref()
            .is_none_or(|b| b == only.path.to_string() || b.is_empty())
    {
        return Some(value_to_rhai(&only.value));
    }
    Some(Dynamic::from_map(records_to_map(&records)))
}

/// Records as a map keyed by path.
pub fn records_to_map(records: &[ValueRecord]) -> Map {
    records
        .iter()
        .map(|r| (r.path.to_string().into(), value_to_rhai(&r.value)))
        .collect()
}

/// One typed value as Rhai: numbers, booleans, strings; opaque as a blob;
/// an object link as `"3:0"`; time as its integer seconds.
pub fn value_to_rhai(v: &Value) -> Dynamic {
    match v {
        Value::Integer(i) | Value::Time(i) => Dynamic::from_int(*i),
        Value::UnsignedInteger(u) => {
            i64::try_from(*u).map_or_else(|_| Dynamic::from_float(*u as f64), Dynamic::from_int)
        }
        Value::Float(f) => Dynamic::from_float(*f),
        Value::Boolean(b) => Dynamic::from_bool(*b),
        Value::String(s) | Value::CoreLink(s) => Dynamic::from(s.clone()),
        Value::Opaque(b) => Dynamic::from_blob(b.clone()),
        Value::ObjectLink(o, i) => Dynamic::from(format!("{o}:{i}")),
        Value::None => Dynamic::UNIT,
    }
}

/// Register/Update fields.
pub fn registration_field(m: &Message, name: &str) -> Option<Dynamic> {
    let r = crate::lwm2m::registration::parse(m, m.path_string().ends_with("/rd"));
    Some(match name {
        "endpoint" => r.endpoint.clone()?.into(),
        "lifetime" => Dynamic::from_int(i64::from(r.lifetime_or_default())),
        "binding" => r.binding_or_default().to_string().into(),
        "version" => r.version_or_default().to_string().into(),
        "queue_mode" => Dynamic::from_bool(r.queue_mode),
        "links" => Dynamic::from_array(r.links().iter().map(link_map).collect()),
        _ => return None,
    })
}

/// A link as `#{path: "/3/0", attributes: #{ver: "1.1"}}`.
pub fn link_map(l: &crate::lwm2m::format::link::Link) -> Dynamic {
    let mut map = Map::new();
    map.insert("path".into(), l.target.clone().into());
    let attrs: Map = l
        .attributes
        .iter()
        .map(|a| {
            (
                a.name.as_str().into(),
                a.value.clone().map_or(Dynamic::UNIT, Into::into),
            )
        })
        .collect();
    map.insert("attributes".into(), Dynamic::from_map(attrs));
    Dynamic::from_map(map)
}
