"""Probe (session 18, not kept): PI leaves out a band of B working pixels on each side of the accepted
mask's rim (no Dice-Focal loss there, and no stage-2 click). Usage, from the repository root:
``python docs/results/auto/session18/band.py 1 bench adapt --image IMG --labels LBL --shift edges --clicks 10 --methods oaims --seed 0 --jobs 1 --out F.json``."""
import sys
import numpy as np
from scipy import ndimage
from napari_oaims import cli
from napari_oaims.adapt import oaims
b = int(sys.argv[1])
orig = oaims.OAIMSAdapter._view
def view(self, s, key, click, final):
    v = orig(self, s, key, click, final)
    t = v["target"]
    band = ndimage.binary_dilation(t, iterations=b) & ~ndimage.binary_erosion(t, iterations=b)
    v["weight"] = np.where(band, 0.0, 1.0).astype(np.float32)
    return v
oaims.OAIMSAdapter._view = view
sys.exit(cli.main(sys.argv[2:]))
