"""A run's stored meter samples open at 0 J and close at the host's window energy,
however short the run (issue 23: the closing reading was missing, sub-second runs had none)."""

from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from rayjoule import RunConfig, run
from rayjoule.metering.host_meter import SAMPLE_INTERVAL_S
from rayjoule.runs.reports.parquet_export import export_parquet
from rayjoule.runs.store import Store


def samples_by_host_and_domain(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out = defaultdict(list)
    for row in rows:
        out[(row["host"], row["domain"])].append(row)
    return {k: sorted(v, key=lambda r: r["t"]) for k, v in out.items()}


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    db = tmp_path_factory.mktemp("samples") / "r.sqlite"
    result = run(RunConfig(workload="sleep", size=0, framework="native", tasks=1,
                           meter="tdp", idle_seconds=0), db=db)
    assert result.wall_s < SAMPLE_INTERVAL_S  # shorter than one background sample
    with Store(db) as store:
        columns, rows = store.table("samples")
    return db, result, [dict(zip(columns, r, strict=True)) for r in rows]


def test_a_short_run_stores_opening_and_closing_reading_per_host_and_domain(short_run):
    _, result, rows = short_run
    series = samples_by_host_and_domain([r for r in rows if r["run_id"] == result.run_id])
    hosts = {h.host: h for h in result.hosts}
    assert {host for host, _ in series} == set(hosts)
    for (host, domain), samples in series.items():
        energy = hosts[host].energy
        assert len(samples) >= 2
        assert samples[0]["t"] == 0 and samples[0]["joules"] == 0
        assert samples[-1]["t"] > 0
        assert samples[-1]["joules"] == pytest.approx(energy.by_domain[domain], rel=1e-9)
        assert samples[-1]["joules"] > 0
        assert (samples[-1]["meter"], samples[-1]["kind"]) == ("tdp", "modelled")
    assert {d for _, d in series} == set(result.energy.by_domain)


def test_the_parquet_export_carries_the_closing_reading(short_run, tmp_path):
    db, result, _ = short_run
    with Store(db) as store:
        export_parquet(store, tmp_path)
    rows = pq.read_table(tmp_path / "samples.parquet").to_pylist()
    series = samples_by_host_and_domain([r for r in rows if r["run_id"] == result.run_id])
    assert series
    for (host, domain), samples in series.items():
        [h] = [h for h in result.hosts if h.host == host]
        assert samples[0]["joules"] == 0
        assert samples[-1]["joules"] == pytest.approx(h.energy.by_domain[domain], rel=1e-9)
