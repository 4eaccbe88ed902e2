#!/usr/bin/python3
"""Replication 3: the primary killed with SIGKILL in the middle of a stream of changes, then
restarted from its own journal, RUNS times.

A writer thread keeps adding records through the primary's API; while the primary is down
its writes fail (they are not acknowledged, and their outcome is unknown). While it is down,
both secondaries keep serving every acknowledged write. After each restart the writer goes
on; then it pauses and every write that got a 200 must be served by the primary and both
secondaries (nothing acknowledged is lost), every node must reach the primary's index, and no
two acknowledged writes may share an index (an index handed out twice would mean an
acknowledged entry was overwritten).

usage: test_kill_primary.py FENNECD [FENNECCTL]
Ports: 127.0.0.1:16040-16059 (slot 2 of 16000-16199).
"""
import os
import random
import sys
import time

import repl

RUNS = int(os.environ.get("FENNEC_KILL_RUNS", "3"))
SEED = 3141


def body(c):
    rng = random.Random(SEED)
    p = c.primary()
    secs = [c.secondary("ns2"), c.secondary("ns3")]
    p.start()
    for s in secs:
        c.register(s)
        s.start()
    c.check(c.wait_converged(secs) is not None, "both secondaries follow the primary")
    writer = repl.Writer(c)
    writer.start()
    c.phase("cluster up, writer started")
    try:
        for run in range(1, RUNS + 1):
            time.sleep(rng.uniform(0.3, 0.8))
            rc = p.kill9()
            acked = dict(writer.acked)
            c.check(rc == -9, "run %d: primary killed with SIGKILL after %d acked writes" %
                    (run, len(acked)), rc)
            time.sleep(0.3)
            # The secondaries keep serving what they have (at least what was acknowledged
            # before the last moment: an entry acked by the primary may still be on its way,
            # so ask for those acknowledged a little before the kill).
            early = list(acked.items())[:-50]
            for s in secs:
                st = [nm for nm, (a, _) in early[-200:] if s.query(nm) != ("NOERROR", [a])]
                c.check(not st, "run %d: %s keeps serving while the primary is down" %
                        (run, s.id), st[:5])
            time.sleep(rng.uniform(0.2, 0.6))
            p.start()
            time.sleep(rng.uniform(0.3, 0.8))
            c.check(writer.hold(), "run %d: the writer pauses" % run)
            index = c.wait_converged(secs, timeout=15)
            c.check(index is not None, "run %d: both secondaries reach the restarted primary's "
                    "index %r" % (run, p.index()), [s.index() for s in secs])
            acked = dict(writer.acked)
            for n in [p] + secs:
                lost = [(nm, a) for nm, (a, _) in acked.items()
                        if n.query(nm) != ("NOERROR", [a])]
                c.check(not lost, "run %d: %s answers all %d acknowledged writes" %
                        (run, n.id, len(acked)),
                        "%d lost, first: %r" % (len(lost), [(nm, a, n.query(nm))
                                                            for nm, a in lost[:5]]))
            for s in secs:
                c.check(s.serial() == p.serial() and s.zone_records() == p.zone_records(),
                        "run %d: %s has the primary's serial and record count" % (run, s.id),
                        (s.serial(), p.serial(), s.zone_records(), p.zone_records()))
            writer.resume()
            if index is None:
                print("   (no further runs: the cluster did not converge after run %d)" % run)
                break
            c.phase("run %d done: %d acked, %d not acked so far" %
                    (run, len(writer.acked), len(writer.unacked)))
    finally:
        writer.finish()
    c.check(len(writer.unacked) > 0, "writes were refused while the primary was down (the "
            "test did cut the stream of changes)", len(writer.unacked))
    idx = [i for _, i in writer.acked.values()]
    c.check(len(set(idx)) == len(idx) and all(isinstance(i, int) for i in idx),
            "no two acknowledged writes share an index",
            len(idx) - len(set(idx)))
    # The unacknowledged writes either happened or not, but alike on every node.
    c.check(c.wait_converged(secs) is not None, "final: every node at the primary's index")
    c.compare(secs, sorted(writer.acked), "final")
    for s in secs:
        ahead = [line for line in s.log_text().splitlines() if "--reseed" in line]
        c.check(not ahead, "%s never finds itself ahead of the primary" % s.id, ahead[:3])


if __name__ == "__main__":
    sys.exit(repl.Cluster("kill_primary", 2, sys.argv).run(body))
