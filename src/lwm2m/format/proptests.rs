//! Property tests for every format: encode → decode gives the records (or
//! tree) back when the types are known from definitions, and decoding any
//! bytes — random, or a valid payload truncated or with a byte changed —
//! never panics.

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

use super::builder::TlvBuilder;
use super::{Payload, cf, decode, encode, link, senml, tlv};
use crate::lwm2m::node::{Node, Path, Record, ResourceType, Value, nodes_from_records};
use crate::lwm2m::objects::{ObjectDef, Operations, Registry, ResourceDef};

const KINDS: [ResourceType; 10] = [
    ResourceType::String,
    ResourceType::Integer,
    ResourceType::UnsignedInteger,
    ResourceType::Float,
    ResourceType::Boolean,
    ResourceType::Opaque,
    ResourceType::Time,
    ResourceType::ObjectLink,
    ResourceType::CoreLink,
    ResourceType::None,
];

/// Synthetic definitions: resource `r` of any object has type
/// `KINDS[r % 10]` and is multiple when `r >= 50`.
fn kind(rid: u16) -> ResourceType {
    KINDS[usize::from(rid) % KINDS.len()]
}

fn registry() -> Registry {
    let mut reg = Registry::empty();
    for oid in 0..4 {
        reg.insert(ObjectDef {
            id: 40000 + oid,
            name: format!("Test {oid}"),
            version: "1.0".into(),
            multiple: true,
            mandatory: false,
            resources: (0..100)
                .map(|rid| {
                    (
                        rid,
                        ResourceDef {
                            id: rid,
                            name: format!("R{rid}"),
                            operations: Operations::parse("RW").unwrap_or_default(),
                            multiple: rid >= 50,
                            mandatory: false,
                            kind: kind(rid),
                        },
                    )
                })
                .collect(),
        });
    }
    reg
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (-1000i32..1000).prop_map(f64::from),
        any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(f64::from),
    ]
}

fn value_of(kind: ResourceType) -> BoxedStrategy<Value> {
    match kind {
        ResourceType::String => ".{0,20}".prop_map(Value::String).boxed(),
        ResourceType::Integer => any::<i64>().prop_map(Value::Integer).boxed(),
        ResourceType::UnsignedInteger => any::<u64>().prop_map(Value::UnsignedInteger).boxed(),
        ResourceType::Float => finite_f64().prop_map(Value::Float).boxed(),
        ResourceType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        ResourceType::Opaque => vec(any::<u8>(), 0..20).prop_map(Value::Opaque).boxed(),
        ResourceType::Time => any::<i64>().prop_map(Value::Time).boxed(),
        ResourceType::ObjectLink => (any::<u16>(), any::<u16>())
            .prop_map(|(o, i)| Value::ObjectLink(o, i))
            .boxed(),
        ResourceType::CoreLink => "</[0-9]{1,3}>(;ver=1\\.[0-9])?"
            .prop_map(Value::CoreLink)
            .boxed(),
        ResourceType::None => Just(Value::None).boxed(),
    }
}

/// Paths of a valid tree: objects → instances → resources (multiple ones
/// with instances), in order.
fn tree_paths(max_objects: usize) -> impl Strategy<Value = Vec<Path>> {
    let resources = btree_map(0u16..100, btree_set(0u16..5, 1..3), 1..6);
    btree_map(
        40000u16..40004,
        btree_map(0u16..5, resources, 1..3),
        1..=max_objects,
    )
    .prop_map(|objects| {
        let mut paths = Vec::new();
        for (o, instances) in objects {
            for (i, resources) in instances {
                for (r, riids) in resources {
                    if r >= 50 {
                        paths.extend(riids.iter().filter_map(|ri| Path::new(&[o, i, r, *ri])));
                    } else {
                        paths.extend(Path::new(&[o, i, r]));
                    }
                }
            }
        }
        paths
    })
}

fn records(max_objects: usize, with_time: bool) -> impl Strategy<Value = Vec<Record>> {
    tree_paths(max_objects).prop_flat_map(move |paths| {
        paths
            .into_iter()
            .map(|path| {
                let rid = path.resource().unwrap_or(0);
                let time = if with_time {
                    proptest::option::of(finite_f64()).boxed()
                } else {
                    Just(None).boxed()
                };
                (value_of(kind(rid)), time).prop_map(move |(value, time)| Record {
                    path,
                    value,
                    time,
                    guessed: false,
                })
            })
            .collect::<Vec<_>>()
    })
}

fn single_record() -> impl Strategy<Value = Record> {
    (40000u16..40004, 0u16..3, 0u16..50).prop_flat_map(|(o, i, r)| {
        value_of(kind(r))
            .prop_map(move |v| Record::new(Path::new(&[o, i, r]).unwrap_or_default(), v))
    })
}

fn round_trip(content_format: u16, records: &[Record]) -> Vec<Record> {
    let reg = registry();
    let bytes = encode(content_format, &Payload::Records(records.to_vec())).unwrap();
    let base = records.first().map(|r| r.path);
    decode(content_format, &bytes, base.as_ref(), &reg)
        .unwrap()
        .payload
        .records()
        .unwrap()
}

const ALL_FORMATS: [u16; 15] = [
    cf::TEXT,
    cf::LINK_FORMAT,
    cf::OCTET_STREAM,
    cf::CBOR,
    cf::SENML_JSON,
    cf::SENML_CBOR,
    cf::SENML_ETCH_JSON,
    cf::SENML_ETCH_CBOR,
    cf::TEXT_LEGACY,
    cf::TLV_LEGACY,
    cf::LWM2M_JSON_LEGACY,
    cf::OPAQUE_LEGACY,
    cf::TLV,
    cf::LWM2M_JSON,
    cf::LWM2M_CBOR,
];

fn decode_everything(bytes: &[u8]) {
    let reg = Registry::builtin();
    let base: Path = "/3/0".parse().unwrap_or_default();
    for content_format in ALL_FORMATS {
        for b in [None, Some(&base)] {
            if let Ok(d) = decode(content_format, bytes, b, &reg) {
                let _ = d.render(&reg);
            }
        }
    }
    if let Ok(els) = tlv::decode_elements(bytes) {
        let _ = tlv::render(&els);
    }
    let _ = senml::render_original(bytes);
    let _ = TlvBuilder::new().deserialize(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = text.parse::<Path>();
    }
}

proptest! {
    #[test]
    fn tlv_tree_round_trips(records in records(1, false)) {
        let parent = records[0].path.truncate(1);
        let nodes = nodes_from_records(&parent, &records).unwrap();
        let bytes = tlv::encode(&nodes).unwrap();
        let d = decode(cf::TLV, &bytes, Some(&parent), &registry()).unwrap();
        let Payload::Nodes { parent: got_parent, nodes: got } = d.payload else {
            panic!("TLV decodes to nodes")
        };
        prop_assert_eq!(got_parent, Some(parent));
        prop_assert_eq!(got, nodes);
    }

    #[test]
    fn tlv_records_round_trip(records in records(1, false)) {
        prop_assert_eq!(round_trip(cf::TLV, &records), records);
    }

    #[test]
    fn senml_json_round_trips(records in records(3, true)) {
        prop_assert_eq!(round_trip(cf::SENML_JSON, &records), records.clone());
        prop_assert_eq!(round_trip(cf::SENML_ETCH_JSON, &records), records);
    }

    #[test]
    fn senml_cbor_round_trips(records in records(3, true)) {
        prop_assert_eq!(round_trip(cf::SENML_CBOR, &records), records.clone());
        prop_assert_eq!(round_trip(cf::SENML_ETCH_CBOR, &records), records);
    }

    #[test]
    fn lwm2m_json_round_trips(records in records(3, true)) {
        prop_assert_eq!(round_trip(cf::LWM2M_JSON, &records), records);
    }

    #[test]
    fn lwm2m_cbor_round_trips(records in records(3, false)) {
        prop_assert_eq!(round_trip(cf::LWM2M_CBOR, &records), records);
    }

    #[test]
    fn single_value_formats_round_trip(record in single_record()) {
        let one = vec![record.clone()];
        prop_assert_eq!(round_trip(cf::TEXT, &one), one.clone());
        prop_assert_eq!(round_trip(cf::CBOR, &one), one.clone());
        if matches!(record.value, Value::Opaque(_)) {
            prop_assert_eq!(round_trip(cf::OCTET_STREAM, &one), one);
        }
    }

    #[test]
    fn link_format_round_trips(
        links in vec(
            ("/[0-9]{1,4}(/[0-9]{1,3}){0,2}", vec(("[a-z]{1,6}", proptest::option::of("[ -~]{0,8}")), 0..3)),
            0..5,
        )
    ) {
        let links: Vec<link::Link> = links
            .into_iter()
            .map(|(target, attrs)| {
                attrs.into_iter().fold(link::Link::new(target), |l, (n, v)| l.with(&n, v.as_deref()))
            })
            .collect();
        let text = link::encode(&links);
        prop_assert_eq!(link::decode(text.as_bytes()).unwrap(), links);
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in vec(any::<u8>(), 0..200)) {
        decode_everything(&bytes);
    }

    #[test]
    fn decoding_damaged_payloads_never_panics(
        records in records(2, true),
        format in 0usize..5,
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let content_format = [cf::SENML_JSON, cf::SENML_CBOR, cf::LWM2M_JSON, cf::LWM2M_CBOR, cf::TLV][format];
        let mut payload = Payload::Records(records);
        if content_format == cf::TLV {
            let Payload::Records(r) = &payload else { unreachable!() };
            let first = r[0].path.truncate(1);
            let under: Vec<Record> = r.iter().filter(|x| x.path.starts_with(&first)).cloned().collect();
            payload = Payload::Nodes {
                parent: Some(first),
                nodes: nodes_from_records(&first, &under).unwrap_or_default(),
            };
        }
        let mut bytes = encode(content_format, &payload).unwrap();
        if !bytes.is_empty() {
            let i = flip.index(bytes.len());
            bytes[i] = byte;
            let mut cut_bytes = bytes.clone();
            cut_bytes.truncate(cut.index(bytes.len()));
            decode_everything(&cut_bytes);
        }
        decode_everything(&bytes);
    }
}

#[test]
fn nodes_round_trip_through_every_tree_format() {
    // Object-level TLV nodes can't be encoded; everything else can.
    let obj = Node::Object(crate::lwm2m::node::Object {
        id: 1,
        instances: Vec::new(),
    });
    assert!(tlv::encode(&[obj]).is_err());
}

#[test]
fn deeply_nested_input_is_rejected_or_decoded_without_overflow() {
    for depth in [100usize, 255, 256, 300, 5000] {
        for (open, leaf) in [(0x81u8, 0x00u8), (0xa1, 0x00)] {
            let mut bytes = Vec::new();
            for _ in 0..depth {
                bytes.push(open);
                if open == 0xa1 {
                    bytes.push(0x01); // key
                }
            }
            bytes.push(leaf);
            decode_everything(&bytes);
        }
        let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        decode_everything(json.as_bytes());
    }
}
