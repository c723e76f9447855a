"""The stage-side half of reaching the teacher: the API key comes from the environment variable that
``teacher.api_key_env`` names (read here, never by library code), and the offline teacher gets the
prompt templates it uses to recognise each prompt's level."""

import os
from pathlib import Path

from jiuzhang.config.teacher import TeacherConfig
from jiuzhang.errors import UserError
from jiuzhang.kd.teacher_round import Endpoint


def teacher_endpoint(cfg: TeacherConfig, templates_dir: str) -> Endpoint:
    """The teacher endpoint of ``cfg``: the offline stand-in with its templates, or an OpenAI-compatible API."""
    if cfg.kind == "offline":
        templates = {p.stem: p.read_text(encoding="utf-8") for p in sorted(Path(templates_dir).glob("*.txt"))}
        return Endpoint(api_key="offline-teacher-needs-no-key", offline_templates=templates)
    key = os.environ.get(cfg.api_key_env, "")
    if not key:
        raise UserError(f"teacher.kind is 'openai' but the environment variable {cfg.api_key_env} "
                        f"(teacher.api_key_env) is empty; export it before running the stage")
    return Endpoint(api_key=key)
