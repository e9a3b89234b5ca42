from plantops.cli.main import main

main()
