#!/usr/bin/python3
"""Health 9: detection time, server stopped -> changed answer on every node, measured.

A primary and two secondaries; two configurations side by side, each a check of its own
server with a `failover` pool [that server's address, a backup's]:
- d1: interval 1 s, fall 2, rise 2 (the defaults; the issue's goal: <= 2.5 s on every node);
- d2: interval 250 ms, fall 1, rise 1, timeout 200 ms (the fastest useful settings; goal
  <= 0.3 s).
Ten runs of each: once every node serves the member, the test waits a random part of an
interval (so that the stop falls anywhere between two probes), stops the server (its
listening socket is closed: a connect is refused at once) and asks every node, a thread each,
every 2 ms, until it serves the backup. A run's detection time is that of the LAST node to
change. Each node must change within interval x fall + 1 s, at degraded_ttl; the server is
then started again and every node must serve the member again. Printed: every run, then the
median and max per configuration next to the goal.

usage: test_detection.py FENNECD [FENNECCTL]
Ports: 16740-16759 (slot 7 of 16600-16799); servers on 127.0.107.1-3:16758.
Measures: run it alone (ctest RUN_SERIAL).
"""
import random
import statistics
import sys
import time

import hc

RUNS = 10
CONFIGS = [  # check, server, interval s, fall, rise, goal s
    ("d1", 1, 1.0, 2, 2, 2.5),
    ("d2", 2, 0.25, 1, 1, 0.3),
]
BACKUP = 3


def body(c):
    srv = {k: c.server(k) for k in (1, 2, BACKUP)}
    bk = c.address(BACKUP)
    checks = [c.http_check("d1", 1, interval="1s", fall=2, rise=2),
              c.http_check("d2", 2, interval="250ms", timeout="200ms", fall=1, rise=1),
              c.http_check("bk", BACKUP, interval="1s")]
    pools = [{"name": "%s.example.com" % name, "policy": "failover", "ttl": 300,
              "degraded_ttl": 5,
              "members": [{"address": c.address(k), "check": name},
                          {"address": bk, "check": "bk"}]}
             for name, k, *_ in CONFIGS]
    nodes = c.start_cluster(checks, pools)
    c.check(c.wait_states(nodes, {"d1": "up", "d2": "up", "bk": "up"}, 10),
            "every check is up on every node")

    results = {}
    rng = random.Random()
    for name, k, interval, fall, rise, goal in CONFIGS:
        c.phase("%d runs of %s: interval %g s, fall %d" % (RUNS, name, interval, fall))
        member = c.address(k)
        bound = interval * fall + 1
        back = rise * interval * 1.1 + 3
        runs = []
        for run in range(RUNS):
            up = hc.watch(nodes, name, hc.serves({member}), back)
            if not c.check(all(up.values()), "%s run %d: every node serves the member before "
                           "the stop" % (name, run + 1), up):
                break
            time.sleep(rng.uniform(0, interval))
            t0 = srv[k].stop()
            got = hc.watch(nodes, name, hc.serves({bk}), bound + 2)
            per = {nid: (g[0] - t0 if g else None) for nid, g in got.items()}
            late = {nid: v for nid, v in per.items() if v is None or v > bound}
            ttl = {nid: g[1].ttl for nid, g in got.items() if g}
            if not c.check(not late and set(ttl.values()) == {5},
                           "%s run %d: every node serves the backup within %.2f s, at "
                           "degraded_ttl 5" % (name, run + 1, bound), (per, ttl)):
                srv[k].start()
                continue
            worst = max(per.values())
            runs.append(worst)
            print("   %s run %2d: %s; every node %.3f s" % (
                name, run + 1, ", ".join("%s %.3f s" % kv for kv in sorted(per.items())),
                worst))
            srv[k].start()
        results[name] = (interval, fall, goal, runs)

    print("\ndetection time, server stopped -> changed answer on every node (%d runs each):" %
          RUNS)
    for name, (interval, fall, goal, runs) in results.items():
        if not runs:
            print("   %s: no complete run" % name)
            continue
        med, worst = statistics.median(runs), max(runs)
        print("   interval %g s, fall %d: median %.3f s, max %.3f s (goal <= %g s: %s)" % (
            interval, fall, med, worst, goal, "met" if worst <= goal else
            "median %s, max missed" % ("met" if med <= goal else "missed")))
        c.check(len(runs) == RUNS, "%s: all %d runs measured" % (name, RUNS), len(runs))


if __name__ == "__main__":
    sys.exit(hc.Health("detection", 7, sys.argv).run(body))
