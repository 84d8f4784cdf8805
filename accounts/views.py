"""Profile page section: create, list and revoke personal API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services
from accounts.exceptions import AccountError
from accounts.forms import TokenCreateForm


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """POST creates a token and renders the page with its key in the response itself (no
    redirect): the key is never stored server-side, in the session or in a cookie."""
    form = TokenCreateForm(request.POST or None)
    new_key, status = None, 200
    if request.method == "POST" and form.is_valid():
        try:
            created = services.token_create(user=request.user, name=form.cleaned_data["name"])
        except AccountError as error:
            messages.error(request, error.message)
        else:
            new_key, status, form = created.key, 201, TokenCreateForm()
    context = {"tokens": selectors.tokens_for_user(user=request.user), "form": form,
               "new_key": new_key, "api_base": request.build_absolute_uri("/api/v1/")}
    return render(request, "account/tokens.html", context, status=status)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(selectors.tokens_for_user(user=request.user), pk=pk)
    services.token_revoke(token=token, user=request.user)
    messages.success(request, f"Token “{token.name}” ({token.prefix}…) revoked.")
    return redirect("accounts:tokens")
