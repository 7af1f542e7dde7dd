"""`last.pt` is written in the background: from a snapshot, in order, errors not swallowed."""

from __future__ import annotations

import pytest
import torch

from growlab.engine.run_directory.checkpoint import BackgroundWriter


def test_the_file_holds_the_payload_as_it_was_when_saved(tmp_path) -> None:
    writer = BackgroundWriter()
    weights = torch.zeros(1000)
    for step in range(1, 6):
        writer.save({"w": weights, "step": step}, tmp_path / "last.pt")
        weights += 1  # training goes on while the file is written
    writer.close()
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert saved["step"] == 5 and torch.equal(saved["w"], torch.full((1000,), 4.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary left


def test_a_failed_write_is_raised_when_waited_for(tmp_path) -> None:
    writer = BackgroundWriter()
    (tmp_path / "a-file").write_text("")
    writer.save({"w": torch.ones(3)}, tmp_path / "a-file" / "last.pt")  # cannot be a folder
    with pytest.raises(OSError):
        writer.wait()
    writer.save({"w": torch.ones(3)}, tmp_path / "ok.pt")  # the writer goes on working
    writer.close()
    assert torch.equal(torch.load(tmp_path / "ok.pt", weights_only=True)["w"], torch.ones(3))
