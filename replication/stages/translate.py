"""`replication translate`: run a generator on a folder of new single images (no targets).

The command's arguments and run; the work is replication.inference.translate's."""

from __future__ import annotations

from replication.data.images import MAX_PIXELS
from replication.inference.translate import translate
from replication.stages.arguments import add_test_time_arguments


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", metavar="FILE", required=True,
                        help="a generator.pt or a released latest_net_G.pth; its settings "
                             "(image size, test-time mode) are the defaults")
    parser.add_argument("--in", dest="in_dir", metavar="DIR", required=True,
                        help=f"folder of single input images (.jpg/.png, any size up to "
                             f"{MAX_PIXELS:,} pixels; not A|B pairs: each image IS the input x)")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="output folder: one <name>.png per input, at the input's size "
                             "(replaced as a whole)")
    add_test_time_arguments(parser)


def run(args) -> int:
    summary = translate(args.checkpoint, args.in_dir, args.out, mode=args.mode,
                        batch_size=args.batch_size, device=args.device, seed=args.sample_seed)
    print(f"{summary['images']} images ({summary['images_per_second']}/s) -> {args.out}")
    return 0
