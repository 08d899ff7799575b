"""summary_statistics equals numpy; the paper-style tables show the values x 10^-3."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conv3t import Conv3T
from conv3t.readout import format_statistics, statistics_latex, statistics_markdown, summary_statistics


def random_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(Conv3T(3, 4, (3, 5, 5)), nn.ReLU(), Conv3T(4, 6, (4, 3, 3)), nn.Conv3d(6, 6, 1))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            layer.scale.add_(0.05 * torch.randn_like(layer.scale))
            layer.rotation.normal_(0.0, 0.02)
            layer.translation_x.normal_(0.0, 0.03)
            layer.translation_y.normal_(0.01, 0.02)
    return model


def numpy_reference(model: nn.Module, ddof: int = 0) -> dict[str, tuple[float, float, int]]:
    layers = [m for m in model.modules() if isinstance(m, Conv3T)]

    def flat(name: str) -> np.ndarray:
        return np.concatenate([getattr(m, name).detach().double().numpy().ravel() for m in layers])

    values = {
        "s": np.abs(flat("scale") - 1),
        "r": np.abs(flat("rotation")),
        "t_x": np.abs(flat("translation_x")),
        "t_y": np.abs(flat("translation_y")),
    }
    return {k: (v.mean(), v.std(ddof=ddof), v.size) for k, v in values.items()}


@pytest.mark.parametrize("ddof", [0, 1])
def test_statistics_equal_numpy(ddof: int):
    models = {"a": random_model(0), "b": random_model(1)}
    stats = summary_statistics(models, ddof=ddof)
    assert stats["model"].tolist() == ["a"] * 4 + ["b"] * 4
    assert stats["parameter"].tolist() == ["s", "r", "t_x", "t_y"] * 2
    for name, model in models.items():
        reference = numpy_reference(model, ddof)
        for parameter, (mean, std, count) in reference.items():
            row = stats[(stats["model"] == name) & (stats["parameter"] == parameter)].iloc[0]
            assert row["mean"] == pytest.approx(mean, rel=1e-12)
            assert row["std"] == pytest.approx(std, rel=1e-12)
            assert row["count"] == count == 4 * 2 + 6 * 3


def test_tables_accept_parameter_tables_and_models_alike():
    from conv3t.readout import temporal_parameters

    model = random_model(2)
    a = summary_statistics({"m": model})
    b = summary_statistics({"m": temporal_parameters(model, input_size=None)})
    assert a.equals(b)


def hand_set_model() -> nn.Module:
    layer = Conv3T(1, 2, (3, 3, 3))
    with torch.no_grad():
        layer.scale.copy_(torch.tensor([[1.028, 0.972], [1.028, 0.972]]))  # |s-1| = 0.028 everywhere
        layer.rotation.copy_(torch.tensor([[0.01, -0.01], [0.03, -0.03]]))  # |r| in {0.01, 0.03}
        layer.translation_x.fill_(-0.005)
        layer.translation_y.zero_()
    return layer


def test_display_is_times_ten_to_the_minus_three():
    stats = summary_statistics({"pret. 3T | Jester": hand_set_model()})
    table = format_statistics(stats)
    cells = table.iloc[:, 0].tolist()
    assert cells == ["28.00 / 0.00", "20.00 / 10.00", "5.00 / 0.00", "0.00 / 0.00"]
    markdown = statistics_markdown(stats, digits=1)
    lines = markdown.splitlines()
    assert len(lines) == 2 + 4
    assert all(line.count("|") - line.count("\\|") == 3 for line in lines)  # escaped pipes keep 2 columns
    assert "×10^-3" in lines[0] and "28.0 / 0.0" in lines[2] and "20.0 / 10.0" in lines[3]
    latex = statistics_latex(stats)
    assert r"\begin{tabular}{lc}" in latex and r"\end{tabular}" in latex
    assert r"$|s-1|$ & 28.00 / 0.00 \\" in latex
    assert r"\times 10^{-3}" in latex and "pret. 3T | Jester" in latex


def test_model_without_steps_and_bad_input():
    stats = summary_statistics({"2d": nn.Sequential(Conv3T(3, 3, (1, 3, 3)))})
    assert (stats["count"] == 0).all() and stats["mean"].isna().all()
    assert format_statistics(stats).iloc[0, 0] == "– / –"
    with pytest.raises(ValueError, match="non-empty mapping"):
        summary_statistics({})
    with pytest.raises(TypeError, match="models\\['x'\\]"):
        summary_statistics({"x": 3})  # type: ignore[dict-item]
