#!/usr/bin/env python3
"""Seed the rolesnap emulator with accounts, roles and resources; write fixture.json.

    python3 seed.py --endpoint http://127.0.0.1:PORT --out fixture.json [--profile small]
    python3 seed.py --endpoint ... --out fleet.json --profile fleet --tenants 20 \
        --regions us-east-1,us-west-2 --instances 50

Setup calls pick their account with the `x-moto-account-id` header (added by a
botocore before-sign handler); they are signed with a dummy key the emulator
does not know, so the layer passes them straight to moto.  See README.md for the
fixture schema.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import os
import sys
import time
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))

ADMIN_ACCOUNT = "111111111111"
UNTRUSTED_ACCOUNT = "999999999999"
IMAGE_ID = "ami-760aaa0f"  # from amis.json: root device /dev/xvda
SETUP_KEY = "AKIASEEDSETUPKEY0000"  # unknown to the emulator on purpose
SETUP_SECRET = "seed-setup-secret"
ADMIN_USER = "rolesnap-admin"
ADMIN_ROLE = "vsa-assume-role"
TENANT_ROLE = "vsa-role"
STS_POLICY_NAME = "rolesnap-sts-assumerole"
RESTRICTED_POLICY_NAME = "rolesnap-restricted-role-permissions"
TENANT_MAX_SESSION = 43200
# The backup ("vault") account: rolesnap shares recovery points with it, it copies
# them with its own key; a restore shares the vault copy back (README, "vaults").
VAULT_NAME = "vault"
VAULT_ACCOUNT = "555555555555"
VAULT_ROLE = "rolesnap-vault"
VAULT_EXTERNAL_ID = "rolesnap-vault-ext"
VAULT_REGIONS = ["us-east-1", "us-west-2"]
VAULT_POLICY_NAME = "rolesnap-vault-permissions"
VAULT_KEY_ALIAS = "alias/rolesnap-vault"
VAULT_TRUSTED_TENANTS = ["222222222222", "333333333333"]  # alpha, beta
# What a key policy grants another account so that it can copy (or restore from) a
# snapshot encrypted with the key (KMS Developer Guide, "Allowing users in other
# accounts to use a KMS key"); shares.py's model needs kms:Decrypt and kms:CreateGrant.
KEY_USE_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
SMALL_TENANTS = [
    # name, account, external id, regions, trusts admin
    ("alpha", "222222222222", "rolesnap-alpha-ext", ["us-east-1", "us-west-2"], True),
    ("beta", "333333333333", "rolesnap-beta-ext", ["us-east-1", "us-west-2"], True),
    ("gamma", "444444444444", None, ["us-east-1"], False),
]
# per region: (suffix, az letter, instance type, data volume size, Backup tag)
SMALL_INSTANCES = [
    ("app1", "a", "t3.micro", 10, "nightly"),
    ("app2", "b", "t3.small", 20, "nightly"),
    ("app3", "a", "t3.medium", 30, "never"),
]
ROOT_SIZE = 8
RDS_REGION = "us-east-1"


# The same documents ship inside the repository (core/src/policy), under other
# names; a clean clone without the guide beside it seeds from those.
REPO_POLICY = os.path.normpath(os.path.join(HERE, "..", "..", "core", "src", "policy"))
REPO_POLICY_NAMES = {
    "amazon_sts_assumerole.json": "sts-only.json",
    "tenant-trust-policy.json": "tenant-trust.json",
    "amazon_restricted_role_permissions.json": "restricted.json",
}


def load_json(name: str) -> Any:
    # The guide's IAM documents as the repository keeps them (core/src/policy):
    # the emulator never depends on anything outside the repository.
    path = os.path.join(REPO_POLICY, REPO_POLICY_NAMES.get(name, name))
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class Clients:
    """boto3 clients for one account, selected with x-moto-account-id."""

    def __init__(self, endpoint: str, account: str) -> None:
        self.endpoint = endpoint
        self.account = account
        self.session = boto3.session.Session(
            aws_access_key_id=SETUP_KEY, aws_secret_access_key=SETUP_SECRET
        )
        self._cache: dict[tuple[str, str], Any] = {}

    def __call__(self, service: str, region: str = "us-east-1") -> Any:
        key = (service, region)
        if key not in self._cache:
            c = self.session.client(
                service,
                endpoint_url=self.endpoint,
                region_name=region,
                config=Config(retries={"total_max_attempts": 3, "mode": "standard"}),
            )
            account = self.account

            def add_header(request: Any, **_: Any) -> None:
                request.headers["x-moto-account-id"] = account

            c.meta.events.register("before-sign", add_header)
            self._cache[key] = c
        return self._cache[key]


def iso(t: Any) -> str | None:
    if t is None:
        return None
    if isinstance(t, dt.datetime):
        if t.tzinfo is not None:
            t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(t)


def tag_map(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in (tags or [])}


# ---------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------


def seed_admin(endpoint: str) -> dict[str, Any]:
    c = Clients(endpoint, ADMIN_ACCOUNT)
    iam = c("iam")
    user = iam.create_user(UserName=ADMIN_USER)["User"]
    policy = iam.create_policy(
        PolicyName=STS_POLICY_NAME, PolicyDocument=json.dumps(load_json("amazon_sts_assumerole.json"))
    )["Policy"]
    iam.attach_user_policy(UserName=ADMIN_USER, PolicyArn=policy["Arn"])
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{ADMIN_ACCOUNT}:root"},
            }
        ],
    }
    role = iam.create_role(RoleName=ADMIN_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.attach_role_policy(RoleName=ADMIN_ROLE, PolicyArn=policy["Arn"])
    return {
        "account": ADMIN_ACCOUNT,
        "user_name": ADMIN_USER,
        "user_arn": user["Arn"],
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "admin_role_arn": role["Arn"],
        "admin_role_max_session_seconds": 3600,
        "policy_arn": policy["Arn"],
    }


def replicate_admin(endpoint: str, admin: dict[str, Any]) -> int:
    """Behind tests/emulator/router.py, every backend process needs the admin user (it
    assumes the tenant roles there) with the one key the admin holds: create it in each
    backend that does not own the admin account, with the same key. Returns how many."""
    try:
        info = harness(endpoint, "GET", "/_harness/backends")
        home = harness(endpoint, "GET", f"/_harness/route?account={ADMIN_ACCOUNT}")["backend"]
    except Exception:
        return 0  # a single server.py
    n = 0
    for b in info["backends"]:
        if b["index"] == home:
            continue
        iam = Clients(b["endpoint"], ADMIN_ACCOUNT)("iam")
        iam.create_user(UserName=ADMIN_USER)
        policy = iam.create_policy(
            PolicyName=STS_POLICY_NAME, PolicyDocument=json.dumps(load_json("amazon_sts_assumerole.json"))
        )["Policy"]
        iam.attach_user_policy(UserName=ADMIN_USER, PolicyArn=policy["Arn"])
        req = urllib.request.Request(
            b["endpoint"] + "/_harness/access-key", method="POST",
            data=json.dumps({"account": ADMIN_ACCOUNT, "user_name": ADMIN_USER,
                             "access_key_id": admin["access_key_id"],
                             "secret_access_key": admin["secret_access_key"]}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
        n += 1
    return n


def tenant_trust_policy(trusted_account: str, external_id: str | None) -> dict[str, Any]:
    text = json.dumps(load_json("tenant-trust-policy.json")).replace("ADMIN_ACCOUNT_ID", trusted_account)
    doc = json.loads(text)
    if external_id is not None:
        stmts = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        for s in stmts:
            s["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return doc


def seed_tenant_iam(c: Clients, trusts_admin: bool, external_id: str | None) -> dict[str, Any]:
    iam = c("iam")
    trusted = ADMIN_ACCOUNT if trusts_admin else UNTRUSTED_ACCOUNT
    trust = tenant_trust_policy(trusted, external_id)
    role = iam.create_role(
        RoleName=TENANT_ROLE,
        AssumeRolePolicyDocument=json.dumps(trust),
        MaxSessionDuration=TENANT_MAX_SESSION,
        Description="rolesnap tenant role (test fixture)",
    )["Role"]
    policy = iam.create_policy(
        PolicyName=RESTRICTED_POLICY_NAME,
        PolicyDocument=json.dumps(load_json("amazon_restricted_role_permissions.json")),
    )["Policy"]
    iam.attach_role_policy(RoleName=TENANT_ROLE, PolicyArn=policy["Arn"])
    return {
        "role_arn": role["Arn"],
        "role_max_session_seconds": TENANT_MAX_SESSION,
        "policy_arn": policy["Arn"],
        "trusted_account": trusted,
        "trust_policy": trust,
    }


# ---------------------------------------------------------------------------
# EC2 / RDS
# ---------------------------------------------------------------------------


def seed_network(ec2: Any, name: str, region: str, azs: list[str]) -> dict[str, Any]:
    vpc = ec2.create_vpc(
        CidrBlock="10.20.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": f"{name}-{region}-vpc"}]}],
    )["Vpc"]
    subnets = []
    for i, az in enumerate(azs):
        sn = ec2.create_subnet(
            VpcId=vpc["VpcId"],
            CidrBlock=f"10.20.{i + 1}.0/24",
            AvailabilityZone=az,
            TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": f"{name}-{az}"}]}],
        )["Subnet"]
        subnets.append({"id": sn["SubnetId"], "az": az, "cidr": sn["CidrBlock"]})
    sg = ec2.create_security_group(GroupName="rolesnap-test-sg", Description="rolesnap test", VpcId=vpc["VpcId"])
    key_name = f"rolesnap-{name}-key"
    ec2.create_key_pair(KeyName=key_name)
    return {"vpc_id": vpc["VpcId"], "subnets": subnets, "security_group_id": sg["GroupId"], "key_name": key_name}


def run_batch(
    ec2: Any,
    net: dict[str, Any],
    subnet: dict[str, Any],
    count: int,
    itype: str,
    data_size: int,
    tags: dict[str, str],
) -> list[dict[str, Any]]:
    """One RunInstances call: `count` instances, each with root + data volume."""
    name = tags.get("Name", "")
    resp = ec2.run_instances(
        ImageId=IMAGE_ID,
        MinCount=count,
        MaxCount=count,
        InstanceType=itype,
        KeyName=net["key_name"],
        SubnetId=subnet["id"],
        SecurityGroupIds=[net["security_group_id"]],
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": ROOT_SIZE, "VolumeType": "gp3", "DeleteOnTermination": True}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": data_size, "VolumeType": "gp3", "DeleteOnTermination": False}},
        ],
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]},
            {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": f"{name}-vol"}]},
        ],
    )
    return resp["Instances"]


def instance_record(inst: dict[str, Any], volumes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    vols = []
    for m in inst.get("BlockDeviceMappings", []):
        vid = m["Ebs"]["VolumeId"]
        v = volumes.get(vid, {})
        vols.append(
            {
                "id": vid,
                "device": m["DeviceName"],
                "size": v.get("Size"),
                "type": v.get("VolumeType"),
                "root": m["DeviceName"] == inst.get("RootDeviceName"),
                "delete_on_termination": m["Ebs"].get("DeleteOnTermination"),
                "tags": tag_map(v.get("Tags")),
            }
        )
    tags = tag_map(inst.get("Tags"))
    return {
        "id": inst["InstanceId"],
        "name": tags.get("Name"),
        "az": inst["Placement"]["AvailabilityZone"],
        "subnet": inst.get("SubnetId"),
        "vpc": inst.get("VpcId"),
        "type": inst["InstanceType"],
        "image_id": inst.get("ImageId"),
        "state": inst["State"]["Name"],
        "root_device_name": inst.get("RootDeviceName"),
        "private_ip": inst.get("PrivateIpAddress"),
        "launch_time": iso(inst.get("LaunchTime")),
        "tags": tags,
        "volumes": vols,
    }


def describe_all_instances(ec2: Any) -> list[dict[str, Any]]:
    out = []
    for page in ec2.get_paginator("describe_instances").paginate():
        for r in page["Reservations"]:
            out.extend(r["Instances"])
    return out


def seed_ec2_region(
    c: Clients, name: str, region: str, plan: list[tuple[str, str, str, int, dict[str, str], int]]
) -> dict[str, Any]:
    """plan: RunInstances batches of (az letter, instance type, name, data volume GiB, tags, count)."""
    ec2 = c("ec2", region)
    azs = [f"{region}a", f"{region}b"]
    net = seed_network(ec2, name, region, azs)
    by_az = {s["az"]: s for s in net["subnets"]}
    launched: list[str] = []
    for az_letter, itype, _n, data_size, tags, count in plan:
        subnet = by_az[f"{region}{az_letter}"]
        launched += [i["InstanceId"] for i in run_batch(ec2, net, subnet, count, itype, data_size, tags)]
    # One describe of everything (moto ignores paging for volumes) to get sizes/tags exactly as listed.
    volumes = {v["VolumeId"]: v for v in ec2.describe_volumes()["Volumes"]}
    wanted = set(launched)
    insts = [i for i in describe_all_instances(ec2) if i["InstanceId"] in wanted]
    order = {iid: n for n, iid in enumerate(launched)}
    insts.sort(key=lambda i: order[i["InstanceId"]])
    return {
        **net,
        "instances": [instance_record(i, volumes) for i in insts],
        "db_instances": [],
        "db_clusters": [],
        "db_snapshots": [],
    }


def seed_rds(c: Clients, name: str, region: str, rec: dict[str, Any]) -> None:
    rds = c("rds", region)
    common = {"MasterUsername": "rolesnap", "MasterUserPassword": "rolesnap-Test-Pw1"}
    rds.create_db_instance(
        DBInstanceIdentifier=f"{name}-pg",
        Engine="postgres",
        EngineVersion="15.4",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        AvailabilityZone=f"{region}a",
        Tags=[{"Key": "Name", "Value": f"{name}-pg"}, {"Key": "Backup", "Value": "nightly"}],
        **common,
    )
    rds.create_db_cluster(
        DBClusterIdentifier=f"{name}-aurora",
        Engine="aurora-postgresql",
        EngineVersion="15.4",
        Tags=[{"Key": "Name", "Value": f"{name}-aurora"}, {"Key": "Backup", "Value": "nightly"}],
        **common,
    )
    rds.create_db_instance(
        DBInstanceIdentifier=f"{name}-aurora-1",
        Engine="aurora-postgresql",
        DBInstanceClass="db.t3.medium",
        DBClusterIdentifier=f"{name}-aurora",
    )
    for d in rds.describe_db_instances()["DBInstances"]:
        rec["db_instances"].append(
            {
                "id": d["DBInstanceIdentifier"],
                "arn": d["DBInstanceArn"],
                "engine": d["Engine"],
                "engine_version": d.get("EngineVersion"),
                "class": d["DBInstanceClass"],
                "az": d.get("AvailabilityZone"),
                "allocated_storage": d.get("AllocatedStorage"),
                "status": d.get("DBInstanceStatus"),
                "cluster_id": d.get("DBClusterIdentifier"),
                "dbi_resource_id": d.get("DbiResourceId"),
                "storage_encrypted": d.get("StorageEncrypted"),
                "tags": tag_map(d.get("TagList")),
            }
        )
    for cl in rds.describe_db_clusters()["DBClusters"]:
        rec["db_clusters"].append(
            {
                "id": cl["DBClusterIdentifier"],
                "arn": cl["DBClusterArn"],
                "engine": cl["Engine"],
                "engine_version": cl.get("EngineVersion"),
                "status": cl.get("Status"),
                "storage_encrypted": cl.get("StorageEncrypted"),
                "members": [
                    {"id": m["DBInstanceIdentifier"], "writer": m.get("IsClusterWriter", False)}
                    for m in cl.get("DBClusterMembers", [])
                ],
                "tags": tag_map(cl.get("TagList")),
            }
        )
    # moto makes an automated snapshot per DB instance at creation: record the baseline
    for s in rds.describe_db_snapshots()["DBSnapshots"]:
        rec["db_snapshots"].append(
            {
                "id": s["DBSnapshotIdentifier"],
                "arn": s["DBSnapshotArn"],
                "db_instance_id": s["DBInstanceIdentifier"],
                "type": s.get("SnapshotType"),
                "status": s.get("Status"),
            }
        )


def small_plan(name: str, region: str) -> list[tuple[str, str, str, int, dict[str, str], int]]:
    plan = []
    for suffix, az, itype, size, backup in SMALL_INSTANCES:
        iname = f"{name}-{region}-{suffix}"
        plan.append((az, itype, iname, size, {"Name": iname, "Backup": backup, "Tenant": name}, 1))
    return plan


def fleet_plan(name: str, region: str, instances: int) -> list[tuple[str, str, str, int, dict[str, str], int]]:
    # Two batches per AZ: ~2/3 nightly, ~1/3 never; one RunInstances per batch.
    plan = []
    per_az = [instances - instances // 2, instances // 2]
    for az, n in zip("ab", per_az):
        never = n // 3
        nightly = n - never
        for backup, cnt, size in (("nightly", nightly, 10), ("never", never, 20)):
            if cnt:
                iname = f"{name}-{region}{az}-{backup}"
                plan.append((az, "t3.micro", iname, size, {"Name": iname, "Backup": backup, "Tenant": name}, cnt))
    return plan


def seed_tenant(
    endpoint: str,
    name: str,
    account: str,
    external_id: str | None,
    regions: list[str],
    trusts_admin: bool,
    plan_fn: Any,
    with_rds: bool,
) -> dict[str, Any]:
    c = Clients(endpoint, account)
    iam = seed_tenant_iam(c, trusts_admin, external_id)
    resources = {}
    for region in regions:
        rec = seed_ec2_region(c, name, region, plan_fn(name, region))
        if with_rds and region == RDS_REGION:
            seed_rds(c, name, region, rec)
        resources[region] = rec
    return {
        "name": name,
        "account": account,
        "role_arn": iam["role_arn"],
        "external_id": external_id,
        "regions": regions,
        "trusts_admin": trusts_admin,
        "trusted_account": iam["trusted_account"],
        "role_max_session_seconds": iam["role_max_session_seconds"],
        "policy_arn": iam["policy_arn"],
        "resources": resources,
    }


# ---------------------------------------------------------------------------
# KMS keys and the vault account
# ---------------------------------------------------------------------------


def key_policy(owner: str, users: list[str]) -> dict[str, Any]:
    stmts: list[dict[str, Any]] = [
        {"Sid": "Enable IAM policies", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{owner}:root"}, "Action": "kms:*", "Resource": "*"},
    ]
    if users:
        stmts.append({"Sid": "Allow use of the key by other accounts", "Effect": "Allow",
                      "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in users]},
                      "Action": KEY_USE_ACTIONS, "Resource": "*"})
    return {"Version": "2012-10-17", "Id": "rolesnap-test-key", "Statement": stmts}


def create_key(c: Clients, region: str, alias: str, users: list[str], description: str) -> str:
    kms = c("kms", region)
    key = kms.create_key(Policy=json.dumps(key_policy(c.account, users)), Description=description)["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return key["Arn"]


def seed_tenant_keys(endpoint: str, account: str, regions: list[str]) -> dict[str, dict[str, str]]:
    """alias/rolesnap-shared (usable by the vault account) and alias/rolesnap-private
    (nothing outside the tenant) per region."""
    c = Clients(endpoint, account)
    keys: dict[str, dict[str, str]] = {"shared": {}, "private": {}}
    for region in regions:
        keys["shared"][region] = create_key(c, region, "alias/rolesnap-shared", [VAULT_ACCOUNT], "rolesnap test: shared with the vault")
        keys["private"][region] = create_key(c, region, "alias/rolesnap-private", [], "rolesnap test: tenant only")
    return keys


def seed_vault(endpoint: str) -> dict[str, Any]:
    c = Clients(endpoint, VAULT_ACCOUNT)
    iam = c("iam")
    trust = tenant_trust_policy(ADMIN_ACCOUNT, VAULT_EXTERNAL_ID)
    role = iam.create_role(
        RoleName=VAULT_ROLE,
        AssumeRolePolicyDocument=json.dumps(trust),
        MaxSessionDuration=TENANT_MAX_SESSION,
        Description="rolesnap vault role (test fixture)",
    )["Role"]
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ec2:*", "rds:*", "kms:*"], "Resource": "*"}]}
    policy = iam.create_policy(PolicyName=VAULT_POLICY_NAME, PolicyDocument=json.dumps(doc))["Policy"]
    iam.attach_role_policy(RoleName=VAULT_ROLE, PolicyArn=policy["Arn"])
    keys = {r: create_key(c, r, VAULT_KEY_ALIAS, VAULT_TRUSTED_TENANTS, "rolesnap test: vault copies") for r in VAULT_REGIONS}
    return {
        "name": VAULT_NAME,
        "account": VAULT_ACCOUNT,
        "role_arn": role["Arn"],
        "external_id": VAULT_EXTERNAL_ID,
        "regions": list(VAULT_REGIONS),
        "role_max_session_seconds": TENANT_MAX_SESSION,
        "policy_arn": policy["Arn"],
        "trusted_tenants": list(VAULT_TRUSTED_TENANTS),
        "keys": keys,
    }


def harness(endpoint: str, method: str, path: str) -> Any:
    req = urllib.request.Request(endpoint.rstrip("/") + path, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--profile", choices=["small", "fleet"], default="small")
    ap.add_argument("--tenants", type=int, default=10, help="fleet: number of tenants")
    ap.add_argument("--regions", default="us-east-1,us-west-2", help="fleet: comma-separated regions")
    ap.add_argument("--instances", type=int, default=10, help="fleet: instances per tenant and region")
    ap.add_argument("--fleet-rds", action="store_true", help="fleet: also create the RDS instance + Aurora cluster per tenant")
    ap.add_argument("--workers", type=int, default=8, help="fleet: tenants seeded in parallel")
    ap.add_argument("--keep-call-log", action="store_true", help="do not clear /_harness/calls at the end")
    args = ap.parse_args(argv)

    t0 = time.time()
    endpoint = args.endpoint.rstrip("/")
    admin = seed_admin(endpoint)
    replicate_admin(endpoint, admin)
    jobs = []
    if args.profile == "small":
        for name, account, ext, regions, trusts in SMALL_TENANTS:
            with_rds = trusts  # alpha, beta: RDS + Aurora in us-east-1; gamma: one instance only
            if name == "gamma":
                plan = lambda n, r: [("a", "t3.micro", f"{n}-{r}-app1", 10, {"Name": f"{n}-{r}-app1", "Backup": "nightly", "Tenant": n}, 1)]  # noqa: E731
            else:
                plan = small_plan
            jobs.append((name, account, ext, regions, trusts, plan, with_rds))
        workers = 1
    else:
        regions = [r.strip() for r in args.regions.split(",") if r.strip()]
        for i in range(1, args.tenants + 1):
            name = f"t{i:03d}"
            account = f"{500000000000 + i}"
            plan = lambda n, r, m=args.instances: fleet_plan(n, r, m)  # noqa: E731
            jobs.append((name, account, f"rolesnap-{name}-ext", regions, True, plan, args.fleet_rds))
        workers = max(1, args.workers)

    if workers == 1:
        tenants = [seed_tenant(endpoint, *j) for j in jobs]
    else:
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            tenants = list(pool.map(lambda j: seed_tenant(endpoint, *j), jobs))

    vaults = []
    if args.profile == "small":
        for t in tenants:
            t["keys"] = seed_tenant_keys(endpoint, t["account"], t["regions"]) if t["account"] in VAULT_TRUSTED_TENANTS else {"shared": {}, "private": {}}
        vaults.append(seed_vault(endpoint))

    if not args.keep_call_log:
        try:
            harness(endpoint, "DELETE", "/_harness/calls")
        except Exception as exc:  # plain moto without the layer
            print(f"seed: could not clear call log: {exc}", file=sys.stderr)

    fixture = {
        "schema": 1,
        "endpoint": endpoint,
        "profile": args.profile,
        "created_at": iso(dt.datetime.now(dt.timezone.utc)),
        "image_id": IMAGE_ID,
        "admin": admin,
        "untrusted_account": UNTRUSTED_ACCOUNT,
        "tenants": tenants,
        "vaults": vaults,
        "totals": {
            "tenants": len(tenants),
            "instances": sum(len(r["instances"]) for t in tenants for r in t["resources"].values()),
            "volumes": sum(len(i["volumes"]) for t in tenants for r in t["resources"].values() for i in r["instances"]),
            "db_instances": sum(len(r["db_instances"]) for t in tenants for r in t["resources"].values()),
            "db_clusters": sum(len(r["db_clusters"]) for t in tenants for r in t["resources"].values()),
        },
        "seed_seconds": round(time.time() - t0, 2),
    }
    tmp = f"{args.out}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(fixture, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, args.out)
    print(f"seeded {fixture['totals']} in {fixture['seed_seconds']}s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
