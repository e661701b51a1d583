from dlpproxy.cli import main

raise SystemExit(main())
