#!/usr/bin/env python3
"""A lock-step LwM2M 1.0 test client that answers wrongly on purpose.

It registers with the server, then answers each request as it comes, one
at a time, from a small object tree (/1/0 Server, /3/0 Device, /16/0 Portfolio) - honestly,
except for the wrong behaviours named on the command line. nsh's ETS tests
run a case against it and check that the case fails, naming the wrong
thing; with no behaviour named the same case must pass.

usage: python3 tests/peers/liar.py HOST PORT EP [BEHAVIOUR ...]

Behaviours:
  wrong-value    /3/0/0 (Manufacturer) reads "liar-corp" instead of "nsh-test"
  wrong-format   a Read that asks for TLV gets text/plain (content format 0)
  missing        /3/0/0 is answered 4.04 Not Found though /3/0 is registered
  fast-notify    notifications every 0.2 s, whatever pmin says
  create-lost    a Create is answered 2.01 but the instance is not kept
  delete-kept    a Delete is answered 2.02 but the instance stays
  no-reregister  an Update answered 4.04 is not followed by a new Register
  bootstrap      (not a lie) first bootstraps: Bootstrap-Request to PORT, answers
                 Bootstrap-Delete 2.02, Bootstrap-Write and -Finish 2.04, then
                 registers with the same server
  bs-no-register with bootstrap: after Bootstrap-Finish it never registers

Executing /1/0/8 (Registration Update Trigger) makes it send an Update; an
Update answered 4.04 makes it register again.

stdout: REGISTERED once the Register got 2.01; DEREGISTERED on SIGTERM.
Only the Python standard library is used.
"""
import signal
import socket
import struct
import sys
import time

HOST, PORT, EP = sys.argv[1], int(sys.argv[2]), sys.argv[3]
WRONG = set(sys.argv[4:])
KNOWN = {"wrong-value", "wrong-format", "missing", "fast-notify", "create-lost", "delete-kept", "no-reregister", "bootstrap", "bs-no-register"}
if WRONG - KNOWN:
    sys.exit(f"liar.py: unknown behaviour {sorted(WRONG - KNOWN)}; known: {sorted(KNOWN)}")

TEXT, LINK, TLV = 0, 40, 11542
OBS, URI_PATH, CF, URI_QUERY, ACCEPT, LOC_PATH = 6, 11, 12, 15, 17, 8

objects = {
    (1, 0): {0: 1, 1: 300, 2: 0, 3: 0, 6: False, 7: "U"},
    (3, 0): {0: "nsh-test", 1: "liar-model", 2: "LIAR-0001", 3: "1.0.0",
             11: {0: 0}, 13: None, 16: "U"},
    (16, 0): {0: {0: "Host Device ID #1", 1: "Host Device Manufacturer #1"}},
}
READ_ONLY = {(1, 0, 0), (3, 0, 0), (3, 0, 1), (3, 0, 2), (3, 0, 3), (3, 0, 11), (3, 0, 13), (3, 0, 16)}


def value(o, i, r):
    if (o, i, r) == (3, 0, 13):
        return int(time.time())
    if (o, i, r) == (3, 0, 0) and "wrong-value" in WRONG:
        return "liar-corp"
    return objects[(o, i)][r]


def enc_value(v):
    if isinstance(v, bool):
        return b"\x01" if v else b"\x00"
    if isinstance(v, int):
        for n in (1, 2, 4, 8):
            if -(1 << (8 * n - 1)) <= v < (1 << (8 * n - 1)):
                return v.to_bytes(n, "big", signed=True)
    return str(v).encode()


def text_value(v):
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def tlv(kind, ident, body):
    h = kind << 6
    if ident > 255:
        h |= 0x20
    ib = ident.to_bytes(2 if ident > 255 else 1, "big")
    n = len(body)
    if n < 8:
        return bytes([h | n]) + ib + body
    lb = n.to_bytes(1 if n < 256 else 2 if n < 65536 else 3, "big")
    return bytes([h | (len(lb) << 3)]) + ib + lb + body


def tlv_resource(o, i, r):
    v = value(o, i, r)
    if isinstance(v, dict):
        inner = b"".join(tlv(1, k, enc_value(x)) for k, x in sorted(v.items()))
        return tlv(2, r, inner)
    return tlv(3, r, enc_value(v))


def tlv_instance(o, i):
    skip = (o, i) == (3, 0) and "missing" in WRONG
    return b"".join(tlv_resource(o, i, r) for r in sorted(objects[(o, i)]) if not (skip and r == 0))


def encode(typ, code, mid, token, options, payload=b""):
    out = bytearray([0x40 | (typ << 4) | len(token), code]) + struct.pack(">H", mid) + token
    last = 0
    for num, val in sorted(options, key=lambda x: x[0]):
        delta, length = num - last, len(val)
        last = num

        def nib(x):
            return (x, b"") if x < 13 else (13, bytes([x - 13])) if x < 269 else (14, struct.pack(">H", x - 269))
        dn, dx = nib(delta)
        ln, lx = nib(length)
        out += bytes([(dn << 4) | ln]) + dx + lx + val
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def decode(data):
    typ, tkl = (data[0] >> 4) & 3, data[0] & 15
    code, mid = data[1], struct.unpack(">H", data[2:4])[0]
    token = data[4:4 + tkl]
    pos, num, options = 4 + tkl, 0, []
    while pos < len(data) and data[pos] != 0xFF:
        b = data[pos]
        pos += 1
        d, ln = b >> 4, b & 15

        def ext(x, pos):
            if x == 13:
                return data[pos] + 13, pos + 1
            if x == 14:
                return struct.unpack(">H", data[pos:pos + 2])[0] + 269, pos + 2
            return x, pos
        d, pos = ext(d, pos)
        ln, pos = ext(ln, pos)
        num += d
        options.append((num, data[pos:pos + ln]))
        pos += ln
    payload = data[pos + 1:] if pos < len(data) else b""
    return typ, code, mid, token, options, payload


def uint(b):
    return int.from_bytes(b, "big") if b else 0


def uint_opt(v):
    return v.to_bytes((v.bit_length() + 7) // 8, "big") if v else b""


sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
server = (HOST, PORT)
next_mid = [0x1000]


def mid():
    next_mid[0] = (next_mid[0] + 1) & 0xFFFF
    return next_mid[0]


def parse_tlv(b):
    """[(kind, id, body)] of the TLV elements in B."""
    out, pos = [], 0
    while pos < len(b):
        h = b[pos]
        pos += 1
        idlen = 2 if h & 0x20 else 1
        ident = int.from_bytes(b[pos:pos + idlen], "big")
        pos += idlen
        ll = (h >> 3) & 3
        n = h & 7 if ll == 0 else int.from_bytes(b[pos:pos + ll], "big")
        pos += ll
        out.append((h >> 6, ident, b[pos:pos + n]))
        pos += n
    return out


lifetime = 300
if "bootstrap" in WRONG:
    sock.sendto(encode(0, 0x02, mid(), b"bs1", [(URI_PATH, b"bs"), (URI_QUERY, f"ep={EP}".encode())]), server)
    sock.settimeout(30)
    while True:
        t, code, m, tok, opts, body = decode(sock.recv(2048))
        if t != 0:
            continue
        uri = [v for n, v in opts if n == URI_PATH]
        done = code == 0x02 and uri == [b"bs"]
        if code == 0x03 and uri == [b"1"]:               # the Server Object: its Lifetime
            for _, _, inst in parse_tlv(body):
                for kind, rid, value_bytes in parse_tlv(inst):
                    if rid == 1:
                        lifetime = int.from_bytes(value_bytes, "big")
        sock.sendto(encode(2, 0x42 if code == 0x04 else 0x44, m, tok, []), server)
        if done:
            break
    print("BOOTSTRAPPED", flush=True)
    if "bs-no-register" in WRONG:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(1)

reg_opts = [(URI_PATH, b"rd"), (CF, uint_opt(LINK))] + [
    (URI_QUERY, q.encode()) for q in (f"ep={EP}", f"lt={lifetime}", "lwm2m=1.0", "b=U")]
sock.sendto(encode(0, 0x02, mid(), b"reg1", reg_opts, b"</1/0>,</3/0>,</16/0>"), server)
location = []
sock.settimeout(5)
while True:
    t, code, m, tok, opts, _ = decode(sock.recv(2048))
    if tok == b"reg1" and code == 0x41:
        location = [v for n, v in opts if n == LOC_PATH]
        break
print("REGISTERED", flush=True)


def stop(*_):
    sock.sendto(encode(0, 0x04, mid(), b"dreg", [(URI_PATH, p) for p in location]), server)
    print("DEREGISTERED", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)

attributes = {}      # path tuple -> {"pmin": s, "pmax": s}
observations = {}    # token -> dict(path, accept, seq, last, last_value)


def content(path, accept):
    """(code, content format, payload) of a Read of PATH."""
    if path[:1] == (0,):
        return 0x81, None, b""                      # 4.01 Security
    o = path[0]
    if (o, path[1] if len(path) > 1 else 0) not in objects:
        return 0x84, None, b""
    if len(path) >= 3 and path[2] not in objects[(o, path[1])]:
        return 0x84, None, b""
    if len(path) >= 3 and (o, path[1], path[2]) == (3, 0, 0) and "missing" in WRONG:
        return 0x84, None, b""
    if len(path) == 4:
        return 0x80, None, b""                      # 1.0: no instance reads
    if len(path) == 3:
        v = value(*path)
        if accept == TLV or (isinstance(v, dict) and accept != TEXT):
            if "wrong-format" in WRONG:
                return 0x45, TEXT, text_value(v).encode()
            return 0x45, TLV, tlv_resource(*path)
        if isinstance(v, dict):
            return 0x80, None, b""
        return 0x45, TEXT, text_value(v).encode()
    if accept not in (None, TLV):
        return 0x86, None, b""                      # 4.06
    if len(path) == 1:
        body = b"".join(tlv(0, i, tlv_instance(o, i)) for (n, i) in sorted(objects) if n == o)
    else:
        body = tlv_instance(o, path[1])
    if "wrong-format" in WRONG:
        return 0x45, TEXT, body
    return 0x45, TLV, body


def resources(elements):
    """Resource id -> value (text, or riid -> text) of TLV resource elements."""
    out = {}
    for kind, ident, body in elements:
        if kind == 2:
            out[ident] = {i: v.decode() for _, i, v in parse_tlv(body)}
        elif kind == 3:
            out[ident] = body.decode()
    return out


def create(o, payload):
    """(code, location) of a Create on object O."""
    top = parse_tlv(payload)
    if top and top[0][0] == 0:
        iid, res = top[0][1], resources(parse_tlv(top[0][2]))
    else:
        iid = next(i for i in range(65535) if (o, i) not in objects)
        res = resources(top)
    if (o, iid) in objects:
        return 0x80, []
    if "create-lost" not in WRONG:
        objects[(o, iid)] = res
    return 0x41, [(LOC_PATH, str(o).encode()), (LOC_PATH, str(iid).encode())]


def notify(tok, ob):
    code, cf, payload = content(ob["path"], ob["accept"])
    ob["seq"] += 1
    ob["mid"] = mid()
    opts = [(OBS, uint_opt(ob["seq"]))] + ([(CF, uint_opt(cf))] if cf is not None else [])
    sock.sendto(encode(1, code, ob["mid"], tok, opts, payload), server)
    ob["last"] = time.time()
    ob["last_value"] = payload


def periods(path):
    a = {}
    for n in range(len(path), 0, -1):
        for k, v in attributes.get(path[:n], {}).items():
            a.setdefault(k, v)
    return a.get("pmin", 0.0), a.get("pmax")


sock.settimeout(0.05)
while True:
    try:
        data, peer = sock.recvfrom(4096)
    except socket.timeout:
        data = None
    now = time.time()
    for tok, ob in list(observations.items()):
        if "fast-notify" in WRONG:
            if now - ob["last"] >= 0.2:
                notify(tok, ob)
            continue
        pmin, pmax = periods(ob["path"])
        changed = content(ob["path"], ob["accept"])[2] != ob["last_value"]
        if (changed and now - ob["last"] >= pmin) or (pmax and now - ob["last"] >= pmax):
            notify(tok, ob)
    if data is None:
        continue
    try:
        typ, code, m, tok, opts, payload = decode(data)
    except (IndexError, struct.error):
        continue
    if typ == 3:                                        # RST cancels
        observations = {t: o for t, o in observations.items() if o.get("mid") != m}
        continue
    if typ == 0 and code == 0:                          # CoAP ping
        sock.sendto(encode(3, 0, m, b"", []), server)
        continue
    if typ == 2 and tok == b"upd1" and code == 0x84 and "no-reregister" not in WRONG:
        sock.sendto(encode(0, 0x02, mid(), b"reg2", reg_opts, b"</1/0>,</3/0>,</16/0>"), server)
        continue
    if typ == 2 and tok == b"reg2" and code == 0x41:
        location = [v for n, v in opts if n == LOC_PATH]
        continue
    if typ == 2 or code < 1 or code > 31:
        continue
    path = tuple(int(v) for n, v in opts if n == URI_PATH and v.isdigit())
    query = [v.decode() for n, v in opts if n == URI_QUERY]
    accept = next((uint(v) for n, v in opts if n == ACCEPT), None)
    observe = next((uint(v) for n, v in opts if n == OBS), None)
    reply_type = 2 if typ == 0 else 1

    def reply(rcode, cf=None, body=b"", extra=()):
        o = list(extra) + ([(CF, uint_opt(cf))] if cf is not None else [])
        sock.sendto(encode(reply_type, rcode, m if typ == 0 else mid(), tok, o, body), server)

    if code == 1 and accept == LINK:                    # Discover
        o, links = path[0], []
        if (o, 0) in objects:
            for r in sorted(objects[(o, 0)]):
                if len(path) < 3 or path[2] == r:
                    links.append(f"</{o}/0/{r}>")
        reply(0x45, LINK, ",".join(links).encode())
    elif code == 1 and observe == 0:                    # Observe
        rc, cf, body = content(path, accept)
        if rc != 0x45:
            reply(rc)
            continue
        ob = {"path": path, "accept": accept, "seq": 1, "last": time.time(), "last_value": body}
        observations[tok] = ob
        reply(0x45, cf, body, [(OBS, uint_opt(1))])
    elif code == 1:                                     # Read, Cancel
        if observe == 1:
            observations.pop(tok, None)
        rc, cf, body = content(path, accept)
        reply(rc, cf, body)
    elif code == 3 and not payload and query:           # Write-Attributes
        a = attributes.setdefault(path, {})
        for q in query:
            k, _, v = q.partition("=")
            if v:
                a[k] = float(v)
            else:
                a.pop(k, None)
        reply(0x44)
    elif code == 3 and len(path) == 3:                  # Write (text)
        if (path[0], path[1], path[2]) in READ_ONLY:
            reply(0x85)
        elif (path[0], path[1]) in objects:
            old = objects[(path[0], path[1])].get(path[2])
            t = payload.decode()
            objects[(path[0], path[1])][path[2]] = (t in ("1", "true")) if isinstance(old, bool) else int(t) if isinstance(old, int) else t
            reply(0x44)
        else:
            reply(0x84)
    elif code == 2 and len(path) == 3:                  # Execute
        reply(0x44)
        if path == (1, 0, 8):                           # Registration Update Trigger
            sock.sendto(encode(0, 0x02, mid(), b"upd1", [(URI_PATH, p) for p in location]), server)
    elif code == 2 and len(path) == 1 and (path[0], 0) in objects:   # Create
        rc, loc = create(path[0], payload)
        reply(rc, None, b"", loc)
    elif code == 4 and len(path) == 2:                  # Delete
        if (path[0], path[1]) not in objects or path[0] in (1, 3):
            reply(0x84 if (path[0], path[1]) not in objects else 0x85)
        else:
            if "delete-kept" not in WRONG:
                del objects[(path[0], path[1])]
            reply(0x42)
    else:
        reply(0x85)
