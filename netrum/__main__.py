from netrum.cli import run

run()
