//! The server handle itself: the core behind its lock, the condition
//! variable waits sleep on, the effect queue and the one-thread-at-a-time
//! drain that carries effects out after the lock is released (so a slow
//! peer or a slow terminal never holds up another peer), and the receive
//! thread's handle.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use super::base::{Interruption, Printer, ServerError};
use super::capture::{CaptureSink, Wire};
use super::core::{Core, Effect};
use crate::exchange::{Exchanges, TransmissionParams};
use crate::transport::Security;

/// Listening settings that are not protocol state.
#[derive(Default)]
pub(super) struct Config {
    /// The DTLS security `listen` falls back to (from the command line).
    pub(super) default_security: Option<Security>,
    /// Whether `listen` serves TCP when not told (the command line's `--tcp`).
    pub(super) default_tcp: bool,
    pub(super) listen_port: Option<u16>,
    /// Fault injection (`set loss=…`), applied to every socket bound.
    pub(super) faults: crate::transport::FaultSettings,
    /// The socket is the DTLS one a `connect` with DTLS arguments opened,
    /// not one `listen` opened: a plain `connect` replaces it.
    pub(super) dtls_by_connect: bool,
}

pub(crate) struct Shared {
    pub(super) core: Mutex<Core>,
    pub(super) changed: Condvar,
    /// Bumped with every `changed` notification, so a waiter can spin
    /// briefly on it before sleeping.
    pub(super) version: AtomicU64,
    /// Commands waiting for a change of the core (a response, a message):
    /// while one waits, the receiving thread hands a datagram to the core
    /// itself instead of queueing it for the worker.
    pub(super) waiting: AtomicUsize,
    /// Waiters asleep on `changed` (a notification wakes only when there
    /// are: waking nobody still costs a system call).
    pub(super) sleepers: AtomicUsize,
    /// Effects released by the core, carried out in order by one thread at
    /// a time (the holder of `drain`).
    pub(super) outbox: Mutex<VecDeque<Effect>>,
    /// Held by the thread carrying out effects; the queue it works through.
    pub(super) drain: Mutex<VecDeque<Effect>>,
    pub(super) driver: Mutex<Option<Driver>>,
    pub(super) config: Mutex<Config>,
    pub(super) printer: Mutex<Printer>,
    /// Repeated lines of the effect queue, summed up.
    pub(super) flood: Mutex<crate::lwm2m::flood::Flood>,
    pub(super) interrupt: Arc<AtomicBool>,
    /// Why the waits were interrupted, when whoever did it said.
    pub(super) interruption: Mutex<Option<Interruption>>,
    /// Waits end at once, though the script goes on (the device is gone).
    pub(super) waits_stopped: AtomicBool,
    /// The running capture, fed from the drain.
    pub(super) capture: Mutex<Option<Box<dyn CaptureSink>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Buffered capture bytes reach the file when the last handle goes.
        let sink = self.capture.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(mut sink) = sink.take() {
            let _ = sink.finish();
        }
        // Lines still counted are summed up before the server goes.
        let summaries = self
            .flood
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take_all();
        let printer = self.printer.get_mut().unwrap_or_else(|p| p.into_inner());
        for line in summaries {
            printer(&line);
        }
    }
}

/// The server handle shared by the prompt, scripts and the receiver thread.
#[derive(Clone)]
pub struct Server {
    pub(super) shared: Arc<Shared>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The core, locked; when released, what the core queued is carried out.
pub(crate) struct CoreGuard<'a> {
    server: &'a Server,
    guard: Option<MutexGuard<'a, Core>>,
}

impl Deref for CoreGuard<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        // Always Some until drop.
        self.guard.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for CoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Core {
        self.guard.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for CoreGuard<'_> {
    fn drop(&mut self) {
        let Some(mut core) = self.guard.take() else {
            return;
        };
        if !core.has_effects() {
            return;
        }
        // Queued before the core is released, so effects keep the order
        // in which the core produced them, across threads.
        core.drain_effects(&mut lock(&self.server.shared.outbox), SystemTime::now());
        drop(core);
        self.server.drain();
    }
}

/// A running receive thread (see `super::driver`).
pub(super) struct Driver {
    pub(super) stop: Arc<AtomicBool>,
    pub(super) handle: Option<JoinHandle<()>>,
    /// Who reads the socket (see `driver::receive_here`).
    pub(super) turn: Arc<super::turn::Turn>,
}

impl Driver {
    /// Stops the thread and waits for it (at most one receive tick plus
    /// what it was doing).
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

impl Server {
    /// A server that is not listening yet.
    pub fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x1337);
        let printer: Printer = Arc::new(|line: &str| println!("{line}"));
        Server {
            shared: Arc::new(Shared {
                core: Mutex::new(Core::new(Exchanges::new(
                    TransmissionParams::default(),
                    seed,
                ))),
                changed: Condvar::new(),
                version: AtomicU64::new(0),
                waiting: AtomicUsize::new(0),
                sleepers: AtomicUsize::new(0),
                outbox: Mutex::new(VecDeque::new()),
                drain: Mutex::new(VecDeque::new()),
                driver: Mutex::new(None),
                config: Mutex::new(Config::default()),
                printer: Mutex::new(printer),
                flood: Mutex::new(crate::lwm2m::flood::Flood::default()),
                interrupt: Arc::new(AtomicBool::new(false)),
                interruption: Mutex::new(None),
                waits_stopped: AtomicBool::new(false),
                capture: Mutex::new(None),
            }),
        }
    }

    /// The core, locked; effects are carried out when the guard drops.
    pub(crate) fn lock(&self) -> CoreGuard<'_> {
        CoreGuard {
            server: self,
            guard: Some(lock(&self.shared.core)),
        }
    }

    /// The core, locked, for reading or for the drainer (which moves the
    /// effects itself).
    pub(super) fn lock_raw(&self) -> MutexGuard<'_, Core> {
        lock(&self.shared.core)
    }

    /// Routes output lines somewhere else (the prompt's external printer).
    pub fn set_printer(&self, printer: Printer) {
        *lock(&self.shared.printer) = printer;
    }

    pub(crate) fn print(&self, line: &str) {
        let printer = lock(&self.shared.printer).clone();
        printer(line);
    }

    /// Prints `line` unless lines of its kind flood in (see `crate::lwm2m::flood`).
    fn print_summarised(&self, line: &str) {
        let admitted = lock(&self.shared.flood).admit(line, Instant::now());
        if let Some(summary) = admitted.summary {
            self.print(&summary);
        }
        if admitted.show {
            self.print(line);
        }
    }

    /// Prints the summaries of repeated lines whose second is over (all of
    /// them with `all`).
    pub(super) fn print_due_summaries(&self, all: bool) {
        let due = {
            let mut flood = lock(&self.shared.flood);
            if all {
                flood.take_all()
            } else {
                flood.due(Instant::now())
            }
        };
        for line in due {
            self.print(&line);
        }
    }

    /// The flag Ctrl-C sets; waits and loops check it.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.shared.interrupt.clone()
    }

    pub(super) fn interrupted(&self) -> bool {
        self.shared.interrupt.load(Ordering::SeqCst)
            || self.shared.waits_stopped.load(Ordering::SeqCst)
    }

    /// Interrupts, saying why (`nsh test`'s --timeout, a signal, the exit
    /// of the device): with [`Interruption::waits_only`] only the waits for
    /// the network end, at once and from then on, and the script goes on;
    /// otherwise the interrupt flag is set, which ends the script too.
    pub fn interrupt(&self, why: Interruption) {
        let waits_only = why.waits_only;
        *lock(&self.shared.interruption) = Some(why);
        if waits_only {
            self.shared.waits_stopped.store(true, Ordering::SeqCst);
        } else {
            self.shared.interrupt.store(true, Ordering::SeqCst);
        }
        self.shared.changed.notify_all();
    }

    /// Why the server was interrupted, while it is (see
    /// [`Server::interrupt`]); `None` after a plain Ctrl-C.
    pub fn interruption(&self) -> Option<Interruption> {
        if self.interrupted() {
            lock(&self.shared.interruption).clone()
        } else {
            None
        }
    }

    pub(crate) fn notify_all(&self) {
        self.shared.version.fetch_add(1, Ordering::SeqCst);
        // A sleeper counts itself before it releases the core to sleep, and
        // every change is made under the core's lock before this is called.
        if self.shared.sleepers.load(Ordering::SeqCst) > 0 {
            self.shared.changed.notify_all();
        }
    }

    /// Carries out queued effects until none is left, unless another thread
    /// is at it (it then does ours too). Called after every release of the
    /// core; never with the core locked.
    pub(super) fn drain(&self) {
        loop {
            let Ok(mut batch) = self.shared.drain.try_lock() else {
                return;
            };
            let mut captured = false;
            loop {
                // The queues trade places: neither is allocated anew.
                std::mem::swap(&mut *batch, &mut *lock(&self.shared.outbox));
                if batch.is_empty() {
                    break;
                }
                while let Some(effect) = batch.pop_front() {
                    captured |= matches!(effect, Effect::Capture(..));
                    self.carry_out(effect, &mut batch);
                }
            }
            drop(batch);
            if captured {
                self.capture_flush();
            }
            self.notify_all();
            if lock(&self.shared.outbox).is_empty() {
                return;
            }
        }
    }

    /// Carries out `effect`. What a transmission leads to (its line, the
    /// next queued request) goes to the front of `batch`, before anything
    /// queued later.
    fn carry_out(&self, effect: Effect, batch: &mut VecDeque<Effect>) {
        match effect {
            Effect::Print(line) => {
                self.print_summarised(&line);
            }
            Effect::Show(record, suffix) => {
                let line = record.line();
                match suffix {
                    Some(s) => self.print_summarised(&format!("{line}{s}")),
                    None => self.print_summarised(&line),
                }
            }
            Effect::Capture(record, transport) => {
                self.capture_record(&record, &transport);
            }
            Effect::Close(transport, peer, why) => {
                transport.close_after_sending(peer, &why);
            }
            Effect::Transmit(out) => {
                let result = out.transport.send_to(&out.raw, out.peer);
                let mut core = self.lock_raw();
                // The outcome reaches a waiting sender through `take_sent`.
                let _ = core.on_sent(out, result, SystemTime::now());
                if core.has_effects() {
                    let mut follow = VecDeque::new();
                    core.drain_effects(&mut follow, SystemTime::now());
                    for e in follow.into_iter().rev() {
                        batch.push_front(e);
                    }
                }
            }
        }
    }

    /// Hands `record` to the running capture; a write error ends the
    /// capture with one printed line.
    fn capture_record(
        &self,
        record: &super::history::Record,
        transport: &crate::transport::Transport,
    ) {
        self.with_capture(|sink| sink.write(record, &Wire::of(transport, record.peer)));
    }

    /// Writes out what the running capture buffered (after a batch of
    /// records), so that the file can be read while nsh runs.
    fn capture_flush(&self) {
        self.with_capture(|sink| sink.flush());
    }

    /// Runs `op` on the running capture, if one runs; an error ends the
    /// capture with one printed line.
    fn with_capture(&self, op: impl FnOnce(&mut Box<dyn CaptureSink>) -> std::io::Result<()>) {
        let failed = {
            let mut capture = lock(&self.shared.capture);
            let Some(sink) = capture.as_mut() else {
                return;
            };
            match op(sink) {
                Ok(()) => None,
                Err(e) => capture.take().map(|_| e),
            }
        };
        if let Some(e) = failed {
            self.lock_raw().session.set_capturing(false);
            self.print(&format!("capture stopped: cannot write: {e}"));
        }
    }

    /// Starts capturing every datagram sent and received into `sink`,
    /// ending an earlier capture first.
    pub fn capture_with(&self, sink: Box<dyn CaptureSink>) -> Result<(), ServerError> {
        self.capture_stop()?;
        *lock(&self.shared.capture) = Some(sink);
        self.lock().session.set_capturing(true);
        Ok(())
    }

    /// Ends the running capture, writing out what is buffered. Returns
    /// whether one was running.
    pub fn capture_stop(&self) -> Result<bool, ServerError> {
        // A transmission being carried out now is recorded, and captured,
        // before the drainer lets go.
        drop(lock(&self.shared.drain));
        self.lock().session.set_capturing(false);
        // Records already queued for the capture go in first.
        self.drain();
        let sink = lock(&self.shared.capture).take();
        match sink {
            Some(mut sink) => {
                sink.finish()?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Whether a capture is running.
    pub fn capturing(&self) -> bool {
        lock(&self.shared.capture).is_some()
    }
}
