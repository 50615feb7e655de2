"""The host identity: hostname + boot id, or the RAYJOULE_HOST_KEY test hook."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

CODE = "from rayjoule.cluster.hosts import host_key; print(host_key())"


def host_key_in(env: dict[str, str]) -> str:
    """host_key() of a fresh process (it is cached for a process's life)."""
    proc = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True,
                          text=True, check=True)
    return proc.stdout.strip()


def test_the_host_key_is_the_hostname_and_boot_id():
    env = {k: v for k, v in os.environ.items() if k != "RAYJOULE_HOST_KEY"}
    name, _, boot = host_key_in(env).rpartition(":")
    assert name == socket.gethostname() and len(boot) == 8


def test_rayjoule_host_key_makes_a_process_pose_as_another_host():
    assert host_key_in({**os.environ, "RAYJOULE_HOST_KEY": " netns-w1:test "}) == "netns-w1:test"


def test_an_empty_rayjoule_host_key_is_ignored():
    env = {**os.environ, "RAYJOULE_HOST_KEY": ""}
    assert host_key_in(env).startswith(f"{socket.gethostname()}:")
