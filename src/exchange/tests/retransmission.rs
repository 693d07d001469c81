//! CON retransmission (RFC 7252 §4.2, §4.8), answering a retransmitted
//! request once, NSTART (§4.7), and the CON and NON messages we send
//! that are not requests.

use super::*;

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

/// A request the caller transmitted itself (`sent_request`, after
/// `starts_at_once`) is not released again, but retransmitted and matched
/// as one released by `send_request`; NSTART then holds the next CON back.
#[test]
fn a_request_sent_by_the_caller_is_retransmitted_and_holds_nstart() {
    let (mut clock, mut ex) = server_alone(TransmissionParams::default());
    let msg = con_get(&mut ex, "/3/0");
    assert!(ex.starts_at_once(&CLIENT, &msg));
    let id = ex.sent_request(CLIENT, msg.clone(), clock.now());
    assert!(ex.poll_transmission().is_none(), "not released again");
    let next = con_get(&mut ex, "/3/1");
    assert!(!ex.starts_at_once(&CLIENT, &next), "NSTART = 1");
    // Another peer is not held back.
    let mut other = next.clone();
    other.message_id = ex.next_message_id(&OTHER_CLIENT);
    assert!(ex.starts_at_once(&OTHER_CLIENT, &other));
    let deadline = ex.poll_timeout().expect("a retransmission deadline");
    assert!(deadline - clock.now() >= Duration::from_secs(2));
    clock.set(deadline);
    ex.handle_timeout(clock.now());
    let (to, again, of) = ex.poll_transmission().expect("a retransmission");
    assert_eq!((to, of), (CLIENT, Some(id)));
    assert_eq!(again, msg);
    let mut ack = Message::new(Type::Acknowledgement, Code::CONTENT, msg.message_id);
    ack.token = msg.token.clone();
    assert!(matches!(
        ex.handle_incoming(&CLIENT, &ack, clock.now()),
        Incoming::Response { id: got, .. } if got == id
    ));
    assert!(ex.starts_at_once(&CLIENT, &next));
}
