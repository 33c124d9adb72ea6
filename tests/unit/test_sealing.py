"""Secrets sealed at rest (orderdesk/sealing.py): what is stored does not show the secret, only the keys
open it, and keys rotate without losing a value."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.sealing import PREFIX, SealingError, SecretBox, is_sealed, needs_sealing

OLD, NEW = Fernet.generate_key(), Fernet.generate_key()


@given(st.text(min_size=1, max_size=200))
def test_a_sealed_secret_opens_to_itself_and_does_not_show_it(secret):
    box = SecretBox([OLD])
    stored = box.seal(secret)
    assert is_sealed(stored) and stored.startswith(PREFIX)
    assert box.open(stored) == secret
    if len(secret) >= 4:
        assert secret not in stored


def test_another_key_does_not_open_it():
    stored = SecretBox([OLD]).seal("whsec_abc")
    with pytest.raises(SealingError, match="ORDERDESK_SECRETS_KEYS"):
        SecretBox([NEW]).open(stored)


def test_a_secret_stored_before_sealing_reads_as_it_is_and_is_sealed_at_start():
    box = SecretBox([OLD])
    assert box.open("whsec_plain") == "whsec_plain"
    assert needs_sealing("whsec_plain", box)
    assert not needs_sealing(box.seal("whsec_plain"), box)
    assert not needs_sealing("", box)  # no previous secret: nothing to seal


def test_keys_rotate_new_first_then_the_old_one_goes():
    under_old = SecretBox([OLD]).seal("whsec_abc")
    both = SecretBox([NEW, OLD])
    assert both.rotating and needs_sealing(under_old, both)
    assert both.open(under_old) == "whsec_abc"  # the old key still opens
    resealed = both.reseal(under_old)
    assert SecretBox([NEW]).open(resealed) == "whsec_abc"  # the old key may go now
    assert SecretBox([NEW]).open(both.reseal("whsec_plain")) == "whsec_plain"
