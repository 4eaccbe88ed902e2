#!/usr/bin/python3
"""Health 1: a member whose server stops leaves the answers on every node, and comes back.

A primary and two secondaries; checks a and b (HTTP, interval 1 s, fall 2, rise 3) probe two
servers of the test; pool fo.example.com is `failover` [a's address, b's], pool
all.example.com `all` over the same two, both TTL 300 and degraded_ttl 7.
- Both up: fo serves a's address and all serves both, at TTL 300, on every node.
- a's server stops: on EVERY node, within interval x fall + 1 s = 3 s, fo serves the backup
  (b's address) and all serves b's alone, both at degraded_ttl 7; every node's /v1/health
  says a is down with "connect refused".
- a's server comes back: a returns on every node only after rise (3) successes: not before
  (rise - 1) x 0.9 intervals (the jitter is 10%), and within rise x 1.1 intervals + 1 s; TTL
  300 again; every node logged the transition once ("a: down -> up (200, 3 successes)").

usage: test_failover.py FENNECD [FENNECCTL]
Ports: 16600-16619 (slot 0 of 16600-16799); servers on 127.0.100.1-2:16618.
"""
import sys
import time

import hc

INTERVAL, FALL, RISE = 1.0, 2, 3


def body(c):
    sa, sb = c.server(1), c.server(2)
    a, b = c.address(1), c.address(2)
    checks = [c.http_check(n, k, path="/healthz", interval="1s", timeout="500ms", fall=FALL,
                           rise=RISE) for n, k in (("a", 1), ("b", 2))]
    members = [{"address": a, "check": "a"}, {"address": b, "check": "b"}]
    pools = [{"name": "fo.example.com", "policy": "failover", "ttl": 300, "degraded_ttl": 7,
              "members": members},
             {"name": "all.example.com", "policy": "all", "ttl": 300, "degraded_ttl": 7,
              "members": members}]
    nodes = c.start_cluster(checks, pools)
    c.check(c.wait_states(nodes, {"a": "up", "b": "up"}, 10),
            "a and b are up on every node within 10 s")
    for n in nodes:
        fo, al = hc.ask(n, "fo"), hc.ask(n, "all")
        c.check(fo and fo.addrs == {a} and fo.ttl == 300,
                "%s: fo serves a's address at TTL 300" % n.id, fo)
        c.check(al and al.addrs == {a, b} and al.ttl == 300,
                "%s: all serves both at TTL 300" % n.id, al)

    c.phase("a's server stops")
    bound = INTERVAL * FALL + 1
    t0 = sa.stop()
    got = hc.watch(nodes, "fo", hc.serves({b}), bound + 2)
    for n in nodes:
        g = got[n.id]
        took = g[0] - t0 if g else None
        c.check(g is not None and took <= bound,
                "%s: fo serves the backup (b) %s after a's server stopped (bound: interval x "
                "fall + 1 s = %.1f s)" % (n.id, "%.3f s" % took if g else "never", bound), g)
        c.check(g is not None and g[1].ttl == 7, "%s: at degraded_ttl 7" % n.id, g)
    for n in nodes:
        al = hc.ask(n, "all")
        c.check(al and al.addrs == {b} and al.ttl == 7,
                "%s: all serves b alone at degraded_ttl 7" % n.id, al)
        ca = c.checks_of(n).get("a", {})
        c.check(ca.get("state") == "down" and ca.get("last_result") == "connect refused",
                "%s: /v1/health: a is down, last result \"connect refused\"" % n.id, ca)

    c.phase("a's server comes back")
    t1 = time.monotonic()
    sa.start()
    got = hc.watch(nodes, "fo", hc.serves({a}, 300), RISE * INTERVAL * 1.1 + 4)
    low, high = (RISE - 1) * INTERVAL * 0.9 - 0.05, RISE * INTERVAL * 1.1 + 1
    for n in nodes:
        g = got[n.id]
        took = g[0] - t1 if g else None
        c.check(g is not None and low <= took <= high,
                "%s: fo serves a again at TTL 300 %s after its server came back: after rise "
                "= %d successes (between %.2f and %.2f s)" %
                (n.id, "%.3f s" % took if g else "never", RISE, low, high), g)
    for n in nodes:
        al = hc.ask(n, "all")
        c.check(al and al.addrs == {a, b} and al.ttl == 300,
                "%s: all serves both at TTL 300 again" % n.id, al)
        logged = n.log_text().count("check a: down -> up (200, 3 successes)")
        c.check(logged == 1, "%s logged a's way back once, with 3 successes" % n.id, logged)
    c.check(len(sb.seen()) > 0 and all(r["path"] == "/healthz" for r in sb.seen()),
            "the probes ask for the check's path", sb.seen()[:3])


if __name__ == "__main__":
    sys.exit(hc.Health("failover", 0, sys.argv).run(body))
