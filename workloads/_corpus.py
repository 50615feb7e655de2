"""A deterministic synthetic stand-in for Inside Airbnb's ``reviews.csv``, cached as Parquet.

Reviews are built from sentence templates with the mix of real listings (mostly glowing,
some factual, some complaints, a few mixed or empty ones) and realistic lengths
(1-7 sentences, ~45 words on average). Rows come in blocks of :data:`ROWS_PER_BLOCK`, each
drawn from ``default_rng([seed, block])``, so a corpus is a prefix of any longer one with
the same seed: one cached file of ``capacity`` rows serves every size up to it.

The file is written to a temporary name and renamed into place, so worker processes that
generate it at the same time never read a half-written file.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

VERSION = 1
"""Bump when the templates change, so stale cached corpora are not reused."""

ROWS_PER_BLOCK = 4096
"""Rows per generation block, and per Parquet row group (what a task reads at least)."""

_HOSTS = ("Maria", "John", "Aiko", "Pierre", "Fatima", "Lars", "Chen", "Sofia", "Ahmed", "Emma")
_PLACES = ("apartment", "flat", "studio", "room", "house", "loft", "place", "cottage")
_AREAS = ("the old town", "the beach", "the main square", "the metro", "the river",
          "the station", "the park", "the museums", "the market", "downtown")
_AMENITIES = ("kitchen", "shower", "wifi", "terrace", "coffee machine", "balcony", "garden")

_POSITIVE = (
    "{host} was a wonderful host and made us feel very welcome.",
    "The {place} was spotless, bright and exactly as described.",
    "Great location, close to {area} and lots of lovely restaurants.",
    "We loved our stay and would definitely come back!",
    "Everything was perfect, highly recommended.",
    "The bed was really comfortable and the {amenity} was fantastic.",
    "Check-in was easy and {host} answered all our questions quickly.",
    "Beautiful view, we enjoyed a great breakfast there every morning.",
    "Amazing {place}, clean, cosy and peaceful.",
    "Thank you {host} for the warm welcome and the helpful tips!",
    "Super friendly host and a charming neighbourhood near {area}.",
    "The {amenity} was great and the {place} felt like home.",
)
_NEGATIVE = (
    "The {place} was dirty and smelled bad when we arrived.",
    "{host} never answered our messages, very disappointing.",
    "The bed was uncomfortable and the {amenity} was broken.",
    "Terrible experience, I would not recommend this {place}.",
    "The street was extremely noisy and we could not sleep at all.",
    "The photos are misleading, the room was smaller and worse than advertised.",
    "We found bugs in the bathroom and the sheets were stained.",
    "Check-in was a nightmare and we waited outside for two hours.",
    "The heating did not work and the {place} was freezing cold.",
    "Rude host, awful cleanliness and a horrible smell in the kitchen.",
)
_NEUTRAL = (
    "We stayed for {nights} nights in {month}.",
    "The {place} is on the {floor} floor and there is no elevator.",
    "It is a {minutes} minute walk from {area}.",
    "Check-in is at 3 pm and check-out is at 11 am.",
    "The host provided towels and a map of the city.",
    "There is a supermarket on the corner of the street.",
    "The building has a shared laundry room in the basement.",
    "We arrived by train and took a taxi from the station.",
    "The keys were in a lockbox next to the door.",
    "The {place} has one bedroom, a small {amenity} and a sofa bed.",
)
_AUTOMATED = (
    "The host canceled this reservation {days} days before arrival. This is an automated posting."
)
_MONTHS = ("January", "March", "May", "June", "July", "August", "October", "December")
_FLOORS = ("second", "third", "fourth", "fifth")

# Tone of a review: positive, negative, neutral, mixed, automated cancellation, empty.
_TONES = np.array([0.66, 0.10, 0.13, 0.07, 0.03, 0.01])
_SENTENCES = np.array([0.10, 0.18, 0.24, 0.20, 0.14, 0.09, 0.05])  # P(1..7 sentences)
_FACTUAL_SHARE = 0.25  # of the sentences in positive and negative reviews
_POOLS = {0: _POSITIVE, 1: _NEGATIVE, 2: _NEUTRAL}


def cache_dir() -> Path:
    """``$RAYJOULE_CACHE``, else ``~/.cache/rayjoule`` (created on first use, not at import)."""
    return Path(os.environ.get("RAYJOULE_CACHE") or Path.home() / ".cache" / "rayjoule")


def capacity(rows: int) -> int:
    """Rows of the cached file that serves ``rows``: whole blocks, rounded up to a power of 2."""
    blocks = max(1, -(-rows // ROWS_PER_BLOCK))
    return ROWS_PER_BLOCK * (1 << (blocks - 1).bit_length())


def corpus_path(seed: int, rows: int) -> Path:
    """Where the corpus for ``seed`` that holds at least ``rows`` rows is cached."""
    return cache_dir() / f"airbnb-synthetic-v{VERSION}-seed{seed}-rows{capacity(rows)}.parquet"


def ensure_corpus(seed: int, rows: int) -> Path:
    """Return the cached corpus path, generating and atomically publishing it if missing."""
    path = corpus_path(seed, rows)
    if path.exists():
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = capacity(rows)
    log.info("generating %d synthetic reviews (seed %d) into %s", total, seed, path)
    listings: list[int] = []
    comments: list[str | None] = []
    for block in range(total // ROWS_PER_BLOCK):
        block_listings, block_comments = generate_block(seed, block)
        listings.extend(block_listings)
        comments.extend(block_comments)
    table = pa.table({
        "listing_id": pa.array(listings, pa.int64()),
        "id": pa.array(range(1, total + 1), pa.int64()),
        "comments": pa.array(comments, pa.string()),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, row_group_size=ROWS_PER_BLOCK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def generate_block(seed: int, block: int) -> tuple[list[int], list[str | None]]:
    """Listing ids and review texts of one block of :data:`ROWS_PER_BLOCK` rows.

    All random numbers are drawn up front as arrays (one numpy call each); the loop only
    formats strings, which keeps generation at a few microseconds per review.
    """
    rng = np.random.default_rng([seed, block])
    n = ROWS_PER_BLOCK
    tones = rng.choice(len(_TONES), size=n, p=_TONES).tolist()
    lengths = (rng.choice(len(_SENTENCES), size=n, p=_SENTENCES) + 1).tolist()
    listings = rng.integers(10_000, 60_000_000, size=n).tolist()
    factual = (rng.random((n, len(_SENTENCES))) < _FACTUAL_SHARE).tolist()
    picks = rng.integers(0, 1 << 30, size=(n, len(_SENTENCES), 9)).tolist()
    reviews = [
        _review(tones[i], lengths[i], factual[i], picks[i]) for i in range(n)
    ]
    return listings, reviews


def draw_reviews(rng: np.random.Generator, n: int) -> list[str | None]:
    """``n`` review texts drawn from ``rng`` with the corpus's mix of tones and lengths.

    The same templates and shares as :func:`generate_block` (which keeps its own draw order,
    so cached corpora stay valid); used for the per-city files of flavour=lithops.
    """
    tones = rng.choice(len(_TONES), size=n, p=_TONES).tolist()
    lengths = (rng.choice(len(_SENTENCES), size=n, p=_SENTENCES) + 1).tolist()
    factual = (rng.random((n, len(_SENTENCES))) < _FACTUAL_SHARE).tolist()
    picks = rng.integers(0, 1 << 30, size=(n, len(_SENTENCES), 9)).tolist()
    return [_review(tones[i], lengths[i], factual[i], picks[i]) for i in range(n)]


def _review(tone: int, length: int, factual: list[bool], picks: list[list[int]]) -> str | None:
    """One review: sentences of its tone, with a few factual ones mixed in."""
    if tone == 5:
        return None if picks[0][0] % 2 else ""
    if tone == 4:
        return _AUTOMATED.format(days=1 + picks[0][0] % 29)
    sentences = []
    for k in range(length):
        if tone == 3:
            pool = _POSITIVE if k % 2 == 0 else _NEGATIVE
        elif tone != 2 and factual[k]:
            pool = _NEUTRAL
        else:
            pool = _POOLS[tone]
        sentences.append(_fill(pool[picks[k][0] % len(pool)], picks[k]))
    return " ".join(sentences)


def _fill(template: str, picks: list[int]) -> str:
    """Fill a template's slots from pre-drawn integers (``picks[0]`` chose the template)."""
    return template.format(
        host=_HOSTS[picks[1] % len(_HOSTS)],
        place=_PLACES[picks[2] % len(_PLACES)],
        area=_AREAS[picks[3] % len(_AREAS)],
        amenity=_AMENITIES[picks[4] % len(_AMENITIES)],
        month=_MONTHS[picks[5] % len(_MONTHS)],
        floor=_FLOORS[picks[6] % len(_FLOORS)],
        nights=2 + picks[7] % 12,
        minutes=3 + picks[8] % 20,
    )
