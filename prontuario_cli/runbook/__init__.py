"""Runbooks: ordered, named steps that change a cluster, planned first and resumable.

- :mod:`~prontuario_cli.runbook.engine`: :class:`~prontuario_cli.runbook.engine.Runbook`
  (plan, confirm, one audit entry per step, the journal, resume, the stop-after hook),
  :class:`~prontuario_cli.runbook.engine.Step` and
  :class:`~prontuario_cli.runbook.engine.StepResult`.
- :mod:`~prontuario_cli.runbook.state`: :class:`~prontuario_cli.runbook.state.RunState`,
  the JSON journal of one run (``<state dir>/<kind>-<subject>.json``, mode 0600).

``gcp promote`` and ``gcp failback`` run on it; a new runbook subclasses ``Runbook``,
lists its steps, and writes only what its steps do.
"""
