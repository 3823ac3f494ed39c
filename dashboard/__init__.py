"""The Dash pages: layout, thin callbacks, and assets served locally (no CDN)."""
