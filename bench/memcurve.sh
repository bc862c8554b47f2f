#!/usr/bin/env bash
# Peak RSS of one agent's backup against fleet size (BENCHMARKS.md, "Memory against fleet
# size"): for each size, a fresh many-accounts emulator (tests/emulator/router.py, no token
# buckets, no latency), a seeded fleet of TENANTS x 2 regions x 200 instances (2 volumes
# each), then `rolesnap -q backup --no-copy` under GNU time. One JSON line per size.
#
#   bash bench/memcurve.sh 25 75 250          # 10 000, 30 000 and 100 000 instances
#   MEMCURVE_INSTANCES=200 MEMCURVE_BACKENDS=4 ROLESNAP_BIN=/path/to/rolesnap bash bench/memcurve.sh 25
#
# Output: bench/results/memcurve-<UTC time>/curve.jsonl (or MEMCURVE_OUT); the work folders
# (fixture, logs, state) are kept beside it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
INSTANCES=${MEMCURVE_INSTANCES:-200}
BACKENDS=${MEMCURVE_BACKENDS:-4}
BIN=${ROLESNAP_BIN:-${CARGO_TARGET_DIR:-/work/bench-target}/release/rolesnap}
OUT=${MEMCURVE_OUT:-$HERE/results/memcurve-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
mkdir -p "$OUT"
[[ $# -gt 0 ]] || set -- 25 75 250
EPID=
trap '[[ -n $EPID ]] && kill $EPID 2>/dev/null || true' EXIT

for TENANTS in "$@"; do
    W=$OUT/$TENANTS-tenants
    rm -rf "$W"
    mkdir -p "$W"
    python3 "$REPO/tests/emulator/router.py" --backends "$BACKENDS" --port 0 --ready-file "$W/port" \
        --workdir "$W/backends" >"$W/router.out" 2>"$W/router.log" &
    EPID=$!
    while [[ ! -s $W/port ]]; do
        kill -0 $EPID 2>/dev/null || { echo "router did not start (see $W/router.log)" >&2; exit 1; }
        sleep 0.5
    done
    EP=http://127.0.0.1:$(cat "$W/port")
    t0=$SECONDS
    python3 "$REPO/tests/emulator/seed.py" --endpoint "$EP" --out "$W/fx.json" --profile fleet \
        --tenants "$TENANTS" --instances "$INSTANCES" --workers $((BACKENDS * 4)) >/dev/null
    seed_s=$((SECONDS - t0))
    python3 - "$W" "$HERE" <<'EOF'
import json, sys
w, here = sys.argv[1:]
sys.path.insert(0, here)
import bench
fx = json.load(open(f"{w}/fx.json"))
bench.write_rolesnap_files(fx, w)
a = fx["admin"]
open(f"{w}/env.sh", "w").write(
    f"export AWS_ACCESS_KEY_ID={a['access_key_id']}\nexport AWS_SECRET_ACCESS_KEY={a['secret_access_key']}\n"
    "export AWS_REGION=us-east-1\nexport AWS_EC2_METADATA_DISABLED=true\n")
EOF
    # shellcheck disable=SC1091
    . "$W/env.sh"
    curl -s -X DELETE "$EP/_harness/calls" >/dev/null
    while [[ ! -x $BIN ]]; do sleep 5; done   # seeding may start while rolesnap still builds
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    t0=$SECONDS
    (cd "$W" && /usr/bin/time -f "%M %e %U %S" -o "$W/backup.time" \
        "$BIN" --log-dir "$W/logs" --state-dir "$W/state" --endpoint-url "$EP" -q \
        backup -p plan.toml --no-copy >"$W/backup.out" 2>"$W/backup.err") || true
    read -r rss wall user sys <"$W/backup.time" || true
    curl -s "$EP/_harness/timing" >"$W/timing.json"
    curl -s "$EP/_harness/inventory" >"$W/inventory.json"
    python3 - "$W" "$TENANTS" "$INSTANCES" "$BACKENDS" "$seed_s" "$rss" "$wall" "$user" "$sys" "$load" "$BIN" >>"$OUT/curve.jsonl" <<'EOF'
import json, subprocess, sys
w, tenants, inst, backends, seed_s, rss, wall, user, sys_s, load, binary = sys.argv[1:]
fx = json.load(open(f"{w}/fx.json"))
t = json.load(open(f"{w}/timing.json"))
inv = json.load(open(f"{w}/inventory.json"))["totals"]
print(json.dumps({
    "instances": fx["totals"]["instances"], "tenants": int(tenants), "regions": 2,
    "instances_per_tenant_region": int(inst), "backends": int(backends), "seed_seconds": int(seed_s),
    "peak_rss_kib": int(rss), "peak_rss_mib": round(int(rss) / 1024, 1), "wall_seconds": float(wall),
    "cpu_seconds": round(float(user) + float(sys_s), 2), "load_before": load,
    "snapshots_made": inv["snapshots"], "emulator_requests": t.get("requests"),
    "backend_cpu_seconds": t.get("backend_cpu_seconds"), "rolesnap": subprocess.run(
        [binary, "--version"], capture_output=True, text=True).stdout.strip(),
}))
EOF
    tail -1 "$OUT/curve.jsonl"
    kill $EPID
    wait $EPID 2>/dev/null || true
    EPID=
done
echo "results in $OUT/curve.jsonl"
