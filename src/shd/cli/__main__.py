from shd.cli import app

app()
