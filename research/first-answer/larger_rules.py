"""Acceptance rules for the larger window, evaluated offline on ``larger_candidates.py``'s pickle:
per set, the mean change of first-click Dice (points) if the rule had picked the larger answer.
Features: the larger answer's outline contrast (C), its area against the first answer's (R), how
alike the image is inside the first answer and in the rest of the larger one (S, pooled
deviations), how much of the first answer it covers (V); K: how many of the larger windows count.

    python research/first-answer/larger_rules.py OUT.pkl      (run from the repository root)
"""
import pickle, numpy as np, tifffile, sys
data = pickle.load(open(sys.argv[1], "rb"))
def load(d):
    if d == "nuclei":
        return tifffile.imread("src/napari_oaims/data/nuclei2d_image.tif").astype(np.float64)
    return tifffile.imread(d + "/image.tif").astype(np.float64)
def plane(c, shape):
    m = np.zeros(shape, bool); m[c["box"][0]:c["box"][2], c["box"][1]:c["box"][3]] = c["crop"]; return m
def area(c): return int(c["crop"].sum())
feats = {}
for d, rows in data.items():
    img = load(d)
    for i, cands in rows:
        if len(cands) < 2: continue
        m0 = plane(cands[0], img.shape)
        for c in cands[1:]:
            m = plane(c, img.shape)
            rest = m & ~m0
            if m0.sum() >= 4 and rest.sum() >= 4:
                a, b = img[m0], img[rest]
                c["same"] = abs(np.median(a) - np.median(b)) / (np.sqrt((a.var() + b.var()) / 2) + 1e-9)
                c["covers"] = (m & m0).sum() / m0.sum()
            else:
                c["same"] = 9.0; c["covers"] = 0.0
pickle.dump(data, open(sys.argv[1] + ".f", "wb"))
def rule(cands, C, R, S, V=0.0, K=3):
    for k in range(1, min(len(cands), K + 1)):
        c = cands[k]
        if not c["cut"] and c["contrast"] >= C and area(c) >= R * max(area(cands[0]), 1) and c["same"] <= S and c["covers"] >= V:
            return k
    return 0
for C in (2.0, 2.5, 3.0):
    for R in (5, 10):
        for S in (0.5, 1.0, 9):
          for V in (0.0, 0.8):
            line = []; tot = 0
            for d, rows in data.items():
                gain = [r[1][rule(r[1], C, R, S, V)]["dice"] - r[1][0]["dice"] for r in rows if len(r[1]) > 1]
                line.append(f"{d.split('/')[-1][:9]}:{sum(gain)/len(rows)*100:+.1f}")
            print(f"C{C} R{R} S{S} V{V}", " ".join(x for x in line if not x.endswith("+0.0")))
