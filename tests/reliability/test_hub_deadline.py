"""Hub calls under a deadline: a server that accepts and never answers, a slow one, a stalled transfer, a
truncated one, a dead port. Every failure is one line with a precise reason, within the deadline; a server
that answers before the deadline (even slower than the per-read timeout) completes.

Short deadlines (1-8 s) keep the wall time small.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fixtures_hub import _point_client_at, publish_adapter
from rel_helpers import cli_subprocess

from zoo_tupate import Index
from zoo_tupate.answer.hub_target import resolve_target
from zoo_tupate.hub import pull

pytestmark = pytest.mark.reliability

WEIGHTS = r"/resolve/[^/]+/adapter_model\.safetensors$"
#: A CLI process's own start-up and shut-down (imports, torch) on top of the deadline, on a loaded machine.
SLACK = 1.5


@contextmanager
def silent_server() -> Iterator[str]:
    """An endpoint whose port accepts connections (the kernel completes them) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def dead_endpoint() -> str:
    """An endpoint where nothing listens (connections are refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def published(hub_server, tiny_zoo):
    for task in ("sst2", "imdb"):
        publish_adapter(hub_server, f"org/{task}", tiny_zoo[task])
    return hub_server


def timed(func, *args, **kwargs):
    start = time.monotonic()
    result = func(*args, **kwargs)
    return result, time.monotonic() - start


def test_silent_server_pull_and_suggest_fail_within_the_deadline_with_one_line(
    hub_env, tiny_zoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = hub_env.zoo_home
    Index(home).add(tiny_zoo["imdb"], name="local/imdb")  # something for suggest to rank
    h = ["--home", str(home)]
    _point_client_at(monkeypatch, dead_endpoint(), hub_env.hf_home, hub_env.token)
    refused, baseline = timed(cli_subprocess, [*h, "pull", "org/sst2", "--json"])
    assert not refused.problems(must_fail=True, names="org/sst2"), refused.stderr
    assert "connection refused" in refused.stderr
    assert baseline < 10  # a dead port still fails fast (start-up included)
    deadline = 2.0
    with silent_server() as url:
        _point_client_at(monkeypatch, url, hub_env.hf_home, hub_env.token)
        runs = {
            "pull --timeout": ([*h, "pull", "org/sst2", "--json", "--timeout", str(deadline)], {}),
            "suggest --timeout": ([*h, "suggest", "--target", "org/sst2", "--json", "--by-space", "--timeout", str(deadline)], {}),
            "suggest, env": ([*h, "suggest", "--target", "org/sst2"], {"ZOO_TUPATE_HUB_TIMEOUT": str(deadline)}),
        }
        for label, (args, env) in runs.items():
            out, elapsed = timed(cli_subprocess, args, 60, env)
            assert not out.problems(must_fail=True, names="org/sst2"), (label, out.stderr)
            assert "timed out: connected, but no answer to GET /api/models/org/sst2" in out.stderr, (label, out.stderr)
            assert f"{deadline:.1f} s deadline" in out.stderr
            # waited for the deadline (not a refusal), and not much longer than it
            assert deadline <= elapsed <= baseline + deadline + SLACK, (label, elapsed, baseline)
            print(f"\n[deadline] {label}: failed after {elapsed:.1f} s (dead port: {baseline:.1f} s): "
                  f"{out.stderr.strip()}")


def test_in_process_deadline_is_kept_to_a_fraction_of_a_second(hub_env, tiny_zoo, monkeypatch) -> None:
    with silent_server() as url:
        _point_client_at(monkeypatch, url, hub_env.hf_home, hub_env.token)
        monkeypatch.setenv("ZOO_TUPATE_HUB_TIMEOUT", "1")
        [result], elapsed = timed(pull, ["org/sst2", "org/imdb"][:1], Index(hub_env.zoo_home), progress=False)
        assert result.outcome == "failed" and "timed out: connected, but no answer" in result.reason, result.reason
        assert 1.0 <= elapsed < 1.5, elapsed
        with pytest.raises(Exception, match="timed out: connected, but no answer"):
            resolve_target("org/sst2", Index(hub_env.zoo_home), timeout=1.0)


def test_slow_server_answering_before_the_deadline_completes(published, tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)  # each answer takes longer than a read timeout
    published.add_fault("delay", r"/resolve/", 1.5, methods=("GET",))
    [result], elapsed = timed(pull, ["org/sst2"], Index(tmp_path / "a"), progress=False, timeout=8)
    assert result.outcome == "indexed", result.reason
    assert elapsed < 8
    embeddings, target_elapsed = timed(resolve_target, "org/imdb", Index(tmp_path / "a"), timeout=8)
    assert embeddings and target_elapsed < 8
    slow_gets = [r for r in published.requests if r.method == "GET" and "/resolve/" in r.path]
    assert len(slow_gets) >= 4 and all(r.ended - r.started >= 1.5 for r in slow_gets)
    print(f"\n[deadline] 1.5 s per file, 1 s read timeout, 8 s deadline: pull {elapsed:.1f} s, "
          f"suggest target {target_elapsed:.1f} s")
    # the same server with a deadline shorter than one answer fails, on time
    [result], elapsed = timed(pull, ["org/imdb"], Index(tmp_path / "b"), progress=False, timeout=1)
    assert result.outcome == "failed" and "timed out: connected, but no answer to GET" in result.reason, result.reason
    assert elapsed < 1 + 0.5


def test_stalled_transfer_is_reported_as_stalled(published, tmp_path: Path) -> None:
    published.stall(WEIGHTS, 100)
    index = Index(tmp_path / "zoo")
    [result], elapsed = timed(pull, ["org/sst2"], index, progress=False, timeout=3)
    assert result.outcome == "failed", result.reason
    assert "transfer stalled: no data for" in result.reason and "adapter_model.safetensors" in result.reason
    assert "(100 of " in result.reason, result.reason
    assert elapsed < 3 + 0.5
    assert index.entries() == []
    print(f"\n[deadline] stalled after 100 bytes, 3 s deadline: failed after {elapsed:.1f} s: {result.reason}")


def test_stalled_transfer_resumes_and_completes(published, tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    published.stall(WEIGHTS, 100, times=1)  # the first download stalls; huggingface_hub drops it and tries again
    [result], elapsed = timed(pull, ["org/sst2"], Index(tmp_path / "zoo"), progress=False, timeout=8)
    assert result.outcome == "indexed", result.reason
    gets = [r for r in published.requests if r.method == "GET" and r.path.endswith("adapter_model.safetensors")]
    # huggingface_hub resumes from the last whole 10 MB chunk it wrote (here: byte 0, a plain GET again)
    assert len(gets) == 2 and gets[0].body_bytes == 100 and gets[1].status == 200
    assert elapsed < 8
    print(f"\n[deadline] stall after 100 bytes, 1 s read timeout: retried and indexed in {elapsed:.1f} s")


def test_truncated_downloads_are_reported_as_truncated(published, tmp_path: Path) -> None:
    published.truncate(WEIGHTS, 0)  # every answer closes before its body
    [result] = pull(["org/sst2"], Index(tmp_path / "zoo"), progress=False, timeout=30)
    assert result.outcome == "failed"
    assert "truncated: the server closed the connection after 0 of " in result.reason, result.reason
    assert "during GET adapter_model.safetensors" in result.reason
    assert "cannot reach" not in result.reason
    print(f"\n[deadline] every answer cut before its body: {result.reason}")


def test_refused_connection_is_named(hub_env, monkeypatch) -> None:
    _point_client_at(monkeypatch, dead_endpoint(), hub_env.hf_home, hub_env.token)
    [result], elapsed = timed(pull, ["org/sst2"], Index(hub_env.zoo_home), progress=False)
    assert result.outcome == "failed" and "connection refused by http://127.0.0.1:" in result.reason
    assert elapsed < 1


def test_timeout_settings_are_checked(hub_env, monkeypatch) -> None:
    from rel_helpers import cli_inprocess

    from zoo_tupate.core.constants import parse_timeout

    assert parse_timeout("0") is None and parse_timeout("none") is None and parse_timeout("2.5") == 2.5
    out = cli_inprocess(["--home", str(hub_env.zoo_home), "pull", "org/sst2", "--timeout", "soon"])
    assert not out.problems(must_fail=True, names="--timeout"), out.stderr
    monkeypatch.setenv("ZOO_TUPATE_HUB_TIMEOUT", "-3")
    out = cli_inprocess(["--home", str(hub_env.zoo_home), "pull", "org/sst2"])
    assert not out.problems(must_fail=True, names="ZOO_TUPATE_HUB_TIMEOUT"), out.stderr


def test_server_errors_until_the_deadline_say_so(published, tmp_path: Path) -> None:
    published.fail(WEIGHTS, 503)  # huggingface_hub retries 5xx with a 1-8 s backoff
    [result], elapsed = timed(pull, ["org/sst2"], Index(tmp_path / "zoo"), progress=False, timeout=2)
    assert result.outcome == "failed"
    assert "the Hub kept answering HTTP 503 to HEAD adapter_model.safetensors" in result.reason, result.reason
    assert elapsed < 2 + 4.5  # the deadline, plus at most the backoff pause it fell in
