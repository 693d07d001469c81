//! Sans-IO tests of the exchange rules: an in-memory [`Pair`] of endpoints
//! (nsh as the server, a simulated LwM2M client) joined by a lossy link,
//! and a [`FakeClock`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::coap::{CoapOption, udp};

type Addr = u8;
const SERVER: Addr = 1;
const CLIENT: Addr = 2;
const OTHER_CLIENT: Addr = 3;

/// A clock that moves only when told.
struct FakeClock {
    now: Instant,
}

impl FakeClock {
    fn new() -> Self {
        FakeClock {
            now: Instant::now(),
        }
    }

    fn now(&self) -> Instant {
        self.now
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    fn set(&mut self, t: Instant) {
        assert!(t >= self.now, "the fake clock never goes back");
        self.now = t;
    }
}

/// nsh (`server`) and a client (`client`), each an [`Exchanges`], joined by
/// an in-memory link carrying encoded datagrams.
struct Pair {
    clock: FakeClock,
    server: Exchanges<Addr>,
    client: Exchanges<Addr>,
    to_server: VecDeque<Vec<u8>>,
    to_client: VecDeque<Vec<u8>>,
}

impl Pair {
    fn new() -> Self {
        Pair::with_params(TransmissionParams::default())
    }

    fn with_params(params: TransmissionParams) -> Self {
        Pair {
            clock: FakeClock::new(),
            server: Exchanges::new(params.clone(), 1),
            client: Exchanges::new(params, 2),
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
        }
    }

    /// Moves what both endpoints want to send onto the link.
    fn flush(&mut self) {
        while let Some((to, msg)) = self.server.poll_transmit() {
            assert_eq!(to, CLIENT);
            self.to_client.push_back(udp::encode(&msg));
        }
        while let Some((to, msg)) = self.client.poll_transmit() {
            assert_eq!(to, SERVER);
            self.to_server.push_back(udp::encode(&msg));
        }
    }

    /// Delivers the next datagram to the server.
    fn server_receive(&mut self) -> Option<(Message, Incoming)> {
        self.flush();
        let bytes = self.to_server.pop_front()?;
        let msg = udp::decode(&bytes).expect("the pair only carries valid messages");
        let incoming = self.server.handle_incoming(&CLIENT, &msg, self.clock.now());
        Some((msg, incoming))
    }

    /// Delivers the next datagram to the client.
    fn client_receive(&mut self) -> Option<(Message, Incoming)> {
        self.flush();
        let bytes = self.to_client.pop_front()?;
        let msg = udp::decode(&bytes).expect("the pair only carries valid messages");
        let incoming = self.client.handle_incoming(&SERVER, &msg, self.clock.now());
        Some((msg, incoming))
    }

    /// Loses the next datagram to the client.
    fn drop_to_client(&mut self) -> Option<Message> {
        self.flush();
        self.to_client
            .pop_front()
            .and_then(|b| udp::decode(&b).ok())
    }

    /// Loses the next datagram to the server.
    fn drop_to_server(&mut self) -> Option<Message> {
        self.flush();
        self.to_server
            .pop_front()
            .and_then(|b| udp::decode(&b).ok())
    }

    /// Advances the clock to the server's next deadline and handles it.
    fn server_timeout(&mut self) -> Option<Instant> {
        let t = self.server.poll_timeout()?;
        self.clock.set(t);
        self.server.handle_timeout(t);
        Some(t)
    }

    fn server_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    /// The server sends a request built by `build` with a fresh message ID
    /// and token.
    fn server_request(&mut self, mtype: Type, code: Code, path: &str) -> (RequestId, Message) {
        let mut msg = Message::new(mtype, code, self.server.next_message_id(&CLIENT));
        msg.token = self.server.new_token();
        msg.set_uri(path);
        let id = self
            .server
            .send_request(CLIENT, msg.clone(), self.clock.now());
        (id, msg)
    }

    /// The client answers `request` with a piggybacked ACK.
    fn client_piggyback(&mut self, request: &Message, code: Code, observe: Option<u32>) {
        let mut ack = Message::new(Type::Acknowledgement, code, request.message_id);
        ack.token = request.token.clone();
        if let Some(seq) = observe {
            ack.add_option(CoapOption::uint(OptionNumber::OBSERVE, u64::from(seq)));
        }
        self.client.send_other(SERVER, &ack, self.clock.now());
    }

    /// The client sends a separate response or notification for `token`.
    fn client_separate(
        &mut self,
        mtype: Type,
        token: &[u8],
        code: Code,
        observe: Option<u32>,
    ) -> Message {
        let mut msg = Message::new(mtype, code, self.client.next_message_id(&SERVER));
        msg.token = token.to_vec();
        if let Some(seq) = observe {
            msg.add_option(CoapOption::uint(OptionNumber::OBSERVE, u64::from(seq)));
        }
        self.client.send_other(SERVER, &msg, self.clock.now());
        msg
    }

    /// The client sends a request (Register, Update, Send…).
    fn client_request(&mut self, mtype: Type, code: Code, path: &str) -> Message {
        let mut msg = Message::new(mtype, code, self.client.next_message_id(&SERVER));
        msg.token = self.client.new_token();
        msg.set_uri(path);
        self.client
            .send_request(SERVER, msg.clone(), self.clock.now());
        msg
    }

    /// The server observes `path` and the client accepts with sequence
    /// `seq`; returns the observation and the request's token.
    fn establish_observation(&mut self, path: &str, seq: u32) -> (ObservationId, Vec<u8>) {
        let mut msg = Message::new(
            Type::Confirmable,
            Code::GET,
            self.server.next_message_id(&CLIENT),
        );
        msg.token = self.server.new_token();
        msg.set_uri(path);
        msg.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
        let id = self
            .server
            .send_request(CLIENT, msg.clone(), self.clock.now());
        self.client_receive().expect("the observe request");
        self.client_piggyback(&msg, Code::CONTENT, Some(seq));
        let (_, incoming) = self.server_receive().expect("the response");
        assert_eq!(incoming, Incoming::Response { id, ack: None });
        let obs = self
            .server
            .observation_for_path(&CLIENT, path)
            .expect("an observation");
        (obs.id, msg.token)
    }
}

fn server_alone(params: TransmissionParams) -> (FakeClock, Exchanges<Addr>) {
    (FakeClock::new(), Exchanges::new(params, 7))
}

fn con_get(ex: &mut Exchanges<Addr>, path: &str) -> Message {
    let mut msg = Message::new(Type::Confirmable, Code::GET, ex.next_message_id(&CLIENT));
    msg.token = ex.new_token();
    msg.set_uri(path);
    msg
}

// ---------------------------------------------------------------- ids, tokens

#[test]
fn message_ids_are_a_sequence_per_peer() {
    let mut ex: Exchanges<Addr> = Exchanges::new(TransmissionParams::default(), 3);
    let a0 = ex.next_message_id(&CLIENT);
    let b0 = ex.next_message_id(&OTHER_CLIENT);
    let a1 = ex.next_message_id(&CLIENT);
    let b1 = ex.next_message_id(&OTHER_CLIENT);
    assert_eq!(a1, a0.wrapping_add(1));
    assert_eq!(b1, b0.wrapping_add(1));
}

#[test]
fn initial_message_ids_depend_on_the_seed() {
    let first =
        |seed| Exchanges::<Addr>::new(TransmissionParams::default(), seed).next_message_id(&CLIENT);
    assert_eq!(first(5), first(5));
    let distinct: std::collections::HashSet<u16> = (0..20).map(first).collect();
    assert!(distinct.len() > 10, "initial IDs should be random per seed");
}

#[test]
fn tokens_are_8_random_bytes_reproducible_from_the_seed() {
    let mut a: Exchanges<Addr> = Exchanges::new(TransmissionParams::default(), 9);
    let mut b: Exchanges<Addr> = Exchanges::new(TransmissionParams::default(), 9);
    let ta: Vec<Vec<u8>> = (0..100).map(|_| a.new_token()).collect();
    let tb: Vec<Vec<u8>> = (0..100).map(|_| b.new_token()).collect();
    assert_eq!(ta, tb);
    assert!(ta.iter().all(|t| t.len() == 8));
    let distinct: std::collections::HashSet<&Vec<u8>> = ta.iter().collect();
    assert_eq!(distinct.len(), 100);
}

// ------------------------------------------------------------ retransmission

#[test]
fn con_request_is_retransmitted_with_doubling_timeouts_then_given_up() {
    let mut p = Pair::new();
    let t0 = p.clock.now();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    assert_eq!(p.drop_to_client(), Some(req.clone()));

    let mut sends = Vec::new();
    while let Some(t) = p.server_timeout() {
        if let Some(copy) = p.drop_to_client() {
            assert_eq!(copy, req, "a retransmission is the same message");
            sends.push(t - t0);
        }
        if p.server_events().contains(&Event::GaveUp(id)) {
            sends.push(t - t0);
            break;
        }
    }
    // Retransmissions at T, 3T, 7T, 15T, giving up at 31T (RFC 7252 §4.2).
    assert_eq!(sends.len(), 5);
    let t = sends[0];
    assert!(t >= Duration::from_secs(2) && t <= Duration::from_secs(3));
    for (got, k) in sends.iter().zip([1u32, 3, 7, 15, 31]) {
        assert_eq!(*got, t * k);
    }
    assert!(!p.server.is_pending(id));
}

#[test]
fn initial_timeout_is_random_between_ack_timeout_and_ack_timeout_times_factor() {
    let mut seen = Vec::new();
    for seed in 0..50 {
        let clock = FakeClock::new();
        let mut ex: Exchanges<Addr> = Exchanges::new(TransmissionParams::default(), seed);
        let msg = con_get(&mut ex, "/1");
        ex.send_request(CLIENT, msg, clock.now());
        let first = ex.poll_timeout().expect("a retransmission deadline") - clock.now();
        assert!(first >= Duration::from_secs(2) && first <= Duration::from_secs(3));
        seen.push(first);
    }
    seen.sort();
    assert!(seen[seen.len() - 1] - seen[0] > Duration::from_millis(500));
}

#[test]
fn retransmission_can_be_switched_off() {
    let params = TransmissionParams {
        retransmit: false,
        ..Default::default()
    };
    let mut p = Pair::with_params(params.clone());
    let t0 = p.clock.now();
    let (id, _) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    assert!(p.drop_to_client().is_some());
    let t = p.server_timeout().expect("an expiry");
    assert!(p.drop_to_client().is_none(), "no retransmission");
    assert_eq!(t - t0, params.exchange_lifetime);
    assert_eq!(p.server_events(), vec![Event::Expired(id)]);
}

#[test]
fn an_empty_ack_stops_retransmission() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    p.client_receive().unwrap();
    p.client.send_other(
        SERVER,
        &Message::new(Type::Acknowledgement, Code::EMPTY, req.message_id),
        p.clock.now(),
    );
    assert_eq!(p.server_receive().unwrap().1, Incoming::EmptyAck { id });
    assert_eq!(p.server_events(), vec![Event::Acked(id)]);
    p.server_timeout();
    assert!(p.drop_to_client().is_none());
    assert!(p.server_events().contains(&Event::Expired(id)));
}

#[test]
fn non_request_is_not_retransmitted_but_its_response_is_matched_by_token() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::NonConfirmable, Code::GET, "/3/0");
    p.client_receive().unwrap();
    p.clock.advance(Duration::from_secs(10));
    p.server.handle_timeout(p.clock.now());
    assert!(p.drop_to_client().is_none());
    p.client_separate(Type::NonConfirmable, &req.token, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Response { id, ack: None }
    );
}

#[test]
fn a_retransmitted_request_is_answered_once() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    p.client_receive().unwrap();
    p.server_timeout();
    // The client gets the copy: a duplicate, not processed again.
    assert_eq!(
        p.client_receive().unwrap().1,
        Incoming::Duplicate { reply: None }
    );
    p.client_piggyback(&req, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Response { id, ack: None }
    );
}

// ------------------------------------------------------------------ matching

#[test]
fn piggybacked_response_matches_by_token_and_message_id() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    assert_eq!(p.client_receive().unwrap().1, Incoming::New);
    p.client_piggyback(&req, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Response { id, ack: None }
    );
    assert_eq!(p.server_events(), vec![Event::Acked(id)]);
    assert!(!p.server.is_pending(id));
}

#[test]
fn ack_with_the_right_message_id_but_another_token_is_not_the_response() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    p.client_receive().unwrap();
    let mut wrong = req.clone();
    wrong.token = b"other".to_vec();
    p.client_piggyback(&wrong, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Stray { related: Some(id) }
    );
    assert!(p.server.is_pending(id));
}

#[test]
fn notify_or_update_while_a_request_waits_is_never_its_response() {
    let mut p = Pair::new();
    let (_, obs_token) = p.establish_observation("/3/0/13", 1);
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0/0");
    p.client_receive().unwrap();

    p.client_separate(Type::NonConfirmable, &obs_token, Code::CONTENT, Some(2));
    assert!(matches!(
        p.server_receive().unwrap().1,
        Incoming::Notification { fresh: true, .. }
    ));
    let update = p.client_request(Type::Confirmable, Code::POST, "/rd/0");
    let (got, incoming) = p.server_receive().unwrap();
    assert_eq!(got, update);
    assert_eq!(incoming, Incoming::New);
    // A request from the client that happens to reuse our token is still
    // a request.
    let mut clash = Message::new(Type::Confirmable, Code::POST, 4242);
    clash.token = req.token.clone();
    assert_eq!(
        p.server.handle_incoming(&CLIENT, &clash, p.clock.now()),
        Incoming::New
    );

    assert!(p.server.is_pending(id));
    p.client_piggyback(&req, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Response { id, ack: None }
    );
}

#[test]
fn a_response_from_another_peer_with_the_same_token_is_stray() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let req = con_get(&mut ex, "/3/0");
    let id = ex.send_request(CLIENT, req.clone(), clock.now());
    let mut resp = Message::new(Type::Acknowledgement, Code::CONTENT, req.message_id);
    resp.token = req.token.clone();
    assert_eq!(
        ex.handle_incoming(&OTHER_CLIENT, &resp, clock.now()),
        Incoming::Stray { related: None }
    );
    assert!(ex.is_pending(id));
}

#[test]
fn separate_response_after_an_empty_ack_is_matched_and_must_be_acked() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::POST, "/3/0/4");
    p.client_receive().unwrap();
    p.client.send_other(
        SERVER,
        &Message::new(Type::Acknowledgement, Code::EMPTY, req.message_id),
        p.clock.now(),
    );
    assert_eq!(p.server_receive().unwrap().1, Incoming::EmptyAck { id });
    assert!(p.server.is_pending(id));

    p.clock.advance(Duration::from_secs(30));
    let resp = p.client_separate(Type::Confirmable, &req.token, Code::CHANGED, None);
    let (_, incoming) = p.server_receive().unwrap();
    let ack = empty_ack(resp.message_id);
    assert_eq!(
        incoming,
        Incoming::Response {
            id,
            ack: Some(ack.clone())
        }
    );
    p.server.send_other(CLIENT, &ack, p.clock.now());
    assert!(matches!(
        p.client_receive().unwrap().1,
        Incoming::EmptyAck { .. }
    ));
}

#[test]
fn a_repeated_separate_response_gets_the_cached_ack() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::POST, "/3/0/4");
    p.client_receive().unwrap();
    p.client.send_other(
        SERVER,
        &Message::new(Type::Acknowledgement, Code::EMPTY, req.message_id),
        p.clock.now(),
    );
    p.server_receive().unwrap();
    let resp = p.client_separate(Type::Confirmable, &req.token, Code::CHANGED, None);
    let Some((
        _,
        Incoming::Response {
            id: got,
            ack: Some(ack),
        },
    )) = p.server_receive()
    else {
        panic!("expected a CON response");
    };
    assert_eq!(got, id);
    p.server.send_other(CLIENT, &ack, p.clock.now());
    // Our ACK is lost; the client retransmits.
    assert!(p.drop_to_client().is_some());
    let t = p.client.poll_timeout().unwrap();
    p.clock.set(t);
    p.client.handle_timeout(t);
    let (copy, incoming) = p.server_receive().unwrap();
    assert_eq!(copy, resp);
    assert_eq!(incoming, Incoming::Duplicate { reply: Some(ack) });
}

#[test]
fn separate_response_before_the_empty_ack_completes_the_request() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    p.client_receive().unwrap();
    p.client_separate(Type::Confirmable, &req.token, Code::CONTENT, None);
    assert!(matches!(
        p.server_receive().unwrap().1,
        Incoming::Response { id: got, ack: Some(_) } if got == id
    ));
    // The late empty ACK is stray but related.
    let late = Message::new(Type::Acknowledgement, Code::EMPTY, req.message_id);
    assert_eq!(
        p.server.handle_incoming(&CLIENT, &late, p.clock.now()),
        Incoming::Stray { related: Some(id) }
    );
}

#[test]
fn second_ack_with_the_same_message_id_and_an_empty_token_is_stray() {
    // Captured from wakatiwai: ACK 2.05 answering the request, then an ACK
    // 5.00 with the same message ID and an empty token.
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    p.client_receive().unwrap();
    p.client_piggyback(&req, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Response { id, ack: None }
    );
    let stray = Message::new(
        Type::Acknowledgement,
        Code::INTERNAL_SERVER_ERROR,
        req.message_id,
    );
    assert_eq!(
        p.server.handle_incoming(&CLIENT, &stray, p.clock.now()),
        Incoming::Stray { related: Some(id) }
    );
}

#[test]
fn cancelled_request_is_not_retransmitted_and_its_response_is_stray_and_related() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    p.client_receive().unwrap();
    p.server.cancel_request(id);
    assert!(!p.server.is_pending(id));
    p.clock.advance(Duration::from_secs(10));
    p.server.handle_timeout(p.clock.now());
    assert!(
        p.drop_to_client().is_none(),
        "no retransmission after cancel"
    );
    p.client_separate(Type::NonConfirmable, &req.token, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Stray { related: Some(id) }
    );
}

#[test]
fn unrelated_response_is_stray_without_relation() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let mut resp = Message::new(Type::NonConfirmable, Code::CONTENT, 1);
    resp.token = b"nobody".to_vec();
    assert_eq!(
        ex.handle_incoming(&CLIENT, &resp, clock.now()),
        Incoming::Stray { related: None }
    );
    let ack = Message::new(Type::Acknowledgement, Code::EMPTY, 77);
    assert_eq!(
        ex.handle_incoming(&CLIENT, &ack, clock.now()),
        Incoming::Stray { related: None }
    );
}

#[test]
fn finished_requests_are_forgotten_after_the_exchange_lifetime() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    p.client_receive().unwrap();
    p.client_piggyback(&req, Code::CONTENT, None);
    p.server_receive().unwrap();
    p.clock.advance(Duration::from_secs(248));
    p.server.handle_timeout(p.clock.now());
    assert_eq!(p.server.remembered(), (0, 0));
    let stray = Message::new(Type::Acknowledgement, Code::CONTENT, req.message_id);
    assert_eq!(
        p.server.handle_incoming(&CLIENT, &stray, p.clock.now()),
        Incoming::Stray { related: None }
    );
    let _ = id;
}

// --------------------------------------------------------------- RST, ping

#[test]
fn reset_to_a_con_request_is_reported() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/3/0");
    p.client_receive().unwrap();
    p.client.send_other(
        SERVER,
        &Message::new(Type::Reset, Code::EMPTY, req.message_id),
        p.clock.now(),
    );
    assert_eq!(p.server_receive().unwrap().1, Incoming::Reset { id });
    assert!(!p.server.is_pending(id));
}

#[test]
fn reset_to_a_non_request_is_reported() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::NonConfirmable, Code::GET, "/3/0");
    p.client_receive().unwrap();
    p.client.send_other(
        SERVER,
        &Message::new(Type::Reset, Code::EMPTY, req.message_id),
        p.clock.now(),
    );
    assert_eq!(p.server_receive().unwrap().1, Incoming::Reset { id });
}

#[test]
fn reset_to_our_ping_is_its_answer() {
    let mut p = Pair::new();
    let ping = Message::new(
        Type::Confirmable,
        Code::EMPTY,
        p.server.next_message_id(&CLIENT),
    );
    let id = p.server.send_request(CLIENT, ping.clone(), p.clock.now());
    let (got, incoming) = p.client_receive().unwrap();
    assert_eq!(got, ping);
    assert_eq!(
        incoming,
        Incoming::New,
        "a ping is new; the receiver answers RST"
    );
    p.client.send_other(
        SERVER,
        &Message::new(Type::Reset, Code::EMPTY, ping.message_id),
        p.clock.now(),
    );
    assert_eq!(p.server_receive().unwrap().1, Incoming::Reset { id });
}

#[test]
fn an_empty_ack_to_our_ping_finishes_it() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let ping = Message::new(Type::Confirmable, Code::EMPTY, 5);
    let id = ex.send_request(CLIENT, ping, clock.now());
    let ack = Message::new(Type::Acknowledgement, Code::EMPTY, 5);
    assert_eq!(
        ex.handle_incoming(&CLIENT, &ack, clock.now()),
        Incoming::EmptyAck { id }
    );
    assert!(!ex.is_pending(id));
}

#[test]
fn incoming_ping_is_new_and_its_repeat_gets_our_rst() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let ping = Message::new(Type::Confirmable, Code::EMPTY, 9);
    assert_eq!(
        ex.handle_incoming(&CLIENT, &ping, clock.now()),
        Incoming::New
    );
    let rst = Message::new(Type::Reset, Code::EMPTY, 9);
    assert_eq!(ex.send_other(CLIENT, &rst, clock.now()), None);
    assert_eq!(ex.poll_transmit(), Some((CLIENT, rst.clone())));
    assert_eq!(
        ex.handle_incoming(&CLIENT, &ping, clock.now()),
        Incoming::Duplicate { reply: Some(rst) }
    );
}

// ------------------------------------------------------------- duplicates

#[test]
fn duplicate_con_request_is_answered_with_the_cached_reply() {
    let mut p = Pair::new();
    let register = p.client_request(Type::Confirmable, Code::POST, "/rd");
    assert_eq!(p.server_receive().unwrap().1, Incoming::New);
    let mut created = Message::new(Type::Acknowledgement, Code::CREATED, register.message_id);
    created.token = register.token.clone();
    created.set_option(CoapOption::new(OptionNumber::LOCATION_PATH, b"rd".to_vec()));
    assert_eq!(p.server.send_other(CLIENT, &created, p.clock.now()), None);
    // Our ACK is lost; the client retransmits Register.
    assert!(p.drop_to_client().is_some());
    let t = p.client.poll_timeout().unwrap();
    p.clock.set(t);
    p.client.handle_timeout(t);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Duplicate {
            reply: Some(created)
        }
    );
}

#[test]
fn duplicate_non_request_gets_the_cached_non_response() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let mut send = Message::new(Type::NonConfirmable, Code::POST, 300);
    send.token = vec![1, 2, 3];
    send.set_uri("/dp");
    assert_eq!(
        ex.handle_incoming(&CLIENT, &send, clock.now()),
        Incoming::New
    );
    let mut changed = Message::new(Type::NonConfirmable, Code::CHANGED, 17);
    changed.token = send.token.clone();
    assert!(ex.send_other(CLIENT, &changed, clock.now()).is_some());
    assert_eq!(
        ex.handle_incoming(&CLIENT, &send, clock.now()),
        Incoming::Duplicate {
            reply: Some(changed)
        }
    );
}

#[test]
fn same_message_id_from_another_peer_is_not_a_duplicate() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let update = Message::new(Type::Confirmable, Code::POST, 300);
    assert_eq!(
        ex.handle_incoming(&CLIENT, &update, clock.now()),
        Incoming::New
    );
    assert_eq!(
        ex.handle_incoming(&OTHER_CLIENT, &update, clock.now()),
        Incoming::New
    );
}

#[test]
fn con_ids_are_kept_for_exchange_lifetime_and_non_ids_for_non_lifetime() {
    let (mut clock, mut ex) = server_alone(TransmissionParams::default());
    let con = Message::new(Type::Confirmable, Code::POST, 1);
    let non = Message::new(Type::NonConfirmable, Code::POST, 2);
    ex.handle_incoming(&CLIENT, &con, clock.now());
    ex.handle_incoming(&CLIENT, &non, clock.now());
    clock.advance(Duration::from_secs(144));
    assert!(matches!(
        ex.handle_incoming(&CLIENT, &non, clock.now()),
        Incoming::Duplicate { .. }
    ));
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        ex.handle_incoming(&CLIENT, &non, clock.now()),
        Incoming::New
    );
    clock.advance(Duration::from_secs(101));
    assert!(matches!(
        ex.handle_incoming(&CLIENT, &con, clock.now()),
        Incoming::Duplicate { .. }
    ));
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        ex.handle_incoming(&CLIENT, &con, clock.now()),
        Incoming::New
    );
}

#[test]
fn duplicate_memory_is_pruned_on_timeouts() {
    let (mut clock, mut ex) = server_alone(TransmissionParams::default());
    for mid in 0..1000u16 {
        ex.handle_incoming(
            &CLIENT,
            &Message::new(Type::Confirmable, Code::POST, mid),
            clock.now(),
        );
        clock.advance(Duration::from_millis(10));
    }
    assert_eq!(ex.remembered().0, 1000);
    let deadline = ex.poll_timeout().expect("an expiry deadline");
    clock.set(deadline);
    ex.handle_timeout(clock.now());
    assert_eq!(ex.remembered().0, 999);
    clock.advance(Duration::from_secs(300));
    ex.handle_timeout(clock.now());
    assert_eq!(ex.remembered(), (0, 0));
    assert_eq!(ex.poll_timeout(), None);
}

// ----------------------------------------------------------- observations

#[test]
fn observation_is_registered_by_a_2xx_with_observe_to_an_observe_0_request() {
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0/13", 7);
    let obs = p.server.observation(oid).unwrap();
    assert_eq!(obs.token, token);
    assert_eq!(obs.peer, CLIENT);
    assert_eq!(obs.path, "/3/0/13");
    assert_eq!(obs.last_sequence, 7);
    assert_eq!(obs.count, 1);
    assert!(p.server_events().contains(&Event::Observed(oid)));
    assert_eq!(p.server.observations().count(), 1);
}

#[test]
fn observe_response_without_observe_option_registers_nothing() {
    let mut p = Pair::new();
    let mut req = Message::new(Type::Confirmable, Code::GET, 1);
    req.token = p.server.new_token();
    req.set_uri("/3/0/13");
    req.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
    p.server.send_request(CLIENT, req.clone(), p.clock.now());
    p.client_receive().unwrap();
    p.client_piggyback(&req, Code::CONTENT, None);
    p.server_receive().unwrap();
    assert_eq!(p.server.observations().count(), 0);
    // Nor does an error with Observe.
    let mut p = Pair::new();
    p.server.send_request(CLIENT, req.clone(), p.clock.now());
    p.client_receive().unwrap();
    p.client_piggyback(&req, Code::NOT_FOUND, Some(3));
    p.server_receive().unwrap();
    assert_eq!(p.server.observations().count(), 0);
}

#[test]
fn notifications_are_routed_by_token_and_ordered_by_sequence() {
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0/13", 1);
    let mut fresh = Vec::new();
    for seq in [2, 4, 3, 5] {
        p.client_separate(Type::NonConfirmable, &token, Code::CONTENT, Some(seq));
        match p.server_receive().unwrap().1 {
            Incoming::Notification {
                observation,
                fresh: f,
                ack: None,
            } => {
                assert_eq!(observation, oid);
                fresh.push(f);
            }
            other => panic!("expected a notification, got {other:?}"),
        }
    }
    assert_eq!(fresh, vec![true, true, false, true]);
    let obs = p.server.observation(oid).unwrap();
    assert_eq!((obs.last_sequence, obs.count, obs.stale), (5, 5, 1));
}

#[test]
fn con_notification_must_be_acked() {
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0/13", 1);
    let n = p.client_separate(Type::Confirmable, &token, Code::CONTENT, Some(2));
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Notification {
            observation: oid,
            fresh: true,
            ack: Some(empty_ack(n.message_id))
        }
    );
}

#[test]
fn old_sequence_is_fresh_again_after_128_seconds() {
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0/13", 10);
    p.clock.advance(Duration::from_secs(129));
    p.client_separate(Type::NonConfirmable, &token, Code::CONTENT, Some(3));
    assert!(matches!(
        p.server_receive().unwrap().1,
        Incoming::Notification { fresh: true, observation, .. } if observation == oid
    ));
}

#[test]
fn error_notification_ends_the_observation() {
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0/13", 1);
    p.server_events();
    p.client_separate(Type::NonConfirmable, &token, Code::NOT_FOUND, Some(2));
    assert!(matches!(
        p.server_receive().unwrap().1,
        Incoming::Notification { observation, .. } if observation == oid
    ));
    assert!(p.server.observation(oid).is_none());
    assert_eq!(p.server_events(), vec![Event::ObservationEnded(oid)]);
    p.client_separate(Type::NonConfirmable, &token, Code::CONTENT, Some(3));
    assert!(matches!(
        p.server_receive().unwrap().1,
        Incoming::Stray { related: Some(_) }
    ));
}

#[test]
fn notification_without_observe_ends_the_observation() {
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0/13", 1);
    p.client_separate(Type::NonConfirmable, &token, Code::CONTENT, None);
    assert!(matches!(
        p.server_receive().unwrap().1,
        Incoming::Notification { observation, fresh: true, .. } if observation == oid
    ));
    assert_eq!(p.server.observations().count(), 0);
}

#[test]
fn cancelled_observation_gets_stray_notifications() {
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0/13", 1);
    let obs = p
        .server
        .cancel_observation_by_token(&token)
        .expect("observed");
    assert_eq!(obs.id, oid);
    assert!(p.server.cancel_observation_by_token(&token).is_none());
    p.client_separate(Type::Confirmable, &token, Code::CONTENT, Some(2));
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Stray {
            related: Some(obs.request)
        }
    );
}

#[test]
fn observing_the_same_path_again_replaces_the_observation() {
    let mut p = Pair::new();
    let (first, _) = p.establish_observation("/3/0/13", 1);
    let (other, _) = p.establish_observation("/3/0/9", 1);
    let (second, token) = p.establish_observation("/3/0/13", 1);
    assert_ne!(first, second);
    assert!(p.server.observation(first).is_none());
    assert!(p.server.observation(other).is_some());
    assert_eq!(p.server.observations().count(), 2);
    assert!(p.server_events().contains(&Event::ObservationEnded(first)));
    assert_eq!(
        p.server
            .observation_for_path(&CLIENT, "/3/0/13")
            .unwrap()
            .token,
        token
    );
}

#[test]
fn observe_1_request_deregisters() {
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0/13", 1);
    let mut cancel = Message::new(
        Type::Confirmable,
        Code::GET,
        p.server.next_message_id(&CLIENT),
    );
    cancel.token = token;
    cancel.set_uri("/3/0/13");
    cancel.add_option(CoapOption::uint(OptionNumber::OBSERVE, 1));
    let id = p.server.send_request(CLIENT, cancel.clone(), p.clock.now());
    p.client_receive().unwrap();
    p.client_piggyback(&cancel, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Response { id, ack: None }
    );
    assert!(p.server.observation(oid).is_none());
}

/// The server sends the Observe=1 deregistration for `token` on `path`.
fn send_cancel(p: &mut Pair, token: &[u8], path: &str, mtype: Type) -> (RequestId, Message) {
    let mut cancel = Message::new(mtype, Code::GET, p.server.next_message_id(&CLIENT));
    cancel.token = token.to_vec();
    cancel.set_uri(path);
    cancel.add_option(CoapOption::uint(OptionNumber::OBSERVE, 1));
    let id = p.server.send_request(CLIENT, cancel.clone(), p.clock.now());
    (id, cancel)
}

#[test]
fn a_notification_in_flight_during_a_cancel_is_a_notification_not_its_response() {
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0/13", 1);
    let (id, cancel) = send_cancel(&mut p, &token, "/3/0/13", Type::Confirmable);
    p.client_receive().expect("the cancel");
    // RFC 7641 §3.6: it carries Observe, so it belongs to the observation.
    p.client_separate(Type::NonConfirmable, &token, Code::CONTENT, Some(2));
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Notification {
            observation: oid,
            fresh: true,
            ack: None
        }
    );
    assert!(p.server.is_pending(id), "the cancel still waits");
    // A reordered older one is a notification too, stale.
    p.client_separate(Type::Confirmable, &token, Code::CONTENT, Some(1));
    assert!(matches!(
        p.server_receive().unwrap().1,
        Incoming::Notification { observation, fresh: false, ack: Some(_) } if observation == oid
    ));
    // The cancel's own response has no Observe option.
    p.client_piggyback(&cancel, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Response { id, ack: None }
    );
    assert!(p.server.observation(oid).is_none());
}

#[test]
fn the_separate_response_to_a_cancel_is_its_response_after_a_notification() {
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0/13", 1);
    let (id, cancel) = send_cancel(&mut p, &token, "/3/0/13", Type::Confirmable);
    let (sent, _) = p.client_receive().expect("the cancel");
    let mut ack = Message::new(Type::Acknowledgement, Code::EMPTY, sent.message_id);
    ack.token.clear();
    p.client.send_other(SERVER, &ack, p.clock.now());
    assert_eq!(p.server_receive().unwrap().1, Incoming::EmptyAck { id });
    p.client_separate(Type::NonConfirmable, &token, Code::CONTENT, Some(5));
    assert!(matches!(
        p.server_receive().unwrap().1,
        Incoming::Notification { observation, fresh: true, .. } if observation == oid
    ));
    let r = p.client_separate(Type::Confirmable, &cancel.token, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Response {
            id,
            ack: Some(empty_ack(r.message_id))
        }
    );
    assert!(p.server.observation(oid).is_none());
}

#[test]
fn a_reliable_notification_during_a_cancel_is_a_notification() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let mut obs = tcp_get(&mut ex, "/3/0/13");
    obs.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
    ex.send_request(CLIENT, obs.clone(), clock.now());
    let mut first = tcp_response(&obs.token, Code::CONTENT);
    first.add_option(CoapOption::uint(OptionNumber::OBSERVE, 1));
    assert!(matches!(
        ex.handle_incoming(&CLIENT, &first, clock.now()),
        Incoming::Response { .. }
    ));
    let oid = ex.observation_for_path(&CLIENT, "/3/0/13").unwrap().id;
    let mut cancel = obs.clone();
    cancel.set_option(CoapOption::uint(OptionNumber::OBSERVE, 1));
    let id = ex.send_request(CLIENT, cancel, clock.now());
    let mut n = tcp_response(&obs.token, Code::CONTENT);
    n.add_option(CoapOption::uint(OptionNumber::OBSERVE, 2));
    assert_eq!(
        ex.handle_incoming(&CLIENT, &n, clock.now()),
        Incoming::Notification {
            observation: oid,
            fresh: true,
            ack: None
        }
    );
    let r = tcp_response(&obs.token, Code::CONTENT);
    assert_eq!(
        ex.handle_incoming(&CLIENT, &r, clock.now()),
        Incoming::Response { id, ack: None }
    );
}

// ------------------------------------------------------------- NSTART, others

#[test]
fn nstart_holds_a_second_con_until_the_first_is_acked() {
    let mut p = Pair::new();
    let (first, req1) = p.server_request(Type::Confirmable, Code::GET, "/1");
    let (second, req2) = p.server_request(Type::Confirmable, Code::GET, "/2");
    let mut other = con_get(&mut p.server, "/3");
    other.message_id = 1;
    p.server.send_request(OTHER_CLIENT, other, p.clock.now());
    assert_eq!(p.server.poll_transmit().map(|(_, m)| m), Some(req1.clone()));
    let (to, _) = p.server.poll_transmit().unwrap();
    assert_eq!(to, OTHER_CLIENT, "another peer is not held back");
    assert!(p.server.poll_transmit().is_none());
    assert!(p.server.is_pending(second));

    p.client_piggyback(&req1, Code::CONTENT, None);
    assert_eq!(
        p.server_receive().unwrap().1,
        Incoming::Response {
            id: first,
            ack: None
        }
    );
    assert_eq!(p.server.poll_transmit().map(|(_, m)| m), Some(req2));
}

#[test]
fn raising_nstart_releases_queued_requests() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    for _ in 0..3 {
        let m = con_get(&mut ex, "/1");
        ex.send_request(CLIENT, m, clock.now());
    }
    assert_eq!(std::iter::from_fn(|| ex.poll_transmit()).count(), 1);
    ex.set_params(TransmissionParams {
        nstart: 3,
        ..Default::default()
    });
    assert_eq!(std::iter::from_fn(|| ex.poll_transmit()).count(), 2);
}

#[test]
fn nstart_0_means_no_limit() {
    let params = TransmissionParams {
        nstart: 0,
        ..Default::default()
    };
    let (clock, mut ex) = server_alone(params);
    for _ in 0..5 {
        let m = con_get(&mut ex, "/1");
        ex.send_request(CLIENT, m, clock.now());
    }
    assert_eq!(std::iter::from_fn(|| ex.poll_transmit()).count(), 5);
}

#[test]
fn con_notification_we_send_is_retransmitted_until_acked() {
    let mut p = Pair::new();
    let mut notify = Message::new(
        Type::Confirmable,
        Code::CONTENT,
        p.client.next_message_id(&SERVER),
    );
    notify.token = vec![9];
    notify.add_option(CoapOption::uint(OptionNumber::OBSERVE, 4));
    let id = p
        .client
        .send_other(SERVER, &notify, p.clock.now())
        .expect("tracked");
    assert!(p.drop_to_server().is_some());
    let t = p.client.poll_timeout().unwrap();
    p.clock.set(t);
    p.client.handle_timeout(t);
    assert!(matches!(
        p.server_receive().unwrap().1,
        Incoming::Stray { .. }
    ));
    p.server.send_other(
        CLIENT,
        &Message::new(Type::Acknowledgement, Code::EMPTY, notify.message_id),
        p.clock.now(),
    );
    assert_eq!(p.client_receive().unwrap().1, Incoming::EmptyAck { id });
    assert!(!p.client.is_pending(id));
}

#[test]
fn rst_to_a_non_notification_we_sent_is_reported() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let mut notify = Message::new(Type::NonConfirmable, Code::CONTENT, 40);
    notify.token = vec![9];
    let id = ex
        .send_other(CLIENT, &notify, clock.now())
        .expect("tracked");
    let rst = Message::new(Type::Reset, Code::EMPTY, 40);
    assert_eq!(
        ex.handle_incoming(&CLIENT, &rst, clock.now()),
        Incoming::Reset { id }
    );
}

// ----------------------------------------------------------------- Block2

#[test]
fn next_block2_request_gets_a_new_token_and_keeps_the_operation() {
    let mut p = Pair::new();
    let (id, req) = p.server_request(Type::Confirmable, Code::GET, "/5/0/0");
    p.client_receive().unwrap();
    let mut resp = Message::new(Type::Acknowledgement, Code::CONTENT, req.message_id);
    resp.token = req.token.clone();
    resp.add_option(CoapOption::new(
        OptionNumber::BLOCK2,
        crate::coap::BlockValue::new(0, true, 16).unwrap().encode(),
    ));
    resp.payload = vec![0; 16];
    p.client.send_other(SERVER, &resp, p.clock.now());
    let (resp, incoming) = p.server_receive().unwrap();
    assert_eq!(incoming, Incoming::Response { id, ack: None });
    let mut body = Block2Assembly::new();
    assert!(matches!(body.push(&resp), Ok(BlockProgress::Next(_))));

    let next = p
        .server
        .send_next_block2(CLIENT, id, &req, &resp, p.clock.now())
        .expect("a next block");
    let sent = p.server.pending_message(next).unwrap().clone();
    assert_ne!(sent.token, req.token);
    assert_ne!(sent.message_id, req.message_id);
    assert_eq!(sent.block2().map(|b| b.num), Some(1));
    assert_eq!(p.server.operation_of(next), Some(id));
    assert_eq!(p.server.operation_of(id), Some(id));

    let (got, _) = p.client_receive().unwrap();
    assert_eq!(got, sent);
    let mut last = Message::new(Type::Acknowledgement, Code::CONTENT, sent.message_id);
    last.token = sent.token.clone();
    last.add_option(CoapOption::new(
        OptionNumber::BLOCK2,
        crate::coap::BlockValue::new(1, false, 16).unwrap().encode(),
    ));
    last.payload = vec![1; 4];
    p.client.send_other(SERVER, &last, p.clock.now());
    let (last, incoming) = p.server_receive().unwrap();
    assert_eq!(
        incoming,
        Incoming::Response {
            id: next,
            ack: None
        }
    );
    assert_eq!(body.push(&last), Ok(BlockProgress::Complete));
    assert_eq!(body.body().len(), 20);
    assert_eq!(
        p.server
            .send_next_block2(CLIENT, next, &sent, &last, p.clock.now()),
        None
    );
}

/// The client answers `req` with a piggybacked block of `size` bytes.
fn block_ack(req: &Message, num: u32, more: bool, size: u32, len: usize) -> Message {
    let mut resp = Message::new(Type::Acknowledgement, Code::CONTENT, req.message_id);
    resp.token = req.token.clone();
    resp.add_option(CoapOption::new(
        OptionNumber::BLOCK2,
        crate::coap::BlockValue::new(num, more, size)
            .unwrap()
            .encode(),
    ));
    resp.payload = vec![num as u8; len];
    resp
}

#[test]
fn a_block_wise_notification_is_completed_with_gets_on_new_tokens() {
    // RFC 7959 §2.6.
    let mut p = Pair::new();
    let (oid, token) = p.establish_observation("/3/0", 1);
    let mut first = Message::new(
        Type::NonConfirmable,
        Code::CONTENT,
        p.client.next_message_id(&SERVER),
    );
    first.token = token.clone();
    first.add_option(CoapOption::uint(OptionNumber::OBSERVE, 2));
    first.add_option(CoapOption::new(
        OptionNumber::BLOCK2,
        crate::coap::BlockValue::new(0, true, 16).unwrap().encode(),
    ));
    first.payload = vec![0; 16];
    p.client.send_other(SERVER, &first, p.clock.now());
    let (first, incoming) = p.server_receive().unwrap();
    assert!(
        matches!(incoming, Incoming::Notification { observation, fresh: true, .. } if observation == oid)
    );
    let mut body = Block2Assembly::new();
    assert!(matches!(body.push(&first), Ok(BlockProgress::Next(_))));

    let second = p
        .server
        .send_next_notification_block2(oid, &first, p.clock.now())
        .unwrap()
        .expect("a second block");
    let (req, _) = p.client_receive().unwrap();
    assert_eq!(req.observe(), None, "no Observe on the follow-up");
    assert_ne!(req.token, token, "a new token, not the observation's");
    assert_eq!(req.path_string(), "/3/0");
    assert_eq!(req.block2().map(|b| (b.num, b.size())), Some((1, 16)));
    p.client
        .send_other(SERVER, &block_ack(&req, 1, true, 16, 16), p.clock.now());
    let (resp, incoming) = p.server_receive().unwrap();
    assert_eq!(
        incoming,
        Incoming::Response {
            id: second,
            ack: None
        }
    );
    assert!(matches!(body.push(&resp), Ok(BlockProgress::Next(_))));

    let original = p.server.observation(oid).unwrap().request_message().clone();
    let third = p
        .server
        .send_next_block2(CLIENT, second, &original, &resp, p.clock.now())
        .expect("a third block");
    assert_eq!(p.server.operation_of(third), Some(second));
    let (req, _) = p.client_receive().unwrap();
    assert_eq!(
        (req.observe(), req.block2().map(|b| b.num)),
        (None, Some(2))
    );
    p.client
        .send_other(SERVER, &block_ack(&req, 2, false, 16, 3), p.clock.now());
    let (resp, incoming) = p.server_receive().unwrap();
    assert_eq!(
        incoming,
        Incoming::Response {
            id: third,
            ack: None
        }
    );
    assert_eq!(body.push(&resp), Ok(BlockProgress::Complete));
    assert_eq!(body.body().len(), 35);
    assert!(
        p.server.observation(oid).is_some(),
        "the follow-ups leave the observation alone"
    );

    // A notification in one piece needs nothing more.
    p.client_separate(Type::NonConfirmable, &token, Code::CONTENT, Some(3));
    let (whole, _) = p.server_receive().unwrap();
    assert_eq!(
        p.server
            .send_next_notification_block2(oid, &whole, p.clock.now()),
        Ok(None)
    );
}

// ------------------------------------------------------------------ bounds

#[test]
fn a_peer_keeps_at_most_the_limit_of_observations_the_oldest_ends() {
    let mut p = Pair::new();
    p.server.set_limits(Limits {
        observations_per_peer: 2,
        ..Limits::default()
    });
    let (first, first_token) = p.establish_observation("/3/0/1", 1);
    let (second, _) = p.establish_observation("/3/0/2", 1);
    p.server_events();
    let (third, _) = p.establish_observation("/3/0/3", 1);
    let ids: Vec<ObservationId> = p.server.observations().map(|o| o.id).collect();
    assert_eq!(ids, vec![second, third]);
    assert!(p.server_events().contains(&Event::ObservationEnded(first)));
    assert_eq!(p.server.dropped().observations, 1);
    // Its notifications are stray now (answered with RST by the caller).
    p.client_separate(Type::NonConfirmable, &first_token, Code::CONTENT, Some(2));
    assert!(matches!(
        p.server_receive().unwrap().1,
        Incoming::Stray { .. }
    ));
}

#[test]
fn observations_are_bounded_per_peer_not_overall() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    ex.set_limits(Limits {
        observations_per_peer: 1,
        ..Limits::default()
    });
    for peer in [CLIENT, OTHER_CLIENT] {
        let mut req = con_get(&mut ex, "/3/0/13");
        req.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
        ex.send_request(peer, req.clone(), clock.now());
        let mut ack = Message::new(Type::Acknowledgement, Code::CONTENT, req.message_id);
        ack.token = req.token.clone();
        ack.add_option(CoapOption::uint(OptionNumber::OBSERVE, 1));
        assert!(matches!(
            ex.handle_incoming(&peer, &ack, clock.now()),
            Incoming::Response { .. }
        ));
    }
    assert_eq!(ex.observations().count(), 2);
    assert_eq!(ex.dropped().observations, 0);
}

#[test]
fn finished_requests_are_bounded_even_with_an_endless_lifetime() {
    let params = TransmissionParams {
        exchange_lifetime: Duration::MAX,
        ..TransmissionParams::default()
    };
    let (clock, mut ex) = server_alone(params);
    ex.set_limits(Limits {
        finished: 10,
        ..Limits::default()
    });
    let mut first = None;
    for _ in 0..25 {
        let req = con_get(&mut ex, "/1");
        let id = ex.send_request(CLIENT, req, clock.now());
        first.get_or_insert(id);
        ex.cancel_request(id);
    }
    assert_eq!(ex.remembered().1, 10);
    assert_eq!(ex.dropped().finished, 15);
    assert_eq!(
        ex.operation_of(first.unwrap()),
        None,
        "the oldest is forgotten"
    );
}

#[test]
fn duplicate_detection_is_bounded_by_the_limit() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    ex.set_limits(Limits {
        duplicates: 100,
        ..Limits::default()
    });
    for mid in 0..300u16 {
        let mut m = Message::new(Type::NonConfirmable, Code::POST, mid);
        m.token = vec![1];
        assert_eq!(ex.handle_incoming(&CLIENT, &m, clock.now()), Incoming::New);
    }
    assert_eq!(ex.remembered().0, 100);
    assert_eq!(ex.dropped().duplicates, 200);
    let mut again = Message::new(Type::NonConfirmable, Code::POST, 299);
    again.token = vec![1];
    assert!(matches!(
        ex.handle_incoming(&CLIENT, &again, clock.now()),
        Incoming::Duplicate { .. }
    ));
}

#[test]
fn message_id_counters_are_kept_for_a_bounded_number_of_peers() {
    let mut ex = Exchanges::<u16>::new(TransmissionParams::default(), 3);
    ex.set_limits(Limits {
        peers: 4,
        ..Limits::default()
    });
    for peer in 0..20u16 {
        ex.next_message_id(&peer);
        ex.next_message_id(&peer);
    }
    assert_eq!(ex.dropped().peers, 16);
}

// ---------------------------------------------------------- odd parameters

#[test]
fn extreme_parameters_do_not_panic() {
    let params = TransmissionParams {
        ack_timeout: Duration::MAX,
        ack_random_factor: f64::NAN,
        max_retransmit: u32::MAX,
        max_latency: Duration::MAX,
        nstart: u32::MAX,
        ..Default::default()
    }
    .derive_lifetimes();
    let (mut clock, mut ex) = server_alone(params);
    let m = con_get(&mut ex, "/1");
    ex.send_request(CLIENT, m.clone(), clock.now());
    ex.handle_incoming(
        &CLIENT,
        &Message::new(Type::Confirmable, Code::POST, 1),
        clock.now(),
    );
    clock.advance(Duration::from_secs(1_000_000));
    ex.handle_timeout(clock.now());
    assert_eq!(ex.poll_timeout(), None);
    let zero = TransmissionParams {
        ack_timeout: Duration::ZERO,
        max_retransmit: 0,
        ..Default::default()
    };
    ex.set_params(zero);
    let m = con_get(&mut ex, "/2");
    ex.send_request(CLIENT, m, clock.now());
    ex.handle_timeout(clock.now());
}

// -------------------------------------------------------- property tests

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
                m.token = server.new_token();
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
                m.token = c.new_token();
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

// ------------------------------------------------- reliable (CoAP over TCP)

fn tcp_get(ex: &mut Exchanges<Addr>, path: &str) -> Message {
    let mut msg = Message::new(Type::Confirmable, Code::GET, 0);
    msg.reliable = true;
    msg.token = ex.new_token();
    msg.set_uri(path);
    msg
}

fn tcp_response(token: &[u8], code: Code) -> Message {
    let mut m = Message::new(Type::Confirmable, code, 0);
    m.reliable = true;
    m.token = token.to_vec();
    m
}

#[test]
fn reliable_request_is_sent_once_and_never_retransmitted() {
    let (mut clock, mut ex) = server_alone(TransmissionParams::default());
    let req = tcp_get(&mut ex, "/3/0");
    let id = ex.send_request(CLIENT, req.clone(), clock.now());
    assert_eq!(ex.poll_transmit(), Some((CLIENT, req)));
    let deadline = ex.poll_timeout().expect("an expiry");
    assert_eq!(
        deadline - clock.now(),
        TransmissionParams::default().exchange_lifetime
    );
    clock.advance(Duration::from_secs(60));
    ex.handle_timeout(clock.now());
    assert_eq!(ex.poll_transmit(), None, "no retransmission over TCP");
    assert!(ex.is_pending(id));
    clock.set(deadline);
    ex.handle_timeout(clock.now());
    assert_eq!(ex.poll_event(), Some(Event::Expired(id)));
}

#[test]
fn reliable_response_is_matched_by_token_only_and_needs_no_ack() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let first = tcp_get(&mut ex, "/3/0");
    let second = tcp_get(&mut ex, "/1/0");
    let a = ex.send_request(CLIENT, first.clone(), clock.now());
    let b = ex.send_request(CLIENT, second.clone(), clock.now());
    // NSTART does not hold the second back: nothing waits for an ACK.
    assert_eq!(ex.poll_transmit().map(|t| t.1), Some(first.clone()));
    assert_eq!(ex.poll_transmit().map(|t| t.1), Some(second.clone()));
    // Answers in the other order; message IDs (all 0) play no part.
    assert_eq!(
        ex.handle_incoming(
            &CLIENT,
            &tcp_response(&second.token, Code::CONTENT),
            clock.now()
        ),
        Incoming::Response { id: b, ack: None }
    );
    // Another peer with the same token is not the answer.
    assert!(matches!(
        ex.handle_incoming(
            &OTHER_CLIENT,
            &tcp_response(&first.token, Code::CONTENT),
            clock.now()
        ),
        Incoming::Stray { .. }
    ));
    assert_eq!(
        ex.handle_incoming(
            &CLIENT,
            &tcp_response(&first.token, Code::CONTENT),
            clock.now()
        ),
        Incoming::Response { id: a, ack: None }
    );
    assert_eq!(ex.poll_transmit(), None, "no ACK over TCP");
    // The same response again is stray, not a duplicate.
    assert_eq!(
        ex.handle_incoming(
            &CLIENT,
            &tcp_response(&first.token, Code::CONTENT),
            clock.now()
        ),
        Incoming::Stray { related: Some(a) }
    );
}

#[test]
fn reliable_requests_from_the_peer_are_new_every_time() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let mut reg = Message::new(Type::Confirmable, Code::POST, 0);
    reg.reliable = true;
    reg.set_uri("/rd");
    for _ in 0..2 {
        // Same message ID 0 twice: no duplicate detection without IDs.
        assert_eq!(
            ex.handle_incoming(&CLIENT, &reg, clock.now()),
            Incoming::New
        );
    }
    let mut csm = Message::new(Type::Confirmable, Code::CSM, 0);
    csm.reliable = true;
    assert_eq!(
        ex.handle_incoming(&CLIENT, &csm, clock.now()),
        Incoming::New
    );
    // A reply is sent at once and not tracked or cached.
    let mut created = tcp_response(&[], Code::CREATED);
    created.mtype = Type::Acknowledgement;
    assert_eq!(ex.send_other(CLIENT, &created, clock.now()), None);
    assert_eq!(ex.poll_transmit(), Some((CLIENT, created)));
    assert_eq!(ex.poll_timeout(), None, "nothing to retransmit or expire");
}

#[test]
fn reliable_observation_notifications_are_matched_by_token() {
    let (clock, mut ex) = server_alone(TransmissionParams::default());
    let mut req = tcp_get(&mut ex, "/3/0/13");
    req.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
    let id = ex.send_request(CLIENT, req.clone(), clock.now());
    let mut first = tcp_response(&req.token, Code::CONTENT);
    first.add_option(CoapOption::uint(OptionNumber::OBSERVE, 1));
    assert_eq!(
        ex.handle_incoming(&CLIENT, &first, clock.now()),
        Incoming::Response { id, ack: None }
    );
    let mut next = tcp_response(&req.token, Code::CONTENT);
    next.add_option(CoapOption::uint(OptionNumber::OBSERVE, 2));
    assert!(matches!(
        ex.handle_incoming(&CLIENT, &next, clock.now()),
        Incoming::Notification {
            fresh: true,
            ack: None,
            ..
        }
    ));
}
