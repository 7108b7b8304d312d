"""TLS files are checked when they are named (policies/tls.py), not at the first request.

A CA bundle or client certificate TLS cannot load failed every request with the library's own
words (`0 SSLError [X509: NO_CERTIFICATE_OR_CRL_FOUND]` from each API call), naming neither the
file nor the setting. Now the Prometheus source and the kubeconfig loader refuse it at once,
naming the file and why. Certificates are made by the openssl CLI (skipped without it, except
under CI=true).
"""

from __future__ import annotations

import base64
import subprocess

import pytest
import yaml

from conftest import require_binary
from forecaster.history import MetricsError, PrometheusSource
from policies.tls import ca_bundle_problem, client_cert_problem
from scaler.kube import KubeCluster, KubeError
from support.prometheus import self_signed_certificate


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """cert.pem + key.pem (a pair), other_key.pem (not its key), encrypted.pem (its key, with a
    passphrase), junk.pem (text, no certificate)."""
    openssl = require_binary("openssl", "install openssl (apt-get install -y openssl)")
    work = tmp_path_factory.mktemp("pki")
    cert, key = self_signed_certificate(work, openssl)
    for args in (["genrsa", "-out", str(work / "other_key.pem"), "2048"],
                 ["rsa", "-in", str(key), "-aes256", "-passout", "pass:secret", "-out", str(work / "encrypted.pem")]):
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)
    (work / "junk.pem").write_text("this is not a certificate\n")
    return work


def test_ca_bundle_problems_name_what_is_wrong(pki):
    assert ca_bundle_problem(pki / "cert.pem") is None
    assert ca_bundle_problem(pki / "junk.pem") == (
        "TLS cannot load it (NO_CERTIFICATE_OR_CRL_FOUND: no PEM certificate in it)")
    assert ca_bundle_problem(pki) == "not a file"
    assert ca_bundle_problem(pki / "absent.pem") == "not found"


def test_client_certificate_problems_name_what_is_wrong(pki):
    cert = pki / "cert.pem"
    assert client_cert_problem(cert, pki / "key.pem") is None
    mismatch = client_cert_problem(cert, pki / "other_key.pem")
    assert mismatch == (f"certificate {cert} with key {pki / 'other_key.pem'}: TLS cannot load it "
                        "(KEY_VALUES_MISMATCH: the key is not the certificate's)")
    # An encrypted key is refused at once (no passphrase to give), never a prompt on the terminal:
    # stdin is closed in the test run, and a prompt would hang or fail differently.
    encrypted = client_cert_problem(cert, pki / "encrypted.pem")
    assert encrypted is not None and encrypted.endswith("not PEM, or a key encrypted with a passphrase, "
                                                        "which Ebbtide cannot give)")
    assert client_cert_problem(cert, pki / "absent.pem") == f"key {pki / 'absent.pem'}: not found"
    assert "TLS cannot load it" in client_cert_problem(pki / "junk.pem", pki / "key.pem")


def test_prometheus_refuses_a_ca_bundle_tls_cannot_load_before_any_request(pki):
    with pytest.raises(MetricsError, match=r"^prometheus https://prom\.test:9090: CA bundle .*junk\.pem: TLS cannot "
                                           r"load it \(NO_CERTIFICATE_OR_CRL_FOUND"):
        PrometheusSource("https://prom.test:9090", ca_bundle=pki / "junk.pem")
    assert PrometheusSource("https://prom.test:9090", ca_bundle=pki / "cert.pem")._client._session.verify == str(
        pki / "cert.pem")


def _kubeconfig(path, cluster: dict, user: dict):
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443", **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    return str(path)


def test_a_kubeconfig_with_tls_files_tls_cannot_load_is_refused_naming_it(pki, tmp_path):
    junk_data = base64.b64encode(b"junk").decode()
    cases = [
        ({"certificate-authority": str(pki / "junk.pem")}, {"token": "t"},
         rf"its CA certificate \(certificate-authority or -data, read from {pki / 'junk.pem'}\): TLS cannot load"),
        ({"certificate-authority-data": junk_data}, {"token": "t"},
         r"its CA certificate \(certificate-authority or -data, read from .+\): TLS cannot load it \(NO_CERT"),
        ({"certificate-authority": str(pki / "cert.pem")},
         {"client-certificate": str(pki / "cert.pem"), "client-key": str(pki / "other_key.pem")},
         r"its client certificate \(client-certificate/-key or their -data\): certificate .*\(KEY_VALUES_MISMATCH"),
    ]
    for i, (cluster, user, message) in enumerate(cases):
        path = _kubeconfig(tmp_path / f"kubeconfig{i}", cluster, user)
        with pytest.raises(KubeError, match=rf"^kubeconfig {path}: {message}"):
            KubeCluster.from_kubeconfig(path)
    good = _kubeconfig(tmp_path / "good", {"certificate-authority": str(pki / "cert.pem")},
                       {"client-certificate": str(pki / "cert.pem"), "client-key": str(pki / "key.pem")})
    assert KubeCluster.from_kubeconfig(good).api_client.configuration.ssl_ca_cert == str(pki / "cert.pem")
    # insecure-skip-tls-verify: the CA is not used, so it is not checked
    skip = _kubeconfig(tmp_path / "skip", {"insecure-skip-tls-verify": True}, {"token": "t"})
    assert KubeCluster.from_kubeconfig(skip).api_client.configuration.verify_ssl is False
