"""`python -m retf_ros` is the `retf` command."""
from retf_ros.cli import main

raise SystemExit(main())
