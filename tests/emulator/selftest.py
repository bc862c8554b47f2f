#!/usr/bin/env python3
"""Self-test of the rolesnap emulator: start server.py, seed, check the layer with boto3.

    python3 selftest.py [--keep]     (exit status 0 only if every check passed)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
# total_max_attempts counts the first try: 1 = never retry (max_attempts would allow one retry)
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})
NO_VALIDATION = Config(retries={"total_max_attempts": 1, "mode": "standard"}, parameter_validation=False)

PASSED: list[str] = []
FAILED: list[str] = []


def check(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def deco(fn: Callable[[], None]) -> Callable[[], None]:
        CHECKS.append((name, fn))
        return fn

    return deco


CHECKS: list[tuple[str, Callable[[], None]]] = []


class Ctx:
    endpoint = ""
    fx: dict[str, Any] = {}
    proc: subprocess.Popen | None = None


CTX = Ctx()


# --- helpers -----------------------------------------------------------------


def harness(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(CTX.endpoint + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def H(method: str, path: str, body: Any = None) -> Any:
    status, payload = harness(method, path, body)
    assert status == 200, f"{method} {path} -> {status} {payload}"
    return payload


def client(service: str, creds: dict[str, str], region: str = "us-east-1", config: Config = NO_RETRY) -> Any:
    return boto3.client(
        service,
        endpoint_url=CTX.endpoint,
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=config,
    )


def admin_creds() -> dict[str, str]:
    a = CTX.fx["admin"]
    return {"AccessKeyId": a["access_key_id"], "SecretAccessKey": a["secret_access_key"]}


def tenant(name: str) -> dict[str, Any]:
    return next(t for t in CTX.fx["tenants"] if t["name"] == name)


def assume(creds: dict[str, str], role_arn: str, external_id: str | None = None, **kw: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": "rolesnap-selftest", **kw}
    if external_id is not None:
        params["ExternalId"] = external_id
    # no client-side validation: the emulator must reject bad DurationSeconds itself
    return client("sts", creds, config=NO_VALIDATION).assume_role(**params)


def alpha_creds(**kw: Any) -> dict[str, str]:
    t = tenant("alpha")
    return assume(admin_creds(), t["role_arn"], t["external_id"], **kw)["Credentials"]


def expect_error(fn: Callable[[], Any], code: str, status: int | None = None) -> ClientError:
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert got == code, f"expected {code}, got {got}: {e}"
        if status is not None:
            assert got_status == status, f"expected HTTP {status}, got {got_status}"
        return e
    raise AssertionError(f"expected {code}, call succeeded")


def same_answer_with_and_without_kept_items(ec2: Any, operation: str, switch: str, **q: Any) -> dict[str, Any]:
    """Asks `operation` with the emulator's kept items (after a change: each
    item checked against what it was made from), then with moto's own path
    (config `switch` off), and asserts the two answers are the same bytes but
    the request id. Returns the answer with the kept items again: they are what
    the next comparison checks."""
    from botocore import xform_name

    call = getattr(ec2, xform_name(operation))
    bodies: list[bytes] = []

    def keep(http_response: Any, **_: Any) -> None:
        bodies.append(http_response.content)

    event = f"after-call.ec2.{operation}"
    ec2.meta.events.register(event, keep)
    out = []
    try:
        for on in (True, False):
            H("POST", "/_harness/config", {switch: on})
            call(**q)
            out.append(re.sub(rb"<requestId>[^<]*</requestId>", b"", bodies[-1]))
    finally:
        H("POST", "/_harness/config", {switch: True})
        ec2.meta.events.unregister(event, keep)
    assert out[0] == out[1], f"kept items differ from moto's answer:\n{out[0][:3000]!r}\n{out[1][:3000]!r}"
    return call(**q)


def instance_ids(ec2: Any) -> set[str]:
    return {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}


def fixture_ids(tname: str, region: str) -> set[str]:
    return {i["id"] for i in tenant(tname)["resources"][region]["instances"]}


def first_data_volume(tname: str, region: str = "us-east-1") -> str:
    inst = tenant(tname)["resources"][region]["instances"][0]
    return next(v["id"] for v in inst["volumes"] if not v["root"])


def raw_query(service: str, region: str, params: dict[str, str], access_key: str = "AKIARAWCHECK00000000", account: str | None = None) -> tuple[int, bytes]:
    """POST a form-encoded query-protocol request with a SigV4-shaped header (not a valid signature)."""
    from urllib.parse import urlencode

    data = urlencode(params).encode()
    req = urllib.request.Request(CTX.endpoint + "/", data=data, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
    req.add_header(
        "Authorization",
        f"AWS4-HMAC-SHA256 Credential={access_key}/20250101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=00",
    )
    if account:
        req.add_header("x-moto-account-id", account)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def strip_ns(tag: str) -> str:
    return tag.split("}", 1)[-1]


def utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.timezone.utc)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def call_count(account: str, region: str, service: str, action: str, outcome: str) -> int:
    rows = H("GET", "/_harness/calls")["calls"]
    for r in rows:
        if (r["account"], r["region"], r["service"], r["action"], r["outcome"]) == (account, region, service, action, outcome):
            return r["count"]
    return 0


# --- checks ------------------------------------------------------------------


@check("health endpoint")
def _() -> None:
    h = H("GET", "/_harness/health")
    assert h["status"] == "ok" and h["moto_version"] == "5.2.1", h


@check("admin key identifies as the IAM user of 111111111111")
def _() -> None:
    ident = client("sts", admin_creds()).get_caller_identity()
    assert ident["Account"] == "111111111111", ident
    assert ident["Arn"] == CTX.fx["admin"]["user_arn"], ident


@check("AssumeRole alpha with right ExternalId; creds act in 222222222222 and see alpha's instances only")
def _() -> None:
    creds = alpha_creds()
    assert creds["AccessKeyId"].startswith("ASIA"), creds["AccessKeyId"]
    ident = client("sts", creds).get_caller_identity()
    assert ident["Account"] == "222222222222", ident
    assert ident["Arn"].startswith("arn:aws:sts::222222222222:assumed-role/vsa-role/"), ident
    for region in ("us-east-1", "us-west-2"):
        got = instance_ids(client("ec2", creds, region))
        want = fixture_ids("alpha", region)
        assert got == want, f"{region}: {got} != {want}"
    assert not (instance_ids(client("ec2", creds)) & fixture_ids("beta", "us-east-1"))
    beta = tenant("beta")
    bcreds = assume(admin_creds(), beta["role_arn"], beta["external_id"])["Credentials"]
    assert instance_ids(client("ec2", bcreds)) == fixture_ids("beta", "us-east-1")


@check("fixture volumes match DescribeVolumes (sizes, devices, root)")
def _() -> None:
    creds = alpha_creds()
    for region in ("us-east-1", "us-west-2"):
        vols = {v["VolumeId"]: v for v in client("ec2", creds, region).describe_volumes()["Volumes"]}
        for inst in tenant("alpha")["resources"][region]["instances"]:
            assert [v["device"] for v in inst["volumes"]] == ["/dev/xvda", "/dev/sdf"], inst
            assert inst["root_device_name"] == "/dev/xvda", inst
            for v in inst["volumes"]:
                live = vols[v["id"]]
                assert live["Size"] == v["size"], (live, v)
                assert live["Attachments"][0]["InstanceId"] == inst["id"]
                assert live["Attachments"][0]["Device"] == v["device"]


@check("wrong ExternalId -> AccessDenied (403) with the AWS message")
def _() -> None:
    t = tenant("alpha")
    e = expect_error(lambda: assume(admin_creds(), t["role_arn"], "wrong-ext"), "AccessDenied", 403)
    msg = e.response["Error"]["Message"]
    want = f"User: {CTX.fx['admin']['user_arn']} is not authorized to perform: sts:AssumeRole on resource: {t['role_arn']}"
    assert msg == want, msg


@check("missing ExternalId -> AccessDenied")
def _() -> None:
    expect_error(lambda: assume(admin_creds(), tenant("alpha")["role_arn"]), "AccessDenied", 403)


@check("beta's ExternalId does not open alpha")
def _() -> None:
    expect_error(lambda: assume(admin_creds(), tenant("alpha")["role_arn"], tenant("beta")["external_id"]), "AccessDenied", 403)


@check("gamma (trusts 999999999999 only) -> AccessDenied")
def _() -> None:
    g = tenant("gamma")
    expect_error(lambda: assume(admin_creds(), g["role_arn"]), "AccessDenied", 403)
    expect_error(lambda: assume(admin_creds(), g["role_arn"], "anything"), "AccessDenied", 403)


@check("non-existent role -> AccessDenied")
def _() -> None:
    expect_error(lambda: assume(admin_creds(), "arn:aws:iam::222222222222:role/nope", "rolesnap-alpha-ext"), "AccessDenied", 403)
    expect_error(lambda: assume(admin_creds(), "arn:aws:iam::555555555555:role/vsa-role"), "AccessDenied", 403)


@check("role chaining admin -> vsa-assume-role -> alpha vsa-role")
def _() -> None:
    hop1 = assume(admin_creds(), CTX.fx["admin"]["admin_role_arn"])
    assert hop1["AssumedRoleUser"]["Arn"].startswith("arn:aws:sts::111111111111:assumed-role/vsa-assume-role/")
    c1 = hop1["Credentials"]
    t = tenant("alpha")
    hop2 = assume(c1, t["role_arn"], t["external_id"])
    c2 = hop2["Credentials"]
    assert client("sts", c2).get_caller_identity()["Account"] == "222222222222"
    assert instance_ids(client("ec2", c2)) == fixture_ids("alpha", "us-east-1")
    # chained session still needs the ExternalId
    expect_error(lambda: assume(c1, t["role_arn"], "wrong"), "AccessDenied", 403)
    # role chaining caps DurationSeconds at 3600
    e = expect_error(lambda: assume(c1, t["role_arn"], t["external_id"], DurationSeconds=7200), "ValidationError", 400)
    assert "role chaining" in e.response["Error"]["Message"]
    # a tenant session is not trusted by the admin role
    expect_error(lambda: assume(c2, CTX.fx["admin"]["admin_role_arn"]), "AccessDenied", 403)


@check("DurationSeconds validation (900..43200, MaxSessionDuration)")
def _() -> None:
    t = tenant("alpha")
    expect_error(lambda: assume(admin_creds(), t["role_arn"], t["external_id"], DurationSeconds=899), "ValidationError", 400)
    expect_error(lambda: assume(admin_creds(), t["role_arn"], t["external_id"], DurationSeconds=43201), "ValidationError", 400)
    r = assume(admin_creds(), t["role_arn"], t["external_id"], DurationSeconds=43200)
    assert r["Credentials"]["AccessKeyId"].startswith("ASIA")
    # the admin role keeps the default MaxSessionDuration (3600)
    e = expect_error(lambda: assume(admin_creds(), CTX.fx["admin"]["admin_role_arn"], DurationSeconds=7200), "ValidationError", 400)
    assert "MaxSessionDuration" in e.response["Error"]["Message"]


@check("credential_lifetime_seconds=3 -> ExpiredToken after 4 s (EC2 and STS)")
def _() -> None:
    cfg = H("POST", "/_harness/config", {"credential_lifetime_seconds": 3})
    assert cfg["credential_lifetime_seconds"] == 3
    try:
        t0 = now()
        creds = alpha_creds()
        exp = utc(creds["Expiration"])
        assert abs((exp - t0).total_seconds() - 3) < 2, (exp, t0)
        ec2 = client("ec2", creds)
        assert instance_ids(ec2) == fixture_ids("alpha", "us-east-1")
        time.sleep(4)
        expect_error(lambda: ec2.describe_instances(), "ExpiredToken", 400)
        expect_error(lambda: client("sts", creds).get_caller_identity(), "ExpiredToken", 400)
        creds_view = H("GET", "/_harness/credentials")["credentials"]
        assert any(c["access_key_id"] == creds["AccessKeyId"] and c["expired"] for c in creds_view)
        # a fresh AssumeRole gives working credentials again
        assert instance_ids(client("ec2", alpha_creds())) == fixture_ids("alpha", "us-east-1")
    finally:
        H("POST", "/_harness/config", {"credential_lifetime_seconds": None})


@check("advance_clock_seconds expires credentials issued earlier, not later ones")
def _() -> None:
    creds = alpha_creds()  # 3600 s
    ec2 = client("ec2", creds)
    ec2.describe_instances()
    try:
        H("POST", "/_harness/config", {"advance_clock_seconds": 3601})
        expect_error(lambda: ec2.describe_instances(), "ExpiredToken", 400)
        fresh = alpha_creds()
        client("ec2", fresh).describe_instances()
    finally:
        H("POST", "/_harness/config", {"clock_offset_seconds": 0})


@check("POST /_harness/revoke: matching issued keys answer ExpiredToken at once; a new AssumeRole works; other tenants untouched")
def _() -> None:
    a, b = tenant("alpha"), tenant("beta")
    ca1, ca2 = alpha_creds(), alpha_creds()
    cb = assume(admin_creds(), b["role_arn"], b["external_id"])["Credentials"]
    for c in (ca1, ca2):
        assert instance_ids(client("ec2", c)) == fixture_ids("alpha", "us-east-1")
    for bad in ({}, {"account": ""}, {"account": 222222222222}, {"role_arn": None}):
        status, payload = harness("POST", "/_harness/revoke", bad)
        assert status == 400, (bad, status, payload)
    # one key
    assert H("POST", "/_harness/revoke", {"access_key_id": ca1["AccessKeyId"]}) == {"revoked": [ca1["AccessKeyId"]]}
    e = expect_error(lambda: client("ec2", ca1).describe_instances(), "ExpiredToken", 400)
    assert e.response["Error"]["Message"] == "The security token included in the request is expired", e.response
    client("ec2", ca2).describe_instances()
    # every key of the account; already revoked keys are not listed again
    H("DELETE", "/_harness/calls")
    revoked = H("POST", "/_harness/revoke", {"account": a["account"]})["revoked"]
    assert ca2["AccessKeyId"] in revoked and ca1["AccessKeyId"] not in revoked, revoked
    assert cb["AccessKeyId"] not in revoked, revoked
    expect_error(lambda: client("ec2", ca2).describe_instances(), "ExpiredToken", 400)
    expect_error(lambda: client("sts", ca2).get_caller_identity(), "ExpiredToken", 400)
    expect_error(lambda: client("rds", ca2).describe_db_instances(), "ExpiredToken", 400)
    assert instance_ids(client("ec2", cb)) == fixture_ids("beta", "us-east-1")
    assert call_count(a["account"], "us-east-1", "ec2", "DescribeInstances", "expired") == 1
    view = {c["access_key_id"]: c for c in H("GET", "/_harness/credentials")["credentials"]}
    assert view[ca2["AccessKeyId"]]["revoked"] and view[ca2["AccessKeyId"]]["expired"], view[ca2["AccessKeyId"]]
    assert not view[cb["AccessKeyId"]]["revoked"] and not view[cb["AccessKeyId"]]["expired"], view[cb["AccessKeyId"]]
    # setting the layer clock back does not revive a revoked key
    H("POST", "/_harness/config", {"clock_offset_seconds": -7200})
    try:
        expect_error(lambda: client("ec2", ca2).describe_instances(), "ExpiredToken", 400)
    finally:
        H("POST", "/_harness/config", {"clock_offset_seconds": 0})
    # keys issued afterwards work; role_arn and account together narrow to the new one
    fresh = alpha_creds()
    assert instance_ids(client("ec2", fresh)) == fixture_ids("alpha", "us-east-1")
    r = H("POST", "/_harness/revoke", {"role_arn": a["role_arn"], "account": a["account"]})
    assert r == {"revoked": [fresh["AccessKeyId"]]}, r
    expect_error(lambda: client("ec2", fresh).describe_instances(), "ExpiredToken", 400)


@check("revoke + AssumeRole fault with target_account: the role can no longer be assumed (one tenant only)")
def _() -> None:
    a, b = tenant("alpha"), tenant("beta")
    ec2 = client("ec2", alpha_creds())
    ec2.describe_instances()
    H("POST", "/_harness/faults", {"action": "AssumeRole", "target_account": a["account"], "code": "AccessDenied",
                                   "message": f"User: {CTX.fx['admin']['user_arn']} is not authorized to perform: sts:AssumeRole on resource: {a['role_arn']}"})
    try:
        assert H("POST", "/_harness/revoke", {"account": a["account"]})["revoked"]
        expect_error(lambda: ec2.describe_instances(), "ExpiredToken", 400)
        e = expect_error(lambda: alpha_creds(), "AccessDenied", 403)
        assert a["role_arn"] in e.response["Error"]["Message"], e.response
        # through the admin role (role chaining) too: the rule matches the RoleArn's account
        hop1 = assume(admin_creds(), CTX.fx["admin"]["admin_role_arn"])["Credentials"]
        expect_error(lambda: assume(hop1, a["role_arn"], a["external_id"]), "AccessDenied", 403)
        bcreds = assume(admin_creds(), b["role_arn"], b["external_id"])["Credentials"]
        assert instance_ids(client("ec2", bcreds)) == fixture_ids("beta", "us-east-1")
    finally:
        H("DELETE", "/_harness/faults")
    assert instance_ids(client("ec2", alpha_creds())) == fixture_ids("alpha", "us-east-1")


@check("ExpiredToken and injected errors have the service's XML shape")
def _() -> None:
    H("POST", "/_harness/faults", {"action": "DescribeRegions", "code": "RequestLimitExceeded", "status": 503, "count": 1})
    H("POST", "/_harness/faults", {"action": "DescribeDBInstances", "code": "Throttling", "status": 400, "count": 1})
    try:
        status, body = raw_query("ec2", "us-east-1", {"Action": "DescribeRegions", "Version": "2016-11-15"}, account="222222222222")
        assert status == 503, status
        root = ET.fromstring(body)
        assert strip_ns(root.tag) == "Response", body
        err = root.find("Errors/Error")
        assert err is not None and err.findtext("Code") == "RequestLimitExceeded", body
        assert root.findtext("RequestID"), body
        status, body = raw_query("rds", "us-east-1", {"Action": "DescribeDBInstances", "Version": "2014-10-31"}, account="222222222222")
        assert status == 400, status
        root = ET.fromstring(body)
        assert strip_ns(root.tag) == "ErrorResponse", body
        kids = {strip_ns(e.tag): e for e in root}
        err = {strip_ns(e.tag): e.text for e in kids["Error"]}
        assert err == {"Type": "Sender", "Code": "Throttling", "Message": "Rate exceeded"}, err
        assert kids["RequestId"].text
    finally:
        H("DELETE", "/_harness/faults")


@check("fault rule count=2 on CreateSnapshot -> 2 x RequestLimitExceeded, then success")
def _() -> None:
    vol = first_data_volume("alpha")
    rule = H("POST", "/_harness/faults", {"action": "CreateSnapshot", "account": "222222222222", "region": "us-east-1", "code": "RequestLimitExceeded", "status": 503, "count": 2})
    try:
        ec2 = client("ec2", alpha_creds())
        for _ in range(2):
            expect_error(lambda: ec2.create_snapshot(VolumeId=vol, Description="fault test"), "RequestLimitExceeded", 503)
        snap = ec2.create_snapshot(VolumeId=vol, Description="fault test")
        assert snap["SnapshotId"].startswith("snap-")
        # other regions/accounts untouched by the rule
        bvol = first_data_volume("beta")
        beta = tenant("beta")
        bec2 = client("ec2", assume(admin_creds(), beta["role_arn"], beta["external_id"])["Credentials"])
        bec2.create_snapshot(VolumeId=bvol, Description="fault test beta")
        view = H("GET", "/_harness/faults")["faults"]
        mine = next(f for f in view if f["id"] == rule["id"])
        assert mine["injected"] == 2, mine
    finally:
        H("DELETE", "/_harness/faults")


@check("probabilistic faults are reproducible with a seed")
def _() -> None:
    ec2 = client("ec2", alpha_creds())

    def pattern() -> list[bool]:
        H("POST", "/_harness/config", {"seed": 42})
        H("POST", "/_harness/faults", {"action": "DescribeVolumes", "code": "InternalError", "status": 500, "probability": 0.5})
        out = []
        for _ in range(16):
            try:
                ec2.describe_volumes()
                out.append(False)
            except ClientError as e:
                assert e.response["Error"]["Code"] == "InternalError"
                out.append(True)
        H("DELETE", "/_harness/faults")
        return out

    a, b = pattern(), pattern()
    assert a == b, (a, b)
    assert any(a) and not all(a), a


@check("fault rule after=true: CreateSnapshots really happens (held, tagged) but the caller gets InternalError 500; without after nothing is created")
def _() -> None:
    acct = tenant("alpha")["account"]
    inst = tenant("alpha")["resources"]["us-east-1"]["instances"][0]
    ec2 = client("ec2", alpha_creds())

    def spec(v: str) -> list[dict[str, Any]]:
        return [{"ResourceType": "snapshot", "Tags": [{"Key": "ambiguous", "Value": v}]}]

    def tagged(v: str) -> dict[str, dict[str, Any]]:
        snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:ambiguous", "Values": [v]}])["Snapshots"]
        return {s["SnapshotId"]: s for s in snaps}

    def create(v: str) -> Any:
        return ec2.create_snapshots(InstanceSpecification={"InstanceId": inst["id"]}, TagSpecifications=spec(v))

    status, payload = harness("POST", "/_harness/faults", {"action": "CreateSnapshots", "code": "InternalError", "after": "yes"})
    assert status == 400, payload
    H("DELETE", "/_harness/calls")
    # without "after" (the default) moto never sees the call
    plain = H("POST", "/_harness/faults", {"action": "CreateSnapshots", "code": "InternalError", "count": 1, "account": acct})
    assert plain["after"] is False, plain
    expect_error(lambda: create("before"), "InternalError", 500)
    assert tagged("before") == {}
    rule = H("POST", "/_harness/faults", {"action": "CreateSnapshots", "code": "InternalError", "after": True, "count": 1, "account": acct})
    assert rule["after"] is True and rule["status"] == 500, rule
    H("POST", "/_harness/hold", {"account": acct, "region": "us-east-1", "kinds": ["snapshot"]})
    try:
        e = expect_error(lambda: create("after"), "InternalError", 500)
        assert e.response["Error"]["Message"] == "An internal error has occurred", e.response
        made = tagged("after")
        assert {s["VolumeId"] for s in made.values()} == {v["id"] for v in inst["volumes"]}, made
        assert {s["State"] for s in made.values()} == {"pending"}, made  # the hold applied to moto's call
        # count used up: the next call is an ordinary one
        assert len(create("retry")["Snapshots"]) == 2 and len(tagged("retry")) == 2
        view = {f["id"]: f for f in H("GET", "/_harness/faults")["faults"]}
    finally:
        H("POST", "/_harness/release", {"all": True})
        H("DELETE", "/_harness/faults")
    assert view[rule["id"]]["after"] is True and view[rule["id"]]["injected"] == 1, view
    assert {s["State"] for s in tagged("after").values()} == {"completed"}
    assert call_count(acct, "us-east-1", "ec2", "CreateSnapshots", "injected") == 2  # the plain one and the after one
    assert call_count(acct, "us-east-1", "ec2", "CreateSnapshots", "ok") == 1


@check("after=true: CreateImage's snapshot tags still land; a pending-state refusal comes first and leaves the rule unused; AssumeRole issues the session")
def _() -> None:
    a = tenant("alpha")
    acct = a["account"]
    creds = alpha_creds()
    ec2, ec2w = client("ec2", creds), client("ec2", creds, "us-west-2")
    inst = a["resources"]["us-east-1"]["instances"][1]["id"]
    H("POST", "/_harness/faults", {"action": "CreateImage", "code": "InternalError", "after": True, "count": 1, "account": acct})
    try:
        expect_error(lambda: ec2.create_image(InstanceId=inst, Name="ambiguous-ami", TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "_GX_BACKUP_", "Value": "88"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "_GX_BACKUP_", "Value": "88"}, {"Key": "Name", "Value": "amb"}]},
        ]), "InternalError", 500)
        imgs = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["ambiguous-ami"]}])["Images"]
        assert len(imgs) == 1 and {t["Key"]: t["Value"] for t in imgs[0]["Tags"]} == {"_GX_BACKUP_": "88"}, imgs
        sid = imgs[0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        tags = {t["Key"]: t["Value"] for t in ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["Tags"]}
        assert tags == {"_GX_BACKUP_": "88", "Name": "amb"}, tags

        # a held source: the pending-state refusal is the answer, and the rule stays unused
        src = ec2.create_snapshot(VolumeId=first_data_volume("alpha"))["SnapshotId"]
        H("POST", "/_harness/hold", {"account": acct, "ids": [src]})
        rule = H("POST", "/_harness/faults", {"action": "CopySnapshot", "code": "InternalError", "after": True, "count": 1, "account": acct})
        copy_tags = [{"ResourceType": "snapshot", "Tags": [{"Key": "ambiguous-copy", "Value": "1"}]}]

        def copy() -> Any:
            return ec2w.copy_snapshot(SourceSnapshotId=src, SourceRegion="us-east-1", TagSpecifications=copy_tags)

        def copies() -> list[Any]:
            return ec2w.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:ambiguous-copy", "Values": ["1"]}])["Snapshots"]

        expect_error(copy, "IncorrectState", 400)
        mine = next(f for f in H("GET", "/_harness/faults")["faults"] if f["id"] == rule["id"])
        assert mine["injected"] == 0 and mine["matched"] == 1, mine
        assert copies() == []
        H("POST", "/_harness/release", {"ids": [src]})
        expect_error(copy, "InternalError", 500)
        assert len(copies()) == 1
        copy()
        assert len(copies()) == 2

        # AssumeRole: the caller gets a 500, the session exists all the same
        before = {c["access_key_id"] for c in H("GET", "/_harness/credentials")["credentials"]}
        H("POST", "/_harness/faults", {"action": "AssumeRole", "target_account": acct, "code": "InternalError", "after": True, "count": 1})
        expect_error(lambda: alpha_creds(), "InternalError", 500)
        new = [c for c in H("GET", "/_harness/credentials")["credentials"] if c["access_key_id"] not in before]
        assert [c["role_arn"] for c in new] == [a["role_arn"]] and not new[0]["expired"], new
    finally:
        H("DELETE", "/_harness/faults")
        H("POST", "/_harness/release", {"all": True})


@check("hold: new EBS snapshot is pending until released; CopySnapshot refused while pending")
def _() -> None:
    vol = first_data_volume("alpha")
    ec2 = client("ec2", alpha_creds())
    ec2w = client("ec2", alpha_creds(), "us-west-2")
    H("POST", "/_harness/hold", {"account": "222222222222", "region": "us-east-1", "kinds": ["snapshot"]})
    try:
        sid = ec2.create_snapshot(VolumeId=vol, Description="hold test")["SnapshotId"]
        s = ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]
        assert s["State"] == "pending" and s["Progress"] != "100%", s
        # filter by status sees it too
        pend = ec2.describe_snapshots(Filters=[{"Name": "status", "Values": ["pending"]}])["Snapshots"]
        assert sid in [p["SnapshotId"] for p in pend]
        expect_error(lambda: ec2w.copy_snapshot(SourceSnapshotId=sid, SourceRegion="us-east-1"), "IncorrectState", 400)
        held = H("GET", "/_harness/hold")["held"]
        assert any(h["id"] == sid for h in held), held
        r = H("POST", "/_harness/release", {"ids": [sid]})
        assert [x["id"] for x in r["released"]] == [sid], r
        s = ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]
        assert s["State"] == "completed" and s["Progress"] == "100%", s
        ec2w.copy_snapshot(SourceSnapshotId=sid, SourceRegion="us-east-1")
        # hold rule still active: CreateSnapshots makes pending snapshots too
        inst = tenant("alpha")["resources"]["us-east-1"]["instances"][0]["id"]
        snaps = ec2.create_snapshots(InstanceSpecification={"InstanceId": inst})["Snapshots"]
        ids = [x["SnapshotId"] for x in snaps]
        assert len(ids) == 2
        states = {x["SnapshotId"]: x["State"] for x in ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]}
        assert set(states.values()) == {"pending"}, states
        # other region unaffected
        wvol = first_data_volume("alpha", "us-west-2")
        wsid = ec2w.create_snapshot(VolumeId=wvol)["SnapshotId"]
        assert ec2w.describe_snapshots(SnapshotIds=[wsid])["Snapshots"][0]["State"] == "completed"
    finally:
        r = H("POST", "/_harness/release", {"all": True})
    assert r["rules_removed"] == 1, r
    states = {x["SnapshotId"]: x["State"] for x in ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]}
    assert set(states.values()) == {"completed"}, states


@check("hold: AMI pending, DB snapshot and cluster snapshot creating; release all")
def _() -> None:
    creds = alpha_creds()
    ec2, rds = client("ec2", creds), client("rds", creds)
    inst = tenant("alpha")["resources"]["us-east-1"]["instances"][1]["id"]
    H("POST", "/_harness/hold", {"account": "222222222222", "kinds": ["image", "db-snapshot", "db-cluster-snapshot"]})
    try:
        ami = ec2.create_image(InstanceId=inst, Name="hold-test-ami")["ImageId"]
        assert ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] == "pending"
        ds = rds.create_db_snapshot(DBInstanceIdentifier="alpha-pg", DBSnapshotIdentifier="hold-test-db")["DBSnapshot"]
        assert ds["Status"] == "creating", ds["Status"]
        assert rds.describe_db_snapshots(DBSnapshotIdentifier="hold-test-db")["DBSnapshots"][0]["Status"] == "creating"
        cs = rds.create_db_cluster_snapshot(DBClusterIdentifier="alpha-aurora", DBClusterSnapshotIdentifier="hold-test-cl")["DBClusterSnapshot"]
        assert cs["Status"] == "creating", cs["Status"]
        assert rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="hold-test-cl")["DBClusterSnapshots"][0]["Status"] == "creating"
        rdsw = client("rds", creds, "us-west-2")
        expect_error(lambda: rdsw.copy_db_snapshot(SourceDBSnapshotIdentifier=ds["DBSnapshotArn"], TargetDBSnapshotIdentifier="x-copy", SourceRegion="us-east-1"), "InvalidDBSnapshotState", 400)
    finally:
        r = H("POST", "/_harness/release", {"all": True})
    kinds = sorted(x["kind"] for x in r["released"])
    assert kinds == ["db-cluster-snapshot", "db-snapshot", "image"], r
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] == "available"
    assert rds.describe_db_snapshots(DBSnapshotIdentifier="hold-test-db")["DBSnapshots"][0]["Status"] == "available"
    assert rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="hold-test-cl")["DBClusterSnapshots"][0]["Status"] == "available"
    # after release-all no rule is active
    ds2 = rds.create_db_snapshot(DBInstanceIdentifier="alpha-pg", DBSnapshotIdentifier="hold-test-db2")["DBSnapshot"]
    assert ds2["Status"] == "available"


@check("hold by explicit id holds an existing snapshot")
def _() -> None:
    ec2 = client("ec2", alpha_creds())
    sid = ec2.create_snapshot(VolumeId=first_data_volume("alpha"))["SnapshotId"]
    r = H("POST", "/_harness/hold", {"account": "222222222222", "ids": [sid]})
    assert r["hold"] is None and r["held"][0]["id"] == sid, r
    assert ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["State"] == "pending"
    H("POST", "/_harness/release", {"ids": [sid]})
    assert ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["State"] == "completed"
    st, body = harness("POST", "/_harness/hold", {"account": "222222222222", "ids": ["snap-doesnotexist"]})
    assert st == 404 and body["missing"] == ["snap-doesnotexist"], (st, body)


@check("age: EBS snapshot StartTime, AMI CreationDate, DB/cluster SnapshotCreateTime move back")
def _() -> None:
    creds = alpha_creds()
    ec2, rds = client("ec2", creds), client("rds", creds)
    sid = ec2.create_snapshot(VolumeId=first_data_volume("alpha"), Description="age test")["SnapshotId"]
    ami = ec2.create_image(InstanceId=tenant("alpha")["resources"]["us-east-1"]["instances"][0]["id"], Name="age-test-ami")["ImageId"]
    rds.create_db_snapshot(DBInstanceIdentifier="alpha-pg", DBSnapshotIdentifier="age-test-db")
    rds.create_db_cluster_snapshot(DBClusterIdentifier="alpha-aurora", DBClusterSnapshotIdentifier="age-test-cl")
    ten_days = 10 * 86400
    r = H("POST", "/_harness/age", {"items": [
        {"account": "222222222222", "region": "us-east-1", "id": sid, "age_seconds": ten_days},
        {"account": "222222222222", "id": ami, "age_seconds": ten_days},
        {"account": "222222222222", "id": "age-test-db", "time": "2020-01-02T03:04:05Z"},
        {"account": "222222222222", "region": "us-east-1", "id": "arn:aws:rds:us-east-1:222222222222:cluster-snapshot:age-test-cl", "age_seconds": ten_days},
    ]})
    assert [x["kind"] for x in r["aged"]] == ["snapshot", "image", "db-snapshot", "db-cluster-snapshot"], r
    target = now() - dt.timedelta(seconds=ten_days)
    st = utc(ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["StartTime"])
    assert abs((st - target).total_seconds()) < 60, st
    cd = ec2.describe_images(ImageIds=[ami])["Images"][0]["CreationDate"]
    cd_t = dt.datetime.fromisoformat(cd.replace("Z", "+00:00"))
    assert abs((cd_t - target).total_seconds()) < 60, cd
    d = rds.describe_db_snapshots(DBSnapshotIdentifier="age-test-db")["DBSnapshots"][0]
    assert utc(d["SnapshotCreateTime"]) == dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), d["SnapshotCreateTime"]
    c = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="age-test-cl")["DBClusterSnapshots"][0]
    assert abs((utc(c["SnapshotCreateTime"]) - target).total_seconds()) < 60, c["SnapshotCreateTime"]
    # filters on start-time see the aged value too
    st_, body = harness("POST", "/_harness/age", {"account": "222222222222", "id": "snap-nope", "age_seconds": 1})
    assert st_ == 404, body


@check("call log counts by account/region/service/action/outcome; reset clears")
def _() -> None:
    creds = alpha_creds()
    ec2 = client("ec2", creds, "us-west-2")
    H("DELETE", "/_harness/calls")
    for _ in range(3):
        ec2.describe_instances()
    assert call_count("222222222222", "us-west-2", "ec2", "DescribeInstances", "ok") == 3
    H("POST", "/_harness/faults", {"action": "DescribeVolumes", "account": "222222222222", "code": "RequestLimitExceeded", "count": 1})
    try:
        expect_error(lambda: ec2.describe_volumes(), "RequestLimitExceeded", 503)
    finally:
        H("DELETE", "/_harness/faults")
    assert call_count("222222222222", "us-west-2", "ec2", "DescribeVolumes", "injected") == 1
    expect_error(lambda: assume(admin_creds(), tenant("gamma")["role_arn"]), "AccessDenied")
    assert call_count("111111111111", "us-east-1", "sts", "AssumeRole", "denied") == 1
    assert call_count("111111111111", "us-east-1", "sts", "AssumeRole", "ok") == 0
    total = H("GET", "/_harness/calls")["total"]
    assert total == 5, total
    H("DELETE", "/_harness/calls")
    assert H("GET", "/_harness/calls") == {"calls": [], "total": 0}


@check("concurrent requests from 8 threads all succeed")
def _() -> None:
    import concurrent.futures as cf

    creds = alpha_creds()
    vol = first_data_volume("alpha")

    def work(n: int) -> int:
        ec2 = client("ec2", creds, "us-east-1")
        done = 0
        for i in range(6):
            if i % 3 == 0:
                ec2.create_snapshot(VolumeId=vol, Description=f"concurrency {n}/{i}")
            elif i % 3 == 1:
                ec2.describe_snapshots()
            else:
                assert instance_ids(ec2) == fixture_ids("alpha", "us-east-1")
            done += 1
        return done

    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(work, range(8))) == 48


@check("DescribeInstances availability-zone filter works (moto bug patched)")
def _() -> None:
    ec2 = client("ec2", alpha_creds())
    got = {i["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": "availability-zone", "Values": ["us-east-1b"]}])["Reservations"] for i in r["Instances"]}
    want = {i["id"] for i in tenant("alpha")["resources"]["us-east-1"]["instances"] if i["az"] == "us-east-1b"}
    assert got == want and want, (got, want)


@check("CreateImage accepts a snapshot TagSpecification (tags land on the AMI's snapshot)")
def _() -> None:
    ec2 = client("ec2", alpha_creds())
    inst = tenant("alpha")["resources"]["us-east-1"]["instances"][0]["id"]
    ami = ec2.create_image(InstanceId=inst, Name="tagspec-test", TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "_GX_BACKUP_", "Value": "77"}]},
        {"ResourceType": "snapshot", "Tags": [{"Key": "_GX_BACKUP_", "Value": "77"}, {"Key": "Name", "Value": "SP_1_77_1_0"}]},
    ])["ImageId"]
    img = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert {t["Key"]: t["Value"] for t in img["Tags"]} == {"_GX_BACKUP_": "77"}, img["Tags"]
    sid = img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    tags = {t["Key"]: t["Value"] for t in ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["Tags"]}
    assert tags == {"_GX_BACKUP_": "77", "Name": "SP_1_77_1_0"}, tags


@check("EC2 DryRun answers DryRunOperation (HTTP 412)")
def _() -> None:
    ec2 = client("ec2", alpha_creds())
    expect_error(lambda: ec2.create_snapshot(VolumeId=first_data_volume("alpha"), DryRun=True), "DryRunOperation", 412)
    expect_error(lambda: ec2.describe_instances(DryRun=True), "DryRunOperation", 412)


@check("gamma's resources exist and are untouched")
def _() -> None:
    g = tenant("gamma")
    ids = fixture_ids("gamma", "us-east-1")
    assert len(ids) == 1
    status, body = raw_query("ec2", "us-east-1", {"Action": "DescribeSnapshots", "Version": "2016-11-15"}, account=g["account"])
    assert status == 200 and b"snap-" not in body, body[:300]


def bucket_tokens(account: str, region: str, bucket: str) -> float | None:
    for b in H("GET", "/_harness/buckets")["buckets"]:
        if (b["account"], b["region"], b["bucket"]) == (account, region, bucket):
            return b["tokens"]
    return None


@check("token buckets: unfiltered DescribeInstances gets a burst of 50, then RequestLimitExceeded 503 counted as throttled")
def _() -> None:
    acct = tenant("alpha")["account"]
    creds = alpha_creds()
    ec2 = client("ec2", creds)
    H("DELETE", "/_harness/calls")
    # refill almost zero, so that the test does not depend on its own speed
    cfg = H("POST", "/_harness/config", {"token_buckets": True, "bucket_scale": 0.0001})
    assert cfg["token_buckets"] is True and cfg["bucket_scale"] == 0.0001, cfg
    try:
        for _ in range(50):
            ec2.describe_instances()
        e = expect_error(lambda: ec2.describe_instances(), "RequestLimitExceeded", 503)
        assert e.response["Error"]["Message"] == "Request limit exceeded.", e.response
        expect_error(lambda: ec2.describe_instances(), "RequestLimitExceeded", 503)
        assert call_count(acct, "us-east-1", "ec2", "DescribeInstances", "throttled") == 2
        assert call_count(acct, "us-east-1", "ec2", "DescribeInstances", "ok") == 50
        # a filtered (or id-scoped, or paginated) describe draws from the Describe* bucket (100)
        ec2.describe_instances(Filters=[{"Name": "tag:Backup", "Values": ["nightly"]}])
        ec2.describe_instances(MaxResults=5)
        ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["_GX_BACKUP_"]}])
        assert abs(bucket_tokens(acct, "us-east-1", "describe") - 97.0) < 0.05
        assert bucket_tokens(acct, "us-east-1", "describe-unfiltered") < 0.05
        # another region (and another account) has buckets of its own
        client("ec2", creds, region="us-west-2").describe_instances()
        # RDS and STS are not throttled
        client("rds", creds).describe_db_instances()
        client("sts", creds).get_caller_identity()
        # refill follows bucket_scale: 10/s x 10000 refills the 50 at once
        H("POST", "/_harness/config", {"bucket_scale": 10000})
        time.sleep(0.05)
        ec2.describe_instances()
    finally:
        H("POST", "/_harness/config", {"token_buckets": False, "bucket_scale": 1.0})
    ec2.describe_instances()  # off again: no throttling
    b = H("GET", "/_harness/buckets")
    assert b["token_buckets"] is False and b["buckets"] == [], b


@check("token buckets: CreateSnapshot(s), CreateTags and the default mutating bucket are separate; DELETE /_harness/buckets refills")
def _() -> None:
    acct = tenant("alpha")["account"]
    ec2 = client("ec2", alpha_creds())
    H("POST", "/_harness/config", {"token_buckets": True, "bucket_scale": 0.0001})
    try:
        inst = tenant("alpha")["resources"]["us-east-1"]["instances"][0]["id"]
        snaps = ec2.create_snapshots(InstanceSpecification={"InstanceId": inst})["Snapshots"]
        ec2.create_snapshot(VolumeId=first_data_volume("alpha"))
        ec2.create_tags(Resources=[snaps[0]["SnapshotId"]], Tags=[{"Key": "bench", "Value": "1"}])
        ec2.modify_snapshot_attribute(SnapshotId=snaps[0]["SnapshotId"], Attribute="createVolumePermission",
                                      OperationType="add", UserIds=["999999999999"])
        ec2.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=snaps[0]["SnapshotId"])
        for sid in [s["SnapshotId"] for s in snaps]:
            ec2.delete_snapshot(SnapshotId=sid)
        got = {b["bucket"]: b["tokens"] for b in H("GET", "/_harness/buckets")["buckets"]
               if b["account"] == acct and b["region"] == "us-east-1"}
        want = {"CreateSnapshot": 98.0, "CreateTags": 99.0, "mutating": 49.0, "CopySnapshot": 99.0,
                "DeleteSnapshot": 100.0 - len(snaps)}
        assert set(got) == set(want) and all(abs(got[k] - want[k]) < 0.05 for k in want), got
        sizes = {b["bucket"]: (b["size"], b["refill_per_second"]) for b in H("GET", "/_harness/buckets")["buckets"]}
        assert sizes["CreateSnapshot"] == (100.0, 0.0005) and sizes["mutating"] == (50.0, 0.0005), sizes
        assert H("DELETE", "/_harness/buckets")["reset"] >= 5
        assert bucket_tokens(acct, "us-east-1", "CreateSnapshot") is None
    finally:
        H("POST", "/_harness/config", {"token_buckets": False, "bucket_scale": 1.0})


@check("token buckets: min_tokens is the fewest a call left, lost_refill_seconds the time a bucket sat full after its first call")
def _() -> None:
    acct = tenant("alpha")["account"]
    ec2 = client("ec2", alpha_creds())
    flt = [{"Name": "tag:Backup", "Values": ["nightly"]}]

    def view() -> dict[str, Any]:
        return next(b for b in H("GET", "/_harness/buckets")["buckets"]
                    if (b["account"], b["region"], b["bucket"]) == (acct, "us-east-1", "describe"))
    H("POST", "/_harness/config", {"token_buckets": True, "bucket_scale": 0.0001})
    try:
        for _ in range(3):
            ec2.describe_instances(Filters=flt)
        b = view()
        assert abs(b["min_tokens"] - 97.0) < 0.05 and b["lost_refill_seconds"] < 0.01, b
        # refill 200 000/s: full again at once, and full until the next call
        H("POST", "/_harness/config", {"bucket_scale": 10000})
        time.sleep(0.3)
        ec2.describe_instances(Filters=flt)
        b = view()
        assert 0.25 < b["lost_refill_seconds"] < 5.0, b
        assert abs(b["min_tokens"] - 97.0) < 0.05, b
    finally:
        H("POST", "/_harness/config", {"token_buckets": False, "bucket_scale": 1.0})


@check("latency_ms delays every call outside the moto lock: 8 parallel calls overlap")
def _() -> None:
    import concurrent.futures as cf

    creds = alpha_creds()
    assert H("POST", "/_harness/config", {"latency_ms": 400})["latency_ms"] == 400.0
    try:
        def one(_: int) -> float:
            t = time.time()
            client("ec2", creds).describe_availability_zones()
            return time.time() - t

        t0 = time.time()
        with cf.ThreadPoolExecutor(8) as pool:
            each = list(pool.map(one, range(8)))
        total = time.time() - t0
        assert min(each) >= 0.4, each
        assert total < 8 * 0.4 / 2, (total, each)  # serialized would take 3.2 s
        t = time.time()  # control requests are not delayed
        H("GET", "/_harness/config")
        assert time.time() - t < 0.3
    finally:
        H("POST", "/_harness/config", {"latency_ms": 0})
    status, payload = harness("POST", "/_harness/config", {"latency_ms": -1})
    assert status == 400, payload
    status, payload = harness("POST", "/_harness/config", {"token_buckets": "yes"})
    assert status == 400, payload
    status, payload = harness("POST", "/_harness/config", {"bucket_scale": 0})
    assert status == 400, payload


@check("GET /_harness/timing reports time spent inside moto; POST /_harness/reset switches buckets and latency off")
def _() -> None:
    H("DELETE", "/_harness/timing")
    client("ec2", alpha_creds()).describe_instances()
    t = H("GET", "/_harness/timing")
    assert t["requests"] >= 2 and t["by_action"]["DescribeInstances"]["count"] == 1, t
    assert t["moto_seconds"] > 0 and 0 <= t["moto_busy_fraction"] <= 1, t
    H("POST", "/_harness/config", {"token_buckets": True, "latency_ms": 5, "bucket_scale": 2})
    H("POST", "/_harness/reset")
    cfg = H("GET", "/_harness/config")
    assert (cfg["token_buckets"], cfg["latency_ms"], cfg["bucket_scale"]) == (False, 0.0, 1.0), cfg


@check("GET /_harness/inventory counts snapshots per account x region; POST /_harness/age {all} ages everything that exists")
def _() -> None:
    g = tenant("gamma")
    inst = g["resources"]["us-east-1"]["instances"][0]
    before = H("GET", "/_harness/inventory")
    row = next((r for r in before["inventory"] if r["account"] == g["account"] and r["region"] == "us-east-1"), None)
    n0 = row["snapshots"] if row else 0
    status, body = raw_query("ec2", "us-east-1", {"Action": "CreateSnapshot", "Version": "2016-11-15", "VolumeId": inst["volumes"][0]["id"]}, account=g["account"])
    assert status == 200, body[:300]
    after = H("GET", "/_harness/inventory")
    row = next(r for r in after["inventory"] if r["account"] == g["account"] and r["region"] == "us-east-1")
    assert row["snapshots"] == n0 + 1 and row["snapshots_completed"] == row["snapshots"], row
    assert after["totals"]["snapshots"] == before["totals"]["snapshots"] + 1, after["totals"]
    aged = H("POST", "/_harness/age", {"all": True, "account": g["account"], "age_seconds": 86400 * 9})["aged"]
    assert len(aged) == n0 + 1 and all(a["account"] == g["account"] for a in aged), aged
    sid = re_search(rb"<snapshotId>([^<]+)</snapshotId>", body)
    t = next(a["time"] for a in aged if a["id"] == sid)
    assert abs((utc(dt.datetime.fromisoformat(t.replace("Z", "+00:00"))) - now()).total_seconds() + 86400 * 9) < 60, t


def re_search(pattern: bytes, body: bytes) -> str:
    import re

    m = re.search(pattern, body)
    assert m, body[:300]
    return m.group(1).decode()


@check("unknown key / no Authorization passes through to moto")
def _() -> None:
    status, body = raw_query("sts", "us-east-1", {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, access_key="AKIAUNKNOWNKEY000000")
    assert status == 200 and b"GetCallerIdentityResult" in body, body


def signed_query(creds: dict[str, str], service: str, params: dict[str, str], region: str = "us-east-1") -> tuple[int, bytes]:
    """A SigV4-signed query-protocol POST whose body encodes spaces as %20."""
    from urllib.parse import quote

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    data = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items()).encode()
    req = AWSRequest(method="POST", url=CTX.endpoint + "/", data=data, headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken")), service, region).add_auth(req)
    r = urllib.request.Request(CTX.endpoint + "/", data=data, method="POST", headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def moto_reset_auth(value: str) -> None:
    req = urllib.request.Request(CTX.endpoint + "/moto-api/reset-auth", data=value.encode(), method="POST")
    req.add_header("Content-Type", "text/plain")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200, r.read()


@check("enforce_tag_conditions: a tenant role deletes only what carries _GX_BACKUP_; moto IAM enforcement refuses AWS-like and lets the admin assume its own role")
def _() -> None:
    b = tenant("beta")  # the seeded guide policy: DeleteSnapshot only with ec2:ResourceTag/_GX_BACKUP_
    ec2 = client("ec2", assume(admin_creds(), b["role_arn"], b["external_id"])["Credentials"])
    vol = first_data_volume("beta")
    mark = [{"ResourceType": "snapshot", "Tags": [{"Key": "_GX_BACKUP_", "Value": "1"}]}]
    # switch off (default): moto ignores the Condition, an untagged snapshot goes
    assert H("GET", "/_harness/config")["enforce_tag_conditions"] is False
    ec2.delete_snapshot(SnapshotId=ec2.create_snapshot(VolumeId=vol)["SnapshotId"])
    untagged = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    tagged = ec2.create_snapshot(VolumeId=vol, TagSpecifications=mark)["SnapshotId"]
    status, payload = harness("POST", "/_harness/config", {"enforce_tag_conditions": "yes"})
    assert status == 400, payload
    assert H("POST", "/_harness/config", {"enforce_tag_conditions": True})["enforce_tag_conditions"] is True
    try:
        e = expect_error(lambda: ec2.delete_snapshot(SnapshotId=untagged), "UnauthorizedOperation", 403)
        assert "ec2:DeleteSnapshot" in str(e) and f"snapshot/{untagged}" in str(e), e
        ec2.delete_snapshot(SnapshotId=tagged)
        assert call_count(b["account"], "us-east-1", "ec2", "DeleteSnapshot", "denied") == 1
        # RDS: the guide's policy has no rds:DeleteDBInstance at all
        rds = client("rds", assume(admin_creds(), b["role_arn"], b["external_id"])["Credentials"])
        expect_error(lambda: rds.delete_db_instance(DBInstanceIdentifier="beta-pg", SkipFinalSnapshot=True), "AccessDenied", 403)
        # set-up calls (unknown key, x-moto-account-id) are never checked
        status, body = raw_query("ec2", "us-east-1", {"Action": "DeleteSnapshot", "Version": "2016-11-15", "SnapshotId": untagged}, account=b["account"])
        assert status == 200, body[:300]
        # moto's own enforcement: refusals in AWS's shape; the admin may assume its own role
        moto_reset_auth("0")
        try:
            expect_error(lambda: ec2.delete_vpc(VpcId=b["resources"]["us-east-1"]["vpc_id"]), "UnauthorizedOperation", 403)
            expect_error(lambda: ec2.describe_route_tables(), "UnauthorizedOperation", 403)
            ec2.describe_instances()
            admin_role = assume(admin_creds(), CTX.fx["admin"]["admin_role_arn"])["Credentials"]
            ident = client("sts", admin_role).get_caller_identity()
            assert ":assumed-role/vsa-assume-role/" in ident["Arn"], ident
            chained = assume(admin_role, b["role_arn"], b["external_id"])["Credentials"]
            # signed as the Rust SDK encodes a space (%20; boto3 sends "+", as moto rebuilds it)
            status, body = signed_query(chained, "ec2", {"Action": "CreateSnapshot", "Version": "2016-11-15", "VolumeId": vol, "Description": "a description with spaces"})
            assert status == 200, body[:300]
        finally:
            moto_reset_auth("inf")
    finally:
        H("POST", "/_harness/config", {"enforce_tag_conditions": False})
    assert H("GET", "/_harness/config")["enforce_tag_conditions"] is False


# A policy in the printed policy's shape (rolesnap policy tenant), small enough to
# read here: each condition key it relies on appears once.
STRICT_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:CreateSnapshot", "ec2:CreateImage", "ec2:RunInstances"], "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
         "Condition": {"StringEquals": {"ec2:CreateAction": ["CreateSnapshot", "CreateImage", "RunInstances"]}}},
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "arn:aws:ec2:*::snapshot/*",
         "Condition": {"StringLike": {"aws:ResourceTag/_GX_BACKUP_": "*"},
                       "ForAllValues:StringEquals": {"aws:TagKeys": ["_GX_AMI_"]}, "Null": {"aws:TagKeys": "false"}}},
        {"Effect": "Deny", "Action": "ec2:CreateTags", "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["_GX_BACKUP_", "_GX_PLAN_"]}, "Null": {"ec2:CreateAction": "true"}}},
        # An Allow that the Deny above must beat.
        {"Effect": "Allow", "Action": ["ec2:CreateTags", "ec2:DeleteTags"], "Resource": "arn:aws:ec2:*:*:instance/*"},
        {"Effect": "Deny", "Action": "ec2:DeleteTags", "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["_GX_BACKUP_", "CV_Retain_Snap"]}}},
        {"Effect": "Deny", "Action": "ec2:DeleteTags", "Resource": "*", "Condition": {"Null": {"aws:TagKeys": "true"}}},
        {"Effect": "Allow", "Action": ["ec2:DeleteSnapshot", "ec2:DeregisterImage", "ec2:TerminateInstances", "ec2:DeleteVolume"],
         "Resource": "*", "Condition": {"StringLike": {"aws:ResourceTag/_GX_BACKUP_": "*"}}},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::*:role/*",
         "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}},
        {"Effect": "Deny", "Action": "iam:PassRole", "Resource": "arn:aws:iam::*:role/lambda-only",
         "Condition": {"StringNotEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
        {"Effect": "Allow", "Action": ["rds:Describe*", "rds:CreateDBSnapshot"], "Resource": "*"},
        {"Effect": "Allow", "Action": "rds:AddTagsToResource", "Resource": "arn:aws:rds:*:*:snapshot:sp-*",
         "Condition": {"StringLike": {"aws:RequestTag/_GX_BACKUP_": "*"}}},
        {"Effect": "Allow", "Action": "rds:DeleteDBSnapshot", "Resource": "arn:aws:rds:*:*:snapshot:sp-*",
         "Condition": {"StringLike": {"rds:snapshot-tag/_GX_BACKUP_": "*"}}},
        {"Effect": "Allow", "Action": ["rds:RemoveTagsFromResource"], "Resource": "*"},
        {"Effect": "Deny", "Action": "rds:RemoveTagsFromResource", "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["_GX_BACKUP_", "CV_Retain_Snap"]}}},
    ],
}


@check("conditions: ec2:CreateAction, aws:TagKeys, aws:RequestTag, resource tags, rds:*-tag, iam:PassedToService; Deny beats Allow")
def _() -> None:
    sys.path.insert(0, HERE)
    from attach_policy import replace_role_policy
    from seed import Clients

    b = tenant("beta")
    acct = b["account"]
    iam = Clients(CTX.endpoint, acct)("iam")
    for role in ("lambda-only", "ec2-ok"):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
        iam.create_instance_profile(InstanceProfileName=f"{role}-profile")
        iam.add_role_to_instance_profile(InstanceProfileName=f"{role}-profile", RoleName=role)
    creds = assume(admin_creds(), b["role_arn"], b["external_id"])["Credentials"]
    ec2, rds = client("ec2", creds), client("rds", creds)
    vol = first_data_volume("beta")
    inst = b["resources"]["us-east-1"]["instances"][0]["id"]
    mark = lambda rtype, **kv: [{"ResourceType": rtype, "Tags": [{"Key": k, "Value": v} for k, v in kv.items()]}]  # noqa: E731
    customer = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    rds.create_db_snapshot(DBInstanceIdentifier="beta-pg", DBSnapshotIdentifier="customer-snap")
    replace_role_policy(CTX.endpoint, acct, "vsa-role", STRICT_POLICY, "strict-selftest")
    H("POST", "/_harness/config", {"enforce_tag_conditions": True})
    moto_reset_auth("0")
    try:
        denied0 = call_count(acct, "us-east-1", "ec2", "CreateTags", "denied")
        # ec2:CreateAction: tags at creation are allowed, the same tags later are not
        own = ec2.create_snapshot(VolumeId=vol, TagSpecifications=mark("snapshot", _GX_BACKUP_="7", CV_Retain_Snap="x"))["SnapshotId"]
        expect_error(lambda: ec2.create_tags(Resources=[customer], Tags=[{"Key": "_GX_BACKUP_", "Value": "1"}]), "UnauthorizedOperation", 403)
        # the Deny beats the instance Allow; a harmless tag on the instance is fine
        expect_error(lambda: ec2.create_tags(Resources=[inst], Tags=[{"Key": "Owner", "Value": "x"}, {"Key": "_GX_BACKUP_", "Value": "1"}]), "UnauthorizedOperation", 403)
        ec2.create_tags(Resources=[inst], Tags=[{"Key": "Owner", "Value": "x"}])
        assert call_count(acct, "us-east-1", "ec2", "CreateTags", "denied") == denied0 + 2
        # aws:ResourceTag + ForAllValues aws:TagKeys: _GX_AMI_ only, only on own snapshots
        ec2.create_tags(Resources=[own], Tags=[{"Key": "_GX_AMI_", "Value": "ami-1"}])
        expect_error(lambda: ec2.create_tags(Resources=[customer], Tags=[{"Key": "_GX_AMI_", "Value": "ami-1"}]), "UnauthorizedOperation", 403)
        expect_error(lambda: ec2.create_tags(Resources=[own], Tags=[{"Key": "_GX_AMI_", "Value": "a"}, {"Key": "Other", "Value": "b"}]), "UnauthorizedOperation", 403)
        # ForAnyValue aws:TagKeys in a Deny; DeleteTags without keys (aws:TagKeys absent)
        expect_error(lambda: ec2.delete_tags(Resources=[inst], Tags=[{"Key": "CV_Retain_Snap"}]), "UnauthorizedOperation", 403)
        expect_error(lambda: ec2.delete_tags(Resources=[inst]), "UnauthorizedOperation", 403)
        ec2.delete_tags(Resources=[inst], Tags=[{"Key": "Owner"}])
        tags = {t["Key"]: t["Value"] for t in ec2.describe_snapshots(SnapshotIds=[customer])["Snapshots"][0].get("Tags", [])}
        assert tags == {}, tags
        # aws:ResourceTag on deletes
        expect_error(lambda: ec2.delete_snapshot(SnapshotId=customer), "UnauthorizedOperation", 403)
        expect_error(lambda: ec2.terminate_instances(InstanceIds=[inst]), "UnauthorizedOperation", 403)
        expect_error(lambda: ec2.modify_snapshot_attribute(SnapshotId=customer, Attribute="createVolumePermission",
                                                           OperationType="add", GroupNames=["all"]), "UnauthorizedOperation", 403)
        # iam:PassedToService through RunInstances' instance profile
        run = lambda prof: ec2.run_instances(ImageId="ami-760aaa0f", MinCount=1, MaxCount=1, IamInstanceProfile={"Name": prof})  # noqa: E731
        e = expect_error(lambda: run("lambda-only-profile"), "UnauthorizedOperation", 403)
        assert "iam:PassRole" in str(e), e
        made = run("ec2-ok-profile")["Instances"][0]["InstanceId"]
        expect_error(lambda: ec2.terminate_instances(InstanceIds=[made]), "UnauthorizedOperation", 403)
        # RDS: create-time tags through rds:AddTagsToResource on the new ARN
        rds.create_db_snapshot(DBInstanceIdentifier="beta-pg", DBSnapshotIdentifier="sp-self-1", Tags=[{"Key": "_GX_BACKUP_", "Value": "7"}])
        expect_error(lambda: rds.create_db_snapshot(DBInstanceIdentifier="beta-pg", DBSnapshotIdentifier="not-sp", Tags=[{"Key": "_GX_BACKUP_", "Value": "7"}]), "AccessDenied", 403)
        arn = lambda n: f"arn:aws:rds:us-east-1:{acct}:snapshot:{n}"  # noqa: E731
        expect_error(lambda: rds.add_tags_to_resource(ResourceName=arn("customer-snap"), Tags=[{"Key": "_GX_BACKUP_", "Value": "1"}]), "AccessDenied", 403)
        expect_error(lambda: rds.delete_db_snapshot(DBSnapshotIdentifier="customer-snap"), "AccessDenied", 403)
        expect_error(lambda: rds.remove_tags_from_resource(ResourceName=arn("sp-self-1"), TagKeys=["_GX_BACKUP_"]), "AccessDenied", 403)
        rds.delete_db_snapshot(DBSnapshotIdentifier="sp-self-1")
        ec2.delete_snapshot(SnapshotId=own)
    finally:
        moto_reset_auth("inf")
        H("POST", "/_harness/config", {"enforce_tag_conditions": False})
        replace_role_policy(CTX.endpoint, acct, "vsa-role", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, "selftest-restore")
        iam.detach_role_policy(RoleName="vsa-role", PolicyArn=f"arn:aws:iam::{acct}:policy/selftest-restore")
        iam.attach_role_policy(RoleName="vsa-role", PolicyArn=b["policy_arn"])
    assert {s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=[customer])["Snapshots"]} == {customer}
    assert rds.describe_db_snapshots(DBSnapshotIdentifier="customer-snap")["DBSnapshots"]


@check("EBS Snapshot Lock: Lock/Unlock/DescribeLockedSnapshots, DeleteSnapshot of a locked snapshot refused, expiry on the layer clock")
def _() -> None:
    ec2 = client("ec2", alpha_creds())
    vol = first_data_volume("alpha")
    gov, comp, cool = (ec2.create_snapshot(VolumeId=vol)["SnapshotId"] for _ in range(3))
    r = ec2.lock_snapshot(SnapshotId=gov, LockMode="governance", LockDuration=2)
    assert r["LockState"] == "governance" and r["LockDuration"] == 2, r
    ec2.lock_snapshot(SnapshotId=comp, LockMode="compliance", LockDuration=3)
    ec2.lock_snapshot(SnapshotId=cool, LockMode="compliance", LockDuration=3, CoolOffPeriod=1)
    for sid in (gov, comp, cool):
        e = expect_error(lambda: ec2.delete_snapshot(SnapshotId=sid), "SnapshotLocked", 400)
        assert sid in str(e)
    info = {i["SnapshotId"]: i for i in ec2.describe_locked_snapshots(SnapshotIds=[gov, comp, cool])["Snapshots"]}
    assert {k: v["LockState"] for k, v in info.items()} == {gov: "governance", comp: "compliance", cool: "compliance-cooloff"}, info
    assert info[gov]["LockExpiresOn"] - info[gov]["LockCreatedOn"] == dt.timedelta(days=2), info[gov]
    only = ec2.describe_locked_snapshots(Filters=[{"Name": "lock-state", "Values": ["compliance"]}])["Snapshots"]
    assert [i["SnapshotId"] for i in only] == [comp], only
    # compliance after its cooling-off period: no unlock, no shortening; extending is fine
    expect_error(lambda: ec2.unlock_snapshot(SnapshotId=comp), "InvalidParameterValue", 400)
    expect_error(lambda: ec2.lock_snapshot(SnapshotId=comp, LockMode="compliance", LockDuration=1), "InvalidParameterValue", 400)
    expect_error(lambda: ec2.lock_snapshot(SnapshotId=comp, LockMode="governance", LockDuration=5), "InvalidParameterValue", 400)
    assert ec2.lock_snapshot(SnapshotId=comp, LockMode="compliance", LockDuration=4)["LockState"] == "compliance"
    expect_error(lambda: ec2.lock_snapshot(SnapshotId=gov, LockMode="governance", LockDuration=1, CoolOffPeriod=2), "InvalidParameterCombination", 400)
    # governance and compliance-cooloff can be unlocked
    ec2.unlock_snapshot(SnapshotId=gov)
    ec2.unlock_snapshot(SnapshotId=cool)
    ec2.delete_snapshot(SnapshotId=gov)
    ec2.delete_snapshot(SnapshotId=cool)
    # expiry follows the layer clock
    H("POST", "/_harness/config", {"advance_clock_seconds": 5 * 86400})
    try:
        ec2 = client("ec2", alpha_creds())
        assert ec2.describe_locked_snapshots(SnapshotIds=[comp])["Snapshots"][0]["LockState"] == "expired"
        ec2.delete_snapshot(SnapshotId=comp)
    finally:
        H("POST", "/_harness/config", {"clock_offset_seconds": 0})
    assert call_count(tenant("alpha")["account"], "us-east-1", "ec2", "DeleteSnapshot", "error") >= 3


@check("linger_deleted_seconds: a deleted snapshot stays listed (RDS: deleting); deleting it again gets AWS's error")
def _() -> None:
    import botocore.exceptions

    creds = alpha_creds()
    ec2, rds = client("ec2", creds), client("rds", creds)
    sid = ec2.create_snapshot(VolumeId=first_data_volume("alpha"))["SnapshotId"]
    rds.create_db_snapshot(DBInstanceIdentifier="alpha-pg", DBSnapshotIdentifier="linger-test-db")
    assert H("POST", "/_harness/config", {"linger_deleted_seconds": 1.5})["linger_deleted_seconds"] == 1.5
    try:
        ec2.delete_snapshot(SnapshotId=sid)
        gone = rds.delete_db_snapshot(DBSnapshotIdentifier="linger-test-db")["DBSnapshot"]
        assert gone["Status"] == "deleting", gone
        assert [s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"]] == [sid]
        listed = rds.describe_db_snapshots(DBSnapshotIdentifier="linger-test-db")["DBSnapshots"]
        assert [s["Status"] for s in listed] == ["deleting"], listed
        for call, code in ((lambda: ec2.delete_snapshot(SnapshotId=sid), "InvalidSnapshot.NotFound"),
                           (lambda: rds.delete_db_snapshot(DBSnapshotIdentifier="linger-test-db"), "InvalidDBSnapshotState")):
            try:
                call()
                raise AssertionError(f"second delete accepted, expected {code}")
            except botocore.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] == code, e.response
        time.sleep(1.6)
        assert sid not in {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
        assert "linger-test-db" not in {s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]}
    finally:
        H("POST", "/_harness/config", {"linger_deleted_seconds": 0})
    status, payload = harness("POST", "/_harness/config", {"linger_deleted_seconds": -1})
    assert status == 400, payload


@check("DescribeSnapshots pages by MaxResults / NextToken (moto answers everything at once)")
def _() -> None:
    creds = alpha_creds()
    ec2 = client("ec2", creds, "us-west-2")
    vol = tenant("alpha")["resources"]["us-west-2"]["instances"][0]["volumes"][0]["id"]
    made = {ec2.create_snapshot(VolumeId=vol, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "paging", "Value": "1"}]}])["SnapshotId"] for _ in range(7)}
    flt = [{"Name": "tag:paging", "Values": ["1"]}]
    first = ec2.describe_snapshots(OwnerIds=["self"], Filters=flt, MaxResults=5)
    assert len(first["Snapshots"]) == 5 and first.get("NextToken"), first
    rest = ec2.describe_snapshots(OwnerIds=["self"], Filters=flt, MaxResults=5, NextToken=first["NextToken"])
    assert len(rest["Snapshots"]) == 2 and not rest.get("NextToken"), rest
    assert {s["SnapshotId"] for s in first["Snapshots"] + rest["Snapshots"]} == made
    assert len(ec2.describe_snapshots(OwnerIds=["self"], Filters=flt)["Snapshots"]) == 7
    status, body = raw_query("ec2", "us-west-2", {"Action": "DescribeSnapshots", "Version": "2016-11-15", "MaxResults": "2"}, account=tenant("alpha")["account"])
    assert status == 400 and b"InvalidParameterValue" in body, body[:300]


# --- cross-account sharing and KMS (shares.py) ---------------------------------


def vault() -> dict[str, Any]:
    return CTX.fx["vaults"][0]


def vault_creds() -> dict[str, str]:
    v = vault()
    return assume(admin_creds(), v["role_arn"], v["external_id"])["Credentials"]


def encrypted_volume(ec2: Any, kms_key: str | None = None, size: int = 5) -> str:
    kw: dict[str, Any] = {"Encrypted": True}
    if kms_key:
        kw["KmsKeyId"] = kms_key
    return ec2.create_volume(AvailabilityZone="us-east-1a", Size=size, **kw)["VolumeId"]


@check("KMS: an encrypted volume without KmsKeyId uses aws/ebs (KeyManager AWS); customer keys answer CUSTOMER and their policy")
def _() -> None:
    a = tenant("alpha")
    creds = alpha_creds()
    ec2, kms = client("ec2", creds), client("kms", creds)
    snap = ec2.create_snapshot(VolumeId=encrypted_volume(ec2))["SnapshotId"]
    s = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert s["Encrypted"] and s["KmsKeyId"].startswith(f"arn:aws:kms:us-east-1:{a['account']}:key/"), s
    assert kms.describe_key(KeyId=s["KmsKeyId"])["KeyMetadata"]["KeyManager"] == "AWS"
    assert kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"] == s["KmsKeyId"]
    shared = a["keys"]["shared"]["us-east-1"]
    assert kms.describe_key(KeyId=shared)["KeyMetadata"]["KeyManager"] == "CUSTOMER"
    assert kms.describe_key(KeyId="alias/rolesnap-shared")["KeyMetadata"]["Arn"] == shared
    pol = json.loads(kms.get_key_policy(KeyId=shared, PolicyName="default")["Policy"])
    assert any("arn:aws:iam::555555555555:root" in json.dumps(st.get("Principal")) for st in pol["Statement"]), pol
    # a volume made with an alias reports the key ARN; its snapshot carries it
    vol = encrypted_volume(ec2, "alias/rolesnap-shared")
    assert ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["KmsKeyId"] == shared
    snap2 = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    assert ec2.describe_snapshots(SnapshotIds=[snap2])["Snapshots"][0]["KmsKeyId"] == shared
    # RunInstances with an encrypted block device
    inst = ec2.run_instances(ImageId="ami-760aaa0f", MinCount=1, MaxCount=1, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "Encrypted": True, "KmsKeyId": shared}}])["Instances"][0]
    vid = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    v = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]
    assert v["Encrypted"] and v["KmsKeyId"] == shared, v
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])


@check("EBS share: aws/ebs refused (OperationNotPermitted); shared key -> visible in the vault, copied with the vault key and tags; unshare hides it; the copy outlives the original")
def _() -> None:
    a, v = tenant("alpha"), vault()
    ec2 = client("ec2", alpha_creds())
    vec2 = client("ec2", vault_creds())
    vec2_west = client("ec2", vault_creds(), region="us-west-2")
    managed = ec2.create_snapshot(VolumeId=encrypted_volume(ec2))["SnapshotId"]
    e = expect_error(lambda: ec2.modify_snapshot_attribute(SnapshotId=managed, Attribute="createVolumePermission",
                                                           OperationType="add", UserIds=[v["account"]]), "OperationNotPermitted", 400)
    assert "EBS default key cannot be shared" in str(e), e
    snap = ec2.create_snapshot(VolumeId=encrypted_volume(ec2, a["keys"]["shared"]["us-east-1"], size=7), Description="rp-1")["SnapshotId"]
    # not shared: invisible
    expect_error(lambda: vec2.describe_snapshots(SnapshotIds=[snap]), "InvalidSnapshot.NotFound")
    expect_error(lambda: vec2.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1"), "InvalidSnapshot.NotFound")
    # the CreateVolumePermission.Add form (what boto3 sends for the structure)
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                  CreateVolumePermission={"Add": [{"UserId": v["account"]}]})
    attr = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert attr["CreateVolumePermissions"] == [{"UserId": v["account"]}], attr
    got = vec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"]
    assert [s["OwnerId"] for s in got] == [a["account"]], got
    assert snap in {s["SnapshotId"] for s in vec2.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]}
    assert snap in {s["SnapshotId"] for s in vec2.describe_snapshots(RestorableByUserIds=[v["account"]])["Snapshots"]}
    assert {s["SnapshotId"] for s in vec2.describe_snapshots(OwnerIds=[a["account"]])["Snapshots"]} == {snap}
    assert snap not in {s["SnapshotId"] for s in vec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert snap not in {s["SnapshotId"] for s in vec2.describe_snapshots()["Snapshots"]}
    # copy in the vault, into us-west-2, with the vault's key there and tags
    H("POST", "/_harness/hold", {"account": v["account"], "region": "us-west-2", "kinds": ["snapshot"]})
    try:
        bad = vec2_west.copy_snapshot
        expect_error(lambda: bad(SourceSnapshotId=snap, SourceRegion="us-east-1", Encrypted=True, KmsKeyId=v["keys"]["us-east-1"]), "InvalidParameterValue")
        cp = vec2_west.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1", Encrypted=True, KmsKeyId=v["keys"]["us-west-2"],
                                     Description="rp-1", TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "_GX_VAULT_", "Value": "1"}]}])["SnapshotId"]
        c = vec2_west.describe_snapshots(SnapshotIds=[cp])["Snapshots"][0]
        assert c["OwnerId"] == v["account"] and c["Encrypted"] and c["KmsKeyId"] == v["keys"]["us-west-2"], c
        assert c["VolumeSize"] == 7 and c["Description"] == "rp-1" and c["State"] == "pending", c
        assert {t["Key"]: t["Value"] for t in c["Tags"]} == {"_GX_VAULT_": "1"}, c
        assert cp in {s["SnapshotId"] for s in vec2_west.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    finally:
        H("POST", "/_harness/release", {"all": True})
    # unshare (UserId.N + OperationType=remove form): invisible again; the copy stays
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", OperationType="remove", UserIds=[v["account"]])
    expect_error(lambda: vec2.describe_snapshots(SnapshotIds=[snap]), "InvalidSnapshot.NotFound")
    assert snap not in {s["SnapshotId"] for s in vec2.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]}
    ec2.delete_snapshot(SnapshotId=snap)
    c = vec2_west.describe_snapshots(SnapshotIds=[cp])["Snapshots"][0]
    assert c["State"] == "completed", c
    assert call_count(v["account"], "us-west-2", "ec2", "CopySnapshot", "ok") >= 1


@check("EBS copy: a key that does not grant the vault is refused; restore: the vault shares back with its key, the tenant copies with its own")
def _() -> None:
    a, v = tenant("alpha"), vault()
    ec2, vec2 = client("ec2", alpha_creds()), client("ec2", vault_creds())
    priv = ec2.create_snapshot(VolumeId=encrypted_volume(ec2, a["keys"]["private"]["us-east-1"]))["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=priv, Attribute="createVolumePermission", OperationType="add", UserIds=[v["account"]])
    e = expect_error(lambda: vec2.copy_snapshot(SourceSnapshotId=priv, SourceRegion="us-east-1", KmsKeyId=v["keys"]["us-east-1"]), "InvalidParameter", 400)
    assert "KMS key" in str(e), e
    # restore direction: vault copy shared with alpha; alpha copies with its own key
    snap = ec2.create_snapshot(VolumeId=encrypted_volume(ec2, a["keys"]["shared"]["us-east-1"]))["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[v["account"]])
    vc = vec2.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1", KmsKeyId=v["keys"]["us-east-1"], Encrypted=True)["SnapshotId"]
    vec2.modify_snapshot_attribute(SnapshotId=vc, Attribute="createVolumePermission", OperationType="add", UserIds=[a["account"]])
    back = ec2.copy_snapshot(SourceSnapshotId=vc, SourceRegion="us-east-1", Encrypted=True, KmsKeyId=a["keys"]["private"]["us-east-1"])["SnapshotId"]
    b = ec2.describe_snapshots(SnapshotIds=[back])["Snapshots"][0]
    assert b["OwnerId"] == a["account"] and b["KmsKeyId"] == a["keys"]["private"]["us-east-1"], b
    # without KmsKeyId: the destination account's aws/ebs key
    back2 = ec2.copy_snapshot(SourceSnapshotId=vc, SourceRegion="us-east-1", Encrypted=True)["SnapshotId"]
    k = ec2.describe_snapshots(SnapshotIds=[back2])["Snapshots"][0]["KmsKeyId"]
    assert client("kms", alpha_creds()).describe_key(KeyId=k)["KeyMetadata"]["KeyManager"] == "AWS", k


@check("AMI share: CopyImage in the vault needs the image and its snapshot shared; the copy is the vault's")
def _() -> None:
    a, v = tenant("alpha"), vault()
    ec2, vec2 = client("ec2", alpha_creds()), client("ec2", vault_creds())
    inst = a["resources"]["us-east-1"]["instances"][0]["id"]
    img = ec2.create_image(InstanceId=inst, Name="share-test")["ImageId"]
    snap = ec2.describe_images(ImageIds=[img])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.modify_image_attribute(ImageId=img, LaunchPermission={"Add": [{"UserId": v["account"]}]})
    expect_error(lambda: vec2.copy_image(SourceImageId=img, SourceRegion="us-east-1", Name="xyz"), "InvalidRequest")
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[v["account"]])
    cp = vec2.copy_image(SourceImageId=img, SourceRegion="us-east-1", Name="vault-copy", KmsKeyId=v["keys"]["us-east-1"], Encrypted=True,
                         TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "img"}]},
                                            {"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "snap"}]}])["ImageId"]
    im = vec2.describe_images(ImageIds=[cp])["Images"][0]
    assert im["OwnerId"] == v["account"] and {t["Key"]: t["Value"] for t in im["Tags"]} == {"k": "img"}, im
    csnap = im["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    s = vec2.describe_snapshots(SnapshotIds=[csnap])["Snapshots"][0]
    assert s["OwnerId"] == v["account"] and s["KmsKeyId"] == v["keys"]["us-east-1"], s
    assert {t["Key"]: t["Value"] for t in s["Tags"]} == {"k": "snap"}, s


@check("RDS share: aws/rds refused; shared snapshots listed in the vault (shared, IncludeShared, by ARN); copy rules (key grant, KmsKeyId, same Region); unshare; cluster snapshots")
def _() -> None:
    a, v = tenant("alpha"), vault()
    rds, kms = client("rds", alpha_creds()), client("kms", alpha_creds())
    vrds, vrds_west = client("rds", vault_creds()), client("rds", vault_creds(), region="us-west-2")
    arn = lambda n: f"arn:aws:rds:us-east-1:{a['account']}:snapshot:{n}"  # noqa: E731
    common = {"MasterUsername": "rolesnap", "MasterUserPassword": "rolesnap-Test-Pw1", "AllocatedStorage": 20}
    db = rds.create_db_instance(DBInstanceIdentifier="alpha-enc", Engine="postgres", DBInstanceClass="db.t3.micro",
                                StorageEncrypted=True, **common)["DBInstance"]
    assert db["KmsKeyId"].startswith(f"arn:aws:kms:us-east-1:{a['account']}:key/"), db["KmsKeyId"]
    assert kms.describe_key(KeyId=db["KmsKeyId"])["KeyMetadata"]["KeyManager"] == "AWS"
    assert kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"] == db["KmsKeyId"]
    rds.create_db_snapshot(DBInstanceIdentifier="alpha-enc", DBSnapshotIdentifier="sp-managed")
    add = lambda n, acct=v["account"]: rds.modify_db_snapshot_attribute(DBSnapshotIdentifier=n, AttributeName="restore", ValuesToAdd=[acct])  # noqa: E731
    e = expect_error(lambda: add("sp-managed"), "InvalidParameterValue", 400)
    assert "default" in str(e), e
    rds.create_db_snapshot(DBInstanceIdentifier="alpha-pg", DBSnapshotIdentifier="sp-plain")
    for name, key in (("sp-shared", "shared"), ("sp-private", "private")):
        s = rds.copy_db_snapshot(SourceDBSnapshotIdentifier="sp-plain", TargetDBSnapshotIdentifier=name, KmsKeyId=a["keys"][key]["us-east-1"])["DBSnapshot"]
        assert s["Encrypted"] and s["KmsKeyId"] == a["keys"][key]["us-east-1"], s
    # not shared: not found
    expect_error(lambda: vrds.describe_db_snapshots(DBSnapshotIdentifier=arn("sp-shared")), "DBSnapshotNotFound")
    expect_error(lambda: vrds.copy_db_snapshot(SourceDBSnapshotIdentifier=arn("sp-shared"), TargetDBSnapshotIdentifier="v-1", KmsKeyId=v["keys"]["us-east-1"]), "DBSnapshotNotFound")
    add("sp-shared")
    add("sp-private")
    attrs = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier="sp-shared")["DBSnapshotAttributesResult"]["DBSnapshotAttributes"]
    assert attrs == [{"AttributeName": "restore", "AttributeValues": [v["account"]]}], attrs
    listed = {s["DBSnapshotArn"] for s in vrds.describe_db_snapshots(SnapshotType="shared", IncludeShared=True)["DBSnapshots"]}
    assert listed == {arn("sp-shared"), arn("sp-private")}, listed
    assert {s["DBSnapshotArn"] for s in vrds.describe_db_snapshots(IncludeShared=True)["DBSnapshots"]} == listed
    assert vrds.describe_db_snapshots()["DBSnapshots"] == []
    got = vrds.describe_db_snapshots(DBSnapshotIdentifier=arn("sp-shared"))["DBSnapshots"]
    assert [s["DBSnapshotArn"] for s in got] == [arn("sp-shared")], got
    # copy rules
    e = expect_error(lambda: vrds.copy_db_snapshot(SourceDBSnapshotIdentifier=arn("sp-private"), TargetDBSnapshotIdentifier="v-1",
                                                   KmsKeyId=v["keys"]["us-east-1"]), "KMSKeyNotAccessibleFault", 400)
    expect_error(lambda: vrds.copy_db_snapshot(SourceDBSnapshotIdentifier=arn("sp-shared"), TargetDBSnapshotIdentifier="v-1"), "InvalidParameterValue")
    expect_error(lambda: vrds_west.copy_db_snapshot(SourceDBSnapshotIdentifier=arn("sp-shared"), TargetDBSnapshotIdentifier="v-1",
                                                    KmsKeyId=v["keys"]["us-west-2"], SourceRegion="us-east-1"), "InvalidParameterCombination")
    H("POST", "/_harness/hold", {"account": v["account"], "kinds": ["db-snapshot"]})
    try:
        c = vrds.copy_db_snapshot(SourceDBSnapshotIdentifier=arn("sp-shared"), TargetDBSnapshotIdentifier="v-1",
                                  KmsKeyId=v["keys"]["us-east-1"], Tags=[{"Key": "_GX_VAULT_", "Value": "1"}])["DBSnapshot"]
        assert c["DBSnapshotArn"] == f"arn:aws:rds:us-east-1:{v['account']}:snapshot:v-1", c
        assert c["KmsKeyId"] == v["keys"]["us-east-1"] and c["Encrypted"], c
        d = vrds.describe_db_snapshots(DBSnapshotIdentifier="v-1")["DBSnapshots"][0]
        assert d["Status"] == "creating", d
        tags = vrds.list_tags_for_resource(ResourceName=c["DBSnapshotArn"])["TagList"]
        assert tags == [{"Key": "_GX_VAULT_", "Value": "1"}], tags
    finally:
        H("POST", "/_harness/release", {"all": True})
    # unshare: gone from the vault's view; the copy stays after the original goes
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="sp-shared", AttributeName="restore", ValuesToRemove=[v["account"]])
    assert {s["DBSnapshotArn"] for s in vrds.describe_db_snapshots(SnapshotType="shared")["DBSnapshots"]} == {arn("sp-private")}
    rds.delete_db_snapshot(DBSnapshotIdentifier="sp-shared")
    assert vrds.describe_db_snapshots(DBSnapshotIdentifier="v-1")["DBSnapshots"][0]["Status"] == "available"
    # restore direction: the vault shares its copy back, alpha copies it with its own key
    vrds.modify_db_snapshot_attribute(DBSnapshotIdentifier="v-1", AttributeName="restore", ValuesToAdd=[a["account"]])
    back = rds.copy_db_snapshot(SourceDBSnapshotIdentifier=f"arn:aws:rds:us-east-1:{v['account']}:snapshot:v-1",
                                TargetDBSnapshotIdentifier="sp-restored", KmsKeyId="alias/rolesnap-private")["DBSnapshot"]
    assert back["KmsKeyId"] == a["keys"]["private"]["us-east-1"], back
    # cluster snapshots
    rds.create_db_cluster_snapshot(DBClusterIdentifier="alpha-aurora", DBClusterSnapshotIdentifier="sp-cluster")
    carn = f"arn:aws:rds:us-east-1:{a['account']}:cluster-snapshot:sp-cluster"
    expect_error(lambda: vrds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=carn, TargetDBClusterSnapshotIdentifier="v-c1"), "DBClusterSnapshotNotFoundFault")
    rds.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier="sp-cluster", AttributeName="restore", ValuesToAdd=[v["account"]])
    assert [s["DBClusterSnapshotArn"] for s in vrds.describe_db_cluster_snapshots(SnapshotType="shared", IncludeShared=True)["DBClusterSnapshots"]] == [carn]
    cc = vrds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=carn, TargetDBClusterSnapshotIdentifier="v-c1",
                                       KmsKeyId=v["keys"]["us-east-1"], Tags=[{"Key": "k", "Value": "v"}])["DBClusterSnapshot"]
    assert cc["DBClusterSnapshotArn"].startswith(f"arn:aws:rds:us-east-1:{v['account']}:") and cc["KmsKeyId"] == v["keys"]["us-east-1"], cc
    for n in ("sp-managed", "sp-plain", "sp-private", "sp-restored"):
        rds.delete_db_snapshot(DBSnapshotIdentifier=n)
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier="sp-cluster")
    rds.delete_db_instance(DBInstanceIdentifier="alpha-enc", SkipFinalSnapshot=True)


SHARE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:CreateSnapshot", "rds:Describe*", "rds:CreateDBSnapshot"], "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*", "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSnapshot"}}},
        {"Effect": "Allow", "Action": "ec2:ModifySnapshotAttribute", "Resource": "arn:aws:ec2:*::snapshot/*",
         "Condition": {"StringLike": {"aws:ResourceTag/_GX_BACKUP_": "*"}, "StringEquals": {"ec2:Attribute": "createVolumePermission"},
                       "ForAllValues:StringEquals": {"ec2:Add/userId": ["555555555555"], "ec2:Remove/userId": ["555555555555"]}}},
        {"Effect": "Allow", "Action": "rds:ModifyDBSnapshotAttribute", "Resource": "arn:aws:rds:*:*:snapshot:sp-*",
         "Condition": {"StringLike": {"rds:snapshot-tag/_GX_BACKUP_": "*"}}},
        {"Effect": "Allow", "Action": "rds:AddTagsToResource", "Resource": "arn:aws:rds:*:*:snapshot:sp-*"},
    ],
}
VAULT_COPY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:CopySnapshot", "rds:Describe*", "rds:CopyDBSnapshot", "kms:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "arn:aws:ec2:*::snapshot/*",
         "Condition": {"StringEquals": {"ec2:CreateAction": "CopySnapshot", "aws:RequestTag/_GX_VAULT_": "1"}}},
        {"Effect": "Allow", "Action": "rds:AddTagsToResource", "Resource": "arn:aws:rds:*:*:snapshot:v-*",
         "Condition": {"StringEquals": {"aws:RequestTag/_GX_VAULT_": "1"}}},
    ],
}


@check("conditions: ec2:Add/userId, ec2:Remove/userId, ec2:Attribute on ModifySnapshotAttribute; rds:snapshot-tag on ModifyDBSnapshotAttribute; the vault role's copy tags")
def _() -> None:
    sys.path.insert(0, HERE)
    from attach_policy import replace_role_policy
    from seed import Clients

    a, v = tenant("alpha"), vault()
    mark = [{"ResourceType": "snapshot", "Tags": [{"Key": "_GX_BACKUP_", "Value": "1"}]}]
    setup = Clients(CTX.endpoint, a["account"])
    vol = setup("ec2").create_volume(AvailabilityZone="us-east-1a", Size=3, Encrypted=True, KmsKeyId=a["keys"]["shared"]["us-east-1"])["VolumeId"]
    setup("rds").create_db_snapshot(DBInstanceIdentifier="alpha-pg", DBSnapshotIdentifier="sp-cond-tagged", Tags=[{"Key": "_GX_BACKUP_", "Value": "1"}])
    setup("rds").create_db_snapshot(DBInstanceIdentifier="alpha-pg", DBSnapshotIdentifier="sp-cond-plain")
    replace_role_policy(CTX.endpoint, a["account"], "vsa-role", SHARE_POLICY, "share-selftest")
    replace_role_policy(CTX.endpoint, v["account"], "rolesnap-vault", VAULT_COPY_POLICY, "vault-selftest")
    H("POST", "/_harness/config", {"enforce_tag_conditions": True})
    moto_reset_auth("0")
    try:
        creds = alpha_creds()
        ec2, rds = client("ec2", creds), client("rds", creds)
        tagged = ec2.create_snapshot(VolumeId=vol, TagSpecifications=mark)["SnapshotId"]
        plain = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        share = lambda sid, op, acct: ec2.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission", OperationType=op, UserIds=[acct])  # noqa: E731
        share(tagged, "add", v["account"])
        e = expect_error(lambda: share(tagged, "add", "999999999999"), "UnauthorizedOperation", 403)
        assert "ec2:ModifySnapshotAttribute" in str(e), e
        expect_error(lambda: share(plain, "add", v["account"]), "UnauthorizedOperation", 403)
        expect_error(lambda: ec2.modify_snapshot_attribute(SnapshotId=tagged, CreateVolumePermission={"Add": [{"UserId": "999999999999"}]}), "UnauthorizedOperation", 403)
        rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="sp-cond-tagged", AttributeName="restore", ValuesToAdd=[v["account"]])
        expect_error(lambda: rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="sp-cond-plain", AttributeName="restore", ValuesToAdd=[v["account"]]), "AccessDenied", 403)
        # the vault role (an assumed role too): tags of a cross-account copy are checked
        vcreds = vault_creds()
        vec2, vrds = client("ec2", vcreds), client("rds", vcreds)
        spec = lambda val: [{"ResourceType": "snapshot", "Tags": [{"Key": "_GX_VAULT_", "Value": val}]}]  # noqa: E731
        vec2.copy_snapshot(SourceSnapshotId=tagged, SourceRegion="us-east-1", KmsKeyId=v["keys"]["us-east-1"], TagSpecifications=spec("1"))
        expect_error(lambda: vec2.copy_snapshot(SourceSnapshotId=tagged, SourceRegion="us-east-1", KmsKeyId=v["keys"]["us-east-1"], TagSpecifications=spec("2")), "UnauthorizedOperation", 403)
        src = f"arn:aws:rds:us-east-1:{a['account']}:snapshot:sp-cond-tagged"
        vrds.copy_db_snapshot(SourceDBSnapshotIdentifier=src, TargetDBSnapshotIdentifier="v-cond", KmsKeyId=v["keys"]["us-east-1"], Tags=[{"Key": "_GX_VAULT_", "Value": "1"}])
        expect_error(lambda: vrds.copy_db_snapshot(SourceDBSnapshotIdentifier=src, TargetDBSnapshotIdentifier="v-cond2", KmsKeyId=v["keys"]["us-east-1"], Tags=[{"Key": "_GX_VAULT_", "Value": "2"}]), "AccessDenied", 403)
        assert call_count(v["account"], "us-east-1", "ec2", "CopySnapshot", "denied") == 1
        share(tagged, "remove", v["account"])
    finally:
        moto_reset_auth("inf")
        H("POST", "/_harness/config", {"enforce_tag_conditions": False})
        for acct, role, arn in ((a["account"], "vsa-role", a["policy_arn"]), (v["account"], "rolesnap-vault", v["policy_arn"])):
            iam = Clients(CTX.endpoint, acct)("iam")
            for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role, PolicyArn=p["PolicyArn"])
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)


# KMS use only through EC2, and only of alpha's shared key (the printed policies'
# kms:ViaService shape); DescribeKey of that key also directly.
def kms_via_ec2_policy(key: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:CopySnapshot", "ec2:CreateVolume", "rds:Describe*", "rds:CopyDBSnapshot"],
             "Resource": "*"},
            {"Effect": "Allow", "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"],
             "Resource": key, "Condition": {"StringLike": {"kms:ViaService": "ec2.*.amazonaws.com"}}},
            {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": key},
        ],
    }


@check("kms:ViaService: a role allowed a key only via EC2 copies with it but cannot Decrypt/CreateGrant directly; a key its policy does not name, or use via RDS, is refused")
def _() -> None:
    sys.path.insert(0, HERE)
    from attach_policy import replace_role_policy
    from seed import Clients

    a = tenant("alpha")
    shared, private = a["keys"]["shared"]["us-east-1"], a["keys"]["private"]["us-east-1"]
    setup = Clients(CTX.endpoint, a["account"])
    vol = setup("ec2").create_volume(AvailabilityZone="us-east-1a", Size=2, Encrypted=True, KmsKeyId=shared)["VolumeId"]
    snap = setup("ec2").create_snapshot(VolumeId=vol)["SnapshotId"]
    managed = setup("ec2").create_snapshot(VolumeId=setup("ec2").create_volume(AvailabilityZone="us-east-1a", Size=2, Encrypted=True)["VolumeId"])["SnapshotId"]
    blob = setup("kms").encrypt(KeyId=shared, Plaintext=b"secret")["CiphertextBlob"]
    setup("rds").create_db_snapshot(DBInstanceIdentifier="alpha-pg", DBSnapshotIdentifier="sp-kms-src")
    replace_role_policy(CTX.endpoint, a["account"], "vsa-role", kms_via_ec2_policy(shared), "kms-selftest")
    H("POST", "/_harness/config", {"enforce_tag_conditions": True})
    moto_reset_auth("0")
    try:
        creds = alpha_creds()
        ec2, kms, rds = client("ec2", creds), client("kms", creds), client("rds", creds)
        # via EC2: the copy (same key, and the key named), a volume from the snapshot
        ec2.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1")
        ec2.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1", Encrypted=True, KmsKeyId=shared)
        ec2.create_volume(AvailabilityZone="us-east-1a", SnapshotId=snap)
        ec2.copy_snapshot(SourceSnapshotId=managed, SourceRegion="us-east-1")  # aws/ebs: EC2's own grants
        # directly: refused in KMS's JSON shape (AccessDeniedException, HTTP 400)
        e = expect_error(lambda: kms.decrypt(CiphertextBlob=blob), "AccessDeniedException", 400)
        assert "kms:Decrypt" in str(e) and shared in str(e), e
        expect_error(lambda: kms.decrypt(CiphertextBlob=blob, KeyId="alias/rolesnap-shared"), "AccessDeniedException", 400)
        expect_error(lambda: kms.create_grant(KeyId=shared, GranteePrincipal=a["role_arn"], Operations=["Decrypt"]), "AccessDeniedException", 400)
        expect_error(lambda: kms.generate_data_key(KeyId=shared, KeySpec="AES_256"), "AccessDeniedException", 400)
        assert kms.describe_key(KeyId="alias/rolesnap-shared")["KeyMetadata"]["Arn"] == shared
        expect_error(lambda: kms.describe_key(KeyId=private), "AccessDeniedException", 400)
        expect_error(lambda: kms.list_aliases(), "AccessDeniedException", 400)
        assert call_count(a["account"], "us-east-1", "kms", "Decrypt", "denied") == 2
        # a key the policy does not name, through EC2: refused at call time
        e = expect_error(lambda: ec2.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1", Encrypted=True, KmsKeyId=private),
                         "UnauthorizedOperation", 403)
        assert "kms:" in str(e) and private in str(e), e
        expect_error(lambda: ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, Encrypted=True, KmsKeyId=private), "UnauthorizedOperation", 403)
        # the named key through RDS (kms:ViaService rds.us-east-1.amazonaws.com): not allowed
        e = expect_error(lambda: rds.copy_db_snapshot(SourceDBSnapshotIdentifier="sp-kms-src", TargetDBSnapshotIdentifier="sp-kms-copy", KmsKeyId=shared),
                         "KMSKeyNotAccessibleFault", 400)
        assert "kms:CreateGrant" in str(e), e
        assert call_count(a["account"], "us-east-1", "ec2", "CopySnapshot", "denied") == 1
    finally:
        moto_reset_auth("inf")
        H("POST", "/_harness/config", {"enforce_tag_conditions": False})
        iam = Clients(CTX.endpoint, a["account"])("iam")
        for p in iam.list_attached_role_policies(RoleName="vsa-role")["AttachedPolicies"]:
            iam.detach_role_policy(RoleName="vsa-role", PolicyArn=p["PolicyArn"])
        iam.attach_role_policy(RoleName="vsa-role", PolicyArn=a["policy_arn"])
    # switched off: a direct Decrypt is moto's again
    assert client("kms", alpha_creds()).decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"


# --- runner ------------------------------------------------------------------


def start_server(tmp: str) -> float:
    ready = os.path.join(tmp, "port")
    t0 = time.time()
    CTX.proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "server.py"), "--port", "0", "--ready-file", ready],
        stdout=subprocess.PIPE,
        stderr=open(os.path.join(tmp, "server.log"), "w"),
        text=True,
    )
    line = CTX.proc.stdout.readline().strip()  # "READY <port>"
    assert line.startswith("READY "), f"server said {line!r}"
    port = int(line.split()[1])
    with open(ready) as f:
        assert int(f.read().strip()) == port
    CTX.endpoint = f"http://127.0.0.1:{port}"
    H("GET", "/_harness/health")
    return time.time() - t0




@check("speed patch: DescribeSnapshots answers the same bytes from its kept items as from moto's own path, after tags, state, age and deletes change")
def _() -> None:
    a = tenant("alpha")
    acct = a["account"]
    ec2 = client("ec2", alpha_creds())
    listing = {"OwnerIds": ["self"], "Filters": [{"Name": "tag:answer-cache", "Values": ["1"]}], "MaxResults": 1000}

    def both(**q: Any) -> dict[str, Any]:
        return same_answer_with_and_without_kept_items(ec2, "DescribeSnapshots", "snapshot_answer_cache", **q)

    inst = a["resources"]["us-east-1"]["instances"][0]
    tags = [{"ResourceType": "snapshot", "Tags": [{"Key": "answer-cache", "Value": "1"}, {"Key": "_GX_BACKUP_", "Value": "7"}]}]
    H("POST", "/_harness/hold", {"account": acct, "region": "us-east-1", "kinds": ["snapshot"]})
    try:
        made = [s["SnapshotId"] for s in ec2.create_snapshots(InstanceSpecification={"InstanceId": inst["id"]}, TagSpecifications=tags)["Snapshots"]]
        assert len(made) >= 2, made
        both(**listing)
        # kept now: listed again from the kept items
        assert {s["State"] for s in both(**listing)["Snapshots"]} == {"pending"}
    finally:
        H("POST", "/_harness/release", {"all": True})
    assert {s["State"] for s in both(**listing)["Snapshots"]} == {"completed"}
    ec2.create_tags(Resources=[made[0]], Tags=[{"Key": "later", "Value": "x"}])
    ec2.delete_tags(Resources=[made[1]], Tags=[{"Key": "_GX_BACKUP_"}])
    got = {s["SnapshotId"]: {t["Key"]: t["Value"] for t in s.get("Tags", [])} for s in both(**listing)["Snapshots"]}
    assert got[made[0]].get("later") == "x" and "_GX_BACKUP_" not in got[made[1]], got
    H("POST", "/_harness/age", {"account": acct, "region": "us-east-1", "id": made[0], "age_seconds": 9 * 86400})
    both(**listing)
    both(SnapshotIds=made)
    both(OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": made + ["snap-00000000000000000"]}])
    ec2.delete_snapshot(SnapshotId=made[0])
    left = both(**listing)["Snapshots"]
    assert made[0] not in {s["SnapshotId"] for s in left} or all(s["State"] != "completed" for s in left if s["SnapshotId"] == made[0]), left
    for sid in made[1:]:
        ec2.delete_snapshot(SnapshotId=sid)



@check("speed patch: DescribeInstances answers the same bytes from its kept items as from moto's own path, after tags, stop/start/terminate, volume attach/detach and ageing change")
def _() -> None:
    a = tenant("alpha")
    acct = a["account"]
    ec2 = client("ec2", alpha_creds())
    listing = {"Filters": [{"Name": "tag:instance-answer-cache", "Values": ["1"]}]}

    def both(**q: Any) -> dict[str, Any]:
        return same_answer_with_and_without_kept_items(ec2, "DescribeInstances", "instance_answer_cache", **q)

    def inst(ident: str) -> dict[str, Any]:
        return both(InstanceIds=[ident])["Reservations"][0]["Instances"][0]

    made = [i["InstanceId"] for i in ec2.run_instances(
        ImageId="ami-760aaa0f", MinCount=3, MaxCount=3, InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "instance-answer-cache", "Value": "1"}, {"Key": "Backup", "Value": "nightly"}]}],
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
                             {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2, "DeleteOnTermination": False}}])["Instances"]]
    try:
        assert len({i["InstanceId"] for r in both(**listing)["Reservations"] for i in r["Instances"]}) == 3
        both(**listing)
        both()
        # tags
        ec2.create_tags(Resources=made[:2], Tags=[{"Key": "later", "Value": "x & <y>"}, {"Key": "Backup", "Value": "never"}])
        ec2.delete_tags(Resources=[made[2]], Tags=[{"Key": "Backup"}])
        tags = {i["InstanceId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])} for r in both(**listing)["Reservations"] for i in r["Instances"]}
        assert tags[made[0]]["later"] == "x & <y>" and tags[made[1]]["Backup"] == "never" and "Backup" not in tags[made[2]], tags
        ec2.delete_tags(Resources=[made[0]], Tags=[{"Key": "later"}])
        assert "later" not in {t["Key"] for t in inst(made[0]).get("Tags", [])}
        # stop / start
        ec2.stop_instances(InstanceIds=[made[1]])
        assert inst(made[1])["State"]["Name"] == "stopped"
        both(**listing)
        ec2.start_instances(InstanceIds=[made[1]])
        assert inst(made[1])["State"]["Name"] == "running"
        # a volume attached, then detached (and the instance's own data volume too)
        zone = inst(made[0])["Placement"]["AvailabilityZone"]
        vol = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
        ec2.attach_volume(VolumeId=vol, InstanceId=made[0], Device="/dev/sdk")
        assert vol in {m["Ebs"]["VolumeId"] for m in inst(made[0])["BlockDeviceMappings"]}
        both(**listing)
        ec2.detach_volume(VolumeId=vol, InstanceId=made[0])
        data = [m["Ebs"]["VolumeId"] for m in inst(made[0])["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdf"]
        ec2.detach_volume(VolumeId=data[0], InstanceId=made[0])
        assert {m["DeviceName"] for m in inst(made[0])["BlockDeviceMappings"]} == {"/dev/xvda"}
        both(**listing)
        ec2.delete_volume(VolumeId=vol)
        # launch time aged by the layer
        H("POST", "/_harness/age", {"account": acct, "region": "us-east-1", "id": made[2], "kind": "instance", "age_seconds": 9 * 86400})
        launched = inst(made[2])["LaunchTime"]
        assert time.time() - launched.timestamp() > 8 * 86400, launched
        both(**listing)
        both(Filters=[{"Name": "instance-id", "Values": made + ["i-00000000000000000"]}])
        # terminate
        ec2.terminate_instances(InstanceIds=[made[2]])
        assert inst(made[2])["State"]["Name"] == "terminated"
        both(**listing)
        both()
    finally:
        H("POST", "/_harness/config", {"instance_answer_cache": True})
        ec2.terminate_instances(InstanceIds=made)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (fixture, server log)")
    ap.add_argument("--only", metavar="TEXT", help="run only the checks whose name contains TEXT")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rolesnap-emu-")
    try:
        t_start = start_server(tmp)
        t0 = time.time()
        fixture = os.path.join(tmp, "fixture.json")
        subprocess.run([sys.executable, os.path.join(HERE, "seed.py"), "--endpoint", CTX.endpoint, "--out", fixture], check=True)
        t_seed = time.time() - t0
        with open(fixture) as f:
            CTX.fx = json.load(f)
        print(f"server start {t_start:.2f}s, seed {t_seed:.2f}s")
        for name, fn in CHECKS:
            if args.only and args.only not in name:
                continue
            try:
                fn()
                PASSED.append(name)
                print(f"ok   {name}")
            except Exception as exc:
                FAILED.append(name)
                print(f"FAIL {name}: {exc}")
                traceback.print_exc()
    finally:
        if CTX.proc is not None:
            CTX.proc.send_signal(signal.SIGTERM)
            try:
                rc = CTX.proc.wait(timeout=10)
                if rc != 0:
                    FAILED.append(f"server exit status {rc} on SIGTERM")
                    print(f"FAIL server exited {rc} on SIGTERM")
                else:
                    PASSED.append("clean exit on SIGTERM")
                    print("ok   clean exit on SIGTERM")
            except subprocess.TimeoutExpired:
                CTX.proc.kill()
                FAILED.append("server did not stop on SIGTERM")
                print("FAIL server did not stop on SIGTERM")
        if args.keep:
            print(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    return 0 if not FAILED else 1


if __name__ == "__main__":
    sys.exit(main())
