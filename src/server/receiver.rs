//! The receiving thread: reads datagrams, records them, lets the exchange
//! layer match them, runs the auto-responders and fires retransmissions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Direction, Record, RegistryContext, Role, Server, State, auto};
use crate::coap::{Code, Message, tcp, udp};
use crate::exchange::{Event, Incoming};
use crate::lwm2m::kind;
use crate::transport::Transport;
use crate::transport::udp::MAX_DATAGRAM;

pub(super) fn spawn(server: Server, transport: Arc<Transport>, generation: u64) {
    std::thread::Builder::new()
        .name("nsh-receiver".into())
        .spawn(move || run(server, transport, generation))
        .map(|_| ())
        .unwrap_or_else(|e| eprintln!("error: cannot start the receiving thread: {e}"));
}

fn run(server: Server, transport: Arc<Transport>, generation: u64) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let wait = {
            let st = server.lock();
            if st.generation != generation {
                return;
            }
            let now = Instant::now();
            st.exchanges
                .poll_timeout()
                .map_or(Duration::from_millis(100), |t| {
                    t.saturating_duration_since(now)
                })
                .min(Duration::from_millis(100))
        };
        let received = transport.recv(&mut buf, wait);
        for line in transport.take_notices() {
            server.print(&line);
        }
        for peer in transport.take_accepted() {
            // RFC 8323 §5.3: each side's first message is its CSM.
            let mut st = server.lock();
            if st.generation != generation {
                return;
            }
            send_quietly(&server, &mut st, peer, super::our_csm());
        }
        let reliable = transport.is_reliable();
        match received {
            Ok(Some((n, peer))) => handle_datagram(&server, &buf[..n], peer, reliable),
            Ok(None) => {}
            Err(e) => {
                // ICMP port unreachable and the like: report, keep going.
                server.print(&format!("receive error: {e}"));
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut st = server.lock();
        if st.generation != generation {
            return;
        }
        drive_timers(&server, &mut st);
        drop(st);
        server.notify_all();
    }
}

fn drive_timers(server: &Server, st: &mut State) {
    for gone in st.registry.expire(SystemTime::now()) {
        server.print(&format!(
            "registration of {} ({}) expired: no Update within its lifetime of {} s",
            gone.endpoint,
            gone.location,
            gone.registration.lifetime_or_default()
        ));
        if st.current.as_deref() == Some(gone.endpoint.as_str()) {
            st.current = None;
        }
    }
    let now = Instant::now();
    st.exchanges.handle_timeout(now);
    if let Err(e) = server.flush(st) {
        server.print(&format!("send error: {e}"));
    }
    while let Some(event) = st.exchanges.poll_event() {
        if let Event::GaveUp(id) | Event::Expired(id) = event {
            st.gave_up.insert(id);
        }
    }
}

fn handle_datagram(server: &Server, bytes: &[u8], peer: SocketAddr, reliable: bool) {
    let mut st = server.lock();
    st.registry.touch(peer);
    let decoded = if reliable {
        tcp::decode(bytes)
    } else {
        udp::decode(bytes)
    };
    let now = Instant::now();
    let (role, kind, incoming, observed_path, request_path) = match &decoded {
        Ok(msg) => {
            let incoming = st.exchanges.handle_incoming(&peer, msg, now);
            let kind = kind::classify(msg, &RegistryContext(&st.registry));
            let role = match &incoming {
                Incoming::Response { .. } => Role::Response,
                Incoming::EmptyAck { .. } => Role::EmptyAck,
                Incoming::Reset { .. } => Role::Response,
                Incoming::Notification { .. } => Role::Notification,
                Incoming::Duplicate { .. } => Role::Duplicate,
                Incoming::Stray { .. } => Role::Stray,
                Incoming::New => Role::New,
            };
            let observed = match &incoming {
                Incoming::Notification { observation, .. } => st
                    .exchanges
                    .observation(*observation)
                    .map(|o| o.path.clone())
                    .or_else(|| st.observed.get(&msg.token).cloned()),
                _ => None,
            };
            let request_path = match &incoming {
                Incoming::Response { id, .. }
                | Incoming::Reset { id }
                | Incoming::EmptyAck { id } => st.request_paths.get(id).cloned(),
                _ => None,
            };
            (role, Some(kind), Some(incoming), observed, request_path)
        }
        Err(_) => (Role::Malformed, None, None, None, None),
    };
    if let Ok(msg) = &decoded
        && role != Role::Duplicate
    {
        st.payload_buffer.extend_from_slice(&msg.payload);
    }
    let record = Server::push_record(
        &mut st,
        Record {
            seq: 0,
            direction: Direction::Received,
            peer,
            at: SystemTime::now(),
            raw: bytes.to_vec(),
            message: decoded,
            kind,
            role,
            observed_path,
            request_path,
        },
    );
    if st.flags.print_messages {
        server.print(&record.line());
    }
    check_expectation(&mut st, &record);
    match incoming {
        Some(Incoming::Response { id, ack }) => {
            if let Some(ack) = ack {
                send_quietly(server, &mut st, peer, ack);
            }
            note_observation(&mut st, id, &record);
            st.responses.insert(id, record);
        }
        Some(Incoming::Reset { id }) => {
            st.responses.insert(id, record);
        }
        Some(Incoming::Notification { ack, .. }) => {
            if let Some(ack) = ack {
                send_quietly(server, &mut st, peer, ack);
            }
            st.inbox.push_back(record);
        }
        Some(Incoming::Duplicate { reply }) => {
            if let Some(reply) = reply {
                send_quietly(server, &mut st, peer, reply);
            }
        }
        Some(Incoming::Stray { .. }) => {
            // A CON nobody waits for (a late separate response, a notification
            // of a cancelled observation) is rejected (RFC 7252 §5.3.2,
            // RFC 7641 §3.6).
            if let Ok(msg) = &record.message
                && msg.mtype == crate::coap::Type::Confirmable
                && !msg.reliable
                && st.flags.auto_ack
            {
                let rst = crate::coap::Message::new(
                    crate::coap::Type::Reset,
                    crate::coap::Code::EMPTY,
                    msg.message_id,
                );
                send_quietly(server, &mut st, peer, rst);
            }
        }
        Some(Incoming::EmptyAck { id }) => {
            // For a CON that is not a request (a ping, a notification), the
            // empty ACK is the whole answer; a request waits on.
            if !st.exchanges.is_pending(id) {
                st.responses.insert(id, record);
            }
        }
        Some(Incoming::New) => {
            signaling(server, &mut st, peer, &record);
            auto::respond(server, &mut st, peer, &record);
            st.inbox.push_back(record);
        }
        None => st.inbox.push_back(record),
    }
    drop(st);
    server.notify_all();
}

/// RFC 8323 §5 signaling over TCP: the peer's CSM is kept, Release and
/// Abort are reported (the connection is closed by the peer). Ping is
/// answered by the auto-responder.
fn signaling(server: &Server, st: &mut State, peer: SocketAddr, record: &super::RecordRef) {
    let Ok(msg) = &record.message else { return };
    if !msg.reliable {
        return;
    }
    match msg.code {
        Code::CSM => {
            st.peer_csm.insert(peer, record.clone());
        }
        Code::RELEASE | Code::ABORT => {
            let what = if msg.code == Code::RELEASE {
                "Release"
            } else {
                "Abort"
            };
            let why = if msg.payload.is_empty() {
                String::new()
            } else {
                format!(": {}", String::from_utf8_lossy(&msg.payload))
            };
            server.print(&format!("{peer} sent {what}{why}"));
        }
        _ => {}
    }
}

/// A Pong for a TCP Ping (RFC 8323 §5.4), with its token.
pub(super) fn pong(ping: &Message) -> Message {
    let mut pong = Message::new(crate::coap::Type::Confirmable, Code::PONG, 0);
    pong.reliable = true;
    pong.token = ping.token.clone();
    pong
}

fn note_observation(st: &mut State, _id: crate::exchange::RequestId, record: &Record) {
    if let Ok(msg) = &record.message
        && msg.observe().is_some()
        && let Some(o) = st.exchanges.observations().find(|o| o.token == msg.token)
    {
        let path = o.path.clone();
        st.observed.insert(msg.token.clone(), path);
    }
}

/// Sends a reply through the exchange layer (so duplicates get it again).
pub(super) fn send_quietly(
    server: &Server,
    st: &mut State,
    peer: SocketAddr,
    msg: crate::coap::Message,
) {
    st.exchanges.send_other(peer, &msg, Instant::now());
    if let Err(e) = server.flush(st) {
        server.print(&format!("send error: {e}"));
    }
}

fn check_expectation(st: &mut State, record: &Record) {
    let Some(expectation) = st.expectation.take() else {
        return;
    };
    let problems = match &expectation {
        super::Expectation::Nothing => vec!["no message expected".to_string()],
        super::Expectation::Matching(_, check) => check(record).err().unwrap_or_default(),
    };
    if problems.is_empty() {
        st.expectation_report = None;
        return;
    }
    let expected = match &expectation {
        super::Expectation::Nothing => "None".to_string(),
        super::Expectation::Matching(text, _) => text.clone(),
    };
    st.expectation_report = Some(format!(
        "*** unexpected message ***\n{}\n\n--- GOT ---\n{}\n--- EXPECTED ---\n{expected}\n------",
        problems.join("\n"),
        record.details()
    ));
}
