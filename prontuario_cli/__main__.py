"""``python -m prontuario_cli`` runs the same entry point as the ``prontuario`` script."""

from prontuario_cli.cli.main import run

if __name__ == "__main__":
    run()
