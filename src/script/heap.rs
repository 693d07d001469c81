//! The heap limit of scripts. nsh's global allocator ([`cap::Cap`] over
//! the system's) counts the bytes the process holds; Rhai's progress hook,
//! run between a script's operations, stops a script or prompt line that
//! grew that count by more than the limit since it began. A loop that
//! grows a value without end (`loop { s += s }`) is then an error that
//! names the limit, where it used to end nsh with `memory allocation of …
//! failed` and its history with it. Rhai's own data-size limits were not
//! used: they walk a whole array after each operation on it.
//!
//! The default limit is a quarter of the memory nsh may use (the least of
//! the machine's memory, its cgroup's `memory.max` and what `ulimit -v`
//! leaves): a value that doubles, copied into memory twice its size, still
//! fits when the limit is reached. `set heap_limit_mb=N` changes it.

use std::alloc::System;
use std::sync::atomic::{AtomicUsize, Ordering};

use cap::Cap;

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// The limit in bytes: 0 until first asked for (then the default),
/// `usize::MAX` for none.
static LIMIT: AtomicUsize = AtomicUsize::new(0);

/// What a limit of MB means, in bytes.
const MB: usize = 1_000_000;

/// Where no size can be read: what a script may grow the heap by.
const FALLBACK: usize = 1 << 30;

/// Bytes the process holds on its heap now.
pub fn in_use() -> usize {
    HEAP.allocated()
}

/// The limit in bytes (`usize::MAX`: none).
pub fn limit() -> usize {
    match LIMIT.load(Ordering::Relaxed) {
        0 => {
            let default = default_limit();
            // Another thread may have set one meanwhile: that one stays.
            match LIMIT.compare_exchange(0, default, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => default,
                Err(set) => set,
            }
        }
        n => n,
    }
}

/// Sets the limit to `mb` MB (0: no limit).
pub fn set_limit_mb(mb: u64) {
    let bytes = match usize::try_from(mb) {
        Ok(0) | Err(_) => usize::MAX,
        Ok(mb) => mb.saturating_mul(MB).max(1),
    };
    LIMIT.store(bytes, Ordering::Relaxed);
}

/// The limit as `set` shows it: MB, or 0 for none.
pub fn limit_mb() -> u64 {
    match limit() {
        usize::MAX => 0,
        n => (n / MB) as u64,
    }
}

/// A quarter of the memory this process may use.
fn default_limit() -> usize {
    let mut room: Option<usize> = None;
    let mut least = |n: usize| room = Some(room.map_or(n, |r| r.min(n)));
    if let Some(kb) = proc_field("/proc/meminfo", "MemTotal:") {
        least(kb.saturating_mul(1024));
    }
    if let Some(max) = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
    {
        least(max);
    }
    if let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_AS)
        && soft != nix::sys::resource::RLIM_INFINITY
    {
        // The address space already mapped (code, stacks, arenas) counts.
        let mapped = proc_field("/proc/self/status", "VmSize:").map_or(0, |kb| kb * 1024);
        least(
            usize::try_from(soft)
                .unwrap_or(usize::MAX)
                .saturating_sub(mapped),
        );
    }
    room.map_or(FALLBACK, |r| (r / 4).max(MB))
}

/// The number of kB a `/proc` file gives on the line that starts `name`.
fn proc_field(path: &str, name: &str) -> Option<usize> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A script's (or prompt line's) start: the heap it may grow from.
#[derive(Debug, Default)]
pub struct Baseline(AtomicUsize);

impl Baseline {
    /// A run begins now.
    pub fn begin(&self) {
        self.0.store(in_use(), Ordering::Relaxed);
    }

    /// The run's growth, when it is over the limit.
    pub fn exceeded(&self) -> Option<Exceeded> {
        self.exceeded_over(limit())
    }

    fn exceeded_over(&self, limit: usize) -> Option<Exceeded> {
        let grown = in_use().saturating_sub(self.0.load(Ordering::Relaxed));
        (grown > limit).then_some(Exceeded { grown, limit })
    }
}

/// Why a script was stopped: its growth of the heap and the limit (bytes).
#[derive(Debug, Clone, Copy)]
pub struct Exceeded {
    grown: usize,
    limit: usize,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped: the script grew nsh's heap by {} MB, more than the limit of {} MB (`set heap_limit_mb=N` changes it, 0 for none)",
            self.grown.div_ceil(MB),
            self.limit / MB
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_limit_is_reported_and_less_is_not() {
        // The count is the whole process's: tests beside this one allocate
        // too, far less than these sizes.
        let b = Baseline::default();
        b.begin();
        let keep = std::hint::black_box(vec![1u8; 64 * MB]);
        assert!(
            b.exceeded_over(MB).is_some(),
            "64 MB grown over a 1 MB limit"
        );
        assert!(b.exceeded_over(usize::MAX).is_none(), "no limit");
        assert!(b.exceeded_over(1000 * MB).is_none(), "within the limit");
        drop(keep);
        let e = Exceeded {
            grown: 3 * MB + 1,
            limit: MB + 5,
        };
        assert!(
            e.to_string()
                .contains("grew nsh's heap by 4 MB, more than the limit of 1 MB"),
            "{e}"
        );
    }

    #[test]
    fn the_default_is_a_quarter_of_what_the_process_may_use() {
        let d = default_limit();
        assert!(d >= MB, "{d}");
        if let Some(kb) = proc_field("/proc/meminfo", "MemTotal:") {
            assert!(d <= kb * 1024 / 4, "{d} of {kb} kB");
        }
    }
}
