#!/usr/bin/env python3
"""Full refreshes on several table shapes against the bare pipes (standard library only; issue
19). See bench/README.md.

Shapes (made once in SHAPES_DB with generate_series, SHAPE_ROWS rows each, key `id`):

  - `parts`: the 1,000,000-row table of bench/run.sh (copied from its source database);
  - `wide`: 40 nullable columns (int, short text, numeric(12,2), timestamptz, boolean), a
    third to a half of each column NULL;
  - `orders`: unicode text, numeric(14,2), timestamptz, a small jsonb array, a nullable note;
  - `docs`: long text (about 900 characters) and a large jsonb object (about 1 KiB) per row;
  - `flags`: many small columns: 20 smallint, 10 integer, 20 boolean, all NOT NULL.

For each shape, RUNS rounds in a rotating order, each run timed end to end after its destination
was reset (table dropped or made empty, CHECKPOINT, a quiet machine):

  PostgreSQL -> PostgreSQL
  - `pipe_nokey` (the yardstick of issue 19): `psql \\copy (select …) to stdout (format binary)
    | psql \\copy t from stdin (format binary)` into the table made beforehand without its key;
  - `pipe`: the same into the table made beforehand with its key;
  - `lockstep`: `lockstep pipeline run` of a full refresh (every column, no rule), which makes
    the table with its types, NOT NULLs and key.
  PostgreSQL -> MariaDB
  - `load_data`: `psql \\copy (select …) to stdout` (text format; timestamps in UTC, booleans as
    0/1) | `mariadb -e "LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE t"`, into the table the
    hub makes (taken with SHOW CREATE TABLE after a warm-up run), so both do the same work;
  - `lockstep`: a full refresh into MariaDB.

Fidelity (untimed, last round): PostgreSQL: column types, NOT NULLs, key, and a checksum of every
row's text; MariaDB: per column, the count of values and an aggregate that does not depend on
how each database prints values (sums of numbers and epochs, md5 of text, JSON member counts).
"""

import decimal
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402

RUNS = int(b.env("RUNS", "3"))
ROWS = int(b.env("SHAPE_ROWS", "1000000"))
SHAPES = b.env("SHAPES", "parts wide orders docs flags").split()
CASES = b.env("SHAPE_CASES", "pg_pg pg_mariadb").split()
PERF = b.env("PERF", "0") == "1"  # record a perf profile of the hub during each Lockstep run
SRC_DB = b.env("SHAPES_DB", "lockstep_bench_shapes" if ROWS == 1_000_000
               else f"lockstep_bench_shapes_{ROWS}")
DST_DB = b.env("SHAPES_DST_DB", "lockstep_benchshape_dst")  # reset at will


def src(sql):
    return b.psql(SRC_DB, sql)


def dst(sql):
    return b.psql(DST_DB, sql)


def my(sql, db=DST_DB):
    return b.mysql(db, sql)


# --- the shapes ---------------------------------------------------------------------------------


def wide_sql():
    cols = ["i::bigint AS id"]
    for k in range(1, 11):
        cols.append(f"CASE WHEN (i + {k}) % 3 = 0 THEN NULL ELSE ((i * {k}) % 1000003)::int END AS n{k}")
        cols.append(f"CASE WHEN (i + {k}) % 4 = 0 THEN NULL ELSE 'v' || ((i * {k}) % 99991)::text END AS t{k}")
        cols.append(f"CASE WHEN (i + {k}) % 5 = 0 THEN NULL ELSE (((i * {k}) % 10000000) / 100.0)::numeric(12,2) END AS d{k}")
    for k in range(1, 6):
        cols.append(f"CASE WHEN (i + {k}) % 2 = 0 THEN NULL ELSE timestamptz '2020-01-01 00:00:00+00' "
                    f"+ ((i * {k}) % 300000000) * interval '1 second' + (i % 1000) * interval '1 microsecond' END AS ts{k}")
        cols.append(f"CASE WHEN (i + {k}) % 3 = 1 THEN NULL ELSE (i * {k}) % 2 = 0 END AS b{k}")
    return f"CREATE TABLE wide AS SELECT {', '.join(cols)} FROM generate_series(1::bigint, {ROWS}) AS i"


def orders_sql():
    return f"""CREATE TABLE orders AS SELECT
        i::bigint AS id,
        'Kundin Müller-Łukasiewicz ' || (i % 50000) || ' – 東京 ✓' AS customer,
        'buyer' || (i % 70000) || '@example.com' AS email,
        ((i * 7919) % 100000000 / 100.0)::numeric(14,2) AS amount,
        (ARRAY['EUR', 'USD', 'JPY', 'CHF'])[1 + i % 4] AS currency,
        timestamptz '2021-01-01 00:00:00+00' + (i * 37) * interval '1 second' AS placed_at,
        jsonb_build_array(
            jsonb_build_object('sku', 'SKU-' || (i % 9973), 'qty', 1 + i % 5, 'price', ((i % 997) / 10.0)),
            jsonb_build_object('sku', 'SKU-' || (i % 7919), 'qty', 1 + i % 3, 'note', 'Größe ' || (i % 40))
        ) AS items,
        CASE WHEN i % 3 = 0 THEN NULL ELSE 'Bitte vor 10 Uhr liefern – 请在十点前送达 #' || i END AS note,
        (ARRAY['open', 'paid', 'shipped', 'returned'])[1 + i % 4] AS status
        FROM generate_series(1::bigint, {ROWS}) AS i"""


def docs_sql():
    return f"""CREATE TABLE docs AS SELECT
        i::bigint AS id,
        'Document ' || i || ': ' || md5(i::text) AS title,
        repeat(md5(i::text) || ' lorem ipsum dolor – ', 18) || i AS body,
        jsonb_build_object(
            'id', i, 'title', 'Dokument Nr. ' || i, 'hash', md5((i * 3)::text),
            'tags', jsonb_build_array('a' || (i % 17), 'b' || (i % 31), 'c' || (i % 101)),
            'author', jsonb_build_object('name', 'Zoë ' || (i % 1000), 'email', 'z' || (i % 1000) || '@example.com'),
            'sections', (SELECT jsonb_agg(jsonb_build_object('n', s, 'heading', 'Abschnitt ' || s,
                                                             'text', md5((i + s)::text) || md5((i - s)::text)))
                         FROM generate_series(1, 8) AS s),
            'score', (i % 1000) / 7.0, 'draft', i % 2 = 0, 'parent', CASE WHEN i % 5 = 0 THEN NULL ELSE i - 1 END
        ) AS doc,
        timestamptz '2019-06-01 00:00:00+00' + i * interval '1 minute' AS created_at
        FROM generate_series(1::bigint, {ROWS}) AS i"""


def flags_sql():
    cols = ["i::bigint AS id"]
    for k in range(1, 21):
        cols.append(f"((i * {k}) % 200 - 100)::smallint AS s{k}")
    for k in range(1, 11):
        cols.append(f"((i * {k * 7}) % 2000000)::int AS n{k}")
    for k in range(1, 21):
        cols.append(f"((i >> {k % 16}) & 1) = 1 AS f{k}")
    return f"CREATE TABLE flags AS SELECT {', '.join(cols)} FROM generate_series(1::bigint, {ROWS}) AS i"


MAKERS = {"wide": wide_sql, "orders": orders_sql, "docs": docs_sql, "flags": flags_sql}
NOT_NULL = {
    "orders": ["customer", "email", "amount", "currency", "placed_at", "items", "status"],
    "docs": ["title", "body", "doc", "created_at"],
    "flags": [f"s{k}" for k in range(1, 21)] + [f"n{k}" for k in range(1, 11)]
             + [f"f{k}" for k in range(1, 21)],
}


def ensure_shapes():
    if b.psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{SRC_DB}'")[0][0] == "0":
        b.psql("postgres", f'CREATE DATABASE "{SRC_DB}"')
    for shape in SHAPES:
        if b.pg_table_exists(SRC_DB, shape) and b.pg_primary_key(SRC_DB, shape) == ["id"] and \
                int(src(f"SELECT count(*) FROM {shape}")[0][0]) == ROWS:
            continue
        b.log(f"making {SRC_DB}.{shape} ({ROWS} rows)")
        src(f"DROP TABLE IF EXISTS {shape}")
        if shape == "parts":
            if ROWS != b.ROWS:
                sys.exit("parts comes from bench/run.sh's source: SHAPE_ROWS must equal ROWS")
            b.ensure_source()
            src(b.source_ddl(renamed=False))
            out = subprocess.Popen(b.psql_cmd(b.SRC_DB, "-c", "\\copy parts to stdout (format binary)"),
                                     stdout=subprocess.PIPE)
            subprocess.run(b.psql_cmd(SRC_DB, "-c", "\\copy parts from stdin (format binary)"),
                             stdin=out.stdout, check=True)
            out.stdout.close()
            out.wait()
        else:
            src(MAKERS[shape]())
            alter = [f"ALTER COLUMN {c} SET NOT NULL" for c in ["id", *NOT_NULL.get(shape, [])]]
            src(f"ALTER TABLE {shape} {', '.join(alter)}, ADD PRIMARY KEY (id)")
        src(f"VACUUM (ANALYZE, FREEZE) {shape}")
    src("CHECKPOINT")


def ddl(shape, key=True):
    """The source's CREATE TABLE (types and NOT NULLs), with or without its key."""
    cols = [f'"{n}" {t}{" NOT NULL" if nn else ""}' for n, t, nn in b.pg_columns(SRC_DB, shape)]
    if key:
        cols.append("PRIMARY KEY (id)")
    return f"CREATE TABLE public.{shape} ({', '.join(cols)})"


# --- the commands -------------------------------------------------------------------------------


def pg_pipe(shape):
    out = shlex.join(b.psql_cmd(SRC_DB, "-c", f"\\copy (select * from {shape}) to stdout (format binary)"))
    into = shlex.join(b.psql_cmd(DST_DB, "-c", f"\\copy {shape} from stdin (format binary)"))
    return f"{out} | {into}"


def mariadb_select(shape):
    exprs = []
    for name, typ, _ in b.pg_columns(SRC_DB, shape):
        if typ == "timestamp with time zone":
            exprs.append(f'"{name}" at time zone \'UTC\'')
        elif typ == "boolean":
            exprs.append(f'"{name}"::int')
        else:
            exprs.append(f'"{name}"')
    return f"select {', '.join(exprs)} from {shape}"


def mariadb_pipe(shape):
    out = shlex.join(b.psql_cmd(SRC_DB, "-c", f"\\copy ({mariadb_select(shape)}) to stdout"))
    into = shlex.join(b.mysql_cmd(DST_DB, "--local-infile=1", "-e",
                                    f"LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE `{shape}`"))
    return f"{out} | {into}"


# --- fidelity -----------------------------------------------------------------------------------


def pg_fidelity(shape, columns, key, checksum):
    notes = []
    if not b.pg_table_exists(DST_DB, shape):
        return ["no table"]
    got = b.pg_columns(DST_DB, shape)
    if got != columns:
        notes.append(f"columns differ: {[g for g in got if g not in columns]}")
    if b.pg_primary_key(DST_DB, shape) != key:
        notes.append("key differs")
    if checksum is not None:
        names = [c[0] for c in columns]
        if b.pg_checksum(DST_DB, names, shape) != checksum:
            notes.append("content differs")
    else:
        count = int(dst(f"SELECT count(*) FROM {shape}")[0][0])
        if count != ROWS:
            notes.append(f"{count} rows")
    return notes


def probe_exprs(columns, mariadb):
    """Aggregates that both databases compute alike, as (the column each is of, the expression)."""
    out = [("count", "count(*)")]
    for name, typ, _ in columns:
        q = f"`{name}`" if mariadb else f'"{name}"'
        exprs = [f"count({q})"]
        if typ in ("bigint", "integer", "smallint") or typ.startswith("numeric"):
            exprs.append(f"sum({q})")
        elif typ == "boolean":
            exprs.append(f"sum({q})" if mariadb else f"sum({q}::int)")
        elif typ == "timestamp with time zone":
            exprs.append(f"sum(floor(unix_timestamp({q})))" if mariadb
                         else f"sum(floor(extract(epoch from {q}))::bigint)")
            exprs.append(f"sum(microsecond({q}))" if mariadb
                         else f"sum((extract(microseconds from {q})::bigint % 1000000))")
        elif typ == "jsonb":  # the count of members (MariaDB holds the text)
            exprs.append(f"sum(json_length({q}))" if mariadb else
                         f"sum(CASE jsonb_typeof({q}) WHEN 'object' THEN (SELECT count(*) FROM "
                         f"jsonb_object_keys({q})) WHEN 'array' THEN jsonb_array_length({q}) ELSE 1 END)")
        else:  # text: its length in characters and a hash of its UTF-8 bytes
            exprs.append(f"sum(char_length({q}))")
            exprs.append(f"sum(conv(substr(md5({q}), 1, 8), 16, 10))" if mariadb
                         else f"sum(('x' || substr(md5({q}), 1, 8))::bit(32)::bigint)")
        out.extend((name, e) for e in exprs)
    return out


def normal(values):
    out = []
    for v in values:
        try:
            out.append(decimal.Decimal(v).normalize())
        except decimal.InvalidOperation:
            out.append(v)
    return out


def mariadb_fidelity(shape, columns, expected):
    if not my(f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{DST_DB}' "
              f"AND table_name = '{shape}'")[0][0] == "1":
        return ["no table"]
    notes = []
    got_cols = my(f"SELECT column_name, is_nullable, column_key FROM information_schema.columns "
                  f"WHERE table_schema = '{DST_DB}' AND table_name = '{shape}' ORDER BY ordinal_position")
    if [c[0] for c in got_cols] != [c[0] for c in columns]:
        notes.append("columns differ")
    for (name, nullable, _), (_, _, notnull) in zip(got_cols, columns):
        if notnull != (nullable == "NO"):
            notes.append(f"{name} NOT NULL differs")
    if [c[0] for c in got_cols if c[2] == "PRI"] != ["id"]:
        notes.append("key differs")
    if expected is not None:
        pairs = probe_exprs(columns, True)
        got = normal(my("SET time_zone = '+00:00'; SELECT "
                        + ", ".join(e for _, e in pairs) + f" FROM `{shape}`")[0])
        differing = sorted({c for (c, _), g, e in zip(pairs, got, expected) if g != e})
        if differing:
            notes.append(f"content differs in {', '.join(differing)}")
    else:
        count = int(my(f"SELECT count(*) FROM `{shape}`")[0][0])
        if count != ROWS:
            notes.append(f"{count} rows")
    return notes


# --- the benchmark ------------------------------------------------------------------------------


def reset(case, shape, tool, mariadb_ddl):
    if case == "pg_pg":
        dst(f"DROP TABLE IF EXISTS public.{shape}")
        if tool != "lockstep":
            dst(ddl(shape, key=tool == "pipe"))
        dst("CHECKPOINT")
    else:
        my(f"DROP TABLE IF EXISTS `{shape}`")
        if tool != "lockstep":
            my(mariadb_ddl)
        my("FLUSH TABLES", None)


def run_tool(case, shape, tool, hub):
    b.wait_quiet()
    sample = {}
    if tool == "lockstep":
        hub.reset_peak()
        cpu_before = b.proc_cpu(hub.proc.pid)
        perf = None
        if PERF:
            profile = os.path.join(b.RESULTS, f"perf-shape-{case}-{shape}-{time.strftime('%H%M%S')}.data")
            perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(hub.proc.pid),
                                     "-o", profile], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(1)
        m = b.measure(hub.run_command(f"shape-{case}-{shape}"), {"LOCKSTEP_TOKEN": hub.token})
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
            sample["perf"] = profile
        sample["hub_cpu"] = b.proc_cpu(hub.proc.pid) - cpu_before
        sample["peak_mib"] = hub.peak_mib()
        sample["rss_after_mib"] = b.proc_status(hub.proc.pid, "VmRSS") / 1024.0
        if m.returncode == 0:
            r = json.loads(m.output.strip().splitlines()[-1])
            sample["written"] = r.get("records_written")
            sample["state"] = r.get("state")
            if r.get("state") != "succeeded":
                m.returncode = 1
    else:
        m = b.measure(pg_pipe(shape) if case == "pg_pg" else mariadb_pipe(shape), shell=True)
        sample["peak_mib"] = m.maxrss_mib
    sample["wall"] = m.wall
    sample["cpu"] = m.cpu
    if m.returncode != 0:
        raise RuntimeError(f"{case} {shape} {tool} failed: {m.output[-2000:]}")
    return sample


def main():
    signal.signal(signal.SIGTERM, b.interrupted)
    os.makedirs(b.DATA, exist_ok=True)
    os.makedirs(b.RESULTS, exist_ok=True)
    ensure_shapes()
    if b.psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{DST_DB}'")[0][0] == "0":
        b.psql("postgres", f'CREATE DATABASE "{DST_DB}"')
    if "pg_mariadb" in CASES:
        b.mysql(None, f"CREATE DATABASE IF NOT EXISTS `{DST_DB}` CHARACTER SET utf8mb4")
    info = b.machine()
    b.log(f"machine: {info}")
    files_root = os.path.join(b.DATA, "files")
    os.makedirs(files_root, exist_ok=True)
    hub = b.Hub(files_root)
    results = {"machine": info, "rows": ROWS, "shapes": {}}
    try:
        source, _ = hub.connection("Shapes", "postgres", {
            "host": b.PGHOST, "port": b.PGPORT, "database": SRC_DB, "user": b.PGUSER,
            "tls": "disable"})
        targets = {}
        if "pg_pg" in CASES:
            targets["pg_pg"], _ = hub.connection("Warehouse", "postgres", {
                "host": b.PGHOST, "port": b.PGPORT, "database": DST_DB, "user": b.PGUSER,
                "tls": "disable"})
        if "pg_mariadb" in CASES:
            targets["pg_mariadb"], _ = hub.connection("Shop", "mysql", {
                "host": b.MYSQL_HOST, "port": b.MYSQL_PORT, "database": DST_DB,
                "user": b.MYSQL_USER, "tls": "disable"},
                {"password": b.MYSQL_PASSWORD} if b.MYSQL_PASSWORD else {})
        for shape in SHAPES:
            columns = b.pg_columns(SRC_DB, shape)
            key = b.pg_primary_key(SRC_DB, shape)
            checksum = b.pg_checksum(SRC_DB, [c[0] for c in columns], shape)
            probe = normal(src("SELECT " + ", ".join(e for _, e in probe_exprs(columns, False))
                               + f" FROM {shape}")[0])
            size = src(f"SELECT pg_size_pretty(pg_total_relation_size('{shape}'))")[0][0]
            results["shapes"][shape] = {"size": size, "columns": len(columns), "cases": {}}
            for case in CASES:
                hub.call("POST", "/api/v1/pipelines", {
                    "name": f"shape-{case}-{shape}",
                    "source": {"connection_id": source, "object": f"public.{shape}"},
                    "destination": {"connection_id": targets[case],
                                    "object": f"public.{shape}" if case == "pg_pg" else shape},
                    "mode": "full_refresh"})
                mariadb_ddl = None
                if case == "pg_mariadb":  # the pipe loads into the table the hub makes
                    reset(case, shape, "lockstep", None)
                    run_tool(case, shape, "lockstep", hub)
                    mariadb_ddl = my(f"SHOW CREATE TABLE `{shape}`")[0][1].replace("\\n", "\n")
                tools = ["pipe_nokey", "pipe", "lockstep"] if case == "pg_pg" else ["load_data", "lockstep"]
                samples = {t: [] for t in tools}
                for round_ in range(RUNS):
                    order = tools[round_ % len(tools):] + tools[:round_ % len(tools)]
                    for tool in order:
                        reset(case, shape, tool, mariadb_ddl)
                        s = run_tool(case, shape, tool, hub)
                        if round_ == RUNS - 1:
                            if case == "pg_pg":
                                s["notes"] = pg_fidelity(shape, columns, key if tool != "pipe_nokey" else [],
                                                         checksum)
                            else:
                                s["notes"] = mariadb_fidelity(shape, columns, probe)
                        samples[tool].append(s)
                        hub_cpu = f", hub {s['hub_cpu']:.2f} CPU-s" if "hub_cpu" in s else ""
                        b.log(f"{shape} {case} {round_ + 1}/{RUNS} {tool}: {s['wall']:.2f} s{hub_cpu}, "
                              f"{s['peak_mib']:.0f} MiB {s.get('notes', '')}")
                results["shapes"][shape]["cases"][case] = samples
    finally:
        hub.stop()
    text = report(results)
    print(text)
    stamp = time.strftime("%Y-%m-%d-%H%M")
    with open(os.path.join(b.RESULTS, f"shapes-{stamp}.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(os.path.join(b.RESULTS, f"shapes-{stamp}.md"), "w") as f:
        f.write(text)


def report(results):
    med = statistics.median
    lines = [f"Full refreshes by shape, {results['rows']:,} rows, {RUNS} rounds (median wall, "
             "end to end; hub peak RSS)", "",
             "| shape | size | PG→PG pipe, no key | pipe, key | Lockstep | × no-key pipe | peak | "
             "PG→MariaDB LOAD DATA | Lockstep | × LOAD DATA | peak | fidelity |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for shape, r in results["shapes"].items():
        cells = [shape, r["size"]]
        notes = []
        pg = r["cases"].get("pg_pg")
        if pg:
            nokey, key, ls = (med([s["wall"] for s in pg[t]]) for t in ("pipe_nokey", "pipe", "lockstep"))
            peak = max(s["peak_mib"] for s in pg["lockstep"])
            cells += [f"{nokey:.2f} s", f"{key:.2f} s", f"**{ls:.2f} s**", f"**{ls / nokey:.2f}×**",
                      f"{peak:.0f} MiB"]
            notes += [f"PG {t}: {'; '.join(s['notes'])}" for t in pg for s in pg[t] if s.get("notes")]
        else:
            cells += ["–"] * 5
        my_ = r["cases"].get("pg_mariadb")
        if my_:
            load, ls = (med([s["wall"] for s in my_[t]]) for t in ("load_data", "lockstep"))
            peak = max(s["peak_mib"] for s in my_["lockstep"])
            cells += [f"{load:.2f} s", f"**{ls:.2f} s**", f"**{ls / load:.2f}×**", f"{peak:.0f} MiB"]
            notes += [f"MariaDB {t}: {'; '.join(s['notes'])}" for t in my_ for s in my_[t]
                      if s.get("notes")]
        else:
            cells += ["–"] * 4
        cells.append("exact" if not notes else "; ".join(notes))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
