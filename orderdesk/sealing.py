"""Secrets kept at rest sealed: what orderdesk must read back to use (a webhook's signing secret) is
stored encrypted, so a copy of the database (a backup, a dump, a replica) does not carry it.

Fernet (AES-128-CBC with HMAC-SHA256, from the `cryptography` package) under the keys of
ORDERDESK_SECRETS_KEYS: comma-separated Fernet keys (`python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"`). The first seals; every one opens, so keys rotate by putting the
new one first and dropping the old once `orderdesk` has re-sealed (each process re-seals at start).
Without the setting, a key is made once in ORDERDESK_DATA_DIR/secrets.key (mode 0600): the development
default; Kubernetes gives the key from a Secret. The key is never in a backup: restore with the same key.

A sealed value reads `sealed:v1:<token>`; a value without the prefix is a secret stored before sealing
existed and is read as it is (and sealed by the next write or the start-up pass).
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from orderdesk.config import env, local_secret

PREFIX = "sealed:v1:"
KEY_FILE = "secrets.key"


class SealingError(RuntimeError):
    """A sealed value none of the configured keys opens (a key dropped too early, or another key)."""


class SecretBox:
    def __init__(self, keys: list[bytes]):
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self.rotating = len(keys) > 1  # an old key is still configured: values sealed under it are re-sealed

    def seal(self, secret: str) -> str:
        return PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored  # stored before sealing: read as it is
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SealingError(
                "a sealed secret does not open with ORDERDESK_SECRETS_KEYS: keep the key that sealed it"
            ) from None

    def reseal(self, stored: str) -> str:
        """The value sealed under the first key: a plain one sealed, a sealed one sealed again."""
        if is_sealed(stored):
            return PREFIX + self._fernet.rotate(stored[len(PREFIX) :].encode()).decode()
        return self.seal(stored)


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def needs_sealing(stored: str, box: SecretBox) -> bool:
    """A stored value to (re-)seal at start: a plain one, or any while an old key is still configured."""
    return bool(stored) and (box.rotating or not is_sealed(stored))


def keys_from_env() -> list[bytes]:
    configured = [k.strip().encode() for k in env("ORDERDESK_SECRETS_KEYS", "").split(",") if k.strip()]
    if configured:
        return configured
    return [local_secret(KEY_FILE, lambda: Fernet.generate_key().decode(), "ORDERDESK_SECRETS_KEYS").encode()]


@functools.cache
def box() -> SecretBox:
    """The process's box, from its configuration (read once)."""
    return SecretBox(keys_from_env())
