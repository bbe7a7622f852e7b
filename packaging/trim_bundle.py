"""Make a PyInstaller one-folder bundle smaller without changing what it runs.

1. Strip symbols and debug info from ELF files that still carry them (libpython and the
   tree-sitter grammars ship with full debug info). Libraries that auditwheel grafted into
   a ``*.libs`` folder are left alone: they are patched, and strip breaks them.
2. Replace byte-identical copies (wheels cannot hold symlinks, so ``libfoo.so``,
   ``libfoo.so.1`` and ``libfoo.so.1.0`` arrive as three files) with relative symlinks.
3. Remove symlinks that point at nothing (left by libraries the spec drops).

Usage: python trim_bundle.py BUNDLE_DIR
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ELF_MAGIC = b"\x7fELF"


def is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == ELF_MAGIC


def has_symbols(path: Path) -> bool:
    out = subprocess.run(["readelf", "-S", "-W", str(path)], capture_output=True, text=True)
    return ".symtab" in out.stdout or ".debug_info" in out.stdout


def regular_files(root: Path):
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                yield path


def strip_binaries(root: Path) -> int:
    saved = 0
    for path in regular_files(root):
        if any(part.endswith(".libs") for part in path.relative_to(root).parts):
            continue
        if not is_elf(path) or not has_symbols(path):
            continue
        before = path.stat().st_size
        subprocess.run(["strip", "--strip-unneeded", str(path)], check=True)
        saved += before - path.stat().st_size
    return saved


def link_duplicates(root: Path) -> int:
    by_digest: dict[tuple[int, str], Path] = {}
    saved = 0
    for path in sorted(regular_files(root), key=lambda p: (len(str(p)), str(p))):
        size = path.stat().st_size
        if size < 64 * 1024:
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        first = by_digest.setdefault((size, digest), path)
        if first is path:
            continue
        path.unlink()
        path.symlink_to(os.path.relpath(first, path.parent))
        saved += size
    return saved


def drop_dangling_links(root: Path) -> int:
    dropped = 0
    for dirpath, dirs, files in os.walk(root):
        for name in files + dirs:
            path = Path(dirpath) / name
            if path.is_symlink() and not path.exists():
                path.unlink()
                dropped += 1
    return dropped


def main(argv: list[str]) -> int:
    root = Path(argv[1])
    mb = 1024 * 1024
    print(f"stripped: {strip_binaries(root) / mb:.0f} MB saved", file=sys.stderr)
    print(f"duplicates linked: {link_duplicates(root) / mb:.0f} MB saved", file=sys.stderr)
    print(f"dangling links removed: {drop_dangling_links(root)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
