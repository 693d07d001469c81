//! In-process tests of the whole server (driver thread, core, effects)
//! through the in-memory transport: the test plays the client on the
//! network's other end, datagram by datagram.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::coap::{BlockValue, CoapOption, Code, ContentFormat, Message, OptionNumber, Type, udp};
use crate::transport::memory;

const WAIT: Duration = Duration::from_secs(5);

fn device() -> SocketAddr {
    ([127, 0, 0, 1], 40000).into()
}

struct Net {
    server: Server,
    net: memory::MemoryNetwork,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Net {
    fn new() -> Net {
        let server = Server::new();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        server.set_printer(Arc::new(move |l: &str| {
            sink.lock().unwrap().push(l.to_string());
        }));
        let (t, net) = memory::pair(([127, 0, 0, 1], 5683).into());
        server.attach(Transport::Memory(t)).unwrap();
        Net { server, net, lines }
    }

    fn send(&self, m: &Message) {
        self.net.send(device(), &udp::encode(m));
    }

    fn recv(&self) -> Message {
        let (bytes, to) = self.net.recv(WAIT).expect("a datagram from the server");
        assert_eq!(to, device());
        udp::decode(&bytes).unwrap()
    }

    fn nothing_sent(&self, within: Duration) -> bool {
        self.net.recv(within).is_none()
    }

    /// Whether a line containing `needle` was printed (lines are printed
    /// after the core is released: give the printing thread a moment).
    fn printed(&self, needle: &str) -> bool {
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            if self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Registers `dev` and returns the Created.
    fn register(&self) -> Message {
        let mut m = Message::new(Type::Confirmable, Code::POST, 1);
        m.token = vec![1];
        m.set_uri("/rd?ep=dev&lt=300");
        m.add_option(CoapOption::uint(
            OptionNumber::CONTENT_FORMAT,
            u64::from(ContentFormat::LINK_FORMAT.0),
        ));
        m.payload = b"</3/0>".to_vec();
        self.send(&m);
        let created = self.recv();
        assert_eq!(created.code, Code::CREATED);
        created
    }

    /// Runs `f` on another thread (a command that waits for the device).
    fn command<T: Send + 'static>(
        &self,
        f: impl FnOnce(Server) -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let s = self.server.clone();
        std::thread::spawn(move || f(s))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

fn get(path: &str) -> Message {
    let mut m = Message::new(Type::Confirmable, Code::GET, 0);
    m.set_uri(path);
    m
}

fn waiting(wait: Duration) -> SendOptions {
    SendOptions {
        fill_message_id: true,
        fill_token: true,
        wait: Some(wait),
    }
}

fn content(req: &Message, mtype: Type, mid: u16, payload: &[u8]) -> Message {
    let mut r = Message::new(mtype, Code::CONTENT, mid);
    r.token = req.token.clone();
    r.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 0));
    r.payload = payload.to_vec();
    r
}

#[test]
fn an_update_to_an_unknown_location_is_answered_not_found() {
    // A client of an nsh that restarted: its location means nothing here.
    let n = Net::new();
    let mut update = Message::new(Type::Confirmable, Code::POST, 7);
    update.token = vec![9];
    update.set_uri("/rd/1?lt=300");
    n.send(&update);
    let answer = n.recv();
    assert_eq!(answer.mtype, Type::Acknowledgement);
    assert_eq!(answer.message_id, 7);
    assert_eq!(answer.code, Code::NOT_FOUND);
    assert_eq!(answer.token, vec![9]);
    let r = n.server.recv(WAIT).unwrap().unwrap();
    assert_eq!(r.kind, Some(crate::lwm2m::kind::Kind::Update));
    assert!(
        r.line().contains("unknown registration location"),
        "{}",
        r.line()
    );
    // So is a De-register; a known location is still Changed.
    let mut delete = Message::new(Type::Confirmable, Code::DELETE, 8);
    delete.set_uri("/rd/99");
    n.send(&delete);
    assert_eq!(n.recv().code, Code::NOT_FOUND);
    let created = n.register();
    let mut update = Message::new(Type::Confirmable, Code::POST, 9);
    update.set_uri(&created.location_string());
    n.send(&update);
    assert_eq!(n.recv().code, Code::CHANGED);
}

/// A request the device acknowledged with an empty ACK and then never
/// answered (coap-node's Delete of an instance it cannot delete): the
/// timeout says a separate response was announced, which a bare "no
/// response" hid.
#[test]
fn a_timeout_after_an_empty_ack_says_a_separate_response_was_due() {
    let n = Net::new();
    n.register();
    let waiter = n.command(|s| {
        s.send_to(
            device(),
            get("/3303/1"),
            waiting(Duration::from_millis(600)),
        )
    });
    let req = n.recv();
    n.send(&Message::new(
        Type::Acknowledgement,
        Code::EMPTY,
        req.message_id,
    ));
    let e = waiter
        .join()
        .unwrap()
        .expect_err("no response came")
        .to_string();
    assert!(
        e.starts_with("no response to `Read /3303/1` within 0.6 s; the device acknowledged it with an empty ACK")
            && e.contains("separate response"),
        "{e}"
    );
}

#[test]
fn a_non_request_is_answered_with_a_message_id_of_our_own() {
    // RFC 7252 §4.4: the message ID of a NON belongs to its sender.
    let n = Net::new();
    let mut send = Message::new(Type::NonConfirmable, Code::POST, 0x1234);
    send.token = vec![5, 6];
    send.set_uri("/dp");
    send.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 110));
    send.payload = br#"[{"n":"/3/0/0","vs":"x"}]"#.to_vec();
    n.send(&send);
    let answer = n.recv();
    assert_eq!(answer.mtype, Type::NonConfirmable);
    assert_eq!(answer.code, Code::CHANGED);
    assert_eq!(answer.token, vec![5, 6]);
    assert_ne!(answer.message_id, 0x1234);
    // The next one gets the next ID of nsh's sequence for this peer.
    send.message_id = 0x1235;
    n.send(&send);
    let second = n.recv();
    assert_eq!(second.message_id, answer.message_id.wrapping_add(1));
}

#[test]
fn a_failed_send_is_not_recorded_and_does_not_block_the_next_request() {
    let n = Net::new();
    n.register();
    n.net.fail_sends(true);
    let err = n.server.send(get("/3/0/0"), waiting(WAIT)).unwrap_err();
    assert!(
        matches!(&err, ServerError::SendFailed(e) if e.contains("Read /3/0/0")),
        "{err}"
    );
    assert!(
        n.server
            .history()
            .iter()
            .all(|r| r.direction == Direction::Received
                || r.kind != Some(crate::lwm2m::kind::Kind::Read)),
        "a datagram that never left is not in the history"
    );
    assert!(
        !n.printed("send error"),
        "the error is the waiting command's, said once"
    );
    n.net.fail_sends(false);
    // NSTART=1: had the failed CON stayed tracked, this one would wait
    // behind it for its whole retransmission schedule.
    let read = n.command(|s| s.send(get("/3/0/1"), waiting(WAIT)));
    let req = n.recv();
    assert_eq!(req.path_string(), "/3/0/1");
    n.send(&content(
        &req,
        Type::Acknowledgement,
        req.message_id,
        b"model",
    ));
    let sent = read.join().unwrap().unwrap();
    assert_eq!(
        sent.response.unwrap().message.as_ref().unwrap().payload,
        b"model"
    );
    assert!(sent.sent.is_some());
}

#[test]
fn the_history_keeps_a_request_before_its_response() {
    let n = Net::new();
    n.register();
    let read = n.command(|s| s.send(get("/3/0/0"), waiting(WAIT)));
    let req = n.recv();
    n.send(&content(
        &req,
        Type::Acknowledgement,
        req.message_id,
        b"ACME",
    ));
    read.join().unwrap().unwrap();
    let h = n.server.history();
    let seqs: Vec<u64> = h.iter().map(|r| r.seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(seqs, sorted);
    let read_at = h.iter().position(|r| {
        r.direction == Direction::Sent && r.kind == Some(crate::lwm2m::kind::Kind::Read)
    });
    let content_at = h.iter().position(|r| r.role == Role::Response);
    assert!(read_at < content_at, "{h:?}");
}

/// Observes `/3/0/13` and answers with Observe `seq`; returns the request.
fn observe(n: &Net, seq: u64) -> Message {
    let mut req = get("/3/0/13");
    req.add_option(CoapOption::uint(OptionNumber::OBSERVE, 0));
    let cmd = n.command(move |s| s.send(req, waiting(WAIT)));
    let req = n.recv();
    let mut r = content(&req, Type::Acknowledgement, req.message_id, b"100");
    r.add_option(CoapOption::uint(OptionNumber::OBSERVE, seq));
    n.send(&r);
    cmd.join().unwrap().unwrap();
    req
}

fn notification(req: &Message, mid: u16, seq: u64, payload: &[u8]) -> Message {
    let mut m = content(req, Type::NonConfirmable, mid, payload);
    m.add_option(CoapOption::uint(OptionNumber::OBSERVE, seq));
    m
}

#[test]
fn a_reordered_old_notification_is_marked_stale() {
    // RFC 7641 §3.4.
    let n = Net::new();
    n.register();
    n.server.recv(WAIT).unwrap();
    let req = observe(&n, 10);
    n.send(&notification(&req, 500, 12, b"101"));
    n.send(&notification(&req, 501, 11, b"99"));
    let newer = n.server.recv(WAIT).unwrap().unwrap();
    let older = n.server.recv(WAIT).unwrap().unwrap();
    assert_eq!(newer.fresh, Some(true));
    assert_eq!(older.fresh, Some(false));
    assert!(older.line().contains("stale"), "{}", older.line());
    assert!(!newer.line().contains("stale"));
}

#[test]
fn content_in_another_format_than_the_accept_asked_for_is_noted() {
    // RFC 7252 §5.10.4: a preferred Content-Format that cannot be returned
    // is answered 4.06 Not Acceptable, not 2.05 in another format. The
    // device here always answers text/plain (0).
    let n = Net::new();
    n.register();
    let read = |accept: Option<u64>| {
        let mut req = get("/3/0");
        if let Some(a) = accept {
            req.add_option(CoapOption::uint(OptionNumber::ACCEPT, a));
        }
        let read = n.command(move |s| s.send(req, waiting(WAIT)));
        let sent = n.recv();
        n.send(&content(
            &sent,
            Type::Acknowledgement,
            sent.message_id,
            b"x",
        ));
        read.join().unwrap().unwrap().response.unwrap()
    };
    let r = read(Some(110));
    assert_eq!(
        r.note.as_deref(),
        Some(
            "protocol error: Content-Format 0 (TEXT_PLAIN) answers a request whose Accept is 110 (APPLICATION_LWM2M_SENML_JSON); 4.06 Not Acceptable was due (RFC 7252 §5.10.4)"
        )
    );
    assert!(
        r.line().contains("protocol error: Content-Format 0"),
        "{}",
        r.line()
    );
    // The format asked for, or no Accept at all: no note.
    assert_eq!(read(Some(0)).note, None);
    assert_eq!(read(None).note, None);
}

#[test]
fn an_error_in_the_middle_of_a_block2_read_is_reported_as_such() {
    let n = Net::new();
    n.register();
    let read = n.command(|s| s.send(get("/5/0/0"), waiting(WAIT)));
    let req = n.recv();
    let mut first = content(&req, Type::Acknowledgement, req.message_id, &[0u8; 16]);
    first.add_option(CoapOption::new(
        OptionNumber::BLOCK2,
        BlockValue::new(0, true, 16).unwrap().encode(),
    ));
    n.send(&first);
    let next = n.recv();
    assert_eq!(next.block2().map(|b| b.num), Some(1));
    let mut gone = Message::new(Type::Acknowledgement, Code::NOT_FOUND, next.message_id);
    gone.token = next.token.clone();
    n.send(&gone);
    let err = read.join().unwrap().unwrap_err().to_string();
    assert!(err.contains("4.04"), "{err}");
    assert!(!err.contains("has no Block2"), "{err}");
}

#[test]
fn a_block_wise_notification_is_completed_and_delivered_whole() {
    // RFC 7959 §2.6: the rest of the body is fetched with GETs without
    // Observe.
    let n = Net::new();
    n.register();
    n.server.recv(WAIT).unwrap();
    let req = observe(&n, 1);
    let mut first = notification(&req, 600, 2, b"0123456789abcdef");
    first.add_option(CoapOption::new(
        OptionNumber::BLOCK2,
        BlockValue::new(0, true, 16).unwrap().encode(),
    ));
    n.send(&first);
    let get_rest = n.recv();
    assert_eq!(get_rest.code, Code::GET);
    assert_eq!(get_rest.path_string(), "/3/0/13");
    assert_eq!(get_rest.observe(), None);
    assert_eq!(get_rest.block2().map(|b| b.num), Some(1));
    let mut rest = content(
        &get_rest,
        Type::Acknowledgement,
        get_rest.message_id,
        b"tail",
    );
    rest.add_option(CoapOption::new(
        OptionNumber::BLOCK2,
        BlockValue::new(1, false, 16).unwrap().encode(),
    ));
    n.send(&rest);
    let whole = n.server.recv(WAIT).unwrap().unwrap();
    assert_eq!(whole.role, Role::Assembled);
    assert_eq!(
        whole.message.as_ref().unwrap().payload,
        b"0123456789abcdeftail"
    );
    assert_eq!(whole.observed_path.as_deref(), Some("/3/0/13"));
    assert!(n.server.recv(Duration::from_millis(100)).unwrap().is_none());
}

#[test]
fn the_inbox_is_bounded_and_says_so() {
    let n = Net::new();
    n.server.set_inbox_limit(3);
    for mid in 0..5u16 {
        let mut ping = Message::new(Type::NonConfirmable, Code::POST, mid);
        ping.set_uri("/dp");
        n.send(&ping);
        n.recv();
    }
    assert_eq!(n.server.pending().len(), 3);
    assert_eq!(n.server.inbox_dropped(), 2);
    assert!(n.printed("inbox full"));
    // The history still has every one.
    assert_eq!(
        n.server
            .history()
            .iter()
            .filter(|r| r.direction == Direction::Received)
            .count(),
        5
    );
}

#[test]
fn waits_of_any_length_never_overflow() {
    let n = Net::new();
    n.register();
    n.server.recv(WAIT).unwrap();
    let flag = n.server.interrupt_flag();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        flag.store(true, Ordering::SeqCst);
    });
    assert!(matches!(
        n.server.recv(Duration::MAX),
        Err(ServerError::Interrupted)
    ));
    stopper.join().unwrap();
    assert!(matches!(
        n.server.send(get("/3/0/0"), waiting(Duration::MAX)),
        Err(ServerError::Interrupted)
    ));
    n.server.interrupt_flag().store(false, Ordering::SeqCst);
    assert!(deadline_after(Instant::now(), Duration::MAX).is_none());
}

#[test]
fn shutdown_stops_receiving_and_a_new_transport_can_be_attached() {
    let n = Net::new();
    n.server.shutdown();
    assert_eq!(n.server.listen_port(), None);
    n.register_nothing();
    let (t, net) = memory::pair(([127, 0, 0, 1], 5700).into());
    assert_eq!(n.server.attach(Transport::Memory(t)).unwrap(), 5700);
    let mut ping = Message::new(Type::Confirmable, Code::EMPTY, 3);
    ping.token.clear();
    net.send(device(), &udp::encode(&ping));
    let (bytes, _) = net.recv(WAIT).expect("the RST of the new transport");
    assert_eq!(udp::decode(&bytes).unwrap().mtype, Type::Reset);
}

impl Net {
    /// After a shutdown, nothing is answered.
    fn register_nothing(&self) {
        let mut m = Message::new(Type::Confirmable, Code::POST, 1);
        m.set_uri("/rd?ep=late");
        self.send(&m);
        assert!(self.nothing_sent(Duration::from_millis(300)));
        assert!(self.server.clients().is_empty());
    }
}

#[test]
fn object_definitions_belong_to_the_server_instance() {
    // `load_objects` on one shell must not change what another decodes.
    const XML: &str = r#"<LWM2M><Object ObjectType="MODefinition"><Name>Probe</Name>
        <ObjectID>32770</ObjectID><ObjectURN>urn:oma:lwm2m:x:32770</ObjectURN>
        <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
        <Resources><Item ID="7"><Name>Depth</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory>
        <Type>Integer</Type></Item></Resources></Object></LWM2M>"#;
    let a = Net::new();
    let b = Net::new();
    a.server
        .objects()
        .write()
        .load_xml(XML, "probe.xml")
        .unwrap();
    assert!(a.server.objects().read().object(32770).is_some());
    assert!(b.server.objects().read().object(32770).is_none());
    // A record of server a names the resource; one of server b does not.
    for n in [&a, &b] {
        n.register();
        n.server.recv(WAIT).unwrap();
        let read = n.command(|s| s.send(get("/32770/0/7"), waiting(WAIT)));
        let req = n.recv();
        let mut r = content(&req, Type::Acknowledgement, req.message_id, b"42");
        r.options.clear();
        r.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 0));
        n.send(&r);
        read.join().unwrap().unwrap();
    }
    let details = |n: &Net| {
        n.server
            .history()
            .iter()
            .rev()
            .find(|r| r.role == Role::Response)
            .map(|r| r.details())
            .unwrap()
    };
    assert!(details(&a).contains("Depth"), "{}", details(&a));
    assert!(!details(&b).contains("Depth"), "{}", details(&b));
}

/// The core alone, with a fake clock: no thread, no transport I/O — the
/// test carries out the effects itself, as the driver would.
mod fake_clock {
    use super::*;
    use crate::server::core::{Core, Effect, Ended, Outbound};
    use std::time::SystemTime;

    struct Bench {
        core: Core,
        now: Instant,
        wall: SystemTime,
        /// The other end of the core's transport (datagrams sent in place).
        net: memory::MemoryNetwork,
    }

    impl Bench {
        fn new() -> Bench {
            let mut core = Core::new(crate::exchange::Exchanges::new(
                TransmissionParams::default(),
                7,
            ));
            let (t, net) = memory::pair(([127, 0, 0, 1], 5683).into());
            core.transport = Some(Arc::new(Transport::Memory(t)));
            Bench {
                core,
                now: Instant::now(),
                wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
                net,
            }
        }

        fn advance(&mut self, d: Duration) {
            self.now += d;
            self.wall += d;
            self.core.on_timeout(self.now, self.wall);
        }

        fn receive(&mut self, m: &Message) {
            self.core
                .on_datagram(device(), udp::encode(m), self.now, self.wall);
        }

        /// The datagrams the core wants sent now, in order.
        fn transmits(&mut self) -> Vec<Outbound> {
            self.core
                .take_effects(self.wall)
                .into_iter()
                .filter_map(|e| match e {
                    Effect::Transmit(o) => Some(o),
                    _ => None,
                })
                .collect()
        }

        /// Reports each transmission as done (or failed).
        fn sent(&mut self, outs: Vec<Outbound>, ok: bool) {
            for o in outs {
                let result = if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::other("refused"))
                };
                let _ = self.core.on_sent(o, result, self.wall);
            }
        }

        fn read(&mut self, path: &str) -> RequestId {
            let mut m = get(path);
            m.message_id = 0;
            self.core
                .submit(device(), m, true, true, true, self.now)
                .unwrap()
                .id
                .unwrap()
        }
    }

    /// A GET of `path` sent in place, as `Server::send_to` does it, once
    /// the effects the core queued were carried out (lines printed), as
    /// the server's lock guard does.
    fn read_now(
        b: &mut Bench,
        path: &str,
    ) -> Result<(RequestId, Result<RecordRef, String>), Message> {
        let effects = b.core.take_effects(b.wall);
        assert!(
            effects.iter().all(|e| !matches!(e, Effect::Transmit(_))),
            "only lines to print"
        );
        let ready = b.core.ready_now(device(), get(path), true)?;
        let result = ready.transport.send_to(&ready.raw, device());
        Ok(b.core.sent_now(device(), ready, result, b.now, b.wall))
    }

    #[test]
    fn a_request_sent_in_place_is_tracked_recorded_and_retransmitted_like_any() {
        let mut b = Bench::new();
        let (id, sent) = read_now(&mut b, "/3/0/0").unwrap();
        let record = sent.unwrap();
        let (bytes, to) = b.net.recv(Duration::ZERO).expect("sent at once");
        assert_eq!(to, device());
        let req = udp::decode(&bytes).unwrap();
        assert_eq!(req.path_string(), "/3/0/0");
        assert_eq!(record.raw, bytes, "the record is of the datagram sent");
        assert!(b.transmits().is_empty(), "not queued to be sent again");
        let sent: Vec<_> = b
            .core
            .session
            .history()
            .filter(|r| r.direction == Direction::Sent)
            .map(|r| r.raw.clone())
            .collect();
        assert_eq!(sent, std::slice::from_ref(&bytes), "recorded once");
        assert!(b.core.exchanges.is_pending(id));
        // Retransmitted after ACK_TIMEOUT, with the same message ID.
        b.advance(Duration::from_millis(100));
        assert!(b.transmits().is_empty(), "not before ACK_TIMEOUT");
        b.advance(Duration::from_secs(3));
        let again = b.transmits();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].msg.message_id, req.message_id);
        assert_eq!(again[0].id, Some(id));
        // The answer ends it, as for one submitted.
        b.receive(&content(
            &req,
            Type::Acknowledgement,
            req.message_id,
            b"ACME",
        ));
        let response = b.core.take_outcome(id).unwrap().unwrap();
        assert_eq!(response.message.as_ref().unwrap().payload, b"ACME");
        assert_eq!(response.request_path.as_deref(), Some("/3/0/0"));
        assert!(!b.core.exchanges.is_pending(id));
    }

    #[test]
    fn a_request_goes_in_place_only_when_nothing_is_to_go_out_before_it() {
        let mut b = Bench::new();
        // Something outside the core waits to be carried out.
        let m = b.core.ready_now(device(), get("/3/0/0"), false);
        assert_eq!(m.err().unwrap().path_string(), "/3/0/0");
        // The core holds a transmission of its own (the Created).
        b.receive(&register(60));
        assert!(b.core.ready_now(device(), get("/3/0/0"), true).is_err());
        let outs = b.transmits();
        b.sent(outs, true);
        // NSTART = 1: a CON is outstanding.
        let first = b.read("/3/0/0");
        let outs = b.transmits();
        b.sent(outs, true);
        assert!(read_now(&mut b, "/3/0/1").is_err());
        b.core.abandon(first);
        assert!(read_now(&mut b, "/3/0/1").is_ok());
        // Not over a transport that may wait for its peer.
        let mut b = Bench::new();
        b.core.transport = None;
        assert!(read_now(&mut b, "/3/0/0").is_err());
    }

    #[test]
    fn a_closed_connection_ends_the_requests_waiting_on_it_at_once() {
        let mut b = Bench::new();
        let (id, sent) = read_now(&mut b, "/3/0/0").unwrap();
        assert!(sent.is_ok());
        let why = format!(
            "TCP connection with {} closed: closed by the peer",
            device()
        );
        b.core.on_closed(device(), &why, SystemTime::now());
        assert!(!b.core.exchanges.is_pending(id), "nothing is retransmitted");
        match b.core.take_outcome(id) {
            Some(Err(Ended::Closed(line))) => assert_eq!(line, why),
            other => panic!("{other:?}"),
        }
        // Another peer's connection closing ends nothing of this one's.
        let (other, _) = read_now(&mut b, "/3/0/1").unwrap();
        b.core.on_closed(
            ([127, 0, 0, 9], 1).into(),
            "TCP connection with … closed",
            SystemTime::now(),
        );
        assert!(b.core.exchanges.is_pending(other));
        assert!(b.core.take_outcome(other).is_none());
    }

    #[test]
    fn the_targets_closed_connection_leaves_nowhere_to_send_and_says_why() {
        let mut b = Bench::new();
        b.core.choose(Some(device()), None);
        let why = format!(
            "TCP connection with {} closed: closed by the peer",
            device()
        );
        b.core
            .on_closed(device(), &why, SystemTime::now() - Duration::from_secs(3));
        assert_eq!(b.core.target, None);
        let e = b.core.target_or_error().unwrap_err().to_string();
        let start = format!(
            "no client to send to: the TCP connection with {} closed at ",
            device()
        );
        assert!(e.starts_with(&start), "{e}");
        assert!(
            e.ends_with(" s ago): closed by the peer; `connect` opens a new one"),
            "{e}"
        );
        // A new choice forgets it.
        b.core.choose(None, None);
        assert!(matches!(b.core.target_or_error(), Err(ServerError::NoPeer)));
    }

    #[test]
    fn a_request_refused_in_place_ends_and_frees_the_way() {
        let mut b = Bench::new();
        b.net.fail_sends(true);
        let (id, sent) = read_now(&mut b, "/3/0/0").unwrap();
        let error = sent.unwrap_err();
        assert!(error.contains("Read /3/0/0"), "{error}");
        assert!(!b.core.exchanges.is_pending(id));
        assert!(matches!(
            b.core.take_outcome(id),
            Some(Err(Ended::SendFailed(_)))
        ));
        assert_eq!(
            b.core
                .session
                .history()
                .filter(|r| r.direction == Direction::Sent)
                .count(),
            0,
            "a datagram that never left is not in the history"
        );
        b.net.fail_sends(false);
        assert!(read_now(&mut b, "/3/0/1").unwrap().1.is_ok());
    }

    fn register(lifetime: u32) -> Message {
        let mut m = Message::new(Type::Confirmable, Code::POST, 1);
        m.set_uri(&format!("/rd?ep=dev&lt={lifetime}"));
        m.payload = b"</3/0>".to_vec();
        m
    }

    #[test]
    fn a_register_is_answered_and_recorded_only_once_sent() {
        let mut b = Bench::new();
        b.receive(&register(60));
        let outs = b.transmits();
        assert_eq!(outs.len(), 1);
        assert_eq!(outs[0].msg.code, Code::CREATED);
        let before = b.core.session.history().count();
        b.sent(outs, true);
        assert_eq!(b.core.session.history().count(), before + 1);
        assert_eq!(b.core.registry.len(), 1);
    }

    #[test]
    fn a_failed_transmission_releases_the_request_queued_behind_it() {
        // NSTART = 1: the second CON waits for the first.
        let mut b = Bench::new();
        let first = b.read("/3/0/0");
        let second = b.read("/3/0/1");
        let outs = b.transmits();
        assert_eq!(outs.len(), 1, "the second is held back by NSTART");
        assert_eq!(outs[0].id, Some(first));
        b.sent(outs, false);
        assert!(matches!(b.core.take_outcome(first), Some(Err(_))));
        let outs = b.transmits();
        assert_eq!(outs.len(), 1);
        assert_eq!(outs[0].id, Some(second));
        assert_eq!(outs[0].msg.path_string(), "/3/0/1");
    }

    #[test]
    fn an_unacknowledged_request_is_retransmitted_on_the_fake_clock() {
        let mut b = Bench::new();
        let id = b.read("/3/0/0");
        let first = b.transmits();
        let mid = first[0].msg.message_id;
        b.sent(first, true);
        b.advance(Duration::from_millis(100));
        assert!(b.transmits().is_empty(), "not before ACK_TIMEOUT");
        b.advance(Duration::from_secs(3));
        let again = b.transmits();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].msg.message_id, mid, "same message ID");
        assert_eq!(again[0].id, Some(id));
        // 1 + MAX_RETRANSMIT transmissions, then the request has ended.
        b.sent(again, true);
        for _ in 0..10 {
            b.advance(Duration::from_secs(60));
            let outs = b.transmits();
            b.sent(outs, true);
        }
        assert!(matches!(
            b.core.take_outcome(id),
            Some(Err(Ended::GaveUp(None)))
        ));
    }

    /// A retransmission is printed and recorded as one, with the timeout
    /// that expired before it: it used to be a second `-> Read` line like
    /// the first, as if the command had been typed twice.
    #[test]
    fn a_retransmission_says_it_is_one() {
        let mut b = Bench::new();
        b.read("/3/0/0");
        let first = b.transmits();
        b.sent(first, true);
        b.advance(Duration::from_secs(4));
        let again = b.transmits();
        b.sent(again, true);
        let sent: Vec<String> = b
            .core
            .session
            .history()
            .filter(|r| r.direction == Direction::Sent)
            .map(|r| r.line())
            .collect();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0], "-> Read /3/0/0", "{sent:?}");
        assert!(
            sent[1].starts_with("-> Read /3/0/0 (retransmission 1 of at most 4: no ACK within ")
                && sent[1].ends_with(" s)"),
            "{sent:?}"
        );
    }

    /// The note on the newest received record.
    fn last_note(b: &Bench) -> String {
        let r = b
            .core
            .session
            .history()
            .rev()
            .find(|r| r.direction == Direction::Received)
            .unwrap();
        assert_eq!(r.role, Role::Stray, "{}", r.line());
        r.note.clone().unwrap_or_default()
    }

    /// A GET of `path`, sent and answered by the device's piggybacked
    /// Content `at` later; returns the request as sent.
    fn read_answered(b: &mut Bench, path: &str, after: Duration) -> Message {
        b.read(path);
        let outs = b.transmits();
        let req = outs[0].msg.clone();
        b.sent(outs, true);
        b.advance(after);
        b.receive(&content(&req, Type::Acknowledgement, req.message_id, b"x"));
        req
    }

    /// wakatiwai (PEERS.md) sends, after many a piggybacked 2.05, an ACK
    /// 5.00 with the same message ID and no token: the device's error, and
    /// the line says which request it answered twice.
    #[test]
    fn a_second_answer_to_a_request_sent_once_is_named_a_protocol_error() {
        let mut b = Bench::new();
        let req = read_answered(&mut b, "/3/0/0", Duration::from_millis(5));
        b.advance(Duration::from_millis(40));
        let mut second = Message::new(
            Type::Acknowledgement,
            Code::INTERNAL_SERVER_ERROR,
            req.message_id,
        );
        second.token.clear();
        b.receive(&second);
        assert_eq!(
            last_note(&b),
            format!(
                "protocol error: a second answer to `Read /3/0/0` (message ID {}), which 2.05 (RES_CONTENT) answered 40 ms before; nsh sent it once, so one answer was due (RFC 7252 §4.2)",
                req.message_id
            )
        );
    }

    /// After a retransmission the device acknowledges each copy (RFC 7252
    /// §4.5): the second answer is the device's right.
    #[test]
    fn an_answer_to_a_retransmission_is_not_an_error() {
        let mut b = Bench::new();
        b.read("/3/0/0");
        let first = b.transmits();
        let req = first[0].msg.clone();
        b.sent(first, true);
        b.advance(Duration::from_secs(3));
        let again = b.transmits();
        assert_eq!(again.len(), 1, "retransmitted");
        b.sent(again, true);
        b.receive(&content(&req, Type::Acknowledgement, req.message_id, b"x"));
        b.advance(Duration::from_millis(2));
        b.receive(&content(&req, Type::Acknowledgement, req.message_id, b"x"));
        assert_eq!(
            last_note(&b),
            format!(
                "an answer to a retransmission of `Read /3/0/0` (message ID {}), which 2.05 (RES_CONTENT) answered 2 ms before",
                req.message_id
            )
        );
    }

    /// A piggybacked response with the request's message ID but another
    /// token does not answer it (RFC 7252 §5.3.2): the request waits on,
    /// and the line says why this one was not taken.
    #[test]
    fn an_ack_with_the_message_id_but_not_the_token_says_so() {
        let mut b = Bench::new();
        let id = b.read("/3/0/0");
        let outs = b.transmits();
        let req = outs[0].msg.clone();
        b.sent(outs, true);
        let mut wrong = content(&req, Type::Acknowledgement, req.message_id, b"x");
        wrong.token = vec![0xde, 0xad];
        b.receive(&wrong);
        assert_eq!(
            last_note(&b),
            format!(
                "protocol error: message ID {} is that of `Read /3/0/0`, whose token is {}, not \\xde\\xad; a piggybacked response carries its request's token (RFC 7252 §5.3.2)",
                req.message_id,
                crate::coap::escaped::format_hex(&req.token)
            )
        );
        // The request waits on and is retransmitted: wakatiwai follows its
        // 2.05 with such an ACK 5.00, which arrives first when the 2.05 is
        // lost. Given up, the request's error names the answers it had.
        assert!(b.core.exchanges.is_pending(id), "still waiting");
        for _ in 0..10 {
            b.advance(Duration::from_secs(60));
            let outs = b.transmits();
            b.sent(outs, true);
        }
        match b.core.take_outcome(id) {
            Some(Err(Ended::GaveUp(Some((1, r))))) => {
                assert!(r.line().contains("\\xde\\xad"), "{}", r.line());
            }
            other => panic!("{:?}", other.map(|o| o.map(|r| r.line()))),
        }
    }

    /// A response that comes after nsh stopped waiting says so.
    #[test]
    fn a_response_after_the_request_ended_says_so() {
        let mut b = Bench::new();
        let id = b.read("/3/0/0");
        let outs = b.transmits();
        let req = outs[0].msg.clone();
        b.sent(outs, true);
        b.core.abandon(id);
        b.advance(Duration::from_millis(1500));
        b.receive(&content(&req, Type::Acknowledgement, req.message_id, b"x"));
        assert_eq!(
            last_note(&b),
            "`Read /3/0/0` was no longer waited for (it was sent 1.5 s before)"
        );
        // A separate response, matched by token, likewise.
        b.advance(Duration::from_millis(500));
        b.receive(&content(&req, Type::Confirmable, 999, b"x"));
        assert_eq!(
            last_note(&b),
            "`Read /3/0/0` was no longer waited for (it was sent 2.0 s before)"
        );
    }

    /// A transmission's record carries the time it left the core, not the
    /// time the sending thread got round to recording it: a response
    /// handled meanwhile must not look older than the request it answers.
    /// (Under load in CI, a report put a case's line above the case's own
    /// response: the request's retransmission was recorded, and stamped,
    /// after the response.)
    #[test]
    fn a_request_recorded_late_keeps_the_time_it_left_the_core() {
        let mut b = Bench::new();
        b.read("/3/0/0");
        let left = b.wall;
        let outs = b.transmits();
        let mut ack = Message::new(Type::Acknowledgement, Code::CONTENT, outs[0].msg.message_id);
        ack.token = outs[0].msg.token.clone();
        b.wall += Duration::from_millis(5);
        b.receive(&ack);
        b.wall += Duration::from_millis(5);
        b.sent(outs, true);
        let history: Vec<_> = b.core.session.history().cloned().collect();
        let request = history
            .iter()
            .find(|r| r.direction == Direction::Sent)
            .unwrap();
        let response = history
            .iter()
            .find(|r| r.direction == Direction::Received)
            .unwrap();
        assert!(request.seq < response.seq);
        assert_eq!(request.at, left);
        assert!(request.at < response.at);
    }

    #[test]
    fn a_registration_expires_on_the_wall_clock() {
        let mut b = Bench::new();
        b.receive(&register(60));
        let outs = b.transmits();
        b.sent(outs, true);
        b.advance(Duration::from_secs(59));
        assert_eq!(b.core.registry.len(), 1);
        b.advance(Duration::from_secs(2));
        assert!(b.core.registry.is_empty());
        let printed: Vec<String> = b
            .core
            .take_effects(b.wall)
            .into_iter()
            .filter_map(|e| match e {
                Effect::Print(l) => Some(l),
                _ => None,
            })
            .collect();
        assert!(printed.iter().any(|l| l.contains("expired")), "{printed:?}");
    }
}

mod current_client {
    use super::*;
    use crate::server::core::{Core, Effect};
    use std::time::SystemTime;

    fn at(port: u16) -> SocketAddr {
        ([127, 0, 0, 1], port).into()
    }

    /// The core, with `ep` registered from `at(port)` for each pair, in
    /// order; returns it and each Register's location.
    fn registered(clients: &[(&str, u16)]) -> (Core, Vec<String>) {
        let mut core = Core::new(crate::exchange::Exchanges::new(
            TransmissionParams::default(),
            7,
        ));
        let (t, _net) = memory::pair(([127, 0, 0, 1], 5683).into());
        core.transport = Some(Arc::new(Transport::Memory(t)));
        let mut locations = Vec::new();
        for (i, (ep, port)) in clients.iter().enumerate() {
            let mut m = Message::new(Type::Confirmable, Code::POST, i as u16 + 1);
            m.token = vec![i as u8 + 1];
            m.set_uri(&format!("/rd?ep={ep}&lt=300"));
            m.payload = b"</3/0>".to_vec();
            core.on_datagram(
                at(*port),
                udp::encode(&m),
                Instant::now(),
                SystemTime::now(),
            );
            locations.push(core.registry.by_endpoint(ep).unwrap().location.clone());
        }
        (core, locations)
    }

    fn deregister(core: &mut Core, port: u16, location: &str) {
        let mut m = Message::new(Type::Confirmable, Code::DELETE, 100 + port);
        m.token = vec![9];
        m.set_uri(location);
        core.on_datagram(at(port), udp::encode(&m), Instant::now(), SystemTime::now());
    }

    fn printed(core: &mut Core) -> Vec<String> {
        core.take_effects(SystemTime::now())
            .into_iter()
            .filter_map(|e| match e {
                Effect::Print(l) => Some(l),
                _ => None,
            })
            .collect()
    }

    /// The current client de-registers: commands go to the newest client
    /// still registered, or nowhere, and a line says which.
    #[test]
    fn when_the_current_client_leaves_the_newest_other_becomes_current() {
        let (mut core, locations) = registered(&[("first", 41001), ("second", 41002)]);
        assert_eq!(core.current.as_deref(), Some("second"));
        printed(&mut core);
        deregister(&mut core, 41002, &locations[1]);
        assert_eq!(core.current.as_deref(), Some("first"));
        assert_eq!(core.target, Some(at(41001)));
        let lines = printed(&mut core);
        assert!(
            lines
                .iter()
                .any(|l| l == "second de-registered: commands now go to first (127.0.0.1:41001)"),
            "{lines:?}"
        );
        deregister(&mut core, 41001, &locations[0]);
        assert_eq!((core.current.as_deref(), core.target), (None, None));
        let lines = printed(&mut core);
        assert!(
            lines
                .iter()
                .any(|l| l == "first de-registered: no client is registered now"),
            "{lines:?}"
        );
    }

    /// `unconnect` gives the target back to the newest registration at
    /// once, not only to the next one.
    #[test]
    fn unconnect_makes_the_newest_registration_current_at_once() {
        let (mut core, _) = registered(&[("first", 41011), ("second", 41012)]);
        core.choose(Some(at(41011)), Some("first".into()));
        core.unconnect();
        assert_eq!(core.current.as_deref(), Some("second"));
        assert_eq!(core.target, Some(at(41012)));
    }
}

/// A client that registers between `listen` binding and its wait for the
/// first client still ends the wait: the mark is taken before the socket
/// opens (it used to be taken after, and such a wait never ended).
#[test]
fn a_client_that_talks_before_the_wait_begins_ends_it() {
    let server = Server::new();
    server.set_printer(Arc::new(|_: &str| {}));
    let mark = server.history_mark();
    let (t, net) = memory::pair(([127, 0, 0, 1], 5683).into());
    server.attach(Transport::Memory(t)).unwrap();
    let probe = Net {
        server: server.clone(),
        net,
        lines: Arc::default(),
    };
    probe.register();
    let waiting = probe.command(move |s| s.wait_first_client_since(mark));
    let first = waiting.join().unwrap().expect("the Register ends the wait");
    assert_eq!(first.kind, Some(crate::lwm2m::kind::Kind::Register));
}

/// A capture sink keeping what it was given, or failing every write.
struct Collect {
    seen: Arc<Mutex<Vec<(Direction, String, Wire)>>>,
    fail: bool,
}

impl CaptureSink for Collect {
    fn write(&mut self, record: &Record, wire: &Wire) -> std::io::Result<()> {
        if self.fail {
            return Err(std::io::Error::other("disk full"));
        }
        self.seen
            .lock()
            .unwrap()
            .push((record.direction, record.summary(), *wire));
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_capture_gets_every_datagram_in_order_with_its_wire() {
    let net = Net::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    net.server
        .capture_with(Box::new(Collect {
            seen: seen.clone(),
            fail: false,
        }))
        .unwrap();
    assert!(net.server.capturing());
    net.register();
    assert!(net.server.capture_stop().unwrap());
    assert!(!net.server.capturing());
    let seen = seen.lock().unwrap();
    let wire = Wire {
        local: ([127, 0, 0, 1], 5683).into(),
        link: Link::Udp,
    };
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!((seen[0].0, seen[0].2), (Direction::Received, wire));
    assert!(seen[0].1.starts_with("Register"), "{seen:?}");
    assert_eq!((seen[1].0, seen[1].2), (Direction::Sent, wire));
    assert!(seen[1].1.starts_with("Created"), "{seen:?}");
}

#[test]
fn a_capture_that_cannot_write_stops_with_one_line() {
    let net = Net::new();
    net.server
        .capture_with(Box::new(Collect {
            seen: Arc::default(),
            fail: true,
        }))
        .unwrap();
    net.register();
    assert!(net.printed("capture stopped: cannot write: disk full"));
    assert!(!net.server.capturing());
    assert!(!net.server.capture_stop().unwrap());
    let lines = net.lines.lock().unwrap();
    let stops = lines
        .iter()
        .filter(|l| l.contains("capture stopped"))
        .count();
    assert_eq!(stops, 1, "{lines:?}");
}

/// A server with `endpoints` registered, from 127.0.0.1 ports 10000 and up.
fn with_clients<S: ToString>(endpoints: impl IntoIterator<Item = S>) -> Server {
    let server = Server::new();
    {
        let mut core = server.lock();
        for (i, ep) in endpoints.into_iter().enumerate() {
            core.registry.register(
                SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16)),
                ep.to_string(),
                Default::default(),
            );
        }
    }
    server
}

#[test]
fn an_unknown_client_name_with_none_registered_says_so() {
    let server = Server::new();
    assert_eq!(
        server.use_client("nobody").unwrap_err().to_string(),
        "no client with endpoint name `nobody` (no client is registered)"
    );
}

#[test]
fn a_mistyped_client_name_gets_a_suggestion() {
    let server = with_clients(["alpha", "beta"]);
    assert_eq!(
        server.use_client("alph").unwrap_err().to_string(),
        "no client with endpoint name `alph`, did you mean `alpha`? (registered: alpha, beta)"
    );
    assert_eq!(
        server.use_client("gamma").unwrap_err().to_string(),
        "no client with endpoint name `gamma` (registered: alpha, beta)"
    );
}

#[test]
fn an_unknown_client_name_among_thousands_names_a_few() {
    let server = with_clients((0..5000).map(|i| format!("ep-{i}")));
    assert_eq!(
        server.use_client("ep-4321").unwrap().endpoint,
        "ep-4321".into()
    );
    let e = server.use_client("nobody").unwrap_err().to_string();
    assert!(
        e.starts_with("no client with endpoint name `nobody` (registered: ep-0, ep-1,"),
        "{e}"
    );
    assert!(e.ends_with(", ep-9 and 4,990 more)"), "{e}");
    // Per-client fault injection (`set loss=… client=…`) names them alike.
    assert_eq!(
        server.client_peer("ep-4321").unwrap(),
        SocketAddr::from(([127, 0, 0, 1], 14_321))
    );
    assert_eq!(
        server.client_peer("nobody").unwrap_err().to_string(),
        e,
        "client_peer"
    );
}

/// Where commands go when devices register: the newest registration,
/// unless the user chose (`connect`, `use_client`).
mod target {
    use super::*;

    fn other() -> SocketAddr {
        ([127, 0, 0, 1], 40001).into()
    }

    /// A CON POST to `uri` from `from`; returns the code of the answer,
    /// which must come back to `from`.
    fn post_from(n: &Net, from: SocketAddr, uri: &str, mid: u16, payload: &[u8]) -> Code {
        let mut m = Message::new(Type::Confirmable, Code::POST, mid);
        m.token = vec![mid as u8];
        m.set_uri(uri);
        m.payload = payload.to_vec();
        n.net.send(from, &udp::encode(&m));
        let (bytes, to) = n.net.recv(WAIT).expect("an answer");
        assert_eq!(to, from);
        udp::decode(&bytes).unwrap().code
    }

    /// A Register of `ep` from `from`; waits for its Created.
    fn register_from(n: &Net, from: SocketAddr, ep: &str, mid: u16) {
        let uri = format!("/rd?ep={ep}&lt=300");
        assert_eq!(post_from(n, from, &uri, mid, b"</3/0>"), Code::CREATED);
    }

    #[test]
    fn the_newest_registration_is_current_when_nothing_was_chosen() {
        let n = Net::new();
        register_from(&n, device(), "dev", 1);
        assert_eq!(n.server.target(), Some(device()));
        register_from(&n, other(), "dev2", 2);
        assert_eq!(n.server.target(), Some(other()));
        assert_eq!(n.server.current_client().as_deref(), Some("dev2"));
    }

    #[test]
    fn a_register_from_another_device_does_not_move_a_connected_target() {
        let n = Net::new();
        n.server.connect("127.0.0.1", 40000, 0).unwrap();
        register_from(&n, other(), "intruder", 1);
        assert_eq!(n.server.target(), Some(device()));
        assert_eq!(n.server.current_client(), None);
        assert!(n.printed(
            "intruder (127.0.0.1:40001) would be the current client, but commands still go to \
             127.0.0.1:40000 as chosen; `use_client(\"intruder\")` or `unconnect` changes that (said once)"
        ));
        // The connected device itself registering names the current client.
        register_from(&n, device(), "dev", 2);
        assert_eq!(n.server.target(), Some(device()));
        assert_eq!(n.server.current_client().as_deref(), Some("dev"));
    }

    #[test]
    fn a_client_chosen_by_use_client_stays_current_and_is_followed() {
        let n = Net::new();
        register_from(&n, device(), "dev", 1);
        register_from(&n, other(), "dev2", 2);
        n.server.use_client("dev").unwrap();
        register_from(&n, ([127, 0, 0, 1], 40002).into(), "dev3", 3);
        assert_eq!(n.server.current_client().as_deref(), Some("dev"));
        assert_eq!(n.server.target(), Some(device()));
        assert!(n.printed("commands still go to dev as chosen; `use_client(\"dev3\")`"));
        register_from(&n, ([127, 0, 0, 1], 40003).into(), "dev4", 5);
        assert_eq!(n.server.current_client().as_deref(), Some("dev"));
        let said = |n: &Net| {
            n.lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains("would be the current client"))
                .count()
        };
        assert_eq!(said(&n), 1, "said once per choice");
        // A new choice is told again; an endpoint name with colons (a URN)
        // is still named as a client.
        n.server.use_client("dev").unwrap();
        register_from(&n, ([127, 0, 0, 1], 40004).into(), "urn:imei:5", 6);
        assert!(n.printed("`use_client(\"urn:imei:5\")` or `unconnect`"));
        // `dev` registers again from a new port: commands follow it.
        let moved: SocketAddr = ([127, 0, 0, 1], 40009).into();
        register_from(&n, moved, "dev", 4);
        assert_eq!(n.server.target(), Some(moved));
        assert_eq!(n.server.current_client().as_deref(), Some("dev"));
    }

    #[test]
    fn an_update_from_a_new_address_moves_the_target_with_the_current_client() {
        let n = Net::new();
        register_from(&n, device(), "dev", 1);
        let location = n
            .server
            .lock_raw()
            .registry
            .by_endpoint("dev")
            .unwrap()
            .location
            .clone();
        let moved: SocketAddr = ([127, 0, 0, 1], 40009).into();
        assert_eq!(post_from(&n, moved, &location, 2, b""), Code::CHANGED);
        assert_eq!(n.server.target(), Some(moved));
    }

    #[test]
    fn unconnect_lets_the_newest_registration_be_current_again() {
        let n = Net::new();
        n.server.connect("127.0.0.1", 40000, 0).unwrap();
        n.server.unconnect();
        register_from(&n, other(), "dev2", 1);
        assert_eq!(n.server.target(), Some(other()));
    }

    #[test]
    fn a_new_socket_forgets_the_choice() {
        let n = Net::new();
        n.server.connect("127.0.0.1", 40000, 0).unwrap();
        let (t, net) = memory::pair(([127, 0, 0, 1], 5684).into());
        n.server.attach(Transport::Memory(t)).unwrap();
        let probe = Net {
            server: n.server.clone(),
            net,
            lines: Arc::default(),
        };
        register_from(&probe, other(), "dev2", 1);
        assert_eq!(n.server.target(), Some(other()));
    }
}

/// An Update answered by hand (`set auto_update=0`, then `changed …`)
/// renews the registration as an auto-answered one does: it used to
/// expire with "no Update within its lifetime" although one had come.
mod update_answered_by_hand {
    use super::*;
    use crate::server::core::Core;
    use std::time::SystemTime;

    #[test]
    fn a_changed_sent_for_an_update_applies_it() {
        let mut core = Core::new(crate::exchange::Exchanges::new(
            TransmissionParams::default(),
            7,
        ));
        let (t, _net) = memory::pair(([127, 0, 0, 1], 5683).into());
        core.transport = Some(Arc::new(Transport::Memory(t)));
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut reg = Message::new(Type::Confirmable, Code::POST, 1);
        reg.token = vec![1];
        reg.set_uri("/rd?ep=by-hand&lt=60");
        reg.payload = b"</3/0>".to_vec();
        core.on_datagram(device(), udp::encode(&reg), now, wall);
        let location = core
            .registry
            .by_endpoint("by-hand")
            .unwrap()
            .location
            .clone();
        core.flags.auto_update = false;
        let mut update = Message::new(Type::Confirmable, Code::POST, 2);
        update.token = vec![2];
        update.set_uri(&format!("{location}?lt=999"));
        core.on_datagram(device(), udp::encode(&update), now, wall);
        let lifetime = |core: &Core| {
            core.registry
                .by_endpoint("by-hand")
                .unwrap()
                .registration
                .lifetime
        };
        assert_eq!(lifetime(&core), Some(60), "not applied unanswered");
        // Another 2.04 (not for the Update) changes nothing.
        let mut other = Message::new(Type::Acknowledgement, Code::CHANGED, 77);
        other.token = vec![7];
        core.submit(device(), other, false, false, false, now)
            .unwrap();
        assert_eq!(lifetime(&core), Some(60));
        let mut changed = Message::new(Type::Acknowledgement, Code::CHANGED, 2);
        changed.token = vec![2];
        core.submit(device(), changed, false, false, false, now)
            .unwrap();
        assert_eq!(lifetime(&core), Some(999));
    }
}
