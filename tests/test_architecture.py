"""The layout keeps its shape: no import cycles inside linkage/ and matchers/, and only
linkage/store/ reads or writes the store's tables.

Every import statement counts: at module level, inside functions and under TYPE_CHECKING, since
a cycle hidden in a function still ties two modules together for a reader and for a refactor.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("linkage", "matchers")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its text."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(filter(None, (resolve(a.name) for a in node.names)))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    target = f"{source}.{alias.name}"
                    deps.add(resolve(target) if target in modules else resolve(source))
        deps.discard(None)
        deps.discard(module)
        graph[module] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_inside_linkage_and_matchers():
    graph = import_graph()
    assert len(graph) > 50 and "linkage.jobs.run" in graph
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(
        " <-> ".join(c) + " (" + ", ".join(f"{a}->{sorted(graph[a] & set(c))}" for a in c) + ")"
        for c in found)


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# Only linkage/store/ reads or writes the store's tables. Names other modules may not import from
# the store package: its tables and metadata, and the helpers that build statements on a table or
# run inside a caller's transaction. Everything else (Store, StoreDamaged, Superseded, accounts,
# tokens, the review functions) is the store's interface.
STORE_HELPERS = {"pair_condition", "insert_decision"}
# What sqlalchemy builds statements with; catching sa.exc or parsing a URL is no query.
STATEMENT_BUILDERS = {
    "select", "insert", "update", "delete", "text", "func", "or_", "and_", "not_", "literal",
    "literal_column", "column", "table", "Table", "MetaData", "Column", "join", "outerjoin",
    "exists", "case", "cast", "bindparam", "union", "union_all", "values", "tuple_", "true",
    "false", "null", "distinct", "desc", "asc",
}
SQL_CALLS = {"execute", "exec_driver_sql", "executemany"}  # anywhere: running SQL
CONNECTING = {"connect", "begin"}  # on a store's engine (`engine`, `store.engine`)
# Modules that query a database that is not the store.
OTHER_DATABASES = {"linkage/jobs/ingest.py": "reads a configured SQL source (sources: url/table)"}


def _store_only_names() -> set[str]:
    import sqlalchemy as sa

    from linkage.store import tables

    found = {name for name, value in vars(tables).items()
             if isinstance(value, (sa.Table, sa.MetaData))}
    assert {"runs", "scored_pairs", "decisions", "review_leases", "metadata"} <= found
    return found | STORE_HELPERS


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def store_table_use(path: Path, text: str, forbidden: set[str]) -> list[str]:
    """Where a module outside linkage/store/ touches the store's tables: importing a table,
    ``metadata`` or a statement helper from the store package (or the ``tables`` module), naming
    one through an imported store module, building statements with sqlalchemy, or running SQL."""
    found: list[tuple[int, str]] = []
    store_modules: set[str] = set()  # local names bound to linkage.store modules
    sqlalchemy_names: set[str] = set()  # local names bound to sqlalchemy (modules)
    tree = ast.parse(text)
    for node in ast.walk(tree):
        where = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "linkage.store.tables":
                    found.append((where, "imports linkage.store.tables"))
                elif alias.name.startswith("linkage.store"):
                    store_modules.add(alias.asname or alias.name)
                if alias.name == "sqlalchemy" or alias.name.startswith("sqlalchemy."):
                    sqlalchemy_names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            for alias in node.names:
                if module.startswith("linkage.store"):
                    if alias.name in forbidden or alias.name == "tables" or (
                            module == "linkage.store.tables" and alias.name == "*"):
                        found.append((where, f"imports {alias.name} from {module}"))
                    else:
                        store_modules.add(alias.asname or alias.name)
                if module == "sqlalchemy" or module.startswith("sqlalchemy."):
                    if alias.name in STATEMENT_BUILDERS or alias.name == "*":
                        found.append((where, f"imports {alias.name} from {module}"))
                    sqlalchemy_names.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        where = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            head = dotted.split(".")[0]
            if (node.attr in forbidden and (head in store_modules
                                            or dotted.startswith("linkage.store."))):
                found.append((where, f"uses {dotted}"))
            if node.attr in STATEMENT_BUILDERS and head in sqlalchemy_names:
                found.append((where, f"builds a statement with {dotted}"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = _dotted(node.func.value)
            if node.func.attr in SQL_CALLS:
                found.append((where, f"runs SQL: {receiver or '...'}.{node.func.attr}()"))
            elif node.func.attr in CONNECTING and receiver.split(".")[-1:] == ["engine"]:
                found.append((where, f"opens the store: {receiver}.{node.func.attr}()"))
    return [f"{path}:{line} {what}" for line, what in sorted(set(found))]


def test_only_the_store_package_touches_the_stores_tables():
    forbidden = _store_only_names()
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative.startswith("linkage/store/") or relative in OTHER_DATABASES:
                continue
            found += store_table_use(Path(relative), path.read_text(encoding="utf-8"), forbidden)
    assert not found, "outside linkage/store/:\n" + "\n".join(found)


def test_the_store_check_finds_each_kind_of_table_use():
    forbidden = {"runs", "metadata", "pair_condition"}
    cases = {
        "from linkage.store import Store, runs": 1,
        "from linkage.store.tables import metadata": 1,
        "from linkage.store import tables": 1,
        "import linkage.store.tables as t": 1,
        "from linkage.store import database\nx = database.runs": 1,
        "from linkage.store import pair_condition": 1,
        "import sqlalchemy as sa\nq = sa.select(1)": 1,
        "from sqlalchemy import select": 1,
        "def f(store):\n    with store.engine.connect() as conn:\n        conn.execute(q)": 2,
        "def f(conn):\n    conn.exec_driver_sql('delete from runs')": 1,
        # the store's interface, and sqlalchemy for its errors
        "from linkage.store import DECISIONS, Store, StoreDamaged, Superseded, audit": 0,
        "import sqlalchemy as sa\ntry:\n    pass\nexcept sa.exc.IntegrityError:\n    pass": 0,
        "def f(store):\n    store.engine.dispose()": 0,
    }
    for text, expected in cases.items():
        assert len(store_table_use(Path("m.py"), text, forbidden)) == expected, text
