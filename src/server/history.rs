//! The history: every datagram sent or received, as raw bytes next to its
//! parse result, its LwM2M kind and its one-line summary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::coap::{DecodeError, Message};
use crate::lwm2m::kind::Kind;

/// Which way a datagram went.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// Sent by nsh.
    Sent,
    /// Received from a peer.
    Received,
}

/// How the exchange layer saw a received message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Something nsh sent.
    Outgoing,
    /// The response to one of nsh's requests.
    Response,
    /// A notification of an observation nsh holds.
    Notification,
    /// A new message from the peer (request, ping, unsolicited response…).
    New,
    /// A repeat of a message already received (answered again, not processed).
    Duplicate,
    /// An ACK/RST/response that matches no waiting request.
    Stray,
    /// An empty ACK for a CON request of nsh's (a separate response follows).
    EmptyAck,
    /// A datagram that does not decode as CoAP.
    Malformed,
    /// A whole body put together from Block2 responses (not a datagram).
    Assembled,
    /// A fault injected by `set loss=…` and the like (its note says which);
    /// not a datagram the exchange layer saw.
    Injected,
}

impl Role {
    /// Lower-case name for scripts.
    pub fn name(self) -> &'static str {
        match self {
            Role::Outgoing => "outgoing",
            Role::Response => "response",
            Role::Notification => "notification",
            Role::New => "new",
            Role::Duplicate => "duplicate",
            Role::Stray => "stray",
            Role::EmptyAck => "empty_ack",
            Role::Malformed => "malformed",
            Role::Assembled => "assembled",
            Role::Injected => "injected",
        }
    }
}

/// One entry of the history.
#[derive(Debug)]
pub struct Record {
    /// Position in the session (1-based, never reused).
    pub seq: u64,
    /// Sent or received.
    pub direction: Direction,
    /// The peer it was exchanged with.
    pub peer: SocketAddr,
    /// When.
    pub at: SystemTime,
    /// The bytes exactly as on the wire.
    pub raw: Vec<u8>,
    /// Exchanged over a reliable transport (CoAP over TCP or TLS, RFC
    /// 8323): `raw` is one frame, not a datagram.
    pub reliable: bool,
    /// The decoded message, or why it did not decode.
    pub message: Result<Message, DecodeError>,
    /// LwM2M classification (`None` when the datagram did not decode).
    pub kind: Option<Kind>,
    /// How the exchange layer saw it.
    pub role: Role,
    /// For notifications: the observed path.
    pub observed_path: Option<String>,
    /// For responses: the path of the request they answer.
    pub request_path: Option<String>,
    /// For notifications: whether it is newer than every notification of
    /// its observation seen before (RFC 7641 §3.4); `None` otherwise.
    pub fresh: Option<bool>,
    /// What nsh made of it beyond its role, shown after its line
    /// (`unknown registration location: answered 4.04`).
    pub note: Option<String>,
    /// The object definitions of the server that recorded it (payloads are
    /// decoded with them).
    pub objects: crate::lwm2m::Objects,
    /// For messages received over DTLS: the identity the peer's session
    /// authenticated with (PSK identity or certificate subject).
    pub identity: Option<String>,
    /// The endpoint name of the registration of `peer` when the record was
    /// made (for a De-register, of the registration it ended); `None` when
    /// no client was registered from there.
    pub endpoint: Option<Arc<str>>,
}

/// Shared handle to a record; cheap to clone.
pub type RecordRef = Arc<Record>;

impl Record {
    /// The one-line summary (`Read /3/0: accept …`, `Content (…)`).
    pub fn summary(&self) -> String {
        match (&self.message, self.kind) {
            (Ok(m), Some(k)) => crate::lwm2m::summary::summary(m, k),
            (Ok(m), None) => crate::lwm2m::summary::summary(m, Kind::Coap),
            (Err(_), _) if self.role == Role::Injected => {
                format!("datagram ({} bytes)", self.raw.len())
            }
            (Err(e), _) if self.reliable => {
                let size = match crate::coap::tcp::announced(&self.raw) {
                    Some((total, _)) if total != self.raw.len() => {
                        format!("{total} bytes announced, {} received", self.raw.len())
                    }
                    _ => format!("{} bytes", self.raw.len()),
                };
                format!(
                    "malformed frame {} {} ({size}): {e}",
                    self.preposition(),
                    self.peer
                )
            }
            (Err(e), _) => format!("malformed datagram ({} bytes): {e}", self.raw.len()),
        }
    }

    /// `from` for a received record, `to` for a sent one.
    fn preposition(&self) -> &'static str {
        match self.direction {
            Direction::Received => "from",
            Direction::Sent => "to",
        }
    }

    /// The line printed for it: `-> summary` or `<- summary`, with a note for
    /// duplicates and stray responses.
    pub fn line(&self) -> String {
        let arrow = match self.direction {
            Direction::Sent => "->",
            Direction::Received => "<-",
        };
        let role = match self.role {
            Role::Duplicate => " (duplicate)",
            // The note says what it relates to, when it relates to any.
            Role::Stray if self.note.is_some() => " (stray)",
            Role::Stray => " (stray: matches no waiting request)",
            _ => "",
        };
        let stale = match self.fresh {
            Some(false) => " (stale: older than a notification already received)",
            _ => "",
        };
        let note = self
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        format!("{arrow} {}{role}{stale}{note}", self.summary())
    }

    /// The path the payload belongs to: the request's for a response, the
    /// observed one for a notification, the message's own otherwise.
    pub fn payload_base(&self) -> Option<String> {
        self.request_path
            .clone()
            .or_else(|| self.observed_path.clone())
            .or_else(|| {
                self.message
                    .as_ref()
                    .ok()
                    .map(Message::path_string)
                    .filter(|p| !p.is_empty())
            })
    }

    /// The multi-line `details` block (reference §5.4), with a line naming
    /// the registered client it was exchanged with, when there was one.
    pub fn details(&self) -> String {
        let head = match self.direction {
            Direction::Sent => "*** Send ***",
            Direction::Received => "*** Recv ***",
        };
        let body = match (&self.message, self.kind) {
            (Ok(m), k) => {
                let base = self.payload_base();
                let objects = self.objects.read();
                let render =
                    |m: &Message| crate::lwm2m::render_payload_at(m, base.as_deref(), &objects);
                crate::lwm2m::details::details(m, k.unwrap_or(Kind::Coap), &render)
            }
            (Err(e), _) if self.reliable => crate::lwm2m::details::details_of_undecodable(
                &format!("Undecodable frame {} {}", self.preposition(), self.peer),
                &self.raw,
                e,
            ),
            (Err(e), _) => {
                crate::lwm2m::details::details_of_undecodable("Undecodable", &self.raw, e)
            }
        };
        // Which registered client it was exchanged with, when one was.
        let client = self
            .endpoint
            .as_ref()
            .map(|e| format!("endpoint: {e} ({})\n", self.peer))
            .unwrap_or_default();
        match (&self.note, self.role) {
            (Some(fault), Role::Injected) => {
                format!("\n{head}\n{client}Injected fault: {fault}\n{body}")
            }
            _ => format!("\n{head}\n{client}{body}"),
        }
    }
}
