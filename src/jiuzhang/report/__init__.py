"""The report stage: what was run, every benchmark's result with its interval against the base model and
the paper, the held-out loss, the filter's keep rate before and after KD, sample predictions, costs (actual
next to planned) and charts, as one self-contained HTML page (charts are embedded PNGs: it renders offline),
plus results.md, summary.json and a DVC plot.

Three modules: :mod:`~jiuzhang.report.data` gathers the summary from the stages' results and predictions,
:mod:`~jiuzhang.report.charts` draws it, :mod:`~jiuzhang.report.page` writes the files (``write_report``).

Every file is built from the stages' deterministic metrics and outputs, so the report reproduces byte for
byte. Wall-clock times are facts of one execution, not of the results: they stay in ``results/run/`` (and
the table ``jiuzhang repro`` prints); the report only says where to find them. The page is rendered with
Jinja2 (autoescaped) from ``templates/report/report.html.j2``.
"""
