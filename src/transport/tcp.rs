//! CoAP over TCP (RFC 8323), plain or over TLS 1.2 (`coaps+tcp`, RFC 8323
//! §9): a listening socket and all its connections, served by one event
//! loop thread (readiness from `mio`, edge-triggered). A peer is its
//! connection's remote address. The loop holds every connection's socket
//! (or TLS session) and its reading and writing state; what other threads
//! see — the open connections, their send queues, the notices — is shared
//! under locks, and [`TcpTransport::send_to`] wakes the loop.
//!
//! Frames that arrive split or coalesced are reassembled (with
//! [`decode_frame`]) and delivered whole, in arrival order, through one
//! bounded channel. While it is full, the loop stops reading the connection
//! whose frames are waiting, and TCP flow control holds its peer back; the
//! connection remembers that it was not drained, and reading resumes once
//! [`TcpTransport::recv`] made room (and woke the loop). A connection reads
//! a bounded amount per turn, so one busy peer does not starve the others.
//! What is left over when a connection ends — a partial frame — is still
//! delivered, as bytes that do not decode, before the connection is
//! reported closed; and frames still waiting for room when nsh itself ends
//! a connection (its send queue full, a stalled write) are delivered all
//! the same.
//!
//! A frame that does not decode, or the start of one over [`MAX_FRAME`]
//! (the Max-Message-Size nsh announces), is delivered like any other, and
//! the connection is read no further: its answer is an Abort (RFC 8323
//! §5.6), which the server layer sends before it asks for the connection
//! to be closed ([`TcpTransport::close_after_sending`]); without that
//! request within [`Limits::answer_timeout`] it is closed all the same.
//! Closing so, nsh writes what was queued, then ends its side (TLS:
//! close_notify) and reads and drops what the peer still sends until the
//! peer ends its side too, for up to [`LINGER`], so the peer reads every
//! frame before it learns of the end (closing a socket with unread bytes
//! would reset the connection, and the peer could lose them).
//!
//! Sending never blocks on a peer: [`TcpTransport::send_to`] puts the frame
//! on the connection's bounded queue and returns; the loop writes frames
//! whole, one after the other, as far as the socket takes them, and goes on
//! when it is writable again. A peer that does not keep up loses its
//! connection, never the others their traffic: when its queue is full, or a
//! write fails or makes no progress for [`Limits::write_timeout`], the
//! connection is shut down (so a frame cut short is never followed by more
//! bytes), with one notice naming the peer and the cause, and the peer is
//! reported by [`TcpTransport::take_closed`].
//!
//! Over TLS (with a [`Security`], the same settings as DTLS: PSK table or
//! certificates, cipher suites), the loop drives each connection's mbed TLS
//! session without blocking: the server handshake is stepped on readiness,
//! up to [`HANDSHAKE_TIMEOUT`]; a write mbed TLS could not finish is retried
//! with the same bytes; reads go on until mbed TLS wants more from the
//! socket, since it may hold decrypted bytes. The connection is reported to
//! [`TcpTransport::take_accepted`] only once its handshake succeeded, with
//! one notice naming the cipher suite and the identity (PSK identity or
//! certificate subject, kept for [`TcpTransport::identity`]); a failed
//! handshake is one notice naming the peer and the cause (in words for a
//! plain CoAP client at a TLS port, for a connection closed before or
//! during the handshake, and for the fatal alert the client sent, read off
//! the records it sent), and the connection is closed without being
//! reported accepted or closed: after the fatal alert due (nsh's own
//! `handshake_failure` to a client without the certificate required,
//! where mbed TLS sends none), with the rest of the client's flight read,
//! so the close does not reset the connection before the client read it.
//!
//! nsh also opens connections itself ([`TcpTransport::dial`], plain TCP
//! only): the socket connects without blocking, the loop sees it through,
//! up to [`DIAL_TIMEOUT`], and from then on it is a connection like an
//! accepted one (reported to [`TcpTransport::take_accepted`], with one
//! notice); a connection that could not be opened is told by
//! [`TcpTransport::dial_state`], without a notice.
//!
//! Per-connection state (the map entry, the queue, the socket, the TLS
//! session) ends with the connection; only when and why it closed is kept,
//! for the error of a later send to that peer, until a new connection with
//! it (for the last [`GONE_PEERS`] peers). Connections over
//! [`Limits::max_connections`] are refused. Every
//! limit is in [`Limits`]. When accepting fails (no file descriptor left),
//! one notice says so, and the loop tries again shortly until every waiting
//! connection was accepted.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use mbedtls::error::codes;
use mbedtls::ssl::Context;
use mbedtls::ssl::config::Transport as TransportKind;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::dtls::alert::{self, StreamWatch};
use super::dtls::config::{self, Side, Tls};
use super::dtls::{Security, ffi};
use super::udp::{MAX_DATAGRAM, canonical};
use crate::coap::tcp::{Frame, decode_frame};

/// The largest frame nsh accepts (and announces as Max-Message-Size).
pub const MAX_FRAME: usize = MAX_DATAGRAM;

/// At most this many closed connections' peers are remembered with when
/// and why they closed (the oldest go first).
pub const GONE_PEERS: usize = 4096;

/// How long `recv` sleeps when the loop is gone.
const POLL: Duration = Duration::from_millis(50);

/// TLS record content type of a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 22;

/// How long a TLS handshake may take, from the accept to the Finished.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long opening a connection to a peer may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the loop waits before accepting again after accepting failed.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The bytes one read takes at most.
const CHUNK: usize = 16 * 1024;

/// How long a connection nsh closed (after an Abort, a Release) waits for
/// its peer to end its side, what the peer sends meanwhile dropped.
pub const LINGER: Duration = Duration::from_secs(2);

/// Reads one connection does in one turn before the others get theirs.
const READS_PER_TURN: usize = 16;

/// The listening socket's token; the waker's; connections count from
/// `FIRST_ID` (a connection's token is its id).
const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_ID: u64 = 2;

/// How much a connection may hold back, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Frames waiting for the writer; one more closes the connection.
    pub queue_frames: usize,
    /// How long one write may make no progress before the connection is
    /// closed.
    pub write_timeout: Duration,
    /// Connections open at once; more are refused (closed at once).
    pub max_connections: usize,
    /// Frames received and not yet taken by `recv`, all connections
    /// together. While this many wait, the loop stops reading, and TCP
    /// holds the peers back.
    pub received_frames: usize,
    /// How long a connection whose reading stopped at a frame nsh cannot
    /// take waits for [`TcpTransport::close_after_sending`] before it is
    /// closed anyway.
    pub answer_timeout: Duration,
}

impl Default for Limits {
    /// 128 frames, 5 s, 10,000 connections, 1024 received frames, 5 s.
    fn default() -> Self {
        Limits {
            queue_frames: 128,
            write_timeout: Duration::from_secs(5),
            max_connections: 10_000,
            received_frames: 1024,
            answer_timeout: Duration::from_secs(5),
        }
    }
}

enum Event {
    /// A connection was accepted or closed by nsh (wakes `recv`; the
    /// notice is already out).
    Accepted,
    Frame(Vec<u8>, SocketAddr),
    /// Connection `id` was read to its end, after delivering its frames.
    Closed(SocketAddr, u64, String),
}

/// What other threads see of one open connection: its id, the frames
/// waiting for the loop to write them, over TLS the identity its peer
/// authenticated with, and once nsh asked for it to be closed, the end of
/// the line that will say so.
#[derive(Debug)]
struct Entry {
    id: u64,
    queue: VecDeque<Vec<u8>>,
    identity: Option<String>,
    closing: Option<String>,
}

impl Entry {
    /// Connection `id`, just opened: nothing queued, no identity yet.
    fn new(id: u64) -> Self {
        Entry {
            id,
            queue: VecDeque::new(),
            identity: None,
            closing: None,
        }
    }
}

/// What the transport shares with its loop. Lock order: `connections`
/// before any of the lists.
#[derive(Debug)]
struct Shared {
    connections: Mutex<HashMap<SocketAddr, Entry>>,
    accepted: Mutex<Vec<SocketAddr>>,
    /// Closed connections' peers, each with its notice line.
    closed: Mutex<Vec<(SocketAddr, String)>>,
    /// When and why each closed connection's peer lost it, until a new
    /// connection with it.
    gone: Mutex<HashMap<SocketAddr, (SystemTime, String)>>,
    notices: Mutex<Vec<String>>,
    /// Connections the loop is to look at: a frame was queued on an empty
    /// queue, or the connection was closed outside the loop.
    nudged: Mutex<Vec<u64>>,
    /// Connections nsh opens, for the loop to see through.
    dials: Mutex<Vec<(SocketAddr, TcpStream)>>,
    /// Connections being opened (`None`), or that could not be, and why.
    dialing: Mutex<HashMap<SocketAddr, Option<String>>>,
    waker: Waker,
    /// Set when the loop was woken and has not yet looked at `nudged`.
    woken: AtomicBool,
    /// Set while the loop holds frames back for want of room in the
    /// received-frames channel: `recv` wakes it when it takes one.
    wants_room: AtomicBool,
    stop: AtomicBool,
    /// Connections the loop still reads (their end not yet delivered).
    reading: AtomicUsize,
    /// "TLS" over TLS, else "TCP": how notices name a connection.
    label: &'static str,
}

impl Shared {
    /// Ends connection `id` with `peer` if it is still open: forgets it,
    /// says why, once, and has the loop shut its socket down. False when it
    /// was already closed.
    fn close(&self, peer: SocketAddr, id: u64, why: &str) -> bool {
        let line = format!("{} connection with {peer} closed: {why}", self.label);
        self.close_saying(peer, id, line, true)
    }

    /// Like [`Shared::close`] with the whole notice line; `listed`: whether
    /// the peer goes to `closed` with the line (not when it was never
    /// accepted).
    fn close_saying(&self, peer: SocketAddr, id: u64, line: String, listed: bool) -> bool {
        {
            // Forgotten, said and listed at once: whoever sees it gone from
            // `connections` also finds its notice and its `closed` entry.
            let mut connections = lock(&self.connections);
            match connections.get(&peer) {
                Some(c) if c.id == id => connections.remove(&peer),
                _ => return false,
            };
            if listed {
                let why = line
                    .split_once(" closed: ")
                    .map_or(line.as_str(), |(_, w)| w);
                let mut gone = lock(&self.gone);
                if gone.len() >= GONE_PEERS
                    && !gone.contains_key(&peer)
                    && let Some(oldest) =
                        gone.iter().min_by_key(|(_, (at, _))| *at).map(|(p, _)| *p)
                {
                    gone.remove(&oldest);
                }
                gone.insert(peer, (SystemTime::now(), why.to_string()));
                drop(gone);
                lock(&self.closed).push((peer, line.clone()));
            }
            lock(&self.notices).push(line);
        }
        self.nudge(id);
        true
    }

    /// Has the loop look at connection `id`.
    fn nudge(&self, id: u64) {
        lock(&self.nudged).push(id);
        self.wake();
    }

    /// Wakes the loop, unless it was woken already.
    fn wake(&self) {
        if !self.woken.swap(true, Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }
}

/// Where a connection nsh opens stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dial {
    /// Still being opened.
    Pending,
    /// Open.
    Open,
    /// It could not be opened, and why.
    Failed(String),
}

/// The TLS configuration connections are served with, and the settings it
/// was built from. The loop holds it (and with it the PSK table) until
/// every session is gone.
struct TlsServer {
    tls: Tls,
    security: Security,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("security", &self.security.describe())
            .finish_non_exhaustive()
    }
}

/// A listening TCP socket and its connections.
#[derive(Debug)]
pub struct TcpTransport {
    local: SocketAddr,
    limits: Limits,
    shared: Arc<Shared>,
    events: Mutex<Receiver<Event>>,
    tls: Option<Arc<TlsServer>>,
    event_loop: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TcpTransport {
    /// Listens on `port` on all addresses: `[::]` (dual-stack) when `ipv6`,
    /// else `0.0.0.0`. Port 0 picks a free port.
    pub fn bind(port: u16, ipv6: bool) -> io::Result<Self> {
        let ip: IpAddr = if ipv6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        Self::bind_addr(SocketAddr::new(ip, port))
    }

    /// Listens on an exact address.
    pub fn bind_addr(addr: SocketAddr) -> io::Result<Self> {
        Self::bind_with(addr, Limits::default())
    }

    /// Like [`TcpTransport::bind`], serving TLS 1.2 on every connection
    /// with `security` (CoAP over TLS, `coaps+tcp`). Errors name the file
    /// or value at fault.
    pub fn bind_secure(port: u16, ipv6: bool, security: &Security) -> io::Result<Self> {
        let ip: IpAddr = if ipv6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        Self::bind_tls(SocketAddr::new(ip, port), Limits::default(), Some(security))
    }

    /// Listens on an exact address, with these limits for each connection.
    /// Zero frames or a zero timeout are taken as the smallest that work
    /// (one frame, one millisecond).
    pub fn bind_with(addr: SocketAddr, limits: Limits) -> io::Result<Self> {
        Self::bind_tls(addr, limits, None)
    }

    /// Listens on an exact address with these limits, over TLS when
    /// `security` is given.
    pub fn bind_tls(
        addr: SocketAddr,
        limits: Limits,
        security: Option<&Security>,
    ) -> io::Result<Self> {
        Self::open(addr, limits, security, HANDSHAKE_TIMEOUT)
    }

    /// [`TcpTransport::bind_tls`], with `handshake` as the time a TLS
    /// handshake may take.
    fn open(
        addr: SocketAddr,
        limits: Limits,
        security: Option<&Security>,
        handshake: Duration,
    ) -> io::Result<Self> {
        let tls = match security {
            Some(s) => Some(Arc::new(TlsServer {
                tls: config::build_for(s, Side::Server, TransportKind::Stream)
                    .map_err(io::Error::other)?,
                security: s.clone(),
            })),
            None => None,
        };
        let limits = Limits {
            queue_frames: limits.queue_frames.max(1),
            write_timeout: limits.write_timeout.max(Duration::from_millis(1)),
            max_connections: limits.max_connections,
            received_frames: limits.received_frames.max(1),
            answer_timeout: limits.answer_timeout.max(Duration::from_millis(1)),
        };
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let (tx, rx) = mpsc::sync_channel(limits.received_frames);
        let shared = Arc::new(Shared {
            connections: Mutex::default(),
            accepted: Mutex::default(),
            closed: Mutex::default(),
            gone: Mutex::default(),
            notices: Mutex::default(),
            nudged: Mutex::default(),
            dials: Mutex::default(),
            dialing: Mutex::default(),
            waker,
            woken: AtomicBool::new(false),
            wants_room: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            reading: AtomicUsize::new(0),
            label: if tls.is_some() { "TLS" } else { "TCP" },
        });
        let (sh, t) = (shared.clone(), tls.clone());
        let event_loop = std::thread::Builder::new()
            .name("nsh-tcp".into())
            .spawn(move || {
                Loop {
                    conns: HashMap::new(),
                    poll,
                    listener,
                    env: Env {
                        limits,
                        shared: sh,
                        tx,
                        chunk: vec![0u8; CHUNK],
                    },
                    next_id: FIRST_ID,
                    blocked: VecDeque::new(),
                    orphans: VecDeque::new(),
                    again: VecDeque::new(),
                    next_deadline: None,
                    accept_retry: None,
                    accept_failing: false,
                    handshake,
                    tls: t,
                }
                .run()
            })?;
        Ok(TcpTransport {
            local,
            limits,
            shared,
            events: Mutex::new(rx),
            tls,
            event_loop: Some(event_loop),
        })
    }

    /// The TLS settings connections are served with; `None` for plain TCP.
    pub fn security(&self) -> Option<&Security> {
        self.tls.as_ref().map(|t| &t.security)
    }

    /// The identity the peer of an open TLS connection authenticated with
    /// (PSK identity or certificate subject); `None` for plain TCP.
    pub fn identity(&self, peer: SocketAddr) -> Option<String> {
        lock(&self.shared.connections)
            .get(&canonical(peer))
            .and_then(|c| c.identity.clone())
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Queues one whole frame for the connection with `peer` and returns at
    /// once; the loop sends it after the frames queued before it. An error
    /// when there is no open connection with `peer` (saying when and why
    /// the last one closed, if one did), or when its queue is full — which
    /// closes that connection (see [`TcpTransport::take_closed`]).
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        let peer = canonical(peer);
        let mut connections = lock(&self.shared.connections);
        let Some(entry) = connections.get_mut(&peer) else {
            let why = match lock(&self.shared.gone).get(&peer) {
                Some((at, why)) => format!(
                    "the {} connection with {peer} closed {}: {why}",
                    self.shared.label,
                    super::at_and_ago(*at, SystemTime::now())
                ),
                None => format!("no TCP connection with {peer}"),
            };
            return Err(io::Error::new(io::ErrorKind::NotConnected, why));
        };
        let id = entry.id;
        if entry.queue.len() < self.limits.queue_frames {
            // A queue that was not empty is already the loop's to write.
            let first = entry.queue.is_empty();
            entry.queue.push_back(bytes.to_vec());
            drop(connections);
            if first {
                self.shared.nudge(id);
            }
            return Ok(());
        }
        drop(connections);
        let why = format!(
            "send queue full ({} frames waiting; the peer is not reading)",
            self.limits.queue_frames
        );
        self.shared.close(peer, id, &why);
        Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!("TCP connection with {peer} closed: {why}"),
        ))
    }

    /// Opens a connection to `peer` as its client (plain TCP), without
    /// waiting: see [`TcpTransport::dial_state`]. Nothing when one is open
    /// (or being opened) already.
    pub fn dial(&self, peer: SocketAddr) -> io::Result<()> {
        if self.tls.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "nsh opens no TLS connection over TCP (coaps+tcp) as the client",
            ));
        }
        let peer = canonical(peer);
        if lock(&self.shared.connections).contains_key(&peer) {
            return Ok(());
        }
        let mut dialing = lock(&self.shared.dialing);
        if dialing.get(&peer).is_some_and(Option::is_none) {
            return Ok(());
        }
        let stream = TcpStream::connect(peer)?;
        dialing.insert(peer, None);
        drop(dialing);
        lock(&self.shared.dials).push((peer, stream));
        self.shared.wake();
        Ok(())
    }

    /// Where the connection [`TcpTransport::dial`] opens to `peer` stands;
    /// a failure is told once.
    pub fn dial_state(&self, peer: SocketAddr) -> Dial {
        let peer = canonical(peer);
        let mut dialing = lock(&self.shared.dialing);
        match dialing.get(&peer) {
            Some(None) => Dial::Pending,
            Some(Some(_)) => match dialing.remove(&peer) {
                Some(Some(why)) => Dial::Failed(why),
                _ => Dial::Pending,
            },
            None if lock(&self.shared.connections).contains_key(&peer) => Dial::Open,
            None => Dial::Failed(format!("no TCP connection with {peer}")),
        }
    }

    /// Closes the connection with `peer` once the frames queued for it
    /// went out (and the one being written): nsh ends its side, the
    /// connection is reported closed with `why` (`TCP connection with …
    /// closed: WHY`), and what the peer still sends is dropped until it
    /// ends its side too (for up to [`LINGER`]). Nothing when there is no
    /// open connection with `peer`.
    pub fn close_after_sending(&self, peer: SocketAddr, why: &str) {
        let peer = canonical(peer);
        let mut connections = lock(&self.shared.connections);
        let Some(entry) = connections.get_mut(&peer) else {
            return;
        };
        entry.closing.get_or_insert_with(|| why.to_string());
        let id = entry.id;
        drop(connections);
        self.shared.nudge(id);
    }

    /// Waits up to `timeout` for one whole frame. `Ok(None)` on timeout, and
    /// when a connection was accepted or closed (see
    /// [`TcpTransport::take_accepted`], [`TcpTransport::take_closed`],
    /// [`TcpTransport::take_notices`]).
    pub fn recv(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        let event = lock(&self.events).recv_timeout(timeout);
        if event.is_ok() && self.shared.wants_room.swap(false, Ordering::SeqCst) {
            // Room for one more: the loop delivers what it held back.
            let _ = self.shared.waker.wake();
        }
        match event {
            Ok(Event::Frame(bytes, peer)) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Ok(Some((n, peer)))
            }
            Ok(Event::Accepted) => Ok(None),
            Ok(Event::Closed(peer, id, why)) => {
                self.shared.close(peer, id, &why);
                Ok(None)
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout.min(POLL));
                Ok(None)
            }
        }
    }

    /// Peers whose connection was accepted since the last call.
    pub fn take_accepted(&self) -> Vec<SocketAddr> {
        std::mem::take(&mut *lock(&self.shared.accepted))
    }

    /// Peers whose connection closed since the last call, for whatever
    /// reason (the peer left, a write failed, the queue was full), each
    /// once per connection, with the notice line that says why (`TCP
    /// connection with … closed: closed by the peer`). Whatever the
    /// connection delivered was delivered before.
    pub fn take_closed(&self) -> Vec<(SocketAddr, String)> {
        std::mem::take(&mut *lock(&self.shared.closed))
    }

    /// Notices (connections opened, closed, refused) since the last call.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.shared.notices))
    }

    /// Open connections.
    pub fn peers(&self) -> Vec<SocketAddr> {
        lock(&self.shared.connections).keys().copied().collect()
    }

    /// Connections the loop still reads.
    #[cfg(test)]
    fn reading(&self) -> usize {
        self.shared.reading.load(Ordering::SeqCst)
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        // The loop ends every connection and the listening socket, and
        // stops; it never blocks, so the wait is short.
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.shared.waker.wake();
        if let Some(handle) = self.event_loop.take() {
            let _ = handle.join();
        }
        lock(&self.shared.connections).clear();
    }
}

/// A connection's socket, plain or inside its TLS session.
enum Io {
    Plain(TcpStream),
    Tls {
        ctx: Box<Context<TlsSocket>>,
        /// The socket the session reads and writes (shared with it).
        stream: Arc<TcpStream>,
        /// The records the client sent, for the alert it may have sent.
        seen: Arc<Mutex<StreamWatch>>,
    },
}

impl Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls { ctx, seen, .. } => {
                tls_result(mbedtls::ssl::io::Io::recv(&mut **ctx, buf), |e| {
                    match e.high_level() {
                        Some(codes::SslFatalAlertMessage) => {
                            let seen = lock(seen);
                            let alert = alert::decrypted(ffi::last_alert(&mut **ctx), seen.alert());
                            config::with_code(
                                &alert::session_end(
                                    alert,
                                    alert::From::Client,
                                    seen.renegotiating(),
                                ),
                                e,
                            )
                        }
                        _ => config::with_code("TLS error", e),
                    }
                })
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.write(buf),
            Io::Tls { ctx, .. } => tls_result(mbedtls::ssl::io::Io::send(&mut **ctx, buf), |e| {
                config::with_code("TLS error", e)
            }),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Io::Plain(s) => s.shutdown(Shutdown::Both),
            Io::Tls { stream, .. } => stream.shutdown(Shutdown::Both),
        };
    }

    /// The socket, once nothing else holds it (a TLS session only until
    /// it is closed).
    fn stream(&mut self) -> Option<&mut TcpStream> {
        match self {
            Io::Plain(s) => Some(s),
            Io::Tls { stream, .. } => Arc::get_mut(stream),
        }
    }
}

/// The socket under a TLS session: shared with the connection, so that it
/// outlives a session mbed TLS gave up on (nsh's alert still goes out, and
/// the rest of the client's flight is read off it), and following the
/// records the client sends (mbed TLS tells only that a fatal alert came,
/// not which).
struct TlsSocket {
    stream: Arc<TcpStream>,
    seen: Arc<Mutex<StreamWatch>>,
}

impl mbedtls::ssl::io::Io for TlsSocket {
    fn recv(&mut self, buf: &mut [u8]) -> mbedtls::Result<usize> {
        let n = (&*self.stream).read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => mbedtls::Error::from(codes::SslWantRead),
            _ => codes::NetRecvFailed.into(),
        })?;
        lock(&self.seen).observe(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn send(&mut self, buf: &[u8]) -> mbedtls::Result<usize> {
        (&*self.stream).write(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => mbedtls::Error::from(codes::SslWantWrite),
            _ => codes::NetSendFailed.into(),
        })
    }
}

/// A session's read or write as the socket's would be: the peer's
/// close_notify is the end, "not yet" is `WouldBlock`, any other error
/// in the words `word` gives it.
fn tls_result(
    r: mbedtls::Result<usize>,
    word: impl FnOnce(&mbedtls::Error) -> String,
) -> io::Result<usize> {
    match r {
        Ok(n) => Ok(n),
        Err(e) if e.high_level() == Some(codes::SslPeerCloseNotify) => Ok(0),
        Err(e) if would_block(&e) => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(io::Error::other(word(&e))),
    }
}

/// The loop's own state of one connection.
struct Conn {
    peer: SocketAddr,
    io: Io,
    /// Bytes read that are not yet a whole frame.
    pending: Vec<u8>,
    /// Frames (and at the end the `Closed`) waiting for room in the
    /// received-frames channel; nothing more is read while there are any.
    backlog: VecDeque<Event>,
    /// The end was read (and its `Closed` delivered or in `backlog`).
    read_done: bool,
    /// The frame being written, and how much of it went out.
    out: Option<(Vec<u8>, usize)>,
    /// Since when the socket took nothing more of `out`.
    stalled_since: Option<Instant>,
    /// While the TLS handshake runs: when it is given up.
    handshake_until: Option<Instant>,
    /// The PSK identity the handshake accepted.
    psk_identity: Option<String>,
    /// Listed in the loop's `again`.
    in_again: bool,
    /// Read no further after a frame nsh cannot take: until when nsh may
    /// take to answer it, and why the connection is closed if it does not.
    halted: Option<(Instant, String)>,
    /// nsh ended its side: until when what the peer still sends is read
    /// and dropped.
    linger_until: Option<Instant>,
    /// Opened by nsh and not yet connected: until when it may take.
    dialing_until: Option<Instant>,
}

/// What a turn of reading left.
enum Reading {
    /// Read until the socket had nothing more, or to the end.
    Drained,
    /// Frames wait for room in the channel (`backlog` was empty before).
    Blocked,
    /// The turn ran out with bytes maybe left.
    Again,
    /// A frame nsh cannot take was delivered (or waits in `backlog`):
    /// nothing more is read.
    Halted,
    /// The peer ended its side of a connection nsh had closed.
    Over,
}

/// What writing left.
enum Writing {
    /// Everything queued went out, or the socket takes no more for now.
    Done,
    /// The connection was closed outside the loop: end it.
    Gone,
    /// A write failed, and why.
    Failed(String),
    /// Everything queued went out and nsh asked for the connection to be
    /// closed, saying why.
    Finished(String),
}

/// What the loop's steps share besides the connections.
struct Env {
    limits: Limits,
    shared: Arc<Shared>,
    tx: SyncSender<Event>,
    chunk: Vec<u8>,
}

impl Env {
    /// Sends `event` on, or keeps it in `backlog` while the channel is full
    /// (or earlier events already wait there).
    fn deliver(&self, backlog: &mut VecDeque<Event>, event: Event) {
        if !backlog.is_empty() {
            backlog.push_back(event);
            return;
        }
        if let Err(TrySendError::Full(event)) = self.tx.try_send(event) {
            // Said before trying again: a `recv` in between wakes the loop.
            self.shared.wants_room.store(true, Ordering::SeqCst);
            if let Err(TrySendError::Full(event)) = self.tx.try_send(event) {
                backlog.push_back(event);
            }
        }
    }

    /// Reads connection `id` for one turn, delivering each whole frame.
    fn read(&mut self, conn: &mut Conn, id: u64) -> Reading {
        if conn.linger_until.is_some() {
            return self.read_out(conn);
        }
        if conn.read_done
            || conn.halted.is_some()
            || conn.handshake_until.is_some()
            || !conn.backlog.is_empty()
        {
            return Reading::Drained;
        }
        for _ in 0..READS_PER_TURN {
            let read = conn.io.read(&mut self.chunk);
            match absorb(read, &self.chunk, &mut conn.pending) {
                Absorbed::More => {}
                Absorbed::Nothing => return Reading::Drained,
                Absorbed::End(why) => return self.end_reading(conn, id, why),
            }
            let split = split_frames(&mut conn.pending);
            for f in split.frames {
                self.deliver(&mut conn.backlog, Event::Frame(f, conn.peer));
            }
            if let Some(why) = split.halt {
                // What follows cannot be told apart from it, or is to be
                // ignored (RFC 8323 §5.6).
                conn.pending.clear();
                conn.halted = Some((Instant::now() + self.limits.answer_timeout, why));
                return Reading::Halted;
            }
            if !conn.backlog.is_empty() {
                return Reading::Blocked;
            }
        }
        Reading::Again
    }

    /// Reads and drops what the peer of a connection nsh closed still
    /// sends, until it ends its side.
    fn read_out(&mut self, conn: &mut Conn) -> Reading {
        let Some(stream) = conn.io.stream() else {
            return Reading::Over;
        };
        for _ in 0..READS_PER_TURN {
            match stream.read(&mut self.chunk) {
                Ok(0) => return Reading::Over,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Reading::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Reading::Over,
            }
        }
        Reading::Again
    }

    /// The connection was read to its end: what is left over, then its
    /// `Closed`.
    fn end_reading(&mut self, conn: &mut Conn, id: u64, why: String) -> Reading {
        if !conn.pending.is_empty() {
            let rest = std::mem::take(&mut conn.pending);
            self.deliver(&mut conn.backlog, Event::Frame(rest, conn.peer));
        }
        self.deliver(&mut conn.backlog, Event::Closed(conn.peer, id, why));
        conn.read_done = true;
        self.shared.reading.fetch_sub(1, Ordering::SeqCst);
        if conn.backlog.is_empty() {
            Reading::Drained
        } else {
            Reading::Blocked
        }
    }

    /// Writes what is queued for connection `id`, frame after frame, until
    /// the queue is empty or the socket takes no more.
    fn write(&self, conn: &mut Conn, id: u64, now: Instant) -> Writing {
        if conn.handshake_until.is_some() || conn.linger_until.is_some() {
            return Writing::Done;
        }
        // A frame left half written is not finished on a connection closed
        // meanwhile (its queue full, say): the peer may never read it.
        if conn.out.is_some() {
            let connections = lock(&self.shared.connections);
            if connections.get(&conn.peer).is_none_or(|e| e.id != id) {
                return Writing::Gone;
            }
        }
        loop {
            if conn.out.is_none() {
                let mut connections = lock(&self.shared.connections);
                let (next, closing) = match connections.get_mut(&conn.peer) {
                    Some(e) if e.id == id => (e.queue.pop_front(), e.closing.clone()),
                    _ => return Writing::Gone,
                };
                drop(connections);
                let Some(frame) = next else {
                    conn.stalled_since = None;
                    return match closing {
                        Some(why) => Writing::Finished(why),
                        None => Writing::Done,
                    };
                };
                conn.out = Some((frame, 0));
            }
            let Some((frame, done)) = conn.out.as_mut() else {
                continue;
            };
            if *done >= frame.len() {
                conn.out = None;
                continue;
            }
            match conn.io.write(&frame[*done..]) {
                Ok(0) => return Writing::Failed("write failed: the peer took nothing".into()),
                Ok(n) => {
                    *done += n;
                    conn.stalled_since = None;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.stalled_since.get_or_insert(now);
                    return Writing::Done;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Writing::Failed(format!("write failed: {e}")),
            }
        }
    }
}

/// How a handshake step ended.
enum Shake {
    Pending,
    Done,
    Failed(String),
}

/// The event loop of one listening socket.
struct Loop {
    /// Dropped before `tls`, whose PSK table their sessions point into.
    conns: HashMap<u64, Conn>,
    poll: Poll,
    listener: TcpListener,
    env: Env,
    next_id: u64,
    /// Connections whose frames wait for room in the channel, in order.
    blocked: VecDeque<u64>,
    /// Frames of connections that ended while their frames waited for
    /// room: nothing received is lost, they go first.
    orphans: VecDeque<Event>,
    /// Connections whose turn of reading ran out.
    again: VecDeque<u64>,
    /// No deadline (stalled write, handshake) passes before this.
    next_deadline: Option<Instant>,
    /// When to try accepting again, after accepting failed.
    accept_retry: Option<Instant>,
    /// How long a TLS handshake may take.
    handshake: Duration,
    /// Accepting failed since the backlog was last empty (and that was
    /// said).
    accept_failing: bool,
    tls: Option<Arc<TlsServer>>,
}

impl Loop {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        while !self.env.shared.stop.load(Ordering::SeqCst) {
            if let Err(e) = self.poll.poll(&mut events, self.timeout()) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                lock(&self.env.shared.notices)
                    .push(format!("{} listener stopped: {e}", self.env.shared.label));
                break;
            }
            self.env.shared.woken.store(false, Ordering::SeqCst);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    Token(t) => self.ready(t as u64),
                }
            }
            let nudged = std::mem::take(&mut *lock(&self.env.shared.nudged));
            for id in nudged {
                self.ready(id);
            }
            let dials = std::mem::take(&mut *lock(&self.env.shared.dials));
            for (peer, stream) in dials {
                self.dial(peer, stream);
            }
            self.deliver_blocked();
            for _ in 0..self.again.len() {
                if let Some(id) = self.again.pop_front() {
                    if let Some(conn) = self.conns.get_mut(&id) {
                        conn.in_again = false;
                    }
                    self.read(id);
                }
            }
            let now = Instant::now();
            if self.accept_retry.is_some_and(|t| t <= now) {
                self.accept_retry = None;
                self.accept_all();
            }
            if self.next_deadline.is_some_and(|t| t <= now) {
                self.sweep(now);
            }
        }
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.discard(id);
        }
    }

    /// How long `poll` may wait: not at all while connections have bytes
    /// left to read, else until the next deadline.
    fn timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = match (self.next_deadline, self.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    fn deadline(&mut self, at: Instant) {
        self.next_deadline = Some(self.next_deadline.map_or(at, |t| t.min(at)));
    }

    /// Accepts every waiting connection.
    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.admit(stream, canonical(peer)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // None waits any more.
                    self.accept_failing = false;
                    return;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // No file descriptor left, most likely: the connection
                    // waits in the backlog, tried again soon; said once
                    // until none waits.
                    if !self.accept_failing {
                        self.accept_failing = true;
                        lock(&self.env.shared.notices).push(format!(
                            "{} connections wait: cannot accept: {e}",
                            self.env.shared.label
                        ));
                    }
                    self.accept_retry = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// Takes in one accepted connection, or refuses it.
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        let shared = self.env.shared.clone();
        let open = lock(&shared.connections).len();
        if open >= self.env.limits.max_connections {
            lock(&shared.notices).push(format!(
                "TCP connection from {peer} refused: {open} connections are open (the limit)"
            ));
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let setup = stream.set_nodelay(true).and_then(|()| {
            self.poll.registry().register(
                &mut stream,
                Token(id as usize),
                Interest::READABLE | Interest::WRITABLE,
            )
        });
        if let Err(e) = setup {
            lock(&shared.notices).push(format!(
                "TCP connection from {peer} dropped: cannot set up its socket: {e}"
            ));
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        {
            // Listed and said at once (before any close can be).
            let mut connections = lock(&shared.connections);
            connections.insert(peer, Entry::new(id));
            lock(&shared.gone).remove(&peer);
            if self.tls.is_none() {
                lock(&shared.notices).push(format!("TCP connection from {peer}"));
                lock(&shared.accepted).push(peer);
            }
        }
        shared.reading.fetch_add(1, Ordering::SeqCst);
        let mut conn = Conn {
            peer,
            io: Io::Plain(stream),
            pending: Vec::new(),
            backlog: VecDeque::new(),
            read_done: false,
            out: None,
            stalled_since: None,
            handshake_until: None,
            psk_identity: None,
            in_again: false,
            halted: None,
            linger_until: None,
            dialing_until: None,
        };
        let Some(tls) = &self.tls else {
            // Only a wake-up for `recv`: when frames are waiting, it is awake.
            let _ = self.env.tx.try_send(Event::Accepted);
            self.conns.insert(id, conn);
            return;
        };
        // The session (boxed: it stays where mbed TLS saw it) takes the
        // socket, and the handshake makes its first step.
        let mut ctx = Box::new(Context::new(tls.tls.config.clone()));
        let Io::Plain(stream) = conn.io else {
            return;
        };
        let stream = Arc::new(stream);
        let seen = Arc::new(Mutex::new(StreamWatch::default()));
        let socket = TlsSocket {
            stream: stream.clone(),
            seen: seen.clone(),
        };
        let (outcome, identity) = ffi::stepping(peer, || ctx.establish(socket, None));
        let until = Instant::now() + self.handshake;
        conn.io = Io::Tls { ctx, stream, seen };
        conn.psk_identity = identity;
        conn.handshake_until = Some(until);
        self.conns.insert(id, conn);
        self.deadline(until);
        self.shaken(id, outcome);
    }

    /// Takes in a connection nsh is opening to `peer`.
    fn dial(&mut self, peer: SocketAddr, mut stream: TcpStream) {
        let shared = self.env.shared.clone();
        let open = lock(&shared.connections).len();
        if open >= self.env.limits.max_connections {
            let why = format!("{open} connections are open (the limit)");
            lock(&shared.dialing).insert(peer, Some(why));
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let registered = self.poll.registry().register(
            &mut stream,
            Token(id as usize),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            lock(&shared.dialing).insert(peer, Some(format!("cannot set up its socket: {e}")));
            return;
        }
        let until = Instant::now() + DIAL_TIMEOUT;
        self.conns.insert(
            id,
            Conn {
                peer,
                io: Io::Plain(stream),
                pending: Vec::new(),
                backlog: VecDeque::new(),
                // Read once connected.
                read_done: true,
                out: None,
                stalled_since: None,
                handshake_until: None,
                psk_identity: None,
                in_again: false,
                halted: None,
                linger_until: None,
                dialing_until: Some(until),
            },
        );
        self.deadline(until);
        self.dialed(id);
    }

    /// Looks whether connection `id`, being opened, is connected (then it
    /// is a connection like an accepted one) or failed.
    fn dialed(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let peer = conn.peer;
        let Io::Plain(stream) = &mut conn.io else {
            return;
        };
        let outcome = match stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e.to_string()),
            Ok(None) => match stream.peer_addr() {
                Ok(_) => Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotConnected | io::ErrorKind::WouldBlock
                    ) =>
                {
                    return;
                }
                Err(e) => Err(e.to_string()),
            },
        };
        let shared = self.env.shared.clone();
        if let Err(why) = outcome {
            lock(&shared.dialing).insert(peer, Some(why));
            self.discard(id);
            return;
        }
        let _ = stream.set_nodelay(true);
        conn.dialing_until = None;
        conn.read_done = false;
        shared.reading.fetch_add(1, Ordering::SeqCst);
        {
            // Listed and said at once, like an accepted one.
            let mut connections = lock(&shared.connections);
            connections.insert(peer, Entry::new(id));
            lock(&shared.gone).remove(&peer);
            lock(&shared.notices).push(format!("TCP connection to {peer} established"));
            lock(&shared.accepted).push(peer);
            lock(&shared.dialing).remove(&peer);
        }
        let _ = self.env.tx.try_send(Event::Accepted);
        self.write(id);
        self.read(id);
    }

    /// Connection `id` is ready (or was nudged): its handshake, or its
    /// writing and reading.
    fn ready(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.dialing_until.is_some() {
            self.dialed(id);
            return;
        }
        if conn.handshake_until.is_some() {
            let outcome = match &mut conn.io {
                Io::Tls { ctx, .. } => {
                    let (outcome, identity) = ffi::stepping(conn.peer, || ctx.handshake());
                    conn.psk_identity = identity.or(conn.psk_identity.take());
                    outcome
                }
                Io::Plain(_) => Ok(()),
            };
            self.shaken(id, outcome);
            return;
        }
        self.write(id);
        self.read(id);
    }

    /// Acts on a handshake step's outcome.
    fn shaken(&mut self, id: u64, outcome: mbedtls::Result<()>) {
        match self.handshake_outcome(id, outcome) {
            Shake::Pending => {}
            Shake::Done => {
                self.write(id);
                self.read(id);
            }
            Shake::Failed(why) => {
                if let Some(conn) = self.conns.get(&id) {
                    let peer = conn.peer;
                    let line = format!("TLS handshake with {peer} failed: {why}");
                    self.env.shared.close_saying(peer, id, line, false);
                }
                self.discard(id);
            }
        }
    }

    fn handshake_outcome(&mut self, id: u64, outcome: mbedtls::Result<()>) -> Shake {
        let Some(conn) = self.conns.get_mut(&id) else {
            return Shake::Pending;
        };
        let Io::Tls { ctx, stream, seen } = &mut conn.io else {
            return Shake::Done;
        };
        let peer = conn.peer;
        match outcome {
            Ok(()) => {}
            Err(e) if would_block(&e) => return Shake::Pending,
            Err(e) => {
                let (first, nothing) = ffi::received_at_failure(ctx);
                let mut why = match e.high_level() {
                    // A plain CoAP frame (or anything) where a TLS record
                    // was due.
                    Some(codes::SslBadHsClientHello)
                        if first.is_some_and(|t| t != TLS_HANDSHAKE_RECORD) =>
                    {
                        config::with_code("not a TLS ClientHello (plain CoAP over TCP?)", &e)
                    }
                    Some(codes::SslConnEof) if nothing => config::with_code(
                        "the client closed the connection before the handshake",
                        &e,
                    ),
                    Some(codes::SslConnEof) => config::with_code(
                        "the client closed the connection during the handshake",
                        &e,
                    ),
                    _ => config::handshake_failure(&e, lock(seen).alert()),
                };
                // The session being negotiated holds the flags (there is no
                // established session to ask for the chain).
                if e.high_level() == Some(codes::X509CertVerifyFailed)
                    && let Err(flags) = ctx.verify_result()
                {
                    why = format!(
                        "the certificate was rejected: {} ({why})",
                        config::describe_verify_error(flags)
                    );
                }
                if let Some(alert) = config::alert_to_send(&e) {
                    // mbed TLS sends none here; without it the client
                    // would see only the connection end.
                    let (records, _) = ffi::stepping(peer, || ffi::fatal_alert(ctx, alert));
                    for record in records {
                        let _ = (&**stream).write_all(&record);
                    }
                }
                settle(stream);
                return Shake::Failed(why);
            }
        }
        conn.handshake_until = None;
        lock(seen).established();
        let mut identity = conn.psk_identity.take();
        if let Ok(Some(chain)) = ctx.peer_cert()
            && let Some(cert) = chain.iter().next()
            && let Ok(subject) = cert.subject()
        {
            identity = Some(subject);
        }
        let suite = ctx.ciphersuite().ok();
        let shared = &self.env.shared;
        {
            // Said and listed at once, unless it was closed meanwhile.
            let mut connections = lock(&shared.connections);
            let Some(entry) = connections.get_mut(&peer).filter(|c| c.id == id) else {
                return Shake::Pending;
            };
            entry.identity = identity.clone();
            lock(&shared.notices).push(config::established_line(
                "TLS",
                peer,
                suite,
                identity.as_deref(),
                None,
                None,
            ));
            lock(&shared.accepted).push(peer);
        }
        // Wakes `recv`; frames waiting wake it anyway.
        let _ = self.env.tx.try_send(Event::Accepted);
        Shake::Done
    }

    /// Writes what is queued for connection `id`; ends it when it was
    /// closed elsewhere or a write failed.
    fn write(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let now = Instant::now();
        match self.env.write(conn, id, now) {
            Writing::Done => {
                if let Some(since) = conn.stalled_since {
                    let at = since + self.env.limits.write_timeout;
                    self.deadline(at);
                }
            }
            Writing::Gone => self.discard(id),
            Writing::Failed(why) => {
                let peer = conn.peer;
                self.env.shared.close(peer, id, &why);
                self.discard(id);
            }
            Writing::Finished(why) => {
                let peer = conn.peer;
                self.env.shared.close(peer, id, &why);
                self.linger(id);
            }
        }
    }

    /// nsh ends its side of connection `id` (already reported closed):
    /// over TLS with close_notify; then what the peer still sends is read
    /// and dropped until it ends its side, for up to [`LINGER`].
    fn linger(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if let Io::Tls { ctx, .. } = &mut conn.io {
            ffi::close_notify(ctx);
        }
        let _ = match &conn.io {
            Io::Plain(s) => s.shutdown(Shutdown::Write),
            Io::Tls { stream, .. } => stream.shutdown(Shutdown::Write),
        };
        if !conn.read_done {
            conn.read_done = true;
            self.env.shared.reading.fetch_sub(1, Ordering::SeqCst);
        }
        conn.halted = None;
        conn.pending.clear();
        let until = Instant::now() + LINGER;
        conn.linger_until = Some(until);
        self.deadline(until);
        // `recv` looks at the closed connections when it wakes.
        let _ = self.env.tx.try_send(Event::Accepted);
        self.read(id);
    }

    /// Reads connection `id` for a turn.
    fn read(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match self.env.read(conn, id) {
            Reading::Drained => {}
            Reading::Blocked => self.blocked.push_back(id),
            Reading::Again => self.read_again(id),
            Reading::Halted => {
                let (blocked, until) =
                    (!conn.backlog.is_empty(), conn.halted.as_ref().map(|h| h.0));
                if blocked {
                    self.blocked.push_back(id);
                }
                if let Some(until) = until {
                    self.deadline(until);
                }
            }
            Reading::Over => self.discard(id),
        }
    }

    /// Has connection `id` read again on the next turn (once).
    fn read_again(&mut self, id: u64) {
        if let Some(conn) = self.conns.get_mut(&id)
            && !conn.in_again
        {
            conn.in_again = true;
            self.again.push_back(id);
        }
    }

    /// Delivers what connections held back, as far as there is room; a
    /// connection whose backlog is gone reads again.
    fn deliver_blocked(&mut self) {
        while let Some(event) = self.orphans.pop_front() {
            let event = match self.env.tx.try_send(event) {
                Err(TrySendError::Full(event)) => event,
                _ => continue,
            };
            self.env.shared.wants_room.store(true, Ordering::SeqCst);
            if let Err(TrySendError::Full(event)) = self.env.tx.try_send(event) {
                self.orphans.push_front(event);
                return;
            }
        }
        while let Some(&id) = self.blocked.front() {
            if let Some(conn) = self.conns.get_mut(&id) {
                while let Some(event) = conn.backlog.pop_front() {
                    let event = match self.env.tx.try_send(event) {
                        Err(TrySendError::Full(event)) => event,
                        _ => continue,
                    };
                    self.env.shared.wants_room.store(true, Ordering::SeqCst);
                    if let Err(TrySendError::Full(event)) = self.env.tx.try_send(event) {
                        conn.backlog.push_front(event);
                        return;
                    }
                }
            }
            self.blocked.pop_front();
            self.read_again(id);
        }
    }

    /// Ends the connections whose deadline passed: a write stalled for
    /// [`Limits::write_timeout`], a handshake not done within
    /// [`HANDSHAKE_TIMEOUT`] (the loop's `handshake`).
    fn sweep(&mut self, now: Instant) {
        let write_timeout = self.env.limits.write_timeout;
        let mut late = Vec::new();
        let mut next: Option<Instant> = None;
        for (&id, conn) in &self.conns {
            let due = [
                conn.dialing_until,
                conn.handshake_until,
                conn.stalled_since.map(|s| s + write_timeout),
                conn.halted.as_ref().map(|h| h.0),
                conn.linger_until,
            ]
            .into_iter()
            .flatten()
            .min();
            match due {
                Some(t) if t <= now => late.push(id),
                Some(t) => next = Some(next.map_or(t, |n| n.min(t))),
                None => {}
            }
        }
        self.next_deadline = next;
        for id in late {
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            let peer = conn.peer;
            if conn.linger_until.is_some() {
                // Said when nsh closed it; the peer never ended its side.
            } else if conn.dialing_until.is_some() {
                let why = format!("no answer within {} s", DIAL_TIMEOUT.as_secs_f64());
                lock(&self.env.shared.dialing).insert(peer, Some(why));
            } else if let Some((_, why)) = &conn.halted
                && conn.stalled_since.is_none_or(|s| s + write_timeout > now)
            {
                let why = format!(
                    "{why} (nothing was sent in answer within {} s)",
                    self.env.limits.answer_timeout.as_secs_f64()
                );
                self.env.shared.close(peer, id, &why);
            } else if conn.handshake_until.is_some() {
                let why = format!(
                    "the client stopped answering (no handshake within {} s)",
                    self.handshake.as_secs_f64()
                );
                let line = format!("TLS handshake with {peer} failed: {why}");
                self.env.shared.close_saying(peer, id, line, false);
            } else {
                let why = format!(
                    "write timed out: the peer read nothing for {} s",
                    write_timeout.as_secs_f64()
                );
                self.env.shared.close(peer, id, &why);
            }
            self.discard(id);
        }
    }

    /// Forgets connection `id` and ends its socket: a TLS session says
    /// goodbye (close_notify) unless a frame was cut short, and no byte
    /// follows a cut frame: the socket is shut down first.
    fn discard(&mut self, id: u64) {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        self.orphans.append(&mut conn.backlog);
        if !conn.read_done {
            self.env.shared.reading.fetch_sub(1, Ordering::SeqCst);
        }
        let cut = conn.out.is_some() || matches!(conn.io, Io::Plain(_));
        if cut {
            conn.io.shutdown();
        }
        if conn.linger_until.is_none()
            && let Io::Tls { ctx, .. } = &mut conn.io
        {
            // close_notify, when the socket is still whole (a lingering
            // connection sent it already); the session lets go of the
            // socket.
            ctx.close();
        }
        if let Some(s) = conn.io.stream() {
            let _ = self.poll.registry().deregister(s);
        }
    }
}

/// What one read of a connection brought.
enum Absorbed {
    /// Bytes, now in `pending`.
    More,
    /// Nothing yet.
    Nothing,
    /// The connection ended, and why.
    End(String),
}

/// Adds what a read returned to `pending`.
fn absorb(read: io::Result<usize>, chunk: &[u8], pending: &mut Vec<u8>) -> Absorbed {
    match read {
        Ok(0) => Absorbed::End("closed by the peer".into()),
        Ok(n) => {
            pending.extend_from_slice(&chunk[..n]);
            Absorbed::More
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ) =>
        {
            Absorbed::Nothing
        }
        Err(e) => Absorbed::End(e.to_string()),
    }
}

/// Ends the sending half of a connection whose handshake failed (after the
/// alert) and reads what is left of the client's flight, so that closing
/// the socket does not reset the connection (a reset can cost the client
/// the alert before it read it).
fn settle(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match (&*stream).read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// Whether an mbed TLS error only means "not yet" on a non-blocking socket.
fn would_block(e: &mbedtls::Error) -> bool {
    matches!(
        e.high_level(),
        Some(codes::SslWantRead | codes::SslWantWrite)
    )
}

/// The frames taken off the front of a connection's bytes, and whether the
/// last is one nsh cannot take, and why: reading stops there.
struct Split {
    frames: Vec<Vec<u8>>,
    halt: Option<String>,
}

/// Takes every whole frame off the front of `pending`, up to and with the
/// first that does not decode, or the start of one bigger than
/// [`MAX_FRAME`] (all of `pending` then): reading stops at either.
fn split_frames(pending: &mut Vec<u8>) -> Split {
    let mut frames = Vec::new();
    loop {
        match decode_frame(pending) {
            Frame::Complete(len, decoded) => {
                frames.push(pending.drain(..len).collect());
                let halt = if len > MAX_FRAME {
                    Some(format!(
                        "frame of {len} bytes is over the limit of {MAX_FRAME}"
                    ))
                } else {
                    decoded
                        .err()
                        .map(|e| format!("a frame that does not decode ({e})"))
                };
                if halt.is_some() {
                    return Split { frames, halt };
                }
            }
            Frame::Incomplete(more) => {
                let total = pending.len().saturating_add(more);
                let halt = (total > MAX_FRAME).then(|| {
                    frames.push(std::mem::take(pending));
                    format!("frame of {total} bytes is over the limit of {MAX_FRAME}")
                });
                return Split { frames, halt };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::tcp::{decode, encode};
    use crate::coap::{Code, Message, Type};
    use std::net::TcpStream;

    fn frame(code: Code, token: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut m = Message::new(Type::Confirmable, code, 0);
        m.token = token.to_vec();
        m.payload = payload.to_vec();
        encode(&m)
    }

    /// Receives frames until `n` arrived (or 5 s passed).
    fn recv_frames(t: &TcpTransport, n: usize) -> Vec<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; MAX_FRAME];
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < deadline {
            if let Some((len, peer)) = t.recv(&mut buf, Duration::from_millis(100)).unwrap() {
                out.push((buf[..len].to_vec(), peer));
            }
        }
        out
    }

    fn connect(t: &TcpTransport) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", t.local_addr().unwrap().port())).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    #[test]
    fn split_and_coalesced_frames_are_delivered_whole() {
        let t = TcpTransport::bind(0, false).unwrap();
        let mut c = connect(&t);
        let big = frame(Code::POST, b"tok", &[7u8; 1000]);
        let small = frame(Code::PING, b"p", b"");
        // The big one a byte at a time for its first half, then the rest
        // coalesced with the small one.
        let (head, tail) = big.split_at(big.len() / 2);
        for b in head.iter().take(20) {
            c.write_all(&[*b]).unwrap();
            c.flush().unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        c.write_all(&head[20..]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut rest = tail.to_vec();
        rest.extend_from_slice(&small);
        rest.extend_from_slice(&small);
        c.write_all(&rest).unwrap();
        let got = recv_frames(&t, 3);
        let me = canonical(c.local_addr().unwrap());
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (big.clone(), me));
        assert_eq!(got[1], (small.clone(), me));
        assert_eq!(got[2], (small, me));
        assert_eq!(decode(&got[0].0).unwrap().payload, vec![7u8; 1000]);
        assert_eq!(t.take_accepted(), vec![me]);
    }

    #[test]
    fn two_connections_are_told_apart_and_answered_on_their_own() {
        let t = TcpTransport::bind(0, false).unwrap();
        let mut a = connect(&t);
        let mut b = connect(&t);
        a.write_all(&frame(Code::POST, b"a", b"from a")).unwrap();
        b.write_all(&frame(Code::POST, b"b", b"from b")).unwrap();
        let got = recv_frames(&t, 2);
        assert_eq!(got.len(), 2);
        let mut accepted = t.take_accepted();
        accepted.sort();
        let mut expected = vec![
            canonical(a.local_addr().unwrap()),
            canonical(b.local_addr().unwrap()),
        ];
        expected.sort();
        assert_eq!(accepted, expected);
        for (bytes, peer) in &got {
            let m = decode(bytes).unwrap();
            let reply = frame(Code::CHANGED, &m.token, &m.payload);
            t.send_to(&reply, *peer).unwrap();
        }
        for (s, name) in [(&mut a, "a"), (&mut b, "b")] {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = vec![0u8; 64];
            let n = s.read(&mut buf).unwrap();
            let m = decode(&buf[..n]).unwrap();
            assert_eq!(m.token, name.as_bytes());
            assert_eq!(m.payload, format!("from {name}").into_bytes());
        }
    }

    #[test]
    fn a_closed_connection_is_reported_after_everything_it_sent() {
        let t = TcpTransport::bind(0, false).unwrap();
        let mut c = connect(&t);
        let whole = frame(Code::POST, b"x", b"hello");
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&[0x35, 0x01]); // a frame cut short
        c.write_all(&bytes).unwrap();
        let me = canonical(c.local_addr().unwrap());
        drop(c);
        let got = recv_frames(&t, 2);
        assert_eq!(got, vec![(whole, me), (vec![0x35, 0x01], me)]);
        assert!(decode(&got[1].0).is_err());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut notices = Vec::new();
        let mut buf = [0u8; 16];
        while Instant::now() < deadline && !notices.iter().any(|n: &String| n.contains("closed")) {
            let _ = t.recv(&mut buf, Duration::from_millis(50));
            notices.extend(t.take_notices());
        }
        assert!(
            notices.contains(&format!(
                "TCP connection with {me} closed: closed by the peer"
            )),
            "{notices:?}"
        );
        assert_eq!(
            t.take_closed(),
            vec![(
                me,
                format!("TCP connection with {me} closed: closed by the peer")
            )]
        );
        assert!(t.send_to(&[0, 0xe2], me).is_err());
    }

    #[test]
    fn reading_stops_at_the_start_of_an_oversized_frame() {
        let mut pending = frame(Code::PING, b"", b"");
        pending.extend_from_slice(&[0xf0, 0xff, 0xff, 0xff, 0xff, 0x02]);
        let split = split_frames(&mut pending);
        assert_eq!(
            split.frames,
            vec![
                frame(Code::PING, b"", b""),
                vec![0xf0, 0xff, 0xff, 0xff, 0xff, 0x02]
            ]
        );
        let why = split.halt.expect("halted");
        assert!(why.contains("over the limit of 65535"), "{why}");
        assert!(pending.is_empty());
    }

    #[test]
    fn closing_after_sending_writes_the_queue_then_ends_without_a_reset() {
        let t = TcpTransport::bind(0, false).unwrap();
        let mut c = connect(&t);
        let me = canonical(c.local_addr().unwrap());
        assert!(wait_until(|| t.peers() == vec![me]));
        // A frame that does not decode, and after it bytes nsh never
        // reads: closing with them unread would reset the connection.
        let mut bad = vec![0x09, 0x01];
        bad.extend_from_slice(b"123456789");
        c.write_all(&bad).unwrap();
        assert_eq!(recv_frames(&t, 1), vec![(bad, me)]);
        c.write_all(&[0x55; 50_000]).unwrap();
        let frames: Vec<Vec<u8>> = (0..50u8)
            .map(|i| frame(Code::CONTENT, &[i], &[i; 3000]))
            .collect();
        for f in &frames {
            t.send_to(f, me).unwrap();
        }
        t.close_after_sending(me, "nsh sent Abort: test");
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).expect("every frame, then the end");
        assert_eq!(got, frames.concat());
        let notices = drain(&t);
        assert_eq!(
            notices.last(),
            Some(&format!(
                "TCP connection with {me} closed: nsh sent Abort: test"
            ))
        );
        assert_eq!(peers(t.take_closed()), vec![me]);
        assert!(t.send_to(&frames[0], me).is_err());
    }

    #[test]
    fn a_halted_connection_nobody_answers_is_closed_after_the_answer_timeout() {
        let (t, mut c, me) = one_peer(
            Limits {
                answer_timeout: Duration::from_millis(200),
                ..Limits::default()
            },
            connect,
        );
        let mut bad = vec![0x09, 0x01];
        bad.extend_from_slice(b"123456789");
        c.write_all(&bad).unwrap();
        assert_eq!(recv_frames(&t, 1), vec![(bad, me)]);
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        assert!(matches!(c.read_to_end(&mut rest), Ok(0) | Err(_)));
        let notices = drain(&t);
        let last = notices.last().expect("a closing line");
        assert!(
            last.starts_with(&format!(
                "TCP connection with {me} closed: a frame that does not decode (token length"
            )),
            "{notices:?}"
        );
        assert!(
            last.ends_with("(nothing was sent in answer within 0.2 s)"),
            "{last}"
        );
    }

    #[test]
    fn a_dialled_connection_is_reported_open_and_carries_frames_both_ways() {
        let server = TcpTransport::bind_addr(loopback()).unwrap();
        let client = TcpTransport::bind_addr(loopback()).unwrap();
        let to = SocketAddr::new(
            Ipv4Addr::LOCALHOST.into(),
            server.local_addr().unwrap().port(),
        );
        client.dial(to).unwrap();
        assert!(wait_until(|| client.dial_state(to) == Dial::Open));
        assert_eq!(client.take_accepted(), vec![to]);
        assert_eq!(
            client.take_notices(),
            vec![format!("TCP connection to {to} established")]
        );
        let hi = frame(Code::GET, b"d", b"");
        client.send_to(&hi, to).unwrap();
        let got = recv_frames(&server, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, hi);
        let back = frame(Code::CONTENT, b"d", b"there");
        server.send_to(&back, got[0].1).unwrap();
        assert_eq!(recv_frames(&client, 1), vec![(back, to)]);
        // Dialling an open connection again changes nothing.
        client.dial(to).unwrap();
        assert_eq!(client.dial_state(to), Dial::Open);
        assert_eq!(client.peers(), vec![to]);
    }

    #[test]
    fn a_refused_dial_is_told_once_with_the_reason() {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = unused.local_addr().unwrap();
        drop(unused);
        let t = TcpTransport::bind_addr(loopback()).unwrap();
        t.dial(to).unwrap();
        let mut state = Dial::Pending;
        assert!(wait_until(|| {
            state = t.dial_state(to);
            state != Dial::Pending
        }));
        match state {
            Dial::Failed(why) => assert!(why.contains("refused"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(t.peers().is_empty());
        assert!(t.take_accepted().is_empty());
        assert!(t.take_notices().is_empty());
    }

    #[test]
    fn reading_stops_after_a_frame_that_does_not_decode() {
        // TKL 9 (RFC 8323 §3.2: reserved), then a Ping never looked at.
        let mut pending = vec![0x09, 0x01];
        pending.extend_from_slice(b"123456789");
        pending.extend_from_slice(&frame(Code::PING, b"", b""));
        let split = split_frames(&mut pending);
        assert_eq!(split.frames.len(), 1);
        assert_eq!(split.frames[0].len(), 11);
        assert!(split.halt.expect("halted").contains("token length"));
        assert_eq!(pending, frame(Code::PING, b"", b""));
    }

    /// The peers of what `take_closed` returned.
    fn peers(closed: Vec<(SocketAddr, String)>) -> Vec<SocketAddr> {
        closed.into_iter().map(|(peer, _)| peer).collect()
    }

    fn loopback() -> SocketAddr {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)
    }

    /// Waits (up to 10 s) until `done` holds, without touching `recv`.
    fn wait_until(done: impl FnMut() -> bool) -> bool {
        wait_until_for(Duration::from_secs(10), done)
    }

    /// Waits up to `limit` until `done` holds, without touching `recv`.
    fn wait_until_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        done()
    }

    /// A transport with `limits` and one client connected by `connector`,
    /// once the transport lists it: the transport, the client, and the
    /// client as the transport names it.
    fn one_peer(
        limits: Limits,
        connector: fn(&TcpTransport) -> TcpStream,
    ) -> (TcpTransport, TcpStream, SocketAddr) {
        let t = TcpTransport::bind_with(loopback(), limits).unwrap();
        let client = connector(&t);
        let me = canonical(client.local_addr().unwrap());
        assert!(wait_until(|| t.peers() == vec![me]));
        (t, client, me)
    }

    /// A send queue of four frames, and writes that may stall a minute:
    /// the queue fills long before a stalled write times out.
    fn four_frame_queue() -> Limits {
        Limits {
            queue_frames: 4,
            write_timeout: Duration::from_secs(60),
            ..Limits::default()
        }
    }

    /// Handles every event still queued once every connection was read
    /// to its end.
    fn drain(t: &TcpTransport) -> Vec<String> {
        assert!(
            wait_until(|| t.reading() == 0),
            "connections still being read"
        );
        let mut buf = vec![0u8; MAX_FRAME];
        for _ in 0..10 {
            let _ = t.recv(&mut buf, Duration::from_millis(5));
        }
        t.take_notices()
    }

    fn closing_notices(notices: &[String]) -> Vec<&String> {
        notices.iter().filter(|n| n.contains("closed")).collect()
    }

    #[test]
    fn a_peer_that_stops_reading_blocks_neither_send_to_nor_another_peer() {
        let t = TcpTransport::bind_with(
            loopback(),
            Limits {
                queue_frames: 1000,
                write_timeout: Duration::from_secs(60),
                ..Limits::default()
            },
        )
        .unwrap();
        let stalled = connect(&t);
        let mut other = connect(&t);
        let stalled_addr = canonical(stalled.local_addr().unwrap());
        let other_addr = canonical(other.local_addr().unwrap());
        assert!(wait_until(|| t.peers().len() == 2));
        // Far more than the socket buffers hold: the stalled peer's writer
        // blocks, and its queue takes the rest.
        let big = frame(Code::POST, b"s", &[0x55; 60_000]);
        for i in 0..300 {
            if let Err(e) = t.send_to(&big, stalled_addr) {
                panic!("send_to the stalled peer failed at frame {i}: {e}");
            }
        }
        other.write_all(&frame(Code::POST, b"o", b"ping")).unwrap();
        let got = recv_frames(&t, 1);
        assert_eq!(got, vec![(frame(Code::POST, b"o", b"ping"), other_addr)]);
        t.send_to(&frame(Code::CHANGED, b"o", b"pong"), other_addr)
            .unwrap();
        other
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = vec![0u8; 64];
        let n = other.read(&mut buf).unwrap();
        assert_eq!(decode(&buf[..n]).unwrap().payload, b"pong");
        let mut peers = t.peers();
        peers.sort();
        let mut both = vec![stalled_addr, other_addr];
        both.sort();
        assert_eq!(peers, both, "the stalled peer is still connected");
        assert!(t.take_closed().is_empty());
        drop(stalled);
    }

    #[test]
    fn a_full_send_queue_closes_the_connection_with_one_notice() {
        let (t, mut stalled, me) = one_peer(four_frame_queue(), connect);
        let big = frame(Code::POST, b"s", &[0x55; 60_000]);
        let refused = (0..2000).find(|_| t.send_to(&big, me).is_err());
        assert!(refused.is_some(), "send_to never reported the full queue");
        assert!(t.peers().is_empty(), "{:?}", t.peers());
        assert_eq!(peers(t.take_closed()), vec![me]);
        assert!(t.send_to(&big, me).is_err(), "send_to a closed peer");
        let notices = drain(&t);
        let closed = closing_notices(&notices);
        assert_eq!(closed.len(), 1, "{notices:?}");
        assert!(closed[0].contains(&me.to_string()), "{}", closed[0]);
        assert!(closed[0].contains("queue"), "{}", closed[0]);
        // What the peer gets is whole frames and then the end of the stream:
        // at most the last one cut short, never followed by more bytes.
        stalled
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut all = Vec::new();
        stalled
            .read_to_end(&mut all)
            .expect("the stream ends instead of stalling");
        let mut rest = &all[..];
        while let Frame::Complete(len, _) = decode_frame(rest) {
            assert_eq!(&rest[..len], &big[..]);
            rest = &rest[len..];
        }
        assert!(rest.len() < big.len());
    }

    /// Frames in `peer`'s send queue, or `None` when it is closed.
    fn queued(t: &TcpTransport, peer: SocketAddr) -> Option<usize> {
        lock(&t.shared.connections)
            .get(&peer)
            .map(|e| e.queue.len())
    }

    /// A client whose receive buffer is fixed tiny: when it does not read,
    /// nsh's socket soon takes no more, and stays so (loopback's large
    /// segments do not fit: they are dropped and resent after ever longer
    /// timeouts).
    fn connect_small_window(t: &TcpTransport) -> TcpStream {
        use nix::sys::socket::{setsockopt, sockopt};
        let s = connect(t);
        setsockopt(&s, sockopt::RcvBuf, &4096).unwrap();
        s
    }

    #[test]
    fn a_connection_closed_while_a_frame_waits_half_written_ends_at_once() {
        // The queue fills while the loop waits in the middle of a frame the
        // socket does not take: the connection must end then, not once the
        // peer reads again or the write timeout passed.
        let (t, stalled, me) = one_peer(four_frame_queue(), connect_small_window);
        let big = frame(Code::POST, b"s", &[0x55; 60_000]);
        // One frame at a time until one stays queued: the loop took the one
        // before and cannot finish writing it.
        let mut stuck = false;
        for _ in 0..1000 {
            t.send_to(&big, me).unwrap();
            if !wait_until_for(Duration::from_millis(300), || queued(&t, me) == Some(0)) {
                stuck = true;
                break;
            }
        }
        assert!(stuck, "the socket never filled");
        let refused = (0..10).find(|_| t.send_to(&big, me).is_err());
        assert!(refused.is_some(), "send_to never reported the full queue");
        assert_eq!(peers(t.take_closed()), vec![me]);
        assert!(
            wait_until(|| t.reading() == 0),
            "the closed connection is still open"
        );
        assert!(t.peers().is_empty(), "{:?}", t.peers());
        drop(stalled);
    }

    #[test]
    fn frames_held_back_are_still_delivered_when_the_connection_is_closed_by_nsh() {
        let (t, mut c, me) = one_peer(
            Limits {
                queue_frames: 4,
                received_frames: 1,
                write_timeout: Duration::from_secs(60),
                ..Limits::default()
            },
            connect,
        );
        // One frame fits the channel; the others are held back for room.
        let sent: Vec<Vec<u8>> = (0u8..6)
            .map(|i| frame(Code::POST, &[i], &[i; 10]))
            .collect();
        c.write_all(&sent.concat()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // nsh closes the connection (its send queue fills: c reads nothing).
        let big = frame(Code::POST, b"s", &[0x55; 60_000]);
        let refused = (0..2000).find(|_| t.send_to(&big, me).is_err());
        assert!(refused.is_some(), "send_to never reported the full queue");
        assert!(t.peers().is_empty(), "{:?}", t.peers());
        // Everything the peer sent before is received, in order.
        let got = recv_frames(&t, sent.len());
        let frames: Vec<Vec<u8>> = got.into_iter().map(|(f, _)| f).collect();
        assert_eq!(frames, sent);
    }

    #[test]
    fn a_write_that_makes_no_progress_closes_the_connection_with_one_notice() {
        let (t, stalled, me) = one_peer(
            Limits {
                queue_frames: 1000,
                write_timeout: Duration::from_millis(200),
                ..Limits::default()
            },
            connect,
        );
        let big = frame(Code::POST, b"s", &[0x55; 60_000]);
        let _ = (0..300).find(|_| t.send_to(&big, me).is_err());
        assert!(wait_until(|| t.peers().is_empty()), "{:?}", t.peers());
        assert_eq!(peers(t.take_closed()), vec![me]);
        let notices = drain(&t);
        let closed = closing_notices(&notices);
        assert_eq!(closed.len(), 1, "{notices:?}");
        assert!(closed[0].contains(&me.to_string()), "{}", closed[0]);
        assert!(closed[0].contains("timed out"), "{}", closed[0]);
        drop(stalled);
    }

    #[test]
    fn a_failed_write_closes_the_connection_with_one_notice() {
        let t = TcpTransport::bind(0, false).unwrap();
        let c = connect(&t);
        let me = canonical(c.local_addr().unwrap());
        assert!(wait_until(|| t.peers() == vec![me]));
        drop(c);
        // The first write after the peer left is answered with a reset; a
        // later one fails.
        let small = frame(Code::PING, b"", b"");
        let gone = wait_until(|| t.send_to(&small, me).is_err());
        assert!(gone, "send_to kept succeeding");
        assert!(t.peers().is_empty(), "{:?}", t.peers());
        assert_eq!(peers(t.take_closed()), vec![me]);
        let notices = drain(&t);
        let closed = closing_notices(&notices);
        assert_eq!(closed.len(), 1, "{notices:?}");
        assert!(closed[0].contains(&me.to_string()), "{}", closed[0]);
        assert!(closed[0].contains("write failed"), "{}", closed[0]);
    }

    #[test]
    fn connections_over_the_limit_are_refused_with_a_notice() {
        let t = TcpTransport::bind_with(
            loopback(),
            Limits {
                max_connections: 2,
                ..Limits::default()
            },
        )
        .unwrap();
        let (a, b) = (connect(&t), connect(&t));
        assert!(wait_until(|| t.peers().len() == 2));
        let mut third = connect(&t);
        let me = canonical(third.local_addr().unwrap());
        third
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 16];
        match third.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("the third connection is not closed: {other:?}"),
        }
        assert_eq!(t.peers().len(), 2);
        let notices = t.take_notices();
        assert!(
            notices.contains(&format!(
                "TCP connection from {me} refused: 2 connections are open (the limit)"
            )),
            "{notices:?}"
        );
        assert!(!t.take_accepted().contains(&me));
        drop((a, b));
    }

    #[test]
    fn a_peer_that_floods_while_nothing_is_received_is_held_back_by_tcp() {
        let t = TcpTransport::bind_with(
            loopback(),
            Limits {
                received_frames: 8,
                ..Limits::default()
            },
        )
        .unwrap();
        let mut c = connect(&t);
        c.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let f = frame(Code::POST, b"f", &[0x33; 1000]);
        // Nothing calls recv: the reader stops reading once its frames are
        // waiting, and the peer's writes stop going through.
        let written = (0..65_536).take_while(|_| c.write_all(&f).is_ok()).count();
        assert!(written < 65_536, "all {written} frames were taken in");
        // Then every whole frame written is received, in order.
        let got = recv_frames(&t, written);
        assert_eq!(got.len(), written);
        assert!(got.iter().all(|(bytes, _)| *bytes == f));
    }

    #[test]
    fn zero_limits_are_taken_as_the_smallest_that_work() {
        let t = TcpTransport::bind_with(
            loopback(),
            Limits {
                queue_frames: 0,
                write_timeout: Duration::ZERO,
                max_connections: 1,
                received_frames: 0,
                answer_timeout: Duration::ZERO,
            },
        )
        .unwrap();
        let mut c = connect(&t);
        let me = canonical(c.local_addr().unwrap());
        c.write_all(&frame(Code::POST, b"z", b"zero")).unwrap();
        assert_eq!(
            recv_frames(&t, 1),
            vec![(frame(Code::POST, b"z", b"zero"), me)]
        );
        t.send_to(&frame(Code::CHANGED, b"z", b"ok"), me).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = vec![0u8; 64];
        let n = c.read(&mut buf).unwrap();
        assert_eq!(decode(&buf[..n]).unwrap().payload, b"ok");
    }

    #[test]
    fn sending_to_a_peer_whose_connection_closed_says_when_and_why() {
        let t = TcpTransport::bind(0, false).unwrap();
        let c = connect(&t);
        let me = canonical(c.local_addr().unwrap());
        drop(c);
        let mut buf = vec![0u8; MAX_FRAME];
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut closed = Vec::new();
        while closed.is_empty() && Instant::now() < deadline {
            let _ = t.recv(&mut buf, Duration::from_millis(10));
            closed.extend(peers(t.take_closed()));
        }
        assert_eq!(closed, [me]);
        let e = t.send_to(b"x", me).unwrap_err().to_string();
        let start = format!("the TCP connection with {me} closed at ");
        assert!(e.starts_with(&start), "{e}");
        assert!(e.ends_with(" s ago): closed by the peer"), "{e}");
        // A peer never connected: no more than that.
        let other: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(
            t.send_to(b"x", other).unwrap_err().to_string(),
            "no TCP connection with 127.0.0.1:9"
        );
    }

    #[test]
    fn two_hundred_connections_leave_no_state_behind() {
        let t = TcpTransport::bind(0, false).unwrap();
        let mut addrs = Vec::new();
        for _ in 0..200 {
            let mut c = connect(&t);
            addrs.push(canonical(c.local_addr().unwrap()));
            c.write_all(&frame(Code::PING, b"", b"")).unwrap();
        }
        let mut closed = Vec::new();
        let mut frames = 0;
        let mut buf = vec![0u8; MAX_FRAME];
        let deadline = Instant::now() + Duration::from_secs(30);
        while closed.len() < 200 && Instant::now() < deadline {
            if let Ok(Some(_)) = t.recv(&mut buf, Duration::from_millis(10)) {
                frames += 1;
            }
            closed.extend(peers(t.take_closed()));
        }
        assert_eq!(frames, 200);
        closed.sort();
        addrs.sort();
        assert_eq!(closed, addrs);
        assert!(t.peers().is_empty(), "{:?}", t.peers());
        let notices = drain(&t);
        assert_eq!(closing_notices(&notices).len(), 200);
        assert_eq!(t.take_accepted().len(), 200);
        assert!(t.take_closed().is_empty());
    }

    fn psk_security() -> Security {
        Security::psk(super::super::Psk {
            identity: "user".into(),
            key: b"password".to_vec(),
        })
    }

    /// A TLS client with PSK `user`/`key`, handshaken (or not) with `t`;
    /// its address either way. (A client's configuration has no PSK table:
    /// the context's own reference keeps it alive.)
    fn tls_client(
        t: &TcpTransport,
        key: &[u8],
    ) -> (SocketAddr, mbedtls::Result<Context<TcpStream>>) {
        let stream = connect(t);
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let me = canonical(stream.local_addr().unwrap());
        let security = Security::psk(super::super::Psk {
            identity: "user".into(),
            key: key.to_vec(),
        });
        let tls = config::build_for(&security, Side::Client, TransportKind::Stream).unwrap();
        let mut ctx = Context::new(tls.config.clone());
        let r = ctx.establish(stream, None).map(|()| ctx);
        (me, r)
    }

    /// Reads one whole frame from a TLS client.
    fn tls_next(ctx: &mut Context<TcpStream>) -> Message {
        let mut pending = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Frame::Complete(len, _) = decode_frame(&pending) {
                return decode(&pending[..len]).unwrap();
            }
            let n = ctx.read(&mut chunk).expect("a frame from nsh");
            assert!(n > 0, "the connection ended");
            pending.extend_from_slice(&chunk[..n]);
        }
    }

    fn tls_transport(limits: Limits) -> TcpTransport {
        TcpTransport::bind_tls(loopback(), limits, Some(&psk_security())).unwrap()
    }

    #[test]
    fn a_tls_client_is_accepted_after_its_handshake_with_its_identity() {
        let t = tls_transport(Limits::default());
        let (me, ctx) = tls_client(&t, b"password");
        let mut ctx = ctx.expect("the handshake");
        let mut accepted = Vec::new();
        assert!(wait_until(|| {
            accepted.extend(t.take_accepted());
            !accepted.is_empty()
        }));
        assert_eq!(accepted, vec![me]);
        assert_eq!(t.identity(me).as_deref(), Some("user"));
        let notices = t.take_notices();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(
            notices[0].starts_with(&format!("TLS session with {me} established (TLS_PSK_")),
            "{notices:?}"
        );
        assert!(notices[0].ends_with(", identity `user`)"), "{notices:?}");
        // Frames both ways, through the session.
        let hi = frame(Code::POST, b"t", b"hi");
        ctx.write_all(&hi).unwrap();
        assert_eq!(recv_frames(&t, 1), vec![(hi, me)]);
        t.send_to(&frame(Code::CHANGED, b"t", b"ok"), me).unwrap();
        let reply = tls_next(&mut ctx);
        assert_eq!(
            (reply.token, reply.payload),
            (b"t".to_vec(), b"ok".to_vec())
        );
        // Leaving: one closing line, and the peer reported closed.
        drop(ctx);
        let notices = drain(&t);
        assert_eq!(
            notices,
            vec![format!(
                "TLS connection with {me} closed: closed by the peer"
            )]
        );
        assert_eq!(peers(t.take_closed()), vec![me]);
        assert_eq!(t.identity(me), None);
    }

    #[test]
    fn a_wrong_key_is_one_notice_and_nothing_else() {
        let t = tls_transport(Limits::default());
        let (me, ctx) = tls_client(&t, b"wrong");
        assert!(ctx.is_err(), "the handshake succeeded with a wrong key");
        let notices = drain(&t);
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(
            notices[0].starts_with(&format!("TLS handshake with {me} failed: ")),
            "{notices:?}"
        );
        assert!(notices[0].contains("wrong PSK key?"), "{notices:?}");
        assert!(t.take_accepted().is_empty());
        assert!(t.take_closed().is_empty());
        assert!(t.peers().is_empty(), "{:?}", t.peers());
        // And the next client is served.
        let (_, ctx) = tls_client(&t, b"password");
        assert!(ctx.is_ok());
    }

    #[test]
    fn a_tls_peer_that_stops_reading_does_not_hold_up_another() {
        let t = tls_transport(Limits {
            queue_frames: 1000,
            write_timeout: Duration::from_secs(60),
            ..Limits::default()
        });
        let (stalled_addr, stalled) = tls_client(&t, b"password");
        let (other_addr, other) = tls_client(&t, b"password");
        let (stalled, mut other) = (stalled.unwrap(), other.unwrap());
        assert!(wait_until(|| t.peers().len() == 2));
        let big = frame(Code::POST, b"s", &[0x55; 60_000]);
        for i in 0..300 {
            if let Err(e) = t.send_to(&big, stalled_addr) {
                panic!("send_to the stalled peer failed at frame {i}: {e}");
            }
        }
        other.write_all(&frame(Code::POST, b"o", b"ping")).unwrap();
        let got = recv_frames(&t, 1);
        assert_eq!(got, vec![(frame(Code::POST, b"o", b"ping"), other_addr)]);
        t.send_to(&frame(Code::CHANGED, b"o", b"pong"), other_addr)
            .unwrap();
        assert_eq!(tls_next(&mut other).payload, b"pong");
        assert_eq!(t.peers().len(), 2, "the stalled peer is still connected");
        assert!(t.take_closed().is_empty());
        drop(stalled);
    }

    #[test]
    fn a_tls_peer_that_floods_while_nothing_is_received_is_held_back_and_loses_nothing() {
        let t = tls_transport(Limits {
            received_frames: 8,
            ..Limits::default()
        });
        let (me, ctx) = tls_client(&t, b"password");
        let mut ctx = ctx.expect("the handshake");
        ctx.io_mut()
            .expect("the client's socket")
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let frames: Vec<Vec<u8>> = (0..65_536u32)
            .map(|i| frame(Code::POST, &i.to_be_bytes(), &[0x33; 1000]))
            .collect();
        // Nothing calls recv: the loop stops reading this connection once
        // its frames wait, and the peer's writes stop going through.
        let written = frames
            .iter()
            .take_while(|f| ctx.write_all(f).is_ok())
            .count();
        assert!(written < frames.len(), "all {written} frames were taken in");
        // Then every whole frame written is received, in order: those held
        // back and those read once there was room again.
        let got = recv_frames(&t, written);
        assert_eq!(got.len(), written);
        for (i, (bytes, peer)) in got.iter().enumerate() {
            assert_eq!((bytes, *peer), (&frames[i], me), "frame {i}");
        }
    }

    #[test]
    fn a_client_that_never_finishes_its_handshake_holds_up_no_other() {
        let t = tls_transport(Limits::default());
        // Connected, a few bytes of a record header, and then nothing.
        let mut silent = connect(&t);
        silent.write_all(&[0x16, 0x03]).unwrap();
        let silent_addr = canonical(silent.local_addr().unwrap());
        let (me, ctx) = tls_client(&t, b"password");
        let mut ctx = ctx.expect("the handshake beside a silent one");
        let hi = frame(Code::POST, b"t", b"hi");
        ctx.write_all(&hi).unwrap();
        assert_eq!(recv_frames(&t, 1), vec![(hi, me)]);
        assert_eq!(t.take_accepted(), vec![me]);
        let mut peers = t.peers();
        peers.sort();
        let mut both = vec![silent_addr, me];
        both.sort();
        assert_eq!(peers, both, "the silent one is still waited for");
    }

    #[test]
    fn frames_sent_from_many_threads_arrive_whole_and_in_each_threads_order() {
        let t = Arc::new(TcpTransport::bind(0, false).unwrap());
        let mut c = connect(&t);
        let me = canonical(c.local_addr().unwrap());
        assert!(wait_until(|| t.peers() == vec![me]));
        let senders: Vec<_> = (0..4u8)
            .map(|k| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for i in 0..25u8 {
                        let f = frame(Code::POST, &[k, i], &[k; 3000]);
                        t.send_to(&f, me).expect("room on the queue");
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut pending = Vec::new();
        let mut next = [0u8; 4];
        let mut chunk = [0u8; 4096];
        let mut got = 0;
        while got < 100 {
            if let Frame::Complete(len, _) = decode_frame(&pending) {
                let m = decode(&pending[..len]).unwrap();
                let (k, i) = (m.token[0], m.token[1]);
                assert_eq!(i, next[k as usize], "sender {k}'s frames in order");
                assert_eq!(m.payload, vec![k; 3000]);
                next[k as usize] += 1;
                pending.drain(..len);
                got += 1;
                continue;
            }
            let n = c.read(&mut chunk).expect("frames from nsh");
            assert!(n > 0, "the connection ended");
            pending.extend_from_slice(&chunk[..n]);
        }
    }

    #[test]
    fn a_handshake_not_done_in_time_is_one_notice_and_the_connection_ends() {
        let t = TcpTransport::open(
            loopback(),
            Limits::default(),
            Some(&psk_security()),
            Duration::from_millis(300),
        )
        .unwrap();
        let mut silent = connect(&t);
        silent.write_all(&[0x16, 0x03]).unwrap();
        let me = canonical(silent.local_addr().unwrap());
        assert!(wait_until(|| t.peers() == vec![me]));
        // Ended by nsh: the stream ends (or is reset) instead of stalling.
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        match silent.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("the connection is still open: {other:?}"),
        }
        assert!(t.peers().is_empty(), "{:?}", t.peers());
        let notices = drain(&t);
        assert_eq!(
            notices,
            vec![format!(
                "TLS handshake with {me} failed: the client stopped answering (no handshake within 0.3 s)"
            )]
        );
        assert!(t.take_accepted().is_empty());
        assert!(t.take_closed().is_empty());
    }

    #[test]
    fn a_burst_beside_another_peer_is_received_whole_and_in_order() {
        let t = TcpTransport::bind_with(
            loopback(),
            Limits {
                received_frames: 10_000,
                ..Limits::default()
            },
        )
        .unwrap();
        let mut busy = connect(&t);
        let mut quiet = connect(&t);
        let busy_addr = canonical(busy.local_addr().unwrap());
        let quiet_addr = canonical(quiet.local_addr().unwrap());
        // Far more than one connection reads in a turn, all at once.
        let frames: Vec<Vec<u8>> = (0..4000u32)
            .map(|i| frame(Code::POST, &i.to_be_bytes(), &[0x44; 1000]))
            .collect();
        let all = frames.concat();
        let writer = std::thread::spawn(move || busy.write_all(&all).map(|()| busy));
        quiet.write_all(&frame(Code::PING, b"q", b"")).unwrap();
        let got = recv_frames(&t, frames.len() + 1);
        let _busy = writer.join().unwrap().expect("the burst written");
        let from_busy: Vec<&Vec<u8>> = got
            .iter()
            .filter(|(_, p)| *p == busy_addr)
            .map(|(b, _)| b)
            .collect();
        assert_eq!(from_busy.len(), frames.len());
        assert!(from_busy.iter().zip(&frames).all(|(a, b)| *a == b));
        assert!(got.contains(&(frame(Code::PING, b"q", b""), quiet_addr)));
    }
}
