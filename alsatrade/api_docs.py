"""The API's schema and its Swagger UI, for users who are logged in or carry an API token.

The schema maps every endpoint, parameter and permission: reconnaissance nobody outside needs.
"""

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseBase
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import IsAuthenticated


class ApiSchemaView(SpectacularAPIView):
    """Anonymous: 401, as any API endpoint answers a script without a token."""

    permission_classes = [IsAuthenticated]


class ApiDocsView(SpectacularSwaggerSplitView):
    """Anonymous: to the login page and back, as the /ui/ pages do; a token is accepted too."""

    permission_classes = [IsAuthenticated]

    # DRF hands any HttpResponseBase on (finalize_response); its stubs say Response only.
    def handle_exception(self, exc: Exception) -> HttpResponseBase:  # type: ignore[override]
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)
