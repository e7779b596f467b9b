from lbswap.cli import main

raise SystemExit(main())
