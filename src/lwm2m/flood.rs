//! Summarising repeated lines: of the lines printed on the console (the
//! server's messages sent and received, registrations expired…, the file
//! server's requests and answers), at most [`LINES_PER_SECOND`] of one
//! kind are shown each second; the rest are counted, and one line says how
//! many were not shown once their second is over (`… and 9,990 more
//! `<- Register` lines …`). The history keeps every message whatever was
//! printed. A line's kind is its first two words (`<- Register`,
//! `-> Created`). Sans-IO: the time is passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How many lines of one kind are shown per second.
pub(crate) const LINES_PER_SECOND: u32 = 10;

const WINDOW: Duration = Duration::from_secs(1);

/// One kind's current second.
struct Window {
    start: Instant,
    shown: u32,
    hidden: u64,
    last: String,
}

/// The state of the summariser: one window per kind of line.
pub(crate) struct Flood {
    windows: HashMap<String, Window>,
    /// What follows each summary: where the lines not shown can be found.
    note: &'static str,
}

impl Default for Flood {
    /// The shell's: its summaries point at `history`.
    fn default() -> Self {
        Flood::with_note("; `history` keeps every message")
    }
}

/// What to print for one line: first the summary of the kind's previous
/// second (if lines were hidden then), then the line itself (unless it is
/// hidden now).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Admitted {
    pub(crate) summary: Option<String>,
    pub(crate) show: bool,
}

/// A line's kind: its first two words.
fn kind(line: &str) -> &str {
    let mut ends = line.match_indices(' ').map(|(i, _)| i);
    let _ = ends.next();
    ends.next().map_or(line, |end| &line[..end])
}

/// `9990` as `9,990`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn summary(kind: &str, w: &Window, note: &str) -> String {
    format!(
        "… and {} more `{kind}` lines not shown (the last: {}){note}",
        grouped(w.hidden),
        w.last
    )
}

impl Flood {
    /// A summariser whose summaries end with `note` (empty where nothing
    /// keeps the lines not shown, as in the file server).
    pub(crate) fn with_note(note: &'static str) -> Self {
        Flood {
            windows: HashMap::new(),
            note,
        }
    }

    /// Whether `line`, printed at `now`, is shown.
    pub(crate) fn admit(&mut self, line: &str, now: Instant) -> Admitted {
        let key = kind(line);
        let Some(w) = self.windows.get_mut(key) else {
            self.windows.insert(
                key.to_owned(),
                Window {
                    start: now,
                    shown: 1,
                    hidden: 0,
                    last: String::new(),
                },
            );
            return Admitted {
                summary: None,
                show: true,
            };
        };
        let mut summary_line = None;
        if now.saturating_duration_since(w.start) >= WINDOW {
            if w.hidden > 0 {
                summary_line = Some(summary(key, w, self.note));
            }
            *w = Window {
                start: now,
                shown: 0,
                hidden: 0,
                last: String::new(),
            };
        }
        let show = w.shown < LINES_PER_SECOND;
        if show {
            w.shown += 1;
        } else {
            w.hidden += 1;
            line.clone_into(&mut w.last);
        }
        Admitted {
            summary: summary_line,
            show,
        }
    }

    /// Summaries of the kinds whose second is over with lines hidden; kinds
    /// quiet for a second are forgotten.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<String> {
        self.sum_up(|w| now.saturating_duration_since(w.start) >= WINDOW)
    }

    /// Summaries of every kind with lines hidden, now (the server stops).
    pub(crate) fn take_all(&mut self) -> Vec<String> {
        self.sum_up(|_| true)
    }

    fn sum_up(&mut self, over: impl Fn(&Window) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        let note = self.note;
        self.windows.retain(|key, w| {
            if !over(w) {
                return true;
            }
            if w.hidden > 0 {
                lines.push(summary(key, w, note));
            }
            false
        });
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_one_kind_is_shown_ten_a_second_then_summed_up() {
        let mut f = Flood::default();
        let t0 = Instant::now();
        let mut shown = 0;
        for i in 0..10_000 {
            let a = f.admit(&format!("<- Register /rd?ep=storm-{i}"), t0);
            assert_eq!(a.summary, None);
            shown += usize::from(a.show);
            // Another kind is not held up by the flood.
            if i == 5_000 {
                assert!(f.admit("-> Read /3/0", t0).show);
            }
        }
        assert_eq!(shown, 10);
        assert!(f.due(t0 + Duration::from_millis(999)).is_empty());
        let due = f.due(t0 + WINDOW);
        assert_eq!(
            due,
            [
                "… and 9,990 more `<- Register` lines not shown (the last: <- Register /rd?ep=storm-9999); `history` keeps every message"
            ]
        );
        // Summed up once; the next second starts afresh.
        assert!(f.due(t0 + 2 * WINDOW).is_empty());
        for _ in 0..11 {
            f.admit("<- Update /rd/1", t0);
        }
        assert_eq!(f.take_all().len(), 1);
        assert!(f.admit("<- Register /rd?ep=late", t0 + 2 * WINDOW).show);
    }

    #[test]
    fn the_summary_comes_before_the_first_line_of_the_next_second() {
        let mut f = Flood::default();
        let t0 = Instant::now();
        for _ in 0..12 {
            f.admit("-> Created /rd/1", t0);
        }
        let a = f.admit("-> Created /rd/2", t0 + WINDOW);
        assert!(a.show);
        assert_eq!(
            a.summary.as_deref(),
            Some(
                "… and 2 more `-> Created` lines not shown (the last: -> Created /rd/1); `history` keeps every message"
            )
        );
    }

    #[test]
    fn kinds_are_the_first_two_words() {
        assert_eq!(kind("<- Register /rd?ep=a"), "<- Register");
        assert_eq!(kind("-> Created"), "-> Created");
        assert_eq!(kind("word"), "word");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(999), "999");
    }
}
