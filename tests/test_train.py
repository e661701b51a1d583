"""Training pieces: the n-gram features (numpy reference vs. ONNX graph vs. torch), the corpus
reader, the data-export re-serialiser, the script swap and the metrics."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

import onnxruntime as ort

from dlpproxy.errors import DlpError
from dlpproxy.train.augment import ScriptSwap
from dlpproxy.train.corpus import Record, read_jsonl
from dlpproxy.train.evaluate import prf, report
from dlpproxy.train.features import BUCKETS, GROUPS, encode_window, hash_spec, ngram_ids
from dlpproxy.train.graph import Weights, build_model, quantize_rows, reference_forward
from dlpproxy.train.reformat import parse_table, reformat_exports, to_json_lines, to_sql_insert

LABELS = ["benign", "data_export", "meeting_notes", "source_code"]


def random_weights(dim: int = 4, hidden: int = 6, seed: int = 0) -> Weights:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(BUCKETS + 1, dim)).astype(np.float32)
    emb[BUCKETS] = 0.0
    return Weights(
        emb,
        rng.normal(size=(len(GROUPS) * dim + 1, hidden)).astype(np.float32),
        rng.normal(size=hidden).astype(np.float32),
        rng.normal(size=(hidden, len(LABELS))).astype(np.float32),
        rng.normal(size=len(LABELS)).astype(np.float32),
    )


def rows_of(*texts: str) -> np.ndarray:
    width = max(len(t.encode()) for t in texts)
    return np.stack([encode_window(t.encode(), width) for t in texts])


def test_onnx_graph_computes_the_numpy_reference() -> None:
    weights, spec = random_weights(), hash_spec()
    model = build_model(weights, spec, LABELS)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rows = rows_of("def f(x):\n    return x\n", "会议纪要：参会人 王强", "a")
    got = session.run(["probs"], {"bytes": rows})[0]
    np.testing.assert_allclose(got, reference_forward(rows, weights, spec), atol=1e-5)


def test_padding_adds_no_ngrams() -> None:
    spec = hash_spec()
    alone = ngram_ids(rows_of("abc"), spec).reshape(len(GROUPS), -1)
    padded = ngram_ids(np.stack([encode_window(b"abc", 12)]), spec).reshape(len(GROUPS), -1)
    assert (padded[:, :3] == alone).all()
    assert (padded[:, 3:] == BUCKETS).all()


def test_ngram_longer_than_the_text_is_not_counted() -> None:
    ids = ngram_ids(rows_of("ab"), hash_spec()).reshape(len(GROUPS), -1)
    valid_per_group = (ids != BUCKETS).sum(axis=1).tolist()
    assert valid_per_group == [2, 1, 0, 0, 0, 0, 0]


def test_shape_classes_of_letters_digits_and_cjk_bytes() -> None:
    table = hash_spec().shape_table
    classes = [int(table[b + 1]) for b in b"aZ7\n " + "語".encode()[:2]]
    assert classes == [1, 2, 3, 6, 4, 10, 9]


def test_hash_spec_is_reproducible_from_its_seed() -> None:
    a, b = hash_spec(5), hash_spec(5)
    assert (a.multipliers == b.multipliers).all() and (a.salts == b.salts).all()
    assert not (hash_spec(6).multipliers == a.multipliers).all()


def test_int8_rows_round_trip_within_half_a_step() -> None:
    table = np.random.default_rng(1).normal(size=(50, 8)).astype(np.float32)
    q, scale = quantize_rows(table)
    assert q.dtype == np.int8
    assert np.abs(q * scale - table).max() <= scale.max() / 2 + 1e-6


def test_torch_hasher_matches_the_numpy_reference() -> None:
    torch = pytest.importorskip("torch")
    from dlpproxy.train.fit import TorchHasher

    rows = rows_of("SELECT * FROM t;\n", "안녕하세요 회의")
    got = TorchHasher(hash_spec())(torch.from_numpy(rows)).numpy()
    assert (got == ngram_ids(rows, hash_spec())).all()


def test_read_jsonl_names_file_and_line_of_a_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps({"text": "x", "label": "benign"}) + "\n")
        fh.write(json.dumps({"text": "no label"}) + "\n")
    with pytest.raises(DlpError, match=r"data\.jsonl\.gz:2: not a record"):
        read_jsonl(path)


def test_read_jsonl_keeps_company_labels(tmp_path: Path) -> None:
    path = tmp_path / "company.jsonl"
    path.write_text(
        json.dumps({"text": "Projekt Falke Stückliste", "label": "bill_of_materials"}) + "\n"
    )
    assert read_jsonl(path) == [Record("Projekt Falke Stückliste", "bill_of_materials")]


def test_csv_becomes_sql_insert_with_typed_values() -> None:
    table = parse_table("id,name,price\n1,Ana,2.5\n2,O'Neil,3\n3,Bo,\n")
    assert table == (
        ["id", "name", "price"],
        [["1", "Ana", "2.5"], ["2", "O'Neil", "3"], ["3", "Bo", ""]],
    )

    class Fixed(random.Random):
        def random(self) -> float:
            return 0.9

        def choice(self, seq):  # type: ignore[no-untyped-def]
            return seq[0]

    assert to_sql_insert(table, Fixed(), "items") == (
        "INSERT INTO `items` (`id`, `name`, `price`) VALUES\n"
        "(1, 'Ana', 2.5),\n(2, 'O''Neil', 3),\n(3, 'Bo', NULL);"
    )


def test_json_lines_table_becomes_json_lines_again() -> None:
    text = '{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n{"a": 3, "b": "z"}'
    table = parse_table(text)
    assert table is not None
    assert to_json_lines(table, random.Random(0), "t") == text


def test_ragged_rows_are_not_a_table() -> None:
    assert parse_table("a,b,c\n1,2\n3,4,5\n6,7,8\n") is None


def test_reformat_adds_one_copy_per_parsable_export_only() -> None:
    records = [
        Record("x,y\n1,2\n3,4\n5,6", "data_export", "en", "o/r@c:data/points.csv"),
        Record("just a sentence", "data_export"),
        Record("x,y\n1,2\n3,4\n5,6", "benign"),
    ]
    out = reformat_exports(records, seed=3)
    assert [(r.label, r.source) for r in out] == [("data_export", "derived:o/r@c:data/points.csv")]


def test_script_swap_keeps_code_and_changes_comment_words() -> None:
    record = Record(
        "def area(r):\n    # compute the circle area\n    return 3.14 * r * r\n", "source_code"
    )
    swap = ScriptSwap({"ja": ["計算", "円"] * 100}, rate=1.0, seed=1)
    out = swap(record)
    assert out.startswith("def area(r):\n    # ") and out.endswith("    return 3.14 * r * r\n")
    assert "compute the circle area" not in out


def test_script_swap_rate_zero_returns_the_text() -> None:
    record = Record("Attendees: Ana, Bo", "meeting_notes")
    assert ScriptSwap({"ja": ["計算"] * 300}, rate=0.0)(record) == record.text


def test_prf_counts_precision_recall_f1() -> None:
    gold = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", "b"]
    got = prf(gold, pred, ["a", "b"])
    assert got["a"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert got["b"]["precision"] == pytest.approx(2 / 3)


def test_report_counts_benign_wrongly_flagged_and_languages() -> None:
    records = [
        Record("q", "benign", "ja"),
        Record("q", "benign", "en"),
        Record("c", "source_code", "en"),
        Record("n", "meeting_notes", "zh"),
    ]
    rep = report(records, ["benign", "source_code", "source_code", "meeting_notes"], LABELS)
    assert rep["benign_flagged"] == 0.5
    assert rep["benign_flagged_as"] == {"source_code": 1}
    assert rep["per_language"]["zh"]["accuracy"] == 1.0  # type: ignore[index]


def test_train_command_exports_a_loadable_model_with_company_labels(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from dlpproxy.cli import main
    from dlpproxy.detect.classifier import ContentClassifier, Manifest

    rows = [
        {"text": f"Stückliste Falke {i}: Bolzen M{i}, Menge {i * 3}", "label": "bill_of_materials"}
        for i in range(20)
    ]
    rows += [{"text": f"How tall is mountain number {i}?", "label": "benign"} for i in range(20)]
    data = tmp_path / "company.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "models"
    status = main(
        ["train", "--train", str(data), "--dev", str(data), "--out", str(out), "--epochs", "2"]
    )
    assert status == 0
    det = ContentClassifier(Manifest.load(out / "classifier.json"))
    assert det.categories == frozenset({"bill_of_materials"})
    assert (out / "README.md").is_file()


def company_rows(owner: str) -> list[dict[str, str]]:
    """Labelled rows of one owner: code, CSV rows and questions, sources named like the corpus."""
    code = "def total(items):\n    result = 0\n    for item in items:\n        result += item\n"
    rows = []
    for i in range(6):
        csv = "id,name,amount,currency\n" + "".join(
            f"{j},{owner}{j},{j * i}.50,EUR\n" for j in range(6)
        )
        texts = {
            "source_code": code.replace("total", f"total_{i}") + "    return result\n",
            "data_export": csv,
            "benign": f"How far is town {i} from the coast?",
        }
        rows += [
            {"text": t, "label": lb, "source": f"{owner}/repo@abc:file{i}"}
            for lb, t in texts.items()
        ]
    return rows


def test_owner_folds_keep_each_owner_whole_and_balance_labels() -> None:
    from dlpproxy.train.stack import owner_folds

    records = [
        Record(r["text"], r["label"], "en", r["source"])
        for o in ("alpha", "beta", "gamma", "delta")
        for r in company_rows(o)
    ]
    assign = owner_folds(records, ["benign", "data_export", "source_code"], 2)
    assert set(assign) == {"alpha", "beta", "gamma", "delta"}
    assert sorted(assign.values()) == [0, 0, 1, 1]


def test_fitted_stacker_round_trips_through_its_file(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from dlpproxy.detect.classifier import MANIFEST, Manifest, file_sha256
    from dlpproxy.detect.stacker import FILE, Stacker
    from dlpproxy.train.stack import fit_stacker, write_stacker

    labels = ["benign", "data_export", "source_code"]
    records = [Record(r["text"], r["label"], "en", r["source"]) for r in company_rows("alpha")]
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(len(labels)), size=len(records)).astype(np.float32)
    pieces = [r.text.encode() for r in records]
    stacker, info = fit_stacker(records, labels, scores, pieces)
    models = tmp_path / "models"
    models.mkdir()
    manifest = json.loads((Path(__file__).parent.parent / "models" / MANIFEST).read_text())
    manifest["labels"] = labels
    (models / MANIFEST).write_text(json.dumps(manifest))
    path = write_stacker(stacker, info, models)
    assert Manifest.load(models / MANIFEST).stacker_sha256 == file_sha256(path) != ""
    loaded = Stacker.load(models / FILE, labels)
    texts = [r.text for r in records]
    np.testing.assert_allclose(loaded.apply(scores, texts), stacker.apply(scores, texts), atol=1e-4)
    predicted = [labels[k] for k in loaded.apply(scores, texts).argmax(axis=1)]
    assert predicted == [r.label for r in records]


def test_stacker_command_fits_the_second_stage_for_the_shipped_model(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    import shutil

    from dlpproxy.cli import main
    from dlpproxy.detect.classifier import ContentClassifier, Manifest

    models = tmp_path / "models"
    models.mkdir()
    for name in ("classifier.json", "classifier.onnx"):
        shutil.copy(Path(__file__).parent.parent / "models" / name, models / name)
    minutes = "Weekly sync\nAttendees: Mina, Carlos\nAction items:\n- Mina: book the room\n"
    rows = company_rows("alpha") + company_rows("beta")
    rows += [
        {"text": minutes.replace("Mina", f"Mina{i}"), "label": "meeting_notes"} for i in range(6)
    ]
    data = tmp_path / "company.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    status = main(
        ["train", "--stacker", "--train", str(data), "--dev", str(data), "--out", str(models)]
    )
    assert status == 0
    det = ContentClassifier(Manifest.load(models / "classifier.json"), stacked=True)
    assert det._stacker is not None
    assert json.loads((models / "classifier-stack.json").read_text())["trained"]["folds"] == 0
    assert "Second stage" in (models / "README.md").read_text()
