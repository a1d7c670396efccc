"""The pages of the web app, one module each (path, roles, layout, callbacks)."""
