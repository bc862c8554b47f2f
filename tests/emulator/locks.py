"""EBS Snapshot Lock, which moto 5.2.1 does not implement.

`LockSnapshot`, `UnlockSnapshot` and `DescribeLockedSnapshots` are answered by the
layer (after its IAM checks, step 4; moto's own IAM check does not see them), and a
`DeleteSnapshot` of a snapshot whose lock has not expired is refused. Lock times are
on the layer clock (`advance_clock_seconds` ages every lock at once). Behaviour, from
the EC2 API reference (LockSnapshot, UnlockSnapshot, LockedSnapshotsInfo):

* `LockMode` governance | compliance; `LockDuration` (days, 1-36500) or
  `ExpirationDate`, exactly one; `CoolOffPeriod` (hours, 1-72) only with compliance.
* Lock state: `governance`, `compliance-cooloff` (compliance within its cooling-off
  period), `compliance`, `expired`.
* Re-locking: governance and compliance-cooloff may change anything; compliance after
  the cooling-off period may only extend the expiry (else `InvalidParameterValue`).
* UnlockSnapshot: governance or compliance-cooloff; compliance → `InvalidParameterValue`.
* DeleteSnapshot of a locked snapshot: refused with code `SnapshotLocked` (HTTP 400).
  The EC2 error-code reference does not list the code AWS uses here; rolesnap does
  not depend on it (prune reads the lock state before deleting).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any
from xml.sax.saxutils import escape

S: Any = None  # the server module
# (account, region, snapshot id) -> lock record
LOCKS: dict[tuple[str, str, str], dict[str, Any]] = {}
NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def state(rec: dict[str, Any], now: dt.datetime) -> str:
    if now >= rec["expires"]:
        return "expired"
    if rec["mode"] == "governance":
        return "governance"
    if rec.get("cool_off_expires") and now < rec["cool_off_expires"]:
        return "compliance-cooloff"
    return "compliance"


def is_locked(account: str, region: str, sid: str) -> bool:
    rec = LOCKS.get((account, region, sid))
    return rec is not None and state(rec, S.STATE.layer_now()) != "expired"


def _info(key: tuple[str, str, str], rec: dict[str, Any], now: dt.datetime) -> str:
    fields = [
        ("ownerId", key[0]),
        ("snapshotId", key[2]),
        ("lockState", state(rec, now)),
        ("lockCreatedOn", _iso(rec["created"])),
        ("lockDurationStartTime", _iso(rec["created"])),
        ("lockExpiresOn", _iso(rec["expires"])),
    ]
    if rec.get("duration") is not None:
        fields.append(("lockDuration", str(rec["duration"])))
    if rec.get("cool_off") is not None:
        fields.append(("coolOffPeriod", str(rec["cool_off"])))
        fields.append(("coolOffPeriodExpiresOn", _iso(rec["cool_off_expires"])))
    return "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields)


def _ok(action: str, inner: str) -> tuple[int, bytes]:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{NS}"><requestId>{uuid.uuid4()}</requestId>{inner}</{action}Response>'
    return 200, body.encode()


def _err(code: str, msg: str, status: int = 400) -> tuple[int, bytes]:
    return S.error_response("ec2", code, msg, status)


def _snapshot_exists(req: Any, sid: str) -> bool:
    backend = S.ec2_backends[req.account][req.region]
    return sid in backend.snapshots


def handle(req: Any) -> tuple[int, bytes] | None:
    """The layer's answer to a lock call or to a DeleteSnapshot of a locked
    snapshot; None to go on to moto."""
    if req.service != "ec2" or req.action not in ("LockSnapshot", "UnlockSnapshot", "DescribeLockedSnapshots", "DeleteSnapshot"):
        return None
    p, now = req.params, S.STATE.layer_now()
    with S.STATE.lock:
        if req.action == "DeleteSnapshot":
            sid = p.get("SnapshotId", "")
            if p.get("DryRun") != "true" and is_locked(req.account, req.region, sid):
                return _err("SnapshotLocked", f"The snapshot '{sid}' is locked and can't be deleted.")
            return None
        if p.get("DryRun") == "true":
            return _err("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
        if req.action == "DescribeLockedSnapshots":
            ids = [v for k, v in p.items() if re.fullmatch(r"SnapshotId\.\d+", k)]
            states = [v for k, v in p.items() if re.fullmatch(r"Filter\.\d+\.Value\.\d+", k)
                      and p.get(k.split(".Value")[0] + ".Name") == "lock-state"]
            items = []
            for key, rec in sorted(LOCKS.items()):
                if key[0] != req.account or key[1] != req.region or (ids and key[2] not in ids):
                    continue
                if states and state(rec, now) not in states:
                    continue
                items.append(f"<item>{_info(key, rec, now)}</item>")
            return _ok("DescribeLockedSnapshots", f"<snapshotSet>{''.join(items)}</snapshotSet>")
        sid = p.get("SnapshotId", "")
        if not _snapshot_exists(req, sid):
            return _err("InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.")
        key = (req.account, req.region, sid)
        old = LOCKS.get(key)
        if req.action == "UnlockSnapshot":
            if old is None or state(old, now) == "expired":
                return _err("InvalidParameterValue", f"The snapshot '{sid}' is not locked.")
            if state(old, now) == "compliance":
                return _err("InvalidParameterValue", f"The snapshot '{sid}' is locked in compliance mode and its cooling-off period has expired; it can't be unlocked.")
            del LOCKS[key]
            return _ok("UnlockSnapshot", f"<snapshotId>{sid}</snapshotId>")
        mode = p.get("LockMode", "")
        if mode not in ("governance", "compliance"):
            return _err("InvalidParameterValue", "LockMode must be governance or compliance.")
        duration, expiry = p.get("LockDuration"), p.get("ExpirationDate")
        if (duration is None) == (expiry is None):
            return _err("InvalidParameterCombination", "Specify either LockDuration or ExpirationDate.")
        cool = p.get("CoolOffPeriod")
        if cool is not None and mode != "compliance":
            return _err("InvalidParameterCombination", "CoolOffPeriod is only valid in compliance mode.")
        if duration is not None:
            days = int(duration)
            if not 1 <= days <= 36500:
                return _err("InvalidParameterValue", "LockDuration must be between 1 and 36500 days.")
            expires = now + dt.timedelta(days=days)
        else:
            expires = S.parse_time(expiry)
            if expires <= now:
                return _err("InvalidParameterValue", "ExpirationDate must be in the future.")
        if cool is not None and not 1 <= int(cool) <= 72:
            return _err("InvalidParameterValue", "CoolOffPeriod must be between 1 and 72 hours.")
        if old is not None and state(old, now) == "compliance" and (mode != "compliance" or expires < old["expires"]):
            return _err("InvalidParameterValue", f"The snapshot '{sid}' is locked in compliance mode; the lock can only be extended.")
        rec = {
            "mode": mode,
            "created": old["created"] if old is not None and state(old, now) != "expired" else now,
            "expires": expires,
            "duration": int(duration) if duration is not None else None,
            "cool_off": int(cool) if cool is not None else None,
            "cool_off_expires": now + dt.timedelta(hours=int(cool)) if cool is not None else None,
        }
        if old is not None and state(old, now) == "compliance":
            rec["cool_off"], rec["cool_off_expires"] = old.get("cool_off"), old.get("cool_off_expires")
        LOCKS[key] = rec
        return _ok("LockSnapshot", _info(key, rec, now))


def reset() -> None:
    LOCKS.clear()


def install(server: Any) -> None:
    global S
    S = server
    orig_dispatch = server.dispatch

    def dispatch(method: str, route: str, environ: dict[str, Any]) -> tuple[int, Any]:
        status, payload = orig_dispatch(method, route, environ)
        if route == "/reset" and method == "POST" and status == 200:
            reset()
        return status, payload

    server.dispatch = dispatch
