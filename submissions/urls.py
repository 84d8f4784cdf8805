from __future__ import annotations

from django.urls import path

from submissions import views

app_name = "submissions"

urlpatterns = [
    path("challenges/<slug:slug>/phases/<slug:phase>/", views.phase_detail, name="phase"),
    path("challenges/<slug:slug>/phases/<slug:phase>/submit/", views.submission_upload,
         name="upload"),
    path("submissions/<uuid:uid>/", views.submission_detail, name="detail"),
    path("submissions/<uuid:uid>/status/", views.submission_status, name="status"),
    path("submissions/<uuid:uid>/select/", views.submission_select, name="select"),
    path("submissions/<uuid:uid>/note/", views.submission_note, name="note"),
    path("submissions/<uuid:uid>/films/<str:film>.png", views.sanity_film, name="film"),
]
