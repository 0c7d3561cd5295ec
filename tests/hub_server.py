"""A small Hugging Face Hub API server for tests (stdlib only, no git).

It speaks the subset of the Hub HTTP API that ``huggingface_hub`` 2.x calls for repo info, listing and
search, trees, paths-info, refs, file resolve (GET/HEAD, ranges), repo creation, preupload and commits
(NDJSON with inline base64 files: every file is answered ``uploadMode: "regular"``, so no LFS/xet).

Storage is a folder: ``blobs/<sha256>`` holds file contents and ``state.json`` the repos; each commit is a
snapshot ``{path: sha256}``. Fault knobs (a status code for a path, slow answers, a connection closed after N
bytes, the whole server dying mid-download, bytes that do not match their hash) let tests exercise failures.

Standalone: ``python tests/hub_server.py --port 18080 --storage /tmp/hub``. Test control over HTTP:
``POST /_test/faults`` (JSON ``{"rules": [...]}``), ``GET /_test/requests``, ``POST /_test/reset``.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as _dt
import hashlib
import json
import os
import re
import select
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as ``oid``/ETag for regular files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubHTTPError(Exception):
    """An error answer: status, X-Error-Code and message."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


@dataclass
class FaultRule:
    """One fault: applies to requests whose path matches ``pattern`` (regex, searched).

    kinds: ``status`` (answer ``value`` as HTTP status), ``delay`` (sleep ``value`` seconds first),
    ``truncate`` (send ``value`` bytes of a file body then close), ``die`` (like truncate, then the whole
    server stops listening), ``corrupt`` (flip bytes of a file body; headers still claim the true hash).
    ``echo`` (answer ``value`` as HTTP status with the request's Authorization header in the error message,
    as a leaky proxy might: checks that clients keep tokens out of what they print).
    ``stall`` (send ``value`` bytes of a file body, then keep the connection open without sending more, until
    the client hangs up or 60 s pass).
    ``bloat`` (answer a file GET with ``value`` bytes of zeros, announced in ``Content-Length``; with ``text``
    ``"no-length"`` the length is not announced and the body ends when the connection closes), ``redirect``
    (answer 302 to the URL in ``text``), ``answer`` (answer 200 with ``text`` as the JSON body).
    ``times``: how many requests it applies to (None = every one). ``methods``: limit to these methods.
    """

    kind: str
    pattern: str
    value: float = 0
    times: int | None = None
    methods: tuple[str, ...] | None = None
    text: str = ""

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return re.search(self.pattern, path) is not None


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    status: int = 0
    body_bytes: int = 0
    authorized: bool = False
    started: float = 0.0
    ended: float = 0.0


@dataclass
class Store:
    """Repos and blobs on disk; every mutation is saved to ``state.json``."""

    root: Path
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _sha1: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "blobs").mkdir(exist_ok=True)
        state = self.root / "state.json"
        if state.exists():
            self.repos = json.loads(state.read_text())["repos"]

    # -- persistence -------------------------------------------------------------------------------
    def save(self) -> None:
        tmp = self.root / f"state.json.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps({"repos": self.repos}, indent=1, sort_keys=True))
        os.replace(tmp, self.root / "state.json")

    def put_blob(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / "blobs" / digest
        if not path.exists():
            tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        self._sha1[digest] = git_blob_sha1(data)
        return digest

    def blob(self, digest: str) -> bytes:
        return (self.root / "blobs" / digest).read_bytes()

    def blob_size(self, digest: str) -> int:
        return (self.root / "blobs" / digest).stat().st_size

    def blob_oid(self, digest: str) -> str:
        if digest not in self._sha1:
            self._sha1[digest] = git_blob_sha1(self.blob(digest))
        return self._sha1[digest]

    # -- repos -------------------------------------------------------------------------------------
    @staticmethod
    def key(repo_type: str, repo_id: str) -> str:
        return f"{repo_type}/{repo_id}"

    def get_repo(self, repo_type: str, repo_id: str) -> dict[str, Any]:
        repo = self.repos.get(self.key(repo_type, repo_id))
        if repo is None:
            raise HubHTTPError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool = False) -> dict[str, Any]:
        with self.lock:
            key = self.key(repo_type, repo_id)
            if key in self.repos:
                raise HubHTTPError(409, "You already created this model repo", None)
            repo = {"type": repo_type, "id": repo_id, "private": bool(private), "createdAt": _now(),
                    "commits": {}, "branches": {}, "tags": {}, "prs": 0}
            self.repos[key] = repo
            self._commit(repo, "main", {".gitattributes": self.put_blob(GITATTRIBUTES)}, "initial commit", "")
            self.save()
            return repo

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        with self.lock:
            self.get_repo(repo_type, repo_id)
            del self.repos[self.key(repo_type, repo_id)]
            self.save()

    def resolve(self, repo: dict[str, Any], revision: str) -> str:
        """Branch, tag, PR ref, full or short sha → commit sha."""
        if revision in repo["branches"]:
            return repo["branches"][revision]
        if revision in repo["tags"]:
            return repo["tags"][revision]
        if revision in repo["commits"]:
            return revision
        if re.fullmatch(r"[0-9a-f]{7,39}", revision):
            found = [sha for sha in repo["commits"] if sha.startswith(revision)]
            if len(found) == 1:
                return found[0]
        raise HubHTTPError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def files(self, repo: dict[str, Any], sha: str) -> dict[str, str]:
        return repo["commits"][sha]["files"]

    def _commit(self, repo: dict[str, Any], branch: str, files: dict[str, str], title: str, description: str) -> str:
        parent = repo["branches"].get(branch)
        payload = json.dumps([parent, sorted(files.items()), title, description, time.time_ns(),
                              uuid.uuid4().hex])
        sha = hashlib.sha1(payload.encode()).hexdigest()
        repo["commits"][sha] = {"parent": parent, "files": dict(sorted(files.items())), "title": title,
                                "message": description, "date": _now()}
        repo["branches"][branch] = sha
        return sha

    def commit(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        add: dict[str, bytes],
        delete: list[str] = (),  # type: ignore[assignment]
        delete_folders: list[str] = (),  # type: ignore[assignment]
        title: str = "commit",
        description: str = "",
        parent_commit: str | None = None,
        create_pr: bool = False,
    ) -> tuple[str, int | None]:
        """Apply additions/deletions on top of ``revision`` (a branch); return (sha, pr number or None)."""
        with self.lock:
            repo = self.get_repo(repo_type, repo_id)
            if revision not in repo["branches"]:
                raise HubHTTPError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            head = repo["branches"][revision]
            if parent_commit is not None and parent_commit != head:
                raise HubHTTPError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(self.files(repo, head))
            for path in delete:
                if path not in files:
                    raise HubHTTPError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del files[path]
            for folder in delete_folders:
                prefix = folder.rstrip("/") + "/"
                for path in [p for p in files if p.startswith(prefix)]:
                    del files[path]
            for path, data in add.items():
                files[path] = self.put_blob(data)
            pr = None
            branch = revision
            if create_pr:
                repo["prs"] += 1
                pr = repo["prs"]
                branch = f"refs/pr/{pr}"
                repo["branches"][branch] = head
            sha = self._commit(repo, branch, files, title, description)
            self.save()
            return sha, pr

    def set_tag(self, repo_type: str, repo_id: str, tag: str, revision: str) -> None:
        with self.lock:
            repo = self.get_repo(repo_type, repo_id)
            repo["tags"][tag] = self.resolve(repo, revision)
            self.save()

    def set_branch(self, repo_type: str, repo_id: str, branch: str, revision: str) -> None:
        with self.lock:
            repo = self.get_repo(repo_type, repo_id)
            repo["branches"][branch] = self.resolve(repo, revision)
            self.save()


def card_metadata(text: str) -> dict[str, Any]:
    """The YAML front matter of a README (empty dict when absent or invalid)."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    if not match:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


class HubServer:
    """The server object tests hold: endpoint, direct helpers, fault knobs and a request log."""

    def __init__(self, storage: str | Path, host: str = "127.0.0.1", port: int = 0, quiet: bool = True):
        self.store = Store(Path(storage))
        self.host, self.port, self.quiet = host, port, quiet
        self.faults: list[FaultRule] = []
        self.requests: list[RequestRecord] = []
        self.require_auth_for_writes = True
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._log_lock = threading.Lock()
        self._life_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> HubServer:
        """Listen (again) on ``port``; waits for a stop in progress to finish first."""
        with self._life_lock:
            if self._httpd is not None:
                return self
            httpd = _Server((self.host, self.port), _Handler)
            httpd.hub = self
            self.port = httpd.server_address[1]
            self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            daemon=True)
            self._thread.start()
            self._httpd = httpd
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (clients see a dead server)."""
        with self._life_lock:
            httpd = self._httpd
            if httpd is None:
                return
            httpd.shutdown()
            httpd.server_close()
            httpd.close_all_connections()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = None

    def restart(self) -> HubServer:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def _die_soon(self) -> None:
        threading.Thread(target=self.stop, daemon=True).start()

    # -- direct helpers (no HTTP) ------------------------------------------------------------------
    def create_repo(self, repo_id: str, private: bool = False, repo_type: str = "model") -> None:
        self.store.create_repo(repo_type, repo_id, private)

    def commit_files(
        self,
        repo_id: str,
        files: dict[str, bytes | str | Path],
        message: str = "add files",
        revision: str = "main",
        delete: tuple[str, ...] = (),
        repo_type: str = "model",
        create: bool = True,
    ) -> str:
        """Commit ``files`` (bytes, text, or a local file path) to a branch; creates the repo if needed."""
        if create and self.store.key(repo_type, repo_id) not in self.store.repos:
            self.create_repo(repo_id, repo_type=repo_type)
        add: dict[str, bytes] = {}
        for path, content in files.items():
            if isinstance(content, Path):
                content = content.read_bytes()
            elif isinstance(content, str):
                content = content.encode()
            add[path] = content
        sha, _ = self.store.commit(repo_type, repo_id, revision, add, list(delete), title=message)
        return sha

    def upload_folder(self, repo_id: str, folder: str | Path, message: str = "upload folder", **kw: Any) -> str:
        """Commit every file of a local folder (recursively)."""
        folder = Path(folder)
        files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.commit_files(repo_id, files, message=message, **kw)  # type: ignore[arg-type]

    def create_tag(self, repo_id: str, tag: str, revision: str = "main", repo_type: str = "model") -> None:
        self.store.set_tag(repo_type, repo_id, tag, revision)

    def create_branch(self, repo_id: str, branch: str, revision: str = "main", repo_type: str = "model") -> None:
        self.store.set_branch(repo_type, repo_id, branch, revision)

    def head(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        repo = self.store.get_repo(repo_type, repo_id)
        return self.store.resolve(repo, revision)

    def repo_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        repo = self.store.get_repo(repo_type, repo_id)
        files = self.store.files(repo, self.store.resolve(repo, revision))
        return {path: self.store.blob(digest) for path, digest in files.items()}

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        return self.store.key(repo_type, repo_id) in self.store.repos

    # -- fault knobs -------------------------------------------------------------------------------
    def add_fault(self, kind: str, pattern: str, value: float = 0, times: int | None = None,
                  methods: tuple[str, ...] | None = None, text: str = "") -> FaultRule:
        rule = FaultRule(kind, pattern, value, times, methods, text)
        self.faults.append(rule)
        return rule

    def fail(self, pattern: str, status: int = 500, times: int | None = None,
             methods: tuple[str, ...] | None = None) -> FaultRule:
        """Answer ``status`` to requests whose path matches ``pattern``."""
        return self.add_fault("status", pattern, status, times, methods)

    def echo_auth(self, pattern: str, status: int = 400, times: int | None = None) -> FaultRule:
        """Answer ``status`` with the request's Authorization header inside the error message."""
        return self.add_fault("echo", pattern, status, times)

    def slow(self, pattern: str, seconds: float, times: int | None = None) -> FaultRule:
        """Sleep ``seconds`` before answering matching requests."""
        return self.add_fault("delay", pattern, seconds, times)

    def truncate(self, pattern: str, nbytes: int, times: int | None = None) -> FaultRule:
        """Close the connection after ``nbytes`` of a matching file download (headers claim the full size)."""
        return self.add_fault("truncate", pattern, nbytes, times, ("GET",))

    def die_after(self, pattern: str, nbytes: int) -> FaultRule:
        """Send ``nbytes`` of a matching file download, then stop the whole server."""
        return self.add_fault("die", pattern, nbytes, 1, ("GET",))

    def stall(self, pattern: str, nbytes: int, times: int | None = None) -> FaultRule:
        """Send ``nbytes`` of a matching file download, then nothing more on an open connection."""
        return self.add_fault("stall", pattern, nbytes, times, ("GET",))

    def corrupt(self, pattern: str, times: int | None = None) -> FaultRule:
        """Serve matching files with flipped bytes while ETag/size still describe the true content."""
        return self.add_fault("corrupt", pattern, 0, times, ("GET",))

    def clear_faults(self) -> None:
        self.faults.clear()

    def take_fault(self, kind: str, method: str, path: str) -> FaultRule | None:
        with self._log_lock:
            for rule in self.faults:
                if rule.kind == kind and rule.matches(method, path):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    # -- request log -------------------------------------------------------------------------------
    def log(self, record: RequestRecord) -> None:
        with self._log_lock:
            self.requests.append(record)

    def reset_log(self) -> None:
        with self._log_lock:
            self.requests.clear()

    def downloads(self, repo_id: str | None = None, filename: str | None = None) -> list[RequestRecord]:
        """GET requests for file contents (``/resolve/``), optionally for one repo and/or file name."""
        out = []
        for r in list(self.requests):
            if r.method != "GET" or "/resolve/" not in r.path:
                continue
            repo_part, _, rest = r.path.lstrip("/").partition("/resolve/")
            if repo_id is not None and repo_part.removeprefix("datasets/") != repo_id:
                continue
            if filename is not None and rest.partition("/")[2] != filename:
                continue
            out.append(r)
        return out

    def max_concurrency(self, pattern: str) -> int:
        """The most requests whose path matches ``pattern`` that were being answered at the same time."""
        spans = [(r.started, r.ended) for r in list(self.requests) if re.search(pattern, r.path)]
        events = sorted([(t0, 1) for t0, _ in spans] + [(t1, -1) for _, t1 in spans], key=lambda e: (e[0], e[1]))
        best = current = 0
        for _, step in events:
            current += step
            best = max(best, current)
        return best

    # -- API payloads ------------------------------------------------------------------------------
    def repo_payload(self, repo: dict[str, Any], sha: str, authorized: bool) -> dict[str, Any]:
        files = self.store.files(repo, sha)
        readme = files.get("README.md")
        meta = card_metadata(self.store.blob(readme).decode("utf-8", "replace")) if readme else {}
        library = meta.get("library_name") or ("peft" if "adapter_config.json" in files else None)
        tags = _as_list(meta.get("tags"))
        if library:
            tags.append(str(library))
        for base in _as_list(meta.get("base_model")):
            tags.append(f"base_model:{base}")
            if library == "peft" or "adapter_config.json" in files:
                tags.append(f"base_model:adapter:{base}")
        tags += [f"dataset:{d}" for d in _as_list(meta.get("datasets"))]
        tags += [f"license:{x}" for x in _as_list(meta.get("license"))]
        if meta.get("pipeline_tag"):
            tags.append(str(meta["pipeline_tag"]))
        tags = list(dict.fromkeys(tags))
        repo_id = repo["id"]
        return {
            "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": sha,
            "lastModified": repo["commits"][sha]["date"],
            "createdAt": repo["createdAt"],
            "private": repo["private"],
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": tags,
            "library_name": library,
            "pipeline_tag": meta.get("pipeline_tag"),
            "cardData": meta or None,
            "siblings": [
                {"rfilename": p, "size": self.store.blob_size(d), "blobId": self.store.blob_oid(d)}
                for p, d in files.items()
            ],
            "usedStorage": sum(self.store.blob_size(d) for d in files.values()),
        }

    def tree_entries(self, repo: dict[str, Any], sha: str, path: str, recursive: bool) -> list[dict[str, Any]]:
        files = self.store.files(repo, sha)
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in files):
            raise HubHTTPError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        entries: dict[str, dict[str, Any]] = {}
        for p, digest in files.items():
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix):]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                folder = prefix + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries.setdefault(folder, self._folder_entry(folder))
                if not recursive:
                    break
            if recursive or len(parts) == 1:
                entries[p] = self._file_entry(p, digest)
        return [entries[k] for k in sorted(entries)]

    def paths_info(self, repo: dict[str, Any], sha: str, paths: list[str]) -> list[dict[str, Any]]:
        files = self.store.files(repo, sha)
        out = []
        for path in paths:
            path = path.strip("/")
            if path in files:
                out.append(self._file_entry(path, files[path]))
            elif any(p.startswith(path + "/") for p in files):
                out.append(self._folder_entry(path))
        return out

    def _file_entry(self, path: str, digest: str) -> dict[str, Any]:
        return {"type": "file", "oid": self.store.blob_oid(digest), "size": self.store.blob_size(digest),
                "path": path}

    @staticmethod
    def _folder_entry(path: str) -> dict[str, Any]:
        return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    hub: HubServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # -- plumbing ----------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if not self.server.hub.quiet:
            super().log_message(format, *args)

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        raw_segments = [s for s in split.path.split("/") if s]
        segments = [unquote(s) for s in raw_segments]
        decoded_path = "/" + "/".join(segments)
        auth = self.headers.get("Authorization", "")
        self.record = RequestRecord(method, decoded_path, split.query, authorized=auth.startswith("Bearer hf_"),
                                    started=time.monotonic())
        self.query = parse_qs(split.query, keep_blank_values=True)
        body = self._read_body()
        try:
            delay = self.hub.take_fault("delay", method, decoded_path)
            if delay is not None:
                time.sleep(delay.value)
            status = self.hub.take_fault("status", method, decoded_path)
            if status is not None:
                raise HubHTTPError(int(status.value), f"injected failure ({int(status.value)})")
            echo = self.hub.take_fault("echo", method, decoded_path)
            if echo is not None:
                raise HubHTTPError(int(echo.value), f"rejected request with Authorization: {auth or '(none)'}")
            redirect = self.hub.take_fault("redirect", method, decoded_path)
            if redirect is not None:
                return self._send(302, b"", {"Location": redirect.text})
            answer = self.hub.take_fault("answer", method, decoded_path)
            if answer is not None:
                return self._send(200, answer.text.encode())
            self._route(method, segments, body)
        except HubHTTPError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - a test server answers 500 and carries on
            self._send_error(HubHTTPError(500, f"server error: {type(exc).__name__}: {exc}"))
        finally:
            self.record.ended = time.monotonic()
            self.hub.log(self.record)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            self.record.body_bytes = len(body)
        self.record.status = status

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _send_error(self, err: HubHTTPError) -> None:
        headers = {"X-Error-Message": err.message, **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._json({"error": err.message}, err.status, headers)

    def _require_write_auth(self) -> None:
        if self.hub.require_auth_for_writes and not self.record.authorized:
            raise HubHTTPError(401, "Invalid credentials in Authorization header")

    def _visible(self, repo: dict[str, Any]) -> dict[str, Any]:
        if repo["private"] and not self.record.authorized:
            raise HubHTTPError(404, f"Repository {repo['id']} not found", "RepoNotFound")
        return repo

    # -- routing -----------------------------------------------------------------------------------
    def _route(self, method: str, seg: list[str], body: bytes) -> None:
        if seg[:1] == ["_test"]:
            return self._test_control(method, seg[1:], body)
        if seg[:1] == ["api"]:
            return self._api(method, seg[1:], body)
        repo_type = "model"
        if seg and seg[0] in ("datasets", "spaces"):
            repo_type, seg = REPO_TYPES[seg[0]], seg[1:]
        if len(seg) >= 5 and seg[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(repo_type, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]))
        raise HubHTTPError(404, f"no route for {method} /{'/'.join(seg)}")

    def _api(self, method: str, seg: list[str], body: bytes) -> None:
        if seg == ["whoami-v2"]:
            if not self.record.authorized:
                raise HubHTTPError(401, "Invalid credentials in Authorization header")
            return self._json({"type": "user", "name": "tester", "fullname": "Test User", "orgs": [],
                               "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
        if seg == ["validate-yaml"] and method == "POST":
            return self._validate_yaml(body)
        if seg[:1] == ["repos"] and method == "POST":
            return self._repos(seg[1:], body)
        if not seg or seg[0] not in REPO_TYPES:
            raise HubHTTPError(404, f"no route for /api/{'/'.join(seg)}")
        repo_type = REPO_TYPES[seg[0]]
        rest = seg[1:]
        if not rest and method == "GET":
            return self._list(repo_type)
        repo_id, rest = ("/".join(rest[:2]), rest[2:]) if len(rest) >= 2 else (rest[0], [])
        repo = self._visible(self.hub.store.get_repo(repo_type, repo_id))
        store = self.hub.store
        action = rest[0] if rest else None
        if action is None and method == "GET":
            return self._json(self.hub.repo_payload(repo, store.resolve(repo, "main"), self.record.authorized))
        if action == "revision" and method == "GET" and len(rest) == 2:
            return self._json(self.hub.repo_payload(repo, store.resolve(repo, rest[1]), self.record.authorized))
        if action == "tree" and method == "GET" and len(rest) >= 2:
            recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
            sha = store.resolve(repo, rest[1])
            return self._json(self.hub.tree_entries(repo, sha, "/".join(rest[2:]), recursive))
        if action == "paths-info" and method == "POST" and len(rest) == 2:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            return self._json(self.hub.paths_info(repo, store.resolve(repo, rest[1]), paths))
        if action == "refs" and method == "GET":
            return self._json(self._refs(repo))
        if action == "commits" and method == "GET" and len(rest) == 2:
            return self._json(self._commits(repo, store.resolve(repo, rest[1])))
        if action == "preupload" and method == "POST" and len(rest) == 2:
            self._require_write_auth()
            return self._preupload(repo, rest[1], body)
        if action == "commit" and method == "POST" and len(rest) == 2:
            self._require_write_auth()
            return self._commit(repo_type, repo, rest[1], body)
        if action == "tag" and method == "POST" and len(rest) == 2:
            self._require_write_auth()
            tag = json.loads(body or b"{}").get("tag")
            store.set_tag(repo_type, repo_id, tag, rest[1])
            return self._json({})
        if action == "branch" and method == "POST" and len(rest) == 2:
            self._require_write_auth()
            start = json.loads(body or b"{}").get("startingPoint") or "main"
            store.set_branch(repo_type, repo_id, rest[1], start)
            return self._json({})
        raise HubHTTPError(404, f"no route for {method} /api/{'/'.join(seg)}")

    # -- handlers ----------------------------------------------------------------------------------
    def _test_control(self, method: str, seg: list[str], body: bytes) -> None:
        if seg == ["faults"] and method == "POST":
            rules = json.loads(body or b"{}").get("rules", [])
            self.hub.faults = [FaultRule(**{**r, "methods": tuple(r["methods"]) if r.get("methods") else None})
                               for r in rules]
            return self._json({"rules": len(self.hub.faults)})
        if seg == ["requests"] and method == "GET":
            return self._json([r.__dict__ for r in list(self.hub.requests)])
        if seg == ["reset"] and method == "POST":
            self.hub.clear_faults()
            self.hub.reset_log()
            return self._json({})
        raise HubHTTPError(404, "unknown test control")

    def _validate_yaml(self, body: bytes) -> None:
        content = json.loads(body or b"{}").get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
        if match:
            try:
                data = yaml.safe_load(match.group(1))
            except yaml.YAMLError as exc:
                return self._json({"errors": [{"message": f"invalid YAML: {exc}"}], "warnings": []}, 400)
            if data is not None and not isinstance(data, dict):
                return self._json({"errors": [{"message": "metadata must be a mapping"}], "warnings": []}, 400)
        return self._json({"errors": [], "warnings": []})

    def _repos(self, seg: list[str], body: bytes) -> None:
        self._require_write_auth()
        payload = json.loads(body or b"{}")
        name, org = payload.get("name"), payload.get("organization") or "tester"
        repo_type = payload.get("type") or "model"
        repo_id = f"{org}/{name}"
        if seg == ["create"]:
            if not name or not re.fullmatch(r"[\w.-]+", name) or not re.fullmatch(r"[\w.-]+", org):
                raise HubHTTPError(400, f"invalid repo name {repo_id!r}")
            private = payload.get("private") or payload.get("visibility") == "private"
            url = f"{self.hub.endpoint}/{URL_PREFIX[repo_type]}{repo_id}"
            try:
                self.hub.store.create_repo(repo_type, repo_id, bool(private))
            except HubHTTPError as err:
                if err.status != 409:
                    raise
                return self._json({"error": err.message, "url": url}, 409, {"X-Error-Message": err.message})
            return self._json({"url": url, "name": repo_id, "id": hashlib.md5(repo_id.encode()).hexdigest()[:24]})
        if seg == ["delete"]:
            self.hub.store.delete_repo(repo_type, repo_id)
            return self._json({})
        raise HubHTTPError(404, "unknown repos action")

    def _list(self, repo_type: str) -> None:
        q = self.query
        search = (q.get("search", [""])[0] or "").lower()
        author = q.get("author", [""])[0]
        filters = [f for value in q.get("filter", []) for f in value.split(",") if f]
        limit = int(q.get("limit", ["0"])[0] or 0)
        out = []
        store = self.hub.store
        with store.lock:
            repos = [copy.deepcopy(r) for r in store.repos.values() if r["type"] == repo_type]
        for repo in sorted(repos, key=lambda r: r["id"]):
            if repo["private"] and not self.record.authorized:
                continue
            if search and search not in repo["id"].lower():
                continue
            if author and repo["id"].split("/")[0] != author:
                continue
            info = self.hub.repo_payload(repo, repo["branches"]["main"], self.record.authorized)
            if any(f not in info["tags"] for f in filters):
                continue
            out.append(info)
            if limit and len(out) >= limit:
                break
        self._json(out)

    def _refs(self, repo: dict[str, Any]) -> dict[str, Any]:
        branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": s}
                    for b, s in repo["branches"].items() if not b.startswith("refs/pr/")]
        prs = [{"name": b, "ref": b, "targetCommit": s}
               for b, s in repo["branches"].items() if b.startswith("refs/pr/")]
        tags = [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": s} for t, s in repo["tags"].items()]
        return {"branches": branches, "converts": [], "tags": tags, "pullRequests": prs}

    def _commits(self, repo: dict[str, Any], sha: str | None) -> list[dict[str, Any]]:
        out = []
        while sha is not None:
            c = repo["commits"][sha]
            out.append({"id": sha, "title": c["title"], "message": c["message"], "date": c["date"],
                        "authors": [{"user": "tester"}]})
            sha = c["parent"]
        return out

    def _preupload(self, repo: dict[str, Any], revision: str, body: bytes) -> None:
        payload = json.loads(body or b"{}")
        store = self.hub.store
        try:
            files = store.files(repo, store.resolve(repo, revision))
        except HubHTTPError:
            files = store.files(repo, store.resolve(repo, "main"))
        out = []
        for f in payload.get("files", []):
            digest = files.get(f["path"])
            out.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                        "oid": store.blob_oid(digest) if digest else None})
        self._json({"files": out, "commitOid": store.resolve(repo, "main")})

    def _commit(self, repo_type: str, repo: dict[str, Any], revision: str, body: bytes) -> None:
        header: dict[str, Any] = {}
        add: dict[str, bytes] = {}
        delete: list[str] = []
        delete_folders: list[str] = []
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item.get("key"), item.get("value", {})
            if key == "header":
                header = value
            elif key == "file":
                content = value.get("content", "")
                data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                add[value["path"]] = data
            elif key == "deletedFile":
                delete.append(value["path"])
            elif key == "deletedFolder":
                delete_folders.append(value["path"])
            elif key == "lfsFile":
                raise HubHTTPError(400, "this test server takes regular (inline) files only, not LFS")
            else:
                raise HubHTTPError(400, f"unknown commit operation {key!r}")
        create_pr = self.query.get("create_pr", ["0"])[0] in ("1", "true")
        sha, pr = self.hub.store.commit(
            repo_type, repo["id"], revision, add, delete, delete_folders,
            title=header.get("summary") or "commit", description=header.get("description") or "",
            parent_commit=header.get("parentCommit"), create_pr=create_pr,
        )
        base = f"{self.hub.endpoint}/{URL_PREFIX[repo_type]}{repo['id']}"
        out = {"success": True, "commitOid": sha, "commitUrl": f"{base}/commit/{sha}", "hookOutput": ""}
        if pr is not None:
            out["pullRequestUrl"] = f"{base}/discussions/{pr}"
        self._json(out)

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        store = self.hub.store
        repo = self._visible(store.get_repo(repo_type, repo_id))
        sha = store.resolve(repo, revision)
        files = store.files(repo, sha)
        if path not in files:
            raise HubHTTPError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        digest = files[path]
        data = store.blob(digest)
        total = len(data)
        headers = {
            "ETag": f'"{store.blob_oid(digest)}"',
            "X-Repo-Commit": sha,
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{quote(path.rsplit("/", 1)[-1])}"',
        }
        start, end, status = 0, total - 1, 200
        rng = self.headers.get("Range")
        if rng:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if match:
                if match.group(1):
                    start = int(match.group(1))
                    end = int(match.group(2)) if match.group(2) else total - 1
                else:  # suffix range
                    start = max(total - int(match.group(2) or 0), 0)
                if start >= total and total > 0:
                    raise HubHTTPError(416, "range not satisfiable", headers={"Content-Range": f"bytes */{total}"})
                end = min(end, total - 1)
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        body = data[start:end + 1]
        method = self.command
        if method == "GET":
            if self.hub.take_fault("corrupt", method, self.record.path) is not None:
                body = bytes(b ^ 0x5A for b in body)
            bloat = self.hub.take_fault("bloat", method, self.record.path)
            if bloat is not None:
                return self._send_bloated(int(bloat.value), bloat.text != "no-length", headers)
            stall = self.hub.take_fault("stall", method, self.record.path)
            if stall is not None:
                return self._send_stalled(status, body, int(stall.value), headers)
            cut = self.hub.take_fault("truncate", method, self.record.path)
            die = self.hub.take_fault("die", method, self.record.path)
            if cut is not None or die is not None:
                limit = int((cut or die).value)  # type: ignore[union-attr]
                self._send_partial(status, body, limit, headers)
                if die is not None:
                    self.hub._die_soon()
                return
        self._send(status, body, headers, content_type="application/octet-stream")

    def _send_bytes_head(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Status and headers of a binary body of ``len(body)`` bytes (what follows may be cut short)."""
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _send_bloated(self, nbytes: int, announce: bool, headers: dict[str, str]) -> None:
        """``nbytes`` of zeros (a server filling the client's disk), until the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if announce:
            self.send_header("Content-Length", str(nbytes))
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk, sent = bytes(1 << 16), 0
        try:
            while sent < nbytes and self.hub.running:
                self.wfile.write(chunk[:min(len(chunk), nbytes - sent)])
                sent += min(len(chunk), nbytes - sent)
        except OSError:
            pass
        self.record.status, self.record.body_bytes = 200, sent

    def _send_stalled(self, status: int, body: bytes, limit: int, headers: dict[str, str]) -> None:
        self._send_bytes_head(status, body, headers)
        self.wfile.write(body[:limit])
        self.wfile.flush()
        self.record.status, self.record.body_bytes = status, min(limit, len(body))
        self.close_connection = True
        until = time.monotonic() + 60
        while time.monotonic() < until and self.hub.running:
            readable, _, _ = select.select([self.connection], [], [], 0.2)
            if readable:
                try:
                    if not self.connection.recv(1024):
                        return  # the client hung up
                except OSError:
                    return

    def _send_partial(self, status: int, body: bytes, limit: int, headers: dict[str, str]) -> None:
        self._send_bytes_head(status, body, headers)
        sent = body[:limit]
        self.wfile.write(sent)
        self.wfile.flush()
        self.record.status, self.record.body_bytes = status, len(sent)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Hugging Face Hub API server for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--storage", required=True, help="folder for blobs and state.json")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)
    server = HubServer(args.storage, host=args.host, port=args.port, quiet=not args.verbose).start()
    print(f"hub server listening on {server.endpoint} (storage {args.storage})", flush=True)
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
