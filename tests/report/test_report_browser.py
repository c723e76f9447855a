"""The report in a real browser: Debian's headless Chromium renders reports/report.html offline (no
network at all) and the screenshot shows the tables and both charts (their bars' colours are only in the
embedded PNGs, so they appear only if the charts rendered)."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from helpers.evaluation import build_report, report_fixture

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("CI"):  # `make test` installs it (Debian's chromium); missing in CI is a failure
        raise RuntimeError("chromium is missing: `make browser` should have installed it")
    pytest.skip("no chromium (make browser installs Debian's)", allow_module_level=True)

# matplotlib's first two colours: the base model's bars, then the trained model's
BASE, TRAINED = (31, 119, 180), (255, 127, 14)
HEADER = (243, 243, 243)  # the tables' header cells


def screenshot(page, out, tmp_path):
    # Offline, as a user without internet: no network service, and a proxy that goes nowhere.
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--proxy-server=127.0.0.1:9", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,6000",
           "--hide-scrollbars", f"--screenshot={out}", page.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return Image.open(out).convert("RGB")


def count(img, colour, tolerance=6):
    pixels = np.asarray(img, dtype=np.int16)
    return int((np.abs(pixels - np.array(colour, dtype=np.int16)) <= tolerance).all(axis=-1).sum())


def test_report_renders_tables_and_charts_offline_in_chromium(tmp_path):
    m, p = report_fixture(tmp_path, with_base=True)
    build_report(tmp_path, m, p, "report")
    img = screenshot(tmp_path / "report" / "report.html", tmp_path / "shot.png", tmp_path)
    assert img.size == (1280, 6000)
    assert count(img, HEADER) > 5_000                               # table header rows drawn
    assert count(img, BASE) > 2_000 and count(img, TRAINED) > 2_000  # both charts' bars drawn
    # a page whose charts did not load shows neither colour: the same check on a copy without the images
    html = (tmp_path / "report" / "report.html").read_text()
    blank = tmp_path / "report" / "no-images.html"
    blank.write_text(html.replace("data:image/png;base64,", "https://cdn.invalid/"))
    other = screenshot(blank, tmp_path / "blank.png", tmp_path)
    assert count(other, BASE) < 100 and count(other, HEADER) > 5_000
