"""What the bench scripts share: a free UDP port, building a bench binary,
starting nsh listening on a free port, and reading a field of a process's
/proc/PID/status."""
import json
import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    """A UDP port free on 127.0.0.1 just now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def bench_binary(name):
    """Builds benches/NAME.rs and returns the path of its executable."""
    out = subprocess.run(["cargo", "bench", "--bench", name, "--no-run", "--message-format=json"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == name \
                and msg.get("executable"):
            return msg["executable"]
    sys.exit(f"cargo bench --bench {name} --no-run built no executable")


def start(nsh, args):
    """Starts `nsh -l 0 ARGS…` with its output on a pipe; returns the
    process and the port from its listening line (exits without one)."""
    proc = subprocess.Popen(
        [nsh, "-l", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if "listening on" in line:
            return proc, int(line.split(" port ")[1].split()[0])
    sys.exit("nsh printed no listening line")


def status(pid, field):
    """A numeric field of /proc/PID/status (VmRSS in kB, Threads), 0 if
    absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0
