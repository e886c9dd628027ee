"""Just enough W3C WebDriver to drive headless Chromium through chromedriver with httpx (no selenium)."""

import base64
import shutil
import socket
import subprocess
import tempfile
import time

import httpx

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C element reference key
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def missing() -> str | None:
    """Why a browser test cannot run here, or None."""
    if not shutil.which("chromedriver"):
        return "chromedriver is not installed (apt-get install chromium chromium-driver)"
    if not any(shutil.which(name) for name in CHROMIUM):
        return "chromium is not installed (apt-get install chromium chromium-driver)"
    return None


def require() -> None:
    """Skip the calling test where Chromium is missing; fail it in CI, where a skip would read as a pass."""
    import os

    import pytest

    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {reason}")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriverError(AssertionError):
    pass


class Browser:
    def __init__(self, base_url: str, timeout: float = 10.0):
        self.base_url = base_url
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="gatehouse-chromium-")
        port = _free_port()
        self.driver = subprocess.Popen(
            [shutil.which("chromedriver"), f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        self.session = None
        try:
            self._wait_ready()
            binary = next(shutil.which(name) for name in CHROMIUM if shutil.which(name))
            args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", f"--user-data-dir={self.profile.name}"]  # fmt: skip
            options = {"binary": binary, "args": args}
            caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except BaseException:
            self.quit()
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.http.get("/status").json()["value"]["ready"]:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise WebDriverError("chromedriver did not start")

    def _call(self, method: str, path: str, body: dict | None = None):
        response = self.http.request(method, path, json=body)
        value = response.json().get("value")
        if response.status_code != 200:
            raise WebDriverError(f"{method} {path}: {value.get('error')}: {value.get('message', '')[:300]}")
        return value

    def _s(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    # --- what tests use ---------------------------------------------------------------------------------

    def get(self, path: str) -> None:
        self._s("POST", "/url", {"url": self.base_url + path})

    @property
    def url(self) -> str:
        return self._s("GET", "/url")

    @property
    def source(self) -> str:
        return self._s("GET", "/source")

    def find(self, css: str) -> str:
        """The element's id, waiting up to `timeout` for it to appear."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return self._s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]
            except WebDriverError:
                if time.monotonic() > deadline:
                    raise WebDriverError(f"no element {css!r} on {self.url}") from None
                time.sleep(0.1)

    def type(self, css: str, text: str, clear: bool = True) -> None:
        element = self.find(css)
        if clear:
            self._s("POST", f"/element/{element}/clear", {})
        self._s("POST", f"/element/{element}/value", {"text": text})

    def click(self, css: str) -> None:
        self._s("POST", f"/element/{self.find(css)}/click", {})

    def submit(self, css: str) -> None:
        """Click something that loads a new page, and wait for that page."""
        old = self.find("html")
        self.click(css)
        deadline = time.monotonic() + self.timeout
        while self.find("html") == old or self._s("POST", "/execute/sync", {"script": "return document.readyState",
                                                                            "args": []}) != "complete":  # fmt: skip
            if time.monotonic() > deadline:
                raise WebDriverError(f"no new page after clicking {css!r}")
            time.sleep(0.05)

    def value(self, css: str) -> str:
        return self._s("GET", f"/element/{self.find(css)}/property/value")

    def text(self, css: str) -> str:
        return self._s("GET", f"/element/{self.find(css)}/text")

    def execute(self, script: str, *args):
        """Run `script` (a function body: `return …`, arguments in `arguments`) in the page; its result."""
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def _cdp(self, command: str, params: dict) -> dict:
        return self._s("POST", "/goog/cdp/execute", {"cmd": command, "params": params})

    def viewport(self, width: int, height: int = 900) -> None:
        """Lay pages out in exactly width x height CSS pixels (window.innerWidth == width), as a screen that size."""
        self._cdp("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})  # fmt: skip

    def screenshot(self, path, max_height: int = 5000) -> None:
        """The whole page (not only the viewport), at most `max_height` pixels tall, as a PNG file."""
        width, height = self.execute("const e = document.documentElement;"
                                     "return [Math.max(e.scrollWidth, innerWidth), Math.max(e.scrollHeight, innerHeight)];")  # fmt: skip
        clip = {"x": 0, "y": 0, "width": width, "height": min(height, max_height), "scale": 1}
        data = self._cdp("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))

    def quit(self) -> None:
        if self.session:
            try:
                self._s("DELETE", "")
            except (httpx.HTTPError, WebDriverError):
                pass
            self.session = None
        self.http.close()
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()
        self.profile.cleanup()
