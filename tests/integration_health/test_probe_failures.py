#!/usr/bin/python3
"""Health 3: what makes an HTTP probe fail, seen the same way by every node.

A primary and two secondaries; each check below has a `failover` pool [its server's address,
the backup's] so that its verdict shows in the answers too. On every node:
- slow: the server answers after 1 s, the timeout is 300 ms: down, last result "timeout",
  counted as a timeout in /metrics; once the server answers at once, up again;
- e500: the server answers 500, expect_status is the default [200]: down, last result "500";
  e500ok probes the same server with expect_status [500, 503]: up;
- body: the server answers 200 "status: degraded": expect_body "status: ok" is down with
  "200, body mismatch", expect_body "degraded" (check bodyok) is up;
- host: `host: www.service.test`, path /healthz: every request the server got carries
  "Host: www.service.test" and asks for /healthz.
The pools of the failing checks serve the backup, those of the passing ones their member.

usage: test_probe_failures.py FENNECD [FENNECCTL]
Ports: 16640-16659 (slot 2 of 16600-16799); servers on 127.0.102.1-5:16658.
"""
import sys

import hc

SLOW, E500, BODY, HOST, BACKUP = 1, 2, 3, 4, 5


def body(c):
    srv = {k: c.server(k) for k in (SLOW, E500, BODY, HOST, BACKUP)}
    srv[SLOW].set(delay=1.0)
    srv[E500].set(status=500, body="broken\n")
    srv[BODY].set(body="status: degraded\n")
    common = {"interval": "500ms", "rise": 1, "fall": 1}
    checks = [
        c.http_check("slow", SLOW, timeout="300ms", **common),
        c.http_check("e500", E500, timeout="300ms", **common),
        c.http_check("e500ok", E500, timeout="300ms", expect_status=[500, 503], **common),
        c.http_check("body", BODY, timeout="300ms", expect_body="status: ok", **common),
        c.http_check("bodyok", BODY, timeout="300ms", expect_body="degraded", **common),
        c.http_check("host", HOST, timeout="300ms", host="www.service.test", path="/healthz",
                     **common),
        c.http_check("backup", BACKUP, timeout="300ms", **common),
    ]
    member = {"slow": SLOW, "e500": E500, "e500ok": E500, "body": BODY, "bodyok": BODY,
              "host": HOST}
    pools = [{"name": "%s.example.com" % name, "policy": "failover", "degraded_ttl": 5,
              "members": [{"address": c.address(k), "check": name},
                          {"address": c.address(BACKUP), "check": "backup"}]}
             for name, k in member.items()]
    nodes = c.start_cluster(checks, pools)
    want = {"slow": ("down", "timeout"), "e500": ("down", "500"), "e500ok": ("up", "500"),
            "body": ("down", "200, body mismatch"), "bodyok": ("up", "200"),
            "host": ("up", "200"), "backup": ("up", "200")}
    c.check(c.wait_states(nodes, {k: v[0] for k, v in want.items()}, 10),
            "every node reaches the expected states within 10 s")
    for n in nodes:
        cs = c.checks_of(n)
        for name, (state, result) in want.items():
            got = cs.get(name, {})
            c.check(got.get("state") == state and got.get("last_result") == result,
                    "%s: %s is %s, last result \"%s\"" % (n.id, name, state, result), got)
        lat = cs.get("slow", {}).get("last_latency_ms")
        c.check(isinstance(lat, float) and 280 <= lat <= 1000,
                "%s: the timed-out probe took about the timeout (300 ms): %r ms" % (n.id, lat))
        for name, k in member.items():
            a = hc.ask(n, name)
            served = {c.address(BACKUP)} if want[name][0] == "down" else {c.address(k)}
            c.check(a and a.addrs == served,
                    "%s: pool %s serves %s" % (n.id, name,
                                               "the backup" if want[name][0] == "down"
                                               else "its member"), a)
        m = c.metrics(n) or ""
        c.check('fennec_health_probes_total{check="slow",result="timeout"} 0' not in m and
                'fennec_health_probes_total{check="slow",result="timeout"}' in m and
                'fennec_health_check_up{check="slow"} 0' in m and
                'fennec_health_check_up{check="e500ok"} 1' in m and
                'fennec_health_transitions_total{check="e500",to="down"} 1' in m,
                "%s: /metrics counts slow's timeouts and says which checks are up" % n.id,
                [ln for ln in m.splitlines() if "fennec_health" in ln and "slow" in ln])

    seen = srv[HOST].seen()
    c.check(len(seen) >= 3 and all(r["host"] == "www.service.test" for r in seen),
            "every probe of check host carried \"Host: www.service.test\" (%d requests)" %
            len(seen), [r["host"] for r in seen[:5]])
    c.check(all(r["path"] == "/healthz" for r in seen), "and asked for /healthz",
            [r["path"] for r in seen[:5]])
    c.check(srv[E500].seen() and all(r["host"] == c.address(E500) for r in srv[E500].seen()),
            "without `host`, the Host header is the target (without the port)",
            srv[E500].seen()[:2])

    c.phase("the slow server answers at once again")
    srv[SLOW].set(delay=0)
    c.check(c.wait_states(nodes, {"slow": "up"}, 5), "slow is up on every node within 5 s")
    for n in nodes:
        a = hc.ask(n, "slow")
        c.check(a and a.addrs == {c.address(SLOW)}, "%s: pool slow serves its member" % n.id, a)


if __name__ == "__main__":
    sys.exit(hc.Health("probe_failures", 2, sys.argv).run(body))
