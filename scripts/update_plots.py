"""Rewrite the top-level `plots` block of dvc.yaml from params.yaml and the results tables.

`dvc plots show` then draws one chart per loss and table, overlaying the table's
experiments (each experiment's first seed: logs/<experiment>/seed-<k>/plots/metrics/
train/<loss>.tsv, columns step and <loss>). A table whose experiments all have charts
already (Fig. 7d, the per-dataset FID/KID, PSNR/SSIM tables) gets none; the lr (constant
under the paper's policy) and the GAN loss of L1-only runs (logged as 0) are left out.
DVC's templating cannot loop over the experiment grid in top-level plots, hence a script.

Run from the repository root after changing `experiments` in params.yaml:
`python scripts/update_plots.py`; tests/test_pipeline.py fails while the block is stale.
The block is the end of dvc.yaml, from the PLOTS_HEADER line on.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package, whatever is installed
from replication.errors import ConfigError  # noqa: E402
from replication.params import experiment_dict, load_params  # noqa: E402
from replication import tables  # noqa: E402

PLOTS_HEADER = "# `dvc plots show`: one chart per loss and table"
LOSSES = ("loss_D", "loss_G_gan", "loss_G_l1", "D_real", "D_fake")  # DVCLive series, lr left out
GAN_ONLY = {"loss_D", "loss_G_gan", "D_real", "D_fake"}  # not logged (or 0) without a D


def _series_file(params: dict, experiment: str, loss: str) -> str | None:
    try:
        cfg = experiment_dict(params, experiment)
    except ConfigError:
        return None
    if loss in GAN_ONLY and (cfg.get("loss") or {}).get("gan") == "none":
        return None
    if cfg.get("released"):  # the authors' network: not trained here, no loss curves
        return None
    seed = (cfg.get("seeds") or [0])[0]
    return f"logs/{experiment}/seed-{seed}/plots/metrics/train/{loss}.tsv"


def plot_definitions(params_path: str | Path = ROOT / "params.yaml",
                     paper_path: str | Path = tables.PAPER_NUMBERS) -> list[dict]:
    """dvc.yaml top-level `plots`: [{"<table>/<loss>": {title, x, y: {file: loss}}}]."""
    params, paper = load_params(params_path), tables.load_paper_numbers(paper_path)
    tables.check_compare_to(params, params_path)
    specs = tables.table_specs(params, paper)
    experiments = params.get("experiments") or {}
    charted: set[str] = set()
    out = []
    for table_id, spec in specs.items():
        names = [r["experiment"] for r in spec["rows"] if r["experiment"] in experiments]
        names = list(dict.fromkeys(names))
        if not names or set(names) <= charted:
            continue
        charted |= set(names)
        head = spec["task"]["dataset"] if spec.get("all_experiments") \
            else spec["title"].split(" — ")[0]
        for loss in LOSSES:
            files = {f: loss for f in (_series_file(params, e, loss) for e in names) if f}
            if files:
                out.append({f"{table_id}/{loss}": {"title": f"{loss} — {head}", "x": "step",
                                                   "y": files}})
    return out


class _Indented(yaml.SafeDumper):
    """Lists indented under their key, as in the rest of dvc.yaml."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def render_block(definitions: list[dict]) -> str:
    body = yaml.dump({"plots": definitions}, Dumper=_Indented, sort_keys=False,
                     allow_unicode=True, width=1000)
    return (f"{PLOTS_HEADER}, overlaying the table's experiments (their first\n"
            "# seed). Generated from params.yaml by scripts/update_plots.py: do not edit by hand.\n"
            + body)


def update(dvc_yaml: Path = ROOT / "dvc.yaml", params_path: Path = ROOT / "params.yaml") -> None:
    text = dvc_yaml.read_text()
    at = text.find(PLOTS_HEADER)
    if at < 0:  # the hand-written block this script replaced: from its comment on
        at = text.find("# `dvc plots show`")
    if at < 0:
        at = text.find("\nplots:") + 1 or len(text)
    dvc_yaml.write_text(text[:at] + render_block(plot_definitions(params_path)))


if __name__ == "__main__":
    update()
