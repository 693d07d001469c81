#!/usr/bin/env python3
"""A registration storm against nsh: N clients, each on its own UDP socket,
send one Register (CON, never retransmitted) within about SPREAD seconds.

Prints how many got their 2.01 Created, registrations per second (from the
first Register sent to the last 2.01 received), the CPU time nsh spent per
registration (user + system, from /proc/PID/stat), nsh's RSS before and after
(VmRSS from /proc, so RSS per registered client), its thread count, and
how many clients `clients()` reports (and how long `clients()` and
`use_client` take then), and the receive buffer the kernel
granted nsh's socket (`ss`).

With --again, once the first storm is answered, the same N clients
register again under the same endpoint names (a fleet rebooting after an
outage: every Register replaces a registration), and the same figures are
printed for that second wave.

With --non, every Register is NON instead of CON (RFC 7252 §4.3; common
on constrained networks): nsh answers each with a NON 2.01 of its own,
which it remembers for NON_LIFETIME (145 s).

Usage: python3 benches/storm.py [--again] [--non] [N] [SPREAD_S] [NSH]
(N = 10000, SPREAD_S = 2, NSH = target/release/nsh)
"""

import os
import resource
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time

from live_nsh import start, status

ARGV = [a for a in sys.argv[1:] if a not in ("--again", "--non")]
AGAIN = "--again" in sys.argv[1:]
NON = "--non" in sys.argv[1:]
N = int(ARGV[0]) if len(ARGV) > 0 else 10000
SPREAD = float(ARGV[1]) if len(ARGV) > 1 else 2.0
NSH = ARGV[2] if len(ARGV) > 2 else "target/release/nsh"

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < N + 1024:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, N + 1024), hard))


def register(i, wave=0):
    """A CON (NON with --non) POST /rd?ep=storm-I&lt=600&lwm2m=1.1&b=U,
    token = i (and the wave); the message ID differs from one wave to the
    next, so a second Register is not taken for a duplicate of the first."""
    token = struct.pack(">I", i) + bytes([wave])
    mid = (i + wave * 2 * N) & 0xFFFF
    mtype = 0x50 if NON else 0x40
    head = bytes([mtype | len(token), 0x02]) + struct.pack(">H", mid) + token

    def opt(delta, value):
        assert delta < 13 and len(value) < 269
        if len(value) < 13:
            return bytes([(delta << 4) | len(value)]) + value
        return bytes([(delta << 4) | 13, len(value) - 13]) + value

    opts = opt(11, b"rd")  # Uri-Path
    opts += opt(1, b"\x28")  # Content-Format 40
    query = [f"ep=storm-{i}", "lt=600", "lwm2m=1.1", "b=U"]
    opts += opt(3, query[0].encode())  # Uri-Query (15)
    for q in query[1:]:
        opts += opt(0, q.encode())
    return head + opts + b"\xff" + b"</1/0>,</3/0>"


script = (
    "let n = 0; let t = timestamp();"
    f" while n < {N} && t.elapsed < 120.0 {{ n = clients().len(); sleep(0.05); }}"
    " let t1 = timestamp(); let all = clients(); let ms = t1.elapsed * 1000.0;"
    f' let t2 = timestamp(); use_client("storm-{N - 1}"); let ms2 = t2.elapsed * 1000.0;'
    ' print(`@@clients ${n}; clients() took ${ms} ms, use_client ${ms2} ms`); sleep(3600);'
)
proc, port = start(NSH, ["-c", script])
lines = {"n": 0, "clients": None}


def reader():
    for line in proc.stdout:
        lines["n"] += 1
        if line.startswith("@@clients"):
            lines["clients"] = line.strip()


threading.Thread(target=reader, daemon=True).start()
time.sleep(0.3)
rss0 = status(proc.pid, "VmRSS")
socks = []
for _ in range(N):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    socks.append(s)


def cpu_s(pid):
    """User + system CPU seconds of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def storm(wave):
    """Every client sends its Register within SPREAD seconds; returns how
    many were answered 2.01, the time from the first sent to the last
    answer, and how long sending took."""
    msgs = [register(i, wave) for i in range(N)]
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    answered = 0
    last = 0.0
    cpu0 = cpu_s(proc.pid)
    start = time.monotonic()
    per = SPREAD / N
    for i, s in enumerate(socks):
        due = start + i * per
        while time.monotonic() < due:
            time.sleep(0.001)
        s.sendto(msgs[i], ("127.0.0.1", port))
    sent_in = time.monotonic() - start
    deadline = time.monotonic() + 60
    while answered < N and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            try:
                data = key.fileobj.recv(1500)
            except BlockingIOError:
                continue
            if len(data) > 1 and data[1] == 0x41:  # 2.01
                answered += 1
                last = time.monotonic()
            sel.unregister(key.fileobj)
    sel.close()
    return answered, last - start, sent_in, cpu_s(proc.pid) - cpu0


answered, took, sent_in, cpu = storm(0)
deadline = time.monotonic()
while lines["clients"] is None and time.monotonic() < deadline + 120:
    time.sleep(0.1)
rss1 = status(proc.pid, "VmRSS")
try:
    ss = subprocess.run(
        ["ss", "-ulmnH", f"sport = :{port}"], capture_output=True, text=True
    ).stdout
    rb = ss.split("rb")[1].split(",")[0] if "rb" in ss else "?"
except OSError:
    rb = "?"
threads = status(proc.pid, "Threads")
again = storm(1) if AGAIN and answered == N else None
proc.kill()
proc.wait()
print(f"clients: {N} ({'NON' if NON else 'CON'} Register), sent within {sent_in:.2f} s")
print(f"answered: {answered} ({N - answered} lost)")
if answered:
    print(f"registrations/s: {answered / took:.0f} (first sent to last 2.01 received: {took:.2f} s)")
    print(f"nsh CPU per registration: {cpu / answered * 1e6:.0f} us ({cpu:.2f} s in all)")
print(f"nsh VmRSS: {rss0} kB before, {rss1} kB after: {(rss1 - rss0) * 1024 / max(answered, 1):.0f} B per registered client")
print(f"socket receive buffer granted (ss rb): {rb} bytes")
print(f"nsh threads: {threads}; lines printed: {lines['n']}; {lines['clients']}")
if again:
    a, t, sent, c = again
    print(f"again, same endpoints (sent within {sent:.2f} s): answered {a} ({N - a} lost)"
          + (f", {a / t:.0f} registrations/s, nsh CPU {c / a * 1e6:.0f} us per registration" if a else ""))
