"""The early-block tap of the domain check: it picks the last block of EfficientNet-Lite's second
stage, also inside a wrapping model (none for other backbones), pools that block's output from
the model's own forward, fails loudly when the block did not run, and survives the ONNX export:
the graph's `early_image` equals eager PyTorch's and the stem runs once."""

from __future__ import annotations

import onnx
import onnxruntime as ort
import pytest
import torch
from torch import Tensor, nn

from models.efficientnet_lite import EfficientNetLite, MBConv
from models.export.domain_early import EarlyFeatures, early_block

SIZE = 32


@pytest.fixture(scope="module")
def net() -> EfficientNetLite:
    torch.manual_seed(0)
    return EfficientNetLite("efficientnet-lite0").eval()


def test_the_tapped_block_ends_the_second_stage(net: EfficientNetLite) -> None:
    block = early_block(net)
    assert isinstance(block, MBConv) and block is net._blocks[2]
    following = net._blocks[3]
    assert isinstance(following, MBConv)
    assert block.shape.out_ch == 24 and following.shape.out_ch == 40
    assert early_block(nn.Conv2d(3, 8, 3)) is None
    # inside a wrapper (a seed ensemble, a late-fused network): the first EfficientNet's block
    assert early_block(nn.ModuleDict({"network": nn.ModuleList([net])})) is block


def test_pools_the_block_output_of_the_forward_pass(net: EfficientNetLite) -> None:
    tap = EarlyFeatures(early_block(net) or nn.Identity())
    x = torch.rand(3, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        h = net.run_prefix(x, 3)
        net(x)
        got = tap()
    assert got.shape == (3, 48)
    rms = (h * h).mean(dim=(2, 3)).sqrt()
    torch.testing.assert_close(got, torch.cat([h.mean(dim=(2, 3)), rms], 1))
    with pytest.raises(RuntimeError, match="did not run"):
        tap()  # each forward's output is read once
    tap.remove()


class _Wrapper(nn.Module):
    def __init__(self, net: EfficientNetLite) -> None:
        super().__init__()
        self.net = net
        self.early = EarlyFeatures(early_block(net) or nn.Identity())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.net(x), self.early()


def test_the_exported_graph_outputs_the_tap_and_runs_the_stem_once(
    net: EfficientNetLite, tmp_path: object
) -> None:
    wrapper = _Wrapper(net).eval()
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.onnx.export(
        wrapper,
        (x,),
        dynamo=True,
        input_names=["pixel_values"],
        output_names=["embedding_image", "early_image"],
        dynamic_shapes={"x": {0: batch}},
    )
    assert program is not None
    model = program.model_proto
    convs = sum(node.op_type == "Conv" for node in model.graph.node)
    plain = sum(isinstance(m, nn.Conv2d) for m in net.modules())
    assert convs == plain  # no second pass through the tapped prefix
    session = ort.InferenceSession(model.SerializeToString())
    probe = torch.rand(3, 3, SIZE, SIZE) * 2 - 1
    (embedding, early) = session.run(None, {"pixel_values": probe.numpy()})
    with torch.no_grad():
        want = wrapper(probe)
    torch.testing.assert_close(torch.from_numpy(early), want[1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(embedding), want[0], atol=1e-4, rtol=1e-4)
    onnx.checker.check_model(model)
