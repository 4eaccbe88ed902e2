#!/usr/bin/python3
"""fennec replication benchmark: a fennec cluster (1 primary + 2 secondaries) against Knot DNS
(1 primary + 2 secondaries, NOTIFY + IXFR), on one machine, over loopback.

usage: repl_bench.py [--fennecd PATH] [--knotd PATH] [--runs N] [--quick] [--out DIR]
                     [--hosts N] [--small-hosts N] [--changes N] [--knot-changes N]
                     [--conc-secs S] [--conc-batches N] [--catchup-changes N]
                     [--snap-changes N] [--snap-batch N] [--snap-keep N] [--snap-every N]
                     [--poll-us US] [--no-knot] [--zonedir DIR] [--workdir DIR]

Ports: 127.0.0.1:16200-16239 only (fennec ns1 16201-16203, ns2 16211-16212, ns3 16221-16222,
Knot primary 16231, Knot secondaries 16232-16233); the script refuses to start when one is
taken.

Every figure is the median of --runs runs (default 3). In each run:

  latency    for the 999,012-record zone (genzone.py, 740,000 hosts) and a small zone (1,000
             hosts): --changes single-record adds (fennec: POST /v1/zones/example.com/changes
             with one change; Knot: an RFC 2136 UPDATE over TCP to the Knot primary), one
             after another. From the moment the primary's answer arrives (fennec: the API's
             200, given once the change is durable and served on the primary; Knot: the
             UPDATE's NOERROR), each secondary is queried over UDP every --poll-us until it
             answers the new record: p50 and p99 of that time per secondary, and of the
             slower of the two. The primary is queried the same way: it serves the change
             before it answers, so its figure is the floor of the method (the client's and
             the machine's noise). Knot: NOTIFY from its primary, then SOA + IXFR by each
             secondary (defaults), --knot-changes adds at most. Also: the first transfer of
             the big zone to the two new secondaries (exec to the primary's index/serial).
  throughput 8 writers, each sending batches of 100 changes (adds, then the deletes of that
             batch, alternately, so the zone keeps its size) to the fennec primary for
             --conc-secs (or --conc-batches per writer): acknowledged changes/s; each
             secondary's entries_behind (GET /v1/nodes on the primary) at the last answer and
             the most seen during the phase (sampled every 200 ms); the time from the last
             answer until each secondary's own applied_index reaches the primary's index.
  catch-up   ns3 stopped with SIGTERM, --catchup-changes adds made (batches of 100, 8
             writers), ns3 started: the time from its exec until its applied_index equals the
             primary's index, and until it answers the last change.
  snapshot   the same on a cluster of its own (primary + ns2) with --snap-changes changes
             in batches of --snap-batch; its primary's config says journal.keep
             --snap-keep and journal.snapshot_every --snap-every, and ns2 is started only
             once the primary's log shows its journal compacted past ns2's index, so ns2 must
             be sent a snapshot (the figure "snapshot sent" checks the primary's log). The
             fennecd measured here ignores the journal settings of its config (node/main.c
             never passes them on: keep and snapshot_every stay 10,000), hence the small
             batches: the gap (25,000 entries) is more than two snapshot periods at the
             defaults as well.
  restart    ns2 (the 999k-record zone and every change above) killed with SIGKILL, the
             primary stopped (SIGTERM), ns2 started again: the time from its exec until it
             answers the last change of the catch-up phase from its own data.
  Catch-up and restart also show the part of that time the node spent restoring its own
  data at start (its log line "restored index N ... replayed in X ms").

Workaround: a fennec secondary whose stream drops never dials its primary again (the
reconnect timer in replication/stream.c on_closed() is started without a callback), and
applying the whole 999k-record zone blocks a secondary's stream thread longer than the 5 s
after which both ends drop a silent stream. A secondary found disconnected after its first
transfer is therefore restarted (it restores from its own journal and dials at start); the
figure "secondaries whose stream dropped" counts them. A drop later on is not worked
around: the changes are then not answered in time and the run fails.

Goals (DESIGN.md, "Performance goals"): ack->answered p99 <= 5 ms and >= 50x faster than Knot;
>= 20,000 changes/s with the secondaries at the primary's index within 1 s of the last answer;
catch-up <= 5 s (both cases); restart <= 1 s. A missed goal is reported (MISSED lines) and does
not change the exit status.

Every node runs with 1 worker (fennec `workers: 1`; Knot 1 UDP, 1 TCP, 1 background worker),
unpinned: three servers and this client share the machine's cores. The fennec cluster uses
`journal: {keep: 10000, snapshot_every: 10000, max_size: 4GiB}` on the primary.

Outputs in --out (default a new /tmp/fennec-repl-bench.XXXXXX): repl_results.txt (the table,
then every run), repl_raw.txt (FIGURE SERVER RUN VALUE), logs/repl-run.log and one log per
server and run (logs/repl-rN-CLUSTER-NODE.log). Exit 0 when every run completed (goals met or
not), 1 when a run failed (a server refused a change, exited, or a secondary never answered a
change or never reached the primary's index within its time bound), 2 on a usage error or
something missing, 130 when interrupted. Every server is stopped by its pid on every exit
path; the work folder (zones, configs, journals) is removed.

Defaults (full / --quick): runs 3 / 1, hosts 740000 / 20000, small-hosts 1000 / 1000, changes
1000 / 100, knot-changes 100 / 20 (Knot 3.2 sends its NOTIFY about 1 s after an update),
conc-secs 10 / 3, conc-batches 1250 / 200, catchup-changes 100000 / 10000, snap-changes
100000 / 24000, snap-batch 4 / 1, snap-keep 1000, snap-every 5000, poll-us 200. At the start
the fdatasync time of the work folder's disk is measured for context (every fennec node
makes each entry durable before it serves it).
Needs /usr/bin/python3 with dnspython (python3-dnspython), knotd (apt-get install knot) and a
fennecd (Release build). No root needed.
"""

import argparse
import hashlib
import hmac
import http.client
import json
import math
import os
import secrets
import select
import shutil
import signal
import socket
import statistics
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
import benchtool  # noqa: E402  (same folder: query_wire, answer_ok, recv_until)

try:
    import dns.rcode
    import dns.update
except ImportError:
    sys.stderr.write("repl_bench.py: needs dnspython: apt-get install python3-dnspython "
                     "(and run it with /usr/bin/python3)\n")
    sys.exit(2)

ZONE = "example.com"
PORT_RANGE = (16200, 16239)
PORTS = {
    "ns1-dns": 16201, "ns1-control": 16202, "ns1-repl": 16203,
    "ns2-dns": 16211, "ns2-control": 16212,
    "ns3-dns": 16221, "ns3-control": 16222,
    "knot1": 16231, "knot2": 16232, "knot3": 16233,
}
WRITERS = 8
BATCH = 100
TTL = 300
LOAD_DEADLINE = 600      # s for a primary to serve a zone, or a secondary to receive it
REQUEST_TIMEOUT = 120    # s for one HTTP request or UPDATE
STOP_WAIT = 15           # s after SIGTERM before SIGKILL
FENNEC_CHANGE_DEADLINE = 10.0  # s for a secondary to answer one change
KNOT_CHANGE_DEADLINE = 30.0
LATENCY_PHASE_SECS = {"fennec": 120.0, "knot": 150.0}  # time cap of one latency phase
SYNC_DEADLINE = 60.0     # s for secondaries to reach the primary's index after a phase
CATCHUP_DEADLINE = 120.0
RESTART_DEADLINE = 60.0
WRITE_PHASE_SECS = 300.0  # time cap of the untimed catch-up writes
SNAPSHOT_WAIT = 120.0    # s for the primary to compact its journal past a stopped secondary

LOGFILE = None
RAW = None
FAILURES = []  # one line per failed run part






def log(msg):
    line = time.strftime("%T ") + msg
    print(line, file=sys.stderr, flush=True)
    if LOGFILE:
        with open(LOGFILE, "a") as f:
            f.write(line + "\n")




def record(fig, server, run, val):
    with open(RAW, "a") as f:
        f.write(f"{fig} {server} {run} {val:.6g}\n")


# --- processes ------------------------------------------------------------------------------

RUNNING = []  # every server process started and not yet reaped


def start_proc(argv, logpath):
    logf = open(logpath, "a")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    finally:
        logf.close()
    RUNNING.append(p)
    return p


def stop_proc(p, sig=signal.SIGTERM):
    """Sends SIG to P (by its pid), waits for it (SIGKILL after STOP_WAIT s)."""
    if p is None or p not in RUNNING:
        return None
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} did not stop within {STOP_WAIT} s of signal {sig}: SIGKILL")
            p.kill()
            p.wait(timeout=STOP_WAIT)
    RUNNING.remove(p)
    return p.returncode


# --- DNS over UDP ---------------------------------------------------------------------------

def parse_reply(data):
    """(id, rcode, answer count, authoritative) of a response, or None."""
    if len(data) < 12:
        return None
    rid, flags, _qd, an = struct.unpack("!HHHH", data[:8])
    if not flags & 0x8000:
        return None
    return rid, flags & 0xF, an, bool(flags & 0x0400)


def wait_answer(port, qname, qtype, deadline_s, proc=None, interval=0.005):
    """Queries QNAME every INTERVAL until an authoritative NOERROR answer with records;
    returns perf_counter_ns of that answer. Raises when PROC exits or DEADLINE_S passes."""
    end = time.monotonic() + deadline_s
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    qid = secrets.randbelow(60000) + 1
    try:
        while time.monotonic() < end:
            if proc is not None and proc.poll() is not None:
                raise BenchError(f"the server on port {port} exited with status "
                                 f"{proc.returncode}")
            qid = (qid + 1) & 0xFFFF or 1
            try:
                sock.sendto(benchtool.query_wire(qid, qname, qtype), ("127.0.0.1", port))
            except OSError:
                pass
            if benchtool.recv_until(sock, time.monotonic() + interval,
                                    lambda d, q=qid: benchtool.answer_ok(d, q)):
                return time.perf_counter_ns()
    finally:
        sock.close()
    raise BenchError(f"no answer for {qname} (type {qtype}) on port {port} within "
                     f"{deadline_s:g} s")


def soa_serial(port):
    """The SOA serial answered by the server on PORT, or None."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        qid = secrets.randbelow(60000) + 1
        sock.sendto(benchtool.query_wire(qid, ZONE, 6), ("127.0.0.1", port))
        data = benchtool.recv_until(sock, time.monotonic() + 0.5,
                                    lambda d: benchtool.answer_ok(d, qid))
        if not data:
            return None
        # the serial: the first 4 bytes after the two names of the SOA rdata; parse with
        # dnspython to stay simple
        import dns.message
        m = dns.message.from_wire(data)
        for rrset in m.answer:
            if rrset.rdtype == 6:
                return rrset[0].serial
        return None
    except OSError:
        return None
    finally:
        sock.close()


def a_answer(port, name):
    """(rcode, sorted A rdata) of NAME over UDP (3 tries)."""
    import dns.message
    import dns.query
    import dns.exception
    q = dns.message.make_query(f"{name}.{ZONE}.", "A")
    for _ in range(3):
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=2)
        except dns.exception.Timeout:
            continue
        got = sorted(rd.to_text() for rrset in r.answer if rrset.rdtype == 1 for rd in rrset)
        return r.rcode(), got
    return None, None


class Poller:
    """Times when each of a set of servers first answers a name: one connected UDP socket
    per server, a query every INTERVAL to each server that has not answered it yet (paced,
    not a busy loop: the client must not take the servers' CPU on a small machine)."""

    def __init__(self, ports, interval):
        self.ports = ports
        self.interval = interval
        self.socks = []
        for p in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(("127.0.0.1", p))
            s.setblocking(False)
            self.socks.append(s)
        self.qid = secrets.randbelow(60000)

    def close(self):
        for s in self.socks:
            s.close()

    def drain(self):
        for s in self.socks:
            while True:
                try:
                    s.recv(65535)
                except (BlockingIOError, OSError):
                    break

    def wait(self, qname, deadline_s):
        """perf_counter_ns of the first positive answer from each server (None: none within
        DEADLINE_S)."""
        n = len(self.socks)
        done = [None] * n
        sent = [set() for _ in range(n)]
        next_send = [0.0] * n
        base = benchtool.query_wire(0, qname, 1)[2:]
        end = time.perf_counter() + deadline_s
        pending = set(range(n))
        while pending:
            now = time.perf_counter()
            if now >= end:
                break
            for i in list(pending):
                if now >= next_send[i]:
                    self.qid = (self.qid + 1) & 0xFFFF
                    sent[i].add(self.qid)
                    try:
                        self.socks[i].send(struct.pack("!H", self.qid) + base)
                    except OSError:
                        pass  # an ICMP error from an earlier query: send again next time
                    next_send[i] = now + self.interval
            wait = max(0.0, min(next_send[i] for i in pending) - time.perf_counter())
            r, _, _ = select.select([self.socks[i] for i in pending], [], [], wait)
            for s in r:
                i = self.socks.index(s)
                while i in pending:
                    try:
                        data = s.recv(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    t = time.perf_counter_ns()
                    rep = parse_reply(data)
                    if not rep or rep[0] not in sent[i]:
                        continue
                    if rep[1] == 0 and rep[2] > 0:
                        done[i] = t
                        pending.discard(i)
        return done


# --- fennec ---------------------------------------------------------------------------------

class Http:
    """One keep-alive HTTP connection to a control endpoint."""

    def __init__(self, port, token=None):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = "Bearer " + token

    def request(self, method, path, body=None):
        self.conn.request(method, path, body=body, headers=self.headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def json(self, path):
        status, data = self.request("GET", path)
        if status != 200:
            raise BenchError(f"GET {path} on port {self.port}: {status} {data[:200]!r}")
        return json.loads(data)

    def close(self):
        self.conn.close()


def change(action, name, rdata):
    return (f'{{"action":"{action}","name":"{name}","ttl":{TTL},"type":"A",'
            f'"rdata":"{rdata}"}}')


def body(changes):
    return ('{"changes":[' + ",".join(changes) + "]}").encode()


def rdata_of(i):
    return f"192.0.2.{1 + i % 254}"


class FennecNode:
    def __init__(self, cluster, node_id, role):
        self.cluster, self.id, self.role = cluster, node_id, role
        self.dir = os.path.join(cluster.dir, node_id)
        self.dns_port = PORTS[f"{node_id}-dns"]
        self.ctl_port = PORTS[f"{node_id}-control"]
        self.cfg = os.path.join(self.dir, "fennec.yaml")
        self.logpath = os.path.join(cluster.logs, f"repl-r{cluster.run}-{cluster.name}-"
                                    f"{node_id}.log")
        self.proc = None

    def write_config(self, zonefile=None, journal=None):
        os.makedirs(self.dir, exist_ok=True)
        c = self.cluster
        if self.role == "primary":
            text = f"""node: {{id: {self.id}, role: primary, data_dir: {self.dir}/data}}
listen:
  dns: ["127.0.0.1:{self.dns_port}"]
  control: "127.0.0.1:{self.ctl_port}"
  replication: "127.0.0.1:{PORTS['ns1-repl']}"
cluster: {{key_file: {c.keyfile}}}
journal: {{keep: {journal[0]}, snapshot_every: {journal[1]}, max_size: 4GiB}}
workers: 1
log_level: info
zones: [{{name: {ZONE}, file: {zonefile}}}]
"""
        else:
            text = f"""node: {{id: {self.id}, role: secondary, data_dir: {self.dir}/data}}
listen:
  dns: ["127.0.0.1:{self.dns_port}"]
  control: "127.0.0.1:{self.ctl_port}"
cluster: {{primary: "127.0.0.1:{PORTS['ns1-repl']}", key_file: {c.keyfile}}}
workers: 1
log_level: info
"""
        with open(self.cfg, "w") as f:
            f.write(text)

    def start(self):
        """Starts fennecd; returns perf_counter_ns just before the exec."""
        with open(self.logpath, "a") as f:
            f.write(f"--- {time.strftime('%FT%T')} start\n")
        t0 = time.perf_counter_ns()
        self.proc = start_proc([self.cluster.fennecd, "-c", self.cfg], self.logpath)
        return t0

    def stop(self, sig=signal.SIGTERM):
        rc = stop_proc(self.proc, sig)
        self.proc = None
        return rc

    def alive(self):
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            raise BenchError(f"fennec {self.cluster.name} {self.id} is not running (exit status "
                             f"{rc}; see {self.logpath})")

    def http(self, token=True):
        return Http(self.ctl_port, self.cluster.token if token else None)

    def status(self):
        h = self.http(False)
        try:
            return h.json("/v1/status")
        finally:
            h.close()

    def wait_control(self, deadline_s):
        end = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < end:
            self.alive()
            try:
                return self.status()
            except (OSError, http.client.HTTPException, BenchError) as e:
                last = e
            time.sleep(0.01)
        raise BenchError(f"fennec {self.id}: no control endpoint within {deadline_s} s ({last})")

    def applied(self):
        """(applied_index, connected) as this secondary reports it, (None, False) while its
        control endpoint is not up."""
        try:
            r = self.status().get("replication") or {}
        except (OSError, http.client.HTTPException, BenchError, ValueError):
            return None, False
        return r.get("applied_index"), bool(r.get("connected"))


class FennecCluster:
    """A primary (ns1) and secondaries (ns2, ns3), started in that order: a secondary dials
    its primary once at start, so the primary must be up and the secondary registered."""

    def __init__(self, a, name, run, work, logs, zonefile, secondaries=("ns2", "ns3"),
                 journal=(10000, 10000)):
        self.a, self.name, self.run, self.logs = a, name, run, logs
        self.fennecd = a.fennecd
        self.dir = os.path.join(work, f"fennec-{name}-r{run}")
        self.zonefile, self.journal = zonefile, journal
        os.makedirs(self.dir, exist_ok=True)
        self.keyfile = os.path.join(self.dir, "cluster.key")
        key = secrets.token_hex(32)
        with open(self.keyfile, "w") as f:
            f.write(key + "\n")
        os.chmod(self.keyfile, 0o600)
        self.token = hmac.new(key.encode(), b"fennec-control", hashlib.sha256).hexdigest()
        self.primary = FennecNode(self, "ns1", "primary")
        self.secs = [FennecNode(self, s, "secondary") for s in secondaries]

    def nodes(self):
        return [self.primary] + self.secs

    def start(self):
        t0 = time.monotonic()
        p = self.primary
        p.write_config(self.zonefile, self.journal)
        p.start()
        wait_answer(p.dns_port, ZONE, 6, LOAD_DEADLINE, p.proc)
        p.wait_control(30)
        h = p.http()
        try:
            for s in self.secs:
                status, data = h.request("POST", "/v1/nodes", json.dumps(
                    {"id": s.id, "address": f"127.0.0.1:{s.ctl_port}"}).encode())
                if status != 200:
                    raise BenchError(f"POST /v1/nodes {s.id}: {status} {data[:200]!r}")
        finally:
            h.close()
        starts = {}
        for s in self.secs:
            s.write_config()
            starts[s.id] = s.start()
        idx = self.index()
        for s in self.secs:
            s.wait_control(30)
        # the first transfer: from the first secondary's exec until each one's applied_index
        # is the primary's
        init = self.wait_synced(idx, LOAD_DEADLINE, since_ns=min(starts.values()))
        for s in self.secs:
            wait_answer(s.dns_port, ZONE, 6, 30, s.proc)
        self.restarted = self.reconnect_dropped(idx)
        log(f"fennec {self.name} run {self.run}: primary and {len(self.secs)} secondaries "
            f"serving index {idx} after {time.monotonic() - t0:.1f} s (pids "
            f"{' '.join(str(n.proc.pid) for n in self.nodes())})")
        return init

    def reconnect_dropped(self, idx):
        """A secondary that lost its stream stays disconnected: this fennecd never dials its
        primary again (replication/stream.c on_closed() starts the reconnect timer without a
        callback). Applying a large entry (the whole 999k-record zone) blocks the stream
        thread longer than STREAM_DEAD_MS, so both ends drop the stream during the first
        transfer. Such a secondary is restarted here (it restores from its own journal and
        dials once at start) so that the figures can be measured at all; the count is a
        figure of its own."""
        time.sleep(0.6)  # more than two heartbeats: a dropped stream shows
        dropped = []
        for s in self.secs:
            st = s.status().get("replication") or {}
            if not st.get("connected"):
                dropped.append(s)
        for s in dropped:
            log(f"fennec {self.name} run {self.run}: WORKAROUND: {s.id} is not connected to its "
                f"primary after the first transfer (its log: "
                f"{last_line(s.logpath, 'disconnected')}); restarting it")
            s.stop()
            s.start()
            s.wait_control(LOAD_DEADLINE)
        if dropped:
            self.wait_synced(idx, LOAD_DEADLINE, dropped)
            end = time.monotonic() + 30
            while time.monotonic() < end:
                if all((s.status().get("replication") or {}).get("connected") for s in dropped):
                    break
                time.sleep(0.05)
            else:
                raise BenchError(f"fennec {self.name}: restarted secondaries still not "
                                 f"connected")
        return len(dropped)

    def index(self):
        r = self.primary.status().get("replication") or {}
        if "index" not in r:
            raise BenchError(f"fennec: no replication.index in the primary's /v1/status: {r}")
        return r["index"]

    def nodes_view(self):
        """{id: (applied_index, entries_behind)} from GET /v1/nodes on the primary."""
        h = self.primary.http(False)
        try:
            v = h.json("/v1/nodes")
        finally:
            h.close()
        return {n["id"]: (n.get("applied_index"), n.get("entries_behind"))
                for n in v.get("nodes", [])}

    def wait_synced(self, index, deadline_s, secs=None, since_ns=None):
        """Waits until every secondary in SECS reports applied_index >= INDEX (polling each
        one's /v1/status every 5 ms); returns {id: ms from SINCE_NS}."""
        secs = self.secs if secs is None else secs
        end = time.monotonic() + deadline_s
        out = {}
        last = {}
        while len(out) < len(secs) and time.monotonic() < end:
            for s in secs:
                if s.id in out:
                    continue
                s.alive()
                ai, _conn = s.applied()
                last[s.id] = ai
                if ai is not None and ai >= index:
                    t = time.perf_counter_ns()
                    out[s.id] = (t - since_ns) / 1e6 if since_ns else 0.0
            if len(out) < len(secs):
                time.sleep(0.005)
        if len(out) < len(secs):
            raise BenchError(f"fennec {self.name}: secondaries not at the primary's index "
                             f"{index} within {deadline_s:g} s (applied: {last}; "
                             f"view of the primary: {self.nodes_view()})")
        return out

    def stop(self):
        for n in reversed(self.nodes()):
            n.stop()

    def check_same(self, names):
        """Every secondary answers each of NAMES as the primary does."""
        for name in names:
            want = a_answer(self.primary.dns_port, name)
            for s in self.secs:
                if s.proc is None:
                    continue
                got = a_answer(s.dns_port, name)
                if got != want:
                    raise BenchError(f"fennec {self.name}: {s.id} answers {name} with {got}, "
                                     f"the primary with {want}")


# --- Knot DNS -------------------------------------------------------------------------------

class KnotCluster:
    """A Knot DNS primary (update ACL, NOTIFY to both secondaries, journal of changes) and two
    Knot secondaries following it by IXFR."""

    def __init__(self, a, name, run, work, logs, zonefile):
        self.a, self.name, self.run, self.logs = a, name, run, logs
        self.dir = os.path.join(work, f"knot-{name}-r{run}")
        self.zonefile = zonefile
        self.ports = [PORTS["knot1"], PORTS["knot2"], PORTS["knot3"]]
        self.procs = [None, None, None]
        self.dns_port = self.ports[0]
        self.sec_ports = self.ports[1:]

    def config(self, i):
        d = os.path.join(self.dir, f"k{i + 1}")
        os.makedirs(os.path.join(d, "db"), exist_ok=True)
        os.makedirs(os.path.join(d, "journal"), exist_ok=True)
        os.makedirs(os.path.join(d, "zones"), exist_ok=True)
        logp = self.logpath(i)
        head = f"""server:
  listen: 127.0.0.1@{self.ports[i]}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
  rundir: {d}
  pidfile: {d}/knot.pid
  user: root
log:
  - target: {logp}
    any: info
database:
  storage: {d}/db
  journal-db: {d}/journal
"""
        if i == 0:
            text = head + f"""remote:
  - id: s1
    address: 127.0.0.1@{self.ports[1]}
  - id: s2
    address: 127.0.0.1@{self.ports[2]}
acl:
  - id: local_update
    address: 127.0.0.1
    action: update
  - id: local_transfer
    address: 127.0.0.1
    action: transfer
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
    notify: [s1, s2]
    acl: [local_update, local_transfer]
"""
        else:
            text = head + f"""remote:
  - id: primary
    address: 127.0.0.1@{self.ports[0]}
acl:
  - id: local_notify
    address: 127.0.0.1
    action: notify
template:
  - id: default
    storage: {d}/zones
    file: "%s.zone"
    semantic-checks: off
    journal-content: changes
    zonefile-sync: -1
    dnssec-signing: off
zone:
  - domain: {ZONE}
    master: primary
    acl: local_notify
"""
        cfg = os.path.join(d, "knot.conf")
        with open(cfg, "w") as f:
            f.write(text)
        return cfg

    def logpath(self, i):
        return os.path.join(self.logs, f"repl-r{self.run}-knot-{self.name}-k{i + 1}.log")

    def start(self):
        t0 = time.monotonic()
        cfg = self.config(0)
        self.procs[0] = start_proc([self.a.knotd, "-c", cfg], self.logpath(0))
        wait_answer(self.ports[0], ZONE, 6, LOAD_DEADLINE, self.procs[0])
        serial = soa_serial(self.ports[0])
        cfgs = [self.config(i) for i in (1, 2)]
        t1 = time.perf_counter_ns()
        for i in (1, 2):
            self.procs[i] = start_proc([self.a.knotd, "-c", cfgs[i - 1]], self.logpath(i))
        for i in (1, 2):
            wait_answer(self.ports[i], ZONE, 6, LOAD_DEADLINE, self.procs[i])
        self.wait_serial(serial, LOAD_DEADLINE)
        init = (time.perf_counter_ns() - t1) / 1e9
        log(f"knot {self.name} run {self.run}: primary and 2 secondaries serving serial "
            f"{serial} after {time.monotonic() - t0:.1f} s, the secondaries {init:.2f} s after "
            f"their exec (pids {' '.join(str(p.pid) for p in self.procs)})")
        return init

    def wait_serial(self, serial, deadline_s):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            self.alive()
            if all(soa_serial(p) == serial for p in self.sec_ports):
                return
            time.sleep(0.02)
        raise BenchError(f"knot {self.name}: secondaries not at serial {serial} within "
                         f"{deadline_s} s")

    def alive(self):
        for i, p in enumerate(self.procs):
            if p is None or p.poll() is not None:
                raise BenchError(f"knotd k{i + 1} ({self.name}) is not running (see "
                                 f"{self.logpath(i)})")

    def stop(self):
        for i in (2, 1, 0):
            stop_proc(self.procs[i])
            self.procs[i] = None


class KnotUpdater:
    """RFC 2136 UPDATE messages over one TCP connection to the Knot primary (the message
    knsupdate sends; built here so that the moment its answer arrives is known exactly)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def prepare(self, name, rdata):
        u = dns.update.UpdateMessage(ZONE + ".")
        u.id = secrets.randbelow(65536)
        u.add(f"{name}.{ZONE}.", TTL, "A", rdata)
        return u.id, u.to_wire()

    def send(self, prepared):
        qid, wire = prepared
        self.sock.sendall(struct.pack("!H", len(wire)) + wire)
        n = struct.unpack("!H", self.recv_exact(2))[0]
        resp = self.recv_exact(n)
        rid, flags = struct.unpack("!HH", resp[:4])
        if rid != qid or not flags & 0x8000 or flags & 0xF:
            raise BenchError(f"knot: UPDATE answered id={rid} (sent {qid}) "
                             f"rcode={dns.rcode.to_text(flags & 0xF)}")

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise BenchError("knot closed the UPDATE connection")
            buf += chunk
        return buf

    def close(self):
        self.sock.close()


# --- the phases -----------------------------------------------------------------------------

def phase_latency(kind, cluster, zone_tag, run, a):
    """--changes (Knot: --knot-changes) single adds; per secondary the time from the
    primary's answer until the secondary answers the new name."""
    count = a.changes if kind == "fennec" else a.knot_changes
    cap = LATENCY_PHASE_SECS[kind]
    deadline = FENNEC_CHANGE_DEADLINE if kind == "fennec" else KNOT_CHANGE_DEADLINE
    # the primary is polled too: it answers at once, so its figures are the floor of the
    # method (the client's and the machine's scheduling noise)
    if kind == "fennec":
        ports = [cluster.primary.dns_port] + [s.dns_port for s in cluster.secs]
        client = cluster.primary.http()
        client.json("/v1/status")  # opens the connection before anything is timed
    else:
        ports = [cluster.dns_port] + cluster.sec_ports
        client = KnotUpdater(cluster.dns_port)
    poller = Poller(ports, a.poll_us / 1e6)
    lat = [[] for _ in ports]
    worst = []
    missing = 0
    end = time.monotonic() + cap
    done = 0
    try:
        for i in range(count):  # bounded by the count ...
            if time.monotonic() >= end:  # ... and by time
                break
            name, rdata = f"l{zone_tag}{run}-{i}", rdata_of(i)
            if kind == "fennec":
                b = body([change("add", name, rdata)])
            else:
                b = client.prepare(name, rdata)
            poller.drain()
            if kind == "fennec":
                status, data = client.request("POST", f"/v1/zones/{ZONE}/changes", b)
                t0 = time.perf_counter_ns()
                if status != 200:
                    raise BenchError(f"fennec: POST /changes {name}: {status} {data[:300]!r}")
            else:
                client.send(b)
                t0 = time.perf_counter_ns()
            got = poller.wait(f"{name}.{ZONE}", deadline)
            done += 1
            for k, t in enumerate(got):
                if t is not None:
                    lat[k].append((t - t0) / 1e6)
            if any(t is None for t in got):
                missing += 1
                log(f"{kind} {zone_tag}: change {name} not answered within {deadline:g} s by "
                    f"{[WHO[k] for k, t in enumerate(got) if t is None]}")
                if missing >= 3:
                    break
                continue
            worst.append(max((t - t0) / 1e6 for t in got[1:]))
    finally:
        poller.close()
        client.close()
    for k in range(len(ports)):
        who = "p" if k == 0 else f"s{k}"
        record(f"lat_{zone_tag}_{who}_p50_ms", kind, run, pct(lat[k], 0.5))
        record(f"lat_{zone_tag}_{who}_p99_ms", kind, run, pct(lat[k], 0.99))
    record(f"lat_{zone_tag}_all_p50_ms", kind, run, pct(worst, 0.5))
    record(f"lat_{zone_tag}_all_p99_ms", kind, run, pct(worst, 0.99))
    record(f"lat_{zone_tag}_changes", kind, run, done)
    record(f"lat_{zone_tag}_missing", kind, run, missing)
    log(f"{kind} {zone_tag} run {run} latency: {done} changes; "
        + "; ".join(f"{WHO[k]} p50 {pct(lat[k], .5):.3f} ms p99 "
                    f"{pct(lat[k], .99):.3f} ms max {max(lat[k], default=float('nan')):.3f} ms"
                    for k in range(len(ports)))
        + f"; not answered within {deadline:g} s: {missing}")
    if missing:
        raise BenchError(f"{kind} {zone_tag}: {missing} change(s) not answered by every "
                         f"server within {deadline:g} s")


WHO = ["primary", "secondary 1", "secondary 2"]


def run_writers(cluster, bodies, secs, sampler=None):
    """WRITERS threads, each with its own keep-alive connection, sending its list of
    (changes, body) for SECS at most; returns (changes answered, seconds until the last
    answer, perf_counter_ns of the last answer)."""
    clients = [cluster.primary.http() for _ in range(WRITERS)]
    for c in clients:
        c.json("/v1/status")
    done = [0] * WRITERS
    last = [0] * WRITERS
    errors = []
    go = threading.Barrier(WRITERS + 1)
    t = {}

    def writer(w):
        try:
            go.wait(timeout=60)
            end = t["start"] + secs
            for n, b in bodies[w]:  # bounded by the list and by SECS
                if time.monotonic() >= end:
                    break
                status, data = clients[w].request("POST", f"/v1/zones/{ZONE}/changes", b)
                if status != 200:
                    raise BenchError(f"fennec: POST /changes ({n} changes): {status} "
                                     f"{data[:300]!r}")
                last[w] = time.perf_counter_ns()
                done[w] += n
        except Exception as e:  # noqa: BLE001  (reported by the caller)
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
    try:
        for th in threads:
            th.start()
        t["start"] = time.monotonic()
        t0 = time.perf_counter_ns()
        go.wait(timeout=60)
        if sampler:
            sampler.start()
        join_end = t["start"] + secs + REQUEST_TIMEOUT + 10
        for th in threads:
            th.join(timeout=max(0.1, join_end - time.monotonic()))
        if any(th.is_alive() for th in threads):
            raise BenchError("a writer did not finish in time")
    finally:
        for c in clients:
            c.close()
    if errors:
        raise errors[0]
    t_last = max(last) if any(last) else time.perf_counter_ns()
    return sum(done), (t_last - t0) / 1e9, t_last


class LagSampler(threading.Thread):
    """GET /v1/nodes on the primary every 200 ms; the largest entries_behind per node."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stop_ev = threading.Event()
        self.max = {}
        self.samples = 0

    def run(self):
        h = self.cluster.primary.http(False)
        try:
            while not self.stop_ev.wait(0.2):
                try:
                    v = h.json("/v1/nodes")
                except (OSError, http.client.HTTPException, BenchError, ValueError):
                    h.close()
                    h = self.cluster.primary.http(False)
                    continue
                self.samples += 1
                for n in v.get("nodes", []):
                    eb = n.get("entries_behind")
                    if isinstance(eb, int):
                        self.max[n["id"]] = max(self.max.get(n["id"], 0), eb)
        finally:
            h.close()


def phase_throughput(cl, run, a):
    """8 writers x batches of 100 for --conc-secs: an add batch, then the delete batch of
    the same names, alternately (the zone keeps its size)."""
    per = a.conc_batches
    bodies = []
    for w in range(WRITERS):
        lst = []
        for b in range(per):
            k = b // 2
            pairs = [(f"t{run}-{w}-{k}-{i}", rdata_of(i)) for i in range(BATCH)]
            action = "add" if b % 2 == 0 else "delete"
            lst.append((BATCH, body([change(action, n, r) for n, r in pairs])))
        bodies.append(lst)
    idx0 = cl.index()
    sampler = LagSampler(cl)
    try:
        total, secs, t_last = run_writers(cl, bodies, a.conc_secs, sampler)
        view = cl.nodes_view()
        idx = cl.index()
    finally:
        sampler.stop_ev.set()
        sampler.join(timeout=5)
    sync = cl.wait_synced(idx, SYNC_DEADLINE, since_ns=t_last)
    rate = total / secs if secs > 0 else float("nan")
    record("tput_cps", "fennec", run, rate)
    record("tput_changes", "fennec", run, total)
    record("tput_entries", "fennec", run, idx - idx0)
    for k, s in enumerate(cl.secs):
        ai, eb = view.get(s.id, (None, None))
        record(f"tput_behind_s{k + 1}", "fennec", run, eb if isinstance(eb, int) else float("nan"))
        record(f"tput_maxbehind_s{k + 1}", "fennec", run, sampler.max.get(s.id, float("nan")))
        record(f"tput_sync_s{k + 1}_ms", "fennec", run, sync[s.id])
    log(f"fennec throughput run {run}: {total} changes in {secs:.2f} s = {rate:.0f}/s, "
        f"{idx - idx0} journal entries (index {idx0}..{idx}); at the last answer the primary "
        f"saw {view}; most entries_behind during the phase {sampler.max} ({sampler.samples} "
        f"samples); at the primary's index after {sync} ms")
    # the last batches of each writer: the secondaries answer them as the primary does
    names = []
    for w in range(WRITERS):
        k = max(0, (per - 1) // 2)
        names += [f"t{run}-{w}-{k}-0", f"t{run}-{w}-{max(0, k - 1)}-1"]
    cl.check_same(names)


def write_changes(cl, prefix, count, batch=BATCH):
    """COUNT adds in batches of BATCH from 8 writers; returns (changes, seconds, the last
    name)."""
    per = -(-count // (WRITERS * batch))
    bodies = []
    left = count
    last = None
    for w in range(WRITERS):
        lst = []
        for b in range(per):
            n = min(batch, left)
            if n <= 0:
                break
            pairs = [(f"{prefix}-{w}-{b}-{i}", rdata_of(i)) for i in range(n)]
            lst.append((n, body([change("add", x, r) for x, r in pairs])))
            left -= n
            last = pairs[-1][0]
        bodies.append(lst)
    total, secs, _ = run_writers(cl, bodies, WRITE_PHASE_SECS)
    if total < count:
        raise BenchError(f"fennec {cl.name}: only {total} of {count} changes made within "
                         f"{WRITE_PHASE_SECS:g} s")
    return total, secs, last


def last_line(path, word):
    """The last line of file PATH that contains WORD (shortened), or ''."""
    found = ""
    with open(path, errors="replace") as f:
        for line in f:
            if word in line:
                found = line.strip()
    return found[:200]


def line_count(path):
    with open(path, errors="replace") as f:
        return sum(1 for _ in f)


def restore_ms(logpath, mark):
    """From a node's log after line MARK: the ms its start took to restore its own data
    ("restored index N from DIR: snapshot at S, E journal entries replayed in X ms"), and
    that line; (nan, '') when there is none."""
    with open(logpath, errors="replace") as f:
        lines = f.readlines()[mark:]
    for line in lines:
        if "restored index" in line and "replayed in " in line:
            try:
                return float(line.split("replayed in ")[1].split()[0]), line.strip()
            except (ValueError, IndexError):
                break
    return float("nan"), ""


def journal_first(logpath):
    """The first index the primary's journal keeps after its newest snapshot (from its log
    line "snapshot at index N written in X ms; the journal keeps A..B"), or 0."""
    first = 0
    with open(logpath, errors="replace") as f:
        for line in f:
            i = line.find("the journal keeps ")
            if i >= 0 and "snapshot at index" in line:
                try:
                    first = int(line[i + len("the journal keeps "):].split("..")[0])
                except ValueError:
                    pass
    return first


def phase_catchup(cl, sec, run, count, batch, fig):
    """SIGTERM SEC, COUNT adds in batches of BATCH, start SEC: time until its applied_index
    equals the primary's, and until it answers the last change. For the snapshot case
    (FIG snapcatch) SEC is started only once the primary's journal has been compacted past
    SEC's index (bounded; if that does not happen the primary serves from its journal and the
    figure says no snapshot was sent)."""
    other = [s for s in cl.secs if s is not sec]
    sec_index, _ = sec.applied()
    rc = sec.stop(signal.SIGTERM)
    if rc not in (0, None):
        log(f"fennec {cl.name} {sec.id}: exit status {rc} after SIGTERM")
    idx0 = cl.index()
    total, secs, last = write_changes(cl, f"c{fig}{run}", count, batch)
    idx = cl.index()
    log(f"fennec {cl.name} run {run}: {sec.id} stopped at index {sec_index}; {total} changes "
        f"in batches of {batch} made in {secs:.2f} s ({total / secs:.0f}/s, "
        f"{len(other)} secondary connected), primary at index {idx}")
    if fig == "snapcatch":
        end = time.monotonic() + SNAPSHOT_WAIT
        while journal_first(cl.primary.logpath) <= (sec_index or 0) + 1 and \
                time.monotonic() < end:
            cl.primary.alive()
            time.sleep(0.1)
        first = journal_first(cl.primary.logpath)
        log(f"fennec {cl.name} run {run}: the primary's journal starts at index {first} "
            f"({sec.id} needs {(sec_index or 0) + 1})")
    mark = line_count(cl.primary.logpath)
    smark = line_count(sec.logpath)
    t0 = sec.start()
    poller = Poller([sec.dns_port], 0.001)
    t_ans = None
    t_idx = None
    end = time.monotonic() + CATCHUP_DEADLINE
    try:
        while time.monotonic() < end and (t_ans is None or t_idx is None):
            sec.alive()
            if t_idx is None:
                ai, _ = sec.applied()
                if ai is not None and ai >= idx:
                    t_idx = time.perf_counter_ns()
            if t_ans is None:
                got = poller.wait(f"{last}.{ZONE}", 0.004)
                if got[0] is not None:
                    t_ans = got[0]
            else:
                time.sleep(0.004)
    finally:
        poller.close()
    if t_idx is None or t_ans is None:
        raise BenchError(f"fennec {cl.name}: {sec.id} did not catch up with index {idx} "
                         f"within {CATCHUP_DEADLINE:g} s (applied {sec.applied()[0]}, "
                         f"answers {last}: {t_ans is not None})")
    with open(cl.primary.logpath, errors="replace") as f:
        tail = f.readlines()[mark:]
    snap = any("sending the snapshot" in line and sec.id in line for line in tail)
    rms, rline = restore_ms(sec.logpath, smark)
    record(f"{fig}_restore_s", "fennec", run, rms / 1000)
    record(f"{fig}_s", "fennec", run, (t_idx - t0) / 1e9)
    record(f"{fig}_answer_s", "fennec", run, (t_ans - t0) / 1e9)
    record(f"{fig}_changes", "fennec", run, total)
    record(f"{fig}_entries", "fennec", run, idx - idx0)
    record(f"{fig}_snapshot", "fennec", run, 1 if snap else 0)
    log(f"fennec {cl.name} run {run} catch-up of {sec.id}: at index {idx} "
        f"{(t_idx - t0) / 1e9:.3f} s after its exec, answers {last} after "
        f"{(t_ans - t0) / 1e9:.3f} s; the primary {'sent' if snap else 'did not send'} a "
        f"snapshot; its start: {rline[rline.find('restored'):] or 'no restore line'}")
    return last


def phase_restart(cl, sec, run, name):
    """SIGKILL SEC, stop the primary, start SEC: exec to the first answer of NAME."""
    st = sec.status()
    records = sum(z.get("records", 0) for z in st.get("zones", []))
    sec.stop(signal.SIGKILL)
    for s in cl.secs:
        if s is not sec:
            s.stop()
    cl.primary.stop()
    smark = line_count(sec.logpath)
    t0 = sec.start()
    t1 = wait_answer(sec.dns_port, f"{name}.{ZONE}", 1, RESTART_DEADLINE, sec.proc, 0.001)
    ms = (t1 - t0) / 1e6
    st = sec.wait_control(30)
    rep = st.get("replication") or {}
    rms, rline = restore_ms(sec.logpath, smark)
    record("restart_ms", "fennec", run, ms)
    record("restart_restore_ms", "fennec", run, rms)
    record("restart_records", "fennec", run, records)
    log(f"fennec restart run {run}: {sec.id} ({records} records) killed, primary stopped; "
        f"answers {name} {ms:.1f} ms after its exec (applied_index "
        f"{rep.get('applied_index')}, connected {rep.get('connected')}); its start: "
        f"{rline[rline.find('restored'):] or 'no restore line'}")


# --- report ---------------------------------------------------------------------------------

# figure, label, format, better ("low"/"high"), goal (text, test on the fennec value or None),
# ratio (Knot/fennec shown when True)
ROWS = []


def _lat_rows(tag, label):
    rows = []
    for s in ("s1", "s2", "all", "p"):
        who = {"s1": "sec. 1", "s2": "sec. 2", "all": "slower sec.",
               "p": "primary (floor)"}[s]
        rows.append((f"lat_{tag}_{s}_p50_ms", f"{label}, {who}: p50 ms", "{:.3f}", "low",
                     None, s != "p"))
        rows.append((f"lat_{tag}_{s}_p99_ms", f"{label}, {who}: p99 ms", "{:.3f}", "low",
                     ("<= 5 ms", lambda v: v <= 5.0) if s != "p" else None, s != "p"))
    rows.append((f"lat_{tag}_changes", f"{label}: changes timed", "{:.0f}", "high", None, False))
    rows.append((f"lat_{tag}_missing", f"{label}: not answered in time", "{:.0f}", "low",
                 None, False))
    return rows


def set_rows(big_records, small_records):
    """The rows of the table; the zone labels carry their record counts."""
    ROWS[:] = (_lat_rows("big", f"ack->answered, {big_records:,} RRs")
               + _lat_rows("small", f"ack->answered, {small_records:,} RRs")
               + OTHER_ROWS)


OTHER_ROWS = [
    ("init_sync_s", "first transfer of the big zone to 2 new secondaries, s", "{:.2f}", "low",
     None, False),
    ("init_dropped", "  secondaries whose stream dropped in it (restarted)", "{:.0f}", "low",
     ("0", lambda v: v == 0), False),
    ("tput_cps", "8 writers x 100: acked changes/s", "{:.0f}", "high",
     (">= 20000", lambda v: v >= 20000), False),
    ("tput_changes", "8 writers x 100: changes acked", "{:.0f}", "high", None, False),
    ("tput_entries", "8 writers x 100: journal entries", "{:.0f}", "high", None, False),
    ("tput_behind_s1", "  entries_behind at the end, secondary 1", "{:.0f}", "low", None, False),
    ("tput_behind_s2", "  entries_behind at the end, secondary 2", "{:.0f}", "low", None, False),
    ("tput_maxbehind_s1", "  most entries_behind seen, secondary 1", "{:.0f}", "low", None,
     False),
    ("tput_maxbehind_s2", "  most entries_behind seen, secondary 2", "{:.0f}", "low", None,
     False),
    ("tput_sync_s1_ms", "  at the primary's index, secondary 1, ms", "{:.1f}", "low",
     ("<= 1000 ms", lambda v: v <= 1000), False),
    ("tput_sync_s2_ms", "  at the primary's index, secondary 2, ms", "{:.1f}", "low",
     ("<= 1000 ms", lambda v: v <= 1000), False),
    ("catchup_s", "catch-up (journal): exec to primary's index, s", "{:.3f}", "low",
     ("<= 5 s", lambda v: v <= 5), False),
    ("catchup_answer_s", "catch-up (journal): exec to last change answered, s", "{:.3f}", "low",
     None, False),
    ("catchup_restore_s", "  of which restoring its own data at start, s", "{:.3f}", "low",
     None, False),
    ("catchup_changes", "catch-up (journal): changes missed", "{:.0f}", "high", None, False),
    ("catchup_entries", "catch-up (journal): entries missed", "{:.0f}", "high", None, False),
    ("catchup_snapshot", "catch-up (journal): snapshot sent (1 = yes)", "{:.0f}", "low", None,
     False),
    ("snapcatch_s", "catch-up (snapshot): exec to primary's index, s", "{:.3f}", "low",
     ("<= 5 s", lambda v: v <= 5), False),
    ("snapcatch_answer_s", "catch-up (snapshot): exec to last change answered, s", "{:.3f}",
     "low", None, False),
    ("snapcatch_restore_s", "  of which restoring its own data at start, s", "{:.3f}", "low",
     None, False),
    ("snapcatch_changes", "catch-up (snapshot): changes missed", "{:.0f}", "high", None, False),
    ("snapcatch_entries", "catch-up (snapshot): entries missed", "{:.0f}", "high", None, False),
    ("snapcatch_snapshot", "catch-up (snapshot): snapshot sent (1 = yes)", "{:.0f}", "high",
     ("a snapshot", lambda v: v == 1), False),
    ("restart_ms", "restart after SIGKILL, primary down: exec to answer, ms", "{:.1f}", "low",
     ("<= 1000 ms", lambda v: v <= 1000), False),
    ("restart_restore_ms", "  of which restoring its own data (its log), ms", "{:.0f}", "low",
     None, False),
    ("restart_records", "restart: records the secondary held", "{:.0f}", "high", None, False),
]
RATIO_GOAL = 50.0


def med(vals, better):
    """Median with nan (a run without the figure) counted as the worst value."""
    if not vals:
        return None
    worst = math.inf if better == "low" else -math.inf
    v = [worst if math.isnan(x) else x for x in vals]
    m = statistics.median_low(v) if len(v) % 2 == 0 else statistics.median(v)
    return float("nan") if math.isinf(m) else m


def cell(fmt, v):
    if v is None:
        return "-"
    if math.isnan(v):
        return "n/a"
    return fmt.format(v)


def report(raw, header):
    data = {}
    with open(raw) as f:
        for line in f:
            p = line.split()
            if len(p) == 4:
                try:
                    data.setdefault((p[0], p[1]), []).append(float(p[3]))
                except ValueError:
                    data.setdefault((p[0], p[1]), []).append(float("nan"))
    out = list(header)
    w0, w = 56, 11
    out.append("figure".ljust(w0) + "fennec".rjust(w) + "Knot".rjust(w) + "Knot/fennec".rjust(13)
               + "  goal")
    out.append("-" * (w0 + 2 * w + 13 + 30))
    misses = []
    for fig, label, fmt, better, goal, ratio in ROWS:
        f = med(data.get((fig, "fennec"), []), better)
        k = med(data.get((fig, "knot"), []), better)
        if f is None and k is None:
            continue
        r = "-"
        notes = []
        if goal:
            ok = f is not None and not math.isnan(f) and goal[1](f)
            notes.append(f"{goal[0]}: {'met' if ok else 'MISSED'}")
            if not ok:
                misses.append(f"{label}: {cell(fmt, f)} (goal {goal[0]})")
        if ratio and f is not None and k is not None and not math.isnan(f) and not math.isnan(k):
            if f > 0:
                x = k / f
                r = f"{x:.0f}x" if x >= 10 else f"{x:.2f}x"
                ok = x >= RATIO_GOAL
                notes.append(f">= {RATIO_GOAL:.0f}x: {'met' if ok else 'MISSED'}")
                if not ok:
                    misses.append(f"{label}: Knot/fennec {r} (goal >= {RATIO_GOAL:.0f}x)")
        elif ratio and k is None and f is not None:
            r = "no Knot"
        out.append(label.ljust(w0) + cell(fmt, f).rjust(w) + cell(fmt, k).rjust(w) + r.rjust(13)
                   + ("  " + "; ".join(notes) if notes else ""))
    out.append("")
    if misses:
        out.append("goals MISSED:")
        out += ["  MISSED " + m for m in misses]
    else:
        out.append("every goal met")
    out.append("")
    out.append("individual runs: median [run 1, run 2, ...]")
    for fig, _label, fmt, better, _g, _r in ROWS:
        for s in ("fennec", "knot"):
            if (fig, s) in data:
                runs = " ".join(cell(fmt, v) for v in data[(fig, s)])
                out.append(f"  {fig:22} {s:7} {cell(fmt, med(data[(fig, s)], better)):>10}  "
                           f"[{runs}]")
    if FAILURES:
        out.append("")
        out.append("FAILED (figures of these parts are missing or n/a):")
        out += ["  " + x for x in FAILURES]
    return "\n".join(out) + "\n"


# --- main -----------------------------------------------------------------------------------





def parse_args(argv):
    title, usage, rest = __doc__.split("\n\n", 2)
    ap = argparse.ArgumentParser(
        prog="repl_bench.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=usage[len("usage: "):], description=title + "\n\n" + rest)
    ap.add_argument("--fennecd")
    ap.add_argument("--knotd", default=shutil.which("knotd") or "/usr/sbin/knotd")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--hosts", type=int, help="hosts of the big zone")
    ap.add_argument("--small-hosts", type=int)
    ap.add_argument("--changes", type=int, help="single changes timed per zone (fennec)")
    ap.add_argument("--knot-changes", type=int, help="single changes timed per zone (Knot)")
    ap.add_argument("--conc-secs", type=float)
    ap.add_argument("--conc-batches", type=int, help="most batches per writer (throughput)")
    ap.add_argument("--catchup-changes", type=int)
    ap.add_argument("--snap-changes", type=int, help="changes missed in the snapshot case")
    ap.add_argument("--snap-batch", type=int, help="changes per batch in the snapshot case")
    ap.add_argument("--snap-keep", type=int, help="journal.keep of the snapshot case's primary")
    ap.add_argument("--snap-every", type=int, help="journal.snapshot_every of that primary")
    ap.add_argument("--poll-us", type=float, help="query interval per secondary, microseconds")
    ap.add_argument("--no-knot", action="store_true", help="fennec only")
    ap.add_argument("--zonedir", help="use DIR/example.com.zone (from genzone.py) as the big "
                    "zone instead of generating one; --hosts must then be its host count")
    ap.add_argument("--workdir", help="folder for zones, configs and journals (default: a new "
                    "temporary folder, removed at the end; a given folder is left to its "
                    "owner, only the clusters' folders in it are removed)")
    a = ap.parse_args(argv)
    q = a.quick
    for k, full, quick in (("runs", 3, 1), ("hosts", 740000, 20000), ("small_hosts", 1000, 1000),
                           ("changes", 1000, 100), ("knot_changes", 100, 20),
                           ("conc_secs", 10.0, 3.0), ("conc_batches", 1250, 200),
                           ("catchup_changes", 100000, 10000), ("snap_changes", 100000, 24000),
                           ("snap_batch", 4, 1), ("snap_keep", 1000, 1000),
                           ("snap_every", 5000, 5000), ("poll_us", 200.0, 200.0)):
        if getattr(a, k) is None:
            setattr(a, k, quick if q else full)
    limits = (("runs", 1, 20), ("hosts", 10, 5_000_000), ("small_hosts", 10, 5_000_000),
              ("changes", 1, 100000), ("knot_changes", 1, 100000), ("conc_secs", 1, 600),
              ("conc_batches", 2, 100000), ("catchup_changes", 100, 5_000_000),
              ("snap_changes", 100, 5_000_000), ("snap_batch", 1, 1000),
              ("snap_keep", 1, 100000000), ("snap_every", 1, 100000000),
              ("poll_us", 20, 100000))
    for k, lo, hi in limits:
        if not lo <= getattr(a, k) <= hi:
            ap.error(f"--{k.replace('_', '-')} must be within {lo}..{hi}")
    return a


def fsync_probe(folder, count=200):
    """p50 and p99 ms of fdatasync after a 4 KiB write in FOLDER: what one durable journal
    write costs on this disk at best (context for the latency figures)."""
    path = os.path.join(folder, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    v = []
    try:
        for i in range(count):
            os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            v.append((time.perf_counter() - t) * 1e3)
    finally:
        os.close(fd)
        os.unlink(path)
    return pct(v, 0.5), pct(v, 0.99)


def guarded(what, fn):
    """Runs FN; a BenchError is logged and remembered (the run goes on with the next part)."""
    try:
        fn()
        return True
    except (BenchError, OSError, http.client.HTTPException, ValueError) as e:
        msg = f"{what}: {type(e).__name__}: {e}"
        log("FAIL " + msg)
        FAILURES.append(msg)
        return False


def main(argv):
    global LOGFILE, RAW
    a = parse_args(argv)
    a.fennecd = a.fennecd or find_fennecd(ROOT)
    if not a.fennecd or not os.access(a.fennecd, os.X_OK):
        sys.stderr.write("repl_bench.py: no fennecd (build one: cmake -S . -B build "
                         "-DCMAKE_BUILD_TYPE=Release && cmake --build build -j2; or pass "
                         "--fennecd)\n")
        return 2
    a.fennecd = os.path.realpath(a.fennecd)
    if not a.no_knot and not os.access(a.knotd, os.X_OK):
        sys.stderr.write(f"repl_bench.py: {a.knotd} not found: apt-get install knot "
                         "(or pass --no-knot)\n")
        return 2
    for p in PORTS.values():
        assert PORT_RANGE[0] <= p <= PORT_RANGE[1]
        if not port_free(p):
            sys.stderr.write(f"repl_bench.py: port {p} on 127.0.0.1 is in use\n")
            return 2

    out = a.out or tempfile.mkdtemp(prefix="fennec-repl-bench.")
    logs = os.path.join(out, "logs")
    os.makedirs(logs, exist_ok=True)
    LOGFILE = os.path.join(logs, "repl-run.log")
    RAW = os.path.join(out, "repl_raw.txt")
    open(RAW, "w").close()
    own_work = a.workdir is None
    work = a.workdir or tempfile.mkdtemp(prefix="fennec-repl-work.")
    os.makedirs(work, exist_ok=True)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    clusters = []
    try:
        zinfo = {}
        zones = {}
        for tag, hosts in (("big", a.hosts), ("small", a.small_hosts)):
            if tag == "big" and a.zonedir:
                zones[tag] = os.path.join(os.path.abspath(a.zonedir), "example.com.zone")
                if not os.path.isfile(zones[tag]):
                    raise BenchError(f"no {zones[tag]}")
                with open(zones[tag]) as f:
                    records = sum(1 for line in f if " IN " in line)
                zinfo[tag] = f"zone example.com: {hosts} hosts, {records} records"
                continue
            d = os.path.join(work, f"zone-{tag}")
            zinfo[tag] = subprocess.run(
                [sys.executable, os.path.join(HERE, "genzone.py"), d, str(hosts),
                 "--no-queries"], check=True, capture_output=True, text=True,
                timeout=900).stdout.strip()
            zones[tag] = os.path.join(d, "example.com.zone")
        log(f"replication benchmark: big {zinfo['big']}; small {zinfo['small']}; "
            f"results in {out}")
        fs = fsync_probe(work)
        log(f"fdatasync of 4 KiB in {work}: p50 {fs[0]:.3f} ms, p99 {fs[1]:.3f} ms")

        def cluster(c):
            clusters.append(c)
            return c

        for run in range(1, a.runs + 1):
            # fennec, the big zone: latency, throughput, catch-up, restart
            cl = cluster(FennecCluster(a, "big", run, work, logs, zones["big"]))

            def fennec_big(cl=cl, run=run):
                init = cl.start()
                record("init_sync_s", "fennec", run, max(init.values()) / 1000)
                record("init_dropped", "fennec", run, cl.restarted)
                phase_latency("fennec", cl, "big", run, a)
                guarded(f"fennec throughput run {run}", lambda: phase_throughput(cl, run, a))
                last = phase_catchup(cl, cl.secs[1], run, a.catchup_changes, BATCH,
                                     "catchup")
                cl.wait_synced(cl.index(), SYNC_DEADLINE)
                phase_restart(cl, cl.secs[0], run, last)

            guarded(f"fennec big-zone cluster run {run}", fennec_big)
            cl.stop()

            cl = cluster(FennecCluster(a, "small", run, work, logs, zones["small"]))

            def fennec_small(cl=cl, run=run):
                cl.start()
                phase_latency("fennec", cl, "small", run, a)

            guarded(f"fennec small-zone cluster run {run}", fennec_small)
            cl.stop()

            if not a.no_knot:
                for tag in ("big", "small"):
                    kc = cluster(KnotCluster(a, tag, run, work, logs, zones[tag]))

                    def knot(kc=kc, tag=tag, run=run):
                        init = kc.start()
                        if tag == "big":
                            record("init_sync_s", "knot", run, init)
                        phase_latency("knot", kc, tag, run, a)

                    guarded(f"knot {tag}-zone cluster run {run}", knot)
                    kc.stop()

            cl = cluster(FennecCluster(a, "snap", run, work, logs, zones["big"],
                                       secondaries=("ns2",),
                                       journal=(a.snap_keep, a.snap_every)))

            def fennec_snap(cl=cl, run=run):
                cl.start()
                phase_catchup(cl, cl.secs[0], run, a.snap_changes, a.snap_batch,
                              "snapcatch")

            guarded(f"fennec snapshot catch-up run {run}", fennec_snap)
            cl.stop()
            # the work folder of this run's clusters is not needed any more
            for c in list(clusters):
                shutil.rmtree(c.dir, ignore_errors=True)
                clusters.remove(c)

        vers = [f"fennecd {a.fennecd} ({version(a.fennecd, '--version')})"]
        if not a.no_knot:
            vers.append(version(a.knotd, "-V"))
        header = [
            f"replication benchmark {time.strftime('%FT%TZ', time.gmtime())} on "
            f"{os.uname().nodename}, {os.cpu_count()} CPUs; " + "; ".join(vers),
            f"big {zinfo['big']}; small {zinfo['small']}; runs={a.runs} (medians) "
            f"changes={a.changes} knot_changes={a.knot_changes} conc_secs={a.conc_secs:g} "
            f"conc_batches={a.conc_batches} catchup_changes={a.catchup_changes} "
            f"snap_changes={a.snap_changes} snap_batch={a.snap_batch} snap_keep={a.snap_keep} "
            f"snap_every={a.snap_every} poll_us={a.poll_us:g}",
            "1 primary + 2 secondaries each, loopback, 1 worker per node, unpinned; fennec: "
            "POST /changes, stream; Knot: UPDATE over TCP, NOTIFY + IXFR",
            f"disk: fdatasync of 4 KiB in the work folder p50 {fs[0]:.3f} ms, p99 {fs[1]:.3f} ms "
            f"(at the start; every fennec node makes each entry durable before serving it)",
            "",
        ]
        set_rows(*(int(zinfo[t].split(", ")[1].split()[0]) for t in ("big", "small")))
        text = report(RAW, header)
        with open(os.path.join(out, "repl_results.txt"), "w") as f:
            f.write(text)
        print(text, end="")
        print(f"\nresults: {os.path.join(out, 'repl_results.txt')}")
        return 1 if FAILURES else 0
    except (Interrupted, KeyboardInterrupt) as e:
        print(f"repl_bench.py: interrupted ({e})", file=sys.stderr)
        return 130
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        log(f"FAIL: {type(e).__name__}: {e}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in list(RUNNING):
            stop_proc(p)
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
        else:
            for c in clusters:
                shutil.rmtree(c.dir, ignore_errors=True)
            for tag in ("big", "small"):
                shutil.rmtree(os.path.join(work, f"zone-{tag}"), ignore_errors=True)


def version(binary, flag):
    try:
        v = subprocess.run([binary, flag], capture_output=True, text=True, timeout=10)
        return ((v.stdout or v.stderr).strip().splitlines() or ["?"])[0]
    except (OSError, subprocess.SubprocessError):
        return "?"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
