//! The `Message` type scripts see: a history record with getters for every
//! field (kind, type, code, msg_id, token, options, path, payload, value…;
//! block1 and block2 as `#{num, more, size, szx}`).

use rhai::{Array, Dynamic, Engine, Map};

use super::args::options_to_rhai;
use crate::coap::Message as CoapMessage;
use crate::server::{Direction, RecordRef};

/// A sent or received message, as scripts hold it.
#[derive(Clone)]
pub struct Msg(pub RecordRef);

/// Field access on a borrowed record (patterns match without cloning).
pub struct View<'a>(pub &'a crate::server::Record);

impl Msg {
    fn m(&self) -> Option<&CoapMessage> {
        self.0.message.as_ref().ok()
    }

    /// The kind name (`Register`, `Content`, … `Invalid` for undecodable bytes).
    pub fn kind_name(&self) -> String {
        View(&self.0).kind_name()
    }

    /// One field by name.
    pub fn field(&self, name: &str) -> Option<Dynamic> {
        View(&self.0).field(name)
    }

    /// Every field, as a map.
    pub fn to_map(&self) -> Map {
        View(&self.0).to_map()
    }

    /// How the prompt shows a Message value: its line (`<- Content (…)`)
    /// and, when the payload decodes, one indented line per value with its
    /// object and resource names (`  /3/0/0 Manufacturer = "ACME"`), as
    /// `details` ends; a payload that does not decode gets one line saying
    /// why.
    pub fn at_prompt(&self) -> String {
        let r = &self.0;
        let mut s = r.line();
        let Some(m) = self.m() else {
            return s;
        };
        let base = r.payload_base();
        let objects = r.objects.read();
        match crate::lwm2m::decode_payload(m, base.as_deref(), &objects) {
            Some(Ok(decoded)) => {
                for l in decoded.render(&objects).lines() {
                    s.push_str("\n  ");
                    s.push_str(l);
                }
            }
            Some(Err(e)) if !matches!(e.kind, crate::lwm2m::format::ErrorKind::Unsupported(_)) => {
                s.push_str(&format!(
                    "\n  (payload does not decode: {e}; see details())"
                ));
            }
            _ => {}
        }
        s
    }
}

impl View<'_> {
    fn m(&self) -> Option<&CoapMessage> {
        self.0.message.as_ref().ok()
    }

    fn get<T: Into<Dynamic>>(&self, f: impl FnOnce(&CoapMessage) -> T) -> Dynamic {
        self.m().map_or(Dynamic::UNIT, |m| f(m).into())
    }

    fn opt<T: Into<Dynamic>>(&self, f: impl FnOnce(&CoapMessage) -> Option<T>) -> Dynamic {
        self.m().and_then(f).map_or(Dynamic::UNIT, Into::into)
    }

    /// The kind name (`Register`, `Content`, … `Invalid` for undecodable bytes).
    pub fn kind_name(&self) -> String {
        self.0
            .kind
            .map_or("Invalid".to_string(), |k| k.name().to_string())
    }

    /// A map of the fields, for pattern matching and printing.
    pub fn field(&self, name: &str) -> Option<Dynamic> {
        let r = &self.0;
        Some(match name {
            "kind" => self.kind_name().into(),
            "type" => self.get(|m| m.type_name().to_string()),
            "code" => self.get(|m| m.code.dotted()),
            "code_name" => self.opt(|m| m.code.name().map(str::to_string)),
            "msg_id" => self.opt(|m| (!m.reliable).then_some(i64::from(m.message_id))),
            "token" => self.get(|m| Dynamic::from_blob(m.token.clone())),
            "options" => self.get(|m| Dynamic::from_array(options_to_rhai(&m.options))),
            "path" => self.get(|m| m.path_string()),
            "uri" => self.get(|m| m.uri_string()),
            "query" => self.get(|m| {
                Dynamic::from_array(
                    m.uri_query()
                        .into_iter()
                        .map(Dynamic::from)
                        .collect::<Array>(),
                )
            }),
            "location" => self.get(|m| m.location_string()),
            "content_format" => self.opt(|m| m.content_format().map(|f| i64::from(f.0))),
            "accept" => self.opt(|m| m.accepts().next().map(|f| i64::from(f.0))),
            "observe" => self.opt(|m| m.observe().map(i64::from)),
            "block1" => self.opt(|m| m.block1().map(block_map)),
            "block2" => self.opt(|m| m.block2().map(block_map)),
            "payload" => self.get(|m| Dynamic::from_blob(m.payload.clone())),
            "text" => self.get(|m| String::from_utf8_lossy(&m.payload).into_owned()),
            "raw" => Dynamic::from_blob(r.raw.clone()),
            "peer" => r.peer.to_string().into(),
            "direction" => match r.direction {
                Direction::Sent => "sent".into(),
                Direction::Received => "received".into(),
            },
            "role" => r.role.name().into(),
            "error" => r
                .message
                .as_ref()
                .err()
                .map_or(Dynamic::UNIT, |e| e.to_string().into()),
            "observed_path" => r.observed_path.clone().map_or(Dynamic::UNIT, Into::into),
            // RFC 7641 §3.4: false for a notification older than one seen.
            "fresh" => r.fresh.map_or(Dynamic::UNIT, Into::into),
            "note" => r.note.clone().map_or(Dynamic::UNIT, Into::into),
            // DTLS: the PSK identity or certificate subject of the session.
            "identity" => r.identity.clone().map_or(Dynamic::UNIT, Into::into),
            "value" | "decoded" => crate::script::values::decoded_value(r).unwrap_or(Dynamic::UNIT),
            // When it was sent or received: milliseconds since the Unix epoch.
            "at_ms" => {
                r.at.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                    .into()
            }
            // The registration of the peer it was exchanged with; for a
            // Register that made none (refused), the name it gave.
            "endpoint" => match &r.endpoint {
                Some(endpoint) => Dynamic::from(endpoint.to_string()),
                None => self.opt(|m| crate::script::values::registration_field(m, name)),
            },
            "lifetime" | "binding" | "version" | "links" | "queue_mode" => {
                self.opt(|m| crate::script::values::registration_field(m, name))
            }
            _ => return None,
        })
    }

    /// Every field, as a map.
    pub fn to_map(&self) -> Map {
        FIELDS
            .iter()
            .filter_map(|f| self.field(f).map(|v| ((*f).into(), v)))
            .collect()
    }
}

/// The field names a Message exposes.
pub const FIELDS: &[&str] = &[
    "kind",
    "type",
    "code",
    "code_name",
    "msg_id",
    "token",
    "options",
    "path",
    "uri",
    "query",
    "location",
    "content_format",
    "accept",
    "observe",
    "block1",
    "block2",
    "payload",
    "text",
    "raw",
    "peer",
    "direction",
    "role",
    "error",
    "observed_path",
    "fresh",
    "note",
    "identity",
    "value",
    "endpoint",
    "lifetime",
    "binding",
    "version",
    "links",
    "queue_mode",
    "at_ms",
];

/// A Block1 or Block2 option as a map: `num`, `more`, `size` (bytes) and
/// `szx` (its exponent: 7 is BERT over TCP, RFC 8323 §6, where `num`
/// counts 1024-byte units).
fn block_map(b: crate::coap::BlockValue) -> Dynamic {
    let mut m = Map::new();
    m.insert("num".into(), Dynamic::from_int(i64::from(b.num)));
    m.insert("more".into(), Dynamic::from_bool(b.more));
    m.insert("size".into(), Dynamic::from_int(i64::from(b.size())));
    m.insert("szx".into(), Dynamic::from_int(i64::from(b.szx)));
    Dynamic::from_map(m)
}

/// Registers the type, its getters and methods.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Msg>("Message");
    // `decoded` is the original's name for `value`.
    for &f in FIELDS.iter().chain(["decoded"].iter()) {
        engine.register_get(f, move |m: &mut Msg| m.field(f).unwrap_or(Dynamic::UNIT));
    }
    engine.register_indexer_get(
        |m: &mut Msg, key: &str| -> Result<Dynamic, Box<rhai::EvalAltResult>> {
            m.field(key).ok_or_else(|| {
                format!(
                    "a Message has no field `{key}` (fields: {})",
                    FIELDS.join(", ")
                )
                .into()
            })
        },
    );
    engine.register_fn("summary", |m: &mut Msg| m.0.summary());
    engine.register_fn("details", |m: &mut Msg| m.0.details());
    engine.register_fn("to_map", |m: &mut Msg| m.to_map());
    engine.register_fn("to_string", |m: &mut Msg| m.0.line());
    engine.register_fn("to_debug", |m: &mut Msg| format!("Message({})", m.0.line()));
    engine.register_fn("is_error", |m: &mut Msg| {
        m.m().is_some_and(|m| m.code.is_error())
    });
    engine.register_fn("is_success", |m: &mut Msg| {
        m.m().is_some_and(|m| m.code.class() == 2)
    });
}
