"""Where and when growth triggers grew: per sweep folder, per data set (and teacher width or
depth, task and noise, if any), each seed's growths, final width and depth, where growth
stopped, and the share of training FLOPs its signal took; for a teacher, how many seeds' final
width and depth lie within 0.75x-2x of the teacher's (the growth-trigger check). Reads only
summary.json files (the output contract).

    python scripts/trigger_growths.py outputs/sweeps/shuffled-plateau [more sweep folders]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def rows(sweep: Path) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = defaultdict(list)
    for path in sorted(sweep.glob("*/summary.json")):
        s = json.loads(path.read_text())
        config = s.get("config", {})
        named = ("data.teacher_", "data.task", "data.noise")
        teacher = [f"{k[5:]}={v}" for k, v in config.items() if k.startswith(named)]
        key = " ".join([s["data"], *(t for t in teacher if "seed" not in t)])
        stages = s["stages"]
        grows = sum(st["phase"] == "grow" for st in stages)
        signal = sum(st.get("signal_flops", 0.0) for st in stages) / max(s["train_flops"], 1.0)
        stopped = (s.get("stopped_growing") or {}).get("stage")
        last = stages[-1]
        within = [
            0.75 * config[f"data.teacher_{k}"] <= last[k] <= 2 * config[f"data.teacher_{k}"]
            if f"data.teacher_{k}" in config
            else None
            for k in ("width", "depth")
        ]
        out[key].append((s["seed"], grows, last["width"], last["depth"], stopped, signal, within))
    return out


def within(runs: list[tuple]) -> str:
    """', within 0.75x-2x of the teacher's: width k/n, depth k/n' (nothing without a teacher)."""
    if runs[0][6][0] is None:
        return ""
    width, depth, n = sum(r[6][0] for r in runs), sum(r[6][1] for r in runs), len(runs)
    return f", within 0.75x-2x of the teacher's: width {width}/{n}, depth {depth}/{n}"


def main(folders: list[str]) -> None:
    for folder in folders:
        for key, runs in sorted(rows(Path(folder)).items()):
            runs.sort()
            print(
                f"{Path(folder).name} {key}: growths {[r[1] for r in runs]}, "
                f"final width {[r[2] for r in runs]}, depth {[r[3] for r in runs]}, "
                f"stopped after stage {[r[4] for r in runs]}, "
                f"signal share <= {max(r[5] for r in runs):.3f}{within(runs)}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
