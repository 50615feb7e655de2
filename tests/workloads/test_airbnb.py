"""airbnb: VADER classes, CSV/Parquet/URI input, errors, the corpus; lithops city files."""

from __future__ import annotations

import csv
import gzip

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workloads
from workloads import WorkloadError, _corpus, _reviews, _thesis_airbnb
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
    "flavour": "fast",
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
        "flavour": "fast", "reviews": 6, "positive": 3, "negative": 3, "neutral": 0}
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


# flavour=lithops: one call per city file, parsed with the original's rules

HEADER = _thesis_airbnb.COLUMNS


def city_record(text, lat, lon, listing=1):
    return [str(listing), "7", "2015-06-01", "9", "Zoë", text, "3", "Centrum", lat, lon,
            "Private room"]


def write_city(path, records):
    with open(path, "w", encoding="latin-1", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(records)


@pytest.fixture
def city_folder(tmp_path):
    """Two original file names with hand-labelled reviews, and a file the original never had."""
    positive, negative, neutral = LABELLED[0][0], LABELLED[3][0], LABELLED[9][0]
    write_city(tmp_path / "paris-2015-09-02-reviews.csv", [
        city_record(positive, "48.85", "2.35"),
        city_record(negative, "48.86", "2.36"),
    ])
    write_city(tmp_path / "amsterdam-2016-01-03-reviews.csv", [
        city_record(positive, "52.1", "4.1"),
        city_record(LABELLED[1][0], "52.1", "4.1"),        # same listing: coordinates once
        city_record(negative, "52.2", "4.2"),
        city_record(neutral, "52.3", "4.3"),               # a quoted line break
        ["1", "2", "2015-06-01"],                          # fewer than 11 fields: skipped
        city_record("Très propre, wonderful host and a lovely café!", "52.4", "4.4"),
    ])
    (tmp_path / "notes.txt").write_text("not a city")
    return tmp_path


def test_lithops_parses_city_files_like_the_original(city_folder):
    """The header row has 11 fields, so the original scored it too (neutral)."""
    for tasks in (1, 2, 5):
        summary = workloads.execute("airbnb", tasks=tasks, flavour="lithops",
                                    data=str(city_folder))
        assert summary == {
            "flavour": "lithops", "cities": 2, "rows": 7 + 3, "skipped": 1, "reviews": 6 + 3,
            "positive": 3 + 1, "neutral": 2 + 1, "negative": 1 + 1,
            "coordinates_positive": 2 + 1, "coordinates_neutral": 2 + 1,
            "coordinates_negative": 1 + 1,
            "amsterdam-2016-01-03.positive": 3, "amsterdam-2016-01-03.neutral": 2,
            "amsterdam-2016-01-03.negative": 1,
            "paris-2015-09-02.positive": 1, "paris-2015-09-02.neutral": 1,
            "paris-2015-09-02.negative": 1,
        }


def test_lithops_data_size_counts_city_files_in_the_originals_order(city_folder):
    summary = workloads.execute("airbnb", size=1, flavour="lithops", data=str(city_folder))
    assert summary["cities"] == 1 and "amsterdam-2016-01-03.positive" in summary
    with pytest.raises(WorkloadError, match="exceeds the 2 city files"):
        workloads.execute("airbnb", size=3, flavour="lithops", data=str(city_folder))
    with pytest.raises(WorkloadError, match="folder"):
        workloads.execute("airbnb", flavour="lithops", data=str(city_folder / "notes.txt"))
    with pytest.raises(WorkloadError, match="no original city"):
        workloads.execute("airbnb", flavour="lithops", data=str(city_folder.parent))


def test_lithops_synthetic_cities_one_call_each():
    wl = workloads.get("airbnb")
    size, params = wl.validate(None, 33, {"flavour": "lithops"})
    assert size == 33 * 1500
    summary = workloads.execute("airbnb", size=330, tasks=4, flavour="lithops")
    assert summary["cities"] == 33
    # 10 records per city plus its header; the header is scored, short records are skipped
    assert summary["rows"] == 330 + 33
    assert summary["reviews"] + summary["skipped"] == summary["rows"]
    assert summary["reviews"] == summary["positive"] + summary["neutral"] + summary["negative"]
    assert summary["positive"] > summary["neutral"] > summary["negative"] > 0
    for name in _thesis_airbnb.DATASET:
        key = _thesis_airbnb.slug(name)
        assert sum(summary[f"{key}.{c}"] for c in ("positive", "neutral", "negative")) <= 11


def test_lithops_synthetic_files_look_like_the_originals(cache_dir):
    size = 33 * 200
    wl = workloads.get("airbnb")
    wl.partition(1, size, 5, wl.validate(size, 1, {"flavour": "lithops"})[1])
    folder = _thesis_airbnb.city_dir(5, size)
    assert sorted(p.name for p in folder.iterdir()) == sorted(_thesis_airbnb.DATASET)
    raw = (folder / "paris-2015-09-02-reviews.csv").read_bytes()
    assert raw.startswith(b"listing_id,id,date,reviewer_id,reviewer_name,comments,")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # latin-1 accents
    with open(folder / "paris-2015-09-02-reviews.csv", encoding="latin1") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 201 and rows[0] == list(HEADER)
    lengths = [len(r) for r in rows[1:]]
    assert 0 < sum(n < 11 for n in lengths) < 10 and max(lengths) == 11
    assert any("\n" in r[5] for r in rows[1:] if len(r) == 11)
    assert 48 < float(rows[1][8]) < 49 and 2 < float(rows[1][9]) < 3
    assert _thesis_airbnb.city_rows(5, 20, 200) == _thesis_airbnb.city_rows(5, 20, 200)
    assert _thesis_airbnb.city_rows(6, 20, 200) != _thesis_airbnb.city_rows(5, 20, 200)
