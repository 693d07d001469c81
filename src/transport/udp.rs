//! Plain UDP: one socket serving every peer, IPv4 or dual-stack IPv6.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// The largest datagram nsh reads; bigger ones are truncated by the kernel.
pub const MAX_DATAGRAM: usize = 65535;

/// A bound UDP socket shared by the receiving thread and senders.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    /// The read timeout last set, in microseconds (saves a system call per
    /// receive when it does not change).
    read_timeout_us: std::sync::atomic::AtomicU64,
}

impl UdpTransport {
    /// Binds to `port` on all addresses: `[::]` (dual-stack) when `ipv6`,
    /// else `0.0.0.0`. Port 0 picks a free port.
    pub fn bind(port: u16, ipv6: bool) -> io::Result<Self> {
        let ip: IpAddr = if ipv6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        Self::bind_addr(SocketAddr::new(ip, port))
    }

    /// Binds to an exact address.
    pub fn bind_addr(addr: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        grow_buffers(&socket, SOCKET_BUFFER);
        Ok(UdpTransport {
            socket,
            read_timeout_us: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The socket itself (DTLS shares it).
    pub(crate) fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends one datagram. An IPv4 peer on a dual-stack socket is mapped.
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        let peer = match (peer, self.socket.local_addr()) {
            (SocketAddr::V4(v4), Ok(SocketAddr::V6(_))) => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            _ => peer,
        };
        self.socket.send_to(bytes, peer).map(|_| ())
    }

    /// Waits up to `timeout` for one datagram. `Ok(None)` on timeout.
    pub fn recv(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        use std::sync::atomic::Ordering;
        // Whole milliseconds, at least one: timeouts repeat, and the socket
        // option is set only when it changes.
        let ms = timeout.as_millis().clamp(1, u128::from(u32::MAX)) as u64;
        if self.read_timeout_us.swap(ms * 1000, Ordering::Relaxed) != ms * 1000 {
            self.socket
                .set_read_timeout(Some(Duration::from_millis(ms)))?;
        }
        match self.socket.recv_from(buf) {
            Ok((n, peer)) => Ok(Some((n, canonical(peer)))),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// The receive and send buffer sizes nsh asks for: a storm of thousands of
/// datagrams waits there while the reader is not scheduled. The kernel caps
/// the request at `net.core.rmem_max`/`wmem_max` unless the process may
/// exceed them (CAP_NET_ADMIN: `SO_RCVBUFFORCE`, `SO_SNDBUFFORCE`).
pub const SOCKET_BUFFER: usize = 16 << 20;

/// Asks for `bytes` of receive and send buffer on `socket`, beyond the
/// system's maxima when permitted; what the kernel grants is what
/// [`buffer_sizes`] reads back. Failing to grow them is not an error.
pub fn grow_buffers(socket: &UdpSocket, bytes: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(socket, sockopt::RcvBufForce, &bytes).is_err() {
        let _ = setsockopt(socket, sockopt::RcvBuf, &bytes);
    }
    if setsockopt(socket, sockopt::SndBufForce, &bytes).is_err() {
        let _ = setsockopt(socket, sockopt::SndBuf, &bytes);
    }
}

/// The receive and send buffer sizes the kernel granted `socket`, in bytes
/// (as Linux reports them: twice what it accounts for data).
pub fn buffer_sizes(socket: &UdpSocket) -> (usize, usize) {
    use nix::sys::socket::{getsockopt, sockopt};
    (
        getsockopt(socket, sockopt::RcvBuf).unwrap_or(0),
        getsockopt(socket, sockopt::SndBuf).unwrap_or(0),
    )
}

/// IPv4-mapped IPv6 addresses shown as plain IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dual_stack_socket_talks_to_ipv4_peers() {
        let server = UdpTransport::bind(0, true).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"hi", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 16];
        let (n, peer) = server
            .recv(&mut buf, Duration::from_secs(2))
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"hi");
        assert_eq!(peer, client.local_addr().unwrap());
        server.send_to(b"yo", peer).unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"yo");
    }

    #[test]
    fn the_socket_buffers_are_grown_beyond_the_default() {
        let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (default_rcv, default_snd) = buffer_sizes(&plain);
        let server = UdpTransport::bind(0, false).unwrap();
        let (rcv, snd) = buffer_sizes(server.socket());
        // At least what net.core.rmem_max allows, which is more than the
        // default on any system where it was raised.
        let max = |f: &str| {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .unwrap_or(0)
        };
        let want_rcv = default_rcv.max(2 * max("/proc/sys/net/core/rmem_max").min(SOCKET_BUFFER));
        let want_snd = default_snd.max(2 * max("/proc/sys/net/core/wmem_max").min(SOCKET_BUFFER));
        assert!(rcv >= want_rcv, "receive buffer {rcv}, wanted {want_rcv}");
        assert!(snd >= want_snd, "send buffer {snd}, wanted {want_snd}");
    }
}
