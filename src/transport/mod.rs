//! Transports: how datagrams reach peers. UDP over IPv4 and IPv6, and DTLS
//! 1.2 with pre-shared keys; TCP belongs here too. Knows nothing of LwM2M.
//!
//! The server uses [`Transport`]: whatever the security, it sends and
//! receives plain CoAP datagrams per peer address.

pub mod dtls;
pub mod udp;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use dtls::{DtlsTransport, Psk};
pub use udp::UdpTransport;

/// A listening socket, plain or secured.
#[derive(Debug)]
pub enum Transport {
    /// Plain CoAP over UDP.
    Udp(UdpTransport),
    /// CoAP over DTLS 1.2 (PSK), one session per peer address.
    Dtls(DtlsTransport),
}

impl Transport {
    /// Binds `port` (0 = any free one) on all addresses; DTLS when `psk`
    /// is given.
    pub fn bind(port: u16, ipv6: bool, psk: Option<&Psk>) -> io::Result<Self> {
        Ok(match psk {
            None => Transport::Udp(UdpTransport::bind(port, ipv6)?),
            Some(psk) => Transport::Dtls(DtlsTransport::bind(port, ipv6, psk)?),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Transport::Udp(t) => t.local_addr(),
            Transport::Dtls(t) => t.local_addr(),
        }
    }

    /// True for DTLS.
    pub fn is_secure(&self) -> bool {
        matches!(self, Transport::Dtls(_))
    }

    /// Sends one application datagram to `peer`.
    pub fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        match self {
            Transport::Udp(t) => t.send_to(bytes, peer),
            Transport::Dtls(t) => t.send_to(bytes, peer),
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
        }
    }

    /// Lines worth showing the user about sessions (DTLS handshakes
    /// done or failed, sessions closed); empty for UDP.
    pub fn take_notices(&self) -> Vec<String> {
        match self {
            Transport::Udp(_) => Vec::new(),
            Transport::Dtls(t) => t.take_notices(),
        }
    }
}
