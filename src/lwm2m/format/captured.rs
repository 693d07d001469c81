//! Decoding payloads captured from real LwM2M clients (coap-node 0.2.5 +
//! smartobject 1.5.3, and wakatiwai via node-red-contrib-lwm2m 2.12.3).
//! A few payloads are inline with exact expectations, and every payload in
//! the capture directory `tests/fixtures/captured/` must decode without
//! error (the test fails, saying so, when the captures are missing).

use super::{Payload, cf, decode};
use crate::lwm2m::node::{Path, Value};
use crate::lwm2m::objects::Registry;

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

fn records(content_format: u16, hex_payload: &str, base: &str) -> Vec<(String, Value)> {
    let bytes = hex::decode(hex_payload).unwrap();
    let d = decode(content_format, &bytes, Some(&p(base)), &Registry::builtin()).unwrap();
    d.payload
        .records()
        .unwrap()
        .into_iter()
        .map(|r| (r.path.to_string(), r.value))
        .collect()
}

#[test]
fn decodes_coap_node_device_instance_tlv() {
    // coapnode-read-3-0-tlv.hex: GET /3/0 Accept 11542, wrapped in an
    // Object Instance element.
    let r = records(
        cf::TLV,
        "080072c800086e73682d74657374c8010e636f61706e6f64652d6d6f64656cc702434e2d30303031c503312e302e30c6045f657865635fc10601c2070ed8c10b00c40d6b06e66ac60e2b30303a3030c30f555443c11055c8110f6e7368207465737420646576696365c312312e30c513302e322e35",
        "/3/0",
    );
    assert_eq!(r[0], ("/3/0/0".into(), Value::String("nsh-test".into())));
    assert_eq!(
        r[5],
        ("/3/0/6".into(), Value::Integer(1)),
        "single-valued /3/0/6 as sent"
    );
    assert_eq!(r[6], ("/3/0/7".into(), Value::Integer(3800)));
    assert_eq!(r[8], ("/3/0/13".into(), Value::Time(0x6b06_e66a)));
}

#[test]
fn decodes_wakaama_temperature_instance_tlv() {
    // waka-read-3303-0-tlv.hex: GET /3303/0 Accept 11542, resource TLVs.
    let r = records(
        cf::TLV,
        "e415e141a00000e415e241c40000e4164441b00000e3164543656ce816760c6e73682d7772697461626c65",
        "/3303/0",
    );
    assert_eq!(r[0], ("/3303/0/5601".into(), Value::Float(20.0)));
    assert_eq!(r[2], ("/3303/0/5700".into(), Value::Float(22.0)));
    assert_eq!(r[3], ("/3303/0/5701".into(), Value::String("Cel".into())));
    assert_eq!(
        r[4],
        ("/3303/0/5750".into(), Value::String("nsh-writable".into()))
    );
}

#[test]
fn decodes_coap_node_lwm2m_json_without_trailing_slash_in_bn() {
    // coapnode-read-3-0-accept-11543.hex (start): `"bn":"/3/0"`, `"n":"0"`.
    let json = r#"{"bn":"/3/0","e":[{"n":"0","sv":"nsh-test"},{"n":"9","v":100}]}"#;
    let r = records(cf::LWM2M_JSON, &hex::encode(json), "/3/0");
    assert_eq!(r[0], ("/3/0/0".into(), Value::String("nsh-test".into())));
    assert_eq!(r[1], ("/3/0/9".into(), Value::Integer(100)));
    // coapnode-read-3-0-0-accept-11543.hex: `"bn":"/3/0/0"` with `"n":""`.
    let json = r#"{"bn":"/3/0/0","e":[{"n":"","sv":"nsh-test"}]}"#;
    let r = records(cf::LWM2M_JSON, &hex::encode(json), "/3/0/0");
    assert_eq!(r, [("/3/0/0".into(), Value::String("nsh-test".into()))]);
}

#[test]
fn decodes_register_link_formats() {
    // coapnode-register.hex and waka-register.hex payloads.
    for text in [
        "</>;ct=11543;hb,</1/0>,</3/0>,</4/0>,</3303/0>,</3303/1>",
        r#"</>;rt="oma.lwm2m",</1/0>,</2/0>,</3/0>,</3303/0>,</3303/1>"#,
    ] {
        let d = decode(cf::LINK_FORMAT, text.as_bytes(), None, &Registry::builtin()).unwrap();
        let Payload::Links(links) = &d.payload else {
            panic!()
        };
        assert_eq!(links.len(), 6);
        assert_eq!(super::link::encode(links), text);
    }
}

/// A CoAP message's (Uri-Path, Content-Format, payload), read just far
/// enough for these tests (RFC 7252 §3).
fn coap_parts(b: &[u8]) -> Option<(String, Option<u16>, Vec<u8>)> {
    let mut i = 4 + usize::from(b.first()? & 0x0f);
    let (mut number, mut path, mut cf) = (0u32, Vec::new(), None);
    let ext = |i: &mut usize, v: u32| -> Option<u32> {
        Some(match v {
            13 => {
                *i += 1;
                u32::from(*b.get(*i - 1)?) + 13
            }
            14 => {
                *i += 2;
                u32::from(u16::from_be_bytes([*b.get(*i - 2)?, *b.get(*i - 1)?])) + 269
            }
            v => v,
        })
    };
    while i < b.len() && b[i] != 0xff {
        let (d, l) = (u32::from(b[i] >> 4), u32::from(b[i] & 0x0f));
        i += 1;
        number += ext(&mut i, d)?;
        let len = ext(&mut i, l)? as usize;
        let value = b.get(i..i + len)?;
        i += len;
        match number {
            11 => path.push(String::from_utf8_lossy(value).into_owned()),
            12 => cf = Some(value.iter().fold(0u16, |a, &x| (a << 8) | u16::from(x))),
            _ => {}
        }
    }
    let payload = b.get(i + 1..).unwrap_or_default().to_vec();
    Some((format!("/{}", path.join("/")), cf, payload))
}

fn first_hex_line(file: &std::path::Path) -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())?;
    hex::decode(line.trim()).ok()
}

/// The captures, their README aside: (file name, datagram). Panics with
/// a clear message when the directory or a capture cannot be read, so a
/// checkout without them fails instead of passing with nothing checked.
fn captured_datagrams() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captured");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the captured fixtures are missing: cannot read {} ({e}); they are part of the \
             repository (restore them with `git checkout -- tests/fixtures/captured`)",
            dir.display()
        )
    });
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())))
        .map(|entry| entry.path())
        .filter(|file| file.extension().is_some_and(|x| x == "hex"))
        .map(|file| {
            let name = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let bytes = first_hex_line(&file)
                .unwrap_or_else(|| panic!("{}: no line of hex in it", file.display()));
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn decodes_every_captured_payload() {
    let captures = captured_datagrams();
    assert!(
        captures.len() >= 167,
        "only {} captured datagrams in tests/fixtures/captured (167 expected)",
        captures.len()
    );
    let by_name: std::collections::HashMap<&str, &[u8]> = captures
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let reg = Registry::builtin();
    let mut checked = 0;
    for (name, bytes) in &captures {
        let (uri, content_format, payload) = coap_parts(bytes)
            .unwrap_or_else(|| panic!("{name}: not a CoAP message: {}", hex::encode(bytes)));
        let Some(content_format) = content_format else {
            continue; // no payload format to check
        };
        if payload.is_empty() {
            continue;
        }
        // Responses take the base path from their request.
        let request = name.replace(".hex", "-request.hex");
        let base = match by_name.get(request.as_str()).and_then(|b| coap_parts(b)) {
            Some((req_uri, ..)) => req_uri,
            None => uri,
        };
        let base: Path = base.parse().unwrap_or(Path::ROOT);
        match decode(content_format, &payload, Some(&base), &reg) {
            Ok(d) => {
                assert!(!d.render(&reg).is_empty(), "{name}: renders as nothing");
                checked += 1;
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert!(
        checked >= 58,
        "only {checked} captured payloads had a content format to decode (58 expected)"
    );
}

#[test]
fn value_changes_between_notifications_decode() {
    // waka-observe-3303-0-5700-notify1/2.hex: 22.5 then 23.0.
    assert_eq!(
        records(cf::TLV, "e4164441b40000", "/3303/0/5700"),
        [("/3303/0/5700".into(), Value::Float(22.5))]
    );
    assert_eq!(
        records(cf::TLV, "e4164441b80000", "/3303/0/5700"),
        [("/3303/0/5700".into(), Value::Float(23.0))]
    );
}

#[test]
fn renders_a_captured_device_read_readably() {
    // The first resources of waka-read-3-0-tlv.hex, plus an unknown one.
    let bytes = hex::decode("c800086e73682d74657374c11055c8ff020001").unwrap();
    let d = decode(cf::TLV, &bytes, Some(&p("/3/0")), &Registry::builtin()).unwrap();
    assert_eq!(
        d.render(&Registry::builtin()),
        "/3/0/0 Manufacturer = \"nsh-test\"\n/3/0/16 Supported Binding and Modes = \"U\"\n/3/0/255 = 1 (type guessed)\n"
    );
}
