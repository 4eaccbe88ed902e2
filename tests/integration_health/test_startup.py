#!/usr/bin/python3
"""Health 5: before the first result.

A primary and two secondaries.
- Check hang probes a socket that accepts connections and never answers (timeout 10 s): until
  its first probe times out it has no result. Meanwhile every node says "unknown" with no last
  result and no latency in /v1/health, and pool hang.example.com (`failover` [hang's member,
  the backup's]) serves hang's member at its full TTL 300: unknown counts as up, and is not
  degraded before a probe failed. Then, on every node, hang goes down ("timeout") and the pool
  serves the backup at degraded_ttl 5.

usage: test_startup.py FENNECD [FENNECCTL]
Ports: 16680-16699 (slot 4 of 16600-16799); servers on 127.0.104.1-2:16698.
"""
import sys

import hc


def body(c):
    c.hang(1)
    c.server(2)
    h, b = c.address(1), c.address(2)
    checks = [c.http_check("hang", 1, interval="12s", timeout="10s", rise=1, fall=1),
              c.http_check("bk", 2, interval="1s", timeout="500ms", rise=1, fall=1)]
    pools = [{"name": "hang.example.com", "policy": "failover", "ttl": 300, "degraded_ttl": 5,
              "members": [{"address": h, "check": "hang"}, {"address": b, "check": "bk"}]}]
    nodes = c.start_cluster(checks, pools)

    c.phase("before hang's first result")
    for n in nodes:
        ch = c.checks_of(n).get("hang", {})
        c.check(ch.get("state") == "unknown" and ch.get("last_result") is None and
                ch.get("last_latency_ms") is None and ch.get("transitions") == 0,
                "%s: hang is unknown, with no result and no latency yet" % n.id, ch)
        a = hc.ask(n, "hang")
        c.check(a and a.addrs == {h} and a.ttl == 300,
                "%s: the pool serves hang's member at TTL 300 (unknown = up, not degraded)" %
                n.id, a)
        p = c.pools_of(n).get("hang.example.com", {})
        c.check(p.get("serving") == [h] and p.get("ttl_now") == 300 and
                [m["state"] for m in p.get("members", [])][:1] == ["unknown"],
                "%s: /v1/health: the pool serves hang's member, whose state is unknown" % n.id, p)

    c.phase("hang's first probe times out")
    got = hc.watch(nodes, "hang", hc.serves({b}, 5), 15)
    for n in nodes:
        c.check(got[n.id] is not None, "%s: the pool serves the backup at degraded_ttl 5" % n.id,
                got[n.id])
        ch = c.checks_of(n).get("hang", {})
        c.check(ch.get("state") == "down" and ch.get("last_result") == "timeout",
                "%s: hang is down, last result \"timeout\"" % n.id, ch)


if __name__ == "__main__":
    sys.exit(hc.Health("startup", 4, sys.argv).run(body))
