"""`make image-check`: build the Docker image on this machine and check it for real.

No registry is needed: unless PYTHON_IMAGE names a base image, one is built from Debian's
packages (debootstrap bookworm with python3 and python3-venv, from DEBIAN_MIRROR) and imported as
`chat-base:bookworm`; it trusts the CA certificates this machine trusts (copied from
/usr/local/share/ca-certificates), so the build stage reaches PyPI as the host does. Everything
runs with `--network host` and the server listens on 127.0.0.1 only.

Checks: the runtime image has no pip or uv and runs as a non-root user; a DATA_DIR it cannot
write is one clear line (no traceback); the container becomes healthy; register, log in, create a
chat and post to it; the data survives the container being replaced (same volume); `docker stop`
with an event stream open exits 0 within 5 s. Needs root (debootstrap) and a running dockerd.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "chat-base:bookworm"
IMAGE = "chat-server:image-check"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
STOP_LIMIT_SECONDS = 5.0
HEALTHY_WITHIN_SECONDS = 120.0


class CheckFailed(Exception):
    pass


def run(*args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise CheckFailed(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr or result.stdout}")
    return result


def step(text: str) -> None:
    print(f"image-check: {text}", flush=True)


def image_exists(name: str) -> bool:
    return run("docker", "image", "inspect", name, check=False).returncode == 0


def build_debian_base() -> None:
    """debootstrap a minimal bookworm with Python and its venv module, then `docker import` it."""
    if not shutil.which("debootstrap"):
        raise CheckFailed("debootstrap is missing: apt-get install -y debootstrap (or pass PYTHON_IMAGE)")
    with tempfile.TemporaryDirectory(prefix="chat-base-") as temporary:
        root = Path(temporary) / "rootfs"
        step(f"building {BASE_IMAGE} with debootstrap from {MIRROR} (a few minutes)")
        run(
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(root),
            MIRROR,
        )
        extra = sorted(HOST_CA_DIR.glob("*.crt")) if HOST_CA_DIR.is_dir() else []
        for certificate in extra:
            shutil.copy(certificate, root / "usr/local/share/ca-certificates" / certificate.name)
        if extra:
            run("chroot", str(root), "update-ca-certificates")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(root / cache, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", "-", BASE_IMAGE], stdin=tar.stdout, capture_output=True)
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise CheckFailed(f"docker import failed: {imported.stderr.decode()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def in_image(command: str) -> subprocess.CompletedProcess[str]:
    return run("docker", "run", "--rm", "--network", "host", "--entrypoint", "sh", IMAGE, "-c", command, check=False)


def check_image_contents() -> None:
    uid = in_image("id -u").stdout.strip()
    if uid in ("", "0"):
        raise CheckFailed(f"the image runs as uid {uid or '?'}, not as a non-root user")
    found = in_image(
        "command -v uv pip pip3; python3 -m pip --version 2>/dev/null; ls /app/.venv/bin | grep -xE 'pip[0-9.]*|uvx?'"
    )
    if found.stdout.strip():
        raise CheckFailed(f"the runtime image still has pip or uv:\n{found.stdout}")
    step(f"runtime image: uid {uid}, no pip, no uv")


def check_unwritable_data_dir() -> None:
    with tempfile.TemporaryDirectory(prefix="chat-unwritable-") as directory:
        os.chmod(directory, 0o700)  # root's, so not the image's user's
        result = run("docker", "run", "--rm", "--network", "host", "-v", f"{directory}:/data", IMAGE, check=False)
    output = result.stderr + result.stdout
    if result.returncode == 0 or "Traceback" in output or "DATA_DIR /data is not a writable directory" not in output:
        raise CheckFailed(f"an unwritable DATA_DIR should be one clear line; got exit {result.returncode}:\n{output}")
    step(f"unwritable DATA_DIR: {output.strip().splitlines()[-1]}")


def start(name: str, volume: str, port: int) -> None:
    run(
        "docker", "run", "--detach", "--name", name, "--network", "host",
        "-e", "HOST=127.0.0.1", "-e", f"PORT={port}", "-v", f"{volume}:/data", IMAGE,
    )  # fmt: skip


def wait_healthy(name: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < HEALTHY_WITHIN_SECONDS:
        state = json.loads(run("docker", "inspect", "--format", "{{json .State}}", name).stdout)
        health = (state.get("Health") or {}).get("Status")
        if health == "healthy":
            return time.monotonic() - started
        if not state.get("Running"):
            logs = run("docker", "logs", "--tail", "30", name, check=False)
            raise CheckFailed(f"{name} stopped (exit {state.get('ExitCode')}):\n{logs.stdout}{logs.stderr}")
        time.sleep(1)
    raise CheckFailed(f"{name} not healthy within {HEALTHY_WITHIN_SECONDS:.0f} s")


def exit_code_of(name: str) -> int:
    return int(run("docker", "inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())


@contextmanager
def event_stream(base: str, token: str) -> Iterator[threading.Event]:
    """An open GET /chat/events; the event is set once its first bytes arrived."""
    opened = threading.Event()

    def read() -> None:
        try:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.stream("GET", f"{base}/chat/events", headers=headers, timeout=30) as response:
                for _ in response.iter_bytes():
                    opened.set()
        except httpx.HTTPError:
            pass  # the server going away ends the stream

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    yield opened
    thread.join(timeout=10)


def check_running_server() -> None:
    name = volume = f"chat-image-check-{uuid.uuid4().hex[:8]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        start(name, volume, port)
        step(f"healthy after {wait_healthy(name):.1f} s")
        http = httpx.Client(base_url=base, timeout=30)
        credentials = {"username": "imagecheck", "password": "image-check-password"}
        http.post("/auths/register", json=credentials).raise_for_status()
        token = http.post("/auths/login", data=credentials).raise_for_status().json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        session = http.post("/chat/sessions", json={"title": "In a container"}, headers=auth).raise_for_status().json()
        messages_path = f"/chat/sessions/{session['_id']}/messages"
        http.post(messages_path, json={"content": "still here?"}, headers=auth).raise_for_status()
        step("registered, logged in, created a chat and posted to it")

        began = time.monotonic()
        run("docker", "stop", "--time", "10", name)
        step(f"docker stop, no stream open: exit {exit_code_of(name)} after {time.monotonic() - began:.1f} s")
        run("docker", "rm", name)
        start(name, volume, port)
        wait_healthy(name)
        token = http.post("/auths/login", data=credentials).raise_for_status().json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        messages = http.get(messages_path, headers=auth).raise_for_status().json()
        if [m["content"] for m in messages["items"]] != ["still here?"]:
            raise CheckFailed(f"after a new container on the same volume the chat holds {messages['items']}")
        step("the data survived a new container on the same volume")

        with event_stream(base, token) as opened:
            if not opened.wait(15):
                raise CheckFailed("the event stream did not open")
            began = time.monotonic()
            run("docker", "stop", "--time", "10", name)
            took = time.monotonic() - began
        exit_code = exit_code_of(name)
        step(f"docker stop with an event stream open: exit {exit_code} after {took:.1f} s")
        if exit_code != 0 or took > STOP_LIMIT_SECONDS:
            logs = run("docker", "logs", "--tail", "20", name, check=False)
            raise CheckFailed(
                f"docker stop should exit 0 within {STOP_LIMIT_SECONDS:.0f} s; got exit {exit_code} "
                f"after {took:.1f} s:\n{logs.stderr}{logs.stdout}"
            )
    finally:
        run("docker", "rm", "--force", name, check=False)
        run("docker", "volume", "rm", "--force", volume, check=False)


def main() -> None:
    if run("docker", "info", check=False).returncode != 0:
        sys.exit("image-check: no Docker daemon answers (apt-get install docker.io, then start dockerd)")
    base = os.environ.get("PYTHON_IMAGE")
    try:
        if not base:
            base = BASE_IMAGE
            if not image_exists(base):
                build_debian_base()
        step(f"building {IMAGE} on {base}")
        build = subprocess.run(
            ["docker", "build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base}", "-t", IMAGE, "."],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        if build.returncode != 0:
            raise CheckFailed(f"docker build failed:\n{build.stdout[-4000:]}{build.stderr[-4000:]}")
        check_image_contents()
        check_unwritable_data_dir()
        check_running_server()
    except CheckFailed as failure:
        sys.exit(f"image-check: FAILED: {failure}")
    step("all checks passed")


if __name__ == "__main__":
    main()
