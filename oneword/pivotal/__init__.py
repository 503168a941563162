"""Pivotal tuning: a word's vectors and a LoRA trained together, kept in one LoRA file with the word bundled."""
