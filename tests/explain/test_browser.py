"""The HTML report in a real browser: headless Chromium opens it, no console errors, every image loads.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (JSON messages separated
by NUL bytes on file descriptors 3 and 4), so nothing beyond the Debian ``chromium`` package is needed.
A full-page screenshot of the report is kept in ``test-artifacts/report.png``.

Without Chromium the test is skipped, except under ``CI=true`` where its absence is a failure.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def require_chromium() -> str:
    """Chromium's path; skips the test when it is missing, but fails it under ``CI=true``."""
    path = find_chromium()
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but chromium is not installed: scripts/test.sh installs it with apt-get (as root)")
        pytest.skip("chromium not installed (apt-get install chromium); the report's browser check needs it")
    return path


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


def test_missing_chromium_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "find_chromium", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium not installed"):
        require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_chromium()


def _above_ten(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class DevTools:
    """A headless Chromium driven over the DevTools pipe; a context manager."""

    def __init__(self, executable: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="conv3t-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # keep the child's ends away from 3 and 4, which the redirections below overwrite
        to_browser_r, from_browser_w = _above_ten(to_browser_r), _above_ten(from_browser_w)
        # the browser reads commands on fd 3 and writes replies on fd 4: bash maps our pipe ends there
        # (dash cannot redirect descriptors above 9)
        script = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        bash = shutil.which("bash") or "/bin/bash"
        self.proc = subprocess.Popen(
            [bash, "-c", script, executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                self._inbox.put(None)
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                self._inbox.put(json.loads(raw))

    def _pump(self, deadline: float) -> None:
        message = self._inbox.get(timeout=max(0.01, deadline - time.monotonic()))
        if message is None:
            raise RuntimeError(f"chromium closed the DevTools pipe; its log:\n{self.browser_log()}")
        if "id" in message:
            self._replies[message["id"]] = message
        else:
            self.events.append(message)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while self._next_id not in self._replies:
            try:
                self._pump(deadline)
            except queue.Empty:
                raise TimeoutError(f"no reply to {method} within {self.timeout} s") from None
        reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method} failed: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            try:
                self._pump(deadline)
            except queue.Empty:
                raise TimeoutError(f"no {method} event within {self.timeout} s") from None

    def browser_log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-3000:]

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.proc.poll() is None:
                self.call("Browser.close")
                self.proc.wait(timeout=10)
        except Exception:
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self._to_browser)
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)


IMAGE_STATE = (
    "JSON.stringify(Array.from(document.images).map(i => "
    "({src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth})))"
)


def inspect_page(
    executable: str, page: Path, screenshot: Path | None = None, width: int = 1280, layout: str | None = None
) -> dict[str, Any]:
    """Open ``page``; return its images' load state, the console/log errors and the document title, and under
    ``"layout"`` the value of the JavaScript expression ``layout`` (JSON) evaluated at ``width`` pixels."""
    with DevTools(executable) as browser:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_event("Page.loadEventFired", session)
        images = json.loads(
            browser.call("Runtime.evaluate", {"expression": IMAGE_STATE, "returnByValue": True}, session=session)[
                "result"
            ]["value"]
        )
        title = browser.call("Runtime.evaluate", {"expression": "document.title"}, session=session)["result"]["value"]
        measured = None
        if layout is not None:
            browser.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            reply = browser.call("Runtime.evaluate", {"expression": layout, "returnByValue": True}, session=session)
            measured = json.loads(reply["result"]["value"])
        if screenshot is not None:
            size = browser.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
            height = int(min(max(size["height"], 600), 12000))
            browser.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        time.sleep(0.2)  # let late log entries arrive
        errors = []
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
    return {"images": images, "errors": errors, "title": title, "layout": measured}


def test_harness_sees_broken_images_and_console_errors(chromium, tmp_path):
    """The check can fail: a missing image and a script error are both reported."""
    from PIL import Image

    Image.new("RGB", (4, 3), "red").save(tmp_path / "ok.png")
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><title>bad</title><img src='ok.png'><img src='missing.png'>"
        "<script>console.error('boom'); undefinedFunction();</script>"
    )
    state = inspect_page(chromium, page)
    widths = {img["src"]: img["width"] for img in state["images"]}
    assert widths == {"ok.png": 4, "missing.png": 0}
    text = "\n".join(state["errors"])
    assert "boom" in text and "undefinedFunction" in text and "missing.png" in text


#: Per entry of the table of contents: its number's and its link's boxes (left, right, top) in CSS pixels, and
#: the list's left edge; and how much wider than the window the page is.
TOC_LAYOUT = (
    "JSON.stringify({left: document.querySelector('nav ol').getBoundingClientRect().left, "
    "items: Array.from(document.querySelectorAll('nav li')).map(li => {"
    "const n = li.querySelector('.number'), a = li.querySelector('a');"
    "const box = e => e ? [e.getBoundingClientRect().left, e.getBoundingClientRect().right, "
    "e.getBoundingClientRect().top] : null;"
    "return {text: n ? n.textContent : null, number: box(n), link: box(a)};}), "
    "overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth})"
)


def _toc_problems(layout: dict[str, Any]) -> list[str]:
    """Entries whose number is missing, out of order, left of the list, or overlaps the link before it."""
    problems, previous = [], None
    for k, item in enumerate(layout["items"], start=1):
        if item["number"] is None or item["text"] != f"{k}.":
            problems.append(f"entry {k}: its number is not laid out as text ({item['text']!r})")
            continue
        left, right, top = item["number"]
        if left < layout["left"] - 0.5:
            problems.append(f"entry {k}: its number starts {layout['left'] - left:.1f} px left of the list")
        if right > item["link"][0] + 0.5:
            problems.append(f"entry {k}: its number runs into its own link")
        if previous is not None and abs(previous[2] - top) < 1 and left < previous[1] + 4:
            problems.append(f"entry {k}: its number is {left - previous[1]:.1f} px after the link before it")
        previous = item["link"]
    return problems


def test_the_table_of_contents_keeps_numbers_and_links_apart(chromium, tmp_path):
    """Twelve sections (the report has eleven with three clips): every number is text inside the list, after the
    link before it with a gap; list markers ran into that link from entry 10 on ("Faithfulness11.")."""
    from markupsafe import Markup

    from conv3t.explain.report.render.page import write_page
    from conv3t.explain.report.render.section import Section

    labels = ["Model", "Statistics", "Distributions", "conv1", "layer2.0.conv2", "layer4.0.conv2"]
    labels += ["clip 0: translate_left", "clip 1: translate_down", "clip 2: zoom_in", "Faithfulness"]
    labels += ["Verification", "Conventions"]
    sections = [Section(f"s{k}", label, Markup("<p>text</p>")) for k, label in enumerate(labels)]
    page = write_page(tmp_path / "index.html", title="t", heading="h", sections=sections, footer="f")
    for width in (1280, 700):
        layout = inspect_page(chromium, page, width=width, layout=TOC_LAYOUT)["layout"]
        assert len(layout["items"]) == 12
        assert _toc_problems(layout) == [], width


def test_the_toc_check_sees_markers_that_run_into_links() -> None:
    """The checker fails the old layout: no number as text, or a number over the previous link."""
    old = {"left": 40, "items": [{"text": None, "number": None, "link": [40, 120, 10]}], "overflow": 0}
    assert "not laid out as text" in _toc_problems(old)[0]
    tight = {
        "left": 40,
        "items": [
            {"text": "1.", "number": [40, 52, 10], "link": [56, 150, 10]},
            {"text": "2.", "number": [149, 161, 10], "link": [165, 200, 10]},
        ],
        "overflow": 0,
    }
    assert _toc_problems(tight) == ["entry 2: its number is -1.0 px after the link before it"]


def faithfulness_results(clips: int) -> list[Any]:
    """``clips`` results with a verdict for every check of the page (p-values made up, kinds as in the package)."""
    from conv3t.explain.faithfulness import ChannelAblation, FaithfulnessResult, RankTest, Verdict
    from conv3t.explain.report.render.sections.faithfulness import CHECKS

    test = RankTest(0.21, 0.95, 0.02, 19, 0.05, 0.05, False)
    ablation = ChannelAblation(5, 0.97, 0.21, 0.95, 0.02, 19, test)
    results = []
    for k in range(clips):
        verdicts = tuple(
            Verdict(check, True, f"{check} holds.", "faithfulness" if i < 4 else "sanity", 0.0012 * (k + 1))
            for i, (check, _) in enumerate(CHECKS)
        )
        results.append(FaithfulnessResult(k % 3, ablation, None, None, None, (), verdicts, ()))
    return results


#: How much wider than the window the page is, and the height of the tallest header cell of the per-clip table
#: against one line of its text.
WIDTH_LAYOUT = (
    "(() => {const th = Array.from(Array.from(document.querySelectorAll('table')).pop().querySelectorAll('th'));"
    "return JSON.stringify({"
    "overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth, "
    "tallest: Math.max(...th.map(e => e.clientHeight)), "
    "cell: parseFloat(getComputedStyle(th[0]).lineHeight)});})()"
)


def test_the_per_clip_faithfulness_table_fits_the_page(chromium, tmp_path):
    """Three clips with the demo's names and all sixteen checks: the page is no wider than a 1280-pixel window
    and no header cell wraps (a column per check made it three times wider, clip names broke over lines)."""
    from types import SimpleNamespace

    from conv3t.explain.report.render.page import write_page
    from conv3t.explain.report.render.sections.faithfulness import faithfulness_section

    ctx = SimpleNamespace(
        options=SimpleNamespace(faithfulness=True, faithfulness_draws=19),
        clips=[SimpleNamespace(name=f"val clip {k}") for k in (0, 3, 6)],
        info=SimpleNamespace(classes=["translate_left", "translate_down", "zoom_in"]),
        analysis=SimpleNamespace(faithfulness=tuple(faithfulness_results(3))),
    )
    section = faithfulness_section(ctx)  # type: ignore[arg-type]
    page = write_page(tmp_path / "index.html", title="t", heading="h", sections=[section], footer="f")
    layout = inspect_page(chromium, page, width=1280, layout=WIDTH_LAYOUT)["layout"]
    assert layout["overflow"] <= 0, layout
    assert layout["tallest"] < 1.5 * layout["cell"] + 12, layout  # one line of text plus the cell's padding


@pytest.mark.slow
def test_report_opens_cleanly_in_chromium(chromium, tmp_path):
    from conv3t.explain.report import build_report
    from conv3t.exported import ModelInfo, save_exported
    from conv3t.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet10_3t", 3, base_width=4)
    with torch.no_grad():
        for name, p in model.named_parameters():  # a trained-looking spread of temporal parameters
            if name.endswith(("rotation", "translation_x", "translation_y")):
                p.uniform_(-0.2, 0.2)
            elif name.endswith("scale"):
                p.uniform_(0.85, 1.15)
    info = ModelInfo(
        model="resnet10_3t",
        num_classes=3,
        classes=["a", "b", "c"],
        num_frames=6,
        size=(32, 32),
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        model_kwargs={"base_width": 4},
        data={"dataset": "synthetic", "num_frames": 6, "size": 32, "task": "motion", "num_val": 8},
    )
    run = save_exported(model, tmp_path / "run", info)
    # every kind of figure, kept small: 3 layers (the first has the filter pictures) x 1 channel, 2 clips
    build_report(run, tmp_path / "report", progress=False, num_channels=1, num_clips=2, actmax_steps=4)
    index = Path(tmp_path / "report") / "index.html"
    shot = ARTIFACTS / "report.png"
    state = inspect_page(chromium, index, screenshot=shot)
    assert state["errors"] == []
    # clips, distributions, per channel (only conv1 has a temporal effect at 6 frames: the later layers'
    # inputs are 1-2 frames long), filter strip + GIF, per clip a Grad-CAM strip and a frame-importance plot,
    # the verification figure
    assert len(state["images"]) >= 2 + 2 + 1 * 4 + 2 + 2 * 2 + 1
    sources = [img["src"] for img in state["images"]]
    for kind in ("images/gradcam_0_", "images/gradcam_1_", "images/frame_importance_0_", "images/verification.png"):
        assert any(src.startswith(kind) for src in sources), kind
    broken = [img["src"] for img in state["images"] if not img["complete"] or img["width"] == 0]
    assert broken == []
    assert all(not img["src"].startswith(("http:", "https:", "/")) for img in state["images"])
    assert "resnet10_3t" in state["title"]
    assert shot.stat().st_size > 10_000

    from conv3t.explain.report import build_comparison

    compare = build_comparison([run, run], tmp_path / "compare", names=["a", "b"])
    state = inspect_page(chromium, compare, screenshot=ARTIFACTS / "compare.png")
    assert state["errors"] == []
    assert len(state["images"]) == 2 and all(img["width"] > 0 for img in state["images"])


@pytest.mark.slow
def test_planted_report_in_chromium(chromium, tmp_path, monkeypatch):
    """The planted network's report (tests/explain/planted.py): cards with measured readings, a prediction
    section per video, the verification figure; kept as test-artifacts/planted_report.png."""
    from planted import exported_planted, write_frame_folders

    import conv3t.explain.report.build as build

    videos = write_frame_folders(tmp_path / "videos")
    build.build_report(
        exported_planted(), tmp_path / "report", videos=videos, num_channels=3, actmax_steps=2, progress=False
    )
    index = Path(tmp_path / "report") / "index.html"
    shot = ARTIFACTS / "planted_report.png"
    state = inspect_page(chromium, index, screenshot=shot)
    assert state["errors"] == []
    broken = [img["src"] for img in state["images"] if not img["complete"] or img["width"] == 0]
    assert broken == []
    sources = [img["src"] for img in state["images"]]
    assert sum(src.startswith("images/gradcam_") for src in sources) == 2
    assert sum(src.startswith("images/frame_importance_") for src in sources) == 2
    assert "images/verification.png" in sources
    assert shot.stat().st_size > 10_000
