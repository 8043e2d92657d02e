import sys

from harness.agent.cli import main

sys.exit(main())
