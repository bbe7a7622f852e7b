"""Which language a path is (app/core/languages.py)."""

from __future__ import annotations

import pytest

from app.core.languages import language_for


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a.py", "python"),
        ("a.jsx", "javascript"),
        ("a.mjs", "javascript"),
        ("a.cjs", "javascript"),
        ("a.ts", "typescript"),
        ("a.tsx", "tsx"),
        ("a.go", "go"),
        ("a.rs", "rust"),
        ("A.java", "java"),
        ("a.h", "c"),
        ("a.hpp", "cpp"),
        ("a.cc", "cpp"),
        ("a.cs", "csharp"),
        ("a.rb", "ruby"),
        ("a.php", "php"),
        ("a.sh", "bash"),
        ("docs/README.md", "markdown"),
        ("a.yml", "yaml"),
        ("pyproject.toml", "toml"),
        ("Makefile", "makefile"),
        ("sub/Dockerfile", "dockerfile"),
        ("notes", "text"),
        ("weird.xyz", "text"),
        ("A.PY", "python"),
    ],
)
def test_language_for(path, language):
    assert language_for(path) == language
