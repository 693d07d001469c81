//! The compiled floor for `benches/dtls_rtt.py`: the same GET /time round
//! trip against the same `coap-server-openssl`, from a bare loop with no
//! shell — over plain UDP (a blocking socket) and over DTLS (an mbed TLS
//! client context, PSK, TLS_PSK_WITH_AES_128_CCM_8, the build nsh uses).
//! What DTLS costs here is what it costs any client of that server; nsh's
//! own share is the difference between the two ratios.
//!
//!   cargo bench --bench dtls_floor -- [N=3000] [ROUNDS=6]
//!
//! Starts `coap-server-openssl -A 127.0.0.1 -p P -k password` itself (plain
//! on P, DTLS on P+1); needs libcoap's tools (`bash tests/setup.sh`).

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mbedtls::rng::{CtrDrbg, OsEntropy};
use mbedtls::ssl::config::{Endpoint, Preset, Transport};
use mbedtls::ssl::context::Timer;
use mbedtls::ssl::io::ConnectedUdpSocket;
use mbedtls::ssl::{Config, Context, Io};

/// A CON GET /time with message ID `mid` and a 2-byte token.
fn get(mid: u16) -> Vec<u8> {
    let mut m = vec![0x42, 0x01];
    m.extend_from_slice(&mid.to_be_bytes());
    m.extend_from_slice(&mid.to_be_bytes());
    m.push(0xb4);
    m.extend_from_slice(b"time");
    m
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn udp_round(port: u16, n: usize) -> f64 {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1500];
    let mut times = Vec::with_capacity(n);
    for i in 0..=n {
        let t = Instant::now();
        sock.send(&get(i as u16)).expect("send");
        let got = sock.recv(&mut buf).expect("an answer over UDP");
        assert!(got > 4 && buf[1] == 0x45, "2.05 expected");
        if i > 0 {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    median(times)
}

fn dtls_round(port: u16, n: usize) -> f64 {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let sock = ConnectedUdpSocket::connect(sock, ("127.0.0.1", port))
        .map_err(|(e, _)| e)
        .expect("connect");
    let rng = CtrDrbg::new(Arc::new(OsEntropy::new()), None).expect("rng");
    let mut config = Config::new(Endpoint::Client, Transport::Datagram, Preset::Default);
    config.set_rng(Arc::new(rng));
    config.set_psk(b"password", "user").expect("psk");
    config.set_ciphersuites(Arc::new(vec![0xC0A8, 0]));
    let mut ctx = Context::new(Arc::new(config));
    ctx.set_timer_callback(Box::new(Timer::new()));
    ctx.establish(sock, None).expect("DTLS handshake");
    let mut buf = [0u8; 1500];
    let mut times = Vec::with_capacity(n);
    for i in 0..=n {
        let t = Instant::now();
        Io::send(&mut ctx, &get(i as u16)).expect("send");
        let got = Io::recv(&mut ctx, &mut buf).expect("an answer over DTLS");
        assert!(got > 4 && buf[1] == 0x45, "2.05 expected");
        if i > 0 {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    median(times)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(3000);
    let rounds = args.get(1).copied().unwrap_or(6);
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let mut server = Command::new("coap-server-openssl")
        .args(["-A", "127.0.0.1", "-p", &port.to_string(), "-k", "password"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("coap-server-openssl (bash tests/setup.sh)");
    std::thread::sleep(Duration::from_millis(300));
    let mut ratios = Vec::new();
    let (mut udps, mut dtlss) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let (u, d) = if r % 2 == 0 {
            let u = udp_round(port, n);
            (u, dtls_round(port + 1, n))
        } else {
            let d = dtls_round(port + 1, n);
            (udp_round(port, n), d)
        };
        println!(
            "round {}: udp median {u:.1} us, dtls median {d:.1} us, ratio {:.3}",
            r + 1,
            d / u
        );
        udps.push(u);
        dtlss.push(d);
        ratios.push(d / u);
    }
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "floor: udp {:.1} us, dtls {:.1} us, dtls/udp {:.3} (median of per-round ratios {:.3}; {rounds} rounds of {n} GETs)",
        median(udps.clone()),
        median(dtlss.clone()),
        median(dtlss) / median(udps),
        median(ratios)
    );
}
