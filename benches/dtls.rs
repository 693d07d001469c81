//! DTLS server costs of one nsh socket (`DtlsTransport`):
//!
//!   cargo bench --bench dtls -- [HANDSHAKES] [CLIENT_THREADS] [SESSIONS]
//!
//! (defaults 400, 2, 1000). A `DtlsTransport` bound on 127.0.0.1:0 is read
//! by one receiver thread, as in nsh. Clients are mbed TLS contexts (the
//! `mbedtls` crate).
//!
//! 1. Full handshakes per second: HANDSHAKES fresh handshakes (new socket,
//!    cookie exchange, then close_notify) from CLIENT_THREADS threads,
//!    TLS_PSK_WITH_AES_128_CCM_8 and TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8
//!    (tests/fixtures/certs/server.crt, the client does not verify it).
//!    Printed: the wall-clock rate with the clients in this process (they
//!    share the CPUs), and the receiver thread's own CPU time per handshake,
//!    whose inverse is what one nsh socket can do with a core to itself.
//! 2. Memory per idle session: a child process (this executable again)
//!    establishes SESSIONS sessions and exits without close_notify, so the
//!    server keeps them and this process's RSS holds the server side only.
//!    Once with sessions that only did the handshake (mbed TLS keeps the
//!    last flight until the peer's first record), once with sessions that
//!    sent one application record afterwards (a registered client).
//! 3. Abandoned handshakes: SESSIONS ClientHellos from as many source
//!    ports, never followed up. Each gets a HelloVerifyRequest; the server
//!    must keep no state (session_count() stays (0, 0)) and RSS flat.
//!
//! Results are plain lines; nothing is asserted except that the sessions
//! come up.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mbedtls::rng::{CtrDrbg, OsEntropy};
use mbedtls::ssl::config::{AuthMode, Endpoint, Preset, Transport as TransportKind};
use mbedtls::ssl::context::Timer;
use mbedtls::ssl::io::ConnectedUdpSocket;
use mbedtls::ssl::{Config, Context, Io};
use nsh::transport::dtls::{
    CertificateFiles, Credentials, DtlsTransport, OwnCertificate, Psk, Security,
};

const PSK_CCM_8: u16 = 0xC0A8;
const ECDHE_ECDSA_CCM_8: u16 = 0xC0AE;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Psk,
    Ecdsa,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Psk => "TLS_PSK_WITH_AES_128_CCM_8",
            Kind::Ecdsa => "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
        }
    }

    fn security(self) -> Security {
        match self {
            Kind::Psk => Security::psk(Psk {
                identity: "user".into(),
                key: b"password".to_vec(),
            }),
            Kind::Ecdsa => {
                let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/certs");
                Security::with(Credentials::Certificate(CertificateFiles {
                    own: Some(OwnCertificate {
                        crt_file: dir.join("server.crt"),
                        key_file: dir.join("server.key"),
                    }),
                    ca: None,
                }))
            }
        }
    }
}

/// The server under test and its receiver thread.
struct Server {
    transport: Arc<DtlsTransport>,
    stop: Arc<AtomicBool>,
    /// The receiver thread's CPU time (ns), updated every loop.
    cpu_ns: Arc<AtomicU64>,
    /// Application records received.
    records: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Server {
    fn start(kind: Kind) -> Server {
        let transport = Arc::new(DtlsTransport::bind(0, false, &kind.security()).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let records = Arc::new(AtomicUsize::new(0));
        let (t, s, c, r) = (
            transport.clone(),
            stop.clone(),
            cpu_ns.clone(),
            records.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if let Ok(Some(_)) = t.recv(&mut buf, Duration::from_millis(20)) {
                    r.fetch_add(1, Ordering::Relaxed);
                }
                // As the shell does: notices are taken, not left to pile up.
                t.take_notices();
                t.take_ended();
                c.store(thread_cpu_ns(), Ordering::Relaxed);
            }
        });
        Server {
            transport,
            stop,
            cpu_ns,
            records,
            thread: Some(thread),
        }
    }

    fn port(&self) -> u16 {
        self.transport.local_addr().unwrap().port()
    }

    /// The receiver thread's CPU time once it has caught up.
    fn cpu(&self) -> Duration {
        std::thread::sleep(Duration::from_millis(50));
        Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed))
    }

    /// Waits until no session is left (or 10 s).
    fn settle(&self) {
        let until = Instant::now() + Duration::from_secs(10);
        while self.transport.session_count() != (0, 0) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `established` sessions are up (or 10 s).
    fn wait_for(&self, established: usize) -> (usize, usize) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let count = self.transport.session_count();
            if count.0 >= established || Instant::now() > until {
                return count;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn client_config(kind: Kind) -> Arc<Config> {
    let rng = CtrDrbg::new(Arc::new(OsEntropy::new()), None).unwrap();
    let mut config = Config::new(Endpoint::Client, TransportKind::Datagram, Preset::Default);
    config.set_rng(Arc::new(rng));
    let suite = match kind {
        Kind::Psk => {
            config.set_psk(b"password", "user").unwrap();
            PSK_CCM_8
        }
        Kind::Ecdsa => {
            config.set_authmode(AuthMode::None);
            ECDHE_ECDSA_CCM_8
        }
    };
    config.set_ciphersuites(Arc::new(vec![i32::from(suite), 0]));
    Arc::new(config)
}

fn handshake(config: &Arc<Config>, port: u16) -> mbedtls::Result<Context<ConnectedUdpSocket>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let sock = ConnectedUdpSocket::connect(sock, ("127.0.0.1", port))
        .map_err(|(e, _)| e)
        .unwrap();
    let mut ctx = Context::new(config.clone());
    ctx.set_timer_callback(Box::new(Timer::new()));
    ctx.establish(sock, None)?;
    Ok(ctx)
}

/// The resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn handshakes_per_second(kind: Kind, total: usize, threads: usize) {
    let server = Server::start(kind);
    let port = server.port();
    // Warm-up: the first handshakes fill caches and the allocator.
    let warm = client_config(kind);
    for _ in 0..10 {
        let mut ctx = handshake(&warm, port).unwrap();
        ctx.close();
    }
    server.settle();
    let per_thread = total.div_ceil(threads);
    let failures = Arc::new(AtomicUsize::new(0));
    let cpu_before = server.cpu();
    let t0 = Instant::now();
    let clients: Vec<_> = (0..threads)
        .map(|_| {
            let failures = failures.clone();
            std::thread::spawn(move || {
                let config = client_config(kind);
                for _ in 0..per_thread {
                    match handshake(&config, port) {
                        // Dropped: close_notify ends the server's session.
                        Ok(mut ctx) => ctx.close(),
                        Err(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let wall = t0.elapsed();
    let cpu = server.cpu().saturating_sub(cpu_before);
    let done = per_thread * threads;
    let failed = failures.load(Ordering::Relaxed);
    let ok = done - failed;
    println!(
        "handshakes {}: {ok} in {:.2} s from {threads} client threads in this process: {:.0}/s wall clock ({failed} failed)",
        kind.name(),
        wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64()
    );
    println!(
        "handshakes {}: server receiver thread CPU {:.0} us per handshake: {:.0}/s for one nsh socket with a core to itself",
        kind.name(),
        cpu.as_secs_f64() * 1e6 / ok as f64,
        ok as f64 / cpu.as_secs_f64()
    );
}

/// Child mode: SESSIONS handshakes with the server at PORT, optionally one
/// application record each, then exit without close_notify.
fn child(port: u16, sessions: usize, send_record: bool) {
    let config = client_config(Kind::Psk);
    let mut kept = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let mut ctx = handshake(&config, port).expect("handshake");
        if send_record {
            Io::send(&mut ctx, b"registered").unwrap();
        }
        kept.push(ctx);
    }
    println!("established {}", kept.len());
    // No destructors: no close_notify reaches the server.
    std::process::exit(0);
}

fn idle_sessions(server: &Server, sessions: usize, send_record: bool) {
    let before_count = server.transport.session_count();
    let records_before = server.records.load(Ordering::Relaxed);
    let before = rss_kib();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--clients-child",
            &server.port().to_string(),
            &sessions.to_string(),
            if send_record { "record" } else { "none" },
        ])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "client process failed");
    let want = before_count.0 + sessions;
    let count = server.wait_for(want);
    if send_record {
        let until = Instant::now() + Duration::from_secs(5);
        while server.records.load(Ordering::Relaxed) < records_before + sessions
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_kib();
    let what = if send_record {
        "after one application record each"
    } else {
        "handshake only"
    };
    // A client port the OS hands out again replaces the session an earlier
    // child left at that address: count the sessions actually added.
    let added = count.0.saturating_sub(before_count.0).max(1);
    println!(
        "idle sessions ({what}): session_count {:?} -> {:?}, RSS {before} KiB -> {after} KiB: {:.1} KiB per added session (server side only; clients ran in a child process)",
        before_count,
        count,
        (after as f64 - before as f64) / added as f64
    );
}

/// The first datagram an mbed TLS client sends: a ClientHello without a
/// cookie.
fn client_hello() -> Vec<u8> {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let sock = ConnectedUdpSocket::connect(sock, ("127.0.0.1", port))
        .map_err(|(e, _)| e)
        .unwrap();
    let mut ctx = Context::new(client_config(Kind::Psk));
    ctx.set_timer_callback(Box::new(Timer::new()));
    let _ = ctx.establish(sock, None);
    let mut buf = vec![0u8; 2048];
    sink.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let (n, _) = sink.recv_from(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn abandoned_handshakes(count: usize) {
    let server = Server::start(Kind::Psk);
    let port = server.port();
    let hello = client_hello();
    // One abandoned hello first, so that buffers the path needs exist.
    let warm = UdpSocket::bind("127.0.0.1:0").unwrap();
    warm.send_to(&hello, ("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let before = rss_kib();
    let mut verify_requests = 0;
    let mut buf = [0u8; 2048];
    for _ in 0..count {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        sock.send_to(&hello, ("127.0.0.1", port)).unwrap();
        // Record type 22 (handshake), message type 3 (HelloVerifyRequest).
        if let Ok(n) = sock.recv(&mut buf)
            && n > 13
            && buf[0] == 22
            && buf[13] == 3
        {
            verify_requests += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_kib();
    println!(
        "abandoned handshakes: {count} ClientHellos, {verify_requests} HelloVerifyRequests back, session_count {:?}, RSS {before} KiB -> {after} KiB ({:+} KiB)",
        server.transport.session_count(),
        after as i64 - before as i64
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--clients-child") {
        child(
            args[1].parse().unwrap(),
            args[2].parse().unwrap(),
            args[3] == "record",
        );
        return;
    }
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (total, threads, sessions) = (arg(0, 400), arg(1, 2), arg(2, 1000));
    println!(
        "dtls bench: {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    handshakes_per_second(Kind::Psk, total, threads);
    handshakes_per_second(Kind::Ecdsa, total, threads);
    {
        let server = Server::start(Kind::Psk);
        // Warm-up: a few sessions come and go before the first reading.
        let warm = client_config(Kind::Psk);
        for _ in 0..10 {
            let mut ctx = handshake(&warm, server.port()).unwrap();
            ctx.close();
        }
        server.settle();
        idle_sessions(&server, sessions, false);
        idle_sessions(&server, sessions, true);
    }
    abandoned_handshakes(sessions);
}
