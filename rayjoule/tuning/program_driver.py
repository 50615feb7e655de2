"""A program that calls ``ray.init()`` itself runs each trial in a driver process of its own.

Why: Ray refuses a second ``ray.init()`` in a connected driver ("Maybe you called ray.init
twice"), and rayjoule never patches Ray. So the tune keeps its Ray instance running and
starts, per trial, ``python -m rayjoule.tuning.program_driver SPEC SETTINGS`` with
``RAY_ADDRESS`` set to that instance: the program's own ``ray.init()`` connects to it as a
new Ray job. The tune meters the window in a measured block that attributes the tasks of
*that* job (:meth:`~rayjoule.runs.measured_block.block.Measurement.attribute_job`).

The handshake keeps the child's Ray workers alive until the block has sampled their CPU
time: the child prints one line ``RAYJOULE-PROGRAM {json}`` (ok or the error, and its job
id) when the program has returned, then waits until the tune closes its stdin. A program
that shut Ray down itself has no job id to report; the tune finds it in Ray's job table by
the child's pid.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "RAYJOULE-PROGRAM "


@dataclass
class ChildOutcome:
    """What the child driver reported (or that it died before reporting)."""

    ok: bool
    error: str | None
    job_id: str | None


class ChildDriver:
    """One trial's child driver, from start to the tune's go-ahead to exit."""

    def __init__(self, spec: str, settings: dict[str, Any], ray_address: str,
                 folder: str | None = None) -> None:
        env = dict(os.environ)
        env["RAY_ADDRESS"] = ray_address
        extra = [p for p in (folder, os.getcwd(), *_user_paths()) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(
            [*extra, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rayjoule.tuning.program_driver", spec,
             json.dumps(settings)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1)

    def wait_for_program(self) -> ChildOutcome:
        """Relay the program's output until its report line (or the child's end)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARKER):
                data = json.loads(line[len(MARKER):])
                return ChildOutcome(bool(data["ok"]), data.get("error"), data.get("job_id"))
            sys.stdout.write(line)
        code = self.proc.wait()
        return ChildOutcome(False, f"the program's driver process exited with status {code} "
                                   "before the program returned", None)

    def job_id_by_pid(self) -> str | None:
        """The child's Ray job from the GCS job table (its driver pid)."""
        from ray._private.state import jobs  # the GCS job table (as ``ray.state.jobs``)

        mine = [j for j in jobs() if int(j.get("DriverPid") or -1) == self.proc.pid]
        return str(mine[-1]["JobID"]) if mine else None

    def release(self, timeout_s: float = 60.0, *, stopping: bool = False) -> None:
        """Let the child exit (its workers go with its job) and reap it; ``stopping`` (the
        tune was interrupted) ends a program still running with SIGTERM, not a wait."""
        if stopping and self.proc.poll() is None:
            self.proc.terminate()
            timeout_s = min(timeout_s, 10.0)
        out = self.proc.stdout
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        relay = None
        if out is not None:  # relay what the program prints while it shuts down
            relay = threading.Thread(target=lambda: [sys.stdout.write(x) for x in out
                                                     if not x.startswith(MARKER)],
                                     daemon=True)
            relay.start()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if relay is not None and out is not None:
            relay.join(5.0)
            out.close()


def _user_paths() -> list[str]:
    """This process's import path minus the interpreter's own folders (so the child finds
    the same program modules)."""
    prefixes = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    out = []
    for p in sys.path:
        if not p or not Path(p).is_dir():
            continue
        r = str(Path(p).resolve())
        if not any(r == x or r.startswith(x + os.sep) for x in prefixes):
            out.append(r)
    return out


def _child(spec: str, settings_json: str) -> int:
    """The child driver: run the program once, report, wait for the go-ahead."""
    report: dict[str, Any] = {"ok": False, "error": None, "job_id": None}
    try:
        from rayjoule.tuning.program_loading import load_program

        program = load_program(spec)
        where = spec.rpartition(":")[0]
        # Ray puts the driver script's folder on its workers' path: this child "is" the
        # program's script, so a file program's sibling modules import on the workers too
        if program.folder:
            sys.argv[0] = where
        program.fn(**json.loads(settings_json))
        report["ok"] = True
    except BaseException as exc:  # noqa: BLE001 - reported to the tune, which stores it
        report["error"] = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    if "ray" in sys.modules:
        ray = sys.modules["ray"]
        if ray.is_initialized():
            report["job_id"] = ray.get_runtime_context().get_job_id()
    sys.stdout.flush()
    print(MARKER + json.dumps(report), flush=True)
    sys.stdin.read()  # until the tune has closed the measured block
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2]))
