//! Classifying an incoming message ([`Exchanges::handle_incoming`]): a
//! duplicate (RFC 7252 §4.5), an empty ACK or RST for a message we sent,
//! the response to a pending request (matched by peer and token and, for a
//! piggybacked ACK, message ID; §5.3.2), a notification of an observation
//! (RFC 7641, told apart from a deregistration's own response, §3.6), a new
//! request, or stray (with the finished request it relates to, if any).

use std::fmt;
use std::hash::Hash;
use std::time::Instant;

use super::{
    Event, Exchanges, Incoming, Kind, ObservationId, Phase, RequestId, after, empty_ack, observe,
};
use crate::coap::{Message, OptionNumber, Type};

impl<P: Clone + Eq + Hash + fmt::Debug> Exchanges<P> {
    /// Classifies an incoming decoded message from `peer` and updates the
    /// state: see [`Incoming`].
    pub fn handle_incoming(&mut self, peer: &P, msg: &Message, now: Instant) -> Incoming {
        self.touch(now);
        if msg.reliable {
            return if msg.code.is_response() {
                self.on_response(peer, msg, now)
            } else {
                Incoming::New
            };
        }
        match msg.mtype {
            Type::Acknowledgement => self.on_ack(peer, msg, now),
            Type::Reset => self.on_reset(peer, msg, now),
            Type::Confirmable | Type::NonConfirmable => {
                if let Some(reply) = self.dedup.duplicate(peer, msg.message_id, now) {
                    return Incoming::Duplicate { reply };
                }
                let lifetime = if msg.mtype == Type::Confirmable {
                    self.params.exchange_lifetime
                } else {
                    self.params.non_lifetime
                };
                self.dedup.record(peer, msg, lifetime, now);
                if msg.code.is_response() {
                    self.on_response(peer, msg, now)
                } else {
                    Incoming::New
                }
            }
        }
    }

    /// The tracked CON (transmitted, not queued) with this peer and message
    /// ID.
    fn find_by_message_id(&self, peer: &P, message_id: u16, any_type: bool) -> Option<RequestId> {
        self.outgoing
            .with_message_id(peer, message_id)
            .find(|(_, o)| any_type || o.msg.mtype == Type::Confirmable)
            .map(|(id, _)| id)
    }

    fn finished_by_message_id(&self, peer: &P, message_id: u16, now: Instant) -> Option<RequestId> {
        self.finished
            .iter()
            .rev()
            .filter(|f| f.expires.is_none_or(|t| t > now))
            .find(|f| f.peer == *peer && f.message_id == message_id)
            .map(|f| f.id)
    }

    fn finished_by_token(&self, peer: &P, token: &[u8], now: Instant) -> Option<RequestId> {
        self.finished
            .iter()
            .rev()
            .filter(|f| f.expires.is_none_or(|t| t > now))
            .find(|f| f.peer == *peer && f.token == token)
            .map(|f| f.id)
    }

    fn on_ack(&mut self, peer: &P, msg: &Message, now: Instant) -> Incoming {
        let Some(id) = self.find_by_message_id(peer, msg.message_id, false) else {
            return Incoming::Stray {
                related: self.finished_by_message_id(peer, msg.message_id, now),
            };
        };
        let Some(o) = self.outgoing.get(id) else {
            return Incoming::Stray { related: None };
        };
        let unacked = matches!(o.phase, Phase::Unacked { .. });
        let is_request = matches!(o.kind, Kind::Request { .. });
        if msg.code.is_empty() {
            if !unacked {
                // A second empty ACK: the first one already stopped us.
                return Incoming::Stray { related: Some(id) };
            }
            self.events.push_back(Event::Acked(id));
            if is_request && !o.msg.code.is_empty() {
                let deadline = after(now, self.params.exchange_lifetime);
                self.outgoing.set_phase(id, Phase::Waiting { deadline });
            } else {
                // A ping, or a CON response/notification: nothing follows.
                self.finish(id, now);
            }
            self.pump(now);
            return Incoming::EmptyAck { id };
        }
        if msg.code.is_response() && is_request && msg.token == o.msg.token {
            if unacked {
                self.events.push_back(Event::Acked(id));
            }
            self.complete_request(id, msg, now);
            return Incoming::Response { id, ack: None };
        }
        if msg.code.is_response() && !is_request && unacked {
            // A piggybacked "response" to our response or notification is
            // nonsense, but it does acknowledge it.
            self.events.push_back(Event::Acked(id));
            self.finish(id, now);
            self.pump(now);
        }
        // Wrong token, or a request code in an ACK: not the answer.
        Incoming::Stray { related: Some(id) }
    }

    fn on_reset(&mut self, peer: &P, msg: &Message, now: Instant) -> Incoming {
        match self.find_by_message_id(peer, msg.message_id, true) {
            Some(id) => {
                self.finish(id, now);
                self.pump(now);
                Incoming::Reset { id }
            }
            None => Incoming::Stray {
                related: self.finished_by_message_id(peer, msg.message_id, now),
            },
        }
    }

    /// A CON/NON with a response code (not a duplicate).
    fn on_response(&mut self, peer: &P, msg: &Message, now: Instant) -> Incoming {
        let ack =
            (msg.mtype == Type::Confirmable && !msg.reliable).then(|| empty_ack(msg.message_id));
        let pending = self
            .outgoing
            .with_token(peer, &msg.token)
            .find(|(_, o)| {
                matches!(o.kind, Kind::Request { .. }) && !matches!(o.phase, Phase::Queued)
            })
            .map(|(id, _)| id);
        let observation = self
            .observations
            .with_token(&msg.token)
            .find(|o| o.peer == *peer)
            .map(|o| o.id);
        if let Some(id) = pending {
            // A deregistration (Observe=1) reuses the observation's token,
            // but its own response carries no Observe option: a message
            // that does is a notification still in flight (RFC 7641 §3.6).
            let deregistration = self
                .outgoing
                .get(id)
                .is_some_and(|o| o.msg.uint_option(OptionNumber::OBSERVE) == Some(1));
            let notification = deregistration
                && observation.is_some()
                && msg.option(OptionNumber::OBSERVE).is_some();
            if !notification {
                // A separate response before the empty ACK also
                // acknowledges the request (RFC 7252 §5.2.2).
                self.complete_request(id, msg, now);
                return Incoming::Response { id, ack };
            }
        }
        if let Some(observation) = observation {
            let fresh = self.on_notification(observation, msg, now);
            return Incoming::Notification {
                observation,
                fresh,
                ack,
            };
        }
        Incoming::Stray {
            related: self.finished_by_token(peer, &msg.token, now),
        }
    }

    /// Updates an observation with a notification; returns freshness.
    fn on_notification(&mut self, id: ObservationId, msg: &Message, now: Instant) -> bool {
        let seq = observe::sequence(msg);
        let Some(obs) = self.observations.get_mut(id) else {
            return false;
        };
        obs.count += 1;
        match seq {
            Some(v) if msg.code.class() == 2 => {
                let fresh = observe::is_fresh(obs.last_sequence, obs.last_update, v, now);
                if fresh {
                    obs.last_sequence = v;
                    obs.last_update = now;
                } else {
                    obs.stale += 1;
                }
                fresh
            }
            _ => {
                // RFC 7641 §3.2, §4.2: an error, or a response without
                // Observe, ends the observation.
                self.observations.remove(id);
                self.events.push_back(Event::ObservationEnded(id));
                true
            }
        }
    }
}
