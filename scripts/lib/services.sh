# shellcheck shell=bash
# Database servers for the test suite: find a usable PostgreSQL / MariaDB, or
# start a throwaway one that services_cleanup stops and deletes again.
# Sourced by scripts/test; see the comment block there for the env knobs.
#
# Functions that "return" a URL set a global (PG_URL / MYSQL_URL) so that they
# run in the main shell: a $(...) subshell would lose the cleanup bookkeeping.

# Bookkeeping for services_cleanup: what this script started.
SVC_PG_BIN=""        # bin dir of the throwaway PostgreSQL
SVC_PG_DIR=""        # temp dir of the throwaway PostgreSQL
SVC_MYSQL_PID=""     # pid of the throwaway mariadbd
SVC_MYSQL_DIR=""     # temp dir of the throwaway mariadbd
SVC_POLICY_RC=""     # /usr/sbin/policy-rc.d that we created for an apt install
SVC_APT_UPDATED=""

svc_log() { printf '%s\n' "$*" >&2; }
svc_die() { printf 'scripts/test: %s\n' "$*" >&2; exit 1; }

# Print text (a URL, or a command line) with passwords replaced by ***:
# scheme://user:PASS@..., ?password=PASS, and a mysql client's -pPASS.
redact_url() {
  printf '%s\n' "$1" | sed -E \
    -e 's#([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@ ]*):[^/?# ]*@#\1:***@#g' \
    -e 's#([?&](password|pass|pwd)=)[^& ]*#\1***#Ig' \
    -e 's#(^| )(-p|--password=)[^ ]+#\1\2***#g'
}

svc_have() { command -v "$1" >/dev/null 2>&1; }

# Run a command as root (directly, or through sudo when we are not root).
svc_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif svc_have sudo; then
    sudo "$@"
  else
    svc_die "need root (or sudo) to run: $*"
  fi
}

# Run a command as OS user $1 when we are root (postgres refuses to run as
# root); as ourselves otherwise.
svc_as_user() {
  local user=$1
  shift
  if [ "$(id -u)" -ne 0 ]; then
    "$@"
  elif svc_have runuser; then
    runuser -u "$user" -- "$@"
  else
    su -s /bin/sh "$user" -c "$(printf '%q ' "$@")"
  fi
}

svc_ensure_os_user() {
  local user=$1
  [ "$(id -u)" -eq 0 ] || return 0
  id -u "$user" >/dev/null 2>&1 && return 0
  useradd --system --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$user"
}

# apt-get install PACKAGES..., running apt-get update once first. While it
# runs, a policy-rc.d (if none exists) keeps the packages' own services from
# being started, so the install leaves no server running behind our back.
svc_apt_install() {
  svc_have apt-get || svc_die "cannot install $* (no apt-get); install it yourself or set the URL variable"
  svc_log "installing Debian package(s): $* ..."
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    svc_as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    SVC_POLICY_RC=/usr/sbin/policy-rc.d
  fi
  if [ -z "$SVC_APT_UPDATED" ]; then
    svc_as_root apt-get update -qq >&2 || svc_die "apt-get update failed"
    SVC_APT_UPDATED=1
  fi
  svc_as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >&2 \
    || svc_die "apt-get install $* failed"
  if [ -n "$SVC_POLICY_RC" ]; then
    svc_as_root rm -f "$SVC_POLICY_RC"
    SVC_POLICY_RC=""
  fi
}

# Is something accepting TCP connections on 127.0.0.1:$1?
svc_port_open() {
  timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# First port of the arguments that nothing listens on; sets SVC_FREE_PORT.
svc_free_port() {
  local p
  for p in "$@"; do
    if ! svc_port_open "$p"; then
      SVC_FREE_PORT=$p
      return 0
    fi
  done
  return 1
}

# True if LOCKSTEP_TEST_FORCE_THROWAWAY asks for a throwaway $1 (postgres|mysql):
# 1/true/yes/all for both, or a list naming postgres and/or mysql (or mariadb).
svc_forced() {
  case "${LOCKSTEP_TEST_FORCE_THROWAWAY:-}" in
    1 | true | yes | all) return 0 ;;
  esac
  case "$1:${LOCKSTEP_TEST_FORCE_THROWAWAY:-}" in
    postgres:*postgres*) return 0 ;;
    mysql:*mysql* | mysql:*mariadb*) return 0 ;;
    *) return 1 ;;
  esac
}

# ---------------------------------------------------------------- PostgreSQL

# Directory with initdb, pg_ctl and postgres (newest Debian version first);
# prints nothing if there is none.
pg_bin_dir() {
  local d
  while IFS= read -r d; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      printf '%s\n' "$d"
      return 0
    fi
  done < <(
    if svc_have initdb; then dirname "$(readlink -f "$(command -v initdb)")"; fi
    # shellcheck disable=SC2012 # version dirs only; sort -V needs ls/printf
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV
  )
  return 0
}

pg_url_works() {
  svc_have psql || return 1
  PGCONNECT_TIMEOUT=5 psql "$1" -X -q -t -A -v ON_ERROR_STOP=1 -c 'select 1' >/dev/null 2>&1
}

pg_local_default_works() {
  local url=postgres://postgres@127.0.0.1:5432/postgres
  if svc_have pg_isready; then
    pg_isready -q -h 127.0.0.1 -p 5432 -t 3 || return 1
  else
    svc_port_open 5432 || return 1
  fi
  if ! svc_have psql; then
    svc_apt_install postgresql-client
  fi
  pg_url_works "$url"
}

# Start a throwaway PostgreSQL on a free port. Sets PG_URL.
pg_start_throwaway() {
  local bin port dir
  bin=$(pg_bin_dir)
  if [ -z "$bin" ]; then
    svc_apt_install postgresql
    bin=$(pg_bin_dir)
    [ -n "$bin" ] || svc_die "installed postgresql but found no initdb"
  fi
  svc_free_port 5432 55432 55433 55434 55435 || svc_die "no free port for PostgreSQL"
  port=$SVC_FREE_PORT
  svc_ensure_os_user postgres
  dir=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-pg.XXXXXX")
  SVC_PG_DIR=$dir
  SVC_PG_BIN=$bin
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  # cd into the temp dir: the postgres user may not be able to read our cwd.
  if ! (cd "$dir" && svc_as_user postgres "$bin/initdb" -D "$dir/data" \
      --auth=trust -U postgres -E UTF8 --locale=C --no-sync \
      >"$dir/initdb.log" 2>&1); then
    cat "$dir/initdb.log" >&2
    svc_die "initdb failed"
  fi
  if ! (cd "$dir" && svc_as_user postgres "$bin/pg_ctl" -D "$dir/data" \
      -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null 2>&1); then
    tail -n 20 "$dir/postgres.log" >&2 || true
    svc_die "throwaway PostgreSQL did not start"
  fi
  PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  pg_url_works "$PG_URL" || svc_die "throwaway PostgreSQL started but psql cannot connect to $PG_URL"
  svc_log "postgres: started throwaway PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at $(redact_url "$PG_URL") (data in $dir)"
}

pg_stop_throwaway() {
  [ -n "$SVC_PG_DIR" ] || return 0
  local dir=$SVC_PG_DIR pid
  if [ -f "$dir/data/postmaster.pid" ]; then
    (cd "$dir" && svc_as_user postgres "$SVC_PG_BIN/pg_ctl" -D "$dir/data" \
      -m immediate -w -t 30 stop >/dev/null 2>&1) || true
    # Still there (pg_ctl failed)? Kill the postmaster; its children follow.
    if [ -f "$dir/data/postmaster.pid" ]; then
      pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
      if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
      sleep 1
    fi
  fi
  rm -rf "$dir"
  SVC_PG_DIR=""
}

# Sets and exports LOCKSTEP_TEST_POSTGRES_URL.
ensure_postgres() {
  if [ -n "${LOCKSTEP_TEST_POSTGRES_URL:-}" ]; then
    svc_log "postgres: using LOCKSTEP_TEST_POSTGRES_URL=$(redact_url "$LOCKSTEP_TEST_POSTGRES_URL")"
  elif ! svc_forced postgres && pg_local_default_works; then
    LOCKSTEP_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres
    svc_log "postgres: using the running server at $LOCKSTEP_TEST_POSTGRES_URL"
  else
    pg_start_throwaway
    LOCKSTEP_TEST_POSTGRES_URL=$PG_URL
  fi
  export LOCKSTEP_TEST_POSTGRES_URL
}

# ------------------------------------------------------------------- MariaDB

svc_first_cmd() {
  local c d
  for c in "$@"; do
    for d in "" /usr/sbin/ /usr/libexec/ /usr/local/sbin/; do
      if [ -z "$d" ]; then
        if svc_have "$c"; then command -v "$c"; return 0; fi
      elif [ -x "$d$c" ]; then
        printf '%s\n' "$d$c"
        return 0
      fi
    done
  done
  return 0
}

mysql_client() { svc_first_cmd mariadb mysql; }
mysql_admin() { svc_first_cmd mariadb-admin mysqladmin; }

# Run SQL over TCP as root with an empty password; $1 = port, $2 = SQL.
mysql_tcp_sql() {
  local client
  client=$(mysql_client)
  [ -n "$client" ] || return 1
  "$client" --no-defaults --protocol=tcp -h127.0.0.1 -P"$1" -uroot \
    --connect-timeout=5 -e "$2" >/dev/null 2>&1
}

mysql_local_default_works() {
  local admin
  svc_port_open 3306 || return 1
  if [ -z "$(mysql_client)" ]; then
    svc_apt_install mariadb-client
  fi
  admin=$(mysql_admin)
  if [ -n "$admin" ]; then
    "$admin" --no-defaults --protocol=tcp -h127.0.0.1 -P3306 -uroot \
      --connect-timeout=5 ping >/dev/null 2>&1 || return 1
  fi
  # ping succeeds even on "access denied": this is the real check.
  mysql_tcp_sql 3306 'CREATE DATABASE IF NOT EXISTS test'
}

# Start a throwaway MariaDB on a free port. Sets MYSQL_URL.
mysql_start_throwaway() {
  local server installdb port dir i user_args=()
  server=$(svc_first_cmd mariadbd mysqld)
  installdb=$(svc_first_cmd mariadb-install-db mysql_install_db)
  if [ -z "$server" ] || [ -z "$installdb" ] || [ -z "$(mysql_client)" ]; then
    svc_apt_install mariadb-server mariadb-client
    server=$(svc_first_cmd mariadbd mysqld)
    installdb=$(svc_first_cmd mariadb-install-db mysql_install_db)
    if [ -z "$server" ] || [ -z "$installdb" ]; then
      svc_die "installed mariadb-server but found no mariadbd / mariadb-install-db"
    fi
  fi
  svc_free_port 3306 53306 53307 53308 53309 || svc_die "no free port for MariaDB"
  port=$SVC_FREE_PORT
  dir=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-mysql.XXXXXX")
  SVC_MYSQL_DIR=$dir
  if [ "$(id -u)" -eq 0 ]; then
    svc_ensure_os_user mysql
    chown mysql: "$dir"
    user_args=(--user=mysql)
  fi
  if ! (cd "$dir" && "$installdb" --no-defaults --datadir="$dir/data" "${user_args[@]}" \
      --auth-root-authentication-method=normal --skip-test-db \
      --skip-name-resolve >"$dir/install-db.log" 2>&1); then
    cat "$dir/install-db.log" >&2
    svc_die "mariadb-install-db failed"
  fi
  # No --skip-grant-tables: root@127.0.0.1 with an empty password is real.
  (cd "$dir" && exec "$server" --no-defaults --datadir="$dir/data" "${user_args[@]}" \
    --port="$port" --bind-address=127.0.0.1 --socket="$dir/sock" \
    --pid-file="$dir/mariadbd.pid" --log-error="$dir/error.log" \
    --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M \
    --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
    </dev/null >>"$dir/error.log" 2>&1) &
  SVC_MYSQL_PID=$!
  for ((i = 0; i < 120; i++)); do
    if [ -S "$dir/sock" ] && "$(mysql_client)" --no-defaults --protocol=socket \
        -S "$dir/sock" -uroot -e 'select 1' >/dev/null 2>&1; then
      break
    fi
    if ! kill -0 "$SVC_MYSQL_PID" 2>/dev/null; then
      tail -n 20 "$dir/error.log" >&2 || true
      svc_die "throwaway MariaDB exited during start-up"
    fi
    sleep 0.5
  done
  # With --skip-name-resolve, TCP from 127.0.0.1 needs an IP-based account.
  "$(mysql_client)" --no-defaults --protocol=socket -S "$dir/sock" -uroot -e \
    "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
     GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
     CREATE DATABASE IF NOT EXISTS test;" \
    || { tail -n 20 "$dir/error.log" >&2 || true; svc_die "throwaway MariaDB did not come up"; }
  mysql_tcp_sql "$port" 'select 1' \
    || svc_die "throwaway MariaDB started but root@127.0.0.1:$port cannot log in"
  MYSQL_URL="mysql://root@127.0.0.1:$port/test"
  svc_log "mysql: started throwaway $("$server" --version | awk '{print $3}') at $(redact_url "$MYSQL_URL") (data in $dir)"
}

mysql_stop_throwaway() {
  local i
  if [ -n "$SVC_MYSQL_PID" ]; then
    kill -TERM "$SVC_MYSQL_PID" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
      kill -0 "$SVC_MYSQL_PID" 2>/dev/null || break
      sleep 0.25
    done
    kill -KILL "$SVC_MYSQL_PID" 2>/dev/null || true
    wait "$SVC_MYSQL_PID" 2>/dev/null || true
    SVC_MYSQL_PID=""
  fi
  if [ -n "$SVC_MYSQL_DIR" ]; then
    rm -rf "$SVC_MYSQL_DIR"
    SVC_MYSQL_DIR=""
  fi
}

# Sets and exports LOCKSTEP_TEST_MYSQL_URL (unless LOCKSTEP_TEST_SKIP_MYSQL=1).
ensure_mysql() {
  if [ "${LOCKSTEP_TEST_SKIP_MYSQL:-}" = 1 ]; then
    svc_log "mysql: skipped (LOCKSTEP_TEST_SKIP_MYSQL=1)"
    return 0
  fi
  if [ -n "${LOCKSTEP_TEST_MYSQL_URL:-}" ]; then
    svc_log "mysql: using LOCKSTEP_TEST_MYSQL_URL=$(redact_url "$LOCKSTEP_TEST_MYSQL_URL")"
  elif ! svc_forced mysql && mysql_local_default_works; then
    LOCKSTEP_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test
    svc_log "mysql: using the running server at $LOCKSTEP_TEST_MYSQL_URL"
  else
    mysql_start_throwaway
    LOCKSTEP_TEST_MYSQL_URL=$MYSQL_URL
  fi
  export LOCKSTEP_TEST_MYSQL_URL
}

# ------------------------------------------------------------------- cleanup

# Stop and delete whatever this script started. Safe to call more than once.
services_cleanup() {
  if declare -F peers_cleanup >/dev/null; then peers_cleanup; fi
  pg_stop_throwaway
  mysql_stop_throwaway
  if [ -n "$SVC_POLICY_RC" ]; then
    svc_as_root rm -f "$SVC_POLICY_RC" || true
    SVC_POLICY_RC=""
  fi
}

# --- Python SMTP sink for the mail round-trip tests -------------------------
# The mail tests talk to a real SMTP server: aiosmtpd (python3 -m aiosmtpd).
ensure_aiosmtpd() {
  if ! svc_have python3; then
    svc_apt_install python3
  fi
  if python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    return 0
  fi
  svc_log "mail: installing aiosmtpd for the SMTP round-trip tests"
  if ! python3 -m pip install --quiet aiosmtpd >/dev/null 2>&1; then
    svc_apt_install python3-aiosmtpd
  fi
  python3 -c 'import aiosmtpd' >/dev/null 2>&1 || svc_die "aiosmtpd could not be installed"
}
