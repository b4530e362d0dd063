"""`replication download`: fetch, verify and install a dataset (a synthetic stand-in where data.source says so).

The command's arguments and run; the work is replication.data.download's."""

from __future__ import annotations

import argparse
import json

from replication.config.datasets import (
    BASE_URL,
    DATASETS,
    PAPER_DATASETS,
    VERIFIED_MARKER,
)
from replication.config.params import Params
from replication.config.schema import DownloadConfig
from replication.core import fetch
from replication.core.errors import DownloadError
from replication.data.cityscapes_build import LABELS_ZIP, PHOTOS_ZIP
from replication.data.download import DEFAULT_ROOT, download_dataset
from replication.stages.arguments import add_params_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=[*DATASETS, "all"],
                        help=f"dataset to install; 'all' = {', '.join(PAPER_DATASETS)}")
    parser.add_argument("--root", default=DEFAULT_ROOT,
                        help="folder that receives <name>/ (default: %(default)s)")
    parser.add_argument("--mirror", default=None,
                        help=f"base URL that serves <name>.tar.gz instead of {BASE_URL} "
                             f"(or set ${fetch.MIRROR_ENV})")
    parser.add_argument("--archive", default=None,
                        help="install from this local <name>.tar.gz instead of downloading "
                             "(<root>/.downloads/<name>.tar.gz is picked up by itself)")
    parser.add_argument("--retries", type=int, default=5,
                        help="extra tries after a failed or cut download (default: %(default)s)")
    parser.add_argument("--cityscapes-zips", default=None,
                        help=f"folder with the official {PHOTOS_ZIP} and {LABELS_ZIP}: build "
                             "cityscapes from them (default: datasets/cityscapes/ if it "
                             "holds them)")
    parser.add_argument("--skip-count-check", action="store_true",
                        help="install even if a split's image count differs from the registry")
    parser.add_argument("--keep-archive", action="store_true",
                        help="keep the downloaded .tar.gz under <root>/.downloads/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_params_argument(parser, default=None,
                        help="params file (what the DVC stage passes): its `download` section, "
                             "and at a scale whose data.source is synthetic (smoke) the "
                             "stand-in is written instead of downloading")


def install_synthetic(names, root, size: int, scale: str) -> int:
    """data.source = synthetic: the deterministic stand-ins, at the scale's image size."""
    from replication.data.synthetic import make_synthetic
    for name in names:
        path = make_synthetic(name, root, size=size)
        print(f"{name}: synthetic stand-in ({size} px, scale {scale}) -> {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    names = PAPER_DATASETS if args.name == "all" else (args.name,)
    if args.archive and len(names) > 1:
        raise DownloadError("--archive installs one dataset; name it instead of 'all'")
    settings = DownloadConfig()
    if args.params:
        params = Params.load(args.params)
        data = params.scale_data()
        if data.source == "synthetic":
            return install_synthetic(names, args.root, data.image_size, params.scale)
        settings = params.section(DownloadConfig, "download")
    for name in names:
        path = download_dataset(
            name, args.root, mirror=args.mirror, retries=args.retries,
            progress=not args.no_progress, archive=args.archive,
            cityscapes_zips=args.cityscapes_zips, check_counts=not args.skip_count_check,
            keep_archive=args.keep_archive, label_resample=settings.cityscapes_label_resample)
        record = json.loads((path / VERIFIED_MARKER).read_text())
        print(f"{name}: {path} {record['counts']} ({record.get('origin', 'official zips')})")
        if name == "cityscapes" and not record.get("label_ids"):
            print(f"cityscapes: no gtFine labelIds (built from the archive); the exact FCN "
                  f"score needs {LABELS_ZIP} and {PHOTOS_ZIP} via --cityscapes-zips")
    return 0
