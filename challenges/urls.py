from __future__ import annotations

from django.urls import path

from challenges import views

app_name = "challenges"

urlpatterns = [
    path("", views.challenge_list, name="list"),
    path("challenges/<slug:slug>/", views.challenge_detail, name="detail"),
    path("challenges/<slug:slug>/terms/", views.terms, name="terms"),
    path("challenges/<slug:slug>/audit.jsonl", views.audit_export, name="audit_export"),
    path("challenges/<slug:slug>/files/<path:name>", views.public_file, name="file"),
    path("challenges/<slug:slug>/phases/<slug:phase>/starter-kit.zip", views.phase_starter_kit,
         name="starter_kit"),
    path("challenges/<slug:slug>/runtime-image/<str:name>", views.runtime_image,
         name="runtime_image"),
    path("challenges/<slug:slug>/teams/new/", views.team_create, name="team_create"),
    path("challenges/<slug:slug>/teams/<int:pk>/", views.team_detail, name="team"),
    path("challenges/<slug:slug>/teams/<int:pk>/invite/", views.team_invite, name="team_invite"),
    path("challenges/<slug:slug>/teams/<int:pk>/leave/", views.team_leave, name="team_leave"),
    path("challenges/<slug:slug>/teams/<int:pk>/rename/", views.team_rename, name="team_rename"),
    path("challenges/<slug:slug>/teams/<int:pk>/invitations/<int:invitation_pk>/cancel/",
         views.invitation_cancel, name="invitation_cancel"),
    path("challenges/<slug:slug>/teams/<int:pk>/captain/", views.team_transfer,
         name="team_transfer"),
    path("challenges/<slug:slug>/teams/<int:pk>/join/", views.team_request_join,
         name="team_request_join"),
    path("challenges/<slug:slug>/teams/<int:pk>/requests/<int:request_pk>/",
         views.join_request_decide, name="join_request_decide"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("accounts/profile/", views.profile, name="profile"),
]
