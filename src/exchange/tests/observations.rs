//! The observation registry (RFC 7641): establishing, routing and ordering
//! notifications, ending, replacing, and deregistering (§3.6) while
//! notifications are still in flight.

use super::*;

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
    req.token = p.server.new_token(&CLIENT);
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
