"""What napari's main thread does while the widget's Propagate all runs (shown window): a cProfile of
the main thread only, and the paint events by widget class, over the runs of the benchmark.

    PYTHONPATH=src OMP_NUM_THREADS=1 xvfb-run -a python research/propagation/main_thread_profile.py \
        bench napari --propagate-all --stack 32 --side 96 --objects 6 --method frozen --repeats 3 --device cpu --threads 1
"""
import cProfile, pstats, sys, time, collections, io
from napari_oaims.cli import main
import napari_oaims.evaluation.gui_propagate as gp
from qtpy.QtCore import QObject, QEvent
from qtpy.QtWidgets import QApplication

orig = gp.run_until_idle
stats = []
paints = collections.Counter()
events_n = collections.Counter()

class Filt(QObject):
    def eventFilter(self, obj, ev):
        t = ev.type()
        if t in (QEvent.Type.Paint, QEvent.Type.UpdateRequest):
            paints[(t.name, type(obj).__name__)] += 1
        return False

filt = Filt()
runs = [0]
def wrapped(widget, action=None, timeout=600.0):
    name = getattr(action, "__qualname__", "")
    if action is None or "widget_run" not in name:
        return orig(widget, action, timeout)
    runs[0] += 1
    QApplication.instance().installEventFilter(filt)
    pr = cProfile.Profile()
    pr.enable()
    t0 = time.perf_counter()
    gaps = orig(widget, action, timeout)
    pr.disable()
    QApplication.instance().removeEventFilter(filt)
    print(f"run {runs[0]}: {time.perf_counter()-t0:.2f}s max gap {max(gaps):.0f}ms", flush=True)
    stats.append(pr)
    return gaps
gp.run_until_idle = wrapped
rc = main(sys.argv[1:])
s = io.StringIO()
ps = pstats.Stats(stats[0], stream=s)
for p in stats[1:]:
    ps.add(p)
ps.sort_stats("cumulative").print_stats(45)
ps.sort_stats("tottime").print_stats(30)
print(s.getvalue())
print("paint events (all runs):")
for k, v in paints.most_common(30):
    print(v, k)
sys.exit(rc)
