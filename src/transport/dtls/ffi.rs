//! The few mbed TLS calls the `mbedtls` crate does not wrap, in one place:
//! the PSK callback (an identity → key table), DTLS Connection ID (own CID,
//! the peer's CID), the debug threshold, a fatal alert where mbed TLS
//! sends none, the alert a session read last (decrypted inside the
//! session), and close_notify with the session kept (the crate's own
//! drops the session's I/O with it). Also the per-thread note of which peer mbed TLS is working
//! for, so that the PSK callback can tell which identity a session used (or
//! which one it refused) and debug lines can name their peer (for DTLS
//! sessions and for TLS connections over TCP alike), and what a failed
//! handshake had received or where it stalled (for words on its line).
//!
//! Connection ID exists only because `.cargo/config.toml` defines
//! MBEDTLS_SSL_DTLS_CONNECTION_ID for the C library and the bindings alike;
//! without it `ssl_set_cid` would be missing here and the build would fail.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::net::SocketAddr;

use mbedtls::ssl::{Config, Context};
use mbedtls_sys as sys;

use super::settings::Psk;

/// What the thread is doing inside mbed TLS.
#[derive(Default)]
struct Step {
    peer: Option<SocketAddr>,
    psk_identity: Option<String>,
}

thread_local! {
    static STEP: RefCell<Step> = RefCell::new(Step::default());
    /// The identity the PSK callback last refused on this thread (the
    /// handshake and the line about its failure run on the same thread).
    static UNKNOWN_IDENTITY: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// The PSK identity the callback last refused on this thread, taken.
pub(crate) fn take_unknown_identity() -> Option<Vec<u8>> {
    UNKNOWN_IDENTITY.with(|u| u.borrow_mut().take())
}

/// Runs `f` (one mbed TLS call on `peer`'s session) noting the peer for the
/// debug callback; returns `f`'s result and the PSK identity the PSK
/// callback accepted meanwhile, if it ran.
pub(crate) fn stepping<R>(peer: SocketAddr, f: impl FnOnce() -> R) -> (R, Option<String>) {
    let outer = STEP.with(|s| {
        std::mem::replace(
            &mut *s.borrow_mut(),
            Step {
                peer: Some(peer),
                psk_identity: None,
            },
        )
    });
    let r = f();
    let step = STEP.with(|s| std::mem::replace(&mut *s.borrow_mut(), outer));
    (r, step.psk_identity)
}

/// The peer mbed TLS is working for on this thread, if known.
pub(super) fn current_peer() -> Option<SocketAddr> {
    STEP.with(|s| s.borrow().peer)
}

/// A PSK table the callback looks identities up in. Must outlive every
/// context made from the configuration it is installed in.
pub(super) struct PskKeys(pub(super) Vec<Psk>);

unsafe extern "C" fn psk_callback(
    table: *mut c_void,
    ssl: *mut sys::ssl_context,
    identity: *const u8,
    len: usize,
) -> c_int {
    if table.is_null() || ssl.is_null() || (identity.is_null() && len > 0) {
        return sys::ERR_SSL_BAD_INPUT_DATA;
    }
    // SAFETY: `table` is the `PskKeys` given to `install_psk_table`, kept
    // alive by the caller; mbed TLS passes the identity's bytes.
    let (keys, identity) = unsafe {
        (
            &*(table as *const PskKeys),
            if len == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(identity, len)
            },
        )
    };
    let Some(psk) = keys.0.iter().find(|k| k.identity.as_bytes() == identity) else {
        UNKNOWN_IDENTITY.with(|u| *u.borrow_mut() = Some(identity.to_vec()));
        return sys::ERR_SSL_UNKNOWN_IDENTITY;
    };
    // SAFETY: `ssl` is the context in handshake; the key is copied.
    let r = unsafe { sys::ssl_set_hs_psk(ssl, psk.key.as_ptr(), psk.key.len()) };
    if r == 0 {
        STEP.with(|s| s.borrow_mut().psk_identity = Some(psk.identity.clone()));
    }
    r
}

/// Makes `config` pick the key by the identity the client presents.
///
/// # Safety
/// `keys` must outlive `config` and every context made from it.
pub(super) unsafe fn install_psk_table(config: &mut Config, keys: &PskKeys) {
    let conf: *mut sys::ssl_config = config.into();
    // SAFETY: as the caller promised.
    unsafe {
        sys::ssl_conf_psk_cb(
            conf,
            Some(psk_callback),
            keys as *const PskKeys as *mut c_void,
        );
    }
}

/// Accepts Connection IDs of `len` bytes in incoming records; records with
/// another CID are dropped.
pub(super) fn configure_cid(config: &mut Config, len: usize) -> Result<(), c_int> {
    let conf: *mut sys::ssl_config = config.into();
    // SAFETY: `conf` is a live configuration.
    match unsafe { sys::ssl_conf_cid(conf, len, sys::SSL_UNEXPECTED_CID_IGNORE) } {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Offers `own` as this end's Connection ID in the next handshake.
pub(super) fn offer_cid<T>(ctx: &mut Context<T>, own: &[u8]) -> Result<(), c_int> {
    let ssl: *mut sys::ssl_context = ctx.into();
    // SAFETY: `ssl` is live; mbed TLS copies the CID.
    match unsafe { sys::ssl_set_cid(ssl, sys::SSL_CID_ENABLED, own.as_ptr(), own.len()) } {
        0 => Ok(()),
        e => Err(e),
    }
}

/// The Connection ID the peer asked this end to put in its records, when
/// one was negotiated.
pub(super) fn peer_cid<T>(ctx: &mut Context<T>) -> Option<Vec<u8>> {
    let ssl: *mut sys::ssl_context = ctx.into();
    let mut enabled: c_int = 0;
    let mut buf = [0u8; 32];
    let mut len = 0usize;
    // SAFETY: `ssl` is live; `buf` has room for the largest CID.
    let r = unsafe { sys::ssl_get_peer_cid(ssl, &mut enabled, buf.as_mut_ptr(), &mut len) };
    (r == 0 && enabled == sys::SSL_CID_ENABLED).then(|| buf[..len.min(32)].to_vec())
}

/// Sets mbed TLS's process-wide debug threshold (0: quiet, 4: everything).
pub(super) fn set_debug_threshold(level: u8) {
    // SAFETY: a plain store of an int inside mbed TLS.
    unsafe { sys::debug_set_threshold(c_int::from(level.min(4))) }
}

unsafe extern "C" fn collect_records(sink: *mut c_void, buf: *const u8, len: usize) -> c_int {
    if sink.is_null() || (buf.is_null() && len > 0) {
        return sys::ERR_SSL_BAD_INPUT_DATA;
    }
    // SAFETY: `sink` is the vector `fatal_alert` lends for this call;
    // mbed TLS passes `len` bytes at `buf`.
    let (records, bytes) = unsafe {
        (
            &mut *(sink as *mut Vec<Vec<u8>>),
            if len == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(buf, len)
            },
        )
    };
    records.push(bytes.to_vec());
    c_int::try_from(len).unwrap_or(c_int::MAX)
}

/// The fatal alert `description` (RFC 5246 §7.2) as the session would
/// send it now, for a handshake that failed where mbed TLS sends none
/// itself (no client certificate), so the peer gives up at once instead of
/// retransmitting. The `mbedtls` crate has dropped the session's I/O by
/// then: the record is collected here, for the caller to send.
pub(crate) fn fatal_alert<T>(ctx: &mut Context<T>, description: u8) -> Vec<Vec<u8>> {
    let ssl: *mut sys::ssl_context = ctx.into();
    let mut records: Vec<Vec<u8>> = Vec::new();
    let sink = &mut records as *mut Vec<Vec<u8>> as *mut c_void;
    // SAFETY: `ssl` is live and without I/O (see above); the sink outlives
    // the call, and the I/O is cleared again before `records` is read.
    unsafe {
        sys::ssl_set_bio(ssl, sink, Some(collect_records), None, None);
        sys::ssl_send_alert_message(ssl, sys::SSL_ALERT_LEVEL_FATAL as u8, description);
        sys::ssl_set_bio(ssl, std::ptr::null_mut(), None, None, None);
    }
    records
}

/// Sends close_notify on a session whose I/O is still set, and keeps
/// both: the caller goes on reading the socket beneath. Whether it went
/// out whole does not matter to the caller, which ends its side of the
/// socket next.
pub(crate) fn close_notify<T>(ctx: &mut Context<T>) {
    let ssl: *mut sys::ssl_context = ctx.into();
    // SAFETY: `ssl` is live and its I/O is the caller's socket.
    let _ = unsafe { sys::ssl_close_notify(ssl) };
}

/// What a session had received when its handshake failed: the content
/// type of the last record header read (`None` before any byte), and
/// whether the handshake still waited for the ClientHello with nothing
/// received. Read from the context, which keeps its buffers after the
/// `mbedtls` crate dropped its I/O.
pub(crate) fn received_at_failure<T>(ctx: &mut Context<T>) -> (Option<u8>, bool) {
    let ssl: *mut sys::ssl_context = ctx.into();
    // SAFETY: `ssl` is live; `in_hdr` points into its input buffer (set up
    // with the context), read only when bytes were received into it.
    unsafe {
        let left = (*ssl).in_left;
        let header = (*ssl).in_hdr;
        let first = (left > 0 && !header.is_null()).then(|| *header);
        let waiting = u32::try_from((*ssl).state).is_ok_and(|s| s <= sys::SSL_CLIENT_HELLO);
        (first, waiting && left == 0)
    }
}

/// The alert the session read last, as (level, description), when the
/// last record it handled was one: mbed TLS decrypts an alert sent inside
/// the session and tells only that a fatal one came, but the record stays
/// in its input buffer.
pub(crate) fn last_alert<T>(ctx: &mut Context<T>) -> Option<(u8, u8)> {
    let ssl: *mut sys::ssl_context = ctx.into();
    // SAFETY: `ssl` is live; `in_msg` points into its input buffer, and
    // `in_msglen` bytes of it hold the last record's content.
    unsafe {
        let msg = (*ssl).in_msg;
        if (*ssl).in_msgtype != sys::SSL_MSG_ALERT || (*ssl).in_msglen < 2 || msg.is_null() {
            return None;
        }
        Some((*msg, *msg.add(1)))
    }
}

/// Whether the server asked this client for a certificate (its
/// CertificateRequest came).
pub(crate) fn certificate_requested<T>(ctx: &mut Context<T>) -> bool {
    let ssl: *mut sys::ssl_context = ctx.into();
    // SAFETY: `ssl` is live; a plain read.
    unsafe { (*ssl).client_auth != 0 }
}

/// Where a client handshake stands: mbed TLS's state (`ssl_states`).
pub(crate) fn handshake_state<T>(ctx: &mut Context<T>) -> u32 {
    let ssl: *mut sys::ssl_context = ctx.into();
    // SAFETY: `ssl` is live; a plain read.
    u32::try_from(unsafe { (*ssl).state }).unwrap_or(0)
}

/// mbed TLS's states of a client waiting for the server's last flight
/// (NewSessionTicket, ChangeCipherSpec, Finished): nsh's Finished is out.
pub(crate) const AWAITING_SERVER_FINISHED: [u32; 3] = [
    sys::SSL_SERVER_NEW_SESSION_TICKET,
    sys::SSL_SERVER_CHANGE_CIPHER_SPEC,
    sys::SSL_SERVER_FINISHED,
];
/// mbed TLS's state of a client waiting for the ServerHello (its
/// ClientHello is out).
pub(crate) const AWAITING_SERVER_HELLO: u32 = sys::SSL_SERVER_HELLO;
