//! Reports made from the history's records: the pcapng capture
//! ([`pcapng`]), JSON lines ([`json`]) and the static HTML report
//! ([`html`]). [`Recorder`] is the capture sink that keeps each record as an
//! [`Event`] (handing it on to a pcapng writer too, when there is one);
//! [`ScriptReport`] is one script's events and case results, which the
//! writers render. Reads records, never touches sockets.

pub mod html;
pub mod json;
pub mod pcapng;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::coap::Type;
use crate::server::{CaptureSink, Direction, Record, Role, Wire};

/// Makes sure a report file can be written at `path` before a run: its
/// folder is made when missing; a folder in its place is refused. The
/// error says which (`flag` is the option that named it).
pub fn prepare_file(flag: &str, path: &std::path::Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!(
            "{flag}: {} is a folder; give a file",
            path.display()
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{flag}: cannot make the folder {}: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
        .map_err(|e| format!("{flag}: cannot write {}: {e}", path.display()))
}

/// Makes sure a report folder can be written at `path` before a run (made
/// when missing); a file in its place is refused.
pub fn prepare_dir(flag: &str, path: &std::path::Path) -> Result<(), String> {
    if path.exists() && !path.is_dir() {
        return Err(format!(
            "{flag}: {} is a file; give a folder",
            path.display()
        ));
    }
    std::fs::create_dir_all(path)
        .map_err(|e| format!("{flag}: cannot make the folder {}: {e}", path.display()))
}

/// How a message stands out in a report.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mark {
    /// A request or answer of its own.
    Plain,
    /// A repeat: nsh sending the same datagram again (CON retransmission),
    /// or a duplicate received from the device.
    Retransmission,
    /// nsh's answer to the device (an ACK, Reset or response: the ones the
    /// server sends by itself, e.g. to Register, Update, a CON Notify).
    AutoAnswer,
}

impl Mark {
    /// Lower-case name, as the JSON lines and the HTML classes say it.
    pub fn name(self) -> &'static str {
        match self {
            Mark::Plain => "plain",
            Mark::Retransmission => "retransmission",
            Mark::AutoAnswer => "auto-answer",
        }
    }
}

/// One datagram sent or received, as reports show it.
#[derive(Clone, Debug)]
pub struct Event {
    /// Its position in the session (the order it was sent or received in;
    /// a request sent is stamped when the transport took it, which may be
    /// after its answer arrived).
    pub seq: u64,
    /// When.
    pub at: SystemTime,
    /// Sent by nsh or received from the device.
    pub direction: Direction,
    /// The device's address.
    pub peer: SocketAddr,
    /// The one-line summary (`Read /3/0: accept TLV`).
    pub summary: String,
    /// The bytes as on the wire (decrypted for DTLS), in hex.
    pub hex: String,
    /// The decoded message (the `details` block).
    pub details: String,
    /// Retransmission, auto-answer or neither.
    pub mark: Mark,
}

/// The capture sink that keeps every record as an [`Event`], handing it on
/// to `inner` (a pcapng writer) as well.
pub struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
    inner: Option<Box<dyn CaptureSink>>,
    /// (peer, bytes) of every datagram sent, to tell retransmissions.
    sent: std::collections::HashSet<(SocketAddr, Vec<u8>)>,
}

impl Recorder {
    /// A recorder, and the list it fills.
    pub fn new(inner: Option<Box<dyn CaptureSink>>) -> (Recorder, Arc<Mutex<Vec<Event>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        (
            Recorder {
                events: events.clone(),
                inner,
                sent: Default::default(),
            },
            events,
        )
    }
}

impl CaptureSink for Recorder {
    fn write(&mut self, record: &Record, wire: &Wire) -> std::io::Result<()> {
        let mark = match (record.direction, &record.message) {
            (Direction::Received, _) if record.role == Role::Duplicate => Mark::Retransmission,
            (Direction::Received, _) => Mark::Plain,
            (Direction::Sent, _) if !self.sent.insert((record.peer, record.raw.clone())) => {
                Mark::Retransmission
            }
            (Direction::Sent, Ok(m))
                if m.code.is_response()
                    || (!m.reliable && matches!(m.mtype, Type::Acknowledgement | Type::Reset)) =>
            {
                Mark::AutoAnswer
            }
            (Direction::Sent, _) => Mark::Plain,
        };
        let event = Event {
            seq: record.seq,
            at: record.at,
            direction: record.direction,
            peer: record.peer,
            summary: record.summary(),
            hex: hex::encode(&record.raw),
            details: record.details().trim_start_matches('\n').to_string(),
            mark,
        };
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
        match &mut self.inner {
            Some(inner) => inner.write(record, wire),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.inner {
            Some(inner) => inner.flush(),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match &mut self.inner {
            Some(inner) => inner.finish(),
            None => Ok(()),
        }
    }
}

/// How a case ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    /// Passed.
    Passed,
    /// Failed.
    Failed,
    /// Skipped (`skip(reason)`).
    Skipped,
}

impl Status {
    /// `passed`, `failed`, `skipped`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct Case {
    /// Its name (the script itself, for a failure outside the cases).
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// The failure (`file:line:col: message`) or the reason it was skipped.
    pub message: Option<String>,
    /// When it began (the wall clock, as the messages' times).
    pub started: SystemTime,
    /// When it ended, read from the wall clock then (where a failure is
    /// marked). Not `started + duration`: the wall clock may be set or
    /// slewed meanwhile, and the messages' times are read from it.
    pub ended: SystemTime,
    /// How long it ran (the monotonic clock).
    pub duration: Duration,
    /// Notes: messages unread before it, observations it left active.
    pub notes: Vec<String>,
}

impl Case {
    /// Whether `at` falls within it.
    pub fn holds(&self, at: SystemTime) -> bool {
        at >= self.started && at <= self.ended
    }
}

/// One script's run, as the reports show it.
#[derive(Clone, Debug)]
pub struct ScriptReport {
    /// The script's path.
    pub path: String,
    /// Its cases in order.
    pub cases: Vec<Case>,
    /// Every datagram of the run, in the order of their `seq`.
    pub events: Vec<Event>,
    /// How long the script ran.
    pub duration: Duration,
}

impl ScriptReport {
    /// The number (1-based) of the case `at` falls in, if any.
    pub fn case_at(&self, at: SystemTime) -> Option<usize> {
        self.cases.iter().position(|c| c.holds(at)).map(|i| i + 1)
    }

    /// Whether any case failed.
    pub fn failed(&self) -> bool {
        self.cases.iter().any(|c| c.status == Status::Failed)
    }
}

/// Seconds since the Unix epoch, with microseconds.
pub fn unix_seconds(at: SystemTime) -> f64 {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_micros() as f64) / 1e6
}

/// Escapes text for XML and HTML content and attribute values (the JUnit
/// file and the HTML report); drops the control characters XML 1.0 does
/// not allow.
pub fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coap::{Code, Message, udp};
    use crate::server::Link;

    fn record(seq: u64, direction: Direction, msg: &Message, role: Role, ms: u64) -> Record {
        let raw = udp::encode(msg);
        Record {
            seq,
            direction,
            peer: "127.0.0.1:40000".parse().unwrap(),
            at: UNIX_EPOCH + Duration::from_millis(1_000_000 + ms),
            message: udp::decode(&raw),
            raw,
            reliable: false,
            kind: None,
            role,
            observed_path: None,
            request_path: None,
            fresh: None,
            note: None,
            objects: Default::default(),
            identity: None,
            endpoint: None,
        }
    }

    #[test]
    fn repeats_and_nshs_answers_are_marked() {
        let wire = Wire {
            local: "127.0.0.1:5683".parse().unwrap(),
            link: Link::Udp,
        };
        let get = Message::new(Type::Confirmable, Code::GET, 7);
        let ack = Message::new(Type::Acknowledgement, Code::CONTENT, 7);
        let empty_ack = Message::new(Type::Acknowledgement, Code::EMPTY, 9);
        let notify = Message::new(Type::Confirmable, Code::CONTENT, 9);
        let (mut r, events) = Recorder::new(None);
        for rec in [
            record(1, Direction::Sent, &get, Role::Outgoing, 0),
            record(2, Direction::Sent, &get, Role::Outgoing, 2000),
            record(3, Direction::Received, &ack, Role::Response, 2001),
            record(4, Direction::Received, &notify, Role::Notification, 3000),
            record(5, Direction::Sent, &empty_ack, Role::Outgoing, 3001),
            record(6, Direction::Received, &notify, Role::Duplicate, 3500),
        ] {
            r.write(&rec, &wire).unwrap();
        }
        let marks: Vec<Mark> = events.lock().unwrap().iter().map(|e| e.mark).collect();
        assert_eq!(
            marks,
            [
                Mark::Plain,
                Mark::Retransmission,
                Mark::Plain,
                Mark::Plain,
                Mark::AutoAnswer,
                Mark::Retransmission
            ]
        );
    }

    /// A GET sent, its response and a second GET, recorded `ms`
    /// milliseconds after 1,000,000 s past the epoch.
    fn get_answered_and_get_again(ms: [u64; 3]) -> Vec<Event> {
        let (mut r, events) = Recorder::new(None);
        let wire = Wire {
            local: "127.0.0.1:5683".parse().unwrap(),
            link: Link::Udp,
        };
        let get = Message::new(Type::Confirmable, Code::GET, 7);
        let ack = Message::new(Type::Acknowledgement, Code::CONTENT, 7);
        for (seq, (direction, msg, role)) in [
            (Direction::Sent, &get, Role::Outgoing),
            (Direction::Received, &ack, Role::Response),
            (Direction::Sent, &get, Role::Outgoing),
        ]
        .into_iter()
        .enumerate()
        {
            r.write(
                &record(seq as u64 + 1, direction, msg, role, ms[seq]),
                &wire,
            )
            .unwrap();
        }
        events.lock().unwrap().clone()
    }

    /// One case from `started` to `ended` (ms after 1,000,000 s).
    fn case(status: Status, started: u64, ended: u64, duration: u64) -> Case {
        Case {
            name: "one <b>".into(),
            status,
            message: (status == Status::Failed).then(|| "a.rhai:2:5: boom".into()),
            started: UNIX_EPOCH + Duration::from_millis(1_000_000 + started),
            ended: UNIX_EPOCH + Duration::from_millis(1_000_000 + ended),
            duration: Duration::from_millis(duration),
            notes: Vec::new(),
        }
    }

    /// Each JSON line's type and case number.
    fn kinds(report: &ScriptReport) -> Vec<(String, serde_json::Value)> {
        json::lines(std::slice::from_ref(report))
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["type"].as_str().unwrap().to_string(), v["case"].clone())
            })
            .collect()
    }

    /// Case 1 holds the first two messages; the third came after it.
    const CASE_AFTER_TWO: [(&str, Option<u64>); 4] = [
        ("message", Some(1)),
        ("message", Some(1)),
        ("case", Some(1)),
        ("message", None),
    ];

    fn expected(kinds: &[(&str, Option<u64>)]) -> Vec<(String, serde_json::Value)> {
        kinds
            .iter()
            .map(|(k, c)| (k.to_string(), serde_json::json!(c)))
            .collect()
    }

    #[test]
    fn json_lines_put_each_case_after_the_messages_before_its_end() {
        let report = ScriptReport {
            path: "a.rhai".into(),
            cases: vec![case(Status::Failed, 5, 15, 10)],
            events: get_answered_and_get_again([10, 11, 50]),
            duration: Duration::from_millis(60),
        };
        assert_eq!(kinds(&report), expected(&CASE_AFTER_TWO));
        let page = html::page(&[report]);
        assert!(page.contains("one &lt;b&gt;"), "names are escaped");
        assert_eq!(page.matches("<g class=\"msg ").count(), 3);
        assert_eq!(page.matches("class=\"fail-mark\"").count(), 1);
        // The failure is drawn after case 1's two messages.
        let case = &page[page.find("id=\"c-0-1\"").unwrap()..];
        let fail = case.find("fail-mark").unwrap();
        assert_eq!(case[..fail].matches("<g class=\"msg ").count(), 2);
        assert!(
            !page.contains("src=") && !page.contains("href=\"http"),
            "nothing fetched"
        );
    }

    /// The wall clock set forward by 100 ms while a case ran: its messages
    /// are stamped by the wall clock, so its end must be too. Its start
    /// plus its (monotonic) duration would end it before its own response
    /// and put the case's line above that response.
    #[test]
    fn a_case_ends_when_the_wall_clock_said_so_though_it_was_set_meanwhile() {
        let report = ScriptReport {
            path: "a.rhai".into(),
            cases: vec![case(Status::Passed, 5, 112, 7)],
            events: get_answered_and_get_again([10, 111, 150]),
            duration: Duration::from_millis(50),
        };
        assert_eq!(kinds(&report), expected(&CASE_AFTER_TWO));
    }
}
