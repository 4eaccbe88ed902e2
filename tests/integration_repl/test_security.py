#!/usr/bin/python3
"""Replication 8: who may follow the primary, and what a hostile peer of the replication port
can do.

- ns3 holds a wrong cluster key: it never serves the zone; the primary logs the wrong key.
- ns4 holds the key but is not a member: it never serves the zone; the primary logs it with
  "fennecctl node add"; once added with fennecctl node add it follows.
- ns2, a real member, reaches the primary through a recording TCP proxy (a Python thread),
  so its hello and proof frames are captured byte for byte. Replayed on a new connection
  (the primary's nonce is fresh each time) they are refused: an error frame, the connection
  closed, nothing of the journal sent, and the primary logs the wrong key.
- A Python client that speaks the protocol (frames: 4-byte big-endian length + protobuf,
  proto/replication.proto, messages encoded here by hand) and holds the key, as member py1,
  checks the primary's proof and gets entries: the replay is refused for its nonce, not
  because this client cannot speak.
- Hostile bytes on the replication port: a 4 GiB length prefix, a length just over the
  handshake limit, random garbage, a frame that is not a replication message, and data
  before authentication: each connection is closed within CLOSE_WITHIN seconds without a
  journal byte sent, and logged; the primary keeps answering DNS and ns2 keeps following.

usage: test_security.py FENNECD [FENNECCTL]
Ports: 127.0.0.1:16140-16159 (slot 7 of 16000-16199); the proxy listens on 16158.
"""
import hashlib
import hmac
import os
import random
import socket
import struct
import sys
import threading
import time

import repl

CLOSE_WITHIN = 3.0
HANDSHAKE_MAX = 4096  # STREAM_HANDSHAKE_MAX

# Frame kinds (field numbers of Frame in proto/replication.proto).
HELLO, PROOF, ENTRY, SNAPSHOT, HEARTBEAT, ACK, ERROR = 1, 2, 3, 4, 5, 6, 7
KIND_NAMES = {1: "hello", 2: "proof", 3: "entry", 4: "snapshot", 5: "heartbeat", 6: "ack",
              7: "error"}


# ---- protobuf by hand: varints and length-delimited fields are all these messages need

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, n):
    return varint(num << 3 | 0) + varint(n)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def parse(msg):
    """A message's fields: {number: [value, ...]} (varints as int, the rest as bytes)."""
    fields, i = {}, 0
    while i < len(msg):
        key, i = read_varint(msg, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(msg, i)
        elif wt == 2:
            n, i = read_varint(msg, i)
            v, i = msg[i:i + n], i + n
        elif wt == 1:
            v, i = msg[i:i + 8], i + 8
        elif wt == 5:
            v, i = msg[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        fields.setdefault(num, []).append(v)
    return fields


def read_varint(b, i):
    n, shift = 0, 0
    while True:
        x = b[i]
        i += 1
        n |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return n, i


def frame(kind, body):
    msg = field_bytes(kind, body)
    return struct.pack(">I", len(msg)) + msg


def hello(node_id, nonce, applied=0):
    return frame(HELLO, field_varint(1, 1) + field_bytes(2, node_id.encode()) +
                 field_bytes(3, nonce) + field_varint(4, applied))


def proof(mac):
    return frame(PROOF, field_bytes(1, mac))


def split_frames(data):
    """Whole frames in DATA: [(kind, body)], and the bytes left over."""
    out, i = [], 0
    while len(data) - i >= 4:
        n = struct.unpack(">I", data[i:i + 4])[0]
        if len(data) - i - 4 < n:
            break
        f = parse(data[i + 4:i + 4 + n])
        kind = next(iter(f))
        out.append((kind, f[kind][0]))
        i += 4 + n
    return out, data[i:]


def mac_of(key, role, their_nonce, my_nonce, my_id):
    return hmac.new(key, role + their_nonce + my_nonce + my_id.encode(),
                    hashlib.sha256).digest()


class Session:
    """A raw TCP session with the primary's replication port."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.local = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.buf = b""
        self.frames = []
        self.closed = False

    def read_until(self, pred, seconds):
        """Reads frames until PRED(frames) or SECONDS pass or the peer closes."""
        deadline = time.monotonic() + seconds
        self.sock.settimeout(0.1)
        while not pred(self.frames) and time.monotonic() < deadline and not self.closed:
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                break
            if not b:
                self.closed = True
                break
            self.buf += b
            got, self.buf = split_frames(self.buf)
            self.frames += got
        return pred(self.frames)

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (ConnectionResetError, BrokenPipeError):
            self.closed = True
            return False

    def kinds(self):
        return [KIND_NAMES.get(k, k) for k, _ in self.frames]

    def close(self):
        self.sock.close()


class Proxy:
    """Forwards 127.0.0.1:LISTEN to the primary's replication port and records what the
    first client sends."""

    def __init__(self, listen_port, target_port):
        self.target = target_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", listen_port))
        self.lsock.listen(8)
        self.recorded = b""
        self.connections = 0
        self.socks = []
        self.quit = False
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.quit:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                a.close()
                continue
            b.settimeout(None)
            self.connections += 1
            first = self.connections == 1
            self.socks += [a, b]
            threading.Thread(target=self.pump, args=(a, b, first), daemon=True).start()
            threading.Thread(target=self.pump, args=(b, a, False), daemon=True).start()

    def pump(self, src, dst, record):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if record:
                with self.lock:
                    self.recorded += data
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.quit = True
        self.lsock.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def never_served(c, node):
    rc, rr = node.query(repl.ZONE + ".", "SOA")
    return rc != "NOERROR" and not rr


def body(c):
    key = c.key.encode()
    p = c.primary()
    p.start()
    proxy = Proxy(c.spare_port(0), p.repl_port)
    c.cleanups.append(proxy.close)
    s2 = c.secondary("ns2", primary_addr="127.0.0.1:%d" % c.spare_port(0))
    wrong_key = c.write("wrong.key", os.urandom(32).hex() + "\n")
    s3 = c.secondary("ns3", key_file=wrong_key)
    s4 = c.secondary("ns4")
    c.register(s2)
    c.register(s3)
    rc, out, err = c.ctl(p, "node", "add", "py1", "127.0.0.1:%d" % c.spare_port(1))
    c.check(rc == 0, "fennecctl node add py1 (the Python client)", (rc, out, err))
    for i in range(20):
        c.add("r%d" % i, repl.addr_of(i))
    for s in (s2, s3, s4):
        s.start()
    c.check(c.wait_converged([s2]) is not None, "ns2 follows through the recording proxy")
    c.phase("cluster up")

    # ---- a wrong key, an unknown id
    time.sleep(1.0)
    plog = p.log_text()
    c.check(never_served(c, s3), "ns3 (wrong key) does not serve the zone", s3.query(
        repl.ZONE + ".", "SOA"))
    c.check(any("claiming node id ns3" in line and "wrong cluster key" in line
                for line in plog.splitlines()),
            "the primary logs ns3's wrong cluster key")
    row3 = (p.nodes() or {}).get("ns3") or {}
    c.check(row3.get("connected") is False and row3.get("applied_index") in (0, None),
            "the primary never shows ns3 connected", row3)
    c.check(never_served(c, s4), "ns4 (not a member) does not serve the zone")
    c.check(any("node ns4" in line and "fennecctl node add ns4" in line
                for line in plog.splitlines()),
            "the primary logs ns4 as not a member, naming \"fennecctl node add\"")
    c.check(s4.repl().get("connected") is False, "ns4 is not connected", s4.repl())

    # ---- a replayed hello and proof
    recorded, _ = split_frames(proxy.recorded)
    kinds = [k for k, _ in recorded]
    c.check(kinds[:2] == [HELLO, PROOF], "the proxy recorded ns2's hello and proof",
            [KIND_NAMES.get(k, k) for k in kinds[:5]])
    replay = b"".join(frame(k, b) for k, b in recorded[:2])
    s = Session(p.repl_port)
    got_hello = s.read_until(lambda fs: any(k == HELLO for k, _ in fs), 3)
    c.check(got_hello, "the primary opens a session with its hello", s.kinds())
    s.send(replay)
    s.read_until(lambda fs: False, CLOSE_WITHIN)
    c.check(s.closed, "the replayed hello and proof: the primary closes the connection",
            s.kinds())
    c.check(not any(k in (ENTRY, SNAPSHOT, HEARTBEAT) for k, _ in s.frames),
            "the replayed hello and proof get nothing of the journal", s.kinds())
    errors = [parse(b).get(1, [b""])[0].decode(errors="replace") for k, b in s.frames
              if k == ERROR]
    c.check(any("authentication failed" in e for e in errors),
            "the replay gets an error frame \"authentication failed\"", errors)
    s.close()
    time.sleep(0.2)
    c.check(any(s.local in line and "claiming node id ns2" in line and "wrong cluster key" in
                line for line in p.log_text().splitlines()),
            "the primary logs the replay as a wrong key from %s" % s.local)

    # ---- the same client with the key and its own nonce is served (the control)
    s = Session(p.repl_port)
    c.check(s.read_until(lambda fs: any(k == HELLO for k, _ in fs), 3),
            "py1: the primary's hello")
    ph = parse(next(b for k, b in s.frames if k == HELLO))
    p_nonce, p_id = ph[3][0], ph[2][0].decode()
    my_nonce = os.urandom(32)
    s.send(hello("py1", my_nonce, 0))
    s.send(proof(mac_of(key, b"fennec-secondary-v1", p_nonce, my_nonce, "py1")))
    s.read_until(lambda fs: any(k == ENTRY for k, _ in fs), 3)
    pp = [b for k, b in s.frames if k == PROOF]
    c.check(pp and parse(pp[0])[1][0] == mac_of(key, b"fennec-primary-v1", my_nonce, p_nonce,
                                                 p_id),
            "py1: the primary's proof is HMAC-SHA256(key, role, py1's nonce, its nonce, its "
            "id)")
    entries = [parse(b) for k, b in s.frames if k == ENTRY]
    c.check(entries and entries[0][1][0] == 1, "py1, with the key and a fresh nonce, is "
            "sent the journal from index 1", s.kinds()[:6])
    s.close()

    # ---- hostile bytes
    rng = random.Random(8)
    hostile = [
        ("a 4 GiB length prefix", b"\xff\xff\xff\xff"),
        ("a length one byte over the handshake limit", struct.pack(">I", HANDSHAKE_MAX + 1) +
         b"\0" * 64),
        ("random garbage", rng.randbytes(300)),
        ("a frame that is not a replication message", struct.pack(">I", 16) +
         rng.randbytes(16)),
        ("an ack before authentication", frame(ACK, field_varint(1, 5))),
        ("a proof before any hello", proof(b"\0" * 32)),
    ]
    for what, data in hostile:
        s = Session(p.repl_port)
        s.read_until(lambda fs: any(k == HELLO for k, _ in fs), 3)
        s.send(data)
        s.read_until(lambda fs: False, CLOSE_WITHIN)
        c.check(s.closed, "%s: the primary closes the connection within %.0f s" %
                (what, CLOSE_WITHIN), s.kinds())
        c.check(not any(k in (ENTRY, SNAPSHOT, HEARTBEAT, PROOF) for k, _ in s.frames),
                "%s: nothing but a hello (and an error) is sent" % what, s.kinds())
        s.close()
        time.sleep(0.1)
        c.check(any(s.local in line for line in p.log_text().splitlines()),
                "%s: the primary logs the session from %s" % (what, s.local))
    c.phase("hostile sessions done")

    # ---- the primary keeps serving DNS, and ns2 keeps following
    status, rr = p.dig(repl.ZONE + ".", "SOA")
    c.check(status == "NOERROR" and rr, "the primary still answers DNS (dig)", (status, rr))
    st, _ = c.add("after-hostile", "192.0.2.80")
    c.check(st == 200 and repl.wait_for(lambda: s2.query("after-hostile") ==
                                        ("NOERROR", ["192.0.2.80"]), 5),
            "ns2 still follows the primary")
    row2 = (p.nodes() or {}).get("ns2") or {}
    c.check(row2.get("connected") is True, "the primary still shows ns2 connected", row2)
    c.check(never_served(c, s3) and never_served(c, s4),
            "ns3 and ns4 still serve nothing")

    # ---- ns4 added: it follows (it retries by itself)
    c.register(s4)
    ok = repl.wait_for(lambda: s4.query("after-hostile") == ("NOERROR", ["192.0.2.80"]), 10)
    c.check(ok, "once added with fennecctl node add, ns4 follows on its own (within 10 s)",
            s4.repl())
    c.check(never_served(c, s3), "ns3 (wrong key) still serves nothing")
    c.phase("membership")


if __name__ == "__main__":
    sys.exit(repl.Cluster("security", 7, sys.argv).run(body))
