"""`python -m oneword` (also what `accelerate launch -m oneword` runs)."""

from oneword.cli import main

main()
