"""Where an index lives: the app's own folder for a project, or a store the user names
with ``--store``: a local folder or ``s3://bucket/prefix`` on any S3-compatible service.

A named store is a shared index: one machine writes it (``codelamp index``/``watch``
with ``--store``), any number of others search it. The writer lock is a local file lock
keyed by the store's URI, so it keeps out a second writer on the same machine only; there
must be one writing machine (a CI job, a cluster). What a reader of a named store keeps
for itself (damage it found) goes to a local folder keyed by the URI.

Endpoint and credentials of an S3 store come from the usual AWS variables
(:data:`AWS_VARIABLES`); an ``http://`` endpoint is allowed as such. Nothing else is
contacted.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from app import paths
from app.core.errors import CodeLampError, UsageError

if TYPE_CHECKING:
    from lancedb import DBConnection

S3_SCHEME = "s3://"
# storage_options key -> the environment variables it is read from, first one set wins.
AWS_VARIABLES = {
    "aws_access_key_id": ("AWS_ACCESS_KEY_ID",),
    "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "aws_session_token": ("AWS_SESSION_TOKEN",),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "endpoint": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
}
# Old versions of a shared index's tables are kept this long after a newer commit, for
# readers still searching the one they opened (a reader that finds its version gone
# opens the newest instead). A local index prunes at once, as a reader there retries
# just the same and disk space matters more.
SHARED_KEEP = timedelta(minutes=10)
# How long the S3 client retries a failed request before giving up (object_store's
# default is 180 s): a dropped network becomes an error within this, not a hang.
RETRY_TIMEOUT_S = 20


class StoreUnavailable(CodeLampError):
    """The store cannot be reached, or refuses this machine; the index there is as it was."""


@dataclass(frozen=True)
class Location:
    uri: str  # what LanceDB connects to: a folder, or s3://bucket/prefix
    key: str  # names the writer lock
    notes: Path  # a local folder for what readers find (damage notes)
    shared: bool  # named with --store

    @classmethod
    def of_project(cls, root: Path) -> Location:
        """The app's own index of ``root``, in its data folder."""
        folder = paths.project_dir(root)
        return cls(str(folder / "index.lance"), paths.project_key(root), folder, shared=False)

    @classmethod
    def parse(cls, text: str) -> Location:
        """A ``--store`` value: ``s3://bucket/prefix`` or a local folder."""
        text = text.strip()
        if text.lower().startswith(S3_SCHEME):
            bucket, _, prefix = text[len(S3_SCHEME) :].partition("/")
            if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
                raise UsageError(
                    f"{text!r} does not name an S3 bucket; use s3://bucket/prefix "
                    "(a bucket name is 3-63 lowercase letters, digits, dots or dashes)."
                )
            uri = S3_SCHEME + "/".join([bucket, *(p for p in prefix.split("/") if p)])
        elif "://" in text:
            raise UsageError(f"{text!r}: a store is a local folder or s3://bucket/prefix.")
        elif not text:
            raise UsageError("--store needs a folder or an s3://bucket/prefix.")
        else:
            uri = str(Path(text).expanduser().resolve())
        key = "store-" + hashlib.sha256(uri.encode()).hexdigest()[:16]
        return cls(uri, key, paths.data_dir() / "stores" / key, shared=True)

    @property
    def remote(self) -> bool:
        return self.uri.startswith(S3_SCHEME)

    @property
    def folder(self) -> Path | None:
        """The local folder of the database; None for a remote store."""
        return None if self.remote else Path(self.uri)

    def storage_options(self) -> dict[str, str] | None:
        if not self.remote:
            return None
        options = {"client_retry_timeout": str(RETRY_TIMEOUT_S)}
        for key, names in AWS_VARIABLES.items():
            if value := _env(names):
                options[key] = value
        if options.get("endpoint", "").startswith("http://"):
            options["allow_http"] = "true"
        return options

    def connect(self) -> DBConnection:
        import lancedb

        try:
            return lancedb.connect(self.uri, storage_options=self.storage_options())
        except Exception as exc:
            raise (self.unavailable(exc) or exc) from exc

    def unavailable(self, exc: BaseException) -> StoreUnavailable | None:
        """A remote store's refusal or absence, as one line; None for anything else."""
        return unavailable(exc, self.uri) if self.remote else None

    @property
    def keep(self) -> timedelta:
        """How long old table versions stay (see :data:`SHARED_KEEP`)."""
        return SHARED_KEEP if self.remote else timedelta(0)


_PROBLEMS = (  # words in the S3 client's error -> what to say
    (("nosuchbucket",), "the bucket {bucket} does not exist; create it, or check the URI"),
    (
        (
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "accessdenied",
            "expiredtoken",
            "invalidtoken",
            "status: 403",
            "status: 401",
        ),
        "it refused the credentials; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
        "AWS_SESSION_TOKEN",
    ),
    (
        (
            "connect",
            "connection",
            "timed out",
            "timeout",
            "dns error",
            "error sending request",
            "broken pipe",
            "status: 5",
        ),
        "it cannot be reached (network or endpoint{endpoint}); the index there is as it "
        "was, try again when it is back",
    ),
)


def unavailable(exc: BaseException, uri: str) -> StoreUnavailable | None:
    seen = 0
    err: BaseException | None = exc
    while err is not None and seen < 8:
        text = str(err).lower()
        if re.search(r"\bs3\b", text):  # the S3 client's errors name their store
            for words, what in _PROBLEMS:
                if any(w in text for w in words):
                    endpoint = _env(AWS_VARIABLES["endpoint"])
                    detail = what.format(
                        bucket=uri[len(S3_SCHEME) :].split("/")[0],
                        endpoint=f" {endpoint}" if endpoint else "",
                    )
                    return StoreUnavailable(f"Cannot use the store {uri}: {detail}.")
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def _env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)
