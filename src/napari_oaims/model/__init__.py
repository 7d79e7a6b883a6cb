"""The click model: network, checkpoint I/O and device choice."""

from .checkpoint import load_weights, read_config, save_weights, weights_hash
from .device import autocast, resolve_device
from .unet import ClickUNet

__all__ = ["ClickUNet", "autocast", "load_weights", "read_config", "resolve_device", "save_weights", "weights_hash"]
