"""Curated hypernym groups: everyday words that name a set of ImageNet-1k classes.

ImageNet classes are fine-grained leaves of WordNet ("Beagle", "tabby cat", "moped"),
while people search with head nouns ("dog", "cat", "motorcycle"). WordNet itself is not
shipped in any PyPI package we depend on, so the common hypernyms are listed here by
hand, as class-index ranges in the standard ILSVRC-2012 order (which follows WordNet ids,
so most groups are contiguous). Each entry is ``(aliases, classes)``; aliases are
lemmatised when the lexicon is built, so plurals need not be listed.

Chosen rule: a group lists the classes whose pictures a person would accept as an answer
to the word, e.g. "motorcycle" -> moped and motor scooter (ImageNet has no motorcycle
class; those two are what a motorcycle photo is classified as), "person" -> the three
person classes plus garments that are only ever photographed worn.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["GROUPS"]

_Classes = tuple[int | range, ...]

_CAR = (436, 468, 511, 609, 627, 656, 661, 717, 751, 817)
_TRUCK = (555, 569, 675, 717, 864, 867)
_BUS = (654, 779, 874)
_TRAIN = (466, 547, 565, 705, 820, 829)
_BOAT = (403, 472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 913, 914)
_AIRCRAFT = (404, 405, 895, 908)
_BIKE = (444, 671, 870, 880)
_MOTORBIKE = (665, 670)
_BIRD = (range(7, 25), range(80, 101), range(127, 147))
_DOG = (range(151, 269),)
_CAT = (range(281, 286),)
_BIG_CAT = (range(286, 294),)
_PRIMATE = (range(365, 385),)
_FISH = (range(0, 7), range(389, 398))
_INSECT = (range(300, 327),)
_REPTILE = (range(33, 69),)
_FRUIT = (range(948, 958), 989)
_VEGETABLE = (range(936, 947), 987)
_DISH = (range(923, 936), range(959, 966))
_INSTRUMENT = (
    401, 402, 420, 432, 486, 494, 513, 541, 546, 558, 566, 577, 579, 593, 594, 641, 642,
    683, 684, 687, 699, 776, 822, 875, 881, 889,
)  # fmt: skip
_FURNITURE = (
    423, 431, 453, 493, 495, 516, 520, 526, 532, 548, 553, 559, 564, 703, 765, 831, 857, 894,
)  # fmt: skip
_CLOTHING = (
    399, 400, 474, 501, 568, 578, 601, 608, 610, 614, 617, 652, 655, 689, 697, 735, 775, 834,
    841, 842, 869, 887,
)  # fmt: skip
_BUILDING = (
    410, 415, 424, 425, 437, 442, 449, 454, 467, 483, 497, 498, 509, 538, 580, 582, 624, 660,
    663, 668, 698, 727, 743, 762, 788, 832, 853, 858, 860, 865, 900, 915,
)  # fmt: skip
_LANDSCAPE = (range(970, 981),)
_PERSON = (400, 617, 652, 834, 981, 982, 983)

_RAW: tuple[tuple[tuple[str, ...], _Classes], ...] = (
    (("dog", "puppy", "pup", "doggy", "hound", "pooch"), _DOG),
    (("cat", "kitten", "kitty", "house cat", "domestic cat", "pussycat"), _CAT),
    (("big cat", "wild cat", "wildcat"), _BIG_CAT),
    (("feline",), (*_CAT, *_BIG_CAT)),
    (("canine",), (range(151, 281),)),
    (("wolf",), (range(269, 272),)),
    (("fox",), (range(277, 281),)),
    (("bird", "songbird"), _BIRD),
    (("poultry", "chicken", "fowl"), (7, 8)),
    (("duck",), (97, 98)),
    (("parrot",), (87, 88, 89, 90)),
    (("fish",), _FISH),
    (("reptile",), _REPTILE),
    (("lizard",), (range(38, 49),)),
    (("snake", "serpent"), (range(52, 69),)),
    (("turtle", "tortoise"), (range(33, 38),)),
    (("frog", "toad"), (range(30, 33),)),
    (("amphibian",), (range(25, 33),)),
    (("insect", "bug"), _INSECT),
    (("butterfly", "moth"), (range(321, 327),)),
    (("beetle",), (range(300, 308),)),
    (("spider",), (range(72, 78),)),
    (("crab",), (118, 119, 120, 121, 125)),
    (("shellfish", "crustacean", "seafood"), (range(118, 127),)),
    (("monkey", "primate"), _PRIMATE),
    (("ape",), (range(365, 370),)),
    (("bear",), (range(294, 298),)),
    (("horse", "pony", "stallion", "mare"), (339,)),
    (("cow", "cattle", "bull", "calf"), (345, 346, 347)),
    (("sheep", "lamb"), (348, 349)),
    (("goat",), (350,)),
    (("pig", "hog", "swine"), (341, 342, 343)),
    (("antelope", "deer"), (351, 352, 353)),
    (("elephant",), (101, 385, 386)),
    (("whale",), (147, 148)),
    (("rabbit", "bunny"), (330, 331, 332)),
    (("rodent",), (range(333, 339),)),
    (("mammal",), (range(101, 107), range(147, 300), range(330, 389))),
    (("pet",), (1, *_DOG, *_CAT, 333, 338)),
    (("animal", "wildlife", "creature"), (range(0, 398),)),
    (("car", "automobile", "auto"), _CAR),
    (("truck", "lorry"), _TRUCK),
    (("bus",), _BUS),
    (("van",), (407, 656, 675, 734)),
    (("bicycle", "cycle"), _BIKE),
    (("bike",), (*_BIKE, *_MOTORBIKE)),
    (("motorcycle", "motorbike", "scooter", "motor bike"), _MOTORBIKE),
    (("train", "locomotive", "railway", "railroad"), _TRAIN),
    (("boat", "ship", "vessel"), _BOAT),
    (("aircraft", "airplane", "aeroplane", "plane", "jet"), _AIRCRAFT),
    (("rocket", "launch pad", "launchpad"), (657, 744, 812)),
    (("spacecraft", "spaceship"), (812,)),
    (
        ("vehicle", "transport", "transportation"),
        (*_CAR, *_TRUCK, *_BUS, *_TRAIN, *_BIKE, *_MOTORBIKE, 407, 573, 575, 603, 612, 866),
    ),
    (("food", "meal", "dish"), (*_DISH, *_FRUIT, *_VEGETABLE, 930, 931, 932)),
    (("fruit",), _FRUIT),
    (("vegetable", "veggie"), _VEGETABLE),
    (("mushroom", "fungus"), (947, range(991, 998))),
    (("dessert", "sweet"), (927, 928, 929)),
    (("bread", "pastry"), (930, 931, 932)),
    (("drink", "beverage"), (966, 967, 968, 969, 440, 441, 907)),
    (("coffee", "cappuccino", "latte"), (967, 504, 505, 550)),
    (("tea",), (968, 849)),
    (("wine",), (966, 907)),
    (("beer",), (440, 441)),
    (("flower", "blossom"), (984, 985, 986)),
    (("building", "architecture"), _BUILDING),
    (("church", "temple", "place of worship"), (497, 663, 668, 832)),
    (("shop", "store"), (415, 424, 454, 467, 509, 582, 788, 860, 865)),
    (("musical instrument", "instrument"), _INSTRUMENT),
    (("furniture",), _FURNITURE),
    (("chair", "seat"), (423, 559, 765, 857)),
    (("table",), (526, 532)),
    (("sofa", "settee"), (831,)),
    (("bed",), (431, 520, 564)),
    (("computer", "pc"), (527, 590, 620, 681)),
    (("laptop",), (620, 681)),
    (("phone", "telephone", "smartphone", "cellphone"), (487, 528, 707)),
    (("screen", "display"), (664, 782, 851)),
    (("camera",), (732, 759)),
    (("clock",), (409, 530, 892)),
    (("watch", "wristwatch"), (531, 826)),
    (("ball",), (429, 430, 522, 574, 722, 768, 805, 852, 890)),
    (("gun", "firearm"), (413, 763, 764)),
    (("weapon",), (413, 456, 471, 657, 744, 763, 764)),
    (("tool",), (477, 587, 596, 740, 784, 792)),
    (("clothing", "clothes", "garment", "outfit"), _CLOTHING),
    (("dress",), (578, 601, 689)),
    (("shirt",), (610, 841)),
    (("hat", "cap"), (439, 452, 515, 667, 793, 808)),
    (("shoe", "footwear"), (502, 514, 630, 770, 774)),
    (("glasses", "spectacles", "eyeglasses"), (836, 837)),
    (("helmet",), (518, 560, 715)),
    (("bag",), (414, 636, 728, 747, 748, 797)),
    (
        ("person", "human", "man", "woman", "people", "adult", "photographer", "astronaut"),
        _PERSON,
    ),
    (("text", "document", "writing", "printed text"), (458, 917, 921, 922, 916, 919)),
    (("book",), (453, 454, 624, 917, 921)),
    (("landscape", "scenery", "nature"), _LANDSCAPE),
    (("sea", "ocean", "coast", "seaside", "shore"), (973, 975, 976, 977, 978)),
    (("lamp", "light"), (619, 818, 846, 862, 920)),
    (("toy",), (850, 611, 723, 865)),
    (("kitchen", "cookware"), (469, 521, 544, 567, 618, 659, 813, 909, 910)),
    (("appliance",), (534, 545, 589, 651, 760, 811, 827, 859, 882, 897)),
)


def _expand(classes: Iterable[int | range]) -> frozenset[int]:
    out: set[int] = set()
    for item in classes:
        out.update(item if isinstance(item, range) else (item,))
    return frozenset(out)


GROUPS: tuple[tuple[tuple[str, ...], frozenset[int]], ...] = tuple(
    (aliases, _expand(classes)) for aliases, classes in _RAW
)
