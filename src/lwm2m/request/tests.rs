//! The builders against the manual's wire bytes and the original's messages.

use super::*;
use crate::coap::udp;
use crate::lwm2m::kind::{NoContext, classify};
use crate::lwm2m::summary::summary;

fn built(b: &dyn Build) -> Built {
    b.build().expect("builds")
}

fn err(b: &dyn Build) -> String {
    b.build().expect_err("fails").to_string()
}

fn opts(m: &Message) -> Vec<(u16, Vec<u8>)> {
    m.options
        .iter()
        .map(|o| (o.number.0, o.value.clone()))
        .collect()
}

/// The kind the builder claims is the kind classify finds.
fn consistent(b: &Built) {
    assert_eq!(classify(&b.message, &NoContext), b.kind, "{:?}", b.message);
}

#[test]
fn read_builds_get_with_accept_and_flags_missing_id_and_token() {
    let b = built(&Read {
        path: "/1/1".into(),
        accept: Some(ContentFormat::LWM2M_JSON),
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(b.message.code, Code::GET);
    assert_eq!(b.message.mtype, Type::Confirmable);
    assert!(b.needs_msg_id && b.needs_token);
    assert_eq!(
        summary(&b.message, b.kind),
        "Read /1/1: accept APPLICATION_LWM2M_JSON"
    );
    let b = built(&Read {
        path: "/1/1/3/1".into(),
        header: Header {
            msg_id: Some(4920),
            token: Some(b"NbwK\x18W\xc7\xcb".to_vec()),
            ..Default::default()
        },
        ..Default::default()
    });
    assert!(!b.needs_msg_id && !b.needs_token);
    // Manual §7.1.2.4.1: the wire bytes of `read /1/1/3/1`.
    let mut expected = vec![0x48, 0x01, 0x13, 0x38];
    expected.extend_from_slice(b"NbwK\x18W\xc7\xcb");
    expected.extend_from_slice(&[0xb1, b'1', 0x01, b'1', 0x01, b'3', 0x01, b'1']);
    assert_eq!(udp::encode(&b.message), expected);
}

#[test]
fn path_errors_use_the_originals_messages() {
    let read = |p: &str| {
        err(&Read {
            path: p.into(),
            ..Default::default()
        })
    };
    assert_eq!(read("0/3"), "not a valid CoAP path: 0/3");
    assert_eq!(read("/3/x"), "LWM2M path segment is not an integer: x");
    assert_eq!(read("/"), "this LWM2M path requires at least Object ID");
    assert_eq!(
        read("/1/2/3/4/5"),
        "LwM2M path must not have more than 4 numeric segments and 1 non-numeric prefix"
    );
    assert_eq!(read("/3/"), "LWM2M path segment is not an integer: ");
    assert_eq!(
        err(&Create {
            path: "/1/0".into(),
            ..Default::default()
        }),
        "not a LWM2M Object path: /1/0"
    );
    assert_eq!(
        err(&Execute {
            path: "/3/0".into(),
            ..Default::default()
        }),
        "not a LWM2M Resource path: /3/0"
    );
    assert_eq!(
        err(&Delete {
            path: "/3/0/1".into(),
            ..Default::default()
        }),
        "LWM2M Resource path is not applicable to a Delete: /3/0/1"
    );
    assert_eq!(
        err(&ErrorResponse {
            code: Code::CONTENT,
            ..Default::default()
        }),
        "Error responses must have code class 4 or 5"
    );
}

#[test]
fn prefixed_paths_and_query_tails_are_accepted() {
    let b = built(&Read {
        path: "/lwm2m/3/0?x=1".into(),
        ..Default::default()
    });
    assert_eq!(b.message.uri_string(), "/lwm2m/3/0?x=1");
}

#[test]
fn observe_sends_minimal_observe_and_attributes_in_order() {
    let b = built(&Observe {
        path: "/3/0/13".into(),
        accept: Some(ContentFormat::LWM2M_TLV),
        attributes: Attributes {
            pmax: Some(5),
            lt: Some(1.5),
            pmin: Some(1),
            st: Some(2.0),
            hqmax: Some(3),
            ..Default::default()
        },
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(
        b.message.uri_query(),
        vec!["lt=1.5", "st=2", "pmin=1", "pmax=5", "hqmax=3"]
    );
    assert_eq!(
        b.message
            .option(OptionNumber::OBSERVE)
            .map(|o| o.value.len()),
        Some(0)
    );
    assert_eq!(
        summary(&b.message, b.kind),
        "Observe /3/0/13?lt=1.5&st=2&pmin=1&pmax=5&hqmax=3: accept APPLICATION_LWM2M_TLV"
    );
    let cancel = built(&Observe {
        path: "/3/0/13".into(),
        observe: Some(1),
        header: Header {
            token: Some(vec![1]),
            ..Default::default()
        },
        ..Default::default()
    });
    assert_eq!(
        summary(&cancel.message, cancel.kind),
        "Cancel Observation /3/0/13"
    );
    let big = built(&Observe {
        path: "/3".into(),
        observe: Some(70000),
        ..Default::default()
    });
    assert_eq!(big.message.observe(), Some(70000));
}

#[test]
fn discover_adds_accept_link_format_and_depth() {
    let b = built(&Discover {
        path: "/".into(),
        depth: Some(1),
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(b.message.accept(), vec![ContentFormat::LINK_FORMAT]);
    assert_eq!(summary(&b.message, b.kind), "Discover ?depth=1");
    let b = built(&Discover {
        path: "/3".into(),
        ..Default::default()
    });
    assert_eq!(summary(&b.message, b.kind), "Discover /3");
}

#[test]
fn write_defaults_to_text_plain_put_and_update_posts() {
    let b = built(&Write {
        path: "/1/1/1".into(),
        content: b"60".to_vec(),
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(b.message.code, Code::PUT);
    assert_eq!(b.message.content_format(), Some(ContentFormat::TEXT_PLAIN));
    assert_eq!(
        summary(&b.message, b.kind),
        "Write /1/1/1: TEXT_PLAIN, 2 bytes"
    );
    let b = built(&Write {
        path: "/1/1".into(),
        content: vec![0xc1, 1, 60],
        format: Some(ContentFormat::LWM2M_TLV),
        update: true,
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(
        summary(&b.message, b.kind),
        "Write (update) /1/1: APPLICATION_LWM2M_TLV, 3 bytes"
    );
}

#[test]
fn write_attributes_orders_path_query_then_typed_attributes() {
    let b = built(&WriteAttributes {
        path: "/3/0/13?dim=2".into(),
        attributes: Attributes {
            pmin: Some(1),
            pmax: Some(5),
            edge: Some(1),
            con: Some(0),
            hqmax: Some(4),
            ..Default::default()
        },
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(
        b.message.uri_query(),
        vec!["dim=2", "pmin=1", "pmax=5", "hqmax=4", "edge=1", "con=0"]
    );
    assert!(b.message.content_format().is_none() && b.message.payload.is_empty());
    let b = built(&WriteAttributes {
        path: "/3/0/13?dim=2".into(),
        query: Some(vec!["pmin".into()]),
        ..Default::default()
    });
    assert_eq!(b.message.uri_query(), vec!["pmin"]);
    assert_eq!(
        summary(&b.message, b.kind),
        "Write Attributes /3/0/13?pmin: pmin"
    );
}

#[test]
fn execute_create_delete() {
    let b = built(&Execute {
        path: "/3/0/4".into(),
        content: b"0='abc',1".to_vec(),
        ..Default::default()
    });
    consistent(&b);
    assert!(b.message.content_format().is_none());
    let b = built(&Create {
        path: "/1".into(),
        content: vec![0x08, 0],
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(b.message.content_format(), Some(ContentFormat::LWM2M_TLV));
    let b = built(&Create {
        path: "/1".into(),
        format: Some(ContentFormat::SENML_CBOR),
        ..Default::default()
    });
    consistent(&b);
    for p in ["/", "/1", "/1/0"] {
        let b = built(&Delete {
            path: p.into(),
            ..Default::default()
        });
        consistent(&b);
    }
}

#[test]
fn read_composite_encodes_a_senml_cbor_path_list() {
    let b = built(&ReadComposite {
        paths: vec!["/3/0/0".into(), "/1/1".into()],
        accept: Some(ContentFormat::SENML_CBOR),
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(
        b.message.payload,
        vec![
            0x82, 0xa1, 0x00, 0x66, b'/', b'3', b'/', b'0', b'/', b'0', 0xa1, 0x00, 0x64, b'/',
            b'1', b'/', b'1'
        ]
    );
    assert_eq!(b.message.content_format(), Some(ContentFormat::SENML_CBOR));
    assert!(b.message.uri_path().is_empty());
    assert_eq!(
        summary(&b.message, b.kind),
        "Read-Composite /3/0/0, /1/1: accept APPLICATION_LWM2M_SENML_CBOR"
    );
    let b = built(&ObserveComposite {
        paths: vec!["/3/0".into()],
        attributes: Attributes {
            pmin: Some(2),
            ..Default::default()
        },
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(summary(&b.message, b.kind), "Observe-Composite /3/0");
    assert_eq!(b.message.uri_query(), vec!["pmin=2"]);
}

#[test]
fn write_composite_and_coap_get() {
    let b = built(&WriteComposite {
        content: vec![0x80],
        format: ContentFormat::SENML_CBOR,
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(b.message.code, Code::IPATCH);
    let b = built(&CoapGet {
        path: "/fw/image.bin".into(),
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(
        err(&CoapGet {
            path: "fw".into(),
            ..Default::default()
        }),
        "not a valid CoAP path: fw"
    );
}

#[test]
fn client_role_requests() {
    let b = built(&Register {
        path: "/rd?lwm2m=1.1&ep=my_endpoint&lt=86400".into(),
        content: b"</1/1>,</2>".to_vec(),
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(b.message.content_format(), Some(ContentFormat::LINK_FORMAT));
    assert_eq!(
        b.message.uri_query(),
        vec!["lwm2m=1.1", "ep=my_endpoint", "lt=86400"]
    );
    let b = built(&Update {
        path: "/rd/demo".into(),
        ..Default::default()
    });
    consistent(&b);
    assert!(b.message.content_format().is_none());
    assert_eq!(summary(&b.message, b.kind), "Update /rd/demo: ");
    let b = built(&Update {
        path: "/rd/demo".into(),
        content: b"</1/0>".to_vec(),
        ..Default::default()
    });
    assert_eq!(b.message.content_format(), Some(ContentFormat::LINK_FORMAT));
    let b = built(&Deregister {
        path: "/rd/demo".into(),
        ..Default::default()
    });
    consistent(&b);
    let b = built(&RequestBootstrap {
        endpoint_name: "dev".into(),
        preferred_content_format: Some(112),
        uri_query: Some(vec!["x=y".into()]),
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(b.message.uri_string(), "/bs?x=y&ep=dev&pct=112");
    assert_eq!(
        err(&RequestBootstrap {
            endpoint_name: "dev".into(),
            uri_path: "x".into(),
            ..Default::default()
        }),
        "not a valid CoAP path: x/bs"
    );
    let b = built(&BootstrapPackRequest {
        endpoint_name: "dev".into(),
        accept: Some(ContentFormat::SENML_CBOR),
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(b.message.uri_string(), "/bspack?ep=dev");
    let b = built(&Send {
        path: Some("/dp?ignored".into()),
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(b.message.uri_string(), "/dp");
    assert_eq!(b.message.content_format(), Some(ContentFormat::SENML_CBOR));
    let b = built(&BootstrapFinish::default());
    consistent(&b);
    assert_eq!(summary(&b.message, b.kind), "Bootstrap Finish /bs: ");
    for b in [
        built(&EstCoapsSimpleEnroll::default()),
        built(&EstCoapsSimpleReenroll::default()),
        built(&EstCoapsCaCerts::default()),
    ] {
        consistent(&b);
    }
}

#[test]
fn responses_and_empty_messages() {
    let b = built(&Content {
        header: Header {
            msg_id: Some(7),
            token: Some(vec![1]),
            ..Default::default()
        },
        content: b"x".to_vec(),
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(b.message.mtype, Type::Acknowledgement);
    assert!(b.message.content_format().is_none());
    let b = built(&Notify {
        header: Header {
            token: Some(vec![1]),
            ..Default::default()
        },
        observe: Some(5),
        format: Some(ContentFormat::LWM2M_TLV),
        ..Default::default()
    });
    consistent(&b);
    assert!(b.needs_msg_id && !b.needs_token);
    assert_eq!(b.message.mtype, Type::NonConfirmable);
    let b = built(&Created(LocationResponse {
        header: Header {
            msg_id: Some(1),
            token: Some(vec![]),
            ..Default::default()
        },
        location: Some("/rd/demo".into()),
        ..Default::default()
    }));
    consistent(&b);
    assert_eq!(summary(&b.message, b.kind), "Created /rd/demo");
    let b = built(&Deleted::default());
    consistent(&b);
    assert!(b.needs_msg_id && b.needs_token);
    let b = built(&Changed::default());
    assert_eq!(summary(&b.message, b.kind), "Changed (no location path)");
    let b = built(&ErrorResponse {
        code: Code::NOT_FOUND,
        ..Default::default()
    });
    consistent(&b);
    assert_eq!(
        summary(&b.message, b.kind),
        "4.04 (RES_NOT_FOUND): (no details available)"
    );
    let b = built(&Continue::default());
    consistent(&b);
    let b = built(&Empty::default());
    consistent(&b);
    assert!(b.needs_msg_id && !b.needs_token);
    assert_eq!(udp::encode(&b.message), vec![0x60, 0, 0, 0]);
    let ping = built(&Empty {
        r#type: Some(Type::Confirmable),
        msg_id: Some(1),
    });
    consistent(&ping);
    let b = built(&Reset { msg_id: Some(4922) });
    consistent(&b);
    assert_eq!(summary(&b.message, b.kind), "Reset, msg_id = 4922");
}

#[test]
fn user_options_are_merged_by_number() {
    let b = built(&Read {
        path: "/5/0/1".into(),
        header: Header {
            options: vec![
                CoapOption::new(
                    OptionNumber::BLOCK2,
                    crate::coap::BlockValue::new(1, false, 1024)
                        .expect("valid")
                        .encode(),
                ),
                CoapOption::uint(OptionNumber::OBSERVE, 0),
            ],
            ..Default::default()
        },
        ..Default::default()
    });
    let numbers: Vec<u16> = opts(&b.message).iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, vec![6, 11, 11, 11, 23]);
}

#[test]
fn coap_builds_as_given_or_responds_to_a_request() {
    let plain = Coap::default();
    assert!(!plain.should_respond());
    let b = built(&plain);
    assert_eq!(b.message.code, Code::GET);
    assert!(b.message.token.is_empty() && !b.needs_token && b.needs_msg_id);

    let csm = Coap {
        code: Some(Code::CSM),
        header: Header {
            msg_id: Some(0),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(!csm.should_respond());

    let answer = Coap {
        code: Some(Code::CONTENT),
        content: b"abc".to_vec(),
        ..Default::default()
    };
    assert!(answer.should_respond());
    let mut request = Message::new(Type::Confirmable, Code::GET, 99);
    request.token = vec![7, 7];
    let r = answer.respond_to(&request);
    assert_eq!(r.message.mtype, Type::Acknowledgement);
    assert_eq!(r.message.message_id, 99);
    assert_eq!(r.message.token, vec![7, 7]);
    assert_eq!(
        r.message.content_format(),
        Some(ContentFormat::OCTET_STREAM)
    );
    assert!(!r.needs_msg_id && !r.needs_token);
    assert_eq!(r.kind, Kind::Content);

    let own_format = Coap {
        code: Some(Code::CONTENT),
        content: b"abc".to_vec(),
        header: Header {
            options: vec![CoapOption::uint(OptionNumber::CONTENT_FORMAT, 0)],
            ..Default::default()
        },
        ..Default::default()
    };
    let r = own_format.respond_to(&request);
    assert_eq!(
        r.message
            .options
            .iter()
            .filter(|o| o.number == OptionNumber::CONTENT_FORMAT)
            .count(),
        1
    );
    assert_eq!(r.message.content_format(), Some(ContentFormat::TEXT_PLAIN));

    request.mtype = Type::NonConfirmable;
    let r = answer.respond_to(&request);
    assert_eq!(r.message.mtype, Type::NonConfirmable);
    assert!(r.needs_msg_id);

    let no = Coap {
        respond: Some(false),
        ..answer
    };
    assert!(!no.should_respond());
}

proptest::proptest! {
    #[test]
    fn builders_never_panic_on_any_text(path in ".{0,40}", n in proptest::prelude::any::<i64>()) {
        let _ = Read { path: path.clone(), ..Default::default() }.build();
        let _ = Delete { path: path.clone(), ..Default::default() }.build();
        let _ = Execute { path: path.clone(), ..Default::default() }.build();
        let _ = Create { path: path.clone(), ..Default::default() }.build();
        let _ = Discover { path: path.clone(), depth: Some(n), ..Default::default() }.build();
        let _ = WriteAttributes { path: path.clone(), attributes: Attributes { pmin: Some(n), lt: Some(n as f64), ..Default::default() }, ..Default::default() }.build();
        let _ = Register { path: path.clone(), ..Default::default() }.build();
        let _ = RequestBootstrap { endpoint_name: path.clone(), uri_path: path.clone(), ..Default::default() }.build();
        let _ = Created(LocationResponse { location: Some(path.clone()), ..Default::default() }).build();
        let _ = ReadComposite { paths: vec![path], ..Default::default() }.build();
    }
}
