"""The proxy benchmark's prompts, answer checks, figures and its two helpers with real parts:
the echo upstream over TLS and the plain-mitmproxy host mapping (mitmproxy's taddons)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from mitmproxy import connection, exceptions
from mitmproxy.proxy import server_hooks
from mitmproxy.test import taddons

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.plain_resolve import PlainResolve  # noqa: E402
from bench.proxy import (  # noqa: E402
    Job,
    _drive,
    add_arguments,
    expected,
    make_jobs,
    open_clients,
    outcome,
    plan_of,
    summarise,
)
from bench.proxy_report import Run, Step, comparison_rows, verdict  # noqa: E402
from bench.proxy_stack import (  # noqa: E402
    Setup,
    cpu_seconds,
    echo_answer,
    start_upstream,
    stop_process,
)

CONTEXT = ssl.create_default_context()
DIRECT = Setup("direct", "https://127.0.0.1:1/v1/chat/completions", None, CONTEXT)
DLP = Setup("dlpproxy", "https://api.openai.com/v1/chat/completions", "http://p", CONTEXT, 1)


def answer(content: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"choices": [{"message": {"role": "assistant", "content": content}}]}
    return httpx.Response(200, json=body, headers=headers or {})


def figures(
    setup: str, clients: int, p50: float, p99: float, rps: float, cpu: float | None = None
) -> Run:
    return Run(setup, clients, 100, 0, 0, p50, p99, rps, {}, cpu)


def options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_every_prompt_of_a_run_is_different_so_no_scan_is_remembered():
    texts = [job.text for job in make_jobs(500, 0) + make_jobs(500, 500)]
    assert len(set(texts)) == 1000


def test_prompts_hold_between_1900_and_2048_bytes():
    sizes = [len(job.text.encode()) for job in make_jobs(200, 0)]
    assert min(sizes) >= 1900
    assert max(sizes) <= 2048


def test_prompts_are_eight_clean_one_email_one_key_in_ten():
    kinds = [job.kind for job in make_jobs(100, 0)]
    assert (kinds.count("clean"), kinds.count("email"), kinds.count("key")) == (80, 10, 10)


def test_email_prompt_holds_one_address_and_key_prompt_one_aws_key_id():
    email, key = make_jobs(10, 0)[0], make_jobs(10, 0)[5]
    assert len(re.findall(r"[a-z.]+@[a-z.-]+\.[a-z]+", email.text)) == 1
    assert len(re.findall(r"\bAKIA[A-Z2-7]{16}\b", key.text)) == 1


def test_clean_prompt_holds_no_address_and_no_key():
    clean = make_jobs(10, 0)[1]
    assert clean.kind == "clean"
    assert "@" not in clean.text and "AKIA" not in clean.text


def test_dlpproxy_is_expected_to_block_key_prompts():
    assert expected(DLP, Job("key", "k")) == "blocked"


def test_dlpproxy_is_expected_to_echo_email_prompts_restored():
    assert expected(DLP, Job("email", "e")) == "echo"


def test_direct_requests_are_expected_to_echo_key_prompts():
    assert expected(DIRECT, Job("key", "k")) == "echo"


def test_answer_with_an_incident_header_reads_as_blocked():
    got = answer("dlpproxy blocked this prompt", {"x-dlpproxy-incident": "inc-1"})
    assert outcome(got, Job("key", "k")) == "blocked"


def test_echo_of_the_same_prompt_reads_as_echo():
    assert outcome(answer("You said: hello there"), Job("clean", "hello there")) == "echo"


def test_echo_still_holding_a_placeholder_reads_as_other():
    got = answer("You said: note to [EMAIL_1]")
    assert outcome(got, Job("email", "note to ann@example-corp.com")) == "other"


def test_non_200_answer_reads_as_error():
    assert outcome(httpx.Response(502, text="bad gateway"), Job("clean", "x")) == "error"


def test_summary_counts_failed_requests_apart_from_wrong_answers():
    jobs = [Job("clean", "a"), Job("key", "b"), Job("clean", "c"), Job("email", "d")]
    results = [(10.0, "echo"), (2.0, "echo"), (30.0, "error"), (20.0, "echo")]
    run = summarise(DLP, 4, jobs, results, wall=2.0)
    assert (run.errors, run.wrong, run.p50, run.rps) == (1, 1, 10.0, 2.0)


def test_summary_gives_the_median_per_prompt_kind():
    jobs = [Job("clean", "a"), Job("clean", "b"), Job("clean", "c"), Job("key", "d")]
    results = [(10.0, "echo"), (14.0, "echo"), (40.0, "echo"), (3.0, "blocked")]
    run = summarise(DLP, 1, jobs, results, wall=1.0)
    assert run.p50_by_kind == {"clean": 14.0, "key": 3.0}


def test_comparison_gives_added_ms_and_ratios_against_mitmproxy_and_direct():
    runs = [
        figures("direct", 50, 4.0, 10.0, 400.0),
        figures("mitmproxy", 50, 20.0, 50.0, 200.0, 2.5),
        figures("dlpproxy", 50, 25.0, 60.0, 150.0, 6.0),
    ]
    assert comparison_rows(runs) == [
        ["50", "+5.0 / +10.0", "1.25 / 1.20", "0.75", "+21.0 / +50.0", "+16.0 / +40.0", "0.50",
         "+3.50", "-", "-"]
    ]  # fmt: skip
    runs.append(figures("dlpproxy-all", 50, 30.0, 75.0, 120.0, 7.25))
    assert comparison_rows(runs)[0][-2:] == ["+10.0 / +25.0", "+4.75"]
    assert verdict(runs, {})[:2] == [
        "- added p99 over plain mitmproxy at 50 clients: +10.0 ms (met: target <= 20 ms)",
        "  (with mitmdump's whole addon set, `--mitmproxy-addons all`: +25.0 ms)",
    ]


def test_target_is_judged_on_the_most_clients():
    runs = [
        figures("direct", 1, 1.0, 2.0, 9.0),
        figures("mitmproxy", 1, 5.0, 6.0, 9.0),
        figures("dlpproxy", 1, 9.0, 90.0, 9.0),
        figures("direct", 50, 1.0, 2.0, 9.0),
        figures("mitmproxy", 50, 5.0, 40.0, 9.0),
        figures("dlpproxy", 50, 9.0, 61.0, 9.0),
    ]
    assert verdict(runs, {})[0].startswith("- added p99 over plain mitmproxy at 50 clients: +21.0")
    assert "NOT met" in verdict(runs, {})[0]


def test_paced_step_is_judged_against_the_target_too():
    runs = [
        figures("direct", 50, 1.0, 2.0, 9.0),
        figures("mitmproxy", 50, 5.0, 40.0, 9.0),
        figures("dlpproxy", 50, 9.0, 45.0, 9.0),
        replace(figures("direct", 50, 1.0, 2.0, 9.0), rate=50.0),
        replace(figures("mitmproxy", 50, 5.0, 10.0, 9.0), rate=50.0),
        replace(figures("dlpproxy", 50, 9.0, 19.5, 9.0), rate=50.0),
    ]
    assert verdict(runs, {})[1] == (
        "- added p99 over plain mitmproxy at 50 clients paced at 50 req/s: +9.5 ms"
        " (met: target <= 20 ms)"
    )


def memory_of(*samples: tuple[int, float]) -> dict[str, Any]:
    return {"errors": 0, "wrong": 0, "rss_mb": list(samples)}


def test_memory_growing_faster_than_a_tenth_mb_per_thousand_requests_is_not_flat():
    runs = [figures(s, 10, 1.0, 1.0, 1.0) for s in ("direct", "mitmproxy", "dlpproxy")]
    grown = {"dlpproxy": memory_of((0, 180.0), (2000, 200.0), (10000, 201.0))}
    assert "(growing: flat means at most 0.1 MB per 1,000 requests" in verdict(runs, grown)[2]


def test_memory_growing_under_a_tenth_mb_per_thousand_requests_is_flat():
    runs = [figures(s, 10, 1.0, 1.0, 1.0) for s in ("direct", "mitmproxy", "dlpproxy")]
    grown = {"dlpproxy": memory_of((0, 180.0), (2000, 200.0), (10000, 200.4))}
    assert "(flat: flat means at most 0.1 MB per 1,000 requests" in verdict(runs, grown)[2]


def test_memory_line_gives_growth_per_thousand_requests_beside_plain_mitmproxy():
    runs = [figures(s, 10, 1.0, 1.0, 1.0) for s in ("direct", "mitmproxy", "dlpproxy")]
    grown = {
        "mitmproxy": memory_of((0, 70.0), (2000, 80.0), (10000, 81.0)),
        "dlpproxy": memory_of((0, 180.0), (2000, 200.0), (10000, 204.0)),
    }
    assert verdict(runs, grown)[2] == (
        "- dlpproxy RSS 200 MB after 2000 requests, 204 MB after 10000: +4.0 MB, 0.50 MB per"
        " 1,000 requests; plain mitmproxy +1.0 MB (growing: flat means at most 0.1 MB per"
        " 1,000 requests after the first fifth, which fills the allocator)"
    )


def test_errors_of_the_memory_phases_count_against_the_target():
    runs = [figures(s, 10, 1.0, 1.0, 1.0) for s in ("direct", "mitmproxy", "dlpproxy")]
    grown = {
        "mitmproxy": {"errors": 0, "wrong": 0, "rss_mb": []},
        "dlpproxy": {"errors": 2, "wrong": 1, "rss_mb": []},
    }
    assert verdict(runs, grown)[1] == "- errors and wrong answers, all setups and phases: 3"


def test_one_request_count_applies_to_every_client_step():
    plan = plan_of(options("--proxy-clients", "1,10", "--proxy-requests", "300"))[0]
    assert plan[:2] == [Step(1, 300), Step(10, 300)]


def test_paced_step_comes_last_with_its_rate():
    plan = plan_of(options("--proxy-clients", "1", "--proxy-requests", "30"))[0]
    assert plan == [Step(1, 30), Step(50, 1000, 50.0)]


def test_paced_rate_zero_leaves_the_paced_step_out():
    argv = ("--proxy-clients", "1,10", "--proxy-requests", "400,2000", "--proxy-paced-rate", "0")
    plan = plan_of(options(*argv))[0]
    assert plan == [Step(1, 400), Step(10, 2000)]


def test_request_counts_that_do_not_match_the_steps_are_refused():
    with pytest.raises(SystemExit, match="3 counts for 2 client steps"):
        plan_of(options("--proxy-clients", "1,10", "--proxy-requests", "1,2,3"))


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Setup]:
    """The benchmark's echo upstream in its own process, as the direct setup that trusts it."""
    proc, port, ca = start_upstream(tmp_path)
    url = f"https://127.0.0.1:{port}/v1/chat/completions"
    yield Setup("direct", url, None, ssl.create_default_context(cafile=str(ca)))
    stop_process(proc)
    assert proc.returncode is not None


def test_echo_upstream_answers_two_requests_over_tls_on_one_connection(upstream: Setup):
    peers = []
    with httpx.Client(verify=upstream.verify) as client:
        for text in ("first", "second"):
            body = {"messages": [{"role": "user", "content": text}]}
            got = client.post(upstream.url, json=body)
            assert outcome(got, Job("clean", text)) == "echo"
            peers.append(got.extensions["network_stream"].get_extra_info("client_addr"))
    assert peers[0] == peers[1]


def test_echo_answer_is_one_http_response_with_the_prompt_echoed():
    raw = echo_answer(b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"content-length: {len(body)}".encode() in head
    assert outcome(httpx.Response(200, content=body), Job("clean", "hi")) == "echo"


def test_echo_upstream_drops_a_connection_that_sends_junk_and_keeps_serving(upstream: Setup):
    with httpx.Client(verify=upstream.verify) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(upstream.url, content=b"not json")
        body = {"messages": [{"role": "user", "content": "after junk"}]}
        got = client.post(upstream.url, json=body)
    assert outcome(got, Job("clean", "after junk")) == "echo"


def test_paced_requests_start_no_sooner_than_their_schedule(upstream: Setup):
    jobs = make_jobs(11, 0)

    async def paced() -> list[tuple[float, str]]:
        async with contextlib.AsyncExitStack() as stack:
            pool = await open_clients(stack, upstream, 4)
            return await _drive(pool, upstream, jobs, rate=50.0)

    began = time.perf_counter()
    results = asyncio.run(paced())
    assert time.perf_counter() - began >= 10 / 50.0
    assert [got for _, got in results] == ["echo"] * 11


def _connect_to(addon: PlainResolve, host: str) -> tuple[str, int] | None:
    server = connection.Server(address=(host, 443))
    client = connection.Client(peername=("127.0.0.1", 5000), sockname=("127.0.0.1", 8080))
    addon.server_connect(server_hooks.ServerConnectionHookData(server=server, client=client))
    return server.address


def test_plain_mitmproxy_sends_the_mapped_host_to_the_upstream():
    addon = PlainResolve()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, bench_resolve=["api.openai.com=127.0.0.1:9443"])
        assert _connect_to(addon, "api.openai.com") == ("127.0.0.1", 9443)


def test_plain_mitmproxy_leaves_other_hosts_alone():
    addon = PlainResolve()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, bench_resolve=["api.openai.com=127.0.0.1:9443"])
        assert _connect_to(addon, "example.org") == ("example.org", 443)


def test_plain_mitmproxy_refuses_a_mapping_without_a_port():
    addon = PlainResolve()
    refused = pytest.raises(
        exceptions.OptionsError, match=r"'api\.openai\.com=127\.0\.0\.1' is not"
    )
    with taddons.context(addon) as tctx, refused:
        tctx.configure(addon, bench_resolve=["api.openai.com=127.0.0.1"])


def test_cpu_seconds_of_a_process_grow_while_it_computes():
    before = cpu_seconds(os.getpid())
    until = time.process_time() + 0.3
    while time.process_time() < until:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.25
