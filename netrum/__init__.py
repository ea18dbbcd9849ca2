"""netrum: passive real-user monitoring for HTTP APIs."""

__version__ = "0.1.0"
