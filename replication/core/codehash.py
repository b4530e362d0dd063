"""Which package files a piece of code runs, and a hash of what they compute.

Two uses. dvc.yaml: each stage depends on the files its `replication <command>` module
imports, directly or not (`code_closure`; scripts/update_stage_deps.py writes the deps,
tests/stages/test_pipeline.py checks them). Checkpoints: a run records `weights_digest`, the hash
of the code that decides its weights — the networks, the losses, the step, the optimiser,
the data pipeline, the numerics — and nothing else, so that editing download, logging or
message code never restarts a run (issue 25), while editing the step always does.

The digest reads each file as Python syntax, not as bytes: comments, docstrings, import
lines, formatting and the text of error messages do not count, so moving a module to
another folder or rewording an error leaves every fingerprint as it was.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
# The dispatcher: it imports the chosen command's module and nothing a stage computes
# with, so a change to it re-runs no stage.
ENTRY_POINTS = ("cli.py", "__main__.py")

# Where a run's weights are decided: the step (training/trainer.py), the fused step
# (training/fusion.py) and the data pipeline (data/paired.py), through their imports ...
WEIGHT_MODULES = ("replication.training.trainer", "replication.training.fusion",
                  "replication.data.paired")
# ... but not into code that only reports, names, stores or checks: errors and their
# messages, atomic writes, paths, downloads, progress lines, loss logging, checkpoint
# files (the resume tests compare their tensors bit for bit), and params.yaml's reading
# and the dataset registry (a run's settings reach it as its config, which
# checkpoints.check_resumable compares key by key). config/schema.py stays in: its
# derived settings (the jitter size, the schedule's length) decide weights.
NOT_WEIGHTS = ("core/codehash.py", "core/errors.py", "core/fileio.py", "core/layout.py",
               "core/fetch.py", "core/progress.py", "training/monitor.py",
               "training/checkpoints.py", "config/params.py", "config/scoring.py",
               "config/datasets.py")


def code_closure(module: str, *, stop: tuple[str, ...] = (), package: Path = PACKAGE) -> list[str]:
    """The package files `module` (e.g. "replication.stages.train") imports, directly or
    not, itself included: every `import replication...`, at the top or inside a function.
    Files under a `stop` prefix are left out and not followed. Paths are relative to the
    package (`package`: another copy of it, for tests)."""
    seen, todo = set(), [module]
    while todo:
        path = _module_file(todo.pop(), package)
        if path is None or path in seen:
            continue
        relative = path.relative_to(package).as_posix()
        if stop and relative.startswith(stop):
            continue
        seen.add(path)
        todo += _imported_modules(path)
    return sorted(p.relative_to(package).as_posix() for p in seen
                  if p.relative_to(package).as_posix() not in ENTRY_POINTS)


def weight_code(package: Path = PACKAGE) -> list[str]:
    """The files whose code decides a run's weights (WEIGHT_MODULES less NOT_WEIGHTS)."""
    files = set()
    for module in WEIGHT_MODULES:
        files.update(code_closure(module, stop=NOT_WEIGHTS, package=package))
    return sorted(files)


def weights_digest(package: Path = PACKAGE) -> str:
    """sha256 over `weight_code`'s files as normalised syntax (see the module docstring),
    taken in the order of their content, not their paths, so that a file may move."""
    dumps = [computation(package / relative) for relative in weight_code(package)]
    digest = hashlib.sha256()
    for dump in sorted(d for d in dumps if d != EMPTY):  # an empty __init__.py computes nothing
        digest.update(hashlib.sha256(dump.encode()).digest())
    return digest.hexdigest()


EMPTY = "Module([], [])"


def computation(path: Path) -> str:
    """A file's syntax tree without docstrings, imports or error-message text, dumped."""
    tree = _WithoutWords().visit(ast.parse(path.read_text()))
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


class _WithoutWords(ast.NodeTransformer):
    def generic_visit(self, node):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            body[:] = [s for s in body if not _is_docstring_or_import(s)]
            if not body and not isinstance(node, ast.Module):
                body.append(ast.Pass())  # a def of docstring only: still a def
        return super().generic_visit(node)

    def visit_Raise(self, node):  # the exception's type counts, its message does not
        if isinstance(node.exc, ast.Call):
            node.exc = ast.Call(func=node.exc.func, args=[], keywords=[])
        return node


def _is_docstring_or_import(statement: ast.stmt) -> bool:
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return True
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _module_file(module: str, package: Path) -> Path | None:
    if module != "replication" and not module.startswith("replication."):
        return None
    base = package.joinpath(*module.split(".")[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from replication.metrics import fcn` names a module or a name in one
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    parents = {".".join(m.split(".")[:i]) for m in found for i in range(2, m.count(".") + 1)}
    return found + sorted(parents)  # a package's __init__ runs before its modules
