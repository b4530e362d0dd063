"""`replication generate`: write G's output for every test image (paper test-time behaviour).

The command's arguments and run; the work is replication.inference.generate's."""

from __future__ import annotations

from pathlib import Path

from replication.config.params import dataset_settings, parse_overrides
from replication.config.schema import ExperimentConfig, deep_merge, from_dict
from replication.core import layout
from replication.core.errors import ConfigError
from replication.core.fileio import write_json
from replication.inference import test_time
from replication.inference.generate import (
    check_same_task,
    generate,
    read_checkpoint,
)
from replication.stages.arguments import (
    add_experiment_arguments,
    add_test_time_arguments,
    config_from_args,
    folder_settings,
    seed_option,
)


def checkpoint_config(args) -> ExperimentConfig:
    """`--checkpoint G`: the checkpoint's own settings, pointed at `--data DIR` if given,
    with --set applied; task settings that contradict the checkpoint's are an error."""
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


def add_arguments(parser) -> None:
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


def manifest(summary: dict) -> dict:
    """What a generated folder holds, without how long it took: the folder is a DVC
    output that the score stage depends on, and a rerun that writes the same images
    must leave it unchanged (the rate is printed instead)."""
    return {k: v for k, v in summary.items() if k not in ("seconds", "images_per_second")}


def run(args) -> int:
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
        write_json(out.with_suffix(".json"), manifest(summary))  # generated/<exp>/seed-<k>.json
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
            write_json(folder.with_suffix(".json"), {**manifest(summary), "variant": variant.name})
            print(f"{cfg.name} seed {seed} {variant.name} ({variant.describe()}) -> {folder}")
    return 0
