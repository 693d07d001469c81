//! DTLS 1.2 server with pre-shared keys, on one UDP socket shared by every
//! peer: each source address gets its own session. mbed TLS (the `mbedtls`
//! crate) does the record layer and handshakes; everything it needs from
//! outside — datagrams in, datagrams out, timers — goes through the small
//! [`PeerIo`] shim below, so another backend could replace it behind
//! [`DtlsTransport`]'s four methods.
//!
//! The socket is read by one thread (the server's receiver). A datagram from
//! an unknown address that looks like a ClientHello starts a session; the
//! first ClientHello gets a HelloVerifyRequest and the session is dropped
//! again (cookies are stateless), so spoofed sources cost nothing. Handshake
//! outcomes are reported as one-line notices for the shell to print.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mbedtls::error::codes;
use mbedtls::rng::{CtrDrbg, OsEntropy};
use mbedtls::ssl::config::{Endpoint, Preset, Transport as TransportKind};
use mbedtls::ssl::context::Timer;
use mbedtls::ssl::{Config, Context, CookieContext, Io, Version};

use super::udp::{MAX_DATAGRAM, UdpTransport, canonical};

/// A pre-shared key and its identity, both literal bytes (as in the
/// original nsh: `--psk-identity user --psk-key password`).
#[derive(Clone, PartialEq, Eq)]
pub struct Psk {
    /// The identity clients present.
    pub identity: String,
    /// The key.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Psk")
            .field("identity", &self.identity)
            .field("key", &"…")
            .finish()
    }
}

/// Cipher suites offered, most preferred first: the LwM2M mandatory
/// TLS_PSK_WITH_AES_128_CCM_8, then common PSK suites for other clients
/// (IANA numbers).
const SUITES: [(i32, &str); 4] = [
    (0xC0A8, "TLS_PSK_WITH_AES_128_CCM_8"),
    (0xC0A4, "TLS_PSK_WITH_AES_128_CCM"),
    (0x00A8, "TLS_PSK_WITH_AES_128_GCM_SHA256"),
    (0x00AE, "TLS_PSK_WITH_AES_128_CBC_SHA256"),
];

fn suite_name(id: u16) -> String {
    SUITES
        .iter()
        .find(|(s, _)| *s == i32::from(id))
        .map_or_else(|| format!("cipher suite 0x{id:04X}"), |(_, n)| (*n).into())
}

/// What mbed TLS sees as its network: datagrams queued by the receiver,
/// and the shared socket to answer on.
struct PeerIo {
    socket: Arc<UdpSocket>,
    /// The address as the socket reported it (IPv4-mapped on dual-stack).
    addr: SocketAddr,
    inbox: VecDeque<Vec<u8>>,
}

impl Io for PeerIo {
    fn recv(&mut self, buf: &mut [u8]) -> mbedtls::Result<usize> {
        match self.inbox.pop_front() {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => Err(codes::SslWantRead.into()),
        }
    }

    fn send(&mut self, buf: &[u8]) -> mbedtls::Result<usize> {
        self.socket
            .send_to(buf, self.addr)
            .map_err(|_| codes::NetSendFailed.into())
    }
}

struct Session {
    ctx: Context<PeerIo>,
    established: bool,
}

/// A DTLS server socket: see the module documentation.
pub struct DtlsTransport {
    udp: UdpTransport,
    socket: Arc<UdpSocket>,
    config: Arc<Config>,
    sessions: Mutex<HashMap<SocketAddr, Session>>,
    /// Decrypted application datagrams not yet handed out.
    pending: Mutex<VecDeque<(Vec<u8>, SocketAddr)>>,
    notices: Mutex<Vec<String>>,
    read_timeout_us: AtomicU64,
}

impl std::fmt::Debug for DtlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsTransport")
            .field("local", &self.socket.local_addr().ok())
            .finish_non_exhaustive()
    }
}

fn tls_error(what: &str, e: mbedtls::Error) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a failed handshake reads in the shell: what happened in words,
/// then mbed TLS's own name for it.
fn handshake_failure(e: &mbedtls::Error) -> String {
    let what = match e.high_level() {
        Some(codes::SslUnknownIdentity) => "unknown PSK identity",
        Some(codes::SslBadHsFinished | codes::SslInvalidMac) => {
            "the client's Finished did not decrypt (wrong PSK key?)"
        }
        Some(codes::SslNoCipherChosen) => "no cipher suite in common",
        Some(codes::SslBadHsProtocolVersion) => "the client does not speak DTLS 1.2",
        Some(codes::SslTimeout) => "the client stopped answering",
        Some(codes::SslFatalAlertMessage) => "the client sent a fatal alert",
        _ => "",
    };
    let code = match (e.high_level(), e.low_level()) {
        (Some(h), _) => format!("{h:?}"),
        (None, Some(l)) => format!("{l:?}"),
        (None, None) => format!("{e}"),
    };
    if what.is_empty() {
        format!("mbed TLS error {code}")
    } else {
        format!("{what} (mbed TLS: {code})")
    }
}

impl DtlsTransport {
    /// Binds like [`UdpTransport::bind`] and serves DTLS 1.2 with `psk`.
    pub fn bind(port: u16, ipv6: bool, psk: &Psk) -> io::Result<Self> {
        let udp = UdpTransport::bind(port, ipv6)?;
        let socket = Arc::new(udp.socket().try_clone()?);
        let entropy = Arc::new(OsEntropy::new());
        let rng = Arc::new(CtrDrbg::new(entropy, None).map_err(|e| tls_error("random", e))?);
        let mut config = Config::new(Endpoint::Server, TransportKind::Datagram, Preset::Default);
        config.set_rng(rng.clone());
        // DTLS 1.2 is mbed TLS's "TLS 1.2" on a datagram transport.
        config
            .set_min_version(Version::Tls1_2)
            .map_err(|e| tls_error("DTLS version", e))?;
        config
            .set_psk(&psk.key, &psk.identity)
            .map_err(|e| tls_error("PSK", e))?;
        let mut suites: Vec<i32> = SUITES.iter().map(|(s, _)| *s).collect();
        suites.push(0);
        config.set_ciphersuites(Arc::new(suites));
        let cookies = CookieContext::new(rng).map_err(|e| tls_error("cookies", e))?;
        config.set_dtls_cookies(Arc::new(cookies));
        Ok(DtlsTransport {
            udp,
            socket,
            config: Arc::new(config),
            sessions: Mutex::new(HashMap::new()),
            pending: Mutex::new(VecDeque::new()),
            notices: Mutex::new(Vec::new()),
            read_timeout_us: AtomicU64::new(0),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Encrypts and sends one datagram to a peer with an established
    /// session.
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        let peer = canonical(peer);
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(&peer)
            .filter(|s| s.established)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!("no DTLS session with {peer}"),
                )
            })?;
        Io::send(&mut session.ctx, bytes)
            .map(|_| ())
            .map_err(|e| tls_error(&format!("DTLS send to {peer}"), e))
    }

    /// Waits up to `timeout` for one decrypted application datagram;
    /// handshakes progress meanwhile. `Ok(None)` when none arrived.
    pub fn recv(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        if let Some(got) = self.pop_pending(buf) {
            return Ok(Some(got));
        }
        let ms = timeout.as_millis().clamp(1, u128::from(u32::MAX)) as u64;
        if self.read_timeout_us.swap(ms * 1000, Ordering::Relaxed) != ms * 1000 {
            self.socket
                .set_read_timeout(Some(Duration::from_millis(ms)))?;
        }
        let mut raw = vec![0u8; MAX_DATAGRAM];
        let received = match self.socket.recv_from(&mut raw) {
            Ok((n, from)) => Some((n, from)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        if let Some((n, from)) = received {
            raw.truncate(n);
            self.feed(raw, from);
        }
        self.drive_handshakes();
        Ok(self.pop_pending(buf))
    }

    /// Handshake outcomes and session ends since the last call, one line
    /// each.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.notices))
    }

    fn notice(&self, line: String) {
        lock(&self.notices).push(line);
    }

    fn pop_pending(&self, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        let (d, peer) = lock(&self.pending).pop_front()?;
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Some((n, peer))
    }

    fn feed(&self, datagram: Vec<u8>, from: SocketAddr) {
        let peer = canonical(from);
        let mut sessions = lock(&self.sessions);
        let Some(session) = sessions.get_mut(&peer) else {
            drop(sessions);
            self.start(datagram, from);
            return;
        };
        if let Some(io) = session.ctx.io_mut() {
            io.inbox.push_back(datagram.clone());
        }
        if !session.established {
            let outcome = session.ctx.handshake();
            let keep = self.after_handshake(peer, session, outcome);
            if !keep {
                sessions.remove(&peer);
                return;
            }
        }
        if session.established {
            match self.read_records(peer, session) {
                Ok(()) => {}
                Err(e) if e.high_level() == Some(codes::SslClientReconnect) => {
                    // A new handshake from the same address with a valid
                    // cookie: start afresh with that ClientHello.
                    sessions.remove(&peer);
                    drop(sessions);
                    self.notice(format!("DTLS peer {peer} starts a new session"));
                    self.start(datagram, from);
                }
                Err(e) if e.high_level() == Some(codes::SslPeerCloseNotify) => {
                    sessions.remove(&peer);
                    self.notice(format!("DTLS peer {peer} closed its session"));
                }
                Err(e) => {
                    sessions.remove(&peer);
                    self.notice(format!(
                        "DTLS session with {peer} ended: {}",
                        handshake_failure(&e)
                    ));
                }
            }
        }
    }

    /// Moves every decrypted record of a session to `pending`.
    fn read_records(&self, peer: SocketAddr, session: &mut Session) -> mbedtls::Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match Io::recv(&mut session.ctx, &mut buf) {
                Ok(n) => lock(&self.pending).push_back((buf[..n].to_vec(), peer)),
                Err(e) if e.high_level() == Some(codes::SslWantRead) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// A datagram from an address without a session: only a handshake
    /// record (content type 22) may start one.
    fn start(&self, datagram: Vec<u8>, from: SocketAddr) {
        let peer = canonical(from);
        if datagram.first() != Some(&22) {
            self.notice(format!(
                "DTLS: dropped a {}-byte datagram from {peer}: no session and not a handshake",
                datagram.len()
            ));
            return;
        }
        let mut ctx = Context::new(self.config.clone());
        ctx.set_timer_callback(Box::new(Timer::new()));
        ctx.set_client_transport_id_once(peer.to_string().as_bytes());
        let io = PeerIo {
            socket: self.socket.clone(),
            addr: from,
            inbox: VecDeque::from([datagram]),
        };
        let outcome = ctx.establish(io, None);
        let mut session = Session {
            ctx,
            established: false,
        };
        if self.after_handshake(peer, &mut session, outcome) {
            if session.established && self.read_records(peer, &mut session).is_err() {
                return;
            }
            lock(&self.sessions).insert(peer, session);
        }
    }

    /// Interprets a handshake step; false when the session is to be
    /// dropped.
    fn after_handshake(
        &self,
        peer: SocketAddr,
        session: &mut Session,
        outcome: mbedtls::Result<()>,
    ) -> bool {
        match outcome {
            Ok(()) => {
                session.established = true;
                let suite = session
                    .ctx
                    .ciphersuite()
                    .map_or_else(|_| "unknown cipher suite".into(), suite_name);
                self.notice(format!("DTLS session with {peer} established ({suite})"));
                true
            }
            Err(e) if e.high_level() == Some(codes::SslWantRead) => true,
            Err(e) if e.high_level() == Some(codes::SslWantWrite) => true,
            // The HelloVerifyRequest went out; the ClientHello with the
            // cookie starts a new session.
            Err(e) if e.high_level() == Some(codes::SslHelloVerifyRequired) => false,
            Err(e) => {
                self.notice(format!(
                    "DTLS handshake with {peer} failed: {}",
                    handshake_failure(&e)
                ));
                false
            }
        }
    }

    /// Lets unfinished handshakes retransmit or time out.
    fn drive_handshakes(&self) {
        let mut sessions = lock(&self.sessions);
        let mut failed = Vec::new();
        for (peer, session) in sessions.iter_mut().filter(|(_, s)| !s.established) {
            let outcome = session.ctx.handshake();
            if !self.after_handshake(*peer, session, outcome) {
                failed.push(*peer);
            }
        }
        for peer in failed {
            sessions.remove(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbedtls::ssl::io::ConnectedUdpSocket;
    use std::sync::atomic::AtomicBool;

    fn psk() -> Psk {
        Psk {
            identity: "user".into(),
            key: b"password".to_vec(),
        }
    }

    /// An echo server on the transport, until the flag is set.
    fn echo_server() -> (
        Arc<DtlsTransport>,
        Arc<AtomicBool>,
        std::thread::JoinHandle<()>,
    ) {
        let server = Arc::new(DtlsTransport::bind(0, false, &psk()).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let (srv, flag) = (server.clone(), stop.clone());
        let t = std::thread::spawn(move || {
            let mut buf = vec![0u8; 2048];
            while !flag.load(Ordering::SeqCst) {
                if let Ok(Some((n, peer))) = srv.recv(&mut buf, Duration::from_millis(20)) {
                    let reply = [b"echo:", &buf[..n]].concat();
                    srv.send_to(&reply, peer).unwrap();
                }
            }
        });
        (server, stop, t)
    }

    fn client(port: u16, key: &[u8]) -> mbedtls::Result<Context<ConnectedUdpSocket>> {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let sock = ConnectedUdpSocket::connect(sock, ("127.0.0.1", port))
            .map_err(|(e, _)| e)
            .unwrap();
        let rng = CtrDrbg::new(Arc::new(OsEntropy::new()), None)?;
        let mut config = Config::new(Endpoint::Client, TransportKind::Datagram, Preset::Default);
        config.set_rng(Arc::new(rng));
        config.set_psk(key, "user")?;
        let mut ctx = Context::new(Arc::new(config));
        ctx.set_timer_callback(Box::new(Timer::new()));
        ctx.establish(sock, None)?;
        Ok(ctx)
    }

    fn exchange(ctx: &mut Context<ConnectedUdpSocket>, text: &str) -> String {
        Io::send(ctx, text.as_bytes()).unwrap();
        let mut buf = [0u8; 256];
        let n = Io::recv(ctx, &mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn two_peers_keep_their_own_sessions_on_one_socket() {
        let (server, stop, t) = echo_server();
        let port = server.local_addr().unwrap().port();
        let mut one = client(port, b"password").unwrap();
        let mut two = client(port, b"password").unwrap();
        assert_eq!(one.ciphersuite().unwrap(), 0xC0A8);
        assert_eq!(exchange(&mut one, "one"), "echo:one");
        assert_eq!(exchange(&mut two, "two"), "echo:two");
        assert_eq!(exchange(&mut one, "again"), "echo:again");
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
        let notices = server.take_notices();
        assert_eq!(
            notices.iter().filter(|n| n.contains("established")).count(),
            2,
            "{notices:?}"
        );
    }

    #[test]
    fn a_wrong_key_fails_the_handshake_with_a_notice_naming_the_peer() {
        let (server, stop, t) = echo_server();
        let port = server.local_addr().unwrap().port();
        assert!(client(port, b"wrong").is_err());
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
        let notices = server.take_notices();
        assert!(
            notices
                .iter()
                .any(|n| n.starts_with("DTLS handshake with 127.0.0.1:")
                    && n.contains("wrong PSK key?")),
            "{notices:?}"
        );
    }

    #[test]
    fn sending_to_a_peer_without_a_session_is_an_error() {
        let server = DtlsTransport::bind(0, false, &psk()).unwrap();
        let e = server
            .send_to(b"x", "127.0.0.1:9".parse().unwrap())
            .unwrap_err();
        assert_eq!(e.to_string(), "no DTLS session with 127.0.0.1:9");
    }

    #[test]
    fn a_stray_non_handshake_datagram_is_dropped_with_a_notice() {
        let server = DtlsTransport::bind(0, false, &psk()).unwrap();
        let port = server.local_addr().unwrap().port();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(&[0x40, 0x01, 0x00, 0x01], ("127.0.0.1", port))
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(
            server
                .recv(&mut buf, Duration::from_secs(2))
                .unwrap()
                .is_none()
        );
        let notices = server.take_notices();
        assert!(notices[0].contains("not a handshake"), "{notices:?}");
    }
}
