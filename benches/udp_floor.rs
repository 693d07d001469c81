//! The compiled floor for `benches/libcoap_rtt.py --floor`: the same CON
//! GET /time round trip against the same libcoap server that nsh's
//! `coap_get` loop is measured against, from a bare blocking-socket loop with
//! no shell, no exchange layer and no second thread. Prints its figures in
//! the line format of `benches/libcoap_rtt.rhai`, so the driver treats it as
//! one more binary in its alternating rounds.
//!
//!   cargo bench --bench udp_floor -- PORT [N=2000] [GAP_US=0] [UNCONNECTED=0]
//!
//! GAP_US: the loop first spends that many microseconds of CPU between a
//! response and the next request, outside the measured time, as a script's
//! own work between requests would be. The round trip itself then shows
//! what such a gap costs when the peer and this thread have gone idle
//! meanwhile (`benches/README.md`).
//!
//! UNCONNECTED=1: the socket is bound to `0.0.0.0` and not connected, and
//! each GET is a `sendto` and each answer a `recvfrom`, as on nsh's
//! listening socket (the kernel looks up the route per datagram).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// A CON GET /time with message ID `mid` and a 2-byte token.
fn get(mid: u16) -> Vec<u8> {
    let mut m = vec![0x42, 0x01];
    m.extend_from_slice(&mid.to_be_bytes());
    m.extend_from_slice(&mid.to_be_bytes());
    m.push(0xb4);
    m.extend_from_slice(b"time");
    m
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let Some(&port) = args.first() else {
        eprintln!("usage: udp_floor PORT [N] [GAP_US] [UNCONNECTED]");
        std::process::exit(2);
    };
    let n = args.get(1).copied().unwrap_or(2000) as usize;
    let gap = Duration::from_micros(args.get(2).copied().unwrap_or(0));
    let server = std::net::SocketAddr::from(([127, 0, 0, 1], port as u16));
    let unconnected = args.get(3).is_some_and(|&u| u != 0);
    let sock = UdpSocket::bind(if unconnected {
        "0.0.0.0:0"
    } else {
        "127.0.0.1:0"
    })
    .expect("bind");
    if !unconnected {
        sock.connect(server).expect("connect");
    }
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 1500];
    let mut times = Vec::with_capacity(n);
    // One unmeasured warm-up GET, as nsh's `connect` does its own set-up
    // before the loop.
    for i in 0..=n {
        let busy = Instant::now();
        while busy.elapsed() < gap {
            std::hint::spin_loop();
        }
        let t = Instant::now();
        let got = if unconnected {
            sock.send_to(&get(i as u16), server).expect("send");
            sock.recv_from(&mut buf).expect("an answer").0
        } else {
            sock.send(&get(i as u16)).expect("send");
            sock.recv(&mut buf).expect("an answer")
        };
        assert!(got > 4 && buf[1] == 0x45, "2.05 expected");
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / n as f64;
    println!(
        "gets: {n}, median {} us, mean {} us, p90 {} us",
        times[n / 2] * 1e6,
        mean * 1e6,
        times[n * 9 / 10] * 1e6
    );
}
