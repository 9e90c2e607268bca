#!/usr/bin/env python3
"""N data set pulls in a row on one fresh hub (standard library only): the pull's own time and
memory, without the pipeline runs `bench/datasets.py` does before it. For each pull: seconds
until `ready`, the hub's resident size before it, its peak during it (VmHWM, reset before) and
what it keeps after. Same data and pipeline as bench/datasets.py (run that once first, or let
this make the destination).

  N=3 CARGO_TARGET_DIR=~/.cache/lockstep/bench-target python3 bench/pulls.py
  N=1 MALLOC_ARENA_MAX=1 python3 bench/pulls.py     # the hub inherits the environment
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402
import datasets as ds  # noqa: E402


def main():
    b.ensure_source()
    ds.prepare_destination()
    files_root = os.path.join(b.DATA, "files")
    os.makedirs(files_root, exist_ok=True)
    hub = b.Hub(files_root)
    try:
        hub.src, _ = hub.connection("Source", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": b.SRC_DB, "user": b.PGUSER,
            "tls": "disable"})
        hub.dst, _ = hub.connection("Warehouse", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": ds.DST_DB, "user": b.PGUSER,
            "tls": "disable"})
        upsert = ds.pipeline(hub, "ds-upsert", "upsert")
        api = ds.Api(hub)
        for i in range(int(b.env("N", "3"))):
            ds.reset()
            before = b.proc_status(hub.proc.pid, "VmRSS") / 1024.0
            wall, peak, d = ds.pull(api, hub, upsert)
            after = b.proc_status(hub.proc.pid, "VmRSS") / 1024.0
            print(f"pull {i + 1}: {wall:.2f} s, resident before {before:.0f} MiB, "
                  f"peak {peak:.0f} MiB, after {after:.0f} MiB", flush=True)
            api.call("DELETE", f"/api/v1/datasets/{d['id']}")
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
