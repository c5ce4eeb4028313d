"""HTTP routers; each module exposes `router`, composed by app.main.create_app."""
