"""Sentiment of Airbnb reviews with VADER, as in the Lithops Airbnb application.

Each review's VADER compound score classifies it: >= 0.4 positive, <= -0.4 negative,
otherwise neutral. Two flavours (parameter ``flavour``):

``fast`` (default)
    One table of reviews: ``data`` (Inside Airbnb's ``reviews.csv`` or any CSV/Parquet with
    a ``comments`` column, local or at a URI; ``size`` = the first N reviews, default all)
    or, without ``data``, a synthetic corpus generated from the seed and cached as Parquet
    (40 000 reviews by default). Tasks get contiguous row ranges and read only those rows;
    empty or missing text is neutral without calling VADER.

``lithops``
    The Lithops Airbnb example as the thesis ran it (``lithops-cloud/applications``,
    ``airbnb/map_sentiment_analysis.py``): one call per city review file (33 cities),
    each copied to local disk and parsed with the original's rules (latin-1, ``csv.reader``,
    rows of at least 11 fields, ``str(row[5])`` scored, coordinates ``(row[8], row[9])``
    collected per class without duplicates), see :mod:`workloads._thesis_airbnb`. Without
    ``data``, synthetic city files shaped like the originals (``size`` review records over
    the 33 files, default 49 500); with ``data`` = a local folder holding original city
    files, one call per file found (``size`` = how many of them, default all). The summary
    adds each city file's counts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from workloads import _corpus, _reviews
from workloads import _thesis_airbnb as cities
from workloads._base import Param, ParamValue, Size, Workload, WorkloadError, split_even
from workloads._thesis_flavour import LITHOPS, flavour_param

POSITIVE = 0.4
NEGATIVE = -0.4


@dataclass(frozen=True)
class Chunk:
    """Rows ``[start, stop)`` of ``data``, or of the synthetic corpus when ``data`` is None."""

    data: str | None
    seed: int
    rows: int
    start: int
    stop: int


@dataclass(frozen=True)
class Partial:
    """Review counts by class (exact integers)."""

    reviews: int = 0
    positive: int = 0
    negative: int = 0
    neutral: int = 0


def prepare(size: Size | None, params: dict[str, ParamValue]) -> Size:
    """With ``data``, check the file (lithops: folder) and resolve the size against it."""
    data = params["data"]
    if data is not None and not str(data).strip():
        raise WorkloadError("parameter 'data' is empty; give a path or URI, or leave it out")
    if params["flavour"] == LITHOPS:
        return _prepare_lithops(size, None if data is None else str(data))
    if data is None:
        return WORKLOAD.default_size if size is None else size
    rows = _reviews.count_rows(str(data))
    if size is None:
        if rows == 0:
            raise WorkloadError(f"review data {data!r} holds no reviews")
        return rows
    if size > rows:
        raise WorkloadError(f"size {size} exceeds the {rows} reviews in {data!r}")
    return size


def _prepare_lithops(size: Size | None, data: str | None) -> Size:
    """Synthetic: size = review records (default 49 500); data: size = city files used."""
    if data is None:
        return cities.DEFAULT_SIZE if size is None else size
    found = len(cities.data_files(data))
    if size is None:
        return found
    if size > found:
        raise WorkloadError(f"size {size} exceeds the {found} city files in {data!r} "
                            f"(with flavour=lithops and data, size counts city files)")
    return size


def partition(tasks: int, size: Size, seed: int,
              params: dict[str, ParamValue]) -> list[Chunk] | list[cities.CityChunk]:
    """Split the rows (lithops: the city files) over tasks; cache synthetic input on this host."""
    data = params["data"]
    if params["flavour"] == LITHOPS:
        return cities.partition(tasks, int(size), seed, None if data is None else str(data))
    rows = int(size)
    if data is None:
        _corpus.ensure_corpus(seed, rows)
    source = None if data is None else str(data)
    return [Chunk(source, seed, rows, start, stop) for start, stop in split_even(rows, tasks)]


def map(chunk: Chunk | cities.CityChunk) -> Partial | cities.CityPartial:
    """Read the chunk's reviews (lithops: city files) and count them by sentiment class."""
    if isinstance(chunk, cities.CityChunk):
        return cities.map_cities(chunk)
    if chunk.start == chunk.stop:
        return Partial()
    uri = chunk.data or str(_corpus.ensure_corpus(chunk.seed, chunk.rows))
    counts = {"positive": 0, "negative": 0, "neutral": 0}
    for text in _reviews.read_comments(uri, chunk.start, chunk.stop):
        counts[classify(text)] += 1
    return Partial(chunk.stop - chunk.start, **counts)


def classify(text: str | None) -> str:
    """``positive``, ``negative`` or ``neutral`` by VADER's compound score."""
    if not text or not text.strip():
        return "neutral"
    compound = _analyzer().polarity_scores(text)["compound"]
    if compound >= POSITIVE:
        return "positive"
    if compound <= NEGATIVE:
        return "negative"
    return "neutral"


@functools.cache
def _analyzer() -> Any:
    """One VADER analyzer per process: loading its lexicon is the expensive part."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def reduce(partials: list[Any]) -> Partial | cities.CityPartial:
    """Sum the counts (lithops: gather the cities' counts in file order)."""
    if isinstance(partials[0], cities.CityPartial):
        return cities.reduce(partials)
    return Partial(
        sum(p.reviews for p in partials),
        sum(p.positive for p in partials),
        sum(p.negative for p in partials),
        sum(p.neutral for p in partials),
    )


def summary(result: Partial | cities.CityPartial) -> dict[str, Any]:
    """Counts of reviews by class (lithops: totals, then per city file)."""
    if isinstance(result, cities.CityPartial):
        return cities.summary(result)
    return {
        "flavour": "fast",
        "reviews": result.reviews,
        "positive": result.positive,
        "negative": result.negative,
        "neutral": result.neutral,
    }


WORKLOAD = Workload(
    name="airbnb",
    description="VADER sentiment of Airbnb reviews (real CSV/Parquet or a synthetic corpus)",
    size_meaning=("number of reviews (with data: the first N rows, default all); with "
                  "flavour=lithops, review records over the 33 synthetic city files (default "
                  "49500), or with data the number of city files (default all)"),
    default_size=40_000,
    params=(
        Param("data", str, None, "path or URI of a CSV/Parquet file with a 'comments' column "
              "(flavour=lithops: a local folder of the original city review files); default: "
              "synthetic input cached under $RAYJOULE_CACHE"),
        flavour_param("lithops-cloud/applications airbnb/map_sentiment_analysis.py: one call "
                      "per city file (33), latin-1 csv.reader, rows of >= 11 fields, VADER on "
                      "row[5] (vaderSentiment here, NLTK's port there), distinct coordinates "
                      "per class"),
    ),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
    prepare=prepare,
)
