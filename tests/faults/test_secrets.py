"""Secrets in a project are never indexed; files that only look like secrets still are.

A generated corpus of realistic secret files: some given away by their name (keys,
certificates, credential stores, the folders tools keep them in), some only by their
content (a private key pasted into notes, a token in a script, a password in a YAML file).
Every one must be skipped as "likely secret" and none found by a search. Beside them,
ordinary files that mention passwords, keys and tokens must still be indexed.

Keys and tokens are made from random bytes at run time, so this file holds none: a secret
scanner, or CodeLamp indexing its own repository, finds nothing here.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

import pytest

from app.core.files import FileRules, SkipFile, load_text
from app.core.indexer import index_project
from app.core.project import project_status
from app.core.search import Searcher
from app.core.storage import ProjectStore

MARKER = "quillwortvault"  # a word in every text secret that has room for one, nowhere else
_rng = random.Random(20261201)


def rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def upper(n: int) -> str:
    return rand(n, string.ascii_uppercase + string.digits)


def hexes(n: int) -> str:
    return rand(n, "0123456789abcdef")


def b64(nbytes: int) -> str:
    return base64.b64encode(_rng.randbytes(nbytes)).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def lines64(text: str) -> str:
    return "\n".join(text[i : i + 64] for i in range(0, len(text), 64))


def pem(kind: str, nbytes: int = 1190, headers: str = "") -> str:
    return f"-----BEGIN {kind}-----\n{headers}{lines64(b64(nbytes))}\n-----END {kind}-----\n"


def private(kind: str = "") -> str:
    return pem(f"{kind} PRIVATE KEY".strip())


def bag(friendly_name: str) -> str:
    """What ``openssl pkcs12`` writes above each PEM block it exports."""
    return f"Bag Attributes\n    friendlyName: {friendly_name}\n"


def password() -> str:
    return rand(6) + _rng.choice("!#%&*+=?@^") + rand(7)


def jwt() -> str:
    claims = {"sub": MARKER, "role": "service", "iat": 1764547200}
    return ".".join(
        [
            b64url(b'{"alg":"HS256","typ":"JWT"}'),
            b64url(json.dumps(claims).encode()),
            b64url(_rng.randbytes(32)),
        ]
    )


def aws_key_id() -> str:
    return "AKIA" + upper(16)


def github_token() -> str:
    return "ghp_" + rand(36)


def slack_token() -> str:
    return f"xoxb-{rand(12, string.digits)}-{rand(13, string.digits)}-{rand(24)}"


def google_key() -> str:
    return "AIza" + rand(35, string.ascii_letters + string.digits + "-_")


def putty_key() -> str:
    return (
        f"PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nComment: {MARKER}@laptop\n"
        f"Public-Lines: 6\n{lines64(b64(279))}\nPrivate-Lines: 14\n{lines64(b64(656))}\n"
        f"Private-MAC: {hexes(64)}\n"
    )


def service_account() -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": f"{MARKER}-prod",
            "private_key_id": hexes(40),
            "private_key": private(),
            "client_email": f"deployer@{MARKER}-prod.iam.gserviceaccount.com",
            "client_id": rand(21, string.digits),
            "token_uri": "https://oauth2.googleapis.com/token",
        },
        indent=2,
    )


def binary(size: int = 2048) -> bytes:
    return _rng.randbytes(size // 2) + MARKER.encode() + _rng.randbytes(size // 2)


def secrets_by_name() -> dict[str, str | bytes]:
    """Secrets whose path gives them away: the walk skips them without opening them."""
    aws_secret = rand(40, string.ascii_letters + string.digits + "/+")
    docker_auth = base64.b64encode(f"{MARKER}:{password()}".encode()).decode()
    return {
        ".envrc": f"export DATABASE_URL=postgres://app:{password()}@db:5432/app  # {MARKER}\n",
        ".env_local": f"# {MARKER}\nAPI_KEY={rand(32)}\nDEBUG=1\n",
        ".env.production": f"SECRET_KEY={rand(50)}\nMAIL_USER={MARKER}\n",
        "deploy/prod.env": f"POSTGRES_PASSWORD={password()}\nPOSTGRES_USER={MARKER}\n",
        "certs/server.crt": bag(MARKER) + pem("CERTIFICATE"),
        "certs/cert.cer": bag(MARKER) + pem("CERTIFICATE", 900),
        "certs/ca.der": binary(),
        "certs/server.csr": bag(MARKER) + pem("CERTIFICATE REQUEST", 700),
        "tls/server.key": bag(MARKER) + private(),
        "tls/bundle.pem": bag(MARKER) + pem("CERTIFICATE") + private("EC"),
        "keys/key.ppk": putty_key(),
        "keys/release.p12": binary(),
        "keys/app.jks": binary(),
        "android/release.keystore": binary(),
        "vault/passwords.kdbx": binary(),
        "krb/http.keytab": binary(),
        ".pgpass": f"db.internal:5432:app:{MARKER}:{password()}\n",
        "web/.htpasswd": f"{MARKER}:$apr1${rand(8)}${rand(22)}\n",
        "config/secrets.yaml": f"production:\n  secret_key_base: {hexes(128)}\n  # {MARKER}\n",
        "config/secrets.json": json.dumps({"stripe": rand(32), "owner": MARKER}),
        "gcp/service-account.json": service_account(),
        "gcp/client_secret_8842.apps.googleusercontent.com.json": json.dumps(
            {
                "installed": {
                    "client_id": f"8842-{MARKER}.apps.googleusercontent.com",
                    "client_secret": "GOCSPX-" + rand(28),
                }
            }
        ),
        "infra/terraform.tfvars": f'db_password = "{password()}"\nproject = "{MARKER}"\n',
        "infra/prod.auto.tfvars": f'api_token = "{rand(40)}"  # {MARKER}\n',
        "infra/vars.tfvars.json": json.dumps({"admin_password": password(), "env": MARKER}),
        "infra/terraform.tfstate": json.dumps(
            {
                "version": 4,
                "resources": [
                    {"name": MARKER, "instances": [{"attributes": {"password": password()}}]}
                ],
            }
        ),
        "infra/terraform.tfstate.backup": json.dumps({"version": 4, "lineage": MARKER}),
        "home/.ssh/config": f"Host {MARKER}\n  HostName 10.0.0.5\n  User deploy\n",
        "home/.ssh/id_ed25519": pem("OPENSSH PRIVATE KEY", 300),
        "home/.ssh/id_ed25519.pub": f"ssh-ed25519 {b64(51)} {MARKER}@laptop\n",
        "home/.gnupg/gpg.conf": f"default-key {MARKER}@example.com\n",
        "home/.aws/credentials": (
            f"[default]\naws_access_key_id = {aws_key_id()}\n"
            f"aws_secret_access_key = {aws_secret}\n# {MARKER}\n"
        ),
        "home/.aws/config": f"[profile {MARKER}]\nregion = eu-west-1\n",
        "home/.docker/config.json": json.dumps(
            {"auths": {"ghcr.io": {"auth": docker_auth}}, "note": MARKER}
        ),
        "home/.kube/config": (
            f"apiVersion: v1\nkind: Config\nusers:\n- name: {MARKER}\n"
            f"  user:\n    token: {rand(64)}\n"
        ),
        "ops/kubeconfig-staging.yaml": f"users:\n- name: {MARKER}\n  user:\n    token: x\n",
        ".netrc": f"machine api.heroku.com\n  login {MARKER}\n  password {rand(36)}\n",
        ".pypirc": f"[pypi]\nusername = __token__\npassword = pypi-{rand(60)}\n# {MARKER}\n",
        ".npmrc": f"//registry.npmjs.org/:_authToken={rand(36)}\n# {MARKER}\n",
        ".git-credentials": f"https://{MARKER}:{github_token()}@github.com\n",
        ".my.cnf": f"[client]\nuser = {MARKER}\npassword = {password()}\n",
        ".s3cfg": f"[default]\naccess_key = {aws_key_id()}\nsecret_key = {aws_secret}\n"
        f"# {MARKER}\n",
        ".vault-token": f"hvs.{rand(90)}\n",
        "vpn/office.ovpn": f"remote vpn.{MARKER}.com 1194\n<key>\n{private()}</key>\n",
    }


def secrets_by_content() -> dict[str, str]:
    """Secrets under ordinary names: the walk lets them through, reading them stops them."""
    encrypted = pem(
        "RSA PRIVATE KEY",
        headers=(f"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{hexes(32).upper()}\n\n"),
    )
    pgp = pem("PGP PRIVATE KEY BLOCK", headers=f"Version: GnuPG v2\nComment: {MARKER}\n\n")
    return {
        # Private keys and tokens of known formats, in any file.
        "notes/deploy.md": (
            f"# Deploying {MARKER}\n\nThe server key, for now:\n\n```\n"
            f"{pem('OPENSSH PRIVATE KEY', 300)}```\n"
        ),
        "notes/sa_dump.txt": f"{MARKER} service account, from the console:\n{service_account()}",
        "keys/backup.txt": pgp,
        "keys/putty_export.txt": putty_key(),
        "legacy/key_material.py": f'# {MARKER}\nSIGNING_KEY = """{encrypted}"""\n',
        "scripts/setup.sh": (
            f"#!/bin/sh\n# {MARKER}\nexport AWS_ACCESS_KEY_ID={aws_key_id()}\n"
            "aws s3 sync build/ s3://site\n"
        ),
        "ci/publish.py": (
            f'"""Publish {MARKER} releases."""\nGITHUB_TOKEN = "{github_token()}"'
            "\n\n\ndef headers():\n    return {'Authorization': GITHUB_TOKEN}\n"
        ),
        "bots/notify.js": (
            f"// {MARKER}\nconst {{ WebClient }} = require('@slack/web-api');\n"
            f"const slack = new WebClient('{slack_token()}');\n"
        ),
        "web/maps.html": (
            f'<title>{MARKER}</title>\n<script src="https://maps.googleapis.com/'
            f'maps/api/js?key={google_key()}"></script>\n'
        ),
        "billing/charge.rb": f"# {MARKER}\nStripe.api_key = 'sk_live_{rand(99)}'\n",
        "ci/release.sh": f"# {MARKER}\nnpm config set //registry.npmjs.org/:_authToken "
        f"npm_{rand(36)}\n",
        "ci/mirror.sh": f"# {MARKER}\ngit push https://oauth2:glpat-{rand(20)}@gitlab.com/x.git\n",
        "ci/upload.sh": f"# {MARKER}\ntwine upload -p pypi-AgEIcHlwaS5vcmc{rand(70)} dist/*\n",
        # Passwords, tokens and JWTs set in config files.
        "config/settings.yaml": f'database:\n  user: {MARKER}\n  db_password: "{password()}"\n',
        "config/app.ini": f"[database]\nuser = {MARKER}\npassword = {password()}\n",
        "config/app.toml": f'[service]\nname = "{MARKER}"\napi_key = "{rand(32)}"\n',
        "config/application.properties": (
            f"spring.datasource.username={MARKER}\nspring.datasource.password={password()}\n"
        ),
        "config/auth.json": json.dumps({"service": MARKER, "session": jwt()}, indent=2),
        "config/app.conf": f"# {MARKER}\nsecret_key = {rand(50)}\n",
        "config/db.cfg": f"[db]\nname = {MARKER}\npasswd = {password()}\n",
        "config/upload.yml": (
            f"bucket: {MARKER}\naws_secret_access_key: "
            f"{rand(40, string.ascii_letters + string.digits + '/+')}\n"
        ),
        "config/webhooks.jsonc": f'// {MARKER}\n{{"signingSecret": "{hexes(32)}"}}\n',
        "config/vault.hcl": f'# {MARKER}\nstorage "consul" {{\n  token = "{rand(36)}"\n}}\n',
    }


def look_alikes() -> dict[str, str]:
    """Ordinary files that talk about passwords, keys and tokens: all must be indexed."""
    sample_jwt = ".".join(
        [
            b64url(b'{"alg":"HS256","typ":"JWT"}'),
            b64url(b'{"sub":"1234567890","name":"John Doe"}'),
            "sig",
        ]
    )
    return {
        "app/secrets.py": (
            '"""Where the app finds its secrets at run time."""\nimport os\n\n\n'
            "def load_secret(name):\n    return os.environ[name]\n"
        ),
        "accounts/password_reset.py": (
            "def send_password_reset(user, mailer):\n    token = make_reset_token(user)\n"
            "    mailer.send(user.email, f'/reset?token={token}')\n\n\n"
            "def change_password(user, password):\n    if len(password) < 12:\n"
            "        raise ValueError('password too short')\n    user.set_password(password)\n"
        ),
        "web/keys.js": (
            "// Keyboard key codes for the shortcuts.\nexport const KEY_ENTER = 13;\n"
            "export const KEY_ESCAPE = 27;\nexport const KEY_TAB = 9;\n"
        ),
        "docs/tls.md": (
            "# TLS\n\nPut the private key in `server.key`. It is a PEM file: it starts "
            "with `-----BEGIN PRIVATE KEY-----`,\nthen lines like `MIIEvQIBADANBg...`"
            ", and never belongs in the repository.\n"
        ),
        "src/pem.py": (
            "def is_private_key(text):\n    return text.lstrip().startswith((\n"
            '        "-----BEGIN PRIVATE KEY-----",\n'
            '        "-----BEGIN RSA PRIVATE KEY-----"))\n'
        ),
        "docs/aws.md": (
            "Run `aws configure` and enter your keys, for example\n"
            "AKIAIOSFODNN7EXAMPLE and wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.\n"
        ),
        "docs/security.md": (
            "GitHub tokens start with `ghp_`, Slack bot tokens with `xoxb-` "
            "and Google API keys with `AIza`.\nRotate them when they leak.\n"
        ),
        "tests/test_login.py": (
            'def test_login(client):\n    password = "hunter2"\n'
            '    assert client.login(username="alice", password=password)\n'
            f'    assert client.verify("{sample_jwt}")\n'
        ),
        "src/slack.py": (
            "def check_token(token):\n"
            '    if not token.startswith(("xoxb-", "xoxp-")):\n'
            '        raise ValueError("not a Slack token")\n'
        ),
        "config/defaults.yaml": (
            "database:\n  password: ${DB_PASSWORD}\n  password_file: /run/secrets/db\n"
            'vault:\n  token: "{{ vault_token }}"\n  api_key: <your-api-key>\n'
            '  secret_name: db-credentials\n  secret: true\n  client_secret: ""\n'
            "  private_key: /etc/ssl/private/app.key\n  passphrase: '****'\n"
            "llm:\n  max_tokens: 512\n  token: null\n  access_key: !Ref AccessKey\n"
        ),
        "locales/en.json": json.dumps(
            {
                "password": "Password",
                "forgot_password": "Forgot your password?",
                "reset_token_expired": "This link has expired.",
                "new_password": "New password",
                "password_min_length": 12,
                "api_key_help": "Paste your API key here.",
            },
            indent=2,
        ),
        "config/locales/en.yml": (
            "en:\n  password: Password\n"
            "  forgot_password: Forgot your password?\n"
            "  reset_token: This link expired after 2h.\n"
        ),
        "model/tokenizer_config.json": json.dumps(
            {
                "tokenizer_class": "BertTokenizer",
                "pad_token": "[PAD]",
                "unk_token": "[UNK]",
                "eos_token": "</s>",
                "mask_token": {"content": "<mask>"},
                "model_max_length": 512,
            },
            indent=2,
        ),
        "docker-compose.yml": (
            "services:\n  db:\n    image: postgres@sha256:"
            + hexes(64)
            + "\n    environment:\n      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}"
            "\n      POSTGRES_USER: app\n"
        ),
        ".github/workflows/ci.yml": (
            "jobs:\n  test:\n    steps:\n      - uses: actions/checkout@"
            + hexes(40)
            + "\n      - uses: actions/setup-python@"
            + hexes(40)
            + "\n        with:\n          token: ${{ secrets.GITHUB_TOKEN }}\n"
        ),
        ".pre-commit-config.yaml": (
            f"repos:\n  - repo: https://github.com/pre-commit/hooks\n"
            f"    rev: {hexes(40)}\n    hooks:\n"
            "      - id: detect-private-key\n"
        ),
        "deploy/k8s.yaml": (
            "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n"
            "        name: db\n        key: password\n"
        ),
        "package.json": json.dumps(
            {
                "name": "shop",
                "scripts": {"token": "node scripts/token.js", "keys": "node scripts/keys.js"},
            },
            indent=2,
        ),
        "infra/main.tf": (
            'variable "db_password" {\n  type      = string\n  sensitive = true\n}\n'
        ),
        "environment.yml": "name: shop\ndependencies:\n  - python=3.11\n",
        "src/env.py": "import os\n\nDEBUG = os.environ.get('DEBUG') == '1'\n",
        "src/crypto/private_key.py": (
            'class PrivateKey:\n    """An Ed25519 private key, held in memory only."""\n'
        ),
        "certs/README.md": "Certificates are issued by the platform team; none are kept here.\n",
    }


SECRETS_BY_NAME = secrets_by_name()
SECRETS_BY_CONTENT = secrets_by_content()
SECRETS = SECRETS_BY_NAME | SECRETS_BY_CONTENT
LOOK_ALIKES = look_alikes()


def build(root: Path) -> Path:
    for rel, content in (SECRETS | LOOK_ALIKES).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def test_the_corpus_is_big_enough_and_every_text_secret_carries_the_marker():
    assert len(SECRETS) >= 40 and len(LOOK_ALIKES) >= 15
    assert not set(SECRETS) & set(LOOK_ALIKES)
    without = [
        rel
        for rel, content in SECRETS.items()
        if isinstance(content, str) and MARKER not in content
    ]
    assert without == ["home/.ssh/id_ed25519", ".vault-token"]  # no room for a word in them
    assert not any(MARKER in content for content in LOOK_ALIKES.values())


def test_every_secret_is_skipped_and_every_look_alike_indexed(tmp_path):
    root = build(tmp_path)
    discovery = FileRules(root).walk()
    reasons = {s.rel: s.reason for s in discovery.skipped}
    assert set(reasons) <= set(SECRETS_BY_NAME)
    read = {}
    for entry in discovery.files:
        try:
            read[entry.rel] = load_text(entry)
        except SkipFile as skip:
            reasons[entry.rel] = skip.reason
    assert {rel: reasons.get(rel) for rel in SECRETS} == dict.fromkeys(SECRETS, "likely secret")
    assert set(read) == set(LOOK_ALIKES)
    # The names of the content-only secrets give nothing away: their content stopped them.
    assert set(SECRETS_BY_CONTENT) <= {f.rel for f in discovery.files}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_no_secret_is_found_by_a_search_after_indexing(tmp_path, embedder):
    root = build(tmp_path / "proj")
    result = index_project(root, embedder)
    assert not result.cancelled and result.files_indexed == len(LOOK_ALIKES)
    listed = {s["path"]: s["reason"] for s in project_status(root)["skipped"]}
    assert listed == dict.fromkeys(SECRETS, "likely secret")  # as `codelamp status` shows them
    lexical = Searcher(ProjectStore.open(root), None)
    assert lexical.search(MARKER, mode="lexical") == []
    assert lexical.search("load_secret", mode="lexical")[0].path == "app/secrets.py"
    assert lexical.search("KEY_ESCAPE", mode="lexical")[0].path == "web/keys.js"
