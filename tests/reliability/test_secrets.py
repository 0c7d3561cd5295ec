"""A configured token (a fake ``hf_...`` in HF_TOKEN) never shows up anywhere: not in the output of a full
pull → tune → push → card publish → suggest run (real processes, success and failure paths, a server that
echoes the Authorization header into its errors), not in a log, a card, an error or any file written.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_hub import publish_adapter
from rel_helpers import REPO_ROOT
from tuning_helpers import tiny_bert as tuning_base
from tuning_helpers import toy_dataset

pytestmark = pytest.mark.reliability



def scan_files(roots, secret_forms) -> tuple[int, list[str]]:
    """(files read, "<file> contains form <i>" for each secret form found) under ``roots`` (links skipped)."""
    scanned, leaks = 0, []
    for root in roots:
        for file in Path(root).rglob("*"):
            if file.is_file() and not file.is_symlink():
                data = file.read_bytes()
                scanned += 1
                leaks += [f"{file} contains form {i}" for i, f in enumerate(secret_forms) if f in data]
    return scanned, leaks

def forms(token: str) -> list[bytes]:
    """The token as it could leak: plain, without its prefix, base64 (a Basic auth header), URL-quoted."""
    from urllib.parse import quote

    return [token.encode(), token[3:].encode(), base64.b64encode(token.encode())[:-2], quote(token).encode()]


def run(home: Path, *args: str, ok: bool = True) -> str:
    proc = subprocess.run([sys.executable, "-m", "zoo_tupate", "--home", str(home), *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT, timeout=600)
    if ok:
        assert proc.returncode == 0, (args, proc.stderr[-3000:])
    else:
        assert proc.returncode != 0, (args, proc.stdout[-2000:])
    return f"$ {' '.join(args)}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.slow
def test_token_never_leaks_from_a_full_run(hub_server, tiny_zoo, tmp_path: Path) -> None:
    token = hub_server.token
    assert os.environ["HF_TOKEN"] == token
    for task in ("sst2", "imdb", "mnli"):
        publish_adapter(hub_server, f"org/{task}", tiny_zoo[task])
    home = tmp_path / "zoo-home"
    base = tuning_base(tmp_path / "base")
    data = toy_dataset(tmp_path / "data", n_train=32, n_val=16)
    transcript = [
        run(home, "pull", "org/sst2", "org/imdb", "--json"),
        run(home, "tune", "--dataset", str(data), "--method", "lora", "--base-model", str(base),
            "--base-model-id", "tiny/secret-test-bert", "--epochs", "1", "--early-epochs", "1", "--batch-size", "16",
            "--max-length", "16", "--threads", "1", "--output", str(tmp_path / "run"), "--push", "me/tuned"),
        run(home, "push", str(tiny_zoo["qnli"]), "--repo", "me/pushed", "--json"),
        run(home, "card", "publish", "org/sst2", "--repo", "me/sst2-card", "--json"),
        run(home, "suggest", "--target", "org/mnli", "--json", "--by-space"),
        run(home, "index", "ls", "--json"),
    ]
    # failure paths: a server that copies the Authorization header into its error answers
    hub_server.echo_auth(r"^/api/models/org/mnli", 400)
    hub_server.echo_auth(r"/commit/", 403)
    hub_server.echo_auth(r"^/api/repos/create", 401)
    transcript += [
        run(home, "pull", "org/mnli", ok=False),
        run(home, "push", str(tiny_zoo["imdb"]), "--repo", "me/pushed", ok=False),
        run(home, "push", str(tiny_zoo["qnli"]), "--repo", "me/other", ok=False),
        run(home, "card", "publish", "org/imdb", "--repo", "me/imdb-card", ok=False),
        run(home, "suggest", "--target", "org/mnli", ok=False),
    ]
    # the test can fail: the token was sent, and the server did echo it back
    assert any(r.authorized for r in hub_server.requests)
    echoed = [r for r in hub_server.requests if r.status in (400, 401, 403)]
    assert echoed, "no echo fault fired"
    text = "\n".join(transcript)
    assert "rejected request with Authorization" in text  # the leak was there to catch
    leaks = [f"output of a command contains form {i}" for i, f in enumerate(forms(token)) if f.decode() in text]
    scanned, found = scan_files((tmp_path, Path(hub_server.store.root)), forms(token))
    leaks += found
    assert scanned > 20
    assert not leaks, "\n".join(leaks)
    pushed = hub_server.repo_files("me/tuned")
    assert any(name.endswith(".safetensors") for name in pushed)  # tune --push really published
    print(f"\n[secrets] {len(transcript)} commands, {scanned} files scanned, 0 leaks")


def password_forms(user: str, password: str) -> list[bytes]:
    """A password as it could leak: plain, URL-quoted, a distinctive half, inside a Basic auth header."""
    from urllib.parse import quote

    pair = f"{user}:{password}".encode()
    return [password.encode(), quote(password, safe="").encode(), password[len(password) // 2:].encode(),
            base64.b64encode(pair)[:-2]]


def test_credentials_in_the_endpoint_never_leak(hub_server, tiny_zoo, tmp_path: Path) -> None:
    """``HF_ENDPOINT=http://user:PASSWORD@host:port``: nothing of the password in any output, any file under
    the home (journal, shards, cache), ``index ls --json``, or a card uploaded afterwards."""
    from urllib.parse import quote

    user, password = "zoo-user", "Qx7@Endpoint-PASSWORD-9z"
    for task in ("sst2", "imdb", "mnli"):
        publish_adapter(hub_server, f"org/{task}", tiny_zoo[task])
    plain = hub_server.endpoint
    secret = plain.replace("http://", f"http://{user}:{quote(password, safe='')}@")
    home = tmp_path / "zoo-home"

    def with_endpoint(endpoint: str, *args: str, ok: bool = True, **env: str) -> str:
        old = os.environ.get("HF_ENDPOINT")
        os.environ.update({"HF_ENDPOINT": endpoint, **env})
        try:
            return run(home, *args, ok=ok)
        finally:
            os.environ["HF_ENDPOINT"] = old or ""
            for name in env:
                os.environ.pop(name, None)

    transcript = [
        with_endpoint(secret, "pull", "org/sst2", "org/imdb", "org/ghost", "--json", ok=False, HF_DEBUG="1"),
        with_endpoint(secret, "index", "ls", "--json"),
        with_endpoint(secret, "suggest", "--target", "org/mnli", "--json", "--by-space"),
        with_endpoint(secret, "card", "publish", "org/sst2", "--repo", "me/sst2-denied", ok=False),
        with_endpoint(plain, "card", "publish", "org/sst2", "--repo", "me/sst2-card", "--json"),
    ]
    hub_server.echo_auth(r"^/api/models/org/mnli", 400)  # a server that copies the Basic auth header back
    transcript.append(with_endpoint(secret, "pull", "org/mnli", ok=False))
    text = "\n".join(transcript)
    # the test can fail: the credentials were sent, echoed, and the pulls did use the endpoint
    assert "rejected request with Authorization: Basic ***" in text, text[-3000:]
    assert f'"endpoint": "{plain}"' in transcript[1]
    assert "repo not found on " + plain in transcript[0]
    leaks = [f"output contains form {i}" for i, f in enumerate(password_forms(user, password)) if f.decode() in text]
    scanned, found = scan_files((tmp_path, Path(hub_server.store.root)), password_forms(user, password))
    leaks += found
    card = hub_server.repo_files("me/sst2-card")
    assert card and any(b"org/sst2" in content for content in card.values())  # the card was uploaded
    assert scanned > 20
    assert not leaks, "\n".join(leaks)
    print(f"\n[secrets] endpoint credentials: {len(transcript)} commands, {scanned} files scanned, 0 leaks")
