#!/usr/bin/env python3
"""Bills of materials at the API (standard library only; `bench/bom.sh` calls it with API=1, after
starting the Tryton test peer and writing the generated 100,000-line BOM as CSV and XLSX into
BOM_BENCH_DIR). Against a `lockstep serve --dev` started for it, with a pipeline into Tryton:

  - `upload`: POST /api/v1/datasets/upload of each file until the data set is `ready` (read,
    compared with Tryton — which holds none of its parts, so every part is looked up and
    missing — and stored);
  - `tree_first_page`: GET /api/v1/datasets/{id}/tree?depth=1 (the UI's first page: the top
    level and one level below), the median of PAGES answers on one kept-alive connection;
  - `tree_node`: GET …/tree?parent=ROW for random assemblies (expanding one node);
  - `parts`: GET …/parts (the totals of every part rolled up through the tree).
"""

import http.client
import json
import os
import random
import ssl
import statistics
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402

RUNS = int(b.env("RUNS", "3"))
PAGES = int(b.env("PAGES", "30"))
DIR = os.environ["BOM_BENCH_DIR"]


class Api:
    """One kept-alive HTTPS connection to the hub."""

    def __init__(self, hub):
        url = urllib.parse.urlsplit(hub.addr)
        self.conn = http.client.HTTPSConnection(
            url.hostname, url.port, context=ssl.create_default_context(cafile=hub.ca), timeout=600)
        self.token = hub.token

    def call(self, method, path, body=None, raw=None):
        headers = {"authorization": f"Bearer {self.token}"}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        elif raw is not None:
            headers["content-type"] = "application/octet-stream"
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        text = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {text[:300]!r}")
        return json.loads(text) if text else None

    def timed(self, path):
        start = time.perf_counter()
        answer = self.call("GET", path)
        return (time.perf_counter() - start) * 1000.0, answer


def main():
    os.makedirs(b.DATA, exist_ok=True)
    hub = b.Hub(DIR)
    try:
        api = Api(hub)
        erp = api.call("POST", "/api/v1/connections", {
            "name": "erp", "kind": "tryton",
            "config": {"url": os.environ["LOCKSTEP_TEST_TRYTON_URL"],
                       "database": os.environ["LOCKSTEP_TEST_TRYTON_DATABASE"],
                       "user": os.environ["LOCKSTEP_TEST_TRYTON_USER"]},
            "secrets": {"password": os.environ["LOCKSTEP_TEST_TRYTON_PASSWORD"]}})["id"]
        pipeline = api.call("POST", "/api/v1/pipelines", {
            "name": "boms", "source": {"connection_id": erp, "object": "bom"},
            "destination": {"connection_id": erp, "object": "bom"}, "mode": "append"})["id"]
        rows = []
        for name in ["bench_bom.csv", "bench_bom.xlsx"]:
            body = open(os.path.join(DIR, name), "rb").read()
            uploads, firsts, nodes, parts = [], [], [], []
            for _ in range(RUNS):
                start = time.perf_counter()
                ds = api.call("POST", f"/api/v1/datasets/upload?pipeline_id={pipeline}&name={name}",
                              raw=body)
                while ds["state"] == "pulling":
                    time.sleep(0.05)
                    ds = api.call("GET", f"/api/v1/datasets/{ds['id']}")
                uploads.append(time.perf_counter() - start)
                if ds["state"] != "ready":
                    raise RuntimeError(f"the upload ended {ds['state']}: {ds.get('message')}")
                records = ds["counts"]["records"]
                first = None
                for _ in range(PAGES):
                    ms, first = api.timed(f"/api/v1/datasets/{ds['id']}/tree?depth=1")
                    firsts.append(ms)
                assemblies = [n["record"]["row"] for n in first["nodes"] if n["child_count"]]
                for _ in range(PAGES):
                    ms, _answer = api.timed(
                        f"/api/v1/datasets/{ds['id']}/tree?parent={random.choice(assemblies)}")
                    nodes.append(ms)
                ms, _answer = api.timed(f"/api/v1/datasets/{ds['id']}/parts")
                parts.append(ms)
                api.call("DELETE", f"/api/v1/datasets/{ds['id']}")
            rows.append((name, records, min(uploads), statistics.median(uploads),
                         statistics.median(firsts), statistics.median(nodes),
                         statistics.median(parts)))
        print(f"\n{RUNS} uploads per file; tree pages: median of {PAGES} answers per upload\n")
        print("| file | records | upload → ready (min / median) | tree, first page (depth=1) "
              "| tree, one node | parts |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, records, lo, med, first, node, part in rows:
            print(f"| {name} | {records:,} | {lo:.2f} s / {med:.2f} s | {first:.1f} ms "
                  f"| {node:.1f} ms | {part:.0f} ms |")
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
