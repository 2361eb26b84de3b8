"""Operating the product on one machine: process supervision, API client, cleanup."""
