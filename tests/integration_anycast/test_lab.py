"""The anycast lab end to end (deploy/lab/lab.sh up 3): failover times and the rules.

    test_lab.py SOURCE_DIR BUILD_DIR

Needs root, bird2, iproute2 and dig; fennecd, fennecctl and fennec-supervisor in BUILD_DIR.
Brings the lab up with three nodes and takes it down at the end, also on failure; only one
lab can exist at a time (fixed names), so an existing lab makes the test fail, never go.

What it checks, in order (docs/deploy.md, "The lab test"):
  1. every node answers through 192.0.2.53 over UDP and TCP, every reply comes from that
     address, and NSID shows all three nodes behind it for flows from different ports;
  2. a record added on the primary is answered through the service address by every node;
  3. kill -9 of one node's fennecd (5 runs): the flows that hashed to it are answered by
     another node within 100 ms (median of the runs); the node is restarted and announced;
  4. fennecctl drain (5 runs): withdrawn within 50 ms (median), no query lost; undrain
     brings the node back;
  5. a drain that would leave fewer than min_announced (1) nodes announced is refused;
  6. a frozen node (SIGSTOP of every process in its namespace, 5 runs): routed around by
     BFD within 300 ms (median), then SIGCONT and back;
  7. the primary stopped: no other node withdraws, every query is answered;
  8. a crash loop (a fennecd that exits at once) stops at the restart-intensity limit, the
     node stays withdrawn and the supervisor's log says why.
A time is from the event (just before the signal or the command) to the first reply from
another node on each flow that was on the node; a run's figure is its slowest such flow.
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SERVICE = "192.0.2.53"
RUN = "/run/fennec-lab"
NODES = ["n1", "n2", "n3"]
FLOWS = 24
GOALS = {"kill": 100.0, "drain": 50.0, "freeze": 300.0}  # ms, median of the runs
RUNS = 5
BUDGET = 135  # seconds: no phase starts later, so that the lab is down before ctest's 180 s


class Test:
    def __init__(self, src, build):
        self.src = os.path.abspath(src)
        self.build = os.path.abspath(build)
        self.lab = os.path.join(self.src, "deploy", "lab", "lab.sh")
        self.probe = os.path.join(self.src, "deploy", "lab", "probe.py")
        self.failures = []
        self.figures = {}
        self.t0 = time.monotonic()
        self.tmp = tempfile.mkdtemp(prefix="fennec-anycast-")
        self.env = dict(os.environ, FENNEC_BUILD=self.build)

    # ---- output

    def check(self, cond, what, detail=""):
        print(("ok   %s" if cond else "FAIL %s") % what +
              ("" if cond or detail == "" else " %s" % str(detail)[:3000]))
        sys.stdout.flush()
        if not cond:
            self.failures.append(what)
        return cond

    def phase(self, what):
        print("-- %s (%.1f s)" % (what, time.monotonic() - self.t0))
        sys.stdout.flush()

    # ---- tools

    def sh(self, *cmd, timeout=60, env=None, check=False):
        p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                           env=env or self.env, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise RuntimeError("%s: exit %d: %s %s" % (" ".join(cmd), p.returncode, p.stdout,
                                                       p.stderr))
        return p

    def ctl(self, node, *args, timeout=20):
        return self.sh("ip", "netns", "exec", "fennec-" + node,
                       os.path.join(self.build, "fennecctl"), "-s", "http://127.0.0.1:8053",
                       "--key-file", RUN + "/key", *args, timeout=timeout)

    # POST /v1/drain from inside the node's namespace, printing the monotonic time just
    # before the request leaves: the drain's own time, without a CLI's start-up.
    POST_DRAIN = r"""
import hashlib, hmac, json, sys, time, urllib.request
key = open(sys.argv[1]).read().strip().encode()
token = hmac.new(key, b"fennec-control", hashlib.sha256).hexdigest()
req = urllib.request.Request("http://127.0.0.1:8053/v1/drain", method="POST",
                             data=json.dumps({"drain": sys.argv[2] == "1"}).encode(),
                             headers={"Authorization": "Bearer " + token,
                                      "Content-Type": "application/json"})
t = time.monotonic()
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        status, body = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read().decode()
print(json.dumps({"t": t, "status": status, "body": body}))
"""

    def post_drain(self, node, drain=True):
        p = self.sh("ip", "netns", "exec", "fennec-" + node, sys.executable, "-c",
                    self.POST_DRAIN, RUN + "/key", "1" if drain else "0")
        try:
            return json.loads(p.stdout)
        except ValueError:
            return {"t": None, "status": None, "body": p.stdout + p.stderr}

    def drops(self):
        """Queries the nodes dropped on purpose (CoDel, CUBIC, backlog), from /metrics."""
        out = {}
        for n in NODES:
            text = self.sh("ip", "netns", "exec", "fennec-" + n, "curl", "-s", "-m", "2",
                           "http://127.0.0.1:8053/metrics").stdout
            for line in text.splitlines():
                if not line.startswith("#") and re.search(r"drop|shed", line):
                    name, _, v = line.rpartition(" ")
                    try:
                        if float(v) > 0:
                            out["%s %s" % (n, name)] = float(v)
                    except ValueError:
                        pass
        return out

    @staticmethod
    def lost_detail(data):
        """Where the unanswered queries were: per flow, its nodes and the send times."""
        rows = []
        for f in data["flows"]:
            lost = [round(s - data["t0"], 3) for s, r, n in f["q"] if r is None]
            if lost:
                rows.append((f["port"], sorted({n for s, r, n in f["q"] if n}), lost[:8],
                             len(lost)))
        return rows

    def status(self, node):
        p = self.ctl(node, "status", "--json")
        try:
            return json.loads(p.stdout) if p.returncode == 0 else None
        except ValueError:
            return None

    def anycast_state(self, node):
        st = self.status(node)
        return (st or {}).get("anycast", {}).get("state")

    def nexthops(self):
        """The nodes the router sends the service address to (its kernel route)."""
        out = self.sh("ip", "-n", "fennec-rt", "route", "show", SERVICE).stdout
        return sorted("n%s" % k for k in re.findall(r"via 10\.53\.(\d+)\.2 ", out))

    def wait_nexthops(self, want, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nexthops() == sorted(want):
                return True
            time.sleep(0.05)
        return False

    def ns_pids(self, node):
        out = self.sh("ip", "netns", "pids", "fennec-" + node).stdout
        return [int(x) for x in out.split()]

    def pidfile(self, node, what):
        try:
            with open("%s/%s/%s.pid" % (RUN, node, what)) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def nodes_probe(self, expect=3, qname="example.com", qtype="SOA", timeout=15):
        p = self.sh("ip", "netns", "exec", "fennec-cl", sys.executable, self.probe,
                    "--source", "10.53.0.2", "--flows", "32", "--qname", qname, "nodes",
                    "--expect", str(expect), "--qtype", qtype, "--timeout", str(timeout),
                    "--json", timeout=timeout + 30)
        try:
            return json.loads(p.stdout)
        except ValueError:
            return {"error": p.stdout + p.stderr}

    def start_probe(self, duration):
        out = os.path.join(self.tmp, "probe.json")
        if os.path.exists(out):
            os.unlink(out)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", "fennec-cl", sys.executable, self.probe, "--source",
             "10.53.0.2", "--flows", str(FLOWS), "run", "--duration", str(duration),
             "--interval", "5", "--out", out], stdin=subprocess.DEVNULL)
        return proc, out

    def wait_probe(self, proc, out, timeout=30):
        proc.wait(timeout=timeout)
        with open(out) as f:
            return json.load(f)

    @staticmethod
    def analyse(data, t_event, target):
        """Per flow that was on TARGET before T_EVENT: ms from the event to the first reply
        from another node (None: never). Also: queries never answered, flows per node."""
        gaps, lost, before = [], 0, {}
        for f in data["flows"]:
            q = f["q"]
            lost += sum(1 for s, r, n in q if r is None)
            prior = [n for s, r, n in q if r is not None and r < t_event and n]
            if prior:
                before[prior[-1]] = before.get(prior[-1], 0) + 1
            if not prior or prior[-1] != target:
                continue
            after = [r for s, r, n in q if r is not None and r >= t_event and n and n != target]
            gaps.append((min(after) - t_event) * 1000 if after else None)
        return gaps, lost, before

    def figure(self, kind, value):
        self.figures.setdefault(kind, []).append(value)

    # ---- one timed event

    def sample_routes(self, stop, samples):
        """Until STOP is set: (time, next hops) every 20 ms, for the route figures."""
        while not stop.is_set():
            samples.append((time.monotonic(), self.nexthops()))
            stop.wait(0.02)

    def timed(self, kind, target, act, back=False):
        """Runs the probe, does ACT() about 0.6 s in (ACT returns the event time), and
        returns (slowest affected flow in ms or None, queries lost, flows per node). Also
        records when the router's route lost the node ("kind: route withdrawn", ms)."""
        stop, samples = threading.Event(), []
        sampler = threading.Thread(target=self.sample_routes, args=(stop, samples))
        sampler.start()
        try:
            proc, out = self.start_probe(2.2)
            time.sleep(0.6)
            t_event = act()
            data = self.wait_probe(proc, out)
            self.last_data = data
            # BACK: go on sampling until the node is announced again (20 s at most).
            deadline = time.monotonic() + 20
            while back and time.monotonic() < deadline:
                if samples and samples[-1][0] > t_event and target in samples[-1][1] and \
                        any(target not in h for t, h in samples if t >= t_event):
                    break
                time.sleep(0.02)
        finally:
            stop.set()
            sampler.join()
        gone = [t for t, hops in samples if t >= t_event and target not in hops]
        if gone:
            self.figure("%s: route gone at the router (20 ms samples)" % kind, (gone[0] - t_event) * 1000)
            again = [t for t, hops in samples if t > gone[0] and target in hops]
            if back and again:
                self.figure("%s: announced again after (s)" % kind, again[0] - t_event)
        if t_event - data["t0"] < 0.2:
            self.check(False, "%s %s: the probe ran before the event" % (kind, target),
                       t_event - data["t0"])
        gaps, lost, before = self.analyse(data, t_event, target)
        if data["wrong_source"]:
            self.check(False, "%s %s: every reply from %s" % (kind, target, SERVICE),
                       sorted(set(data["wrong_source"])))
        if not gaps:
            self.check(False, "%s %s: some flow was on %s before the event" %
                       (kind, target, target), before)
            return None, lost, before
        if any(g is None for g in gaps):
            self.check(False, "%s %s: every flow that was on %s is answered by another node" %
                       (kind, target, target), gaps)
            return None, lost, before
        worst = max(gaps)
        print("     %s %s: %d flows moved, slowest %.1f ms (fastest %.1f ms), %d queries "
              "unanswered, flows before: %s" % (kind, target, len(gaps), worst, min(gaps), lost,
                                                before))
        self.figure(kind, worst)
        return worst, lost, before

    # ---- the phases

    def phase_service(self):
        self.phase("1. every node answers through %s, over UDP and TCP, and only from it" %
                   SERVICE)
        r = self.nodes_probe()
        self.check(sorted(r.get("udp_nodes", {})) == NODES,
                   "UDP: NSID shows n1, n2 and n3 behind %s" % SERVICE, r)
        self.check(sorted(r.get("tcp_nodes", {})) == NODES,
                   "TCP: NSID shows n1, n2 and n3 behind %s" % SERVICE, r)
        self.check(r.get("wrong_source") == [], "every reply comes from %s" % SERVICE, r)
        flows = r.get("flows", {})
        per = {}
        for port, node in flows.items():
            per.setdefault(node, []).append(int(port))
        self.check(len(per) == 3 and len(flows) >= 16,
                   "flows from %d source ports spread over the three nodes" % len(flows),
                   {k: len(v) for k, v in per.items()})
        self.check(self.nexthops() == NODES, "the router has one next hop per node",
                   self.nexthops())
        for n in NODES:
            self.check(self.anycast_state(n) == "announced", "%s says it is announced" % n,
                       (self.status(n) or {}).get("anycast"))
        # The same through dig, the tool an operator uses.
        p = self.sh("ip", "netns", "exec", "fennec-cl", "dig", "+nsid", "+time=2", "+tries=2",
                    "@" + SERVICE, "example.com", "SOA")
        self.check(re.search(r'NSID: .*\("n[123]"\)', p.stdout) is not None,
                   "dig +nsid through the service address names a node", p.stdout[-600:])

    def phase_record(self):
        self.phase("2. a record added on the primary is answered by every node")
        p = self.ctl("n1", "record", "add", "example.com", "anycast-check", "300", "A",
                     "198.51.100.53", "--wait")
        self.check(p.returncode == 0, "fennecctl record add on n1 (--wait)", p.stdout + p.stderr)
        r = self.nodes_probe(qname="anycast-check.example.com", qtype="A")
        answers = r.get("answers", {})
        for n in NODES:
            self.check(answers.get(n) == ["198.51.100.53"],
                       "%s answers anycast-check.example.com A 198.51.100.53 through %s" %
                       (n, SERVICE), answers)

    def phase_kill(self):
        self.phase("3. kill -9 fennecd: answered by another node (goal %d ms), restarted, "
                   "announced again" % GOALS["kill"])
        for i in range(RUNS):
            target = NODES[i % 3]
            old = self.pidfile(target, "fennecd")
            sup = self.pidfile(target, "supervisor")
            if not self.check(old is not None and sup is not None,
                              "kill %d: %s runs fennecd under a supervisor" % (i + 1, target)):
                continue

            res = {}

            def act(pid=old):
                res["t"] = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                return res["t"]
            self.timed("kill", target, act, back=True)
            again = self.wait_nexthops(NODES, 20)
            new = self.pidfile(target, "fennecd")
            self.check(again and new is not None and new != old and
                       self.pidfile(target, "supervisor") == sup,
                       "kill %d: %s restarted by its supervisor and announced again (%.1f s "
                       "after the kill)" % (i + 1, target, time.monotonic() - res["t"]),
                       (self.nexthops(), old, new))

    def phase_drain(self):
        self.phase("4. drain: withdrawn (goal %d ms from POST /v1/drain), no query lost; "
                   "undrain" % GOALS["drain"])
        for i in range(RUNS + 2):
            # RUNS timed from the request (POST /v1/drain sent from the node's namespace),
            # then two with fennecctl, timed from the command's start (its start-up included).
            cli = i >= RUNS
            kind = "drain (fennecctl, from its start)" if cli else "drain"
            target = NODES[(i + 1) % 3]
            res = {}
            before = self.drops()

            def act(node=target):
                if cli:
                    t = time.monotonic()
                    p = self.ctl(node, "drain")
                    res["ok"], res["out"] = p.returncode == 0, p.stdout + p.stderr
                    return t
                r = self.post_drain(node)
                res["ok"], res["out"] = r["status"] == 200, r
                return r["t"] if r["t"] is not None else time.monotonic()
            worst, lost, _ = self.timed(kind, target, act)
            if not self.check(res["ok"], "drain %d: %s on %s" % (
                    i + 1, "fennecctl drain" if cli else "POST /v1/drain", target), res["out"]):
                self.ctl(target, "undrain")
                break
            self.check(lost == 0, "drain %d: no query lost" % (i + 1), "%d lost: %s; drops "
                       "by the nodes: before %s, after %s" % (
                           lost, self.lost_detail(self.last_data), before, self.drops()))
            self.check(self.nexthops() == sorted(set(NODES) - {target}),
                       "drain %d: %s withdrawn, the others stay" % (i + 1, target),
                       self.nexthops())
            self.check(self.anycast_state(target) == "drained",
                       "drain %d: %s says drained" % (i + 1, target),
                       (self.status(target) or {}).get("anycast"))
            p = self.ctl(target, "undrain")
            self.check(p.returncode == 0 and self.wait_nexthops(NODES, 10),
                       "drain %d: undrain brings %s back" % (i + 1, target),
                       (p.stdout + p.stderr, self.nexthops()))

    def phase_min_announced(self):
        self.phase("5. a drain below min_announced (1) is refused")
        ok = True
        for n in ("n2", "n3"):
            p = self.ctl(n, "drain")
            ok &= self.check(p.returncode == 0, "drain %s (leaves %s)" % (n, "2" if n == "n2"
                                                                          else "1"),
                             p.stdout + p.stderr)
        if ok:
            self.check(self.wait_nexthops(["n1"], 5), "n1 alone announced", self.nexthops())
            # The other nodes' state reaches n1 through the cluster; give it a moment.
            time.sleep(0.5)
            p = self.ctl("n1", "drain")
            self.check(p.returncode != 0, "drain of the last announced node (n1) is refused",
                       "exit %d: %s%s" % (p.returncode, p.stdout, p.stderr))
            self.check("min_announced" in (p.stdout + p.stderr),
                       "the refusal names min_announced", p.stdout + p.stderr)
            self.check(self.nexthops() == ["n1"], "n1 stays announced", self.nexthops())
            p = self.ctl("n1", "nodes", "--json")
            print("     n1's view of the cluster: %s" % p.stdout.strip()[:1500])
        for n in ("n2", "n3"):
            self.ctl(n, "undrain")
        self.check(self.wait_nexthops(NODES, 10), "undrain brings n2 and n3 back",
                   self.nexthops())

    def phase_freeze(self):
        self.phase("6. a frozen node (SIGSTOP of all in its namespace): BFD routes around it "
                   "(goal %d ms)" % GOALS["freeze"])
        for i in range(RUNS):
            target = NODES[(i + 2) % 3]
            pids = self.ns_pids(target)
            if not self.check(len(pids) >= 2, "freeze %d: %s has processes (%s)" %
                              (i + 1, target, pids)):
                continue

            def act(pids=pids):
                t = time.monotonic()
                for p in pids:
                    os.kill(p, signal.SIGSTOP)
                return t
            try:
                self.timed("freeze", target, act)
            finally:  # also when the probe failed: never leave a node stopped
                for p in pids:
                    try:
                        os.kill(p, signal.SIGCONT)
                    except OSError:
                        pass
            t = time.monotonic()
            back = self.wait_nexthops(NODES, 20)
            self.check(back, "freeze %d: %s back after SIGCONT (%.1f s)" %
                       (i + 1, target, time.monotonic() - t), self.nexthops())
            self.figure("freeze: back after SIGCONT (s)", time.monotonic() - t)

    def phase_primary(self):
        self.phase("7. the primary stopped: no other node withdraws, every query answered")
        p = self.sh(self.lab, "stop", "1", timeout=60)
        self.check(p.returncode == 0, "lab.sh stop 1", p.stdout + p.stderr)
        self.check(self.wait_nexthops(["n2", "n3"], 5), "n1 withdrawn as it stops",
                   self.nexthops())
        proc, out = self.start_probe(4.0)
        seen = set()
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            seen.add(tuple(self.nexthops()))
            time.sleep(0.1)
        data = self.wait_probe(proc, out)
        self.check(seen == {("n2", "n3")}, "n2 and n3 stay announced for 4 s without the "
                   "primary", seen)
        total = sum(len(f["q"]) for f in data["flows"])
        lost = sum(1 for f in data["flows"] for s, r, n in f["q"] if r is None)
        nodes = {n for f in data["flows"] for s, r, n in f["q"] if n}
        self.check(lost == 0 and total > 0, "every one of %d queries answered" % total,
                   "%d lost: %s; drops by the nodes: %s" % (lost, self.lost_detail(data),
                                                            self.drops()))
        self.check(nodes == {"n2", "n3"}, "answered by n2 and n3", nodes)
        for n in ("n2", "n3"):
            st = self.status(n) or {}
            self.check(st.get("anycast", {}).get("state") == "announced",
                       "%s still announced, replication %s" %
                       (n, "connected" if st.get("replication", {}).get("connected") else
                        "disconnected"), st.get("anycast"))
        p = self.sh(self.lab, "start", "1", timeout=60)
        self.check(p.returncode == 0 and self.wait_nexthops(NODES, 20),
                   "n1 started again and announced", (p.stdout + p.stderr, self.nexthops()))

    def phase_crash_loop(self):
        self.phase("8. a crash loop stops at the restart-intensity limit and stays withdrawn")
        fake = os.path.join(self.tmp, "fennecd-exits")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho 'fennecd-exits: exiting at once' >&2\nexit 1\n")
        os.chmod(fake, 0o755)
        os.chmod(self.tmp, 0o755)
        p = self.sh(self.lab, "stop", "3", timeout=60)
        self.check(p.returncode == 0 and self.wait_nexthops(["n1", "n2"], 5),
                   "n3 stopped and withdrawn", (p.stdout + p.stderr, self.nexthops()))
        log = "%s/n3/supervisor.log" % RUN
        size = os.path.getsize(log) if os.path.exists(log) else 0
        t = time.monotonic()
        p = self.sh(self.lab, "start", "3", env=dict(self.env, FENNEC_LAB_FENNECD=fake),
                    timeout=60)
        self.check(p.returncode == 0, "lab.sh start 3 with a fennecd that exits at once",
                   p.stdout + p.stderr)
        gone = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.pidfile("n3", "supervisor") is None and time.monotonic() - t > 0.5:
                gone = True
                break
            time.sleep(0.1)
        took = time.monotonic() - t
        with open(log, errors="replace") as f:
            f.seek(size)
            text = f.read()
        starts = text.count("fennecd-exits: exiting at once")
        self.check(gone, "the supervisor gives up (%.1f s, fennecd started %d times)" %
                   (took, starts), text[-2000:])
        self.check(starts == 6, "fennecd started 1 + intensity (5) times", starts)
        self.check(re.search(r"intensity|gave up|giving up", text) is not None,
                   "the supervisor's log says why it stopped", text[-2000:])
        time.sleep(1.0)
        self.check(self.nexthops() == ["n1", "n2"], "n3 stays withdrawn", self.nexthops())
        self.figure("crash loop: given up after (s)", took)

    # ---- all

    def run(self):
        for tool, pkg in (("bird", "bird2"), ("birdc", "bird2"), ("ip", "iproute2"),
                          ("dig", "bind9-dnsutils")):
            if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode:
                print("FAIL %s is missing: install the Debian package %s" % (tool, pkg))
                return 1
        for b in ("fennecd", "fennecctl", "fennec-supervisor"):
            if not os.access(os.path.join(self.build, b), os.X_OK):
                print("FAIL %s is not built in %s" % (b, self.build))
                return 1
        if os.getuid() != 0:
            print("FAIL the anycast lab needs root (network namespaces)")
            return 1
        if os.path.exists(RUN):
            print("FAIL a lab exists already (%s): another test or person uses it" % RUN)
            return 1
        try:
            self.phase("lab.sh up 3")
            p = self.sh(self.lab, "up", "3", timeout=180)
            print(p.stdout + p.stderr)
            if self.check(p.returncode == 0, "lab.sh up 3"):
                for step in (self.phase_service, self.phase_record, self.phase_kill,
                             self.phase_drain, self.phase_min_announced, self.phase_freeze,
                             self.phase_primary, self.phase_crash_loop):
                    if time.monotonic() - self.t0 > BUDGET:
                        self.check(False, "%s starts within %d s" % (step.__name__, BUDGET))
                        continue
                    step()
        except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - the lab still goes down
            import traceback
            traceback.print_exc()
            self.check(False, "the test ran to its end", repr(e))
        finally:
            if self.failures:
                self.dump_logs()
            self.phase("lab.sh down")
            p = self.sh(self.lab, "down", timeout=120)
            self.check(p.returncode == 0, "lab.sh down", p.stdout + p.stderr)
            left = [l for l in self.sh("ip", "netns", "list").stdout.splitlines()
                    if re.match(r"fennec-(rt|cl|n\d+)\b", l)]
            self.check(not left and not os.path.exists(RUN),
                       "nothing left: no lab namespace, no %s" % RUN, left)
            subprocess.run(["rm", "-rf", self.tmp])
        self.report()
        took = time.monotonic() - self.t0
        if self.failures:
            print("\nanycast_lab: %d check(s) failed in %.1f s: %s" % (len(self.failures), took,
                                                                  "; ".join(self.failures)))
            return 1
        print("\nanycast_lab: all checks passed in %.1f s" % took)
        return 0

    def dump_logs(self):
        for d in sorted(os.listdir(RUN)) if os.path.isdir(RUN) else []:
            for name in ("supervisor.log", "fennecd.log", "bird.log"):
                path = os.path.join(RUN, d, name)
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        lines = f.read().splitlines()
                    print("---- %s/%s: last %d of %d lines" % (d, name, min(40, len(lines)),
                                                              len(lines)))
                    print("\n".join(lines[-40:]))

    def report(self):
        print("\n==== measured (median, min-max, runs) ====")
        for kind, vals in self.figures.items():
            vals = [v for v in vals if v is not None]
            if not vals:
                continue
            med = statistics.median(vals)
            goal = GOALS.get(kind)
            unit = "s" if kind.endswith("(s)") else "ms"
            print("%-34s median %7.1f %s, %.1f-%.1f, %d run(s)%s" % (
                kind, med, unit, min(vals), max(vals), len(vals),
                "" if goal is None else "   goal <= %d ms: %s" % (goal, "met" if med <= goal
                                                                  else "NOT MET")))
        for kind, goal in GOALS.items():
            vals = [v for v in self.figures.get(kind, []) if v is not None]
            if len(vals) < RUNS:
                self.check(False, "%s: %d of %d runs measured" % (kind, len(vals), RUNS))
            else:
                self.check(statistics.median(vals) <= goal, "%s: median %.1f ms <= %d ms" %
                           (kind, statistics.median(vals), goal))


def _stop(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv):
    # ctest's timeout and Ctrl-C end the phases, never the clean-up.
    signal.signal(signal.SIGTERM, _stop)
    if len(argv) != 3:
        print("usage: test_lab.py SOURCE_DIR BUILD_DIR")
        return 2
    return Test(argv[1], argv[2]).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
