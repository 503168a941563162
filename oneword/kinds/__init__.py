"""The kinds of small model oneword trains, one module each, and their registry (oneword/kinds/registry.py)."""

from oneword.kinds.embedding import EMBEDDING
from oneword.kinds.hypernetwork import HYPERNETWORK
from oneword.kinds.lora import LORA
from oneword.kinds.pivotal import PIVOTAL
from oneword.kinds.registry import Kind, get, names, register, unregister

__all__ = ["Kind", "get", "names", "register", "unregister"]

register(EMBEDDING)
register(HYPERNETWORK)
register(LORA)
register(PIVOTAL)
