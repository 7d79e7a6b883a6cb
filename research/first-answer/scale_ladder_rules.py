"""Offline comparison of window-choice rules on scale_ladder_collect.py's data (mean Dice@1 per suite)."""
import pickle, numpy as np
data = pickle.load(open("/tmp/i35/collect.pkl", "rb"))
SIZES = [32, 45, 64, 90, 128, 181, 256, 362, 512]
def pick(rule, r):
    return rule(r)
def ratio(o):  # window / (4 * diameter)
    d = 2*np.sqrt(max(o["area"],1)/np.pi); return o["size"]/(4*d)
def r_log(r):
    # nearest ladder size to the log guess
    if r["log"] is None: return 4
    return int(np.argmin([abs(np.log(s/r["log"])) for s in SIZES]))
def make_rule(target=1.0, border_pen=2.0, agree_w=0.0, cands=range(len(SIZES))):
    def rule(r):
        best, bi = -1e9, None
        for i in cands:
            o = r["out"][i]
            if o["area"] == 0: sc = -1e6
            else:
                sc = -abs(np.log(ratio(o)/target)) - border_pen*o["border"]
                if agree_w:
                    ag = [r["agree"][j] for j in (i-1, i) if 0 <= j < len(r["agree"])]
                    sc += agree_w*np.mean(ag)
            if sc > best: best, bi = sc, i
        return bi
    return rule
rules = {"log": r_log, "oracle": lambda r: int(np.argmax([o["dice"] for o in r["out"]]))}
for t in [0.8, 1.0, 1.3]:
    for ag in [0, 1.0]:
        rules[f"fix t{t} a{ag}"] = make_rule(t, 2.0, ag)
for i, s in enumerate(SIZES): rules[f"size{s}"] = (lambda i: (lambda r: i))(i)
for t in [1.0]:
  for ag in [0, 1.0]:
    rules[f"sub3 t{t} a{ag}"] = make_rule(t, 2.0, ag, cands=[2,4,6])
    rules[f"sub4 t{t} a{ag}"] = make_rule(t, 2.0, ag, cands=[1,3,5,7])
    rules[f"sub5 t{t} a{ag}"] = make_rule(t, 2.0, ag, cands=[0,2,4,6,8])
print(f"{'rule':18}" + "".join(f"{k:>11}" for k in data))
for name, rule in rules.items():
    print(f"{name:18}" + "".join(f"{np.mean([r['out'][rule(r)]['dice'] for r in rows]):>11.3f}" for rows in data.values()))
print("---- confidence rules")
def conf_rule(cands, agree_w=0.0, border_pen=10.0, minarea=0):
    def rule(r):
        best, bi = -1e9, None
        for i in cands:
            o = r["out"][i]
            sc = o["mean_logit"] - border_pen*o["border"] - (100 if o["area"] <= minarea else 0)
            if agree_w:
                ag = [r["agree"][j] for j in (i-1, i) if 0 <= j < len(r["agree"])]
                sc += agree_w*np.mean(ag)
            if sc > best: best, bi = sc, i
        return bi
    return rule
cr = {}
for cname, cands in {"all": range(9), "45-362": range(1,8), "45-256": range(1,7), "3:64,128,256": [2,4,6], "4:45,90,181,362": [1,3,5,7], "5:32..512": [0,2,4,6,8], "4:64,90,128,181": [2,3,4,5]}.items():
    for ag in [0, 1, 2]:
        cr[f"{cname} a{ag}"] = conf_rule(cands, ag)
print(f"{'rule':22}" + "".join(f"{k:>11}" for k in data))
for name, rule in cr.items():
    print(f"{name:22}" + "".join(f"{np.mean([r['out'][rule(r)]['dice'] for r in rows]):>11.3f}" for rows in data.values()))
print("---- smallest-stable rules")
def dia(o): return 2*np.sqrt(max(o["area"],1)/np.pi)
def small_rule(cands, agree_min=0.8, speck=2.0):
    def rule(r):
        ok = []
        for k, i in enumerate(cands):
            o = r["out"][i]
            if o["area"] == 0 or o["border"] or o["size"]/(4*dia(o)) > speck: continue
            if k + 1 < len(cands):
                from_ = r["out"][cands[k+1]]
                # agreement with next: approximate via chained agree only for adjacent ladder
                j = cands[k+1]
                ag = min(r["agree"][i:j]) if j == i+1 else None
                if ag is None:
                    # ratio of areas as proxy
                    a, b = o["area"], from_["area"]; ag = min(a,b)/max(a,b)
                if ag < agree_min: continue
            ok.append(i)
        if ok: return ok[0]
        return max(cands, key=lambda i: r["out"][i]["mean_logit"])
    return rule
sr = {}
for cname, cands in {"all": list(range(9)), "45-362": list(range(1,8)), "3:64,128,256": [2,4,6], "4:45,90,181,362": [1,3,5,7], "3:45,90,181":[1,3,5], "3:64,90,128":[2,3,4]}.items():
    for am in [0.6, 0.75, 0.85]:
        for sp in [1.5, 2.0, 3.0]:
            sr[f"{cname} ag{am} sp{sp}"] = small_rule(cands, am, sp)
print(f"{'rule':28}" + "".join(f"{k:>11}" for k in data))
for name, rule in sr.items():
    print(f"{name:28}" + "".join(f"{np.mean([r['out'][rule(r)]['dice'] for r in rows]):>11.3f}" for rows in data.values()))
print("---- LoG-relative")
def rel_rule(offsets, inner, clamp=8):
    def rule(r):
        k = min(r_log(r), clamp)
        cands = sorted({min(max(k + o, 0), 8) for o in offsets})
        return inner(cands)(r)
    return rule
rr = {}
for oname, offs in {"-2,-1,0": (-2,-1,0), "-1,0,1": (-1,0,1), "-4,-2,0": (-4,-2,0), "-3,-2,-1,0": (-3,-2,-1,0), "-2,0": (-2,0), "-1,0":(-1,0)}.items():
    for clamp in [8, 6, 5]:
        for am in [0.6, 0.75]:
            rr[f"{oname} c{clamp} small{am}"] = rel_rule(offs, lambda c, am=am: small_rule(c, am, 2.0), clamp)
        rr[f"{oname} c{clamp} conf"] = rel_rule(offs, lambda c: conf_rule(c, 1), clamp)
print(f"{'rule':28}" + "".join(f"{k:>11}" for k in data))
for name, rule in rr.items():
    print(f"{name:28}" + "".join(f"{np.mean([r['out'][rule(r)]['dice'] for r in rows]):>11.3f}" for rows in data.values()))
print("---- gated")
def gated(T, clamp=6, offs=(-2,), speck=2.5):
    def rule(r):
        k = min(r_log(r), clamp)
        o = r["out"][k]
        ratio_ = o["size"]/(4*dia(o)) if o["area"] else 99
        if o["area"] > 0 and o["mean_logit"] >= T and not o["border"] and ratio_ <= speck:
            return k, 1
        cands = sorted({min(max(k + d, 0), 8) for d in offs} | {k})
        return conf_rule(cands, 0)(r), 2
    return rule
for T in [0, 2.0, 2.5, 3.0, 99]:
    for sp in [1.5, 2.5]:
        for offs in [(-2,), (-1,), (-2, -1)]:
            ru = gated(T, 6, offs, sp)
            res = [[ru(r) for r in rows] for rows in data.values()]
            print(f"T{T} sp{sp} {offs}".ljust(26) + "".join(f"{np.mean([r['out'][i]['dice'] for r, (i, c) in zip(rows, rr)]):>8.3f}/{np.mean([c for _, c in rr]):.2f}" for rows, rr in zip(data.values(), res)))
