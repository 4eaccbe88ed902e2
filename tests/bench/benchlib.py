"""fennec benchmarks: pieces the Python benchmark drivers share (change_bench.py,
repl_bench.py): their errors, a quantile, where fennecd is, whether a port is free."""

import os
import socket


class BenchError(Exception):
    """A server refused a change, did not serve it, exited, or missed a time bound: the run
    is void."""


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def pct(vals, f):
    """The F quantile of VALS (nearest rank, as benchtool's latency figures), nan if empty."""
    if not vals:
        return float("nan")
    s = sorted(vals)
    return s[min(len(s) - 1, int(f * len(s)))]


def find_fennecd(root):
    """The fennecd of the first Release-like build folder under ROOT that has one, or None."""
    for c in ("build-bench", "build-release", "build/release", "build"):
        p = os.path.join(root, c, "fennecd")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def port_free(port):
    """Whether UDP and TCP PORT on 127.0.0.1 can be bound (TIME_WAIT connections are fine)."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True
