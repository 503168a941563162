"""Who may use a server: `--listen` refuses to start without `--auth`; with it, a request without the password is
rejected; without Gradio the command says what to install."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from cli_helpers import error_lines, run_in_process, run_oneword
from conftest import free_port

LISTEN_ERROR = "error: --listen serves other machines: give --auth USER:PASSWORD too"


def test_listen_without_auth_refuses_to_start(tmp_path):
    result = run_oneword("ui", "--listen", "--workspace", str(tmp_path / "ws"), "--port", str(free_port()))
    assert result.returncode == 1
    assert error_lines(result) == [LISTEN_ERROR]
    assert not (tmp_path / "ws").exists()


def test_auth_must_name_user_and_password(monkeypatch, capsys):
    code, _, err = run_in_process(monkeypatch, capsys, "ui", "--listen", "--auth", "user")
    assert (code, err.strip()) == (1, "error: --auth must be USER:PASSWORD, both non-empty")


def test_without_gradio_one_line_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` fails as if it were not installed
    code, _, err = run_in_process(monkeypatch, capsys, "ui", "--workspace", str(tmp_path))
    assert (code, err.strip()) == (1, 'error: the web UI needs Gradio: pip install "oneword[ui]"')


def _status(url: str, data: bytes | None = None, cookie: str | None = None) -> tuple[int, str | None]:
    request = urllib.request.Request(url, data=data, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("set-cookie")
    except urllib.error.HTTPError as error:
        return error.code, None
    except urllib.error.URLError:
        return 0, None  # not listening yet


def test_with_auth_a_request_without_the_password_is_rejected(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "oneword", "ui", "--listen", "--auth", "ann:s3cret", "--port", str(port),
         "--workspace", str(tmp_path / "ws")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while _status(f"{base}/")[0] != 200:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.5)
        assert _status(f"{base}/config")[0] == 401
        assert _status(f"{base}/gradio_api/info")[0] == 401
        wrong = urllib.parse.urlencode({"username": "ann", "password": "guess"}).encode()
        assert _status(f"{base}/login", wrong)[0] == 400
        right = urllib.parse.urlencode({"username": "ann", "password": "s3cret"}).encode()
        code, cookie = _status(f"{base}/login", right)
        assert code == 200 and cookie
        assert _status(f"{base}/config", cookie=cookie.split(";")[0])[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
