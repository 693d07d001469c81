//! The Rhai floor for `benches/libcoap_rtt.py --floor`: the very script nsh
//! runs (`benches/libcoap_rtt.rhai`), evaluated by a bare Rhai engine whose
//! `coap_get` does no more than the compiled floor (`udp_floor.rs`): one
//! `sendto` of a CON GET and one blocking `recvfrom` on an unconnected
//! socket, as nsh's listening socket is, and a response value with a `code`
//! property. No exchange layer, history, second thread or argument
//! checking. What it adds to the compiled floor is what running the loop in
//! Rhai costs any scripted shell; what nsh adds to it is nsh's own.
//!
//!   cargo bench --bench rhai_floor -- PORT [N=1000]
//!
//! Prints the script's line (`gets: N, median … us, mean … us, p90 … us`).

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, Scope};

/// The socket, the server it talks to, and the next message ID.
struct Link {
    socket: UdpSocket,
    server: Option<SocketAddr>,
    mid: u16,
    buf: Vec<u8>,
}

/// What `coap_get` returns: the response's code byte.
#[derive(Clone)]
struct Response {
    code: u8,
}

/// A CON GET with message ID `mid`, a 2-byte token and one Uri-Path
/// option per segment of `path`.
fn get(mid: u16, path: &str) -> Vec<u8> {
    let mut m = vec![0x42, 0x01];
    m.extend_from_slice(&mid.to_be_bytes());
    m.extend_from_slice(&mid.to_be_bytes());
    let mut last = 0;
    for s in path.split('/').filter(|s| !s.is_empty()) {
        // Uri-Path (11); segments shorter than 13 bytes only.
        let delta = 11 - last;
        m.push((delta << 4) as u8 | s.len().min(12) as u8);
        m.extend_from_slice(&s.as_bytes()[..s.len().min(12)]);
        last = 11;
    }
    m
}

fn coap_get(link: &Mutex<Link>, path: &str) -> Result<Response, Box<EvalAltResult>> {
    let mut link = link.lock().map_err(|_| "poisoned")?;
    let server = link.server.ok_or("not connected")?;
    link.mid = link.mid.wrapping_add(1);
    let request = get(link.mid, path);
    link.socket
        .send_to(&request, server)
        .map_err(|e| e.to_string())?;
    let Link { socket, buf, .. } = &mut *link;
    let (n, _) = socket.recv_from(buf).map_err(|e| e.to_string())?;
    if n < 4 {
        return Err("short response".into());
    }
    Ok(Response { code: buf[1] })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(port) = args.first().cloned() else {
        eprintln!("usage: rhai_floor PORT [N]");
        std::process::exit(2);
    };
    let n = args.get(1).cloned().unwrap_or_else(|| "1000".into());
    let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let link = Arc::new(Mutex::new(Link {
        socket,
        server: None,
        mid: 0,
        buf: vec![0; 1500],
    }));

    let mut engine = Engine::new();
    engine.register_fn("set", |_: rhai::Map| {});
    let l = link.clone();
    engine.register_fn("connect", move |host: &str, port: i64| {
        let addr = format!("{host}:{port}").parse().ok();
        l.lock().expect("lock").server = addr;
    });
    let l = link.clone();
    engine.register_fn("coap_get", move |path: &str| coap_get(&l, path));
    engine.register_type_with_name::<Response>("Response");
    engine.register_get("code", |r: &mut Response| {
        format!("{}.{:02}", r.code >> 5, r.code & 0x1f)
    });
    engine.register_fn("fail", |msg: &str| -> Result<(), Box<EvalAltResult>> {
        Err(msg.into())
    });

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/libcoap_rtt.rhai");
    let ast = engine.compile_file(script.into()).expect("script compiles");
    let mut scope = Scope::new();
    let argv: rhai::Array = vec![Dynamic::from(port), Dynamic::from(n)];
    scope.push_constant("ARGS", argv);
    if let Err(e) = engine.run_ast_with_scope(&mut scope, &ast) {
        eprintln!("rhai_floor: {e}");
        std::process::exit(1);
    }
}
