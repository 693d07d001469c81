//! `clients` at the prompt with many registered clients: a bounded number
//! of lines and a summary of the rest, while `clients()` returns them all.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use nsh::coap::{CoapOption, Code, Message, OptionNumber, Type, udp};

use crate::harness::{LiveNsh, port_on};

const CLIENTS: usize = 120;

fn register(i: usize) -> Vec<u8> {
    let mut m = Message::new(Type::Confirmable, Code::POST, i as u16 + 1);
    m.token = (i as u32).to_be_bytes().to_vec();
    m.set_uri(&format!("/rd?ep=many-{i:03}&lt=600&lwm2m=1.1&b=U"));
    m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 40));
    m.payload = b"</1/0>,</3/0>".to_vec();
    udp::encode(&m)
}

/// Registers `CLIENTS` clients, each from its own socket, and waits until
/// every one has its 2.01 Created.
fn register_all(port: u16) -> Vec<UdpSocket> {
    let sockets: Vec<UdpSocket> = (0..CLIENTS)
        .map(|i| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            s.send_to(&register(i), ("127.0.0.1", port)).unwrap();
            s
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 1500];
    for (i, s) in sockets.iter().enumerate() {
        loop {
            assert!(Instant::now() < deadline, "client {i} got no 2.01");
            match s.recv_from(&mut buf) {
                Ok((n, _)) => {
                    let m = udp::decode(&buf[..n]).unwrap();
                    if m.code == Code::CREATED {
                        break;
                    }
                }
                // Lost on a loaded machine: the client retransmits.
                Err(_) => {
                    s.send_to(&register(i), ("127.0.0.1", port)).unwrap();
                }
            }
        }
    }
    sockets
}

/// Types `line`, then a marker, and returns the lines printed in between.
fn lines_of(nsh: &mut LiveNsh, line: &str, marker: &str) -> Vec<String> {
    let from = nsh.seen().len();
    nsh.send_line(line);
    nsh.send_line(&format!("print(\"{marker}\")"));
    nsh.wait_line(|l| l == marker, 30);
    let seen = &nsh.seen()[from..];
    seen.lines()
        .take_while(|l| *l != marker)
        .map(str::to_string)
        .collect()
}

/// A line of the `clients` list (not a `<-` line of a registration).
fn is_client_line(l: &str) -> bool {
    l.contains(" many-") && l.contains(" lt=")
}

fn client_lines(lines: &[String]) -> usize {
    lines.iter().filter(|l| is_client_line(l)).count()
}

#[test]
fn clients_at_the_prompt_prints_fifty_lines_and_counts_the_rest() {
    let mut nsh = LiveNsh::piped(&["-l", "0"]);
    let line = nsh.wait_line(|l| port_on(l).is_some(), 10);
    let port = port_on(&line).unwrap();
    let _sockets = register_all(port);
    // Every registration has been answered; its `<-` lines may still come.
    let lines = lines_of(&mut nsh, "print(\"@@n \" + clients().len())", "@@count");
    assert!(
        lines.iter().any(|l| l == &format!("@@n {CLIENTS}")),
        "{lines:?}"
    );

    let lines = lines_of(&mut nsh, "clients", "@@default");
    let shown: Vec<&String> = lines.iter().filter(|l| is_client_line(l)).collect();
    assert_eq!(shown.len(), 50, "{lines:#?}");
    // Oldest first, as registered.
    assert!(shown[0].contains(" many-000 "), "{}", shown[0]);
    assert!(shown[49].contains(" many-049 "), "{}", shown[49]);
    let summary = lines.iter().find(|l| l.starts_with("… and ")).unwrap();
    assert!(
        summary.starts_with(&format!("… and {} more clients", CLIENTS - 50)),
        "{summary}"
    );
    assert!(summary.contains("clients 0"), "{summary}");

    let lines = lines_of(&mut nsh, "clients 100", "@@hundred");
    assert_eq!(client_lines(&lines), 100, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("… and 20 more clients")),
        "{lines:#?}"
    );

    let lines = lines_of(&mut nsh, "clients 0", "@@all");
    assert_eq!(client_lines(&lines), CLIENTS, "{lines:#?}");
    assert!(!lines.iter().any(|l| l.starts_with("… and ")), "{lines:#?}");

    let lines = lines_of(&mut nsh, "clients -1", "@@negative");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("clients") && l.contains("-1")),
        "{lines:#?}"
    );

    // Whatever it prints, the function returns every client.
    let lines = lines_of(&mut nsh, "print(\"@@n \" + clients(3).len())", "@@script");
    assert!(
        lines.iter().any(|l| l == &format!("@@n {CLIENTS}")),
        "{lines:#?}"
    );
    nsh.send_line("exit");
    let (status, _, _) = nsh.finish(10);
    assert!(status.success());
}
