from django.urls import path

from apps.alerting import views

app_name = "alerting"

urlpatterns = [
    path("", views.alert_list, name="alert_list"),
    path("<int:pk>/", views.alert_detail, name="alert"),
    path("<int:pk>/acknowledge/", views.alert_acknowledge, name="alert_acknowledge"),
    path("<int:pk>/resolve/", views.alert_resolve, name="alert_resolve"),
    path("rules/", views.rule_list, name="rule_list"),
    path("rules/new/", views.rule_new, name="rule_new"),
    path("rules/<int:pk>/edit/", views.rule_edit, name="rule_edit"),
    path("silences/", views.silence_list, name="silence_list"),
    path("silences/<int:pk>/end/", views.silence_end, name="silence_end"),
    path("webhooks/", views.channel_list, name="channel_list"),
    path("fragments/open/", views.open_alerts_fragment, name="open_alerts_fragment"),
    path("fragments/endpoint/<slug:name>/", views.endpoint_alerts_fragment, name="endpoint_alerts_fragment"),
    path("fragments/home/", views.home_widget, name="home_widget"),
]
