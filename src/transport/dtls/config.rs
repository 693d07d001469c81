//! Turns [`Security`] into an mbed TLS configuration for either end of a
//! DTLS 1.2 session, or for the server end of TLS 1.2 over TCP (used by
//! `transport::tcp`): certificates and keys read (PEM or DER, detected) and
//! checked against each other, the PSK table installed, cipher suites,
//! Connection ID, cookies on the DTLS server, debug output. Also words for
//! what went wrong in a handshake (naming a refused PSK identity and the
//! alert a peer sent), for a
//! rejected certificate and for an established session, shared by both
//! transports.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use mbedtls::alloc::List as MbedtlsList;
use mbedtls::error::codes;
use mbedtls::pk::Pk;
use mbedtls::rng::{CtrDrbg, OsEntropy};
use mbedtls::ssl::config::{AuthMode, Endpoint, Preset, Transport as TransportKind};
use mbedtls::ssl::{Config, CookieContext, Version};
use mbedtls::x509::{Certificate, VerifyError};

use super::alert::{self, From, Received};
use super::ffi;
use super::settings::{
    CaSource, Credentials, OwnCertificate, Security, is_pem, read_file, suite_name,
};

/// An mbed TLS configuration and what it points into: contexts made from
/// `config` must be dropped before this (each session keeps an `Arc`).
pub(crate) struct Tls {
    /// The configuration contexts are made from.
    pub(crate) config: Arc<Config>,
    /// The PSK table the configuration's callback reads.
    _keys: Option<Box<ffi::PskKeys>>,
    /// This end's Connection ID, when offered.
    pub(super) own_cid: Option<Vec<u8>>,
}

/// Which end of the handshake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// Answers ClientHellos (`listen`, `file_server`).
    Server,
    /// Sends the ClientHello (`connect`).
    Client,
}

fn tls(what: &str) -> impl Fn(mbedtls::Error) -> String + '_ {
    move |e| format!("{what}: {}", error_code(&e))
}

/// Builds the configuration for DTLS; errors are one line naming the file
/// or value at fault.
pub(super) fn build(security: &Security, side: Side) -> Result<Tls, String> {
    build_for(security, side, TransportKind::Datagram)
}

/// Builds the configuration for DTLS (`Datagram`) or TLS over TCP
/// (`Stream`: no cookies, no Connection ID).
pub(crate) fn build_for(
    security: &Security,
    side: Side,
    kind: TransportKind,
) -> Result<Tls, String> {
    let datagram = kind == TransportKind::Datagram;
    let entropy = Arc::new(OsEntropy::new());
    let rng = Arc::new(CtrDrbg::new(entropy, None).map_err(tls("random generator"))?);
    let endpoint = match side {
        Side::Server => Endpoint::Server,
        Side::Client => Endpoint::Client,
    };
    let mut config = Config::new(endpoint, kind, Preset::Default);
    config.set_rng(rng.clone());
    // DTLS 1.2 is mbed TLS's "TLS 1.2" on a datagram transport.
    config
        .set_min_version(Version::Tls1_2)
        .map_err(tls("DTLS version"))?;
    let mut keys = None;
    match &security.credentials {
        Credentials::Psk(table) => {
            if side == Side::Client {
                let psk = &table[0];
                config
                    .set_psk(&psk.key, &psk.identity)
                    .map_err(tls("PSK"))?;
            } else {
                let boxed = Box::new(ffi::PskKeys(table.clone()));
                // SAFETY: the box lives in the returned `Tls`, which outlives
                // every context made from this configuration (see `Tls`).
                #[allow(unsafe_code)]
                unsafe {
                    ffi::install_psk_table(&mut config, &boxed)
                };
                keys = Some(boxed);
            }
        }
        Credentials::Certificate(files) => {
            match &files.own {
                Some(own) => {
                    let (chain, key) = load_own(own)?;
                    config
                        .push_cert(Arc::new(chain), Arc::new(key))
                        .map_err(tls("certificate"))?;
                }
                None if side == Side::Server => {
                    return Err(
                        "a server needs a certificate of its own: give crt_file and key_file"
                            .into(),
                    );
                }
                // A client asked for a certificate sends an empty list
                // (RFC 5246 §7.4.6); see `client_failure`.
                None => {}
            }
            config.set_verify_callback(check_certificate);
            match &files.ca {
                Some(ca) => {
                    config.set_ca_list(Arc::new(load_ca(ca)?), None);
                    config.set_authmode(AuthMode::Required);
                }
                // Any certificate, or none: it is still asked for, so the
                // session knows who the client claims to be.
                None => config.set_authmode(AuthMode::Optional),
            }
        }
    }
    let mut suites: Vec<i32> = security.suites().into_iter().map(i32::from).collect();
    suites.push(0);
    config.set_ciphersuites(Arc::new(suites));
    if let Some(cid) = security.connection_id.as_ref().filter(|_| datagram) {
        ffi::configure_cid(&mut config, cid.len()).map_err(|e| {
            format!(
                "connection_id: mbed TLS refused a {}-byte CID ({e})",
                cid.len()
            )
        })?;
    }
    if side == Side::Server && datagram {
        let cookies = CookieContext::new(rng).map_err(tls("cookies"))?;
        config.set_dtls_cookies(Arc::new(cookies));
    }
    if let Some(level) = security.debug {
        ffi::set_debug_threshold(level);
        config.set_dbg_callback(|level, file, line, message| {
            let who = ffi::current_peer().map_or_else(|| "DTLS".into(), |p| p.to_string());
            let file = file.rsplit('/').next().unwrap_or(&file);
            // mbed TLS starts each line with the context's address.
            let message = message.trim_end();
            let message = match message.split_once(": ") {
                Some((ptr, rest)) if ptr.starts_with("0x") && ptr.len() <= 18 => rest,
                _ => message,
            };
            eprintln!("{who} [{level}] {file}:{line}: {message}");
        });
    }
    Ok(Tls {
        config: Arc::new(config),
        _keys: keys,
        own_cid: security.connection_id.clone().filter(|_| datagram),
    })
}

/// Parses certificates: PEM (any number) or one DER certificate.
fn parse_certificates(
    what: &str,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<MbedtlsList<Certificate>, String> {
    let failed = |e: mbedtls::Error| {
        format!(
            "{what} {}: not a certificate in PEM or DER ({})",
            path.display(),
            error_code(&e)
        )
    };
    if is_pem(&bytes) {
        let mut pem = bytes;
        pem.push(0);
        Certificate::from_pem_multiple(&pem).map_err(failed)
    } else {
        let mut list = MbedtlsList::new();
        list.push(Certificate::from_der(&bytes).map_err(failed)?);
        Ok(list)
    }
}

/// This end's certificate chain and private key, checked to belong
/// together.
fn load_own(files: &OwnCertificate) -> Result<(MbedtlsList<Certificate>, Pk), String> {
    let chain = parse_certificates(
        "crt_file",
        &files.crt_file,
        read_file("crt_file", &files.crt_file)?,
    )?;
    let mut key_bytes = read_file("key_file", &files.key_file)?;
    if is_pem(&key_bytes) {
        key_bytes.push(0);
    }
    let key = Pk::from_private_key(&key_bytes, None).map_err(|e| {
        format!(
            "key_file {}: not an unencrypted private key in PEM or DER ({})",
            files.key_file.display(),
            error_code(&e)
        )
    })?;
    let first = chain.iter().next().ok_or_else(|| {
        format!(
            "crt_file {}: no certificate in it",
            files.crt_file.display()
        )
    })?;
    if !Pk::check_pair(first.public_key(), &key) {
        return Err(format!(
            "key_file {} does not match the certificate in crt_file {}",
            files.key_file.display(),
            files.crt_file.display()
        ));
    }
    Ok((chain, key))
}

/// The certificate authorities of `ca_file` or every certificate file of
/// `ca_path`.
fn load_ca(ca: &CaSource) -> Result<MbedtlsList<Certificate>, String> {
    match ca {
        CaSource::File(path) => parse_certificates("ca_file", path, read_file("ca_file", path)?),
        CaSource::Path(dir) => {
            let entries =
                std::fs::read_dir(dir).map_err(|e| format!("ca_path {}: {e}", dir.display()))?;
            let mut paths: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| ["pem", "crt", "cer", "der"].contains(&x))
                })
                .collect();
            paths.sort();
            // Like mbed TLS's own x509_crt_parse_path: files that are not
            // certificates (keys kept beside them) are passed over.
            let mut all = MbedtlsList::new();
            for p in &paths {
                let Ok(bytes) = read_file("ca_path", p) else {
                    continue;
                };
                let Ok(list) = parse_certificates("ca_path", p, bytes) else {
                    continue;
                };
                for c in list.iter() {
                    all.push(Certificate::from_der(c.as_der()).map_err(tls("ca_path"))?);
                }
            }
            if all.is_empty() {
                return Err(format!(
                    "ca_path {}: no certificate in its *.pem, *.crt, *.cer or *.der files",
                    dir.display()
                ));
            }
            Ok(all)
        }
    }
}

/// What a credential file holds, for [`der_of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// An X.509 certificate.
    Certificate,
    /// A private key.
    PrivateKey,
}

/// The DER form of a certificate or private key file given in PEM or DER
/// (DER is returned as it is, once it parses), as the LwM2M Security object
/// wants it; errors name the argument, the path and the problem.
pub fn der_of(what: &str, path: &Path, kind: CredentialKind) -> Result<Vec<u8>, String> {
    let bytes = read_file(what, path)?;
    match kind {
        CredentialKind::Certificate => {
            let list = parse_certificates(what, path, bytes)?;
            let first = list
                .iter()
                .next()
                .ok_or_else(|| format!("{what} {}: no certificate in it", path.display()))?;
            Ok(first.as_der().to_vec())
        }
        CredentialKind::PrivateKey => {
            let pem = is_pem(&bytes);
            let mut input = bytes.clone();
            if pem {
                input.push(0);
            }
            let mut key = Pk::from_private_key(&input, None).map_err(|e| {
                format!(
                    "{what} {}: not an unencrypted private key in PEM or DER ({})",
                    path.display(),
                    error_code(&e)
                )
            })?;
            if !pem {
                return Ok(bytes);
            }
            key.write_private_der_vec()
                .map_err(|e| format!("{what} {}: {}", path.display(), error_code(&e)))
        }
    }
}

thread_local! {
    /// What the last certificate verification on this thread found (the
    /// handshake and the line about its failure run on the same thread).
    static LAST_VERIFY: std::cell::Cell<VerifyError> =
        const { std::cell::Cell::new(VerifyError::empty()) };
    /// The depth of the certificate last checked on this thread.
    static LAST_DEPTH: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// mbed TLS's verify callback: keeps what verification found for the
/// failure line (mbed TLS drops the peer's certificate, and with it
/// `verify_result`, when the handshake fails). Changes nothing.
fn check_certificate(
    _crt: &Certificate,
    depth: i32,
    flags: &mut VerifyError,
) -> Result<(), mbedtls::Error> {
    // A chain is checked from the top down to the peer's own (depth 0): a
    // depth that does not go down starts a new chain.
    let fresh = LAST_DEPTH.with(|d| d.replace(depth)) <= depth;
    LAST_VERIFY.with(|last| {
        last.set(if fresh { *flags } else { last.get() | *flags });
    });
    Ok(())
}

/// Why a certificate was rejected, in words.
pub(crate) fn describe_verify_error(flags: VerifyError) -> String {
    let words = [
        (VerifyError::CERT_EXPIRED, "certificate expired"),
        (VerifyError::CERT_FUTURE, "certificate not valid yet"),
        (VerifyError::CERT_NOT_TRUSTED, "issued by an unknown CA"),
        (VerifyError::CERT_REVOKED, "certificate revoked"),
        (VerifyError::CERT_MISSING, "no certificate sent"),
        (VerifyError::CERT_CN_MISMATCH, "name mismatch"),
        (VerifyError::CERT_KEY_USAGE, "key usage does not allow it"),
        (
            VerifyError::CERT_EXT_KEY_USAGE,
            "extended key usage does not allow it",
        ),
        (VerifyError::CERT_BAD_KEY, "unacceptable key"),
        (VerifyError::CERT_BAD_MD, "unacceptable signature hash"),
        (
            VerifyError::CERT_BAD_PK,
            "unacceptable public key algorithm",
        ),
        (VerifyError::CERT_OTHER, "rejected"),
    ];
    let found: Vec<&str> = words
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, w)| *w)
        .collect();
    if found.is_empty() {
        format!("verification flags 0x{:x}", flags.bits())
    } else {
        found.join(", ")
    }
}

/// mbed TLS's name for an error.
pub(super) fn error_code(e: &mbedtls::Error) -> String {
    match (e.high_level(), e.low_level()) {
        (Some(h), _) => format!("{h:?}"),
        (None, Some(l)) => format!("{l:?}"),
        (None, None) => format!("{e}"),
    }
}

/// What nsh says when a server asked for a client certificate and nsh,
/// connecting with only CAs, had none to send.
pub(crate) const CERTIFICATE_ASKED: &str = "the server asked for a client certificate and nsh has none to send: give crt_file and key_file (nsh's certificate and its private key) to `connect`";

/// Why nsh's own handshake as the client (`connect`) failed, in words:
/// the alert the server sent, when it sent one (`alert`: as far as it
/// could be read off the server's records). `certificate_asked`: the
/// server asked for a client certificate, and nsh had none to send.
pub(crate) fn client_failure(
    e: &mbedtls::Error,
    alert: Option<Received>,
    certificate_asked: bool,
) -> String {
    if certificate_asked {
        let then = match e.high_level() {
            Some(codes::SslFatalAlertMessage) => alert::named(alert, From::Server),
            Some(codes::SslTimeout) => "the server stopped answering".into(),
            _ => format!("mbed TLS error {}", error_code(e)),
        };
        return with_code(&format!("{CERTIFICATE_ASKED}; then {then}"), e);
    }
    match e.high_level() {
        Some(codes::SslFatalAlertMessage) => with_code(&alert::sentence(alert, From::Server), e),
        Some(codes::SslTimeout) => with_code("the server stopped answering", e),
        Some(codes::X509CertVerifyFailed) => rejected("the server's", e),
        _ => handshake_failure(e, None),
    }
}

/// `WHOSE certificate was rejected: why (mbed TLS: …)`, from the flags of
/// the last verification on this thread.
fn rejected(whose: &str, e: &mbedtls::Error) -> String {
    let flags = LAST_VERIFY.with(|last| last.replace(VerifyError::empty()));
    format!(
        "{whose} certificate was rejected: {} (mbed TLS: {})",
        describe_verify_error(flags),
        error_code(e)
    )
}

/// At most this many bytes of a refused PSK identity are shown.
const IDENTITY_SHOWN: usize = 64;

/// A PSK identity as a line shows it: printable ASCII as it is, other
/// bytes as `\xHH`, cut after [`IDENTITY_SHOWN`] bytes.
fn shown_identity(identity: &[u8]) -> String {
    let shown = identity.get(..IDENTITY_SHOWN).unwrap_or(identity);
    let mut text = crate::coap::escaped::format_printable(shown);
    if shown.len() < identity.len() {
        text.push_str(&format!("… ({} bytes)", identity.len()));
    }
    text
}

/// How a failed handshake (or an ended session) with a client reads in
/// the shell: what happened in words, then mbed TLS's own name for it.
/// `alert`: the fatal alert the client sent, as far as it could be read
/// off its records.
pub(crate) fn handshake_failure(e: &mbedtls::Error, alert: Option<Received>) -> String {
    let what = match e.high_level() {
        Some(codes::SslUnknownIdentity) => {
            let Some(identity) = ffi::take_unknown_identity() else {
                return format!("unknown PSK identity (mbed TLS: {})", error_code(e));
            };
            return format!(
                "unknown PSK identity `{}` (mbed TLS: {})",
                shown_identity(&identity),
                error_code(e)
            );
        }
        Some(codes::SslBadHsFinished | codes::SslInvalidMac) => {
            "the client's Finished did not decrypt (wrong PSK key?)"
        }
        Some(codes::SslNoCipherChosen) => "no cipher suite in common",
        Some(codes::SslBadHsProtocolVersion) => "the client does not speak (D)TLS 1.2",
        Some(codes::SslTimeout) => "the client stopped answering",
        Some(codes::SslFatalAlertMessage) => {
            return with_code(&alert::sentence(alert, From::Client), e);
        }
        Some(codes::SslNoClientCertificate) => "the client sent no certificate",
        Some(codes::SslCaChainRequired) => "no CA to verify the certificate with",
        Some(codes::SslPkTypeMismatch) => "the certificate's key does not fit the cipher suite",
        Some(codes::X509CertVerifyFailed) => return rejected("the", e),
        _ => "",
    };
    if what.is_empty() {
        format!("mbed TLS error {}", error_code(e))
    } else {
        with_code(what, e)
    }
}

/// `what` happened, then mbed TLS's own name for it.
pub(crate) fn with_code(what: &str, e: &mbedtls::Error) -> String {
    format!("{what} (mbed TLS: {})", error_code(e))
}

/// The alert mbed TLS does not send itself for a failed handshake, when
/// one is due: `handshake_failure` to a client that sent no certificate
/// where one is required (RFC 5246 §7.4.6), so it fails at once.
pub(crate) fn alert_to_send(e: &mbedtls::Error) -> Option<u8> {
    /// RFC 5246 §7.2's handshake_failure.
    const HANDSHAKE_FAILURE: u8 = 40;
    (e.high_level() == Some(codes::SslNoClientCertificate)).then_some(HANDSHAKE_FAILURE)
}

/// The line for an established session (`what`: DTLS or TLS): who, how,
/// with which identity and Connection IDs.
pub(crate) fn established_line(
    what: &str,
    peer: SocketAddr,
    suite: Option<u16>,
    identity: Option<&str>,
    own_cid: Option<&[u8]>,
    peer_cid: Option<&[u8]>,
) -> String {
    let suite = suite.map_or_else(|| "unknown cipher suite".into(), suite_name);
    let mut line = format!("{what} session with {peer} established ({suite}");
    if let Some(id) = identity {
        line.push_str(&format!(", identity `{id}`"));
    }
    if own_cid.is_some() || peer_cid.is_some() {
        let show = |c: Option<&[u8]>| match c {
            Some([]) => "empty".to_string(),
            Some(c) => hex::encode(c),
            None => "none".into(),
        };
        line.push_str(&format!(
            ", Connection ID: nsh's {}, the peer's {}",
            show(own_cid),
            show(peer_cid)
        ));
    }
    line.push(')');
    line
}
