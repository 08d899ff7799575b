from videogen import write_jester_video

from conv3t.cli import main
from conv3t.data.check import check_jester, check_ucf101


def test_clean_jester_passes(jester_root):
    report = check_jester(jester_root)
    assert report.ok and report.videos_ok == 8 and report.videos_bad == 0
    assert sorted(report.frame_counts) == [12, 20, 31, 33, 36, 37, 40, 50]
    assert sum(c for _, _, c in report.histogram()) == 8


def test_broken_jester_lists_every_problem(broken_jester):
    report = check_jester(broken_jester, decode=True)
    text = [str(p) for p in report.problems]
    frames = broken_jester / "20bn-jester-v1"
    expected = [
        f"{broken_jester}/jester-v1-train.csv:7: cannot parse line 'badline'",
        f"{broken_jester}/jester-v1-train.csv:8: label 'Jumping Jacks' is not in the labels file",
        f"{frames}/missing: frame folder is missing (listed at jester-v1-train.csv:2)",
        f"{frames}/empty: frame folder has no numbered .jpg files (listed at jester-v1-train.csv:3)",
        f"{frames}/trunc/00005.jpg: truncated JPEG (no end-of-image marker) (listed at jester-v1-train.csv:4)",
        f"{frames}/garbage/00003.jpg: not a JPEG file",
        f"{frames}/gap: frame numbering has gaps: missing frame numbers 6 (listed at jester-v1-train.csv:6)",
    ]
    for e in expected:
        assert any(t.startswith(e) for t in text), (e, text)
    assert len(report.problems) == len(expected)
    assert report.videos_ok == 3 and report.videos_bad == 5 and report.unlisted == ["unlisted"]


def test_check_decode_finds_corrupt_data_inside_a_jpeg(tmp_path, jester_root):
    import shutil

    root = tmp_path / "j"
    shutil.copytree(jester_root, root)
    f = root / "20bn-jester-v1" / "201" / "00004.jpg"
    data = bytearray(f.read_bytes())
    data[2:200] = b"\x00" * 198  # wipe the headers, keep both markers
    f.write_bytes(bytes(data))
    assert check_jester(root).ok  # markers only: looks whole
    report = check_jester(root, decode=True)
    assert not report.ok and str(report.problems[0]).startswith(f"{f}: cannot decode JPEG")


def test_duplicate_and_missing_annotation_files(tmp_path):
    root = tmp_path / "j"
    write_jester_video(root / "20bn-jester-v1", "1", 5)
    (root / "jester-v1-labels.csv").write_text("Swiping Left\nSwiping Right\n")
    (root / "jester-v1-train.csv").write_text("1;Swiping Left\n")
    (root / "jester-v1-validation.csv").write_text("1;Swiping Right\n")
    text = [str(p) for p in check_jester(root).problems]
    assert f"{root}/jester-v1-test.csv: annotation file is missing" in text
    assert any(t.startswith(f"{root}/jester-v1-validation.csv:1: video '1' is also listed at") for t in text)


def test_broken_ucf101_lists_every_problem(broken_ucf):
    root, ann = broken_ucf
    report = check_ucf101(root, ann, folds=(1,))
    text = [str(p) for p in report.problems]
    expected = [
        f"{ann}/trainlist01.txt:2: label 2 (Basketball) disagrees with folder 'YoYo'",
        f"{ann}/trainlist01.txt:6: class folder 'Nope' is not in classInd.txt",
        f"{ann}/trainlist01.txt:7: cannot parse line",
        f"{ann}/trainlist01.txt:9: label 7 is not in classInd.txt",
        f"{root}/Basketball/v_Basketball_g09_c01.avi: video file is missing (listed at trainlist01.txt:3)",
        f"{root}/Basketball/v_Basketball_g02_c01.avi: truncated: header says 60 frames",
        f"{root}/Basketball/v_Basketball_g03_c01.avi: cannot open video",
    ]
    for e in expected:
        assert any(t.startswith(e) for t in text), (e, text)
    assert len(report.problems) == len(expected)
    assert report.videos_ok == 3 and report.videos_bad == 3
    decoded = check_ucf101(root, ann, folds=(1,), decode=True)
    assert [str(p) for p in decoded.problems] == text
    # the other folds' lists are missing
    assert len(check_ucf101(root, ann).problems) == len(expected) + 4


def test_cli_exit_status_and_output(jester_root, broken_jester, ucf_paths, capsys):
    assert main(["data", "check", "--dataset", "jester", str(jester_root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "8 listed videos, 8 ok, 0 bad; 0 problem(s)" in out and "frames per good video: min 12" in out

    assert main(["data", "check", "--dataset", "jester", str(broken_jester), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "jester-v1-train.csv:8: label 'Jumping Jacks'" in out and "5 bad" in out

    root, ann = ucf_paths
    args = ["data", "check", "--dataset", "ucf101", str(root), "--annotations", str(ann), "--fold", "1"]
    assert main([*args, "--no-progress"]) == 0
    assert "6 listed videos, 6 ok" in capsys.readouterr().out
    # annotations default to ROOT/../ucfTrainTestlist; --decode reads every frame
    assert main(["data", "check", "--dataset", "ucf101", str(root), "--fold", "1", "--decode"]) == 0
    assert "6 listed videos, 6 ok" in capsys.readouterr().out
    assert main(["data", "check", "--dataset", "ucf101", str(root / "nope")]) == 2


def test_unlisted_folders_are_named_first_20_then_a_count(tmp_path, jester_root, capsys):
    """issue 12 item 10: the report named no unlisted folder, only "N folder(s)/file(s) on disk not in any list"."""
    import shutil

    root = tmp_path / "j"
    shutil.copytree(jester_root, root)
    for k in range(25):
        write_jester_video(root / "20bn-jester-v1", f"extra{k:02d}", 2)
    report = check_jester(root)
    assert report.ok and report.unlisted == [f"extra{k:02d}" for k in range(25)]
    assert main(["data", "check", "--dataset", "jester", str(root), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("25 folder(s)/file(s) on disk not in any list:")
    assert lines[at + 1 : at + 21] == [f"  extra{k:02d}" for k in range(20)]
    assert lines[at + 21] == "  ... and 5 more"


def test_check_config_for_jester_and_ucf101(jester_root, broken_ucf, tmp_path, capsys):
    from conv3t.data import check_data_config

    report = check_data_config({"dataset": "jester", "root": str(jester_root), "batch_size": 4})
    assert report.ok and report.videos_ok == 8
    root, ann = broken_ucf
    ucf = {"dataset": "ucf101", "root": str(root), "annotation_path": str(ann), "fold": 1}
    assert check_data_config(ucf).problems == check_ucf101(root, ann, folds=(1,)).problems
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  name: resnet18_3t\ndata:\n  dataset: jester\n  root: {jester_root}\n")
    assert main(["data", "check", "--config", str(config), "--no-progress"]) == 0
    assert "jester: 8 listed videos, 8 ok, 0 bad; 0 problem(s)" in capsys.readouterr().out
