"""Detector registry: a name -> the factory that builds it from Settings.

Adding a detector is adding one module and one line here. Factories are imported lazily so that
a run that needs only the secrets rules never imports presidio or spaCy.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

from dlpproxy.detect.base import Detector
from dlpproxy.errors import DlpError
from dlpproxy.settings import Settings

# name -> "module:factory"; the factory takes Settings and returns a Detector.
REGISTRY: dict[str, str] = {
    "secrets": "dlpproxy.detect.secrets:build",
    "pii": "dlpproxy.detect.pii:build",
    "ner": "dlpproxy.detect.pii:build_ner",
    "keywords": "dlpproxy.detect.keywords:build",
    "classifier": "dlpproxy.detect.classifier:build",
    "fingerprint": "dlpproxy.detect.fingerprint:build",
}

DESCRIPTIONS: dict[str, str] = {
    "secrets": "credentials and keys (rules/secrets.yaml + extra packs, gitleaks TOML accepted)",
    "pii": "personal data: national IDs with checksums, cards, IBANs, e-mail, phones (presidio)",
    "ner": "person, place and organisation names (presidio on the spaCy pipeline; slower)",
    "keywords": "classification marks, code names, customer lists (rules/keywords.yaml)",
    "classifier": "source code, meeting notes, data exports (ONNX model in models/)",
    "fingerprint": "the company's own code and documents (index built by `dlpproxy index add`)",
}

# presidio probes for a GPU when imported and logs the answer at INFO, a line in every server's
# log before any of ours; an unconfigured presidio logger starts at WARNING (where
# `pii._quiet_presidio` leaves it too), a site that set its own level keeps it.
_PRESIDIO_LOG = logging.getLogger("presidio-analyzer")
if _PRESIDIO_LOG.level == logging.NOTSET:
    _PRESIDIO_LOG.setLevel(logging.WARNING)


def build_detector(name: str, settings: Settings) -> Detector:
    """Build the named detector; an unknown name is a clear error listing the known ones."""
    target = REGISTRY.get(name)
    if target is None:
        known = ", ".join(sorted(REGISTRY))
        raise DlpError(f"unknown detector '{name}'; known detectors: {known}")
    module_name, _, factory_name = target.partition(":")
    factory: Callable[[Settings], Detector] = getattr(
        importlib.import_module(module_name), factory_name
    )
    return factory(settings)


__all__ = ["DESCRIPTIONS", "REGISTRY", "Detector", "build_detector"]
