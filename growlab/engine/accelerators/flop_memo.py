"""FLOP counts remembered across processes, so a run with a known architecture never imports
torch's FLOP counter (about 0.2 s of start-up: it pulls in torch._decomp and triton).

A count depends only on the architecture, the input shape and the torch and growlab versions,
which make the key. The file is `<growlab cache>/flops.json`; it only saves time, so a file that
cannot be read or written is ignored, and two processes writing at once may each lose the
other's new entries, never corrupt the file (atomic replace).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from growlab import __version__
from growlab.data.tensor_cache import cache_dir
from growlab.engine.files import atomic_writer

log = logging.getLogger(__name__)

_MEMORY: dict[str, int] = {}


def memo_key(*parts: Any) -> str:
    text = json.dumps([torch.__version__, __version__, *parts], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


def _path() -> Path:
    return cache_dir().parent / "flops.json"


def _read() -> dict[str, int]:
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}


def recall(key: str) -> int | None:
    if key not in _MEMORY:
        _MEMORY.update(_read())
    return _MEMORY.get(key)


def remember(key: str, flops: int) -> None:
    _MEMORY[key] = flops
    try:
        merged = {**_read(), **_MEMORY}
        with atomic_writer(_path()) as f:
            f.write(json.dumps(merged, sort_keys=True).encode())
    except OSError as exc:
        log.warning("could not save FLOP counts to %s: %s", _path(), exc)
