//! The endpoint's driver: one thread per listening transport that receives
//! datagrams, hands them to the [`Core`](super::core::Core) and fires its
//! timers, and the effect queue through which every datagram and every line
//! leaves — carried out by one thread at a time, after the lock around the
//! core is released, so a slow peer or a slow terminal never holds up
//! another peer.
//!
//! The thread holds only a weak reference to the server and stops when
//! [`Driver::stop`] is called, when its transport is replaced, or when the
//! server is dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::core::Effect;
use super::{Server, Shared};
use crate::transport::Transport;
use crate::transport::udp::MAX_DATAGRAM;

/// The longest the thread sleeps in `recv` before it looks at its timers
/// and its stop flag again.
const TICK: Duration = Duration::from_millis(100);

/// A running receive thread.
pub(super) struct Driver {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Driver {
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

    /// Stops the thread and waits for it (at most one [`TICK`] plus what it
    /// was doing).
    pub(super) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take()
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
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
        let accepted = transport.take_accepted();
        let closed = transport.take_closed();
        if !accepted.is_empty() || !closed.is_empty() {
            let mut core = server.lock();
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

impl Server {
    /// Carries out queued effects until none is left, unless another thread
    /// is at it (it then does ours too). Called after every release of the
    /// core; never with the core locked.
    pub(super) fn drain(&self) {
        loop {
            let Ok(turn) = self.shared.drain.try_lock() else {
                return;
            };
            loop {
                let mut batch: VecDeque<Effect> =
                    std::mem::take(&mut *super::lock(&self.shared.outbox));
                if batch.is_empty() {
                    break;
                }
                while let Some(effect) = batch.pop_front() {
                    // What a transmission leads to (its line, the next
                    // queued request) comes before anything queued later.
                    for e in self.carry_out(effect).into_iter().rev() {
                        batch.push_front(e);
                    }
                }
            }
            drop(turn);
            self.notify_all();
            if super::lock(&self.shared.outbox).is_empty() {
                return;
            }
        }
    }

    fn carry_out(&self, effect: Effect) -> Vec<Effect> {
        match effect {
            Effect::Print(line) => {
                self.print(&line);
                Vec::new()
            }
            Effect::Show(record, suffix) => {
                let line = record.line();
                match suffix {
                    Some(s) => self.print(&format!("{line}{s}")),
                    None => self.print(&line),
                }
                Vec::new()
            }
            Effect::Transmit(out) => {
                let result = out.transport.send_to(&out.raw, out.peer);
                let mut core = self.lock_raw();
                core.on_sent(out, result, SystemTime::now());
                core.take_effects()
            }
        }
    }
}
