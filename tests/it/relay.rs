//! A UDP relay between one client and a server, for tests where the
//! client's address has to change in the middle of a session (DTLS
//! Connection ID): the client talks to `127.0.0.1:relay.port()`, the relay
//! forwards each datagram to the target from its own upstream socket and
//! each reply from the target back to the client. `rebind()` swaps the
//! upstream socket for a new one, so the server sees the same client arrive
//! from a new source port, as after a NAT rebinding. `start_lossy` also
//! drops a share of the datagrams each way, drawn from a seeded PRNG.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How often the relay's threads look at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// Large enough for any UDP datagram.
const MAX_DATAGRAM: usize = 65_535;

pub struct Relay {
    port: u16,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    target: SocketAddr,
    /// The socket datagrams to the target leave from; replaced by `rebind`.
    upstream: Mutex<Arc<UdpSocket>>,
    /// The client's address: the source of the last datagram it sent.
    client: Mutex<Option<SocketAddr>>,
    stop: AtomicBool,
    /// Probability that a datagram is dropped, each way.
    loss: Mutex<f64>,
    /// The draws of each way: to the target, to the client.
    rng_up: Mutex<StdRng>,
    rng_down: Mutex<StdRng>,
    /// Datagrams dropped so far.
    dropped: AtomicU64,
}

impl Shared {
    /// Whether the next datagram of one way is dropped.
    fn drops(&self, rng: &Mutex<StdRng>) -> bool {
        let loss = *self.loss.lock().unwrap();
        let lost = loss > 0.0 && rng.lock().unwrap().random::<f64>() < loss;
        if lost {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        lost
    }
}

/// A socket on an ephemeral loopback port whose reads time out after
/// `POLL`, so that the threads notice `stop`.
fn bind_loopback() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a relay socket");
    socket
        .set_read_timeout(Some(POLL))
        .expect("set the relay socket's read timeout");
    socket
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

impl Relay {
    /// Listens on 127.0.0.1 on a free port and relays to `target`.
    pub fn start(target: SocketAddr) -> Relay {
        Relay::start_lossy(target, 0.0, 0)
    }

    /// Like [`Relay::start`], dropping each datagram with probability
    /// `loss` each way; the draws repeat with `seed`.
    pub fn start_lossy(target: SocketAddr, loss: f64, seed: u64) -> Relay {
        let downstream = Arc::new(bind_loopback());
        let port = downstream.local_addr().expect("relay address").port();
        let shared = Arc::new(Shared {
            target,
            upstream: Mutex::new(Arc::new(bind_loopback())),
            client: Mutex::new(None),
            stop: AtomicBool::new(false),
            loss: Mutex::new(loss),
            rng_up: Mutex::new(StdRng::seed_from_u64(seed)),
            rng_down: Mutex::new(StdRng::seed_from_u64(seed.wrapping_add(1))),
            dropped: AtomicU64::new(0),
        });

        // Client -> target, through the current upstream socket.
        let to_target = {
            let shared = Arc::clone(&shared);
            let downstream = Arc::clone(&downstream);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                while !shared.stop.load(Ordering::Relaxed) {
                    match downstream.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            *shared.client.lock().unwrap() = Some(from);
                            if shared.drops(&shared.rng_up) {
                                continue;
                            }
                            let upstream = Arc::clone(&shared.upstream.lock().unwrap());
                            // A target that is not there yet (ICMP port
                            // unreachable) is not the relay's error.
                            let _ = upstream.send_to(&buf[..n], shared.target);
                        }
                        Err(e) if is_timeout(&e) => {}
                        // ECONNREFUSED from an earlier send to the client.
                        Err(_) => {}
                    }
                }
            })
        };

        // Target -> client, from whichever upstream socket is current: a
        // reply that reaches a socket already replaced is lost, as it would
        // be behind a NAT that forgot the old mapping.
        let to_client = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                while !shared.stop.load(Ordering::Relaxed) {
                    let upstream = Arc::clone(&shared.upstream.lock().unwrap());
                    match upstream.recv_from(&mut buf) {
                        Ok((n, from)) if from == shared.target => {
                            if shared.drops(&shared.rng_down) {
                                continue;
                            }
                            let client = *shared.client.lock().unwrap();
                            if let Some(client) = client {
                                let _ = downstream.send_to(&buf[..n], client);
                            }
                        }
                        Ok(_) => {} // not from the target: dropped
                        Err(e) if is_timeout(&e) => {}
                        Err(_) => {}
                    }
                }
            })
        };

        Relay {
            port,
            shared,
            threads: vec![to_target, to_client],
        }
    }

    /// The port the client sends to, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Drops each datagram with probability `loss` from now on.
    pub fn set_loss(&self, loss: f64) {
        *self.shared.loss.lock().unwrap() = loss;
    }

    /// Datagrams dropped so far, both ways.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The source port the target currently sees datagrams come from.
    pub fn upstream_port(&self) -> u16 {
        self.shared
            .upstream
            .lock()
            .unwrap()
            .local_addr()
            .expect("upstream address")
            .port()
    }

    /// Sends everything from now on from a new upstream socket (a new
    /// source port) and returns that port. The old socket is closed once
    /// the reply thread's current wait on it ends (within `POLL`).
    pub fn rebind(&self) -> u16 {
        let fresh = Arc::new(bind_loopback());
        let port = fresh.local_addr().expect("upstream address").port();
        *self.shared.upstream.lock().unwrap() = fresh;
        port
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[test]
fn relay_forwards_both_ways_and_rebinds_to_a_new_source_port() {
    // An echo server that answers "PAYLOAD@SOURCE_PORT".
    let echo = UdpSocket::bind("127.0.0.1:0").expect("bind the echo server");
    let target = echo.local_addr().unwrap();
    let echo_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        // Two datagrams, then the test is over.
        for _ in 0..2 {
            let (n, from) = echo.recv_from(&mut buf).expect("echo receive");
            let reply = format!("{}@{}", String::from_utf8_lossy(&buf[..n]), from.port());
            echo.send_to(reply.as_bytes(), from).expect("echo reply");
        }
    });

    let relay = Relay::start(target);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let relay_addr: SocketAddr = ([127, 0, 0, 1], relay.port()).into();
    let mut buf = [0u8; 1500];
    let mut exchange = |payload: &str| -> (String, SocketAddr) {
        client.send_to(payload.as_bytes(), relay_addr).unwrap();
        let (n, from) = client
            .recv_from(&mut buf)
            .expect("a reply through the relay");
        (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
    };

    let first_port = relay.upstream_port();
    let (reply, from) = exchange("one");
    assert_eq!(reply, format!("one@{first_port}"));
    assert_eq!(from, relay_addr, "replies come from the relay's port");

    let second_port = relay.rebind();
    assert_ne!(second_port, first_port);
    assert_eq!(relay.upstream_port(), second_port);
    let (reply, from) = exchange("two");
    assert_eq!(reply, format!("two@{second_port}"));
    assert_eq!(from, relay_addr);

    echo_thread.join().unwrap();
    drop(relay);
}
