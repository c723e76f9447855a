"""MLflow sees what a stage read and made: dataset inputs with content digests, the model folder as a
registered model version pointing at the DVC output, system metrics and progress figures of the run."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.tracking import MlflowClient

from jiuzhang.common.digest import content_digest
from jiuzhang.common.io import ShardWriter
from jiuzhang.kd.teacher_round import SCHEMA as KD_SCHEMA
from jiuzhang.tracking.lineage import dataset_inputs, register_model, registered_name

from conftest import make_tiny_model, run_cli, tiny_params


def test_inputs_carry_digests_and_models_become_registered_versions(tmp_path):
    data = tmp_path / "data" / "kd"
    data.mkdir(parents=True)
    (data / "part-0.parquet").write_bytes(b"abc")
    (tmp_path / "models" / "m").mkdir(parents=True)
    (tmp_path / "models" / "m" / "model.safetensors").write_bytes(b"weights")
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("t"))
    inputs = dataset_inputs({"kd": data, "missing": tmp_path / "nope"}, "training", tmp_path)
    assert [d.dataset.name for d in inputs] == ["kd"]  # an input the stage did not get is left out
    client.log_inputs(run.info.run_id, datasets=inputs)
    logged = client.get_run(run.info.run_id).inputs.dataset_inputs[0]
    assert logged.dataset.digest == content_digest(data) and len(logged.dataset.digest) == 16
    assert json.loads(logged.dataset.source) == {"path": "data/kd", "store": "dvc"}
    assert json.loads(logged.dataset.profile) == {"files": 1, "bytes": 3}
    assert logged.tags[0].key == "mlflow.data.context" and logged.tags[0].value == "training"
    (data / "part-0.parquet").write_bytes(b"abd")
    assert content_digest(data) != logged.dataset.digest  # the digest is of the bytes

    first = register_model(client, run.info.run_id, "pretrain_arm@raw", tmp_path / "models" / "m", tmp_path)
    second = register_model(client, run.info.run_id, "pretrain_arm@raw", tmp_path / "models" / "m", tmp_path)
    assert registered_name("pretrain_arm@raw") == "jiuzhang-pretrain_arm-raw"
    assert (int(first.version), int(second.version)) == (1, 2) and first.source == "dvc://models/m"
    assert first.tags["jiuzhang.digest"] == content_digest(tmp_path / "models" / "m")
    assert "dvc pull models/m" in client.get_registered_model("jiuzhang-pretrain_arm-raw").description


def test_a_training_stage_run_shows_inputs_model_system_metrics_and_progress(tmp_path, write_params):
    model_dir = make_tiny_model(tmp_path / "tiny")
    writer = ShardWriter(tmp_path / "kd", KD_SCHEMA, 24)
    writer.write_many({"id": f"k{i:03d}", "level": "amc8", "source": "t", "prompt": f"Make a problem about {i}.",
                       "completion": f"[Problem]: What is {i} + {i}?\n\n[Solution]: It is {2 * i}.",
                       "problem": f"What is {i} + {i}?", "solution": f"It is {2 * i}."} for i in range(24))
    writer.close()
    params = tiny_params({"x": "unused.jsonl"})
    params["synthesizer"]["init"] = {"path": str(model_dir)}
    params["synthesizer"]["train"].update(max_length=64, micro_batch=2, global_batch=4, epochs=2, log_every=1)
    params["tracking"]["system_metrics_s"] = 0.2
    res = run_cli("synthesizer_initial", "--params", str(write_params(params)), "--kd", str(tmp_path / "kd"),
                  "--out", str(tmp_path / "models" / "syn"), "--checkpoints", str(tmp_path / "ck"),
                  "--metrics", str(tmp_path / "metrics.json"), cwd=tmp_path,
                  env={"JIUZHANG_TRACKING": "on", "MLFLOW_TRACKING_URI": "", "JIUZHANG_PROGRESS": "lines"})
    assert "synthesizer_initial train: 12/12 step (100%)" in res.stderr and "done in" in res.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("jiuzhang").experiment_id],
                              filter_string="tags.`jiuzhang.stage` = 'synthesizer_initial'")
    run = runs[0]
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name == "kd_kd" and dataset.dataset.digest == content_digest(tmp_path / "kd")
    (version,) = client.search_model_versions("name = 'jiuzhang-synthesizer_initial'")
    assert version.source == "dvc://models/syn" and version.run_id == run.info.run_id
    assert version.tags["jiuzhang.digest"] == content_digest(tmp_path / "models" / "syn")
    assert any(k.startswith("system/cpu_utilization") for k in run.data.metrics), sorted(run.data.metrics)
    assert run.data.metrics["progress.train.fraction"] == 1.0
    from huggingface_hub import ModelCard

    card = ModelCard.load(tmp_path / "models" / "syn" / "README.md")
    assert card.data.library_name == "transformers" and "synthesizer_initial" in card.data.tags
    assert card.data.base_model is None  # a local folder is no hub id: it is named in the text instead
    assert f"Trained from: `{model_dir}`" in card.text and "## Architecture" in card.text
    assert f"| kd_kd | `{content_digest(tmp_path / 'kd')}` |" in card.text and "## Held-out figures" in card.text
    assert Path(tmp_path / "metrics.json").is_file()


def test_cards_are_hugging_face_cards_and_deterministic(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from huggingface_hub import DatasetCard

    from jiuzhang.common.cards import CardFacts, write_card

    folder = tmp_path / "corpus"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["x", "y"]}), folder / "part-00000.parquet")
    facts = CardFacts("corpus", "smoke", "0123456789abcdef", ("corpus", "benchmarks"), {"source_openstax": "feedbeef"},
                      {"kept": 4991, "kept_chars": 4480996, "shards": 2},
                      {"openstax": "cc-by-nc-sa-4.0", "stackexchange": "cc-by-sa-4.0"}, None, "smoke profile: tiny")
    path = write_card(folder, "dataset", facts)
    first = path.read_bytes()
    assert write_card(folder, "dataset", facts).read_bytes() == first  # nothing run-dependent in it
    card = DatasetCard.load(path)
    assert card.data.license == "other" and card.data.size_categories == ["1K<n<10K"]  # two licenses -> other
    assert "jiuzhang" in card.data.tags and card.data.pretty_name == "jiuzhang corpus"
    text = card.text
    for needle in ("deduplicated and decontaminated", "| source_openstax | `feedbeef` |", "`0123456789abcdef`",
                   "| kept | 4991 |", "| id | string |", "| openstax | cc-by-nc-sa-4.0 |", "**Stand-in:** smoke"):
        assert needle in text, needle
    one = CardFacts("corpus", "mini", "d", ("corpus",), licenses={"openstax": "CC-BY-NC-SA-4.0"})
    assert DatasetCard.load(write_card(folder, "dataset", one)).data.license == "cc-by-nc-sa-4.0"
