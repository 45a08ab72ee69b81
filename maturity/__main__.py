"""`python -m maturity` is the `maturity` command."""
import sys

from maturity.cli import main

sys.exit(main())
