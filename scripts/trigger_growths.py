"""Where and when growth triggers grew: per sweep folder, per data set (and teacher width or
depth, if any), each seed's growths, final width and depth, where growth stopped, and the
share of training FLOPs its signal took. Reads only summary.json files (the output contract).

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
        teacher = [f"{k[5:]}={v}" for k, v in config.items() if k.startswith("data.teacher_")]
        key = " ".join([s["data"], *(t for t in teacher if "seed" not in t)])
        stages = s["stages"]
        grows = sum(st["phase"] == "grow" for st in stages)
        signal = sum(st.get("signal_flops", 0.0) for st in stages) / max(s["train_flops"], 1.0)
        stopped = (s.get("stopped_growing") or {}).get("stage")
        last = stages[-1]
        out[key].append((s["seed"], grows, last["width"], last["depth"], stopped, signal))
    return out


def main(folders: list[str]) -> None:
    for folder in folders:
        for key, runs in sorted(rows(Path(folder)).items()):
            runs.sort()
            print(
                f"{Path(folder).name} {key}: growths {[r[1] for r in runs]}, "
                f"final width {[r[2] for r in runs]}, depth {[r[3] for r in runs]}, "
                f"stopped after stage {[r[4] for r in runs]}, "
                f"signal share <= {max(r[5] for r in runs):.3f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
