//! Receiving and looking back: `recv`, `wait_for`, `expect`, `sleep`, the
//! history (`details`, `history`, `reset_history`), the payload buffer, and
//! decoding datagrams given as bytes (`coap_decode`, `lwm2m_decode`), and
//! `load_objects`, and the pcapng capture (`capture`, `capture_stop`). In
//! the single-definition form ([`command!`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use rhai::Dynamic;

use crate::coap::ContentFormat;
use crate::coap::{escaped, udp};
use crate::lwm2m::kind;
use crate::script::command::CmdResult;
use crate::script::ctx::Ctx;
use crate::script::send::{WAIT_TIMEOUT, msg};
use crate::script::typed::{NoArgs, command};

command! {
    /// `recv`.
    pub(super) const RECV = "recv";
    /// The arguments of `recv`.
    struct RecvArgs {
        timeout_s: Option<Duration> = opt(Float, WAIT_TIMEOUT),
    }
    help: "Returns the next incoming message not yet taken (or () after the timeout).",
    example: "recv 10  |  let m = recv(10);",
    run: cmd_recv,
}

command! {
    /// `wait_for`.
    pub(super) const WAIT_FOR = "wait_for";
    /// The arguments of `wait_for`.
    struct WaitForArgs {
        pattern: Option<Dynamic> = req(Any),
        timeout_s: Option<Duration> = opt(Float, WAIT_TIMEOUT),
    }
    help: "Returns the first incoming message matching PATTERN (a kind name, or a map of fields); others stay queued. Throws, listing what arrived instead, on timeout.",
    example: "let n = wait_for(\"Notify\", 10);  |  wait_for(#{kind: \"Update\", path: \"/rd/1\"}, 30)",
    run: cmd_wait_for,
}

command! {
    /// `expect`.
    pub(super) const EXPECT = "expect";
    /// The arguments of `expect`.
    struct ExpectArgs {
        msg_code: Option<Dynamic> = req(Any),
        timeout_s: Option<Duration> = opt(Float, "none: check the next message as it arrives"),
    }
    help: "Arms a check of the next received message: a kind name (Update), a map of fields, None (nothing may arrive) or ANY. With TIMEOUT_S it waits and fails at once.",
    example: "expect Update  |  expect(#{kind: \"Notify\"}, 5)",
    run: cmd_expect,
}

command! {
    /// `sleep`.
    pub(super) const SLEEP = "sleep";
    /// The arguments of `sleep`.
    struct SleepArgs {
        timeout_s: Option<Duration> = req(Float),
    }
    help: "Waits; messages keep being received and auto-answered meanwhile.",
    example: "sleep 2.5",
    run: cmd_sleep,
}

command! {
    /// `details`.
    pub(super) const DETAILS = "details";
    /// The arguments of `details`.
    struct DetailsArgs {
        idx: Option<i64> = opt(Int, "1 (the last message)"),
    }
    help: "Shows the N-th last message sent or received in full.",
    example: "details 4",
    run: cmd_details,
}

command! {
    /// `history`.
    pub(super) const HISTORY = "history";
    /// The arguments of `history`.
    struct HistoryArgs {
        count: Option<i64> = opt(Int, "20"),
    }
    help: "Lists the last COUNT messages sent and received (numbered for `details`; each with its peer and the endpoint registered from there); returns them, oldest first.",
    example: "history 10",
    run: cmd_history,
}

command! {
    /// `reset_history`.
    pub(super) const RESET_HISTORY = "reset_history";
    args: NoArgs,
    help: "Clears the message history and the queue of unread messages.",
    example: "reset_history",
    run: cmd_reset_history,
}

command! {
    /// `payload_buffer_clear`.
    pub(super) const PAYLOAD_BUFFER_CLEAR = "payload_buffer_clear";
    args: NoArgs,
    help: "Clears the payload buffer.",
    example: "payload_buffer_clear",
    run: cmd_pb_clear,
}

command! {
    /// `payload_buffer_show`.
    pub(super) const PAYLOAD_BUFFER_SHOW = "payload_buffer_show";
    args: NoArgs,
    help: "Shows the payload buffer (payloads received since the last clear) as a bytes literal.",
    example: "payload_buffer_show",
    run: cmd_pb_show,
}

command! {
    /// `payload_buffer_show_hex`.
    pub(super) const PAYLOAD_BUFFER_SHOW_HEX = "payload_buffer_show_hex";
    args: NoArgs,
    help: "Shows the payload buffer as \\x-escaped hex.",
    example: "payload_buffer_show_hex",
    run: cmd_pb_show_hex,
}

command! {
    /// `payload_buffer_show_tlv`.
    pub(super) const PAYLOAD_BUFFER_SHOW_TLV = "payload_buffer_show_tlv";
    args: NoArgs,
    help: "Shows the payload buffer decoded as TLV (the original's layout, integers signed).",
    example: "payload_buffer_clear  …  read /1/1 APPLICATION_LWM2M_TLV  …  payload_buffer_show_tlv",
    run: cmd_pb_show_tlv,
}

command! {
    /// `payload_buffer_show_as`.
    pub(super) const PAYLOAD_BUFFER_SHOW_AS = "payload_buffer_show_as";
    /// The arguments of `payload_buffer_show_as`.
    struct ShowAsArgs {
        format: Option<ContentFormat> = req(Format),
    }
    help: "Shows the payload buffer decoded as FORMAT, one value a line with object and resource names.",
    example: "payload_buffer_clear  …  read /3/0 senml+cbor  …  payload_buffer_show_as senml+cbor",
    run: cmd_pb_show_as,
}

command! {
    /// `payload_buffer_show_senml`.
    pub(super) const PAYLOAD_BUFFER_SHOW_SENML = "payload_buffer_show_senml";
    args: NoArgs,
    help: "Shows the payload buffer decoded as SenML (CBOR, or JSON when it starts with `[`).",
    example: "payload_buffer_clear  …  read /3/0 senml+cbor  …  payload_buffer_show_senml",
    run: cmd_pb_show_senml,
}

command! {
    /// `payload_buffer_show_json`.
    pub(super) const PAYLOAD_BUFFER_SHOW_JSON = "payload_buffer_show_json";
    args: NoArgs,
    help: "Shows the payload buffer decoded as LwM2M JSON (or SenML JSON when it is an array).",
    example: "payload_buffer_clear  …  read /3/0 APPLICATION_LWM2M_JSON  …  payload_buffer_show_json",
    run: cmd_pb_show_json,
}

command! {
    /// `load_objects`.
    pub(super) const LOAD_OBJECTS = "load_objects";
    /// The arguments of `load_objects`.
    struct LoadObjectsArgs {
        path: String = req(Str),
    }
    help: "Loads OMA object definitions (LwM2M XML/DDF) from a directory or one file, so values decode with names and types.",
    example: "load_objects ./objects",
    run: cmd_load_objects,
}

command! {
    /// `capture`.
    pub(super) const CAPTURE = "capture";
    /// The arguments of `capture`.
    struct CaptureArgs {
        file: String = req(Str),
    }
    help: "Writes every datagram sent and received from now on to FILE as pcapng (for Wireshark/tshark; readable while it runs), with real addresses, ports and times; DTLS as the decrypted CoAP in plain UDP on interface nsh-decrypted, TCP as a stream. Ends an earlier capture.",
    example: "capture /tmp/run.pcapng  |  capture(\"run.pcapng\");",
    run: cmd_capture,
}

command! {
    /// `capture_stop`.
    pub(super) const CAPTURE_STOP = "capture_stop";
    args: NoArgs,
    help: "Ends the capture `capture` (or --pcap) started and writes out the file; returns whether one was running.",
    example: "capture_stop",
    run: cmd_capture_stop,
}

command! {
    /// `coap_decode`.
    pub(super) const COAP_DECODE = "coap_decode";
    /// The arguments of `coap_decode`.
    struct DecodeArgs {
        data: Vec<u8> = req(Bytes),
    }
    help: "Decodes a CoAP datagram and shows its fields.",
    example: "coap_decode \\x60\\x00\\x13\\x38",
    run: cmd_coap_decode,
}

command! {
    /// `lwm2m_decode`.
    pub(super) const LWM2M_DECODE = "lwm2m_decode";
    args: DecodeArgs,
    help: "Decodes a CoAP datagram as an LwM2M message and shows it in full.",
    example: "lwm2m_decode \\x40\\x01\\x12\\x34\\xb1\\x33\\x01\\x30",
    run: cmd_lwm2m_decode,
}

fn cmd_recv(ctx: &Ctx, args: RecvArgs) -> CmdResult {
    let timeout = or_default(ctx, args.timeout_s);
    match ctx.server.recv(timeout).map_err(|e| e.to_string())? {
        Some(r) => Ok(msg(r)),
        None => Ok(Dynamic::UNIT),
    }
}

fn cmd_wait_for(ctx: &Ctx, args: WaitForArgs) -> CmdResult {
    let pattern = args.pattern.unwrap_or_default();
    let (text, p) = pattern_matcher(&pattern)?;
    let timeout = or_default(ctx, args.timeout_s);
    match ctx
        .server
        .wait_inbox(timeout, |r| p.matches(r).is_ok())
        .map_err(|e| e.to_string())?
    {
        Ok(r) => Ok(msg(r)),
        Err(others) => {
            let mut s = format!(
                "wait_for: no message matching {text} within {:.1} s",
                timeout.as_secs_f64()
            );
            if others.is_empty() {
                s.push_str("; nothing else arrived");
            } else {
                s.push_str("; arrived instead:");
                for r in others.iter().take(10) {
                    s.push_str(&format!("\n  {}", r.line()));
                    if let Err(why) = p.matches(r) {
                        s.push_str(&format!("  [{}]", why.join("; ")));
                    }
                }
            }
            Err(s)
        }
    }
}

fn cmd_expect(ctx: &Ctx, args: ExpectArgs) -> CmdResult {
    let pattern = args.msg_code.unwrap_or_default();
    let text = crate::script::args::dyn_text(&pattern);
    let nothing =
        matches!(text.trim(), "None" | "none") && pattern.is_string() || pattern.is_unit();
    if let (true, Some(timeout)) = (nothing, args.timeout_s) {
        return match ctx
            .server
            .wait_arrival(timeout)
            .map_err(|e| e.to_string())?
        {
            None => Ok(Dynamic::UNIT),
            Some(r) => Err(format!(
                "nothing was to arrive within {:.1} s, but this did: {}",
                timeout.as_secs_f64(),
                r.line()
            )),
        };
    }
    if let Some(timeout) = args.timeout_s {
        return cmd_wait_for(
            ctx,
            WaitForArgs {
                pattern: Some(pattern),
                timeout_s: Some(timeout),
            },
        );
    }
    match text.trim() {
        "ANY" | "any" => {
            ctx.server.expect(None);
            ctx.say("Expecting: ANY");
        }
        _ if nothing => {
            ctx.server.expect(Some(crate::server::Expectation::Nothing));
            ctx.say("Expecting: None");
        }
        _ => {
            let (desc, p) = pattern_matcher(&pattern)?;
            let p = std::sync::Arc::new(p);
            ctx.say(&format!("Expecting: {desc}"));
            ctx.server.expect(Some(crate::server::Expectation::Matching(
                desc,
                std::sync::Arc::new(move |r: &crate::server::Record| p.matches(r)),
            )));
        }
    }
    Ok(Dynamic::UNIT)
}

fn cmd_sleep(ctx: &Ctx, args: SleepArgs) -> CmdResult {
    let d = or_default(ctx, args.timeout_s);
    let end = std::time::Instant::now() + d;
    let flag = ctx.server.interrupt_flag();
    while std::time::Instant::now() < end {
        if flag.load(Ordering::SeqCst) {
            return Err("interrupted".into());
        }
        std::thread::sleep((end - std::time::Instant::now()).min(Duration::from_millis(20)));
    }
    Ok(Dynamic::UNIT)
}

fn cmd_details(ctx: &Ctx, args: DetailsArgs) -> CmdResult {
    let n = args.idx.unwrap_or(1);
    match usize::try_from(n)
        .ok()
        .and_then(|n| ctx.server.history_entry(n))
    {
        Some(r) => {
            ctx.say(&r.details());
            Ok(Dynamic::UNIT)
        }
        None => Err("message not found".into()),
    }
}

fn cmd_history(ctx: &Ctx, args: HistoryArgs) -> CmdResult {
    let count = match args.count {
        None => 20,
        Some(n) => usize::try_from(n).map_err(|_| {
            format!("history: COUNT {n} is negative: give how many of the latest to show")
        })?,
    };
    let all = ctx.server.history();
    let total = all.len();
    let recent = &all[total.saturating_sub(count)..];
    if ctx.listings {
        for (i, r) in recent.iter().enumerate() {
            let endpoint = r
                .endpoint
                .as_ref()
                .map_or_else(String::new, |e| format!(" {e}"));
            ctx.say(&format!(
                "{:>4}  {}{endpoint}  {}",
                recent.len() - i,
                r.peer,
                r.line()
            ));
        }
    }
    Ok(Dynamic::from_array(
        recent.iter().cloned().map(msg).collect(),
    ))
}

fn cmd_reset_history(ctx: &Ctx, _: NoArgs) -> CmdResult {
    ctx.server.reset_history();
    Ok(Dynamic::UNIT)
}

fn cmd_pb_clear(ctx: &Ctx, _: NoArgs) -> CmdResult {
    ctx.server.payload_buffer_clear();
    Ok(Dynamic::UNIT)
}

fn cmd_pb_show(ctx: &Ctx, _: NoArgs) -> CmdResult {
    let b = ctx.server.payload_buffer();
    ctx.say(&escaped::format_python_bytes(&b));
    Ok(Dynamic::from_blob(b))
}

fn cmd_pb_show_hex(ctx: &Ctx, _: NoArgs) -> CmdResult {
    let b = ctx.server.payload_buffer();
    ctx.say(&escaped::format_hex(&b));
    Ok(Dynamic::from_blob(b))
}

fn cmd_pb_show_tlv(ctx: &Ctx, _: NoArgs) -> CmdResult {
    let b = ctx.server.payload_buffer();
    match crate::lwm2m::format::tlv::decode_elements(&b) {
        Ok(elements) => {
            ctx.say(&crate::lwm2m::format::tlv::render(&elements));
            Ok(Dynamic::UNIT)
        }
        Err((_, e)) => Err(format!(
            "not TLV: {e} (payload_buffer_clear, then read with APPLICATION_LWM2M_TLV)"
        )),
    }
}

fn cmd_pb_show_as(ctx: &Ctx, args: ShowAsArgs) -> CmdResult {
    let f = args.format.unwrap_or_default();
    show_buffer_as(ctx, f)
}

fn cmd_pb_show_senml(ctx: &Ctx, _: NoArgs) -> CmdResult {
    use crate::coap::ContentFormat as F;
    show_buffer_as(
        ctx,
        if starts_with_bracket(ctx) {
            F::SENML_JSON
        } else {
            F::SENML_CBOR
        },
    )
}

fn cmd_pb_show_json(ctx: &Ctx, _: NoArgs) -> CmdResult {
    use crate::coap::ContentFormat as F;
    show_buffer_as(
        ctx,
        if starts_with_bracket(ctx) {
            F::SENML_JSON
        } else {
            F::LWM2M_JSON
        },
    )
}

fn cmd_capture(ctx: &Ctx, args: CaptureArgs) -> CmdResult {
    start_capture(&ctx.server, std::path::Path::new(&args.file))?;
    Ok(Dynamic::UNIT)
}

/// Starts a pcapng capture of everything `server` sends and receives into
/// `file` (what `capture` and `--pcap` do).
pub fn start_capture(server: &crate::server::Server, file: &std::path::Path) -> Result<(), String> {
    let writer = crate::report::pcapng::PcapngFile::create(file)
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    server
        .capture_with(Box::new(writer))
        .map_err(|e| format!("cannot write the earlier capture: {e}"))
}

fn cmd_capture_stop(ctx: &Ctx, _: NoArgs) -> CmdResult {
    let running = ctx
        .server
        .capture_stop()
        .map_err(|e| format!("capture_stop: cannot write the capture: {e}"))?;
    Ok(Dynamic::from(running))
}

fn cmd_load_objects(ctx: &Ctx, args: LoadObjectsArgs) -> CmdResult {
    let path = args.path;
    let p = std::path::Path::new(&path);
    let objects = ctx.server.objects();
    let mut registry = objects.write();
    let loaded = if p.is_dir() {
        registry.load_dir(p)
    } else {
        registry.load_file(p)
    }
    .map_err(|e| format!("{}: {}", e.source_name, e.reason))?;
    drop(registry);
    ctx.say(&format!(
        "loaded {} object definition(s): {:?}",
        loaded.len(),
        loaded
    ));
    Ok(Dynamic::from_array(
        loaded
            .into_iter()
            .map(|id| Dynamic::from_int(i64::from(id)))
            .collect(),
    ))
}

fn cmd_coap_decode(ctx: &Ctx, args: DecodeArgs) -> CmdResult {
    let data = args.data;
    let m = udp::decode(&data).map_err(|e| format!("invalid CoAP message: {e}"))?;
    ctx.say(&m.render_packet());
    Ok(Dynamic::UNIT)
}

fn cmd_lwm2m_decode(ctx: &Ctx, args: DecodeArgs) -> CmdResult {
    let data = args.data;
    match udp::decode(&data) {
        Ok(m) => {
            let k = kind::classify(&m, &kind::NoContext);
            let objects = ctx.server.objects();
            let registry = objects.read();
            ctx.say(&crate::lwm2m::details::details(&m, k, &|m| {
                crate::lwm2m::render_payload(m, &registry)
            }));
            Ok(Dynamic::UNIT)
        }
        Err(e) => Err(crate::lwm2m::details::details_of_undecodable(
            "Undecodable",
            &data,
            &e,
        )),
    }
}

/// A wait: as given, or `set timeout`.
fn or_default(ctx: &Ctx, timeout: Option<Duration>) -> Duration {
    timeout.unwrap_or_else(|| ctx.server.default_timeout())
}

/// A pattern for `wait_for`/`expect`: a kind name, or a map of fields.
fn pattern_matcher(pattern: &Dynamic) -> Result<(String, crate::script::pattern::Pattern), String> {
    crate::script::pattern::Pattern::from_dynamic(pattern).map(|p| (p.describe(), p))
}

fn show_buffer_as(ctx: &Ctx, format: crate::coap::ContentFormat) -> CmdResult {
    let b = ctx.server.payload_buffer();
    let objects = ctx.server.objects();
    let registry = objects.read();
    match crate::lwm2m::format::decode(format.0, &b, None, &registry) {
        Ok(d) => {
            let text = d.render(&registry);
            ctx.say(&format!(
                "{} ({} bytes):\n{}",
                format.summary_name(),
                b.len(),
                text.trim_end()
            ));
            Ok(Dynamic::UNIT)
        }
        Err(e) => {
            let mut msg = format!("not {}: {e}", format.summary_name());
            if let Some(p) = &e.partial {
                msg.push_str(&format!(
                    "\ndecoded before the error:\n{}",
                    p.render(&registry).trim_end()
                ));
            }
            Err(msg)
        }
    }
}

fn starts_with_bracket(ctx: &Ctx) -> bool {
    ctx.server
        .payload_buffer()
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'[')
}
