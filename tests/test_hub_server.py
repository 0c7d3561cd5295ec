"""The test Hub server answers the real huggingface_hub client the way the Hub does (what Hub tests rely on)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from fixtures_hub import set_hub_offline
from hub_server import HubServer, git_blob_sha1
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)


@pytest.fixture
def api(hub_server: HubServer) -> HfApi:
    return HfApi(endpoint=hub_server.endpoint)


def test_upload_then_info_tree_and_download(hub_server: HubServer, api: HfApi, tmp_path: Path) -> None:
    api.create_repo("org/a")
    ops = [CommitOperationAdd("adapter_config.json", b'{"peft_type": "LORA"}'),
           CommitOperationAdd("sub/weights.bin", b"\x00\x01" * 100),
           CommitOperationAdd("README.md", b"---\nlibrary_name: peft\nbase_model: tiny/bert\n---\nhello\n")]
    sha = api.create_commit("org/a", operations=ops, commit_message="add").oid
    info = api.model_info("org/a", files_metadata=True)
    assert info.sha == sha
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes["sub/weights.bin"] == 200
    assert {s.blob_id for s in info.siblings if s.rfilename == "sub/weights.bin"} == {git_blob_sha1(b"\x00\x01" * 100)}
    assert "base_model:adapter:tiny/bert" in info.tags and "peft" in info.tags
    assert sorted(f.path for f in api.list_repo_tree("org/a", recursive=True)) == [
        ".gitattributes", "README.md", "adapter_config.json", "sub", "sub/weights.bin"]
    assert [f.path for f in api.get_paths_info("org/a", ["README.md", "missing"])] == ["README.md"]
    path = hf_hub_download("org/a", "sub/weights.bin", revision=sha[:8], cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"\x00\x01" * 100
    folder = snapshot_download("org/a", allow_patterns=["*.json"], cache_dir=tmp_path / "other")
    assert sorted(os.listdir(folder)) == ["adapter_config.json"]


def test_revisions_tags_prs_and_errors(hub_server: HubServer, api: HfApi) -> None:
    first = hub_server.commit_files("org/b", {"f.txt": "one"})
    hub_server.create_tag("org/b", "v1")
    second = hub_server.commit_files("org/b", {"f.txt": "two"})
    assert api.model_info("org/b", revision="v1").sha == first
    assert api.model_info("org/b").sha == second
    assert [t.target_commit for t in api.list_repo_refs("org/b").tags] == [first]
    pr = api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="org/b", create_pr=True,
                         commit_message="proposal")
    assert pr.pr_revision == "refs/pr/1"
    assert api.model_info("org/b").sha == second  # a PR leaves main alone
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/none")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/b", revision="nobranch")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("org/b", "absent.txt")


def test_list_models_filters_by_tags_search_and_author(hub_server: HubServer, api: HfApi) -> None:
    card = "---\nlibrary_name: peft\nbase_model: {}\n---\n"
    hub_server.commit_files("alice/sst2-lora", {"README.md": card.format("bert-base"), "adapter_config.json": "{}"})
    hub_server.commit_files("bob/sst2-lora", {"README.md": card.format("roberta-base"), "adapter_config.json": "{}"})
    hub_server.commit_files("alice/bert-base", {"config.json": "{}"})
    found = {m.id for m in api.list_models(filter=["peft", "base_model:adapter:bert-base"])}
    assert found == {"alice/sst2-lora"}
    assert {m.id for m in api.list_models(search="sst2")} == {"alice/sst2-lora", "bob/sst2-lora"}
    assert {m.id for m in api.list_models(author="alice")} == {"alice/sst2-lora", "alice/bert-base"}


def test_writes_need_a_token(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(Exception) as err:
        HfApi(endpoint=hub_server.endpoint, token=False).create_repo("org/c")
    assert "401" in str(err.value)


def test_fault_knobs(hub_server: HubServer, tmp_path: Path) -> None:
    hub_server.commit_files("org/f", {"w.bin": bytes(range(256)) * 40})
    url = f"{hub_server.endpoint}/org/f/resolve/main/w.bin"
    hub_server.fail(r"/w\.bin$", 503, times=1)
    assert httpx.get(url).status_code == 503
    assert httpx.get(url).status_code == 200

    hub_server.corrupt(r"/w\.bin$", times=1)
    bad = httpx.get(url)
    assert len(bad.content) == 10240 and bad.content != bytes(range(256)) * 40
    assert bad.headers["ETag"] == f'"{git_blob_sha1(bytes(range(256)) * 40)}"'

    hub_server.truncate(r"/w\.bin$", 100, times=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(url)

    hub_server.slow(r"/w\.bin$", 0.3, times=1)
    started = time.monotonic()
    httpx.get(url)
    assert time.monotonic() - started >= 0.3

    hub_server.die_after(r"/w\.bin$", 10)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(url)
    deadline = time.monotonic() + 5
    while hub_server.running and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
    hub_server.start()  # same port, same storage
    assert httpx.get(url).content == bytes(range(256)) * 40


def test_range_requests_and_head(hub_server: HubServer) -> None:
    sha = hub_server.commit_files("org/r", {"w.bin": b"0123456789"})
    url = f"{hub_server.endpoint}/org/r/resolve/main/w.bin"
    head = httpx.head(url)
    assert head.headers["X-Repo-Commit"] == sha and head.headers["Content-Length"] == "10"
    part = httpx.get(url, headers={"Range": "bytes=4-"})
    assert part.status_code == 206 and part.content == b"456789"
    assert part.headers["Content-Range"] == "bytes 4-9/10"


def test_standalone_server_keeps_its_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    set_hub_offline(monkeypatch, False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).with_name("hub_server.py")
    proc = subprocess.Popen([sys.executable, str(script), "--port", str(port), "--storage", str(tmp_path / "s")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert "listening" in proc.stdout.readline()
        api = HfApi(endpoint=f"http://127.0.0.1:{port}", token="hf_" + "x" * 30)
        api.create_repo("org/s")
        api.upload_file(path_or_fileobj=b"data", path_in_repo="d.txt", repo_id="org/s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    again = HubServer(tmp_path / "s")
    assert again.repo_files("org/s")["d.txt"] == b"data"
