"""The house rules of the layout (issue 10), checked on the source itself with `ast`.

No services: these read files and, for the Flower check, import the app in a subprocess.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "worker", "producer")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules this one imports anywhere (module level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _type_checking_only(node)
        for n in ast.walk(node)
    }
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1]
                    + ([base] if base else [])
                )
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # A package's __init__ is imported before any of its modules: not an edge back.
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycle_between_project_modules() -> None:
    assert find_cycle(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_config_imports_neither_side() -> None:
    for name, deps in import_graph().items():
        if name.split(".")[0] == "config":
            assert not {d for d in deps if d.split(".")[0] in ("worker", "producer")}, name


def test_producer_never_imports_worker_code() -> None:
    for name, deps in import_graph().items():
        if name.split(".")[0] == "producer":
            assert not {d for d in deps if d.split(".")[0] == "worker"}, name


def test_only_the_task_module_and_the_worker_command_import_the_app() -> None:
    importers = {name for name, deps in import_graph().items() if "worker.app" in deps}
    assert importers <= {"worker.tasks", "worker.commands.worker"}


def test_no_module_takes_its_settings_from_the_app() -> None:
    # Hooks receive (app, settings); the task reads them from the child's context.
    for name, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "worker.app":
                assert "settings" not in [a.name for a in node.names], name


def test_worker_holds_subpackages_and_at_most_six_modules() -> None:
    modules = sorted(p.name for p in (ROOT / "worker").glob("*.py"))
    assert len(modules) <= 6, modules
    assert len([p for p in (ROOT / "worker").iterdir() if (p / "__init__.py").exists()]) >= 5


def test_every_hook_module_is_in_the_one_list_and_says_its_process() -> None:
    from worker.hooks import HOOKS

    on_disk = {module_name(p) for p in (ROOT / "worker" / "hooks").glob("*.py")}
    assert set(HOOKS) == on_disk - {"worker.hooks"}
    assert len(HOOKS) == len(set(HOOKS))
    for name in HOOKS:
        path = ROOT / (name.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        first_line = (ast.get_docstring(tree) or "").splitlines()[0]
        assert first_line.startswith(("Parent:", "Child:", "Parent and child:")), name
        installs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "install"]
        assert installs and [a.arg for a in installs[0].args.args] == ["app", "settings"], name


def test_no_module_connects_a_signal_at_import_time_but_the_one_install_trigger() -> None:
    triggers = []
    for path in (ROOT / "worker").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                decorators = [ast.unparse(d) for d in node.decorator_list]
                connects = [d for d in decorators if d.endswith(".connect")]
                triggers += [(module_name(path), d) for d in connects]
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                assert "connect" not in ast.unparse(node.value.func), path
    # celeryd_init is sent only by the `celery worker` command, before the pool forks.
    assert triggers == [("worker.app", "celeryd_init.connect")]


FLOWER_LIKE = """
import os, sys
from kombu.transport import redis as redis_transport
from worker.app import app
from worker import hooks
# What `celery -A worker.app flower` does with the app before serving: load it, finalize it.
app.loader.import_default_modules()
app.finalize(auto=True)
print(repr(hooks.installed()))
print(getattr(redis_transport.Channel._brpop_read, "nightshift_tolerant", False))
print(os.environ.get("PYTORCH_MPS_HIGH_WATERMARK_RATIO"))
print(app.conf.worker_pool_restarts)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers")))
"""


def test_loading_the_app_as_flower_does_installs_no_worker_hook() -> None:
    env = {"PATH": "/usr/bin:/bin", "NIGHTSHIFT_REDIS_URL": "redis://127.0.0.1:1/0"}
    out = subprocess.run(
        [sys.executable, "-c", FLOWER_LIKE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "False", "None", "False", "[]"]


def test_the_worker_installs_every_hook_in_order_when_celeryd_init_fires() -> None:
    code = (
        "from celery.signals import celeryd_init\n"
        "from worker.app import app\n"
        "from worker import hooks\n"
        "celeryd_init.send(sender='test', instance=None, conf=app.conf, options={})\n"
        "print(repr(hooks.installed()))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "NIGHTSHIFT_REDIS_URL": "redis://127.0.0.1:1/0"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    from worker.hooks import HOOKS

    assert out.stdout.strip() == repr(list(HOOKS))
