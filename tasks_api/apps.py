from django.apps import AppConfig


class TasksApiConfig(AppConfig):
    name = "tasks_api"
    verbose_name = "Tasks"

    def ready(self):
        # Every task the engine creates in this process gets a task-restricted token, revoked
        # when this process stops it (workers, which are Django-free, cannot revoke: the
        # callback check refuses a restricted token once its task is stopped, see
        # tasks_api.scoping.task_access).
        from accounts.tokens import mint_task_token, revoke_task_token
        from nmtwizard import hooks

        hooks.set_token_hooks(minter=mint_task_token, revoker=revoke_task_token)
