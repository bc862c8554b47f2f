#!/usr/bin/env python3
"""One benchmark run: a fresh emulator, a seeded fleet, two nights of backups
(snapshot + cross-region copy), ageing of the first night, and a prune.

    python3 bench/bench.py --tool rolesnap --tenants 3 --instances 200 \
        --bin /work/bench-target/release/rolesnap --out results/rolesnap-1x.json
    python3 bench/bench.py --tool c7n --tenants 3 --instances 200 \
        --c7n-org .venv-c7n/bin/c7n-org --out results/c7n-1x.json

Every phase is one command (rolesnap: `backup` = Snap Backup + Snap Copy,
`prune`; c7n: one `c7n-org run` per policy file), run under /usr/bin/time -v
while the process tree's RSS is sampled. Before each measured command the
token buckets are refilled (switching them off and on) and the call log is
cleared; after it the call log, the per-bucket counters and the time spent
inside moto are read. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
EMU = os.path.join(REPO, "tests", "emulator")
REGIONS = ["us-east-1", "us-west-2"]
RDS_REGION = "us-east-1"
DAY = 86400

# EC2 token buckets (size, refill/s), the same table as tests/emulator/server.py
BUCKETS = {
    "describe": (100.0, 20.0),
    "describe-unfiltered": (50.0, 10.0),
    "mutating": (50.0, 5.0),
    "CreateSnapshot": (100.0, 5.0),
    "DeleteSnapshot": (100.0, 5.0),
    "CreateVolume": (100.0, 5.0),
    "DeregisterImage": (100.0, 5.0),
    "CopySnapshot": (100.0, 5.0),
    "CreateImage": (100.0, 5.0),
    "CopyImage": (100.0, 1.0),
    "CreateTags": (100.0, 10.0),
}


# ---------------------------------------------------------------------------
# emulator
# ---------------------------------------------------------------------------


class Emulator:
    def __init__(self, workdir: str, backends: int = 0) -> None:
        self.workdir = workdir
        ready = os.path.join(workdir, "emulator.port")
        self.log = open(os.path.join(workdir, "emulator.log"), "w")
        if backends > 0:
            # tests/emulator/router.py: `backends` server.py processes, accounts spread over them
            cmd = [sys.executable, os.path.join(EMU, "router.py"), "--backends", str(backends),
                   "--workdir", os.path.join(workdir, "backends")]
        else:
            cmd = [sys.executable, os.path.join(EMU, "server.py")]
        self.proc = subprocess.Popen(
            cmd + ["--port", "0", "--ready-file", ready],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            raise SystemExit(f"emulator did not start: {line!r} (see {self.log.name})")
        self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"

    def h(self, method: str, path: str, body: Any = None, timeout: float = 600) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"{}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------------------
# measuring a command
# ---------------------------------------------------------------------------


def tree_rss_kib(root: int) -> int:
    """Sum of VmRSS of `root` and all its descendants (KiB)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            with open(f"/proc/{d}/status") as f:
                m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
            children.setdefault(ppid, []).append(int(d))
            rss[int(d)] = int(m.group(1)) if m else 0
        except (OSError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def parse_time_v(path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with open(path) as f:
        text = f.read()
    for key, pat in (
        ("user_seconds", r"User time \(seconds\): ([\d.]+)"),
        ("system_seconds", r"System time \(seconds\): ([\d.]+)"),
        ("max_rss_kib", r"Maximum resident set size \(kbytes\): (\d+)"),
        ("exit_status", r"Exit status: (\d+)"),
    ):
        m = re.search(pat, text)
        if m:
            out[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    if "user_seconds" in out and "system_seconds" in out:
        out["cpu_seconds"] = round(out["user_seconds"] + out["system_seconds"], 2)
    return out


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def run_measured(name: str, cmd: list[str], env: dict[str, str], workdir: str, emu: Emulator) -> dict[str, Any]:
    """Refill buckets, clear the call log, run `cmd`, collect everything."""
    emu.h("POST", "/_harness/config", {"token_buckets": False})
    emu.h("POST", "/_harness/config", {"token_buckets": True})  # full buckets
    emu.h("DELETE", "/_harness/calls")  # also resets /_harness/timing
    tfile = os.path.join(workdir, f"{name}.time")
    out_path = os.path.join(workdir, f"{name}.stdout")
    err_path = os.path.join(workdir, f"{name}.stderr")
    load_before = loadavg()
    peak = [0]
    t0 = time.time()
    started = t0
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", tfile, *cmd], stdout=out, stderr=err, env=env, cwd=workdir)
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], tree_rss_kib(proc.pid))
                stop.wait(0.25)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        rc = proc.wait()
        stop.set()
        th.join()
    wall = time.time() - t0
    calls = emu.h("GET", "/_harness/calls")
    buckets = emu.h("GET", "/_harness/buckets")["buckets"]
    timing = emu.h("GET", "/_harness/timing")
    res = {
        "phase": name,
        "started": started,
        "command": cmd,
        "exit_code": rc,
        "wall_seconds": round(wall, 2),
        "tree_peak_rss_kib": peak[0],
        "load_before": load_before,
        "load_after": loadavg(),
        "time_v": parse_time_v(tfile),
        "calls": calls["calls"],
        "calls_total": calls["total"],
        "buckets": buckets,
        "emulator": {k: timing[k] for k in ("requests", "moto_seconds", "lock_wait_seconds", "moto_busy_fraction", "wall_seconds",
                                             "moto_busy_fraction_mean", "backend_cpu_seconds", "backends", "router")
                     if k in timing},
        "emulator_by_action": timing["by_action"],
        "stdout": out_path,
        "stderr": err_path,
    }
    res["summary"] = summarize_calls(calls["calls"])
    res["bucket_slack"] = bucket_slack(buckets)
    print(f"  {name}: exit {rc}, wall {wall:.1f} s, {calls['total']} calls "
          f"({res['summary']['throttled']} throttled), moto busy {timing['moto_busy_fraction']:.0%}", flush=True)
    return res


def bucket_slack(buckets: list[dict[str, Any]]) -> dict[str, Any]:
    """Per create/copy/delete bucket kind: the fewest tokens a call left in any account x
    region's bucket (how close the client came to a throttle), and the most time one sat
    full after its first call (refill lost: time lost only where the calls waited for the
    refill, as in a region with more creates than its bucket holds)."""
    out: dict[str, Any] = {}
    for b in buckets:
        if b["bucket"] in ("describe", "describe-unfiltered", "mutating") or "min_tokens" not in b:
            continue
        row = out.setdefault(b["bucket"], {"buckets": 0, "min_tokens": b["size"], "max_lost_refill_seconds": 0.0})
        row["buckets"] += 1
        row["min_tokens"] = min(row["min_tokens"], b["min_tokens"])
        row["max_lost_refill_seconds"] = max(row["max_lost_refill_seconds"], b["lost_refill_seconds"])
    return out


def summarize_calls(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_action: dict[str, dict[str, int]] = {}
    for r in rows:
        a = by_action.setdefault(f"{r['service']}:{r['action']}", {})
        a[r["outcome"]] = a.get(r["outcome"], 0) + r["count"]
    total = sum(r["count"] for r in rows)
    throttled = sum(r["count"] for r in rows if r["outcome"] == "throttled")
    errors = sum(r["count"] for r in rows if r["outcome"] in ("error", "denied", "injected", "expired"))
    ec2_describes = sum(r["count"] for r in rows if r["service"] == "ec2" and r["action"].startswith("Describe"))
    ec2_describes_ok = sum(r["count"] for r in rows if r["service"] == "ec2" and r["action"].startswith("Describe") and r["outcome"] == "ok")
    return {
        "total": total,
        "throttled": throttled,
        "errors": errors,
        "throttled_fraction": round(throttled / total, 4) if total else 0.0,
        "ec2_describes": ec2_describes,
        "ec2_describes_ok": ec2_describes_ok,
        "by_action": dict(sorted(by_action.items())),
    }


def ok_count(summary: dict[str, Any], action: str) -> int:
    return summary["by_action"].get(action, {}).get("ok", 0)


# ---------------------------------------------------------------------------
# lower bound from token buckets
# ---------------------------------------------------------------------------


def bound(calls_per_account_region: dict[str, int], scale: float) -> dict[str, Any]:
    """Per bucket: max(0, (calls - size) / refill); the slowest bucket bounds the account x region."""
    rows = []
    for b, n in calls_per_account_region.items():
        size, refill = BUCKETS[b]
        refill *= scale
        rows.append({"bucket": b, "calls": n, "size": size, "refill": refill,
                     "seconds": round(max(0.0, (n - size) / refill), 2)})
    worst = max(rows, key=lambda r: r["seconds"]) if rows else None
    return {"buckets": rows, "seconds": worst["seconds"] if worst else 0.0, "bucket": worst["bucket"] if worst else None}


def ideal_bounds(instances: int, volumes: int, scale: float, copy: bool = True) -> dict[str, Any]:
    """The least EC2 work of each phase in one account x region (every account x region
    of the fleet is alike and they run in parallel)."""
    sets = instances                     # one CreateSnapshots per instance
    copies = instances * volumes if copy else 0   # one CopySnapshot per snapshot, into this region
    deletes = instances * volumes + copies        # night 1 originals here + night 1 copies into here
    b = {
        "backup": bound({"CreateSnapshot": sets}, scale),
        "copy": bound({"CopySnapshot": copies}, scale),
        "prune": bound({"DeleteSnapshot": deletes}, scale),
    }
    b["night_sequential"] = round(b["backup"]["seconds"] + b["copy"]["seconds"] + b["prune"]["seconds"], 2)
    # copy must follow the backup it copies; the prune can run beside both
    b["night_overlapped"] = max(round(b["backup"]["seconds"] + b["copy"]["seconds"], 2), b["prune"]["seconds"])
    return b


def as_called_bound(buckets: list[dict[str, Any]], scale: float) -> dict[str, Any]:
    """The same bound from the calls a tool actually got through (taken tokens), per
    account x region; the slowest account x region."""
    per: dict[tuple[str, str], dict[str, int]] = {}
    for b in buckets:
        per.setdefault((b["account"], b["region"]), {})[b["bucket"]] = b["taken"]
    worst: dict[str, Any] = {"seconds": 0.0}
    for (a, r), calls in per.items():
        x = bound(calls, scale)
        if x["seconds"] >= worst["seconds"]:
            worst = {"account": a, "region": r, **x}
    return worst


# ---------------------------------------------------------------------------
# configuration files
# ---------------------------------------------------------------------------


def write_rolesnap_files(fx: dict[str, Any], workdir: str) -> str:
    acc = ['[admin]', 'region = "us-east-1"', ""]
    for t in fx["tenants"]:
        acc += ["[[tenant]]", f'name = "{t["name"]}"', f'role-arn = "{t["role_arn"]}"',
                f'external-id = "{t["external_id"]}"', f'regions = {json.dumps(t["regions"])}', ""]
    with open(os.path.join(workdir, "accounts.toml"), "w") as f:
        f.write("\n".join(acc))
    names = json.dumps([t["name"] for t in fx["tenants"]])
    # each region is copied to the other one (none with one region)
    copies = "".join(f'[[copy]]\nregion = "{r}"\n\n' for r in reversed(REGIONS)) if len(REGIONS) == 2 else ""
    plan = f'''# rolesnap benchmark plan (bench/bench.py)
accounts = "accounts.toml"

[plan]
name = "bench-nightly"
id = 7
method = "snapshot-set"
wait-timeout-minutes = 120

[retention]
days = 7
allow-delete-last = false

{copies}[[group]]
name = "all"
tenants = {names}
regions = {json.dumps(REGIONS)}
ec2 = true
rds = true
rds-instances = ["*"]
aurora = true
aurora-clusters = ["*"]
'''
    path = os.path.join(workdir, "plan.toml")
    with open(path, "w") as f:
        f.write(plan)
    return path


def write_c7n_files(fx: dict[str, Any], workdir: str) -> dict[str, str]:
    lines = ["accounts:"]
    for t in fx["tenants"]:
        lines += [f"- account_id: '{t['account']}'", f"  name: {t['name']}",
                  f"  regions: {json.dumps(t['regions'])}", f"  role: {t['role_arn']}",
                  f"  external_id: {t['external_id']}"]
    with open(os.path.join(workdir, "c7n-accounts.yml"), "w") as f:
        f.write("\n".join(lines) + "\n")

    def region_is(r: str) -> str:
        return f"  conditions:\n  - type: value\n    key: region\n    value: {r}\n"

    other = {REGIONS[0]: REGIONS[1], REGIONS[1]: REGIONS[0]} if len(REGIONS) == 2 else {}
    backup = "policies:\n"
    for r in REGIONS:
        # the region tag tells originals from copies (c7n's copy keeps the source's tags)
        backup += (f"- name: ec2-snapshot-{r}\n  resource: ec2\n{region_is(r)}"
                   f"  actions:\n  - type: snapshot\n    copy-tags: [Name]\n"
                   f"    tags: {{custodian_snapshot: nightly, bench_origin: {r}}}\n")
    backup += (f"- name: rds-snapshot\n  resource: rds\n{region_is(RDS_REGION)}  actions:\n  - snapshot\n"
               f"- name: rds-cluster-snapshot\n  resource: rds-cluster\n{region_is(RDS_REGION)}  actions:\n  - snapshot\n")
    copy = "policies:\n"
    for r in (REGIONS if other else []):
        copy += (f"- name: ebs-copy-{r}\n  resource: ebs-snapshot\n{region_is(r)}"
                 f"  filters:\n  - 'tag:bench_origin': {r}\n  - type: age\n    days: 1\n    op: lt\n"
                 f"  actions:\n  - type: copy\n    target_region: {other[r]}\n    encrypted: false\n")
    copy += "" if not other else (f"- name: rds-copy\n  resource: rds-snapshot\n{region_is(RDS_REGION)}"
             f"  filters:\n  - SnapshotType: manual\n  - type: age\n    days: 1\n    op: lt\n"
             f"  actions:\n  - type: region-copy\n    target_region: {other[RDS_REGION]}\n"
             f"- name: rds-cluster-copy\n  resource: rds-cluster-snapshot\n{region_is(RDS_REGION)}"
             f"  filters:\n  - SnapshotType: manual\n  - type: age\n    days: 1\n    op: lt\n"
             f"  actions:\n  - type: region-copy\n    target_region: {other[RDS_REGION]}\n")
    prune = ("policies:\n"
             "- name: ebs-prune\n  resource: ebs-snapshot\n"
             "  filters:\n  - 'tag:custodian_snapshot': present\n  - type: age\n    days: 7\n    op: ge\n"
             "  actions:\n  - delete\n"
             "- name: rds-prune\n  resource: rds-snapshot\n"
             "  filters:\n  - SnapshotType: manual\n  - type: age\n    days: 7\n    op: ge\n"
             "  actions:\n  - delete\n"
             "- name: rds-cluster-prune\n  resource: rds-cluster-snapshot\n"
             "  filters:\n  - SnapshotType: manual\n  - type: age\n    days: 7\n    op: ge\n"
             "  actions:\n  - delete\n")
    paths = {}
    for name, text in (("backup", backup), ("copy", copy if other else "policies: []\n"), ("prune", prune)):
        paths[name] = os.path.join(workdir, f"c7n-{name}.yml")
        with open(paths[name], "w") as f:
            f.write(text)
    return paths


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def inventory(emu: Emulator) -> dict[str, Any]:
    return emu.h("GET", "/_harness/inventory")["totals"]


def backup_timeline(log: str, ph: dict[str, Any]) -> dict[str, Any]:
    """Seconds from the command's start to the Snap Backup job's milestones, from rolesnap's
    vsbkp.log (whole seconds: the log's resolution): roles assumed, first and last create
    asked, last create answered, last point confirmed complete, job end."""
    jobs = {r["job"] for r in ph.get("reports", []) if r.get("job_type") == "Snap Backup"}
    t0 = ph["started"]
    marks: dict[str, float] = {}
    year = time.gmtime(t0).tm_year
    try:
        lines = open(log, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return {}
    for line in lines:
        f = line.split(None, 5)
        if len(f) < 6 or not f[4].isdigit() or int(f[4]) not in jobs:
            continue
        try:
            at = calendar.timegm(time.strptime(f"{year}/{f[2]} {f[3]}", "%Y/%m/%d %H:%M:%S"))
        except ValueError:
            continue
        rel = round(at - t0, 1)
        m = f[5]
        if "Assumed role" in m:
            marks["roles_assumed"] = rel
        elif "CreateSnapshots for" in m or "CreateDBSnapshot [" in m or "CreateDBClusterSnapshot [" in m:
            marks.setdefault("first_create", rel)
            marks["last_create_asked"] = rel
        elif "Created snapshot set" in m:
            marks["last_create_answered"] = rel
        elif "completed in" in m:
            marks.setdefault("first_completed", rel)
            marks["last_completed"] = rel
        elif " - Job [" in m and " item(s) done" in m:
            marks["job_end"] = rel
    return marks


def rolesnap_reports(path: str) -> list[dict[str, Any]]:
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError):
        return []
    return doc if isinstance(doc, list) else [doc]


def report_summary(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in reports:
        st: dict[str, int] = {}
        for i in r.get("items", []):
            st[i["status"]] = st.get(i["status"], 0) + 1
        errs = sorted({(i.get("error") or "")[:200] for i in r.get("items", []) if i.get("error")})[:5]
        out.append({"job": r.get("job"), "job_type": r.get("job_type"), "status": r.get("status"),
                    "seconds": (r["end"] - r["start"]) if "end" in r and "start" in r else None,
                    "items": st, "first_errors": errs})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=["rolesnap", "c7n"], required=True)
    ap.add_argument("--tenants", type=int, default=3)
    ap.add_argument("--instances", type=int, default=200, help="per tenant and region")
    ap.add_argument("--latency-ms", type=float, default=40)
    ap.add_argument("--bucket-scale", type=float, default=1.0)
    ap.add_argument("--bin", default=os.path.join(REPO, "target", "release", "rolesnap"))
    ap.add_argument("--c7n-org", default=os.path.join(HERE, ".venv-c7n", "bin", "c7n-org"))
    ap.add_argument("--poll-interval", type=float, default=2.0)
    ap.add_argument("--workdir", help="default: a folder beside --out")
    ap.add_argument("--out", required=True, help="result JSON")
    ap.add_argument("--regions", default=",".join(REGIONS),
                    help="comma-separated, one or two (with two, each is copied to the other)")
    ap.add_argument("--backends", type=int, default=0,
                    help="serve the fleet from this many emulator processes behind tests/emulator/router.py "
                         "(accounts spread over them); 0 = one server.py")
    ap.add_argument("--no-copy", action="store_true",
                    help="rolesnap only: backup --no-copy (snapshots and prune, no cross-region copies)")
    ap.add_argument("--nightly", action="store_true",
                    help="rolesnap only: night 2 is one `backup --prune` (the scheduled run: prune beside "
                         "backup + copy) instead of `backup` then `prune`")
    ap.add_argument("--backup-only", action="store_true",
                    help="measure only night 1's backup phase: rolesnap `backup --no-copy`, c7n-org's backup "
                         "policy (issue 19's backup phase); nothing is aged, no night 2")
    args = ap.parse_args()
    REGIONS[:] = [r.strip() for r in args.regions.split(",") if r.strip()]
    if not 1 <= len(REGIONS) <= 2 or RDS_REGION not in REGIONS:
        ap.error(f"--regions: one or two regions, one of them {RDS_REGION}")
    no_copy = args.no_copy or len(REGIONS) == 1

    workdir = os.path.abspath(args.workdir or os.path.splitext(args.out)[0] + ".work")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    result: dict[str, Any] = {
        "tool": args.tool,
        "fleet": {"tenants": args.tenants, "regions": REGIONS, "instances_per_tenant_region": args.instances,
                  "volumes_per_instance": 2, "rds": "1 postgres + 1 Aurora cluster (1 member) per tenant, us-east-1"},
        "emulator_config": {"token_buckets": True, "latency_ms": args.latency_ms, "bucket_scale": args.bucket_scale,
                            "backends": args.backends},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "phases": [],
    }
    emu = Emulator(workdir, args.backends)
    try:
        t0 = time.time()
        fixture = os.path.join(workdir, "fixture.json")
        subprocess.run([sys.executable, os.path.join(EMU, "seed.py"), "--endpoint", emu.endpoint, "--out", fixture,
                        "--profile", "fleet", "--tenants", str(args.tenants), "--regions", ",".join(REGIONS),
                        "--instances", str(args.instances), "--fleet-rds"], check=True, stdout=subprocess.DEVNULL)
        with open(fixture) as f:
            fx = json.load(f)
        result["seed_seconds"] = round(time.time() - t0, 1)
        result["fleet"]["totals"] = fx["totals"]
        n_inst = fx["totals"]["instances"]
        print(f"{args.tool}: fleet {fx['totals']} seeded in {result['seed_seconds']} s", flush=True)
        emu.h("POST", "/_harness/config", {"latency_ms": args.latency_ms, "bucket_scale": args.bucket_scale})

        admin = fx["admin"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": admin["access_key_id"], "AWS_SECRET_ACCESS_KEY": admin["secret_access_key"],
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                    "AWS_ENDPOINT_URL": emu.endpoint, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": os.path.join(workdir, "no-aws-config"),
                    "AWS_SHARED_CREDENTIALS_FILE": os.path.join(workdir, "no-aws-credentials"),
                    "HOME": workdir})

        if args.tool == "rolesnap":
            plan = write_rolesnap_files(fx, workdir)
            base = [args.bin, "--log-dir", os.path.join(workdir, "logs"), "--state-dir", os.path.join(workdir, "state"),
                    "--endpoint-url", emu.endpoint, "-o", "json"]
            backup = base + ["backup", "-p", plan, "--poll-interval", str(args.poll_interval), "--wait-timeout", "7200"]
            b = "backup+copy"
            if no_copy or args.backup_only:
                backup.append("--no-copy")
                b = "backup"
            phases_n1 = [(f"night1-{b}", backup)]
            if args.nightly:
                phases_n2 = [("night2-nightly", backup + ["--prune"])]
            else:
                phases_n2 = [(f"night2-{b}", backup), ("night2-prune", base + ["prune", "-p", plan])]
        else:
            paths = write_c7n_files(fx, workdir)
            out_dir = os.path.join(workdir, "c7n-out")
            os.makedirs(os.path.join(workdir, "c7n-cache"), exist_ok=True)

            def org(kind: str) -> list[str]:
                cmd = [args.c7n_org, "run", "-c", os.path.join(workdir, "c7n-accounts.yml"), "-u", paths[kind],
                       "-s", out_dir, "--cache-period", "0", "--cache-path", os.path.join(workdir, "c7n-cache")]
                for r in REGIONS:
                    cmd += ["-r", r]
                return cmd

            phases_n1 = [("night1-backup", org("backup")), ("night1-copy", org("copy"))]
            phases_n2 = [("night2-backup", org("backup")), ("night2-copy", org("copy")), ("night2-prune", org("prune"))]
            if no_copy:
                phases_n1 = [p for p in phases_n1 if not p[0].endswith("copy")]
                phases_n2 = [p for p in phases_n2 if not p[0].endswith("copy")]
        if args.backup_only:
            phases_n1, phases_n2 = phases_n1[:1], []

        for name, cmd in phases_n1:
            ph = run_measured(name, cmd, env, workdir, emu)
            ph["inventory_after"] = inventory(emu)
            if args.tool == "rolesnap":
                ph["reports"] = report_summary(rolesnap_reports(ph["stdout"]))
                ph["timeline"] = backup_timeline(os.path.join(workdir, "logs", "vsbkp.log"), ph)
            result["phases"].append(ph)

        result["backup_only"] = bool(args.backup_only)
        if not args.backup_only:
            # a week passes: everything that exists now is the first generation
            emu.h("POST", "/_harness/config", {"token_buckets": False})
            aged = emu.h("POST", "/_harness/age", {"all": True, "age_seconds": 8 * DAY}, timeout=1800)["aged"]
            result["aged"] = {"count": len(aged), "age_days": 8}
            result["inventory_after_night1"] = inventory(emu)
            print(f"  aged {len(aged)} snapshots/DB snapshots by 8 days; inventory {result['inventory_after_night1']}", flush=True)

            if args.tool == "c7n":
                # c7n names RDS snapshots Backup-<id>-<YYYY-mm-dd-HH-MM>: the second night
                # must not start in the minute the first one did (real nights are a day apart)
                started = time.gmtime(result["phases"][0]["started"])[:5]
                while time.gmtime()[:5] == started:
                    time.sleep(1)

        for name, cmd in phases_n2:
            ph = run_measured(name, cmd, env, workdir, emu)
            ph["inventory_after"] = inventory(emu)
            if args.tool == "rolesnap":
                ph["reports"] = report_summary(rolesnap_reports(ph["stdout"]))
                ph["timeline"] = backup_timeline(os.path.join(workdir, "logs", "vsbkp.log"), ph)
            result["phases"].append(ph)

        # derived figures
        ideal = ideal_bounds(args.instances, 2, args.bucket_scale, copy=not (no_copy or args.backup_only))
        result["no_copy"] = bool(no_copy)
        result["nightly"] = bool(args.nightly)
        result["lower_bound"] = ideal
        for ph in result["phases"]:
            ph["as_called_bound"] = as_called_bound(ph["buckets"], args.bucket_scale)
            s = ph["summary"]
            ph["per_instance"] = {
                "CreateSnapshots_ok": round(ok_count(s, "ec2:CreateSnapshots") / n_inst, 4),
                "CopySnapshot_ok": round(ok_count(s, "ec2:CopySnapshot") / n_inst, 4),
                "DeleteSnapshot_ok": round(ok_count(s, "ec2:DeleteSnapshot") / n_inst, 4),
                "ec2_describes": round(s["ec2_describes"] / n_inst, 4),
                "all_calls": round(s["total"] / n_inst, 3),
            }
        result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    finally:
        emu.stop()
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
