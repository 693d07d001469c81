//! One datagram handed to the core on the caller's thread: what the receive
//! thread does with each datagram, without a socket and without a thread,
//! so that the whole receive path (decoding, exchange matching,
//! classification, the registrar's answer, the history record) runs
//! deterministically in-process. The fuzz target `receive` drives it.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::handle::Server;
use super::history::{Direction, RecordRef};

impl Server {
    /// Handles `bytes` as a datagram from `peer` at once, on this thread,
    /// as the receive thread would, and returns the record it became.
    /// Answers nsh makes go out through the attached transport; with none
    /// attached they are reported as not sent. `None` only if the history
    /// kept no received record.
    ///
    /// ```
    /// let server = nsh::server::Server::new();
    /// server.set_printer(std::sync::Arc::new(|_: &str| {}));
    /// let peer = ([127, 0, 0, 1], 40000).into();
    /// // CON GET /3/0, message ID 7
    /// let get = [0x40, 0x01, 0x00, 0x07, 0xb1, b'3', 0x01, b'0'];
    /// let r = server.receive_datagram(peer, &get).unwrap();
    /// assert!(r.summary().contains("/3/0"), "{}", r.summary());
    /// let r = server.receive_datagram(peer, &[0x40]).unwrap();
    /// assert!(r.summary().starts_with("malformed datagram (1 bytes)"));
    /// assert_eq!(server.history().len(), 2);
    /// ```
    pub fn receive_datagram(&self, peer: SocketAddr, bytes: &[u8]) -> Option<RecordRef> {
        let mut core = self.lock();
        core.on_datagram(peer, bytes.to_vec(), Instant::now(), SystemTime::now());
        let record = core
            .session
            .history()
            .rev()
            .find(|r| r.direction == Direction::Received)
            .cloned();
        // Effects (lines, answers) are carried out when the guard drops.
        drop(core);
        self.notify_all();
        record
    }
}
