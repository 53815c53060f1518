# Sourced by run-tests when IMGSIM_TEST_POSTGRES=1: install PostgreSQL from Debian's
# packages if needed, start a throwaway server on loopback (trust auth, no fsync: it
# holds nothing worth keeping), and export IMGSIM_TEST_DATABASE_URL for the suite.

imgsim_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

imgsim_start_postgres() {
  local pgbin
  pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$pgbin" ]; then
    echo "Installing Debian's postgresql for the Postgres test run..."
    imgsim_as_root apt-get update -qq
    imgsim_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  PG_DIR="$(mktemp -d /tmp/imgsim-pg.XXXXXX)"
  local port run=()
  port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root
    chown postgres "$PG_DIR"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$pgbin/initdb" -D "$PG_DIR/data" -U imgsim -A trust -E UTF8 --no-sync >/dev/null
  "${run[@]}" "$pgbin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
  PG_STOP=("${run[@]}" "$pgbin/pg_ctl" -D "$PG_DIR/data" -m fast stop)
  export IMGSIM_TEST_DATABASE_URL="postgres://imgsim@127.0.0.1:$port/imgsim"
  echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

imgsim_stop_postgres() {
  "${PG_STOP[@]}" >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
