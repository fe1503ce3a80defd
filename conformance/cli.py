"""`juki-harness`: one command, subcommands registered by the modules that own them."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from conformance import catalogue as catalogue_mod
from conformance.errors import HarnessError

# Modules that register subcommands with `add_parser(subparsers)` (or `add_parsers`).
SUBCOMMAND_MODULES = (
    "conformance.lint",
    "conformance.samples",
    "conformance.cli_serve",
    "simulators.bench_serve",
    "conformance.certify",
    "conformance.cli_sut",
    "conformance.selftest",
    "reports.cli",
    "load.cli",
    "simulators.tls",
)


def _cmd_routes(args: argparse.Namespace) -> int:
    cat = catalogue_mod.load(args.catalogue) if args.catalogue else catalogue_mod.default()
    if args.json:
        print(json.dumps(cat.to_json(), ensure_ascii=False, indent=2))
        return 0
    print(f"Route catalogue {cat.version} ({cat.source})")
    print(f"\nActors ({len(cat.actors)})")
    for a in cat.actors.values():
        print(f"  {a.id:<13} {a.role:<9} {a.ja} / {a.en}")
    print(f"\nArrows ({sum(a.in_route for a in cat.arrows.values())} in routes, "
          f"{sum(not a.in_route for a in cat.arrows.values())} unused numbers)")
    for n, ar in cat.arrows.items():
        if not ar.in_route:
            print(f"  {n:>2}  (unused: in no route of the seed)")
            continue
        both = "↔" if ar.bidirectional else "→"
        print(f"  {n:>2}  {ar.src:>12} {both} {ar.dst:<12} {ar.line:<6} {ar.data_class:<6} {ar.ja} / {ar.en}")
    print(f"\nRoutes ({len(cat.routes)})")
    for r in cat.routes.values():
        print(f"  {r.id}  {r.chain:<28} {', '.join(r.functions)}")
    print(f"\nFunctions ({len(cat.functions)})")
    for f in cat.functions.values():
        print(f"  {f.id}  {cat.routes[f.route].chain:<28} {f.ja} / {f.en}  [{f.law or '-'}]")
    print(f"\nMessage types ({len(cat.message_types)})")
    for t in cat.message_types.values():
        arrows = ",".join(str(n) for n in t.arrows) or "-"
        print(f"  {t.id:<26} {t.mode:<8} arrows {arrows:<12} {t.schema:<16} {t.ja} / {t.en}")
    return 0


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("juki-harness")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="juki-harness",
        description="Gateway simulator and conformance harness for 既存住基システム (resident-record systems).",
    )
    p.add_argument("--version", action="version", version=f"juki-harness {_version()} "
                   f"(route catalogue {catalogue_mod.default().version}, SUT contract "
                   f"{catalogue_mod.default().counter_contract_version})")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("routes", help="print the route catalogue (actors, arrows, routes, functions, types)")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.add_argument("--catalogue", help="a catalogue file to check and print instead of the embedded one")
    r.set_defaults(func=_cmd_routes)
    for name in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        register = getattr(mod, "add_parsers", None) or getattr(mod, "add_parser", None)
        if register is not None:
            register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from conformance.masking import masked_console

    args = build_parser().parse_args(argv)
    with masked_console(raw=bool(getattr(args, "raw", False))):  # 個人番号/住民票コード never on a console
        try:
            return int(args.func(args))
        except BrokenPipeError:  # e.g. `juki-harness routes | head`
            sys.stderr.close()
            return 0
        except HarnessError as e:
            for f in e.findings:
                print(f.for_people(), file=sys.stderr)
            if getattr(args, "json", False):
                print(e.to_json())
            return 2

if __name__ == "__main__":
    sys.exit(main())
