#!/usr/bin/python3
"""fennec change benchmark: fennecd's control API against Knot DNS dynamic update (RFC 2136).

usage: change_bench.py [--fennecd PATH] [--knotd PATH] [--runs N] [--quick] [--out DIR]
                       [--zonedir DIR] [--hosts N] [--servers fennec,knot] [--workdir DIR]
                       [--single N] [--phase-secs S] [--conc-secs S] [--conc-batches N]
                       [--batches N] [--rss-changes N] [--rss-secs S]

Both servers load the same generated zone (genzone.py, 740,000 hosts = 999,012 records;
--quick: 2,000 hosts), one after the other, fresh for every run, and take the same changes:

  single   S adds of new A records one after another, then their deletes; latency from
           sending the request to its answer (fennec answers once the change is served,
           Knot once the update is applied), p50 and p99
  conc     8 writers, each sending batches of 100 adds: changes per second over
           --conc-secs (or until each writer has sent --conc-batches batches)
  batch    one writer sending batches of 100 adds: changes per second, batch latency
  rss      VmRSS of the server after the load, and after --rss-changes changes in all
           (the changes above, then untimed batches of 500 adds up to the total)

fennec: POST /v1/zones/example.com/records (single) and /v1/zones/example.com/changes
(batches), http.client keep-alive connections, one per writer, opened before the timing.
Knot: UPDATE messages built with dnspython, sent over TCP connections opened before the
timing, one per writer. After every phase a sample of the changed names is queried over
UDP (outside the timed part); a change that is not served stops the benchmark (exit 1).
Right after each single change (also outside the timing) one query checks that it is served
already; the count of those that were not is a figure of its own.

Every phase is bounded by count and by time (--phase-secs for single and batch, --conc-secs,
--rss-secs); a server that reaches the time first is reported with the count it reached.
fennec's /changes endpoint: when the server answers 404 "no such endpoint" to it, the batches
are sent as one /records POST per change and every batch figure of fennec is marked
"[/records]".

Defaults (full / --quick): runs 3 / 1, hosts 740000 / 2000, single 1000 / 200, phase-secs
30 / 15, conc-secs 10 / 3, conc-batches 100 / 10 per writer, batches 100 / 20, rss-changes
100000 / 20000, rss-secs 180 / 30.

Ports (127.0.0.1 only): fennec DNS 15941, fennec control 15942, Knot 15943. Servers run on
CPU 1 (taskset), this client on CPU 0, when there are 2 CPUs or more. Knot: udp-workers 1,
tcp-workers 1, background-workers 1 (as the other sections), journal in the work folder,
zonefile-sync -1, zonefile-load whole, update ACL for 127.0.0.1, no DNSSEC. fennec:
workers 1, cpu_affinity [1], a random cluster key.

Outputs in --out (default a new /tmp/fennec-change-bench.XXXXXX): change_results.txt (the
table: figure | fennec | Knot | fennec/Knot, then every run), change_raw.txt
(FIGURE SERVER RUN VALUE lines), logs/change-*.log. Needs /usr/bin/python3 with dnspython
(python3-dnspython), knotd and a fennecd (Release build). No root needed.
"""

import argparse
import hashlib
import hmac
import http.client
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import BenchError, Interrupted, find_fennecd, on_signal, pct, port_free

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import benchtool  # noqa: E402  (same folder: probe wire helpers, median, table cells)

try:
    import dns.exception
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.update
except ImportError:
    sys.stderr.write("change_bench.py: needs dnspython: apt-get install python3-dnspython "
                     "(and run it with /usr/bin/python3)\n")
    sys.exit(2)

ZONE = "example.com"
PORTS = {"fennec-dns": 15941, "fennec-control": 15942, "knot": 15943}
WRITERS = 8
BATCH = 100
TOPUP = 500  # adds per batch of the (untimed) top-up before the second RSS: < 64 KiB of JSON
TTL = 300
SAMPLE = 50  # names queried after each phase
LOAD_DEADLINE = 300  # s for a server to serve the zone
REQUEST_TIMEOUT = 120  # s for one HTTP request or UPDATE
STOP_WAIT = 10  # s after SIGTERM before SIGKILL

ROWS = [  # figure, label, format
    ("single_add_p50_ms", "single add: p50 ms", "{:.2f}"),
    ("single_add_p99_ms", "single add: p99 ms", "{:.2f}"),
    ("single_del_p50_ms", "single delete: p50 ms", "{:.2f}"),
    ("single_del_p99_ms", "single delete: p99 ms", "{:.2f}"),
    ("single_adds", "single: adds done (of S)", "{:.0f}"),
    ("single_late", "single: not served at once", "{:.0f}"),
    ("conc_cps", "8 writers x 100: changes/s", "{:.1f}"),
    ("conc_changes", "8 writers x 100: changes done", "{:.0f}"),
    ("batch_cps", "1 writer x 100: changes/s", "{:.1f}"),
    ("batch_p50_ms", "1 writer x 100: batch p50 ms", "{:.1f}"),
    ("batch_p99_ms", "1 writer x 100: batch p99 ms", "{:.1f}"),
    ("batch_changes", "1 writer x 100: changes done", "{:.0f}"),
    ("rss_load_mib", "RSS after load MiB", "{:.1f}"),
    ("rss_changes_mib", "RSS after the changes MiB", "{:.1f}"),
    ("rss_changes", "changes done at that RSS", "{:.0f}"),
    ("rss_adds", "  of which adds", "{:.0f}"),
]
SERVERS = [("fennec", "fennec"), ("knot", "Knot")]






def log(msg):
    line = time.strftime("%T ") + msg
    print(line, file=sys.stderr, flush=True)
    if LOGFILE:
        with open(LOGFILE, "a") as f:
            f.write(line + "\n")


LOGFILE = None




def rss_kib(pid):
    """VmRSS, RssAnon and RssFile of PID in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out


# --- DNS over UDP: readiness and checks -----------------------------------------------------

def wait_soa(port, proc, deadline_s):
    """Probes example.com SOA every 5 ms until an authoritative answer (benchtool's probe);
    the zone is then loaded. Fails when PROC exits or the deadline passes."""
    end = time.monotonic() + deadline_s
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    qid = 1
    try:
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise BenchError(f"the server exited with status {proc.returncode} while loading")
            qid = (qid + 1) & 0xFFFF or 1
            try:
                sock.sendto(benchtool.query_wire(qid, ZONE, 6), ("127.0.0.1", port))
            except OSError:
                pass
            if benchtool.recv_until(sock, time.monotonic() + 0.005,
                                    lambda d, q=qid: benchtool.answer_ok(d, q)):
                return
    finally:
        sock.close()
    raise BenchError(f"no SOA answer on port {port} within {deadline_s} s")


def lookup(port, name, tries=3):
    """(rcode, set of A rdata texts) of NAME.example.com over UDP."""
    q = dns.message.make_query(f"{name}.{ZONE}.", "A")
    for attempt in range(tries):
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=2)
        except dns.exception.Timeout:
            if attempt == tries - 1:
                raise BenchError(f"no answer for {name}.{ZONE} A from port {port}")
            continue
        got = set()
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.A:
                got.update(rd.to_text() for rd in rrset)
        return r.rcode(), got
    raise BenchError("unreachable")


def served(port, name, rdata, present):
    rcode, got = lookup(port, name)
    if present:
        return rcode == dns.rcode.NOERROR and rdata in got
    return rdata not in got and rcode in (dns.rcode.NXDOMAIN, dns.rcode.NOERROR)


def check_sample(port, server, changes, present, what, rnd):
    """Queries up to SAMPLE of CHANGES ((name, rdata) pairs); raises unless each is served
    (PRESENT) or gone."""
    if not changes:
        return
    bad = []
    for name, rdata in rnd.sample(changes, min(SAMPLE, len(changes))):
        if not served(port, name, rdata, present):
            bad.append(f"{name}={lookup(port, name)}")
    if bad:
        raise BenchError(f"{server}: after {what}, {len(bad)} of {min(SAMPLE, len(changes))} "
                         f"sampled names are {'not answered' if present else 'still answered'}: "
                         + ", ".join(bad[:5]))
    log(f"{server}: {what}: {min(SAMPLE, len(changes))} sampled names "
        f"{'answered' if present else 'gone'}")


# --- fennec: the control API ----------------------------------------------------------------

class FennecClient:
    """One keep-alive HTTP connection (http.client) with the bearer token."""

    def __init__(self, srv):
        self.srv = srv
        self.conn = http.client.HTTPConnection("127.0.0.1", PORTS["fennec-control"],
                                               timeout=REQUEST_TIMEOUT)
        self.headers = {"Authorization": "Bearer " + srv.token,
                        "Content-Type": "application/json"}

    def connect(self):
        status, body = self.request("GET", "/v1/status", None)  # opens the connection
        if status != 200:
            raise BenchError(f"fennec: GET /v1/status: {status} {body[:200]!r}")
        return self

    def request(self, method, path, body):
        self.conn.request(method, path, body=body, headers=self.headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    @staticmethod
    def one(action, name, rdata):
        return {"action": action, "name": name, "ttl": TTL, "type": "A", "rdata": rdata}

    def prepare_single(self, action, name, rdata):
        return json.dumps(self.one(action, name, rdata)).encode()

    def send_single(self, body):
        status, data = self.request("POST", f"/v1/zones/{ZONE}/records", body)
        if status != 200:
            raise BenchError(f"fennec: POST /records {body.decode()}: {status} {data[:300]!r}")

    def prepare_batch(self, action, pairs):
        if self.srv.fallback:
            return len(pairs), [self.prepare_single(action, n, r) for n, r in pairs]
        return len(pairs), json.dumps({"changes": [self.one(action, n, r)
                                                    for n, r in pairs]}).encode()

    def send_batch(self, prepared, deadline):
        """Sends one batch; returns the number of changes served (less than the batch only
        with the /records fallback when DEADLINE passes within the batch)."""
        n, body = prepared
        if self.srv.fallback:
            done = 0
            for one in body:
                if done and time.monotonic() >= deadline:
                    break
                self.send_single(one)
                done += 1
            return done
        status, data = self.request("POST", f"/v1/zones/{ZONE}/changes", body)
        if status != 200:
            raise BenchError(f"fennec: POST /changes ({n} changes): {status} {data[:300]!r}")
        return n

    def close(self):
        self.conn.close()


class Fennec:
    name = "fennec"

    def __init__(self, args, work, logs, zonefile):
        self.args, self.dir, self.zonefile = args, os.path.join(work, "fennec"), zonefile
        self.logpath = os.path.join(logs, "change-fennec.log")
        self.proc = None
        self.fallback = False
        self.dns_port = PORTS["fennec-dns"]

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        key = secrets.token_hex(32)
        keyfile = os.path.join(self.dir, "cluster.key")
        with open(keyfile, "w") as f:
            f.write(key + "\n")
        os.chmod(keyfile, 0o600)
        self.token = hmac.new(key.encode(), b"fennec-control", hashlib.sha256).hexdigest()
        cfg = os.path.join(self.dir, "fennec.yaml")
        pin = "cpu_affinity: [1]\n" if PIN else ""
        with open(cfg, "w") as f:
            f.write(f"""node:
  id: changebench
  role: primary
  data_dir: {self.dir}/data
listen:
  dns: ["127.0.0.1:{PORTS['fennec-dns']}"]
  control: "127.0.0.1:{PORTS['fennec-control']}"
cluster:
  key_file: {keyfile}
workers: 1
{pin}log_level: warn
zones:
  - name: {ZONE}
    file: {self.zonefile}
""")
        self.proc = start_proc([self.args.fennecd, "-c", cfg], self.logpath)
        wait_soa(self.dns_port, self.proc, LOAD_DEADLINE)
        self.wait_control(30)
        self.probe_changes()

    def wait_control(self, deadline_s):
        """The control endpoint may open a moment after DNS: GET /v1/status until 200."""
        end = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise BenchError(f"fennecd exited with status {self.proc.returncode}")
            conn = http.client.HTTPConnection("127.0.0.1", PORTS["fennec-control"], timeout=5)
            try:
                conn.request("GET", "/v1/status")
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    return
                last = r.status
            except (OSError, http.client.HTTPException) as e:
                last = e
            finally:
                conn.close()
            time.sleep(0.02)
        raise BenchError(f"fennec: no control endpoint on port {PORTS['fennec-control']} "
                         f"within {deadline_s} s ({last})")

    def probe_changes(self):
        """Does this fennecd have POST /changes? An empty list tells without changing
        anything: 404 "no such endpoint" means no."""
        c = FennecClient(self)
        try:
            c.connect()
            status, data = c.request("POST", f"/v1/zones/{ZONE}/changes", b'{"changes": []}')
        finally:
            c.close()
        self.fallback = status == 404 and b"no such endpoint" in data
        if self.fallback:
            log("fennec: POST /v1/zones/example.com/changes does not exist in this fennecd; "
                "batches go as one POST /records per change, marked [/records]")
        else:
            log(f"fennec: /changes with an empty list answered {status} {data[:120]!r}")

    def client(self, connect=True):
        c = FennecClient(self)
        return c.connect() if connect else c

    def stop(self):
        stop_proc(self.proc)


# --- Knot: RFC 2136 UPDATE over TCP ---------------------------------------------------------

class KnotClient:
    """One TCP connection; UPDATE messages are built before the timing, the response is
    read as wire and checked (id, QR, NOERROR)."""

    def __init__(self, srv):
        self.srv = srv
        self.sock = None
        self.rnd = random.Random()

    def connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.srv.dns_port),
                                             timeout=REQUEST_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        qid = self.rnd.randrange(1, 65536)
        resp = self.exchange(benchtool.query_wire(qid, ZONE, 6))  # the connection works
        if not benchtool.answer_ok(resp, qid):
            raise BenchError("knot: no SOA answer over TCP")
        return self

    def exchange(self, wire):
        self.sock.sendall(struct.pack("!H", len(wire)) + wire)
        n = struct.unpack("!H", self.recv_exact(2))[0]
        return self.recv_exact(n)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise BenchError("knot closed the TCP connection")
            buf += chunk
        return buf

    def update(self, action, pairs):
        upd = dns.update.UpdateMessage(ZONE + ".")
        upd.id = self.rnd.randrange(0, 65536)
        for name, rdata in pairs:
            owner = f"{name}.{ZONE}."
            if action == "add":
                upd.add(owner, TTL, "A", rdata)
            else:
                upd.delete(owner, "A", rdata)
        return upd.id, len(pairs), upd.to_wire()

    def prepare_single(self, action, name, rdata):
        return self.update(action, [(name, rdata)])

    def send_single(self, prepared):
        qid, _n, wire = prepared
        resp = self.exchange(wire)
        if len(resp) < 12:
            raise BenchError("knot: short UPDATE response")
        rid, flags = struct.unpack("!HH", resp[:4])
        if rid != qid or not flags & 0x8000 or (flags >> 11) & 0xF != 5 or flags & 0xF:
            raise BenchError(f"knot: UPDATE answered id={rid} (sent {qid}) opcode="
                             f"{(flags >> 11) & 0xF} rcode={dns.rcode.to_text(flags & 0xF)}")

    def prepare_batch(self, action, pairs):
        return self.update(action, pairs)

    def send_batch(self, prepared, _deadline):
        self.send_single(prepared)
        return prepared[1]

    def close(self):
        if self.sock:
            self.sock.close()


class Knot:
    name = "knot"

    def __init__(self, args, work, logs, zonefile):
        self.args, self.dir, self.zonefile = args, os.path.join(work, "knot"), zonefile
        self.logpath = os.path.join(logs, "change-knot.log")
        self.proc = None
        self.dns_port = PORTS["knot"]

    def start(self):
        shutil.rmtree(self.dir, ignore_errors=True)  # a fresh journal every run
        os.makedirs(os.path.join(self.dir, "journal"))
        os.makedirs(os.path.join(self.dir, "db"))
        cfg = os.path.join(self.dir, "knot.conf")
        with open(cfg, "w") as f:
            f.write(f"""server:
  listen: 127.0.0.1@{self.dns_port}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
  rundir: {self.dir}
  pidfile: {self.dir}/knot.pid
  user: root
log:
  - target: {self.logpath}
    any: warning
database:
  storage: {self.dir}/db
  journal-db: {self.dir}/journal
acl:
  - id: local_update
    address: 127.0.0.1
    action: update
template:
  - id: default
    storage: {os.path.dirname(self.zonefile)}
    file: "%s.zone"
    semantic-checks: off
    journal-content: changes
    zonefile-sync: -1
    zonefile-load: whole
    dnssec-signing: off
zone:
  - domain: {ZONE}
    acl: local_update
""")
        self.proc = start_proc([self.args.knotd, "-c", cfg], self.logpath)
        wait_soa(self.dns_port, self.proc, LOAD_DEADLINE)

    def client(self, connect=True):
        c = KnotClient(self)
        return c.connect() if connect else c

    def stop(self):
        stop_proc(self.proc)


# --- processes ------------------------------------------------------------------------------

RUNNING = []  # every server process this script started and has not yet stopped


def start_proc(argv, logpath):
    if PIN:
        argv = ["taskset", "-c", "1"] + argv  # taskset execs: the pid is the server's
    logf = open(logpath, "a")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    finally:
        logf.close()
    RUNNING.append(p)
    return p


def stop_proc(p):
    if p is None or p not in RUNNING:
        return
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=STOP_WAIT)
    RUNNING.remove(p)


# --- the phases -----------------------------------------------------------------------------

def names(prefix, n):
    return [(f"{prefix}-{i}", f"192.0.2.{1 + i % 254}") for i in range(n)]


def phase_single(srv, run, a, rec, rnd):
    """S adds one after another, then the deletes of what was added."""
    c = srv.client()
    try:
        lat = {"add": [], "delete": []}
        late = 0
        added = []
        for action in ("add", "delete"):
            todo = names(f"s{run}", a.single) if action == "add" else list(added)
            end = time.monotonic() + a.phase_secs
            for name, rdata in todo:  # bounded by the count S ...
                if time.monotonic() >= end:  # ... and by time
                    break
                p = c.prepare_single(action, name, rdata)
                t0 = time.perf_counter_ns()
                c.send_single(p)
                t1 = time.perf_counter_ns()
                lat[action].append((t1 - t0) / 1e6)
                if not served(srv.dns_port, name, rdata, action == "add"):
                    late += 1
                if action == "add":
                    added.append((name, rdata))
            if action == "add":
                check_sample(srv.dns_port, srv.name, added, True, "single adds", rnd)
        deleted = added[:len(lat["delete"])]
        check_sample(srv.dns_port, srv.name, deleted, False, "single deletes", rnd)
        # names the time cap left undeleted are deleted too (untimed) so the zone only
        # carries the batch phases' records afterwards
        end = time.monotonic() + a.phase_secs
        for name, rdata in added[len(deleted):]:
            if time.monotonic() >= end:
                break
            c.send_single(c.prepare_single("delete", name, rdata))
            deleted.append((name, rdata))
    finally:
        c.close()
    for action, key in (("add", "add"), ("delete", "del")):
        rec(f"single_{key}_p50_ms", pct(lat[action], 0.50))
        rec(f"single_{key}_p99_ms", pct(lat[action], 0.99))
    rec("single_adds", len(added))
    rec("single_late", late)
    log(f"{srv.name} run {run} single: {len(added)} adds p50 {pct(lat['add'], .5):.3f} ms "
        f"p99 {pct(lat['add'], .99):.3f} ms; {len(lat['delete'])} deletes p50 "
        f"{pct(lat['delete'], .5):.3f} ms p99 {pct(lat['delete'], .99):.3f} ms; "
        f"{late} not served at once")
    return len(added), len(deleted)


def phase_conc(srv, run, a, rec, rnd):
    """WRITERS threads, each with its own connection, sending batches of BATCH adds."""
    clients = [srv.client(connect=False) for _ in range(WRITERS)]
    per = a.conc_batches
    prepared = [[clients[w].prepare_batch("add", names(f"c{run}-{w}-{b}", BATCH))
                 for b in range(per)] for w in range(WRITERS)]
    done = [0] * WRITERS
    errors = []
    go = threading.Barrier(WRITERS + 1)
    t = {}

    def writer(w):
        try:
            go.wait(timeout=60)
            end = t["start"] + a.conc_secs
            for p in prepared[w]:  # bounded by --conc-batches and --conc-secs
                if time.monotonic() >= end:
                    break
                done[w] += clients[w].send_batch(p, end)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
    try:
        for c in clients:  # after the messages are built: connections idle for long get closed
            c.connect()
        for th in threads:
            th.start()
        t["start"] = time.monotonic()
        go.wait(timeout=60)
        join_end = t["start"] + a.conc_secs + REQUEST_TIMEOUT + 10
        for th in threads:
            th.join(timeout=max(0.1, join_end - time.monotonic()))
        elapsed = time.monotonic() - t["start"]
        if any(th.is_alive() for th in threads):
            raise BenchError(f"{srv.name}: a writer did not finish within {join_end} s")
    finally:
        for c in clients:
            c.close()
    if errors:
        raise errors[0]
    total = sum(done)
    added = []
    for w in range(WRITERS):
        flat = [x for b in range(per) for x in names(f"c{run}-{w}-{b}", BATCH)]
        added += flat[:done[w]]
    check_sample(srv.dns_port, srv.name, added, True, "8 writers", rnd)
    rec("conc_cps", total / elapsed)
    rec("conc_changes", total)
    log(f"{srv.name} run {run} 8 writers: {total} changes in {elapsed:.2f} s = "
        f"{total / elapsed:.1f}/s (per writer {done})")
    return total


def batches_one_writer(srv, c, prefix, count, secs, lat, size=BATCH):
    """Batches of up to SIZE adds from one writer until COUNT changes or SECS pass; returns
    the (name, rdata) pairs served; each complete batch's latency (ms) goes to LAT."""
    out = []
    end = time.monotonic() + secs
    b = 0
    while len(out) < count and time.monotonic() < end:  # bounded by count and time
        pairs = names(f"{prefix}-{b}", min(size, count - len(out)))
        p = c.prepare_batch("add", pairs)
        t0 = time.perf_counter_ns()
        n = c.send_batch(p, end)
        t1 = time.perf_counter_ns()
        if n == len(pairs) and lat is not None:
            lat.append((t1 - t0) / 1e6)
        out += pairs[:n]
        b += 1
    return out


def phase_batch(srv, run, a, rec, rnd):
    c = srv.client()
    lat = []
    try:
        t0 = time.monotonic()
        added = batches_one_writer(srv, c, f"b{run}", a.batches * BATCH, a.phase_secs, lat)
        elapsed = time.monotonic() - t0
    finally:
        c.close()
    check_sample(srv.dns_port, srv.name, added, True, "1 writer batches", rnd)
    rec("batch_cps", len(added) / elapsed)
    rec("batch_p50_ms", pct(lat, 0.50))
    rec("batch_p99_ms", pct(lat, 0.99))
    rec("batch_changes", len(added))
    log(f"{srv.name} run {run} 1 writer: {len(added)} changes in {elapsed:.2f} s = "
        f"{len(added) / elapsed:.1f}/s; {len(lat)} complete batches p50 {pct(lat, .5):.1f} ms "
        f"p99 {pct(lat, .99):.1f} ms")
    return len(added)


def phase_rss(srv, run, a, rec, rnd, adds, deletes):
    """Batches of TOPUP adds until ADDS + DELETES + these = --rss-changes (or --rss-secs pass),
    then VmRSS. Nothing of this is timed, so the batches are larger than in the figures."""
    short = a.rss_changes - adds - deletes
    more = []
    if short > 0:
        c = srv.client()
        try:
            more = batches_one_writer(srv, c, f"r{run}", short, a.rss_secs, None, TOPUP)
        finally:
            c.close()
        check_sample(srv.dns_port, srv.name, more, True, "the RSS top-up", rnd)
    time.sleep(1)
    r = rss_kib(srv.proc.pid)
    total = adds + deletes + len(more)
    rec("rss_changes_mib", r["VmRSS"] / 1024)
    rec("rss_changes", total)
    rec("rss_adds", adds + len(more))
    log(f"{srv.name} run {run} RSS after {total} changes ({adds + len(more)} adds, {deletes} "
        f"deletes): VmRSS {r['VmRSS'] / 1024:.1f} MiB (anon {r.get('RssAnon', 0) / 1024:.1f}, "
        f"file {r.get('RssFile', 0) / 1024:.1f})")


def measure(srv, run, a, raw):
    def rec(fig, val):
        with open(raw, "a") as f:
            f.write(f"{fig} {srv.name} {run} {val:.6g}\n")

    rnd = random.Random(1000 * run + len(srv.name))
    t0 = time.monotonic()
    srv.start()
    log(f"{srv.name} run {run}: serving the zone after {time.monotonic() - t0:.2f} s "
        f"(pid {srv.proc.pid})")
    try:
        time.sleep(1)
        r = rss_kib(srv.proc.pid)
        rec("rss_load_mib", r["VmRSS"] / 1024)
        log(f"{srv.name} run {run} RSS after load: {r['VmRSS'] / 1024:.1f} MiB")
        s_add, s_del = phase_single(srv, run, a, rec, rnd)
        c_add = phase_conc(srv, run, a, rec, rnd)
        b_add = phase_batch(srv, run, a, rec, rnd)
        phase_rss(srv, run, a, rec, rnd, s_add + c_add + b_add, s_del)
        if srv.proc.poll() is not None:
            raise BenchError(f"{srv.name} exited (status {srv.proc.returncode})")
    finally:
        srv.stop()


# --- report ---------------------------------------------------------------------------------

def report(raw, fallback, header):
    data = {}
    with open(raw) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] != "#":
                data.setdefault((parts[0], parts[1]), []).append(benchtool.fnum(parts[3]))
    med = {k: benchtool.median(v) for k, v in data.items()}
    mark = " [/records]" if fallback else ""
    w0, w = 40, 13
    out = list(header)
    out.append("figure".ljust(w0) + "".join(lbl.rjust(w) for _s, lbl in SERVERS) +
               "fennec/Knot".rjust(w))
    out.append("-" * (w0 + w * 3))
    for fig, label, fmt in ROWS:
        if not any((fig, s) in data for s, _l in SERVERS):
            continue
        cells = [benchtool.cell(fmt, med.get((fig, s))) for s, _l in SERVERS]
        x, y = med.get((fig, "fennec")), med.get((fig, "knot"))
        ratio = "n/a"
        if x is not None and y and not math.isnan(x) and not math.isnan(y):
            ratio = f"{x / y:.2f}" if x / y >= 0.1 else f"{x / y:.2g}"
        if fallback and fig.startswith(("conc_", "batch_", "rss_changes", "rss_adds")):
            cells[0] += mark
        out.append(label.ljust(w0) + "".join(c.rjust(w) for c in cells) + ratio.rjust(w))
    out.append("")
    out.append("individual runs: median [run 1, run 2, ...]")
    for fig, _label, fmt in ROWS:
        for s, _l in SERVERS:
            if (fig, s) in data:
                runs = " ".join(benchtool.cell(fmt, v) for v in data[(fig, s)])
                out.append(f"  {fig:18} {s:7} {benchtool.cell(fmt, med[(fig, s)]):>10}  [{runs}]")
    if fallback:
        out.append("")
        out.append("[/records]: this fennecd has no POST /v1/zones/{zone}/changes; its batches "
                   "were sent as one POST /records per change")
    return "\n".join(out) + "\n"


# --- main -----------------------------------------------------------------------------------

PIN = False






def parse_args(argv):
    title, usage, rest = __doc__.split("\n\n", 2)
    ap = argparse.ArgumentParser(
        prog="change_bench.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=usage[len("usage: "):], description=title + "\n\n" + rest)
    ap.add_argument("--fennecd", help="fennecd binary (default: build-bench/, build-release/, "
                    "build/release/, build/ in the repository)")
    ap.add_argument("--knotd", default=shutil.which("knotd") or "/usr/sbin/knotd")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--quick", action="store_true", help="small zone, short phases")
    ap.add_argument("--out", help="results folder (default: a new /tmp/fennec-change-bench.*)")
    ap.add_argument("--zonedir", help="use DIR/example.com.zone (from genzone.py) instead of "
                    "generating one; --hosts must then be its host count")
    ap.add_argument("--hosts", type=int)
    ap.add_argument("--servers", default="fennec,knot", help="fennec,knot (default), fennec, knot")
    ap.add_argument("--workdir", help="folder for configs and journals (default: a new temp "
                    "folder, removed at the end)")
    ap.add_argument("--single", type=int, help="single phase: adds (then as many deletes)")
    ap.add_argument("--phase-secs", type=float, help="time cap of the single adds, the single "
                    "deletes and the one-writer batches, each")
    ap.add_argument("--conc-secs", type=float, help="8-writer phase duration")
    ap.add_argument("--conc-batches", type=int, help="8-writer phase: most batches per writer")
    ap.add_argument("--batches", type=int, help="one-writer phase: batches of 100")
    ap.add_argument("--rss-changes", type=int, help="changes in all before the second RSS")
    ap.add_argument("--rss-secs", type=float, help="time cap of the top-up to --rss-changes")
    a = ap.parse_args(argv)
    q = a.quick
    for k, full, quick in (("runs", 3, 1), ("hosts", 740000, 2000), ("single", 1000, 200),
                           ("phase_secs", 30.0, 15.0), ("conc_secs", 10.0, 3.0),
                           ("conc_batches", 100, 10), ("batches", 100, 20),
                           ("rss_changes", 100000, 20000), ("rss_secs", 180.0, 30.0)):
        if getattr(a, k) is None:
            setattr(a, k, quick if q else full)
    limits = (("runs", 1, 50), ("hosts", 10, 10_000_000), ("single", 1, 1_000_000),
              ("phase_secs", 1, 3600), ("conc_secs", 1, 3600), ("conc_batches", 1, 10000),
              ("batches", 1, 100000), ("rss_changes", 0, 10_000_000), ("rss_secs", 1, 7200))
    for k, lo, hi in limits:
        if not lo <= getattr(a, k) <= hi:
            ap.error(f"--{k.replace('_', '-')} must be within {lo}..{hi}")
    a.servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    if not a.servers or any(s not in ("fennec", "knot") for s in a.servers):
        ap.error("--servers takes fennec, knot or fennec,knot")
    return a


def main(argv):
    global LOGFILE, PIN
    a = parse_args(argv)
    if "fennec" in a.servers:
        a.fennecd = a.fennecd or find_fennecd(ROOT)
        if not a.fennecd or not os.access(a.fennecd, os.X_OK):
            sys.stderr.write("change_bench.py: no fennecd (build one: mkdir -p build/release && "
                             "cd build/release && cmake -DCMAKE_BUILD_TYPE=Release ../.. && "
                             "make -j2 fennecd; or pass --fennecd)\n")
            return 2
        a.fennecd = os.path.realpath(a.fennecd)
    if "knot" in a.servers and not os.access(a.knotd, os.X_OK):
        sys.stderr.write(f"change_bench.py: {a.knotd} not found: apt-get install knot\n")
        return 2
    for p in PORTS.values():
        if not port_free(p):
            sys.stderr.write(f"change_bench.py: port {p} on 127.0.0.1 is in use\n")
            return 2
    PIN = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    if PIN:
        os.sched_setaffinity(0, {0})

    out = a.out or tempfile.mkdtemp(prefix="fennec-change-bench.")
    os.makedirs(os.path.join(out, "logs"), exist_ok=True)
    LOGFILE = os.path.join(out, "logs", "change-run.log")
    raw = os.path.join(out, "change_raw.txt")
    open(raw, "w").close()
    own_work = a.workdir is None
    work = a.workdir or tempfile.mkdtemp(prefix="fennec-change-work.")
    os.makedirs(work, exist_ok=True)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    servers = []
    try:
        if a.zonedir:
            zonedir = os.path.abspath(a.zonedir)
            zinfo = f"zone example.com: {a.hosts} hosts (from {zonedir})"
        else:
            zonedir = os.path.join(work, "zone")
            zinfo = subprocess.run(
                [sys.executable, os.path.join(HERE, "genzone.py"), zonedir, str(a.hosts),
                 "--no-queries"], check=True, capture_output=True, text=True,
                timeout=600).stdout.strip()
        zonefile = os.path.join(zonedir, "example.com.zone")
        if not os.path.isfile(zonefile):
            raise BenchError(f"no {zonefile}")
        log(f"change benchmark: {zinfo}; results in {out}")
        kinds = {"fennec": Fennec, "knot": Knot}
        servers = [kinds[s](a, work, os.path.join(out, "logs"), zonefile) for s in a.servers]
        fallback = False
        for run in range(1, a.runs + 1):
            for srv in servers:
                measure(srv, run, a, raw)
                fallback = fallback or getattr(srv, "fallback", False)
        ver = []
        if "fennec" in a.servers:
            v = subprocess.run([a.fennecd, "--version"], capture_output=True, text=True,
                               timeout=10)
            ver.append(f"fennecd {a.fennecd} ({(v.stdout or v.stderr).strip().splitlines()[0]})")
        if "knot" in a.servers:
            v = subprocess.run([a.knotd, "-V"], capture_output=True, text=True, timeout=10)
            ver.append(v.stdout.strip().splitlines()[0])
        header = [
            f"change benchmark {time.strftime('%FT%TZ', time.gmtime())} on {os.uname().nodename}, "
            f"{os.cpu_count()} CPUs; " + "; ".join(ver),
            f"{zinfo}; runs={a.runs} (medians) single={a.single} phase_secs={a.phase_secs:g} "
            f"conc_secs={a.conc_secs:g} conc_batches={a.conc_batches} batches={a.batches} "
            f"rss_changes={a.rss_changes} rss_secs={a.rss_secs:g} "
            f"pinned={'server CPU 1, client CPU 0' if PIN else 'no'}",
            "fennec: /records (single), /changes (batches), HTTP keep-alive; Knot: UPDATE "
            "over TCP, 1 UDP + 1 TCP + 1 background worker, journal on, zonefile-sync -1",
            "",
        ]
        text = report(raw, fallback, header)
        with open(os.path.join(out, "change_results.txt"), "w") as f:
            f.write(text)
        print(text, end="")
        print(f"\nresults: {os.path.join(out, 'change_results.txt')}")
        return 0
    except (BenchError, OSError, http.client.HTTPException, dns.exception.DNSException) as e:
        log(f"FAIL: {type(e).__name__}: {e}")
        print(f"change_bench.py: FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as e:
        print(f"change_bench.py: interrupted ({e})", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in list(RUNNING):
            stop_proc(p)
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
