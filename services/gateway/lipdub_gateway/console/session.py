"""Console sign-in and form protection. A session is a signed cookie naming the API key's
hash (the key itself never leaves the sign-in form): each request looks the key up again,
so a revoked key ends its sessions. Every form carries a token bound to the session (or,
before sign-in, to a random cookie): another site can neither read it nor forge it, and the
cookies are SameSite=Strict besides."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "lipdub_console"
PRE_COOKIE = "lipdub_console_pre"  # binds the sign-in form's token before a session exists
SESSION_SECONDS = 12 * 3600  # a working day


class ConsoleSessions:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._signer = URLSafeTimedSerializer(secret, salt="lipdub-console-session")

    def issue(self, key_hash: str) -> str:
        return self._signer.dumps({"key": key_hash, "nonce": secrets.token_hex(8)})

    def key_hash(self, cookie: str | None) -> str | None:
        """The signed-in key's hash, or None (no cookie, tampered with, or expired)."""
        if not cookie:
            return None
        try:
            return self._signer.loads(cookie, max_age=SESSION_SECONDS)["key"]
        except (BadSignature, KeyError, TypeError):
            return None

    def form_token(self, bound_to: str) -> str:
        return hmac.new(self._secret, b"form:" + bound_to.encode(), hashlib.sha256).hexdigest()

    def form_token_ok(self, bound_to: str | None, token: str | None) -> bool:
        return bool(bound_to and token) and hmac.compare_digest(self.form_token(bound_to),
                                                                token)
