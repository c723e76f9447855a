"""The progress helper every long stage uses: lines on a pipe, a bar on a terminal, MLflow figures."""

from __future__ import annotations

import io
import re

import pytest

from jiuzhang.common import progress as progress_module
from jiuzhang.common.progress import Progress, clock, mode, reporting_to


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def plain_env(monkeypatch):
    for name in ("JIUZHANG_PROGRESS", "JIUZHANG_PROGRESS_EVERY", "RANK"):
        monkeypatch.delenv(name, raising=False)


def test_lines_on_a_pipe_one_per_ten_percent(monkeypatch):
    monkeypatch.setattr(progress_module, "QUIET_S", 0.0)
    out = io.StringIO()
    bar = Progress("synthesize", 20, "rec", stream=out)
    for _ in range(20):
        bar.update(1, loss=1.23456)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10, lines
    assert lines[4].startswith("synthesize: 10/20 rec (50%), ") and "ETA " in lines[4] and lines[4].endswith("loss 1.235")
    assert re.search(r"rec/s, elapsed \d:\d\d:\d\d, ETA \d:\d\d:\d\d", lines[0])
    assert "done in 0:00:00" in lines[-1] and "20/20 rec (100%)" in lines[-1]


def test_short_work_prints_only_its_last_line():
    out = io.StringIO()
    with Progress("eval gsm8k", 100, "item", stream=out) as bar:
        for _ in range(100):
            bar.update(1)
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[-1]]
    assert "100/100 item (100%)" in out.getvalue()


def test_every_percent_is_configurable(monkeypatch):
    monkeypatch.setattr(progress_module, "QUIET_S", 0.0)
    monkeypatch.setenv("JIUZHANG_PROGRESS_EVERY", "25")
    out = io.StringIO()
    bar = Progress("x", 8, stream=out)
    bar.update(8)  # one jump past every mark: one line, not four
    assert len(out.getvalue().splitlines()) == 1
    bar = Progress("x", 8, stream=out)
    for _ in range(8):
        bar.update(1)
    assert len(out.getvalue().splitlines()) == 1 + 4


def test_resumed_units_count_as_done_but_not_in_the_rate(monkeypatch):
    ticks = iter([100.0, 110.0, 110.0, 110.0, 110.0, 110.0])
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(ticks))
    bar = Progress("train", 40, "step", initial=30, form="off")
    bar.done += 5  # 5 steps of this process in 10 s
    assert bar.rate == pytest.approx(0.5)
    assert bar.eta == pytest.approx(10.0)  # 5 steps left at 0.5 step/s


def test_bar_on_a_terminal_and_off_by_request(monkeypatch):
    tty = Tty()
    assert mode(tty) == "bar" and mode(io.StringIO()) == "lines"
    with Progress("kd", 3, "req", stream=tty) as bar:
        bar.update(3, usd="0.10")
    assert "kd" in tty.getvalue() and "3/3" in tty.getvalue() and "usd=0.10" in tty.getvalue()
    monkeypatch.setenv("JIUZHANG_PROGRESS", "off")
    out = io.StringIO()
    with Progress("kd", 3, stream=out) as bar:
        bar.update(3)
    assert out.getvalue() == ""


def test_only_rank_zero_reports(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("JIUZHANG_PROGRESS", "lines")
    assert mode(io.StringIO()) == "off"


def test_bad_settings_name_the_variable(monkeypatch):
    monkeypatch.setenv("JIUZHANG_PROGRESS", "fancy")
    with pytest.raises(ValueError, match="JIUZHANG_PROGRESS='fancy': use one of auto, bar, lines, off"):
        Progress("x", 1)
    monkeypatch.setenv("JIUZHANG_PROGRESS", "lines")
    monkeypatch.setenv("JIUZHANG_PROGRESS_EVERY", "0")
    with pytest.raises(ValueError, match=r"JIUZHANG_PROGRESS_EVERY='0'.*\(0, 100\]"):
        Progress("x", 1)


def test_figures_go_to_the_stage_run_with_its_prefix():
    got: list[tuple[dict, int]] = []
    out = io.StringIO()
    with reporting_to(lambda metrics, step: got.append((metrics, step)), "eval@gsm8k"):
        with Progress("gsm8k answers", 10, "item", stream=out) as bar:
            for _ in range(10):
                bar.update(1)
    assert [step for _, step in got] == list(range(1, 11))
    last = got[-1][0]
    assert last["progress.gsm8k_answers.fraction"] == 1.0 and last["progress.gsm8k_answers.done"] == 10.0
    assert "progress.gsm8k_answers.rate" in last and "progress.gsm8k_answers.eta_s" in last
    assert out.getvalue().startswith("eval@gsm8k gsm8k answers: 10/10 item (100%)")
    with Progress("after", 1, stream=io.StringIO()) as bar:  # outside the block: nothing is sent
        bar.update(1)
    assert len(got) == 10


def test_a_failing_sink_warns_once_and_the_work_goes_on():
    calls = []

    def broken(metrics, step):
        calls.append(step)
        raise ConnectionError("tracking server gone")

    with reporting_to(broken):
        bar = Progress("x", 5, form="off")
        with pytest.warns(UserWarning, match="no longer sent to MLflow: tracking server gone"):
            for _ in range(5):
                bar.update(1)
    assert calls == [1] and bar.done == 5


def test_clock():
    assert clock(62) == "0:01:02" and clock(float("nan")) == "?" and clock(3 * 3600 + 5) == "3:00:05"
