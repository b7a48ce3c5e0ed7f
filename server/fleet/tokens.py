"""Random tokens and how they are stored.

Keys and credentials are long random strings, so a plain SHA-256 is a safe
way to store them (no salt or slow hash needed); only the hash is kept, and a
short prefix lets an admin tell them apart.
"""

import hashlib
import secrets


def new_token(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
