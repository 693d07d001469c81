//! The server's state machine, sans-IO: what happens when a datagram
//! arrives, when a timer fires, when the user sends a message and when a
//! transmission finished. It owns the exchange layer, the registration
//! table and the user's session; it reads no clock (instants are passed in)
//! and touches no socket and no terminal. What must go out — datagrams and
//! lines for the user — is queued as [`Effect`]s, which the caller carries
//! out after it released the lock around the core (see `super::driver`).
//!
//! A datagram is recorded in the history only once it was handed to the
//! transport: the record's sequence number is reserved when it is queued,
//! so the history stays in order, and a failed send cancels the exchange it
//! belongs to (the peer is not blocked by NSTART) and is never recorded as
//! sent.

use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::base::{Flags, RegistryContext, ServerError, encode};
use super::history::{Direction, Record, RecordRef, Role};
use super::registrar::{self, Reply, Target};
use super::registry::Registry;
use super::session::Session;
use crate::coap::udp::DecodeError;
use crate::coap::{CoapOption, Code, ContentFormat, Message, OptionNumber, Type, tcp, udp};
use crate::exchange::{
    Block2Assembly, BlockProgress, Event, Exchanges, Incoming, ObservationId, RequestId, check_szx,
};
use crate::lwm2m::{Objects, kind};
use crate::transport::Transport;

/// How many request paths, parked responses and ended requests are kept at
/// most; beyond that the oldest go (each is normally taken within one
/// request's wait).
const TABLE_LIMIT: usize = 10_000;

/// How many of the latest records a stray answer is looked up in (the
/// request it names and the answer that request had).
const STRAY_LOOKBACK: usize = 512;

/// How many block-wise notifications are reassembled at once.
const NOTIFICATION_ASSEMBLIES: usize = 64;

/// What the caller must do once it released the core.
pub(crate) enum Effect {
    /// Hand a datagram to the transport, then report with
    /// [`Core::on_sent`].
    Transmit(Outbound),
    /// Print a record's line (worded outside the lock: summaries decode
    /// payloads), with an optional suffix.
    Show(RecordRef, Option<String>),
    /// Print a line.
    Print(String),
    /// Hand a record to the running capture, with the transport it went
    /// through.
    Capture(RecordRef, Arc<Transport>),
    /// Close the TCP connection with a peer once what was queued for it
    /// went out (RFC 8323 §5.5, §5.6), saying why.
    Close(Arc<Transport>, SocketAddr, String),
}

/// A datagram on its way out.
pub(crate) struct Outbound {
    pub(crate) transport: Arc<Transport>,
    pub(crate) seq: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) raw: Vec<u8>,
    pub(crate) msg: Message,
    pub(crate) id: Option<RequestId>,
    /// Someone waits for the outcome (the record, or why the send
    /// failed): kept for [`Core::take_sent`].
    pub(crate) awaited: bool,
    /// When it left the core ([`Core::drain_effects`]): the time of its
    /// record. The thread that sends it may record it only after the
    /// answer to it was handled; stamped then, the request would look
    /// newer than its response.
    pub(crate) left: Option<SystemTime>,
    /// For a retransmission: which one, and the timeout that expired
    /// before it (the note of its record).
    pub(crate) retransmission: Option<(u32, Duration)>,
}

/// A request readied by [`Core::ready_now`], to be sent in place.
pub(crate) struct Ready {
    /// What sends it.
    pub(crate) transport: Arc<Transport>,
    /// The datagram.
    pub(crate) raw: Vec<u8>,
    msg: Message,
}

/// What a pending request asked for.
struct Asked {
    /// Its Uri-Path.
    path: String,
    /// Its first Accept option.
    accept: Option<ContentFormat>,
}

impl Asked {
    fn of(request: &Message) -> Asked {
        Asked {
            path: request.path_string(),
            accept: request.accepts().next(),
        }
    }
}

/// Why a request someone waits for ended without a response.
#[derive(Clone, Debug)]
pub(crate) enum Ended {
    /// CON transmissions exhausted, or EXCHANGE_LIFETIME passed; with the
    /// answers that named it by message ID but carried another token
    /// meanwhile (how many, and the last), which answer nothing.
    GaveUp(Option<(usize, RecordRef)>),
    /// The transport refused the datagram.
    SendFailed(String),
    /// The connection the request went over closed before its answer
    /// came: the transport's line saying so (`TCP connection with …
    /// closed: closed by the peer`).
    Closed(String),
}

/// What [`Core::submit`] queued.
pub(crate) struct Submitted {
    /// The tracked exchange, for requests and CON/NON messages.
    pub(crate) id: Option<RequestId>,
    /// The sequence number of the first transmission, whose outcome
    /// [`Core::take_sent`] gives, when it went out at once (not held back
    /// by NSTART).
    pub(crate) transmission: Option<u64>,
}

/// A notification whose body comes in blocks (RFC 7959 §2.6), being
/// completed with GET requests.
struct NotificationAssembly {
    first: RecordRef,
    assembly: Block2Assembly,
    request: Message,
    blocks: u32,
}

/// See the module header.
pub(crate) struct Core {
    pub(crate) exchanges: Exchanges<SocketAddr>,
    pub(crate) registry: Registry,
    pub(crate) session: Session,
    pub(crate) flags: Flags,
    /// Where commands go: the current client's address or a `connect` target.
    pub(crate) target: Option<SocketAddr>,
    pub(crate) current: Option<String>,
    /// The user chose the target (`connect`, `use_client`): a registration
    /// from another device no longer takes it over (see [`Core::choose`]).
    chosen: bool,
    /// Why there is no target since the target's connection closed (see
    /// [`Core::on_closed`]), for the error of a command with nowhere to
    /// send to; forgotten when the user chooses again.
    lost: Option<Lost>,
    /// A device that would have become current was told about once since
    /// the choice.
    hinted: bool,
    pub(crate) default_timeout: Duration,
    /// `set timeout` for requests: `None` waits until the exchange gives up
    /// (see `Server::request_wait`).
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) transport: Option<Arc<Transport>>,
    /// This server's object definitions (built-in plus `load_objects`).
    pub(crate) objects: Objects,
    /// Responses parked for the requests someone waits for. (Maps keyed
    /// by numbers nsh itself hands out use a fast non-keyed hash.)
    responses: FxHashMap<RequestId, RecordRef>,
    awaited: FxHashSet<RequestId>,
    /// Answers to awaited requests that carried another token: how many,
    /// and the last (for the error when the request gives up).
    mistokened: FxHashMap<RequestId, (usize, RecordRef)>,
    ended: FxHashMap<RequestId, Ended>,
    /// What pending requests asked for, so responses know what their
    /// payload is. Ordered, so the oldest goes first when the table is full.
    asked: BTreeMap<RequestId, Asked>,
    /// The last CSM each TCP peer sent (RFC 8323 §5.3), until it closes.
    peer_csm: HashMap<SocketAddr, RecordRef>,
    /// What each TCP peer's CSMs announced, added up (RFC 8323 §5.3):
    /// whether it takes BERT blocks.
    peer_caps: HashMap<SocketAddr, tcp::Capabilities>,
    /// The TCP peers nsh's own CSM is queued for, until they close.
    csm_sent: HashSet<SocketAddr>,
    /// The TCP peers nsh sent an Abort, until they close: what they send
    /// meanwhile is recorded, not processed (RFC 8323 §5.6).
    aborted: HashSet<SocketAddr>,
    notification_blocks: FxHashMap<RequestId, NotificationAssembly>,
    /// Outcomes of awaited transmissions, by sequence number, until taken
    /// (at once, by the sender).
    sent: FxHashMap<u64, Result<RecordRef, String>>,
    effects: Vec<Effect>,
}

/// The target whose connection closed.
struct Lost {
    /// `TCP connection with leaver (127.0.0.1:41234)`.
    connection: String,
    /// `closed by the peer`.
    why: String,
    at: SystemTime,
    /// Where commands go once the target is back (or a new one).
    then: String,
}

impl Core {
    pub(crate) fn new(exchanges: Exchanges<SocketAddr>) -> Core {
        Core {
            exchanges,
            registry: Registry::default(),
            session: Session::default(),
            flags: Flags::default(),
            target: None,
            chosen: false,
            lost: None,
            hinted: false,
            current: None,
            default_timeout: Duration::from_secs(5),
            request_timeout: None,
            transport: None,
            objects: Objects::default(),
            responses: FxHashMap::default(),
            awaited: FxHashSet::default(),
            mistokened: FxHashMap::default(),
            ended: FxHashMap::default(),
            asked: BTreeMap::new(),
            peer_csm: HashMap::new(),
            peer_caps: HashMap::new(),
            csm_sent: HashSet::new(),
            aborted: HashSet::new(),
            notification_blocks: FxHashMap::default(),
            sent: FxHashMap::default(),
            effects: Vec::new(),
        }
    }

    /// Takes what must be done outside the lock, in order.
    #[cfg(test)]
    pub(crate) fn take_effects(&mut self, wall: SystemTime) -> Vec<Effect> {
        let mut effects = VecDeque::new();
        self.drain_effects(&mut effects, wall);
        effects.into()
    }

    /// Whether anything waits to be done outside the lock.
    pub(crate) fn has_effects(&self) -> bool {
        !self.effects.is_empty() || self.session.has_captured()
    }

    /// Moves what must be done outside the lock onto `into`, in order;
    /// the core keeps its queue's room for the next ones. Transmissions
    /// leave the core at `wall`, the time their records will carry.
    pub(crate) fn drain_effects(&mut self, into: &mut VecDeque<Effect>, wall: SystemTime) {
        // Records captured first: they happened already, while every
        // queued transmission is recorded later.
        let captured = self.session.take_captured();
        if let Some(t) = &self.transport {
            into.extend(captured.into_iter().map(|r| Effect::Capture(r, t.clone())));
        }
        into.extend(self.effects.drain(..).map(|mut e| {
            if let Effect::Transmit(out) = &mut e {
                out.left.get_or_insert(wall);
            }
            e
        }));
    }

    fn print(&mut self, line: String) {
        self.effects.push(Effect::Print(line));
    }

    fn show(&mut self, record: &RecordRef, suffix: Option<String>) {
        if self.flags.print_messages {
            self.effects.push(Effect::Show(record.clone(), suffix));
        }
    }

    fn reliable(&self) -> bool {
        self.transport.as_ref().is_some_and(|t| t.is_reliable())
    }

    /// The response to `req` with `code` (RFC 7252 §5.2): piggybacked on
    /// the ACK of a CON (same message ID), a NON with a message ID of nsh's
    /// own for a NON (§4.4: message IDs belong to their sender), no type or
    /// message ID over TCP; always the request's token.
    pub(crate) fn response(&mut self, peer: SocketAddr, req: &Message, code: Code) -> Message {
        let own = if req.mtype == Type::NonConfirmable && !req.reliable {
            self.exchanges.next_message_id(&peer)
        } else {
            0
        };
        Message::response_to(req, code, own)
    }

    /// Queues `msg` (a request of ours, a response, a notification…) for
    /// `peer`. See [`super::Server::send_to`].
    pub(crate) fn submit(
        &mut self,
        peer: SocketAddr,
        mut msg: Message,
        fill_message_id: bool,
        fill_token: bool,
        awaited: bool,
        now: Instant,
    ) -> Result<Submitted, ServerError> {
        let transport = self.transport.clone().ok_or(ServerError::NotListening)?;
        // Over TCP there is no message ID, and nothing to acknowledge.
        msg.reliable = transport.is_reliable();
        if msg.code == Code::CHANGED {
            self.update_answered_by_hand(peer, &msg);
        }
        if fill_message_id && !msg.reliable {
            msg.message_id = self.exchanges.next_message_id(&peer);
        }
        if fill_token {
            msg.token = self.exchanges.new_token(&peer);
        }
        // How the transmission of this message is told among the effects:
        // a request by its exchange, anything else by message ID and token.
        let mid = msg.message_id;
        let token = (!msg.code.is_request()).then(|| msg.token.clone());
        let id = if msg.code.is_request() {
            Some(self.track_request(peer, msg, false, now))
        } else {
            self.exchanges.send_other(peer, &msg, now)
        };
        if let Some(id) = id.filter(|_| awaited) {
            self.awaited.insert(id);
        }
        let before = self.effects.len();
        self.flush();
        let mut transmission = None;
        for effect in &mut self.effects[before..] {
            if let Effect::Transmit(out) = effect
                && out.peer == peer
                && match &token {
                    None => id.is_some() && out.id == id,
                    Some(token) => out.msg.message_id == mid && out.msg.token == *token,
                }
            {
                out.awaited = true;
                transmission = Some(out.seq);
                break;
            }
        }
        Ok(Submitted { id, transmission })
    }

    /// Readies request `msg`, which the caller waits for, to be sent in
    /// place, before it is tracked and recorded, when it can go at once:
    /// the transport sends in place, nothing else waits to go out
    /// (`nothing_queued`: the effect queue outside the core is empty and no
    /// other thread carries effects out), and the exchange layer would
    /// release it at once. Its message ID and token are filled in and it is
    /// encoded; the caller sends [`Ready::raw`] through
    /// [`Ready::transport`] without releasing the core, then reports with
    /// [`Core::sent_now`]. The peer gets the datagram before the
    /// bookkeeping is done; what anyone can see of the core afterwards is
    /// the same as after [`Core::submit`] and the transmission.
    /// `Err(msg)` when it cannot go this way.
    pub(crate) fn ready_now(
        &mut self,
        peer: SocketAddr,
        mut msg: Message,
        nothing_queued: bool,
    ) -> Result<Ready, Message> {
        let transport = match &self.transport {
            Some(t) if t.sends_in_place() => t.clone(),
            _ => return Err(msg),
        };
        msg.reliable = transport.is_reliable();
        if !(nothing_queued
            && self.effects.is_empty()
            && msg.code.is_request()
            && self.exchanges.starts_at_once(&peer, &msg))
        {
            return Err(msg);
        }
        msg.message_id = self.exchanges.next_message_id(&peer);
        msg.token = self.exchanges.new_token(&peer);
        let raw = encode(&msg);
        Ok(Ready {
            transport,
            raw,
            msg,
        })
    }

    /// Tracks and records `ready`, which the caller sent to `peer` with
    /// `result`, its datagram having left at `left`: as
    /// [`Core::submit`] and [`Core::on_sent`] would have. Returns the
    /// exchange and its record, or why the transport refused it.
    pub(crate) fn sent_now(
        &mut self,
        peer: SocketAddr,
        ready: Ready,
        result: std::io::Result<()>,
        now: Instant,
        left: SystemTime,
    ) -> (RequestId, Result<RecordRef, String>) {
        let Ready {
            transport,
            raw,
            msg,
        } = ready;
        let id = self.track_request(peer, msg.clone(), true, now);
        self.awaited.insert(id);
        let seq = self.session.reserve_seq();
        let out = Outbound {
            transport,
            seq,
            peer,
            raw,
            msg,
            id: Some(id),
            // The caller takes the outcome from here, not from `take_sent`.
            awaited: false,
            left: Some(left),
            retransmission: None,
        };
        let outcome = self.on_sent(out, result, left);
        self.flush();
        (id, outcome)
    }

    /// Hands request `msg` to the exchange layer (`transmitted`: the caller
    /// has sent it already, see [`Exchanges::sent_request`]) and keeps its
    /// path for the record of its response.
    fn track_request(
        &mut self,
        peer: SocketAddr,
        msg: Message,
        transmitted: bool,
        now: Instant,
    ) -> RequestId {
        let asked = Asked::of(&msg);
        let id = if transmitted {
            self.exchanges.sent_request(peer, msg, now)
        } else {
            self.exchanges.send_request(peer, msg, now)
        };
        self.remember_request(id, asked);
        id
    }

    /// Queues the request for the block after `response` of a Block2
    /// transfer (RFC 7959 §2.4), awaited.
    pub(crate) fn next_block2(
        &mut self,
        peer: SocketAddr,
        previous: RequestId,
        request: &Message,
        response: &Message,
        now: Instant,
    ) -> Option<RequestId> {
        let bert = self.peer_bert(peer);
        let id = self
            .exchanges
            .send_next_block2(peer, previous, request, response, bert, now)?;
        self.remember_request(id, Asked::of(request));
        self.awaited.insert(id);
        self.flush();
        Some(id)
    }

    /// Turns what the exchange layer released into transmissions.
    pub(crate) fn flush(&mut self) {
        while let Some((peer, mut msg, id)) = self.exchanges.poll_transmission() {
            // An exchange ended meanwhile is no longer this datagram's.
            let id = id.filter(|&id| self.exchanges.is_pending(id));
            let retransmission = id.and_then(|id| self.exchanges.retransmission(id));
            let Some(transport) = self.transport.clone() else {
                self.print(format!("not listening: `{}` not sent", summary_of(&msg)));
                continue;
            };
            msg.reliable = transport.is_reliable();
            let raw = encode(&msg);
            let seq = self.session.reserve_seq();
            self.effects.push(Effect::Transmit(Outbound {
                transport,
                seq,
                peer,
                raw,
                msg,
                id,
                awaited: false,
                left: None,
                retransmission,
            }));
        }
        self.take_events();
    }

    fn take_events(&mut self) {
        while let Some(event) = self.exchanges.poll_event() {
            if let Event::GaveUp(id) | Event::Expired(id) = event {
                self.asked.remove(&id);
                self.notification_blocks.remove(&id);
                let mistokened = self.mistokened.remove(&id);
                if self.awaited.remove(&id) {
                    self.end(id, Ended::GaveUp(mistokened));
                }
            }
        }
    }

    fn end(&mut self, id: RequestId, why: Ended) {
        if self.ended.len() >= TABLE_LIMIT
            && let Some(oldest) = self.ended.keys().min().copied()
        {
            self.ended.remove(&oldest);
        }
        self.ended.insert(id, why);
    }

    /// The transport took `out` (or refused it): record it as sent, or
    /// cancel its exchange. Returns the record, stamped with the time `out`
    /// left the core (`wall` for one that never went through
    /// [`Core::drain_effects`]), or the error as worded for the user.
    pub(crate) fn on_sent(
        &mut self,
        out: Outbound,
        result: std::io::Result<()>,
        wall: SystemTime,
    ) -> Result<RecordRef, String> {
        match result {
            Ok(()) => {
                let kind = kind::classify(&out.msg, &RegistryContext(&self.registry));
                let endpoint = self.registry.endpoint_of(out.peer);
                let record = self.session.record(Record {
                    seq: out.seq,
                    direction: Direction::Sent,
                    peer: out.peer,
                    at: out.left.unwrap_or(wall),
                    reliable: out.transport.is_reliable(),
                    raw: out.raw,
                    message: Ok(out.msg),
                    kind: Some(kind),
                    role: Role::Outgoing,
                    observed_path: None,
                    request_path: None,
                    fresh: None,
                    note: out.retransmission.map(|(n, timeout)| {
                        format!(
                            "retransmission {n} of at most {}: no ACK within {:.1} s",
                            self.exchanges.params().max_retransmit,
                            timeout.as_secs_f64()
                        )
                    }),
                    objects: self.objects.clone(),
                    identity: None,
                    endpoint,
                });
                self.show(&record, None);
                if out.awaited {
                    self.keep_sent(out.seq, Ok(record.clone()));
                }
                Ok(record)
            }
            Err(e) => {
                let what = summary_of(&out.msg);
                let error = format!("could not send `{what}` to {}: {e}", out.peer);
                // A command waiting for it reports the error; only what
                // nobody waits for (an auto-answer) gets a line of its own.
                let mut told = out.awaited;
                if let Some(id) = out.id {
                    self.exchanges.cancel_request(id);
                    self.asked.remove(&id);
                    if self.awaited.remove(&id) {
                        told = true;
                        self.end(id, Ended::SendFailed(error.clone()));
                    }
                    self.flush();
                }
                if out.awaited {
                    self.keep_sent(out.seq, Err(error.clone()));
                }
                if !told {
                    self.print(format!("send error: {error}"));
                }
                Err(error)
            }
        }
    }

    /// A datagram from `peer`.
    pub(crate) fn on_datagram(
        &mut self,
        peer: SocketAddr,
        bytes: Vec<u8>,
        now: Instant,
        wall: SystemTime,
    ) {
        self.registry.touch(peer, wall);
        let identity = self.transport.as_ref().and_then(|t| t.identity(peer));
        let session_identity = identity.clone();
        let reliable = self.reliable();
        let decoded = if reliable {
            tcp::decode_received(&bytes, crate::transport::tcp::MAX_FRAME)
        } else {
            udp::decode(&bytes)
        };
        // Over TCP a frame that does not decode is rejected with an Abort
        // (RFC 8323 §5.6), unless it is only the start of one the peer
        // left cut short when it closed the connection.
        let abort_for = match &decoded {
            Err(e) if reliable && !cut_short_at_close(&bytes) => Some(e.to_string()),
            _ => None,
        };
        let objects = self.objects.clone();
        let blank = |message| Record {
            seq: 0,
            direction: Direction::Received,
            peer,
            at: wall,
            reliable,
            raw: bytes,
            message,
            kind: None,
            role: Role::Malformed,
            observed_path: None,
            request_path: None,
            fresh: None,
            note: None,
            objects,
            identity,
            endpoint: None,
        };
        let msg = match decoded {
            Ok(msg) => msg,
            Err(e) => {
                let endpoint = self.registry.endpoint_of(peer);
                let record = self.session.push(Record {
                    endpoint,
                    ..blank(Err(e))
                });
                self.show(&record, None);
                self.session.check_expectation(&record);
                self.deliver(record);
                if let Some(diagnostic) = abort_for {
                    self.abort(peer, &diagnostic, None, now);
                }
                return;
            }
        };
        if reliable && self.aborted.contains(&peer) {
            self.after_abort(peer, msg, blank);
            return;
        }
        // A signaling message with an option nsh cannot process is not
        // answered: the connection is aborted (RFC 8323 §5.2, §5.3); so
        // is a connection whose first message is not a CSM (§3.3, §5.3).
        let signaling_fault = if reliable {
            tcp::signaling_fault(&msg)
                .map(|(option, why)| ((msg.code == Code::CSM).then_some(option), why))
                .or_else(|| self.missing_csm(peer, &msg).map(|why| (None, why)))
        } else {
            None
        };
        let incoming = self.exchanges.handle_incoming(&peer, &msg, now);
        let kind = kind::classify(&msg, &RegistryContext(&self.registry));
        let role = match &incoming {
            Incoming::Response { .. } | Incoming::Reset { .. } => Role::Response,
            Incoming::EmptyAck { .. } => Role::EmptyAck,
            Incoming::Notification { .. } => Role::Notification,
            Incoming::Duplicate { .. } => Role::Duplicate,
            Incoming::Stray { .. } => Role::Stray,
            Incoming::New => Role::New,
        };
        let (mut fresh, mut observed_path, mut request_path) = (None, None, None);
        let mut accept_error = None;
        match &incoming {
            Incoming::Notification {
                observation,
                fresh: f,
                ..
            } => {
                fresh = Some(*f);
                observed_path = self
                    .exchanges
                    .observation(*observation)
                    .map(|o| o.path.clone());
            }
            Incoming::Response { id, .. } | Incoming::Reset { id } => {
                self.mistokened.remove(id);
                if let Some(asked) = self.asked.remove(id) {
                    accept_error = unacceptable(&msg, asked.accept);
                    request_path = Some(asked.path);
                }
            }
            Incoming::EmptyAck { id } => {
                request_path = self.asked.get(id).map(|a| a.path.clone());
            }
            _ => {}
        }
        if role != Role::Duplicate {
            self.session.buffer_payload(&msg.payload);
        }
        let szx = check_szx(&msg)
            .err()
            .map(|e| format!("protocol error: {e}"));
        let decision = (matches!(incoming, Incoming::New) && signaling_fault.is_none())
            .then(|| registrar::answer(&msg, kind, peer, &self.flags, &mut self.registry, wall));
        if let Some(id) = &session_identity {
            // After the registrar: a Register has just made its entry.
            self.registry.set_identity(peer, id);
        }
        let stray = matches!(incoming, Incoming::Stray { .. })
            .then(|| self.stray_note(peer, &msg, wall))
            .flatten();
        let fault_note = signaling_fault
            .as_ref()
            .map(|(_, why)| format!("protocol error: {why}"));
        let note = fault_note
            .or(szx)
            .or(accept_error)
            .or(stray)
            .or_else(|| decision.as_ref().and_then(|d| d.note.clone()));
        // After the registrar: a Register names the registration it made,
        // a De-register the one it ended.
        let endpoint = match decision.as_ref().map(|d| &d.target) {
            Some(Target::Gone(endpoint)) => Some(endpoint.clone()),
            _ => self.registry.endpoint_of(peer),
        };
        let record = Record {
            kind: Some(kind),
            endpoint,
            role,
            observed_path,
            request_path,
            fresh,
            note,
            ..blank(Ok(msg))
        };
        let record = self.session.push(record);
        self.show(&record, None);
        self.session.check_expectation(&record);
        let Ok(msg) = &record.message else { return };
        match incoming {
            Incoming::Response { id, ack } => {
                if let Some(ack) = ack {
                    self.reply(peer, ack, now);
                }
                if self.notification_blocks.contains_key(&id) {
                    self.continue_notification(peer, id, &record, now);
                } else {
                    self.park(id, &record);
                }
            }
            Incoming::Reset { id } => {
                self.notification_blocks.remove(&id);
                self.park(id, &record);
            }
            Incoming::Notification {
                ack, observation, ..
            } => {
                if let Some(ack) = ack {
                    self.reply(peer, ack, now);
                }
                let more = msg.block2().is_some_and(|b| b.more) && msg.code.class() == 2;
                if more {
                    self.start_notification(observation, &record, now);
                } else {
                    self.deliver(record.clone());
                }
            }
            Incoming::Duplicate { reply } => {
                if let Some(reply) = reply {
                    self.reply(peer, reply, now);
                }
            }
            Incoming::Stray { related } => {
                // An answer to a request still waited for, with another
                // token: kept for the error if no right answer comes.
                if let Some(id) = related
                    && self.awaited.contains(&id)
                    && self.exchanges.is_pending(id)
                {
                    let seen = self.mistokened.get(&id).map_or(0, |(n, _)| *n);
                    if self.mistokened.len() < TABLE_LIMIT || seen > 0 {
                        self.mistokened.insert(id, (seen + 1, record.clone()));
                    }
                }
                // A CON nobody waits for (a late separate response, a
                // notification of a cancelled observation) is rejected
                // (RFC 7252 §5.3.2, RFC 7641 §3.6).
                if msg.mtype == Type::Confirmable && !msg.reliable && self.flags.auto_ack {
                    let rst = Message::new(Type::Reset, Code::EMPTY, msg.message_id);
                    self.reply(peer, rst, now);
                }
            }
            Incoming::EmptyAck { id } => {
                // For a CON that is not a request (a ping, a notification),
                // the empty ACK is the whole answer; a request waits on.
                if !self.exchanges.is_pending(id) {
                    self.park(id, &record);
                }
            }
            Incoming::New => {
                let msg = msg.clone();
                if let Some((bad, why)) = signaling_fault {
                    self.deliver(record);
                    self.abort(peer, &why, bad, now);
                    return;
                }
                self.signaling(peer, &msg, &record);
                if let Some(d) = decision {
                    self.apply(peer, &msg, d, &record, now);
                }
                self.deliver(record);
            }
        }
        self.flush();
    }

    /// Why `msg`, received over TCP from `peer`, cannot be processed when
    /// it is the first message on the connection and not a CSM (RFC 8323
    /// §3.3, §5.3): the connection lacks its CSM.
    fn missing_csm(&self, peer: SocketAddr, msg: &Message) -> Option<String> {
        if msg.code == Code::CSM || self.peer_csm.contains_key(&peer) {
            return None;
        }
        Some(format!(
            "the first message on the connection is {}, not a CSM; \
             each endpoint's first message is its CSM, and a connection \
             without one is aborted (RFC 8323 §5.3, §3.3)",
            msg.code
        ))
    }

    /// Records `msg` from a TCP peer nsh already sent an Abort (RFC 8323
    /// §5.6): shown, kept and delivered, but neither matched nor answered.
    fn after_abort(
        &mut self,
        peer: SocketAddr,
        msg: Message,
        blank: impl FnOnce(Result<Message, DecodeError>) -> Record,
    ) {
        let kind = kind::classify(&msg, &RegistryContext(&self.registry));
        let endpoint = self.registry.endpoint_of(peer);
        let record = self.session.push(Record {
            kind: Some(kind),
            endpoint,
            role: Role::New,
            note: Some(
                "received after nsh sent Abort on this connection; not processed (RFC 8323 §5.6)"
                    .into(),
            ),
            ..blank(Ok(msg))
        });
        self.show(&record, None);
        self.session.check_expectation(&record);
        self.deliver(record);
    }

    /// Hands a response to the request waiting for it; nobody waits for a
    /// request sent without waiting, so its response is only in the history.
    fn park(&mut self, id: RequestId, record: &RecordRef) {
        if self.awaited.remove(&id) {
            if self.responses.len() >= TABLE_LIMIT
                && let Some(oldest) = self.responses.keys().min().copied()
            {
                self.responses.remove(&oldest);
            }
            self.responses.insert(id, record.clone());
        }
    }

    fn deliver(&mut self, record: RecordRef) {
        if let Some(dropped) = self.session.deliver(record)
            && (dropped == 1 || dropped % 1000 == 0)
        {
            self.print(format!(
                "inbox full: the oldest unread message was dropped ({dropped} so far); the history keeps them"
            ));
        }
    }

    /// Sends an answer of ours through the exchange layer (so duplicates
    /// get it again).
    fn reply(&mut self, peer: SocketAddr, msg: Message, now: Instant) {
        self.exchanges.send_other(peer, &msg, now);
    }

    fn apply(
        &mut self,
        peer: SocketAddr,
        msg: &Message,
        d: registrar::Decision,
        record: &RecordRef,
        now: Instant,
    ) {
        // Once the user chose, only the chosen device (by address, or the
        // chosen client by name) moves the target.
        let ours = |core: &Core, addr: SocketAddr, endpoint: Option<&str>| {
            !core.chosen
                || core.target == Some(addr)
                || endpoint.is_some_and(|e| core.current.as_deref() == Some(e))
        };
        match d.target {
            Target::Keep => {}
            Target::Client(addr, endpoint) => {
                if ours(self, addr, Some(&endpoint)) {
                    // Another client was current: say that commands move,
                    // as what the prompt shows was drawn before.
                    if let Some(before) = self.current.as_deref()
                        && before != endpoint
                        && self.registry.by_endpoint(before).is_some()
                    {
                        self.print(format!(
                            "commands now go to {endpoint} ({addr}), the newest registration, \
                             not {before} (`use_client` chooses)"
                        ));
                    }
                    self.target = Some(addr);
                    self.current = Some(endpoint);
                } else {
                    let switch = format!("`use_client(\"{endpoint}\")`");
                    self.hint_choice(&format!("{endpoint} ({addr})"), &switch);
                }
            }
            Target::Peer(addr) => {
                if ours(self, addr, None) {
                    self.target = Some(addr);
                    self.current = None;
                } else {
                    self.hint_choice(&addr.to_string(), &format!("`connect` to {addr}"));
                }
            }
            Target::Readdressed(endpoint, addr) => {
                if self.current.as_deref() == Some(endpoint.as_str()) {
                    self.target = Some(addr);
                }
            }
            Target::Gone(endpoint) => self.client_left(&endpoint, "de-registered"),
        }
        if let Some(v) = &d.vacated {
            self.forget_observations(v);
        }
        if d.keep_bootstrap_pack {
            self.print("Received Bootstrap Pack Request (answer it with bootstrap_pack)".into());
            self.session.keep_bootstrap_pack_request(record.clone());
        }
        let reply = match d.reply {
            None => return,
            Some(Reply::Response { code, location }) => {
                let mut r = self.response(peer, msg, code);
                for seg in location.iter().flat_map(|l| l.split('/')) {
                    if !seg.is_empty() {
                        r.add_option(CoapOption::new(OptionNumber::LOCATION_PATH, seg.as_bytes()));
                    }
                }
                r
            }
            Some(Reply::EmptyAck) => {
                Message::new(Type::Acknowledgement, Code::EMPTY, msg.message_id)
            }
            Some(Reply::Reset) => Message::new(Type::Reset, Code::EMPTY, msg.message_id),
            Some(Reply::Pong) => pong(msg),
        };
        self.reply(peer, reply, now);
    }

    /// RFC 8323 §5 signaling over TCP: the peer's CSM is kept, Release and
    /// Abort are reported (the peer closes the connection).
    fn signaling(&mut self, peer: SocketAddr, msg: &Message, record: &RecordRef) {
        if !msg.reliable {
            return;
        }
        match msg.code {
            Code::CSM => {
                self.peer_csm.insert(peer, record.clone());
                self.peer_caps.entry(peer).or_default().update(msg);
            }
            Code::RELEASE | Code::ABORT => {
                let what = if msg.code == Code::RELEASE {
                    "Release"
                } else {
                    "Abort"
                };
                let mut reasons = Vec::new();
                for o in &msg.options {
                    match (msg.code, o.number) {
                        (Code::RELEASE, tcp::HOLD_OFF) => {
                            reasons.push(format!("Hold-Off {} s", tcp::option_text(o)));
                        }
                        (Code::RELEASE, tcp::ALTERNATIVE_ADDRESS) => reasons.push(format!(
                            "Alternative-Address {}",
                            String::from_utf8_lossy(&o.value)
                        )),
                        (Code::ABORT, tcp::BAD_CSM_OPTION) => {
                            reasons.push(format!("Bad-CSM-Option {}", tcp::option_text(o)));
                        }
                        _ => {}
                    }
                }
                let reasons = if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join(", "))
                };
                let why = if msg.payload.is_empty() {
                    String::new()
                } else {
                    format!(": {}", String::from_utf8_lossy(&msg.payload))
                };
                self.print(format!("{peer} sent {what}{reasons}{why}"));
                // A peer that sent Release is normally answered by closing
                // the connection (RFC 8323 §5.5), once what it sent before
                // was answered; after an Abort the peer closes it itself.
                if msg.code == Code::RELEASE {
                    self.close_after_answers(peer, "the peer sent Release".into());
                }
            }
            _ => {}
        }
    }

    /// Rejects what `peer` sent with an Abort (RFC 8323 §5.6) carrying
    /// `diagnostic` (and `bad_csm_option`), recorded and shown like every
    /// message nsh sends, and closes the connection once it went out.
    fn abort(
        &mut self,
        peer: SocketAddr,
        diagnostic: &str,
        bad_csm_option: Option<OptionNumber>,
        now: Instant,
    ) {
        self.reply(peer, tcp::abort(diagnostic, bad_csm_option), now);
        self.aborted.insert(peer);
        self.close_after_answers(peer, format!("nsh sent Abort: {diagnostic}"));
        self.flush();
    }

    /// Closes the connection with `peer` once everything queued for it
    /// went out, the transport saying `why`.
    fn close_after_answers(&mut self, peer: SocketAddr, why: String) {
        // What waits in the exchange layer is queued first.
        self.flush();
        if let Some(t) = self.transport.clone() {
            self.effects.push(Effect::Close(t, peer, why));
        }
    }

    /// The CSM a TCP peer sent last.
    pub(crate) fn peer_csm(&self, peer: SocketAddr) -> Option<RecordRef> {
        self.peer_csm.get(&peer).cloned()
    }

    /// Whether TCP peer `peer` announced BERT in its CSMs (RFC 8323
    /// §5.3.2): only then may a Block option with SZX 7 be sent to it.
    fn peer_bert(&self, peer: SocketAddr) -> bool {
        self.peer_caps
            .get(&peer)
            .is_some_and(tcp::Capabilities::bert)
    }

    /// A TCP connection opened: nsh's CSM is its first message (RFC 8323
    /// §5.3).
    pub(crate) fn on_connected(&mut self, peer: SocketAddr, now: Instant) {
        self.reply(peer, our_csm(), now);
        self.csm_sent.insert(peer);
        self.flush();
    }

    /// Where commands go, or why nowhere: the target's connection closed
    /// (when, and what brings a target back), or none was ever set.
    pub(crate) fn target_or_error(&self) -> Result<SocketAddr, ServerError> {
        match (self.target, &self.lost) {
            (Some(peer), _) => Ok(peer),
            (None, Some(lost)) => Err(ServerError::TargetClosed(format!(
                "the {} closed {}: {}; {}",
                lost.connection,
                crate::transport::at_and_ago(lost.at, SystemTime::now()),
                lost.why,
                lost.then
            ))),
            (None, None) => Err(ServerError::NoPeer),
        }
    }

    /// Whether nsh's CSM to TCP peer `peer` is on its way: what is sent
    /// to it from now on follows the CSM.
    pub(crate) fn csm_sent(&self, peer: SocketAddr) -> bool {
        self.csm_sent.contains(&peer)
    }

    /// A connection closed at `wall` (`why`: the transport's line saying
    /// so): forget what belonged to it; the requests waiting on it end at
    /// once, as no answer can come any more. When commands went to that
    /// peer, they no longer do (a line says so, and a command with
    /// nowhere to send to says why, see [`Core::target_or_error`]): a
    /// client registered over the connection stays current, and becomes
    /// the target again when it registers or updates over a new one; a
    /// peer chosen with `connect` is forgotten with its choice.
    pub(crate) fn on_closed(&mut self, peer: SocketAddr, why: &str, wall: SystemTime) {
        self.peer_csm.remove(&peer);
        self.peer_caps.remove(&peer);
        self.csm_sent.remove(&peer);
        self.aborted.remove(&peer);
        if self.target == Some(peer) {
            self.target = None;
            let who = match &self.current {
                Some(endpoint) => format!("{endpoint} ({peer})"),
                None => peer.to_string(),
            };
            // `TCP connection with 127.0.0.1:41234 closed: closed by the peer`.
            let (what, reason) = why.split_once(" closed: ").unwrap_or((why, "closed"));
            let kind = what
                .split_once(" with ")
                .map_or("TCP connection", |(k, _)| k);
            let then = match &self.current {
                Some(endpoint) => format!(
                    "commands go to {endpoint} again once it registers or updates over a new connection"
                ),
                None => {
                    self.chosen = false;
                    "`connect` opens a new one".to_string()
                }
            };
            self.lost = Some(Lost {
                connection: format!("{kind} with {who}"),
                why: reason.to_string(),
                at: wall,
                then,
            });
            self.print(format!("commands no longer go to {who}: the {why}"));
        }
        self.end_exchanges_with(peer, why);
    }

    /// A DTLS session with `peer` ended (`why`: how and when): requests
    /// to it still waiting fail at once with that, rather than waiting
    /// out their time for an answer that can no longer come.
    pub(crate) fn on_session_ended(&mut self, peer: SocketAddr, why: &str) {
        self.end_exchanges_with(peer, why);
    }

    /// Ends every exchange with `peer`: those a command waits for end as
    /// closed, for `why`.
    fn end_exchanges_with(&mut self, peer: SocketAddr, why: &str) {
        let ended = self.exchanges.pending_to(&peer);
        for &id in &ended {
            self.exchanges.cancel_request(id);
            self.asked.remove(&id);
            self.notification_blocks.remove(&id);
            self.mistokened.remove(&id);
            if self.awaited.remove(&id) {
                self.end(id, Ended::Closed(why.to_string()));
            }
        }
        if !ended.is_empty() {
            self.flush();
        }
    }

    /// A fault the transport injected (`set loss=…`): recorded in the
    /// history, shown like the datagram's line with what happened to it.
    /// Over DTLS the datagram is an encrypted record, shown by its size.
    pub(crate) fn on_fault(&mut self, fault: crate::transport::FaultEvent, wall: SystemTime) {
        let message = udp::decode(&fault.bytes);
        let kind = message
            .as_ref()
            .ok()
            .map(|m| kind::classify(m, &RegistryContext(&self.registry)));
        let record = self.session.push(Record {
            seq: 0,
            direction: if fault.outgoing {
                Direction::Sent
            } else {
                Direction::Received
            },
            peer: fault.peer,
            at: wall,
            raw: fault.bytes,
            reliable: false,
            message,
            kind,
            role: Role::Injected,
            observed_path: None,
            request_path: None,
            fresh: None,
            note: Some(fault.what),
            objects: self.objects.clone(),
            identity: None,
            endpoint: self.registry.endpoint_of(fault.peer),
        });
        self.show(&record, None);
    }

    /// A new socket: the next registration is current again, until
    /// `connect` or `use_client` chooses. The target stays, unless the old
    /// socket was TCP: its connections closed with it, so the target
    /// (a peer, or a client registered over one of them) is forgotten, as
    /// is what nsh kept of each connection.
    pub(crate) fn replace_transport(&mut self, transport: Arc<Transport>) {
        let old = self.transport.replace(transport);
        self.chosen = false;
        self.lost = None;
        if !old.is_some_and(|t| t.is_reliable()) {
            return;
        }
        self.peer_csm.clear();
        self.peer_caps.clear();
        self.csm_sent.clear();
        self.aborted.clear();
        if let Some(addr) = self.target.take() {
            let who = match self.current.take() {
                Some(endpoint) => format!("{endpoint} ({addr})"),
                None => addr.to_string(),
            };
            self.print(format!(
                "commands no longer go to {who}: its TCP connection closed with the old socket"
            ));
        }
    }

    /// Says, once per choice, that a device which would have become the
    /// target did not, because the user chose another; `switch` is the
    /// command that would make it the target.
    fn hint_choice(&mut self, who: &str, switch: &str) {
        if self.hinted {
            return;
        }
        self.hinted = true;
        let chosen = match (&self.current, self.target) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Some(addr)) => addr.to_string(),
            (None, None) => "nowhere".into(),
        };
        self.print(format!(
            "{who} would be the current client, but commands still go to {chosen} as chosen; \
             {switch} or `unconnect` changes that (said once)"
        ));
    }

    /// The user chose where commands go: `peer` (`connect`), registered
    /// as `endpoint` (`use_client`); `None` forgets the choice
    /// (`unconnect`), and the newest registration is current again.
    pub(crate) fn choose(&mut self, peer: Option<SocketAddr>, endpoint: Option<String>) {
        self.chosen = peer.is_some();
        self.lost = None;
        self.hinted = false;
        self.target = peer;
        self.current = endpoint;
    }

    /// `unconnect`: the choice is forgotten, and the newest registration
    /// is current at once (a line says so).
    pub(crate) fn unconnect(&mut self) {
        self.choose(None, None);
        if let Some((endpoint, addr)) = self.newest_client() {
            self.target = Some(addr);
            self.current = Some(endpoint.clone());
            self.print(format!(
                "commands now go to {endpoint} ({addr}), the newest registration"
            ));
        }
    }

    fn newest_client(&self) -> Option<(String, SocketAddr)> {
        self.registry
            .clients()
            .next_back()
            .map(|c| (c.endpoint.to_string(), c.peer))
    }

    /// `endpoint` is no longer registered (`why`: "de-registered"). When
    /// it was current, the newest client still registered becomes current,
    /// or none; a client chosen with `use_client` keeps the choice, and
    /// commands wait for it to register again. A line says which.
    fn client_left(&mut self, endpoint: &str, why: &str) {
        if self.current.as_deref() != Some(endpoint) {
            return;
        }
        self.lost = None;
        if self.chosen {
            self.target = None;
            self.print(format!(
                "{endpoint} {why}: commands go nowhere until it registers again, as it was chosen \
                 (`use_client` or `unconnect` changes that)"
            ));
            return;
        }
        let next = self.newest_client();
        self.target = next.as_ref().map(|(_, addr)| *addr);
        self.current = next.as_ref().map(|(e, _)| e.clone());
        self.print(match next {
            Some((next, addr)) => format!("{endpoint} {why}: commands now go to {next} ({addr})"),
            None => format!("{endpoint} {why}: no client is registered now"),
        });
    }

    /// The observations held on an address its client left can no longer
    /// be served from there: forgotten (a late notification is then
    /// answered with a Reset, RFC 7641 §3.6), a line for each.
    fn forget_observations(&mut self, v: &registrar::Vacated) {
        for peer in &v.peers {
            for o in self.exchanges.cancel_observations_of(peer) {
                let path = if o.path.is_empty() {
                    "a composite path list".to_string()
                } else {
                    o.path
                };
                self.print(format!(
                    "forgot the observation of {path} by {} ({peer}): {}",
                    v.endpoint, v.why
                ));
            }
        }
    }

    /// A DTLS session moved to a new address (Connection ID): its
    /// registrations and the command target follow it.
    pub(crate) fn on_moved(&mut self, old: SocketAddr, new: SocketAddr) {
        for endpoint in self.registry.moved(old, new) {
            self.print(format!(
                "registration of {endpoint} follows its DTLS session from {old} to {new}"
            ));
        }
        if self.target == Some(old) {
            self.target = Some(new);
        }
    }

    /// A 2.04 Changed the user sends to `peer` for an Update it sent
    /// (same message ID and token; `set auto_update=0`): the Update is
    /// applied as an auto-answered one is, so the registration lives on
    /// (its lifetime counted from when the Update arrived).
    fn update_answered_by_hand(&mut self, peer: SocketAddr, changed: &Message) {
        let update = self
            .session
            .history()
            .rev()
            .take(STRAY_LOOKBACK)
            .filter(|r| r.direction == Direction::Received && r.peer == peer)
            .filter(|r| r.kind == Some(kind::Kind::Update))
            .find_map(|r| {
                r.message
                    .as_ref()
                    .ok()
                    .filter(|m| {
                        m.token == changed.token
                            && (changed.reliable || m.message_id == changed.message_id)
                    })
                    .map(|m| (m.clone(), r.at))
            });
        if let Some((update, at)) = update
            && let Some(endpoint) = registrar::apply_update(&update, peer, &mut self.registry, at)
            && self.current.as_deref() == Some(endpoint.as_str())
        {
            self.target = Some(peer);
        }
    }

    /// What a stray answer from `peer` relates to, found among the latest
    /// records: the request it names by message ID (an ACK or RST) or by
    /// token (a separate response), and the answer that request already
    /// had. `None` when it names none of them.
    fn stray_note(&self, peer: SocketAddr, msg: &Message, wall: SystemTime) -> Option<String> {
        let by_id = !msg.reliable && matches!(msg.mtype, Type::Acknowledgement | Type::Reset);
        let names = |m: &Message| {
            if by_id {
                m.message_id == msg.message_id
            } else {
                m.token == msg.token
            }
        };
        // Newest first: the answers after the request, then the request
        // (its latest transmission), then its earlier transmissions.
        let mut answer: Option<&Record> = None;
        let mut request: Option<(&Record, &Message)> = None;
        let mut copies = 0;
        let mut first_sent = wall;
        for r in self.session.history().rev().take(STRAY_LOOKBACK) {
            let Ok(m) = &r.message else { continue };
            if r.peer != peer || !names(m) {
                continue;
            }
            match (r.direction, request) {
                (Direction::Received, None)
                    if matches!(r.role, Role::Response | Role::EmptyAck) =>
                {
                    answer = Some(r);
                }
                (Direction::Sent, None) if m.code.is_request() => {
                    request = Some((r, m));
                    copies = 1;
                    first_sent = r.at;
                }
                (Direction::Sent, Some((_, req))) if m.token == req.token => {
                    copies += 1;
                    first_sent = r.at;
                }
                _ => {}
            }
        }
        let (sent, req) = request?;
        let what = sent.summary();
        let named_by = if by_id {
            format!("message ID {}", msg.message_id)
        } else {
            format!("token {}", token_words(&msg.token))
        };
        if let Some(a) = answer {
            let ago = ago(wall, a.at);
            let first = match &a.message {
                Ok(m) if m.code.is_empty() && m.mtype == Type::Reset => "a Reset".to_string(),
                Ok(m) if m.code.is_empty() => "an empty ACK".to_string(),
                Ok(m) => m.code.to_string(),
                Err(_) => "a datagram".to_string(),
            };
            return Some(if copies > 1 {
                format!(
                    "an answer to a retransmission of `{what}` ({named_by}), which {first} answered {ago} before"
                )
            } else {
                format!(
                    "protocol error: a second answer to `{what}` ({named_by}), which {first} answered {ago} before; nsh sent it once, so one answer was due (RFC 7252 §4.2)"
                )
            });
        }
        if by_id && msg.code.is_response() && msg.token != req.token {
            return Some(format!(
                "protocol error: message ID {} is that of `{what}`, whose token is {}, not {}; a piggybacked response carries its request's token (RFC 7252 §5.3.2)",
                msg.message_id,
                token_words(&req.token),
                token_words(&msg.token)
            ));
        }
        Some(format!(
            "`{what}` was no longer waited for (it was sent {} before)",
            ago(wall, first_sent)
        ))
    }

    /// Timers: registration lifetimes, retransmissions, exchange lifetimes.
    pub(crate) fn on_timeout(&mut self, now: Instant, wall: SystemTime) {
        for gone in self.registry.expire(wall) {
            self.print(format!(
                "registration of {} ({}) expired: no Update within its lifetime of {} s",
                gone.endpoint,
                gone.location,
                gone.registration.lifetime_or_default()
            ));
            self.client_left(&gone.endpoint, "expired");
            let why = "its registration expired".to_string();
            if let Some(v) = registrar::vacated(&self.registry, &gone, why) {
                self.forget_observations(&v);
            }
        }
        self.exchanges.handle_timeout(now);
        self.flush();
    }

    fn keep_sent(&mut self, seq: u64, outcome: Result<RecordRef, String>) {
        // Taken at once by the sender; bounded for senders that were
        // interrupted before they took theirs.
        if self.sent.len() >= TABLE_LIMIT
            && let Some(oldest) = self.sent.keys().min().copied()
        {
            self.sent.remove(&oldest);
        }
        self.sent.insert(seq, outcome);
    }

    /// Takes the outcome of the awaited transmission `seq`, once the
    /// transport took it or refused it.
    pub(crate) fn take_sent(&mut self, seq: u64) -> Option<Result<RecordRef, String>> {
        self.sent.remove(&seq)
    }

    /// Takes the response to `id`, or why it will not come.
    pub(crate) fn take_outcome(&mut self, id: RequestId) -> Option<Result<RecordRef, Ended>> {
        if let Some(r) = self.responses.remove(&id) {
            return Some(Ok(r));
        }
        self.ended.remove(&id).map(Err)
    }

    /// Nobody waits for `id` any more: stop it.
    pub(crate) fn abandon(&mut self, id: RequestId) {
        self.awaited.remove(&id);
        self.mistokened.remove(&id);
        self.responses.remove(&id);
        self.ended.remove(&id);
        self.asked.remove(&id);
        self.exchanges.cancel_request(id);
        self.flush();
    }

    fn remember_request(&mut self, id: RequestId, asked: Asked) {
        if self.asked.len() >= TABLE_LIMIT {
            self.asked.pop_first();
        }
        self.asked.insert(id, asked);
    }

    /// A notification whose Block2 says more follows: ask for the next
    /// block with a copy of the observation's request without Observe, on
    /// a new token (RFC 7959 §2.6).
    fn start_notification(&mut self, observation: ObservationId, first: &RecordRef, now: Instant) {
        let Ok(msg) = &first.message else { return };
        let mut assembly = Block2Assembly::new();
        let observation_of = self.exchanges.observation(observation);
        let request = observation_of.map(|o| o.request_message().clone());
        let bert = observation_of.is_some_and(|o| self.peer_bert(o.peer));
        // Ok(None): nothing to complete (or too many at once): deliver the
        // first block as it is; Err: say why, then do the same.
        let started = match (assembly.push(msg), request) {
            (Err(e), _) => Err(e.to_string()),
            (Ok(_), Some(request)) if self.notification_blocks.len() < NOTIFICATION_ASSEMBLIES => {
                self.exchanges
                    .send_next_notification_block2(observation, msg, bert, now)
                    .map(|id| id.map(|id| (id, request)))
                    .map_err(|e| e.to_string())
            }
            _ => Ok(None),
        };
        match started {
            Ok(Some((id, request))) => {
                self.remember_request(id, Asked::of(&request));
                self.notification_blocks.insert(
                    id,
                    NotificationAssembly {
                        first: first.clone(),
                        assembly,
                        request,
                        blocks: 1,
                    },
                );
            }
            Ok(None) => self.deliver(first.clone()),
            Err(why) => {
                self.print(format!(
                    "block-wise notification of {}: {why}; keeping the first block",
                    first.observed_path.as_deref().unwrap_or("?")
                ));
                self.deliver(first.clone());
            }
        }
    }

    fn continue_notification(
        &mut self,
        peer: SocketAddr,
        id: RequestId,
        block: &RecordRef,
        now: Instant,
    ) {
        let Some(mut a) = self.notification_blocks.remove(&id) else {
            return;
        };
        let Ok(msg) = &block.message else { return };
        a.blocks += 1;
        let step = a.assembly.push(msg).map_err(|e| e.to_string());
        match step {
            Ok(BlockProgress::Complete) => {
                let record = self.assembled(peer, &a.first, a.assembly.into_body(), block.at);
                self.show(
                    &record,
                    Some(format!(" (assembled from {} blocks)", a.blocks)),
                );
                self.deliver(record);
            }
            Ok(BlockProgress::Next(_)) => {
                let bert = self.peer_bert(peer);
                let next = self
                    .exchanges
                    .send_next_block2(peer, id, &a.request, msg, bert, now);
                match next {
                    Some(next) => {
                        self.remember_request(next, Asked::of(&a.request));
                        self.notification_blocks.insert(next, a);
                    }
                    None => self.deliver(a.first.clone()),
                }
            }
            Err(e) => {
                self.print(format!(
                    "block-wise notification of {}: block {} failed: {e}; keeping the first block",
                    a.first.observed_path.as_deref().unwrap_or("?"),
                    a.blocks
                ));
                self.deliver(a.first.clone());
            }
        }
    }

    /// A record of a whole body put together from blocks (not in the
    /// history, which keeps the real datagrams).
    pub(crate) fn assembled(
        &self,
        peer: SocketAddr,
        first: &RecordRef,
        body: Vec<u8>,
        at: SystemTime,
    ) -> RecordRef {
        let message = first.message.as_ref().ok().map(|m| {
            let mut whole = m.clone();
            whole.remove_option(OptionNumber::BLOCK2);
            whole.payload = body;
            whole
        });
        let Some(whole) = message else {
            return first.clone();
        };
        Arc::new(Record {
            seq: first.seq,
            direction: Direction::Received,
            peer,
            at,
            raw: encode(&whole),
            reliable: first.reliable,
            message: Ok(whole),
            kind: first.kind,
            role: Role::Assembled,
            observed_path: first.observed_path.clone(),
            request_path: first.request_path.clone(),
            fresh: first.fresh,
            note: None,
            objects: first.objects.clone(),
            identity: first.identity.clone(),
            endpoint: first.endpoint.clone(),
        })
    }
}

/// The protocol error of a 2.05 Content in another format than the
/// request's Accept asked for (RFC 7252 §5.10.4).
fn unacceptable(msg: &Message, accept: Option<ContentFormat>) -> Option<String> {
    let accept = accept?;
    let format = msg.content_format()?;
    (msg.code == Code::CONTENT && format != accept).then(|| {
        format!(
            "protocol error: Content-Format {format} answers a request whose Accept is {accept}; 4.06 Not Acceptable was due (RFC 7252 §5.10.4)"
        )
    })
}

/// A token as the history shows it (`\\x12\\x34`), or `the empty token`.
fn token_words(token: &[u8]) -> String {
    if token.is_empty() {
        "the empty token".to_string()
    } else {
        crate::coap::escaped::format_hex(token)
    }
}

/// How long before `now` `then` was: `40 ms`, `1.5 s`.
fn ago(now: SystemTime, then: SystemTime) -> String {
    let d = now.duration_since(then).unwrap_or_default();
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// One line naming a message, for errors.
fn summary_of(msg: &Message) -> String {
    crate::lwm2m::summary::summary(msg, kind::classify(msg, &kind::NoContext))
}

/// A Pong for a TCP Ping (RFC 8323 §5.4), with its token, and with a
/// Custody option when the Ping asked for one (§5.4.1): everything
/// received before the Ping was handled before it, in order.
fn pong(ping: &Message) -> Message {
    let mut pong = Message::new(Type::Confirmable, Code::PONG, 0);
    pong.reliable = true;
    pong.token = ping.token.clone();
    if ping.option(tcp::CUSTODY).is_some() {
        pong.add_option(CoapOption::new(tcp::CUSTODY, b""));
    }
    pong
}

/// Whether `bytes`, a received frame that does not decode, is the start of
/// one whose connection ended before the rest came (the transport delivers
/// a connection's leftover bytes so; any other frame is whole, or the start
/// of one over [`crate::transport::tcp::MAX_FRAME`]).
fn cut_short_at_close(bytes: &[u8]) -> bool {
    match tcp::announced(bytes) {
        None => true,
        Some((total, _)) => total > bytes.len() && total <= crate::transport::tcp::MAX_FRAME,
    }
}

/// The CSM nsh sends on each TCP connection (RFC 8323 §5.3): the largest
/// message it takes (Max-Message-Size, option 2) and Block-Wise-Transfer
/// (option 4), which with a Max-Message-Size over 1152 announces BERT too
/// (§5.3.2, §6).
fn our_csm() -> Message {
    let mut csm = Message::new(Type::Confirmable, Code::CSM, 0);
    csm.reliable = true;
    csm.add_option(CoapOption::uint(
        tcp::MAX_MESSAGE_SIZE,
        crate::transport::tcp::MAX_FRAME as u64,
    ));
    csm.add_option(CoapOption::new(tcp::BLOCK_WISE_TRANSFER, Vec::new()));
    csm
}
