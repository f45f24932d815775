from django.urls import path

from apps.accounts import manage_views, sharing_views, views

app_name = "accounts"

urlpatterns = [
    path("me/", views.profile, name="profile"),
    path("me/tokens/", views.token_create, name="token_create"),
    path("me/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("teams/", views.team_list, name="team_list"),
    path("teams/new/", manage_views.team_create, name="team_create"),
    path("teams/<slug:slug>/", views.team_detail, name="team_detail"),
    path("teams/<slug:slug>/members/", manage_views.team_member, name="team_member"),
    path("share/bulk/", sharing_views.bulk_share, name="bulk_share"),
    path("share/<slug:kind>/<int:pk>/", sharing_views.share, name="share"),
    path("share/<slug:kind>/<int:pk>/revoke/", sharing_views.share_revoke, name="share_revoke"),
    path("manage/users/", manage_views.user_list, name="manage_users"),
    path("manage/users/invite/", manage_views.user_invite, name="manage_invite"),
    path("manage/users/<int:pk>/", manage_views.user_detail, name="manage_user"),
    path("manage/users/<int:pk>/roles/", manage_views.user_roles, name="manage_user_roles"),
    path("manage/users/<int:pk>/active/", manage_views.user_active, name="manage_user_active"),
    path("manage/users/<int:pk>/access/", manage_views.user_access, name="manage_user_access"),
    path("set-password/<uidb64>/<token>/", manage_views.SetPasswordView.as_view(), name="set_password"),
]
