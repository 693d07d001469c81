#!/usr/bin/env python3
"""Read round trip of nsh against libcoap's C coap-server (a fast peer, so
nsh's own overhead shows), for one or more nsh binaries, rounds alternating.

  python3 benches/libcoap_rtt.py [--floor] [--gaps US,US...] [--unconnected] [--pin] [--capture] [N] [ROUNDS] [NSH ...]

Each round starts `coap-server-notls` on a free port and runs
`nsh benches/libcoap_rtt.rhai PORT N` (N `coap_get("/time")` in a Rhai loop)
with every binary in turn; prints per-round and overall medians and means.
Default binary: target/release/nsh. Default N: 2000; default ROUNDS: 30.

--capture: each binary also runs with `capture(FILE)` on (a pcapng file in a
temporary directory), so the cost of the capture shows as the difference.

--floor adds the compiled floor (`benches/udp_floor.rs`: the same GET from a
bare blocking-socket loop, built here with `cargo bench --no-run`) to every
round, and prints each nsh run's ratio to it: the ratio of the medians of
round medians and of round means, and the median of per-round ratios
(medians and means) with a 95 % bootstrap interval over the rounds. It
also adds the Rhai floor (`benches/rhai_floor.rs`: this very script in a
bare Rhai engine whose `coap_get` is one `sendto` and one `recvfrom`) and
prints each nsh run's ratio to that too: what running the loop in Rhai
costs any scripted shell, apart from what nsh itself adds. Beside each
ratio it prints what the run adds to that floor per GET, in microseconds
(per-round differences, with their interval): a ratio depends on how long
the machine's own round trip is, the time added much less.

With two nsh binaries or more, each is compared with the first round by
round (per-round ratios, with their interval): rounds vary by 10 % on a
shared machine, and a change to nsh shows here first.

--gaps (with --floor) adds the compiled floor once more per gap: it first
spends that many microseconds of CPU between a response and the next
request, outside the measured time, as a script's own work between
requests is. Their ratios to the plain floor show what a gap alone costs
the round trip when the peer (and this thread) go idle meanwhile.

--unconnected runs the floor on an unconnected socket (`sendto`/`recvfrom`,
a route lookup per datagram), as nsh's listening socket is.

--pin runs the server on the last CPU and every client (floor and nsh) on
the first (`taskset`), as a device on another machine always is: left to
the scheduler on a 2-CPU machine, a client and the server sometimes share a
CPU (a wake-up without an inter-processor interrupt: the floor then takes
17 us instead of 65 here), and a client that works between requests moves
the server off its CPU.

The order of the runs is reversed every other round, so no run always goes
first against a fresh server.
"""
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

from live_nsh import free_port, bench_binary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGV = sys.argv[1:]
FLOOR = "--floor" in ARGV
CAPTURE = "--capture" in ARGV
GAPS = []
if "--gaps" in ARGV:
    at = ARGV.index("--gaps")
    GAPS = [int(g) for g in ARGV[at + 1].split(",") if g]
    del ARGV[at:at + 2]
PIN = "--pin" in ARGV
UNCONNECTED = "--unconnected" in ARGV
ARGV = [a for a in ARGV if a not in ("--floor", "--capture", "--pin", "--unconnected")]
CPUS = os.cpu_count() or 1
CLIENT_CPU = ["taskset", "-c", "0"] if PIN else []
SERVER_CPU = ["taskset", "-c", str(CPUS - 1)] if PIN else []
N = int(ARGV[0]) if len(ARGV) > 0 else 2000
# Rounds differ by about 10 % among themselves on a shared virtual machine:
# 30 settle a 5 % difference, 5 do not.
ROUNDS = int(ARGV[1]) if len(ARGV) > 1 else 30
BINS = ARGV[2:] or [os.path.join(ROOT, "target", "release", "nsh")]
SCRIPT = os.path.join(ROOT, "benches", "libcoap_rtt.rhai")


FLOOR_BIN = bench_binary("udp_floor") if FLOOR else None
RHAI_FLOOR_BIN = bench_binary("rhai_floor") if FLOOR else None


def run(binary, port, capture=None, gap=0):
    if binary == FLOOR_BIN:
        cmd = [binary, str(port), str(N), str(gap), "1" if UNCONNECTED else "0"]
    elif binary == RHAI_FLOOR_BIN:
        cmd = [binary, str(port), str(N)]
    else:
        cmd = [binary, SCRIPT, str(port), str(N)] + ([capture] if capture else [])
    out = subprocess.run(CLIENT_CPU + cmd, capture_output=True, text=True, timeout=600)
    line = [l for l in out.stdout.splitlines() if l.startswith("gets:")]
    if not line:
        sys.exit(f"{binary} failed: {out.stdout}\n{out.stderr}")
    f = line[0]
    med = float(f.split("median ")[1].split(" us")[0])
    mean = float(f.split("mean ")[1].split(" us")[0])
    return med, mean


def interval(values, draws=2000):
    """95 % bootstrap interval (over rounds) of the median of `values`: how
    far the figure could move were the rounds run again."""
    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return meds[int(draws * 0.025)], meds[int(draws * 0.975) - 1]


def ratio_line(name, per_round_medians, per_round_means, unit=""):
    """`name: median M [lo, hi], mean … [lo, hi]` of per-round ratios (or,
    with a unit, of per-round differences)."""
    parts = []
    digits = 1 if unit else 3
    for what, xs in (("median", per_round_medians), ("mean", per_round_means)):
        lo, hi = interval(xs)
        parts.append(f"{what} {statistics.median(xs):.{digits}f}{unit} "
                     f"[{lo:.{digits}f}, {hi:.{digits}f}]")
    return f"{name}, per round (95 % interval): " + ", ".join(parts)


def label(variant):
    b, c = variant
    if b == FLOOR_BIN:
        return f"floor (udp_floor) with a {c} us gap" if c else "floor (udp_floor)"
    if b == RHAI_FLOOR_BIN:
        return "Rhai floor (rhai_floor)"
    return f"{b}{' with capture' if c else ''}"


def main():
    variants = [(b, c) for b in BINS for c in ((None, "capture") if CAPTURE else (None,))]
    if FLOOR:
        variants[0:0] = [(FLOOR_BIN, None)] + [(FLOOR_BIN, g) for g in GAPS] + [(RHAI_FLOOR_BIN, None)]
    results = {v: ([], []) for v in variants}
    ratios = {v: ([], []) for v in variants}
    rhai_ratios = {v: ([], []) for v in variants}
    # What each run adds to the floors per GET, in microseconds: unlike a
    # ratio, it does not shrink when the machine's own round trip is long.
    added = {v: ([], []) for v in variants}
    rhai_added = {v: ([], []) for v in variants}
    tmp = tempfile.mkdtemp(prefix="nsh-rtt-")
    for r in range(ROUNDS):
        port = free_port()
        server = subprocess.Popen(SERVER_CPU + ["coap-server-notls", "-A", "127.0.0.1", "-p", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        try:
            for v in (variants if r % 2 == 0 else variants[::-1]):
                is_floor = v[0] in (FLOOR_BIN, RHAI_FLOOR_BIN)
                capture = os.path.join(tmp, f"round{r}.pcapng") if v[1] and not is_floor else None
                med, mean = run(v[0], port, capture, (v[1] or 0) if is_floor else 0)
                if capture:
                    os.remove(capture)
                results[v][0].append(med)
                results[v][1].append(mean)
                print(f"round {r + 1}: {label(v)}: median {med:.1f} us, mean {mean:.1f} us", flush=True)
            if FLOOR:
                for base, into, extra in (((FLOOR_BIN, None), ratios, added),
                                          ((RHAI_FLOOR_BIN, None), rhai_ratios, rhai_added)):
                    for v in variants:
                        for k in (0, 1):
                            into[v][k].append(results[v][k][-1] / results[base][k][-1])
                            extra[v][k].append(results[v][k][-1] - results[base][k][-1])
        finally:
            server.terminate()
            server.wait()
    os.rmdir(tmp)
    for v, (meds, means) in results.items():
        print(f"{label(v)}: median of round medians {statistics.median(meds):.1f} us, "
              f"median of round means {statistics.median(means):.1f} us ({ROUNDS} rounds of {N} GETs)")
    if FLOOR:
        fmed, fmean = (statistics.median(x) for x in results[(FLOOR_BIN, None)])
        rmed, rmean = (statistics.median(x) for x in results[(RHAI_FLOOR_BIN, None)])
        for v in variants[1:]:
            med, mean = (statistics.median(x) for x in results[v])
            print(f"{label(v)} / floor: median {med / fmed:.3f}, mean {mean / fmean:.3f}")
            print("  " + ratio_line("ratio", *ratios[v]))
            print("  " + ratio_line("added per GET", *added[v], unit=" us"))
        for v in variants[2 + len(GAPS):]:
            med, mean = (statistics.median(x) for x in results[v])
            print(f"{label(v)} / Rhai floor: median {med / rmed:.3f}, mean {mean / rmean:.3f}")
            print("  " + ratio_line("ratio", *rhai_ratios[v]))
            print("  " + ratio_line("added per GET", *rhai_added[v], unit=" us"))
    # Two binaries or more: each against the first, round by round (the
    # way to tell whether a change made a difference).
    first, *others = [v for v in variants if v[0] not in (FLOOR_BIN, RHAI_FLOOR_BIN)]
    for v in others:
        print(ratio_line(f"{label(v)} / {label(first)}",
                         *([a / b for a, b in zip(results[v][k], results[first][k])] for k in (0, 1))))


if __name__ == "__main__":
    main()
