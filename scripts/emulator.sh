#!/usr/bin/env bash
# Local AWS emulator for rolesnap (moto + the layer in tests/emulator).
#
#   eval "$(bash scripts/emulator.sh start)"   # install deps if needed, start, seed, export env
#   bash scripts/emulator.sh env               # print the export lines again
#   bash scripts/emulator.sh status            # running? on which port?
#   bash scripts/emulator.sh stop              # stop it
#   bash scripts/emulator.sh deps              # only install tests/emulator/requirements.txt if needed
#
# `start` prints only shell lines on stdout (unset/export, for eval); everything
# else goes to stderr. The exported AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
# are the emulator's fake admin key (IAM user rolesnap-admin in account
# 111111111111); AWS_ENDPOINT_URL points every AWS call at the emulator.
#
# Environment:
#   ROLESNAP_EMU_DIR   state directory (pid, port, logs, fixture.json);
#                      default target/emulator in the repository
#   ROLESNAP_PYTHON    python interpreter; default python3
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EMU_SRC="$ROOT/tests/emulator"
PY="${ROLESNAP_PYTHON:-python3}"
READY_TIMEOUT=60

# Resolve the state directory before anything changes directory.
EMU_DIR="${ROLESNAP_EMU_DIR:-$ROOT/target/emulator}"
case "$EMU_DIR" in /*) ;; *) EMU_DIR="$PWD/$EMU_DIR" ;; esac
PID_FILE="$EMU_DIR/server.pid"
PORT_FILE="$EMU_DIR/port"
LOG_FILE="$EMU_DIR/server.log"
SEED_LOG="$EMU_DIR/seed.log"
FIXTURE="$EMU_DIR/fixture.json"

say() { printf 'emulator: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The moto version pinned in requirements.txt (moto[server]==X.Y.Z).
pinned_moto() {
    sed -n 's/^[[:space:]]*moto\(\[[^]]*\]\)\{0,1\}[[:space:]]*==[[:space:]]*\([^[:space:];#]*\).*/\2/p' \
        "$EMU_SRC/requirements.txt" | head -n 1
}

# Installs the emulator's Python requirements unless moto is importable at the
# pinned version.
ensure_deps() {
    command -v "$PY" >/dev/null 2>&1 || die "$PY not found (set ROLESNAP_PYTHON)"
    local want have
    want="$(pinned_moto)"
    [ -n "$want" ] || die "no moto pin found in $EMU_SRC/requirements.txt"
    have="$("$PY" -c 'import moto; print(moto.__version__)' 2>/dev/null || true)"
    if [ "$have" = "$want" ]; then
        return 0
    fi
    if [ -n "$have" ]; then
        say "moto $have installed, requirements pin $want: installing"
    else
        say "moto not importable by $PY: installing tests/emulator/requirements.txt"
    fi
    local out
    if ! out="$("$PY" -m pip install -q -r "$EMU_SRC/requirements.txt" 2>&1)"; then
        if grep -q 'externally-managed-environment' <<<"$out"; then
            # Debian/Ubuntu system Python (PEP 668). This is a test-only
            # dependency; install it anyway, as pip suggests for containers.
            say "system Python is externally managed; retrying with --break-system-packages"
            out="$("$PY" -m pip install -q --break-system-packages -r "$EMU_SRC/requirements.txt" 2>&1)" || {
                printf '%s\n' "$out" >&2
                die "pip install failed"
            }
        else
            printf '%s\n' "$out" >&2
            die "pip install failed"
        fi
    fi
    [ -n "$out" ] && printf '%s\n' "$out" >&2
    have="$("$PY" -c 'import moto; print(moto.__version__)' 2>/dev/null || true)"
    [ "$have" = "$want" ] || die "after pip install, $PY imports moto '${have:-none}', expected $want"
    say "moto $have ready"
}

# Pid of our running server, or nothing. Checks the command line so that a
# recycled pid is never mistaken for the emulator.
running_pid() {
    [ -f "$PID_FILE" ] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/cmdline" ]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'server\.py' || return 1
    fi
    printf '%s\n' "$pid"
}

endpoint() {
    [ -s "$PORT_FILE" ] || return 1
    printf 'http://127.0.0.1:%s\n' "$(tr -d '[:space:]' <"$PORT_FILE")"
}

# GET /_harness/health; prints the server's pid. (python: no curl needed.)
health_pid() {
    "$PY" - "$1" <<'EOF' 2>/dev/null
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/_harness/health", timeout=5) as r:
    print(json.load(r)["pid"])
EOF
}

# The eval-able lines. The secret goes nowhere else.
print_env() {
    local ep="$1"
    [ -s "$FIXTURE" ] || die "no fixture at $FIXTURE"
    "$PY" - "$FIXTURE" "$ep" <<'EOF'
import json, shlex, sys
fixture, endpoint = sys.argv[1], sys.argv[2]
with open(fixture, encoding="utf-8") as f:
    admin = json.load(f)["admin"]
print("unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE")
for k, v in (
    ("AWS_ACCESS_KEY_ID", admin["access_key_id"]),
    ("AWS_SECRET_ACCESS_KEY", admin["secret_access_key"]),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ENDPOINT_URL", endpoint),
):
    print(f"export {k}={shlex.quote(v)}")
EOF
}

stop_pid() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    say "pid $pid did not stop after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

cmd_start() {
    local pid ep
    if pid="$(running_pid)"; then
        ep="$(endpoint)" || die "running (pid $pid) but $PORT_FILE is missing"
        [ -s "$FIXTURE" ] || die "running (pid $pid) but not seeded; run: $0 stop, then start"
        say "already running (pid $pid) at $ep; reusing it"
        print_env "$ep"
        return 0
    fi
    ensure_deps
    mkdir -p "$EMU_DIR"
    rm -f "$PID_FILE" "$PORT_FILE" "$FIXTURE"

    # Detached from our stdout: `eval "$(... start)"` must not wait for the server.
    nohup "$PY" "$EMU_SRC/server.py" --port 0 --ready-file "$PORT_FILE" \
        </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$PID_FILE"

    local waited=0
    until [ -s "$PORT_FILE" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            say "server exited before it was ready; last lines of $LOG_FILE:"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        if [ "$waited" -ge $((READY_TIMEOUT * 10)) ]; then
            say "not ready after ${READY_TIMEOUT}s; last lines of $LOG_FILE:"
            tail -n 20 "$LOG_FILE" >&2 || true
            stop_pid "$pid"
            rm -f "$PID_FILE"
            exit 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    ep="$(endpoint)"
    local hp
    hp="$(health_pid "$ep" || true)"
    if [ "$hp" != "$pid" ]; then
        stop_pid "$pid"
        rm -f "$PID_FILE"
        die "health check at $ep failed (answered pid '${hp:-none}', started $pid)"
    fi
    say "server pid $pid ready at $ep (log: $LOG_FILE)"

    if ! "$PY" "$EMU_SRC/seed.py" --endpoint "$ep" --out "$FIXTURE" >"$SEED_LOG" 2>&1; then
        say "seeding failed; last lines of $SEED_LOG:"
        tail -n 20 "$SEED_LOG" >&2 || true
        stop_pid "$pid"
        rm -f "$PID_FILE"
        exit 1
    fi
    say "$(tail -n 1 "$SEED_LOG")"
    if [ -t 1 ]; then
        say "the lines below are for eval: eval \"\$(bash scripts/emulator.sh start)\""
    fi
    print_env "$ep"
}

cmd_env() {
    local pid ep
    pid="$(running_pid)" || die "not running (state directory $EMU_DIR)"
    ep="$(endpoint)" || die "running (pid $pid) but $PORT_FILE is missing"
    print_env "$ep"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        echo "running: pid $pid, endpoint $(endpoint || echo '?'), fixture $FIXTURE, log $LOG_FILE"
    else
        echo "not running (state directory $EMU_DIR)"
        return 1
    fi
}

cmd_stop() {
    local pid
    if pid="$(running_pid)"; then
        stop_pid "$pid"
        say "stopped pid $pid"
    else
        say "not running"
    fi
    rm -f "$PID_FILE"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    status) cmd_status ;;
    deps) ensure_deps ;;
    *)
        sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
