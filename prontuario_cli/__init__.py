"""prontuario: operations tool for the Prontuário clinical platform's Mac Studio cluster."""

__version__ = "0.1.0"
