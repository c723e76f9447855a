"""Generation engines behind one interface: ``engine.plan(shard)`` then ``engine.generate(batch)``.

- :class:`HFEngine`: transformers ``generate`` with KV cache on left-padded same-kind batches, sampling
  through :class:`~jiuzhang.synthesis.sampling.SeededSampler` (per-request seeds). CPU or one GPU.
- :class:`VllmEngine`: vLLM with per-request ``SamplingParams(seed=...)``, in a worker process whose
  interpreter may belong to another venv (vLLM pins its own transformers).

Both tokenize the prompt the way the synthesizer was trained on it (``<bos> prompt``, no chat template)
and handle a prompt that does not fit the context the same way (``on_overlong``). They take plain values
(:class:`EngineSettings`), built from the params at the edge: :meth:`EngineSettings.of_synthesize` for the
synthesis stages, :func:`jiuzhang.evaluation.suite.eval_engine_settings` for the eval stages.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from jiuzhang.common.io import InputDataError
from jiuzhang.config.synthesis import SynthesizeConfig, VllmConfig
from jiuzhang.models.loading import load_model, pick_device, source_of
from jiuzhang.synthesis.requests import Request, batches
from jiuzhang.training.packing import prompt_ids

OVERLONG = "overlong"  # finish_reason of a skipped prompt


@dataclass(frozen=True)
class VllmSettings:
    """The vLLM worker's settings (a params section's ``vllm``: field meanings in config/synthesis.py)."""

    python: str = ""
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    enforce_eager: bool = False
    chunked_prefill: bool | None = None
    cpu_kv_cache_gib: float | None = None
    cpu_reserved_cores: int | None = None
    start_timeout_s: float = 1800

    @classmethod
    def of(cls, cfg: VllmConfig) -> VllmSettings:
        """From a params section's ``vllm`` block."""
        return cls(**cfg.model_dump())


@dataclass(frozen=True)
class EngineSettings:
    """What a generation engine reads, as plain values. ``section`` is the params section they came from
    ('synthesize', 'eval'), named in errors; ``cpu_autocast`` runs bf16 compute over fp32 weights on a CPU
    (eval.dtype: bf16); ``chat_template`` wraps prompts in the model's chat template (eval only)."""

    section: str = "synthesize"
    engine: str = "hf"
    seed: int = 0
    dtype: str = "fp32"
    device: str = "auto"
    threads: int = 2
    batch_size: int = 8
    on_overlong: str = "skip"
    fill_context: bool = False
    min_new_tokens: int = 256
    cpu_autocast: bool = False
    chat_template: bool = False
    vllm: VllmSettings = field(default_factory=VllmSettings)

    @classmethod
    def of_synthesize(cls, cfg: SynthesizeConfig) -> EngineSettings:
        """The synthesis stages' engine (``synthesize`` section)."""
        return cls("synthesize", cfg.engine, cfg.seed, cfg.dtype, cfg.device, cfg.threads, cfg.batch_size,
                   cfg.on_overlong, cfg.fill_context, cfg.min_new_tokens, vllm=VllmSettings.of(cfg.vllm))


@dataclass(frozen=True)
class Generation:
    """One completion: the text, why it ended, and its prompt and new token counts."""
    id: str
    text: str
    finish_reason: str      # "stop" (EOS), "length" (max_new_tokens), "overlong" (prompt skipped)
    prompt_tokens: int
    new_tokens: int
    truncated_prompt: bool = False


class Engine(Protocol):
    """What callers use: ``plan`` cuts a shard into generate calls, ``generate`` runs one."""

    name: str

    def plan(self, shard: list[Request]) -> list[list[Request]]:
        """The shard cut into the request lists of generate calls."""

    def generate(self, requests: list[Request]) -> list[Generation]:
        """One completion per request, in request order."""


def fit_prompt(ids: list[int], max_new: int, context: int, on_overlong: str, fill_context: bool = False,
               min_new: int = 16) -> tuple[list[int] | None, bool, int]:
    """(prompt ids that fit or None when the prompt is skipped, truncated?, new tokens allowed).

    ``fill_context``: a prompt whose tokens plus ``max_new`` exceed the context may still generate until
    the context is full (the paper's vLLM run did so: its tool prompts asked for 5,000 new tokens in a
    4,096-token context); only a prompt leaving fewer than ``min_new`` tokens is overlong."""
    if fill_context and context - len(ids) >= min_new:
        return ids, False, min(max_new, context - len(ids))
    room = context - (min_new if fill_context else max_new)
    if len(ids) <= room:
        return ids, False, max_new
    if on_overlong == "skip" or room < 16:
        return None, False, 0
    return ids[:1] + ids[len(ids) - room + 1:], True, context - room  # keep <bos> and the prompt's end (its instruction)


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` up to (not including) the first stop string; whether one was found."""
    hits = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[:min(hits)], True) if hits else (text, False)


class HFEngine:
    """Generation with transformers on this process's device, per-request seeded sampling, batched by length."""
    name = "hf"

    def __init__(self, model_dir: str | Path, settings: EngineSettings, local_rank: int = 0,
                 revision: str | None = None):
        import torch

        self.torch = torch
        self.settings = settings
        self.device = pick_device(settings.device, local_rank, f"{settings.section}.device")
        if self.device.type == "cpu":
            torch.set_num_threads(settings.threads)
        # cpu_autocast: bf16 compute over fp32 weights on a CPU (eval.dtype: bf16), so the same weights give
        # fp32 likelihoods for the held-out loss; bf16 weights would round a fine-tune's small updates away
        self.autocast = settings.cpu_autocast and self.device.type == "cpu"
        self.model, self.tokenizer = load_model(source_of(model_dir, revision),
                                                "fp32" if self.autocast else settings.dtype)
        self.model.to(self.device).eval()
        self.context = int(getattr(self.model.config, "max_position_embeddings", 2048))
        if settings.chat_template and not getattr(self.tokenizer, "chat_template", None):
            raise InputDataError(f"{settings.section}.chat_template: true, but {model_dir} has no chat template "
                                 f"(a base model, not an instruct one); set it to false")
        self.chat_template = settings.chat_template
        self._ids: dict[str, list[int]] = {}

    def _prompt_ids(self, r: Request) -> list[int]:
        if r.id not in self._ids:
            if self.chat_template:  # the template brings its own special tokens (no extra <bos>)
                self._ids[r.id] = list(self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": r.prompt}], add_generation_prompt=True, tokenize=True,
                    return_dict=False))
            else:
                self._ids[r.id] = prompt_ids(self.tokenizer, r.prompt)
        return self._ids[r.id]

    def prompt_lengths(self, requests: list[Request]) -> dict[str, int]:
        """{request id: prompt length in tokens} as the engine will feed it."""
        return {r.id: len(self._prompt_ids(r)) for r in requests}

    def generate(self, requests: list[Request]) -> list[Generation]:
        """One batch of same-kind requests (see :func:`~jiuzhang.synthesis.requests.batches`)."""
        torch = self.torch
        from transformers import GenerationConfig, LogitsProcessorList

        from jiuzhang.synthesis.sampling import SeededSampler

        max_new = max(r.sampling.max_new_tokens for r in requests)
        results: dict[str, Generation] = {}
        live: list[tuple[Request, list[int], bool]] = []
        for r in requests:
            ids, cut, _ = fit_prompt(self._prompt_ids(r), max_new, self.context, self.settings.on_overlong,
                                     self.settings.fill_context, self.settings.min_new_tokens)
            if ids is None:
                results[r.id] = Generation(r.id, "", OVERLONG, len(self._prompt_ids(r)), 0)
            else:
                live.append((r, ids, cut))
        if live:
            pad = self.tokenizer.pad_token_id
            width = max(len(ids) for _, ids, _ in live)
            # fill_context: the batch generates until its longest prompt fills the context (batches hold
            # prompts of similar length, sorted within a shard)
            max_new = min(max_new, self.context - width)
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for _, ids, _ in live], device=self.device)
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids, _ in live], device=self.device)
            sampler = SeededSampler([r.seed for r, _, _ in live], [r.sampling.temperature for r, _, _ in live],
                                    [r.sampling.top_p for r, _, _ in live])
            stop = list(requests[0].stop)
            gen_cfg = GenerationConfig(max_new_tokens=max_new, do_sample=False, pad_token_id=pad,
                                       eos_token_id=self.tokenizer.eos_token_id, use_cache=True,
                                       stop_strings=stop or None)
            from jiuzhang.common.precision import autocast

            with torch.inference_mode(), autocast(self.device.type, self.autocast):
                cache = self._prefill([ids for _, ids, _ in live], width, width + max_new)
                out = self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=gen_cfg,
                                          past_key_values=cache, logits_processor=LogitsProcessorList([sampler]),
                                          tokenizer=self.tokenizer if stop else None)
            eos = self.tokenizer.eos_token_id
            for (r, ids, cut), row in zip(live, out[:, width:].tolist()):
                if eos in row:
                    row, reason = row[:row.index(eos)], "stop"
                else:
                    reason = "length"
                text, stopped = cut_at_stop(self.tokenizer.decode(row, skip_special_tokens=True), r.stop)
                results[r.id] = Generation(r.id, text, "stop" if stopped else reason, len(ids), len(row), cut)
        return [results[r.id] for r in requests]

    def plan(self, shard: list[Request]) -> list[list[Request]]:
        """The shard in batches of similar prompt length (less padding), at most batch_size each."""
        return batches(shard, self.prompt_lengths(shard), self.settings.batch_size)

    def _prefill(self, rows: list[list[int]], width: int, max_len: int):
        """A static KV cache holding every row's prompt but its last token, left-padded to ``width - 1``.

        Each prompt is prefilled alone: a padded batch prefill attends over the whole padded square with
        an explicit mask, about 2x the work of per-row causal attention on CPU (measured in
        benchmarks/synthesis_throughput.py). ``generate`` then continues from this cache with the last
        prompt token, in one batch; positions follow from the attention mask as for a plain padded batch.
        """
        torch = self.torch
        from transformers import DynamicCache, StaticCache

        keys: list[list] = []
        values: list[list] = []
        for ids in rows:
            row_cache = DynamicCache()
            self.model(input_ids=torch.tensor([ids[:-1]], device=self.device), past_key_values=row_cache,
                       use_cache=True, logits_to_keep=1)
            gap = (width - 1) - (len(ids) - 1)
            for layer, (k, v) in enumerate((lay.keys, lay.values) for lay in row_cache.layers):
                if layer == len(keys):
                    keys.append([])
                    values.append([])
                keys[layer].append(torch.nn.functional.pad(k, (0, 0, gap, 0)))
                values[layer].append(torch.nn.functional.pad(v, (0, 0, gap, 0)))
        cache = StaticCache(config=self.model.config, max_cache_len=max_len)
        for layer in range(len(keys)):
            cache.update(torch.cat(keys[layer]), torch.cat(values[layer]), layer)
        return cache


class VllmEngine:
    """vLLM in a worker process (``vllm_worker.py``, run by ``synthesize.vllm.python``); one call per shard.

    The prompt is tokenized here, exactly as for :class:`HFEngine`, and sent as token ids with its own
    ``SamplingParams(seed=...)``, so a record's text depends on its prompt and seed, not on the shard,
    the batch or the process count.
    """

    name = "vllm"
    _TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                      "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID", "GROUP_WORLD_SIZE", "ROLE_WORLD_SIZE")

    def __init__(self, model_dir: str | Path, settings: EngineSettings, local_rank: int = 0,
                 revision: str | None = None):
        import os

        from transformers import AutoTokenizer

        self.settings = cfg = settings
        self.section = settings.section  # whose vllm settings these are, for error messages
        python = self.interpreter(settings)
        env = {k: v for k, v in os.environ.items() if k not in self._TORCHRUN_VARS}
        if "LOCAL_RANK" in os.environ:  # one replica per torchrun process, on its own GPUs
            tp = cfg.vllm.tensor_parallel_size
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(local_rank * tp + i) for i in range(tp))
        if cfg.vllm.cpu_kv_cache_gib is not None:
            env["VLLM_CPU_KVCACHE_SPACE"] = f"{cfg.vllm.cpu_kv_cache_gib:g}"
        if cfg.vllm.cpu_reserved_cores is not None:
            env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(cfg.vllm.cpu_reserved_cores)
        env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), revision=revision)
        self.proc = subprocess.Popen([python, str(Path(__file__).with_name("vllm_worker.py"))], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
                                     encoding="utf-8")
        load = {"model": str(model_dir), "revision": revision, "dtype": "bfloat16" if cfg.dtype == "bf16" else "float32",
                    "seed": cfg.seed, "max_model_len": cfg.vllm.max_model_len,
                    "tensor_parallel_size": cfg.vllm.tensor_parallel_size,
                    "gpu_memory_utilization": cfg.vllm.gpu_memory_utilization,
                    "enforce_eager": cfg.vllm.enforce_eager, "chunked_prefill": cfg.vllm.chunked_prefill}
        ready = self._call(load, timeout_s=cfg.vllm.start_timeout_s, what="load the model")
        self.context = int(ready["max_model_len"])
        self.version = ready["vllm"]

    @staticmethod
    def interpreter(settings: EngineSettings) -> str:
        """The Python that runs the worker; a clear error, before any model loads, when it has no vLLM."""
        import importlib.util

        cfg, section = settings, settings.section
        if not cfg.vllm.python:
            if importlib.util.find_spec("vllm") is None:
                raise InputDataError(f"{section}.engine: vllm is selected but not installed; `pip install .[vllm]` "
                                     f"on a GPU machine, or `make vllm-env` and {section}.vllm.python: "
                                     f".venv-vllm/bin/python on a CPU, or set {section}.engine: hf")
            return sys.executable
        python = Path(cfg.vllm.python)
        if not python.is_file():
            raise InputDataError(f"{section}.vllm.python: {python} does not exist (relative paths start at the "
                                 f"project root, {Path.cwd()}); `make vllm-env` creates .venv-vllm")
        return str(python.absolute())  # not resolve(): a venv's python is a link whose venv is found by its path

    def _call(self, message: dict, timeout_s: float | None = None, what: str = "generate") -> dict:
        import json
        import selectors

        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None  # Popen with PIPE for both
        stdin.write(json.dumps(message) + "\n")
        stdin.flush()
        if timeout_s is not None:
            with selectors.DefaultSelector() as sel:
                sel.register(stdout, selectors.EVENT_READ)
                if not sel.select(timeout_s):
                    self.close()
                    raise RuntimeError(f"vLLM worker did not {what} within {timeout_s:g} s "
                                       f"({self.section}.vllm.start_timeout_s)")
        line = stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"vLLM worker exited (code {code}) while trying to {what}; its log is above")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"vLLM worker failed to {what}:\n{answer['error']}")
        return answer

    def plan(self, shard: list[Request]) -> list[list[Request]]:
        """The whole shard as one batch: vLLM schedules it itself."""
        return [shard]  # vLLM schedules the batch itself

    def generate(self, requests: list[Request]) -> list[Generation]:
        """One completion per request from the vLLM worker; prompts too long for the context are skipped as 'overlong'."""
        results: dict[str, Generation] = {}
        batch, live = [], []
        for r in requests:
            full = prompt_ids(self.tokenizer, r.prompt)
            ids, cut, max_new = fit_prompt(full, r.sampling.max_new_tokens, self.context, self.settings.on_overlong,
                                           self.settings.fill_context, self.settings.min_new_tokens)
            if ids is None:
                results[r.id] = Generation(r.id, "", OVERLONG, len(full), 0)
                continue
            batch.append({"prompt_token_ids": ids, "temperature": r.sampling.temperature, "top_p": r.sampling.top_p,
                          "max_tokens": max_new, "seed": r.seed, "stop": list(r.stop)})
            live.append((r, ids, cut))
        if batch:
            outputs = self._call({"requests": batch})["outputs"]
            for (r, ids, cut), o in zip(live, outputs):
                results[r.id] = Generation(r.id, o["text"], "length" if o["finish_reason"] == "length" else "stop",
                                           len(ids), o["new_tokens"], cut)
        return [results[r.id] for r in requests]

    def close(self) -> None:
        """End the worker (end of input), and kill it if it does not leave within 60 s."""
        if self.proc.poll() is None and sys.meta_path is not None:  # not at interpreter shutdown
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def __del__(self):
        if getattr(self, "proc", None) is not None:
            self.close()


def check_engine(model_dir: str | Path, settings: EngineSettings, revision: str | None = None) -> None:
    """The errors an engine would hit on start, found by the driver before any worker starts."""
    if revision is None and not (Path(model_dir) / "config.json").is_file():
        raise InputDataError(f"{model_dir}: not a model folder (no config.json); run the stage that writes it "
                             f"(dvc repro synthesizer)")
    if settings.engine == "vllm":
        VllmEngine.interpreter(settings)


def build_engine(model_dir: str | Path, settings: EngineSettings, local_rank: int = 0, revision: str | None = None):
    """The engine ``settings.engine`` names; ``model_dir`` is a model folder, or a hub id with ``revision``."""
    check_engine(model_dir, settings, revision)
    if settings.engine == "vllm":
        return VllmEngine(model_dir, settings, local_rank, revision)
    return HFEngine(model_dir, settings, local_rank, revision)
