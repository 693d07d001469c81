//! The shell and its connections: `listen`, `file_server`,
//! `file_server_stop`, `connect`, `unconnect`, `clients`, `use_client`,
//! `observations`, `set`, `get_error`, `exit`. In the single-definition
//! form ([`command!`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use rhai::{Dynamic, Map};

use crate::coap::escaped;
use crate::script::command::CmdResult;
use crate::script::ctx::Ctx;
use crate::script::typed::{NoArgs, command};

use super::faults::FaultArgs;
use super::security::{Credentials, MoreSecurity, security_args};

command! {
    /// `listen`.
    pub(super) const LISTEN = "listen";
    /// The arguments of `listen`.
    struct ListenArgs {
        port: Option<u16> = opt(Int, "5683, or 5684 with DTLS"),
        ..credentials: Credentials,
        ipv6: Option<bool> = opt(Bool, "command line -6"),
        tcp: Option<bool> = opt(Bool, "0"),
        debug: Option<i64> = opt(Int, "command line --debug, else 0"),
        connection_id: Option<String> = opt(Str, "none"),
        ..more: MoreSecurity,
        dtls_idle_timeout: Option<Duration> = opt(Float, "86400 (a day)"),
        wait: Option<bool> = opt(Bool, "1 at the prompt and from piped input, 0 in scripts"),        debug_level: Option<i64> = opt(Int, "debug's value: the name for it in a Rhai map, where `debug` is a reserved word"),
    }
    help: "Listens on PORT for any number of clients: plain UDP; DTLS 1.2 with a pre-shared key (PSK_IDENTITY and PSK_KEY as literal text, psk_key_hex=, or a psk_file= of `identity,hexkey` lines) or with certificates (CRT_FILE and KEY_FILE, PEM or DER; with CA_FILE or CA_PATH client certificates must chain to it, without, any is accepted); or CoAP over TCP with tcp=1 (over TLS 1.2, coaps+tcp, when credentials are given). connection_id=BYTES (text, or 0x… hex) offers nsh's DTLS Connection ID, so a client whose address changes keeps its session and registration. ciphersuites= narrows and orders the cipher suites (IANA names or numbers); debug=1..3 prints mbed TLS's debug lines to stderr (in a Rhai map `debug_level: 1`, as `debug` is a reserved word there); dtls_idle_timeout= ends idle sessions. At the prompt (and from piped input) it then waits for the first client's first message, as the original did (Ctrl-C stops waiting; nsh goes on listening), unless wait=0; any number of clients are served afterwards.",
    example: "listen 9000",
    run: cmd_listen,
}

command! {
    /// `file_server`.
    pub(super) const FILE_SERVER = "file_server";
    /// The arguments of `file_server`.
    struct FileServerArgs {
        root_directory: Option<String> = opt(Str, "."),
        port: Option<u16> = opt(Int, "5683, or 5684 with DTLS"),
        ..credentials: Credentials,
        ipv6: Option<bool> = opt(Bool, "command line -6"),
        debug: Option<i64> = opt(Int, "command line --debug, else 0"),
        background: Option<bool> = opt(Bool, "0: serve until Ctrl-C"),
        ..more: MoreSecurity,
        debug_level: Option<i64> = opt(Int, "debug's value: the name for it in a Rhai map, where `debug` is a reserved word"),
    }
    help: "Serves the files below ROOT_DIRECTORY over CoAP with Block2 (coap://, or coaps:// with the DTLS arguments of `listen`, debug_level for debug in a Rhai map), until Ctrl-C; with background=1 it serves while the shell goes on (file_server_stop ends it).",
    example: "file_server . 9000 background=1  |  file_server(\"fw\", #{port: 5700, background: true})",
    run: cmd_file_server,
}

command! {
    /// `file_server_stop`.
    pub(super) const FILE_SERVER_STOP = "file_server_stop";
    args: NoArgs,
    help: "Stops the file servers that `file_server background=1` started.",
    example: "file_server_stop",
    run: cmd_file_server_stop,
}

command! {
    /// `connect`.
    pub(super) const CONNECT = "connect";
    /// The arguments of `connect`.
    struct ConnectArgs {
        host: Option<String> = opt(Str, "127.0.0.1"),
        port: Option<u16> = opt(Int, "5683, or 5684 with DTLS"),
        bind: Option<u16> = opt(Int, "0 (any)"),
        ..credentials: Credentials,
        ..more: MoreSecurity,
        connection_id: Option<String> = opt(Str, "none"),
        debug: Option<i64> = opt(Int, "command line --debug, else 0"),
        tcp: Option<bool> = opt(Bool, "1 when listening over TCP or started with --tcp"),
        timeout_s: Option<Duration> = opt(Float, "set timeout (5)"),        debug_level: Option<i64> = opt(Int, "debug's value: the name for it in a Rhai map, where `debug` is a reserved word"),
    }
    help: "Sends future messages to HOST:PORT (e.g. a client that never registered). Over TCP (tcp=1, the default when nsh listens over TCP or was started with --tcp) nsh opens a CoAP-over-TCP connection to HOST:PORT as the client, its capabilities message first, and waits up to TIMEOUT_S for it, unless that peer is connected already; not over TLS. With DTLS arguments (as for `listen`, debug_level for debug in a Rhai map) nsh opens a DTLS session to HOST:PORT as the client, for server-initiated flows, and waits up to TIMEOUT_S for the handshake; with certificates, CA_FILE or CA_PATH verifies the server's certificate (without, any is accepted), and given alone (no crt_file and key_file) nsh sends no certificate of its own, as coap-client does: a server that demands one fails the handshake with an error saying so. Registrations from other devices no longer change where commands go (until `unconnect`, `use_client` or a new `listen`).",
    example: "connect 127.0.0.1 56830",
    run: cmd_connect,
}

command! {
    /// `unconnect`.
    pub(super) const UNCONNECT = "unconnect";
    args: NoArgs,
    help: "Forgets the current target and any choice made by `connect` or `use_client`: the newest registration is current now, and the next registration becomes current.",
    example: "unconnect",
    run: cmd_unconnect,
}

command! {
    /// `clients`.
    pub(super) const CLIENTS = "clients";
    /// The arguments of `clients`.
    struct ClientsArgs {
        count: Option<i64> = opt(Int, "50; 0 lists all"),
    }
    help: "Lists registered clients (endpoint, address, location, lifetime, binding, version, seconds since last heard), oldest first: COUNT lines at most, then a line saying how many more there are (0 lists every one). Returns all of them as maps, whatever COUNT. A client whose Update came from a new address is reached there, and keeps its earlier addresses (`earlier_peers`, at most 8): what still comes from them (notifications from the port it registered from) names it and counts as heard from it.",
    example: "clients  |  clients 0  |  for c in clients() { print(c.endpoint) }",
    run: cmd_clients,
}

command! {
    /// `use_client`.
    pub(super) const USE_CLIENT = "use_client";
    /// The arguments of `use_client`.
    struct UseClientArgs {
        endpoint: String = req(Str),
    }
    help: "Makes ENDPOINT the client that commands go to, also when other devices register later (it is followed when it registers or updates from a new address).",
    example: "use_client sensor-2",
    run: cmd_use_client,
}

command! {
    /// `observations`.
    pub(super) const OBSERVATIONS = "observations";
    args: NoArgs,
    help: "Lists active observations: path, token and the client (endpoint and address) each is held on; returns them as maps (path, token, peer, endpoint).",
    example: "observations",
    run: cmd_observations,
}

command! {
    /// `set`.
    pub(super) const SET = "set";
    /// The arguments of `set`.
    struct SetArgs {
        auto_update: Option<bool> = opt(Bool, "unchanged"),
        auto_reregister: Option<bool> = opt(Bool, "unchanged"),
        auto_bspack_error: Option<bool> = opt(Bool, "unchanged"),
        auto_ack: Option<bool> = opt(Bool, "unchanged"),
        auto_deregister: Option<bool> = opt(Bool, "unchanged"),
        auto_send: Option<bool> = opt(Bool, "unchanged"),
        print_messages: Option<bool> = opt(Bool, "unchanged"),
        history_limit: Option<i64> = opt(Int, "unchanged (100000)"),
        heap_limit_mb: Option<i64> = opt(Int, "unchanged (a quarter of the memory nsh may use; 0: none)"),
        timeout: Option<Duration> = opt(Float, "unchanged (0: until CoAP gives up)"),
        retransmit: Option<bool> = opt(Bool, "unchanged (1)"),
        ack_timeout: Option<Duration> = opt(Float, "unchanged (2 s)"),
        max_retransmit: Option<u32> = opt(Int, "unchanged (4)"),
        ..faults: FaultArgs,
    }
    help: "Switches auto-responses and settings; with no arguments shows the current values. Waits: a CON request (read, write, …) over UDP or DTLS without `timeout_s` waits as long as CoAP retransmits it, so a response to any retransmission is taken; a client that answers none is reported as `no response … after N transmissions` at most ack_timeout × (2^(max_retransmit+1) − 1) × 1.5 after the request was sent (CoAP's max transmit wait: 93 s with the defaults), a separate response after an empty ACK is awaited one ack_timeout longer; NON requests, retransmit=0 and TCP wait 5 s. `heap_limit_mb=N` stops a script (or prompt line) that grows nsh's heap by more than N megabytes, before memory runs out (default: a quarter of the memory nsh may use; 0: no limit). `timeout=S` is a hard bound on every wait (requests included), `timeout=0` goes back to these defaults (waits for incoming messages: 5 s); a command's own `timeout_s` bounds that command alone. Faults (off by default), injected on the UDP socket below DTLS and recorded in the history (`details` says e.g. `dropped by loss=0.2`): `loss`, `dup`, `reorder` are probabilities per datagram, `delay_ms` a range min..max in ms every datagram is delayed by, `direction` in, out or both, `client=EP` applies them to that client's address only, `seed` makes the draws repeat (each direction has its own stream), `faults=0` turns all off.",
    example: "set auto_ack=0  |  set(#{auto_update: false})  |  set loss=0.2 dup=0.05 delay_ms=50..300 reorder=0.1 seed=7  |  set loss=0 delay_ms=0 dup=0 reorder=0",
    run: cmd_set,
}

command! {
    /// `get_error`.
    pub(super) const GET_ERROR = "get_error";
    args: NoArgs,
    help: "Shows the last error with what the one line leaves out: the line that failed, and how the command it called is used.",
    example: "get_error",
    run: cmd_get_error,
}

command! {
    /// `exit`.
    pub(super) const EXIT = "exit";
    /// The arguments of `exit`.
    struct ExitArgs {
        code: Option<i64> = opt(Int, "0"),
    }
    help: "Leaves nsh (Ctrl-D too), with exit status CODE; in a script, `exit()` or `exit(CODE)` ends the script there.",
    example: "exit  |  exit(3)",
    run: cmd_exit,
}

fn cmd_listen(ctx: &Ctx, args: ListenArgs) -> CmdResult {
    let given = security_args(
        args.credentials,
        args.more,
        (args.debug, args.debug_level),
        args.connection_id,
        args.dtls_idle_timeout,
    )
    .map_err(|e| format!("listen: {e}"))?;
    let security = given
        .resolve(ctx.server.default_security().as_ref())
        .map_err(|e| format!("listen: {e}"))?;
    if let Some(warning) = given.debug_unused(security.as_ref()) {
        ctx.say(warning);
    }
    // Like the original, the command line's --tcp cannot be turned off.
    let tcp = args.tcp == Some(true) || ctx.server.default_tcp();
    let port = args
        .port
        .unwrap_or(if security.is_some() { 5684 } else { 5683 });
    let ipv6 = args.ipv6.unwrap_or(ctx.ipv6);
    // Before the socket opens: a client that talks at once still counts.
    let mark = ctx.server.history_mark();
    let bound = if tcp {
        ctx.server.listen_tcp(port, ipv6, security.as_ref())
    } else {
        ctx.server.listen_secure(port, ipv6, security.as_ref())
    }
    .map_err(|e| format!("could not listen on port {port} ({e})"))?;
    ctx.say(&crate::transport::listening_line(
        security.as_ref(),
        tcp,
        bound,
        ipv6,
    ));
    if args.wait.unwrap_or(ctx.interactive) {
        ctx.say(&format!(
            "waiting for a client on port {bound} ... (Ctrl-C to stop waiting)"
        ));
        // The first message itself is printed as it arrives.
        if ctx.server.wait_first_client_since(mark).is_err() {
            ctx.server.interrupt_flag().store(false, Ordering::SeqCst);
            ctx.say(&format!("stopped waiting; still listening on port {bound}"));
        }
    }
    Ok(Dynamic::from_int(i64::from(bound)))
}

fn cmd_file_server(ctx: &Ctx, args: FileServerArgs) -> CmdResult {
    let security = security_args(
        args.credentials,
        args.more,
        (args.debug, args.debug_level),
        None,
        None,
    )
    .and_then(|g| g.resolve(ctx.server.default_security().as_ref()))
    .map_err(|e| format!("file_server: {e}"))?;
    let root = args.root_directory.unwrap_or_else(|| ".".into());
    let port = args
        .port
        .unwrap_or(if security.is_some() { 5684 } else { 5683 });
    let ipv6 = args.ipv6.unwrap_or(ctx.ipv6);
    let server = ctx.server.clone();
    let print: std::sync::Arc<dyn Fn(&str) + Send + Sync> =
        std::sync::Arc::new(move |l: &str| server.print(l));
    let fs = crate::fileserver::FileServer::start(
        std::path::Path::new(&root),
        port,
        ipv6,
        security.as_ref(),
        print,
    )
    .map_err(|e| format!("cannot serve {root} on port {port}: {e}"))?;
    let shown = std::fs::canonicalize(&root).map_or(root.clone(), |p| p.display().to_string());
    ctx.say(&format!(
        "Serving directory {shown} on port {}...",
        fs.port()
    ));
    let bound = i64::from(fs.port());
    if args.background.unwrap_or(false) {
        ctx.file_servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(fs);
        return Ok(Dynamic::from_int(bound));
    }
    ctx.say("Press CTRL-C to stop");
    let flag = ctx.server.interrupt_flag();
    while !flag.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    flag.store(false, Ordering::SeqCst);
    fs.stop();
    ctx.say("file server stopped");
    Ok(Dynamic::from_int(bound))
}

fn cmd_file_server_stop(ctx: &Ctx, _: NoArgs) -> CmdResult {
    let servers: Vec<_> = ctx
        .file_servers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
        .collect();
    let n = servers.len();
    for s in servers {
        s.stop();
    }
    ctx.say(&format!("stopped {n} file server(s)"));
    Ok(Dynamic::UNIT)
}

fn cmd_connect(ctx: &Ctx, args: ConnectArgs) -> CmdResult {
    let host = args.host.unwrap_or_else(|| {
        if ctx.ipv6 {
            "::1".into()
        } else {
            "127.0.0.1".into()
        }
    });
    let bind = args.bind.unwrap_or(0);
    let given = security_args(
        args.credentials,
        args.more,
        (args.debug, args.debug_level),
        args.connection_id,
        None,
    )
    .map_err(|e| format!("connect: {e}"))?;
    // DTLS when credentials are given (completed from the command line's),
    // or when the socket `listen` opened serves DTLS; not because an
    // earlier `connect` opened a DTLS one.
    let security = if given.is_empty() {
        ctx.server.listening_security()
    } else {
        given
            .resolve_client(ctx.server.default_security().as_ref())
            .map_err(|e| format!("connect: {e}"))?
    };
    let tcp = args.tcp.unwrap_or_else(|| {
        if ctx.server.listen_port().is_some() {
            ctx.server.is_tcp()
        } else {
            ctx.server.default_tcp()
        }
    });
    if tcp && !given.is_empty() {
        return Err("connect: nsh opens no TLS connection over TCP (coaps+tcp) as the client; connect without credentials for plain CoAP over TCP".into());
    }
    let port = args.port.unwrap_or(if security.is_some() && !tcp {
        5684
    } else {
        5683
    });
    let timeout = args
        .timeout_s
        .unwrap_or_else(|| ctx.server.default_timeout());
    let addr = match &security {
        _ if tcp => ctx.server.connect_tcp(&host, port, bind, timeout),
        None => ctx.server.connect(&host, port, bind),
        Some(s) => ctx.server.connect_secure(&host, port, bind, s, timeout),
    }
    .map_err(|e| {
        // Say where commands go now, since this did not change it.
        let now = match (ctx.server.current_client(), ctx.server.target()) {
            (Some(client), Some(addr)) => format!("{client} ({addr})"),
            (None, Some(addr)) => addr.to_string(),
            (_, None) => "nowhere".to_string(),
        };
        format!("connect: {e}; commands still go to {now}")
    })?;
    ctx.say(&format!("new remote endpoint: {addr}"));
    Ok(Dynamic::UNIT)
}

fn cmd_unconnect(ctx: &Ctx, _: NoArgs) -> CmdResult {
    ctx.server.unconnect();
    Ok(Dynamic::UNIT)
}

/// The shortest ACK_TIMEOUT `set` takes.
const MIN_ACK_TIMEOUT: Duration = Duration::from_millis(1);

/// How many clients `clients` lists when not told.
const CLIENTS_SHOWN: usize = 50;

fn cmd_clients(ctx: &Ctx, args: ClientsArgs) -> CmdResult {
    let shown = match args.count {
        None => CLIENTS_SHOWN,
        Some(0) => usize::MAX,
        Some(n) => usize::try_from(n).map_err(|_| {
            format!("clients: COUNT {n} is negative: give how many to list, or 0 for all")
        })?,
    };
    let current = ctx.server.current_client();
    let clients = ctx.server.clients();
    if ctx.listings {
        if clients.is_empty() {
            ctx.say("no registered clients");
        }
        for c in clients.iter().take(shown) {
            let mark = if current.as_deref() == Some(&*c.endpoint) {
                "*"
            } else {
                " "
            };
            let r = &c.registration;
            ctx.say(&format!(
                "{mark} {}  {}{}  {}  lt={} b={} lwm2m={}  {} object links, last heard {:.0} s ago",
                c.endpoint,
                c.peer,
                c.identity
                    .as_ref()
                    .map_or_else(String::new, |i| format!(" (DTLS identity `{i}`)")),
                c.location,
                r.lifetime_or_default(),
                r.binding_or_default(),
                r.version_or_default(),
                r.links().len(),
                c.last_seen.elapsed().map_or(0.0, |d| d.as_secs_f64())
            ));
        }
        if let Some(hidden) = clients.get(shown..).filter(|h| !h.is_empty()) {
            let current = current
                .as_deref()
                .filter(|ep| hidden.iter().any(|c| *c.endpoint == **ep))
                .map_or_else(String::new, |ep| format!("; the current one is {ep}"));
            ctx.say(&format!(
                "… and {} more clients (`clients 0` lists all; clients() returns every one){current}",
                crate::server::grouped(hidden.len() as u64)
            ));
        }
    }
    Ok(Dynamic::from_array(
        clients
            .iter()
            .map(|c| client_map(c, current.as_deref() == Some(&*c.endpoint)))
            .collect(),
    ))
}

fn cmd_use_client(ctx: &Ctx, args: UseClientArgs) -> CmdResult {
    let ep = args.endpoint;
    let c = ctx.server.use_client(&ep).map_err(|e| e.to_string())?;
    ctx.say(&format!("current client: {} ({})", c.endpoint, c.peer));
    Ok(client_map(&c, true))
}

/// Who holds an observation: `waka-1 (127.0.0.1:5000)`, or the address
/// alone for a device not registered.
pub(crate) fn observer(o: &crate::server::ActiveObservation) -> String {
    match &o.endpoint {
        Some(e) => format!("{e} ({})", o.peer),
        None => o.peer.to_string(),
    }
}

fn cmd_observations(ctx: &Ctx, _: NoArgs) -> CmdResult {
    let obs = ctx.server.observations();
    if ctx.listings {
        if obs.is_empty() {
            ctx.say("no active observations");
        }
        for o in &obs {
            ctx.say(&format!(
                "{}  token {}  {}",
                o.path,
                escaped::format_hex(&o.token),
                observer(o)
            ));
        }
    }
    Ok(Dynamic::from_array(
        obs.into_iter()
            .map(|o| {
                let mut m = Map::new();
                m.insert("token".into(), Dynamic::from_blob(o.token));
                m.insert("path".into(), o.path.into());
                m.insert("peer".into(), o.peer.to_string().into());
                m.insert(
                    "endpoint".into(),
                    o.endpoint
                        .map_or(Dynamic::UNIT, |e| Dynamic::from(e.to_string())),
                );
                Dynamic::from_map(m)
            })
            .collect(),
    ))
}

fn cmd_set(ctx: &Ctx, args: SetArgs) -> CmdResult {
    let mut f = ctx.server.flags();
    let mut any = false;
    let mut announce = Vec::new();
    for (given, slot, label) in [
        (
            args.auto_reregister,
            &mut f.auto_reregister as &mut bool,
            "Auto register responses",
        ),
        (
            args.auto_update,
            &mut f.auto_update,
            "Auto update responses",
        ),
        (
            args.auto_bspack_error,
            &mut f.auto_bspack_error,
            "Auto Bootstrap Pack error responses",
        ),
        (args.auto_ack, &mut f.auto_ack, "Auto 0.00 ACK responses"),
        (
            args.auto_deregister,
            &mut f.auto_deregister,
            "Auto de-register responses",
        ),
        (args.auto_send, &mut f.auto_send, "Auto send responses"),
        (
            args.print_messages,
            &mut f.print_messages,
            "Printing of messages",
        ),
    ] {
        if let Some(v) = given {
            *slot = v;
            any = true;
            announce.push(format!(
                "{label} {}",
                if v { "enabled" } else { "disabled" }
            ));
        }
    }
    ctx.server.set_flags(f);
    if let Some(t) = args.timeout {
        if t.is_zero() {
            ctx.server.set_default_timeout(None);
            announce.push("Requests wait until CoAP gives up; other waits 5 s".to_string());
        } else {
            ctx.server.set_default_timeout(Some(t));
            announce.push(format!("Timeout {} s for every wait", t.as_secs_f64()));
        }
        any = true;
    }
    if let Some(n) = args.history_limit {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("set: `history_limit`: {n} must be at least 1"))?;
        ctx.server.set_history_limit(n);
        announce.push(format!("History keeps the last {n} messages"));
        any = true;
    }
    if let Some(mb) = args.heap_limit_mb {
        let mb = u64::try_from(mb)
            .map_err(|_| format!("set: `heap_limit_mb`: {mb} is negative (0: no limit)"))?;
        crate::script::heap::set_limit_mb(mb);
        announce.push(if mb == 0 {
            "Scripts may grow the heap without limit".to_string()
        } else {
            format!("A script may grow the heap by {mb} MB at most")
        });
        any = true;
    }
    let mut tp = ctx.server.transmission();
    let mut tp_changed = false;
    if let Some(r) = args.retransmit {
        tp.retransmit = r;
        tp_changed = true;
    }
    if let Some(a) = args.ack_timeout {
        if a < MIN_ACK_TIMEOUT {
            return Err(format!(
                "set: `ack_timeout`: {} s is below 1 ms, shorter than a wake-up of the waiting thread: give at least 0.001",
                a.as_secs_f64()
            ));
        }
        tp.ack_timeout = a;
        tp_changed = true;
    }
    if let Some(m) = args.max_retransmit {
        tp.max_retransmit = m;
        tp_changed = true;
    }
    if tp_changed {
        ctx.server.set_transmission(tp.clone());
        announce.push(format!(
            "Retransmission {} (ACK_TIMEOUT {} s, MAX_RETRANSMIT {})",
            if tp.retransmit { "enabled" } else { "disabled" },
            tp.ack_timeout.as_secs_f64(),
            tp.max_retransmit
        ));
        let wait = crate::server::auto_request_wait(&tp);
        if tp.retransmit && wait > DAY && ctx.server.request_timeout().is_none() {
            announce.push(format!(
                "a client that never answers is now waited for {} (MAX_TRANSMIT_WAIT); `set timeout=S` bounds every wait",
                long_wait(wait)
            ));
        }
        any = true;
    }
    if let Some(lines) = super::faults::apply(ctx, args.faults)? {
        announce.extend(lines);
        any = true;
    }
    if !any {
        let f = ctx.server.flags();
        let tp = ctx.server.transmission();
        let on = |b: bool| if b { 1 } else { 0 };
        ctx.say(&format!(
            "auto_update={} auto_reregister={} auto_bspack_error={} auto_ack={} auto_deregister={} auto_send={} print_messages={}\ntimeout={} retransmit={} ack_timeout={} max_retransmit={} history_limit={} heap_limit_mb={}",
            on(f.auto_update),
            on(f.auto_reregister),
            on(f.auto_bspack_error),
            on(f.auto_ack),
            on(f.auto_deregister),
            on(f.auto_send),
            on(f.print_messages),
            ctx.server.request_timeout().map_or_else(
                || format!("auto ({})", long_wait(crate::server::auto_request_wait(&tp))),
                |t| t.as_secs_f64().to_string()
            ),
            on(tp.retransmit),
            tp.ack_timeout.as_secs_f64(),
            tp.max_retransmit,
            ctx.server.history_limit(),
            crate::script::heap::limit_mb()
        ));
        for line in super::faults::listing(ctx) {
            ctx.say(&line);
        }
    }
    for line in announce {
        ctx.say(&line);
    }
    Ok(Dynamic::UNIT)
}

const DAY: Duration = Duration::from_secs(86_400);

/// A wait as a person reads it: seconds up to a day, then days; the
/// saturated waits of a large `max_retransmit` as what they are.
fn long_wait(wait: Duration) -> String {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    if wait <= DAY {
        format!("{:.1} s", wait.as_secs_f64())
    } else if wait <= CENTURY {
        format!("{:.1} days", wait.as_secs_f64() / DAY.as_secs_f64())
    } else {
        "more than a century".to_string()
    }
}

fn cmd_get_error(ctx: &Ctx, _: NoArgs) -> CmdResult {
    let e = ctx.last_error();
    ctx.say(e.as_deref().unwrap_or("no errors"));
    Ok(e.map_or(Dynamic::UNIT, Into::into))
}

fn cmd_exit(ctx: &Ctx, args: ExitArgs) -> CmdResult {
    let code = args.code.unwrap_or(0);
    let code =
        u8::try_from(code).map_err(|_| format!("the exit status is 0 to 255, not {code}"))?;
    ctx.exit_code.store(code, Ordering::SeqCst);
    ctx.exit.store(true, Ordering::SeqCst);
    if ctx.listings {
        ctx.say("exiting");
    }
    Ok(Dynamic::UNIT)
}

fn client_map(c: &crate::server::Client, current: bool) -> Dynamic {
    let mut m = Map::new();
    let r = &c.registration;
    m.insert("endpoint".into(), c.endpoint.to_string().into());
    m.insert("peer".into(), c.peer.to_string().into());
    m.insert(
        "earlier_peers".into(),
        Dynamic::from_array(c.earlier.iter().map(|a| a.to_string().into()).collect()),
    );
    m.insert("location".into(), c.location.clone().into());
    m.insert(
        "lifetime".into(),
        Dynamic::from_int(i64::from(r.lifetime_or_default())),
    );
    m.insert("binding".into(), r.binding_or_default().to_string().into());
    m.insert("version".into(), r.version_or_default().to_string().into());
    m.insert("current".into(), Dynamic::from_bool(current));
    m.insert(
        "identity".into(),
        c.identity.clone().map_or(Dynamic::UNIT, Into::into),
    );
    let ago = |t: std::time::SystemTime| t.elapsed().map_or(0.0, |d| d.as_secs_f64());
    m.insert("last_seen_s".into(), Dynamic::from_float(ago(c.last_seen)));
    m.insert(
        "registered_s".into(),
        Dynamic::from_float(ago(c.registered_at)),
    );
    m.insert(
        "links".into(),
        Dynamic::from_array(
            r.links()
                .iter()
                .map(crate::script::values::link_map)
                .collect(),
        ),
    );
    Dynamic::from_map(m)
}
