#!/usr/bin/env python3
"""Give an IAM role in the emulator exactly one permissions policy.

    python3 attach_policy.py --endpoint http://127.0.0.1:PORT --account 222222222222 \
        --role vsa-role --policy-file permissions.json [--name rolesnap-printed-permissions]

Detaches every managed policy attached to the role, deletes its inline policies,
then creates the managed policy `--name` from `--policy-file` in that account
and attaches it. Prints one JSON line: {"role", "policy_arn", "detached",
"inline_deleted"}.

Like seed.py, the calls pick their account with the `x-moto-account-id` header
and are signed with a key the emulator does not know, so run this *before*
switching moto's IAM enforcement on (`POST /moto-api/reset-auth`, body `0`):
with enforcement on, moto refuses the unknown key.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from seed import Clients


def replace_role_policy(endpoint: str, account: str, role: str, document: Any, name: str) -> dict[str, Any]:
    iam = Clients(endpoint, account)("iam")
    detached = []
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role):
        for p in page["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=role, PolicyArn=p["PolicyArn"])
            detached.append(p["PolicyArn"])
    inline = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role):
        for n in page["PolicyNames"]:
            iam.delete_role_policy(RoleName=role, PolicyName=n)
            inline.append(n)
    text = document if isinstance(document, str) else json.dumps(document)
    arn = iam.create_policy(PolicyName=name, PolicyDocument=text)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    return {"role": role, "policy_arn": arn, "detached": detached, "inline_deleted": inline}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--account", required=True, help="the role's account, e.g. 222222222222")
    ap.add_argument("--role", default="vsa-role")
    ap.add_argument("--policy-file", required=True, help="a policy document (JSON); '-' reads stdin")
    ap.add_argument("--name", default="rolesnap-printed-permissions", help="name of the managed policy to create")
    args = ap.parse_args(argv)
    if args.policy_file == "-":
        text = sys.stdin.read()
    else:
        with open(args.policy_file, encoding="utf-8") as f:
            text = f.read()
    doc = json.loads(text)  # refuse anything that is not JSON before touching the role
    out = replace_role_policy(args.endpoint.rstrip("/"), args.account, args.role, doc, args.name)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
