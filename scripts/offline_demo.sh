#!/usr/bin/env bash
# zoo-tupate's Hub workflow end to end, offline: a local Hub-API server (tests/hub_server.py) on 127.0.0.1
# serves a small zoo; the README's commands run against it through the real huggingface_hub client.
#
#   scripts/offline_demo.sh [WORKDIR]        (PYTHON=... to choose the interpreter; default: python3)
#
# The zoo: tiny AdapterHub bottleneck stand-ins (hidden 32, 2 layers) under the catalog's GLUE repo names
# for bert-base-uncased, a target adapter pushed as my-org/my-adapter, and, when ../shared/adapters is
# present, the real third-party adapters there as shared/<name>. Nothing leaves 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="${1:-$(mktemp -d -t zoo-tupate-demo.XXXXXX)}"
mkdir -p "$WORK"
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

export HF_ENDPOINT="http://127.0.0.1:$PORT"
export HF_HOME="$WORK/hf-home"
export HF_TOKEN="hf_demo$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 30)"  # fake: the server only checks its shape
export HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_UPDATE_CHECK=1
export ZOO_TUPATE_HOME="$WORK/zoo"
unset HF_HUB_OFFLINE TRANSFORMERS_OFFLINE

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
zoo() { printf '$ zoo-tupate %s\n' "$*" >&2; "$PYTHON" -m zoo_tupate "$@"; }

step "start the local Hub server on $HF_ENDPOINT (storage $WORK/hub)"
"$PYTHON" "$ROOT/tests/hub_server.py" --port "$PORT" --storage "$WORK/hub" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
  sleep 0.1
done

step "make and publish the zoo"
"$PYTHON" "$ROOT/scripts/demo_zoo.py" make "$WORK/adapters"
"$PYTHON" "$ROOT/scripts/demo_zoo.py" publish "$WORK/adapters"
zoo push "$WORK/adapters/target" --repo my-org/my-adapter

step "README: pull the GLUE adapters of bert-base-uncased (only adapter files are downloaded)"
zoo pull 'glue/*' --base-model bert-base-uncased

step "README: rank the zoo for a Hub target (the target is an NLI-like task)"
zoo suggest --target my-org/my-adapter
zoo suggest --target my-org/my-adapter --json > "$WORK/suggest.json"
"$PYTHON" - "$WORK/suggest.json" <<'EOF'
import json, sys
answer = json.load(open(sys.argv[1]))
rows = answer["sources"]
top = rows[0]["name"]
print(f"top source: {top} (score {rows[0]['score']:.3f}); advice: {answer['advice']}")
if not any(task in top for task in ("mnli", "qnli", "rte")):
    sys.exit("demo check failed: an NLI task should rank first")
EOF

step "pull again: unchanged revisions download and recompute nothing"
zoo pull 'glue/*' --base-model bert-base-uncased

step "publish an embedding card (no weights) and pull it into another home"
zoo card publish AdapterHub/bert-base-uncased-pf-rte --repo my-org/rte-embedding --task glue/rte
zoo --home "$WORK/zoo-cards-only" pull my-org/rte-embedding

if [ -d "$ROOT/../shared/adapters" ]; then
  step "real third-party adapters (../shared/adapters): pull them and rank for one of them"
  zoo pull shared/distilbert-emotion-lora-peft0.20 shared/distilbert-mediabias-lora-qkvo \
    shared/distilbert-lora-bin-oldpeft shared/bert-sentiment-lora shared/roberta-agnews-lora-r4 \
    shared/roberta-mrpc-lora-nohead shared/mbert-metaphor-adapterhub-at3.1.0 \
    || echo "(some shared adapters cannot be indexed: see the reasons above)"
  zoo suggest --target shared/distilbert-imdb-lora --repr raw --repr delta
fi

step "stop the server: HF_HUB_OFFLINE=1 works from the cache"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
export HF_HUB_OFFLINE=1
zoo pull 'glue/*' --base-model bert-base-uncased
zoo suggest --target my-org/my-adapter --top-k 3

step "done: everything is under $WORK"
