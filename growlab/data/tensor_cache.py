"""Keep an expensively built dataset as one tensor file, so the next run loads it in a blink.

    value = cached({"name": "cifar10", "root": str(root)}, [root / "cifar-10-batches-py"], build)

`build()` runs only on a miss. Its result, a nest of tuples, lists and str-keyed dicts holding
numeric numpy arrays, torch tensors, str, int, float, bool or None, is written with
`torch.save` and read back with `torch.load(weights_only=True)` (no arbitrary unpickling);
numpy arrays come back as numpy arrays, tensors as tensors.

Where: `$GROWLAB_CACHE_DIR/tensors/`, else `~/.cache/growlab/tensors/` (read at call time).

The entry is keyed by
  * `key_parts` (JSON-serialisable: dataset name, resolved root, options such as image_size, a
    loader version to bump when the building code changes), and
  * a fingerprint of `sources`: relative path, size and mtime (ns) of every file under each
    source folder (recursively) or of each source file; an absent source counts too.
Each distinct `key_parts` owns one slot: a file named `<name>-<slot hash>-<fingerprint>.pt`.
Changing a source file (or its mtime) makes a new fingerprint and so a miss; the rebuilt entry
replaces the slot's old file. Writes go to a temporary file in the same folder, then
`os.replace`, so a reader never sees half a file and concurrent writers of one key are both
valid (the last rename wins). A cache file that cannot be read or written is a warning, never
an error: the cache only saves time. Delete the folder to drop everything.

The fingerprint is taken again after `build()`, and the entry is stored under that one, so a
build that downloads its sources (an absent folder before, files after) is found next time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from growlab.engine.files import atomic_writer

log = logging.getLogger(__name__)

T = TypeVar("T")

FORMAT = 1
_NDARRAY = "__growlab_ndarray__"


def cache_dir() -> Path:
    """`$GROWLAB_CACHE_DIR/tensors`, else `~/.cache/growlab/tensors`."""
    base = os.environ.get("GROWLAB_CACHE_DIR") or Path.home() / ".cache" / "growlab"
    return Path(base).expanduser() / "tensors"


def _files(source: Path) -> Iterator[tuple[str, int, int]]:
    if source.is_file():
        st = source.stat()
        yield "", st.st_size, st.st_mtime_ns
        return
    for folder, dirs, names in os.walk(source, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            st = path.stat()
            yield str(path.relative_to(source)), st.st_size, st.st_mtime_ns


def fingerprint(sources: Sequence[Path]) -> str:
    """Hash of (relative path, size, mtime_ns) of every file under `sources`; absent ones too."""
    digest = hashlib.sha256()
    for source in sources:
        source = Path(source).expanduser().absolute()
        digest.update(f"source {source}\n".encode())
        if not source.exists():
            digest.update(b"absent\n")
            continue
        for rel, size, mtime in _files(source):
            digest.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {_NDARRAY: torch.from_numpy(np.ascontiguousarray(value))}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, tuple):
        return tuple(_encode(v) for v in value)
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("tensor_cache: dict keys must be str")
        return {k: _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"tensor_cache: cannot store a {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_NDARRAY}:
            return value[_NDARRAY].numpy()
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_decode(v) for v in value)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _slot(key_parts: Mapping[str, Any]) -> tuple[str, str]:
    """(file-name prefix `<name>-<hash>`, canonical key text) for `key_parts`."""
    text = json.dumps(dict(key_parts), sort_keys=True, default=str)
    name = re.sub(r"[^A-Za-z0-9_.]+", "_", str(key_parts.get("name", "data")))[:40]
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}", text


def _load(path: Path, key: str, fp: str) -> tuple[bool, Any]:
    if not path.is_file():
        return False, None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged cache file is only a miss
        log.warning("tensor cache %s is unreadable (%s); rebuilding", path, exc)
        return False, None
    if not (
        isinstance(payload, dict)
        and payload.get("format") == FORMAT
        and payload.get("key") == key
        and payload.get("fingerprint") == fp
    ):
        log.warning("tensor cache %s does not match its key; rebuilding", path)
        return False, None
    return True, _decode(payload["value"])


def _store(folder: Path, prefix: str, key: str, fp: str, value: Any) -> Path | None:
    payload = {"format": FORMAT, "key": key, "fingerprint": fp, "value": _encode(value)}
    target = folder / f"{prefix}-{fp[:16]}.pt"
    try:
        with atomic_writer(target) as f:
            torch.save(payload, f)
    except OSError as exc:
        log.warning("could not write tensor cache %s (%s); continuing without it", target, exc)
        return None
    # Entries of this slot for older source fingerprints can never hit again.
    for stale in folder.glob(f"{prefix}-*.pt"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


def cached(
    key_parts: Mapping[str, Any],
    sources: Sequence[Path],
    build: Callable[[], T],
    *,
    folder: Path | None = None,
) -> T:
    """`build()`'s result, from the cache when `key_parts` and the sources' fingerprint match."""
    folder = cache_dir() if folder is None else Path(folder)
    prefix, key = _slot(key_parts)
    fp = fingerprint(sources)
    hit, value = _load(folder / f"{prefix}-{fp[:16]}.pt", key, fp)
    if hit:
        log.debug("tensor cache hit: %s", key)
        return value
    value = build()
    path = _store(folder, prefix, key, fingerprint(sources), value)
    if path is not None:
        log.info("cached %s in %s", key, path)
    return value
