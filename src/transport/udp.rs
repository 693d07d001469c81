//! Plain UDP: one socket serving every peer, IPv4 or dual-stack IPv6.
//! On request ([`UdpTransport::watch_unreachable`], for DTLS) the socket
//! also collects ICMP errors (port, host or network unreachable) from the
//! kernel's error queue, with the destination each was about.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::faults::{Faults, OutgoingHold, REORDER_HOLD};

/// The largest datagram nsh reads; bigger ones are truncated by the kernel.
pub const MAX_DATAGRAM: usize = 65535;

/// A bound UDP socket shared by the receiving thread and senders. Every
/// datagram passes the fault injector ([`Faults`], off by default) on its
/// way in and out; `rebind` swaps the socket for one on a new port.
#[derive(Debug)]
pub struct UdpTransport {
    socket: RwLock<Arc<UdpSocket>>,
    /// The read timeout last set, in microseconds (saves a system call per
    /// receive when it does not change).
    read_timeout_us: AtomicU64,
    faults: Arc<Faults>,
    held_out: Arc<OutgoingHold>,
    /// Bound to `[::]`: IPv4 peers are written IPv4-mapped (the family
    /// stays across `rebind`).
    dual_stack: bool,
    /// ICMP errors are asked for (see [`UdpTransport::watch_unreachable`]).
    watching: AtomicBool,
    /// Destinations an ICMP error came back for, and what it said; not yet
    /// taken.
    unreachable: Mutex<Vec<(SocketAddr, &'static str)>>,
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
        let dual_stack = socket.local_addr()?.is_ipv6();
        Ok(UdpTransport {
            dual_stack,
            socket: RwLock::new(Arc::new(socket)),
            read_timeout_us: AtomicU64::new(0),
            faults: Arc::new(Faults::default()),
            held_out: Arc::new(OutgoingHold::default()),
            watching: AtomicBool::new(false),
            unreachable: Mutex::new(Vec::new()),
        })
    }

    /// Asks the kernel for the ICMP errors datagrams run into (Linux's
    /// `IP_RECVERR`, and `IPV6_RECVERR` on a dual-stack socket), also after
    /// `rebind`; [`UdpTransport::take_unreachable`] gives them.
    pub fn watch_unreachable(&self) -> io::Result<()> {
        self.watching.store(true, Ordering::Relaxed);
        recv_errors(&self.current(), self.dual_stack)
    }

    /// Destinations an ICMP error came back for since the last call, with
    /// what it said (`port unreachable (ICMP)`, …).
    pub fn take_unreachable(&self) -> Vec<(SocketAddr, &'static str)> {
        std::mem::take(
            &mut *self
                .unreachable
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Reads the socket's error queue empty, keeping the ICMP errors.
    fn drain_errors(&self, socket: &UdpSocket) {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
        use std::os::fd::AsRawFd;
        let mut found = Vec::new();
        // A bounded number of turns: the queue is short, and a socket that
        // kept answering must not hold the receiver here.
        for _ in 0..64 {
            let mut data = [0u8; 64];
            let mut iov = [io::IoSliceMut::new(&mut data)];
            let mut space = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
            let Ok(msg) = recvmsg::<SockaddrStorage>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
            ) else {
                break;
            };
            let to = msg.address.and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from((v4.ip(), v4.port())))
                    .or_else(|| {
                        a.as_sockaddr_in6()
                            .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
                    })
            });
            let Ok(cmsgs) = msg.cmsgs() else {
                continue;
            };
            for cmsg in cmsgs {
                let errno = match cmsg {
                    ControlMessageOwned::Ipv4RecvErr(e, _)
                    | ControlMessageOwned::Ipv6RecvErr(e, _) => e.ee_errno,
                    _ => continue,
                };
                let what = match i32::try_from(errno).unwrap_or(0) {
                    nix::libc::ECONNREFUSED => "port unreachable (ICMP)",
                    nix::libc::EHOSTUNREACH => "host unreachable (ICMP)",
                    nix::libc::ENETUNREACH => "network unreachable (ICMP)",
                    _ => continue,
                };
                if let Some(to) = to {
                    found.push((canonical(to), what));
                }
            }
        }
        if !found.is_empty() {
            self.unreachable
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(found);
        }
    }

    /// The socket in use now.
    fn current(&self) -> Arc<UdpSocket> {
        self.socket
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The fault injector of this socket.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Replaces the socket by a new one on a free port of the same address
    /// (same family); returns the new address. Datagrams to the old port
    /// are no longer read once the receiver's current wait ends.
    pub fn rebind(&self) -> io::Result<SocketAddr> {
        let old = self.current().local_addr()?;
        let fresh = UdpSocket::bind(SocketAddr::new(old.ip(), 0))?;
        grow_buffers(&fresh, SOCKET_BUFFER);
        if self.watching.load(Ordering::Relaxed) {
            recv_errors(&fresh, self.dual_stack)?;
        }
        let addr = fresh.local_addr()?;
        *self.socket.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        self.read_timeout_us.store(0, Ordering::Relaxed);
        Ok(addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.current().local_addr()
    }

    /// `peer` as the socket wants it: IPv4 peers are mapped on a
    /// dual-stack socket.
    pub fn socket_addr(&self, peer: SocketAddr) -> SocketAddr {
        map_for(self.dual_stack, peer)
    }

    /// Sends one datagram (unless the fault injector decides otherwise).
    /// An IPv4 peer on a dual-stack socket is mapped.
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        let socket = self.current();
        let dual = self.dual_stack;
        if self.faults.is_off() {
            return send_on(&socket, dual, bytes, peer);
        }
        let fate = self.faults.decide(true, canonical(peer), bytes);
        let mut result = Ok(());
        for (i, delay) in fate.copies.iter().enumerate() {
            if i == 0 && fate.reordered {
                let (ticket, previous) = self.held_out.hold(bytes.to_vec(), peer);
                if let Some((b, p)) = previous {
                    result = result.and(send_on(&socket, dual, &b, p));
                }
                let held = self.held_out.clone();
                let socket = socket.clone();
                let wait = (*delay).max(REORDER_HOLD);
                spawn_sender(wait, move || {
                    held.take_if(ticket)
                        .map(|(b, p)| send_on(&socket, dual, &b, p))
                        .unwrap_or(Ok(()))
                })?;
            } else if delay.is_zero() {
                result = result.and(send_on(&socket, dual, bytes, peer));
            } else {
                let bytes = bytes.to_vec();
                let socket = socket.clone();
                spawn_sender(*delay, move || send_on(&socket, dual, &bytes, peer))?;
            }
        }
        if !fate.reordered
            && !fate.copies.is_empty()
            && let Some((b, p)) = self.held_out.take()
        {
            // A datagram held back for reordering goes after this one.
            result = result.and(send_on(&socket, dual, &b, p));
        }
        result
    }

    /// Waits up to `timeout` for one datagram. `Ok(None)` on timeout.
    pub fn recv(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if let Some((bytes, peer)) = self.faults.pop_due(now) {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                return Ok(Some((n, peer)));
            }
            let wait = self
                .faults
                .next_due()
                .map_or(deadline, |due| due.min(deadline))
                .saturating_duration_since(now);
            let Some((n, peer)) = self.recv_once(buf, wait)? else {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                continue;
            };
            if self.faults.is_off() {
                return Ok(Some((n, peer)));
            }
            let bytes = buf.get(..n).unwrap_or_default();
            let fate = self.faults.decide(false, peer, bytes);
            self.faults
                .hold_incoming(&fate, bytes, peer, Instant::now());
        }
    }

    /// Whether [`UdpTransport::wait_readable`] can tell: not while the fault
    /// injection is engaged (datagrams it holds back come from a queue, not
    /// from the socket, also after it was switched off).
    pub fn can_wait_readable(&self) -> bool {
        self.faults.is_idle()
    }

    /// Waits up to `timeout` (whole milliseconds, at least one) until a
    /// datagram can be read from the socket, without reading it: `true`
    /// when one can. `None` when that cannot be told from the socket (see
    /// [`UdpTransport::can_wait_readable`]): only `recv` knows when the next
    /// held datagram is due.
    pub fn wait_readable(&self, timeout: Duration) -> Option<io::Result<bool>> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        if !self.can_wait_readable() {
            return None;
        }
        let socket = self.current();
        let ms = timeout.as_millis().clamp(1, u128::from(u16::MAX)) as u16;
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        Some(match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(io::Error::from(e)),
        })
    }

    /// One read from the socket, up to `timeout`.
    fn recv_once(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        let socket = self.current();
        // Whole milliseconds, at least one: timeouts repeat, and the socket
        // option is set only when it changes.
        let ms = timeout.as_millis().clamp(1, u128::from(u32::MAX)) as u64;
        if self.read_timeout_us.swap(ms * 1000, Ordering::Relaxed) != ms * 1000 {
            socket.set_read_timeout(Some(Duration::from_millis(ms)))?;
        }
        match socket.recv_from(buf) {
            Ok((n, peer)) => Ok(Some((n, canonical(peer)))),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        // A signal (Ctrl-C) during the wait: not an error of
                        // the socket; whoever waits looks at the interrupt.
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            // An ICMP error reported on the socket: kept with its
            // destination when asked for.
            Err(e)
                if self.watching.load(Ordering::Relaxed)
                    && matches!(
                        e.raw_os_error(),
                        Some(
                            nix::libc::ECONNREFUSED
                                | nix::libc::EHOSTUNREACH
                                | nix::libc::ENETUNREACH
                        )
                    ) =>
            {
                self.drain_errors(&socket);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Asks for ICMP errors on `socket` (`IPV6_RECVERR` too when dual-stack).
fn recv_errors(socket: &UdpSocket, dual_stack: bool) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    if dual_stack {
        setsockopt(socket, sockopt::Ipv6RecvErr, &true).map_err(io::Error::from)?;
        // IPv4 peers (mapped) report through the IPv4 option; best effort.
        let _ = setsockopt(socket, sockopt::Ipv4RecvErr, &true);
        return Ok(());
    }
    setsockopt(socket, sockopt::Ipv4RecvErr, &true).map_err(io::Error::from)
}

/// `peer` mapped to IPv6 when the socket is dual-stack.
fn map_for(dual_stack: bool, peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(v4) if dual_stack => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        _ => peer,
    }
}

fn send_on(socket: &UdpSocket, dual_stack: bool, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
    socket.send_to(bytes, map_for(dual_stack, peer)).map(|_| ())
}

/// Runs `send` after `delay` on a thread of its own (a delayed datagram);
/// a failure then is the same as a loss on the way.
fn spawn_sender(
    delay: Duration,
    send: impl FnOnce() -> io::Result<()> + Send + 'static,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("nsh-delayed-send".into())
        .spawn(move || {
            std::thread::sleep(delay);
            let _ = send();
        })
        .map(|_| ())
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
    fn an_icmp_port_unreachable_is_kept_with_its_destination_when_watched() {
        // A port just released: the kernel answers with port unreachable.
        let gone = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let server = UdpTransport::bind(0, false).unwrap();
        server.watch_unreachable().unwrap();
        server.send_to(b"hello?", gone).unwrap();
        let mut buf = [0u8; 16];
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while seen.is_empty() && Instant::now() < deadline {
            assert!(
                server
                    .recv(&mut buf, Duration::from_millis(50))
                    .unwrap()
                    .is_none()
            );
            seen = server.take_unreachable();
        }
        assert_eq!(seen, vec![(gone, "port unreachable (ICMP)")]);
        // The error queue was read empty: the socket waits quietly again.
        assert!(
            !server
                .wait_readable(Duration::from_millis(5))
                .unwrap()
                .unwrap()
        );
    }

    #[test]
    fn wait_readable_tells_a_waiting_datagram_and_leaves_it() {
        let server = UdpTransport::bind(0, false).unwrap();
        let port = server.local_addr().unwrap().port();
        let short = Duration::from_millis(5);
        assert!(!server.wait_readable(short).unwrap().unwrap());
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"hi", ("127.0.0.1", port)).unwrap();
        assert!(
            server
                .wait_readable(Duration::from_secs(2))
                .unwrap()
                .unwrap()
        );
        // Still there for the read.
        assert!(server.wait_readable(short).unwrap().unwrap());
        let mut buf = [0u8; 16];
        let (n, _) = server.recv(&mut buf, short).unwrap().unwrap();
        assert_eq!(&buf[..n], b"hi");
        assert!(!server.wait_readable(short).unwrap().unwrap());
        // With faults on, only `recv` can tell.
        server.faults().configure(crate::transport::FaultSettings {
            all: super::super::faults::FaultSpec {
                loss: 0.5,
                ..Default::default()
            },
            ..Default::default()
        });
        assert!(server.wait_readable(short).is_none());
    }

    #[test]
    fn a_datagram_held_back_when_faults_are_switched_off_is_still_told_by_recv_alone() {
        use crate::transport::faults::{DelayRange, FaultSpec};
        let server = UdpTransport::bind(0, false).unwrap();
        let port = server.local_addr().unwrap().port();
        server.faults().configure(crate::transport::FaultSettings {
            all: FaultSpec {
                delay_ms: DelayRange::parse("300").unwrap(),
                ..Default::default()
            },
            ..Default::default()
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"late", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 16];
        // Read off the socket and held back for its delay.
        assert!(
            server
                .recv(&mut buf, Duration::from_millis(50))
                .unwrap()
                .is_none()
        );
        server
            .faults()
            .configure(crate::transport::FaultSettings::default());
        // The socket is empty, yet a datagram is due: only recv can tell.
        assert!(server.wait_readable(Duration::from_millis(5)).is_none());
        let (n, _) = server
            .recv(&mut buf, Duration::from_secs(2))
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"late");
        // Once the delay's record is taken, the socket tells again.
        assert_eq!(server.faults().take_events().len(), 1);
        assert!(server.wait_readable(Duration::from_millis(5)).is_some());
    }

    #[test]
    fn the_socket_buffers_are_grown_beyond_the_default() {
        let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (default_rcv, default_snd) = buffer_sizes(&plain);
        let server = UdpTransport::bind(0, false).unwrap();
        let (rcv, snd) = buffer_sizes(&server.current());
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
