#!/usr/bin/python3
"""Health 6: a check added by SIGHUP on the primary starts probing on every node.

A primary and two secondaries with one check (a) and its pool. A check late and a pool
late.example.com are added to the primary's configuration file and SIGHUP is sent to the
primary: within 5 s every node lists late with a result of its own probes ("200"), late's
server saw probes, and every node answers late.example.com with late's member (NXDOMAIN
before: the name is in no zone file). The unchanged check a keeps its state and counters on
every node.

usage: test_sighup.py FENNECD [FENNECCTL]
Ports: 16760-16779 (slot 8 of 16600-16799); servers on 127.0.108.1-2:16778.
"""
import signal
import sys

import hc


def body(c):
    c.server(1)
    late = c.server(2)
    a, lt = c.address(1), c.address(2)
    checks = [c.http_check("a", 1, interval="500ms", timeout="300ms", rise=1, fall=1)]
    pools = [{"name": "a.example.com", "members": [{"address": a, "check": "a"}]}]
    nodes = c.start_cluster(checks, pools)
    c.check(c.wait_states(nodes, {"a": "up"}, 5), "a is up on every node")
    before = {n.id: c.checks_of(n) for n in nodes}
    for n in nodes:
        ans = hc.ask(n, "late")
        c.check(ans and ans.rcode == "NXDOMAIN", "%s: late.example.com is NXDOMAIN before" %
                n.id, ans)

    c.phase("a check and a pool added by SIGHUP on the primary")
    checks.append(c.http_check("late", 2, interval="500ms", timeout="300ms", rise=1, fall=1))
    pools.append({"name": "late.example.com", "members": [{"address": lt, "check": "late"}]})
    c.set_health(checks, pools)
    nodes[0].signal(signal.SIGHUP)
    ok = hc.wait_for(lambda: all(c.checks_of(n).get("late", {}).get("last_result") == "200"
                                 for n in nodes), 5)
    c.check(ok, "within 5 s every node lists late with a result of its own probes (200)",
            {n.id: c.checks_of(n).get("late") for n in nodes})
    c.check(len(late.seen()) >= len(nodes), "late's server was probed (%d requests)" %
            len(late.seen()))
    for n in nodes:
        ans = hc.ask(n, "late")
        c.check(ans and ans.rcode == "NOERROR" and ans.addrs == {lt},
                "%s: late.example.com serves late's member" % n.id, ans)
        now = c.checks_of(n).get("a", {})
        was = before[n.id].get("a", {})
        c.check(now.get("state") == "up" and now.get("since") == was.get("since") and
                now.get("transitions") == was.get("transitions"),
                "%s: the unchanged check a kept its state" % n.id, (was, now))


if __name__ == "__main__":
    sys.exit(hc.Health("sighup", 8, sys.argv).run(body))
