"""The clerical review web app: `create_app` builds it, `linkage serve` runs it."""
from linkage.web.app import create_app

__all__ = ["create_app"]
