"""One slice of a propagation: the model's step from the previous slice's mask (``ema`` and
``frozen``), the anchor's mask carried (``registration`` and ``copy``), and the image measures
the stop rules read, sharing the model copies and caches of one run (:class:`Context`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from napari_oaims.core import guidance
from napari_oaims.core.prompts import Prompt
from napari_oaims.propagate.anchors import Anchor, Barrier, Key
from napari_oaims.propagate.masks import Sparse, contrast, deepest_points
from napari_oaims.propagate.settings import PropagateSettings

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session


class Context:
    """What the steps of one propagation share: the session, settings, model copies, caches."""

    def __init__(
        self, session: "Session", method: str, settings: PropagateSettings, anchors: dict[Key, Anchor], barrier: Barrier
    ):
        self.session = session
        self.source = session.source
        self.anchors = anchors
        self.barrier = barrier
        self.method = method
        self.settings = settings
        self.teacher = None
        if method == "ema":
            from napari_oaims.propagate.ema import StudentTeacher

            self.teacher = StudentTeacher(session.engine, settings)
        self.slices_seen = 0  # slices predicted so far (ema adapts on every adapt_every-th)
        self._anchor_samples: dict[tuple, Any] = {}
        self._anchor_views: dict[tuple, tuple] = {}
        self._contrast: dict[tuple, tuple[float | None, float | None]] = {}
        self._through: dict[tuple, Any] = {}

    # model methods ------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.teacher is not None:
            return self.teacher.predict(x)
        return self.session.engine.predict(x)

    def anchor_sample(self, key):
        """The anchor's own prompts on its window, its mask there and their CCG points."""
        if key not in self._anchor_samples:
            from napari_oaims.adapt.oaims import ccg_points, work_target
            from napari_oaims.propagate.ema import AnchorSample

            anchor = self.anchors[key]
            window = self.session.window(key, anchor.prompts, anchor.box, min_size=self.settings.min_window)
            sample = None
            if window is not None:
                points = [pt for p in anchor.prompts for pt in ccg_points(p, window)]
                plane = anchor.sparse.plane(self.source.plane_shape)
                sample = AnchorSample(
                    self.session.encode(key, anchor.prompts, window), work_target(plane, window), points
                )
            self._anchor_samples[key] = sample
        return self._anchor_samples[key]

    def warped(self, key, prev_key, prev: Sparse) -> Sparse:
        """The previous slice's mask moved onto plane ``key`` by 2D optical flow between the two
        slices (on a window around it): the prior that follows a moving object."""
        from napari_oaims.propagate.registration import flow_args, warp_mask

        window = self.session.window(key, [], prev.box, min_size=self.settings.min_window)
        moving = self.source.crop(prev_key, window)
        fixed = self.source.crop(key, window)
        if float(fixed.max() - fixed.min()) < 1e-6 or float(moving.max() - moving.min()) < 1e-6:
            return prev
        prob = warp_mask(moving, prev.window(window), fixed, **flow_args(self.settings, prior=True))
        ys, xs, wy, wx = window.clip(self.source.plane_shape)
        return Sparse((ys.start, xs.start, ys.stop, xs.stop), prob[wy, wx]).threshold()

    def model_step(
        self, key, prev: Sparse, rng, anchors: list, prev_key=None, cap: bool = False
    ) -> tuple[Sparse, dict]:
        """Predict plane ``key`` from the previous slice's mask ``prev`` (probabilities). ``cap``:
        ``prev`` is an end-cap the object grows from; where the model, led by so small a prior,
        finds (almost) nothing, the click alone asks for the object there, as a first click does."""
        h, w = self.source.plane_shape
        if self.settings.warp_prior and prev_key is not None:
            moved = self.warped(key, prev_key, prev)
            prev = moved if moved.box is not None else prev
        pts = deepest_points(prev, self.settings.click_share)
        prompts = [Prompt("click", True, p[None]) for p in pts]
        window = self.session.window(key, prompts, prev.box, min_size=self.settings.min_window)
        passes, led = 0, True
        while True:
            passes += 1
            crop = self.source.crop(key, window)
            ys, xs, wy, wx = window.clip((h, w))
            inside_img = crop[wy, wx]
            if inside_img.size == 0 or float(inside_img.max() - inside_img.min()) < 1e-6:
                return Sparse.empty(), {"passes": passes, "blank": True, "moved": prev}
            prior = guidance.resize_window(prev.window(window) * led, guidance.WORK_SIZE)
            x = guidance.encode(
                guidance.resize_window(crop, guidance.WORK_SIZE),
                window.to_work(pts).reshape(-1, 2),
                np.zeros((0, 2)),
                prior,
            )
            logits = self.predict(x[None])[0]
            pred = guidance.resize_window(logits, window.size)[wy, wx] > 0
            if cap and led and np.count_nonzero(pred) < max(self.settings.min_area_px, prev.area):
                led = False  # the cap's prior led to less than the cap: ask with the click alone
                continue
            larger = guidance.grown_window(window, pred, (h, w), prev.box, passes)
            if larger is None:
                break
            window = larger
        info: dict[str, Any] = {"passes": passes, "window": [window.y0, window.x0, window.size], "moved": prev}
        if self.teacher is not None:
            self.slices_seen += 1
            if (self.slices_seen - 1) % self.settings.adapt_every == 0 and self.uncertain(logits):
                info.update(self.teacher.adapt(x, logits, rng, anchors))
                logits = self.teacher.predict(x[None])[0]
        prob = guidance.sigmoid(guidance.resize_window(logits, window.size)[wy, wx])
        return Sparse((ys.start, xs.start, ys.stop, xs.stop), prob.astype(np.float32)), info

    def uncertain(self, logits: np.ndarray) -> bool:
        """Whether the teacher is unsure enough of a slice to adapt on it: the share of its
        foreground whose probability lies in ``band`` is at least ``adapt_min_uncertain``."""
        s = self.settings
        if s.adapt_min_uncertain <= 0:
            return True
        p = guidance.sigmoid(logits / s.temperature)
        fg = np.count_nonzero(p > 0.5)
        band = np.count_nonzero((p >= s.band[0]) & (p <= s.band[1]))
        return band >= s.adapt_min_uncertain * max(fg, 1)

    def through(self, anchor_key, keys: list) -> tuple[Sparse, int] | None:
        """What runs through the stack beside the anchor's object (cached per anchor and line):
        :func:`napari_oaims.propagate.through.through_map`."""
        k = (anchor_key, tuple(keys))
        if k not in self._through:
            from napari_oaims.propagate.through import through_map

            self._through[k] = through_map(self, anchor_key, keys)
        return self._through[k]

    # anchor-mask methods ------------------------------------------------------------------
    def anchor_view(self, key):
        """The window around an anchor's mask, its image crop and its mask there."""
        if key not in self._anchor_views:
            sparse = self.anchors[key].sparse
            window = self.session.window(key, [], sparse.box, min_size=self.settings.min_window)
            self._anchor_views[key] = (window, self.source.crop(key, window), sparse.window(window))
        return self._anchor_views[key]

    def carry_step(self, key, anchor_key) -> tuple[Sparse, dict]:
        """The anchor's mask on plane ``key``: copied, or warped by 2D registration."""
        from napari_oaims.propagate.registration import flow_args, warp_mask

        window, anchor_crop, anchor_mask = self.anchor_view(anchor_key)
        crop = self.source.crop(key, window)
        ys, xs, wy, wx = window.clip(self.source.plane_shape)
        if float(crop[wy, wx].max() - crop[wy, wx].min()) < 1e-6:
            return Sparse.empty(), {"blank": True}
        if self.method == "copy":
            prob = anchor_mask
        else:
            prob = warp_mask(anchor_crop, anchor_mask, crop, **flow_args(self.settings))
        return Sparse((ys.start, xs.start, ys.stop, xs.stop), prob[wy, wx].astype(np.float32)), {}

    # stopping -----------------------------------------------------------------------------
    def contrast_of(self, key, mask: Sparse) -> tuple[float | None, float | None]:
        """Mean normalised image inside ``mask`` minus a ring around it, and the mean inside, on
        plane ``key``."""
        if mask.box is None:
            return None, None
        y0, x0, y1, x1 = mask.box
        margin = int(np.clip(round(0.2 * max(y1 - y0, x1 - x0)), 2, 12)) + 2
        size = max(y1 - y0, x1 - x0) + 2 * margin
        window = guidance.Window(y0 - margin, x0 - margin, size)
        image = self.source.crop(key, window)
        inside = mask.window(window) > 0.5
        return contrast(image, inside), float(image[inside].mean())

    def anchor_contrast(self, key) -> tuple[float | None, float | None]:
        if key not in self._contrast:
            self._contrast[key] = self.contrast_of(key, self.anchors[key].sparse)
        return self._contrast[key]
