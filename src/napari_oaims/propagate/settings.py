"""Settings of a propagation, with the values chosen on procedural volumes.

Every value a propagation depends on is here, so that the ``propagate`` event of the log, which
records :meth:`PropagateSettings.to_dict`, is enough to redo it exactly (the augmentations are
drawn from ``seed``). ``research/propagation/README.md`` has the measurements behind the defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

#: Propagation methods: the student-teacher EMA adapter, the same loop without
#: adaptation, the nearest anchor's mask warped by 2D registration (Tian, Chen and Gao, algorithm 2), and the
#: nearest anchor's mask copied.
METHODS = ("ema", "frozen", "registration", "copy")
FLOWS = ("ilk", "tvl1")


@dataclass(frozen=True)
class PropagateSettings:
    """How a propagation runs (see the module docstring; units: working pixels unless said)."""

    # -- prompts derived from the previous slice's mask --------------------------------------
    #: One positive click at the deepest point of each component of the previous mask whose
    #: area is at least this share of the largest component's (0: every component; None: none).
    click_share: float | None = 0.15
    #: Move the previous mask onto the slice by 2D optical flow before it is the prior (follows
    #: objects that move between slices; the registration proxy as a prior).
    warp_prior: bool = True

    # -- stopping beyond the outermost anchors -------------------------------------------------
    #: The mask vanished: fewer pixels than this share of the area of the slice it came from ...
    min_area_share: float = 0.1
    #: ... or than this many pixels.
    min_area_px: int = 4
    #: Overlap (IoU) with the previous slice's mask below this: the object was lost or left.
    min_overlap: float = 0.3
    #: Area more than this many times the previous slice's: the mask leaked.
    max_growth: float = 2.0
    #: Image contrast between the mask and a ring around it below this share of the anchor's:
    #: the object has faded out (the model would otherwise redraw the prior on empty slices).
    min_contrast: float = 0.35
    #: The mean image inside the mask moved by more than this share of the clearest contrast the
    #: object showed, from one slice to the next: the mask entered another object (0: no such rule).
    max_mean_step: float = 0.6
    #: Dip: the mean image inside the mask fell by this share of the clearest contrast and rose
    #: again (``dip_rise``): a seam between two objects, where the object ends (0: no such rule).
    dip: float = 0.4
    #: ... the share of the clearest contrast by which it must rise again after the dip.
    dip_rise: float = 0.12
    #: Neck: the area fell to this share of the largest area since the anchor, then grew again
    #: by ``neck_regrow`` times: an object touching this one along the axis begins there.
    neck_share: float = 0.3
    neck_regrow: float = 1.3
    #: Waist: the object's signal per slice (area times contrast over the anchor's) fell to this
    #: share of its highest value since the anchor, then grew again by ``waist_regrow`` times: on a
    #: stack blurred along the axis, where the slice past an object's end is as bright as the end,
    #: the object stacked behind it begins there (0: no such rule).
    waist: float = 0.5
    waist_regrow: float = 1.2
    #: ... and by at least this share of its highest value (a smaller rise is the noise of a faint
    #: object).
    waist_rise: float = 0.06
    #: Plateau: the mask's area fell to this share of the largest area since the anchor and then
    #: stopped shrinking (each slice at least ``plateau_keep`` times the one before) on
    #: ``plateau_slices`` slices in a row: an object tapers to its end, and what stays on is
    #: something else (a wall of the same intensity the mask spilled onto); the slices from the
    #: first that stopped shrinking are dropped (0: no such rule).
    plateau: float = 0.25
    plateau_keep: float = 0.9
    plateau_slices: int = 2
    #: Where several of the rules above find the object's end on the same slice, the earliest end
    #: (nearest the anchor) wins: an object that ended at one slice did not end at a later one.
    #: False: the first rule asked wins (in the order neck, plateau, contrast, waist, intensity, dip).
    earliest_end: bool = True
    #: Each slice keeps the components of its mask that overlap the previous slice's (moved)
    #: mask on at least this share of their area ...
    continue_share: float = 0.2
    #: ... and what lies within ``reach_share`` of that mask's equivalent radius of it (at least
    #: ``reach_px`` pixels): the rest does not continue the object (``reach_share`` 0: no such cut).
    reach_share: float = 0.35
    reach_px: float = 3.0
    #: While the chain's mask is no larger than its anchor's (the object fades away from the
    #: anchor), the pixels of the anchor's footprint that became brighter than on the anchor by
    #: this share of the anchor's contrast hold another object that begins there (0: no such cut).
    brighter: float = 0.2
    #: Once propagated, an object never runs past its current extent along the axis when it is
    #: propagated again (corrections refine it where it is; a slice beyond is added by a click).
    keep_extent: bool = True
    #: Stop rules also apply between two anchors (default: fill the gap whatever happens).
    stop_between: bool = False
    #: Between two anchors, ``ema`` and ``frozen`` carry the slices from the anchor with the
    #: larger mask only, up to the other one. A model carrying a mask follows its object where it
    #: shrinks from slice to slice but not where it grows (the previous mask is its prior): a chain
    #: from the smaller anchor (an end of the object, or a slice one correction left too small)
    #: keeps near its anchor's area and, fused by distance, cuts the slices the larger anchor's
    #: chain had right (on a low-contrast lesion a chain from a 186 px end slice stayed at 250-290
    #: px through slices whose object grows to 1056 px). Masks of equal area, and ``registration``
    #: and ``copy``: both chains, fused by distance. False: both chains for every method.
    cross_from_larger: bool = True
    #: Whether the barrier's voxels (accepted objects, the ``barrier`` of a call) also cut the
    #: mask a chain carries to its next slice. False: the chain runs as it would without them and
    #: only the slices it stores leave them out (a chain cut by an earlier object's leak into this
    #: one dies early: on the procedural stacked nuclei, annotated one after another, True gives
    #: 3D Dice 0.6-2.5 points lower). The other objects of ``propagate_objects`` always cut it
    #: (they are settled slice by slice).
    barrier_steers: bool = False
    #: A structure beside the object that runs through the whole extent within the anchor's
    #: intensity band (a wall, :mod:`napari_oaims.propagate.through`) is kept out of the model's
    #: slices where the anchor's mask leaves it out (between two anchors: where the nearer one's
    #: mask does), and an outward chain left with little else ends. Off for a chain whose anchor
    #: has more than this share of its own mask running through (an object along the axis).
    #: 0: no such rule.
    through: float = 0.5

    # -- the student-teacher EMA adapter----------------------------------------------------------
    lr: float = 3e-3  # Adam on the student (grid 1e-4 .. 1e-2, research/propagation/README.md)
    steps: int = 1  # student steps per slice (3 cost 2-3x and gained nothing)
    #: Adapt (augmentations, student step, EMA) on every ``adapt_every``-th slice only; the
    #: slices between are predicted by the teacher as it is. 2 halves the cost (7x a click per
    #: slice instead of 13-16x) for the same clicks to 0.9 on the benchmark; first-propagation
    #: Dice 0.912 instead of 0.926 on the tuning suite. 1 for the best masks.
    adapt_every: int = 2
    #: Adapt only on slices where the teacher's share of uncertain foreground (probability in
    #: ``band``, before any augmentation) is at least this (0: on every ``adapt_every``-th slice).
    #: 0.1 skips about half the slices (median share 0.05-0.09 on the failure volumes): 2.7x a
    #: click per slice instead of 5.6x, first-propagation Dice 0.869 instead of 0.885 there.
    adapt_min_uncertain: float = 0.1
    alpha: float = 0.99  # teacher EMA momentum (the thesis's Table 4.5)
    lam: float = 2.0  # weight of the interactive loss on the anchors' prompts (the thesis's Table 4.2)
    temperature: float = 1.5  # on the teacher's logits before the mean over augmentations
    band: tuple[float, float] = (0.4, 0.6)  # "uncertain" mean probability
    ratio_cut: float = 0.3  # uncertain share of the object's box above which N = n_high
    n_low: int = 4
    n_high: int = 16  # the thesis's Table 4.4: a cap of 16 beats 32
    confident: float = 0.3  # pseudo-label kept where |p - 0.5| >= this ...
    max_std: float = 0.15  # ... and the augmentations' std of p is at most this
    max_anchors: int = 1  # anchors (nearest first) in the student's batch (2 measured the same, at more cost)
    #: Weight of a dense loss on the anchors seen as a propagation step would see them (their
    #: image, a perturbed copy of their mask as the prior, their mask as the target); 0: the
    #: seed's losses only (first-propagation Dice 0.899 at best, against 0.927 with 2.0).
    anchor_mask: float = 2.0
    seed: int = 0  # augmentations

    # -- end-caps --------------------------------------------------------------------------------
    #: A slice's mask smaller than this (pixels) is an end-cap of its object, from which the next
    #: slice may grow a lot: the overlap rule asks how much of the cap the next slice covers
    #: (not their IoU), the growth rule compares with this area, and what continues the cap may
    #: reach out to this area's radius. 0: no such rule. Many objects carried at once use the
    #: median area of their seeds (a seed that is a small cap of its object grows into it).
    cap_area: float = 0.0

    # -- windows ---------------------------------------------------------------------------------
    #: Smallest side (image pixels) of the steps' windows; None: the session's rule for the
    #: object's later windows (:meth:`napari_oaims.Session.later_window`). Many objects carried
    #: at once all use the rule's value at the start, so that each object's logged propagation
    #: redoes the same after the objects before it were accepted.
    min_window: int | None = None

    # -- registration proxy ---------------------------------------------------------------------
    flow: str = "ilk"
    flow_radius: int = 7  # ILK window radius (image pixels)
    flow_warps: int = 10  # ILK warping iterations (registration method and proxy)
    #: Moving the previous mask (``warp_prior``): crops larger than this are registered at this
    #: size, with this many warps (first-propagation Dice 0.897 against 0.893 at full size with 10
    #: warps for frozen, 0.901 against 0.902 for ema; the registration method itself lost 0.03).
    prior_flow_size: int | None = 48
    prior_flow_warps: int = 3

    def __post_init__(self) -> None:
        if self.flow not in FLOWS:
            raise ValueError(f"unknown flow {self.flow!r}; use one of {FLOWS}")
        if not (0 < self.alpha < 1 and self.lr >= 0 and self.steps >= 0 and self.temperature > 0):
            raise ValueError("need 0 < alpha < 1, lr >= 0, steps >= 0 and temperature > 0")
        if not (1 <= self.n_low <= self.n_high <= 64):
            raise ValueError(f"need 1 <= n_low <= n_high <= 64, got {self.n_low}, {self.n_high}")
        if not (0 <= self.min_overlap < 1 and self.max_growth > 1 and 0 <= self.min_area_share < 1):
            raise ValueError("need 0 <= min_overlap < 1, max_growth > 1 and 0 <= min_area_share < 1")
        if self.adapt_every < 1:
            raise ValueError("adapt_every must be >= 1")
        if self.max_anchors < 0:
            raise ValueError("max_anchors must be >= 0")
        if self.brighter < 0:
            raise ValueError(f"brighter must be >= 0 (a share of the anchor's contrast), got {self.brighter!r}")
        if not (0 <= self.waist < 1 and self.waist_regrow > 1 and self.waist_rise >= 0):
            raise ValueError(
                "need 0 <= waist < 1, waist_regrow > 1 and waist_rise >= 0, got "
                f"{self.waist!r}, {self.waist_regrow!r} and {self.waist_rise!r}"
            )
        if not (0 <= self.plateau < 1 and 0 < self.plateau_keep <= 1 and self.plateau_slices >= 1):
            raise ValueError(
                "need 0 <= plateau < 1, 0 < plateau_keep <= 1 and plateau_slices >= 1, got "
                f"{self.plateau!r}, {self.plateau_keep!r} and {self.plateau_slices!r}"
            )
        if isinstance(self.through, bool) or not isinstance(self.through, (int, float)) or not 0 <= self.through <= 1:
            raise ValueError(f"through must be a share between 0 and 1 (0: no such rule), got {self.through!r}")
        if self.cap_area < 0:
            raise ValueError(f"cap_area must be >= 0 pixels, got {self.cap_area!r}")
        if self.min_window is not None and (isinstance(self.min_window, bool) or int(self.min_window) < 8):
            raise ValueError(f"min_window must be None or a window side of at least 8 pixels, got {self.min_window!r}")
        flags = [f.name for f in fields(self) if f.type in ("bool", bool)]
        for name in flags:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["band"] = list(self.band)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "PropagateSettings":
        """Inverse of :meth:`to_dict` (unknown keys are an error: they would not be honoured)."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown propagation settings {unknown}; known: {sorted(known)}")
        if "band" in d:
            d["band"] = tuple(float(v) for v in d["band"])
        return cls(**d)

    def with_(self, **changes) -> "PropagateSettings":
        return replace(self, **changes) if changes else self


#: Settings a logged propagation may lack, with the value that leaves their rule out: a log that
#: does not name them was made without the rule, and replays as it was recorded.
UNLOGGED: dict[str, Any] = {
    "brighter": 0.0,
    "waist": 0.0,
    "earliest_end": False,
    "plateau": 0.0,
    "cross_from_larger": False,
    "barrier_steers": True,
    "through": 0.0,
}


def as_logged(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings of a logged propagation call (``extra["call"]["settings"]``) for replay: the
    keys of :data:`UNLOGGED` that the log does not name get the value that leaves their rule out."""
    return {**UNLOGGED, **settings}


def resolve(settings: "PropagateSettings | dict | None", overrides: dict[str, Any]) -> PropagateSettings:
    """Settings from a :class:`PropagateSettings`, a dict (as logged) or None, with ``overrides``."""
    if isinstance(settings, PropagateSettings):
        base = settings
    else:
        base = PropagateSettings.from_dict(settings)
    if overrides:
        known = {f.name for f in fields(PropagateSettings)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"propagate() got unknown settings {unknown}; known: {sorted(known)}")
        if "band" in overrides:
            overrides = {**overrides, "band": tuple(overrides["band"])}
        base = replace(base, **overrides)
    return base
