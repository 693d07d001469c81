//! One-line summaries of messages, in the original's shapes (reference §5.3):
//! what follows `-> ` and `<- ` on the console.
//!
//! Pure and total: every message of every kind gets a line, whatever its
//! options and payload hold. Differences from the original, on purpose: a
//! received Read-Composite shows the paths found in its payload (the original
//! crashed), and Observe-Composite says so instead of reusing the
//! Read-Composite text. Reads, GETs, Writes, Content and notifications
//! that carry a block option name their block (`Read /5/0/0 (block 3)`,
//! `Content (…; 1024 bytes) (block 3, more)`, and a BERT block over TCP
//! `(block 63, more, BERT)`), so the lines of a block-wise transfer are
//! told apart.

use crate::coap::{BlockValue, Code, ContentFormat, Message, OptionNumber, escaped};

use super::kind::Kind;

/// The one-line summary of `msg` read as `kind`.
pub fn summary(msg: &Message, kind: Kind) -> String {
    let uri = msg.uri_string();
    let cs = escaped::content_summary(&msg.payload);
    match kind {
        Kind::Register => format!("Register {uri}: {cs}"),
        Kind::Update => format!("Update {uri}: {cs}"),
        Kind::Deregister => format!("De-register {uri}"),
        Kind::RequestBootstrap => format!("Request Bootstrap {uri}: {cs}"),
        Kind::BootstrapFinish => format!("Bootstrap Finish {uri}: {cs}"),
        Kind::BootstrapPackRequest => {
            format!("Bootstrap-Pack-Request {uri}: {cs}{}", accept_suffix(msg))
        }
        Kind::EstCoapsSimpleEnroll => format!("EST-coaps Simple Enroll {uri}: {cs}"),
        Kind::EstCoapsSimpleReenroll => format!("EST-coaps Simple Re-enroll {uri}: {cs}"),
        Kind::EstCoapsCaCerts => format!("EST-coaps CA Certs {uri}: {cs}"),
        Kind::Send => format!("Send {uri}: {cs}"),
        Kind::CoapGet => format!("GET {uri}{}{}", accept_suffix(msg), block_suffix(msg)),
        Kind::Read => format!("Read {uri}{}{}", accept_suffix(msg), block_suffix(msg)),
        Kind::Observe => observe_summary(msg, &uri),
        Kind::Discover => format!("Discover {uri}"),
        Kind::ReadComposite => format!(
            "Read-Composite {}{}",
            composite_target(msg),
            accept_suffix(msg)
        ),
        Kind::ObserveComposite => observe_composite_summary(msg),
        Kind::Write => format!(
            "Write{} {uri}: {}, {} bytes{}",
            if msg.code == Code::POST {
                " (update)"
            } else {
                ""
            },
            format_names(msg),
            msg.payload.len(),
            block_suffix(msg)
        ),
        Kind::WriteComposite => format!(
            "Write Composite {uri}: {}, {} bytes",
            format_names(msg),
            msg.payload.len()
        ),
        Kind::WriteAttributes => {
            format!("Write Attributes {uri}: {}", msg.uri_query().join(", "))
        }
        Kind::Execute => format!("Execute {uri}: {cs}"),
        Kind::Create => format!("Create {uri}: {cs}"),
        Kind::Delete => format!("Delete {uri}"),
        Kind::Content => format!("Content {}{}", content_part(msg), block_suffix(msg)),
        Kind::Notify => {
            let seq: Vec<String> = msg
                .options
                .iter()
                .filter(|o| o.number == OptionNumber::OBSERVE)
                .map(|o| match o.as_uint() {
                    Some(v) => v.to_string(),
                    None => escaped::format_printable(&o.value),
                })
                .collect();
            format!(
                "Notify ({}, seq {}, token {}) {}{}",
                msg.type_name(),
                seq.join("/"),
                escaped::format_hex(&msg.token),
                content_part(msg),
                block_suffix(msg)
            )
        }
        Kind::Created => format!("Created {}", location_or(msg, "(no location-path)")),
        Kind::Deleted => format!("Deleted {}", location_or(msg, "(no location-path)")),
        Kind::Changed => format!("Changed {}", location_or(msg, "(no location path)")),
        Kind::ErrorResponse => {
            if msg.payload.is_empty() {
                format!("{}: (no details available)", msg.code)
            } else {
                format!("{}: {cs}", msg.code)
            }
        }
        Kind::Empty => format!(
            "Empty {}, msg_id = {}",
            msg.type_name(),
            msg.message_id_text()
        ),
        Kind::Reset => format!("Reset, msg_id = {}", msg.message_id_text()),
        Kind::Continue => format!(
            "Continue, msg_id = {}, token = {}",
            msg.message_id_text(),
            python_bytes_repr(&msg.token)
        ),
        Kind::Coap => generic_summary(msg),
    }
}

/// The generic summary every message has:
/// `2.05 (RES_CONTENT), ACKNOWLEDGEMENT, id=4920, token=b'..'` plus Block1 and
/// Block2 when present; a signaling message over TCP (RFC 8323 §5) with its
/// options by name and its diagnostic payload.
pub fn generic_summary(msg: &Message) -> String {
    let mut s = format!(
        "{}, {}, id={}, token={}",
        msg.code,
        msg.type_name(),
        msg.message_id_text(),
        python_bytes_repr(&msg.token)
    );
    if msg.code.class() == 7 && msg.reliable {
        s.push_str(&crate::coap::tcp::signaling_summary(msg));
        return s;
    }
    for (number, name) in [
        (OptionNumber::BLOCK1, "BLOCK1"),
        (OptionNumber::BLOCK2, "BLOCK2"),
    ] {
        if let Some(o) = msg.option(number) {
            let value = match BlockValue::decode(&o.value) {
                Some(b) => b.to_string(),
                None => escaped::format_printable(&o.value),
            };
            s.push_str(&format!(", coap.Option.{name}({value})"));
        }
    }
    s
}

/// The paths a Read-Composite or Observe-Composite asks for, from its SenML
/// CBOR (112) or SenML JSON (110) payload: base name joined with each name.
/// `None` when the payload is not such a list.
pub fn composite_paths(msg: &Message) -> Option<Vec<String>> {
    let format = msg.content_format().unwrap_or(ContentFormat::SENML_CBOR);
    match format {
        ContentFormat::SENML_CBOR | ContentFormat::SENML_ETCH_CBOR => {
            senml_cbor_paths(&msg.payload)
        }
        ContentFormat::SENML_JSON | ContentFormat::SENML_ETCH_JSON => {
            senml_json_paths(&msg.payload)
        }
        _ => None,
    }
}

fn senml_cbor_paths(payload: &[u8]) -> Option<Vec<String>> {
    use ciborium::Value;
    let value: Value = ciborium::de::from_reader(payload).ok()?;
    let Value::Array(records) = value else {
        return None;
    };
    let mut base = String::new();
    let mut paths = Vec::with_capacity(records.len());
    for record in records {
        let Value::Map(entries) = record else {
            return None;
        };
        let mut name = None;
        for (k, v) in entries {
            let label = match &k {
                Value::Integer(i) => i128::from(*i).to_string(),
                Value::Text(t) => t.clone(),
                _ => continue,
            };
            let Value::Text(text) = v else { continue };
            match label.as_str() {
                "-2" | "bn" => base = text,
                "0" | "n" => name = Some(text),
                _ => {}
            }
        }
        paths.push(format!("{base}{}", name.unwrap_or_default()));
    }
    Some(paths)
}

fn senml_json_paths(payload: &[u8]) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let records = value.as_array()?;
    let mut base = String::new();
    let mut paths = Vec::with_capacity(records.len());
    for record in records {
        let record = record.as_object()?;
        if let Some(bn) = record.get("bn").and_then(|v| v.as_str()) {
            base = bn.to_string();
        }
        let name = record.get("n").and_then(|v| v.as_str()).unwrap_or("");
        paths.push(format!("{base}{name}"));
    }
    Some(paths)
}

/// `/3/0/0, /1/1`, or the payload's size and format when it is not a path list.
fn composite_target(msg: &Message) -> String {
    match composite_paths(msg) {
        Some(paths) => paths.join(", "),
        None if msg.payload.is_empty() => String::new(),
        None => format!(
            "({}; {} bytes, not a path list)",
            format_names(msg),
            msg.payload.len()
        ),
    }
}

fn observe_values(msg: &Message) -> Vec<Option<u64>> {
    msg.options
        .iter()
        .filter(|o| o.number == OptionNumber::OBSERVE)
        .map(|o| o.as_uint())
        .collect()
}

fn observe_summary(msg: &Message, uri: &str) -> String {
    let accept = accept_suffix(msg);
    match observe_values(msg).as_slice() {
        [] | [Some(0)] => format!("Observe {uri}{accept}"),
        [Some(1)] => format!("Cancel Observation {uri}{accept}"),
        [Some(v)] => format!("Observe {uri} (invalid Observe value: {v}){accept}"),
        [None] => format!("Observe {uri} (invalid Observe value){accept}"),
        _ => format!("Observe {uri} (multiple Observe options){accept}"),
    }
}

fn observe_composite_summary(msg: &Message) -> String {
    let target = composite_target(msg);
    let accept = accept_suffix(msg);
    match observe_values(msg).as_slice() {
        [] | [Some(0)] => format!("Observe-Composite {target}{accept}"),
        [Some(1)] => format!("Cancel Observation-Composite {target}{accept}"),
        [Some(v)] => format!("Observe-Composite {target} (invalid Observe value: {v}){accept}"),
        [None] => format!("Observe-Composite {target} (invalid Observe value){accept}"),
        _ => format!("Observe-Composite {target} (multiple Observe options){accept}"),
    }
}

/// `: accept NAME[, NAME]`, or nothing without Accept options.
/// The block a block-wise message carries: ` (block 3)` for a request
/// (its Block1, else its Block2), ` (block 3, more)` or ` (block 195,
/// last)` for a response's Block2, with `, BERT` for SZX 7 over TCP (RFC
/// 8323 §6, the number counting 1024-byte units); empty without one (or
/// with a value that does not decode).
fn block_suffix(msg: &Message) -> String {
    let bert = |b: BlockValue| {
        if msg.reliable && b.is_reserved_szx() {
            ", BERT"
        } else {
            ""
        }
    };
    if msg.code.is_request() {
        match msg.block1().or_else(|| msg.block2()) {
            Some(b) => format!(" (block {}{})", b.num, bert(b)),
            None => String::new(),
        }
    } else {
        match msg.block2() {
            Some(b) => format!(
                " (block {}, {}{})",
                b.num,
                if b.more { "more" } else { "last" },
                bert(b)
            ),
            None => String::new(),
        }
    }
}

fn accept_suffix(msg: &Message) -> String {
    let names: Vec<String> = msg
        .options
        .iter()
        .filter(|o| o.number == OptionNumber::ACCEPT)
        .map(|o| match o.as_uint().and_then(|v| u16::try_from(v).ok()) {
            Some(v) => ContentFormat(v).summary_name(),
            None => format!("Unknown format ({})", escaped::format_printable(&o.value)),
        })
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(": accept {}", names.join(", "))
    }
}

/// Every Content-Format option's name, comma-joined, as Write summaries show
/// them; `(no Content-Format)` when there is none.
fn format_names(msg: &Message) -> String {
    let names: Vec<String> = msg
        .options
        .iter()
        .filter(|o| o.number == OptionNumber::CONTENT_FORMAT)
        .map(|o| match o.as_uint().and_then(|v| u16::try_from(v).ok()) {
            Some(v) => ContentFormat(v).summary_name(),
            None => format!("Unknown format ({})", escaped::format_printable(&o.value)),
        })
        .collect();
    if names.is_empty() {
        "(no Content-Format)".to_string()
    } else {
        names.join(", ")
    }
}

/// The payload part of Content and Notify summaries: the content summary for
/// text (or no format), else `(11543 (APPLICATION_LWM2M_JSON); 193 bytes)`.
fn content_part(msg: &Message) -> String {
    match msg.option(OptionNumber::CONTENT_FORMAT) {
        None => escaped::content_summary(&msg.payload),
        Some(o) => match o.as_uint() {
            Some(0) => escaped::content_summary(&msg.payload),
            _ => format!("({}; {} bytes)", o.render_value(), msg.payload.len()),
        },
    }
}

fn location_or(msg: &Message, none: &str) -> String {
    let loc = msg.location_string();
    if loc.is_empty() {
        none.to_string()
    } else {
        loc
    }
}

/// A bytes literal exactly as Python's `repr(bytes)` writes it: single quotes
/// unless the bytes hold a `'` and no `"`.
pub fn python_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut s = String::with_capacity(bytes.len() + 3);
    s.push('b');
    s.push(quote as char);
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            _ if b == quote => {
                s.push('\\');
                s.push(b as char);
            }
            0x20..0x7f => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push(quote as char);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{CoapOption, Type};
    use crate::lwm2m::kind::testing::arb_message;
    use crate::lwm2m::kind::{Kind, NoContext, classify};
    use proptest::prelude::*;

    fn req(code: Code, uri: &str) -> Message {
        let mut m = Message::new(Type::Confirmable, code, 4920);
        m.token = b"NbwK\x18W\xc7\xcb".to_vec();
        m.set_uri(uri);
        m
    }

    fn opt(mut m: Message, number: OptionNumber, v: u64) -> Message {
        m.add_option(CoapOption::uint(number, v));
        m
    }

    fn auto(m: &Message) -> String {
        summary(m, classify(m, &NoContext))
    }

    #[test]
    fn read_with_accept_matches_the_manual() {
        let m = opt(req(Code::GET, "/1/1"), OptionNumber::ACCEPT, 11543);
        assert_eq!(auto(&m), "Read /1/1: accept APPLICATION_LWM2M_JSON");
        assert_eq!(auto(&req(Code::GET, "/1/1/3/1")), "Read /1/1/3/1");
    }

    #[test]
    fn content_shows_format_and_size_like_the_manual() {
        let mut m = Message::new(Type::Acknowledgement, Code::CONTENT, 4920);
        m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 11543));
        m.payload = vec![b'x'; 193];
        assert_eq!(
            auto(&m),
            "Content (11543 (APPLICATION_LWM2M_JSON); 193 bytes)"
        );
        m.options.clear();
        m.payload = b"hello".to_vec();
        assert_eq!(auto(&m), "Content hello");
        m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 9999));
        assert_eq!(auto(&m), "Content (9999; 5 bytes)");
    }

    #[test]
    fn register_summary_matches_the_docs() {
        let mut m = req(Code::POST, "/rd?lwm2m=1.1&ep=my_endpoint&lt=86400");
        m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 40));
        m.payload = b"</1/1>,</2>,</3/0>,</4/0>,</5>,</6>".to_vec();
        assert_eq!(
            auto(&m),
            "Register /rd?lwm2m=1.1&ep=my_endpoint&lt=86400: </1/1>,</2>,</3/0>,</4/0>,<..."
        );
    }

    #[test]
    fn response_summaries_match_the_original() {
        let mut created = Message::new(Type::Acknowledgement, Code::CREATED, 1);
        created.add_option(CoapOption::new(OptionNumber::LOCATION_PATH, "rd"));
        created.add_option(CoapOption::new(OptionNumber::LOCATION_PATH, "demo"));
        assert_eq!(auto(&created), "Created /rd/demo");
        let changed = Message::new(Type::Acknowledgement, Code::CHANGED, 1);
        assert_eq!(auto(&changed), "Changed (no location path)");
        let deleted = Message::new(Type::Acknowledgement, Code::DELETED, 1);
        assert_eq!(auto(&deleted), "Deleted (no location-path)");
        let created = Message::new(Type::Acknowledgement, Code::CREATED, 1);
        assert_eq!(auto(&created), "Created (no location-path)");
        let nf = Message::new(Type::Acknowledgement, Code::NOT_FOUND, 1);
        assert_eq!(auto(&nf), "4.04 (RES_NOT_FOUND): (no details available)");
        let mut bad = Message::new(Type::NonConfirmable, Code::BAD_REQUEST, 1);
        bad.payload = b"no such thing".to_vec();
        assert_eq!(auto(&bad), "4.00 (RES_BAD_REQUEST): no such thing");
    }

    #[test]
    fn empty_reset_continue_summaries() {
        let e = Message::new(Type::Acknowledgement, Code::EMPTY, 4922);
        assert_eq!(auto(&e), "Empty ACKNOWLEDGEMENT, msg_id = 4922");
        let r = Message::new(Type::Reset, Code::EMPTY, 4922);
        assert_eq!(auto(&r), "Reset, msg_id = 4922");
        let mut c = Message::new(Type::Acknowledgement, Code::CONTINUE, 7);
        c.token = vec![0x12, b'a'];
        assert_eq!(auto(&c), "Continue, msg_id = 7, token = b'\\x12a'");
    }

    #[test]
    fn block_wise_lines_name_their_block() {
        let mut get = Message::new(Type::Confirmable, Code::GET, 1);
        get.set_uri("/fw.bin");
        get.add_option(CoapOption::new(
            OptionNumber::BLOCK2,
            BlockValue::new(3, false, 1024).unwrap().encode(),
        ));
        assert_eq!(auto(&get), "GET /fw.bin (block 3)");
        let mut c = Message::new(Type::Acknowledgement, Code::CONTENT, 1);
        c.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 42));
        c.add_option(CoapOption::new(
            OptionNumber::BLOCK2,
            BlockValue::new(3, true, 1024).unwrap().encode(),
        ));
        c.payload = vec![0; 1024];
        assert_eq!(
            auto(&c),
            "Content (42 (APPLICATION_OCTET_STREAM); 1024 bytes) (block 3, more)"
        );
        c.set_option(CoapOption::new(
            OptionNumber::BLOCK2,
            BlockValue::new(195, false, 1024).unwrap().encode(),
        ));
        assert!(auto(&c).ends_with(" (block 195, last)"), "{}", auto(&c));
        let mut w = Message::new(Type::Confirmable, Code::PUT, 1);
        w.set_uri("/5/0/0");
        w.add_option(CoapOption::new(
            OptionNumber::BLOCK1,
            BlockValue::new(7, true, 512).unwrap().encode(),
        ));
        w.payload = vec![0; 512];
        assert!(auto(&w).ends_with(", 512 bytes (block 7)"), "{}", auto(&w));
    }

    #[test]
    fn a_bert_block_over_tcp_is_named_in_its_line() {
        // RFC 8323 §6: SZX 7 over TCP.
        let mut c = Message::new(Type::Confirmable, Code::CONTENT, 0);
        c.reliable = true;
        c.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 42));
        c.add_option(CoapOption::new(OptionNumber::BLOCK2, vec![0x03, 0xff]));
        c.payload = vec![0; 2048];
        assert!(
            auto(&c).ends_with(" (block 63, more, BERT)"),
            "{}",
            auto(&c)
        );
        let mut get = Message::new(Type::Confirmable, Code::GET, 0);
        get.reliable = true;
        get.set_uri("/fw.bin");
        get.add_option(CoapOption::new(OptionNumber::BLOCK2, vec![0x07, 0xe7]));
        assert_eq!(auto(&get), "GET /fw.bin (block 126, BERT)");
        // Over UDP, SZX 7 is no BERT.
        get.reliable = false;
        assert_eq!(auto(&get), "GET /fw.bin (block 126)");
    }

    #[test]
    fn notify_lists_type_sequence_and_hex_token() {
        let mut m = Message::new(Type::NonConfirmable, Code::CONTENT, 1);
        m.token = vec![0xab, 0x01];
        m.add_option(CoapOption::uint(OptionNumber::OBSERVE, 5));
        m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 11542));
        m.payload = vec![0xc1, 0x00, 0x01];
        assert_eq!(
            auto(&m),
            "Notify (NON_CONFIRMABLE, seq 5, token \\xab\\x01) (11542 (APPLICATION_LWM2M_TLV); 3 bytes)"
        );
    }

    #[test]
    fn generic_summary_has_code_type_id_token_and_blocks() {
        let mut m = Message::new(Type::Acknowledgement, Code::VALID, 4920);
        m.token = b"ab'".to_vec();
        assert_eq!(
            auto(&m),
            "2.03 (RES_VALID), ACKNOWLEDGEMENT, id=4920, token=b\"ab'\""
        );
        let mut m = Message::new(Type::Confirmable, Code::CSM, 0);
        m.add_option(CoapOption::new(
            OptionNumber::BLOCK2,
            BlockValue::new(1, true, 1024).unwrap().encode(),
        ));
        assert_eq!(
            auto(&m),
            "7.01 (SIGNALING_CSM), CONFIRMABLE, id=0, token=b'', \
             coap.Option.BLOCK2(seq_num=1, has_more=1, block_size=1024)"
        );
    }

    #[test]
    fn observe_and_cancel_summaries() {
        let o = opt(req(Code::GET, "/3/0/13"), OptionNumber::OBSERVE, 0);
        assert_eq!(auto(&o), "Observe /3/0/13");
        let o = opt(o, OptionNumber::ACCEPT, 11542);
        assert_eq!(auto(&o), "Observe /3/0/13: accept APPLICATION_LWM2M_TLV");
        let c = opt(req(Code::GET, "/3/0/13"), OptionNumber::OBSERVE, 1);
        assert_eq!(auto(&c), "Cancel Observation /3/0/13");
        let bad = opt(req(Code::GET, "/3/0/13"), OptionNumber::OBSERVE, 7);
        assert_eq!(auto(&bad), "Observe /3/0/13 (invalid Observe value: 7)");
        let two = opt(bad, OptionNumber::OBSERVE, 0);
        assert_eq!(auto(&two), "Observe /3/0/13 (multiple Observe options)");
    }

    #[test]
    fn write_discover_attributes_execute_create_delete() {
        let mut w = opt(req(Code::PUT, "/0"), OptionNumber::CONTENT_FORMAT, 11542);
        w.payload = vec![0; 58];
        assert_eq!(auto(&w), "Write /0: APPLICATION_LWM2M_TLV, 58 bytes");
        w.code = Code::POST;
        w.set_uri("/0/1");
        assert_eq!(
            auto(&w),
            "Write (update) /0/1: APPLICATION_LWM2M_TLV, 58 bytes"
        );
        let d = opt(req(Code::GET, "/3?depth=1"), OptionNumber::ACCEPT, 40);
        assert_eq!(auto(&d), "Discover /3?depth=1");
        let wa = req(Code::PUT, "/3/0/13?pmin=1&pmax=5");
        assert_eq!(
            auto(&wa),
            "Write Attributes /3/0/13?pmin=1&pmax=5: pmin=1, pmax=5"
        );
        let mut ex = req(Code::POST, "/3/0/4");
        ex.payload = b"0='abc',1".to_vec();
        assert_eq!(auto(&ex), "Execute /3/0/4: 0='abc',1");
        let cr = opt(req(Code::POST, "/1"), OptionNumber::CONTENT_FORMAT, 11542);
        assert_eq!(auto(&cr), "Create /1: ");
        assert_eq!(auto(&req(Code::DELETE, "/1/1")), "Delete /1/1");
        assert_eq!(auto(&req(Code::DELETE, "/rd/5")), "De-register /rd/5");
        let bf = req(Code::POST, "/bs");
        assert_eq!(auto(&bf), "Bootstrap Finish /bs: ");
        let mut wc = opt(req(Code::IPATCH, ""), OptionNumber::CONTENT_FORMAT, 112);
        wc.payload = vec![0x80];
        assert_eq!(
            auto(&wc),
            "Write Composite : APPLICATION_LWM2M_SENML_CBOR, 1 bytes"
        );
    }

    #[test]
    fn received_read_composite_shows_its_paths() {
        // [{0: "/3/0/0"}, {-2: "/1/1", 0: "/1"}]
        let mut m = opt(req(Code::FETCH, ""), OptionNumber::CONTENT_FORMAT, 112);
        m.payload = vec![
            0x82, 0xa1, 0x00, 0x66, b'/', b'3', b'/', b'0', b'/', b'0', 0xa2, 0x21, 0x64, b'/',
            b'1', b'/', b'1', 0x00, 0x62, b'/', b'1',
        ];
        let m = opt(m, OptionNumber::ACCEPT, 112);
        assert_eq!(
            auto(&m),
            "Read-Composite /3/0/0, /1/1/1: accept APPLICATION_LWM2M_SENML_CBOR"
        );
        let o = opt(m.clone(), OptionNumber::OBSERVE, 0);
        assert_eq!(
            auto(&o),
            "Observe-Composite /3/0/0, /1/1/1: accept APPLICATION_LWM2M_SENML_CBOR"
        );
        let mut junk = m;
        junk.payload = vec![0xff, 0x00];
        assert_eq!(
            auto(&junk),
            "Read-Composite (APPLICATION_LWM2M_SENML_CBOR; 2 bytes, not a path list): \
             accept APPLICATION_LWM2M_SENML_CBOR"
        );
    }

    #[test]
    fn senml_json_composite_paths() {
        let mut m = opt(req(Code::FETCH, ""), OptionNumber::CONTENT_FORMAT, 110);
        m.payload = br#"[{"bn":"/3/0","n":"/0"},{"n":"/1"}]"#.to_vec();
        assert_eq!(
            composite_paths(&m),
            Some(vec!["/3/0/0".to_string(), "/3/0/1".to_string()])
        );
    }

    #[test]
    fn client_side_request_summaries() {
        assert_eq!(
            auto(&req(Code::POST, "/bs?ep=x&pct=112")),
            "Request Bootstrap /bs?ep=x&pct=112: "
        );
        let bp = opt(req(Code::GET, "/bspack?ep=x"), OptionNumber::ACCEPT, 112);
        assert_eq!(
            auto(&bp),
            "Bootstrap-Pack-Request /bspack?ep=x: : accept APPLICATION_LWM2M_SENML_CBOR"
        );
        assert_eq!(
            auto(&req(Code::POST, "/est/sen")),
            "EST-coaps Simple Enroll /est/sen: "
        );
        assert_eq!(
            auto(&req(Code::GET, "/est/crts")),
            "EST-coaps CA Certs /est/crts: "
        );
        assert_eq!(auto(&req(Code::POST, "/dp")), "Send /dp: ");
        assert_eq!(auto(&req(Code::GET, "/fw.bin")), "GET /fw.bin");
        assert_eq!(auto(&req(Code::POST, "/rd/5")), "Update /rd/5: ");
    }

    #[test]
    fn python_repr_picks_quotes_like_python() {
        assert_eq!(python_bytes_repr(b""), "b''");
        assert_eq!(python_bytes_repr(b"a'b"), "b\"a'b\"");
        assert_eq!(python_bytes_repr(b"a'\"b"), "b'a\\'\"b'");
        assert_eq!(python_bytes_repr(&[0, b'\\', b'\n']), "b'\\x00\\\\\\n'");
    }

    proptest! {
        #[test]
        fn summary_never_panics_for_any_kind(m in arb_message(), k in 0usize..Kind::ALL.len()) {
            let _ = summary(&m, Kind::ALL[k]);
            let _ = summary(&m, classify(&m, &NoContext));
        }
    }

    #[test]
    fn hostile_cbor_lengths_do_not_allocate_or_panic() {
        let mut m = opt(req(Code::FETCH, ""), OptionNumber::CONTENT_FORMAT, 112);
        for payload in [
            vec![0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            vec![0x81, 0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            vec![0x81; 10_000],
            vec![0x9f; 10_000],
        ] {
            m.payload = payload;
            assert!(composite_paths(&m).is_none());
            let _ = auto(&m);
        }
    }

    proptest! {
        #[test]
        fn composite_summary_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..64), cf in prop_oneof![Just(110u64), Just(112)]) {
            let mut m = opt(req(Code::FETCH, ""), OptionNumber::CONTENT_FORMAT, cf);
            m.payload = payload;
            let _ = auto(&m);
        }
    }
}
