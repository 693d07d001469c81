//! An in-memory transport: datagrams pass through channels instead of a
//! socket, so the whole server (driver thread, core, effects) is tested in
//! one process without ports. The test side holds a [`MemoryNetwork`]: it
//! sends datagrams as any peer address, reads what the server sent, and can
//! make the server's sends fail.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Datagram = (Vec<u8>, SocketAddr);

/// The server's end.
#[derive(Debug)]
pub struct MemoryTransport {
    local: SocketAddr,
    incoming: Mutex<Receiver<Datagram>>,
    outgoing: Sender<Datagram>,
    fail: Arc<AtomicBool>,
}

/// The test's end: the network every peer is on.
#[derive(Debug)]
pub struct MemoryNetwork {
    to_server: Sender<Datagram>,
    from_server: Mutex<Receiver<Datagram>>,
    fail: Arc<AtomicBool>,
}

/// A connected pair; the server's end is bound to `local`.
pub fn pair(local: SocketAddr) -> (MemoryTransport, MemoryNetwork) {
    let (to_server, incoming) = channel();
    let (outgoing, from_server) = channel();
    let fail = Arc::new(AtomicBool::new(false));
    (
        MemoryTransport {
            local,
            incoming: Mutex::new(incoming),
            outgoing,
            fail: fail.clone(),
        },
        MemoryNetwork {
            to_server,
            from_server: Mutex::new(from_server),
            fail,
        },
    )
}

impl MemoryTransport {
    /// The address it pretends to be bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Delivers a datagram to the network, or fails as told.
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "the test network refuses sends",
            ));
        }
        self.outgoing
            .send((bytes.to_vec(), peer))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the test network is gone"))
    }

    /// Waits up to `timeout` for a datagram from a peer.
    pub fn recv(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        let rx = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
        match rx.recv_timeout(timeout) {
            Ok((bytes, peer)) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Ok(Some((n, peer)))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                // The test ended: behave like a quiet socket.
                drop(rx);
                std::thread::sleep(timeout.min(Duration::from_millis(10)));
                Ok(None)
            }
        }
    }
}

impl MemoryNetwork {
    /// `from` sends `bytes` to the server.
    pub fn send(&self, from: SocketAddr, bytes: &[u8]) {
        let _ = self.to_server.send((bytes.to_vec(), from));
    }

    /// The next datagram the server sent, waiting up to `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        self.from_server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(timeout)
            .ok()
    }

    /// Makes every send of the server fail (`true`) or succeed again.
    pub fn fail_sends(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }
}
