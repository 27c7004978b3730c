"""Serializers of the pool routes (``/service/...``): outputs and configuration input."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

__all__ = [
    "CommandStateSerializer",
    "ConfigInputSerializer",
    "ConfigListSerializer",
    "ConfigSelectSerializer",
    "DisableQuerySerializer",
    "HostStateSerializer",
    "PoolDescriptionSerializer",
    "PoolListQuerySerializer",
    "PoolMapSerializer",
    "PoolSummarySerializer",
    "ResourcesSerializer",
]


class ResourcesSerializer(serializers.Serializer):
    gpus = serializers.IntegerField()
    cpus = serializers.IntegerField()


class HostStateSerializer(serializers.Serializer):
    name = serializers.CharField()
    gpus = serializers.ListField(child=serializers.JSONField())
    ncpus = serializers.IntegerField()
    used_gpus = serializers.IntegerField()
    used_cpus = serializers.IntegerField()
    state = serializers.CharField(help_text="`ok`, or why the host is not usable.")
    reason = serializers.CharField(allow_blank=True, allow_null=True)
    reserved_for = serializers.CharField(allow_null=True)
    tasks = serializers.ListField(child=serializers.CharField())


class PoolDescriptionSerializer(serializers.Serializer):
    """``service/describe``: capacity, usage, hosts, workers, pending commands."""

    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    service = serializers.CharField(allow_null=True)
    entities = serializers.ListField(child=serializers.CharField())
    capacity = ResourcesSerializer()
    usage = ResourcesSerializer()
    queued = serializers.IntegerField()
    active = serializers.IntegerField()
    busy = serializers.IntegerField()
    hosts = HostStateSerializer(many=True)
    workers = serializers.ListField(child=serializers.CharField())
    leader = serializers.CharField(allow_null=True)
    state = serializers.CharField()
    current_config = serializers.CharField()
    config_state = serializers.CharField(allow_null=True)
    command = serializers.CharField(allow_null=True)
    command_state = serializers.CharField(allow_null=True)
    disabled = serializers.BooleanField(default=False)
    unusable = serializers.CharField(allow_null=True, default=None)


class PoolSummarySerializer(serializers.Serializer):
    """One pool of ``service/list`` (nmt-wizard's fields; ``detail`` only with ``?verbose``)."""

    name = serializers.CharField(help_text="The pool's description (nmt-wizard's `name`).")
    description = serializers.CharField(allow_blank=True, required=False)
    entities = serializers.ListField(child=serializers.CharField(), required=False)
    usage = serializers.CharField(required=False, help_text="`G (C)`: GPUs (CPUs) in use.")
    capacity = serializers.CharField(required=False, help_text="`G (C)`: GPUs (CPUs) in all.")
    queued = serializers.IntegerField(required=False)
    active = serializers.IntegerField(required=False)
    busy = serializers.IntegerField(required=False, help_text="Hosts not usable now.")
    pid = serializers.CharField(required=False, help_text="Worker ids, or `**NO WORKER**`.")
    state = serializers.CharField(required=False)
    disabled = serializers.BooleanField(
        required=False, help_text='`"disabled"` in its configuration: it takes no task.'
    )
    unusable = serializers.CharField(
        required=False, help_text="Only for a pool that cannot run tasks (ec2, torque): why."
    )
    detail = serializers.DictField(child=HostStateSerializer(), required=False)


class PoolListQuerySerializer(serializers.Serializer):
    minimal = serializers.BooleanField(default=False)
    verbose = serializers.BooleanField(default=False)


class CommandStateSerializer(serializers.Serializer):
    pool = serializers.CharField()
    command = serializers.CharField()
    state = serializers.CharField(help_text="`pending` until the pool's worker has acted.")


class ConfigSelectSerializer(serializers.Serializer):
    pool = serializers.CharField()
    current = serializers.CharField()
    state = serializers.CharField(help_text="`pending` until the pool's worker has reloaded.")


class ConfigListSerializer(serializers.Serializer):
    current = serializers.CharField()
    configurations = serializers.DictField(
        child=serializers.DictField(), help_text="Name -> configuration JSON."
    )


class ConfigInputSerializer(serializers.Serializer):
    """``setconfig``: form field ``config`` (JSON text, as nmt-wizard) or a JSON object."""

    config = serializers.JSONField(help_text="The pool configuration (object or JSON text).")


class DisableQuerySerializer(serializers.Serializer):
    message = serializers.CharField(default="DISABLED", max_length=200)


class PoolMapSerializer(serializers.Serializer):
    """``service/list``: pool name -> :class:`PoolSummarySerializer` (documentation only)."""


class PoolMapSchema(OpenApiSerializerExtension):
    """OpenAPI of :class:`PoolMapSerializer`: an object whose values are pool summaries."""

    target_class = PoolMapSerializer

    def map_serializer(self, auto_schema, direction):
        component = auto_schema.resolve_serializer(PoolSummarySerializer, direction)
        return {"type": "object", "additionalProperties": component.ref}
