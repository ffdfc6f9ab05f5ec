"""python -m stage5cli"""

from stage5cli.cli import app

if __name__ == "__main__":
    app(prog_name="stage5")
