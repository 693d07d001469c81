//! `nsh test --json FILE`: JSON lines, one object a line, in time order per
//! script — `{"type":"message", …}` for every datagram sent or received
//! (time, direction, peer, summary, hex, mark, the case it belongs to) and
//! `{"type":"case", …}` for every case result, at the time it ended (a
//! case not run: when its script stopped, before the script's own result).

use serde_json::{Value, json};

use super::{Case, ScriptReport, unix_seconds};
use crate::server::Direction;

/// The lines of every script, each ending in a newline.
pub fn lines(scripts: &[ScriptReport]) -> String {
    let mut out = String::new();
    for s in scripts {
        for v in script_lines(s) {
            out.push_str(&v.to_string());
            out.push('\n');
        }
    }
    out
}

/// One script's objects: messages in the order they were sent or
/// received, each case result after the messages that came before it
/// ended.
fn script_lines(s: &ScriptReport) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next_case = 0;
    for e in &s.events {
        while let Some(c) = s.cases.get(next_case)
            && c.ended < e.at
        {
            next_case += 1;
            out.push(case(s, next_case, c));
        }
        out.push(json!({
            "type": "message",
            "script": s.path,
            "time": unix_seconds(e.at),
            "direction": match e.direction {
                Direction::Sent => "sent",
                Direction::Received => "received",
            },
            "peer": e.peer.to_string(),
            "summary": e.summary,
            "hex": e.hex,
            "mark": e.mark.name(),
            "case": s.case_at(e.at),
        }));
    }
    for (i, c) in s.cases.iter().enumerate().skip(next_case) {
        out.push(case(s, i + 1, c));
    }
    out
}

/// The object of case `n`.
fn case(s: &ScriptReport, n: usize, c: &Case) -> Value {
    json!({
        "type": "case",
        "script": s.path,
        "time": unix_seconds(c.ended),
        "case": n,
        "name": c.name,
        "status": c.status.name(),
        "message": c.message,
        "duration": c.duration.as_secs_f64(),
        "notes": c.notes,
    })
}
