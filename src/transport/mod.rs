//! Transports: how datagrams reach peers. UDP over IPv4 and IPv6, DTLS 1.2
//! (pre-shared keys or certificates, Connection ID), and TCP (RFC 8323),
//! plain or over TLS 1.2 with the same settings as DTLS. Knows nothing of
//! LwM2M.
//!
//! The server uses [`Transport`]: whatever the security, it sends and
//! receives plain CoAP datagrams (over TCP: whole frames) per peer address.

pub mod dtls;
pub mod faults;
pub mod memory;
pub mod tcp;
pub mod udp;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

pub use dtls::{DtlsTransport, Psk, Security};
pub use faults::{FaultEvent, FaultSettings, Faults};
pub use memory::{MemoryNetwork, MemoryTransport};
pub use tcp::TcpTransport;
pub use udp::UdpTransport;

/// A listening socket, plain or secured.
#[derive(Debug)]
pub enum Transport {
    /// Plain CoAP over UDP.
    Udp(UdpTransport),
    /// CoAP over DTLS 1.2, one session per peer address.
    Dtls(Box<DtlsTransport>),
    /// CoAP over TCP (RFC 8323), plain or over TLS, one connection per peer
    /// address.
    Tcp(TcpTransport),
    /// Datagrams through channels, for in-process tests of the server.
    Memory(MemoryTransport),
}

impl Transport {
    /// Binds `port` (0 = any free one) on all addresses; DTLS when
    /// `security` is given.
    pub fn bind(port: u16, ipv6: bool, security: Option<&Security>) -> io::Result<Self> {
        Ok(match security {
            None => Transport::Udp(UdpTransport::bind(port, ipv6)?),
            Some(s) => Transport::Dtls(Box::new(DtlsTransport::bind(port, ipv6, s)?)),
        })
    }

    /// Listens for CoAP over TCP on `port` (0 = any free one); over TLS
    /// 1.2 (`coaps+tcp`) when `security` is given.
    pub fn bind_tcp(port: u16, ipv6: bool, security: Option<&Security>) -> io::Result<Self> {
        Ok(Transport::Tcp(match security {
            None => TcpTransport::bind(port, ipv6)?,
            Some(s) => TcpTransport::bind_secure(port, ipv6, s)?,
        }))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Transport::Udp(t) => t.local_addr(),
            Transport::Dtls(t) => t.local_addr(),
            Transport::Tcp(t) => t.local_addr(),
            Transport::Memory(t) => t.local_addr(),
        }
    }

    /// True for DTLS and for TCP over TLS.
    pub fn is_secure(&self) -> bool {
        match self {
            Transport::Dtls(_) => true,
            Transport::Tcp(t) => t.security().is_some(),
            _ => false,
        }
    }

    /// True for TCP: messages are RFC 8323 frames without type or message
    /// ID, and nothing is acknowledged or retransmitted.
    pub fn is_reliable(&self) -> bool {
        matches!(self, Transport::Tcp(_))
    }

    /// Whether [`Transport::send_to`] never waits for a peer, so it may be
    /// called with the server's core locked: plain UDP (one system call;
    /// injected delays are carried out by threads of their own) and the
    /// in-memory transport. Not DTLS (encryption, a handshake to start)
    /// nor TCP (a connection's writer).
    pub fn sends_in_place(&self) -> bool {
        matches!(self, Transport::Udp(_) | Transport::Memory(_))
    }

    /// Sends one application datagram to `peer`. Over TCP the frame is
    /// queued for the connection's writer and this returns at once (see
    /// [`TcpTransport::send_to`]); an error means it will not be sent.
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        match self {
            Transport::Udp(t) => t.send_to(bytes, peer),
            Transport::Dtls(t) => t.send_to(bytes, peer),
            Transport::Tcp(t) => t.send_to(bytes, peer),
            Transport::Memory(t) => t.send_to(bytes, peer),
        }
    }

    /// Opens a TCP connection to `peer` as its client, without waiting (see
    /// [`Transport::dial_state`]); an error for the datagram transports.
    pub fn dial(&self, peer: SocketAddr) -> io::Result<()> {
        match self {
            Transport::Tcp(t) => t.dial(peer),
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "not a TCP socket: no connection to open",
            )),
        }
    }

    /// Where the TCP connection [`Transport::dial`] opens stands.
    pub fn dial_state(&self, peer: SocketAddr) -> tcp::Dial {
        match self {
            Transport::Tcp(t) => t.dial_state(peer),
            _ => tcp::Dial::Failed("not a TCP socket".into()),
        }
    }

    /// Closes the TCP connection with `peer` once the frames queued for it
    /// went out, `why` ending the line that says it closed. Nothing for
    /// the datagram transports, which have no connection.
    pub fn close_after_sending(&self, peer: SocketAddr, why: &str) {
        if let Transport::Tcp(t) = self {
            t.close_after_sending(peer, why);
        }
    }

    /// Sends `bytes` as they are: for DTLS on the socket beneath, without
    /// encryption (`udp`); otherwise like [`Transport::send_to`].
    pub fn send_raw(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        match self {
            Transport::Dtls(t) => t.send_raw(bytes, peer),
            _ => self.send_to(bytes, peer),
        }
    }

    /// The identity a DTLS or TLS peer authenticated with (PSK identity or
    /// certificate subject); `None` for other transports.
    pub fn identity(&self, peer: SocketAddr) -> Option<String> {
        match self {
            Transport::Dtls(t) => t.identity(peer),
            Transport::Tcp(t) => t.identity(peer),
            _ => None,
        }
    }

    /// The DTLS settings the socket serves with; `None` for other
    /// transports (also TLS over TCP: nothing can `connect` over TCP).
    pub fn security(&self) -> Option<&Security> {
        match self {
            Transport::Dtls(t) => Some(t.security()),
            _ => None,
        }
    }

    /// Starts a DTLS handshake as the client with `peer` (`connect`).
    pub fn open_dtls(&self, peer: SocketAddr) -> io::Result<()> {
        match self {
            Transport::Dtls(t) => t.open(peer),
            _ => Err(io::Error::other("not a DTLS socket")),
        }
    }

    /// Whether `peer` has an established DTLS session (always false for
    /// other transports).
    pub fn dtls_established(&self, peer: SocketAddr) -> bool {
        match self {
            Transport::Dtls(t) => t.is_established(peer),
            _ => false,
        }
    }

    /// Why nsh's last DTLS handshake as the client with `peer` failed, as
    /// a sentence, if it did (see [`DtlsTransport::client_failure`]).
    pub fn dtls_client_failure(&self, peer: SocketAddr) -> Option<String> {
        match self {
            Transport::Dtls(t) => t.client_failure(peer),
            _ => None,
        }
    }

    /// Where nsh's unfinished DTLS handshake as the client with `peer`
    /// stalled, when that says something (see
    /// [`DtlsTransport::client_stall`]).
    pub fn dtls_client_stall(&self, peer: SocketAddr) -> Option<&'static str> {
        match self {
            Transport::Dtls(t) => t.client_stall(peer),
            _ => None,
        }
    }

    /// Why a request to `peer` over nsh's DTLS client session, sent at
    /// `since`, may have gone unanswered (see
    /// [`DtlsTransport::client_silence`]); `None` for other transports.
    pub fn dtls_client_silence(
        &self,
        peer: SocketAddr,
        since: std::time::Instant,
    ) -> Option<String> {
        match self {
            Transport::Dtls(t) => t.client_silence(peer, since),
            _ => None,
        }
    }

    /// DTLS sessions that moved to a new address (Connection ID) since the
    /// last call, as (old, new); empty for other transports.
    pub fn take_moved(&self) -> Vec<(SocketAddr, SocketAddr)> {
        match self {
            Transport::Dtls(t) => t.take_moved(),
            _ => Vec::new(),
        }
    }

    /// Waits up to `timeout` for one application datagram (decrypted for
    /// DTLS). `Ok(None)` when none arrived.
    pub fn recv(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        match self {
            Transport::Udp(t) => t.recv(buf, timeout),
            Transport::Dtls(t) => t.recv(buf, timeout),
            Transport::Tcp(t) => t.recv(buf, timeout),
            Transport::Memory(t) => t.recv(buf, timeout),
        }
    }

    /// Waits up to `timeout` until [`Transport::recv`] has a datagram to
    /// read (over DTLS: a record to decrypt, or one decrypted already),
    /// without reading it. `None` where that cannot be told from the
    /// socket alone: TCP and in-memory transports (frames come through a
    /// queue), and UDP or DTLS while the fault injection is engaged.
    pub fn wait_readable(&self, timeout: Duration) -> Option<io::Result<bool>> {
        match self {
            Transport::Udp(t) => t.wait_readable(timeout),
            Transport::Dtls(t) => t.wait_readable(timeout),
            _ => None,
        }
    }

    /// Whether [`Transport::wait_readable`] can tell now.
    pub fn can_wait_readable(&self) -> bool {
        match self {
            Transport::Udp(t) => t.can_wait_readable(),
            Transport::Dtls(t) => t.udp().can_wait_readable(),
            _ => false,
        }
    }

    /// Whether [`Transport::recv`] must be called now and then even when
    /// nothing arrives: DTLS retransmits handshake flights and ends idle
    /// sessions from there.
    pub fn wants_ticks(&self) -> bool {
        matches!(self, Transport::Dtls(_))
    }

    /// The fault injector of a UDP or DTLS socket (below DTLS); `None`
    /// for TCP and in-memory transports, which have no datagrams to lose.
    pub fn faults(&self) -> Option<&Faults> {
        match self {
            Transport::Udp(t) => Some(t.faults()),
            Transport::Dtls(t) => Some(t.udp().faults()),
            _ => None,
        }
    }

    /// Whether the `take_*` calls may return anything now: false for
    /// plain UDP with no fault engaged and for the in-memory transport,
    /// which have nothing to tell besides datagrams.
    pub fn may_tell_more(&self) -> bool {
        match self {
            Transport::Udp(t) => !t.faults().is_idle(),
            Transport::Memory(_) => false,
            Transport::Dtls(_) | Transport::Tcp(_) => true,
        }
    }

    /// The faults injected since the last call (empty when none or no
    /// injector).
    pub fn take_faults(&self) -> Vec<FaultEvent> {
        self.faults().map(Faults::take_events).unwrap_or_default()
    }

    /// Moves a UDP or DTLS socket to a new free port of the same address
    /// (DTLS sessions stay); returns the new address. Refused for TCP.
    pub fn rebind(&self) -> io::Result<SocketAddr> {
        match self {
            Transport::Udp(t) => t.rebind(),
            Transport::Dtls(t) => t.udp().rebind(),
            _ => Err(io::Error::other(
                "rebind moves a UDP or DTLS socket; this one is not",
            )),
        }
    }

    /// Lines worth showing the user about sessions (DTLS and TLS handshakes
    /// done or failed, TCP connections opened or closed); empty for UDP.
    pub fn take_notices(&self) -> Vec<String> {
        match self {
            Transport::Udp(_) | Transport::Memory(_) => Vec::new(),
            Transport::Dtls(t) => t.take_notices(),
            Transport::Tcp(t) => t.take_notices(),
        }
    }

    /// Peers whose TCP connection closed since the last call (the peer
    /// left, a write failed or timed out, its send queue was full), each
    /// once per connection, after everything it delivered, with the line
    /// saying why (`TCP connection with … closed: closed by the peer`);
    /// empty for UDP and DTLS. Per-peer state kept for the connection and
    /// requests waiting on it can go.
    pub fn take_closed(&self) -> Vec<(SocketAddr, String)> {
        match self {
            Transport::Tcp(t) => t.take_closed(),
            _ => Vec::new(),
        }
    }

    /// DTLS peers whose session ended since the last call (close_notify,
    /// a fatal alert, or nsh's own end of it), each with how and when,
    /// worded as [`Transport::take_closed`]'s lines are (`DTLS server … closed
    /// nsh's session (close_notify) at …`); empty for other transports.
    pub fn take_ended_sessions(&self) -> Vec<(SocketAddr, String)> {
        match self {
            Transport::Dtls(t) => t.take_ended(),
            _ => Vec::new(),
        }
    }

    /// Peers that opened a TCP connection since the last call (they are
    /// owed a CSM), over TLS once the handshake succeeded; empty for UDP
    /// and DTLS.
    pub fn take_accepted(&self) -> Vec<SocketAddr> {
        match self {
            Transport::Tcp(t) => t.take_accepted(),
            _ => Vec::new(),
        }
    }
}

/// When something happened, for an error told later: `at 01:22:53 UTC
/// (4.2 s ago)` (the time of day in UTC, and how long before `now`).
pub fn at_and_ago(at: SystemTime, now: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ago = now.duration_since(at).unwrap_or_default().as_secs_f64();
    format!(
        "at {:02}:{:02}:{:02} UTC ({ago:.1} s ago)",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// `listening on DTLS (PSK identity `user`) port 5684`, or `listening on
/// TLS over TCP (PSK identity `user`) port 5684`: the line `listen` and
/// `nsh -l` print (tests read the port from it).
pub fn listening_line(security: Option<&Security>, tcp: bool, port: u16, ipv6: bool) -> String {
    let mut what = match security {
        Some(s) if tcp => format!("TLS over TCP ({})", s.describe()),
        Some(s) => format!("DTLS ({})", s.describe()),
        None if tcp => "TCP".into(),
        None => "UDP".into(),
    };
    if let Some(cid) = security
        .and_then(|s| s.connection_id.as_ref())
        .filter(|_| !tcp)
    {
        what.push_str(&format!(" with Connection ID {}", hex::encode(cid)));
    }
    format!(
        "listening on {what} port {port}{}",
        if ipv6 { " (IPv6 and IPv4)" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_past_moment_is_told_as_its_utc_time_and_how_long_ago() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_367_491_215);
        assert_eq!(
            at_and_ago(at, at + Duration::from_millis(4_250)),
            "at 10:40:15 UTC (4.2 s ago)"
        );
        // A clock set back meanwhile: no negative time.
        assert_eq!(
            at_and_ago(at, at - Duration::from_secs(1)),
            "at 10:40:15 UTC (0.0 s ago)"
        );
    }

    #[test]
    fn the_listening_line_names_tls_over_tcp() {
        let psk = Security::psk(Psk {
            identity: "user".into(),
            key: b"password".to_vec(),
        });
        assert_eq!(
            listening_line(Some(&psk), true, 5684, false),
            "listening on TLS over TCP (PSK identity `user`) port 5684"
        );
        assert_eq!(
            listening_line(Some(&psk), false, 5684, true),
            "listening on DTLS (PSK identity `user`) port 5684 (IPv6 and IPv4)"
        );
        assert_eq!(
            listening_line(None, true, 5683, false),
            "listening on TCP port 5683"
        );
    }

    /// The receive path skips the `take_*` calls while `may_tell_more` is
    /// false: it must be true as long as a fault event waits to be taken.
    #[test]
    fn plain_udp_tells_more_than_datagrams_only_while_faults_are_engaged() {
        use faults::FaultSpec;
        let t = Transport::bind(0, false, None).unwrap();
        assert!(!t.may_tell_more());
        let on = |loss| FaultSettings {
            all: FaultSpec {
                loss,
                ..Default::default()
            },
            ..Default::default()
        };
        t.faults().unwrap().configure(on(1.0));
        assert!(t.may_tell_more());
        // A datagram dropped on the way out leaves an event to take.
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        t.send_to(b"lost", peer.local_addr().unwrap()).unwrap();
        t.faults().unwrap().configure(on(0.0));
        assert!(t.may_tell_more(), "an event is still to be taken");
        assert_eq!(t.take_faults().len(), 1);
        assert!(!t.may_tell_more());
        let plain = Transport::bind_tcp(0, false, None).unwrap();
        assert!(plain.may_tell_more());
    }

    #[test]
    fn tls_over_tcp_is_secure_and_reliable() {
        let psk = Security::psk(Psk {
            identity: "user".into(),
            key: b"password".to_vec(),
        });
        let t = Transport::bind_tcp(0, false, Some(&psk)).unwrap();
        assert!(t.is_secure() && t.is_reliable());
        let plain = Transport::bind_tcp(0, false, None).unwrap();
        assert!(!plain.is_secure() && plain.is_reliable());
    }
}
