"""fennec-supervisor with real processes: fennecd, BIRD 2 and the supervisor on loopback.

usage: test_anycast.py FENNECD FENNECCTL FENNEC_SUPERVISOR

What it checks, in order (each step can fail):
  1. a supervised primary is announced after the self-check rises (BIRD's protocol up);
     UDP and TCP answers to a query sent to the service address come from it, also with a
     wildcard listen address (IP_PKTINFO);
  2. kill -9 fennecd, five times: BIRD's protocol is disabled within milliseconds (measured
     by polling BIRD; median, min and max printed), fennecd is started again and announced;
  3. a drain on the lone node is refused (exit 4) below min_announced, --force drains, a
     drained node stays drained across a kill -9 of fennecd, undrain announces again;
  4. with a second, supervised secondary: drains are checked against the cluster's view
     (one drain accepted, the second refused naming the numbers, --force accepted);
  5. stopping the primary's supervisor withdraws the primary only: the secondary stays
     announced and answering, and refuses a drain because its view is stale;
  6. a crash loop (a "fennecd" that exits at once) stops after anycast.restart.intensity,
     exits 3, says so in its log, and leaves the protocol disabled.
Ports 127.0.0.1:17600-17699 (and the same ports on 127.0.0.53/.54); everything started is
stopped by pid.
"""
import ctypes
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import dns.message
import dns.rcode

FENNECD, FENNECCTL, SUPERVISOR = sys.argv[1:4]
DNS_PORT = 17653
CTL = [17680, 17681]
REPL = 17690
WILD_PORT = 17655
WILD_CTL = 17682
SERVICE = ["127.0.0.53", "127.0.0.54"]
ZONE_TEXT = ("$ORIGIN example.com.\n$TTL 300\n"
             "@ IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300\n"
             "@ IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.10\n")

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: a killed test leaves nothing


def bird_binary():
    for b in ("/usr/sbin/bird", "/usr/bin/bird", "/sbin/bird"):
        if os.access(b, os.X_OK):
            return b
    sys.exit("FAIL: bird not found: install the bird2 package")


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Bird:
    def __init__(self, tmp, name, route):
        self.conf = os.path.join(tmp, name + ".conf")
        self.sock = os.path.join(tmp, name + ".ctl")
        self.pidfile = os.path.join(tmp, name + ".pid")
        with open(self.conf, "w") as f:
            f.write("router id 192.0.2.1;\nprotocol device {}\n"
                    "protocol static fennec_service {\n  disabled yes;\n  ipv4;\n"
                    "  route %s/32 blackhole;\n}\n" % route)
        self.log = open(os.path.join(tmp, name + ".log"), "w")
        self.proc = subprocess.Popen([bird_binary(), "-f", "-c", self.conf, "-s", self.sock,
                                      "-P", self.pidfile], stdout=self.log, stderr=self.log,
                                     preexec_fn=_die_with_parent)
        self.conn = None
        for _ in range(400):
            try:
                self.connect()
                return
            except OSError:
                time.sleep(0.005)
        raise Failure("bird did not open " + self.sock)

    def connect(self):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.sock)
        self.conn = s
        self.buf = b""
        self._reply()  # greeting

    def _reply(self):
        while True:
            for line in self.buf.split(b"\n")[:-1]:
                if len(line) >= 5 and line[4:5] == b" " and line[:4].isdigit():
                    out, self.buf = self.buf, b""
                    return out.decode()
            chunk = self.conn.recv(65536)
            if not chunk:
                raise OSError("bird closed")
            self.buf += chunk

    def state(self):
        """'up' or 'down' for fennec_service."""
        self.conn.sendall(b"show protocols fennec_service\n")
        for line in self._reply().split("\n"):
            if line.startswith("1002-"):
                return line[5:].split()[3]
        raise Failure("no protocol line from bird")

    def wait(self, want, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.state() == want:
                return True
            time.sleep(0.01)
        return False

    def stop(self):
        if self.conn:
            self.conn.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(5)
        self.log.close()


class Node:
    def __init__(self, tmp, idx, role, bird, fennecd=FENNECD,
                 extra="  restart: { backoff: 50ms, backoff_max: 1s, intensity: 20, period: 60s }"):
        self.tmp = tmp
        self.id = "n%d" % (idx + 1)
        self.ctl = "http://127.0.0.1:%d" % CTL[idx]
        self.cfg = os.path.join(tmp, self.id + ".yaml")
        self.pidfile = os.path.join(tmp, self.id + ".supervisor.pid")
        self.fpidfile = os.path.join(tmp, self.id + ".fennecd.pid")
        self.logpath = os.path.join(tmp, self.id + ".log")
        self.bird = bird
        lines = ["node: { id: %s, role: %s, data_dir: %s/data-%s }" % (self.id, role, tmp, self.id),
                 "listen:", '  dns: ["%s:%d"]' % (SERVICE[idx], DNS_PORT),
                 '  control: "127.0.0.1:%d"' % CTL[idx]]
        if role == "primary":
            lines += ['  replication: "127.0.0.1:%d"' % REPL, "cluster: { key_file: key }",
                      "zones: [{ name: example.com, file: example.com.zone }]"]
        else:
            lines += ['cluster: { key_file: key, primary: "127.0.0.1:%d" }' % REPL]
        lines += ["workers: 1", "anycast:", '  service: ["%s"]' % SERVICE[idx],
                  "  bird_socket: %s" % bird.sock, "  min_announced: 1",
                  "  check: { interval: 50ms, timeout: 40ms, rise: 2, fall: 2 }", extra]
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.fennecd = fennecd
        self.proc = None

    def start(self):
        self.log = open(self.logpath, "a")
        self.proc = subprocess.Popen([SUPERVISOR, "-c", self.cfg, "--fennecd", self.fennecd,
                                      "--pidfile", self.pidfile, "--fennecd-pidfile",
                                      self.fpidfile], stdout=self.log, stderr=self.log,
                                     preexec_fn=_die_with_parent)

    def fennecd_pid(self, timeout=5):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with open(self.fpidfile) as f:
                    pid = int(f.read().strip())
                os.kill(pid, 0)
                return pid
            except (OSError, ValueError):
                time.sleep(0.01)
        raise Failure("%s: no fennecd pid in %s" % (self.id, self.fpidfile))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise Failure("%s: supervisor did not stop within 15 s of SIGTERM" % self.id)
        return self.proc.returncode if self.proc else None

    def kill_leftover(self):
        try:
            with open(self.fpidfile) as f:
                os.kill(int(f.read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def logtext(self):
        with open(self.logpath) as f:
            return f.read()

    def status(self):
        with urllib.request.urlopen(self.ctl + "/v1/status", timeout=5) as r:
            return json.load(r)

    def nodes(self):
        with urllib.request.urlopen(self.ctl + "/v1/nodes", timeout=5) as r:
            return json.load(r)

    def ctl_run(self, *args):
        p = subprocess.run([FENNECCTL, "-s", self.ctl, "--key-file",
                            os.path.join(self.tmp, "key")] + list(args),
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout + p.stderr

    def wait_state(self, want, timeout=5):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                a = self.status().get("anycast") or {}
                last = a.get("state")
                if last == want:
                    return a
            except OSError:
                pass
            time.sleep(0.02)
        raise Failure("%s: anycast state %s, not %s, after %.0f s" % (self.id, last, want, timeout))


def query(addr, port, tcp=False):
    """Answer and the address it came from."""
    q = dns.message.make_query("example.com.", "SOA")
    wire = q.to_wire()
    if tcp:
        s = socket.create_connection((addr, port), timeout=2)
        s.sendall(struct.pack("!H", len(wire)) + wire)
        n = struct.unpack("!H", s.recv(2))[0]
        data = b""
        while len(data) < n:
            data += s.recv(n - len(data))
        src = s.getpeername()[0]
        s.close()
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        s.sendto(wire, (addr, port))
        data, (src, _) = s.recvfrom(65535)
        s.close()
    return dns.message.from_wire(data), src


def step_sources(tmp, n1):
    for tcp in (False, True):
        r, src = query(SERVICE[0], DNS_PORT, tcp)
        check(r.rcode() == dns.rcode.NOERROR and src == SERVICE[0],
              "%s answer to %s came from %s (rcode %s)" % ("TCP" if tcp else "UDP", SERVICE[0],
                                                          src, r.rcode()))
    # A wildcard listen address answers each query from the address it was sent to.
    cfg = os.path.join(tmp, "wild.yaml")
    with open(cfg, "w") as f:
        f.write("node: { id: w1, data_dir: %s/data-w1 }\n"
                'listen: { dns: ["0.0.0.0:%d"], control: "127.0.0.1:%d" }\n'
                "workers: 1\nzones: [{ name: example.com, file: example.com.zone }]\n"
                % (tmp, WILD_PORT, WILD_CTL))
    log = open(os.path.join(tmp, "wild.log"), "w")
    p = subprocess.Popen([FENNECD, "-c", cfg], stdout=log, stderr=log,
                         preexec_fn=_die_with_parent)
    try:
        for _ in range(200):
            try:
                query("127.0.0.1", WILD_PORT)
                break
            except OSError:
                time.sleep(0.02)
        for addr in ("127.0.0.53", "127.0.0.77", "127.0.0.1"):
            for tcp in (False, True):
                r, src = query(addr, WILD_PORT, tcp)
                check(src == addr, "wildcard listener: %s answer to %s came from %s"
                      % ("TCP" if tcp else "UDP", addr, src))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        log.close()
    print("ok: UDP and TCP answers leave from the service address (bound, and wildcard)")


def step_kill(n1, b1):
    lat = []
    for i in range(5):
        n1.wait_state("announced", 5)
        check(b1.state() == "up", "BIRD's protocol is not up while n1 says announced")
        pid = n1.fennecd_pid()
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        while b1.state() != "down":
            check(time.monotonic() - t0 < 2, "protocol still up 2 s after kill -9 of fennecd")
        lat.append((time.monotonic() - t0) * 1000)
        # Started again and announced again.
        check(b1.wait("up", 5), "n1 not announced again within 5 s of kill -9 %d" % (i + 1))
        check(n1.fennecd_pid() != pid, "fennecd was not started again")
    st = n1.wait_state("announced", 5)
    check(st["restarts"] == 5, "restarts %s, expected 5" % st["restarts"])
    log = n1.logtext()
    check("anycast: announced -> down (fennecd exited: killed by signal 9)" in log,
          "no transition line for the kill in the supervisor's log")
    print("ok: kill -9 -> BIRD protocol disabled: median %.2f ms, min %.2f ms, max %.2f ms "
          "(5 kills, measured by polling BIRD)" % (statistics.median(lat), min(lat), max(lat)))
    check(statistics.median(lat) < 50, "median exit->withdraw %.1f ms, over 50 ms"
          % statistics.median(lat))
    return lat


def step_drain_alone(n1, b1):
    rc, out = n1.ctl_run("drain")
    check(rc == 4 and "fewer than anycast.min_announced 1" in out and "1 of 1" in out,
          "drain of the only announced node: exit %d: %s" % (rc, out))
    check(b1.state() == "up", "a refused drain withdrew")
    rc, out = n1.ctl_run("drain", "--force")
    check(rc == 0 and "drained" in out, "drain --force: exit %d: %s" % (rc, out))
    check(b1.state() == "down", "drained, but BIRD's protocol is up")
    # Stays drained across a restart of fennecd.
    os.kill(n1.fennecd_pid(), signal.SIGKILL)
    time.sleep(0.3)
    st = n1.wait_state("drained", 5)
    check(st["drain"] and b1.state() == "down", "a restarted fennecd was announced while drained")
    time.sleep(0.3)
    check(b1.state() == "down", "a restarted fennecd was announced while drained")
    rc, out = n1.ctl_run("undrain")
    check(rc == 0, "undrain: exit %d: %s" % (rc, out))
    n1.wait_state("announced", 5)
    check(b1.state() == "up", "undrained, but BIRD's protocol is down")
    rc, out = n1.ctl_run("--json", "status")
    st = json.loads(out)["anycast"]
    check(st["service"] == [SERVICE[0]] and st["cluster"]["nodes"] >= 1,
          "status anycast: %s" % st)
    with urllib.request.urlopen(n1.ctl + "/metrics", timeout=5) as r:
        m = r.read().decode()
    for want in ("fennec_anycast_announced 1", 'fennec_anycast_transitions_total{to="drained"} 2',
                 "fennec_supervisor_restarts_total 6", "fennec_anycast_cluster_announced 1"):
        check(want in m, "/metrics lacks %r" % want)
    print("ok: drain refused below min_announced (exit 4), --force drains, drained survives a "
          "restart of fennecd, undrain announces; /metrics and status agree")


def step_cluster(n1, n2, b1, b2):
    rc, out = n1.ctl_run("node", "add", "n2", "127.0.0.1:%d" % CTL[1])
    check(rc == 0, "node add: %s" % out)
    n2.start()
    n2.wait_state("announced", 10)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        c = n1.status()["anycast"]["cluster"]
        if c["announced"] == 2:
            break
        time.sleep(0.05)
    check(c["announced"] == 2 and c["nodes"] == 2, "primary's view: %s" % c)
    rows = {r["id"]: r for r in n2.nodes()["nodes"]}
    check(rows["n2"]["announced"] is True, "/v1/nodes on n2: %s" % rows)
    rc, out = n2.ctl_run("drain")
    check(rc == 0 and b2.state() == "down", "drain of n2 (2 announced): exit %d: %s" % (rc, out))
    rc, out = n1.ctl_run("drain")
    check(rc == 4 and "1 of 2 node(s) are announced (n1)" in out,
          "drain of n1 with n2 drained: exit %d: %s" % (rc, out))
    rows = {r["id"]: r for r in n1.nodes()["nodes"]}
    check(rows["n2"]["announced"] is False and rows["n2"]["anycast"] == "drained",
          "/v1/nodes on n1: %s" % rows)
    rc, out = n2.ctl_run("undrain")
    check(rc == 0, "undrain n2: %s" % out)
    n2.wait_state("announced", 5)
    time.sleep(0.3)
    rc, out = n1.ctl_run("drain")
    check(rc == 0 and b1.state() == "down", "drain of n1 with n2 back: exit %d: %s" % (rc, out))
    rc, out = n2.ctl_run("drain")
    check(rc == 4, "drain of n2 with n1 drained: exit %d: %s" % (rc, out))
    rc, out = n2.ctl_run("drain", "--force")
    check(rc == 0 and b2.state() == "down", "drain --force of n2: exit %d: %s" % (rc, out))
    for n in (n1, n2):
        rc, out = n.ctl_run("undrain")
        check(rc == 0, "undrain %s: %s" % (n.id, out))
        n.wait_state("announced", 5)
    print("ok: two supervised nodes: drains checked against the cluster's view, refusal names "
          "the numbers, --force accepted")


def step_primary_stops(n1, n2, b1, b2):
    rc = n1.stop()
    check(rc == 0, "supervisor of n1 exited %s on SIGTERM" % rc)
    check(b1.state() == "down", "n1 stopped but its protocol is up")
    check("anycast: announced -> down (supervisor stopping: SIGTERM)" in n1.logtext(),
          "no transition line for SIGTERM")
    end = time.monotonic() + 3
    while time.monotonic() < end:
        check(b2.state() == "up", "n2 withdrew after its primary stopped")
        r, src = query(SERVICE[1], DNS_PORT)
        check(r.rcode() == dns.rcode.NOERROR and src == SERVICE[1], "n2 stopped answering")
        time.sleep(0.1)
    rc, out = n2.ctl_run("drain")
    check(rc == 4 and "primary is not reachable" in out,
          "drain on n2 with a stale view: exit %d: %s" % (rc, out))
    check(b2.state() == "up", "the refused drain withdrew n2")
    print("ok: stopping the primary withdraws it only; the secondary stays announced and "
          "answering, and refuses a drain without a fresh view")


def step_crash_loop(tmp, b1):
    script = os.path.join(tmp, "crash.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nexit 1\n")
    os.chmod(script, 0o755)
    n = Node(tmp, 0, "primary", b1, fennecd=script,
             extra="  restart: { backoff: 10ms, backoff_max: 50ms, intensity: 3, period: 60s }")
    n.logpath = os.path.join(tmp, "crash.log")
    t0 = time.monotonic()
    n.start()
    try:
        rc = n.proc.wait(20)
    except subprocess.TimeoutExpired:
        n.proc.kill()
        raise Failure("the crash-looping supervisor did not give up within 20 s")
    took = time.monotonic() - t0
    log = n.logtext()
    check(rc == 3, "crash loop: supervisor exit %s, expected 3" % rc)
    check("more than anycast.restart.intensity 3: giving up, staying withdrawn" in log,
          "crash loop: the log does not say why it gave up")
    check(log.count("fennecd started: pid") == 4, "crash loop: %d starts, expected 4"
          % log.count("fennecd started: pid"))
    check(b1.state() == "down", "crash loop: protocol up after giving up")
    print("ok: crash loop: 4 starts, gave up after %.2f s with exit 3, protocol disabled" % took)


def main():
    tmp = tempfile.mkdtemp(prefix="fennec-anycast-")
    birds, nodes = [], []
    ok = False
    try:
        with open(os.path.join(tmp, "key"), "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        with open(os.path.join(tmp, "example.com.zone"), "w") as f:
            f.write(ZONE_TEXT)
        b1 = Bird(tmp, "bird1", SERVICE[0])
        b2 = Bird(tmp, "bird2", SERVICE[1])
        birds += [b1, b2]
        n1 = Node(tmp, 0, "primary", b1)
        n2 = Node(tmp, 1, "secondary", b2)
        nodes += [n1, n2]
        n1.start()
        t0 = time.monotonic()
        check(b1.wait("up", 5), "n1 not announced within 5 s")
        print("ok: n1 announced %.0f ms after start (rise 2 at 50 ms)"
              % ((time.monotonic() - t0) * 1000))
        step_sources(tmp, n1)
        step_kill(n1, b1)
        step_drain_alone(n1, b1)
        step_cluster(n1, n2, b1, b2)
        step_primary_stops(n1, n2, b1, b2)
        rc = n2.stop()
        check(rc == 0 and b2.state() == "down", "n2: supervisor exit %s on SIGTERM" % rc)
        step_crash_loop(tmp, b1)
        for n in nodes:
            log = n.logtext()
            check("AddressSanitizer" not in log and "runtime error" not in log,
                  "%s: sanitizer report in the log" % n.id)
        ok = True
    except Failure as e:
        print("FAIL: %s" % e)
    finally:
        for n in nodes:
            try:
                n.stop()
            except Failure as e:
                print("FAIL: %s" % e)
                ok = False
            n.kill_leftover()
        for b in birds:
            b.stop()
        if not ok:
            for name in sorted(os.listdir(tmp)):
                if name.endswith(".log"):
                    print("---- %s" % name)
                    with open(os.path.join(tmp, name)) as f:
                        print(f.read()[-6000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
