from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors, services
from apps.accounts.models import PersonalAccessToken, Team, User


class TeamBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name", "slug"]


class MeSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()
    teams = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "display_name", "is_superuser", "roles", "teams"]

    def get_roles(self, user: User) -> list[str]:
        return selectors.roles_of(user)

    def get_teams(self, user: User) -> list[dict]:
        return TeamBriefSerializer(selectors.teams_of(user), many=True).data


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="The signed-in user, roles and teams")
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class TokenSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True)

    class Meta:
        model = PersonalAccessToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at", "state"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=settings.TOKEN_MAX_EXPIRY_DAYS, default=settings.TOKEN_DEFAULT_EXPIRY_DAYS
    )


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret. Shown once; store it now.")

    class Meta(TokenSerializer.Meta):
        fields = TokenSerializer.Meta.fields + ["token"]
        read_only_fields = fields


class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The signed-in user's personal access tokens."""

    serializer_class = TokenSerializer
    queryset = PersonalAccessToken.objects.none()  # for the schema; get_queryset filters by user
    filterset_fields: list[str] = []
    ordering_fields = ["created_at", "expires_at", "last_used_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PersonalAccessToken.objects.none()
        return selectors.tokens_of(self.request.user)

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenCreatedSerializer})
    def create(self, request):
        incoming = TokenCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        token, raw = services.create_token(user=request.user, **incoming.validated_data)
        token.token = raw
        return Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=TokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = services.revoke_token(token=self.get_object(), by=request.user)
        return Response(TokenSerializer(token).data)


class TeamSerializer(serializers.ModelSerializer):
    lead = serializers.SlugRelatedField(slug_field="username", read_only=True)
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "description", "lead", "member_count", "created_at"]


class TeamViewSet(viewsets.ReadOnlyModelViewSet):
    """Teams of the organisation (names and sizes are visible to every signed-in user)."""

    serializer_class = TeamSerializer
    lookup_field = "slug"
    filterset_fields = ["slug"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return selectors.teams_with_counts().order_by("name")
