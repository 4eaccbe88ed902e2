#!/usr/bin/python3
"""Replication 5: a secondary older than the primary's journal keeps gets a snapshot.

The primary keeps a short journal (journal: {keep: 10, snapshot_every: 50}). ns2 follows it,
is stopped (SIGTERM), and 500 changes are made meanwhile, so that the entries after ns2's
index are compacted away. Started again, ns2 must get the snapshot (the primary's log says
it sends one to ns2, ns2's log that it receives one; the primary's /v1/nodes shows the state
"snapshot" while it is sent, when the poll catches it) and converge: the primary's index,
serial, record count and every name. Changes made afterwards stream to it as usual, and a
restart of ns2 now starts from its own snapshot and journal: no second transfer.
ns3 is never stopped: it streams entry by entry throughout.

usage: test_snapshot.py FENNECD [FENNECCTL]
Ports: 127.0.0.1:16080-16099 (slot 4 of 16000-16199).
"""
import sys
import threading
import time

import repl

WHILE_DOWN = 500
AFTER = 20
SENDING = "older than the journal keeps: sending the snapshot"


def body(c):
    p = c.primary(journal={"keep": 10, "snapshot_every": 50})
    s2, s3 = c.secondary("ns2"), c.secondary("ns3")
    p.start()
    for s in (s2, s3):
        c.register(s)
        s.start()
    names = []
    for i in range(30):
        if c.add("a%d" % i, repl.addr_of(i))[0] == 200:
            names.append("a%d" % i)
    c.check(c.wait_converged([s2, s3]) is not None, "both secondaries follow the primary")
    s2.stop()
    c.phase("ns2 stopped")
    for i in range(WHILE_DOWN):
        st, _ = c.add("b%d" % i, repl.addr_of(i))
        if st == 200:
            names.append("b%d" % i)
    c.check(len(names) == 30 + WHILE_DOWN, "%d changes made while ns2 is down" % WHILE_DOWN,
            len(names))
    c.check(c.wait_converged([s3]) is not None, "ns3 keeps up entry by entry")
    c.phase("%d changes made" % WHILE_DOWN)

    # Watch the primary's view of ns2 while it comes back.
    states = []
    stop = threading.Event()

    def watch():
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            row = (p.nodes() or {}).get("ns2")
            if row and (not states or states[-1] != row.get("state")):
                states.append(row.get("state"))
            time.sleep(0.005)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    log_p = len(p.log_text())
    s2.start()
    index = c.wait_converged([s2, s3], timeout=20)
    # The state follows the index by a heartbeat or so: watch on until it says streaming
    # (at most 2 s), so the last state seen is the one the primary settled on.
    settle = time.monotonic() + 2
    while time.monotonic() < settle and (not states or states[-1] != "streaming"):
        time.sleep(0.01)
    stop.set()
    t.join()
    print("   the primary's /v1/nodes state of ns2 while it came back: %s" % " -> ".join(
        str(s) for s in states))
    c.check(index is not None, "ns2 converges on the primary's index after the snapshot",
            (s2.index(), p.index()))
    plog = p.log_text()[log_p:]
    sent = [line for line in plog.splitlines() if SENDING in line and "node ns2" in line]
    c.check(len(sent) == 1, "the primary's log says it sends ns2 the snapshot (\"%s\")" %
            SENDING, plog[-2000:])
    c.check("receiving a snapshot" in s2.log_text(), "ns2's log says it receives a snapshot")
    c.check("snapshot" in states or sent, "the primary's view of ns2 passes through the "
            "snapshot state, or its log shows the snapshot", states)
    c.check(states and states[-1] == "streaming", "ns2 ends streaming", states)
    c.compare([s2, s3], names, "after the snapshot")
    c.phase("snapshot installed")

    for i in range(AFTER):
        if c.add("c%d" % i, repl.addr_of(i))[0] == 200:
            names.append("c%d" % i)
    c.check(c.wait_converged([s2, s3]) is not None, "changes after the snapshot stream to ns2")
    c.compare([s2], ["c%d" % i for i in range(AFTER)], "after the snapshot, new changes")

    # A restart now starts from ns2's own snapshot and journal: no transfer.
    s2.stop()
    log_p = len(p.log_text())
    s2.start()
    c.check(c.wait_converged([s2], timeout=10) is not None, "ns2 restarted converges")
    c.check(SENDING not in p.log_text()[log_p:],
            "a restart of a caught-up ns2 needs no second snapshot", p.log_text()[log_p:][-1000:])
    c.compare([s2], names, "after a restart")
    c.phase("restarted")


if __name__ == "__main__":
    sys.exit(repl.Cluster("snapshot", 4, sys.argv).run(body))
