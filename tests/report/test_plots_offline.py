"""`make plots`: the project's DVC plots as a page that needs no network (DVC's default page loads vega from a
CDN). Rendered for real by `dvc plots show` with templates/plots/offline.html over the committed curves."""

from __future__ import annotations

import os
import re
import subprocess

from conftest import BIN, ROOT


def test_dvc_plots_page_loads_no_script_from_the_network(tmp_path):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    res = subprocess.run([str(BIN / "dvc"), "plots", "show", "--html-template", str(ROOT / "templates/plots/offline.html"),
                          "-o", str(tmp_path / "plots")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "plots" / "index.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert scripts == ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js"], scripts  # local files only
    assert "cdn.jsdelivr" not in page
    # every plot of dvc.yaml, with its title and axis labels
    for title in ("base model: training loss", "pre-training on the synthetic records: training loss",
                  "accuracy per benchmark and setting"):
        assert title in page, title
    assert page.count("vegaEmbed(") >= 5 and "optimizer step" in page
