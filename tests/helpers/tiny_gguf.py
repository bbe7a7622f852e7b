"""Write small, valid GGUF files with chosen metadata, for inspection tests."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np


def write_tiny_gguf(
    path: Path,
    arch: str = "bert",
    name: str | None = "tiny",
    dims: int = 8,
    tokenizer: bool = True,
    extra: dict | None = None,
) -> Path:
    w = gguf.GGUFWriter(str(path), arch)
    if name is not None:
        w.add_name(name)
    w.add_embedding_length(dims)
    w.add_context_length(64)
    w.add_block_count(1)
    if tokenizer:
        w.add_tokenizer_model("bert")
        w.add_token_list(["[PAD]", "[CLS]", "[SEP]", "\u2581a"])
        w.add_token_type_count(2)
    for key, value in (extra or {}).items():
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        else:
            w.add_string(key, value)
    w.add_tensor("token_embd.weight", np.ones((4, dims), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
