"""Offline rules choosing between the two first windows of ``two_windows.py`` (run from the
repository root: python research/first-answer/two_windows_rules.py); per set the change of mean
first-click Dice against the accepted-median window."""
import json, numpy as np
data = json.load(open("research/first-answer/results/two_windows/two_windows.json"))
def pick(r, rule):
    m, b = r["median"], r["blob"]
    ratio = max(m["size"], b["size"]) / min(m["size"], b["size"])
    return rule(m, b, ratio)
rules = {
  "median": lambda m, b, q: m,
  "blob": lambda m, b, q: b,
  "sure": lambda m, b, q: b if b["sure"] > m["sure"] else m,
  "contrast": lambda m, b, q: b if b["contrast"] > m["contrast"] else m,
  "sure+0.5": lambda m, b, q: b if b["sure"] > m["sure"] + 0.5 else m,
  "contrast+1": lambda m, b, q: b if b["contrast"] > m["contrast"] + 1 else m,
  "sure*contrast": lambda m, b, q: b if b["sure"] * b["contrast"] > m["sure"] * m["contrast"] else m,
  "smaller-if-sure": lambda m, b, q: (b if b["size"] < m["size"] else m) if min(b["sure"], m["sure"]) > 2 else (b if b["sure"] > m["sure"] else m),
  "q2 sure": lambda m, b, q: (b if b["sure"] > m["sure"] else m) if q >= 2 else m,
  "q1.5 sure": lambda m, b, q: (b if b["sure"] > m["sure"] else m) if q >= 1.5 else m,
  "q2 contrast": lambda m, b, q: (b if b["contrast"] > m["contrast"] else m) if q >= 2 else m,
}
names = list(data)
print("rule".ljust(16), " ".join(n.split("/")[-1][:7].rjust(7) for n in names), "  mean  worst")
for rn, rule in rules.items():
    vals = []
    for n in names:
        rows = [r for r in data[n] if "median" in r]
        vals.append(np.mean([pick(r, rule)["dice"] for r in rows]))
    base = [np.mean([r["median"]["dice"] for r in data[n] if "median" in r]) for n in names]
    diffs = np.array(vals) - np.array(base)
    print(rn.ljust(16), " ".join(f"{v:+.3f}"[0:7].rjust(7) for v in diffs), f" {diffs.mean():+.3f} {diffs.min():+.3f}")
qs = [max(r["median"]["size"], r["blob"]["size"]) / min(r["median"]["size"], r["blob"]["size"]) for n in names for r in data[n] if "median" in r]
print("share of targets with size ratio >= 1.5:", np.mean(np.array(qs) >= 1.5), ">= 2:", np.mean(np.array(qs) >= 2))
