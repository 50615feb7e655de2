"""The lost-head watch: a silent GCS is reported once, after the grace, before Ray would end
the driver; a head that answers again in time is not."""

from __future__ import annotations

import socket
import threading
import time

from rayjoule.cluster.head_watch import HeadWatch, head_answers, ray_reconnect_timeout_s


def test_a_listening_port_answers_and_a_closed_one_does_not():
    server = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{server.getsockname()[1]}"
    assert head_answers(address)
    server.close()
    assert not head_answers(address, timeout_s=0.5)


def test_a_head_silent_for_the_grace_is_reported_once():
    lost: list[float] = []
    done = threading.Event()

    def on_lost(silent_s: float) -> None:
        lost.append(silent_s)
        done.set()

    watch = HeadWatch("10.0.0.1:6379", on_lost, grace_s=0.3, interval_s=0.05,
                      answers=lambda _: False).start()
    assert done.wait(5.0)
    time.sleep(0.3)  # it reports once, then stops watching
    watch.stop()
    assert len(lost) == 1 and lost[0] >= 0.3


def test_a_head_that_answers_again_within_the_grace_is_not_reported():
    replies = iter([False, False, True] + [False] * 3 + [True] * 1000)
    lost: list[float] = []
    watch = HeadWatch("10.0.0.1:6379", lost.append, grace_s=0.5, interval_s=0.05,
                      answers=lambda _: next(replies)).start()
    time.sleep(1.0)
    watch.stop()
    assert lost == []


def test_the_grace_is_half_of_rays_reconnect_timeout(monkeypatch):
    monkeypatch.setenv("RAY_gcs_rpc_server_reconnect_timeout_s", "20")
    assert ray_reconnect_timeout_s() == 20.0
    assert HeadWatch("h:1", lambda s: None).grace_s == 10.0
    monkeypatch.delenv("RAY_gcs_rpc_server_reconnect_timeout_s")
    assert HeadWatch("h:1", lambda s: None).grace_s == 30.0
