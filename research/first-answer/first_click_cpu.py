"""First-click CPU time (process time, so other load on the machine counts less) and windows per
click: python first_click_cpu.py CLICKS OBJECTS [fresh]; "fresh": a new session per object (no
accepted objects: the blob-estimate path). IMAGE and LABELS (environment) choose the image (default:
the bundled nuclei, from the repository root); EDGES the engine's edges mode, where it has one."""
import os, sys, time, numpy as np, json
from napari_oaims.engine import Engine
from napari_oaims.evaluation.common import load_pair, target_ids
from napari_oaims.simulate.robot import Robot
clicks = int(sys.argv[1]); n = int(sys.argv[2])
img, lab = load_pair(os.environ.get("IMAGE", "src/napari_oaims/data/nuclei2d_image.tif"), os.environ.get("LABELS", "src/napari_oaims/data/nuclei2d_labels.tif"))
ids = target_ids(lab); ids = [ids[i] for i in np.random.default_rng(0).permutation(len(ids))][:n]
e = Engine.pretrained(device="cpu")
if os.environ.get("EDGES"):
    e.edges = os.environ["EDGES"]
calls = [0]; orig = e.predict
def counted(x):
    calls[0] += len(x); return orig(x)
e.predict = counted
s = e.session(img); robot = Robot(strategy="center", seed=0)
cpu, wall, passes = [], [], []
for tid in ids:
    t = lab == tid; robot.reset(int(tid)); pred = np.zeros_like(t)
    for k in range(clicks):
        c = robot.next_click(pred, t)
        if c is None: break
        c0 = calls[0]; t0 = time.process_time(); w0 = time.perf_counter()
        pred = s.click((c.y, c.x), positive=c.positive).mask
        cpu.append((time.process_time() - t0) * 1e3); wall.append((time.perf_counter() - w0) * 1e3); passes.append(calls[0] - c0)
    s.accept() if pred.any() else s.clear()
    if len(sys.argv) > 3: s = e.session(img)
print(json.dumps({"cpu_p50": round(float(np.median(cpu[1:])), 2), "wall_p50": round(float(np.median(wall[1:])), 2), "windows_per_click": round(float(np.mean(passes)), 3), "n": len(cpu)}))
