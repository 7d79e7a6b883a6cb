"""Optional dependencies: import one, or say which extra of the package installs it.

The core install (``pip install napari-oaims``) annotates, adapts, propagates and saves
sessions. Benchmarks, batch runs on Dask, training bars and the napari plugin need extras:

========== ==================================================
extra      what it adds
========== ==================================================
``batch``  ``distributed`` (Dask workers), ``tqdm`` (bars)
``bench``  ``matplotlib`` (plots), ``tqdm``, ``psutil``, and ``batch``
``train``  ``tqdm``
``napari`` ``napari``, ``qtpy``, ``npe2``
``qt``     ``napari`` and ``PyQt6``
========== ==================================================
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise an ImportError that names the extra that installs it.

    Parameters
    ----------
    module : str
        The module to import (``"matplotlib.pyplot"``).
    extra : str
        The extra of napari-oaims that installs it (``"bench"``).
    purpose : str
        What needs it, for the message (``"benchmark plots"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        raise ImportError(
            f"{purpose} need {top}, which the core install leaves out: pip install 'napari-oaims[{extra}]'"
        ) from err
