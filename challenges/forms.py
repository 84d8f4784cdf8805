from __future__ import annotations

from django import forms


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=80, label="Team name")


class InvitationForm(forms.Form):
    email = forms.EmailField(
        required=False, help_text="Leave empty to get a link you can share (single use)."
    )


class CaptainForm(forms.Form):
    user_id = forms.IntegerField(widget=forms.HiddenInput)


class TeamRenameForm(forms.Form):
    name = forms.CharField(max_length=80, label="New name")
