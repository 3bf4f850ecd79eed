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

require_postgres() {
  if ! "$PY" - "$PG_HOST" "$PG_PORT" "$PG_USER" <<'PY' 2>/dev/null; then
import sys, psycopg
psycopg.connect(host=sys.argv[1], port=sys.argv[2], user=sys.argv[3], dbname="postgres", connect_timeout=3).close()
PY
    echo "PostgreSQL is not reachable at $PG_HOST:$PG_PORT as $PG_USER. Start it (e.g. 'pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start') or set PGHOST/PGPORT/PGUSER." >&2
    exit 2
  fi
}

require_redis() {
  if ! "$PY" -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_timeout=3).ping()" "$REDIS_URL" 2>/dev/null; then
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
