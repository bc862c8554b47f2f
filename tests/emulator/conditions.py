"""Tag conditions of IAM policies, and moto's IAM enforcement made AWS-like.

moto 5.2.1 can check identity policies action by action (`POST /moto-api/reset-auth`,
body `0`), but it evaluates no `Condition` on a resource tag and matches every EC2/RDS
action against the resource `*`. Under `rolesnap policy tenant`'s permissions that lets
the tenant role delete an untagged snapshot (AWS refuses it) and refuses DetachVolume
(AWS allows it: the volume side needs `_GX_BACKUP_`, the instance side nothing).

`install(server)` (called once by server.py's build_app) adds, without touching moto's
files:

* **Conditions** (switch: `POST /_harness/config {"enforce_tag_conditions": true}`,
  off by default and after `POST /_harness/reset`). For the calls `evaluations()` models
  (deletes, attach/detach, modify-attribute, lock, CreateTags/DeleteTags, the
  TagSpecifications of EC2 creates, RDS AddTagsToResource/RemoveTagsFromResource and the
  Tags of RDS creates, the instance profile RunInstances passes) signed with assumed-role
  (tenant) credentials, the layer evaluates the role's own policies (inline and attached,
  as stored in moto's IAM backend) for every authorisation AWS makes: Action/NotAction,
  Resource/NotResource (ARN wildcards), the resource-tag keys (`ec2:ResourceTag/K`,
  `aws:ResourceTag/K`, `rds:snapshot-tag/K`, `rds:cluster-snapshot-tag/K`, `rds:db-tag/K`,
  `rds:cluster-tag/K`, `ssm:resourceTag/K` (SSM SendCommand: the document's ARN and
  each target instance's, the instance's tags), tags looked up in moto's backends)
  and the request keys
  (`ec2:CreateAction`, `aws:RequestTag/K`, `aws:TagKeys`, `iam:PassedToService`), with
  IAM's ForAnyValue/ForAllValues/Null/IfExists semantics. An explicit Deny wins; every
  authorisation needs an Allow. Refused: EC2 `UnauthorizedOperation` / RDS `AccessDenied`,
  HTTP 403, counted as `denied`. When the layer decided the call's own action on every
  resource, moto's own action check is skipped for that one request (it cannot match
  resource ARNs, and it applies a Deny with a Condition unconditionally); its signature
  check still runs. A resource that does not exist is left to moto (its NotFound error).
* **SSM** speaks JSON like KMS (`X-Amz-Target: AmazonSSM.<Operation>`): its operation
  is the request's Action, and its refusals are `AccessDeniedException`, HTTP 400, JSON.
* **KMS** (same switch, same callers): a direct KMS call is authorised on the key's ARN
  with `kms:ViaService` absent (refused: `AccessDeniedException`, HTTP 400, JSON); the
  customer managed keys EC2 (CopySnapshot, CopyImage, CreateVolume, RunInstances) and RDS
  (CopyDB(Cluster)Snapshot, RestoreDB…FromSnapshot, CreateDB…) use for the caller need
  the KMS actions AWS documents on each key's ARN with `kms:ViaService` =
  `ec2|rds.REGION.amazonaws.com` (refused: EC2 `UnauthorizedOperation` 403, RDS
  `KMSKeyNotAccessibleFault` 400). KMS's JSON requests get their operation as the layer's
  Action, and the layer's KMS errors KMS's JSON shape (README, "KMS (`kms:ViaService`)").
* **moto's enforcement, corrected** (always; matters only while it is on):
  - `AssumeRole`: moto evaluates the trust policy only for a role in the caller's own
    account, and then does not understand `Principal: arn:aws:iam::A:root`, so the admin
    user cannot assume the admin role `vsa-assume-role`. The layer's own trust check
    (server.py step 3) decides trust instead; moto still checks that the caller's
    identity policy allows `sts:AssumeRole`.
  - moto's refusals get AWS's shape: EC2 `UnauthorizedOperation` in EC2's
    `<Response><Errors>` body, other query services `AccessDenied` in
    `<ErrorResponse><Error>` (moto answers `AccessDenied` for every service, in an
    `<ErrorResponse><Errors><Error>` body, which is not EC2's shape).
  - SigV4: moto checks the signature over the body bytes the client sent, not over a
    body rebuilt from the parsed form (which writes a space as "+" where the Rust SDK
    sent "%20", so any call with a space in a value failed with AuthFailure).
  - `sts:GetCallerIdentity` needs no permission in moto either (nothing to do).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Callable
from urllib.parse import unquote

PARTITION = "aws"

# The switch, and the action the layer has fully authorized for the request being
# served on this thread ("ec2:DetachVolume"), for moto's check to skip.
CONFIG = {"enforce_tag_conditions": False}
_TLS = threading.local()
S: Any = None  # the server module, set by install()


# ---------------------------------------------------------------------------
# Resources a call touches: (kind, id) -> ARN and tags from moto's backends
# ---------------------------------------------------------------------------


def _ec2_ids(p: dict[str, str], prefix: str) -> list[str]:
    """InstanceId.1, InstanceId.2, ... (query protocol lists)."""
    keys = sorted((k for k in p if k.startswith(prefix + ".")), key=lambda k: (len(k), k))
    return [p[k] for k in keys] + ([p[prefix]] if prefix in p else [])


def _detach_targets(p: dict[str, str]) -> list[tuple[str, str]]:
    out = [("volume", p.get("VolumeId", ""))]
    if p.get("InstanceId"):
        out.append(("instance", p["InstanceId"]))
    else:
        out.append(("instance-of-volume", p.get("VolumeId", "")))
    return out


# action -> (service, function(params) -> [(kind, id)])
RESOURCES: dict[str, tuple[str, Callable[[dict[str, str]], list[tuple[str, str]]]]] = {
    "DeleteSnapshot": ("ec2", lambda p: [("snapshot", p.get("SnapshotId", ""))]),
    "DeleteVolume": ("ec2", lambda p: [("volume", p.get("VolumeId", ""))]),
    "DeregisterImage": ("ec2", lambda p: [("image", p.get("ImageId", ""))]),
    "TerminateInstances": ("ec2", lambda p: [("instance", i) for i in _ec2_ids(p, "InstanceId")]),
    "DetachVolume": ("ec2", _detach_targets),
    "DeleteNetworkInterface": ("ec2", lambda p: [("network-interface", p.get("NetworkInterfaceId", ""))]),
    "AttachVolume": ("ec2", lambda p: [("volume", p.get("VolumeId", "")), ("instance", p.get("InstanceId", ""))]),
    "ModifySnapshotAttribute": ("ec2", lambda p: [("snapshot", p.get("SnapshotId", ""))]),
    "ModifyImageAttribute": ("ec2", lambda p: [("image", p.get("ImageId", ""))]),
    "LockSnapshot": ("ec2", lambda p: [("snapshot", p.get("SnapshotId", ""))]),
    "UnlockSnapshot": ("ec2", lambda p: [("snapshot", p.get("SnapshotId", ""))]),
    "StopInstances": ("ec2", lambda p: [("instance", i) for i in _ec2_ids(p, "InstanceId")]),
    "ModifyInstanceAttribute": ("ec2", lambda p: [("instance", p.get("InstanceId", ""))]),
    "DeleteDBSnapshot": ("rds", lambda p: [("db-snapshot", p.get("DBSnapshotIdentifier", ""))]),
    "ModifyDBSnapshotAttribute": ("rds", lambda p: [("db-snapshot", p.get("DBSnapshotIdentifier", ""))]),
    "ModifyDBClusterSnapshotAttribute": ("rds", lambda p: [("db-cluster-snapshot", p.get("DBClusterSnapshotIdentifier", ""))]),
    "DeleteDBClusterSnapshot": ("rds", lambda p: [("db-cluster-snapshot", p.get("DBClusterSnapshotIdentifier", ""))]),
    "DeleteDBInstance": ("rds", lambda p: [("db", p.get("DBInstanceIdentifier", ""))]),
    "DeleteDBCluster": ("rds", lambda p: [("cluster", p.get("DBClusterIdentifier", ""))]),
}

# condition key prefix (lower case) -> the resource kinds whose tags it reads
TAG_KEYS = {
    "ec2:resourcetag/": None,  # any resource
    "aws:resourcetag/": None,
    "rds:snapshot-tag/": {"db-snapshot"},
    "rds:cluster-snapshot-tag/": {"db-cluster-snapshot"},
    "rds:db-tag/": {"db"},
    "rds:cluster-tag/": {"cluster"},
    # SSM Run Command on an EC2 instance: the instance's tags.
    "ssm:resourcetag/": {"instance"},
}


def _dict_get(d: Any, key: str) -> Any:
    try:
        return dict.get(d, key)
    except TypeError:
        return None


def _ec2_resource(backend: Any, account: str, region: str, kind: str, rid: str) -> tuple[str, str, dict[str, str]] | None:
    """(kind, ARN, tags) of an existing EC2 resource, or None."""
    if kind == "instance-of-volume":
        vol = backend.volumes.get(rid)
        att = getattr(vol, "attachment", None) if vol is not None else None
        inst = getattr(att, "instance", None)
        if inst is None:
            return None
        kind, rid = "instance", inst.id
    if kind == "snapshot":
        exists, arn = rid in backend.snapshots, f"arn:{PARTITION}:ec2:{region}::snapshot/{rid}"
    elif kind == "image":
        exists, arn = rid in backend.amis, f"arn:{PARTITION}:ec2:{region}::image/{rid}"
    elif kind == "volume":
        exists, arn = rid in backend.volumes, f"arn:{PARTITION}:ec2:{region}:{account}:volume/{rid}"
    elif kind == "instance":
        exists, arn = backend.get_instance_by_id(rid) is not None, f"arn:{PARTITION}:ec2:{region}:{account}:instance/{rid}"
    elif kind == "network-interface":
        exists, arn = rid in backend.enis, f"arn:{PARTITION}:ec2:{region}:{account}:network-interface/{rid}"
    else:
        return None
    if not rid or not exists:
        return None
    return kind, arn, dict(_dict_get(backend.tags, rid) or {})


def _rds_resource(backend: Any, account: str, region: str, kind: str, rid: str) -> tuple[str, str, dict[str, str]] | None:
    name = re.sub(r"^arn:aws[\w-]*:rds:[^:]*:\d*:(?:snapshot|cluster-snapshot|db|cluster):", "", rid)
    table, arn_kind = {
        "db-snapshot": (backend.database_snapshots, "snapshot"),
        "db-cluster-snapshot": (backend.cluster_snapshots, "cluster-snapshot"),
        "db": (backend.databases, "db"),
        "cluster": (backend.clusters, "cluster"),
    }[kind]
    obj = table.get(name) if name else None
    if obj is None:
        return None
    tags = {t.get("Key", ""): t.get("Value", "") for t in (getattr(obj, "tags", None) or [])}
    return kind, f"arn:{PARTITION}:rds:{region}:{account}:{arn_kind}:{name.lower()}", tags


def resources_of(req: Any, service: str, targets: list[tuple[str, str]]) -> list[tuple[str, str, dict[str, str]]]:
    bd = S.ec2_backends if service == "ec2" else S.rds_backends
    per_account = _dict_get(bd, req.account)
    backend = _dict_get(per_account, req.region) if per_account is not None else None
    if backend is None:
        return []
    find = _ec2_resource if service == "ec2" else _rds_resource
    out = []
    for kind, rid in targets:
        found = find(backend, req.account, req.region, kind, rid)
        if found is not None:
            out.append(found)
    return out


# ---------------------------------------------------------------------------
# Policy evaluation (identity policies of the role, as moto stores them)
# ---------------------------------------------------------------------------


def _doc(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        return json.loads(text)
    except Exception:
        return json.loads(unquote(text))


def role_policies(principal_arn: str) -> list[dict[str, Any]] | None:
    """The inline and attached policies of an assumed role's role, or None."""
    m = re.fullmatch(r"arn:aws[\w-]*:sts::(\d{12}):assumed-role/([^/]+)/.+", principal_arn or "")
    if not m:
        return None
    iam = _dict_get(_dict_get(S.iam_backends, m.group(1)) or {}, PARTITION)
    if iam is None:
        return None
    try:
        role = iam.get_role(m.group(2))
    except Exception:
        return None
    docs = [_doc(d) for d in role.policies.values()]
    for mp in role.managed_policies.values():
        for v in getattr(mp, "versions", []):
            if v.is_default:
                docs.append(_doc(v.document))
    return docs


def _list(x: Any) -> list[Any]:
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def _glob(pattern: str, value: str, ignore_case: bool) -> bool:
    # IAM wildcards: * any run, ? one character; nothing else is special
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _matches_any(patterns: Any, value: str, ignore_case: bool) -> bool:
    return any(_glob(str(p), value, ignore_case) for p in _list(patterns))


class Ctx:
    """The request-level condition keys of one authorisation (besides the
    resource's tags): `ec2:CreateAction`, `aws:RequestTag/K`, `aws:TagKeys`,
    `iam:PassedToService`. None = the key is absent from the request."""

    def __init__(self, request_tags: dict[str, str] | None = None, tag_keys: list[str] | None = None,
                 create_action: str | None = None, passed_to_service: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.request_tags = request_tags
        # other request keys, lower-cased name -> value (None: absent), e.g. ec2:add/userid
        self.extra = extra or {}
        self.tag_keys = tag_keys if tag_keys is not None else (list(request_tags) if request_tags else None)
        self.create_action = create_action
        self.passed_to_service = passed_to_service


NO_CTX = Ctx()


def _tag_value(key: str, kind: str, tags: dict[str, str], ctx: Ctx = NO_CTX) -> tuple[bool, Any]:
    """(known key?, value: a string, a list for aws:TagKeys, or None when absent)."""
    low = key.lower()
    for prefix, kinds in TAG_KEYS.items():
        if low.startswith(prefix):
            if kinds is not None and kind not in kinds:
                return True, None
            return True, tags.get(key[len(prefix):])
    if low.startswith("aws:requesttag/"):
        return True, (ctx.request_tags or {}).get(key[len("aws:requesttag/"):])
    if low == "aws:tagkeys":
        return True, (ctx.tag_keys or None)
    if low == "ec2:createaction":
        return True, ctx.create_action
    if low == "iam:passedtoservice":
        return True, ctx.passed_to_service
    if low in ctx.extra:
        return True, ctx.extra[low]
    return False, None


def _single(base: str, wanted: list[str], value: str) -> bool | None:
    if base == "StringEquals":
        return value in wanted
    if base == "StringNotEquals":
        return value not in wanted
    if base == "StringEqualsIgnoreCase":
        return value.lower() in [w.lower() for w in wanted]
    if base == "StringNotEqualsIgnoreCase":
        return value.lower() not in [w.lower() for w in wanted]
    if base == "StringLike":
        return any(_glob(w, value, False) for w in wanted)
    if base == "StringNotLike":
        return not any(_glob(w, value, False) for w in wanted)
    return None


def _operator_holds(op: str, expected: Any, value: Any) -> bool | None:
    """One condition operator on one key, as IAM evaluates it; None = operator not
    evaluated. `value` is a string, a list (multi-valued key such as aws:TagKeys)
    or None (absent).

    * Null: true when the key is absent (or an empty set).
    * ForAnyValue:Op: some value of the set satisfies Op; an absent/empty set: false.
    * ForAllValues:Op: every value satisfies Op; an absent/empty set: true.
    * …IfExists: an absent key satisfies the condition.
    * A plain operator on an absent key: false, except the negated ones
      (StringNot…), which are true (IAM User Guide, "Condition operators").
    """
    qualifier, base = op.split(":", 1) if ":" in op else ("", op)
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[: -len("IfExists")]
    absent = value is None or value == []
    if base == "Null":
        want_absent = str(_list(expected)[0]).lower() == "true"
        return absent == want_absent
    wanted = [str(e) for e in _list(expected)]
    if _single(base, wanted, "") is None:
        return None  # an operator the layer does not evaluate
    values = value if isinstance(value, list) else ([] if value is None else [value])
    if qualifier == "ForAllValues":
        return all(_single(base, wanted, v) for v in values)
    if qualifier == "ForAnyValue":
        return any(_single(base, wanted, v) for v in values)
    if absent:
        return if_exists or base.startswith("StringNot")
    return any(_single(base, wanted, v) for v in values)


def conditions_hold(stmt: dict[str, Any], kind: str, tags: dict[str, str], ctx: Ctx = NO_CTX) -> bool:
    """Every condition on a key the layer knows is evaluated (kms:ViaService and
    kms:CallerAccount on the KMS authorisations); other keys and operators are not
    (treated as met, as moto does)."""
    for op, entries in (stmt.get("Condition") or {}).items():
        if not isinstance(entries, dict):
            continue
        for key, expected in entries.items():
            known, value = _tag_value(str(key), kind, tags, ctx)
            if not known:
                continue
            if _operator_holds(str(op), expected, value) is False:
                return False
    return True


def _statement_applies(stmt: dict[str, Any], action: str, arn: str, kind: str, tags: dict[str, str], ctx: Ctx = NO_CTX) -> bool:
    if "NotAction" in stmt:
        if _matches_any(stmt["NotAction"], action, True):
            return False
    elif not _matches_any(stmt.get("Action"), action, True):
        return False
    if "NotResource" in stmt:
        if _matches_any(stmt["NotResource"], arn, False):
            return False
    elif not _matches_any(stmt.get("Resource"), arn, False):
        return False
    return conditions_hold(stmt, kind, tags, ctx)


def decide(policies: list[dict[str, Any]], action: str, arn: str, kind: str, tags: dict[str, str], ctx: Ctx = NO_CTX) -> bool:
    """An explicit Deny wins; otherwise some Allow must apply."""
    allowed = False
    for doc in policies:
        for stmt in _list(doc.get("Statement")):
            if not isinstance(stmt, dict) or not _statement_applies(stmt, action, arn, kind, tags, ctx):
                continue
            if stmt.get("Effect") == "Deny":
                return False
            if stmt.get("Effect") == "Allow":
                allowed = True
    return allowed


# ---------------------------------------------------------------------------
# Tagging: plain tag calls, and the tags of a create call
# ---------------------------------------------------------------------------

EC2_KIND_BY_PREFIX = {"snap-": "snapshot", "ami-": "image", "vol-": "volume", "i-": "instance", "eni-": "network-interface"}

# EC2 actions whose TagSpecifications EC2 authorises as ec2:CreateTags with
# ec2:CreateAction = the action (EC2 User Guide, "Grant permission to tag Amazon
# EC2 resources during creation").
EC2_TAG_ON_CREATE = {"CreateSnapshot", "CreateSnapshots", "CreateImage", "CopySnapshot", "CopyImage",
                     "RegisterImage", "CreateVolume", "RunInstances"}

# RDS create calls whose Tags RDS authorises as rds:AddTagsToResource on the new
# resource (RDS User Guide, "Grant permission to tag Amazon RDS resources during
# creation"): action -> (identifier parameter, kind, ARN resource type).
RDS_TAG_ON_CREATE = {
    "CreateDBSnapshot": ("DBSnapshotIdentifier", "db-snapshot", "snapshot"),
    "CopyDBSnapshot": ("TargetDBSnapshotIdentifier", "db-snapshot", "snapshot"),
    "CreateDBClusterSnapshot": ("DBClusterSnapshotIdentifier", "db-cluster-snapshot", "cluster-snapshot"),
    "CopyDBClusterSnapshot": ("TargetDBClusterSnapshotIdentifier", "db-cluster-snapshot", "cluster-snapshot"),
    "CreateDBInstance": ("DBInstanceIdentifier", "db", "db"),
    "RestoreDBInstanceFromDBSnapshot": ("DBInstanceIdentifier", "db", "db"),
    "CreateDBCluster": ("DBClusterIdentifier", "cluster", "cluster"),
    "RestoreDBClusterFromSnapshot": ("DBClusterIdentifier", "cluster", "cluster"),
}

RDS_KIND_BY_ARN = {"snapshot": "db-snapshot", "cluster-snapshot": "db-cluster-snapshot", "db": "db", "cluster": "cluster"}


def _ec2_tags_param(p: dict[str, str]) -> dict[str, str] | None:
    """Tag.N.Key / Tag.N.Value of CreateTags and DeleteTags (None: no Tag given)."""
    keys = {m.group(1): v for k, v in p.items() if (m := re.fullmatch(r"Tag\.(\d+)\.Key", k))}
    if not keys:
        return None
    return {key: p.get(f"Tag.{n}.Value", "") for n, key in keys.items()}


def _rds_tags_param(p: dict[str, str]) -> dict[str, str] | None:
    keys = {m.group(1): v for k, v in p.items() if (m := re.fullmatch(r"Tags\.(?:Tag|member)\.(\d+)\.Key", k))}
    if not keys:
        return None
    out = {}
    for n, key in keys.items():
        out[key] = p.get(f"Tags.Tag.{n}.Value", p.get(f"Tags.member.{n}.Value", ""))
    return out


def _instance_profile_roles(account: str, p: dict[str, str]) -> list[str]:
    """Role ARNs of the instance profile a RunInstances passes (by Arn or Name)."""
    ref = p.get("IamInstanceProfile.Arn") or p.get("IamInstanceProfile.Name")
    if not ref:
        return []
    iam = _dict_get(_dict_get(S.iam_backends, account) or {}, PARTITION)
    if iam is None:
        return []
    name = ref.rsplit("/", 1)[-1]
    prof = None
    for ip in getattr(iam, "instance_profiles", {}).values():
        if ip.name == name or getattr(ip, "arn", None) == ref:
            prof = ip
    if prof is None:
        return []
    return [r.arn for r in getattr(prof, "roles", [])]


Eval = tuple[str, str, str, dict[str, str], Ctx]  # action, ARN, kind, resource tags, context


def _share_ctx(a: str, p: dict[str, str]) -> Ctx:
    """ModifySnapshotAttribute / ModifyImageAttribute: `ec2:Add/userId`,
    `ec2:Remove/userId`, `ec2:Add/group`, `ec2:Remove/group` (multi-valued, absent
    when the request has none) and `ec2:Attribute` (Service Authorization Reference,
    Amazon EC2). Both request forms: `UserId.N` + `OperationType`, and
    `CreateVolumePermission.Add.N.UserId` / `LaunchPermission.Add.N.UserId`."""
    perm = "CreateVolumePermission" if a == "ModifySnapshotAttribute" else "LaunchPermission"
    op = p.get("OperationType")
    vals: dict[str, list[str]] = {"add/userid": [], "remove/userid": [], "add/group": [], "remove/group": []}
    for k, v in sorted(p.items()):
        m = re.fullmatch(rf"{perm}\.(Add|Remove)\.\d+\.(UserId|Group)", k)
        if m:
            vals[f"{m.group(1).lower()}/{'userid' if m.group(2) == 'UserId' else 'group'}"].append(v)
        elif op in ("add", "remove") and re.fullmatch(r"UserId\.\d+", k):
            vals[f"{op}/userid"].append(v)
        elif op in ("add", "remove") and re.fullmatch(r"(?:UserGroup|Group)\.\d+", k):
            vals[f"{op}/group"].append(v)
    attr = p.get("Attribute") or (perm[0].lower() + perm[1:] if any(k.startswith(perm + ".") for k in p) else None)
    extra: dict[str, Any] = {f"ec2:{k}": (v or None) for k, v in vals.items()}
    extra["ec2:attribute"] = attr
    return Ctx(extra=extra)


# ---------------------------------------------------------------------------
# KMS: direct calls, and key use by EC2 and RDS on the caller's behalf
# ---------------------------------------------------------------------------

# Direct KMS operations the layer decides: the key parameter(s) each names, and
# the IAM action authorised on each (ReEncrypt: kms:ReEncryptFrom on the source
# key, kms:ReEncryptTo on the destination key; Service Authorization Reference,
# AWS KMS). Decrypt without KeyId names its key inside the ciphertext.
KMS_KEY_OPS: dict[str, list[tuple[str, str]]] = {
    op: [("KeyId", f"kms:{op}")]
    for op in (
        "DescribeKey", "GetKeyPolicy", "PutKeyPolicy", "Decrypt", "Encrypt", "CreateGrant", "ListGrants",
        "RevokeGrant", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "Sign", "Verify", "GetPublicKey",
        "EnableKey", "DisableKey", "ScheduleKeyDeletion", "CancelKeyDeletion", "EnableKeyRotation",
        "DisableKeyRotation", "GetKeyRotationStatus", "ListKeyPolicies", "ListResourceTags", "TagResource",
        "UntagResource", "UpdateKeyDescription",
    )
}
KMS_KEY_OPS["ReEncrypt"] = [("SourceKeyId", "kms:ReEncryptFrom"), ("DestinationKeyId", "kms:ReEncryptTo")]
# Direct KMS operations on no key (Resource "*" in the Service Authorization Reference).
KMS_STAR_OPS = {"ListAliases", "ListKeys", "GenerateRandom"}


def _kms_ctx(req: Any, via: str | None) -> Ctx:
    """`kms:ViaService` (None: absent, a direct call) and `kms:CallerAccount`."""
    return Ctx(extra={"kms:viaservice": via, "kms:calleraccount": req.account})


def _kms_key(account: str, region: str, ident: str | None) -> Any:
    """The moto key named by an id, key ARN, alias name or alias ARN (an ARN names
    its own account and region), or None."""
    import shares

    return shares.find_key(account, region, ident) if ident else None


def _key_tags(key: Any) -> dict[str, str]:
    try:
        from moto.kms.models import kms_backends

        kb = kms_backends[key.account_id][key.region]
        return {t["TagKey"]: t["TagValue"] for t in kb.list_resource_tags(key.id).get("Tags", [])}
    except Exception:
        return {}


def _ciphertext_key(req: Any, blob: str | None) -> str | None:
    """The key id moto writes at the head of its ciphertext blobs."""
    import base64

    try:
        raw = base64.b64decode(blob or "")
        return raw[:36].decode("ascii") if len(raw) > 36 else None
    except Exception:
        return None


def kms_direct(req: Any) -> tuple[list[Eval], str | None] | None:
    """A KMS call made by the caller itself: the action on the key's ARN (or on
    `*` for the keyless listings), with `kms:ViaService` absent."""
    a, body = req.action, getattr(req, "json_params", None) or {}
    ctx = _kms_ctx(req, None)
    if a in KMS_STAR_OPS:
        return [(f"kms:{a}", "*", "key", {}, ctx)], f"kms:{a}"
    if a not in KMS_KEY_OPS:
        return None  # left to moto's own check (on `*`)
    evs: list[Eval] = []
    for param, action in KMS_KEY_OPS[a]:
        ident = body.get(param)
        if not ident and a in ("Decrypt", "ReEncrypt") and param in ("KeyId", "SourceKeyId"):
            ident = _ciphertext_key(req, body.get("CiphertextBlob"))
        key = _kms_key(req.account, req.region, ident if isinstance(ident, str) else None)
        if key is None:
            return None  # no such key: moto answers NotFoundException
        evs.append((action, key.arn, "key", _key_tags(key), ctx))
    return evs, f"kms:{a}"


# What EC2 and RDS authorise on a customer managed key they use for the caller
# (AWS managed keys are used through the service's own grants: not checked).
# EC2: EBS User Guide, "Requirements for Amazon EBS encryption / Permissions for
# users" (kms:CreateGrant, kms:Decrypt, kms:DescribeKey,
# kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt), split by what the key does.
# RDS: RDS User Guide, "AWS KMS key management / Authorizing use of a customer
# managed key" (kms:CreateGrant, kms:DescribeKey), plus kms:Decrypt on a key
# whose data is read.
EC2_KEY_ANY = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey")
EC2_KEY_NEW_DATA = ("kms:GenerateDataKeyWithoutPlaintext",)
RDS_KEY_ANY = ("kms:CreateGrant", "kms:DescribeKey")
RDS_KEY_READ = ("kms:Decrypt",)


def _customer_key(account: str, region: str, ident: str | None) -> Any:
    key = _kms_key(account, region, ident)
    if key is None or getattr(key, "key_manager", "") == "AWS":
        return None
    return key


def _ec2_backend(account: str, region: str) -> Any:
    per = _dict_get(S.ec2_backends, account)
    return _dict_get(per, region) if per is not None else None


def _visible_snapshot(me: str, region: str, sid: str | None) -> Any:
    """The caller's snapshot, or another account's shared with it."""
    import shares

    if not sid:
        return None
    own = _ec2_backend(me, region)
    if own is not None and sid in own.snapshots:
        return own.snapshots[sid]
    snap = shares.find_foreign_snapshot(me, region, sid)
    return snap if snap is not None and shares.snapshot_shared_with(snap, me) else None


def _visible_image(me: str, region: str, iid: str | None) -> Any:
    if not iid:
        return None
    for acct in list(dict.keys(S.ec2_backends)):
        b = _ec2_backend(acct, region)
        if b is not None and iid in b.amis and (acct == me or iid not in S.DEFAULT_AMI_IDS):
            ami = b.amis[iid]
            perms = getattr(ami, "launch_permissions", []) or []
            if acct == me or any(p.get("UserId") == me or p.get("Group") == "all" for p in perms):
                return ami
    return None


def _snapshot_key(snap: Any) -> Any:
    if snap is None or not getattr(snap, "encrypted", False):
        return None
    region = getattr(getattr(snap, "ec2_backend", None), "region_name", "")
    return _customer_key(snap.owner_id, region, snap.kms_key_id)


def _rds_snapshot(me: str, region: str, ident: str | None, table: str) -> Any:
    """An RDS (cluster) snapshot named by identifier, or by ARN (any account,
    shared with the caller when it is another's)."""
    import shares

    if not ident:
        return None
    m = re.fullmatch(r"arn:aws[\w-]*:rds:([^:]+):(\d{12}):(?:snapshot|cluster-snapshot):(.+)", ident)
    acct, reg, name = (m.group(2), m.group(1), m.group(3)) if m else (me, region, ident)
    per = _dict_get(S.rds_backends, acct)
    b = _dict_get(per, reg) if per is not None else None
    found = getattr(b, table) if b is not None else {}
    snap = found.get(name) or found.get(name.lower())
    if snap is None or (acct != me and not shares.rds_shared_with(snap, me)):
        return None
    return snap


def _rds_snapshot_key(snap: Any) -> Any:
    if snap is None:
        return None
    if not (getattr(snap, "encrypted", False) or getattr(snap, "storage_encrypted", False)):
        return None
    return _customer_key(getattr(snap, "account_id", ""), getattr(snap, "region", ""), getattr(snap, "kms_key_id", None))


def _ec2_key_use(req: Any) -> tuple[list[Any], list[Any]]:
    """(keys whose data EC2 reads, keys EC2 encrypts new data with) for a call,
    customer managed keys only."""
    p, a, me, region = req.params, req.action, req.account, req.region
    read: list[Any] = []
    new: list[Any] = []
    given = _customer_key(me, region, p.get("KmsKeyId")) if p.get("KmsKeyId") else None
    if a == "CopySnapshot":
        src_region = p.get("SourceRegion") or region
        read.append(_snapshot_key(_visible_snapshot(me, src_region, p.get("SourceSnapshotId"))))
        new.append(given)
    elif a == "CopyImage":
        src_region = p.get("SourceRegion") or region
        ami = _visible_image(me, src_region, p.get("SourceImageId"))
        snap = getattr(ami, "ebs_snapshot", None) if ami is not None else None
        read.append(_snapshot_key(snap))
        new.append(given)
    elif a == "CreateVolume":
        read.append(_snapshot_key(_visible_snapshot(me, region, p.get("SnapshotId"))))
        new.append(given)
    elif a == "RunInstances":
        ami = _visible_image(me, region, p.get("ImageId"))
        if ami is not None:
            read.append(_snapshot_key(getattr(ami, "ebs_snapshot", None)))
        for k in sorted(p):
            m = re.fullmatch(r"BlockDeviceMapping\.(\d+)\.Ebs\.(SnapshotId|KmsKeyId)", k)
            if not m:
                continue
            if m.group(2) == "SnapshotId":
                read.append(_snapshot_key(_visible_snapshot(me, region, p[k])))
            else:
                new.append(_customer_key(me, region, p[k]))
    return [k for k in read if k is not None], [k for k in new if k is not None]


def _rds_key_use(req: Any) -> tuple[list[Any], list[Any]]:
    p, a, me, region = req.params, req.action, req.account, req.region
    read: list[Any] = []
    if a == "CopyDBSnapshot":
        read.append(_rds_snapshot_key(_rds_snapshot(me, region, p.get("SourceDBSnapshotIdentifier"), "database_snapshots")))
    elif a == "CopyDBClusterSnapshot":
        read.append(_rds_snapshot_key(_rds_snapshot(me, region, p.get("SourceDBClusterSnapshotIdentifier"), "cluster_snapshots")))
    elif a == "RestoreDBInstanceFromDBSnapshot":
        read.append(_rds_snapshot_key(_rds_snapshot(me, region, p.get("DBSnapshotIdentifier"), "database_snapshots")))
    elif a == "RestoreDBClusterFromSnapshot":
        ident = p.get("SnapshotIdentifier")
        snap = _rds_snapshot(me, region, ident, "cluster_snapshots") or _rds_snapshot(me, region, ident, "database_snapshots")
        read.append(_rds_snapshot_key(snap))
    elif a not in ("CreateDBInstance", "CreateDBCluster"):
        return [], []
    new = [_customer_key(me, region, p.get("KmsKeyId"))] if p.get("KmsKeyId") else []
    return [k for k in read if k is not None], [k for k in new if k is not None]


KMS_ON_BEHALF_EC2 = {"CopySnapshot", "CopyImage", "CreateVolume", "RunInstances"}
KMS_ON_BEHALF_RDS = {"CopyDBSnapshot", "CopyDBClusterSnapshot", "RestoreDBInstanceFromDBSnapshot",
                     "RestoreDBClusterFromSnapshot", "CreateDBInstance", "CreateDBCluster"}


def kms_on_behalf(req: Any) -> list[Eval]:
    """The KMS authorisations of an EC2 or RDS call that uses customer keys for
    the caller: on each key's ARN, with `kms:ViaService` = the service's endpoint
    in the request's Region."""
    if req.service == "ec2" and req.action in KMS_ON_BEHALF_EC2:
        read, new = _ec2_key_use(req)
    elif req.service == "rds" and req.action in KMS_ON_BEHALF_RDS:
        read, new = _rds_key_use(req)
    else:
        return []
    ctx = _kms_ctx(req, f"{req.service}.{req.region}.amazonaws.com")
    wanted: dict[str, tuple[Any, list[str]]] = {}

    def need(key: Any, actions: tuple[str, ...]) -> None:
        entry = wanted.setdefault(key.arn, (key, []))
        entry[1].extend(x for x in actions if x not in entry[1])

    read_arns = {k.arn for k in read}
    new_arns = {k.arn for k in new}
    for key in read:
        need(key, EC2_KEY_ANY if req.service == "ec2" else RDS_KEY_ANY + RDS_KEY_READ)
        if req.service == "ec2" and new_arns - {key.arn}:
            need(key, ("kms:ReEncryptFrom",))
    for key in new:
        need(key, EC2_KEY_ANY if req.service == "ec2" else RDS_KEY_ANY)
        if req.service == "ec2" and key.arn not in read_arns:
            need(key, EC2_KEY_NEW_DATA + (("kms:ReEncryptTo",) if read_arns else ()))
    evs: list[Eval] = []
    for arn, (key, actions) in wanted.items():
        tags = _key_tags(key)
        evs.extend((action, arn, "key", tags, ctx) for action in actions)
    return evs


def evaluations(req: Any) -> tuple[list[Eval], str | None] | None:
    """What AWS authorises for this request, beyond the action on `*`: a list of
    (action, resource ARN, kind, its tags, request context), and the action the
    layer thereby decides in full (moto's own check is skipped for it), or None
    when the layer has nothing to add. EC2 and RDS calls that use customer KMS
    keys on the caller's behalf add the KMS authorisations (`kms_on_behalf`)."""
    if req.service == "kms":
        return kms_direct(req)
    if req.service == "ssm":
        return ssm_evaluations(req)
    base = _service_evaluations(req)
    kms = kms_on_behalf(req) if req.service in ("ec2", "rds") else []
    if not kms:
        return base
    evs, decided = base if base is not None else ([], None)
    return evs + kms, decided


def ssm_evaluations(req: Any) -> tuple[list[Eval], str | None] | None:
    """SSM SendCommand, as AWS authorises it: `ssm:SendCommand` on the
    document's ARN (an AWS-owned document has no account in it) and on each
    target instance's ARN, the instance's tags as `ssm:resourceTag/K`.
    Everything else SSM is left to moto's check of the action on `*`."""
    if req.action != "SendCommand":
        return None
    body = getattr(req, "json_params", None) or {}
    doc = str(body.get("DocumentName") or "")
    evs: list[Eval] = [("ssm:SendCommand", f"arn:{PARTITION}:ssm:{req.region}::document/{doc}", "document", {}, NO_CTX)]
    backend = _ec2_backend(req.account, req.region)
    for iid in body.get("InstanceIds") or []:
        arn = f"arn:{PARTITION}:ec2:{req.region}:{req.account}:instance/{iid}"
        tags = dict(_dict_get(backend.tags, iid) or {}) if backend is not None else {}
        evs.append(("ssm:SendCommand", arn, "instance", tags, NO_CTX))
    return evs, "ssm:SendCommand"


def _service_evaluations(req: Any) -> tuple[list[Eval], str | None] | None:
    p, a = req.params, req.action
    if req.service == "ec2" and a in ("CreateTags", "DeleteTags"):
        rtags = _ec2_tags_param(p)
        ids = _ec2_ids(p, "ResourceId")
        targets = [(EC2_KIND_BY_PREFIX[pre], rid) for rid in ids for pre in EC2_KIND_BY_PREFIX if rid.startswith(pre)]
        found = resources_of(req, "ec2", targets)
        if not found:
            return None
        ctx = Ctx(request_tags=rtags if a == "CreateTags" else None, tag_keys=list(rtags) if rtags else None)
        evs = [(f"ec2:{a}", arn, kind, tags, ctx) for kind, arn, tags in found]
        return evs, (f"ec2:{a}" if len(found) == len(ids) else None)
    if req.service == "ec2" and a in EC2_TAG_ON_CREATE:
        evs: list[Eval] = []
        for rtype, rtags in S.tag_specs(p).items():
            acct = "" if rtype in ("snapshot", "image") else req.account
            arn = f"arn:{PARTITION}:ec2:{req.region}:{acct}:{rtype}/*"
            evs.append(("ec2:CreateTags", arn, rtype, {}, Ctx(request_tags=rtags, create_action=a)))
        if a == "RunInstances":
            for role in _instance_profile_roles(req.account, p):
                evs.append(("iam:PassRole", role, "role", {}, Ctx(passed_to_service="ec2.amazonaws.com")))
        return (evs, None) if evs else None
    if req.service == "rds" and a in ("AddTagsToResource", "RemoveTagsFromResource"):
        m = re.fullmatch(r"arn:aws[\w-]*:rds:[^:]*:\d*:(snapshot|cluster-snapshot|db|cluster):(.+)", p.get("ResourceName", ""))
        if not m:
            return None
        found = resources_of(req, "rds", [(RDS_KIND_BY_ARN[m.group(1)], p["ResourceName"])])
        if not found:
            return None
        if a == "AddTagsToResource":
            rtags = _rds_tags_param(p)
            ctx = Ctx(request_tags=rtags)
        else:
            keys = [v for k, v in p.items() if re.fullmatch(r"TagKeys\.(?:member\.)?\d+", k)]
            ctx = Ctx(tag_keys=keys or None)
        return [(f"rds:{a}", arn, kind, tags, ctx) for kind, arn, tags in found], f"rds:{a}"
    if req.service == "rds" and a in RDS_TAG_ON_CREATE:
        rtags = _rds_tags_param(p)
        if not rtags:
            return None
        param, kind, arn_kind = RDS_TAG_ON_CREATE[a]
        name = (p.get(param) or "new").lower()
        arn = f"arn:{PARTITION}:rds:{req.region}:{req.account}:{arn_kind}:{name}"
        return [("rds:AddTagsToResource", arn, kind, {}, Ctx(request_tags=rtags))], None
    if a in RESOURCES:
        service, targets = RESOURCES[a]
        if req.service != service:
            return None
        wanted = targets(p)
        found = resources_of(req, service, wanted)
        if not found:
            return None  # nothing there: moto answers NotFound
        ctx = _share_ctx(a, p) if a in ("ModifySnapshotAttribute", "ModifyImageAttribute") else NO_CTX
        evs = [(f"{service}:{a}", arn, kind, tags, ctx) for kind, arn, tags in found]
        return evs, (f"{service}:{a}" if len(found) == len(wanted) else None)
    return None


def check(req: Any) -> tuple[int, str, str] | None:
    """The layer's verdict on a call it models, or None to go on to moto."""
    _TLS.authorized = None
    if not CONFIG["enforce_tag_conditions"]:
        return None
    if not req.key_is_temp or ":assumed-role/" not in (req.principal_arn or ""):
        return None
    with S.STATE.lock:  # moto's models may be changing in another thread
        policies = role_policies(req.principal_arn)
        if policies is None:
            return None
        planned = evaluations(req)
        if planned is None:
            return None
        evs, decided = planned
        for action, arn, kind, tags, ctx in evs:
            if not decide(policies, action, arn, kind, tags, ctx):
                msg = (
                    f"User: {req.principal_arn} is not authorized to perform: {action} on resource: {arn} "
                    f"because no identity-based policy allows the {action} action"
                )
                if req.service in ("kms", "ssm"):
                    return 400, "AccessDeniedException", msg
                if req.service == "ec2":
                    return 403, "UnauthorizedOperation", f"You are not authorized to perform this operation. {msg}"
                if kind == "key":  # RDS using a customer key for the caller
                    return 400, "KMSKeyNotAccessibleFault", (
                        f"The KMS key [{arn}] does not exist, is not enabled or you do not have permissions "
                        f"to access it. {msg}"
                    )
                return 403, "AccessDenied", msg
        _TLS.authorized = decided
    return None


# ---------------------------------------------------------------------------
# install: hooks into server.py and moto
# ---------------------------------------------------------------------------


def install(server: Any) -> None:
    """Hook into server.py (step 4 verdicts, /config, /reset) and moto's IAM checks."""
    global S
    S = server

    # KMS speaks JSON (X-Amz-Target: TrentService.<Operation>, a JSON body): the
    # layer sees its operation as the request's Action (call log, fault rules,
    # the checks above), and answers its errors in KMS's JSON shape.
    class Req(server.Req):  # type: ignore[name-defined,misc]
        def __init__(self, environ: dict[str, Any]) -> None:
            super().__init__(environ)
            self.json_params: dict[str, Any] = {}
            target = environ.get("HTTP_X_AMZ_TARGET") or ""
            json_service = (self.service == "kms" and target.startswith("TrentService.")) or (
                self.service == "ssm" and target.startswith("AmazonSSM.")
            )
            if not self.action and json_service:
                self.action = target.split(".", 1)[1]
                try:
                    body = json.loads(self.body or b"{}")
                    self.json_params = body if isinstance(body, dict) else {}
                except ValueError:
                    pass

    server.Req = Req

    orig_error_response = server.error_response

    def error_response(service: str, code: str, message: str, status: int) -> tuple[int, bytes]:
        if service in ("kms", "ssm"):
            return status, json.dumps({"__type": code, "message": message}).encode("utf-8")
        return orig_error_response(service, code, message, status)

    server.error_response = error_response

    orig_send = server.send

    def send(start_response: Any, status: int, body: bytes, ctype: str = "text/xml") -> list[bytes]:
        if ctype == "text/xml" and body[:1] == b"{":
            ctype = "application/x-amz-json-1.1"
        return orig_send(start_response, status, body, ctype)

    server.send = send

    orig_check = server.check_pending_source

    def check_pending_source(req: Any) -> tuple[int, str, str] | None:
        _TLS.authorized = None
        _TLS.raw_body = req.body  # the bytes the client signed (see _create_aws_request)
        return orig_check(req) or check(req)

    server.check_pending_source = check_pending_source

    orig_view = server._config_view

    def _config_view() -> dict[str, Any]:
        return {**orig_view(), "enforce_tag_conditions": CONFIG["enforce_tag_conditions"]}

    server._config_view = _config_view

    orig_dispatch = server.dispatch

    def dispatch(method: str, route: str, environ: dict[str, Any]) -> tuple[int, Any]:
        new = None
        if route == "/config" and method == "POST":
            raw = server.read_body(environ)  # buffered: the original dispatch reads it again
            try:
                body = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError:
                body = {}
            if isinstance(body, dict) and "enforce_tag_conditions" in body:
                new = body["enforce_tag_conditions"]
                if not isinstance(new, bool):
                    raise server.BadRequest("enforce_tag_conditions must be true or false")
        status, payload = orig_dispatch(method, route, environ)
        if route == "/config" and method == "POST" and status == 200 and new is not None:
            CONFIG["enforce_tag_conditions"] = new
            payload["enforce_tag_conditions"] = new
        if route == "/reset" and method == "POST" and status == 200:
            CONFIG["enforce_tag_conditions"] = False
        return status, payload

    server.dispatch = dispatch

    from moto.core.exceptions import _RESTError
    from moto.iam import access_control

    class AwsShapedDenial(_RESTError):
        code = 403

        def __init__(self, service: str, err_code: str, message: str, status: int = 403) -> None:
            super().__init__(err_code, message)
            self.code = status
            self.description = server.error_response(service, err_code, message, status)[1].decode()
            self.content_type = "application/x-amz-json-1.1" if service in ("kms", "ssm") else "text/xml"

    def _raise_access_denied(self: Any) -> None:
        svc, arn, action = self._service, self._access_key.arn, self._action
        if svc in ("kms", "ssm"):  # KMS, SSM: AccessDeniedException, HTTP 400, JSON
            raise AwsShapedDenial(
                svc, "AccessDeniedException",
                f"User: {arn} is not authorized to perform: {action} because no identity-based policy allows the {action} action",
                400,
            )
        if svc == "ec2":
            raise AwsShapedDenial(
                "ec2", "UnauthorizedOperation",
                f"You are not authorized to perform this operation. User: {arn} is not authorized to perform: {action} "
                f"because no identity-based policy allows the {action} action",
            )
        raise AwsShapedDenial(svc, "AccessDenied", f"User: {arn} is not authorized to perform: {action}")

    access_control.IAMRequest._raise_access_denied = _raise_access_denied  # type: ignore[method-assign]

    orig_permitted = access_control.IAMRequestBase.check_action_permitted

    def check_action_permitted(self: Any, resource: str) -> None:
        if getattr(_TLS, "authorized", None) == self._action:
            return  # the layer evaluated actions, resources and tag conditions
        orig_permitted(self, resource)

    access_control.IAMRequestBase.check_action_permitted = check_action_permitted  # type: ignore[method-assign]

    # moto recomputes the SigV4 signature over a body it rebuilds from the parsed
    # form (Flask has consumed the stream): spaces become "+" where the Rust SDK
    # sent "%20", so every call with a space in a value (a Description, a Name)
    # fails with AuthFailure / SignatureDoesNotMatch. Sign the bytes the client
    # sent, even where the layer rewrote the body moto sees.
    orig_create = access_control.IAMRequestBase._create_aws_request

    def _create_aws_request(self: Any) -> Any:
        raw = getattr(_TLS, "raw_body", None)
        if raw:
            # the client's bytes, also when the layer rewrote the body moto
            # parses (CreateImage's snapshot TagSpecification, server.py)
            self._body = raw
        return orig_create(self)

    access_control.IAMRequestBase._create_aws_request = _create_aws_request  # type: ignore[method-assign]

    # Trust policies are the layer's (server.py step 3); moto's reading refuses
    # Principal "arn:aws:iam::A:root" for a role in the caller's own account.
    access_control.IAMRequestBase._is_assuming_role_operation = lambda self, resource_arn: False  # type: ignore[method-assign]
