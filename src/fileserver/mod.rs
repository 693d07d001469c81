//! The CoAP file server (`file_server`, reference §14.4): serves the files
//! below a root directory with Block2 (RFC 7959), for clients that download
//! firmware or other files over CoAP, or over DTLS (`coaps://`) with the
//! same security settings as `listen`.
//!
//! Unlike the original: a file of one block or less is answered with its
//! content (not 4.05); a missing file gets 4.04 and the server goes on;
//! paths cannot leave the root (`..` segments are refused with 4.03); the
//! ETag is the CRC-32 of the file in 4 bytes; a Block2 option with the
//! reserved SZX 7 (RFC 7959 §2.2) gets 4.00.
//!
//! A file is read (and its CRC computed) once per transfer, not once per
//! block: [`FileCache`] keeps recently served files with their length and
//! modification time, bounded in count and bytes, and reads a file again
//! only when either changed.
//!
//! Each request and answer is one line naming its block (`<- GET /fw.bin
//! (block 3)`); repeated lines are summed up as the shell's are (at most
//! ten of a kind a second, then `… and 176 more `<- GET` lines not
//! shown …`), and when the last block of a transfer went out one line says
//! so: `served fw.bin (200000 bytes, 196 blocks) to 127.0.0.1:40123`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::coap::{BlockValue, CoapOption, Code, ContentFormat, Message, OptionNumber, Type, udp};
use crate::lwm2m::flood::Flood;
use crate::lwm2m::kind::{NoContext, classify};
use crate::lwm2m::summary;
use crate::transport::udp::MAX_DATAGRAM;
use crate::transport::{Security, Transport};

/// Default block size when the request has no Block2.
pub const DEFAULT_BLOCK: u32 = 1024;

/// A running file server; stops when dropped or on [`FileServer::stop`].
pub struct FileServer {
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileServer {
    /// Serves `root` on UDP `port` (0: any), over DTLS when `security` is
    /// given, printing each exchange (and DTLS session lines).
    pub fn start(
        root: &Path,
        port: u16,
        ipv6: bool,
        security: Option<&Security>,
        print: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> std::io::Result<FileServer> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        let transport = Transport::bind(port, ipv6, security)?;
        let port = transport.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nsh-file-server".into())
            .spawn(move || {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                let mut cache = FileCache::default();
                let mut out = Lines {
                    print: print.as_ref(),
                    // Nothing keeps what is not shown: no `history` here.
                    flood: Flood::with_note(""),
                };
                // NON responses carry message IDs of the server's own.
                let mut next_message_id: u16 = rand::random();
                while !flag.load(Ordering::SeqCst) {
                    let received = transport.recv(&mut buf, Duration::from_millis(100));
                    for line in transport.take_notices() {
                        print(&format!("file server: {line}"));
                    }
                    match received {
                        Ok(Some((n, peer))) => serve_one(
                            &transport,
                            &root,
                            &mut cache,
                            &buf[..n],
                            peer,
                            &mut next_message_id,
                            &mut out,
                        ),
                        Ok(None) => {}
                        Err(e) => print(&format!("file server: receive error: {e}")),
                    }
                    out.sum_up_due();
                }
                out.sum_up_all();
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

/// A file's content and ETag as served.
#[derive(Debug)]
pub struct FileData {
    /// The content.
    pub data: Vec<u8>,
    /// The ETag: CRC-32 of the content, big-endian.
    pub etag: [u8; 4],
}

/// One cached file, valid while its length and modification time stay.
#[derive(Debug)]
struct CachedFile {
    path: PathBuf,
    len: u64,
    modified: SystemTime,
    file: Arc<FileData>,
}

/// Files read for block-wise transfers, most recently used last. Bounded:
/// at most `max_files` files and `max_bytes` bytes of content (a larger
/// file is served without caching). A file is read again when its length
/// or modification time changed; a file system without modification times
/// is read for every request.
#[derive(Debug)]
pub struct FileCache {
    entries: VecDeque<CachedFile>,
    max_files: usize,
    max_bytes: usize,
    bytes: usize,
    reads: u64,
}

impl Default for FileCache {
    fn default() -> Self {
        FileCache::new(Self::DEFAULT_FILES, Self::DEFAULT_BYTES)
    }
}

impl FileCache {
    /// Files kept by default.
    pub const DEFAULT_FILES: usize = 16;
    /// Bytes of content kept by default: 64 MiB.
    pub const DEFAULT_BYTES: usize = 64 << 20;

    /// An empty cache with these bounds.
    pub fn new(max_files: usize, max_bytes: usize) -> Self {
        FileCache {
            entries: VecDeque::new(),
            max_files,
            max_bytes,
            bytes: 0,
            reads: 0,
        }
    }

    /// The content and ETag of `path`, read from disk only when not cached
    /// or changed since.
    pub fn get(&mut self, path: &Path) -> std::io::Result<Arc<FileData>> {
        let meta = std::fs::metadata(path)?;
        let modified = meta.modified().ok();
        let found = self.entries.iter().position(|e| e.path == path);
        if let Some(i) = found {
            let fresh = self
                .entries
                .get(i)
                .is_some_and(|e| e.len == meta.len() && Some(e.modified) == modified);
            if let Some(entry) = self.entries.remove(i) {
                self.bytes = self.bytes.saturating_sub(entry.file.data.len());
                if fresh {
                    let file = entry.file.clone();
                    self.bytes = self.bytes.saturating_add(entry.file.data.len());
                    self.entries.push_back(entry);
                    return Ok(file);
                }
            }
        }
        let data = std::fs::read(path)?;
        self.reads += 1;
        let file = Arc::new(FileData {
            etag: crc32fast::hash(&data).to_be_bytes(),
            data,
        });
        if let Some(modified) = modified
            && self.max_files > 0
            && file.data.len() <= self.max_bytes
        {
            while self.entries.len() >= self.max_files
                || self.bytes.saturating_add(file.data.len()) > self.max_bytes
            {
                let Some(old) = self.entries.pop_front() else {
                    break;
                };
                self.bytes = self.bytes.saturating_sub(old.file.data.len());
            }
            self.bytes = self.bytes.saturating_add(file.data.len());
            self.entries.push_back(CachedFile {
                path: path.to_path_buf(),
                len: meta.len(),
                modified,
                file: file.clone(),
            });
        }
        Ok(file)
    }

    /// How many times a file was read from disk.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Files and bytes of content kept.
    pub fn usage(&self) -> (usize, usize) {
        (self.entries.len(), self.bytes)
    }
}

/// Where the file server's lines go: repeated ones summed up.
struct Lines<'a> {
    print: &'a (dyn Fn(&str) + Send + Sync),
    flood: Flood,
}

impl Lines<'_> {
    /// Prints `line` unless lines of its kind flood in.
    fn say(&mut self, line: &str) {
        let admitted = self.flood.admit(line, Instant::now());
        if let Some(summary) = admitted.summary {
            (self.print)(&summary);
        }
        if admitted.show {
            (self.print)(line);
        }
    }

    /// The summaries of the kinds whose second is over.
    fn sum_up_due(&mut self) {
        for line in self.flood.due(Instant::now()) {
            (self.print)(&line);
        }
    }

    /// The summaries of every kind with lines not shown, now.
    fn sum_up_all(&mut self) {
        for line in self.flood.take_all() {
            (self.print)(&line);
        }
    }
}

fn serve_one(
    transport: &Transport,
    root: &Path,
    cache: &mut FileCache,
    bytes: &[u8],
    peer: SocketAddr,
    next_message_id: &mut u16,
    out: &mut Lines<'_>,
) {
    let req = match udp::decode(bytes) {
        Ok(m) => m,
        Err(e) => {
            out.say(&format!("<- malformed datagram from {peer}: {e}"));
            return;
        }
    };
    out.say(&format!("<- {}", summary(&req, classify(&req, &NoContext))));
    let Some(reply) = respond(root, cache, &req, *next_message_id) else {
        out.say("-> ignored (neither CON nor NON)");
        return;
    };
    if reply.mtype == Type::NonConfirmable {
        *next_message_id = next_message_id.wrapping_add(1);
    }
    out.say(&format!(
        "-> {}",
        summary(&reply, classify(&reply, &NoContext))
    ));
    if let Err(e) = transport.send_to(&udp::encode(&reply), peer) {
        out.say(&format!("file server: send error: {e}"));
        return;
    }
    if let Some(line) = served(&req, &reply, peer) {
        // What was not shown of the transfer is summed up before its end.
        out.sum_up_all();
        out.say(&line);
    }
}

/// The line saying a block-wise download is complete, when `reply` (sent
/// to `peer`) was its last block: `served fw.bin (200000 bytes, 196
/// blocks) to 127.0.0.1:40123`.
fn served(req: &Message, reply: &Message, peer: SocketAddr) -> Option<String> {
    let block = reply.block2().filter(|b| !b.more)?;
    if reply.code != Code::CONTENT {
        return None;
    }
    let size = u64::from(block.num) * u64::from(block.size()) + reply.payload.len() as u64;
    Some(format!(
        "served {} ({size} bytes, {} blocks) to {peer}",
        req.uri_path().join("/"),
        u64::from(block.num) + 1
    ))
}

/// The answer to one request (`None` for ACK and RST, which get none).
/// A NON request is answered with `own_message_id`.
pub fn respond(
    root: &Path,
    cache: &mut FileCache,
    req: &Message,
    own_message_id: u16,
) -> Option<Message> {
    if matches!(req.mtype, Type::Acknowledgement | Type::Reset) {
        return None;
    }
    if req.code.is_empty() {
        // CoAP ping (RFC 7252 §4.3).
        return Some(Message::new(Type::Reset, Code::EMPTY, req.message_id));
    }
    let mut reply = Message::response_to(req, Code::CONTENT, own_message_id);
    if req.code != Code::GET {
        reply.code = Code::METHOD_NOT_ALLOWED;
        return Some(reply);
    }
    let asked = req.block2();
    if asked.is_some_and(BlockValue::is_reserved_szx) {
        // RFC 7959 §2.2: SZX 7 in a request gets 4.00.
        reply.code = Code::BAD_REQUEST;
        return Some(reply);
    }
    let file = match resolve(root, &req.uri_path()) {
        Ok(p) => match cache.get(&p) {
            Ok(f) => f,
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
    let data = &file.data;
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
    reply.add_option(CoapOption::new(OptionNumber::ETAG, file.etag.to_vec()));
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
    fn a_non_request_is_answered_with_the_servers_own_message_id() {
        // RFC 7252 §4.4: the message ID of a NON belongs to its sender.
        let root = root_with(&[("a.txt", b"hello".to_vec())]);
        let mut req = get("/a.txt", None);
        req.mtype = Type::NonConfirmable;
        let r = respond(&root, &mut FileCache::default(), &req, 0x4242).unwrap();
        assert_eq!(
            (r.code, r.mtype, r.message_id),
            (Code::CONTENT, Type::NonConfirmable, 0x4242)
        );
        assert_eq!(r.token, req.token);
    }

    #[test]
    fn a_small_file_is_answered_whole_with_its_etag() {
        let root = root_with(&[("a.txt", b"hello".to_vec())]);
        let r = respond(&root, &mut FileCache::default(), &get("/a.txt", None), 0).unwrap();
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
        let first = respond(&root, &mut FileCache::default(), &get("/big.bin", None), 0).unwrap();
        assert_eq!(first.block2(), BlockValue::new(0, true, 1024));
        assert_eq!(first.uint_option(OptionNumber::SIZE2), Some(2500));
        let last = respond(
            &root,
            &mut FileCache::default(),
            &get("/big.bin", BlockValue::new(4, false, 512)),
            0,
        )
        .unwrap();
        assert_eq!(last.block2(), BlockValue::new(4, false, 512));
        assert_eq!(last.payload, &data[2048..]);
        let past = respond(
            &root,
            &mut FileCache::default(),
            &get("/big.bin", BlockValue::new(9, false, 512)),
            0,
        )
        .unwrap();
        assert_eq!(past.code, Code::BAD_OPTION);
    }

    #[test]
    fn the_last_block_of_a_download_is_a_served_line() {
        let data: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let root = root_with(&[("big.bin", data), ("a.txt", b"hi".to_vec())]);
        let mut cache = FileCache::default();
        let peer: SocketAddr = ([127, 0, 0, 1], 40123).into();
        let ask = |cache: &mut FileCache, path: &str, b: Option<BlockValue>| {
            let req = get(path, b);
            let reply = respond(&root, cache, &req, 0).unwrap();
            served(&req, &reply, peer)
        };
        assert_eq!(ask(&mut cache, "/big.bin", None), None);
        assert_eq!(
            ask(&mut cache, "/big.bin", BlockValue::new(4, false, 512)).as_deref(),
            Some("served big.bin (2500 bytes, 5 blocks) to 127.0.0.1:40123")
        );
        assert_eq!(ask(&mut cache, "/a.txt", None), None, "not block-wise");
        assert_eq!(
            ask(&mut cache, "/nope", BlockValue::new(0, false, 512)),
            None
        );
    }

    #[test]
    fn a_block2_with_szx_7_gets_4_00() {
        // RFC 7959 §2.2: reserved; "MUST lead to a 4.00 Bad Request".
        let root = root_with(&[("big.bin", vec![1; 3000])]);
        let mut req = get("/big.bin", None);
        req.add_option(CoapOption::new(OptionNumber::BLOCK2, vec![0x07]));
        let r = respond(&root, &mut FileCache::default(), &req, 0).unwrap();
        assert_eq!(r.code, Code::BAD_REQUEST);
        assert!(r.payload.is_empty());
    }

    /// Downloads `path` block by block in 512-byte blocks; returns the
    /// body and the ETag of each block.
    fn download(root: &Path, cache: &mut FileCache, path: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut body = Vec::new();
        let mut etags = Vec::new();
        for num in 0.. {
            let r = respond(root, cache, &get(path, BlockValue::new(num, false, 512)), 0).unwrap();
            assert_eq!(r.code, Code::CONTENT);
            body.extend_from_slice(&r.payload);
            etags.push(r.option(OptionNumber::ETAG).unwrap().value.clone());
            if !r.block2().unwrap().more {
                break;
            }
        }
        (body, etags)
    }

    #[test]
    fn a_file_is_read_once_per_transfer_and_again_when_it_changed() {
        let v1: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let root = root_with(&[("fw.bin", v1.clone())]);
        let mut cache = FileCache::default();
        let (body, etags) = download(&root, &mut cache, "/fw.bin");
        assert_eq!(body, v1);
        assert_eq!(etags.len(), 5);
        assert!(
            etags
                .iter()
                .all(|e| *e == crc32fast::hash(&v1).to_be_bytes())
        );
        assert_eq!(cache.reads(), 1, "five blocks, one read");
        download(&root, &mut cache, "/fw.bin");
        assert_eq!(cache.reads(), 1, "unchanged: not read again");

        let v2 = vec![0xee; 1800];
        std::fs::write(root.join("fw.bin"), &v2).unwrap();
        let (body, etags) = download(&root, &mut cache, "/fw.bin");
        assert_eq!(body, v2);
        assert_eq!(etags[0], crc32fast::hash(&v2).to_be_bytes());
        assert_eq!(cache.reads(), 2);
    }

    #[test]
    fn a_file_rewritten_with_the_same_length_is_read_again() {
        let root = root_with(&[("a.bin", vec![1; 100])]);
        let mut cache = FileCache::default();
        let first = cache.get(&root.join("a.bin")).unwrap();
        std::fs::write(root.join("a.bin"), vec![2; 100]).unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(root.join("a.bin"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let second = cache.get(&root.join("a.bin")).unwrap();
        assert_ne!(first.etag, second.etag);
        assert_eq!(second.data, vec![2; 100]);
        assert_eq!(cache.reads(), 2);
    }

    #[test]
    fn the_cache_is_bounded_in_files_and_bytes() {
        let root = root_with(&[
            ("a", vec![1; 40]),
            ("b", vec![2; 40]),
            ("c", vec![3; 40]),
            ("huge", vec![4; 200]),
        ]);
        let mut cache = FileCache::new(2, 100);
        for name in ["a", "b", "c"] {
            cache.get(&root.join(name)).unwrap();
        }
        assert_eq!(cache.usage(), (2, 80), "the oldest file was dropped");
        cache.get(&root.join("b")).unwrap();
        assert_eq!(cache.reads(), 3, "b is still cached");
        cache.get(&root.join("a")).unwrap();
        assert_eq!(cache.reads(), 4, "a was dropped and is read again");
        let huge = cache.get(&root.join("huge")).unwrap();
        assert_eq!(huge.data.len(), 200, "served, but not kept");
        assert_eq!(cache.usage(), (2, 80));
        assert!(cache.get(&root.join("missing")).is_err());
    }

    #[test]
    fn missing_files_and_escapes_are_refused() {
        let root = root_with(&[]);
        assert_eq!(
            respond(&root, &mut FileCache::default(), &get("/nope", None), 0)
                .unwrap()
                .code,
            Code::NOT_FOUND
        );
        assert_eq!(
            respond(&root, &mut FileCache::default(), &get("/sub", None), 0)
                .unwrap()
                .code,
            Code::NOT_FOUND
        );
        let mut m = get("/", None);
        m.remove_option(OptionNumber::URI_PATH);
        m.add_option(CoapOption::new(OptionNumber::URI_PATH, b"..".to_vec()));
        m.add_option(CoapOption::new(OptionNumber::URI_PATH, b"etc".to_vec()));
        assert_eq!(
            respond(&root, &mut FileCache::default(), &m, 0)
                .unwrap()
                .code,
            Code::FORBIDDEN
        );
        let mut post = get("/x", None);
        post.code = Code::POST;
        assert_eq!(
            respond(&root, &mut FileCache::default(), &post, 0)
                .unwrap()
                .code,
            Code::METHOD_NOT_ALLOWED
        );
        let mut ack = get("/x", None);
        ack.mtype = Type::Acknowledgement;
        assert!(respond(&root, &mut FileCache::default(), &ack, 0).is_none());
    }
}
