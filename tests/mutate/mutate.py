#!/usr/bin/python3
"""Breaks one rule of the code at a time and runs the tests that should notice.

Reads tests/mutate/mutations.txt: blocks of

    [id]
    file: node/query.c
    find: the exact text to break (found exactly once in the file)
    replace: what it becomes
    tests: a ctest -R regular expression (the tests that own the rule)
    rule: the rule, in words

Copies the tree (tracked and untracked-but-not-ignored files) to a scratch folder, builds it
once (Release, tests on), checks that every test named by a mutation passes unbroken, then
for each mutation: writes the break, builds, runs its tests, puts the file back. A mutation
the tests catch (some test fails) is good; one that survives (every test passes) names a rule
nothing checks; a mutation whose text is no longer found exactly once is stale.

    tests/mutate/mutate.py [--only ID[,ID...]] [--keep] [--jobs N]

Exit status: 0 when every mutation was caught, 1 when one survived or was stale, 2 on a
harness problem (the unbroken tests fail, the build fails).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def parse(path):
    muts, cur = [], None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.match(r"^\[([\w.-]+)\]$", line)
            if m:
                cur = {"id": m.group(1), "line": n}
                muts.append(cur)
                continue
            m = re.match(r"^(file|find|replace|tests|rule):\s?(.*)$", line)
            if not m or cur is None:
                raise SystemExit(f"{path}:{n}: expected [id] or 'key: value', got: {line!r}")
            # \n and \t in find/replace stand for a newline and a tab
            val = m.group(2)
            if m.group(1) in ("find", "replace"):
                val = val.replace("\\n", "\n").replace("\\t", "\t")
            cur[m.group(1)] = val
    for m in muts:
        for k in ("file", "find", "replace", "tests", "rule"):
            if k not in m:
                raise SystemExit(f"{path}:{m['line']}: [{m['id']}] has no '{k}'")
    ids = [m["id"] for m in muts]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise SystemExit(f"{path}: ids used twice: {', '.join(sorted(dup))}")
    return muts


def run(cmd, cwd, timeout, log):
    t0 = time.monotonic()
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            r = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=timeout)
            return r.returncode, time.monotonic() - t0
        except subprocess.TimeoutExpired:
            return 124, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated mutation ids")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--list", default=os.path.join(HERE, "mutations.txt"))
    args = ap.parse_args()
    muts = parse(args.list)
    if args.only:
        want = set(args.only.split(","))
        unknown = want - {m["id"] for m in muts}
        if unknown:
            raise SystemExit(f"no such mutation: {', '.join(sorted(unknown))}")
        muts = [m for m in muts if m["id"] in want]

    scratch = tempfile.mkdtemp(prefix="fennec-mutate-")
    log = os.path.join(scratch, "mutate.log")
    status = 0
    try:
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                               capture_output=True, check=True).stdout.decode().split("\0")
        tree = os.path.join(scratch, "tree")
        for f in filter(None, files):
            src = os.path.join(ROOT, f)
            if not os.path.isfile(src):
                continue
            dst = os.path.join(tree, f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)
        build = os.path.join(tree, "build", "mutate")
        print(f"mutate: {len(muts)} mutations; scratch {scratch} (log {log})", flush=True)
        rc, dt = run(["cmake", "-S", tree, "-B", build, "-DCMAKE_BUILD_TYPE=Release"], tree, 600,
                     log)
        if rc == 0:
            rc, dt = run(["cmake", "--build", build, "-j", str(args.jobs)], tree, 1800, log)
        if rc != 0:
            print(f"mutate: the unbroken tree does not build (see {log})")
            return 2
        regex = "|".join(sorted({m["tests"] for m in muts}))
        rc, dt = run(["ctest", "-R", regex, "--timeout", "600"], build, 3600, log)
        if rc != 0:
            print(f"mutate: the unbroken tests fail ({regex}); see {log}")
            return 2
        print(f"mutate: unbroken tree builds and its tests pass ({dt:.0f} s)", flush=True)

        survived, stale = [], []
        for m in muts:
            path = os.path.join(tree, m["file"])
            with open(path) as f:
                orig = f.read()
            n = orig.count(m["find"])
            if n != 1:
                stale.append(m["id"])
                print(f"  STALE     {m['id']}: the text is found {n} times in {m['file']}")
                continue
            with open(path, "w") as f:
                f.write(orig.replace(m["find"], m["replace"]))
            try:
                rc, _ = run(["cmake", "--build", build, "-j", str(args.jobs)], tree, 1800, log)
                if rc != 0:
                    verdict = "NOBUILD"
                else:
                    rc, dt = run(["ctest", "-R", m["tests"], "--timeout", "600"], build, 3600, log)
                    verdict = "caught" if rc != 0 else "SURVIVED"
            finally:
                with open(path, "w") as f:
                    f.write(orig)
            if verdict == "SURVIVED":
                survived.append(m["id"])
            if verdict == "NOBUILD":
                stale.append(m["id"])
            print(f"  {verdict:9} {m['id']}: {m['rule']} [{m['tests']}]", flush=True)
        caught = len(muts) - len(survived) - len(stale)
        print(f"mutate: {caught} of {len(muts)} caught, {len(survived)} survived"
              f"{' (' + ', '.join(survived) + ')' if survived else ''}, {len(stale)} stale or "
              f"not building{' (' + ', '.join(stale) + ')' if stale else ''}")
        status = 0 if not survived and not stale else 1
    finally:
        if args.keep:
            print(f"mutate: kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
