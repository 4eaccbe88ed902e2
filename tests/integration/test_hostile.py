#!/usr/bin/python3
"""fennec integration test: hostile input against a running fennecd.

UDP: at least 100,000 packets (random bytes of random lengths, and crafted ones: short
headers, counts beyond the packet, compression loops, forward pointers, pointers to
themselves or beyond the end, labels over 63, names over 255, several OPT records, OPT
outside the additional section, trailing garbage, huge counts, QR=1, mutated valid queries)
sent without blocking in a bounded time, answers drained as they come. Every answer must
have a complete header, QR=1, the id of a packet that could be answered, a known rcode, and
parse as a DNS message; packets with QR=1 or shorter than a header must not be answered.

TCP: a client that sends half a length prefix and stalls, one that stalls mid-message, one
that floods pipelined queries without reading, idle connections, a client that writes one
byte at a time, and malformed framed messages; meanwhile fresh TCP and UDP clients must get
correct answers within 1 s each.

At the end fennecd must still be running, must answer a valid query correctly over UDP and
TCP, and its log must hold no sanitizer report.

usage: test_hostile.py [--fennecd PATH] [--source-dir DIR] [--packets N] [--seed S]
"""

import argparse
import errno
import os
import random
import select
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import dns.exception  # noqa: E402
import dns.message  # noqa: E402

import servers  # noqa: E402
from dnsutil import (build_query, header, name_wire, opt_rr, parse_any_opcode,  # noqa: E402
                     tcp_exchange, udp_exchange)

PORT = servers.FENNEC_PORT + 10  # 15613: apart from test_compare's fennecd
HOST = "127.0.0.1"
KNOWN_RCODES = {0: "NOERROR", 1: "FORMERR", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
                9: "NOTAUTH"}
NAMES = ["www.example.test.", "example.test.", "nothere.example.test.", "foo.wild.example.test.",
         "sub.example.test.", "alias1.example.test.", "loop1.example.test.", "bigtxt.example.test.",
         "manya.example.test.", "www.nothere.invalid.", "WwW.ExAmPlE.TeSt.", "child.example.test.",
         "unknown.example.test.", "*.wild.example.test.", "."]


# ---------------------------------------------------------------------------------------------
# Packet generators. Each returns the packet for id QID.

def g_random(rng, qid):
    n = rng.choice((rng.randrange(0, 12), rng.randrange(12, 64), rng.randrange(0, 600),
                    rng.randrange(0, 4096)))
    return struct.pack("!H", qid) + rng.randbytes(max(0, n - 2)) if n >= 2 else rng.randbytes(n)


def g_short_header(rng, qid):
    return struct.pack("!H", qid)[: rng.randrange(0, 3)] + rng.randbytes(rng.randrange(0, 10))


def q_section(rng):
    return name_wire(rng.choice(NAMES)) + struct.pack("!HH", rng.choice((1, 28, 2, 6, 15, 16, 255,
                                                                         65400, 0, 41, 252)),
                                                      rng.choice((1, 1, 1, 3, 255, 254, 4)))


def g_counts_beyond(rng, qid):
    counts = [rng.choice((0, 1, 2, 3, 100, 65535)) for _ in range(4)]
    body = q_section(rng) if rng.random() < 0.7 else b""
    if rng.random() < 0.3:
        body += opt_rr()
    return header(qid, 0, 0, *counts) + body


def g_comp_loop(rng, qid):
    kind = rng.randrange(6)
    if kind == 0:  # pointer to itself
        name = b"\xc0\x0c"
    elif kind == 1:  # two pointers pointing at each other
        name = b"\xc0\x0e\xc0\x0c"
    elif kind == 2:  # label then pointer back to its own start
        name = b"\x03www\xc0\x0c"
    elif kind == 3:  # forward pointer into the type/class bytes or beyond
        name = b"\xc0" + bytes([rng.randrange(14, 40)])
    elif kind == 4:  # pointer beyond the packet
        name = struct.pack("!H", 0xC000 | rng.randrange(100, 0x3FFF))
    else:  # long chain of pointers, each to the previous
        name = b"\x01a\x00"
        for i in range(rng.randrange(2, 200)):
            name += struct.pack("!H", 0xC000 | (12 + len(name) - 2 if i else 12))
        name = name[3:] if rng.random() < 0.5 else name
    pkt = header(qid) + name + struct.pack("!HH", 1, 1)
    if rng.random() < 0.4:  # the same tricks in an additional record's owner
        pkt = header(qid, ar=1) + name_wire("www.example.test.") + struct.pack("!HH", 1, 1)
        pkt += name + struct.pack("!HHIH", 41, 1232, 0, 0)
    return pkt


def g_long_label(rng, qid):
    ln = rng.randrange(64, 256)
    lab = bytes([ln]) + b"a" * rng.choice((ln, 63, 64, 10))
    return header(qid) + lab + b"\x07example\x04test\x00" + struct.pack("!HH", 1, 1)


def g_long_name(rng, qid):
    labels = b""
    while len(labels) < rng.choice((250, 256, 300, 600)):
        n = rng.randrange(1, 64)
        labels += bytes([n]) + b"x" * n
    pkt = header(qid) + labels + b"\x00" + struct.pack("!HH", 1, 1)
    if rng.random() < 0.3:  # over 255 only through pointers
        part = b"\x3f" + b"y" * 63
        q = header(qid, qd=1, ar=1) + part + part + b"\x00" + struct.pack("!HH", 1, 1)
        q += part + part + b"\xc0\x0c" + struct.pack("!HHIH", 41, 1232, 0, 0)
        pkt = q
    return pkt


def g_opts(rng, qid):
    n = rng.randrange(2, 6)
    kind = rng.randrange(5)
    q = q_section(rng)
    if kind == 0:
        return header(qid, ar=n) + q + b"".join(opt_rr(rng.choice((512, 1232, 4096)))
                                                for _ in range(n))
    if kind == 1:  # OPT in the answer or authority section
        return header(qid, an=1) + q + opt_rr() if rng.random() < 0.5 else \
            header(qid, ns=1) + q + opt_rr()
    if kind == 2:  # rdlen beyond the packet
        return header(qid, ar=1) + q + opt_rr()[:-2] + struct.pack("!H", rng.randrange(1, 65535))
    if kind == 3:  # options overlapping the end, odd lengths
        data = b""
        for _ in range(rng.randrange(1, 5)):
            data += struct.pack("!HH", rng.randrange(0, 65535), rng.randrange(0, 300))
            data += rng.randbytes(rng.randrange(0, 20))
        return header(qid, ar=1) + q + b"\x00" + struct.pack("!HHIH", 41, 1232, 0, len(data)) + data
    return header(qid, ar=1) + q + opt_rr(version=rng.randrange(256), do=rng.random() < 0.5,
                                          ext_rcode=rng.randrange(256),
                                          payload=rng.choice((0, 1, 511, 65535)))


def g_trailing(rng, qid):
    q = build_query(qid, rng.choice(NAMES), "A", edns={"payload": 1232}
                    if rng.random() < 0.5 else None)
    return q + rng.randbytes(rng.randrange(1, 300))


def g_qr(rng, qid):
    return build_query(qid, rng.choice(NAMES), "A", flags=("QR",) + (("AA",) if rng.random() < .5
                                                                      else ()))


def g_valid(rng, qid):
    return build_query(qid, rng.choice(NAMES), rng.choice(("A", "AAAA", "TXT", "MX", "ANY", "NS",
                                                           "SOA", "TYPE65400", "AXFR", "IXFR")),
                       rng.choice(("IN", "IN", "CH", "ANY")),
                       opcode=rng.choice((0, 0, 0, 0, 1, 2, 4, 5, 15)),
                       flags=tuple(f for f in ("RD", "CD", "AD", "TC") if rng.random() < 0.2),
                       edns=rng.choice((None, {"payload": 1232}, {"payload": 100, "do": True},
                                        {"payload": 1232, "version": 1})))


def g_mutated(rng, qid):
    p = bytearray(g_valid(rng, qid))
    for _ in range(rng.randrange(1, 6)):
        i = rng.randrange(2, len(p))
        p[i] = rng.randrange(256)
    if rng.random() < 0.3:
        p = p[: rng.randrange(2, len(p))]
    return bytes(p)


GENERATORS = [(g_random, 30), (g_short_header, 5), (g_counts_beyond, 8), (g_comp_loop, 10),
              (g_long_label, 5), (g_long_name, 5), (g_opts, 10), (g_trailing, 5), (g_qr, 5),
              (g_valid, 5), (g_mutated, 12)]


# ---------------------------------------------------------------------------------------------

class Failures:
    def __init__(self):
        self.items = []

    def add(self, what):
        self.items.append(what)
        if len(self.items) <= 30:
            print(f"hostile: FAIL: {what}")


def valid_answer_ok(data):
    """True when DATA is a correct answer to 'www.example.test. A' (AA, 192.0.2.80)."""
    if data is None:
        return False
    try:
        m = dns.message.from_wire(data)
    except dns.exception.DNSException:
        return False
    return (m.rcode() == 0 and m.flags & 0x0400 and len(m.answer) == 1 and
            [r.address for r in m.answer[0]] == ["192.0.2.80"])


def check_valid(tag, fails, timeout=1.0):
    for transport, fn in (("UDP", udp_exchange), ("TCP", tcp_exchange)):
        t0 = time.monotonic()
        qid = random.randrange(65536)
        ans = fn(build_query(qid, "www.example.test.", "A", edns={"payload": 1232}), HOST, PORT,
                 timeout)
        dt = time.monotonic() - t0
        if not valid_answer_ok(ans):
            fails.add(f"{tag}: no correct answer to www.example.test. A over {transport} "
                      f"within {timeout} s")
        else:
            print(f"hostile: {tag}: valid query over {transport} answered in {dt * 1000:.1f} ms")


def udp_flood(rng, count, budget_s, fails):
    socks = []
    for _ in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.connect((HOST, PORT))
        s.setblocking(False)
        socks.append(s)
    # answerable[sock index] = set of ids of packets the server may answer
    answerable = [set() for _ in socks]
    gens = [g for g, w in GENERATORS for _ in range(w)]
    by_gen = {g.__name__: 0 for g, _ in GENERATORS}
    stats = {"sent": 0, "send_errors": 0, "answers": 0, "bad": 0}
    rcodes = {}
    examples = []

    def drain(i, s):
        while True:
            try:
                data = s.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                fails.add("UDP: connection refused (is fennecd down?)")
                return
            stats["answers"] += 1
            problem = None
            if len(data) < 12:
                problem = f"answer of {len(data)} bytes"
            else:
                qid, fl = struct.unpack("!HH", data[:4])
                rc = fl & 0xF
                if not fl & 0x8000:
                    problem = "answer without QR"
                elif qid not in answerable[i]:
                    problem = f"answer with id {qid} to no answerable packet (QR=1 or short?)"
                elif rc not in KNOWN_RCODES:
                    problem = f"rcode {rc}"
                else:
                    try:
                        m = parse_any_opcode(data)
                        name = KNOWN_RCODES.get(m.rcode(), f"rcode{m.rcode()}")
                        if m.rcode() == 16:
                            name = "BADVERS"
                        rcodes[name] = rcodes.get(name, 0) + 1
                    except (dns.exception.DNSException, ValueError) as e:
                        problem = f"unparseable answer ({type(e).__name__}: {e})"
            if problem:
                stats["bad"] += 1
                if len(examples) < 10:
                    examples.append(f"{problem}: {data[:64].hex()}")

    t0 = time.monotonic()
    deadline = t0 + budget_s
    i = 0
    while stats["sent"] < count and time.monotonic() < deadline:
        for _ in range(64):
            gen = rng.choice(gens)
            qid = rng.randrange(65536)
            pkt = gen(rng, qid)
            k = i % len(socks)
            i += 1
            if len(pkt) >= 12 and not pkt[2] & 0x80:
                answerable[k].add(struct.unpack("!H", pkt[:2])[0])
            try:
                socks[k].send(pkt)
                stats["sent"] += 1
                by_gen[gen.__name__] += 1
            except BlockingIOError:
                stats["send_errors"] += 1
            except OSError as e:
                if e.errno not in (errno.ECONNREFUSED, errno.ENOBUFS, errno.EMSGSIZE):
                    raise
                stats["send_errors"] += 1
        for k, s in enumerate(socks):
            drain(k, s)
        if i % 2048 == 0:
            time.sleep(0.002)  # let the server breathe: loss is allowed, a stall is not
    end_send = time.monotonic()
    quiet_until = time.monotonic() + 1.0
    while time.monotonic() < quiet_until:
        r, _, _ = select.select(socks, [], [], 0.1)
        for s in r:
            drain(socks.index(s), s)
    for s in socks:
        s.close()
    print(f"hostile: UDP: sent {stats['sent']} packets in {end_send - t0:.1f} s "
          f"({stats['send_errors']} send errors), {stats['answers']} answers "
          f"({stats['sent'] - stats['answers']} dropped or shed), {stats['bad']} bad answers")
    print("hostile: UDP: packets by kind: " + ", ".join(f"{k[2:]} {v}" for k, v in by_gen.items()))
    print("hostile: UDP: answers by rcode: " + ", ".join(f"{k} {v}" for k, v in
                                                         sorted(rcodes.items())))
    if stats["sent"] < count:
        fails.add(f"UDP: only {stats['sent']} of {count} packets sent in {budget_s} s")
    for e in examples:
        fails.add(f"UDP: bad answer: {e}")
    if stats["answers"] == 0:
        fails.add("UDP: no answer at all")
    return stats


def tcp_connect():
    s = socket.create_connection((HOST, PORT), timeout=2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def tcp_attacks(rng, fails):
    """Opens the hostile TCP clients; returns them (the caller closes them)."""
    held = []
    q = build_query(0x4444, "www.example.test.", "A")
    framed = struct.pack("!H", len(q)) + q
    half = tcp_connect()
    half.send(framed[:1])  # half a length prefix, then silence
    held.append(half)
    mid = tcp_connect()
    mid.send(framed[: 2 + len(q) // 2])  # a full prefix and half the message
    held.append(mid)
    for _ in range(50):  # idle connections
        held.append(tcp_connect())
    flood = tcp_connect()
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood.setblocking(False)
    sent = 0
    t_end = time.monotonic() + 2.0
    burst = b"".join(struct.pack("!H", len(p)) + p for p in
                     (build_query(n & 0xFFFF, "bigtxt.example.test.", "TXT") for n in range(256)))
    while time.monotonic() < t_end:
        try:
            sent += flood.send(burst)
        except (BlockingIOError, InterruptedError):
            break  # the server stopped reading from us: its buffers are full
        except OSError:
            break  # the server closed the connection: also fine
    held.append(flood)
    print(f"hostile: TCP: flood client wrote {sent} bytes (~{sent // len(burst) * 256} "
          f"pipelined queries) without reading")
    return held


def tcp_malformed(rng, fails):
    """Framed garbage over TCP: each answer is a response to one of the messages sent on its
    connection (its ID), with a known rcode (FORMERR or REFUSED for a compression trick);
    messages without a whole header, and responses, are never answered; a connection the
    server closes is counted. Never a crash."""
    counts = {"answered": 0, "closed": 0}
    for n in range(200):
        s = tcp_connect()
        expect = []  # (id, allowed rcodes) of the messages that may be answered
        try:
            for _ in range(10):
                kind = rng.randrange(4)
                if kind == 0:
                    msg = b""
                elif kind == 1:
                    msg = rng.randbytes(rng.randrange(1, 12))
                elif kind == 2:
                    msg = g_comp_loop(rng, rng.randrange(65536))
                else:
                    msg = g_mutated(rng, rng.randrange(65536))
                if len(msg) >= 12 and not msg[2] & 0x80:
                    allowed = {1, 5} if kind == 2 else set(KNOWN_RCODES)
                    expect.append((struct.unpack("!H", msg[:2])[0], allowed))
                s.sendall(struct.pack("!H", len(msg)) + msg)
            s.settimeout(0.2)
            while True:
                ln = s.recv(2)
                if not ln:
                    counts["closed"] += 1
                    break
                if len(ln) < 2:
                    ln += s.recv(1)
                want = struct.unpack("!H", ln)[0]
                got = b""
                while len(got) < want:
                    c = s.recv(want - len(got))
                    if not c:
                        break
                    got += c
                counts["answered"] += 1
                if len(got) < 12:
                    fails.add(f"TCP malformed: an answer of {len(got)} bytes")
                    continue
                qid, flags = struct.unpack("!HH", got[:4])
                match = next((e for e in expect if e[0] == qid), None)
                if not flags & 0x8000:
                    fails.add(f"TCP malformed: an answer with QR clear (id {qid})")
                elif match is None:
                    fails.add(f"TCP malformed: an answer with id {qid}, which no answerable "
                              f"message sent on the connection had")
                elif (flags & 0xF) not in match[1]:
                    fails.add(f"TCP malformed: rcode {flags & 0xF} for id {qid}, one of "
                              f"{sorted(match[1])} expected")
                if match:
                    expect.remove(match)
        except (ConnectionResetError, BrokenPipeError):
            counts["closed"] += 1
        except socket.timeout:
            pass
        finally:
            s.close()
    print(f"hostile: TCP: 2000 framed malformed messages on 200 connections: "
          f"{counts['answered']} answers read and checked, {counts['closed']} connections "
          f"closed by the server")
    if counts["answered"] == 0:
        fails.add("TCP malformed: not one answer (FORMERR was expected for some)")


def slow_writer(fails):
    """A query written one byte every 20 ms must still be answered."""
    q = build_query(0x5151, "www.example.test.", "A", edns={"payload": 1232})
    framed = struct.pack("!H", len(q)) + q
    s = tcp_connect()
    try:
        for b in framed:
            s.send(bytes([b]))
            time.sleep(0.02)
        s.settimeout(2)
        ln = s.recv(2)
        data = b""
        if len(ln) == 2:
            want = struct.unpack("!H", ln)[0]
            while len(data) < want:
                c = s.recv(want - len(data))
                if not c:
                    break
                data += c
        if not valid_answer_ok(data):
            fails.add("TCP: a query written one byte at a time was not answered correctly")
        else:
            print("hostile: TCP: a query written one byte at a time was answered")
    except OSError as e:
        fails.add(f"TCP: slow writer: {e}")
    finally:
        s.close()


def rss_kib(srv):
    try:
        with open(f"/proc/{srv.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fennecd")
    ap.add_argument("--source-dir", default=os.path.normpath(os.path.join(HERE, "..", "..")))
    ap.add_argument("--packets", type=int, default=100000)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds allowed for the UDP part")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FENNEC_HOSTILE_SEED", "1")))
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    zonedir = os.path.join(os.path.abspath(args.source_dir), "tests", "integration", "zones")
    rng = random.Random(args.seed)
    print(f"hostile: seed {args.seed}")
    srv = servers.start_fennecd(args.fennecd, zonedir, port=PORT, workers=args.workers)
    fails = Failures()

    check_valid("before", fails)
    udp_flood(rng, args.packets, args.budget, fails)
    if not srv.alive():
        fails.add(f"fennecd died during the UDP flood:\n{srv.log_tail()}")
    else:
        check_valid("after the UDP flood", fails)

    if srv.alive():
        rss0 = rss_kib(srv)
        held = tcp_attacks(rng, fails)
        rss1 = rss_kib(srv)
        print(f"hostile: TCP: fennecd RSS {rss0} KiB before the attack, {rss1} KiB during it")
        if rss0 and rss1 and rss1 - rss0 > 256 * 1024:
            fails.add(f"TCP: fennecd grew by {(rss1 - rss0) // 1024} MiB under a client that "
                      f"does not read its answers (answers must not queue without bound)")
        worst = 0.0
        for n in range(10):  # fresh clients while the hostile ones hold their connections
            for transport, fn in (("TCP", tcp_exchange), ("UDP", udp_exchange)):
                t0 = time.monotonic()
                ans = fn(build_query(0x6000 + n, "www.example.test.", "A"), HOST, PORT, 1.0)
                dt = time.monotonic() - t0
                worst = max(worst, dt)
                if not valid_answer_ok(ans):
                    fails.add(f"TCP attack: a fresh {transport} client got no correct answer "
                              f"within 1 s (round {n})")
            time.sleep(0.1)
        print(f"hostile: TCP: 10 rounds of fresh TCP and UDP clients during the attack, "
              f"slowest answer {worst * 1000:.1f} ms")
        slow_writer(fails)
        tcp_malformed(rng, fails)
        for s in held:
            s.close()
        time.sleep(0.2)

    if not srv.alive():
        fails.add(f"fennecd is not running at the end:\n{srv.log_tail()}")
    else:
        check_valid("at the end", fails)
    was_alive = srv.alive()
    srv.stop()  # SIGTERM: a clean exit also runs the leak checker of sanitizer builds
    rc = srv.proc.returncode
    if was_alive and rc not in (0, -15):
        fails.add(f"fennecd exited with status {rc} after SIGTERM (0 expected)")
    log = srv.log_tail(100000)
    for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "Segmentation fault"):
        if marker in log:
            fails.add(f"fennecd log holds a sanitizer report ('{marker}'):\n{srv.log_tail(60)}")
            break
    if fails.items:
        print(f"hostile: FAIL: {len(fails.items)} problems")
        return 1
    print("hostile: PASS")
    return 0


if __name__ == "__main__":
    servers.run_main("hostile", main)
