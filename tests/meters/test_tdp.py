"""TdpMeter: the table, the curve's arithmetic at fixed utilisations, and the process scope."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meters import (
    MeterError,
    TdpMeter,
    explain_match,
    load_cpu_table,
    match_cpu,
    normalise_cpu_name,
)
from meters._cpu_table import DEFAULT_TABLE
from meters._cpuinfo import read_cpu_model
from meters._proctree import LinuxProcTable, ProcessTreeCpu, ProcStat, PsutilProcTable
from meters._tdp_model import CCF_IDLE_W_PER_VCPU, CCF_MAX_W_PER_VCPU, IDLE_FRACTION
from meters.testing import MeterContract

BURN = "import time\nwhile time.process_time() < {s}: pass\n"


class FakeHost:
    """A clock and a busy-CPU-seconds counter the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.busy = 50.0

    def clock(self) -> float:
        return self.t

    def cpu_seconds(self) -> float:
        return self.busy

    def run(self, seconds: float, utilisation: float, vcpus: int) -> None:
        self.t += seconds
        self.busy += seconds * utilisation * vcpus


class TestTdpHostContract(MeterContract):
    @pytest.fixture
    def make_meter(self):
        return lambda: TdpMeter()


class TestTdpProcessContract(MeterContract):
    @pytest.fixture
    def make_meter(self):
        return lambda: TdpMeter(scope="process", interval_s=0.02)

    def advance(self, meter: TdpMeter) -> None:
        sum(i * i for i in range(20_000))


# -- the table -------------------------------------------------------------------------------
def test_table_rows_are_complete_and_sourced() -> None:
    with open(DEFAULT_TABLE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {"model", "vendor", "tdp_w", "cores", "threads", "source"}
    table = load_cpu_table()
    assert len(table) == len(rows) >= 4000
    for r in table:
        assert r.vendor in ("intel", "amd") and r.key is not None and r.key.startswith(r.vendor)
        assert r.tdp_w > 0 and r.source, r
        if r.threads is not None and r.cores is not None:
            assert r.threads >= r.cores > 0, r
    own = [r for r in table if "CodeCarbon" not in r.source]
    assert len(own) >= 150 and all("https://" in r.source for r in own)
    assert all(r.cores and r.threads for r in own)
    models = " ".join(r.model for r in table)
    for needle in ["Platinum 8180", "Platinum 8280", "Platinum 8380", "Platinum 8480+",
                   "Platinum 8592+", "Gold 6148", "Gold 6248", "Gold 6338", "Gold 6430",
                   "EPYC 7R32", "EPYC 7571", "EPYC 7B12", "EPYC 7763", "EPYC 7R13",
                   "EPYC 9R14", "EPYC 9654", "EPYC 9554", "Ryzen 9 7950X", "Ryzen 9 9950X",
                   "i9-13900K", "i7-12700K", "i9-14900K", "E5-2686 v4", "i7-1185G7"]:
        assert needle in models, needle


@pytest.mark.parametrize(
    ("name", "tdp_w"),
    [
        ("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz", 145),
        ("Intel(R) Xeon(R) CPU E5-2670 v2 @ 2.50GHz", 115),
        ("Intel(R) Xeon(R) CPU E5-2670 v3 @ 2.30GHz", 120),
        ("11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz", 28),
        ("Intel(R) Core(TM) i7-1185G7E @ 2.80GHz", 15),
        ("AMD FX(tm)-8350 Eight-Core Processor", 125),
        ("Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz", 115),
    ],
)
def test_generations_and_suffixes_are_different_rows(name: str, tdp_w: float) -> None:
    m = explain_match(name)
    assert m.row is not None and m.row.tdp_w == tdp_w, m
    assert m.key is not None and m.key in (m.rule or "")


def test_names_never_match_across_vendors_or_by_substring() -> None:
    assert explain_match("AMD Xeon(R) Platinum 8259CL").row is None  # two vendors' words
    why = explain_match("Intel(R) Xeon(R) Platinum 8259").reason  # a prefix of 8259CL
    assert why == "no row of the CPU power table has the key 'intel xeon platinum 8259'"
    assert explain_match("Intel(R) Core(TM) i7-1185G7X @ 3.00GHz").row is None
    # AWS's off-roadmap E5-2686 v3 is in no table: v4's row is another generation
    assert explain_match("Intel(R) Xeon(R) CPU E5-2686 v3 @ 2.00GHz").row is None


def test_rows_of_one_key_that_disagree_are_ambiguous(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("model,vendor,tdp_w,cores,threads,source\n"
                     "Intel Xeon E5-2686 v4,intel,145,,,a\nXeon E5-2686 v4,intel,120,,,b\n")
    m = explain_match("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz", load_cpu_table(table))
    assert m.row is None and m.reason is not None and m.reason.startswith("ambiguous")
    assert "145 W (a)" in m.reason and "120 W (b)" in m.reason


@pytest.mark.parametrize(
    ("cpuinfo_name", "model"),
    [
        ("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", "Xeon Platinum 8259CL"),
        ("Intel(R) Xeon(R) Platinum 8480+", "Xeon Platinum 8480+"),
        ("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", "Xeon Gold 6148"),
        ("AMD EPYC 7763 64-Core Processor", "EPYC 7763"),
        ("AMD EPYC 7R32", "EPYC 7R32"),
        ("AMD EPYC 9R14 96-Core Processor", "EPYC 9R14"),
        ("AMD Ryzen 9 7950X 16-Core Processor", "Ryzen 9 7950X"),
        ("AMD Ryzen 9 7950X3D 16-Core Processor", "Ryzen 9 7950X3D"),
        ("13th Gen Intel(R) Core(TM) i9-13900K", "Core i9-13900K"),
        ("12th Gen Intel(R) Core(TM) i7-12700", "Core i7-12700"),
    ],
)
def test_cpu_names_match_their_row(cpuinfo_name: str, model: str) -> None:
    row = match_cpu(cpuinfo_name)
    assert row is not None and row.model == model


@pytest.mark.parametrize("name", ["AMD EPYC", "Intel(R) Xeon(R) CPU @ 2.20GHz",
                                  "Intel(R) Xeon(R) Platinum 81", "QEMU Virtual CPU version 2.5+"])
def test_vague_names_match_nothing(name: str) -> None:
    assert match_cpu(name) is None


def test_normalise() -> None:
    assert normalise_cpu_name("  Intel(R)  Core(TM) i9-14900K  CPU @ 3.20GHz ") == \
        "intel core i9-14900k"


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\n"
                    "model name\t: AMD EPYC 7R13 Processor\nflags\t: fpu\n")
    assert read_cpu_model(info) == "AMD EPYC 7R13 Processor"
    assert read_cpu_model(tmp_path / "missing") is None
    with TdpMeter(cpuinfo=info, vcpus=4) as m:
        d = m.describe()
        assert d["basis"] == "table" and d["row"]["model"] == "EPYC 7R13"
        assert m.model.max_w_per_vcpu == pytest.approx(225 / 96)


# -- the curve -------------------------------------------------------------------------------
def meter_at(host: FakeHost, **kw) -> TdpMeter:
    """A meter on the fake host; vCPUs are hardware threads unless ``smt`` says otherwise."""
    kw.setdefault("smt", True)
    return TdpMeter(cpu_seconds=host.cpu_seconds, clock=host.clock, **kw)


@pytest.mark.parametrize("u", [0.0, 0.25, 0.5, 1.0])
def test_table_model_at_fixed_utilisation(u: float) -> None:
    host = FakeHost()
    # EPYC 7763: 280 W / 128 threads = 2.1875 W per vCPU at full load
    with meter_at(host, cpu_model="AMD EPYC 7763 64-Core Processor", vcpus=8) as m:
        p_max = 280 / 128
        p_idle = IDLE_FRACTION * p_max
        assert m.idle_watts == pytest.approx(8 * p_idle)
        assert m.max_watts == pytest.approx(8 * p_max)
        host.run(10.0, u, 8)
        r = m.read()
    expected_w = 8 * p_idle + u * 8 * (p_max - p_idle)
    assert r.joules["cpu"] == pytest.approx(expected_w * 10.0)
    assert r.kind == "modelled" and r.source == "tdp" and r.t == host.t


def test_fallback_is_ccf_per_vcpu() -> None:
    host = FakeHost()
    with meter_at(host, cpu_model="AMD EPYC", vcpus=2) as m:
        assert m.model.basis == "fallback"
        assert (m.model.idle_w_per_vcpu, m.model.max_w_per_vcpu) == (0.74, 3.5)
        assert m.idle_watts == pytest.approx(1.48)
        host.run(4.0, 0.5, 2)  # 2 vCPU at 50 %: 1.48 W + 0.5 * 2 * 2.76 W
        assert m.read().total == pytest.approx(4.0 * (1.48 + 2.76))
        assert "not in the CPU power table" in m.describe()["source"]
    assert (CCF_IDLE_W_PER_VCPU, CCF_MAX_W_PER_VCPU) == (0.74, 3.5)


def test_explicit_tdp_overrides_the_table() -> None:
    host = FakeHost()
    with meter_at(host, tdp_watts=100.0, cpu_model="AMD EPYC 7763", vcpus=4) as m:
        assert m.model.basis == "override"
        assert m.model.max_w_per_vcpu == pytest.approx(100 / 128)  # threads still from the row
    with meter_at(host, tdp_watts=100.0, cpu_model="mystery", vcpus=4, idle_fraction=0.5) as m:
        assert m.model.max_w_per_vcpu == pytest.approx(25.0)  # threads = vCPUs
        assert m.idle_watts == pytest.approx(50.0)
        host.run(2.0, 1.0, 4)
        assert m.read().total == pytest.approx(200.0)


def test_utilisation_above_the_cpu_count_is_capped() -> None:
    host = FakeHost()
    with meter_at(host, cpu_model="AMD EPYC", vcpus=2) as m:
        host.t += 1.0
        host.busy += 5.0  # impossible: 5 CPU-seconds on 2 vCPUs in 1 s
        assert m.read().total == pytest.approx(7.0)  # the max power, not more


def test_readings_accumulate_across_several_intervals() -> None:
    host = FakeHost()
    with meter_at(host, cpu_model="AMD EPYC", vcpus=2) as m:
        total = 0.0
        for seconds, u in [(1.0, 0.0), (2.0, 1.0), (0.5, 0.3)]:
            host.run(seconds, u, 2)
            total += seconds * (1.48 + u * 2 * 2.76)
            assert m.read().total == pytest.approx(total)


def test_bad_arguments() -> None:
    with pytest.raises(MeterError, match="scope"):
        TdpMeter(scope="cluster")
    with pytest.raises(MeterError, match="tdp_watts"):
        TdpMeter(tdp_watts=-5)
    with pytest.raises(MeterError, match="idle_fraction"):
        TdpMeter(idle_fraction=1.5)


def test_probe_and_describe() -> None:
    p = TdpMeter.probe()
    assert p.available and p.kind == "modelled" and p.domains == ["cpu"]
    assert not TdpMeter.probe(tdp_watts=0).available
    with TdpMeter(vcpus=2, cpu_model="AMD EPYC", smt=True) as m:
        d = m.describe()
    assert d["scope"] == "host" and d["vcpus"] == 2 and "P(u)" in d["curve"]
    assert d["idle_watts"] == pytest.approx(1.48) and d["max_watts"] == pytest.approx(7.0)


# -- the process tree ------------------------------------------------------------------------
TABLES = [pytest.param(LinuxProcTable, id="proc"), pytest.param(PsutilProcTable, id="psutil")]


@pytest.mark.parametrize("table", TABLES)
def test_a_child_that_exits_between_samples_still_counts(table) -> None:
    tree = ProcessTreeCpu(lambda: [os.getpid()], table=table())
    before = tree()
    subprocess.run([sys.executable, "-c", BURN.format(s=0.3)], check=True)  # never sampled
    used = tree() - before
    assert used >= 0.3 - 0.05  # tick-based accounting (10 ms) vs the child's own clock
    assert used < 0.3 + 1.0  # the child's own CPU plus interpreter start-up and ours


@pytest.mark.parametrize("table", TABLES)
def test_a_child_seen_alive_is_not_counted_twice(table) -> None:
    tree = ProcessTreeCpu(lambda: [os.getpid()], table=table())
    before = tree()
    child = subprocess.Popen([sys.executable, "-c", BURN.format(s=0.4)])
    seen = False
    while child.poll() is None:
        tree()
        seen = seen or child.pid in tree.pids
    child.wait()
    used = tree() - before
    assert seen
    assert 0.4 - 0.05 <= used < 0.4 + 1.0


def test_extra_pids_are_counted_without_this_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", BURN.format(s=0.3)])
    try:
        with TdpMeter(scope="process", pids=[child.pid], include_self=False, vcpus=2,
                      cpu_model="AMD EPYC", interval_s=3600) as m:
            assert m.tracked_pids == [child.pid]
            r0 = m.read()
            child.wait()
            r1 = m.read()
    finally:
        child.kill()
        child.wait()
    assert r1.total >= r0.total


def test_set_pids_takes_a_callable_and_root_pid_replaces_self() -> None:
    with TdpMeter(scope="process", include_self=False, interval_s=3600) as m:
        assert m.tracked_pids == []
        m.set_pids(lambda: [os.getpid()])
        m.read()
        assert os.getpid() in m.tracked_pids
    with TdpMeter(scope="process", pids=os.getppid(), interval_s=3600) as m:
        assert os.getppid() in m.tracked_pids


def test_process_scope_static_is_the_host_idle() -> None:
    host = FakeHost()
    with meter_at(host, scope="process", cpu_model="AMD EPYC", vcpus=2, interval_s=3600) as m:
        host.run(10.0, 0.1, 2)  # the tree used 2 CPU-seconds in 10 s
        assert m.read().total == pytest.approx(10 * 1.48 + 2.0 * 2.76)


def test_proc_stat_parsing_with_an_odd_command_name(tmp_path: Path) -> None:
    tick = os.sysconf("SC_CLK_TCK")
    rest = ["S", "77"] + ["0"] * 9 + ["250", "50", "1000", "500"] + ["0"] * 4 + ["12345"]
    for pid, ppid in [(4242, 77), (77, 1)]:
        (tmp_path / str(pid)).mkdir()
        rest[1] = str(ppid)
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (a (b) c) " + " ".join(rest) + "\n")
    table = LinuxProcTable(proc=str(tmp_path))
    assert table.ppids() == {4242: 77, 77: 1}
    assert table.stat(4242) == ProcStat(77, 300 / tick, 1500 / tick, 12345 / tick)
    assert table.stat(999) is None
