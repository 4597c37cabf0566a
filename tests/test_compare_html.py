"""comparison.html renders in a real browser with no network: headless Chromium takes a screenshot of it,
which must show the tables and the plots (matplotlib's blue is on the page, so the embedded PNGs decoded).
Skipped when no Chromium is installed (Debian: apt-get install chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from research import compare
from tests.helpers import write_run

BROWSER = next((b for name in ("chromium", "chromium-browser", "google-chrome") if (b := shutil.which(name))), None)
WIDTH, HEIGHT = 1280, 4200
PLOT_BLUE = np.array([31, 119, 180])  # matplotlib's first colour (C0): only the plots draw it


@pytest.fixture
def report_page(tmp_path: Path) -> Path:
    """A sweep with every plot: LoRA ranks over seeds, other methods, a wider model, a failed run."""
    runs = tmp_path / "runs"
    for rank, rouge in ((4, 0.30), (8, 0.36), (16, 0.38)):
        for seed in (1, 2):
            metrics = {"test/rouge1": rouge + 0.01 * seed, "zero_shot/rouge1": 0.1, "test/loss": 2 - rouge}
            overrides = (f"method.peft_config.r={rank}", f"seed={seed}")
            write_run(runs, f"lora_r{rank}_s{seed}", *overrides, metrics=metrics, trainable=rank * 3_072)
    for rank, rouge in ((4, 0.40), (8, 0.45)):
        metrics = {"test/rouge1": rouge, "test/loss": 2 - rouge}
        wide = ("model.config.d_model=256", f"method.peft_config.r={rank}")
        write_run(runs, f"wide_r{rank}", *wide, metrics=metrics, trainable=rank * 6_144, total=3_300_000)
    write_run(runs, "prompt", "method=prompt_tuning", metrics={"test/rouge1": 0.2}, trainable=2_560)
    write_run(runs, "full", "method=full", metrics={"test/rouge1": 0.41}, trainable=850_000, total=850_000)
    write_run(runs, "bad", "method=adapter", status="failed")
    compare.main([str(runs), "--out", str(tmp_path / "report")])
    return tmp_path / "report" / "comparison.html"


def test_the_page_references_nothing_outside_itself(report_page: Path):
    page = report_page.read_text()
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.IGNORECASE), "no CDN, no remote resource"
    assert "<script" not in page and "<link" not in page
    sources = re.findall(r"src='([^']*)'", page)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)


@pytest.mark.skipif(BROWSER is None, reason="no Chromium: apt-get install chromium (Debian) to run this test")
def test_headless_chromium_renders_tables_and_plots_offline(report_page: Path, tmp_path: Path):
    shot = tmp_path / "comparison.png"
    subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--proxy-server=127.0.0.1:9",  # any network request would fail: the page must not need one
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={shot}",
            report_page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with Image.open(shot) as img:
        assert img.format == "PNG" and img.size == (WIDTH, HEIGHT)
        pixels = np.asarray(img.convert("RGB"), dtype=np.int16)
    assert pixels.std() > 20, "not a blank page"
    assert (pixels.min(axis=2) < 128).mean() > 0.005, "text and lines drawn"
    blue = (np.abs(pixels - PLOT_BLUE).max(axis=2) <= 8).sum()
    assert blue > 500, f"the embedded plots are drawn ({blue} pixels of matplotlib's blue)"


# Measures the laid-out page from inside a copy of it: the report itself carries no script.
PROBE = (
    "<script>const root = document.documentElement;"
    "const tables = [...document.querySelectorAll('table')].map(t => t.scrollWidth);"
    "document.body.insertAdjacentHTML('beforeend', `<pre id='probe'>${root.scrollWidth} ${root.clientWidth} "
    "${Math.max(...tables)}</pre>`);</script>"
)


@pytest.mark.skipif(BROWSER is None, reason="no Chromium: apt-get install chromium (Debian) to run this test")
def test_wide_tables_scroll_in_their_box_and_the_page_stays_the_window_width(report_page: Path, tmp_path: Path):
    probe = tmp_path / "probe.html"
    probe.write_text(report_page.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--proxy-server=127.0.0.1:9",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=800,600",
            "--dump-dom",
            probe.as_uri(),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    page_width, window_width, widest_table = map(int, re.search(r"<pre id=\"probe\">(\d+) (\d+) (\d+)<", dom).groups())
    assert widest_table > window_width, "the fixture has a table wider than the window (else this proves nothing)"
    assert page_width <= window_width, f"the page is {page_width}px wide in a {window_width}px window"
