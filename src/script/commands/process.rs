//! `process_stats`: nsh's own resident memory, open file descriptors and
//! threads (from `/proc/self`, so Linux only), the heap its allocator
//! holds (counted by nsh, `script::heap`), with the lengths of the
//! history and the inbox — what a soak script samples to show they stay
//! flat. Reads nothing else of the system.

use rhai::{Dynamic, Map};

use crate::script::command::CmdResult;
use crate::script::ctx::Ctx;
use crate::script::typed::{NoArgs, command};

command! {
    /// `process_stats`.
    pub(super) const PROCESS_STATS = "process_stats";
    args: NoArgs,
    help: "Returns nsh's own resources: #{rss_kb, heap_kb, fds, threads, history, history_limit, inbox, inbox_dropped} (heap_kb: what nsh's allocator holds, counted by nsh; the resident memory, descriptors and threads from /proc/self, Linux only).",
    example: "let s = process_stats(); print(`${s.rss_kb} kB, ${s.fds} fds, ${s.history} records`);",
    run: cmd_process_stats,
}

fn cmd_process_stats(ctx: &Ctx, _: NoArgs) -> CmdResult {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("process_stats: /proc/self/status: {e}"))?;
    let field = |name: &str| -> Result<i64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("process_stats: /proc/self/status has no {name} line"))
    };
    let fds = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| format!("process_stats: /proc/self/fd: {e}"))?
        .count()
        // The directory being listed holds a descriptor of its own.
        .saturating_sub(1);
    let server = &ctx.server;
    let mut m = Map::new();
    m.insert("rss_kb".into(), Dynamic::from(field("VmRSS")?));
    let heap_kb = (crate::script::heap::in_use() / 1024) as i64;
    m.insert("heap_kb".into(), Dynamic::from(heap_kb));
    m.insert("fds".into(), Dynamic::from(fds as i64));
    m.insert("threads".into(), Dynamic::from(field("Threads")?));
    m.insert(
        "history".into(),
        Dynamic::from(server.history().len() as i64),
    );
    m.insert(
        "history_limit".into(),
        Dynamic::from(server.history_limit() as i64),
    );
    m.insert("inbox".into(), Dynamic::from(server.pending().len() as i64));
    m.insert(
        "inbox_dropped".into(),
        Dynamic::from(server.inbox_dropped() as i64),
    );
    if ctx.listings {
        ctx.say(&format!(
            "rss {} kB, heap {heap_kb} kB, {} fds, {} threads, history {}/{}, inbox {}",
            field("VmRSS")?,
            fds,
            field("Threads")?,
            server.history().len(),
            server.history_limit(),
            server.pending().len()
        ));
    }
    Ok(Dynamic::from_map(m))
}
