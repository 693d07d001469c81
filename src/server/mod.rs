//! The server handle shared by the prompt, scripts and the receive thread.
//! Knows nothing of Rhai.
//!
//! Its rooms, one file each:
//! - [`core`]: the sans-IO state machine (exchanges, registrations, the
//!   session), driven by datagrams, timers and the user's sends;
//! - `registrar`: the LwM2M answer to a new message, a pure function;
//! - `session`: history, inbox, payload buffer, expectations (bounded);
//! - `base`: errors, flags, deadlines: the vocabulary every file shares;
//! - `handle`: the handle's parts — the locked core, the condition
//!   variable, and the effect queue that carries out sends and prints
//!   outside the lock;
//! - `driver`: the receive threads;
//! - [`names`]: the "did you mean …?" of a mistyped client, command or
//!   option name;
//! - `inject`: one datagram handed to the core on the caller's thread
//!   (the receive path without a socket or a thread);
//! - [`capture`]: the hook a running capture (`report::pcapng`) is fed
//!   through;
//! - this file: what the handle offers — listening, sending and waiting.
//!
//! Script commands run on their own thread and wait on a condition
//! variable for their response, woken by every change of the core.

pub mod history;
pub mod registry;

mod base;
pub mod capture;
pub(crate) mod core;
mod driver;
mod handle;
mod inject;
pub mod names;
mod registrar;
pub(crate) mod session;
#[cfg(test)]
mod tests;
mod turn;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::coap::{Message, OptionNumber, tcp, udp};
use crate::exchange::{Block2Assembly, BlockProgress, Progress, RequestId, TransmissionParams};
use crate::lwm2m::kind;
use crate::transport::{FaultSettings, Security, Transport};

use self::core::{Core, Ended, Submitted};
use handle::lock;

pub use crate::lwm2m::flood::grouped;
pub(crate) use base::RegistryContext;
pub use base::{Flags, Interruption, Printer, ServerError, deadline_after};
pub use capture::{CaptureSink, Link, Wire};
pub use handle::Server;

pub use history::{Direction, Record, RecordRef, Role};

/// An observation nsh holds, as `observations` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveObservation {
    /// The token its notifications carry.
    pub token: Vec<u8>,
    /// The observed path (`/3303/0/5700`; empty for a composite one).
    pub path: String,
    /// The device that notifies.
    pub peer: SocketAddr,
    /// The endpoint name registered from `peer`, if any.
    pub endpoint: Option<std::sync::Arc<str>>,
}
pub use registry::{Client, Registry};
pub use session::{
    Check, DEFAULT_HISTORY_LIMIT, DEFAULT_INBOX_LIMIT, Expectation, PAYLOAD_BUFFER_LIMIT,
};

/// The wait of incoming messages and handshakes when nothing was set.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// The longest a CON request over UDP or DTLS waits by default:
/// MAX_TRANSMIT_WAIT (RFC 7252 §4.8.2, 93 s with the default parameters)
/// plus one ACK_TIMEOUT. A response to any of the request's retransmissions
/// arrives within it; a peer that answers none is reported when the
/// exchange gives up after its last retransmission's timeout, at most
/// MAX_TRANSMIT_WAIT after the first transmission. The extra ACK_TIMEOUT
/// covers the round trip of the last retransmission and bounds a separate
/// response after an empty ACK.
pub fn auto_request_wait(params: &TransmissionParams) -> Duration {
    params
        .max_transmit_wait()
        .saturating_add(params.ack_timeout)
}

/// What a send produced: the record of the first transmission (absent when
/// the exchange layer queued it behind an outstanding CON) and the matched
/// response when the call waited.
#[derive(Clone, Debug)]
pub struct Sent {
    /// The sent message as recorded.
    pub sent: Option<RecordRef>,
    /// The response.
    pub response: Option<RecordRef>,
}

/// Options of one request.
#[derive(Clone, Copy, Debug)]
pub struct SendOptions {
    /// Fill the message ID from the per-peer sequence.
    pub fill_message_id: bool,
    /// Fill an 8-byte random token.
    pub fill_token: bool,
    /// Wait this long for the matching response (`None`: do not wait).
    pub wait: Option<Duration>,
}

impl Server {
    /// Starts listening on `port` (0 = any free port); replaces any earlier
    /// socket. Returns the bound port.
    pub fn listen(&self, port: u16, ipv6: bool) -> Result<u16, ServerError> {
        self.listen_secure(port, ipv6, None)
    }

    /// Like [`Server::listen`], serving DTLS 1.2 when `security` is given.
    pub fn listen_secure(
        &self,
        port: u16,
        ipv6: bool,
        security: Option<&Security>,
    ) -> Result<u16, ServerError> {
        self.attach(Transport::bind(port, ipv6, security)?)
    }

    /// Starts listening for CoAP over TCP (RFC 8323) on `port` (0 = any
    /// free port), over TLS 1.2 when `security` is given; replaces any
    /// earlier socket. Returns the bound port.
    pub fn listen_tcp(
        &self,
        port: u16,
        ipv6: bool,
        security: Option<&Security>,
    ) -> Result<u16, ServerError> {
        self.attach(Transport::bind_tcp(port, ipv6, security)?)
    }

    /// Serves on `transport` (a bound socket, or an in-memory one in
    /// tests), replacing and stopping any earlier one. Returns its port.
    pub fn attach(&self, transport: Transport) -> Result<u16, ServerError> {
        let transport = Arc::new(transport);
        let bound = transport.local_addr()?.port();
        if let Some(f) = transport.faults() {
            f.configure(lock(&self.shared.config).faults.clone());
        }
        let driver = driver::spawn(self, transport.clone())?;
        let old = lock(&self.shared.driver).replace(driver);
        if let Some(old) = old {
            old.stop();
        }
        {
            let mut core = self.lock();
            core.replace_transport(transport);
        }
        let mut config = lock(&self.shared.config);
        config.listen_port = Some(bound);
        config.dtls_by_connect = false;
        Ok(bound)
    }

    /// The fault injection settings (`set loss=…`; off by default).
    pub fn faults(&self) -> FaultSettings {
        lock(&self.shared.config).faults.clone()
    }

    /// Replaces the fault injection settings of this and every later
    /// socket; the PRNGs start over from the seed.
    pub fn set_faults(&self, settings: FaultSettings) {
        lock(&self.shared.config).faults = settings.clone();
        let transport = self.lock_raw().transport.clone();
        if let Some(f) = transport.as_ref().and_then(|t| t.faults()) {
            f.configure(settings);
        }
    }

    /// Moves the listening UDP or DTLS socket to a new free port
    /// (`rebind`): peers see nsh's datagrams come from it, and what they
    /// send to the old port is no longer read. Sessions, registrations and
    /// exchanges stay. Returns the new port.
    pub fn rebind(&self) -> Result<u16, ServerError> {
        let transport = self
            .lock_raw()
            .transport
            .clone()
            .ok_or(ServerError::NotListening)?;
        let port = transport.rebind()?.port();
        lock(&self.shared.config).listen_port = Some(port);
        Ok(port)
    }

    /// Stops listening: the receive thread ends and the socket closes (TCP
    /// connections with it). Registrations, history and inbox stay. Safe to
    /// call more than once.
    pub fn shutdown(&self) {
        let driver = lock(&self.shared.driver).take();
        if let Some(d) = driver {
            d.stop();
        }
        self.print_due_summaries(true);
        self.lock().transport = None;
        lock(&self.shared.config).listen_port = None;
        self.notify_all();
    }

    /// The DTLS security `listen` falls back to (the command line's
    /// `-i`/`-k`, certificate and other DTLS flags).
    pub fn set_default_security(&self, security: Option<Security>) {
        lock(&self.shared.config).default_security = security;
    }

    /// See [`Server::set_default_security`].
    pub fn default_security(&self) -> Option<Security> {
        lock(&self.shared.config).default_security.clone()
    }

    /// The DTLS security of the socket `listen` opened (the command line's
    /// `-l` included), which a `connect` without DTLS arguments uses;
    /// `None` for a plain socket or one a DTLS `connect` opened.
    pub fn listening_security(&self) -> Option<Security> {
        if lock(&self.shared.config).dtls_by_connect {
            return None;
        }
        self.security()
    }

    /// The DTLS settings of the listening socket, when it serves DTLS.
    pub fn security(&self) -> Option<Security> {
        self.lock_raw()
            .transport
            .as_ref()
            .and_then(|t| t.security().cloned())
    }

    /// Whether `listen` serves TCP when not told (the command line's `--tcp`).
    pub fn set_default_tcp(&self, tcp: bool) {
        lock(&self.shared.config).default_tcp = tcp;
    }

    /// See [`Server::set_default_tcp`].
    pub fn default_tcp(&self) -> bool {
        lock(&self.shared.config).default_tcp
    }

    /// Whether the listening socket is TCP.
    pub fn is_tcp(&self) -> bool {
        self.lock_raw()
            .transport
            .as_ref()
            .is_some_and(|t| t.is_reliable())
    }

    /// The CSM (7.01) a TCP peer sent last, if any.
    pub fn peer_csm(&self, peer: SocketAddr) -> Option<RecordRef> {
        self.lock_raw().peer_csm(peer)
    }

    /// Sets the address commands are sent to (`connect HOST PORT`) over
    /// UDP; binds an ephemeral (or `bind`) port first when not listening on
    /// UDP.
    pub fn connect(&self, host: &str, port: u16, bind: u16) -> Result<SocketAddr, ServerError> {
        let addr = resolve(host, port)?;
        let listening = self.lock_raw().transport.is_some();
        let secured_by_connect = lock(&self.shared.config).dtls_by_connect;
        // A UDP peer is not reached through a TCP socket (`tcp=0` while
        // listening over TCP).
        if !listening || bind != 0 || secured_by_connect || self.is_tcp() {
            self.listen(bind, addr.is_ipv6())?;
        }
        self.lock().choose(Some(addr), None);
        Ok(addr)
    }

    /// Like [`Server::connect`] over TCP (RFC 8323): opens a connection to
    /// the peer as its client and waits up to `timeout` for it (nsh's CSM
    /// is its first message, as on a connection nsh accepts). The socket is
    /// replaced by a plain TCP one on `bind` unless it already is one; a
    /// connection open already (a client that connected to nsh) is used.
    pub fn connect_tcp(
        &self,
        host: &str,
        port: u16,
        bind: u16,
        timeout: Duration,
    ) -> Result<SocketAddr, ServerError> {
        let addr = resolve(host, port)?;
        let current = self.lock_raw().transport.clone();
        if let Some(t) = &current
            && t.is_reliable()
            && bind == 0
        {
            if t.dial_state(addr) == crate::transport::tcp::Dial::Open {
                self.lock().choose(Some(addr), None);
                return Ok(addr);
            }
            if t.security().is_some() {
                return Err(ServerError::Io(std::io::Error::other(format!(
                    "{addr} is not connected to nsh, and nsh opens no TLS connection over TCP (coaps+tcp) as the client"
                ))));
            }
        }
        let reuse = bind == 0
            && current
                .as_ref()
                .is_some_and(|t| t.is_reliable() && t.security().is_none());
        if !reuse {
            self.listen_tcp(bind, addr.is_ipv6(), None)?;
            lock(&self.shared.config).dtls_by_connect = false;
        }
        let transport = self
            .lock_raw()
            .transport
            .clone()
            .ok_or(ServerError::NotListening)?;
        let failed = |why: String| {
            ServerError::Io(std::io::Error::other(format!(
                "no TCP connection to {addr}: {why}"
            )))
        };
        transport.dial(addr).map_err(|e| failed(e.to_string()))?;
        let deadline = Instant::now() + timeout;
        self.await_connection(addr, || {
            let open = match transport.dial_state(addr) {
                // Once nsh's CSM is queued: it is the first message (RFC
                // 8323 §5.3), before any request of the caller's.
                crate::transport::tcp::Dial::Open => self.lock_raw().csm_sent(addr),
                crate::transport::tcp::Dial::Failed(why) => return Err(failed(why)),
                crate::transport::tcp::Dial::Pending => false,
            };
            if !open && Instant::now() >= deadline {
                return Err(failed(format!(
                    "not connected within {:.1} s",
                    timeout.as_secs_f64()
                )));
            }
            Ok(open)
        })
    }

    /// Like [`Server::connect`], then opens a DTLS session to the peer as
    /// the client and waits up to `timeout` for the handshake; a failure
    /// says why (the server's alert, ICMP unreachable, or where it
    /// stalled). The socket
    /// is replaced by a DTLS one on `bind` unless it already serves DTLS
    /// with `security`.
    pub fn connect_secure(
        &self,
        host: &str,
        port: u16,
        bind: u16,
        security: &Security,
        timeout: Duration,
    ) -> Result<SocketAddr, ServerError> {
        let addr = resolve(host, port)?;
        let current = self.lock_raw().transport.clone();
        let reuse = bind == 0
            && current
                .as_ref()
                .and_then(|t| t.security())
                .is_some_and(|s| s == security);
        if !reuse {
            self.listen_secure(bind, addr.is_ipv6(), Some(security))?;
            lock(&self.shared.config).dtls_by_connect = true;
        }
        let transport = self
            .lock_raw()
            .transport
            .clone()
            .ok_or(ServerError::NotListening)?;
        transport.open_dtls(addr)?;
        let deadline = Instant::now() + timeout;
        self.await_connection(addr, || {
            if transport.dtls_established(addr) {
                return Ok(true);
            }
            if let Some(why) = transport.dtls_client_failure(addr) {
                return Err(ServerError::Io(std::io::Error::other(why)));
            }
            if Instant::now() >= deadline {
                let stall = transport
                    .dtls_client_stall(addr)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                return Err(ServerError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the DTLS handshake with {addr} did not complete within {:.1} s{stall}",
                        timeout.as_secs_f64()
                    ),
                )));
            }
            Ok(false)
        })
    }

    /// Waits for a connection or session nsh opens to `addr` as the
    /// client: `state` says whether it is up, still coming (`Ok(false)`),
    /// or failed (its own timeout included), and is asked every 5 ms;
    /// Ctrl-C ends the wait. Once it is up, `addr` is the target.
    fn await_connection(
        &self,
        addr: SocketAddr,
        mut state: impl FnMut() -> Result<bool, ServerError>,
    ) -> Result<SocketAddr, ServerError> {
        while !state()? {
            if self
                .interrupt_flag()
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                return Err(ServerError::Interrupted);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.lock().choose(Some(addr), None);
        Ok(addr)
    }

    /// Forgets the choice of target: the newest registration is current
    /// now, and the next peer that registers becomes it.
    pub fn unconnect(&self) {
        self.lock().unconnect();
    }

    /// The listening port, if any.
    pub fn listen_port(&self) -> Option<u16> {
        lock(&self.shared.config).listen_port
    }

    /// Where commands go now.
    pub fn target(&self) -> Option<SocketAddr> {
        self.lock_raw().target
    }

    /// The current client's endpoint name.
    pub fn current_client(&self) -> Option<String> {
        self.lock_raw().current.clone()
    }

    /// This server's object definitions (built-in ones plus what
    /// `load_objects` added); records decode their payloads with them.
    pub fn objects(&self) -> crate::lwm2m::Objects {
        self.lock_raw().objects.clone()
    }

    /// Registered clients.
    pub fn clients(&self) -> Vec<Client> {
        self.lock_raw().registry.clients().cloned().collect()
    }

    /// The address of the client registered as `endpoint`.
    pub fn client_peer(&self, endpoint: &str) -> Result<SocketAddr, ServerError> {
        let core = self.lock_raw();
        match core.registry.by_endpoint(endpoint) {
            Some(c) => Ok(c.peer),
            None => Err(unknown_client(&core.registry, endpoint)),
        }
    }

    /// Makes `endpoint` the current client.
    pub fn use_client(&self, endpoint: &str) -> Result<Client, ServerError> {
        let mut core = self.lock();
        let Some(client) = core.registry.by_endpoint(endpoint).cloned() else {
            return Err(unknown_client(&core.registry, endpoint));
        };
        core.choose(Some(client.peer), Some(client.endpoint.to_string()));
        Ok(client)
    }

    /// Flags of the auto-responders.
    pub fn flags(&self) -> Flags {
        self.lock_raw().flags
    }

    /// Replaces the auto-responder flags.
    pub fn set_flags(&self, flags: Flags) {
        self.lock().flags = flags;
    }

    /// CoAP transmission parameters in force.
    pub fn transmission(&self) -> TransmissionParams {
        self.lock_raw().exchanges.params().clone()
    }

    /// Replaces the CoAP transmission parameters (lifetimes re-derived).
    pub fn set_transmission(&self, params: TransmissionParams) {
        let mut core = self.lock();
        core.exchanges.set_params(params.derive_lifetimes());
        core.flush();
    }

    /// Default time a wait for an incoming message (and a DTLS handshake)
    /// lasts: `set timeout`, else 5 s.
    pub fn default_timeout(&self) -> Duration {
        self.lock_raw().default_timeout
    }

    /// `set timeout`: a hard bound on every wait, requests included; `None`
    /// goes back to the defaults (requests wait until CoAP gives up, other
    /// waits 5 s).
    pub fn set_default_timeout(&self, timeout: Option<Duration>) {
        let mut core = self.lock();
        core.default_timeout = timeout.unwrap_or(DEFAULT_WAIT);
        core.request_timeout = timeout;
    }

    /// The `set timeout` requests obey, when one was set.
    pub fn request_timeout(&self) -> Option<Duration> {
        self.lock_raw().request_timeout
    }

    /// How long a request waits for its response when its command gives
    /// no `timeout_s`: `set timeout` when set; else, for a CON that CoAP
    /// retransmits (UDP or DTLS, `retransmit=1`), [`auto_request_wait`] of
    /// the transmission parameters in force; else (NON, `retransmit=0`,
    /// TCP) [`DEFAULT_WAIT`].
    pub fn request_wait(&self, confirmable: bool) -> Duration {
        let core = self.lock_raw();
        let params = core.exchanges.params();
        let reliable = core.transport.as_ref().is_some_and(|t| t.is_reliable());
        core.request_timeout.unwrap_or_else(|| {
            if confirmable && params.retransmit && !reliable {
                auto_request_wait(params)
            } else {
                DEFAULT_WAIT
            }
        })
    }

    /// How many records the history keeps.
    pub fn history_limit(&self) -> usize {
        self.lock_raw().session.history_limit()
    }

    /// Sets how many records the history keeps (at least 1); older ones are
    /// dropped now and from then on.
    pub fn set_history_limit(&self, limit: usize) {
        self.lock().session.set_history_limit(limit);
    }

    /// Sets how many unread messages the inbox keeps (at least 1).
    pub fn set_inbox_limit(&self, limit: usize) {
        self.lock().session.set_inbox_limit(limit);
    }

    /// How many unread messages were dropped because the inbox was full.
    pub fn inbox_dropped(&self) -> u64 {
        self.lock_raw().session.inbox_dropped()
    }

    /// Sends a message to the current target. Requests (and CON messages)
    /// are tracked by the exchange layer: CONs are retransmitted, and with
    /// `wait` the call returns the matched response.
    pub fn send(&self, msg: Message, opts: SendOptions) -> Result<Sent, ServerError> {
        let peer = self.lock_raw().target_or_error()?;
        self.send_to(peer, msg, opts)
    }

    /// Sends a message to `peer` (see [`Server::send`]). The call returns
    /// once the first transmission was handed to the transport (or queued
    /// behind another request by NSTART); a datagram the transport refused
    /// is an error, and is not in the history.
    pub fn send_to(
        &self,
        peer: SocketAddr,
        msg: Message,
        opts: SendOptions,
    ) -> Result<Sent, ServerError> {
        // Before the request can go out: what the peer sends from here on
        // counts as heard since the request (see `Server::silence_hint`).
        let asked = Instant::now();
        // A Block2 transfer repeats the request: it is taken from the sent
        // record, or, for an awaited request held back by NSTART, kept here.
        let (submitted, held, sent_here) = {
            let mut core = self.lock();
            let in_place = if opts.wait.is_some() && opts.fill_message_id && opts.fill_token {
                self.send_in_place(&mut core, peer, msg)
            } else {
                Err(msg)
            };
            match in_place {
                Ok((id, outcome)) => {
                    let submitted = Submitted {
                        id: Some(id),
                        transmission: None,
                    };
                    (submitted, None, Some(outcome))
                }
                Err(msg) => {
                    let submitted = core.submit(
                        peer,
                        msg,
                        opts.fill_message_id,
                        opts.fill_token,
                        opts.wait.is_some(),
                        Instant::now(),
                    )?;
                    let held = match (submitted.transmission, submitted.id, opts.wait) {
                        (None, Some(id), Some(_)) => core.exchanges.pending_message(id).cloned(),
                        _ => None,
                    };
                    (submitted, held, None)
                }
            }
        };
        // The guard above carried out the transmission, or the thread that
        // was at it does (it wakes the waiters when done).
        let sent = match (sent_here, submitted.transmission) {
            (Some(Ok(record)), _) => Some(record),
            (Some(Err(e)), _) => return Err(ServerError::SendFailed(e)),
            (None, Some(seq)) => match self.wait_until(None, |core| core.take_sent(seq))? {
                Some(Ok(record)) => Some(record),
                Some(Err(e)) => return Err(ServerError::SendFailed(e)),
                None => None,
            },
            (None, None) => None,
        };
        let (Some(id), Some(wait)) = (submitted.id, opts.wait) else {
            return Ok(Sent {
                sent,
                response: None,
            });
        };
        // Worded only when needed: what the error names.
        let summary = || {
            sent.as_ref().map_or_else(
                || "a request queued behind another".to_string(),
                |r| r.summary(),
            )
        };
        let mut response = self.wait_response(peer, id, asked, wait, &summary)?;
        let more = response
            .message
            .as_ref()
            .ok()
            .and_then(Message::block2)
            .is_some_and(|b| b.more);
        let request = held
            .as_ref()
            .or_else(|| sent.as_ref().and_then(|r| r.message.as_ref().ok()))
            .filter(|m| m.code.is_request());
        if let (true, Some(request)) = (more, request)
            && response.message.as_ref().is_ok_and(|m| m.code.class() == 2)
        {
            response = self.complete_block2(peer, id, request, response, wait, &summary)?;
        }
        Ok(Sent {
            sent,
            response: Some(response),
        })
    }

    /// Sends awaited request `msg` to `peer` at once, before its
    /// bookkeeping, when the core says it can go so ([`Core::ready_now`]),
    /// without releasing `core`; only while no other thread carries effects
    /// out and none waits to be, so they keep their order. Returns its
    /// exchange and its record (or why the transport refused it), or
    /// `Err(msg)` for [`Core::submit`].
    fn send_in_place(
        &self,
        core: &mut Core,
        peer: SocketAddr,
        msg: Message,
    ) -> Result<(RequestId, Result<RecordRef, String>), Message> {
        let drain = self.shared.drain.try_lock().ok();
        let nothing_queued = drain.is_some() && lock(&self.shared.outbox).is_empty();
        let ready = core.ready_now(peer, msg, nothing_queued)?;
        let result = ready.transport.send_to(&ready.raw, peer);
        let left = SystemTime::now();
        Ok(core.sent_now(peer, ready, result, Instant::now(), left))
    }

    /// Completes a Block2 transfer (RFC 7959 §2.4): asks for each following
    /// block, and returns a record of the whole body (not in the history,
    /// which keeps the real datagrams), printed as `<- … (assembled …)`.
    /// Prints its progress as write_file does ([`Progress`]: each tenth of
    /// the Size2 the server gave, with the block number), and an error
    /// that stops it says at which block and how much had arrived.
    fn complete_block2(
        &self,
        peer: SocketAddr,
        first_id: RequestId,
        request: &Message,
        first: RecordRef,
        wait: Duration,
        summary: &dyn Fn() -> String,
    ) -> Result<RecordRef, ServerError> {
        let mut assembly = Block2Assembly::new();
        let mut progress = Progress::new(summary(), "received", None);
        let mut last = first.clone();
        let mut last_id = first_id;
        let mut blocks = 0;
        while let Ok(m) = &last.message {
            blocks += 1;
            if let Some(size2) = m
                .uint_option(OptionNumber::SIZE2)
                .and_then(|n| usize::try_from(n).ok())
            {
                progress.set_total(size2);
            }
            let next_num = match assembly.push(m) {
                Ok(BlockProgress::Complete) => break,
                Ok(BlockProgress::Next(b)) => b.num,
                Err(e) => {
                    let moved = progress.moved(assembly.body().len());
                    return Err(ServerError::Block(format!("{e} ({moved})")));
                }
            };
            if let Some(line) = progress.after(next_num.saturating_sub(1), assembly.body().len()) {
                self.print(&line);
            }
            let asked = Instant::now();
            let next = self.lock().next_block2(peer, last_id, request, m, asked);
            let Some(next) = next else { break };
            last = self
                .wait_response(peer, next, asked, wait, summary)
                .map_err(|e| match e {
                    ServerError::Interrupted => e,
                    e => ServerError::Stopped {
                        error: Box::new(e),
                        at: progress.at(next_num, assembly.body().len()),
                    },
                })?;
            last_id = next;
        }
        let record = self
            .lock_raw()
            .assembled(peer, &first, assembly.into_body(), last.at);
        if self.lock_raw().flags.print_messages {
            self.print(&format!(
                "{} (assembled from {blocks} blocks)",
                record.line()
            ));
        }
        Ok(record)
    }

    /// Waits up to `wait` for the response to request `id` to `peer`, which
    /// was handed over for sending at `asked`; a request unanswered says
    /// what else is known (see [`Server::silence_hint`]).
    fn wait_response(
        &self,
        peer: SocketAddr,
        id: RequestId,
        asked: Instant,
        wait: Duration,
        summary: &dyn Fn() -> String,
    ) -> Result<RecordRef, ServerError> {
        let outcome = self.wait_until(deadline_after(Instant::now(), wait), |core| {
            core.take_outcome(id)
        });
        match outcome {
            Ok(Some(Ok(r))) => Ok(r),
            Ok(Some(Err(Ended::GaveUp(mistokened)))) => {
                let attempts = self.lock_raw().exchanges.params().max_retransmit + 1;
                let also = mistokened
                    .map(|(n, last)| {
                        let times = if n == 1 { "once".to_string() } else { format!("{n} times") };
                        format!(
                            "; it was answered {times} with another token, which answers nothing (RFC 7252 §5.3.2): {}",
                            last.line()
                        )
                    })
                    .unwrap_or_default();
                Err(ServerError::GaveUp {
                    summary: summary(),
                    attempts,
                    also: format!("{also}{}", self.silence_hint(peer, asked)),
                })
            }
            Ok(Some(Err(Ended::SendFailed(e)))) => Err(ServerError::SendFailed(e)),
            Ok(Some(Err(Ended::Closed(why)))) => Err(ServerError::Closed {
                summary: summary(),
                why,
            }),
            Ok(None) => {
                let acknowledged = {
                    let mut core = self.lock();
                    let acknowledged = core.exchanges.acknowledged(id);
                    core.abandon(id);
                    acknowledged
                };
                let also = if acknowledged {
                    "; the device acknowledged it with an empty ACK, so a separate response was due, and none came (RFC 7252 §5.2.2)"
                } else {
                    ""
                };
                Err(ServerError::Timeout {
                    summary: summary(),
                    timeout: wait.as_secs_f64(),
                    also: format!("{also}{}", self.silence_hint(peer, asked)),
                })
            }
            Err(e) => {
                self.lock().abandon(id);
                Err(e)
            }
        }
    }

    /// For a request to `peer` over nsh's DTLS client session (`connect`)
    /// that went unanswered since `asked`: `; ` and why that may be, when
    /// nothing at all came from the server meanwhile, or it spoke outside
    /// the session (see [`Transport::dtls_client_silence`]); empty
    /// otherwise.
    fn silence_hint(&self, peer: SocketAddr, asked: Instant) -> String {
        let transport = self.lock_raw().transport.clone();
        transport
            .and_then(|t| t.dtls_client_silence(peer, asked))
            .map(|hint| format!("; {hint}"))
            .unwrap_or_default()
    }

    /// Sends raw bytes to the current target, bypassing CoAP (recorded as a
    /// sent datagram once the transport took it).
    pub fn send_raw(&self, bytes: &[u8]) -> Result<RecordRef, ServerError> {
        let (peer, transport) = {
            let core = self.lock_raw();
            let peer = core.target_or_error()?;
            let transport = core.transport.clone().ok_or(ServerError::NotListening)?;
            (peer, transport)
        };
        transport.send_to(bytes, peer)?;
        let mut core = self.lock();
        let message = if transport.is_reliable() {
            tcp::decode(bytes)
        } else {
            udp::decode(bytes)
        };
        let kind = message
            .as_ref()
            .ok()
            .map(|m| kind::classify(m, &RegistryContext(&core.registry)));
        let objects = core.objects.clone();
        let endpoint = core.registry.endpoint_of(peer);
        Ok(core.session.push(Record {
            seq: 0,
            direction: Direction::Sent,
            peer,
            at: SystemTime::now(),
            raw: bytes.to_vec(),
            reliable: transport.is_reliable(),
            message,
            kind,
            role: Role::Outgoing,
            observed_path: None,
            request_path: None,
            fresh: None,
            note: None,
            objects,
            identity: None,
            endpoint,
        }))
    }

    /// Takes the next unconsumed incoming message, waiting up to `timeout`.
    pub fn recv(&self, timeout: Duration) -> Result<Option<RecordRef>, ServerError> {
        self.wait_inbox(timeout, |_| true).map(|r| r.ok())
    }

    /// The first message received from now on, waiting up to `timeout`
    /// (any message, answers and strays included, as an armed
    /// [`Expectation::Nothing`] sees them); `None` when none came.
    pub fn wait_arrival(&self, timeout: Duration) -> Result<Option<RecordRef>, ServerError> {
        let mark = self.history_mark();
        self.first_received_since(mark, deadline_after(Instant::now(), timeout))
    }

    /// The first message received since `mark`, waiting until `deadline`
    /// (none: until one comes or Ctrl-C).
    fn first_received_since(
        &self,
        mark: u64,
        deadline: Option<Instant>,
    ) -> Result<Option<RecordRef>, ServerError> {
        self.wait_until(deadline, |core| {
            core.session
                .history()
                .rev()
                .take_while(|r| r.seq >= mark)
                .filter(|r| r.direction == Direction::Received)
                .last()
                .cloned()
        })
    }

    /// Takes the first incoming message `matches` accepts, waiting up to
    /// `timeout`; others stay queued. On timeout returns what arrived
    /// meanwhile (unconsumed).
    pub fn wait_inbox(
        &self,
        timeout: Duration,
        matches: impl Fn(&Record) -> bool,
    ) -> Result<Result<RecordRef, Vec<RecordRef>>, ServerError> {
        // Each message is tested once: later wake-ups look only at what
        // arrived since (the inbox keeps arrival order).
        let mut checked = 0u64;
        let found = self.wait_until(deadline_after(Instant::now(), timeout), |core| {
            let inbox = core.session.inbox_mut();
            let start = inbox.partition_point(|r| r.seq <= checked);
            let at = (start..inbox.len()).find(|&i| matches(&inbox[i]));
            checked = inbox.back().map_or(checked, |r| r.seq.max(checked));
            inbox.remove(at?)
        })?;
        Ok(found.ok_or_else(|| self.pending()))
    }

    /// Waits, woken by every change of the core, until `poll` yields a
    /// value, the deadline passes (`Ok(None)`; no deadline: wait on) or
    /// Ctrl-C is pressed.
    fn wait_until<T>(
        &self,
        deadline: Option<Instant>,
        mut poll: impl FnMut(&mut Core) -> Option<T>,
    ) -> Result<Option<T>, ServerError> {
        // Where the socket can be polled, the waiting command reads it
        // itself (see `driver::receive_here`). Elsewhere a response usually
        // follows within a fraction of a millisecond on a local network:
        // yielding that long while watching the change counter saves the
        // sleep and wake-up of the waiting thread. Then it sleeps.
        const SPIN: Duration = Duration::from_millis(1);
        const SLICE: Duration = Duration::from_millis(50);
        let _waiting = Waiting::new(&self.shared.waiting);
        let turn = lock(&self.shared.driver).as_ref().map(|d| d.turn.clone());
        let started = Instant::now();
        let mut core = self.lock_raw();
        let transport = core.transport.clone();
        loop {
            if let Some(v) = poll(&mut core) {
                return Ok(Some(v));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            if self.interrupted() {
                return Err(ServerError::Interrupted);
            }
            let slice = deadline.map_or(SLICE, |d| (d - now).min(SLICE));
            let seen = self.shared.version.load(Ordering::Acquire);
            drop(core);
            // The waiting command reads the socket itself where it can.
            if let (Some(turn), Some(transport)) = (&turn, &transport)
                && driver::receive_here(self, transport, turn, slice)
            {
                core = self.lock_raw();
                continue;
            }
            if now - started < SPIN {
                while self.shared.version.load(Ordering::Acquire) == seen
                    && started.elapsed() < SPIN
                {
                    std::thread::yield_now();
                }
                core = self.lock_raw();
                continue;
            }
            core = self.lock_raw();
            if self.shared.version.load(Ordering::Acquire) != seen {
                continue;
            }
            self.shared.sleepers.fetch_add(1, Ordering::SeqCst);
            core = self
                .shared
                .changed
                .wait_timeout(core, slice)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            self.shared.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Incoming messages not yet taken by `recv`/`wait_for`.
    pub fn pending(&self) -> Vec<RecordRef> {
        self.lock_raw().session.inbox().iter().cloned().collect()
    }

    /// Takes every incoming message not yet taken by `recv`/`wait_for`,
    /// oldest first, leaving the inbox empty.
    pub fn take_inbox(&self) -> Vec<RecordRef> {
        self.lock().session.inbox_mut().drain(..).collect()
    }

    /// The n-th most recent history entry (1 = last).
    pub fn history_entry(&self, n: usize) -> Option<RecordRef> {
        let core = self.lock_raw();
        n.checked_sub(1)
            .and_then(|i| core.session.history().rev().nth(i).cloned())
    }

    /// The whole history, oldest first.
    pub fn history(&self) -> Vec<RecordRef> {
        self.lock_raw().session.history().cloned().collect()
    }

    /// Clears the history and the inbox.
    pub fn reset_history(&self) {
        self.lock().session.reset();
    }

    /// Concatenated payloads of received messages since the last clear (the
    /// last [`PAYLOAD_BUFFER_LIMIT`] bytes).
    pub fn payload_buffer(&self) -> Vec<u8> {
        self.lock_raw().session.payload_buffer().to_vec()
    }

    /// Empties the payload buffer.
    pub fn payload_buffer_clear(&self) {
        self.lock().session.clear_payload_buffer();
    }

    /// Arms an expectation for the next received message.
    pub fn expect(&self, e: Option<Expectation>) {
        self.lock().session.arm(e);
    }

    /// The report of the last checked expectation (`None` if it matched or
    /// none was checked), taken.
    pub fn take_expectation_report(&self) -> Option<String> {
        let taken = self.lock().session.take_expectation_report();
        taken.map(|(problems, expected, got)| {
            session::expectation_report(&problems, &expected, &got)
        })
    }

    /// Active observations, oldest first, each with the client it is held
    /// on.
    pub fn observations(&self) -> Vec<ActiveObservation> {
        let core = self.lock_raw();
        core.exchanges
            .observations()
            .map(|o| ActiveObservation {
                token: o.token.clone(),
                path: o.path.clone(),
                peer: o.peer,
                endpoint: core.registry.endpoint_of(o.peer),
            })
            .collect()
    }

    /// Forgets the observation of `token` (after a cancel).
    pub fn forget_observation(&self, token: &[u8]) {
        self.lock().exchanges.cancel_observation_by_token(token);
    }

    /// The token of the observation of `path` on the current target.
    pub fn observation_token(&self, path: &str) -> Option<Vec<u8>> {
        let core = self.lock_raw();
        let peer = core.target?;
        core.exchanges
            .observation_for_path(&peer, path)
            .map(|o| o.token.clone())
    }

    /// Takes the Bootstrap-Pack-Request kept while `auto_bspack_error` was off.
    pub fn take_bootstrap_pack_request(&self) -> Option<RecordRef> {
        self.lock().session.take_bootstrap_pack_request()
    }

    /// The most recent request received from a peer (for `coap` responses).
    pub fn last_received_request(&self) -> Option<RecordRef> {
        self.lock_raw().session.last_received_request()
    }

    /// Blocks until a client's first message arrives (for `-l` at the
    /// prompt), or Ctrl-C.
    pub fn wait_first_client(&self) -> Result<RecordRef, ServerError> {
        self.wait_first_client_since(self.history_mark())
    }

    /// The position the next record will take in the history: take it
    /// before `listen`, then [`Server::wait_first_client_since`] also sees
    /// a client that talks at once.
    pub fn history_mark(&self) -> u64 {
        self.lock_raw().session.next_seq()
    }

    /// Like [`Server::wait_first_client`], counting every message received
    /// since `mark` (from [`Server::history_mark`]).
    /// As the original's `listen`, it empties the payload buffer at its end
    /// (the first client's Register is not left in it).
    pub fn wait_first_client_since(&self, mark: u64) -> Result<RecordRef, ServerError> {
        let first = self.first_received_since(mark, None);
        self.payload_buffer_clear();
        first?.ok_or(ServerError::Interrupted)
    }

    /// A short description for the prompt: `port: 5683, client: ep@addr`.
    pub fn prompt_status(&self) -> String {
        let port = self.listen_port();
        let core = self.lock_raw();
        let mut parts = Vec::new();
        if let Some(p) = port {
            parts.push(format!("port: {p}"));
        }
        match (&core.current, core.target) {
            (Some(ep), Some(addr)) => parts.push(format!("client: {ep} ({addr})")),
            (None, Some(addr)) => parts.push(format!("client: {addr}")),
            _ => {}
        }
        parts.join(", ")
    }
}

/// The error for an `endpoint` name no client registered under: it names
/// a few registered clients, not thousands.
/// The first address `host:port` resolves to.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, ServerError> {
    (host, port)
        .to_socket_addrs()
        .map_err(|_| ServerError::Resolve(format!("{host}:{port}")))?
        .next()
        .ok_or_else(|| ServerError::Resolve(format!("{host}:{port}")))
}

fn unknown_client(registry: &Registry, endpoint: &str) -> ServerError {
    const NAMED: usize = 10;
    let mut names = registry
        .clients()
        .take(NAMED)
        .map(|c| &*c.endpoint)
        .collect::<Vec<_>>()
        .join(", ");
    let count = registry.len();
    if count > NAMED {
        names.push_str(&format!(" and {} more", grouped((count - NAMED) as u64)));
    }
    let registered = if count == 0 {
        " (no client is registered)".to_string()
    } else {
        let hint = names::hint(endpoint, registry.clients().map(|c| &*c.endpoint));
        format!("{hint} (registered: {names})")
    };
    ServerError::UnknownClient(endpoint.to_string(), registered)
}

/// Counts a command waiting in `Server::wait_until` while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
