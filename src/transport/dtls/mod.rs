//! DTLS 1.2 on one UDP socket shared by every peer: each source address
//! gets its own session, as server (clients that send a ClientHello) or as
//! client (`connect`: nsh sends the ClientHello). mbed TLS (the `mbedtls`
//! crate) does the record layer and handshakes; everything it needs from
//! outside — datagrams in, datagrams out, timers — goes through the small
//! [`PeerIo`] shim below, so another backend could replace it behind
//! [`DtlsTransport`]'s methods.
//!
//! The socket is read by one thread (the server's receiver). A datagram from
//! an unknown address that looks like a ClientHello starts a session; the
//! first ClientHello gets a HelloVerifyRequest and the session is dropped
//! again (cookies are stateless), so spoofed sources cost nothing (a socket
//! `connect` opened with CAs only, no certificate of nsh's own, refuses
//! ClientHellos with a line). A record
//! carrying nsh's Connection ID from an unknown address is tried on the
//! sessions with that CID; the one it decrypts for moves to the new address
//! (NAT rebinding). Sessions end on close_notify, on a new handshake from
//! their address, on a fatal error, or after the idle timeout. Outcomes are
//! one-line notices for the shell to print; a flood of failures becomes a
//! summary. A failed handshake gets a fatal alert (mbed TLS's own, or
//! nsh's where mbed TLS sends none), is one line, and the rest of that
//! peer's flight (retransmissions included) is dropped without more lines
//! until it sends a new ClientHello. A handshake the peer ends with a
//! fatal alert names that alert on its line, read off the datagrams the
//! peer sent (see [`alert`]). When nsh is the client, a failure
//! is kept for `connect` to tell: the alert the server sent, or the ICMP
//! error that came back (the socket asks for them), and where an
//! unfinished handshake stalled; and once its session is up, when the
//! server was last heard from and what it sent outside the session, for a
//! request's timeout to tell (a server that restarted drops the records of
//! the session it lost without a word). How and when a session ended
//! (close_notify, the fatal alert the peer sent — decrypted, so named —,
//! the idle timeout) is kept until a new session with that peer, so that
//! sending to it says so instead of only that there is no session.

pub(crate) mod alert;
pub(crate) mod config;
pub(crate) mod ffi;
pub mod settings;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use mbedtls::error::codes;
use mbedtls::ssl::context::Timer;
use mbedtls::ssl::{Context, Io};

pub use config::Side;
use config::Tls;
pub use config::{CredentialKind, der_of};
pub use settings::{CaSource, CertificateFiles, Credentials, OwnCertificate, Psk, Security};

use super::udp::{MAX_DATAGRAM, UdpTransport, canonical};

/// DTLS record content type of a record carrying a Connection ID (mbed TLS
/// 2.28, draft-ietf-tls-dtls-connection-id-05; RFC 9146 uses the same 25).
const CONTENT_TYPE_TLS12_CID: u8 = 25;
/// DTLS record content type of a handshake record.
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
/// Bytes before the CID in a CID record: type, version, epoch, sequence.
const CID_OFFSET: usize = 1 + 2 + 2 + 6;

/// Handshake type of a ClientHello, after a DTLS record header.
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Length of a DTLS record header.
const RECORD_HEADER: usize = 13;
/// How long the records of a failed handshake's peer are dropped without
/// a line (about as long as a DTLS client retransmits a flight).
const LEFTOVER_WINDOW: Duration = Duration::from_secs(60);
/// At most this many peers whose handshake failed are remembered.
const LEFTOVER_PEERS: usize = 4096;

/// At most this many peers whose session ended are remembered (the
/// oldest go first).
const ENDED_PEERS: usize = 4096;

/// At most this many failure lines a second; the rest are counted and
/// summed up in one line.
const FAILURE_LINES_PER_SECOND: u32 = 5;

/// Datagrams mbed TLS has written, sent on the socket once the sessions
/// lock is released (so no thread waits on another's system call).
type Outbox = Arc<Mutex<VecDeque<(Vec<u8>, SocketAddr)>>>;

/// What mbed TLS sees as its network: datagrams queued by the receiver,
/// and the transport's outbox to answer through.
struct PeerIo {
    outbox: Outbox,
    /// Where to send: the peer's address as the socket wants it
    /// (IPv4-mapped on a dual-stack socket).
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
        lock(&self.outbox).push_back((buf.to_vec(), self.addr));
        Ok(buf.len())
    }
}

struct Session {
    ctx: Context<PeerIo>,
    side: Side,
    established: bool,
    /// The PSK identity or the certificate subject the peer authenticated
    /// with.
    identity: Option<String>,
    /// nsh's CID in this session's records, when one was negotiated.
    own_cid: Option<Vec<u8>>,
    last_active: Instant,
    /// The first fatal alert among the peer's records (mbed TLS tells only
    /// that one came).
    alert: Option<alert::Received>,
    /// Whether the peer's last datagram held an encrypted handshake record.
    handshake_after: bool,
    /// When the last datagram from the peer came (any datagram, whether
    /// it decrypted or not).
    last_heard: Instant,
    /// What the server last sent outside nsh's established client session
    /// (a plaintext handshake message or alert of epoch 0, which mbed TLS
    /// drops), and when.
    outside: Option<(Instant, String)>,
}

/// Who ended a session, and why.
enum EndedBy {
    /// The peer, with close_notify.
    CloseNotify,
    /// The peer, with a fatal alert (in words).
    Alert(String),
    /// nsh (in words: idle, an error).
    Nsh(String),
}

/// How a session ended, kept for the error of a later send to its peer.
struct Ending {
    at: SystemTime,
    side: Side,
    by: EndedBy,
}

impl Ending {
    /// How and when the session ended and what makes a new one, told at
    /// `now`, worded as the line of a closed connection is (`DTLS server
    /// … closed nsh's session (close_notify) at …; …`).
    fn line(&self, peer: SocketAddr, now: SystemTime) -> String {
        let when = super::at_and_ago(self.at, now);
        let (peer_is, session) = match self.side {
            Side::Client => ("server", "nsh's session"),
            Side::Server => ("client", "its session"),
        };
        let ended = match &self.by {
            EndedBy::CloseNotify => {
                format!("DTLS {peer_is} {peer} closed {session} (close_notify) {when}")
            }
            EndedBy::Alert(why) => {
                format!("DTLS {peer_is} {peer} ended {session} {when}: {why}")
            }
            EndedBy::Nsh(why) => format!("DTLS session with {peer} ended {when}: {why}"),
        };
        let again = match self.side {
            Side::Client => "`connect` again makes a new session",
            Side::Server => "a device makes a new one by registering",
        };
        format!("{ended}; {again}")
    }

    /// The sentence a send to `peer` fails with, told at `now`.
    fn sentence(&self, peer: SocketAddr, now: SystemTime) -> String {
        format!("the {}", self.line(peer, now))
    }
}

/// Failure lines beyond [`FAILURE_LINES_PER_SECOND`].
#[derive(Default)]
struct Flood {
    window: Option<Instant>,
    shown: u32,
    hidden: u32,
    last: String,
}

/// A DTLS socket: see the module documentation.
pub struct DtlsTransport {
    udp: UdpTransport,
    // `sessions` comes before `server_tls`/`client_tls`: contexts are
    // dropped before the configurations (and PSK tables) they point into.
    sessions: Mutex<HashMap<SocketAddr, Session>>,
    /// `None` when the credentials hold no certificate of nsh's own
    /// (`connect` with only CAs): ClientHellos are refused.
    server_tls: Option<Tls>,
    client_tls: Mutex<Option<Arc<Tls>>>,
    security: Security,
    /// Decrypted application datagrams not yet handed out.
    pending: Mutex<VecDeque<(Vec<u8>, SocketAddr)>>,
    notices: Mutex<Vec<String>>,
    flood: Mutex<Flood>,
    /// (old, new) addresses of sessions that moved, not yet taken.
    moved: Mutex<Vec<(SocketAddr, SocketAddr)>>,
    /// Peers whose session ended, not yet taken.
    ended: Mutex<Vec<SocketAddr>>,
    /// How each peer's last session ended, until a new one with it.
    endings: Mutex<HashMap<SocketAddr, Ending>>,
    /// Peers whose handshake failed, and when: the rest of their flight is
    /// dropped quietly.
    failed: Mutex<HashMap<SocketAddr, Instant>>,
    /// Why nsh's handshakes as the client failed, by server, until the
    /// next `open` to it.
    client_failures: Mutex<HashMap<SocketAddr, String>>,
    last_sweep: Mutex<Instant>,
    /// The receive buffer (one receiving thread; reused, not zeroed again
    /// for every datagram).
    raw: Mutex<Vec<u8>>,
    /// Where records are decrypted into (under the sessions lock).
    plain: Mutex<Vec<u8>>,
    outbox: Outbox,
}

impl std::fmt::Debug for DtlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsTransport")
            .field("local", &self.udp.local_addr().ok())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The CID a record from an unknown address carries, when it is a CID
/// record and long enough.
fn record_cid(datagram: &[u8], len: usize) -> Option<&[u8]> {
    if datagram.first() != Some(&CONTENT_TYPE_TLS12_CID) {
        return None;
    }
    datagram.get(CID_OFFSET..CID_OFFSET + len)
}

impl DtlsTransport {
    /// Binds like [`UdpTransport::bind`] and serves DTLS 1.2 with `security`.
    /// Errors name the file or value at fault.
    pub fn bind(port: u16, ipv6: bool, security: &Security) -> io::Result<Self> {
        let server_tls = if security.without_own_certificate() {
            None
        } else {
            Some(config::build(security, Side::Server).map_err(io::Error::other)?)
        };
        let udp = UdpTransport::bind(port, ipv6)?;
        // For `connect` to a port where no server listens; without it, that
        // handshake only times out.
        let _ = udp.watch_unreachable();
        Ok(DtlsTransport {
            udp,
            sessions: Mutex::new(HashMap::new()),
            server_tls,
            client_tls: Mutex::new(None),
            security: security.clone(),
            pending: Mutex::new(VecDeque::new()),
            notices: Mutex::new(Vec::new()),
            flood: Mutex::new(Flood::default()),
            moved: Mutex::new(Vec::new()),
            ended: Mutex::new(Vec::new()),
            endings: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            client_failures: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
            raw: Mutex::new(vec![0u8; MAX_DATAGRAM]),
            plain: Mutex::new(vec![0u8; MAX_DATAGRAM]),
            outbox: Outbox::default(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// The UDP socket beneath, where faults are injected.
    pub fn udp(&self) -> &UdpTransport {
        &self.udp
    }

    /// What the socket was configured with.
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// Encrypts and sends one datagram to a peer with an established
    /// session. Without one, the error says how and when the peer's last
    /// session ended, when one did.
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        let peer = canonical(peer);
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(&peer)
            .filter(|s| s.established)
            .ok_or_else(|| {
                let why = match lock(&self.endings).get(&peer) {
                    Some(ending) => ending.sentence(peer, SystemTime::now()),
                    None => format!(
                        "no DTLS session with {peer} (none was made, or it ended: a device makes one by registering; `connect` makes one with a DTLS server)"
                    ),
                };
                io::Error::new(io::ErrorKind::NotConnected, why)
            })?;
        session.last_active = Instant::now();
        let (sent, _) = ffi::stepping(peer, || Io::send(&mut session.ctx, bytes));
        drop(sessions);
        let flushed = self.flush_outbox();
        sent.map_err(|e| {
            io::Error::other(format!("DTLS send to {peer}: {}", config::error_code(&e)))
        })?;
        flushed
    }

    /// Sends what mbed TLS wrote, in order; the first socket error, if any
    /// (the other datagrams still go).
    fn flush_outbox(&self) -> io::Result<()> {
        let mut result = Ok(());
        loop {
            let Some((datagram, to)) = lock(&self.outbox).pop_front() else {
                return result;
            };
            if let Err(e) = self.udp.send_to(&datagram, to)
                && result.is_ok()
            {
                result = Err(e);
            }
        }
    }

    /// Sends `bytes` as they are, unencrypted, on the socket (`udp`, for
    /// malformed-record tests).
    pub fn send_raw(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        self.udp.send_to(bytes, peer)
    }

    /// The identity `peer` authenticated with (PSK identity or certificate
    /// subject), once its session is established.
    pub fn identity(&self, peer: SocketAddr) -> Option<String> {
        lock(&self.sessions)
            .get(&canonical(peer))
            .filter(|s| s.established)
            .and_then(|s| s.identity.clone())
    }

    /// Sessions kept now: (established, handshakes in progress).
    pub fn session_count(&self) -> (usize, usize) {
        let sessions = lock(&self.sessions);
        let established = sessions.values().filter(|s| s.established).count();
        (established, sessions.len() - established)
    }

    /// Whether `peer` has an established session.
    pub fn is_established(&self, peer: SocketAddr) -> bool {
        lock(&self.sessions)
            .get(&canonical(peer))
            .is_some_and(|s| s.established)
    }

    /// Starts a handshake as the client with `peer` (`connect`); the
    /// receiving thread completes it. A session already there is replaced.
    pub fn open(&self, peer: SocketAddr) -> io::Result<()> {
        let peer = canonical(peer);
        let tls = {
            let mut client = lock(&self.client_tls);
            if client.is_none() {
                *client = Some(Arc::new(
                    config::build(&self.security, Side::Client).map_err(io::Error::other)?,
                ));
            }
            client.clone().unwrap_or_else(|| unreachable!("set above"))
        };
        let mut ctx = Context::new(tls.config.clone());
        ctx.set_timer_callback(Box::new(Timer::new()));
        if let Some(cid) = &tls.own_cid {
            ffi::offer_cid(&mut ctx, cid)
                .map_err(|e| io::Error::other(format!("connection_id: mbed TLS error {e}")))?;
        }
        let io = PeerIo {
            outbox: self.outbox.clone(),
            addr: self.udp.socket_addr(peer),
            inbox: VecDeque::new(),
        };
        let mut sessions = lock(&self.sessions);
        sessions.remove(&peer);
        lock(&self.endings).remove(&peer);
        lock(&self.client_failures).remove(&peer);
        lock(&self.failed).remove(&peer);
        let (outcome, identity) = ffi::stepping(peer, || ctx.establish(io, None));
        let mut session = Session {
            ctx,
            side: Side::Client,
            established: false,
            identity,
            own_cid: None,
            last_active: Instant::now(),
            alert: None,
            handshake_after: false,
            last_heard: Instant::now(),
            outside: None,
        };
        if self.after_handshake(peer, &mut session, outcome) {
            sessions.insert(peer, session);
            drop(sessions);
            self.flush_outbox()
        } else {
            Err(io::Error::other(format!(
                "DTLS handshake with {peer} failed at once"
            )))
        }
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
        let mut raw = lock(&self.raw);
        let received = self
            .udp
            .recv(&mut raw, timeout)?
            .map(|(n, from)| (raw.get(..n).unwrap_or_default().to_vec(), from));
        drop(raw);
        if let Some((datagram, from)) = received {
            self.feed(datagram, from);
        }
        self.unreachable();
        self.drive_handshakes();
        // Handshake flights and alerts; a failure shows as the peer's
        // silence, as any lost datagram would.
        let _ = self.flush_outbox();
        self.sweep_idle();
        self.flush_flood(false);
        Ok(self.pop_pending(buf))
    }

    /// Why nsh's last handshake as the client with `peer` failed, as a
    /// sentence, if it did.
    pub fn client_failure(&self, peer: SocketAddr) -> Option<String> {
        lock(&self.client_failures).get(&canonical(peer)).cloned()
    }

    /// Where nsh's unfinished handshake as the client with `peer` stands,
    /// when that says something: the server has not answered at all, or
    /// not nsh's Finished.
    pub fn client_stall(&self, peer: SocketAddr) -> Option<&'static str> {
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(&canonical(peer))
            .filter(|s| s.side == Side::Client && !s.established)?;
        let state = ffi::handshake_state(&mut session.ctx);
        let asked =
            self.security.without_own_certificate() && ffi::certificate_requested(&mut session.ctx);
        if asked && ffi::AWAITING_SERVER_FINISHED.contains(&state) {
            Some(
                "the server did not answer nsh's Finished; it had asked for a client certificate and nsh has none to send: give crt_file and key_file (nsh's certificate and its private key) to `connect`",
            )
        } else if ffi::AWAITING_SERVER_FINISHED.contains(&state) {
            Some("the server did not answer nsh's Finished (wrong PSK key or identity?)")
        } else if state == ffi::AWAITING_SERVER_HELLO {
            Some("the server did not answer nsh's ClientHello")
        } else {
            None
        }
    }

    /// Why a request to `peer` over nsh's established client session
    /// (`connect`), sent at `since`, may have gone unanswered, when what
    /// came from the server since then suggests it: nothing at all came,
    /// as when the server restarted and drops the records of a session it
    /// no longer knows; or the server sent a handshake message or alert
    /// outside the session. `None` for other peers, and when the server
    /// was heard from within the session.
    pub fn client_silence(&self, peer: SocketAddr, since: Instant) -> Option<String> {
        let peer = canonical(peer);
        let sessions = lock(&self.sessions);
        let session = sessions
            .get(&peer)
            .filter(|s| s.side == Side::Client && s.established)?;
        const AGAIN: &str = "`connect` again makes a new session";
        if let Some((at, what)) = &session.outside
            && *at >= since
        {
            return Some(format!(
                "{peer} sent {what} outside the DTLS session since the request: the server may have lost nsh's session (restarted?); {AGAIN}"
            ));
        }
        if session.last_heard >= since {
            return None;
        }
        Some(format!(
            "nothing at all came from {peer} since the request (its last datagram came {:.1} s before): the DTLS server may have lost nsh's session (restarted?), and then drops nsh's records without a word; {AGAIN}",
            since.duration_since(session.last_heard).as_secs_f64()
        ))
    }

    /// Ends nsh's handshakes as the client with servers an ICMP error came
    /// back from (nothing listens there).
    fn unreachable(&self) {
        for (peer, what) in self.udp.take_unreachable() {
            let mut sessions = lock(&self.sessions);
            let pending = sessions
                .get(&peer)
                .is_some_and(|s| s.side == Side::Client && !s.established);
            if !pending {
                continue;
            }
            sessions.remove(&peer);
            drop(sessions);
            let line = format!("no DTLS server at {peer}: {what}");
            lock(&self.client_failures).insert(peer, line.clone());
            self.failure(line);
        }
    }

    /// Handshake outcomes and session ends since the last call, one line
    /// each.
    pub fn take_notices(&self) -> Vec<String> {
        self.flush_flood(false);
        std::mem::take(&mut *lock(&self.notices))
    }

    /// Sessions that moved to a new address (Connection ID) since the last
    /// call, as (old, new).
    pub fn take_moved(&self) -> Vec<(SocketAddr, SocketAddr)> {
        std::mem::take(&mut *lock(&self.moved))
    }

    /// Peers whose session ended since the last call, each with how and
    /// when ([`Ending::line`]).
    pub fn take_ended(&self) -> Vec<(SocketAddr, String)> {
        let peers = std::mem::take(&mut *lock(&self.ended));
        let endings = lock(&self.endings);
        let now = SystemTime::now();
        peers
            .into_iter()
            .map(|peer| {
                let why = endings.get(&peer).map_or_else(
                    || format!("DTLS session with {peer} ended"),
                    |e| e.line(peer, now),
                );
                (peer, why)
            })
            .collect()
    }

    fn notice(&self, line: String) {
        lock(&self.notices).push(line);
    }

    /// A failure line, unless failures flood in: then they are counted and
    /// summed up once a second.
    fn failure(&self, line: String) {
        let mut flood = lock(&self.flood);
        let now = Instant::now();
        if flood
            .window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1))
        {
            drop(flood);
            self.flush_flood(true);
            flood = lock(&self.flood);
            flood.window = Some(now);
            flood.shown = 0;
        }
        if flood.shown < FAILURE_LINES_PER_SECOND {
            flood.shown += 1;
            drop(flood);
            self.notice(line);
        } else {
            flood.hidden += 1;
            flood.last = line;
        }
    }

    /// Prints the summary of hidden failures once their second is over
    /// (or now, with `force`).
    fn flush_flood(&self, force: bool) {
        let mut flood = lock(&self.flood);
        let over = flood
            .window
            .is_some_and(|w| w.elapsed() >= Duration::from_secs(1));
        if flood.hidden > 0 && (force || over) {
            let line = format!(
                "DTLS: {} more failed handshakes or ended sessions not shown (the last: {})",
                flood.hidden, flood.last
            );
            flood.hidden = 0;
            drop(flood);
            self.notice(line);
        }
    }

    fn ended(&self, peer: SocketAddr) {
        lock(&self.ended).push(peer);
    }

    /// Waits up to `timeout` until `recv` has something to do without
    /// waiting: a decrypted record kept from an earlier datagram, or a
    /// datagram on the socket (see [`UdpTransport::wait_readable`]; `None`
    /// while the fault injection is engaged).
    pub fn wait_readable(&self, timeout: Duration) -> Option<io::Result<bool>> {
        if !self.udp.can_wait_readable() {
            return None;
        }
        if !lock(&self.pending).is_empty() {
            return Some(Ok(true));
        }
        self.udp.wait_readable(timeout)
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
        if !sessions.contains_key(&peer) {
            if let Some(old) = self.moved_session(&mut sessions, &datagram, peer) {
                let session = sessions.remove(&old);
                if let Some(mut session) = session {
                    if let Some(io) = session.ctx.io_mut() {
                        io.addr = from;
                    }
                    sessions.insert(peer, session);
                    lock(&self.moved).push((old, peer));
                    self.notice(format!(
                        "DTLS peer {old} moved to {peer} (same session, by its Connection ID)"
                    ));
                }
                return;
            }
            drop(sessions);
            self.start(datagram, from);
            return;
        }
        let Some(session) = sessions.get_mut(&peer) else {
            return;
        };
        session.last_active = Instant::now();
        session.last_heard = session.last_active;
        if session.established
            && session.side == Side::Client
            && let Some(what) = alert::outside_session(&datagram)
        {
            session.outside = Some((session.last_heard, what));
        }
        if session.alert.is_none() {
            session.alert = alert::in_datagram(&datagram);
        }
        // In an established session, a handshake record just before an
        // alert is a renegotiation the peer asked for.
        let renegotiating = session.established
            && (std::mem::replace(
                &mut session.handshake_after,
                alert::encrypted_handshake(&datagram),
            ) || session.handshake_after);
        // A handshake record may have to start a new session below (a
        // rebooted client): keep it.
        let handshake =
            (datagram.first() == Some(&CONTENT_TYPE_HANDSHAKE)).then(|| datagram.clone());
        if let Some(io) = session.ctx.io_mut() {
            io.inbox.push_back(datagram);
        }
        if !session.established {
            let (outcome, identity) = ffi::stepping(peer, || session.ctx.handshake());
            if identity.is_some() {
                session.identity = identity;
            }
            let keep = self.after_handshake(peer, session, outcome);
            if !keep {
                sessions.remove(&peer);
                return;
            }
        }
        if session.established {
            match self.read_records(peer, session) {
                Ok(_) => {}
                Err(e)
                    if e.high_level() == Some(codes::SslClientReconnect)
                        && session.side == Side::Server =>
                {
                    // A new handshake from the same address with a valid
                    // cookie: a rebooted client. Start afresh with that
                    // ClientHello.
                    sessions.remove(&peer);
                    drop(sessions);
                    self.ended(peer);
                    self.notice(format!(
                        "DTLS peer {peer} starts a new session (the old one ends)"
                    ));
                    if let Some(hello) = handshake {
                        self.start(hello, from);
                    }
                }
                Err(e) if e.high_level() == Some(codes::SslPeerCloseNotify) => {
                    self.remember_ending(peer, session.side, EndedBy::CloseNotify);
                    sessions.remove(&peer);
                    self.ended(peer);
                    self.notice(format!("DTLS peer {peer} closed its session"));
                }
                Err(e) => {
                    let from = match session.side {
                        Side::Server => alert::From::Client,
                        Side::Client => alert::From::Server,
                    };
                    let why = match (e.high_level(), session.side) {
                        (Some(codes::SslFatalAlertMessage), _) => {
                            let alert =
                                alert::decrypted(ffi::last_alert(&mut session.ctx), session.alert);
                            let why = alert::session_end(alert, from, renegotiating);
                            self.remember_ending(peer, session.side, EndedBy::Alert(why.clone()));
                            config::with_code(&why, &e)
                        }
                        (_, Side::Server) => config::handshake_failure(&e, session.alert),
                        (_, Side::Client) => config::client_failure(&e, session.alert, false),
                    };
                    if e.high_level() != Some(codes::SslFatalAlertMessage) {
                        self.remember_ending(peer, session.side, EndedBy::Nsh(why.clone()));
                    }
                    sessions.remove(&peer);
                    self.ended(peer);
                    self.failure(format!("DTLS session with {peer} ended: {why}"));
                }
            }
        }
    }

    /// For a CID record from an address without a session: the address of
    /// the session it decrypts for, which has consumed it.
    fn moved_session(
        &self,
        sessions: &mut HashMap<SocketAddr, Session>,
        datagram: &[u8],
        peer: SocketAddr,
    ) -> Option<SocketAddr> {
        let own = self.security.connection_id.as_ref()?;
        let cid = record_cid(datagram, own.len())?;
        let candidates: Vec<SocketAddr> = sessions
            .iter()
            .filter(|(_, s)| s.established && s.own_cid.as_deref() == Some(cid))
            .map(|(a, _)| *a)
            .collect();
        for old in candidates {
            let Some(session) = sessions.get_mut(&old) else {
                continue;
            };
            if let Some(io) = session.ctx.io_mut() {
                io.inbox.push_back(datagram.to_vec());
            }
            // A record that does not decrypt for this session is dropped
            // by mbed TLS without harm; one that does yields its data.
            if let Ok(n) = self.read_records(peer, session)
                && n > 0
            {
                session.last_active = Instant::now();
                return Some(old);
            }
        }
        None
    }

    /// Moves every decrypted record of a session to `pending` (as from
    /// `peer`); how many.
    fn read_records(&self, peer: SocketAddr, session: &mut Session) -> mbedtls::Result<usize> {
        let mut buf = lock(&self.plain);
        let mut count = 0;
        loop {
            let (r, _) = ffi::stepping(peer, || Io::recv(&mut session.ctx, &mut buf));
            match r {
                Ok(n) => {
                    count += 1;
                    lock(&self.pending).push_back((buf[..n].to_vec(), peer));
                }
                Err(e) if e.high_level() == Some(codes::SslWantRead) => return Ok(count),
                Err(e) => return Err(e),
            }
        }
    }

    /// A datagram from an address without a session: only a handshake
    /// record may start one.
    fn start(&self, datagram: Vec<u8>, from: SocketAddr) {
        let peer = canonical(from);
        if self.leftover(peer, &datagram) {
            return;
        }
        if datagram.first() != Some(&CONTENT_TYPE_HANDSHAKE) {
            self.failure(format!(
                "DTLS: dropped a {}-byte datagram from {peer}: no session and not a handshake",
                datagram.len()
            ));
            return;
        }
        let Some(tls) = &self.server_tls else {
            self.failure(format!(
                "DTLS: refused a ClientHello from {peer}: nsh has no certificate to serve with (this socket was opened by `connect` with CAs only)"
            ));
            return;
        };
        let mut ctx = Context::new(tls.config.clone());
        ctx.set_timer_callback(Box::new(Timer::new()));
        ctx.set_client_transport_id_once(peer.to_string().as_bytes());
        if let Some(cid) = &tls.own_cid
            && let Err(e) = ffi::offer_cid(&mut ctx, cid)
        {
            self.failure(format!("DTLS: Connection ID refused by mbed TLS ({e})"));
        }
        let alert = alert::in_datagram(&datagram);
        let io = PeerIo {
            outbox: self.outbox.clone(),
            addr: from,
            inbox: VecDeque::from([datagram]),
        };
        let (outcome, identity) = ffi::stepping(peer, || ctx.establish(io, None));
        let mut session = Session {
            ctx,
            side: Side::Server,
            established: false,
            identity,
            own_cid: None,
            last_active: Instant::now(),
            alert,
            handshake_after: false,
            last_heard: Instant::now(),
            outside: None,
        };
        if self.after_handshake(peer, &mut session, outcome) {
            if session.established && self.read_records(peer, &mut session).is_err() {
                return;
            }
            lock(&self.endings).remove(&peer);
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
                session.last_active = Instant::now();
                if let Ok(Some(chain)) = session.ctx.peer_cert()
                    && let Some(cert) = chain.iter().next()
                    && let Ok(subject) = cert.subject()
                {
                    session.identity = Some(subject);
                }
                let peer_cid = ffi::peer_cid(&mut session.ctx);
                if peer_cid.is_some() {
                    session.own_cid = self.security.connection_id.clone();
                }
                let suite = session.ctx.ciphersuite().ok();
                self.notice(config::established_line(
                    "DTLS",
                    peer,
                    suite,
                    session.identity.as_deref(),
                    session.own_cid.as_deref(),
                    peer_cid.as_deref(),
                ));
                true
            }
            Err(e) if e.high_level() == Some(codes::SslWantRead) => true,
            Err(e) if e.high_level() == Some(codes::SslWantWrite) => true,
            // The HelloVerifyRequest went out; the ClientHello with the
            // cookie starts a new session.
            Err(e) if e.high_level() == Some(codes::SslHelloVerifyRequired) => false,
            Err(e) if session.side == Side::Client => {
                let asked = self.security.without_own_certificate()
                    && ffi::certificate_requested(&mut session.ctx);
                let why = config::client_failure(&e, session.alert, asked);
                lock(&self.client_failures).insert(
                    peer,
                    format!("the DTLS handshake with {peer} failed: {why}"),
                );
                self.remember_failed(peer);
                self.failure(format!("DTLS handshake with {peer} failed: {why}"));
                false
            }
            Err(e) => {
                let why = config::handshake_failure(&e, session.alert);
                if let Some(alert) = config::alert_to_send(&e) {
                    // Goes out with the next flush.
                    let (records, _) =
                        ffi::stepping(peer, || ffi::fatal_alert(&mut session.ctx, alert));
                    let to = self.udp.socket_addr(peer);
                    lock(&self.outbox).extend(records.into_iter().map(|r| (r, to)));
                }
                self.remember_failed(peer);
                self.failure(format!("DTLS handshake with {peer} failed: {why}"));
                false
            }
        }
    }

    /// Notes how `peer`'s session (nsh's `side` of it) ended now.
    fn remember_ending(&self, peer: SocketAddr, side: Side, by: EndedBy) {
        let mut endings = lock(&self.endings);
        if endings.len() >= ENDED_PEERS
            && !endings.contains_key(&peer)
            && let Some(oldest) = endings.iter().min_by_key(|(_, e)| e.at).map(|(p, _)| *p)
        {
            endings.remove(&oldest);
        }
        endings.insert(
            peer,
            Ending {
                at: SystemTime::now(),
                side,
                by,
            },
        );
    }

    /// Notes that `peer`'s handshake failed: what it still sends of that
    /// handshake is dropped quietly (see [`DtlsTransport::leftover`]).
    fn remember_failed(&self, peer: SocketAddr) {
        let mut failed = lock(&self.failed);
        if failed.len() >= LEFTOVER_PEERS {
            failed.retain(|_, at| at.elapsed() < LEFTOVER_WINDOW);
        }
        if failed.len() < LEFTOVER_PEERS {
            failed.insert(peer, Instant::now());
        }
    }

    /// Whether `datagram`, from `peer` without a session, is what is left
    /// of a handshake that failed lately (the rest of its flight, or a
    /// retransmission): dropped without a line. A ClientHello starts
    /// afresh.
    fn leftover(&self, peer: SocketAddr, datagram: &[u8]) -> bool {
        let mut failed = lock(&self.failed);
        let Some(at) = failed.get(&peer) else {
            return false;
        };
        let hello = datagram.first() == Some(&CONTENT_TYPE_HANDSHAKE)
            && datagram.get(RECORD_HEADER) == Some(&HANDSHAKE_CLIENT_HELLO);
        if hello || at.elapsed() >= LEFTOVER_WINDOW {
            failed.remove(&peer);
            return false;
        }
        true
    }

    /// Lets unfinished handshakes retransmit or time out.
    fn drive_handshakes(&self) {
        let mut sessions = lock(&self.sessions);
        let mut failed = Vec::new();
        for (peer, session) in sessions.iter_mut().filter(|(_, s)| !s.established) {
            let (outcome, identity) = ffi::stepping(*peer, || session.ctx.handshake());
            if identity.is_some() {
                session.identity = identity;
            }
            if !self.after_handshake(*peer, session, outcome) {
                failed.push(*peer);
            }
        }
        for peer in failed {
            sessions.remove(&peer);
        }
    }

    /// Ends sessions idle for longer than the idle timeout (checked once a
    /// second).
    fn sweep_idle(&self) {
        {
            let mut last = lock(&self.last_sweep);
            if last.elapsed() < Duration::from_secs(1) {
                return;
            }
            *last = Instant::now();
        }
        let limit = self.security.idle_timeout;
        let mut sessions = lock(&self.sessions);
        let idle: Vec<(SocketAddr, Side)> = sessions
            .iter()
            .filter(|(_, s)| s.established && s.last_active.elapsed() >= limit)
            .map(|(p, s)| (*p, s.side))
            .collect();
        for (peer, side) in idle {
            let why = format!("idle for {} s", limit.as_secs());
            self.remember_ending(peer, side, EndedBy::Nsh(why));
            sessions.remove(&peer);
            self.ended(peer);
            self.notice(format!(
                "DTLS session with {peer} ended: idle for {} s",
                limit.as_secs()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbedtls::rng::{CtrDrbg, OsEntropy};
    use mbedtls::ssl::Config;
    use mbedtls::ssl::config::{Endpoint, Preset, Transport as TransportKind};
    use mbedtls::ssl::io::ConnectedUdpSocket;
    use std::net::UdpSocket;
    use std::sync::atomic::AtomicBool;
    use std::sync::atomic::Ordering;

    fn psk() -> Security {
        Security::psk(Psk {
            identity: "user".into(),
            key: b"password".to_vec(),
        })
    }

    /// An echo server on the transport, until the flag is set.
    fn echo_server() -> (
        Arc<DtlsTransport>,
        Arc<AtomicBool>,
        std::thread::JoinHandle<()>,
    ) {
        echo_server_with(&psk())
    }

    fn echo_server_with(
        security: &Security,
    ) -> (
        Arc<DtlsTransport>,
        Arc<AtomicBool>,
        std::thread::JoinHandle<()>,
    ) {
        let server = Arc::new(DtlsTransport::bind(0, false, security).unwrap());
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
        client_from(UdpSocket::bind("127.0.0.1:0").unwrap(), port, key)
    }

    fn client_from(
        sock: UdpSocket,
        port: u16,
        key: &[u8],
    ) -> mbedtls::Result<Context<ConnectedUdpSocket>> {
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
        assert_eq!(
            e.to_string(),
            "no DTLS session with 127.0.0.1:9 (none was made, or it ended: a device makes one by registering; `connect` makes one with a DTLS server)"
        );
    }

    #[test]
    fn a_stray_non_handshake_datagram_is_dropped_with_a_notice() {
        let server = DtlsTransport::bind(0, false, &psk()).unwrap();
        let (_, notices) = notices_after(&server, &[0x40, 0x01, 0x00, 0x01]);
        assert!(notices[0].contains("not a handshake"), "{notices:?}");
    }

    /// Sends `datagram` to `server` from a new socket; the server delivers
    /// nothing within 2 s. The sender's address, and the notices then.
    fn notices_after(server: &DtlsTransport, datagram: &[u8]) -> (SocketAddr, Vec<String>) {
        let port = server.local_addr().unwrap().port();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(datagram, ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 64];
        assert!(
            server
                .recv(&mut buf, Duration::from_secs(2))
                .unwrap()
                .is_none()
        );
        (c.local_addr().unwrap(), server.take_notices())
    }

    /// Waits up to 5 s (while the server runs) for a notice containing
    /// `what`; all notices seen.
    fn wait_notice(server: &DtlsTransport, what: &str) -> Vec<String> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            seen.extend(server.take_notices());
            if seen.iter().any(|n| n.contains(what)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        seen
    }

    #[test]
    fn sending_after_the_peer_closed_its_session_says_so_and_when() {
        let (server, stop, t) = echo_server();
        let port = server.local_addr().unwrap().port();
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let mut c = client_from(sock, port, b"password").unwrap();
        assert_eq!(exchange(&mut c, "hi"), "echo:hi");
        // Dropped, the context sends close_notify.
        drop(c);
        let seen = wait_notice(&server, "closed its session");
        assert!(
            seen.contains(&format!("DTLS peer {addr} closed its session")),
            "{seen:?}"
        );
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
        let e = server.send_to(b"x", addr).unwrap_err().to_string();
        let start = format!("the DTLS client {addr} closed its session (close_notify) at ");
        assert!(e.starts_with(&start), "{e}");
        assert!(
            e.ends_with(" s ago); a device makes a new one by registering"),
            "{e}"
        );
    }

    #[test]
    fn a_rebooted_client_on_the_same_port_starts_a_new_session() {
        let (server, stop, t) = echo_server();
        let port = server.local_addr().unwrap().port();
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let same_port = sock.try_clone().unwrap();
        let mut first = client_from(sock, port, b"password").unwrap();
        assert_eq!(exchange(&mut first, "before"), "echo:before");
        // Gone without close_notify (dropping the context would send one);
        // the same address handshakes again.
        std::mem::forget(first);
        let mut second = client_from(same_port, port, b"password").unwrap();
        assert_eq!(exchange(&mut second, "after"), "echo:after");
        let notices = wait_notice(&server, "starts a new session");
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
        assert!(
            notices
                .iter()
                .any(|n| n == &format!("DTLS peer {addr} starts a new session (the old one ends)")),
            "{notices:?}"
        );
        assert_eq!(
            server
                .take_ended()
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<_>>(),
            vec![addr]
        );
        assert_eq!(server.session_count(), (1, 0));
    }

    #[test]
    fn an_idle_session_ends_after_the_idle_timeout() {
        let mut security = psk();
        security.idle_timeout = Duration::from_secs(1);
        let (server, stop, t) = echo_server_with(&security);
        let port = server.local_addr().unwrap().port();
        let mut one = client(port, b"password").unwrap();
        assert_eq!(exchange(&mut one, "hi"), "echo:hi");
        let notices = wait_notice(&server, "idle for 1 s");
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
        assert!(
            notices.iter().any(|n| n.ends_with("ended: idle for 1 s")),
            "{notices:?}"
        );
        assert_eq!(server.session_count(), (0, 0));
    }

    /// The first flight of a real client: its ClientHello.
    fn client_hello() -> Vec<u8> {
        struct Capture(Vec<Vec<u8>>);
        impl Io for Capture {
            fn recv(&mut self, _: &mut [u8]) -> mbedtls::Result<usize> {
                Err(codes::SslWantRead.into())
            }
            fn send(&mut self, buf: &[u8]) -> mbedtls::Result<usize> {
                self.0.push(buf.to_vec());
                Ok(buf.len())
            }
        }
        let rng = CtrDrbg::new(Arc::new(OsEntropy::new()), None).unwrap();
        let mut config = Config::new(Endpoint::Client, TransportKind::Datagram, Preset::Default);
        config.set_rng(Arc::new(rng));
        config.set_psk(b"password", "user").unwrap();
        let mut ctx = Context::new(Arc::new(config));
        ctx.set_timer_callback(Box::new(Timer::new()));
        assert!(ctx.establish(Capture(Vec::new()), None).is_err());
        ctx.io_mut().unwrap().0[0].clone()
    }

    #[test]
    fn a_thousand_abandoned_client_hellos_leave_no_state() {
        let (server, stop, t) = echo_server();
        let port = server.local_addr().unwrap().port();
        let hello = client_hello();
        assert_eq!(hello[0], CONTENT_TYPE_HANDSHAKE);
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut answered = 0;
        for _ in 0..1000 {
            // From new source ports: 1,000 would-be clients, each answered
            // with a HelloVerifyRequest and forgotten.
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.send_to(&hello, ("127.0.0.1", port)).unwrap();
            let mut buf = [0u8; 512];
            if s.recv(&mut buf).is_ok_and(|n| n > 13 && buf[13] == 3) {
                answered += 1; // handshake type 3: HelloVerifyRequest
            }
        }
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
        assert_eq!(answered, 1000);
        assert_eq!(server.session_count(), (0, 0));
        assert!(server.take_notices().is_empty());
    }

    #[test]
    fn a_flood_of_failures_is_summed_up_not_printed_line_by_line() {
        let (server, stop, t) = echo_server();
        let port = server.local_addr().unwrap().port();
        let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..200u8 {
            junk.send_to(&[0x40, 0x01, 0x00, i], ("127.0.0.1", port))
                .unwrap();
        }
        let notices = wait_notice(&server, "more failed handshakes");
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
        let shown = notices
            .iter()
            .filter(|n| n.contains("not a handshake"))
            .count();
        assert_eq!(shown as u32, FAILURE_LINES_PER_SECOND + 1, "{notices:?}");
        let summary = notices.last().unwrap();
        assert!(
            summary.starts_with("DTLS: 195 more failed handshakes or ended sessions not shown (the last: DTLS: dropped a 4-byte datagram"),
            "{notices:?}"
        );
    }

    /// Drives `client`'s socket until `done` or 5 s have passed.
    fn drive(client: &DtlsTransport, mut done: impl FnMut(&DtlsTransport) -> bool) {
        let mut buf = [0u8; 256];
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(client) && Instant::now() < deadline {
            let _ = client.recv(&mut buf, Duration::from_millis(20));
        }
    }

    #[test]
    fn a_silent_server_or_one_speaking_outside_the_session_is_told() {
        let (server, stop, t) = echo_server();
        let port = server.local_addr().unwrap().port();
        let peer: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let client = DtlsTransport::bind(0, false, &psk()).unwrap();
        let me: SocketAddr = format!("127.0.0.1:{}", client.local_addr().unwrap().port())
            .parse()
            .unwrap();
        client.open(peer).unwrap();
        drive(&client, |c| c.is_established(peer));
        assert!(client.is_established(peer));
        // Nothing came since: the hint.
        let since = Instant::now();
        std::thread::sleep(Duration::from_millis(10));
        let hint = client.client_silence(peer, since).unwrap();
        assert!(
            hint.starts_with(&format!(
                "nothing at all came from {peer} since the request"
            )),
            "{hint}"
        );
        // The server answers within the session: no hint.
        client.send_to(b"hi", peer).unwrap();
        let mut buf = [0u8; 256];
        let mut got = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.is_none() && Instant::now() < deadline {
            got = client.recv(&mut buf, Duration::from_millis(20)).unwrap();
        }
        assert_eq!(got.map(|(n, _)| &buf[..n]), Some(&b"echo:hi"[..]));
        assert_eq!(client.client_silence(peer, since), None);
        // A plaintext alert of epoch 0 (mbed TLS drops it): named.
        let since = Instant::now();
        server
            .send_raw(&[21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0, 2, 2, 50], me)
            .unwrap();
        drive(&client, |c| {
            c.client_silence(peer, since)
                .is_some_and(|h| !h.starts_with("nothing"))
        });
        let hint = client.client_silence(peer, since).unwrap();
        assert_eq!(
            hint,
            format!(
                "{peer} sent fatal alert decode_error (50) outside the DTLS session since the request: the server may have lost nsh's session (restarted?); `connect` again makes a new session"
            )
        );
        // Only nsh's client sessions get words: not a device's.
        assert_eq!(server.client_silence(me, since), None);
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();
    }

    #[test]
    fn a_socket_without_a_certificate_of_its_own_refuses_client_hellos() {
        let ca_only = Security::with(Credentials::Certificate(CertificateFiles {
            own: None,
            ca: Some(CaSource::File("tests/fixtures/certs/ca.crt".into())),
        }));
        let server = DtlsTransport::bind(0, false, &ca_only).unwrap();
        let (from, notices) = notices_after(&server, &client_hello());
        assert_eq!(
            notices,
            vec![format!(
                "DTLS: refused a ClientHello from {from}: nsh has no certificate to serve with (this socket was opened by `connect` with CAs only)"
            )]
        );
        assert_eq!(server.session_count(), (0, 0));
    }

    #[test]
    fn raw_datagrams_go_out_unencrypted() {
        let server = DtlsTransport::bind(0, false, &psk()).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        server
            .send_raw(&[0x17, 0xfe, 0xfd, 0xde, 0xad], peer.local_addr().unwrap())
            .unwrap();
        let mut buf = [0u8; 16];
        let n = peer.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0x17, 0xfe, 0xfd, 0xde, 0xad]);
    }
}
