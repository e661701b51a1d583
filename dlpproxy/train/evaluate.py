"""Quality figures: precision/recall/F1 per class and per language, benign wrongly flagged, and
the TF-IDF + logistic-regression baseline trained on the same split."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from dlpproxy.detect.classifier import ContentClassifier, windows
from dlpproxy.train.corpus import NEGATIVE, Record


def prf(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per-label precision, recall, F1 and support."""
    out: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    return out


def report(
    records: Sequence[Record], pred: Sequence[str], labels: Sequence[str]
) -> dict[str, object]:
    """Everything the model card and the benchmark quote, for one set of predictions."""
    gold = [r.label for r in records]
    per_class = prf(gold, pred, labels)
    present = [lb for lb in labels if per_class[lb]["support"]]
    macro = sum(per_class[lb]["f1"] for lb in present) / max(len(present), 1)
    benign = [p for g, p in zip(gold, pred, strict=True) if g == NEGATIVE]
    flagged = Counter(p for p in benign if p != NEGATIVE)
    per_lang: dict[str, dict[str, object]] = {}
    for lang in sorted({r.lang for r in records}):
        idx = [i for i, r in enumerate(records) if r.lang == lang]
        sub = prf([gold[i] for i in idx], [pred[i] for i in idx], labels)
        per_lang[lang] = {
            "records": len(idx),
            "f1": {lb: round(v["f1"], 4) for lb, v in sub.items() if v["support"]},
            "accuracy": round(sum(gold[i] == pred[i] for i in idx) / len(idx), 4),
        }
    non_en = [i for i, r in enumerate(records) if r.lang not in ("en", "")]
    sub = prf([gold[i] for i in non_en], [pred[i] for i in non_en], labels)
    return {
        "records": len(records),
        "macro_f1": round(macro, 4),
        "per_class": {lb: {k: round(v, 4) for k, v in m.items()} for lb, m in per_class.items()},
        "benign_flagged": round(sum(flagged.values()) / max(len(benign), 1), 4),
        "benign_flagged_as": dict(flagged),
        "non_english_f1": {lb: round(v["f1"], 4) for lb, v in sub.items() if v["support"]},
        "per_language": per_lang,
    }


OPERATING_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def record_scores(detector: ContentClassifier, texts: Sequence[str]) -> np.ndarray:
    """Per record, each label's highest window score: float [records, labels]."""
    m = detector.manifest
    per = [windows(t, m.max_len, m.stride) for t in texts]
    probs = detector.predict_windows([w[2] for spans in per for w in spans])
    out = np.zeros((len(texts), len(m.labels)), dtype=np.float32)
    at = 0
    for i, spans in enumerate(per):
        if spans:
            out[i] = np.max(np.stack(probs[at : at + len(spans)]), axis=0)
        at += len(spans)
    return out


def predictions(
    scores: np.ndarray, labels: Sequence[str], thresholds: dict[str, float]
) -> list[str]:
    """The best-scoring label that passes its threshold, else the negative class."""
    out = []
    for row in scores:
        passing = [
            (row[k], lb)
            for k, lb in enumerate(labels)
            if lb in thresholds and row[k] >= thresholds[lb]
        ]
        out.append(max(passing)[1] if passing else NEGATIVE)
    return out


def operating_points(
    records: Sequence[Record], scores: np.ndarray, labels: Sequence[str], levels: Sequence[float]
) -> list[dict[str, object]]:
    """Macro F1, benign wrongly flagged and recall per class with one threshold for all labels."""
    points = []
    for level in levels:
        pred = predictions(scores, labels, {lb: level for lb in labels if lb != NEGATIVE})
        rep = report(records, pred, labels)
        recall = {lb: m["recall"] for lb, m in rep["per_class"].items() if lb != NEGATIVE}  # type: ignore[attr-defined]
        points.append(
            {
                "threshold": level,
                "macro_f1": rep["macro_f1"],
                "benign_flagged": rep["benign_flagged"],
                "recall": recall,
            }
        )
    return points


def baseline_predictions(train: Sequence[Record], test: Sequence[Record]) -> list[str]:
    """TF-IDF character 1-4-grams (char_wb, 300k features, sublinear tf) + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 4), max_features=300_000, sublinear_tf=True
    )
    x = vec.fit_transform([r.text for r in train])
    clf = LogisticRegression(C=4.0, max_iter=1000)
    clf.fit(x, [r.label for r in train])
    return [str(p) for p in clf.predict(vec.transform([r.text for r in test]))]


def format_table(name: str, rep: dict[str, object]) -> str:
    """A plain-text table of one report, for the terminal."""
    flagged = 100 * float(rep["benign_flagged"])  # type: ignore[arg-type]
    lines = [
        f"{name}: macro F1 {rep['macro_f1']:.3f}, "
        f"benign wrongly flagged {flagged:.1f} % {rep['benign_flagged_as']}"
    ]
    lines.append(f"  {'class':<15}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}")
    for label, m in rep["per_class"].items():  # type: ignore[attr-defined]
        scores = f"{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}"
        lines.append(f"  {label:<15}{scores}{int(m['support']):>9}")
    lines.append(f"  non-English F1: {rep['non_english_f1']}")
    for lang, m in rep["per_language"].items():  # type: ignore[attr-defined]
        lines.append(
            f"  {lang}: {m['records']} records, accuracy {m['accuracy']:.3f}, F1 {m['f1']}"
        )
    return "\n".join(lines)
