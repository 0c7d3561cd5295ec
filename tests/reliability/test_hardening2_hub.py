"""Issue 23 items 1-3, 10-11 and issue 19's silent server: what the Hub may send, and what ``push`` may upload.

- ``push`` never uploads a file from outside the pushed folder (a link out of it is refused, named);
- a revision is never a file path (``o/r@../../X``, ``o/r@/abs``): refused before any request, and
  ``remember_ref`` never writes outside the cache's ``refs/``;
- the Hub cannot fill the disk: a file listed over the cap is not downloaded, a body over it is cut off
  (announced or not), and the partial download is removed;
- a card nested 100,000 deep, a redirect to a host that answers 404, a JSON list where an object belongs:
  one line naming the repo, never an "unexpected" line;
- a silent server (accepts, never answers) fails within 60 s on the default settings, while a server
  answering each request after 15 s still completes (``test_hub_deadline.py``).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fixtures_hub import _point_client_at, publish_adapter
from hardening2_cases import deep_card
from rel_helpers import cli_inprocess, cli_subprocess

from zoo_tupate.answer.hub_target import resolve_target
from zoo_tupate.hub import pull
from zoo_tupate.store.index import Index

pytestmark = pytest.mark.reliability

WEIGHTS = r"/resolve/[^/]+/adapter_model\.safetensors$"
SECRET = "TOP-SECRET-h23-do-not-upload"


def _storage_holds(server, text: str) -> bool:
    """Whether any file the test server stored (blobs, state) holds ``text``."""
    return any(text.encode() in p.read_bytes() for p in Path(server.store.root).rglob("*") if p.is_file())


@pytest.mark.parametrize("name", ["README.md", "head_config.json", "pytorch_model_head.bin", "adapter_config.json"])
def test_push_never_uploads_a_file_from_outside_the_folder(hub_server, tiny_zoo, tmp_path: Path, name: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET + "\n")
    folder = tmp_path / "ck"
    shutil.copytree(tiny_zoo["sst2"], folder)
    (folder / name).unlink(missing_ok=True)
    (folder / name).symlink_to(secret)
    out = cli_inprocess(["--home", str(hub_server.zoo_home), "push", str(folder), "--repo", "o/r"])
    assert not out.problems(must_fail=True, names=str(folder / name)), out.stderr
    assert "outside the checkpoint folder" in out.stderr
    assert not _storage_holds(hub_server, SECRET)
    assert not hub_server.repo_exists("o/r")


def test_push_accepts_links_inside_the_folder(hub_server, tiny_zoo, tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    shutil.copytree(tiny_zoo["sst2"], folder)
    (folder / "notes.md").write_text("# an adapter\n")
    (folder / "README.md").unlink(missing_ok=True)
    (folder / "README.md").symlink_to(folder / "notes.md")
    out = cli_inprocess(["--home", str(hub_server.zoo_home), "push", str(folder), "--repo", "o/inside"])
    assert out.code == 0, out.stderr
    assert "README.md" in hub_server.repo_files("o/inside")


@pytest.mark.parametrize("revision", ["../../../../h23-escape", "/abs/h23-escape", "main/../../x", "a\\b", "x.lock"])
def test_a_revision_is_never_a_file_path(hub_server, tiny_zoo, tmp_path: Path, revision: str) -> None:
    publish_adapter(hub_server, "o/r", tiny_zoo["sst2"])
    home = hub_server.zoo_home
    before = {p for p in tmp_path.rglob("*")}
    for args in (["pull", f"o/r@{revision}"], ["pull", "o/r", "--revision", revision],
                 ["suggest", "--target", f"o/r@{revision}", "--target-kind", "hub"]):
        out = cli_inprocess(["--home", str(home), *args])
        assert not out.problems(must_fail=True), (args, out.stderr)
        assert "not a valid revision" in out.stderr, out.stderr
    assert not [r for r in hub_server.requests if "/api/models/o/r" in r.path]
    created = {p for p in tmp_path.rglob("*")} - before
    assert not [p for p in created if "h23-escape" in p.name or p.name == "x"], created
    assert not Path("/abs/h23-escape").exists()


def test_remember_ref_never_writes_outside_refs(tmp_path: Path) -> None:
    from zoo_tupate.core.errors import HubError
    from zoo_tupate.hub.resolve import remember_ref

    cache = tmp_path / "cache"
    remember_ref(cache, "o/r", "v1.0", "a" * 40)
    assert (cache / "models--o--r" / "refs" / "v1.0").read_text() == "a" * 40
    for bad in ("../../../victim", "/abs/victim", "refs/../../victim"):
        with pytest.raises(HubError, match="not a valid revision"):
            remember_ref(cache, "o/r", bad, "b" * 40)
    assert not list(tmp_path.rglob("victim"))


def test_a_file_listed_over_the_cap_is_not_downloaded(hub_server, tiny_zoo, monkeypatch) -> None:
    publish_adapter(hub_server, "o/big", tiny_zoo["sst2"])
    monkeypatch.setenv("ZOO_TUPATE_HUB_MAX_FILE_BYTES", "1000")  # the tiny adapter is ~5 KB
    [result] = pull(["o/big"], Index(hub_server.zoo_home), progress=False)
    assert result.outcome == "failed"
    assert "adapter_model.safetensors is listed at" in result.reason and "over the 1,000-byte cap" in result.reason
    assert "ZOO_TUPATE_HUB_MAX_FILE_BYTES" in result.reason and "not downloaded" in result.reason
    assert not hub_server.downloads("o/big", "adapter_model.safetensors")
    with pytest.raises(Exception, match="over the 1,000-byte cap"):
        resolve_target("o/big", Index(hub_server.zoo_home))


@pytest.mark.parametrize("announce", [True, False])
def test_the_hub_cannot_fill_the_disk(hub_server, tiny_zoo, monkeypatch, announce: bool) -> None:
    """The listing says a small file; the answer is 10 GB (announced in Content-Length, or not announced)."""
    publish_adapter(hub_server, "o/fill", tiny_zoo["sst2"])
    monkeypatch.setenv("ZOO_TUPATE_HUB_MAX_FILE_BYTES", str(1 << 20))
    hub_server.add_fault("bloat", WEIGHTS, 10 * 10**9, methods=("GET",), text="" if announce else "no-length")
    home = hub_server.zoo_home
    start = time.monotonic()
    [result] = pull(["o/fill"], Index(home), progress=False)
    elapsed = time.monotonic() - start
    assert result.outcome == "failed", result.reason
    what = "the server announced 10,000,000,000 bytes" if announce else "the server sent more than 1,048,576 bytes"
    assert what in result.reason and "over the 1,048,576-byte cap" in result.reason, result.reason
    assert result.reason.startswith("o/fill"), result.reason
    on_disk = sum(p.stat().st_size for p in Path(home).rglob("*") if p.is_file())
    assert on_disk < 2 << 20, on_disk  # nothing near the cap stays behind (partial downloads removed)
    assert elapsed < 30, elapsed
    print(f"\n[h23] 10 GB answer ({'announced' if announce else 'not announced'}), 1 MiB cap: failed in "
          f"{elapsed:.1f} s, {on_disk:,} bytes under --home: {result.reason}")


def test_a_card_nested_100000_deep_names_the_repo(hub_server, tmp_path: Path) -> None:
    card = deep_card(tmp_path / "card")
    hub_server.commit_files("o/card", {p.name: p for p in card.iterdir()})
    home = hub_server.zoo_home
    out = cli_inprocess(["--home", str(home), "pull", "o/card"])
    assert out.code != 0 and "unexpected" not in out.stderr + out.stdout, out.stderr
    assert "o/card@" in out.stdout + out.stderr and "nested" in out.stdout + out.stderr
    out = cli_inprocess(["--home", str(home), "suggest", "--target", "o/card", "--target-kind", "hub"])
    assert not out.problems(must_fail=True, names="o/card@"), out.stderr
    assert "nested" in out.stderr
    out = cli_inprocess(["--home", str(home), "index", "add", str(card)])
    assert not out.problems(must_fail=True, names=str(card)), out.stderr


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *_args) -> None:
        pass


@pytest.mark.parametrize("methods", [("GET",), ("HEAD", "GET")])
def test_a_redirect_to_a_host_that_answers_404_is_named(hub_server, tiny_zoo, methods) -> None:
    publish_adapter(hub_server, "o/moved", tiny_zoo["sst2"])
    other = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    host = f"localhost:{other.server_address[1]}"
    try:
        hub_server.add_fault("redirect", WEIGHTS, methods=methods, text=f"http://{host}/blob")
        [result] = pull(["o/moved"], Index(hub_server.zoo_home), progress=False)
    finally:
        other.shutdown()
    assert result.outcome == "failed" and result.reason.startswith("o/moved@"), result.reason
    assert "HF_HUB_OFFLINE" not in result.reason and "network down" not in result.reason, result.reason
    if methods == ("GET",):  # the download was redirected: the host that answered 404 is named
        assert f"{host} (where the Hub redirected the request) answered HTTP 404" in result.reason, result.reason
    else:  # the file's metadata came from a redirect without the Hub's headers
        assert "not a Hub answer" in result.reason, result.reason


@pytest.mark.parametrize("body", ["[]", '"text"', "{}", '{"id": "o/r", "sha": 5}'])
def test_a_repo_answer_of_the_wrong_shape_is_one_line(hub_server, body: str) -> None:
    hub_server.add_fault("answer", r"^/api/models/o/odd", text=body)
    home = hub_server.zoo_home
    for args in (["pull", "o/odd"], ["suggest", "--target", "o/odd", "--target-kind", "hub"]):
        out = cli_inprocess(["--home", str(home), *args])
        assert out.code != 0 and not out.crashed, out.stderr
        assert "unexpected" not in out.stderr and "o/odd" in out.stderr + out.stdout, out.stderr


@pytest.fixture
def silent_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.mark.slow
def test_a_silent_server_fails_within_60_s_on_the_default_settings(hub_env, tiny_zoo, silent_port,
                                                                    monkeypatch) -> None:
    """Issue 19: accepts connections, never answers; no --timeout, no ZOO_TUPATE_HUB_* settings."""
    for name in ("ZOO_TUPATE_HUB_TIMEOUT", "ZOO_TUPATE_HUB_ANSWER_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    home = hub_env.zoo_home
    Index(home).add(tiny_zoo["imdb"], name="local/imdb")
    _point_client_at(monkeypatch, silent_port, hub_env.hf_home, hub_env.token)
    results: dict[str, tuple] = {}

    def run(label: str, args: list[str]) -> None:
        start = time.monotonic()
        out = cli_subprocess(["--home", str(home), *args], timeout=120)
        results[label] = (out, time.monotonic() - start)

    threads = [threading.Thread(target=run, args=("pull", ["pull", "org/sst2", "--json"])),
               threading.Thread(target=run, args=("suggest", ["suggest", "--target", "org/sst2",
                                                              "--target-kind", "hub"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for label, (out, elapsed) in results.items():
        assert not out.problems(must_fail=True, names="org/sst2"), (label, out.stderr)
        assert "no answer to GET /api/models/org/sst2" in out.stderr and "silent server" in out.stderr, out.stderr
        assert elapsed < 60, (label, elapsed)
        print(f"\n[h23] silent server, default settings, {label}: failed after {elapsed:.1f} s: {out.stderr.strip()}")


def test_a_slow_but_answering_server_completes_and_a_silent_one_fails_at_the_answer_timeout(
    hub_server, tiny_zoo, silent_port, hub_env, monkeypatch
) -> None:
    """The same rule on a short scale: answers after 2 s complete under a 3 s answer timeout (and the
    default 300 s deadline); a silent server fails after 3 s."""
    publish_adapter(hub_server, "o/slow", tiny_zoo["sst2"])
    monkeypatch.setenv("ZOO_TUPATE_HUB_ANSWER_TIMEOUT", "3")
    hub_server.add_fault("delay", r"/(resolve|api)/", 2.0)
    start = time.monotonic()
    [result] = pull(["o/slow"], Index(hub_server.zoo_home), progress=False)
    assert result.outcome == "indexed", result.reason
    slow = time.monotonic() - start
    _point_client_at(monkeypatch, silent_port, hub_env.hf_home, hub_env.token)
    start = time.monotonic()
    [result] = pull(["o/silent"], Index(hub_server.zoo_home), progress=False)
    silent = time.monotonic() - start
    assert result.outcome == "failed" and "silent server" in result.reason, result.reason
    assert 3 <= silent < 4.5, silent
    print(f"\n[h23] 3 s answer timeout: 2 s answers indexed in {slow:.1f} s; silent server failed after {silent:.1f} s")
