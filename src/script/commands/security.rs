//! The DTLS arguments `listen`, `file_server` and `connect` share: the
//! original's credentials (in its order) and nsh's additions (`debug_level`
//! is `debug` under a name a Rhai map can hold), turned into
//! [`SecurityArgs`] for the transport to check and combine with the command
//! line's defaults.

use std::time::Duration;

use crate::transport::dtls::settings::SecurityArgs;

crate::arguments! {
    /// The original's DTLS credentials, in its order.
    pub(super) struct Credentials {
        psk_identity: Option<String> = opt(Str, "command line -i"),
        psk_key: Option<String> = opt(Str, "command line -k"),
        ca_path: Option<String> = opt(Str, "none"),
        ca_file: Option<String> = opt(Str, "none"),
        crt_file: Option<String> = opt(Str, "none"),
        key_file: Option<String> = opt(Str, "none"),
    }
}

crate::arguments! {
    /// What nsh adds: hex keys, PSK tables, cipher suites.
    pub(super) struct MoreSecurity {
        psk_key_hex: Option<String> = opt(Str, "none (psk_key in hex)"),
        psk_file: Option<String> = opt(Str, "none (identity,hexkey lines)"),
        ciphersuites: Option<String> = opt(Str, "CCM_8 first, then CCM, GCM, CBC"),
    }
}

/// The debug levels nsh offers, 1–3, are mbed TLS's 2–4 (its level 1 shows
/// only errors, which nsh prints anyway): 1 handshake steps, 2 records, 3
/// everything.
pub(super) fn debug_level(debug: Option<i64>) -> Result<Option<u8>, String> {
    match debug {
        None => Ok(None),
        Some(0) => Ok(Some(0)),
        Some(n @ 1..=3) => Ok(Some(n as u8 + 1)),
        Some(n) => Err(format!(
            "`debug`: {n} is not a level (0 off, 1 handshake steps, 2 records, 3 everything)"
        )),
    }
}

/// The debug level given as `debug` or as its alias `debug_level` (what
/// a Rhai map can hold: `debug` is a reserved word in Rhai); not both.
fn debug_or_alias(debug: Option<i64>, alias: Option<i64>) -> Result<Option<i64>, String> {
    match (debug, alias) {
        (Some(_), Some(_)) => {
            Err("`debug` and `debug_level` are the same option: give one of them".into())
        }
        (d, a) => Ok(d.or(a)),
    }
}

/// Everything given, for [`SecurityArgs::resolve`]; `debug` as (`debug`,
/// `debug_level`).
pub(super) fn security_args(
    c: Credentials,
    m: MoreSecurity,
    debug: (Option<i64>, Option<i64>),
    connection_id: Option<String>,
    idle_timeout: Option<Duration>,
) -> Result<SecurityArgs, String> {
    Ok(SecurityArgs {
        psk_identity: c.psk_identity,
        psk_key: c.psk_key,
        psk_key_hex: m.psk_key_hex,
        psk_file: m.psk_file,
        crt_file: c.crt_file,
        key_file: c.key_file,
        ca_file: c.ca_file,
        ca_path: c.ca_path,
        ciphersuites: m.ciphersuites,
        connection_id,
        debug: debug_level(debug_or_alias(debug.0, debug.1)?)?,
        idle_timeout,
    })
}
