//! `nsh test --report DIR`: one static HTML page (`index.html`), with its
//! CSS, script and SVG inline, so it shows without network access: the
//! totals, a pass/fail table, and per case a message sequence chart — the
//! device and nsh as two lanes, time running down, one arrow per datagram
//! labelled with its summary line, its decoded message shown on click,
//! retransmissions (dashed) and nsh's auto-answers (grey, dotted) drawn
//! apart, and the failing step marked where the case failed.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::escape_markup as esc;
use super::{Case, Event, Mark, ScriptReport, Status};
use crate::server::Direction;

/// The device's lane (x), nsh's lane, the chart's width.
const DEVICE_X: usize = 110;
const NSH_X: usize = 770;
const WIDTH: usize = 800;
/// Height of one row of the chart.
const ROW: usize = 30;
/// The most characters of a summary drawn on an arrow (the whole line is
/// its tooltip and heads its detail).
const LABEL_CHARS: usize = 88;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .3em; }
h2 { font-size: 1.2em; margin: 1.6em 0 .4em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 1.2em 0 .3em; }
table.results { border-collapse: collapse; margin: .8em 0; }
table.results td, table.results th { border: 1px solid #ccc; padding: .2em .6em; text-align: left; }
tr.passed td.status { background: #d8f5d8; }
tr.failed td.status { background: #f8d0d0; font-weight: bold; }
tr.skipped td.status { background: #f3f0c8; }
.totals { font-weight: bold; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: .5em; white-space: pre-wrap; font-size: 12px; }
pre.failure { background: #fde8e8; border-color: #e99; }
pre.detail { border-color: #88a; }
.notes { color: #665; }
svg.chart { display: block; font-family: ui-monospace, monospace; font-size: 12px; }
svg .lane { stroke: #999; stroke-width: 1; }
svg .lane-name { font-weight: bold; font-size: 13px; }
svg .msg { cursor: pointer; }
svg .msg line { stroke: #246; stroke-width: 1.6; }
svg .msg polygon { fill: #246; }
svg .msg.received line { stroke: #063; }
svg .msg.received polygon { fill: #063; }
svg .msg.retransmission line { stroke-dasharray: 7 4; stroke: #c60; }
svg .msg.retransmission polygon { fill: #c60; }
svg .msg.retransmission text.label { fill: #a50; }
svg .msg.auto-answer line { stroke: #999; stroke-dasharray: 2 3; }
svg .msg.auto-answer polygon { fill: #999; }
svg .msg.auto-answer text.label { fill: #777; font-style: italic; }
svg .msg.open text.label { font-weight: bold; }
svg .msg:hover line { stroke-width: 3; }
svg .time { fill: #888; font-size: 10px; }
svg .fail-mark line { stroke: #c00; stroke-width: 2; }
svg .fail-mark text { fill: #c00; font-weight: bold; }
.legend span { margin-right: 1.5em; }
"#;

const SCRIPT: &str = r#"
document.querySelectorAll('g.msg').forEach(function (g) {
  g.addEventListener('click', function () {
    var d = document.getElementById(g.getAttribute('data-detail'));
    if (!d) return;
    d.hidden = !d.hidden;
    g.classList.toggle('open', !d.hidden);
  });
});
"#;

/// `s` cut to `n` characters, with `…` when cut.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// The whole page.
pub fn page(scripts: &[ScriptReport]) -> String {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for c in scripts.iter().flat_map(|s| &s.cases) {
        match c.status {
            Status::Passed => passed += 1,
            Status::Failed => failed += 1,
            Status::Skipped => skipped += 1,
        }
    }
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>nsh test: {passed} passed, {failed} failed, {skipped} skipped</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>nsh test report</h1>\n<p class=\"totals\">{passed} passed, {failed} failed, {skipped} skipped</p>\n"
    );
    h.push_str("<table class=\"results\">\n<tr><th>Script</th><th>#</th><th>Case</th><th>Result</th><th>Time</th></tr>\n");
    for (si, s) in scripts.iter().enumerate() {
        for (ci, c) in s.cases.iter().enumerate() {
            let _ = writeln!(
                h,
                "<tr class=\"{st}\"><td>{path}</td><td>{n}</td><td><a href=\"#c-{si}-{n}\">{name}</a></td><td class=\"status\">{st}</td><td>{secs:.3} s</td></tr>",
                st = c.status.name(),
                path = esc(&s.path),
                n = ci + 1,
                name = esc(&c.name),
                secs = c.duration.as_secs_f64()
            );
        }
    }
    h.push_str("</table>\n<p class=\"legend\"><span>Arrows: nsh → device (requests) and device → nsh;</span><span style=\"color:#c60\">dashed: retransmission or duplicate</span><span style=\"color:#777\"><i>grey, dotted: nsh's automatic answer</i></span><span style=\"color:#c00\">red line: where the case failed</span><span>click an arrow for the decoded message</span></p>\n");
    for (si, s) in scripts.iter().enumerate() {
        let _ = writeln!(h, "<section class=\"script\">\n<h2>{}</h2>", esc(&s.path));
        let outside: Vec<&Event> = s
            .events
            .iter()
            .filter(|e| s.case_at(e.at).is_none())
            .collect();
        if !outside.is_empty() {
            let _ = writeln!(
                h,
                "<section class=\"case outside\" id=\"c-{si}-0\">\n<h3>Outside the cases (registration, set-up)</h3>"
            );
            chart(&mut h, &format!("{si}-0"), &outside, None);
            h.push_str("</section>\n");
        }
        for (ci, c) in s.cases.iter().enumerate() {
            let n = ci + 1;
            let _ = writeln!(
                h,
                "<section class=\"case {st}\" id=\"c-{si}-{n}\">\n<h3>{n}. {name} — {st} ({secs:.3} s)</h3>",
                st = c.status.name(),
                name = esc(&c.name),
                secs = c.duration.as_secs_f64()
            );
            for note in &c.notes {
                let _ = writeln!(h, "<p class=\"notes\">{}</p>", esc(note));
            }
            match (c.status, &c.message) {
                (Status::Failed, Some(m)) => {
                    let _ = writeln!(h, "<pre class=\"failure\">{}</pre>", esc(m));
                }
                (Status::Skipped, Some(m)) => {
                    let _ = writeln!(h, "<p class=\"notes\">skipped: {}</p>", esc(m));
                }
                _ => {}
            }
            let events: Vec<&Event> = s
                .events
                .iter()
                .filter(|e| s.case_at(e.at) == Some(n))
                .collect();
            chart(&mut h, &format!("{si}-{n}"), &events, Some(c));
            h.push_str("</section>\n");
        }
        h.push_str("</section>\n");
    }
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}

/// One sequence chart (`id` names its details), with the failure of
/// `case` marked after the last message before it ended.
fn chart(h: &mut String, id: &str, events: &[&Event], case: Option<&Case>) {
    let fail_at: Option<(SystemTime, &str)> = case.and_then(|c| match c.status {
        Status::Failed => Some((c.ended, c.message.as_deref().unwrap_or("failed"))),
        _ => None,
    });
    let rows = events.len() + usize::from(fail_at.is_some());
    if rows == 0 {
        h.push_str("<p class=\"notes\">No messages.</p>\n");
        return;
    }
    let height = 40 + rows * ROW + 10;
    let _ = writeln!(
        h,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">"
    );
    let _ = writeln!(
        h,
        "<text class=\"lane-name\" x=\"{DEVICE_X}\" y=\"16\" text-anchor=\"middle\">device</text><text class=\"lane-name\" x=\"{NSH_X}\" y=\"16\" text-anchor=\"middle\">nsh</text>"
    );
    for x in [DEVICE_X, NSH_X] {
        let _ = writeln!(
            h,
            "<line class=\"lane\" x1=\"{x}\" y1=\"24\" x2=\"{x}\" y2=\"{}\"/>",
            height - 4
        );
    }
    let first = events.first().map(|e| e.at);
    let mut row = 0;
    let mut failure_drawn = false;
    let draw_failure = |h: &mut String, row: &mut usize| {
        if let Some((_, message)) = fail_at {
            let y = 40 + *row * ROW;
            let _ = writeln!(
                h,
                "<g class=\"fail-mark\"><line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">✗ failed here: {}</text></g>",
                DEVICE_X - 20,
                NSH_X + 20,
                (DEVICE_X + NSH_X) / 2,
                y - 5,
                esc(&cut(
                    message.lines().next().unwrap_or(message),
                    LABEL_CHARS - 15
                ))
            );
            *row += 1;
        }
    };
    let mut details = String::new();
    for (i, e) in events.iter().enumerate() {
        if let Some((at, _)) = fail_at
            && !failure_drawn
            && e.at > at
        {
            draw_failure(h, &mut row);
            failure_drawn = true;
        }
        let y = 40 + row * ROW;
        row += 1;
        let (dir, from, to) = match e.direction {
            Direction::Sent => ("sent", NSH_X, DEVICE_X),
            Direction::Received => ("received", DEVICE_X, NSH_X),
        };
        let head = if to > from { to - 9 } else { to + 9 };
        let offset = first
            .and_then(|f| e.at.duration_since(f).ok())
            .unwrap_or_default()
            .as_secs_f64();
        let detail_id = format!("d-{id}-{}", i + 1);
        let mark = match e.mark {
            Mark::Plain => String::new(),
            m => format!(" {}", m.name()),
        };
        let tag = match e.mark {
            Mark::Plain => "",
            Mark::Retransmission => " (retransmission)",
            Mark::AutoAnswer => " (auto)",
        };
        let _ = writeln!(
            h,
            "<g class=\"msg {dir}{mark}\" data-detail=\"{detail_id}\"><title>{title}</title><line x1=\"{from}\" y1=\"{y}\" x2=\"{head}\" y2=\"{y}\"/><polygon points=\"{to},{y} {head},{} {head},{}\"/><text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{label}</text><text class=\"time\" x=\"4\" y=\"{}\">+{:.1} ms</text></g>",
            y - 4,
            y + 4,
            (DEVICE_X + NSH_X) / 2,
            y - 5,
            y + 3,
            offset * 1000.0,
            title = esc(&format!("{}{tag}", e.summary)),
            label = esc(&format!(
                "{}{tag}",
                cut(&e.summary, LABEL_CHARS - tag.len())
            )),
        );
        let _ = writeln!(
            details,
            "<pre class=\"detail\" id=\"{detail_id}\" hidden>{}\n{}{tag}\npeer {}\n\n{}\n\nhex: {}</pre>",
            match e.direction {
                Direction::Sent => "nsh → device",
                Direction::Received => "device → nsh",
            },
            esc(&e.summary),
            e.peer,
            esc(&e.details),
            e.hex
        );
    }
    if !failure_drawn {
        draw_failure(h, &mut row);
    }
    h.push_str("</svg>\n");
    h.push_str(&details);
}
