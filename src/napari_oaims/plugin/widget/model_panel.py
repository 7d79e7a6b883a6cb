"""The *Model* panel: the engine's device, online adaptation, object size, edges and weights.

Torch is imported only when the model is first needed, in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QGridLayout, QLabel, QPushButton, QWidget

from napari_oaims.plugin.widget.jobs import Job

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine
    from napari_oaims.plugin.widget.current import Current
    from napari_oaims.plugin.widget.jobs import JobQueue

#: Adaptation modes offered in the dropdown: (label, adapter name).
ADAPTATION_MODES = (
    ("off", "none"),
    ("after each click (MI)", "mi"),
    ("after each object (PI)", "pi"),
    ("both (OAIMS)", "oaims"),
)
#: The adaptation a new annotator starts with: learning on (MI and PI), each update checked by
#: the guard (:mod:`napari_oaims.adapt.guard`), which rolls back any that makes the answers worse.
DEFAULT_ADAPTATION = "oaims"
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Object sizes offered in the dropdown: (label, diameter in px, "auto", or None for the model's
#: default first window). A diameter sets the first click's window
#: (:func:`napari_oaims.core.guidance.window_for_diameter`).
OBJECT_SIZES = (
    ("model default", None),
    ("auto (learnt from accepted objects)", "auto"),
    ("about 10 px across", 10),
    ("about 25 px across", 25),
    ("about 50 px across", 50),
    ("about 100 px across", 100),
)


def available_devices() -> dict[str, bool]:
    """Which devices this machine offers (imports torch)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return {"auto": True, "cpu": True, "cuda": torch.cuda.is_available(), "mps": bool(mps and mps.is_available())}


def first_window(size: "int | float | str | None") -> "int | str | None":
    """The engine's ``first_window`` for an object size (a diameter in px, ``"auto"`` or None)."""
    if size is None or size == "auto":
        return size
    from napari_oaims.core.guidance import window_for_diameter

    return window_for_diameter(size)


def default_size_label(engine: "Engine") -> str:
    """The "model default" object size as the weights set it: ``"auto (model default)"`` or the
    first window in pixels."""
    from napari_oaims.engine import _config_first_window

    size = _config_first_window(engine.config)
    return f"{'auto' if size == 'auto' else f'{size} px window'} ({OBJECT_SIZES[0][0]})"


#: Choices of whether answers follow the image's edges (:attr:`napari_oaims.engine.Engine.edges`).
EDGE_MODES = (
    ("auto (learnt from accepted objects)", "auto"),
    ("always (grow along edges)", "always"),
    ("snap (first answers)", "snap"),
    ("never", "never"),
)

#: Tooltips of the panel's controls.
TIPS = {
    "device": "Where the model runs: auto picks a GPU (CUDA, Apple MPS) when there is one, else the CPU. "
    "Moving keeps what the model has learnt",
    "adaptation": "Online adaptation: the model learns from your clicks (MI), from each accepted object (PI), "
    "or both (OAIMS); off keeps the pretrained weights",
    "object size": "How large the objects are: the first click of an object is answered on a window about four "
    "diameters wide. Model default: the window the weights were trained with; auto: measured "
    "from the objects accepted so far",
    "edges": "Whether answers follow the image's edges where the model is unsure (e.g. thin dark cavities the "
    "model cuts short, faint lesions): auto once the objects you accepted show it brings first answers closer "
    "to them, always grow along them, snap first answers to them from the first object on, or never",
    "weights": "The weights in use: shipped with the plugin, or loaded from a file",
    "load_weights": "Load weights saved before with Save weights… (a .safetensors file and its .json), e.g. a model "
    "adapted in an earlier session",
    "save_weights": "Save the current weights, with what the model learnt online, to a .safetensors file "
    "(and its .json)",
    "reset": "Forget what the model learnt online: back to the weights it started with",
}


class ModelPanel(QWidget):
    """Chooses and changes the annotator's engine.

    Parameters
    ----------
    current : Current
        The engine in use (read only).
    jobs : JobQueue
        Loading, moving and saving the model run as jobs of this queue.
    swap_engine : callable
        Use this engine from now on (a loaded or moved one).
    update_status : callable
        Called when what the status line shows may have changed.
    device, adaptation, weights
        The first choices; ``adaptation`` None: :data:`DEFAULT_ADAPTATION`.
    """

    def __init__(
        self,
        current: "Current",
        jobs: "JobQueue",
        swap_engine: Callable[["Engine"], None],
        update_status: Callable[[], None],
        device: str,
        adaptation: str | None,
        weights: str | Path | None,
    ):
        super().__init__()
        self._current = current
        self._jobs = jobs
        self._swap_engine = swap_engine
        self._update_status = update_status
        self.device = device
        adaptation = DEFAULT_ADAPTATION if adaptation is None else adaptation
        self.adaptation = adaptation
        self.weights = weights
        self.object_size: int | str | None = None
        self.edges = "auto"
        form = QFormLayout(self)
        form.setContentsMargins(4, 0, 4, 4)
        self.device_choice = QComboBox()
        self.device_choice.addItems(list(DEVICES))
        self.device_choice.setCurrentText(str(device))
        self.device_choice.activated.connect(lambda _: self.set_device(self.device_choice.currentText()))
        self.adaptation_choice = QComboBox()
        for label, name in ADAPTATION_MODES:
            self.adaptation_choice.addItem(label, name)
        self._show_adaptation(adaptation)
        self.adaptation_choice.activated.connect(lambda _: self.set_adaptation(self.adaptation_choice.currentData()))
        self.size_choice = QComboBox()
        for label, size in OBJECT_SIZES:
            self.size_choice.addItem(label, size)
        self.size_choice.activated.connect(lambda _: self.set_object_size(self.size_choice.currentData()))
        self.edges_choice = QComboBox()
        for label, mode in EDGE_MODES:
            self.edges_choice.addItem(label, mode)
        self.edges_choice.activated.connect(lambda _: self.set_edges(self.edges_choice.currentData()))
        self.weights_label = QLabel("shipped with the plugin")
        self.weights_label.setWordWrap(True)
        for name, control in (
            ("device", self.device_choice),
            ("adaptation", self.adaptation_choice),
            ("object size", self.size_choice),
            ("edges", self.edges_choice),
            ("weights", self.weights_label),
        ):
            if isinstance(control, QComboBox):
                control.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                control.setMinimumContentsLength(10)
            label = QLabel(name)
            label.setToolTip(TIPS[name])
            control.setToolTip(TIPS[name])
            form.addRow(label, control)
        row = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        for i, (name, text, slot) in enumerate(
            [
                ("load_weights", "Load weights…", self._ask_load_weights),
                ("save_weights", "Save weights…", self._ask_save_weights),
                ("reset", "Reset model", self.reset_model),
            ]
        ):
            button = QPushButton(text)
            button.setToolTip(TIPS[name])
            button.clicked.connect(lambda _=False, f=slot: f())
            row.addWidget(button, i // 2, i % 2)
            self.buttons[name] = button
        form.addRow(row)

    # -- the engine ----------------------------------------------------------------------------
    def load_engine(self) -> None:
        """Load the model in a worker (the shipped or the given weights)."""

        def work():
            from napari_oaims.engine import Engine

            return Engine.pretrained(device=self.device, adaptation=self._known_adaptation(), weights=self.weights)

        self._jobs.submit(Job("load model", work, self.engine_ready, thread=True, progress="Loading the OAIMS model"))

    def engine_ready(self, engine: "Engine") -> None:
        """A first engine: apply the panel's choices to it."""
        self._swap_engine(engine)
        if self.weights is not None:
            self.weights_label.setText(Path(self.weights).name)
        if engine.adaptation != self.adaptation:
            self.set_adaptation(self.adaptation)
        available = available_devices()
        model = self.device_choice.model()
        for i, name in enumerate(DEVICES):
            item = model.item(i)
            item.setEnabled(available[name])
            if not available[name]:
                item.setToolTip(f"{name} is not available on this machine")
        self._update_status()

    def apply_choices(self, engine: "Engine", force: bool = False) -> None:
        """Give ``engine`` the chosen edges mode and first window; with no size chosen, a new engine
        keeps its own. The "model default" size then says what that is ("auto" for the shipped weights)."""
        engine.edges = self.edges
        if self.object_size is not None or force:
            engine.first_window = first_window(self.object_size)
        self.size_choice.setItemText(0, default_size_label(engine))

    def _known_adaptation(self) -> str:
        from napari_oaims.adapt import ADAPTERS

        return self.adaptation if self.adaptation in ADAPTERS else "none"

    # -- the controls --------------------------------------------------------------------------
    def set_device(self, name: str) -> None:
        self.device = name
        engine = self._current.engine
        if engine is not None:
            self._jobs.submit(
                Job(
                    f"device {name}",
                    lambda: engine.to(name),
                    self._swap_engine,
                    thread=True,
                    progress=f"Moving the model to {name}",
                )
            )

    def set_object_size(self, size: "int | str | None") -> None:
        sizes = [value for _, value in OBJECT_SIZES]
        number = isinstance(size, (int, float)) and not isinstance(size, bool)
        if size not in sizes and not (number and 2 <= size <= 1024):
            raise ValueError(f"object size must be None, 'auto' or a diameter of 2-1024 px, got {size!r}")
        self.object_size = size
        if size in sizes:
            self.size_choice.setCurrentIndex(sizes.index(size))
        if self._current.engine is not None:
            self.apply_choices(self._current.engine, force=True)

    def set_edges(self, mode: str) -> None:
        """Whether answers follow the image's edges: ``"auto"``, ``"always"`` or ``"never"``."""
        from napari_oaims.core.edges import check_mode

        self.edges = check_mode(mode)
        self.edges_choice.setCurrentIndex(self.edges_choice.findData(mode))
        if self._current.engine is not None:
            self._current.engine.edges = mode

    def _show_adaptation(self, name: str) -> None:
        index = self.adaptation_choice.findData(name)
        if index >= 0:
            self.adaptation_choice.setCurrentIndex(index)

    def set_adaptation(self, name: str) -> None:
        engine = self._current.engine
        if engine is None:  # checked when the model is loaded
            self.adaptation = name
            self._show_adaptation(name)
            return
        from napari_oaims.adapt import ADAPTERS

        if name not in ADAPTERS:
            show_warning(
                f"OAIMS: adaptation '{name}' is not available in this version "
                f"(available: {', '.join(sorted(ADAPTERS))}); keeping '{engine.adaptation}'"
            )
            self.adaptation = engine.adaptation
            self._show_adaptation(engine.adaptation)
            return
        self.adaptation = name
        self._show_adaptation(name)

        def work():
            engine.adaptation = name

        self._jobs.submit(Job("adaptation", work, lambda _: self._update_status()))

    def reset_model(self) -> None:
        def work():
            if self._current.engine is None:
                raise ValueError("the model is not loaded yet")
            self._current.engine.reset()
            show_info("OAIMS: model reset to the pretrained weights")

        self._jobs.submit(Job("reset model", work, lambda _: self._update_status()))

    def load_weights(self, path: str | Path) -> None:
        def work():
            from napari_oaims.engine import Engine

            return Engine.load(path, device=self.device, adaptation=self._known_adaptation())

        def done(engine):
            self._swap_engine(engine)
            self.weights_label.setText(Path(path).name)
            show_info(f"OAIMS: loaded weights {Path(path).name} ({engine.updates} updates)")

        self._jobs.submit(Job("load weights", work, done, thread=True, progress="Loading weights"))

    def save_weights(self, path: str | Path) -> None:
        def work():
            if self._current.engine is None:
                raise ValueError("the model is not loaded yet")
            return self._current.engine.save(path)

        self._jobs.submit(
            Job(
                "save weights",
                work,
                lambda p: show_info(f"OAIMS: saved weights to {p}"),
                thread=True,
                progress="Saving weights",
            )
        )

    def _ask_load_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load adapted weights", "", "Weights (*.safetensors)")
        if path:
            self.load_weights(path)

    def _ask_save_weights(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save adapted weights", "oaims_adapted.safetensors", "Weights (*.safetensors)"
        )
        if path:
            self.save_weights(path)
