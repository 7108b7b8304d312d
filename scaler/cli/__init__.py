"""`ebbtide` command line. Each subcommand lives in its own module of this package, exposing
`register(subparsers)` (cheap: no heavy imports) and `run(args) -> int` (imports what it needs).

Errors caused by input (EbbtideError) print `error: ...` and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from policies.errors import EbbtideError

# Subcommand name -> module. Order is the order of `ebbtide --help`.
COMMANDS: dict[str, str] = {
    "demo": "scaler.cli.demo",
    "backtest": "scaler.cli.backtest",
    "policy": "scaler.cli.policy",
    "replay": "scaler.cli.replay",
    "run": "scaler.cli.run",
    "report": "scaler.cli.report",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ebbtide",
        description="Post-sale capacity autoscaler and cost optimizer for live-stream e-commerce.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        mod = importlib.import_module(module)
        p = mod.register(sub)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    mod = importlib.import_module(args._module)
    try:
        return int(mod.run(args) or 0)
    except EbbtideError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `ebbtide ... | head`: the reader went away; not an error of ours.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
