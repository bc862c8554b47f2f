#!/usr/bin/env bash
# rolesnap test suite: formatting, lints, the emulator self-test, all cargo tests.
#
#   bash scripts/test.sh
#
# Needs: cargo (with rustfmt and clippy; added through rustup when missing)
# and python3 with pip. Installs tests/emulator/requirements.txt when moto is
# missing or not the pinned version. The end-to-end tests start their own
# emulators on loopback; nothing talks to real AWS.
#
# Every step runs even when an earlier one failed; the summary at the end
# lists them, and the exit status is 1 if any failed (2 if the requirements
# could not be installed).
#
# Environment:
#   CARGO_TARGET_DIR   when unset and /work/cargo-target or
#                      ~/.cache/rolesnap-target exists, that directory is used
#   ROLESNAP_PYTHON    python interpreter for the emulator (default python3)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

export ROLESNAP_PYTHON="${ROLESNAP_PYTHON:-python3}"
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    for d in /work/cargo-target "${HOME:-/nonexistent}/.cache/rolesnap-target"; do
        if [ -d "$d" ]; then
            export CARGO_TARGET_DIR="$d"
            break
        fi
    done
fi
# Plain, uncoloured cargo output in CI logs.
if [ -n "${CI:-}" ]; then
    export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
fi

if [ -t 1 ]; then
    B=$'\e[1m' G=$'\e[32m' E=$'\e[31m' R=$'\e[0m'
else
    B='' G='' E='' R=''
fi

declare -a SUMMARY=()
FAILED=0
T0=$SECONDS

step() {
    local name="$1"
    shift
    printf '\n%s==> %s%s\n' "$B" "$name" "$R"
    local t=$SECONDS
    "$@"
    local rc=$?
    local dt=$((SECONDS - t))
    if [ "$rc" -eq 0 ]; then
        SUMMARY+=("$(printf '%sok  %s  %-50s %4ss' "$G" "$R" "$name" "$dt")")
    else
        SUMMARY+=("$(printf '%sFAIL%s  %-50s %4ss  (exit %s)' "$E" "$R" "$name" "$dt" "$rc")")
        FAILED=1
        printf '%s<== %s failed (exit %s)%s\n' "$E" "$name" "$rc" "$R"
    fi
}

# ---------------------------------------------------------------- setup
printf '%s==> environment%s\n' "$B" "$R"
command -v cargo >/dev/null 2>&1 || { echo "test: cargo not found" >&2; exit 2; }
for comp in rustfmt clippy; do
    sub="${comp#rust}"                      # rustfmt -> fmt, clippy -> clippy
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            echo "installing the $comp component with rustup"
            rustup component add "$comp" || { echo "test: cannot install $comp" >&2; exit 2; }
        else
            echo "test: cargo $sub is missing and rustup is not available" >&2
            exit 2
        fi
    fi
done
if ! bash scripts/emulator.sh deps; then
    echo "test: cannot install the emulator's Python requirements" >&2
    exit 2
fi
# The Kubernetes manifests' schema check (tests/e2e/deploy.rs): best effort;
# without the package that one check is skipped with a message.
if ! "$ROLESNAP_PYTHON" -c 'import kubernetes_validate' >/dev/null 2>&1; then
    "$ROLESNAP_PYTHON" -m pip install -q -r deploy/requirements-test.txt >/dev/null 2>&1 \
        || "$ROLESNAP_PYTHON" -m pip install -q --break-system-packages \
            -r deploy/requirements-test.txt >/dev/null 2>&1 \
        || echo "note: kubernetes-validate could not be installed; the manifests' schema check is skipped"
fi
echo "$(cargo --version); $(cargo fmt --version); $(cargo clippy --version)"
echo "$("$ROLESNAP_PYTHON" --version 2>&1), moto $("$ROLESNAP_PYTHON" -c 'import moto; print(moto.__version__)')"
echo "CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-(default: $ROOT/target)}  ROLESNAP_PYTHON=$ROLESNAP_PYTHON"

# ---------------------------------------------------------------- steps
step "cargo fmt --check" cargo fmt --check
step "cargo clippy --workspace --all-targets -D warnings" \
    cargo clippy --workspace --all-targets -- -D warnings
# Test output is also kept, to add up the counts for the closing line.
COUNTS="$(mktemp)"
trap 'rm -f "$COUNTS"' EXIT
selftest() { "$ROLESNAP_PYTHON" tests/emulator/selftest.py 2>&1 | tee -a "$COUNTS"; return "${PIPESTATUS[0]}"; }
cargotest() { cargo test --workspace 2>&1 | tee -a "$COUNTS"; return "${PIPESTATUS[0]}"; }
routertest() { "$ROLESNAP_PYTHON" tests/emulator/router_selftest.py 2>&1 | tee -a "$COUNTS"; return "${PIPESTATUS[0]}"; }
step "emulator self-test (tests/emulator/selftest.py)" selftest
step "many-accounts router self-test (tests/emulator/router_selftest.py)" routertest
step "cargo test --workspace" cargotest

# ---------------------------------------------------------------- summary
printf '\n%s==> summary (%ss)%s\n' "$B" "$((SECONDS - T0))" "$R"
printf '%s\n' "${SUMMARY[@]}"
# Every test of every runner, added up: "N passed, N failed" as the last line.
read -r PASSED NFAILED < <(awk '
    /^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
    END { print p + 0, f + 0 }' "$COUNTS")
if [ "$FAILED" -ne 0 ]; then
    echo "test: FAILED"
    echo "$PASSED passed, $NFAILED failed"
    exit 1
fi
echo "test: all passed"
echo "$PASSED passed, $NFAILED failed"
