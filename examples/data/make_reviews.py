"""Write the demo's small sentiment data set: short product and film reviews labelled positive/negative.

The sentences are composed from hand-written openers, facts and closers (written for hubmgr, not taken
from any corpus), so the files can be regenerated exactly::

    python examples/data/make_reviews.py

Output: ``reviews_train.csv`` and ``reviews_eval.csv`` beside this script (columns ``text,label``).
The eval reviews never repeat a training review word for word.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 7
N_TRAIN = 480
N_EVAL = 120

# item -> (facts that praise it, facts that complain about it)
PRODUCTS: dict[str, tuple[list[str], list[str]]] = {
    "blender": (
        [
            "It crushes ice in seconds and the jug is easy to clean.",
            "Smoothies come out silky every morning.",
            "It is powerful yet surprisingly quiet.",
        ],
        [
            "The lid leaks every single time.",
            "The motor started smoking after a week.",
            "It leaves chunks of fruit no matter how long it runs.",
        ],
    ),
    "pair of headphones": (
        [
            "The sound is rich and the noise cancelling works wonders on the train.",
            "The battery easily lasts a whole week.",
            "They are so comfortable I forget I am wearing them.",
        ],
        [
            "The left ear cup crackles at any volume.",
            "They pinch my head after twenty minutes.",
            "The battery dies before lunch.",
        ],
    ),
    "phone case": (
        [
            "It survived several drops onto concrete without a scratch.",
            "It fits perfectly and feels great in the hand.",
            "The buttons are still easy to press.",
        ],
        [
            "It cracked the first time I dropped it.",
            "It makes the phone slippery and bulky.",
            "The cutout for the camera is in the wrong place.",
        ],
    ),
    "coffee maker": (
        [
            "The coffee is hot and full of flavour.",
            "It brews a full pot in under five minutes.",
            "The timer means fresh coffee is waiting when I wake up.",
        ],
        [
            "The coffee always tastes burnt.",
            "It drips water all over the counter.",
            "The carafe handle snapped off within a month.",
        ],
    ),
    "pair of running shoes": (
        [
            "They are light, cushioned and supportive on long runs.",
            "My knees stopped aching after I switched to them.",
            "The grip is excellent even on wet trails.",
        ],
        [
            "The sole started peeling off after two runs.",
            "They gave me blisters on the first day.",
            "They run a full size small.",
        ],
    ),
    "vacuum cleaner": (
        [
            "It picks up pet hair from every corner.",
            "The suction is strong and it is light enough to carry upstairs.",
            "Emptying the bin is quick and mess free.",
        ],
        ["It barely picks up crumbs.", "It is so loud the dog hides.", "The battery lasts about five minutes."],
    ),
    "backpack": (
        [
            "It holds my laptop, lunch and gym clothes with room to spare.",
            "The straps stay comfortable all day.",
            "It kept everything dry in a heavy storm.",
        ],
        [
            "The zipper broke on the first trip.",
            "The seams started ripping within a week.",
            "The straps dig into my shoulders.",
        ],
    ),
    "desk lamp": (
        [
            "The light is bright, warm and easy on the eyes.",
            "It bends to any angle and stays put.",
            "The touch dimmer works smoothly.",
        ],
        ["It flickers constantly.", "The base is so light that it tips over.", "It buzzes loudly whenever it is on."],
    ),
    "air fryer": (
        [
            "The fries come out crispy without a drop of oil.",
            "It heats up fast and cooks evenly.",
            "Cleaning the basket takes a minute.",
        ],
        [
            "The coating on the basket flaked off into the food.",
            "Everything comes out soggy.",
            "It fills the kitchen with a plastic smell.",
        ],
    ),
    "smartwatch": (
        [
            "It tracks my runs accurately and the screen is sharp in sunlight.",
            "The battery lasts for days.",
            "Notifications arrive instantly and the strap is comfortable.",
        ],
        [
            "It loses the connection to my phone every hour.",
            "The step counter is wildly wrong.",
            "The screen scratched on day one.",
        ],
    ),
    "office chair": (
        [
            "My back pain is gone after a month of using it.",
            "It was easy to assemble and feels very solid.",
            "The armrests and height adjust exactly how I need.",
        ],
        [
            "It wobbles and squeaks every time I move.",
            "The cushion went flat within weeks.",
            "One of the wheels snapped off.",
        ],
    ),
    "kitchen knife": (
        [
            "It slices tomatoes paper thin.",
            "It stays sharp after months of daily use.",
            "The handle is balanced and comfortable.",
        ],
        [
            "It was dull straight out of the box.",
            "The blade rusted after one wash.",
            "The handle came loose within a week.",
        ],
    ),
    "bluetooth speaker": (
        [
            "It fills the whole room with clear sound.",
            "The bass is punchy and it pairs instantly.",
            "It survived a pool party without any trouble.",
        ],
        [
            "The sound is tinny and distorted.",
            "It keeps disconnecting from my laptop.",
            "It stopped charging after a few days.",
        ],
    ),
    "electric toothbrush": (
        [
            "My teeth feel cleaner than after a visit to the dentist.",
            "The battery lasts two weeks per charge.",
            "The timer helps the kids brush properly.",
        ],
        ["It died after a month.", "It rattles so much it hurts.", "Replacement heads are impossible to find."],
    ),
    "tent": (
        [
            "It went up in ten minutes and stayed dry through a night of rain.",
            "There is plenty of room for two people.",
            "It packs down small and is light to carry.",
        ],
        [
            "It leaked through the seams in light rain.",
            "One of the poles snapped on the first night.",
            "The instructions are useless and it took two hours to pitch.",
        ],
    ),
    "laptop stand": (
        [
            "It raised my screen to eye level and my neck feels much better.",
            "It is sturdy and folds flat for travel.",
            "The aluminium looks great on my desk.",
        ],
        [
            "It wobbles every time I type.",
            "The hinge loosened after a few days.",
            "It scratched the bottom of my laptop.",
        ],
    ),
    "water bottle": (
        [
            "It keeps water ice cold all day.",
            "It does not leak even when thrown in a bag.",
            "It is easy to clean and has no plastic taste.",
        ],
        ["It leaks all over my bag.", "The paint chipped off immediately.", "The water tastes of metal."],
    ),
    "keyboard": (
        [
            "The keys feel crisp and typing is a joy.",
            "It connects instantly to all my devices.",
            "The backlight is even and easy to adjust.",
        ],
        [
            "Several keys stopped working after a month.",
            "It lags behind my typing.",
            "The keys are so loud that my family complains.",
        ],
    ),
    "winter jacket": (
        [
            "It kept me warm at minus fifteen.",
            "It is light but blocks the wind completely.",
            "The hood and pockets are very well designed.",
        ],
        [
            "The zipper jams constantly.",
            "I was freezing in it on a mild day.",
            "The stitching came apart at the shoulder.",
        ],
    ),
    "board game": (
        [
            "Our whole family plays it every weekend.",
            "The rules are easy to learn and every game feels different.",
            "The pieces are beautifully made.",
        ],
        [
            "The rules are confusing and the games drag on forever.",
            "Half the pieces were missing.",
            "Nobody wanted to play it a second time.",
        ],
    ),
}

FILMS = [
    "movie",
    "film",
    "sequel",
    "thriller",
    "comedy",
    "documentary",
    "animated film",
    "horror movie",
    "romantic comedy",
    "war drama",
    "science fiction film",
    "musical",
]
FILM_GOOD = [
    "The acting is superb and the story kept me hooked.",
    "The soundtrack is gorgeous.",
    "The ending moved me to tears in the best way.",
    "The jokes land every single time.",
    "The pacing is tight from start to finish.",
    "The characters feel completely real.",
    "Every scene looks like a painting.",
    "The twist near the end is brilliant.",
    "The lead actor gives the performance of the year.",
    "It is clever, warm and very funny.",
]
FILM_BAD = [
    "The plot makes no sense at all.",
    "The dialogue is painfully wooden.",
    "It drags on for far too long.",
    "The jokes fall completely flat.",
    "I fell asleep halfway through.",
    "The ending ruined the whole thing.",
    "The acting is wooden and the characters are dull.",
    "The special effects look cheap.",
    "It is boring, predictable and far too loud.",
    "The story is a mess from the first minute.",
]

POS_OPEN = [
    "I love this {item}.",
    "Really happy with this {item}.",
    "This {item} is a great buy.",
    "Five stars for this {item}.",
    "Best {item} I have ever owned.",
    "What a fantastic {item}.",
    "Absolutely delighted with the {item}.",
    "I am impressed by this {item}.",
]
NEG_OPEN = [
    "I regret buying this {item}.",
    "Really disappointed with this {item}.",
    "This {item} is a waste of money.",
    "One star for this {item}.",
    "Worst {item} I have ever owned.",
    "What a terrible {item}.",
    "I am very unhappy with the {item}.",
    "Do not buy this {item}.",
]
NEUTRAL_OPEN = [
    "I bought this {item} last month.",
    "Got the {item} as a birthday present.",
    "I have used the {item} every day for a few weeks.",
    "We ordered the {item} for our new flat.",
    "",
]
POS_CLOSE = ["Would buy again.", "Highly recommended.", "Worth every penny.", "No complaints at all.", ""]
NEG_CLOSE = ["Returning it tomorrow.", "Avoid it.", "Not worth the money.", "Very disappointing.", ""]

FILM_POS_OPEN = [
    "I loved this {film}.",
    "What a wonderful {film}.",
    "This {film} is a must see.",
    "Best {film} I have seen in years.",
    "I really enjoyed the {film}.",
]
FILM_NEG_OPEN = [
    "I hated this {film}.",
    "What a dreadful {film}.",
    "This {film} is a waste of time.",
    "Worst {film} I have seen in years.",
    "I really did not enjoy the {film}.",
]
FILM_NEUTRAL_OPEN = [
    "We watched the {film} on Friday night.",
    "I saw this {film} at the cinema.",
    "My friends picked this {film} for movie night.",
    "",
]
FILM_POS_CLOSE = ["I would watch it again tomorrow.", "Go and see it.", "Ten out of ten.", ""]
FILM_NEG_CLOSE = ["Save your money.", "Skip it.", "I want those two hours back.", ""]


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def review(rng: random.Random, positive: bool) -> str:
    """One review, a product (two times in three) or a film."""
    if rng.random() < 0.66:
        item = rng.choice(list(PRODUCTS))
        good, bad = PRODUCTS[item]
        fact = rng.choice(good if positive else bad)
        opener = rng.choice((POS_OPEN if positive else NEG_OPEN) + NEUTRAL_OPEN).format(item=item)
        closer = rng.choice(POS_CLOSE if positive else NEG_CLOSE)
    else:
        film = rng.choice(FILMS)
        fact = rng.choice(FILM_GOOD if positive else FILM_BAD)
        opener = rng.choice((FILM_POS_OPEN if positive else FILM_NEG_OPEN) + FILM_NEUTRAL_OPEN).format(film=film)
        closer = rng.choice(FILM_POS_CLOSE if positive else FILM_NEG_CLOSE)
    return _join(opener, fact, closer)


def make(n: int, rng: random.Random, seen: set[str]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    while len(rows) < n:
        positive = len(rows) % 2 == 0
        text = review(rng, positive)
        if text in seen:
            continue
        seen.add(text)
        rows.append((text, "positive" if positive else "negative"))
    rng.shuffle(rows)
    return rows


def main() -> None:
    rng = random.Random(SEED)
    seen: set[str] = set()
    train = make(N_TRAIN, rng, seen)
    evaluation = make(N_EVAL, rng, seen)
    for name, rows in (("reviews_train.csv", train), ("reviews_eval.csv", evaluation)):
        with open(HERE / name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        print(f"wrote {len(rows)} reviews to {HERE / name}")


if __name__ == "__main__":
    main()
