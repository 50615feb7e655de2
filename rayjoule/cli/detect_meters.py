"""``python -m rayjoule.meters``: which energy meters work on this host, and why the others don't.

Every meter is listed, available or not, with its kind (measured or
modelled), its domains and, when unavailable, the reason and how to fix it.
Each available meter is sampled for ``--sample-seconds`` (all at once) and
shown in watts; the tdp model's constants are printed too, with the CPU
table row that gave them, its source and the match rule that chose it (or
why no row matched). ``--json PATH`` writes ``{"meters": [{"name",
"available", "kind", "domains", "reason", "sample_watts"}], "chosen": [names],
..., "tdp_model": {...}}``.

``--cpu "MODEL NAME"`` shows only the tdp model for that CPU, as if this
host's cpuinfo named it (this host's vCPUs and SMT; the package's threads
from the table or the name only); no meter is probed or sampled.

Example::

    python -m rayjoule.meters --json meters.json
    python -m rayjoule.meters --cpu "Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz"
    RAYJOULE_POWERCAP_ROOT=/tmp/fake/sys/class/powercap python -m rayjoule.meters
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

import meters
from rayjoule.cli.common import Parser
from rayjoule.cli.output import check_output_paths, results_console, write_json
from rayjoule.core.errors import ConfigError

MAX_SAMPLE_SECONDS = 600.0


def build_parser() -> Parser:
    p = Parser(prog="python -m rayjoule.meters",
               description="Which energy meters work on this host, and why the others don't.")
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON to PATH")
    p.add_argument("--sample-seconds", type=float, default=2.0, metavar="S",
                   help="how long to sample each available meter (default 2; 0 skips it)")
    p.add_argument("--no-gpu", action="store_true", help="do not probe NVIDIA GPUs")
    p.add_argument("--cpu", metavar="MODEL_NAME",
                   help="show only what the tdp model would use for this CPU model name "
                        "(as /proc/cpuinfo prints it), e.g. \"AMD EPYC 7R13 Processor\"")
    return p


def _watts(r0: meters.Reading, r1: meters.Reading) -> dict[str, Any]:
    return {"total": r1.total_watts_since(r0), "by_domain": r1.watts_since(r0)}


def collect(sample_seconds: float, include_gpu: bool = True) -> dict[str, Any]:
    """Detect the meters, sample the available ones together, describe the tdp model."""
    found = meters.detect(include_gpu=include_gpu)
    rows: dict[str, dict[str, Any]] = {}
    for info in found.meters:
        rows[info.name] = {**info.to_dict(), "sample_watts": None}
    built: dict[str, meters.Meter] = {}
    tdp_model: dict[str, Any] | None = None
    try:
        for info in found.meters:
            if not info.available:
                continue
            try:
                built[info.name] = meters.get_meter(info.name, **found.options.get(info.name, {}))
            except meters.MeterError as exc:
                rows[info.name]["sample_error"] = str(exc)
        if sample_seconds > 0 and built:
            first = {name: m.read() for name, m in built.items()}
            time.sleep(sample_seconds)
            for name, m in built.items():
                try:
                    rows[name]["sample_watts"] = _watts(first[name], m.read())
                except meters.MeterError as exc:
                    rows[name]["sample_error"] = str(exc)
        tdp = built.get("tdp")
        if isinstance(tdp, meters.TdpMeter):
            tdp_model = tdp.describe()
        else:
            try:
                with meters.TdpMeter() as m:
                    tdp_model = m.describe()
            except meters.MeterError as exc:
                tdp_model = {"error": str(exc)}
    finally:
        for m in built.values():
            m.close()
    return {
        "meters": list(rows.values()),
        "chosen": list(found.chosen),
        "skipped": dict(found.skipped),
        "sample_seconds": sample_seconds,
        "tdp_model": tdp_model,
    }


def collect_cpu(cpu_name: str) -> dict[str, Any]:
    """The tdp model for a named CPU (this host's vCPUs and SMT), no meters probed."""
    try:
        model: dict[str, Any] = meters.resolve_model(cpu_model=cpu_name).describe()
    except meters.MeterError as exc:
        model = {"error": str(exc)}
    return {"cpu": cpu_name, "tdp_model": model}


def _fmt_watts(row: dict[str, Any]) -> str:
    w = row.get("sample_watts")
    if w is None:
        return row.get("sample_error", "") if row["available"] else ""
    parts = [f"{w['total']:.2f} W total"]
    if len(w["by_domain"]) > 1 or list(w["by_domain"]) != ["cpu"]:
        parts += [f"{d} {v:.2f}" for d, v in w["by_domain"].items()]
    return "\n".join(parts)


def render(payload: dict[str, Any], console: Console) -> None:
    """Print the meters table, why the others are unavailable, the choice and the tdp model."""
    if "meters" not in payload:
        render_tdp_model(payload.get("tdp_model") or {}, console)
        return
    secs = payload["sample_seconds"]
    table = Table(title="rayjoule energy meters on this host")
    table.add_column("meter", style="bold")
    table.add_column("available")
    table.add_column("kind")
    table.add_column("domains", overflow="fold")
    table.add_column(f"watts ({secs:g} s sample)" if secs > 0 else "watts", overflow="fold")
    for row in payload["meters"]:
        ok = "[green]yes[/]" if row["available"] else "[red]no[/]"
        table.add_row(row["name"], ok, row["kind"], ", ".join(row["domains"]) or "-",
                      _fmt_watts(row))
    console.print(table)
    for row in payload["meters"]:
        if not row["available"]:
            console.print(f"[bold]{escape(row['name'])}[/] unavailable: "
                          f"{escape(str(row['reason']))}", highlight=False)
    chosen = ", ".join(payload["chosen"]) or "none"
    console.print(f"chosen: [bold]{chosen}[/] (best CPU meter rapl > perf > tdp, plus nvml)")
    render_tdp_model(payload.get("tdp_model") or {}, console)


def _fmt_row(row: dict[str, Any]) -> str:
    size = ", ".join(f"{row[k]} {k}" for k in ("cores", "threads") if row.get(k) is not None)
    return f"{row['model']} ({row['vendor']}), {row['tdp_w']:g} W" + (f", {size}" if size else "")


def render_tdp_model(model: dict[str, Any], console: Console) -> None:
    """The tdp model's constants, the table row and rule behind them, or why it fell back."""
    if "error" in model or not model:
        console.print(f"tdp model: {model.get('error', 'unavailable')}")
        return
    t = Table(title="tdp model (modelled, not measured)", show_header=False)
    t.add_column("constant", style="bold")
    t.add_column("value", overflow="fold")
    row = model.get("row")
    t.add_row("CPU model", str(model.get("cpu_model")))
    t.add_row("basis", model["basis"])
    t.add_row("table row", _fmt_row(row) if row else "none")
    if model.get("rule"):
        t.add_row("match rule", model["rule"])
    t.add_row("source" if model["basis"] != "fallback" else "why fallback", model["source"])
    if model.get("threads") is not None:
        t.add_row("TDP / units", f"{model['tdp_w']:g} W / {model['threads']} "
                                 f"({(model.get('origins') or {}).get('threads', '')})")
    t.add_row("vCPUs (N)", str(model["vcpus"]))
    if "vcpu_unit" in model:
        smt = {True: "on", False: "off"}.get(model.get("smt"), "unknown")
        why = (model.get("origins") or {}).get("smt", "")
        t.add_row("a vCPU is", f"a whole {model['vcpu_unit']}" if model["vcpu_unit"] == "core"
                  else f"a hardware {model['vcpu_unit']}")
        t.add_row("SMT", f"{smt}" + (f" ({why})" if why else ""))
    t.add_row("idle / max W per vCPU",
              f"{model['idle_w_per_vcpu']:.3f} / {model['max_w_per_vcpu']:.3f}")
    t.add_row("idle / max W (host)", f"{model['idle_watts']:.2f} / {model['max_watts']:.2f}")
    t.add_row("idle fraction", f"{model['idle_fraction']:.3f}")
    t.add_row("curve", model["curve"])
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.sample_seconds <= MAX_SAMPLE_SECONDS:
        raise ConfigError(
            f"--sample-seconds must be between 0 and {MAX_SAMPLE_SECONDS:g}, "
            f"got {args.sample_seconds:g}"
        )
    if args.cpu is not None:
        check_cpu_name(args.cpu)
    check_output_paths(None, files={"--json": args.json})  # before the meters are sampled
    payload = (collect_cpu(args.cpu) if args.cpu is not None
               else collect(args.sample_seconds, include_gpu=not args.no_gpu))
    render(payload, results_console(args.json))
    if args.json is not None:
        write_json(args.json, payload)  # a failure now is the work's (exit 1), not the input's
    return 0


#: a CPU model name is at most 48 characters on x86 (the CPUID brand string) and short
#: elsewhere; far longer text is not a model name (and filled the screen)
MAX_CPU_NAME = 200


def check_cpu_name(name: str) -> None:
    """``--cpu``: a model name as /proc/cpuinfo prints it, so one line of printable text."""
    if not name.strip():
        raise ConfigError("--cpu needs a CPU model name, e.g. --cpu \"AMD EPYC 7R13 Processor\"")
    if len(name) > MAX_CPU_NAME:
        raise ConfigError(f"--cpu takes a CPU model name of at most {MAX_CPU_NAME} characters, "
                          f"got {len(name)}")
    if not name.isprintable():
        raise ConfigError(f"--cpu takes one line of printable text (a CPU model name), got "
                          f"{name[:60]!r}")

