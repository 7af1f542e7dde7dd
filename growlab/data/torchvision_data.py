"""What the data sets read through torchvision's dataset classes share (growlab.data.sets:
cifar10, mnist, flowers102): where their files are, the refusal when they are absent, and
the tensor cache.

Where the files are: `data.root`; when it is null, `$GROWLAB_DATA_ROOT`; else `~/data`
(a relative path is taken from the directory the run was launched in). Each data set's
`TorchvisionFolder` says which folder under that root holds which files, and the layout the
official archive unpacks to.

`data.download=true` lets torchvision fetch what is missing (only where the machine is
online); by default nothing is downloaded, and absent files are one `ConfigError` naming the
folder and the expected layout. torchvision verifies CIFAR-10's batches and Flowers102's .mat
files against the official MD5 checksums; a mismatch is a `ConfigError` too (we do not bypass
the check: files that differ from the official release are not CIFAR-10).

Each loader returns (x_train, y_train, x_test, y_test): float32 images N x C x H x W scaled to
[0, 1] and int64 labels; `growlab.data` then holds out the validation split and normalises with
training statistics.

The uint8 pixels are cached with `growlab.data.tensor_cache` (key: dataset, resolved root,
options such as image_size, and the sizes and mtimes of the files in the dataset's folder), so
only the first run reads the source files; scaling to [0, 1] happens after the cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import to_absolute_path

from growlab.config import ConfigError, TorchvisionDataConfig
from growlab.data.registry import Arrays
from growlab.data.splits import unit_scaled

DEFAULT_ROOT = Path("~/data")
# Bump when a loader's output for the same files changes, so old cache entries are not used.
LOADER_VERSION = 1


def resolve_root(cfg: Any) -> Path:
    """`data.root`, else `$GROWLAB_DATA_ROOT`, else `~/data`, as an absolute path."""
    root = getattr(cfg, "root", None)
    if not root:
        root = os.environ.get("GROWLAB_DATA_ROOT") or DEFAULT_ROOT
    path = Path(str(root)).expanduser()
    if not path.is_absolute():
        path = Path(to_absolute_path(str(path)))
    return path.resolve()


@dataclass(frozen=True)
class TorchvisionFolder:
    """Where a torchvision data set's files lie under the data root.

    name: the data set's name; folder: its folder under the root; files: what that folder
    holds; layout: the expected layout in words, `<root>` standing for the root; md5_checked:
    whether torchvision checks the files against the official checksums.
    """

    name: str
    folder: Path
    files: tuple[str, ...]
    layout: str
    md5_checked: bool

    def path(self, root: Path) -> Path:
        return root / self.folder

    def hint(self, root: Path) -> str:
        top = self.folder.parts[0]
        hint = (
            f"expected layout: {self.layout.replace('<root>', str(root))}. Set data.root (or "
            f"GROWLAB_DATA_ROOT) to the folder that holds {top}/"
        )
        if root.name == top:
            hint += f" (here probably {root.parent}, not {top}/ itself)"
        return hint + ", or data.download=true on a machine that is online"

    def require_files(self, root: Path) -> None:
        folder = self.path(root)
        if folder.is_dir():
            missing = [f"{self.folder / f}" for f in self.files if not (folder / f).exists()]
        else:
            missing = [f"{self.folder}/"]
        if missing:
            raise ConfigError(
                f"data={self.name}: {root} lacks {', '.join(missing)}; {self.hint(root)}"
            )

    def require(self, cfg: TorchvisionDataConfig) -> None:
        """The registered `require`: the files, unless torchvision may download them."""
        if not cfg.download:
            self.require_files(resolve_root(cfg))

    def open(self, root: Path, download: bool, make: Callable[[], Any]) -> Any:
        """`make()` (a torchvision dataset), with its failures as one ConfigError."""
        if not download:
            self.require_files(root)
        try:
            return make()
        except (RuntimeError, OSError) as exc:
            if download:
                why = f"downloading into {root} failed ({type(exc).__name__}: {exc})"
            else:
                why = f"torchvision rejects the files under {self.path(root)} ({exc})"
                if self.md5_checked:
                    why += (
                        "; it checks them against the official release's MD5 checksums, so "
                        "they are corrupt, partial or not the official files: unpack the "
                        "official archive again"
                    )
            raise ConfigError(f"data={self.name}: {why}; {self.hint(root)}") from None

    def key(self, root: Path, **options: Any) -> dict[str, Any]:
        """The tensor cache key of the data set's arrays from this root."""
        return {"name": self.name, "root": str(root), "version": LOADER_VERSION, **options}

    def both_splits(
        self,
        root: Path,
        download: bool,
        make: Callable[[bool], Any],
        arrays: Callable[[Any], tuple[np.ndarray, np.ndarray]],
    ) -> Arrays:
        """(x_train, y_train, x_test, y_test) from `make(train)` datasets, via `arrays(ds)`."""
        out: list[np.ndarray] = []
        for train in (True, False):
            out += arrays(self.open(root, download, lambda t=train: make(t)))
        return out[0], out[1], out[2], out[3]


def scaled(raw: Arrays) -> Arrays:
    """uint8 pixels as float32 in [0, 1], labels as int64."""
    x_train, y_train, x_test, y_test = raw
    return (
        unit_scaled(x_train),
        np.asarray(y_train, dtype=np.int64),
        unit_scaled(x_test),
        np.asarray(y_test, dtype=np.int64),
    )
