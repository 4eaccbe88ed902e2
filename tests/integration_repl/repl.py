"""Shared harness of the replication integration tests (tests/integration_repl/test_*.py).

Every test starts REAL fennecd processes (one primary, secondaries) in a temporary folder of
its own, drives them with real clients (urllib for the control API, fennecctl, dig, kdig,
dnspython over UDP) and stops what it started by pid. Ports: 127.0.0.1:16000-16199 only;
each test owns the 20 ports 16000 + 20 * SLOT .. + 19 (SLOT 0..9), so the tests may run side
by side. A node k of a test listens on base + 3k (DNS), base + 3k + 1 (control) and
base + 3k + 2 (replication, primary only); base + 18 and base + 19 are left for the test.

Checks that every test gets from Cluster.finish(): each fennecd stopped with SIGTERM exited
0, and no log holds "runtime error" (UBSan) or "AddressSanitizer". The temporary folder is
removed (its logs are printed first when a check failed).
"""
import ctypes
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

PORT_FIRST, PORT_LAST = 16000, 16199
ZONE = "example.com"
SERIAL = 2024010101

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # A test killed by ctest's timeout must not leave daemons behind.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def zone_text(serial=SERIAL, extra=""):
    return ("$ORIGIN example.com.\n$TTL 300\n"
            "@ IN SOA ns1 hostmaster %d 7200 3600 1209600 300\n"
            "@ IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.10\n%s" % (serial, extra))


def fqdn(name):
    """NAME relative to the zone unless it ends in a dot or is the zone or inside it."""
    if name.endswith("."):
        return name
    if name == ZONE or name.endswith("." + ZONE):
        return name + "."
    return "%s.%s." % (name, ZONE)


def addr_of(i):
    """A distinct IPv4 address for record number I (rdata of the test records)."""
    return "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)


def percentile(values, p):
    """Nearest-rank percentile of VALUES (p in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


class Cluster:
    """One test's folder, key, checks and nodes."""

    def __init__(self, name, slot, argv):
        if len(argv) < 2:
            print("usage: %s FENNECD [FENNECCTL]" % argv[0])
            sys.exit(2)
        self.t0 = time.monotonic()
        self.name = name
        self.fennecd = os.path.abspath(argv[1])
        self.fennecctl = os.path.abspath(argv[2] if len(argv) > 2 else
                                         os.path.join(os.path.dirname(argv[1]), "fennecctl"))
        for b in (self.fennecd, self.fennecctl):
            if not os.access(b, os.X_OK):
                print("FAIL %s is not an executable" % b)
                sys.exit(1)
        for tool, package in (("dig", "bind9-dnsutils"), ("kdig", "knot-dnsutils"),
                              ("openssl", "openssl")):
            if not shutil.which(tool):
                print("FAIL %s is missing: install the Debian package %s" % (tool, package))
                sys.exit(1)
        assert 0 <= slot <= 9
        self.port_base = PORT_FIRST + 20 * slot
        assert self.port_base + 19 <= PORT_LAST
        self.failures = []
        self.nodes = []
        self.cleanups = []  # run after the nodes are stopped, before the folder goes
        self.work = tempfile.mkdtemp(prefix="fennec-repl-%s-" % name)
        self.key = subprocess.run(["openssl", "rand", "-hex", "32"], capture_output=True,
                                  text=True, check=True).stdout.strip()
        self.key_file = self.write("cluster.key", self.key + "\n")
        os.chmod(self.key_file, 0o600)
        self.token = hmac.new(self.key.encode(), b"fennec-control", hashlib.sha256).hexdigest()
        self.zone_file = self.write("example.com.zone", zone_text())
        self.phase_t = time.monotonic()
        print("== %s: work folder %s, ports %d-%d" % (name, self.work, self.port_base,
                                                     self.port_base + 19))
        sys.stdout.flush()

    # ---- checks and output

    def check(self, cond, what, detail=""):
        if cond:
            print("ok   %s" % what)
        else:
            print("FAIL %s %s" % (what, str(detail)[:3000]))
            self.failures.append(what)
        sys.stdout.flush()
        return cond

    def phase(self, what):
        now = time.monotonic()
        print("-- %s (%.1f s since the previous phase, %.1f s since start)" %
              (what, now - self.phase_t, now - self.t0))
        self.phase_t = now
        sys.stdout.flush()

    def write(self, rel, text):
        path = os.path.join(self.work, rel)
        with open(path, "w") as f:
            f.write(text)
        return path

    # ---- nodes

    def primary(self, node_id="ns1", journal=None, data_dir=None, zones=True, key_file=None):
        return self._node(node_id, "primary", journal=journal, data_dir=data_dir, zones=zones,
                          key_file=key_file)

    def secondary(self, node_id, primary_addr=None, data_dir=None, key_file=None, journal=None):
        return self._node(node_id, "secondary", primary_addr=primary_addr, data_dir=data_dir,
                          key_file=key_file, journal=journal)

    def _node(self, node_id, role, **kw):
        k = len(self.nodes)
        assert k < 6
        n = Node(self, node_id, role, self.port_base + 3 * k, **kw)
        self.nodes.append(n)
        return n

    def spare_port(self, i):
        assert i in (0, 1)
        return self.port_base + 18 + i

    @property
    def the_primary(self):
        return next(n for n in self.nodes if n.role == "primary")

    def register(self, node):
        """fennecctl node add on the primary."""
        p = self.the_primary
        rc, out, err = self.ctl(p, "node", "add", node.id, "127.0.0.1:%d" % node.control_port)
        self.check(rc == 0, "fennecctl node add %s" % node.id, (rc, out, err))

    def ctl(self, node, *args, key=True, timeout=30):
        cmd = [self.fennecctl, "-s", node.url]
        if key:
            cmd += ["--key-file", self.key_file]
        env = dict(os.environ)
        env.pop("FENNEC_KEY_FILE", None)
        env.pop("FENNEC_URL", None)
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                           env=env, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    # ---- writes through the primary's API

    def change(self, changes, wait_all=False, timeout=10, node=None):
        """POST /v1/zones/example.com/changes; returns (HTTP status, JSON body or text)."""
        node = node or self.the_primary
        body = json.dumps({"changes": changes}).encode()
        return node.http("POST", "/v1/zones/%s/changes%s" % (ZONE, "?wait=all" if wait_all
                                                              else ""),
                         body=body, token=self.token, timeout=timeout)

    def add(self, name, address, ttl=300, **kw):
        return self.change([{"action": "add", "name": name, "ttl": ttl, "type": "A",
                             "rdata": address}], **kw)

    # ---- convergence

    def wait_converged(self, nodes, timeout=20):
        """Waits until every node's applied index equals the primary's index (and stays for
        one more look); returns the index, or None after TIMEOUT seconds."""
        p = self.the_primary
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            want = p.index()
            got = [n.index() for n in nodes]
            if want is not None and all(g == want for g in got):
                return want
            time.sleep(0.05)
        print("   not converged: primary %r, %s" % (p.index(), ", ".join(
            "%s %r" % (n.id, n.index()) for n in nodes)))
        return None

    def compare(self, nodes, names, what):
        """Checks that every node answers NAMES (A) exactly as the primary does, with one
        record per name, and serves the primary's SOA serial and record count."""
        p = self.the_primary
        want = {nm: p.query(nm) for nm in names}
        bad_primary = [nm for nm, (rc, rr) in want.items() if rc != "NOERROR" or len(rr) != 1]
        self.check(not bad_primary, "%s: the primary answers each of %d names with exactly one "
                   "A record" % (what, len(names)),
                   [(nm, want[nm]) for nm in bad_primary[:10]])
        serial = p.serial()
        records = p.zone_records()
        for n in nodes:
            diff = []
            for nm in names:
                got = n.query(nm)
                if got != want[nm]:
                    diff.append((nm, want[nm], got))
            self.check(not diff, "%s: %s answers the %d names as the primary does" %
                       (what, n.id, len(names)), "%d differ, first: %r" % (len(diff), diff[:5]))
            self.check(n.serial() == serial and serial is not None,
                       "%s: %s serves the primary's SOA serial %r" % (what, n.id, serial),
                       n.serial())
            self.check(n.zone_records() == records,
                       "%s: %s holds as many records as the primary (%r): none twice, none "
                       "missing" % (what, n.id, records), n.zone_records())

    # ---- the end

    def finish(self):
        """Stops every node still running (SIGTERM, exit 0 expected), checks the logs,
        removes the folder; returns the exit status."""
        for n in self.nodes:
            if n.running():
                n.stop()
        for n in self.nodes:
            n.kill_quietly()
            text = n.log_text()
            bad = [line for line in text.splitlines()
                   if "runtime error" in line or "AddressSanitizer" in line]
            self.check(not bad, "%s: log free of \"runtime error\" and \"AddressSanitizer\"" %
                       n.id, "\n".join(bad[:20]))
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - a failed clean-up is a failed check
                self.check(False, "clean-up %s" % getattr(fn, "__name__", fn), repr(e))
        took = time.monotonic() - self.t0
        if self.failures:
            for n in self.nodes:
                lines = n.log_text().splitlines()
                print("---- last lines of %s's log (%d lines) ----" % (n.id, len(lines)))
                print("\n".join(lines[-60:]))
        shutil.rmtree(self.work, ignore_errors=True)
        if os.path.exists(self.work):
            self.check(False, "the temporary folder %s is removed" % self.work)
        if self.failures:
            print("\n%s: %d check(s) failed in %.1f s: %s" % (self.name, len(self.failures),
                                                            took, "; ".join(self.failures)))
            return 1
        print("\n%s: all checks passed in %.1f s" % (self.name, took))
        return 0

    def run(self, body):
        """Runs BODY(self), then finish(); an exception is a failure, not a leak."""
        try:
            body(self)
        except Exception as e:  # noqa: BLE001 - report it as a failed check, then clean up
            import traceback
            traceback.print_exc()
            self.check(False, "the test ran to its end", repr(e))
        finally:
            rc = self.finish()
        return rc


class Node:
    def __init__(self, cluster, node_id, role, base, primary_addr=None, journal=None,
                 data_dir=None, zones=True, key_file=None):
        self.c = cluster
        self.id = node_id
        self.role = role
        self.dns_port = base
        self.control_port = base + 1
        self.repl_port = base + 2
        self.url = "http://127.0.0.1:%d" % self.control_port
        self.data_dir = data_dir or os.path.join(cluster.work, "data", node_id)
        self.log_path = os.path.join(cluster.work, node_id + ".log")
        self.cfg_path = os.path.join(cluster.work, node_id + ".yaml")
        self.proc = None
        self.starts = 0
        key_file = key_file or cluster.key_file
        text = ("node:\n  id: %s\n  role: %s\n  data_dir: %s\n"
                "listen:\n  dns: [\"127.0.0.1:%d\"]\n  control: \"127.0.0.1:%d\"\n"
                % (node_id, role, self.data_dir, self.dns_port, self.control_port))
        if role == "primary":
            text += "  replication: \"127.0.0.1:%d\"\n" % self.repl_port
            text += "cluster:\n  key_file: %s\n" % key_file
            if zones:
                text += "zones:\n  - name: %s\n    file: %s\n" % (ZONE, cluster.zone_file)
        else:
            primary_addr = primary_addr or "127.0.0.1:%d" % cluster.the_primary.repl_port
            text += "cluster:\n  primary: \"%s\"\n  key_file: %s\n" % (primary_addr, key_file)
        if journal:
            text += "journal: {%s}\n" % ", ".join("%s: %s" % kv for kv in journal.items())
        text += "workers: 1\n"
        with open(self.cfg_path, "w") as f:
            f.write(text)

    # ---- process

    def start(self, *args, wait=True):
        """Starts fennecd (its output appended to the node's log); with WAIT, until its control
        endpoint answers (a failure to start is a failed check)."""
        assert not self.running()
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write("==== start %d: fennecd -c %s %s\n" % (self.starts, self.cfg_path,
                                                         " ".join(args)))
            log.flush()
            self.proc = subprocess.Popen([self.c.fennecd, "-c", self.cfg_path] + list(args),
                                         cwd=self.c.work, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent)
        if not wait:
            return True
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                status, _ = self.http("GET", "/v1/status", timeout=2)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        self.c.check(False, "%s starts and opens its control endpoint" % self.id,
                     "exit status %r" % self.proc.poll())
        return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, what=None):
        """SIGTERM; checks that it exits 0 within 20 s."""
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "still running 20 s after SIGTERM"
        self.c.check(rc == 0, what or "%s exits 0 on SIGTERM" % self.id, "rc=%r" % rc)
        self.proc = None
        return rc

    def kill9(self):
        assert self.running()
        self.proc.send_signal(signal.SIGKILL)
        rc = self.proc.wait(timeout=20)
        self.proc = None
        return rc

    def kill_quietly(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ---- control API

    def http(self, method, path, body=None, token=None, timeout=10):
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            return status, json.loads(data)
        return status, data.decode(errors="replace")

    def get(self, path):
        try:
            status, body = self.http("GET", path, timeout=5)
        except OSError:
            return None
        return body if status == 200 else None

    def status(self):
        return self.get("/v1/status")

    def repl(self):
        st = self.status()
        return st.get("replication") if isinstance(st, dict) else None

    def index(self):
        """Primary: its journal index; secondary: its applied index (None when unreachable)."""
        r = self.repl()
        if not r:
            return None
        return r.get("index") if self.role == "primary" else r.get("applied_index")

    def nodes(self):
        """/v1/nodes as a dict id -> row."""
        body = self.get("/v1/nodes")
        if not isinstance(body, dict):
            return None
        return {row["id"]: row for row in body.get("nodes", [])}

    def zone_records(self):
        st = self.status()
        if not isinstance(st, dict):
            return None
        for z in st.get("zones", []):
            if z.get("name", "").rstrip(".") == ZONE:
                return z.get("records")
        return None

    # ---- DNS

    def query(self, name, qtype="A", timeout=1.0, tries=3):
        """(rcode text, sorted rdata texts of NAME/QTYPE) over UDP; ("TIMEOUT", []) when
        nothing came back."""
        fq = fqdn(name)
        q = dns.message.make_query(fq, qtype)
        for _ in range(tries):
            try:
                r = dns.query.udp(q, "127.0.0.1", port=self.dns_port, timeout=timeout)
            except (dns.exception.Timeout, OSError):
                continue
            rr = []
            for rrset in r.answer:
                if rrset.rdtype == dns.rdatatype.from_text(qtype) and \
                        rrset.name.to_text().lower() == fq.lower():
                    rr += [x.to_text() for x in rrset]
            return dns.rcode.to_text(r.rcode()), sorted(rr)
        return "TIMEOUT", []

    def serial(self):
        rc, rr = self.query(ZONE + ".", "SOA")
        if rc != "NOERROR" or len(rr) != 1:
            return None
        return int(rr[0].split()[2])

    def dig(self, name, qtype="A", tool="dig"):
        """Asks with dig or kdig; returns (status, sorted rdata of the answer section)."""
        fq = fqdn(name)
        if tool == "dig":
            args = ["dig", "+time=2", "+tries=2", "-p", str(self.dns_port), "@127.0.0.1", fq,
                    qtype]
        else:
            args = ["kdig", "+time=2", "+retry=1", "-p", str(self.dns_port), "@127.0.0.1", fq,
                    qtype]
        p = subprocess.run(args, capture_output=True, text=True, timeout=15)
        status, section, rr = None, None, []
        for line in p.stdout.splitlines():
            if "status: " in line and "HEADER" in line:
                status = line.split("status: ")[1].replace(";", ",").split(",")[0].strip()
            elif line.startswith(";; ANSWER SECTION") or line.startswith(";; ANSWER SECTION:"):
                section = "ANSWER"
            elif line.startswith(";;") and "SECTION" in line:
                section = None
            elif not line.strip():
                section = None if tool == "dig" else section
            elif section == "ANSWER" and not line.startswith(";"):
                parts = line.split(None, 4)
                if len(parts) == 5 and parts[3] == qtype:
                    rr.append(parts[4])
        return status, sorted(rr)


class Writer(threading.Thread):
    """Adds records w<N> (one per change) to the primary as fast as the API takes them until
    stopped; keeps every change that was answered 200 (name -> (address, index)) and counts
    the others."""

    def __init__(self, cluster, prefix="w", pause=0.0):
        super().__init__(daemon=True)
        self.c = cluster
        self.prefix = prefix
        self.pause = pause
        self.acked = {}
        self.unacked = []  # names whose write got no 200 (the outcome is unknown)
        self.errors = []
        self.n = 0
        self._quit = threading.Event()
        self._hold = threading.Event()
        self._held = threading.Event()

    def run(self):
        while not self._quit.is_set():
            if self._hold.is_set():
                self._held.set()
                time.sleep(0.01)
                continue
            self._held.clear()
            name = "%s%d" % (self.prefix, self.n)
            address = addr_of(self.n)
            self.n += 1
            try:
                status, body = self.c.add(name, address, timeout=5)
            except Exception as e:  # noqa: BLE001 - a primary killed mid-answer: unknown
                status, body = None, repr(e)
            if status == 200 and isinstance(body, dict):
                self.acked[name] = (address, body.get("index"))
            else:
                self.unacked.append(name)
                if len(self.errors) < 50:
                    self.errors.append((name, status, str(body)[:200]))
                time.sleep(0.02)  # the primary is away: do not spin
            if self.pause:
                time.sleep(self.pause)

    def hold(self, timeout=10):
        """Pauses between two writes; returns once no write is in flight."""
        self._held.clear()
        self._hold.set()
        return self._held.wait(timeout)

    def resume(self):
        self._hold.clear()

    def finish(self):
        self._quit.set()
        self.join(timeout=20)


def wait_for(pred, timeout, step=0.05):
    """Polls PRED until it returns a true value (returned) or TIMEOUT seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)
