//! The exchange layer's cost per datagram as the number of live
//! observations grows: one notification handled, and one request sent and
//! its piggybacked response handled, with N observations established on N
//! other peers (N = 1, 100, 10,000; a fleet observed at once). And as the
//! number of requests still waiting for an answer grows (N unanswered CON
//! requests to N other peers: a fleet asked at once, or gone silent): one
//! request and its response, and the timer check that follows every batch
//! of received datagrams with no timer due. And a stray ACK (one matching
//! no tracked message, as a duplicated or late one does) with N requests
//! finished and remembered. Sans-IO: no socket, no thread.
//! Run with `cargo bench --bench exchanges`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nsh::coap::{CoapOption, Code, Message, OptionNumber, Type};
use nsh::exchange::{Exchanges, Incoming, TransmissionParams};

type Peer = u32;

/// The piggybacked 2.05 answering `req`, with Observe `seq` when given.
fn answer(req: &Message, seq: Option<u64>) -> Message {
    let mut resp = Message::response_to(req, Code::CONTENT, 0);
    if let Some(seq) = seq {
        resp.add_option(CoapOption::uint(OptionNumber::OBSERVE, seq));
    }
    resp.payload = b"42".to_vec();
    resp
}

/// A GET of `path` from `peer`, registered and released for transmission.
fn request(
    ex: &mut Exchanges<Peer>,
    peer: Peer,
    path: &str,
    observe: bool,
    now: Instant,
) -> Message {
    let mut req = Message::new(Type::Confirmable, Code::GET, ex.next_message_id(&peer));
    req.token = ex.new_token(&peer);
    req.set_uri(path);
    if observe {
        req.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
    }
    ex.send_request(peer, req.clone(), now);
    while ex.poll_transmission().is_some() {}
    req
}

/// An endpoint with `n` observations, one per peer 1..=n; returns the
/// token of peer n's (the newest: found last by a scan).
fn observed(n: u32, now: Instant) -> (Exchanges<Peer>, Vec<u8>) {
    let mut ex = Exchanges::new(TransmissionParams::default(), 7);
    let mut newest = Vec::new();
    for peer in 1..=n {
        let req = request(&mut ex, peer, "/3/0/13", true, now);
        let got = ex.handle_incoming(&peer, &answer(&req, Some(1)), now);
        assert!(matches!(got, Incoming::Response { .. }), "{got:?}");
        if peer == n {
            newest = req.token.clone();
        }
    }
    while ex.poll_event().is_some() {}
    assert_eq!(ex.observations().count(), n as usize);
    (ex, newest)
}

/// An endpoint with `n` CON requests sent and not answered, one per peer
/// 1..=n.
fn pending(n: u32, now: Instant) -> Exchanges<Peer> {
    let mut ex = Exchanges::new(TransmissionParams::default(), 7);
    for peer in 1..=n {
        request(&mut ex, peer, "/3/0/0", false, now);
    }
    ex
}

fn benches(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("exchanges");
    g.measurement_time(Duration::from_secs(3));
    for n in [1u32, 100, 10_000] {
        g.bench_with_input(BenchmarkId::new("notification", n), &n, |b, &n| {
            let (mut ex, token) = observed(n, now);
            let (mut seq, mut mid, mut t) = (1u64, 0u16, now);
            b.iter(|| {
                // Message IDs repeat after 65,536: time moves on, so the
                // duplicate detector has forgotten one before it comes back.
                seq += 1;
                mid = mid.wrapping_add(1);
                t += Duration::from_millis(10);
                let mut m = Message::new(Type::NonConfirmable, Code::CONTENT, mid);
                m.token = token.clone();
                m.add_option(CoapOption::uint(OptionNumber::OBSERVE, seq));
                m.payload = b"43".to_vec();
                let got = ex.handle_incoming(&n, &m, t);
                assert!(matches!(got, Incoming::Notification { .. }), "{got:?}");
                black_box(got);
            })
        });
        g.bench_with_input(BenchmarkId::new("request_and_response", n), &n, |b, &n| {
            let (mut ex, _) = observed(n, now);
            b.iter(|| {
                let req = request(&mut ex, n, "/3/0/0", false, now);
                let got = ex.handle_incoming(&n, &answer(&req, None), now);
                assert!(matches!(got, Incoming::Response { .. }));
                black_box(got);
            })
        });
        g.bench_with_input(
            BenchmarkId::new("request_and_response_with_pending", n),
            &n,
            |b, &n| {
                let mut ex = pending(n, now);
                b.iter(|| {
                    let req = request(&mut ex, 0, "/3/0/0", false, now);
                    let got = ex.handle_incoming(&0, &answer(&req, None), now);
                    assert!(matches!(got, Incoming::Response { .. }));
                    black_box(got);
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("stray_ack_with_finished", n),
            &n,
            |b, &n| {
                let mut ex = Exchanges::new(TransmissionParams::default(), 7);
                for peer in 1..=n {
                    let req = request(&mut ex, peer, "/3/0/0", false, now);
                    ex.handle_incoming(&peer, &answer(&req, None), now);
                }
                while ex.poll_event().is_some() {}
                // An ACK from a peer with no request finished: the whole list is
                // looked through.
                let stray = Message::new(Type::Acknowledgement, Code::EMPTY, 7);
                b.iter(|| {
                    let got = ex.handle_incoming(&0, &stray, now);
                    assert!(matches!(got, Incoming::Stray { related: None }));
                    black_box(got);
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("timers_with_pending", n), &n, |b, &n| {
            let mut ex = pending(n, now);
            // Before the first retransmission is due.
            let t = now + Duration::from_millis(500);
            b.iter(|| {
                ex.handle_timeout(t);
                black_box(ex.poll_timeout())
            })
        });
    }
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
