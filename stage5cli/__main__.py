"""python -m stage5cli"""

from .cli import app

app(prog_name="stage5")
