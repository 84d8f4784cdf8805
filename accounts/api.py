"""API token endpoint: trade a username and password for a new token; revoke the token in use."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.authentication import TokenAuthentication
from accounts.models import ApiToken
from accounts.serializers import NewTokenSerializer, PasswordLoginSerializer
from accounts.throttling import LoginThrottle


class AuthTokenView(APIView):
    # No session authentication here: a browser that happens to be logged in must not trip
    # over CSRF when it posts credentials, and DELETE needs to know which token to revoke.
    authentication_classes = [TokenAuthentication]
    throttle_classes = [LoginThrottle]
    # JSON or a plain form post (`curl -d username=... -d password=...`).
    parser_classes = [JSONParser, FormParser]

    def get_permissions(self):  # type: ignore[no-untyped-def]
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def get_throttles(self):  # type: ignore[no-untyped-def]
        if self.request.method == "POST":
            return [LoginThrottle()]
        return [throttle() for throttle in self.settings.DEFAULT_THROTTLE_CLASSES]

    @extend_schema(
        operation_id="auth_token_create", request=PasswordLoginSerializer,
        responses={201: NewTokenSerializer}, auth=[],
        summary="Create a personal API token with a username and password",
    )
    def post(self, request: Request) -> Response:
        data = PasswordLoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = services.token_create_with_password(
            request=request._request, **data.validated_data
        )
        return Response(NewTokenSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="auth_token_revoke", request=None,
        responses={204: OpenApiResponse(description="The token used for this request is revoked.")},
        summary="Revoke the token used for this request (log out a script)",
    )
    def delete(self, request: Request) -> Response:
        token = request.auth
        assert isinstance(token, ApiToken)  # only TokenAuthentication can authenticate here
        services.token_revoke(token=token, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
