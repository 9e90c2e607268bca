#!/usr/bin/env python3
"""Data sets at 1,000,000 records (standard library only; `bench/datasets.sh` builds the hub and
calls this; see bench/README.md and the figures in BENCHMARKS.md).

The source is `parts.sql`'s 1,000,000-row `parts` table (as for bench/run.sh). The destination,
`DS_DST_DB.parts`, holds half of them (the even ids), a tenth of those changed (`qty + 1` for
ids divisible by 20). Measured in the same run, each RUNS times, the destination reset before
each measurement (copied again from `parts_half`, VACUUM ANALYZE, CHECKPOINT):

  - `refresh_full`: `lockstep pipeline run` of a full_refresh pipeline (1,000,000 records);
  - `refresh_upsert`: `lockstep pipeline run` of the upsert pipeline (1,000,000 records by id);
  - `pull`: a data set of the upsert pipeline, from POST /api/v1/datasets until its state is
    `ready` (1,000,000 records read and compared: 500,000 create, 50,000 update, 450,000
    unchanged), with the hub's peak RSS during it (VmHWM, reset before);
  - `page`: GET /api/v1/datasets/{id}/records?status=update&limit=100 at random offsets, on
    one kept-alive HTTPS connection: the median of PAGES answers (and of status=create);
  - `submit`: a data set pulled with a filter that leaves SUBMIT_ROWS ticked records (90% new,
    10% changed), from POST …/submit until `submitted`;
  - `upsert_same`: `lockstep pipeline run` of an upsert pipeline with the same filter, which
    writes the same records.
"""

import http.client
import json
import os
import random
import ssl
import statistics
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402  (the harness's helpers: psql, Hub, measure, …)

RUNS = int(b.env("RUNS", "3"))
DST_DB = b.env("DS_DST_DB", "lockstep_benchds_dst")  # reset at will: a name nobody else uses
PAGES = int(b.env("PAGES", "50"))
SUBMIT_ROWS = int(b.env("SUBMIT_ROWS", "100000"))
PERF = b.env("PERF", "0") == "1"  # one more pull, under `perf record -g`, after the rounds
RULE = "qty >= 0.0"
COLUMNS = ["id", "part_number", "description", "qty", "level", "parent_id", "updated_at",
           "active", "owner", "attrs"]
# SUBMIT_ROWS ticked records: 90% new (odd ids), 10% changed (ids divisible by 20).
SUBMIT_FILTER = (f"(id % 2 == 1 && id <= {SUBMIT_ROWS * 9 // 5}) || "
                 f"(id % 20 == 0 && id <= {SUBMIT_ROWS * 2})")


def psql(sql):
    return b.psql(DST_DB, sql)


def prepare_destination():
    """`parts_half`: the even ids of the source, a tenth of them changed; kept to reset `parts`."""
    if b.psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{DST_DB}'")[0][0] == "0":
        b.psql("postgres", f'CREATE DATABASE "{DST_DB}"')
    half = b.ROWS // 2
    if b.pg_table_exists(DST_DB, "parts_half") and int(psql("SELECT count(*) FROM parts_half")[0][0]) == half:
        b.log(f"{DST_DB}.parts_half is complete ({half} rows): reused")
        return
    b.log(f"making {DST_DB}.parts_half: the even ids, qty + 1 for ids divisible by 20")
    ddl = b.source_ddl(renamed=False).replace("CREATE TABLE parts", "CREATE TABLE parts_half")
    psql("DROP TABLE IF EXISTS parts_half; " + ddl)
    select = ("SELECT id, part_number, description, CASE WHEN id % 20 = 0 THEN qty + 1 ELSE qty END, "
              "level, parent_id, updated_at, active, owner, attrs FROM parts WHERE id % 2 = 0")
    out = subprocess.Popen(b.psql_cmd(b.SRC_DB, "-c", f"\\copy ({select}) to stdout (format binary)"),
                           stdout=subprocess.PIPE)
    subprocess.run(b.psql_cmd(DST_DB, "-c", "\\copy parts_half from stdin (format binary)"),
                   stdin=out.stdout, check=True)
    out.stdout.close()
    if out.wait() != 0:
        raise RuntimeError("the copy into parts_half failed")
    psql("VACUUM (ANALYZE) parts_half")


def reset():
    """`parts` as `parts_half`, analyzed and checkpointed (untimed)."""
    psql("DROP TABLE IF EXISTS parts; CREATE TABLE parts (LIKE parts_half INCLUDING ALL); "
         "INSERT INTO parts SELECT * FROM parts_half")
    psql("VACUUM (ANALYZE) parts")
    psql("CHECKPOINT")


class Api:
    """One kept-alive HTTPS connection to the hub."""

    def __init__(self, hub):
        url = urllib.parse.urlsplit(hub.addr)
        self.conn = http.client.HTTPSConnection(
            url.hostname, url.port, context=ssl.create_default_context(cafile=hub.ca), timeout=300)
        self.token = hub.token

    def call(self, method, path, body=None):
        headers = {"authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        text = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {text[:500]!r}")
        return json.loads(text) if text else None

    def wait(self, dataset, busy):
        """Polls the data set every 0.1 s while its state is `busy`; answers it."""
        while True:
            d = self.call("GET", f"/api/v1/datasets/{dataset}")
            if d["state"] != busy:
                return d
            time.sleep(0.1)


def pipeline(hub, name, mode, filter_=None):
    spec = {
        "name": name,
        "source": {"connection_id": hub.src, "object": "public.parts"},
        "destination": {"connection_id": hub.dst, "object": "public.parts"},
        "rules": [{"kind": "validation", "expression": RULE, "level": "error",
                   "message": "qty must not be negative"}],
        "mode": mode,
    }
    if mode == "upsert":
        spec["key"] = ["id"]
    if filter_:
        spec["filter"] = filter_
    return hub.call("POST", "/api/v1/pipelines", spec)["id"]


def run_pipeline(hub, name):
    """`lockstep pipeline run NAME` timed end to end; answers (wall, the hub's run seconds)."""
    b.wait_quiet()
    m = b.measure(hub.run_command(name), extra_env={"LOCKSTEP_TOKEN": hub.token})
    if m.returncode != 0:
        raise RuntimeError(f"pipeline run {name} failed: {m.output[-2000:]}")
    run = json.loads(m.output.strip().splitlines()[-1])
    return {"wall": m.wall, "run": run.get("duration_seconds"), "written": run.get("records_written")}


def pull(api, hub, pipeline_id, filter_=None, perf=None):
    """A data set pulled through the pipeline: (seconds until ready, hub peak MiB, data set).
    With `perf` (a file name), `perf record -g` of the hub during the pull (slows it)."""
    b.wait_quiet()
    hub.reset_peak()
    recorder = None
    if perf:
        recorder = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(hub.proc.pid),
                                     "-o", perf], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        time.sleep(1)
    body = {"pipeline_id": pipeline_id}
    if filter_:
        body["filter"] = filter_
    started = time.perf_counter()
    d = api.call("POST", "/api/v1/datasets", body)
    d = api.wait(d["id"], "pulling")
    wall = time.perf_counter() - started
    if recorder:
        recorder.send_signal(2)
        recorder.wait()
    if d["state"] != "ready":
        raise RuntimeError(f"the pull ended {d['state']}: {d.get('message')}")
    return wall, hub.peak_mib(), d


def pages(api, dataset, status, total):
    """Answer times of PAGES pages of 100 records of `status`, at random offsets."""
    rng = random.Random(1)
    times = []
    for _ in range(PAGES):
        offset = rng.randrange(0, max(1, total - 100))
        started = time.perf_counter()
        page = api.call("GET", f"/api/v1/datasets/{dataset}/records?status={status}"
                               f"&offset={offset}&limit=100")
        times.append(time.perf_counter() - started)
        if len(page["records"]) != min(100, total - offset):
            raise RuntimeError(f"a page of {len(page['records'])} records at {offset}")
    return times


def main():
    os.makedirs(b.DATA, exist_ok=True)
    os.makedirs(b.RESULTS, exist_ok=True)
    if not os.path.exists(b.LOCKSTEP):
        sys.exit(f"no {b.LOCKSTEP}: build it first (cargo build --release --locked)")
    if SUBMIT_ROWS * 2 > b.ROWS:
        sys.exit("SUBMIT_ROWS must be at most half of ROWS")
    b.ensure_source()
    prepare_destination()
    files_root = os.path.join(b.DATA, "files")
    os.makedirs(files_root, exist_ok=True)
    info = b.machine()
    b.log(f"machine: {info}")
    hub = b.Hub(files_root)
    samples = {k: [] for k in ["refresh_full", "refresh_upsert", "pull", "pull_peak_mib",
                               "page_update", "page_create", "submit_pull", "submit",
                               "upsert_same"]}
    counts = {}
    try:
        hub.src, _ = hub.connection("Source", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": b.SRC_DB, "user": b.PGUSER,
            "tls": "disable"})
        hub.dst, _ = hub.connection("Warehouse", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": DST_DB, "user": b.PGUSER,
            "tls": "disable"})
        pipeline(hub, "ds-full", "full_refresh")
        upsert = pipeline(hub, "ds-upsert", "upsert")
        pipeline(hub, "ds-upsert-same", "upsert", SUBMIT_FILTER)
        api = Api(hub)
        for round_ in range(RUNS):
            b.log(f"round {round_ + 1}/{RUNS}")
            reset()
            r = run_pipeline(hub, "ds-full")
            samples["refresh_full"].append(r)
            b.log(f"  full_refresh run: {r['wall']:.2f} s ({r['run']} s in the hub)")
            reset()
            r = run_pipeline(hub, "ds-upsert")
            samples["refresh_upsert"].append(r)
            b.log(f"  upsert run of everything: {r['wall']:.2f} s ({r['run']} s in the hub)")

            reset()
            wall, peak, d = pull(api, hub, upsert)
            samples["pull"].append(wall)
            samples["pull_peak_mib"].append(peak)
            counts["pull"] = d["counts"]
            b.log(f"  pull: {wall:.2f} s, hub peak {peak:.0f} MiB, counts {d['counts']}")
            c = d["counts"]
            samples["page_update"].extend(pages(api, d["id"], "update", c["update"]))
            samples["page_create"].extend(pages(api, d["id"], "create", c["create"]))
            b.log(f"  pages: update median {statistics.median(samples['page_update']) * 1000:.1f} ms")
            api.call("DELETE", f"/api/v1/datasets/{d['id']}")

            reset()
            wall, _, d = pull(api, hub, upsert, SUBMIT_FILTER)
            samples["submit_pull"].append(wall)
            counts["submit_pull"] = d["counts"]
            if d["counts"]["ticked"] != SUBMIT_ROWS:
                raise RuntimeError(f"{d['counts']['ticked']} ticked records, not {SUBMIT_ROWS}")
            b.wait_quiet()
            started = time.perf_counter()
            api.call("POST", f"/api/v1/datasets/{d['id']}/submit", {})
            done = api.wait(d["id"], "submitting")
            wall = time.perf_counter() - started
            if done["state"] != "submitted":
                raise RuntimeError(f"the submit ended {done['state']}: {done.get('message')}")
            samples["submit"].append(wall)
            count = int(psql("SELECT count(*) FROM parts")[0][0])
            b.log(f"  submit of {SUBMIT_ROWS}: {wall:.2f} s (destination now {count} rows)")
            api.call("DELETE", f"/api/v1/datasets/{d['id']}")

            reset()
            r = run_pipeline(hub, "ds-upsert-same")
            samples["upsert_same"].append(r)
            b.log(f"  upsert run of the same {r['written']}: {r['wall']:.2f} s")
        if PERF:
            reset()
            perf = os.path.join(b.RESULTS, f"datasets-pull-{time.strftime('%Y%m%d-%H%M%S')}.perf.data")
            wall, _, d = pull(api, hub, upsert, perf=perf)
            b.log(f"pull under perf: {wall:.2f} s, profile in {perf}")
            api.call("DELETE", f"/api/v1/datasets/{d['id']}")
    finally:
        hub.stop()

    med = statistics.median
    full = med([s["wall"] for s in samples["refresh_full"]])
    ups = med([s["wall"] for s in samples["refresh_upsert"]])
    pull_s = med(samples["pull"])
    rows = [
        (f"full_refresh pipeline run, {b.ROWS:,} records (`lockstep pipeline run`)", full,
         f"run {med([s['run'] for s in samples['refresh_full']]):.2f} s in the hub"),
        (f"upsert pipeline run, {b.ROWS:,} records by id", ups,
         f"run {med([s['run'] for s in samples['refresh_upsert']]):.2f} s in the hub"),
        (f"data set pull + compare, {b.ROWS:,} records, until `ready`", pull_s,
         f"{pull_s / ups:.2f}× the upsert run, {pull_s / full:.2f}× the full refresh; hub peak "
         f"{med(samples['pull_peak_mib']):.0f} MiB"),
        (f"page of 100 `update` records (median of {len(samples['page_update'])})",
         med(samples["page_update"]),
         f"p90 {statistics.quantiles(samples['page_update'], n=10)[-1] * 1000:.1f} ms"),
        (f"page of 100 `create` records (median of {len(samples['page_create'])})",
         med(samples["page_create"]),
         f"p90 {statistics.quantiles(samples['page_create'], n=10)[-1] * 1000:.1f} ms"),
        (f"submit of {SUBMIT_ROWS:,} ticked records (90% new, 10% changed)",
         med(samples["submit"]), f"its pull (filtered): {med(samples['submit_pull']):.2f} s"),
        (f"upsert pipeline run of the same {SUBMIT_ROWS:,} records",
         med([s["wall"] for s in samples["upsert_same"]]),
         f"run {med([s['run'] for s in samples['upsert_same']]):.2f} s in the hub"),
    ]
    lines = [f"Data sets, {b.ROWS:,} records, {RUNS} rounds (median; wall time end to end)", "",
             "| what | median | |", "| --- | ---: | --- |"]
    for what, seconds, note in rows:
        shown = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
        lines.append(f"| {what} | {shown} | {note} |")
    text = "\n".join(lines) + "\n"
    print(text)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(b.RESULTS, f"datasets-{stamp}.md"), "w") as f:
        f.write(text)
    with open(os.path.join(b.RESULTS, f"datasets-{stamp}.json"), "w") as f:
        json.dump({"machine": info, "rows": b.ROWS, "submit_rows": SUBMIT_ROWS,
                   "submit_filter": SUBMIT_FILTER, "samples": samples, "counts": counts}, f,
                  indent=1)


if __name__ == "__main__":
    main()
