"""Pool routes (nmt-wizard's ``/service/...``): listing, description, option checks, and pool
administration (configurations, restart/stop, host enable/disable).

Pool commands answer at once with a ``pending`` state the pool's worker then carries out; no
request waits for a worker.
"""

from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.serializers import MessageSerializer
from tasks_api import scoping, selectors, services
from tasks_api.api.serializers import (
    CommandStateSerializer,
    ConfigInputSerializer,
    ConfigListSerializer,
    ConfigSelectSerializer,
    DisableQuerySerializer,
    PoolDescriptionSerializer,
    PoolListQuerySerializer,
    PoolMapSerializer,
    PoolSummarySerializer,
)
from tasks_api.api.views.base import EngineViewSet, errors
from tasks_api.constants import PoolRule

__all__ = ["PoolViewSet"]

_POOL = OpenApiParameter("pool", OpenApiTypes.STR, OpenApiParameter.PATH)
_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)
_HOST = OpenApiParameter("host", OpenApiTypes.STR, OpenApiParameter.PATH)
_OK = OpenApiResponse(MessageSerializer, description="Done.")
_OPTIONS = {"type": "object", "additionalProperties": True, "description": "Task options."}
_CHECK = {"type": "object", "additionalProperties": True, "description": "The service's answer."}
_CONFIG = {"type": "object", "additionalProperties": True, "description": "A configuration."}


class PoolViewSet(EngineViewSet):
    """Every ``/service/...`` route; URL kwargs ``pool`` / ``name`` / ``host``."""

    rules = {
        "pools": PoolRule.VIEW,
        "describe": PoolRule.VIEW,
        "check_get": PoolRule.VIEW,
        "check_post": PoolRule.VIEW,
        "base_config_get": PoolRule.ADMIN,
        "base_config_post": PoolRule.ADMIN,
        "configs_get": PoolRule.EDIT_CONFIG,
        "configs_post": PoolRule.EDIT_CONFIG,
        "listconfig": PoolRule.EDIT_CONFIG,
        "setconfig": PoolRule.EDIT_CONFIG,
        "addconfig": PoolRule.EDIT_CONFIG,
        "selectconfig": PoolRule.EDIT_CONFIG,
        "delconfig": PoolRule.EDIT_CONFIG,
        "enable": PoolRule.EDIT_CONFIG,
        "disable": PoolRule.EDIT_CONFIG,
        "restart": PoolRule.STOP_CONFIG,
        "stop": PoolRule.STOP_CONFIG,
    }

    def _pool(self, pool: str) -> frozenset[str]:
        return scoping.pool_access(self.request.user, self.engine, pool, self.rules[self.action])

    # =========================================================================
    # Reading
    # =========================================================================
    @extend_schema(
        tags=["pools"],
        operation_id="service_list",
        parameters=[PoolListQuerySerializer],
        request=None,
        responses={
            200: OpenApiResponse(
                PoolMapSerializer,
                description=(
                    "Pool name -> summary (nmt-wizard's shape), for the pools you may use or "
                    "administer that serve your entity (`all`: every one of them)."
                ),
            ),
            **errors(400),
        },
    )
    def pools(self, request):
        query = PoolListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        engine = self.engine
        readable = scoping.task_read_scope(request.user)
        minimal = query.validated_data["minimal"]
        listed = []
        for description in scoping.visible_pools(request.user, engine, engine.list_pools()):
            entities = scoping.pool_entities(engine, description["name"])
            if scoping.pool_listed(request.user, entities, every_pool=query.validated_data["all"]):
                if not minimal:  # a minimal answer names the pool only: no task to filter
                    description = selectors.pool_without_unreadable_tasks(
                        engine, description, readable
                    )
                listed.append((description, entities))
        types = {} if minimal else selectors.pool_task_types(engine, [d for d, _ in listed])
        return Response(
            {
                description["name"]: PoolSummarySerializer(
                    selectors.pool_summary(description, entities, types, minimal=minimal)
                ).data
                for description, entities in listed
            }
        )

    @extend_schema(
        tags=["pools"],
        operation_id="service_describe",
        parameters=[_POOL],
        request=None,
        responses={200: PoolDescriptionSerializer, **errors(404)},
    )
    def describe(self, request, pool: str):
        entities = self._pool(pool)
        description = selectors.pool_without_unreadable_tasks(
            self.engine, self.engine.describe_pool(pool), scoping.task_read_scope(request.user)
        )
        description["entities"] = sorted(entities)
        description.update(selectors.pool_options_form(description))
        return Response(PoolDescriptionSerializer(description).data)

    def _check(self, request, pool: str):
        self._pool(pool)
        options = request.data if request.data else {}
        if not isinstance(options, dict):
            raise serializers.ValidationError({"options": "expected a JSON object"})
        return Response(self.engine.check_pool(pool, dict(options)))

    _check_schema = {
        "tags": ["pools"],
        "parameters": [_POOL],
        "request": {"application/json": _OPTIONS},
        "responses": {200: OpenApiResponse(_CHECK), **errors(400, 404)},
        "description": "Ask the pool's service whether task `options` are acceptable.",
    }

    @extend_schema(operation_id="service_check", **_check_schema)
    def check_get(self, request, pool: str):
        return self._check(request, pool)

    @extend_schema(operation_id="service_check_post", **_check_schema)
    def check_post(self, request, pool: str):
        return self._check(request, pool)

    # =========================================================================
    # Configurations (edit_config)
    # =========================================================================
    @extend_schema(
        tags=["pool administration"],
        operation_id="service_listconfig",
        parameters=[_POOL],
        request=None,
        responses={200: ConfigListSerializer, **errors(404)},
    )
    def listconfig(self, request, pool: str):
        self._pool(pool)
        names = self.engine.list_pool_configs(pool)
        configurations = {n: self.engine.get_pool_config(pool, n) for n in names["configs"]}
        return Response({"current": names["current"], "configurations": configurations})

    _setconfig_schema = {
        "tags": ["pool administration"],
        "parameters": [_POOL, _NAME],
        "request": {
            "application/json": ConfigInputSerializer,
            "multipart/form-data": ConfigInputSerializer,
            "application/x-www-form-urlencoded": ConfigInputSerializer,
        },
        "responses": {200: _OK, **errors(400, 404, 409)},
        "description": "Add or replace a named configuration (validated; `base` is read-only).",
    }

    @staticmethod
    def _config_input(request) -> dict:
        """The ``config`` field: a JSON object, or its JSON text (nmt-wizard's form field)."""
        serializer = ConfigInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        config = serializer.validated_data["config"]
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except ValueError:
                raise serializers.ValidationError({"config": "not valid JSON"}) from None
        if not isinstance(config, dict):
            raise serializers.ValidationError({"config": "expected a JSON object"})
        return config

    @extend_schema(operation_id="service_setconfig", **_setconfig_schema)
    def setconfig(self, request, pool: str, name: str):
        entities = self._pool(pool)
        config = self._config_input(request)
        entities |= scoping.check_config_entities(request.user, pool, config)
        services.pool_config_set(
            actor=request.user,
            engine=self.engine,
            pool=pool,
            name=name,
            entities=entities,
            config=config,
        )
        return Response({"message": f"configuration {name} of {pool} saved"})

    @extend_schema(operation_id="service_addconfig", **_setconfig_schema)
    def addconfig(self, request, pool: str, name: str):
        return self.setconfig(request, pool, name)

    # nmt-wizard HEAD's ``/service/configs``: the configuration in effect, read and replaced
    # whole. A posted one is stored as the named configuration ``posted`` and selected (the
    # worker reloads it, keeping its tasks); the pool file stays available as ``base``.
    _config_body = {
        "multipart/form-data": ConfigInputSerializer,
        "application/x-www-form-urlencoded": ConfigInputSerializer,
        "application/json": ConfigInputSerializer,
    }

    @extend_schema(
        tags=["pool administration"],
        operation_id="service_configs_base_get",
        request=None,
        responses={200: OpenApiResponse(_CONFIG, description="The shared base."), **errors()},
        description="The base configuration every pool's is merged over (`default.json`); "
        "super administrators only.",
    )
    def base_config_get(self, request):
        scoping.base_config_access(request.user)
        return Response(self.engine.get_base_config())

    @extend_schema(
        tags=["pool administration"],
        operation_id="service_configs_base_post",
        request=_config_body,
        responses={200: _OK, **errors(400)},
        description=(
            "Replace the base configuration (form field `config`: JSON text), refused when a "
            "pool's selected configuration would not be valid over it. Named configurations "
            "added or selected from then on merge over it. The posted base outlives launcher "
            "and worker restarts as long as `default.json` keeps the content it had when the "
            "base was posted; once that file is edited, the file's base applies again at the "
            "next start and the posted one is dropped (key order and layout do not count). "
            "Super administrators only."
        ),
    )
    def base_config_post(self, request):
        scoping.base_config_access(request.user)
        config = self._config_input(request)
        services.base_config_replace(actor=request.user, engine=self.engine, config=config)
        return Response({"message": "ok"})

    @extend_schema(
        tags=["pool administration"],
        operation_id="service_configs_get",
        parameters=[_POOL],
        request=None,
        responses={200: OpenApiResponse(_CONFIG, description="The selected one."), **errors(404)},
        description="The pool's configuration in effect (the selected one).",
    )
    def configs_get(self, request, pool: str):
        self._pool(pool)
        current = self.engine.list_pool_configs(pool)["current"]
        return Response(self.engine.get_pool_config(pool, current))

    @extend_schema(
        tags=["pool administration"],
        operation_id="service_configs_post",
        parameters=[_POOL],
        request=_config_body,
        responses={
            200: OpenApiResponse({"type": "string", "enum": ["ok"]}, description="Selected."),
            **errors(400, 404),
        },
        description=(
            "Replace the pool's configuration (form field `config`: JSON text; its `name` is "
            "set to the pool and `updated_at` to now): validated, stored as `posted` and "
            "selected; the worker reloads it at its next tick, keeping its tasks."
        ),
    )
    def configs_post(self, request, pool: str):
        entities = self._pool(pool)
        config = self._config_input(request)
        entities |= scoping.check_config_entities(request.user, pool, config)
        services.pool_config_replace(
            actor=request.user, engine=self.engine, pool=pool, entities=entities, config=config
        )
        return Response("ok")

    @extend_schema(
        tags=["pool administration"],
        operation_id="service_selectconfig",
        parameters=[_POOL, _NAME],
        request=None,
        responses={200: ConfigSelectSerializer, **errors(400, 404)},
        description="Select a configuration; `state` stays `pending` until the worker reloads.",
    )
    def selectconfig(self, request, pool: str, name: str):
        entities = self._pool(pool)
        config = self.engine.get_pool_config(pool, name)
        entities |= scoping.check_config_entities(request.user, pool, config)
        return Response(
            services.pool_config_select(
                actor=request.user, engine=self.engine, pool=pool, name=name, entities=entities
            )
        )

    @extend_schema(
        tags=["pool administration"],
        operation_id="service_delconfig",
        parameters=[_POOL, _NAME],
        request=None,
        responses={200: _OK, **errors(404, 409)},
    )
    def delconfig(self, request, pool: str, name: str):
        entities = self._pool(pool)
        services.pool_config_delete(
            actor=request.user, engine=self.engine, pool=pool, name=name, entities=entities
        )
        return Response({"message": f"configuration {name} of {pool} deleted"})

    # =========================================================================
    # Hosts (edit_config) and worker commands (stop_config)
    # =========================================================================
    @extend_schema(
        tags=["pool administration"],
        operation_id="service_enable",
        parameters=[_POOL, _HOST],
        request=None,
        responses={200: _OK, **errors(404)},
        description="Make a host usable again (clears a disable and a quarantine).",
    )
    def enable(self, request, pool: str, host: str):
        self._pool(pool)
        self.engine.enable_host(pool, host)
        return Response({"message": f"{host} enabled"})

    @extend_schema(
        tags=["pool administration"],
        operation_id="service_disable",
        parameters=[_POOL, _HOST, DisableQuerySerializer],
        request=None,
        responses={200: _OK, **errors(400, 404)},
        description="Stop scheduling on a host until it is enabled again.",
    )
    def disable(self, request, pool: str, host: str):
        query = DisableQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        self._pool(pool)
        self.engine.disable_host(pool, host, query.validated_data["message"])
        return Response({"message": f"{host} disabled"})

    _command_schema = {
        "tags": ["pool administration"],
        "parameters": [_POOL],
        "request": None,
        "responses": {200: CommandStateSerializer, **errors(404)},
    }

    @extend_schema(
        operation_id="service_restart",
        description="The worker reloads its configuration; answers `pending` at once.",
        **_command_schema,
    )
    def restart(self, request, pool: str):
        self._pool(pool)
        return Response(self.engine.restart_pool(pool))

    @extend_schema(
        operation_id="service_stop",
        description="The worker exits and is not restarted; answers `pending` at once.",
        **_command_schema,
    )
    def stop(self, request, pool: str):
        self._pool(pool)
        return Response(self.engine.stop_pool(pool))
