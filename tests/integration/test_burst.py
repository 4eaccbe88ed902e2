#!/usr/bin/python3
"""fennec integration test: a burst on an idle server is answered in full.

A real fennecd (1 worker, then 2 workers, default overload config) gets three bursts of
20,000 UDP queries each, sent as fast as one connected socket can. The client first raises
its own receive buffer to 32 MiB with SO_RCVBUFFORCE (root only), or it would drop answers
itself. After each burst it reads until 1 s of silence (at most 10 s) and asserts that every
query got exactly one answer: each answer's id maps back to one send index, QR=1, NOERROR,
the question echoed. A burst is not an overload: the large receive buffer holds it and the
overload control must not shed it (docs/overload.md). After the bursts a fresh query must be
answered within 50 ms (no lingering pause or shedding), fennecd must still run, and its log
must hold no sanitizer report.

On a failure the server's overload counters from /metrics are printed to help the diagnosis.

usage: test_burst.py [--fennecd PATH] [--source-dir DIR] [--count N] [--bursts B]
Ports: fennecd 15503 (control 15553) and 15504 (control 15554).
"""

import argparse
import os
import socket
import struct
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import servers  # noqa: E402
from dnsutil import build_query  # noqa: E402

HOST = "127.0.0.1"
BASE_PORT = 15503
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
CLIENT_RCVBUF = 32 * 1024 * 1024
SILENCE = 1.0  # seconds without an answer that end a burst
DRAIN_LIMIT = 10.0  # seconds at most spent reading the answers of one burst
RECOVERY_MS = 50.0
QNAMES = ["www.example.test.", "example.test.", "mail.example.test.", "ns1.example.test."]


class Failure(Exception):
    pass


def need_root():
    if os.geteuid() != 0:
        raise Failure("test_burst.py must run as root: the client raises its receive buffer "
                      "to 32 MiB with SO_RCVBUFFORCE (CAP_NET_ADMIN), or it drops answers "
                      "itself and the count proves nothing")


def client_socket(port):
    """A connected UDP socket with a 32 MiB receive buffer; fails clearly without root."""
    need_root()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, CLIENT_RCVBUF)
    except OSError as e:
        s.close()
        raise Failure(f"SO_RCVBUFFORCE {CLIENT_RCVBUF} refused ({e}): the client needs "
                      "CAP_NET_ADMIN to hold a whole burst of answers")
    got = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if got < CLIENT_RCVBUF:  # the kernel reports twice what it was given
        s.close()
        raise Failure(f"client receive buffer is {got} bytes, {CLIENT_RCVBUF} asked")
    s.connect((HOST, port))
    return s


def socket_drops(sock):
    """The kernel's count of datagrams dropped at SOCK's full receive queue (/proc/net/udp),
    or None when it cannot be found."""
    port = sock.getsockname()[1]
    try:
        with open("/proc/net/udp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if len(fields) >= 13 and int(fields[1].split(":")[1], 16) == port:
                    return int(fields[-1])
    except (OSError, ValueError):
        pass
    return None


def metrics_summary(control_port):
    """The overload and UDP lines of /metrics, or why they could not be read."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{control_port}/metrics", timeout=2) as r:
            text = r.read().decode(errors="replace")
    except OSError as e:
        return f"(metrics unavailable: {e})"
    keep = [line for line in text.splitlines()
            if not line.startswith("#") and ("overload" in line or "fennec_udp" in line)]
    return "\n".join(keep) or "(no overload metrics)"


def one_burst(port, count, id_base):
    """Sends COUNT queries (id = id_base + index) as fast as one socket can, then reads until
    SILENCE. Returns the list of problems (empty when every query was answered)."""
    problems = []
    queries = []
    for i in range(count):
        qid = (id_base + i) & 0xFFFF
        queries.append(build_query(qid, QNAMES[i % len(QNAMES)], "A"))
    seen = [0] * count
    foreign = 0
    bad = []

    s = client_socket(port)
    try:
        t0 = time.monotonic()
        for q in queries:
            s.send(q)  # blocking: the client never drops a query of its own
        t_sent = time.monotonic() - t0

        deadline = time.monotonic() + DRAIN_LIMIT
        last = time.monotonic()
        t_last = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline or now - last >= SILENCE:
                break
            s.settimeout(min(SILENCE - (now - last), deadline - now))
            try:
                data = s.recv(65535)
            except socket.timeout:
                break
            last = time.monotonic()
            t_last = last - t0
            if len(data) < 12:
                bad.append(f"short answer of {len(data)} bytes")
                continue
            qid, flags = struct.unpack("!HH", data[:4])
            idx = (qid - id_base) & 0xFFFF
            if idx >= count:
                foreign += 1
                continue
            seen[idx] += 1
            q = queries[idx]
            qd_end = len(q)  # build_query without EDNS: the question runs to the end
            if not flags & 0x8000:
                bad.append(f"id {qid}: QR not set")
            elif flags & 0x000F != 0:
                bad.append(f"id {qid}: rcode {flags & 0x000F}")
            elif data[12:qd_end].lower() != q[12:qd_end].lower():
                bad.append(f"id {qid}: question not echoed")
        t_drain = time.monotonic() - t0
        client_drops = socket_drops(s)
    finally:
        s.close()

    answered = sum(1 for n in seen if n > 0)
    dups = sum(n - 1 for n in seen if n > 1)
    missing = [i for i, n in enumerate(seen) if n == 0]
    if answered != count:
        first = ", ".join(str(i) for i in missing[:10])
        problems.append(f"{count - answered} of {count} queries unanswered (send indexes "
                        f"{first}{' ...' if len(missing) > 10 else ''}; "
                        f"first missing at {missing[0]}, last at {missing[-1]})")
    if client_drops:
        problems.append(f"the client's own receive queue dropped {client_drops} answers")
    if dups:
        problems.append(f"{dups} duplicate answers")
    if foreign:
        problems.append(f"{foreign} answers with an id this burst did not send")
    if bad:
        problems.append(f"{len(bad)} wrong answers, e.g. {bad[:3]}")
    print(f"    sent {count} in {t_sent * 1000:.0f} ms ({count / max(t_sent, 1e-9):.0f} qps), "
          f"{answered} answered, the last {t_last * 1000:.0f} ms after the first query, "
          f"done after {t_drain:.2f} s")
    return problems


def recovery_check(port, queries=5):
    """Fresh sockets (new source ports, so possibly other workers): each answered in time."""
    problems = []
    for i in range(queries):
        qid = 0xF000 + i
        wire = build_query(qid, "www.example.test.", "A")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((HOST, port))
            s.settimeout(1.0)
            t0 = time.monotonic()
            s.send(wire)
            try:
                while True:
                    data = s.recv(65535)
                    if len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid:
                        break
            except socket.timeout:
                problems.append(f"recovery query {i}: no answer within 1 s")
                continue
            ms = (time.monotonic() - t0) * 1000
        rcode = data[3] & 0x0F
        if rcode != 0:
            problems.append(f"recovery query {i}: rcode {rcode}")
        if ms > RECOVERY_MS:
            problems.append(f"recovery query {i}: answered after {ms:.1f} ms "
                            f"(limit {RECOVERY_MS:.0f} ms)")
        time.sleep(0.05)
    return problems


def sanitizer_report(log_text):
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ThreadSanitizer"):
        if marker in log_text:
            return marker
    return None


def run_server(args, zonedir, workers, port):
    control_port = port + 50
    print(f"fennecd with {workers} worker(s) on port {port}")
    # The workers run on the last CPU and this client on the others (main() pins it): a
    # client that shares a CPU with the worker would make it look starved, which is how
    # fennec tells overload from a burst (docs/overload.md).
    last = os.cpu_count() - 1
    srv = servers.start_fennecd(args.fennecd, zonedir, port=port, workers=workers,
                                control_port=control_port, with_v6=False,
                                extra=f"cpu_affinity: [{last}]")
    problems = []
    try:
        for b in range(args.bursts):
            # Ids of different bursts do not overlap: a late answer of an earlier burst is
            # counted as foreign instead of as an answer.
            id_base = (b * args.count) & 0xFFFF
            bp = one_burst(port, args.count, id_base)
            if bp:
                problems += [f"{workers} worker(s), burst {b + 1}: {p}" for p in bp]
        rp = recovery_check(port)
        problems += [f"{workers} worker(s): {p}" for p in rp]
        if problems:
            print(f"  metrics after the bursts:\n{metrics_summary(control_port)}")
        if not srv.alive():
            problems.append(f"{workers} worker(s): fennecd exited ({srv.proc.returncode}):\n"
                            f"{srv.log_tail()}")
    finally:
        srv.stop()
    try:
        with open(srv.logfile, errors="replace") as f:
            log_text = f.read()
    except OSError:
        log_text = ""
    marker = sanitizer_report(log_text)
    if marker:
        problems.append(f"{workers} worker(s): sanitizer report ({marker}) in the log:\n"
                        f"{srv.log_tail(60)}")
    return problems


def main():
    if (os.cpu_count() or 1) < 2:
        print("burst: needs 2 CPUs (the client and the worker on different ones)")
        return 2
    os.sched_setaffinity(0, set(range(os.cpu_count() - 1)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fennecd")
    ap.add_argument("--source-dir", default=os.path.normpath(os.path.join(HERE, "..", "..")))
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--bursts", type=int, default=3)
    args = ap.parse_args()
    if not 1 <= args.count <= 65536 // max(args.bursts, 1):
        ap.error("--count x --bursts must fit in the 16-bit id space")
    zonedir = os.path.join(os.path.abspath(args.source_dir), "tests", "integration", "zones")
    need_root()

    problems = []
    for i, workers in enumerate((1, 2)):
        problems += run_server(args, zonedir, workers, BASE_PORT + i)
    if problems:
        for p in problems:
            print(f"burst: FAIL: {p}", file=sys.stderr)
        return 1
    print(f"burst: OK ({args.bursts} bursts of {args.count} queries, 1 and 2 workers, "
          "all answered; recovery within 50 ms)")
    return 0


if __name__ == "__main__":
    servers.run_main("burst", main, Failure)
