//! The endpoint's driver: two threads per listening transport. The reader
//! does nothing but take datagrams (and the transport's session events)
//! off the socket, in order, into a bounded queue, so the kernel's receive
//! buffer is emptied as fast as it is scheduled, whatever the terminal or
//! the core are doing; the worker hands them to the
//! [`Core`](super::core::Core) in batches under one lock and fires its
//! timers. Every datagram and every line leaves through the effect queue,
//! carried out by one thread at a time after the lock around the core is
//! released, so a slow peer or a slow terminal never holds up another peer.
//!
//! The threads hold only a weak reference to the server and stop when
//! `Driver::stop` is called, when its transport is replaced, or when the
//! server is dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::handle::{Driver, Server, Shared};
use crate::transport::udp::MAX_DATAGRAM;
use crate::transport::{FaultEvent, Transport};

/// The longest a thread sleeps before it looks at its timers and its stop
/// flag again.
const TICK: Duration = Duration::from_millis(100);

/// How many received events wait at most between the reader and the
/// worker; beyond that the reader waits (and the kernel's buffer fills).
const QUEUE: usize = 1 << 16;

/// How many bytes of datagrams wait at most between the reader and the
/// worker (a flood of large datagrams stops there, not in memory).
const QUEUE_BYTES: usize = 32 << 20;

/// How many events the worker hands to the core under one lock.
const BATCH: usize = 256;

/// What the reader took off the transport, in the order it happened.
enum Event {
    Datagram(SocketAddr, Vec<u8>),
    Notice(String),
    Accepted(SocketAddr),
    Closed(SocketAddr),
    Moved(SocketAddr, SocketAddr),
    /// A datagram the fault injection dropped, duplicated, delayed or
    /// reordered (recorded in the history).
    Fault(FaultEvent),
    Error(std::io::Error),
}

/// Starts receiving on `transport` for `server`.
pub(super) fn spawn(server: &Server, transport: Arc<Transport>) -> std::io::Result<Driver> {
    let stop = Arc::new(AtomicBool::new(false));
    let weak = Arc::downgrade(&server.shared);
    let (tx, rx) = sync_channel(QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    let (flag, bytes) = (stop.clone(), queued.clone());
    let reader = std::thread::Builder::new()
        .name("nsh-reader".into())
        .spawn(move || read(transport, tx, flag, bytes))?;
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("nsh-receiver".into())
        .spawn(move || {
            work(weak, rx, &flag, &queued);
            flag.store(true, Ordering::SeqCst);
            let _ = reader.join();
        })?;
    Ok(Driver {
        stop,
        handle: Some(handle),
    })
}

/// The reader: receives until stopped or until the worker is gone.
fn read(
    transport: Arc<Transport>,
    tx: SyncSender<Event>,
    stop: Arc<AtomicBool>,
    queued: Arc<AtomicUsize>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut events = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let received = transport.recv(&mut buf, TICK);
        events.extend(transport.take_notices().into_iter().map(Event::Notice));
        events.extend(transport.take_faults().into_iter().map(Event::Fault));
        events.extend(
            transport
                .take_moved()
                .into_iter()
                .map(|(o, n)| Event::Moved(o, n)),
        );
        events.extend(transport.take_closed().into_iter().map(Event::Closed));
        events.extend(transport.take_accepted().into_iter().map(Event::Accepted));
        match received {
            Ok(Some((n, peer))) => {
                events.push(Event::Datagram(peer, buf.get(..n).unwrap_or(&buf).to_vec()));
            }
            Ok(None) => {}
            Err(e) => {
                events.push(Event::Error(e));
                // ICMP port unreachable and the like: keep going, gently.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for event in events.drain(..) {
            let mut event = event;
            let size = match &event {
                Event::Datagram(_, bytes) => bytes.len(),
                _ => 0,
            };
            // Waits only when the worker is that far behind; wakes to look
            // at the stop flag.
            while queued.load(Ordering::Acquire) > QUEUE_BYTES {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            queued.fetch_add(size, Ordering::AcqRel);
            loop {
                match tx.try_send(event) {
                    Ok(()) => break,
                    Err(TrySendError::Disconnected(_)) => return,
                    Err(TrySendError::Full(back)) => {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        event = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
    }
}

/// The worker: hands what the reader queued to the core, fires timers.
fn work(weak: Weak<Shared>, rx: Receiver<Event>, stop: &AtomicBool, queued: &AtomicUsize) {
    let mut batch = Vec::with_capacity(BATCH);
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
        // Not holding the server while waiting: it could be dropped.
        drop(server);
        match rx.recv_timeout(wait) {
            Ok(first) => {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let bytes: usize = batch
            .iter()
            .map(|e| match e {
                Event::Datagram(_, b) => b.len(),
                _ => 0,
            })
            .sum();
        queued.fetch_sub(bytes, Ordering::AcqRel);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(server) = weak.upgrade().map(|shared| Server { shared }) else {
            return;
        };
        handle(&server, &mut batch);
        server.lock().on_timeout(Instant::now(), SystemTime::now());
        server.notify_all();
        server.print_due_summaries(false);
    }
}

/// Carries out `batch` in order: lines are printed as they come, and the
/// rest is handed to the core under one lock until a line interrupts.
fn handle(server: &Server, batch: &mut Vec<Event>) {
    let mut events = batch.drain(..).peekable();
    while events.peek().is_some() {
        let mut core = server.lock();
        while let Some(event) = events.next_if(|e| !matches!(e, Event::Notice(_) | Event::Error(_)))
        {
            match event {
                Event::Datagram(peer, bytes) => {
                    core.on_datagram(peer, &bytes, Instant::now(), SystemTime::now());
                }
                Event::Accepted(peer) => core.on_connected(peer, Instant::now()),
                Event::Closed(peer) => core.on_closed(peer),
                Event::Moved(old, new) => core.on_moved(old, new),
                Event::Fault(fault) => core.on_fault(fault, SystemTime::now()),
                Event::Notice(_) | Event::Error(_) => {}
            }
        }
        drop(core);
        // Wake a command waiting for a response at once.
        server.notify_all();
        match events.next() {
            Some(Event::Notice(line)) => server.print(&line),
            Some(Event::Error(e)) => server.print(&format!("receive error: {e}")),
            _ => {}
        }
    }
}
