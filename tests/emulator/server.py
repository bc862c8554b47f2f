#!/usr/bin/env python3
"""rolesnap test emulator: moto 5.2.1 server, in-process, behind a thin WSGI layer.

The layer adds what moto lacks and the rolesnap tests need (see README.md):
AssumeRole trust/ExternalId/duration enforcement, expiry and revocation of
temporary credentials, fault injection (also after the work is done), pending
holds, ageing, a layer clock and a call log.  It is controlled over plain
HTTP+JSON under /_harness/ on the same port.

    python3 server.py --port 0 --ready-file /tmp/emu.port
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gc
import io
import json
import os
import random
import re
import signal
import sys
import threading
import time
import uuid
from typing import Any, Callable
from urllib.parse import parse_qs, parse_qsl, urlencode
from xml.sax.saxutils import escape as xml_escape

HERE = os.path.dirname(os.path.abspath(__file__))

# --- moto settings: must be fixed before moto is imported ---------------------
# Never merge accounts (DESIGN.md): the account comes from the access key or the
# x-moto-account-id header.
os.environ.pop("MOTO_ACCOUNT_ID", None)
# Keep the ~1300 default AMIs (and their snapshots) out of every listing...
os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
# ...but provide exactly one public AMI whose root device is /dev/xvda, so that
# RunInstances with ImageId=ami-760aaa0f gives instances RootDeviceName=/dev/xvda
# (with no known AMI moto says /dev/sda1 whatever the block device mappings say).
os.environ.setdefault("MOTO_AMIS_PATH", os.path.join(HERE, "amis.json"))

from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

import moto  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
)
from moto.ec2.models import ec2_backends  # noqa: E402
from moto.ec2.models import amis as ec2_amis  # noqa: E402
from moto.ec2.models import elastic_block_store as ec2_ebs  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.rds import models as rds_models  # noqa: E402
from moto.rds.models import rds_backends  # noqa: E402
from moto.sts.models import sts_backends  # noqa: E402
from moto.sns.models import sns_backends  # noqa: E402

import conditions  # noqa: E402  (tests/emulator/conditions.py: tag conditions, AWS-like IAM refusals)
import locks  # noqa: E402  (tests/emulator/locks.py: EBS Snapshot Lock, which moto lacks)
import shares  # noqa: E402  (tests/emulator/shares.py: cross-account sharing, KMS keys)

PARTITION = "aws"
DEFAULT_ACCOUNT = "123456789012"  # moto's DEFAULT_ACCOUNT_ID
KINDS = ("snapshot", "image", "db-snapshot", "db-cluster-snapshot")
DEFAULT_AMI_IDS: set[str] = set()

NAMESPACES = {
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "rds": "http://rds.amazonaws.com/doc/2014-10-31/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
}

DEFAULT_MESSAGES = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "Throttling": "Rate exceeded",
    "ThrottlingException": "Rate exceeded",
    "InternalError": "An internal error has occurred",
    "InternalFailure": "An internal error has occurred",
    "ServiceUnavailable": "Service is unavailable. Please try again later.",
    "Unavailable": "Service is unavailable. Please try again later.",
    "AccessDenied": "User is not authorized to perform this operation (injected)",
    "UnauthorizedOperation": "You are not authorized to perform this operation.",
    "ExpiredToken": "The security token included in the request is expired",
    "SnapshotCreationPerVolumeRateExceeded": "The maximum per volume CreateSnapshot request rate has been exceeded. Use an increasing or variable sleep interval between requests.",
}
DEFAULT_STATUS = {
    "RequestLimitExceeded": 503,
    "Throttling": 400,
    "ThrottlingException": 400,
    "InternalError": 500,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
    "AccessDenied": 403,
    "UnauthorizedOperation": 403,
}


def real_now() -> dt.datetime:
    """Naive UTC, like moto's own timestamps."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def iso_z(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return t


# ---------------------------------------------------------------------------
# Layer state
# ---------------------------------------------------------------------------


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()  # layer state AND every call into moto
        # Token buckets and the call log / timing counters have locks of their
        # own, so that throttling decisions and counting never queue behind moto.
        self.bucket_lock = threading.Lock()
        self.stats_lock = threading.Lock()
        self.started = time.time()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.credential_lifetime: float | None = None
            self.clock_offset = 0.0
            self.seed = 0
            self.rng = random.Random(0)
            self.enforce_pending = True
            # Speed only: DescribeSnapshots answers from kept per-snapshot
            # items (see install_snapshot_answer_cache); off, moto's own path.
            self.snapshot_answer_cache = True
            # Speed only: DescribeInstances answers from kept per-instance
            # items (see install_instance_answer_cache); off, moto's own path.
            self.instance_answer_cache = True
            self.faults: list[dict[str, Any]] = []
            self.next_fault_id = 1
            self.holds: list[dict[str, Any]] = []
            self.next_hold_id = 1
            # (kind, account, region, id) -> {"obj", "hold_id", "since"}
            self.held: dict[tuple[str, str, str, str], dict[str, Any]] = {}
            # access key id -> {"expiration": layer-clock datetime, "revoked": bool, ...}
            self.temp_keys: dict[str, dict[str, Any]] = {}
            # EC2 throttling emulation (off by default) and a fixed per-call latency
            self.token_buckets = False
            self.bucket_scale = 1.0
            self.latency_ms = 0.0
            # Deleted snapshots stay listed this long (see install_model_hooks)
            self.linger_seconds = 0.0
            # (kind, account, region, id) -> (moto's dict, id, monotonic deadline)
            self.lingering: dict[tuple[str, str, str, str], tuple[dict[str, Any], str, float]] = {}
        with self.bucket_lock:
            # (account, region, bucket) -> [tokens, monotonic time of last refill]
            self.buckets: dict[tuple[str, str, str], list[float]] = {}
        with self.stats_lock:
            self.calls: dict[tuple[str, str, str, str, str], int] = {}
            self.timing = new_timing()

    def layer_now(self) -> dt.datetime:
        return real_now() + dt.timedelta(seconds=self.clock_offset)

    def count(self, account: str, region: str, service: str, action: str, outcome: str) -> None:
        key = (account or "", region or "", service or "", action or "", outcome)
        with self.stats_lock:
            self.calls[key] = self.calls.get(key, 0) + 1

    def time_moto(self, action: str, wait: float, busy: float) -> None:
        with self.stats_lock:
            t = self.timing
            t["requests"] += 1
            t["lock_wait_seconds"] += wait
            t["moto_seconds"] += busy
            row = t["by_action"].setdefault(action or "-", {"count": 0, "moto_seconds": 0.0, "max_moto_seconds": 0.0})
            row["count"] += 1
            row["moto_seconds"] += busy
            row["max_moto_seconds"] = max(row["max_moto_seconds"], busy)


def new_timing() -> dict[str, Any]:
    return {"since": time.time(), "requests": 0, "lock_wait_seconds": 0.0, "moto_seconds": 0.0, "by_action": {}}


STATE = State()


# ---------------------------------------------------------------------------
# EC2 throttling: token buckets per account x region x bucket (DESIGN.md)
# ---------------------------------------------------------------------------

# bucket -> (size, refill per second), as AWS documents them for EC2
BUCKETS: dict[str, tuple[float, float]] = {
    "describe": (100.0, 20.0),             # Describe*, Get*, List*, Search*
    "describe-unfiltered": (50.0, 10.0),   # DescribeInstances/Volumes/Snapshots without filter, ids or MaxResults
    "mutating": (50.0, 5.0),               # every other EC2 action
    "CreateSnapshot": (100.0, 5.0),        # CreateSnapshot and CreateSnapshots share it
    "DeleteSnapshot": (100.0, 5.0),
    "CreateVolume": (100.0, 5.0),
    "DeregisterImage": (100.0, 5.0),
    "CopySnapshot": (100.0, 5.0),
    "CreateImage": (100.0, 5.0),
    "CopyImage": (100.0, 1.0),
    "CreateTags": (100.0, 10.0),
}
OWN_BUCKET = {
    "CreateSnapshot": "CreateSnapshot",
    "CreateSnapshots": "CreateSnapshot",
    "DeleteSnapshot": "DeleteSnapshot",
    "CreateVolume": "CreateVolume",
    "DeregisterImage": "DeregisterImage",
    "CopySnapshot": "CopySnapshot",
    "CreateImage": "CreateImage",
    "CopyImage": "CopyImage",
    "CreateTags": "CreateTags",
}
UNFILTERED_EXPENSIVE = {
    "DescribeInstances": "InstanceId.",
    "DescribeVolumes": "VolumeId.",
    "DescribeSnapshots": "SnapshotId.",
}


def ec2_bucket(action: str, params: dict[str, str]) -> str:
    """The EC2 throttling bucket an action draws from."""
    if action in OWN_BUCKET:
        return OWN_BUCKET[action]
    if action.startswith(("Describe", "Get", "List", "Search")):
        ids = UNFILTERED_EXPENSIVE.get(action)
        if ids is not None and not any(
            k.startswith(("Filter.", ids)) or k in ("MaxResults", "NextToken") for k in params
        ):
            return "describe-unfiltered"
        return "describe"
    return "mutating"


def take_token(account: str, region: str, bucket: str) -> bool:
    """Takes one token; False (nothing taken) when the bucket is empty."""
    size, refill = BUCKETS[bucket]
    refill *= STATE.bucket_scale
    now = time.monotonic()
    with STATE.bucket_lock:
        st = STATE.buckets.get((account, region, bucket))
        if st is None:
            # tokens, last refill, calls let through, calls throttled, fewest tokens left
            # by a call, refill lost on a full bucket since the first call (in seconds)
            st = STATE.buckets[(account, region, bucket)] = [size, now, 0, 0, size, 0.0]
        full = st[0] + (now - st[1]) * refill
        if full > size and refill > 0:
            st[5] += (full - size) / refill
        st[0] = min(size, full)
        st[1] = now
        if st[0] >= 1.0:
            st[0] -= 1.0
            st[2] += 1
            st[4] = min(st[4], st[0])
            return True
        st[3] += 1
        return False


def buckets_view() -> list[dict[str, Any]]:
    now = time.monotonic()
    out = []
    with STATE.bucket_lock:
        for (account, region, bucket), (tokens, at, taken, throttled, least, lost) in sorted(STATE.buckets.items()):
            size, refill = BUCKETS[bucket]
            refill *= STATE.bucket_scale
            out.append({
                "account": account, "region": region, "bucket": bucket,
                "size": size, "refill_per_second": refill,
                "tokens": round(min(size, tokens + (now - at) * refill), 3),
                "taken": taken, "throttled": throttled,
                "min_tokens": round(least, 3), "lost_refill_seconds": round(lost, 3),
            })
    return out


# ---------------------------------------------------------------------------
# moto model hooks: pending holds (created while a hold is active)
# ---------------------------------------------------------------------------


def _obj_kind_ident(obj: Any) -> tuple[str, str, str, str] | None:
    if isinstance(obj, ec2_ebs.Snapshot):
        b = obj.ec2_backend
        return ("snapshot", b.account_id, b.region_name, obj.id)
    if isinstance(obj, ec2_amis.Ami):
        b = obj.ec2_backend
        return ("image", b.account_id, b.region_name, obj.id)
    if isinstance(obj, rds_models.DBClusterSnapshot):
        return ("db-cluster-snapshot", obj.account_id, obj.region, obj.db_cluster_snapshot_identifier)
    if isinstance(obj, rds_models.DBSnapshot):
        return ("db-snapshot", obj.account_id, obj.region, obj.db_snapshot_identifier)
    return None


def apply_pending(kind: str, obj: Any) -> None:
    if kind == "snapshot":
        obj.status = "pending"
        obj._harness_progress = "50%"
    elif kind == "image":
        obj.state = "pending"
    elif kind == "db-snapshot":
        obj.status = "creating"
        obj.percent_progress = 50
    elif kind == "db-cluster-snapshot":
        obj.status = "creating"
        obj.percent_progress = 50


def apply_complete(kind: str, obj: Any) -> None:
    if kind == "snapshot":
        obj.status = "completed"
        obj._harness_progress = None
    elif kind == "image":
        obj.state = "available"
    elif kind in ("db-snapshot", "db-cluster-snapshot"):
        obj.status = "available"
        obj.percent_progress = 100


def apply_failed(kind: str, obj: Any) -> None:
    """AWS's failed states: an EBS snapshot in error, a failed AMI or RDS snapshot."""
    if kind == "snapshot":
        obj.status = "error"
        obj._harness_progress = None
    elif kind == "image":
        obj.state = "failed"
    elif kind in ("db-snapshot", "db-cluster-snapshot"):
        obj.status = "failed"


def hold_object(obj: Any, hold_id: int | None) -> tuple[str, str, str, str] | None:
    ident = _obj_kind_ident(obj)
    if ident is None:
        return None
    with STATE.lock:
        STATE.held[ident] = {"obj": obj, "hold_id": hold_id, "since": iso_z(real_now())}
        apply_pending(ident[0], obj)
    return ident


def on_created(obj: Any) -> None:
    ident = _obj_kind_ident(obj)
    if ident is None:
        return
    kind, account, region, ident_id = ident
    if kind == "image" and ident_id in DEFAULT_AMI_IDS:
        return
    with STATE.lock:
        for rule in STATE.holds:
            if rule["account"] != account:
                continue
            if rule.get("region") and rule["region"] != region:
                continue
            if kind not in rule["kinds"]:
                continue
            hold_object(obj, rule["id"])
            return


def reapply_holds() -> None:
    with STATE.lock:
        for (kind, _a, _r, _i), rec in STATE.held.items():
            apply_pending(kind, rec["obj"])


def expire_lingering() -> None:
    """Drops the lingering snapshots whose time is up (called under STATE.lock)."""
    now = time.monotonic()
    for key, (container, ident, until) in list(STATE.lingering.items()):
        if until <= now:
            container.pop(ident, None)
            del STATE.lingering[key]


# Rules of `POST /_harness/db_endpoints`: {"prefix", "address", "port"}.
DB_ENDPOINTS: list[dict[str, Any]] = []
# Rules of `POST /_harness/ssm`: {"account", "instance_id"?, "exit_code", "output", "status"?}.
SSM_RESULTS: list[dict[str, Any]] = []


def install_model_hooks() -> None:
    # moto bug: DescribeInstances filter "availability-zone" compares against the
    # Placement object, so it never matches.  Compare the zone name instead.
    from moto.ec2 import utils as ec2_utils

    ec2_utils.filter_dict_attribute_mapping["availability-zone"] = "_placement.zone"

    # Speed only, same result: moto finds one resource's tags by scanning every
    # tag of the region with a regex (describe_tags with a resource-id filter),
    # which makes any Describe* of N tagged resources O(N^2): 1.7 s for 200
    # snapshots, minutes for a benchmark fleet. Read the resource's own entry
    # instead; the list (order, keys, values, resource_type) is the same.
    from moto.ec2.models import core as ec2_core

    def get_tags(self: Any) -> list[dict[str, str]]:
        rid = getattr(self, "id", None)
        if not rid:
            return []
        own = dict.get(self.ec2_backend.tags, rid)
        if not own:
            return []
        rtype = ec2_utils.EC2_PREFIX_TO_RESOURCE.get(ec2_utils.get_prefix(rid), "")
        return [{"resource_id": rid, "key": k, "value": v, "resource_type": rtype} for k, v in list(own.items())]

    ec2_core.TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]

    # moto answers CreateImage with a `snapshot` TagSpecification with an HTML 500
    # (AWS accepts it: the tags go on the AMI's new snapshots). Hand moto the other
    # specifications and put the snapshot tags on the AMI's (placeholder) snapshot.
    # Done on the parsed parameters, so that the body the client signed is intact.
    from moto.ec2.responses import amis as ec2_amis_responses

    def create_image(self: Any) -> Any:
        specs = self._get_param("TagSpecifications", []) or []
        self.error_on_dryrun()
        image = self.ec2_backend.create_image(
            self._get_param("InstanceId"),
            self._get_param("Name"),
            self._get_param("Description", ""),
            tag_specifications=[sp for sp in specs if sp.get("ResourceType") != "snapshot"],
        )
        snap_tags = {
            t["Key"]: t.get("Value", "")
            for sp in specs
            if sp.get("ResourceType") == "snapshot"
            for t in (sp.get("Tags") or sp.get("Tag") or [])
        }
        snap = getattr(image, "ebs_snapshot", None)
        if snap_tags and snap is not None:
            self.ec2_backend.create_tags([snap.id], snap_tags)
        return ec2_amis_responses.ActionResult({"ImageId": image.id})

    ec2_amis_responses.AmisResponse.create_image = create_image  # type: ignore[method-assign]

    # EBS snapshot progress is a constant property in moto; make it overridable.
    ec2_ebs.Snapshot.progress = property(  # type: ignore[assignment]
        lambda self: getattr(self, "_harness_progress", None) or "100%"
    )

    def wrap_init(cls: type) -> None:
        orig = cls.__init__

        def __init__(self: Any, *a: Any, **kw: Any) -> None:
            orig(self, *a, **kw)
            try:
                on_created(self)
            except Exception as exc:  # never break moto
                print(f"harness: hold hook failed: {exc!r}", file=sys.stderr)

        cls.__init__ = __init__  # type: ignore[method-assign]

    for cls in (ec2_ebs.Snapshot, ec2_amis.Ami, rds_models.DBSnapshot, rds_models.DBClusterSnapshot):
        wrap_init(cls)

    # Deletes that linger (config `linger_deleted_seconds`, off by default).
    # AWS lists a deleted RDS snapshot as "deleting" for a while, and EC2's
    # eventually consistent describes may still list a just-deleted EBS
    # snapshot; moto forgets both at once. With a linger set, a deleted
    # snapshot stays listed that long (RDS: status "deleting"), and deleting
    # it again gets AWS's answer: InvalidSnapshot.NotFound for EBS,
    # InvalidDBSnapshotState / InvalidDBClusterSnapshotStateFault for RDS.
    def lingering(kind: str, container_of: Any, again: Any) -> Any:
        def wrap(orig: Any) -> Any:
            def delete(self: Any, ident: str, *a: Any, **kw: Any) -> Any:
                key = (kind, self.account_id, self.region_name, ident)
                if key in STATE.lingering:
                    raise again(ident)
                obj = orig(self, ident, *a, **kw)
                if STATE.linger_seconds > 0:
                    container = container_of(self)
                    container[ident] = obj
                    if kind != "snapshot":
                        obj.status = "deleting"
                    STATE.lingering[key] = (container, ident, time.monotonic() + STATE.linger_seconds)
                return obj

            return delete

        return wrap

    # Paging of DescribeSnapshots (moto answers every snapshot at once and
    # ignores MaxResults). As AWS: MaxResults 5..1000 and not with
    # SnapshotIds; NextToken continues a listing in snapshot-id order.
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    orig_describe_snapshots = ElasticBlockStore.describe_snapshots

    def describe_snapshots(self: Any) -> Any:
        max_results = self._get_param("MaxResults")
        if max_results is None:
            return orig_describe_snapshots(self)
        n = int(max_results)
        if not 5 <= n <= 1000 or self._get_param("SnapshotIds", []):
            raise EC2ClientError(
                "InvalidParameterValue",
                "MaxResults must be between 5 and 1000 and cannot be combined with SnapshotIds",
            )
        snaps = sorted(
            self.ec2_backend.describe_snapshots(snapshot_ids=[], filters=self._filters_from_querystring()),
            key=lambda x: x.id,
        )
        # The token is the last id answered: snapshots made or gone between
        # pages shift nothing.
        after = self._get_param("NextToken")
        if after:
            snaps = [x for x in snaps if x.id > after]
        out: dict[str, Any] = {"Snapshots": snaps[:n]}
        if len(snaps) > n:
            out["NextToken"] = snaps[n - 1].id
        return ActionResult(out)

    ElasticBlockStore.describe_snapshots = describe_snapshots  # type: ignore[method-assign]

    from moto.ec2.exceptions import InvalidSnapshotIdError
    from moto.rds.exceptions import RDSClientError

    ec2_ebs.EBSBackend.delete_snapshot = lingering(  # type: ignore[method-assign]
        "snapshot", lambda b: b.snapshots, lambda _i: InvalidSnapshotIdError()
    )(ec2_ebs.EBSBackend.delete_snapshot)
    rds_models.RDSBackend.delete_db_snapshot = lingering(  # type: ignore[method-assign]
        "db-snapshot",
        lambda b: b.database_snapshots,
        lambda i: RDSClientError("InvalidDBSnapshotState", f"Cannot delete the snapshot {i} because it is in the deleting state."),
    )(rds_models.RDSBackend.delete_db_snapshot)
    rds_models.RDSBackend.delete_db_cluster_snapshot = lingering(  # type: ignore[method-assign]
        "db-cluster-snapshot",
        lambda b: b.cluster_snapshots,
        lambda i: RDSClientError("InvalidDBClusterSnapshotStateFault", f"Cannot delete the cluster snapshot {i} because it is in the deleting state."),
    )(rds_models.RDSBackend.delete_db_cluster_snapshot)

    # moto's RDS endpoints are names that resolve nowhere and listen on
    # nothing. `POST /_harness/db_endpoints` names a prefix of DB instance
    # identifiers whose endpoint is answered as an address and port the test
    # chose (127.0.0.1 and a port it listens on, or one that is closed), so a
    # restore drill's TCP connect to the database can be tested.
    orig_address = rds_models.DBInstance.address
    orig_endpoint = rds_models.DBInstance.endpoint

    def endpoint_rule(ident: str) -> dict[str, Any] | None:
        for rule in DB_ENDPOINTS:
            if ident.startswith(rule["prefix"]):
                return rule
        return None

    def address(self: Any) -> str:
        rule = endpoint_rule(self.db_instance_identifier)
        return rule["address"] if rule else orig_address.fget(self)

    def endpoint(self: Any) -> dict[str, Any]:
        rule = endpoint_rule(self.db_instance_identifier)
        if rule is None:
            return orig_endpoint.fget(self)
        return {"Address": rule["address"], "Port": rule["port"]}

    rds_models.DBInstance.address = property(address)  # type: ignore[assignment]
    rds_models.DBInstance.endpoint = property(endpoint)  # type: ignore[assignment]

    # moto's SSM Run Command reports every command a Success with exit code 0
    # and no output, at once, on any instance id. `POST /_harness/ssm` sets
    # what an invocation reports instead, per account and optionally per
    # instance: its exit code, output and status (InProgress: it never ends),
    # so that a restore drill's check command can pass, fail or time out.
    from moto.ssm import models as ssm_models

    orig_invocation = ssm_models.Command.invocation_response

    def invocation_response(self: Any, instance_id: str, plugin_name: str) -> dict[str, Any]:
        out = orig_invocation(self, instance_id, plugin_name)
        rule = next(
            (r for r in SSM_RESULTS
             if r["account"] == self.account_id and r.get("instance_id") in (None, instance_id)),
            None,
        )
        if rule is not None:
            code = int(rule.get("exit_code", 0))
            status = rule.get("status") or ("Success" if code == 0 else "Failed")
            out.update({
                "ResponseCode": -1 if status == "InProgress" else code,
                "Status": status,
                "StatusDetails": status,
                "StandardOutputContent": str(rule.get("output", "")),
            })
        return out

    ssm_models.Command.invocation_response = invocation_response  # type: ignore[method-assign]

    # The one AMI from amis.json is loaded into every region; moto also makes a
    # placeholder snapshot for it, which would show up in every DescribeSnapshots
    # (moto ignores OwnerIds).  Drop those placeholder snapshots.
    orig_load = ec2_amis.AmiBackend._load_amis

    def _load_amis(self: Any) -> None:
        orig_load(self)
        for ami in list(self.amis.values()):
            DEFAULT_AMI_IDS.add(ami.id)
            snaps = getattr(self, "snapshots", None)
            if snaps is not None:
                snaps.pop(ami.ebs_snapshot.id, None)

    ec2_amis.AmiBackend._load_amis = _load_amis  # type: ignore[method-assign]

    install_snapshot_answer_cache()
    install_instance_answer_cache()
    install_request_id_shortcut()
    install_filter_shortcut()
    install_dispatch_shortcuts()


# ---------------------------------------------------------------------------
# Speed patch: DescribeSnapshots answers from a per-snapshot cache
# ---------------------------------------------------------------------------
#
# Speed only, same bytes. About 90% of a DescribeSnapshots is moto's generic
# response serializer: for every snapshot it looks up each of the 24 members of
# the Snapshot shape through a chain of alias providers (~70 attribute probes),
# builds nested dicts, then xmltodict turns them into XML: ~0.4 ms per snapshot
# with 10 tags, so 60-130 ms for 160-320 snapshots, while the filter itself
# takes ~1 ms. A listing mostly returns the same, unchanged snapshots again.
#
# So each snapshot's <item>...</item>, as moto's own serializer writes it, is
# kept with the values it was made from: the member values moto's attribute
# picker finds on the snapshot (the same candidate attribute names, in the same
# order, the first that exists wins; the tag list included), frozen with their
# types. On the next listing the values are read again; if they are equal, the
# kept item is used, else it is made again (all the new ones of an answer in one
# moto serialization, split at its top-level items). The answer around the
# items (nextToken, requestId, namespace, headers, status) is moto's
# serialization of the same result with an empty snapshot list, whose
# `<snapshotSet/>` gets the items. Anything unusual (a response transformer on
# these paths, pretty printing, another serializer, a value of a type _freeze
# does not know, an object with __getitem__ or an instance Meta, items that do
# not split) takes moto's unchanged path for the whole answer.

_MISSING = object()
ITEM_TAG_RE = re.compile(r"<(/?)item(/?)>")


class _Uncacheable(Exception):
    pass


def answer_from_kept_items(
    operation: str,
    enabled: Callable[[], bool],
    fast: Callable[[Any, Any], Any],
    items: dict[int, Any],
    errors: type[BaseException] | tuple[type[BaseException], ...],
    on_moto_path: Callable[[], None] = lambda: None,
) -> None:
    """Routes moto's answers to EC2 `operation` through `fast` while
    `enabled()`: its answer, or moto's own when it gives None or raises one of
    `errors` (then `on_moto_path()` is called). `POST /moto-api/reset` drops
    moto's models: `items`, the kept items, go with them. Each call wraps the
    ActionResult.execute_result installed before it."""
    from moto.core.responses import ActionResult
    from moto.moto_api._internal.models import MotoAPIBackend

    orig_execute = ActionResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if (
            type(self) is ActionResult
            and isinstance(self._result, dict)
            and context.operation_model.name == operation
            and context.service_model.service_name == "ec2"
            and enabled()
        ):
            try:
                answer = fast(self, context)
            except errors:
                answer = None
            if answer is not None:
                return answer
            on_moto_path()
        return orig_execute(self, context)

    ActionResult.execute_result = execute_result  # type: ignore[method-assign]

    orig_reset = MotoAPIBackend.reset

    def reset(self: Any) -> None:
        orig_reset(self)
        items.clear()

    MotoAPIBackend.reset = reset  # type: ignore[method-assign]


def split_items(where: str, inner: str) -> list[str]:
    """The top-level <item>...</item> elements of what moto wrote inside
    `where` (tag sets and the like nest <item>s too)."""
    out, depth, start = [], 0, 0
    for m in ITEM_TAG_RE.finditer(inner):
        if m.group(2):  # <item/>
            if depth == 0:
                out.append(m.group(0))
        elif m.group(1):  # </item>
            depth -= 1
            if depth == 0:
                out.append(inner[start:m.end()])
        else:
            if depth == 0:
                start = m.start()
            depth += 1
    if depth != 0 or "".join(out) != inner:
        raise _Uncacheable(f"items do not tile the {where}")
    return out


def _freeze(v: Any) -> Any:
    """A comparable copy of a member value that keeps its type (True, 1 and 1.0
    serialize differently but are equal in Python)."""
    t = type(v)
    if v is None or t is str:
        return v
    if t is bool or t is int:
        return (t, v)
    if t is float:
        return (t, repr(v))
    if t is dt.datetime:
        return (t, v.isoformat(), repr(v.tzinfo))
    if t is list or t is tuple:
        return (t, tuple([_freeze(x) for x in v]))
    if t is dict:
        pairs = tuple(v.items())
        for k, x in pairs:
            if type(k) is not str or type(x) is not str:
                break
        else:
            return (t, pairs)  # str -> str (a tag): what the loop below gives
        out = []
        for k, x in pairs:
            if type(k) is not str:
                raise _Uncacheable(type(k))
            out.append((k, _freeze(x)))
        return (t, tuple(out))
    raise _Uncacheable(t)


def _shape_key_paths(shape: Any, path: str, depth: int = 0) -> list[str]:
    """Every `key_path.key` moto's picker sees below a structure shape."""
    out: list[str] = []
    if depth > 6 or getattr(shape, "type_name", None) != "structure":
        return out
    for key, member in shape.members.items():
        out.append(f"{path}.{key}")
        if member.type_name == "structure":
            out.extend(_shape_key_paths(member, f"{path}.{key}", depth + 1))
        elif member.type_name == "list" and member.member.type_name == "structure":
            out.extend(_shape_key_paths(member.member, f"{path}.{key}.{member.member.name}", depth + 1))
    return out


def install_snapshot_answer_cache() -> None:
    from moto import settings as moto_settings
    from moto.core import serialize as moto_serialize
    from moto.core.responses import ActionResult

    orig_execute = ActionResult.execute_result
    # id(snapshot) -> (snapshot, frozen member values, "<item>...</item>")
    items: dict[int, tuple[Any, tuple[Any, ...], str]] = {}
    # (class, class Meta) -> candidate attribute names per Snapshot member
    plans: dict[Any, tuple[tuple[str, ...], ...]] = {}
    # transformer paths -> whether one applies below DescribeSnapshots' snapshot list
    relevant: dict[frozenset[str], bool] = {}

    def plan_for(obj: Any, context: Any) -> tuple[tuple[str, ...], ...]:
        key = (type(obj), getattr(type(obj), "Meta", None))
        plan = plans.get(key)
        if plan is None:
            om = context.operation_model
            snap_shape = om.output_shape.members["Snapshots"].member
            picker = moto_serialize.XFormedAttributePicker()
            cands = []
            for mkey, mshape in snap_shape.members.items():
                mshape.parent = snap_shape  # as moto's _serialize_type_structure does
                ctx = moto_serialize.AttributePickerContext(
                    obj=obj, key=mkey, shape=mshape, operation_model=om, service_model=context.service_model
                )
                names = tuple(picker.get_possible_keys(ctx))
                if any(not isinstance(n, str) or "." in n for n in names):
                    raise _Uncacheable(names)
                cands.append(names)
            plan = plans[key] = tuple(cands)
        return plan

    def lookups(cls: type, plan: tuple[tuple[str, ...], ...]) -> Any:
        """The plan with each name marked: found through the class (a property,
        a class attribute: read with getattr) or only ever in the instance dict.
        Made again for every answer, so that a class patched later is seen.
        Per member also: whether any name is found through the class, and the
        set of its names."""
        if cls.__getattribute__ is not object.__getattribute__ or hasattr(cls, "__getattr__"):
            raise _Uncacheable(cls)
        mro = cls.__mro__
        out = []
        for names in plan:
            marked = tuple((n, any(n in c.__dict__ for c in mro)) for n in names)
            out.append((marked, any(c for _n, c in marked), frozenset(names)))
        return tuple(out)

    def transformers_apply(context: Any) -> bool:
        tf = getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None) or {}
        keys = frozenset(tf)
        hit = relevant.get(keys)
        if hit is None:
            om = context.operation_model
            root = f"{om.name}.{om.output_shape.name}"
            snap_shape = om.output_shape.members["Snapshots"].member
            paths = [f"{root}.Snapshots"] + _shape_key_paths(snap_shape, f"{root}.Snapshots.{snap_shape.name}")
            hit = relevant[keys] = any(p.endswith(t) for p in paths for t in keys)
        return hit

    def fingerprint(obj: Any, look: Any) -> tuple[Any, ...]:
        """What moto's picker finds for each member: the first candidate name
        that getattr finds. A name no class in the MRO has can only come from
        the instance dict (no __getattr__, plain __getattribute__); a member
        none of whose names is there, or in a class, is None."""
        d = obj.__dict__
        vals = []
        for names, via_any_class, name_set in look:
            if not via_any_class and name_set.isdisjoint(d):
                vals.append(None)
                continue
            v = None
            for n, via_class in names:
                v = getattr(obj, n, _MISSING) if via_class else d.get(n, _MISSING)
                if v is not _MISSING:
                    break
            else:
                v = None
            vals.append(_freeze(v))
        return tuple(vals)

    def snapshot_set(objs: list[Any], context: Any) -> str:
        """What moto writes between <snapshotSet> and </snapshotSet> for these snapshots."""
        body = orig_execute(ActionResult({"Snapshots": objs}), context)[2]
        i, j = body.find("<snapshotSet>"), body.rfind("</snapshotSet>")
        if i < 0 or j < i:
            if "<snapshotSet/>" in body:
                return ""  # every item serialized to nothing: moto leaves them out
            raise _Uncacheable("no snapshotSet")
        return body[i + len("<snapshotSet>"):j]

    def fast(self: Any, context: Any) -> Any:
        result = self._result
        snaps = result.get("Snapshots")
        if not isinstance(snaps, list) or not snaps:
            return None
        if (
            context.serializer_class is not moto_serialize.EC2Serializer
            or moto_settings.PRETTIFY_RESPONSES
            or transformers_apply(context)
        ):
            return None
        parts: list[str | None] = []
        missing: list[tuple[int, Any, tuple[Any, ...]]] = []  # (position, snapshot, values)
        looks: dict[type, Any] = {}
        for obj in snaps:
            d = getattr(obj, "__dict__", None)
            if d is None or "Meta" in d or hasattr(obj, "__getitem__"):
                return None
            look = looks.get(type(obj))
            if look is None:
                look = looks[type(obj)] = lookups(type(obj), plan_for(obj, context))
            fp = fingerprint(obj, look)
            hit = items.get(id(obj))
            if hit is not None and hit[0] is obj and hit[1] == fp:
                parts.append(hit[2])
            else:
                missing.append((len(parts), obj, fp))
                parts.append(None)
        if missing:
            # One moto serialization for all of them; each item is the same as
            # moto writes for that snapshot alone (the serializer walks items
            # independently), so they are split and kept one by one. If the
            # count does not fit (moto left an empty item out), one at a time.
            made = split_items("snapshotSet", snapshot_set([obj for _i, obj, _fp in missing], context))
            if len(made) != len(missing):
                made = [snapshot_set([obj], context) for _i, obj, _fp in missing]
            if len(items) + len(missing) > 500_000:
                items.clear()
            for (i, obj, fp), xml in zip(missing, made):
                items[id(obj)] = (obj, fp, xml)
                parts[i] = xml
        status, headers, body = orig_execute(ActionResult({**result, "Snapshots": []}), context)
        joined = "".join(parts)  # type: ignore[arg-type]
        if not joined:
            return status, headers, body
        if body.count("<snapshotSet/>") != 1:
            return None
        return status, headers, body.replace("<snapshotSet/>", f"<snapshotSet>{joined}</snapshotSet>", 1)

    answer_from_kept_items("DescribeSnapshots", lambda: STATE.snapshot_answer_cache, fast, items, _Uncacheable)


# ---------------------------------------------------------------------------
# Speed patch: DescribeInstances answers from a per-instance cache
# ---------------------------------------------------------------------------
#
# Speed only, same bytes. Nearly all of a DescribeInstances is moto's generic
# serializer: ~150 member look-ups per instance through the alias providers and
# the response-transformer scan, nested dicts, then xmltodict: ~2 ms per
# instance, 0.4 s for 200 instances, while the lookup itself is ~1 ms.
#
# The idea is the one of the DescribeSnapshots cache above, but an instance's
# item is a tree (state, placement, block device mappings, network interfaces
# with their addresses and groups, tags, ...), many of its values computed from
# other objects (volumes, ENIs, security groups, the tag table). So the
# fingerprint of an item is not a list of top-level members: it is every value
# moto's serializer would read for it, found by walking the Instance output
# shape exactly as the serializer does: the same candidate attribute names per
# (class, shape path) as moto's attribute picker (first found wins; plain dicts
# by key), the same response transformer (only known pure ones; anything else
# takes moto's path for the whole answer), into structures and lists; each leaf
# frozen with its type (_freeze). The item's XML is a function of that value
# sequence alone (element names come from the shapes), so an equal fingerprint
# means moto would write the same item. Properties are read as moto reads them
# (Instance.block_device_mappings reads the volumes' state, NetworkInterface
# .group_set the groups, tag_list the tag table, ...), so a change anywhere that
# shows in the item shows in the fingerprint.
#
# A new or changed item is made by moto's serializer (all of an answer's in one
# serialization, inside a copy of a real reservation, split at the top-level
# items) and kept only if a second walk after that serialization gives the same
# fingerprint (a value that changes between reads is never kept). The answer
# around the items is moto's serialization of the same result with every
# reservation's instance list empty, whose `<instancesSet/>` get the items.
# Anything unusual (a type the walk does not know, a dict subclass, an object
# with __getitem__/__getattr__/an instance Meta, an unknown transformer,
# pretty printing, another serializer, items that do not split) takes moto's
# path: for one item (not kept) or for the whole answer.

_PURE_TRANSFORMERS: set[Any] = set()
# For tests and measurements: the kept items, the plans, and counts of items
# answered kept / made by moto, and of answers left to moto's path whole.
INSTANCE_CACHE: dict[str, Any] = {}
# Marks in a fingerprint where a structure or a list begins and ends: objects,
# so that no member value can equal them.
_FP_OPEN, _FP_CLOSE, _FP_LIST, _FP_LIST_END = object(), object(), object(), object()


def install_instance_answer_cache() -> None:
    from moto import settings as moto_settings
    from moto.core import serialize as moto_serialize
    from moto.core.responses import ActionResult

    _PURE_TRANSFORMERS.update({moto_serialize.return_if_not_empty, moto_serialize.never_return})
    orig_execute = ActionResult.execute_result
    # id(instance) -> (instance, fingerprint, "<item>...</item>")
    items: dict[int, tuple[Any, tuple[Any, ...], str]] = {}
    # (class, class Meta, shape path) -> member plan; valid for one transformer table
    plans: dict[Any, Any] = {}
    tf_seen: list[Any] = [None]
    LIST_ITER = list.__iter__
    stats = {"kept": 0, "made": 0, "uncacheable_items": 0, "moto_path_answers": 0}
    INSTANCE_CACHE.update(items=items, plans=plans, stats=stats)

    def plan_for(obj: Any, shape: Any, path: str, context: Any, tf: Any) -> Any:
        cls = type(obj)
        key = (cls, getattr(cls, "Meta", None), path)
        plan = plans.get(key)
        if plan is not None:
            return plan
        om = context.operation_model
        picker = moto_serialize.XFormedAttributePicker()
        members = []
        for mkey, mshape in shape.members.items():
            mshape.parent = shape  # as moto's _serialize_type_structure does
            ctx = moto_serialize.AttributePickerContext(
                obj=obj, key=mkey, shape=mshape, operation_model=om, service_model=context.service_model, key_path=path
            )
            names = tuple(picker.get_possible_keys(ctx))
            if any(not isinstance(n, str) or "." in n for n in names):
                raise _Uncacheable(names)
            key_path = f"{path}.{mkey}"
            transform = None
            for tpath, fn in tf:
                if key_path.endswith(tpath):
                    if fn not in _PURE_TRANSFORMERS:
                        raise _Uncacheable(tpath)
                    transform = fn
                    break
            kind = mshape.type_name
            child = None
            if kind == "structure":
                child = (mshape, key_path)
            elif kind == "list":
                member = mshape.member
                child = (member, f"{key_path}.{member.name}" if member.type_name == "structure" else None)
                if member.type_name in ("list", "map"):
                    raise _Uncacheable("nested list")
            elif kind == "map":
                raise _Uncacheable("map")
            if cls is dict:
                marked: Any = names
                via_any_class = False
            else:
                mro = cls.__mro__
                marked = tuple((n, any(n in c.__dict__ for c in mro)) for n in names)
                via_any_class = any(c for _n, c in marked)
            members.append((marked, via_any_class, frozenset(names), transform, kind, child))
        plan = plans[key] = tuple(members)
        return plan

    def walk(obj: Any, shape: Any, path: str, out: list[Any], context: Any, tf: Any, depth: int = 0) -> None:
        """Appends to `out` every value moto's serializer picks below `obj`
        (a structure value, not None), in its order."""
        if depth > 12:
            raise _Uncacheable("deep")
        cls = type(obj)
        plan = plan_for(obj, shape, path, context, tf)
        if cls is dict:
            for names, _via, _set, transform, kind, child in plan:
                v = None
                for n in names:
                    v = obj.get(n, _MISSING)
                    if v is not _MISSING:
                        break
                else:
                    v = None
                if transform is not None:
                    v = transform(v)
                if v is None or type(v) is str:
                    out.append(v)
                elif child is None:
                    out.append(_freeze(v))
                else:
                    value(v, kind, child, out, context, tf, depth)
            return
        d = getattr(obj, "__dict__", None)
        if (
            d is None
            or "Meta" in d
            or "__getitem__" in d
            or hasattr(cls, "__getitem__")
            or hasattr(cls, "__getattr__")
            or cls.__getattribute__ is not object.__getattribute__
        ):
            raise _Uncacheable(cls)
        for names, via_any_class, name_set, transform, kind, child in plan:
            if not via_any_class and name_set.isdisjoint(d):
                v = None
            else:
                for n, via_class in names:
                    v = getattr(obj, n, _MISSING) if via_class else d.get(n, _MISSING)
                    if v is not _MISSING:
                        break
                else:
                    v = None
            if transform is not None:
                v = transform(v)
            if v is None or type(v) is str:
                out.append(v)
            elif child is None:  # a scalar member
                out.append(_freeze(v))
            else:
                value(v, kind, child, out, context, tf, depth)

    def value(v: Any, kind: str, child: Any, out: list[Any], context: Any, tf: Any, depth: int) -> None:
        if v is None:
            out.append(None)
            return
        if kind == "structure":
            out.append(_FP_OPEN)
            walk(v, child[0], child[1], out, context, tf, depth + 1)
            out.append(_FP_CLOSE)
            return
        if kind == "list":
            t = type(v)
            if not (t is list or t is tuple or t is set or t is frozenset or (isinstance(v, list) and t.__iter__ is LIST_ITER)):
                raise _Uncacheable(t)
            member, mpath = child
            out.append((_FP_LIST, t))
            if mpath is not None:  # list of structures
                for x in v:
                    if x is None:
                        out.append(None)
                    else:
                        out.append(_FP_OPEN)
                        walk(x, member, mpath, out, context, tf, depth + 1)
                        out.append(_FP_CLOSE)
            else:
                for x in v:
                    out.append(_freeze(x))
            out.append(_FP_LIST_END)
            return
        out.append(_freeze(v))

    def fingerprint(obj: Any, inst_shape: Any, inst_path: str, context: Any, tf: Any) -> tuple[Any, ...]:
        out: list[Any] = [type(obj)]
        walk(obj, inst_shape, inst_path, out, context, tf)
        return tuple(out)

    def instances_set(reservation: Any, attr: str, objs: list[Any], context: Any, set_name: str) -> str:
        """What moto writes between <set_name> and </set_name> for these
        instances in (a copy of) this reservation."""
        r = copy.copy(reservation)
        r.__dict__[attr] = list(objs)
        body = orig_execute(ActionResult({"Reservations": [r]}), context)[2]
        open_tag, close_tag = f"<{set_name}>", f"</{set_name}>"
        if body.count(open_tag) != 1 or body.count(close_tag) != 1:
            if body.count(open_tag) == 0 and body.count(f"<{set_name}/>") == 1:
                return ""  # every item serialized to nothing: moto leaves them out
            raise _Uncacheable("no single instancesSet")
        i, j = body.find(open_tag), body.rfind(close_tag)
        if j < i:
            raise _Uncacheable("instancesSet order")
        return body[i + len(open_tag):j]

    def fast(self: Any, context: Any) -> Any:
        result = self._result
        reservations = result.get("Reservations")
        if type(reservations) is not list or not reservations:
            return None
        if (
            context.serializer_class is not moto_serialize.EC2Serializer
            or moto_settings.PRETTIFY_RESPONSES
        ):
            return None
        om = context.operation_model
        out_shape = om.output_shape
        res_shape = out_shape.members["Reservations"].member
        ilist_shape = res_shape.members["Instances"]
        inst_shape = ilist_shape.member
        if ilist_shape.is_flattened or inst_shape.type_name != "structure":
            return None
        set_name = ilist_shape.serialization.get("name", "Instances")
        if inst_shape.serialization.get("name", inst_shape.name) != "item":
            return None
        res_path = f"{om.name}.{out_shape.name}.Reservations.{res_shape.name}"
        inst_path = f"{res_path}.Instances.{inst_shape.name}"
        tf_map = getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None) or {}
        tf = tuple(tf_map.items())
        res_list_path = f"{om.name}.{out_shape.name}.Reservations"
        if any(res_list_path.endswith(tpath) for tpath, _fn in tf):
            return None  # a transformer on the reservation list itself
        if tf != tf_seen[0]:
            # another transformer table: plans (which hold the transformers) and
            # the items made under the old one go
            plans.clear()
            items.clear()
            tf_seen[0] = tf
        # Which attribute moto picks a reservation's instance list from: it must
        # be a plain instance attribute holding a list, so that a copy with an
        # empty (or other) list there is serialized as the same reservation.
        per_res: list[tuple[Any, str, list[Any]]] = []
        at = list(res_shape.members).index("Instances")
        for r in reservations:
            rcls = type(r)
            d = getattr(r, "__dict__", None)
            if (
                d is None or "Meta" in d or hasattr(r, "__getitem__") or hasattr(rcls, "__getattr__")
                or rcls.__getattribute__ is not object.__getattribute__
            ):
                return None
            plan = plan_for(r, res_shape, res_path, context, tf)
            names, _via, _set, transform, _kind, _child = plan[at]
            if transform is not None:
                return None
            attr = None
            for n, via_class in names:
                if via_class:
                    if hasattr(r, n):
                        return None  # a property or class attribute: not a plain list
                    continue
                if n in d:
                    attr = n
                    break
            if attr is None or type(d[attr]) is not list:
                return None
            per_res.append((r, attr, d[attr]))
        # The kept items, or None where one is to be made.
        parts: list[list[str | None]] = []
        missing: list[tuple[int, int, Any, Any]] = []  # (reservation, position, instance, fingerprint or None)
        for ri, (r, attr, insts) in enumerate(per_res):
            row: list[str | None] = []
            for obj in insts:
                if obj is None:
                    return None
                try:
                    fp = fingerprint(obj, inst_shape, inst_path, context, tf)
                except _Uncacheable:
                    fp = None  # made by moto every time
                    stats["uncacheable_items"] += 1
                hit = items.get(id(obj)) if fp is not None else None
                if hit is not None and hit[0] is obj and hit[1] == fp:
                    row.append(hit[2])
                    stats["kept"] += 1
                else:
                    missing.append((ri, len(row), obj, fp))
                    stats["made"] += 1
                    row.append(None)
            parts.append(row)
        if missing:
            objs = [obj for _ri, _i, obj, _fp in missing]
            carrier = per_res[0]
            made = split_items("instancesSet", instances_set(carrier[0], carrier[1], objs, context, set_name))
            if len(made) != len(missing):
                made = [instances_set(carrier[0], carrier[1], [obj], context, set_name) for obj in objs]
            if len(items) + len(missing) > 200_000:
                items.clear()
            for (ri, i, obj, fp), xml in zip(missing, made):
                parts[ri][i] = xml
                if fp is not None:
                    try:
                        again = fingerprint(obj, inst_shape, inst_path, context, tf)
                    except _Uncacheable:
                        again = None
                    if again == fp:
                        items[id(obj)] = (obj, fp, xml)
                    else:
                        items.pop(id(obj), None)
        # The answer with every instance list empty, then the items put in.
        empties = []
        for r, attr, _insts in per_res:
            c = copy.copy(r)
            c.__dict__[attr] = []
            empties.append(c)
        status, headers, body = orig_execute(ActionResult({**result, "Reservations": empties}), context)
        empty_tag = f"<{set_name}/>"
        pieces = body.split(empty_tag)
        if len(pieces) != len(per_res) + 1:
            return None
        outb = [pieces[0]]
        for row, tail in zip(parts, pieces[1:]):
            joined = "".join(row)  # type: ignore[arg-type]
            outb.append(f"<{set_name}>{joined}</{set_name}>" if joined else empty_tag)
            outb.append(tail)
        return status, headers, "".join(outb)

    def on_moto_path() -> None:
        stats["moto_path_answers"] += 1

    # _Uncacheable, or a model read that fails: moto's path decides
    answer_from_kept_items(
        "DescribeInstances", lambda: STATE.instance_answer_cache, fast, items, Exception, on_moto_path
    )


def install_request_id_shortcut() -> None:
    """Speed only, same answer: after every action moto runs
    `re.sub("(?<=<RequestId>).*(?=</RequestId>)", id, body)` over the whole
    body (~2 ms for a 300 kB DescribeSnapshots). Without the literal
    `<RequestId>` in the body (EC2 writes `<requestId>`) it cannot match; then
    only the rest is done (the new request id in the headers, drawn as before)."""
    from moto.core.responses import BaseResponse

    orig_enrich = BaseResponse._enrich_response

    def _enrich_response(headers: Any, body: Any) -> Any:
        if isinstance(body, str) and "<RequestId>" not in body:
            headers, _empty = orig_enrich(headers, "")
            return headers, body
        return orig_enrich(headers, body)

    BaseResponse._enrich_response = staticmethod(_enrich_response)  # type: ignore[method-assign,assignment]


class _FilterValue:
    """Hands moto's is_filter_matching a value already read from the resource."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def get_filter_value(self, filter_name: str, method_name: str | None = None) -> Any:
        return self.value


def install_filter_shortcut() -> None:
    """Speed only, same result: moto matches a string attribute against a
    filter's values with one fnmatch per value, for every resource; rolesnap
    polls up to 200 snapshot ids in one `snapshot-id` filter (320 snapshots x
    200 ids = 64000 fnmatch calls). A value without a glob character (`*`, `?`,
    `[`) matches only itself (fnmatch on POSIX does not fold case), so those
    are one set lookup; values with glob characters still go to fnmatch.
    Anything but a str attribute and a list of str values takes moto's path,
    with the value read once as before."""
    import fnmatch

    from moto.ec2 import utils as ec2_utils

    if os.path.normcase("A/b") != "A/b":
        return  # fnmatch folds case here: keep moto's path
    orig = ec2_utils.is_filter_matching
    last: list[Any] = [None, None, frozenset(), ()]  # the values list, a copy, plain values, globs

    def is_filter_matching(obj: Any, _filter: str, filter_value: Any) -> bool:
        if type(filter_value) is not list or len(filter_value) < 2:
            return orig(obj, _filter, filter_value)
        value = obj.get_filter_value(_filter)
        if type(value) is not str:
            return orig(_FilterValue(value), _filter, filter_value)
        if last[0] is not filter_value or last[1] != filter_value:
            if any(type(p) is not str for p in filter_value):
                return orig(_FilterValue(value), _filter, filter_value)
            plain = frozenset(p for p in filter_value if "*" not in p and "?" not in p and "[" not in p)
            last[:] = [filter_value, list(filter_value), plain, tuple(p for p in filter_value if p not in plain)]
        return value in last[2] or any(fnmatch.fnmatch(value, p) for p in last[3])

    ec2_utils.is_filter_matching = is_filter_matching


def install_dispatch_shortcuts() -> None:
    """Speed only, same dispatch: before every request moto's dispatcher asks
    twice which service a host belongs to (~0.75 ms per request, inside the
    lock): it lists and stats moto's package directory (`list_of_moto_modules`,
    a generator, for `host in ...`), then tries every service's URL regex. The
    directory does not change while the server runs, so it is listed once; and
    the answer for a host is kept, except a None for an `amazonaws.com` host,
    where moto prints a warning each time (it is asked again, as before)."""
    from moto import backends as moto_backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(moto_backends.list_of_moto_modules())

    def list_of_moto_modules() -> Any:
        return iter(modules)

    moto_backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]

    orig_for_host = DomainDispatcherApplication.get_backend_for_host
    memo: dict[tuple[int, str], tuple[Any, Any]] = {}  # (id(app), host) -> (app, backend)

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if type(host) is not str:
            return orig_for_host(self, host)
        hit = memo.get((id(self), host))
        if hit is not None and hit[0] is self:
            return hit[1]
        backend = orig_for_host(self, host)
        if (backend is not None or "amazonaws.com" not in host) and len(memo) < 10_000:
            memo[(id(self), host)] = (self, backend)
        return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


# ---------------------------------------------------------------------------
# Locating moto model objects
# ---------------------------------------------------------------------------


def _created_regions(backend_dict: Any, account: str) -> list[tuple[str, Any]]:
    if not dict.__contains__(backend_dict, account):
        return []
    asb = dict.__getitem__(backend_dict, account)
    return list(dict.items(asb))


def _rds_name(ident: str) -> tuple[str | None, str | None, str]:
    """'arn:aws:rds:REGION:ACCT:snapshot:NAME' -> (region, account, name)."""
    m = re.match(r"^arn:aws[\w-]*:rds:([^:]+):(\d+):(?:snapshot|cluster-snapshot):(.+)$", ident)
    if m:
        return m.group(1), m.group(2), m.group(3)
    return None, None, ident


LIVE_KINDS = ("instance", "db-instance", "db-cluster")


def age_live(account: str, region: str | None, ident: str, kind: str, when: dt.datetime) -> str | None:
    """Sets the creation time of an EC2 instance, DB instance or DB cluster;
    returns its region, or None when there is no such resource."""
    bd = ec2_backends if kind == "instance" else rds_backends
    for reg, backend in _created_regions(bd, account):
        if region and reg != region:
            continue
        if kind == "instance":
            obj = backend.get_instance_by_id(ident) if hasattr(backend, "get_instance_by_id") else None
            if obj is not None:
                obj.launch_time = when
                return reg
        elif kind == "db-instance":
            obj = backend.databases.get(ident)
            if obj is not None:
                obj.created = when
                obj.instance_create_time = when
                return reg
        else:
            obj = backend.clusters.get(ident)
            if obj is not None:
                obj.created = when
                obj.cluster_create_time = when
                return reg
    return None


def find_object(account: str, region: str | None, ident: str, kind: str | None = None) -> tuple[str, str, str, Any] | None:
    """Return (kind, region, canonical id, obj) or None."""
    r2, a2, name = _rds_name(ident)
    if a2:
        account = a2
    if r2:
        region = r2
    kinds = [kind] if kind else None
    if kinds is None:
        if name.startswith("snap-"):
            kinds = ["snapshot"]
        elif name.startswith("ami-"):
            kinds = ["image"]
        else:
            kinds = ["db-snapshot", "db-cluster-snapshot"]
    for k in kinds:
        bd = ec2_backends if k in ("snapshot", "image") else rds_backends
        for reg, backend in _created_regions(bd, account):
            if region and reg != region:
                continue
            if k == "snapshot":
                obj = backend.snapshots.get(name)
            elif k == "image":
                obj = backend.amis.get(name)
            elif k == "db-snapshot":
                obj = backend.database_snapshots.get(name)
            else:
                obj = backend.cluster_snapshots.get(name)
            if obj is not None:
                canon = _obj_kind_ident(obj)
                return (k, reg, canon[3] if canon else name, obj)
    return None


def all_objects_with_model(account: str | None, region: str | None) -> list[tuple[str, str, str, Any]]:
    """(kind, account, region, model object) of every snapshot, AMI (but the
    default one), DB snapshot and cluster snapshot, in every account moto has."""
    out: list[tuple[str, str, str, Any]] = []
    for bd, kinds in ((ec2_backends, ("snapshot", "image")), (rds_backends, ("db-snapshot", "db-cluster-snapshot"))):
        for acct in list(dict.keys(bd)):
            if account and acct != account:
                continue
            for reg, backend in _created_regions(bd, acct):
                if region and reg != region:
                    continue
                for k in kinds:
                    if k == "snapshot":
                        objs = backend.snapshots.values()
                    elif k == "image":
                        objs = [a for a in backend.amis.values() if a.id not in DEFAULT_AMI_IDS]
                    elif k == "db-snapshot":
                        objs = backend.database_snapshots.values()
                    else:
                        objs = backend.cluster_snapshots.values()
                    out.extend((k, acct, reg, o) for o in list(objs))
    return out


def all_objects(account: str | None, region: str | None) -> list[tuple[str, str, str, str]]:
    out = []
    for k, a, r, o in all_objects_with_model(account, region):
        ident = _obj_kind_ident(o)
        if ident is not None:
            out.append((k, a, r, ident[3]))
    return out


def is_held(kind: str, account: str, region: str, ident: str) -> bool:
    _r, _a, name = _rds_name(ident)
    if kind.startswith("db-"):
        name = name.lower()
    return (kind, account, region, name) in STATE.held


# ---------------------------------------------------------------------------
# Request parsing and error bodies
# ---------------------------------------------------------------------------

CRED_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")


class Req:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.path = environ.get("PATH_INFO", "") or ""
        self.body = read_body(environ)
        self.access_key: str | None = None
        self.region = ""
        self.service = ""
        m = CRED_RE.search(environ.get("HTTP_AUTHORIZATION", "") or "")
        if m:
            self.access_key, _d, self.region, self.service = m.group(1), m.group(2), m.group(3), m.group(4).lower()
        self.params: dict[str, str] = {}
        ctype = environ.get("CONTENT_TYPE", "") or ""
        try:
            if self.body and ("x-www-form-urlencoded" in ctype or not ctype):
                for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items():
                    self.params[k] = v[0]
            for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items():
                self.params.setdefault(k, v[0])
        except Exception:
            pass
        self.action = self.params.get("Action", "")
        self.header_account = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
        # principal resolution
        self.principal_arn: str | None = None
        self.key_account: str | None = None
        self.key_is_temp = False
        if self.access_key:
            with STATE.lock:  # moto's IAM/STS state may be changing in another thread
                self._resolve_key(self.access_key)
        self.account = self.header_account or self.key_account or DEFAULT_ACCOUNT

    def _resolve_key(self, key: str) -> None:
        for account_id, per_account in list(iam_backends.items()):
            iam = dict.get(per_account, PARTITION)
            if iam is None or key not in iam.access_keys:
                continue
            self.key_account = account_id
            ak = iam.access_keys[key]
            if ak.user_name:
                try:
                    self.principal_arn = iam.get_user(ak.user_name).arn
                except Exception:
                    self.principal_arn = f"arn:aws:iam::{account_id}:user/{ak.user_name}"
            else:
                self.key_is_temp = True
                sts = dict.get(dict.get(sts_backends, account_id, {}) or {}, PARTITION)
                role = sts.get_assumed_role_from_access_key(key) if sts else None
                if role is not None:
                    self.principal_arn = role.arn
            return


def read_body(environ: dict[str, Any]) -> bytes:
    """Buffer the body and give moto an identical copy."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    body = b""
    if stream is not None:
        if length > 0:
            body = stream.read(length)
        elif environ.get("wsgi.input_terminated"):
            body = stream.read()
    environ["wsgi.input"] = io.BytesIO(body)
    if body or environ.get("CONTENT_LENGTH"):
        environ["CONTENT_LENGTH"] = str(len(body))
    return body


def error_response(service: str, code: str, message: str, status: int) -> tuple[int, bytes]:
    rid = str(uuid.uuid4())
    if service == "ec2":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        )
    else:
        ns = NAMESPACES.get(service)
        xmlns = f' xmlns="{ns}"' if ns else ""
        etype = "Receiver" if status >= 500 else "Sender"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse{xmlns}><Error><Type>{etype}</Type><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>"
        )
    return status, xml.encode("utf-8")


STATUS_TEXT = {
    200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    409: "Conflict", 412: "Precondition Failed", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


def status_line(status: int) -> str:
    return f"{status} {STATUS_TEXT.get(status, 'Status')}"


def send(start_response: Any, status: int, body: bytes, ctype: str = "text/xml") -> list[bytes]:
    headers = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
    m = re.search(rb"<Request(?:Id|ID)>([^<]+)</Request(?:Id|ID)>", body)
    if m:
        headers.append(("x-amzn-RequestId", m.group(1).decode()))
    start_response(status_line(status), headers)
    return [body]


# ---------------------------------------------------------------------------
# AssumeRole trust evaluation
# ---------------------------------------------------------------------------


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def _load_policy(doc: Any) -> dict[str, Any]:
    if isinstance(doc, dict):
        return doc
    try:
        return json.loads(doc)
    except Exception:
        from urllib.parse import unquote

        return json.loads(unquote(doc))


def _action_matches(actions: Any) -> bool:
    for a in _as_list(actions):
        a = str(a).lower()
        if a in ("sts:assumerole", "sts:*", "*"):
            return True
    return False


def principal_matches(entry: str, caller_arn: str, caller_account: str) -> bool:
    entry = entry.strip()
    if entry == "*":
        return True
    if re.fullmatch(r"\d{12}", entry):
        return entry == caller_account
    m = re.fullmatch(r"arn:aws[\w-]*:iam::(\d{12}):root", entry)
    if m:
        return m.group(1) == caller_account
    m = re.fullmatch(r"arn:aws[\w-]*:iam::(\d{12}):role/(?:.*/)?([^/]+)", entry)
    if m:
        acct, name = m.group(1), m.group(2)
        cm = re.fullmatch(r"arn:aws[\w-]*:sts::(\d{12}):assumed-role/([^/]+)/.+", caller_arn)
        return bool(cm and cm.group(1) == acct and cm.group(2) == name)
    m = re.fullmatch(r"arn:aws[\w-]*:iam::(\d{12}):user/(?:.*/)?([^/]+)", entry)
    if m:
        cm = re.fullmatch(r"arn:aws[\w-]*:iam::(\d{12}):user/(?:.*/)?([^/]+)", caller_arn)
        return bool(cm and cm.group(1) == m.group(1) and cm.group(2) == m.group(2))
    return entry == caller_arn


def _statement_principal_ok(stmt: dict[str, Any], caller_arn: str, caller_account: str) -> bool:
    principal = stmt.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return any(principal_matches(str(p), caller_arn, caller_account) for p in _as_list(principal.get("AWS")))


def _conditions_ok(stmt: dict[str, Any], external_id: str | None) -> bool:
    cond = stmt.get("Condition") or {}
    for op, kv in cond.items():
        if not isinstance(kv, dict):
            continue
        for key, values in kv.items():
            if key.lower() != "sts:externalid":
                continue  # other condition keys are not evaluated
            vals = [str(v) for v in _as_list(values)]
            if op in ("StringEquals", "StringEqualsIgnoreCase"):
                if external_id is None:
                    return False
                if op == "StringEquals" and external_id not in vals:
                    return False
                if op == "StringEqualsIgnoreCase" and external_id.lower() not in [v.lower() for v in vals]:
                    return False
            elif op == "StringLike":
                import fnmatch

                if external_id is None or not any(fnmatch.fnmatchcase(external_id, v) for v in vals):
                    return False
    return True


def trust_allows(role: Any, caller_arn: str, caller_account: str, external_id: str | None) -> bool:
    try:
        policy = _load_policy(role.assume_role_policy_document)
    except Exception:
        return False
    allowed = False
    for stmt in _as_list(policy.get("Statement")):
        if not isinstance(stmt, dict) or not _action_matches(stmt.get("Action")):
            continue
        if not _statement_principal_ok(stmt, caller_arn, caller_account):
            continue
        if not _conditions_ok(stmt, external_id):
            continue
        if stmt.get("Effect") == "Deny":
            return False
        if stmt.get("Effect") == "Allow":
            allowed = True
    return allowed


def check_assume_role(req: Req) -> tuple[int, str, str] | None:
    """None = let moto handle it; else (status, code, message)."""
    p = req.params
    raw = p.get("DurationSeconds")
    duration = None
    if raw is not None:
        try:
            duration = int(raw)
        except ValueError:
            return 400, "ValidationError", f"Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must be an integer"
        if duration < 900:
            return 400, "ValidationError", f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        if duration > 43200:
            return 400, "ValidationError", f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
    if not req.access_key or not req.principal_arn:
        return None  # anonymous / unknown key: moto decides
    role_arn = p.get("RoleArn", "")
    denied = (403, "AccessDenied", f"User: {req.principal_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
    m = re.fullmatch(r"arn:aws[\w-]*:iam::(\d{12}):role/.+", role_arn)
    if not m:
        return denied
    iam_map = dict.get(iam_backends, m.group(1))
    iam = dict.get(iam_map, PARTITION) if iam_map is not None else None
    role = None
    if iam is not None:
        try:
            role = iam.get_role_by_arn(role_arn)
        except Exception:
            role = None
    if role is None:
        return denied
    caller_account = req.key_account or req.account
    if not trust_allows(role, req.principal_arn, caller_account, p.get("ExternalId")):
        return denied
    if duration is not None:
        if ":assumed-role/" in req.principal_arn and duration > 3600:
            return 400, "ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
        try:
            max_session = int(role.max_session_duration or 3600)
        except (TypeError, ValueError):
            max_session = 3600
        if duration > max_session:
            return 400, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    return None


# ---------------------------------------------------------------------------
# Pending-state enforcement on operations that need a completed source
# ---------------------------------------------------------------------------


def check_pending_source(req: Req) -> tuple[int, str, str] | None:
    if not STATE.enforce_pending or not STATE.held:
        return None
    p, a, acct, reg = req.params, req.action, req.account, req.region
    checks: list[tuple[str, str, str, str, str]] = []  # kind, region, id, code, message
    if a == "CopySnapshot" and p.get("SourceSnapshotId"):
        sid = p["SourceSnapshotId"]
        checks.append(("snapshot", p.get("SourceRegion") or reg, sid, "IncorrectState", f"Snapshot '{sid}' is in invalid state - pending"))
    elif a == "CreateVolume" and p.get("SnapshotId"):
        sid = p["SnapshotId"]
        checks.append(("snapshot", reg, sid, "IncorrectState", f"Snapshot '{sid}' is in invalid state - pending"))
    elif a == "CopyImage" and p.get("SourceImageId"):
        iid = p["SourceImageId"]
        checks.append(("image", p.get("SourceRegion") or reg, iid, "IncorrectState", f"Image '{iid}' is in invalid state - pending"))
    elif a in ("CopyDBSnapshot", "DeleteDBSnapshot", "RestoreDBInstanceFromDBSnapshot"):
        src = p.get("SourceDBSnapshotIdentifier") or p.get("DBSnapshotIdentifier") or ""
        r2, a2, _n = _rds_name(src)
        acct = a2 or acct
        checks.append(("db-snapshot", r2 or reg, src, "InvalidDBSnapshotState", f"DB snapshot {src} is not in available state (it is creating)"))
    elif a in ("CopyDBClusterSnapshot", "DeleteDBClusterSnapshot", "RestoreDBClusterFromSnapshot"):
        src = p.get("SourceDBClusterSnapshotIdentifier") or p.get("DBClusterSnapshotIdentifier") or p.get("SnapshotIdentifier") or ""
        r2, a2, _n = _rds_name(src)
        acct = a2 or acct
        checks.append(("db-cluster-snapshot", r2 or reg, src, "InvalidDBClusterSnapshotStateFault", f"DB cluster snapshot {src} is not in available state (it is creating)"))
    for kind, region, ident, code, msg in checks:
        if is_held(kind, acct, region, ident):
            return 400, code, msg
    return None


# ---------------------------------------------------------------------------
# TagSpecifications moto ignores (CopyImage, RegisterImage)
# ---------------------------------------------------------------------------


def tag_specs(params: dict[str, str]) -> dict[str, dict[str, str]]:
    """The TagSpecifications of a query request: resource type -> {key: value}."""
    specs: dict[str, dict[str, str]] = {}
    types: dict[str, str] = {}
    keys: dict[tuple[str, str], str] = {}
    vals: dict[tuple[str, str], str] = {}
    for k, v in params.items():
        m = re.fullmatch(r"TagSpecification\.(\d+)\.ResourceType", k)
        if m:
            types[m.group(1)] = v
            continue
        m = re.fullmatch(r"TagSpecification\.(\d+)\.Tag\.(\d+)\.(Key|Value)", k)
        if m:
            (keys if m.group(3) == "Key" else vals)[(m.group(1), m.group(2))] = v
    for (n, i), key in keys.items():
        specs.setdefault(types.get(n, ""), {})[key] = vals.get((n, i), "")
    return specs


def tag_copied_or_registered_image(req: Req, response: bytes) -> None:
    """moto 5.2.1 ignores the TagSpecifications of CopyImage and RegisterImage;
    AWS applies them (CopyImage: `image` to the new AMI, `snapshot` to its new
    snapshots; RegisterImage: `image`). Applied here after moto's answer."""
    specs = tag_specs(req.params)
    m = re.search(rb"<imageId>([^<]+)</imageId>", response, re.IGNORECASE)
    if not m or not specs:
        return
    backend = ec2_backends[req.account][req.region]
    ami = backend.amis.get(m.group(1).decode())
    if ami is None:
        return
    if specs.get("image"):
        backend.create_tags([ami.id], specs["image"])
    snap = getattr(ami, "ebs_snapshot", None)
    if req.action == "CopyImage" and specs.get("snapshot") and snap is not None:
        backend.create_tags([snap.id], specs["snapshot"])


# ---------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------


def key_expired(rec: dict[str, Any], layer_now: dt.datetime) -> bool:
    """A temporary key is dead once the layer clock passes its expiry, or once
    /_harness/revoke revoked it. The flag, not only the expiry moved to "now",
    keeps a revoked key dead when a test later sets the layer clock back."""
    return bool(rec.get("revoked")) or layer_now >= rec["expiration"]


def match_fault(req: Req) -> dict[str, Any] | None:
    with STATE.lock:
        for rule in STATE.faults:
            if rule["action"] not in ("*", req.action):
                continue
            if rule.get("service") and rule["service"] != req.service:
                continue
            if rule.get("account") and rule["account"] != req.account:
                continue
            if rule.get("region") and rule["region"] != req.region:
                continue
            if rule.get("target_account"):
                m = re.search(r":iam::(\d{12}):", req.params.get("RoleArn", ""))
                if not m or m.group(1) != rule["target_account"]:
                    continue
            if rule.get("count") is not None and rule["injected"] >= rule["count"]:
                continue
            rule["matched"] += 1
            if STATE.rng.random() >= rule["probability"]:
                continue
            rule["injected"] += 1
            return dict(rule)
    return None


def unfire_fault(rule: dict[str, Any]) -> None:
    """An "after" rule matched, but a layer step refused the request before moto
    did any work, so that refusal is the answer. The rule's error was not sent:
    give its injection back, so that "count" still counts errors sent. ("matched"
    and the RNG draw stay: the draw sequence must not depend on later steps.)"""
    with STATE.lock:
        for r in STATE.faults:
            if r["id"] == rule["id"] and r["injected"] > 0:
                r["injected"] -= 1


# ---------------------------------------------------------------------------
# The WSGI layer
# ---------------------------------------------------------------------------

EXPIRATION_RE = re.compile(rb"<Expiration>([^<]*)</Expiration>")
ACCESS_KEY_RE = re.compile(rb"<AccessKeyId>([^<]*)</AccessKeyId>")
SECRET_RE = re.compile(rb"<SecretAccessKey>([^<]*)</SecretAccessKey>")
TOKEN_RE = re.compile(rb"<SessionToken>([^<]*)</SessionToken>")


class Layer:
    def __init__(self, moto_app: Any) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "") or ""
        if path.startswith("/_harness"):
            return control(environ, start_response)
        # 0. fixed latency, outside every lock, so that calls overlap as on AWS
        latency = STATE.latency_ms
        if latency > 0:
            time.sleep(latency / 1000.0)
        req = Req(environ)
        svc, action = req.service, req.action

        # 1. expired temporary credentials
        if req.access_key and req.key_is_temp:
            with STATE.lock:
                rec = STATE.temp_keys.get(req.access_key)
                expired = rec is not None and key_expired(rec, STATE.layer_now())
            if expired:
                STATE.count(req.account, req.region, svc, action, "expired")
                status, body = error_response(svc, "ExpiredToken", DEFAULT_MESSAGES["ExpiredToken"], 400)
                return send(start_response, status, body)

        # 1b. EC2 throttling (token buckets per account x region x bucket)
        if STATE.token_buckets and svc == "ec2" and action:
            if not take_token(req.account, req.region, ec2_bucket(action, req.params)):
                STATE.count(req.account, req.region, svc, action, "throttled")
                status, body = error_response(svc, "RequestLimitExceeded", DEFAULT_MESSAGES["RequestLimitExceeded"], 503)
                return send(start_response, status, body)

        # 2. fault injection
        after_rule = None
        if action:
            rule = match_fault(req)
            if rule is not None and rule["after"]:
                # An ambiguous failure (AWS's 5xx after the work was done): the
                # request goes on through steps 3-5 exactly as an ordinary one
                # (trust, pending state, tag conditions, holds, CreateImage tags),
                # and only moto's answer is replaced with the rule's error below.
                after_rule = rule
            elif rule is not None:
                STATE.count(req.account, req.region, svc, action, "injected")
                status, body = error_response(svc, rule["code"], rule["message"], rule["status"])
                return send(start_response, status, body)

        # 3. AssumeRole trust / duration enforcement
        if svc == "sts" and action == "AssumeRole":
            verdict = check_assume_role(req)
            if verdict is not None:
                status, code, msg = verdict
                if after_rule is not None:
                    unfire_fault(after_rule)  # nothing was done: the refusal is the answer
                STATE.count(req.account, req.region, svc, action, "denied")
                status, body = error_response("sts", code, msg, status)
                return send(start_response, status, body)

        # 4. operations that need a completed (not held) source
        verdict = check_pending_source(req) if action else None
        if verdict is not None:
            status, code, msg = verdict
            if after_rule is not None:
                unfire_fault(after_rule)  # nothing was done: the refusal is the answer
            STATE.count(req.account, req.region, svc, action, "denied")
            status, body = error_response(svc, code, msg, status)
            return send(start_response, status, body)

        # 4b. EBS Snapshot Lock (moto has none): lock calls, and deletes of locked snapshots
        answer = locks.handle(req) if action else None
        if answer is not None:
            status, body = answer
            STATE.count(req.account, req.region, svc, action, "ok" if status < 400 else "error")
            return send(start_response, status, body)

        # 5. moto
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            captured["headers"] = headers
            return lambda data: None

        t_wait = time.perf_counter()
        with STATE.lock:
            t_in = time.perf_counter()
            if STATE.lingering:
                expire_lingering()
            reapply_holds()
            result = self.moto_app(environ, capture)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            if svc == "ec2" and action in ("CopyImage", "RegisterImage") and captured["status"].startswith("200"):
                tag_copied_or_registered_image(req, body)
            reapply_holds()
            t_out = time.perf_counter()
        STATE.time_moto(action or f"{req.method} {path}", t_in - t_wait, t_out - t_in)
        status_code = int(captured["status"].split()[0])
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]

        if svc == "sts" and action == "AssumeRole" and status_code == 200:
            # also under an "after" rule: the session exists, the caller just never
            # saw its keys (they are listed in /_harness/credentials)
            body = self.track_assume_role(req, body)

        if after_rule is not None:
            # moto did the work (whatever it answered, even an error); the caller
            # gets the rule's error instead and cannot tell whether it happened.
            STATE.count(req.account, req.region, svc, action, "injected")
            status, body = error_response(svc, after_rule["code"], after_rule["message"], after_rule["status"])
            return send(start_response, status, body)

        headers.append(("Content-Length", str(len(body))))
        STATE.count(req.account, req.region, svc, action or f"{req.method} {path}", "ok" if status_code < 400 else "error")
        start_response(captured["status"], headers)
        return [body]

    def track_assume_role(self, req: Req, body: bytes) -> bytes:
        km = ACCESS_KEY_RE.search(body)
        em = EXPIRATION_RE.search(body)
        if not km:
            return body
        key = km.group(1).decode()
        # Kept so that tests can grep logs and output for them (they must never appear).
        sm = SECRET_RE.search(body)
        tm = TOKEN_RE.search(body)
        with STATE.lock:
            layer_now = STATE.layer_now()
            lifetime = STATE.credential_lifetime
            if lifetime is None:
                try:
                    lifetime = float(req.params.get("DurationSeconds") or 3600)
                except ValueError:
                    lifetime = 3600.0
            else:
                # response shows real wall-clock time, so SDKs see a sane expiry
                new = iso_z(real_now() + dt.timedelta(seconds=lifetime)).encode()
                if em:
                    body = body[: em.start(1)] + new + body[em.end(1):]
            STATE.temp_keys[key] = {
                "access_key_id": key,
                "account": (re.search(r":iam::(\d{12}):", req.params.get("RoleArn", "")) or [None, ""])[1],
                "role_arn": req.params.get("RoleArn", ""),
                "issued_to": req.principal_arn,
                "lifetime_seconds": lifetime,
                "expiration": layer_now + dt.timedelta(seconds=lifetime),
                "revoked": False,
                "secret_access_key": sm.group(1).decode() if sm else None,
                "session_token": tm.group(1).decode() if tm else None,
            }
        return body


# ---------------------------------------------------------------------------
# Control API (/_harness/...)
# ---------------------------------------------------------------------------


class BadRequest(Exception):
    pass


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    raw = read_body(environ)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}")
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def _fault_view(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r.get(k) for k in ("id", "action", "service", "account", "region", "target_account", "code", "message", "status", "probability", "count", "after", "matched", "injected")}


def _held_view() -> list[dict[str, Any]]:
    return [
        {"kind": k, "account": a, "region": r, "id": i, "hold_id": rec["hold_id"], "since": rec["since"]}
        for (k, a, r, i), rec in sorted(STATE.held.items())
    ]


def _config_view() -> dict[str, Any]:
    return {
        "credential_lifetime_seconds": STATE.credential_lifetime,
        "seed": STATE.seed,
        "clock_offset_seconds": STATE.clock_offset,
        "layer_now": iso_z(STATE.layer_now()),
        "real_now": iso_z(real_now()),
        "enforce_pending_state": STATE.enforce_pending,
        "token_buckets": STATE.token_buckets,
        "bucket_scale": STATE.bucket_scale,
        "latency_ms": STATE.latency_ms,
        "linger_deleted_seconds": STATE.linger_seconds,
        "snapshot_answer_cache": STATE.snapshot_answer_cache,
        "instance_answer_cache": STATE.instance_answer_cache,
    }


def control(environ: dict[str, Any], start_response: Any) -> Any:
    method = environ.get("REQUEST_METHOD", "GET")
    path = (environ.get("PATH_INFO", "") or "").rstrip("/")
    route = path[len("/_harness"):] or "/"
    try:
        with STATE.lock:
            status, payload = dispatch(method, route, environ)
    except BadRequest as exc:
        status, payload = 400, {"error": str(exc)}
    except Exception as exc:  # pragma: no cover - report, don't crash
        status, payload = 500, {"error": repr(exc)}
    body = json.dumps(payload, indent=1, sort_keys=True).encode()
    return send(start_response, status, body, "application/json")


def dispatch(method: str, route: str, environ: dict[str, Any]) -> tuple[int, Any]:
    if route == "/health" and method == "GET":
        return 200, {
            "status": "ok",
            "pid": os.getpid(),
            "port": SERVER_PORT,
            "moto_version": moto.__version__,
            "uptime_seconds": round(time.time() - STATE.started, 3),
        }

    if route == "/config":
        if method == "POST":
            body = _json_body(environ)
            if "credential_lifetime_seconds" in body:
                v = body["credential_lifetime_seconds"]
                if v is not None and (not isinstance(v, (int, float)) or v <= 0):
                    raise BadRequest("credential_lifetime_seconds must be a positive number or null")
                STATE.credential_lifetime = None if v is None else float(v)
            if "seed" in body:
                STATE.seed = int(body["seed"])
                STATE.rng = random.Random(STATE.seed)
            if "advance_clock_seconds" in body:
                STATE.clock_offset += float(body["advance_clock_seconds"])
            if "clock_offset_seconds" in body:
                STATE.clock_offset = float(body["clock_offset_seconds"])
            if "enforce_pending_state" in body:
                STATE.enforce_pending = bool(body["enforce_pending_state"])
            if "bucket_scale" in body:
                v = body["bucket_scale"]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                    raise BadRequest("bucket_scale must be a positive number")
                STATE.bucket_scale = float(v)
            if "latency_ms" in body:
                v = body["latency_ms"]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise BadRequest("latency_ms must be a number >= 0")
                STATE.latency_ms = float(v)
            if "linger_deleted_seconds" in body:
                v = body["linger_deleted_seconds"]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise BadRequest("linger_deleted_seconds must be a number >= 0")
                STATE.linger_seconds = float(v)
            if "token_buckets" in body:
                if not isinstance(body["token_buckets"], bool):
                    raise BadRequest("token_buckets must be true or false")
                # switching on (or off) starts from full buckets
                STATE.token_buckets = body["token_buckets"]
                with STATE.bucket_lock:
                    STATE.buckets.clear()
            if "snapshot_answer_cache" in body:
                if not isinstance(body["snapshot_answer_cache"], bool):
                    raise BadRequest("snapshot_answer_cache must be true or false")
                STATE.snapshot_answer_cache = body["snapshot_answer_cache"]
            if "instance_answer_cache" in body:
                if not isinstance(body["instance_answer_cache"], bool):
                    raise BadRequest("instance_answer_cache must be true or false")
                STATE.instance_answer_cache = body["instance_answer_cache"]
            if body.get("reset_buckets"):
                with STATE.bucket_lock:
                    STATE.buckets.clear()
        elif method != "GET":
            return 405, {"error": "GET or POST"}
        return 200, _config_view()

    if route == "/faults":
        if method == "GET":
            return 200, {"faults": [_fault_view(r) for r in STATE.faults]}
        if method == "DELETE":
            n = len(STATE.faults)
            STATE.faults.clear()
            return 200, {"removed": n}
        if method == "POST":
            body = _json_body(environ)
            rules = body.get("rules") if "rules" in body else [body]
            out = []
            for b in rules:
                if not b.get("code"):
                    raise BadRequest("fault rule needs 'code'")
                prob = float(b.get("probability", 1.0))
                if not 0.0 <= prob <= 1.0:
                    raise BadRequest("probability must be within 0..1")
                after = b.get("after", False)
                if not isinstance(after, bool):
                    raise BadRequest("after must be true or false")
                code = str(b["code"])
                rule = {
                    "id": STATE.next_fault_id,
                    "action": b.get("action") or "*",
                    "service": b.get("service"),
                    "account": b.get("account"),
                    "region": b.get("region"),
                    "target_account": b.get("target_account"),
                    "code": code,
                    "message": b.get("message") or DEFAULT_MESSAGES.get(code, f"{code} (injected by harness)"),
                    "status": int(b.get("status") or DEFAULT_STATUS.get(code, 400)),
                    "probability": prob,
                    "count": None if b.get("count") is None else int(b["count"]),
                    "after": after,  # true: moto does the work first (ambiguous failure)
                    "matched": 0,
                    "injected": 0,
                }
                STATE.next_fault_id += 1
                STATE.faults.append(rule)
                out.append(_fault_view(rule))
            return 200, {"faults": out} if "rules" in body else out[0]
        return 405, {"error": "GET, POST or DELETE"}
    m = re.fullmatch(r"/faults/(\d+)", route)
    if m and method == "DELETE":
        before = len(STATE.faults)
        STATE.faults[:] = [r for r in STATE.faults if r["id"] != int(m.group(1))]
        return 200, {"removed": before - len(STATE.faults)}

    if route == "/hold":
        if method == "GET":
            return 200, {"holds": list(STATE.holds), "held": _held_view()}
        if method == "DELETE":
            n = len(STATE.holds)
            STATE.holds.clear()
            return 200, {"removed": n, "held": _held_view()}
        if method == "POST":
            body = _json_body(environ)
            account = body.get("account")
            if not account:
                raise BadRequest("hold needs 'account'")
            kinds = body.get("kinds", list(KINDS))
            bad = [k for k in kinds if k not in KINDS]
            if bad:
                raise BadRequest(f"unknown kinds {bad}; allowed {list(KINDS)}")
            rule = {"id": STATE.next_hold_id, "account": str(account), "region": body.get("region"), "kinds": list(kinds)}
            STATE.next_hold_id += 1
            # ids only (no "kinds") = hold just those resources, no rule for new ones
            rule_added = "kinds" in body or not body.get("ids")
            if rule_added:
                STATE.holds.append(rule)
            held_now, missing = [], []
            for ident in body.get("ids") or []:
                found = find_object(str(account), body.get("region"), ident)
                if found is None:
                    missing.append(ident)
                    continue
                kind, reg, canon, obj = found
                hold_object(obj, rule["id"])
                held_now.append({"kind": kind, "region": reg, "id": canon})
            status = 404 if missing else 200
            return status, {"hold": rule if rule_added else None, "held": held_now, "missing": missing}
        return 405, {"error": "GET, POST or DELETE"}

    if route == "/release" and method == "POST":
        body = _json_body(environ)
        ids = body.get("ids")
        release_all = bool(body.get("all")) or ids is None
        # "fail": true ends them in AWS's failed state instead of completed
        settle = apply_failed if body.get("fail") else apply_complete
        released = []
        for ident_t, rec in list(STATE.held.items()):
            if ident_t not in STATE.held:
                continue  # released above together with its AMI
            kind, account, region, ident = ident_t
            if not release_all:
                wanted = False
                for w in ids:
                    _r, _a, name = _rds_name(w)
                    if name == ident or name.lower() == ident.lower():
                        wanted = True
                if not wanted:
                    continue
                if body.get("account") and body["account"] != account:
                    continue
            settle(kind, rec["obj"])
            STATE.held.pop(ident_t, None)
            released.append({"kind": kind, "account": account, "region": region, "id": ident})
            if kind == "image":  # the AMI's (placeholder) snapshot completes with it
                snap = getattr(rec["obj"], "ebs_snapshot", None)
                skey = ("snapshot", account, region, getattr(snap, "id", ""))
                if skey in STATE.held:
                    settle("snapshot", STATE.held.pop(skey)["obj"])
                    released.append({"kind": "snapshot", "account": account, "region": region, "id": skey[3]})
        rules_removed = 0
        if release_all and not body.get("keep_rules", False):
            rules_removed = len(STATE.holds)
            STATE.holds.clear()
        return 200, {"released": released, "rules_removed": rules_removed}

    if route == "/age" and method == "POST":
        body = _json_body(environ)
        if body.get("all"):
            # every snapshot, AMI, DB snapshot and cluster snapshot that exists now
            # (optionally of one account / region): "age the first generation"
            if body.get("age_seconds") is None and not body.get("time"):
                raise BadRequest("age needs 'age_seconds' or 'time'")
            items = [
                {"account": a, "region": r, "id": i, "age_seconds": body.get("age_seconds"), "time": body.get("time")}
                for (_k, a, r, i) in all_objects(body.get("account"), body.get("region"))
            ]
            body = {"items": items}
        items = body.get("items") if "items" in body else [body]
        out = []
        for it in items:
            account = it.get("account")
            ident = it.get("id")
            if not account or not ident:
                raise BadRequest("age needs 'account' and 'id'")
            if it.get("time"):
                when = parse_time(str(it["time"]))
            elif it.get("age_seconds") is not None:
                when = real_now() - dt.timedelta(seconds=float(it["age_seconds"]))
            else:
                raise BadRequest("age needs 'age_seconds' or 'time'")
            if it.get("kind") in LIVE_KINDS:
                # moto dates an instance's LaunchTime and a database's create
                # time at its creation and cannot change them: age them here
                # (the leftovers of a killed drill, say).
                aged = age_live(str(account), it.get("region"), str(ident), str(it["kind"]), when)
                if aged is None:
                    return 404, {"error": f"{it['kind']} {ident} not found in account {account}"}
                out.append({"kind": it["kind"], "account": account, "region": aged, "id": ident, "time": iso_z(when)})
                continue
            found = find_object(str(account), it.get("region"), str(ident))
            if found is None:
                return 404, {"error": f"{ident} not found in account {account}" + (f" region {it.get('region')}" if it.get("region") else "")}
            kind, reg, canon, obj = found
            if kind == "snapshot":
                obj.start_time = when
            elif kind == "image":
                obj.creation_date = when
                snap = getattr(obj, "ebs_snapshot", None)
                if snap is not None:  # its placeholder snapshot is as old as the AMI
                    snap.start_time = when
            elif kind == "db-snapshot":
                if getattr(obj, "original_snapshot_create_time", None) == obj.created:
                    obj.original_snapshot_create_time = when
                obj.created = when
            else:
                obj.created = when
            out.append({"kind": kind, "account": account, "region": reg, "id": canon, "time": iso_z(when)})
        return 200, {"aged": out} if "items" in body else out[0]

    if route == "/calls":
        if method == "GET":
            with STATE.stats_lock:
                calls = dict(STATE.calls)
            rows = [
                {"account": a, "region": r, "service": s, "action": ac, "outcome": o, "count": n}
                for (a, r, s, ac, o), n in sorted(calls.items())
            ]
            return 200, {"calls": rows, "total": sum(calls.values())}
        if method == "DELETE":
            with STATE.stats_lock:
                n = sum(STATE.calls.values())
                STATE.calls.clear()
                STATE.timing = new_timing()
            return 200, {"cleared": n}
        return 405, {"error": "GET or DELETE"}

    if route == "/buckets":
        if method == "GET":
            return 200, {"token_buckets": STATE.token_buckets, "bucket_scale": STATE.bucket_scale, "buckets": buckets_view()}
        if method == "DELETE":
            with STATE.bucket_lock:
                n = len(STATE.buckets)
                STATE.buckets.clear()
            return 200, {"reset": n}
        return 405, {"error": "GET or DELETE"}

    if route == "/timing":
        if method == "GET":
            with STATE.stats_lock:
                t = json.loads(json.dumps(STATE.timing))
            t["wall_seconds"] = round(time.time() - t.pop("since"), 3)
            t["moto_seconds"] = round(t["moto_seconds"], 3)
            t["lock_wait_seconds"] = round(t["lock_wait_seconds"], 3)
            t["moto_busy_fraction"] = round(t["moto_seconds"] / t["wall_seconds"], 3) if t["wall_seconds"] > 0 else 0.0
            for row in t["by_action"].values():
                row["moto_seconds"] = round(row["moto_seconds"], 4)
                row["max_moto_seconds"] = round(row["max_moto_seconds"], 4)
            return 200, t
        if method == "DELETE":
            with STATE.stats_lock:
                STATE.timing = new_timing()
            return 200, {"reset": True}
        return 405, {"error": "GET or DELETE"}

    if route == "/inventory" and method == "GET":
        rows: dict[tuple[str, str], dict[str, Any]] = {}

        def row(a: str, r: str) -> dict[str, Any]:
            return rows.setdefault((a, r), {"account": a, "region": r, "snapshots": 0, "snapshots_completed": 0,
                                            "images": 0, "db_snapshots_manual": 0, "db_cluster_snapshots_manual": 0})

        for kind, a, r, obj in all_objects_with_model(None, None):
            x = row(a, r)
            if kind == "snapshot":
                x["snapshots"] += 1
                x["snapshots_completed"] += getattr(obj, "status", "") == "completed"
            elif kind == "image":
                x["images"] += 1
            elif kind == "db-snapshot":
                x["db_snapshots_manual"] += getattr(obj, "snapshot_type", "manual") == "manual"
            else:
                x["db_cluster_snapshots_manual"] += getattr(obj, "snapshot_type", "manual") == "manual"
        out = [rows[k] for k in sorted(rows)]
        totals = {k: sum(x[k] for x in out) for k in ("snapshots", "snapshots_completed", "images", "db_snapshots_manual", "db_cluster_snapshots_manual")}
        return 200, {"inventory": out, "totals": totals}

    if route == "/sns":
        # Alerts: POST makes a topic ({account, region, name} -> {arn}); GET lists
        # every message published to any topic (moto keeps them per topic).
        if method == "POST":
            body = _json_body(environ)
            for k in ("account", "region", "name"):
                if not body.get(k):
                    raise BadRequest(f"sns topic needs '{k}'")
            topic = sns_backends[body["account"]][body["region"]].create_topic(body["name"])
            return 200, {"arn": topic.arn}
        if method == "GET":
            messages = []
            for account_id, per_account in list(sns_backends.items()):
                for region, backend in list(dict.items(per_account)):
                    for arn, topic in list(backend.topics.items()):
                        for (mid, message, subject, _attrs, _group) in topic.sent_notifications:
                            messages.append({"account": account_id, "region": region, "topic": arn,
                                             "id": mid, "message": message, "subject": subject})
            return 200, {"messages": messages}
        return 405, {"error": "GET or POST"}

    if route == "/credentials" and method == "GET":
        # ?secrets=1 also returns the secrets, for tests that prove no log shows them.
        environ_query = environ.get("QUERY_STRING", "")
        now = STATE.layer_now()
        return 200, {
            "layer_now": iso_z(now),
            "credentials": [
                {
                    "access_key_id": k,
                    "account": v["account"],
                    "role_arn": v["role_arn"],
                    "issued_to": v["issued_to"],
                    "lifetime_seconds": v["lifetime_seconds"],
                    "expiration": iso_z(v["expiration"]),
                    "expired": key_expired(v, now),
                    "revoked": bool(v.get("revoked")),
                    **(
                        {"secret_access_key": v.get("secret_access_key"), "session_token": v.get("session_token")}
                        if "secrets=1" in (environ_query or "")
                        else {}
                    ),
                }
                for k, v in STATE.temp_keys.items()
            ],
        }

    if route == "/revoke" and method == "POST":
        # AWS may refuse a session token long before the Expiration the client
        # was given (a revoked session, clock skew); moto never does. Matching
        # keys answer ExpiredToken from now on, as keys past their expiry do.
        body = _json_body(environ)
        want = {f: body[f] for f in ("account", "role_arn", "access_key_id") if body.get(f) is not None}
        if not want:
            raise BadRequest("revoke needs 'account', 'role_arn' or 'access_key_id'")
        for f, v in want.items():
            if not isinstance(v, str) or not v:
                raise BadRequest(f"{f} must be a non-empty string")
        now = STATE.layer_now()
        revoked = []
        for k, rec in STATE.temp_keys.items():
            if rec.get("revoked") or any(rec.get(f) != v for f, v in want.items()):
                continue
            rec["revoked"] = True
            # expiry "now" on the layer clock; a key already past it keeps its own
            rec["expiration"] = min(rec["expiration"], now)
            revoked.append(k)
        return 200, {"revoked": revoked}

    if route == "/access-key" and method == "POST":
        # Gives an existing IAM user an access key with a given id and secret (moto only
        # makes random ones). router.py's backends all need the admin user with the one
        # key the admin holds: seed.py copies it into every backend (README, "router.py").
        body = _json_body(environ)
        for f in ("account", "user_name", "access_key_id", "secret_access_key"):
            if not isinstance(body.get(f), str) or not body[f]:
                raise BadRequest(f"access-key needs '{f}'")
        iam = iam_backends[body["account"]][PARTITION]
        try:
            user = iam.get_user(body["user_name"])
        except Exception:
            return 404, {"error": f"no user {body['user_name']} in account {body['account']}"}
        from moto.iam.models import AccessKey

        key = AccessKey(user.name, prefix="AKIA", account_id=body["account"])
        key.access_key_id = body["access_key_id"]
        key.secret_access_key = body["secret_access_key"]
        user.access_keys.append(key)
        iam.access_keys[key.physical_resource_id] = key
        return 200, {"access_key_id": key.access_key_id}

    if route == "/db_endpoints" and method == "POST":
        body = _json_body(environ)
        if not body.get("prefix") or not body.get("address") or not isinstance(body.get("port"), int):
            raise BadRequest("db_endpoints needs 'prefix', 'address' and an integer 'port'")
        DB_ENDPOINTS[:] = [r for r in DB_ENDPOINTS if r["prefix"] != body["prefix"]]
        DB_ENDPOINTS.append({"prefix": str(body["prefix"]), "address": str(body["address"]), "port": body["port"]})
        return 200, {"db_endpoints": DB_ENDPOINTS}

    if route == "/ssm" and method == "POST":
        body = _json_body(environ)
        if not body.get("account"):
            raise BadRequest("ssm needs 'account' (and 'exit_code', 'output', 'status', 'instance_id' as wanted)")
        SSM_RESULTS.insert(0, {k: body[k] for k in ("account", "instance_id", "exit_code", "output", "status") if k in body})
        return 200, {"ssm": SSM_RESULTS}

    if route == "/reset" and method == "POST":
        for (kind, _a, _r, _i), rec in list(STATE.held.items()):
            apply_complete(kind, rec["obj"])
        STATE.reset()
        DB_ENDPOINTS.clear()
        SSM_RESULTS.clear()
        return 200, {"reset": True}

    return 404, {"error": f"no such control endpoint: {method} /_harness{route}"}


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

SERVER_PORT = 0


class QuietHandler(WSGIRequestHandler):
    verbose = False

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        if self.verbose:
            super().log_request(code, size)


def build_app() -> Layer:
    install_model_hooks()
    conditions.install(sys.modules[__name__])
    locks.install(sys.modules[__name__])
    shares.install(sys.modules[__name__])
    moto_app = DomainDispatcherApplication(create_backend_app)
    # Build the Flask apps of the services we use now, not on the first request.
    # organizations: `rolesnap accounts --from-organization` (tests/e2e/onboard.rs).
    for service in ("ec2", "rds", "sts", "iam", "kms", "sns", "organizations"):
        moto_app.app_instances[service] = create_backend_app(service)
    return Layer(moto_app)


def main(argv: list[str] | None = None) -> int:
    global SERVER_PORT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--ready-file", help="write the chosen port here (atomically) once serving")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    t0 = time.time()
    app = build_app()
    # Speed only: the ~160k objects of moto's imports and service models live as
    # long as the process. Out of the collector's way, a full collection (which
    # stops every thread, moto calls included) takes ~60 ms less.
    gc.collect()
    gc.freeze()
    QuietHandler.verbose = args.verbose
    server = make_server(args.host, args.port, app, threaded=True, request_handler=QuietHandler)
    SERVER_PORT = server.server_port

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    serve = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
    serve.start()
    if args.ready_file:
        tmp = f"{args.ready_file}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{SERVER_PORT}\n")
        os.replace(tmp, args.ready_file)
    print(f"READY {SERVER_PORT}", flush=True)
    print(f"harness: moto {moto.__version__} on http://{args.host}:{SERVER_PORT} (startup {time.time() - t0:.2f}s)", file=sys.stderr, flush=True)
    while serve.is_alive():
        serve.join(0.5)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
