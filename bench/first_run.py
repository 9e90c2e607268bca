#!/usr/bin/env python3
"""First runs of keyed pipelines against a full refresh (standard library only; issue 19's
goal: the first run of an upsert or incremental pipeline into an empty or new destination costs
no more than a full refresh; later runs cost what changed). See bench/README.md.

PostgreSQL → PostgreSQL, the 1,000,000-row `parts` table of bench/run.sh. Measured in the same
run, RUNS rounds, the order rotating from round to round, each `lockstep pipeline run` timed end
to end after the destination table was dropped (untimed, CHECKPOINT after):

  - `full_refresh`: a full-refresh pipeline;
  - `upsert_first`: an upsert pipeline (key `id`) into the missing table;
  - `incremental_first`: an incremental pipeline (cursor `updated_at`, key `id`) into the missing
    table, from no cursor (its stored cursor is cleared by making the pipeline again);
  - `upsert_empty`: the upsert pipeline into an existing, empty table with its key;
  - `incremental_next`: after `incremental_first`, 1% new rows added to a copy of the source,
    then the next incremental run (what changed).
"""

import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402

RUNS = int(b.env("RUNS", "3"))
DST_DB = b.env("FR_DST_DB", "lockstep_benchfr_dst")  # dropped and made at will
SRC_DB = b.env("FR_SRC_DB", "lockstep_benchfr_src")  # a copy of the source that grows by 1%
RULE = "qty >= 0.0"


def dst(sql):
    return b.psql(DST_DB, sql)


def src(sql):
    return b.psql(SRC_DB, sql)


def prepare():
    for db in (DST_DB, SRC_DB):
        if b.psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{db}'")[0][0] == "0":
            b.psql("postgres", f'CREATE DATABASE "{db}"')
    if not b.pg_table_exists(SRC_DB, "parts_base"):
        b.log(f"copying the source into {SRC_DB}.parts_base")
        src(b.source_ddl(renamed=False).replace("CREATE TABLE parts", "CREATE TABLE parts_base"))
        out = subprocess.Popen(b.psql_cmd(b.SRC_DB, "-c", "\\copy parts to stdout (format binary)"),
                               stdout=subprocess.PIPE)
        subprocess.run(b.psql_cmd(SRC_DB, "-c", "\\copy parts_base from stdin (format binary)"),
                       stdin=out.stdout, check=True)
        out.stdout.close()
        out.wait()


def reset_source():
    # An incremental source has an index on its cursor (else every run sorts the table).
    src("CREATE INDEX IF NOT EXISTS parts_base_updated_at ON parts_base (updated_at)")
    src("DROP TABLE IF EXISTS parts; CREATE TABLE parts (LIKE parts_base INCLUDING ALL); "
        "INSERT INTO parts SELECT * FROM parts_base")
    src("VACUUM (ANALYZE) parts")
    src("CHECKPOINT")


def drop_destination(empty_keyed=False):
    dst("DROP TABLE IF EXISTS parts")
    if empty_keyed:
        src_ddl = b.source_ddl(renamed=False)
        dst(src_ddl)
    dst("CHECKPOINT")


def pipeline(hub, name, mode, extra=None):
    spec = {
        "name": name,
        "source": {"connection_id": hub.src, "object": "public.parts"},
        "destination": {"connection_id": hub.dst, "object": "public.parts"},
        "rules": [{"kind": "validation", "expression": RULE, "level": "error",
                   "message": "qty must not be negative"}],
        "mode": mode,
    }
    spec.update(extra or {})
    return hub.call("POST", "/api/v1/pipelines", spec)["id"]


def run(hub, name):
    b.wait_quiet()
    m = b.measure(hub.run_command(name), extra_env={"LOCKSTEP_TOKEN": hub.token})
    if m.returncode != 0:
        raise RuntimeError(f"pipeline run {name} failed: {m.output[-2000:]}")
    r = json.loads(m.output.strip().splitlines()[-1])
    if r.get("state") != "succeeded":
        raise RuntimeError(f"{name}: {r}")
    return {"wall": m.wall, "run": r.get("duration_seconds"), "written": r.get("records_written")}


def main():
    b.ensure_source()
    prepare()
    reset_source()
    drop_destination()
    files_root = os.path.join(b.DATA, "files")
    os.makedirs(files_root, exist_ok=True)
    b.log(f"machine: {b.machine()}")
    hub = b.Hub(files_root)
    samples = {k: [] for k in ["full_refresh", "upsert_first", "incremental_first",
                               "upsert_empty", "incremental_next"]}
    try:
        hub.src, _ = hub.connection("Source", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": SRC_DB, "user": b.PGUSER,
            "tls": "disable"})
        hub.dst, _ = hub.connection("Warehouse", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": DST_DB, "user": b.PGUSER,
            "tls": "disable"})
        pipeline(hub, "fr-full", "full_refresh")
        pipeline(hub, "fr-upsert", "upsert", {"key": ["id"]})
        order = ["full_refresh", "upsert_first", "incremental_first", "upsert_empty"]
        for round_ in range(RUNS):
            b.log(f"round {round_ + 1}/{RUNS}")
            reset_source()
            for case in order[round_ % len(order):] + order[:round_ % len(order)]:
                if case == "full_refresh":
                    drop_destination()
                    r = run(hub, "fr-full")
                elif case == "upsert_first":
                    drop_destination()
                    r = run(hub, "fr-upsert")
                elif case == "upsert_empty":
                    drop_destination(empty_keyed=True)
                    r = run(hub, "fr-upsert")
                else:
                    drop_destination()
                    name = f"fr-incr-{round_}"
                    pipeline(hub, name, "incremental", {"key": ["id"], "cursor": "updated_at"})
                    r = run(hub, name)
                    samples[case].append(r)
                    b.log(f"  {case}: {r['wall']:.2f} s ({r['run']} s in the hub, {r['written']} written)")
                    src("INSERT INTO parts SELECT id + 10000000, part_number, description, qty, "
                        "level, parent_id, updated_at + interval '100 years', active, owner, attrs "
                        "FROM parts_base WHERE id % 100 = 0")
                    src("ANALYZE parts")
                    src("CHECKPOINT")
                    dst("CHECKPOINT")
                    r = run(hub, name)
                    samples["incremental_next"].append(r)
                    b.log(f"  incremental_next: {r['wall']:.2f} s ({r['written']} written)")
                    src("DELETE FROM parts WHERE id > 10000000")
                    continue
                samples[case].append(r)
                b.log(f"  {case}: {r['wall']:.2f} s ({r['run']} s in the hub, {r['written']} written)")
    finally:
        hub.stop()
    med = statistics.median
    full = med([s["wall"] for s in samples["full_refresh"]])
    lines = [f"First runs, PostgreSQL → PostgreSQL, {b.ROWS:,} records, {RUNS} rounds (median, "
             "end to end)", "", "| run | median | × full refresh |", "| --- | ---: | ---: |"]
    for case, runs in samples.items():
        m = med([s["wall"] for s in runs])
        lines.append(f"| {case} | {m:.2f} s | {m / full:.2f}× |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(b.RESULTS, exist_ok=True)
    with open(os.path.join(b.RESULTS, f"first-run-{time.strftime('%Y%m%d-%H%M%S')}.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
