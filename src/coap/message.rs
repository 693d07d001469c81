//! The CoAP message model (RFC 7252 §3): type, code, message ID, token,
//! options in the order they came, payload.
//!
//! A [`Message`] may hold anything the wire can carry, including values a
//! conforming peer would refuse (version 2, a 9-byte token, options out of
//! order): nsh must be able to build and show wrong messages on purpose.

use std::fmt;

use super::code::Code;
use super::content_format::ContentFormat;
use super::escaped;
use super::option::{BlockValue, CoapOption, OptionNumber};

/// Message type (RFC 7252 §3). Over TCP (RFC 8323) there is none; such
/// messages are decoded as [`Type::Confirmable`] with `reliable` framing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Type {
    /// CON (0).
    #[default]
    Confirmable,
    /// NON (1).
    NonConfirmable,
    /// ACK (2).
    Acknowledgement,
    /// RST (3).
    Reset,
}

impl Type {
    /// From the 2-bit wire value.
    pub fn from_bits(bits: u8) -> Type {
        match bits & 3 {
            0 => Type::Confirmable,
            1 => Type::NonConfirmable,
            2 => Type::Acknowledgement,
            _ => Type::Reset,
        }
    }

    /// The 2-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            Type::Confirmable => 0,
            Type::NonConfirmable => 1,
            Type::Acknowledgement => 2,
            Type::Reset => 3,
        }
    }

    /// `CONFIRMABLE`, `NON_CONFIRMABLE`, `ACKNOWLEDGEMENT`, `RESET`.
    pub fn name(self) -> &'static str {
        match self {
            Type::Confirmable => "CONFIRMABLE",
            Type::NonConfirmable => "NON_CONFIRMABLE",
            Type::Acknowledgement => "ACKNOWLEDGEMENT",
            Type::Reset => "RESET",
        }
    }

    /// `CON`, `NON`, `ACK`, `RST`.
    pub fn short(self) -> &'static str {
        match self {
            Type::Confirmable => "CON",
            Type::NonConfirmable => "NON",
            Type::Acknowledgement => "ACK",
            Type::Reset => "RST",
        }
    }

    /// Parses a full name, short name or number, case-insensitively.
    pub fn parse(text: &str) -> Option<Type> {
        let t = text.trim().to_ascii_uppercase();
        [
            Type::Confirmable,
            Type::NonConfirmable,
            Type::Acknowledgement,
            Type::Reset,
        ]
        .into_iter()
        .find(|ty| ty.name() == t || ty.short() == t || ty.bits().to_string() == t)
        .or(match t.as_str() {
            "NONCONFIRMABLE" | "NON-CONFIRMABLE" => Some(Type::NonConfirmable),
            "ACKNOWLEDGMENT" => Some(Type::Acknowledgement),
            _ => None,
        })
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A CoAP message.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Message {
    /// Version field; 1 for every valid message.
    pub version: u8,
    /// Message type.
    pub mtype: Type,
    /// Code.
    pub code: Code,
    /// Message ID.
    pub message_id: u16,
    /// Token (0–8 bytes when valid).
    pub token: Vec<u8>,
    /// Options in wire order.
    pub options: Vec<CoapOption>,
    /// Payload.
    pub payload: Vec<u8>,
    /// Carried by a reliable transport (CoAP over TCP, RFC 8323): the
    /// message has no type and no message ID on the wire, and `mtype` /
    /// `message_id` mean nothing (shown as `None`).
    pub reliable: bool,
}

impl Message {
    /// A version-1 message with no token, options or payload.
    pub fn new(mtype: Type, code: Code, message_id: u16) -> Self {
        Message {
            version: 1,
            mtype,
            code,
            message_id,
            ..Default::default()
        }
    }

    /// The response to `req` with `code` (RFC 7252 §5.2), the one way nsh
    /// builds responses: piggybacked on the ACK of a CON (same message ID),
    /// a NON with `own_message_id` for a NON (§4.4: a message ID belongs to
    /// its sender), no type or message ID over TCP; the request's token.
    pub fn response_to(req: &Message, code: Code, own_message_id: u16) -> Message {
        let (mtype, mid) = match req.mtype {
            _ if req.reliable => (Type::Confirmable, 0),
            Type::NonConfirmable => (Type::NonConfirmable, own_message_id),
            _ => (Type::Acknowledgement, req.message_id),
        };
        let mut r = Message::new(mtype, code, mid);
        r.token = req.token.clone();
        r.reliable = req.reliable;
        r
    }

    /// The type's name, or `None` for a message over TCP.
    pub fn type_name(&self) -> &'static str {
        if self.reliable {
            "None"
        } else {
            self.mtype.name()
        }
    }

    /// The message ID as text, or `None` for a message over TCP.
    pub fn message_id_text(&self) -> String {
        if self.reliable {
            "None".into()
        } else {
            self.message_id.to_string()
        }
    }

    /// Appends an option, keeping the options sorted by number (stable).
    pub fn add_option(&mut self, option: CoapOption) {
        let at = self.options.partition_point(|o| o.number <= option.number);
        self.options.insert(at, option);
    }

    /// Removes every instance of an option.
    pub fn remove_option(&mut self, number: OptionNumber) {
        self.options.retain(|o| o.number != number);
    }

    /// Replaces every instance of an option with one value.
    pub fn set_option(&mut self, option: CoapOption) {
        self.remove_option(option.number);
        self.add_option(option);
    }

    /// All values of an option, in order.
    pub fn option_values(&self, number: OptionNumber) -> impl Iterator<Item = &[u8]> {
        self.options
            .iter()
            .filter(move |o| o.number == number)
            .map(|o| o.value.as_slice())
    }

    /// The first value of an option.
    pub fn option(&self, number: OptionNumber) -> Option<&CoapOption> {
        self.options.iter().find(|o| o.number == number)
    }

    /// The first value of an option read as an unsigned integer.
    pub fn uint_option(&self, number: OptionNumber) -> Option<u64> {
        self.option(number).and_then(CoapOption::as_uint)
    }

    fn string_options(&self, number: OptionNumber) -> Vec<String> {
        self.option_values(number)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// Uri-Path segments.
    pub fn uri_path(&self) -> Vec<String> {
        self.string_options(OptionNumber::URI_PATH)
    }

    /// Uri-Query items.
    pub fn uri_query(&self) -> Vec<String> {
        self.string_options(OptionNumber::URI_QUERY)
    }

    /// Location-Path segments.
    pub fn location_path(&self) -> Vec<String> {
        self.string_options(OptionNumber::LOCATION_PATH)
    }

    /// `/a/b` from Uri-Path (empty string when there is none).
    pub fn path_string(&self) -> String {
        let mut path = String::new();
        for segment in self.option_values(OptionNumber::URI_PATH) {
            path.push('/');
            path.push_str(&String::from_utf8_lossy(segment));
        }
        path
    }

    /// `/a/b?q1&q2`: the path with the query, as summaries print it.
    pub fn uri_string(&self) -> String {
        let mut s = self.path_string();
        let q = self.uri_query();
        if !q.is_empty() {
            s.push('?');
            s.push_str(&q.join("&"));
        }
        s
    }

    /// `/rd/5` from Location-Path (empty string when there is none).
    pub fn location_string(&self) -> String {
        self.location_path()
            .iter()
            .map(|s| format!("/{s}"))
            .collect()
    }

    /// Sets Uri-Path from `/a/b` text (and Uri-Query from a `?x&y` tail).
    pub fn set_uri(&mut self, uri: &str) {
        self.remove_option(OptionNumber::URI_PATH);
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            self.add_option(CoapOption::new(OptionNumber::URI_PATH, seg.as_bytes()));
        }
        if let Some(q) = query {
            self.remove_option(OptionNumber::URI_QUERY);
            for item in q.split('&').filter(|s| !s.is_empty()) {
                self.add_option(CoapOption::new(OptionNumber::URI_QUERY, item.as_bytes()));
            }
        }
    }

    /// The Content-Format option.
    pub fn content_format(&self) -> Option<ContentFormat> {
        self.uint_option(OptionNumber::CONTENT_FORMAT)
            .and_then(|v| u16::try_from(v).ok())
            .map(ContentFormat)
    }

    /// All Accept options.
    pub fn accept(&self) -> Vec<ContentFormat> {
        self.accepts().collect()
    }

    /// The Accept options, in order, without collecting them.
    pub fn accepts(&self) -> impl Iterator<Item = ContentFormat> + '_ {
        self.options
            .iter()
            .filter(|o| o.number == OptionNumber::ACCEPT)
            .filter_map(|o| o.as_uint().and_then(|v| u16::try_from(v).ok()))
            .map(ContentFormat)
    }

    /// The Observe option value.
    pub fn observe(&self) -> Option<u32> {
        self.uint_option(OptionNumber::OBSERVE)
            .and_then(|v| u32::try_from(v).ok())
    }

    /// The Block1 option value.
    pub fn block1(&self) -> Option<BlockValue> {
        self.option(OptionNumber::BLOCK1)
            .and_then(|o| BlockValue::decode(&o.value))
    }

    /// The Block2 option value.
    pub fn block2(&self) -> Option<BlockValue> {
        self.option(OptionNumber::BLOCK2)
            .and_then(|o| BlockValue::decode(&o.value))
    }

    /// An Empty message: code 0.00, no token, options or payload.
    pub fn is_empty_message(&self) -> bool {
        self.code.is_empty()
            && self.token.is_empty()
            && self.options.is_empty()
            && self.payload.is_empty()
    }

    /// The packet block of `details` and `coap_decode` (reference §5.4):
    /// `version:` … `content: N bytes`, one field a line.
    pub fn render_packet(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("version: {}\n", self.version));
        s.push_str(&format!("type: {}\n", self.type_name()));
        s.push_str(&format!("code: {}\n", self.code));
        s.push_str(&format!("msg_id: {}\n", self.message_id_text()));
        s.push_str(&format!(
            "token: {} (length: {})\n",
            escaped::format_printable(&self.token),
            self.token.len()
        ));
        s.push_str("options:\n");
        if self.options.is_empty() {
            s.push_str("    \n");
        }
        for o in &self.options {
            let name = o
                .number
                .name()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            s.push_str(&format!(
                "    option {}{name}, content ({} bytes): {}\n",
                o.number.0,
                o.value.len(),
                o.render_value()
            ));
        }
        s.push_str(&format!("content: {} bytes\n", self.payload.len()));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_stay_sorted_and_stable() {
        let mut m = Message::new(Type::Confirmable, Code::GET, 1);
        m.set_uri("/3/0?a=1&b");
        m.add_option(CoapOption::uint(OptionNumber::ACCEPT, 11542));
        m.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
        let nums: Vec<u16> = m.options.iter().map(|o| o.number.0).collect();
        assert_eq!(nums, vec![6, 11, 11, 15, 15, 17]);
        assert_eq!(m.uri_string(), "/3/0?a=1&b");
        assert_eq!(m.accept(), vec![ContentFormat::LWM2M_TLV]);
        assert_eq!(m.observe(), Some(0));
    }

    #[test]
    fn parses_type_names() {
        assert_eq!(Type::parse("ACKNOWLEDGEMENT"), Some(Type::Acknowledgement));
        assert_eq!(Type::parse("non"), Some(Type::NonConfirmable));
        assert_eq!(Type::parse("3"), Some(Type::Reset));
        assert_eq!(Type::parse("x"), None);
    }
}
