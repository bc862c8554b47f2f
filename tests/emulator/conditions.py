"""Tag conditions of IAM policies, and moto's IAM enforcement made AWS-like.

moto 5.2.1 can check identity policies action by action (`POST /moto-api/reset-auth`,
body `0`), but it evaluates no `Condition` on a resource tag and matches every EC2/RDS
action against the resource `*`. Under `rolesnap policy tenant`'s permissions that lets
the tenant role delete an untagged snapshot (AWS refuses it) and refuses DetachVolume
(AWS allows it: the volume side needs `_GX_BACKUP_`, the instance side nothing).

`install(server)` (called once by server.py's build_app) adds, without touching moto's
files:

* **Tag conditions** (switch: `POST /_harness/config {"enforce_tag_conditions": true}`,
  off by default and after `POST /_harness/reset`). For the delete-type calls in
  `RESOURCES` signed with assumed-role (tenant) credentials, the layer evaluates the
  role's own policies (inline and attached, as stored in moto's IAM backend) for every
  resource the call touches: Action/NotAction, Resource/NotResource (ARN wildcards) and
  the conditions on resource tags (`ec2:ResourceTag/K`, `aws:ResourceTag/K`,
  `rds:snapshot-tag/K`, `rds:cluster-snapshot-tag/K`, `rds:db-tag/K`, `rds:cluster-tag/K`),
  with the tags looked up in moto's backends. An explicit Deny wins; every resource needs
  an Allow. Refused: EC2 `UnauthorizedOperation` / RDS `AccessDenied`, HTTP 403, counted
  as `denied`. Allowed: moto's own action check is skipped for that one request (it
  cannot match resource ARNs); its signature check still runs. A resource that does not
  exist is left to moto (its NotFound error).
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
    "DeleteDBSnapshot": ("rds", lambda p: [("db-snapshot", p.get("DBSnapshotIdentifier", ""))]),
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


def _tag_value(key: str, kind: str, tags: dict[str, str]) -> tuple[bool, str | None]:
    """(known key?, value or None when absent)."""
    low = key.lower()
    for prefix, kinds in TAG_KEYS.items():
        if low.startswith(prefix):
            if kinds is not None and kind not in kinds:
                return True, None
            return True, tags.get(key[len(prefix):])
    return False, None


def _operator_holds(op: str, expected: Any, value: str | None) -> bool | None:
    """One condition operator on one (single-valued) key; None = operator not evaluated."""
    base = op.split(":", 1)[1] if ":" in op else op  # ForAnyValue:/ForAllValues:
    qualifier = op.split(":", 1)[0] if ":" in op else ""
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[: -len("IfExists")]
    if base == "Null":
        want_absent = str(_list(expected)[0]).lower() == "true"
        return (value is None) == want_absent
    if value is None:
        if if_exists or qualifier == "ForAllValues":
            return True
        return base.startswith("StringNot")
    wanted = [str(e) for e in _list(expected)]
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


def conditions_hold(stmt: dict[str, Any], kind: str, tags: dict[str, str]) -> bool:
    """Tag conditions are evaluated; other keys and operators are not (treated as met,
    as moto does)."""
    for op, entries in (stmt.get("Condition") or {}).items():
        if not isinstance(entries, dict):
            continue
        for key, expected in entries.items():
            known, value = _tag_value(str(key), kind, tags)
            if not known:
                continue
            if _operator_holds(str(op), expected, value) is False:
                return False
    return True


def _statement_applies(stmt: dict[str, Any], action: str, arn: str, kind: str, tags: dict[str, str]) -> bool:
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
    return conditions_hold(stmt, kind, tags)


def decide(policies: list[dict[str, Any]], action: str, arn: str, kind: str, tags: dict[str, str]) -> bool:
    allowed = False
    for doc in policies:
        for stmt in _list(doc.get("Statement")):
            if not isinstance(stmt, dict) or not _statement_applies(stmt, action, arn, kind, tags):
                continue
            if stmt.get("Effect") == "Deny":
                return False
            if stmt.get("Effect") == "Allow":
                allowed = True
    return allowed


def check(req: Any) -> tuple[int, str, str] | None:
    """The layer's verdict on a tag-conditioned call, or None to go on to moto."""
    _TLS.authorized = None
    if not CONFIG["enforce_tag_conditions"] or req.action not in RESOURCES:
        return None
    service, targets = RESOURCES[req.action]
    if req.service != service or not req.key_is_temp or ":assumed-role/" not in (req.principal_arn or ""):
        return None
    with S.STATE.lock:  # moto's models may be changing in another thread
        policies = role_policies(req.principal_arn)
        if policies is None:
            return None
        found = resources_of(req, service, targets(req.params))
        if not found:
            return None  # nothing there: moto answers NotFound
        action = f"{service}:{req.action}"
        for kind, arn, tags in found:
            if not decide(policies, action, arn, kind, tags):
                msg = (
                    f"User: {req.principal_arn} is not authorized to perform: {action} on resource: {arn} "
                    f"because no identity-based policy allows the {action} action"
                )
                if service == "ec2":
                    return 403, "UnauthorizedOperation", f"You are not authorized to perform this operation. {msg}"
                return 403, "AccessDenied", msg
        if len(found) == len(targets(req.params)):
            _TLS.authorized = action
    return None


# ---------------------------------------------------------------------------
# install: hooks into server.py and moto
# ---------------------------------------------------------------------------


def install(server: Any) -> None:
    """Hook into server.py (step 4 verdicts, /config, /reset) and moto's IAM checks."""
    global S
    S = server

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

        def __init__(self, service: str, err_code: str, message: str) -> None:
            super().__init__(err_code, message)
            self.description = server.error_response(service, err_code, message, 403)[1].decode()
            self.content_type = "text/xml"

    def _raise_access_denied(self: Any) -> None:
        svc, arn, action = self._service, self._access_key.arn, self._action
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
    # fails with AuthFailure / SignatureDoesNotMatch. Sign the bytes the client sent.
    orig_create = access_control.IAMRequestBase._create_aws_request

    def _create_aws_request(self: Any) -> Any:
        raw = getattr(_TLS, "raw_body", None)
        if raw and not self._body:
            self._body = raw
        return orig_create(self)

    access_control.IAMRequestBase._create_aws_request = _create_aws_request  # type: ignore[method-assign]

    # Trust policies are the layer's (server.py step 3); moto's reading refuses
    # Principal "arn:aws:iam::A:root" for a role in the caller's own account.
    access_control.IAMRequestBase._is_assuming_role_operation = lambda self, resource_arn: False  # type: ignore[method-assign]
