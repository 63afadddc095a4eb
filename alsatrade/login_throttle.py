"""The address django-axes counts failed logins against (settings.AXES_CLIENT_IP_CALLABLE).

It is the webhook's own reading of the client address, so the two can never disagree: behind a
declared proxy (WEBHOOK_TRUSTED_PROXIES) the client's hop of X-Forwarded-For, and otherwise the
connection's address. Axes's default (django-ipware, or any X-Forwarded-For) would let a guesser
send a new made-up address with every password and never be locked out.
"""

from django.http import HttpRequest

from trading.webhook import client_address


def login_client_address(request: HttpRequest) -> str | None:
    return client_address(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", ""))
