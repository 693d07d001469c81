//! Payload and format arguments as a user writes them: a map of path →
//! value wherever a command takes a payload (with its default format, and
//! `format:` choosing another), and every spelling of a content format in
//! `encode`, `decode` and `read … accept`.
//!
//! Each command runs in-process against a silent UDP peer (`Bench`); what
//! was sent is read back from the history and decoded.

use std::time::Duration;

use nsh::coap::{ContentFormat, Message};
use nsh::lwm2m::format;
use nsh::lwm2m::node::Path;
use nsh::lwm2m::objects::Registry;
use nsh::script::LineResult;
use nsh::server::Direction;

use crate::script_args::Bench;

/// Runs `line` (a request to the silent peer may time out: that is fine)
/// and returns the last message sent.
fn sent(b: &mut Bench, line: &str) -> Message {
    b.shell.ctx.server.reset_history();
    match b.eval(line, Duration::from_secs(5)) {
        LineResult::Value(_) => {}
        LineResult::Error(e) => assert!(
            e.contains("no response") || e.contains("timed out") || e.contains("timeout"),
            "{line}: {e}"
        ),
        other => panic!("{line}: {other:?}"),
    }
    let history = b.shell.ctx.server.history();
    let record = history
        .iter()
        .rev()
        .find(|r| r.direction == Direction::Sent)
        .unwrap_or_else(|| panic!("{line}: nothing sent"));
    record.message.clone().expect("a message nsh sent decodes")
}

/// The values of a sent payload, `path = value` sorted, decoded by its
/// content format (a request path is the base of formats without paths).
fn values(m: &Message) -> (ContentFormat, Vec<String>) {
    let cf = m.content_format().expect("a Content-Format");
    let uri = m.uri_string();
    let base = uri.parse::<Path>().ok();
    let d = format::decode(cf.0, &m.payload, base.as_ref(), &Registry::builtin())
        .unwrap_or_else(|e| panic!("{cf}: {e}"));
    let mut v: Vec<String> = d
        .payload
        .records()
        .unwrap_or_else(|| panic!("{cf} {uri}: no records in {:?}", d.payload))
        .iter()
        .map(|r| format!("{} = {}", r.path, r.value))
        .collect();
    v.sort();
    (cf, v)
}

fn expect_values(b: &mut Bench, line: &str, cf: ContentFormat, want: &[&str]) {
    let m = sent(b, line);
    let (got_cf, got) = values(&m);
    assert_eq!(got_cf, cf, "{line}");
    assert_eq!(got, want, "{line}");
}

const CALM: &str = "timeout_s: 0.05";

#[test]
fn write_composite_takes_a_map_in_senml_cbor_or_the_format_given() {
    let mut b = Bench::new();
    let map = r#"#{"/1/1/1": 250, "/3/0/14": "+02:00"}"#;
    let want = ["/1/1/1 = 250", "/3/0/14 = \"+02:00\""];
    let cases = [
        (format!("write_composite({map})"), ContentFormat::SENML_CBOR),
        (
            format!("write_composite({map}, #{{{CALM}}})"),
            ContentFormat::SENML_CBOR,
        ),
        (
            format!(r#"write_composite({map}, #{{format: "senml_json", {CALM}}})"#),
            ContentFormat::SENML_JSON,
        ),
        (
            format!(r#"write_composite({map}, "lwm2m_cbor", #{{{CALM}}})"#),
            ContentFormat::LWM2M_CBOR,
        ),
    ];
    for (line, cf) in cases {
        b.shell.eval_line("set timeout=0.05");
        expect_values(&mut b, &line, cf, &want);
    }
}

#[test]
fn write_composite_bytes_default_to_senml_cbor() {
    let mut b = Bench::new();
    b.shell.eval_line("set timeout=0.05");
    let m = sent(
        &mut b,
        r#"write_composite("\x81\xa2\x00\x66/1/1/1\x02\x18\x3c")"#,
    );
    assert_eq!(m.content_format(), Some(ContentFormat::SENML_CBOR));
    let m = sent(
        &mut b,
        r"write_composite \x81\xa2\x00\x66/1/1/1\x02\x18\x3c senml+cbor",
    );
    assert_eq!(m.content_format(), Some(ContentFormat::SENML_CBOR));
}

#[test]
fn write_create_and_bootstrap_writes_take_a_map_in_tlv_or_the_format_given() {
    let mut b = Bench::new();
    b.shell.eval_line("set timeout=0.05");
    expect_values(
        &mut b,
        r#"write("/3/0", #{"/3/0/14": "+02:00", "/3/0/15": "Europe/Paris"})"#,
        ContentFormat::LWM2M_TLV,
        &["/3/0/14 = \"+02:00\"", "/3/0/15 = \"Europe/Paris\""],
    );
    expect_values(
        &mut b,
        r#"write("/3/0", #{"/3/0/14": "+02:00"}, #{format: "SENML-CBOR", update: true})"#,
        ContentFormat::SENML_CBOR,
        &["/3/0/14 = \"+02:00\""],
    );
    expect_values(
        &mut b,
        r#"write("/1/1/1", #{"/1/1/1": 60}, #{format: "text"})"#,
        ContentFormat::TEXT_PLAIN,
        &["/1/1/1 = 60"],
    );
    expect_values(
        &mut b,
        r#"create("/1", #{"/1/2/0": 2, "/1/2/1": 300})"#,
        ContentFormat::LWM2M_TLV,
        &["/1/2/0 = 2", "/1/2/1 = 300"],
    );
    expect_values(
        &mut b,
        r#"create("/1", #{"/1/2/0": 2, "/1/2/1": 300}, #{format: "application/senml+json"})"#,
        ContentFormat::SENML_JSON,
        &["/1/2/0 = 2", "/1/2/1 = 300"],
    );
    // Bootstrap-Writes: a Security instance to the Object (with its
    // instance wrapper), a Server instance to the instance.
    let m = sent(
        &mut b,
        r#"write("/0", #{"/0/1/0": "coap://127.0.0.1:5683", "/0/1/1": false, "/0/1/2": 3})"#,
    );
    assert_eq!(
        m.payload[0] >> 6,
        0,
        "an Object Instance TLV first: {:02x?}",
        m.payload
    );
    let (cf, v) = values(&m);
    assert_eq!(cf, ContentFormat::LWM2M_TLV);
    assert_eq!(
        v,
        [
            "/0/1/0 = \"coap://127.0.0.1:5683\"",
            "/0/1/1 = false",
            "/0/1/2 = 3"
        ]
    );
    expect_values(
        &mut b,
        r#"write("/1/0", #{"/1/0/0": 1, "/1/0/1": 86400, "/1/0/7": "U"})"#,
        ContentFormat::LWM2M_TLV,
        &["/1/0/0 = 1", "/1/0/1 = 86400", "/1/0/7 = \"U\""],
    );
}

#[test]
fn send_notify_and_content_take_a_map() {
    let mut b = Bench::new();
    b.shell.eval_line("set timeout=0.05");
    let map = r#"#{"/3/0/0": "nsh", "/3/0/9": 87}"#;
    let want = ["/3/0/0 = \"nsh\"", "/3/0/9 = 87"];
    expect_values(
        &mut b,
        &format!("send({map})"),
        ContentFormat::SENML_CBOR,
        &want,
    );
    expect_values(
        &mut b,
        &format!(r#"send({map}, #{{format: "senml_json"}})"#),
        ContentFormat::SENML_JSON,
        &want,
    );
    expect_values(
        &mut b,
        &format!(r#"send(#{{content: {map}, format: 11543}})"#),
        ContentFormat::LWM2M_JSON,
        &want,
    );
    expect_values(
        &mut b,
        &format!(r#"notify("\x01\x02", {map}, #{{format: "SENML_CBOR"}})"#),
        ContentFormat::SENML_CBOR,
        &want,
    );
    expect_values(
        &mut b,
        &format!(r#"notify("\x01\x02", {map}, "lwm2m-json")"#),
        ContentFormat::LWM2M_JSON,
        &want,
    );
    expect_values(
        &mut b,
        &format!(r#"content(7, "\x01\x02", {map}, #{{format: "senml+cbor"}})"#),
        ContentFormat::SENML_CBOR,
        &want,
    );
    // The defaults where a map is one Object Instance: TLV.
    let m = sent(&mut b, &format!(r#"notify("\x01\x02", {map})"#));
    assert_eq!(m.content_format(), Some(ContentFormat::LWM2M_TLV));
    let m = sent(&mut b, &format!(r#"content(7, "\x01\x02", {map})"#));
    assert_eq!(m.content_format(), Some(ContentFormat::LWM2M_TLV));
}

#[test]
fn read_accepts_every_spelling_of_a_format() {
    let mut b = Bench::new();
    b.shell.eval_line("set timeout=0.05");
    for (spelling, cf) in [
        ("lwm2m_cbor", ContentFormat::LWM2M_CBOR),
        ("LWM2M-CBOR", ContentFormat::LWM2M_CBOR),
        ("application/vnd.oma.lwm2m+cbor", ContentFormat::LWM2M_CBOR),
        ("senml_cbor", ContentFormat::SENML_CBOR),
        ("application/senml+json", ContentFormat::SENML_JSON),
        ("APPLICATION_LWM2M_TLV", ContentFormat::LWM2M_TLV),
        ("lwm2m_tlv", ContentFormat::LWM2M_TLV),
        ("text/plain", ContentFormat::TEXT_PLAIN),
        ("11543", ContentFormat::LWM2M_JSON),
    ] {
        let m = sent(
            &mut b,
            &format!(r#"read("/3/0", #{{accept: "{spelling}"}})"#),
        );
        assert_eq!(m.accept(), vec![cf], "{spelling}");
    }
    let m = sent(&mut b, "read /3/0 lwm2m_cbor");
    assert_eq!(m.accept(), vec![ContentFormat::LWM2M_CBOR]);
    let m = sent(&mut b, r#"read("/3/0", #{accept: 112})"#);
    assert_eq!(m.accept(), vec![ContentFormat::SENML_CBOR]);
}

#[test]
fn encode_and_decode_accept_every_spelling_and_list_the_names_when_unknown() {
    let mut b = Bench::new();
    let script = r#"
        let m = #{"/3/0/0": "nsh", "/3/0/9": 87};
        for f in ["senml_cbor", "senml-cbor", "SENML_CBOR", "senml+cbor", "112",
                  "application/senml+cbor", "APPLICATION_LWM2M_SENML_CBOR"] {
            assert_eq(encode(f, m), encode(112, m), f);
            assert_eq(decode(f, encode(f, m)), m, f);
        }
        for f in ["lwm2m_cbor", "lwm2m_json", "senml_json", "json", "senml-json"] {
            assert_eq(decode(f, encode(f, m)), m, f);
        }
        assert_eq(decode("tlv", encode("lwm2m_tlv", m), "/3/0"), m);
        assert_eq(decode(11542, encode(11542, m), "/3/0"), m);
        assert_eq(decode(112, encode("senml_cbor", m)), m);
        "done"
    "#;
    match b.eval(script, Duration::from_secs(5)) {
        LineResult::Value(v) => assert_eq!(v.to_string(), "done"),
        other => panic!("{other:?}"),
    }
    for line in [
        r#"encode("senml", #{"/3/0/0": 1})"#,
        r#"decode("nope", blob())"#,
        r#"read("/3/0", #{accept: "nope"})"#,
        r#"write_composite(#{"/3/0/0": 1}, #{format: "nope"})"#,
    ] {
        match b.eval(line, Duration::from_secs(5)) {
            LineResult::Error(e) => {
                for name in [
                    "unknown content format",
                    "APPLICATION_LWM2M_SENML_CBOR",
                    "senml_cbor",
                    "lwm2m_cbor",
                    "text/plain",
                    "11542",
                ] {
                    assert!(e.contains(name), "{line}: `{e}` lacks {name}");
                }
            }
            other => panic!("{line}: {other:?}"),
        }
    }
}

#[test]
fn a_map_where_only_bytes_are_taken_is_an_error_not_text() {
    let mut b = Bench::new();
    b.shell.eval_line("set timeout=0.05");
    for line in [
        r#"execute("/3/0/4", #{"/3/0/4": 1})"#,
        r#"register("/rd", #{content: #{"/3/0/0": 1}})"#,
        r#"udp(#{"/3/0/0": 1})"#,
    ] {
        match b.eval(line, Duration::from_secs(5)) {
            LineResult::Error(e) => {
                assert!(e.contains("`content`") && e.contains("map"), "{line}: {e}")
            }
            other => panic!("{line}: {other:?}"),
        }
    }
}
