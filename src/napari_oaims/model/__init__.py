"""The click model: network, checkpoint I/O and device choice."""

from napari_oaims.model.checkpoint import load_weights, read_config, save_weights, weights_hash
from napari_oaims.model.device import as_tensor, autocast, flush_denormals, predict_logits, resolve_device
from napari_oaims.model.unet import ClickUNet

__all__ = [
    "ClickUNet",
    "as_tensor",
    "autocast",
    "flush_denormals",
    "load_weights",
    "predict_logits",
    "read_config",
    "resolve_device",
    "save_weights",
    "weights_hash",
]
