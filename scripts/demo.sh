#!/usr/bin/env bash
# rolesnap demo against the local AWS emulator; no real AWS account is touched.
#
#   bash scripts/demo.sh
#
# Needs: a Rust toolchain (cargo) and python3 with pip. It builds rolesnap
# (debug), installs the emulator's Python requirements if needed, starts and
# seeds the emulator (admin account 111111111111, tenants alpha and beta), runs
# validate and discover on plans/nightly-ec2-rds.toml, then backup (with its copy job),
# list, a prune dry run 30 days ahead, and jobs; shows the logs, and stops the
# emulator on exit.
#
# Environment: ROLESNAP_DEMO_LOG_DIR (default target/demo-logs),
# ROLESNAP_DEMO_STATE_DIR (job ledger, default target/demo-state),
# ROLESNAP_EMU_DIR (default target/demo-emulator), ROLESNAP_PYTHON (python3),
# CARGO_TARGET_DIR (see scripts/test.sh). Logs and ledger start empty each run.
#
# Exit status: 0 when every rolesnap command exited 0, 1 otherwise (all
# commands still run), 2 when the build or the emulator could not start.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

PLAN="plans/nightly-ec2-rds.toml"
LOG_DIR="${ROLESNAP_DEMO_LOG_DIR:-$ROOT/target/demo-logs}"
STATE_DIR="${ROLESNAP_DEMO_STATE_DIR:-$ROOT/target/demo-state}"
export ROLESNAP_EMU_DIR="${ROLESNAP_EMU_DIR:-$ROOT/target/demo-emulator}"

if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    for d in /work/cargo-target "${HOME:-/nonexistent}/.cache/rolesnap-target"; do
        if [ -d "$d" ]; then
            export CARGO_TARGET_DIR="$d"
            break
        fi
    done
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/rolesnap"

if [ -t 1 ]; then
    B=$'\e[1m' R=$'\e[0m'
else
    B='' R=''
fi
section() { printf '\n%s== %s%s\n' "$B" "$*" "$R"; }

# ---------------------------------------------------------------- build
section "build rolesnap (debug)"
command -v cargo >/dev/null 2>&1 || { echo "demo: cargo not found; install Rust (https://rustup.rs)" >&2; exit 2; }
if ! cargo build --bin rolesnap; then
    echo "demo: cargo build failed" >&2
    exit 2
fi
echo "binary: $BIN ($("$BIN" --version))"

# ---------------------------------------------------------------- emulator
section "start and seed the emulator"
# shellcheck disable=SC2329  # called by the EXIT trap
cleanup() { bash "$ROOT/scripts/emulator.sh" stop || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# A previous demo that was killed hard may have left its emulator running.
bash scripts/emulator.sh stop 2>/dev/null || true
if ! ENV_LINES="$(bash scripts/emulator.sh start)"; then
    echo "demo: the emulator did not start (see messages above)" >&2
    exit 2
fi
eval "$ENV_LINES"
unset ENV_LINES
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL  AWS_REGION=$AWS_REGION  (admin key of IAM user rolesnap-admin, account 111111111111)"
echo "fixture: $ROLESNAP_EMU_DIR/fixture.json   emulator log: $ROLESNAP_EMU_DIR/server.log"

# ---------------------------------------------------------------- rolesnap
# Fresh logs and job ledger: the emulator starts empty too.
rm -rf "$LOG_DIR" "$STATE_DIR"
mkdir -p "$LOG_DIR" "$STATE_DIR"
export ROLESNAP_LOG_DIR="$LOG_DIR"
export ROLESNAP_STATE_DIR="$STATE_DIR"   # job ledger (used by backup and jobs)

declare -a RESULTS=()
FAILED=0
run() {
    section "rolesnap $*"
    "$BIN" "$@"
    local rc=$?
    RESULTS+=("$(printf '%-4s rolesnap %s' "$rc" "$*")")
    if [ "$rc" -ne 0 ]; then
        FAILED=1
        echo "demo: 'rolesnap $*' exited $rc (0 done, 1 done with errors, 2 usage/config error, 3 failed, 4 busy, 5 refused)"
    fi
    return 0
}

run validate --plan "$PLAN"
run discover --plan "$PLAN"

# The main job: a backup (and its cross-region copy job), then what it made.
run backup --plan "$PLAN"
run list --plan "$PLAN"
# What Data Aging would decide 30 days from now, without deleting anything.
run prune --plan "$PLAN" --dry-run --as-of "$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)"
run jobs

# ---------------------------------------------------------------- logs
section "logs in $LOG_DIR"
ls -l "$LOG_DIR"
for f in cvd.log vsdiscovery.log; do
    printf '\n%s-- last lines of %s%s\n' "$B" "$f" "$R"
    if [ -f "$LOG_DIR/$f" ]; then
        tail -n 8 "$LOG_DIR/$f"
    else
        echo "(no $f)"
    fi
done
if [ -f "$LOG_DIR/vsbkp.log" ]; then
    printf '\n%s-- last lines of vsbkp.log%s\n' "$B" "$R"
    tail -n 8 "$LOG_DIR/vsbkp.log"
fi

# DESIGN: no secret ever appears in a log. Check for the admin secret key
# without printing it.
if grep -rqF -- "$AWS_SECRET_ACCESS_KEY" "$LOG_DIR" 2>/dev/null; then
    echo "demo: ERROR: the admin secret access key appears in $LOG_DIR"
    FAILED=1
else
    echo
    echo "secret check: the admin secret access key appears in no file under $LOG_DIR"
fi

# ---------------------------------------------------------------- summary
section "summary (exit code, command)"
printf '%s\n' "${RESULTS[@]}"
echo "logs: $LOG_DIR   (GxTail format; e.g. tail -f $LOG_DIR/cvd.log)"
echo "job ledger: $STATE_DIR"
if [ "$FAILED" -ne 0 ]; then
    echo "demo: finished, but not every step exited 0 (see above)"
    exit 1
fi
echo "demo: done; the emulator is stopped on exit"
exit 0
