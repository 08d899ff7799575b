"""The compiled training path (issue 20): ``torch.compile(fullgraph=True)`` forward + backward equals eager,
``model.compile`` in the config, and a compiled run saves and exports the plain network.

Compiling costs: the demo model through ``aot_eager`` (Dynamo + AOTAutograd, the whole forward and backward
traced; no C++ compile) takes ~20 s here, through inductor ~80 s, ResNet18/GoogLeNet several minutes each.
The default run therefore checks the demo model with ``aot_eager`` and one Conv3T layer with inductor;
``CONV3T_COMPILE_MODELS=1`` adds the demo model, ``resnet18_3t`` and ``googlenet_3t`` through inductor.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from train_helpers import tiny_synthetic

from conv3t import Conv3T
from conv3t.exported import load_exported
from conv3t.models import create_model
from conv3t.nn import randomize_temporal_parameters
from conv3t.train.artifacts import export_model, model_info
from conv3t.train.compiling import CompileOptions, apply_compile, compile_options
from conv3t.train.config import ConfigError, validate_config
from conv3t.train.run import train

DEMO = ("resnet10_3t", {"base_width": 16, "stem_temporal_stride": 1})
BIG = pytest.mark.skipif(
    os.environ.get("CONV3T_COMPILE_MODELS") != "1", reason="inductor compiles of whole models: CONV3T_COMPILE_MODELS=1"
)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _model(name: str, kwargs: dict[str, Any], dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name, num_classes=9, **kwargs).to(dtype).train()
    for module in model.modules():  # GoogLeNet's dropout: compiled code draws its masks from another generator
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    randomize_temporal_parameters(model, 0.3, generator=torch.Generator().manual_seed(1), scale_bound=0.2)
    return model


def _forward_backward(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, run: Any = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Logits and every parameter's gradient of the summed cross-entropy of all heads (aux heads included).

    ``run``: what to call instead of ``model`` (its compiled form).
    """
    model.zero_grad(set_to_none=True)
    out = (model if run is None else run)(x)
    heads = out if isinstance(out, tuple) else (out,)
    sum(nn.functional.cross_entropy(h, y) for h in heads).backward()
    return heads[0].detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _assert_compiled_matches_eager(
    name: str, kwargs: dict[str, Any], backend: str, dtype: torch.dtype, tol: float
) -> None:
    eager = _model(name, kwargs, dtype)
    twin = copy.deepcopy(eager)
    x = torch.randn(2, 3, 8, 32, 32, dtype=dtype, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([1, 4])
    want, want_grads = _forward_backward(eager, x, y)
    explained = torch._dynamo.explain(copy.deepcopy(eager))(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    torch._dynamo.reset()
    got, got_grads = _forward_backward(twin, x, y, torch.compile(twin, fullgraph=True, backend=backend))
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    assert got_grads.keys() == want_grads.keys()
    for key, grad in want_grads.items():  # relative to the largest entry: BatchNorm over 2 clips amplifies rounding
        scale = grad.abs().max().item() or 1.0
        close = torch.testing.assert_close
        close(got_grads[key] / scale, grad / scale, rtol=tol, atol=tol, msg=lambda m, key=key: f"{key}: {m}")


def test_demo_model_compiles_whole_and_matches_eager_in_float64():
    """Forward and backward in one graph each; float64 so that the comparison is exact to rounding."""
    _assert_compiled_matches_eager(*DEMO, backend="aot_eager", dtype=torch.float64, tol=1e-9)


def test_conv3t_layer_trains_through_inductor():
    torch.manual_seed(0)
    layer = Conv3T(4, 6, 3, padding=1)
    randomize_temporal_parameters(layer, 0.3, generator=torch.Generator().manual_seed(1), scale_bound=0.2)
    compiled = torch.compile(copy.deepcopy(layer), fullgraph=True)
    x = torch.randn(2, 4, 5, 9, 9)
    for module in (layer, compiled):
        module(x).square().sum().backward()
    for (name, p), q in zip(layer.named_parameters(), compiled.parameters(), strict=True):
        atol = 1e-4 * p.grad.abs().max().item()
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=atol, msg=lambda m, name=name: f"{name}: {m}")


@BIG
@pytest.mark.slow
@pytest.mark.timeout(3600)  # GoogLeNet's forward + backward compile alone took 19 min on a loaded 2-core machine
@pytest.mark.parametrize(
    "name, kwargs", [DEMO, ("resnet18_3t", {}), ("googlenet_3t", {})], ids=["demo", "resnet18", "googlenet"]
)
def test_models_train_through_inductor(name, kwargs):
    """float64: in float32 BatchNorm over 2 clips of 1x1 positions (ResNet18's last stage) amplifies rounding."""
    _assert_compiled_matches_eager(name, kwargs, backend="inductor", dtype=torch.float64, tol=1e-7)


def _config(compile_value: Any) -> dict[str, Any]:
    return tiny_synthetic(model={"compile": compile_value})


@pytest.mark.parametrize(
    "value, enabled, kwargs",
    [
        (False, False, {}),
        (True, True, {}),
        ({"fullgraph": True, "mode": "max-autotune", "dynamic": None}, True, {}),
        ({"backend": "aot_eager", "disable": True}, False, {}),
    ],
)
def test_compile_setting_is_read(value, enabled, kwargs):
    cfg = validate_config(_config(value))
    options = compile_options(cfg.model.compile)
    assert options.enabled is enabled
    assert options.kwargs == (value if isinstance(value, dict) else {})


@pytest.mark.parametrize(
    "value, words",
    [
        ({"fullgrph": True}, ["model.compile", "'fullgrph'", "fullgraph"]),
        ({"fullgraph": "yes"}, ["model.compile.fullgraph", "bool"]),
        ({"backend": "tensorrtx"}, ["model.compile.backend", "inductor", "'tensorrtx'"]),
        ({"mode": "fastest"}, ["model.compile.mode", "max-autotune", "'fastest'"]),
        ({"options": ["a"]}, ["model.compile.options", "dict"]),
        ("inductor", ["model.compile", "true/false or a mapping"]),
    ],
)
def test_bad_compile_settings_name_the_key(value, words):
    with pytest.raises(ConfigError) as err:
        validate_config(_config(value))
    for word in words:
        assert word in str(err.value)


def test_compiled_model_exports_the_plain_keys(tmp_path):
    """Both ways of compiling: the torch.compile wrapper (keys would read _orig_mod.*) and in place."""
    model = create_model("resnet10_3t", num_classes=9, base_width=4, stem_temporal_stride=1)
    plain = set(model.state_dict())
    info = model_info(validate_config(tiny_synthetic()), [str(i) for i in range(9)], 4, (32, 32))
    wrapped = torch.compile(model)
    assert any(k.startswith("_orig_mod.") for k in wrapped.state_dict())  # what would leak without unwrapping
    for i, compiled in enumerate((wrapped, apply_compile(copy.deepcopy(model), CompileOptions(True)))):
        export_model(compiled, tmp_path / str(i), info)
        assert set(load_file(str(tmp_path / str(i) / "model.safetensors"))) == plain
        assert set(load_exported(tmp_path / str(i)).model.state_dict()) == plain


@pytest.mark.slow
def test_compiled_run_trains_like_the_plain_one(tmp_path):
    """``conv3t train`` with model.compile: compiled (Dynamo counts graphs), same weights as the plain run,
    plain checkpoint and export keys."""
    # Compiled generation takes the dense forms only, the plain run's 7x7 stem the four-tap one
    # (conv3t.nn.functional.SPARSE_MIN_PIXELS): the runs agree only because every form gives the same kernel
    # bit for bit at the identity start (tests/nn/test_whole_pixel_gradient.py: max pooling over the stem's
    # identical frames breaks its ties by the last bit; bn1.bias differed by 9 % while they did not).
    runs = {}
    for name, value in (("plain", False), ("compiled", {"backend": "aot_eager", "fullgraph": True})):
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        # float64: the two runs then agree to rounding. In float32 the gradients of the temporal parameters and
        # BatchNorm biases (sums with much cancellation) differ by ~1e-3 of their largest entry, which three
        # steps carry into the weights. SGD: Adam's first steps move a parameter by ~lr whatever its gradient.
        raw = tiny_synthetic(
            model={"compile": value}, optim={"name": "sgd"}, trainer={"max_epochs": 1, "precision": "64-true"}
        )
        cfg = validate_config(raw)
        runs[name] = train(cfg, tmp_path / name)
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        assert (graphs > 0) == (name == "compiled"), graphs
    plain, compiled = (load_file(str(runs[k].run_dir / "model.safetensors")) for k in ("plain", "compiled"))
    assert plain.keys() == compiled.keys()
    for key, value in plain.items():
        torch.testing.assert_close(compiled[key], value, rtol=1e-9, atol=1e-12, msg=lambda m, key=key: f"{key}: {m}")
    ckpt = torch.load(runs["compiled"].last_checkpoint, weights_only=True)
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])
