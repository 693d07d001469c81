//! The endpoint's driver: two threads per listening transport. The reader
//! does nothing but take datagrams (and the transport's session events)
//! off the socket, in order, into a bounded queue, so the kernel's receive
//! buffer is emptied as fast as it is scheduled, whatever the terminal or
//! the core are doing; the worker hands them to the
//! [`Core`](super::core::Core) in batches under one lock and fires its
//! timers. Every datagram and every line leaves through the effect queue,
//! carried out by one thread at a time after the lock around the core is
//! released, so a slow peer or a slow terminal never holds up another peer
//! (one exception: a request a command waits for, when nothing else is to
//! go out and the transport never waits for a peer, is sent in place
//! before its bookkeeping; see `Core::ready_now`).
//!
//! A command waiting for a response takes the hand-offs out of the round
//! trip: while one waits and the worker has nothing in hand, the reader
//! hands a datagram to the core itself; and where the transport can say
//! from its socket alone that a datagram is there (UDP and DTLS without
//! fault injection, [`Transport::wait_readable`]), the waiting command
//! takes the [`Turn`] and reads and handles datagrams in its own thread
//! while the reader stands aside, as a blocking client would. Either way
//! datagrams are handled one at a time, in the order they were read.
//!
//! The threads hold only a weak reference to the server and stop when
//! `Driver::stop` is called, when its transport is replaced, or when the
//! server is dropped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::handle::{Driver, Server, Shared};
use super::turn::{COMMAND_POLL, Event, READ_READY, Reading, Turn};
use crate::transport::Transport;
use crate::transport::udp::MAX_DATAGRAM;

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

/// Lets the calling command read the socket and handle what arrives for
/// up to `slice` (at most [`COMMAND_POLL`]). False when it cannot here
/// (the transport cannot be polled, another command reads, the worker has
/// events in hand): the caller waits on the core's condition instead.
pub(super) fn receive_here(
    server: &Server,
    transport: &Transport,
    turn: &Turn,
    slice: Duration,
) -> bool {
    if !transport.can_wait_readable() || turn.in_flight.load(Ordering::Acquire) > 0 {
        return false;
    }
    let Ok(mut reading) = turn.command.try_lock() else {
        return false;
    };
    if !turn.command_begins() {
        return false;
    }
    // What the reader queued before it stood aside goes first.
    let received = turn.in_flight.load(Ordering::Acquire) == 0;
    if received {
        let Reading { buf, events } = &mut *reading;
        if buf.len() < MAX_DATAGRAM {
            buf.resize(MAX_DATAGRAM, 0);
        }
        receive_into(transport, buf, slice.min(COMMAND_POLL), events);
        handle(server, events);
    }
    turn.command_ends();
    received
}

/// Starts receiving on `transport` for `server`.
pub(super) fn spawn(server: &Server, transport: Arc<Transport>) -> std::io::Result<Driver> {
    let stop = Arc::new(AtomicBool::new(false));
    let weak = Arc::downgrade(&server.shared);
    let (tx, rx) = sync_channel(QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let turn = Arc::new(Turn::new(in_flight.clone()));
    let turn_of_reader = turn.clone();
    let queue = Queue {
        tx,
        stop: stop.clone(),
        bytes: queued.clone(),
        in_flight: in_flight.clone(),
    };
    let server_of_reader = weak.clone();
    let reader = std::thread::Builder::new()
        .name("nsh-reader".into())
        .spawn(move || read(transport, queue, server_of_reader, &turn_of_reader))?;
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("nsh-receiver".into())
        .spawn(move || {
            work(weak, rx, &flag, &queued, &in_flight);
            flag.store(true, Ordering::SeqCst);
            let _ = reader.join();
        })?;
    Ok(Driver {
        stop,
        handle: Some(handle),
        turn,
    })
}

/// The reader's side of the queue to the worker.
struct Queue {
    tx: SyncSender<Event>,
    stop: Arc<AtomicBool>,
    /// Bytes of datagrams queued and not yet taken by the worker.
    bytes: Arc<AtomicUsize>,
    /// Events queued and not yet carried out by the worker.
    in_flight: Arc<AtomicUsize>,
}

impl Queue {
    /// Queues `event` for the worker; waits only while the worker is that
    /// far behind. False once stopped or the worker is gone.
    fn push(&self, mut event: Event) -> bool {
        let size = match &event {
            Event::Datagram(_, bytes) => bytes.len(),
            _ => 0,
        };
        // Wakes to look at the stop flag.
        while self.bytes.load(Ordering::Acquire) > QUEUE_BYTES {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.bytes.fetch_add(size, Ordering::AcqRel);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        loop {
            match self.tx.try_send(event) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if self.stop.load(Ordering::SeqCst) {
                        return false;
                    }
                    event = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

/// One receive from `transport` (up to `timeout`) and what the transport
/// has to tell besides, in the order it happened, onto `events`.
fn receive_into(transport: &Transport, buf: &mut [u8], timeout: Duration, events: &mut Vec<Event>) {
    let received = transport.recv(buf, timeout);
    if transport.may_tell_more() {
        events.extend(transport.take_notices().into_iter().map(Event::Notice));
        events.extend(transport.take_faults().into_iter().map(Event::Fault));
        events.extend(
            transport
                .take_moved()
                .into_iter()
                .map(|(o, n)| Event::Moved(o, n)),
        );
        events.extend(
            transport
                .take_closed()
                .into_iter()
                .map(|(peer, why)| Event::Closed(peer, why)),
        );
        events.extend(transport.take_accepted().into_iter().map(Event::Accepted));
        events.extend(
            transport
                .take_ended_sessions()
                .into_iter()
                .map(|(peer, why)| Event::SessionEnded(peer, why)),
        );
    }
    match received {
        Ok(Some((n, peer))) => {
            events.push(Event::Datagram(peer, buf.get(..n).unwrap_or(buf).to_vec()));
        }
        Ok(None) => {}
        // A signal during the wait (Ctrl-C): the waiter sees the interrupt.
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(e) => {
            events.push(Event::Error(e));
            // ICMP port unreachable and the like: keep going, gently.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The reader: receives until stopped or until the worker is gone.
///
/// While a command waits for a response and the worker has nothing in
/// hand, a datagram is handed to the core here, in this thread: the
/// response reaches the waiting command without waking the worker first.
/// Otherwise (a storm, a busy worker) everything is queued, in order.
/// Where the socket can be polled, the reader stands aside while a command
/// holds the [`Turn`].
fn read(transport: Arc<Transport>, queue: Queue, server: Weak<Shared>, turn: &Turn) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut events = Vec::new();
    while turn.reader_waits(&queue.stop, TICK) {
        let polled = match transport.wait_readable(TICK) {
            None => None,
            Some(Ok(false)) if !transport.wants_ticks() => continue,
            Some(Ok(_)) => {
                if !turn.reader_begins() {
                    continue;
                }
                Some(READ_READY)
            }
            Some(Err(e)) => {
                events.push(Event::Error(e));
                if !deliver(&mut events, &queue, &server) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        receive_into(&transport, &mut buf, polled.unwrap_or(TICK), &mut events);
        let go_on = deliver(&mut events, &queue, &server);
        if polled.is_some() {
            turn.reader_ends();
        }
        if !go_on {
            return;
        }
    }
}

/// Hands what the reader took to the core (a lone datagram while a command
/// waits and nothing is queued) or queues it for the worker. False once
/// stopped or the worker is gone.
fn deliver(events: &mut Vec<Event>, queue: &Queue, server: &Weak<Shared>) -> bool {
    if events.len() == 1
        && matches!(events.first(), Some(Event::Datagram(..)))
        && queue.in_flight.load(Ordering::Acquire) == 0
        && let Some(shared) = server.upgrade()
        && shared.waiting.load(Ordering::Acquire) > 0
    {
        // Nothing queued is left to go before it: the order holds.
        handle(&Server { shared }, events);
        return true;
    }
    for event in events.drain(..) {
        if !queue.push(event) {
            return false;
        }
    }
    true
}

/// The worker: hands what the reader queued to the core, fires timers.
fn work(
    weak: Weak<Shared>,
    rx: Receiver<Event>,
    stop: &AtomicBool,
    queued: &AtomicUsize,
    in_flight: &AtomicUsize,
) {
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
        let handled = batch.len();
        handle(&server, &mut batch);
        // Only now may the reader hand a datagram to the core itself.
        in_flight.fetch_sub(handled, Ordering::AcqRel);
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
                    core.on_datagram(peer, bytes, Instant::now(), SystemTime::now());
                }
                Event::Accepted(peer) => core.on_connected(peer, Instant::now()),
                Event::Closed(peer, why) => core.on_closed(peer, &why, SystemTime::now()),
                Event::SessionEnded(peer, why) => core.on_session_ended(peer, &why),
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
