"""Monitoring: the Prometheus alert rules the design asks for, rendered from the inventory."""
