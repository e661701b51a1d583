"""`dlpproxy gateway`: an OpenAI- and Anthropic-compatible endpoint that apps call by base URL.

Apps authenticate with gateway keys; every request is scanned with the proxy's inspector and
policy; clean prompts go to the external provider with the provider key the gateway holds,
sensitive ones to the company's local model (or are redacted or blocked), and the local model
answers when the provider is down, if the configuration allows.
"""
