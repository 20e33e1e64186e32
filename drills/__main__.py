from drills.cli import main

raise SystemExit(main())
