//! CoAP over TCP (RFC 8323), plain or over TLS 1.2 (`coaps+tcp`, RFC 8323
//! §9): a listening socket, and per accepted connection one reader thread
//! and one writer thread (plain), or one thread that owns the connection's
//! TLS session (TLS). A peer is its connection's remote address.
//!
//! Reader threads reassemble frames that arrive split or coalesced (with
//! [`decode_frame`]) and deliver them whole, in arrival order, through one
//! bounded channel: while it is full they stop reading, and TCP flow
//! control holds their peers back. What is left over when a connection
//! ends — a partial frame, or a frame over [`MAX_FRAME`] — is still
//! delivered, as bytes that do not decode, before the connection is
//! reported closed.
//!
//! Sending never blocks on a peer: [`TcpTransport::send_to`] puts the frame
//! on the connection's bounded queue and returns; the writer thread writes
//! frames whole, one after the other. A peer that does not keep up loses its
//! connection, never the others their traffic: when its queue is full, or a
//! write fails or makes no progress for [`Limits::write_timeout`], the
//! connection is shut down (so a frame cut short is never followed by more
//! bytes), with one notice naming the peer and the cause, and the peer is
//! reported by [`TcpTransport::take_closed`].
//!
//! Over TLS (with a [`Security`], the same settings as DTLS: PSK table or
//! certificates, cipher suites), an mbed TLS context cannot be split into a
//! read half and a write half, so one thread per connection owns it: it
//! runs the server handshake (up to [`HANDSHAKE_TIMEOUT`]), then in turn
//! writes every frame waiting on the connection's bounded queue and reads
//! with a short socket timeout ([`TLS_POLL`]), reassembling frames as the
//! plain reader does. Sending still never blocks on a peer, and a peer that
//! does not read still loses only its own connection (queue full, or a
//! write without progress for [`Limits::write_timeout`]). The connection is
//! reported to [`TcpTransport::take_accepted`] only once its handshake
//! succeeded, with one notice naming the cipher suite and the identity (PSK
//! identity or certificate subject, kept for [`TcpTransport::identity`]);
//! a failed handshake is one notice naming the peer and the cause, and the
//! connection is closed without being reported accepted or closed.
//!
//! Per-connection state (the map entry, the threads, the queue, the TLS
//! session) ends with the connection; nothing is kept for a closed peer,
//! and connections over [`Limits::max_connections`] are refused. Every
//! limit is in [`Limits`].

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mbedtls::error::codes;
use mbedtls::ssl::Context;
use mbedtls::ssl::config::Transport as TransportKind;

use super::dtls::config::{self, Side, Tls};
use super::dtls::{Security, ffi};
use super::udp::{MAX_DATAGRAM, canonical};
use crate::coap::tcp::{Frame, decode_frame};

/// The largest frame nsh accepts (and announces as Max-Message-Size).
pub const MAX_FRAME: usize = MAX_DATAGRAM;

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// How long a TLS connection's thread waits for bytes from its peer before
/// it looks at its send queue again: the most a queued frame waits.
pub const TLS_POLL: Duration = Duration::from_millis(5);

/// How long a TLS handshake may take, from the accept to the Finished.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// together. While this many wait, readers stop reading, and TCP holds
    /// the peers back.
    pub received_frames: usize,
}

impl Default for Limits {
    /// 128 frames, 5 s, 1024 connections, 1024 received frames.
    fn default() -> Self {
        Limits {
            queue_frames: 128,
            write_timeout: Duration::from_secs(5),
            max_connections: 1024,
            received_frames: 1024,
        }
    }
}

enum Event {
    /// A connection was accepted (wakes `recv`; the notice is already out).
    Accepted,
    Frame(Vec<u8>, SocketAddr),
    /// The reader of connection `id` ended, after delivering its frames.
    Closed(SocketAddr, u64, String),
}

/// One open connection: its socket (to shut it down), its writer's queue,
/// and over TLS the identity its peer authenticated with.
#[derive(Debug)]
struct Conn {
    id: u64,
    stream: TcpStream,
    queue: SyncSender<Vec<u8>>,
    identity: Option<String>,
}

/// What the transport shares with its threads. Lock order: `connections`
/// before any of the lists.
#[derive(Debug, Default)]
struct Shared {
    connections: Mutex<HashMap<SocketAddr, Conn>>,
    accepted: Mutex<Vec<SocketAddr>>,
    closed: Mutex<Vec<SocketAddr>>,
    notices: Mutex<Vec<String>>,
    /// Connection threads still running.
    threads: AtomicUsize,
    /// "TLS" over TLS, else "TCP": how notices name a connection.
    label: &'static str,
}

impl Shared {
    /// Ends connection `id` with `peer` if it is still open: forgets it,
    /// shuts its socket down and says why, once. False when it was already
    /// closed.
    fn close(&self, peer: SocketAddr, id: u64, why: &str) -> bool {
        let line = format!("{} connection with {peer} closed: {why}", self.label);
        self.close_saying(peer, id, line, true)
    }

    /// Like [`Shared::close`] with the whole notice line; `listed`: whether
    /// the peer goes to `closed` (not when it was never accepted).
    fn close_saying(&self, peer: SocketAddr, id: u64, line: String, listed: bool) -> bool {
        let conn = {
            // Forgotten, said and listed at once: whoever sees it gone from
            // `connections` also finds its notice and its `closed` entry.
            let mut connections = lock(&self.connections);
            let conn = match connections.get(&peer) {
                Some(c) if c.id == id => connections.remove(&peer),
                _ => None,
            };
            let Some(conn) = conn else { return false };
            lock(&self.notices).push(line);
            if listed {
                lock(&self.closed).push(peer);
            }
            conn
        };
        let _ = conn.stream.shutdown(Shutdown::Both);
        true
    }
}

/// Counts a connection thread while it runs.
struct Running(Arc<Shared>);

impl Running {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.threads.fetch_add(1, Ordering::SeqCst);
        Running(shared.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.threads.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The TLS configuration connections are served with, and the settings it
/// was built from. The connection threads hold it (and with it the PSK
/// table) until their sessions are gone.
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
    stop: Arc<AtomicBool>,
    tls: Option<Arc<TlsServer>>,
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
        };
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::sync_channel(limits.received_frames);
        let shared = Arc::new(Shared {
            label: if tls.is_some() { "TLS" } else { "TCP" },
            ..Shared::default()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, s, t) = (shared.clone(), stop.clone(), tls.clone());
        std::thread::Builder::new()
            .name("nsh-tcp-accept".into())
            .spawn(move || accept_loop(listener, limits, sh, tx, s, t))?;
        Ok(TcpTransport {
            local,
            limits,
            shared,
            events: Mutex::new(rx),
            stop,
            tls,
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
    /// once; the connection's writer sends it after the frames queued
    /// before it. An error when there is no open connection with `peer`, or
    /// when its queue is full — which closes that connection (see
    /// [`TcpTransport::take_closed`]).
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        let peer = canonical(peer);
        let (id, queued) = match lock(&self.shared.connections).get(&peer) {
            Some(c) => (c.id, c.queue.try_send(bytes.to_vec())),
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!("no TCP connection with {peer}"),
                ));
            }
        };
        let why = match queued {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(_)) => format!(
                "send queue full ({} frames waiting; the peer is not reading)",
                self.limits.queue_frames
            ),
            Err(TrySendError::Disconnected(_)) => "its writer stopped".to_string(),
        };
        self.shared.close(peer, id, &why);
        Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!("TCP connection with {peer} closed: {why}"),
        ))
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
    /// once per connection. Whatever the connection delivered was
    /// delivered before.
    pub fn take_closed(&self) -> Vec<SocketAddr> {
        std::mem::take(&mut *lock(&self.shared.closed))
    }

    /// Connections opened and closed since the last call, one line each.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.shared.notices))
    }

    /// Open connections.
    pub fn peers(&self) -> Vec<SocketAddr> {
        lock(&self.shared.connections).keys().copied().collect()
    }

    /// Reader and writer threads still running.
    #[cfg(test)]
    fn live_threads(&self) -> usize {
        self.shared.threads.load(Ordering::SeqCst)
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Dropping the queues ends the writers; the shutdown ends the
        // readers and any write in progress.
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for c in connections.values() {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    limits: Limits,
    shared: Arc<Shared>,
    tx: SyncSender<Event>,
    stop: Arc<AtomicBool>,
    tls: Option<Arc<TlsServer>>,
) {
    let mut next_id: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(_) => {
                std::thread::sleep(POLL);
                continue;
            }
        };
        let peer = canonical(peer);
        let open = lock(&shared.connections).len();
        if open >= limits.max_connections {
            lock(&shared.notices).push(format!(
                "TCP connection from {peer} refused: {open} connections are open (the limit)"
            ));
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        next_id = next_id.wrapping_add(1);
        let id = next_id;
        let setup = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_nodelay(true))
            .and_then(|()| stream.set_read_timeout(Some(POLL)))
            .and_then(|()| stream.set_write_timeout(Some(limits.write_timeout)))
            .and_then(|()| Ok((stream.try_clone()?, stream.try_clone()?)));
        let (writer, kept) = match setup {
            Ok(x) => x,
            Err(e) => {
                lock(&shared.notices).push(format!(
                    "TCP connection from {peer} dropped: cannot set up its socket: {e}"
                ));
                let _ = stream.shutdown(Shutdown::Both);
                continue;
            }
        };
        let (queue, frames) = mpsc::sync_channel(limits.queue_frames);
        {
            // Listed and said at once (before any close can be).
            let mut connections = lock(&shared.connections);
            connections.insert(
                peer,
                Conn {
                    id,
                    stream: kept,
                    queue,
                    identity: None,
                },
            );
            if tls.is_none() {
                lock(&shared.notices).push(format!("TCP connection from {peer}"));
                lock(&shared.accepted).push(peer);
            }
        }
        if let Some(tls) = &tls {
            // One thread owns the session; it reports the connection
            // accepted once the handshake succeeded.
            drop(writer);
            let conn = TlsConn {
                peer,
                id,
                limits,
                tls: tls.clone(),
                shared: shared.clone(),
                tx: tx.clone(),
                stop: stop.clone(),
            };
            let running = Running::new(&shared);
            let spawned = std::thread::Builder::new()
                .name("nsh-tls-conn".into())
                .spawn(move || conn.run(stream, frames, running));
            if let Err(e) = spawned {
                let line =
                    format!("TLS connection from {peer} dropped: cannot start its thread: {e}");
                shared.close_saying(peer, id, line, false);
            }
            continue;
        }
        // Only a wake-up for `recv`: when frames are waiting, it is awake.
        if let Err(TrySendError::Disconnected(_)) = tx.try_send(Event::Accepted) {
            return;
        }
        let w = (Running::new(&shared), shared.clone());
        let spawned = std::thread::Builder::new()
            .name("nsh-tcp-write".into())
            .spawn(move || write_loop(writer, peer, id, frames, limits, w));
        if let Err(e) = spawned {
            shared.close(peer, id, &format!("cannot start its writer: {e}"));
            continue;
        }
        let (r, tx, stop) = (Running::new(&shared), tx.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("nsh-tcp-read".into())
            .spawn(move || read_loop(stream, peer, id, tx, stop, r));
        if let Err(e) = spawned {
            shared.close(peer, id, &format!("cannot start its reader: {e}"));
        }
    }
}

/// Writes the queued frames of one connection, each whole, until the queue
/// is dropped (the connection closed) or a write fails, which closes it.
fn write_loop(
    mut stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    frames: Receiver<Vec<u8>>,
    limits: Limits,
    (_running, shared): (Running, Arc<Shared>),
) {
    for frame in frames {
        if let Err(e) = stream.write_all(&frame) {
            let why = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
                    "write timed out: the peer read nothing for {} s",
                    limits.write_timeout.as_secs_f64()
                ),
                _ => format!("write failed: {e}"),
            };
            shared.close(peer, id, &why);
            return;
        }
    }
}

/// What one read of a connection brought.
enum Absorbed {
    /// Bytes, now in `pending`.
    More,
    /// Nothing yet (a read timeout).
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

/// Sends every whole frame in `pending` on; `Err(why)` when the next one
/// is too big (the frames before it are sent).
fn forward_frames(
    pending: &mut Vec<u8>,
    tx: &SyncSender<Event>,
    peer: SocketAddr,
) -> Result<(), String> {
    let (frames, too_big) = match split_frames(pending) {
        Ok(frames) => (frames, None),
        Err((frames, too_big)) => (frames, Some(too_big)),
    };
    for f in frames {
        let _ = tx.send(Event::Frame(f, peer));
    }
    too_big.map_or(Ok(()), Err)
}

/// At the end of a connection: nothing received is lost, a partial frame
/// is delivered as it is.
fn forward_partial(pending: &mut Vec<u8>, tx: &SyncSender<Event>, peer: SocketAddr) {
    if !pending.is_empty() {
        let _ = tx.send(Event::Frame(std::mem::take(pending), peer));
    }
}

/// Reads one connection until it ends, sending each whole frame.
fn read_loop(
    mut stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    tx: SyncSender<Event>,
    stop: Arc<AtomicBool>,
    _running: Running,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let why = loop {
        if stop.load(Ordering::SeqCst) {
            break "server stopped listening".to_string();
        }
        match absorb(stream.read(&mut chunk), &chunk, &mut pending) {
            Absorbed::More => {}
            Absorbed::Nothing => continue,
            Absorbed::End(why) => break why,
        }
        if let Err(too_big) = forward_frames(&mut pending, &tx, peer) {
            let _ = stream.shutdown(Shutdown::Both);
            break too_big;
        }
    };
    forward_partial(&mut pending, &tx, peer);
    let _ = tx.send(Event::Closed(peer, id, why));
}

/// What the thread of one TLS connection needs besides its socket and its
/// queue.
struct TlsConn {
    peer: SocketAddr,
    id: u64,
    limits: Limits,
    tls: Arc<TlsServer>,
    shared: Arc<Shared>,
    tx: SyncSender<Event>,
    stop: Arc<AtomicBool>,
}

/// Whether an mbed TLS error only means "not yet" on a socket with a
/// timeout.
fn would_block(e: &mbedtls::Error) -> bool {
    matches!(
        e.high_level(),
        Some(codes::SslWantRead | codes::SslWantWrite)
    )
}

impl TlsConn {
    /// Runs the connection: the handshake, then its frames both ways until
    /// it ends.
    fn run(self, stream: TcpStream, frames: Receiver<Vec<u8>>, _running: Running) {
        // The context (and the session in it) goes before `self.tls`, whose
        // PSK table the configuration points into.
        let mut ctx = Context::new(self.tls.tls.config.clone());
        if stream.set_read_timeout(Some(TLS_POLL)).is_err() || !self.handshake(&mut ctx, stream) {
            return;
        }
        let why = self.serve(&mut ctx, &frames);
        ctx.close();
        // A no-op for `recv` when the connection was closed already.
        let _ = self.tx.send(Event::Closed(self.peer, self.id, why));
    }

    /// Runs the server handshake; true when established (the connection is
    /// then said, listed as accepted, and its identity kept). A failure is
    /// one notice, and the connection is gone.
    fn handshake(&self, ctx: &mut Context<TcpStream>, stream: TcpStream) -> bool {
        let peer = self.peer;
        let deadline = std::time::Instant::now() + HANDSHAKE_TIMEOUT;
        let (mut outcome, mut identity) = ffi::stepping(peer, || ctx.establish(stream, None));
        let failure = loop {
            match outcome {
                Ok(()) => break None,
                Err(e) if would_block(&e) => {
                    if self.stop.load(Ordering::SeqCst) {
                        break Some("the server stopped listening".to_string());
                    }
                    if std::time::Instant::now() >= deadline {
                        break Some(format!(
                            "the client stopped answering (no handshake within {} s)",
                            HANDSHAKE_TIMEOUT.as_secs()
                        ));
                    }
                    let (o, i) = ffi::stepping(peer, || ctx.handshake());
                    outcome = o;
                    identity = i.or(identity);
                }
                Err(e) => {
                    let mut why = config::handshake_failure(&e);
                    // The session being negotiated holds the flags (there
                    // is no established session to ask for the chain).
                    if e.high_level() == Some(codes::X509CertVerifyFailed)
                        && let Err(flags) = ctx.verify_result()
                    {
                        why = format!(
                            "the certificate was rejected: {} ({why})",
                            config::describe_verify_error(flags)
                        );
                    }
                    break Some(why);
                }
            }
        };
        if let Some(why) = failure {
            let line = format!("TLS handshake with {peer} failed: {why}");
            self.shared.close_saying(peer, self.id, line, false);
            return false;
        }
        if let Ok(Some(chain)) = ctx.peer_cert()
            && let Some(cert) = chain.iter().next()
            && let Ok(subject) = cert.subject()
        {
            identity = Some(subject);
        }
        let suite = ctx.ciphersuite().ok();
        {
            // Said and listed at once, unless it was closed meanwhile.
            let mut connections = lock(&self.shared.connections);
            let Some(conn) = connections.get_mut(&peer).filter(|c| c.id == self.id) else {
                return false;
            };
            conn.identity = identity.clone();
            lock(&self.shared.notices).push(config::established_line(
                "TLS",
                peer,
                suite,
                identity.as_deref(),
                None,
                None,
            ));
            lock(&self.shared.accepted).push(peer);
        }
        // Wakes `recv`; frames waiting wake it anyway.
        let _ = self.tx.try_send(Event::Accepted);
        true
    }

    /// Writes what is queued and reads what arrives, in turn, until the
    /// connection ends. Returns why.
    fn serve(&self, ctx: &mut Context<TcpStream>, frames: &Receiver<Vec<u8>>) -> String {
        let peer = self.peer;
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        let why = 'conn: loop {
            if self.stop.load(Ordering::SeqCst) {
                break "server stopped listening".to_string();
            }
            loop {
                match frames.try_recv() {
                    Ok(frame) => {
                        if let Err(e) = ctx.write_all(&frame) {
                            let why = match e.kind() {
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
                                    "write timed out: the peer read nothing for {} s",
                                    self.limits.write_timeout.as_secs_f64()
                                ),
                                _ => format!("write failed: {e}"),
                            };
                            self.shared.close(peer, self.id, &why);
                            break 'conn why;
                        }
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    // Closed elsewhere (queue full, the transport dropped).
                    Err(mpsc::TryRecvError::Disconnected) => break 'conn "closed".to_string(),
                }
            }
            match absorb(ctx.read(&mut chunk), &chunk, &mut pending) {
                Absorbed::More => {}
                Absorbed::Nothing => continue,
                Absorbed::End(why) => break why,
            }
            if let Err(too_big) = forward_frames(&mut pending, &self.tx, peer) {
                break too_big;
            }
        };
        forward_partial(&mut pending, &self.tx, peer);
        why
    }
}

/// Takes every whole frame off the front of `pending`. `Err` (with the
/// frames before it) when the next frame would be bigger than [`MAX_FRAME`];
/// its start is left in `pending`.
#[allow(clippy::type_complexity)]
fn split_frames(pending: &mut Vec<u8>) -> Result<Vec<Vec<u8>>, (Vec<Vec<u8>>, String)> {
    let mut frames = Vec::new();
    loop {
        match decode_frame(pending) {
            Frame::Complete(len, _) => {
                frames.push(pending.drain(..len).collect());
            }
            Frame::Incomplete(more) => {
                let total = pending.len().saturating_add(more);
                if total > MAX_FRAME {
                    return Err((
                        frames,
                        format!("frame of {total} bytes or more is over the limit of {MAX_FRAME}"),
                    ));
                }
                return Ok(frames);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::tcp::{decode, encode};
    use crate::coap::{Code, Message, Type};
    use std::time::Instant;

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
        assert!(t.send_to(&[0, 0xe2], me).is_err());
    }

    #[test]
    fn oversized_frames_end_the_connection() {
        let mut pending = vec![0xf0, 0xff, 0xff, 0xff, 0xff, 0x02];
        let err = split_frames(&mut pending).unwrap_err();
        assert!(err.0.is_empty());
        assert!(err.1.contains("over the limit"), "{}", err.1);
    }

    fn loopback() -> SocketAddr {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)
    }

    /// Waits (up to 10 s) until `done` holds, without touching `recv`.
    fn wait_until(mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        done()
    }

    /// Handles every event still queued once the connection threads ended.
    fn drain(t: &TcpTransport) -> Vec<String> {
        assert!(
            wait_until(|| t.live_threads() == 0),
            "threads still running"
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
        let t = TcpTransport::bind_with(
            loopback(),
            Limits {
                queue_frames: 4,
                write_timeout: Duration::from_secs(60),
                ..Limits::default()
            },
        )
        .unwrap();
        let mut stalled = connect(&t);
        let me = canonical(stalled.local_addr().unwrap());
        assert!(wait_until(|| t.peers() == vec![me]));
        let big = frame(Code::POST, b"s", &[0x55; 60_000]);
        let refused = (0..2000).find(|_| t.send_to(&big, me).is_err());
        assert!(refused.is_some(), "send_to never reported the full queue");
        assert!(t.peers().is_empty(), "{:?}", t.peers());
        assert_eq!(t.take_closed(), vec![me]);
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

    #[test]
    fn a_write_that_makes_no_progress_closes_the_connection_with_one_notice() {
        let t = TcpTransport::bind_with(
            loopback(),
            Limits {
                queue_frames: 1000,
                write_timeout: Duration::from_millis(200),
                ..Limits::default()
            },
        )
        .unwrap();
        let stalled = connect(&t);
        let me = canonical(stalled.local_addr().unwrap());
        assert!(wait_until(|| t.peers() == vec![me]));
        let big = frame(Code::POST, b"s", &[0x55; 60_000]);
        let _ = (0..300).find(|_| t.send_to(&big, me).is_err());
        assert!(wait_until(|| t.peers().is_empty()), "{:?}", t.peers());
        assert_eq!(t.take_closed(), vec![me]);
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
        assert_eq!(t.take_closed(), vec![me]);
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
            closed.extend(t.take_closed());
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
        assert_eq!(t.take_closed(), vec![me]);
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
}
