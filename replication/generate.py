"""Test-time generation: one PNG per test image, named after the input file, and the
results page index.html beside them (input | output | target per file, results_page.py).

Paper behaviour by default (docs/method.md, §3.3 of the paper): G runs exactly as in training —
dropout on, BatchNorm normalising with the test batch's own statistics. `mode="eval"`
switches both off, `mode="no_dropout"` dropout only. An experiment may ask for the
test-time study (params generate.modes / generate.samples, replication/test_time.py):
its other variants go to generated/<experiment>/test-time/<variant>/. Always the whole
split (the PyTorch code's default of 50 images is a known pitfall, docs/pitfalls.md). The
dropout draws are seeded, so a given seed reproduces the same images and different seeds
give different samples.

It accepts the authors' released PyTorch generators (`latest_net_G.pth`,
models/reference.py) as well as this code's generator.pt (translate.py uses the same
loader on plain single images). Progress: a line every 30 s of wall time (not per image),
so logs under `dvc repro` stay short.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from replication import checkpoints, results_page, test_time
from replication.config import DataConfig, ExperimentConfig, check_count
from replication.data.paired import TestPairs, split_folder, to_uint8
from replication.errors import CheckpointError, ConfigError
from replication.fast import fp32_exact
from replication.fileio import atomic_dir, write_json
from replication.devices import resolve_device
from replication.models import build, reference
from replication.monitor import ProgressLines



def read_checkpoint(path: str | Path) -> tuple[dict, ExperimentConfig, bool]:
    """(our-format state dict, config, released): a generator.pt, or else the authors'
    released U-Net state dict (recognised by its keys, models/reference.py)."""
    try:
        snapshot = checkpoints.load(path, checkpoints.GENERATOR_FORMAT)
    except CheckpointError as err:
        state = _released_state_dict(path)
        if state is None:
            raise
        if not reference.is_reference_state_dict(state):
            raise CheckpointError(f"{err}, nor a released pytorch-CycleGAN-and-pix2pix U-Net "
                                  "generator (latest_net_G.pth)") from None
        try:
            cfg = reference.reference_config(state, _released_name(path))
            return reference.convert_state_dict(state), cfg, True
        except CheckpointError as problem:
            raise CheckpointError(f"{path}: {problem}") from None
    return snapshot["state_dict"], checkpoints.config_of(snapshot, path), False


def _released_state_dict(path: str | Path) -> dict | None:
    """The file's content when it is a plain dict of tensors (how the reference saves)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # checkpoints.load has already said why the file is unusable
        return None
    if isinstance(obj, dict) and "format" not in obj and obj and \
            all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    return None


def _released_name(path: str | Path) -> str:
    # the reference keeps <name>/latest_net_G.pth, e.g. facades_label2photo_pretrained/
    path = Path(path)
    return path.parent.name if path.stem.startswith("latest_net") and path.parent.name \
        else path.stem


def open_generator(path: str | Path, device: torch.device
                   ) -> tuple[torch.nn.Module, ExperimentConfig, bool]:
    """G with its weights on `device`, its config, and whether it is a released file."""
    state_dict, cfg, released = read_checkpoint(path)
    G, _ = build(cfg)
    checkpoints.load_weights(G, state_dict, path, "generator")
    return G.to(device), cfg, released


def load_generator(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, ExperimentConfig]:
    G, cfg, _ = open_generator(path, device)
    return G, cfg


def generate(checkpoint: str | Path, out_dir: str | Path, *, data: DataConfig | None = None,
             split: str | None = None, mode: str | None = None, batch_size: int | None = None,
             device: str = "auto", seed: int = 0, max_images: int | None = None,
             name: str | None = None) -> dict:
    """Write G(x) for every image of the split into `out_dir` (replaced atomically).

    `data`, `split`, `mode`, `batch_size` default to the values stored in the checkpoint.
    max_images: the first N images only (generate.max_images, a printed deviation).
    name: how progress lines call this run (default: the output folder's name).
    """
    dev = resolve_device(device)
    G, cfg, released = open_generator(checkpoint, dev)
    data = data or cfg.data
    check_same_task(cfg.data, data, checkpoint, released)
    split = split or cfg.generate.split or data.test_split
    mode = mode or cfg.generate.mode
    batch_size = cfg.generate.batch_size if batch_size is None else batch_size
    if mode not in TEST_MODES:
        raise ConfigError(f"mode={mode!r} must be one of {list(TEST_MODES)} (paper: 'train')")
    check_count("--batch-size", batch_size)
    pairs = TestPairs(data, split, max_images)
    if max_images is not None:
        print(f"deviation: generate.max_images={max_images}: the first {len(pairs)} {split} "
              "images only (paper: the whole split)")
    set_test_mode(G, mode)
    torch.manual_seed(seed)
    began = time.perf_counter()
    progress = ProgressLines(f"generate {name or Path(out_dir).name}", len(pairs), unit="images")
    # the output folder: absent, empty or an earlier `generate` output; never the inputs
    inputs = [checkpoint, split_folder(data, split)]
    with atomic_dir(out_dir, "generate", inputs=inputs) as tmp, torch.no_grad(), \
            fp32_exact():  # no TF32 convolutions
        for indices, x, _ in pairs.batches(batch_size, dev):
            images = to_uint8(G(x)).permute(0, 2, 3, 1).cpu().numpy()
            for i, image in zip(indices, images):
                save_png(image, tmp / f"{pairs.names[i]}.png")
            progress.update(indices[-1] + 1)
        rows = [results_page.Row(pair.name, (inp, results_page.Image(Path(out_dir) / f"{name}.png"),
                                             target))
                for name, pair in zip(pairs.names, pairs.folder.files)
                for inp, target in [results_page.pair_halves(pair, data.direction)]]
        results_page.write(tmp, Path(out_dir), f"{name or Path(out_dir).name}: {split} split, "
                           f"test mode {mode}, batch {batch_size}",
                           ("input", "output", "target"), rows)
    seconds = time.perf_counter() - began
    return {"checkpoint": str(checkpoint), "split": split, "images": len(pairs),
            "max_images": max_images,
            "mode": mode, "batch_size": batch_size, "seed": seed, "device": str(dev),
            "seconds": round(seconds, 2), "images_per_second": round(len(pairs) / seconds, 2)}


TEST_MODES = ("train", "eval", "no_dropout")


def set_test_mode(G: torch.nn.Module, mode: str) -> None:
    """train (paper §3.3): dropout on, BatchNorm on the batch's statistics; eval: both
    off (running statistics); no_dropout: dropout off, batch statistics kept."""
    G.train(mode != "eval")
    if mode == "no_dropout":
        for module in G.modules():
            if isinstance(module, torch.nn.Dropout):
                module.eval()


# What the generator was trained to do; generating with other values is a different task.
# A released file's weights fix its image size (its depth), not its direction.
TASK_KEYS = ("direction", "image_size")
RELEASED_TASK_KEYS = ("image_size",)


def check_same_task(trained: DataConfig, wanted: DataConfig, checkpoint,
                    released: bool = False) -> None:
    for key in RELEASED_TASK_KEYS if released else TASK_KEYS:
        if getattr(wanted, key) != getattr(trained, key):
            raise ConfigError(f"data.{key}={getattr(wanted, key)!r} but {checkpoint} was trained "
                              f"with {getattr(trained, key)!r}; drop the override (the "
                              "checkpoint's own settings are the default)")


def checkpoint_config(args) -> ExperimentConfig:
    """`--checkpoint G`: the checkpoint's own settings, pointed at `--data DIR` if given,
    with --set applied; task settings that contradict the checkpoint's are an error."""
    from replication.config import deep_merge, from_dict
    from replication.params import (config_from_args, dataset_settings, folder_settings,
                                    parse_overrides)
    _, trained, released = read_checkpoint(args.checkpoint)
    if args.experiment:
        cfg = config_from_args(args)
    else:
        merged = trained.to_dict()
        if args.data:
            folder = Path(args.data)
            if released:  # no direction of its own: the dataset's default (paper's task)
                known = dataset_settings(folder.name).get("data", {})
                merged = deep_merge(merged, {"data": {k: known[k] for k in
                                                      ("direction", "test_split") if k in known}})
            merged = deep_merge(merged, folder_settings(folder))
        cfg = from_dict(ExperimentConfig, deep_merge(merged, parse_overrides(args.overrides)))
    check_same_task(trained.data, cfg.data, args.checkpoint, released)
    if released:
        print(f"{args.checkpoint}: a released pytorch-CycleGAN-and-pix2pix U-Net "
              f"({cfg.data.image_size} px, generator.dropout: pytorch_code); "
              f"data.direction={cfg.data.direction} (set --set data.direction=... to match "
              "the model: e.g. map2sat BtoA, sat2map AtoB on maps)")
    return cfg


def save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image).save(path, format="PNG")


# --- command line -------------------------------------------------------------------

def add_arguments(parser) -> None:
    from replication.params import add_experiment_arguments, seed_option
    add_experiment_arguments(parser)
    parser.add_argument("--seed", type=seed_option, action="append",
                        help="generate for this training seed only (repeatable); default: all")
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="a generator.pt (or a released latest_net_G.pth) to use instead "
                             "of the experiment's run folders (then --out is required)")
    parser.add_argument("--out", metavar="DIR", help="output folder for --checkpoint")
    parser.add_argument("--split", help="split to translate (default: the dataset's test split, "
                                        "all images)")
    add_test_time_arguments(parser)


def add_test_time_arguments(parser) -> None:
    """How G runs at test time (generate and translate): the checkpoint's settings unless
    changed here."""
    from replication.params import count_option
    parser.add_argument("--mode", choices=TEST_MODES,
                        help="train = paper: dropout on and BatchNorm with test-batch statistics; "
                             "eval = dropout off, running statistics; no_dropout = dropout off, "
                             "test-batch statistics (default: the checkpoint's)")
    parser.add_argument("--batch-size", type=count_option("--batch-size"),
                        help="test batch size (default: the checkpoint's, paper: 1; BatchNorm "
                             "in train mode sees the test batch)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--sample-seed", type=int, default=0,
                        help="seed of the dropout draws (default 0; another seed = another sample)")


def run(args) -> int:
    from replication import layout
    from replication.params import config_from_args
    if args.checkpoint:
        if not args.out:
            raise ConfigError("--checkpoint needs --out DIR for the generated images")
        cfg = checkpoint_config(args)
        split = args.split or cfg.generate.split or cfg.data.test_split
        summary = generate(args.checkpoint, args.out, data=cfg.data, split=split,
                           mode=args.mode, batch_size=args.batch_size, device=args.device,
                           seed=args.sample_seed, max_images=cfg.generate.max_images)
        print(f"{summary['images']} images -> {args.out}")
        return 0
    cfg = config_from_args(args)
    layout.check_experiment_name(cfg.name, "--data folder" if args.data else "experiment")
    study = test_time.variants(cfg.generate)
    if study and (args.mode or args.batch_size or args.sample_seed or args.split):
        raise ConfigError(f"{cfg.name} asks for the test-time study (generate.modes / "
                          "generate.samples), which runs with the experiment's own settings: "
                          "drop --mode / --batch-size / --sample-seed / --split, or set them "
                          "in params.yaml")
    seeds = args.seed or list(cfg.seeds)
    for seed in seeds:
        checkpoint = layout.generator_path(layout.run_dir(cfg.name, seed))
        out = layout.generated_dir(cfg.name, seed)
        summary = generate(checkpoint, out, data=cfg.data, split=args.split, mode=args.mode,
                           batch_size=args.batch_size, device=args.device, seed=args.sample_seed,
                           max_images=cfg.generate.max_images, name=f"{cfg.name} seed {seed}")
        write_json(out.with_suffix(".json"), summary)  # generated/<experiment>/seed-<k>.json
        print(f"{cfg.name} seed {seed}: {summary['images']} images "
              f"({summary['images_per_second']}/s) -> {out}")
        if seed == seeds[0] and study:
            print(test_time.cost_line(cfg.name, cfg.generate, len(seeds), summary["images"]))
        for variant in study:
            if test_time.is_main(variant, cfg.generate):
                continue
            folder = test_time.folder(cfg.name, variant, cfg.generate, seed)
            summary = generate(checkpoint, folder, data=cfg.data, mode=variant.mode,
                               batch_size=variant.batch_size, device=args.device,
                               seed=variant.sample_seed, max_images=cfg.generate.max_images,
                               name=f"{cfg.name} seed {seed} {variant.name}")
            write_json(folder.with_suffix(".json"), {**summary, "variant": variant.name})
            print(f"{cfg.name} seed {seed} {variant.name} ({variant.describe()}) -> {folder}")
    return 0
