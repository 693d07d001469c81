//! Fuzzes the whole receive path: the input is cut into datagrams (each
//! preceded by its length, one byte; the rest is the last datagram), which
//! one peer sends to the server in turn. Each goes through decoding,
//! exchange matching, classification, the registrar and the history, and
//! its record is then rendered as the user sees it: the line (summary),
//! `details` and `value`. None of it may panic.
//!
//! One server serves every input (building one loads the built-in object
//! definitions, which would take most of the time); each input comes from
//! a peer address of its own, so the exchange layer's per-peer state
//! (message IDs, duplicates, pending requests) starts fresh for it. The
//! registrations table is shared: an input can update what an earlier
//! one registered.
#![no_main]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use nsh::script::values::decoded_value;
use nsh::server::Server;

static SERVER: OnceLock<Server> = OnceLock::new();
static PEERS: AtomicU32 = AtomicU32::new(0);

fuzz_target!(|data: &[u8]| {
    let server = SERVER.get_or_init(|| {
        let server = Server::new();
        server.set_printer(Arc::new(|_: &str| {}));
        server
    });
    let n = PEERS.fetch_add(1, Ordering::Relaxed);
    let peer = SocketAddr::from((n.to_be_bytes(), 40000));
    let mut rest = data;
    for _ in 0..8 {
        let (datagram, next) = match rest.split_first() {
            Some((&n, tail)) if usize::from(n) <= tail.len() => tail.split_at(usize::from(n)),
            _ => (rest, &[][..]),
        };
        let Some(record) = server.receive_datagram(peer, datagram) else {
            panic!("a received datagram left no record");
        };
        assert_eq!(record.raw, datagram, "the record holds other bytes");
        assert_eq!(record.peer, peer, "the record names another peer");
        drop(record.line());
        drop(record.details());
        drop(decoded_value(&record));
        if next.is_empty() {
            break;
        }
        rest = next;
    }
    // The history holds what the renderers above already saw.
    server.reset_history();
});
