//! The CoAP file server (`file_server`, reference §14.4): serves the files
//! below a root directory with Block2 (RFC 7959), for clients that download
//! firmware or other files over CoAP.
//!
//! Unlike the original: a file of one block or less is answered with its
//! content (not 4.05); a missing file gets 4.04 and the server goes on;
//! paths cannot leave the root (`..` segments are refused with 4.03); the
//! ETag is the CRC-32 of the file in 4 bytes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::coap::{BlockValue, CoapOption, Code, ContentFormat, Message, OptionNumber, Type, udp};
use crate::lwm2m::kind::{NoContext, classify};
use crate::lwm2m::summary;
use crate::transport::UdpTransport;
use crate::transport::udp::MAX_DATAGRAM;

/// Default block size when the request has no Block2.
pub const DEFAULT_BLOCK: u32 = 1024;

/// A running file server; stops when dropped or on [`FileServer::stop`].
pub struct FileServer {
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileServer {
    /// Serves `root` on UDP `port` (0: any), printing each exchange.
    pub fn start(
        root: &Path,
        port: u16,
        ipv6: bool,
        print: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> std::io::Result<FileServer> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        let transport = UdpTransport::bind(port, ipv6)?;
        let port = transport.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nsh-file-server".into())
            .spawn(move || {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                while !flag.load(Ordering::SeqCst) {
                    match transport.recv(&mut buf, Duration::from_millis(100)) {
                        Ok(Some((n, peer))) => {
                            serve_one(&transport, &root, &buf[..n], peer, print.as_ref())
                        }
                        Ok(None) => {}
                        Err(e) => print(&format!("file server: receive error: {e}")),
                    }
                }
            })?;
        Ok(FileServer {
            stop,
            port,
            thread: Some(thread),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve_one(
    transport: &UdpTransport,
    root: &Path,
    bytes: &[u8],
    peer: SocketAddr,
    print: &dyn Fn(&str),
) {
    let req = match udp::decode(bytes) {
        Ok(m) => m,
        Err(e) => {
            print(&format!("<- malformed datagram from {peer}: {e}"));
            return;
        }
    };
    print(&format!("<- {}", summary(&req, classify(&req, &NoContext))));
    let Some(reply) = respond(root, &req) else {
        print("-> ignored (neither CON nor NON)");
        return;
    };
    print(&format!(
        "-> {}",
        summary(&reply, classify(&reply, &NoContext))
    ));
    if let Err(e) = transport.send_to(&udp::encode(&reply), peer) {
        print(&format!("file server: send error: {e}"));
    }
}

/// The answer to one request (`None` for ACK and RST, which get none).
pub fn respond(root: &Path, req: &Message) -> Option<Message> {
    let mtype = match req.mtype {
        Type::Confirmable => Type::Acknowledgement,
        Type::NonConfirmable => Type::NonConfirmable,
        Type::Acknowledgement | Type::Reset => return None,
    };
    if req.code.is_empty() {
        // CoAP ping (RFC 7252 §4.3).
        return Some(Message::new(Type::Reset, Code::EMPTY, req.message_id));
    }
    let mut reply = Message::new(mtype, Code::CONTENT, req.message_id);
    reply.token = req.token.clone();
    if req.code != Code::GET {
        reply.code = Code::METHOD_NOT_ALLOWED;
        return Some(reply);
    }
    let data = match resolve(root, &req.uri_path()) {
        Ok(p) => match std::fs::read(&p) {
            Ok(d) => d,
            Err(_) => {
                reply.code = Code::NOT_FOUND;
                return Some(reply);
            }
        },
        Err(code) => {
            reply.code = code;
            return Some(reply);
        }
    };
    let asked = req.block2();
    let size = asked.map_or(DEFAULT_BLOCK, |b| b.size().min(DEFAULT_BLOCK));
    let num = asked.map_or(0, |b| b.num);
    let start = (num as usize).saturating_mul(size as usize);
    if start > data.len() || (start == data.len() && num > 0) {
        reply.code = Code::BAD_OPTION;
        return Some(reply);
    }
    let end = (start + size as usize).min(data.len());
    let more = end < data.len();
    reply.add_option(CoapOption::uint(
        OptionNumber::CONTENT_FORMAT,
        u64::from(ContentFormat::OCTET_STREAM.0),
    ));
    reply.add_option(CoapOption::new(
        OptionNumber::ETAG,
        crc32fast::hash(&data).to_be_bytes().to_vec(),
    ));
    if asked.is_some() || more {
        if let Some(b) = BlockValue::new(num, more, size) {
            reply.add_option(CoapOption::new(OptionNumber::BLOCK2, b.encode()));
        }
        if num == 0 {
            reply.add_option(CoapOption::uint(OptionNumber::SIZE2, data.len() as u64));
        }
    }
    reply.payload = data[start..end].to_vec();
    Some(reply)
}

/// The file for a Uri-Path below `root`, refusing `..` and hidden escapes.
fn resolve(root: &Path, segments: &[String]) -> Result<PathBuf, Code> {
    let mut path = root.to_path_buf();
    for s in segments {
        if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\\') {
            return Err(Code::FORBIDDEN);
        }
        path.push(s);
    }
    let real = path.canonicalize().map_err(|_| Code::NOT_FOUND)?;
    if !real.starts_with(root) {
        return Err(Code::FORBIDDEN);
    }
    if !real.is_file() {
        return Err(Code::NOT_FOUND);
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, block2: Option<BlockValue>) -> Message {
        let mut m = Message::new(Type::Confirmable, Code::GET, 7);
        m.token = vec![1];
        m.set_uri(path);
        if let Some(b) = block2 {
            m.add_option(CoapOption::new(OptionNumber::BLOCK2, b.encode()));
        }
        m
    }

    fn root_with(files: &[(&str, Vec<u8>)]) -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nsh-fs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for (name, data) in files {
            std::fs::write(dir.join(name), data).unwrap();
        }
        dir.canonicalize().unwrap()
    }

    #[test]
    fn a_small_file_is_answered_whole_with_its_etag() {
        let root = root_with(&[("a.txt", b"hello".to_vec())]);
        let r = respond(&root, &get("/a.txt", None)).unwrap();
        assert_eq!(
            (r.code, r.mtype, r.message_id),
            (Code::CONTENT, Type::Acknowledgement, 7)
        );
        assert_eq!(r.payload, b"hello");
        assert_eq!(r.block2(), None);
        assert_eq!(
            r.option(OptionNumber::ETAG).unwrap().value,
            crc32fast::hash(b"hello").to_be_bytes()
        );
    }

    #[test]
    fn a_large_file_is_served_block_by_block() {
        let data: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let root = root_with(&[("big.bin", data.clone())]);
        let first = respond(&root, &get("/big.bin", None)).unwrap();
        assert_eq!(first.block2(), BlockValue::new(0, true, 1024));
        assert_eq!(first.uint_option(OptionNumber::SIZE2), Some(2500));
        let last = respond(&root, &get("/big.bin", BlockValue::new(4, false, 512))).unwrap();
        assert_eq!(last.block2(), BlockValue::new(4, false, 512));
        assert_eq!(last.payload, &data[2048..]);
        let past = respond(&root, &get("/big.bin", BlockValue::new(9, false, 512))).unwrap();
        assert_eq!(past.code, Code::BAD_OPTION);
    }

    #[test]
    fn missing_files_and_escapes_are_refused() {
        let root = root_with(&[]);
        assert_eq!(
            respond(&root, &get("/nope", None)).unwrap().code,
            Code::NOT_FOUND
        );
        assert_eq!(
            respond(&root, &get("/sub", None)).unwrap().code,
            Code::NOT_FOUND
        );
        let mut m = get("/", None);
        m.remove_option(OptionNumber::URI_PATH);
        m.add_option(CoapOption::new(OptionNumber::URI_PATH, b"..".to_vec()));
        m.add_option(CoapOption::new(OptionNumber::URI_PATH, b"etc".to_vec()));
        assert_eq!(respond(&root, &m).unwrap().code, Code::FORBIDDEN);
        let mut post = get("/x", None);
        post.code = Code::POST;
        assert_eq!(
            respond(&root, &post).unwrap().code,
            Code::METHOD_NOT_ALLOWED
        );
        let mut ack = get("/x", None);
        ack.mtype = Type::Acknowledgement;
        assert!(respond(&root, &ack).is_none());
    }
}
