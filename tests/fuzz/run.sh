#!/usr/bin/env bash
# Schema fuzzing of both GraphQL endpoints against the real server (README, "Fuzzing").
#
#   tests/fuzz/run.sh [--db sqlite|postgres] [--examples N] [--seed S] [-- fuzz.py options]
#
# Creates the Python venv if missing, builds and starts target/debug/api on a scratch database,
# then runs fuzz.py (which seeds data, fuzzes, and checks ledgerAudit), stops the server and
# drops the database. Exits non-zero on any failure. Without --seed a random seed is printed.
set -euo pipefail

DB=sqlite
EXAMPLES=${FUZZ_EXAMPLES:-200}
SEED=${FUZZ_SEED:-}
EXTRA=()
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --db) DB=${2:?--db needs sqlite or postgres}; shift 2 ;;
    --examples) EXAMPLES=${2:?--examples needs a number}; shift 2 ;;
    --seed) SEED=${2:?--seed needs a number}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$DB" in sqlite|postgres) ;; *) echo "--db must be sqlite or postgres" >&2; exit 2 ;; esac
[ -n "$SEED" ] || SEED=$(( (RANDOM << 15 | RANDOM) ))

FUZZ_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$FUZZ_DIR/../.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT_DIR=$TARGET_DIR/fuzz
mkdir -p "$OUT_DIR"

log() { printf '== fuzz: %s\n' "$*"; }

# The venv is rebuilt when requirements.txt changes.
VENV=$FUZZ_DIR/.venv
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$FUZZ_DIR/requirements.txt" "$VENV/.requirements"; then
  log "creating the venv in $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$FUZZ_DIR/requirements.txt"
  cp "$FUZZ_DIR/requirements.txt" "$VENV/.requirements"
fi

log "building the server"
cargo build --quiet -p api
BIN=$TARGET_DIR/debug/api

WORK=$(mktemp -d)
SERVER_PID=
PG_DB=
REDIS_PREFIX=
cleanup() {
  local status=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  [ -f "$WORK/server.log" ] && cp "$WORK/server.log" "$OUT_DIR/server-$DB.log"
  if [ -n "$PG_DB" ]; then
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ -n "$REDIS_PREFIX" ] && command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 --scan --pattern "${REDIS_PREFIX}*" 2>/dev/null \
      | xargs -r redis-cli -h 127.0.0.1 DEL >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADMIN_PASSWORD=fuzz-superadmin-password
OPERATOR_PASSWORD=fuzz-operator-password

export APP_ENV=test APP_HOST=127.0.0.1 APP_PORT="$PORT" SEED_DEMO_DATA=true JOBS_ENABLED=false
export ADMIN_BOOTSTRAP_PASSWORD=$ADMIN_PASSWORD RUST_LOG=${FUZZ_RUST_LOG:-warn}
# The fuzzer tests the logic, not the limiter: every limit is far above what a run sends.
# RATE_LIMITED and CAPTCHA_REQUIRED stay valid answers.
for limit in LOGIN_IP ADMIN_LOGIN_USERNAME MUTATION_MEMBER DRAW_MEMBER CHECKIN_DEVICE \
  SHARE_MEMBER TRANSFER_DEVICE EARN_MEMBER; do
  export "LIMIT_$limit=1000000/60s"
done
unset REDIS_URL
if [ "$DB" = sqlite ]; then
  export DATABASE_URL="sqlite://$WORK/fuzz.db?mode=rwc"
else
  PG_DB=loyalty_fuzz_$$
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$PG_DB?sslmode=disable"
  # PostgreSQL runs as in production, with Redis, when Redis answers.
  if redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    REDIS_PREFIX="fuzz:$$:"
    export REDIS_URL=${FUZZ_REDIS_URL:-redis://127.0.0.1:6379/} REDIS_KEY_PREFIX=$REDIS_PREFIX
  fi
fi
log "database $DB${REDIS_URL:+ + Redis}, port $PORT, seed $SEED, $EXAMPLES examples per endpoint and token kind"

# create-admin migrates, seeds the demo data and creates the bootstrap SUPERADMIN as it starts.
printf '%s\n' "$OPERATOR_PASSWORD" | "$BIN" create-admin fuzz-operator OPERATOR >"$WORK/server.log" 2>&1 \
  || { cat "$WORK/server.log" >&2; exit 1; }

"$BIN" >>"$WORK/server.log" 2>&1 &
SERVER_PID=$!

set +e
# Hypothesis keeps its cache (the Unicode tables) under target/, not in the work tree.
HYPOTHESIS_STORAGE_DIRECTORY=$OUT_DIR/hypothesis "$VENV/bin/python" "$FUZZ_DIR/fuzz.py" \
  --url "http://127.0.0.1:$PORT" \
  --examples "$EXAMPLES" --seed "$SEED" \
  --admin-user admin --admin-password "$ADMIN_PASSWORD" \
  --operator-user fuzz-operator --operator-password "$OPERATOR_PASSWORD" \
  --server-pid "$SERVER_PID" \
  --report "$OUT_DIR/report-$DB.json" \
  --label "$DB" \
  "${EXTRA[@]}"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  log "FAILED on $DB (seed $SEED); report $OUT_DIR/report-$DB.json, server log $OUT_DIR/server-$DB.log"
  log "reproduce: tests/fuzz/run.sh --db $DB --examples $EXAMPLES --seed $SEED"
fi
exit "$status"
