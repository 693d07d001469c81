//! The shared server handle: listening endpoint, registered clients, the
//! history of everything sent and received, the inbox, auto-responders,
//! expectations and the payload buffer.
//!
//! A background thread receives all the time: each datagram is recorded at
//! once, matched by the exchange layer, auto-answered when a flag says so,
//! and printed through the [`Printer`]. Script commands run on another
//! thread and wait on a condition variable for their response. Knows
//! nothing of Rhai.

pub mod history;
pub mod registry;

mod auto;
mod receiver;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::coap::OptionNumber;
use crate::coap::{CoapOption, Code, Message, tcp, udp};
use crate::exchange::{Block2Assembly, BlockProgress, Exchanges, RequestId, TransmissionParams};
use crate::lwm2m::kind;
use crate::transport::{Psk, Transport};

pub use history::{Direction, Record, RecordRef, Role};
pub use registry::{Client, Registry};

/// How many records the history keeps unless `set history_limit=N` says
/// otherwise.
pub const DEFAULT_HISTORY_LIMIT: usize = 100_000;

/// Where output lines (`<- …`, `-> …`) go.
pub type Printer = Arc<dyn Fn(&str) + Send + Sync>;

/// Errors of server operations, worded for the user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// No socket yet.
    #[error("not listening: use `listen` (or `connect HOST PORT`) first")]
    NotListening,
    /// Nobody to send to.
    #[error("no client to send to: none has registered and no `connect` target is set")]
    NoPeer,
    /// Socket trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No response in time.
    #[error("no response to `{summary}` within {timeout:.1} s")]
    Timeout {
        /// What was sent.
        summary: String,
        /// How long nsh waited.
        timeout: f64,
    },
    /// CON retransmissions exhausted.
    #[error("no response to `{summary}` after {attempts} transmissions")]
    GaveUp {
        /// What was sent.
        summary: String,
        /// How many times.
        attempts: u32,
    },
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// A name that is not a client.
    #[error("no client with endpoint name `{0}` (registered: {1})")]
    UnknownClient(String, String),
    /// Bad address.
    #[error("cannot resolve `{0}`")]
    Resolve(String),
    /// A block-wise transfer went wrong.
    #[error("block-wise transfer: {0}")]
    Block(String),
}

/// The auto-responder switches (`set`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags {
    /// Answer Update with Changed.
    pub auto_update: bool,
    /// Answer Register with Created.
    pub auto_reregister: bool,
    /// Answer Bootstrap-Pack-Request with 4.04.
    pub auto_bspack_error: bool,
    /// Answer any other CON with an empty ACK (and a ping with RST).
    pub auto_ack: bool,
    /// Answer De-register with Deleted.
    pub auto_deregister: bool,
    /// Answer Send with Changed.
    pub auto_send: bool,
    /// Print `->`/`<-` lines.
    pub print_messages: bool,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            auto_update: true,
            auto_reregister: true,
            auto_bspack_error: true,
            auto_ack: true,
            auto_deregister: true,
            auto_send: true,
            print_messages: true,
        }
    }
}

/// A check of a received message: `Err` lists what differs.
pub type Check = Arc<dyn Fn(&Record) -> Result<(), Vec<String>> + Send + Sync>;

/// What `expect` armed: checked against the next received message.
#[derive(Clone)]
pub enum Expectation {
    /// Nothing may arrive.
    Nothing,
    /// A message matching the predicate; the text describes it.
    Matching(String, Check),
}

pub(crate) struct State {
    transport: Option<Arc<Transport>>,
    /// The PSK `listen` uses when it is given none (from the command line).
    default_psk: Option<Psk>,
    /// Whether `listen` serves TCP when not told (the command line's `--tcp`).
    default_tcp: bool,
    /// The last CSM each TCP peer sent (RFC 8323 §5.3).
    pub(crate) peer_csm: HashMap<SocketAddr, RecordRef>,
    generation: u64,
    listen_port: Option<u16>,
    ipv6: bool,
    pub(crate) history: Vec<RecordRef>,
    next_seq: u64,
    pub(crate) inbox: VecDeque<RecordRef>,
    pub(crate) payload_buffer: Vec<u8>,
    pub(crate) flags: Flags,
    pub(crate) registry: Registry,
    /// Where commands go: the current client's address or a `connect` target.
    target: Option<SocketAddr>,
    current: Option<String>,
    pub(crate) exchanges: Exchanges<SocketAddr>,
    responses: HashMap<RequestId, RecordRef>,
    gave_up: HashSet<RequestId>,
    /// Uri-Path of our requests, so responses know what their payload is.
    pub(crate) request_paths: HashMap<RequestId, String>,
    pub(crate) expectation: Option<Expectation>,
    pub(crate) expectation_report: Option<String>,
    pub(crate) observed: HashMap<Vec<u8>, String>,
    pub(crate) default_timeout: Duration,
    /// How many records the history keeps (the oldest go first).
    history_limit: usize,
    /// A Bootstrap-Pack-Request kept for `bootstrap_pack`.
    pub(crate) bootstrap_pack_request: Option<RecordRef>,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Bumped with every `changed` notification, so a waiter can spin
    /// briefly on it before sleeping.
    version: std::sync::atomic::AtomicU64,
    printer: Mutex<Printer>,
    interrupt: Arc<AtomicBool>,
}

/// The server handle shared by the prompt, scripts and the receiver thread.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
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

impl Default for Server {
    fn default() -> Self {
        Self::new()
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
                state: Mutex::new(State {
                    transport: None,
                    default_psk: None,
                    default_tcp: false,
                    peer_csm: HashMap::new(),
                    generation: 0,
                    listen_port: None,
                    ipv6: false,
                    history: Vec::new(),
                    next_seq: 1,
                    inbox: VecDeque::new(),
                    payload_buffer: Vec::new(),
                    flags: Flags::default(),
                    registry: Registry::default(),
                    target: None,
                    current: None,
                    exchanges: Exchanges::new(TransmissionParams::default(), seed),
                    responses: HashMap::new(),
                    gave_up: HashSet::new(),
                    request_paths: HashMap::new(),
                    expectation: None,
                    expectation_report: None,
                    observed: HashMap::new(),
                    default_timeout: Duration::from_secs(5),
                    history_limit: DEFAULT_HISTORY_LIMIT,
                    bootstrap_pack_request: None,
                }),
                changed: Condvar::new(),
                version: std::sync::atomic::AtomicU64::new(0),
                printer: Mutex::new(printer),
                interrupt: Arc::new(AtomicBool::new(false)),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Routes output lines somewhere else (the prompt's external printer).
    pub fn set_printer(&self, printer: Printer) {
        *self
            .shared
            .printer
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = printer;
    }

    pub(crate) fn print(&self, line: &str) {
        let printer = self
            .shared
            .printer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        printer(line);
    }

    /// The flag Ctrl-C sets; waits and loops check it.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.shared.interrupt.clone()
    }

    fn interrupted(&self) -> bool {
        self.shared.interrupt.load(Ordering::SeqCst)
    }

    /// Starts listening on `port` (0 = any free port); replaces any earlier
    /// socket. Returns the bound port.
    pub fn listen(&self, port: u16, ipv6: bool) -> Result<u16, ServerError> {
        self.listen_secure(port, ipv6, None)
    }

    /// Like [`Server::listen`], serving DTLS 1.2 when `psk` is given.
    pub fn listen_secure(
        &self,
        port: u16,
        ipv6: bool,
        psk: Option<&Psk>,
    ) -> Result<u16, ServerError> {
        self.start(Transport::bind(port, ipv6, psk)?, ipv6)
    }

    /// Starts listening for CoAP over TCP (RFC 8323) on `port` (0 = any
    /// free port); replaces any earlier socket. Returns the bound port.
    pub fn listen_tcp(&self, port: u16, ipv6: bool) -> Result<u16, ServerError> {
        self.start(Transport::bind_tcp(port, ipv6)?, ipv6)
    }

    fn start(&self, transport: Transport, ipv6: bool) -> Result<u16, ServerError> {
        let transport = Arc::new(transport);
        let bound = transport.local_addr()?.port();
        let generation = {
            let mut st = self.lock();
            st.generation += 1;
            st.transport = Some(transport.clone());
            st.listen_port = Some(bound);
            st.ipv6 = ipv6;
            st.generation
        };
        receiver::spawn(self.clone(), transport, generation);
        Ok(bound)
    }

    /// The PSK `listen` falls back to (the command line's `-i`/`-k`).
    pub fn set_default_psk(&self, psk: Option<Psk>) {
        self.lock().default_psk = psk;
    }

    /// See [`Server::set_default_psk`].
    pub fn default_psk(&self) -> Option<Psk> {
        self.lock().default_psk.clone()
    }

    /// Whether `listen` serves TCP when not told (the command line's `--tcp`).
    pub fn set_default_tcp(&self, tcp: bool) {
        self.lock().default_tcp = tcp;
    }

    /// See [`Server::set_default_tcp`].
    pub fn default_tcp(&self) -> bool {
        self.lock().default_tcp
    }

    /// Whether the listening socket is TCP.
    pub fn is_tcp(&self) -> bool {
        self.lock()
            .transport
            .as_ref()
            .is_some_and(|t| t.is_reliable())
    }

    /// The CSM (7.01) a TCP peer sent last, if any.
    pub fn peer_csm(&self, peer: SocketAddr) -> Option<RecordRef> {
        self.lock().peer_csm.get(&peer).cloned()
    }

    /// Sets the address commands are sent to (`connect HOST PORT`); binds an
    /// ephemeral (or `bind`) port first when not listening.
    pub fn connect(&self, host: &str, port: u16, bind: u16) -> Result<SocketAddr, ServerError> {
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|_| ServerError::Resolve(format!("{host}:{port}")))?
            .next()
            .ok_or_else(|| ServerError::Resolve(format!("{host}:{port}")))?;
        let listening = self.lock().transport.is_some();
        if !listening || bind != 0 {
            self.listen(bind, addr.is_ipv6())?;
        }
        let mut st = self.lock();
        st.target = Some(addr);
        st.current = None;
        Ok(addr)
    }

    /// Forgets the current target, so the next peer that talks becomes it.
    pub fn unconnect(&self) {
        let mut st = self.lock();
        st.target = None;
        st.current = None;
    }

    /// The listening port, if any.
    pub fn listen_port(&self) -> Option<u16> {
        self.lock().listen_port
    }

    /// Where commands go now.
    pub fn target(&self) -> Option<SocketAddr> {
        self.lock().target
    }

    /// The current client's endpoint name.
    pub fn current_client(&self) -> Option<String> {
        self.lock().current.clone()
    }

    /// Registered clients.
    pub fn clients(&self) -> Vec<Client> {
        self.lock().registry.clients().to_vec()
    }

    /// Makes `endpoint` the current client.
    pub fn use_client(&self, endpoint: &str) -> Result<Client, ServerError> {
        let mut st = self.lock();
        let Some(client) = st.registry.by_endpoint(endpoint).cloned() else {
            let names: Vec<String> = st
                .registry
                .clients()
                .iter()
                .map(|c| c.endpoint.clone())
                .collect();
            return Err(ServerError::UnknownClient(
                endpoint.to_string(),
                names.join(", "),
            ));
        };
        st.target = Some(client.peer);
        st.current = Some(client.endpoint.clone());
        Ok(client)
    }

    /// Flags of the auto-responders.
    pub fn flags(&self) -> Flags {
        self.lock().flags
    }

    /// Replaces the auto-responder flags.
    pub fn set_flags(&self, flags: Flags) {
        self.lock().flags = flags;
    }

    /// CoAP transmission parameters in force.
    pub fn transmission(&self) -> TransmissionParams {
        self.lock().exchanges.params().clone()
    }

    /// Replaces the CoAP transmission parameters (lifetimes re-derived).
    pub fn set_transmission(&self, params: TransmissionParams) {
        self.lock().exchanges.set_params(params.derive_lifetimes());
    }

    /// Default time a request waits for its response.
    pub fn default_timeout(&self) -> Duration {
        self.lock().default_timeout
    }

    /// Sets the default request timeout.
    pub fn set_default_timeout(&self, timeout: Duration) {
        self.lock().default_timeout = timeout;
    }

    fn push_record(st: &mut State, mut record: Record) -> RecordRef {
        record.seq = st.next_seq;
        st.next_seq += 1;
        let r = Arc::new(record);
        st.history.push(r.clone());
        // Dropped in chunks (a tenth of the limit), so the front is not
        // shifted on every message of a long soak.
        let limit = st.history_limit.max(1);
        if st.history.len() > limit + limit / 10 {
            let excess = st.history.len() - limit;
            st.history.drain(..excess);
        }
        r
    }

    /// How many records the history keeps.
    pub fn history_limit(&self) -> usize {
        self.lock().history_limit
    }

    /// Sets how many records the history keeps (at least 1); older ones are
    /// dropped now and from then on.
    pub fn set_history_limit(&self, limit: usize) {
        let mut st = self.lock();
        st.history_limit = limit.max(1);
        let excess = st.history.len().saturating_sub(st.history_limit);
        st.history.drain(..excess);
    }

    /// Records and transmits one message the exchange layer released.
    pub(crate) fn transmit(
        &self,
        st: &mut State,
        peer: SocketAddr,
        mut msg: Message,
    ) -> Result<RecordRef, ServerError> {
        let transport = st.transport.clone().ok_or(ServerError::NotListening)?;
        msg.reliable = transport.is_reliable();
        let raw = encode(&msg);
        let kind = kind::classify(&msg, &RegistryContext(&st.registry));
        let record = Self::push_record(
            st,
            Record {
                seq: 0,
                direction: Direction::Sent,
                peer,
                at: SystemTime::now(),
                raw: raw.clone(),
                message: Ok(msg),
                kind: Some(kind),
                role: Role::Outgoing,
                observed_path: None,
                request_path: None,
            },
        );
        if st.flags.print_messages {
            self.print(&record.line());
        }
        transport.send_to(&raw, peer)?;
        Ok(record)
    }

    /// Sends a message to the current target. Requests (and CON messages)
    /// are tracked by the exchange layer: CONs are retransmitted, and with
    /// `wait` the call returns the matched response.
    pub fn send(&self, msg: Message, opts: SendOptions) -> Result<Sent, ServerError> {
        let peer = self.lock().target.ok_or(ServerError::NoPeer)?;
        self.send_to(peer, msg, opts)
    }

    /// Sends a message to `peer` (see [`Server::send`]).
    pub fn send_to(
        &self,
        peer: SocketAddr,
        mut msg: Message,
        opts: SendOptions,
    ) -> Result<Sent, ServerError> {
        let request = msg.code.is_request().then(|| msg.clone());
        let (id, sent) = {
            let mut st = self.lock();
            let Some(transport) = &st.transport else {
                return Err(ServerError::NotListening);
            };
            // Over TCP there is no message ID, and nothing to acknowledge.
            msg.reliable = transport.is_reliable();
            if opts.fill_message_id && !msg.reliable {
                msg.message_id = st.exchanges.next_message_id(&peer);
            }
            if opts.fill_token {
                msg.token = st.exchanges.new_token();
            }
            let now = Instant::now();
            let (mid, token) = (msg.message_id, msg.token.clone());
            let id = if msg.code.is_request() {
                let path = msg.path_string();
                let id = st.exchanges.send_request(peer, msg, now);
                st.remember_request_path(id, path);
                Some(id)
            } else {
                st.exchanges.send_other(peer, &msg, now)
            };
            let records = self.flush(&mut st)?;
            let sent = records.into_iter().find(|r| {
                r.message
                    .as_ref()
                    .is_ok_and(|m| m.message_id == mid && m.token == token)
            });
            (id, sent)
        };
        self.notify_all();
        let (Some(id), Some(wait)) = (id, opts.wait) else {
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
        let mut response = self.wait_response(id, wait, &summary)?;
        let more = response
            .message
            .as_ref()
            .ok()
            .and_then(Message::block2)
            .is_some_and(|b| b.more);
        if let (true, Some(request)) = (more, request)
            && response.message.as_ref().is_ok_and(|m| m.code.class() == 2)
        {
            response = self.complete_block2(peer, id, &request, response, wait, &summary)?;
        }
        Ok(Sent {
            sent,
            response: Some(response),
        })
    }

    /// Completes a Block2 transfer (RFC 7959 §2.4): asks for each following
    /// block, and returns a record of the whole body (not in the history,
    /// which keeps the real datagrams), printed as `<- … (assembled …)`.
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
        let mut last = first.clone();
        let mut last_id = first_id;
        let mut blocks = 0;
        while let Ok(m) = &last.message {
            blocks += 1;
            match assembly.push(m) {
                Ok(BlockProgress::Complete) => break,
                Ok(BlockProgress::Next(_)) => {}
                Err(e) => return Err(ServerError::Block(e.to_string())),
            }
            let next = {
                let mut st = self.lock();
                let next = st
                    .exchanges
                    .send_next_block2(peer, last_id, request, m, Instant::now());
                if let Some(id) = next {
                    st.remember_request_path(id, request.path_string());
                    self.flush(&mut st)?;
                }
                next
            };
            let Some(next) = next else { break };
            last = self.wait_response(next, wait, summary)?;
            last_id = next;
        }
        let Ok(first_msg) = &first.message else {
            return Ok(first);
        };
        let mut whole = first_msg.clone();
        whole.remove_option(OptionNumber::BLOCK2);
        whole.payload = assembly.into_body();
        let record = Record {
            seq: 0,
            direction: Direction::Received,
            peer,
            at: last.at,
            raw: encode(&whole),
            message: Ok(whole),
            kind: first.kind,
            role: Role::Assembled,
            observed_path: None,
            request_path: first.request_path.clone(),
        };
        if self.lock().flags.print_messages {
            self.print(&format!(
                "{} (assembled from {blocks} blocks)",
                record.line()
            ));
        }
        Ok(Arc::new(record))
    }

    /// Transmits everything the exchange layer has queued; returns the
    /// records of what went out.
    pub(crate) fn flush(&self, st: &mut State) -> Result<Vec<RecordRef>, ServerError> {
        let mut out = Vec::new();
        let mut error = None;
        while let Some((peer, msg)) = st.exchanges.poll_transmit() {
            match self.transmit(st, peer, msg) {
                Ok(r) => out.push(r),
                Err(e) => error = Some(e),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn wait_response(
        &self,
        id: RequestId,
        wait: Duration,
        summary: &dyn Fn() -> String,
    ) -> Result<RecordRef, ServerError> {
        enum Outcome {
            Response(RecordRef),
            GaveUp,
        }
        let outcome = self.wait_until(Some(Instant::now() + wait), |st| {
            st.responses
                .remove(&id)
                .map(Outcome::Response)
                .or_else(|| st.gave_up.remove(&id).then_some(Outcome::GaveUp))
        });
        match outcome {
            Ok(Some(Outcome::Response(r))) => Ok(r),
            Ok(Some(Outcome::GaveUp)) => {
                let attempts = self.lock().exchanges.params().max_retransmit + 1;
                Err(ServerError::GaveUp {
                    summary: summary(),
                    attempts,
                })
            }
            Ok(None) => {
                self.lock().exchanges.cancel_request(id);
                Err(ServerError::Timeout {
                    summary: summary(),
                    timeout: wait.as_secs_f64(),
                })
            }
            Err(e) => {
                self.lock().exchanges.cancel_request(id);
                Err(e)
            }
        }
    }

    /// Sends raw bytes to the current target, bypassing CoAP (recorded as a
    /// sent datagram).
    pub fn send_raw(&self, bytes: &[u8]) -> Result<RecordRef, ServerError> {
        let mut st = self.lock();
        let peer = st.target.ok_or(ServerError::NoPeer)?;
        let transport = st.transport.clone().ok_or(ServerError::NotListening)?;
        let message = if transport.is_reliable() {
            tcp::decode(bytes)
        } else {
            udp::decode(bytes)
        };
        let kind = message
            .as_ref()
            .ok()
            .map(|m| kind::classify(m, &RegistryContext(&st.registry)));
        let record = Self::push_record(
            &mut st,
            Record {
                seq: 0,
                direction: Direction::Sent,
                peer,
                at: SystemTime::now(),
                raw: bytes.to_vec(),
                message,
                kind,
                role: Role::Outgoing,
                observed_path: None,
                request_path: None,
            },
        );
        transport.send_to(bytes, peer)?;
        Ok(record)
    }

    /// Takes the next unconsumed incoming message, waiting up to `timeout`.
    pub fn recv(&self, timeout: Duration) -> Result<Option<RecordRef>, ServerError> {
        self.wait_inbox(timeout, |_| true).map(|r| r.ok())
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
        let found = self.wait_until(Some(Instant::now() + timeout), |st| {
            let start = st.inbox.partition_point(|r| r.seq <= checked);
            let at = (start..st.inbox.len()).find(|&i| matches(&st.inbox[i]));
            checked = st.inbox.back().map_or(checked, |r| r.seq.max(checked));
            st.inbox.remove(at?)
        })?;
        Ok(found.ok_or_else(|| self.lock().inbox.iter().cloned().collect()))
    }

    /// Waits, woken by every change of the state, until `poll` yields a
    /// value, the deadline passes (`Ok(None)`) or Ctrl-C is pressed.
    fn wait_until<T>(
        &self,
        deadline: Option<Instant>,
        mut poll: impl FnMut(&mut State) -> Option<T>,
    ) -> Result<Option<T>, ServerError> {
        // A response usually follows within a fraction of a millisecond on a
        // local network: spinning that long on the change counter saves the
        // sleep and wake-up of the waiting thread. Then it sleeps.
        const SPIN: Duration = Duration::from_millis(1);
        let started = Instant::now();
        let mut st = self.lock();
        loop {
            if let Some(v) = poll(&mut st) {
                return Ok(Some(v));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            if self.interrupted() {
                return Err(ServerError::Interrupted);
            }
            if now - started < SPIN {
                let seen = self.shared.version.load(Ordering::Acquire);
                drop(st);
                while self.shared.version.load(Ordering::Acquire) == seen
                    && started.elapsed() < SPIN
                {
                    std::thread::yield_now();
                }
                st = self.lock();
                continue;
            }
            let slice = deadline.map_or(Duration::from_millis(50), |d| {
                (d - now).min(Duration::from_millis(50))
            });
            st = self
                .shared
                .changed
                .wait_timeout(st, slice)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Incoming messages not yet taken by `recv`/`wait_for`.
    pub fn pending(&self) -> Vec<RecordRef> {
        self.lock().inbox.iter().cloned().collect()
    }

    /// The n-th most recent history entry (1 = last).
    pub fn history_entry(&self, n: usize) -> Option<RecordRef> {
        let st = self.lock();
        n.checked_sub(1)
            .and_then(|i| st.history.iter().rev().nth(i).cloned())
    }

    /// The whole history, oldest first.
    pub fn history(&self) -> Vec<RecordRef> {
        self.lock().history.clone()
    }

    /// Clears the history and the inbox.
    pub fn reset_history(&self) {
        let mut st = self.lock();
        st.history.clear();
        st.inbox.clear();
    }

    /// Concatenated payloads of received messages since the last clear.
    pub fn payload_buffer(&self) -> Vec<u8> {
        self.lock().payload_buffer.clone()
    }

    /// Empties the payload buffer.
    pub fn payload_buffer_clear(&self) {
        self.lock().payload_buffer.clear();
    }

    /// Arms an expectation for the next received message.
    pub fn expect(&self, e: Option<Expectation>) {
        let mut st = self.lock();
        st.expectation = e;
        st.expectation_report = None;
    }

    /// The report of the last checked expectation (`None` if it matched or
    /// none was checked), taken.
    pub fn take_expectation_report(&self) -> Option<String> {
        self.lock().expectation_report.take()
    }

    /// Active observations: (token, path).
    pub fn observations(&self) -> Vec<(Vec<u8>, String)> {
        let st = self.lock();
        st.exchanges
            .observations()
            .map(|o| (o.token.clone(), o.path.clone()))
            .collect()
    }

    /// Forgets the observation of `token` (after a cancel).
    pub fn forget_observation(&self, token: &[u8]) {
        let mut st = self.lock();
        st.exchanges.cancel_observation_by_token(token);
        st.observed.remove(token);
    }

    /// The token of the observation of `path` on the current target.
    pub fn observation_token(&self, path: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        let peer = st.target?;
        st.exchanges
            .observation_for_path(&peer, path)
            .map(|o| o.token.clone())
    }

    /// Takes the Bootstrap-Pack-Request kept while `auto_bspack_error` was off.
    pub fn take_bootstrap_pack_request(&self) -> Option<RecordRef> {
        self.lock().bootstrap_pack_request.take()
    }

    /// The most recent request received from a peer (for `coap` responses).
    pub fn last_received_request(&self) -> Option<RecordRef> {
        let st = self.lock();
        st.history
            .iter()
            .rev()
            .find(|r| {
                r.direction == Direction::Received
                    && r.message.as_ref().is_ok_and(|m| m.code.is_request())
            })
            .cloned()
    }

    /// Blocks until a client's first message arrives (for `-l` at the
    /// prompt), or Ctrl-C.
    pub fn wait_first_client(&self) -> Result<RecordRef, ServerError> {
        let seen = self.lock().history.len();
        let first = self.wait_until(None, |st| {
            st.history
                .get(seen..)?
                .iter()
                .find(|r| r.direction == Direction::Received)
                .cloned()
        })?;
        first.ok_or(ServerError::Interrupted)
    }

    /// A short description for the prompt: `port: 5683, client: ep@addr`.
    pub fn prompt_status(&self) -> String {
        let st = self.lock();
        let mut parts = Vec::new();
        if let Some(p) = st.listen_port {
            parts.push(format!("port: {p}"));
        }
        match (&st.current, st.target) {
            (Some(ep), Some(addr)) => parts.push(format!("client: {ep} ({addr})")),
            (None, Some(addr)) => parts.push(format!("client: {addr}")),
            _ => {}
        }
        parts.join(", ")
    }

    pub(crate) fn notify_all(&self) {
        self.shared.version.fetch_add(1, Ordering::Release);
        self.shared.changed.notify_all();
    }
}

/// The wire form of a message: an RFC 8323 frame when it is `reliable`.
pub(crate) fn encode(msg: &Message) -> Vec<u8> {
    if msg.reliable {
        tcp::encode(msg)
    } else {
        udp::encode(msg)
    }
}

/// The CSM nsh sends on each TCP connection (RFC 8323 §5.3): the largest
/// message it takes (Max-Message-Size, option 2).
pub(crate) fn our_csm() -> Message {
    let mut csm = Message::new(crate::coap::Type::Confirmable, Code::CSM, 0);
    csm.reliable = true;
    csm.add_option(CoapOption::uint(
        crate::coap::OptionNumber(2),
        crate::transport::tcp::MAX_FRAME as u64,
    ));
    csm
}

impl State {
    /// Remembers the Uri-Path of a request, so its response's payload can
    /// be decoded; bounded.
    fn remember_request_path(&mut self, id: RequestId, path: String) {
        if self.request_paths.len() > 10_000 {
            self.request_paths.clear();
        }
        self.request_paths.insert(id, path);
    }
}

/// Classification context backed by the registration table.
pub(crate) struct RegistryContext<'a>(pub(crate) &'a Registry);

impl kind::ClassifyContext for RegistryContext<'_> {
    fn is_registration_location(&self, segments: &[String]) -> bool {
        let path: String = segments.iter().map(|s| format!("/{s}")).collect();
        self.0.is_location(&path)
    }
}
