from keymux.cli import main

raise SystemExit(main())
