"""``pixdex keys create | list | revoke``: API keys of a workspace."""

from __future__ import annotations

import argparse
import json

from pixdex.cli.common import EXIT_OK, parse_uuid
from pixdex.config import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("keys", help="create, list and revoke HTTP API keys")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key (printed once)")
    create.add_argument("--workspace", required=True)
    create.add_argument("--read-only", action="store_true", help="GET and search only")
    create.add_argument("--name", help="a note to recognise the key by")
    create.add_argument("--json", action="store_true", help='print {"workspace", "key"}')
    listing = actions.add_parser("list", help="list a workspace's keys (never the secrets)")
    listing.add_argument("--workspace", required=True)
    listing.add_argument("--json", action="store_true")
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.service import keys

    if args.action == "create":
        new = keys.create_key(
            settings, args.workspace, scope="read" if args.read_only else "write", name=args.name
        )
        if args.json:
            print(json.dumps({"workspace": new.info.workspace, "key": new.key,
                              "id": str(new.info.id), "scope": new.info.scope}))
        else:
            print(new.key)
            print(f"(workspace {new.info.workspace}, {new.info.scope} access, id "
                  f"{new.info.id}; it is shown only now)")
    elif args.action == "list":
        found = keys.list_keys(settings, args.workspace)
        if args.json:
            print(json.dumps([
                {"id": str(k.id), "prefix": k.prefix, "scope": k.scope, "name": k.name,
                 "created": k.created.isoformat(),
                 "revoked": None if k.revoked is None else k.revoked.isoformat()}
                for k in found
            ]))
        for k in [] if args.json else found:
            state = "revoked" if k.revoked else "active"
            print(f"{k.id}  pdx_{k.prefix}_…  {k.scope:<5}  {state:<7}  {k.name or ''}")
    else:
        revoked = keys.revoke_key(settings, parse_uuid(args.key_id, "key_id"))
        print(f"revoked {revoked.id} (workspace {revoked.workspace})")
    return EXIT_OK
