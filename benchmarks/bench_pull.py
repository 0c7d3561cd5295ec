"""pull: a zoo of adapter repos on the project's local Hub-API test server (tests/hub_server.py).

Each repo holds a BERT-base LoRA adapter (r=8, query+value, 1.2 MB), its config and README, plus what real
repos carry beside an adapter and a pull must not fetch: the trainer's ``optimizer.pt`` (2× the adapter)
and a ``model.safetensors`` (a stand-in for merged/base weights, 8 MB). Measured: ``zoo_tupate.hub.pull``
of all repos (download + embed + index), the same pull again with nothing changed (target: 0 bytes), and
``huggingface_hub.snapshot_download`` of each whole repo (the floor a naive client pays). Requests and
bytes come from the server's own log. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import emit, median, table, write_bert_lora  # noqa: E402


def _point_at(endpoint: str, hf_home: Path, zoo_home: Path) -> None:
    os.environ.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"),
                       "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                       "HF_TOKEN": "hf_" + "b" * 34, "ZOO_TUPATE_HOME": str(zoo_home)})
    os.environ.pop("HF_HUB_OFFLINE", None)
    from huggingface_hub import constants

    constants.ENDPOINT = endpoint
    constants.HUGGINGFACE_CO_URL_TEMPLATE = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    constants.HF_HOME = str(hf_home)
    constants.HF_HUB_CACHE = str(hf_home / "hub")
    constants.HF_HUB_OFFLINE = False


def _log(server) -> tuple[int, int]:
    reqs = list(server.requests)
    return len(reqs), sum(r.body_bytes for r in reqs if r.method == "GET" and "/resolve/" in r.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=50, help="adapter repos")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    try:
        from hub_server import HubServer
    except ImportError:
        print("tests/hub_server.py not found: pull benchmark skipped", file=sys.stderr)
        return
    import numpy as np
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="zt-bench-pull-"))
    server = HubServer(tmp / "hub").start()
    try:
        _point_at(server.endpoint, tmp / "hf-home", tmp / "zoo")
        from huggingface_hub import snapshot_download

        from zoo_tupate import Index
        from zoo_tupate.hub import pull

        rng = np.random.default_rng(0)
        repos = []
        for i in range(args.n):
            folder = write_bert_lora(tmp / "src" / f"t{i}", seed=i)
            (folder / "README.md").write_text(f"---\nlibrary_name: peft\nbase_model: bert-base-uncased\n---\n# task {i}\n")
            adapter = (folder / "adapter_model.safetensors").stat().st_size
            files = {p.name: p for p in folder.iterdir()}
            files["optimizer.pt"] = rng.bytes(2 * adapter)
            files["model.safetensors"] = rng.bytes(8 << 20)
            repo = f"bench/task-{i:03d}"
            server.commit_files(repo, files, message="upload")
            repos.append(repo)
        adapter_mb = sum((tmp / "src" / f"t{i}" / "adapter_model.safetensors").stat().st_size
                         for i in range(args.n)) / 1e6
        rows = []
        firsts, agains, snaps = [], [], []
        for rep in range(args.repeats):
            zoo = tmp / f"zoo-{rep}"
            hf = tmp / f"hf-{rep}"
            _point_at(server.endpoint, hf, zoo)
            index = Index(zoo)
            server.reset_log()
            start = time.perf_counter()
            results = pull(repos, index, jobs=args.jobs, progress=False, reprs=("raw",))
            t_first = time.perf_counter() - start
            bad = [r for r in results if r.outcome != "indexed"]
            if bad:
                raise SystemExit(f"pull failed: {bad[0].repo}: {bad[0].reason}")
            firsts.append((t_first, *_log(server)))
            server.reset_log()
            start = time.perf_counter()
            results = pull(repos, index, jobs=args.jobs, progress=False, reprs=("raw",))
            t_again = time.perf_counter() - start
            assert all(r.outcome == "unchanged" for r in results), [r.outcome for r in results]
            agains.append((t_again, *_log(server)))
            _point_at(server.endpoint, tmp / f"hf-snap-{rep}", zoo)
            server.reset_log()
            start = time.perf_counter()
            for repo in repos:
                snapshot_download(repo)
            snaps.append((time.perf_counter() - start, *_log(server)))
            shutil.rmtree(tmp / f"hf-snap-{rep}", ignore_errors=True)
        for label, runs in (("zoo-tupate pull (download + embed + index)", firsts),
                            ("zoo-tupate pull again, nothing changed", agains),
                            ("snapshot_download of each whole repo (download only)", snaps)):
            t = median([r[0] for r in runs])
            reqs = median([r[1] for r in runs])
            mb = median([r[2] for r in runs]) / 1e6
            rows.append([label, f"{t:.2f}", f"{args.n / t:.1f}", f"{reqs:.0f}", f"{reqs / args.n:.1f}",
                         f"{mb:.1f}", f"{mb / t:.1f}"])
        emit(table(f"pull: {args.n} adapter repos on the local test Hub server "
                   f"({adapter_mb:.1f} MB of adapters; jobs={args.jobs}; median of {args.repeats})",
                   ["what", "s", "repos/s", "requests", "requests/repo", "MB downloaded", "MB/s"], rows),
             args.results)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
