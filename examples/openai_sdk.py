"""Using the official OpenAI SDK through dlpproxy (explicit proxy and CA)."""

import os
import ssl

import httpx
from openai import OpenAI

PROXY = os.environ.get("DLPPROXY_URL", "http://127.0.0.1:8080")
CA = os.environ.get("DLPPROXY_CA", "ca/dlpproxy-ca.pem")

client = OpenAI(
    http_client=httpx.Client(proxy=PROXY, verify=ssl.create_default_context(cafile=CA)),
)
answer = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Explain what a PAC file is in one sentence."}],
)
print(answer.choices[0].message.content)
