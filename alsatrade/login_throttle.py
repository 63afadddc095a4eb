"""How django-axes throttles logins here: the client address it counts against
(settings.AXES_CLIENT_IP_CALLABLE), and the handler that holds each way of counting to its own limit
(settings.AXES_HANDLER).

The address is the webhook's own reading of it, so the two can never disagree: behind a declared
proxy (WEBHOOK_TRUSTED_PROXIES) the client's hop of X-Forwarded-For, and otherwise the connection's
address. Axes's default (django-ipware, or any X-Forwarded-For) would let a guesser send a new
made-up address with every password and never be locked out.
"""

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest

from trading.webhook import client_address


def login_client_address(request: HttpRequest) -> str | None:
    return client_address(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", ""))


class LoginThrottle(AxesDatabaseHandler):
    """Axes's database handler, with a limit for each set in settings.LOGIN_THROTTLE_LIMITS.

    Axes counts the failures of each set of AXES_LOCKOUT_PARAMETERS apart — one username from one
    address, one address, one username — but holds them all to the one AXES_FAILURE_LIMIT: an office
    behind one address would be locked out by five typos among its users, and anyone could lock an
    account with five wrong passwords. Here each set has its own limit.
    """

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        # Axes locks when this reaches AXES_FAILURE_LIMIT (the pair's limit), on every path: the check
        # before a login and the one after a failure. So it answers that limit once any set is at its own.
        attempts = self.get_user_attempts(request, credentials)
        counts = [rows.aggregate(failures=Sum("failures_since_start"))["failures"] or 0 for rows in attempts]
        pair = counts[0]
        if any(count >= limit for count, limit in zip(counts, settings.LOGIN_THROTTLE_LIMITS.values(), strict=True)):
            return max(pair, settings.AXES_FAILURE_LIMIT)
        return pair

    def reset_user_attempts(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """A right password clears its own username's failures from its own address, nothing more.
        Axes would clear every set the login matches: anyone holding one account could then wipe a
        guesser's count against their address by logging in between guesses."""
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(username=username, ip_address=login_client_address(request)).delete()
        return count
