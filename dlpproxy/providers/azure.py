"""Azure OpenAI: `/openai/deployments/{deployment}/chat/completions?api-version=...`.

The body is OpenAI's; the model is the deployment named in the path (the body has none).
"""

from __future__ import annotations

import re
from typing import Any

from dlpproxy.providers.base import Request
from dlpproxy.providers.openai_chat import OpenAIChatAdapter

ROUTE = re.compile(r"/openai/deployments/([^/]+)/chat/completions")


class AzureOpenAIAdapter(OpenAIChatAdapter):
    name = "azure_openai"

    def matches(self, req: Request) -> bool:
        return req.method == "POST" and ROUTE.fullmatch(req.route) is not None

    def _model(self, doc: dict[str, Any], req: Request) -> str | None:
        found = ROUTE.fullmatch(req.route)
        return found.group(1) if found else super()._model(doc, req)
