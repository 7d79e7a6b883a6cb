"""The notebook annotator in a real browser: a local Jupyter server, headless Chromium driven by
selenium, and ``oaims bench notebook``.

:class:`JupyterServer` starts JupyterLab on 127.0.0.1 (a free port, a random token) in a folder;
:class:`NotebookBrowser` opens a notebook in it in headless Chromium (Debian's ``chromium`` and
``chromium-driver``; nothing is downloaded), runs its cells and clicks on an annotator's canvas
with real pointer events; :meth:`JupyterServer.kernel` is a client of the notebook's kernel, to
read the session the clicks went to.

:func:`bench_notebook` measures, in that browser: the API click (``Session.click`` in the kernel),
the widget's click-to-overlay latency (from the pointer's release to the overlay region drawn on
the canvas, measured in the page) at several image sizes, and the time from ``Annotator(...)`` to
the image on screen. Each widget click is followed by an API click on the same object, so both
see the same load.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

#: Where Debian puts Chromium and its driver.
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser_missing() -> str | None:
    """Why no headless Chromium can run here (None: it can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists() and shutil.which(Path(path).name) is None:
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'napari-oaims[testing]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code cells ``cells`` at ``path``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


class JupyterServer:
    """JupyterLab (``app="lab"``) or Notebook 7 (``app="notebook"``) on 127.0.0.1 serving ``root``
    (context manager); kernels get ``env``."""

    def __init__(self, root: Path, env: dict[str, str] | None = None, timeout: float = 60.0, app: str = "lab") -> None:
        if app not in ("lab", "notebook"):
            raise ValueError(f"app must be 'lab' or 'notebook', got {app!r}")
        self.app = app
        self.root = Path(root)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.root / "jupyter-server.log"
        self._env = {**os.environ, **(env or {})}
        self._timeout = timeout
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> "JupyterServer":
        module = "jupyterlab" if self.app == "lab" else "notebook"
        args = [
            sys.executable, "-m", module, "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
            "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=None",
            f"--LabApp.workspaces_dir={self.root / '.workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")  # containers and CI run as root
        self._proc = subprocess.Popen(args, stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=self._env)
        end = time.monotonic() + self._timeout
        while time.monotonic() < end:
            if self._proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {self.log.read_text()[-2000:]}")
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer within {self._timeout:.0f} s")

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API."""
        req = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def kernel_id(self, notebook: str) -> str:
        sessions = [s for s in self.api("GET", "/api/sessions") if s["path"].endswith(notebook)]
        if not sessions:
            raise RuntimeError(f"no kernel runs {notebook}")
        return sessions[0]["kernel"]["id"]

    def kernel(self, notebook: str):
        """A blocking client of the kernel that runs ``notebook`` (see :func:`run_code`)."""
        from jupyter_client import BlockingKernelClient
        from jupyter_core.paths import jupyter_runtime_dir

        client = BlockingKernelClient()
        client.load_connection_file(str(Path(jupyter_runtime_dir()) / f"kernel-{self.kernel_id(notebook)}.json"))
        client.start_channels()
        return client

    def restart_kernel(self, notebook: str) -> None:
        self.api("POST", f"/api/kernels/{self.kernel_id(notebook)}/restart")


def run_code(client, code: str, timeout: float = 120.0) -> Any:
    """Run ``code`` in the kernel; return the JSON its last line (an expression) evaluates to."""
    lines = code.strip().splitlines()
    wrapped = "\n".join([*lines[:-1], f"import json as _json; print('@@' + _json.dumps({lines[-1]}))"])
    msg_id = client.execute(wrapped)
    out, error = None, None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and "@@" in content["text"]:
            out = json.loads(content["text"].split("@@", 1)[1])
        elif kind == "error":
            error = "\n".join(content["traceback"])
        elif kind == "status" and content["execution_state"] == "idle":
            break
    if error:
        raise RuntimeError(f"kernel code failed: {error}")
    return out


class NotebookBrowser:
    """Headless Chromium (selenium) on a :class:`JupyterServer` (context manager)."""

    def __init__(self, server: JupyterServer, width: int = 1400, height: int = 1100) -> None:
        self.server = server
        self.size = (width, height)
        self.driver = None

    def __enter__(self) -> "NotebookBrowser":
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    f"--window-size={self.size[0]},{self.size[1]}"):  # fmt: skip
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_script_timeout(120)
        return self

    def __exit__(self, *exc) -> None:
        if self.driver is not None:
            self.driver.quit()

    def wait(self, script: str, timeout: float = 60.0, what: str = "") -> Any:
        """Wait until JS expression ``script`` is truthy; return its value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.driver.execute_script(f"return ({script});")
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"waited {timeout:.0f} s for {what or script}")

    def open(self, notebook: str) -> None:
        """Open ``notebook`` and wait for its kernel to be idle."""
        where = "lab/tree" if self.server.app == "lab" else "notebooks"
        self.driver.get(f"{self.server.url}/{where}/{notebook}?token={self.server.token}")
        self.wait("document.querySelector('.jp-Notebook .jp-Cell .cm-content')", 90, "the notebook")
        notebook = notebook.split("/")[-1]
        end = time.monotonic() + 90
        while not any(
            s["path"].endswith(notebook) and s["kernel"].get("execution_state") == "idle"
            for s in self.server.api("GET", "/api/sessions")
        ):
            if time.monotonic() > end:
                raise TimeoutError(f"no idle kernel for {notebook} within 90 s")
            time.sleep(0.2)
        time.sleep(1.0)  # the page connects to the kernel after the server started it
        self.dismiss_news()

    def dismiss_news(self) -> None:
        """Answer JupyterLab's question about news (a toast over the page's corner)."""
        self.driver.execute_script(
            "for (const b of document.querySelectorAll('.Toastify button, .jp-Notification-Toast button'))"
            " if (b.textContent.trim() === 'No') b.click();"
        )

    def run_all(self, cells: int) -> None:
        """Run the notebook's ``cells`` cells (Run > Run All Cells)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        self.wait(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length >= {cells}", 60, "the cells")
        for xpath in (
            "//div[contains(@class, 'lm-MenuBar-itemLabel') and text()='Run']",
            "//div[contains(@class, 'lm-Menu-itemLabel') and text()='Run All Cells']",
        ):
            WebDriverWait(self.driver, 60).until(expected_conditions.element_to_be_clickable((By.XPATH, xpath))).click()

    def run_cell(self, index: int) -> None:
        """Run the ``index``-th cell (select it, then Shift+Enter)."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self.wait(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length > {index}", 60, "the cell")
        prompt = self.driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .jp-InputPrompt")[index]
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", prompt)
        prompt.click()
        ActionChains(self.driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()

    def annotator(self, index: int = 0, timeout: float = 120.0):
        """The ``index``-th annotator's root element, once its image is shown."""
        self.wait(
            f"document.querySelectorAll('.oaims-root[data-image-shown-ms]').length > {index}", timeout, "the annotator"
        )
        return self.driver.execute_script(f"return document.querySelectorAll('.oaims-root')[{index}];")

    def js(self, root, expr: str) -> Any:
        """Evaluate ``expr`` with ``root`` (the annotator's element) and ``o`` (its ``oaims`` state)."""
        return self.driver.execute_script(f"const root = arguments[0]; const o = root.oaims; return ({expr});", root)

    def click(self, root, y: float, x: float, button: str = "left") -> None:
        """A real click at display pixel ``(y, x)`` of the annotator (pixel i spans [i, i + 1))."""
        from selenium.webdriver.common.actions.action_builder import ActionBuilder
        from selenium.webdriver.common.actions.mouse_button import MouseButton

        self.driver.execute_script("arguments[0].querySelector('canvas').scrollIntoView({block: 'center'});", root)
        cx, cy = self.js(root, f"o.toClient({y}, {x})")
        actions = ActionBuilder(self.driver)
        actions.pointer_action.move_to_location(int(round(cx)), int(round(cy)))
        code = MouseButton.RIGHT if button == "right" else MouseButton.LEFT
        actions.pointer_action.pointer_down(code).pointer_up(code)
        actions.perform()

    def press(self, root, label: str) -> None:
        """Press the annotator's button with ``data-action`` ``label``."""
        self.driver.execute_script(f"arguments[0].querySelector('[data-action=\"{label}\"]').click();", root)

    def overlays(self, root) -> int:
        return int(self.js(root, "o.overlays"))


# -- oaims bench notebook --------------------------------------------------------------------------
def bench_image(side: int, objects: int = 24, radius: int = 9, seed: int = 0) -> tuple[np.ndarray, list]:
    """A procedural ``side`` x ``side`` image: noise with ``objects`` bright discs; their centres."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.1, 0.03, (side, side)).astype(np.float32)
    yy, xx = np.mgrid[-2 * radius : 2 * radius + 1, -2 * radius : 2 * radius + 1]
    disc = np.clip(radius + 0.5 - np.hypot(yy, xx), 0, 1).astype(np.float32) * 0.7
    centres: list[tuple[int, int]] = []
    while len(centres) < objects:
        c = tuple(int(v) for v in rng.integers(3 * radius, side - 3 * radius, 2))
        if all(max(abs(c[0] - d[0]), abs(c[1] - d[1])) > 5 * radius for d in centres):
            centres.append(c)
            image[c[0] - 2 * radius : c[0] + 2 * radius + 1, c[1] - 2 * radius : c[1] + 2 * radius + 1] += disc
    return image, centres


def api_click(session, centre) -> float:
    """The time (ms) of one ``Session.click`` at ``centre`` (in the kernel); the object is cleared after."""
    import time as _time

    t0 = _time.perf_counter()
    session.click(centre)
    ms = (_time.perf_counter() - t0) * 1e3
    session.clear()
    return ms


def _cells(sizes: list[int], objects: int, seed: int, adaptation: str, device: str) -> list[str]:
    cells = [
        "from napari_oaims import Engine\nfrom napari_oaims.notebook import Annotator\n"
        "from napari_oaims.evaluation.notebook import api_click, bench_image\n"
        f"engine = Engine.pretrained(device={device!r}, adaptation={adaptation!r})"
    ]
    for size in sizes:
        cells.append(
            f"image_{size}, centres_{size} = bench_image({size}, objects={objects}, seed={seed})\n"
            f"api_{size} = engine.session(image_{size})\n"
            f"annotator_{size} = Annotator(image_{size}, engine=engine)\nannotator_{size}"
        )
    return cells


def bench_notebook(
    sizes=(512, 4096),
    objects: int = 20,
    warmup: int = 3,
    seed: int = 0,
    adaptation: str = "none",
    device: str = "auto",
    workdir: Path | None = None,
    screenshot: Path | None = None,
) -> dict[str, Any]:
    """Measure the notebook annotator in headless Chromium against a local JupyterLab (see the
    module docstring). Returns the summary rows, open times and every latency (ms)."""
    import tempfile

    from napari_oaims.evaluation.gui import _percentiles

    why = browser_missing()
    if why is not None:
        raise RuntimeError(f"no headless browser: {why}")
    sizes = [int(s) for s in sizes]
    with tempfile.TemporaryDirectory() as tmp:
        root_dir = Path(workdir or tmp)
        write_notebook(root_dir / "bench.ipynb", _cells(sizes, objects + warmup, seed, adaptation, device))
        src = str(Path(__file__).resolve().parents[2])
        env = {"PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
        out: dict[str, Any] = {"sizes": sizes, "open_ms": {}, "api_ms": {}, "widget_ms": {}, "kernel_ms": {}}
        with JupyterServer(root_dir, env=env) as server, NotebookBrowser(server) as b:
            b.open("bench.ipynb")
            b.run_cell(0)
            kernel = server.kernel("bench.ipynb")
            try:
                run_code(kernel, "engine.device.type", 300)  # the first cell is done
                for i, size in enumerate(sizes):
                    b.run_cell(i + 1)  # one at a time: an annotator's open time is its own
                    el = b.annotator(i, timeout=300)
                    out["open_ms"][size] = float(b.js(el, "o.imageShownMs"))
                    factor = run_code(kernel, f"annotator_{size}.factor")
                    centres = run_code(kernel, f"centres_{size}")
                    widget, kernel_ms, api = [], [], []
                    for n, (cy, cx) in enumerate(centres):
                        seen = int(b.js(el, "o.latencies.length"))
                        b.click(el, (cy + 0.5) / factor, (cx + 0.5) / factor)
                        b.wait(
                            f"document.querySelectorAll('.oaims-root')[{i}].oaims.latencies.length > {seen}",
                            120,
                            "the click's overlay",
                        )
                        # the API click on the same object right after, under the same load
                        api_ms = float(run_code(kernel, f"api_click(api_{size}, centres_{size}[{n}])"))
                        if n >= warmup:
                            widget.append(float(b.js(el, "o.latencies[o.latencies.length - 1]")))
                            kernel_ms.append(float(run_code(kernel, f"annotator_{size}.last_latency_ms")))
                            api.append(api_ms)
                        overlays = b.overlays(el)
                        b.press(el, "clear")
                        b.wait(
                            f"document.querySelectorAll('.oaims-root')[{i}].oaims.overlays > {overlays}", 60, "clear"
                        )
                    out["widget_ms"][size] = widget
                    out["kernel_ms"][size] = kernel_ms
                    out["api_ms"][size] = api
                    if screenshot is not None and i == 0:
                        b.driver.save_screenshot(str(screenshot))
            finally:
                kernel.stop_channels()
    rows = {}
    for size in sizes:
        rows[f"API click {size}"] = _percentiles(out["api_ms"][size])
        rows[f"widget {size}"] = _percentiles(out["widget_ms"][size])
    out["summary"] = rows
    return out


def report(out: dict[str, Any]) -> list[str]:
    """The targets, checked: click-to-overlay p50 within 1.5x the API's + 30 ms; a 4096 image open
    in under 2 s; a click on the largest image costs the same as on the smallest."""
    rows, sizes, lines = out["summary"], out["sizes"], []
    for size in sizes:
        api, widget = rows[f"API click {size}"]["p50_ms"], rows[f"widget {size}"]["p50_ms"]
        limit = 1.5 * api + 30
        lines.append(
            f"{size} px: click-to-overlay p50 {widget:.0f} ms, target <= 1.5 x {api:.0f} + 30 = {limit:.0f} ms: "
            f"{'met' if widget <= limit else 'NOT met'}; image open {out['open_ms'][size]:.0f} ms"
        )
    big, small = max(sizes), min(sizes)
    if big != small:
        extra = rows[f"widget {big}"]["p50_ms"] - rows[f"API click {big}"]["p50_ms"]
        base = rows[f"widget {small}"]["p50_ms"] - rows[f"API click {small}"]["p50_ms"]
        lines.append(
            f"widget overhead over the API click: {base:.0f} ms at {small} px, {extra:.0f} ms at {big} px; "
            f"{big} px open {out['open_ms'][big]:.0f} ms (target < 2000: "
            f"{'met' if out['open_ms'][big] < 2000 else 'NOT met'})"
        )
    return lines


def run(args) -> int:
    """``oaims bench notebook``."""
    from napari_oaims.evaluation.common import format_table, write_json

    out = bench_notebook(
        sizes=args.sizes,
        objects=args.clicks,
        warmup=args.warmup,
        seed=args.seed,
        adaptation=args.adaptation,
        device=args.device,
        screenshot=Path(args.screenshot) if args.screenshot else None,
    )
    print(f"headless Chromium, JupyterLab, adaptation {args.adaptation}, {args.clicks} clicks per size")
    print(format_table(out["summary"], ["clicks", "p50_ms", "p95_ms", "mean_ms", "max_ms"]))
    for line in report(out):
        print(line)
    if args.out:
        write_json({"settings": {k: str(v) for k, v in vars(args).items() if k != "func"}, **out}, args.out)
        print(f"saved {args.out}")
    return 0
