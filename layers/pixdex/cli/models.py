"""``pixdex models list | export``: the embedding models this installation can serve."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pixdex.cli.common import EXIT_OK
from pixdex.config import Settings
from pixdex.errors import InvalidInputError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("models", help="list models, export SigLIP / CLIP checkpoints")
    actions = parser.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="built-in and installed models")
    listing.add_argument("--json", action="store_true")
    export = actions.add_parser(
        "export",
        help="export a SigLIP / SigLIP2 / CLIP checkpoint to ONNX (needs pixdex[export])",
    )
    export.add_argument("checkpoint", help="hub id (needs internet) or a local checkpoint dir")
    export.add_argument("--name", help="model name (default: from the checkpoint)")
    export.add_argument("--out", type=Path, help="model directory (default: the models folder)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing export")
    export.add_argument("--pack", type=Path, metavar="TAR_GZ", help="also write model.tar.gz")
    case = export.add_mutually_exclusive_group()
    case.add_argument("--lowercase", dest="lowercase", action="store_true", default=None)
    case.add_argument("--no-lowercase", dest="lowercase", action="store_false")
    export.add_argument("--json", action="store_true")


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.engines import available_models
    from pixdex.vlm import installed_models, vlm_root

    rows: list[dict[str, object]] = [
        {"name": s.name, "dim": s.dim, "text": s.encodes_text, "kind": "built-in"}
        for s in available_models()
    ]
    rows.extend(
        {"name": m.name, "dim": m.dim, "text": True, "kind": m.family, "source": m.source,
         "path": str(vlm_root(settings) / m.name)}
        for m in installed_models(settings)
    )  # fmt: skip
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            text = "image+text" if row["text"] else "image"
            print(f"{row['name']}\t{row['kind']}\t{row['dim']}-d\t{text}")
    return EXIT_OK


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.vlm.export import default_name, export_checkpoint, pack_model_dir
    from pixdex.vlm.store import vlm_root

    name = args.name or default_name(args.checkpoint)
    out = args.out or vlm_root(settings) / name
    if args.pack is not None and args.pack.suffixes[-2:] != [".tar", ".gz"]:
        raise InvalidInputError("--pack must name a .tar.gz file", field="pack")
    manifest = export_checkpoint(
        args.checkpoint, out, name=name, lowercase=args.lowercase,
        overwrite=args.overwrite, settings=settings,
    )  # fmt: skip
    packed = pack_model_dir(out, args.pack) if args.pack is not None else None
    if args.json:
        print(json.dumps({"manifest": manifest.model_dump(), "path": str(out),
                          "archive": str(packed) if packed else None}))  # fmt: skip
    else:
        print(f"exported {manifest.name} ({manifest.family}, {manifest.dim}-d) to {out}")
        if packed:
            print(f"packed {packed}")
    return EXIT_OK


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.models_action == "list":
        return _list(args, settings)
    return _export(args, settings)
