"""The ``oaims`` command line."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _synth_settings(args: argparse.Namespace):
    """The synthetic-data settings given on the command line (``train`` and ``synth``)."""
    from napari_oaims.training.synth import SynthSettings

    extra = {"kind_weights": args.kind_weights} if args.kind_weights else {}
    return SynthSettings(level=(args.level_min, 1.0), p_lowres=args.lowres_p, p_blob_scene=args.blob_p,
                         lowres_factor=args.lowres_factor, blob_blur_sigma=(0.0, args.blob_blur_max), **extra)


def _cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from napari_oaims.training import pretrain as train

    settings = _synth_settings(args)
    cfg = train.TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, seed=args.seed, threads=args.threads,
                            init=str(args.init) if args.init else None, synth=settings,
                            p_single_click=args.single_click_p, ema=args.ema)
    bar = tqdm(total=cfg.steps, desc="train", unit="step", mininterval=5)

    def progress(step: int, total: int, loss: float) -> None:
        bar.n = step
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        bar.refresh()

    model = train.train(cfg, args.out, resume=not args.restart, progress=progress, stop_after=args.stop_after)
    bar.close()
    if args.export:
        command = "oaims " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        path = train.export(model, args.out, cfg, args.export, command)
        print(f"exported weights to {path}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    import numpy as np
    import tifffile

    from napari_oaims.training.synth import mosaic

    image, labels = mosaic(np.random.default_rng(args.seed), args.tiles, _synth_settings(args))
    args.out.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(args.out / "image.tif", image)
    tifffile.imwrite(args.out / "labels.tif", labels)
    print(f"wrote {args.out / 'image.tif'} and labels.tif: {image.shape}, {labels.max()} objects")
    return 0


def _weights(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oaims", description="napari-oaims: interactive segmentation that learns from clicks")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="pretrain the click model on procedural data (reproduces the shipped weights)")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--out", type=Path, default=Path("runs/base"), help="checkpoint/log folder (resumes from it)")
    t.add_argument("--init", type=Path, default=None, help="start from these weights (fine-tuning stage)")
    t.add_argument("--level-min", type=float, default=0.4,
                   help="dimmest object brightness as a share of the contrast (synthetic data)")
    t.add_argument("--lowres-p", type=float, default=0.0,
                   help="share of synthetic images rendered at low resolution and upsampled")
    t.add_argument("--lowres-factor", type=float, default=3.0, help="largest upsampling factor of --lowres-p")
    t.add_argument("--kind-weights", type=_weights, default=None,
                   help="relative frequencies of ellipse,star,deformed,tube,branch objects, e.g. 0.5,0.3,0.1,0.05,0.05")
    t.add_argument("--single-click-p", type=float, default=0.0,
                   help="extra share of samples trained with the first click alone")
    t.add_argument("--blob-p", type=float, default=0.0,
                   help="share of cell-like scenes (non-overlapping blobs, dim beside bright) in the synthetic data")
    t.add_argument("--blob-blur-max", type=float, default=2.0,
                   help="largest blur sigma (px) of the cell-like scenes (soft-edged widefield nuclei)")
    t.add_argument("--ema", type=float, default=0.0,
                   help="export an exponential moving average of the weights with this decay, e.g. 0.998 (0: off)")
    t.add_argument("--stop-after", type=int, default=None, help="stop at this step of the --steps schedule")
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    t.add_argument("--export", type=Path, default=None, help="write the final weights here (.safetensors + .json)")
    t.set_defaults(func=_cmd_train)

    v = sub.add_parser("synth", help="write a synthetic validation image and labels (TIFF) from the training generator")
    v.add_argument("--out", type=Path, required=True, help="folder for image.tif and labels.tif")
    v.add_argument("--tiles", type=int, default=4, help="tiles per side (128 px each)")
    v.add_argument("--seed", type=int, default=1000, help="use a seed that no training run used")
    v.add_argument("--level-min", type=float, default=0.4)
    v.add_argument("--lowres-p", type=float, default=0.0)
    v.add_argument("--lowres-factor", type=float, default=3.0)
    v.add_argument("--kind-weights", type=_weights, default=None)
    v.add_argument("--blob-p", type=float, default=0.0, help="share of cell-like scenes")
    v.add_argument("--blob-blur-max", type=float, default=2.0, help="largest blur sigma of the cell-like scenes")
    v.set_defaults(func=_cmd_synth)

    from napari_oaims import evaluation as bench
    from napari_oaims.evaluation import demo
    from napari_oaims.store import replay

    demo.register(sub)
    bench.register(sub)
    replay.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``oaims``; bad input (missing or unreadable files, wrong shapes) prints one clear line
    and returns 2 instead of a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, TypeError, PermissionError) as err:
        print(f"oaims {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
