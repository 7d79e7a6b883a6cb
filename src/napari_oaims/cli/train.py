"""``oaims train`` and ``oaims synth``: pretraining on procedural data, synthetic validation sets."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _weights(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return values


def _tiles(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of tiles per side, at least 1, got {text!r}")
    return n


def _synth_settings(args: argparse.Namespace):
    """The synthetic-data settings given on the command line (``train`` and ``synth``)."""
    from napari_oaims.training.synth import SCENES, SynthSettings

    extra = {"kind_weights": args.kind_weights} if args.kind_weights else {}
    return SynthSettings(
        scene_p=tuple(getattr(args, f"{kind}_p") for kind in SCENES),
        level=(args.level_min, 1.0),
        p_lowres=args.lowres_p,
        p_blob_scene=args.blob_p,
        lowres_factor=args.lowres_factor,
        blob_blur_sigma=(0.0, args.blob_blur_max),
        **extra,
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from napari_oaims.core.progress import TqdmProgress
    from napari_oaims.training import pretrain

    cfg = pretrain.TrainConfig(
        steps=args.steps,
        batch_size=args.batch,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        init=str(args.init) if args.init else None,
        synth=_synth_settings(args),
        p_single_click=args.single_click_p,
        p_robot_rounds=args.robot_rounds_p,
        robot_rounds=args.robot_rounds,
        p_rim_click=args.rim_click_p,
        ema=args.ema,
    )
    with TqdmProgress(unit="step", desc="train", extra="train", mininterval=5) as bars:
        model = pretrain.train(cfg, args.out, resume=not args.restart, progress=bars, stop_after=args.stop_after)
    if args.export:
        command = "oaims " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        path = pretrain.export(model, args.out, cfg, args.export, command)
        print(f"exported weights to {path}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    if args.suite:
        from napari_oaims.evaluation.suites import write_suite

        written = write_suite(args.out, args.suite, args.seed, (args.tiles, args.tiles))
    else:
        from napari_oaims.training.synth import write_mosaic

        written = write_mosaic(args.out, args.tiles, args.seed, _synth_settings(args))
    print(f"wrote {written['image']} and labels.tif: {written['shape']}, {written['objects']} objects")
    return 0


#: The scene kinds of ``napari_oaims.training.synth.SCENES``, in that order, for the help text.
SCENE_HELP = {
    "nested": "objects nested in others, either polarity",
    "dark_in_texture": "dark structures in bright texture next to other dark ones",
    "thin": "thin, curved and branching objects",
    "touching": "touching cells of one intensity",
    "speckle": "smooth fields with speckle or Rician noise (ultrasound/MRI-like)",
    "histology": "colour-free histology-like textures",
    "gradient": "strong intensity gradients",
    "halo": "soft blobs with a glow past their edge (widefield nuclei)",
    "lesion": "low-contrast lesions in smooth textured tissue (CT/MRI-like)",
    "cavity": "elongated dark cavities in bright textured tissue",
}


def _synth_args(p: argparse.ArgumentParser) -> None:
    """The synthetic-data options shared by ``train`` and ``synth``."""
    p.add_argument(
        "--level-min",
        type=float,
        default=0.4,
        help="dimmest object brightness as a share of the contrast (synthetic data)",
    )
    p.add_argument(
        "--lowres-p", type=float, default=0.0, help="share of synthetic images rendered at low resolution and upsampled"
    )
    p.add_argument("--lowres-factor", type=float, default=3.0, help="largest upsampling factor of --lowres-p")
    p.add_argument(
        "--kind-weights",
        type=_weights,
        default=None,
        help="relative frequencies of ellipse,star,deformed,tube,branch objects, e.g. 0.5,0.3,0.1,0.05,0.05",
    )
    p.add_argument(
        "--blob-p",
        type=float,
        default=0.0,
        help="share of cell-like scenes (non-overlapping blobs, dim beside bright) in the synthetic data",
    )
    for kind, text in SCENE_HELP.items():
        p.add_argument(
            f"--{kind.replace('_', '-')}-p", type=float, default=0.0, help=f"share of scenes with {text} (default 0)"
        )
    p.add_argument(
        "--blob-blur-max",
        type=float,
        default=2.0,
        help="largest blur sigma (px) of the cell-like scenes (soft-edged widefield nuclei)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``oaims train`` and ``oaims synth``."""
    t = sub.add_parser("train", help="pretrain the click model on procedural data (reproduces the shipped weights)")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--out", type=Path, default=Path("runs/base"), help="checkpoint/log folder (resumes from it)")
    t.add_argument("--init", type=Path, default=None, help="start from these weights (fine-tuning stage)")
    _synth_args(t)
    t.add_argument(
        "--single-click-p", type=float, default=0.0, help="extra share of samples trained with the first click alone"
    )
    t.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="export an exponential moving average of the weights with this decay, e.g. 0.998 (0: off)",
    )
    t.add_argument(
        "--robot-rounds-p",
        type=float,
        default=0.0,
        help="share of batches corrected like the benchmark robot (one centre click per round on the largest error)",
    )
    t.add_argument("--robot-rounds", type=int, default=4, help="most robot-style correction rounds per batch")
    t.add_argument(
        "--rim-click-p",
        type=float,
        default=0.0,
        help="share of samples whose first correction is a click on a thin rim just outside or inside the object",
    )
    t.add_argument("--stop-after", type=int, default=None, help="stop at this step of the --steps schedule")
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    t.add_argument("--export", type=Path, default=None, help="write the final weights here (.safetensors + .json)")
    t.set_defaults(func=_cmd_train)

    v = sub.add_parser("synth", help="write a synthetic validation image and labels (TIFF) from the training generator")
    v.add_argument("--out", type=Path, required=True, help="folder for image.tif and labels.tif")
    v.add_argument(
        "--tiles", type=_tiles, default=4, help="tiles per side (128 px each; 256 px with --suite, 512 px for organs)"
    )
    v.add_argument("--seed", type=int, default=1000, help="use a seed that no training run used")
    v.add_argument(
        "--suite",
        default=None,
        choices=["cavities", "uniform", "lesions", "neighbours", "organs", "flooding"],
        help="write a procedural failure suite (evaluation.suites) instead of the training generator's mosaic",
    )
    _synth_args(v)
    v.set_defaults(func=_cmd_synth)
