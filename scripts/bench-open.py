#!/usr/bin/env python3
"""Query commands, two builds run alternately (issue 18: what a query command costs, and
whether its opening grows with the chain).

    scripts/bench-open.py --reps 10 \
        --run main /path/to/old/cointrail DATA_OLD --run new target/release/cointrail DATA_NEW \
        --screen ADDR [--screen ADDR2 ...] [--trace sim-heist-0]

Each repetition runs every command once with each build, in turn (so both see the same
machine load). Per run: wall seconds, CPU seconds (user + system, from wait4), peak RSS
(ru_maxrss) and the peak of RssAnon (private memory) and RssFile (mapped file pages),
sampled from /proc/PID/status every millisecond, and minor page faults. Two builds whose
state files differ in format need their own data directories (`cp -al DATA DATA2 && rm -r
DATA2/state`: the chain is shared, each build keeps its own `state/`). Prints the raw rows
(TSV) and then the medians per build and command. The load average is printed at the start
and the end.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def status_kb(pid, keys):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return out


def run(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    anon = filep = 0
    while True:
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        s = status_kb(p.pid, ("RssAnon", "RssFile"))
        anon = max(anon, s.get("RssAnon", 0))
        filep = max(filep, s.get("RssFile", 0))
        time.sleep(0.001)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    if st != 0:
        sys.exit(f"{' '.join(cmd)} failed: {err}")
    return {
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "maxrss_mb": ru.ru_maxrss / 1024,
        "anon_mb": anon / 1024,
        "file_mb": filep / 1024,
        "minflt": ru.ru_minflt,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--run", nargs=3, action="append", metavar=("LABEL", "BIN", "DATA"), required=True)
    ap.add_argument("--screen", action="append", default=[])
    ap.add_argument("--trace", action="append", default=[])
    a = ap.parse_args()
    cmds = [("screen " + x[:10], ["screen", x]) for x in a.screen]
    cmds += [("trace " + x, ["trace", x]) for x in a.trace]
    print("# load average at start:", open("/proc/loadavg").read().split()[:3])
    cols = ["wall_s", "cpu_s", "maxrss_mb", "anon_mb", "file_mb", "minflt"]
    print("rep\tbuild\tcommand\t" + "\t".join(cols))
    rows = []
    # One warm-up of each (page cache), not counted.
    for label, b, d in a.run:
        for _, c in cmds:
            run([b, "--quiet", "--data-dir", d] + c)
    for r in range(a.reps):
        for name, c in cmds:
            for label, b, d in a.run:
                m = run([b, "--quiet", "--data-dir", d] + c)
                rows.append((label, name, m))
                print(f"{r}\t{label}\t{name}\t" + "\t".join(f"{m[k]:.4f}" if isinstance(m[k], float) else str(m[k]) for k in cols))
    print("# load average at end:", open("/proc/loadavg").read().split()[:3])
    print("\n# medians\nbuild\tcommand\twall ms\tCPU ms\tpeak RSS MB\tpeak anon MB\tpeak file MB\tminor faults")
    for name, _ in cmds:
        for label, _, _ in a.run:
            ms = [m for (l, n, m) in rows if l == label and n == name]
            med = {k: statistics.median(x[k] for x in ms) for k in cols}
            print(f"{label}\t{name}\t{1000 * med['wall_s']:.1f}\t{1000 * med['cpu_s']:.1f}\t"
                  f"{med['maxrss_mb']:.0f}\t{med['anon_mb']:.1f}\t{med['file_mb']:.0f}\t{med['minflt']:.0f}")


if __name__ == "__main__":
    main()
