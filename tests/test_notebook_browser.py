"""The notebook annotator in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by
selenium with real pointer events and keys; the session is read from the notebook's own kernel.

Screenshots go to ``OAIMS_SCREENSHOTS`` (a folder) when set, else to the test's tmp folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from napari_oaims.evaluation.notebook import JupyterServer, NotebookBrowser, browser_missing, run_code, write_notebook

pytestmark = pytest.mark.slow
MISSING = browser_missing()
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.mark.skipif(MISSING is not None, reason=f"no headless browser: {MISSING}")
def test_annotate_accept_undo_propagate_in_chromium(tmp_path, nuclei):
    from napari_oaims.store import SessionStore
    from napari_oaims.training.volumes import VolumeSpec, make_volume

    from conftest import largest_ids, object_centre

    image, labels = nuclei
    volume, vlabels = make_volume(VolumeSpec(kind="abrupt", shape=(12, 48, 48), seed=3, neighbours=1, blur=0.8))
    np.save(tmp_path / "nuclei.npy", image)
    np.save(tmp_path / "volume.npy", volume)
    write_notebook(
        tmp_path / "annotate.ipynb",
        [
            "import numpy as np\nfrom napari_oaims import Engine\nfrom napari_oaims.notebook import Annotator\n"
            "engine = Engine.pretrained(device='cpu', adaptation='none')",
            "annotator = Annotator(np.load('nuclei.npy'), engine=engine, session_path='nuclei.oaims.zarr')\nannotator",
            "volume = Annotator(np.load('volume.npy'), engine=engine)\nvolume",
        ],
    )
    shots = Path(os.environ.get("OAIMS_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    with JupyterServer(tmp_path, env=env) as server, NotebookBrowser(server) as b:
        from selenium.webdriver.common.action_chains import ActionChains

        b.open("annotate.ipynb")
        b.run_all(3)
        root = b.annotator(0)
        kernel = server.kernel("annotate.ipynb")
        assert b.js(root, "o.imageShownMs") > 0 and b.js(root, "o.count('preview')") == 0

        # a click: the first overlay appears, and it is the session's mask
        first, second = largest_ids(labels, 2)
        y, x = object_centre(labels, first)
        n = b.overlays(root)
        b.click(root, y + 0.5, x + 0.5)
        b.wait(f"arguments[0] === undefined || document.querySelector('.oaims-root').oaims.overlays > {n}", 60)
        b.wait("document.querySelector('.oaims-root').oaims.latencies.length >= 1", 60, "the click's overlay")
        kinds = run_code(kernel, "[e['kind'] for e in annotator.session.events]")
        assert kinds[-2:] == ["click", "predict"]
        shown = b.js(root, "o.count('preview')")
        assert shown > 0 and shown == run_code(kernel, "int(annotator.session.mask.sum())")
        # a second click, negative (right button) near the object's edge, changes it
        from scipy import ndimage

        depth = ndimage.distance_transform_edt(labels == first)
        ey, ex = np.argwhere(depth == 3)[0]
        b.click(root, ey + 0.5, ex + 0.5, button="right")
        b.wait("document.querySelector('.oaims-root').oaims.latencies.length >= 2", 60, "the second overlay")
        assert run_code(kernel, "annotator.session.events[-2]['label']") == 0
        changed = b.js(root, "o.count('preview')")
        assert changed != shown and changed == run_code(kernel, "int(annotator.session.mask.sum())")
        b.driver.save_screenshot(str(shots / "notebook_click.png"))

        # accept with its key: an object in the session, on screen and in the autosaved folder
        b.driver.execute_script("arguments[0].focus();", root)
        ActionChains(b.driver).send_keys("k").perform()
        b.wait("document.querySelector('.oaims-root').oaims.count('objects') > 0", 60, "the accepted object")
        assert b.js(root, "o.count('preview')") == 0
        kinds = run_code(kernel, "[e['kind'] for e in annotator.session.events]")
        assert "accept" in kinds
        with SessionStore.open(tmp_path / "nuclei.oaims.zarr", read_only=True) as store:
            assert [o["id"] for o in store.objects()] == [1] and np.asarray(store.labels()[...]).max() == 1
        b.driver.save_screenshot(str(shots / "notebook_accept.png"))
        # undo takes the object back (the Undo button)
        b.press(root, "undo")
        b.wait("document.querySelector('.oaims-root').oaims.count('objects') === 0", 60, "the undo")
        assert run_code(kernel, "annotator.session.events[-1]['kind']") == "withdraw"

        # an error is shown in the status line, and the widget goes on
        b.press(root, "accept")
        b.wait("document.querySelector('.oaims-message.oaims-error') !== null", 30, "the error")
        assert "nothing to accept" in b.js(root, "root.querySelector('.oaims-message').textContent")
        # redo brings the object back; a click on another nucleus shows a preview beside it
        b.press(root, "redo")
        b.wait("document.querySelector('.oaims-root').oaims.count('objects') > 0", 60, "the redo")
        y2, x2 = object_centre(labels, second)
        b.click(root, y2 + 0.5, x2 + 0.5)
        b.wait("document.querySelector('.oaims-root').oaims.latencies.length >= 3", 60, "the third overlay")
        b.dismiss_news()
        root.screenshot(str(shots / "notebook_annotator.png"))

        # opacity and contrast sliders: the page redraws, the kernel's traits follow
        pixel = f"o.pixel({y2 + 4.5}, {x2 + 0.5})"  # in the preview, beside the click mark
        before = b.js(root, pixel)
        b.driver.execute_script(
            "const s = arguments[0].querySelectorAll('.oaims-bar input[type=range]');"
            "s[0].value = 0; s[0].dispatchEvent(new Event('input'));"
            "s[1].value = 0.5; s[1].dispatchEvent(new Event('input'));",
            root,
        )
        after = b.js(root, pixel)
        assert after != before, f"the view is redrawn with the new opacity and contrast ({before} -> {after})"
        end = time.monotonic() + 10
        while run_code(kernel, "[annotator.opacity, annotator.contrast[0]]") != [0.0, 0.5]:
            assert time.monotonic() < end, "the sliders did not reach the kernel"
            time.sleep(0.2)
        # "accept over other objects": the checkbox sets the kernel's trait, and back
        from selenium.webdriver.common.by import By

        over = root.find_element(By.CSS_SELECTOR, ".oaims-bar input[type=checkbox]")
        assert not over.is_selected()
        over.click()
        end = time.monotonic() + 10
        while run_code(kernel, "annotator.overwrite") is not True:
            assert time.monotonic() < end, "the checkbox did not reach the kernel"
            time.sleep(0.2)
        over.click()

        # zoom in with the wheel: a click still lands on the pixel under the pointer; a drag draws a box
        from selenium.webdriver.common.actions.action_builder import ActionBuilder
        from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

        b.press(root, "next")
        third = largest_ids(labels, 3)[2]
        y3, x3 = object_centre(labels, third)
        scale = b.js(root, "o.view.scale")
        cx, cy = b.js(root, f"o.toClient({y3 + 0.5}, {x3 + 0.5})")
        ActionChains(b.driver).scroll_from_origin(ScrollOrigin.from_viewport(int(cx), int(cy)), 0, -400).perform()
        b.wait(f"document.querySelector('.oaims-root').oaims.view.scale > {1.5 * scale}", 10, "the zoom")
        b.click(root, y3 + 0.5, x3 + 0.5)
        b.wait("document.querySelector('.oaims-root').oaims.latencies.length >= 4", 60, "the zoomed click")
        assert run_code(kernel, "annotator.session.events[-2]['coords']") == [y3, x3]
        ys, xs = np.nonzero(labels == third)
        (ax, ay), (bx, by) = (
            b.js(root, f"o.toClient({v0}, {u0})")
            for v0, u0 in ((ys.min() - 3, xs.min() - 3), (ys.max() + 4, xs.max() + 4))
        )
        drag = ActionBuilder(b.driver)
        drag.pointer_action.move_to_location(int(ax), int(ay)).pointer_down()
        drag.pointer_action.move_to_location(int((ax + bx) / 2), int((ay + by) / 2)).move_to_location(int(bx), int(by))
        drag.pointer_action.pointer_up()
        drag.perform()
        b.wait("document.querySelector('.oaims-root').oaims.latencies.length >= 5", 60, "the box")
        assert run_code(kernel, "annotator.session.events[-2]['kind']") == "box"
        # a new class typed in the widget: the box's object is accepted with it
        from selenium.webdriver.common.keys import Keys

        root.find_element(By.CSS_SELECTOR, "input[placeholder='new class']").send_keys("nucleus", Keys.ENTER)
        end = time.monotonic() + 10
        while run_code(kernel, "annotator.class_name") != "nucleus":
            assert time.monotonic() < end, "the class did not reach the kernel"
            time.sleep(0.2)
        b.press(root, "accept")
        end = time.monotonic() + 30
        while "nucleus" not in run_code(kernel, "[name for _, name in annotator.object_classes.values()]"):
            assert time.monotonic() < end, "the object was not accepted with its class"
            time.sleep(0.2)

        # 3D: a click on a slice, Propagate, and the next slices have the object
        vol = b.annotator(1)
        z = int(np.argmax((vlabels == 1).sum((1, 2))))
        b.driver.execute_script(
            "const s = arguments[0].querySelector('.oaims-slice'); s.value = arguments[1];"
            "s.dispatchEvent(new Event('change'));",
            vol,
            z,
        )
        b.wait(f"document.querySelectorAll('.oaims-root')[1].dataset.imageKey === '[{z}]'", 30, "slice z")
        vy, vx = object_centre((vlabels[z] == 1).astype(int), 1)
        b.click(vol, vy + 0.5, vx + 0.5)
        b.wait("document.querySelectorAll('.oaims-root')[1].oaims.latencies.length >= 1", 60, "the 3D click")
        b.press(vol, "propagate")
        end = time.monotonic() + 180
        while "propagate" not in run_code(kernel, "[e['kind'] for e in volume.session.events]"):
            assert time.monotonic() < end, "the propagation did not finish"
            time.sleep(0.5)
        b.driver.execute_script(
            "const s = arguments[0].querySelector('.oaims-slice'); s.value = arguments[1];"
            "s.dispatchEvent(new Event('change'));",
            vol,
            z + 1,
        )
        b.wait(f"document.querySelectorAll('.oaims-root')[1].dataset.imageKey === '[{z + 1}]'", 30, "slice z + 1")
        b.wait("document.querySelectorAll('.oaims-root')[1].oaims.count('preview') > 0", 30, "the propagated slice")
        assert b.js(vol, "o.count('preview')") == run_code(kernel, f"int(volume.session.mask[{z + 1}].sum())")
        b.driver.save_screenshot(str(shots / "notebook_propagate.png"))

        # a restarted kernel leaves a widget that says so
        kernel.stop_channels()
        server.restart_kernel("annotate.ipynb")
        b.wait("document.querySelector('.oaims-root').dataset.connected === 'false'", 30, "'disconnected'")
        assert "disconnected" in b.js(root, "root.querySelector('.oaims-disconnected').textContent")
        b.driver.save_screenshot(str(shots / "notebook_disconnected.png"))


@pytest.mark.skipif(MISSING is not None, reason=f"no headless browser: {MISSING}")
def test_click_and_accept_in_notebook_7(tmp_path, nuclei):
    from selenium.webdriver.common.action_chains import ActionChains

    from conftest import largest_ids, object_centre

    image, labels = nuclei
    np.save(tmp_path / "nuclei.npy", image[:256, :256])
    write_notebook(
        tmp_path / "nb7.ipynb",
        [
            "import numpy as np\nfrom napari_oaims import Engine\nfrom napari_oaims.notebook import Annotator\n"
            "annotator = Annotator(np.load('nuclei.npy'), engine=Engine.pretrained(device='cpu', adaptation='none'))\n"
            "annotator"
        ],
    )
    env = {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    with JupyterServer(tmp_path, env=env, app="notebook") as server, NotebookBrowser(server) as b:
        b.open("nb7.ipynb")
        b.run_all(1)
        root = b.annotator(0)
        kernel = server.kernel("nb7.ipynb")
        target = largest_ids(labels[:256, :256], 1)[0]
        y, x = object_centre(labels[:256, :256], target)
        b.click(root, y + 0.5, x + 0.5)
        b.wait("document.querySelector('.oaims-root').oaims.latencies.length >= 1", 60, "the overlay")
        shown = b.js(root, "o.count('preview')")
        assert shown > 0 and shown == run_code(kernel, "int(annotator.session.mask.sum())")
        b.driver.execute_script("arguments[0].focus();", root)
        ActionChains(b.driver).send_keys("k").perform()
        b.wait("document.querySelector('.oaims-root').oaims.count('objects') > 0", 60, "the accepted object")
        assert run_code(kernel, "int(annotator.labels.max())") == 1
        kernel.stop_channels()
