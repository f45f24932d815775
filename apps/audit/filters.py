import django_filters

from apps.audit.models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_username", lookup_expr="iexact", label="Actor")
    action = django_filters.CharFilter(field_name="action", lookup_expr="istartswith", label="Action")
    object_type = django_filters.CharFilter(field_name="object_type", lookup_expr="iexact", label="Object type")
    object_id = django_filters.CharFilter(field_name="object_id", label="Object id")
    since = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte", label="Since")
    until = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt", label="Until")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "object_type", "object_id", "since", "until"]
