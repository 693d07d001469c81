//! A command waiting for its response reads the socket itself (the
//! receive thread stands aside): what else arrives meanwhile, or between
//! the commands of a tight script loop, is still handled, answered and
//! recorded in the order it came.

use std::net::UdpSocket;
use std::time::Duration;

use nsh::coap::{Code, Message, Type, udp};

use crate::harness::LiveNsh;

const GETS: usize = 300;

#[test]
fn a_ping_arriving_during_a_loop_of_requests_is_answered_in_its_place() {
    let device = UdpSocket::bind("127.0.0.1:0").unwrap();
    let device_port = device.local_addr().unwrap().port();
    // Where the Register lands in the history: the records after it.
    let script = format!(
        r#"connect("127.0.0.1", {device_port});
for i in 0..{GETS} {{ let r = coap_get("/x"); if r.code != "2.05" {{ fail("got " + r.code); }} }}
let h = history(100000);
let at = h.index_of(|m| m.kind == "Empty");
print("@@after " + if at < 0 {{ -1 }} else {{ h.len() - at }});"#
    );
    let mut nsh = LiveNsh::start(&["-l", "0", "-c", &script]);
    let newcomer = UdpSocket::bind("127.0.0.1:0").unwrap();
    newcomer
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    device
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // A CoAP ping from another peer: answered with a Reset by nsh itself.
    let ping = Message::new(Type::Confirmable, Code::EMPTY, 0x4242);
    let mut buf = [0u8; 1500];
    for i in 0..GETS {
        let Ok((n, from)) = device.recv_from(&mut buf) else {
            let (_, out, err) = nsh.finish(5);
            panic!("GET {i} did not come\n{out}\n{err}");
        };
        let get = udp::decode(&buf[..n]).unwrap();
        let mut content = Message::new(Type::Acknowledgement, Code::CONTENT, get.message_id);
        content.token = get.token;
        content.payload = b"t".to_vec();
        if i == GETS / 3 {
            // Arrives while nsh waits for this GET's response, or just
            // after: either way while the loop runs.
            newcomer
                .send_to(&udp::encode(&ping), ("127.0.0.1", nsh.port))
                .unwrap();
        }
        device.send_to(&udp::encode(&content), from).unwrap();
    }
    let (n, _) = newcomer.recv_from(&mut buf).expect("the ping answered");
    let reset = udp::decode(&buf[..n]).unwrap();
    assert_eq!((reset.mtype, reset.message_id), (Type::Reset, 0x4242));
    let after: usize = nsh
        .wait("@@after", 60)
        .trim_start_matches("@@after ")
        .parse()
        .expect("the ping is in the history");
    // Some 200 GETs and their Contents came after it: it was handled in
    // its place, not when the loop had ended.
    assert!(after > GETS, "the ping is followed by only {after} records");
    let (status, _, err) = nsh.finish(30);
    assert!(status.success(), "{err}");
}
