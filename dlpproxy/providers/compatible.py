"""OpenAI-compatible chat APIs (DeepSeek, Mistral, Groq, Together, OpenRouter, Perplexity, xAI...).

They take OpenAI's body on their own path prefixes (`/chat/completions`, `/v1/...`,
`/openai/v1/...`, `/api/v1/...`), so any host's `.../chat/completions` matches here; the
services file decides which hosts are AI services at all.
"""

from __future__ import annotations

from dlpproxy.providers.base import Request
from dlpproxy.providers.openai_chat import OpenAIChatAdapter


class OpenAICompatibleAdapter(OpenAIChatAdapter):
    name = "openai_compatible"

    def matches(self, req: Request) -> bool:
        return req.method == "POST" and req.route.endswith("/chat/completions")
