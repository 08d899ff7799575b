"""``conv3t params``: Table 1 computed live."""

from __future__ import annotations

import re

from conv3t.cli import main
from conv3t.commands import params


def test_params_prints_table_1_with_matches(capsys):
    assert main(["params"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if re.match(r"(resnet18|googlenet)_3[td] ", line)]
    assert len(lines) == 8
    expected = {
        ("googlenet_3t", "Jester (27)"): "7,419,121",
        ("googlenet_3t", "UCF101 (101)"): "7,646,671",
        ("googlenet_3d", "Jester (27)"): "14,078,833",
        ("googlenet_3d", "UCF101 (101)"): "14,306,383",
        ("resnet18_3t", "Jester (27)"): "11,222,619",
        ("resnet18_3t", "UCF101 (101)"): "11,260,581",
        ("resnet18_3d", "Jester (27)"): "33,217,755",
        ("resnet18_3d", "UCF101 (101)"): "33,255,717",
    }
    for (model, dataset), count in expected.items():
        line = next(line for line in lines if line.startswith(model + " ") and dataset in line)
        assert line.count(count) == 2, line  # computed and paper columns
        assert "✓" in line or " yes " in f"{line} "
    # 3T temporal parameters: 4 (D - 1) per output channel of every k > 1 convolution.
    assert "32,256" in out and "27,648" in out
    assert "8/8 counts match the paper." in out


def test_params_exits_1_and_marks_a_mismatch(capsys, monkeypatch):
    row = {"model": "resnet18_3t", "dataset": "Jester", "classes": 27, "computed": 5, "paper": 6, "temporal": 1}
    monkeypatch.setattr(params, "table_rows", lambda: [row])
    assert main(["params"]) == 1
    out = capsys.readouterr().out
    assert "0/1 counts match the paper." in out
    assert "✗" in out or " NO" in out
