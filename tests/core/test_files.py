"""Which files get indexed: ignore rules, skips with reasons, symlinks, decoding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.errors import CodeLampError
from app.core.files import FileEntry, FileRules, SkipFile, Skipped, decode, load_text


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def indexed(root: Path, **kw) -> set[str]:
    return {f.rel for f in FileRules(root, **kw).walk().files}


def skipped(root: Path, **kw) -> dict[str, str]:
    return {s.rel: s.reason for s in FileRules(root, **kw).walk().skipped}


def test_nested_gitignore_with_negation_and_anchors(tmp_path):
    root = tree(
        tmp_path,
        {
            ".gitignore": "*.log\n/top_only.txt\nout/\n",
            "a.log": "",
            "top_only.txt": "",
            "keep.py": "",
            "sub/.gitignore": "!keep.log\n*.tmp\n",
            "sub/keep.log": "",
            "sub/other.log": "",
            "sub/x.tmp": "",
            "sub/top_only.txt": "",
            "sub/out/gen.py": "",
            "out_file.py": "",
        },
    )
    assert indexed(root) == {
        ".gitignore",
        "keep.py",
        "sub/.gitignore",
        "sub/keep.log",
        "sub/top_only.txt",
        "out_file.py",
    }


def test_file_in_an_excluded_folder_cannot_be_reincluded(tmp_path):
    root = tree(
        tmp_path,
        {
            ".gitignore": "generated/\n",
            "generated/.gitignore": "!important.py\n",
            "generated/important.py": "",
            "main.py": "",
        },
    )
    assert indexed(root) == {".gitignore", "main.py"}


def test_codelampignore_beats_gitignore_and_settings_beat_both(tmp_path):
    root = tree(
        tmp_path,
        {
            ".gitignore": "docs/\n",
            ".codelampignore": "!docs/\n*.sql\n",
            "docs/guide.md": "",
            "schema.sql": "",
            "app.py": "",
            "scratch/notes.txt": "",
        },
    )
    assert indexed(root) >= {"docs/guide.md", "app.py"}
    assert "schema.sql" not in indexed(root)
    with_settings = indexed(root, extra_ignores=["scratch/", "!schema.sql"])
    assert "schema.sql" in with_settings and "scratch/notes.txt" not in with_settings


def test_git_info_exclude(tmp_path):
    root = tree(tmp_path, {".git/info/exclude": "local.py\n", "local.py": "", "app.py": ""})
    assert indexed(root) == {"app.py"}


def test_always_ignored_folders_and_virtualenvs(tmp_path):
    root = tree(
        tmp_path,
        {
            ".git/config": "",
            "node_modules/x/index.js": "",
            "__pycache__/a.py": "",
            ".venv/lib/a.py": "",
            "env38/pyvenv.cfg": "",
            "env38/lib/site.py": "",
            "dist/bundle.js": "",
            "pkg.egg-info/PKG-INFO": "",
            "src/app.py": "",
            ".github/workflows/ci.yml": "",
        },
    )
    discovery = FileRules(root).walk()
    assert {f.rel for f in discovery.files} == {"src/app.py", ".github/workflows/ci.yml"}
    assert discovery.ignored >= 7 and discovery.skipped == []


@pytest.mark.parametrize(
    "name",
    [
        ".env",
        ".env.production",
        "server.pem",
        "tls.key",
        "id_rsa",
        "id_ed25519.pub",
        "cert.p12",
        "credentials.json",
        ".npmrc",
        ".netrc",
        "vault.kdbx",
        # Reported indexed (and found by a search for their contents) before the rules widened:
        ".envrc",
        ".env_local",
        "server.crt",
        "cert.cer",
        "ca.der",
        "key.ppk",
        ".pgpass",
        ".htpasswd",
        "secrets.yaml",
        "service-account.json",
        "terraform.tfvars",
        ".ssh/config",
        "home/.aws/config",
        "home/.docker/config.json",
        ".kube/config",
        "kubeconfig-prod.yaml",
        "infra/terraform.tfstate",
        "deploy/prod.env",
        "SERVER.CRT",
    ],
)
def test_likely_secrets_are_skipped(tmp_path, name):
    root = tree(tmp_path, {name: "secret", "ok.py": ""})
    assert skipped(root) == {name: "likely secret"}
    assert FileRules(root).check(root / name) == Skipped(name, "likely secret")


@pytest.mark.parametrize(
    "name",
    [
        "env.py",
        "environment.yml",
        "secrets.py",
        "keys.js",
        "credentials_form.tsx",
        "private_key.py",
        "ssh/config.py",
        "docker/config.json",
        "certs/README.md",
        "main.tf",
    ],
)
def test_names_that_only_resemble_secrets_are_indexed(tmp_path, name):
    assert indexed(tree(tmp_path, {name: "x = 1\n"})) == {name}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("logo.png", "binary"),
        ("lib.so", "binary"),
        ("model.gguf", "binary"),
        ("package-lock.json", "generated"),
        ("api_pb2.py", "generated"),
        ("app.min.js", "minified"),
    ],
)
def test_skipped_by_name(tmp_path, name, reason):
    assert skipped(tree(tmp_path, {name: "x"})) == {name: reason}


def test_size_limit(tmp_path):
    root = tree(tmp_path, {"big.py": "x" * 2000, "small.py": "x"})
    assert skipped(root, max_file_bytes=1000) == {"big.py": "too large (0.0 MB > 0.0 MB)"}
    big = tree(tmp_path / "b", {"huge.txt": "y" * (3 << 20)})
    assert skipped(big)["huge.txt"] == "too large (3.0 MB > 1.0 MB)"


def entry(path: Path) -> FileEntry:
    st = path.stat()
    return FileEntry(path.name, path, st.st_size, st.st_mtime_ns)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x7fELF\x02\x01\x00\x00binary", "binary"),
        ("var a=1;" * 1000, "minified"),
        ("// Code generated by protoc-gen-go. DO NOT EDIT.\npackage x\n", "generated"),
        ("# @generated by a tool\nx = 1\n", "generated"),
    ],
)
def test_content_checks(tmp_path, content, reason):
    path = tmp_path / "f.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SkipFile) as err:
        load_text(entry(path))
    assert err.value.reason == reason


def test_decoding_never_fails():
    assert decode("é\r\nx\ry".encode()) == "é\nx\ny"
    assert decode(b"\xef\xbb\xbfhello") == "hello"
    assert decode("naïve".encode("utf-16")) == "naïve"
    assert decode("café".encode("latin-1")) == "café"
    one_bad = "ünïcödé ".encode() * 50 + b"\xff" + b" ok"
    text = decode(one_bad)
    assert text.startswith("ünïcödé") and text.count("\ufffd") == 1
    assert decode(bytes(range(256))) is not None


def test_utf16_file_is_not_mistaken_for_binary(tmp_path):
    path = tmp_path / "u.txt"
    path.write_bytes("hello world\n".encode("utf-16"))
    assert load_text(entry(path)) == "hello world\n"


def test_symlinks_inside_followed_outside_and_loops_not(tmp_path):
    outside = tree(tmp_path / "outside", {"secret_plan.py": ""})
    root = tree(tmp_path / "proj", {"src/real.py": "", "src/deep/x.py": ""})
    (root / "alias.py").symlink_to(root / "src/real.py")
    (root / "linked_src").symlink_to(root / "src/deep", target_is_directory=True)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "src/deep/loop").symlink_to(root / "src", target_is_directory=True)
    (root / "dangling.py").symlink_to(root / "gone.py")
    discovery = FileRules(root).walk()
    rels = {f.rel for f in discovery.files}
    assert {"src/real.py", "src/deep/x.py"} <= rels
    assert not any("secret_plan" in r for r in rels)
    reasons = {s.rel: s.reason for s in discovery.skipped}
    assert reasons["alias.py"] == "symlink to a file indexed under another path"
    assert reasons["escape"] == "symlink outside the project"
    assert reasons["dangling.py"] == "broken symlink"
    assert reasons["src/deep/loop"] == "symlink loop"


LINKED_FILE = "symlink to a file indexed under another path"


@pytest.mark.parametrize("link", ["alias.py", "lib/a.py", "zz/a.py"])
def test_a_symlinked_file_is_indexed_once_under_its_real_path(tmp_path, link):
    """Links sorted before and after their target: the real path wins either way."""
    root = tree(tmp_path, {"src/a.py": "def a():\n    return 1\n", "lib/other.py": ""})
    (root / link).parent.mkdir(exist_ok=True)
    (root / link).symlink_to(root / "src/a.py")
    rules = FileRules(root)
    discovery = rules.walk()
    assert [f.rel for f in discovery.files if f.path.name == "a.py"] == ["src/a.py"]
    assert {s.rel: s.reason for s in discovery.skipped} == {link: LINKED_FILE}
    # The watcher's view agrees, whichever path it reports.
    assert rules.check(root / link) == Skipped(link, LINKED_FILE)
    assert rules.discover([link, "src/a.py"]).skipped == [Skipped(link, LINKED_FILE)]
    assert [f.rel for f in rules.discover([link, "src/a.py"]).files] == ["src/a.py"]


def test_a_symlink_to_a_file_not_indexed_under_its_own_path(tmp_path):
    """A link to an ignored file is the only way to it, so it is indexed; a link to a
    skipped file is skipped for the same reason, whatever its own name."""
    root = tree(
        tmp_path,
        {
            ".gitignore": "stash/\n",
            "stash/kept.py": "x = 1\n",
            ".env": "TOKEN=1\n",
            "logo.png": "x",
        },
    )
    (root / "kept.py").symlink_to(root / "stash/kept.py")
    (root / "settings.py").symlink_to(root / ".env")
    (root / "logo.py").symlink_to(root / "logo.png")
    rules = FileRules(root)
    discovery = rules.walk()
    assert [f.rel for f in discovery.files] == [".gitignore", "kept.py"]
    reasons = {s.rel: s.reason for s in discovery.skipped}
    assert reasons == {
        ".env": "likely secret",
        "settings.py": "likely secret",
        "logo.png": "binary",
        "logo.py": "binary",
    }
    for rel in ("kept.py", "settings.py", "logo.py"):
        outcome = rules.check(root / rel)
        assert outcome == next(o for o in discovery.files + discovery.skipped if o.rel == rel), rel


def test_unreadable_files_and_folders_are_recorded(tmp_path, monkeypatch):
    root = tree(tmp_path, {"locked/a.py": "", "ok.py": "", "private.py": "x"})
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert skipped(root) == {"locked": "unreadable: Permission denied"}
    real_open = os.open

    def open_(path, *args, **kw):
        if str(path).endswith("private.py"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kw)

    monkeypatch.setattr(os, "open", open_)
    with pytest.raises(SkipFile, match="unreadable: Permission denied"):
        load_text(entry(root / "private.py"))


def test_editor_swap_backup_and_temp_files_are_ignored(tmp_path):
    root = tree(
        tmp_path,
        {
            "app.py": "x = 1\n",
            "app.py~": "",
            ".app.py.swp": "",
            "4913": "",
            ".#app.py": "",
            "#app.py#": "",
            "app.py___jb_tmp___": "",
            "app.py.tmp": "",
            "tmp.py": "",
        },
    )
    assert indexed(root) == {"app.py", "tmp.py"}
    assert skipped(root) == {}


def test_check_agrees_with_walk(tmp_path):
    root = tree(
        tmp_path,
        {
            ".gitignore": "*.log\nbuild/\n",
            "sub/.gitignore": "!keep.log\n",
            "a.py": "",
            "a.log": "",
            "sub/keep.log": "",
            "sub/b.log": "",
            "build/x.py": "",
            ".env": "",
            "logo.png": "",
            "node_modules/m.js": "",
            "deep/er/c.go": "",
        },
    )
    rules = FileRules(root)
    discovery = rules.walk()
    expected: dict[str, FileEntry | Skipped] = {f.rel: f for f in discovery.files}
    expected |= {s.rel: s for s in discovery.skipped}
    for path in root.rglob("*"):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            assert rules.check(path) == expected.get(rel), rel
    assert rules.check(tmp_path.parent / "elsewhere.py") is None
    assert rules.check(root / "missing.py") is None


def test_bad_roots(tmp_path):
    with pytest.raises(CodeLampError, match="No folder"):
        FileRules(tmp_path / "missing")
    (tmp_path / "f").write_text("")
    with pytest.raises(CodeLampError, match="not a folder"):
        FileRules(tmp_path / "f")


# --- A tree that is hostile, or changes while it is indexed ---------------------------------


def test_a_folder_that_cannot_be_checked_for_pyvenv_cfg_is_reported_not_fatal(
    tmp_path, monkeypatch
):
    """As root, chmod 000 denies nothing, so the denial is simulated where it happens."""
    root = tree(tmp_path, {"locked/a.py": "", "ok.py": ""})
    real_stat, real_scandir = os.stat, os.scandir

    def stat(path, *args, **kw):
        if str(path).endswith("locked/pyvenv.cfg"):
            raise PermissionError(13, "Permission denied")
        return real_stat(path, *args, **kw)

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "scandir", scandir)
    rules = FileRules(root)
    discovery = rules.walk()
    assert [f.rel for f in discovery.files] == ["ok.py"]
    assert {s.rel: s.reason for s in discovery.skipped} == {
        "locked": "unreadable: Permission denied"
    }
    assert rules.check(root / "locked" / "a.py") is None


def test_ignore_lines_git_accepts_but_pathspec_rejects_are_left_out(tmp_path, caplog):
    root = tree(
        tmp_path,
        {
            ".gitignore": "[z-a]\nfoo\\\n*.log\n",
            "sub/.gitignore": "!\n*.tmp\n",
            "a.log": "",
            "a.py": "",
            "sub/b.tmp": "",
            "sub/b.py": "",
            "foo": "",
            "q.sql": "",
        },
    )
    assert indexed(root) == {".gitignore", "a.py", "foo", "sub/.gitignore", "sub/b.py", "q.sql"}
    assert indexed(root, extra_ignores=["[z-a]", "*.sql"]) == {
        ".gitignore",
        "a.py",
        "foo",
        "sub/.gitignore",
        "sub/b.py",
    }
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    for line in ("'[z-a]'", "'foo\\\\'", "'!'"):
        assert line in warned


@pytest.mark.timeout(10)
def test_a_fifo_as_ignore_file_is_not_waited_on(tmp_path):
    root = tree(tmp_path, {"sub/a.py": "", "sub/b.log": ""})
    os.mkfifo(root / "sub" / ".gitignore")
    assert indexed(root) == {"sub/a.py", "sub/b.log"}


def make_raw(folder: Path, name: bytes, content: bytes = b"x = 1\n") -> None:
    fd = os.open(os.fsencode(folder) + b"/" + name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, content)
    os.close(fd)


def test_names_that_are_not_utf8_are_listed_escaped_and_not_indexed(tmp_path):
    """The index stores paths as UTF-8 text (pyarrow strings): a name Python can only carry
    with lone surrogates must never reach it."""
    import pyarrow as pa

    root = tree(tmp_path, {"ok.py": "x = 1\n"})
    make_raw(root, b"img\xff.png")
    make_raw(root, b"code\xfe.py")
    os.mkdir(os.fsencode(root) + b"/dir\xfd")
    make_raw(root / os.fsdecode(b"dir\xfd"), b"inner.py")
    rules = FileRules(root)
    discovery = rules.walk()
    expected = {
        "img\\xff.png": "file name is not valid UTF-8",
        "code\\xfe.py": "file name is not valid UTF-8",
        "dir\\xfd": "folder name is not valid UTF-8",
    }
    assert {s.rel: s.reason for s in discovery.skipped} == expected
    assert [f.rel for f in discovery.files] == ["ok.py"]
    pa.array([s.rel for s in discovery.skipped], pa.string())  # storable
    # The file watcher reports such paths as Python decodes them; check() agrees with walk().
    assert rules.check(root / os.fsdecode(b"code\xfe.py")) == Skipped(
        "code\\xfe.py", "file name is not valid UTF-8"
    )
    assert rules.check(root / os.fsdecode(b"dir\xfd")) == Skipped(
        "dir\\xfd", "folder name is not valid UTF-8"
    )
    assert rules.check(root / os.fsdecode(b"dir\xfd") / "inner.py") is None
    assert {s.rel for s in rules.discover([os.fsdecode(b"img\xff.png")]).skipped} == {
        "img\\xff.png"
    }


def scanned(root: Path, name: str, **kw) -> FileEntry:
    return next(f for f in FileRules(root, **kw).walk().files if f.rel == name)


@pytest.mark.timeout(10)
def test_a_file_replaced_by_a_fifo_after_the_scan_is_skipped_not_waited_on(tmp_path):
    root = tree(tmp_path, {"a.py": "x = 1\n"})
    found = scanned(root, "a.py")
    (root / "a.py").unlink()
    os.mkfifo(root / "a.py")
    with pytest.raises(SkipFile, match="not a regular file"):
        load_text(found)


def test_a_file_grown_past_the_limit_after_the_scan_is_skipped_as_too_large(tmp_path, monkeypatch):
    root = tree(tmp_path, {"a.py": "x = 1\n"})
    found = scanned(root, "a.py", max_file_bytes=1000)
    (root / "a.py").write_text("x = 1\n" * 1000)
    with pytest.raises(SkipFile, match=r"too large \(0.0 MB > 0.0 MB\)"):
        load_text(found)
    # Still growing while it is read: fstat said it fit, the read finds out it does not.
    real_fstat = os.fstat
    monkeypatch.setattr(
        os, "fstat", lambda fd: os.stat_result((*real_fstat(fd)[:6], 10, *real_fstat(fd)[7:]))
    )
    with pytest.raises(SkipFile, match="too large"):
        load_text(found)


def test_files_that_vanish_or_turn_into_symlinks_after_the_scan(tmp_path):
    outside = tree(tmp_path / "outside", {"secret.py": "TOP_SECRET = 1\n"})
    root = tree(
        tmp_path / "proj",
        {
            "gone.py": "",
            "swapped.py": "",
            "dir.py": "",
            ".gitignore": "stash/\n",
            "stash/target.py": "y = 2\n",
        },
    )
    (root / "alias.py").symlink_to(root / "stash/target.py")
    entries = {f.rel: f for f in FileRules(root).walk().files}
    (root / "gone.py").unlink()
    (root / "swapped.py").unlink()
    (root / "swapped.py").symlink_to(outside / "secret.py")
    (root / "dir.py").unlink()
    (root / "dir.py").mkdir()
    reasons = {}
    for rel in ("gone.py", "swapped.py", "dir.py"):
        with pytest.raises(SkipFile) as err:
            load_text(entries[rel])
        reasons[rel] = err.value.reason
    assert reasons == {
        "gone.py": "deleted before it could be read",
        "swapped.py": "replaced by a symlink",
        "dir.py": "not a regular file",
    }
    assert load_text(entries["alias.py"]) == "y = 2\n"  # a symlink found by the scan is fine
