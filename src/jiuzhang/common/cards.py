"""Cards for output folders: a ``README.md`` in the Hugging Face card format (YAML metadata between ``---``
lines, then Markdown), so a data or model folder can be pushed to the Hub as it is and read by a person who
finds it without the pipeline.

A card says what the folder is, which stage made it and from what (each input with its content digest),
the params digest of the sections the stage read, its counts (the stage's result metrics), its schema
(Parquet columns, or the model's architecture), the licenses of the sources it comes from, and where the
held-out figures are. It is an output byte for byte like the rest of the folder, so it holds nothing that
changes between identical runs: no dates, durations, hosts or git commits (those are in MLflow and
``results/run/``). The card text is built here; the file format is ``huggingface_hub``'s card classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CARD_FILE = "README.md"

# What each stage's output is, in a line (the card's first sentence).
WHAT = {
    "corpus": "Snippets of mathematical text (<= corpus.max_chars characters), deduplicated and decontaminated "
              "against the evaluation benchmarks: the seeds the synthesis prompts are made from.",
    "prompts": "The prompt pool: each corpus snippet filled into one education-level (or tool) prompt template.",
    "kd_initial": "Knowledge-distillation set, round 1: sampled prompts and the teacher's completions "
                  "(problem and solution) for fine-tuning the synthesizer.",
    "kd_boost": "Knowledge-distillation set, round 2: prompts chosen by influence (LESS) and the teacher's "
                "completions.",
    "influence": "The influence stage's selection: candidate prompts ranked by their estimated value to the "
                 "benchmarks' training sets (LESS), the top kd.boost.n kept.",
    "synthesize": "Raw synthetic records: one generation of the synthesizer per prompt, unfiltered.",
    "synthesize_init": "Raw synthetic records from the synthesizer before knowledge distillation (a control).",
    "filter": "Clean synthetic records: parsed problems and solutions that passed the filter (tool code "
              "executed, test-set overlap, exact and near duplicates removed).",
    "filter_init": "Clean synthetic records of the pre-distillation synthesizer (a control).",
    "eval": "Evaluation outputs: per-item predictions, extracted answers and verdicts, per benchmark and setting.",
    "eval_base": "Evaluation outputs of the base model (the comparison point for the trained model).",
    "eval_arm": "Evaluation outputs of a control arm's model.",
    "base": "The base language model the pipeline pre-trains from.",
    "synthesizer_initial": "The data synthesizer after fine-tuning on the round-1 knowledge-distillation set.",
    "synthesizer": "The data synthesizer after fine-tuning on both knowledge-distillation rounds.",
    "pretrain": "The base model continually pre-trained on the synthetic records (the JiuZhang3.0 model).",
    "pretrain_arm": "A control arm: the base model pre-trained with the same settings and token budget on "
                    "other data (raw corpus text or the paper's released sample).",
}


@dataclass
class CardFacts:
    """Everything a card says; all of it deterministic for a given run's inputs and params."""

    stage: str
    profile: str
    params_digest: str
    sections: tuple[str, ...]
    inputs: dict[str, str] = field(default_factory=dict)      # name -> content digest
    counts: dict[str, Any] = field(default_factory=dict)       # the stage's top-level numeric results
    licenses: dict[str, str] = field(default_factory=dict)     # source -> license
    base_model: str | None = None
    stand_in: str | None = None                                # why this is not the real thing (smoke)


def headline_counts(metrics: dict[str, Any], most: int = 16) -> dict[str, Any]:
    """The top-level numbers of a stage's result metrics (nested tables stay in the metrics file)."""
    out = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return dict(list(out.items())[:most])


def parquet_schema(folder: Path) -> list[tuple[str, str]]:
    """(column, type) pairs of the first Parquet file under ``folder``, for the dataset card's schema table."""
    import pyarrow.parquet as pq

    files = sorted(folder.rglob("*.parquet"))
    return [(f.name, str(f.type)) for f in pq.read_schema(files[0])] if files else []


def model_facts(folder: Path) -> dict[str, Any]:
    """Architecture facts from ``config.json`` (an HF model folder)."""
    config = folder / "config.json"
    if not config.is_file():
        return {}
    data = json.loads(config.read_text())
    keys = ("model_type", "architectures", "num_hidden_layers", "hidden_size", "num_attention_heads",
            "vocab_size", "max_position_embeddings", "torch_dtype", "dtype")
    return {k: data[k] for k in keys if k in data}


def _license(facts: CardFacts) -> str:
    found = sorted(set(facts.licenses.values()))
    return found[0].lower() if len(found) == 1 and found[0] else "other"


def _common_body(facts: CardFacts, what: str) -> list[str]:
    lines = [f"# {facts.stage} ({facts.profile} profile)", "", what, ""]
    if facts.stand_in:
        lines += [f"> **Stand-in:** {facts.stand_in}", ""]
    lines += ["## How it was made", "",
              f"Written by the jiuzhang stage `{facts.stage}` (`dvc repro {facts.stage}`), from the params sections "
              f"{', '.join(f'`{s}`' for s in facts.sections)} (their digest: `{facts.params_digest}`).", ""]
    if facts.inputs:
        lines += ["| input | content digest (SHA-256, first 16) |", "|---|---|"]
        lines += [f"| {name} | `{digest}` |" for name, digest in sorted(facts.inputs.items())]
        lines += [""]
    if facts.counts:
        lines += ["## Counts", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in facts.counts.items()]
        lines += ["", "All results of the stage: `results/` of the project, its headline figures in `metrics/` "
                      "(`dvc metrics show`), run facts in `results/run/`.", ""]
    return lines


def dataset_card(folder: Path, facts: CardFacts) -> str:
    """The card text of a data folder."""
    from huggingface_hub import DatasetCardData

    schema = parquet_schema(folder)
    rows = facts.counts.get("kept", facts.counts.get("records", facts.counts.get("prompts")))
    data = DatasetCardData(license=_license(facts), pretty_name=f"jiuzhang {facts.stage}",
                           tags=["jiuzhang", "math", facts.stage.split("@")[0], facts.profile],
                           size_categories=[_size_category(rows)] if isinstance(rows, int) else None)
    body = _common_body(facts, WHAT.get(facts.stage.split("@")[0], "An output of the jiuzhang pipeline."))
    if schema:
        body += ["## Schema", "", "Parquet shards `part-*.parquet` (or one file per table):", "",
                 "| column | type |", "|---|---|"] + [f"| {n} | {t} |" for n, t in schema] + [""]
    body += _license_lines(facts)
    return f"---\n{data.to_yaml()}\n---\n" + "\n".join(body)


def model_card(folder: Path, facts: CardFacts) -> str:
    """The card text of a model folder."""
    from huggingface_hub import ModelCardData

    arch = model_facts(folder)
    hub_base = facts.base_model if facts.base_model and _looks_like_hub_id(facts.base_model) else None
    data = ModelCardData(license=_license(facts), base_model=hub_base, library_name="transformers",
                         pipeline_tag="text-generation", tags=["jiuzhang", "math", facts.stage.split("@")[0],
                                                               facts.profile])
    body = _common_body(facts, WHAT.get(facts.stage.split("@")[0], "A model made by the jiuzhang pipeline."))
    if facts.base_model:
        body += [f"Trained from: `{facts.base_model}`.", ""]
    if arch:
        body += ["## Architecture", "", "| key | value |", "|---|---|"]
        body += [f"| {k} | {v} |" for k, v in arch.items()] + [""]
    body += ["## Held-out figures", "",
             "The pipeline evaluates this model in its `eval*` stages: accuracy and held-out loss per benchmark, "
             "with intervals, in `results/eval*/` and `reports/report.html` of the project that made it (an "
             "output folder cannot hold figures computed after it was written). The training loss curve is the "
             "stage's `results/*_loss.csv`.", ""]
    body += _license_lines(facts)
    return f"---\n{data.to_yaml()}\n---\n" + "\n".join(body)


def _license_lines(facts: CardFacts) -> list[str]:
    if facts.licenses:
        return ["## Sources and licenses", "", "| source | license |", "|---|---|"] + \
            [f"| {s} | {lic or 'not stated (set corpus.sources[].license)'} |" for s, lic in sorted(facts.licenses.items())] + \
            ["", "Derived data keeps the terms of the texts it was made from; model outputs may carry further terms "
                 "of the model that wrote them.", ""]
    return ["## License", "", "Made from the inputs above; their cards state the licenses of the texts they come "
                              "from.", ""]


def _looks_like_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/")) and not Path(name).exists()


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M" if n < 100_000_000 else "n>1T" if n > 10**12 else "100M<n<1B"


def write_card(folder: str | Path, kind: str, facts: CardFacts) -> Path:
    """Write ``README.md`` into ``folder`` (kind 'dataset' or 'model'); returns its path."""
    folder = Path(folder)
    text = dataset_card(folder, facts) if kind == "dataset" else model_card(folder, facts)
    path = folder / CARD_FILE
    path.write_text(text, encoding="utf-8")
    return path
