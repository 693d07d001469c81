//! The endpoint's driver: one thread per listening transport that receives
//! datagrams, hands them to the [`Core`](super::core::Core) and fires its
//! timers, and the effect queue through which every datagram and every line
//! leaves — carried out by one thread at a time, after the lock around the
//! core is released, so a slow peer or a slow terminal never holds up
//! another peer.
//!
//! The thread holds only a weak reference to the server and stops when
//! `Driver::stop` is called, when its transport is replaced, or when the
//! server is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::handle::{Driver, Server, Shared};
use crate::transport::Transport;
use crate::transport::udp::MAX_DATAGRAM;

/// The longest the thread sleeps in `recv` before it looks at its timers
/// and its stop flag again.
const TICK: Duration = Duration::from_millis(100);

/// Starts receiving on `transport` for `server`.
pub(super) fn spawn(server: &Server, transport: Arc<Transport>) -> std::io::Result<Driver> {
    let stop = Arc::new(AtomicBool::new(false));
    let weak = Arc::downgrade(&server.shared);
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("nsh-receiver".into())
        .spawn(move || run(weak, transport, flag))?;
    Ok(Driver {
        stop,
        handle: Some(handle),
    })
}

fn run(weak: Weak<Shared>, transport: Arc<Transport>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(server) = weak.upgrade().map(|shared| Server { shared }) else {
            return;
        };
        let wait = {
            let core = server.lock_raw();
            let now = Instant::now();
            core.exchanges
                .poll_timeout()
                .map_or(TICK, |t| t.saturating_duration_since(now))
                .min(TICK)
        };
        // Not holding the server while blocked in recv: it could be dropped.
        drop(server);
        let received = transport.recv(&mut buf, wait);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(server) = weak.upgrade().map(|shared| Server { shared }) else {
            return;
        };
        for line in transport.take_notices() {
            server.print(&line);
        }
        let faults = transport.take_faults();
        if !faults.is_empty() {
            let mut core = server.lock();
            for fault in faults {
                core.on_fault(fault, SystemTime::now());
            }
        }
        let accepted = transport.take_accepted();
        let closed = transport.take_closed();
        let moved = transport.take_moved();
        if !accepted.is_empty() || !closed.is_empty() || !moved.is_empty() {
            let mut core = server.lock();
            for (old, new) in moved {
                core.on_moved(old, new);
            }
            for peer in closed {
                core.on_closed(peer);
            }
            for peer in accepted {
                core.on_connected(peer, Instant::now());
            }
        }
        match received {
            Ok(Some((n, peer))) => {
                let bytes = buf.get(..n).unwrap_or(&buf);
                server
                    .lock()
                    .on_datagram(peer, bytes, Instant::now(), SystemTime::now());
                // Wake a command waiting for this response at once.
                server.notify_all();
            }
            Ok(None) => {}
            Err(e) => {
                // ICMP port unreachable and the like: report, keep going.
                server.print(&format!("receive error: {e}"));
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        server.lock().on_timeout(Instant::now(), SystemTime::now());
        server.notify_all();
    }
}
