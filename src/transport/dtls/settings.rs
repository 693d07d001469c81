//! What a DTLS endpoint is configured with, as the user gives it: pre-shared
//! keys (one, or an identity → key table), certificate files, cipher suites,
//! the server's own Connection ID, debug output and the idle timeout — and
//! the checks that turn a wrong file or value into one line naming it.
//! Building mbed TLS objects from these is `super::config`'s business.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// One pre-shared key and its identity, both bytes (as in the original
/// nsh: `--psk-identity user --psk-key password`; `psk_key_hex=` for keys
/// given in hex).
#[derive(Clone, PartialEq, Eq)]
pub struct Psk {
    /// The identity clients present.
    pub identity: String,
    /// The key.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Psk")
            .field("identity", &self.identity)
            .field("key", &"…")
            .finish()
    }
}

/// Where the certificate authorities come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaSource {
    /// One file, PEM (one or more certificates) or DER.
    File(PathBuf),
    /// Every `*.pem`, `*.crt`, `*.cer` and `*.der` file of a directory.
    Path(PathBuf),
}

/// This endpoint's own certificate and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnCertificate {
    /// The certificate (PEM, possibly with its chain, or DER).
    pub crt_file: PathBuf,
    /// Its private key (PEM or DER, unencrypted).
    pub key_file: PathBuf,
}

/// The files of certificate mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFiles {
    /// This endpoint's certificate and key. A server always has them; a
    /// client (`connect`) may go without, and then only verifies the
    /// server's certificate against `ca`, as libcoap's coap-client does.
    pub own: Option<OwnCertificate>,
    /// The CAs the peer's certificate must chain to. Without them any
    /// certificate, or none, is accepted.
    pub ca: Option<CaSource>,
}

/// How peers authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Pre-shared keys: the identity a client presents picks its key.
    ///
    /// No PSK identity hint is sent: mbed TLS 2.28's server always sends an
    /// empty one (ssl_srv.c, "we use empty support identity hints").
    Psk(Vec<Psk>),
    /// X.509 certificates.
    Certificate(CertificateFiles),
}

/// Everything a DTLS endpoint (server socket, file server, or `connect`'s
/// client session) is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Security {
    /// PSK or certificates.
    pub credentials: Credentials,
    /// Cipher suites (IANA numbers), most preferred first; empty: the
    /// defaults of the credentials' kind.
    pub ciphersuites: Vec<u16>,
    /// This endpoint's Connection ID; `None`: Connection ID not offered.
    pub connection_id: Option<Vec<u8>>,
    /// mbed TLS debug level (1–4) printed to stderr; `None`: quiet.
    pub debug: Option<u8>,
    /// A session without traffic for this long ends.
    pub idle_timeout: Duration,
}

/// A session idle for a day ends: long enough for queue-mode devices that
/// sleep between updates, short enough that abandoned ones go.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

impl Security {
    /// Pre-shared key security with one identity.
    pub fn psk(psk: Psk) -> Self {
        Security::with(Credentials::Psk(vec![psk]))
    }

    /// Defaults around `credentials`.
    pub fn with(credentials: Credentials) -> Self {
        Security {
            credentials,
            ciphersuites: Vec::new(),
            connection_id: None,
            debug: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// Whether these are certificates without one of this end's own
    /// (`connect` with only `ca_file` or `ca_path`): enough for a client,
    /// not for a server.
    pub fn without_own_certificate(&self) -> bool {
        matches!(&self.credentials, Credentials::Certificate(f) if f.own.is_none())
    }

    /// The cipher suites to offer: the configured ones, or the defaults.
    pub fn suites(&self) -> Vec<u16> {
        if !self.ciphersuites.is_empty() {
            return self.ciphersuites.clone();
        }
        let kind = match self.credentials {
            Credentials::Psk(_) => SuiteKind::Psk,
            Credentials::Certificate(_) => SuiteKind::Certificate,
        };
        SUITES
            .iter()
            .filter(|s| s.kind == kind && s.default)
            .map(|s| s.id)
            .collect()
    }

    /// One phrase for the listening line: `PSK identity `user``, `3 PSK
    /// identities`, `certificate CN=…`.
    pub fn describe(&self) -> String {
        match &self.credentials {
            Credentials::Psk(keys) if keys.len() == 1 => {
                format!("PSK identity `{}`", keys[0].identity)
            }
            Credentials::Psk(keys) => format!("{} PSK identities", keys.len()),
            Credentials::Certificate(files) => match (&files.own, &files.ca) {
                (Some(own), Some(CaSource::File(p) | CaSource::Path(p))) => format!(
                    "certificate {}, client certificates verified against {}",
                    own.crt_file.display(),
                    p.display()
                ),
                (Some(own), None) => format!(
                    "certificate {}, any client certificate",
                    own.crt_file.display()
                ),
                (None, Some(CaSource::File(p) | CaSource::Path(p))) => format!(
                    "no certificate of nsh's own, server certificates verified against {}",
                    p.display()
                ),
                (None, None) => "no certificate of nsh's own".into(),
            },
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SuiteKind {
    Psk,
    Certificate,
}

struct Suite {
    id: u16,
    name: &'static str,
    kind: SuiteKind,
    /// Offered when the user names none.
    default: bool,
}

const fn suite(id: u16, name: &'static str, kind: SuiteKind, default: bool) -> Suite {
    Suite {
        id,
        name,
        kind,
        default,
    }
}

/// The cipher suites nsh knows by name, in the default order of preference:
/// the LwM2M mandatory suites (CCM_8) first.
const SUITES: [Suite; 12] = [
    suite(
        0xC0AE,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
        SuiteKind::Certificate,
        true,
    ),
    suite(
        0xC0AC,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
        SuiteKind::Certificate,
        true,
    ),
    suite(
        0xC02B,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        SuiteKind::Certificate,
        true,
    ),
    suite(
        0xC023,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        SuiteKind::Certificate,
        true,
    ),
    suite(
        0xC0AF,
        "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
        SuiteKind::Certificate,
        false,
    ),
    suite(
        0xC02C,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        SuiteKind::Certificate,
        false,
    ),
    suite(0xC0A8, "TLS_PSK_WITH_AES_128_CCM_8", SuiteKind::Psk, true),
    suite(0xC0A4, "TLS_PSK_WITH_AES_128_CCM", SuiteKind::Psk, true),
    suite(
        0x00A8,
        "TLS_PSK_WITH_AES_128_GCM_SHA256",
        SuiteKind::Psk,
        true,
    ),
    suite(
        0x00AE,
        "TLS_PSK_WITH_AES_128_CBC_SHA256",
        SuiteKind::Psk,
        true,
    ),
    suite(
        0xC037,
        "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256",
        SuiteKind::Psk,
        false,
    ),
    suite(0xC0A9, "TLS_PSK_WITH_AES_256_CCM_8", SuiteKind::Psk, false),
];

/// The IANA name of a cipher suite, or its number.
pub fn suite_name(id: u16) -> String {
    SUITES
        .iter()
        .find(|s| s.id == id)
        .map_or_else(|| format!("cipher suite 0x{id:04X}"), |s| s.name.into())
}

/// Parses a `ciphersuites=` list: names (IANA, with or without `TLS_`,
/// `-` or `_` alike, any case) or numbers (`0xC0A8`, `49320`), separated
/// by commas or spaces; the order is the order of preference.
pub fn parse_ciphersuites(text: &str) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for item in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let id = parse_suite(item).ok_or_else(|| {
            format!(
                "unknown cipher suite `{item}` (known: {})",
                SUITES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
            )
        })?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.is_empty() {
        return Err("no cipher suite given".into());
    }
    Ok(out)
}

fn parse_suite(item: &str) -> Option<u16> {
    if let Some(hex) = item.strip_prefix("0x").or_else(|| item.strip_prefix("0X")) {
        return u16::from_str_radix(hex, 16).ok();
    }
    if let Ok(n) = item.parse::<u16>() {
        return Some(n);
    }
    let norm = |s: &str| {
        let s = s.to_ascii_uppercase().replace('-', "_");
        s.strip_prefix("TLS_").map(str::to_owned).unwrap_or(s)
    };
    let want = norm(item);
    SUITES.iter().find(|s| norm(s.name) == want).map(|s| s.id)
}

/// Decodes a key given in hex (`psk_key_hex=70617373776f7264`; spaces and
/// colons between bytes allowed).
pub fn parse_hex_key(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let clean = clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
        .unwrap_or(&clean);
    if clean.is_empty() {
        return Err("the key is empty".into());
    }
    hex::decode(clean).map_err(|e| format!("`{text}` is not hex ({e})"))
}

/// Reads a PSK table: one `identity,hexkey` per line; blank lines and lines
/// starting with `#` are skipped. Errors name the file and line.
pub fn read_psk_file(path: &Path) -> Result<Vec<Psk>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("psk_file {}: {}", path.display(), io_reason(&e)))?;
    parse_psk_table(&text).map_err(|e| format!("psk_file {}:{e}", path.display()))
}

/// See [`read_psk_file`]; errors start with the line number.
pub fn parse_psk_table(text: &str) -> Result<Vec<Psk>, String> {
    let mut keys: Vec<Psk> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = n + 1;
        let (identity, key) = line
            .rsplit_once(',')
            .ok_or_else(|| format!("{n}: expected `identity,hexkey`, got `{line}`"))?;
        let identity = identity.trim();
        if identity.is_empty() {
            return Err(format!("{n}: the identity is empty"));
        }
        let key = parse_hex_key(key.trim()).map_err(|e| format!("{n}: {e}"))?;
        if keys.iter().any(|k| k.identity == identity) {
            return Err(format!("{n}: identity `{identity}` appears twice"));
        }
        keys.push(Psk {
            identity: identity.into(),
            key,
        });
    }
    if keys.is_empty() {
        return Err(" no `identity,hexkey` line".into());
    }
    Ok(keys)
}

/// A file's contents, or a line naming the path and the problem.
pub fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} {}: {}", path.display(), io_reason(&e)))
}

/// An I/O error in a user's words.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "is a directory, not a file".into(),
        _ => e.to_string(),
    }
}

/// True when `bytes` look like PEM (text with a `-----BEGIN` line) rather
/// than DER.
pub fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Parses a `connection_id=` value: the bytes of the text, as in the
/// original (`connection_id=abc` is the three bytes 61 62 63); `0x…` for
/// hex. At most 32 bytes (mbed TLS's limit).
pub fn parse_connection_id(text: &str) -> Result<Vec<u8>, String> {
    let bytes = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => hex::decode(hex).map_err(|e| format!("`{text}` is not hex ({e})"))?,
        None => text.as_bytes().to_vec(),
    };
    if bytes.is_empty() || bytes.len() > 32 {
        return Err(format!(
            "a Connection ID has 1 to 32 bytes, `{text}` has {}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// The security values of `listen`, `file_server`, `connect` or the
/// command line, as given (all optional), before they are checked and
/// combined with the command line's defaults by [`SecurityArgs::resolve`].
#[derive(Clone, Debug, Default)]
pub struct SecurityArgs {
    /// `psk_identity`.
    pub psk_identity: Option<String>,
    /// `psk_key`: the key's literal bytes.
    pub psk_key: Option<String>,
    /// `psk_key_hex`: the key in hex.
    pub psk_key_hex: Option<String>,
    /// `psk_file`: `identity,hexkey` lines.
    pub psk_file: Option<String>,
    /// `crt_file`.
    pub crt_file: Option<String>,
    /// `key_file`.
    pub key_file: Option<String>,
    /// `ca_file`.
    pub ca_file: Option<String>,
    /// `ca_path`.
    pub ca_path: Option<String>,
    /// `ciphersuites`.
    pub ciphersuites: Option<String>,
    /// `connection_id`.
    pub connection_id: Option<String>,
    /// `debug`: mbed TLS debug level (1–4), 0 = off.
    pub debug: Option<u8>,
    /// `dtls_idle_timeout`, seconds.
    pub idle_timeout: Option<Duration>,
}

/// A value the user gave (empty counts as not given, as in the original).
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl SecurityArgs {
    /// True when nothing was given.
    pub fn is_empty(&self) -> bool {
        [
            &self.psk_identity,
            &self.psk_key,
            &self.psk_key_hex,
            &self.psk_file,
            &self.crt_file,
            &self.key_file,
            &self.ca_file,
            &self.ca_path,
            &self.ciphersuites,
            &self.connection_id,
        ]
        .iter()
        .all(|v| given(v).is_none())
            && self.debug.is_none()
            && self.idle_timeout.is_none()
    }

    /// The warning the original printed when `debug` is asked for without
    /// DTLS (`resolved` is `None`), which then has no effect.
    pub fn debug_unused(&self, resolved: Option<&Security>) -> Option<&'static str> {
        (resolved.is_none() && self.debug.is_some_and(|d| d > 0))
            .then_some("warning: debug mode not available on non-DTLS sockets")
    }

    /// Checks the values and combines them with `default` (the command
    /// line's security, which each credential falls back to, as in the
    /// original), for a server (`listen`, `file_server`, the command
    /// line): certificates need `crt_file` and `key_file`. `Ok(None)`: no
    /// security (NoSec).
    pub fn resolve(&self, default: Option<&Security>) -> Result<Option<Security>, String> {
        self.resolve_as(default, false)
    }

    /// Like [`SecurityArgs::resolve`], for nsh as the client (`connect`):
    /// `ca_file` or `ca_path` alone is enough (the server's certificate is
    /// verified, none of nsh's is sent).
    pub fn resolve_client(&self, default: Option<&Security>) -> Result<Option<Security>, String> {
        self.resolve_as(default, true)
    }

    fn resolve_as(
        &self,
        default: Option<&Security>,
        client: bool,
    ) -> Result<Option<Security>, String> {
        let psk_given = [
            &self.psk_identity,
            &self.psk_key,
            &self.psk_key_hex,
            &self.psk_file,
        ]
        .iter()
        .any(|v| given(v).is_some());
        let cert_given = [&self.crt_file, &self.key_file, &self.ca_file, &self.ca_path]
            .iter()
            .any(|v| given(v).is_some());
        if psk_given && cert_given {
            return Err("Cannot use PSK and Certificates at the same time".into());
        }
        let credentials = if cert_given {
            Some(Credentials::Certificate(self.certificate_files(client)?))
        } else if psk_given {
            let fallback = match default.map(|d| &d.credentials) {
                Some(Credentials::Psk(keys)) if keys.len() == 1 => Some(&keys[0]),
                _ => None,
            };
            Some(Credentials::Psk(self.psk_table(fallback)?))
        } else {
            default.map(|d| d.credentials.clone())
        };
        let Some(credentials) = credentials else {
            for (name, v) in [
                ("connection_id", &self.connection_id),
                ("ciphersuites", &self.ciphersuites),
            ] {
                if given(v).is_some() {
                    return Err(format!(
                        "Cannot use {name} in NoSec mode (give a PSK or certificates)"
                    ));
                }
            }
            // `debug` is left unused: see [`SecurityArgs::debug_unused`].
            return Ok(None);
        };
        let mut security = match default {
            Some(d) => Security {
                credentials,
                ..d.clone()
            },
            None => Security::with(credentials),
        };
        if let Some(text) = given(&self.ciphersuites) {
            security.ciphersuites =
                parse_ciphersuites(text).map_err(|e| format!("ciphersuites: {e}"))?;
        }
        if let Some(text) = given(&self.connection_id) {
            security.connection_id =
                Some(parse_connection_id(text).map_err(|e| format!("connection_id: {e}"))?);
        }
        if let Some(level) = self.debug {
            security.debug = (level > 0).then_some(level.min(4));
        }
        if let Some(t) = self.idle_timeout {
            if t.is_zero() {
                return Err("dtls_idle_timeout: must be more than 0 seconds".into());
            }
            security.idle_timeout = t;
        }
        Ok(Some(security))
    }

    /// `client`: nsh is the client, which may go without a certificate of
    /// its own when it has CAs to verify the server's with.
    fn certificate_files(&self, client: bool) -> Result<CertificateFiles, String> {
        let ca = match (given(&self.ca_file), given(&self.ca_path)) {
            (Some(_), Some(_)) => return Err("give ca_file or ca_path, not both".into()),
            (Some(f), None) => Some(CaSource::File(f.into())),
            (None, Some(p)) => Some(CaSource::Path(p.into())),
            (None, None) => None,
        };
        let own = match (given(&self.crt_file), given(&self.key_file)) {
            (Some(c), Some(k)) => Some(OwnCertificate {
                crt_file: c.into(),
                key_file: k.into(),
            }),
            (None, None) if client && ca.is_some() => None,
            (None, _) => {
                return Err("certificates need crt_file (this end's certificate)".into());
            }
            (_, None) => {
                return Err("certificates need key_file (the certificate's private key)".into());
            }
        };
        Ok(CertificateFiles { own, ca })
    }

    fn psk_table(&self, fallback: Option<&Psk>) -> Result<Vec<Psk>, String> {
        let mut keys = match given(&self.psk_file) {
            Some(path) => read_psk_file(Path::new(path))?,
            None => Vec::new(),
        };
        let key = match (given(&self.psk_key), given(&self.psk_key_hex)) {
            (Some(_), Some(_)) => return Err("give psk_key or psk_key_hex, not both".into()),
            (Some(k), None) => Some(k.as_bytes().to_vec()),
            (None, Some(h)) => Some(parse_hex_key(h).map_err(|e| format!("psk_key_hex: {e}"))?),
            (None, None) => None,
        };
        let identity = given(&self.psk_identity).map(str::to_owned);
        let one = match (identity, key) {
            (Some(identity), Some(key)) => Some(Psk { identity, key }),
            (None, None) => None,
            // Each falls back to the command line's, as in the original.
            (Some(identity), None) => match fallback {
                Some(f) => Some(Psk {
                    identity,
                    key: f.key.clone(),
                }),
                None => return Err("`psk_identity` needs `psk_key` (or `psk_key_hex`) too".into()),
            },
            (None, Some(key)) => match fallback {
                Some(f) => Some(Psk {
                    identity: f.identity.clone(),
                    key,
                }),
                None => return Err("`psk_key` needs `psk_identity` too".into()),
            },
        };
        if let Some(one) = one {
            if keys.iter().any(|k| k.identity == one.identity) {
                return Err(format!(
                    "psk_identity `{}` is in psk_file too",
                    one.identity
                ));
            }
            keys.insert(0, one);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_by_name_number_and_any_spelling_keep_the_given_order() {
        assert_eq!(
            parse_ciphersuites("TLS-PSK-WITH-AES-128-CCM, psk_with_aes_128_ccm_8 0xC0AE 49320")
                .unwrap(),
            vec![0xC0A4, 0xC0A8, 0xC0AE]
        );
        let e = parse_ciphersuites("TLS_RSA_WITH_NULL").unwrap_err();
        assert!(
            e.starts_with("unknown cipher suite `TLS_RSA_WITH_NULL`"),
            "{e}"
        );
        assert_eq!(
            parse_ciphersuites(" , ").unwrap_err(),
            "no cipher suite given"
        );
    }

    #[test]
    fn default_suites_put_the_lwm2m_mandatory_one_first() {
        let psk = Security::psk(Psk {
            identity: "a".into(),
            key: vec![1],
        });
        assert_eq!(psk.suites()[0], 0xC0A8);
        let crt = Security::with(Credentials::Certificate(CertificateFiles {
            own: Some(OwnCertificate {
                crt_file: "c".into(),
                key_file: "k".into(),
            }),
            ca: None,
        }));
        assert_eq!(crt.suites(), vec![0xC0AE, 0xC0AC, 0xC02B, 0xC023]);
        assert_eq!(suite_name(0xC0AE), "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8");
        assert_eq!(suite_name(0x1234), "cipher suite 0x1234");
    }

    #[test]
    fn hex_keys_and_psk_tables() {
        assert_eq!(parse_hex_key("70617373776f7264").unwrap(), b"password");
        assert_eq!(parse_hex_key("0x70:61").unwrap(), b"pa");
        assert!(parse_hex_key("7g").unwrap_err().contains("not hex"));
        let t = parse_psk_table("# devices\ndev-1,0102\n\n dev,2 , 0A0b \n").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[1].identity.as_str(), t[1].key.as_slice()),
            ("dev,2", &[10u8, 11][..])
        );
        assert_eq!(
            parse_psk_table("a,01\nb\n").unwrap_err(),
            "2: expected `identity,hexkey`, got `b`"
        );
        assert_eq!(
            parse_psk_table("a,01\na,02").unwrap_err(),
            "2: identity `a` appears twice"
        );
        assert!(
            parse_psk_table("a,zz")
                .unwrap_err()
                .starts_with("1: `zz` is not hex")
        );
        let e = read_psk_file(Path::new("/nonexistent/keys.csv")).unwrap_err();
        assert_eq!(e, "psk_file /nonexistent/keys.csv: no such file");
    }

    #[test]
    fn connection_ids_are_text_bytes_or_hex() {
        assert_eq!(parse_connection_id("abc").unwrap(), b"abc");
        assert_eq!(
            parse_connection_id("0xdeadbeef").unwrap(),
            [0xde, 0xad, 0xbe, 0xef]
        );
        assert!(parse_connection_id("").is_err());
        assert!(
            parse_connection_id(&"x".repeat(33))
                .unwrap_err()
                .contains("33")
        );
    }

    #[test]
    fn arguments_resolve_with_the_command_line_as_fallback() {
        let none = SecurityArgs::default();
        assert_eq!(none.resolve(None).unwrap(), None);
        let cli = Security::psk(Psk {
            identity: "user".into(),
            key: b"password".to_vec(),
        });
        assert_eq!(none.resolve(Some(&cli)).unwrap(), Some(cli.clone()));
        let hex = SecurityArgs {
            psk_identity: Some("dev".into()),
            psk_key_hex: Some("0102".into()),
            ..Default::default()
        };
        let s = hex.resolve(None).unwrap().unwrap();
        assert_eq!(
            s.credentials,
            Credentials::Psk(vec![Psk {
                identity: "dev".into(),
                key: vec![1, 2]
            }])
        );
        // psk_identity alone takes the command line's key.
        let id = SecurityArgs {
            psk_identity: Some("other".into()),
            ..Default::default()
        };
        let s = id.resolve(Some(&cli)).unwrap().unwrap();
        assert_eq!(
            s.credentials,
            Credentials::Psk(vec![Psk {
                identity: "other".into(),
                key: b"password".to_vec()
            }])
        );
        assert!(id.resolve(None).unwrap_err().contains("needs `psk_key`"));
        let both = SecurityArgs {
            psk_identity: Some("a".into()),
            psk_key: Some("b".into()),
            crt_file: Some("c".into()),
            ..Default::default()
        };
        assert_eq!(
            both.resolve(None).unwrap_err(),
            "Cannot use PSK and Certificates at the same time"
        );
        let cid = SecurityArgs {
            connection_id: Some("abc".into()),
            ..Default::default()
        };
        assert!(
            cid.resolve(None)
                .unwrap_err()
                .starts_with("Cannot use connection_id in NoSec mode")
        );
        let s = cid.resolve(Some(&cli)).unwrap().unwrap();
        assert_eq!(s.connection_id.as_deref(), Some(&b"abc"[..]));
        let crt = SecurityArgs {
            crt_file: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(crt.resolve(None).unwrap_err().contains("key_file"));
    }

    #[test]
    fn a_client_may_verify_the_server_without_a_certificate_of_its_own() {
        let ca_only = SecurityArgs {
            ca_file: Some("ca.crt".into()),
            ..Default::default()
        };
        let s = ca_only.resolve_client(None).unwrap().unwrap();
        assert_eq!(
            s.credentials,
            Credentials::Certificate(CertificateFiles {
                own: None,
                ca: Some(CaSource::File("ca.crt".into())),
            })
        );
        assert!(s.without_own_certificate());
        assert_eq!(
            s.describe(),
            "no certificate of nsh's own, server certificates verified against ca.crt"
        );
        // A server still needs its certificate.
        assert!(ca_only.resolve(None).unwrap_err().contains("crt_file"));
        // Half a pair is still refused.
        let key_only = SecurityArgs {
            key_file: Some("k.pem".into()),
            ca_file: Some("ca.crt".into()),
            ..Default::default()
        };
        assert!(
            key_only
                .resolve_client(None)
                .unwrap_err()
                .contains("crt_file")
        );
    }

    #[test]
    fn pem_is_told_from_der() {
        assert!(is_pem(b"junk\n-----BEGIN CERTIFICATE-----\n"));
        assert!(!is_pem(&[0x30, 0x82, 0x01, 0x00]));
    }
}
