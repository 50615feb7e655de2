"""The ``rayjoule`` console script: ``rayjoule <command> [args]`` runs ``rayjoule.cli.<command>``.

One entry point for users who installed the package; ``python -m rayjoule.<command>`` stays the
documented form and behaves identically (same parser, same exit statuses).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from rayjoule.cli.common import EXIT_BAD_INPUT, invoked_as, run_command

COMMANDS = {
    "run": "one metered run of a workload or pipeline",
    "tune": "Optuna searches the settings that cost the fewest joules",
    "compare": "framework overhead energy, native vs Ray vs Lithops",
    "profile": "profiling runs for the energy models",
    "predict": "the least-energy settings predicted from profiles",
    "history": "runs across stores and machines",
    "meters": "which energy meters work on this host",
    "workloads": "the workloads and pipelines",
    "export": "the results store as Parquet",
}

#: commands whose module in rayjoule.cli is named otherwise (the command name stays)
MODULES = {"meters": "detect_meters"}


def usage() -> str:
    from rayjoule import __version__

    width = max(map(len, COMMANDS))
    lines = [f"usage: rayjoule <command> [--help] …   (rayjoule {__version__})", "", "commands:"]
    lines += [f"  {name:<{width}}  {what}" for name, what in COMMANDS.items() if _exists(name)]
    return "\n".join(lines)


def _exists(name: str) -> bool:
    return importlib.util.find_spec(_module(name)) is not None


def _module(name: str) -> str:
    return f"rayjoule.cli.{MODULES.get(name, name)}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from rayjoule import __version__

        print(f"rayjoule {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS or not _exists(name):
        print(f"rayjoule: error: unknown command {name!r} (see rayjoule --help)", file=sys.stderr)
        return EXIT_BAD_INPUT
    module = importlib.import_module(_module(name))
    with invoked_as("rayjoule "):
        return run_command(module.main, rest)


if __name__ == "__main__":
    sys.exit(main())
