// dlpproxy PAC file: send AI services through dlpproxy, everything else direct.
// Generated from rules/ai-services.yaml (tests/test_examples.py checks they agree).
// Serve it over HTTP(S) and point browsers at it (system settings, GPO "Proxy settings",
// MDM profile, Firefox policies.json "Proxy.AutoConfigURL"). Change PROXY to your dlpproxy.
var PROXY = "PROXY dlpproxy.corp.example:8080";
var AI_HOSTS = [
    "api.openai.com",
    "chatgpt.com",
    "chat.openai.com",
    "ab.chatgpt.com",
    "files.oaiusercontent.com",
    "*.oaiusercontent.com",
    "*.openai.azure.com",
    "*.cognitiveservices.azure.com",
    "*.services.ai.azure.com",
    "api.anthropic.com",
    "claude.ai",
    "generativelanguage.googleapis.com",
    "*-aiplatform.googleapis.com",
    "aiplatform.googleapis.com",
    "gemini.google.com",
    "aistudio.google.com",
    "alkalimakersuite-pa.clients6.google.com",
    "copilot.microsoft.com",
    "*.copilot.microsoft.com",
    "bedrock-runtime.*.amazonaws.com",
    "api.deepseek.com",
    "chat.deepseek.com",
    "api.mistral.ai",
    "codestral.mistral.ai",
    "chat.mistral.ai",
    "api.groq.com",
    "api.together.xyz",
    "api.together.ai",
    "openrouter.ai",
    "api.fireworks.ai",
    "api.perplexity.ai",
    "www.perplexity.ai",
    "perplexity.ai",
    "api.x.ai",
    "grok.com",
    "api.cohere.com",
    "api.cohere.ai",
    "poe.com",
    "character.ai",
    "*.character.ai",
    "huggingface.co",
    "router.huggingface.co",
    "api-inference.huggingface.co"
];

function FindProxyForURL(url, host) {
  host = host.toLowerCase();
  for (var i = 0; i < AI_HOSTS.length; i++) {
    if (shExpMatch(host, AI_HOSTS[i])) {
      // Fail closed: if the proxy is down, AI traffic does not go out directly.
      return PROXY;
    }
  }
  return "DIRECT";
}
