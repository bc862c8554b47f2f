"""Cross-account sharing of snapshots and KMS facts, which moto 5.2.1 lacks or gets wrong.

moto keeps one backend per account; a snapshot of account A is invisible to account B,
whatever ModifySnapshotAttribute said. `install(server)` (called once by server.py's
build_app) patches moto's models and response handlers in-process, so that the vault
flow of rolesnap works as on AWS and is refused where AWS refuses it (README.md,
"Cross-account sharing and KMS (`shares.py`)"):

* KMS: keys behind an `alias/aws/...` alias are AWS-managed (`KeyManager: AWS`); an
  encrypted volume, snapshot, DB instance or cluster without KmsKeyId uses the account's
  `alias/aws/ebs` / `alias/aws/rds` key, and its `KmsKeyId` is that key's ARN (moto left
  EBS snapshots without a key and RDS with the literal "default_kms_key_id").
* A key policy model: key K of account A grants account B when an Allow statement names
  B (`*`, `B`, `arn:aws:iam::B:root`, `arn:aws:iam::B:role/...`/`user/...`) and its
  actions cover both kms:Decrypt and kms:CreateGrant (wildcards count).
* EC2: ModifySnapshotAttribute (both request forms), DescribeSnapshots of snapshots
  shared with the caller, CopySnapshot of a snapshot of another account,
  ModifyImageAttribute refusal for AWS-managed keys, CopyImage of a shared AMI.
* RDS: ModifyDBSnapshotAttribute / ModifyDBClusterSnapshotAttribute refusal for
  AWS-managed keys, DescribeDB(Cluster)Snapshots by another account's ARN and with
  IncludeShared, CopyDB(Cluster)Snapshot of a snapshot of another account.

Errors are raised as moto's own client errors, inside moto (after the layer's IAM
checks), so they come in the service's shape and count as `error` in the call log.
"""

from __future__ import annotations

import json
import re
from typing import Any

S: Any = None  # the server module

EBS_MANAGED_DESCRIPTION = "Default master key that protects my EBS volumes when no other key is defined"
RDS_MANAGED_DESCRIPTION = "Default master key that protects my RDS database volumes when no other key is defined"

# The codes and messages of the refusals (README.md lists them with their sources).
EBS_DEFAULT_KEY_SHARE = ("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
AMI_DEFAULT_KEY_SHARE = ("InvalidParameter", "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.")
RDS_DEFAULT_KEY_SHARE = (
    "InvalidParameterValue",
    "The snapshot is encrypted with the default AWS KMS key (aws/rds) and can't be shared. "
    "Copy it with a customer managed key and share the copy.",
)


# ---------------------------------------------------------------------------
# KMS: keys, managed keys, the key-policy model
# ---------------------------------------------------------------------------


def _kms(account: str, region: str) -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[account][region]


def find_key(account: str, region: str, ident: str | None) -> Any:
    """The moto Key named by a key id, key ARN, alias name or alias ARN, or None.
    An ARN names its own account and region."""
    if not ident:
        return None
    m = re.match(r"^arn:aws[\w-]*:kms:([^:]+):(\d{12}):", ident)
    if m:
        region, account = m.group(1), m.group(2)
    try:
        kb = _kms(account, region)
        kid = kb.any_id_to_key_id(ident)
        return kb.keys.get(kid) if kid else None
    except Exception:
        return None


def managed_key_arn(account: str, region: str, service: str) -> str:
    """The ARN of the account's AWS-managed key `alias/aws/<service>` (created on first use)."""
    kb = _kms(account, region)
    alias = f"alias/aws/{service}"
    if not kb.alias_exists(alias):
        key = kb.create_key(
            policy=None, key_usage="ENCRYPT_DECRYPT", key_spec="SYMMETRIC_DEFAULT",
            description=EBS_MANAGED_DESCRIPTION if service == "ebs" else RDS_MANAGED_DESCRIPTION, tags=None,
        )
        kb.create_alias(key.id, alias)
    return kb.describe_key(alias).arn


def key_arn(account: str, region: str, ident: str | None) -> str | None:
    key = find_key(account, region, ident)
    return key.arn if key is not None else ident


def is_managed(account: str, region: str, ident: str | None) -> bool:
    key = find_key(account, region, ident)
    return key is not None and getattr(key, "key_manager", "") == "AWS"


def _list(x: Any) -> list[Any]:
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def _principal_names(principal: str, account: str) -> bool:
    p = str(principal)
    return (
        p == "*"
        or p == account
        or p == f"arn:aws:iam::{account}:root"
        or re.fullmatch(rf"arn:aws[\w-]*:iam::{account}:(role|user)/.+", p) is not None
    )


def _action_covers(actions: Any, wanted: str) -> bool:
    for a in _list(actions):
        rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in str(a))
        if re.fullmatch(rx, wanted, re.IGNORECASE):
            return True
    return False


def key_grants(key: Any, account: str) -> bool:
    """Key policy model: an Allow statement whose principal names `account` and whose
    actions cover kms:Decrypt and kms:CreateGrant. The key's own account is always
    granted (its default policy)."""
    if key is None:
        return False
    if key.account_id == account:
        return True
    try:
        doc = json.loads(key.policy) if isinstance(key.policy, str) else dict(key.policy or {})
    except Exception:
        return False
    for st in _list(doc.get("Statement")):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        pr = st.get("Principal")
        names = [pr] if isinstance(pr, str) else _list((pr or {}).get("AWS"))
        if not any(_principal_names(n, account) for n in names):
            continue
        acts = st.get("Action")
        if _action_covers(acts, "kms:Decrypt") and _action_covers(acts, "kms:CreateGrant"):
            return True
    return False


# ---------------------------------------------------------------------------
# Helpers over moto's backends
# ---------------------------------------------------------------------------


def _accounts(bd: Any) -> list[str]:
    return list(dict.keys(bd))


def _region_backend(bd: Any, account: str, region: str) -> Any:
    if not dict.__contains__(bd, account):
        return None
    per = dict.__getitem__(bd, account)
    return dict.get(per, region)


def _truthy(v: Any) -> bool:
    return str(v).lower() == "true"


def snapshot_shared_with(snap: Any, account: str) -> bool:
    return account in snap.create_volume_permission_userids or "all" in snap.create_volume_permission_groups


def find_foreign_snapshot(me: str, region: str, sid: str) -> Any:
    """A snapshot `sid` of another account in `region` (shared or not), or None."""
    for acct in _accounts(S.ec2_backends):
        if acct == me:
            continue
        b = _region_backend(S.ec2_backends, acct, region)
        if b is not None and sid in b.snapshots:
            return b.snapshots[sid]
    return None


def shared_snapshots(me: str, region: str) -> list[Any]:
    out = []
    for acct in _accounts(S.ec2_backends):
        if acct == me:
            continue
        b = _region_backend(S.ec2_backends, acct, region)
        if b is None:
            continue
        out.extend(s for s in list(b.snapshots.values()) if snapshot_shared_with(s, me))
    return out


def _query_list(qs: dict[str, Any], pattern: str) -> list[str]:
    out = []
    for k in sorted(qs, key=lambda k: (len(k), k)):
        if re.fullmatch(pattern, k):
            v = qs[k]
            out.extend(v if isinstance(v, list) else [v])
    return out


def rds_shared_with(snap: Any, account: str) -> bool:
    vals = snap.attributes.get("restore", []) if hasattr(snap, "attributes") else []
    return account in vals or "all" in vals


def _rds_arn(ident: str) -> tuple[str, str, str, str] | None:
    """arn:aws:rds:REGION:ACCOUNT:snapshot|cluster-snapshot:NAME -> (region, account, type, name)."""
    m = re.fullmatch(r"arn:aws[\w-]*:rds:([^:]+):(\d{12}):(snapshot|cluster-snapshot):(.+)", ident or "")
    return (m.group(1), m.group(2), m.group(3), m.group(4)) if m else None


# ---------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------


def install(server: Any) -> None:
    global S
    S = server
    _install_kms()
    _install_ebs()
    _install_ami()
    _install_rds()
    _install_pending()


def _install_kms() -> None:
    from moto.kms import models as kms_models

    orig_alias = kms_models.KmsBackend.create_alias

    def create_alias(self: Any, target_key_id: str, alias_name: str) -> Any:
        alias = orig_alias(self, target_key_id, alias_name)
        if alias_name.startswith("alias/aws/"):
            key = self.keys.get(self.get_key_id(target_key_id))
            if key is not None:
                key.key_manager = "AWS"
        return alias

    kms_models.KmsBackend.create_alias = create_alias  # type: ignore[method-assign]

    # Speed only: moto makes a 2048-bit RSA private key for every key, symmetric ones
    # too (~0.1 s each; the seed makes 10 keys, every encrypted resource may make a
    # managed one). A symmetric key never signs (AWS refuses Sign/GetPublicKey for it),
    # so it gets its RSA key only if something asks for it.
    orig_gen = kms_models.generate_private_key

    class LazyPrivateKey:
        def __init__(self, spec: str) -> None:
            self._spec = spec
            self._real: Any = None

        def __getattr__(self, name: str) -> Any:
            if self._real is None:
                self._real = orig_gen(self._spec)
            return getattr(self._real, name)

    def generate_private_key(key_spec: str) -> Any:
        if key_spec in ("SYMMETRIC_DEFAULT", None, ""):
            return LazyPrivateKey(key_spec)
        return orig_gen(key_spec)

    kms_models.generate_private_key = generate_private_key


def _install_ebs() -> None:
    from moto.core.responses import ActionResult, EmptyResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models import elastic_block_store as ebs
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.ec2.utils import generic_filter, random_snapshot_id

    # Volumes: KmsKeyId as the key's ARN (AWS answers the ARN whatever form was given).
    orig_create_volume = ebs.EBSBackend.create_volume

    def create_volume(self: Any, *a: Any, **kw: Any) -> Any:
        vol = orig_create_volume(self, *a, **kw)
        if vol.encrypted and vol.kms_key_id:
            vol.kms_key_id = key_arn(self.account_id, self.region_name, vol.kms_key_id)
        return vol

    ebs.EBSBackend.create_volume = create_volume  # type: ignore[method-assign]

    # Snapshots of an encrypted volume carry its key (moto leaves KmsKeyId empty).
    orig_create_snapshot = ebs.EBSBackend.create_snapshot

    def create_snapshot(self: Any, volume_id: str, *a: Any, **kw: Any) -> Any:
        snap = orig_create_snapshot(self, volume_id, *a, **kw)
        vol = self.volumes.get(volume_id)
        if snap.encrypted and not snap.kms_key_id and vol is not None:
            snap.kms_key_id = vol.kms_key_id or managed_key_arn(self.account_id, self.region_name, "ebs")
        return snap

    ebs.EBSBackend.create_snapshot = create_snapshot  # type: ignore[method-assign]

    def not_found(sid: str) -> Exception:
        return EC2ClientError("InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.")

    # ModifySnapshotAttribute: UserId.N/Group.N with OperationType, and
    # CreateVolumePermission.Add.N.UserId / .Remove.N.UserId (and .Group).
    def modify_snapshot_attribute(self: Any) -> Any:
        sid = self._get_param("SnapshotId")
        qs = self.querystring
        op = self._get_param("OperationType")
        users = _query_list(qs, r"UserId\.\d+")
        groups = _query_list(qs, r"(?:UserGroup|Group)\.\d+")
        add_u = _query_list(qs, r"CreateVolumePermission\.Add\.\d+\.UserId") + (users if op == "add" else [])
        add_g = _query_list(qs, r"CreateVolumePermission\.Add\.\d+\.Group") + (groups if op == "add" else [])
        rem_u = _query_list(qs, r"CreateVolumePermission\.Remove\.\d+\.UserId") + (users if op == "remove" else [])
        rem_g = _query_list(qs, r"CreateVolumePermission\.Remove\.\d+\.Group") + (groups if op == "remove" else [])
        self.error_on_dryrun()
        snap = self.ec2_backend.get_snapshot(sid) if sid in self.ec2_backend.snapshots else None
        if snap is None:
            raise not_found(sid)
        if (add_u or add_g) and snap.encrypted:
            if is_managed(self.ec2_backend.account_id, self.ec2_backend.region_name, snap.kms_key_id):
                raise EC2ClientError(*EBS_DEFAULT_KEY_SHARE)
            if add_g:
                raise EC2ClientError("InvalidParameterValue", "Encrypted snapshots cannot be made public.")
        if add_u or add_g:
            self.ec2_backend.add_create_volume_permission(sid, user_ids=add_u, groups=add_g)
        if rem_u or rem_g:
            self.ec2_backend.remove_create_volume_permission(sid, user_ids=rem_u, groups=rem_g)
        return EmptyResult()

    ElasticBlockStore.modify_snapshot_attribute = modify_snapshot_attribute  # type: ignore[method-assign]

    # DescribeSnapshots: snapshots shared with the caller, by id, by RestorableBy
    # (self or the caller's id) or by Owner (another account). Plain and
    # Owner=self listings stay the caller's own.
    orig_describe = ElasticBlockStore.describe_snapshots

    def describe_snapshots(self: Any) -> Any:
        backend = self.ec2_backend
        me, region = backend.account_id, backend.region_name
        qs = self.querystring
        ids = _query_list(qs, r"SnapshotId\.\d+")
        owners = {me if o == "self" else o for o in _query_list(qs, r"Owner\.\d+")}
        restorable = {me if r == "self" else r for r in _query_list(qs, r"RestorableBy\.\d+")}
        foreign_ids = [i for i in ids if i not in backend.snapshots]
        foreign_owners = {o for o in owners if re.fullmatch(r"\d{12}", o) and o != me}
        if not foreign_ids and not foreign_owners and me not in restorable:
            return orig_describe(self)
        self.error_on_dryrun()
        own: list[Any] = []
        if not owners or me in owners:
            own = [s for s in backend.snapshots.values() if not ids or s.id in ids]
        shared = [
            s for s in shared_snapshots(me, region)
            if (not ids or s.id in ids) and (not owners or s.owner_id in owners)
        ]
        found = own + shared
        if ids:
            seen = {s.id for s in found}
            for i in ids:
                if i not in seen:
                    raise not_found(i)
        filters = self._filters_from_querystring()
        if filters:
            found = generic_filter(filters, found)
        return ActionResult({"Snapshots": found})

    ElasticBlockStore.describe_snapshots = describe_snapshots  # type: ignore[method-assign]

    # CopySnapshot: KmsKeyId/Encrypted as AWS, and a source owned by another account.
    def copy_snapshot(self: Any) -> Any:
        backend = self.ec2_backend
        me, dest = backend.account_id, backend.region_name
        sid = self._get_param("SourceSnapshotId")
        src_region = self._get_param("SourceRegion") or dest
        description = self._get_param("Description")
        kms_given = self._get_param("KmsKeyId")
        encrypted_param = _truthy(self._get_param("Encrypted"))
        tags = self._parse_tag_specification().get("snapshot", {})
        self.error_on_dryrun()
        own_src = _region_backend(S.ec2_backends, me, src_region)
        if own_src is not None and sid in own_src.snapshots:
            source = own_src.snapshots[sid]
            snap = backend.copy_snapshot(source_snapshot_id=sid, source_region=src_region,
                                         description=description, kms_key_id=kms_given)
            if kms_given:
                snap.kms_key_id = key_arn(me, dest, kms_given)
            snap.encrypted = bool(source.encrypted or encrypted_param or kms_given)
            if snap.encrypted and not snap.kms_key_id:
                same_region = src_region == dest
                snap.kms_key_id = source.kms_key_id if (same_region and source.kms_key_id) else managed_key_arn(me, dest, "ebs")
        else:
            source = find_foreign_snapshot(me, src_region, sid)
            if source is None or not snapshot_shared_with(source, me):
                raise not_found(sid)
            owner = source.owner_id
            if source.encrypted:
                skey = find_key(owner, src_region, source.kms_key_id)
                if skey is None or getattr(skey, "key_manager", "") == "AWS" or not key_grants(skey, me):
                    raise EC2ClientError(
                        "InvalidParameter",
                        f"The source snapshot KMS key [{source.kms_key_id}] does not exist, is not enabled "
                        f"or you do not have permissions to access it.",
                    )
            kms_arn = None
            if kms_given:
                key = find_key(me, dest, kms_given)
                if key is None or key.account_id != me or key.region != dest:
                    raise EC2ClientError("InvalidParameterValue", f"Invalid KmsKeyId: {kms_given} is not a KMS key of account {me} in {dest}.")
                kms_arn = key.arn
            encrypted = bool(source.encrypted or encrypted_param or kms_arn)
            if encrypted and kms_arn is None:
                kms_arn = managed_key_arn(me, dest, "ebs")
            new_id = random_snapshot_id()
            snap = ebs.Snapshot(backend, new_id, volume=source.volume, description=description,
                                encrypted=encrypted, kms_key_id=kms_arn)
            backend.snapshots[new_id] = snap
        snap.add_tags(tags)
        return ActionResult({"SnapshotId": snap.id, "Tags": snap.tag_set})

    ElasticBlockStore.copy_snapshot = copy_snapshot  # type: ignore[method-assign]


def _install_ami() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models import amis as ec2_amis
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.utils import random_ami_id

    def image_snapshots(backend: Any, ami: Any) -> list[Any]:
        out = []
        snap = getattr(ami, "ebs_snapshot", None)
        if snap is not None:
            out.append(snap)
        return out

    orig_modify = AmisResponse.modify_image_attribute

    def modify_image_attribute(self: Any) -> Any:
        qs = self.querystring
        adds = _query_list(qs, r"LaunchPermission\.Add\.\d+\.(?:UserId|Group)")
        if self._get_param("OperationType") == "add":
            adds += _query_list(qs, r"UserId\.\d+") + _query_list(qs, r"UserGroup\.\d+")
        ami = self.ec2_backend.amis.get(self._get_param("ImageId"))
        if adds and ami is not None:
            b = self.ec2_backend
            for snap in image_snapshots(b, ami):
                if snap.encrypted and is_managed(b.account_id, b.region_name, snap.kms_key_id):
                    raise EC2ClientError(*AMI_DEFAULT_KEY_SHARE)
        return orig_modify(self)

    AmisResponse.modify_image_attribute = modify_image_attribute  # type: ignore[method-assign]

    orig_copy = AmisResponse.copy_image

    def copy_image(self: Any) -> Any:
        backend = self.ec2_backend
        me, dest = backend.account_id, backend.region_name
        iid = self._get_param("SourceImageId")
        src_region = self._get_param("SourceRegion") or dest
        own = _region_backend(S.ec2_backends, me, src_region)
        if own is not None and iid in own.amis:
            return orig_copy(self)
        self.error_on_dryrun()
        source = None
        for acct in _accounts(S.ec2_backends):
            b = _region_backend(S.ec2_backends, acct, src_region)
            if acct != me and b is not None and iid in b.amis and iid not in S.DEFAULT_AMI_IDS:
                source = b.amis[iid]
        if source is None:
            return orig_copy(self)  # moto's answer for an unknown image
        perms = getattr(source, "launch_permissions", []) or []
        shared = any(p.get("UserId") == me or p.get("Group") == "all" for p in perms)
        snaps = image_snapshots(None, source)
        if not shared:
            raise EC2ClientError("InvalidAMIID.NotFound", f"The image id '[{iid}]' does not exist")
        for s in snaps:
            if not snapshot_shared_with(s, me):
                raise EC2ClientError("InvalidRequest", f"You do not have permission to access the storage of this ami ({s.id} is not shared with {me}).")
            if s.encrypted:
                skey = find_key(source.ec2_backend.account_id, src_region, s.kms_key_id)
                if skey is None or getattr(skey, "key_manager", "") == "AWS" or not key_grants(skey, me):
                    raise EC2ClientError("InvalidParameter", f"The source snapshot KMS key [{s.kms_key_id}] does not exist, is not enabled or you do not have permissions to access it.")
        kms_given = self._get_param("KmsKeyId")
        kms_arn = None
        if kms_given:
            key = find_key(me, dest, kms_given)
            if key is None or key.account_id != me or key.region != dest:
                raise EC2ClientError("InvalidParameterValue", f"Invalid KmsKeyId: {kms_given} is not a KMS key of account {me} in {dest}.")
            kms_arn = key.arn
        ami_id = random_ami_id()
        ami = ec2_amis.Ami(backend, ami_id, instance=None, source_ami=source,
                           name=self._get_param("Name"), description=self._get_param("Description"))
        ami.owner_id = me
        # The copy's own snapshot (moto made a placeholder in this account, through
        # the Snapshot model, so holds apply): made a copy of the source's.
        ns = getattr(ami, "ebs_snapshot", None)
        for s in snaps[:1]:
            if ns is None:
                break
            enc = bool(s.encrypted or _truthy(self._get_param("Encrypted")) or kms_arn)
            ns.volume = s.volume
            ns.encrypted = enc
            ns.kms_key_id = kms_arn or (managed_key_arn(me, dest, "ebs") if enc else None)
            ns.description = f"Copied for DestinationAmi {ami_id} from SourceAmi {iid} for SourceSnapshot {s.id}"
        backend.amis[ami_id] = ami
        return ActionResult({"ImageId": ami_id})

    AmisResponse.copy_image = copy_image  # type: ignore[method-assign]


def _install_rds() -> None:
    from moto.core.responses import ActionResult
    from moto.rds import models as rds
    from moto.rds.exceptions import DBClusterSnapshotNotFoundError, DBSnapshotNotFoundFault, RDSClientError
    from moto.rds.responses import RDSResponse

    # Encrypted without KmsKeyId: the account's aws/rds key (moto: "default_kms_key_id").
    def fix_key(obj: Any) -> None:
        try:
            if getattr(obj, "storage_encrypted", False):
                k = obj.kms_key_id
                if not k or k == "default_kms_key_id":
                    obj.kms_key_id = managed_key_arn(obj.account_id, obj.region, "rds")
                else:
                    obj.kms_key_id = key_arn(obj.account_id, obj.region, k)
        except Exception as exc:  # never break moto
            print(f"harness: rds key fix failed: {exc!r}", file=S.sys.stderr)

    for cls in (rds.DBInstance, rds.DBCluster):
        orig_init = cls.__init__

        def __init__(self: Any, *a: Any, _orig: Any = orig_init, **kw: Any) -> None:
            _orig(self, *a, **kw)
            fix_key(self)

        cls.__init__ = __init__  # type: ignore[method-assign]

    kinds = {
        "db": (rds.DBSnapshot, DBSnapshotNotFoundFault, "snapshot", "database_snapshots"),
        "cluster": (rds.DBClusterSnapshot, DBClusterSnapshotNotFoundError, "cluster-snapshot", "cluster_snapshots"),
    }

    def foreign(self: Any, ident: str, kind: str) -> Any:
        """The snapshot of another account named by an ARN, if shared with self's
        account; raises NotFound otherwise; None when `ident` is not another
        account's ARN."""
        parsed = _rds_arn(ident)
        _cls, nf, arn_type, table = kinds[kind]
        if parsed is None or parsed[1] == self.account_id or parsed[2] != arn_type:
            return None
        b = _region_backend(S.rds_backends, parsed[1], parsed[0])
        snap = getattr(b, table).get(parsed[3]) if b is not None else None
        if snap is None or not rds_shared_with(snap, self.account_id):
            raise nf(ident)
        return snap

    # Sharing: refused for the AWS-managed key, and "all" for an encrypted snapshot.
    def guard_share(kind: str) -> Any:
        meth = "modify_db_snapshot_attribute" if kind == "db" else "modify_db_cluster_snapshot_attribute"
        orig = getattr(rds.RDSBackend, meth)
        table = kinds[kind][3]

        def modify(self: Any, *a: Any, **kw: Any) -> Any:
            ident = kw.get("db_snapshot_identifier") or kw.get("db_cluster_snapshot_identifier") or (a[0] if a else "")
            adds = kw.get("values_to_add") or []
            snap = getattr(self, table).get(ident)
            if snap is not None and adds and getattr(snap, "encrypted", False):
                if is_managed(self.account_id, self.region_name, snap.kms_key_id):
                    raise RDSClientError(*RDS_DEFAULT_KEY_SHARE)
                if "all" in adds:
                    raise RDSClientError("InvalidParameterValue", "Encrypted snapshots can't be shared with all accounts.")
            return orig(self, *a, **kw)

        setattr(rds.RDSBackend, meth, modify)

    guard_share("db")
    guard_share("cluster")

    # Describe: another account's ARN (shared with the caller), IncludeShared.
    def describe(kind: str) -> Any:
        meth = "describe_db_snapshots" if kind == "db" else "describe_db_cluster_snapshots"
        orig = getattr(RDSResponse, meth)
        ident_param = "DBSnapshotIdentifier" if kind == "db" else "DBClusterSnapshotIdentifier"
        key = "DBSnapshots" if kind == "db" else "DBClusterSnapshots"
        shared_of = "get_shared_db_snapshots" if kind == "db" else "get_shared_db_cluster_snapshots"

        def handler(self: Any) -> Any:
            ident = self.params.get(ident_param)
            if ident:
                snap = foreign(self.backend, ident, kind)
                if snap is not None:
                    return ActionResult({key: [snap]})
            result = orig(self)
            if _truthy(self.params.get("IncludeShared")) and not self.params.get("SnapshotType") and not ident:
                mine = list(result.result.get(key, [])) if hasattr(result, "result") else None
                if mine is not None:
                    extra = [s for s in getattr(self.backend, shared_of)() if s not in mine]
                    return ActionResult({key: mine + extra})
            return result

        setattr(RDSResponse, meth, handler)

    describe("db")
    describe("cluster")

    # Copy of a snapshot of another account (RDS User Guide, "Copying a DB snapshot"
    # and "Sharing a DB snapshot"; Aurora User Guide, "Copying a DB cluster snapshot"):
    # * the source is named by its ARN and must be shared with the caller;
    # * an encrypted shared snapshot needs KmsKeyId (a key of the caller in this
    #   region), its key must grant the caller, and it can only be copied within
    #   its own region ("you can copy a shared DB snapshot across Regions if the
    #   snapshot is unencrypted"; encrypted: same Region only).
    def copy(kind: str) -> Any:
        meth = "copy_db_snapshot" if kind == "db" else "copy_db_cluster_snapshot"
        orig = getattr(rds.RDSBackend, meth)
        src_kw = "source_db_snapshot_identifier" if kind == "db" else "source_db_cluster_snapshot_identifier"
        tgt_kw = "target_db_snapshot_identifier" if kind == "db" else "target_db_cluster_snapshot_identifier"
        cls, _nf, _t, table = kinds[kind]

        def copier(self: Any, *a: Any, **kw: Any) -> Any:
            src = kw.get(src_kw) or (a[0] if a else "")
            source = foreign(self, src, kind)
            if source is None:
                snap = orig(self, *a, **kw)
                if snap.kms_key_id:
                    snap.kms_key_id = key_arn(self.account_id, self.region_name, snap.kms_key_id)
                return snap
            target = kw.get(tgt_kw) or (a[1] if len(a) > 1 else "")
            me, region = self.account_id, self.region_name
            if target.lower() in getattr(self, table):
                raise (rds.DBSnapshotAlreadyExistsError(target) if kind == "db" else rds.DBClusterSnapshotAlreadyExistsError(target))
            owner, src_region = source.account_id, _rds_arn(src)[0]  # type: ignore[index]
            kms_given = kw.get("kms_key_id")
            if source.encrypted:
                if src_region != region:
                    raise RDSClientError("InvalidParameterCombination",
                                         "An encrypted snapshot shared from another account can only be copied within its own Region.")
                if not kms_given:
                    raise RDSClientError("InvalidParameterValue",
                                         "KmsKeyId must be specified to copy an encrypted snapshot shared from another account.")
                skey = find_key(owner, src_region, source.kms_key_id)
                if skey is None or getattr(skey, "key_manager", "") == "AWS" or not key_grants(skey, me):
                    raise RDSClientError("KMSKeyNotAccessibleFault",
                                         f"The source snapshot KMS key [{source.kms_key_id}] does not exist, is not enabled "
                                         f"or you do not have permissions to access it.")
            kms_arn = None
            if kms_given:
                key = find_key(me, region, kms_given)
                if key is None or key.account_id != me or key.region != region:
                    raise RDSClientError("KMSKeyNotAccessibleFault",
                                         f"The target KMS key [{kms_given}] does not exist, is not enabled or you do not have permissions to access it.")
                kms_arn = key.arn
            tags = kw.get("tags") or []
            if kind == "db":
                snap = rds.DBSnapshot(self, source.database, target, tags=tags, kms_key_id=kms_arn,
                                      original_created_at=source.original_snapshot_create_time)
                self.database_snapshots[snap.db_snapshot_identifier] = snap
            else:
                snap = rds.DBClusterSnapshot(self, source.cluster, target, tags=tags, kms_key_id=kms_arn)
                self.cluster_snapshots[snap.db_cluster_snapshot_identifier] = snap
            return snap

        setattr(rds.RDSBackend, meth, copier)

    copy("db")
    copy("cluster")


def _install_pending() -> None:
    """The pending-state check (server.py step 4) on a source of another account."""
    orig = S.check_pending_source

    def check_pending_source(req: Any) -> tuple[int, str, str] | None:
        verdict = orig(req)
        if verdict is not None or not S.STATE.held:
            return verdict
        p = req.params
        if req.service == "ec2" and req.action == "CopySnapshot" and p.get("SourceSnapshotId"):
            sid, region = p["SourceSnapshotId"], p.get("SourceRegion") or req.region
            with S.STATE.lock:
                snap = find_foreign_snapshot(req.account, region, sid)
                owner = snap.owner_id if snap is not None else None
            if owner and S.is_held("snapshot", owner, region, sid):
                return 400, "IncorrectState", f"Snapshot '{sid}' is in invalid state - pending"
        return None

    S.check_pending_source = check_pending_source
