from riskops.cli import app

app()
