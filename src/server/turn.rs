//! Who reads a socket that can be polled: the reader thread of the
//! driver, or a command waiting for a response (see `driver`). One at a
//! time, so datagrams are handled in the order they were read; after a
//! command the reader stands aside for a lease, so commands in a loop keep
//! the socket from one to the next. Also what either reads: the events
//! taken off the transport, and the buffers a reading command keeps.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::transport::FaultEvent;

/// How long the reader stands aside after a command last read the socket:
/// commands in a loop keep the turn from one to the next; a datagram that
/// arrives between them waits at most this long.
const LEASE: Duration = Duration::from_millis(20);

/// The longest a receiving command waits on the socket before it looks at
/// the core again (changes made by other threads: a timer, a send).
pub(super) const COMMAND_POLL: Duration = Duration::from_millis(5);

/// The longest a command waits for the reader to hand the turn over.
const HAND_OVER: Duration = Duration::from_secs(1);

/// How long a read waits once the socket said a datagram is there.
pub(super) const READ_READY: Duration = Duration::from_millis(1);

/// Who reads a socket that can be polled: the reader thread, or a command
/// waiting for a response. One at a time, so datagrams are handled in the
/// order they were read.
pub(super) struct Turn {
    state: Mutex<TurnState>,
    changed: Condvar,
    /// The buffers of the command that reads (one at a time), kept from
    /// one command to the next.
    pub(super) command: Mutex<Reading>,
    /// Events the reader queued that the worker has not carried out yet.
    pub(super) in_flight: Arc<AtomicUsize>,
}

#[derive(Default)]
struct TurnState {
    /// A command reads the socket.
    command: bool,
    /// The reader is between a read and handing over what it read.
    reader: bool,
    /// When a command last gave the turn back.
    released: Option<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Turn {
    /// A turn with the reader's count of events in hand.
    pub(super) fn new(in_flight: Arc<AtomicUsize>) -> Self {
        Turn {
            state: Mutex::new(TurnState::default()),
            changed: Condvar::new(),
            command: Mutex::new(Reading::default()),
            in_flight,
        }
    }

    /// Waits while a command reads (or read within [`LEASE`]), looking at
    /// `stop` at least every `tick`; false when stopped meanwhile.
    pub(super) fn reader_waits(&self, stop: &AtomicBool, tick: Duration) -> bool {
        let mut state = lock(&self.state);
        loop {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            let aside = match state.released {
                _ if state.command => tick,
                Some(at) => LEASE.saturating_sub(at.elapsed()),
                None => Duration::ZERO,
            };
            if aside.is_zero() {
                return true;
            }
            state = self
                .changed
                .wait_timeout(state, aside.min(tick))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The reader starts a read; false when a command took the turn.
    pub(super) fn reader_begins(&self) -> bool {
        let mut state = lock(&self.state);
        let leased = state.released.is_some_and(|at| at.elapsed() < LEASE);
        if state.command || leased {
            return false;
        }
        state.reader = true;
        true
    }

    /// The reader handed over what it read.
    pub(super) fn reader_ends(&self) {
        let mut state = lock(&self.state);
        state.reader = false;
        let command_waits = state.command;
        drop(state);
        if command_waits {
            self.changed.notify_all();
        }
    }

    /// A command takes the turn, once the reader handed over what it read
    /// (a read the socket said was ready, and the handling of it). False,
    /// with the turn left to the reader, when that takes longer than
    /// [`HAND_OVER`]: a reader that never hands over does not hang the
    /// command, which then waits as it would without a turn.
    pub(super) fn command_begins(&self) -> bool {
        let deadline = Instant::now() + HAND_OVER;
        let mut state = lock(&self.state);
        state.command = true;
        while state.reader {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.command = false;
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// The command gives the turn back. The reader is not woken: it stands
    /// aside for [`LEASE`] after this anyway.
    pub(super) fn command_ends(&self) {
        let mut state = lock(&self.state);
        state.command = false;
        state.released = Some(Instant::now());
    }
}

/// The buffers a command reads the socket with: the datagram, and what
/// the transport reported with it (handled, and emptied, at once).
#[derive(Default)]
pub(super) struct Reading {
    pub(super) buf: Vec<u8>,
    pub(super) events: Vec<Event>,
}

/// What the reader took off the transport, in the order it happened.
pub(super) enum Event {
    Datagram(SocketAddr, Vec<u8>),
    Notice(String),
    Accepted(SocketAddr),
    /// A connection closed, and the line saying why.
    Closed(SocketAddr, String),
    /// A DTLS session ended, and how and when.
    SessionEnded(SocketAddr, String),
    Moved(SocketAddr, SocketAddr),
    /// A datagram the fault injection dropped, duplicated, delayed or
    /// reordered (recorded in the history).
    Fault(FaultEvent),
    Error(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn() -> Turn {
        Turn::new(Arc::new(AtomicUsize::new(0)))
    }

    #[test]
    fn the_reader_reads_when_no_command_did() {
        let t = turn();
        assert!(t.reader_waits(&AtomicBool::new(false), Duration::from_millis(100)));
        assert!(t.reader_begins());
        t.reader_ends();
    }

    #[test]
    fn the_reader_stands_aside_while_a_command_reads_and_for_the_lease_after() {
        let t = turn();
        assert!(t.command_begins());
        assert!(!t.reader_begins(), "the command holds the turn");
        t.command_ends();
        let released = Instant::now();
        assert!(!t.reader_begins(), "within the lease");
        // Waits out the lease, then may read.
        assert!(t.reader_waits(&AtomicBool::new(false), Duration::from_millis(100)));
        assert!(released.elapsed() >= LEASE - Duration::from_millis(1));
        assert!(t.reader_begins());
        t.reader_ends();
    }

    #[test]
    fn a_command_takes_the_turn_only_once_the_reader_handed_over() {
        let t = Arc::new(turn());
        assert!(t.reader_begins());
        let (tx, rx) = std::sync::mpsc::channel();
        let command = {
            let t = t.clone();
            std::thread::spawn(move || {
                assert!(t.command_begins());
                tx.send(()).unwrap();
                t.command_ends();
            })
        };
        // The command cannot have the turn while the reader holds it.
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        t.reader_ends();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        command.join().unwrap();
    }

    #[test]
    fn a_stopped_reader_does_not_wait() {
        let t = turn();
        assert!(t.command_begins());
        assert!(!t.reader_waits(&AtomicBool::new(true), Duration::from_millis(100)));
    }

    #[test]
    fn a_reader_that_never_hands_over_does_not_hang_a_command() {
        let t = turn();
        assert!(t.reader_begins());
        assert!(!t.command_begins());
        // The turn stays with the reader.
        t.reader_ends();
        assert!(t.reader_begins());
    }
}
