"""``kill -9`` of the daemon at any instant (issue 14), through the crash lab (crashlab.py).

After every kill and restart the kernel equals the store, every acknowledged
operation holds, running containers' names resolve and ports answer, and once
everything is removed nothing is left.  The sweeps kill the daemon at each
durable step of one operation in turn, so every instant between two steps is
hit; the churn test kills it at random moments and random steps of a mix.
``make soak`` runs the long version (200 kills).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ..conftest import passed
from .crashlab import CrashLab

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("COVE_CRASHLAB_SEED", "14"))


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[CrashLab]:
    lab = CrashLab(seed=SEED)
    try:
        lab.start()
        yield lab
    finally:
        lab.close(keep=not passed(request))     # a failure's verdict names the daemon log kept there


def verdict(lab: CrashLab) -> str:
    st = lab.stats
    return (f"seed {SEED}: {st.cycles} kills ({st.kills_point} at a step, {st.kills_timer} by timer, "
            f"{st.kills_idle} at rest), {st.ops} operations, {st.interrupted} interrupted; log {lab.d.log}\n"
            + "\n".join(st.problems()))


def test_kill_9_at_random_moments_of_a_churn_loop(lab: CrashLab) -> None:
    for _ in range(22):
        lab.cycle()
    lab.finish()
    st = lab.stats
    assert not st.problems(), verdict(lab)
    assert st.kills_point + st.kills_timer >= 11 and st.interrupted >= 5, verdict(lab)


# Seen failing with the protection removed (intents.begin writing nothing, so no replay): the
# churn test, this one (a veth left untagged by a kill in `connect` made the next connect fail with
# 409 "create veth ...: File exists") and the network sweep ("untagged link br-..." in every cycle
# after a kill in `network create`).  The run/rm sweep passed without them: a kill in `run` leaves
# the veth in the container's namespace, which goes with it.  A kill while the shim is still in
# `runc run` (no init recorded yet) is not reached here, as the restarted daemon comes up after runc
# has finished; tests/unit/test_abandon.py shows that case.
def test_kill_9_at_every_step_of_connect_and_disconnect(lab: CrashLab) -> None:
    lab.net_create("cn1", "10.97.1.0/24")
    lab.net_create("cn2", "10.97.2.0/24")
    lab.run("c1", "cn1")

    def connected() -> None:
        if "cn2" not in lab.conts["c1"].nets:
            lab.connect("cn2", "c1")

    def disconnected() -> None:
        if "cn2" in lab.conts["c1"].nets:
            lab.disconnect("cn2", "c1")

    n_connect = lab.sweep(disconnected, lambda: lab.connect("cn2", "c1"), disconnected)
    n_disconnect = lab.sweep(connected, lambda: lab.disconnect("cn2", "c1"), connected)
    lab.finish()
    assert not lab.stats.problems(), verdict(lab)
    assert n_connect >= 5 and n_disconnect >= 2, (n_connect, n_disconnect)


def test_kill_9_at_every_step_of_run_and_rm(lab: CrashLab) -> None:
    lab.net_create("cn1", "10.97.1.0/24")

    def gone() -> None:
        if "c1" in lab.conts:
            lab.rm("c1")

    def there() -> None:
        if "c1" not in lab.conts:
            lab.run("c1", "cn1")
        elif not lab.conts["c1"].running:         # a start the kill undid: remake it running
            lab.rm("c1")
            lab.run("c1", "cn1")

    n_run = lab.sweep(gone, lambda: lab.run("c1", "cn1"), gone)
    n_rm = lab.sweep(there, lambda: lab.rm("c1"), gone)
    lab.finish()
    assert not lab.stats.problems(), verdict(lab)
    assert n_run >= 5 and n_rm >= 3, (n_run, n_rm)


def test_kill_9_at_every_step_of_network_create_and_rm(lab: CrashLab) -> None:
    def gone() -> None:
        if "cn1" in lab.nets:
            lab.net_rm("cn1")

    def there() -> None:
        if "cn1" not in lab.nets:
            lab.net_create("cn1", "10.97.1.0/24")

    n_create = lab.sweep(gone, lambda: lab.net_create("cn1", "10.97.1.0/24"), gone)
    n_rm = lab.sweep(there, lambda: lab.net_rm("cn1"), gone)
    lab.finish()
    assert not lab.stats.problems(), verdict(lab)
    assert n_create >= 2 and n_rm >= 1, (n_create, n_rm)
