"""The Keras-like summary: header, one row per Keras layer with shapes and counts, exact totals."""

import re

import pytest
import torch
from torch import nn

from filtviz_core import vgg16 as spec
from torch_filtviz import load_vgg16, summary
from torch_filtviz.models import vgg16_aliases

ROW = re.compile(r"^(\S+) \((\S+)\)\s+(\(.*?\))\s+([\d,]+)$")


@pytest.fixture(scope="module")
def vgg():
    return load_vgg16("random")  # shapes and counts do not depend on the values


@pytest.fixture(scope="module")
def table(vgg):
    return summary(vgg, print_fn=None)


def rows(text):
    return {
        m.group(1): (m.group(2), m.group(3), int(m.group(4).replace(",", "")))
        for m in map(ROW.match, text.splitlines())
        if m
    }


def test_header_totals_and_print(vgg, table):
    lines = table.splitlines()
    assert lines[0] == 'Model: "vgg16"'
    assert "Total params: 14,714,688" in lines
    assert "Trainable params: 0" in lines  # load_vgg16 freezes the weights
    assert "Non-trainable params: 14,714,688" in lines
    printed = []
    assert summary(vgg, (3, 32, 32), print_fn=printed.append) == printed[0]


def test_one_row_per_keras_layer_with_keras_shapes_and_params(table):
    found = rows(table)
    keras_rows = [name for name in found if name not in ("input_layer", "preprocess")]
    assert keras_rows == list(vgg16_aliases())  # every layer, in network order
    assert found["input_layer"][1:] == ("(None, 224, 224, 3)", 0)
    for name, cin, cout in spec.CONV_LAYERS:
        kind, _shape, params = found[name]
        assert kind == "Conv2d+ReLU"
        assert params == 9 * cin * cout + cout
    assert found["block1_conv1"][1] == "(None, 224, 224, 64)"
    assert found["block3_conv3"][1] == "(None, 56, 56, 256)"
    assert found["block5_pool"] == ("MaxPool2d", "(None, 7, 7, 512)", 0)
    assert sum(params for _, _, params in found.values()) == spec.TOTAL_PARAMS


def test_input_size_and_torch_shape_style(vgg):
    found = rows(summary(vgg, (3, 64, 96), print_fn=None, shape_style="torch"))
    assert found["block1_conv2"][1] == "(N, 64, 64, 96)"
    assert found["block5_pool"][1] == "(N, 512, 2, 3)"
    with pytest.raises(ValueError, match="shape_style"):
        summary(vgg, print_fn=None, shape_style="nhwc")


class Small(nn.Module):
    """Not VGG, no aliases: rows by module path, totals counting frozen and trainable parameters."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(inplace=True), nn.Conv2d(8, 4, 1, bias=False))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


def test_any_module_rows_by_path_and_trainable_counts():
    model = Small().train()
    model.body[0].requires_grad_(False)
    text = summary(model, (3, 10, 10), print_fn=None)
    found = rows(text)
    assert text.splitlines()[0] == 'Model: "Small"'
    assert list(found) == ["input_layer", "body.0", "body.1", "body.2", "head"]
    assert found["body.0"] == ("Conv2d", "(None, 8, 8, 8)", 3 * 8 * 9 + 8)
    assert found["head"] == ("Linear", "(None, 2)", 10)
    total = sum(p.numel() for p in model.parameters())
    frozen = model.body[0].weight.numel() + model.body[0].bias.numel()
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {total - frozen:,}" in text
    assert f"Non-trainable params: {frozen:,}" in text
    assert model.training  # torchinfo ran it in eval mode and gave the mode back
    assert torch.is_grad_enabled()
