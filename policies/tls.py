"""TLS files checked when they are named, not at the first request.

A CA bundle or client certificate that is not PEM (a DER file, a key where the certificate
should be, an empty file) fails every request with the TLS library's own words, e.g. `0
SSLError [X509: NO_CERTIFICATE_OR_CRL_FOUND]`, naming neither the file nor the setting. These
checks load the files the way the HTTP clients will, once, when the connection is configured,
so the error says which file and why. They read local files only (no network).
"""

from __future__ import annotations

import ssl
from pathlib import Path


_HINTS = {
    "NO_CERTIFICATE_OR_CRL_FOUND": "no PEM certificate in it",
    "KEY_VALUES_MISMATCH": "the key is not the certificate's",
}


def _load_problem(load, path: str | Path, hint: str) -> str | None:
    """None when `load()` succeeds; else why, with `hint` for a reason `_HINTS` does not know."""
    p = Path(path)
    if not p.exists():
        return "not found"
    if not p.is_file():
        return "not a file"
    try:
        load()
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        return f"TLS cannot load it ({reason}: {_HINTS.get(reason, hint)})"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def ca_bundle_problem(path: str | Path) -> str | None:
    """Why `path` cannot serve as a bundle of CA certificates (PEM), or None when it can."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return _load_problem(lambda: context.load_verify_locations(cafile=str(path)), path, "not a PEM certificate")


def client_cert_problem(cert_file: str | Path, key_file: str | Path | None) -> str | None:
    """Why a client certificate and its key (PEM; the key may sit in the certificate's file)
    cannot be used, or None when they can. A missing key file is named as such."""
    if key_file is not None and not Path(key_file).is_file():
        return f"key {key_file}: {'not a file' if Path(key_file).exists() else 'not found'}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    key = None if key_file is None else str(key_file)
    # An empty passphrase, never OpenSSL's prompt on the terminal (a controller has none to answer).
    problem = _load_problem(lambda: context.load_cert_chain(str(cert_file), key, password=lambda: b""), cert_file,
                            "not PEM, or a key encrypted with a passphrase, which Ebbtide cannot give")
    pair = f"certificate {cert_file}" + (f" with key {key_file}" if key_file is not None else "")
    return None if problem is None else f"{pair}: {problem}"
