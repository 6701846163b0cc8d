"""The labs of docs/labs/ that need a kernel this machine lacks, run in the guest kernel.

``003-ipvlan-vlan.sh`` (macvlan on 802.1q parents, ipvlan L2 and L3) and ``002-ovs-vlan.sh``
(``cove attach --vlan`` on an Open vSwitch bridge) run as tests/integration/test_labs.py runs
the host labs: each with its own daemon, socket, data and exec roots in a temp dir; the test
checks the exit status, the ``ok: ...`` observations, the graph and that nothing is left.
Outside a guest (``cove_guest=`` in /proc/cmdline) these tests are skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_labs import assert_nothing_left, run_lab, state
from tests.integration.test_labs import lab_tmp  # noqa: F401 - the fixture (reaps what a failing lab leaves)

try:  # the guest harness lives in tests/kernel (branch `kernel`), formerly tests/uml
    from tests.kernel.test_kernel_features import ovs  # noqa: F401 - the Open vSwitch daemons fixture
except ImportError:  # pragma: no cover - before the rename
    from tests.uml.test_kernel_features import ovs  # noqa: F401

pytestmark = [pytest.mark.uml]


def in_guest() -> bool:
    try:
        return "cove_guest=" in Path("/proc/cmdline").read_text()
    except OSError:
        return False


needs_guest = pytest.mark.skipif(not in_guest(), reason="needs the guest kernel of tests/kernel (cove_guest=)")


def run_and_check(lab: str, tmp: Path, observations: list[str], graphs: list[str]) -> str:
    before = state()
    r = run_lab(lab, tmp)
    assert r.returncode == 0, f"{lab} exited {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-3000:]}"
    printed = {ln[4:] for ln in r.stdout.splitlines() if ln.startswith("ok: ")}
    missing = [o for o in observations if o not in printed]
    assert not missing, f"{lab} did not observe: {missing}\n{r.stdout[-3000:]}"
    for g in graphs:
        assert (tmp / "out" / f"{g}.dot").read_text().startswith("graph cove {")
    assert_nothing_left(before, tmp)
    return r.stdout


@needs_guest
def test_lab_003_ipvlan_and_8021q_in_the_guest(lab_tmp: Path) -> None:  # noqa: F811
    out = run_and_check("003-ipvlan-vlan", lab_tmp, [
        "cove made the 802.1q sub-interface ens33.20 for the parent",
        "VLAN 20 reaches VLAN 20 and its gateway, not VLAN 30",
        "L3: milk reaches bread (same subnet) and beijing (other subnet) with no gateway",
        "the router has no route back to 192.168.94.0/24, so milk gets no answer from it",
    ], ["003-vlan", "003-ipvlan"])
    # the ipvlan L2 observation names the parent's MAC, so it is matched by its start
    assert "ok: milk and bread answer the router with ens33's own MAC (" in out


@needs_guest
def test_lab_002_ovs_vlan_tags_in_the_guest(ovs: None, lab_tmp: Path) -> None:  # noqa: F811
    run_and_check("002-ovs-vlan", lab_tmp, [
        "tag 100 reaches tag 100, tag 200 reaches tag 200, and the two VLANs are split",
        "removing the containers removed their OVS ports",
    ], ["002-ovs"])
