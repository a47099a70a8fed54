"""giftcast: a self-hostable real-time gift server for live streaming."""

__version__ = "0.1.0"
