from django.urls import path

from apps.value import views

app_name = "value"

urlpatterns = [
    path("", views.portfolio, name="portfolio"),
    path("export.csv", views.portfolio_csv, name="portfolio_csv"),
    path("print/", views.portfolio_print, name="portfolio_print"),
    path("home-widget/", views.home_widget, name="home_widget"),
    path("new/", views.use_case_new, name="use_case_new"),
    path("rates/", views.compute_rates, name="compute_rates"),
    path("import-templates/<str:kind>.csv", views.import_template, name="import_template"),
    path("<slug:slug>/", views.use_case_detail, name="use_case"),
    path("<slug:slug>/edit/", views.use_case_edit, name="use_case_edit"),
    path("<slug:slug>/stage/", views.use_case_stage, name="use_case_stage"),
    path("<slug:slug>/links/", views.use_case_links, name="use_case_links"),
    path("<slug:slug>/costs/", views.cost_add, name="cost_add"),
    path("<slug:slug>/values/", views.value_add, name="value_add"),
    path("<slug:slug>/<str:kind>/<int:pk>/delete/", views.entry_delete, name="entry_delete"),
    path("<slug:slug>/<str:kind>/import/", views.entries_import, name="entries_import"),
]
