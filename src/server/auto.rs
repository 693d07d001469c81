//! Auto-responders (reference §4.1, switchable with `set`): answers sent the
//! moment a message arrives, so a client never times out while a user types
//! or a script sleeps.

use std::net::SocketAddr;

use super::receiver::{pong, send_quietly};
use super::{RecordRef, Server, State};
use crate::coap::{CoapOption, Code, Message, OptionNumber, Type};
use crate::lwm2m::kind::Kind;
use crate::lwm2m::registration;

/// Answers `record` (a new message from `peer`) when a flag says so, and
/// keeps the registration table up to date.
pub(super) fn respond(server: &Server, st: &mut State, peer: SocketAddr, record: &RecordRef) {
    let (Ok(msg), Some(kind)) = (&record.message, record.kind) else {
        return;
    };
    let flags = st.flags;
    let reply = match kind {
        Kind::Register if flags.auto_reregister => {
            let registration = registration::parse(msg, true);
            let endpoint = registration.endpoint.clone().unwrap_or_default();
            let location = st.registry.register(peer, endpoint.clone(), registration);
            st.target = Some(peer);
            st.current = Some(endpoint);
            let mut r = response(msg, Code::CREATED);
            for seg in location.split('/').filter(|s| !s.is_empty()) {
                r.add_option(CoapOption::new(OptionNumber::LOCATION_PATH, seg.as_bytes()));
            }
            Some(r)
        }
        Kind::Update if flags.auto_update => {
            let location = msg.path_string();
            if let Some(client) = st.registry.by_location_mut(&location) {
                client
                    .registration
                    .apply_update(&registration::parse(msg, false));
                client.peer = peer;
                client.last_update = std::time::SystemTime::now();
            }
            Some(response(msg, Code::CHANGED))
        }
        Kind::Deregister if flags.auto_deregister => {
            let location = msg.path_string();
            if let Some(gone) = st.registry.deregister(&location)
                && st.current.as_deref() == Some(gone.endpoint.as_str())
            {
                st.current = None;
            }
            Some(response(msg, Code::DELETED))
        }
        Kind::Send if flags.auto_send => Some(response(msg, Code::CHANGED)),
        Kind::RequestBootstrap => {
            // A client asking to be bootstrapped is the one to talk to.
            st.target = Some(peer);
            st.current = None;
            flags.auto_ack.then(|| response(msg, Code::CHANGED))
        }
        Kind::BootstrapPackRequest if flags.auto_bspack_error => {
            Some(response(msg, Code::NOT_FOUND))
        }
        Kind::BootstrapPackRequest => {
            // Kept, unanswered, for `bootstrap_pack`.
            server.print("Received Bootstrap Pack Request (answer it with bootstrap_pack)");
            st.bootstrap_pack_request = Some(record.clone());
            st.target = Some(peer);
            None
        }
        _ if msg.reliable => {
            // Over TCP (RFC 8323) nothing is acknowledged; a Ping gets a Pong.
            (msg.code == Code::PING && flags.auto_ack).then(|| pong(msg))
        }
        Kind::Empty if msg.mtype == Type::Confirmable && flags.auto_ack => {
            // CoAP ping (RFC 7252 §4.3): answered with RST.
            Some(Message::new(Type::Reset, Code::EMPTY, msg.message_id))
        }
        _ if msg.mtype == Type::Confirmable && flags.auto_ack => Some(Message::new(
            Type::Acknowledgement,
            Code::EMPTY,
            msg.message_id,
        )),
        _ => None,
    };
    if let Some(reply) = reply {
        send_quietly(server, st, peer, reply);
    }
}

/// A response to `req`: piggybacked ACK for a CON, a NON (new message ID
/// left 0 for the exchange layer to fill is not needed: NON responses reuse
/// nothing but the token) otherwise.
fn response(req: &Message, code: Code) -> Message {
    let mtype = if req.mtype == Type::Confirmable {
        Type::Acknowledgement
    } else {
        Type::NonConfirmable
    };
    let mut r = Message::new(mtype, code, req.message_id);
    r.token = req.token.clone();
    r.reliable = req.reliable;
    r
}
