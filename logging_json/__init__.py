from .hooks import post_load
