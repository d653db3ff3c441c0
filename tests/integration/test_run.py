"""`fwgate run` and the preload library it loads: a library that the dynamic loader cannot load stops
`fwgate run` before the program starts (the loader itself would only warn and run the program without
the client)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import fwit
from conftest import FWGATE_BIN

pytestmark = pytest.mark.fwgate_only


def client_library() -> str:
    """The library `fwgate run` uses in this run: FWGATE_CLIENT_LIB, or the build tree's."""
    env = os.environ.get("FWGATE_CLIENT_LIB")
    if env:
        return env
    path = os.path.join(os.path.dirname(FWGATE_BIN), "..", "..", "src", "client", "libfwgate-client.so")
    assert os.path.exists(path), f"no libfwgate-client.so beside {FWGATE_BIN}"
    return os.path.realpath(path)


def fwgate_run(tmp_path, library: str | None, argv: list[str]) -> subprocess.CompletedProcess:
    env = fwit.clean_env(FWGATE_DISABLE="1")
    env.pop("LD_PRELOAD", None)
    if library is None:
        env.pop("FWGATE_CLIENT_LIB", None)
    else:
        env["FWGATE_CLIENT_LIB"] = library
    return fwit.run([FWGATE_BIN, "run", "--"] + argv, timeout=20, env=env, cwd=str(tmp_path))


def assert_refused(tmp_path, library: str, *reason: str) -> None:
    marker = tmp_path / "the-program-ran"
    cp = fwgate_run(tmp_path, library, ["sh", "-c", f"echo ran > {marker}"])
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode != 0, (cp.returncode, err)
    assert not marker.exists(), "the program ran without the firewall client"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("fwgate run: cannot load the firewall client "), err
    for word in reason:
        assert word in lines[0], err


def test_run_loads_the_library(tmp_path):
    """The working case, for contrast: the program runs with the library in its address space."""
    cp = fwgate_run(tmp_path, client_library(), ["sh", "-c", "grep -c libfwgate-client.so /proc/self/maps"])
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    assert int(cp.stdout.decode().strip()) >= 1, cp.stdout


def test_run_refuses_a_missing_library(tmp_path):
    assert_refused(tmp_path, "/nonexistent/libfwgate-client.so", "/nonexistent/libfwgate-client.so",
                   "No such file or directory")


def test_run_refuses_a_library_of_another_architecture(tmp_path):
    """The real library with its ELF class byte set to 32-bit: what a wrong build would look like."""
    wrong = tmp_path / "libfwgate-client.so"
    data = bytearray(open(client_library(), "rb").read())
    assert data[:4] == b"\x7fELF" and data[4] == 2, data[:5]
    data[4] = 1  # ELFCLASS32
    wrong.write_bytes(bytes(data))
    assert_refused(tmp_path, str(wrong), str(wrong), "ELFCLASS32")


def test_run_refuses_a_file_that_is_no_library(tmp_path):
    text = tmp_path / "libfwgate-client.so"
    text.write_text("not a shared object, only text long enough to hold an ELF header.\n" * 8)
    assert_refused(tmp_path, str(text), "invalid ELF header")


def test_run_refuses_a_path_ld_preload_cannot_carry(tmp_path):
    """ld.so splits LD_PRELOAD at colons and spaces: such a path would load something else, or nothing."""
    odd = tmp_path / "a:b"
    odd.mkdir()
    shutil.copy(client_library(), odd / "libfwgate-client.so")
    assert_refused(tmp_path, str(odd / "libfwgate-client.so"), "space or a colon")


def test_run_makes_a_relative_library_path_absolute(tmp_path):
    """A relative FWGATE_CLIENT_LIB still loads after the program changes directory."""
    shutil.copy(client_library(), tmp_path / "libfwgate-client.so")
    cp = fwgate_run(tmp_path, "libfwgate-client.so",
                    ["sh", "-c", "cd / && sh -c 'grep -c libfwgate-client.so /proc/self/maps'"])
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    assert int(cp.stdout.decode().strip()) >= 1, cp.stdout


BIND_TWICE = ("import socket\n"
              "a = socket.socket(); a.bind(('0.0.0.0', 0))\n"
              "b = socket.socket(); b.bind(('0.0.0.0', {port}))\n"
              "print(b.getsockname()[1])\n")


def test_debug_names_a_bind_that_stays_local(tmp_path):
    """FWGATE_DEBUG=2 prints one line for each TCP bind() that stays on this host, with the reason."""
    port = fwit.refused_port()
    ini = tmp_path / "client.ini"
    ini.write_text(f"[python3]\nLocalBindTcpPorts = {port}\n")
    env = fwit.clean_env(FWGATE_DEBUG="2", FWGATE_SERVER=f"127.0.0.1:{fwit.refused_port()}", FWGATE_TIMEOUT="500",
                         FWGATE_USER_CONFIG=str(ini), FWGATE_CONFIG_DIR=str(tmp_path / "etc"),
                         FWGATE_CACHE=str(tmp_path / "cache"))
    env.pop("LD_PRELOAD", None)
    cp = fwit.run([FWGATE_BIN, "run", "--", "/usr/bin/python3", "-c", BIND_TWICE.format(port=port)], timeout=30,
                  env=env, cwd=str(tmp_path))
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode == 0 and cp.stdout.decode().strip() == str(port), err
    assert "bind 0.0.0.0:0: local (no remote primary connection" in err, err
    assert f"bind 0.0.0.0:{port}: local (LocalBindTcpPorts)" in err, err
