"""Which files likely hold secrets: these are never indexed (reason "likely secret").

An index is a copy of the code that tools and people search freely, so a key or a password
in it is a leak. Most secrets give themselves away by name (keys, certificates, credential
stores, the folders tools keep them in); the walk decides on that without opening a file.
The rest are found in the text of the files that are read anyway: private keys and tokens
of known formats in any file, and passwords and tokens set in config files. In source code
a password is as often a test fixture or an example, so only the formats count there.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

SECRET = "likely secret"  # the skip reason, as `codelamp status` shows it

# Secrets by name: keys, certificates, credential stores, and the folders tools keep them in.
_NAMES = frozenset(
    {
        "credentials",
        "credentials.json",
        "credentials.toml",
        "credentials.yaml",
        "credentials.yml",
        "credentials.xml",
        "credentials.csv",
        "accesskeys.csv",
        "application_default_credentials.json",
        "secrets.json",
        "secrets.yaml",
        "secrets.yml",
        "secrets.toml",
        "secrets.ini",
        "secrets.properties",
        ".netrc",
        "_netrc",
        ".pypirc",
        ".npmrc",
        ".git-credentials",
        ".pgpass",
        ".htpasswd",
        ".my.cnf",
        ".s3cfg",
        ".boto",
        ".vault-token",
        ".dockercfg",
    }
)
_SUFFIXES = frozenset(
    {
        ".pem",
        ".key",
        ".crt",
        ".cer",
        ".cert",
        ".der",
        ".csr",
        ".p7b",
        ".p7c",
        ".p8",
        ".p12",
        ".pfx",
        ".pkcs12",
        ".jks",
        ".jceks",
        ".bks",
        ".keystore",
        ".keychain",
        ".kdbx",
        ".gpg",
        ".pgp",
        ".ppk",
        ".keytab",
        ".ovpn",
        ".secret",
        ".env",
        ".tfvars",
        ".tfstate",
        ".kubeconfig",
    }
)
_NAME_PATTERN = re.compile(  # matched against the whole lower-case name
    r"\.env.*|id_(?:rsa|dsa|ecdsa|ed25519).*|kubeconfig.*|.*\.tf(?:vars|state)\..*"
    r"|(?:service[-_]account|client_secret).*\.json"
)
_DIRS = frozenset({".ssh", ".gnupg", ".aws", ".azure", ".kube", ".password-store"})
_PATHS = ("/.docker/config.json",)

# Secrets by content, in any file: a private-key block with a key in it (PEM, OpenSSH, PGP,
# also JSON-escaped; PuTTY), and tokens whose vendor prefix and length leave no doubt. A
# mention of "-----BEGIN PRIVATE KEY-----" in prose or parsing code has no key after it;
# AWS's documented example key (…EXAMPLE) is not a secret. One pattern per format, each
# starting with a literal: the regex engine then scans for that literal, about 100 times
# faster than one alternation tried at every position.
_KEYS_AND_TOKENS = tuple(
    re.compile(pattern)
    for pattern in (
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:\s|\\n)+"
        r"(?:[\w-]+: [^\n]*?(?:\s|\\n)+)*[A-Za-z0-9+/=]{40}",
        r"Private-Lines: \d+\s+[A-Za-z0-9+/=]{40}",  # PuTTY
        r"AKIA(?![A-Z0-9]{9}EXAMPLE)[A-Z0-9]{16}\b",
        r"ASIA[A-Z0-9]{16}\b",  # AWS
        r"gh[pousr]_[A-Za-z0-9]{36}\b",
        r"github_pat_\w{82}\b",
        r"glpat-[\w-]{20}\b",
        r"xox[abposr]-\d+-[A-Za-z0-9-]{10,}",  # Slack
        r"AIza[\w-]{35}(?![\w-])",  # Google
        r"sk_live_[A-Za-z0-9]{24,}",  # Stripe
        r"npm_[A-Za-z0-9]{36}\b",
        r"pypi-AgEIcHlwaS5vcmc[\w-]{50,}",
    )
)
# In config files only, where a value is a setting, not a fixture or an example in code:
# a JWT, or a literal that looks like a password or token set for a key named like one.
_CONFIG_SUFFIXES = frozenset(
    {
        ".yaml",
        ".yml",
        ".json",
        ".jsonc",
        ".ini",
        ".cfg",
        ".cnf",
        ".conf",
        ".toml",
        ".properties",
        ".hcl",
    }
)
_JWT = re.compile(r"eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,}")
# The key ends with a secret's name; the value is quoted, or runs to the end of the line
# (without a "#" or ";" comment), so that unquoted YAML prose keeps its spaces.
_SETTING = re.compile(
    r"(?:password|passwd|passphrase|secret|token|credentials?"
    r"|(?:api|access|secret|private|signing|encryption|master)[_-]?key)"
    r"[\"']?[ \t]*[:=][ \t]*(?:\"([^\"\n]*)\"|'([^'\n]*)'"
    r"|([^\s,}\]]+(?:[ \t]+[^\s#;,}\]][^\s,}\]]*)*))",
    re.IGNORECASE,
)


def is_secret_path(rel: str) -> bool:
    """By the path alone (in any letter case): the walk never opens a file to decide."""
    rel = rel.lower()
    folders, _, name = rel.rpartition("/")
    return (
        name in _NAMES
        or os.path.splitext(name)[1] in _SUFFIXES
        or _NAME_PATTERN.fullmatch(name) is not None
        or not _DIRS.isdisjoint(folders.split("/"))
        or f"/{rel}".endswith(_PATHS)
    )


def holds_secret(text: str, rel: str) -> bool:
    """A secret that the file's name (``rel``) did not give away."""
    if any(pattern.search(text) for pattern in _KEYS_AND_TOKENS):
        return True
    if PurePosixPath(rel.lower()).suffix not in _CONFIG_SUFFIXES:
        return False
    values = ("".join(m.groups(default="")) for m in _SETTING.finditer(text))
    return _JWT.search(text) is not None or any(map(_is_secret_value, values))


def _is_secret_value(value: str) -> bool:
    """Whether a setting's value looks like a real password or token. Not prose or a label
    (spaces, or a short run of letters: ``Forgot your password?``, ``Password``), not a
    reference or a placeholder (``${DB_PASSWORD}``, ``{{ vault_pw }}``, ``<your token>``,
    ``!Ref DbPassword``, ``****``), not a path (``/etc/ssl/private/app.key``; a random
    token may start with "/" too, but is not all lower-case), not a number (``token: 512``)."""
    if len(value) < 6 or value.isdigit() or any(c.isspace() for c in value):
        return False
    if value[0] in "$%{<[(!|>*" or (value.startswith(("/", "./", "~/")) and value.islower()):
        return False
    return len(value) >= 20 or any(not c.isalpha() and c not in "-_." for c in value)
