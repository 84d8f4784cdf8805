from __future__ import annotations

from django.urls import path

from leaderboards import views

app_name = "leaderboards"

BOARD = "challenges/<slug:slug>/phases/<slug:phase>/leaderboard/<str:board>/"

urlpatterns = [
    path(BOARD, views.leaderboard, name="board"),
    path(BOARD + "live/", views.leaderboard_live, name="board_live"),
    path(BOARD + "export.csv", views.export_csv, name="export_csv"),
    path(BOARD + "export.json", views.export_json, name="export_json"),
    path(BOARD + "<uuid:key>/", views.entry_detail, name="entry"),
]
