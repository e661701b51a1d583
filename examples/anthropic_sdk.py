"""Using the official Anthropic SDK through dlpproxy (proxy and CA from the environment).

    HTTPS_PROXY=http://127.0.0.1:8080 SSL_CERT_FILE=ca/dlpproxy-ca.pem python anthropic_sdk.py
"""

from anthropic import Anthropic

client = Anthropic()  # reads ANTHROPIC_API_KEY; httpx honours HTTPS_PROXY and SSL_CERT_FILE
message = client.messages.create(
    model="claude-sonnet-4-5",
    max_tokens=200,
    messages=[{"role": "user", "content": "Explain what a PAC file is in one sentence."}],
)
print(message.content[0].text)
