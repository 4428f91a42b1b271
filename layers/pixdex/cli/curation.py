"""Dataset curation commands: ``pixdex duplicates``, ``leakage`` (exit 1 when a pair leaks
across splits, so it can gate a training pipeline), ``outliers``, ``label-doubts`` and
``curation recompute | gate``."""

from __future__ import annotations

import argparse
from typing import TypeAlias

from pixdex.cli.common import EXIT_ERROR, EXIT_OK
from pixdex.config import Settings

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
LEVEL_HELP = "0 near-identical ... 4 similar scene (default 1)"


def _common(parser: argparse.ArgumentParser, *, level: bool = True) -> None:
    parser.add_argument("--dataset", required=True)
    if level:
        parser.add_argument("--level", type=int, default=1, help=LEVEL_HELP)
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def _paged(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--limit", type=int, default=50)


def register_duplicates(sub: Sub) -> None:
    parser = sub.add_parser("duplicates", help="near-duplicate clusters, largest first")
    _common(parser)
    _paged(parser)


def run_duplicates(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.curation import duplicates

    page = duplicates(args.dataset, level=args.level, offset=args.offset, limit=args.limit,
                      settings=settings)
    if args.json:
        print(page.model_dump_json())
        return EXIT_OK
    print(f"{page.total_clusters} cluster(s) at level {page.level} (cosine >= {page.threshold})")
    for cluster in page.clusters:
        print(f"cluster {cluster.id} ({cluster.size} images)")
        for member in cluster.members:
            mark = "keep" if member.id == cluster.keep else "    "
            split = f" [{member.split}]" if member.split else ""
            print(f"  {mark} {member.score:.4f} {member.name}{split} {member.id}")
    return EXIT_OK


def register_leakage(sub: Sub) -> None:
    parser = sub.add_parser(
        "leakage", help="near-duplicates across splits (exit 1 when any is found)"
    )
    _common(parser)


def run_leakage(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.curation import leakage

    found = leakage(args.dataset, level=args.level, settings=settings)
    if args.json:
        print(found.model_dump_json())
    else:
        if found.note:
            print(f"note: {found.note}")
        counts = ", ".join(f"{pair} {n}" for pair, n in found.counts.items()) or "none"
        print(f"{len(found.pairs)} leaking pair(s) at level {found.level}: {counts}")
        for pair in found.pairs:
            print(f"  {pair.score:.4f} {pair.a.name} [{pair.a.split}]"
                  f" ~ {pair.b.name} [{pair.b.split}]")
    return EXIT_ERROR if found.pairs else EXIT_OK


def register_outliers(sub: Sub) -> None:
    parser = sub.add_parser("outliers", help="images unlike the rest of their dataset")
    _common(parser, level=False)
    _paged(parser)


def run_outliers(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.curation import outliers

    page = outliers(args.dataset, offset=args.offset, limit=args.limit, settings=settings)
    if args.json:
        print(page.model_dump_json())
        return EXIT_OK
    print(f"{page.total} image(s) ranked; score = mean cosine distance to nearest neighbours")
    for row in page.outliers:
        print(f"  {row.score:.4f} {row.name} {row.id}")
    return EXIT_OK


def register_label_doubts(sub: Sub) -> None:
    parser = sub.add_parser("label-doubts", help="annotations their neighbours or tags doubt")
    _common(parser, level=False)
    parser.add_argument("--limit", type=int, default=50)


def run_label_doubts(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.label_doubts import label_doubts

    found = label_doubts(args.dataset, limit=args.limit, settings=settings)
    if args.json:
        print(found.model_dump_json())
        return EXIT_OK
    print(f"{len(found.neighbour_doubts)} neighbour doubt(s)")
    for doubt in found.neighbour_doubts:
        print(f"  {doubt.score:.2f} {doubt.name}: {', '.join(doubt.classes)}"
              f" -> neighbours say {doubt.suggested}")
    print(f"{len(found.tag_contradictions)} tag contradiction(s)")
    for row in found.tag_contradictions:
        tags = ", ".join(f"{t} {s:.2f}" for t, s in row.tags.items())
        print(f"  {row.name}: {', '.join(row.classes)} vs tags {tags}")
    return EXIT_OK


def register_curation(sub: Sub) -> None:
    parser = sub.add_parser("curation", help="rebuild the neighbour graph; the ingest gate")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    recompute = actions.add_parser("recompute", help="rebuild a dataset's graph (model change)")
    recompute.add_argument("--dataset", required=True)
    recompute.add_argument("--json", action="store_true")
    gate = actions.add_parser("gate", help="show or set a dataset's duplicate gate")
    gate.add_argument("--dataset", required=True)
    gate.add_argument("--on-duplicate", choices=("allow", "skip", "link"))
    gate.add_argument("--level", type=int, help=LEVEL_HELP)
    gate.add_argument("--json", action="store_true")


def run_curation(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "recompute":
        from pixdex.app.curation import recompute

        done = recompute(args.dataset, settings=settings)
        print(done.model_dump_json() if args.json else
              f"{done.dataset}: {done.images} image(s) recomputed in {done.seconds:.1f} s")
        return EXIT_OK
    from pixdex.app.curation_schemas import DuplicateGate
    from pixdex.app.duplicate_gate import get_dataset_gate, set_dataset_gate

    gate = get_dataset_gate(args.dataset, settings=settings)
    if args.on_duplicate is not None or args.level is not None:
        changed = gate.model_dump()
        if args.on_duplicate is not None:
            changed["on_duplicate"] = args.on_duplicate
        if args.level is not None:
            changed["level"] = args.level
        gate = set_dataset_gate(args.dataset, DuplicateGate.model_validate(changed),
                                settings=settings)
    print(gate.model_dump_json() if args.json else
          f"{args.dataset}: on_duplicate={gate.on_duplicate} level={gate.level}")
    return EXIT_OK
