#!/usr/bin/env python3
"""Do `lockstep worker`s add throughput? (standard library only; issue 19's goal: four
pipelines over four tables finish with two workers in at most 0.65x the time one takes.)

A hub on a PostgreSQL store (`lockstep serve --dev --database … --workers 0`: it executes no
run itself) and W `lockstep worker` processes (each `--workers 1`, unsealed from standard input
with the dev shares) for W in WORKERS (default "1 2"). Four PostgreSQL -> PostgreSQL full
refreshes of four tables of bench/shapes.py (`parts`, `wide`, `orders`, `flags`; 1,000,000 rows
each, made there when missing) are started at once with four `lockstep pipeline run`s; the time
until the last ends is measured. RUNS rounds, the worker counts alternating; the destination is
reset before each round (tables dropped, CHECKPOINT, a quiet machine).

  CARGO_TARGET_DIR=~/.cache/lockstep/bench-target RUNS=3 python3 bench/workers.py
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402
import shapes  # noqa: E402

RUNS = int(b.env("RUNS", "3"))
WORKERS = [int(w) for w in b.env("WORKERS", "1 2").split()]
TABLES = b.env("TABLES", "parts wide orders flags").split()
STORE_DB = b.env("STORE_DB", "lockstep_bench_store")  # dropped and made again
DST_DB = b.env("WK_DST_DB", "lockstep_benchwk_dst")  # reset at will


def start_workers(count, hub, shares):
    workers = []
    for i in range(count):
        log = open(os.path.join(hub.dir, f"worker-{i}.log"), "w")
        proc = subprocess.Popen(
            [b.LOCKSTEP, "worker", "--database", b.pg_url(STORE_DB), "--egress-allow", "loopback",
             "--workers", "1"],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, LOCKSTEP_LOG="warn"))
        proc.stdin.write("".join(f"{s}\n" for s in shares).encode())
        proc.stdin.flush()  # kept open: the worker reads its shares, then nothing more
        workers.append((proc, log))
    time.sleep(3)  # unsealed and polling for runs
    for proc, log in workers:
        if proc.poll() is not None:
            raise RuntimeError(f"a worker exited: see {log.name}")
    return workers


def stop_workers(workers):
    for proc, _ in workers:
        proc.send_signal(signal.SIGTERM)
    for proc, log in workers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def round_(hub):
    b.psql(DST_DB, "".join(f"DROP TABLE IF EXISTS public.{t};" for t in TABLES) + "CHECKPOINT;")
    b.wait_quiet()
    started = time.perf_counter()
    procs = [subprocess.Popen(hub.run_command(f"wk-{t}"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, LOCKSTEP_TOKEN=hub.token)) for t in TABLES]
    ends = []
    for t, p in zip(TABLES, procs):
        out, _ = p.communicate(timeout=b.TIMEOUT)
        ends.append(time.perf_counter() - started)
        run = json.loads(out.strip().splitlines()[-1]) if p.returncode == 0 else {}
        if run.get("state") != "succeeded":
            raise RuntimeError(f"the run of {t} failed: {out[-2000:]}")
    return max(ends)


def main():
    signal.signal(signal.SIGTERM, b.interrupted)
    shapes.SHAPES = TABLES
    shapes.ensure_shapes()
    for db in (STORE_DB, DST_DB):
        b.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        b.psql("postgres", f'CREATE DATABASE "{db}"')
    files_root = os.path.join(b.DATA, "files")
    os.makedirs(files_root, exist_ok=True)
    hub = b.Hub(files_root, ["--database", b.pg_url(STORE_DB), "--workers", "0"])
    samples = {w: [] for w in WORKERS}
    try:
        shares = json.load(open(os.path.join(hub.dir, "data", "dev-unseal-keys.json")))["unseal_keys"]
        src, _ = hub.connection("Shapes", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": shapes.SRC_DB, "user": b.PGUSER,
            "tls": "disable"})
        dst, _ = hub.connection("Warehouse", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": DST_DB, "user": b.PGUSER,
            "tls": "disable"})
        for t in TABLES:
            hub.call("POST", "/api/v1/pipelines", {
                "name": f"wk-{t}", "source": {"connection_id": src, "object": f"public.{t}"},
                "destination": {"connection_id": dst, "object": f"public.{t}"},
                "mode": "full_refresh"})
        for r in range(RUNS):
            order = WORKERS if r % 2 == 0 else list(reversed(WORKERS))
            for count in order:
                workers = start_workers(count, hub, shares)
                try:
                    wall = round_(hub)
                finally:
                    stop_workers(workers)
                samples[count].append(wall)
                b.log(f"round {r + 1}/{RUNS}, {count} worker(s): {wall:.2f} s")
    finally:
        hub.stop()
    base = statistics.median(samples[WORKERS[0]])
    lines = [f"{len(TABLES)} full refreshes started at once ({', '.join(TABLES)}), {RUNS} rounds",
             "", "| workers | median until the last ends | × one worker |", "| ---: | ---: | ---: |"]
    for count in WORKERS:
        m = statistics.median(samples[count])
        lines.append(f"| {count} | {m:.2f} s ({min(samples[count]):.2f}–{max(samples[count]):.2f}) "
                     f"| {m / base:.2f}× |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(b.RESULTS, exist_ok=True)
    with open(os.path.join(b.RESULTS, f"workers-{time.strftime('%Y-%m-%d-%H%M')}.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
