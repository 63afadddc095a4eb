"""The REST API's tokens (django-rest-knox): stored as SHA-512 digests, shown once, ending after
API_TOKEN_TTL_DAYS. Scripts send `Authorization: Token <key>`, as with DRF's own tokens before.

Reference: https://jazzband.github.io/django-rest-knox/
"""

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import exceptions


def api_token_create(*, user: AbstractBaseUser, days: int | None = None) -> tuple[AuthToken, str]:
    """A new token for `user` and its key, which exists nowhere else afterwards. `days`: its lifetime
    (0: until deleted); None: API_TOKEN_TTL_DAYS."""
    if days is None:
        return AuthToken.objects.create(user=user)
    return AuthToken.objects.create(user=user, expiry=timedelta(days=days) if days else None)


class ApiTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, token: bytes) -> tuple[AbstractBaseUser, AuthToken]:
        # knox decodes the key as UTF-8 without a guard: a header byte that is not UTF-8 would be a 500.
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        # knox also reads all the user's other tokens on every request to delete the expired ones:
        # a query per API call for housekeeping. An expired token is refused and deleted when used;
        # one never used again stays listed in the admin, its expiry past, until deleted there.
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The schema's `tokenAuth`, under the name it had with DRF's tokens (generated clients keep it)."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: object) -> dict:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
