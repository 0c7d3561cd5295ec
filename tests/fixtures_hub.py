"""Pytest fixtures for Hub tests: the project's Hub-API server, an olah mirror, and tiny real PEFT adapters.

Imported by ``tests/conftest.py`` (``from fixtures_hub import *``). Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_server import HubServer  # noqa: E402

__all__ = [
    "BASE_MODEL_ID",
    "HubServer",
    "OlahMirror",
    "TinyZoo",
    "fake_hf_token",
    "hub_env",
    "hub_server",
    "make_tiny_zoo",
    "olah",
    "publish_adapter",
    "set_hub_offline",
    "tiny_zoo",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
#: The name the tiny test adapters give their base model (in adapter_config.json and README).
BASE_MODEL_ID = "zoo-tests/tiny-bert"


def _make_token() -> str:
    alphabet = string.ascii_letters + string.digits
    return "hf_" + "".join(secrets.choice(alphabet) for _ in range(34))


@pytest.fixture
def fake_hf_token() -> str:
    """A fresh, fake ``hf_...`` token (never valid anywhere)."""
    return _make_token()


def _point_client_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, hf_home: Path, token: str) -> None:
    """Environment and the import-time constants of huggingface_hub, aimed at a local server."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_UPDATE_CHECK", "1")
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)


def set_hub_offline(monkeypatch: pytest.MonkeyPatch, offline: bool = True) -> None:
    """Turn ``HF_HUB_OFFLINE`` on/off for this process (env and huggingface_hub's import-time constant)."""
    from huggingface_hub import constants

    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


@dataclass
class HubEnv:
    """What a Hub test needs besides the server: token, HF home and a zoo home, all under tmp."""

    token: str
    hf_home: Path
    zoo_home: Path


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HubEnv:
    """Fake token, HF_HOME and ZOO_TUPATE_HOME under tmp (no endpoint yet: see ``hub_server``)."""
    env = HubEnv(token=_make_token(), hf_home=tmp_path / "hf-home", zoo_home=tmp_path / "zoo-home")
    env.hf_home.mkdir()
    monkeypatch.setenv("ZOO_TUPATE_HOME", str(env.zoo_home))
    return env


@pytest.fixture
def hub_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub_env: HubEnv) -> Iterator[HubServer]:
    """A fresh local Hub-API server, with the real huggingface_hub client pointed at it.

    The yielded :class:`HubServer` has ``.endpoint``, ``.token`` (the fake ``HF_TOKEN``), ``.hf_home``,
    ``.zoo_home``, direct helpers (``create_repo``, ``commit_files``, ``upload_folder``, ``create_tag``,
    ``head``), fault knobs (``fail``, ``slow``, ``truncate``, ``die_after``, ``corrupt``) and a request log
    (``requests``, ``downloads(repo, filename)``, ``reset_log``).
    """
    server = HubServer(tmp_path / "hub-storage").start()
    server.token = hub_env.token  # type: ignore[attr-defined]
    server.hf_home = hub_env.hf_home  # type: ignore[attr-defined]
    server.zoo_home = hub_env.zoo_home  # type: ignore[attr-defined]
    _point_client_at(monkeypatch, server.endpoint, hub_env.hf_home, hub_env.token)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------------
# Tiny real PEFT adapters (BERT, hidden 32, 2 layers, built from a config: no download)
# --------------------------------------------------------------------------------------------------


@dataclass
class TinyZoo:
    """Adapter folders made with real peft on a tiny random BERT, and that base model's folder."""

    root: Path
    adapters: dict[str, Path] = field(default_factory=dict)
    base_model: Path | None = None

    def __getitem__(self, name: str) -> Path:
        return self.adapters[name]


def _tiny_bert(seed: int = 0):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, num_labels=2)
    cfg._name_or_path = BASE_MODEL_ID
    torch.manual_seed(seed)
    model = BertForSequenceClassification(cfg)
    model.name_or_path = BASE_MODEL_ID
    return model


def make_tiny_zoo(root: Path, tasks: dict[str, int] | None = None) -> TinyZoo:
    """Write one LoRA adapter per task (``name -> seed``) and the base model under ``root``."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.set_num_threads(1)
    tasks = tasks or {"sst2": 1, "imdb": 2, "mnli": 3, "qnli": 4}
    zoo = TinyZoo(root=root)
    for name, seed in tasks.items():
        model = _tiny_bert(0)
        peft_model = get_peft_model(
            model, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], task_type="SEQ_CLS")
        )
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for pname, param in peft_model.named_parameters():
                if "lora_" in pname:  # trained-looking values (lora_B starts at zero: a no-op adapter)
                    param.copy_(torch.randn(param.shape, generator=gen) * 0.05)
        out = root / name
        peft_model.save_pretrained(out, save_embedding_layers=False)  # no base-model lookup on the Hub
        zoo.adapters[name] = out
    base = root / "_base"
    _tiny_bert(0).save_pretrained(base)
    zoo.base_model = base
    return zoo


def publish_adapter(server: HubServer, repo_id: str, folder: Path, base_model: Path | None = None,
                    extra: dict[str, bytes | str | Path] | None = None, message: str = "upload adapter") -> str:
    """Commit an adapter folder to ``repo_id`` on the test server, with a base model's weights beside it
    (``model.safetensors``/``config.json``, which a pull must never fetch); return the commit sha."""
    files: dict[str, bytes | str | Path] = {p.name: p for p in sorted(Path(folder).iterdir()) if p.is_file()}
    if base_model is not None:
        files.update({p.name: p for p in sorted(Path(base_model).iterdir()) if p.is_file()})
    files.update(extra or {})
    return server.commit_files(repo_id, files, message=message)


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory: pytest.TempPathFactory) -> TinyZoo:
    """Four real PEFT LoRA adapters (sst2, imdb, mnli, qnli) on a tiny BERT, plus that base model."""
    return make_tiny_zoo(tmp_path_factory.mktemp("tiny-zoo"))


# --------------------------------------------------------------------------------------------------
# olah: an independent Hub mirror serving local git repos (download paths only)
# --------------------------------------------------------------------------------------------------

OLAH_CLI = REPO_ROOT / ".olah" / "bin" / "olah-cli"
SEED_SCRIPT = SHARED / "hub" / "seed_olah_cache.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OlahMirror:
    """A running olah server over git repos under ``mirrors``; ``add_repo`` commits files to a repo."""

    endpoint: str
    mirrors: Path
    repos_path: Path
    process: subprocess.Popen

    def add_repo(self, repo_id: str, files: dict[str, bytes | str | Path], message: str = "add files") -> str:
        """Commit ``files`` to ``models/<repo_id>`` (created on first use); return the commit sha."""
        repo = self.mirrors / "models" / repo_id
        git = ["git", "-C", str(repo), "-c", "user.name=zoo", "-c", "user.email=zoo@example.invalid"]
        if not (repo / ".git").exists():
            repo.mkdir(parents=True)
            subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        for path, content in files.items():
            target = repo / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content.encode() if isinstance(content, str) else content)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", message], check=True)
        sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
        self.seed()
        return sha

    def tag(self, repo_id: str, tag: str) -> None:
        subprocess.run(["git", "-C", str(self.mirrors / "models" / repo_id), "tag", tag], check=True)
        self.seed()

    def seed(self) -> None:
        """Write olah's offline revision records (needed after every HEAD move)."""
        subprocess.run([sys.executable, str(SEED_SCRIPT), str(self.mirrors), str(self.repos_path)],
                       check=True, capture_output=True)


@pytest.fixture
def olah(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub_env: HubEnv) -> Iterator[OlahMirror]:
    """An olah mirror on 127.0.0.1 (from ``.olah/``); skips when olah, git or the seed script is missing."""
    if not OLAH_CLI.exists():
        pytest.skip("olah is not installed (python -m venv .olah && .olah/bin/pip install olah)")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if not SEED_SCRIPT.exists():
        pytest.skip(f"{SEED_SCRIPT} not found (../shared is absent)")
    port = _free_port()
    root = tmp_path / "olah"
    mirrors, repos_path = root / "mirrors", root / "repos"
    for d in (mirrors / "models", repos_path, root / "logs"):
        d.mkdir(parents=True)
    config = root / "configs.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\nrepos-path = "{repos_path}"\n'
        'hf-scheme = "http"\nhf-netloc = "127.0.0.1:9"\nhf-lfs-netloc = "127.0.0.1:9"\n'
        f'mirror-scheme = "http"\nmirror-netloc = "127.0.0.1:{port}"\nmirror-lfs-netloc = "127.0.0.1:{port}"\n'
        f'mirrors-path = ["{mirrors}"]\n\n[accessibility]\noffline = true\n'
    )
    log = (root / "logs" / "stdout.log").open("wb")
    proc = subprocess.Popen([str(OLAH_CLI), "-c", str(config), "--log-path", str(root / "logs")],
                            stdout=log, stderr=subprocess.STDOUT, cwd=root)
    endpoint = f"http://127.0.0.1:{port}"
    mirror = OlahMirror(endpoint, mirrors, repos_path, proc)
    try:
        _wait_for_port(port, proc, timeout=30)
        _point_client_at(monkeypatch, endpoint, hub_env.hf_home, hub_env.token)
        yield mirror
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"olah exited with code {proc.returncode} at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.skip("olah did not start listening in time")

