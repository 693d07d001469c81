//! CoAP exchange rules, sans-IO: message IDs and tokens (RFC 7252 §4.4,
//! §5.3.1), CON retransmission (§4.2, §4.8), NSTART (§4.7), matching
//! responses to requests (§5.3.2), duplicate detection (§4.5), the
//! observation registry (RFC 7641) and block-wise transfers (RFC 7959:
//! Block2 reassembly of responses and notifications, Block1 uploads; over
//! TCP with BERT, RFC 8323 §6).
//!
//! One [`Exchanges`] serves every peer of an endpoint. It owns no socket and
//! reads no clock: the caller passes decoded messages and `now` in, and takes
//! datagrams ([`Exchanges::poll_transmit`]), events
//! ([`Exchanges::poll_event`]) and the next deadline
//! ([`Exchanges::poll_timeout`]) out, calling [`Exchanges::handle_timeout`]
//! when that deadline passes — the shape of `quinn-proto`.
//!
//! Contracts (each backed by tests in `tests/`):
//! - never panics, whatever the peer sends or the parameters say;
//! - a response is only ever matched to the request with the same peer and
//!   token (and, for a piggybacked ACK, the same message ID);
//! - while a deregistration (GET with Observe=1, RFC 7641 §3.6) waits for
//!   its response, a separate message with its token that carries an
//!   Observe option is a notification of the observation, not that
//!   response;
//! - memory is bounded, whatever the peers send and whatever the
//!   parameters say ([`Limits`], drops counted in [`Dropped`]):
//!   - finished requests (remembered to relate late answers) are forgotten
//!     after EXCHANGE_LIFETIME, and beyond [`Limits::finished`] the oldest
//!     is forgotten at once;
//!   - the peer's message IDs (duplicate detection, with the reply sent)
//!     are forgotten after EXCHANGE_LIFETIME / NON_LIFETIME, and beyond
//!     [`Limits::duplicates`] the one expiring first is dropped;
//!   - observations end with the peer's final notification, a
//!     deregistration or a cancel, and a peer keeps at most
//!     [`Limits::observations_per_peer`]: establishing one more ends the
//!     oldest ([`Event::ObservationEnded`]; its notifications are then
//!     stray);
//!   - message ID counters are kept for at most [`Limits::peers`] peers (a
//!     forgotten peer starts again at a random ID);
//!   - pending requests expire (EXCHANGE_LIFETIME after their last
//!     transmission or empty ACK), except those queued behind NSTART,
//!     which the caller creates; datagrams and events wait in queues the
//!     caller drains with `poll_transmit` and `poll_event`;
//! - a datagram costs about the same whether one client is observed or
//!   thousands are, and whether one message of ours is tracked or
//!   thousands are (NON answers are tracked for NON_LIFETIME): observations
//!   are found by peer and by token, tracked messages among their peer's,
//!   deadlines in order, and the message a duplicate's reply answers by
//!   peer and token, never by looking through all of them
//!   (`benches/exchanges.rs`).
//!
//! Messages marked `reliable` (CoAP over TCP, RFC 8323) have no type and no
//! message ID: such a request is never retransmitted and waits for the
//! response with its token; an incoming reliable message is never a
//! duplicate, needs no ACK, and a response is matched by peer and token
//! only. Replies to reliable messages are sent at once and not tracked.
//!
//! It does not decide how to answer the peer: it returns the empty ACK a CON
//! response needs and the cached reply to a duplicate, and the caller sends
//! them (through [`Exchanges::send_other`], which caches them in turn).

mod block;
mod dedup;
mod incoming;
mod observe;
mod params;
mod pending;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::coap::{Code, Message, OptionNumber, Type};

pub use block::{
    Block1Progress, Block1Request, Block1Upload, Block2Assembly, BlockError, BlockProgress,
    Progress, check_szx, next_block2_request, next_notification_block2_request,
};
use observe::Observations;
pub use observe::{Observation, ObservationId};
pub use params::TransmissionParams;
use pending::Pending;

use dedup::Dedup;

/// Bounds on what [`Exchanges`] remembers (see the module contract).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Finished requests remembered to relate late answers (16,384).
    pub finished: usize,
    /// Message IDs of the peers remembered for duplicate detection
    /// (65,536).
    pub duplicates: usize,
    /// Observations per peer (1,024; at least 1).
    pub observations_per_peer: usize,
    /// Peers with a message ID counter (65,536).
    pub peers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            finished: 16_384,
            duplicates: dedup::MAX_ENTRIES,
            observations_per_peer: 1_024,
            peers: 65_536,
        }
    }
}

/// What [`Exchanges`] forgot early because a [`Limits`] bound was
/// reached, counted since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Finished requests forgotten before EXCHANGE_LIFETIME.
    pub finished: u64,
    /// Message IDs forgotten before their lifetime.
    pub duplicates: u64,
    /// Observations ended to make room for a newer one of the same peer.
    pub observations: u64,
    /// Message ID counters forgotten.
    pub peers: u64,
}

/// Identifies one message we sent and track: a request, or a CON/NON
/// message registered with [`Exchanges::send_other`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RequestId(u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request #{}", self.0)
    }
}

/// Something that happened on its own, reported by
/// [`Exchanges::poll_event`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// The peer acknowledged our CON `id` with an ACK (empty or
    /// piggybacked); it is no longer retransmitted.
    Acked(RequestId),
    /// Our CON `id` was transmitted 1 + MAX_RETRANSMIT times without an ACK
    /// or RST; it is forgotten.
    GaveUp(RequestId),
    /// Request `id` (or a CON sent with retransmission off) got no answer
    /// within EXCHANGE_LIFETIME of its last transmission or its empty ACK;
    /// it is forgotten.
    Expired(RequestId),
    /// An observation was established.
    Observed(ObservationId),
    /// An observation ended: the peer sent an error or a response without
    /// Observe, the observation was re-registered (it is replaced by a new
    /// one), an Observe=1 request deregistered it, or the peer reached
    /// [`Limits::observations_per_peer`] and it was the oldest.
    ObservationEnded(ObservationId),
}

/// What an incoming message is, from [`Exchanges::handle_incoming`].
#[derive(Clone, PartialEq, Debug)]
pub enum Incoming {
    /// The response to our pending request `id` (piggybacked ACK, or
    /// separate CON/NON response, matched by token — and for ACKs also by
    /// message ID). `ack` = the empty ACK to send when the response was CON.
    Response {
        /// The request it answers; it is no longer pending.
        id: RequestId,
        /// The empty ACK to send.
        ack: Option<Message>,
    },
    /// Empty ACK for our CON `id`: it is no longer retransmitted. For a
    /// request a separate response follows (except for a CoAP ping, which
    /// is finished by it); a CON sent with `send_other` is finished.
    EmptyAck {
        /// The acknowledged message.
        id: RequestId,
    },
    /// RST for one of our CON/NON messages (matched by message ID); it is
    /// finished.
    Reset {
        /// The rejected message.
        id: RequestId,
    },
    /// A notification for an established observation (matched by peer and
    /// token). `fresh` per RFC 7641 §3.4; `ack` = the empty ACK to send when
    /// CON. An error or a response without Observe ends the observation
    /// (then `fresh` is true and [`Event::ObservationEnded`] follows).
    /// A message with Observe that arrives while a deregistration with the
    /// same token waits is a notification too (RFC 7641 §3.6).
    Notification {
        /// The observation.
        observation: ObservationId,
        /// Newer than every notification seen before.
        fresh: bool,
        /// The empty ACK to send.
        ack: Option<Message>,
    },
    /// A duplicate of a CON/NON the peer sent before (same peer and message
    /// ID within EXCHANGE_LIFETIME / NON_LIFETIME): do not process it again;
    /// `reply` = what we sent to the first copy, if anything (resend it).
    Duplicate {
        /// The cached reply.
        reply: Option<Message>,
    },
    /// A response, ACK or RST that matches no pending request: a second ACK
    /// for a request already answered, a response to a cancelled request,
    /// a notification nobody observes. `related` = the finished request it
    /// seems to belong to (same message ID for ACK/RST, same token for a
    /// response), if remembered.
    Stray {
        /// The finished request it seems to belong to.
        related: Option<RequestId>,
    },
    /// Anything else: a request or other message from the peer (Register,
    /// Update, Send, a CoAP ping…). The caller decides how to answer.
    New,
}

/// What a tracked message is.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A request; `operation` is the first request of a block-wise series.
    Request { operation: RequestId },
    /// A CON/NON message that is not a request (a response, a notification).
    Other,
}

/// Where a tracked message is in its life.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Held back by NSTART; not transmitted yet.
    Queued,
    /// A CON transmitted and not acknowledged yet. `deadline`: the next
    /// retransmission or giving up (`None`: never).
    Unacked {
        retransmits: u32,
        timeout: Duration,
        deadline: Option<Instant>,
        retransmit: bool,
    },
    /// Acknowledged or NON: waiting for a response until `deadline`.
    Waiting { deadline: Option<Instant> },
}

impl Phase {
    fn deadline(&self) -> Option<Instant> {
        match *self {
            Phase::Queued => None,
            Phase::Unacked { deadline, .. } | Phase::Waiting { deadline } => deadline,
        }
    }
}

/// A message we sent and still track.
#[derive(Clone, Debug)]
struct Outgoing<P> {
    peer: P,
    msg: Message,
    kind: Kind,
    phase: Phase,
}

impl<P> Outgoing<P> {
    fn operation(&self, id: RequestId) -> RequestId {
        match self.kind {
            Kind::Request { operation } => operation,
            Kind::Other => id,
        }
    }
}

/// A message we no longer track, remembered to recognise late answers.
#[derive(Clone, Debug)]
struct Finished<P> {
    id: RequestId,
    operation: RequestId,
    peer: P,
    token: Vec<u8>,
    message_id: u16,
    expires: Option<Instant>,
}

/// The exchange state of one endpoint, for all its peers. `P` is the peer
/// address type, e.g. `SocketAddr`.
#[derive(Debug)]
pub struct Exchanges<P> {
    params: TransmissionParams,
    rng: StdRng,
    /// The latest `now` seen, for calls that take none.
    now: Option<Instant>,
    next_id: u64,
    message_ids: HashMap<P, u16>,
    outgoing: Pending<P>,
    finished: VecDeque<Finished<P>>,
    dedup: Dedup<P>,
    observations: Observations<P>,
    next_observation: u64,
    /// Datagrams to send, with the tracked message each one is (none for
    /// an ACK or RST).
    transmits: VecDeque<(P, Message, Option<RequestId>)>,
    events: VecDeque<Event>,
    limits: Limits,
    dropped: Dropped,
}

/// `now + d`, or `None` (never) when that is not representable.
fn after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

/// Takes `id` out of the list an index keeps under `key`, and the list
/// once it is empty (the indexes of [`Observations`] and [`Dedup`]).
fn unindex<K, Q, T, S>(index: &mut HashMap<Q, Vec<T>, S>, key: &K, id: T)
where
    K: Eq + Hash + ?Sized,
    Q: Eq + Hash + std::borrow::Borrow<K>,
    T: PartialEq,
    S: std::hash::BuildHasher,
{
    if let Some(ids) = index.get_mut(key) {
        ids.retain(|i| *i != id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

fn empty_ack(message_id: u16) -> Message {
    Message::new(Type::Acknowledgement, Code::EMPTY, message_id)
}

impl<P: Clone + Eq + Hash + fmt::Debug> Exchanges<P> {
    /// A new endpoint state. `seed` drives tokens, initial message IDs and
    /// retransmission jitter, so runs are reproducible.
    pub fn new(params: TransmissionParams, seed: u64) -> Self {
        Exchanges {
            params,
            rng: StdRng::seed_from_u64(seed),
            now: None,
            next_id: 0,
            message_ids: HashMap::new(),
            outgoing: Pending::default(),
            finished: VecDeque::new(),
            dedup: Dedup::new(),
            observations: Observations::default(),
            next_observation: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            limits: Limits::default(),
            dropped: Dropped::default(),
        }
    }

    /// The bounds on what is remembered.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Replaces the bounds; what exceeds them now is dropped as more
    /// arrives.
    pub fn set_limits(&mut self, limits: Limits) {
        self.dedup.set_max(limits.duplicates);
        self.limits = limits;
    }

    /// What was forgotten early because a bound was reached.
    pub fn dropped(&self) -> Dropped {
        Dropped {
            duplicates: self.dedup.dropped(),
            ..self.dropped
        }
    }

    /// The transmission parameters.
    pub fn params(&self) -> &TransmissionParams {
        &self.params
    }

    /// Replaces the transmission parameters. Messages already in flight keep
    /// their current timeout and retransmission setting; MAX_RETRANSMIT and
    /// the lifetimes apply from their next step, and a raised NSTART
    /// releases queued messages at once.
    pub fn set_params(&mut self, params: TransmissionParams) {
        self.params = params;
        if let Some(now) = self.now {
            self.pump(now);
        }
    }

    /// The next message ID for `peer`: a per-peer sequence starting at a
    /// random value (RFC 7252 §4.4).
    pub fn next_message_id(&mut self, peer: &P) -> u16 {
        if let Some(next) = self.message_ids.get_mut(peer) {
            let id = *next;
            *next = next.wrapping_add(1);
            return id;
        }
        if self.message_ids.len() >= self.limits.peers {
            let other = self.message_ids.keys().next().cloned();
            if let Some(other) = other {
                self.message_ids.remove(&other);
                self.dropped.peers += 1;
            }
        }
        // A random start per peer (RFC 7252 §4.4).
        let id: u16 = self.rng.random();
        self.message_ids.insert(peer.clone(), id.wrapping_add(1));
        id
    }

    /// A fresh 8-byte random token for a request to `peer` (RFC 7252
    /// §5.3.1), not used by a message tracked to it or an observation of
    /// it (a token is matched per peer).
    pub fn new_token(&mut self, peer: &P) -> Vec<u8> {
        let mut token = vec![0u8; 8];
        for _ in 0..16 {
            self.rng.fill(token.as_mut_slice());
            let in_use = self.outgoing.with_token(peer, &token).next().is_some()
                || self
                    .observations
                    .with_token(&token)
                    .any(|o| o.peer == *peer);
            if !in_use {
                break;
            }
        }
        token
    }

    fn touch(&mut self, now: Instant) {
        if self.now.is_none_or(|t| t < now) {
            self.now = Some(now);
        }
    }

    fn alloc_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    /// Registers an outgoing request whose message ID and token are filled
    /// in, and queues it for transmission (after earlier ones to the same
    /// peer when NSTART is reached). A CON is retransmitted until ACKed,
    /// answered or reset; any request waits for its response by token.
    pub fn send_request(&mut self, peer: P, msg: Message, now: Instant) -> RequestId {
        let id = self.alloc_id();
        self.track(id, peer, msg, Kind::Request { operation: id }, now, false);
        id
    }

    /// Whether a request `msg` to `peer` given now would be transmitted at
    /// once: nothing waits to be transmitted before it, and NSTART leaves
    /// room for a CON.
    pub fn starts_at_once(&self, peer: &P, msg: &Message) -> bool {
        self.transmits.is_empty() && self.outgoing.queued_len() == 0 && self.room_for(peer, msg)
    }

    /// Registers a request the caller has already transmitted, at `now`,
    /// as [`Exchanges::send_request`] would have released it; only when
    /// [`Exchanges::starts_at_once`] said so just before (otherwise it is
    /// queued and transmitted again, as `send_request` does). Sending
    /// first lets the datagram leave before the bookkeeping is done.
    pub fn sent_request(&mut self, peer: P, msg: Message, now: Instant) -> RequestId {
        let id = self.alloc_id();
        self.track(id, peer, msg, Kind::Request { operation: id }, now, true);
        id
    }

    /// Registers and queues the request for the block after `response`'s,
    /// as part of the same operation as `previous` (RFC 7959 §2.4): a copy
    /// of `request` with the next Block2 number, no Observe, a new message
    /// ID and a new token; after a BERT block (RFC 8323 §6) with SZX 7 only
    /// when `peer_bert` (the peer announced BERT in its CSM), see
    /// [`next_block2_request`]. `None` when there is no further block.
    pub fn send_next_block2(
        &mut self,
        peer: P,
        previous: RequestId,
        request: &Message,
        response: &Message,
        peer_bert: bool,
        now: Instant,
    ) -> Option<RequestId> {
        let mut msg = next_block2_request(request, response, peer_bert)?;
        msg.message_id = self.next_message_id(&peer);
        msg.token = self.new_token(&peer);
        let operation = self.operation_of(previous).unwrap_or(previous);
        let id = self.alloc_id();
        self.track(id, peer, msg, Kind::Request { operation }, now, false);
        Some(id)
    }

    /// Registers and queues the request for the second block of a
    /// block-wise notification of `observation` (RFC 7959 §2.6): a GET
    /// like the establishing request but without Observe, asking for
    /// block 1 in the notification's size, with a new message ID and a new
    /// token (its response must not be taken for a notification, nor end
    /// the observation). The blocks after it are asked for with
    /// [`Exchanges::send_next_block2`], passing this id as `previous` and
    /// [`Observation::request_message`] as `request`; its response and
    /// theirs are [`Incoming::Response`]. `Ok(None)` when the notification
    /// is complete in itself (no Block2 or more flag clear) or the
    /// observation is gone; errors as
    /// [`next_notification_block2_request`] (`peer_bert` as there).
    pub fn send_next_notification_block2(
        &mut self,
        observation: ObservationId,
        notification: &Message,
        peer_bert: bool,
        now: Instant,
    ) -> Result<Option<RequestId>, BlockError> {
        let Some(obs) = self.observations.get(observation) else {
            return Ok(None);
        };
        let peer = obs.peer.clone();
        let Some(mut msg) =
            next_notification_block2_request(&obs.request_message, notification, peer_bert)?
        else {
            return Ok(None);
        };
        msg.message_id = self.next_message_id(&peer);
        msg.token = self.new_token(&peer);
        let id = self.alloc_id();
        self.track(id, peer, msg, Kind::Request { operation: id }, now, false);
        Ok(Some(id))
    }

    /// The first request of the block-wise series `id` belongs to (`id`
    /// itself for a single request), while `id` is pending or remembered.
    pub fn operation_of(&self, id: RequestId) -> Option<RequestId> {
        if let Some(o) = self.outgoing.get(id) {
            return Some(o.operation(id));
        }
        // The request just finished is the newest.
        self.finished
            .iter()
            .rev()
            .find(|f| f.id == id)
            .map(|f| f.operation)
    }

    /// Registers an outgoing message that is not a request and queues it.
    /// An ACK or RST answering the peer's message (same message ID), or a
    /// separate/NON response (same token), is cached as the reply for
    /// duplicates. A CON (a separate response, a notification) is
    /// retransmitted until ACKed or reset, and a NON is remembered for
    /// NON_LIFETIME so a RST to it is recognised: both get an id. ACK and
    /// RST are sent at once and get none.
    pub fn send_other(&mut self, peer: P, msg: &Message, now: Instant) -> Option<RequestId> {
        self.touch(now);
        if msg.reliable {
            // Over a reliable transport nothing is acknowledged or repeated.
            self.transmits.push_back((peer, msg.clone(), None));
            return None;
        }
        match msg.mtype {
            Type::Acknowledgement | Type::Reset => {
                self.dedup.set_reply_by_message_id(&peer, msg);
                self.transmits.push_back((peer, msg.clone(), None));
                None
            }
            Type::Confirmable | Type::NonConfirmable => {
                if msg.code.is_response() {
                    self.dedup.set_reply_by_token(&peer, msg);
                }
                let id = self.alloc_id();
                self.track(id, peer, msg.clone(), Kind::Other, now, false);
                Some(id)
            }
        }
    }

    /// Tracks `msg` as `id`; `transmitted` when the caller has sent it
    /// already (see [`Exchanges::sent_request`]).
    fn track(
        &mut self,
        id: RequestId,
        peer: P,
        msg: Message,
        kind: Kind,
        now: Instant,
        transmitted: bool,
    ) {
        self.touch(now);
        // Nothing else waits its turn: this one goes at once if NSTART
        // lets it, without looking through the others.
        let at_once = self.outgoing.queued_len() == 0 && self.room_for(&peer, &msg);
        let phase = if at_once {
            let phase = self.first_phase(&msg, kind, now);
            if !transmitted {
                self.transmits
                    .push_back((peer.clone(), msg.clone(), Some(id)));
            }
            phase
        } else {
            Phase::Queued
        };
        self.outgoing.insert(
            id,
            Outgoing {
                peer,
                msg,
                kind,
                phase,
            },
        );
        if !at_once {
            self.pump(now);
        }
    }

    /// Whether NSTART lets `msg` go to `peer` now: anything but a CON over
    /// an unreliable transport always may.
    fn room_for(&self, peer: &P, msg: &Message) -> bool {
        msg.reliable || msg.mtype != Type::Confirmable || self.has_room(peer)
    }

    /// Whether `peer` may get another CON now (NSTART).
    fn has_room(&self, peer: &P) -> bool {
        let limit = self.params.nstart;
        limit == 0 || self.outgoing.unacked_to(peer) < limit as usize
    }

    /// Transmits queued messages, in order per peer, as NSTART allows.
    fn pump(&mut self, now: Instant) {
        if self.outgoing.queued_len() == 0 {
            return;
        }
        let queued = self.outgoing.queued();
        let mut blocked: Vec<P> = Vec::new();
        for id in queued {
            let Some(peer) = self.outgoing.get(id).map(|o| o.peer.clone()) else {
                continue;
            };
            if blocked.contains(&peer) {
                continue;
            }
            let is_con = self
                .outgoing
                .get(id)
                .is_some_and(|o| o.msg.mtype == Type::Confirmable && !o.msg.reliable);
            if is_con && !self.has_room(&peer) {
                blocked.push(peer);
                continue;
            }
            self.start(id, now);
        }
    }

    /// A random first timeout in `[ACK_TIMEOUT, ACK_TIMEOUT * factor]`.
    fn initial_timeout(&mut self) -> Duration {
        let factor = self.params.random_factor();
        let r = if factor > 1.0 {
            self.rng.random_range(1.0..=factor)
        } else {
            1.0
        };
        Duration::try_from_secs_f64(self.params.ack_timeout.as_secs_f64() * r)
            .unwrap_or(Duration::MAX)
    }

    /// First transmission of a queued message.
    fn start(&mut self, id: RequestId, now: Instant) {
        let Some(o) = self.outgoing.get(id) else {
            return;
        };
        if !matches!(o.phase, Phase::Queued) {
            return;
        }
        let (peer, msg, kind) = (o.peer.clone(), o.msg.clone(), o.kind);
        let phase = self.first_phase(&msg, kind, now);
        self.transmits.push_back((peer, msg, Some(id)));
        self.outgoing.set_phase(id, phase);
    }

    /// The phase a message enters with its first transmission, at `now`.
    fn first_phase(&mut self, msg: &Message, kind: Kind, now: Instant) -> Phase {
        let timeout = self.initial_timeout();
        let retransmit = self.params.retransmit;
        let exchange_lifetime = self.params.exchange_lifetime;
        let non_lifetime = self.params.non_lifetime;
        if msg.reliable {
            // RFC 8323: no ACK and no retransmission; the response (matched
            // by token) may take up to EXCHANGE_LIFETIME.
            Phase::Waiting {
                deadline: after(now, exchange_lifetime),
            }
        } else if msg.mtype == Type::Confirmable {
            Phase::Unacked {
                retransmits: 0,
                timeout,
                deadline: after(
                    now,
                    if retransmit {
                        timeout
                    } else {
                        exchange_lifetime
                    },
                ),
                retransmit,
            }
        } else {
            let lifetime = match kind {
                Kind::Request { .. } => exchange_lifetime,
                Kind::Other => non_lifetime,
            };
            Phase::Waiting {
                deadline: after(now, lifetime),
            }
        }
    }

    /// Stops tracking `id` and remembers it for EXCHANGE_LIFETIME.
    fn finish(&mut self, id: RequestId, now: Instant) -> Option<Outgoing<P>> {
        let o = self.outgoing.remove(id)?;
        self.finished.push_back(Finished {
            id,
            operation: o.operation(id),
            peer: o.peer.clone(),
            token: o.msg.token.clone(),
            message_id: o.msg.message_id,
            expires: after(now, self.params.exchange_lifetime),
        });
        while self.finished.len() > self.limits.finished {
            self.finished.pop_front();
            self.dropped.finished += 1;
        }
        Some(o)
    }

    /// Stops retransmitting and forgets request `id`; a late response to it
    /// is then [`Incoming::Stray`] with `related: Some(id)`. Also drops a
    /// message sent with `send_other`.
    pub fn cancel_request(&mut self, id: RequestId) {
        let Some(now) = self.now else {
            return;
        };
        if self.finish(id, now).is_some() {
            self.pump(now);
        }
    }

    /// Whether `id` is still tracked (queued, unacknowledged, or waiting for
    /// its response).
    pub fn is_pending(&self, id: RequestId) -> bool {
        self.outgoing.contains(id)
    }

    /// Whether CON `id` (over UDP) was acknowledged by an empty ACK and
    /// waits for its separate response (RFC 7252 §5.2.2).
    pub fn acknowledged(&self, id: RequestId) -> bool {
        self.outgoing.get(id).is_some_and(|o| {
            o.msg.mtype == Type::Confirmable
                && !o.msg.reliable
                && matches!(o.phase, Phase::Waiting { .. })
        })
    }

    /// For a CON whose latest transmission was a retransmission: which
    /// one (1 for the first) and the ACK timeout that expired before it
    /// (RFC 7252 §4.2). `None` before the first retransmission.
    pub fn retransmission(&self, id: RequestId) -> Option<(u32, Duration)> {
        match self.outgoing.get(id)?.phase {
            Phase::Unacked {
                retransmits,
                timeout,
                ..
            } if retransmits > 0 => Some((retransmits, timeout / 2)),
            _ => None,
        }
    }

    /// The messages tracked to `peer` (queued, unacknowledged, or waiting
    /// for their response), oldest first: what ends when the peer's
    /// connection does.
    pub fn pending_to(&self, peer: &P) -> Vec<RequestId> {
        self.outgoing.of_peer(peer).map(|(id, _)| id).collect()
    }

    /// The message sent (or queued) as `id`, while it is tracked.
    pub fn pending_message(&self, id: RequestId) -> Option<&Message> {
        self.outgoing.get(id).map(|o| &o.msg)
    }

    /// Finishes request `id` answered by `response`, and keeps the
    /// observation registry in step (RFC 7641 §3.3.1, §3.6).
    fn complete_request(&mut self, id: RequestId, response: &Message, now: Instant) {
        let Some(o) = self.finish(id, now) else {
            return;
        };
        self.pump(now);
        let request = &o.msg;
        let observe = request.uint_option(OptionNumber::OBSERVE);
        let path = match observe {
            Some(0 | 1) => request.path_string(),
            _ => String::new(),
        };
        match observe {
            Some(0) => {
                let seq = observe::sequence(response);
                let replaced: Vec<ObservationId> = self
                    .observations
                    .of_peer(&o.peer)
                    .filter(|obs| {
                        obs.token == request.token
                            || (obs.path == path
                                && obs.method == request.code
                                && obs.request_message.payload == request.payload)
                    })
                    .map(|obs| obs.id)
                    .collect();
                for old in replaced {
                    self.observations.remove(old);
                    self.events.push_back(Event::ObservationEnded(old));
                }
                if let (2, Some(seq)) = (response.code.class(), seq) {
                    self.next_observation += 1;
                    let oid = ObservationId(self.next_observation);
                    self.observations.insert(Observation {
                        id: oid,
                        request: id,
                        peer: o.peer.clone(),
                        token: request.token.clone(),
                        path,
                        method: request.code,
                        last_sequence: seq,
                        last_update: now,
                        count: 1,
                        stale: 0,
                        request_message: request.clone(),
                    });
                    self.events.push_back(Event::Observed(oid));
                    self.bound_observations(&o.peer);
                }
            }
            Some(1) => {
                let ended: Vec<ObservationId> = self
                    .observations
                    .of_peer(&o.peer)
                    .filter(|obs| {
                        obs.token == request.token
                            || (obs.path == path && obs.method == request.code)
                    })
                    .map(|obs| obs.id)
                    .collect();
                for old in ended {
                    self.observations.remove(old);
                    self.events.push_back(Event::ObservationEnded(old));
                }
            }
            _ => {}
        }
    }

    /// Ends the oldest observations of `peer` beyond the limit.
    fn bound_observations(&mut self, peer: &P) {
        let limit = self.limits.observations_per_peer.max(1);
        let of_peer: Vec<ObservationId> =
            self.observations.of_peer(peer).map(|obs| obs.id).collect();
        let excess = of_peer.len().saturating_sub(limit);
        for old in of_peer.into_iter().take(excess) {
            self.observations.remove(old);
            self.events.push_back(Event::ObservationEnded(old));
            self.dropped.observations += 1;
        }
    }

    /// Fires due retransmissions, gives up on or expires messages, and
    /// forgets expired duplicate-detection and finished-request entries.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.touch(now);
        for id in self.outgoing.due(now) {
            self.on_deadline(id, now);
        }
        self.dedup.prune(now);
        while self
            .finished
            .front()
            .is_some_and(|f| f.expires.is_some_and(|t| t <= now))
        {
            self.finished.pop_front();
        }
        self.pump(now);
    }

    fn on_deadline(&mut self, id: RequestId, now: Instant) {
        let max_retransmit = self.params.max_retransmit;
        let Some(o) = self.outgoing.get(id) else {
            return;
        };
        match o.phase {
            Phase::Queued => {}
            Phase::Unacked {
                retransmits,
                timeout,
                retransmit: true,
                ..
            } if retransmits < max_retransmit => {
                let timeout = timeout.saturating_mul(2);
                self.transmits
                    .push_back((o.peer.clone(), o.msg.clone(), Some(id)));
                self.outgoing.set_phase(
                    id,
                    Phase::Unacked {
                        retransmits: retransmits + 1,
                        timeout,
                        deadline: after(now, timeout),
                        retransmit: true,
                    },
                );
            }
            Phase::Unacked {
                retransmit: true, ..
            } => {
                self.finish(id, now);
                self.events.push_back(Event::GaveUp(id));
            }
            Phase::Unacked { .. } => {
                self.finish(id, now);
                self.events.push_back(Event::Expired(id));
            }
            Phase::Waiting { .. } => {
                let is_request = matches!(o.kind, Kind::Request { .. });
                self.finish(id, now);
                if is_request {
                    self.events.push_back(Event::Expired(id));
                }
            }
        }
    }

    /// The next instant [`Exchanges::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let finished = self.finished.front().and_then(|f| f.expires);
        self.outgoing
            .next_deadline()
            .into_iter()
            .chain(self.dedup.next_expiry())
            .chain(finished)
            .min()
    }

    /// The next datagram to send (first transmissions, retransmissions,
    /// ACK/RST given to `send_other`), in order.
    pub fn poll_transmit(&mut self) -> Option<(P, Message)> {
        self.poll_transmission().map(|(peer, msg, _)| (peer, msg))
    }

    /// [`Exchanges::poll_transmit`], with the request (or tracked CON or
    /// NON) the datagram is: `None` for an ACK or RST, and for anything
    /// over a reliable transport that is not a request.
    pub fn poll_transmission(&mut self) -> Option<(P, Message, Option<RequestId>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Established observations, oldest first.
    pub fn observations(&self) -> impl Iterator<Item = &Observation<P>> {
        self.observations.values()
    }

    /// One observation by id, while it lasts.
    pub fn observation(&self, id: ObservationId) -> Option<&Observation<P>> {
        self.observations.get(id)
    }

    /// Forgets the observation with this token (of any peer); later
    /// notifications are [`Incoming::Stray`] (answer them with RST to
    /// cancel on the peer's side, RFC 7641 §3.6).
    pub fn cancel_observation_by_token(&mut self, token: &[u8]) -> Option<Observation<P>> {
        let id = self.observations.with_token(token).next()?.id;
        self.observations.remove(id)
    }

    /// Forgets every observation of `peer` (it can no longer serve them);
    /// returns them, oldest first.
    pub fn cancel_observations_of(&mut self, peer: &P) -> Vec<Observation<P>> {
        let ids: Vec<ObservationId> = self.observations.of_peer(peer).map(|o| o.id).collect();
        ids.into_iter()
            .filter_map(|id| self.observations.remove(id))
            .collect()
    }

    /// Forgets one observation by id.
    pub fn cancel_observation(&mut self, id: ObservationId) -> Option<Observation<P>> {
        self.observations.remove(id)
    }

    /// The newest observation of `path` (`/3/0/13`) on `peer`.
    pub fn observation_for_path(&self, peer: &P, path: &str) -> Option<&Observation<P>> {
        self.observations
            .of_peer(peer)
            .rev()
            .find(|o| o.path == path)
    }

    /// How many of the peer's message IDs are remembered for duplicate
    /// detection, and how many finished messages are remembered (for
    /// tests and `details`: both stay bounded).
    pub fn remembered(&self) -> (usize, usize) {
        (self.dedup.len(), self.finished.len())
    }
}
