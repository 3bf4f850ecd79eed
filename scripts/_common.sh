# Shared by scripts/demo and scripts/test: a virtualenv with the pinned requirements, and
# a clear line when PostgreSQL or Redis is not there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
PG_HOST="${PGHOST:-127.0.0.1}"
PG_PORT="${PGPORT:-5432}"
PG_USER="${PGUSER:-postgres}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export REDIS_URL

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    say "Creating the virtualenv (.venv)"
    "$PYTHON" -m venv .venv
  fi
  local stamp=.venv/.requirements.sha
  local want
  want="$(sha256sum requirements.txt | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "Installing requirements.txt"
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -r requirements.txt
    echo "$want" > "$stamp"
  fi
  PY="$ROOT/.venv/bin/python"
}

is_loopback() { case "$1" in 127.*|localhost|::1) return 0 ;; *) return 1 ;; esac; }
can_apt() { command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; }

postgres_reachable() {
  "$PY" - "$PG_HOST" "$PG_PORT" "$PG_USER" <<'PY' 2>/dev/null
import sys, psycopg
psycopg.connect(host=sys.argv[1], port=sys.argv[2], user=sys.argv[3], dbname="postgres", connect_timeout=3).close()
PY
}

# A local PostgreSQL that is installed but stopped is started; on Debian, as root, a missing
# one is installed (with trust for loopback, as on the project's machines) and started.
require_postgres() {
  if ! postgres_reachable && is_loopback "$PG_HOST"; then
    if ! command -v pg_lsclusters >/dev/null && can_apt; then
      say "Installing PostgreSQL (Debian package postgresql)"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null 2>&1 || true
      for hba in /etc/postgresql/*/main/pg_hba.conf; do
        [ -f "$hba" ] && sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
      done
    fi
    if command -v pg_lsclusters >/dev/null; then
      pg_lsclusters -h 2>/dev/null | while read -r version cluster _port status _rest; do
        if [ "$status" != online ]; then
          say "Starting PostgreSQL $version/$cluster"
          pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" restart >/dev/null 2>&1 || true
        fi
      done
    fi
  fi
  if ! postgres_reachable; then
    echo "PostgreSQL is not reachable at $PG_HOST:$PG_PORT as $PG_USER. Start it (e.g. 'pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start') or set PGHOST/PGPORT/PGUSER." >&2
    exit 2
  fi
}

redis_reachable() {
  "$PY" -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_timeout=3).ping()" "$REDIS_URL" 2>/dev/null
}

# Likewise a local Redis: installed if missing (Debian, root), started if not running.
require_redis() {
  local port
  port="$("$PY" -c "import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port or 6379)" "$REDIS_URL")"
  if ! redis_reachable && is_loopback "$("$PY" -c "import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).hostname)" "$REDIS_URL")"; then
    if ! command -v redis-server >/dev/null && can_apt; then
      say "Installing Redis (Debian package redis-server)"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null 2>&1 || true
    fi
    if command -v redis-server >/dev/null; then
      say "Starting Redis on 127.0.0.1:$port"
      redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save '' --appendonly no >/dev/null 2>&1 || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do redis_reachable && break; sleep 0.3; done
    fi
  fi
  if ! redis_reachable; then
    echo "Redis is not reachable at $REDIS_URL. Start it (e.g. 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379') or set REDIS_URL." >&2
    exit 2
  fi
}

# dblink ships with the server package; where it does not, install the contrib package.
ensure_dblink() {
  if ! psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qAt -c "select 1 from pg_available_extensions where name='dblink'" 2>/dev/null | grep -q 1; then
    say "Installing PostgreSQL's dblink (postgresql-contrib)"
    if command -v apt-get >/dev/null; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-contrib) >/dev/null 2>&1 || true
    fi
  fi
}
