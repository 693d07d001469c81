//! Matching responses to requests (RFC 7252 §5.3.2): by peer, token and,
//! for a piggybacked ACK, message ID; separate responses; stray and
//! related answers; RST and CoAP ping (§4.3).

use super::*;

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
