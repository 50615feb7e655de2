"""airbnb: VADER classes on hand-labelled reviews, CSV/Parquet/URI input, errors, the corpus."""

from __future__ import annotations

import csv
import gzip

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workloads
from workloads import WorkloadError, _corpus, _reviews
from workloads.airbnb import classify

LABELLED = [
    ("Absolutely wonderful stay! The apartment was spotless and the host was incredibly kind.",
     "positive"),
    ("Great location, beautiful view and a very comfortable bed. Highly recommended!", "positive"),
    ("We loved everything about this place, perfect for a family holiday.", "positive"),
    ("Terrible experience. The room was dirty, it smelled awful and the host was rude.",
     "negative"),
    ("Horrible place, broken shower and bugs everywhere. Never again.", "negative"),
    ("The worst stay of my life: noisy, filthy and unsafe.", "negative"),
    ("We stayed for two nights in March.", "neutral"),
    ("Check-in is at 3 pm.", "neutral"),
    ("The host canceled this reservation 5 days before arrival. This is an automated posting.",
     "neutral"),
    ("The flat is near the station.\nWe arrived on a Friday.", "neutral"),  # quoted newline
    ("", "neutral"),
    (None, "neutral"),
]
EXPECTED = {
    "reviews": len(LABELLED),
    "positive": sum(label == "positive" for _, label in LABELLED),
    "negative": sum(label == "negative" for _, label in LABELLED),
    "neutral": sum(label == "neutral" for _, label in LABELLED),
}


@pytest.mark.parametrize(("text", "label"), LABELLED)
def test_hand_labelled_reviews(text, label):
    assert classify(text) == label


def write_csv(path, rows, header=("listing_id", "id", "date", "reviewer_id", "reviewer_name",
                                   "comments")):
    """Inside Airbnb's reviews.csv layout; None becomes an empty field."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, text in enumerate(rows):
            writer.writerow([100 + i, i, "2024-05-01", 7 * i, "Ana", "" if text is None else text])
    return path


def write_parquet(path, rows, row_group_size=5, column="comments"):
    pq.write_table(pa.table({"id": list(range(len(rows))), column: rows}), path,
                   row_group_size=row_group_size)
    return path


@pytest.fixture
def texts():
    return [text for text, _ in LABELLED]


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "parquet"])
def test_file_input_counts_match_labels(tmp_path, texts, kind):
    path = tmp_path / f"reviews.{kind}"
    write_parquet(path, texts) if kind == "parquet" else write_csv(path, texts)
    for tasks in (1, 3, 8):
        assert workloads.execute("airbnb", tasks=tasks, data=str(path)) == EXPECTED


def test_file_uri(tmp_path, texts):
    path = write_parquet(tmp_path / "reviews.parquet", texts)
    assert workloads.execute("airbnb", tasks=2, data=path.as_uri()) == EXPECTED


def test_size_takes_the_first_rows(tmp_path, texts):
    path = write_csv(tmp_path / "reviews.csv", texts)
    assert workloads.execute("airbnb", size=6, tasks=4, data=str(path)) == {
        "reviews": 6, "positive": 3, "negative": 3, "neutral": 0}
    with pytest.raises(WorkloadError, match="exceeds"):
        workloads.execute("airbnb", size=len(texts) + 1, data=str(path))


def test_read_comments_row_ranges_cross_row_groups(tmp_path):
    rows = [f"review {i}" for i in range(23)]
    parquet = write_parquet(tmp_path / "r.parquet", rows, row_group_size=4)
    text_csv = write_csv(tmp_path / "r.csv", rows)
    for path in (parquet, text_csv):
        for start, stop in [(0, 23), (3, 9), (8, 12), (22, 23), (5, 5)]:
            assert _reviews.read_comments(str(path), start, stop) == rows[start:stop]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_file_without_comments_column(tmp_path, kind):
    path = tmp_path / f"reviews.{kind}"
    if kind == "csv":
        write_csv(path, ["fine"], header=("listing_id", "id", "date", "reviewer_id",
                                          "reviewer_name", "text"))
    else:
        write_parquet(path, ["fine"], column="text")
    with pytest.raises(WorkloadError, match="comments"):
        workloads.execute("airbnb", data=str(path))


def test_missing_file(tmp_path):
    with pytest.raises(WorkloadError, match="not found"):
        workloads.execute("airbnb", data=str(tmp_path / "nope.csv"))


def test_garbage_file(tmp_path):
    path = tmp_path / "reviews.parquet"
    path.write_text("not parquet at all")
    with pytest.raises(WorkloadError, match="Parquet"):
        workloads.execute("airbnb", data=str(path))


def test_synthetic_corpus_is_deterministic_and_prefix_stable():
    listings, block0 = _corpus.generate_block(4, 0)
    assert _corpus.generate_block(4, 0) == (listings, block0)
    assert _corpus.generate_block(5, 0)[1] != block0
    path = _corpus.ensure_corpus(4, 10)
    assert _reviews.read_comments(str(path), 0, 100) == block0[:100]
    assert _corpus.capacity(1) == _corpus.capacity(4096) == 4096
    assert _corpus.capacity(4097) == 8192 and _corpus.capacity(3 * 4096 + 1) == 4 * 4096


def test_synthetic_corpus_is_cached_atomically(cache_dir):
    first = _corpus.ensure_corpus(9, 100)
    mtime = first.stat().st_mtime_ns
    assert _corpus.ensure_corpus(9, 4000) == first
    assert first.stat().st_mtime_ns == mtime
    assert first.parent == cache_dir
    assert not list(cache_dir.glob("*.tmp"))


def test_synthetic_corpus_looks_like_reviews():
    texts = _corpus.generate_block(0, 0)[1]
    words = [len(t.split()) for t in texts if t]
    assert 20 < sum(words) / len(words) < 80
    assert any(t is None for t in texts) and "" in texts
    summary = workloads.execute("airbnb", size=600, tasks=2)
    assert summary["reviews"] == 600
    assert summary["positive"] > summary["neutral"] > 0 and summary["negative"] > 0


def test_cli_exits_2_on_missing_file(tmp_path, capsys):
    from rayjoule.cli.common import run_command
    from rayjoule.workloads import main

    code = run_command(main, ["airbnb", "--param", f"data={tmp_path / 'missing.csv'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "not found" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
