"""The configuration reference, generated from the typed schema (``docs/configuration.md``).

    python -m cofi_sweep.sweep.config_reference > docs/configuration.md
    python -m cofi_sweep.sweep.config_reference --check docs/configuration.md

Every setting of a sweep space (:class:`~cofi_sweep.sweep.space.SweepSpace`) and of a job
(:class:`~cofi_sweep.core.config.JobConfig`, a space's ``job:``): its dotted key, type, default
and the comment that documents it in the dataclass. A test fails when the page and the schema
disagree, so the page cannot drift.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any

from cofi_sweep.core.config import JobConfig
from cofi_sweep.sweep.space import SweepSpace

HEADER = """# Configuration reference

Generated from the typed schema by `python -m cofi_sweep.sweep.config_reference` (a test fails
when this page and the schema disagree). A sweep space is a YAML file of the settings below; its
`job:` section is a job config, which `python -m cofi_sweep.prune --config` also takes on its
own. Every setting can be overridden on the command line as `key.sub=value`
(`job.cofi.learning_rate=3e-5`). An unknown key, a wrong type or an out-of-range value stops the
command before anything starts, with every problem listed and a did-you-mean hint.
"""


def field_comments(cls: type) -> dict[str, str]:
    """The comments of each field of ``cls``: the lines of ``#`` right above it and the one at
    its end, joined."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments = {}
    for node in ast.parse(source).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, i = [], node.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#"):
            above.insert(0, lines[i].strip().lstrip("#").strip())
            i -= 1
        last = lines[node.end_lineno - 1]
        trailing = last.split("  # ", 1)[1].strip() if "  # " in last else ""
        comments[node.target.id] = " ".join(p for p in above + [trailing] if p)
    return comments


def type_name(hint: Any) -> str:
    """A type as a user reads it in YAML terms."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(type_name(a) for a in args if a is not type(None)) + (
            " or null" if type(None) in args else "")
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {type_name(args[1])}" if args else "mapping"
    return {str: "string", int: "int", float: "float", bool: "bool"}.get(hint, getattr(
        hint, "__name__", str(hint)))


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def describe(cls: type, prefix: str, apart: tuple[str, ...] = ()
             ) -> list[tuple[str, list[str]]]:
    """Sections (title, table lines) of ``cls`` and of every dataclass it nests (but those
    named in ``apart``, which have a section of their own)."""
    hints, comments = typing.get_type_hints(cls), field_comments(cls)
    rows, nested = [], []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hint):
            if f.name not in apart:
                nested += describe(hint, f"{key}.")
            rows.append(f"| `{key}` | section | | see [`{key}`](#{key.replace('.', '')}) |")
            continue
        default = default_of(f)
        if dataclasses.is_dataclass(default):
            default = dataclasses.asdict(default)
        shown = json.dumps(default, default=str) if default not in (None, "") else (
            "null" if default is None else '""')
        doc = comments.get(f.name, "").replace("|", "\\|")
        rows.append(f"| `{key}` | {type_name(hint)} | `{shown}` | {doc} |")
    title = prefix.rstrip(".") or "top level"
    intro = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
    table = [intro, "", "| key | type | default | what it does |", "|---|---|---|---|", *rows]
    return [(title, table)] + nested


def render() -> str:
    parts = [HEADER]
    for name, cls, prefix, apart in (("Sweep space", SweepSpace, "", ("job",)),
                                     ("Job (a space's `job:`, or a job config on its own)",
                                      JobConfig, "job.", ())):
        parts.append(f"## {name}\n")
        for title, table in describe(cls, prefix, apart):
            parts.append(f"### {title}\n\n" + "\n".join(table) + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi_sweep.sweep.config_reference",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", metavar="PAGE", help="exit 1 when PAGE is not up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if Path(args.check).read_text() != text:
            print(f"{args.check} is out of date: python -m cofi_sweep.sweep.config_reference "
                  f"> {args.check}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
