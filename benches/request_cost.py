#!/usr/bin/env python3
"""What one `coap_get` costs the client in counts that repeat exactly:
instructions, simulated cache misses and heap allocations per GET, for the
compiled floor, the Rhai floor and one or more nsh binaries, against
libcoap's C coap-server.

  python3 benches/request_cost.py [--no-alloc] [SMALL LARGE] [NSH ...]

Each program runs twice under valgrind, SMALL and LARGE GETs (default 500
and 2500); the difference divided by LARGE - SMALL is the cost of one GET,
with start-up and exit taken out:

- `cachegrind --cache-sim=yes`: instructions (Ir), L1 instruction-cache
  misses (I1mr), L1 data-cache read and write misses (D1mr, D1mw) and
  last-level write misses (DLmw: memory not touched before, mostly);
- `dhat` (unless --no-alloc): heap blocks and bytes allocated per GET.

Wall-clock time on a shared virtual machine varies by 10 % between runs;
these counts do not, so a change to the request path shows here first.
They are what the simulated caches of valgrind see (no prefetching), not
the hardware's. Needs valgrind; builds the floors with `cargo bench
--no-run`. Default binary: target/release/nsh.
"""
import os
import re
import subprocess
import sys
import tempfile
import time

from live_nsh import free_port, bench_binary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benches", "libcoap_rtt.rhai")

ARGV = sys.argv[1:]
ALLOC = "--no-alloc" not in ARGV
ARGV = [a for a in ARGV if a != "--no-alloc"]
NUMBERS = [a for a in ARGV[:2] if a.isdigit()]
SMALL, LARGE = (int(NUMBERS[0]), int(NUMBERS[1])) if len(NUMBERS) == 2 else (500, 2500)
BINS = ARGV[len(NUMBERS):] or [os.path.join(ROOT, "target", "release", "nsh")]
CACHE_EVENTS = ["Ir", "I1mr", "D1mr", "D1mw", "DLmw"]


def command(kind, binary, port, n):
    if kind == "floor":
        return [binary, str(port), str(n), "0", "1"]
    if kind == "rhai":
        return [binary, str(port), str(n)]
    return [binary, SCRIPT, str(port), str(n)]


def cachegrind(cmd, tmp):
    out = os.path.join(tmp, "cachegrind.out")
    run = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=yes",
                          f"--cachegrind-out-file={out}"] + cmd,
                         capture_output=True, text=True, timeout=900)
    if "gets:" not in run.stdout:
        sys.exit(f"{' '.join(cmd)} failed under cachegrind:\n{run.stdout}\n{run.stderr}")
    events = summary = None
    with open(out) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):
                summary = [int(v) for v in line.split()[1:]]
    return {e: summary[events.index(e)] for e in CACHE_EVENTS}


def dhat(cmd, tmp):
    out = os.path.join(tmp, "dhat.out")
    run = subprocess.run(["valgrind", "--tool=dhat", f"--dhat-out-file={out}"] + cmd,
                         capture_output=True, text=True, timeout=900)
    m = re.search(r"Total:\s+([\d,]+) bytes in ([\d,]+) blocks", run.stderr)
    if "gets:" not in run.stdout or not m:
        sys.exit(f"{' '.join(cmd)} failed under dhat:\n{run.stdout}\n{run.stderr}")
    return {"bytes": int(m.group(1).replace(",", "")), "blocks": int(m.group(2).replace(",", ""))}


def per_get(kind, binary, port, tmp):
    counts = {}
    for tool in [cachegrind] + ([dhat] if ALLOC else []):
        small = tool(command(kind, binary, port, SMALL), tmp)
        large = tool(command(kind, binary, port, LARGE), tmp)
        for k in small:
            counts[k] = (large[k] - small[k]) / (LARGE - SMALL)
    return counts


def main():
    runs = [("floor", bench_binary("udp_floor"), "compiled floor (udp_floor)"),
            ("rhai", bench_binary("rhai_floor"), "Rhai floor (rhai_floor)")]
    runs += [("nsh", b, b) for b in BINS]
    port = free_port()
    server = subprocess.Popen(["coap-server-notls", "-A", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    columns = CACHE_EVENTS + (["blocks", "bytes"] if ALLOC else [])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = [(label, per_get(kind, binary, port, tmp)) for kind, binary, label in runs]
    finally:
        server.terminate()
        server.wait()
    print(f"per GET ({LARGE} - {SMALL} GETs): " + ", ".join(columns))
    for label, counts in rows:
        print(f"{label}: " + ", ".join(f"{k} {counts[k]:,.0f}" for k in columns))


if __name__ == "__main__":
    main()
