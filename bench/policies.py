#!/usr/bin/env python3
"""Data policies at 1,000,000 records (standard library only; `bench/policies.sh` builds the hub
and calls this; figures in BENCHMARKS.md).

Measured in the same run, interleaved so that drift hits both sides alike:

  - `page`: GET /api/v1/datasets/{id}/records?status=create&limit=100&view_as=team:T at random
    offsets of a 1,000,000-record data set (500,000 `create`), PAGES answers per side: with the
    ownership and redaction layers off, then on (a row filter for T that every record passes, so
    pages stay full; `scramble` on `description`, `mask` on `owner`, `partial` on `*number*`).
    Both sides ask "view as" (one audit event per page), so the difference is the policies.
  - `run`: `lockstep pipeline run` of two full-refresh pipelines over the same 1,000,000 rows:
    every column mapped as it is, and the same with `{"redact": "scramble"}` on `description`
    and `{"redact": "mask"}` on `owner` (the redaction transform), RUNS times each.
"""

import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402
import datasets as ds  # noqa: E402

RUNS = int(b.env("RUNS", "3"))
PAGES = int(b.env("PAGES", "40"))
COLUMNS = ds.COLUMNS


def page_times(api, dataset, team, total, seed):
    rng = random.Random(seed)
    times = []
    for _ in range(PAGES):
        offset = rng.randrange(0, max(1, total - 100))
        started = time.perf_counter()
        page = api.call("GET", f"/api/v1/datasets/{dataset}/records?status=create"
                               f"&offset={offset}&limit=100&view_as=team:{team}")
        times.append(time.perf_counter() - started)
        if len(page["records"]) != min(100, total - offset):
            raise RuntimeError(f"a page of {len(page['records'])} records at {offset}")
    return times, page


def set_layers(api, enabled, team, src):
    api.call("PUT", "/api/v1/policies/ownership", {"enabled": enabled, "rules": [
        {"team_id": team, "connection_id": src, "object": "public.parts", "filter": "id > 0"}]})
    api.call("PUT", "/api/v1/policies/redaction", {"enabled": enabled, "rules": [
        {"team_id": team, "field": "description", "kind": "scramble"},
        {"team_id": team, "field": "owner", "kind": "mask"},
        {"team_id": team, "pattern": "*number*", "kind": "partial", "keep": 3}]})


def full_refresh(hub, name, table, redact):
    mappings = []
    for c in COLUMNS:
        m = {"source": c, "destination": c}
        if redact and c == "description":
            m["transform"] = {"redact": "scramble"}
        if redact and c == "owner":
            m["transform"] = {"redact": "mask"}
        mappings.append(m)
    return hub.call("POST", "/api/v1/pipelines", {
        "name": name,
        "source": {"connection_id": hub.src, "object": "public.parts"},
        "destination": {"connection_id": hub.dst, "object": f"public.{table}"},
        "mappings": mappings, "mode": "full_refresh"})["id"]


def main():
    os.makedirs(b.DATA, exist_ok=True)
    os.makedirs(b.RESULTS, exist_ok=True)
    if not os.path.exists(b.LOCKSTEP):
        sys.exit(f"no {b.LOCKSTEP}: build it first (cargo build --release --locked)")
    b.ensure_source()
    ds.prepare_destination()
    files_root = os.path.join(b.DATA, "files")
    os.makedirs(files_root, exist_ok=True)
    b.log(f"machine: {b.machine()}")
    hub = b.Hub(files_root)
    samples = {"page_off": [], "page_on": [], "run_plain": [], "run_redacted": []}
    try:
        hub.src, _ = hub.connection("Source", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": b.SRC_DB, "user": b.PGUSER,
            "tls": "disable"})
        hub.dst, _ = hub.connection("Warehouse", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": ds.DST_DB, "user": b.PGUSER,
            "tls": "disable"})
        upsert = ds.pipeline(hub, "pol-upsert", "upsert")
        full_refresh(hub, "pol-plain", "parts_plain", False)
        full_refresh(hub, "pol-redacted", "parts_redacted", True)
        api = ds.Api(hub)
        team = api.call("POST", "/api/v1/teams", {"name": "bench"})["id"]
        ds.reset()
        wall, _, d = ds.pull(api, hub, upsert)
        b.log(f"pulled {d['counts']} in {wall:.1f} s")
        total = d["counts"]["create"]
        for round_ in range(RUNS):
            b.log(f"round {round_ + 1}/{RUNS}")
            for enabled in (False, True):
                set_layers(api, enabled, team, hub.src)
                b.wait_quiet()
                times, page = page_times(api, d["id"], team, total, round_)
                key = "page_on" if enabled else "page_off"
                samples[key].extend(times)
                owner = page["records"][0]["values"].get("owner")
                if enabled != (owner == "••••"):
                    raise RuntimeError(f"owner shown as {owner!r} with policies {enabled}")
                b.log(f"  page, policies {'on' if enabled else 'off'}: "
                      f"median {statistics.median(times) * 1000:.1f} ms")
            for name in ("pol-plain", "pol-redacted"):
                r = ds.run_pipeline(hub, name)
                samples["run_plain" if name == "pol-plain" else "run_redacted"].append(r["wall"])
                b.log(f"  {name}: {r['wall']:.2f} s ({r['run']} s in the hub)")
        hashed = ds.psql("SELECT count(*) FROM parts_redacted WHERE description LIKE 'scr!_%' "
                         "ESCAPE '!'")[0][0]
        clear = ds.psql("SELECT count(*) FROM parts_redacted p JOIN parts_plain q USING (id) "
                        "WHERE p.description = q.description")[0][0]
        b.log(f"redacted destination: {hashed} hashed descriptions, {clear} in clear")
        if clear != "0":
            raise RuntimeError("a description reached the destination in clear")
    finally:
        hub.stop()
    med = statistics.median
    off, on = med(samples["page_off"]), med(samples["page_on"])
    plain, red = med(samples["run_plain"]), med(samples["run_redacted"])
    lines = [f"Data policies, {b.ROWS:,} records, {RUNS} rounds (median; wall time end to end)", "",
             "| what | without | with | ratio |", "| --- | ---: | ---: | ---: |",
             f"| page of 100 records, view as a team ({len(samples['page_on'])} pages each) | "
             f"{off * 1000:.1f} ms | {on * 1000:.1f} ms | {on / off:.2f}× |",
             f"| full_refresh run, {b.ROWS:,} records (2 of 10 columns redacted) | "
             f"{plain:.2f} s | {red:.2f} s | {red / plain:.2f}× |"]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(b.RESULTS, f"policies-{time.strftime('%Y%m%d-%H%M%S')}.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
