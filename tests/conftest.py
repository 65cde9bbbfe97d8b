"""Make the source tree importable as ansible_collections.restate.admin for pytest runs outside ansible-test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _collection_root() -> Path:
    """ROOT itself when it already sits in ansible_collections/restate/admin (ansible-test), else a link."""
    if ROOT.parts[-3:] == ("ansible_collections", "restate", "admin"):
        return ROOT.parents[2]
    base = ROOT / ".cache" / "collections"
    link = base / "ansible_collections" / "restate" / "admin"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT, target_is_directory=True)
    return base


if not any(name == "ansible_collections" or name.startswith("ansible_collections.") for name in sys.modules):
    sys.path.insert(0, str(_collection_root()))


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A test CA with a server certificate for 127.0.0.1 and a client certificate, made with the openssl command:
    ca.pem/ca.key, server.pem/server.key, client.pem/client.key."""
    base = tmp_path_factory.mktemp("pki")

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=base)

    # The extensions a real CA sets: Python 3.13 verifies strictly (VERIFY_X509_STRICT) and refuses a CA without
    # key usage or a certificate without an authority key identifier.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=restate-admin test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    leaf = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nauthorityKeyIdentifier=keyid\n"
    (base / "server.cnf").write_text(leaf + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n")
    (base / "client.cnf").write_text(leaf + "extendedKeyUsage=clientAuth\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=operator")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", subject)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.cnf")
    return base
