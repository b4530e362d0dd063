"""Rewrite the replication/ code deps of every dvc.yaml stage from codehash.code_closure,
then write each study's pipeline (studies/<name>/dvc.yaml) from the root one.

Run from the repository root after changing imports or dvc.yaml:
`python scripts/update_stage_deps.py`; tests/stages/test_pipeline.py fails while dvc.yaml misses
a file a stage runs or a study's dvc.yaml differs from what this writes.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package, whatever is installed
from replication.core import codehash  # noqa: E402
# the module each stage's command runs (dvc.yaml `cmd`)
STAGE_MODULES = {"inputs": "replication.stages.inputs", "download": "replication.stages.download",
                 "train": "replication.stages.train", "generate": "replication.stages.generate",
                 "weights": "replication.stages.weights", "segmenter": "replication.stages.segmenter",
                 "score": "replication.stages.score", "tables": "replication.stages.tables",
                 "plots": "replication.stages.plots", "notebooks": "replication.stages.notebook"}

def deps(module):
    files = codehash.code_closure(module)
    out, folders = [], {}
    for f in files:
        parts = f.split("/")
        if len(parts) > 1: folders.setdefault(parts[0], []).append(f)
        else: out.append(f"replication/{f}")
    for folder, fs in folders.items():
        allpy = sorted(p.relative_to(codehash.PACKAGE).as_posix() for p in (codehash.PACKAGE / folder).glob("*.py"))
        out += [f"replication/{folder}"] if sorted(fs) == allpy else [f"replication/{f}" for f in fs]
    return sorted(out)

def with_code_deps(text: str) -> str:
    """The root dvc.yaml with each stage's replication/ deps replaced by its code closure."""
    lines, out, stage, i = text.split("\n"), [], None, 0
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
    return "\n".join(out)



# --- studies/<name>/: the same stages, run inside the study's folder ----------------------
# DVC runs a dvc.yaml's stages in its own folder with its own params.yaml, so a study's
# data/, runs/, metrics/ and tables/ stay apart from the root's; only the paths to the
# code and the notebook template climb back to the repository root.
STUDY_HEADER = ("# Generated from the repository's dvc.yaml by scripts/update_stage_deps.py:"
                " do not edit.\n# The stages run in this folder, with its params.yaml.\n")


def study_pipeline(root_text: str, depth: int = 2) -> str:
    up = "../" * depth
    text = root_text.split("\nplots:")[0].rstrip("\n") + "\n"  # the root's charts name its logs
    text = re.sub(r"(- )(replication/)", rf"\g<1>{up}\g<2>", text)
    text = text.replace("notebooks/results.ipynb", f"{up}notebooks/results.ipynb")
    return STUDY_HEADER + text


if __name__ == "__main__":
    root = with_code_deps((ROOT / "dvc.yaml").read_text())
    (ROOT / "dvc.yaml").write_text(root)
    for params in sorted((ROOT / "studies").glob("*/params.yaml")):
        (params.parent / "dvc.yaml").write_text(study_pipeline(root))
