"""Another model of the same shape as the default one, for tests of model checks.

The default model's GGUF with the weights of its first and last layers swapped: the
same architecture, dimensions and tokenizer, finite vectors, and another model."""

from __future__ import annotations

import shutil
from pathlib import Path

import gguf


def swapped_layers_copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    reader = gguf.GGUFReader(str(src))
    tensors = {t.name: t for t in reader.tensors}
    last = max(int(name.split(".")[1]) for name in tensors if name.startswith("blk."))
    with dst.open("r+b") as out:
        for name, first in tensors.items():
            if not name.startswith("blk.0."):
                continue
            other = tensors[name.replace("blk.0.", f"blk.{last}.", 1)]
            a, b = bytes(first.data.tobytes()), bytes(other.data.tobytes())
            out.seek(first.data_offset)
            out.write(b)
            out.seek(other.data_offset)
            out.write(a)
    return dst
