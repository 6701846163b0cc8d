"""Overlay networks on an etcd cluster that demands TLS client certificates (clusterlab, ``tls=True``).

What is observed: the three members answer only HTTPS with a client certificate from the lab's CA
(a plain-HTTP client, a TLS client without a certificate and one with another CA's certificate are
all refused, so TLS is really enforced); two cove daemons given ``--cluster-store-opt
kv.cacertfile/kv.certfile/kv.keyfile`` (h1 with an ``etcd://`` store URL, h2 with ``https://``)
register, and an overlay network made on h1 carries pings by name between a container on each
host; a daemon given another CA starts but never joins, and ``network create -d overlay`` on it
says in one line that etcd's certificate was not accepted and to check kv.cacertfile; a daemon
whose key file is missing exits at once with one line naming kv.keyfile.  The docker CLI (Debian's
docker.io 20.10) makes an overlay network on h1, runs a container on each host and they ping each
other by name; ``docker network inspect`` shows Scope "global" on both hosts.
Seen failing with the TLS transport removed (EtcdStore always plain HTTP): the lab never got
ready ("Remote end closed connection without response" from every member).  Seen failing with
``--client-cert-auth`` and ``--trusted-ca-file`` removed from the lab's members: the client without
a certificate read the store (etcd 3.4 demands client certificates as soon as it has a trusted
CA file, so removing ``--client-cert-auth`` alone changes nothing).  Seen failing with the
client's server verification off (``CERT_NONE``): the host with another CA joined and made the
network.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from cove.errors import Unavailable

from .clusterlab import Host, Lab, make_lab, ok, STORE_URL, until

TTL = 10


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = make_lab(1, TTL, tls=True)
    try:
        lab.add_host(2, store_url=STORE_URL.replace("etcd://", "https://"))
        until(lambda: len(lab.store().list("hosts/")) == 2, 20)
        yield lab
    finally:
        lab.close()




def ping(h: Host, container: str, target: str) -> bool:
    return h.cli("exec", container, "busybox", "ping", "-c1", "-W2", target).returncode == 0


def refused(lab: Lab, opts: dict[str, str]) -> str:
    with pytest.raises(Unavailable) as e:
        lab.store(timeout=3, opts=opts).revision()
    return str(e.value)


def test_etcd_refuses_clients_without_a_certificate_of_its_ca(lab: Lab) -> None:
    assert lab.pki is not None
    assert lab.store().revision() > 0                    # the lab's client certificate: served
    msg = refused(lab, {})                                 # plain HTTP
    assert "if etcd serves TLS" in msg and "kv.cacertfile" in msg
    # (etcd sends its alert, or hangs up in the handshake: either way the line names kv.certfile)
    msg = refused(lab, {"kv.cacertfile": lab.pki.ca})      # TLS, no client certificate
    assert "TLS: etcd" in msg and "kv.certfile" in msg
    msg = refused(lab, {"kv.cacertfile": lab.pki.ca, "kv.certfile": lab.pki.other_client_cert,
                        "kv.keyfile": lab.pki.other_client_key})     # a certificate of another CA
    assert "TLS: etcd" in msg and "kv.certfile" in msg


def test_two_hosts_over_tls_ping_by_name_on_an_overlay(lab: Lab) -> None:
    h1, h2 = lab.hosts[:2]
    vteps = {e.value["vtep"] for e in lab.store().list("hosts/")}
    assert {"10.99.0.21", "10.99.0.22"} <= vteps
    ok(h1, "network", "create", "-d", "overlay", "--subnet", "10.30.0.0/24", "tlsov")
    ok(h1, "run", "-d", "--name", "a1", "--network", "tlsov", "host", "sleep", "600")
    until(lambda: "tlsov" in ok(h2, "network", "ls"), 10)
    ok(h2, "run", "-d", "--name", "b2", "--network", "tlsov", "host", "sleep", "600")
    until(lambda: ping(h2, "b2", "a1"), 15)
    assert ping(h1, "a1", "b2")
    assert '"Scope": "global"' in ok(h2, "network", "inspect", "tlsov")


def test_a_daemon_with_another_ca_never_joins_and_says_why(lab: Lab) -> None:
    assert lab.pki is not None
    h = lab.add_host(3, kv_opts={**lab.pki.kv_opts(), "kv.cacertfile": lab.pki.other_ca})
    try:
        msgs: list[str] = []

        def says_why() -> bool:
            r = h.cli("network", "create", "-d", "overlay", "--subnet", "10.31.0.0/24", "nope")
            assert r.returncode != 0, "an overlay network was made by a host with the wrong CA"
            msgs.append(r.stderr.strip())
            return "certificate was not accepted" in msgs[-1]

        until(says_why, 15)
        assert "kv.cacertfile" in msgs[-1] and "\n" not in msgs[-1]
        assert "certificate was not accepted" in h.log()
        assert "10.99.0.23" not in {e.value["vtep"] for e in lab.store().list("hosts/")}
        ok(h, "network", "ls")                             # the daemon itself runs
    finally:
        h.stop()


def test_a_daemon_whose_key_file_is_missing_does_not_start(lab: Lab) -> None:
    assert lab.pki is not None
    h = lab.add_host(4, start=False, kv_opts={**lab.pki.kv_opts(), "kv.keyfile": "/nonexistent/client.key"})
    with pytest.raises(RuntimeError, match="exited early"):
        h.start()
    lines = [ln for ln in h.log().splitlines() if ln.strip()]
    assert lines[-1].startswith("cove daemon: invalid daemon setting cluster-store-opts")
    assert "kv.keyfile=/nonexistent/client.key" in lines[-1] and "cannot read it" in lines[-1]
    assert not lab.store().list("hosts/") or "10.99.0.24" not in {e.value["vtep"] for e in lab.store().list("hosts/")}


def test_the_docker_cli_drives_an_overlay_across_the_tls_hosts(lab: Lab, docker_bin: str) -> None:
    """Debian's docker.io 20.10 client (DOCKER_HOST at each host's socket), as a user of issue 15 would."""
    h1, h2 = lab.hosts[:2]

    def docker(h: Host, *args: str, check: bool = True) -> str:
        r = subprocess.run([docker_bin, *args], capture_output=True, text=True, timeout=60,
                           env={**h.env, "DOCKER_HOST": f"unix://{h.sock}"})
        assert not check or r.returncode == 0, f"{h.name}: docker {' '.join(args)}: {r.stderr}\n{h.log()}"
        return r.stdout.strip() if r.returncode == 0 else ""

    docker(h1, "network", "create", "-d", "overlay", "--subnet", "10.32.0.0/24", "ovnet")
    until(lambda: "ovnet" in docker(h2, "network", "ls", "--format", "{{.Name}}"), 10)
    docker(h1, "run", "-d", "--name", "d1", "--network", "ovnet", "host", "sleep", "600")
    docker(h2, "run", "-d", "--name", "d2", "--network", "ovnet", "host", "sleep", "600")
    until(lambda: docker(h2, "exec", "d2", "busybox", "ping", "-c1", "-W2", "d1", check=False) != "", 15)
    assert docker(h1, "exec", "d1", "busybox", "ping", "-c1", "-W2", "d2")
    for h in (h1, h2):
        net = json.loads(docker(h, "network", "inspect", "ovnet"))[0]
        assert (net["Scope"], net["Driver"]) == ("global", "overlay")
        assert net["IPAM"]["Config"][0]["Subnet"] == "10.32.0.0/24"
    ip2 = docker(h2, "inspect", "-f", "{{.NetworkSettings.Networks.ovnet.IPAddress}}", "d2")
    assert ip2.startswith("10.32.0.")


def test_docker_py_drives_an_overlay_across_the_tls_hosts(lab: Lab) -> None:
    """docker-py (the pinned SDK), as issue 15's user would: an attachable overlay made on h2 appears
    on h1 with Scope "global"; a container on each host pings the other by name; removing the
    network while h1 still has an endpoint on it is refused with Docker's "has active endpoints"
    (naming h1's address), and succeeds everywhere once the containers are gone."""
    import docker as sdk

    h1, h2 = lab.hosts[:2]
    c1, c2 = (sdk.DockerClient(base_url=f"unix://{h.sock}") for h in (h1, h2))
    try:
        net = c2.networks.create("pynet", driver="overlay", attachable=True,
                                 ipam=sdk.types.IPAMConfig(pool_configs=[sdk.types.IPAMPool(subnet="10.33.0.0/24")]))
        until(lambda: any(n.name == "pynet" for n in c1.networks.list()), 10)
        assert c1.networks.get("pynet").attrs["Scope"] == "global"
        p1 = c1.containers.run("host", ["sleep", "600"], name="py1", detach=True, network="pynet")
        p2 = c2.containers.run("host", ["sleep", "600"], name="py2", detach=True, network="pynet")
        until(lambda: p2.exec_run(["busybox", "ping", "-c1", "-W2", "py1"])[0] == 0, 15)
        assert p1.exec_run(["busybox", "ping", "-c1", "-W2", "py2"])[0] == 0
        p2.remove(force=True)
        with pytest.raises(sdk.errors.APIError) as refused:
            net.remove()
        assert refused.value.status_code in (403, 409) and "active endpoints" in str(refused.value)
        assert "10.99.0.21" in str(refused.value) or h1.name in str(refused.value), str(refused.value)
        p1.remove(force=True)
        net.remove()
        until(lambda: not any(n.name == "pynet" for n in c1.networks.list()), 10)
    finally:
        for c in (c1, c2):
            for name in ("py1", "py2"):
                try:
                    c.containers.get(name).remove(force=True)
                except sdk.errors.NotFound:
                    pass
            c.close()
