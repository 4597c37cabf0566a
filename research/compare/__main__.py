"""python -m research.compare <sweep or run dirs ...> [--out DIR] [--metric KEY]"""

from research.compare import main

main()
