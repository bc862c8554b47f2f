#!/usr/bin/env python3
"""Markdown tables from the result JSONs of bench/bench.py.

    python3 bench/report.py bench/results/<run>/        (prints Markdown)
"""

from __future__ import annotations

import glob
import json
import os
import sys
from typing import Any


def mb(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def phase_kind(name: str) -> str:
    return name.split("-", 1)[1]


def bound_for(r: dict[str, Any], phase: str) -> float:
    lb = r["lower_bound"]
    kind = phase_kind(phase)
    if kind == "backup+copy":
        return lb["backup"]["seconds"] + lb["copy"]["seconds"]
    if kind == "nightly":  # backup + copy with the prune beside them
        return lb["night_overlapped"]
    return lb[kind]["seconds"]


def load(d: str) -> list[dict[str, Any]]:
    runs = []
    for p in sorted(glob.glob(os.path.join(d, "*.json"))):
        with open(p) as f:
            r = json.load(f)
        if "phases" in r and r.get("lower_bound"):
            r["_file"] = os.path.basename(p)
            runs.append(r)
    return runs


def label(r: dict[str, Any]) -> str:
    f = r["fleet"]
    s = f" bucket_scale {r['emulator_config']['bucket_scale']}" if r["emulator_config"]["bucket_scale"] != 1.0 else ""
    if r.get("no_copy"):
        s += ", no copy"
    if r.get("nightly"):
        s += ", nightly (backup --prune)"
    return f"{r.get('_file', '').removesuffix('.json')}: {r['tool']} {f['totals']['instances']} inst ({f['tenants']} tenants){s}"


def phases_table(runs: list[dict[str, Any]]) -> str:
    out = ["| run | phase | exit | wall s | bucket lower bound s | wall / bound | as-called bound s | calls | throttled (%) | creates / inst | EC2 describes / inst | peak RSS MB (tree / time -v) | CPU s | emulator busy | load before→after | rolesnap jobs (s) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        for p in r["phases"]:
            s = p["summary"]
            b = bound_for(r, p["phase"])
            ratio = f"{p['wall_seconds'] / b:.2f}" if b > 0 else "–"
            creates = p["per_instance"]["CreateSnapshots_ok"] + p["per_instance"]["CopySnapshot_ok"] + p["per_instance"]["DeleteSnapshot_ok"]
            tv = p["time_v"]
            out.append(
                f"| {label(r)} | {p['phase']} | {p['exit_code']} | {p['wall_seconds']:.1f} | {b:.0f} | {ratio} | "
                f"{p['as_called_bound']['seconds']:.0f} ({p['as_called_bound'].get('bucket')}) | {s['total']} | "
                f"{s['throttled']} ({100 * s['throttled_fraction']:.1f}) | {p['per_instance']['CreateSnapshots_ok']:.3f} / "
                f"{p['per_instance']['CopySnapshot_ok']:.3f} / {p['per_instance']['DeleteSnapshot_ok']:.3f} | "
                f"{p['per_instance']['ec2_describes']:.4f} | {mb(p['tree_peak_rss_kib'])} / {mb(tv.get('max_rss_kib', 0))} | "
                f"{tv.get('cpu_seconds', 0):.1f} | {100 * p['emulator']['moto_busy_fraction']:.0f}% | "
                f"{p['load_before'][0]:.1f}→{p['load_after'][0]:.1f} | "
                + ", ".join(f"{x['job_type']} {x.get('seconds')}" for x in p.get("reports", [])) + " |"
            )
            del creates
    return "\n".join(out)


def actions_table(runs: list[dict[str, Any]]) -> str:
    out = []
    for r in runs:
        out.append(f"\n**{label(r)}** — calls by action (ok / throttled / error), per phase\n")
        names = [p["phase"] for p in r["phases"]]
        actions = sorted({a for p in r["phases"] for a in p["summary"]["by_action"]})
        out.append("| action | " + " | ".join(names) + " |")
        out.append("|---|" + "---|" * len(names))
        for a in actions:
            cells = []
            for p in r["phases"]:
                x = p["summary"]["by_action"].get(a)
                if not x:
                    cells.append("")
                    continue
                cells.append(f"{x.get('ok', 0)} / {x.get('throttled', 0)} / {x.get('error', 0) + x.get('denied', 0)}")
            out.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def night_table(runs: list[dict[str, Any]]) -> str:
    out = ["| run | instances | night 2 wall s (backup [+copy] + prune) | bound s (sequential / overlapped) | wall / seq. bound | wall / overlapped bound | night 2 calls | throttled % | peak RSS MB | RSS per 1000 inst MB | CPU s | wall per instance ms | inventory after prune (EBS snapshots) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        n2 = [p for p in r["phases"] if p["phase"].startswith("night2")]
        if not n2:
            continue
        wall = sum(p["wall_seconds"] for p in n2)
        calls = sum(p["summary"]["total"] for p in n2)
        thr = sum(p["summary"]["throttled"] for p in n2)
        rss = max(p["tree_peak_rss_kib"] for p in r["phases"])
        cpu = sum(p["time_v"].get("cpu_seconds", 0) for p in n2)
        n = r["fleet"]["totals"]["instances"]
        lb = r["lower_bound"]
        out.append(
            f"| {label(r)} | {n} | {wall:.1f} | {lb['night_sequential']:.0f} / {lb['night_overlapped']:.0f} | "
            f"{(wall / lb['night_sequential']) if lb['night_sequential'] else float('nan'):.2f} | "
            f"{(wall / lb['night_overlapped']) if lb['night_overlapped'] else float('nan'):.2f} | {calls} | {100 * thr / calls:.1f} | {mb(rss)} | {rss / 1024 / (n / 1000):.1f} | "
            f"{cpu:.1f} | {1000 * wall / n:.1f} | {n2[-1]['inventory_after']['snapshots']} |"
        )
    return "\n".join(out)


def emulator_table(runs: list[dict[str, Any]]) -> str:
    """Runs on tests/emulator/router.py: each emulator process's CPU against the phase's wall,
    the router's own CPU and the tool's, to show whether the emulator was the limit."""
    out = ["| run | phase | wall s | calls | calls/s | emulator CPU s per process | busiest process CPU % of wall | moto lock held, busiest % | router CPU s | tool CPU s | load before→after |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        for p in r["phases"]:
            e = p["emulator"]
            if "backends" not in e:
                continue
            w = p["wall_seconds"]
            cpus = [b["cpu_seconds"] for b in e["backends"]]
            out.append(
                f"| {label(r)} | {p['phase']} | {w:.1f} | {p['summary']['total']} | {p['summary']['total'] / w:.0f} | "
                f"{' / '.join(f'{c:.1f}' for c in cpus)} | {100 * max(cpus) / w:.0f} | {100 * e['moto_busy_fraction']:.0f} | "
                f"{e['router']['cpu_seconds']:.1f} | {p['time_v'].get('cpu_seconds', 0):.1f} | "
                f"{p['load_before'][0]:.1f}→{p['load_after'][0]:.1f} |")
    return "\n".join(out) if len(out) > 2 else ""


def bound_text(r: dict[str, Any]) -> str:
    lb = r["lower_bound"]
    f = r["fleet"]
    lines = [f"Fleet: {f['tenants']} tenants × {len(f['regions'])} regions × {f['instances_per_tenant_region']} instances × "
             f"{f['volumes_per_instance']} volumes; bucket_scale {r['emulator_config']['bucket_scale']}. Per account × region:"]
    for k in ("backup", "copy", "prune"):
        for b in lb[k]["buckets"]:
            lines.append(f"* {k}: {b['bucket']} {b['calls']} calls, bucket {b['size']:.0f} / {b['refill']:g} per s → "
                         f"max(0, ({b['calls']} − {b['size']:.0f}) / {b['refill']:g}) = {b['seconds']:.0f} s")
    lines.append(f"* night (phases one after another): {lb['night_sequential']:.0f} s; prune beside backup + copy: {lb['night_overlapped']:.0f} s")
    return "\n".join(lines)


def main() -> int:
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    runs = load(d)
    if not runs:
        print(f"no results in {d}", file=sys.stderr)
        return 1
    print("## Phases\n")
    print(phases_table(runs))
    print("\n## Night 2 (backup + copy + prune)\n")
    print(night_table(runs))
    emu = emulator_table(runs)
    if emu:
        print("\n## Emulator processes (tests/emulator/router.py)\n")
        print(emu)
    print("\n## Lower bounds\n")
    for r in runs:
        print(f"**{label(r)}**\n")
        print(bound_text(r) + "\n")
    print("\n## Calls by action\n")
    print(actions_table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
