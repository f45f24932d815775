from django.urls import path, re_path

from apps.registry import views

app_name = "registry"

urlpatterns = [
    path("", views.model_list, name="model_list"),
    # Before "<model>/…": a run id is 32 hex digits, so no model page is shadowed.
    re_path(r"^from-run/(?P<run_uuid>[0-9a-f]{32})/$", views.run_versions, name="run_versions"),
    path("<str:model>/", views.model_detail, name="model"),
    path("<str:model>/settings/", views.model_settings, name="model_settings"),
    path("<str:model>/aliases/", views.alias_set, name="alias_set"),
    path("<str:model>/register/", views.register_version, name="register_version"),
    path("<str:model>/compare/", views.compare_versions, name="compare"),
    path("<str:model>/versions/<int:version>/", views.version_detail, name="version"),
    path("<str:model>/versions/<int:version>/print/", views.version_print, name="version_print"),
    path("<str:model>/versions/<int:version>/stage/", views.version_stage, name="version_stage"),
    path("<str:model>/versions/<int:version>/delete/", views.version_delete, name="version_delete"),
    path("<str:model>/versions/<int:version>/card/slices/", views.slice_import, name="slice_import"),
    path("<str:model>/versions/<int:version>/card/<str:section>/", views.card_section, name="card_section"),
    path("<str:model>/versions/<int:version>/model-card.md", views.export_markdown, name="export_markdown"),
    path("<str:model>/versions/<int:version>/model-card.json", views.export_json, name="export_json"),
    path("<str:model>/versions/<int:version>/model-card.html", views.export_html, name="export_html"),
]
