#!/usr/bin/env python3
"""N runs of one pipeline in a row on one fresh hub (standard library only; issue 19's goal:
the hub's resident memory after 100 PostgreSQL -> MariaDB runs is within 10% of after 10).

The pipeline of bench/run.sh's `pg_mariadb` case (the 1,000,000-row `parts`, every column, two
renames, one rule, full refresh) by default; CASE=pg_pg for PostgreSQL -> PostgreSQL. The
destination table is dropped before each run (untimed). After each run: its wall time, the
hub's resident size (VmRSS) and its peak during the run (VmHWM, reset before). Prints the
resident size after runs 1, 10, 50 and N, and writes every sample to
bench/results/repeat-<case>-<date>.json.

  N=100 CARGO_TARGET_DIR=~/.cache/lockstep/bench-target python3 bench/repeat.py

HEAPTRACK=1 attaches heaptrack to the hub after its setup (see bench/README.md).
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402

N = int(b.env("N", "100"))
CASE = b.env("CASE", "pg_mariadb")
# 1: heaptrack attaches to the hub once it is set up and writes heaptrack.lockstep.PID.zst into
# the working directory (a hub built with `--features system-allocator`: heaptrack sees malloc,
# not jemalloc).
HEAPTRACK = b.env("HEAPTRACK", "0") == "1"


def main():
    b.ensure_source()
    b.CASES = [CASE]
    b.ensure_destinations()
    files_root = os.path.join(b.DATA, "files")
    os.makedirs(files_root, exist_ok=True)
    hub = b.Hub(files_root)
    samples = []
    heaptrack = None
    try:
        src, _ = hub.connection("Source", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": b.SRC_DB, "user": b.PGUSER,
            "tls": "disable"})
        if CASE == "pg_mariadb":
            dst, _ = hub.connection("Shop", "mysql", {
                "host": b.MYSQL_HOST, "port": b.MYSQL_PORT, "database": b.DST_DB,
                "user": b.MYSQL_USER, "tls": "disable"},
                {"password": b.MYSQL_PASSWORD} if b.MYSQL_PASSWORD else {})
            target = "parts"
        else:
            dst, _ = hub.connection("Warehouse", "postgres", {
                "host": b.PGHOST, "port": b.PGPORT, "database": b.DST_DB, "user": b.PGUSER,
                "tls": "disable"})
            target = "public.parts"
        columns = [c[0] for c in b.pg_columns(b.SRC_DB)]
        hub.pipeline("repeat", src, "public.parts", dst, target, columns)
        heaptrack = None
        if HEAPTRACK:
            heaptrack = subprocess.Popen(["heaptrack", "-p", str(hub.proc.pid)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            time.sleep(5)
        start = b.proc_status(hub.proc.pid, "VmRSS") / 1024.0
        print(f"resident after setup: {start:.1f} MiB", flush=True)
        for i in range(N):
            if CASE == "pg_mariadb":
                b.reset_mariadb_destination()
            else:
                b.reset_pg_destination()
            hub.reset_peak()
            m = b.measure(hub.run_command("repeat"), {"LOCKSTEP_TOKEN": hub.token})
            run = json.loads(m.output.strip().splitlines()[-1]) if m.returncode == 0 else {}
            if run.get("state") != "succeeded":
                raise RuntimeError(f"run {i + 1} failed: {m.output[-2000:]}")
            s = {"run": i + 1, "wall": m.wall, "written": run.get("records_written"),
                 "peak_mib": hub.peak_mib(),
                 "rss_mib": b.proc_status(hub.proc.pid, "VmRSS") / 1024.0}
            samples.append(s)
            print(f"run {s['run']}: {s['wall']:.2f} s, peak {s['peak_mib']:.1f} MiB, "
                  f"resident after {s['rss_mib']:.1f} MiB", flush=True)
    finally:
        hub.stop()
        if heaptrack:
            heaptrack.wait(timeout=300)
    at = {n: samples[n - 1]["rss_mib"] for n in (1, 10, 50, N) if n <= len(samples)}
    print("resident after run " + ", ".join(f"{n}: {v:.1f} MiB" for n, v in at.items()))
    if 10 in at and N in at:
        print(f"after {N} / after 10: {at[N] / at[10]:.3f}")
    os.makedirs(b.RESULTS, exist_ok=True)
    path = os.path.join(b.RESULTS, f"repeat-{CASE}-{time.strftime('%Y-%m-%d-%H%M')}.json")
    with open(path, "w") as f:
        json.dump({"machine": b.machine(), "case": CASE, "samples": samples}, f, indent=1)


if __name__ == "__main__":
    main()
