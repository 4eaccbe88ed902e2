#!/usr/bin/python3
"""Health 7: overrides, and every node's view through the API, /metrics and fennecctl.

A primary and two secondaries; checks a and b (HTTP, servers up), pool fo.example.com
`failover` [a's address, b's] and pool all.example.com `all` over the same, TTL 300,
degraded_ttl 7.
- POST /v1/health/a/override {"state": "down"}?wait=all on the primary: answered with the
  journal index; as soon as it returns, EVERY node serves b's address for fo at TTL 7, and
  says in /v1/health that a's state is still up (the probes') with override "down" while the
  pool members say down; fennec_health_check_up{check="a"} is 0 on every node.
- `fennecctl --wait health override a clear` on the primary: every node serves a again at
  TTL 300 at once.
- b's server stops; b goes down on every node; `health override b up` makes every node serve
  both for all.example.com at TTL 300; clearing it brings back b alone being left out.
- Refusals: the same POST to a secondary is a 409 naming the primary; an unknown check a 404;
  no token a 401; a bad state or an unknown field a 400; nothing is journaled by them.
- /v1/health gives the same picture on every node (states, results, overrides, what each pool
  serves); `fennecctl health` prints it; `fennecctl health --all-nodes` on the primary and on
  a secondary (the primary registered as a member too, so a secondary knows its control
  endpoint) prints one column per node with the same states; with ns3 stopped its column
  says "no answer" and the exit code is 1. /metrics passes promtool.

usage: test_override.py FENNECD [FENNECCTL]
Ports: 16700-16719 (slot 5 of 16600-16799); servers on 127.0.105.1-2:16718.
"""
import json
import re
import shutil
import subprocess
import sys

import hc


def picture(c, node):
    """What must agree between nodes: per check its state, result, override; per pool what it
    serves, at which TTL, and its members' states."""
    h = c.health(node)
    if not isinstance(h, dict):
        return None
    return ({ch["name"]: (ch["type"], ch["target"], ch["state"], ch["last_result"],
                          ch["override"]) for ch in h["checks"]},
            {p["name"]: (p["type"], p["ttl_now"], sorted(p["serving"]),
                         [(m["address"], m["check"], m["state"]) for m in p["members"]])
             for p in h["pools"]})


def table(text):
    """Rows of a fennecctl table (columns are separated by two spaces or more)."""
    return [re.split(r"\s{2,}", ln.strip()) for ln in text.splitlines() if ln.strip()]


def override(c, node, check, state, token=True, wait=True, raw=None):
    body = raw if raw is not None else json.dumps({"state": state}).encode()
    return node.http("POST", "/v1/health/%s/override%s" % (check, "?wait=all" if wait else ""),
                     body=body, token=c.token if token else None)


def body(c):
    c.server(1)
    sb = c.server(2)
    a, b = c.address(1), c.address(2)
    checks = [c.http_check(n, k, interval="500ms", timeout="300ms", rise=1, fall=1)
              for n, k in (("a", 1), ("b", 2))]
    members = [{"address": a, "check": "a"}, {"address": b, "check": "b"}]
    pools = [{"name": "fo.example.com", "policy": "failover", "ttl": 300, "degraded_ttl": 7,
              "members": members},
             {"name": "all.example.com", "policy": "all", "ttl": 300, "degraded_ttl": 7,
              "members": members}]
    nodes = c.start_cluster(checks, pools)
    p, s2, s3 = nodes
    c.check(c.wait_states(nodes, {"a": "up", "b": "up"}, 5), "a and b are up on every node")

    c.phase("override a down on the primary, ?wait=all")
    st, ans = override(c, p, "a", "down")
    c.check(st == 200 and ans.get("check") == "a" and ans.get("override") == "down" and
            ans.get("result") == "set" and isinstance(ans.get("index"), int),
            "the override is answered with its journal index", (st, ans))
    for n in nodes:
        got = hc.ask(n, "fo")
        c.check(got and got.addrs == {b} and got.ttl == 7,
                "%s: at once, fo serves b at degraded_ttl 7" % n.id, got)
    for n in nodes:
        ca = c.checks_of(n).get("a", {})
        c.check(ca.get("state") == "up" and ca.get("override") == "down",
                "%s: /v1/health: a is up by its probes, override down" % n.id, ca)
        fo = c.pools_of(n).get("fo.example.com", {})
        c.check(fo.get("serving") == [b] and fo.get("ttl_now") == 7 and
                fo.get("members", [{}])[0].get("state") == "down",
                "%s: /v1/health: fo serves b, TTL 7, member a down" % n.id, fo)
        m = c.metrics(n) or ""
        c.check('fennec_health_check_up{check="a"} 0\n' in m and
                'fennec_health_check_up{check="b"} 1\n' in m,
                "%s: /metrics: a counts as down, b as up" % n.id)
    pics = {n.id: picture(c, n) for n in nodes}
    c.check(pics["ns1"] is not None and pics["ns2"] == pics["ns1"] == pics["ns3"],
            "/v1/health gives the same picture on every node", pics)

    rc, out, err = c.ctl(p, "health")
    rows = table(out)
    c.check(rc == 0 and rows and rows[0][:4] == ["CHECK", "TYPE", "TARGET", "STATE"] and
            any(r[0] == "a" and r[3] == "up" and "down" in r[7:8] for r in rows) and
            any(r[0] == "fo.example.com" and r[2] == "7" and r[3] == b for r in rows),
            "fennecctl health: the checks (a up, override down) and the pools (fo serves b, "
            "TTL 7)", (rc, out, err))
    rc, out, err = c.ctl(p, "health", "--all-nodes")
    rows = table(out)
    c.check(rc == 0 and rows and rows[0] == ["CHECK", "ns1", "ns2", "ns3"] and
            ["a"] + ["up (override down)"] * 3 in rows and ["b", "up", "up", "up"] in rows,
            "fennecctl health --all-nodes on the primary: a check x node table", out)
    c.check(["fo.example.com"] + ["%s ttl 7" % b] * 3 in rows,
            "and what fo serves on each node", out)

    c.phase("clear with fennecctl --wait")
    rc, out, err = c.ctl(p, "--wait", "health", "override", "a", "clear")
    c.check(rc == 0 and "check a: override cleared" in out, "fennecctl health override a clear",
            (rc, out, err))
    for n in nodes:
        got = hc.ask(n, "fo")
        c.check(got and got.addrs == {a} and got.ttl == 300,
                "%s: at once, fo serves a at TTL 300 again" % n.id, got)
        c.check(c.checks_of(n).get("a", {}).get("override") is None,
                "%s: a has no override any more" % n.id)

    c.phase("b's server stops; override b up; clear")
    sb.stop()
    c.check(c.wait_states(nodes, {"b": "down"}, 5), "b is down on every node")
    got = hc.watch(nodes, "all", hc.serves({a}, 7), 3)
    c.check(all(got.values()), "every node serves a alone for all at TTL 7", got)
    rc, out, err = c.ctl(p, "--wait", "health", "override", "b", "up")
    c.check(rc == 0, "fennecctl health override b up", (rc, out, err))
    for n in nodes:
        got = hc.ask(n, "all")
        c.check(got and got.addrs == {a, b} and got.ttl == 300,
                "%s: all serves both at TTL 300: b is overridden up" % n.id, got)
        cb = c.checks_of(n).get("b", {})
        c.check(cb.get("state") == "down" and cb.get("override") == "up",
                "%s: b is down by its probes, override up" % n.id, cb)
    rc, out, err = c.ctl(p, "--wait", "health", "override", "b", "clear")
    for n in nodes:
        got = hc.ask(n, "all")
        c.check(rc == 0 and got and got.addrs == {a} and got.ttl == 7,
                "%s: cleared, all serves a alone again" % n.id, got)

    c.phase("refusals")
    index = p.index()
    st, ans = override(c, s2, "a", "down")
    c.check(st == 409 and "secondary" in ans.get("error", "") and
            "primary" in ans.get("error", "") and str(p.repl_port) in ans.get("error", ""),
            "a secondary refuses an override with 409, naming where the primary is", (st, ans))
    st, ans = override(c, p, "nosuch", "down")
    c.check(st == 404 and "nosuch" in ans.get("error", ""), "an unknown check is a 404",
            (st, ans))
    st, ans = override(c, p, "a", "down", token=False)
    c.check(st == 401, "no token is a 401", (st, ans))
    st, ans = override(c, p, "a", "sideways")
    c.check(st == 400 and "state" in ans.get("error", ""), "a bad state is a 400", (st, ans))
    st, ans = override(c, p, "a", None, raw=b'{"state": "down", "for": "ever"}')
    c.check(st == 400 and "for" in ans.get("error", ""), "an unknown field is a 400", (st, ans))
    c.check(p.index() == index, "no refusal took an index", (index, p.index()))
    rc, out, err = c.ctl(s2, "health", "override", "a", "down")
    c.check(rc == 1 and "HTTP 409" in err, "fennecctl against a secondary: exit 1, the 409",
            (rc, err))

    c.phase("--all-nodes from a secondary, and with a node stopped")
    r = c.ctl(p, "node", "add", "ns1", "127.0.0.1:%d" % p.control_port)
    c.check(r[0] == 0, "the primary is registered as a member too", r)
    st, ans = override(c, s2, "a", "down")
    c.check(st == 409 and "ns1 at 127.0.0.1:%d" % p.control_port in ans.get("error", ""),
            "now the 409 names the primary's control endpoint", (st, ans))
    def all_nodes_from_s2():
        r = c.ctl(s2, "health", "--all-nodes")
        return r[0] == 0 and ["CHECK", "ns2", "ns3", "ns1"] in table(r[1])
    ok = hc.wait_for(all_nodes_from_s2, 5, step=0.2)
    rc, out, err = c.ctl(s2, "health", "--all-nodes")
    rows = table(out)
    c.check(ok and ["a", "up", "up", "up"] in rows and ["b", "down", "down", "down"] in rows,
            "fennecctl health --all-nodes on a secondary: itself first, then the member list",
            out)
    rc, out, err = c.ctl(s2, "--json", "health", "--all-nodes")
    j = json.loads(out) if rc == 0 else {}
    c.check([n.get("id") for n in j.get("nodes", [])] == ["ns2", "ns3", "ns1"] and
            all(n.get("error") is None and isinstance(n.get("health"), dict)
                for n in j["nodes"]),
            "--json: every node with its /v1/health", out[:800])
    s3.stop()
    rc, out, err = c.ctl(p, "health", "--all-nodes")
    rows = table(out)
    c.check(rc == 1 and ["a", "up", "up", "no answer"] in rows and "ns3" in err and
            "did not answer" in err,
            "with ns3 stopped its column says \"no answer\" and the exit code is 1",
            (rc, out, err))

    promtool = shutil.which("promtool")
    if c.check(promtool is not None, "promtool is installed (Debian package prometheus)"):
        r = subprocess.run([promtool, "check", "metrics"], input=c.metrics(p),
                           capture_output=True, text=True, timeout=30)
        c.check(r.returncode == 0, "promtool check metrics passes with the health families",
                r.stdout + r.stderr)


if __name__ == "__main__":
    sys.exit(hc.Health("override", 5, sys.argv).run(body))
