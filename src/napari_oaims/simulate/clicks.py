"""Where a simulated user clicks: the click rules of :mod:`napari_oaims.core.clicks`, which the
simulated users share with pretraining and Post-Interaction adaptation."""

from napari_oaims.core.clicks import (
    CLICK_MODES,
    Click,
    check_masks,
    click_in_region,
    correction_clicks,
    error_components,
    largest_error_component,
)

__all__ = [
    "CLICK_MODES",
    "Click",
    "check_masks",
    "click_in_region",
    "correction_clicks",
    "error_components",
    "largest_error_component",
]
