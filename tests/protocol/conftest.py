"""Key pairs for protocol tests that open sessions without a Volt (generated once: RSA is slow)."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


@pytest.fixture(scope="session")
def keys():
    return {
        "volt_rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "client_rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "volt_ed": ed25519.Ed25519PrivateKey.generate(),
        "client_ed": ed25519.Ed25519PrivateKey.generate(),
    }
