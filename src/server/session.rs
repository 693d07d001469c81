//! The user's session: the history of everything sent and received, the
//! inbox of messages nobody waited for, the payload buffer, the armed
//! expectation and the Bootstrap-Pack-Request kept for `bootstrap_pack`.
//!
//! Everything here is bounded: the history keeps the last `history_limit`
//! records, the inbox the last [`DEFAULT_INBOX_LIMIT`] messages and the
//! payload buffer the last [`PAYLOAD_BUFFER_LIMIT`] bytes; what is dropped
//! is counted. Records are keyed by their sequence number, which is handed
//! out when a message is received or queued for sending and never reused,
//! so positions stay valid when the front of the history is trimmed.

use std::collections::VecDeque;

use super::history::{Direction, Record, RecordRef};

/// How many records the history keeps unless `set history_limit=N` says
/// otherwise.
pub const DEFAULT_HISTORY_LIMIT: usize = 100_000;

/// How many unread messages the inbox keeps; the oldest go first.
pub const DEFAULT_INBOX_LIMIT: usize = 10_000;

/// How many bytes the payload buffer keeps; the oldest go first.
pub const PAYLOAD_BUFFER_LIMIT: usize = 16 << 20;

/// A check of a received message: `Err` lists what differs.
pub type Check = std::sync::Arc<dyn Fn(&Record) -> Result<(), Vec<String>> + Send + Sync>;

/// What `expect` armed: checked against the next received message.
#[derive(Clone)]
pub enum Expectation {
    /// Nothing may arrive.
    Nothing,
    /// A message matching the predicate; the text describes it.
    Matching(String, Check),
}

/// The session state (see the module header).
pub(crate) struct Session {
    history: VecDeque<RecordRef>,
    history_limit: usize,
    next_seq: u64,
    inbox: VecDeque<RecordRef>,
    inbox_limit: usize,
    inbox_dropped: u64,
    payload_buffer: Vec<u8>,
    expectation: Option<Expectation>,
    /// What differed, what was expected, and the message: worded when
    /// taken (outside the lock; `details` decodes payloads).
    expectation_report: Option<(Vec<String>, String, RecordRef)>,
    bootstrap_pack_request: Option<RecordRef>,
    /// While a capture runs: the records added since the core's effects
    /// were last taken (datagrams only, not assembled bodies).
    captured: Option<Vec<RecordRef>>,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            history: VecDeque::new(),
            history_limit: DEFAULT_HISTORY_LIMIT,
            next_seq: 1,
            inbox: VecDeque::new(),
            inbox_limit: DEFAULT_INBOX_LIMIT,
            inbox_dropped: 0,
            payload_buffer: Vec::new(),
            expectation: None,
            expectation_report: None,
            bootstrap_pack_request: None,
            captured: None,
        }
    }
}

impl Session {
    /// Hands out the next sequence number.
    pub(crate) fn reserve_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Adds a record whose `seq` was reserved; kept in sequence order even
    /// when a later record got in first (a response recorded before the
    /// request it answers finished sending).
    pub(crate) fn record(&mut self, record: Record) -> RecordRef {
        let r = std::sync::Arc::new(record);
        let at = self
            .history
            .iter()
            .rposition(|h| h.seq < r.seq)
            .map_or(0, |i| i + 1);
        self.history.insert(at, r.clone());
        if let Some(captured) = &mut self.captured
            && r.role != super::history::Role::Assembled
            && r.role != super::history::Role::Injected
        {
            captured.push(r.clone());
        }
        let excess = self.history.len().saturating_sub(self.history_limit);
        self.history.drain(..excess);
        r
    }

    /// Reserves a number for `record` and adds it.
    pub(crate) fn push(&mut self, mut record: Record) -> RecordRef {
        record.seq = self.reserve_seq();
        self.record(record)
    }

    /// Starts or stops collecting records for a capture.
    pub(crate) fn set_capturing(&mut self, on: bool) {
        self.captured = on.then(Vec::new);
    }

    /// Whether records wait for the running capture.
    pub(crate) fn has_captured(&self) -> bool {
        self.captured.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// The records added since the last call, while capturing.
    pub(crate) fn take_captured(&mut self) -> Vec<RecordRef> {
        self.captured
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub(crate) fn history_limit(&self) -> usize {
        self.history_limit
    }

    /// Sets how many records the history keeps (at least 1).
    pub(crate) fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
        let excess = self.history.len().saturating_sub(self.history_limit);
        self.history.drain(..excess);
    }

    pub(crate) fn history(&self) -> impl DoubleEndedIterator<Item = &RecordRef> {
        self.history.iter()
    }

    /// The sequence number the next record will get: records from here on
    /// are newer than anything seen now.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Clears the history and the inbox.
    pub(crate) fn reset(&mut self) {
        self.history.clear();
        self.inbox.clear();
    }

    /// Queues an unread message; drops the oldest when the inbox is full
    /// and returns how many were dropped so far when that happened.
    pub(crate) fn deliver(&mut self, record: RecordRef) -> Option<u64> {
        self.inbox.push_back(record);
        if self.inbox.len() > self.inbox_limit {
            self.inbox.pop_front();
            self.inbox_dropped += 1;
            return Some(self.inbox_dropped);
        }
        None
    }

    pub(crate) fn inbox(&self) -> &VecDeque<RecordRef> {
        &self.inbox
    }

    pub(crate) fn inbox_mut(&mut self) -> &mut VecDeque<RecordRef> {
        &mut self.inbox
    }

    /// How many unread messages were dropped because the inbox was full.
    pub(crate) fn inbox_dropped(&self) -> u64 {
        self.inbox_dropped
    }

    pub(crate) fn set_inbox_limit(&mut self, limit: usize) {
        self.inbox_limit = limit.max(1);
        while self.inbox.len() > self.inbox_limit {
            self.inbox.pop_front();
            self.inbox_dropped += 1;
        }
    }

    /// Appends a received payload (bounded: the oldest bytes go first).
    pub(crate) fn buffer_payload(&mut self, payload: &[u8]) {
        self.payload_buffer.extend_from_slice(payload);
        let excess = self
            .payload_buffer
            .len()
            .saturating_sub(PAYLOAD_BUFFER_LIMIT);
        if excess > 0 {
            self.payload_buffer.drain(..excess);
        }
    }

    pub(crate) fn payload_buffer(&self) -> &[u8] {
        &self.payload_buffer
    }

    pub(crate) fn clear_payload_buffer(&mut self) {
        self.payload_buffer.clear();
    }

    pub(crate) fn arm(&mut self, e: Option<Expectation>) {
        self.expectation = e;
        self.expectation_report = None;
    }

    /// The mismatch found by the last check, to be worded with
    /// [`expectation_report`].
    pub(crate) fn take_expectation_report(&mut self) -> Option<(Vec<String>, String, RecordRef)> {
        self.expectation_report.take()
    }

    /// Checks the armed expectation (if any) against a received record.
    pub(crate) fn check_expectation(&mut self, record: &RecordRef) {
        let Some(expectation) = self.expectation.take() else {
            return;
        };
        let problems = match &expectation {
            Expectation::Nothing => vec!["no message expected".to_string()],
            Expectation::Matching(_, check) => check(record).err().unwrap_or_default(),
        };
        if problems.is_empty() {
            self.expectation_report = None;
            return;
        }
        let expected = match &expectation {
            Expectation::Nothing => "None".to_string(),
            Expectation::Matching(text, _) => text.clone(),
        };
        self.expectation_report = Some((problems, expected, record.clone()));
    }

    pub(crate) fn keep_bootstrap_pack_request(&mut self, r: RecordRef) {
        self.bootstrap_pack_request = Some(r);
    }

    pub(crate) fn take_bootstrap_pack_request(&mut self) -> Option<RecordRef> {
        self.bootstrap_pack_request.take()
    }

    /// The most recent request received from a peer.
    pub(crate) fn last_received_request(&self) -> Option<RecordRef> {
        self.history
            .iter()
            .rev()
            .find(|r| {
                r.direction == Direction::Received
                    && r.message.as_ref().is_ok_and(|m| m.code.is_request())
            })
            .cloned()
    }
}

/// The report of a failed expectation (reference §7.1.2.4's shape).
pub(crate) fn expectation_report(problems: &[String], expected: &str, got: &Record) -> String {
    format!(
        "*** unexpected message ***\n{}\n\n--- GOT ---\n{}\n--- EXPECTED ---\n{expected}\n------",
        problems.join("\n"),
        got.details()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::history::Role;
    use std::time::SystemTime;

    fn rec(seq: u64) -> Record {
        Record {
            seq,
            direction: Direction::Received,
            peer: ([127, 0, 0, 1], 1).into(),
            at: SystemTime::UNIX_EPOCH,
            raw: vec![0x40, 0, 0, 0],
            reliable: false,
            message: crate::coap::udp::decode(&[0x40, 0, 0, 0]),
            kind: None,
            role: Role::New,
            observed_path: None,
            request_path: None,
            fresh: None,
            note: None,
            objects: crate::lwm2m::Objects::default(),
            identity: None,
            endpoint: None,
        }
    }

    #[test]
    fn records_stay_in_sequence_order_when_recorded_late() {
        let mut s = Session::default();
        let a = s.reserve_seq();
        let b = s.reserve_seq();
        s.record(rec(b));
        s.record(rec(a));
        let seqs: Vec<u64> = s.history().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![a, b]);
    }

    #[test]
    fn the_inbox_is_bounded_and_counts_what_it_dropped() {
        let mut s = Session::default();
        s.set_inbox_limit(3);
        let mut dropped = None;
        for i in 0..5 {
            let r = s.push(rec(i));
            dropped = s.deliver(r).or(dropped);
        }
        assert_eq!(s.inbox().len(), 3);
        assert_eq!(s.inbox_dropped(), 2);
        assert_eq!(dropped, Some(2));
        // The newest are kept.
        assert_eq!(s.inbox().back().map(|r| r.seq), Some(5));
    }

    #[test]
    fn the_history_keeps_the_last_n() {
        let mut s = Session::default();
        s.set_history_limit(2);
        for i in 0..4 {
            s.push(rec(i));
        }
        let seqs: Vec<u64> = s.history().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![3, 4]);
    }

    #[test]
    fn the_payload_buffer_is_bounded() {
        let mut s = Session::default();
        s.buffer_payload(&vec![1u8; PAYLOAD_BUFFER_LIMIT]);
        s.buffer_payload(&[2, 3]);
        assert_eq!(s.payload_buffer().len(), PAYLOAD_BUFFER_LIMIT);
        assert_eq!(&s.payload_buffer()[PAYLOAD_BUFFER_LIMIT - 2..], &[2, 3]);
    }
}
