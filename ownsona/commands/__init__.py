"""One module per `ownsona` sub-command: HELP, add_arguments(parser), run(args) -> int."""
