//! Sans-IO tests of the exchange rules: an in-memory [`Pair`] of endpoints
//! (nsh as the server, a simulated LwM2M client) joined by a lossy link,
//! and a [`FakeClock`]. This file holds the harness; the tests are grouped
//! by topic in the submodules.

mod blockwise;
mod bounds;
mod conversations;
mod duplicates;
mod ids;
mod matching;
mod observations;
mod reliable;
mod retransmission;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

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
        msg.token = self.server.new_token(&CLIENT);
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
        msg.token = self.client.new_token(&SERVER);
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
        msg.token = self.server.new_token(&CLIENT);
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
    msg.token = ex.new_token(&CLIENT);
    msg.set_uri(path);
    msg
}

fn tcp_get(ex: &mut Exchanges<Addr>, path: &str) -> Message {
    let mut msg = Message::new(Type::Confirmable, Code::GET, 0);
    msg.reliable = true;
    msg.token = ex.new_token(&CLIENT);
    msg.set_uri(path);
    msg
}

fn tcp_response(token: &[u8], code: Code) -> Message {
    let mut m = Message::new(Type::Confirmable, code, 0);
    m.reliable = true;
    m.token = token.to_vec();
    m
}
