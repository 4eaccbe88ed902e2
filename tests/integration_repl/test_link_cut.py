#!/usr/bin/python3
"""Replication 6: a secondary that stops answering (SIGSTOP for STOPPED seconds, the way a
cut link looks to the primary) while changes are made.

A writer adds a record every 0.1 s. While ns2 is stopped, the primary's /v1/nodes is read
every 0.2 s: once a change has been acknowledged after the stop, ns2's row must never read
"0 behind" while connected (it must show entries_behind > 0, or connected false), its
last_contact_seconds must grow with the time since the stop, and before the end it must be
shown disconnected (the primary closes a stream silent for 5 s). ns3, never stopped, stays
current. After SIGCONT ns2 must be connected, streaming and 0 behind within RECOVER
seconds, and serve every acknowledged change.

usage: test_link_cut.py FENNECD [FENNECCTL]
Ports: 127.0.0.1:16100-16119 (slot 5 of 16000-16199).
"""
import signal
import sys
import time

import repl

STOPPED = 6.5
RECOVER = 5.0


def body(c):
    p = c.primary()
    s2, s3 = c.secondary("ns2"), c.secondary("ns3")
    p.start()
    for s in (s2, s3):
        c.register(s)
        s.start()
    c.check(c.wait_converged([s2, s3]) is not None, "both secondaries follow the primary")
    writer = repl.Writer(c, pause=0.1)
    writer.start()
    time.sleep(0.5)
    c.phase("writer started")

    samples = []
    try:
        s2.signal(signal.SIGSTOP)
        t_stop = time.monotonic()
        acked_at_stop = len(writer.acked)
        first_write_after = None
        while time.monotonic() - t_stop < STOPPED:
            t = time.monotonic() - t_stop
            if first_write_after is None and len(writer.acked) > acked_at_stop:
                first_write_after = t
            rows = p.nodes() or {}
            samples.append((t, first_write_after is not None, rows.get("ns2"),
                            rows.get("ns3")))
            time.sleep(0.2)
    finally:
        s2.signal(signal.SIGCONT)
    t_cont = time.monotonic()
    c.phase("ns2 stopped for %.1f s, %d samples of the primary's /v1/nodes" %
            (STOPPED, len(samples)))
    for t, after, row, _ in samples[::5]:
        print("   t=%.1f s: connected %s, state %s, entries_behind %s, seconds_behind %s, "
              "last_contact_seconds %s" % (t, row.get("connected"), row.get("state"),
                                           row.get("entries_behind"),
                                           row.get("seconds_behind"),
                                           row.get("last_contact_seconds")))
    c.check(all(row for _, _, row, _ in samples), "ns2 is listed in every sample")
    zero = [(round(t, 1), row) for t, after, row, _ in samples
            if after and row and row.get("connected") and row.get("entries_behind") == 0]
    c.check(not zero, "while ns2 is stopped it never reads \"connected, 0 behind\" once a "
            "change was acknowledged", zero[:3])
    stale = [(round(t, 1), row.get("last_contact_seconds")) for t, _, row, _ in samples
             if row and row.get("connected") and t > 1.0 and
             (row.get("last_contact_seconds") or 0) < t - 1.0]
    c.check(not stale, "while connected, last_contact_seconds grows with the time ns2 has "
            "been silent (within 1 s)", stale[:5])
    behind = [row.get("seconds_behind") or 0 for t, after, row, _ in samples if t > 2.0]
    c.check(behind and min(behind) > 0.5, "seconds_behind keeps growing while ns2 is stopped "
            "(above 0.5 s after 2 s)", behind[:5])
    disc = [t for t, _, row, _ in samples if row and row.get("connected") is False]
    c.check(disc and disc[0] <= STOPPED, "the primary shows ns2 disconnected before it "
            "resumes (first at %s s)" % (round(disc[0], 1) if disc else None))
    c.check(disc and all(row.get("state") == "disconnected" for t, _, row, _ in samples
                         if t >= disc[0]),
            "once disconnected, its state reads \"disconnected\"",
            [row.get("state") for t, _, row, _ in samples if disc and t >= disc[0]])
    ns3_late = [(round(t, 1), r3.get("entries_behind")) for t, _, _, r3 in samples
                if r3 and (not r3.get("connected") or r3.get("entries_behind", 0) > 20)]
    c.check(not ns3_late, "ns3 stays connected and current meanwhile", ns3_late[:5])

    # Back: 0 behind within RECOVER seconds (the writer still writing, so "0 behind" is
    # looked for between two writes).
    def caught_up():
        row = (p.nodes() or {}).get("ns2") or {}
        return row if (row.get("connected") and row.get("entries_behind") == 0 and
                       row.get("state") == "streaming") else None

    row = repl.wait_for(caught_up, RECOVER, step=0.02)
    took = time.monotonic() - t_cont
    c.check(row is not None, "after SIGCONT the primary sees ns2 connected, streaming and 0 "
            "behind within %.0f s (%.2f s)" % (RECOVER, took),
            (p.nodes() or {}).get("ns2"))
    c.check(writer.hold(), "the writer pauses")
    writer.finish()
    c.check(c.wait_converged([s2, s3]) is not None, "every node reaches the primary's index")
    c.check(len(writer.acked) > 30 and not writer.errors, "the writer got its changes through",
            (len(writer.acked), writer.errors[:3]))
    c.compare([s2, s3], sorted(writer.acked), "after the cut")
    r = s2.repl() or {}
    c.check(r.get("connected") and r.get("entries_behind") == 0,
            "ns2's own status: connected, 0 behind", r)


if __name__ == "__main__":
    sys.exit(repl.Cluster("link_cut", 5, sys.argv).run(body))
