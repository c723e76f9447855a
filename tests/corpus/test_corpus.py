"""The corpus stage: splitting, cutting, normalising, dedup, decontamination, bad input, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jiuzhang.common.io import InputDataError
from jiuzhang.config.loader import validate_params
from jiuzhang.corpus.pipeline import build_corpus
from jiuzhang.corpus.snippets import chunk, normalise, snippets, split_parts

from conftest import ROOT, real_docs, run_cli, tiny_params, write_jsonl


@pytest.mark.parametrize("text, split_by, expected", [
    ("# T\n\n## A\nx\n## B\ny", "markdown_h2", ["# T", "## A\nx", "## B\ny"]),
    ("intro ## not a header\n## Real\nz", "markdown_h2", ["intro ## not a header", "## Real\nz"]),
    ("pre \\section{One} a \\section*{Two} b", "latex_section", ["pre", "\\section{One} a", "\\section*{Two} b"]),
    ("## A\n## B", "document", ["## A\n## B"]),
])
def test_split_parts(text, split_by, expected):
    assert split_parts(text, split_by) == expected


@pytest.mark.parametrize("raw, expected", [
    ("a  \r\nb", "a\nb"),
    ("a\n\n\n\nb", "a\n\nb"),
    ("e\u0301", "\u00e9"),              # NFC
    ("x\x00y\x07z", "xyz"),             # control characters
    ("  \n text \n ", "text"),
])
def test_normalise(raw, expected):
    assert normalise(raw) == expected


def test_head_cut_respects_max_and_word_boundary():
    text = "word " * 400
    [(local_id, snippet)] = list(snippets(text, "document", "head", 100, None))
    assert local_id == "0.0" and len(snippet) <= 100 and snippet.endswith("word")


def test_chunk_covers_text_within_limit():
    paras = [("p%d " % i) * 30 for i in range(20)]
    text = "\n\n".join(paras)
    chunks = chunk(text, 300)
    assert all(len(c) <= 300 for c in chunks)
    assert "".join(chunks).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")
    huge = "A sentence that goes on. " * 200
    assert all(len(c) <= 120 for c in chunk(huge, 120))


def _build(tmp_path: Path, files: dict[str, str], **overrides):
    params = validate_params(tiny_params(files, **overrides), "test")
    out = tmp_path / "corpus"
    metrics = build_corpus(params.corpus, ROOT, Path(params.benchmarks.root), params.benchmarks.decontaminate,
                           out)
    return out, metrics


def test_build_corpus_counts_every_drop(tmp_path, fixture_corpus):
    out, m = _build(tmp_path, fixture_corpus)
    rows = [r for f in sorted(out.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(rows) == m["kept"] > 0
    assert m["dropped"]["benchmark_overlap"] >= 1 and m["benchmark_overlap_by_benchmark"]["gsm8k"] >= 1
    assert m["sources"]["stack"]["dropped_exact_duplicate"] >= 1
    assert not any("planted" in r["id"] for r in rows)
    assert all(len(r["text"]) <= 1000 and r["n_chars"] == len(r["text"]) for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    # every snippet is either kept or dropped for exactly one reason
    for s in m["sources"].values():
        assert s["snippets"] == s.get("kept", 0) + sum(v for k, v in s.items() if k.startswith("dropped_"))


def test_build_corpus_is_deterministic(tmp_path, fixture_corpus):
    out1, _ = _build(tmp_path / "a", fixture_corpus)
    out2, _ = _build(tmp_path / "b", fixture_corpus)
    files = sorted(p.name for p in out1.glob("part-*.parquet"))
    assert files == sorted(p.name for p in out2.glob("part-*.parquet")) and files
    assert all((out1 / f).read_bytes() == (out2 / f).read_bytes() for f in files)


def test_one_shard_per_task(tmp_path, fixture_corpus):
    out, m = _build(tmp_path, fixture_corpus, **{"corpus.tasks": 3})
    assert m["shards"] == m["tasks"] == 3 == len(list(out.glob("part-*.parquet")))


BAD_LINES = {
    "malformed_json": b'{"id": "x", "text": \n',
    "invalid_utf8": b'{"id": "y", "text": "caf\xe9 au lait"}\n',
    "missing_text": b'{"id": "z", "body": "no text field here"}\n',
}


@pytest.mark.parametrize("reason", sorted(BAD_LINES))
def test_bad_record_stops_with_file_and_line(tmp_path, reason):
    good = real_docs("stackmathqa_sample.jsonl", 3)
    path = write_jsonl(tmp_path / "src.jsonl", good)
    with open(path, "ab") as fh:
        fh.write(BAD_LINES[reason])
    with pytest.raises(InputDataError) as info:
        _build(tmp_path, {"stack": str(path)})
    assert f"{path}:4:" in str(info.value) and "on_bad_record: skip" in str(info.value)


def test_bad_records_skipped_and_counted(tmp_path):
    path = write_jsonl(tmp_path / "src.jsonl", real_docs("stackmathqa_sample.jsonl", 5))
    with open(path, "ab") as fh:
        for line in BAD_LINES.values():
            fh.write(line)
    _, m = _build(tmp_path, {"stack": str(path)}, **{"corpus.on_bad_record": "skip"})
    assert m["sources"]["stack"]["bad_records"] == {r: 1 for r in BAD_LINES}
    assert m["sources"]["stack"]["documents"] == 5


def test_empty_source_and_everything_dropped_are_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputDataError, match="yielded no documents"):
        _build(tmp_path, {"stack": str(empty)})
    short = write_jsonl(tmp_path / "short.jsonl", [{"id": "a", "text": "too short"}])
    with pytest.raises(InputDataError, match="every snippet was dropped"):
        _build(tmp_path, {"stack": str(short)})


def test_corpus_stage_writes_metrics_and_provenance(tmp_path, fixture_corpus, write_params):
    params = write_params(tiny_params(fixture_corpus))
    run_cli("corpus", "--params", str(params), "--out", str(tmp_path / "out"), "--metrics",
            str(tmp_path / "metrics" / "corpus.json"), cwd=ROOT)
    metrics = json.loads((tmp_path / "metrics" / "corpus.json").read_text())
    assert metrics["kept"] > 0 and "timing" not in metrics and "run" not in metrics
    timing = json.loads((tmp_path / "metrics" / "run" / "corpus.json").read_text())
    assert timing["stage_seconds"] > 0
    prov = json.loads((tmp_path / "out" / "_provenance.json").read_text())
    assert prov["config"]["corpus"]["max_chars"] == 1000 and prov["packages"]["datatrove"]
    # only the packages that shape the output: upgrading mlflow or dvc must not change its hash (issue 13.7)
    assert set(prov["packages"]) == {"datasets", "datatrove", "numpy", "pyarrow", "xxhash"}
    assert timing["packages"]["mlflow"] and timing["packages"]["dvc"]  # the rest: run facts


def test_mmiqc_rows_filtered_to_stackexchange_and_joined_question_answer(tmp_path):
    """The paper reads only MMIQC's StackExchange rows, each as question + answer (1,000 chars each)."""
    from jiuzhang.config.corpus import SourceConfig
    from jiuzhang.corpus.documents import DocumentReader
    rows = [{"instruction": f"Question {i} " + "q" * 30, "output": f"Answer {i} " + "a" * 30,
             "source": "stackexchange-math" if i % 2 else "MetaMathQA"} for i in range(5)]
    path = write_jsonl(tmp_path / "mmiqc.jsonl", rows)
    src = SourceConfig.model_validate({"name": "mmiqc", "format": "jsonl", "path": str(path), "split_by": "document",
                                       "text_fields": ["instruction", "output"], "field_max_chars": 12,
                                       "row_filter": {"field": "source", "contains": "stackexchange"},
                                       "id_field": None})
    reader = DocumentReader(src, tmp_path, "error")
    docs = list(reader)
    assert [d.text for d in docs] == ["Question 1 q\n\nAnswer 1 aaa", "Question 3 q\n\nAnswer 3 aaa"]
    assert reader.filtered == 3 and not reader.bad
    missing = write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "only a question", "source": "stackexchange"}])
    with pytest.raises(InputDataError, match="'instruction' / 'output'"):
        list(DocumentReader(src.model_copy(update={"path": str(missing)}), tmp_path, "error"))


def test_a_source_may_cut_longer_snippets(tmp_path):
    """The paper's tool seeds (ProofWiki) are 2,000 chars where the other snippets are 1,000."""
    text = " ".join(f"Sentence number {i} of a long proof about primes." for i in range(200))
    path = write_jsonl(tmp_path / "long.jsonl", [{"id": "p", "text": text}])
    raw = tiny_params({"short": str(path), "long": str(path)})
    raw["corpus"]["sources"][1]["max_chars"] = 2000
    raw["corpus"]["dedup"].update(exact=False, near=False)
    params = validate_params(raw, "test")
    out = tmp_path / "corpus"
    build_corpus(params.corpus, ROOT, Path(params.benchmarks.root), (), out)
    rows = [r for f in sorted(out.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    short = max(r["n_chars"] for r in rows if r["source"] == "short")
    long = max(r["n_chars"] for r in rows if r["source"] == "long")
    assert short <= 1000 < long <= 2000
