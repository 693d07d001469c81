//! Property tests: random conversations between nsh and two clients over
//! a lossy, duplicating, reordering link never panic and never match a
//! response to the wrong request; arbitrary messages never panic.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// One step of a random conversation.
#[derive(Clone, Debug)]
enum Step {
    /// The server sends a request (CON when true) to client `peer`.
    Request {
        con: bool,
        peer: bool,
        observe: bool,
    },
    /// The client answers request `n` (mod pending) in some way.
    Answer {
        n: usize,
        how: u8,
        code: u8,
        seq: u32,
    },
    /// The client notifies observation `n` (mod established).
    Notify {
        n: usize,
        con: bool,
        code: u8,
        seq: u32,
    },
    /// A datagram on the link is duplicated.
    Duplicate { n: usize },
    /// A datagram on the link is lost.
    Lose { n: usize },
    /// The network reorders the link.
    Swap { n: usize },
    /// The client sends a request of its own.
    ClientRequest { con: bool },
    /// An arbitrary message arrives from a peer.
    Junk {
        msg_type: u8,
        code: u8,
        mid: u16,
        token: Vec<u8>,
        peer: bool,
    },
    /// Time passes.
    Wait { ms: u32 },
    /// The server gives up waiting for request `n`.
    Cancel { n: usize },
}

/// Mostly realistic response codes, sometimes any byte.
fn code() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => Just(Code::CONTENT.0),
        1 => Just(Code::CHANGED.0),
        1 => Just(Code::NOT_FOUND.0),
        1 => any::<u8>(),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(con, peer, observe)| Step::Request { con, peer, observe }),
        4 => (any::<usize>(), 0u8..6, code(), 0u32..40)
            .prop_map(|(n, how, code, seq)| Step::Answer { n, how, code, seq }),
        3 => (any::<usize>(), any::<bool>(), code(), 0u32..40)
            .prop_map(|(n, con, code, seq)| Step::Notify { n, con, code, seq }),
        2 => any::<usize>().prop_map(|n| Step::Duplicate { n }),
        1 => any::<usize>().prop_map(|n| Step::Lose { n }),
        1 => any::<usize>().prop_map(|n| Step::Swap { n }),
        1 => any::<bool>().prop_map(|con| Step::ClientRequest { con }),
        2 => (0u8..4, any::<u8>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..9), any::<bool>())
            .prop_map(|(msg_type, code, mid, token, peer)| Step::Junk { msg_type, code, mid, token, peer }),
        2 => (0u32..300_000).prop_map(|ms| Step::Wait { ms }),
        1 => any::<usize>().prop_map(|n| Step::Cancel { n }),
    ]
}

/// Runs a conversation and checks that every match is right.
fn run_conversation(steps: &[Step]) {
    let mut clock = FakeClock::new();
    let mut server: Exchanges<Addr> = Exchanges::new(TransmissionParams::default(), 11);
    let mut clients: HashMap<Addr, Exchanges<Addr>> = [CLIENT, OTHER_CLIENT]
        .into_iter()
        .map(|a| {
            (
                a,
                Exchanges::new(TransmissionParams::default(), u64::from(a)),
            )
        })
        .collect();
    // Everything in flight to the server: (from, message).
    let mut link: Vec<(Addr, Message)> = Vec::new();
    // Requests the server sent: id -> (peer, message).
    let mut sent: HashMap<RequestId, (Addr, Message)> = HashMap::new();
    // Requests the clients saw (to answer): (peer, request).
    let mut seen: Vec<(Addr, Message)> = Vec::new();
    let mut answered: std::collections::HashSet<RequestId> = Default::default();

    let drain = |server: &mut Exchanges<Addr>,
                 clients: &mut HashMap<Addr, Exchanges<Addr>>,
                 link: &mut Vec<(Addr, Message)>,
                 seen: &mut Vec<(Addr, Message)>| {
        while let Some((to, m)) = server.poll_transmit() {
            if m.code.is_request() {
                seen.push((to, m));
            }
        }
        for (addr, c) in clients.iter_mut() {
            while let Some((_, m)) = c.poll_transmit() {
                link.push((*addr, m));
            }
        }
    };

    for s in steps {
        let now = clock.now();
        match s.clone() {
            Step::Request { con, peer, observe } => {
                let to = if peer { CLIENT } else { OTHER_CLIENT };
                let mtype = if con {
                    Type::Confirmable
                } else {
                    Type::NonConfirmable
                };
                let mut m = Message::new(mtype, Code::GET, server.next_message_id(&to));
                m.token = server.new_token(&to);
                m.set_uri("/3/0/13");
                if observe {
                    m.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
                }
                let id = server.send_request(to, m.clone(), now);
                sent.insert(id, (to, m));
            }
            Step::Answer { n, how, code, seq } if !seen.is_empty() => {
                let (peer, req) = seen[n % seen.len()].clone();
                let code = Code(code);
                let c = clients.get_mut(&peer).expect("known client");
                let observe = (seq % 3 != 0).then_some(seq);
                let mut resp = match how {
                    0 => Message::new(Type::Acknowledgement, code, req.message_id),
                    1 => Message::new(Type::Acknowledgement, Code::EMPTY, req.message_id),
                    2 => Message::new(Type::Confirmable, code, c.next_message_id(&SERVER)),
                    3 => Message::new(Type::NonConfirmable, code, c.next_message_id(&SERVER)),
                    4 => Message::new(Type::Reset, Code::EMPTY, req.message_id),
                    // The wakatiwai stray: same ID, empty token.
                    _ => Message::new(Type::Acknowledgement, code, req.message_id),
                };
                if how != 1 && how != 4 && how != 5 {
                    resp.token = req.token.clone();
                }
                if let Some(v) = observe {
                    resp.add_option(CoapOption::uint(OptionNumber::OBSERVE, u64::from(v)));
                }
                c.send_other(SERVER, &resp, now);
            }
            Step::Notify { n, con, code, seq } => {
                let obs: Vec<(Addr, Vec<u8>)> = server
                    .observations()
                    .map(|o| (o.peer, o.token.clone()))
                    .collect();
                if !obs.is_empty() {
                    let (peer, token) = obs[n % obs.len()].clone();
                    let c = clients.get_mut(&peer).expect("known client");
                    let mtype = if con {
                        Type::Confirmable
                    } else {
                        Type::NonConfirmable
                    };
                    let mut m = Message::new(mtype, Code(code), c.next_message_id(&SERVER));
                    m.token = token;
                    m.add_option(CoapOption::uint(OptionNumber::OBSERVE, u64::from(seq)));
                    c.send_other(SERVER, &m, now);
                }
            }
            Step::Duplicate { n } if !link.is_empty() => {
                let d = link[n % link.len()].clone();
                link.push(d);
            }
            Step::Lose { n } if !link.is_empty() => {
                link.remove(n % link.len());
            }
            Step::Swap { n } if link.len() > 1 => {
                let i = n % link.len();
                let last = link.len() - 1;
                link.swap(i, last);
            }
            Step::ClientRequest { con } => {
                let c = clients.get_mut(&CLIENT).expect("known client");
                let mtype = if con {
                    Type::Confirmable
                } else {
                    Type::NonConfirmable
                };
                let mut m = Message::new(mtype, Code::POST, c.next_message_id(&SERVER));
                m.token = c.new_token(&SERVER);
                m.set_uri("/rd/0");
                c.send_request(SERVER, m, now);
            }
            Step::Junk {
                msg_type,
                code,
                mid,
                token,
                peer,
            } => {
                let mut m = Message::new(Type::from_bits(msg_type), Code(code), mid);
                m.token = token;
                link.push((if peer { CLIENT } else { OTHER_CLIENT }, m));
            }
            Step::Wait { ms } => {
                clock.advance(Duration::from_millis(u64::from(ms)));
                server.handle_timeout(clock.now());
                for c in clients.values_mut() {
                    c.handle_timeout(clock.now());
                }
            }
            Step::Cancel { n } if !sent.is_empty() => {
                let mut ids: Vec<RequestId> = sent.keys().copied().collect();
                ids.sort();
                server.cancel_request(ids[n % ids.len()]);
            }
            _ => {}
        }
        drain(&mut server, &mut clients, &mut link, &mut seen);
        // Deliver everything on the link to the server and check each
        // classification.
        for (from, m) in std::mem::take(&mut link) {
            let now = clock.now();
            match server.handle_incoming(&from, &m, now) {
                Incoming::Response { id, ack } => {
                    let (peer, req) = &sent[&id];
                    assert_eq!(*peer, from, "response from the wrong peer");
                    assert_eq!(m.token, req.token, "response with the wrong token");
                    assert!(m.code.is_response());
                    if m.mtype == Type::Acknowledgement {
                        assert_eq!(m.message_id, req.message_id, "ACK with the wrong ID");
                    }
                    assert_eq!(ack.is_some(), m.mtype == Type::Confirmable);
                    assert!(answered.insert(id), "a request answered twice");
                }
                Incoming::EmptyAck { id } | Incoming::Reset { id } => {
                    let (peer, req) = &sent[&id];
                    assert_eq!(*peer, from);
                    assert_eq!(m.message_id, req.message_id);
                    assert!(!answered.contains(&id), "ACK/RST after the response");
                }
                Incoming::Notification {
                    observation, ack, ..
                } => {
                    if let Some(o) = server.observation(observation) {
                        assert_eq!(o.token, m.token);
                        assert_eq!(o.peer, from);
                    }
                    assert_eq!(ack.is_some(), m.mtype == Type::Confirmable);
                }
                Incoming::Duplicate { .. } => {
                    assert!(matches!(m.mtype, Type::Confirmable | Type::NonConfirmable));
                }
                Incoming::Stray { .. } => {
                    assert!(
                        m.code.is_response()
                            || matches!(m.mtype, Type::Acknowledgement | Type::Reset)
                    );
                }
                Incoming::New => {
                    assert!(matches!(m.mtype, Type::Confirmable | Type::NonConfirmable));
                    assert!(!m.code.is_response());
                }
            }
        }
        while server.poll_event().is_some() {}
        let _ = server.poll_timeout();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_conversations_never_panic_nor_mismatch(steps in proptest::collection::vec(step(), 1..60)) {
        run_conversation(&steps);
    }

    #[test]
    fn arbitrary_messages_never_panic(
        msgs in proptest::collection::vec(
            (0u8..4, any::<u8>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..9), any::<Option<u32>>(), 0u32..100_000),
            1..80,
        )
    ) {
        let (mut clock, mut ex) = server_alone(TransmissionParams::default());
        let mut sent: HashMap<RequestId, Message> = HashMap::new();
        for (i, (t, code, mid, token, observe, wait)) in msgs.into_iter().enumerate() {
            if i % 4 == 0 {
                let mut m = Message::new(Type::from_bits(t), Code::GET, mid);
                m.token = token.clone();
                m.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
                sent.insert(ex.send_request(CLIENT, m.clone(), clock.now()), m);
            }
            let mut m = Message::new(Type::from_bits(t), Code(code), mid);
            m.token = token;
            if let Some(v) = observe {
                m.add_option(CoapOption::uint(OptionNumber::OBSERVE, u64::from(v)));
            }
            if let Incoming::Response { id, .. } = ex.handle_incoming(&CLIENT, &m, clock.now()) {
                prop_assert_eq!(&sent[&id].token, &m.token);
            }
            clock.advance(Duration::from_millis(u64::from(wait)));
            ex.handle_timeout(clock.now());
            while ex.poll_transmit().is_some() {}
            while ex.poll_event().is_some() {}
        }
    }
}
