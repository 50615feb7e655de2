"""Sentiment of Airbnb reviews with VADER, as in the Lithops Airbnb application.

Each review's VADER compound score classifies it: >= 0.4 positive, <= -0.4 negative,
otherwise neutral (empty or missing text is neutral). Input is ``data`` (Inside Airbnb's
``reviews.csv`` or any CSV/Parquet with a ``comments`` column, local or at a URI; ``size``
= the first N reviews, default all) or, without ``data``, a synthetic corpus generated from
the seed and cached as Parquet. Tasks get contiguous row ranges and read only those rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from workloads import _corpus, _reviews
from workloads._base import Param, ParamValue, Size, Workload, WorkloadError, split_even

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
    """With ``data``, check the file and resolve the size against its row count."""
    data = params["data"]
    if data is None:
        return WORKLOAD.default_size if size is None else size
    if not str(data).strip():
        raise WorkloadError("parameter 'data' is empty; give a path or URI, or leave it out")
    rows = _reviews.count_rows(str(data))
    if size is None:
        if rows == 0:
            raise WorkloadError(f"review data {data!r} holds no reviews")
        return rows
    if size > rows:
        raise WorkloadError(f"size {size} exceeds the {rows} reviews in {data!r}")
    return size


def partition(tasks: int, size: Size, seed: int, params: dict[str, ParamValue]) -> list[Chunk]:
    """Split the rows over tasks; make sure the synthetic corpus is cached on this host."""
    data = params["data"]
    rows = int(size)
    if data is None:
        _corpus.ensure_corpus(seed, rows)
    source = None if data is None else str(data)
    return [Chunk(source, seed, rows, start, stop) for start, stop in split_even(rows, tasks)]


def map(chunk: Chunk) -> Partial:
    """Read the chunk's reviews and count them by sentiment class."""
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


def reduce(partials: list[Partial]) -> Partial:
    """Sum the counts."""
    return Partial(
        sum(p.reviews for p in partials),
        sum(p.positive for p in partials),
        sum(p.negative for p in partials),
        sum(p.neutral for p in partials),
    )


def summary(result: Partial) -> dict[str, Any]:
    """Counts of reviews by class."""
    return {
        "reviews": result.reviews,
        "positive": result.positive,
        "negative": result.negative,
        "neutral": result.neutral,
    }


WORKLOAD = Workload(
    name="airbnb",
    description="VADER sentiment of Airbnb reviews (real CSV/Parquet or a synthetic corpus)",
    size_meaning="number of reviews (with data: the first N rows, default all)",
    default_size=40_000,
    params=(
        Param("data", str, None, "path or URI of a CSV/Parquet file with a 'comments' column; "
              "default: a synthetic corpus cached under $RAYJOULE_CACHE"),
    ),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
    prepare=prepare,
)
