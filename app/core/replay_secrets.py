"""What an idempotency record keeps from a reader of the database.

A request's fingerprint is an HMAC keyed by the server secret, not a bare hash: the body may
hold a password, and a bare hash of a short password can be guessed offline. A response that
holds a secret (a new API key) is stored sealed with AES-256-GCM (the `cryptography` library)
under a key derived from the server secret and the request's Idempotency-Key, bound to the
request's fingerprint; the plaintext is never written.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


def _derive(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


class ReplaySecrets:
    def __init__(self, server_secret: str) -> None:
        root = server_secret.encode()
        self._fingerprint_key = _derive(root, "idempotency-fingerprint")
        self._seal_key = _derive(root, "idempotency-seal")

    def fingerprint(self, method: str, path: str, body: bytes) -> str:
        mac = hmac.new(self._fingerprint_key, f"{method} {path}\n".encode(), hashlib.sha256)
        mac.update(body)
        return mac.hexdigest()

    def seal(self, idempotency_key: str, fingerprint: str, text: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._cipher(idempotency_key).encrypt(nonce, text.encode(), fingerprint.encode())

    def unseal(self, idempotency_key: str, fingerprint: str, sealed: bytes) -> str | None:
        """The text, or None when it was sealed under another server secret or altered."""
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            return self._cipher(idempotency_key).decrypt(nonce, ciphertext, fingerprint.encode()).decode()
        except InvalidTag:
            return None

    def _cipher(self, idempotency_key: str) -> AESGCM:
        return AESGCM(_derive(self._seal_key, idempotency_key))
