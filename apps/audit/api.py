from rest_framework import serializers, viewsets

from apps.audit import selectors
from apps.audit.filters import AuditEventFilter
from apps.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "sequence",
            "timestamp",
            "actor_username",
            "action",
            "object_type",
            "object_id",
            "object_label",
            "before",
            "after",
            "changes",
            "request_id",
            "ip_address",
            "prev_hash",
            "hash",
        ]


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit log (platform admins and approvers; others see an empty list)."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    queryset = AuditEvent.objects.none()  # for the schema; get_queryset filters by user
    lookup_field = "sequence"
    lookup_value_regex = r"[0-9]+"
    ordering_fields = ["sequence", "timestamp"]

    def get_queryset(self):
        return selectors.events_for_log(self.request.user).order_by("-sequence")
