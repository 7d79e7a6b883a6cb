"""The *Annotate* panel: click polarity, the class of the next object, the actions with their keys,
and the stack actions (propagate with a chosen method, cancel, suggest the next slice) with the
running propagation's progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCheckBox, QComboBox, QGridLayout, QLabel, QProgressBar, QPushButton, QWidget

from napari_oaims.plugin.widget.keys import KEYS

#: (action, button text, tooltip), in the order shown.
ACTIONS = (
    ("accept", "Accept", "Commit the preview as a new object and learn from it"),
    ("next", "Next object", "Accept the object if there is one, then start a new one"),
    ("undo", "Undo", "Undo the last prompt, clear, propagation or accept"),
    ("redo", "Redo", "Redo what was undone"),
    ("clear", "Clear object", "Remove all prompts of the current object (undoable)"),
)
#: (action, button text, tooltip) of the stack actions.
STACK_ACTIONS = (
    (
        "propagate",
        "Propagate",
        "Carry the object from the slices you prompted through the stack{along} (runs in the background; "
        "undo takes all of it back; Accept commits the whole 3D object)",
    ),
    (
        "propagate_all",
        "Propagate all",
        "Carry every object of the slice on screen (the objects layer's labels there) through the stack{along} "
        "at once, each kept out of the others (runs in the background; one undo takes all of them back)",
    ),
    (
        "suggest",
        "Suggest next slice",
        "Go to the propagated slice{along} most worth checking (where the propagation disagrees most with "
        "its neighbours' registration)",
    ),
    ("cancel", "Cancel", "Stop the running propagation: nothing changes"),
)
KEY_HINT = "Keys work while one of the annotator's layers (clicks, boxes & scribbles, preview, objects) is selected"


class AnnotatePanel(QWidget):
    """``actions``: action name -> callable (``toggle`` and those of :data:`ACTIONS` and :data:`STACK_ACTIONS`);
    ``methods``: the propagation methods offered, as ``(method, label, tooltip)``."""

    def __init__(
        self,
        actions: Mapping[str, Callable[[], None]],
        set_positive: Callable[[bool], None],
        methods: Iterable[tuple[str, str, str]],
    ):
        super().__init__()
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 0, 4, 4)
        self.positive_check = QCheckBox(f"positive clicks [{KEYS['toggle']}]")
        self.positive_check.setChecked(True)
        self.positive_check.setToolTip(
            "Ticked: clicks and scribbles add to the object (green). Unticked: they "
            f"remove from it (red). [{KEYS['toggle']}] switches. {KEY_HINT}."
        )
        self.positive_check.toggled.connect(set_positive)
        grid.addWidget(self.positive_check, 0, 0, 1, 2)
        label = QLabel("class")
        grid.addWidget(label, 1, 0)
        self.class_choice = QComboBox()
        self.class_choice.setEditable(True)
        self.class_choice.setInsertPolicy(QComboBox.InsertPolicy.InsertAtBottom)
        self.class_choice.addItem("object")
        self.class_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.class_choice.setMinimumContentsLength(8)
        self.class_choice.setToolTip("Class of the next accepted object (type a new name to add a class)")
        label.setToolTip(self.class_choice.toolTip())
        grid.addWidget(self.class_choice, 1, 1)
        self.buttons: dict[str, QPushButton] = {}
        for i, (name, text, tip) in enumerate(ACTIONS):
            button = QPushButton(f"{text} [{KEYS[name]}]")
            button.setToolTip(f"{tip}. {KEY_HINT}.")
            button.clicked.connect(lambda _=False, f=actions[name]: f())
            grid.addWidget(button, 2 + i // 2, i % 2)
            self.buttons[name] = button
        for name, text, tip in STACK_ACTIONS:
            button = QPushButton(text)
            button.setToolTip(tip.format(along=""))
            button.clicked.connect(lambda _=False, f=actions[name]: f())
            self.buttons[name] = button
        grid.addWidget(self.buttons["propagate"], 5, 0)
        grid.addWidget(self.buttons["propagate_all"], 5, 1)
        label = QLabel("method")
        grid.addWidget(label, 6, 0)
        self.method_choice = QComboBox()
        for method, text, tip in methods:
            self.method_choice.addItem(text, method)
            self.method_choice.setItemData(self.method_choice.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.method_choice.setToolTip(
            "How the object is carried from slice to slice: " + "; ".join(f"{text}: {tip}" for _, text, tip in methods)
        )
        label.setToolTip(self.method_choice.toolTip())
        grid.addWidget(self.method_choice, 6, 1)
        grid.addWidget(self.buttons["suggest"], 7, 0)
        grid.addWidget(self.buttons["cancel"], 7, 1)
        # a bar with a known range: a busy (range 0) bar would animate, each frame a redraw of the window
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.hide()
        self._progress_prefix = ""
        grid.addWidget(self.progress_bar, 8, 0, 1, 2)
        self.overwrite_check = QCheckBox("accept over other objects")
        self.overwrite_check.setToolTip(
            "Ticked: an accepted object takes the pixels of objects accepted before it where they "
            "meet, and Propagate may carry it into them. Unticked (default): those pixels stay with "
            "the earlier objects."
        )
        grid.addWidget(self.overwrite_check, 9, 0, 1, 2)

    def show_stack_tips(self, along: str, why: str | None) -> None:
        """Tooltips of the stack buttons: what they do ``along`` the axis, and ``why`` they are off (if)."""
        for name, _, tip in STACK_ACTIONS:
            if name != "cancel":
                text = tip.format(along=along)
                self.buttons[name].setToolTip(f"{why}. {text}" if why else text)

    def start_progress(self, what: str, prefix: str = "") -> None:
        """Show the progress bar of a propagation: ``what`` it does (its tooltip, e.g. "Propagating 3
        objects along axis 0") and the ``prefix`` of its text (e.g. "3 objects: ")."""
        self._progress_prefix = prefix
        bar = self.progress_bar
        bar.setRange(0, 1)
        bar.setValue(0)
        bar.setFormat(f"{prefix}starting")
        bar.setToolTip(f"{what} (Cancel stops it: nothing changes)")
        bar.show()

    def show_progress(self, done: int, total: int) -> None:
        """``done`` of ``total`` slices of the running propagation are made."""
        bar = self.progress_bar
        if bar.maximum() != max(total, 1):
            bar.setRange(0, max(total, 1))
        bar.setValue(min(done, total))
        bar.setFormat(f"{self._progress_prefix}%v / %m slices")

    def end_progress(self) -> None:
        """Hide the progress bar (the propagation is over)."""
        self.progress_bar.hide()

    def show_positive(self, positive: bool) -> None:
        if self.positive_check.isChecked() != positive:
            self.positive_check.setChecked(positive)

    def current_class(self) -> tuple[int, str]:
        """(class id, class name) for the next accepted object; a new name becomes a new class."""
        name = self.class_choice.currentText().strip() or "object"
        if self.class_choice.findText(name) < 0:
            self.class_choice.addItem(name)
        return self.class_choice.findText(name) + 1, name

    def add_classes(self, names: Iterable[str]) -> None:
        """Offer these class names (those not offered yet)."""
        for name in names:
            if self.class_choice.findText(name) < 0:
                self.class_choice.addItem(name)
