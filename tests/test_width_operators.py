"""Width operators: exactness at insertion in eval mode, the widened net rebuilding from its
spec, GradMax's fan-in against the singular vectors it should be, and Adam state carried."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_operators import make_net

from growlab.config import ConfigError
from growlab.engine.optim import carry_state
from growlab.growth.nets import GrowableNet, build_network
from growlab.growth.widening import GrowthData, layer
from growlab.growth.width_operators import (
    GradMaxWiden,
    Net2Wider,
    RandomWiden,
    WidthOperator,
    gradient_matrix,
)
from growlab.growth.width_strategy import WidthGrowthStrategy

OPERATORS = [Net2Wider, GradMaxWiden, RandomWiden]


def widen(net: GrowableNet, operator: WidthOperator, by: int, data=None, layers=None):
    strategy = WidthGrowthStrategy("test", operator=operator, widen_by=by, layers=layers)
    return strategy.grow(net, data)


def data_for(net: GrowableNet, x: torch.Tensor) -> GrowthData:
    """Batches of x with labels the network's own (shifted) predictions: a non-zero loss."""
    with torch.no_grad():
        y = (net.eval()(x).argmax(1) + 1) % 5
    return GrowthData(x, y, batch_size=32, loss=F.cross_entropy)


def change(net: GrowableNet, x: torch.Tensor, operator: WidthOperator, by: int) -> float:
    net.eval()
    with torch.no_grad():
        before = net(x)
        widen(net, operator, by, data_for(net, x))
        net.eval()
        return (net(x) - before).abs().max().item()


@pytest.mark.parametrize("cls", OPERATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_width_operators_preserve_the_function_and_rebuild(cls, kind: str, norm: str) -> None:
    net, x = make_net(kind, norm, depth=3)
    params_before = sum(p.numel() for p in net.parameters())
    assert cls.preserves_function
    assert change(net, x, cls(), by=5) <= 1e-5  # 12 -> 17: not a multiple of the width
    assert [s["out"] for s in net.arch["blocks"]] == [17, 17, 17]
    assert sum(p.numel() for p in net.parameters()) > params_before
    clone = build_network(net.arch)
    clone.load_state_dict(net.state_dict())
    clone.eval()
    assert torch.equal(net(x), clone(x))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_layer_norm_is_exact_for_net2wider_doubling_and_measured_otherwise(kind: str) -> None:
    """LayerNorm normalises over all units: copying every unit once keeps its mean and variance,
    anything else changes them, so the error is real (and recorded, never claimed zero)."""
    net, x = make_net(kind, "layer")
    assert change(net, x, Net2Wider(), by=12) <= 1e-5
    for cls in OPERATORS:
        net, x = make_net(kind, "layer")
        assert change(net, x, cls(), by=5) > 1e-4, cls.__name__


def test_net2wider_noise_changes_the_function_a_little() -> None:
    net, x = make_net("mlp", "batch")
    error = change(net, x, Net2Wider(noise=0.05), by=6)
    assert 1e-6 < error < 1.0


def test_only_the_listed_layers_widen_and_the_head_follows_the_last_block() -> None:
    net, x = make_net("cnn", "batch", depth=3)
    widen(net, RandomWiden(), by=4, layers=[2])
    assert [(s["in"], s["out"]) for s in net.arch["blocks"]] == [(1, 12), (12, 12), (12, 16)]
    assert net.head[-1].weight.shape == (5, 16)
    assert build_network(net.arch).head[-1].weight.shape == (5, 16)


def test_net2wider_divides_outgoing_weights_among_copies() -> None:
    net, _ = make_net("mlp", "none", depth=1)
    head_before = net.head.weight.detach().clone()
    torch.manual_seed(3)
    widen(net, Net2Wider(), by=12)  # a doubling: every unit copied once
    head = net.head.weight.detach()
    assert torch.allclose(head[:, :12], head_before / 2)
    # Each new column equals the (halved) column of the unit it copies.
    fan_in = net.blocks[0].op.weight.detach()
    source = [int((fan_in[12 + j] == fan_in[:12]).all(1).nonzero()) for j in range(12)]
    assert sorted(source) == list(range(12))
    assert torch.equal(head[:, 12:], head[:, source])


def test_gradmax_fan_in_is_the_top_right_singular_vectors_of_the_gradient_matrix() -> None:
    """Constructed case: one hidden block before the head. M = sum over the batch of g x^T,
    with x the block's input and g the loss gradient at the logits, computed here directly."""
    net, x = make_net("mlp", "none", depth=1)
    data = data_for(net, x)
    batch_x, batch_y = data.batches(1)[0]
    logits = net.head(net.blocks[0](batch_x)).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(logits, batch_y), logits)
    m = (g.T @ batch_x).double()
    _, singular, vh = torch.linalg.svd(m)
    existing = net.blocks[0].op.weight.detach().clone()
    widen(net, GradMaxWiden(), by=3, data=data)
    new = net.blocks[0].op.weight.detach()[12:].double()
    scale = existing.norm(dim=1).mean().double()
    assert torch.allclose(new.norm(dim=1), scale.expand(3), rtol=1e-5)
    cosines = (new / scale * vh[:3]).sum(1).abs()
    assert torch.allclose(cosines, torch.ones(3, dtype=torch.float64), atol=1e-5)
    assert singular[0] > singular[3]  # a real ranking, not a tie
    assert torch.equal(net.head.weight[:, 12:], torch.zeros(5, 3))
    assert torch.equal(net.blocks[0].op.bias[12:], torch.zeros(3))


@pytest.mark.parametrize("next_layer", ["conv", "head"])
def test_gradmax_conv_matrix_equals_the_gradient_of_a_linear_probe_unit(next_layer: str) -> None:
    """For a conv block, column d of M is the gradient of the loss on the outgoing weights of a
    unit whose map is the d-th input-patch coordinate (a conv with a one-hot kernel): checked
    against autograd through the real network for every d."""
    net, x = make_net("cnn", "none", depth=2)
    index = 0 if next_layer == "conv" else 1
    where = layer(net, index)
    data = data_for(net, x)
    m = gradient_matrix(net, where, data, batches=1)
    batch_x, batch_y = data.batches(1)[0]
    d_in = where.op.weight[0].numel()
    probe_kernel = torch.eye(d_in).view(d_in, *where.op.weight.shape[1:])
    h_in = net.features(batch_x, upto=index)
    probe_maps = F.conv2d(h_in, probe_kernel, padding=where.op.padding)  # (B, d_in, H, W)
    fan_out = torch.zeros(where.next.weight.shape[0], d_in, *where.next.weight.shape[2:])
    fan_out.requires_grad_(True)

    def add_probes(module, inputs, output):
        if next_layer == "conv":
            return output + F.conv2d(probe_maps, fan_out, padding=where.next.padding)
        return output + probe_maps.mean((2, 3)) @ fan_out.T

    hook = where.next.register_forward_hook(add_probes)
    net.eval()
    (grad,) = torch.autograd.grad(F.cross_entropy(net(batch_x), batch_y), fan_out)
    hook.remove()
    expected = grad.permute(0, *range(2, grad.dim()), 1).reshape(-1, d_in)
    assert m.shape == expected.shape
    assert torch.allclose(m, expected, atol=1e-6, rtol=1e-4)


def test_gradmax_widening_leaves_the_network_and_its_gradients_untouched() -> None:
    net, x = make_net("mlp", "batch")
    stats = net.blocks[0].norm.running_mean.clone()
    data = data_for(net, x)
    net.train()
    widen(net, GradMaxWiden(batches=2), by=4, data=data)
    assert net.training and all(p.grad is None for p in net.parameters())
    assert torch.equal(net.blocks[0].norm.running_mean[:12], stats)


def test_adam_state_is_carried_old_coordinates_exactly_new_ones_at_zero() -> None:
    net, x = make_net("cnn", "batch")
    y = torch.randint(0, 5, (len(x),))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.train()
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(net(x), y).backward()
        optimizer.step()
    old_state = {p: {k: v.clone() for k, v in optimizer.state[p].items()} for p in net.parameters()}
    growth = widen(net, Net2Wider(), by=4)
    assert growth.moved and all(old in old_state for old in growth.moved)
    new_optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    carried = carry_state(optimizer, new_optimizer, growth.moved)
    assert carried == len(list(net.parameters()))
    for old, new in growth.moved.items():
        state = new_optimizer.state[new]
        corner = tuple(slice(0, n) for n in old.shape)
        assert state["exp_avg"].shape == new.shape
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[key][corner], old_state[old][key])
            rest = torch.ones_like(state[key], dtype=torch.bool)
            rest[corner] = False
            assert rest.any() and torch.equal(state[key][rest], torch.zeros(int(rest.sum())))
        assert torch.equal(state["step"], old_state[old]["step"])
    # Untouched parameters (the head's bias) keep the very same state.
    assert new_optimizer.state[net.head[-1].bias] is optimizer.state[net.head[-1].bias]
    # And the new optimizer steps with the carried state.
    F.cross_entropy(net(x), y).backward()
    new_optimizer.step()


def test_bad_widths_are_refused_naming_the_value() -> None:
    from conftest import compose_cfg

    from growlab.validation import validate

    cases = [
        (["strategy.final_width=70", "strategy.widen_by=16"], "strategy.final_width=70"),
        (["strategy.layers=[0,7]"], "strategy.layers=[0, 7]"),
        (["strategy.trainable=new"], "strategy.trainable=new"),
        (["strategy.widen_by=0"], "strategy.widen_by=0"),
        (["strategy.noise=-1"], "strategy.noise=-1"),
        (["model=backbone"], "needs model=mlp|cnn, got model=backbone"),
        (["strategy.from_width=8"], "strategy.from_width=8 differs from model.width=16"),
    ]
    for overrides, named in cases:
        cfg = compose_cfg(["strategy=net2wider", "model.width=16", *overrides])
        with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("|", r"\|")):
            validate(cfg, environment=False)
    # What a sweep mixing depth and width strategies gives a depth strategy (see __main__).
    cfg = compose_cfg(["strategy=from-scratch", "++strategy.final_width=64"])
    with pytest.raises(ConfigError, match="strategy.final_width is not a key"):
        validate(cfg, environment=False)
    cfg = compose_cfg(["strategy=gradmax-widen", "strategy.gradmax_batches=0"])
    with pytest.raises(ConfigError, match="strategy.gradmax_batches=0"):
        validate(cfg, environment=False)


def test_layer_norm_width_growth_is_refused_where_it_cannot_keep_the_function() -> None:
    from conftest import compose_cfg

    from growlab.validation import validate

    layer = ["model.norm=layer", "model.width=16"]
    for strategy in ("gradmax-widen", "random-widen"):
        with pytest.raises(ConfigError, match=f"strategy={strategy} cannot keep the function"):
            validate(compose_cfg([f"strategy={strategy}", *layer]), environment=False)
    uneven = ["strategy=net2wider", *layer, "strategy.final_width=64", "strategy.widen_by=16"]
    with pytest.raises(ConfigError, match="strategy.final_width=64 must be a multiple"):
        validate(compose_cfg(uneven), environment=False)
    # One step to a multiple of the width copies every unit equally often: accepted, and exact.
    for final in (32, 48):
        ok = [
            "strategy=net2wider",
            *layer,
            f"strategy.final_width={final}",
            f"strategy.widen_by={final - 16}",
        ]
        validate(compose_cfg(ok), environment=False)
    for strategy in ("gradmax-widen", "random-widen", "net2wider"):
        validate(compose_cfg([f"strategy={strategy}", "model.norm=batch"]), environment=False)
