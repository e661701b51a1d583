"""The model card, `models/README.md`, written from the manifest, the dev metrics and the speed
figures (`bench/classifier.py --record`), so that every number in it comes from a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlpproxy.detect.classifier import MANIFEST

METRICS_FILE = "classifier-metrics.json"
LATENCY_FILE = "classifier-latency.json"

LOCAL_SOURCES = (
    "Extra records cut from public text installed on the training machine (`dlpproxy train "
    "--save-local FILE` writes them; each record's `source` names its file): Python standard "
    "library sources, C headers in /usr/include, Perl modules in /usr/share/perl5 and shell "
    "scripts in /usr/bin (source_code); CSV files shipped in installed Python packages and "
    "dpkg/apt logs (data_export); translated man pages (ja, ko, zh_CN, zh_TW, es) and English "
    "ones, translated message catalogues in /usr/share/locale (ja, ko, zh_CN, ar, es) and the "
    "package descriptions (README text, code blocks removed) of installed Python packages "
    "(benign). Every data_export record that parses as a table is also added once re-serialised "
    "into another shape (CSV/TSV, JSON lines, pretty JSON array, SQL INSERT, COPY)."
)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _class_rows(rep: dict[str, Any]) -> list[str]:
    rows = ["| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for label, m in rep["per_class"].items():
        scores = f"{m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f}"
        rows.append(f"| {label} | {scores} | {int(m['support'])} |")
    return rows


def _lang_rows(rep: dict[str, Any], labels: list[str]) -> list[str]:
    head = " | ".join(f"F1 {lb}" for lb in labels)
    rows = [
        f"| language | records | accuracy | {head} |",
        "|---|---:|---:|" + "---:|" * len(labels),
    ]
    for lang, m in rep["per_language"].items():
        cells = " | ".join(f"{m['f1'][lb]:.3f}" if lb in m["f1"] else "-" for lb in labels)
        rows.append(f"| {lang} | {m['records']} | {m['accuracy']:.3f} | {cells} |")
    return rows


def _summary(name: str, rep: dict[str, Any]) -> str:
    return (
        f"{name}: macro F1 **{rep['macro_f1']:.3f}**, benign wrongly flagged "
        f"**{100 * rep['benign_flagged']:.2f} %** ({rep['benign_flagged_as']}), "
        f"F1 on non-English records {rep['non_english_f1']}."
    )


def _operating_rows(points: list[dict[str, Any]]) -> list[str]:
    names = list(points[0]["recall"])
    rows = [
        "One threshold for every label (set per category with `Settings.classifier_thresholds` "
        "or the policy), on dev: fewer false alarms cost recall.",
        "",
        "| threshold | macro F1 | benign wrongly flagged | "
        + " | ".join(f"recall {n}" for n in names)
        + " |",
        "|---:|---:|---:|" + "---:|" * len(names),
    ]
    for p in points:
        recalls = " | ".join(f"{p['recall'][n]:.3f}" for n in names)
        flagged = f"{100 * p['benign_flagged']:.2f} %"
        rows.append(f"| {p['threshold']} | {p['macro_f1']:.3f} | {flagged} | {recalls} |")
    return rows


def _speed(lat: dict[str, Any] | None) -> list[str]:
    if not lat:
        return ["Not measured yet: `python bench/classifier.py --cpu --record`."]
    out = []
    if "cpu" in lat:
        c = lat["cpu"]
        out.append(
            f"- CPU, one thread ({lat.get('cpu_device', 'see bench')}): p50 **{c['p50_ms']} ms**, "
            f"p99 {c['p99_ms']} ms per 2 KB prompt ({c['prompts']} prompts, `detect_sync`)."
        )
    if "cpu_concurrent" in lat:
        c = lat["cpu_concurrent"]
        out.append(
            f"- CPU, one thread, {c['callers']} concurrent callers through the micro-batcher "
            f"(max batch {c.get('max_batch', '?')}, max wait 2 ms): "
            f"p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms, {c['prompts_per_s']} prompts/s."
        )
    if "gpu_batches" in lat:
        per = ", ".join(f"{b}: {v:,.0f}" for b, v in lat["gpu_batches"].items())
        out.append(
            f"- GPU ({lat.get('gpu_device', '?')}, CUDA provider, "
            f"{lat.get('gpu_date', lat.get('date'))}), 2 KB prompts/s by batch size "
            f"(`detect_batch`, host windowing included): {per}."
        )
    if "gpu_concurrent" in lat:
        c = lat["gpu_concurrent"]
        out.append(
            f"- GPU, {c['callers']} concurrent callers (max batch {c.get('max_batch', '?')}, "
            "max wait 2 ms): "
            f"p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms, {c['prompts_per_s']} prompts/s "
            f"in {c['batches']} batches."
        )
    notes = [f"- {lat[k]}" for k in ("cpu_note", "gpu_note") if k in lat]
    return [
        *out,
        *notes,
        "",
        "Command: `python bench/classifier.py --classifier-gpu` (CPU runs included).",
    ]


def _stacker_lines(out: Path, manifest: dict[str, Any]) -> list[str]:
    """The second stage's paragraph, when the manifest names one."""
    entry = manifest.get("stacker")
    if not entry:
        return []
    stack = _load(out / entry["file"]) or {}
    trained = stack.get("trained", {})
    folds = trained.get("folds", 0)
    return [
        "",
        "### Second stage",
        "",
        f"`{entry['file']}` (format {entry['format']}, sha256 `{entry['sha256']}`, checked at "
        "load): a multinomial logistic regression over the window's log ONNX probabilities "
        f"and {len(stack.get('features', []))} layout features computed on the host "
        "(`dlpproxy/detect/layout.py`: longest fenced code block and its language tag, reST "
        "code directives, shares of lines that end like code or start with a keyword, "
        "operators, comment lines; meeting words in en/zh/ja/ko/es/ar, action marks, speaker "
        "lines, clock times, WebVTT cues, dates, @mentions; lines that start with a timestamp, "
        "delimiter counts that repeat row after row, JSON-record lines, SQL dumps). It was "
        f"fitted (C={trained.get('C')}) on {trained.get('fitted_on')} training records, "
        + (
            f"with ONNX scores taken out of fold: the training owners (GitHub organisations) "
            f"were cut into {folds} folds with similar label counts, and a surrogate model "
            f"({trained.get('surrogate_epochs')} epochs, {trained.get('surrogate_max_len')}-byte "
            "windows) trained on the other folds' owners scored each fold's records."
            if folds
            else "with the shipped ONNX model's own scores of them (it has seen them, so the "
            "stage mostly learns where the layout should overrule a confident n-gram score)."
        )
        + " Command: "
        f"`{trained.get('command', 'dlpproxy train --stacker')}`.",
        "",
        "The second stage runs only when asked for: `DLPPROXY_CLASSIFIER_STACKER=on` (or "
        "`ContentClassifier(..., stacked=True)`). By default the detector uses the ONNX scores "
        "alone, because the stage's features are Python on the host (about 1 ms per 2 KB "
        "window and core), which bounds GPU throughput, and its gain on dev was measured on the "
        "split it was chosen by. The dev figures below are with the stage on.",
    ]


def write_card(out: Path) -> Path:
    """models/README.md from the files beside it."""
    manifest = _load(out / MANIFEST)
    metrics = _load(out / METRICS_FILE) or {}
    info, labels, spec = manifest["trained"], manifest["labels"], manifest["input"]
    size = (out / manifest["model"]).stat().st_size / 1e6
    lines = [
        "# Model card: dlpproxy content classifier",
        "",
        f"`{manifest['model']}`: {size:.1f} MB, sha256 `{manifest['sha256']}` (checked at load).",
        f"Labels: {', '.join(labels)} (`{manifest['negative']}` is the negative class); "
        f"thresholds {manifest['thresholds']}.",
        "",
        "## Architecture",
        "",
        "Trained from scratch (no pretrained weights). Input: the UTF-8 bytes of a window of at "
        f"most {spec['max_len']} bytes as int32; longer prompts are cut into windows every "
        f"{spec['stride']} bytes. The ONNX graph hashes byte 1-4-grams and character-shape "
        "3/5/8-grams (letter, digit, space, newline, each punctuation mark, UTF-8 lead and "
        f"continuation bytes) into {spec['buckets']} buckets of a {info['dim']}-wide int8 "
        "embedding table (per-row scales), averages each n-gram group separately "
        f"(fastText-style), adds the log length, then {info['hidden']} ReLU units and a softmax. "
        "Bytes cover every script and programming language with no vocabulary.",
        *_stacker_lines(out, manifest),
        "",
        "## Training",
        "",
        f"Command: `{info['command']}` — seed {info['seed']}, {info['epochs']} epochs, "
        f"{info['train_seconds']} s on {info['device']}.",
        "",
        "Records: " + "; ".join(f"{k}: {v}" for k, v in info["data"].items()) + ".",
        "",
        "To reproduce: `dlpproxy train --extra-local` (its defaults are this run's settings); "
        "the text taken from a machine differs between machines, so `dlpproxy train "
        "--save-local FILE` once and `--train FILE` afterwards pins it. A retrained model comes "
        "without a second stage (its manifest names none) until `dlpproxy train --stacker` fits "
        "one for it.",
        "",
        LOCAL_SOURCES,
        f"Records taken from this machine, by label: {info.get('extra_counts', {})}.",
        "",
        "Augmentation: random crops (whole text, a full window, 16-256 bytes); script swap "
        f"({info.get('swap_rate')} of the samples: English words of prose, data fields and "
        "code comments/strings replaced by Chinese, Japanese, Korean, Arabic, Russian, Greek, "
        "Hindi or Thai words from the training records, so that language is not a cue); "
        f"n-gram dropout {info.get('ngram_dropout')}; label smoothing 0.05.",
    ]
    if "model" in metrics:
        rep = metrics["model"]
        lines += [
            "",
            f"## Quality on dev ({rep['records']} records, organisations unseen in train)",
        ]
        name = "Model with the second stage on" if manifest.get("stacker") else "Model"
        lines += ["", _summary(name, rep), "", *_class_rows(rep), "", *_lang_rows(rep, labels)]
    if metrics.get("operating_points"):
        lines += ["", *_operating_rows(metrics["operating_points"])]
    if "baseline" in metrics:
        base = metrics["baseline"]
        lines += ["", _summary(metrics.get("baseline_name", "Baseline"), base), ""]
        lines += [*_class_rows(base), "", *_lang_rows(base, labels)]
    lines += ["", "## Speed", "", *_speed(_load(out / LATENCY_FILE))]
    lines += ["", "## Limits", "", *(f"- {x}" for x in info.get("limits", []))]
    card = out / "README.md"
    card.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return card
