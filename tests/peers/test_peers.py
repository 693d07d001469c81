#!/usr/bin/env python3
"""Smoke tests of the test peers themselves (run by .ci/run after setup.sh).

  python3 -m unittest discover -s tests/peers -p 'test_*.py' -v

Checks that capture.py's CoAP codec round-trips every captured fixture, and
that each real peer installed by tests/setup.sh starts, registers with a
server on a free loopback port, answers a Read, and de-registers on SIGTERM.
"""

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "captured")
sys.path.insert(0, HERE)
import capture  # noqa: E402


def read_hex(path):
    with open(path) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    assert lines[0].startswith(("# captured from ", "# sent by ")), path
    return bytes.fromhex("".join(ln for ln in lines if not ln.startswith("#")))


class Fixtures(unittest.TestCase):
    def test_every_fixture_decodes_and_round_trips(self):
        files = sorted(glob.glob(os.path.join(FIXTURES, "*.hex")))
        self.assertGreater(len(files), 20)
        for f in files:
            data = read_hex(f)
            m = capture.decode(data)
            again = capture.encode(m["type"], m["code"], m["mid"], m["token"], m["options"], m["payload"])
            self.assertEqual(again.hex(), data.hex(), os.path.basename(f))

    def test_register_fixtures(self):
        for peer in ("waka", "coapnode", "libcoap"):
            m = capture.decode(read_hex(os.path.join(FIXTURES, peer + "-register.hex")))
            self.assertEqual(capture.uri_path(m), "/rd")
            self.assertEqual(capture.opt_uint(m, 12), 40)
            self.assertIn(b"</3/0>", m["payload"])


class Peers(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nsh-peers-")
        self.procs = []
        self.files = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in self.files:
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, args, name, **kw):
        out = open(os.path.join(self.tmp, name + ".out"), "w")
        self.files.append(out)
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=HERE, **kw)
        self.procs.append(p)
        return p

    def wait_line(self, name, pattern, timeout):
        path = os.path.join(self.tmp, name + ".out")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(path) as f:
                for line in f:
                    if line.startswith(pattern):
                        return line.strip()
            time.sleep(0.05)
        with open(path) as f:
            self.fail("no %r from %s within %ss:\n%s" % (pattern, name, timeout, f.read()))

    def capture(self, label, reqs):
        args = [sys.executable, os.path.join(HERE, "capture.py"), "--out", self.tmp, "--prefix", "p",
                "--label", label, "--linger", "10", "--timeout", "60"]
        for r in reqs:
            args += ["--req", r]
        cap = self.start(args, "capture")
        port = int(self.wait_line("capture", "LISTENING", 10).split()[2])
        return cap, port

    def response(self, name):
        return capture.decode(read_hex(os.path.join(self.tmp, "p-%s.hex" % name)))

    def run_client(self, driver, ready):
        if not os.path.isdir(os.path.join(HERE, "node_modules")):
            self.fail("tests/peers/node_modules missing: run bash tests/setup.sh")
        cap, port = self.capture(driver, ["dev:GET:/3/0:accept=11542", "w:PUT:/3303/0/5750:cf=0,text=smoke",
                                          "r:GET:/3303/0/5750:accept=0"])
        peer = self.start(["node", driver, "127.0.0.1", str(port), "smoke-" + driver], "peer")
        self.wait_line("peer", ready, 30)
        self.wait_line("capture", "DONE", 40)
        dev = self.response("dev")
        self.assertEqual(capture.code_str(dev["code"]), "2.05")
        self.assertIn(b"nsh-test", dev["payload"])
        self.assertEqual(capture.code_str(self.response("w")["code"]), "2.04")
        self.assertEqual(self.response("r")["payload"], b"smoke")
        peer.send_signal(signal.SIGTERM)
        self.assertEqual(peer.wait(15), 0)
        self.wait_line("capture", "DEREGISTERED", 15)
        self.assertEqual(cap.wait(15), 0)

    def test_wakatiwai(self):
        self.run_client("waka.js", "READY")

    def test_coap_node(self):
        self.run_client("coapnode.js", "REGISTERED")

    def test_libcoap_register_and_send(self):
        client = shutil.which("coap-client-notls")
        if client is None:
            self.fail("coap-client-notls missing: run bash tests/setup.sh")
        cap, port = self.capture("libcoap", [])
        base = "coap://127.0.0.1:%d" % port
        subprocess.run([client, "-U", "-B", "5", "-m", "post", "-t", "40", "-e", "</1/0>,</3/0>",
                        base + "/rd?ep=smoke&lt=300&lwm2m=1.1&b=U"], check=True, timeout=20)
        self.wait_line("capture", "DONE", 10)
        subprocess.run([client, "-U", "-B", "5", "-m", "post", "-t", "112", "-e", "%81%A3%21h/3303/0/%00d5700%02%F9M%60",
                        base + "/dp"], check=True, timeout=20)
        subprocess.run([client, "-U", "-B", "5", "-m", "delete", base + "/rd/1"], check=True, timeout=20)
        self.wait_line("capture", "DEREGISTERED", 10)
        self.assertEqual(cap.wait(15), 0)
        send = capture.decode(read_hex(os.path.join(self.tmp, "p-send-cf112.hex")))
        self.assertEqual(send["payload"].hex(), "81a321682f333330332f302f00643537303002f94d60")
        self.assertEqual(capture.opt_all(send, 7), [])  # -U: no Uri-Port


if __name__ == "__main__":
    unittest.main()
