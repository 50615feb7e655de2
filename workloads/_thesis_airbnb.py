"""The Lithops Airbnb sentiment example: one call per city review file, parsed as the original.

Source: ``lithops-cloud/applications``, ``airbnb/map_sentiment_analysis.py`` (and the
notebook next to it, which the thesis ran). Its map function ``analyze_comments`` gets one
object of the bucket, a city's ``*-reviews.csv``, copies it to local disk, opens it with
``encoding='latin1'`` and reads it with ``csv.reader``. Every row with at least 11 fields is
scored (the header row too: it has 11 names), rows with fewer are skipped; the text is
``str(row[5])`` with no other cleaning; a VADER compound score ``>= 0.4`` is positive, one
strictly between -0.4 and 0.4 neutral, the rest negative; and the row's coordinates
``(row[8], row[9])`` are appended to that class's list unless already in it (a linear
``not in`` over a Python list, as the original did). :data:`DATASET` holds the original's
33 file names and cities.

What differs:

* Sentiment: the original used NLTK's port of VADER (``nltk.sentiment.vader``); this uses
  the ``vaderSentiment`` package (3.3.2), the same lexicon and rules; the two differ on a
  few inputs (emoji handling, some punctuation), not in kind or cost.
* Input: the original's files (Inside Airbnb reviews joined with listing fields, shared on
  IBM Watson Studio) are not redistributable. Without ``data``, deterministic synthetic
  files stand in, with the original names, encoding and row rules: latin-1 text, a header,
  11 columns :data:`COLUMNS` (the original used indices 5, 8 and 9 as comments, latitude
  and longitude; the other column names are our guess at the join), reviews grouped by
  listing with the listing's coordinates repeated, comments from the synthetic corpus'
  templates plus a share of French, German, Spanish, Italian and Dutch ones (accents
  encoded in latin-1), some with quoted line breaks, and about 1% truncated records that
  the 11-field rule skips. With ``data`` = a local folder holding (some of) the original
  files, those are used: one call per file found.
* Results: a call returns its city's counts and the number of distinct coordinates per
  class; the original returned the coordinate lists to a reduce that drew a map with
  matplotlib/basemap and geocoded the city online, which is left out.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workloads import _corpus
from workloads._base import WorkloadError, split_even

DATASET: dict[str, str] = {
    "amsterdam-2016-01-03-reviews.csv": "Amsterdam",
    "antwerp-2015-10-03-reviews.csv": "Antwerp Belgium",
    "athens-2015-07-17-reviews.csv": "Athens Europe",
    "austin-2015-11-07-reviews.csv": "Austin",
    "barcelona-2016-01-03-reviews.csv": "Barcelona",
    "berlin-2015-10-03-reviews.csv": "Berlin",
    "boston-2015-10-03-reviews.csv": "Boston",
    "brussels-2015-10-03-reviews.csv": "Brussels",
    "chicago-2015-10-03-reviews.csv": "Chicago",
    "dublin-2016-01-06-reviews.csv": "Dublin",
    "london-2016-02-02-reviews.csv": "London",
    "los-angeles-2016-01-02-reviews.csv": "Los Angeles",
    "madrid-2015-10-02-reviews.csv": "Madrid",
    "mallorca-2016-01-06-reviews.csv": "Palma Mallorca Spain",
    "melbourne-2016-01-03-reviews.csv": "Melbourne",
    "montreal-2015-10-02-reviews.csv": "Montreal",
    "nashville-2015-10-03-reviews.csv": "Nashville",
    "new-orleans-2015-09-02-reviews.csv": "New Orleans",
    "new-york-city-2016-02-02-reviews.csv": "New York City",
    "oakland-2015-06-22-reviews.csv": "Oakland",
    "paris-2015-09-02-reviews.csv": "Paris",
    "portland-2016-01-01-reviews.csv": "Portland",
    "san-diego-2015-06-22-reviews.csv": "San Diego",
    "san-francisco-2015-11-01-reviews.csv": "City of San Francisco",
    "santa-cruz-county-2015-10-15-reviews.csv": "Santa Cruz",
    "seattle-2016-01-04-reviews.csv": "Seattle",
    "sydney-2016-01-03-reviews.csv": "Sydney",
    "toronto-2015-09-03-reviews.csv": "Toronto",
    "trentino-2015-10-12-reviews.csv": "Trento",
    "vancouver-2015-12-03-reviews.csv": "Vancouver",
    "venice-2015-07-18-reviews.csv": "Venice Italy",
    "vienna-2015-07-18-reviews.csv": "Vienna Austria.",
    "washington-dc-2015-10-03-reviews.csv": "Washington D.C.",
}
"""The original's ``DATASET``: object key -> city, in its order (one call each)."""

DATASET_2024: dict[str, str] = {
    "Amsterdam-2024-09-06-reviews.csv": "Amsterdam",
    "Barcelona-2024-09-11-reviews.csv": "Barcelona",
    "Berlin-2024-09-28-reviews.csv": "Berlin",
    "Montreal-2024-09-13-reviews.csv": "Montreal",
    "Portland-2024-09-05-reviews.csv": "Portland",
}
"""Files the later notebook added; recognised in a ``data`` folder, never generated."""

COLUMNS = ("listing_id", "id", "date", "reviewer_id", "reviewer_name", "comments", "host_id",
           "neighbourhood", "latitude", "longitude", "room_type")
MIN_FIELDS = 11
"""The original skipped rows with ``len(row) < 11``."""

ENCODING = "latin-1"
POSITIVE = 0.4
NEGATIVE = -0.4

DEFAULT_ROWS_PER_CITY = 1500
DEFAULT_SIZE = len(DATASET) * DEFAULT_ROWS_PER_CITY
"""Review records over the 33 synthetic city files (the real ones held far more)."""

VERSION = 1
"""Bump when the generator changes, so stale cached city files are not reused."""

_STREAM = 0x41424E42
"""Mixed into the seed so city files never share a stream with the flat corpus."""

_CENTRES = (
    (52.3676, 4.9041), (51.2194, 4.4025), (37.9838, 23.7275), (30.2672, -97.7431),
    (41.3874, 2.1686), (52.5200, 13.4050), (42.3601, -71.0589), (50.8503, 4.3517),
    (41.8781, -87.6298), (53.3498, -6.2603), (51.5074, -0.1278), (34.0522, -118.2437),
    (40.4168, -3.7038), (39.5696, 2.6502), (-37.8136, 144.9631), (45.5017, -73.5673),
    (36.1627, -86.7816), (29.9511, -90.0715), (40.7128, -74.0060), (37.8044, -122.2712),
    (48.8566, 2.3522), (45.5152, -122.6784), (32.7157, -117.1611), (37.7749, -122.4194),
    (36.9741, -122.0308), (47.6062, -122.3321), (-33.8688, 151.2093), (43.6532, -79.3832),
    (46.0748, 11.1217), (49.2827, -123.1207), (45.4408, 12.3155), (48.2082, 16.3738),
    (38.9072, -77.0369),
)
"""Approximate city centres, in :data:`DATASET` order (synthetic listings lie around them)."""

_REVIEWERS = ("Anna", "José", "Zoë", "François", "Jürgen", "Søren", "Inês", "Mike", "Sarah",
              "Björn", "Chloé", "Daniel", "Laura", "Raphaël", "Ana María", "Tom", "Ågot")
_NEIGHBOURHOODS = ("Centrum", "Old Town", "Riverside", "University", "Harbour", "Market",
                   "West End", "Museum Quarter", "Park Side", "Station")
_ROOM_TYPES = ("Entire home/apt", "Private room", "Shared room")
_ROOM_SHARES = np.array([0.60, 0.37, 0.03])
_FOREIGN = (
    "Très bel appartement, très propre et bien situé. Hôte très accueillant !",
    "Séjour agréable, le quartier est calme. Je recommande.",
    "Sehr schöne Wohnung, alles sauber und gemütlich. Gerne wieder!",
    "Die Lage ist super, nur die Straße war etwas laut.",
    "Piso muy bonito y céntrico, el anfitrión fue muy amable.",
    "Todo perfecto, la habitación era pequeña pero limpia.",
    "Appartamento carino e pulito, posizione comoda per il centro.",
    "Mooi appartement, goede locatie en een vriendelijke gastheer.",
    "Ótima localização, apartamento confortável e limpo.",
)
_FOREIGN_SHARE = 0.15
_BROKEN_SHARE = 0.01
_NEWLINE_SHARE = 0.05
_REVIEWS_PER_LISTING = 12
_DAY0 = np.datetime64("2009-06-01")
_DAYS = int((np.datetime64("2016-01-01") - _DAY0).astype(np.int64))


@dataclass(frozen=True)
class CityCall:
    """One original call: city file ``index`` (its rows, when synthetic), or a file in ``data``."""

    index: int
    name: str
    city: str
    rows: int = 0
    path: str | None = None


@dataclass(frozen=True)
class CityChunk:
    """A contiguous run of city calls; synthetic files are generated from ``seed`` and ``size``."""

    seed: int
    size: int
    calls: tuple[CityCall, ...]


@dataclass(frozen=True)
class CityCounts:
    """What one call found: rows read and skipped, classes, distinct coordinates per class."""

    index: int
    name: str
    rows: int
    skipped: int
    positive: int
    neutral: int
    negative: int
    coordinates_positive: int
    coordinates_neutral: int
    coordinates_negative: int


@dataclass(frozen=True)
class CityPartial:
    """The counts of a chunk's cities."""

    cities: tuple[CityCounts, ...]


def slug(name: str) -> str:
    """A summary key prefix for a city file: its name without ``-reviews.csv``, lower case.

    >>> slug("new-york-city-2016-02-02-reviews.csv")
    'new-york-city-2016-02-02'
    """
    return re.sub(r"-reviews\.csv$", "", name).lower()


def data_files(folder: str) -> list[tuple[str, str]]:
    """``(file name, city)`` of the original files present in ``folder``, in the original order."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise WorkloadError(f"with flavour=lithops, 'data' must be a local folder holding the "
                            f"original city files (e.g. {next(iter(DATASET))}); {folder!r} "
                            f"is not a folder")
    found = [(name, city) for name, city in {**DATASET, **DATASET_2024}.items()
             if (path / name).is_file()]
    if not found:
        raise WorkloadError(f"no original city review files in {folder!r} (expected names like "
                            f"{next(iter(DATASET))})")
    return found


def partition(tasks: int, size: int, seed: int, data: str | None) -> list[CityChunk]:
    """One call per city file, contiguous runs of them per task; make sure files exist here."""
    if data is None:
        rows = split_even(size, len(DATASET))
        calls = [CityCall(i, name, city, stop - start)
                 for i, ((name, city), (start, stop)) in enumerate(zip(DATASET.items(), rows,
                                                                       strict=True))]
        for call in calls:
            ensure_city_file(seed, size, call)
    else:
        folder = Path(data).expanduser().resolve()
        calls = [CityCall(i, name, city, path=str(folder / name))
                 for i, (name, city) in enumerate(data_files(data)[:size])]
    return [CityChunk(seed, size, tuple(calls[a:b])) for a, b in split_even(len(calls), tasks)]


def map_cities(chunk: CityChunk) -> CityPartial:
    """Run the original's ``analyze_comments`` on each of the chunk's city files."""
    return CityPartial(tuple(
        analyze_comments(call.path or str(ensure_city_file(chunk.seed, chunk.size, call)), call)
        for call in chunk.calls
    ))


def analyze_comments(path: str, call: CityCall) -> CityCounts:
    """The original map function on one city file (copied to a local temporary file first)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    with tempfile.TemporaryDirectory(prefix="rayjoule-airbnb-") as tmp:
        local = os.path.join(tmp, f"{call.city}.csv")
        with open(path, "rb") as source, open(local, "wb") as csvfile:
            shutil.copyfileobj(source, csvfile)

        pos, neg, neu = 0, 0, 0
        positive: list[tuple[str, str]] = []
        neutral: list[tuple[str, str]] = []
        negative: list[tuple[str, str]] = []
        analyzer = SentimentIntensityAnalyzer()
        rows = skipped = 0
        with open(local, encoding="latin1") as csvfile:
            reader = csv.reader(csvfile)
            for row in reader:
                rows += 1
                if len(row) < MIN_FIELDS:
                    skipped += 1
                    continue
                vs = analyzer.polarity_scores(str(row[5]))
                if vs["compound"] >= POSITIVE:
                    pos += 1
                    if (row[8], row[9]) not in positive:
                        positive.append((row[8], row[9]))
                elif vs["compound"] < POSITIVE and vs["compound"] > NEGATIVE:
                    neu += 1
                    if (row[8], row[9]) not in neutral:
                        neutral.append((row[8], row[9]))
                else:
                    neg += 1
                    if (row[8], row[9]) not in negative:
                        negative.append((row[8], row[9]))
    return CityCounts(call.index, call.name, rows, skipped, pos, neu, neg,
                      len(positive), len(neutral), len(negative))


def reduce(partials: list[CityPartial]) -> CityPartial:
    """All cities' counts in the original's file order, whatever order partials arrive in."""
    return CityPartial(tuple(sorted((c for p in partials for c in p.cities),
                                    key=lambda c: c.index)))


def summary(result: CityPartial) -> dict[str, Any]:
    """Totals, then ``<city file>.positive|neutral|negative`` for every city file."""
    cities = result.cities
    out: dict[str, Any] = {"flavour": "lithops", "cities": len(cities)}
    for key in ("rows", "skipped"):
        out[key] = sum(getattr(c, key) for c in cities)
    out["reviews"] = sum(c.positive + c.neutral + c.negative for c in cities)
    for key in ("positive", "neutral", "negative", "coordinates_positive", "coordinates_neutral",
                "coordinates_negative"):
        out[key] = sum(getattr(c, key) for c in cities)
    for c in cities:
        for key in ("positive", "neutral", "negative"):
            out[f"{slug(c.name)}.{key}"] = getattr(c, key)
    return out


def city_dir(seed: int, size: int) -> Path:
    """Where the synthetic city files for ``seed`` and ``size`` are cached."""
    return _corpus.cache_dir() / f"airbnb-cities-v{VERSION}-seed{seed}-size{size}"


def ensure_city_file(seed: int, size: int, call: CityCall) -> Path:
    """The synthetic file of one city, generated and atomically published if missing."""
    path = city_dir(seed, size) / call.name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding=ENCODING, newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(city_rows(seed, call.index, call.rows))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def city_rows(seed: int, index: int, rows: int) -> list[list[str]]:
    """The data records of synthetic city file ``index`` (no header); about 1% truncated.

    >>> records = city_rows(0, 0, 40)
    >>> len(records), sum(len(r) == 11 for r in records) >= 36
    (40, True)
    """
    rng = np.random.default_rng([seed, _STREAM, index, rows])
    listings = max(1, rows // _REVIEWS_PER_LISTING)
    lat0, lon0 = _CENTRES[index]
    listing_ids = np.sort(rng.choice(np.arange(10_000, 12_000_000), listings, replace=False))
    host_ids = rng.integers(1_000, 40_000_000, listings).tolist()
    lats = (lat0 + rng.uniform(-0.06, 0.06, listings)).tolist()
    lons = (lon0 + rng.uniform(-0.09, 0.09, listings)).tolist()
    hoods = rng.integers(0, len(_NEIGHBOURHOODS), listings).tolist()
    rooms = rng.choice(len(_ROOM_TYPES), size=listings, p=_ROOM_SHARES).tolist()
    which = np.sort(rng.integers(0, listings, rows))
    review_ids = np.cumsum(rng.integers(1, 5_000, rows)).tolist()
    days = rng.integers(0, _DAYS, rows)
    days = days[np.lexsort((days, which))]  # by listing, then date, like Inside Airbnb's files
    dates = (_DAY0 + days).astype(str).tolist()
    reviewer_ids = rng.integers(1_000, 50_000_000, rows).tolist()
    names = rng.integers(0, len(_REVIEWERS), rows).tolist()
    texts = _corpus.draw_reviews(rng, rows)
    foreign = (rng.random(rows) < _FOREIGN_SHARE).tolist()
    foreign_pick = rng.integers(0, len(_FOREIGN), rows).tolist()
    newline = (rng.random(rows) < _NEWLINE_SHARE).tolist()
    broken = (rng.random(rows) < _BROKEN_SHARE).tolist()
    kept_fields = rng.integers(1, MIN_FIELDS, rows).tolist()
    records = []
    for i in range(rows):
        text = _FOREIGN[foreign_pick[i]] if foreign[i] else (texts[i] or "")
        if newline[i]:
            text = text.replace(". ", ".\n", 1)
        k = int(which[i])
        record = [str(int(listing_ids[k])), str(review_ids[i]), dates[i], str(reviewer_ids[i]),
                  _REVIEWERS[names[i]], text, str(host_ids[k]), _NEIGHBOURHOODS[hoods[k]],
                  f"{lats[k]:.8f}", f"{lons[k]:.8f}", _ROOM_TYPES[rooms[k]]]
        records.append(record[:kept_fields[i]] if broken[i] else record)
    return records
