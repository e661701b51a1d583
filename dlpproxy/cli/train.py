"""`dlpproxy train`: train the content classifier from labelled JSON lines and export it to ONNX.

Needs the training extra (`pip install '.[train]'`: torch, onnx, scikit-learn). Reads
`{"text", "label"}` lines (gzip allowed); the label `benign` is the negative class and any other
label becomes a category, so a company can add its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

from dlpproxy.errors import DlpError
from dlpproxy.settings import PACKAGE_DIR, Settings

HELP = "train the ONNX content classifier from labelled JSON lines"


def _default_data() -> Path:
    return Path(
        os.environ.get(
            "DLPPROXY_CLASSIFIER_DATA", PACKAGE_DIR.parent.parent / "shared/data/classifier"
        )
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = _default_data()
    parser.add_argument(
        "--train",
        type=Path,
        action="append",
        help=f"training JSON lines (default {data}/train.jsonl.gz); repeat to add files",
    )
    parser.add_argument(
        "--dev",
        type=Path,
        default=None,
        help=f"evaluation JSON lines, never trained on (default {data}/dev.jsonl.gz when present)",
    )
    parser.add_argument(
        "--extra-local",
        action="store_true",
        help="also train on public text cut from this machine (code, manuals, data files)",
    )
    parser.add_argument(
        "--save-local",
        type=Path,
        metavar="FILE",
        help="write the --extra-local records to FILE (gzip JSON lines) and stop",
    )
    parser.add_argument("--out", type=Path, default=None, help="model folder (default: models/)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--ngram-dropout", type=float, default=0.5)
    parser.add_argument(
        "--balanced",
        action="store_true",
        help="weight classes equally (default: by their share of the data)",
    )
    parser.add_argument(
        "--no-reformat",
        action="store_true",
        help="do not add copies of the data exports re-serialised into other shapes",
    )
    parser.add_argument(
        "--swap-rate",
        type=float,
        default=0.7,
        help="share of samples whose words are swapped into another language",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, default=32, help="embedding width")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--max-len", type=int, default=2048, help="window length in bytes")
    parser.add_argument(
        "--stacker",
        action="store_true",
        help="fit only the second stage (layout features + ONNX scores) for the model in --out, "
        "on out-of-fold scores of surrogate models trained per owner fold of --train",
    )
    parser.add_argument(
        "--stacker-folds",
        type=int,
        default=0,
        help="0 (default): fit on the model's own scores of the training records; N >= 2: on "
        "out-of-fold scores of N surrogate models, one per owner fold (needs torch)",
    )
    parser.add_argument("--stacker-epochs", type=int, default=4, help="surrogate epochs")
    parser.add_argument("--stacker-max-len", type=int, default=1024, help="surrogate window")
    parser.add_argument(
        "--stacker-workdir",
        type=Path,
        default=Path(".traindata/stacker"),
        help="where the surrogate models are written (default .traindata/stacker/)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also train and score the TF-IDF + logistic-regression baseline",
    )


def _load(args: argparse.Namespace) -> tuple[list, list, dict[str, object]]:
    from dlpproxy.train.corpus import collect_local, read_jsonl
    from dlpproxy.train.reformat import reformat_exports

    data = _default_data()
    train_files = args.train or [data / "train.jsonl.gz"]
    train = [r for f in train_files for r in read_jsonl(f)]
    counts: dict[str, object] = {str(f): len(read_jsonl(f)) for f in train_files}
    if args.extra_local:
        extra = collect_local(args.seed)
        counts["local public text"] = len(extra)
        train += extra
    if not args.no_reformat:
        derived = reformat_exports(train, args.seed)
        counts["data exports re-serialised into other shapes"] = len(derived)
        train += derived
    extra_counts = dict(Counter(r.label for r in train if r.source.startswith("local:")))
    dev_file = args.dev or (data / "dev.jsonl.gz")
    dev = read_jsonl(dev_file) if args.dev or dev_file.is_file() else []
    return (
        train,
        dev,
        {"data": counts, "extra_counts": extra_counts, "dev": str(dev_file) if dev else ""},
    )


def run(args: argparse.Namespace) -> int:
    try:
        from dlpproxy.train.corpus import NEGATIVE, collect_local, write_jsonl
    except ImportError as exc:
        raise DlpError(f"training needs the train extra: pip install '.[train]' ({exc})") from exc
    if args.save_local:
        n = write_jsonl(args.save_local, collect_local(args.seed))
        print(f"wrote {n} records to {args.save_local}")
        return 0
    if args.stacker:
        return _stacker(args)
    train, dev, info = _load(args)
    labels = sorted({r.label for r in train}, key=lambda lb: (lb != NEGATIVE, lb))
    if labels[0] != NEGATIVE:
        raise DlpError(
            f"the training data has no '{NEGATIVE}' records; the negative class is required"
        )
    print(
        f"{len(train)} training records: {dict(Counter(r.label for r in train))}", file=sys.stderr
    )
    out = args.out or Settings().models_dir
    _train_and_export(args, train, labels, info, out)
    if dev:
        _evaluate(args, train, dev, labels, out)
    return 0


def _stacker(args: argparse.Namespace) -> int:
    from dlpproxy.train.corpus import NEGATIVE, read_jsonl
    from dlpproxy.train.stack import build_stacker

    data = _default_data()
    train = [r for f in (args.train or [data / "train.jsonl.gz"]) for r in read_jsonl(f)]
    labels = sorted({r.label for r in train}, key=lambda lb: (lb != NEGATIVE, lb))
    out = args.out or Settings().models_dir
    command = "dlpproxy train " + shlex.join(sys.argv[2:]) if sys.argv[1:2] == ["train"] else ""
    build_stacker(
        train,
        labels,
        out,
        args.stacker_workdir,
        args.stacker_epochs,
        args.stacker_max_len,
        command or "dlpproxy train --stacker",
        folds=args.stacker_folds,
    )
    dev_file = args.dev or (data / "dev.jsonl.gz")
    if dev_file.is_file():
        _evaluate(args, train, read_jsonl(dev_file), labels, out)
    return 0


def _train_and_export(
    args: argparse.Namespace, train: list, labels: list[str], info: dict[str, object], out: Path
) -> None:
    try:
        import torch

        from dlpproxy.train.export import save
        from dlpproxy.train.features import hash_spec
        from dlpproxy.train.fit import FitConfig, fit
        from dlpproxy.train.graph import build_model
    except ImportError as exc:
        raise DlpError(f"training needs the train extra: pip install '.[train]' ({exc})") from exc
    cfg = FitConfig(
        dim=args.dim,
        hidden=args.hidden,
        epochs=args.epochs,
        lr=args.lr,
        max_len=args.max_len,
        swap_rate=args.swap_rate,
        ngram_dropout=args.ngram_dropout,
        natural_priors=not args.balanced,
        seed=args.seed,
    )
    started = time.monotonic()
    weights = fit(train, labels, hash_spec(), cfg)
    info.update(
        command="dlpproxy train " + shlex.join(sys.argv[2:])
        if sys.argv[1:2] == ["train"]
        else "dlpproxy train",
        seed=args.seed,
        epochs=args.epochs,
        lr=args.lr,
        swap_rate=args.swap_rate,
        ngram_dropout=args.ngram_dropout,
        natural_priors=not args.balanced,
        dim=args.dim,
        hidden=args.hidden,
        max_len=args.max_len,
        stride=args.max_len * 3 // 4,
        train_seconds=round(time.monotonic() - started, 1),
        device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        limits=[
            "Non-English meeting notes in training are Chinese only; Japanese, Korean, "
            "Spanish and Arabic minutes are unseen.",
            "A window is classified as a whole: a short code snippet inside a long prose "
            "window can score below the threshold.",
            "Labels follow where text was cut from; README prose about meetings and "
            "test-fixture logs sit near the class boundaries.",
        ],
    )
    path = save(build_model(weights, hash_spec(), labels), labels, out, info)
    print(f"wrote {path} and {path.parent / 'classifier.onnx'}", file=sys.stderr)


def _evaluate(
    args: argparse.Namespace, train: list, dev: list, labels: list[str], out: Path
) -> None:
    from dlpproxy.detect.classifier import ContentClassifier, Manifest
    from dlpproxy.train.card import METRICS_FILE, write_card
    from dlpproxy.train.evaluate import (
        OPERATING_LEVELS,
        baseline_predictions,
        format_table,
        operating_points,
        predictions,
        record_scores,
        report,
    )

    manifest = Manifest.load(out / "classifier.json")
    detector = ContentClassifier(
        manifest, max_batch=8, threads=os.cpu_count() or 1, stacked=manifest.stacker is not None
    )
    scores = record_scores(detector, [r.text for r in dev])
    pred = predictions(scores, labels, dict(manifest.thresholds))
    metrics: dict[str, object] = {
        "model": report(dev, pred, labels),
        "operating_points": operating_points(dev, scores, labels, OPERATING_LEVELS),
    }
    print(format_table("model", metrics["model"]))  # type: ignore[arg-type]
    if args.baseline:
        metrics["baseline"] = report(dev, baseline_predictions(train, dev), labels)
        print(format_table("baseline", metrics["baseline"]))  # type: ignore[arg-type]
    (out / METRICS_FILE).write_text(
        json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_card(out)
