"""Would anchors at the target size mend run 3's misses? A probe of the design, not a change.

Run 3's three misses outside the noise (``memo``, ``tally``; ``collatz`` once) share one
cause: the profiled sizes (the grid at ⅛ of the target, anchors at ½) do not show the target's
work per task (experiments/RESULTS_unseen_predict.md, "After run 3"). This probe profiles
each named workload of run 3 again, five seeds, with ``--sizes`` putting the anchors **at the
target** (⅛ and 1) instead of at ½, predicts as the benchmark does, and judges each pick by
run 3's sweep (its medians: ``experiments/results/unseen_predict.json``) and its cost against
run 3's real 20-trial tune. Same flags as the benchmark (native, concurrency 2, ``tdp``
process scope, no idle baseline). Writes ``experiments/results/probe_target_anchor.json``.

    nice -n -10 python experiments/probe_target_anchor.py memo tally collatz
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN3 = ROOT / "experiments" / "results" / "unseen_predict.json"
OUT = ROOT / "experiments" / "results" / "probe_target_anchor.json"
SEEDS = range(1, 6)


def _cli(module: str, argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"{module} {' '.join(argv)} exited {done.returncode}: "
                         f"{done.stderr.strip()[-2000:]}")


def probe(case: dict, seed: int, folder: Path) -> dict:
    size = int(case["size"])
    db, prof, pred = folder / f"p{seed}.sqlite", folder / f"p{seed}-profile.json", \
        folder / f"p{seed}-predict.json"
    common = ["--workload", case["workload"], "--size", str(size), "--db", str(db)]
    _cli("rayjoule.profile", [*common, "--sizes", f"{size // 8},{size}", "--framework",
                              "native", "--concurrency", str(case["concurrency"]), "--seed",
                              str(seed), "--meter", "tdp", "--tdp-scope", "process",
                              "--idle-seconds", "0", "--json", str(prof)])
    _cli("rayjoule.predict", [*common, "--json", str(pred)])
    spent = json.loads(prof.read_text())["spent"]
    plan = json.loads(pred.read_text())["predictions"][0]
    fixed = set(json.loads(pred.read_text()).get("fixed_stages") or [])
    picked = {s: int(v["tasks"]) for s, v in plan["settings"].items() if s not in fixed}
    key = ",".join(f"{s}={n}" for s, n in picked.items())
    vs_best = case["sweep"][key]["total_j"] / case["best_j"]
    return {"seed": seed, "picked": key, "vs_best": vs_best, "within_10pct": vs_best <= 1.10,
            "profiling_j": spent["total_j"],
            "profiling_vs_tune_pct": 100 * spent["total_j"] / case["tune"]["total_j"]}


if __name__ == "__main__":
    run3 = json.loads(RUN3.read_text())
    found = {}
    with tempfile.TemporaryDirectory(prefix="anchor") as tmp:
        for name in sys.argv[1:]:
            case = run3[name]
            folder = Path(tmp) / name
            folder.mkdir()
            picks = [probe(case, k, folder) for k in SEEDS]
            found[name] = {"best": case["best"], "picks": picks}
            print(f"{name}: best {case['best']}; " + "; ".join(
                f"{p['picked']} ({p['vs_best']:.3f}×, {p['profiling_vs_tune_pct']:.1f} % of "
                "the tune)" for p in picks), flush=True)
    OUT.write_text(json.dumps(found, indent=1) + "\n")
