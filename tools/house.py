"""The shape of the house (docs/architecture.md), checked: ``python -m tools.house``.

It prints each check and exits 1 when one fails:

- at most 12 modules directly in ``cityops/`` (the rest live in rooms);
- every room has a docstring and an ``__all__`` of the modules other rooms may use, and other
  rooms import only those;
- ``dashboards/`` and ``ingest/`` never open a connection or a transaction (no psycopg, no
  ``.connection()``, ``.transaction()``, ``.session()``): they call ``cityops`` services;
- Dash callbacks and routes are module-level functions (nothing decorated inside a function in
  ``dashboards/``), callbacks at most 40 lines and page helpers at most 60;
- the import contracts of pyproject.toml hold (``lint-imports``: the layers of the rooms, the
  composition root, pure models, and no import cycle, function-level imports included).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_TOP_MODULES = 12
MAX_CALLBACK_LINES = 40
MAX_FUNCTION_LINES = 60
CONNECTION_USE = re.compile(r"\bpsycopg\b|\.connection\(|\.transaction\(|\.session\(")


def _sources(folder: str) -> Iterator[Path]:
    yield from sorted((ROOT / folder).rglob("*.py"))


def _code_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The lines of a module outside its docstrings and comments."""
    tree = ast.parse(path.read_text())
    docs = {n.body[0].lineno for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(getattr(n.body[0], "value", None), ast.Constant)}
    skip: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Expr) and n.lineno in docs and n.end_lineno is not None:
            skip.update(range(n.lineno, n.end_lineno + 1))
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if number not in skip:
            yield number, line.split("#", 1)[0]


def top_modules() -> list[str]:
    """The modules directly in cityops/ (besides its __init__)."""
    return sorted(p.name for p in (ROOT / "cityops").glob("*.py") if p.name != "__init__.py")


def rooms() -> dict[str, list[str]]:
    """Each room of cityops/ and the modules its ``__all__`` makes public."""
    found = {}
    for init in sorted((ROOT / "cityops").glob("*/__init__.py")):
        tree = ast.parse(init.read_text())
        public: list[str] = []
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                public = list(ast.literal_eval(node.value))
        found[init.parent.name] = public if ast.get_docstring(tree) else []
    return found


def room_problems() -> list[str]:
    """Rooms without a docstring or ``__all__``, and imports of another room's own modules."""
    public = rooms()
    problems = [f"cityops/{room}/__init__.py: no docstring or no __all__"
                for room, names in public.items() if not names]
    for path in _sources("cityops"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        room = parts[1] if len(parts) > 2 else None
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                    "cityops."):
                continue
            target = node.module.split(".")  # type: ignore[union-attr]
            if target[1] == room or target[1] not in public:
                continue
            names = [target[2]] if len(target) > 2 else [a.name for a in node.names]
            for name in names:
                if name not in public[target[1]]:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: cityops."
                                    f"{target[1]}.{name} is that room's own module")
    return problems


def connection_uses() -> list[str]:
    """Where dashboards/ or ingest/ touch psycopg or a connection."""
    return [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            for folder in ("dashboards", "ingest") for path in _sources(folder)
            for number, line in _code_lines(path) if CONNECTION_USE.search(line)]


def callback_problems() -> list[str]:
    """Functions defined inside functions, and long callbacks or helpers, in dashboards/."""
    problems = []
    for path in _sources("dashboards"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
            inner = [n.name for n in ast.walk(node) if isinstance(n, ast.FunctionDef)
                     and n is not node and n.decorator_list]
            if inner:
                problems.append(f"{where}: declares {', '.join(inner)} inside it (a callback"
                                " or a route belongs at module level)")
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            callback = any(isinstance(d, ast.Call) and isinstance(d.func, ast.Name)
                           and d.func.id == "callbacks" for d in node.decorator_list)
            limit = MAX_CALLBACK_LINES if callback else MAX_FUNCTION_LINES
            if lines > limit:
                problems.append(f"{where}: {lines} lines (at most {limit})")
    return problems


def import_contracts() -> tuple[bool, str]:
    """``lint-imports`` on pyproject.toml's contracts: (all kept, its summary lines)."""
    run = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
                         cwd=ROOT, capture_output=True, text=True)
    summary = [line for line in run.stdout.splitlines() if line.endswith(("KEPT", "BROKEN"))]
    return run.returncode == 0, "\n".join(summary) or run.stdout + run.stderr


def main() -> int:
    """Print every check; 1 when one fails."""
    failed = False

    def report(ok: bool, title: str, details: list[str] | str = "") -> None:
        nonlocal failed
        failed |= not ok
        print(f"{'ok ' if ok else 'NO '} {title}")
        lines = details.splitlines() if isinstance(details, str) else details
        for line in lines:
            print(f"      {line}")

    top = top_modules()
    report(len(top) <= MAX_TOP_MODULES,
           f"{len(top)} modules directly in cityops/ (at most {MAX_TOP_MODULES})", top)
    report(True, "rooms: " + ", ".join(rooms()))
    problems = room_problems()
    report(not problems, "each room has a docstring and an __all__, and others use only it",
           problems)
    uses = connection_uses()
    report(not uses, "no psycopg or connection in dashboards/ or ingest/", uses)
    problems = callback_problems()
    report(not problems, "Dash callbacks are module-level and short", problems)
    kept, summary = import_contracts()
    report(kept, "import contracts (lint-imports): layers, composition root, no cycle", summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
