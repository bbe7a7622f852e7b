"""Which files likely hold secrets: these are never indexed (reason "likely secret").

An index is a copy of the code that tools and people search freely, so a key or a password
in it is a leak. Most secrets give themselves away by name (keys, certificates, credential
stores, the folders tools keep them in); the walk decides on that without opening a file.
"""

from __future__ import annotations

import os
import re

SECRET = "likely secret"  # the skip reason, as `codelamp status` shows it

# Secrets by name: keys, certificates, credential stores, and the folders tools keep them in.
_NAMES = frozenset({
    "credentials", "credentials.json", "credentials.toml", "credentials.yaml",
    "credentials.yml", "credentials.xml", "credentials.csv", "accesskeys.csv",
    "application_default_credentials.json", "secrets.json", "secrets.yaml", "secrets.yml",
    "secrets.toml", "secrets.ini", "secrets.properties", ".netrc", "_netrc", ".pypirc",
    ".npmrc", ".git-credentials", ".pgpass", ".htpasswd", ".my.cnf", ".s3cfg", ".boto",
    ".vault-token", ".dockercfg",
})  # fmt: skip
_SUFFIXES = frozenset({
    ".pem", ".key", ".crt", ".cer", ".cert", ".der", ".csr", ".p7b", ".p7c", ".p8", ".p12",
    ".pfx", ".pkcs12", ".jks", ".jceks", ".bks", ".keystore", ".keychain", ".kdbx", ".gpg",
    ".pgp", ".ppk", ".keytab", ".ovpn", ".secret", ".env", ".tfvars", ".tfstate",
    ".kubeconfig",
})  # fmt: skip
_NAME_PATTERN = re.compile(  # matched against the whole lower-case name
    r"\.env.*|id_(?:rsa|dsa|ecdsa|ed25519).*|kubeconfig.*|.*\.tf(?:vars|state)\..*"
    r"|(?:service[-_]account|client_secret).*\.json"
)
_DIRS = frozenset({".ssh", ".gnupg", ".aws", ".azure", ".kube", ".password-store"})
_PATHS = ("/.docker/config.json",)


def is_secret_path(rel: str) -> bool:
    """By the path alone (in any letter case): the walk never opens a file to decide."""
    rel = rel.lower()
    folders, _, name = rel.rpartition("/")
    return (name in _NAMES or os.path.splitext(name)[1] in _SUFFIXES
            or _NAME_PATTERN.fullmatch(name) is not None
            or not _DIRS.isdisjoint(folders.split("/"))
            or f"/{rel}".endswith(_PATHS))  # fmt: skip

