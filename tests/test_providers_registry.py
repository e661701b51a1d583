"""The adapter registry and the AI services file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlpproxy.errors import BodyError, RulePackError
from dlpproxy.providers import (
    BY_NAME,
    Request,
    adapter_for,
    default_services,
    is_ai_host,
    load_services,
    read_request,
)
from dlpproxy.settings import Settings

RULES = Path(__file__).resolve().parent.parent / "rules"
SERVICES = default_services(Settings(rules_dir=RULES))
CHAT_BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).encode()


def post(host: str, path: str, body: bytes = CHAT_BODY) -> Request:
    return Request("POST", host, path, (), body, "application/json")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ai-services.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("host", "path", "adapter"),
    [
        ("api.openai.com", "/v1/chat/completions", "openai_chat"),
        ("api.openai.com", "/v1/responses", "openai_responses"),
        (
            "acme.openai.azure.com",
            "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21",
            "azure_openai",
        ),
        ("api.anthropic.com", "/v1/messages", "anthropic"),
        (
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.5-pro:generateContent",
            "gemini",
        ),
        ("chatgpt.com", "/backend-api/f/conversation", "chatgpt_web"),
        ("claude.ai", "/api/organizations/o/chat_conversations/c/completion", "claude_web"),
        ("api.deepseek.com", "/chat/completions", "openai_compatible"),
        ("openrouter.ai", "/api/v1/chat/completions", "openai_compatible"),
        ("chat.deepseek.com", "/api/v0/chat/completion", "generic"),
        ("api.openai.com", "/v1/some/new/endpoint", "generic"),
    ],
)
def test_each_service_request_gets_its_adapter(host, path, adapter):
    found = adapter_for(post(host, path), SERVICES)
    assert found is not None and found.name == adapter


def test_a_host_that_is_not_an_ai_service_gets_no_adapter():
    assert adapter_for(post("example.com", "/v1/chat/completions"), SERVICES) is None


def test_without_services_the_first_matching_adapter_wins():
    found = adapter_for(post("llm.internal.example", "/v1/chat/completions"))
    assert found is not None and found.name == "openai_compatible"


def test_path_limited_service_covers_only_its_prefix():
    assert adapter_for(post("huggingface.co", "/api/models"), SERVICES) is None


def test_glob_hosts_are_ai_hosts():
    assert is_ai_host(SERVICES, "bedrock-runtime.eu-central-1.amazonaws.com")


def test_ordinary_hosts_are_not_decrypted():
    assert not is_ai_host(SERVICES, "github.com")


def test_shadow_ai_services_are_marked_unsanctioned():
    by_name = {s.name: s for s in SERVICES}
    assert (by_name["chatgpt"].sanctioned, by_name["deepseek"].sanctioned) == (True, False)


def test_every_listed_adapter_exists():
    assert {a for s in SERVICES for a in s.adapters} <= set(BY_NAME)


def test_unknown_adapter_is_an_error_with_file_line_and_service(tmp_path):
    path = write(
        tmp_path, "services:\n  - name: foo\n    hosts: [foo.ai]\n    adapters: [openai_chatt]\n"
    )
    with pytest.raises(
        RulePackError, match=r"ai-services.yaml:2: rule 'foo': unknown adapter 'openai_chatt'"
    ):
        load_services(path, frozenset(BY_NAME))


def test_unknown_field_is_an_error_naming_it(tmp_path):
    path = write(tmp_path, "services:\n  - name: foo\n    host: [foo.ai]\n")
    with pytest.raises(RulePackError, match="unknown field 'host'"):
        load_services(path, frozenset(BY_NAME))


def test_sanctioned_must_be_a_boolean(tmp_path):
    path = write(tmp_path, "services:\n  - name: foo\n    hosts: [foo.ai]\n    sanctioned: maybe\n")
    with pytest.raises(RulePackError, match="'sanctioned' must be true or false"):
        load_services(path, frozenset(BY_NAME))


def test_duplicate_service_names_are_an_error(tmp_path):
    text = "services:\n  - name: foo\n    hosts: [a.ai]\n  - name: foo\n    hosts: [b.ai]\n"
    with pytest.raises(RulePackError, match=r":4: rule 'foo': duplicate service name"):
        load_services(write(tmp_path, text), frozenset(BY_NAME))


def test_missing_hosts_is_an_error(tmp_path):
    with pytest.raises(RulePackError, match="missing required field 'hosts'"):
        load_services(write(tmp_path, "services:\n  - name: foo\n"), frozenset(BY_NAME))


def test_changed_chat_format_falls_back_to_generic_and_is_still_scanned():
    body = json.dumps(
        {"model": "gpt-5", "conversation": [{"author": "user", "text": "deploy key inside"}]}
    )
    reading = read_request(post("api.openai.com", "/v1/chat/completions", body.encode()), SERVICES)
    assert reading is not None
    assert (reading.adapter.name, [s.where for s in reading.extracted.prompt.segments]) == (
        "generic",
        ["conversation[0].author", "conversation[0].text"],
    )
    assert reading.fallback.startswith("openai_chat: unknown body shape")


def test_truncated_body_is_an_error_not_a_fallback():
    req = post("api.anthropic.com", "/v1/messages", b'{"model":"claude","messages":[{"role":"us')
    with pytest.raises(BodyError, match="anthropic: truncated JSON body"):
        read_request(req, SERVICES)


def test_read_request_of_a_host_outside_the_services_is_none():
    assert read_request(post("intranet.example", "/v1/chat/completions"), SERVICES) is None


def test_azure_responses_path_gets_the_responses_adapter():
    body = json.dumps({"model": "gpt-4.1", "input": "hello"}).encode()
    found = adapter_for(post("acme.openai.azure.com", "/openai/v1/responses", body), SERVICES)
    assert found is not None and found.name == "openai_responses"
