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
    "HostDetailSerializer",
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
    server = serializers.JSONField(
        required=False,
        help_text="nmt-wizard's JSON-Form field of the `server` task option (pools of more "
        "than one host): `title`, `type`, `description`, `enum` (the hosts).",
    )
    known_hosts = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="SSH pools: host -> the known_hosts file its host key is checked against; "
        "`~/.ssh/known_hosts` (`~`: the home of the user the pool's worker runs as) when the "
        "pool names none.",
    )


class HostDetailSerializer(HostStateSerializer):
    """A host in ``service/list``'s ``detail``: nmt-wizard's fields, then SNW's host state."""

    busy = serializers.CharField(
        allow_blank=True, help_text="Why the host is not usable (disabled, quarantined), or ''."
    )
    reserved = serializers.CharField(
        allow_blank=True, help_text="The task the host is held for (one you may read), or ''."
    )
    capacity = serializers.ListField(
        child=serializers.IntegerField(), min_length=2, max_length=2, help_text="[GPUs, CPUs]."
    )
    usage = serializers.ListField(
        child=serializers.CharField(),
        help_text="`<type> <task>: <gpus> (<cpus>)` per task on the host; tasks of entities "
        "you may not read are summed as `other entities: <gpus> (<cpus>)`.",
    )
    avail_gpus = serializers.IntegerField()
    avail_cpus = serializers.IntegerField()


class PoolSummarySerializer(serializers.Serializer):
    """One pool of ``service/list``: nmt-wizard's fields (only ``name`` with ``?minimal``),
    then SNW's (``description``, ``entities``, ``active``, ``state``)."""

    name = serializers.CharField(help_text="The pool's description (nmt-wizard's `name`).")
    pid = serializers.CharField(
        required=False, help_text="Worker ids, comma-separated, or `**NO WORKER**`."
    )
    usage = serializers.CharField(required=False, help_text="`G (C)`: GPUs (CPUs) in use.")
    queued = serializers.IntegerField(required=False)
    capacity = serializers.CharField(required=False, help_text="`G (C)`: GPUs (CPUs) in all.")
    busy = serializers.JSONField(
        required=False, help_text="Number of hosts not usable now, or `yes` without a worker."
    )
    detail = serializers.DictField(child=HostDetailSerializer(), required=False)
    description = serializers.CharField(allow_blank=True, required=False)
    entities = serializers.ListField(child=serializers.CharField(), required=False)
    active = serializers.IntegerField(required=False)
    state = serializers.CharField(required=False)
    disabled = serializers.BooleanField(
        required=False, help_text='`"disabled"` in its configuration: it takes no task.'
    )
    unusable = serializers.CharField(
        required=False, help_text="Only for a pool that cannot run tasks (ec2, torque): why."
    )


class PoolListQuerySerializer(serializers.Serializer):
    minimal = serializers.BooleanField(default=False, help_text="Only each pool's `name`.")
    all = serializers.BooleanField(
        default=False, help_text="Also the pools that do not serve your own entity."
    )
    verbose = serializers.BooleanField(
        default=False, help_text="Accepted for older clients; `detail` is always there."
    )


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
