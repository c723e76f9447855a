"""Text rendering of a :class:`~jiuzhang.plan.estimate.Plan` (the JSON form is ``Plan.as_dict``)."""

from __future__ import annotations

from jiuzhang.plan.estimate import Plan


def _hours(h: float | None) -> str:
    return "-" if h is None else f"{h:,.1f} h" if h >= 1 else f"{h * 60:,.1f} min"


def render(plan: Plan, params_path: str, memory: tuple[str, ...] = ()) -> str:
    """The plan as text; ``memory``: one line per stage's estimated peak device memory."""
    lines = [f"jiuzhang plan: profile '{plan.profile}' ({params_path}); accelerator {plan.accelerator}", ""]
    for s in plan.stages:
        cost = "" if s.usd is None else f"  ${s.usd:,.2f}"
        time = "" if s.device_hours is None else f"  {s.device} {_hours(s.device_hours)} (wall {_hours(s.wall_hours)})"
        lines.append(f"{s.stage}{time}{cost}")
        lines.append(f"    work:   {s.work}")
        lines.append(f"    launch: {s.launch}")
        if s.basis:
            lines.append(f"    basis:  {s.basis}")
    t = plan.totals()
    lines += ["", "totals:",
              f"    teacher: {t['teacher_calls']:,.0f} calls, ${t['teacher_usd']:,.2f}",
              f"    {plan.accelerator}: {t['accelerator_hours']:,.1f} device-hours, ${t['accelerator_usd']:,.2f}",
              f"    CPU (sandbox): {t['cpu_hours']:,.2f} core-hours",
              f"    all: ${t['usd']:,.2f}; {t['wall_hours_sequential']:,.1f} h wall if the stages run one after another"]
    if memory:
        lines += ["", "peak device memory (estimated from the model shapes, plan/memory.py):"]
        lines += [f"    {m}" for m in memory]
    if plan.warnings:
        lines += ["", "inconsistencies:"] + [f"    {w}" for w in plan.warnings]
    return "\n".join(lines)
