"""What the API and the dashboard both show: job bodies and the HTTP answers they share."""
