#!/usr/bin/env bash
# Where rolesnap's memory goes (BENCHMARKS.md, "Memory"): peak RSS of discover, a dry run,
# a one-tenant backup and a whole-fleet backup over the same fleet, without token buckets
# or latency.
#
#   bash bench/memprobe.sh [TENANTS] [INSTANCES]      (default 9 x 200 = 3 600 instances)
#   ROLESNAP_BIN=/path/to/rolesnap bash bench/memprobe.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
TENANTS=${1:-9}
INSTANCES=${2:-200}
BIN=${ROLESNAP_BIN:-${CARGO_TARGET_DIR:-/work/bench-target}/release/rolesnap}
W=$(mktemp -d /tmp/rolesnap-memprobe.XXXXXX)

python3 "$REPO/tests/emulator/server.py" --port 0 --ready-file "$W/port" >"$W/server.out" 2>"$W/server.log" &
EPID=$!
trap 'kill $EPID 2>/dev/null || true' EXIT
while [[ ! -s $W/port ]]; do sleep 0.2; done
EP=http://127.0.0.1:$(cat "$W/port")
python3 "$REPO/tests/emulator/seed.py" --endpoint "$EP" --out "$W/fx.json" --profile fleet \
    --tenants "$TENANTS" --instances "$INSTANCES" --fleet-rds >/dev/null
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
cd "$W"
R=("$BIN" --log-dir "$W/logs" --state-dir "$W/state" --endpoint-url "$EP")
run() {
    local name=$1
    shift
    /usr/bin/time -f "%M" -o "$W/$name.rss" "$@" >"$W/$name.out" 2>"$W/$name.err" || true
    printf '%-34s peak RSS %6.1f MB\n' "$name" "$(awk '{print $1/1024}' "$W/$name.rss")"
}
echo "fleet: $TENANTS tenants x 2 regions x $INSTANCES instances"
run discover "${R[@]}" discover -p plan.toml
run "backup --dry-run -o json" "${R[@]}" -o json backup -p plan.toml --dry-run --no-copy
run "backup -t t001 (1 tenant)" "${R[@]}" -q backup -p plan.toml --no-copy -t t001
run "backup (all tenants)" "${R[@]}" -q backup -p plan.toml --no-copy
run "backup -o json (all tenants)" "${R[@]}" -o json backup -p plan.toml --no-copy
echo "work dir: $W"
