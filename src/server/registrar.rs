//! The LwM2M side of answering a new message from a peer, as a pure
//! function: the message, its kind, the auto-responder flags and the
//! registration table in; the answer to send and what changed out. No
//! sockets, no clock (the wall time is passed in), no printing.
//!
//! Registration interface (LwM2M Core §6.2): Register → 2.01 Created with a
//! location of its own; Update and De-register are recognised by that
//! location, and one to a location nsh does not know (nsh restarted, or the
//! registration expired) is answered 4.04 Not Found, on which the client
//! registers again (Core §6.2.2). Then Send → 2.04, Bootstrap-Request →
//! 2.04, Bootstrap-Pack-Request → 4.04 or kept, and the CoAP-level answers:
//! ping → RST, other CON → empty ACK, TCP Ping → Pong.

use std::net::SocketAddr;
use std::time::SystemTime;

use super::base::Flags;
use super::registry::{Client, Registry};
use crate::coap::{Code, Message, Type};
use crate::lwm2m::kind::Kind;
use crate::lwm2m::registration;

/// The answer to send, described; the caller builds the message (it owns
/// message IDs, see [`super::core::Core::response`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// A response with this code (piggybacked on the ACK of a CON, a NON of
    /// its own for a NON), with Location-Path segments.
    Response {
        /// The response code.
        code: Code,
        /// Location-Path of a Created.
        location: Option<String>,
    },
    /// An empty ACK (RFC 7252 §4.2).
    EmptyAck,
    /// A RST, the answer to a CoAP ping (RFC 7252 §4.3).
    Reset,
    /// A Pong for a TCP Ping (RFC 8323 §5.4).
    Pong,
}

/// Where commands should go after this message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Unchanged.
    Keep,
    /// This peer, registered as this endpoint.
    Client(SocketAddr, String),
    /// This peer, not registered (a bootstrap client).
    Peer(SocketAddr),
    /// The current client is gone (if it was this endpoint).
    Gone(std::sync::Arc<str>),
    /// This endpoint now talks from this peer (an Update from a new
    /// address): commands follow it if it is the current client.
    Readdressed(String, SocketAddr),
}

/// What [`answer`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// What to send back, if anything.
    pub(crate) reply: Option<Reply>,
    /// Where commands go next.
    pub(crate) target: Target,
    /// A note for the record's line.
    pub(crate) note: Option<String>,
    /// Keep the message, unanswered, for `bootstrap_pack`.
    pub(crate) keep_bootstrap_pack: bool,
    /// An address no registration uses any more.
    pub(crate) vacated: Option<Vacated>,
}

/// A client's registration left addresses that no other registration
/// uses: what was held for them (observations) can no longer be served
/// from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Vacated {
    /// The addresses left: its own, then its earlier ones
    /// ([`Client::earlier`]), the most recently heard from first.
    pub(crate) peers: Vec<SocketAddr>,
    /// The client that left it.
    pub(crate) endpoint: std::sync::Arc<str>,
    /// Why (`it de-registered`).
    pub(crate) why: String,
}

/// `why` for `client`'s addresses, once its registration no longer holds
/// them, where no other registration holds them either; `None` when every
/// one is held.
pub(crate) fn vacated(registry: &Registry, client: &Client, why: String) -> Option<Vacated> {
    let peers: Vec<SocketAddr> = std::iter::once(client.peer)
        .chain(client.earlier.iter().rev().copied())
        .filter(|&a| registry.endpoint_of(a).is_none())
        .collect();
    (!peers.is_empty()).then(|| Vacated {
        peers,
        endpoint: client.endpoint.clone(),
        why,
    })
}

impl Decision {
    fn reply(reply: Option<Reply>) -> Decision {
        Decision {
            reply,
            target: Target::Keep,
            note: None,
            keep_bootstrap_pack: false,
            vacated: None,
        }
    }
}

fn respond(code: Code) -> Option<Reply> {
    Some(Reply::Response {
        code,
        location: None,
    })
}

/// Decides the answer to a new message `msg` of `kind` from `peer`, and
/// updates `registry`.
pub(crate) fn answer(
    msg: &Message,
    kind: Kind,
    peer: SocketAddr,
    flags: &Flags,
    registry: &mut Registry,
    now: SystemTime,
) -> Decision {
    match kind {
        Kind::Register if flags.auto_reregister => {
            let registration = registration::parse(msg, true);
            let endpoint = registration.endpoint.clone().unwrap_or_default();
            let note = match registration.problems.as_slice() {
                [] => None,
                [one] => Some(format!("registration problem: {one}")),
                many => Some(format!("registration problems: {}", many.join("; "))),
            };
            let previous = registry
                .by_endpoint(&endpoint)
                .filter(|c| c.peer != peer)
                .cloned();
            let location = registry.register_at(peer, endpoint.clone(), registration, now);
            Decision {
                reply: Some(Reply::Response {
                    code: Code::CREATED,
                    location: Some(location),
                }),
                target: Target::Client(peer, endpoint),
                note,
                keep_bootstrap_pack: false,
                vacated: previous.and_then(|c| {
                    vacated(registry, &c, format!("it registered again from {peer}"))
                }),
            }
        }
        Kind::Update if flags.auto_update => match apply_update(msg, peer, registry, now) {
            Some(endpoint) => Decision {
                target: Target::Readdressed(endpoint, peer),
                ..Decision::reply(respond(Code::CHANGED))
            },
            None => unknown_location("the client registers again"),
        },
        Kind::Deregister if flags.auto_deregister => {
            let location = msg.path_string();
            match registry.deregister(&location) {
                Some(gone) => Decision {
                    reply: respond(Code::DELETED),
                    vacated: vacated(registry, &gone, "it de-registered".into()),
                    target: Target::Gone(gone.endpoint),
                    note: None,
                    keep_bootstrap_pack: false,
                },
                None => unknown_location("it was not registered here"),
            }
        }
        Kind::Send if flags.auto_send => Decision::reply(respond(Code::CHANGED)),
        Kind::RequestBootstrap => Decision {
            // A client asking to be bootstrapped is the one to talk to.
            reply: if flags.auto_ack {
                respond(Code::CHANGED)
            } else {
                None
            },
            target: Target::Peer(peer),
            note: None,
            keep_bootstrap_pack: false,
            vacated: None,
        },
        Kind::BootstrapPackRequest if flags.auto_bspack_error => {
            Decision::reply(respond(Code::NOT_FOUND))
        }
        Kind::BootstrapPackRequest => Decision {
            reply: None,
            target: Target::Peer(peer),
            note: None,
            keep_bootstrap_pack: true,
            vacated: None,
        },
        _ if msg.reliable => {
            // Over TCP (RFC 8323) nothing is acknowledged; a Ping gets a Pong.
            Decision::reply((msg.code == Code::PING && flags.auto_ack).then_some(Reply::Pong))
        }
        Kind::Empty if msg.mtype == Type::Confirmable && flags.auto_ack => {
            Decision::reply(Some(Reply::Reset))
        }
        _ if msg.mtype == Type::Confirmable && flags.auto_ack => {
            Decision::reply(Some(Reply::EmptyAck))
        }
        _ => Decision::reply(None),
    }
}

/// Applies the Update `msg` from `peer` to its registration (its lifetime
/// runs anew, from `now`); the endpoint, or `None` for an unknown location.
pub(crate) fn apply_update(
    msg: &Message,
    peer: SocketAddr,
    registry: &mut Registry,
    now: SystemTime,
) -> Option<String> {
    let location = msg.path_string();
    let endpoint = registry
        .update(&location, |client| {
            client
                .registration
                .apply_update(&registration::parse(msg, false));
            client.last_update = now;
        })
        .map(|client| client.endpoint.to_string())?;
    registry.readdress(&location, peer);
    Some(endpoint)
}

/// An Update or De-register to a location nsh does not know (a restarted
/// nsh, an expired registration): 4.04, with what follows from it.
fn unknown_location(then: &str) -> Decision {
    Decision {
        reply: respond(Code::NOT_FOUND),
        target: Target::Keep,
        note: Some(format!(
            "unknown registration location: answered 4.04, {then}"
        )),
        keep_bootstrap_pack: false,
        vacated: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{CoapOption, ContentFormat, OptionNumber};
    use crate::lwm2m::kind::{NoContext, classify};

    fn peer() -> SocketAddr {
        ([127, 0, 0, 1], 5000).into()
    }

    fn post(uri: &str) -> Message {
        let mut m = Message::new(Type::Confirmable, Code::POST, 1);
        m.set_uri(uri);
        m
    }

    fn register(ep: &str) -> Message {
        let mut m = post(&format!("/rd?ep={ep}&lt=60"));
        m.add_option(CoapOption::uint(
            OptionNumber::CONTENT_FORMAT,
            u64::from(ContentFormat::LINK_FORMAT.0),
        ));
        m.payload = b"</3/0>".to_vec();
        m
    }

    fn decide(msg: &Message, reg: &mut Registry) -> Decision {
        let kind = classify(msg, &super::super::base::RegistryContext(reg));
        answer(
            msg,
            kind,
            peer(),
            &Flags::default(),
            reg,
            SystemTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn register_gets_a_location_and_becomes_the_target() {
        let mut reg = Registry::default();
        let d = decide(&register("dev"), &mut reg);
        assert_eq!(
            d.reply,
            Some(Reply::Response {
                code: Code::CREATED,
                location: Some("/rd/1".into())
            })
        );
        assert_eq!(d.target, Target::Client(peer(), "dev".into()));
        assert_eq!(reg.len(), 1);
    }

    #[test]
    fn update_of_a_known_location_is_changed() {
        let mut reg = Registry::default();
        decide(&register("dev"), &mut reg);
        let d = decide(&post("/rd/1?lt=120"), &mut reg);
        assert_eq!(d.reply, respond(Code::CHANGED));
        assert_eq!(
            reg.clients().next().unwrap().registration.lifetime,
            Some(120)
        );
    }

    /// What a Register gets wrong is on its line (the registration still
    /// goes ahead with what nsh took instead).
    #[test]
    fn a_registers_problems_are_its_note() {
        let mut reg = Registry::default();
        let mut m = post("/rd?ep=bad&lt=abc");
        m.add_option(CoapOption::uint(
            OptionNumber::CONTENT_FORMAT,
            u64::from(ContentFormat::LINK_FORMAT.0),
        ));
        m.payload = b"</3/0>".to_vec();
        let d = decide(&m, &mut reg);
        assert!(matches!(
            d.reply,
            Some(Reply::Response {
                code: Code::CREATED,
                ..
            })
        ));
        assert_eq!(
            d.note.as_deref(),
            Some(
                "registration problem: lifetime is not a number of seconds: lt=abc (taken as 86400)"
            )
        );
        assert_eq!(decide(&register("good"), &mut reg).note, None);
    }

    #[test]
    fn update_and_deregister_of_an_unknown_location_are_not_found() {
        // What a client sends to a restarted nsh.
        let mut reg = Registry::default();
        let update = post("/rd/1");
        assert_eq!(classify(&update, &NoContext), Kind::Update);
        let d = decide(&update, &mut reg);
        assert_eq!(d.reply, respond(Code::NOT_FOUND));
        assert!(
            d.note
                .as_deref()
                .is_some_and(|n| n.contains("unknown registration location"))
        );
        assert!(
            d.note
                .as_deref()
                .is_some_and(|n| n.ends_with("the client registers again"))
        );
        let mut delete = Message::new(Type::Confirmable, Code::DELETE, 2);
        delete.set_uri("/rd/7");
        let d = decide(&delete, &mut reg);
        assert_eq!(d.reply, respond(Code::NOT_FOUND));
        // A De-registering client does not register again.
        assert_eq!(
            d.note.as_deref(),
            Some("unknown registration location: answered 4.04, it was not registered here")
        );
        assert!(reg.is_empty());
    }

    #[test]
    fn deregister_forgets_the_client() {
        let mut reg = Registry::default();
        decide(&register("dev"), &mut reg);
        let mut delete = Message::new(Type::Confirmable, Code::DELETE, 2);
        delete.set_uri("/rd/1");
        let d = decide(&delete, &mut reg);
        assert_eq!(d.reply, respond(Code::DELETED));
        assert_eq!(d.target, Target::Gone("dev".into()));
        assert!(reg.is_empty());
    }

    /// The address a registration leaves, when no other registration
    /// is made from there: its observations go with it.
    #[test]
    fn a_registration_that_moves_or_ends_vacates_its_address() {
        let mut reg = Registry::default();
        let elsewhere: SocketAddr = ([127, 0, 0, 1], 6000).into();
        decide(&register("dev"), &mut reg);
        // Registering again from the same address keeps it.
        assert_eq!(decide(&register("dev"), &mut reg).vacated, None);
        let flags = Flags::default();
        let at = SystemTime::UNIX_EPOCH;
        let again = answer(
            &register("dev"),
            Kind::Register,
            elsewhere,
            &flags,
            &mut reg,
            at,
        );
        let v = again.vacated.expect("the old address is left");
        assert_eq!((v.peers, &*v.endpoint), (vec![peer()], "dev"));
        assert_eq!(v.why, "it registered again from 127.0.0.1:6000");
        // Another client still registered at an address keeps it.
        answer(
            &register("other"),
            Kind::Register,
            elsewhere,
            &flags,
            &mut reg,
            at,
        );
        let mut delete = Message::new(Type::Confirmable, Code::DELETE, 2);
        delete.set_uri("/rd/3");
        assert_eq!(decide(&delete, &mut reg).vacated, None);
        delete.set_uri("/rd/4");
        let v = decide(&delete, &mut reg)
            .vacated
            .expect("the last one left");
        assert_eq!((v.peers, &*v.endpoint), (vec![elsewhere], "other"));
        assert_eq!(v.why, "it de-registered");
    }

    /// A registration an Update moved leaves its earlier address too when
    /// it ends (coap-node's observations stay at the port it registered
    /// from).
    #[test]
    fn a_registration_that_ends_vacates_its_earlier_addresses_too() {
        let mut reg = Registry::default();
        let update_port: SocketAddr = ([127, 0, 0, 1], 6001).into();
        decide(&register("dev"), &mut reg);
        let flags = Flags::default();
        let at = SystemTime::UNIX_EPOCH;
        let update = post("/rd/1");
        let kind = classify(&update, &super::super::base::RegistryContext(&reg));
        answer(&update, kind, update_port, &flags, &mut reg, at);
        assert_eq!(reg.by_endpoint("dev").unwrap().peer, update_port);
        let mut delete = Message::new(Type::Confirmable, Code::DELETE, 2);
        delete.set_uri("/rd/1");
        let v = answer(&delete, Kind::Deregister, update_port, &flags, &mut reg, at)
            .vacated
            .expect("its addresses are left");
        assert_eq!(v.peers, vec![update_port, peer()]);
    }

    #[test]
    fn switched_off_responders_answer_nothing_but_the_ack() {
        let mut reg = Registry::default();
        let flags = Flags {
            auto_reregister: false,
            ..Flags::default()
        };
        let m = register("dev");
        let d = answer(
            &m,
            Kind::Register,
            peer(),
            &flags,
            &mut reg,
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(d.reply, Some(Reply::EmptyAck));
        assert!(reg.is_empty());
    }
}
