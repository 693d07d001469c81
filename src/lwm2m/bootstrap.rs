//! Bootstrap-Write payloads (reference §14.1; OMA LwM2M Core §5.2.7 and
//! Appendix E.1/E.2): the Security (0) and Server (1) Object Instances that
//! point a client at an LwM2M server, as TLV.

use std::fmt;

use super::format::tlv;
use super::node::{
    MultipleResource, Node, ObjectInstance, Path, Record, Resource, ResourceInstance, ResourceNode,
    Value,
};

/// Security Mode (Security object resource 2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SecurityMode {
    /// 0: Pre-Shared Key.
    PreSharedKey,
    /// 1: Raw Public Key.
    RawPublicKey,
    /// 2: Certificate.
    Certificate,
    /// 3: NoSec.
    NoSec,
    /// 4: Certificate with EST.
    CertificateWithEst,
}

impl SecurityMode {
    const ALL: [SecurityMode; 5] = [
        SecurityMode::PreSharedKey,
        SecurityMode::RawPublicKey,
        SecurityMode::Certificate,
        SecurityMode::NoSec,
        SecurityMode::CertificateWithEst,
    ];

    /// The resource value.
    pub fn value(self) -> i64 {
        match self {
            SecurityMode::PreSharedKey => 0,
            SecurityMode::RawPublicKey => 1,
            SecurityMode::Certificate => 2,
            SecurityMode::NoSec => 3,
            SecurityMode::CertificateWithEst => 4,
        }
    }

    /// The original's member name (`PreSharedKey`).
    pub fn name(self) -> &'static str {
        match self {
            SecurityMode::PreSharedKey => "PreSharedKey",
            SecurityMode::RawPublicKey => "RawPublicKey",
            SecurityMode::Certificate => "Certificate",
            SecurityMode::NoSec => "NoSec",
            SecurityMode::CertificateWithEst => "CertificateWithEst",
        }
    }

    /// Parses a name (any case, also `psk`, `rpk`, `cert`, `nosec`, `est`)
    /// or a number 0–4.
    pub fn parse(text: &str) -> Option<SecurityMode> {
        let t = text.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|m| {
            m.name().to_ascii_lowercase() == t
                || m.value().to_string() == t
                || matches!(
                    (m, t.as_str()),
                    (SecurityMode::PreSharedKey, "psk")
                        | (SecurityMode::RawPublicKey, "rpk")
                        | (SecurityMode::Certificate, "cert" | "x509")
                        | (SecurityMode::CertificateWithEst, "est")
                )
        })
    }

    /// The mode a server URI implies: NoSec for `coap`/`coap+tcp`, PSK for
    /// `coaps`/`coaps+tcp` (the original failed on the TCP schemes).
    pub fn for_uri(uri: &str) -> Option<SecurityMode> {
        match uri.split_once("://")?.0.to_ascii_lowercase().as_str() {
            "coap" | "coap+tcp" => Some(SecurityMode::NoSec),
            "coaps" | "coaps+tcp" => Some(SecurityMode::PreSharedKey),
            _ => None,
        }
    }
}

impl fmt::Display for SecurityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a Bootstrap-Write sequence writes.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerAccount {
    /// LwM2M Server URI (Security 0).
    pub uri: String,
    /// Security Mode (Security 2).
    pub security_mode: SecurityMode,
    /// Public Key or Identity (Security 3): the PSK identity or the client
    /// certificate.
    pub identity: Vec<u8>,
    /// Server Public Key (Security 4).
    pub server_public_key: Vec<u8>,
    /// Secret Key (Security 5): the PSK or the client's private key.
    pub secret_key: Vec<u8>,
    /// Short Server ID (Security 10, Server 0).
    pub ssid: i64,
    /// Bootstrap-Server (Security 1); when set, no Server instance.
    pub is_bootstrap: bool,
    /// Lifetime (Server 1).
    pub lifetime: i64,
    /// Notification Storing When Disabled or Offline (Server 6).
    pub notification_storing: bool,
    /// Binding (Server 7).
    pub binding: String,
    /// Instance ID of both instances.
    pub iid: u16,
    /// DTLS/TLS Ciphersuite (Security 16), IANA values.
    pub tls_ciphersuites: Vec<i64>,
}

fn single(id: u16, value: Value) -> ResourceNode {
    ResourceNode::Single(Resource::new(id, value))
}

impl ServerAccount {
    /// The Security Object Instance as TLV, resources in the original's
    /// order: 0, 1, 2, 3, 4, 5, 10, then 16 when ciphersuites are given. (The
    /// original always wrote 16, an LwM2M 1.1 resource that 1.0 clients
    /// such as Wakaama reject with 5.00.)
    pub fn security_instance(&self) -> Result<Vec<u8>, String> {
        let suites = self
            .tls_ciphersuites
            .iter()
            .enumerate()
            .map(|(i, s)| ResourceInstance::new(i as u16, Value::Integer(*s)))
            .collect();
        let mut resources = vec![
            single(0, Value::String(self.uri.clone())),
            single(1, Value::Integer(i64::from(self.is_bootstrap))),
            single(2, Value::Integer(self.security_mode.value())),
            single(3, Value::Opaque(self.identity.clone())),
            single(4, Value::Opaque(self.server_public_key.clone())),
            single(5, Value::Opaque(self.secret_key.clone())),
            single(10, Value::Integer(self.ssid)),
        ];
        if !self.tls_ciphersuites.is_empty() {
            resources.push(ResourceNode::Multiple(MultipleResource {
                id: 16,
                instances: suites,
            }));
        }
        let instance = ObjectInstance {
            id: self.iid,
            resources,
        };
        tlv::encode(&[Node::ObjectInstance(instance)])
    }

    /// The Server Object Instance as TLV: 0 Short Server ID, 1 Lifetime,
    /// 6 Notification Storing, 7 Binding.
    pub fn server_instance(&self) -> Result<Vec<u8>, String> {
        let instance = ObjectInstance {
            id: self.iid,
            resources: vec![
                single(0, Value::Integer(self.ssid)),
                single(1, Value::Integer(self.lifetime)),
                single(6, Value::Integer(i64::from(self.notification_storing))),
                single(7, Value::String(self.binding.clone())),
            ],
        };
        tlv::encode(&[Node::ObjectInstance(instance)])
    }
}

impl ServerAccount {
    /// The same account as Bootstrap-Pack records (LwM2M 1.2, reference
    /// §14.2): Security `/0/IID/…` then, unless `is_bootstrap`, Server
    /// `/1/IID/…`. Empty keys are left out.
    pub fn pack_records(&self) -> Vec<Record> {
        let at = |o: u16, r: u16| Path::new(&[o, self.iid, r]).unwrap_or(Path::ROOT);
        let mut out = vec![
            Record::new(at(0, 0), Value::String(self.uri.clone())),
            Record::new(at(0, 1), Value::Boolean(self.is_bootstrap)),
            Record::new(at(0, 2), Value::Integer(self.security_mode.value())),
        ];
        for (rid, v) in [
            (3, &self.identity),
            (4, &self.server_public_key),
            (5, &self.secret_key),
        ] {
            if !v.is_empty() {
                out.push(Record::new(at(0, rid), Value::Opaque(v.clone())));
            }
        }
        out.push(Record::new(at(0, 10), Value::Integer(self.ssid)));
        for (k, suite) in self.tls_ciphersuites.iter().enumerate() {
            let p = Path::new(&[0, self.iid, 16, k as u16]).unwrap_or(Path::ROOT);
            out.push(Record::new(p, Value::Integer(*suite)));
        }
        if !self.is_bootstrap {
            out.push(Record::new(at(1, 0), Value::Integer(self.ssid)));
            out.push(Record::new(at(1, 1), Value::Integer(self.lifetime)));
            out.push(Record::new(
                at(1, 6),
                Value::Boolean(self.notification_storing),
            ));
            out.push(Record::new(at(1, 7), Value::String(self.binding.clone())));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual_example() -> ServerAccount {
        // `bootstrap finish=True ssid=1 uri=coaps://127.0.0.1:9500
        //  security_mode=PreSharedKey psk_identity=user psk_key=password`
        ServerAccount {
            uri: "coaps://127.0.0.1:9500".into(),
            security_mode: SecurityMode::PreSharedKey,
            identity: b"user".to_vec(),
            server_public_key: Vec::new(),
            secret_key: b"password".to_vec(),
            ssid: 1,
            is_bootstrap: false,
            lifetime: 86400,
            notification_storing: false,
            binding: "U".into(),
            iid: 1,
            tls_ciphersuites: Vec::new(),
        }
    }

    #[test]
    fn the_manuals_bootstrap_writes_56_and_18_bytes() {
        // Manual 7.1.2.7.1: "-> Write /0: APPLICATION_LWM2M_TLV, 58 bytes",
        // "-> Write /1: APPLICATION_LWM2M_TLV, 18 bytes". nsh leaves out the
        // empty Multiple Resource 16 (2 bytes) the original always wrote.
        let a = manual_example();
        let sec = a.security_instance().unwrap();
        assert_eq!(sec.len(), 56);
        assert_eq!(&sec[..3], &[0x08, 0x01, 53]);
        assert!(sec.ends_with(&[0xc1, 0x0a, 0x01]), "{sec:02x?}");
        let with_suites = ServerAccount {
            tls_ciphersuites: vec![0xc0a8],
            ..a.clone()
        };
        let sec = with_suites.security_instance().unwrap();
        // Multiple Resource 16 (6 bytes) holding instance 0 = 0xC0A8 as a
        // 4-byte integer (OMA TLV: 86 10 | 44 00 00 00 c0 a8).
        assert!(
            sec.ends_with(&[0x86, 0x10, 0x44, 0x00, 0x00, 0x00, 0xc0, 0xa8]),
            "{sec:02x?}"
        );
        let srv = a.server_instance().unwrap();
        assert_eq!(
            srv,
            vec![
                0x08, 0x01, 15, 0xc1, 0, 1, 0xc4, 1, 0, 1, 0x51, 0x80, 0xc1, 6, 0, 0xc1, 7, b'U'
            ]
        );
    }

    #[test]
    fn the_pack_lists_security_then_server_records() {
        let records = manual_example().pack_records();
        let paths: Vec<String> = records.iter().map(|r| r.path.to_string()).collect();
        assert_eq!(
            paths,
            [
                "/0/1/0", "/0/1/1", "/0/1/2", "/0/1/3", "/0/1/5", "/0/1/10", "/1/1/0", "/1/1/1",
                "/1/1/6", "/1/1/7"
            ]
        );
        assert_eq!(records[3].value, Value::Opaque(b"user".to_vec()));
    }

    #[test]
    fn modes_parse_by_name_alias_and_number_and_follow_the_uri() {
        assert_eq!(
            SecurityMode::parse("PreSharedKey"),
            Some(SecurityMode::PreSharedKey)
        );
        assert_eq!(SecurityMode::parse("nosec"), Some(SecurityMode::NoSec));
        assert_eq!(SecurityMode::parse("2"), Some(SecurityMode::Certificate));
        assert_eq!(SecurityMode::parse("x"), None);
        assert_eq!(
            SecurityMode::for_uri("coaps+tcp://h:1"),
            Some(SecurityMode::PreSharedKey)
        );
        assert_eq!(SecurityMode::for_uri("coap://h"), Some(SecurityMode::NoSec));
        assert_eq!(SecurityMode::for_uri("http://h"), None);
    }
}
