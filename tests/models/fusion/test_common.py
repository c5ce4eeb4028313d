"""Properties every fusion must have: shape, eval determinism, batch independence,
gradients to both modalities, research state_dict names, ONNX-friendly weights."""

from __future__ import annotations

import pytest
import torch

from models.fusion import FUSIONS, FusionModule, build_fusion

D, HEADS, LAYERS = 16, 4, 2

# Spec §4 parameter names (prefix "fusion." dropped) for D=16, layers=2, hidden_mult=2.
EXPECTED_KEYS: dict[str, dict[str, tuple[int, ...]]] = {
    "cross_attention": {
        "norm1.weight": (D,),
        "norm1.bias": (D,),
        "norm2.weight": (D,),
        "norm2.bias": (D,),
        "cross_attn.in_proj_weight": (3 * D, D),
        "cross_attn.in_proj_bias": (3 * D,),
        "cross_attn.out_proj.weight": (D, D),
        "cross_attn.out_proj.bias": (D,),
        "ffn.0.weight": (4 * D, D),
        "ffn.0.bias": (4 * D,),
        "ffn.2.weight": (D, 4 * D),
        "ffn.2.bias": (D,),
    },
    "concat_mlp": {
        "mlp.0.weight": (2 * D, 2 * D),
        "mlp.0.bias": (2 * D,),
        "mlp.3.weight": (D, 2 * D),
        "mlp.3.bias": (D,),
    },
    "gated": {"gate.0.weight": (D, 2 * D), "gate.0.bias": (D,)},
    "transformer_concat": {
        "modality_token": (1, 2, D),
        **{
            f"transformer.layers.{i}.{k}": s
            for i in range(LAYERS)
            for k, s in {
                "self_attn.in_proj_weight": (3 * D, D),
                "self_attn.in_proj_bias": (3 * D,),
                "self_attn.out_proj.weight": (D, D),
                "self_attn.out_proj.bias": (D,),
                "linear1.weight": (4 * D, D),
                "linear1.bias": (4 * D,),
                "linear2.weight": (D, 4 * D),
                "linear2.bias": (D,),
                "norm1.weight": (D,),
                "norm1.bias": (D,),
                "norm2.weight": (D,),
                "norm2.bias": (D,),
            }.items()
        },
    },
    "modality_dropout": {
        "gated.0.weight": (D, 2 * D),
        "gated.0.bias": (D,),
        "gated.2.weight": (D, D),
        "gated.2.bias": (D,),
    },
    "film": {
        "mlp_gamma.weight": (D, D),
        "mlp_gamma.bias": (D,),
        "mlp_beta.weight": (D, D),
        "mlp_beta.bias": (D,),
    },
    "energy_aware_adaptive": {
        "router.0.weight": (D, 2 * D),
        "router.0.bias": (D,),
        "router.2.weight": (3, D),
        "router.2.bias": (3,),
        "gate.0.weight": (D, 2 * D),
        "gate.0.bias": (D,),
        "cross_attn.in_proj_weight": (3 * D, D),
        "cross_attn.in_proj_bias": (3 * D,),
        "cross_attn.out_proj.weight": (D, D),
        "cross_attn.out_proj.bias": (D,),
        "norm.weight": (D,),
        "norm.bias": (D,),
        "ffn.0.weight": (4 * D, D),
        "ffn.0.bias": (4 * D,),
        "ffn.2.weight": (D, 4 * D),
        "ffn.2.bias": (D,),
        "lambda_energy": (),
    },
    "shomr": {
        "conf_net.0.weight": (D, 2 * D),
        "conf_net.0.bias": (D,),
        "conf_net.3.weight": (2, D),
        "conf_net.3.bias": (2,),
        "router.0.weight": (D, 2 * D),
        "router.0.bias": (D,),
        "router.3.weight": (3, D),
        "router.3.bias": (3,),
        "cross_attn.in_proj_weight": (3 * D, D),
        "cross_attn.in_proj_bias": (3 * D,),
        "cross_attn.out_proj.weight": (D, D),
        "cross_attn.out_proj.bias": (D,),
        "gate.0.weight": (D, 2 * D),
        "gate.0.bias": (D,),
        "norm1.weight": (D,),
        "norm1.bias": (D,),
        "norm2.weight": (D,),
        "norm2.bias": (D,),
        "ffn.0.weight": (4 * D, D),
        "ffn.0.bias": (4 * D,),
        "ffn.3.weight": (D, 4 * D),
        "ffn.3.bias": (D,),
        "proj_single.0.weight": (D, D),
        "proj_single.0.bias": (D,),
    },
}
WITH_WEIGHTS = {"cross_attention", "transformer_concat", "energy_aware_adaptive", "shomr"}


def make(name: str, **params: float) -> FusionModule:
    torch.manual_seed(0)
    return build_fusion(name, D, HEADS, LAYERS, params)


def inputs(batch: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, D, generator=g), torch.randn(batch, D, generator=g)


def test_registry_covers_exactly_the_research_fusions() -> None:
    assert set(FUSIONS) == set(EXPECTED_KEYS)
    assert {n for n, c in FUSIONS.items() if c.has_modality_weights} == WITH_WEIGHTS


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_state_dict_names_and_shapes_match_research(name: str) -> None:
    got = {k: tuple(v.shape) for k, v in make(name).state_dict().items()}
    assert got == EXPECTED_KEYS[name]


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_output_shape_and_weights(name: str) -> None:
    fusion = make(name).eval()
    v, t = inputs()
    out, weights = fusion.forward_with_weights(v, t)
    assert out.shape == (6, D)
    assert torch.equal(fusion(v, t), out)
    if name in WITH_WEIGHTS:
        assert weights is not None and weights.shape == (6, 2)
        assert torch.all(weights >= 0)
        torch.testing.assert_close(weights.sum(-1), torch.ones(6))
    else:
        assert weights is None


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_eval_is_deterministic_and_batch_independent(name: str) -> None:
    fusion = make(name).eval()
    v, t = inputs(batch=7)
    with torch.no_grad():
        out1, w1 = fusion.forward_with_weights(v, t)
        out2, w2 = fusion.forward_with_weights(v, t)
        assert torch.equal(out1, out2)
        for i in (0, 3, 6):  # a sample alone gives what it gave inside the batch
            alone, w_alone = fusion.forward_with_weights(v[i : i + 1], t[i : i + 1])
            torch.testing.assert_close(alone[0], out1[i], atol=1e-5, rtol=1e-5)
            if w1 is not None:
                assert w2 is not None and torch.equal(w1, w2)
                assert w_alone is not None
                torch.testing.assert_close(w_alone[0], w1[i], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_training_gradients_reach_both_modalities(name: str) -> None:
    params = {"p_img": 0.0, "p_txt": 0.0} if name == "modality_dropout" else {}
    fusion = make(name, **params).train()
    torch.manual_seed(3)  # fixes dropout masks and training-time route sampling
    v, t = inputs(batch=32)
    v.requires_grad_(True)
    t.requires_grad_(True)
    # a random readout: a plain sum would be blind to LayerNorm outputs (their sum is constant)
    readout = torch.randn(32, D, generator=torch.Generator().manual_seed(9))
    (fusion(v, t) * readout).sum().backward()
    assert v.grad is not None and v.grad.abs().sum() > 0
    assert t.grad is not None and t.grad.abs().sum() > 0


def sharpen_routing(fusion: FusionModule) -> None:
    """Scale the routing logits so a random batch mixes routes (and shomr soft/hard samples)."""
    with torch.no_grad():
        for name, p in fusion.named_parameters():
            if name.startswith(("router.", "conf_net.")) and name.endswith(".weight"):
                p.mul_(8.0)


@pytest.mark.parametrize("name", ["energy_aware_adaptive", "shomr"])
def test_routed_fusion_exports_to_onnx_with_dynamic_batch(name: str, tmp_path) -> None:
    """Eval routing must live in the graph (argmax + where), not in Python control flow."""
    onnxruntime = pytest.importorskip("onnxruntime")
    fusion = make(name).eval()
    sharpen_routing(fusion)

    class WithWeights(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fusion = fusion

        def forward(self, v: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out, w = self.fusion.forward_with_weights(v, t)
            assert w is not None
            return out, w

    path = tmp_path / f"{name}.onnx"
    batch = torch.export.Dim("batch", min=1, max=1024)
    v, t = inputs(batch=4)
    torch.onnx.export(
        WithWeights(),
        (v, t),
        str(path),
        input_names=["v", "t"],
        output_names=["out", "w"],
        dynamic_shapes={"v": {0: batch}, "t": {0: batch}},
        dynamo=True,
        verbose=False,
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    v_n, t_n = inputs(batch=33, seed=4)  # a batch size other than the export example's
    with torch.no_grad():
        routes = fusion.route(torch.cat([v_n, t_n], dim=-1))  # type: ignore[operator]
        ref_out, ref_w = fusion.forward_with_weights(v_n, t_n)
    assert len(set(routes.tolist())) >= 2, "test batch should exercise several routes"
    if name == "shomr":  # and both soft and hard samples
        conf = torch.softmax(fusion.conf_net(torch.cat([v_n, t_n], -1)), -1).max(-1).values
        assert 0 < int((conf > 0.6).sum()) < len(conf)
    assert ref_w is not None
    out, w = session.run(None, {"v": v_n.numpy(), "t": t_n.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), ref_out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(w), ref_w, atol=1e-5, rtol=1e-4)
