"""Rewrite the replication/ code deps of every dvc.yaml stage from layout.code_closure.

Run from the repository root after changing imports: `python scripts/update_stage_deps.py`;
tests/test_pipeline.py fails while dvc.yaml misses a file a stage runs.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package, whatever is installed
from replication import layout  # noqa: E402

# the module each stage's command runs (dvc.yaml `cmd`)
STAGE_MODULES = {"inputs": "replication.data.inputs", "download": "replication.data.download",
                 "train": "replication.train", "generate": "replication.generate",
                 "weights": "replication.metrics.weights", "segmenter": "replication.metrics.segmenter",
                 "score": "replication.metrics.score", "tables": "replication.tables",
                 "notebooks": "replication.report"}

def deps(module):
    files = layout.code_closure(module)
    out, folders = [], {}
    for f in files:
        parts = f.split("/")
        if len(parts) > 1: folders.setdefault(parts[0], []).append(f)
        else: out.append(f"replication/{f}")
    for folder, fs in folders.items():
        allpy = sorted(p.relative_to(layout.PACKAGE).as_posix() for p in (layout.PACKAGE / folder).glob("*.py"))
        out += [f"replication/{folder}"] if sorted(fs) == allpy else [f"replication/{f}" for f in fs]
    return sorted(out)

text = (ROOT / "dvc.yaml").read_text()
lines = text.split("\n")
out, stage, i = [], None, 0
while i < len(lines):
    line = lines[i]
    m = re.match(r"^  (\w+):$", line)
    if m: stage = m.group(1)
    dm = re.match(r"^(\s+)deps:$", line)
    if dm and stage in STAGE_MODULES:
        out.append(line); i += 1
        indent = dm.group(1) + "  - "
        kept = []
        while i < len(lines) and lines[i].startswith(indent):
            item = lines[i][len(indent):]
            if not (item.startswith("replication/") and (item.endswith(".py") or "." not in item.split("/")[-1])):
                kept.append(item)
            i += 1
        for item in kept + deps(STAGE_MODULES[stage]):
            out.append(indent + item)
        continue
    out.append(line); i += 1
(ROOT / "dvc.yaml").write_text("\n".join(out))
