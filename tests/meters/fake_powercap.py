"""Fake Linux powercap trees for tests (reusable by any test that needs RAPL counters).

The tree is laid out as Linux lays it out (``drivers/powercap/powercap_sys.c``):
the zones live under ``<base>/sys/devices/virtual/powercap/intel-rapl/intel-rapl:0/...``
(subzones nested in their package's folder), ``<base>/sys/class/powercap``
holds a flat symlink per zone and per control type, and zone ids are the
kernel's ``"%s:%x"``: hexadecimal, in registration order (``order``), so the
eleventh package registered is ``intel-rapl:a`` whatever socket it is. With
``dies > 1`` packages are named ``package-<s>-die-<d>`` as
``rapl_add_package`` names them; ``mirrored_dies=True`` makes the die zones
of one socket read one shared counter (AMD on kernels that enumerate CCDs as
dies). Point ``RaplMeter(root=tree.root)`` or
``RAYJOULE_POWERCAP_ROOT=tree.root`` at it::

    tree = make_powercap_tree(tmp_path, sockets=2, with_psys=True)
    tree.set("package-0", 1_000_000)           # µJ
    tree.advance("dram-1", joules=2.5)          # wraps like the hardware
    with FakePowercapDriver(tree, watts={"package-0": 20.0}) as drv:
        ...                                     # package-0 now draws 20 W
    drv.added_j("package-0")                    # exact joules the driver added

Counters are written atomically (a temp file renamed over ``energy_uj``), so a
reader never sees half a number. A manifest (``<base>/fake_powercap.json``)
lets another process reopen the tree with :meth:`FakePowercap.open`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

#: A typical Intel max_energy_range_uj (2^32 units of 61 µJ).
DEFAULT_MAX_RANGE_UJ = 262_143_328_850
MANIFEST = "fake_powercap.json"


@dataclass
class FakeZone:
    """One zone of the fake tree; ``domain`` is its name with its package's suffix.

    That is the name RaplMeter gives it, except for die zones that mirror one
    counter (RaplMeter reads the first as ``package-<s>``). Zones with the same
    non-empty ``counter`` read one shared counter.
    """

    domain: str
    zone_id: str
    name: str  # contents of the zone's name file
    folder: str
    max_range_uj: int
    counter: str = ""

    @property
    def energy_path(self) -> Path:
        return Path(self.folder) / "energy_uj"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class FakePowercap:
    """A fake powercap tree: ``root`` is the ``/sys/class/powercap`` to point meters at."""

    def __init__(self, base: Path, zones: dict[str, FakeZone]) -> None:
        self.base = Path(base)
        self.root = self.base / "sys" / "class" / "powercap"
        self.zones = zones
        self._lock = threading.Lock()

    @classmethod
    def open(cls, base: str | os.PathLike[str]) -> FakePowercap:
        """Reopen a tree made by :func:`make_powercap_tree` (e.g. in another process)."""
        base = Path(base)
        if base.name == "powercap":  # given the root: go back to the base
            base = base.parent.parent.parent
        data = json.loads((base / MANIFEST).read_text())
        return cls(base, {d: FakeZone(**z) for d, z in data["zones"].items()})

    @property
    def domains(self) -> list[str]:
        return list(self.zones)

    def zone(self, domain: str) -> FakeZone:
        try:
            return self.zones[domain]
        except KeyError:
            raise KeyError(f"no zone {domain!r} in the fake tree; have {self.domains}") from None

    def max_range(self, domain: str) -> int:
        return self.zone(domain).max_range_uj

    def energy_path(self, domain: str) -> Path:
        return self.zone(domain).energy_path

    def get(self, domain: str) -> int:
        """The counter's current value in µJ."""
        return int(self.energy_path(domain).read_text().strip())

    def sharing(self, domain: str) -> list[FakeZone]:
        """The zones that read the same counter as ``domain`` (itself included)."""
        zone = self.zone(domain)
        if not zone.counter:
            return [zone]
        return [z for z in self.zones.values() if z.counter == zone.counter]

    def set(self, domain: str, uj: int) -> None:
        """Set the counter to ``uj`` (must be within 0..max_energy_range_uj)."""
        zone = self.zone(domain)
        if not 0 <= uj <= zone.max_range_uj:
            raise ValueError(f"{uj} µJ is outside 0..{zone.max_range_uj}")
        with self._lock:
            for z in self.sharing(domain):
                _write(z.energy_path, f"{int(uj)}\n")

    def advance(self, domain: str, joules: float = 0.0, *, uj: int | None = None) -> int:
        """Add energy like the hardware does (wrapping past the maximum); returns the new value."""
        zone = self.zone(domain)
        step = int(uj) if uj is not None else round(joules * 1e6)
        with self._lock:
            now = int(zone.energy_path.read_text().strip())
            new = (now + step) % (zone.max_range_uj + 1)
            for z in self.sharing(domain):
                _write(z.energy_path, f"{new}\n")
        return new

    def break_energy(self, domain: str, how: str = "directory") -> None:
        """Make ``energy_uj`` unreadable without chmod (tests run as root).

        ``"directory"``: energy_uj becomes a folder (IsADirectoryError);
        ``"dangling"``: a symlink to nowhere (FileNotFoundError);
        ``"garbage"``: not a number (ValueError).
        """
        path = self.energy_path(domain)
        path.unlink()
        if how == "directory":
            path.mkdir()
        elif how == "dangling":
            path.symlink_to(path.with_name("missing-target"))
        elif how == "garbage":
            path.write_text("not a number\n")
        else:
            raise ValueError(f"unknown way to break a counter: {how!r}")


def _make_zone(folder: Path, name: str, max_range_uj: int, start_uj: int,
               max_power_uw: int | None) -> None:
    folder.mkdir(parents=True)
    (folder / "name").write_text(f"{name}\n")
    (folder / "energy_uj").write_text(f"{start_uj}\n")
    (folder / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    (folder / "enabled").write_text("1\n")
    (folder / "constraint_0_name").write_text("long_term\n")
    (folder / "constraint_0_power_limit_uw").write_text("150000000\n")
    if max_power_uw is not None:
        (folder / "constraint_0_max_power_uw").write_text(f"{max_power_uw}\n")


def make_powercap_tree(
    root: str | os.PathLike[str],
    sockets: int = 2,
    *,
    dies: int = 1,
    with_core: bool = True,
    with_uncore: bool = False,
    with_dram: bool = True,
    with_psys: bool = False,
    with_mmio: bool = False,
    max_range_uj: int = DEFAULT_MAX_RANGE_UJ,
    max_power_uw: int | None = None,
    start_uj: int = 0,
    mirrored_dies: bool = False,
    order: list[int] | None = None,
    control: str = "intel-rapl",
) -> FakePowercap:
    """Build a fake tree under ``root`` (a tmp folder) and return it.

    Zones: ``package-<s>`` for each socket (``package-<s>-die-<d>`` for each
    die when ``dies > 1``) with subzones ``core``, ``uncore`` and ``dram`` as
    asked (domains ``core-<s>`` / ``core-<s>-die-<d>``), ``psys`` (a top-level
    zone after the packages), and with ``with_mmio`` an ``intel-rapl-mmio:0``
    zone that duplicates ``package-0`` (its domain in
    :attr:`FakePowercap.zones` is ``mmio:package-0``; RaplMeter must ignore
    it). ``order`` lists the package zones (socket-major, die-minor index) in
    the order the kernel registers them, which decides their hex ids;
    ``control`` is the control type's name.
    """
    base = Path(root)
    devices = base / "sys" / "devices" / "virtual" / "powercap"
    cls_dir = base / "sys" / "class" / "powercap"
    cls_dir.mkdir(parents=True)
    zones: dict[str, FakeZone] = {}

    def add(domain: str, zone_id: str, name: str, folder: Path, counter: str = "") -> None:
        _make_zone(folder, name, max_range_uj, start_uj, max_power_uw)
        zones[domain] = FakeZone(domain, zone_id, name, str(folder), max_range_uj, counter)
        (cls_dir / zone_id).symlink_to(os.path.relpath(folder, cls_dir))

    msr = devices / control
    msr.mkdir(parents=True)
    (cls_dir / control).symlink_to(os.path.relpath(msr, cls_dir))
    packages = [(s, d) for s in range(sockets) for d in range(dies)]
    order = list(range(len(packages))) if order is None else list(order)
    if sorted(order) != list(range(len(packages))):
        raise ValueError(f"order must be a permutation of 0..{len(packages) - 1}, got {order}")
    subs = [n for n, on in (("core", with_core), ("uncore", with_uncore), ("dram", with_dram))
            if on]
    for k, index in enumerate(order):
        s, d = packages[index]
        suffix = f"{s}" if dies == 1 else f"{s}-die-{d}"
        pkg_id = f"{control}:{k:x}"
        counter = f"socket-{s}" if mirrored_dies and dies > 1 else ""
        add(f"package-{suffix}", pkg_id, f"package-{suffix}", msr / pkg_id, counter)
        for j, sub in enumerate(subs):
            sub_id = f"{pkg_id}:{j:x}"
            add(f"{sub}-{suffix}", sub_id, sub, msr / pkg_id / sub_id)
    if with_psys:
        psys_id = f"{control}:{len(packages):x}"
        add("psys", psys_id, "psys", msr / psys_id)
    if with_mmio:
        mmio = devices / "intel-rapl-mmio"
        mmio.mkdir(parents=True)
        (cls_dir / "intel-rapl-mmio").symlink_to(os.path.relpath(mmio, cls_dir))
        add("mmio:package-0", "intel-rapl-mmio:0", "package-0", mmio / "intel-rapl-mmio:0")
    manifest = {"zones": {d: asdict(z) for d, z in zones.items()}}
    (base / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return FakePowercap(base, zones)


class FakePowercapDriver:
    """Advance counters of a fake tree at constant watts in a background thread.

    ``watts`` maps domains to watts. Energy follows the monotonic clock, so
    joules added over a window ≈ watts × its duration, whatever the tick.
    :meth:`added_j` tells the exact joules added so far (after :meth:`stop`,
    the final figure).
    """

    def __init__(
        self,
        tree: FakePowercap | str | os.PathLike[str],
        watts: dict[str, float],
        tick_s: float = 0.005,
    ) -> None:
        self.tree = tree if isinstance(tree, FakePowercap) else FakePowercap.open(tree)
        for domain in watts:
            self.tree.zone(domain)
        self.watts = dict(watts)
        self.tick_s = tick_s
        self._added_uj = dict.fromkeys(watts, 0)
        self._carry = dict.fromkeys(watts, 0.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t_last = 0.0
        self._lock = threading.Lock()

    def start(self) -> FakePowercapDriver:
        self._t_last = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="fake-powercap-driver",
                                        daemon=True)
        self._thread.start()
        return self

    def _step(self) -> None:
        with self._lock:
            now = time.monotonic()
            dt, self._t_last = now - self._t_last, now
            for domain, w in self.watts.items():
                exact = w * dt * 1e6 + self._carry[domain]
                step = int(exact)
                self._carry[domain] = exact - step
                self.tree.advance(domain, uj=step)
                self._added_uj[domain] += step

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self._step()

    def stop(self) -> None:
        if self._thread is not None and not self._stop.is_set():
            self._stop.set()
            self._thread.join(5.0)
            self._step()  # account for the time since the last tick

    def added_j(self, domain: str) -> float:
        with self._lock:
            return self._added_uj[domain] / 1e6

    def __enter__(self) -> FakePowercapDriver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
