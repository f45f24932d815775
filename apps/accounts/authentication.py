"""Personal access tokens on the APIs: `Authorization: Bearer <token>` or HTTP Basic with the
username and the token as password (what the mlflow client sends with MLFLOW_TRACKING_USERNAME/
PASSWORD). Shared by DRF and by the plain views of the MLflow-compatible API."""

from __future__ import annotations

import base64
import binascii

from rest_framework import authentication, exceptions

from apps.accounts.models import User
from apps.accounts.services import authenticate_token


def user_from_authorization_header(header: str) -> tuple[User | None, bool]:
    """(user, credentials_were_given). A header that is present but wrong gives (None, True)."""
    scheme, _, credentials = (header or "").partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme == "bearer" and credentials:
        return authenticate_token(credentials), True
    if scheme == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, True
        username, sep, secret = decoded.partition(":")
        if not sep:
            return None, True
        return authenticate_token(secret, username=username), True
    return None, False


class _TokenAuthentication(authentication.BaseAuthentication):
    scheme = ""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if header.split(" ", 1)[0].lower() != self.scheme:
            return None
        user, given = user_from_authorization_header(header)
        if user is None and given:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return (user, None) if user else None

    def authenticate_header(self, request):
        return f'{self.scheme.capitalize()} realm="causeway"'


class BearerTokenAuthentication(_TokenAuthentication):
    scheme = "bearer"


class BasicTokenAuthentication(_TokenAuthentication):
    scheme = "basic"
