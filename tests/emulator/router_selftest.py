#!/usr/bin/env python3
"""Self-test of router.py: several backends, each account's resources reachable only
through its own session, whichever way the request is signed.

    python3 router_selftest.py          (prints "N passed, M failed"; exit 0 only if all passed)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import router  # noqa: E402

NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})
BACKENDS = 3
TENANTS = 6
REGION = "us-east-1"


def h(endpoint: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(endpoint + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main() -> int:
    work = tempfile.mkdtemp(prefix="rolesnap-router-selftest.")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "router.py"), "--backends", str(BACKENDS),
                             "--port", "0", "--workdir", work],
                            stdout=subprocess.PIPE, stderr=open(os.path.join(work, "router.log"), "w"), text=True)
    passed: list[str] = []
    failed: list[str] = []
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if not line.startswith("READY "):
            print(f"router did not start: {line!r} (see {work}/router.log)")
            print("0 passed, 1 failed")
            return 1
        ep = f"http://127.0.0.1:{line.split()[1]}"
        fx_path = os.path.join(work, "fixture.json")
        subprocess.run([sys.executable, os.path.join(HERE, "seed.py"), "--endpoint", ep, "--out", fx_path,
                        "--profile", "fleet", "--tenants", str(TENANTS), "--regions", REGION,
                        "--instances", "3"], check=True, stdout=subprocess.DEVNULL)
        fx = json.load(open(fx_path))
        admin = fx["admin"]
        backends = h(ep, "GET", "/_harness/backends")[1]["backends"]
        sessions: dict[str, dict[str, str]] = {}

        def check(name: str, fn: Any) -> None:
            try:
                fn()
                passed.append(name)
                print(f"PASS {name}")
            except Exception as exc:
                failed.append(name)
                print(f"FAIL {name}: {exc!r}")
                traceback.print_exc()

        def sts_admin(endpoint: str = ep) -> Any:
            return boto3.client("sts", endpoint_url=endpoint, region_name=REGION, config=NO_RETRY,
                                aws_access_key_id=admin["access_key_id"],
                                aws_secret_access_key=admin["secret_access_key"])

        def ec2_of(creds: dict[str, str], endpoint: str = ep) -> Any:
            return boto3.client("ec2", endpoint_url=endpoint, region_name=REGION, config=NO_RETRY,
                                aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                aws_session_token=creds["SessionToken"])

        def ids(ec2: Any) -> set[str]:
            return {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}

        def own_ids(t: dict[str, Any]) -> set[str]:
            return {i["id"] for i in t["resources"][REGION]["instances"]}

        def accounts_spread() -> None:
            owners = {int(t["account"]) % BACKENDS
                      for t in fx["tenants"]}
            assert owners == set(range(BACKENDS)), f"tenants on backends {owners}, want all {BACKENDS}"

        def assume_each() -> None:
            for t in fx["tenants"]:
                r = sts_admin().assume_role(RoleArn=t["role_arn"], RoleSessionName="selftest",
                                            ExternalId=t["external_id"])
                sessions[t["account"]] = r["Credentials"]
                assert r["AssumedRoleUser"]["Arn"].split(":")[4] == t["account"], r["AssumedRoleUser"]

        def own_resources_only() -> None:
            for t in fx["tenants"]:
                got = ids(ec2_of(sessions[t["account"]]))
                want = own_ids(t)
                assert got == want, f"{t['name']}: sees {sorted(got)}, owns {sorted(want)}"
                ident = boto3.client("sts", endpoint_url=ep, region_name=REGION, config=NO_RETRY,
                                     aws_access_key_id=sessions[t["account"]]["AccessKeyId"],
                                     aws_secret_access_key=sessions[t["account"]]["SecretAccessKey"],
                                     aws_session_token=sessions[t["account"]]["SessionToken"]).get_caller_identity()
                assert ident["Account"] == t["account"], ident

        def keys_remembered_and_owned() -> None:
            for t in fx["tenants"]:
                key = sessions[t["account"]]["AccessKeyId"]
                st, r = h(ep, "GET", f"/_harness/route?key={key}")
                assert st == 200 and r["remembered"], r
                assert r["backend"] == int(t["account"]) % BACKENDS, (t["account"], r)
                assert router.account_of_key(key) == t["account"], (key, router.account_of_key(key))
            assert router.account_of_key(admin["access_key_id"]) == admin["account"]

        def resources_live_on_owner_only() -> None:
            # straight to each backend, with the tenant's session: only the owner knows it
            for t in fx["tenants"]:
                owner = int(t["account"]) % BACKENDS
                for b in backends:
                    ec2 = ec2_of(sessions[t["account"]], b["endpoint"])
                    got = ids(ec2)
                    if b["index"] == owner:
                        assert got == own_ids(t), (t["name"], b["index"], got)
                    else:
                        assert not got, f"{t['name']}'s instances also on backend {b['index']}: {got}"

        def presigned_query_routed() -> None:
            # moto itself takes the account of a query-signed request from nowhere (it reads
            # the Authorization header only), so this checks where the router sent it
            for t in fx["tenants"][:BACKENDS]:
                url = ec2_of(sessions[t["account"]]).generate_presigned_url(
                    "describe_instances", Params={}, ExpiresIn=300)
                assert "X-Amz-Credential=" in url and "Authorization" not in url
                owner = int(t["account"]) % BACKENDS
                before = [b["forwarded"] for b in h(ep, "GET", "/_harness/backends")[1]["backends"]]
                with urllib.request.urlopen(url, timeout=30) as r:
                    assert r.status == 200
                after = [b["forwarded"] for b in h(ep, "GET", "/_harness/backends")[1]["backends"]]
                diff = [a - b for a, b in zip(after, before)]
                want = [1 if i == owner else 0 for i in range(BACKENDS)]
                assert diff == want, f"{t['name']}: forwarded {diff}, want {want}"

        def trust_still_enforced() -> None:
            t = fx["tenants"][1]
            try:
                sts_admin().assume_role(RoleArn=t["role_arn"], RoleSessionName="selftest", ExternalId="wrong")
            except ClientError as e:
                assert e.response["Error"]["Code"] == "AccessDenied", e.response["Error"]
            else:
                raise AssertionError("AssumeRole with a wrong ExternalId succeeded through the router")

        def buckets_per_account_on_one_backend() -> None:
            assert h(ep, "POST", "/_harness/config", {"token_buckets": True})[0] == 200
            h(ep, "DELETE", "/_harness/calls")
            for t in fx["tenants"]:
                ec2_of(sessions[t["account"]]).describe_instances(MaxResults=5)
            rows = h(ep, "GET", "/_harness/buckets")[1]["buckets"]
            per = {}
            for r in rows:
                per.setdefault((r["account"], r["region"], r["bucket"]), []).append(r)
            for t in fx["tenants"]:
                got = per.get((t["account"], REGION, "describe"))
                assert got and len(got) == 1 and got[0]["taken"] == 1, (t["account"], got)
            calls = h(ep, "GET", "/_harness/calls")[1]
            n = sum(r["count"] for r in calls["calls"] if r["action"] == "DescribeInstances")
            assert n == TENANTS and calls["total"] >= TENANTS, calls
            t = h(ep, "GET", "/_harness/timing")[1]
            assert len(t["backends"]) == BACKENDS and all("cpu_seconds" in b for b in t["backends"]), t
            assert t["requests"] == sum(b["requests"] for b in t["backends"]), t
            h(ep, "POST", "/_harness/config", {"token_buckets": False})

        check("tenants spread over every backend", accounts_spread)
        check("AssumeRole through the router answers each tenant's own account", assume_each)
        check("each session sees exactly its own instances through the router", own_resources_only)
        check("session keys remembered and routed to the owner; moto's key encoding decodes", keys_remembered_and_owned)
        check("an account's resources live on its owner backend only", resources_live_on_owner_only)
        check("presigned (query-signed) requests are routed by their credential", presigned_query_routed)
        check("a wrong ExternalId is still refused through the router", trust_still_enforced)
        check("token buckets and call log per account, merged over backends", buckets_per_account_on_one_backend)
    except Exception as exc:
        failed.append(f"setup: {exc!r}")
        traceback.print_exc()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"router selftest: {len(passed)} passed, {len(failed)} failed")
    print(f"{len(passed)} passed, {len(failed)} failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    start = time.time()
    rc = main()
    print(f"router selftest took {time.time() - start:.1f} s", file=sys.stderr)
    sys.exit(rc)
