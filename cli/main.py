"""The ``snw`` command-line client: talks to the launcher over HTTP only.

Command modules are imported here (cheap: click only); ``requests`` and ``tabulate`` are
imported on first use, inside the commands.
"""

import click

from cli import VERSION, admin, auth, services, tasks
from cli.options import shared_options

__all__ = ["cli"]


class SnwGroup(click.Group):
    """Root group: lists commands in the order they were added, and turns stray I/O errors
    (a closed pipe, an unreadable file) into one line instead of a traceback."""

    def list_commands(self, ctx):
        return list(self.commands)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}") from None


@click.group(name="snw", cls=SnwGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="snw")
@shared_options
def cli() -> None:
    """SNW: launch and follow GPU training tasks on shared pools.

    Log in once (`snw login`), then every command sends the saved token. The launcher is
    --url or SNW_URL (default http://127.0.0.1:8000); --json prints the server's JSON.

    \b
      snw login
      snw ls
      snw launch -s aa_pool -i nmtwizard/pn9_tf:v1.20.0 -- -c @./config.json train
      snw lt -p AATRN
      snw log -f TASK_ID
    """


# Authentication
cli.add_command(auth.login)
cli.add_command(auth.logout)
cli.add_command(auth.whoami)
cli.add_command(auth.passwd)
# Pools and tasks, with nmt-wizard's shortcuts
cli.add_command(services.service)
cli.add_command(services.service_list, "ls")
cli.add_command(tasks.task)
cli.add_command(tasks.task_launch, "launch")
cli.add_command(tasks.task_exec, "exec")
cli.add_command(tasks.task_list, "lt")
cli.add_command(tasks.task_status, "status")
cli.add_command(tasks.task_terminate, "terminate")
cli.add_command(tasks.task_delete, "dt")
cli.add_command(tasks.task_log, "log")
cli.add_command(tasks.task_file, "file")
# Administration
for _resource in admin.RESOURCES:
    cli.add_command(admin.resource_group(_resource))
cli.add_command(auth.token)
