#!/usr/bin/python3
"""Replication 2: a secondary killed with SIGKILL in the middle of a stream of changes, then
restarted, RUNS times in a row.

A writer thread keeps adding records (one per change) through the primary's API the whole
time. In each run ns2 is killed at a random moment, stays down a moment, and is started
again while the writes go on. Then the writer pauses and ns2 must converge: the same index as
the primary, the same SOA serial (an entry applied twice would move it once more), the same
record count (no record twice, none missing), and every write the primary acknowledged
answered by ns2 with its address (nothing acknowledged lost). ns3 runs throughout as a
witness that is never killed.

usage: test_kill_secondary.py FENNECD [FENNECCTL]
Ports: 127.0.0.1:16020-16039 (slot 1 of 16000-16199).
"""
import os
import random
import sys
import time

import repl

RUNS = int(os.environ.get("FENNEC_KILL_RUNS", "5"))
SEED = 20240101


def body(c):
    rng = random.Random(SEED)
    p = c.primary()
    s2, s3 = c.secondary("ns2"), c.secondary("ns3")
    p.start()
    for s in (s2, s3):
        c.register(s)
        s.start()
    c.check(c.wait_converged([s2, s3]) is not None, "both secondaries follow the primary")
    writer = repl.Writer(c)
    writer.start()
    c.phase("cluster up, writer started")
    try:
        for run in range(1, RUNS + 1):
            time.sleep(rng.uniform(0.2, 0.8))
            before = len(writer.acked)
            rc = s2.kill9()
            c.check(rc == -9, "run %d: ns2 killed with SIGKILL while %d changes were acked" %
                    (run, before), rc)
            time.sleep(rng.uniform(0.1, 0.5))
            s2.start()
            time.sleep(rng.uniform(0.3, 0.8))  # it catches up while the writes go on
            c.check(writer.hold(), "run %d: the writer pauses" % run)
            index = c.wait_converged([s2, s3], timeout=15)
            c.check(index is not None, "run %d: ns2 and ns3 converge on the primary's index "
                    "%r after the restart" % (run, p.index()), (s2.index(), s3.index()))
            acked = dict(writer.acked)
            lost = [(nm, a) for nm, (a, _) in acked.items() if s2.query(nm) != ("NOERROR", [a])]
            c.check(not lost, "run %d: ns2 answers all %d acknowledged writes with their "
                    "address" % (run, len(acked)),
                    "%d lost, first: %r" % (len(lost), [(nm, a, s2.query(nm))
                                                        for nm, a in lost[:5]]))
            c.check(s2.serial() == p.serial(), "run %d: ns2's serial is the primary's (%r)" %
                    (run, p.serial()), s2.serial())
            c.check(s2.zone_records() == p.zone_records(),
                    "run %d: ns2 holds as many records as the primary (%r)" %
                    (run, p.zone_records()), s2.zone_records())
            nodes = p.nodes() or {}
            row = nodes.get("ns2", {})
            c.check(row.get("connected") is True and row.get("entries_behind") == 0,
                    "run %d: the primary sees ns2 connected and 0 behind" % run, row)
            writer.resume()
            if index is None:
                print("   (no further runs: ns2 did not converge after run %d)" % run)
                break
            c.phase("run %d done: %d changes acked so far" % (run, len(writer.acked)))
    finally:
        writer.finish()
    c.check(len(writer.acked) > 50 * RUNS, "the writer got changes through during the runs",
            len(writer.acked))
    c.check(not writer.errors, "no write was refused (the primary never went away)",
            writer.errors[:5])
    # Every index the primary acknowledged is distinct: no two writes share one.
    idx = [i for _, i in writer.acked.values()]
    c.check(len(set(idx)) == len(idx), "every acknowledged write has an index of its own")
    c.check(c.wait_converged([s2, s3]) is not None, "final: ns2 and ns3 converge")
    c.compare([s2, s3], sorted(writer.acked), "final")
    text = s2.log_text()
    bad = [line for line in text.splitlines() if "not applied" in line or
           "differs from the primary" in line]
    c.check(not bad, "ns2's log shows no entry refused on the way (no gap, no double apply)",
            bad[:5])


if __name__ == "__main__":
    sys.exit(repl.Cluster("kill_secondary", 1, sys.argv).run(body))
