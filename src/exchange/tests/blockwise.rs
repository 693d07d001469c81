//! Block-wise transfers (RFC 7959): the next Block2 request of a response
//! or a notification, on a new token.

use super::*;

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
        .send_next_block2(CLIENT, id, &req, &resp, false, p.clock.now())
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
            .send_next_block2(CLIENT, next, &sent, &last, false, p.clock.now()),
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
        .send_next_notification_block2(oid, &first, false, p.clock.now())
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
        .send_next_block2(CLIENT, second, &original, &resp, false, p.clock.now())
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
            .send_next_notification_block2(oid, &whole, false, p.clock.now()),
        Ok(None)
    );
}
