from plantops.cli.entry import main

main()
