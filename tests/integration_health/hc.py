"""Shared harness of the health-check integration tests (tests/integration_health/test_*.py).

Built on the replication harness (tests/integration_repl/repl.py): every test runs REAL
fennecd processes, a primary with a `health:` section and two secondaries that learn it from
the log, in a temporary folder of its own, and stops what it started by pid. What the checks
probe are real HTTP(S) servers this process runs on loopback addresses of its own
(127.0.100+SLOT.K): the tests start them, stop them (the listening socket is closed: a connect
is refused at once), slow them down, make them answer 500 or another body, and read the Host
header and the TLS SNI each probe carried.

Ports: 16600-16799 only. Test SLOT (0..9) owns 16600 + 20 * SLOT .. + 19: node k listens on
base + 3k (DNS), base + 3k + 1 (control), base + 3k + 2 (replication, primary only); the
test's servers listen on base + 18 (on 127.0.100+SLOT.K, never on 127.0.0.1). So the tests may
run side by side, with each other and with the replication tests (16000-16199).
"""
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration_repl"))
import repl  # noqa: E402

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

repl.PORT_FIRST, repl.PORT_LAST = 16600, 16799
wait_for = repl.wait_for
ZONE = repl.ZONE


# ---- test servers --------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the name http.server calls
        srv = self.server.owner
        with srv.lock:
            srv.requests.append({"path": self.path, "host": self.headers.get("Host"),
                                 "sni": getattr(self.connection, "fennec_sni", None),
                                 "t": time.monotonic()})
            status, body, delay = srv.status, srv.body, srv.delay
        if delay:
            time.sleep(delay)
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the prober gave up (a timeout): nothing to answer
        self.close_connection = True

    def log_message(self, fmt, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, owner):
        self.owner = owner
        super().__init__(addr, _Handler)

    def finish_request(self, request, client_address):
        # TLS: the handshake runs in the request's thread, so a client that gives up on the
        # certificate never holds up the accept loop.
        if self.owner.tls:
            ctx = self.owner.tls
            request.settimeout(5)
            try:
                conn = ctx.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as e:
                with self.owner.lock:
                    self.owner.tls_errors.append(repr(e))
                return
            request = conn
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass


class Server:
    """An HTTP (or, with TLS = (cert, key), HTTPS) server on ADDRESS:PORT whose answer the test
    sets: STATUS, BODY, DELAY seconds before the answer. REQUESTS lists what it was asked
    (path, Host header, SNI)."""

    def __init__(self, address, port, tls=None):
        self.address, self.port = address, port
        self.status, self.body, self.delay = 200, "ok\n", 0.0
        self.lock = threading.Lock()
        self.requests = []
        self.tls_errors = []
        self.tls = None
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])

            def on_sni(sslsock, name, _ctx):
                sslsock.fennec_sni = name
            ctx.sni_callback = on_sni
            self.tls = ctx
        self.httpd = None
        self.thread = None

    def start(self):
        assert self.httpd is None
        self.httpd = _Server((self.address, self.port), self)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Closes the listening socket first (a connect is refused from then on), then ends
        the accept loop. Returns the time (monotonic) the socket was closed."""
        if not self.httpd:
            return None
        t = time.monotonic()
        self.httpd.server_close()
        self.httpd.shutdown()
        self.thread.join(5)
        self.httpd = self.thread = None
        return t

    def running(self):
        return self.httpd is not None

    def set(self, status=None, body=None, delay=None):
        with self.lock:
            if status is not None:
                self.status = status
            if body is not None:
                self.body = body
            if delay is not None:
                self.delay = delay

    def seen(self):
        with self.lock:
            return list(self.requests)


class Hang:
    """A socket that listens and never accepts: a connect succeeds (the kernel completes the
    handshake) and the request gets no answer, so every probe runs into its timeout."""

    def __init__(self, address, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(128)

    def stop(self):
        self.sock.close()


# ---- DNS -------------------------------------------------------------------------------------

class Answer:
    def __init__(self, rcode, addrs, ttl, authority):
        self.rcode, self.addrs, self.ttl, self.authority = rcode, addrs, ttl, authority

    def __repr__(self):
        return "%s %s ttl %s" % (self.rcode, sorted(self.addrs), self.ttl)


def ask(node, name, qtype="A", timeout=0.5, tries=3):
    """NAME/QTYPE from NODE over UDP: an Answer (rcode text, frozenset of addresses, the TTL of
    the answer RRset or None, the types in the authority section), or None on no answer."""
    fq = repl.fqdn(name)
    q = dns.message.make_query(fq, qtype)
    for _ in range(tries):
        try:
            r = dns.query.udp(q, "127.0.0.1", port=node.dns_port, timeout=timeout)
        except (dns.exception.Timeout, OSError):
            continue
        addrs, ttl = [], None
        want = dns.rdatatype.from_text(qtype)
        for rrset in r.answer:
            if rrset.rdtype == want and rrset.name.to_text().lower() == fq.lower():
                addrs += [x.to_text() for x in rrset]
                ttl = rrset.ttl
        auth = [dns.rdatatype.to_text(rs.rdtype) for rs in r.authority]
        return Answer(dns.rcode.to_text(r.rcode()), frozenset(addrs), ttl, auth)
    return None


def watch(nodes, name, pred, timeout, qtype="A", pause=0.002):
    """Asks every node for NAME at once (a thread each, a query every PAUSE seconds) until
    PRED(answer) holds there; returns {node id: (monotonic time it first held, the answer)},
    None for a node where it did not within TIMEOUT seconds."""
    out = {}
    deadline = time.monotonic() + timeout

    def one(n):
        while time.monotonic() < deadline:
            a = ask(n, name, qtype, timeout=0.3, tries=1)
            t = time.monotonic()
            if a is not None and pred(a):
                out[n.id] = (t, a)
                return
            time.sleep(pause)
        out[n.id] = None

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return {n.id: out.get(n.id) for n in nodes}


def serves(addrs, ttl=None):
    """A predicate: the answer is NOERROR with exactly ADDRS (and TTL when given)."""
    addrs = frozenset(addrs)
    return lambda a: a.rcode == "NOERROR" and a.addrs == addrs and (ttl is None or a.ttl == ttl)


# ---- the cluster -----------------------------------------------------------------------------

def yaml_health(checks, pools):
    """The `health:` section for CHECKS and POOLS (lists of dicts), each item a JSON flow
    mapping (JSON is valid YAML)."""
    text = "health:\n  checks:\n"
    for c in checks:
        text += "    - %s\n" % json.dumps(c)
    if pools:
        text += "  pools:\n"
        for p in pools:
            text += "    - %s\n" % json.dumps(p)
    return text


class Health(repl.Cluster):
    def __init__(self, name, slot, argv):
        super().__init__(name, slot, argv)
        self.slot = slot
        self.servers = []
        self.cleanups.append(self._stop_servers)

    def address(self, k):
        """The loopback address of this test's server K (1..254)."""
        return "127.0.%d.%d" % (100 + self.slot, k)

    @property
    def server_port(self):
        return self.spare_port(0)

    def server(self, k, tls=None, start=True):
        s = Server(self.address(k), self.server_port, tls=tls)
        self.servers.append(s)
        return s.start() if start else s

    def hang(self, k):
        h = Hang(self.address(k), self.server_port)
        self.servers.append(h)
        return h

    def _stop_servers(self):
        for s in self.servers:
            s.stop()

    def http_check(self, name, k, **kw):
        """A check of server K: HTTP on the test's server port."""
        c = {"name": name, "type": "http", "target": self.address(k), "port": self.server_port}
        c.update(kw)
        return c

    def set_health(self, checks, pools):
        """Writes the primary's configuration with this health section (read at its next start
        or SIGHUP)."""
        p = self.the_primary
        if not hasattr(p, "base_cfg"):
            with open(p.cfg_path) as f:
                p.base_cfg = f.read()
        with open(p.cfg_path, "w") as f:
            f.write(p.base_cfg + yaml_health(checks, pools))

    def start_cluster(self, checks, pools, secondaries=("ns2", "ns3")):
        """A primary with CHECKS and POOLS and the secondaries, registered and started; waits
        (20 s at most) until every node lists every check. Returns the nodes, primary first."""
        p = self.primary()
        self.set_health(checks, pools)
        p.start()
        nodes = [p]
        for sid in secondaries:
            s = self.secondary(sid)
            self.register(s)
            s.start()
            nodes.append(s)
        names = sorted(c["name"] for c in checks)
        ok = wait_for(lambda: all(sorted(c["name"] for c in (self.health(n) or {}).get(
            "checks", [])) == names for n in nodes), 20)
        self.check(ok, "every node has the %d checks (the secondaries from the log)" %
                   len(names), [self.health(n) for n in nodes])
        self.phase("cluster of %d nodes up" % len(nodes))
        return nodes

    # ---- the health API

    def health(self, node):
        return node.get("/v1/health")

    def checks_of(self, node):
        """{check name: check object} from NODE's /v1/health ({} when it does not answer)."""
        h = self.health(node)
        return {c["name"]: c for c in h["checks"]} if isinstance(h, dict) else {}

    def pools_of(self, node):
        h = self.health(node)
        return {p["name"]: p for p in h["pools"]} if isinstance(h, dict) else {}

    def wait_states(self, nodes, want, timeout):
        """Waits until every node's /v1/health gives each check of WANT (name -> state) that
        state; returns True, or False after TIMEOUT seconds (with what was seen printed)."""
        def done():
            for n in nodes:
                cs = self.checks_of(n)
                if any(cs.get(k, {}).get("state") != v for k, v in want.items()):
                    return False
            return True
        if wait_for(done, timeout, step=0.1):
            return True
        for n in nodes:
            cs = self.checks_of(n)
            print("   %s: %s" % (n.id, {k: (cs.get(k, {}).get("state"),
                                         cs.get(k, {}).get("last_result")) for k in want}))
        return False

    def metrics(self, node):
        return node.get("/metrics")


def summary(values):
    """'median M s, max X s' of VALUES (seconds)."""
    return "median %.3f s, max %.3f s" % (statistics.median(values), max(values))


def openssl(*args, cwd=None):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, cwd=cwd)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr[-500:]))
    return p.stdout
