"""Throwaway certificates for TLS tests, made with the ``openssl`` command (no Python dependency).

:func:`make_pki` writes into a directory: a CA, one server certificate per name (its SANs: the
given IP addresses plus 127.0.0.1 and localhost; both serverAuth and clientAuth, as etcd 3.4's
JSON gateway dials its own member with the server certificate), a client certificate, and a
second, unrelated CA with its own client certificate (a "wrong CA" for the negative tests).
Keys are EC P-256; everything is valid for two days.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass
class Pki:
    dir: Path
    ca: str
    client_cert: str
    client_key: str
    other_ca: str                 # a CA that signed none of the above
    other_client_cert: str        # a client certificate from other_ca
    other_client_key: str
    servers: dict[str, tuple[str, str]] = field(default_factory=dict)   # name -> (cert, key)

    def kv_opts(self) -> dict[str, str]:
        """The daemon's ``kv.*`` options for a client of the servers."""
        return {"kv.cacertfile": self.ca, "kv.certfile": self.client_cert, "kv.keyfile": self.client_key}


def _run(*args: str) -> None:
    r = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr}")


def _ca(d: Path, name: str) -> tuple[str, str]:
    cert, key = d / f"{name}.pem", d / f"{name}.key"
    _run("req", "-x509", *_EC, "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return str(cert), str(key)


def _leaf(d: Path, name: str, ca: tuple[str, str], sans: list[str], usage: str) -> tuple[str, str]:
    cert, key, csr, ext = d / f"{name}.pem", d / f"{name}.key", d / f"{name}.csr", d / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
             f"extendedKeyUsage={usage}", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    ext.write_text("\n".join(lines) + "\n")
    _run("req", *_EC, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    _run("x509", "-req", "-in", str(csr), "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-out", str(cert),
         "-days", "2", "-extfile", str(ext))
    return str(cert), str(key)


def make_pki(directory: str | Path, servers: dict[str, list[str]]) -> Pki:
    """A CA, a certificate for each server (name -> its IP addresses) and client certificates."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca = _ca(d, "ca")
    other = _ca(d, "other-ca")
    client = _leaf(d, "client", ca, [], "clientAuth")
    other_client = _leaf(d, "other-client", other, [], "clientAuth")
    pki = Pki(d, ca[0], client[0], client[1], other[0], other_client[0], other_client[1])
    for name, ips in servers.items():
        sans = [f"IP:{ip}" for ip in [*ips, "127.0.0.1"]] + ["DNS:localhost"]
        pki.servers[name] = _leaf(d, name, ca, sans, "serverAuth,clientAuth")
    return pki
