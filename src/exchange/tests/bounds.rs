//! Bounded memory ([`Limits`], drops counted in [`Dropped`]) and
//! parameters at their extremes.

use super::*;

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
