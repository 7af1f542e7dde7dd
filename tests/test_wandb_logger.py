"""W&B logging with the real wandb library, offline: the run file is read back and compared with
what the run recorded locally (metrics.jsonl, summary.json, .hydra/config.yaml)."""

from __future__ import annotations

import http.server
import json
import logging
import socketserver
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST, compose_cfg, mark_interrupted, read_summary, run_cli, run_in_process
from omegaconf import OmegaConf
from wandb.proto import wandb_internal_pb2 as pb

from growlab.engine.run_directory.records import read_metrics
from growlab.tracking import wandb_logger as wl
from growlab.tracking.loggers import NullLogger, make_logger

WANDB_RUN = ["logger=wandb", "depth=2", "train.epochs_per_stage=1"]


# ---- reading a .wandb file (leveldb log format: 7-byte header, 32 KiB blocks) -------------
def read_records(path: Path) -> Iterator[pb.Record]:
    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0)
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"bad checksum at {pos}"
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(pending)
            yield record


def items(updates: Any) -> dict[str, Any]:
    return {(u.key or "/".join(u.nested_key)): json.loads(u.value_json) for u in updates}


class WandbFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.records = list(read_records(path))
        kinds = [r.WhichOneof("record_type") for r in self.records]
        self.complete = "exit" in kinds
        self.run = next(r.run for r in self.records if r.HasField("run"))
        self.config = {k: v for k, v in items(self.run.config.update).items() if k != "_wandb"}
        self.history = [items(r.history.item) for r in self.records if r.HasField("history")]
        self.summary: dict[str, Any] = {}
        for r in self.records:
            if r.HasField("summary"):
                self.summary.update(items(r.summary.update))
        self.metrics = {
            (r.metric.glob_name or r.metric.name): r.metric.step_metric
            for r in self.records
            if r.HasField("metric")
        }

    def series(self, *keys: str) -> list[Any]:
        rows = [h for h in self.history if all(k in h for k in keys)]
        return [tuple(h[k] for k in keys) if len(keys) > 1 else h[keys[0]] for h in rows]


def wandb_files(run_dir: Path) -> list[WandbFile]:
    paths = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    return [WandbFile(p) for p in paths]


# ---- a real sweep, logged offline ----------------------------------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wandb_sweep")
    sweep_dir = root / "my-sweep"
    result = run_cli(
        ["-m", "strategy=identity-insert", "seed=0,1", *WANDB_RUN, f"hydra.sweep.dir={sweep_dir}"],
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir


def test_offline_run_file_mirrors_the_local_records(sweep: Path) -> None:
    run_dirs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(run_dirs) == 2  # two jobs in one process: init, finish, teardown, init again
    for run_dir in run_dirs:
        (wf,) = wandb_files(run_dir)
        summary = read_summary(run_dir)
        rows = read_metrics(run_dir / "metrics.jsonl")
        epochs = [r for r in rows if r["event"] == "epoch"]
        stages = [r for r in rows if r["event"] == "stage"]
        growths = [r for r in rows if r["event"] == "growth"]
        assert wf.complete, "the run file has no exit record"
        assert wf.path.parent.name.endswith(wl.run_id(run_dir))
        assert wf.run.run_id == wl.run_id(run_dir)
        assert wf.run.run_group == "my-sweep"
        assert wf.run.job_type == "identity-insert"
        assert wf.run.display_name == f"identity-insert-d2-s{summary['seed']}"
        assert {"identity-insert", "mlp", "digits"} <= set(wf.run.tags)
        hydra_cfg = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra/config.yaml"))
        assert wf.config == hydra_cfg
        # History: the exact values of metrics.jsonl, with the step metrics.
        assert wf.series("epoch/train_loss") == [r["train_loss"] for r in epochs]
        assert wf.series("epoch/val_acc") == [r["val_acc"] for r in epochs]
        assert wf.series("global_epoch") == list(range(1, len(epochs) + 1))
        assert wf.series("stage", "stage/test_acc") == [(r["stage"], r["test_acc"]) for r in stages]
        assert wf.series("depth", "depth/test_acc") == [(r["depth"], r["test_acc"]) for r in stages]
        assert wf.series("stage/params_total") == [r["params_total"] for r in stages]
        assert wf.series("stage/flops_per_sample") == [r["flops_per_sample"] for r in stages]
        assert wf.series("stage/improved") == [int(r["improved"]) for r in stages[1:]]
        assert wf.series("growth/preservation_error") == [r["preservation_error"] for r in growths]
        assert wf.series("growth/shock/acc_after") == [r["shock"]["acc_after"] for r in growths]
        assert wf.metrics["depth/*"] == "depth"
        assert wf.metrics["stage/*"] == "stage"
        assert wf.metrics["epoch/*"] == "global_epoch"
        for key in ("test_acc", "status", "train_flops", "strategy", "seed"):
            assert wf.summary[key] == summary[key]


def test_resumed_run_continues_the_same_wandb_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # mode=auto without credentials: offline, said once.
    for name in ("WANDB_MODE", "WANDB_API_KEY", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    run_dir = tmp_path / "group-from-parent" / "run"
    with caplog.at_level(logging.INFO, logger="growlab.tracking.wandb_logger"):
        first = run_in_process(["strategy=freeze-all-but-new", *WANDB_RUN], run_dir)
    assert sum("W&B: no credentials" in m for m in caplog.messages) == 1
    mark_interrupted(run_dir)
    second = run_in_process(["strategy=freeze-all-but-new", *WANDB_RUN], run_dir)
    assert second["resumes"] == first["resumes"] + 1
    files = wandb_files(run_dir)
    assert len(files) == 2
    assert {f.run.run_id for f in files} == {wl.run_id(run_dir)}
    assert {f.run.run_group for f in files} == {"group-from-parent"}
    assert all(f.complete for f in files)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _slow_api() -> _Server:
    """Answers GET at once (the host is up) but never answers the API's POSTs in time."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def do_POST(self) -> None:
            time.sleep(30)

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("server_up", [False, True], ids=["unreachable", "slow"])
def test_online_start_falls_back_to_offline_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_up: bool
) -> None:
    server = _slow_api() if server_up else None
    port = server.server_address[1] if server else 9  # nothing listens on port 9
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    cfg = compose_cfg([*FAST, "logger=wandb", "logger.mode=online", "logger.init_timeout_s=4"])
    started = time.monotonic()
    logger = wl.WandbLogger(cfg, tmp_path / "run")
    elapsed = time.monotonic() - started
    logger.log({"event": "epoch", "stage": 0, "depth": 1, "epoch": 1, "train_loss": 0.5})
    logger.finish({"status": "completed", "test_acc": 0.5})
    if server:
        server.shutdown()
    assert logger.mode == "offline"
    assert elapsed < 4 + 6, f"fallback took {elapsed:.1f} s"
    (wf,) = wandb_files(tmp_path / "run")
    assert wf.complete and wf.series("epoch/train_loss") == [0.5]


def test_logging_errors_never_stop_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(row: dict[str, Any], offsets: list[int]) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(wl, "wandb_row", broken)
    run_dir = tmp_path / "run"
    summary = run_in_process(["strategy=freeze-all-but-new", *WANDB_RUN], run_dir)
    assert summary["status"] == "completed"
    assert sum("boom" in m for m in caplog.messages) == 1
    (wf,) = wandb_files(run_dir)
    assert wf.complete and wf.summary["test_acc"] == summary["test_acc"]  # finish still ran


def test_a_logger_that_cannot_start_is_replaced_by_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    def refuse(**kwargs: Any) -> None:
        raise RuntimeError("no")

    monkeypatch.setattr(wandb, "init", refuse)
    logger = make_logger(compose_cfg([*FAST, "logger=wandb"]), tmp_path)
    assert isinstance(logger.inner, NullLogger)


def test_mode_resolution(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path)}
    assert wl.resolve_mode("auto", home)[0] == "offline"
    assert wl.resolve_mode("auto", home)[1] is not None
    assert wl.resolve_mode("auto", {**home, "WANDB_API_KEY": "k"}) == ("online", None)
    assert wl.resolve_mode("online", {**home, "WANDB_MODE": "offline"}) == ("offline", None)
    assert wl.resolve_mode("auto", {**home, "WANDB_MODE": "disabled"}) == ("disabled", None)
    assert wl.resolve_mode("disabled", {**home, "WANDB_API_KEY": "k"}) == ("disabled", None)
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    assert wl.resolve_mode("auto", home) == ("online", None)
    assert wl.resolve_mode("auto", {**home, "WANDB_BASE_URL": "https://my.host"})[0] == "offline"


def test_run_identity_and_row_mapping(tmp_path: Path) -> None:
    assert wl.run_id(tmp_path / "a") == wl.run_id(tmp_path / "x" / ".." / "a")
    assert wl.run_id(tmp_path / "a") != wl.run_id(tmp_path / "b")
    cfg = compose_cfg(["strategy=identity-insert", "depth=4", "seed=1", "logger=wandb"])
    assert wl.run_name(cfg) == "identity-insert-d4-s1"
    assert wl.run_group(cfg, tmp_path / "sweep" / "0_run") == "sweep"
    growth = {"event": "growth", "stage": 1, "depth": 2, "phase": "grow", "shock": {"acc_after": 1}}
    assert wl.wandb_row(growth, [0, 5]) == {"stage": 1, "depth": 2, "growth/shock/acc_after": 1}
    epoch = {"event": "epoch", "stage": 1, "depth": 2, "epoch": 3, "train_loss": 0.1}
    assert wl.wandb_row(epoch, [0, 5])["global_epoch"] == 8


def test_disabled_mode_writes_nothing(tmp_path: Path) -> None:
    logger = make_logger(compose_cfg([*FAST, "logger=wandb", "logger.mode=disabled"]), tmp_path)
    assert isinstance(logger.inner, wl.WandbLogger) and logger.inner.mode == "disabled"
    logger.log({"event": "epoch", "stage": 0, "depth": 1, "epoch": 1, "train_loss": 0.5})
    logger.finish({"status": "completed", "test_acc": 0.5})
    assert not (tmp_path / "wandb").exists()


def test_each_replica_of_a_stack_logs_its_own_complete_wandb_run(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "stacked"
    args = ["-m", "seed=0,1,2", "hydra.sweeper.stack_seeds=true", *WANDB_RUN]
    result = run_cli([*args, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert len(run_dirs) == 3
    for run_dir in run_dirs:
        (wf,) = wandb_files(run_dir)  # one run each, all open at once, each finished
        summary = read_summary(run_dir)
        epochs = [r for r in read_metrics(run_dir / "metrics.jsonl") if r["event"] == "epoch"]
        assert wf.complete and wf.run.run_id == wl.run_id(run_dir)
        assert summary["stack_size"] == 3
        assert wf.series("epoch/train_loss") == [r["train_loss"] for r in epochs]
        assert wf.summary["seed"] == summary["seed"] and wf.summary["status"] == "completed"
