//! Decode and encode throughput of TLV and SenML CBOR for one Object
//! Instance with 100 resources (strings, integers, floats, booleans).
//! Run with `cargo bench --bench formats`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nsh::lwm2m::format::{self, Payload, cf, senml, tlv};
use nsh::lwm2m::node::{Path, Record, Value, nodes_from_records};
use nsh::lwm2m::objects::Registry;

fn instance_records() -> Vec<Record> {
    (0u16..100)
        .map(|i| {
            let value = match i % 4 {
                0 => Value::String(format!("value-{i}")),
                1 => Value::Integer(i64::from(i) * 1000),
                2 => Value::Float(f64::from(i) * 0.5),
                _ => Value::Boolean(i % 8 == 3),
            };
            Record::new(Path::new(&[3303, 0, i]).unwrap_or_default(), value)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let reg = Registry::builtin();
    let base = Path::new(&[3303, 0]).unwrap_or_default();
    let records = instance_records();
    let nodes = nodes_from_records(&base, &records).unwrap_or_default();
    let tlv_bytes = tlv::encode(&nodes).unwrap_or_default();
    let cbor_bytes = senml::encode_cbor(&records).unwrap_or_default();

    let mut g = c.benchmark_group("tlv");
    g.throughput(Throughput::Bytes(tlv_bytes.len() as u64));
    g.bench_function("encode_100_resources", |b| {
        b.iter(|| tlv::encode(black_box(&nodes)))
    });
    g.bench_function("decode_elements_100_resources", |b| {
        b.iter(|| tlv::decode_elements(black_box(&tlv_bytes)))
    });
    g.bench_function("decode_typed_100_resources", |b| {
        b.iter(|| format::decode(cf::TLV, black_box(&tlv_bytes), Some(&base), &reg))
    });
    g.finish();

    let mut g = c.benchmark_group("senml_cbor");
    g.throughput(Throughput::Bytes(cbor_bytes.len() as u64));
    g.bench_function("encode_100_resources", |b| {
        b.iter(|| senml::encode_cbor(black_box(&records)))
    });
    g.bench_function("decode_100_resources", |b| {
        b.iter(|| format::decode(cf::SENML_CBOR, black_box(&cbor_bytes), None, &reg))
    });
    g.bench_function("decode_pack_only_100_resources", |b| {
        b.iter(|| senml::decode_cbor_pack(black_box(&cbor_bytes)))
    });
    g.bench_function("encode_via_dispatcher_100_resources", |b| {
        let payload = Payload::Records(records.clone());
        b.iter(|| format::encode(cf::SENML_CBOR, black_box(&payload)))
    });
    g.finish();
}

criterion_group!(formats, benches);
criterion_main!(formats);
