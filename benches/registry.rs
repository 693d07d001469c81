//! The registration registry's cost per operation as the number of
//! registered clients grows (N = 1, 100, 10,000): a client registering
//! again under its endpoint name (a reboot), a De-register followed by a
//! new Register, a client changing address (NAT rebinding, DTLS
//! Connection ID), an Update, the mark every received datagram makes, and
//! the look for expired registrations made after every batch of received
//! datagrams when none is due.
//! Run with `cargo bench --bench registry`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nsh::lwm2m::registration::Registration;
use nsh::server::Registry;

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 5683))
}

/// A registry with clients `ep-1` … `ep-N`, client i at `addr(i)`.
fn registry(n: u32) -> Registry {
    let mut r = Registry::default();
    for i in 1..=n {
        r.register(addr(i), format!("ep-{i}"), Registration::default());
    }
    r
}

/// Where client `ep-I` is registered.
fn location_of(r: &Registry, i: u32) -> String {
    r.by_endpoint(&format!("ep-{i}"))
        .map(|c| c.location.clone())
        .unwrap_or_default()
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("registry");
    g.measurement_time(Duration::from_secs(3));
    for n in [1u32, 100, 10_000] {
        let middle = n / 2 + 1;
        g.bench_with_input(BenchmarkId::new("register_again", n), &n, |b, &n| {
            let mut r = registry(n);
            b.iter(|| {
                black_box(r.register(
                    addr(middle),
                    format!("ep-{middle}"),
                    Registration::default(),
                ))
            })
        });
        g.bench_with_input(
            BenchmarkId::new("deregister_and_register", n),
            &n,
            |b, &n| {
                let mut r = registry(n);
                let mut location = location_of(&r, middle);
                b.iter(|| {
                    assert!(r.deregister(&location).is_some());
                    location = r.register(
                        addr(middle),
                        format!("ep-{middle}"),
                        Registration::default(),
                    );
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("readdress", n), &n, |b, &n| {
            let mut r = registry(n);
            let location = location_of(&r, middle);
            let mut port = 0u16;
            b.iter(|| {
                port = port.wrapping_add(1);
                r.readdress(&location, SocketAddr::from(([10, 9, 9, 9], port)));
            })
        });
        g.bench_with_input(BenchmarkId::new("update", n), &n, |b, &n| {
            let mut r = registry(n);
            let location = location_of(&r, middle);
            b.iter(|| {
                r.update(&location, |c| c.last_update = SystemTime::now())
                    .is_some()
            })
        });
        g.bench_with_input(BenchmarkId::new("expire_none_due", n), &n, |b, &n| {
            let mut r = registry(n);
            let now = SystemTime::now();
            b.iter(|| assert!(r.expire(black_box(now)).is_empty()))
        });
        g.bench_with_input(BenchmarkId::new("touch", n), &n, |b, &n| {
            let mut r = registry(n);
            let now = SystemTime::now();
            b.iter(|| r.touch(addr(middle), black_box(now)))
        });
    }
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
