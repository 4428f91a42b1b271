"""``pixdex taxonomy``: a workspace's additions to the zero-shot tag taxonomy.

Changes apply to images tagged from then on; ``pixdex retag --dataset D`` re-tags the
images already indexed. The workspace is ``--workspace`` or ``PIXDEX_WORKSPACE``.
"""

from __future__ import annotations

import argparse
import json

from pixdex.cli.common import EXIT_OK
from pixdex.config import Settings
from pixdex.models import TAG_KINDS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("taxonomy", help="extend or trim the zero-shot tag taxonomy")
    actions = parser.add_subparsers(dest="taxonomy_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the taxonomy in force and this workspace's changes")
    listing.add_argument("--json", action="store_true")
    add = actions.add_parser("add", help="add an entry (or give an entry new prompts)")
    disable = actions.add_parser("disable", help="stop assigning an entry")
    reset = actions.add_parser("reset", help="forget this workspace's change to an entry")
    for action in (add, disable, reset):
        action.add_argument("kind", choices=TAG_KINDS)
        action.add_argument("name")
    add.add_argument("--prompt", action="append", default=[],
                     help='prompt text, e.g. "a photo of a forklift" (repeatable; default: '
                     "the kind's templates)")
    for action in (listing, add, disable, reset):
        action.add_argument("--workspace", help="default: PIXDEX_WORKSPACE")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.admin import change_taxonomy, reset_taxonomy, taxonomy_changes
    from pixdex.taxonomy.model import TaxonomyExtension

    workspace = args.workspace or settings.workspace
    action = args.taxonomy_action
    if action == "list":
        merged, changes = taxonomy_changes(settings, workspace)
        counts = {kind: len(getattr(merged, kind)) for kind in TAG_KINDS}
        if args.json:
            print(json.dumps({
                "workspace": workspace, "version": merged.version, "counts": counts,
                "changes": [c.model_dump(mode="json") for c in changes],
            }))
        else:
            print(f"{merged.version}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
            for change in changes:
                state = "added" if change.enabled else "disabled"
                print(f"  {state:8} {change.kind}: {change.name}")
        return EXIT_OK
    if action == "reset":
        reset_taxonomy(settings, workspace, args.kind, args.name)
        print(f"reset {args.kind}: {args.name}")
        return EXIT_OK
    change = TaxonomyExtension(
        kind=args.kind, name=args.name,
        prompts=tuple(args.prompt) if action == "add" else (),
        enabled=action == "add",
    )
    change_taxonomy(settings, workspace, change)
    print(f"{'added' if change.enabled else 'disabled'} {change.kind}: {change.name}")
    return EXIT_OK
