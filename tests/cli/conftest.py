from tests.tracking.conftest import store  # noqa: F401  (a fresh SQLite MLflow store per module)
