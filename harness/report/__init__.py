"""What a person reads: provenance blocks, HTML and Markdown reports, plots."""
