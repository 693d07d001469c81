//! Duplicate detection (RFC 7252 §4.5): cached replies, per-peer message
//! IDs, EXCHANGE_LIFETIME and NON_LIFETIME, pruning.

use super::*;

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
