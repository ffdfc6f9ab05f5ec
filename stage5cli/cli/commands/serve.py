"""The "Review" panel: serve (the review room, a local web page over the project)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from stage5cli.cli.app import ProjectOpt, app, open_project_opt


@app.command(rich_help_panel="Review")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind (another than 127.0.0.1 needs --token).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8150,
    open_: Annotated[bool, typer.Option("--open/--no-open", help="Open the page in the default browser.")] = False,
    token: Annotated[str | None, typer.Option("--token", help="Access token (default $STAGE5_SERVE_TOKEN, else a new random one per run).", show_default=False)] = None,
    project: ProjectOpt = None,
) -> None:
    """Serve the review room: look at, edit, merge, generate, lock and promote in the browser."""
    from stage5cli.errors import UsageError

    try:
        import uvicorn

        from stage5cli.serve.app import create_app
    except ImportError:
        raise UsageError("stage5 serve needs the serve extra: pip install 'stage5[serve]'") from None
    p = open_project_opt(project)
    root = p.root.resolve()
    p.db.conn.close()
    token = token or os.environ.get("STAGE5_SERVE_TOKEN") or None
    if host not in ("127.0.0.1", "localhost", "::1"):
        if not token:
            raise UsageError(f"--host {host} makes the page reachable by others: pass --token T "
                             "(or set STAGE5_SERVE_TOKEN)")
        sys.stderr.write(f"warning: serving on {host}: anyone who can reach this machine and "
                         "knows the token can change this project\n")
    if not token:
        import secrets

        token = secrets.token_urlsafe(24)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/?token={token}"
    application = create_app(root, token=token, host=host, port=port)
    sys.stdout.write(f"stage5 review room for {root}\n  {url}\n(Ctrl-C to stop)\n")
    sys.stdout.flush()
    if open_:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, [url]).start()  # once the server listens
    uvicorn.run(application, host=host, port=port, log_level="warning")
