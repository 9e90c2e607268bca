#!/usr/bin/env python3
"""Lockstep's benchmark driver (standard library only). `bench/run.sh` installs the peers, builds
the hub and calls this; see bench/README.md.

For each case (PostgreSQL -> PostgreSQL, PostgreSQL -> MariaDB, CSV -> PostgreSQL) and each of
RUNS rounds, every tool copies the 1,000,000-row `parts` table once, in a rotating order
(interleaved runs), into a destination reset just before (tables dropped, CHECKPOINT). Each run
records the wall time, the peak RSS and CPU time of the tool, and then (untimed) checks what the
tool produced against the source: column types, NOT NULLs, primary key, row count, and (on the
last round) a content checksum.

Lockstep runs through a hub started for the benchmark (`lockstep serve --dev`), driven like a
user drives it: `lockstep pipeline run NAME`. Its peak RSS is the `lockstep serve` process's
VmHWM, reset before each run through /proc/PID/clear_refs, so that each run's peak is its own.
"""

import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)


def env(name, default):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


RUNS = int(env("RUNS", "5"))
CASES = env("CASES", "pg_pg pg_mariadb csv_pg").split()
TOOLS = env("TOOLS", "pipe pipe_nokey lockstep ingestr dlt sling").split()
CHECKSUM = env("CHECKSUM", "1") == "1"
PGHOST = env("PGHOST", "127.0.0.1")
PGPORT = int(env("PGPORT", "5432"))
PGUSER = env("PGUSER", "postgres")
MYSQL_HOST = env("MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(env("MYSQL_PORT", "3306"))
MYSQL_USER = env("MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("MYSQL_PASSWORD", "")
ROWS = int(env("ROWS", "1000000"))  # parts.sql makes 1,000,000; another count makes a scaled copy
SRC_DB = env("SRC_DB", "lockstep_bench_src" if ROWS == 1_000_000 else f"lockstep_bench_src_{ROWS}")
DST_DB = env("DST_DB", "lockstep_benchrun_dst")  # a name nobody else uses: it is reset at will
PARTS_SQL = env("PARTS_SQL", os.path.join(ROOT, "..", "shared", "bench", "parts.sql"))
TARGET_DIR = os.path.join(ROOT, env("CARGO_TARGET_DIR", "target"))  # cargo runs in ROOT
LOCKSTEP = env("LOCKSTEP_BIN", os.path.join(TARGET_DIR, "release", "lockstep"))
DATA = env("BENCH_DATA", os.path.join(BENCH, "data"))
RESULTS = env("BENCH_RESULTS", os.path.join(BENCH, "results"))
TIMEOUT = int(env("RUN_TIMEOUT", "1800"))
PERF = env("PERF", "0") == "1"  # record a perf profile of the hub during each Lockstep run
QUIET_WAIT = int(env("QUIET_WAIT", "300"))  # seconds to wait for a quiet machine before each run
# The yardstick pipes' psql talk to PostgreSQL without TLS, as the hub's connections here do
# (psql's default, sslmode=prefer, encrypts loopback traffic: about 7% of the pipe's CPU).
os.environ.setdefault("PGSSLMODE", "disable")

# The pipeline under test: every column mapped, two of them renamed, one validation rule.
RENAMES = {"part_number": "item_code", "description": "item_name"}
RULE = "qty >= 0.0"

CASE_TITLES = {
    "pg_pg": "PostgreSQL -> PostgreSQL",
    "pg_mariadb": "PostgreSQL -> MariaDB",
    "csv_pg": "CSV -> PostgreSQL",
}
TOOL_TITLES = {
    "pipe": {
        "pg_pg": "binary COPY pipe (psql | psql), table pre-created with its key",
        "pg_mariadb": "text COPY pipe (psql | mariadb LOAD DATA), table pre-created with its key",
        "csv_pg": "psql \\copy from CSV, table pre-created with its key",
    },
    "pipe_nokey": {
        "pg_pg": "binary COPY pipe, table pre-created without its key (for reference)",
        "csv_pg": "psql \\copy from CSV, table pre-created without its key (for reference)",
    },
    "lockstep": "Lockstep `pipeline run` (2 renames + 1 rule)",
    "ingestr": "ingestr 1.1.22 (defaults)",
    "dlt": "dlt 1.31.0 (connectorx, parquet/ADBC)",
    "sling": "sling 1.4.11 (SLING_DIRECT_INSERT=true)",
}


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- database helpers (through psql and mariadb, so that no driver is needed) -----------------


def pg_url(db):
    return f"postgresql://{PGUSER}@{PGHOST}:{PGPORT}/{db}"


def psql_cmd(db, *args):
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PGHOST, "-p", str(PGPORT),
            "-U", PGUSER, "-d", db, *args]


def psql(db, sql):
    """Runs `sql`; answers the rows as lists of strings (tab-separated, unaligned)."""
    out = subprocess.run(psql_cmd(db, "-A", "-t", "-F", "\t", "-c", sql), check=True,
                         capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line != ""]


def mysql_cmd(db=None, *args):
    cmd = ["mariadb" if shutil.which("mariadb") else "mysql", "-h", MYSQL_HOST,
           "-P", str(MYSQL_PORT), "-u", MYSQL_USER, "--batch", "--skip-column-names"]
    if MYSQL_PASSWORD:
        cmd.append(f"-p{MYSQL_PASSWORD}")
    cmd.extend(args)
    if db:
        cmd.append(db)
    return cmd


def mysql(db, sql):
    out = subprocess.run(mysql_cmd(db, "-e", sql), check=True, capture_output=True,
                         text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line != ""]


def pg_columns(db, table="parts"):
    return [(name, typ, notnull == "t") for name, typ, notnull in psql(db, f"""
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
        FROM pg_attribute a
        WHERE a.attrelid = 'public.{table}'::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum""")]


def pg_primary_key(db, table="parts"):
    rows = psql(db, f"""
        SELECT a.attname FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = 'public.{table}'::regclass AND i.indisprimary ORDER BY k.ord""")
    return [r[0] for r in rows]


def pg_table_exists(db, table="parts"):
    return psql(db, f"SELECT to_regclass('public.{table}') IS NOT NULL")[0][0] == "t"


def pg_checksum(db, columns, table="parts"):
    """An order-independent hash of the rows: the sum of the first 60 bits of each row's md5 over
    the columns' text, in the given order."""
    row = ", ".join(f'"{c}"' for c in columns)
    return psql(db, f"""SELECT count(*), sum(('x' || substr(md5(ROW({row})::text), 1, 15))::bit(60)::bigint)
                        FROM public.{table}""")[0]


def reset_pg_destination():
    """Drops every table the tools made (every schema but the system ones), then CHECKPOINT."""
    schemas = [r[0] for r in psql(DST_DB, """
        SELECT nspname FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'""")]
    sql = "".join(f'DROP SCHEMA IF EXISTS "{s}" CASCADE;' for s in schemas)
    psql(DST_DB, sql + "CREATE SCHEMA IF NOT EXISTS public; CHECKPOINT;")


def reset_mariadb_destination():
    tables = [r[0] for r in mysql(None, "SELECT table_name FROM information_schema.tables "
                                        f"WHERE table_schema = '{DST_DB}'")]
    if tables:
        mysql(DST_DB, "SET FOREIGN_KEY_CHECKS = 0; DROP TABLE IF EXISTS "
              + ", ".join(f"`{t}`" for t in tables))
    mysql(None, "FLUSH TABLES")


# --- setup --------------------------------------------------------------------------------------


def source_ddl(renamed, key=True):
    """parts.sql's CREATE TABLE, with the two renames applied when `renamed`, without the
    primary key unless `key`."""
    text = open(PARTS_SQL, encoding="utf-8").read()
    ddl = re.search(r"CREATE TABLE parts \(.*?\);", text, re.S).group(0)
    if not key:
        ddl = ddl.replace("PRIMARY KEY", "NOT NULL")
    if renamed:
        for old, new in RENAMES.items():
            ddl = re.sub(rf"\b{old}\b", new, ddl)
    return ddl


def ensure_source():
    exists = psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{SRC_DB}'")[0][0]
    if exists == "1" and pg_table_exists(SRC_DB):
        count = int(psql(SRC_DB, "SELECT count(*) FROM parts")[0][0])
        if count == ROWS and len(pg_columns(SRC_DB)) == 10 and pg_primary_key(SRC_DB) == ["id"]:
            log(f"source {SRC_DB}.parts is complete ({count} rows): reused")
            return
        log(f"source {SRC_DB}.parts is incomplete ({count} rows): loading it again")
    if exists == "0":
        psql("postgres", f'CREATE DATABASE "{SRC_DB}"')
    sql = open(PARTS_SQL, encoding="utf-8").read()
    if ROWS != 1_000_000:  # the same rows, more or fewer of them
        sql = sql.replace("generate_series(1, 1000000)", f"generate_series(1, {ROWS})")
    log(f"loading {PARTS_SQL} ({ROWS} rows) into {SRC_DB} (about a minute per million rows)")
    subprocess.run(psql_cmd(SRC_DB, "-f", "-"), input=sql, text=True, check=True,
                   stdout=subprocess.DEVNULL)
    psql(SRC_DB, "VACUUM (ANALYZE) parts")  # a statement of its own: not in a transaction
    psql(SRC_DB, "CHECKPOINT")


def ensure_destinations():
    if psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{DST_DB}'")[0][0] == "0":
        psql("postgres", f'CREATE DATABASE "{DST_DB}"')
    if "pg_mariadb" in CASES:
        mysql(None, f"CREATE DATABASE IF NOT EXISTS `{DST_DB}` CHARACTER SET utf8mb4")


def ensure_csv(path):
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return
    log(f"exporting parts to {path}")
    tmp = path + ".tmp"
    subprocess.run(psql_cmd(SRC_DB, "-c", f"\\copy parts to '{tmp}' (format csv, header)"),
                   check=True)
    os.replace(tmp, path)


# --- measuring one process ----------------------------------------------------------------------


class Measured:
    def __init__(self, wall, maxrss_kib, cpu, returncode, output):
        self.wall = wall
        self.maxrss_mib = maxrss_kib / 1024.0
        self.cpu = cpu
        self.returncode = returncode
        self.output = output


def measure(cmd, extra_env=None, cwd=None, shell=False):
    """Runs `cmd` under GNU time; answers its wall time, the largest RSS of it and its
    descendants (ru_maxrss), and their user+system CPU seconds.

    GNU time, not our own wait4: a child forked from this Python process would count Python's
    pages in its ru_maxrss (the kernel keeps the pre-exec high-water mark)."""
    run_env = dict(os.environ)
    run_env.update(extra_env or {})
    if shell:
        cmd = ["bash", "-o", "pipefail", "-c", cmd]
    out = tempfile.TemporaryFile(mode="w+")
    with tempfile.NamedTemporaryFile(mode="r", suffix=".time") as usage:
        started = time.perf_counter()
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M %U %S", "-o", usage.name, *cmd],
                                env=run_env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        wall = time.perf_counter() - started
        fields = usage.read().split()
    out.seek(0)
    output = out.read()
    # After "Command exited with non-zero status N", the last three fields are ours.
    maxrss, user, system = (fields[-3:] if len(fields) >= 3 else ("0", "0", "0"))
    return Measured(wall, int(maxrss), float(user) + float(system), proc.returncode, output)


def timestamp(text):
    """RFC 3339 (as the hub writes it, up to nanoseconds) -> seconds since the epoch."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    whole = datetime.datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return whole.timestamp() + float("0." + (m.group(2) or "0"))


def cpu_busy(seconds=1.0):
    """The machine's CPU use over `seconds`, 0 to 1 (all cores)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet():
    """Waits (up to QUIET_WAIT s) until nobody else uses the machine: no other active PostgreSQL
    query and under 15% CPU use over a second. Answers the CPU use seen last, and whether the
    machine was quiet."""
    deadline = time.time() + QUIET_WAIT
    while True:
        others = int(psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                      "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")[0][0])
        busy = cpu_busy()
        if (others == 0 and busy < 0.15) or time.time() > deadline:
            if others or busy >= 0.15:
                log(f"the machine is not quiet ({others} other queries, CPU {busy:.0%}): running anyway")
            return busy, others == 0 and busy < 0.15
        time.sleep(2)


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the hub ------------------------------------------------------------------------------------


class Hub:
    """A `lockstep serve --dev` started for the benchmark, with an organization, a signed-in
    Administrator, the connections and the pipelines."""

    def __init__(self, files_root, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="hub-", dir=DATA)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.addr = f"https://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.dir, "serve.log"), "w")
        cmd = [LOCKSTEP, "serve", "--dev", "--data", os.path.join(self.dir, "data"),
               "--listen", f"127.0.0.1:{self.port}", "--egress-allow", "loopback",
               "--files-root", files_root, *extra_args]
        log("starting the hub: " + " ".join(shlex.quote(c) for c in cmd))
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, LOCKSTEP_LOG="warn"))
        self.ca = os.path.join(self.dir, "data", "tls", "ca.pem")
        self.token = None
        for _ in range(600):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited: see {self.log.name}")
            if os.path.exists(self.ca) and self._healthy():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the hub did not answer within a minute")
        keys = json.load(open(os.path.join(self.dir, "data", "dev-unseal-keys.json")))
        self.token = keys["operator_token"]
        org = self.call("POST", "/api/v1/sys/organizations",
                        {"name": "Benchmark", "admin_email": "bench@example.com"})
        password = "bench " + os.urandom(12).hex()
        self.token = None
        self.call("POST", "/api/v1/auth/invitations/accept",
                  {"token": org["invitation_token"], "password": password,
                   "display_name": "Bench"})
        login = self.call("POST", "/api/v1/auth/login",
                          {"email": "bench@example.com", "password": password})
        self.token = login["session_token"]

    def _context(self):
        return ssl.create_default_context(cafile=self.ca)

    def _healthy(self):
        try:
            with urllib.request.urlopen(self.addr + "/healthz", context=self._context(),
                                        timeout=2) as r:
                return r.status == 200
        except (OSError, ssl.SSLError, urllib.error.URLError):
            return False

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.addr + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        if self.token:
            request.add_header("authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, context=self._context(), timeout=120) as r:
                text = r.read()
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"{method} {path}: {err.code} {err.read().decode()}") from None
        return json.loads(text) if text else None

    def connection(self, name, kind, config, secrets=None):
        created = self.call("POST", "/api/v1/connections",
                            {"name": name, "kind": kind, "config": config,
                             "secrets": secrets or {}})
        found = self.call("POST", f"/api/v1/connections/{created['id']}/discover")
        return created["id"], found

    def pipeline(self, name, source, source_object, destination, destination_object, columns):
        mappings = [{"source": c, "destination": RENAMES.get(c, c)} for c in columns]
        created = self.call("POST", "/api/v1/pipelines", {
            "name": name,
            "source": {"connection_id": source, "object": source_object},
            "destination": {"connection_id": destination, "object": destination_object},
            "mappings": mappings,
            "rules": [{"kind": "validation", "expression": RULE, "level": "error",
                       "message": "qty must not be negative"}],
            "mode": "full_refresh"})
        return created["id"]

    def run_command(self, name):
        return [LOCKSTEP, "pipeline", "run", name, "--addr", self.addr, "--ca-cert", self.ca,
                "--format", "json"]

    def reset_peak(self):
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")

    def peak_mib(self):
        return proc_status(self.proc.pid, "VmHWM") / 1024.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --- the tools ----------------------------------------------------------------------------------


def venv_bin(tool, name):
    return os.path.join(BENCH, f".venv-{tool}", "bin", name)


def sling_bin():
    lib = os.path.join(BENCH, ".venv-sling", "lib")
    for root, _, files in os.walk(lib):
        if "sling-linux-amd64" in files and root.endswith(os.path.join("sling_linux_amd64", "bin")):
            return os.path.join(root, "sling-linux-amd64")
    return None


def available(tool):
    if tool in ("pipe", "pipe_nokey", "lockstep"):
        return True
    if tool == "ingestr":
        return os.path.exists(venv_bin("ingestr", "ingestr"))
    if tool == "dlt":
        return os.path.exists(venv_bin("dlt", "python"))
    if tool == "sling":
        return sling_bin() is not None
    return False


PEER_ENV = {
    # No telemetry from the peers (there is no internet anyway).
    "INGESTR_DISABLE_TELEMETRY": "true",
    "DISABLE_TELEMETRY": "true",
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "SLING_DISABLE_TELEMETRY": "true",
}

MYSQL_URL = (f"mysql://{MYSQL_USER}" + (f":{MYSQL_PASSWORD}" if MYSQL_PASSWORD else "")
             + f"@{MYSQL_HOST}:{MYSQL_PORT}/{DST_DB}")


def peer_command(tool, case, csv_path):
    """The peer's command and environment for `case`, or None when it is not measured there."""
    peer_dir = os.path.join(DATA, "peers", tool)
    if tool == "ingestr":
        source = ["--source-uri", pg_url(SRC_DB) + "?sslmode=disable", "--source-table", "public.parts"]
        destination = ["--dest-uri", pg_url(DST_DB) + "?sslmode=disable", "--dest-table", "public.parts"]
        if case == "pg_mariadb":
            destination = ["--dest-uri", MYSQL_URL, "--dest-table", f"{DST_DB}.parts"]
        elif case == "csv_pg":
            source = ["--source-uri", "csv://" + csv_path, "--source-table", "parts"]
        return [venv_bin("ingestr", "ingestr"), "ingest", "--full-refresh", "--yes",
                "--progress", "log", *source, *destination, "--pipelines-dir", peer_dir], {}
    if tool == "dlt":
        if case != "pg_pg":
            return None
        shutil.rmtree(peer_dir, ignore_errors=True)  # no state kept between runs
        return [venv_bin("dlt", "python"), os.path.join(BENCH, "peers", "dlt_copy.py"),
                "postgresql+psycopg2://" + pg_url(SRC_DB).split("://", 1)[1],
                # dlt's postgres destination wants a password even under trust auth.
                f"postgresql://{PGUSER}:unused@{PGHOST}:{PGPORT}/{DST_DB}", "parts"], \
            {"DLT_DATA_DIR": peer_dir}
    if tool == "sling":
        environment = {"SLING_HOME_DIR": peer_dir, "SLING_DIRECT_INSERT": "true",
                       "BENCH_SRC": pg_url(SRC_DB) + "?sslmode=disable",
                       "BENCH_PG_DST": pg_url(DST_DB) + "?sslmode=disable",
                       "BENCH_MY_DST": MYSQL_URL}
        if case == "pg_pg":
            args = ["--src-conn", "BENCH_SRC", "--src-stream", "public.parts",
                    "--tgt-conn", "BENCH_PG_DST", "--tgt-object", "public.parts"]
        elif case == "pg_mariadb":
            args = ["--src-conn", "BENCH_SRC", "--src-stream", "public.parts",
                    "--tgt-conn", "BENCH_MY_DST", "--tgt-object", f"{DST_DB}.parts"]
        else:
            args = ["--src-stream", "file://" + csv_path,
                    "--tgt-conn", "BENCH_PG_DST", "--tgt-object", "public.parts"]
        return [sling_bin(), "run", *args, "--mode", "full-refresh"], environment
    raise ValueError(tool)


def pipe_command(case, csv_path):
    if case == "pg_pg":
        out = shlex.join(psql_cmd(SRC_DB, "-c", "\\copy (select * from parts) to stdout (format binary)"))
        into = shlex.join(psql_cmd(DST_DB, "-c", "\\copy parts from stdin (format binary)"))
        return f"{out} | {into}"
    if case == "pg_mariadb":
        # PostgreSQL's text COPY format is LOAD DATA's default format (tabs, \N, backslashes).
        select = ("select id, part_number, description, qty, level, parent_id, "
                  "updated_at at time zone 'UTC', active::int, owner, attrs from parts")
        out = shlex.join(psql_cmd(SRC_DB, "-c", f"\\copy ({select}) to stdout"))
        into = shlex.join(mysql_cmd(DST_DB, "--local-infile=1", "-e",
                                    "LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE parts"))
        return f"{out} | {into}"
    if case == "csv_pg":
        return shlex.join(psql_cmd(DST_DB, "-c", f"\\copy parts from '{csv_path}' (format csv, header)"))
    raise ValueError(case)


MARIADB_PARTS = """CREATE TABLE parts (
  id BIGINT NOT NULL PRIMARY KEY, part_number LONGTEXT NOT NULL, description LONGTEXT,
  qty DECIMAL(12,4), level INT, parent_id BIGINT, updated_at DATETIME(6) NOT NULL,
  active TINYINT(1) NOT NULL, owner LONGTEXT, attrs JSON) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""


# --- fidelity -----------------------------------------------------------------------------------


def compare_pg(expected_columns, expected_key, renamed):
    """What the destination's `parts` lost or changed, against the source's (renamed) columns."""
    if not pg_table_exists(DST_DB):
        return ["no table public.parts"], None
    got = pg_columns(DST_DB)
    notes = []
    by_name = {name: (typ, nn) for name, typ, nn in got}
    expected = [(RENAMES.get(n, n) if renamed else n, t, nn) for n, t, nn in expected_columns]
    for name, typ, notnull in expected:
        if name not in by_name:
            notes.append(f"missing {name}")
            continue
        got_type, got_notnull = by_name[name]
        if got_type != typ:
            notes.append(f"{name} {typ} -> {got_type}")
        if notnull and not got_notnull:
            notes.append(f"{name} lost NOT NULL")
        if got_notnull and not notnull:
            notes.append(f"{name} gained NOT NULL")
    extra = [n for n, _, _ in got if n not in {e[0] for e in expected}]
    if extra:
        notes.append("extra " + ", ".join(extra))
    if [n for n, _, _ in got if n in {e[0] for e in expected}] != [e[0] for e in expected]:
        notes.append("columns reordered")
    key = pg_primary_key(DST_DB)
    want_key = [RENAMES.get(k, k) if renamed else k for k in expected_key]
    if key != want_key:
        notes.append("no primary key" if not key else f"primary key ({', '.join(key)})")
    count = int(psql(DST_DB, "SELECT count(*) FROM public.parts")[0][0])
    if count != ROWS:
        notes.append(f"{count} rows")
    return notes, [e[0] for e in expected]


def compare_mariadb():
    rows = mysql(None, "SELECT column_name, column_type, is_nullable, column_key "
                       "FROM information_schema.columns "
                       f"WHERE table_schema = '{DST_DB}' AND table_name = 'parts' "
                       "ORDER BY ordinal_position")
    if not rows:
        return ["no table parts"], []
    return [], rows


def mariadb_notes(rows, source_columns, renamed):
    """MariaDB has other type names: report the NOT NULLs, the key, the row count and the types
    that are not the natural counterpart of the source's."""
    natural = {
        "bigint": {"bigint(20)", "bigint"},
        "integer": {"int(11)", "int"},
        "text": {"longtext"},  # TEXT and MEDIUMTEXT hold less than PostgreSQL's text
        "numeric(12,4)": {"decimal(12,4)"},
        "timestamp with time zone": {"datetime(6)"},  # TIMESTAMP ends in 2038
        "boolean": {"tinyint(1)"},
        "jsonb": {"longtext", "json"},
    }
    notes = []
    got = {r[0]: r for r in rows}
    for name, typ, notnull in source_columns:
        dst = RENAMES.get(name, name) if renamed else name
        if dst not in got:
            notes.append(f"missing {dst}")
            continue
        _, column_type, nullable, key = got[dst]
        if column_type.lower() not in natural.get(typ, {typ}):
            limit = {"text": " (64 KiB)", "mediumtext": " (16 MiB)", "timestamp(6)": " (ends 2038)"}
            notes.append(f"{dst} {typ} -> {column_type}{limit.get(column_type.lower(), '')}")
        if notnull and nullable == "YES":
            notes.append(f"{dst} lost NOT NULL")
    extra = [r[0] for r in rows if r[0] not in
             {RENAMES.get(n, n) if renamed else n for n, _, _ in source_columns}]
    if extra:
        notes.append("extra " + ", ".join(extra))
    key = [r[0] for r in rows if r[3] == "PRI"]
    if key != [RENAMES.get("id", "id")]:
        notes.append("no primary key" if not key else f"primary key ({', '.join(key)})")
    count = int(mysql(DST_DB, "SELECT count(*) FROM parts")[0][0])
    if count != ROWS:
        notes.append(f"{count} rows")
    return notes


PROBE_LABELS = ["count", "sum(id)", "sum(qty)", "count(parent_id)", "sum(active)",
                "length(part_number)", "length(description)", "updated_at", "attrs.weight_g"]


def mariadb_probe(renamed):
    """Representation-independent aggregates, to compare MariaDB's content with the source's."""
    desc = "item_name" if renamed else "description"
    code = "item_code" if renamed else "part_number"
    return [str(v) for v in mysql(DST_DB, f"""
        SELECT count(*), sum(id), sum(qty), count(parent_id), sum(active),
               sum(char_length({code})), sum(char_length({desc})),
               sum(unix_timestamp(updated_at) div 1), sum(json_value(attrs, '$.weight_g'))
        FROM parts""")[0]]


def source_probe():
    return psql(SRC_DB, """
        SELECT count(*), sum(id), sum(qty), count(parent_id), sum(active::int),
               sum(char_length(part_number)), sum(char_length(description)),
               sum(extract(epoch from updated_at)::bigint), sum((attrs->>'weight_g')::int)
        FROM parts""")[0]


# --- the benchmark ------------------------------------------------------------------------------


def machine():
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_mib": mem,
        "kernel": platform.release(),
        "postgres": psql("postgres", "SHOW server_version")[0][0],
        "mariadb": mysql(None, "SELECT version()")[0][0],
        "lockstep": git,
        "runs": RUNS,
    }


def median(values):
    return statistics.median(values) if values else None


def interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    # Stop cleanly (the hub too) on SIGTERM, and on SIGINT even when started in the background
    # (where a shell makes SIGINT ignored).
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    unknown = [c for c in CASES if c not in CASE_TITLES] + [
        t for t in TOOLS if t not in TOOL_TITLES]
    if unknown:
        sys.exit(f"unknown case or tool: {', '.join(unknown)} "
                 f"(cases: {', '.join(CASE_TITLES)}; tools: {', '.join(TOOL_TITLES)})")
    os.makedirs(DATA, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    if not os.path.exists(LOCKSTEP):
        sys.exit(f"no {LOCKSTEP}: build it first (cargo build --release --locked)")
    files_root = os.path.join(DATA, "files")
    os.makedirs(os.path.join(files_root, SRC_DB), exist_ok=True)
    csv_path = os.path.join(files_root, SRC_DB, "parts.csv")

    ensure_source()
    ensure_destinations()
    if "csv_pg" in CASES:
        ensure_csv(csv_path)
    info = machine()
    log(f"machine: {info}")
    source_columns = pg_columns(SRC_DB)
    source_key = pg_primary_key(SRC_DB)
    source_names = [c[0] for c in source_columns]
    source_sum = pg_checksum(SRC_DB, source_names) if CHECKSUM else None
    probe = source_probe() if CHECKSUM and "pg_mariadb" in CASES else None

    tools = [t for t in TOOLS if available(t)]
    skipped = [t for t in TOOLS if t not in tools]
    for t in skipped:
        log(f"{t} is not installed (bench/.venv-{t}): skipped")

    hub = Hub(files_root)
    results = {"machine": info, "cases": {}, "skipped": skipped, "rule": RULE,
               "renames": RENAMES}
    try:
        src_conn, _ = hub.connection("Source", "postgres", {
            "host": PGHOST, "port": PGPORT, "database": SRC_DB, "user": PGUSER, "tls": "disable"})
        dst_conn, _ = hub.connection("Warehouse", "postgres", {
            "host": PGHOST, "port": PGPORT, "database": DST_DB, "user": PGUSER, "tls": "disable"})
        pipelines = {"pg_pg": ("bench-pg-pg", src_conn, "public.parts", dst_conn, "public.parts")}
        pipeline_ids = {}
        discovered_csv = None
        if "pg_mariadb" in CASES:
            my_conn, _ = hub.connection("Shop", "mysql", {
                "host": MYSQL_HOST, "port": MYSQL_PORT, "database": DST_DB, "user": MYSQL_USER,
                "tls": "disable"}, {"password": MYSQL_PASSWORD} if MYSQL_PASSWORD else {})
            pipelines["pg_mariadb"] = ("bench-pg-mariadb", src_conn, "public.parts", my_conn, "parts")
        if "csv_pg" in CASES:
            files_conn, found = hub.connection("Exports", "files", {
                "directory": SRC_DB, "csv": {"delimiter": ",", "header": True}})
            for obj in found.get("objects", []):
                if obj.get("name") == "parts.csv":
                    discovered_csv = [(f.get("name"), f.get("type"), f.get("nullable"))
                                      for f in obj.get("fields", [])]
            pipelines["csv_pg"] = ("bench-csv-pg", files_conn, "parts.csv", dst_conn, "public.parts")
        for case in CASES:
            name, s, so, d, do = pipelines[case]
            pipeline_ids[case] = hub.pipeline(name, s, so, d, do, source_names)
        results["csv_inferred_fields"] = discovered_csv
        results["hub_peak_after_setup_mib"] = hub.peak_mib()

        for case in CASES:
            log(f"== {CASE_TITLES[case]}")
            case_tools = [t for t in tools
                          if t in ("pipe", "lockstep")
                          or (t == "pipe_nokey" and case in ("pg_pg", "csv_pg"))
                          or (t not in ("pipe", "pipe_nokey", "lockstep")
                              and peer_command(t, case, csv_path))]
            samples = {t: [] for t in case_tools}
            for round_ in range(RUNS):
                # Rotate the order each round so that no tool always runs first or last.
                order = case_tools[round_ % len(case_tools):] + case_tools[:round_ % len(case_tools)]
                for tool in order:
                    last = round_ == RUNS - 1
                    sample = run_one(case, tool, hub, pipelines, pipeline_ids, csv_path, source_columns,
                                     source_key, source_names, source_sum, probe, last)
                    samples[tool].append(sample)
                    log(f"{case} round {round_ + 1}/{RUNS} {tool}: {sample['wall']:.2f} s, "
                        f"{sample['peak_mib']:.0f} MiB, {sample.get('notes')}")
            results["cases"][case] = samples
        results["hub_peak_overall_mib"] = hub.peak_mib()
    finally:
        hub.stop()

    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    with open(os.path.join(RESULTS, f"{stamp}.json"), "w") as f:
        json.dump(results, f, indent=1)
    markdown = report(results)
    with open(os.path.join(RESULTS, f"{stamp}.md"), "w") as f:
        f.write(markdown)
    print(markdown)
    log(f"written: bench/results/{stamp}.md and .json")


def run_one(case, tool, hub, pipelines, pipeline_ids, csv_path, source_columns, source_key,
            source_names, source_sum, probe, last):
    pg_dest = case in ("pg_pg", "csv_pg")
    if pg_dest:
        reset_pg_destination()
    else:
        reset_mariadb_destination()
    renamed = tool == "lockstep"
    # The yardsticks need the table; CSV -> PostgreSQL loads into an existing table for every
    # tool that can (psql and Lockstep), with the source's definition.
    if tool in ("pipe", "pipe_nokey") or (case == "csv_pg" and tool == "lockstep"):
        if pg_dest:
            psql(DST_DB, source_ddl(renamed, key=tool != "pipe_nokey") + " CHECKPOINT;")
        else:
            mysql(DST_DB, MARIADB_PARTS)
    busy, quiet = wait_quiet()
    sample = {"loadavg": os.getloadavg()[0], "cpu_busy_before": busy, "quiet": quiet}
    if tool in ("pipe", "pipe_nokey"):
        m = measure(pipe_command(case, csv_path), shell=True)
    elif tool == "lockstep":
        hub.reset_peak()
        sample["hub_rss_before_mib"] = proc_status(hub.proc.pid, "VmRSS") / 1024.0
        cpu_before = proc_cpu(hub.proc.pid)
        perf = None
        if PERF:
            profile = os.path.join(RESULTS, f"perf-{case}-{time.strftime('%H%M%S')}.data")
            perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(hub.proc.pid),
                                     "-o", profile], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(1)
        m = measure(hub.run_command(pipelines[case][0]), {"LOCKSTEP_TOKEN": hub.token})
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
            sample["perf"] = profile
        sample["hub_cpu"] = proc_cpu(hub.proc.pid) - cpu_before
        sample["client_peak_mib"] = m.maxrss_mib
        m.maxrss_mib = hub.peak_mib()
        sample["hub_rss_after_mib"] = proc_status(hub.proc.pid, "VmRSS") / 1024.0
        try:
            run = json.loads(m.output.strip().splitlines()[-1])
            sample["records_written"] = run.get("records_written")
            sample["records_rejected"] = run.get("records_rejected")
            # The run as the hub saw it: queued -> started -> finished.
            run = hub.call("GET", f"/api/v1/pipelines/{pipeline_ids[case]}/runs/{run['id']}")
            created, started, finished = (timestamp(run.get(k)) for k in
                                          ("created_at", "started_at", "finished_at"))
            sample["hub_duration"] = finished - started
            sample["hub_queued_to_finished"] = finished - created
        except (ValueError, IndexError, KeyError, TypeError):
            pass
    elif not available(tool):
        sample.update({"wall": 0.0, "peak_mib": 0.0, "cpu": 0.0, "exit": -1,
                       "notes": ["FAILED (no longer installed)"]})
        return sample
    else:
        cmd, environment = peer_command(tool, case, csv_path)
        environment = dict(PEER_ENV, **environment)
        m = measure(cmd, environment, cwd=DATA)
    sample.update({"wall": m.wall, "peak_mib": m.maxrss_mib, "cpu": m.cpu, "exit": m.returncode})
    if m.returncode != 0:
        sample["notes"] = [f"FAILED (exit {m.returncode})"]
        sample["error"] = m.output[-4000:]
        log(f"{tool} failed:\n{m.output[-2000:]}")
        return sample
    if pg_dest:
        notes, columns = compare_pg(source_columns, source_key, renamed)
        if CHECKSUM and last and columns:
            got = pg_checksum(DST_DB, columns)
            sample["content"] = "equal" if got == source_sum else "differs"
            sample["checksum"] = {"got": got, "source": source_sum}
            if got != source_sum:
                differing = [d for s, d in zip(source_names, columns)
                             if pg_checksum(SRC_DB, [s]) != pg_checksum(DST_DB, [d])]
                sample["content"] = "differs in " + ", ".join(differing or ["row set"])
    else:
        notes, rows = compare_mariadb()
        if rows:
            notes = mariadb_notes(rows, source_columns, renamed)
            sample["mariadb_columns"] = rows
            if CHECKSUM and last:
                got = mariadb_probe(renamed)
                sample["content"] = "equal" if got == probe else "differs"
                sample["checksum"] = {"got": got, "source": probe}
                if got != probe:
                    sample["content"] = "differs in " + ", ".join(
                        label for label, a, b in zip(PROBE_LABELS, got, probe) if a != b)
    sample["notes"] = notes
    return sample


def report(results):
    info = results["machine"]
    loads = [s["loadavg"] for case in results["cases"].values() for runs in case.values()
             for s in runs if "loadavg" in s]
    noisy = sum(1 for case in results["cases"].values() for runs in case.values()
                for s in runs if not s.get("quiet", True))
    lines = [f"# Lockstep benchmark, {info['date']}", "",
             f"{info['nproc']} cores ({info['cpu']}), {info['memory_mib']} MiB, Linux {info['kernel']}; "
             f"PostgreSQL {info['postgres']}, MariaDB {info['mariadb']}; Lockstep {info['lockstep']}. "
             f"{info['runs']} interleaved runs per tool; medians, with the fastest and slowest run. "
             f"Lockstep's pipelines map every column, rename "
             f"{', '.join(f'{k} -> {v}' for k, v in results['renames'].items())} and reject records "
             f"unless `{results['rule']}`; the peers copy the table as it is."
             + (f" {noisy} of {len(loads)} runs started while something else used the machine "
                "(another PostgreSQL query or over 15% CPU) after waiting for it to be quiet."
                if noisy else f" Every run started on a quiet machine (no other PostgreSQL query, "
                "under 15% CPU)."), ""]
    for case, samples in results["cases"].items():
        base = median([s["wall"] for s in samples.get("pipe", []) if s["exit"] == 0])
        lines += [f"## {CASE_TITLES[case]}", "",
                  "| tool | median wall | min-max | x pipe | peak RSS | CPU | fidelity |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for tool, runs in samples.items():
            ok = [s for s in runs if s["exit"] == 0]
            title = TOOL_TITLES[tool][case] if isinstance(TOOL_TITLES[tool], dict) else TOOL_TITLES[tool]
            title = title.replace("|", "\\|")
            if not ok:
                lines.append(f"| {title} | failed | | | | | {'; '.join(runs[0].get('notes', []))} |")
                continue
            walls = [s["wall"] for s in ok]
            med = median(walls)
            ratio = f"{med / base:.2f}" if base else "-"
            peak = max(s["peak_mib"] for s in ok)
            cpu = median([s.get("hub_cpu", s["cpu"]) for s in ok])
            notes = sorted({n for s in ok for n in s.get("notes", [])})
            content = [s["content"] for s in ok if "content" in s]
            fidelity = "; ".join(notes) if notes else "types, NOT NULLs, key, rows: exact"
            if content:
                fidelity += f"; content {content[-1]}"
            failures = len(runs) - len(ok)
            if failures:
                fidelity += f"; {failures} of {len(runs)} runs FAILED"
            lines.append(f"| {title} | {med:.2f} s | {min(walls):.2f}-{max(walls):.2f} | "
                         f"{ratio} | {peak:.0f} MiB | {cpu:.1f} s | {fidelity} |")
        lockstep = [s for s in samples.get("lockstep", []) if s["exit"] == 0 and "hub_duration" in s]
        lines.append("")
        if lockstep:
            run_ = median([s["hub_duration"] for s in lockstep])
            queued = median([s["hub_queued_to_finished"] for s in lockstep])
            wall = median([s["wall"] for s in lockstep])
            ratio = f" ({run_ / base:.2f} x pipe)" if base else ""
            lines += [f"Lockstep's run as the hub records it: {run_:.2f} s from start to finish{ratio}, "
                      f"{queued:.2f} s from queued to finished; the rest of the {wall:.2f} s is the "
                      "CLI (its start, the pipeline lookup, and polling until the run ends).", ""]
    lines += [
        "Peak RSS: the tool's largest process (ru_maxrss through GNU time); for Lockstep the "
        "`lockstep serve` process's VmHWM during the run (reset through /proc/PID/clear_refs before "
        "each run). CPU: median user+system seconds of the tool's processes (for Lockstep: of the "
        "hub process during the run); the database servers' CPU is not included.",
        "",
        f"Hub VmHWM after setup (sign-in, discovery): {results.get('hub_peak_after_setup_mib', 0):.0f} MiB; "
        f"over the whole benchmark: {results.get('hub_peak_overall_mib', 0):.0f} MiB.", ""]
    if results.get("csv_inferred_fields"):
        fields = ", ".join(f"{n} {t}{'' if nn else ' NOT NULL'}"
                           for n, t, nn in results["csv_inferred_fields"])
        lines += [f"CSV fields as Lockstep's discovery infers them: {fields}.", ""]
    if results["skipped"]:
        lines += [f"Not measured (not installed): {', '.join(results['skipped'])}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        # Renders the table again from a results file: bench.py --report bench/results/X.json
        print(report(json.load(open(sys.argv[2]))))
    else:
        main()
