//! Reliable messages (CoAP over TCP, RFC 8323): no retransmission, no
//! ACK, no duplicate detection, matching by token only.

use super::*;

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
