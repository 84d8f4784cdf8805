from __future__ import annotations

from rest_framework import serializers


class PasswordLoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    name = serializers.CharField(
        max_length=100, required=False, default="CLI",
        help_text="A name to recognise the token by on your profile page.",
    )


class NewTokenSerializer(serializers.Serializer):
    """A services.NewToken: the key, shown only this once, and how the token is listed."""

    key = serializers.CharField(help_text="The token. Shown only this once: store it now.")
    name = serializers.CharField(source="token.name")
    prefix = serializers.CharField(source="token.prefix")
    created_at = serializers.DateTimeField(source="token.created_at")
