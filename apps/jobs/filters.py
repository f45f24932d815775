import django_filters

from apps.jobs.models import Job


class JobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Job.Status.choices)
    kind = django_filters.CharFilter(lookup_expr="istartswith")
    target_id = django_filters.CharFilter()

    class Meta:
        model = Job
        fields = ["status", "kind", "target_id"]
