"""REST API for challenges, terms, public files and teams (/api/v1/challenges/...).

Views are thin: look up what the user may see (challenges.selectors), validate input, call
challenges.services, serialise. Domain errors propagate to core.api.exception_handler.
"""

from __future__ import annotations

from django.http import FileResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from challenges import selectors, services
from challenges.exceptions import TermsNotAccepted
from challenges.models import Challenge, Team
from challenges.serializers import (
    ChallengeDetailSerializer,
    ChallengeSummarySerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    PublicFileSerializer,
    TeamCreateSerializer,
    TeamSerializer,
    TermsAcceptanceSerializer,
    team_queryset,
)
from core.storage import private_path


def get_challenge(request: Request, slug: str) -> Challenge:
    """The challenge if this user may see it (the pages' rule), else 404."""
    return selectors.visible_challenge(user=request.user, slug=slug)


def my_team(request: Request, challenge: Challenge) -> Team:
    team = selectors.team_for_user(challenge=challenge, user=request.user)
    if team is None:
        raise NotFound("You are not in a team for this challenge.")
    return team


def team_body(request: Request, team_pk: int) -> dict[str, object]:
    return TeamSerializer(team_queryset().get(pk=team_pk), context={"request": request}).data


@extend_schema(tags=["challenges"], summary="Challenges you may see")
class ChallengeList(ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = ChallengeSummarySerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.challenge_list(user=self.request.user)


class ChallengeDetail(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["challenges"], responses=ChallengeDetailSerializer,
                   summary="A challenge with its phases (windows, kinds, quotas, metrics)")
    def get(self, request: Request, slug: str) -> Response:
        challenge = get_challenge(request, slug)
        user = request.user
        viewer = {
            "terms_accepted": selectors.has_accepted_terms(challenge=challenge, user=user),
            "is_organiser": selectors.is_organiser(challenge=challenge, user=user),
            "team": selectors.team_for_user(challenge=challenge, user=user),
        }
        return Response(ChallengeDetailSerializer(challenge, context={"viewer": viewer}).data)


class TermsAccept(APIView):
    @extend_schema(tags=["challenges"], request=None, responses=TermsAcceptanceSerializer,
                   summary="Accept the current version of the data-use terms")
    def post(self, request: Request, slug: str) -> Response:
        acceptance = services.terms_accept(challenge=get_challenge(request, slug),
                                           user=request.user)
        return Response(TermsAcceptanceSerializer(acceptance).data)


class FileList(APIView):
    """Names and sizes are public, as on the challenge page; downloading needs the terms."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["challenges"], responses=PublicFileSerializer(many=True),
                   summary="Public files of a challenge")
    def get(self, request: Request, slug: str) -> Response:
        challenge = get_challenge(request, slug)
        context = {"request": request, "slug": challenge.slug}
        return Response(
            PublicFileSerializer(challenge.public_files.all(), many=True, context=context).data
        )


class IgnoreAccept(BaseContentNegotiation):
    """The download answers a file whatever the client accepts; errors stay JSON."""

    def select_parser(self, request, parsers):  # type: ignore[no-untyped-def]
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):  # type: ignore[no-untyped-def]
        return renderers[0], renderers[0].media_type


class FileDownload(APIView):
    content_negotiation_class = IgnoreAccept

    @extend_schema(
        tags=["challenges"], summary="Download a public file (after accepting the terms)",
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    def get(self, request: Request, slug: str, name: str) -> FileResponse:
        if "\x00" in name:  # no stored name has one, and PostgreSQL refuses it in a query
            raise NotFound()
        challenge = get_challenge(request, slug)
        if not selectors.has_accepted_terms(challenge=challenge, user=request.user):
            raise TermsNotAccepted("Accept the data-use terms before downloading the data.")
        item = challenge.public_files.filter(name=name).first()
        if item is None:
            raise NotFound("No such file.")
        return FileResponse(
            private_path(item.path).open("rb"), as_attachment=True,
            filename=item.name.rsplit("/", 1)[-1], content_type="application/octet-stream",
        )


class TeamCreate(APIView):
    @extend_schema(tags=["teams"], request=TeamCreateSerializer, responses={201: TeamSerializer},
                   summary="Create a team; you become its captain")
    def post(self, request: Request, slug: str) -> Response:
        data = TeamCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = services.team_create(challenge=get_challenge(request, slug), user=request.user,
                                    name=data.validated_data["name"])
        return Response(team_body(request, team.pk), status=status.HTTP_201_CREATED)


class TeamMine(APIView):
    @extend_schema(tags=["teams"], responses=TeamSerializer, summary="Your team in a challenge")
    def get(self, request: Request, slug: str) -> Response:
        team = my_team(request, get_challenge(request, slug))
        return Response(team_body(request, team.pk))


class InvitationCreate(APIView):
    @extend_schema(
        tags=["teams"], request=InvitationCreateSerializer,
        responses={201: InvitationSerializer},
        summary="Invite someone to your team (captain only)",
        description="Returns the invitation link. With an e-mail address the invitation "
        "is also mailed to it, as from the team page.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = my_team(request, get_challenge(request, slug))
        invitation = services.invitation_create(team=team, user=request.user,
                                                email=data.validated_data["email"],
                                                site_url=request.build_absolute_uri("/"))
        return Response(InvitationSerializer(invitation, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class TeamLeave(APIView):
    @extend_schema(tags=["teams"], request=None,
                   responses={204: OpenApiResponse(description="You left the team.")},
                   summary="Leave your team")
    def post(self, request: Request, slug: str) -> Response:
        team = my_team(request, get_challenge(request, slug))
        services.team_leave(team=team, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAccept(APIView):
    @extend_schema(tags=["teams"], request=None, responses=TeamSerializer,
                   summary="Join a team with an invitation token")
    def post(self, request: Request, token: str) -> Response:
        membership = services.invitation_accept(token=token, user=request.user)
        return Response(team_body(request, membership.team_id))


urlpatterns = [
    path("challenges/", ChallengeList.as_view(), name="challenge-list"),
    path("challenges/<slug:slug>/", ChallengeDetail.as_view(), name="challenge-detail"),
    path("challenges/<slug:slug>/terms/accept/", TermsAccept.as_view(), name="terms-accept"),
    path("challenges/<slug:slug>/files/", FileList.as_view(), name="file-list"),
    path("challenges/<slug:slug>/files/<path:name>", FileDownload.as_view(),
         name="file-download"),
    path("challenges/<slug:slug>/teams/", TeamCreate.as_view(), name="team-create"),
    path("challenges/<slug:slug>/teams/mine/", TeamMine.as_view(), name="team-mine"),
    path("challenges/<slug:slug>/teams/mine/invitations/", InvitationCreate.as_view(),
         name="invitation-create"),
    path("challenges/<slug:slug>/teams/mine/leave/", TeamLeave.as_view(), name="team-leave"),
    path("invitations/<slug:token>/accept/", InvitationAccept.as_view(),
         name="invitation-accept"),
]
