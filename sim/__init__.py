"""badia: agent-based simulation of insurgent groups and garrison coverage in a desert theatre."""

__version__ = "0.1.0"
