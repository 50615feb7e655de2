"""PerfMeter: the pure parser against recorded outputs, and the meter against a fake perf."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest

from meters import MeterError, MeterUnavailable, PerfMeter, parse_perf_stat, parse_perf_stat_line
from meters._perf import discover_events, event_domain
from meters.testing import MeterContract
from tests.meters.fake_cpuinfo import render_cpuinfo

DATA = Path(__file__).with_name("data")
EVENTS = ("energy-pkg", "energy-ram")


# -- the parser ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "sep"),
    [
        ("perf_energy_C_comma.txt", ","),
        ("perf_energy_C_semicolon.txt", ";"),
        ("perf_energy_es_ES_comma.txt", ","),
        ("perf_energy_es_ES_semicolon.txt", ";"),
    ],
)
def test_energy_outputs_in_both_locales(name: str, sep: str) -> None:
    samples = parse_perf_stat((DATA / name).read_text(), sep)
    assert len(samples) == 8
    pkg = [s.value for s in samples if s.event == "power/energy-pkg/"]
    ram = [s.value for s in samples if s.event == "power/energy-ram/"]
    assert pkg == [24.57, 31.06, 28.93, 11.87]
    assert ram == [3.12, 3.18, 3.05, None]  # the last interval was <not counted>
    assert sum(pkg) == pytest.approx(96.43)
    assert {s.unit for s in samples} == {"Joules"}
    assert samples[0].t_s == 1.001032011


@pytest.mark.parametrize(
    ("name", "sep"),
    [
        ("perf_vm_sw_C_comma.txt", ","),
        ("perf_vm_sw_es_ES_comma.txt", ","),
        ("perf_vm_sw_es_ES_semicolon.txt", ";"),
    ],
)
def test_real_recordings_in_both_locales(name: str, sep: str) -> None:
    samples = parse_perf_stat((DATA / name).read_text(), sep)
    assert [s.event for s in samples] == ["cpu-clock", "msr/tsc/"] * 3
    clock = [s for s in samples if s.event == "cpu-clock"]
    assert all(s.unit == "msec" for s in clock)
    assert 390 < clock[0].value < 410  # ~400 ms of 2 CPUs in a 200 ms interval, not 400 or 83
    assert clock[0].value != int(clock[0].value)
    tsc = [s for s in samples if s.event == "msr/tsc/"]
    assert all(s.unit == "" and s.value > 1e8 for s in tsc)
    assert [s.t_s for s in clock] == sorted(s.t_s for s in clock)


def test_perf_messages_are_not_samples() -> None:
    text = (DATA / "perf_vm_no_power_pmu.txt").read_text()
    assert parse_perf_stat(text, ";") == []
    assert parse_perf_stat(text, ",") == []
    for junk in ["", "#           time             counts unit events", "1.0", "x,y,z,w"]:
        assert parse_perf_stat_line(junk, ",") is None


def test_integer_value_with_unit() -> None:
    s = parse_perf_stat_line("     2.000000001,1373,Joules,power/energy-pkg/,1,100.00,,", ",")
    assert s is not None and s.value == 1373.0


def test_event_domains() -> None:
    assert event_domain("power/energy-pkg/") == "package"
    assert event_domain("power/energy-ram/") == "dram"
    assert event_domain("power/energy-psys/") == "psys"
    assert event_domain("cpu-clock") is None


# -- a fake perf -----------------------------------------------------------------------------
FAKE_PERF = textwrap.dedent(
    """\
    #!{python}
    import json, os, signal, sys, time
    argv = sys.argv[1:]
    record = os.environ.get("FAKE_PERF_RECORD")
    if record:
        with open(record, "w") as f:
            json.dump({{"argv": argv, "LC_ALL": os.environ.get("LC_ALL")}}, f)
    mode = os.environ.get("FAKE_PERF_MODE", "ok")
    if mode == "fail":
        sys.stderr.write(open(os.environ["FAKE_PERF_FAILURE"]).read())
        sys.exit(129)
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
    sep = argv[argv.index("-x") + 1]
    events = argv[argv.index("-e") + 1].split(",")
    per_interval = json.loads(os.environ.get("FAKE_PERF_JOULES", "{{}}"))
    comma = os.environ.get("LC_ALL") != "C"  # like perf: the decimal mark follows the locale
    t = 0.0
    for i in range(int(os.environ.get("FAKE_PERF_INTERVALS", "3"))):
        t += 0.1
        for ev in events:
            value = "%.2f" % per_interval.get(ev, 0.0)
            if comma:
                value = value.replace(".", ",")
            sys.stderr.write(f"{{t:15.9f}}{{sep}}{{value}}{{sep}}Joules{{sep}}{{ev}}{{sep}}"
                             f"100000000{{sep}}100.00{{sep}}{{sep}}\\n")
        sys.stderr.flush()
    if mode == "die":
        sys.exit(1)
    while True:
        time.sleep(1)
    """
)


@pytest.fixture
def fake_perf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    perf = tmp_path / "perf"
    perf.write_text(FAKE_PERF.format(python=sys.executable))
    perf.chmod(0o755)
    events = tmp_path / "power-events"
    events.mkdir()
    for e in EVENTS:
        (events / e).write_text("event=0x02\n")
        (events / f"{e}.scale").write_text("2.3283064365386962890625e-10\n")
        (events / f"{e}.unit").write_text("Joules\n")
    paranoid = tmp_path / "perf_event_paranoid"
    paranoid.write_text("0\n")
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_PERF_RECORD", str(record))
    monkeypatch.setenv("FAKE_PERF_JOULES", json.dumps(
        {"power/energy-pkg/": 2.5, "power/energy-ram/": 0.25}))
    monkeypatch.setenv("FAKE_PERF_FAILURE", str(DATA / "perf_vm_no_power_pmu.txt"))
    monkeypatch.setenv("LC_ALL", "es_ES.UTF-8")  # the meter must override it for perf
    return {"perf": perf, "events_dir": events, "paranoid": paranoid, "record": record}


def make(fake: dict[str, Path], **kw) -> PerfMeter:
    return PerfMeter(perf=str(fake["perf"]), events_dir=fake["events_dir"],
                     paranoid=fake["paranoid"], **kw)


def wait_for_total(m: PerfMeter, expected: float, timeout_s: float = 10.0) -> float:
    deadline = time.monotonic() + timeout_s
    total = m.read().total
    while total < expected - 1e-9 and time.monotonic() < deadline:
        time.sleep(0.01)
        total = m.read().total
    return total


class TestPerfContract(MeterContract):
    @pytest.fixture
    def make_meter(self, fake_perf: dict[str, Path]):
        return lambda: make(fake_perf)


def test_meter_adds_up_intervals_and_forces_the_c_locale(fake_perf: dict[str, Path]) -> None:
    with make(fake_perf) as m:
        assert m.domains == ["package", "dram"]
        assert wait_for_total(m, 8.25) == pytest.approx(3 * 2.5 + 3 * 0.25)
        r = m.read()
    assert r.joules == {"package": pytest.approx(7.5), "dram": pytest.approx(0.75)}
    assert r.kind == "measured" and r.source == "perf"
    seen = json.loads(fake_perf["record"].read_text())
    assert seen["LC_ALL"] == "C"
    argv = seen["argv"]
    assert argv[:2] == ["stat", "-a"] and "-I" in argv and argv[argv.index("-x") + 1] == ";"
    assert argv[argv.index("-e") + 1] == "power/energy-pkg/,power/energy-ram/"


def test_basis_names_the_events_and_the_command(fake_perf: dict[str, Path]) -> None:
    with make(fake_perf) as m:
        basis = m.basis
    assert basis["events"] == ["power/energy-pkg/", "power/energy-ram/"]
    assert basis["command"][0] == str(fake_perf["perf"]) and basis["command"][1:3] == ["stat",
                                                                                     "-a"]
    assert basis["total_domains"] == ["package", "dram"]
    assert basis["cpus"].startswith("no usable power PMU cpumask")
    assert json.loads(json.dumps(basis)) == basis


def genoa_cpuinfo(tmp_path: Path, vendor: str, sockets: int = 1) -> Path:
    """12 CCDs × 8 cores per socket, SMT off: CPUs 0..95 on socket 0, 96.. on socket 1."""
    path = tmp_path / f"cpuinfo-{vendor}"
    path.write_text(render_cpuinfo("AMD EPYC 9654 96-Core Processor", vendor=vendor,
                                   sockets=sockets, cores_per_socket=96, threads_per_core=1))
    return path


def test_amd_per_ccd_cpumask_counts_the_package_once_per_socket(
        fake_perf: dict[str, Path], tmp_path: Path) -> None:
    # perf/x86/rapl on affected kernels: one CPU per CCD in the power PMU's cpumask
    ccds = [8 * k for k in range(12)] + [96 + 8 * k for k in range(12)]
    (fake_perf["events_dir"].parent / "cpumask").write_text(",".join(map(str, ccds)) + "\n")
    with make(fake_perf, cpuinfo=genoa_cpuinfo(tmp_path, "AuthenticAMD", sockets=2)) as m:
        wait_for_total(m, 8.25)
        basis = m.basis
    argv = json.loads(fake_perf["record"].read_text())["argv"]
    assert argv[:4] == ["stat", "-a", "-C", "0,96"]
    assert "one per die" in basis["cpus"] and "[0, 96]" in basis["cpus"]


def test_intel_or_one_cpu_per_socket_keeps_perfs_cpus(fake_perf: dict[str, Path],
                                                      tmp_path: Path) -> None:
    cpumask = fake_perf["events_dir"].parent / "cpumask"
    cpumask.write_text("0,8\n")  # two dies with their own counters (Cascade Lake-AP)
    with make(fake_perf, cpuinfo=genoa_cpuinfo(tmp_path, "GenuineIntel")) as m:
        assert "one energy counter per die" in m.basis["cpus"]
    assert "-C" not in json.loads(fake_perf["record"].read_text())["argv"]
    cpumask.write_text("0\n")  # a fixed kernel: already one CPU per socket
    with make(fake_perf, cpuinfo=genoa_cpuinfo(tmp_path, "AuthenticAMD")) as m:
        assert "already lists one CPU per socket" in m.basis["cpus"]
    assert "-C" not in json.loads(fake_perf["record"].read_text())["argv"]


def test_chosen_events_only(fake_perf: dict[str, Path]) -> None:
    with make(fake_perf, events=["energy-pkg"]) as m:
        assert m.domains == ["package"]
        assert wait_for_total(m, 7.5) == pytest.approx(7.5)
    with pytest.raises(MeterUnavailable, match="energy-psys"):
        make(fake_perf, events=["energy-psys"])


def test_perf_that_fails_at_start_is_unavailable_with_its_message(
    fake_perf: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PERF_MODE", "fail")
    with pytest.raises(MeterUnavailable, match="Cannot find PMU `power'"):
        make(fake_perf)


def test_perf_that_dies_later_fails_the_next_read(
    fake_perf: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PERF_MODE", "die")
    m = make(fake_perf)
    try:
        deadline = time.monotonic() + 10
        while m._proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(MeterError, match="perf stat stopped"):
            m.read()
    finally:
        m.close()


def test_paranoid_level_blocks_unprivileged_users(fake_perf: dict[str, Path]) -> None:
    fake_perf["paranoid"].write_text("2\n")
    opts = dict(perf=str(fake_perf["perf"]), events_dir=fake_perf["events_dir"],
                paranoid=fake_perf["paranoid"])
    probe = PerfMeter.probe(**opts, privileged=False)
    assert not probe.available
    assert "perf_event_paranoid is 2" in probe.reason
    assert "sysctl kernel.perf_event_paranoid=0" in probe.reason and "CAP_PERFMON" in probe.reason
    with pytest.raises(MeterUnavailable, match="sysctl"):
        PerfMeter(**opts, privileged=False)
    assert PerfMeter.probe(**opts, privileged=True).available


def test_probe_reasons(fake_perf: dict[str, Path], tmp_path: Path) -> None:
    missing = PerfMeter.probe(perf=str(tmp_path / "no-perf"))
    assert not missing.available and "perf not found" in missing.reason
    no_events = PerfMeter.probe(perf=str(fake_perf["perf"]), events_dir=tmp_path / "nothing")
    assert not no_events.available and "no RAPL energy events" in no_events.reason
    ok = PerfMeter.probe(perf=str(fake_perf["perf"]), events_dir=fake_perf["events_dir"],
                         paranoid=fake_perf["paranoid"])
    assert ok.available and ok.domains == ["package", "dram"] and ok.kind == "measured"


def test_discover_events_skips_scale_and_unit_files(fake_perf: dict[str, Path]) -> None:
    assert discover_events(fake_perf["events_dir"]) == ["energy-pkg", "energy-ram"]
