#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: rolesnap and Cloud Custodian (c7n-org) on the same emulated
# fleet with EC2 token buckets and 40 ms latency, then rolesnap at larger fleets.
#
#   bash bench/run.sh                      # everything (about 1.5 h on 2 cores)
#   BENCH_RUNS="rolesnap:1" bash bench/run.sh    # only some runs
#
# Environment:
#   BENCH_OUT          result folder (default bench/results/<UTC time>)
#   BENCH_RUNS         space-separated TOOL:SCALE[:BUCKET_SCALE][:nocopy][:nightly][:backuponly] (default below);
#                      nocopy = rolesnap backup --no-copy (snapshots and prune only);
#                      nightly = rolesnap's night 2 is one `backup --prune` (prune beside backup + copy);
#                      backuponly = only night 1's backup phase (rolesnap backup --no-copy, c7n-org's backup)
#   BENCH_TENANTS      tenants at scale 1 (default 3); scale N uses N x that many tenants
#   BENCH_INSTANCES    instances per tenant and region (default 200)
#   BENCH_LATENCY_MS   emulator latency per call (default 40)
#   BENCH_REGIONS      comma-separated, one or two (default us-east-1,us-west-2; with one, nothing is copied)
#   BENCH_BACKENDS     serve the fleet from N emulator processes behind tests/emulator/router.py
#                      (default 0: one server.py). The many-accounts fleets of BENCHMARKS.md:
#     BENCH_TENANTS=50 BENCH_INSTANCES=20 BENCH_BACKENDS=4 BENCH_RUNS="rolesnap:1:nightly c7n:1" bash bench/run.sh
#     BENCH_TENANTS=200 BENCH_INSTANCES=10 BENCH_REGIONS=us-east-1 BENCH_BACKENDS=4 BENCH_RUNS="rolesnap:1:nightly c7n:1" bash bench/run.sh
#   CARGO_TARGET_DIR   where rolesnap is built (default /work/bench-target if it exists,
#                      else target/bench), ROLESNAP_BIN to use a built binary as it is
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
OUT=${BENCH_OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)}
RUNS=${BENCH_RUNS:-"rolesnap:1:nightly rolesnap:1 c7n:1 rolesnap:1:nocopy rolesnap:10:nocopy rolesnap:3:nightly c7n:3"}
TENANTS=${BENCH_TENANTS:-3}
INSTANCES=${BENCH_INSTANCES:-200}
LATENCY=${BENCH_LATENCY_MS:-40}
REGIONS=${BENCH_REGIONS:-us-east-1,us-west-2}
BACKENDS=${BENCH_BACKENDS:-0}
C7N_VERSION=0.9.53
C7N_ORG_VERSION=0.6.52
VENV=$HERE/.venv-c7n
mkdir -p "$OUT"

say() { printf '== %s\n' "$*" >&2; }

# 1. the emulator's Python packages (moto 5.2.1)
if ! python3 -c 'import moto, sys; sys.exit(moto.__version__ != "5.2.1")' 2>/dev/null; then
    say "installing tests/emulator/requirements.txt"
    python3 -m pip install -q -r "$REPO/tests/emulator/requirements.txt"
fi

# 2. Cloud Custodian in a virtualenv of its own (its boto3 pins differ from moto's)
if [[ " $RUNS " == *" c7n:"* ]]; then
    if ! "$VENV/bin/c7n-org" --help >/dev/null 2>&1 ||
       [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("c7n"), m.version("c7n-org"))')" != "$C7N_VERSION $C7N_ORG_VERSION" ]]; then
        say "installing c7n==$C7N_VERSION c7n-org==$C7N_ORG_VERSION into $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q "c7n==$C7N_VERSION" "c7n-org==$C7N_ORG_VERSION"
    fi
fi

# 3. rolesnap, release build
if [[ -n "${ROLESNAP_BIN:-}" ]]; then
    BIN=$ROLESNAP_BIN
else
    if [[ -z "${CARGO_TARGET_DIR:-}" ]]; then
        if [[ -d /work/bench-target ]]; then export CARGO_TARGET_DIR=/work/bench-target
        else export CARGO_TARGET_DIR=$REPO/target/bench; fi
    fi
    say "cargo build --release -p rolesnap (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$REPO" && cargo build --release -p rolesnap)
    BIN=$CARGO_TARGET_DIR/release/rolesnap
fi

# 4. what ran where
# `rolesnap` is the binary's `--version`: its commit, "with changes not committed" when built
# from a changed tree. `git_rev` is the checkout's HEAD, which ROLESNAP_BIN need not be built from.
python3 - "$OUT/machine.json" "$BIN" "$VENV" "$REPO" <<'EOF'
import json, os, platform, subprocess, sys
def sh(*c):
    try:
        return subprocess.run(c, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e:
        return f"n/a ({e})"
out, binary, venv, repo = sys.argv[1:]
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
import moto, boto3
info = {
    "cpus": os.cpu_count(), "cpu_model": cpu, "mem_total_kib": int(mem), "kernel": platform.release(),
    "python": platform.python_version(), "moto": moto.__version__, "boto3_emulator_side": boto3.__version__,
    "rolesnap": sh(binary, "--version"), "rustc": sh("rustc", "--version"),
    "git_rev": sh("git", "-C", repo, "rev-parse", "HEAD"),
    "c7n": sh(os.path.join(venv, "bin", "python"), "-c",
              "import importlib.metadata as m; print(m.version('c7n'), m.version('c7n-org'), m.version('boto3'), m.version('botocore'))"),
    "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
}
json.dump(info, open(out, "w"), indent=1)
print(json.dumps(info, indent=1))
EOF

# 5. the runs
for run in $RUNS; do
    IFS=: read -r tool scale rest <<<"$run"
    bscale=1.0
    nocopy=""
    nightly=""
    backuponly=""
    for opt in ${rest//:/ }; do
        case $opt in
            nocopy) nocopy=--no-copy ;;
            nightly) nightly=--nightly ;;
            backuponly) backuponly=--backup-only ;;
            *) bscale=$opt ;;
        esac
    done
    tenants=$((TENANTS * scale))
    name="$tool-${scale}x"
    if [[ $BACKENDS -gt 0 || $REGIONS != us-east-1,us-west-2 ]]; then
        nreg=$(tr ',' '\n' <<<"$REGIONS" | wc -l)
        name="$tool-${tenants}t${nreg}r${INSTANCES}i"
        [[ $BACKENDS -gt 0 ]] && name="$name-router$BACKENDS"
    fi
    [[ "$bscale" != "1.0" ]] && name="$name-bs$bscale"
    [[ -n "$nocopy" ]] && name="$name-nocopy"
    [[ -n "$nightly" ]] && name="$name-nightly"
    [[ -n "$backuponly" ]] && name="$name-backuponly"
    # A configuration listed more than once keeps every run: -run2, -run3 ...
    n=1
    while [[ -e $OUT/$name$([[ $n -gt 1 ]] && echo "-run$n").json ]]; do n=$((n + 1)); done
    [[ $n -gt 1 ]] && name="$name-run$n"
    say "$name: $tenants tenants x regions $REGIONS x $INSTANCES instances, latency $LATENCY ms, bucket_scale $bscale, backends $BACKENDS $nocopy $nightly $backuponly"
    args=(--tool "$tool" --tenants "$tenants" --instances "$INSTANCES" --latency-ms "$LATENCY"
          --regions "$REGIONS" --backends "$BACKENDS"
          --bucket-scale "$bscale" --out "$OUT/$name.json" $nocopy $nightly $backuponly)
    if [[ $tool == rolesnap ]]; then args+=(--bin "$BIN"); else args+=(--c7n-org "$VENV/bin/c7n-org"); fi
    python3 "$HERE/bench.py" "${args[@]}" || say "$name failed (see $OUT/$name.work)"
done

# 6. tables
python3 "$HERE/report.py" "$OUT" | tee "$OUT/report.md"
say "results in $OUT"
