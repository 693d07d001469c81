//! (D)TLS alerts (RFC 5246 §7.2) in words: their names (RFC 5246, with
//! RFC 4279's and RFC 8446's additions), what usually makes a peer send
//! one, and reading the one a peer sent off its records as nsh handed them
//! to mbed TLS — DTLS datagrams (RFC 6347 §4.1) and TLS's byte stream
//! (RFC 5246 §6.2) alike. mbed TLS keeps no received alert for its caller
//! (a handshake that ends on the peer's fatal alert reads
//! MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE, nothing more), and an alert sent
//! before the peer's ChangeCipherSpec is plaintext: level, description.
//! One sent after it is encrypted: only that it came can be told from
//! the records, though the session that decrypted it still holds it
//! ([`decrypted`]).
//! Also what a server sends outside an established session (a plaintext
//! handshake message or alert), which mbed TLS drops without a word.

/// RFC 5246's content type of an alert record.
const ALERT: u8 = 21;
/// RFC 5246's content type of a handshake record.
const HANDSHAKE: u8 = 22;
/// RFC 5246's content type of a ChangeCipherSpec record: the sender's
/// records after it are encrypted.
const CHANGE_CIPHER_SPEC: u8 = 20;
/// RFC 5246 §7.2's level of a fatal alert.
const FATAL: u8 = 2;
/// Length of a DTLS record header (type, version, epoch, sequence number,
/// length).
const DTLS_HEADER: usize = 13;
/// Length of a TLS record header (type, version, length).
const TLS_HEADER: usize = 5;

/// A fatal alert a peer sent, as far as it can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// A plaintext alert: its description.
    Plain(u8),
    /// An alert after the peer's ChangeCipherSpec: encrypted.
    Encrypted,
}

/// Who sent the alert, for the hint of its usual cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum From {
    /// A client of nsh's server (a device).
    Client,
    /// The server nsh connected to (`connect`).
    Server,
}

/// RFC 5246's (and RFC 4279's, RFC 8446's) name of an alert description,
/// when it has one.
fn known_name(description: u8) -> Option<&'static str> {
    Some(match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return None,
    })
}

/// What usually makes a client of nsh's send `description` in a handshake.
fn client_cause(description: u8) -> Option<&'static str> {
    Some(match description {
        10 => "it did not expect nsh's last handshake message",
        20 | 51 => "the client's PSK key differs from nsh's",
        40 => "no cipher suite or credentials in common (PSK against certificates?)",
        42 => "it rejects nsh's certificate (its name or key usage?)",
        43 => "it cannot use nsh's certificate (its key type or signature algorithm)",
        44 => "it holds nsh's certificate as revoked",
        45 => "nsh's certificate is expired or not yet valid by the client's clock",
        46 => "it does not accept nsh's certificate (an unknown CA or a name mismatch?)",
        47 => "it refuses a value in nsh's handshake (a curve or signature algorithm?)",
        48 => "it does not trust the CA of nsh's certificate",
        50 => "it could not parse nsh's handshake",
        70 => "it does not speak (D)TLS 1.2",
        71 => "it wants stronger cipher suites than nsh offers",
        80 => "it failed on its own side",
        90 => "it gave the handshake up",
        110 => "it did not expect an extension in nsh's ServerHello",
        _ => return None,
    })
}

/// What usually makes the server nsh connects to send `description`.
fn server_cause(description: u8) -> Option<&'static str> {
    Some(match description {
        20 | 51 => "wrong PSK key or identity?",
        115 => "the server does not know nsh's PSK identity",
        40 => "no cipher suite or credentials in common?",
        42 | 46 | 48 => "the server does not accept nsh's certificate",
        45 => "nsh's certificate is expired by the server's clock",
        70 => "the server does not speak DTLS 1.2",
        _ => return None,
    })
}

/// What `from` sent, in words: `the client sent fatal alert unknown_ca
/// (48): it does not trust …`, as far as the alert could be read.
pub(crate) fn sentence(alert: Option<Received>, from: From) -> String {
    let who = match from {
        From::Client => "client",
        From::Server => "server",
    };
    match alert {
        Some(Received::Plain(d)) => {
            let cause = match from {
                From::Client => client_cause(d),
                From::Server => server_cause(d),
            };
            let named = match known_name(d) {
                Some(name) => format!("{name} ({d})"),
                None => format!("{d} (unassigned)"),
            };
            match cause {
                Some(c) => format!("the {who} sent fatal alert {named}: {c}"),
                None => format!("the {who} sent fatal alert {named}"),
            }
        }
        Some(Received::Encrypted) => format!(
            "the {who} sent an encrypted fatal alert (after its ChangeCipherSpec: which one cannot be read)"
        ),
        None => format!("the {who} sent a fatal alert"),
    }
}

/// An alert description with its number: `handshake_failure (40)`, `77
/// (unassigned)`.
fn alert_name(description: u8) -> String {
    match known_name(description) {
        Some(name) => format!("{name} ({description})"),
        None => format!("{description} (unassigned)"),
    }
}

/// What `from` sent, named without its usual cause: `the server sent
/// fatal alert handshake_failure (40)`.
pub(crate) fn named(alert: Option<Received>, from: From) -> String {
    match alert {
        Some(Received::Plain(d)) => {
            let who = match from {
                From::Client => "client",
                From::Server => "server",
            };
            format!("the {who} sent fatal alert {}", alert_name(d))
        }
        other => sentence(other, from),
    }
}

/// The DTLS records of `datagram`: content type, epoch, body. Stops at a
/// record longer than what is left.
fn dtls_records(datagram: &[u8]) -> impl Iterator<Item = (u8, u16, &[u8])> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        let header = rest.get(..DTLS_HEADER)?;
        let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
        let body = rest.get(DTLS_HEADER..DTLS_HEADER + len)?;
        let record = (header[0], u16::from_be_bytes([header[3], header[4]]), body);
        rest = &rest[DTLS_HEADER + len..];
        Some(record)
    })
}

/// The first fatal alert among the DTLS records of `datagram`, if any.
/// Records with a Connection ID (content type 25) hide their type and are
/// passed over.
pub(crate) fn in_datagram(datagram: &[u8]) -> Option<Received> {
    dtls_records(datagram).find_map(|(kind, epoch, body)| match (kind, epoch, body) {
        (ALERT, 0, [FATAL, d]) => Some(Received::Plain(*d)),
        (ALERT, 0, _) => None,
        (ALERT, _, _) => Some(Received::Encrypted),
        _ => None,
    })
}

/// RFC 5246 §7.4's (and RFC 6347 §4.2.1's) name of a handshake message
/// type.
fn handshake_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        0 => "a HelloRequest",
        1 => "a ClientHello",
        2 => "a ServerHello",
        3 => "a HelloVerifyRequest",
        11 => "a Certificate",
        12 => "a ServerKeyExchange",
        13 => "a CertificateRequest",
        14 => "a ServerHelloDone",
        _ => return None,
    })
}

/// What `datagram`, from a peer nsh has an established session with,
/// carries outside that session (epoch 0, plaintext), which mbed TLS
/// drops without a word: a handshake message (`a HelloVerifyRequest`) or
/// an alert (`fatal alert decode_error (50)`). Records with a Connection
/// ID hide their type and are passed over.
pub(crate) fn outside_session(datagram: &[u8]) -> Option<String> {
    dtls_records(datagram).find_map(|(kind, epoch, body)| match (kind, epoch, body) {
        (HANDSHAKE, 0, [t, ..]) => Some(
            handshake_name(*t).map_or_else(|| format!("handshake message type {t}"), Into::into),
        ),
        (ALERT, 0, [level, d]) => {
            let level = if *level == FATAL { "fatal" } else { "warning" };
            Some(match known_name(*d) {
                Some(name) => format!("{level} alert {name} ({d})"),
                None => format!("{level} alert {d} (unassigned)"),
            })
        }
        _ => None,
    })
}

/// Whether `datagram` holds an encrypted handshake record (epoch 1 or
/// later). In an established session that is the peer asking to
/// renegotiate, or repeating its Finished when nsh's last flight was lost.
pub(crate) fn encrypted_handshake(datagram: &[u8]) -> bool {
    dtls_records(datagram).any(|(kind, epoch, _)| kind == HANDSHAKE && epoch > 0)
}

/// The fatal alert an established session ended on: the one the session
/// decrypted (`read`, from `ffi::last_alert`), when it can tell, else
/// what the records showed (`seen`).
pub(crate) fn decrypted(read: Option<(u8, u8)>, seen: Option<Received>) -> Option<Received> {
    match read {
        Some((FATAL, d)) => Some(Received::Plain(d)),
        _ => seen,
    }
}

/// Why an established session ended on a fatal alert from `from`:
/// `renegotiating` when the peer had just sent a handshake record in it,
/// which mbed TLS refuses with no_renegotiation.
pub(crate) fn session_end(alert: Option<Received>, from: From, renegotiating: bool) -> String {
    let who = match from {
        From::Client => "client",
        From::Server => "server",
    };
    match (alert, renegotiating) {
        (Some(Received::Encrypted) | None, true) => format!(
            "the {who} asked to renegotiate, which nsh does not do, and sent an encrypted fatal alert"
        ),
        (Some(Received::Encrypted), false) => {
            format!("the {who} sent an encrypted fatal alert (which one cannot be read)")
        }
        (Some(Received::Plain(d)), true) => format!(
            "the {who} asked to renegotiate, which nsh does not do, and sent fatal alert {}",
            alert_name(d)
        ),
        // Named without a handshake's usual cause: the session was up.
        (Some(Received::Plain(_)), false) => named(alert, from),
        (None, false) => sentence(None, from),
    }
}

/// Follows the records a TLS peer sends, from its first byte on, as they
/// are read off the stream in pieces of any size; keeps the first fatal
/// alert among them.
#[derive(Debug, Default)]
pub(crate) struct StreamWatch {
    /// The header of the record being read, while incomplete.
    header: Vec<u8>,
    /// The record being read: its type and the body bytes still to come.
    record: Option<(u8, usize)>,
    /// The body of an alert record being read.
    body: Vec<u8>,
    /// Whether the peer's ChangeCipherSpec went by.
    encrypted: bool,
    alert: Option<Received>,
    /// Whether the handshake succeeded.
    established: bool,
    /// Whether the peer sent a handshake record after that (asking to
    /// renegotiate).
    handshake_after: bool,
}

impl StreamWatch {
    /// Takes in the next bytes the peer sent.
    pub(crate) fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let Some((kind, left)) = self.record else {
                let want = TLS_HEADER - self.header.len();
                let take = want.min(bytes.len());
                self.header.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.header.len() == TLS_HEADER {
                    let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                    self.record = Some((self.header[0], len));
                    self.header.clear();
                    self.body.clear();
                    self.finish_if_empty();
                }
                continue;
            };
            let take = left.min(bytes.len());
            if kind == ALERT && !self.encrypted {
                self.body
                    .extend_from_slice(&bytes[..take.min(2usize.saturating_sub(self.body.len()))]);
            }
            bytes = &bytes[take..];
            self.record = Some((kind, left - take));
            self.finish_if_empty();
        }
    }

    /// Ends the record being read when no body byte is left of it.
    fn finish_if_empty(&mut self) {
        let Some((kind, 0)) = self.record else {
            return;
        };
        self.record = None;
        match kind {
            CHANGE_CIPHER_SPEC => self.encrypted = true,
            HANDSHAKE if self.established => self.handshake_after = true,
            ALERT if self.alert.is_none() => {
                self.alert = match (self.encrypted, self.body.as_slice()) {
                    (true, _) => Some(Received::Encrypted),
                    (false, [FATAL, d]) => Some(Received::Plain(*d)),
                    _ => None,
                };
            }
            _ => {}
        }
    }

    /// The first fatal alert the peer sent, if any.
    pub(crate) fn alert(&self) -> Option<Received> {
        self.alert
    }

    /// Notes that the handshake succeeded.
    pub(crate) fn established(&mut self) {
        self.established = true;
    }

    /// Whether the peer sent a handshake record after the handshake
    /// succeeded: it asked to renegotiate.
    pub(crate) fn renegotiating(&self) -> bool {
        self.handshake_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DTLS 1.2 record (RFC 6347 §4.1): type, version {254, 253}, epoch,
    /// sequence number 1, length, body.
    fn dtls_record(kind: u8, epoch: u16, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 0xfe, 0xfd];
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0, 0, 1]);
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    /// A TLS 1.2 record (RFC 5246 §6.2.1): type, version {3, 3}, length,
    /// body.
    fn tls_record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn a_plaintext_fatal_alert_after_a_handshake_record_is_read() {
        let mut d = dtls_record(22, 0, &[11, 0, 0, 0]);
        d.extend(dtls_record(21, 0, &[2, 48]));
        assert_eq!(in_datagram(&d), Some(Received::Plain(48)));
    }

    #[test]
    fn an_alert_of_epoch_1_is_encrypted_and_a_warning_or_none_is_not_fatal() {
        assert_eq!(
            in_datagram(&dtls_record(21, 1, &[9; 26])),
            Some(Received::Encrypted)
        );
        assert_eq!(in_datagram(&dtls_record(21, 0, &[1, 0])), None);
        assert_eq!(in_datagram(&dtls_record(22, 0, &[1, 2, 3])), None);
        // A record longer than the datagram ends the search.
        let mut cut = dtls_record(21, 0, &[2, 40]);
        cut.truncate(14);
        assert_eq!(in_datagram(&cut), None);
        assert_eq!(in_datagram(&[]), None);
    }

    #[test]
    fn an_encrypted_handshake_record_is_told_from_a_plaintext_one() {
        assert!(encrypted_handshake(&dtls_record(22, 1, &[0; 40])));
        assert!(!encrypted_handshake(&dtls_record(22, 0, &[1, 0, 0])));
        assert!(!encrypted_handshake(&dtls_record(23, 1, &[0; 40])));
        assert_eq!(
            session_end(Some(Received::Encrypted), From::Client, true),
            "the client asked to renegotiate, which nsh does not do, and sent an encrypted fatal alert"
        );
        assert_eq!(
            session_end(Some(Received::Encrypted), From::Server, false),
            "the server sent an encrypted fatal alert (which one cannot be read)"
        );
    }

    #[test]
    fn an_alert_the_session_decrypted_is_named_without_a_handshakes_cause() {
        let read = decrypted(Some((2, 40)), Some(Received::Encrypted));
        assert_eq!(read, Some(Received::Plain(40)));
        assert_eq!(
            session_end(read, From::Server, true),
            "the server asked to renegotiate, which nsh does not do, and sent fatal alert handshake_failure (40)"
        );
        assert_eq!(
            session_end(decrypted(Some((2, 80)), None), From::Client, false),
            "the client sent fatal alert internal_error (80)"
        );
        // A warning (close_notify and the like) or no alert: the records'.
        assert_eq!(
            decrypted(Some((1, 0)), Some(Received::Encrypted)),
            Some(Received::Encrypted)
        );
        assert_eq!(decrypted(None, None), None);
    }

    #[test]
    fn what_comes_outside_a_session_is_named() {
        assert_eq!(
            outside_session(&dtls_record(22, 0, &[3, 0, 0, 3])).as_deref(),
            Some("a HelloVerifyRequest")
        );
        assert_eq!(
            outside_session(&dtls_record(21, 0, &[2, 50])).as_deref(),
            Some("fatal alert decode_error (50)")
        );
        assert_eq!(
            outside_session(&dtls_record(22, 0, &[99])).as_deref(),
            Some("handshake message type 99")
        );
        // Records of the session itself are not outside it.
        assert_eq!(outside_session(&dtls_record(23, 1, &[0; 30])), None);
        assert_eq!(outside_session(&dtls_record(21, 1, &[0; 26])), None);
    }

    #[test]
    fn a_tls_alert_is_found_whatever_pieces_the_stream_comes_in() {
        let mut stream = tls_record(22, &[1; 300]);
        stream.extend(tls_record(21, &[2, 51]));
        for piece in [1, 2, 3, 5, 7, 300, 1000] {
            let mut w = StreamWatch::default();
            for chunk in stream.chunks(piece) {
                w.observe(chunk);
            }
            assert_eq!(w.alert(), Some(Received::Plain(51)), "pieces of {piece}");
        }
    }

    #[test]
    fn a_tls_alert_after_the_change_cipher_spec_is_encrypted() {
        let mut stream = tls_record(22, &[16; 40]);
        stream.extend(tls_record(20, &[1]));
        stream.extend(tls_record(22, &[0; 40]));
        stream.extend(tls_record(21, &[0xaa; 26]));
        let mut w = StreamWatch::default();
        w.observe(&stream);
        assert_eq!(w.alert(), Some(Received::Encrypted));
        let mut asked = StreamWatch::default();
        asked.observe(&tls_record(20, &[1]));
        asked.observe(&tls_record(22, &[0; 40]));
        assert!(!asked.renegotiating());
        asked.established();
        asked.observe(&tls_record(22, &[0; 40]));
        assert!(asked.renegotiating());
        let mut quiet = StreamWatch::default();
        quiet.observe(&tls_record(22, &[1; 10]));
        assert_eq!(quiet.alert(), None);
    }

    #[test]
    fn alerts_read_with_their_number_and_usual_cause() {
        let plain = |d, from| sentence(Some(Received::Plain(d)), from);
        assert_eq!(
            plain(51, From::Client),
            "the client sent fatal alert decrypt_error (51): the client's PSK key differs from nsh's"
        );
        assert_eq!(
            plain(40, From::Server),
            "the server sent fatal alert handshake_failure (40): no cipher suite or credentials in common?"
        );
        assert_eq!(
            plain(86, From::Client),
            "the client sent fatal alert inappropriate_fallback (86)"
        );
        assert_eq!(
            plain(200, From::Client),
            "the client sent fatal alert 200 (unassigned)"
        );
        assert_eq!(
            sentence(None, From::Client),
            "the client sent a fatal alert"
        );
        assert!(
            sentence(Some(Received::Encrypted), From::Server)
                .starts_with("the server sent an encrypted fatal alert")
        );
    }
}
