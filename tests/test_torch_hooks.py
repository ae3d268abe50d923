"""Layer capture by hooks on a small CNN that is not VGG: targets, in-place ReLUs, early stop, cleanup."""

import pytest
import torch
from torch import nn

from filtviz_core.errors import FiltvizError
from torch_filtviz.hooks import Target, capture, layer_channels, layer_output, resolve_target


class Counter(nn.Module):
    """Identity that counts its calls: tells whether the forward pass got this far."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


class TinyNet(nn.Module):
    """conv -> inplace ReLU -> (conv -> inplace ReLU -> pool) -> counter; plus an unused conv."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.act1 = nn.ReLU(inplace=True)
        self.block = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.tail = Counter()
        self.unused = nn.Conv2d(6, 6, 1)
        self.aliases = {"first_relu": "act1", "pool": "block.2"}

    def forward(self, x):
        return self.tail(self.block(self.act1(self.conv1(x))))


def all_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.fixture
def net():
    return TinyNet().eval()


@pytest.fixture
def x():
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def test_targets_follow_the_objective(net):
    assert resolve_target(net, "conv1", "pre_relu") == Target("conv1", "conv1", net.conv1, "output", False)
    assert resolve_target(net, "conv1", "post_relu").relu is True
    assert resolve_target(net, "act1", "pre_relu").where == "input"
    assert resolve_target(net, "act1", "post_relu").where == "output"
    alias = resolve_target(net, "first_relu", "pre_relu")
    assert (alias.name, alias.path, alias.where) == ("first_relu", "act1", "input")
    pool = resolve_target(net, "pool", "pre_relu")
    assert (pool.path, pool.where, pool.relu) == ("block.2", "output", False)


@pytest.mark.parametrize("name", ["nope", "block.7", "", "conv1.weight"])
def test_unknown_layer_lists_valid_names(net, name):
    with pytest.raises(FiltvizError, match="unknown layer") as err:
        resolve_target(net, name)
    assert "first_relu" in str(err.value) and "\n" not in str(err.value)


def test_unknown_objective(net):
    with pytest.raises(FiltvizError, match="unknown objective"):
        resolve_target(net, "conv1", "relu")


def test_values_are_the_layer_tensors(net, x):
    with torch.no_grad():
        conv1 = net.conv1(x)
        conv2 = net.block[0](torch.relu(conv1))
    assert (conv1 < 0).any()  # else the in-place checks below prove nothing
    names = [
        resolve_target(net, "conv1", "pre_relu"),
        resolve_target(net, "conv1", "post_relu"),
        resolve_target(net, "act1", "pre_relu"),
        resolve_target(net, "block.1", "pre_relu"),
        resolve_target(net, "pool"),
    ]
    targets = [Target(f"t{i}", t.path, t.module, t.where, t.relu) for i, t in enumerate(names)]
    for stop in (True, False):
        with torch.no_grad(), capture(net, targets, stop=stop) as cap:
            got = cap(x)
        # in-place ReLUs ran after these were captured: they must still hold the negatives
        torch.testing.assert_close(got["t0"], conv1, rtol=0, atol=0)
        torch.testing.assert_close(got["t1"], torch.relu(conv1), rtol=0, atol=0)
        torch.testing.assert_close(got["t2"], conv1, rtol=0, atol=0)
        torch.testing.assert_close(got["t3"], conv2, rtol=0, atol=0)
        torch.testing.assert_close(got["t4"], nn.functional.max_pool2d(torch.relu(conv2), 2), rtol=0, atol=0)


def test_forward_stops_right_after_the_last_target(net, x):
    relu_calls = []
    net.act1.register_forward_hook(lambda *a: relu_calls.append(1))
    with capture(net, resolve_target(net, "act1", "pre_relu")) as cap:
        cap(x)
        assert net.tail.calls == 0 and relu_calls == []  # stopped in the ReLU's pre-hook
        cap(x)
    two = [resolve_target(net, "block.0"), resolve_target(net, "conv1")]
    with capture(net, two) as cap:
        assert set(cap(x)) == {"block.0", "conv1"}
    assert net.tail.calls == 0 and relu_calls == [1]  # stopped after block.0, past act1
    with capture(net, resolve_target(net, "conv1"), stop=False) as cap:
        cap(x)
    assert net.tail.calls == 1


def test_gradients_flow_through_captured_inplace_input(net, x):
    x = x.clone().requires_grad_(True)
    with capture(net, resolve_target(net, "act1", "pre_relu"), stop=False) as cap:
        act = cap(x)["act1"]
    (grad,) = torch.autograd.grad(act[:, 1].sum(), x)
    x2 = x.detach().clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(net.conv1(x2)[:, 1].sum(), x2)
    torch.testing.assert_close(grad, expected)


def test_direct_model_call_inside_the_block(net, x):
    with capture(net, resolve_target(net, "conv1")) as cap:
        net(x)  # the private stop is swallowed on exit
        pytest.fail("the forward pass should have stopped at conv1")
    assert cap.values["conv1"].shape == (2, 4, 8, 8)
    assert net.tail.calls == 0


def test_hooks_removed_on_exit_and_on_errors(net, x):
    target = resolve_target(net, "block.1")
    with capture(net, target) as cap:
        assert all_hooks(net) == 1
        cap(x)
    assert all_hooks(net) == 0
    with pytest.raises(RuntimeError), capture(net, target) as cap:  # wrong channel count: the model itself fails
        cap(torch.zeros(1, 5, 8, 8))
    assert all_hooks(net) == 0
    with pytest.raises(KeyError), capture(net, [target, resolve_target(net, "conv1")]):
        raise KeyError("user error")
    assert all_hooks(net) == 0


def test_layer_not_reached(net, x):
    with capture(net, resolve_target(net, "unused")) as cap, pytest.raises(FiltvizError, match="not reached"):
        cap(x)
    assert all_hooks(net) == 0


def test_layer_output_and_channels(net, x):
    assert layer_output(net, resolve_target(net, "pool"), x).shape == (2, 6, 4, 4)
    assert layer_channels(net, "conv1") == 4
    assert layer_channels(net, "first_relu", size=8) == 4
    assert layer_channels(net, "pool", size=8) == 6
    assert all_hooks(net) == 0
