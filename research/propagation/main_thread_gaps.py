"""When the main thread's gaps over 35 ms happen during the widget's Propagate all (shown window), and
which of the stack tools' GUI-thread calls ran in them (names of this branch's code).

    PYTHONPATH=src OMP_NUM_THREADS=1 xvfb-run -a python research/propagation/main_thread_gaps.py \
        bench napari --propagate-all --stack 32 --side 96 --objects 6 --method frozen --repeats 3 --device cpu --threads 1
"""
import sys, time
import numpy as np
import napari_oaims.evaluation.gui_propagate as gp
import napari_oaims.plugin.widget.stack as st
import napari_oaims.plugin.widget.objects as ob
import napari_oaims.plugin.widget.annotate_panel as ap
import napari_oaims.plugin.widget.jobs as jb
from napari_oaims.cli import main

marks = []
def mark(cls, name):
    f = getattr(cls, name)
    def w(*a, _f=f, _n=name, **k):
        t0 = time.perf_counter(); r = _f(*a, **k); marks.append((t0, time.perf_counter(), _n)); return r
    setattr(cls, name, w)
for cls, names in ((st.StackTools, ["flush", "refresh", "_start", "_end"]), (ob.AcceptedObjects, ["add_group"]),
                   (ap.AnnotatePanel, ["start_progress", "show_progress", "end_progress"]), (jb.JobQueue, ["_start_worker", "_pump"])):
    for n in names:
        mark(cls, n)
import napari.utils.notifications as nt
from qtpy.QtCore import QEventLoop, QTimer

def run_until_idle(widget, action=None, timeout=600.0):
    ticks = [time.perf_counter()]
    loop, timer = QEventLoop(), QTimer()
    def tick():
        ticks.append(time.perf_counter())
        if not widget.jobs.busy:
            loop.quit()
    timer.timeout.connect(tick); timer.start(10)
    named = action is not None and "widget_run" in getattr(action, "__qualname__", "")
    if action is not None:
        QTimer.singleShot(0, action)
    del marks[:]
    loop.exec(); timer.stop()
    if named:
        t = np.asarray(ticks); g = np.diff(t) * 1e3; t0 = t[0]
        print(f"run: {t[-1]-t0:.2f}s")
        for i in np.flatnonzero(g > 35):
            a, b = t[i], t[i + 1]
            inside = [f"{n}@{(s-t0)*1e3:.0f}+{(e-s)*1e3:.0f}" for s, e, n in marks if e > a and s < b]
            print(f"  gap {g[i]:.0f} ms at {(a-t0)*1e3:.0f} ms: {inside}")
    return list(np.diff(ticks) * 1e3)
gp.run_until_idle = run_until_idle
sys.exit(main(sys.argv[1:]))
