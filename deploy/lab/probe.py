#!/usr/bin/python3
"""DNS client for the anycast lab: many flows to the service address, NSID on every query.

Run it in the client namespace:

    ip netns exec fennec-cl deploy/lab/probe.py nodes [--expect N] [--timeout S]
        Asks from --flows source ports (UDP, then TCP) until --expect distinct nodes have
        answered (NSID); prints which flow reached which node. Exit 0 when every node was
        seen and every reply came from the service address, 1 otherwise.

    ip netns exec fennec-cl deploy/lab/probe.py run --duration S [--interval MS] [--out F]
        Every --interval ms, one query per flow, for --duration s; writes JSON: for each
        flow its source port and [send time, receive time or null, node] per query (times
        are CLOCK_MONOTONIC seconds, the same clock in every namespace), plus the replies
        that came from another address than the service address.

A flow is one UDP socket bound to its own source port: the router hashes source and
destination address and port, so a flow stays on one node while the routes stay the same.
"""
import argparse
import json
import random
import select
import socket
import struct
import sys
import time

NSID = 3


QTYPES = {"A": 1, "SOA": 6, "AAAA": 28}


def build_query(qid, qname, qtype=6):
    """A query for QNAME (SOA by default) with an OPT record asking for NSID."""
    wire = b"".join(bytes([len(x)]) + x.encode() for x in qname.rstrip(".").split(".")) + b"\0"
    hdr = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1)
    opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 4) + struct.pack("!HH", NSID, 0)
    return hdr + wire + struct.pack("!HH", qtype, 1) + opt


def skip_name(msg, off):
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the end")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += 1 + n


def parse_reply(msg, addrs=None):
    """(id, rcode, nsid text or None, answer count); the A records of the answer section are
    appended to ADDRS when it is a list."""
    if len(msg) < 12:
        raise ValueError("short reply")
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    nsid = None
    for i in range(an + ns + ar):
        off = skip_name(msg, off)
        if off + 10 > len(msg):
            raise ValueError("short record")
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if off + rdlen > len(msg):
            raise ValueError("short rdata")
        if rtype == 1 and rdlen == 4 and i < an and addrs is not None:
            addrs.append(socket.inet_ntoa(msg[off:off + 4]))
        if rtype == 41 and i >= an + ns:
            o, end = off, off + rdlen
            while o + 4 <= end:
                code, olen = struct.unpack("!HH", msg[o:o + 4])
                if code == NSID:
                    nsid = msg[o + 4:o + 4 + olen].decode(errors="replace")
                o += 4 + olen
        off += rdlen
    return qid, flags & 15, nsid, an


def udp_flows(n, src):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setblocking(False)
        socks.append(s)
    return socks


def tcp_ask(service, port, qname, src, timeout=1.0):
    """One query over TCP from a fresh source port: (source port, node, peer address)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect((service, port))
        q = build_query(random.randrange(65536), qname)
        s.sendall(struct.pack("!H", len(q)) + q)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
            chunk = s.recv(65535)
            if not chunk:
                raise OSError("connection closed")
            buf += chunk
        _, _, nsid, _ = parse_reply(buf[2:])
        return s.getsockname()[1], nsid, s.getpeername()[0]
    finally:
        s.close()


def cmd_nodes(a):
    deadline = time.monotonic() + a.timeout
    seen, flows, wrong, tcp_seen, answers = {}, {}, [], {}, {}
    qtype = QTYPES[a.qtype]
    socks = udp_flows(a.flows, a.source)
    qid = 0
    while time.monotonic() < deadline:
        for s in socks:
            qid = (qid + 1) & 0xFFFF
            try:
                s.sendto(build_query(qid, a.qname, qtype), (a.service, a.port))
            except OSError:
                pass
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            r, _, _ = select.select(socks, [], [], max(0, end - time.monotonic()))
            for s in r:
                try:
                    msg, peer = s.recvfrom(65535)
                    got = []
                    _, rcode, nsid, _ = parse_reply(msg, got)
                except (OSError, ValueError):
                    continue
                if nsid:
                    answers[nsid] = sorted(set(got))
                if peer[0] != a.service:
                    wrong.append(peer[0])
                if nsid:
                    seen[nsid] = seen.get(nsid, 0) + 1
                    flows[s.getsockname()[1]] = nsid
        if len(seen) >= a.expect:
            break
    while len(tcp_seen) < a.expect and time.monotonic() < deadline:
        try:
            sport, nsid, peer = tcp_ask(a.service, a.port, a.qname, a.source)
        except (OSError, ValueError):
            time.sleep(0.05)
            continue
        if peer != a.service:
            wrong.append(peer)
        if nsid:
            tcp_seen[nsid] = tcp_seen.get(nsid, 0) + 1
    for s in socks:
        s.close()
    out = {"udp_nodes": seen, "tcp_nodes": tcp_seen, "flows": flows, "wrong_source": wrong,
           "answers": answers}
    if a.json:
        print(json.dumps(out))
    else:
        print("UDP: %s" % ", ".join("%s (%d replies)" % kv for kv in sorted(seen.items())))
        print("TCP: %s" % ", ".join("%s (%d replies)" % kv for kv in sorted(tcp_seen.items())))
        if wrong:
            print("replies from another address than %s: %s" % (a.service, sorted(set(wrong))))
    return 0 if len(seen) >= a.expect and len(tcp_seen) >= a.expect and not wrong else 1


def cmd_run(a):
    socks = udp_flows(a.flows, a.source)
    by_fd = {s.fileno(): i for i, s in enumerate(socks)}
    recs = [[] for _ in socks]  # per flow: [t_send, t_recv, nsid]
    pending = [{} for _ in socks]  # per flow: qid -> index in recs
    wrong = []
    interval = a.interval / 1000.0
    poll = select.poll()
    for s in socks:
        poll.register(s, select.POLLIN)
    t0 = time.monotonic()
    t_end = t0 + a.duration
    t_next = t0
    qid = random.randrange(65536)
    while True:
        now = time.monotonic()
        if now >= t_next and now < t_end:
            for i, s in enumerate(socks):
                qid = (qid + 1) & 0xFFFF
                try:
                    s.sendto(build_query(qid, a.qname), (a.service, a.port))
                except OSError:
                    continue
                pending[i][qid] = len(recs[i])
                recs[i].append([time.monotonic(), None, None])
            t_next += interval
            if t_next < now:  # fell behind: keep the pace, do not burst
                t_next = now + interval
        if now >= t_end + a.linger:
            break
        wait = (min(t_next, t_end + a.linger) if now < t_end else t_end + a.linger) - now
        for fd, _ in poll.poll(max(0, wait) * 1000):
            i = by_fd[fd]
            s = socks[i]
            while True:
                try:
                    msg, peer = s.recvfrom(65535)
                except BlockingIOError:
                    break
                except OSError:
                    break
                t = time.monotonic()
                try:
                    rid, _, nsid, _ = parse_reply(msg)
                except ValueError:
                    continue
                if peer[0] != a.service:
                    wrong.append(peer[0])
                k = pending[i].pop(rid, None)
                if k is not None:
                    recs[i][k][1] = t
                    recs[i][k][2] = nsid
    out = {"interval": a.interval, "t0": t0,
           "flows": [{"port": s.getsockname()[1], "q": r} for s, r in zip(socks, recs)],
           "wrong_source": wrong}
    for s in socks:
        s.close()
    text = json.dumps(out)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--service", default="192.0.2.53")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--source", default="0.0.0.0", help="address to send from")
    ap.add_argument("--qname", default="example.com")
    ap.add_argument("--flows", type=int, default=24)
    sub = ap.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("nodes")
    n.add_argument("--expect", type=int, default=1)
    n.add_argument("--timeout", type=float, default=10)
    n.add_argument("--json", action="store_true")
    n.add_argument("--qtype", default="SOA", choices=sorted(QTYPES))
    r = sub.add_parser("run")
    r.add_argument("--duration", type=float, required=True)
    r.add_argument("--interval", type=float, default=5, help="milliseconds between queries")
    r.add_argument("--linger", type=float, default=0.5,
                   help="seconds to wait for late replies after the last query")
    r.add_argument("--out")
    a = ap.parse_args()
    return cmd_nodes(a) if a.cmd == "nodes" else cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
