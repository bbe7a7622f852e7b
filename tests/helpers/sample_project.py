"""A small realistic project to index: a few languages, docs, and things to skip."""

from __future__ import annotations

from pathlib import Path

FILES = {
    "src/upload.py": '''\
import time

import requests


class UploadClient:
    """Talks to the storage service."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def send(self, blob: bytes) -> int:
        response = requests.put(self.base_url + "/blobs", data=blob, timeout=30)
        return response.status_code


def retry_failed_upload(client: UploadClient, blob: bytes, attempts: int = 5) -> bool:
    for attempt in range(attempts):
        try:
            if client.send(blob) == 200:
                return True
        except requests.ConnectionError:
            pass
        time.sleep(2 ** attempt)
    return False
''',
    "src/config.py": """\
import json
from pathlib import Path


def parse_config(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        settings = json.load(fh)
    settings.setdefault("timeout", 30)
    return settings


def save_config(path: Path, settings: dict) -> None:
    path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
""",
    "src/auth.go": """\
package auth

import "golang.org/x/crypto/bcrypt"

// HashPassword returns the bcrypt hash of a user's password.
func HashPassword(password string) (string, error) {
\tbytes, err := bcrypt.GenerateFromPassword([]byte(password), 14)
\treturn string(bytes), err
}

func CheckPasswordHash(password, hash string) bool {
\terr := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
\treturn err == nil
}
""",
    "web/api.ts": """\
export interface UserProfile {
  id: string;
  displayName: string;
}

export async function fetchUserProfile(id: string): Promise<UserProfile> {
  const response = await fetch(`/api/users/${id}`);
  if (!response.ok) {
    throw new Error(`profile request failed: ${response.status}`);
  }
  return response.json();
}
""",
    "lib/cache.rs": """\
use std::collections::HashMap;

pub struct LruCache {
    capacity: usize,
    entries: HashMap<String, Vec<u8>>,
    order: Vec<String>,
}

impl LruCache {
    pub fn evict_least_recently_used(&mut self) {
        if self.order.len() > self.capacity {
            let oldest = self.order.remove(0);
            self.entries.remove(&oldest);
        }
    }
}
""",
    "README.md": """\
# Demo service

Uploads blobs to storage and retries on failure.

## Configuration

Settings live in a JSON file; see `parse_config`.
""",
    ".gitignore": "build/\n*.log\n",
    "build/generated.py": "def ignored():\n    return 'build output'\n",
    "debug.log": "this log is ignored\n",
    "node_modules/left-pad/index.js": "module.exports = function leftPad() {}\n",
    ".env": "API_TOKEN=super-secret\n",
}


def make_project(root: Path) -> Path:
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "assets").mkdir()
    (root / "assets" / "logo.bin").write_bytes(b"\x89PNG\x00\x00binary")
    (root / "data.json").write_text("[" + ",".join(["1"] * 600_000) + "]")  # > 1 MiB
    return root


INDEXED = {
    "src/upload.py",
    "src/config.py",
    "src/auth.go",
    "web/api.ts",
    "lib/cache.rs",
    "README.md",
    ".gitignore",
}


BIG_FILE = "m_big.py"


def make_one_big_file_project(root: Path, big_functions: int = 80) -> Path:
    """Four small files, one big file of ``big_functions`` distinct functions (a chunk
    each), four small files, in that order: most of the work is the big file."""
    root.mkdir(parents=True)
    for i in range(4):
        (root / f"a{i}.py").write_text(f"def before_{i}(x):\n    return x + {i}\n")
        (root / f"z{i}.py").write_text(f"def after_{i}(y):\n    return y * {i}\n")
    body = "\n".join(f"    total += values[{j}] * {j}  # weight {j} of the sum" for j in range(14))
    (root / BIG_FILE).write_text(
        "\n\n".join(
            f"def weighted_sum_{i}(values):\n    total = {i}\n{body}\n    return total\n"
            for i in range(big_functions)
        )
    )
    return root
