//! CoAP over TCP (RFC 8323), plain: a listening socket, one reader thread
//! per accepted connection, frames delivered whole in arrival order through
//! one channel. A peer is its connection's remote address.
//!
//! Reader threads reassemble frames that arrive split or coalesced (with
//! [`decode_frame`]). What is left over when a connection ends — a partial
//! frame, or a frame over [`MAX_FRAME`] — is still delivered, as bytes that
//! do not decode, before the connection is reported closed.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::udp::{MAX_DATAGRAM, canonical};
use crate::coap::tcp::{Frame, decode_frame};

/// The largest frame nsh accepts (and announces as Max-Message-Size).
pub const MAX_FRAME: usize = MAX_DATAGRAM;

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

enum Event {
    Accepted(SocketAddr),
    Frame(Vec<u8>, SocketAddr),
    Closed(SocketAddr, String),
}

/// A listening TCP socket and its connections.
#[derive(Debug)]
pub struct TcpTransport {
    local: SocketAddr,
    connections: Arc<Mutex<HashMap<SocketAddr, TcpStream>>>,
    events: Mutex<Receiver<Event>>,
    accepted: Mutex<Vec<SocketAddr>>,
    notices: Mutex<Vec<String>>,
    stop: Arc<AtomicBool>,
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
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel();
        let connections = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (connections.clone(), stop.clone());
        std::thread::Builder::new()
            .name("nsh-tcp-accept".into())
            .spawn(move || accept_loop(listener, c, tx, s))?;
        Ok(TcpTransport {
            local,
            connections,
            events: Mutex::new(rx),
            accepted: Mutex::new(Vec::new()),
            notices: Mutex::new(Vec::new()),
            stop,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Writes one frame to the connection with `peer`.
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        let stream = lock(&self.connections)
            .get(&canonical(peer))
            .map(TcpStream::try_clone)
            .transpose()?;
        match stream {
            Some(mut s) => s.write_all(bytes),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("no TCP connection with {peer}"),
            )),
        }
    }

    /// Waits up to `timeout` for one whole frame. `Ok(None)` on timeout, and
    /// when a connection was accepted or closed (see
    /// [`TcpTransport::take_accepted`], [`TcpTransport::take_notices`]).
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
            Ok(Event::Accepted(peer)) => {
                lock(&self.notices).push(format!("TCP connection from {peer}"));
                lock(&self.accepted).push(peer);
                Ok(None)
            }
            Ok(Event::Closed(peer, why)) => {
                lock(&self.connections).remove(&peer);
                lock(&self.notices).push(format!("TCP connection with {peer} closed: {why}"));
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
        std::mem::take(&mut *lock(&self.accepted))
    }

    /// Connections opened and closed since the last call, one line each.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.notices))
    }

    /// Open connections.
    pub fn peers(&self) -> Vec<SocketAddr> {
        lock(&self.connections).keys().copied().collect()
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in lock(&self.connections).values() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    connections: Arc<Mutex<HashMap<SocketAddr, TcpStream>>>,
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
) {
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
        let setup = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_nodelay(true))
            .and_then(|()| stream.set_read_timeout(Some(POLL)))
            .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(5))))
            .and_then(|()| stream.try_clone());
        let Ok(writer) = setup else { continue };
        lock(&connections).insert(peer, writer);
        if tx.send(Event::Accepted(peer)).is_err() {
            return;
        }
        let (tx, stop) = (tx.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("nsh-tcp-conn".into())
            .spawn(move || read_loop(stream, peer, tx, stop));
        if spawned.is_err() {
            lock(&connections).remove(&peer);
        }
    }
}

/// Reads one connection until it ends, sending each whole frame.
fn read_loop(mut stream: TcpStream, peer: SocketAddr, tx: Sender<Event>, stop: Arc<AtomicBool>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let why = loop {
        if stop.load(Ordering::SeqCst) {
            break "server stopped listening".to_string();
        }
        match stream.read(&mut chunk) {
            Ok(0) => break "closed by the peer".to_string(),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => break e.to_string(),
        }
        match split_frames(&mut pending) {
            Ok(frames) => {
                for f in frames {
                    let _ = tx.send(Event::Frame(f, peer));
                }
            }
            Err((frames, too_big)) => {
                for f in frames {
                    let _ = tx.send(Event::Frame(f, peer));
                }
                let _ = stream.shutdown(Shutdown::Both);
                break too_big;
            }
        }
    };
    if !pending.is_empty() {
        // Nothing received is lost: a partial frame is delivered as is.
        let _ = tx.send(Event::Frame(std::mem::take(&mut pending), peer));
    }
    let _ = tx.send(Event::Closed(peer, why));
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
}
